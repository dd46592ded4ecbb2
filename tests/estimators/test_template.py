"""The example estimator of diff_diff/estimators/_template.py: numbers and errors."""

import numpy as np
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel
from diff_diff.estimators._template import TwoPeriodDiD

KW = dict(outcome="y", unit="unit", time="time", treatment="treated", pre=2, post=6)
DESIGN = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")


@pytest.fixture(scope="module")
def panel():
    return example_panel()


def test_att_is_the_weighted_difference_in_mean_changes(panel):
    wide = panel.pivot(index="unit", columns="time", values="y")
    unit = panel.groupby("unit").first()
    change, d, w = wide[6] - wide[2], unit["treated"] == 1, unit["weight"]
    expected = np.average(change[d], weights=w[d]) - np.average(change[~d], weights=w[~d])
    res = TwoPeriodDiD().fit(panel, survey_design=DESIGN, **KW)
    assert res.att == pytest.approx(expected, rel=1e-12)
    assert res.n_units == 240 and res.n_treated == int(d.sum())


@pytest.mark.parametrize("design", [None, DESIGN])
def test_equals_callaway_santanna_on_the_same_two_periods(panel, design):
    sub = panel[panel["time"].isin([2, 6])].assign(g=lambda d: d["treated"] * 6)
    cs = dd.CS(estimation_method="reg").fit(sub, outcome="y", unit="unit", time="time",
                                            first_treat="g", survey_design=design)
    res = TwoPeriodDiD().fit(panel, survey_design=design, **KW)
    assert res.att == pytest.approx(cs.att, rel=1e-12)
    assert res.se == pytest.approx(cs.se, rel=1e-12)
    assert res.df == cs.df


def test_bad_input_is_named(panel):
    with pytest.raises(ValueError, match="post period 9"):
        TwoPeriodDiD().fit(panel, **{**KW, "post": 9})
    with pytest.raises(ValueError, match="treatment column 'd' varies within unit"):
        TwoPeriodDiD().fit(panel, **{**KW, "treatment": "d", "post": 5})
    with pytest.raises(ValueError, match="both periods"):
        TwoPeriodDiD().fit(panel.drop(index=panel.index[(panel["time"] == 6)][:3]), **KW)
    with pytest.raises(ValueError, match="pweight"):
        TwoPeriodDiD().fit(panel, survey_design=dd.SurveyDesign(weights="weight",
                                                                weight_type="aweight"), **KW)
    with pytest.raises(ValueError, match="replicate weights already provide"):
        rep, rep_design = dd.as_replicate_design(panel, DESIGN, "JKn")
        TwoPeriodDiD(n_bootstrap=99).fit(rep, survey_design=rep_design, **KW)
