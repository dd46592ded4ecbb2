"""Numerics of TROP: a weighted two-way fixed-effects fit with a nuclear-norm low-rank term.

``fit_lowrank(Y, V, lam)`` minimises over unit effects ``a``, period effects ``b`` and a
matrix ``L``::

    sum_it V_it (Y_it - a_i - b_t - L_it)^2 + lam * ||L||_*

(``lam = inf``: no ``L``). For a given ``L`` the effects solve a weighted least-squares
problem exactly (the period effects from a T x T Schur complement inverted once), so
the problem is one in ``L`` alone with a smooth part whose gradient is
``-2 V * R(L)`` (``R`` the residual at the optimal effects; Lipschitz constant at most
``2 max V``); accelerated proximal gradient (FISTA with gradient-based restart; the proximal
step soft-thresholds singular values) solves it to a relative change in ``L`` below
``tol``. The problem is convex, so the solution is the optimum, not an iterate.
"""

from __future__ import annotations

import math

import numpy as np


class EffectsSolver:
    """Weighted two-way effects ``argmin_a,b sum V (R - a_i - b_t)^2`` for one ``V``."""

    def __init__(self, V):
        self.V = V
        self.r = V.sum(axis=1)
        self.c = V.sum(axis=0)
        if (self.r <= 0).any() or (self.c <= 0).any():
            raise ValueError("a unit or period has no untreated observation with positive "
                             "weight, so its fixed effect is not identified")
        # eliminate a: (diag(c) - V' diag(1/r) V) b = V'R1 - V' (V R 1 / r); b_last = 0
        schur = np.diag(self.c) - (V.T / self.r) @ V
        n_t = V.shape[1]
        self.inverse = np.zeros((n_t, n_t))  # b = inverse @ rhs, with b_last = 0
        if n_t > 1:
            self.inverse[:-1, :-1] = np.linalg.inv(schur[:-1, :-1])

    def effects(self, R):
        V = self.V
        vr = V * R
        row = vr.sum(axis=1) / self.r
        b = self.inverse @ (vr.sum(axis=0) - V.T @ row)
        a = row - (V @ b) / self.r
        return a, b


def _svt(Z, threshold):
    """Singular value soft-thresholding: the proximal map of ``threshold * ||.||_*``.

    A tall ``Z`` (at least four times as many rows as columns) is reduced first: the
    singular values and right vectors of its ``R`` factor are those of ``Z``, and the
    result is ``Z V diag(1 - threshold / s) V'`` over the kept values (no left vectors)."""
    m, n = Z.shape
    if m >= 4 * n:
        _, s, vt = np.linalg.svd(np.linalg.qr(Z, mode="r"))
        keep = s > threshold
        v = vt[keep]
        return (Z @ (v.T * (1.0 - threshold / s[keep]))) @ v, s[keep] - threshold
    u, s, vt = np.linalg.svd(Z, full_matrices=False)
    s = np.maximum(s - threshold, 0.0)
    keep = s > 0
    return (u[:, keep] * s[keep]) @ vt[keep], s[keep]


def fit_lowrank(Y, V, lam, tol=1e-10, max_iter=20000, L0=None):
    """Minimise the TROP objective; returns ``(a, b, L, iterations, converged)``."""
    solver = EffectsSolver(V)
    if math.isinf(lam):
        a, b = solver.effects(Y)
        return a, b, np.zeros_like(Y), 0, True
    vmax = V.max()
    step = V / vmax
    threshold = lam / (2.0 * vmax)
    L = np.zeros_like(Y) if L0 is None else L0.copy()
    Z, t_k = L.copy(), 1.0
    converged = False
    for it in range(1, max_iter + 1):
        a, b = solver.effects(Y - Z)
        R = Y - Z - a[:, None] - b[None, :]
        L_new, _ = _svt(Z + step * R, threshold)
        delta = L_new - L
        change = np.linalg.norm(delta)
        if np.vdot(Z - L_new, delta) > 0:  # gradient-based restart of the momentum
            t_k = 1.0
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t_k * t_k)) / 2.0
        Z = L_new + ((t_k - 1.0) / t_next) * delta
        L, t_k = L_new, t_next
        if change <= tol * max(1.0, np.linalg.norm(L)):
            converged = True
            break
    a, b = solver.effects(Y - L)
    return a, b, L, it, converged


def objective(Y, V, lam, a, b, L):
    """The TROP objective at given effects and ``L``."""
    R = Y - a[:, None] - b[None, :] - L
    penalty = 0.0 if math.isinf(lam) else lam * np.linalg.svd(L, compute_uv=False).sum()
    return float((V * R * R).sum() + penalty)


