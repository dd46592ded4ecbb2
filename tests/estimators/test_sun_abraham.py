"""SunAbraham: the saturated regression by hand, the interaction weights, controls, errors."""

import warnings

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

KW = dict(outcome="y", unit="unit", time="time", first_treat="g")


def panel(seed=4, n_units=120, n_t=7, never=True):
    rng = np.random.default_rng(seed)
    cohorts = [3, 5, 6] + ([0] if never else [])
    g = rng.choice(cohorts, size=n_units)
    unit, t = np.repeat(np.arange(n_units), n_t), np.tile(np.arange(1, n_t + 1), n_units)
    gg = g[unit]
    treated = (gg > 0) & (t >= gg)
    effect = np.where(treated, 1.0 + 0.4 * (t - gg) + 0.3 * (gg == 5), 0.0)
    y = rng.normal(size=n_units)[unit] + 0.3 * t + effect + rng.normal(scale=0.5, size=t.size)
    return pd.DataFrame({"unit": unit, "time": t, "g": gg, "y": y,
                         "w": rng.uniform(0.5, 2.0, n_units)[unit]})


def saturated(df, design=None):
    """delta_ge from an explicit dummy regression through DifferenceInDifferences' core."""
    df = df.copy()
    e = df["time"] - df["g"]
    names = []
    for g in sorted(df.loc[df["g"] > 0, "g"].unique()):
        for ev in sorted(e[df["g"] == g].unique()):
            if ev == -1:
                continue
            name = f"d_{g}_{ev}"
            df[name] = ((df["g"] == g) & (e == ev)).astype(float)
            names.append((name, g, ev))
    fit = dd.TWFE(vcov_type="hc1").fit  # any regression: compare coefficients only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = fit(df.assign(d=df[names[0][0]]), outcome="y", treatment="d", unit="unit",
                  time="time", covariates=[n for n, _, _ in names[1:]], survey_design=design)
    coef = res.coefficients
    return {(g, ev): float(coef.iloc[0] if i == 0 else coef[n])
            for i, (n, g, ev) in enumerate(names)}


@pytest.mark.parametrize("weights", [None, "w"])
def test_cohort_effects_are_the_saturated_regression_and_weights_are_cohort_shares(weights):
    df = panel()
    design = None if weights is None else dd.SurveyDesign(weights=weights)
    res = dd.SunAbraham().fit(df, survey_design=design, **KW)
    brute = saturated(df, design)
    cohort = res.cohort_effects
    for row in cohort.itertuples(index=False):
        assert row.estimate == pytest.approx(brute[(row.group, row.event_time)], abs=1e-10)
    unit = df.groupby("unit").first()
    w = np.ones(len(unit)) if weights is None else unit["w"].to_numpy()
    for e, shares in res.cohort_weights.items():
        present = [g for g in (3, 5, 6) if (1 <= g + e <= 7)]
        mass = {g: w[unit["g"].to_numpy() == g].sum() for g in present}
        for g in present:
            assert shares[g] == pytest.approx(mass[g] / sum(mass.values()), rel=1e-12)
        beta = sum(shares[g] * brute[(g, e)] for g in present)
        table = res.event_study_effects
        assert table[e]["effect"] == pytest.approx(beta, abs=1e-10)
    post = cohort[cohort["event_time"] >= 0]
    cell_mass = [w[unit["g"].to_numpy() == g].sum() for g in post["group"]]
    assert res.att == pytest.approx(np.average(post["estimate"], weights=cell_mass), abs=1e-10)
    assert -1 not in set(res.event_study_effects["event_time"])


