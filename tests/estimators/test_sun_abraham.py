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


def _did_cells(df, weights=None):
    """Hand-built cells of a balanced panel with never-treated controls: delta_ge is the
    (weighted) DiD of cohort g and the never treated between g + e and g - 1, linearized by
    z_i = 1{G_i = g} (D_i - Dbar_g) / N_g - 1{G_i = 0} (D_i - Dbar_0) / N_0 (per unit weight:
    the design multiplies by w_i), D_i = y_{i,g+e} - y_{i,g-1}, N_g the weighted cohort size."""
    wide = df.pivot(index="unit", columns="time", values="y")
    first = df.groupby("unit").first().loc[wide.index]
    g = first["g"].to_numpy()
    w = np.ones(g.size) if weights is None else first[weights].to_numpy()
    periods, y = list(wide.columns), wide.to_numpy()
    cells = {}
    for gg in sorted(set(g[g > 0])):
        for t in periods:
            if t == gg - 1:
                continue
            d = y[:, periods.index(t)] - y[:, periods.index(gg - 1)]
            mine, never = g == gg, g == 0
            m_g = np.average(d[mine], weights=w[mine])
            m_0 = np.average(d[never], weights=w[never])
            z = (np.where(mine, d - m_g, 0.0) / w[mine].sum()
                 - np.where(never, d - m_0, 0.0) / w[never].sum())
            cells[int(gg), int(t - gg)] = (m_g - m_0, z)
    return cells, g, w, first


def _linearized(cells, g, w, members, small_sample=1.0):
    """theta = sum_c N_c delta_c / sum_c N_c over ``members`` and its per-unit influence
    (before the weight w_i): fixed-weight part sqrt(small_sample) sum_c N_c / M z_c, and with
    the cohort masses estimated + sum_c 1{G_i = g_c} (delta_c - theta) / M."""
    size = np.array([w[g == gg].sum() for gg, _ in members])
    total = size.sum()
    theta = sum(s * cells[c][0] for s, c in zip(size, members)) / total
    fixed = np.sqrt(small_sample) * sum(s / total * cells[c][1] for s, c in zip(size, members))
    term = sum(np.where(g == c[0], cells[c][0] - theta, 0.0) / total for c in members)
    return theta, fixed, fixed + term


def _members(cells, key):
    return [c for c in cells if (c[1] >= 0 if key == "overall" else c[1] == key)]


def test_estimated_weights_se_by_hand_on_mpdta():
    """CR1 by unit: V = G/(G-1) sum_i (z_i - zbar)^2 of the unit influence, the coefficient
    part scaled by the regression factor (n-1)/(n-K), K = 12 cells + 500 units + 5 years - 1.
    'fixed' is that without the masses' term; both match the package to 1e-12."""
    d = dd.load_mpdta().rename(columns={"countyreal": "unit", "year": "time",
                                        "first.treat": "g", "lemp": "y"})
    res = {ws: dd.SunAbraham(weights_se=ws).fit(d, **KW) for ws in ("fixed", "estimated")}
    cells, g, w, _ = _did_cells(d)
    factor = (2500 - 1) / (2500 - 516)

    def var(z):
        return 500 / 499 * ((z - z.mean()) ** 2).sum()
    for key in ("overall", -4, -3, -2, 0, 1, 2, 3):
        theta, fixed, full = _linearized(cells, g, w, _members(cells, key), factor)
        for ws, z in (("fixed", fixed), ("estimated", full)):
            r = res[ws]
            est, se = ((r.att, r.se) if key == "overall" else
                       (r.event_study_effects[key]["effect"], r.event_study_effects[key]["se"]))
            assert est == pytest.approx(theta, abs=1e-12)
            assert se == pytest.approx(np.sqrt(var(z)), rel=1e-10), (key, ws)
    # the numbers: 0.013197 -> 0.013454 (overall), 0.018873 -> 0.018957 (e = 1); one cohort
    # at e = 2, 3: nothing to estimate in the weights, the same SE
    assert res["fixed"].se == pytest.approx(0.0131966137, rel=1e-8)
    assert res["estimated"].se == pytest.approx(0.0134535148, rel=1e-8)
    es_f, es_e = res["fixed"].event_study_effects, res["estimated"].event_study_effects
    assert es_e[2]["se"] == pytest.approx(es_f[2]["se"], rel=1e-12)
    pd.testing.assert_frame_equal(res["fixed"].cohort_effects, res["estimated"].cohort_effects)


