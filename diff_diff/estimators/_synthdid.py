"""Synthetic difference-in-differences on a block design (Arkhangelsky, Athey, Hirshberg,
Imbens & Wager 2021), with the weights computed as R ``synthdid`` computes them.

``Y`` is units x periods with the ``n0`` control units first and the ``t0`` pre-treatment
periods first. Unit weights ``omega`` (on the controls) and time weights ``lambda`` (on
the pre-periods) lie on the simplex and solve penalised least-squares problems on the
"collapsed" matrix (controls and the treated average; pre-periods and the post average):

* ``lambda``: the controls' pre-period outcomes reproduce their post-period average, up
  to an intercept, with ridge ``zeta_lambda^2 * n0 * |lambda|^2``;
* ``omega``: the controls reproduce the treated units' pre-period path, up to an
  intercept, with ridge ``zeta_omega^2 * t0 * |omega|^2``.

Each is found by Frank-Wolfe with exact line search, stopped when an iteration lowers the
objective by less than ``min_decrease^2``: first at most 100 iterations, then the small
weights (at most a quarter of the largest) set to zero, then again up to 10^4 iterations
from there (R's ``sparsify``). Defaults (R ``synthdid_estimate``): ``noise`` = standard
deviation of the controls' pre-period first differences, ``zeta_omega = (n1 t1)^(1/4)
noise``, ``zeta_lambda = 1e-6 noise``, ``min_decrease = 1e-5 noise``. The estimate is
``tau = (treated post - treated pre . lambda) - omega . (controls post - controls pre .
lambda)`` with treated units averaged by ``treated_weights`` (equal by default; the
sampling weights under a survey design, as R's ``synthdid_estimate_weighted``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_ITER = 10_000
MAX_ITER_PRE_SPARSIFY = 100


def _sparsify(v):
    v = np.where(v <= v.max(axis=-1, keepdims=True) / 4, 0.0, v)
    return v / v.sum(axis=-1, keepdims=True)


def sum_normalize(v):
    """``v / sum(v)``; uniform where the sum is zero (R's ``sum_normalize``)."""
    v = np.asarray(v, float)
    total = v.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, v / total, 1.0 / v.shape[-1])


def _fw_single(A, b, zeta, x, min_decrease, max_iter):
    """:func:`fw_batch` for one problem, with scalar bookkeeping (no batch indexing)."""
    level = A.mean(axis=1, keepdims=True)
    A, b = A - level, b - level[:, 0]
    A = A - A.mean(axis=0)
    b = b - b.mean()
    n = A.shape[0]
    z2 = zeta * zeta
    eta = n * z2
    gram = A.T @ A
    c, bb = A.T @ b, float(b @ b)
    x = np.array(x, dtype=float, copy=True)
    gx = gram @ x
    xx, xgx, xc = float(x @ x), float(x @ gx), float(x @ c)
    previous = current = math.inf
    md2 = min_decrease * min_decrease
    it = 0
    while it < max_iter and (it < 2 or previous - current > md2):
        half_grad = gx - c + eta * x
        i = int(half_grad.argmin())
        x_i, gx_i, g_ii = x[i], gx[i], gram[i, i]
        num = half_grad[i] - float(half_grad @ x)
        den = (g_ii - 2 * gx_i + xgx) + eta * (1 - 2 * x_i + xx)
        step = min(1.0, max(0.0, -num / den)) if den > 0 else 0.0
        keep = 1.0 - step
        x *= keep
        x[i] += step
        gx *= keep
        gx += step * gram[i]
        xx = keep * keep * xx + 2 * step * keep * x_i + step * step
        xgx = keep * keep * xgx + 2 * step * keep * gx_i + step * step * g_ii
        xc = keep * xc + step * c[i]
        previous, current = current, z2 * xx + (xgx - 2 * xc + bb) / n
        it += 1
    return x


def _weights(Y, zeta, min_decrease, start=None):
    A, b = Y[:, :-1], Y[:, -1]
    k = A.shape[1]
    start = np.full(k, 1.0 / k) if start is None else start
    first = _fw_single(A, b, zeta, start, min_decrease, MAX_ITER_PRE_SPARSIFY)
    return _fw_single(A, b, zeta, _sparsify(first), min_decrease, MAX_ITER)


