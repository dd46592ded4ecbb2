"""ContinuousDiD: a linear dose-response in two periods is weighted least squares of the
outcome change on the dose (checked with numpy, its design-based SE with the R-exact
survey total of the linearised slope); invariants; the 3.x calls; errors. Parity with
moderndid's port of R contdid: tests/parity/test_continuous_moderndid.py."""

import warnings

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


# ------------------------------------------------------------------ discrete doses, lowest dose
def _discrete(data):
    """Doses rounded up to thirds: three values in every cohort."""
    return data.assign(dose=np.ceil(data["dose"] * 3) / 3)


def test_discrete_doses_are_weighted_cell_means_and_finite_difference_slopes(two_period):
    """Two periods: ATT(d_j) is the weighted mean change at d_j minus the comparison mean;
    ACRT(d_j) = (ATT(d_j) - ATT(d_{j-1})) / (d_j - d_{j-1}) from d_0 = 0; ACRT_glob their
    average over the treated units' doses; the SE of ATT(d_1) the design-based SE of the
    difference of two domain means (its linearisation's survey total)."""
    data, dy, units = two_period
    data = _discrete(data)
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    res = dd.ContinuousDiD(treatment_type="discrete").fit(data, survey_design=design, **KW)
    w = units["weight"].to_numpy()
    treated = units["first_treat"].to_numpy() == 4
    dose = np.ceil(units["dose"].to_numpy() * 3) / 3
    levels = np.unique(dose[treated])
    control = np.average(dy[~treated], weights=w[~treated])
    att = np.array([np.average(dy[treated & (dose == v)], weights=w[treated & (dose == v)])
                    for v in levels]) - control
    acrt = np.diff(np.r_[0.0, att]) / np.diff(np.r_[0.0, levels])
    share = np.array([w[treated & (dose == v)].sum() for v in levels]) / w[treated].sum()
    np.testing.assert_array_equal(res.dose_grid, levels)
    np.testing.assert_allclose(res.dose_response_att["estimate"], att, atol=1e-12)
    np.testing.assert_allclose(res.dose_response_acrt["estimate"], acrt, atol=1e-11)
    assert res.acrt == pytest.approx(share @ acrt, abs=1e-12)
    at1, ctl = treated & (dose == levels[0]), ~treated
    z = np.where(at1, (dy - (att[0] + control)) / w[at1].sum(), 0.0)
    z = z - np.where(ctl, (dy - control) / w[ctl].sum(), 0.0)
    total = dd.survey_total(units.reset_index().assign(z=z), "z", design)
    assert res.dose_response_att["se"].iloc[0] == pytest.approx(float(total["se"].iloc[0]),
                                                                 rel=1e-10)
    # dvals: a subset of the dose values, the slopes still from the next lower value
    sub = dd.ContinuousDiD(treatment_type="discrete", dvals=levels[1:]).fit(
        data, survey_design=design, **KW)
    np.testing.assert_allclose(sub.dose_response_acrt["estimate"], acrt[1:], atol=1e-11)
    with pytest.raises(ValueError, match="dvals must be treated dose values"):
        dd.ContinuousDiD(treatment_type="discrete", dvals=[0.5]).fit(data, **KW)


def test_lowest_dose_pins_the_curve_at_the_lowest_dose_and_needs_no_untreated(panel):
    """ATT(d) - ATT(d_L) of the never-treated fit, unchanged without the untreated units;
    ACRT as before; discrete: ACRT at d_L is not identified (NaN)."""
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    base = dd.ContinuousDiD(degree=2).fit(panel, survey_design=design, **KW)
    low = dd.ContinuousDiD(degree=2, control_group="lowest_dose").fit(
        panel, survey_design=design, **KW)
    d_l = panel.loc[(panel["first_treat"] > 0) & (panel["time"] == panel["first_treat"]),
                    "dose"].min()
    assert low.reference_dose == d_l and base.reference_dose is None
    with pytest.warns(UserWarning, match="extrapolated"):  # d_l is below cohorts 3 and 5
        at_dl = dd.ContinuousDiD(degree=2, dvals=[d_l]).fit(panel, survey_design=design, **KW)
    curve = base.dose_response_att["estimate"] - at_dl.dose_response_att["estimate"].iloc[0]
    np.testing.assert_allclose(low.dose_response_att["estimate"], curve, atol=1e-11)
    assert low.acrt == pytest.approx(base.acrt, abs=1e-12)
    assert low.att == pytest.approx(base.att - at_dl.dose_response_att["estimate"].iloc[0],
                                    abs=1e-11)
    treated_only = panel[panel["first_treat"] > 0]
    alone = dd.ContinuousDiD(degree=2, control_group="lowest_dose").fit(
        treated_only, survey_design=design, **KW)
    assert alone.att == pytest.approx(low.att, abs=1e-12)
    np.testing.assert_allclose(alone.dose_response_att["estimate"],
                               low.dose_response_att["estimate"], atol=1e-12)
    disc = dd.ContinuousDiD(treatment_type="discrete", control_group="lowest_dose").fit(
        _discrete(treated_only), **KW)
    acrt = disc.dose_response_acrt
    assert np.isnan(acrt["estimate"].iloc[0]) and np.isnan(acrt["se"].iloc[0])
    assert disc.dose_response_att["estimate"].iloc[0] == 0.0
    assert np.isfinite(acrt["estimate"].iloc[1:]).all() and np.isfinite(disc.acrt)


