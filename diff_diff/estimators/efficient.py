"""Efficient difference-in-differences (Chen, Sant'Anna & Xie 2025), with or without baseline
covariates."""

from __future__ import annotations

import numbers
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..linalg.gls import gls_weights
from ..results.efficient import EfficientDiDResults, HausmanPretestResult
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_int
from .callaway_santanna import (Cells, CohortShareBasis, _cells, _drop_always_treated,
                                apply_legacy_aggregation, check_legacy_aggregation)
from .panel import build_unit_panel, number_label
from .registry import register

_NUISANCE_DEFAULTS = {"sieve_k_max": None, "sieve_criterion": "bic", "ratio_clip": 20.0,
                      "kernel_bandwidth": None}


@register(aliases=("EDiD",), data="panel", inference="influence", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time",
                               first_treat="first_treat"))
class EfficientDiD(Estimator):
    """Efficient group-time ATTs (Chen, Sant'Anna & Xie 2025).

    Under parallel trends for every cohort and period (``pt_assumption="all"``),
    ATT(g, t) is over-identified: every comparison cohort ``g'`` that is still
    untreated in a period ``t'`` gives a valid difference in differences,

        [Y_t - Y_1 | G=g] - [Y_t - Y_t' | never treated] - [Y_t' - Y_1 | G=g'],

    (means over the cohort; ``1`` is the first period; the never-treated
    comparison, the same for every ``t'``, enters once; ``g' = g`` with
    ``t' < g`` gives the cohort's own pre-period DiDs). The efficient estimator
    is their GLS combination with weights ``Omega^-1 1 / (1' Omega^-1 1)``,
    ``Omega`` the covariance of the DiDs' influence functions (every cross
    term, including the covariance of the two never-treated pieces), and its
    standard errors come from the efficient influence function through the
    inference engine (independent units, clusters, survey designs, replicate
    weights by refitting, the PSU multiplier bootstrap). With
    ``pt_assumption="post"`` (parallel trends only from ``g - 1`` on) the one
    moment is the DiD from the fixed base period ``g - 1 - anticipation``
    against the never-treated: Callaway-Sant'Anna with never-treated controls
    and ``base_period="universal"``.

    Pre-treatment ATT(g, t) (placebos, expectation 0 under the assumption) are
    estimated the same way. Aggregations (overall, event study, group,
    calendar) and their standard errors, including the influence of the
    cohort-share weights, are those of :class:`CallawaySantAnna`.

    With baseline covariates (``fit(covariates=...)``) parallel trends are
    assumed conditional on X (the paper's conditional PT-All / PT-Post) and
    the estimator is the paper's doubly robust efficient one, with every
    nuisance a series (sieve) regression on one polynomial basis in X:

    * outcome regressions ``m_h(X) = E[Y_s | G = h, X]`` for every group and
      period, weighted least squares within the group;
    * generalized propensity-score ratios ``r_gh(X) = p_g(X) / p_h(X)`` by the
      paper's convex sieve criterion (minimize ``sum_{G=h} w r(X)^2 - 2
      sum_{G=g} w r(X)`` over the basis span: the reweighted group ``h``
      balances the basis means of cohort ``g``);
    * each DiD moment in doubly robust form: cohort g's own outcome change plus
      the other groups' regression predictions at the cohort's X, plus the
      ratio-weighted residuals of the other groups;
    * the moments combined with the conditional weights
      ``Omega*(X)^-1 1 / 1'Omega*(X)^-1 1``, ``Omega*_jk(X) = sum_h r_gh(X)^2
      A_j[h]' S_h(X) A_k[h]`` (``A_j[h]`` moment j's coefficients on group h's
      periods, ``S_h(X)`` the series regression over all units of
      ``1{G=h} w^2 n_h/(n_h - p) e e'``, ``e`` the unit's residual vector:
      ``p_h(X)`` times the conditional covariance, every cross-period term
      included);
    * standard errors from the efficient influence function evaluated at the
      estimates (each unit's term minus ``1{G=g} w ATT / W_g``).

    The basis: the covariates standardized, all monomials of total degree
    ``<= sieve_order`` with the intercept, orthonormalized by a pivoted QR
    (collinear terms leave, so indicator columns give the saturated, fully
    nonparametric basis). With one basis for all nuisances the outcome
    regressions' residuals are orthogonal to the ratios, so under PT-Post
    the estimate is also the regression-imputation and the ratio-weighting
    estimate, and the influence function is the exact linearization of the
    estimator for a fixed order. Constant covariates give the no-covariate
    fit exactly.

    Parameters
    ----------
    pt_assumption : {"all", "post"}
    control_group : {"never_treated", "last_cohort"}
        ``"last_cohort"``: the latest cohort joins the never-treated as the
        comparison group, and periods from its treatment (less anticipation)
        on are dropped.
    anticipation : int
        Periods (in units of the time column, as CallawaySantAnna) before ``g`` in
        which cohort ``g`` may already react: its own moments use only periods before
        ``g - anticipation``, and a comparison cohort ``g'`` only periods before
        ``g' - anticipation``.
    omega_ridge : float
        Ridge added to ``Omega`` scaled to unit diagonal (i.e. relative to each
        moment's variance) before the weights are formed. 0 (default): the exact
        GLS weights, with a pseudo-inverse past numerical rank deficiency (a
        moment without variance gets weight 0; with covariates, directions of
        a non-positive-definite series estimate of ``Omega*(X)`` are left out
        the same way).
    alpha, cluster, n_bootstrap, bootstrap_weights, seed, cband
        The shared inference settings.
    vcov_type : {"hc1"}
        Accepted for diff-diff 3.x (the variance is the design's).
    sieve_order : int or None
        Polynomial order of the series basis (covariates only). None
        (default): chosen by ``sieve_criterion`` among ``1..sieve_k_max``.
        Every group (each cohort and the comparison group) needs more units
        with positive weight than basis terms, and the basis must not be
        collinear within a group; otherwise ValueError.
    sieve_k_max : int or None
        Largest order tried when ``sieve_order`` is None; None:
        ``max(1, floor(n_min ** 0.2))``, ``n_min`` the smallest group's count
        of units with positive weight (orders that cannot be fitted are not
        tried).
    sieve_criterion : {"bic", "aic"}
        Order choice: minimize ``sum_h sum_s [n_h log(RSS_hs / W_h) + c_h p]``
        over the regressions of ``Y_s - Y_1`` within each group (``p`` basis
        terms, ``c_h = log(n_h)`` for BIC, 2 for AIC).
    ratio_clip : float
        Propensity-score ratios are capped at ``ratio_clip`` times the
        cohort-size ratio ``W_g / W_h`` (a warning counts the capped values;
        ``np.inf``: no cap).
    kernel_bandwidth : None
        Accepted for diff-diff 3.x, which smoothed ``Omega*(X)`` with a
        kernel; here ``Omega*(X)`` is a series regression on the same basis,
        so a value warns that it has no effect.

    Examples
    --------
    >>> import diff_diff as dd
    >>> res = dd.EfficientDiD().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal",
    ...                             time="year", first_treat="first.treat")
    >>> round(res.overall_att, 4)
    -0.0437
    """

    _allowed = {**INFERENCE_ALLOWED, "pt_assumption": ("all", "post"),
                "control_group": ("never_treated", "last_cohort")}
    _checks = {**INFERENCE_CHECKS,
               "anticipation": (lambda v: is_int(v, 0), "a non-negative integer"),
               "omega_ridge": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)
                               and 0 <= v < np.inf, "a non-negative number"),
               "sieve_order": (lambda v: v is None or is_int(v, 1), "None or an integer >= 1"),
               "sieve_k_max": (lambda v: v is None or is_int(v, 1), "None or an integer >= 1"),
               "sieve_criterion": (lambda v: v in ("bic", "aic"), "'bic' or 'aic'"),
               "ratio_clip": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)
                              and v > 0, "a positive number (np.inf: no clipping)")}
    _results_class = EfficientDiDResults

    def __init__(self, pt_assumption="all", alpha=0.05, cluster=None, vcov_type="hc1",
                 control_group="never_treated", n_bootstrap=0, bootstrap_weights="rademacher",
                 seed=None, anticipation=0, sieve_k_max=None, sieve_criterion="bic",
                 ratio_clip=20.0, kernel_bandwidth=None, omega_ridge=0.0, cband=True,
                 sieve_order=None):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            covariates=None, aggregate: str | None = None, balance_e: int | None = None,
            survey_design=None, store_eif: bool = False) -> EfficientDiDResults:
        """Estimate every ATT(g, t) and the aggregations.

        Parameters
        ----------
        data : DataFrame
            Balanced long panel (units missing a period are dropped with a
            warning). Not modified.
        outcome, unit, time, first_treat : str
            ``first_treat``: first treated period, 0 or inf for never treated.
        covariates : list of str, optional
            Baseline covariates: numeric columns constant within unit and
            without missing values (time-varying columns are refused; diff-diff
            3.x used each unit's first-period value). See the class notes.
        aggregate, balance_e
            diff-diff 3.x, as :meth:`CallawaySantAnna.fit`.
        survey_design : SurveyDesign, optional
            Columns constant within unit.
        store_eif : bool
            Accepted for diff-diff 3.x; the influence functions are always kept.

        Returns
        -------
        EfficientDiDResults
        """
        check_legacy_aggregation("EfficientDiD", aggregate, balance_e)
        covariates = _covariate_list(covariates)
        if covariates:
            _check_covariates(data, covariates, unit)
            if self.kernel_bandwidth is not None:
                warn_user("EfficientDiD: kernel_bandwidth has no effect: Omega*(X) is estimated "
                          "by series regressions on the same basis as the other nuisances")
        else:
            changed = [k for k, v in _NUISANCE_DEFAULTS.items() if getattr(self, k) != v]
            if self.sieve_order is not None:
                changed.append("sieve_order")
            if changed:
                warn_user(f"EfficientDiD: {', '.join(changed)} tune(s) the covariate path and "
                          "has no effect without covariates")
        res = self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                  first_treat=first_treat),
                        balance_e=balance_e, covariates=covariates)
        return apply_legacy_aggregation("EfficientDiD", res, aggregate)

    # ------------------------------------------------------------------ template steps
    def _sample(self, data, columns, balance_e=None, covariates=None):
        c = columns
        panel = build_unit_panel(data, c["outcome"], c["unit"], c["time"], c["first_treat"],
                                 covariates, "EfficientDiD")
        panel, dropped = _drop_always_treated(panel, self.anticipation, "EfficientDiD")
        panel = self._comparison(panel)
        return Sample((panel, dropped, balance_e, covariates), panel.unit_rows, c["unit"],
                      columns)

    def _comparison(self, panel):
        """The comparison group as cohort 0 (with ``last_cohort``: the latest cohort joins
        it, and the periods from its treatment on are dropped)."""
        g = panel.first_treat
        cohorts = np.unique(g[g > 0])
        if self.control_group == "never_treated":
            if not (g == 0).any():
                raise ValueError(
                    "EfficientDiD: there are no never-treated units (first_treat 0 or inf, or "
                    "first treated after the last period); use control_group='last_cohort' "
                    "to compare with the latest-treated cohort")
            return panel
        if cohorts.size < 2:
            raise ValueError("EfficientDiD: control_group='last_cohort' needs at least two "
                             f"treated cohorts (found {cohorts.size})")
        last = cohorts[-1]
        keep = panel.times < last - self.anticipation
        if keep.sum() < 2:
            raise ValueError(
                f"EfficientDiD: control_group='last_cohort': fewer than two periods before "
                f"the last cohort ({number_label(last)}) is treated")
        return replace(panel, first_treat=np.where(g == last, 0.0, g), y=panel.y[:, keep],
                       times=panel.times[keep], n_rows=int(panel.y.shape[0] * keep.sum()))

    def _estimate(self, sample, design):
        panel, dropped, balance_e, covariates = sample.arrays
        g = panel.first_treat
        if not (g > 0).any():
            raise ValueError(
                "EfficientDiD: every treated unit is treated from the first period, so none "
                "has a pre-treatment period" if dropped else
                f"EfficientDiD: no unit is treated (first_treat column "
                f"{sample.columns['first_treat']!r} is 0, inf or after the last period for "
                "every unit)")
        core = EfficientCore(panel, self.pt_assumption, self.anticipation, self.omega_ridge)
        weights = design.weights
        core.check_weights(weights)
        order = None
        if covariates:
            cov = CovariateCore(core, panel.x[:, 0, :], weights, self.sieve_order,
                                self.sieve_k_max, self.sieve_criterion, self.ratio_clip,
                                covariates)
            fit = cov.fit(weights)
            if fit.n_clipped:
                warn_user(f"EfficientDiD: {fit.n_clipped} propensity-score ratio value(s) "
                          f"exceeded ratio_clip={self.ratio_clip} times the cohort-size ratio "
                          "and were clipped (standard errors use the clipped ratios)")
            influence, reestimate, order = fit.psi, cov.theta, cov.order
        else:
            fit = core.fit(weights)
            influence = GroupMeansInfluence(panel.y, core.member, weights, fit.coef, fit.means,
                                            fit.mass)
            reestimate = core.theta
        estimate = Estimate(np.concatenate([fit.att, fit.pg]),
                            CohortShareBasis(influence, g, weights),
                            reestimate=reestimate, name="EfficientDiD")
        return SimpleNamespace(estimate=estimate, panel=panel, cells=core.cells, att=fit.att,
                               psi=influence, pg=fit.pg, n_treated=fit.n_treated,
                               n_control=fit.n_control, dropped=dropped, balance_e=balance_e,
                               moments=core.moments, moment_weights=fit.moment_weights,
                               condition=fit.condition, covariates=covariates,
                               sieve_order=order,
                               not_definite=getattr(fit, "replaced", None))

    # ------------------------------------------------------------------ pretest
    @classmethod
    def hausman_pretest(cls, data, outcome, unit, time, first_treat, covariates=None,
                        cluster=None, anticipation=0, control_group="never_treated",
                        alpha=0.05, survey_design=None, **settings) -> HausmanPretestResult:
        """Hausman test of parallel trends in all periods (PT-All) against PT-Post.

        Both estimators are fitted; under PT-All both are consistent (PT-All
        efficiently), so the post-treatment event-study effects should agree.
        The statistic is ``d' V^+ d`` for their differences ``d`` (event times
        ``e >= 0``), with ``V`` the design-based covariance of ``d`` computed
        from the difference of the two fits' influence functions (always
        positive semi-definite, unlike the textbook ``V_post - V_all``), and is
        referred to a chi-square with ``rank(V)`` degrees of freedom. With
        replicate weights ``V`` re-weights the influence functions (first
        order).

        Parameters
        ----------
        data, outcome, unit, time, first_treat, covariates, survey_design
            As :meth:`fit`.
        cluster, anticipation, control_group, alpha
            As the constructor; ``settings`` passes other constructor keywords
            (``omega_ridge``...) to both fits.

        Returns
        -------
        HausmanPretestResult
        """
        from scipy import stats

        if "pt_assumption" in settings:
            raise ValueError("EfficientDiD.hausman_pretest fits both pt_assumption='all' and "
                             "'post'; do not pass pt_assumption")
        common = dict(cluster=cluster, anticipation=anticipation, control_group=control_group,
                      alpha=alpha, **settings)
        common["n_bootstrap"] = 0
        args = dict(data=data, outcome=outcome, unit=unit, time=time, first_treat=first_treat,
                    covariates=covariates, survey_design=survey_design)
        fits = {pt: cls(pt_assumption=pt, **common).fit(**args) for pt in ("all", "post")}
        dyn = {pt: res.aggregate("event_study") for pt, res in fits.items()}
        events = {pt: d.effects["event_time"].to_numpy() for pt, d in dyn.items()}
        common_e = np.intersect1d(events["all"][events["all"] >= 0],
                                  events["post"][events["post"] >= 0])
        att = {pt: fits[pt].overall_att for pt in fits}
        if common_e.size == 0:
            return HausmanPretestResult(np.nan, np.nan, 0, False, alpha, att["all"], att["post"],
                                        "inconclusive", None)
        est, inf = {}, {}
        for pt, d in dyn.items():
            pos = np.searchsorted(events[pt], common_e)
            est[pt] = d.effects["estimate"].to_numpy()[pos]
            inf[pt] = d.influence_functions[:, pos]
        delta = est["post"] - est["all"]
        var = fits["all"]._inference.of(
            Estimate(delta, inf["post"] - inf["all"], name="EfficientDiD"),
            analytic=True).variance()
        vcov = var.vcov
        eig = np.linalg.eigvalsh(vcov)
        tol = max(eig.max(initial=0.0), 0.0) * vcov.shape[0] * np.finfo(float).eps * 10
        rank = int((eig > tol).sum())
        stat = float(delta @ np.linalg.pinv(vcov, rcond=1e-10, hermitian=True) @ delta)
        p = float(stats.chi2.sf(stat, rank)) if rank else np.nan
        reject = bool(p < alpha) if rank else False
        recommendation = "inconclusive" if not rank else ("pt_post" if reject else "pt_all")
        details = pd.DataFrame({"event_time": common_e.astype(int), "es_all": est["all"],
                                "es_post": est["post"], "delta": delta,
                                "se_delta": np.sqrt(np.clip(np.diag(vcov), 0, None))})
        return HausmanPretestResult(stat, p, rank, reject, alpha, att["all"], att["post"],
                                    recommendation, details)


