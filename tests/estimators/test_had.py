"""HeterogeneousAdoptionDiD: designs, survey inference, invariants and errors."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diff_diff as dd
from diff_diff import HeterogeneousAdoptionDiD, SurveyDesign
from diff_diff.estimators.had import qug_test
from diff_diff.inference import design_variance
from diff_diff.linalg.local_poly import local_linear_boundary

ARGS = dict(outcome="y", dose="d", time="t", unit="unit")


def two_periods(n=400, mass=0.0, shift=0.0, seed=0):
    """Two periods; dose 0 before, ``shift + U`` after (a share ``mass`` exactly at ``shift``)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=n)
    dose = np.where(rng.uniform(size=n) < mass, shift, shift + u)
    base = rng.normal(size=n)
    dy = 1.0 + dose + dose**2 + rng.normal(size=n)
    strata = rng.integers(0, 4, n)
    frame = pd.DataFrame({
        "unit": np.repeat(np.arange(n), 2), "t": np.tile([1, 2], n),
        "d": np.column_stack([np.zeros(n), dose]).ravel(),
        "y": np.column_stack([base, base + dy]).ravel(),
        "w": np.repeat(rng.uniform(0.5, 2.0, n), 2),
        "stratum": np.repeat(strata, 2),
        "psu": np.repeat(strata * 100 + rng.integers(0, 10, n), 2),
    })
    return frame, dose, dy


def test_two_periods_equal_the_boundary_fit_formula():
    df, dose, dy = two_periods()
    res = HeterogeneousAdoptionDiD().fit(df, **ARGS)
    fit = local_linear_boundary(dose, dy, 0.0)
    assert res.design == "continuous_at_zero" and res.target_parameter == "WAS"
    assert res.att == pytest.approx((dy.mean() - fit.mu_us) / dose.mean(), rel=1e-12)
    assert res.att_bias_corrected == pytest.approx((dy.mean() - fit.mu_bc) / dose.mean(),
                                                   rel=1e-12)
    # influence values: the robust boundary influence over the mean dose
    np.testing.assert_allclose(res.influence_functions[:, 0], -fit.influence / dose.mean(),
                               atol=1e-15)
    lo, hi = res.conf_int
    assert (lo + hi) / 2 == pytest.approx(res.att_bias_corrected, rel=1e-12)
    assert res.bandwidth == pytest.approx(fit.h, rel=1e-12)
    assert dd.HAD is HeterogeneousAdoptionDiD


def test_design_rule_and_targets():
    df, _, _ = two_periods(mass=0.3, shift=0.2)
    res = HeterogeneousAdoptionDiD().fit(df, **ARGS)
    assert res.design == "mass_point" and res.d_lower == pytest.approx(0.2)
    assert res.target_parameter == "WAS_d_lower" and res.att == res.att_bias_corrected
    df, dose, dy = two_periods(shift=0.5, seed=1)
    with pytest.warns(UserWarning, match="cannot be tested"):
        near = HeterogeneousAdoptionDiD().fit(df, **ARGS)
    assert near.design == "continuous_near_d_lower"
    fit = local_linear_boundary(dose, dy, dose.min())
    assert near.att == pytest.approx((dy.mean() - fit.mu_us) / (dose - dose.min()).mean(),
                                     rel=1e-12)
    forced = HeterogeneousAdoptionDiD(design="continuous_at_zero").fit(df, **ARGS)
    assert forced.design == "continuous_at_zero" and forced.d_lower == 0


def test_mass_point_is_the_wald_ratio():
    df, dose, dy = two_periods(mass=0.4, shift=0.0, seed=2)
    res = HeterogeneousAdoptionDiD().fit(df, **ARGS)
    assert res.design == "mass_point" and res.target_parameter == "WAS"
    z = dose > 0
    wald = (dy[z].mean() - dy[~z].mean()) / (dose[z].mean() - dose[~z].mean())
    assert res.att == pytest.approx(wald, rel=1e-12)
    # HC1 of the 2SLS fit: n/(n - 2) sum psi^2 (influence values sum to zero)
    psi = res.influence_functions[:, 0]
    assert abs(psi.sum()) < 1e-12
    n = psi.size
    assert res.se == pytest.approx(np.sqrt(n / (n - 2) * np.sum(psi**2)), rel=1e-12)