def test_estimated_weights_se_by_hand_under_a_stratified_cluster_design():
    """Taylor linearization of PSU totals of w_i z_i within strata (no small-sample factor)."""
    df = panel(n_units=150)
    df["psu"] = df["unit"] % 24
    df["stratum"] = df["psu"] % 3
    design = dd.SurveyDesign(weights="w", strata="stratum", psu="psu")
    res = {ws: dd.SunAbraham(weights_se=ws).fit(df, survey_design=design, **KW)
           for ws in ("fixed", "estimated")}
    cells, g, w, first = _did_cells(df, "w")
    psu, stratum = first["psu"].to_numpy(), first["stratum"].to_numpy()

    def tsl(z):
        totals = np.bincount(psu, weights=w * z)
        strata = np.array([stratum[psu == j][0] for j in range(totals.size)])
        return sum(n / (n - 1) * ((t - t.mean()) ** 2).sum()
                   for t in (totals[strata == h] for h in np.unique(strata)) for n in [t.size])
    for key in ("overall", -4, -2, 0, 1, 2):
        theta, fixed, full = _linearized(cells, g, w, _members(cells, key))
        for ws, z in (("fixed", fixed), ("estimated", full)):
            r = res[ws]
            se = r.se if key == "overall" else r.event_study_effects[key]["se"]
            assert se == pytest.approx(np.sqrt(tsl(z)), rel=1e-9), (key, ws)
    assert res["estimated"].df == res["fixed"].df == 24 - 3


def test_replicates_reestimate_shares_and_coefficients():
    """JK1: the estimated-weights variance is (R-1)/R sum_r (theta_r - mean)^2 of the
    estimator refitted with each replicate's weights (shares and coefficients together)."""
    df = panel(n_units=90)
    df["psu"] = df["unit"] % 8
    rep, design = dd.as_replicate_design(df, dd.SurveyDesign(weights="w", psu="psu"), "JK1")
    res = dd.SunAbraham().fit(rep, survey_design=design, **KW)
    fixed = dd.SunAbraham(weights_se="fixed").fit(rep, survey_design=design, **KW)
    columns = list(design.replicate_weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [dd.SunAbraham(weights_se="fixed").fit(
            rep, survey_design=dd.SurveyDesign(weights=c), **KW) for c in columns]
    n_rep = len(columns)
    for key in ("overall", 0, 1):
        thetas = np.array([f.att if key == "overall" else f.event_study_effects[key]["effect"]
                           for f in fits])
        want = np.sqrt((n_rep - 1) / n_rep * ((thetas - thetas.mean()) ** 2).sum())
        se = res.se if key == "overall" else res.event_study_effects[key]["se"]
        se_fixed = fixed.se if key == "overall" else fixed.event_study_effects[key]["se"]
        assert se == pytest.approx(want, rel=1e-9), key
        assert abs(se - se_fixed) > 1e-4 * se  # the fixed-weight SE is another number
    assert res.df == fixed.df == n_rep - 1


def test_weights_se_options_and_other_variance_paths():
    df = panel()
    df["cl"] = df["unit"] % 17
    with pytest.raises(ValueError, match="weights_se must be one of"):
        dd.SunAbraham(weights_se="delta").fit(df, **KW)
    # fixed: the contrasts of the coefficient covariance, c' V c
    res = dd.SunAbraham(weights_se="fixed", cluster="cl").fit(df, **KW)
    c = np.array([[res.cohort_weights[e].get(g, 0.0) if ee == e else 0.0
                   for g, ee in res.vcov.index] for e in res.event_study_vcov.index])
    np.testing.assert_allclose(res.event_study_vcov.to_numpy(),
                               c @ res.vcov.to_numpy() @ c.T, rtol=1e-12, atol=1e-15)
    # classical and hc2 (one-way) add the same masses' term to their own fixed-weight variance
    gaps = []
    for vcov_type in ("classical", "hc2"):
        fit = {ws: dd.SunAbraham(vcov_type=vcov_type, weights_se=ws).fit(df, **KW)
               for ws in ("fixed", "estimated")}
        gaps.append(fit["estimated"].se ** 2 - fit["fixed"].se ** 2)
    assert gaps[0] > 0 and gaps[0] == pytest.approx(gaps[1], rel=1e-9)
    # the wild bootstrap holds the regressors (so the shares) fixed: its p-value and
    # interval do not change, the reported analytic SE does
    wild = {ws: dd.SunAbraham(cluster="cl", inference="wild_bootstrap", n_bootstrap=99,
                              seed=3, weights_se=ws).fit(df, **KW)
            for ws in ("fixed", "estimated")}
    assert wild["estimated"].p_value == wild["fixed"].p_value
    assert wild["estimated"].conf_int == wild["fixed"].conf_int
    assert abs(wild["estimated"].se - wild["fixed"].se) > 1e-4