def _covariate_list(covariates):
    if covariates is None:
        return []
    if isinstance(covariates, str):
        covariates = [covariates]
    covariates = list(covariates)
    for c in covariates:
        if not isinstance(c, str):
            raise TypeError(f"EfficientDiD: covariates must be column names, got {c!r}")
    return covariates


def _check_covariates(data, covariates, unit):
    """Baseline covariates: present, numeric, without missing values, constant within unit."""
    for c in covariates:
        if c not in data.columns:
            raise ValueError(f"EfficientDiD: covariate column {c!r} is not in data")
        col = data[c]
        if col.dtype.kind not in "biuf":
            raise TypeError(f"EfficientDiD: covariate column {c!r} must be numeric (got "
                            f"{col.dtype}); code categories as indicator columns")
        bad = int((~np.isfinite(col.to_numpy(dtype=float))).sum())
        if bad:
            raise ValueError(f"EfficientDiD: covariate column {c!r} has {bad} missing or "
                             "non-finite value(s); covariates must be observed for every unit")
        varying = data.groupby(unit, sort=False)[c].nunique()
        varying = varying[varying > 1]
        if len(varying):
            raise ValueError(
                f"EfficientDiD: covariate {c!r} varies over time within {len(varying)} unit(s) "
                f"(e.g. unit {varying.index[0]}); the estimator conditions on baseline "
                "(time-invariant) covariates as in Chen, Sant'Anna & Xie (2025): pass each "
                "unit's value in the first period (the period diff-diff 3.x used) as a "
                "constant column")


