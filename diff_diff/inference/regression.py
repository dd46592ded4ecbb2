"""Variance of regression coefficients: the ``vcov_type`` menu, on top of the engine.

Every type is computed from the fit's scores and bread. ``hc1`` and ``cr1``
(and survey designs) go through the same engine as every other estimator,
with the regression small-sample factor ``(n - 1)/(n - k)``; ``classical``,
``hc2``, ``hc3`` and ``hc2_bm`` (CR2 with Bell-McCaffrey/Satterthwaite
degrees of freedom) are regression-specific.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..linalg.wls import WLSFit
from ..survey.resolved import ResolvedDesign, trivial_design
from .cr2 import cr2
from .estimate import Estimate, Inference

VCOV_TYPES = ("classical", "hc1", "hc2", "hc3", "cr1", "hc2_bm")


@dataclass(frozen=True, eq=False)
class RegressionVariance:
    """Covariance of the kept coefficients, degrees of freedom, and contrast dfs."""

    vcov: np.ndarray
    df: float | None
    vcov_type: str
    n_clusters: int | None = None
    contrast_df: np.ndarray | None = None  # Satterthwaite df per requested contrast (hc2_bm)


def regression_variance(
    fit: WLSFit,
    vcov_type: str = "hc1",
    cluster: np.ndarray | None = None,
    design: ResolvedDesign | None = None,
    contrasts: np.ndarray | None = None,
    absorbed_nested_in_cluster: bool = False,
    single_absorbed: np.ndarray | None = None,
    refit=None,
    default_cluster: bool = False,
    name: str = "",
    groups: np.ndarray | None = None,
) -> RegressionVariance:
    """Variance of ``fit``'s kept coefficients.

    Parameters
    ----------
    vcov_type : {"classical", "hc1", "hc2", "hc3", "cr1", "hc2_bm"}
        ``cr1`` needs ``cluster``; ``hc2_bm`` uses ``cluster`` when given.
    cluster : array of codes, optional
    design : ResolvedDesign, optional
        A survey design: Taylor linearization of the scores (``hc1``/``cr1``
        only), or replicate refits with ``refit``.
    contrasts : ndarray (q, k_kept), optional
        Linear contrasts whose Satterthwaite df ``hc2_bm`` should compute
        (default: each coefficient).
    absorbed_nested_in_cluster : bool
        Absorbed fixed effects are nested in the clusters (needed for
        ``hc2_bm`` with absorbed effects).
    single_absorbed : array of codes, optional
        The one absorbed fixed-effect dimension (for ``hc2``/``hc3``
        leverages with absorbed effects).
    refit : callable, optional
        Replicate designs: weights -> kept coefficients.
    default_cluster : bool
        ``cluster`` is the estimator's default (TWFE's units), not the user's:
        a design with its own PSUs or replicate weights replaces it.
    name : str
        The estimator, for messages.
    groups : ndarray, optional
        Replicate designs: a label per kept coefficient; coefficients of one
        label exist together, so a replicate that loses one group (a cohort
        whose PSUs it drops) is left out only for that group's variances (the
        df is then the smallest of the groups').
    """
    if vcov_type not in VCOV_TYPES:
        raise ValueError(f"vcov_type must be one of {list(VCOV_TYPES)}, got {vcov_type!r}")
    k_total = fit.rank + fit.df_absorbed
    n = fit.n_obs
    if design is not None and design.is_trivial and design.weight_type in ("aweight", "fweight"):
        # analytic or frequency weights without a sampling design: a weighted
        # regression whose variance follows vcov_type (R lm(weights=) + sandwich)
        design = None
    if design is not None and default_cluster and design.defines_clustering:
        cluster = None  # the design's PSUs or replicates replace the estimator's default
    if design is not None:
        return _survey(fit, vcov_type, cluster, design, refit, name, groups)
    if vcov_type == "cr1" and cluster is None:
        raise ValueError("vcov_type='cr1' needs cluster= (the cluster column)")
    if cluster is not None and vcov_type in ("classical", "hc2", "hc3"):
        raise ValueError(
            f"vcov_type={vcov_type!r} ignores clustering; with cluster= use 'cr1' or 'hc2_bm'"
        )
    if vcov_type == "classical":
        sigma2 = float(np.sum(fit.weights * fit.resid**2)) / (n - k_total)
        return RegressionVariance(sigma2 * fit.bread_inv, n - k_total, vcov_type)
    freq = fit.weights if fit.frequency else None
    if vcov_type in ("hc1", "cr1"):
        # the engine's n/(n-1) (or G/(G-1)) times the regression factor (n-1)/(n-k)
        small_sample = (n - 1.0) / (n - k_total)
        if cluster is None:
            estimate = Estimate(fit.coef[fit.kept], fit.influence(),
                                small_sample=small_sample, name=name)
            vcov = Inference(estimate, trivial_design(fit.x.shape[0], freq)).variance().vcov
            return RegressionVariance(vcov, n - k_total, "hc1")
        # clusters: their influence totals are all the variance needs (each its own PSU)
        codes = np.asarray(cluster, dtype=np.int64)
        present = np.bincount(codes) > 0
        totals = fit.cluster_influence(codes, present.size)[present]
        estimate = Estimate(fit.coef[fit.kept], totals, small_sample=small_sample, name=name)
        vcov = Inference(estimate, trivial_design(totals.shape[0])).variance().vcov
        n_clusters = int(present.sum())
        return RegressionVariance(vcov, float(n_clusters - 1), "cr1", n_clusters=n_clusters)
    if fit.frequency:
        raise ValueError(f"vcov_type={vcov_type!r} is not available with frequency weights")
    if vcov_type in ("hc2", "hc3"):
        h = _leverage(fit, single_absorbed)
        power = 0.5 if vcov_type == "hc2" else 1.0
        adj = fit.scores() / (1.0 - h)[:, None] ** power
        vcov = fit.bread_inv @ (adj.T @ adj) @ fit.bread_inv
        return RegressionVariance(vcov, n - k_total, vcov_type)
    # hc2_bm
    if fit.df_absorbed and not (cluster is not None and absorbed_nested_in_cluster):
        raise ValueError(
            "vcov_type='hc2_bm' with absorbed fixed effects needs clusters that nest them "
            "(e.g. unit effects with cluster=unit); include other effects as dummies "
            "(fixed_effects=) instead"
        )
    c = np.eye(fit.rank) if contrasts is None else np.atleast_2d(contrasts)
    vcov, df = cr2(fit.x, fit.resid, fit.weights, fit.bread_inv, cluster, c)
    n_clusters = None if cluster is None else int(np.count_nonzero(np.bincount(cluster)))
    return RegressionVariance(vcov, None, "hc2_bm", n_clusters=n_clusters, contrast_df=df)


def _leverage(fit: WLSFit, single_absorbed) -> np.ndarray:
    xs = fit.x * np.sqrt(fit.weights)[:, None]
    h = np.einsum("ij,jk,ik->i", xs, fit.bread_inv, xs)
    if fit.df_absorbed:
        if single_absorbed is None:
            raise ValueError(
                "hc2/hc3 leverages with more than one absorbed fixed-effect dimension are not "
                "available; include the effects as dummies (fixed_effects=)"
            )
        totals = np.bincount(single_absorbed, weights=fit.weights)
        h = h + fit.weights / totals[single_absorbed]
    return h


def _survey(fit, vcov_type, cluster, design, refit, name="", groups=None) -> RegressionVariance:
    if vcov_type not in ("hc1", "cr1"):
        raise ValueError(
            f"vcov_type={vcov_type!r} cannot be combined with a survey design: the design "
            "defines the variance (Taylor linearization or replicate weights); use the "
            "default 'hc1'"
        )
    if cluster is not None:
        design = design.with_clusters(cluster)
    psi, design = _unit_level(fit, design)
    inference = Inference(Estimate(fit.coef[fit.kept], psi, reestimate=refit,
                                   groups=groups, name=name), design)
    var = inference.variance()
    n_clusters = None if var.method == "replicate" else design.n_psu
    df = var.df if var.df is None or np.ndim(var.df) == 0 else float(np.nanmin(var.df))
    return RegressionVariance(var.vcov, df, var.method, n_clusters=n_clusters)


def _unit_level(fit, design):
    """``(influence, design)``: a fit solved on cells (:class:`~diff_diff.linalg.cells.
    CellGridFit`) under a Taylor design whose PSUs are constant within its units gives
    per-unit influence totals and the design of one row per unit (same PSU totals, same
    strata and FPC); anything else the fit's rows, formed only if needed."""
    units = getattr(fit, "_unit_codes", None)
    if units is None or design.replicate is not None or design.calibration is not None:
        return _LazyInfluence(fit), design
    n_units = fit._unit_pattern.size
    first = np.empty(n_units, dtype=np.int64)
    first[units] = np.arange(units.size)
    if not (design.psu == design.psu[first][units]).all():
        return _LazyInfluence(fit), design
    return fit.cluster_influence(units, n_units), design.take(first)


