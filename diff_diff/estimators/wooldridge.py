"""Extended two-way fixed effects (Wooldridge 2021): the saturated cohort x period
regression, on the weighted-least-squares core."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._grouping import label_codes
from .._warnings import warn_user
from ..results.wooldridge import WooldridgeDiDResults, contrast_layout
from ..survey.design import WEIGHT_TYPES, SurveyDesign
from .panel import _first_treat, check_constant_within_unit, numeric, require_columns
from .registry import register
from .regression import _Regression

CONTROL_GROUPS = ("not_yet_treated", "never_treated")
METHODS = ("ols", "logit", "poisson")
UNSUPPORTED = ("drop", "error")


def _count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


@register(aliases=("ETWFE",), data="panel", inference="regression", weight_types=WEIGHT_TYPES,
          bootstrap="wild", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat"))
class WooldridgeDiD(_Regression):
    """Extended two-way fixed effects (ETWFE; Wooldridge 2021; R/Python ``etwfe``).

    ``y_it = a_i + l_t + sum_{(g, t) cells} tau_gt 1{G_i = g, t} (+ X controls) + e_it``
    with unit and period effects absorbed and one coefficient per treated cohort and
    period: with ``control_group="not_yet_treated"`` the cells are the treated periods
    ``t >= g - anticipation`` (the not-yet-treated periods of every cohort and the
    never treated are the comparison); with ``"never_treated"`` every cohort x period
    cell but the reference ``g - 1 - anticipation`` (only never-treated units compare;
    the pre-treatment cells are placebo effects). ``tau_gt`` is ATT(g, t). The
    aggregations average the cells with weights proportional to their (weighted)
    number of treated observations (``weights="cell"``; ``"cohort_share"``: the
    cohort's share of the treated units, the same on a balanced panel): ``simple``
    (all treated cells), ``group``, ``calendar`` and ``event_study``; their standard
    errors are the delta method with the weights held fixed (as ``etwfe``'s ``emfx``).

    Parameters
    ----------
    method : {"ols", "logit", "poisson"}
        The linear model, or the nonlinear ETWFE of Wooldridge (2023): pooled logit
        (outcomes in [0, 1]) or Poisson (non-negative outcomes) quasi-maximum
        likelihood on an intercept, cohort and period dummies and the cells (cohort
        effects instead of unit effects, as the paper); ATT(g, t) is the weighted mean
        over the cell's observations of ``G(x'b) - G(x'b - tau_gt)`` (average
        structural functions with and without the cell's effect) and its standard
        error the delta method on the QMLE sandwich (clustered by unit, or ``cluster=``,
        or the survey design's; replicate designs refit). No covariates yet for these.
    control_group : {"not_yet_treated", "never_treated"}
    anticipation : int
    vcov_type : {"hc1", "classical", "hc2", "hc3", "cr1", "hc2_bm"}
        As :class:`SunAbraham`: ``hc1`` clusters by ``cluster`` or by unit (CR1).
    cluster : str, optional
    unsupported_period_action : {"drop", "error"}
        Periods in which every unit is treated (or, with ``"never_treated"``, no
        never-treated unit is observed) identify no cell: their rows are dropped with
        a warning, or an error is raised.
    alpha, rank_deficient_action, inference, n_bootstrap, bootstrap_weights, seed
        As the regression family.

    Examples
    --------
    >>> import diff_diff as dd
    >>> res = dd.WooldridgeDiD().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal",
    ...                              time="year", first_treat="first.treat")
    >>> round(res.att, 4)
    -0.0477
    """

    _allowed = {**_Regression._allowed, "method": METHODS, "control_group": CONTROL_GROUPS,
                "unsupported_period_action": UNSUPPORTED}
    _checks = {**_Regression._checks,
               "anticipation": (_count, "a non-negative integer")}

    def __init__(self, method="ols", control_group="not_yet_treated", anticipation=0,
                 vcov_type="hc1", cluster=None, alpha=0.05, rank_deficient_action="warn",
                 inference="analytic", n_bootstrap=0, bootstrap_weights="rademacher", seed=None,
                 unsupported_period_action="drop"):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            covariates: list[str] | None = None, survey_design: SurveyDesign | None = None,
            exovar=None, xtvar=None, xgvar=None) -> WooldridgeDiDResults:
        """Fit the saturated regression.

        Parameters
        ----------
        data : DataFrame
            Long panel (one row per unit and period); not modified.
        outcome, unit, time, first_treat : str
            Columns; ``first_treat`` is the first treated period (0 or inf: never
            treated), constant within unit.
        covariates : list of str, optional
            Controls entered linearly (time-varying ones; time-invariant ones are
            absorbed by the unit effects).
        survey_design : SurveyDesign, optional
        exovar, xtvar, xgvar
            diff-diff 3.x's covariate roles: ``exovar`` (controls entered as they are)
            is ``covariates``; ``xtvar`` (demeaned within cohort x period and interacted
            with the cells) and ``xgvar`` (interacted with the cohorts) are not
            available yet and raise.
        """
        self._validate()
        if xtvar is not None or xgvar is not None:
            raise ValueError("WooldridgeDiD: xtvar= and xgvar= (covariates interacted with "
                             "the cells or cohorts) are not available yet; covariates= (or "
                             "exovar=) enters controls linearly")
        if exovar is not None:
            exovar = [exovar] if isinstance(exovar, str) else list(exovar)
            covariates = ([covariates] if isinstance(covariates, str)
                          else list(covariates or [])) + exovar
        if self.method != "ols":
            return self._fit_nonlinear(data, outcome, unit, time, first_treat, covariates,
                                       survey_design)
        if self.n_bootstrap and self.inference != "wild_bootstrap":
            warn_user("WooldridgeDiD: n_bootstrap is used by inference='wild_bootstrap' only; "
                      "the standard errors are analytic")
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        require_columns(data, outcome=outcome, unit=unit, time=time, first_treat=first_treat,
                        covariates=covariates, cluster=self.cluster)
        rows, g, t, unit_codes, periods = self._sample(data, unit, time, first_treat)
        data = data.iloc[rows]
        y = numeric(data, outcome, "outcome")
        cells, labels = self._cells(g, t, periods)
        names = [f"{first_treat}[{_num(a)}]:{time}[{_num(b)}]" for a, b in labels]
        fit, x, absorb, weights, frequency, design, meta = self._cell_fit(
            data, y, cells, names, covariates, time, unit_codes, survey_design)
        k = len(labels)
        if not fit.kept[:k].all():
            lost = [lab for lab, kept in zip(names, fit.kept[:k]) if not kept]
            raise ValueError(f"WooldridgeDiD: cell(s) {lost[:5]} are not identified (collinear "
                             "with the fixed effects or covariates)")
        w = np.ones(y.size) if weights is None else weights
        inside = cells >= 0
        mass = np.bincount(cells[inside], weights=w[inside], minlength=k)
        unit_mass = _cohort_mass(g, unit_codes, w)
        one_way = self.vcov_type in ("classical", "hc2", "hc3") and self.cluster is None
        cluster = None if one_way else label_codes(data, self.cluster or unit,
                                                   "cluster" if self.cluster else "unit")[0]
        overall = np.zeros(fit.rank)
        treated_cells = np.array([b >= a for a, b in labels])  # ATTs: from treatment on
        overall[np.flatnonzero(treated_cells)] = mass[treated_cells] / mass[treated_cells].sum()
        groups = np.array([str(_num(a)) for a, _ in labels] + ["other"] * (fit.kept.size - k))
        contrasts = None
        if self.vcov_type == "hc2_bm":  # Bell-McCaffrey df for every reported contrast
            blocks = np.vstack([rows for _, rows in contrast_layout(labels, mass, unit_mass)])
            contrasts = np.zeros((blocks.shape[0], fit.rank))
            contrasts[:, :k] = blocks
        var, wild = self._infer(fit, y, x, frequency, absorb, design, cluster, overall,
                                contrasts=contrasts, vcov_type=self.vcov_type,
                                default_cluster=self.cluster is None, groups=groups[fit.kept])
        return WooldridgeDiDResults.from_parts(
            self, fit, var, labels, mass, unit_mass, meta, wild,
            n_units=int(unit_codes.max()) + 1,
            n_treated=int(np.unique(unit_codes[g > 0]).size), covariates=covariates)

    def _fit_nonlinear(self, data, outcome, unit, time, first_treat, covariates, survey_design):
        from .wooldridge_nonlinear import NonlinearETWFE

        if covariates:
            raise ValueError(f"WooldridgeDiD(method={self.method!r}): covariates are not "
                             "available for the nonlinear models yet (method='ols' takes them)")
        if self.inference == "wild_bootstrap":
            raise ValueError(f"WooldridgeDiD(method={self.method!r}): the wild bootstrap is for "
                             "the linear model; the nonlinear standard errors are the delta "
                             "method (or the survey design's)")
        if self.vcov_type not in ("hc1", "cr1"):
            raise ValueError(f"WooldridgeDiD(method={self.method!r}): vcov_type must be 'hc1' "
                             "(the QMLE sandwich, clustered by unit or cluster=)")
        if self.n_bootstrap:
            warn_user("WooldridgeDiD: n_bootstrap is not used by the nonlinear models; the "
                      "standard errors are the delta method")
        return NonlinearETWFE(self).fit(data, outcome, unit, time, first_treat, survey_design)

    # ------------------------------------------------------------------ sample and cells
    def _sample(self, data, unit, time, first_treat):
        t = numeric(data, time, "time")
        g = _first_treat(data, first_treat)
        unit_codes, units = label_codes(data, unit, "unit")
        check_constant_within_unit(g, unit_codes, units, first_treat)
        periods = np.unique(t)
        g = np.where(g > periods[-1], 0.0, g)  # treated after the panel: never treated in it
        keep = ~((g > 0) & (g - self.anticipation <= periods[0]))
        if not keep.all():
            warn_user(f"WooldridgeDiD: dropped {int((~keep).sum())} row(s) of units treated "
                      "from the first period (no untreated period to compare)")
        if not (g[keep] > 0).any():
            raise ValueError(f"WooldridgeDiD: no unit is treated (first_treat column "
                             f"{first_treat!r})")
        never = keep & (g == 0)
        if self.control_group == "never_treated" and not never.any():
            raise ValueError("WooldridgeDiD: there are no never-treated units; use "
                             "control_group='not_yet_treated'")
        # periods without any comparison observation identify no cell
        if self.control_group == "never_treated":
            compared = np.isin(periods, np.unique(t[never]))
        else:
            untreated = keep & ((g == 0) | (t < g - self.anticipation))
            compared = np.isin(periods, np.unique(t[untreated]))
        if not compared.all():
            bad = periods[~compared]
            if self.unsupported_period_action == "error":
                raise ValueError(f"WooldridgeDiD: period(s) {[_num(p) for p in bad]} have no "
                                 "comparison observation (every unit treated), so their cells "
                                 "are not identified; drop them or use "
                                 "unsupported_period_action='drop'")
            warn_user(f"WooldridgeDiD: dropped the rows of period(s) {[_num(p) for p in bad]}: "
                      "no comparison observation there (every unit treated)")
            keep &= ~np.isin(t, bad)
            periods = periods[compared]
        rows = np.flatnonzero(keep)
        codes = pd.factorize(unit_codes[rows], sort=True)[0].astype(np.int64)
        return rows, g[rows], t[rows], codes, periods

    def _cells(self, g, t, periods):
        """Cell code per row (-1: none) and (cohort, period) labels sorted by both."""
        treated = g > 0
        if self.control_group == "not_yet_treated":
            has = treated & (t >= g - self.anticipation)
        else:
            reference = np.array([_before(periods, gg, 1 + self.anticipation) for gg in g])
            has = treated & (t != reference)
        pairs = pd.MultiIndex.from_arrays([g[has], t[has]])
        code, uniques = pd.factorize(pairs, sort=True)
        cells = np.full(g.size, -1, dtype=np.int64)
        cells[has] = code
        labels = [(float(a), float(b)) for a, b in uniques]
        return cells, labels


def _before(periods, g, steps):
    """The observed period ``steps`` positions before cohort ``g``'s first treated period."""
    start = int(np.searchsorted(periods, g))
    return periods[start - steps] if start - steps >= 0 else np.nan


def _cohort_mass(g, unit_codes, w):
    """(Weighted) number of treated units per cohort: the first row of each unit."""
    first = np.unique(unit_codes, return_index=True)[1]
    treated = first[g[first] > 0]
    cohorts, code = np.unique(g[treated], return_inverse=True)
    return dict(zip(cohorts.tolist(), np.bincount(code, weights=w[treated]).tolist()))


def _num(value):
    value = float(value)
    return int(value) if value.is_integer() else value