class EfficientCore:
    """The cells, their moments and the efficient combination under given unit weights.

    Groups are indexed ``0`` (the comparison group) and ``1..G`` (the treated
    cohorts). A moment is a coefficient array ``A[h, s]`` over group-period
    weighted means: the DiD ``sum_h,s A[h, s] Ybar_h(s)``.
    """

    def __init__(self, panel, pt_assumption, anticipation, ridge):
        self.panel, self.pt, self.anticipation, self.ridge = (panel, pt_assumption,
                                                              anticipation, ridge)
        g = panel.first_treat
        self.cohorts = np.unique(g[g > 0])
        self.member = np.where(g > 0, np.searchsorted(self.cohorts, g) + 1, 0)
        self.n_groups = self.cohorts.size + 1
        if pt_assumption == "post":
            self.cells = _cells(panel, anticipation, "universal")
        else:
            self.cells = _all_cells(panel.times, self.cohorts, anticipation)
        self.moments = [self._moments(c) for c in range(self.cells.group.size)]

    # ----------------------------------------------------------------- moments
    def _moments(self, c):
        """``(labels, A)``: the moments of cell ``c`` (labels ``(g', t')``, ``g'`` 0 for the
        comparison group) and their coefficients (H, G + 1, T)."""
        cells, times = self.cells, self.panel.times
        h = int(np.searchsorted(self.cohorts, cells.group[c])) + 1
        cur, n_t = int(cells.current[c]), times.size
        if self.pt == "post":
            base = int(cells.base[c])
            a = np.zeros((1, self.n_groups, n_t))
            if base != cur:
                a[0, h, cur], a[0, h, base] = 1.0, -1.0
                a[0, 0, cur], a[0, 0, base] = -1.0, 1.0
            return [(0.0, times[base])], a
        labels = [(0.0, times[0])]
        pairs = []
        for k, gp in enumerate(self.cohorts):
            for j in range(1, n_t):
                if times[j] < gp - self.anticipation and not (k + 1 == h and j == cur):
                    pairs.append((k + 1, j))
                    labels.append((gp, times[j]))
        a = np.zeros((1 + len(pairs), self.n_groups, n_t))
        a[:, h, cur] += 1.0  # the target cohort's change from the first period
        a[:, h, 0] -= 1.0
        a[:, 0, cur] -= 1.0  # the comparison group's change from t' to t ...
        a[0, 0, 0] += 1.0
        for m, (hp, j) in enumerate(pairs, start=1):
            a[m, 0, j] += 1.0
            a[m, hp, j] -= 1.0  # ... and cohort g''s change from the first period to t'
            a[m, hp, 0] += 1.0
        return labels, a

    # ----------------------------------------------------------------- fitting
    def check_weights(self, weights):
        mass = np.bincount(self.member, weights=weights, minlength=self.n_groups)
        if not mass[0] > 0:
            raise ValueError("EfficientDiD: the comparison group has zero total weight")
        empty = self.cohorts[~(mass[1:] > 0)]
        if empty.size:
            raise ValueError(f"EfficientDiD: cohort(s) {[number_label(g) for g in empty]} have "
                             "zero total weight")

    def theta(self, weights) -> np.ndarray:
        """ATT(g, t) and cohort shares under other unit weights (replicate refits)."""
        fit = self.fit(weights)
        return np.concatenate([fit.att, fit.pg])

    def fit(self, weights):
        y, member, n_groups = self.panel.y, self.member, self.n_groups
        w = np.where(weights > 0, weights, 0.0)
        mass = np.bincount(member, weights=w, minlength=n_groups)
        safe = np.where(mass > 0, mass, 1.0)
        means = np.vstack([np.bincount(member, weights=w * y[:, s], minlength=n_groups)
                           for s in range(y.shape[1])]).T / safe[:, None]  # (G + 1, T)
        count = np.bincount(member, weights=(w > 0).astype(float), minlength=n_groups)
        # sum_i in h of psi psi' per unit of coefficient: (w_i / W_h)^2 (Y_i - Ybar)(Y_i - Ybar)'
        dev = (y - means[member]) * (w / safe[member])[:, None]
        factor = np.where(count > 1, count / np.maximum(count - 1, 1), 1.0)
        cov = np.stack([factor[h] * dev[member == h].T @ dev[member == h]
                        for h in range(n_groups)])
        k = self.cells.group.size
        coef = np.zeros((n_groups, y.shape[1], k))
        att = np.full(k, np.nan)
        weights_out, condition = [], np.full(k, np.nan)
        empty = ~(mass > 0)  # a cohort without weight (in a replicate): its moments drop out
        cell_h = np.searchsorted(self.cohorts, self.cells.group) + 1
        for c, (labels, a) in enumerate(self.moments):
            lam = np.zeros(len(labels))
            weights_out.append(lam)
            if not a.any():  # the reference period of a fixed base
                att[c] = 0.0
                lam[:] = 1.0
                continue
            if empty[0] or empty[cell_h[c]]:
                continue  # not estimable under these weights: NaN
            usable = ~np.any(a[:, empty, :] != 0, axis=(1, 2))
            omega = np.einsum("jhs,hsr,khr->jk", a[usable], cov, a[usable], optimize=True)
            lam[usable], condition[c] = gls_weights(omega, self.ridge)
            coef[:, :, c] = np.tensordot(lam, a, axes=1)
            att[c] = float(np.sum(coef[:, :, c] * means))
        pg = mass[1:] / w.sum()
        return SimpleNamespace(att=att, coef=coef, means=means, mass=mass, pg=pg,
                               n_treated=count[cell_h].astype(np.int64),
                               n_control=np.full(k, int(count[0]), dtype=np.int64),
                               moment_weights=weights_out, condition=condition)