def test_anticipation_and_universal_base_period(panel):
    """anticipation=1 moves the base period of post cells to g - 2 and drops cohort 2 (none
    here; cohort 3 keeps period 1); universal: a reference row at -1 - anticipation."""
    res = dd.ContinuousDiD(degree=1, base_period="universal", anticipation=1).fit(panel, **KW)
    es = res.event_study_effects
    ref = es[es["event_time"] == -2].iloc[0]
    assert ref["estimate"] == 0.0 and ref["se"] == 0.0 and np.isnan(ref["p_value"])
    # post cell (g=4, t=4) against base period 2: the binary DiD by hand
    wide = panel.pivot(index="unit", columns="time", values="y")
    g = panel.groupby("unit")["first_treat"].first()
    change = wide[4] - wide[2]
    cells = res.group_time_effects.set_index(["group", "time"])
    assert cells.loc[(4, 4), "att"] == pytest.approx(
        change[g == 4].mean() - change[g == 0].mean(), abs=1e-12)
    with pytest.warns(UserWarning, match="dropped 53 unit"):
        dd.ContinuousDiD(degree=1, anticipation=2).fit(panel, **KW)


@pytest.mark.parametrize("settings", [dict(treatment_type="discrete"),
                                      dict(control_group="lowest_dose", degree=1),
                                      dict(base_period="universal", anticipation=1, degree=1)])
def test_new_options_under_every_design(panel, settings):
    data = _discrete(panel) if settings.get("treatment_type") else panel
    tsl = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    fits = [dd.ContinuousDiD(**settings).fit(data, survey_design=tsl, **KW),
            dd.ContinuousDiD(n_bootstrap=49, seed=2, **settings).fit(
                data, survey_design=dd.SurveyDesign(weights="weight", psu="psu"), **KW)]
    # weights scale and row order do not matter
    again = dd.ContinuousDiD(**settings).fit(
        data.assign(weight=data["weight"] * 3.7).sample(frac=1.0, random_state=5),
        survey_design=tsl, **KW)
    assert again.att == pytest.approx(fits[0].att, abs=1e-12)
    np.testing.assert_allclose(again.dose_response_acrt["se"], fits[0].dose_response_acrt["se"],
                               rtol=1e-9)
    for res in fits:
        assert np.isfinite([res.att, res.se, res.acrt, res.acrt_se]).all()
        assert res.se > 0 and res.acrt_se > 0


def test_new_options_with_replicate_weights(panel):
    data = _discrete(panel)
    psus = np.sort(data["psu"].unique())
    reps = {f"r{k}": np.where(data["psu"] == p, 0.0, data["weight"] * len(psus) / (len(psus) - 1))
            for k, p in enumerate(psus)}
    data = data.assign(**reps)
    design = dd.SurveyDesign(weights="weight", replicate_weights=list(reps),
                             replicate_method="JK1")
    res = dd.ContinuousDiD(treatment_type="discrete").fit(data, survey_design=design, **KW)
    assert np.isfinite([res.att, res.se, res.acrt, res.acrt_se]).all()
    assert np.isfinite(res.dose_response_att["se"]).all()


