"""Analyses that results offer but that live in a higher layer register themselves here.

``diff_diff.diagnostics`` adds its Goodman-Bacon decomposition under ``"bacon"``
when it is imported (``import diff_diff`` does), so that
``TwoWayFixedEffects(...).fit(...).decompose()`` works while results never import
diagnostics.
"""

DECOMPOSERS: dict = {}
