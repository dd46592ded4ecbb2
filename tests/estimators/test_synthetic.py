"""SyntheticDiD: the published Proposition 99 numbers (Arkhangelsky et al. 2021, Table 1
and Figure 1), the variance algorithms computed by hand, survey designs and errors.
Parity with the synthdid ports: tests/parity/test_synthdid_ports.py."""

import math
import warnings

import numpy as np
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel
from diff_diff.estimators import _synthdid as sd

POST = list(range(1989, 2001))
KW = dict(outcome="packspercapita", treatment="california", unit="state", time="year",
          post_periods=POST)


@pytest.fixture(scope="module")
def prop99():
    return dd.load_prop99()


@pytest.fixture(scope="module")
def fit99(prop99):
    return dd.SyntheticDiD(variance_method="placebo", seed=0, n_bootstrap=5).fit(prop99, **KW)


def test_published_prop99_estimate_and_weights(fit99):
    """-15.604 (Table 1); unit weights Nevada .124, New Hampshire .105, Connecticut .078,
    Delaware .070, Colorado .058; time weights 1986 .366, 1987 .206, 1988 .427 (Fig. 1)."""
    assert round(fit99.att, 3) == -15.604
    units = fit99.get_unit_weights_df().set_index("unit")["weight"]
    for state, weight in (("Nevada", .124), ("New Hampshire", .105), ("Connecticut", .078),
                          ("Delaware", .070), ("Colorado", .058)):
        assert round(units[state], 3) == weight
    times = fit99.time_weights.set_index("period")["weight"]
    assert [round(times[y], 3) for y in (1986, 1987, 1988)] == [.366, .206, .427]
    assert times.drop([1986, 1987, 1988]).eq(0).all()
    assert units.sum() == pytest.approx(1) and times.sum() == pytest.approx(1)
    assert fit99.n_treated == 1 and fit99.n_control == 38 and len(fit99.pre_periods) == 19


def test_placebo_draws_are_the_sequential_refits(prop99, fit99):
    """The batched solver gives each placebo estimate as a one-at-a-time refit would (each
    starting, as R, from the fitted weights of the remaining controls)."""
    res = dd.SyntheticDiD(variance_method="placebo", seed=3, n_bootstrap=4).fit(prop99, **KW)
    Y, n0, t0 = _matrix(prop99)
    rng = np.random.default_rng(3)
    for draw in res.variance_effects:
        perm = rng.permutation(n0)
        Yb = np.vstack([Y[perm[:n0 - 1]], Y[perm[n0 - 1:]]])
        omega = fit99.unit_weights["weight"].to_numpy()
        ref = sd.estimate(Yb, n0 - 1, t0, zeta_omega=fit99.zeta_omega,
                          zeta_lambda=fit99.zeta_lambda, min_decrease=fit99.min_decrease,
                          omega_start=sd.sum_normalize(omega[perm[:n0 - 1]]),
                          lambda_start=fit99.time_weights["weight"].to_numpy())
        assert draw == pytest.approx(ref.tau, abs=1e-10)
    r = res.variance_effects.size
    assert res.se == pytest.approx(math.sqrt((r - 1) / r) * np.std(res.variance_effects, ddof=1))


def _matrix(prop99):
    wide = prop99.pivot(index="state", columns="year", values="packspercapita")
    order = [s for s in wide.index if s != "California"] + ["California"]
    return wide.loc[order].to_numpy(), 38, 19


def test_one_treated_unit_jackknife_and_bootstrap_are_nan_with_a_warning(prop99):
    for method in ("jackknife", "bootstrap"):
        with pytest.warns(UserWarning, match=f"the {method} standard error is undefined"):
            res = dd.SyntheticDiD(variance_method=method).fit(prop99, **KW)
        assert math.isnan(res.se) and round(res.att, 3) == -15.604


@pytest.fixture(scope="module")
def several():
    """Prop 99 with three more 'treated' states (a block of four treated units)."""
    data = dd.load_prop99()
    extra = ["Nevada", "Utah", "Kentucky"]
    return data.assign(california=data["state"].isin(["California"] + extra).astype(int))


