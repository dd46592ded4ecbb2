"""Bias-reduced linearization (CR2 / HC2) with Satterthwaite degrees of freedom.

For weighted least squares with weights ``w`` the fit is ordinary least squares
of ``sqrt(w) y`` on ``X* = sqrt(w) X``; with ``M = (X*'X*)^-1`` and clusters
``g`` the CR2 variance (Bell & McCaffrey 2002) is

    V = M (sum_g X*_g' A_g e*_g e*_g' A_g X*_g) M,   A_g = (I - X*_g M X*_g')^{-1/2}

and the degrees of freedom of a contrast ``c'b`` are those of Pustejovsky &
Tipton (2018, working model: independent homoskedastic errors after
weighting), R ``clubSandwich``'s "Satterthwaite" test:

    nu = (sum_g p_g'p_g)^2 / sum_{g,h} (p_g'p_h)^2,   p_g = (I - H)_{.g} A_g X*_g M c.

Without clusters every observation is its own cluster (HC2 with
Bell-McCaffrey degrees of freedom). Absorbed fixed effects must be nested in
the clusters (then the within-transformed design gives the same adjustment).
"""

from __future__ import annotations

import numpy as np


def _inv_sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(matrix)
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
    """CR2 covariance (k x k) and Satterthwaite df for each row of ``contrasts`` (q x k).

    ``x`` is the (demeaned) design, ``bread_inv`` ``(X'WX)^-1``; ``cluster``
    holds cluster codes (None: every row its own cluster).
    """
    sw = np.sqrt(weights)
    xs = x * sw[:, None]
    es = resid * sw
    n, k = xs.shape
    m = bread_inv
    codes = np.arange(n) if cluster is None else np.asarray(cluster)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    groups = np.split(order, bounds)
    meat = np.zeros((k, k))
    # columns of A_g X*_g M c for every contrast, per cluster (stacked in row order)
    q = contrasts.shape[0]
    u = np.zeros((n, q))
    if cluster is None:  # diagonal: A_i = (1 - h_i)^{-1/2}
        h = np.einsum("ij,jk,ik->i", xs, m, xs)
        a = 1.0 / np.sqrt(np.clip(1.0 - h, 1e-12, None))
        adj = xs * (a * es)[:, None]
        meat = adj.T @ adj
        u = (xs @ (m @ contrasts.T)) * a[:, None]
    else:
        mc = m @ contrasts.T  # (k, q)
        for rows in groups:
            xg = xs[rows]
            ag = _inv_sqrt_psd(np.eye(rows.size) - xg @ m @ xg.T)
            ug = ag @ (xg @ mc)
            u[rows] = ug
            vg = xg.T @ (ag @ es[rows])
            meat += np.outer(vg, vg)
    vcov = m @ meat @ m
    df = np.array([_satterthwaite(xs, m, u[:, j], codes, groups) for j in range(q)])
    return vcov, df


def _satterthwaite(xs, m, u, codes, groups) -> float:
    """Satterthwaite df from the cluster pieces ``u_g = A_g X*_g M c`` (stacked by row).

    ``p_g = (I - H)[:, g] u_g = scatter(u_g) - X* M X*_g' u_g``; the Gram
    matrix of the p's follows from k x k products without forming I - H.
    """
    n_groups = len(groups)
    k = xs.shape[1]
    # S: rows -> cluster scatter; Q[:, g] = X*_g' u_g
    q = np.zeros((k, n_groups))
    diag_su = np.zeros(n_groups)
    cluster_of = np.empty(xs.shape[0], dtype=np.int64)
    for g, rows in enumerate(groups):
        cluster_of[rows] = g
        q[:, g] = xs[rows].T @ u[rows]
        diag_su[g] = u[rows] @ u[rows]
    # P'P = S'S - S'X*MQ - Q'MX*'S + Q'M(X*'X*)MQ, with S'S diagonal, S'X* = Q'
    mq = m @ q
    xtx = xs.T @ xs
    gram = -q.T @ mq - mq.T @ q + mq.T @ xtx @ mq
    gram[np.diag_indices(n_groups)] += diag_su
    total = np.trace(gram)
    denom = np.sum(gram**2)
    return float(total**2 / denom) if denom > 0 else np.nan
