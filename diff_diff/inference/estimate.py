"""The estimate every estimator returns, and the one path from it to inference.

An estimator hands back an :class:`Estimate`: point estimates, their influence
values on the sum scale (``theta_hat - theta ~= psi.sum(0)``) and a function
that re-estimates under other weights (R survey's ``withReplicates``
contract). :class:`Inference` turns it into covariances, degrees of freedom
and critical values under any design - Taylor linearization (independent
units, ``cluster=``, strata/PSU/FPC), replicate weights (it calls the
re-estimate function itself) or the PSU multiplier bootstrap - for the
estimates themselves and for any linear map of them (aggregations, contrasts,
event-study averages). Estimators and results never look at the design type.

Conventions
-----------
* A variance that is not identified (too few PSUs or usable replicates, a
  negative diagonal from a bad design) gives a NaN standard error, and t, p
  and the interval are then NaN together; nothing is clipped to zero.
* Degrees of freedom: the design's with a survey design (PSUs minus strata,
  or the replicate rank minus one), ``None`` (normal) without one.
"""

from __future__ import annotations

import warnings

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .._warnings import warn_user
from .bootstrap import multiplier_bootstrap
from .intervals import bootstrap_se, sqrt_diag, sup_t_critical, t_inference
from .replicate import (
    replicate_estimates_by_refit,
    replicate_estimates_from_influence,
    replicate_vcov_from_estimates,
)
from .tsl import tsl_vcov


@dataclass(frozen=True, eq=False)
class Estimate:
    """Point estimates, influence values and a re-estimate function.

    Attributes
    ----------
    theta : ndarray (k,)
    psi : ndarray (n, k), an operator, or None
        Influence values on the sum scale, one row per sampling unit (a row
        of the design). An operator needs ``psi @ mapping`` ((k, J) -> (n, J))
        and ``toarray()``; it lets a factored influence matrix stay factored.
        ``None`` only for replicate designs with ``reestimate``.
    reestimate : callable, optional
        ``reestimate(weights) -> theta`` (k,) under other analysis weights (n,),
        for replicate designs. Without it replicate estimates re-weight
        ``psi`` (exact for totals, first order otherwise).
    reestimate_batch : callable, optional
        ``reestimate_batch(W) -> (R, k)`` for all replicate weights at once.
    small_sample : float or ndarray (k,), optional
        Small-sample factor on the variance of each estimate when there is no
        survey design (Taylor variance over independent units or
        ``cluster=``): a regression's ``(n - 1)/(n - k)``.
    groups : ndarray (k,), optional
        Estimates that exist together: with replicate weights each group, and
        each pair of groups for their covariance, keeps the replicates in
        which its estimates exist, so a small cell missing in one replicate
        does not drop it elsewhere; the df is then one value per estimate.
    name : str
        The estimator, for messages.
    """

    theta: np.ndarray
    psi: object = None
    reestimate: Callable[[np.ndarray], np.ndarray] | None = None
    reestimate_batch: Callable[[np.ndarray], np.ndarray] | None = None
    small_sample: float | np.ndarray | None = None
    groups: np.ndarray | None = None
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "theta", np.atleast_1d(np.asarray(self.theta, dtype=float)))

    @property
    def k(self) -> int:
        return int(self.theta.size)


@dataclass(frozen=True, eq=False)
class Variance:
    """A covariance and what inference needs from it.

    Attributes
    ----------
    vcov : ndarray (k, k)
    df : float, ndarray (k,) or None
        Degrees of freedom for t inference (``None``: normal).
    method : str
        ``"tsl"`` (Taylor linearization, including independent units and
        clusters), ``"replicate"`` or ``"bootstrap"``.
    replicates : ndarray (R, k) or None
        Replicate estimates (replicate designs).
    draws : ndarray (B, k) or None
        Bootstrap deviations ``theta*_b - theta_hat`` (bootstrap).
    n_valid_replicates : int or None
    crit : float or None
        Sup-t critical value of a uniform band (bootstrap, when asked).
    """

    vcov: np.ndarray
    df: float | np.ndarray | None
    method: str
    replicates: np.ndarray | None = None
    draws: np.ndarray | None = None
    n_valid_replicates: int | None = None
    crit: float | None = None

    @property
    def se(self) -> np.ndarray:
        """Standard errors: the SDs of bootstrap draws, else square roots of the
        diagonal (NaN where negative)."""
        if self.draws is not None:
            return bootstrap_se(self.draws, "sd")
        return sqrt_diag(self.vcov)

    def inference(self, estimate: np.ndarray, alpha: float = 0.05):
        """``(t, p, conf_low, conf_high)`` with the design degrees of freedom."""
        return t_inference(estimate, self.se, self.df, alpha)


