"""Callaway & Sant'Anna (2021) group-time average treatment effects."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..results.callaway_santanna import CallawaySantAnnaResults
from ..survey.design import SurveyDesign
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_int, is_prob
from .drdid import ESTIMATORS, ESTIMATORS_RC, EstimationError, means_did_rc, propensity
from .panel import UnitPanel, build_rows, build_unit_panel
from .registry import register


LEGACY_AGGREGATES = (None, "simple", "event_study", "group", "all")


@dataclass(frozen=True, eq=False)
class Cells:
    """The (g, t) cells: cohort, period, base period (indices into ``times``)."""

    group: np.ndarray
    time: np.ndarray
    base: np.ndarray  # index of the base period
    current: np.ndarray  # index of the period
    post: np.ndarray  # bool: t >= g


@register(aliases=("CS",), data="panel or cross-section", inference="influence", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat",
                               covariates=["x1"]))
class CallawaySantAnna(Estimator):
    """Group-time ATTs and their aggregations (Callaway & Sant'Anna 2021).

    ATT(g, t) compares the outcome change from a base period to period t of
    the cohort first treated in g with that of a comparison group (never
    treated, or not yet treated by t), using outcome regression (``reg``),
    inverse probability weighting (``ipw``) or the doubly robust combination
    (``dr``) of Sant'Anna & Zhao (2020), with covariates from the base period.
    Every standard error comes from the unit-level influence functions through
    the library's inference engine: independent units, clusters, a survey
    design (Taylor linearization, replicate weights) or a multiplier
    bootstrap. Point estimates and aggregations follow R ``did::att_gt`` and
    ``did::aggte``.

    Parameters
    ----------
    control_group : {"never_treated", "not_yet_treated"}
    anticipation : int
        Periods of anticipation (base period ``g - anticipation - 1``).
    estimation_method : {"dr", "ipw", "reg"}
    alpha : float
        1 - confidence level.
    cluster : str, optional
        Column (constant within unit) to cluster on, without a survey design.
    n_bootstrap : int
        Multiplier bootstrap draws (0: analytic standard errors). Draws are
        taken per PSU within strata (per unit without a design); standard
        errors are the standard deviations of the draws, whose expectation is
        the analytic (Taylor) variance, and uniform bands use the sup-t
        critical value. (R ``did`` reports an interquartile-range based
        standard error instead.)
    bootstrap_weights : {"rademacher", "mammen", "webb"}
    seed : int, optional
    base_period : {"varying", "universal"}
    cband : bool
        Uniform (sup-t) bands from the bootstrap (needs ``n_bootstrap > 0``).
    pscore_trim : float
        Comparison units with an estimated propensity above ``1 - pscore_trim``
        are left out (ipw, dr). R ``DRDID`` trims the same way at 0.995, i.e.
        ``pscore_trim=0.005``.
    panel : bool
        Panel data (True), or repeated cross-sections (False): every row is a
        separately sampled unit and each ATT(g, t) uses the
        repeated-cross-section estimators of Sant'Anna & Zhao (R
        ``DRDID::reg_did_rc``, ``std_ipw_did_rc``, ``drdid_rc``); ``unit`` may
        then be None.
    allow_unbalanced_panel : bool
        False: units missing a period are dropped (with a warning) to balance
        the panel, as R ``did`` does. True: keep every observation and use the
        repeated-cross-section estimators, with influence values summed by
        unit (so standard errors are clustered by unit); a panel that is in
        fact balanced uses the panel estimators (as R ``did`` >= 2.3).
    vcov_type : {"hc1"}
        Accepted for diff-diff 3.x compatibility: the variance of the
        influence functions is the design's (independent units, clusters or
        the survey design); no other type applies.

    Examples
    --------
    >>> from diff_diff import CallawaySantAnna, load_mpdta
    >>> res = CallawaySantAnna(estimation_method="reg").fit(
    ...     load_mpdta(), outcome="lemp", unit="countyreal", time="year",
    ...     first_treat="first.treat")
    >>> round(res.overall_att, 4)
    -0.04
    """

    _allowed = {
        **INFERENCE_ALLOWED,
        "control_group": ("never_treated", "not_yet_treated"),
        "estimation_method": ("dr", "ipw", "reg"),
        "base_period": ("varying", "universal"),
        "panel": (True, False),
        "allow_unbalanced_panel": (True, False),
    }
    _checks = {
        **INFERENCE_CHECKS,
        "anticipation": (lambda v: is_int(v, 0), "a non-negative integer"),
        "pscore_trim": (lambda v: is_prob(v) and v < 0.5, "in (0, 0.5)"),
    }
    _results_class = CallawaySantAnnaResults

    def __init__(
        self,
        control_group: str = "never_treated",
        anticipation: int = 0,
        estimation_method: str = "dr",
        alpha: float = 0.05,
        cluster: str | None = None,
        n_bootstrap: int = 0,
        bootstrap_weights: str = "rademacher",
        seed: int | None = None,
        base_period: str = "varying",
        cband: bool = True,
        pscore_trim: float = 0.01,
        panel: bool = True,
        allow_unbalanced_panel: bool = False,
        vcov_type: str = "hc1",
    ):
        self._store(locals())

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        data: pd.DataFrame,
        outcome: str,
        unit: str | None,
        time: str,
        first_treat: str,
        covariates: list[str] | None = None,
        survey_design: SurveyDesign | None = None,
        aggregate: str | None = None,
        balance_e: int | None = None,
    ):
        """Estimate every ATT(g, t) and the overall, event-study and group aggregations.

        Parameters
        ----------
        data : DataFrame
            Long panel: one row per unit and period. Not modified.
        outcome, unit, time, first_treat : str
            Columns; ``first_treat`` is the first treated period, 0 or inf for
            never-treated units, constant within unit.
        covariates : list of str, optional
            Covariates (values from each comparison's base period).
        survey_design : SurveyDesign, optional
            A ``pweight`` design whose columns are constant within unit.
        aggregate : {"simple", "event_study", "group", "all"}, optional
            diff-diff 3.x: compute these aggregations during the fit. They are
            always available afterwards (``event_study_effects``,
            ``group_effects``, :meth:`~CallawaySantAnnaResults.aggregate`), so
            this only moves the work; a ``FutureWarning`` says so.
        balance_e : int, optional
            diff-diff 3.x: the event study keeps cohorts observed at least
            ``balance_e`` periods after treatment (as ``aggregate("dynamic",
            balance_e=...)``); ``event_study_effects`` and the pre-trend test
            then use it.

        Returns
        -------
        CallawaySantAnnaResults
        """
        check_legacy_aggregation("CallawaySantAnna", aggregate, balance_e)
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        res = self._fit(data, survey_design, dict(
            outcome=outcome, unit=unit if self.panel else None, time=time,
            first_treat=first_treat, covariates=covariates), balance_e=balance_e)
        return apply_legacy_aggregation("CallawaySantAnna", res, aggregate)

    def _sample(self, data, columns, balance_e=None):
        c = columns
        cov = c["covariates"] or None
        if self.panel and (not self.allow_unbalanced_panel
                           or _is_balanced(data, c["outcome"], c["unit"], c["time"], cov)):
            panel = build_unit_panel(data, c["outcome"], c["unit"], c["time"], c["first_treat"],
                                     cov, "CallawaySantAnna")
            panel, dropped = _drop_always_treated(panel, self.anticipation)
            return Sample((panel, None, dropped, balance_e), panel.unit_rows, c["unit"], columns)
        rows = build_rows(data, c["outcome"], c["unit"], c["time"], c["first_treat"], cov,
                          "CallawaySantAnna")
        rows, dropped = _drop_always_treated_rows(rows, self.anticipation)
        panel = _unit_view(rows)
        # unbalanced panel: units sampled, rows are their observations;
        # repeated cross-sections: every row is a sampled unit
        arrays = (panel, rows, dropped, balance_e)
        if self.panel:
            return Sample(arrays, panel.unit_rows, c["unit"], columns)
        return Sample(arrays, rows.rows, None, columns)

    def _estimate(self, sample, design):
        panel, rows, dropped, balance_e = sample.arrays
        g = panel.first_treat
        if not (g > 0).any():
            raise ValueError(
                "CallawaySantAnna: every treated unit is treated from the first period, so none "
                "has a pre-treatment period" if dropped else
                f"CallawaySantAnna: no unit is treated (first_treat column "
                f"{sample.columns['first_treat']!r} is 0, inf or after the last period for "
                "every unit)")
        if self.control_group == "never_treated" and not (g == 0).any():
            raise ValueError(
                "CallawaySantAnna: there are no never-treated units (first_treat 0 or inf, or "
                "first treated after the last period) to compare with; every unit is "
                "eventually treated - use control_group='not_yet_treated'")
        cells = _cells(panel, self.anticipation, self.base_period)
        if cells.group.size == 0:
            raise ValueError("CallawaySantAnna: no treated cohort has a pre-treatment period")
        settings = (cells, self.control_group, self.anticipation, self.estimation_method,
                    self.pscore_trim)
        core = _Core(panel, *settings) if rows is None else _RCCore(rows, *settings)
        weights = design.weights
        att, psi, n_treated, n_control = core.estimate(weights, with_influence=True)
        pg = core.cohort_shares(weights)

        estimate = Estimate(np.concatenate([att, pg]),
                            CohortShareBasis(psi, panel.first_treat, weights),
                            reestimate=core.theta, name="CallawaySantAnna")
        return SimpleNamespace(estimate=estimate, panel=panel, cells=cells, att=att, psi=psi,
                               pg=pg, n_treated=n_treated, n_control=n_control, dropped=dropped,
                               balance_e=balance_e)


def check_legacy_aggregation(name: str, aggregate, balance_e) -> None:
    """Refuse bad values of the diff-diff 3.x fit keywords ``aggregate`` and ``balance_e``."""
    if aggregate not in LEGACY_AGGREGATES:
        raise ValueError(f"{name}: aggregate must be one of {list(LEGACY_AGGREGATES)}, "
                         f"got {aggregate!r}")
    if balance_e is not None and not is_int(balance_e, 0):
        raise ValueError(f"{name}: balance_e must be None or a non-negative integer, "
                         f"got {balance_e!r}")


def apply_legacy_aggregation(name: str, res, aggregate):
    """diff-diff 3.x's ``fit(aggregate=...)``: compute those tables now (a FutureWarning says
    they are always available after the fit); returns ``res``."""
    if aggregate is not None:
        warn_user(f"{name}: fit(aggregate=...) is accepted for diff-diff 3.x code; every "
                  "aggregation is available after the fit (event_study_effects, "
                  "group_effects, results.aggregate(...))", FutureWarning)
        for kind in ("simple", "event_study", "group") if aggregate == "all" else (aggregate,):
            res.to_dataframe("overall" if kind == "simple" else kind)
    return res


def _drop_always_treated(panel, anticipation, name="CallawaySantAnna"):
    """Units treated by the first period (plus anticipation) have no pre-period: drop them
    (with a warning naming the estimator); cohorts after the last period become never
    treated."""
    g = panel.first_treat
    first = panel.times[0]
    bad = (g > 0) & (g <= first + anticipation)
    late = g > panel.times[-1]
    if late.any():  # first treated after the last period: never treated within the window
        g = np.where(late, 0.0, g)
    if bad.any():
        warn_user(
            f"{name}: dropped {int(bad.sum())} unit(s) already treated in the first "
            "period (no pre-treatment period)")
    keep = ~bad
    from dataclasses import replace

    if keep.all():
        return replace(panel, first_treat=g), 0
    return (
        replace(
            panel,
            units=panel.units[keep],
            y=panel.y[keep],
            first_treat=g[keep],
            x=None if panel.x is None else panel.x[keep],
            unit_rows=panel.unit_rows[keep],
        ),
        int(bad.sum()),
    )


def _is_balanced(data, outcome, unit, time, covariates) -> bool:
    """Every unit observed, with outcome and covariates, in every period (R did >= 2.3 then
    uses the panel estimators even with allow_unbalanced_panel=True)."""
    cols = [outcome] + list(covariates or [])
    if data[cols].isna().any().any():
        return False
    n_units, n_times = data[unit].nunique(), data[time].nunique()
    return len(data) == n_units * n_times and not data.duplicated([unit, time]).any()


def _drop_always_treated_rows(rows, anticipation):
    g = rows.first_treat
    bad = (g > 0) & (g <= rows.times[0] + anticipation)
    g = np.where(g > rows.times[-1], 0.0, g)
    if bad.any():
        warn_user(
            f"CallawaySantAnna: dropped {int(bad.sum())} observation(s) of units already treated "
            "in the first period (no pre-treatment period)")
    keep = ~bad
    unit_code, units = pd.factorize(rows.unit_code[keep], sort=True)
    from dataclasses import replace

    from .panel import any_occurrence

    unit_code = unit_code.astype(np.int64)
    return replace(
        rows, y=rows.y[keep], time_code=rows.time_code[keep], first_treat=g[keep],
        x=None if rows.x is None else rows.x[keep], unit_code=unit_code,
        units=rows.units[units], unit_rows=rows.rows[keep][any_occurrence(unit_code, units.size)],
        rows=rows.rows[keep],
    ), int(bad.sum())


def _unit_view(rows) -> UnitPanel:
    """The unit-level view the results need: cohort and a data row per unit."""
    n_units = rows.units.size
    first = np.empty(n_units)
    first[rows.unit_code] = rows.first_treat
    return UnitPanel(units=rows.units, times=rows.times, y=np.zeros((n_units, 0)),
                     first_treat=first, x=None, unit_rows=rows.unit_rows, n_rows=rows.y.size)


def _cells(panel, anticipation, base_period) -> Cells:
    """Enumerate (g, t) cells and their base periods as R ``did`` does."""
    times = panel.times
    n_t = times.size
    groups = np.unique(panel.first_treat[panel.first_treat > 0])
    rows = []
    for g in groups:
        pre = np.flatnonzero(times + anticipation < g)
        if pre.size == 0:
            continue
        last_pre = int(pre[-1])
        start = 1 if base_period == "varying" else 0
        for j in range(start, n_t):
            post = g <= times[j]
            if post or base_period == "universal":
                base = last_pre
            else:
                base = j - 1
            rows.append((g, times[j], base, j, post))  # base == j: the reference period
    if not rows:
        empty = np.zeros(0)
        return Cells(empty, empty, empty.astype(int), empty.astype(int), empty.astype(bool))
    arr = list(zip(*rows))
    return Cells(
        group=np.array(arr[0], dtype=float),
        time=np.array(arr[1], dtype=float),
        base=np.array(arr[2], dtype=np.int64),
        current=np.array(arr[3], dtype=np.int64),
        post=np.array(arr[4], dtype=bool),
    )


class _Core:
    """Estimation of every cell given unit weights (reused by replicate refits)."""

    def __init__(self, panel, cells, control_group, anticipation, method, trim):
        self.panel = panel
        self.cells = cells
        self.method = method
        self.trim = trim
        g = panel.first_treat
        times = panel.times
        self.groups = np.unique(g[g > 0])
        self.unit_group = np.where(g > 0, np.searchsorted(self.groups, g), -1)
        self.cell_group = np.searchsorted(self.groups, cells.group)
        # control[c, 1 + j]: cohort j is a comparison for cell c; column 0: never treated
        k, n_groups = cells.group.size, self.groups.size
        control = np.zeros((k, n_groups + 1), dtype=bool)
        control[:, 0] = True
        if control_group == "not_yet_treated":
            for c, (gc, cur, base) in enumerate(zip(cells.group, cells.current, cells.base)):
                cutoff = times[max(cur, base)] + anticipation
                control[c, 1:] = (self.groups > cutoff) & (self.groups != gc)
        self.control = control
        order = np.argsort(self.unit_group, kind="stable")
        bounds = np.searchsorted(self.unit_group[order], np.arange(-1, n_groups + 1))
        self.rows_of = [order[bounds[j]:bounds[j + 1]] for j in range(n_groups + 1)]

    def theta(self, weights) -> np.ndarray:
        """Every cell's ATT and the cohort shares under other unit weights (replicates)."""
        att, _, _, _ = self.estimate(weights, with_influence=False, strict=False)
        return np.concatenate([att, self.cohort_shares(weights)])

    def cohort_shares(self, weights):
        return cohort_shares(weights, self.unit_group, self.groups.size)

    def _rows(self, c):
        treated = self.rows_of[self.cell_group[c] + 1]
        controls = [self.rows_of[j] for j in np.flatnonzero(self.control[c])]
        return treated, np.concatenate(controls)

    def estimate(self, weights, with_influence=True, strict=True):
        if self.panel.x is None:
            return self._estimate_means(weights, with_influence, strict)
        return self._estimate_covariates(weights, with_influence, strict)

    def _fit_cell(self, c, strict, fit, *args, **kwargs):
        """``fit(*args, **kwargs)`` for cell ``c``; None when the cell cannot be estimated
        (an error naming the cell when ``strict``)."""
        try:
            return fit(*args, **kwargs)
        except EstimationError as err:
            if strict:
                cells = self.cells
                raise EstimationError(
                    f"CallawaySantAnna: ATT(g={cells.group[c]:g}, t={cells.time[c]:g}): {err}"
                ) from None
            return None

    def _report(self, problems, strict):
        if problems and strict:
            shown = "; ".join(f"(g={g:g}, t={t:g}): {why}" for g, t, why in problems[:5])
            warn_user(
                f"CallawaySantAnna: {len(problems)} cell(s) not estimable and left out: {shown}")

    def _estimate_means(self, weights, with_influence, strict):
        """Without covariates every method is a difference of weighted mean changes.

        Cohort-by-period weighted sums give every cell's means in one pass; the
        influence matrix is a cohort-level lookup times each unit's change.
        """
        panel, cells = self.panel, self.cells
        n_cols = self.groups.size + 1  # column 0: never treated
        member = self.unit_group + 1
        positive = weights > 0
        w = np.where(positive, weights, 0.0)
        mass = np.bincount(member, weights=w, minlength=n_cols)  # (G+1,)
        count = np.bincount(member, weights=positive.astype(float), minlength=n_cols)
        level = np.vstack(
            [np.bincount(member, weights=w * panel.y[:, j], minlength=n_cols)
             for j in range(panel.y.shape[1])]
        ).T  # (G+1, T) weighted sums of outcomes
        change = level[:, cells.current] - level[:, cells.base]  # (G+1, K)
        treated = np.zeros((n_cols, cells.group.size), dtype=bool)
        treated[self.cell_group + 1, np.arange(cells.group.size)] = True
        control = self.control.T  # (G+1, K)
        s_t, s_c = (treated * mass[:, None]).sum(0), (control * mass[:, None]).sum(0)
        n_treated = (treated * count[:, None]).sum(0).astype(np.int64)
        n_control = (control * count[:, None]).sum(0).astype(np.int64)
        reference = cells.base == cells.current
        ok = (s_t > 0) & (s_c > 0) & ~reference
        with np.errstate(invalid="ignore", divide="ignore"):
            eta_t = (treated * change).sum(0) / s_t
            eta_c = (control * change).sum(0) / s_c
        att = np.where(ok, eta_t - eta_c, np.nan)
        att[reference] = 0.0
        psi = None
        if with_influence:
            safe_t, safe_c = np.where(ok, s_t, 1.0), np.where(ok, s_c, 1.0)
            scale = np.where(treated, 1.0 / safe_t, 0.0) - np.where(control, 1.0 / safe_c, 0.0)
            centre = np.where(treated, np.where(ok, eta_t, 0.0), np.where(ok, eta_c, 0.0))
            scale[:, ~ok] = 0.0
            psi = MeansInfluence(panel.y, member, w, scale, centre, cells.current, cells.base)
        bad = ~ok & ~reference
        self._report([(cells.group[c], cells.time[c], "no treated or comparison units")
                      for c in np.flatnonzero(bad)], strict)
        return att, psi, n_treated, n_control

    def _estimate_covariates(self, weights, with_influence, strict):
        panel, cells = self.panel, self.cells
        n, k = panel.y.shape[0], cells.group.size
        att = np.full(k, np.nan)
        psi = np.zeros((n, k), order="F") if with_influence else None
        n_treated = np.zeros(k, dtype=np.int64)
        n_control = np.zeros(k, dtype=np.int64)
        estimator = ESTIMATORS[self.method]
        problems = []
        # The propensity fit depends on the cell only through its units and the
        # base-period covariates: cells of one cohort with the same comparison
        # group share it when the covariates do not change over time.
        x_fixed = bool(np.all(panel.x == panel.x[:, :1, :]))
        ps_key, ps = None, None
        for c in range(k):
            if cells.base[c] == cells.current[c]:  # universal base period: ATT 0 by definition
                att[c] = 0.0
                continue
            treated, controls = self._rows(c)
            treated = treated[weights[treated] > 0]
            controls = controls[weights[controls] > 0]
            n_treated[c], n_control[c] = treated.size, controls.size
            if treated.size == 0 or controls.size == 0:
                problems.append((cells.group[c], cells.time[c], "no treated or comparison units"))
                continue
            use = np.concatenate([treated, controls])
            d = np.zeros(use.size)
            d[: treated.size] = 1.0
            dy = panel.y[use, cells.current[c]] - panel.y[use, cells.base[c]]
            x = np.column_stack([np.ones(use.size), panel.x[use, cells.base[c], :]])
            if self.method == "reg":
                res = self._fit_cell(c, strict, estimator, dy, d, x, weights[use])
            else:
                key = (self.cell_group[c], self.control[c].tobytes(),
                       None if x_fixed else cells.base[c])
                if key != ps_key:
                    ps_key, ps = None, self._fit_cell(c, strict, propensity, d, x, weights[use])
                    ps_key = key if ps is not None else None
                res = None if ps is None else self._fit_cell(
                    c, strict, estimator, dy, d, x, weights[use], self.trim, ps=ps)
            if res is None:
                continue
            att[c] = res.att
            if with_influence:
                psi[use, c] = res.inf / use.size
        self._report(problems, strict)
        return att, psi, n_treated, n_control


