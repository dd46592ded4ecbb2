"""The tutorial's prose quotes numbers; re-derive every one from its own code.

A quoted number is written ``<!--q: EXPRESSION :FORMAT-->TEXT`` in a markdown
cell: EXPRESSION is evaluated after running the notebook's code cells, and
``format(value, FORMAT)`` must equal TEXT. Text and code cannot diverge.
"""

import json
import os
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parents[2] / "docs" / "tutorials" / "composition_drift_calibration.ipynb"
QUOTE = re.compile(r"<!--q:(?P<expr>.+?) :(?P<fmt>[^:>]*)-->(?P<text>[-+]?\d+(?:\.\d+)?|[a-z]+)", re.S)


@pytest.fixture(scope="module")
def notebook():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    os.environ.setdefault("MPLBACKEND", "Agg")
    namespace: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return namespace, markdown


def test_every_quoted_number_matches_the_code(notebook):
    namespace, markdown = notebook
    quotes = list(QUOTE.finditer(markdown))
    assert len(quotes) >= 12
    wrong = []
    for q in quotes:
        value = eval(q["expr"].replace("\n", " "), namespace)
        expected = format(value, q["fmt"])
        if expected != q["text"]:
            wrong.append(f"{q['expr'].strip()}: text says {q['text']}, code gives {expected}")
    assert not wrong, "\n".join(wrong)


def test_story_holds(notebook):
    namespace, _ = notebook
    table = namespace["table"].set_index("weights")
    assert not table.loc["design", "covers_truth"]
    assert not table.loc["national", "covers_truth"]
    assert table.loc["state_year", "covers_truth"]
    assert table.loc["design", "pretrend_p"] > 0.1