def test_survey_design_tsl_weights_and_psu_equals_cluster():
    df, _, _ = two_periods(seed=3)
    full = SurveyDesign(weights="w", strata="stratum", psu="psu")
    res = HeterogeneousAdoptionDiD().fit(df, survey_design=full, **ARGS)
    units = df.drop_duplicates("unit").reset_index(drop=True)
    design = full.resolve(units)
    assert res.se == pytest.approx(
        np.sqrt(design_variance(res.influence_functions, design).vcov[0, 0]), rel=1e-12)
    assert res.df == design.df and res.vce == "hc1"  # PSUs: fit residuals by default
    wdf = df.assign(w=1.0)
    flat = HeterogeneousAdoptionDiD().fit(wdf, survey_design=SurveyDesign(weights="w"), **ARGS)
    plain = HeterogeneousAdoptionDiD().fit(df, **ARGS)
    assert flat.att == pytest.approx(plain.att, rel=1e-12)
    by_psu = HeterogeneousAdoptionDiD().fit(df, survey_design=SurveyDesign(psu="psu"), **ARGS)
    by_cluster = HeterogeneousAdoptionDiD(cluster="psu").fit(df, **ARGS)
    assert by_psu.se == pytest.approx(by_cluster.se, rel=1e-12)


def test_replicate_weights_refit_with_fixed_bandwidths():
    df, _, _ = two_periods(n=300, seed=4)
    units = df.drop_duplicates("unit")
    out, rep = dd.as_replicate_design(units, SurveyDesign(weights="w", psu="psu"), "JK1")
    data = df.merge(out[["unit"] + rep.replicate_weights], on="unit")
    est = HeterogeneousAdoptionDiD(design="continuous_at_zero")
    res = est.fit(data, survey_design=rep, **ARGS)
    full = est.fit(data, survey_design=SurveyDesign(weights="w"), **ARGS)
    assert res.att == pytest.approx(full.att, rel=1e-12)
    thetas = np.array([
        HeterogeneousAdoptionDiD(design="continuous_at_zero", h=full.bandwidth).fit(
            data, survey_design=SurveyDesign(weights=c), **ARGS).att_bias_corrected
        for c in rep.replicate_weights])
    n = thetas.size
    assert res.se == pytest.approx(np.sqrt((n - 1) / n * np.sum((thetas - thetas.mean())**2)),
                                   rel=1e-10)


def event_panel(n=300, periods=6, adoption=4, seed=5):
    rng = np.random.default_rng(seed)
    base = rng.uniform(size=n)
    frames = []
    for t in range(1, periods + 1):
        d = np.zeros(n) if t < adoption else base * (1 + 0.1 * (t - adoption))
        y = np.sin(np.arange(n)) + 0.3 * t + (1.5 + base) * d + rng.normal(0, 0.5, n)
        frames.append(pd.DataFrame({"unit": np.arange(n), "t": t, "d": d, "y": y}))
    return pd.concat(frames, ignore_index=True)


def test_event_study_horizons_placebos_and_bootstrap_band():
    df = event_panel()
    res = HeterogeneousAdoptionDiD(n_bootstrap=499, seed=1).fit(df, placebo=2, **ARGS)
    es = res.event_study_effects
    assert list(es["event_time"]) == [-3, -2, 0, 1, 2]
    assert {"cband_low", "cband_high"} <= set(es.columns)
    assert (es["cband_high"] - es["cband_low"] >= es["conf_high"] - es["conf_low"] - 1e-12).all()
    # each horizon equals a two-period fit on its own outcome change and dose
    wide_y = df.pivot(index="unit", columns="t", values="y")
    wide_d = df.pivot(index="unit", columns="t", values="d")
    dy, dose = wide_y[5] - wide_y[3], wide_d[5]
    fit = local_linear_boundary(dose.to_numpy(), dy.to_numpy(), 0.0)
    row = es.set_index("event_time").loc[1]
    assert row["estimate"] == pytest.approx((dy.mean() - fit.mu_us) / dose.mean(), rel=1e-12)
    with pytest.warns(UserWarning, match="effects=9 reduced to 3"):
        HeterogeneousAdoptionDiD().fit(df, effects=9, **ARGS)
    dyn = HeterogeneousAdoptionDiD().fit(df, effects=2, dynamic=True, **ARGS)
    cum = (wide_d[4] + wide_d[5]).mean()
    assert dyn.event_study_effects.set_index("event_time").loc[1, "dose_mean"] == \
        pytest.approx(cum, rel=1e-12)


