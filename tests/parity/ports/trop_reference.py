"""Reference values of the Triply Robust Panel estimator (Athey, Imbens, Qu & Viviano,
arXiv:2508.21536, J. Applied Econometrics 2026) from the authors' package ``trop``.

Source: the PyPI package ``trop`` 0.1.11 (MIT; Athey, Imbens, Qu, Viviano; solves its
problems with cvxpy 1.9 through SCS 3.3 / OSQP 1.1, Clarabel 0.11 used here only as a
second solver). Generated with Python 3.11, numpy 2.4, scipy 1.17 (exact versions in
the fixture's ``meta``). No pandas and no diff_diff in that venv: the data are read
with the csv module and the simulated panels are made with numpy here.

What ``trop`` 0.1.11 computes (its whole estimator is ``TROP_TWFE_average``; the
package has NO per-treated-cell ("local") method, see below):

    trop.TROP_TWFE_average(Y, W, treated_units, lambda_unit, lambda_time, lambda_nn,
                           treated_periods=k, solver=None)    -> float (tau only)

* Y, W: N x T arrays (units in rows). The treated block is the LAST ``k`` columns;
  ``W`` is used only to zero the weight of treated cells, ``k`` only for the weights.
* dist_time_s = |s - (T - k/2)| for 0-based column s (the centre T - k/2 is half a
  period right of the mean of the post columns, T - (k+1)/2).
* dist_unit_j = sqrt(mean over the first T - k columns of (Ybar_tr,s - Y_js)^2), Ybar_tr
  = plain mean over ``treated_units`` rows (every row gets a distance, treated rows too).
* weight w_js = (1 - W_js) exp(-lambda_unit dist_unit_j) exp(-lambda_time dist_time_s)
  (coded as the square of exp(-lambda/2 * dist) inside ``sum_squares``).
* objective: min over mu, a (N), b (T), L (N x T) of
      sum_js w_js (Y_js - mu - a_j - b_s - L_js)^2 + lambda_nn ||L||_*
  -- a plain sum of squares, no 1/2, no normalisation by the number or total weight of
  cells; L is a free N x T matrix (also on treated cells, where only the nuclear norm
  pins it down). lambda_nn = inf drops L (weighted TWFE by OSQP). lambda_nn = 0 makes
  the problem ill-posed (L interpolates every control cell and is arbitrary on the
  treated cells): the package still returns a number, which depends on the solver.
* tau = mean over cells with W > 0 of Y - mu - a - b - L (unweighted).
* solver: cvxpy, SCS (lambda_nn finite) with SCS's defaults (eps_abs = eps_rel = 1e-4)
  or OSQP (lambda_nn = inf); status "optimal_inaccurate" is accepted. The only knob is
  the solver NAME: tolerances can't be passed. Here they are injected by wrapping
  ``cvxpy.Problem`` inside ``trop.estimator`` (the package's own code path otherwise).
* cross-validation (``TROP_cv_single`` / ``TROP_cv_cycle`` / ``TROP_cv_joint`` /
  ``adaptive_TROP_cv``): PLACEBO, not leave-one-out: on the control rows only, each of
  ``n_trials`` = 200 placebo sets (``n_treated_units`` = 1 unit drawn by
  ``numpy.random.default_rng(random_seed=0).choice(N0, 1, replace=False)``, all sets
  drawn up front) gets W = 1 on its last k columns; score = sqrt(mean of squared
  placebo taus). ``TROP_cv_cycle``: coordinate descent (unit, then time, then nn) from
  the grid means until the triple repeats (max 50 cycles, else RuntimeError);
  ``TROP_cv_joint``: full grid; ``adaptive_TROP_cv``: 10-point grids on [0,1]^3, expand
  boundary hits, then a 9-point zoom. No default grids except ``TROP_cv_single``
  (np.arange(0, 2, 0.2), other two lambdas fixed at (0, 0)) and ``adaptive_TROP_cv``.
* ``trop.bootstrap(Y, W, treated, k, lambdas=..., n_bootstrap=1000,
  resample="controls", random_state=seed)``: lambdas held fixed; draw b uses
  ``numpy.random.default_rng(SeedSequence(seed).spawn(n_bootstrap)[b])``, control rows
  ``rng.choice(controls, size=N0, replace=True)`` (treated rows kept; "stratified" also
  resamples them), rows stacked treated first; SE = sd(ddof=1) of the finite draws,
  CI = percentile. Random: Monte Carlo error only.

Because the package stops SCS at 1e-4, its tau is off the optimum of its own objective
by up to ~1e-2 here. The "optimum" recorded for every case is therefore solved by an
independent solver in this script (weighted TWFE profiled out exactly, FISTA with
adaptive restart on L, step 1/(2 max w), stopped on a duality gap <= 1e-13 relative; a
second start from a random L must agree) and checked against the package's own code
path with SCS tightened to eps 1e-10 and against its objective value.

The same objective is diff-diff 3.13's ``TROP(method="global")`` (its docstrings say it
follows this reference implementation): same distances, centre, weights and penalty
scale. Its ``method="local"`` (per treated cell (i,t): theta_s = exp(-lambda_time
|s - t|), omega_j = exp(-lambda_unit dist_{-t}(j,i)), dist = RMS of Y_i - Y_j over
periods != t where both are untreated, omega_i = 1, weights times (1 - W), model
a_j + b_s + L_js, tau_it = Y_it - a_i - b_t - L_it, ATT = mean) has no counterpart in
``trop``; ``local_reference`` gives its converged optimum from the same independent
solver, labelled as such.

Run from the repository root (no checkout on sys.path, hence ``-P``):

    python -m venv /work/scratch/venv-trop
    /work/scratch/venv-trop/bin/pip install trop==0.1.11
    /work/scratch/venv-trop/bin/python -P tests/parity/ports/trop_reference.py \\
        [--diff-diff-313-python /work/venv313/bin/python] [--slow]

It writes ``tests/parity/fixtures/trop_reference.json`` and ``trop_sim_panel.csv``.
``--slow`` adds the package's cross-validation and bootstrap runs and the 500 x 40
timing (tens of minutes; ``--slow-only`` adds them to an existing fixture);
``--diff-diff-313-python`` adds diff-diff 3.13.0's numbers (~20 minutes: its tightened
solver runs are slow). Wall times are of this 2-core machine and were taken with other
work running; they are indications, not benchmarks.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import io
import json
import math
import platform
import subprocess
import time
import types
import warnings
from pathlib import Path

import numpy as np

# the reference packages (cvxpy, scipy, trop) are imported by _load_packages() when the
# script runs, so that pytest's module collection does not need them
cp = scipy = trop = trop_cv = trop_estimator = _cp_proxy = None

OUT = "tests/parity/fixtures/trop_reference.json"
SIM_CSV = "tests/parity/fixtures/trop_sim_panel.csv"
DATA = "diff_diff/datasets/data/prop99.csv"
PROP99_MD5 = "50ffa304b68edc1be37149e7135a4d05"

# lambda settings (lambda_unit, lambda_time, lambda_nn); "inf" = no low-rank term
SETTINGS = {
    "lu0.5_lt0.1_nn0.1": (0.5, 0.1, 0.1),
    "lu0.5_lt0.1_nn1": (0.5, 0.1, 1.0),
    "lu0.5_lt0.1_nninf": (0.5, 0.1, math.inf),
    "lu0.5_lt0.1_nn0": (0.5, 0.1, 0.0),
    "lu0_lt0_nn0.1": (0.0, 0.0, 0.1),
    "lu0.1_lt0.5_nn0.01": (0.1, 0.5, 0.01),
}
SCS_TIGHT = dict(eps_abs=1e-10, eps_rel=1e-10, max_iters=200_000)
OSQP_TIGHT = dict(eps_abs=1e-10, eps_rel=1e-10, max_iter=1_000_000, polishing=True)
GAP_TOL = 1e-12
RESTART_SEED = 7
PLACEBO_SEED = 0          # the package's default random_seed
PLACEBO_TRIALS = 200      # the package's default n_trials
BOOT_SEED = 20250829
SIM_SMALL = dict(n_units=40, n_periods=12, n_treated=5, first_treated_period=8, seed=20250829,
                 rank=2, noise_sd=0.5, loading_shift=0.5)
SIM_BIG = dict(n_units=500, n_periods=40, n_treated=50, first_treated_period=30, seed=20250830,
               rank=2, noise_sd=0.5, loading_shift=0.5)


def jnum(x):
    """float for JSON; inf / nan as strings."""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if math.isnan(x):
        return "nan"
    return x


# ----------------------------------------------------------------------------- data
def load_prop99():
    raw = Path(DATA).read_bytes()
    assert hashlib.md5(raw).hexdigest() == PROP99_MD5, "prop99.csv differs"
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    states = sorted({r["state"] for r in rows})
    years = sorted({int(r["year"]) for r in rows})
    Y = np.full((len(states), len(years)), np.nan)
    W = np.zeros_like(Y)
    for r in rows:
        i, j = states.index(r["state"]), years.index(int(r["year"]))
        Y[i, j] = float(r["packspercapita"])
        W[i, j] = float(r["treated"])
    assert np.isfinite(Y).all()
    return Y, W, states, years


def make_panel(n_units, n_periods, n_treated, first_treated_period, seed, rank=2,
               noise_sd=0.5, loading_shift=0.5):
    """See GENERATOR_DOC."""
    rng = np.random.default_rng(seed)
    alpha = rng.normal(0.0, 1.0, n_units)
    beta = rng.normal(0.0, 1.0, n_periods)
    U = rng.normal(0.0, 1.0, (n_units, rank))
    V = rng.normal(0.0, 1.0, (n_periods, rank))
    eps = rng.normal(0.0, noise_sd, (n_units, n_periods))
    U[:n_treated] += loading_shift
    W = np.zeros((n_units, n_periods))
    W[:n_treated, first_treated_period:] = 1.0
    t = np.arange(n_periods)
    tau = (1.0 + 0.25 * (t - first_treated_period))[None, :] * W
    Y = 10.0 + alpha[:, None] + beta[None, :] + U @ V.T + eps + tau
    return Y, W


GENERATOR_DOC = (
    "rng = numpy.random.default_rng(seed) (PCG64); draws in this order: alpha = "
    "rng.normal(0, 1, n_units); beta = rng.normal(0, 1, n_periods); U = rng.normal(0, 1, "
    "(n_units, rank)); V = rng.normal(0, 1, (n_periods, rank)); eps = rng.normal(0, noise_sd, "
    "(n_units, n_periods)). Then U[:n_treated] += loading_shift; W = 0 except W[:n_treated, "
    "first_treated_period:] = 1 (units 0..n_treated-1 treated, 0-based columns); tau_it = "
    "1 + 0.25 (t - first_treated_period) on treated cells; Y = 10 + alpha_i + beta_t + "
    "(U V')_it + eps_it + tau_it W_it. Long CSV: unit = row index, period = column index + 1, "
    "y written with repr(float), treated = W; rows ordered by unit then period.")


def panel_csv_text(Y, W):
    lines = ["unit,period,y,treated"]
    for i in range(Y.shape[0]):
        for t in range(Y.shape[1]):
            lines.append(f"{i},{t + 1},{repr(float(Y[i, t]))},{int(W[i, t])}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ the package's weights
def package_weights(Y, W, treated, lu, lt, k):
    """w_js as trop 0.1.11 builds it (re-derived here for the independent solver; the
    package's objective value is checked against it)."""
    N, T = Y.shape
    dist_time = np.abs(np.arange(T, dtype=float) - (T - k / 2.0))
    avg = Y[treated].mean(0)
    dist_unit = np.sqrt(((avg - Y) ** 2)[:, : T - k].sum(1) / (T - k))
    w = (1.0 - W) * np.outer(np.exp(-0.5 * lu * dist_unit), np.exp(-0.5 * lt * dist_time)) ** 2
    return w, dist_unit, dist_time


def local_weights(Y, W, i, t, lu, lt):
    """3.13's per-cell (local) weights for treated cell (i, t) (not a trop concept)."""
    N, T = Y.shape
    theta = np.exp(-lt * np.abs(np.arange(T) - t))
    omega = np.ones(N)
    if lu != 0:
        for j in range(N):
            if j == i:
                continue
            ok = (W[i] == 0) & (W[j] == 0)
            ok[t] = False
            omega[j] = math.exp(-lu * math.sqrt(np.mean((Y[i, ok] - Y[j, ok]) ** 2))) if ok.any() else 0.0
    return np.outer(omega, theta) * (1.0 - W)


# ------------------------------------------------------------- independent solver
class WeightedTWFE:
    """min over a (N), b (T, b_0 = 0) of sum w (M - a_i - b_t)^2, by the Schur complement
    in b, with two steps of iterative refinement."""

    def __init__(self, w):
        self.w = w
        self.r = w.sum(1)
        c = w.sum(0)
        if not (np.all(self.r > 0) and np.all(c > 0)):
            raise ValueError("a unit or period has no weighted control cell")
        S = np.diag(c) - w.T @ (w / self.r[:, None])
        self.Sinv = np.linalg.inv(S[1:, 1:])

    def fit(self, M):
        w = self.w
        wM = w * M
        b = np.zeros(M.shape[1])
        a = wM.sum(1) / self.r
        for _ in range(3):
            R = M - a[:, None] - b[None, :]
            wR = w * R
            rhs = wR.sum(0) - w.T @ (wR.sum(1) / self.r)
            b[1:] += self.Sinv @ rhs[1:]
            a = (wM.sum(1) - w @ b) / self.r
        return a, b


def _svt(X, thr):
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    s2 = np.maximum(s - thr, 0.0)
    k = int(np.sum(s2 > 0))
    return (U[:, :k] * s2[:k]) @ Vt[:k]


def solve_optimum(Y, w, lnn, L0=None, max_iter=400_000, gap_tol=GAP_TOL, check_every=250):
    """min_{a,b,L} sum w (Y - a - b - L)^2 + lnn ||L||_* (mu folded into a).
    FISTA with gradient-based adaptive restart on the profiled objective, step 1/(2 max w).
    Duality gap: V = 2 w (Y - fit) scaled into ||V||_2 <= lnn is dual feasible (its row and
    column sums vanish, it is 0 on w = 0 cells); D = sum_{w>0} V Y - V^2 / (4 w)."""
    Ys = np.where(w > 0, Y, 0.0)
    fe = WeightedTWFE(w)
    if math.isinf(lnn):
        a, b = fe.fit(Ys)
        L = np.zeros_like(Y)
        R = Ys - a[:, None] - b[None, :]
        return dict(a=a, b=b, L=L, objective=float(np.sum(w * R * R)), gap=0.0, iterations=0)
    wmax = w.max()
    wn = w / wmax
    thr = lnn / (2.0 * wmax)
    pos = w > 0

    def resid(L):
        a, b = fe.fit(Ys - L)
        return a, b, Ys - L - a[:, None] - b[None, :]

    L = np.zeros_like(Y) if L0 is None else L0.copy()
    Z = L.copy()
    tk = 1.0
    gap = P = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        _, _, R = resid(Z)
        Lnew = _svt(Z + wn * R, thr)
        tk1 = (1.0 + math.sqrt(1.0 + 4.0 * tk * tk)) / 2.0
        if np.sum((Z - Lnew) * (Lnew - L)) > 0:       # restart
            tk1 = 1.0
            Z = Lnew.copy()
        else:
            Z = Lnew + ((tk - 1.0) / tk1) * (Lnew - L)
        L, tk = Lnew, tk1
        if it % check_every == 0:
            _, _, R = resid(L)
            P = float(np.sum(w * R * R) + lnn * np.linalg.svd(L, compute_uv=False).sum())
            V = 2.0 * w * R
            nv = np.linalg.norm(V, 2)
            if nv > lnn:
                V *= lnn / nv
            D = float(np.sum(V[pos] * Ys[pos] - V[pos] ** 2 / (4.0 * w[pos])))
            gap = P - D
            if gap <= gap_tol * max(1.0, abs(P)):
                break
    a, b, R = resid(L)
    P = float(np.sum(w * R * R) + lnn * np.linalg.svd(L, compute_uv=False).sum())
    return dict(a=a, b=b, L=L, objective=P, gap=float(gap), iterations=it)


def objective(Y, w, lnn, fit, L):
    R = np.where(w > 0, Y - fit, 0.0)
    pen = 0.0 if math.isinf(lnn) else lnn * np.linalg.svd(L, compute_uv=False).sum()
    return float(np.sum(w * R * R) + pen)


def describe_solution(Y, W, sol, units, periods, full=True):
    a, b, L = sol["a"], sol["b"], sol["L"]
    fit = a[:, None] + b[None, :] + L
    tau = Y - fit
    cells = [dict(unit=units[i], period=periods[t], tau=float(tau[i, t]),
                  L=float(L[i, t]), counterfactual=float(fit[i, t]))
             for i, t in zip(*np.nonzero(W > 0))]
    s = np.linalg.svd(L, compute_uv=False)
    out = dict(
        att=float(np.mean(tau[W > 0])),
        treated_cells=cells,
        objective=sol["objective"],
        duality_gap=sol["gap"],
        iterations=sol["iterations"],
        singular_values_L=[float(x) for x in s],
        nuclear_norm_L=float(s.sum()),
        effective_rank_sum_over_max=float(s.sum() / s[0]) if s[0] > 0 else 0.0,
        rank_L_sv_over_max_gt_1e_6=int(np.sum(s > 1e-6 * s[0])) if s[0] > 0 else 0,
    )
    if full:
        # 3.13's normalisation: mu + alpha_i + beta_t with alpha_0 = beta_0 = 0
        out["mu"] = float(a[0])
        out["alpha"] = [float(x) for x in a - a[0]]
        out["beta"] = [float(x) for x in b]
        out["L"] = [[float(x) for x in row] for row in L]
    return out


# ------------------------------------------- running the package's own code path
class _Recorder:
    extra: dict = {}
    problem = None
    seconds = None


def _load_packages():
    """Import the reference packages and build the recording cvxpy proxy."""
    global cp, scipy, trop, trop_cv, trop_estimator, _cp_proxy
    import cvxpy as cp
    import scipy
    import trop
    import trop.cv as trop_cv
    import trop.estimator as trop_estimator

    class _RecordingProblem(cp.Problem):
        def solve(self, *args, **kwargs):
            kwargs.update(_Recorder.extra)
            t0 = time.perf_counter()
            out = super().solve(*args, **kwargs)
            _Recorder.seconds = time.perf_counter() - t0
            _Recorder.problem = self
            return out

    _cp_proxy = types.SimpleNamespace(**{n: getattr(cp, n) for n in dir(cp)
                                         if not n.startswith("__")})
    _cp_proxy.Problem = _RecordingProblem


def run_package(Y, W, treated, lu, lt, lnn, k, solver=None, extra=None):
    """trop.TROP_TWFE_average, unchanged, with solver options injected; returns tau and
    what the cvxpy problem holds."""
    trop_estimator.cp = _cp_proxy
    _Recorder.extra = dict(extra or {})
    try:
        t0 = time.perf_counter()
        tau = trop.TROP_TWFE_average(Y, W, treated, lu, lt, lnn, treated_periods=k, solver=solver)
        total = time.perf_counter() - t0
    finally:
        trop_estimator.cp = cp
        _Recorder.extra = {}
    p = _Recorder.problem
    vals = {v.shape: v.value for v in p.variables()}
    N, T = Y.shape
    mu = float(vals[()])
    fit = mu + np.asarray(vals[(1, N)]).reshape(N, 1) + np.asarray(vals[(1, T)]).reshape(1, T)
    L = np.asarray(vals[(N, T)]) if (N, T) in vals else np.zeros((N, T))
    stats = p.solver_stats
    return dict(att=float(tau), status=p.status, solver=stats.solver_name,
                iterations=None if stats.num_iters is None else int(stats.num_iters),
                objective=float(p.value), solve_seconds=_Recorder.seconds, call_seconds=total,
                solver_options=dict(extra or {}), _fit=fit + L, _L=L)


# ------------------------------------------------------------------------ cases
def global_case(Y, W, treated, k, units, periods, lu, lt, lnn, full=True, tight=True):
    w, dist_unit, dist_time = package_weights(Y, W, treated, lu, lt, k)
    res = dict(lambda_unit=lu, lambda_time=lt, lambda_nn=jnum(lnn))
    pkg = run_package(Y, W, treated, lu, lt, lnn, k)
    pkg["objective_recomputed_here"] = objective(Y, w, lnn, pkg.pop("_fit"), pkg.pop("_L"))
    res["package_default"] = pkg
    if lnn == 0:
        alt = run_package(Y, W, treated, lu, lt, lnn, k, solver="CLARABEL")
        alt.pop("_fit"), alt.pop("_L")
        res["package_solver_clarabel"] = alt
        res["ill_posed"] = (
            "lambda_nn = 0: L is unpenalised, fits every control cell exactly (objective 0) "
            "and is arbitrary on the treated cells, so tau is not identified; the numbers "
            "are whatever the solver stops at (SCS vs Clarabel differ by ~1). Not a target.")
        return res
    if tight:
        extra = OSQP_TIGHT if math.isinf(lnn) else SCS_TIGHT
        t = run_package(Y, W, treated, lu, lt, lnn, k, extra=extra)
        t["objective_recomputed_here"] = objective(Y, w, lnn, t.pop("_fit"), t.pop("_L"))
        res["package_tightened"] = t
    opt = solve_optimum(Y, w, lnn)
    d = describe_solution(Y, W, opt, units, periods, full=full)
    if not math.isinf(lnn):
        L0 = np.random.default_rng(RESTART_SEED).normal(scale=float(np.std(Y)), size=Y.shape)
        opt2 = solve_optimum(Y, w, lnn, L0=L0)
        fit1 = opt["a"][:, None] + opt["b"][None, :] + opt["L"]
        fit2 = opt2["a"][:, None] + opt2["b"][None, :] + opt2["L"]
        att2 = float(np.mean((Y - fit2)[W > 0]))
        d["second_start"] = dict(
            L0="numpy.random.default_rng(%d).normal(scale=std(Y), size=Y.shape)" % RESTART_SEED,
            att=att2, abs_diff_att=abs(att2 - d["att"]),
            max_abs_diff_fit_treated_cells=float(np.max(np.abs(fit1 - fit2)[W > 0])),
            max_abs_diff_L=float(np.max(np.abs(opt["L"] - opt2["L"]))),
            objective=opt2["objective"], iterations=opt2["iterations"])
    res["optimum"] = d
    res["dist_unit"] = [float(x) for x in dist_unit]
    res["dist_time"] = [float(x) for x in dist_time]
    res["package_default_minus_optimum_att"] = pkg["att"] - d["att"]
    if tight:
        res["package_tightened_minus_optimum_att"] = res["package_tightened"]["att"] - d["att"]
    return res


def local_case(Y, W, units, periods, lu, lt, lnn):
    cells = []
    for i, t in zip(*np.nonzero(W > 0)):
        w = local_weights(Y, W, i, t, lu, lt)
        sol = solve_optimum(Y, w, lnn)
        fit = sol["a"][i] + sol["b"][t] + sol["L"][i, t]
        cells.append(dict(unit=units[i], period=periods[t], tau=float(Y[i, t] - fit),
                          objective=sol["objective"], duality_gap=sol["gap"],
                          iterations=sol["iterations"]))
    return dict(lambda_unit=lu, lambda_time=lt, lambda_nn=jnum(lnn),
                att=float(np.mean([c["tau"] for c in cells])), treated_cells=cells)


def placebo_scores(Yc, k, settings):
    """The package's CV criterion at fixed lambdas: its default placebo sets, its own
    routine (default solver), and the same placebo taus at the optimum."""
    sets = trop_cv._generate_placebo_sets(Yc.shape[0], "resample", n_treated_units=1,
                                          n_trials=PLACEBO_TRIALS, random_state=PLACEBO_SEED)
    out = dict(placebo_units=[int(s[0]) for s in sets], scores={})
    for name, (lu, lt, lnn) in settings.items():
        t0 = time.perf_counter()
        pkg = trop_cv._placebo_rmse_for_lambdas(
            Y=Yc, placebo_sets=sets, treated_periods=k, lambda_unit=lu, lambda_time=lt,
            lambda_nn=lnn, n_jobs=1, prefer="threads", solver=None, verbose=False)
        secs = time.perf_counter() - t0
        taus = {}
        for u in sorted({int(s[0]) for s in sets}):
            Wp = np.zeros_like(Yc)
            Wp[u, -k:] = 1.0
            w, _, _ = package_weights(Yc, Wp, [u], lu, lt, k)
            sol = solve_optimum(Yc, w, lnn)
            fit = sol["a"][:, None] + sol["b"][None, :] + sol["L"]
            taus[u] = float(np.mean((Yc - fit)[Wp > 0]))
        rmse = math.sqrt(np.mean([taus[int(s[0])] ** 2 for s in sets]))
        out["scores"][name] = dict(lambda_unit=lu, lambda_time=lt, lambda_nn=jnum(lnn),
                                   package_default_rmse=pkg, package_seconds=secs,
                                   optimum_rmse=rmse,
                                   optimum_placebo_tau_by_unit={str(u): v for u, v in taus.items()})
    return out


# --------------------------------------------------------------- diff-diff 3.13.0
CODE_313 = r'''
import json, sys, time, warnings, numpy as np, pandas as pd
import diff_diff as dd
from diff_diff import TROP
assert dd.__version__ == "3.13.0", dd.__version__
spec = json.loads(sys.argv[1])
d = pd.read_csv(spec["data"])
Y = d.pivot(index="year", columns="state", values="packspercapita").values
D = d.pivot(index="year", columns="state", values="treated").values.astype(float)
T, N = Y.shape
out = {}
warnings.simplefilter("ignore")
for name, (lu, lt, lnn) in spec["settings"].items():
    lnn = float(lnn)
    lnn_eff = 1e10 if np.isinf(lnn) else lnn
    r = {}
    for label, mi, tol in spec["solver_settings"]:
        est = TROP(method="global", max_iter=mi, tol=tol)
        t0 = time.perf_counter()
        delta = est._compute_global_weights(Y, D, lt, lu, spec["k"], N, T)
        mu, a, b, L = est._solve_global_model(Y, delta, lnn_eff)
        cf = mu + a[None, :] + b[:, None] + L
        g = dict(att=float(np.mean((Y - cf)[D == 1])), seconds=time.perf_counter() - t0,
                 tau=[float(x) for x in (Y - cf)[D == 1]])
        if label != "default":
            r[label] = dict(max_iter=mi, tol=tol, global_=g)
            continue
        est = TROP(method="local", max_iter=mi, tol=tol)
        t0 = time.perf_counter()
        taus = []
        for t, i in zip(*np.nonzero(D == 1)):
            wm = est._compute_observation_weights(Y, D, i, t, lt, lu, None, N, T)
            a, b, L = est._estimate_model(Y, D == 0, wm, lnn_eff, N, T)
            taus.append(float(Y[t, i] - a[i] - b[t] - L[t, i]))
        l = dict(att=float(np.mean(taus)), seconds=time.perf_counter() - t0, tau=taus)
        r[label] = dict(max_iter=mi, tol=tol, global_=g, local=l)
    out[name] = r
if spec.get("public_fit"):
    pub = {}
    for name in spec["public_fit"]:
        lu, lt, lnn = spec["settings"][name]
        for method in ("global", "local"):
            t0 = time.perf_counter()
            est = TROP(method=method, lambda_time_grid=[lt], lambda_unit_grid=[lu],
                       lambda_nn_grid=[float(lnn)], n_bootstrap=2, seed=1)
            res = est.fit(d, outcome="packspercapita", treatment="treated", unit="state", time="year")
            pub[name + "|" + method] = dict(att=float(res.att), loocv_score=float(res.loocv_score),
                                          seconds=time.perf_counter() - t0)
    out["public_fit"] = pub
print(json.dumps(out))
'''


def run_313(python, settings, public_fit):
    spec = dict(data=str(Path(DATA).resolve()), k=12,
                settings={n: [lu, lt, "inf" if math.isinf(lnn) else lnn]
                          for n, (lu, lt, lnn) in settings.items()},
                solver_settings=[["default", 100, 1e-6], ["max_iter_10000_tol_1e-12", 10000, 1e-12]],
                public_fit=public_fit)
    r = subprocess.run([python, "-c", CODE_313, json.dumps(spec)], cwd="/tmp",
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diff-diff-313-python")
    ap.add_argument("--public-fit-313", action="store_true",
                    help="also time 3.13's public fit() (LOOCV over every control cell, ~8 min each)")
    ap.add_argument("--slow", action="store_true")
    ap.add_argument("--slow-only", action="store_true",
                    help="add the --slow parts to an existing fixture instead of remaking it")
    args = ap.parse_args()
    _load_packages()
    warnings.simplefilter("ignore")
    t_start = time.perf_counter()

    Y, W, states, years = load_prop99()
    ca = states.index("California")
    k = int(W[ca].sum())
    assert k == 12 and years[-k] == 1989
    if args.slow_only:
        out = json.loads(Path(OUT).read_text())
        slow(out, Y, W, ca, k)
        out["meta"]["seconds_slow_parts"] = time.perf_counter() - t_start
        Path(OUT).write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
        print("wrote", OUT)
        return

    Ys, Ws = make_panel(**SIM_SMALL)
    sim_text = panel_csv_text(Ys, Ws)
    Path(SIM_CSV).write_text(sim_text)
    # the CSV is what is tested: re-read it so the fixture is made from the file
    rows = list(csv.DictReader(io.StringIO(sim_text)))
    Ys2 = np.array([float(r["y"]) for r in rows]).reshape(Ys.shape)
    assert np.array_equal(Ys2, Ys)
    sim_treated = list(range(SIM_SMALL["n_treated"]))
    ks = SIM_SMALL["n_periods"] - SIM_SMALL["first_treated_period"]

    out = dict(meta=dict(
        source="trop 0.1.11 (PyPI, MIT; Athey, Imbens, Qu & Viviano), cvxpy %s, SCS %s, OSQP %s, Clarabel %s"
               % (cp.__version__, _ver("scs"), _ver("osqp"), _ver("clarabel")),
        paper="Athey, Imbens, Qu & Viviano, Triply Robust Panel Estimators, arXiv:2508.21536 (J. Applied Econometrics 2026, doi:10.1002/jae.70061)",
        script="tests/parity/ports/trop_reference.py",
        date=datetime.date.today().isoformat(),
        python=platform.python_version(), numpy=np.__version__, scipy=scipy.__version__,
        machine="%s, %d cores" % (platform.machine(), _ncores()),
        call="trop.TROP_TWFE_average(Y, W, treated_units, lambda_unit, lambda_time, lambda_nn, treated_periods=k, solver=None)",
        objective="min_{mu,a,b,L} sum_js w_js (Y_js - mu - a_j - b_s - L_js)^2 + lambda_nn ||L||_*, "
                  "w_js = (1 - W_js) exp(-lambda_unit dist_unit_j) exp(-lambda_time dist_time_s); "
                  "dist_time_s = |s - (T - k/2)| (0-based s); dist_unit_j = sqrt(mean_{s < T-k} (mean_{i treated} Y_is - Y_js)^2); "
                  "lambda_nn = inf: no L; tau = mean_{W>0} (Y - mu - a - b - L)",
        optimum="independent solver in the script: FE profiled exactly, FISTA + adaptive restart on L, "
                "step 1/(2 max w), stop at duality gap <= %g relative; a second start from a random L "
                "recorded; 'package_tightened' = the package's own code path with SCS eps_abs = eps_rel = "
                "1e-10 (OSQP 1e-10 + polish for lambda_nn = inf)" % GAP_TOL,
        normalisation="alpha/beta as in 3.13: mu + alpha_i + beta_t with alpha_0 = beta_0 = 0 (units/periods "
                      "in the orders listed); only mu + alpha_i + beta_t + L_it is what the objective pins down",
        tolerances=dict(
            optimum_att="1e-8 absolute is safe: second starts agree to <= 1e-9 (see second_start), the "
                        "package's own path with SCS at 1e-10 agrees to ~1e-7 (SCS's own accuracy)",
            optimum_tau_cells="1e-7 absolute",
            optimum_L_alpha_beta="loose (1e-4): rows with weights near 0 (down to 1e-30 on Prop 99) "
                                 "are pinned by the nuclear norm only; compare on the treated cells",
            package_default="SCS eps 1e-4: off the optimum by up to ~1e-2 in tau; deterministic for this "
                            "SCS build only, never a parity target",
            lambda_nn_0="ill-posed, never a target"),
    ))
    out["data"] = dict(
        prop99=dict(file=DATA, md5=PROP99_MD5,
                    layout="Y[i, s]: states in alphabetical order (rows), years 1970..2000 (columns); "
                           "California (row %d) treated 1989..2000, k = 12" % ca,
                    units=states, periods=years, treated_units=[ca], k=k),
        sim_small=dict(file=SIM_CSV, md5=hashlib.md5(sim_text.encode()).hexdigest(),
                       generator=GENERATOR_DOC, params=SIM_SMALL, k=ks,
                       units=list(range(SIM_SMALL["n_units"])),
                       periods=list(range(1, SIM_SMALL["n_periods"] + 1)), treated_units=sim_treated),
    )

    # ---- global (= the package's estimator)
    out["global"] = {"prop99": {}, "sim_small": {}}
    for name, (lu, lt, lnn) in SETTINGS.items():
        print("prop99", name, flush=True)
        out["global"]["prop99"][name] = global_case(Y, W, [ca], k, states, years, lu, lt, lnn)
        print("sim", name, flush=True)
        out["global"]["sim_small"][name] = global_case(
            Ys, Ws, sim_treated, ks, list(range(Ys.shape[0])), list(range(1, Ys.shape[1] + 1)), lu, lt, lnn)

    # ---- local (not in trop): converged optimum of 3.13's per-cell objective
    out["local_reference"] = dict(
        note="NOT from trop (which has no per-cell method): the converged optimum, by the same independent "
             "solver, of diff-diff 3.13's method='local' objective (Athey et al. Algorithm 2 as 3.13 reads it): "
             "for treated cell (i,t): w_js = (1 - W_js) omega_j theta_s, theta_s = exp(-lambda_time |s - t|), "
             "omega_j = exp(-lambda_unit sqrt(mean_{s != t, W_is = W_js = 0} (Y_is - Y_js)^2)), omega_i = 1; "
             "min sum w (Y - a_j - b_s - L_js)^2 + lambda_nn ||L||_*; tau_it = Y_it - a_i - b_t - L_it; ATT = mean.",
        prop99={}, sim_small={})
    for name in ("lu0.5_lt0.1_nn0.1", "lu0.5_lt0.1_nn1", "lu0.5_lt0.1_nninf", "lu0_lt0_nn0.1"):
        lu, lt, lnn = SETTINGS[name]
        print("local", name, flush=True)
        out["local_reference"]["prop99"][name] = local_case(Y, W, states, years, lu, lt, lnn)
        out["local_reference"]["sim_small"][name] = local_case(
            Ys, Ws, list(range(Ys.shape[0])), list(range(1, Ys.shape[1] + 1)), lu, lt, lnn)

    # ---- diff-diff 3.13.0
    if args.diff_diff_313_python:
        print("3.13", flush=True)
        sel = {n: SETTINGS[n] for n in ("lu0.5_lt0.1_nn0.1", "lu0.5_lt0.1_nn1", "lu0.5_lt0.1_nninf",
                                         "lu0.5_lt0.1_nn0", "lu0_lt0_nn0.1")}
        r313 = run_313(args.diff_diff_313_python, sel,
                       ["lu0.5_lt0.1_nn0.1"] if args.public_fit_313 else [])
        for n in sel:
            for lab, v in r313[n].items():
                g = v["global_"]
                if "optimum" in out["global"]["prop99"][n]:
                    g["minus_optimum"] = g["att"] - out["global"]["prop99"][n]["optimum"]["att"]
                    g["relative_to_optimum"] = g["minus_optimum"] / abs(out["global"]["prop99"][n]["optimum"]["att"])
                loc = out["local_reference"]["prop99"].get(n)
                if loc is not None and "local" in v:
                    v["local"]["minus_reference"] = v["local"]["att"] - loc["att"]
                    v["local"]["relative_to_reference"] = v["local"]["minus_reference"] / abs(loc["att"])
        out["diff_diff_3_13"] = dict(
            note="diff-diff 3.13.0 on Prop 99 with the lambdas fixed, through its own final-estimation "
                 "methods (_compute_global_weights + _solve_global_model; _compute_observation_weights + "
                 "_estimate_model per treated cell): exactly what fit() does after its LOOCV, without the "
                 "LOOCV (which refits once per control cell, ~8 minutes here even for a one-point grid). "
                 "'default' = max_iter 100, tol 1e-6 (3.13's defaults); the tightened setting "
                 "(max_iter 10000, tol 1e-12) is run for the global method only (the local one takes "
                 "minutes per cell). Run from /tmp with /work/venv313/bin/python.",
            results=r313)

    if args.slow:
        slow(out, Y, W, ca, k)

    out["meta"]["seconds_to_generate"] = time.perf_counter() - t_start
    Path(OUT).write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    print("wrote", OUT)


def slow(out, Y, W, ca, k):
    Yc = np.delete(Y, ca, axis=0)
    print("placebo scores", flush=True)
    out["placebo_cv_prop99"] = dict(
        note="the package's CV criterion at fixed lambdas on the 38 control states (California row "
             "deleted, rows otherwise alphabetical): trop.cv._generate_placebo_sets(38, 'resample', "
             "n_treated_units=1, n_trials=200, random_state=0) (its defaults) and "
             "trop.cv._placebo_rmse_for_lambdas (default solver); optimum_rmse uses converged placebo taus",
        **placebo_scores(Yc, k, {n: SETTINGS[n] for n in ("lu0.5_lt0.1_nn0.1", "lu0.5_lt0.1_nninf",
                                                          "lu0.5_lt0.1_nn1")}))
    print("bootstrap", flush=True)
    lam = SETTINGS["lu0.5_lt0.1_nn0.1"]
    t0 = time.perf_counter()
    b = trop.bootstrap(Y, W, [ca], k, lambdas=lam, n_bootstrap=1000, random_state=BOOT_SEED)
    secs = time.perf_counter() - t0
    seeds = np.random.SeedSequence(BOOT_SEED).spawn(3)
    controls = np.setdiff1d(np.arange(Y.shape[0]), [ca])
    first = [np.random.default_rng(s).choice(controls, size=controls.size, replace=True).tolist() for s in seeds]
    out["bootstrap_prop99"] = dict(
        call="trop.bootstrap(Y, W, [California], 12, lambdas=(0.5, 0.1, 0.1), n_bootstrap=1000, "
             "random_state=%d) (defaults: resample='controls', n_jobs=-1, prefer='processes', alpha=0.05)" % BOOT_SEED,
        random="yes: Monte Carlo error of the SE ~ se / sqrt(2 (B - 1)); draws use the package's default "
               "(SCS eps 1e-4) solver",
        estimate=b.estimate, se=b.se, ci=list(b.ci), n_failed=b.n_failed, seconds=secs,
        draws=[jnum(x) for x in b.estimates],
        first_three_control_draws=first)
    print("cv (README grids)", flush=True)
    out["cv_readme_prop99"] = cv_readme(Y, W, ca, k)
    out["timing"] = timing(Y, W, ca, k)


def cv_readme(Y, W, ca, k):
    """The package's documented tuning (README quick start) on Prop 99: TROP_cv_cycle on the
    control rows with unit/time grids np.arange(0, 2, 0.2), nn grid np.arange(0.005, 0.2,
    0.02), defaults otherwise (200 placebo sets of 1 unit, random_seed 0, n_jobs -1 threads).
    Identical placebo solves are memoised (same inputs -> same SCS result), so the wall time
    is not the package's; the number of solves the package would do is counted."""
    Yc = np.delete(Y, ca, axis=0)
    orig = trop_cv._simulate_ate
    cache, calls = {}, [0]
    per_solve = []

    def memo(Yx, treated_units, treated_periods, lu, lt, lnn, solver=None, verbose=False):
        calls[0] += 1
        key = (tuple(int(u) for u in treated_units), float(lu), float(lt), float(lnn))
        if key not in cache:
            t0 = time.perf_counter()
            cache[key] = orig(Yx, treated_units, treated_periods, lu, lt, lnn, solver, verbose)
            per_solve.append(time.perf_counter() - t0)
        return cache[key]

    trop_cv._simulate_ate = memo
    try:
        t0 = time.perf_counter()
        lam = trop.TROP_cv_cycle(Yc, k, unit_grid=np.arange(0, 2, 0.2), time_grid=np.arange(0, 2, 0.2),
                                 nn_grid=np.arange(0.005, 0.2, 0.02))
        secs = time.perf_counter() - t0
    except RuntimeError as e:
        return dict(error=repr(e), seconds=time.perf_counter() - t0, placebo_solves_requested=calls[0])
    finally:
        trop_cv._simulate_ate = orig
    lam = tuple(float(x) for x in lam)
    t0 = time.perf_counter()
    att = trop.TROP_TWFE_average(Y, W, [ca], *lam, treated_periods=k)
    fit_secs = time.perf_counter() - t0
    w, _, _ = package_weights(Y, W, [ca], *lam[:2], k)
    sol = solve_optimum(Y, w, lam[2])
    fit = sol["a"][:, None] + sol["b"][None, :] + sol["L"]
    return dict(
        call="trop.TROP_cv_cycle(np.delete(Y, CA, 0), 12, unit_grid=np.arange(0, 2, 0.2), "
             "time_grid=np.arange(0, 2, 0.2), nn_grid=np.arange(0.005, 0.2, 0.02)); then "
             "trop.TROP_TWFE_average(Y, W, [CA], *lambdas, treated_periods=12)",
        lambdas_unit_time_nn=list(lam), att_package_default=att,
        att_optimum=float(np.mean((Y - fit)[W > 0])), optimum_gap=sol["gap"],
        seconds_cv_memoised=secs, seconds_final_fit=fit_secs,
        placebo_solves_requested=calls[0], placebo_solves_distinct=len(cache),
        median_seconds_per_solve=float(np.median(per_solve)) if per_solve else None,
        estimated_seconds_without_memo=float(np.median(per_solve)) * calls[0] if per_solve else None)


def timing(Y, W, ca, k):
    res = {}
    Yb, Wb = make_panel(**SIM_BIG)
    big_text = panel_csv_text(Yb, Wb)
    kb = SIM_BIG["n_periods"] - SIM_BIG["first_treated_period"]
    tb = list(range(SIM_BIG["n_treated"]))
    res["sim_big"] = dict(generator=GENERATOR_DOC, params=SIM_BIG, k=kb,
                          csv_md5=hashlib.md5(big_text.encode()).hexdigest(), fits={})
    for lam in [(0.5, 0.1, 0.1), (0.5, 0.1, math.inf)]:
        t0 = time.perf_counter()
        tau = trop.TROP_TWFE_average(Yb, Wb, tb, *lam, treated_periods=kb)
        res["sim_big"]["fits"]["lu%g_lt%g_nn%s" % lam] = dict(att=tau, seconds=time.perf_counter() - t0)
    one = time.perf_counter()
    trop.TROP_TWFE_average(np.delete(Y, ca, 0), _placebo_W(Y, ca, k), [0], 0.5, 0.1, 0.1, treated_periods=k)
    res["prop99_one_placebo_fit_seconds"] = time.perf_counter() - one
    return res


def _placebo_W(Y, ca, k):
    Wp = np.zeros((Y.shape[0] - 1, Y.shape[1]))
    Wp[0, -k:] = 1.0
    return Wp


def _ver(mod):
    try:
        from importlib.metadata import version
        return version(mod)
    except Exception:
        return "?"


def _ncores():
    import os
    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
