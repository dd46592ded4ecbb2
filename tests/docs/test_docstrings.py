"""Every public callable has a docstring, with a Parameters section where it takes parameters.

The public surface is ``diff_diff.__all__`` plus every results class a public callable
returns (the subclasses of ``ResultsBase`` and the diagnostics' result types). For a class
the check covers the class itself (its docstring documents the constructor, numpydoc style)
and every public method and property it has, inherited ones included where they come from
diff_diff. The API reference (``mkdocs build --strict``) renders the same docstrings.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import diff_diff
from diff_diff.results.base import ResultsBase

_EXTRA_RESULT_MODULES = ("diff_diff.diagnostics", "diff_diff.results")
_EXTRA_CLASSES = (
    "diff_diff.survey.resolved:ResolvedDesign",
    "diff_diff.survey.calibration:CalibrationReport",
    "diff_diff.results.efficient:HausmanPretestResult",
    "diff_diff.results.table:EffectsTable",
)


def _import_all(package: str) -> list:
    pkg = importlib.import_module(package)
    mods = [pkg]
    for info in pkgutil.iter_modules(pkg.__path__, package + "."):
        mods.append(importlib.import_module(info.name))
    return mods


def results_classes() -> list[type]:
    """Every results class: ResultsBase subclasses and ``*Result(s)`` types."""
    found: dict[str, type] = {}
    for package in _EXTRA_RESULT_MODULES:
        for mod in _import_all(package):
            for name, obj in vars(mod).items():
                if not inspect.isclass(obj) or name.startswith("_"):
                    continue
                if not obj.__module__.startswith("diff_diff"):
                    continue
                if issubclass(obj, ResultsBase) or name.endswith(("Result", "Results")):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    for spec in _EXTRA_CLASSES:
        module, name = spec.split(":")
        obj = getattr(importlib.import_module(module), name)
        found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


def public_classes() -> list[type]:
    seen: dict[int, type] = {}
    for name in diff_diff.__all__:
        obj = getattr(diff_diff, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            seen[id(obj)] = obj
    for cls in results_classes():
        seen[id(cls)] = cls
    return sorted(seen.values(), key=lambda c: (c.__module__, c.__qualname__))


def _takes_parameters(func) -> bool:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
    return bool(params)


def _own_members(cls: type):
    """Public methods and properties of ``cls`` defined in diff_diff (inherited ones too)."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("diff_diff"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_"):
                continue
            # the first definition along the MRO is the one users call
            first = next(k for k in cls.__mro__ if name in vars(k))
            if first is not klass:
                continue
            if isinstance(member, property):
                yield name, member, False
            elif isinstance(member, (staticmethod, classmethod)):
                yield name, member.__func__, True
            elif inspect.isfunction(member):
                yield name, member, True


def _owner(cls: type, name: str) -> str:
    klass = next(k for k in cls.__mro__ if name in vars(k))
    return f"{klass.__module__}.{klass.__qualname__}.{name}"


def _cases():
    cases: dict[str, tuple] = {}
    for name in diff_diff.__all__:
        obj = getattr(diff_diff, name)
        if inspect.isfunction(obj):
            cases[f"{obj.__module__}.{obj.__qualname__}"] = (obj, _takes_parameters(obj))
    for cls in public_classes():
        init = cls.__dict__.get("__init__") or next(
            (vars(k)["__init__"] for k in cls.__mro__ if "__init__" in vars(k)), None)
        takes = (inspect.isfunction(init) and init.__module__.startswith("diff_diff")
                 and _takes_parameters(init))
        # dataclasses document their fields as Attributes, not Parameters; results are
        # built by the estimators, so their docstrings describe attributes, not a constructor
        if hasattr(cls, "__dataclass_fields__") or cls in _RESULTS:
            takes = False
        cases[f"{cls.__module__}.{cls.__qualname__}"] = (cls, takes)
        for name, member, is_method in _own_members(cls):
            key = _owner(cls, name)
            cases[key] = (member, is_method and _takes_parameters(member))
    return cases


_RESULTS = set(results_classes())
CASES = _cases()


def _problem(obj, needs_parameters: bool) -> str | None:
    doc = inspect.getdoc(obj) if not isinstance(obj, property) else obj.__doc__
    if not doc or not doc.strip():
        return "no docstring"
    if needs_parameters and "Parameters\n---" not in inspect.cleandoc(doc):
        return "no Parameters section"
    return None


@pytest.mark.parametrize("qualname", sorted(CASES))
def test_public_callable_is_documented(qualname):
    obj, needs_parameters = CASES[qualname]
    problem = _problem(obj, needs_parameters)
    assert problem is None, f"{qualname}: {problem}"


def test_surface_is_enumerated():
    assert len(CASES) > len(diff_diff.__all__)
    assert any(k.endswith("ResolvedDesign.n_psu") for k in CASES)
    assert any(k.endswith("ResultsBase.summary") for k in CASES)
