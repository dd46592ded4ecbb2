"""Covariance of a vector of estimates from its influence values, for every kind of design.

Result classes call :func:`estimates_vcov` once: replicate designs (estimates
refitted per replicate), the PSU multiplier bootstrap (with a sup-t critical
value for a band) or analytic Taylor linearization.
"""

from __future__ import annotations

import warnings

import numpy as np

from .bootstrap import multiplier_bootstrap
from .engine import design_variance
from .intervals import bootstrap_se, sqrt_diag, sup_t_critical
from .replicate import replicate_estimates_by_refit, replicate_vcov_from_estimates


def estimates_vcov(
    psi: np.ndarray,
    estimate: np.ndarray,
    design,
    *,
    survey: bool,
    refit=None,
    n_bootstrap: int = 0,
    multiplier: str = "rademacher",
    seed=None,
    alpha: float = 0.05,
    band: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    name: str = "",
) -> dict:
    """``{"vcov", "se", "df", "crit"}`` of ``estimate`` (k,) with influence ``psi`` (n, k).

    * Replicate designs: ``refit(weights) -> (k,)`` per replicate; with
      ``groups`` (a label per estimate) each group, and each pair of groups
      for the cross blocks, keeps the replicates in which its estimates
      exist, so a small cell missing in one replicate does not drop it for
      the others; ``df`` is then one value per estimate.
    * ``n_bootstrap > 0``: multiplier bootstrap by PSU within strata; SEs are
      the SDs of the draws; with ``band`` (a mask of estimates) the sup-t
      critical value of a uniform band over them.
    * Otherwise Taylor linearization (independent units or clusters without a
      survey design). ``df``: the design's with a survey design, else None.
    """
    estimate = np.atleast_1d(np.asarray(estimate, dtype=float))
    k = estimate.size
    df = float(design.df) if survey else None
    crit = None
    if design.replicate is not None:
        reps = replicate_estimates_by_refit(design.replicate.weights, refit=refit)
        vcov, df = _replicate_vcov(reps, estimate, design.replicate,
                                   np.zeros(k) if groups is None else np.asarray(groups), name)
    elif n_bootstrap:
        draws = multiplier_bootstrap(psi, design, n_bootstrap, multiplier, seed)
        se = bootstrap_se(draws, "sd")
        vcov = np.cov(draws, rowvar=False).reshape(k, k)
        if band is not None and np.any(band):
            crit = sup_t_critical(draws[:, band], se[band], alpha)
        return {"vcov": vcov, "se": se, "df": df, "crit": crit}
    else:
        vcov = design_variance(psi, design).vcov
    return {"vcov": vcov, "se": sqrt_diag(vcov), "df": df, "crit": crit}


def _replicate_vcov(reps, estimate, spec, groups, name):
    labels = list(dict.fromkeys(groups.tolist()))
    k = estimate.size
    vcov = np.full((k, k), np.nan)
    df = np.full(k, np.nan)
    dropped = {}
    for i, a in enumerate(labels):
        for b in labels[i:]:
            cols = np.flatnonzero((groups == a) | (groups == b))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                block, n_valid = replicate_vcov_from_estimates(
                    reps[:, cols], estimate[cols], spec.scale, spec.rscales, spec.mse)
            vcov[np.ix_(cols, cols)] = block
            if a == b:
                df[cols] = float(min(spec.rank, n_valid) - 1)
                if n_valid < reps.shape[0]:
                    dropped[a] = reps.shape[0] - n_valid
    if dropped:
        shown = ", ".join(f"{label}: {n}" if len(labels) > 1 else str(n)
                          for label, n in dropped.items())
        warnings.warn(f"{name}: replicates without an estimate were left out of the variance "
                      f"of those estimates ({shown} of {reps.shape[0]})", UserWarning,
                      stacklevel=4)
    return vcov, (df if len(labels) > 1 else float(df[0]))
