"""TROP: the nuclear-norm fit is the optimum (KKT conditions), no low-rank term and no
weights is the two-way fixed-effects DiD, the global method on Prop 99 equals the
authors' ``trop`` package, invariants, the bootstrap and survey designs, errors."""

import math

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.estimators._trop import _svt, fit_lowrank, fit_lowrank_batch, objective

KW = dict(outcome="packspercapita", treatment="treated", unit="state", time="year")
# Prop 99 has one treated unit: its bootstrap SE is NaN with a warning (tested below)
pytestmark = pytest.mark.filterwarnings("ignore:TROP. the standard error is undefined")


@pytest.fixture(scope="module")
def prop99():
    return dd.load_prop99()


@pytest.fixture(scope="module")
def matrices(prop99):
    Y = prop99.pivot(index="state", columns="year", values="packspercapita")
    W = prop99.pivot(index="state", columns="year", values="treated").loc[Y.index]
    return Y.to_numpy(float), W.to_numpy(float)


def _global_weights(Y, W, lam_unit, lam_time):
    n_t = Y.shape[1]
    first = int(np.flatnonzero(W.any(axis=0))[0])
    average = Y[W.any(axis=1)].mean(axis=0)
    dist = np.sqrt(((Y - average)[:, :first] ** 2).mean(axis=1))
    time = np.abs(np.arange(n_t) - (n_t - (n_t - first) / 2))
    return (1 - W) * np.exp(-lam_unit * dist)[:, None] * np.exp(-lam_time * time)[None, :]


@pytest.mark.parametrize("lam", [10.0, 1.0])
def test_the_fit_satisfies_the_optimality_conditions(matrices, lam):
    """At the optimum the effects solve their weighted normal equations and the gradient
    G = 2 V * R of the loss is a subgradient of lam ||L||_*: U'GV = lam I on L's singular
    vectors and the spectral norm of G off them is at most lam."""
    Y, W = matrices
    V = _global_weights(Y, W, 0.1, 0.5)
    a, b, L, _, converged = fit_lowrank(Y, V, lam, tol=1e-12, max_iter=50000)
    assert converged
    R = Y - a[:, None] - b[None, :] - L
    assert np.abs((V * R).sum(axis=1)).max() < 1e-9
    assert np.abs((V * R).sum(axis=0)).max() < 1e-9
    G = 2 * V * R
    u, s, vt = np.linalg.svd(L, full_matrices=False)
    k = s > 1e-8 * s.max()
    U, Vt = u[:, k], vt[k]
    assert np.abs(U.T @ G @ Vt.T - lam * np.eye(k.sum())).max() < 1e-8 * lam
    off = G - U @ (U.T @ G) - (G @ Vt.T) @ Vt + U @ (U.T @ G @ Vt.T) @ Vt
    assert np.linalg.norm(off, 2) <= lam * (1 + 1e-9)
    # and no nearby point does better
    rng = np.random.default_rng(0)
    best = objective(Y, V, lam, a, b, L)
    for _ in range(5):
        step = 1e-3 * rng.standard_normal(L.shape)
        assert objective(Y, V, lam, a, b, L + step) > best


def test_tall_thresholding_equals_the_full_svd():
    """A tall matrix is thresholded through its R factor: the same matrix and values as
    soft-thresholding its full SVD."""
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((200, 12)) + 20 * rng.standard_normal((200, 2)) @ \
        rng.standard_normal((2, 12))
    u, s, vt = np.linalg.svd(Z, full_matrices=False)
    threshold = 0.5 * (s[2] + s[3])
    want = (u * np.maximum(s - threshold, 0)) @ vt
    got, kept = _svt(Z, threshold)
    assert kept.size == 3 and np.allclose(kept, s[:3] - threshold, rtol=0, atol=1e-10)
    assert np.abs(got - want).max() < 1e-10


