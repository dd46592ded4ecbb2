"""Sun & Abraham (2021) interaction-weighted event study on the weighted-least-squares core."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .._grouping import label_codes
from .._warnings import warn_user
from ..inference.estimate import Estimate, Inference
from ..linalg.wls import wls
from ..results.sun_abraham import SunAbrahamResults
from ..survey.design import WEIGHT_TYPES, SurveyDesign
from ..survey.resolved import trivial_design
from .panel import _first_treat, check_constant_within_unit, numeric, require_columns
from .registry import register
from .regression import _Regression

# "not_yet_treated" (diff-diff 3.x) fits the same saturated regression as "never_treated": the
# not-yet-treated periods of later cohorts carry their own cohort x relative-period indicators
CONTROL_GROUPS = ("never_treated", "not_yet_treated", "last_treated")
WEIGHTS_SE = ("estimated", "fixed")


@register(aliases=("SA",), data="panel", inference="regression", weight_types=WEIGHT_TYPES,
          bootstrap="wild", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat"))
class SunAbraham(_Regression):
    """Interaction-weighted event study (Sun & Abraham 2021; R ``fixest::sunab``).

    The saturated regression ``y_it = a_i + l_t + sum_{g, e != r} delta_ge
    1{G_i = g} 1{t - g = e} (+ X g) + e_it`` (unit and period effects absorbed,
    one coefficient per cohort and relative period except the reference
    ``r = -1 - anticipation``) gives cohort-specific effects free of the
    contamination of TWFE event studies. The event study averages them with
    cohort-share weights, ``beta_e = sum_g w_ge delta_ge``, ``w_ge`` the share
    of cohort g among the cohorts observed at e (weighted by the sampling
    weights), and the overall ATT averages the post-treatment cells by their
    size. Standard errors of these aggregates are the delta method in the
    coefficients and in the cohort masses behind the weights (``weights_se``),
    with any ``vcov_type`` of the regression family or a survey design.

    Parameters
    ----------
    control_group : {"never_treated", "last_treated", "not_yet_treated"}
        Comparison units: never treated, or the last treated cohort (its
        periods from its treatment on are dropped, and it serves as the
        control). ``not_yet_treated`` (accepted for diff-diff 3.x) is the same
        regression as ``never_treated``: in the saturated model the later
        cohorts' untreated periods have indicators of their own.
    anticipation : int
        Periods of anticipation: the reference is the period ``1 + anticipation``
        observed periods before treatment (by position, whatever the spacing of
        the periods; event times are reported as ``t - g``).
    vcov_type : {"hc1", "classical", "hc2", "hc3", "cr1", "hc2_bm"}
        ``hc1`` (default) clusters by ``cluster`` or, without it, by unit (CR1);
        ``classical``, ``hc2`` and ``hc3`` without ``cluster`` do not cluster;
        ``hc2_bm`` is CR2 with Bell-McCaffrey degrees of freedom by ``cluster``
        or unit.
    cluster : str, optional
    alpha : float
    rank_deficient_action : {"warn", "error", "silent"}
    inference : {"analytic", "wild_bootstrap"}
        ``wild_bootstrap``: wild cluster bootstrap p-value and interval of the
        overall ATT (needs ``cluster``).
    n_bootstrap, bootstrap_weights, seed
        Wild bootstrap draws, multipliers and seed (``inference="wild_bootstrap"``;
        diff-diff 3.x's pairs bootstrap is not available, and ``n_bootstrap > 0``
        with analytic inference warns).
    weights_se : {"estimated", "fixed"}, default "estimated"
        Variance of the event-study effects and the overall ATT. ``"estimated"``
        (Sun & Abraham 2021; Stata ``eventstudyinteract``): the cohort shares
        are estimated from the sample, so each aggregate ``theta = sum_c m_c
        delta_c / sum_c m_c`` (``m_c`` the weighted row count of cell c) gets
        the influence ``sum_c w_c IF(delta_c) + sum_c (delta_c - theta)
        IF(m_c) / sum_c m_c``, ``IF(m_c)`` each unit's (cluster's, PSU's)
        weighted rows in cell c; its variance follows the same design as the
        coefficients': CR1 by unit or ``cluster`` (the regression factor
        ``(n - 1)/(n - k)`` on the coefficient part only), Taylor linearization
        of a survey design, or replicate weights, each replicate re-estimating
        coefficients and masses. ``classical``, ``hc2``, ``hc3`` and ``hc2_bm``
        keep their covariance of the fixed-weight contrasts and add the part
        the masses add to the HC1/CR1 one (rows, or units/clusters). The wild
        bootstrap's p-value and interval (which hold the regressors, hence the
        shares, fixed) are those of the fixed-weight statistic. ``"fixed"``:
        the weights held fixed, ``c' V c`` (R ``fixest::aggregate``).
        The cohort effects' standard errors are the same either way.

    Examples
    --------
    >>> import diff_diff as dd
    >>> res = dd.SunAbraham().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal",
    ...                           time="year", first_treat="first.treat")
    >>> round(res.att, 4)
    -0.04
    """

    _allowed = {**_Regression._allowed, "control_group": CONTROL_GROUPS,
                "weights_se": WEIGHTS_SE}
    _checks = {**_Regression._checks,
               "anticipation": (lambda v: isinstance(v, int) and not isinstance(v, bool)
                                and v >= 0, "a non-negative integer")}

    def __init__(self, control_group="never_treated", anticipation=0, vcov_type="hc1",
                 cluster=None, alpha=0.05, rank_deficient_action="warn", inference="analytic",
                 n_bootstrap=0, bootstrap_weights="rademacher", seed=None,
                 weights_se="estimated"):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            covariates: list[str] | None = None,
            survey_design: SurveyDesign | None = None) -> SunAbrahamResults:
        """Fit the saturated regression and aggregate it.

        Parameters
        ----------
        data : DataFrame
            Long panel, one row per unit and period; not modified.
        outcome, unit, time, first_treat : str
            Columns; ``first_treat`` is the first treated period (0 or inf:
            never treated), constant within unit; periods are numeric.
        covariates : list of str, optional
        survey_design : SurveyDesign, optional
            Weights (any type) and a design for the variance.
        """
        self._validate()
        if self.n_bootstrap and self.inference != "wild_bootstrap":
            warn_user("SunAbraham: n_bootstrap is used by inference='wild_bootstrap' (the wild "
                      "cluster bootstrap of the overall ATT); diff-diff 3.x's pairs bootstrap is "
                      "not available, so the standard errors are analytic")
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        require_columns(data, outcome=outcome, unit=unit, time=time, first_treat=first_treat,
                        covariates=covariates, cluster=self.cluster)
        rows, g, t, relative, unit_codes = self._sample(data, unit, time, first_treat)
        data = data.iloc[rows]
        y = numeric(data, outcome, "outcome")
        cells, labels = _cells(g, t, relative, self.anticipation)
        names = [f"{first_treat}[{_num(gg)}]:e[{_num(e)}]" for gg, e in labels]
        fit, x, absorb, weights, frequency, design, meta = self._cell_fit(
            data, y, cells, names, covariates, time, unit_codes, survey_design)
        w = np.ones(y.size) if weights is None else weights
        agg = _aggregation(labels, cells, w, fit.kept[:len(labels)], fit.rank)
        vcov_type = self.vcov_type
        one_way = vcov_type in ("classical", "hc2", "hc3") and self.cluster is None
        cluster = None if one_way else label_codes(data, self.cluster or unit,
                                                   "cluster" if self.cluster else "unit")[0]
        # replicates that drop a whole cohort lose only that cohort's coefficients
        groups = np.array([str(_num(g_)) for g_, _ in labels] + ["other"] * (fit.kept.size
                                                                          - len(labels)))
        var, wild = self._infer(fit, y, x, frequency, absorb, design, cluster,
                                agg["overall"], contrasts=agg["contrasts"],
                                vcov_type=vcov_type, default_cluster=self.cluster is None,
                                groups=groups[fit.kept])
        agg_vcov = None
        if self.weights_se == "estimated":

            def refit(weights_r):
                return wls(y, x, fit.names, weights_r, absorb, "silent", frequency).coef[fit.kept]
            agg_vcov = _estimated_weights_vcov(
                fit, var, agg, cells, w, unit_codes, design, cluster, vcov_type,
                self.cluster is None, refit, type(self).__name__)
        res = SunAbrahamResults.from_parts(self, fit, var, agg, labels, meta, wild,
                                           n_units=int(unit_codes.max()) + 1,
                                           n_treated=int(np.unique(unit_codes[g > 0]).size),
                                           agg_vcov=agg_vcov)
        res._warn_if_not_identified()
        return res

    def _sample(self, data, unit, time, first_treat):
        """Rows used, cohort, period and relative position per row, unit codes (never treated:
        cohort 0). Relative time counts observed periods (``position(t) - position(g)``), so
        the reference is the period just before treatment however periods are spaced."""
        t = numeric(data, time, "time")
        g = _first_treat(data, first_treat)
        unit_codes, units = label_codes(data, unit, "unit")
        check_constant_within_unit(g, unit_codes, units, first_treat)
        periods = np.unique(t)
        g = np.where(g > periods[-1], 0.0, g)  # treated after the window: never treated in it
        position = np.searchsorted(periods, t)
        start = np.searchsorted(periods, g)  # first observed period on or after g
        keep = ~((g > 0) & (start - self.anticipation <= 0))  # no pre-period: dropped
        if not keep.all():
            warn_user(f"SunAbraham: dropped {int((~keep).sum())} row(s) of units treated from "
                      "the first period (no pre-treatment period)")
        if self.control_group == "last_treated":
            cohorts = np.unique(g[keep & (g > 0)])
            if cohorts.size < 2:
                raise ValueError("SunAbraham: control_group='last_treated' needs at least two "
                                 "treated cohorts")
            last = cohorts[-1]
            last_start = int(np.searchsorted(periods, last))
            keep &= position < last_start - self.anticipation  # its untreated periods only
            g = np.where(g == last, 0.0, g)
        if not (g[keep] > 0).any():
            raise ValueError(f"SunAbraham: no unit is treated (first_treat column "
                             f"{first_treat!r})")
        if self.control_group in ("never_treated", "not_yet_treated") and not (g[keep] == 0).any():
            raise ValueError("SunAbraham: there are no never-treated units; use "
                             "control_group='last_treated'")
        rows = np.flatnonzero(keep)
        relative = (position - start)[rows]
        _check_references(g[rows], relative, self.anticipation, first_treat)
        codes = pd.factorize(unit_codes[rows], sort=True)[0].astype(np.int64)
        return rows, g[rows], t[rows], relative, codes


def _check_references(g, relative, anticipation, column):
    """Every treated cohort needs rows in its reference period, or its cells are collinear."""
    treated = g > 0
    cohorts = np.unique(g[treated])
    seen = np.unique(g[treated & (relative == -1 - anticipation)])
    missing = cohorts[~np.isin(cohorts, seen)]
    if missing.size:
        raise ValueError(f"SunAbraham: cohort(s) {[_num(c) for c in missing]} of {column!r} have "
                         f"no observation in their reference period ({1 + anticipation} "
                         "period(s) before treatment); their effects are not identified")


def _num(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def _cells(g, t, relative, anticipation):
    """Cell code of each row (-1: no indicator) and the (cohort, relative period) labels,
    sorted by cohort, then relative period; labels give ``t - g`` in the data's units, the
    reference is by position (``relative == -1 - anticipation``)."""
    e = np.round(t - g, 9)
    has = (g > 0) & (relative != -1 - anticipation)
    cohort_code, cohorts = pd.factorize(g[has], sort=True)
    event_code, events = pd.factorize(e[has], sort=True)
    pair = cohort_code.astype(np.int64) * len(events) + event_code
    present, code = np.unique(pair, return_inverse=True)
    cells = np.full(g.size, -1, dtype=np.int64)
    cells[has] = code
    labels = [(float(cohorts[p // len(events)]), float(events[p % len(events)]))
              for p in present]
    return cells, labels


def _aggregation(labels, cells, w, kept, rank) -> dict:
    """Cohort-share weights per relative period and the overall post-period weights, as
    contrasts of the kept coefficients (rows: event times, then the overall ATT)."""
    mass = np.bincount(cells[cells >= 0], weights=w[cells >= 0], minlength=len(labels))
    position = np.cumsum(kept) - 1  # index among the kept coefficients
    events = sorted({e for _, e in labels})
    contrasts = np.zeros((len(events), rank))
    weights = {}
    for i, ev in enumerate(events):
        members = [j for j, (_, e) in enumerate(labels) if e == ev and kept[j]]
        total = mass[members].sum()
        weights[ev] = {labels[j][0]: mass[j] / total for j in members} if total > 0 else {}
        for j in members:
            contrasts[i, position[j]] = mass[j] / total
    post = [j for j, (_, e) in enumerate(labels) if e >= 0 and kept[j]]
    members = [[j for j, (_, e) in enumerate(labels) if e == ev and kept[j]] for ev in events]
    overall = np.zeros(rank)
    if post:
        overall[position[post]] = mass[post] / mass[post].sum()
    else:
        overall[:] = np.nan
    return {"events": events, "contrasts": np.vstack([contrasts, np.nan_to_num(overall)]),
            "event_contrasts": contrasts, "overall": overall, "weights": weights,
            "mass": mass, "position": position, "members": members + [post]}



def _jacobian(agg, coef) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives of the aggregates (event times, then the overall ATT) in the kept
    coefficients b and the cell masses m, ``theta_a = sum_{c in a} m_c b_c / M_a``:
    ``m_c / M_a`` and ``(b_c - theta_a) / M_a``; and the aggregates that exist."""
    rank, mass, position = coef.size, agg["mass"], agg["position"]
    jac = np.zeros((len(agg["members"]), rank + mass.size))
    rows = []
    for a, members in enumerate(agg["members"]):
        members = np.asarray(members, dtype=np.int64)
        total = mass[members].sum() if members.size else 0.0
        if not total > 0:
            continue
        b = coef[position[members]]
        theta = mass[members] @ b / total
        jac[a, position[members]] = mass[members] / total
        jac[a, rank + members] = (b - theta) / total
        rows.append(a)
    return jac, np.asarray(rows, dtype=np.int64)