def test_jackknife_is_the_fixed_weight_leave_one_out(several):
    res = dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW)
    omega = res.unit_weights.set_index("unit")["weight"]
    lam = res.time_weights["weight"].to_numpy()
    wide = several.pivot(index="state", columns="year", values="packspercapita")
    diff = wide.to_numpy()[:, 19:].mean(axis=1) - wide.to_numpy()[:, :19] @ lam
    diff = dict(zip(wide.index, diff))
    treated = ["California", "Kentucky", "Nevada", "Utah"]
    units = list(omega.index) + treated
    u = []
    for out in units:
        om = omega.drop(out, errors="ignore")
        tr = [t for t in treated if t != out]
        u.append(np.mean([diff[t] for t in tr]) - sum(om[s] * diff[s] for s in om.index)
                 / om.sum())
    u = np.array(u)
    n = len(units)
    assert res.se == pytest.approx(math.sqrt((n - 1) / n * ((u - u.mean()) ** 2).sum()),
                                   rel=1e-12)
    expected = np.mean([diff[t] for t in treated]) - sum(omega[s] * diff[s]
                                                           for s in omega.index)
    assert res.att == pytest.approx(expected, abs=1e-10)


def test_invariances(several):
    a = dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW)
    b = dd.SyntheticDiD(variance_method="jackknife").fit(several.sample(frac=1.0,
                                                                        random_state=1), **KW)
    assert (a.att, a.se) == pytest.approx((b.att, b.se), rel=1e-12)
    data = several.assign(w=1.0 + (several["state"].str.len() % 3))
    design = dd.SurveyDesign(weights="w")
    c = dd.SyntheticDiD(variance_method="jackknife").fit(data, survey_design=design, **KW)
    d = dd.SyntheticDiD(variance_method="jackknife").fit(data.assign(w=data["w"] * 5),
                                                         survey_design=design, **KW)
    assert (c.att, c.se) == pytest.approx((d.att, d.se), rel=1e-12)
    assert c.survey_metadata is not None


def test_survey_designs_on_the_example_panel():
    panel = example_panel(n_units=240, seed=5).query(
        "first_treat == 0 or (first_treat == 5 and (unit // 6) % 3 == 0)")
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    kw = dict(outcome="y", treatment="treated", unit="unit", time="time", post_periods=[5, 6])
    jk = dd.SyntheticDiD(variance_method="jackknife").fit(panel, survey_design=design, **kw)
    boot = dd.SyntheticDiD(variance_method="bootstrap", n_bootstrap=8, seed=1).fit(
        panel, survey_design=design, **kw)
    placebo = dd.SyntheticDiD(variance_method="placebo", n_bootstrap=8, seed=1).fit(
        panel, survey_design=design, **kw)
    assert jk.att == boot.att == placebo.att
    for res in (jk, boot, placebo):
        assert np.isfinite(res.se) and res.df is not None
    data, rep = dd.as_replicate_design(panel, design, "JKn")
    replicate = dd.SyntheticDiD(variance_method="jackknife").fit(data, survey_design=rep, **kw)
    assert replicate.att == pytest.approx(jk.att, abs=1e-12) and np.isfinite(replicate.se)