def test_last_treated_controls_and_errors():
    df = panel(never=False)
    with pytest.raises(ValueError, match="no never-treated units.*last_treated"):
        dd.SunAbraham().fit(df, **KW)
    res = dd.SunAbraham(control_group="last_treated").fit(df, **KW)
    assert set(res.cohort_effects["group"]) == {3, 5}  # cohort 6 is the control
    assert res.event_study_effects["event_time"].max() == 2  # periods before 6: 3 + 2 = 5
    with pytest.raises(ValueError, match="no unit is treated"):
        dd.SunAbraham().fit(df.assign(g=0), **KW)
    with pytest.raises(ValueError, match="control_group must be one of"):
        dd.SunAbraham(control_group="strict").fit(df, **KW)


def test_summary_levels_and_3x_reading():
    res = dd.SA().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
                      first_treat="first.treat")
    assert res.levels == ("event_study", "cohort", "overall")
    assert res.event_study_effects[0]["effect"] == pytest.approx(-0.0199318167892593,
                                                                 abs=1e-12)
    assert "Sun-Abraham" in res.summary() and res.cohort_weights[2] == {2004: 1.0}


def test_cohort_effects_equal_callaway_santanna_with_a_universal_base_period():
    """Balanced panel, never-treated controls, no covariates: each delta_ge is the DiD of
    cohort g and the never treated between g + e and g - 1 (CS, universal base period)."""
    kw = dict(outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")
    d = dd.load_mpdta()
    sa = dd.SA().fit(d, **kw).cohort_effects.set_index(["group", "event_time"])["estimate"]
    cs = dd.CS(base_period="universal", estimation_method="reg").fit(d, **kw)
    gt = cs.group_time_effects.assign(e=lambda t: t["time"] - t["group"])
    gt = gt.set_index(["group", "e"])["estimate"]
    assert len(sa) == 12
    for key, value in sa.items():
        assert value == pytest.approx(gt[key], abs=1e-12)


def test_relative_time_counts_observed_periods_whatever_their_spacing():
    df = panel()
    base = dd.SunAbraham().fit(df, **KW)
    gapped = df.assign(time=2000 + 2 * df["time"], g=np.where(df["g"] > 0, 2000 + 2 * df["g"], 0))
    res = dd.SunAbraham().fit(gapped, **KW)
    assert res.att == pytest.approx(base.att, abs=1e-10)
    assert list(res.event_study_effects["event_time"]) == [
        2 * e for e in base.event_study_effects["event_time"]]
    np.testing.assert_allclose(res.event_study_effects["estimate"],
                               base.event_study_effects["estimate"], atol=1e-10)


def test_a_cohort_without_its_reference_period_is_refused():
    df = panel()
    gap = df[~((df["g"] == 5) & (df["time"] == 4))]
    with pytest.raises(ValueError, match=r"cohort\(s\) \[5\] of 'g' have no observation in "
                                         r"their reference period"):
        dd.SunAbraham().fit(gap, **KW)


def test_3x_settings_not_yet_treated_and_n_bootstrap():
    df = panel()
    same = dd.SunAbraham(control_group="not_yet_treated").fit(df, **KW)
    assert same.att == dd.SunAbraham().fit(df, **KW).att
    with pytest.warns(UserWarning, match="n_bootstrap is used by inference='wild_bootstrap'"):
        dd.SunAbraham(n_bootstrap=199).fit(df, **KW)


def test_a_replicate_that_drops_a_cohort_is_left_out_only_for_that_cohort():
    df = panel()
    cohort = df.groupby("unit")["g"].first().to_numpy()
    psu = np.where(cohort == 6, 0, 1 + np.arange(cohort.size) % 9)  # cohort 6 in one PSU
    rep, design = dd.as_replicate_design(df.assign(psu=psu[df["unit"]]),
                                         dd.SurveyDesign(weights="w", psu="psu"), "JK1")
    with pytest.warns(UserWarning, match=r"left out of the variance of those estimates "
                                         r"\(6: 1 of 10\)"):
        res = dd.SunAbraham().fit(rep, survey_design=design, **KW)
    assert np.isfinite(res.event_study_effects["se"]).all() and np.isfinite(res.se)
    assert res.df == 8.0  # the smallest group's replicate df (9 usable replicates - 1)
