"""The package's layers import downward only, at module level and inside functions.

diagnostics -> estimators -> results -> statistics -> inference -> survey -> linalg
(plotting, datasets and the grouping helpers sit at the bottom; the package root, the
CLI and the demo may import anything). A module may import its own package freely.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import diff_diff

PACKAGE = pathlib.Path(diff_diff.__file__).parent

# rank of each layer: a module may import only layers of lower rank (or its own)
LAYERS = {
    "diagnostics": 8,
    "estimators": 7,
    "results": 6,
    "statistics": 5,
    "inference": 4,
    "survey": 3,
    "linalg": 2,
    "plotting": 1,
    "datasets": 1,
    "_grouping": 0,
    "_version": 0,
    "_warnings": -1,
    "_frames": -1,
    "_lazy": -1,
}
UNRESTRICTED = {"__init__", "__main__", "cli", "demo"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, parts


def _layer(parts) -> str:
    return parts[0]


def _imports(path: pathlib.Path, parts) -> list[tuple[int, str]]:
    """(line, top-level diff_diff subpackage) of every import in the module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["diff_diff", *parts[:-1]]  # the module's package (also for __init__)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
                if len(target) == 1:  # "from .. import x": x are subpackages or names
                    found += [(node.lineno, alias.name) for alias in node.names]
                    continue
            elif node.module and node.module.split(".")[0] == "diff_diff":
                target = node.module.split(".")
                if len(target) == 1:
                    found += [(node.lineno, alias.name) for alias in node.names]
                    continue
            else:
                continue
            found.append((node.lineno, target[1]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name.split(".")
                if target[0] == "diff_diff" and len(target) > 1:
                    found.append((node.lineno, target[1]))
    return found


def _violations() -> list[str]:
    bad = []
    for path, parts in _modules():
        layer = _layer(parts)
        if len(parts) == 1 and layer in UNRESTRICTED:
            continue
        rank = LAYERS.get(layer)
        if rank is None:
            bad.append(f"{'/'.join(parts)}: layer {layer!r} is not in the layering table")
            continue
        for line, target in _imports(path, parts):
            if target == layer:
                continue
            target_rank = LAYERS.get(target)
            if target_rank is None or target_rank >= rank:
                bad.append(f"{'/'.join(parts)}.py:{line} imports diff_diff.{target} "
                           f"({layer} may import only lower layers)")
    return bad


def test_layers_import_downward_only():
    assert _violations() == []


def test_layering_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The check itself fails on an upward import (so an empty list means something)."""
    fake = PACKAGE / "survey" / "resolved.py"
    source = fake.read_text()
    probe = tmp_path / "resolved.py"
    probe.write_text(source + "\n\ndef _probe():\n    from ..estimators import panel\n")
    original = pathlib.Path.read_text

    def read_text(self, *args, **kwargs):
        return original(probe if self == fake else self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", read_text)
    assert any("survey/resolved.py" in v and "diff_diff.estimators" in v for v in _violations())


@pytest.mark.parametrize("module", sorted({parts[0] for _, parts in _modules()
                                           if len(parts) > 1}))
def test_every_subpackage_is_in_the_table(module):
    assert module in LAYERS


def test_import_does_not_load_scipy_or_matplotlib():
    """``import diff_diff`` stays cheap: scipy and matplotlib load when first used."""
    import subprocess
    import sys

    code = ("import sys, diff_diff; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('scipy', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