def test_clear_errors(prop99):
    with pytest.raises(ValueError, match="needs more controls"):
        few = prop99[prop99["state"].isin(["California", "Nevada"])]
        dd.SyntheticDiD().fit(few, **KW)
    with pytest.raises(ValueError, match="must be the last periods"):
        dd.SyntheticDiD().fit(prop99, **{**KW, "post_periods": [1980, 1981]})
    with pytest.raises(ValueError, match="balanced"):
        dd.SyntheticDiD().fit(prop99.iloc[1:], **KW)
    with pytest.raises(ValueError, match="constant within"):
        dd.SyntheticDiD().fit(prop99, **{**KW, "treatment": "treated"})
    with pytest.raises(ValueError, match="covariates are not available"):
        dd.SyntheticDiD().fit(prop99, covariates=["year"], **KW)
    with pytest.raises(ValueError, match="variance_method must be one of"):
        dd.SyntheticDiD(variance_method="exact").fit(prop99, **KW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dd.SyntheticDiD(variance_method="jackknife").fit(
            prop99.assign(california=prop99["state"].isin(["California", "Utah"]) * 1), **KW)


def test_review_fixes(several):
    """Unit levels do not leak into the weights (the estimate is invariant to adding a
    constant per unit); the cluster bootstrap runs without a survey design."""
    base = dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW)
    rng = np.random.default_rng(0)
    shift = dict(zip(several["state"].unique(), rng.normal(size=39) * 1e6))
    moved = several.assign(packspercapita=several["packspercapita"]
                           + several["state"].map(shift))
    again = dd.SyntheticDiD(variance_method="jackknife").fit(moved, **KW)
    assert again.att == pytest.approx(base.att, abs=1e-8)
    clustered = dd.SyntheticDiD(variance_method="bootstrap", n_bootstrap=10, seed=1,
                                cluster="region").fit(
        several.assign(region=several["state"].str[0]), **KW)
    assert np.isfinite(clustered.se)


def test_in_time_placebo_is_a_fresh_fit_on_the_pre_periods(prop99, fit99):
    table = fit99.in_time_placebo([1985])
    assert table["n_pre_fake"].tolist() == [15]
    assert table["n_post_fake"].tolist() == [4]
    pre = prop99[prop99["year"] < 1989]
    for fake, att in zip(table["fake_treatment_period"], table["att"]):
        kw = {**KW, "post_periods": list(range(fake, 1989))}
        direct = dd.SyntheticDiD(zeta_omega=fit99.zeta_omega, zeta_lambda=fit99.zeta_lambda,
                                 n_bootstrap=2, seed=0).fit(pre, **kw)
        assert att == pytest.approx(direct.att, abs=1e-10)
    short = dd.SyntheticDiD(n_bootstrap=2, seed=0).fit(prop99[prop99["year"] >= 1983], **KW)
    assert short.in_time_placebo()["fake_treatment_period"].tolist() == [1985, 1986, 1987,
                                                                          1988]
    with pytest.raises(ValueError, match="not a pre-period"):
        fit99.in_time_placebo([1990])
    with pytest.raises(ValueError, match="no earlier period"):
        fit99.in_time_placebo([1970])


def test_zeta_sensitivity_weights_and_fit_diagnostics(fit99):
    table = fit99.sensitivity_to_zeta_omega()
    middle = table.iloc[2]
    assert middle["zeta_omega"] == pytest.approx(fit99.zeta_omega)
    assert middle["att"] == pytest.approx(fit99.att, abs=1e-12)
    # more regularisation spreads the weights (effective number of controls grows)
    assert np.all(np.diff(table["effective_n"]) > 0)
    omega = fit99.unit_weights["weight"].to_numpy()
    conc = fit99.get_weight_concentration(top_k=3)
    assert conc["effective_n"] == pytest.approx(1 / (omega ** 2).sum())
    assert conc["effective_n"] == pytest.approx(middle["effective_n"])
    assert conc["top_k_share"] == pytest.approx(np.sort(omega)[-3:].sum())
    with pytest.raises(ValueError, match="top_k"):
        fit99.get_weight_concentration(-1)
    with pytest.raises(ValueError, match="grid"):
        fit99.sensitivity_to_zeta_omega(zeta_grid=[-1.0])
    paths = fit99.trajectories()
    gap = (paths["treated"] - paths["synthetic"]).to_numpy()[:19]
    assert fit99.pre_treatment_level_gap == pytest.approx(gap.mean())
    assert fit99.pre_treatment_fit == pytest.approx(gap.std())
    assert middle["pre_fit_rmse"] == pytest.approx(fit99.pre_treatment_fit)
    # the DiD of the trajectories with the time weights is the estimate
    lam = paths["time_weight"].to_numpy()[:19]
    assert gap @ lam * -1 + (paths["treated"] - paths["synthetic"]).to_numpy()[19:].mean() \
        == pytest.approx(fit99.att, abs=1e-10)


