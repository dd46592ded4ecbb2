"""Estimators: each turns data into estimates and influence functions (no variance code)."""

from .callaway_santanna import CallawaySantAnna

__all__ = ["CallawaySantAnna"]
