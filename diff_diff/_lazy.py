"""Modules imported on first use, so that ``import diff_diff`` stays fast (scipy's
statistics, sparse and linear-algebra modules cost more than pandas to import)."""

from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module ``name`` and imports it on first attribute access."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        module = importlib.import_module(self._name)
        self.__dict__.update(module.__dict__)  # later lookups skip __getattr__
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


sparse = LazyModule("scipy.sparse")
csgraph = LazyModule("scipy.sparse.csgraph")
linalg = LazyModule("scipy.linalg")
optimize = LazyModule("scipy.optimize")
stats = LazyModule("scipy.stats")
special = LazyModule("scipy.special")  # distribution functions without scipy.stats
interpolate = LazyModule("scipy.interpolate")