def test_staggered_adoption_needs_first_treat():
    df = event_panel()
    late = df["unit"] < 50
    df.loc[late & (df["t"] == 4), "d"] = 0.0
    with pytest.raises(ValueError, match="different periods"):
        HeterogeneousAdoptionDiD().fit(df, **ARGS)
    df["g"] = np.where(late, 5, 4)
    with pytest.warns(UserWarning, match="kept the last cohort"):
        res = HeterogeneousAdoptionDiD().fit(df, first_treat="g", **ARGS)
    assert res.n_units == 50 and res.adoption_period == 5


def test_bad_input():
    df, _, _ = two_periods()
    with pytest.raises(ValueError, match="does not support covariates"):
        HeterogeneousAdoptionDiD().fit(df, covariates=["w"], **ARGS)
    bad = df.assign(g=2)
    bad.loc[0, "d"] = 0.3  # unit 0 dosed before adoption
    with pytest.raises(ValueError, match="must be 0 before the adoption period"):
        HeterogeneousAdoptionDiD().fit(bad, first_treat="g", **ARGS)
    with pytest.raises(ValueError, match="different periods"):
        HeterogeneousAdoptionDiD().fit(bad, **ARGS)
    with pytest.raises(ValueError, match="negative values"):
        HeterogeneousAdoptionDiD().fit(df.assign(d=-df["d"]), **ARGS)
    with pytest.raises(ValueError, match="pweight"):
        HeterogeneousAdoptionDiD().fit(
            df, survey_design=SurveyDesign(weights="w", weight_type="aweight"), **ARGS)
    with pytest.raises(ValueError, match="kernel must be one of"):
        HeterogeneousAdoptionDiD(kernel="gaussian").fit(df, **ARGS)
    with pytest.raises(ValueError, match="never positive"):
        HeterogeneousAdoptionDiD().fit(df.assign(d=0.0), **ARGS)


def test_qug_statistic():
    assert qug_test([0.0, 0.2, 0.5, 0.9]) == pytest.approx((0.2 / 0.3, 1 / (1 + 0.2 / 0.3)))
    t, p = qug_test([0.4, 0.4, 0.7])
    assert t == np.inf and p == 0.0
    assert np.isnan(qug_test([0.0, 0.3])[0])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0))
def test_row_order_and_weight_scale_invariance(seed, scale):
    df, _, _ = two_periods(n=250, seed=seed)
    design = SurveyDesign(weights="w", strata="stratum", psu="psu")
    est = HeterogeneousAdoptionDiD(design="continuous_at_zero")
    base = est.fit(df, survey_design=design, **ARGS)
    other = df.sample(frac=1.0, random_state=seed % 1000).assign(w=lambda d: d["w"] * scale)
    res = est.fit(other, survey_design=design, **ARGS)
    assert res.att == pytest.approx(base.att, rel=1e-9)
    assert res.se == pytest.approx(base.se, rel=1e-8)


def test_input_unchanged_summary_and_read_only():
    df, _, _ = two_periods()
    before = df.copy()
    res = HeterogeneousAdoptionDiD().fit(df, **ARGS)
    pd.testing.assert_frame_equal(df, before)
    assert "weighted average slope" in res.summary()
    with pytest.raises(AttributeError):
        res.att = 0.0
    res._balance_adjustment = "provenance"
    assert res.to_dataframe().shape[0] == 1 and "HeterogeneousAdoptionResults" in repr(res)


def test_trends_lin_is_an_outcome_transform():
    """trends_lin: effect l on Y_{F-1+l} - Y_{F-1} - l (Y_{F-1} - Y_{F-2}); placebo l on
    Y_{F-2-l} - Y_{F-2} + l (Y_{F-1} - Y_{F-2}); each equals a two-period fit of that
    change on the dose."""
    df = event_panel(periods=7, adoption=5)
    res = HeterogeneousAdoptionDiD().fit(df, effects=2, placebo=2, trends_lin=True, **ARGS)
    wide_y = df.pivot(index="unit", columns="t", values="y")
    wide_d = df.pivot(index="unit", columns="t", values="d")
    slope = wide_y[4] - wide_y[3]
    es = res.event_study_effects.set_index("event_time")
    for event_time, change, dose in (
            (1, wide_y[6] - wide_y[4] - 2 * slope, wide_d[6]),
            (-3, wide_y[1] - wide_y[3] + 2 * slope, wide_d[6])):
        fit = local_linear_boundary(dose.to_numpy(), change.to_numpy(), 0.0)
        assert es.loc[event_time, "estimate"] == pytest.approx(
            (change.mean() - fit.mu_us) / dose.mean(), rel=1e-12)
    with pytest.raises(ValueError, match="two periods before adoption"):
        HeterogeneousAdoptionDiD().fit(event_panel(adoption=2), trends_lin=True, **ARGS)