def _all_cells(times, cohorts, anticipation) -> Cells:
    """PT-All cells: every cohort with an untreated first period, every period after the
    first (the base of every moment's target-cohort change)."""
    rows = [(g, times[j], 0, j, g <= times[j]) for g in cohorts
            if times[0] < g - anticipation for j in range(1, times.size)]
    arr = list(zip(*rows)) if rows else [(), (), (), (), ()]
    return Cells(group=np.array(arr[0], dtype=float), time=np.array(arr[1], dtype=float),
                 base=np.array(arr[2], dtype=np.int64), current=np.array(arr[3], dtype=np.int64),
                 post=np.array(arr[4], dtype=bool))


class GroupMeansInfluence:
    """Influence matrix of cells that are linear in group-period weighted means.

    Cell ``c`` is ``sum_h,s coef[h, s, c] Ybar_h(s)``; unit i of group h has
    ``psi[i, c] = (w_i / W_h) sum_s coef[h, s, c] (Y_is - Ybar_h(s))``. Products
    ``psi @ M`` go group by group without forming the n x K matrix.
    """

    def __init__(self, y, member, weights, coef, means, mass):
        self.y, self.member, self.coef, self.means = y, member, coef, means
        self.scale = np.where(weights > 0, weights, 0.0) / np.where(mass > 0, mass, 1.0)[member]
        self.shape = (y.shape[0], coef.shape[2])
        self.rows = [np.flatnonzero(member == h) for h in range(coef.shape[0])]

    def _apply(self, coef):
        out = np.zeros((self.shape[0], coef.shape[2]))
        for h, rows in enumerate(self.rows):
            if rows.size:
                out[rows] = self.scale[rows, None] * ((self.y[rows] - self.means[h]) @ coef[h])
        return out

    def __matmul__(self, mapping):
        mapping = np.asarray(mapping, dtype=float)
        squeeze = mapping.ndim == 1
        out = self._apply(np.tensordot(self.coef, mapping[:, None] if squeeze else mapping,
                                       axes=1))
        return out[:, 0] if squeeze else out

    def toarray(self):
        return self._apply(self.coef)