def cohort_shares(weights, unit_group, n_groups) -> np.ndarray:
    """Estimated cohort shares ``mean(w_i 1{unit i in cohort g})`` (weights scaled to mean
    one; ``unit_group`` is -1 outside every cohort)."""
    w = weights / weights.mean()
    total = np.bincount(unit_group + 1, weights=w, minlength=n_groups + 1)
    return total[1:] / w.size


class CohortShareBasis:
    """Unit influence basis ``[psi | E]`` of the cells and the estimated cohort shares.

    ``psi`` (n x K) holds the cells (dense or :class:`MeansInfluence`); ``E``
    (n x G), ``w_i 1{G_i = g} / n``, carries the influence of the cohort
    shares, so every aggregate's influence is ``basis @ mapping``. Products
    keep a factored ``psi`` factored; :meth:`toarray` forms the matrix.
    """

    def __init__(self, psi, first_treat, weights):
        self.psi = psi
        self.w = weights / weights.mean()
        groups = np.unique(first_treat[first_treat > 0])
        self.unit_group = np.where(first_treat > 0, np.searchsorted(groups, first_treat), -1)
        self.n_groups = groups.size
        self.shape = (self.w.size, psi.shape[1] + self.n_groups)

    def __matmul__(self, mapping: np.ndarray) -> np.ndarray:
        k = self.psi.shape[1]
        out = self.psi @ mapping[:k]
        member = self.unit_group >= 0
        out[member] += (self.w[member, None] / self.w.size) * mapping[k + self.unit_group[member]]
        return out

    def toarray(self) -> np.ndarray:
        n = self.w.size
        e = np.zeros((n, self.n_groups))
        member = self.unit_group >= 0
        e[np.flatnonzero(member), self.unit_group[member]] = self.w[member] / n
        psi = self.psi if isinstance(self.psi, np.ndarray) else self.psi.toarray()
        return np.hstack([psi, e])


