"""ContinuousDiD: a linear dose-response in two periods is weighted least squares of the
outcome change on the dose (checked with numpy, its design-based SE with the R-exact
survey total of the linearised slope); invariants; the 3.x calls; errors. Parity with
moderndid's port of R contdid: tests/parity/test_continuous_moderndid.py."""

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel

KW = dict(outcome="y", unit="unit", time="time", first_treat="first_treat", dose="dose")


@pytest.fixture(scope="module")
def panel():
    return example_panel()


@pytest.fixture(scope="module")
def two_period(panel):
    """Periods 3-4, cohort 4 treated, never-treated controls (each unit once)."""
    data = panel[panel["time"].isin([3, 4]) & panel["first_treat"].isin([0, 4])].copy()
    wide = data.pivot(index="unit", columns="time", values="y")
    units = data[data["time"] == 4].set_index("unit").loc[wide.index]  # dose when treated
    return data, (wide[4] - wide[3]).to_numpy(), units


def test_linear_curve_is_weighted_least_squares_with_survey_total_se(two_period):
    data, dy, units = two_period
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    res = dd.ContinuousDiD(degree=1).fit(data, survey_design=design, **KW)
    w = units["weight"].to_numpy()
    treated = units["first_treat"].to_numpy() == 4
    d = units["dose"].to_numpy()[treated]
    X = np.column_stack([np.ones(treated.sum()), d])
    wt = w[treated]
    bread = np.linalg.inv(X.T @ (X * wt[:, None]))
    beta = bread @ (X * wt[:, None]).T @ dy[treated]
    control_mean = np.average(dy[~treated], weights=w[~treated])
    assert res.acrt == pytest.approx(beta[1], abs=1e-12)
    np.testing.assert_allclose(res.dose_response_acrt["estimate"], beta[1], atol=1e-11)
    np.testing.assert_allclose(res.dose_response_att["estimate"],
                               beta[0] + beta[1] * res.dose_grid - control_mean, atol=1e-11)
    assert res.att == pytest.approx(np.average(dy[treated], weights=wt) - control_mean,
                                    abs=1e-12)
    # the slope's linearisation z_i = [(X'WX)^-1 x_i r_i]_1; its design-based SE from the
    # survey total (R-exact) of w_i z_i over the units
    z = np.zeros(len(units))
    z[treated] = (X * (dy[treated] - X @ beta)[:, None]) @ bread[:, 1]
    frame = units.reset_index().assign(z=z)
    total = dd.survey_total(frame, "z", design)
    assert res.acrt_se == pytest.approx(float(total["se"].iloc[0]), rel=1e-10)


def test_the_headline_is_the_binary_did_of_callaway_santanna(panel):
    """Without dose, ATT^glob is the cohort-share average of post-treatment ATT(g, t) with
    each cohort's periods weighted equally; the cells equal CS's (never treated,
    varying base period)."""
    res = dd.ContinuousDiD(degree=1).fit(panel, **KW)
    cs = dd.CallawaySantAnna(base_period="varying").fit(
        panel, outcome="y", unit="unit", time="time", first_treat="first_treat")
    cells = res.group_time_effects
    merged = cells.merge(cs.to_dataframe("group_time"), on=["group", "time"])
    np.testing.assert_allclose(merged["att"], merged["estimate"], atol=1e-12)
    post = cells[cells["time"] >= cells["group"]]
    assert post["weight"].sum() == pytest.approx(1.0, abs=1e-14)
    assert res.att == pytest.approx((post["weight"] * post["att"]).sum(), abs=1e-14)


def test_invariants(panel):
    before = panel.copy()
    base = dd.ContinuousDiD(degree=2, num_knots=1).fit(panel, survey_design=dd.SurveyDesign(
        weights="weight", strata="stratum", psu="psu"), **KW)
    pd.testing.assert_frame_equal(panel, before)
    scaled = panel.assign(weight=panel["weight"] * 7.3)
    shuffled = scaled.sample(frac=1.0, random_state=3)
    other = dd.ContinuousDiD(degree=2, num_knots=1).fit(shuffled, survey_design=dd.SurveyDesign(
        weights="weight", strata="stratum", psu="psu"), **KW)
    assert other.att == pytest.approx(base.att, abs=1e-12)
    assert other.acrt_se == pytest.approx(base.acrt_se, rel=1e-10)
    np.testing.assert_allclose(other.dose_response_att["se"], base.dose_response_att["se"],
                               rtol=1e-9)