@dataclass
class SDIDFit:
    tau: float
    omega: np.ndarray
    lam: np.ndarray
    noise: float
    zeta_omega: float
    zeta_lambda: float
    min_decrease: float


def noise_level(Y, n0, t0):
    """Standard deviation of the controls' pre-period first differences (R's default)."""
    if t0 < 2:
        return 0.0
    diffs = np.diff(Y[:n0, :t0], axis=1)
    return float(np.std(diffs, ddof=1)) if diffs.size > 1 else 0.0


def collapsed(Y, n0, t0, treated_weights):
    """(n0 + 1) x (t0 + 1): controls and the weighted treated average; pre-periods and the
    post-period mean."""
    rows = np.vstack([Y[:n0], treated_weights @ Y[n0:]])
    return np.column_stack([rows[:, :t0], rows[:, t0:].mean(axis=1)])


def estimate(Y, n0, t0, treated_weights=None, zeta_omega=None, zeta_lambda=None,
             min_decrease=None, omega=None, lam=None, omega_start=None,
             lambda_start=None) -> SDIDFit:
    """The SDID estimate; ``omega``/``lam`` given: used as they are (not re-estimated);
    ``omega_start``/``lambda_start``: initial weights of the Frank-Wolfe rounds."""
    n1, t1 = Y.shape[0] - n0, Y.shape[1] - t0
    w1 = (np.full(n1, 1.0 / n1) if treated_weights is None
          else treated_weights / treated_weights.sum())
    noise = noise_level(Y, n0, t0)
    zeta_omega = (n1 * t1) ** 0.25 * noise if zeta_omega is None else zeta_omega
    zeta_lambda = 1e-6 * noise if zeta_lambda is None else zeta_lambda
    min_decrease = 1e-5 * noise if min_decrease is None else min_decrease
    yc = collapsed(Y, n0, t0, w1)
    if lam is None:
        lam = _weights(yc[:n0], zeta_lambda, min_decrease, lambda_start)
    if omega is None:
        omega = _weights(yc[:, :t0].T, zeta_omega, min_decrease, omega_start)
    tau = float(np.r_[-omega, w1] @ Y @ np.r_[-lam, np.full(t1, 1.0 / t1)])
    return SDIDFit(tau, omega, lam, noise, zeta_omega, zeta_lambda, min_decrease)


# ---------------------------------------------------------------------------------------
# many refits at once (placebo, bootstrap and replicate draws)
#
# Every draw solves the two Frank-Wolfe problems of :func:`estimate`, with its stopping
# rule, iteration caps and sparsify step, on its own subset (with repeats: bootstrap) of
# the controls, and all draws take their iterations together (a handful of numpy calls
# per iteration for the whole batch):
#
# * time weights: each draw has its own t0 x t0 Gram matrix (the draw's controls centred
#   over those controls);
# * unit weights: a draw's Gram matrix is a submatrix of the one Gram matrix of all the
#   controls (centred over time, which does not involve the other controls), built once;
#   a draw's coordinates are all the controls with the ones it leaves out never chosen
#   (or, with repeated controls, its list of controls).
#
# The state of a problem is kept in scaled form, x = s y and half the gradient
# h = G x - c + eta x = s u (the weights sum to one, so c = c 1'x): a step
# x <- (1 - a) x + a e_i changes s, one entry of y and u by a multiple of column i of
# G - c 1' plus eta e_i, so an iteration reads and writes u once instead of rescaling
# x and h. The line search uses x'c and x'(G + eta I)x, kept up to date as numbers.
# ---------------------------------------------------------------------------------------
_ROW_KEYS = ("y", "u", "c", "gd", "pad", "g", "rowbase", "s", "xc", "xHx", "eta", "md2n",
             "dec")


def _select(P, rows):
    return {k: P[k][rows] for k in _ROW_KEYS if P.get(k) is not None}


