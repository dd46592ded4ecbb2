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
        or the survey design's; replicate designs refit). Covariates enter the index with
        the linear model's terms (levels, cohort and period interactions - all of them:
        there are no unit effects to absorb any - and the cells' interactions); ATT(g, t)
        is then the weighted mean over the cell's rows of ``G(x_i'b) - G(x0_i'b)``
        (``x0_i``: without any treatment term), as ``etwfe``'s ``emfx``, and its delta
        method holds the covariates at their values (as ``emfx``; replicate refits
        re-average them).
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
    cohort_trends : bool, default False
        Cohort-specific linear trends (Wooldridge 2021 section 8): one term
        ``1{G_i = g} * t`` per treated cohort (without never-treated units the last
        cohort is the baseline and gets none), so ATT(g, t) is the cell's departure from
        its cohort's linear pre-treatment trend; each trended cohort needs two untreated
        periods (else ``ValueError``), and ``control_group="never_treated"`` (every
        pre-period but one in its own cell) leaves the trends unidentified (``ValueError``).
        The slopes are ``results.cohort_trend_coefs``. Logit/Poisson: the trend enters
        the index.
    demean_covariates : bool, default True
        How the cells' covariate interactions are parametrised (3.x's option, Stata
        ``jwdid``'s ``xasis`` when False): centred at each cell's (weighted) mean, so the
        linear model's cell coefficient is ATT(g, t); or the raw covariate, so the cell
        coefficient is the cell's effect at covariate value 0. The model is the same
        either way and so are the reported ATTs and their standard errors (ATT(g, t) is
        always the mean effect over the cell's rows, computed from the coefficients
        when they are not centred, as ``jwdid``'s ``estat`` after ``xasis``); the cell
        coefficients are ``results.cell_coefficients``. (3.x with True also centred the
        *level* of an ``xtvar`` within cohort x period, which changes the control model;
        that is not done here.)

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
               "anticipation": (_count, "a non-negative integer"),
               "cohort_trends": (lambda v: isinstance(v, bool), "True or False"),
               "demean_covariates": (lambda v: isinstance(v, bool), "True or False")}

    def __init__(self, method="ols", control_group="not_yet_treated", anticipation=0,
                 vcov_type="hc1", cluster=None, alpha=0.05, rank_deficient_action="warn",
                 inference="analytic", n_bootstrap=0, bootstrap_weights="rademacher", seed=None,
                 unsupported_period_action="drop", cohort_trends=False, demean_covariates=True):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            covariates: list[str] | None = None, survey_design: SurveyDesign | None = None,
            exovar=None, xtvar=None, xgvar=None, xvar=None) -> WooldridgeDiDResults:
        """Fit the saturated regression.

        Parameters
        ----------
        data : DataFrame
            Long panel (one row per unit and period); not modified.
        outcome, unit, time, first_treat : str
            Columns; ``first_treat`` is the first treated period (0 or inf: never
            treated), constant within unit.
        covariates : list of str, optional
            Controls in the ETWFE sense (Wooldridge 2021 section 6; the ``etwfe``
            formula's right-hand side): each control ``x`` enters at its level, interacted
            with the treated-cohort dummies and with the period dummies (all but the
            first period), and centred at its (weighted) mean in each cell and interacted
            with that cell's indicator, so the cell coefficient is ATT(g, t) at the cell's
            covariate mean (the average over the cell's treated observations of the
            effect, which may vary with ``x``). Terms the unit effects absorb (the level
            and cohort interactions of a control constant within units) are left out.
        survey_design : SurveyDesign, optional
        exovar, xtvar, xgvar : str or list of str, optional
            diff-diff 3.x's covariate roles: ``exovar`` enters as it is (one linear
            term, no interaction); ``xtvar`` enters at its level and, centred within
            cohort x period (at each cell's mean), interacted with every cell (effect
            heterogeneity); ``xgvar`` enters at its level and interacted with the
            treated-cohort dummies. A column named in several roles (or also in
            ``covariates``) gets the union of their terms; ``covariates`` is ``xtvar`` and
            ``xgvar`` together plus the period interactions.
        xvar : str, optional
            ``etwfe``'s heterogeneity variable (not a control): every cell interacted with
            ``xvar`` centred at its cohort's (weighted) mean (cohorts without a cell, the
            never treated among them, keep the raw value, as ``etwfe``) and ``xvar`` so
            centred times the period dummies (all but the first); no level or cohort
            terms (the unit effects absorb them for a unit-constant ``xvar``; add it to
            ``exovar`` or ``xgvar`` otherwise, not to a role with cell interactions).
            ATT(g, t) is then the weighted mean over the cell's rows of the row effects;
            ``results.aggregate(kind, by_xvar=True)`` gives the effects at each value of
            ``xvar`` (a discrete variable: at most 50 distinct values among the treated
            rows). Logit/Poisson: the same terms in the index (centred at unweighted
            cohort means, as ``etwfe``), the effects by value are ASF means.
        """
        self._validate()
        spec = _covariate_terms(covariates, exovar, xtvar, xgvar)
        if xvar is not None:
            if not isinstance(xvar, str):
                raise TypeError(f"xvar must be one column name (str), got {xvar!r}")
            if "cells" in spec.get(xvar, ()):
                raise ValueError(f"xvar {xvar!r} is also given a role with cell interactions "
                                 "(covariates= or xtvar=): the two interactions would be the "
                                 "same columns; give it to exovar or xgvar instead")
        if self.cohort_trends and self.control_group == "never_treated":
            raise ValueError("WooldridgeDiD(cohort_trends=True): with "
                             "control_group='never_treated' every pre-treatment period of a "
                             "cohort but its reference has its own cell, so a cohort's trend "
                             "is not identified; use control_group='not_yet_treated'")
        if self.method != "ols":
            return self._fit_nonlinear(data, outcome, unit, time, first_treat, spec,
                                       survey_design, xvar)
        if self.n_bootstrap and self.inference != "wild_bootstrap":
            warn_user("WooldridgeDiD: n_bootstrap is used by inference='wild_bootstrap' only; "
                      "the standard errors are analytic")
        names_x = list(spec)
        require_columns(data, outcome=outcome, unit=unit, time=time, first_treat=first_treat,
                        covariates=names_x + ([xvar] if xvar else []), cluster=self.cluster)
        rows, g, t, unit_codes, periods = self._sample(data, unit, time, first_treat)
        data = data.iloc[rows]
        y = numeric(data, outcome, "outcome")
        cells, labels = self._cells(g, t, periods)
        names = [f"{first_treat}[{_num(a)}]:{time}[{_num(b)}]" for a, b in labels]
        k = len(labels)
        trend_cohorts = self._trend_cohorts(g, periods) if self.cohort_trends else []
        aux = None
        if spec or trend_cohorts or xvar:
            fit, x, absorb, weights, frequency, design, meta, aux = self._covariate_fit(
                data, y, cells, names, spec, trend_cohorts, g, t, periods, unit_codes, time,
                survey_design, xvar)
        else:
            fit, x, absorb, weights, frequency, design, meta = self._cell_fit(
                data, y, cells, names, [], time, unit_codes, survey_design)
        if not fit.kept[:k].all():
            lost = [lab for lab, kept in zip(names, fit.kept[:k]) if not kept]
            raise ValueError(f"WooldridgeDiD: cell(s) {lost[:5]} are not identified (collinear "
                             "with the fixed effects, trends or covariates)")
        w = np.ones(y.size) if weights is None else weights
        inside = cells >= 0
        mass = np.bincount(cells[inside], weights=w[inside], minlength=k)
        unit_mass = _cohort_mass(g, unit_codes, w)
        one_way = self.vcov_type in ("classical", "hc2", "hc3") and self.cluster is None
        cluster = None if one_way else label_codes(data, self.cluster or unit,
                                                   "cluster" if self.cluster else "unit")[0]
        transform = sub = None
        if xvar or (spec and not self.demean_covariates):
            # cells (and cells by xvar value) as linear maps of the coefficients
            transform, sub = _cell_maps(fit, names, cells, w, aux, xvar)
        overall = np.zeros(fit.rank)
        treated_cells = np.array([b >= a for a, b in labels])  # ATTs: from treatment on
        overall[np.flatnonzero(treated_cells)] = mass[treated_cells] / mass[treated_cells].sum()
        if transform is not None:
            overall = overall[:k] @ transform
        groups = np.array([str(_num(a)) for a, _ in labels] + ["other"] * (fit.kept.size - k))
        contrasts = None
        if self.vcov_type == "hc2_bm":  # Bell-McCaffrey df for every reported contrast
            blocks = np.vstack([rows for _, rows in contrast_layout(labels, mass, unit_mass)])
            contrasts = np.zeros((blocks.shape[0], fit.rank))
            contrasts[:, :k] = blocks
            if transform is not None:
                contrasts = blocks @ transform
        var, wild = self._infer(fit, y, x, frequency, absorb, design, cluster, overall,
                                contrasts=contrasts, vcov_type=self.vcov_type,
                                default_cluster=self.cluster is None, groups=groups[fit.kept])
        res = WooldridgeDiDResults.from_parts(
            self, fit, var, labels, mass, unit_mass, meta, wild,
            n_units=int(unit_codes.max()) + 1,
            n_treated=int(np.unique(unit_codes[g > 0]).size), covariates=names_x,
            transform=transform)
        res.covariate_terms = {c: sorted(terms) for c, terms in spec.items()}
        res.xvar = xvar
        res.cell_coefficients = res._cells[["group", "time"]].assign(
            coefficient=fit.coef[fit.kept][:k])
        if sub is not None:
            rows, sub_labels, sub_mass = sub
            res._set_xvar_cells(sub_labels, sub_mass, rows @ fit.coef[fit.kept],
                                rows @ var.vcov @ rows.T)
        if trend_cohorts:
            where = {n: j for j, n in enumerate(fit.names)}
            res.cohort_trend_coefs = {_num(c): float(fit.coef[where[f"trend[{_num(c)}]"]])
                                      for c in trend_cohorts}
        return res

    def _trend_cohorts(self, g, t_periods):
        """Cohorts that get a linear trend (every treated cohort; without never-treated units
        the last cohort is the baseline), each with at least two untreated periods."""
        cohorts = np.unique(g[g > 0])
        if not (g == 0).any():
            cohorts = cohorts[:-1]
        for c in cohorts:
            pre = int((t_periods < c - self.anticipation).sum())
            if pre < 2:
                raise ValueError(f"WooldridgeDiD(cohort_trends=True): cohort {_num(c)} has "
                                 f"{pre} untreated period(s) before its treatment; its linear "
                                 "trend needs at least two (drop cohort_trends or that cohort)")
        return list(cohorts)

    def _covariate_fit(self, data, y, cells, names, spec, trend_cohorts, g, t, periods,
                       unit_codes, time, survey_design, xvar=None):
        """The regression with covariate terms and cohort trends (a full design, unit and
        period effects absorbed). Columns: the cells, then each cell's covariate
        interactions (centred at the cell's weighted mean, so the cell coefficient stays
        ATT(g, t)), the cohort trends, then the controls (levels, cohort and period
        interactions). Returns what ``_cell_fit`` returns."""
        time_codes = label_codes(data, time, "time")[0]
        weights, frequency, design, meta = self._weights(data, survey_design)
        w = np.ones(y.size) if weights is None else weights
        k, n = len(names), y.size
        inside = np.flatnonzero(cells >= 0)
        code = cells[inside]
        cell_w = np.bincount(code, weights=w[inside], minlength=k)
        cohorts = np.unique(g[g > 0])
        if not (g == 0).any():  # the last cohort is the reference of the cohort terms
            cohorts = cohorts[:-1]
        columns, col_names, controls = [np.zeros((n, k))], list(names), []
        columns[0][inside, code] = 1.0
        values = {c: numeric(data, c, "covariate") for c in spec}
        aux = {"centres": {}, "values": values}
        for c, terms in spec.items():
            if "cells" not in terms:
                continue
            x = values[c]
            centre = np.divide(np.bincount(code, weights=(w * x)[inside], minlength=k), cell_w,
                               out=np.zeros(k), where=cell_w > 0)
            if not self.demean_covariates:  # jwdid's xasis: the raw covariate
                centre = np.zeros(k)
            aux["centres"][c] = centre
            block = np.zeros((n, k))
            block[inside, code] = x[inside] - centre[code]
            columns.append(block)
            col_names += [f"{name}:{c}" for name in names]
        if xvar:  # etwfe's heterogeneity variable, centred within the cohorts with cells
            xv = numeric(data, xvar, "xvar")
            cohort_values, g_code = np.unique(g, return_inverse=True)
            g_code = g_code.reshape(-1)
            sums = np.bincount(g_code, weights=w * xv)
            with_cells = np.zeros(cohort_values.size, bool)
            with_cells[np.unique(g_code[inside])] = True
            dm = xv - np.where(with_cells, sums / np.bincount(g_code, weights=w), 0.0)[g_code]
            block = np.zeros((n, k))
            block[inside, code] = dm[inside]
            columns.append(block)
            col_names += [f"{name}:{xvar}" for name in names]
            columns.append(np.column_stack([(t == s) * dm for s in periods[1:]]))
            extra = [f"{xvar}_dm:{time}[{_num(s)}]" for s in periods[1:]]
            col_names += extra
            controls += extra
            aux["xvar"], aux["dm"] = xv, dm
        for c in trend_cohorts:
            columns.append(((g == c) * t)[:, None])
            col_names.append(f"trend[{_num(c)}]")
        for c, terms in spec.items():
            x = values[c]
            counts = np.bincount(unit_codes)
            unit_mean = np.bincount(unit_codes, weights=x) / counts
            absorbed = np.allclose(x, unit_mean[unit_codes], rtol=0,
                                   atol=1e-12 * max(1.0, np.abs(x).max()))
            generated = terms != {"level"}  # a role beyond the linear term
            if "level" in terms and not (absorbed and generated):
                columns.append(x[:, None])
                col_names.append(c)
                if generated:
                    controls.append(c)
            if "cohort" in terms and not absorbed:
                columns.append(np.column_stack([(g == a) * x for a in cohorts]))
                extra = [f"{c}:cohort[{_num(a)}]" for a in cohorts]
                col_names += extra
                controls += extra
            if "period" in terms:
                columns.append(np.column_stack([(t == s) * x for s in periods[1:]]))
                extra = [f"{c}:{time}[{_num(s)}]" for s in periods[1:]]
                col_names += extra
                controls += extra
        x = np.asfortranarray(np.column_stack(columns))
        absorb = [unit_codes, time_codes]
        if self.vcov_type in ("hc2", "hc3", "hc2_bm"):  # leverages need the periods in x
            n_t = int(time_codes.max()) + 1
            dummies = np.zeros((n, n_t - 1))
            later = np.flatnonzero(time_codes > 0)
            dummies[later, time_codes[later] - 1] = 1.0
            x = np.asfortranarray(np.column_stack([x, dummies]))
            extra = [f"{time}[{j}]" for j in range(1, n_t)]
            col_names += extra
            controls += extra
            absorb = [unit_codes]
        fit = self._wls(y, x, col_names, weights, frequency, absorb,
                        expected_collinear=tuple(controls))
        return fit, x, absorb, weights, frequency, design, meta, aux

    def _fit_nonlinear(self, data, outcome, unit, time, first_treat, spec, survey_design,
                       xvar=None):
        from .wooldridge_nonlinear import NonlinearETWFE

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
        return NonlinearETWFE(self, spec, xvar).fit(data, outcome, unit, time, first_treat,
                                                    survey_design)

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
            cohorts, of_row = np.unique(g, return_inverse=True)
            reference = np.array([_before(periods, gg, 1 + self.anticipation)
                                  for gg in cohorts])[of_row.reshape(-1)]
            has = treated & (t != reference)
        g_values, g_code = np.unique(g[has], return_inverse=True)
        t_values, t_code = np.unique(t[has], return_inverse=True)
        pairs, code = np.unique(g_code.reshape(-1) * t_values.size + t_code.reshape(-1),
                                return_inverse=True)  # sorted by cohort, then period
        cells = np.full(g.size, -1, dtype=np.int64)
        cells[has] = code.reshape(-1)
        labels = [(float(g_values[p // t_values.size]), float(t_values[p % t_values.size]))
                  for p in pairs]
        return cells, labels


ROLE_TERMS = {"covariates": {"level", "cohort", "period", "cells"}, "exovar": {"level"},
              "xtvar": {"level", "cells"}, "xgvar": {"level", "cohort"}}


def _covariate_terms(covariates, exovar, xtvar, xgvar):
    """``{column: terms}`` in the order the columns are named: the union of the terms of
    every role a column is given (``ROLE_TERMS``)."""
    spec = {}
    for role, value in (("covariates", covariates), ("exovar", exovar), ("xtvar", xtvar),
                        ("xgvar", xgvar)):
        if value is None:
            continue
        for c in [value] if isinstance(value, str) else list(value):
            if not isinstance(c, str):
                raise TypeError(f"{role} must hold column names, got {c!r}")
            spec.setdefault(c, set()).update(ROLE_TERMS[role])
    return spec


MAX_XVAR_LEVELS = 50


def _cell_maps(fit, names, cells, w, aux, xvar=None):
    """The cells' ATTs (the weighted means over their rows of the row effects) as a
    ``(k, rank)`` map of the kept coefficients (with ``xvar`` or uncentred covariate
    interactions), and - for a discrete ``xvar`` - the same for every (cell, value of
    ``xvar``): ``(rows, labels, mass)`` (``None`` without ``xvar`` or when it has more
    than ``MAX_XVAR_LEVELS`` values in the cells)."""
    kept_names = list(np.asarray(fit.names, dtype=object)[fit.kept])
    where = {name: j for j, name in enumerate(kept_names)}
    k = len(names)
    inside = np.flatnonzero(cells >= 0)
    code = cells[inside]
    wi = w[inside]

    def means(group, n_groups, values):
        total = np.bincount(group, weights=wi, minlength=n_groups)
        return np.bincount(group, weights=wi * values, minlength=n_groups) / np.where(
            total > 0, total, 1.0), total

    def rows_for(group, n_groups, cell_of):
        out = np.zeros((n_groups, len(kept_names)))
        out[np.arange(n_groups), [where[names[j]] for j in cell_of]] = 1.0
        total = np.bincount(group, weights=wi, minlength=n_groups)
        pieces = [(xvar, means(group, n_groups, aux["dm"][inside])[0])] if xvar else []
        for c, centre in aux["centres"].items():
            x = aux["values"][c][inside]
            pieces.append((c, means(group, n_groups, x - centre[code])[0]))
        for c, mean in pieces:
            for r, j in enumerate(cell_of):
                column = where.get(f"{names[j]}:{c}")
                if column is not None:  # a dropped interaction contributes nothing
                    out[r, column] += mean[r]
        return out, total

    transform, _ = rows_for(code, k, np.arange(k))
    if not xvar:
        return transform, None
    levels, level_code = np.unique(aux["xvar"][inside], return_inverse=True)
    if levels.size > MAX_XVAR_LEVELS:
        return transform, None
    pair, sub_code = np.unique(code * levels.size + level_code.reshape(-1),
                               return_inverse=True)
    sub_cell = pair // levels.size
    rows, mass = rows_for(sub_code.reshape(-1), pair.size, sub_cell)
    labels = [(int(j), float(levels[p % levels.size])) for j, p in zip(sub_cell, pair)]
    return transform, (rows, labels, mass)


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
