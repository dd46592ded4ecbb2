"""Confidence sets for ``theta = l' tau_post`` when parallel trends may fail by a
bounded amount (Rambachan & Roth 2023), on plain arrays.

Notation (as the paper and R ``HonestDiD``): ``beta`` stacks ``n_pre`` event-study
coefficients before the reference period and ``n_post`` after it; ``beta = tau + delta``
with ``tau_pre = 0``; ``delta`` is the violation of parallel trends, ``delta_0 = 0`` at
the reference period. A restriction is a union of polyhedra ``{delta : A delta <= d}``:

* smoothness ``Delta^SD(M)``: every second difference of ``delta`` (through the
  reference period) is at most ``M`` in absolute value (one polyhedron);
* relative magnitudes ``Delta^RM(Mbar)``: every post-period first difference is at
  most ``Mbar`` times the largest pre-period first difference (a union over which
  pre-period difference is the largest and its sign);
* ``Delta^SDRM(Mbar)``: the same with second differences.

Three kinds of interval:

* the identified set (``beta`` taken as the truth): two linear programs per polyhedron;
* the fixed-length confidence interval (FLCI; Armstrong & Kolesar) for ``Delta^SD``:
  the affine estimator ``theta_hat = l_pre' beta_pre + l' beta_post`` whose half-length
  ``h * cv_alpha(bias / h)`` is smallest, ``h`` its standard deviation, ``bias`` its
  worst-case bias and ``cv_alpha(t)`` the ``1 - alpha`` quantile of ``|N(t, 1)|``.
  R ``HonestDiD`` takes ``cv_alpha`` from 10^6 simulated draws and the optimum from a
  bisection on numerical derivatives; here both are exact (a root of the normal
  tail equation; one smooth convex program in the cumulated pre-period weights);
* the conditional and conditional-least-favourable hybrid tests of Andrews, Roth &
  Pakes (ARP) inverted over a grid of ``theta`` (R's ``"Conditional"`` and ``"C-LF"``).
  The test statistic is the value of the linear program
  ``min_{eta, xi} eta  s.t.  y - X xi <= eta * sd``; by duality it is the largest of
  ``gamma' y`` over the vertices ``gamma`` of ``{gamma >= 0 : gamma' sd = 1,
  gamma' X = 0}``. Those vertices do not depend on the data, so they are enumerated
  once and the statistic, the optimal vertex and the truncation points ``v_lo``,
  ``v_up`` of its conditional distribution (the values of ``gamma' y`` for which the
  same vertex stays optimal) follow in closed form for the whole grid at once. R
  finds the same truncation points by bisection to 1e-6.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .._lazy import optimize, stats

VERTEX_BUDGET = 1_500_000  # candidate bases of the dual program before we refuse


# ------------------------------------------------------------------ restrictions
def _full_index(n_pre, n_post):
    """Columns of the restriction matrices before the reference column is dropped."""
    return n_pre + n_post + 1


def _drop_reference(A, n_pre):
    keep = np.abs(A).sum(axis=1) > 1e-12
    A = A[keep]
    return np.delete(A, n_pre, axis=1)


def restriction_sd(n_pre, n_post, M):
    """``Delta^SD(M)``: ``|delta_{t+1} - 2 delta_t + delta_{t-1}| <= M``."""
    n = _full_index(n_pre, n_post)
    second = np.zeros((n - 2, n))
    for r in range(n - 2):
        second[r, r:r + 3] = (1.0, -2.0, 1.0)
    A = _drop_reference(np.vstack([second, -second]), n_pre)
    return [(A, np.full(A.shape[0], float(M)))]


def _relative(n_pre, n_post, Mbar, order):
    """The polyhedra of ``Delta^RM`` (``order=1``) or ``Delta^SDRM`` (``order=2``)."""
    n = _full_index(n_pre, n_post)
    stencil = (-1.0, 1.0) if order == 1 else (1.0, -2.0, 1.0)
    rows = n - order
    diff = np.zeros((rows, n))
    for r in range(rows):
        diff[r, r:r + order + 1] = stencil
    n_pre_rows = n_pre + 1 - order  # differences ending at or before the reference period
    polyhedra = []
    for s in range(n_pre_rows):  # the pre-period difference that is the largest
        for sign in (1.0, -1.0):
            biggest = sign * diff[s]
            scale = np.r_[np.ones(n_pre_rows), np.full(rows - n_pre_rows, float(Mbar))]
            bound = scale[:, None] * biggest[None, :]
            A = _drop_reference(np.vstack([diff - bound, -diff - bound]), n_pre)
            polyhedra.append((A, np.zeros(A.shape[0])))
    return polyhedra


def restriction_rm(n_pre, n_post, Mbar):
    """``Delta^RM(Mbar)``: post first differences at most ``Mbar`` x the largest pre one."""
    return _relative(n_pre, n_post, Mbar, 1)


def restriction_sdrm(n_pre, n_post, Mbar):
    """``Delta^SDRM(Mbar)``: the same bound on second differences."""
    if n_pre < 2:
        raise ValueError("the combined restriction (Delta^SDRM) bounds post-period second "
                         "differences by pre-period ones: it needs at least two pre-periods")
    return _relative(n_pre, n_post, Mbar, 2)


# ------------------------------------------------------------------ identified set
def identified_set(beta, n_pre, l_vec, polyhedra):
    """``[lb, ub]``: the values of ``l' (beta_post - delta_post)`` over the ``delta`` in
    the restriction with ``delta_pre = beta_pre`` (the union over the polyhedra); NaN
    when no such ``delta`` exists (the leads alone break the restriction)."""
    n_post = l_vec.size
    theta = float(l_vec @ beta[n_pre:])
    objective = np.r_[np.zeros(n_pre), l_vec]
    a_eq = np.hstack([np.eye(n_pre), np.zeros((n_pre, n_post))])
    lows, highs = [], []
    for A, d in polyhedra:
        kwargs = dict(A_ub=A, b_ub=d, A_eq=a_eq, b_eq=beta[:n_pre], bounds=(None, None),
                      method="highs")
        low = optimize.linprog(objective, **kwargs)
        high = optimize.linprog(-objective, **kwargs)
        if low.status == 2 or high.status == 2:  # infeasible: this pre-period is not the largest
            continue
        if low.status != 0 or high.status != 0:
            return -math.inf, math.inf  # unbounded (or failed): no finite bound
        lows.append(theta + high.fun)   # theta - max l'delta
        highs.append(theta - low.fun)   # theta - min l'delta
    if not lows:  # the leads themselves violate the restriction (R reports l' beta_post)
        return math.nan, math.nan
    return min(lows), max(highs)


# ------------------------------------------------------------------ FLCI
def _sf(x):
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _pdf(x):
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def folded_normal_quantile(t, alpha):
    """``c`` with ``P(|N(t, 1)| <= c) = 1 - alpha`` and ``dc/dt`` (Newton's method on the
    convex, decreasing tail ``sf(c - t) + sf(c + t)``, safeguarded by bisection)."""
    t = abs(float(t))
    low, high = 0.0, t + float(stats.norm.isf(alpha / 2)) + 1.0
    c = min(t + float(stats.norm.isf(alpha)), high)
    for _ in range(100):
        excess = _sf(c - t) + _sf(c + t) - alpha
        if excess > 0:
            low = c
        else:
            high = c
        slope = _pdf(c - t) + _pdf(c + t)
        new = c + excess / slope if slope > 0 else math.nan
        if not low < new < high:  # (NaN fails too: bisect)
            new = (low + high) / 2
        if abs(new - c) <= 1e-15 * max(1.0, c):
            c = new
            break
        c = new
    left, right = _pdf(c - t), _pdf(c + t)
    return c, ((left - right) / (left + right) if left + right > 0 else 1.0)


def flci(beta, sigma, n_pre, l_vec, M, alpha):
    """Optimal fixed-length confidence interval under ``Delta^SD(M)``.

    Returns ``(lower, upper, pre_weights, half_length, sd, worst_case_bias)``.
    """
    n_post = l_vec.size
    periods = np.arange(1, n_post + 1, dtype=float)
    total = float(periods @ l_vec)  # the pre weights must undo a linear trend: sum(w) = total
    # worst-case bias / M = sum_s |S_s| + sum_{k<K} |c_k| (R writes sum_s |S_s| - total +
    # |total|, the same for sum(t l_t) >= 0 and too large by 2|total| below zero)
    constant = sum(abs(float(np.arange(1, s + 1) @ l_vec[n_post - s:]))
                   for s in range(1, n_post + 1))
    # pre weights l_pre = T @ (c_1, ..., c_{K-1}, total), c the cumulated sums of w
    K = n_pre
    diff = np.eye(K) - np.eye(K, k=-1)   # w from cumulated sums; l_pre from w: the same
    T = diff @ diff
    s_pre, s_cross = sigma[:n_pre, :n_pre], sigma[:n_pre, n_pre:] @ l_vec
    s_post = float(l_vec @ sigma[n_pre:, n_pre:] @ l_vec)
    scale = math.sqrt(max(np.diag(sigma).max(), 1e-300))
    Q = T.T @ s_pre @ T / scale ** 2   # variance in units of scale^2
    g = 2 * T.T @ s_cross / scale ** 2
    v0 = s_post / scale ** 2
    free, last = np.arange(K - 1), K - 1
    m = float(M) / scale

    def parts(c):
        full = np.r_[c, total]
        var = full @ Q @ full + g @ full + v0
        grad = (2 * Q @ full + g)[free]
        return max(var, 0.0), grad

    def bias_of(c):
        return m * (constant + np.abs(c).sum())

    # the minimum-variance weights (unconstrained quadratic in c)
    if K > 1:
        rhs = -(2 * Q[np.ix_(free, [last])][:, 0] * total + g[free])
        c_var = np.linalg.lstsq(2 * Q[np.ix_(free, free)], rhs, rcond=None)[0]
    else:
        c_var = np.zeros(0)

    def half_length(c):
        var, _ = parts(c)
        h = math.sqrt(var)
        bias = bias_of(c)
        if h <= 0:
            return bias
        return h * folded_normal_quantile(bias / h, alpha)[0]

    if m == 0 or K == 1:
        best = c_var
    else:
        n = K - 1

        def objective(x):
            c, u = x[:n], x[n:]
            var, dvar = parts(c)
            h = math.sqrt(max(var, 1e-300))
            bias = m * (constant + u.sum())
            cv, slope = folded_normal_quantile(bias / h, alpha)
            value = h * cv
            d_h = cv - slope * bias / h           # d(h cv(b/h))/dh
            grad = np.r_[d_h * dvar / (2 * h), np.full(n, slope * m)]
            return value, grad

        eye = np.eye(n)
        cons = {"type": "ineq", "fun": lambda x: np.r_[x[n:] - x[:n], x[n:] + x[:n]],
                "jac": lambda x: np.block([[-eye, eye], [eye, eye]])}
        best, best_value = None, math.inf
        for start in (c_var, np.zeros(n)):
            x0 = np.r_[start, np.abs(start)]
            fit = optimize.minimize(objective, x0, jac=True, method="SLSQP", constraints=[cons],
                                    options={"ftol": 1e-15, "maxiter": 1000})
            c = fit.x[:n]
            value = half_length(c)
            if value < best_value:
                best, best_value = c, value
    full = np.r_[best, total]
    pre_weights = T @ full
    var, _ = parts(best)
    sd = math.sqrt(var) * scale
    bias = bias_of(best) * scale
    half = half_length(best) * scale
    center = float(pre_weights @ beta[:n_pre] + l_vec @ beta[n_pre:])
    return center - half, center + half, pre_weights, half, sd, bias


def worst_case_bias_lp(pre_weights, l_vec, n_pre, M):
    """Worst-case bias of ``pre_weights' beta_pre + l' beta_post`` over ``Delta^SD(M)`` by
    linear programming (a check of :func:`flci`'s closed form)."""
    (A, d), = restriction_sd(n_pre, l_vec.size, M)
    objective = np.r_[pre_weights, l_vec]  # Delta^SD is symmetric: max |bias| = max bias
    top = optimize.linprog(-objective, A_ub=A, b_ub=d, bounds=(None, None), method="highs")
    return -top.fun if top.status == 0 else math.inf


# ------------------------------------------------------------------ ARP tests
def _dual_vertices(sd, X):
    """Vertices of ``{gamma >= 0 : gamma' sd = 1, gamma' X = 0}`` (rows)."""
    m = sd.size
    scale = sd.max()
    sd = sd / scale  # vertices scale by 1 / scale: enumerate on a unit scale
    if X.shape[1]:
        u, s, _ = np.linalg.svd(X, full_matrices=False)
        X = u[:, s > 1e-10 * max(s.max(), 1e-300)]
    W = np.column_stack([sd, X])
    r = W.shape[1]
    if np.linalg.matrix_rank(W) < r:
        raise ValueError("the moment inequalities do not bound the test statistic (the "
                         "nuisance directions span the scale vector); cannot test")
    count = math.comb(m, r)
    if count > VERTEX_BUDGET:
        raise ValueError(f"the conditional test would enumerate {count:,} bases of its dual "
                         f"program (limit {VERTEX_BUDGET:,}); use fewer post-periods (or the "
                         "FLCI with method='smoothness')")
    e1 = np.zeros(r)
    e1[0] = 1.0
    found = []
    combos = itertools.combinations(range(m), r)
    while True:
        chunk = np.array(list(itertools.islice(combos, 50_000)), dtype=np.intp)
        if chunk.size == 0:
            break
        blocks = np.transpose(W[chunk], (0, 2, 1))      # W_B' : (n, r, r)
        det = np.linalg.det(blocks)
        ok = np.abs(det) > 1e-12
        if not ok.any():
            continue
        gamma_b = np.linalg.solve(blocks[ok], np.broadcast_to(e1, (ok.sum(), r))[..., None])[..., 0]
        feasible = (gamma_b >= -1e-12).all(axis=1)
        for rows, values in zip(chunk[ok][feasible], gamma_b[feasible]):
            gamma = np.zeros(m)
            gamma[rows] = np.clip(values, 0.0, None)
            found.append(gamma)
    if not found:
        raise ValueError("the test's linear program has no finite value (no dual vertex)")
    vertices = np.unique(np.round(np.array(found), 13), axis=0)
    return vertices / scale


def least_favorable_cv(vertices, cov, kappa, n_sims, seed):
    """The ``1 - kappa`` quantile of the test statistic when every moment binds
    (``y ~ N(0, cov)``), from ``n_sims`` draws with a fixed seed: numpy's
    ``default_rng(seed).multivariate_normal``, the stream moderndid's port uses (R
    ``HonestDiD`` draws as many with its own generator)."""
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(np.zeros(cov.shape[0]), cov, size=n_sims).T
    batch = max(1, int(2e7 // max(vertices.shape[0], 1)))
    stat = np.concatenate([(vertices @ draws[:, i:i + batch]).max(axis=0)
                           for i in range(0, n_sims, batch)])
    return float(np.quantile(stat, 1 - kappa))


def arp_accept(beta, sigma, A, d, n_pre, l_vec, grid, alpha, hybrid, kappa=None,
               post_moments_only=True, n_sims=1000, seed=0):
    """Which ``theta`` in ``grid`` the ARP test of ``H0: l' tau_post = theta`` accepts,
    for ``delta`` in ``{A delta <= d}`` (``hybrid``: ``"LF"`` or ``"ARP"``)."""
    n_post = l_vec.size
    kappa = alpha / 10 if kappa is None else kappa
    Y = A @ beta - d
    cov_y = A @ sigma @ A.T
    last = int(np.flatnonzero(l_vec)[-1])
    direction = np.zeros(n_post)
    direction[last] = 1.0 / l_vec[last]
    others = [j for j in range(n_post) if j != last]
    nuisance = np.zeros((n_post, len(others)))
    for col, j in enumerate(others):
        nuisance[j, col] = 1.0
        nuisance[last, col] = -l_vec[j] / l_vec[last]
    a_post = A[:, n_pre:]
    shift, X = a_post @ direction, a_post @ nuisance
    nuisance_case = n_post > 1
    if nuisance_case and post_moments_only:
        rows = np.flatnonzero(np.abs(a_post).sum(axis=1) > 0)
    else:
        rows = np.arange(A.shape[0])
    y0, shift, X = Y[rows], shift[rows], X[rows]
    cov = cov_y[np.ix_(rows, rows)]
    sd = np.sqrt(np.diag(cov))
    if (sd <= 0).any():
        raise ValueError("a moment of the restriction has zero variance; cannot test")
    vertices = _dual_vertices(sd, X if nuisance_case else np.zeros((rows.size, 0)))
    ys = y0[:, None] - shift[:, None] * np.asarray(grid, float)[None, :]
    values = vertices @ ys                     # (vertices, grid)
    best = values.argmax(axis=0)
    eta = values[best, np.arange(ys.shape[1])]
    lf_cv = (least_favorable_cv(vertices, cov, kappa, n_sims, seed) if hybrid == "LF"
             else math.inf)
    if nuisance_case:
        size = (alpha - kappa) / (1 - kappa) if hybrid == "LF" else alpha
    else:
        size = alpha  # R HonestDiD's single-post-period test keeps alpha in its second stage
    n_grid = ys.shape[1]
    z_lo, z_up, stat = np.empty(n_grid), np.empty(n_grid), np.empty(n_grid)
    degenerate = np.zeros(n_grid, dtype=bool)
    for vertex in np.unique(best):
        at = np.flatnonzero(best == vertex)
        gamma = vertices[vertex]
        var_b = float(gamma @ cov @ gamma)
        if var_b < 1e-20:
            degenerate[at] = True
            continue
        sigma_b = math.sqrt(var_b)
        b = cov @ gamma / var_b
        slope = 1.0 - vertices @ b             # (vertices,)
        level = values[:, at] - np.outer(vertices @ b, eta[at])   # v' S at each grid point
        up, low = slope < -1e-10, slope > 1e-10
        none = np.full(at.size, math.inf)
        v_lo = (level[low] / slope[low, None]).max(axis=0) if low.any() else -none
        v_up = (level[up] / slope[up, None]).min(axis=0) if up.any() else none
        if hybrid == "LF" and nuisance_case:
            v_up = np.minimum(v_up, lf_cv)
        z_lo[at], z_up[at], stat[at] = v_lo / sigma_b, v_up / sigma_b, eta[at] / sigma_b
    accept = np.ones(n_grid, dtype=bool)
    accept[degenerate] = ~(eta[degenerate] > 0)
    # outside its conditioning region (numerically) the statistic is not rejected, as in R
    testable = ~degenerate & (z_lo <= stat) & (stat <= z_up)
    if testable.any():
        lo, hi = z_lo[testable], z_up[testable]
        critical = np.where(lo < hi, stats.truncnorm.ppf(1 - size, lo, np.maximum(hi, lo + 1e-300)),
                            lo)
        if nuisance_case:
            critical = np.maximum(critical, 0.0)
        accept[testable] = ~(stat[testable] > critical)
    if hybrid == "LF":
        accept &= ~(eta > lf_cv)
    return accept