class MeansInfluence:
    """Influence matrix of the no-covariate cells, kept in factored form.

    ``psi[i, c] = w_i scale[m_i, c] (y[i, cur_c] - y[i, base_c] - centre[m_i, c])``
    with ``m_i`` the unit's cohort column. Products ``psi @ W`` are computed
    cohort by cohort from the outcome panel, without forming the n x K matrix;
    :meth:`toarray` forms it when asked.
    """

    def __init__(self, y, member, weights, scale, centre, current, base):
        self.y, self.member, self.weights = y, member, weights
        self.scale, self.centre = scale, centre
        self.current, self.base = current, base
        self.shape = (y.shape[0], current.size)
        order = np.argsort(member, kind="stable")
        bounds = np.searchsorted(member[order], np.arange(scale.shape[0] + 1))
        self.rows = [order[bounds[j]:bounds[j + 1]] for j in range(scale.shape[0])]
        self.blocks = [y[rows] * weights[rows, None] for rows in self.rows]
        self.block_weights = [weights[rows] for rows in self.rows]

    def __matmul__(self, mapping: np.ndarray) -> np.ndarray:
        mapping = np.asarray(mapping, dtype=float)
        squeeze = mapping.ndim == 1
        mapping = mapping[:, None] if squeeze else mapping
        n_t = self.y.shape[1]
        out = np.zeros((self.shape[0], mapping.shape[1]))
        for m, rows in enumerate(self.rows):
            if rows.size == 0:
                continue
            coef = self.scale[m][:, None] * mapping  # (K, J)
            periods = np.zeros((n_t, mapping.shape[1]))
            np.add.at(periods, self.current, coef)
            np.add.at(periods, self.base, -coef)
            shift = (self.scale[m] * self.centre[m]) @ mapping
            out[rows] = self.blocks[m] @ periods - self.block_weights[m][:, None] * shift
        return out[:, 0] if squeeze else out

    def toarray(self) -> np.ndarray:
        dy = self.y[:, self.current] - self.y[:, self.base]
        return ((dy - self.centre[self.member]) * self.scale[self.member]
                * self.weights[:, None])