def _aggregates(values, agg, rank) -> np.ndarray:
    """The aggregates from kept coefficients and cell masses ``values = (b, m)`` (a replicate's
    refit): cells without weight or coefficient in it are left out of their averages."""
    beta, mass = values[:rank], values[rank:]
    out = np.full(len(agg["members"]), np.nan)
    for a, members in enumerate(agg["members"]):
        members = np.asarray(members, dtype=np.int64)
        b, m = beta[agg["position"][members]], mass[members]
        ok = np.isfinite(b) & (m > 0)
        if ok.any():
            out[a] = m[ok] @ b[ok] / m[ok].sum()
    return out


def _estimated_weights_vcov(fit, var, agg, cells, w, unit_codes, design, cluster, vcov_type,
                            default_cluster, refit, name) -> np.ndarray:
    """Covariance of the aggregates (event times, then the overall ATT) with the cohort
    shares estimated: the delta method of ``theta_a = sum_{c in a} m_c b_c / M_a`` in the kept
    coefficients b and the cell masses m (the weighted row counts behind the shares), from
    their joint influence values (a unit's, cluster's or row's weighted rows in cell c are its
    influence on m_c), under the design the coefficients' variance used (same choice of
    clusters, unit-level totals when PSUs hold whole units, the regression small-sample factor
    on the coefficients). Replicate designs re-estimate b and m with each replicate's weights.
    ``vcov_type`` without an influence form (classical, hc2, hc3, hc2_bm) keeps its covariance
    of the fixed-weight contrasts and adds what the estimated masses add to the CR1/HC1 one."""
    coef = fit.coef[fit.kept]
    rank, n_cells = coef.size, agg["mass"].size
    jac, rows = _jacobian(agg, coef)
    out = np.full((jac.shape[0], jac.shape[0]), np.nan)
    if not rows.size:
        return out
    sel = np.ix_(rows, rows)
    inside = np.flatnonzero(cells >= 0)
    theta = np.concatenate([coef, agg["mass"]])

    def masses_by(codes, n_codes):
        table = np.zeros((n_codes, n_cells))
        np.add.at(table, (codes[inside], cells[inside]), w[inside])
        return table

    # the same design, clusters and level as regression_variance
    if design is not None and design.is_trivial and design.weight_type in ("aweight", "fweight"):
        design = None
    if design is not None and default_cluster and design.defines_clustering:
        cluster = None
    if design is not None:
        if cluster is not None:
            design = design.with_clusters(cluster)
        if design.replicate is not None:
            def reestimate(weights_r):
                masses = np.bincount(cells[inside], weights=weights_r[inside],
                                     minlength=n_cells)
                return np.concatenate([refit(weights_r), masses])
            # each aggregate (and pair) keeps the replicates in which it exists; the
            # regression's variance has already reported the replicates that lose a cohort
            estimate = Estimate(_aggregates(theta, agg, rank)[rows], None,
                                reestimate=lambda wr: _aggregates(reestimate(wr), agg, rank)[rows],
                                groups=rows.astype(str), name=name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[sel] = Inference(estimate, design, _checked=True).variance().vcov
            return out
        psi, design = _design_influence(fit, design, unit_codes, masses_by)
        inference = Inference(Estimate(theta, psi, name=name), design, _checked=True)
        out[sel] = inference.variance(jac[rows].T).vcov
        return out
    if cluster is not None:
        codes = np.asarray(cluster, dtype=np.int64)
        present = np.bincount(codes) > 0
        psi = np.hstack([fit.cluster_influence(codes, present.size)[present],
                         masses_by(codes, present.size)[present]])
        base = trivial_design(psi.shape[0])
    else:
        n_rows = cells.size
        psi = np.hstack([fit.influence(), masses_by(np.arange(n_rows), n_rows)])
        base = trivial_design(n_rows, fit.weights if fit.frequency else None)
    small_sample = (fit.n_obs - 1.0) / (fit.n_obs - fit.rank - fit.df_absorbed)
    factor = np.concatenate([np.full(rank, small_sample), np.ones(n_cells)])
    inference = Inference(Estimate(theta, psi, small_sample=factor, name=name), base,
                          _checked=True)
    full = inference.variance(jac[rows].T).vcov
    if vcov_type in ("hc1", "cr1"):
        out[sel] = full
        return out
    fixed = jac[rows].copy()
    fixed[:, rank:] = 0.0
    c = fixed[:, :rank]
    out[sel] = c @ var.vcov @ c.T + full - inference.variance(fixed.T).vcov
    return out


def _design_influence(fit, design, unit_codes, masses_by):
    """Joint influence values of (b, m) and the design they go with: per unit and the design
    of one row per unit when the PSUs hold whole units (same PSU totals), else per row."""
    n_units = int(unit_codes.max()) + 1
    first = np.empty(n_units, dtype=np.int64)
    first[unit_codes[::-1]] = np.arange(unit_codes.size)[::-1]
    if design.calibration is None and (design.psu == design.psu[first][unit_codes]).all():
        psi = np.hstack([fit.cluster_influence(unit_codes, n_units),
                         masses_by(unit_codes, n_units)])
        return psi, design.take(first)
    n_rows = unit_codes.size
    return np.hstack([fit.influence(), masses_by(np.arange(n_rows), n_rows)]), design