def test_leave_one_out_table_gives_the_jackknife(several):
    res = dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW)
    loo = res.get_loo_effects_df()
    assert sorted(loo["role"].value_counts().items()) == [("control", 35), ("treated", 4)]
    u = loo["att_loo"].to_numpy()
    n = u.size
    assert res.se == pytest.approx(math.sqrt((n - 1) / n * ((u - u.mean()) ** 2).sum()),
                                   rel=1e-12)
    assert np.all(np.diff(np.abs(loo["change"])) <= 0)


def test_bootstrap_weights_have_no_effect_and_say_so(several):
    with pytest.warns(UserWarning, match="bootstrap_weights has no effect"):
        res = dd.SyntheticDiD(variance_method="jackknife", bootstrap_weights="mammen").fit(
            several, **KW)
    assert res.se == dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW).se


def test_stratified_placebo_without_enough_controls_points_to_the_other_methods():
    panel = example_panel()
    block = panel[panel["first_treat"].isin([0, 4])]
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    with pytest.raises(ValueError, match=r"stratum .*controls, .*treated\); use "
                                         r"variance_method='bootstrap'"):
        dd.SyntheticDiD(n_bootstrap=20, seed=0).fit(
            block, outcome="y", treatment="treated", unit="unit", time="time",
            post_periods=[4, 5, 6], survey_design=design)


# ---------------------------------------------------------------------------------------
# the batched refits (placebo / bootstrap / replicate draws) against a plain Frank-Wolfe
# written here as R synthdid writes it (gradient recomputed from scratch each iteration)
# ---------------------------------------------------------------------------------------
def _plain_fw(Y, zeta, x, min_decrease, max_iter):
    """R's sc.weight.fw with an intercept: (weights, iterations)."""
    Y = Y - Y.mean(axis=0)
    A, b = Y[:, :-1], Y[:, -1]
    eta = Y.shape[0] * zeta ** 2
    vals, t = [], 0
    while t < max_iter and (t < 2 or vals[-2] - vals[-1] > min_decrease ** 2):
        t += 1
        Ax = A @ x
        half_grad = (Ax - b) @ A + eta * x
        i = int(np.argmin(half_grad))
        d = -x.copy()
        d[i] += 1.0
        if np.any(d != 0):
            d_err = A[:, i] - Ax
            step = -(half_grad @ d) / (d_err @ d_err + eta * (d @ d))
            x = x + min(1.0, max(0.0, step)) * d
        err = A @ x - b
        vals.append(zeta ** 2 * (x @ x) + (err @ err) / Y.shape[0])
    return x, t


def _plain_weights(Y, zeta, min_decrease, start):
    first, t1 = _plain_fw(Y, zeta, start, min_decrease, 100)
    sparse = np.where(first <= first.max() / 4, 0.0, first)
    sparse /= sparse.sum()
    final, t2 = _plain_fw(Y, zeta, sparse, min_decrease, 10_000)
    return final, (t1, t2, int((first > 0).sum() - (sparse > 0).sum()))


def _plain_refit(Y, n0, t0, counts, target, zo, zl, md, omega_start, lambda_start):
    rows = np.repeat(np.arange(n0), counts)
    units = np.flatnonzero(target)
    w1 = target[units] / target[units].sum()
    Yb = np.vstack([Y[rows], Y[units]])
    k = rows.size
    yc = sd.collapsed(Yb, k, t0, w1)
    lam, info_l = _plain_weights(yc[:k], zl, md, lambda_start)
    start = omega_start[rows]
    start = start / start.sum() if start.sum() > 0 else np.full(k, 1.0 / k)
    omega, info_o = _plain_weights(yc[:, :t0].T, zo, md, start)
    t1 = Y.shape[1] - t0
    tau = np.r_[-omega, w1] @ Yb @ np.r_[-lam, np.full(t1, 1.0 / t1)]
    return tau, np.bincount(rows, omega, n0), lam, info_l + info_o


