"""Difference-in-differences with a continuous dose (Callaway, Goodman-Bacon & Sant'Anna
2024; R ``contdid``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..results.continuous import ContinuousDiDResults
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_int, is_prob
from .panel import _first_treat, balanced_wide, check_constant_within_unit, numeric
from .registry import register

CONTROL_GROUPS = ("never_treated", "not_yet_treated", "lowest_dose")
GRID_POINTS = 50
CCK_DEGREE = 3  # the cubic sieve of the data-driven (CCK) dose-response estimator
# 3.13 keywords of the covariate path: accepted, validated, and without effect here
_COVARIATE_DEFAULTS = {"pscore_trim": 0.01, "epv_threshold": 10.0, "pscore_fallback": "error"}


def _positive_number(value) -> bool:
    import numbers

    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and np.isfinite(value) and value > 0)


@register(aliases=("CDiD",), data="panel", inference="influence", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat",
                               dose="dose"),
          example_settings=lambda: dict(degree=1))
class ContinuousDiD(Estimator):
    """Dose-response DiD (Callaway, Goodman-Bacon & Sant'Anna 2024; R ``contdid``).

    For each treated cohort ``g`` and period ``t`` (pre-treatment cells included), the
    outcome change from the base period of the cohort's units is regressed on a
    B-spline of their dose (degree ``degree``, ``num_knots`` interior knots at quantiles
    of all treated doses, boundary knots at the cohort's own dose range, an intercept)
    or, with ``treatment_type="discrete"``, on a dummy per dose value; the comparison
    units' mean change is subtracted. Then ``ATT(d)`` is the fitted curve minus that
    mean, ``ACRT(d)`` its derivative (discrete doses: the slope from the next lower dose
    value), ``ATT^glob`` the cell's binary DiD and ``ACRT^glob`` the ACRT averaged over
    the cohort's doses. Post-treatment cells (``t >= g``) are combined with cohort-share
    weights split equally over each cohort's post periods (over the cells with a fitted
    curve for ACRT and the curves), and by event time with cohort shares
    (``event_study_effects`` of ``ATT(g, t)``, ``event_study_slopes`` of ``ACRT(g, t)``).
    Cells, base periods and comparison units are those of R ``contdid`` (moderndid).

    Standard errors come from influence functions that include the estimation of the
    curve's coefficients, of the average of the derivative over the doses and of the
    cohort weights, through the engine: clusters, survey designs (weighted regressions
    and means), replicate refits, the PSU bootstrap (with ``cband``, uniform bands over
    the dose grid).

    Parameters
    ----------
    degree : int
        Spline degree (3: cubic). Not used with discrete doses.
    num_knots : int
        Interior knots (0: a global polynomial of degree ``degree``). Not used with
        discrete doses.
    dvals : array-like, optional
        Doses at which ``ATT(d)`` and ``ACRT(d)`` are reported (default: 50 points over
        the treated doses' range; with discrete doses every dose value, and ``dvals``
        must be a subset of the observed treated doses).
    control_group : {"never_treated", "not_yet_treated", "lowest_dose"}
        The comparison: never-treated units; those plus the cohorts not yet treated
        (nor anticipating) in both periods of a cell (R ``contdid``'s
        ``"notyettreated"``); or, without untreated units, the cohort's own units at the
        lowest treated dose ``d_L`` (``reference_dose``). With ``"lowest_dose"`` each
        cell's curve is pinned at ``d_L``: ``ATT(d)`` estimates
        ``ATT(d) - ATT(d_L)`` (under strong parallel trends), ``ATT^glob`` the average of
        that over the treated, and ``ACRT`` is unchanged (with discrete doses ``ACRT``
        at ``d_L`` itself is not identified and reported as NaN).
    anticipation : int
        Periods before ``g`` in which outcomes may already react: the base period of
        post-treatment cells is ``g - anticipation - 1`` (in period positions), and
        not-yet-treated comparisons must be untreated ``anticipation`` periods beyond
        both periods of a cell. Cohorts with no period before that are dropped.
    base_period : {"varying", "universal"}
        ``"varying"``: a pre-treatment cell ``t < g - anticipation`` compares ``t`` with
        ``t - 1``; ``"universal"``: every cell compares with ``g - anticipation - 1``
        (whose own cell is the event study's reference row, 0 with no inference).
    alpha, n_bootstrap, bootstrap_weights, seed, cluster, cband
        The shared inference settings.
    rank_deficient_action : {"warn", "error", "silent"}
        What to do when post-treatment cells cannot fit the curve (too few distinct
        doses for the spline, or a discrete dose value missing from a cohort): they
        leave ``ACRT`` and the curves with a warning, an error, or silently.
    covariates : None
        3.13 keyword; covariates are not supported (neither by R ``contdid``): anything
        but None or an empty list raises ``NotImplementedError``.
    estimation_method : {"dr", "reg"}
        3.13 keyword; without covariates both are the difference in mean changes used
        here (``"ipw"`` is refused as in 3.13).
    pscore_trim, epv_threshold, pscore_fallback
        3.13 keywords for the covariate path; validated (``pscore_trim`` in (0, 0.5),
        ``epv_threshold`` > 0, ``pscore_fallback`` "error" or "unconditional");
        values other than the defaults warn that they have no effect.
    treatment_type : {"continuous", "discrete"}
        ``"discrete"``: a saturated model, one dummy per treated dose value, so
        ``ATT(d)`` is the mean change of the cohort's units at dose ``d`` minus the
        comparison mean, and ``ACRT(d_j) = (ATT(d_j) - ATT(d_{j-1})) / (d_j - d_{j-1})``
        over the sorted dose values with ``d_0 = 0``, ``ATT(0) = 0``
        (``ACRT(d_1) = ATT(d_1) / d_1``); every cohort needs every dose value (else
        its cells leave the curves, see ``rank_deficient_action``).
    dose_est_method : {"parametric", "cck"}
        ``"parametric"``: the B-spline that ``degree`` and ``num_knots`` set.
        ``"cck"``: the data-driven sieve of Chen, Christensen & Kankanala (2024), as
        R ``contdid`` and moderndid ``cont_did(dose_est_method="cck")``: a cubic
        B-spline whose number of segments ``s`` (``s - 1`` interior knots at
        quantiles of the treated doses) is chosen among ``1, 2, 4, ...`` by their
        bootstrap Lepski test - the smallest ``s`` whose curve on the dose grid no
        larger candidate rejects (sup-t statistic of the difference at most 1.1 times
        the ``1 - alpha_hat`` quantile of its Gaussian multiplier bootstrap), capped at
        the second-largest candidate; the candidates end at the largest dimension
        ``J = s + 3`` with ``J sqrt(log J) max(1, (0.1 log n)^4) <= 10 sqrt(n)``, ``n``
        the treated units. The curves, ``ACRT^glob`` and their influence values are
        then those of that spline (the selection is not re-run by the bootstrap or
        refits). With ``cband=True`` the dose-response tables carry CCK's uniform
        band: critical value the bootstrap sup-t quantile over the candidates up to
        ``max(s, third-largest)`` plus ``log(log J) theta*`` (the margin for the
        selection), at least the pointwise normal quantile. Defined as in the
        reference: two periods, one treated cohort, at least four distinct treated
        doses; ``treatment_type="continuous"``. Sampling weights (pweights) enter the
        fits and the bootstrap as weighted least squares and weighted influence
        values; strata, PSUs, FPC, replicate weights and ``cluster`` are refused: the
        selection's multiplier bootstrap and its thresholds are derived for
        independent units (CCK 2024, moderndid), with no design-based version.
        ``degree`` and ``num_knots`` are not used (a warning if set).
    cck_draws : int
        Gaussian multiplier draws of the CCK selection and band (moderndid's
        ``biters``, default 1000), from ``numpy.random.default_rng(seed)`` (draws x
        treated units, units in sorted order - with the same ``seed`` the draws of
        moderndid's ``random_state``).

    Examples
    --------
    >>> import diff_diff as dd
    >>> from diff_diff.datasets import example_panel
    >>> res = dd.ContinuousDiD(degree=1).fit(example_panel(), outcome="y", unit="unit",
    ...                                      time="time", first_treat="first_treat",
    ...                                      dose="dose")
    >>> round(res.att, 3), round(res.acrt, 3)
    (1.054, 2.194)
    """

    _allowed = {**INFERENCE_ALLOWED, "control_group": CONTROL_GROUPS,
                "base_period": ("varying", "universal"),
                "rank_deficient_action": ("warn", "error", "silent"),
                "estimation_method": ("dr", "reg"),
                "pscore_fallback": ("error", "unconditional"),
                "treatment_type": ("continuous", "discrete"),
                "dose_est_method": ("parametric", "cck")}
    _checks = {**INFERENCE_CHECKS,
               "degree": (lambda v: is_int(v, 1), "an integer >= 1"),
               "num_knots": (lambda v: is_int(v, 0), "an integer >= 0"),
               "anticipation": (lambda v: is_int(v, 0), "a non-negative integer"),
               "pscore_trim": (lambda v: is_prob(v) and v < 0.5, "in (0, 0.5)"),
               "epv_threshold": (_positive_number, "a positive number"),
               "cck_draws": (lambda v: is_int(v, 1), "an integer >= 1")}
    _results_class = ContinuousDiDResults

    def __init__(self, degree=3, num_knots=0, dvals=None, control_group="never_treated",
                 anticipation=0, base_period="varying", alpha=0.05, n_bootstrap=0,
                 bootstrap_weights="rademacher", seed=None, rank_deficient_action="warn",
                 covariates=None, estimation_method="dr", pscore_trim=0.01,
                 epv_threshold=10.0, pscore_fallback="error", treatment_type="continuous",
                 cluster=None, cband=True, dose_est_method="parametric", cck_draws=1000):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            dose: str, aggregate=None, survey_design=None, covariates=None, *,
            min_e: float = -np.inf, max_e: float = np.inf,
            balance_e: float | None = None) -> ContinuousDiDResults:
        """Estimate the dose-response curves, their averages and the event studies.

        Parameters
        ----------
        data : DataFrame
            Balanced panel; not modified.
        outcome, unit, time, first_treat, dose : str
            Columns; ``first_treat`` 0 (or inf) for never treated, else one of the
            periods; ``dose`` each treated unit's dose (its value in the first treated
            period is used; controls' values are not used but must be numbers).
        aggregate : {None, "dose", "event_study", "eventstudy"}
            Accepted for 3.x calls; everything is always computed (the event studies are
            ``event_study_effects`` and ``event_study_slopes``).
        survey_design : SurveyDesign, optional
        covariates : None
            3.13 keyword; anything but None or an empty list raises
            ``NotImplementedError`` (see the constructor's ``covariates``).
        min_e, max_e : float
            The event studies (of ``ATT(g, t)`` and ``ACRT(g, t)``) keep the event times
            in ``[min_e, max_e]`` (time column units), as moderndid/R ``contdid``'s
            event-study ``min_e``/``max_e``.
        balance_e : float, optional
            Balance the event studies: only cohorts observed at least ``balance_e``
            (time units) after treatment enter, and only event times from
            ``balance_e - (last period - first period)`` to ``balance_e`` are kept
            (R ``did``/``contdid``'s ``balance_e``; then ``min_e``/``max_e``).
            ``event_study_overall`` averages the kept event times ``>= 0``. The dose
            aggregation (``ATT^glob``, ``ACRT^glob``, the curves) is not windowed.
        """
        if aggregate not in (None, "dose", "event_study", "eventstudy"):
            raise ValueError("aggregate must be None, 'dose' or 'event_study', got "
                             f"{aggregate!r}")
        for given in (covariates, self.covariates):
            if given is not None and len(given) > 0:
                raise NotImplementedError(
                    "ContinuousDiD does not support covariates (nor does R contdid); pass "
                    "covariates=None")
        self._validate()  # an invalid value is an error before it is a no-op
        changed = [k for k, v in _COVARIATE_DEFAULTS.items() if getattr(self, k) != v]
        if changed:
            warn_user(f"ContinuousDiD: {', '.join(changed)} tune(s) 3.13's covariate path "
                      "and has no effect here (no covariates)")
        window = _event_window(min_e, max_e, balance_e)
        if self.dose_est_method == "cck":
            self._check_cck(survey_design)
        return self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                   first_treat=first_treat, dose=dose),
                         window=window)

    def _check_cck(self, survey_design) -> None:
        """The CCK selection is defined for independent units (weights allowed)."""
        if self.treatment_type == "discrete":
            raise ValueError("ContinuousDiD: dose_est_method='cck' selects a sieve for a "
                             "continuous dose; with treatment_type='discrete' the saturated "
                             "model needs none (use dose_est_method='parametric')")
        design = [] if survey_design is None else [
            name for name in ("strata", "psu", "fpc", "replicate_weights")
            if getattr(survey_design, name, None) is not None]
        if self.cluster is not None:
            design.append("cluster")
        if design:
            raise NotImplementedError(
                f"ContinuousDiD: dose_est_method='cck' with {', '.join(design)}: the CCK "
                "sieve selection and its uniform band rest on a multiplier bootstrap of "
                "independent units (Chen, Christensen & Kankanala 2024; moderndid), with no "
                "design-based version; use sampling weights only, or "
                "dose_est_method='parametric' (every design)")
        if (self.degree, self.num_knots) != (CCK_DEGREE, 0):
            warn_user("ContinuousDiD: degree and num_knots are not used with "
                      "dose_est_method='cck' (a cubic sieve with data-driven knots)")

    # ------------------------------------------------------------------ template steps
    def _sample(self, data, columns, window=None) -> Sample:
        c = columns
        y = numeric(data, c["outcome"], "outcome")
        d = numeric(data, c["dose"], "dose")
        g = _first_treat(data, c["first_treat"])
        codes, units, periods, wide, first = balanced_wide(
            data, c["unit"], c["time"], {"y": y, "d": d}, "ContinuousDiD")
        check_constant_within_unit(g, codes, units, c["first_treat"])
        n = len(units)
        Y = wide["y"]
        G = g[first]
        G = np.where((G == 0) | ~np.isfinite(G) | (G > periods[-1]), 0.0, G)
        off = (G > 0) & ~np.isin(G, periods)
        if off.any():
            raise ValueError(f"ContinuousDiD: {c['first_treat']!r} values "
                             f"{sorted(set(G[off].tolist()))[:5]} are not periods of "
                             f"{c['time']!r}")
        gpos = np.where(G > 0, np.searchsorted(periods, G), 0)  # cohort as a period position
        early = (G > 0) & (gpos <= self.anticipation)
        keep = ~early
        if early.any():
            what = ("treated in the first period" if not self.anticipation else
                    f"treated within {self.anticipation + 1} period(s) of the first (with "
                    f"anticipation={self.anticipation})")
            warn_user(f"ContinuousDiD: dropped {int(early.sum())} unit(s) {what}: no "
                      "pre-treatment period")
        dose_at_start = np.where(G > 0, wide["d"][np.arange(n), gpos], 0.0)
        if ((G > 0) & keep & ~(dose_at_start > 0)).any():
            raise ValueError(f"ContinuousDiD: every treated unit needs a positive dose in its "
                             f"first treated period (column {c['dose']!r})")
        if not ((G > 0) & keep).any():
            raise ValueError("ContinuousDiD: no unit is treated")
        if self.control_group == "never_treated" and not ((G == 0) & keep).any():
            raise ValueError("ContinuousDiD: there are no never-treated units; use "
                             "control_group='not_yet_treated' or 'lowest_dose'")
        problem = ContinuousProblem(Y[keep], gpos[keep], dose_at_start[keep], periods, self,
                                    window)
        return Sample(problem, first[keep], c["unit"], columns)

    def _estimate(self, sample, design):
        problem = sample.arrays
        theta, psi, info = problem.estimate(design.weights)
        estimate = Estimate(theta, psi, reestimate=problem.theta,
                            name="ContinuousDiD")
        return SimpleNamespace(estimate=estimate, problem=problem, info=info)


class ContinuousProblem:
    """One fit's data: outcomes ``Y`` (units x periods), cohorts as period positions
    (0: never treated), each unit's dose, and the estimator's settings."""

    def __init__(self, Y, gpos, dose, periods, settings, window=None):
        self.Y, self.gpos, self.dose, self.periods = Y, gpos, dose, periods
        s = settings
        self.degree, self.num_knots, self.control_group = s.degree, s.num_knots, s.control_group
        self.window = window if window is not None else _event_window(-np.inf, np.inf, None)
        self.cck = s.dose_est_method == "cck"
        self.selection = None  # the CCK sieve choice, made by the first (full-sample) fit
        self._map_cache, self._ok = {}, {}
        if self.cck:
            self.degree, self.num_knots = CCK_DEGREE, 0
            self.cck_draws, self.seed, self.alpha = s.cck_draws, s.seed, s.alpha
        self.anticipation, self.base_period = s.anticipation, s.base_period
        self.discrete = s.treatment_type == "discrete"
        self.rank_action = s.rank_deficient_action
        treated = gpos > 0
        doses = dose[treated]
        self.lowest = self.control_group == "lowest_dose"
        self.reference_dose = float(doses.min()) if self.lowest else None
        if s.dvals is not None:
            dvals = np.asarray(s.dvals, float).ravel()
            if dvals.size == 0 or not np.all(np.isfinite(dvals)):
                raise ValueError("ContinuousDiD: dvals must hold finite doses (at least one), "
                                 f"got {s.dvals!r}")
        if self.discrete:
            self.levels = np.unique(doses)
            if self.lowest and self.levels.size < 2:
                raise ValueError("ContinuousDiD: control_group='lowest_dose' needs at least "
                                 "two treated dose values (column dose has one)")
            if s.dvals is None:
                self.grid_idx = np.arange(self.levels.size)
            else:
                missing = dvals[~np.isin(dvals, self.levels)]
                if missing.size:
                    raise ValueError(
                        "ContinuousDiD: with treatment_type='discrete', dvals must be treated "
                        f"dose values; {missing[:5].tolist()} are not (the values are "
                        f"{self.levels[:10].tolist()}{' ...' if self.levels.size > 10 else ''})")
                self.grid_idx = np.searchsorted(self.levels, dvals)
            self.grid = self.levels[self.grid_idx]
            self.knots = np.zeros(0)
        else:
            self.knots = self._quantile_knots(doses, self.num_knots)
            self.grid = (np.linspace(doses.min(), doses.max(), GRID_POINTS) if s.dvals is None
                         else dvals)
        if self.cck:
            self._check_cck_sample(doses)
        # ACRT at the lowest dose value is not identified with discrete doses compared
        # with the lowest dose (its lower neighbour would be the comparison itself)
        self.acrt_undefined = (self.grid == self.levels[0] if self.discrete and self.lowest
                               else np.zeros(self.grid.size, bool))
        T = Y.shape[1]
        a = self.anticipation
        cells = []
        for g in np.unique(gpos[treated]):
            g = int(g)
            main = g - a - 1
            for t in range(1 if self.base_period == "varying" else 0, T):
                if self.base_period == "universal":
                    base = main
                else:
                    base = t - 1 if t < g - a else main
                cells.append((g, t, base))
        self.cells = cells
        self.event_times = None  # set by the first (full-sample) estimate

    def _check_cck_sample(self, doses):
        cohorts = np.unique(self.gpos[self.gpos > 0])
        if self.Y.shape[1] != 2 or cohorts.size != 1:
            raise ValueError(
                "ContinuousDiD: dose_est_method='cck' needs two periods and one treated "
                f"cohort (as R contdid and moderndid); the data have {self.Y.shape[1]} "
                f"period(s) and {cohorts.size} treated cohort(s): use "
                "dose_est_method='parametric'")
        distinct = np.unique(doses).size
        if distinct < CCK_DEGREE + 1:
            raise ValueError(
                f"ContinuousDiD: dose_est_method='cck' needs at least {CCK_DEGREE + 1} "
                f"distinct treated doses (its smallest sieve is a cubic), got {distinct}; "
                "use dose_est_method='parametric' with a lower degree or "
                "treatment_type='discrete'")

    def _select(self, w):
        """The CCK choice of the number of segments (bootstrap Lepski test over the dose
        grid) and the critical values of its uniform bands; sets the knots."""
        from .._lazy import special  # scipy.special.ndtri = scipy.stats.norm.ppf

        treated = self.gpos > 0
        x, wt = self.dose[treated], w[treated]
        y = self.Y[treated, 1] - self.Y[treated, 0]
        n = int((wt > 0).sum())
        grid = self.grid
        lo, hi = x.min(), x.max()
        # candidates: 1, 2, 4, ... segments up to the largest dimension J = s + 3 with
        # J sqrt(log J) max(1, (0.1 log n)^4) <= 10 sqrt(n) (the regression version)
        top = max(int(np.floor(np.log(n) / np.log(2))), 3)
        segments = 2 ** np.arange(top + 1)
        dims = segments + CCK_DEGREE
        bound = dims * np.sqrt(np.log(dims)) * max(1.0, (0.1 * np.log(n)) ** 4)
        limit = 10 * np.sqrt(n)
        crossing = np.flatnonzero((bound[:-1] <= limit) & (limit < bound[1:]))
        segments = segments[:crossing[0] + 1 if crossing.size else top]
        j_max = segments[-1] + CCK_DEGREE
        alpha_hat = min(0.5, float(np.sqrt(np.log(j_max) / j_max)))
        draws = np.random.default_rng(self.seed).normal(0.0, 1.0, (self.cck_draws, x.size))
        fits = []
        for seg in segments:
            knots = self._quantile_knots(x, seg - 1)
            X = self._basis(x, lo, hi, knots=knots)
            Bg = self._basis(grid, lo, hi, knots=knots)
            Dg = np.column_stack([np.zeros(grid.size),
                                  self._basis(grid, lo, hi, True, knots=knots)])
            xw = X * wt[:, None]
            bread = _inverse(X.T @ xw)
            beta = bread @ (xw.T @ y)
            lin = (xw * (y - X @ beta)[:, None]) @ bread  # unit x coefficient influence
            drawn = draws @ lin  # the bootstrap's coefficient draws (draws x coefficients)
            fits.append(dict(h=Bg @ beta, level=lin @ Bg.T, slope=lin @ Dg.T,
                             draws_level=drawn @ Bg.T, draws_slope=drawn @ Dg.T))
        eps = np.finfo(float).eps
        k = len(segments)
        z = np.full((k, k), np.nan)
        boot = np.zeros(self.cck_draws)
        for i in range(k):
            for j in range(i + 1, k):
                se = np.maximum(np.sqrt(((fits[i]["level"] - fits[j]["level"]) ** 2).sum(0)),
                                eps)
                z[i, j] = np.max(np.abs(fits[i]["h"] - fits[j]["h"]) / se)
                boot = np.maximum(boot, np.max(np.abs(fits[i]["draws_level"]
                                                      - fits[j]["draws_level"]) / se, axis=1))
        theta = float(np.quantile(boot, 1 - alpha_hat, method="hazen")) if k > 1 else 0.0
        passes = [i for i in range(k - 1) if np.all(z[i, i + 1:] <= 1.1 * theta)]
        lepski = segments[passes[0]] if passes else segments[-1]
        chosen = int(min(lepski, segments[-2] if k > 1 else lepski))
        j_tilde = chosen + CCK_DEGREE
        # uniform bands: sup-t over the candidates up to max(chosen, third largest), plus
        # the selection margin log(log J) theta
        in_band = segments <= max(chosen, segments[-3]) if k > 2 else np.ones(k, bool)
        margin = np.log(np.log(j_tilde)) * theta if j_tilde > np.e else 0.0
        crit = {}
        for key in ("level", "slope"):
            sup = np.zeros(self.cck_draws)
            for fit in (f for f, keep in zip(fits, in_band) if keep):
                sd = np.maximum(np.sqrt((fit[key] ** 2).sum(0)), eps)
                sup = np.maximum(sup, np.max(np.abs(fit["draws_" + key]) / sd, axis=1))
            crit[key] = float(np.quantile(sup, 1 - self.alpha, method="hazen")) + margin
        pointwise = float(special.ndtri(1 - self.alpha / 2))
        self.num_knots = chosen - 1
        self.knots = self._quantile_knots(x, chosen - 1)
        self.selection = {
            "segments": chosen, "dimension": j_tilde, "lepski_segments": int(lepski),
            "candidates": [int(v) for v in segments], "theta_star": theta,
            "alpha_hat": alpha_hat, "sup_t": z, "n_draws": self.cck_draws,
            "crit_att": max(crit["level"], pointwise),
            "crit_acrt": max(crit["slope"], pointwise),
            "crit_att_unbounded": crit["level"], "crit_acrt_unbounded": crit["slope"]}

    @staticmethod
    def _quantile_knots(doses, count):
        if not count:
            return np.zeros(0)
        return np.quantile(doses, np.linspace(0, 1, count + 2)[1:-1])

    def _event(self, row):
        """Event time in the time column's units (as CallawaySantAnna labels it)."""
        return float(self.periods[row["t"]] - self.periods[row["g"]])

    def _warn(self, cells, dropped):
        if dropped and self.rank_action != "silent":
            cohorts = sorted({_plain(self.periods[g]) for g, _ in dropped})
            if self.discrete:
                why = ("lack some of the treated dose values (a saturated discrete model needs "
                       f"every value in every cohort): cohort(s) {cohorts}")
            else:
                why = f"have too few distinct doses for the spline (cohort(s) {cohorts})"
            message = (f"ContinuousDiD: {len(dropped)} post-treatment cell(s) {why}; ACRT and "
                       "the dose-response curves average the other cells"
                       + ("" if self.lowest else " (ATT_glob uses all)"))
            if self.rank_action == "error":
                raise ValueError(message + " (rank_deficient_action='error')")
            warn_user(message)
        if self.discrete:
            return
        # material extrapolation only: beyond a cohort's doses by over 10% of the grid's
        # span (sampling alone leaves each cohort's range a little short of the grid's)
        slack = 0.1 * (self.grid.max() - self.grid.min())
        outside = sorted({_plain(self.periods[r["g"]]) for r in cells if r["ok"]
                          and r["t"] >= r["g"] and (self.grid.min() < r["lo"] - slack
                                                    or self.grid.max() > r["hi"] + slack)})
        if outside:
            warn_user("ContinuousDiD: the dose grid reaches well beyond the doses of "
                      f"cohort(s) {outside}; their curves are extrapolated there (a dose grid "
                      "within every cohort's dose range avoids it, see dvals=)")

    # ------------------------------------------------------------------ pieces
    def _basis(self, x, lo, hi, derivative=False, knots=None):
        from .._lazy import interpolate

        p = self.degree
        knots = self.knots if knots is None else knots
        inner = knots[(knots > lo) & (knots < hi)]
        t = np.r_[[lo] * (p + 1), inner, [hi] * (p + 1)]
        m = t.size - p - 1
        if not derivative:
            B = interpolate.BSpline.design_matrix(np.asarray(x, float), t, p,
                                                  extrapolate=True).toarray()
            return np.column_stack([np.ones(len(x)), B[:, 1:]])
        cols = []
        for j in range(1, m):
            coef = np.zeros(m)
            coef[j] = 1.0
            cols.append(interpolate.BSpline(t, coef, p, extrapolate=True).derivative(1)(x))
        return np.column_stack(cols)

    def _maps(self, x, lo, hi):
        """The cell's model at the treated doses ``x``: the design ``X``; per unit the
        slope map ``A`` and the coefficient ``c`` of the comparison level (slope_i =
        A_i beta + c_i ref) and which units have a slope; on the grid the level map
        ``Bg``, the slope maps ``Ag``, ``cg``; ``L`` the level at the reference dose."""
        if self.discrete:
            lv = self.levels
            J = lv.size
            X = (x[:, None] == lv[None, :]).astype(float)
            F = np.zeros((J, J))
            cF = np.zeros(J)
            gaps = np.diff(np.r_[0.0, lv])
            F[np.arange(J), np.arange(J)] = 1.0 / gaps
            F[np.arange(1, J), np.arange(J - 1)] = -1.0 / gaps[1:]
            cF[0] = -1.0 / gaps[0]  # ACRT(d_1) = (ATT(d_1) - 0) / d_1
            level = np.searchsorted(lv, x)
            has_slope = level > 0 if self.lowest else np.ones(x.size, bool)
            L = np.eye(J)[0] if self.lowest else None
            return (X, F[level], cF[level], has_slope, np.eye(J)[self.grid_idx],
                    F[self.grid_idx], cF[self.grid_idx], L)
        X = self._basis(x, lo, hi)
        A = np.column_stack([np.zeros(x.size), self._basis(x, lo, hi, derivative=True)])
        Bg = self._basis(self.grid, lo, hi)
        Ag = np.column_stack([np.zeros(self.grid.size), self._basis(self.grid, lo, hi, True)])
        L = self._basis(np.array([self.reference_dose]), lo, hi)[0] if self.lowest else None
        return (X, A, np.zeros(x.size), np.ones(x.size, bool), Bg, Ag,
                np.zeros(self.grid.size), L)

    def theta(self, weights):
        """The estimates alone (replicate refits)."""
        return self.estimate(weights)[0]

    def _cell(self, g, t, base, w):
        """One (g, t) cell: its ATT (binary, or against the lowest dose), ACRT and curves
        with their influence values (sum scale); None when it has no units to compare."""
        Y, gpos, dose = self.Y, self.gpos, self.dose
        n = Y.shape[0]
        if t == base:  # universal base period: the reference cell, 0 by construction
            zero = np.zeros(n)
            return {"g": g, "t": t, "att": 0.0, "psi_att": zero, "acrt": 0.0,
                    "psi_acrt": zero, "ok": False, "reference": True}
        dy = Y[:, t] - Y[:, base]
        treated = gpos == g
        wt = w * treated
        Wt = wt.sum()
        if Wt <= 0:
            return None
        m_t = wt @ dy / Wt
        psi_mt = wt * (dy - m_t) / Wt
        row = {"g": g, "t": t, "ok": False}
        if not self.lowest:
            if self.control_group == "never_treated":
                control = gpos == 0
            else:
                # untreated (and not anticipating) in both periods, the cohort excluded
                control = (gpos == 0) | ((gpos > max(t, base) + self.anticipation)
                                         & (gpos != g))
            wc = w * control
            if wc.sum() <= 0:
                return None
            m_c = wc @ dy / wc.sum()
            psi_mc = wc * (dy - m_c) / wc.sum()
            row.update(att=m_t - m_c, psi_att=psi_mt - psi_mc)
        x = dose[treated]
        lo, hi = x.min(), x.max()
        row.update(lo=lo, hi=hi)
        if g not in self._map_cache:  # a cohort's doses, hence its maps, are fixed
            self._map_cache[g] = self._maps(x, lo, hi)
        X, A, c, has_slope, Bg, Ag, cg, L = self._map_cache[g]
        wx = wt[treated]
        if g not in self._ok:  # the same weights in every cell of the cohort
            positive = wx > 0  # replicate refits may leave units out
            if self.discrete:
                self._ok[g] = bool(np.all(wx @ X > 0))
            else:
                self._ok[g] = (np.unique(x[positive]).size >= X.shape[1]
                               and np.linalg.matrix_rank(X[positive]) == X.shape[1])
        if not self._ok[g]:
            return row
        xw = X * wx[:, None]
        bread = np.linalg.inv(X.T @ xw)
        beta = bread @ (xw.T @ dy[treated])
        resid = dy[treated] - X @ beta
        rows = np.flatnonzero(treated)
        psi_beta = (X * (wx * resid)[:, None]) @ bread  # the cohort's rows only
        if self.lowest:
            ref = L @ beta
            psi_ref = np.zeros(n)
            psi_ref[rows] = psi_beta @ L
            row.update(att=m_t - ref, psi_att=psi_mt - psi_ref)
        else:
            ref, psi_ref = m_c, psi_mc
        slopes = A @ beta + c * ref
        ws = wx * has_slope
        Ws = ws.sum()
        acrt = ws @ slopes / Ws
        psi_acrt = (ws @ c / Ws) * psi_ref
        psi_acrt[rows] += psi_beta @ (ws @ A / Ws) + ws * (slopes - acrt) / Ws
        # the curves' influence stays factored (rows, coefficients, maps): combined over
        # the cells in coefficient space, never as units x grid matrices per cell
        row.update(ok=True, acrt=acrt, psi_acrt=psi_acrt, att_d=Bg @ beta - ref,
                   acrt_d=Ag @ beta + cg * ref, curve=(rows, psi_beta, Bg, Ag, cg, psi_ref))
        return row

    def estimate(self, weights):
        """``theta`` = [ATT^glob, ACRT^glob, ATT(d) on the grid, ACRT(d) on the grid, the
        event study of ATT(g, t), that of ACRT(g, t), the averages of the two event
        studies over event times >= 0], psi (units x theta, sum scale), info."""
        gpos = self.gpos
        first_call = self.event_times is None
        n = self.Y.shape[0]
        w = np.asarray(weights, float)
        W = w.sum()
        k_grid = self.grid.size
        if self.cck and self.selection is None:
            self._select(w)
        self._ok = {}  # per cohort: can its units fit the curve (under these weights)
        cell_rows = [r for r in (self._cell(g, t, base, w) for g, t, base in self.cells)
                     if r is not None]
        dropped = [(r["g"], r["t"]) for r in cell_rows if not r["ok"] and r["t"] >= r["g"]]
        # cohort shares (and their influence): p_g = W_g / W over every unit
        cohorts = sorted({r["g"] for r in cell_rows})
        p = {g: (w * (gpos == g)).sum() / W for g in cohorts}
        psi_p = {g: w * ((gpos == g) - p[g]) / W for g in cohorts}
        post = [r for r in cell_rows if r["t"] >= r["g"]]

        def shares(rows):
            """Cohort shares among the cohorts of ``rows``, split equally over each
            cohort's cells in ``rows`` (weights summing to one), and their influence."""
            members = sorted({r["g"] for r in rows})
            S = sum(p[g] for g in members)
            psi_S = sum(psi_p[g] for g in members)
            K = {g: sum(1 for r in rows if r["g"] == g) for g in members}
            for r in rows:
                g = r["g"]
                yield r, p[g] / S / K[g], psi_p[g] / S / K[g] - p[g] / S ** 2 / K[g] * psi_S

        def combine(rows, key, value_shape):
            theta, psi = 0.0, np.zeros(n)
            for r, share, d_share in shares(rows):
                theta = theta + share * r[key]
                psi = psi + share * r["psi_" + key] + d_share * r[key]
            return theta, psi

        def combine_curves(rows, psi_att, psi_acrt):
            """ATT(d) and ACRT(d) on the grid: the cells' curves with the shares; their
            influence (written into ``psi_att``, ``psi_acrt``, zeros on entry) from the
            cells' coefficient influence times their grid maps."""
            theta_att, theta_acrt = np.zeros(k_grid), np.zeros(k_grid)
            ref_sum = np.zeros(n)
            d_shares, levels, slopes, refs, ref_maps = [], [], [], [], []
            coefs = {}  # per cohort (its rows and grid maps): sum of share x coefficients
            for r, share, d_share in shares(rows):
                theta_att += share * r["att_d"]
                theta_acrt += share * r["acrt_d"]
                idx, psi_beta, Bg, Ag, cg, psi_ref = r["curve"]
                if r["g"] in coefs:
                    coefs[r["g"]][1] += share * psi_beta
                else:
                    coefs[r["g"]] = [(idx, Bg, Ag), share * psi_beta]
                ref_sum += share * psi_ref
                if np.any(cg):
                    refs.append(share * psi_ref)
                    ref_maps.append(cg)
                d_shares.append(d_share)
                levels.append(r["att_d"])
                slopes.append(r["acrt_d"])
            for (idx, Bg, Ag), coef in coefs.values():
                # transposed views: each grid point's column is contiguous, so the
                # cohort's rows are gathered within it
                psi_att.T[:, idx] += Bg @ coef.T
                psi_acrt.T[:, idx] += Ag @ coef.T
            D = np.column_stack(d_shares)
            _add_product(psi_att, D, np.vstack(levels))
            psi_att -= ref_sum[:, None]
            _add_product(psi_acrt, D, np.vstack(slopes))
            if refs:
                _add_product(psi_acrt, np.column_stack(refs), np.vstack(ref_maps))
            return theta_att, theta_acrt

        # the event studies' layout (cells with a value, within the window)
        events, members_of = {}, {}
        min_e, max_e, balance_e = self.window
        last = self.periods[-1]
        for key in ("att", "acrt"):
            rows = [r for r in cell_rows if key in r]
            if balance_e is not None:  # cohorts observed balance_e after treatment
                rows = [r for r in rows if last - self.periods[r["g"]] >= balance_e]
                if not rows and first_call:
                    longest = max(last - self.periods[g] for g in cohorts)
                    raise ValueError(f"ContinuousDiD: balance_e={_plain(balance_e)}: no "
                                     "cohort is observed that many periods after treatment "
                                     f"(the longest is {_plain(longest)})")
            times = np.array(sorted({self._event(r) for r in rows}), float)
            if balance_e is not None:
                span = last - self.periods[0]
                times = times[(times <= balance_e) & (times >= balance_e - span)]
            events[key] = times[(times >= min_e) & (times <= max_e)].tolist()
            if self.event_times is not None:  # refits keep the full sample's layout
                events[key] = self.event_times[key]
            members_of[key] = [[r for r in rows if self._event(r) == e] for e in events[key]]
        if self.event_times is None:
            self.event_times = events
        # one units x theta matrix (columns contiguous), written in place
        size = 2 + 2 * k_grid + len(events["att"]) + len(events["acrt"]) + 2
        theta = np.full(size, np.nan)
        psi = np.zeros((n, size), order="F")
        post_att = [r for r in post if "att" in r]
        if post_att:
            theta[0], psi[:, 0] = combine(post_att, "att", ())
        fitted_post = [r for r in post if r["ok"]]
        if fitted_post:
            theta[1], psi[:, 1] = combine(fitted_post, "acrt", ())
            theta[2:2 + k_grid], theta[2 + k_grid:2 + 2 * k_grid] = combine_curves(
                fitted_post, psi[:, 2:2 + k_grid], psi[:, 2 + k_grid:2 + 2 * k_grid])
        else:
            theta[2:2 + 2 * k_grid] = np.nan
        # event studies of ATT(g, t) and of ACRT(g, t): cohort-share weights among the
        # cells at each event time; then their averages over the kept event times >= 0
        col = 2 + 2 * k_grid
        for j, key in enumerate(("att", "acrt")):
            start = col
            for members in members_of[key]:
                if members:
                    mass = sum(p[r["g"]] for r in members)
                    d_mass = sum(psi_p[r["g"]] for r in members)
                    theta[col] = sum(p[r["g"]] / mass * r[key] for r in members)
                    for r in members:
                        g = r["g"]
                        psi[:, col] += (p[g] / mass * r["psi_" + key]
                                        + (psi_p[g] / mass - p[g] / mass ** 2 * d_mass)
                                        * r[key])
                col += 1
            after = [start + i for i, e in enumerate(events[key]) if e >= 0]
            if after:
                theta[size - 2 + j] = theta[after].mean()
                psi[:, size - 2 + j] = psi[:, after].mean(axis=1)
        S = sum(p[g] for g in {r["g"] for r in post_att})
        K = {g: sum(1 for r in post_att if r["g"] == g) for g in cohorts}
        if first_call:  # the full-sample fit (refits stay quiet)
            self._warn(cell_rows, dropped)
        # the cells' influence values are in psi now: keep only their numbers
        cell_rows = [{k: v for k, v in r.items() if not k.startswith("psi_") and k != "curve"}
                     for r in cell_rows]
        info = {"cells": cell_rows, "dropped": dropped, "events": events,
                "weights": {(r["g"], r["t"]): p[r["g"]] / S / K[r["g"]] for r in post_att}}
        return theta, psi, info


def _add_product(out, a, b):
    """``out += a @ b`` without a units x grid temporary (BLAS ``dgemm`` into ``out`` when
    it is a Fortran-ordered float64 block, as the columns of the estimate's matrix are)."""
    from .._lazy import linalg

    if out.flags.f_contiguous and out.dtype == np.float64 and out.size:
        result = linalg.blas.dgemm(1.0, a, b, beta=1.0, c=out, overwrite_c=True)
        if np.shares_memory(result, out):
            return
        out[...] = result
        return
    out += a @ b


def _inverse(gram):
    """Inverse of a symmetric Gram matrix; the pseudo-inverse when it is singular (a
    candidate sieve with tied quantile knots)."""
    try:
        factor = np.linalg.cholesky(gram)
        eye = np.eye(gram.shape[0])
        inv_factor = np.linalg.solve(factor, eye)
        return inv_factor.T @ inv_factor
    except np.linalg.LinAlgError:
        return np.linalg.pinv(gram)


def _event_window(min_e, max_e, balance_e):
    """Checked event-study window (min_e, max_e, balance_e)."""
    import numbers

    def real(value):
        return isinstance(value, numbers.Real) and not isinstance(value, bool) \
            and not np.isnan(value)

    if not real(min_e) or not real(max_e) or min_e > max_e:
        raise ValueError(f"ContinuousDiD: min_e and max_e must be numbers with min_e <= max_e, "
                         f"got min_e={min_e!r}, max_e={max_e!r}")
    if balance_e is not None and not (real(balance_e) and np.isfinite(balance_e)
                                      and balance_e >= 0):
        raise ValueError(f"ContinuousDiD: balance_e must be None or a non-negative number, "
                         f"got {balance_e!r}")
    return float(min_e), float(max_e), None if balance_e is None else float(balance_e)


def _plain(value):
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value
