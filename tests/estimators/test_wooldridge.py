"""WooldridgeDiD (ETWFE): the cell effects equal the estimators they are known to equal
on a balanced panel without covariates (Wooldridge 2021: not-yet-treated ETWFE is the
imputation estimator; never-treated ETWFE is Callaway-Sant'Anna with a universal base
period), aggregations are the weighted averages they claim, survey designs, errors.
Parity with the etwfe package: tests/parity/test_wooldridge_etwfe.py."""

import warnings

import numpy as np
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel

MPDTA = dict(outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")


@pytest.fixture(scope="module")
def mpdta():
    return dd.load_mpdta()


def test_not_yet_treated_cells_are_the_imputation_estimator(mpdta):
    res = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    tau = dd.ImputationDiD().fit(mpdta, **MPDTA).treatment_effects
    cells = tau.groupby(["first_treat", "time"])["tau"].mean()
    table = res.group_time_effects.set_index(["group", "time"])["estimate"]
    assert len(table) == len(cells) == 7
    for key, value in cells.items():
        assert table[key] == pytest.approx(value, abs=1e-12)


def test_never_treated_cells_are_callaway_santanna_universal(mpdta):
    res = dd.WooldridgeDiD(control_group="never_treated").fit(mpdta, **MPDTA)
    cs = dd.CS(base_period="universal").fit(mpdta, **MPDTA)
    ours = res.event_study_effects.set_index("event_time")["estimate"]
    theirs = cs.event_study_effects.set_index("event_time")["estimate"].drop(-1)
    assert ours.index.tolist() == theirs.index.tolist()
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-12)


def test_aggregations_are_weighted_averages_of_cells(mpdta):
    res = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    cells = res.group_time_effects
    post = cells[cells["event_time"] >= 0]
    assert res.att == pytest.approx(np.average(post["estimate"], weights=post["n"]), abs=1e-14)
    for kind, column in (("group", "group"), ("calendar", "time"), ("event_study",
                                                                      "event_time")):
        table = res.aggregate(kind).set_index(column)
        for key, part in post.groupby(column):
            assert table.loc[key, "estimate"] == pytest.approx(
                np.average(part["estimate"], weights=part["n"]), abs=1e-14)
    # delta method with fixed weights: the simple ATT's variance is w' V w
    w = np.where(cells["event_time"] >= 0, cells["n"], 0.0)
    w /= w.sum()
    assert res.se == pytest.approx(np.sqrt(w @ res.vcov.to_numpy() @ w), rel=1e-12)
    # on a balanced panel the cohort-share weights are the cell weights
    assert res.aggregate("simple", "cohort_share")["estimate"] == pytest.approx(res.att,
                                                                                abs=1e-14)


def test_survey_designs_and_invariances():
    panel = example_panel()
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    base = dd.ETWFE().fit(panel, "y", "unit", "time", "first_treat", survey_design=design)
    scaled = dd.ETWFE().fit(panel.assign(weight=panel["weight"] * 3.0), "y", "unit", "time",
                            "first_treat", survey_design=design)
    shuffled = dd.ETWFE().fit(panel.sample(frac=1.0, random_state=2), "y", "unit", "time",
                              "first_treat", survey_design=design)
    for other in (scaled, shuffled):
        assert other.att == pytest.approx(base.att, rel=1e-10)
        assert other.se == pytest.approx(base.se, rel=1e-9)
    assert base.df is not None and base.survey_metadata is not None
    data, rep = dd.as_replicate_design(panel, design, "JKn")
    replicate = dd.ETWFE().fit(data, "y", "unit", "time", "first_treat", survey_design=rep)
    assert replicate.att == pytest.approx(base.att, abs=1e-12)
    assert 0.6 < replicate.se / base.se < 1.6


def test_unsupported_periods_and_errors(mpdta):
    treated_all = mpdta[mpdta["first.treat"] > 0]  # no never-treated units; 2007 all treated
    with pytest.warns(UserWarning, match=r"period\(s\) \[2007\]"):
        res = dd.WooldridgeDiD().fit(treated_all, **MPDTA)
    assert 2007 not in res.time_periods
    with pytest.raises(ValueError, match="no comparison observation"):
        dd.WooldridgeDiD(unsupported_period_action="error").fit(treated_all, **MPDTA)
    with pytest.raises(ValueError, match="no never-treated units"):
        dd.WooldridgeDiD(control_group="never_treated").fit(treated_all, **MPDTA)
    with pytest.raises(ValueError, match="no unit is treated"):
        dd.WooldridgeDiD().fit(mpdta.assign(**{"first.treat": 0}), **MPDTA)
    with pytest.raises(ValueError, match="method must be one of"):
        dd.WooldridgeDiD(method="probit").fit(mpdta, **MPDTA)
    res = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    with pytest.raises(ValueError, match="kind must be one of"):
        res.aggregate("dynamic")
    with pytest.raises(ValueError, match="weights must be one of"):
        res.aggregate("group", weights="equal")


def test_covariates_and_cr2(mpdta):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dd.WooldridgeDiD().fit(mpdta.assign(x=mpdta["lpop"] * (mpdta["year"] - 2003)),
                                     covariates=["x"], **MPDTA)
    assert res.covariates == ["x"] and np.isfinite(res.att)
    cr2 = dd.WooldridgeDiD(vcov_type="hc2_bm").fit(mpdta, **MPDTA)
    cr1 = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    assert cr2.att == pytest.approx(cr1.att, abs=1e-12) and 0.8 < cr2.se / cr1.se < 1.3
