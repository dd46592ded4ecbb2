"""Stacked difference-in-differences with corrective weights (Wing, Freedman &
Hollingsworth 2024) on the weighted-least-squares core."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from .._grouping import codes_of, label_codes
from .._warnings import warn_user
from ..linalg.cells import small_cell_fit
from ..linalg.wls import wls
from ..results.stacked import StackedDiDResults
from ..survey.design import SurveyDesign
from .panel import _first_treat, check_constant_within_unit, numeric, require_columns
from .registry import check_supported, register
from .regression import _Regression

WEIGHTINGS = ("aggregate", "population", "sample_share")
CONTROL_GROUPS = ("not_yet_treated", "strict", "never_treated")
CLUSTERS = ("unit", "unit_subexp")


def _count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


@register(aliases=("Stacked",), data="panel", inference="regression",
          weight_types=("pweight", "aweight"), bootstrap="wild", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat"))
class StackedDiD(_Regression):
    """Stacked event study with the corrective weights of Wing, Freedman & Hollingsworth
    (2024), which identify the trimmed aggregate ATT.

    One sub-experiment per adoption cohort ``a``: its units treated at ``a`` and the
    clean controls, in the calendar window ``a - kappa_pre .. a + kappa_post``; cohorts
    whose window does not fit in the data are trimmed. The sub-experiments are stacked
    and ``y = treat + event time + sum_{e != r} delta_e treat x 1{event time = e}`` is
    fitted by weighted least squares (treat and event-time effects absorbed, as the
    authors' ``feols(y ~ i(event_time, treat, ref = -1) | treat + event_time)``) with
    corrective weights ``Q`` that make each ``delta_e`` the weighted average of the
    sub-experiments' own DiDs with target weights ``pi_a``:

    * ``"aggregate"`` (the paper's default): ``pi_a`` = the sub-experiment's share of
      the treated observations; treated ``Q = 1``, controls ``Q = (N^D_a / N^D) /
      (N^C_a / N^C)`` (shares within each event time, as the authors' code; under a
      survey design the counts are sums of sampling weights, estimated population
      counts, so the identity below holds for the weighted DiDs);
    * ``"population"``: ``pi_a`` = its share of the treated ``population``;
    * ``"sample_share"``: ``pi_a`` = its share of all stacked observations;

    and for the last two, both groups get ``Q = pi_a / (their share of the group)`` (with
    treated ``Q = 1`` the treated side would keep the aggregate weights and the estimand
    would mix two weightings). Then ``delta_e = sum_a pi_a [(ybar^D_ae - ybar^D_ar) -
    (ybar^C_ae - ybar^C_ar)]`` exactly (``r`` the reference period). The overall ATT is
    the mean of the post-period ``delta_e`` (``e = 0 .. kappa_post``), as the authors
    report it. Standard errors:
    clustered by unit (every copy of a unit in every sub-experiment; default) or by unit
    x sub-experiment, CR1 (``hc1``) or CR2 with Bell-McCaffrey degrees of freedom
    (``hc2_bm``); under a survey design, the design-based variance of the regression
    with weights ``Q`` x survey weight (PSUs shared by a unit's copies).

    Parameters
    ----------
    kappa_pre, kappa_post : int
        Event window: ``kappa_pre`` periods before adoption (at least 1 +
        ``anticipation``: the reference period lies in it) and ``kappa_post`` after.
    weighting : {"aggregate", "population", "sample_share"}
    control_group : {"not_yet_treated", "strict", "never_treated"}
        Clean controls of sub-experiment ``a``: units adopting after ``a + kappa_post``
        (or never); ``"strict"``: after ``a + kappa_post + kappa_pre``; or never
        treated only.
    cluster : {"unit", "unit_subexp"} or str
        Cluster by unit (all its copies together), by unit x sub-experiment, or by a
        column of the data (e.g. the state of county units).
    anticipation : int
        The reference event time is ``-1 - anticipation``.
    vcov_type : {"hc1", "hc2_bm"}
    alpha, rank_deficient_action, inference, n_bootstrap, bootstrap_weights, seed
        As the regression family (``inference="wild_bootstrap"``: wild cluster bootstrap
        of the overall ATT).
    clean_control : str, optional
        diff-diff 3.x's name of ``control_group`` (deprecated).

    Examples
    --------
    >>> import diff_diff as dd
    >>> res = dd.StackedDiD(kappa_pre=1, kappa_post=0, control_group="never_treated").fit(
    ...     dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
    ...     first_treat="first.treat")
    >>> res.n_sub_experiments, round(res.att, 4)
    (3, -0.0199)
    """

    _allowed = {**_Regression._allowed, "weighting": WEIGHTINGS, "control_group": CONTROL_GROUPS,
                "vcov_type": ("hc1", "hc2_bm")}
    _checks = {**_Regression._checks,
               "cluster": (lambda v: isinstance(v, str) and v != "",
                           "'unit', 'unit_subexp' or a column name"),
               "kappa_pre": (_count, "a non-negative integer"),
               "kappa_post": (_count, "a non-negative integer"),
               "anticipation": (_count, "a non-negative integer")}

    def __init__(self, kappa_pre=1, kappa_post=1, weighting="aggregate",
                 control_group="not_yet_treated", cluster="unit", alpha=0.05, anticipation=0,
                 vcov_type="hc1", rank_deficient_action="warn", inference="analytic",
                 n_bootstrap=0, bootstrap_weights="rademacher", seed=None, clean_control=None):
        if clean_control is not None:
            warn_user("StackedDiD: clean_control is deprecated; use control_group",
                      FutureWarning)
            control_group, clean_control = clean_control, None
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            population: str | None = None, survey_design: SurveyDesign | None = None,
            aggregate=None) -> StackedDiDResults:
        """Build the stack, weight it and fit the event study.

        Parameters
        ----------
        data : DataFrame
            Long panel, one row per unit and period (numeric periods, equally spaced
            in the window's units); not modified.
        outcome, unit, time, first_treat : str
            Columns; ``first_treat``: first treated period (0 or inf: never treated),
            constant within unit.
        population : str, optional
            A unit-level column of population sizes (``weighting="population"``).
        survey_design : SurveyDesign, optional
            Sampling weights (multiplied by ``Q``) and the design for the variance.
        aggregate : ignored
            diff-diff 3.x keyword (inert there too): the event study and the overall
            ATT are always computed.
        """
        self._validate()
        check_supported(self, survey_design)  # frequency weights: the stack copies rows
        if self.kappa_pre < 1 + self.anticipation:
            raise ValueError(f"StackedDiD: kappa_pre must be at least 1 + anticipation "
                             f"({1 + self.anticipation}) so the reference period "
                             f"{-1 - self.anticipation} is in the window")
        if self.weighting == "population" and population is None:
            raise ValueError("StackedDiD: weighting='population' needs population= (a "
                             "unit-level column of population sizes)")
        if self.n_bootstrap and self.inference != "wild_bootstrap":
            warn_user("StackedDiD: n_bootstrap is used by inference='wild_bootstrap' only; "
                      "the standard errors are analytic")
        if aggregate is not None:
            warn_user("StackedDiD: aggregate= is inert (diff-diff 3.x kept it for "
                      "compatibility); the event study and the overall ATT are always "
                      "computed", FutureWarning)
        column_cluster = None if self.cluster in CLUSTERS else self.cluster
        require_columns(data, outcome=outcome, unit=unit, time=time, first_treat=first_treat,
                        population=population, cluster=column_cluster)
        stack = self._stack(data, unit, time, first_treat, population)
        events = [e for e in range(-self.kappa_pre, self.kappa_post + 1)
                  if e != -1 - self.anticipation]
        names = [f"treat:e[{e}]" for e in events]
        event_values, n_e = stack.event_values, stack.event_values.size
        # the design and the absorbed effects are functions of (treated, event time): one
        # row per cell; the rows' design is formed only where a refit or CR2 needs it
        cell_design = np.zeros((2 * n_e, len(events)))
        for j, e in enumerate(events):
            cell_design[n_e + np.flatnonzero(event_values == e), j] = 1.0
        cell_absorb = [np.repeat([0, 1], n_e), np.tile(np.arange(n_e), 2)]
        if (survey_design is None and self.vcov_type == "hc1" and self.cluster == "unit"
                and self.inference != "wild_bootstrap"):
            stack.q_table = stack.q_from_counts(self.weighting)
            fit = _class_fit(stack, data, outcome, cell_design, cell_absorb, names,
                             self.rank_deficient_action)
            if fit is not None:  # every row's outcome finite: no stacked row formed
                return self._finish(fit, stack, events, names, fit.clusters, None, None,
                                    (_frozen(data), False), None, None)
        rows = stack.rows
        y = _gathered_numeric(data, outcome, "outcome", rows)
        # the stacked frame is formed only where the design's columns are read from it
        stacked = None if survey_design is None else data.iloc[rows]
        weights, frequency, design, meta = self._weights(stacked, survey_design)
        if weights is None:  # Q from the counts of the (cohort, period) classes
            stack.q_table = stack.q_from_counts(self.weighting)
            w = stack.q
        else:
            stack.q_rows = stack.q_from_rows(self.weighting, weights)
            w = stack.q_rows * weights
        cell = stack.cell

        def design_rows():
            return np.asfortranarray(cell_design[cell])

        def absorbed():
            return [stack.treat.astype(np.int64), stack.event_codes]
        if self.vcov_type == "hc2_bm":  # CR2 needs every effect in the design
            event_codes = stack.event_codes
            dummies = [np.ones(y.size), stack.treat.astype(float)]
            dummies += [(event_codes == k).astype(float) for k in range(1, event_codes.max() + 1)]
            extra = ["(Intercept)", "treat"] + [f"e[{k}]"
                                                for k in range(1, event_codes.max() + 1)]
            x = np.column_stack([design_rows()] + dummies)
            absorb = []
            fit = self._wls(y, x, names + extra, w, frequency, absorb,
                            expected_collinear=tuple(extra))
        else:
            x = None
            absorb = None  # formed only for a replicate refit or the wild bootstrap
            fit = small_cell_fit(y, cell, cell_design, cell_absorb, w, names,
                                 self.rank_deficient_action)
        _identified(fit, names, len(events))
        if self.cluster == "unit":
            cluster = stack.unit_codes
        elif self.cluster == "unit_subexp":
            cluster = pd.factorize(stack.unit_codes * (stack.n_sub + 1)
                                   + stack.sub)[0].astype(np.int64)
        else:
            cluster = label_codes(data[[column_cluster]].iloc[rows], column_cluster,
                                  "cluster")[0]

        def refit(rep):  # replicate weights: the corrective weights follow them
            rows = design_rows() if x is None else x
            return wls(y, rows, fit.names, stack.q_from_rows(self.weighting, rep) * rep,
                       absorbed() if absorb is None else absorb, "silent",
                       frequency).coef[fit.kept]

        def wild(var, overall):
            return self._wild(fit, y, absorbed() if absorb is None else absorb, var, cluster,
                              overall, design)
        source = (stacked, True) if stacked is not None else (_frozen(data), False)
        return self._finish(fit, stack, events, names, cluster, design, refit, source, meta,
                            wild)

    def _finish(self, fit, stack, events, names, cluster, design, refit, source, meta, wild):
        """Identification check, variance (and wild bootstrap), results."""
        _identified(fit, names, len(events))
        post = np.array([e >= 0 for e in events])
        overall = np.zeros(fit.rank)
        overall[np.flatnonzero(post)] = 1.0 / post.sum()
        contrasts = np.vstack([np.eye(fit.rank)[:len(events)], overall])
        var = self._variance(fit, design, cluster, contrasts, refit, False,
                             default_cluster=self.cluster == "unit")
        boot = None
        if self.inference == "wild_bootstrap":
            boot = wild(var, overall)
        return StackedDiDResults.from_parts(self, fit, var, events, overall, stack, source,
                                            meta, boot)

    def _variance(self, fit, design, cluster, contrasts, refit, nested, default_cluster):
        from ..inference.regression import regression_variance

        vcov_type = "cr1" if self.vcov_type == "hc1" else "hc2_bm"
        return regression_variance(fit, vcov_type=vcov_type, cluster=cluster, design=design,
                                   contrasts=contrasts, absorbed_nested_in_cluster=nested,
                                   refit=refit, default_cluster=default_cluster,
                                   name="StackedDiD")

    # ------------------------------------------------------------------ the stack
    def _stack(self, data, unit, time, first_treat, population):
        if data[time].dtype.kind in "iu":  # integer periods: no missing values to refuse
            time_codes, times = codes_of(data[time])
        else:
            time_codes, times = codes_of(pd.Series(numeric(data, time, "time"), copy=False))
        g = _first_treat(data, first_treat)
        unit_codes, units = label_codes(data, unit, "unit")
        first = check_constant_within_unit(g, unit_codes, units, first_treat)
        pop = None
        if population is not None:
            pop = numeric(data, population, "population")
            check_constant_within_unit(pop, unit_codes, units, population)
            if (pop <= 0).any():
                raise ValueError(f"StackedDiD: population column {population!r} must be "
                                 "positive")
        # every row is in a class (its unit's first_treat, its period): the stack, its
        # treated/control split and its event times are functions of the classes
        times = times.astype(float)
        levels, unit_level = np.unique(g[first], return_inverse=True)
        unit_level = unit_level.reshape(-1)
        n_t = times.size
        row_class = unit_level[unit_codes] * n_t + time_codes
        counts = np.bincount(row_class, minlength=levels.size * n_t).reshape(levels.size, n_t)
        t_min, t_max = times[0], times[-1]
        cohorts = levels[(levels > 0) & np.isfinite(levels)]
        if cohorts.size == 0:
            raise ValueError(f"StackedDiD: no unit is treated (first_treat column "
                             f"{first_treat!r})")
        never = (levels == 0) | ~np.isfinite(levels)
        kept, trimmed, no_controls, tables = [], [], [], []
        for a in cohorts:
            if a - self.kappa_pre < t_min or a + self.kappa_post > t_max:
                trimmed.append(a)
                continue
            treated = levels == a
            if self.control_group == "never_treated":
                control = never
            else:
                # clean: not treated (nor anticipating) through the end of the window
                after = a + self.kappa_post + (self.kappa_pre if self.control_group == "strict"
                                               else 0)
                control = never | (levels - self.anticipation > after)
            window = (times >= a - self.kappa_pre) & (times <= a + self.kappa_post)
            member = (treated | control)[:, None] & window[None, :]
            if not (counts[control][:, window] > 0).any():
                no_controls.append(a)
                continue
            kept.append(a)
            tables.append((member, np.broadcast_to(treated[:, None], member.shape)))
        if trimmed:
            warn_user(f"StackedDiD: cohort(s) {[_num(a) for a in trimmed]} trimmed: their "
                      f"window [-{self.kappa_pre}, {self.kappa_post}] does not fit in the "
                      f"periods {_num(t_min)}..{_num(t_max)}")
        if no_controls:
            warn_user(f"StackedDiD: cohort(s) {[_num(a) for a in no_controls]} dropped: no "
                      f"clean control units (control_group={self.control_group!r})")
        if not kept:
            raise ValueError("StackedDiD: no sub-experiment left (every cohort was trimmed or "
                             "has no clean controls); shorten kappa_pre/kappa_post or change "
                             "control_group")
        member = np.stack([m for m, _ in tables])  # (sub-experiment, class level, period)
        treat = np.stack([tr for _, tr in tables])
        offset = np.broadcast_to(times[None, None, :]
                                 - np.array(kept, dtype=float)[:, None, None], member.shape)
        occupied = member & (counts > 0)[None]
        if not np.allclose(offset[occupied], np.round(offset[occupied]), rtol=0, atol=1e-9):
            raise ValueError("StackedDiD: event times t - first_treat must be whole numbers of "
                             "periods (the window is counted in the time column's units); "
                             "recode the periods as consecutive integers")
        event = np.broadcast_to(np.round(offset).astype(np.int64), member.shape)
        return _Stack(member, treat, event, counts, row_class, unit_codes, time_codes,
                      unit_level, units, pop, kept, trimmed + no_controls)


class _Stack:
    """The stacked rows as tables over (sub-experiment, class) and the row indices: each
    sub-experiment's rows in the data's order, the sub-experiments one after another; a
    class is (the unit's ``first_treat`` level, the period). Per-row arrays (treated,
    event time, the fit's cell) are gathered from the small tables."""

    def __init__(self, member, treat, event, counts, row_class, unit_codes, time_codes,
                 unit_level, units, pop, groups, trimmed):
        n_sub, n_level, n_t = member.shape
        n_class = n_level * n_t
        self.n_sub, self.groups, self.trimmed, self.units = n_sub, groups, trimmed, units
        self.n_t = n_t
        self._member = member.reshape(n_sub, n_class)
        self._treat = treat.reshape(n_sub, n_class)
        self._event = event.reshape(n_sub, n_class)
        self._counts = counts.reshape(-1)
        self._pop, self._row_class = pop, row_class
        self._all_unit_codes, self._time_codes = unit_codes, time_codes
        self.unit_level = unit_level  # each unit's first_treat level (code)
        self.present = self._member & (self._counts > 0)[None, :]
        self.n_rows = int(self._counts @ self._member.sum(axis=0))
        self.event_values = np.unique(self._event[self.present])  # the occurring event times
        self._event_code = np.searchsorted(self.event_values, self._event)
        self._event_code[~self.present] = 0
        self.q_table = None  # corrective weight of each (sub-experiment, class)
        self.q_rows = None  # or of each stacked row (under a survey design)
        self.unit_counts = None  # (treated units, control units) when already counted

    @cached_property
    def _parts(self):
        parts = [np.flatnonzero(m[self._row_class]) for m in self._member]
        return parts, np.concatenate(parts)

    @cached_property
    def rows(self) -> np.ndarray:
        """The data's row of each stacked row."""
        return self._parts[1]

    @cached_property
    def sub(self) -> np.ndarray:
        """Each stacked row's sub-experiment (0 .. n_sub - 1)."""
        return np.repeat(np.arange(self.n_sub), [p.size for p in self._parts[0]])

    @cached_property
    def key(self) -> np.ndarray:
        """Each stacked row's (sub-experiment, class) code."""
        return self.sub * np.int64(self._member.shape[1]) + self._row_class[self.rows]

    @cached_property
    def unit_codes(self) -> np.ndarray:
        """Each stacked row's unit code."""
        return self._all_unit_codes[self.rows]

    @property
    def q(self) -> np.ndarray:
        """Each stacked row's corrective weight."""
        if self.q_rows is not None:
            return self.q_rows
        return self.q_table.reshape(-1)[self.key]

    def n_units(self):
        """Units with a treated row, units with a control row in the stack."""
        if self.unit_counts is not None:
            return self.unit_counts
        treated, n_units = self.treat == 1, len(self.units)
        return tuple(int(np.count_nonzero(np.bincount(self.unit_codes[rows],
                                                      minlength=n_units)))
                     for rows in (treated, ~treated))

    @cached_property
    def treat(self) -> np.ndarray:
        """1.0 for the rows of a sub-experiment's treated cohort, else 0.0."""
        return self._treat.reshape(-1).astype(float)[self.key]

    @cached_property
    def event(self) -> np.ndarray:
        """Each stacked row's event time (period - focal cohort)."""
        return self._event.reshape(-1)[self.key]

    @cached_property
    def event_codes(self) -> np.ndarray:
        """Each stacked row's event time as a code 0..E-1 of ``event_values``."""
        return self._event_code.reshape(-1)[self.key]

    @cached_property
    def cell(self) -> np.ndarray:
        """The fit's cell of each row: treated x event time (``treat * E + event code``)."""
        table = self._treat * self.event_values.size + self._event_code
        return table.reshape(-1)[self.key]

    def q_from_counts(self, weighting) -> np.ndarray:
        """Corrective weights (sub-experiment x class) from the counts of the classes (no
        sampling weights)."""
        present = self.present
        n_e = self.event_values.size
        sub, cls = np.nonzero(present)
        cell = self._event_code[sub, cls] * self.n_sub + sub
        is_t = self._treat[sub, cls]
        size = self._counts[cls].astype(float)
        mass = None
        if weighting == "population":
            mass = np.bincount(self._row_class, weights=self._pop,
                               minlength=self._counts.size)[cls]
        q_t, q_c = _q_tables(weighting, self.event_values, n_e, self.n_sub, cell, is_t,
                             size, mass)
        table = np.zeros(self._member.shape)
        table[sub, cls] = np.where(is_t, q_t[cell], q_c[cell])
        return table

    def q_from_rows(self, weighting, base) -> np.ndarray:
        """Corrective weights from sums of the stacked rows' sampling weights ``base``."""
        cell = self.event_codes * self.n_sub + self.sub
        is_t = self.treat == 1
        pop = None if self._pop is None else self._pop[self.rows]
        q_t, q_c = _q_tables(weighting, self.event_values, self.event_values.size,
                             self.n_sub, cell, is_t, base, pop)
        return np.where(is_t, q_t[cell], q_c[cell])


def _identified(fit, names, k):
    if not fit.kept[:k].all():
        lost = [n for n, kept in zip(names, fit.kept) if not kept]
        raise ValueError(f"StackedDiD: {lost} not identified (no treated or control "
                         "observations at those event times)")


UNIT_TIME_SLACK = 1 << 20  # unit x period tables up to 4n + this are summed


def _class_fit(stack, data, outcome, cell_design, cell_absorb, names, rank_deficient_action):
    """The stacked regression (clusters: units, no sampling weights) from sums over the
    data's rows, without forming a stacked row; None when some outcome is not finite (the
    row path then says which) or the unit x period table would be too large.

    Every stacked row of (sub-experiment ``s``, class ``c``) has the same design row and
    weight ``Q_sc``, so the fit is :func:`~diff_diff.linalg.cells.small_cell_fit` on one
    pseudo-row per (s, c) with the class's mean outcome and weight ``Q_sc n_c``. A unit's
    score sums ``Q_sc (y_i - fitted_sc) x_sc`` over its rows and their copies: per
    period, its outcome total times ``A_ct = sum_s Q_sc x_sc`` less its row count times
    ``B_ct = sum_s Q_sc fitted_sc x_sc`` (``c`` its class in that period).
    """
    series = data[outcome]
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return None
    y = series.to_numpy(dtype=float, na_value=np.nan)
    n_units, n_t = len(stack.units), stack.n_t
    if not np.isfinite(y).all() or n_units * n_t > 4 * y.size + UNIT_TIME_SLACK:
        return None
    n_class = stack._counts.size
    sub, cls = np.nonzero(stack.present)
    size = stack._counts[cls].astype(float)
    totals = np.bincount(stack._row_class, weights=y, minlength=n_class)[cls]
    q = stack.q_table[sub, cls]
    cell = (stack._treat * stack.event_values.size + stack._event_code)[sub, cls]
    fit = small_cell_fit(totals / size, cell, cell_design, cell_absorb, q * size, names,
                         rank_deficient_action)
    _identified(fit, names, len(names))  # an event time without data: the clear error
    # the units' influence totals: per period, outcome totals x A - row counts x B
    k = fit.rank
    xb = fit._cell_x[cell] @ fit.bread_inv  # (pseudo-rows, k)
    fitted = fit.fitted
    is_t = stack._treat[sub, cls]
    a = np.zeros((n_class, k))
    np.add.at(a, cls, q[:, None] * xb)
    b = np.zeros((n_class, k + 2))  # B, then indicators of a treated / a control row
    np.add.at(b, cls, np.column_stack([(q * fitted)[:, None] * xb, is_t, ~is_t]))
    key = stack._all_unit_codes * np.int64(n_t) + stack._time_codes
    y_ut = np.bincount(key, weights=y, minlength=n_units * n_t).reshape(n_units, n_t)
    n_ut = np.bincount(key, minlength=n_units * n_t).reshape(n_units, n_t).astype(float)
    unit_level = stack.unit_level
    order = np.argsort(unit_level, kind="stable")
    bounds = np.searchsorted(unit_level[order], np.arange(n_class // n_t + 1))
    scores = np.zeros((n_units, k))
    flags = np.zeros((n_units, 2))
    for level in range(n_class // n_t):
        units = order[bounds[level]:bounds[level + 1]]
        block = slice(level * n_t, (level + 1) * n_t)
        if units.size == 0 or not b[block, k:].any():
            continue
        scores[units] = y_ut[units] @ a[block] - n_ut[units] @ b[block, :k]
        flags[units] = n_ut[units] @ b[block, k:]
    in_stack = (flags > 0).any(axis=1)
    stack.unit_counts = tuple(int(np.count_nonzero(f > 0)) for f in flags.T)
    n_obs = float(size[q > 0].sum())
    return _ClassFit(fit, scores[in_stack], n_obs)


class _ClassFit:
    """What the variance reads from a fit (``rank``, ``df_absorbed``, ``n_obs``, the
    kept coefficients) with the units' influence totals already summed: clustered by
    ``clusters`` (codes 0..G-1 of the units in the stack) only."""

    def __init__(self, fit, unit_influence, n_obs):
        self.coef, self.kept, self.names = fit.coef, fit.kept, fit.names
        self.bread_inv, self.df_absorbed, self.n_obs = fit.bread_inv, fit.df_absorbed, n_obs
        self.frequency = False
        self._influence = unit_influence
        self.clusters = np.arange(unit_influence.shape[0], dtype=np.int64)

    @property
    def rank(self) -> int:
        return int(self.kept.sum())

    def cluster_influence(self, cluster, n_clusters):
        if n_clusters != self.clusters.size or not np.array_equal(cluster, self.clusters):
            raise ValueError("StackedDiD: the class-level fit is clustered by its units only")
        return self._influence


def _q_tables(weighting, events, n_e, n_sub, cell, is_t, base, pop):
    """Corrective weights of the treated and the controls by (event time, sub-experiment):
    shares within each event time of the counts (the sums of ``base``: ones, class sizes
    or the sampling weights under a survey design) over the entries ``cell``."""
    n_t = np.bincount(cell, weights=np.where(is_t, base, 0.0),
                      minlength=n_e * n_sub).reshape(n_e, n_sub)
    n_c = np.bincount(cell, weights=np.where(is_t, 0.0, base),
                      minlength=n_e * n_sub).reshape(n_e, n_sub)
    empty = (n_t.sum(axis=1) <= 0) | (n_c.sum(axis=1) <= 0)
    if empty.any():
        raise ValueError(f"StackedDiD: event time {int(events[np.argmax(empty)])} has no "
                         "treated or no control observation in any sub-experiment "
                         "(unbalanced panel or periods spaced more than one unit apart?)")
    share_t = n_t / n_t.sum(axis=1, keepdims=True)
    share_c = n_c / n_c.sum(axis=1, keepdims=True)
    if weighting == "aggregate":
        target = share_t
    elif weighting == "sample_share":
        target = (n_t + n_c) / (n_t + n_c).sum(axis=1, keepdims=True)
    else:  # population of the treated units of each sub-experiment (one row each here)
        mass = np.bincount(cell, weights=np.where(is_t, pop, 0.0),
                           minlength=n_e * n_sub).reshape(n_e, n_sub)
        target = mass / mass.sum(axis=1, keepdims=True)
    # a sub-experiment without treated rows at e contributes no DiD there: no weight
    target = np.where(n_t > 0, target, 0.0)
    target = target / target.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_t, q_c = (target / share_t).ravel(), (target / share_c).ravel()
    return q_t, q_c


def _gathered_numeric(data, col, role, rows):
    """``numeric(data, col, role)`` of the rows ``rows`` (checked on those rows only)."""
    series = data[col]
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(float)
    if not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"{role} column {col!r} must be numeric, got dtype {series.dtype}")
    values = series.to_numpy(dtype=float, na_value=np.nan)[rows]
    if np.isnan(values).any():
        raise ValueError(f"{role} column {col!r} has {int(np.isnan(values).sum())} missing values")
    if np.isinf(values).any():
        raise ValueError(f"{role} column {col!r} has {int(np.isinf(values).sum())} infinite values")
    return values


def _frozen(data):
    """``data`` held for the results' stacked frame: a lazy copy under pandas'
    copy-on-write (later changes to ``data`` do not reach it), else a deep copy."""
    major = int(pd.__version__.split(".")[0])
    try:
        cow = major >= 3 or pd.get_option("mode.copy_on_write") is True
    except (KeyError, pd.errors.OptionError):
        cow = False
    return data.copy(deep=not cow)


def _num(value):
    value = float(value)
    return int(value) if value.is_integer() else value