@pytest.mark.parametrize("lam", [1.0, math.inf])
def test_stacked_fits_equal_one_at_a_time(matrices, lam):
    """The cross-validation's stacked solver runs the same iterations on each problem."""
    Y, W = matrices
    V = np.stack([_global_weights(Y, W, 0.1, lt) for lt in (0.2, 0.5, 1.0)])
    V[1, 0, 0] = 0.0
    start = fit_lowrank(Y, V[0], lam, tol=1e-6)[2]
    a, b, L, its, conv = fit_lowrank_batch(Y, V, lam, 1e-8, 5000, start)
    assert conv.all()
    for k in range(3):
        a1, b1, L1, it1, _ = fit_lowrank(Y, V[k], lam, 1e-8, 5000, start)
        assert its[k] == (it1 if math.isfinite(lam) else 0)
        for x, y in ((a, a1), (b, b1), (L, L1)):
            assert np.abs(x[k] - y).max() < 1e-9
    with pytest.raises(ValueError, match="not identified"):
        V[2, :, 3] = 0.0
        fit_lowrank_batch(Y, V, lam)


@pytest.mark.parametrize("method", ["global", "local"])
def test_stacked_bootstrap_fits_equal_one_at_a_time(matrices, method):
    """The bootstrap's draws fitted as stacks are the one-at-a-time refits (local: cell
    by cell, each draw's fits chained as in a single fit, draws with different numbers
    of treated cells)."""
    from diff_diff.estimators.trop import TROPProblem

    Y, W = matrices
    W = W.copy()
    W[:3, -4:] = 1.0  # three more treated units
    problem = TROPProblem(Y, W, method, 1e-10, 10000)
    rng = np.random.default_rng(5)
    specs = [(np.sort(rng.choice(39, 39)), rng.uniform(0.5, 1.5, 39)) for _ in range(4)]
    specs = [s for s in specs if W[s[0]].any() and not W[s[0]].any(axis=1).all()]
    assert len({int(W[rows].sum()) for rows, _ in specs}) > 1
    lambdas = (0.5, 0.1, 10.0)
    stacked = problem.draws(specs, lambdas)
    single = [problem.subset(rows, lambdas, w) for rows, w in specs]
    assert len(specs) >= 3 and np.abs(stacked - single).max() < 1e-8


def test_no_weights_and_no_low_rank_term_is_the_twfe_did(prop99):
    res = dd.TROP(method="global", lambda_time_grid=[0.0], lambda_unit_grid=[0.0],
                  lambda_nn_grid=[math.inf], n_bootstrap=10, seed=0).fit(prop99, **KW)
    twfe = dd.TWFE().fit(prop99, outcome="packspercapita", treatment="treated",
                         unit="state", time="year")
    assert res.att == pytest.approx(twfe.att, abs=1e-9)  # -27.349
    assert res.att == pytest.approx(-27.349111, abs=1e-6)


def test_global_method_equals_the_authors_package(prop99):
    """``trop.TROP_TWFE_average`` 0.1.11 (CVXPY) with lambda_unit 0.1, lambda_time 0.5,
    lambda_nn 1 on Prop 99 gives -21.95503927 with its default solver SCS and -21.95489589
    with CLARABEL; both stop short of the optimum (our fit satisfies the KKT conditions to
    1e-11, test above): -21.95504358, within SCS's 2e-7 relative accuracy."""
    res = dd.TROP(method="global", lambda_time_grid=[0.5], lambda_unit_grid=[0.1],
                  lambda_nn_grid=[1.0], n_bootstrap=10, seed=0).fit(prop99, **KW)
    assert res.att == pytest.approx(-21.95503927, rel=3e-7)
    assert res.att == pytest.approx(-21.955043582, abs=1e-7)
    infinite = dd.TROP(method="global", lambda_time_grid=[0.5], lambda_unit_grid=[0.1],
                       lambda_nn_grid=[math.inf], n_bootstrap=10, seed=0).fit(prop99, **KW)
    strong = dd.TROP(method="global", lambda_time_grid=[0.5], lambda_unit_grid=[0.1],
                     lambda_nn_grid=[100.0], n_bootstrap=10, seed=0).fit(prop99, **KW)
    assert strong.att == pytest.approx(-21.98458485213813, rel=1e-8)  # trop, SCS
    assert strong.att == pytest.approx(infinite.att, abs=1e-9)  # penalty 100: L = 0
    assert res.effective_rank > 1 and strong.effective_rank == 0