def _column(Grows, P, i, rows=None):
    """Column ``i`` of each problem's Gram matrix restricted to its coordinates."""
    g, rowbase = P.get("g"), P["rowbase"]
    if rows is not None:
        g = None if g is None else g[rows]
        rowbase = rowbase[rows]
    # indices are in range by construction: mode="clip" skips numpy's checks (4x faster)
    if g is None:
        return Grows.take(rowbase + i, axis=0, mode="clip")
    n = Grows.shape[1]
    gi = g[np.arange(g.shape[0]), i]
    return Grows.reshape(-1).take(gi[:, None] * n + g, mode="clip")


def _restart(Grows, P, s, i, xc, xHx):
    """Rows whose scale ``s`` ran down (to zero after a full step): put them in
    unscaled form again (after a full step x is e_i exactly and is rebuilt as such)."""
    y, u, c, gd, pad = P["y"], P["u"], P["c"], P["gd"], P["pad"]
    low = np.flatnonzero(s < 1e-150)
    vertex = low[s[low] == 0]
    scaled = low[s[low] > 0]
    y[scaled] *= s[scaled, None]
    u[scaled] *= s[scaled, None]
    if vertex.size:
        iv = i[vertex]
        col = _column(Grows, P, iv, vertex) - c[vertex]
        col[np.arange(vertex.size), iv] += P["eta"][vertex]
        u[vertex] = np.where(pad[vertex], np.inf, col)
        y[vertex] = 0.0
        y[vertex, iv] = 1.0
        xc[vertex] = c[vertex, iv]
        xHx[vertex] = gd[vertex, iv]
    s[low] = 1.0


def _iterate(Grows, P, count, done):
    """``count`` more Frank-Wolfe iterations of every problem in ``P`` (updated in place),
    ``done`` iterations into the round; a problem that has stopped stays where it is."""
    y, u, c, gd = P["y"], P["u"], P["c"], P["gd"]
    if not all(a.flags.c_contiguous for a in (y, u, c, gd)):
        raise RuntimeError("_iterate: the state arrays must be C-contiguous")
    s, xc, xHx = P["s"], P["xc"], P["xHx"]
    eta, negmd, dec = P["eta"], -P["md2n"], P["dec"]
    g, rowbase = P.get("g"), P["rowbase"]
    B, w = y.shape
    base = np.arange(B) * w
    yf, uf, cf, gdf = (a.reshape(-1) for a in (y, u, c, gd))
    col = np.empty((B, w))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for t in range(done, done + count):
            # R's rule: the first two iterations always run, then while the objective
            # fell by more than min_decrease^2
            going = dec < negmd if t >= 2 else np.ones(B, bool)
            i = u.argmin(axis=1)
            fi = base + i
            u_i = uf.take(fi, mode="clip")
            c_i = cf.take(fi, mode="clip")
            gd_i = gdf.take(fi, mode="clip")
            h_i = s * u_i  # half the gradient at i
            # half the directional derivative towards e_i, and the curvature along it
            num = h_i - (xHx - xc)
            den = gd_i - 2.0 * (h_i + c_i) + xHx
            step = np.where(going & (den > 0), -num / den, 0.0)
            np.minimum(step, 1.0, out=step)
            np.maximum(step, 0.0, out=step)
            s = s * (1.0 - step)
            coef = step / s
            yf[fi] += coef
            if g is None:  # into one buffer: a fresh (B, w) array each time costs page faults
                Grows.take(rowbase + i, axis=0, mode="clip", out=col)
            else:
                col = _column(Grows, P, i)
            col -= c
            col *= coef[:, None]
            u += col
            uf[fi] += eta * coef
            # n times the change of the objective (a decrease is negative), and x'c and
            # x'(G + eta I)x at the new point
            dec = step * (num + num + step * den)
            sc = step * (c_i - xc)
            xc = xc + sc
            xHx = xHx + (dec + (sc + sc))
            if np.minimum.reduce(s) < 1e-150:
                _restart(Grows, P, s, i, xc, xHx)
    P["s"], P["xc"], P["xHx"], P["dec"] = s, xc, xHx, dec