def warn_if_unidentified(design, name: str = "") -> None:
    """Warn when a Taylor or bootstrap variance cannot be identified: fewer than two PSUs
    (or independent units) carry weight. R survey refuses such a design."""
    if design.replicate is not None:
        return
    n_psu = design.psus_with_weight().size
    if n_psu < 2:
        prefix = f"{name}: " if name else ""
        warn_user(f"{prefix}the variance needs at least two PSUs (clusters, or units) with "
                  f"positive weight; this design has {n_psu}, so standard errors are NaN")


def check_bootstrap_design(n_bootstrap, replicates: bool, name: str = "") -> None:
    """Refuse the multiplier bootstrap on a replicate-weight design (one message)."""
    if n_bootstrap and replicates:
        prefix = f"{name}: " if name else ""
        raise ValueError(f"{prefix}n_bootstrap > 0 cannot be combined with replicate weights; "
                         "the replicate weights already provide the variance")


@dataclass(frozen=True, eq=False)
class Inference:
    """The inference of an :class:`Estimate` under a resolved design.

    Parameters
    ----------
    estimate : Estimate
    design : ResolvedDesign
        With ``cluster=`` already applied (clusters as PSUs).
    n_bootstrap : int
        PSU multiplier bootstrap draws (0: analytic). Not with replicate weights.
    bootstrap_weights : {"rademacher", "mammen", "webb"}
    seed : int, Generator or None
    alpha : float
        For sup-t critical values.
    cband : bool
        Bootstrap: compute the sup-t critical value of a uniform band.
    cluster : str, optional
        Name of the ``cluster=`` column (for :attr:`label`).
    """

    estimate: Estimate
    design: object
    n_bootstrap: int = 0
    bootstrap_weights: str = "rademacher"
    seed: object = None
    alpha: float = 0.05
    cband: bool = False
    cluster: str | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    _checked: bool = field(default=False, repr=False)  # design already checked (``of``)

    def __post_init__(self):
        if self._checked:
            return
        check_bootstrap_design(self.n_bootstrap, self.design.replicate is not None,
                               self.estimate.name)
        warn_if_unidentified(self.design, self.estimate.name)

    # ------------------------------------------------------------ describe
    @property
    def method(self) -> str:
        """``"replicate"``, ``"bootstrap"`` or ``"tsl"``."""
        if self.design.replicate is not None:
            return "replicate"
        return "bootstrap" if self.n_bootstrap else "tsl"

    @property
    def survey(self) -> bool:
        """Whether a survey design (rather than independent units or clusters) is in use."""
        return self.design.from_survey

    @property
    def design_df(self) -> float | None:
        """The design's degrees of freedom with a survey design, else None (normal)."""
        return float(self.design.df) if self.survey else None

    @property
    def label(self) -> str:
        """How standard errors are obtained, for summaries."""
        if self.method == "replicate":
            return f"replicate weights ({self.design.replicate.method}), estimator refitted"
        text = "survey design (Taylor linearization)" if self.survey else "influence functions"
        if self.cluster is not None:
            text += f", clustered by {self.cluster}"
        if self.n_bootstrap:
            text += f", multiplier bootstrap ({self.n_bootstrap} draws)"
        return text

    def of(self, estimate: Estimate, analytic: bool = False) -> "Inference":
        """The same design and settings for another estimate (``analytic``: no
        bootstrap, e.g. for a Wald test)."""
        n_bootstrap = 0 if analytic else self.n_bootstrap
        return replace(self, estimate=estimate, n_bootstrap=n_bootstrap, _cache={},
                       _checked=True)

    # -------------------------------------------------------- basis pieces
    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def _psi(self) -> np.ndarray:
        """Dense influence values (scaled by the small-sample factor where it applies)."""
        def make():
            psi = self.estimate.psi
            if psi is None:
                raise ValueError("Taylor-linearization and bootstrap variance need influence values psi")
            psi = psi if isinstance(psi, np.ndarray) else psi.toarray()
            scale = self._factor_root()
            return psi if scale is None else psi * scale
        return self._cached("psi", make)

    def _factor_root(self):
        factor = self.estimate.small_sample
        if factor is None or self.survey or self.method != "tsl":
            return None
        return np.sqrt(np.broadcast_to(np.asarray(factor, dtype=float), (self.estimate.k,)))

    @property
    def replicates(self) -> np.ndarray:
        """Replicate estimates of ``theta`` (R, k)."""
        def make():
            est, spec = self.estimate, self.design.replicate
            if est.reestimate is not None or est.reestimate_batch is not None:
                return replicate_estimates_by_refit(spec.weights, est.reestimate,
                                                    est.reestimate_batch)
            if est.psi is None:
                raise ValueError("replicate variance needs psi or a refit function")
            return replicate_estimates_from_influence(self._psi, est.theta, self.design.weights,
                                                      spec.weights)
        return self._cached("replicates", make)

    @property
    def draws(self) -> np.ndarray:
        """Bootstrap deviations of ``theta`` (B, k)."""
        return self._cached("draws", lambda: multiplier_bootstrap(
            self._psi, self.design, self.n_bootstrap, self.bootstrap_weights, self.seed))

    @property
    def basis_vcov(self) -> np.ndarray:
        """Taylor covariance of ``theta`` (k, k)."""
        return self._cached("vcov", lambda: tsl_vcov(self._psi, self.design))

    # ------------------------------------------------------------- queries
    def variance(self, mapping: np.ndarray | None = None, *, points=None,
                 band=None) -> Variance:
        """Covariance of ``theta`` (``mapping=None``) or of ``mapping.T @ theta``.

        Parameters
        ----------
        mapping : ndarray (k, J), optional
            A linear map of the estimates; influence values, bootstrap draws
            and Taylor covariances map through it.
        points : callable, optional
            Replicate weights: ``points(theta_r) -> (J,)``, the derived
            estimates from replicate estimates (for maps whose weights are
            estimated too); default ``mapping.T @ theta_r``. Its value at
            ``theta`` is the full-sample derived estimate.
        band : ndarray of bool (J,), optional
            Bootstrap with ``cband``: the derived estimates the uniform
            (sup-t) band covers (default: all).
        """
        k = self.estimate.k
        identity = mapping is None
        mapping = np.eye(k) if identity else np.asarray(mapping, dtype=float)
        if self.method == "replicate":
            return self._replicate(mapping, identity, points)
        if self.method == "bootstrap":
            draws = self.draws if identity else self.draws @ mapping
            crit = None
            mask = np.ones(draws.shape[1], dtype=bool) if band is None else np.asarray(band, bool)
            if self.cband and mask.any():
                crit = sup_t_critical(draws[:, mask], bootstrap_se(draws[:, mask], "sd"),
                                      self.alpha)
            vcov = np.cov(draws, rowvar=False).reshape(draws.shape[1], draws.shape[1])
            return Variance(vcov, self.design_df, "bootstrap", draws=draws, crit=crit)
        return Variance(self._tsl(mapping, identity), self.design_df, "tsl")

    def variances(self, queries) -> list:
        """:meth:`variance` of several maps ``(mapping, points, band)``; Taylor
        covariances of all of them come from one pass over the influence values."""
        if self.method != "tsl" or len(queries) < 2:
            return [self.variance(m, points=p, band=b) for m, p, b in queries]
        joint = self.variance(np.hstack([m for m, _, _ in queries]))
        out, start = [], 0
        for mapping, _, _ in queries:
            stop = start + mapping.shape[1]
            out.append(Variance(joint.vcov[start:stop, start:stop], joint.df, "tsl"))
            start = stop
        return out

    def df_of(self, mapping: np.ndarray | None = None, points=None):
        """Degrees of freedom of derived estimates (replicate weights: from the
        replicates in which they exist)."""
        if self.method != "replicate":
            return self.design_df
        return self.variance(mapping, points=points).df

    def _tsl(self, mapping, identity) -> np.ndarray:
        if identity:
            return self.basis_vcov
        k, j = mapping.shape
        if 2 * j >= k or "vcov" in self._cache:
            return mapping.T @ self.basis_vcov @ mapping
        # a few derived estimates: the variance of their own influence values is cheaper
        scale = self._factor_root()
        scaled = mapping if scale is None else mapping * scale[:, None]
        psi = self.estimate.psi
        if psi is None:
            raise ValueError("Taylor-linearization and bootstrap variance need influence values psi")
        return tsl_vcov(psi @ scaled, self.design)

    def _replicate(self, mapping, identity, points) -> Variance:
        reps, theta = self.replicates, self.estimate.theta
        if reps.shape[1] != theta.shape[0]:
            raise ValueError(f"replicate estimates have {reps.shape[1]} columns but estimate "
                             f"has {theta.shape[0]}")
        if points is None:
            derived = reps if identity else reps @ mapping
            centre = theta if identity else theta @ mapping
        else:
            derived = np.vstack([np.atleast_1d(points(r)) for r in reps])
            centre = np.atleast_1d(np.asarray(points(theta), dtype=float))
        spec = self.design.replicate
        groups = self.estimate.groups if identity else None
        if groups is None:
            vcov, n_valid = replicate_vcov_from_estimates(derived, centre, spec.scale,
                                                          spec.rscales, spec.mse)
            df = float(min(spec.rank, n_valid) - 1)
            return Variance(vcov, df, "replicate", replicates=derived, n_valid_replicates=n_valid)
        vcov, df = _grouped_replicate_vcov(derived, centre, spec, np.asarray(groups),
                                           self.estimate.name)
        return Variance(vcov, df, "replicate", replicates=derived)


def _grouped_replicate_vcov(reps, estimate, spec, groups, name):
    """Replicate covariance per group of estimates (and per pair of groups)."""
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
        warn_user(f"{name}: replicates without an estimate were left out of the variance "
                  f"of those estimates ({shown} of {reps.shape[0]})")
    return vcov, (df if len(labels) > 1 else float(df[0]))