def test_local_method_is_the_average_of_per_cell_fits(prop99, matrices):
    Y, W = matrices
    res = dd.TROP(method="local", lambda_time_grid=[0.5], lambda_unit_grid=[0.1],
                  lambda_nn_grid=[10.0], n_bootstrap=4, seed=0).fit(prop99, **KW)
    i = 2  # California
    taus = []
    for t in np.flatnonzero(W[i]):
        both = (1 - W) * (1 - W[i])
        both[:, t] = 0
        dist = np.sqrt((((Y - Y[i]) ** 2) * both).sum(1) / both.sum(1))
        unit = np.exp(-0.1 * dist)
        unit[i] = 1.0
        V = (1 - W) * unit[:, None] * np.exp(-0.5 * np.abs(np.arange(Y.shape[1]) - t))
        a, b, L, _, _ = fit_lowrank(Y, V, 10.0, tol=1e-12, max_iter=50000)
        taus.append(Y[i, t] - a[i] - b[t] - L[i, t])
    np.testing.assert_allclose(res.treatment_effects["effect"], taus, atol=1e-7)
    assert res.att == pytest.approx(np.mean(taus), abs=1e-7)


@pytest.fixture(scope="module")
def block():
    """A block design: cohort 5 (treated in periods 5-6) and never-treated units."""
    from diff_diff.datasets import example_panel

    panel = example_panel()
    return panel[panel["first_treat"].isin([0, 5]) & (panel["unit"] % 2 == 0)]


BLOCK = dict(outcome="y", treatment="d", unit="unit", time="time")
FIXED = dict(method="global", lambda_time_grid=[0.5], lambda_unit_grid=[0.1],
             lambda_nn_grid=[1.0])


def test_invariants_and_bootstrap(block):
    est = dd.TROP(n_bootstrap=6, seed=3, **FIXED)
    design = dd.SurveyDesign(weights="weight")
    base = est.fit(block, survey_design=design, **BLOCK)
    shuffled = block.sample(frac=1.0, random_state=1).assign(weight=lambda d: d["weight"] * 7.5)
    before = shuffled.copy()
    res = est.fit(shuffled, survey_design=design, **BLOCK)
    pd.testing.assert_frame_equal(shuffled, before)
    assert res.att == pytest.approx(base.att, abs=1e-8)
    assert res.se == pytest.approx(base.se, rel=1e-6)  # same draws: seeded
    assert base.se == pytest.approx(np.std(base.bootstrap_distribution, ddof=1))
    assert len(base.bootstrap_distribution) == 6
    assert "unit block bootstrap (6 draws)" in base.summary()
    # units without weight drop out: the fit without them
    zero = block.assign(weight=np.where(block["unit"] % 4 == 0, 0.0, block["weight"]))
    dropped = est.fit(zero, survey_design=design, **BLOCK)
    alone = est.fit(zero[zero["weight"] > 0], survey_design=design, **BLOCK)
    assert dropped.att == pytest.approx(alone.att, abs=1e-9)
    assert dropped.n_treated == alone.n_treated


def test_designs(block):
    est = dd.TROP(n_bootstrap=4, seed=1, **FIXED)
    strat = est.fit(block, survey_design=dd.SurveyDesign(weights="weight", strata="stratum",
                                                         psu="psu"), **BLOCK)
    clus = dd.TROP(n_bootstrap=4, seed=1, cluster="psu", **FIXED).fit(block, **BLOCK)
    data, design = dd.as_replicate_design(block, dd.SurveyDesign(weights="weight", psu="psu"),
                                          method="JK1")
    rep = est.fit(data, survey_design=design, **BLOCK)
    for res in (strat, clus, rep):
        assert np.isfinite(res.se) and res.se > 0
    assert rep.att == pytest.approx(strat.att, abs=1e-9)


def test_one_treated_unit_has_no_standard_error(prop99):
    with pytest.warns(UserWarning, match="undefined with one treated unit"):
        res = dd.TROP(n_bootstrap=4, seed=0, **FIXED).fit(prop99, **KW)
    assert np.isfinite(res.att) and np.isnan(res.se) and np.isnan(res.p_value)
    data, design = dd.as_replicate_design(prop99, dd.SurveyDesign(psu="state"), method="JK1")
    with pytest.warns(UserWarning, match="undefined with one treated unit"):
        rep = dd.TROP(**FIXED).fit(data, survey_design=design, **KW)
    assert rep.att == pytest.approx(res.att, abs=1e-9) and np.isnan(rep.se)


