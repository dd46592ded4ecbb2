"""Replicate-weight variance (BRR, Fay, JK1, JKn, SDR, bootstrap).

Given estimates ``theta_r`` recomputed under each replicate weight vector,
the variance is (R ``survey::svrVar``)::

    V = scale * sum_r rscales[r] (theta_r - c)(theta_r - c)'

with ``c`` the full-sample estimate (``mse=True``) or the mean of the
replicate estimates with positive ``rscales`` (``mse=False``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .._warnings import warn_user

RefitOne = Callable[[np.ndarray], np.ndarray]
RefitBatch = Callable[[np.ndarray], np.ndarray]


def replicate_vcov_from_estimates(
    thetas: np.ndarray,
    theta_full: np.ndarray,
    scale: float,
    rscales: np.ndarray,
    mse: bool,
) -> tuple[np.ndarray, int]:
    """Variance from replicate estimates (R x k); returns ``(vcov, n_valid)``.

    Replicates whose estimate is not finite are dropped with a warning (R's
    ``na.action``); the multipliers keep their design values. Fewer than two
    usable replicates give a NaN matrix.
    """
    thetas = np.asarray(thetas, dtype=float)
    if thetas.ndim == 1:
        thetas = thetas[:, None]
    theta_full = np.atleast_1d(np.asarray(theta_full, dtype=float))
    k = thetas.shape[1]
    valid = np.isfinite(thetas).all(axis=1)
    n_rep = thetas.shape[0]
    n_valid = int(valid.sum())
    if n_valid < n_rep:
        warn_user(
            f"{n_rep - n_valid} of {n_rep} replicates gave non-finite estimates and were "
            "dropped from the replicate variance")
    if n_valid < 2:
        return np.full((k, k), np.nan), n_valid
    thetas = thetas[valid]
    rscales = np.asarray(rscales, dtype=float)[valid]
    if mse:
        centre = theta_full
    else:
        centre = thetas[rscales > 0].mean(axis=0)
    dev = thetas - centre
    return scale * (dev * rscales[:, None]).T @ dev, n_valid


def replicate_estimates_from_influence(
    psi: np.ndarray,
    theta_full: np.ndarray,
    weights: np.ndarray,
    replicate_weights: np.ndarray,
) -> np.ndarray:
    """Replicate estimates by re-weighting influence values (no refit).

    ``theta_r = theta + sum_i (w_ri / w_i - 1) psi_i``. Exact for statistics
    linear in the weights (totals); the first-order (linearized) replicate
    estimate for smooth statistics such as means, ratios and regression
    coefficients. Rows with zero full-sample weight carry no influence.
    """
    psi = np.asarray(psi, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    positive = weights > 0
    inverse = np.divide(1.0, weights, out=np.zeros(weights.shape), where=positive)
    shift = replicate_weights.T @ (psi * inverse[:, None]) - positive.astype(float) @ psi
    return np.atleast_1d(theta_full)[None, :] + shift


def replicate_estimates_by_refit(
    replicate_weights: np.ndarray,
    refit: RefitOne | None = None,
    refit_batch: RefitBatch | None = None,
) -> np.ndarray:
    """Re-estimate under each replicate weight column -> (R x k).

    ``refit(w)`` maps one weight vector (n,) to the estimates (k,);
    ``refit_batch(W)`` maps all replicate weights (n x R) to (R x k) at once.
    A refit that raises ``ValueError``, ``ArithmeticError`` or
    ``numpy.linalg.LinAlgError`` yields NaN for that replicate, which the
    variance then drops with a warning.
    """
    if refit_batch is not None:
        out = np.asarray(refit_batch(replicate_weights), dtype=float)
        if out.ndim == 1:
            out = out[:, None]
        if out.shape[0] != replicate_weights.shape[1]:
            raise ValueError(
                f"refit_batch returned {out.shape[0]} rows for "
                f"{replicate_weights.shape[1]} replicates"
            )
        return out
    if refit is None:
        raise ValueError("replicate variance needs refit, refit_batch or influence values")
    rows = []
    for r in range(replicate_weights.shape[1]):
        try:
            rows.append(np.atleast_1d(np.asarray(refit(replicate_weights[:, r]), dtype=float)))
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            rows.append(None)
    k = next((row.shape[0] for row in rows if row is not None), 1)
    return np.vstack([np.full(k, np.nan) if row is None else row for row in rows])