class BatchEffectsSolver:
    """:class:`EffectsSolver` for a stack of weight matrices ``V`` (``K x N x T``)."""

    def __init__(self, V):
        self.V = V
        self.r = V.sum(axis=2)
        self.c = V.sum(axis=1)
        if (self.r <= 0).any() or (self.c <= 0).any():
            raise ValueError("a unit or period has no untreated observation with positive "
                             "weight, so its fixed effect is not identified")
        k, _, n_t = V.shape
        schur = -np.matmul(V.transpose(0, 2, 1) / self.r[:, None, :], V)
        schur[:, np.arange(n_t), np.arange(n_t)] += self.c
        self.inverse = np.zeros((k, n_t, n_t))
        if n_t > 1:
            self.inverse[:, :-1, :-1] = np.linalg.inv(schur[:, :-1, :-1])

    def take(self, idx):
        """The solver of the problems ``idx``."""
        out = object.__new__(BatchEffectsSolver)
        out.V, out.r, out.c, out.inverse = self.V[idx], self.r[idx], self.c[idx], self.inverse[idx]
        return out

    def effects(self, R):
        V = self.V
        vr = V * R
        row = vr.sum(axis=2) / self.r
        rhs = vr.sum(axis=1) - np.einsum("knt,kn->kt", V, row)
        b = np.einsum("kst,kt->ks", self.inverse, rhs)
        a = row - np.einsum("knt,kt->kn", V, b) / self.r
        return a, b


def _svt_stack(G, threshold):
    """:func:`_svt` of each matrix of a stack ``G`` (``K x N x T``), ``threshold`` per matrix.

    Through the eigen-decomposition of the ``T x T`` Gram matrices ``G'G = V S^2 V'``:
    the result is ``G V diag(max(1 - threshold / s, 0)) V'``. The eigenvalues carry an
    absolute error of about ``eps s_max^2``, i.e. ``eps s_max^2 / s`` on a singular value
    ``s``; where the threshold of some matrix is below ``1e-6 s_max`` (so that error
    could reach ``1e-4`` of it) the stack goes through the SVD instead."""
    gram = np.matmul(G.transpose(0, 2, 1), G)
    ev, vec = np.linalg.eigh(gram)
    s_max = np.sqrt(np.maximum(ev[:, -1], 0.0))
    if (threshold <= 1e-6 * s_max).any():
        u, s, vt = np.linalg.svd(G, full_matrices=False)
        s = np.maximum(s - threshold[:, None], 0.0)
        return np.matmul(u * s[:, None, :], vt)
    sv = np.sqrt(np.maximum(ev, 0.0))
    thr = threshold[:, None]
    coef = np.where(sv > thr, 1.0 - thr / np.where(sv > thr, sv, 1.0), 0.0)
    return np.matmul(np.matmul(G, vec) * coef[:, None, :], vec.transpose(0, 2, 1))


def fit_lowrank_batch(Y, V, lam, tol=1e-10, max_iter=20000, L0=None):
    """:func:`fit_lowrank` for ``K`` problems at once: ``V`` is ``K x N x T``, ``Y`` and
    ``L0`` are ``N x T`` (shared) or ``K x N x T``. The same iterations as
    :func:`fit_lowrank` on each problem (one Python loop; the thresholding through the
    stacked Gram matrices, :func:`_svt_stack`; a problem leaves the stack when it
    converges). Returns ``(a, b, L, iterations, converged)`` stacked."""
    k = V.shape[0]
    Y = np.broadcast_to(Y, V.shape)
    solver = BatchEffectsSolver(V)
    if math.isinf(lam):
        a, b = solver.effects(Y)
        return a, b, np.zeros(V.shape), np.zeros(k, dtype=np.int64), np.ones(k, dtype=bool)
    vmax = V.max(axis=(1, 2))
    step = V / vmax[:, None, None]
    threshold = lam / (2.0 * vmax)
    L = np.zeros(V.shape) if L0 is None else np.array(np.broadcast_to(L0, V.shape))
    out_L = L.copy()
    iterations = np.full(k, max_iter, dtype=np.int64)
    converged = np.zeros(k, dtype=bool)
    active = np.arange(k)
    Z, t_k = L.copy(), np.ones(k)
    Ya, stepa, thra, sol = Y, step, threshold, solver
    for it in range(1, max_iter + 1):
        a, b = sol.effects(Ya - Z)
        G = Z + stepa * (Ya - Z - a[:, :, None] - b[:, None, :])
        L_new = _svt_stack(G, thra)
        delta = L_new - L
        change = np.sqrt(np.einsum("knt,knt->k", delta, delta))
        restart = np.einsum("knt,knt->k", Z - L_new, delta) > 0
        t_k[restart] = 1.0
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t_k * t_k)) / 2.0
        Z = L_new + ((t_k - 1.0) / t_next)[:, None, None] * delta
        L, t_k = L_new, t_next
        norm = np.sqrt(np.einsum("knt,knt->k", L, L))
        done = change <= tol * np.maximum(1.0, norm)
        if done.any():
            idx = active[done]
            out_L[idx], iterations[idx], converged[idx] = L[done], it, True
            keep = ~done
            active = active[keep]
            if active.size == 0:
                break
            L, Z, t_k = L[keep], Z[keep], t_k[keep]
            Ya, stepa, thra = Ya[keep], stepa[keep], thra[keep]
            sol = sol.take(keep)
    if active.size:
        out_L[active] = L
    a, b = solver.effects(Y - out_L)
    return a, b, out_L, iterations, converged