def test_event_studies_and_tables(panel):
    res = dd.ContinuousDiD(degree=1, n_bootstrap=99, seed=1).fit(panel, **KW)
    plain = dd.ContinuousDiD(degree=1).fit(panel, **KW)
    es = res.event_study_effects
    assert es["event_time"].tolist() == [-3, -2, -1, 0, 1, 2, 3]
    assert set(res.event_study_slopes["event_time"]) == set(es["event_time"])
    band = res.dose_response_att
    assert (band["cband_low"] <= band["conf_low"] + 1e-12).all()
    assert set(res.to_dataframe("dose_response")["target"]) == {"att", "acrt"}
    assert res.levels == ("overall", "dose_response", "event_study", "event_study_slope",
                          "group_time")
    assert res.to_dataframe()["term"].tolist() == ["ATT_glob", "ACRT_glob"]
    assert "ACRT_glob" in res.summary()
    # 3.x: aggregate= accepted (everything is computed), the 3.x result names
    old = dd.CDiD(degree=1).fit(panel, aggregate="eventstudy", **KW)
    assert old.overall_acrt == plain.acrt and old.overall_att_se == plain.se


def test_custom_grid_warns_when_it_extrapolates(panel):
    grid = [0.5, 1.0, 1.5]
    with pytest.warns(UserWarning, match="extrapolated"):
        res = dd.ContinuousDiD(degree=1, dvals=grid).fit(panel, **KW)
    np.testing.assert_array_equal(res.dose_grid, grid)
    assert len(res.dose_response_acrt) == 3


def test_cells_without_a_curve_leave_the_other_cells_weights_summing_to_one(panel):
    """A cohort of two units cannot fit a cubic: ACRT and the curves are those of the other
    cohorts (their weights renormalised), with a warning; ATT_glob keeps every cohort."""
    keep = panel["first_treat"] != 5
    small = panel[panel["unit"].isin(panel.loc[panel["first_treat"] == 5, "unit"].unique()[:2])]
    data = pd.concat([panel[keep], small])
    with pytest.warns(UserWarning, match="too few distinct doses"):
        res = dd.ContinuousDiD(degree=3).fit(data, **KW)
    without = dd.ContinuousDiD(degree=3).fit(panel[keep], **KW)
    assert res.acrt == pytest.approx(without.acrt, rel=1e-10)
    np.testing.assert_allclose(res.dose_response_att["estimate"],
                               without.dose_response_att["estimate"], rtol=1e-10)
    assert res.att != pytest.approx(without.att, rel=1e-6)


def test_event_time_is_in_the_time_columns_units(panel):
    """Periods 2000, 2002, ...: event times -6 .. 6 in years, as CallawaySantAnna's."""
    data = panel.assign(time=1998 + 2 * panel["time"],
                        first_treat=np.where(panel["first_treat"] > 0,
                                             1998 + 2 * panel["first_treat"], 0))
    res = dd.ContinuousDiD(degree=1).fit(data, **KW)
    cs = dd.CallawaySantAnna(base_period="varying").fit(
        data, outcome="y", unit="unit", time="time", first_treat="first_treat")
    assert res.event_study_effects["event_time"].tolist() == \
        cs.event_study_effects["event_time"].tolist() == [-6, -4, -2, 0, 2, 4, 6]
    with pytest.raises(ValueError, match="not periods"):
        dd.ContinuousDiD(degree=1).fit(data.assign(first_treat=np.where(
            data["first_treat"] == 2004, 2003, data["first_treat"])), **KW)


def test_errors(panel):
    with pytest.raises(ValueError, match="balanced"):
        dd.ContinuousDiD().fit(panel.iloc[1:], **KW)
    with pytest.raises(ValueError, match="positive dose"):
        dd.ContinuousDiD().fit(panel.assign(dose=0.0), **KW)
    with pytest.raises(ValueError, match="aggregate"):
        dd.ContinuousDiD().fit(panel, aggregate="group", **KW)
    with pytest.raises(ValueError, match="never-treated"):
        dd.ContinuousDiD().fit(panel[panel["first_treat"] > 0], **KW)
    with pytest.raises(ValueError, match="degree"):
        dd.ContinuousDiD(degree=0).fit(panel, **KW)
    with pytest.raises(ValueError, match="target"):
        dd.ContinuousDiD(degree=1).fit(panel, **KW).plot_dose_response("level")