def test_3x_keywords_and_their_errors(panel):
    plain = dd.ContinuousDiD(degree=1).fit(panel, **KW)
    with pytest.warns(UserWarning, match="pscore_trim, epv_threshold, pscore_fallback "
                                         r"tune\(s\) 3.13's covariate path and has no effect"):
        same = dd.ContinuousDiD(degree=1, estimation_method="reg", pscore_trim=0.05,
                                epv_threshold=5, pscore_fallback="unconditional",
                                rank_deficient_action="silent").fit(panel, covariates=[], **KW)
    assert (same.att, same.se, same.acrt) == (plain.att, plain.se, plain.acrt)
    with pytest.raises(ValueError, match="estimation_method must be one of"):
        dd.ContinuousDiD(estimation_method="ipw").fit(panel, **KW)
    with pytest.raises(NotImplementedError, match="covariates"):
        dd.ContinuousDiD().fit(panel, covariates=["x1"], **KW)
    with pytest.raises(NotImplementedError, match="covariates"):
        dd.ContinuousDiD(covariates=["x1"]).fit(panel, **KW)
    with pytest.raises(ValueError, match="treatment_type must be one of"):
        dd.ContinuousDiD(treatment_type="binary").fit(panel, **KW)
    with pytest.raises(ValueError, match="base_period must be one of"):
        dd.ContinuousDiD(base_period="first").fit(panel, **KW)
    with pytest.raises(ValueError, match="anticipation must be"):
        dd.ContinuousDiD(anticipation=-1).fit(panel, **KW)
    with pytest.raises(ValueError, match="pscore_trim must be"):
        dd.ContinuousDiD(pscore_trim=0.7).fit(panel, **KW)
    with pytest.raises(ValueError, match="dvals must hold finite doses"):
        dd.ContinuousDiD(dvals=[np.nan]).fit(panel, **KW)
    with pytest.raises(ValueError, match="at least two treated dose values"):
        dd.ContinuousDiD(treatment_type="discrete", control_group="lowest_dose").fit(
            panel.assign(dose=1.0), **KW)