def _state(x, c, gd, pad, gram_x, rowbase, g, eta, md2, n):
    """Problems at weights ``x`` (``pad``: coordinates never chosen); ``gram_x(v)``: each
    problem's Gram matrix times its row of ``v``."""
    x = np.where(pad, 0.0, x)
    hg = gram_x(x) - c + eta[:, None] * x
    B = x.shape[0]
    return {"y": np.array(x, order="C"), "u": np.where(pad, np.inf, hg),
            "c": np.array(c, order="C"), "gd": np.array(gd, order="C"), "pad": pad, "g": g,
            "rowbase": rowbase, "s": np.ones(B), "xc": np.einsum("bw,bw->b", x, c),
            "xHx": np.einsum("bw,bw->b", x, np.where(pad, 0.0, hg + c)), "eta": eta,
            "md2n": md2 * n, "dec": np.full(B, -np.inf)}


def _solve(Grows, P, max_iter, block=16):
    """Iterate until every problem stops; returns the weights."""
    out = np.empty(P["y"].shape)
    ids = np.arange(P["y"].shape[0])
    done = 0
    while ids.size:
        count = min(block, max_iter - done)
        _iterate(Grows, P, count, done)
        done += count
        block = min(2 * block, 512)
        going = P["dec"] < -P["md2n"] if done < max_iter else np.zeros(ids.size, bool)
        if not going.all():
            stop = ~going
            out[ids[stop]] = P["s"][stop, None] * P["y"][stop]
            ids = ids[going]
            P = _select(P, going)
    return out


def _rounds(make, x):
    """R's two rounds: at most 100 iterations, sparsify, then up to 10^4."""
    x = _solve(*make(x), MAX_ITER_PRE_SPARSIFY)
    return _solve(*make(_sparsify(x)), MAX_ITER)