def test_cross_validation_picks_the_best_score(prop99):
    est = dd.TROP(method="global", lambda_time_grid=[0.5, 2.0], lambda_unit_grid=[0.1],
                  lambda_nn_grid=[1.0, math.inf], n_bootstrap=2, seed=0, max_loocv_samples=8)
    res = est.fit(prop99, **KW)
    assert res.tuned and np.isfinite(res.loocv_score)
    scores = {}
    for lt in (0.5, 2.0):
        for nn in (1.0, math.inf):
            one = dd.TROP(method="global", lambda_time_grid=[lt], lambda_unit_grid=[0.1],
                          lambda_nn_grid=[nn], n_bootstrap=2, seed=0)
            assert not one.fit(prop99, **KW).tuned
    from diff_diff.estimators.trop import TROPProblem

    Y = prop99.pivot(index="state", columns="year", values="packspercapita").to_numpy()
    W = prop99.pivot(index="state", columns="year", values="treated").to_numpy(float)
    problem = TROPProblem(Y, W.astype(float), "global", 1e-10, 10000)
    rng = np.random.default_rng(0)
    lambdas, score, _ = problem.tune(((0.5, 2.0), (0.1,), (1.0, math.inf)), np.ones(39), 8,
                                     rng)
    for lt in (0.5, 2.0):
        for nn in (1.0, math.inf):
            scores[lt, nn] = problem._loocv(problem.cv_cells, (lt, 0.1, nn),
                                            np.ones(39), {})
    assert (lambdas[0], lambdas[2]) == min(scores, key=scores.get)
    # each left-out cell is predicted by a fit that never saw it (cold, to the optimum)
    errors = []
    for j, t in problem.cv_cells:
        V = problem.global_weights(Y, W, np.ones(39), 0.5, 0.1)
        V[j, t] = 0.0
        a, b, L, _, _ = fit_lowrank(Y, V, 1.0, tol=1e-10)
        errors.append(Y[j, t] - a[j] - b[t] - L[j, t])
    assert scores[0.5, 1.0] == pytest.approx(np.mean(np.square(errors)), rel=1e-4)
    assert (res.lambda_time, res.lambda_nn) == (lambdas[0], lambdas[2])


def test_errors(prop99):
    with pytest.raises(ValueError, match="lambda_nn_grid must not contain 0"):
        dd.TROP(lambda_nn_grid=[0.0, 1.0]).fit(prop99, **KW)
    with pytest.raises(ValueError, match="method must be one of"):
        dd.TROP(method="both").fit(prop99, **KW)
    with pytest.raises(ValueError, match="non_absorbing=True needs method='local'"):
        dd.TROP(method="global", non_absorbing=True).fit(prop99, **KW)
    off = prop99.assign(treated=np.where((prop99["state"] == "California")
                                         & (prop99["year"] == 2000), 0, prop99["treated"]))
    with pytest.raises(ValueError, match="switches off.*California"):
        dd.TROP(lambda_nn_grid=[1.0]).fit(off, **KW)
    with pytest.raises(ValueError, match="must be balanced"):
        dd.TROP().fit(prop99.iloc[1:], **KW)
    with pytest.raises(ValueError, match="treated in the first period"):
        dd.TROP().fit(prop99.assign(treated=np.where(prop99["state"] == "Utah", 1,
                                                     prop99["treated"])), **KW)
    with pytest.raises(ValueError, match="no cell is treated"):
        dd.TROP().fit(prop99.assign(treated=0), **KW)
    scaled = prop99.assign(packspercapita=prop99["packspercapita"] * 100)
    with pytest.raises(ValueError, match="lambda_unit=5 is too large for the outcome's scale"):
        dd.TROP(method="global", lambda_time_grid=[0.5], lambda_unit_grid=[5.0],
                lambda_nn_grid=[1.0], n_bootstrap=2).fit(scaled, **KW)
