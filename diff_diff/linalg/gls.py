"""The minimum-variance (GLS) combination of several estimates of one parameter."""

from __future__ import annotations

import numpy as np


def gls_weights(omega: np.ndarray, ridge: float = 0.0) -> tuple[np.ndarray, float]:
    """Weights ``Omega^-1 1 / (1' Omega^-1 1)`` and the condition number of ``Omega``.

    ``omega`` is the covariance of the estimates. It is scaled to unit diagonal
    first (the weights do not depend on the scale of each estimate, the
    conditioning does); ``ridge`` is then added to the diagonal; eigenvalues
    below ``100 h eps`` of the largest are left out (a pseudo-inverse past
    numerical rank deficiency, e.g. duplicated estimates, which then share
    their weight). The condition number is that of the scaled matrix (inf when
    singular).
    """
    omega = np.asarray(omega, dtype=float)
    h = omega.shape[0]
    if h == 1:
        return np.ones(1), 1.0
    d = np.sqrt(np.clip(np.diag(omega), 0, None))
    scale = np.where(d > 0, d, 1.0)
    corr = omega / np.outer(scale, scale)
    if ridge:
        corr = corr + ridge * np.eye(h)
    vals, vecs = np.linalg.eigh(corr)
    top = vals.max()
    keep = vals > top * h * np.finfo(float).eps * 100
    cond = float(top / vals.min()) if vals.min() > 0 else np.inf
    inv_ones = vecs[:, keep] @ ((vecs[:, keep].T @ (1.0 / scale)) / vals[keep])
    lam = inv_ones / scale
    return lam / lam.sum(), cond
