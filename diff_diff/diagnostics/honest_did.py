"""Sensitivity of an event study to violations of parallel trends (Rambachan & Roth 2023).

``HonestDiD`` takes any event-study result (its ``event_study_effects`` and the full
``event_study_vcov``: analytic, design-based, replicate or bootstrap alike) and
reports, for ``theta = l' tau_post`` (by default the average effect over the
post-treatment periods, as diff-diff 3.x; R ``HonestDiD``'s default is the first
post period: pass ``l_vec``):

* ``lb``, ``ub``: the identified set when the estimates are taken as the truth;
* ``ci_lb``, ``ci_ub``: a confidence set robust to the violations the restriction
  allows, as R ``HonestDiD`` computes it: ``"smoothness"`` (``Delta^SD(M)``, second
  differences of the violation at most ``M``) uses the optimal fixed-length interval
  (FLCI) by default; ``"relative_magnitude"`` (``Delta^RM(Mbar)``, post-period
  changes at most ``Mbar`` times the largest pre-period change) and ``"combined"``
  (``Delta^SDRM(Mbar)``, the same on second differences) use the conditional /
  least-favourable hybrid test of Andrews, Roth & Pakes inverted over a grid
  (``"C-LF"``); ``ci_method="Conditional"`` gives the purely conditional test, and
  ``"C-LF"``/``"Conditional"`` are available for smoothness as well.

The mathematics is in :mod:`diff_diff.diagnostics._honest_sets`. Critical values are
normal, as in R ``HonestDiD``, also for survey designs (whose design degrees of
freedom are reported as ``df_survey``; the original interval uses the results' degrees of
freedom).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .._lazy import stats
from .._warnings import warn_user
from . import _honest_sets as sets
from .pretrends_power import event_study_inputs

METHODS = ("relative_magnitude", "smoothness", "combined")
CI_METHODS = ("FLCI", "C-LF", "Conditional")
_DEFAULT_CI = {"smoothness": "FLCI", "relative_magnitude": "C-LF", "combined": "C-LF"}
_DEFAULT_M = {"smoothness": 0.0, "relative_magnitude": 1.0, "combined": 1.0}
_RESTRICTION = {"smoothness": sets.restriction_sd, "relative_magnitude": sets.restriction_rm,
                "combined": sets.restriction_sdrm}
_LABEL = {"smoothness": "Delta^SD(M)", "relative_magnitude": "Delta^RM(Mbar)",
          "combined": "Delta^SDRM(Mbar)"}


class HonestDiD:
    """Robust confidence sets for an event study under bounded violations of parallel
    trends (Rambachan & Roth 2023; R ``HonestDiD``).

    Parameters
    ----------
    method : {"relative_magnitude", "smoothness", "combined"}
        The restriction on the violation ``delta``: ``Delta^RM(Mbar)``,
        ``Delta^SD(M)`` or ``Delta^SDRM(Mbar)`` (module docstring).
    M : float, optional
        Its bound (``Mbar`` for the relative restrictions). Default 1 for the
        relative restrictions, 0 for smoothness (linear violations only).
    alpha : float
        1 - confidence level.
    l_vec : sequence of float, optional
        Weights of the post-reference event times defining ``theta = l' tau_post``
        (one per event time after the reference period). Default: the average over
        the post-treatment event times (``e >= 0``).
    ci_method : {"FLCI", "C-LF", "Conditional"}, optional
        Default ``"FLCI"`` for smoothness, ``"C-LF"`` otherwise (R's defaults). The
        FLCI exists for smoothness only.
    grid_points, grid_lb, grid_ub : optional
        The grid of ``theta`` the conditional tests are inverted over; default, as R
        ``HonestDiD``: 1000 points over ``0 +- 20`` standard errors of
        ``l' beta_post`` (for smoothness: the identified set of ``beta = 0`` widened
        by 20 standard errors on each side). When the set is empty on that grid or
        reaches one of its ends (R's answer is then cut by its grid: a precise estimate
        far from 0, a large bound), the search is repeated once over a grid reaching 20
        standard errors past the identified set and, on a side the set reached, as far
        again as the first grid (``grid_widened``).
    n_sims, seed
        Draws (and their seed) for the least-favourable critical value of ``"C-LF"``
        (1000 as R; seed 0).

    Examples
    --------
    >>> import diff_diff as dd
    >>> cs = dd.CallawaySantAnna(base_period="universal").fit(
    ...     dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
    ...     first_treat="first.treat")
    >>> h = dd.HonestDiD(method="relative_magnitude", M=1.0).fit(cs)
    >>> round(h.ci_lb, 3), round(h.ci_ub, 3)
    (-0.21, 0.056)
    """

    def __init__(self, method: str = "relative_magnitude", M: float | None = None,
                 alpha: float = 0.05, l_vec=None, ci_method: str | None = None,
                 grid_points: int = 1000, grid_lb: float | None = None,
                 grid_ub: float | None = None, n_sims: int = 1000, seed: int = 0):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        ci_method = _DEFAULT_CI[method] if ci_method is None else ci_method
        if ci_method not in CI_METHODS:
            raise ValueError(f"ci_method must be one of {CI_METHODS}, got {ci_method!r}")
        if ci_method == "FLCI" and method != "smoothness":
            raise ValueError("the FLCI is defined for method='smoothness' only; the relative "
                             "restrictions use ci_method='C-LF' or 'Conditional'")
        if M is not None:
            _check_M(M)
        if int(grid_points) < 2:
            raise ValueError(f"grid_points must be at least 2, got {grid_points!r}")
        if int(n_sims) < 100:
            raise ValueError(f"n_sims must be at least 100, got {n_sims!r}")
        self.method, self.M, self.alpha, self.l_vec = method, M, float(alpha), l_vec
        self.ci_method = ci_method
        self.grid_points, self.grid_lb, self.grid_ub = int(grid_points), grid_lb, grid_ub
        self.n_sims, self.seed = int(n_sims), int(seed)

    # ------------------------------------------------------------------ API
    def fit(self, results, M: float | None = None,
            event_study_bounds: bool = True) -> "HonestDiDResults":
        """Identified set and robust confidence set at ``M`` (default: the constructor's);
        with ``event_study_bounds`` also those of each post-reference event time.

        Parameters
        ----------
        results
            An event-study result (Callaway-Sant'Anna with ``base_period="universal"``,
            imputation, Sun-Abraham, ``MultiPeriodDiD``, ...) with leads and lags and their
            covariance.
        M : float, optional
            The bound; the constructor's when omitted.
        event_study_bounds : bool, default True
            Also compute the sets of each post-reference event time.

        Returns
        -------
        HonestDiDResults
            Identified set, robust confidence set and the settings used.

        Raises
        ------
        ValueError
            If the results carry no event study with pre-periods and a covariance.
        """
        inputs = _EventStudy.from_results(results)
        return self._fit_inputs(inputs, M, original_results=results,
                                event_bounds=event_study_bounds)

    def fit_arrays(self, betahat, sigma, num_pre_periods: int, M: float | None = None,
                   df=None, event_study_bounds: bool = True) -> "HonestDiDResults":
        """The same from plain arrays, as R ``HonestDiD`` takes them: ``betahat`` (pre-period
        coefficients first, the reference period left out), its covariance ``sigma``, and
        the number of pre-period coefficients (``df``: degrees of freedom of the original
        interval, None for normal).

        Parameters
        ----------
        betahat : array_like
            Event-study coefficients, pre-periods first, the reference period left out.
        sigma : array_like
            Their covariance matrix.
        num_pre_periods : int
            How many of ``betahat`` are pre-period coefficients.
        M : float, optional
            The bound; the constructor's when omitted.
        df : float, optional
            Degrees of freedom of the original interval (None: normal).
        event_study_bounds : bool, default True
            Also compute the sets of each post-reference event time.

        Returns
        -------
        HonestDiDResults

        Raises
        ------
        ValueError
            If the shapes of ``betahat`` and ``sigma`` disagree or ``num_pre_periods`` is out
            of range.
        """
        inputs = _EventStudy.from_arrays(betahat, sigma, num_pre_periods, df)
        return self._fit_inputs(inputs, M, event_bounds=event_study_bounds)

    def sensitivity_analysis(self, results, M_grid=None) -> "SensitivityResults":
        """Robust confidence sets over a grid of ``M`` (default: R's, ``0, 0.5, ..., 2``
        for the relative restrictions; ten values from 0 to the standard error of
        ``theta_hat`` for smoothness).

        Parameters
        ----------
        results
            An event-study result, as for :meth:`fit`.
        M_grid : sequence of float, optional
            The bounds to evaluate.

        Returns
        -------
        SensitivityResults
            One robust set per ``M``, the original interval and the breakdown value.
        """
        inputs = _EventStudy.from_results(results)
        l_vec = inputs.weights(self.l_vec)
        if M_grid is None:
            if self.method == "smoothness":
                M_grid = np.linspace(0.0, inputs.theta_se(l_vec), 10)
            else:
                M_grid = np.arange(0.0, 2.01, 0.5)
        grid = sorted(float(_check_M(m)) for m in np.atleast_1d(np.asarray(M_grid, float)))
        if not grid:
            raise ValueError("M_grid is empty")
        fits = [self._fit_inputs(inputs, m, original_results=results, event_bounds=False)
                for m in grid]
        return SensitivityResults(fits, self)

    def breakdown_value(self, results, tol: float = 0.01):
        """The largest ``M`` at which the robust confidence set still excludes zero, to
        ``tol`` (in the units of ``M``: ``Mbar`` for the relative restrictions; for
        smoothness ``tol`` is a fraction of the standard error of ``theta_hat``).
        ``None`` when the set includes zero already at ``M = 0``; ``inf`` when it still
        excludes zero at 10^6 times the starting bound.

        Parameters
        ----------
        results
            An event-study result, as for :meth:`fit`.
        tol : float, default 0.01
            Precision of the search.

        Returns
        -------
        float or None
        """
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
            raise ValueError(f"tol must be a positive number, got {tol!r}")
        inputs = _EventStudy.from_results(results)

        def excludes_zero(m):
            fit = self._fit_inputs(inputs, m, event_bounds=False)
            if not math.isfinite(fit.ci_lb):
                raise ValueError(f"HonestDiD.breakdown_value: the robust confidence set at "
                                 f"M = {m:g} is empty on the theta grid; pass grid_lb / "
                                 "grid_ub to the HonestDiD constructor")
            return fit.is_significant

        if not excludes_zero(0.0):
            return None
        step = inputs.theta_se(inputs.weights(self.l_vec)) if self.method == "smoothness" else 1.0
        low, high = 0.0, step
        while excludes_zero(high):
            low, high = high, 2 * high
            if high > 1e6 * step:
                return math.inf
        while high - low > tol * (step if self.method == "smoothness" else 1.0):
            mid = (low + high) / 2
            low, high = (mid, high) if excludes_zero(mid) else (low, mid)
        return low

    # ------------------------------------------------------------------ core
    def _fit_inputs(self, inputs, M, original_results=None, event_bounds=True):
        M = self.M if M is None else M
        M = _DEFAULT_M[self.method] if M is None else float(_check_M(M))
        l_vec = inputs.weights(self.l_vec)
        lb, ub, ci_lb, ci_ub, extra = self._bounds(inputs, l_vec, M)
        theta, se = float(l_vec @ inputs.post), inputs.theta_se(l_vec)
        crit = (stats.norm.ppf(1 - self.alpha / 2) if inputs.df is None
                else stats.t.ppf(1 - self.alpha / 2, inputs.df))
        bounds = None
        if event_bounds:
            rows = []
            for j, event in enumerate(inputs.post_events):
                unit = np.zeros(inputs.n_post)
                unit[j] = 1.0
                b = self._bounds(inputs, unit, M, warn=False)
                rows.append({"event_time": _event(event), "estimate": inputs.post[j],
                             "se": math.sqrt(inputs.sigma[inputs.n_pre + j, inputs.n_pre + j]),
                             "lb": b[0], "ub": b[1], "ci_lb": b[2], "ci_ub": b[3],
                             "grid_end_reached": b[4].get("grid_end_reached", False)})
            bounds = pd.DataFrame(rows)
        return HonestDiDResults(
            lb=lb, ub=ub, ci_lb=ci_lb, ci_ub=ci_ub, M=M, method=self.method,
            ci_method=self.ci_method, alpha=self.alpha, original_estimate=theta,
            original_se=se, original_ci=(theta - crit * se, theta + crit * se), l_vec=l_vec,
            pre_periods_used=[_event(e) for e in inputs.pre_events],
            post_periods_used=[_event(e) for e in inputs.post_events],
            reference_period=inputs.reference, event_study_bounds=bounds, df=inputs.df,
            df_survey=(inputs.df if getattr(original_results, "survey_metadata", None)
                       is not None else None),
            survey_metadata=getattr(original_results, "survey_metadata", None),
            original_results=original_results, **extra)

    def _bounds(self, inputs, l_vec, M, warn=True):
        beta, sigma, n_pre, n_post = inputs.beta, inputs.sigma, inputs.n_pre, inputs.n_post
        polyhedra = _RESTRICTION[self.method](n_pre, n_post, M)
        lb, ub = sets.identified_set(beta, n_pre, l_vec, polyhedra)
        extra = {}
        if self.ci_method == "FLCI":
            ci_lb, ci_ub, weights, half, sd, bias = sets.flci(beta, sigma, n_pre, l_vec, M,
                                                              self.alpha)
            extra = {"flci_pre_weights": weights, "flci_half_length": half}
            return lb, ub, ci_lb, ci_ub, extra
        sd_theta = inputs.theta_se(l_vec)
        low, high = -20 * sd_theta, 20 * sd_theta
        if self.method == "smoothness":  # R: around the identified set of beta = 0
            zero_lb, zero_ub = sets.identified_set(np.zeros_like(beta), n_pre, l_vec, polyhedra)
            low, high = zero_lb + low, zero_ub + high
        user_grid = self.grid_lb is not None or self.grid_ub is not None
        low = low if self.grid_lb is None else float(self.grid_lb)
        high = high if self.grid_ub is None else float(self.grid_ub)
        if not low < high:
            raise ValueError(f"grid_lb must be below grid_ub, got {low!r} and {high!r}")
        hybrid = "LF" if self.ci_method == "C-LF" else "ARP"

        def accepted(lo, hi):
            grid = np.linspace(lo, hi, self.grid_points)
            accept = np.zeros(grid.size, dtype=bool)
            for A, d in polyhedra:
                accept |= sets.arp_accept(beta, sigma, A, d, n_pre, l_vec, grid, self.alpha,
                                          hybrid, n_sims=self.n_sims, seed=self.seed)
            return grid, accept

        grid, accept = accepted(low, high)
        if not user_grid and (not accept.any() or accept[0] or accept[-1]):
            # R's grid is centred on 0; when the set is empty there or reaches an end (a
            # precise estimate far from 0, a large bound) R's answer is cut by its grid:
            # search again over 20 standard errors past the identified set (or estimate)
            theta = float(l_vec @ beta[n_pre:])
            reach_lb, reach_ub = (lb, ub) if np.isfinite(lb) else (theta, theta)
            width = high - low
            wide = (min(low, reach_lb - 20 * sd_theta, low - width if accept[0] else low),
                    max(high, reach_ub + 20 * sd_theta, high + width if accept[-1] else high))
            if wide != (low, high):
                low, high = wide
                grid, accept = accepted(low, high)
                extra["grid_widened"] = True
        if not accept.any():
            if warn:
                warn_user(f"HonestDiD: no value of theta on the grid [{low:.4g}, {high:.4g}] "
                          "is accepted; the confidence set is empty there (widen "
                          "grid_lb/grid_ub)")
            return lb, ub, math.nan, math.nan, extra
        extra["grid_end_reached"] = bool(accept[0] or accept[-1])
        if warn and extra["grid_end_reached"]:
            warn_user("HonestDiD: the confidence set reaches the end of the theta grid "
                      f"[{low:.4g}, {high:.4g}]; it may be longer (widen grid_lb/grid_ub)")
        return lb, ub, float(grid[accept].min()), float(grid[accept].max()), extra


def compute_honest_did(results, method: str = "relative_magnitude", M: float | None = None,
                       alpha: float = 0.05, l_vec=None, event_study_bounds: bool = True,
                       **kwargs) -> "HonestDiDResults":
    """Function form of :class:`HonestDiD` (diff-diff 3.x): ``HonestDiD(method, M, alpha,
    l_vec, **kwargs).fit(results, event_study_bounds=event_study_bounds)``.

    Parameters
    ----------
    results
        An event-study result, as for :meth:`HonestDiD.fit`.
    method : {"relative_magnitude", "smoothness", "combined"}, default "relative_magnitude"
        The restriction on the violation of parallel trends.
    M : float, optional
        Its bound.
    alpha : float, default 0.05
        1 - confidence level.
    l_vec : sequence of float, optional
        Weights of the post-reference event times defining the target.
    event_study_bounds : bool, default True
        Also compute the sets of each post-reference event time.
    **kwargs
        Other :class:`HonestDiD` settings (``ci_method``, ``grid_points``, ...).

    Returns
    -------
    HonestDiDResults

    Examples
    --------
    >>> import diff_diff as dd
    >>> cs = dd.CallawaySantAnna(base_period="universal").fit(
    ...     dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
    ...     first_treat="first.treat")
    >>> h = dd.compute_honest_did(cs, method="smoothness", M=0.01)
    >>> h.ci_method, round(h.ci_lb, 4), round(h.ci_ub, 4)
    ('FLCI', -0.1428, 0.0696)
    """
    return HonestDiD(method, M, alpha, l_vec, **kwargs).fit(
        results, event_study_bounds=event_study_bounds)


def _event(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def _check_M(M):
    value = float(M)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"M must be a finite number >= 0, got {M!r}")
    return value


class _EventStudy:
    """The coefficients HonestDiD works on: pre-period leads, then post-reference
    coefficients, consecutive event times, the reference period left out."""

    def __init__(self, beta, sigma, pre_events, post_events, reference, df):
        self.beta, self.sigma, self.df = beta, sigma, df
        self.pre_events, self.post_events, self.reference = pre_events, post_events, reference
        self.n_pre, self.n_post = len(pre_events), len(post_events)
        self.post = beta[self.n_pre:]
        if self.n_pre < 1:
            raise ValueError(f"HonestDiD needs at least one coefficient before the reference "
                             f"period ({_event(reference)}) to bound the violation of parallel "
                             "trends; these results have none (ImputationDiD and TwoStageDiD "
                             "report no leads; with another estimator choose an earlier "
                             "reference period)")
        if self.n_post < 1:
            raise ValueError("HonestDiD needs at least one coefficient after the reference "
                             "period")
        if not np.isfinite(beta).all() or not np.isfinite(sigma).all():
            raise ValueError("the event-study estimates or their covariance contain NaN")
        sigma_sym = (sigma + sigma.T) / 2
        if np.linalg.eigvalsh(sigma_sym).min() < -1e-10 * np.abs(np.diag(sigma)).max():
            raise ValueError("the event-study covariance is not positive semi-definite")
        self.sigma = sigma_sym

    @classmethod
    def from_results(cls, results):
        table, events, cov, var, reference = event_study_inputs(
            results, "HonestDiD", "CallawaySantAnna, SunAbraham, MultiPeriodDiD, ...",
            "the leads are not violations relative to one reference period; fit with "
            "base_period='universal' (as R HonestDiD's vignette does)")
        keep = (var > 0) & (events != reference)
        order = np.argsort(events)
        idx = order[keep[order]]
        used = events[idx]
        span = np.r_[used, reference]
        expected = np.arange(span.min(), span.max() + 1)
        if not np.array_equal(np.sort(span), expected):
            gaps = [_event(e) for e in sorted(set(expected.tolist()) - set(span.tolist()))]
            raise ValueError(f"HonestDiD's restrictions compare adjacent periods, but event "
                             f"times {gaps} are missing between {span.min():g} and "
                             f"{span.max():g} (no estimate or zero variance)")
        pre, post = used[used < reference], used[used > reference]
        df = getattr(results, "df", None)
        return cls(table["estimate"].to_numpy(float)[idx], cov[np.ix_(idx, idx)], pre, post,
                   reference, None if df is None else float(df))

    @classmethod
    def from_arrays(cls, betahat, sigma, num_pre_periods, df=None):
        beta = np.asarray(betahat, float).ravel()
        sigma = np.asarray(sigma, float)
        if sigma.shape != (beta.size, beta.size):
            raise ValueError(f"sigma must be {beta.size} x {beta.size}, got {sigma.shape}")
        n_pre = int(num_pre_periods)
        if not 0 <= n_pre <= beta.size:
            raise ValueError(f"num_pre_periods must be in [0, {beta.size}], "
                             f"got {num_pre_periods!r}")
        pre = np.arange(-n_pre - 1, -1)
        post = np.arange(0, beta.size - n_pre)
        return cls(beta, sigma, pre, post, -1, df)

    def weights(self, l_vec):
        if l_vec is None:
            after = np.asarray(self.post_events) >= 0
            if not after.any():
                raise ValueError("no post-treatment event time (e >= 0) to average; pass l_vec")
            return after / after.sum()
        weights = np.asarray(l_vec, float).ravel()
        if weights.size != self.n_post:
            raise ValueError(f"l_vec needs one weight per event time after the reference period "
                             f"{[_event(e) for e in self.post_events]}"
                             f", got {weights.size}")
        if not np.isfinite(weights).all() or not np.any(weights != 0):
            raise ValueError("l_vec must be finite and not all zero")
        return weights

    def theta_se(self, l_vec):
        n = self.n_pre
        return math.sqrt(max(float(l_vec @ self.sigma[n:, n:] @ l_vec), 0.0))


class HonestDiDResults:
    """Identified set and robust confidence set for ``theta = l' tau_post``.

    Attributes
    ----------
    lb, ub : float
        The identified set (the estimates taken as the truth); NaN when the leads
        alone violate the restriction (R ``HonestDiD`` then reports ``l' beta_post``).
    ci_lb, ci_ub : float
        The robust confidence set (its hull when the accepted grid has gaps).
    M, method, ci_method, alpha, l_vec
        The restriction, its bound, the interval's construction and the target weights.
    original_estimate, original_se, original_ci
        ``l' beta_post``, its standard error and the usual interval (t with ``df`` when
        the results have degrees of freedom: a survey design's, a cluster count's).
    df, df_survey : float or None
        Those degrees of freedom; ``df_survey`` only when the results come from a survey
        design.
    pre_periods_used, post_periods_used, reference_period
        Event times of the coefficients used.
    event_study_bounds : DataFrame or None
        The same sets for each post-reference event time (``l`` a unit vector;
        ``grid_end_reached`` marks sets that reach an end of their theta grid, whose
        true extent may be larger).
    grid_end_reached : bool
        The headline set reaches an end of the theta grid (a warning says so).
    flci_pre_weights, flci_half_length
        For the FLCI: the weights on the leads and the half-length.
    """

    def __init__(self, **fields):
        self.flci_pre_weights = None
        self.flci_half_length = None
        self.grid_end_reached = False
        self.grid_widened = False
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def is_significant(self) -> bool:
        """Whether the robust confidence set excludes zero (False when it is empty)."""
        if not (math.isfinite(self.ci_lb) and math.isfinite(self.ci_ub)):
            return False
        return bool(not (self.ci_lb <= 0 <= self.ci_ub))

    @property
    def target_label(self) -> str:
        """What ``theta = l' tau_post`` is, in words."""
        l_vec = np.asarray(self.l_vec, float)
        nonzero = np.flatnonzero(l_vec)
        if nonzero.size == 1 and l_vec[nonzero[0]] == 1:
            return f"effect at event time {self.post_periods_used[nonzero[0]]:g}"
        if (l_vec >= 0).all() and abs(l_vec.sum() - 1) < 1e-12:
            return "weighted average of post-period effects"
        return "linear combination l' tau_post of post-period effects"

    def summary(self) -> str:
        """The identified set, the robust confidence set and the settings as text.

        Returns
        -------
        str
        """
        bound = "M" if self.method == "smoothness" else "Mbar"
        identified = (f"[{self.lb:.6g}, {self.ub:.6g}]" if math.isfinite(self.lb)
                      else "empty (the leads alone break the restriction)")
        if math.isfinite(self.ci_lb):
            robust = (f"[{self.ci_lb:.6g}, {self.ci_ub:.6g}]"
                      + ("  (excludes 0)" if self.is_significant else "  (includes 0)"))
        else:
            robust = "empty on the theta grid (widen grid_lb / grid_ub)"
        lines = [
            "HonestDiD sensitivity analysis (Rambachan & Roth 2023)", "=" * 64,
            f"{'Restriction:':<30}{_LABEL[self.method]}, {bound} = {self.M:.6g}",
            f"{'Target:':<30}{self.target_label}",
            f"{'Confidence set:':<30}{self.ci_method}, level {1 - self.alpha:g}",
            f"{'Pre / post periods:':<30}{len(self.pre_periods_used)} / "
            f"{len(self.post_periods_used)} (reference {self.reference_period:g})",
            "-" * 64,
            f"{'Original estimate (se):':<30}{self.original_estimate:.6g} ({self.original_se:.6g})",
            f"{'Original confidence interval:':<30}[{self.original_ci[0]:.6g}, "
            f"{self.original_ci[1]:.6g}]",
            f"{'Identified set:':<30}{identified}",
            f"{'Robust confidence set:':<30}{robust}",
        ]
        if self.df is not None:
            kind = "Design degrees of freedom:" if self.df_survey is not None else \
                "Degrees of freedom:"
            lines.append(f"{kind:<30}{self.df:g} (original interval; robust sets use "
                         "normal critical values, as R HonestDiD)")
        early = [e for e in self.post_periods_used if e < 0]
        if early:
            lines.append(f"{'Anticipation periods:':<30}{early} (after the reference period, "
                         "before treatment: bounded like post-periods)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"HonestDiDResults(method={self.method!r}, M={self.M:g}, ci=[{self.ci_lb:.6g}, "
                f"{self.ci_ub:.6g}], identified_set=[{self.lb:.6g}, {self.ub:.6g}])")

    def to_dict(self) -> dict:
        """Bounds, robust set and settings as a dict.

        Returns
        -------
        dict
        """
        return {"lb": self.lb, "ub": self.ub, "ci_lb": self.ci_lb, "ci_ub": self.ci_ub,
                "M": self.M, "method": self.method, "ci_method": self.ci_method,
                "alpha": self.alpha, "original_estimate": self.original_estimate,
                "original_se": self.original_se, "original_ci": tuple(self.original_ci),
                "l_vec": [float(v) for v in self.l_vec],
                "pre_periods_used": list(self.pre_periods_used),
                "post_periods_used": list(self.post_periods_used),
                "reference_period": self.reference_period,
                "grid_end_reached": self.grid_end_reached, "df": self.df,
                "df_survey": self.df_survey}

    def plot(self, ax=None, **kwargs):
        """:func:`diff_diff.plot_honest_event_study` of these results.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when omitted.
        **kwargs
            Passed to ``plot_honest_event_study``.

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import plot_honest_event_study

        return plot_honest_event_study(self, ax=ax, **kwargs)


class SensitivityResults:
    """Robust confidence sets over a grid of ``M`` (:meth:`HonestDiD.sensitivity_analysis`).

    ``table``: one row per ``M`` (``M``, ``lb``, ``ub``, ``ci_lb``, ``ci_ub``);
    ``original_estimate``, ``original_ci``; ``breakdown_M``: the largest ``M`` on the grid
    whose set excludes zero (``None`` if none does).
    """

    def __init__(self, fits, honest):
        self.fits = fits
        self.method, self.ci_method, self.alpha = honest.method, honest.ci_method, honest.alpha
        self.table = pd.DataFrame([{"M": f.M, "lb": f.lb, "ub": f.ub, "ci_lb": f.ci_lb,
                                    "ci_ub": f.ci_ub} for f in fits])
        first = fits[0]
        self.original_estimate, self.original_se = first.original_estimate, first.original_se
        self.original_ci = first.original_ci
        excluding = [f.M for f in fits if f.is_significant]
        self.breakdown_M = max(excluding) if excluding else None

    def to_dataframe(self) -> pd.DataFrame:
        """The robust sets by ``M`` (a copy of ``table``).

        Returns
        -------
        DataFrame
            One row per ``M``.
        """
        return self.table.copy()

    def summary(self) -> str:
        """The robust sets by ``M`` and the breakdown value as text.

        Returns
        -------
        str
        """
        bound = "M" if self.method == "smoothness" else "Mbar"
        body = self.table.to_string(index=False, float_format=lambda v: f"{v:.6g}")
        return "\n".join([f"HonestDiD sensitivity ({_LABEL[self.method]}, {self.ci_method})",
                          "=" * 64, body, "-" * 64,
                          f"Original: {self.original_estimate:.6g} [{self.original_ci[0]:.6g}, "
                          f"{self.original_ci[1]:.6g}]; largest {bound} on the grid excluding "
                          f"0: {self.breakdown_M}"])

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"SensitivityResults(method={self.method!r}, n_M={len(self.fits)})"

    def plot(self, ax=None, **kwargs):
        """:func:`diff_diff.plot_sensitivity` of these results.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when omitted.
        **kwargs
            Passed to ``plot_sensitivity``.

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import plot_sensitivity

        return plot_sensitivity(self, ax=ax, **kwargs)
