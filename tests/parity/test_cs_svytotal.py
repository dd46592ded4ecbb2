"""CS overall-ATT SE under a stratified, clustered design with FPC = R svytotal of its influence values.

Fixtures: ``tests/parity/r/cs_influence_input.py`` (influence values) and
``tests/parity/r/cs_svytotal.R`` (R ``survey::svytotal`` SE, survey 4.1.1).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "r"))
from cs_influence_input import DESIGN, design_frame, influence  # noqa: E402

REFERENCE = json.loads((HERE / "fixtures" / "cs_svytotal.json").read_text())
INPUT = pd.read_csv(HERE / "fixtures" / "cs_influence_input.csv")


@pytest.mark.parametrize("case", REFERENCE["cases"], ids=lambda c: c["method"])
def test_overall_se_matches_svytotal_of_influence(case):
    res, psi = influence(design_frame(), case["method"])
    order = np.argsort(res._unit_ids)
    np.testing.assert_allclose(psi[order], INPUT[f"psi_{case['method']}"], rtol=1e-9, atol=1e-15)
    se = np.ravel(case["se"])[0]
    assert res.overall_se == pytest.approx(se, rel=1e-8)
    assert res.df == case["df"]
    assert res.survey_metadata.df_survey == case["df"]
    assert DESIGN.fpc == "fpc"