# ---------------------------------------------------------------------------------------------
# baseline covariates: series (sieve) nuisances, doubly robust moments, conditional weights
# ---------------------------------------------------------------------------------------------
_CHUNK = 4096  # covariate patterns per block when forming the conditional Omega*(X)


def sieve_basis(x: np.ndarray, order: int) -> np.ndarray:
    """Orthonormal basis of the polynomials of total degree ``<= order`` in the columns of ``x``.

    The columns are standardized (mean 0, sd 1 over the units; constant columns
    leave), every monomial up to the order is formed with the intercept, and
    the span is orthonormalized by a column-pivoted QR (terms collinear with
    earlier ones leave: indicator columns give the saturated basis of their
    cells at every order). Returns ``Q`` (n x p) with ``Q'Q = I``.
    """
    from itertools import combinations_with_replacement

    from scipy.linalg import qr

    n = x.shape[0]
    sd = x.std(axis=0)
    z = (x[:, sd > 0] - x[:, sd > 0].mean(axis=0)) / sd[sd > 0]
    terms = [np.ones(n)]
    for degree in range(1, order + 1):
        for combo in combinations_with_replacement(range(z.shape[1]), degree):
            terms.append(np.prod(z[:, combo], axis=1))
    q, r, _ = qr(np.column_stack(terms), mode="economic", pivoting=True)
    d = np.abs(np.diag(r))
    rank = int((d > d[0] * 1e-10 * max(n, len(terms))).sum())
    return q[:, :rank]


