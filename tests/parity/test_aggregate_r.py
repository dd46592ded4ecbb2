"""aggregate_survey cell means and SEs equal R's svyby(~y, ~dom, design, svymean)."""

import numpy as np
import pytest

from diff_diff import SurveyDesign, aggregate_survey

from .test_survey_r import DESCRIPTIVES, REPLICATES, _frame, _key

RTOL = 1e-8


def _svyby_mean_cases(fixture):
    return [
        c for c in fixture["cases"]
        if c["by"] is not None and c["statistic"] == "mean" and len(c["variables"]) == 1
    ]


CASES = [(DESCRIPTIVES, c) for c in _svyby_mean_cases(DESCRIPTIVES)] + [
    (REPLICATES, c) for c in _svyby_mean_cases(REPLICATES)
]


@pytest.mark.parametrize("fixture, case", CASES, ids=[c["id"] for _, c in CASES])
def test_cell_means_and_ses_match_svyby(fixture, case):
    data = _frame(fixture, case["dataset"])
    var = case["variables"][0]
    panel, _ = aggregate_survey(data, case["by"], var, SurveyDesign(**case["design"]), min_n=1)
    lookup = {_key(row[: len(case["by"])]): row for row in
              panel[case["by"] + [f"{var}_mean", f"{var}_se"]].itertuples(index=False)}
    result = case["result"]
    assert len(panel) == len(result["domains"])
    for d, dom in enumerate(result["domains"]):
        row = lookup[_key(dom)]
        np.testing.assert_allclose(row[-2], result["estimate"][d][0], rtol=RTOL)
        np.testing.assert_allclose(row[-1], result["se"][d][0], rtol=RTOL)


def test_every_lonely_rule_and_fpc_form_is_covered():
    tsl = [c for f, c in CASES if f is DESCRIPTIVES]
    assert {c["design"].get("lonely_psu") for c in tsl} >= {"remove", "certainty", "adjust", "average"}
    assert {c["design"].get("fpc") for c in tsl} >= {None, "fpc_n", "fpc_f"}
    assert len([c for f, c in CASES if f is REPLICATES]) >= 20
