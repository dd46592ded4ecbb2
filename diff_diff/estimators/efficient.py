"""Efficient difference-in-differences (Chen, Sant'Anna & Xie 2025), without covariates."""

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
        moment without variance gets weight 0).
    alpha, cluster, n_bootstrap, bootstrap_weights, seed, cband
        The shared inference settings.
    vcov_type : {"hc1"}
        Accepted for diff-diff 3.x (the variance is the design's).
    sieve_k_max, sieve_criterion, ratio_clip, kernel_bandwidth
        Accepted for diff-diff 3.x: they tune the covariate path, which this
        release does not provide (``fit(covariates=...)`` raises); other values
        than the defaults warn that they have no effect.

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
                               and 0 <= v < np.inf, "a non-negative number")}
    _results_class = EfficientDiDResults

    def __init__(self, pt_assumption="all", alpha=0.05, cluster=None, vcov_type="hc1",
                 control_group="never_treated", n_bootstrap=0, bootstrap_weights="rademacher",
                 seed=None, anticipation=0, sieve_k_max=None, sieve_criterion="bic",
                 ratio_clip=20.0, kernel_bandwidth=None, omega_ridge=0.0, cband=True):
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
        covariates : None
            The covariate path (sieve propensity ratios and outcome
            regressions) is not available in this release: NotImplementedError.
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
        if covariates:
            raise NotImplementedError(
                "EfficientDiD: the covariate path (sieve propensity ratios and outcome "
                "regressions) is not available in this release; fit without covariates, "
                "or use CallawaySantAnna(estimation_method='dr') for covariate-adjusted "
                "ATT(g, t)")
        check_legacy_aggregation("EfficientDiD", aggregate, balance_e)
        changed = [k for k, v in _NUISANCE_DEFAULTS.items() if getattr(self, k) != v]
        if changed:
            warn_user(f"EfficientDiD: {', '.join(changed)} tune(s) the covariate path and "
                      "has no effect without covariates")
        res = self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                  first_treat=first_treat),
                        balance_e=balance_e)
        return apply_legacy_aggregation("EfficientDiD", res, aggregate)

    # ------------------------------------------------------------------ template steps
    def _sample(self, data, columns, balance_e=None):
        c = columns
        panel = build_unit_panel(data, c["outcome"], c["unit"], c["time"], c["first_treat"],
                                 None, "EfficientDiD")
        panel, dropped = _drop_always_treated(panel, self.anticipation, "EfficientDiD")
        panel = self._comparison(panel)
        return Sample((panel, dropped, balance_e), panel.unit_rows, c["unit"], columns)

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
        panel, dropped, balance_e = sample.arrays
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
        fit = core.fit(weights)
        influence = GroupMeansInfluence(panel.y, core.member, weights, fit.coef, fit.means,
                                        fit.mass)
        estimate = Estimate(np.concatenate([fit.att, fit.pg]),
                            CohortShareBasis(influence, g, weights),
                            reestimate=core.theta, name="EfficientDiD")
        return SimpleNamespace(estimate=estimate, panel=panel, cells=core.cells, att=fit.att,
                               psi=influence, pg=fit.pg, n_treated=fit.n_treated,
                               n_control=fit.n_control, dropped=dropped, balance_e=balance_e,
                               moments=core.moments, moment_weights=fit.moment_weights,
                               condition=fit.condition)

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
