"""Warnings that point at the user's line, however deep inside the library they arise."""

from __future__ import annotations

import sys
import warnings


def warn_user(message, category=UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside ``diff_diff``."""
    frame, level = sys._getframe(1), 2
    while frame is not None and _inside(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _inside(module: str) -> bool:
    return module == "diff_diff" or module.startswith("diff_diff.")
