"""The inference engine: influence values + design -> variance matrix + df.

Every estimator in the library hands this module an (n x k) matrix of
influence values on the sum scale (``theta_hat - theta ~= psi.sum(0)``) and a
:class:`~diff_diff.survey.ResolvedDesign`; regressions hand their scores and
bread, turned into influence values by :func:`influence_from_scores`.
:func:`design_variance` is the engine for a bare influence matrix (or a refit
function); it runs :class:`~diff_diff.inference.estimate.Inference`, the one
place that chooses the variance type from the design.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..survey.resolved import ResolvedDesign, trivial_design
from .bootstrap import MULTIPLIERS
from .estimate import Estimate, Inference, Variance

VARIANCE_METHODS = ("auto", "tsl", "replicate", "bootstrap")


def influence_from_scores(scores: np.ndarray, bread_inverse: np.ndarray) -> np.ndarray:
    """Influence values of M-estimator coefficients: ``scores @ bread^-1``.

    For weighted least squares ``scores_i = w_i x_i u_i`` and the bread is
    ``X'WX``; the sandwich ``B^-1 (sum s s') B^-1`` is then the engine's
    variance of these influence values.
    """
    return np.asarray(scores, dtype=float) @ np.asarray(bread_inverse, dtype=float).T


def design_variance(
    psi: np.ndarray | None,
    design: ResolvedDesign,
    *,
    estimate: np.ndarray | None = None,
    refit: Callable[[np.ndarray], np.ndarray] | None = None,
    refit_batch: Callable[[np.ndarray], np.ndarray] | None = None,
    method: str = "auto",
    n_bootstrap: int = 999,
    multiplier: str = "rademacher",
    seed: int | np.random.Generator | None = None,
) -> Variance:
    """Variance of an estimate under a resolved survey design.

    Parameters
    ----------
    psi : ndarray (n, k) or None
        Influence values on the sum scale, one row per design row. May be
        ``None`` for replicate designs when a refit function is given.
    design : ResolvedDesign
    estimate : ndarray (k,), optional
        The full-sample estimate; required for replicate designs.
    refit, refit_batch : callable, optional
        Replicate designs: re-estimate under replicate weights. ``refit(w)``
        takes one analysis-weight vector (n,) and returns (k,);
        ``refit_batch(W)`` takes (n, R) and returns (R, k). Exact for any
        estimator. Without them the replicate estimates re-weight ``psi``
        (exact for totals, first order otherwise).
    method : {"auto", "tsl", "replicate", "bootstrap"}
        ``auto``: replicate variance for replicate designs, Taylor
        linearization otherwise. ``bootstrap``: PSU-level multiplier
        bootstrap (not with replicate designs).
    n_bootstrap, multiplier, seed
        Bootstrap draws, multiplier distribution and seed.

    Returns
    -------
    Variance
    """
    if not isinstance(design, ResolvedDesign):
        raise TypeError(
            f"design must be a ResolvedDesign (from SurveyDesign.resolve), got {type(design).__name__}"
        )
    if method not in VARIANCE_METHODS:
        raise ValueError(f"method must be one of {list(VARIANCE_METHODS)}, got {method!r}")
    if psi is not None:
        psi = _as_matrix(psi, design.n_obs)
    if design.replicate is not None:
        if method in ("tsl", "bootstrap"):
            raise ValueError(
                f"method={method!r} cannot be used with a replicate-weight design: its "
                "replicate weights already define the variance (use method='replicate')"
            )
        if estimate is None:
            raise ValueError("replicate variance needs the full-sample estimate (estimate=)")
    elif method == "replicate":
        raise ValueError("method='replicate' needs a design with replicate_weights")
    elif psi is None:
        raise ValueError("Taylor-linearization and bootstrap variance need influence values psi")
    if method == "bootstrap" and multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier must be one of {list(MULTIPLIERS)}, got {multiplier!r}")
    if method == "bootstrap" and (isinstance(n_bootstrap, bool) or not isinstance(
            n_bootstrap, (int, np.integer)) or n_bootstrap < 2):
        raise ValueError(f"n_bootstrap must be an integer >= 2, got {n_bootstrap!r}")
    theta = estimate if estimate is not None else np.zeros(psi.shape[1])
    est = Estimate(theta, psi, reestimate=refit, reestimate_batch=refit_batch)
    inference = Inference(est, design, n_bootstrap=n_bootstrap if method == "bootstrap" else 0,
                          bootstrap_weights=multiplier, seed=seed)
    var = inference.variance()
    if var.method == "replicate":
        return var
    # as a kernel the engine reports the design's df even for independent rows, and the
    # bootstrap covariance around the full-sample estimate (draws are deviations from it)
    if var.method == "bootstrap":
        var = replace(var, vcov=var.draws.T @ var.draws / var.draws.shape[0])
    return replace(var, df=design.df)


def iid_variance(psi: np.ndarray, frequency_weights: np.ndarray | None = None) -> Variance:
    """Variance for independent observations: ``n/(n-1) sum (psi_i - psibar)^2``.

    With frequency weights each row stands for ``w_i`` observations and
    ``n = sum w``. df = n - 1.
    """
    psi = np.asarray(psi, dtype=float)
    n = psi.shape[0]
    design = trivial_design(n, frequency_weights)
    return design_variance(psi, design)


def cluster_variance(psi: np.ndarray, cluster: np.ndarray) -> Variance:
    """One-way cluster-robust (CR1) variance: ``G/(G-1) sum_g (S_g - Sbar)^2``.

    The Taylor-linearization formula with the clusters as PSUs and no strata;
    df = G - 1.
    """
    psi = np.asarray(psi, dtype=float)
    design = trivial_design(psi.shape[0]).with_clusters(cluster)
    return design_variance(psi, design)


def _as_matrix(psi: np.ndarray, n_obs: int) -> np.ndarray:
    psi = np.asarray(psi, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    if psi.ndim != 2 or psi.shape[0] != n_obs:
        raise ValueError(
            f"psi must have one row per design row ({n_obs}), got shape {psi.shape}"
        )
    return psi


def design_effects(psi: np.ndarray, design: ResolvedDesign, variance: Variance) -> np.ndarray:
    """Per-estimate design effects: design variance / independent-sampling variance.

    The denominator is the variance of the same influence values as if the
    rows were independent draws (``n/(n-1)`` scaling, frequency weights
    expanded), so the ratio isolates clustering, stratification and FPC
    (Skinner's misspecification effect). NaN where the denominator is zero.
    """
    psi = _as_matrix(psi, design.n_obs)
    inset = design.weights > 0
    freq = design.weights[inset] if design.weight_type == "fweight" else None
    srs = np.diag(iid_variance(psi[inset], freq).vcov)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(srs > 0, np.diag(variance.vcov) / np.where(srs > 0, srs, 1.0), np.nan)