class _LazyInfluence:
    """A fit's influence values, formed only if the variance needs them."""

    def __init__(self, fit):
        self.fit = fit

    def toarray(self) -> np.ndarray:
        return self.fit.influence()

    def __matmul__(self, mapping):
        return self.toarray() @ mapping


def wild_contrast_inference(fit: WLSFit, y, absorb, var: RegressionVariance, cluster, contrast,
                            design, n_bootstrap, multiplier, seed, alpha):
    """Wild cluster bootstrap (restricted, CR1 t) for ``contrast'b`` of a fit with
    absorbed effects ``absorb``; p-value and interval from the bootstrap."""
    if design is not None:
        raise ValueError(
            "inference='wild_bootstrap' cannot be combined with a survey design: use the "
            "design-based (Taylor or replicate) variance"
        )
    if cluster is None or var.vcov_type != "cr1":
        raise ValueError("inference='wild_bootstrap' needs cluster= (CR1 standard errors)")
    from ..linalg.wls import demean
    from .wild import wild_cluster_bootstrap

    y_t = demean(y[:, None], absorb, fit.weights)[:, 0]
    coef = fit.coef[fit.kept]
    se = float(np.sqrt(contrast @ var.vcov @ contrast))
    n, k = fit.n_obs, fit.rank + fit.df_absorbed
    g = var.n_clusters
    factor = g / (g - 1.0) * (n - 1.0) / (n - k)
    return wild_cluster_bootstrap(fit.x, y_t, fit.weights, fit.bread_inv, coef, cluster,
                                  contrast, se, factor, n_bootstrap, multiplier, seed, alpha)
