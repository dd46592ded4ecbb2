"""Bias-reduced linearization (CR2 / HC2) with Satterthwaite degrees of freedom.

For (weighted) least squares with ``M = (X'WX)^-1``, hat matrix
``H = X M X'W`` and clusters ``j``, the CR2 variance of Bell & McCaffrey
(2002) as R ``clubSandwich`` defines it (working covariance: independent
homoskedastic errors, the default for ``lm`` fits with or without weights) is

    V = M (sum_j X_j'W_j A_j e_j e_j' A_j W_j X_j) M,
    A_j = Omega_jj^{-1/2},   Omega = (I - H)(I - H)'.

The degrees of freedom of a contrast ``c'b`` are those of Pustejovsky &
Tipton (2018), clubSandwich's "Satterthwaite": with ``g_j`` the n-vector equal
to ``A_j W_j X_j M c`` on cluster j's rows and zero elsewhere and
``P_jk = g_j' Omega g_k``, ``nu = (tr P)^2 / sum_jk P_jk^2``. Without
clusters every observation is its own cluster (HC2 with Bell-McCaffrey
degrees of freedom). All products reduce to k x k matrices: ``I - H`` is
never formed.

Absorbed fixed effects must be nested in the clusters; the demeaned design
then gives the same adjustment.
"""

from __future__ import annotations

import numpy as np


def _inv_sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((matrix + matrix.T) / 2.0)
    inv = np.where(vals > 1e-12, 1.0 / np.sqrt(np.clip(vals, 1e-12, None)), 0.0)
    return (vecs * inv) @ vecs.T


def cr2(
    x: np.ndarray,
    resid: np.ndarray,
    weights: np.ndarray,
    bread_inv: np.ndarray,
    cluster: np.ndarray | None,
    contrasts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """CR2 covariance (k x k) and Satterthwaite df for each row of ``contrasts`` (q x k)."""
    if cluster is None:
        return _hc2_bm(x, resid, weights, bread_inv, contrasts)
    m = bread_inv
    w = weights
    xw2x = (x * (w**2)[:, None]).T @ x
    mc = m @ contrasts.T  # (k, q)
    codes = np.asarray(cluster)
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    k, q = x.shape[1], contrasts.shape[0]
    meat = np.zeros((k, k))
    n_groups = len(groups)
    big_q = np.zeros((q, k, n_groups))  # X_j' g_j
    big_q2 = np.zeros((q, k, n_groups))  # X_j' W_j g_j
    gg = np.zeros((q, n_groups))  # g_j' g_j
    for j, rows in enumerate(groups):
        xj, wj = x[rows], w[rows]
        hj = xj @ m @ xj.T
        omega = (np.eye(rows.size) - hj * wj[None, :] - wj[:, None] * hj
                 + xj @ m @ xw2x @ m @ xj.T)
        aj = _inv_sqrt_psd(omega)
        v = xj.T @ (wj * (aj @ resid[rows]))
        meat += np.outer(v, v)
        g = aj @ (wj[:, None] * (xj @ mc))  # (n_j, q)
        big_q[:, :, j] = (xj.T @ g).T
        big_q2[:, :, j] = (xj.T @ (wj[:, None] * g)).T
        gg[:, j] = np.sum(g**2, axis=0)
    vcov = m @ meat @ m
    msm = m @ xw2x @ m
    df = np.empty(q)
    for i in range(q):
        qi, q2i = big_q[i], big_q2[i]
        cross = q2i.T @ m @ qi
        p = -cross - cross.T + qi.T @ msm @ qi
        p[np.diag_indices(n_groups)] += gg[i]
        df[i] = _ratio(np.trace(p), np.sum(p**2))
    return vcov, df


def _hc2_bm(x, resid, weights, bread_inv, contrasts):
    """Every observation its own cluster: the same formulas with scalar blocks."""
    m = bread_inv
    w = weights
    xw2x = (x * (w**2)[:, None]).T @ x
    msm = m @ xw2x @ m
    h = np.einsum("ij,jk,ik->i", x, m, x)
    s = np.einsum("ij,jk,ik->i", x, msm, x)
    omega = 1.0 - 2.0 * w * h + s
    a = 1.0 / np.sqrt(np.clip(omega, 1e-12, None))
    adj = x * (w * a * resid)[:, None]
    vcov = m @ (adj.T @ adj) @ m
    c_mat = np.zeros((2 * x.shape[1], 2 * x.shape[1]))
    kk = x.shape[1]
    c_mat[:kk, kk:] = m
    c_mat[kk:, :kk] = m
    c_mat[kk:, kk:] = -msm
    df = np.empty(contrasts.shape[0])
    for i, c in enumerate(contrasts):
        g = a * w * (x @ (m @ c))  # (n,)
        lmat = np.vstack([(x * (w * g)[:, None]).T, (x * g[:, None]).T])  # (2k, n): [Q2; Q]
        gram = lmat @ lmat.T
        b_diag = np.einsum("in,ij,jn->n", lmat, c_mat, lmat)
        d = g**2
        trace = float(np.sum(d - b_diag))
        frob = float(np.sum(d**2) - 2.0 * np.sum(d * b_diag)
                     + np.trace(c_mat @ gram @ c_mat @ gram))
        df[i] = _ratio(trace, frob)
    return vcov, df


def _ratio(trace: float, frob: float) -> float:
    return float(trace**2 / frob) if frob > 0 else float("nan")