def _lambda_batch(Y, n0, t0, counts, zeta, min_decrease, start):
    """Time weights of every draw (``counts`` (B, n0): copies of each control)."""
    A = Y[:n0, :t0]
    level = A.mean(axis=1)
    A = A - level[:, None]
    b = Y[:n0, t0:].mean(axis=1) - level
    B = counts.shape[0]
    m = counts.astype(float)
    n = m.sum(axis=1)
    gram = np.empty((B, t0, t0))
    c = np.empty((B, t0))
    step = max(1, int(4e6 // max(1, n0 * t0)))
    for s in range(0, B, step):
        mm, nn = m[s:s + step], n[s:s + step]
        D = A[None] - (mm @ A / nn[:, None])[:, None, :]
        e = b[None] - (mm @ b / nn)[:, None]
        Dm = D * mm[:, :, None]
        gram[s:s + step] = np.matmul(Dm.transpose(0, 2, 1), D)
        c[s:s + step] = np.einsum("bnt,bn->bt", Dm, e)
    eta = n * zeta * zeta
    gd = np.diagonal(gram, axis1=1, axis2=2) + eta[:, None]
    md2 = np.full(B, float(min_decrease) ** 2)
    pad = np.zeros((B, t0), bool)
    Grows = gram.reshape(B * t0, t0)

    def make(x):
        return Grows, _state(x, c, gd, pad, lambda v: np.einsum("bij,bj->bi", gram, v),
                             np.arange(B) * t0, None, eta, md2, n)

    x = (np.full((B, t0), 1.0 / t0) if start is None
         else np.array(np.broadcast_to(start, (B, t0)), dtype=float))
    return _rounds(make, x)


def _omega_batch(Y, n0, t0, counts, target, zeta, min_decrease, start):
    """Unit weights of every draw, summed over the copies of each control: (B, n0)."""
    B = counts.shape[0]
    level = Y[:n0, :t0].mean(axis=0)  # any level would do (the weights sum to one)
    A = Y[:n0, :t0] - level
    A -= A.mean(axis=1, keepdims=True)  # control j's pre-period path, centred: row a_j
    y = target @ Y[:, :t0] - level
    y -= y.mean(axis=1, keepdims=True)
    G = A @ A.T
    Cg = y @ A.T  # (B, n0): a_j . y
    eta = np.full(B, t0 * zeta * zeta)
    md2 = np.full(B, float(min_decrease) ** 2)
    n = np.full(B, float(t0))
    if counts.max() <= 1:  # coordinates: all controls, the draw's left-out ones padding
        g, pad = None, counts == 0
        gd = np.broadcast_to(np.diagonal(G) + eta[:, None], (B, n0))
        c = np.where(pad, 0.0, Cg)
        start_g = None if start is None else start

        def gram_x(v):
            return v @ G
    else:  # coordinates: the draw's controls with repeats, in control order, then padding
        K = counts.sum(axis=1)
        width = int(K.max())
        g = np.zeros((B, width), np.int64)
        row_of = np.repeat(np.arange(B), K)
        g[row_of, np.arange(row_of.size) - np.repeat(np.cumsum(K) - K, K)] = np.repeat(
            np.tile(np.arange(n0), B), counts.reshape(-1))
        pad = np.arange(width)[None, :] >= K[:, None]
        gd = np.diagonal(G)[g] + eta[:, None]
        c = np.where(pad, 0.0, np.take_along_axis(Cg, g, axis=1))
        start_g = None if start is None else np.take_along_axis(start, g, axis=1)

        def gram_x(v):
            return np.einsum("bwt,bt->bw", A[g], np.einsum("bw,bwt->bt", v, A[g]))
    real = ~pad
    if start_g is None:
        x = real / real.sum(axis=1, keepdims=True)
    else:
        s = np.where(real, start_g, 0.0)
        total = s.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(total > 0, s / total, real / real.sum(axis=1, keepdims=True))

    def make(x):
        return G, _state(x, c, gd, pad, gram_x, np.zeros(B, np.int64), g, eta, md2, n)

    x = _rounds(make, x)
    if g is None:
        return x
    omega = np.zeros((B, n0))
    np.add.at(omega, (np.arange(B)[:, None].repeat(g.shape[1], 1), g), x)
    return omega


def refit_batch(Y, n0, t0, counts, target, zeta_omega, zeta_lambda, min_decrease,
                omega_start=None, lambda_start=None, weights=False):
    """``tau`` of many refits on the panel ``Y`` (n x T, the ``n0`` controls first, the
    ``t0`` pre-periods first), each as :func:`estimate` with the given regularisation on
    a panel built from ``Y``: draw ``b`` has ``counts[b, j]`` copies of control ``j``
    (0: left out) as its controls, in control order, and as its treated average the
    units weighted by ``target[b]`` (any units; normalised). ``omega_start`` (B, n0): the
    start value of each control's copies (normalised over the draw's copies, uniform if
    all zero); ``lambda_start`` (B, t0). ``weights``: also return the unit weights
    (summed over copies; (B, n0)) and the time weights."""
    counts = np.asarray(counts, dtype=np.int64)
    target = np.asarray(target, dtype=float)
    target = target / target.sum(axis=1, keepdims=True)
    B, T = counts.shape[0], Y.shape[1]
    t1 = T - t0
    chunk = max(1, int(4e6 // max(1, n0 * t0)))  # arrays of about chunk x n0 x t0
    taus, omegas, lams = [], [], []
    for s in range(0, B, chunk):
        cnt, tgt = counts[s:s + chunk], target[s:s + chunk]
        lam = _lambda_batch(Y, n0, t0, cnt, zeta_lambda, min_decrease,
                            None if lambda_start is None else lambda_start[s:s + chunk])
        omega = _omega_batch(Y, n0, t0, cnt, tgt, zeta_omega, min_decrease,
                             None if omega_start is None else omega_start[s:s + chunk])
        time_w = np.concatenate([-lam, np.full((lam.shape[0], t1), 1.0 / t1)], axis=1)
        series = time_w @ Y.T
        taus.append(np.einsum("bn,bn->b", tgt, series)
                    - np.einsum("bj,bj->b", omega, series[:, :n0]))
        omegas.append(omega)
        lams.append(lam)
    tau = np.concatenate(taus)
    return (tau, np.concatenate(omegas), np.concatenate(lams)) if weights else tau
