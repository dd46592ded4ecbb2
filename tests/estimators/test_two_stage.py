"""TwoStageDiD: the imputation points, the two-stage GMM variance, its own name in messages."""

import warnings

import numpy as np
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel

KW = dict(outcome="y", unit="unit", time="time", first_treat="first_treat")
DESIGN = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")


@pytest.fixture(scope="module")
def panel():
    return example_panel()


@pytest.mark.parametrize("design", [None, DESIGN])
def test_points_equal_imputation_and_variance_is_the_estimand_linearization(panel, design):
    two = dd.TwoStageDiD().fit(panel, survey_design=design, **KW)
    bjs = dd.ImputationDiD().fit(panel, survey_design=design, **KW)
    gmm = dd.ImputationDiD(aux_partition="estimand").fit(panel, survey_design=design, **KW)
    assert two.att == pytest.approx(bjs.att, abs=1e-12)
    np.testing.assert_allclose(two.event_study_effects["estimate"],
                               bjs.event_study_effects["estimate"], atol=1e-12)
    np.testing.assert_allclose(two.vcov.to_numpy(), gmm.vcov.to_numpy(), rtol=1e-12)
    assert two.se != pytest.approx(bjs.se, rel=1e-6)  # not the cohort-horizon centring


def test_surface_and_messages_name_the_estimator(panel):
    res = dd.TwoStageDiD(horizon_max=2).fit(panel, **KW)
    assert res.levels[0] == "event_study" and res.to_dataframe().equals(res.event_study_effects)
    assert list(res.event_study_effects["event_time"]) == [0, 1, 2]
    assert "Two-stage DiD" in res.summary() and "Auxiliary" not in res.summary()
    with pytest.raises(ValueError, match=r"pretrends must be one of \[False\]"):
        dd.TwoStageDiD(pretrends=True).fit(panel, **KW)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dd.TwoStageDiD().fit(panel.assign(y=np.where(panel["unit"] == 2, np.nan, panel["y"])),
                             **KW)
    assert any(str(w.message).startswith("TwoStageDiD:") for w in caught)
    pre = res.pretrend_test()
    assert np.isfinite(pre["statistic"]) and pre["df1"] >= 1


@pytest.mark.parametrize("cls", [dd.TwoStageDiD, dd.ImputationDiD])
def test_rank_deficient_action_for_collinear_covariates(cls, panel):
    data = panel.assign(x2=panel["x1"] * 2.0)  # collinear with x1
    kw = dict(KW, covariates=["x1", "x2"])
    with pytest.warns(UserWarning, match=r"\['x2'\] collinear"):
        warned = cls().fit(data, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        silent = cls(rank_deficient_action="silent").fit(data, **kw)
    assert silent.att == warned.att
    with pytest.raises(ValueError, match=r"\['x2'\] collinear"):
        cls(rank_deficient_action="error").fit(data, **kw)
    with pytest.raises(ValueError, match="rank_deficient_action must be one of"):
        cls(rank_deficient_action="drop").fit(data, **kw)
