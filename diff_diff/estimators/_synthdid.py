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


def fw_batch(A, b, zeta, start, min_decrease, max_iter, rows_on=None, cols_on=None):
    """Frank-Wolfe for ``|A x - b|^2 + eta |x|^2`` on the simplex, ``eta = n zeta^2``, with
    an intercept (columns centred) and exact line search, for a batch of problems at once
    (``A``: (B, n, k), ``b``: (B, n), ``start``: (B, k)); each stops after an iteration that
    lowers ``zeta^2 |x|^2 + |A x - b|^2 / n`` by less than ``min_decrease^2``, or at
    ``max_iter`` iterations (R ``synthdid``'s ``sc.weight.fw``, with the products kept up
    to date through the Gram matrix instead of recomputed: O(k) per iteration)."""
    # the weights sum to one, so removing each row's mean from A and b leaves A x - b as
    # it is; it keeps the Gram matrix free of large row levels (no cancellation later)
    level = A.mean(axis=2, keepdims=True)
    A, b = A - level, b - level[..., 0]
    if rows_on is None:
        A = A - A.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
        n = np.full(A.shape[0], float(A.shape[1]))
    else:  # rows left out (zero weight) count for nothing: centre on and sum over the rest
        r = rows_on.astype(float)
        n = r.sum(axis=1)
        A = (A - np.einsum("bn,bnk->bk", r, A)[:, None, :] / n[:, None, None]) * r[:, :, None]
        b = (b - (r * b).sum(axis=1, keepdims=True) / n[:, None]) * r
    zeta = np.broadcast_to(np.asarray(zeta, float), (A.shape[0],)).copy()
    min_decrease = np.broadcast_to(np.asarray(min_decrease, float), (A.shape[0],))
    eta = n * zeta ** 2
    gram = np.matmul(A.transpose(0, 2, 1), A)
    c = np.einsum("bni,bn->bi", A, b)
    bb = np.einsum("bn,bn->b", b, b)
    x = np.array(start, dtype=float, copy=True)
    out = x.copy()
    # the working set: the problems still iterating (compacted when some stop, so an
    # iteration touches no finished problem and copies nothing; the Gram matrices stay)
    ids = np.arange(A.shape[0])
    gx = np.einsum("bij,bj->bi", gram, x)
    # iterations read column i of a Gram matrix: keep the transpose, whose rows are those
    # columns bit for bit, so each read is contiguous (a strided column read misses the
    # cache once per element, which dominated the large placebo batches)
    gram = np.ascontiguousarray(gram.transpose(0, 2, 1))
    xx, xgx, xc = (x * x).sum(1), (x * gx).sum(1), (x * c).sum(1)
    # half the gradient, kept up to date: after x <- (1 - s) x + s e_i it is
    # (1 - s) h + s (G[:, i] - c) + eta s e_i (one pass per iteration)
    hg = gx - c + eta[:, None] * x
    cw, bw, nw, ew, zw = c, bb, n, eta, zeta
    md2 = min_decrease ** 2
    on_cols = cols_on
    previous = np.full(ids.size, np.inf)
    current = np.full(ids.size, np.inf)
    iterations = 0
    while ids.size:
        if iterations >= max_iter:
            break
        if iterations >= 2:
            going = previous - current > md2
            if not going.all():
                out[ids[~going]] = x[~going]
                ids = ids[going]
                x, hg, xx, xgx, xc = x[going], hg[going], xx[going], xgx[going], xc[going]
                cw, bw, nw, ew, zw = cw[going], bw[going], nw[going], ew[going], zw[going]
                md2, current = md2[going], current[going]
                if on_cols is not None:
                    on_cols = on_cols[going]
                if not ids.size:
                    break
        m = np.arange(ids.size)
        if on_cols is not None:  # columns left out are never chosen (their weight stays 0)
            i = np.argmin(np.where(on_cols, hg, np.inf), axis=1)
        else:
            i = np.argmin(hg, axis=1)
        g_ii = gram[ids, i, i]
        x_i, c_i = x[m, i], cw[m, i]
        gx_i = hg[m, i] + c_i - ew * x_i
        # h . x = x'Gx - x'c + eta x'x
        num = hg[m, i] - (xgx - xc + ew * xx)
        den = (g_ii - 2 * gx_i + xgx) + ew * (1 - 2 * x_i + xx)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(den > 0, -num / den, 0.0)
        step = np.clip(step, 0.0, 1.0)
        keep = 1.0 - step
        x *= keep[:, None]
        x[m, i] += step
        column = gram[ids, i, :]
        column -= cw
        column *= step[:, None]
        hg *= keep[:, None]
        hg += column
        hg[m, i] += ew * step
        xx = keep ** 2 * xx + 2 * step * keep * x_i + step ** 2
        xgx = keep ** 2 * xgx + 2 * step * keep * gx_i + step ** 2 * g_ii
        xc = keep * xc + step * c_i
        previous = current
        current = zw ** 2 * xx + (xgx - 2 * xc + bw) / nw
        iterations += 1
    out[ids] = x
    x = out
    return x


