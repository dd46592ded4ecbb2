"""balance's published BRFSS tutorial (``tutorials/balance_diff_diff_brfss.ipynb`` in
balance's source release, not vendored here) runs unchanged against this package and
prints the numbers it was written around. ``.ci/run`` downloads balance's sdist and
points ``BALANCE_BRFSS_NOTEBOOK`` at the notebook; without it the test is skipped
(and fails under ``DIFF_DIFF_REQUIRE_BALANCE=1``)."""

import os
import pathlib
import re

import pytest

NOTEBOOK = os.environ.get("BALANCE_BRFSS_NOTEBOOK")


@pytest.mark.skipif(not NOTEBOOK and not os.environ.get("DIFF_DIFF_REQUIRE_BALANCE"),
                    reason="BALANCE_BRFSS_NOTEBOOK is not set (balance's tutorial not fetched)")
def test_brfss_tutorial_runs_and_prints_its_numbers(tmp_path):
    assert NOTEBOOK, "DIFF_DIFF_REQUIRE_BALANCE is set but BALANCE_BRFSS_NOTEBOOK is not"
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    notebook = nbformat.read(pathlib.Path(NOTEBOOK), as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    assert "diff-diff: 3.14" in text
    assert re.search(r"Design-weighted ATT\s*: -3\.44 pp", text)
    assert re.search(r"Poststratified ATT\s*: -3\.00 pp", text)
    # HonestDiD's relative-magnitude sweep: four robust intervals around the -3 pp effect
    intervals = re.findall(r"M=\s*([\d.]+):\s+robust 95% CI = \[([-+\d.]+), ([-+\d.]+)\] pp", text)
    assert [m for m, _, _ in intervals] == ["0.25", "0.5", "1.0", "1.5"]
    lows, highs = [float(lo) for _, lo, _ in intervals], [float(hi) for _, _, hi in intervals]
    assert all(lo < -3.0 < hi for lo, hi in zip(lows, highs))
    assert lows == sorted(lows, reverse=True) and highs == sorted(highs)  # widen with M