def _not_definite(omega: np.ndarray) -> np.ndarray:
    """Which matrices of the stack fail a Cholesky factorization (halving the stack until
    the failing ones are found; small stacks by their eigenvalues)."""
    try:
        np.linalg.cholesky(omega)
        return np.zeros(omega.shape[0], dtype=bool)
    except np.linalg.LinAlgError:
        pass
    if omega.shape[0] <= 32:
        h = omega.shape[1]
        d = np.sqrt(np.einsum("mjj->mj", omega))
        vals = np.linalg.eigvalsh(omega / (d[:, :, None] * d[:, None, :]))
        return vals[:, 0] <= vals[:, -1] * h * np.finfo(float).eps * 100
    half = omega.shape[0] // 2
    return np.concatenate([_not_definite(omega[:half]), _not_definite(omega[half:])])


def _definite(omega: np.ndarray, fallback: np.ndarray) -> int:
    """Replace (in place) the matrices of the stack ``omega`` that are not positive definite
    by ``fallback``; returns how many were replaced."""
    bad = ~(np.einsum("mjj->mj", omega) > 0).all(axis=1)
    omega[bad] = fallback
    bad |= _not_definite(omega)
    omega[bad] = fallback
    return int(bad.sum())


def _gls_batch(omega: np.ndarray, ridge: float) -> np.ndarray:
    """:func:`~diff_diff.linalg.gls.gls_weights` for a stack ``(m, H, H)`` of matrices.

    Solved by Cholesky when every pivot of every (unit-diagonal) matrix is at
    least 1e-10; otherwise by the eigen-decomposition of ``gls_weights`` (a
    pseudo-inverse past numerical rank deficiency), for the whole stack.
    """
    h = omega.shape[1]
    d = np.sqrt(np.clip(np.einsum("mjj->mj", omega), 0, None))
    scale = np.where(d > 0, d, 1.0)
    corr = omega / (scale[:, :, None] * scale[:, None, :])
    if ridge:
        corr = corr + ridge * np.eye(h)
    rhs = 1.0 / scale
    try:
        chol = np.linalg.cholesky(corr)
        ok = np.einsum("mjj->mj", chol).min() ** 2 >= 1e-10
    except np.linalg.LinAlgError:
        ok = False
    if ok:
        inv_ones = np.linalg.solve(corr, rhs[:, :, None])[:, :, 0]
    else:
        vals, vecs = np.linalg.eigh(corr)
        top = vals.max(axis=1)
        keep = vals > top[:, None] * h * np.finfo(float).eps * 100
        proj = np.einsum("mjk,mj->mk", vecs, rhs)
        inv_ones = np.einsum("mjk,mk->mj", vecs,
                             np.where(keep, proj / np.where(keep, vals, 1.0), 0.0))
    lam = inv_ones / scale
    return lam / lam.sum(axis=1, keepdims=True)