def _sparsify(v):
    v = np.where(v <= v.max(axis=-1, keepdims=True) / 4, 0.0, v)
    return v / v.sum(axis=-1, keepdims=True)


def sum_normalize(v):
    """``v / sum(v)``; uniform where the sum is zero (R's ``sum_normalize``)."""
    v = np.asarray(v, float)
    total = v.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, v / total, 1.0 / v.shape[-1])


def weights_batch(Y, zeta, min_decrease, rows_on=None, cols_on=None, start=None):
    """R's two rounds: at most 100 iterations, sparsify, then up to 10^4 (``Y``: (B, n, k+1),
    the last column the target; ``rows_on``/``cols_on``: observations / weights left in;
    ``start``: initial weights, default uniform over the weights left in)."""
    A, b = Y[..., :-1], Y[..., -1]
    k = A.shape[-1]
    if start is not None:
        start = np.array(start, dtype=float)
    elif cols_on is None:
        start = np.full((Y.shape[0], k), 1.0 / k)
    else:
        start = cols_on / cols_on.sum(axis=1, keepdims=True)
    first = fw_batch(A, b, zeta, start, min_decrease, MAX_ITER_PRE_SPARSIFY, rows_on, cols_on)
    return fw_batch(A, b, zeta, _sparsify(first), min_decrease, MAX_ITER, rows_on, cols_on)


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


def estimate_batch(Ys, n0, t0, zeta_omega, zeta_lambda, min_decrease, treated_weights=None,
                   chunk=None, controls_on=None, omega_start=None, lambda_start=None):
    """``tau`` of many problems of one shape at once (``Ys``: (B, n, T), the first ``n0``
    rows controls; weights re-estimated with the given regularisation), in chunks that
    keep the Gram matrices to about 200 MB. ``controls_on`` (B, n0): controls left in (the
    others get no weight and do not enter the time weights); treated units are left out
    by a zero ``treated_weights``. ``omega_start``/``lambda_start``: where the Frank-Wolfe
    rounds start (R's variance refits start from the fitted weights)."""
    B, n, T = Ys.shape
    n1, t1 = n - n0, T - t0
    w1 = (np.full((B, n1), 1.0 / n1) if treated_weights is None
          else treated_weights / treated_weights.sum(axis=1, keepdims=True))
    size = max(n0, t0)
    chunk = chunk or max(1, int(2.5e7 // (size * size)))
    out = np.empty(B)
    for s in range(0, B, chunk):
        Y, w = Ys[s:s + chunk], w1[s:s + chunk]
        treated_row = np.einsum("bi,bit->bt", w, Y[:, n0:])
        rows = np.concatenate([Y[:, :n0], treated_row[:, None, :]], axis=1)
        yc = np.concatenate([rows[:, :, :t0], rows[:, :, t0:].mean(axis=2, keepdims=True)],
                            axis=2)
        on = None if controls_on is None else controls_on[s:s + chunk]
        lam0 = None if lambda_start is None else lambda_start[s:s + chunk]
        om0 = None if omega_start is None else omega_start[s:s + chunk]
        lam = weights_batch(yc[:, :n0], zeta_lambda, min_decrease, rows_on=on, start=lam0)
        omega = weights_batch(np.transpose(yc[:, :, :t0], (0, 2, 1)), zeta_omega,
                              min_decrease, cols_on=on, start=om0)
        time_w = np.concatenate([-lam, np.full((lam.shape[0], t1), 1.0 / t1)], axis=1)
        unit_w = np.concatenate([-omega, w], axis=1)
        out[s:s + chunk] = np.einsum("bi,bit,bt->b", unit_w, Y, time_w)
    return out