class _RCCore(_Core):
    """Cells estimated from rows (repeated cross-sections or an unbalanced panel)."""

    def __init__(self, rows, cells, control_group, anticipation, method, trim):
        self.rows = rows
        unit_view = _unit_view(rows)
        super().__init__(unit_view, cells, control_group, anticipation, method, trim)
        self.row_group = self.unit_group[rows.unit_code]
        self.n_units = rows.units.size

    def cohort_shares(self, weights):
        return super().cohort_shares(weights)

    def estimate(self, weights, with_influence=True, strict=True):
        """``weights`` are unit weights; influence values come back summed by unit."""
        rows, cells = self.rows, self.cells
        row_w = weights[rows.unit_code]
        k = cells.group.size
        att = np.full(k, np.nan)
        psi = np.zeros((self.n_units, k), order="F") if with_influence else None
        n_treated = np.zeros(k, dtype=np.int64)
        n_control = np.zeros(k, dtype=np.int64)
        estimator = ESTIMATORS_RC[self.method]
        problems = []
        for c in range(k):
            if cells.base[c] == cells.current[c]:
                att[c] = 0.0
                continue
            in_period = (rows.time_code == cells.current[c]) | (rows.time_code == cells.base[c])
            treated = self.row_group == self.cell_group[c]
            control = self.control[c][self.row_group + 1]
            use = np.flatnonzero(in_period & (treated | control) & (row_w > 0))
            d = treated[use].astype(float)
            post = (rows.time_code[use] == cells.current[c]).astype(float)
            n_treated[c], n_control[c] = int(d.sum()), int(use.size - d.sum())
            groups_present = [np.any((d == a) & (post == b)) for a in (0, 1) for b in (0, 1)]
            if not all(groups_present):
                problems.append((cells.group[c], cells.time[c],
                                 "a treated or comparison group is empty in one of the periods"))
                continue
            y, w = rows.y[use], row_w[use]
            if rows.x is None:
                res = self._fit_cell(c, strict, means_did_rc, y, post, d, w)
            else:
                x = np.column_stack([np.ones(use.size), rows.x[use]])
                extra = () if self.method == "reg" else (self.trim,)
                res = self._fit_cell(c, strict, estimator, y, post, d, x, w, *extra)
            if res is None:
                continue
            att[c] = res.att
            if with_influence:
                psi[:, c] = np.bincount(rows.unit_code[use], weights=res.inf / use.size,
                                        minlength=self.n_units)
        self._report(problems, strict)
        return att, psi, n_treated, n_control
