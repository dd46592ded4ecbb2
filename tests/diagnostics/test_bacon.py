"""Goodman-Bacon decomposition: weights sum to one, reproduce TWFE, and each 2x2 is the DiD
of its two groups over its window (checked by brute force)."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

matplotlib.use("Agg")


def staggered_panel(seed=3, n_units=90, n_t=8, always=True):
    """Cohorts 3, 5, 7, never treated and (optionally) always treated; dynamic effects."""
    rng = np.random.default_rng(seed)
    cohorts = [0, 3, 5, 7] + ([1] if always else [])
    g = rng.choice(cohorts, size=n_units)
    unit, t = np.repeat(np.arange(n_units), n_t), np.tile(np.arange(1, n_t + 1), n_units)
    gg = g[unit]
    treated = (gg > 0) & (t >= gg)
    effect = np.where(treated, 1.0 + 0.3 * (t - gg), 0.0)
    y = rng.normal(size=n_units)[unit] + 0.2 * t + effect + rng.normal(scale=0.3, size=t.size)
    w = rng.uniform(0.5, 3.0, n_units)[unit]
    return pd.DataFrame({"unit": unit, "time": t, "y": y, "g": gg, "d": treated.astype(int),
                         "w": w})


KW = dict(outcome="y", unit="unit", time="time", first_treat="g")


def twfe(df, weights=None):
    design = None if weights is None else dd.SurveyDesign(weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return dd.TWFE().fit(df, outcome="y", treatment="d", unit="unit", time="time",
                             survey_design=design).att


@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("always", [False, True])
def test_weights_sum_to_one_and_reproduce_twfe(weights, always):
    df = staggered_panel(always=always)
    design = None if weights is None else dd.SurveyDesign(weights=weights)
    res = dd.Bacon().fit(df, survey_design=design, **KW)
    table = res.comparisons
    assert table["weight"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (table["weight"] >= 0).all()
    assert res.twfe_estimate == pytest.approx(twfe(df, weights), abs=1e-10)
    assert float(table["weight"] @ table["estimate"]) == pytest.approx(res.twfe_estimate,
                                                                       abs=1e-10)
    assert abs(res.decomposition_error) < 1e-10
    assert ("later_vs_always_treated" in set(table["comparison_type"])) == always
    approx = dd.Bacon(weights="approximate").fit(df, survey_design=design, **KW)
    np.testing.assert_allclose(approx.comparisons["weight"], table["weight"], rtol=1e-12)


def _did(df, treated, control, pre, post):
    """The 2x2 DiD of group means: (treated post - pre) - (control post - pre)."""
    def change(group):
        part = df[df["g"] == group]
        means = part.groupby("time")["y"].mean()
        return means.loc[post].mean() - means.loc[pre].mean()
    return change(treated) - change(control)


def test_each_comparison_is_the_2x2_of_its_groups_and_window():
    df = staggered_panel(always=True)
    res = dd.Bacon().fit(df, **KW)
    times = np.arange(1, 9)
    for row in res.comparisons.itertuples(index=False):
        k, c = row.treated_group, row.control_group
        if row.comparison_type == "treated_vs_never":
            pre, post = times[times < k], times[times >= k]
        elif row.comparison_type == "earlier_vs_later":
            pre, post = times[times < k], times[(times >= k) & (times < c)]
        else:  # later vs an earlier (or always) treated control: after the control started
            pre, post = times[(times >= c) & (times < k)], times[times >= k]
        assert row.estimate == pytest.approx(_did(df, k, c, pre, post), abs=1e-12), row


def test_goodman_bacon_weights_by_formula_for_two_groups_and_never_treated():
    """Theorem 1 by hand: with one timing group k and never treated U, s_kU = 1."""
    df = staggered_panel(always=False)
    one = df[df["g"].isin([0, 5])]
    res = dd.Bacon().fit(one, **KW)
    assert list(res.comparisons["comparison_type"]) == ["treated_vs_never"]
    assert res.comparisons["weight"].iloc[0] == pytest.approx(1.0, abs=1e-12)


def test_results_surface_and_plot():
    res = dd.Bacon().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
                         first_treat="first.treat")
    by = res.by_type.set_index("comparison_type")
    assert by["weight"].sum() == pytest.approx(1.0)
    assert res.n_timing_groups == 3 and res.n_never_treated == 309 and res.n_obs == 2500
    assert "TWFE estimate" in res.summary() and "comparisons=9" in repr(res)
    ax = res.plot()
    assert ax.get_xlabel() == "Weight" and len(ax.collections) == 3


def test_bad_input():
    df = staggered_panel(always=False)
    with pytest.raises(ValueError, match="weights must be one of"):
        dd.Bacon(weights="rough").fit(df, **KW)
    with pytest.raises(ValueError, match="does not vary"):
        dd.Bacon().fit(df.assign(g=0), **KW)
    with pytest.raises(ValueError, match="first_treat column 'g' varies within unit"):
        dd.Bacon().fit(df.assign(g=np.where(df["time"] == 8, 3, df["g"])), **KW)
    with pytest.raises(ValueError, match="pweight"):
        dd.Bacon().fit(df, survey_design=dd.SurveyDesign(weights="w", weight_type="aweight"),
                       **KW)


@pytest.mark.parametrize("weights", [None, "w"])
def test_twfe_results_decompose_into_the_same_comparisons(weights):
    df = staggered_panel(always=True)
    design = None if weights is None else dd.SurveyDesign(weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = dd.TWFE().fit(df, outcome="y", treatment="d", unit="unit", time="time",
                            survey_design=design)
    bacon = res.decompose()
    direct = dd.Bacon().fit(df, survey_design=design, **KW)
    assert bacon.twfe_estimate == pytest.approx(res.att, abs=1e-10)
    np.testing.assert_allclose(bacon.comparisons["weight"], direct.comparisons["weight"],
                               rtol=1e-12)
    np.testing.assert_allclose(bacon.comparisons["estimate"], direct.comparisons["estimate"],
                               rtol=1e-12)
    switching = df.assign(d=np.where((df["g"] == 3) & (df["time"] == 8), 0, df["d"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        off = dd.TWFE().fit(switching, outcome="y", treatment="d", unit="unit", time="time")
    with pytest.raises(ValueError, match="switches on once"):
        off.decompose()
    with pytest.raises(ValueError, match="TwoWayFixedEffects results"):
        dd.DiD().fit(df.assign(post=(df["time"] >= 5).astype(int),
                               ever=(df["g"] > 0).astype(int)),
                     outcome="y", treatment="ever", time="post").decompose()


def test_decompose_refuses_what_it_cannot_decompose_and_handles_design_columns():
    df = staggered_panel(always=False).assign(x=lambda d: np.sin(d["time"] * d["unit"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = dd.TWFE().fit
        with_x = fit(df, outcome="y", treatment="d", unit="unit", time="time", covariates=["x"])
        unbalanced = fit(df.iloc[3:], outcome="y", treatment="d", unit="unit", time="time")
        text_time = fit(df.assign(time=df["time"].map(lambda t: f"p{t:02d}")), outcome="y",
                        treatment="d", unit="unit", time="time")
        by_unit_psu = fit(df, outcome="y", treatment="d", unit="unit", time="time",
                          survey_design=dd.SurveyDesign(weights="w", psu="unit"))
    for res, message in ((with_x, "without covariates"), (unbalanced, "balanced panel"),
                         (text_time, "numeric periods")):
        with pytest.raises(ValueError, match=message):
            res.decompose()
    assert by_unit_psu.decompose().twfe_estimate == pytest.approx(by_unit_psu.att, abs=1e-10)


def test_units_without_weight_are_left_out_as_in_weighted_twfe():
    df = staggered_panel(always=False)
    never = df.loc[df["g"] == 0, "unit"].unique()
    zero = df.assign(w=np.where(df["unit"].isin(never), 0.0, df["w"]))
    design = dd.SurveyDesign(weights="w")
    res = dd.Bacon().fit(zero, survey_design=design, **KW)
    assert "treated_vs_never" not in set(res.comparisons["comparison_type"])
    assert res.twfe_estimate == pytest.approx(twfe(zero, "w"), abs=1e-10)