def test_zero_weight_units_do_not_choose_the_design():
    df, dose, _ = two_periods(n=300, seed=6)
    lowest = np.argsort(dose)[:10]
    df = df.assign(w=np.where(df["unit"].isin(lowest), 0.0, df["w"]))
    design = SurveyDesign(weights="w")
    with pytest.warns(UserWarning):
        sub = HeterogeneousAdoptionDiD().fit(df[df["w"] > 0], survey_design=design, **ARGS)
    with pytest.warns(UserWarning):
        dom = HeterogeneousAdoptionDiD().fit(df, survey_design=design, **ARGS)
    assert dom.design == sub.design and dom.d_lower == sub.d_lower
    assert dom.att == pytest.approx(sub.att, rel=1e-12)


def test_small_samples_need_two_units_for_a_mass_point():
    df, _, _ = two_periods(n=30, shift=0.3, seed=7)
    with pytest.warns(UserWarning, match="cannot be tested"):
        res = HeterogeneousAdoptionDiD().fit(df, **ARGS)
    assert res.design == "continuous_near_d_lower"


def test_tied_doses_and_missing_adoption_rows():
    df = event_panel(n=300, periods=5, adoption=3, seed=8)
    df["d"] = np.round(df["d"], 1)
    with pytest.warns(UserWarning, match="distinct x values in the window"):
        res = HeterogeneousAdoptionDiD(design="continuous_at_zero").fit(df, effects=1, **ARGS)
    assert np.isfinite(res.att) and np.isfinite(res.se)
    df = event_panel(n=300, periods=5, adoption=3, seed=9)
    missing = df.drop(df.index[(df["unit"] < 20) & (df["t"] == 3)])
    res = HeterogeneousAdoptionDiD(design="continuous_at_zero").fit(missing, effects=2, **ARGS)
    counts = res.event_study_effects.set_index("event_time")["n_obs"]
    assert counts.loc[0] == 280 and counts.loc[1] == 300


def test_first_treat_and_design_checks():
    df = event_panel()
    df["g"] = 4
    bad = df.copy()
    bad.loc[(bad["unit"] == 5) & (bad["t"] == 6), "g"] = 5
    with pytest.raises(ValueError, match="varies within unit"):
        HeterogeneousAdoptionDiD().fit(bad, first_treat="g", **ARGS)
    with pytest.raises(ValueError, match="not observed periods"):
        HeterogeneousAdoptionDiD().fit(df.assign(g=3.5), first_treat="g", **ARGS)
    never = df.assign(g=np.where(df["unit"] < 10, 0, 4))
    with pytest.raises(ValueError, match="never treated by first_treat"):
        HeterogeneousAdoptionDiD().fit(never, first_treat="g", **ARGS)
    with pytest.raises(ValueError, match="continuous_at_zero evaluates at 0"):
        HeterogeneousAdoptionDiD(design="continuous_at_zero", d_lower=0.2).fit(df, **ARGS)
    flat, _, _ = two_periods(seed=10)
    flat["y"] = 0.0
    with pytest.raises(ValueError, match="y does not vary"):
        HeterogeneousAdoptionDiD(design="continuous_at_zero").fit(flat, **ARGS)


def test_vcov_and_influence_columns_follow_the_table():
    res = HeterogeneousAdoptionDiD().fit(event_panel(), placebo=2, **ARGS)
    assert list(res.vcov.index) == list(res.event_study_effects["event_time"])
    np.testing.assert_allclose(np.sqrt(np.diag(res.vcov)), res.event_study_effects["se"])


def test_forced_continuous_fit_on_a_mass_point_warns():
    df, _, _ = two_periods(mass=0.3, seed=11)
    with pytest.warns(UserWarning, match="exactly the lowest dose 0"):
        HeterogeneousAdoptionDiD(design="continuous_at_zero").fit(df, **ARGS)