def test_rank_deficient_action(panel):
    keep = panel["first_treat"] != 5
    small = panel[panel["unit"].isin(panel.loc[panel["first_treat"] == 5, "unit"].unique()[:2])]
    data = pd.concat([panel[keep], small])
    with pytest.raises(ValueError, match="too few distinct doses.*rank_deficient_action"):
        dd.ContinuousDiD(rank_deficient_action="error").fit(data, **KW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dd.ContinuousDiD(rank_deficient_action="silent").fit(data, **KW)
    # a discrete dose value missing from a cohort takes its cells out of the curves
    gap = _discrete(panel)
    top = gap.loc[(gap["first_treat"] == 5) & (gap["time"] == 5) & (gap["dose"] == 1.0), "unit"]
    gap = gap[~gap["unit"].isin(top)]
    with pytest.warns(UserWarning, match="lack some of the treated dose values"):
        res = dd.ContinuousDiD(treatment_type="discrete").fit(gap, **KW)
    assert (res.group_time_effects.query("group == 5 and time >= 5")["acrt"].isna()).all()


# ------------------------------------------------------------------ CCK sieve (dose_est_method)
def test_cck_is_the_parametric_spline_at_the_chosen_sieve_weighted_and_invariant(two_period):
    """With pweights the chosen cubic is the weighted parametric fit with segments - 1
    quantile knots (curves, ACRT and SEs identical); candidates 1..16 segments for 60
    treated units (L = floor(log2 60) = 5, no crossing of 10 sqrt(n), so the last is cut);
    weights' scale and the row order change nothing, the input frame neither."""
    data = two_period[0]
    before = data.copy()
    design = dd.SurveyDesign(weights="weight")
    res = dd.ContinuousDiD(dose_est_method="cck", seed=3, cck_draws=200).fit(
        data, survey_design=design, **KW)
    pd.testing.assert_frame_equal(data, before)
    sel = res.sieve_selection
    assert sel["candidates"] == [1, 2, 4, 8, 16]
    assert sel["alpha_hat"] == pytest.approx(min(0.5, np.sqrt(np.log(19) / 19)), rel=1e-14)
    assert sel["dimension"] == sel["segments"] + 3 and res.num_knots == sel["segments"] - 1
    assert sel["crit_att"] >= 1.959963984540054 and sel["crit_acrt"] >= 1.959963984540054
    fixed = dd.ContinuousDiD(degree=3, num_knots=sel["segments"] - 1).fit(
        data, survey_design=design, **KW)
    assert (res.att, res.acrt) == pytest.approx((fixed.att, fixed.acrt), abs=1e-12)
    assert res.acrt_se == pytest.approx(fixed.acrt_se, rel=1e-10)
    for target in ("att", "acrt"):
        ours, theirs = getattr(res, f"dose_response_{target}"), \
            getattr(fixed, f"dose_response_{target}")
        np.testing.assert_allclose(ours["estimate"], theirs["estimate"], atol=1e-10)
        np.testing.assert_allclose(ours["se"], theirs["se"], rtol=1e-9)
        crit = sel[f"crit_{target}"]
        np.testing.assert_allclose(ours["cband_high"], ours["estimate"] + crit * ours["se"],
                                   rtol=1e-12)
    other = dd.ContinuousDiD(dose_est_method="cck", seed=3, cck_draws=200).fit(
        data.assign(weight=data["weight"] * 4.1).sample(frac=1.0, random_state=1),
        survey_design=design, **KW)
    assert other.sieve_selection["segments"] == sel["segments"]
    assert other.sieve_selection["theta_star"] == pytest.approx(sel["theta_star"], rel=1e-9)
    assert other.acrt == pytest.approx(res.acrt, abs=1e-12)
    assert "B-spline (CCK)" in res.summary()
    # against the lowest dose (treated units only): the same choice (the comparison mean
    # shifts every candidate alike), the lowest-dose spline at it
    treated = data[data["first_treat"] > 0]
    low = dd.ContinuousDiD(dose_est_method="cck", seed=3, cck_draws=200,
                           control_group="lowest_dose").fit(treated, survey_design=design, **KW)
    assert low.sieve_selection["segments"] == sel["segments"]
    assert low.sieve_selection["theta_star"] == pytest.approx(sel["theta_star"], rel=1e-9)
    pinned = dd.ContinuousDiD(degree=3, num_knots=sel["segments"] - 1,
                              control_group="lowest_dose").fit(treated, survey_design=design,
                                                               **KW)
    np.testing.assert_allclose(low.dose_response_att[["estimate", "se"]],
                               pinned.dose_response_att[["estimate", "se"]], rtol=1e-9,
                               atol=1e-12)


def test_cck_selects_few_segments_for_a_cubic_and_more_for_a_wiggle():
    """Noise sd 0.1, 600 treated units: a cubic dose response is fitted by one segment; a
    sin(12 d) response is not (the Lepski test rejects the small sieves)."""
    rng = np.random.default_rng(7)
    n = 800
    dose = np.where(np.arange(n) < 600, rng.uniform(0, 1, n), 0.0)
    treated = dose > 0
    frames = []
    for shape, f in (("cubic", lambda d: d ** 3 - d), ("wiggle", lambda d: np.sin(12 * d))):
        y0 = rng.normal(0, 1, n)
        y1 = y0 + np.where(treated, f(dose), 0.0) + rng.normal(0, 0.1, n)
        frames.append(pd.DataFrame({
            "unit": np.tile(np.arange(n), 2), "time": np.repeat([1, 2], n),
            "y": np.r_[y0, y1], "first_treat": np.tile(np.where(treated, 2, 0), 2),
            "dose": np.tile(dose, 2), "shape": shape}))
    chosen = {}
    for frame in frames:
        res = dd.ContinuousDiD(dose_est_method="cck", seed=1, cck_draws=300).fit(
            frame, **KW)
        chosen[frame["shape"].iloc[0]] = res.sieve_selection["segments"]
    assert chosen["cubic"] == 1 and chosen["wiggle"] >= 4


def test_cck_refusals_and_requirements(panel, two_period):
    data = two_period[0]
    for design, what in ((dd.SurveyDesign(weights="weight", strata="stratum"), "strata"),
                         (dd.SurveyDesign(weights="weight", psu="psu"), "psu")):
        with pytest.raises(NotImplementedError, match=f"with {what}: the CCK"):
            dd.ContinuousDiD(dose_est_method="cck").fit(data, survey_design=design, **KW)
    with pytest.raises(NotImplementedError, match="with cluster"):
        dd.ContinuousDiD(dose_est_method="cck", cluster="psu").fit(data, **KW)
    with pytest.raises(ValueError, match="two periods and one treated cohort"):
        dd.ContinuousDiD(dose_est_method="cck").fit(panel, **KW)
    with pytest.raises(ValueError, match="at least 4 distinct treated doses"):
        dd.ContinuousDiD(dose_est_method="cck").fit(
            data.assign(dose=np.ceil(data["dose"] * 3) / 3), **KW)
    with pytest.raises(ValueError, match="treatment_type='discrete'"):
        dd.ContinuousDiD(dose_est_method="cck", treatment_type="discrete").fit(data, **KW)
    with pytest.raises(ValueError, match="dose_est_method must be one of"):
        dd.ContinuousDiD(dose_est_method="spline").fit(data, **KW)
    with pytest.raises(ValueError, match="cck_draws must be"):
        dd.ContinuousDiD(dose_est_method="cck", cck_draws=0).fit(data, **KW)
    with pytest.warns(UserWarning, match="degree and num_knots are not used"):
        res = dd.ContinuousDiD(dose_est_method="cck", degree=2, cck_draws=50, seed=1,
                               cband=False).fit(data, **KW)
    assert res.degree == 3 and "cband_low" not in res.dose_response_att
    # with the PSU bootstrap the SEs are bootstrap SEs, the band stays CCK's (with the
    # selection margin), not the bootstrap's sup-t band at the chosen sieve
    boot = dd.ContinuousDiD(dose_est_method="cck", cck_draws=50, seed=1, n_bootstrap=49).fit(
        data, survey_design=dd.SurveyDesign(weights="weight"), **KW)
    table = boot.dose_response_att
    np.testing.assert_allclose(table["cband_high"] - table["estimate"],
                               boot.sieve_selection["crit_att"] * table["se"], rtol=1e-12)
    assert np.isfinite(boot.acrt_se) and boot.acrt_se > 0


# ------------------------------------------------------------------ event-study windows
def test_event_study_windows_restrict_and_balance(panel):
    """min_e/max_e keep rows of the full event study unchanged (estimates and SEs);
    balance_e keeps the cohorts observed balance_e after treatment; the event study's
    average is the mean of its rows at e >= 0, under a design and with replicate refits."""
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    est = dd.ContinuousDiD(degree=1)
    full = est.fit(panel, survey_design=design, **KW)
    cut = est.fit(panel, survey_design=design, min_e=-1, max_e=2, **KW)
    for name in ("event_study_effects", "event_study_slopes"):
        a, b = getattr(full, name), getattr(cut, name)
        assert b["event_time"].tolist() == [-1, 0, 1, 2]
        kept = a[a["event_time"].between(-1, 2)].reset_index(drop=True)
        np.testing.assert_allclose(b[["estimate", "se"]], kept[["estimate", "se"]], rtol=1e-12)
    overall = cut.event_study_overall.set_index("term")
    es = cut.event_study_effects
    assert overall.loc["ATT_es", "estimate"] == pytest.approx(
        es.loc[es["event_time"] >= 0, "estimate"].mean(), abs=1e-13)
    # balance_e=2: cohorts 3 and 4 (the last period is 6; cohort 5 is observed 1 after), so
    # no -3 (only cohort 5 has it)
    bal = est.fit(panel, survey_design=design, balance_e=2, **KW)
    assert bal.event_study_effects["event_time"].tolist() == [-2, -1, 0, 1, 2]
    cells = bal.group_time_effects
    post = cells[(cells["time"] - cells["group"] == 2) & cells["group"].isin([3, 4])]
    wide = panel.groupby("unit")[["first_treat", "weight"]].first()
    share = wide.groupby("first_treat")["weight"].sum().loc[[3, 4]]
    assert bal.event_study_effects.set_index("event_time").loc[2, "estimate"] == \
        pytest.approx((post.set_index("group")["att"] * share / share.sum()).sum(), abs=1e-12)
    assert bal.event_window == {"min_e": -np.inf, "max_e": np.inf, "balance_e": 2.0}
    reps = {f"r{k}": np.where(panel["psu"] % 6 == k, 0.0, panel["weight"] * 6 / 5)
            for k in range(6)}  # six delete-a-group replicates
    rep = est.fit(panel.assign(**reps), survey_design=dd.SurveyDesign(
        weights="weight", replicate_weights=list(reps), replicate_method="JK1"),
        min_e=0, balance_e=1, **KW)
    assert rep.event_study_effects["event_time"].tolist() == [0, 1]
    assert np.isfinite(rep.event_study_overall["se"]).all()


def test_event_study_window_errors(panel):
    est = dd.ContinuousDiD(degree=1)
    with pytest.raises(ValueError, match="min_e <= max_e"):
        est.fit(panel, min_e=2, max_e=1, **KW)
    with pytest.raises(ValueError, match="balance_e must be None or a non-negative"):
        est.fit(panel, balance_e=-1, **KW)
    with pytest.raises(ValueError, match="no cohort is observed that many"):
        est.fit(panel, balance_e=9, **KW)
    empty = est.fit(panel, min_e=10, **KW)
    assert empty.event_study_effects.empty
    assert np.isnan(empty.event_study_overall["estimate"]).all()