def test_batched_refits_equal_plain_frank_wolfe_draw_by_draw(monkeypatch):
    """Left-out controls, repeated controls (bootstrap), weighted and placebo 'treated'
    averages, a draw whose first unit-weight step goes all the way to a vertex, draws
    stopping at different iterations and sparsify steps that drop weights: every draw's
    tau and weights as the one-at-a-time algorithm gives them, to 1e-10."""
    rng = np.random.default_rng(11)
    n0, n1, t0, T = 14, 3, 7, 10
    factor = np.cumsum(rng.normal(size=T))
    Y = (rng.normal(size=(n0 + n1, 1)) + rng.normal(size=(n0 + n1, 1)) * factor
         + 0.3 * rng.normal(size=(n0 + n1, T)))
    Y[n0] = 3 * Y[0] - 2 * Y[1]  # beyond control 0, seen from control 1
    restarts = []
    restart = sd._restart
    monkeypatch.setattr(sd, "_restart", lambda *a: restarts.append(1) or restart(*a))
    B = 9
    counts = np.ones((B, n0), dtype=np.int64)
    target = np.zeros((B, n0 + n1))
    target[:, n0:] = 1.0
    counts[1, [2, 5, 6]] = 0  # replicate / Rao-Wu: controls left out, weighted treated
    target[1, n0:] = [0.5, 2.0, 1.0]
    counts[2] = rng.multinomial(n0, np.full(n0, 1.0 / n0))  # bootstrap: repeats
    target[2, n0:] = [2.0, 0.0, 1.0]
    counts[3] = rng.multinomial(n0, np.full(n0, 1.0 / n0))
    counts[4, 0] = 0  # placebo: control 0 plays the treated unit
    target[4] = 0.0
    target[4, 0] = 1.0
    counts[5, 3] = 0  # the treated average is control 4's path: the unit weights'
    target[5] = 0.0  # first step goes all the way to control 4
    target[5, 4] = 1.0
    counts[6, 7:] = 0
    counts[7] = 2
    zo, zl = np.full(B, 0.4), np.full(B, 1e-4)
    md = 1e-3
    starts = np.tile(np.abs(rng.normal(size=n0)) * (rng.random(n0) < 0.6), (B, 1))
    # draw 8: controls 0 and 1, no ridge, start at control 1, treated unit beyond
    # control 0: the first step is a full one (the scaled state is rebuilt at the vertex)
    counts[8] = 0
    counts[8, :2] = 1
    zo[8] = 0.0
    starts[8] = np.eye(n0)[1]
    lambda_start = np.full(t0, 1.0 / t0)
    infos = []
    for b in range(B):
        tau, omega, lam = sd.refit_batch(Y, n0, t0, counts[b:b + 1], target[b:b + 1],
                                         zo[b], zl[b], md, starts[b:b + 1],
                                         lambda_start[None], weights=True)
        ref = _plain_refit(Y, n0, t0, counts[b], target[b], zo[b], zl[b], md, starts[b],
                           lambda_start)
        assert tau[0] == pytest.approx(ref[0], abs=1e-10)
        np.testing.assert_allclose(omega[0], ref[1], rtol=0, atol=1e-10)
        np.testing.assert_allclose(lam[0], ref[2], rtol=0, atol=1e-10)
        infos.append(ref[3])
    # the batch covers what it claims: different stopping iterations, rounds stopped by
    # the tolerance, sparsify steps that removed weights
    infos = np.array(infos)
    assert len(set(infos[:, 4])) >= 4 and (infos[:, 4] < 10_000).any()
    assert (infos[:, 2] > 0).any() and (infos[:, 5] > 0).any() and restarts
    # all draws at once (same zeta): the same numbers as one at a time
    same = zo == 0.4
    together = sd.refit_batch(Y, n0, t0, counts[same], target[same], 0.4, 1e-4, md,
                              starts[same], np.broadcast_to(lambda_start, (int(same.sum()), t0)))
    alone = [sd.refit_batch(Y, n0, t0, counts[b:b + 1], target[b:b + 1], 0.4, 1e-4, md,
                            starts[b:b + 1], lambda_start[None])[0]
             for b in np.flatnonzero(same)]
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-12)