class CovariateCore:
    """The efficient ATT(g, t) under parallel trends conditional on baseline covariates.

    Built on an :class:`EfficientCore` (its cells and moment coefficients
    ``A[j, h, s]``). For each group ``h`` (0 = comparison, 1..G = cohorts)
    the outcome vector is regressed on the series basis within the group
    (weighted least squares): ``m_h(X) = E[Y | G = h, X]`` (every period at
    once; any moment's outcome change is a linear combination). Moment ``j``
    of cell (g, t) is then estimated by the doubly robust form

        theta_j = (1/W_g) [ sum_{i in g} w_i (A_j[g].Y_i + sum_{h != g} A_j[h].m_h(X_i))
                           + sum_{h != g} sum_{i in h} w_i r_gh(X_i) A_j[h].(Y_i - m_h(X_i)) ]

    with ``r_gh(X) = p_g(X) / p_h(X)`` the sieve propensity-score ratio (the
    minimizer of ``sum_{i in h} w_i r(X_i)^2 - 2 sum_{i in g} w_i r(X_i)`` over
    the basis span, i.e. the balancing solution). The cell combines the
    moments with the conditional weights ``w(X) = Omega*(X)^-1 1 / 1'Omega*(X)^-1 1``,

        Omega*_jk(X) = sum_h r_gh(X)^2 A_j[h]' S_h(X) A_k[h],

    ``S_h(X)`` the series regression (over all units) of
    ``1{G_i = h} w_i^2 n_h/(n_h - p) e_i e_i'`` with ``e_i`` the unit's
    residual vector, i.e. ``p_h(X)`` times the conditional second moment of the
    influence contributions, so that ``r_gh^2 p_h = p_g^2 / p_h`` as in the
    paper. ``ATT(g, t) = sum_j w_j(X_i) theta_ij`` averaged as above; the
    influence value of unit i is its term minus its share of the estimate.
    """

    def __init__(self, core, x, weights, order, k_max, criterion, ratio_clip, covariates):
        self.core, self.ratio_clip, self.covariates = core, ratio_clip, covariates
        self.rows = [np.flatnonzero(core.member == h) for h in range(core.n_groups)]
        if order is not None:
            basis = sieve_basis(x, order)
            problem = self._unfit(basis, weights)
            if problem:
                raise ValueError(self._too_large(order, basis.shape[1], problem))
            self.order, self.basis = order, basis
        else:
            self.order, self.basis = self._select(x, weights, k_max, criterion)
        # distinct covariate values: Omega*(X) and its weights are formed once for each
        _, first, inverse = np.unique(x, axis=0, return_index=True, return_inverse=True)
        self.patterns = (self.basis[first], inverse.reshape(-1))

    # ------------------------------------------------------------ the basis and its order
    def _label(self, h):
        return "the comparison group" if h == 0 else \
            f"cohort {number_label(self.core.cohorts[h - 1])}"

    def _unfit(self, basis, weights):
        """The first group in which the basis cannot be fitted (``None``: all fit)."""
        p = basis.shape[1]
        for h, rows in enumerate(self.rows):
            w = weights[rows]
            pos = w > 0
            n_pos = int(pos.sum())
            if n_pos <= p:
                return f"{self._label(h)} has {n_pos} unit(s) with positive weight"
            s = np.linalg.svd(basis[rows][pos] * np.sqrt(w[pos] / w[pos].mean())[:, None],
                              compute_uv=False)
            if s[-1] <= s[0] * 1e-8:
                return f"the basis is collinear within {self._label(h)}"
        return None

    def _too_large(self, order, p, problem):
        return (f"EfficientDiD: the sieve basis of order {order} ({p} terms in the covariates "
                f"{self.covariates}) cannot be fitted: {problem}; every group needs more units "
                "than basis terms: use a smaller sieve_order (or fewer covariates)")

    def _select(self, x, weights, k_max, criterion):
        """The order minimizing the information criterion of the outcome-change regressions
        (``Y_s - Y_1`` for every period and group), among the orders that fit every group."""
        y, n_t = self.core.panel.y, self.core.panel.y.shape[1]
        counts = [int((weights[rows] > 0).sum()) for rows in self.rows]
        if k_max is None:
            k_max = max(1, int(np.floor(min(counts) ** 0.2)))
        best, first_problem, terms = None, None, 0
        for order in range(1, k_max + 1):
            basis = sieve_basis(x, order)
            if basis.shape[1] == terms:
                continue  # no new terms (e.g. indicators): the same span as the lower order
            terms = basis.shape[1]
            problem = self._unfit(basis, weights)
            if problem:
                first_problem = first_problem or (order, basis.shape[1], problem)
                break  # a higher order has at least these terms
            p, ic = basis.shape[1], 0.0
            for rows, n_h in zip(self.rows, counts):
                w = weights[rows]
                change = y[rows, 1:] - y[rows, :1]
                ps, sw = basis[rows], np.sqrt(w)[:, None]
                coef = np.linalg.lstsq(ps * sw, change * sw, rcond=None)[0]
                rss = (w[:, None] * (change - ps @ coef) ** 2).sum(axis=0)
                tss = (w[:, None] * change ** 2).sum(axis=0)
                rss = np.maximum(rss, 1e-14 * np.maximum(tss, 1e-300))
                penalty = np.log(n_h) if criterion == "bic" else 2.0
                ic += float(n_h * np.log(rss / w.sum()).sum() + penalty * p * (n_t - 1))
            if best is None or ic < best[0]:
                best = (ic, order, basis)
        if best is None:
            raise ValueError(self._too_large(*first_problem))
        return best[1], best[2]

    # ------------------------------------------------------------ estimation
    def theta(self, weights) -> np.ndarray:
        """ATT(g, t) and cohort shares under other unit weights (replicate refits)."""
        fit = self.fit(weights)
        return np.concatenate([fit.att, fit.pg])

    def fit(self, weights):
        core, basis = self.core, self.basis
        y, n_groups = core.panel.y, core.n_groups
        n, n_t = y.shape
        p = basis.shape[1]
        w = np.where(weights > 0, weights, 0.0)
        mass = np.bincount(core.member, weights=w, minlength=n_groups)
        count = np.bincount(core.member, weights=(w > 0).astype(float), minlength=n_groups)
        empty = ~(mass > 0)
        coef = np.zeros((n_groups, p, n_t))
        inv_gram = np.zeros((n_groups, p, p))
        resid = np.zeros_like(y)
        for h, rows in enumerate(self.rows):
            if empty[h]:
                continue
            bw = basis[rows] * w[rows, None]
            inv_gram[h] = np.linalg.pinv(basis[rows].T @ bw, hermitian=True)
            coef[h] = inv_gram[h] @ (bw.T @ y[rows])
            resid[rows] = y[rows] - basis[rows] @ coef[h]
        second = None
        if core.pt == "all":  # S_h(X) coefficients, (G + 1, p, T, T)
            factor = np.where(count > p, count / np.maximum(count - p, 1), 1.0)
            second = np.stack([
                factor[h] * np.einsum("ib,is,ir->bsr", basis[rows], resid[rows] * w[rows, None],
                                      resid[rows] * w[rows, None], optimize=True)
                for h, rows in enumerate(self.rows)])
        k = core.cells.group.size
        att, psi = np.full(k, np.nan), np.zeros((n, k))
        weights_out, condition = [], np.full(k, np.nan)
        replaced = np.zeros(k, dtype=np.int64)
        cell_h = np.searchsorted(core.cohorts, core.cells.group) + 1
        clipped = 0
        for c, (labels, a) in enumerate(core.moments):
            lam_mean = np.zeros(len(labels))
            weights_out.append(lam_mean)
            if not a.any():
                att[c] = 0.0
                lam_mean[:] = 1.0
                continue
            g = cell_h[c]
            if empty[0] or empty[g]:
                continue
            usable = ~np.any(a[:, empty, :] != 0, axis=(1, 2))
            a_use = a[usable]
            others = [h for h in range(n_groups) if h != g and a_use[:, h, :].any()]
            target = basis[self.rows[g]].T @ w[self.rows[g]]
            ratio = {h: inv_gram[h] @ target for h in others}  # r_gh(X) = basis(X) @ ratio[h]
            rows_g = self.rows[g]
            lam, cond, replaced[c] = self._weights(a_use, g, others, ratio, second, mass,
                                                   rows_g, w)
            condition[c] = cond
            lam_g = lam[rows_g]
            value = np.einsum("is,is->i", lam_g @ a_use[:, g, :], y[rows_g])
            corrections = {}
            for h in others:
                value += np.einsum("is,is->i", lam_g @ a_use[:, h, :], basis[rows_g] @ coef[h])
                rows_h = self.rows[h]
                r = basis[rows_h] @ ratio[h]
                cap = self.ratio_clip * mass[g] / mass[h]
                over = r > cap
                clipped += int(over.sum())
                r = np.where(over, cap, r)
                corr = w[rows_h] * r * np.einsum("is,is->i", lam[rows_h] @ a_use[:, h, :],
                                                 resid[rows_h])
                corrections[h] = corr
            total = float(w[rows_g] @ value) + sum(float(v.sum()) for v in corrections.values())
            att[c] = total / mass[g]
            psi[rows_g, c] = w[rows_g] * (value - att[c]) / mass[g]
            for h, corr in corrections.items():
                psi[self.rows[h], c] = corr / mass[g]
            lam_mean[usable] = w[rows_g] @ lam_g / mass[g]
        pg = mass[1:] / w.sum()
        return SimpleNamespace(att=att, psi=psi, pg=pg, n_clipped=clipped, replaced=replaced,
                               n_treated=count[cell_h].astype(np.int64),
                               n_control=np.full(k, int(count[0]), dtype=np.int64),
                               moment_weights=weights_out, condition=condition)

    def _weights(self, a_use, g, others, ratio, second, mass, rows_g, w):
        """Conditional efficient weights ``(n, H)`` of the moments, the condition number of
        the target cohort's average ``Omega*(X)`` and the number of covariate values at
        which the series ``Omega*(X)`` was not positive definite (the average stands in)."""
        n, h_count = self.basis.shape[0], a_use.shape[0]
        if h_count == 1:
            return np.ones((n, 1)), 1.0, 0
        patterns, inverse = self.patterns
        p = patterns.shape[1]
        blocks = {h: np.einsum("js,bsr,kr->bjk", a_use[:, h, :], second[h], a_use[:, h, :],
                               optimize=True).reshape(p, -1) for h in [g] + others}
        ratios = {h: np.minimum(patterns @ ratio[h], self.ratio_clip * mass[g] / mass[h])
                  for h in others}
        cohort = np.bincount(inverse[rows_g], weights=w[rows_g], minlength=patterns.shape[0])
        cohort = cohort / cohort.sum()
        avg = (cohort @ patterns) @ blocks[g]
        for h in others:
            avg = avg + ((cohort * ratios[h] ** 2) @ patterns) @ blocks[h]
        avg = avg.reshape(h_count, h_count)
        _, cond = gls_weights(avg, self.core.ridge)
        lam_u = np.empty((patterns.shape[0], h_count))
        replaced = 0
        for start in range(0, patterns.shape[0], _CHUNK):
            stop = start + _CHUNK
            part = patterns[start:stop]
            omega = part @ blocks[g]
            for h in others:
                omega += (ratios[h][start:stop] ** 2)[:, None] * (part @ blocks[h])
            omega = omega.reshape(-1, h_count, h_count)
            replaced += _definite(omega, avg)
            lam_u[start:stop] = _gls_batch(omega, self.core.ridge)
        return lam_u[inverse], cond, replaced
