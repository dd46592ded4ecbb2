"""Power of a pre-trends test against a hypothesised violation of parallel trends (Roth 2022).

An event study's pre-treatment coefficients ``b`` are approximately
``N(delta, Sigma)``; ``delta`` is the violation of parallel trends in those
periods. A pre-test passes when

* ``"nis"`` (no individually significant coefficient, what R ``pretrends``
  and most applied work use): ``|b_j| <= z_{1-alpha/2} sigma_j`` for every
  pre-period ``j``;
* ``"wald"``: ``b' Sigma^{-1} b <= chi2_{1-alpha}(k)``.

Its power against ``delta = M * shape`` is one minus the probability of
passing. For ``"nis"`` that is a normal probability of a box, computed here by
a deterministic rule: Genz's (1992) sequential conditioning turns it into an
integral of a smooth function over the unit cube, integrated by tensor
Gauss-Legendre (no random draws, so the same input always gives the same
number). For ``"wald"`` it is a noncentral chi-square tail with noncentrality
``delta' Sigma^{-1} delta``. The minimum detectable violation (MDV) is the
``M`` at which the power reaches ``target_power``.

Shapes, over the pre-periods ``e`` (event times before the reference period
``r``, the period every coefficient is measured against): ``"linear"``:
``e - r`` (a trend through the reference period, zero there; R ``pretrends``'
``slope * (t - referencePeriod)``); ``"constant"``: 1 in every pre-period;
``"last_period"``: 1 in the pre-period nearest to treatment, 0 elsewhere;
``"custom"``: ``violation_weights``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._lazy import stats
from .._warnings import warn_user

SHAPES = ("linear", "constant", "last_period", "custom")
FORMS = ("nis", "wald")
_POINT_BUDGET = 2 ** 20  # quadrature points of the box integral
_Z_CLIP = 9.0
MAX_NIS_LEADS = 7  # 10^6 quadrature points at 7 leads; beyond, the rule gets too coarse


def box_probability(mean, cov, lower, upper, with_error=True) -> tuple:
    """``P(lower <= X <= upper)`` for ``X ~ N(mean, cov)`` with finite bounds.

    With ``X = mean + L z`` (``L`` the Cholesky factor) the box is a sequence of
    intervals for ``z_1, z_2, ...`` given the earlier ones (Genz 1992); the
    nested integrals of the standard normal density over those intervals
    (clipped to +-9, beyond which the mass is below 1e-18) are taken by
    Gauss-Legendre, the last one exactly. Returns ``(probability, error
    estimate)``, the estimate being the difference from a rule with about two
    thirds of the nodes per dimension (NaN unless ``with_error``).
    """
    mean, cov = np.asarray(mean, float), np.asarray(cov, float)
    lo, hi = np.asarray(lower, float) - mean, np.asarray(upper, float) - mean
    k = mean.size
    chol = np.linalg.cholesky(cov)
    nodes = int(min(64, max(6, np.floor(_POINT_BUDGET ** (1.0 / max(k - 1, 1))))))
    fine = _nested_gauss_legendre(chol, lo, hi, nodes)
    if not with_error:
        return fine, float("nan")
    coarse = _nested_gauss_legendre(chol, lo, hi, max(4, (2 * nodes) // 3))
    return fine, abs(fine - coarse)


def _nested_gauss_legendre(chol, lo, hi, nodes, with_mean=False):
    """The box probability; with ``with_mean`` also ``E[z | box]`` (the last coordinate's
    truncated-normal mean in closed form)."""
    k = chol.shape[0]
    x, w = np.polynomial.legendre.leggauss(nodes)
    z = np.zeros((1, 0))  # the points reached so far, one row each
    weight = np.ones(1)
    for i in range(k):
        shift = z @ chol[i, :i]
        a = np.clip((lo[i] - shift) / chol[i, i], -_Z_CLIP, _Z_CLIP)
        b = np.clip((hi[i] - shift) / chol[i, i], -_Z_CLIP, _Z_CLIP)
        b = np.maximum(a, b)
        if i == k - 1:
            mass = stats.norm.cdf(b) - stats.norm.cdf(a)
            prob = float(weight @ mass)
            if not with_mean:
                return prob
            last = weight @ (stats.norm.pdf(a) - stats.norm.pdf(b))
            return prob, np.append((weight * mass) @ z, last) / prob
        half, mid = (b - a) / 2.0, (a + b) / 2.0
        zi = (mid[:, None] + half[:, None] * x[None, :]).ravel()
        weight = (weight[:, None] * half[:, None] * w[None, :]).ravel() * stats.norm.pdf(zi)
        z = np.column_stack([np.repeat(z, nodes, axis=0), zi])
        keep = weight > 0
        z, weight = z[keep], weight[keep]


def box_mean(mean, cov, lower, upper) -> np.ndarray:
    """``E[X | lower <= X <= upper]`` for ``X ~ N(mean, cov)``, by the rule of
    :func:`box_probability`."""
    mean, cov = np.asarray(mean, float), np.asarray(cov, float)
    chol = np.linalg.cholesky(cov)
    k = mean.size
    nodes = int(min(64, max(6, np.floor(_POINT_BUDGET ** (1.0 / max(k - 1, 1))))))
    _, ez = _nested_gauss_legendre(chol, np.asarray(lower, float) - mean,
                                   np.asarray(upper, float) - mean, nodes, with_mean=True)
    return mean + chol @ ez


def violation_shape(pre_periods, reference, violation_type, violation_weights=None):
    """The violation ``delta / M`` in each pre-period (see the module docstring)."""
    pre = np.asarray(pre_periods, float)
    if violation_type == "linear":
        return pre - reference
    if violation_type == "constant":
        return np.ones(pre.size)
    if violation_type == "last_period":
        return (pre == pre.max()).astype(float)
    if violation_type == "custom":
        if violation_weights is None:
            raise ValueError("violation_type='custom' needs violation_weights, one per "
                             "pre-period")
        shape = np.asarray(violation_weights, float).ravel()
        if shape.size != pre.size or not np.isfinite(shape).all() or not shape.any():
            raise ValueError(f"violation_weights must be {pre.size} finite numbers, not all "
                             f"zero (one per pre-period {pre.astype(int).tolist()})")
        return shape
    raise ValueError(f"violation_type must be one of {SHAPES}, got {violation_type!r}")


class PreTrendsPower:
    """Power of the pre-test against a violation of parallel trends (Roth 2022).

    Parameters
    ----------
    alpha : float
        Level of the pre-test.
    power : float
        Target power for the minimum detectable violation.
    violation_type : {"linear", "constant", "last_period", "custom"}
        Shape of the violation over the pre-periods (module docstring).
    violation_weights : sequence of float, optional
        The shape for ``"custom"``, one number per pre-period (earliest first).
    pretest_form : {"nis", "wald"}
        No individually significant pre-period coefficient (R ``pretrends``),
        or the joint Wald test.

    Examples
    --------
    >>> import diff_diff as dd
    >>> cs = dd.CallawaySantAnna(base_period="universal").fit(
    ...     dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
    ...     first_treat="first.treat")
    >>> res = dd.PreTrendsPower().fit(cs)
    >>> res.n_pre_periods, round(res.mdv, 4)
    (3, 0.021)
    """

    def __init__(self, alpha: float = 0.05, power: float = 0.8, violation_type: str = "linear",
                 violation_weights=None, pretest_form: str = "nis"):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if not alpha < power < 1:
            raise ValueError(f"power (target_power) must be in (alpha, 1), got {power!r}")
        if violation_type not in SHAPES:
            raise ValueError(f"violation_type must be one of {SHAPES}, got {violation_type!r}")
        if pretest_form not in FORMS:
            raise ValueError(f"pretest_form must be one of {FORMS}, got {pretest_form!r}")
        self.alpha, self.power = float(alpha), float(power)
        self.violation_type, self.violation_weights = violation_type, violation_weights
        self.pretest_form = pretest_form

    def fit(self, results, M=None, pre_periods=None) -> "PreTrendsPowerResults":
        """Power at violation magnitude ``M`` (default: the MDV) and the MDV.

        ``results``: any event-study result with ``event_study_effects`` and
        ``event_study_vcov`` (CallawaySantAnna, SunAbraham, ...). The
        pre-periods are its negative event times with positive variance (the
        reference period, variance 0, is left out); ``pre_periods`` picks some.

        Parameters
        ----------
        results
            An event-study result with ``event_study_effects`` and ``event_study_vcov``.
        M : float, optional
            Violation magnitude; default the minimum detectable violation.
        pre_periods : sequence, optional
            The pre-period event times to use (default: every lead with positive variance).

        Returns
        -------
        PreTrendsPowerResults
            Power at ``M``, the MDV and the pre-test's settings.

        Raises
        ------
        ValueError
            If the results have no leads with positive variance.
        """
        pre, est, vcov, reference, after, cross = _pre_period_inputs(results, pre_periods)
        if self.pretest_form == "nis" and pre.size > MAX_NIS_LEADS:
            raise ValueError(f"PreTrendsPower: the 'nis' power is computed for at most "
                             f"{MAX_NIS_LEADS} leads (deterministic quadrature), got {pre.size}; "
                             "choose pre_periods= or pretest_form='wald'")
        shape = violation_shape(pre, reference, self.violation_type, self.violation_weights)
        problem = _Problem(est, vcov, shape, self.alpha, self.pretest_form)
        size = problem.power(0.0, False)[0]
        if size >= self.power:
            raise ValueError(f"PreTrendsPower: without any violation the pre-test already "
                             f"rejects with probability {size:.3g}; the target power "
                             f"({self.power:g}) must exceed it")
        mdv = problem.magnitude_for(self.power)
        magnitude = mdv if M is None else float(M)
        if not np.isfinite(magnitude):
            raise ValueError(f"M must be a finite number, got {M!r}")
        power, box_error = problem.power(magnitude)
        if box_error > 1e-6:
            warn_user(f"PreTrendsPower: with {pre.size} pre-periods the box probability's "
                      f"quadrature error may reach {box_error:.1g}; pass pre_periods= to use "
                      "fewer, or pretest_form='wald'")
        delta = magnitude * shape
        solved = np.linalg.solve(vcov, np.c_[est, est - delta])
        log_lr = 0.5 * (est @ solved[:, 0] - (est - delta) @ solved[:, 1])
        return PreTrendsPowerResults(
            power=power, mdv=mdv, violation_magnitude=magnitude,
            bayes_factor=(1 - power) / (1 - size), likelihood_ratio=float(np.exp(log_lr)),
            violation_type=self.violation_type, violation_weights=shape, alpha=self.alpha,
            target_power=self.power, pretest_form=self.pretest_form, pre_periods=pre,
            reference_period=reference, pre_period_effects=est, pre_period_ses=np.sqrt(np.diag(vcov)),
            vcov=vcov, critical_value=problem.critical, noncentrality=problem.noncentrality(magnitude),
            nis_box_error=box_error, problem=problem, later_periods=after,
            later_cross_vcov=cross)

    def power_at(self, results, M, pre_periods=None) -> float:
        """The pre-test's power against ``M * shape``.

        Parameters
        ----------
        results
            An event-study result with ``event_study_effects`` and ``event_study_vcov``.
        M : float
            Violation magnitude.
        pre_periods : sequence, optional
            The pre-period event times to use (default: every lead with positive variance).

        Returns
        -------
        float
        """
        return self.fit(results, M=M, pre_periods=pre_periods).power

    def power_curve(self, results, M_grid=None, n_points: int = 50, pre_periods=None):
        """Power over violation magnitudes (default: 0 to 2.5 x the MDV).

        Parameters
        ----------
        results
            An event-study result with ``event_study_effects`` and ``event_study_vcov``.
        M_grid : sequence of float, optional
            Magnitudes to evaluate.
        n_points : int, default 50
            Grid size when ``M_grid`` is omitted.
        pre_periods : sequence, optional
            The pre-period event times to use (default: every lead with positive variance).

        Returns
        -------
        DataFrame
            Columns ``M`` and ``power``.
        """
        res = self.fit(results, pre_periods=pre_periods)
        return res.power_curve(M_grid, n_points)


def compute_pretrends_power(results, M=None, alpha: float = 0.05, target_power: float = 0.8,
                            violation_type: str = "linear", pre_periods=None,
                            violation_weights=None, pretest_form: str = "nis"):
    """Function form of :class:`PreTrendsPower` (diff-diff 3.x).

    Parameters
    ----------
    results
        An event-study result with ``event_study_effects`` and ``event_study_vcov``.
    M : float, optional
        Violation magnitude; default the MDV.
    alpha : float, default 0.05
        Level of the pre-test.
    target_power : float, default 0.8
        Power that defines the minimum detectable violation.
    violation_type : {"linear", "constant", "last_period", "custom"}, default "linear"
        Shape of the violation over the pre-periods.
    pre_periods : sequence, optional
        The pre-period event times to use (default: every lead with positive variance).
    violation_weights : sequence of float, optional
        The shape for ``"custom"``.
    pretest_form : {"nis", "wald"}, default "nis"
        No individually significant lead, or the joint Wald test.

    Returns
    -------
    PreTrendsPowerResults
    """
    return PreTrendsPower(alpha, target_power, violation_type, violation_weights,
                          pretest_form).fit(results, M=M, pre_periods=pre_periods)


def compute_mdv(results, alpha: float = 0.05, target_power: float = 0.8,
                violation_type: str = "linear", pre_periods=None, violation_weights=None,
                pretest_form: str = "nis") -> float:
    """The minimum detectable violation: the ``M`` the pre-test detects with
    probability ``target_power``.

    Parameters
    ----------
    results
        An event-study result with ``event_study_effects`` and ``event_study_vcov``.
    alpha : float, default 0.05
        Level of the pre-test.
    target_power : float, default 0.8
        Power that defines the minimum detectable violation.
    violation_type : {"linear", "constant", "last_period", "custom"}, default "linear"
        Shape of the violation over the pre-periods.
    pre_periods : sequence, optional
        The pre-period event times to use (default: every lead with positive variance).
    violation_weights : sequence of float, optional
        The shape for ``"custom"``.
    pretest_form : {"nis", "wald"}, default "nis"
        No individually significant lead, or the joint Wald test.

    Returns
    -------
    float
    """
    return compute_pretrends_power(results, None, alpha, target_power, violation_type,
                                   pre_periods, violation_weights, pretest_form).mdv


class _Problem:
    def __init__(self, est, vcov, shape, alpha, form):
        self.vcov, self.shape, self.alpha, self.form = vcov, shape, alpha, form
        self.sd = np.sqrt(np.diag(vcov))
        k = shape.size
        if form == "nis":
            self.critical = float(stats.norm.ppf(1 - alpha / 2))
        else:
            self.critical = float(stats.chi2.ppf(1 - alpha, k))
        self._quad = float(shape @ np.linalg.solve(vcov, shape))

    def noncentrality(self, magnitude):
        return magnitude ** 2 * self._quad

    def power(self, magnitude, with_error=True) -> tuple:
        if self.form == "wald":
            k = self.shape.size
            return float(stats.ncx2.sf(self.critical, k, self.noncentrality(magnitude))), 0.0
        bound = self.critical * self.sd
        inside, error = box_probability(magnitude * self.shape, self.vcov, -bound, bound,
                                        with_error)
        return 1.0 - inside, error

    def magnitude_for(self, target) -> float:
        from scipy.optimize import brentq

        high = 1.0 / np.sqrt(self._quad)  # one standard error of the shape's direction
        for _ in range(200):
            if not self.power(high, False)[0] < target:  # reached (or NaN: brentq says so)
                break
            high *= 2.0
        return float(brentq(lambda m: self.power(m, False)[0] - target, 0.0, high,
                            xtol=1e-14, rtol=1e-12))


def event_study_inputs(results, name: str, examples: str, varying_reason: str):
    """``(table, events, cov, var, reference)`` of an event-study result: its
    ``event_study_effects``, their covariance from ``event_study_vcov`` and the reference
    (normalised) period; a TypeError for results without them, a ValueError for a
    ``base_period='varying'`` fit (CallawaySantAnna, the staggered triple difference;
    ``varying_reason`` says why) or a
    covariance missing event times. ``name`` and ``examples`` word the messages."""
    table = getattr(results, "event_study_effects", None)
    vcov = getattr(results, "event_study_vcov", None)
    if table is None or vcov is None:
        raise TypeError(f"{name} needs event-study results with event_study_effects and "
                        f"event_study_vcov ({examples}), got {type(results).__name__}")
    if getattr(results, "base_period", None) == "varying":
        kind = type(results).__name__.removesuffix("Results")
        raise ValueError(f"{name}: these {kind} results use base_period='varying' "
                         f"(each lead against the period before it), so {varying_reason}")
    table = pd.DataFrame(table)
    events = table["event_time"].to_numpy()
    missing = [e for e in events.tolist() if e not in vcov.index or e not in vcov.columns]
    if missing:
        raise ValueError(f"event_study_vcov has no rows/columns for event times {missing}")
    cov = np.asarray(vcov.loc[events, events], float)
    var = np.diag(cov)
    return table, events, cov, var, _reference(results, events, var)


def _pre_period_inputs(results, pre_periods):
    table, events, cov, var, reference = event_study_inputs(
        results, "PreTrendsPower", "CallawaySantAnna, SunAbraham, MultiPeriodDiD",
        "the leads have no common reference period; fit with base_period='universal'")
    # leads before the reference period; anticipation periods (between it and 0) are not tested
    candidates = (events < reference) & (var > 0)
    if pre_periods is not None:
        wanted = np.atleast_1d(np.asarray(pre_periods))
        unknown = sorted(set(wanted.tolist()) - set(events[candidates].tolist()))
        if unknown:
            raise ValueError(f"pre_periods {unknown} are not leads before the reference period "
                             f"{reference:g} with a positive variance; available: "
                             f"{events[candidates].tolist()}")
        candidates &= np.isin(events, wanted)
    if not candidates.any():
        raise ValueError("the event study has no pre-treatment coefficient with a positive "
                         "variance to pre-test (ImputationDiD and TwoStageDiD report no leads: "
                         "their pretrend_test() tests the untreated observations instead)")
    idx = np.flatnonzero(candidates)[np.argsort(events[candidates])]
    sub = cov[np.ix_(idx, idx)]
    if not np.isfinite(sub).all() or np.linalg.eigvalsh(sub).min() <= 1e-12 * np.diag(sub).max():
        raise ValueError(f"the covariance of the leads {events[idx].tolist()} is singular or not "
                         "positive definite (collinear leads?); choose pre_periods= to drop some")
    after = np.flatnonzero((events > reference) & (var > 0))
    after = after[np.argsort(events[after])]
    return (events[idx], table["estimate"].to_numpy()[idx], sub, reference, events[after],
            cov[np.ix_(idx, after)])


def _reference(results, events, var):
    """The period every coefficient is measured against: the negative event time
    reported with variance 0 (a universal base period, MultiPeriodDiD), else the results'
    ``reference_period`` (SunAbraham), else the period after the last lead."""
    zero = events[(var == 0) & (events < 0)]
    if zero.size:
        return float(zero.max())
    ref = getattr(results, "reference_period", None)
    if isinstance(ref, (int, float, np.integer, np.floating)) and ref < 0:
        return float(ref)
    leads = events[(events < 0) & (var > 0)]
    return float(leads.max() + 1) if leads.size else 0.0


class PreTrendsPowerResults:
    """Power of a pre-test against ``violation_magnitude * violation_weights``.

    Attributes
    ----------
    power : float
        Probability that the pre-test rejects (at level ``alpha``).
    mdv : float
        Minimum detectable violation: the magnitude with power ``target_power``.
    violation_magnitude, violation_type, violation_weights
        The hypothesised violation is ``violation_magnitude * violation_weights``
        in ``pre_periods`` (``violation_weights`` is the shape used, also for
        the built-in types).
    pre_periods, reference_period, pre_period_effects, pre_period_ses, vcov
        The event study's pre-treatment coefficients used.
    critical_value : float
        ``z_{1-alpha/2}`` (``"nis"``) or ``chi2_{1-alpha}(k)`` (``"wald"``).
    noncentrality : float
        ``delta' Sigma^{-1} delta`` at ``violation_magnitude``.
    nis_box_error : float
        Quadrature error estimate of the box probability (0 for ``"wald"``).
    bayes_factor : float
        ``P(pass | violation) / P(pass | parallel trends)`` (R ``pretrends``' Bayes
        factor: how much passing the pre-test should shift beliefs against the violation).
    likelihood_ratio : float
        Density of the observed leads under the violation relative to under parallel
        trends (R ``pretrends``' likelihood ratio).
    later_periods, later_cross_vcov
        Event times after the reference period and their covariance with the
        leads (rows: leads), for :meth:`means_after_pretesting`.
    """

    def __init__(self, problem, **fields):
        self._problem = problem
        for name, value in fields.items():
            setattr(self, name, value)
        self.n_pre_periods = int(len(self.pre_periods))

    def means_after_pretesting(self, later_violation=None) -> pd.DataFrame:
        """Expected coefficients conditional on passing the "nis" pre-test (R
        ``pretrends``' ``meanAfterPretesting``), at ``violation_magnitude``.

        Rows: the leads, then the later event times (after the reference period).
        Columns: ``violation`` (the hypothesised ``delta``), ``shift`` (``E[b |
        pass] - delta``: the distortion that conditioning on a passed pre-test
        adds; for later periods ``Sigma_21' Sigma_pre^-1`` times the leads'),
        ``mean_after_pretesting`` (``delta + shift``). The later periods'
        ``delta``: ``later_violation`` (one number per later period), or for a
        linear violation the same line ``M (e - r)``; otherwise NaN.

        Parameters
        ----------
        later_violation : sequence of float, optional
            The violation in each later event time.

        Returns
        -------
        DataFrame
        """
        if self.pretest_form != "nis":
            raise ValueError("means_after_pretesting is defined for pretest_form='nis' (the "
                             "box of R pretrends)")
        delta = self.violation_magnitude * self.violation_weights
        bound = self.critical_value * self.pre_period_ses
        pre_mean = box_mean(delta, self.vcov, -bound, bound)
        shift_later = (pre_mean - delta) @ np.linalg.solve(self.vcov, self.later_cross_vcov)
        later = np.asarray(self.later_periods, float)
        if later_violation is not None:
            later_delta = np.asarray(later_violation, float).ravel()
            if later_delta.size != later.size:
                raise ValueError(f"later_violation needs one number per later event time "
                                 f"{later.astype(int).tolist()}, got {later_delta.size}")
        elif self.violation_type == "linear":
            later_delta = self.violation_magnitude * (later - self.reference_period)
        else:
            later_delta = np.full(later.size, np.nan)
        violation = np.concatenate([delta, later_delta])
        shift = np.concatenate([pre_mean - delta, shift_later])
        return pd.DataFrame({"event_time": np.concatenate([self.pre_periods, self.later_periods]),
                             "violation": violation, "shift": shift,
                             "mean_after_pretesting": violation + shift})

    def power_curve(self, M_grid=None, n_points: int = 50) -> pd.DataFrame:
        """Power by violation magnitude: columns ``M`` and ``power``.

        Parameters
        ----------
        M_grid : sequence of float, optional
            Magnitudes to evaluate; default 0 to 2.5 times the MDV.
        n_points : int, default 50
            Grid size when ``M_grid`` is omitted.

        Returns
        -------
        DataFrame
        """
        if M_grid is None:
            M_grid = np.linspace(0.0, 2.5 * self.mdv, int(n_points))
        grid = np.asarray(M_grid, float).ravel()
        return pd.DataFrame({"M": grid,
                             "power": [self._problem.power(m, False)[0] for m in grid]})

    def plot(self, ax=None, **kwargs):
        """:func:`diff_diff.plot_pretrends_power` of these results.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when omitted.
        **kwargs
            Passed to ``plot_pretrends_power``.

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import plot_pretrends_power

        return plot_pretrends_power(self, ax=ax, **kwargs)

    def summary(self) -> str:
        """The pre-test, its power at the violation and the MDV as text.

        Returns
        -------
        str
        """
        test = ("no individually significant coefficient" if self.pretest_form == "nis"
                else "joint Wald test")
        shape = ", ".join(f"{e:g}: {s:.4g}" for e, s in zip(self.pre_periods,
                                                               self.violation_weights))
        return "\n".join([
            "Pre-trends power (Roth 2022)", "=" * 60,
            f"{'Pre-test:':<34}{test}, alpha = {self.alpha:g}",
            f"{'Pre-periods (reference period):':<34}{self.n_pre_periods} ({self.reference_period:g})",
            f"{'Violation shape (' + self.violation_type + '):':<34}{shape}",
            f"{'Violation magnitude M:':<34}{self.violation_magnitude:.6g}",
            f"{'Power against M x shape:':<34}{self.power:.4f}",
            f"{'Bayes factor / likelihood ratio:':<34}{self.bayes_factor:.4g} / "
            f"{self.likelihood_ratio:.4g}",
            f"{'MDV (power ' + format(self.target_power, 'g') + '):':<34}{self.mdv:.6g}",
        ])

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"PreTrendsPowerResults(power={self.power:.4f}, mdv={self.mdv:.6g}, "
                f"violation_type={self.violation_type!r}, pretest_form={self.pretest_form!r})")

    def to_dict(self) -> dict:
        """The headline numbers and settings as a dict.

        Returns
        -------
        dict
        """
        return {"power": self.power, "mdv": self.mdv,
                "violation_magnitude": self.violation_magnitude,
                "violation_type": self.violation_type, "alpha": self.alpha,
                "target_power": self.target_power, "pretest_form": self.pretest_form,
                "n_pre_periods": self.n_pre_periods, "critical_value": self.critical_value,
                "bayes_factor": self.bayes_factor, "likelihood_ratio": self.likelihood_ratio,
                "noncentrality": self.noncentrality}
