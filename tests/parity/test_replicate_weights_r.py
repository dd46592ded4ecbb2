"""as_replicate_design equals R's as.svrepdesign factors (JK1, JKn, BRR, Fay).

Fixture: ``tests/parity/r/survey_replicate_weights.R`` (128 designs, BRR/Fay
for 1-88 strata so that every Hadamard construction R uses is exercised).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from diff_diff import SurveyDesign, survey_mean
from diff_diff import as_replicate_design
from diff_diff.survey.hadamard import hadamard

from .test_survey_r import _frame

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "survey_replicate_weights.json").read_text()
)


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: c["id"])
def test_factors_scale_and_mean_match_r(case):
    data = _frame(FIXTURE, case["dataset"])
    design = SurveyDesign(**case["design"])
    kwargs = {"fay_rho": case["fay_rho"]} if case["type"] == "Fay" else {}
    out, rep = as_replicate_design(data, design, case["type"], **kwargs)
    w = data[case["design"]["weights"]].to_numpy()
    factors = out[rep.replicate_weights].to_numpy() / w[:, None]
    np.testing.assert_allclose(factors, np.array(case["factors"]), rtol=1e-13, atol=0)
    resolved = rep.resolve(out).replicate
    assert resolved.n_replicates == case["n_replicates"]
    np.testing.assert_allclose(resolved.scale, case["scale"], rtol=1e-13)
    np.testing.assert_allclose(resolved.rscales, case["rscales"], rtol=1e-13)
    if case["replicate_strata"] is not None:
        assert rep.replicate_strata == case["replicate_strata"]
    got = survey_mean(out, "y", rep)
    np.testing.assert_allclose(got["estimate"].iloc[0], case["mean_y"]["estimate"], rtol=1e-8)
    np.testing.assert_allclose(got["se"].iloc[0], case["mean_y"]["se"], rtol=1e-8)


@pytest.mark.slow
def test_hadamard_orders_match_r_for_1_to_300_strata():
    for entry in FIXTURE["hadamard_selection"]:
        matrix = hadamard(entry["n_strata"]).astype(int) * 2 - 1
        order = entry["order"]
        assert matrix.shape == (order, order)
        np.testing.assert_array_equal(matrix @ matrix.T, order * np.eye(order))
