"""The API reference (docs/api/*.md) renders every public name and every results class."""

from __future__ import annotations

import inspect
import pathlib
import re

import diff_diff
from tests.docs.test_docstrings import results_classes

API = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api"


def _rendered() -> set[str]:
    found = set()
    for page in API.glob("*.md"):
        found.update(re.findall(r"^::: (\S+)$", page.read_text(), flags=re.M))
    return found


def test_every_public_name_has_an_api_entry():
    rendered = _rendered()
    index = (API / "index.md").read_text()
    missing = []
    for name in diff_diff.__all__:
        obj = getattr(diff_diff, name)
        if name == "__version__":
            continue
        if f"diff_diff.{name}" in rendered:
            continue
        # an alias: its class is rendered and the alias table names it
        canonical = getattr(obj, "__name__", None)
        if canonical and f"diff_diff.{canonical}" in rendered and f"`{name}`" in index:
            continue
        missing.append(name)
    assert not missing, f"not in docs/api: {missing}"


def test_every_results_class_has_an_api_entry():
    rendered = _rendered()
    missing = []
    for cls in results_classes():
        public = f"diff_diff.{cls.__name__}"
        full = f"{cls.__module__}.{cls.__qualname__}"
        if full not in rendered and public not in rendered:
            missing.append(full)
    assert not missing, f"not in docs/api: {missing}"


def test_api_entries_resolve():
    for path in _rendered():
        module, _, name = path.rpartition(".")
        obj = diff_diff if module == "diff_diff" else __import__(module, fromlist=[name])
        assert hasattr(obj, name), path
        assert inspect.isclass(getattr(obj, name)) or callable(getattr(obj, name)), path
