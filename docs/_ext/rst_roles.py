"""Griffe extension for the API reference: Sphinx roles in docstrings become code spans.

The docstrings are numpydoc, read by ``help()`` and IDEs as plain text; some name other
objects with Sphinx roles (``:class:`~diff_diff.SurveyDesign```). Markdown has no roles,
so each is rendered as inline code with the name as a reader would write it.
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|data|mod|obj|exc|ref):`~?([^`]+)`")


def _name(match: re.Match) -> str:
    target = match.group(1).strip()
    if match.group(0).split("`")[1].startswith("~"):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


class RstRoles(griffe.Extension):
    """Rewrite Sphinx cross-reference roles in every docstring as code spans."""

    def on_object(self, *, obj, **kwargs) -> None:  # noqa: D102
        if obj.docstring is not None and ":`" in obj.docstring.value:
            obj.docstring.value = _ROLE.sub(_name, obj.docstring.value)
