"""ChaisemartinDHaultfoeuille: with a binary absorbing treatment the effects are CS's
not-yet-treated event study from the period before treatment; switches on and off and a
non-binary treatment against a by-hand loop over switchers (the paper's definitions);
normalised effects and the average total effect; invariants; errors. Parity with the
authors' port of did_multiplegt_dyn: tests/parity/test_dcdh_multiplegt.py."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel

KW = dict(outcome="y", unit="unit", time="time", treatment="d")


@pytest.fixture(scope="module")
def panel():
    return example_panel()


def switching_panel(seed=0, n=120, T=7, levels=(0, 1)):
    """Groups start at a level and switch once (up or down) or never."""
    rng = np.random.default_rng(seed)
    start = rng.choice(levels, n)
    switch_at = rng.choice(np.arange(2, T + 2), n)  # T + 1: never
    new = np.array([rng.choice([v for v in levels if v != s]) for s in start])
    rows = []
    for g in range(n):
        alpha = rng.normal()
        for t in range(1, T + 1):
            d = new[g] if t >= switch_at[g] else start[g]
            exposure = max(0, t - switch_at[g] + 1)
            y = alpha + 0.3 * t + (d - start[g]) * (1 + 0.2 * exposure) + rng.normal()
            rows.append((g, t, float(d), y))
    return pd.DataFrame(rows, columns=["unit", "time", "d", "y"])


def by_hand(data, l, placebo=False, doses=False, same=None, never=False, lags=0):
    """DID_l (or placebo l) from the definitions, one switcher at a time; ``same``: only
    the switchers reaching effect ``same``; ``never``: only never-switchers as controls;
    ``lags``: only the switchers observed ``lags`` periods before ``F_g - 1``."""
    Y = data.pivot(index="unit", columns="time", values="y").to_numpy()
    D = data.pivot(index="unit", columns="time", values="d").to_numpy()
    n, T = Y.shape
    F = np.array([next((t for t in range(T) if D[g, t] != D[g, 0]), T) for g in range(n)])
    terms, level, cumulated = [], [], []
    for g in range(n):
        if F[g] == T:
            continue
        end, ref = F[g] - 1 + l, F[g] - 1
        start = F[g] - 1 - l
        cell = [h for h in range(n) if D[h, 0] == D[g, 0]]
        reach = F[g] - 1 + (same or l)
        if reach > max(F[h] for h in cell) - 1 or reach > T - 1 or (placebo and start < 0):
            continue
        if F[g] - 1 - lags < 0:
            continue
        controls = [h for h in cell if F[h] > end and (F[h] == T or not never)]
        if not controls:
            continue
        a = start if placebo else end
        change = Y[g, a] - Y[g, ref] - np.mean([Y[h, a] - Y[h, ref] for h in controls])
        terms.append(np.sign(D[g, F[g]] - D[g, 0]) * change)
        level.append(abs(D[g, end] - D[g, 0]))
        cumulated.append(np.abs(D[g, F[g]:end + 1] - D[g, 0]).sum())
    if doses:
        return np.mean(terms), len(terms), np.mean(level), np.mean(cumulated)
    return np.mean(terms), len(terms)


def test_binary_absorbing_is_the_not_yet_treated_event_study(panel):
    res = dd.DCDH().fit(panel, L_max=3, **KW)
    cs = dd.CallawaySantAnna(control_group="not_yet_treated", base_period="universal").fit(
        panel, outcome="y", unit="unit", time="time", first_treat="first_treat")
    es = cs.event_study_effects.set_index("event_time")["estimate"]
    ours = res.event_study_effects.set_index("event_time")["estimate"]
    for l in (1, 2, 3):
        assert ours[l] == pytest.approx(es[l - 1], abs=1e-12)
    assert ours[-1] == pytest.approx(es[-2], abs=1e-12)
    assert res.att == pytest.approx(es[0], abs=1e-12)


@pytest.mark.parametrize("levels", [(0, 1), (0, 1, 2, 3)])
def test_switches_both_ways_match_the_definitions(levels):
    data = switching_panel(levels=levels)
    res = dd.DCDH().fit(data, L_max=3, **KW)
    table = res.event_study_effects.set_index("event_time")
    for l in (1, 2, 3):
        value, count = by_hand(data, l)
        assert table.loc[l, "estimate"] == pytest.approx(value, abs=1e-12)
        assert table.loc[l, "n_switchers"] == count
    for l in res.placebo_event_study["event_time"].abs():
        value, count = by_hand(data, l, placebo=True)
        assert table.loc[-l, "estimate"] == pytest.approx(value, abs=1e-12)


def test_normalised_and_average_total_effect():
    """Normalised: DID_l over the switchers' mean cumulated |D - D_1|; the average total
    effect: sum_l N_l DID_l over sum_l N_l mean |D_{F-1+l} - D_1| (per unit of treatment)."""
    data = switching_panel(levels=(0, 1, 2, 3), seed=2)
    res = dd.DCDH().fit(data, L_max=2, **KW)
    norm = res.normalized_effects.set_index("event_time")
    num = den = 0.0
    for l in (1, 2):
        value, count, level, cumulated = by_hand(data, l, doses=True)
        assert norm.loc[l, "dose"] == pytest.approx(cumulated, rel=1e-12)
        assert norm.loc[l, "estimate"] == pytest.approx(value / cumulated, rel=1e-12)
        num += count * value
        den += count * level
    ate = res.average_total_effect
    assert ate["estimate"].iloc[0] == pytest.approx(num / den, rel=1e-12)
    # its standard error includes the covariance between horizons: the variance of the
    # combination of the horizons' influence values, not a sum of variances
    effects = res.event_study_effects.set_index("event_time").loc[[1, 2]]
    independent = np.sqrt(((effects["n_switchers"] * effects["se"]) ** 2).sum()) / den
    assert abs(ate["se"].iloc[0] / independent - 1) > 0.05


def test_invariants_and_errors(panel):
    before = panel.copy()
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    a = dd.DCDH().fit(panel, L_max=2, survey_design=design, **KW)
    pd.testing.assert_frame_equal(panel, before)
    b = dd.DCDH().fit(panel.assign(weight=panel["weight"] * 3).sample(frac=1, random_state=1),
                      L_max=2, survey_design=design, **KW)
    np.testing.assert_allclose(a.event_study_effects["estimate"],
                               b.event_study_effects["estimate"], atol=1e-12)
    np.testing.assert_allclose(a.event_study_effects["se"], b.event_study_effects["se"],
                               rtol=1e-10)
    with pytest.raises(ValueError, match="balanced"):
        dd.DCDH().fit(panel.iloc[1:], **KW)
    with pytest.raises(ValueError, match="L_max"):
        dd.DCDH().fit(panel, L_max=0, **KW)
    with pytest.raises(ValueError, match="no group switches"):
        dd.DCDH().fit(panel.assign(d=0.0), **KW)


def test_groups_going_both_above_and_below_are_dropped():
    data = switching_panel(levels=(0, 1, 2), seed=4)
    wobbly = data["unit"].isin([0, 1])
    # groups 0 and 1 start at 1, go to 2 then to 0
    data.loc[wobbly, "d"] = np.where(data.loc[wobbly, "time"] < 3, 1.0,
                                     np.where(data.loc[wobbly, "time"] < 5, 2.0, 0.0))
    with pytest.warns(UserWarning, match="dropped 2 group"):
        res = dd.DCDH().fit(data, **KW)
    kept = dd.DCDH().fit(data[~wobbly], **KW)
    assert res.att == pytest.approx(kept.att, abs=1e-12)
    both = dd.DCDH(drop_larger_lower=False).fit(data, **KW)  # kept when asked
    assert both.n_groups == kept.n_groups + 2


def test_3x_group_keyword(panel):
    with pytest.warns(FutureWarning, match="group"):
        old = dd.ChaisemartinDHaultfoeuille().fit(panel, outcome="y", group="unit", time="time",
                                                  treatment="d")
    assert old.att == dd.DCDH().fit(panel, **KW).att
    assert type(old).__name__ == "ChaisemartinDHaultfoeuilleResults"
    with pytest.raises(ValueError, match="not both"):
        dd.DCDH().fit(panel, group="unit", **KW)


def test_joiners_and_leavers(panel):
    """DID_1 is the switcher-weighted average of the joiners' and the leavers' DID_1 (the
    leavers' signed as an effect of treatment); with a staggered binary treatment there
    are no leavers."""
    data = switching_panel()
    res = dd.DCDH().fit(data, **KW)
    table = res.joiners_leavers.set_index("term")
    n = table["n_switchers"]
    assert n.sum() == res.event_study_effects.set_index("event_time").loc[1, "n_switchers"]
    assert res.att == pytest.approx((n * table["estimate"]).sum() / n.sum(), abs=1e-12)
    assert res.leavers_att > 0 and res.joiners_available and res.leavers_available
    lo, hi = res.leavers_conf_int
    assert lo < res.leavers_att < hi and res.leavers_se > 0
    staggered = dd.DCDH().fit(panel, **KW)
    assert staggered.joiners_att == pytest.approx(staggered.att, abs=1e-12)
    assert np.isnan(staggered.leavers_att) and not staggered.leavers_available


def test_bootstrap_uniform_band_over_the_effects(panel):
    res = dd.DCDH(n_bootstrap=199, seed=3).fit(panel, L_max=3, **KW)
    table = res.event_study_effects.set_index("event_time")
    effects = table.loc[[1, 2, 3]]
    assert (effects["cband_low"] < effects["conf_low"]).all()
    assert (effects["cband_high"] > effects["conf_high"]).all()
    assert table.loc[[-1, -2], "cband_low"].isna().all()
    plain = dd.DCDH(n_bootstrap=199, seed=3, cband=False).fit(panel, L_max=3, **KW)
    assert "cband_low" not in plain.event_study_effects


def test_without_placebos(panel):
    res = dd.DCDH(placebo=False).fit(panel, L_max=2, **KW)
    assert res.event_study_effects["event_time"].tolist() == [1, 2]
    assert res.placebo_event_study.empty and len(res.normalized_effects) == 2


def covariate_panel(seed=5):
    data = switching_panel(seed=seed, n=90, T=6)
    rng = np.random.default_rng(seed)
    data["x"] = rng.normal(size=len(data)) + 0.1 * data["time"]
    data["y"] = data["y"] + 0.7 * data["x"]
    data["region"] = data["unit"] % 2
    data["weight"] = 1.0 + (data["unit"] % 3)
    data["stratum"] = (data["unit"] // 3) % 2
    data["psu"] = data["unit"] // 3
    return data


def test_controls_take_the_covariate_out():
    """With y = y0 + 0.7 x, the covariate-adjusted effects are those of y0 adjusted the
    same way: the adjustment removes the 0.7 x (theta by baseline level = 0.7 + the
    slope of y0 on x, which is 0 in expectation): checked exactly by shifting y by a
    multiple of x, which moves theta by that multiple and leaves the effects unchanged."""
    data = covariate_panel()
    kw = dict(KW, L_max=2, controls="x")
    a = dd.DCDH().fit(data, **kw)
    b = dd.DCDH().fit(data.assign(y=data["y"] + 3.0 * data["x"]), **kw)
    np.testing.assert_allclose(a.event_study_effects["estimate"],
                               b.event_study_effects["estimate"], atol=1e-10)
    np.testing.assert_allclose(a.event_study_effects["se"], b.event_study_effects["se"],
                               rtol=1e-8)
    raw = dd.DCDH().fit(data, **KW, L_max=2)
    assert abs(raw.att - a.att) > 1e-3  # the covariate mattered


def test_trends_nonparam_compares_within_cells():
    """trends_nonparam: each cell's effects as a separate fit, averaged by switchers."""
    data = covariate_panel()
    res = dd.DCDH().fit(data, **KW, trends_nonparam="region")
    parts = [dd.DCDH().fit(data[data["region"] == r], **KW) for r in (0, 1)]
    n = np.array([p.event_study_effects.set_index("event_time").loc[1, "n_switchers"]
                  for p in parts])
    assert res.att == pytest.approx(n @ [p.att for p in parts] / n.sum(), abs=1e-12)


def test_trends_lin_is_the_cumulated_differenced_effect():
    """trends_lin: DID_1 is DID_1 of the first-differenced outcome; a group-specific
    linear trend added to y leaves every effect unchanged."""
    data = covariate_panel()
    slope = np.random.default_rng(1).normal(size=data["unit"].max() + 1)
    tilted = data.assign(y=data["y"] + slope[data["unit"]] * data["time"])
    a = dd.DCDH().fit(data, **KW, L_max=2, trends_lin=True)
    b = dd.DCDH().fit(tilted, **KW, L_max=2, trends_lin=True)
    np.testing.assert_allclose(a.event_study_effects["estimate"],
                               b.event_study_effects["estimate"], atol=1e-10)
    diffed = data.sort_values(["unit", "time"]).assign(
        y=lambda f: f.groupby("unit")["y"].diff())
    wide = data.pivot(index="unit", columns="time", values="d")
    early = wide.index[wide[2] != wide[1]]  # first switching in period 2: dropped
    first = dd.DCDH().fit(diffed[(diffed["time"] > 1) & ~diffed["unit"].isin(early)], **KW)
    assert a.att == pytest.approx(first.att, abs=1e-12)
    assert np.isnan(a.average_total_effect["estimate"].iloc[0])


@pytest.mark.parametrize("design", ["tsl", "replicate", "bootstrap"])
def test_new_options_under_survey_designs(design):
    data = covariate_panel()
    kw = dict(KW, L_max=2, controls="x", trends_nonparam="region", trends_lin=True)
    est = dd.DCDH()
    if design == "tsl":
        sd = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    elif design == "replicate":
        units = data["unit"].to_numpy()
        for r in range(8):
            data[f"rep{r}"] = data["weight"] * np.where(units % 8 == r, 0.0, 8 / 7)
        sd = dd.SurveyDesign(weights="weight", replicate_weights=[f"rep{r}" for r in range(8)],
                             replicate_method="JK1")
    else:
        sd = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
        est = dd.DCDH(n_bootstrap=99, seed=1)
    res = est.fit(data, survey_design=sd, **kw)
    plain = dd.DCDH().fit(data, survey_design=dd.SurveyDesign(weights="weight"), **kw)
    np.testing.assert_allclose(res.event_study_effects["estimate"],
                               plain.event_study_effects["estimate"], atol=1e-12)
    se = res.event_study_effects["se"].to_numpy()
    assert np.isfinite(se).all() and (se > 0).all()


def test_new_option_errors():
    data = covariate_panel()
    with pytest.raises(ValueError, match="'x'.*missing"):
        dd.DCDH().fit(data.assign(x=data["x"].where(data.index != 5)), **KW, controls="x")
    with pytest.raises(ValueError, match="control 'c'"):  # time-invariant: no changes
        dd.DCDH().fit(data.assign(c=data["unit"] * 1.0), **KW, controls=["x", "c"])
    with pytest.raises(ValueError, match="control 'p'"):  # a period effect
        dd.DCDH().fit(data.assign(p=data["time"] ** 2.0), **KW, controls=["p"])
    with pytest.raises(ValueError, match="collinear"):
        dd.DCDH().fit(data.assign(x2=2 * data["x"]), **KW, controls=["x", "x2"])
    with pytest.raises(ValueError, match="trends_nonparam column 'time'.*varies"):
        dd.DCDH().fit(data, **KW, trends_nonparam="time")
    with pytest.raises(ValueError, match="'nope'"):
        dd.DCDH().fit(data, **KW, controls="nope")
    with pytest.raises(ValueError, match="trends_nonparam.*missing"):
        dd.DCDH().fit(data.assign(region=data["region"].where(data.index != 0)), **KW,
                      trends_nonparam="region")
    with pytest.raises(ValueError, match="trends_lin"):
        dd.DCDH().fit(data, **KW, trends_lin="yes")
    with pytest.warns(FutureWarning, match="covariates"):
        old = dd.DCDH().fit(data, **KW, covariates="x")
    assert old.att == dd.DCDH().fit(data, **KW, controls="x").att


@pytest.mark.parametrize("levels", [(0, 1), (0, 1, 2)])
def test_same_switchers_and_only_never_switchers_match_the_definitions(levels):
    data = switching_panel(levels=levels, seed=6)
    same = dd.DCDH(same_switchers=True).fit(data, L_max=3, **KW)
    never = dd.DCDH(only_never_switchers=True).fit(data, L_max=3, **KW)
    plain = dd.DCDH().fit(data, L_max=3, **KW)
    for res, kw in ((same, dict(same=3)), (never, dict(never=True))):
        table = res.event_study_effects.set_index("event_time")
        for l in (1, 2, 3, -1, -2, -3):
            value, count = by_hand(data, abs(l), placebo=l < 0, **kw)
            assert table.loc[l, "estimate"] == pytest.approx(value, abs=1e-12)
            assert table.loc[l, "n_switchers"] == count
    # the same switchers at every horizon, fewer than without the option at l = 1
    counts = same.event_study_effects.set_index("event_time")["n_switchers"]
    assert counts[1] == counts[2] == counts[3] < plain.event_study_effects.set_index(
        "event_time").loc[1, "n_switchers"]
    # joiners and leavers split the restricted DID_1
    n = same.joiners_leavers["n_switchers"]
    assert n.sum() == counts[1]
    assert same.att == pytest.approx((n * same.joiners_leavers["estimate"]).sum() / n.sum())
    assert abs(never.att - plain.att) > 1e-3


def test_joint_tests_use_the_covariance_between_horizons(panel):
    res = dd.DCDH(effects_equal=True).fit(panel, L_max=3, **KW)
    tests = res.joint_tests.set_index("test")
    psi = res._inference.estimate.psi
    theta = res._inference.estimate.theta
    G = psi.shape[0]
    V = G / (G - 1) * np.cov(psi[:, :3], rowvar=False, bias=True) * G
    b = theta[:3]
    assert tests.loc["effects", "statistic"] * 3 == pytest.approx(b @ np.linalg.solve(V, b),
                                                                 rel=1e-10)
    C = np.eye(3)[:2] - 1 / 3
    W = (C @ b) @ np.linalg.solve(C @ V @ C.T, C @ b)
    assert tests.loc["effects_equal", "statistic"] * 2 == pytest.approx(W, rel=1e-10)
    # independent horizons would give another statistic
    Vd = np.diag(np.diag(C @ V @ C.T))
    assert abs((C @ b) @ np.linalg.solve(Vd, C @ b) / W - 1) > 0.01
    assert tests.loc["effects_equal", "df1"] == 2 and tests.loc["placebos", "df1"] == 2
    assert 0 < tests.loc["placebos", "p_value"] < 1
    assert "effects_equal" not in dd.DCDH().fit(panel, L_max=3, **KW).joint_tests["test"].values
    one = dd.DCDH(effects_equal=True).fit(panel, L_max=1, **KW).joint_tests
    assert one["p_value"].isna().all()  # a single effect: nothing joint to test
    assert "Test effects equal (p)" in res.summary()


@pytest.mark.parametrize("design", ["tsl", "replicate", "bootstrap"])
def test_options_under_survey_designs(design):
    data = covariate_panel()
    est_kw = dict(same_switchers=True, only_never_switchers=True, effects_equal=True,
                  same_switchers_pl=True)
    if design == "tsl":
        sd = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    elif design == "replicate":
        units = data["unit"].to_numpy()
        for r in range(8):
            data[f"rep{r}"] = data["weight"] * np.where(units % 8 == r, 0.0, 8 / 7)
        sd = dd.SurveyDesign(weights="weight", replicate_weights=[f"rep{r}" for r in range(8)],
                             replicate_method="JK1")
    else:
        sd = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
        est_kw.update(n_bootstrap=99, seed=1)
    res = dd.DCDH(**est_kw).fit(data, survey_design=sd, L_max=2, controls="x", **KW)
    plain = dd.DCDH(same_switchers=True, only_never_switchers=True,
                    same_switchers_pl=True).fit(
        data, survey_design=dd.SurveyDesign(weights="weight"), L_max=2, controls="x", **KW)
    np.testing.assert_allclose(res.event_study_effects["estimate"],
                               plain.event_study_effects["estimate"], atol=1e-12)
    se = res.event_study_effects["se"].to_numpy()
    assert np.isfinite(se).all() and (se > 0).all()
    tests = res.joint_tests.set_index("test")
    assert np.isfinite(tests["p_value"]).all()
    assert tests.loc["effects", "df2"] == res.df and res.df is not None


def test_option_errors(panel):
    for option in ("same_switchers", "only_never_switchers", "effects_equal"):
        with pytest.raises(ValueError, match=option):
            dd.DCDH(**{option: "yes"}).fit(panel, **KW)
    # every group eventually switches: no never-switcher to compare with
    data = switching_panel(seed=3)
    wide = data.pivot(index="unit", columns="time", values="d")
    movers = wide.index[(wide.ne(wide[1], axis=0)).any(axis=1)]
    with pytest.raises(ValueError, match="only_never_switchers"):
        dd.DCDH(only_never_switchers=True).fit(data[data["unit"].isin(movers)], **KW)


@pytest.mark.parametrize("levels", [(0, 1), (0, 1, 2)])
def test_same_switchers_pl_matches_the_definition(levels):
    """The placebos over the same switchers that have all P = 3 placebo lags; the effects
    as with same_switchers alone."""
    data = switching_panel(levels=levels, seed=6)
    res = dd.DCDH(same_switchers=True, same_switchers_pl=True).fit(data, L_max=3, **KW)
    same = dd.DCDH(same_switchers=True).fit(data, L_max=3, **KW)
    table = res.event_study_effects.set_index("event_time")
    for l in (1, 2, 3, -1, -2, -3):
        value, count = by_hand(data, abs(l), placebo=l < 0, same=3, lags=3 if l < 0 else 0)
        assert table.loc[l, "estimate"] == pytest.approx(value, abs=1e-12)
        assert table.loc[l, "n_switchers"] == count
    theirs = same.event_study_effects.set_index("event_time")
    assert (table.loc[[1, 2, 3]] == theirs.loc[[1, 2, 3]]).all().all()
    assert res.att == same.att
    assert table.loc[-1, "n_switchers"] == table.loc[-3, "n_switchers"] \
        < theirs.loc[-1, "n_switchers"]
    # normalised placebos: over the same switchers, divided by their cumulated dose
    norm = res.normalized_effects.set_index("event_time")
    for l in (1, 2, 3):
        value, _, _, cumulated = by_hand(data, l, placebo=True, doses=True, same=3, lags=3)
        assert norm.loc[-l, "estimate"] == pytest.approx(value / cumulated, abs=1e-12)
    # trends_lin: ignored, as same_switchers (each placebo already uses its own switchers)
    lin = dict(L_max=2, trends_lin=True, **KW)
    a = dd.DCDH(same_switchers=True, same_switchers_pl=True).fit(data, **lin)
    b = dd.DCDH().fit(data, **lin)
    pd.testing.assert_frame_equal(a.event_study_effects, b.event_study_effects)


def test_same_switchers_pl_errors(panel):
    with pytest.raises(ValueError, match="same_switchers_pl"):
        dd.DCDH(same_switchers_pl="yes").fit(panel, **KW)
    with pytest.raises(ValueError, match="needs same_switchers=True"):
        dd.DCDH(same_switchers_pl=True).fit(panel, L_max=2, **KW)
    with pytest.raises(ValueError, match="needs placebo=True"):
        dd.DCDH(same_switchers=True, same_switchers_pl=True, placebo=False).fit(
            panel, L_max=2, **KW)


PARITY = Path(__file__).parents[1] / "parity" / "fixtures"
PL_CASES = [(sample, name) for sample in ("binary_staggered", "switching", "nonbinary")
            for name in json.loads((PARITY / "dcdh_multiplegt.json").read_text())[sample]
            .get("same_switchers_pl_cases", {})]


@pytest.fixture(scope="module")
def parity():
    return (json.loads((PARITY / "dcdh_multiplegt.json").read_text()),
            pd.read_csv(PARITY / "dcdh_panels.csv"))


@pytest.mark.parametrize("sample,name", PL_CASES, ids=[f"{a}-{b}" for a, b in PL_CASES])
def test_same_switchers_pl_matches_did_multiplegt_dyn(parity, sample, name):
    """py-did-multiplegt-dyn 0.1.9 (tests/parity/ports/dcdh_multiplegt.py): estimates and
    switcher counts to 1e-12, standard errors equal after sqrt(n / (n - 1)) (n groups, or
    clusters) where the recentred values sum to zero (binary samples, no covariates or
    cells)."""
    fixture, data = parity
    case = fixture[sample]["same_switchers_pl_cases"][name]
    args = case["args"]
    frame = data[(data["sample"] == sample) & (data["time"] >= args.get("start", 1))]
    design = dd.SurveyDesign(weights="wg") if args.get("weight") == "wg" else None
    res = dd.DCDH(cluster=args.get("cluster"), same_switchers=True, same_switchers_pl=True,
                  effects_equal=True).fit(
        frame, outcome=args.get("outcome", "y"), L_max=args["effects"],
        controls=args.get("controls"), trends_lin=args.get("trends_lin", False),
        trends_nonparam=args.get("trends_nonparam"), survey_design=design,
        unit="group", time="time", treatment="treatment")
    assert res.n_groups == case["n_groups_used"]
    n = frame[args["cluster"]].nunique() if "cluster" in args else res.n_groups
    scale = np.sqrt(n / (n - 1))
    exact_se = sample != "nonbinary" and not ({"controls", "trends_nonparam"} & set(args))
    table = res.event_study_effects.set_index("event_time")
    rows = [(int(k.split("_")[1]), v) for k, v in case["effects"].items()]
    rows += [(-int(k.split("_")[1]), v) for k, v in (case["placebos"] or {}).items()]
    # trends_lin: the reference estimates one placebo fewer where L_g binds (docs)
    assert len(rows) == len(table) - bool(args.get("trends_lin"))
    for l, theirs in rows:
        assert table.loc[l, "estimate"] == pytest.approx(theirs["Estimate"], abs=1e-12)
        if exact_se:
            assert table.loc[l, "se"] == pytest.approx(scale * theirs["SE"], rel=1e-12)
        key = "Switchers.w" if args.get("trends_lin") and l < 0 else "Switchers"
        if key == "Switchers" or "weight" not in args:
            assert table.loc[l, "n_switchers"] == theirs[key]
    if not args.get("trends_lin"):
        ate = res.average_total_effect.iloc[0]
        theirs = case["ate"]["Average_Total_Effect"]
        assert ate["estimate"] == pytest.approx(theirs["Estimate"], abs=1e-12)
