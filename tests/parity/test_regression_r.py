"""Regression DiD parity with R: estimatr/sandwich (classical, HC1-3, CR1), clubSandwich
(CR2 + Satterthwaite df, for coefficients and the average post-period contrast) and
survey::svyglm (Taylor and replicate designs).

Fixture: ``tests/parity/r/regression.R`` (see ``tests/parity/r/README.md``). Weighted
non-survey cases use analytic weights (``SurveyDesign(weights=..., weight_type="aweight")``:
a weighted regression whose variance follows ``vcov_type``, as R ``lm(weights=)``).
"""

import json
from pathlib import Path

import numpy as np
import pytest

import diff_diff as dd
from diff_diff import SurveyDesign

from .test_survey_r import _frame

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "regression.json").read_text())
RTOL = 1e-8


def _fit(case):
    data = _frame(FIXTURE, case["dataset"])
    args = case["args"]
    vcov = case["vcov_type"]
    est_kwargs = {"vcov_type": vcov, "cluster": case["cluster"]}
    design = None
    if case["survey_design"] is not None:
        design = SurveyDesign(**case["survey_design"])
        est_kwargs = {}
    elif case["weights"] is not None:
        design = SurveyDesign(weights=case["weights"], weight_type="aweight")
    covs = args["covariates"] or None
    name = case["estimator"]
    if name == "DifferenceInDifferences":
        return dd.DifferenceInDifferences(**est_kwargs).fit(
            data, args["outcome"], args["treatment"], args["time"], covariates=covs,
            survey_design=design)
    if name == "TwoWayFixedEffects":
        return dd.TwoWayFixedEffects(**est_kwargs).fit(
            data, args["outcome"], args["treatment"], args["unit"], args["time"],
            covariates=covs, survey_design=design)
    return dd.MultiPeriodDiD(**est_kwargs).fit(
        data, args["outcome"], args["treatment"], args["time"],
        post_periods=args["post_periods"], reference_period=args["reference_period"],
        covariates=covs, survey_design=design)


def _check(row, expected):
    np.testing.assert_allclose(row["estimate"], expected["estimate"], rtol=RTOL)
    np.testing.assert_allclose(row["se"], expected["se"], rtol=RTOL)
    if expected.get("df") is not None:
        np.testing.assert_allclose(row["df"], expected["df"], rtol=RTOL)
    np.testing.assert_allclose(row["p_value"], expected["p_value"], rtol=1e-6)


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: c["id"])
def test_matches_r(case):
    res = _fit(case)
    result = case["result"]
    _check({"estimate": res.att, "se": res.se, "df": res.df, "p_value": res.p_value},
           result["coef"])
    assert res.n_obs == result["n_obs"]
    if result.get("r_squared") is not None:
        np.testing.assert_allclose(res.r_squared, result["r_squared"], rtol=RTOL)
    if result.get("period_effects"):
        table = res.period_effects.set_index("period")
        for row in result["period_effects"]:
            got = table.loc[row["period"]]
            _check({"estimate": got["estimate"], "se": got["se"], "df": got["df"],
                    "p_value": got["p_value"]}, row)
    if result.get("avg"):
        _check({"estimate": res.avg_att, "se": res.avg_se, "df": res.avg_df,
                "p_value": res.avg_p_value}, result["avg"])
