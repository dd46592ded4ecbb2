"""Results of :class:`~diff_diff.CallawaySantAnna` and their aggregations (R ``did::aggte``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..inference import wald_test
from .base import EventStudyResultsBase, ResultsBase
from .table import effects_table, integer_labels, tidy

KINDS = ("simple", "dynamic", "group", "calendar")
_ALIASES = {"event_study": "dynamic", "overall": "simple"}


@dataclass(frozen=True, eq=False)
class _Parts:
    """Weighted averages of cells: which cells, with which weights, and whether weights are estimated."""

    labels: np.ndarray  # one per aggregate
    members: list  # cell indices per aggregate
    estimated_weights: bool  # cohort-share weights (with their influence) or equal weights


class AggregationResults(ResultsBase):
    """An aggregation of group-time ATTs: a table of effects and an overall effect.

    Attributes
    ----------
    kind : str
        ``simple``, ``dynamic`` (event study), ``group`` or ``calendar``.
    effects : DataFrame
        One row per event time / group / period (empty for ``simple``), tidy
        columns and, with the bootstrap, uniform-band columns.
    vcov : DataFrame
        Covariance of the effects.
    df : float or None
        Degrees of freedom of the intervals (None: normal).
    overall_att, overall_se, overall_t_stat, overall_p_value, overall_conf_int
        The overall effect of this aggregation (R ``aggte``'s ``overall.att``).
    influence_functions : ndarray (n_units, J + 1)
        Unit influence values (sum scale) of the J effects and, last, the overall.
    """

    def __init__(self, kind, label_name, effects, vcov, overall, alpha, basis=None, mapping=None,
                 df=None):
        self._basis, self._mapping = basis, mapping
        self.df = df
        self.kind = kind
        self.label_name = label_name
        self.effects = effects
        self.vcov = vcov
        self._overall = overall
        self.alpha = alpha

    _headline = property(lambda self: self._overall)
    _levels = {"effects": "_effects", "overall": "_overall_table"}
    _title = property(lambda self: f"{self.source} aggregation: {self.kind}")
    source = "Callaway-Sant'Anna"  # the estimator, for the title

    @property
    def influence_functions(self) -> np.ndarray:
        """Unit influence values (sum scale) of the effects and, last column, the overall."""
        return self._basis @ self._mapping

    def _effects(self) -> pd.DataFrame:
        return self.effects

    def _tables(self) -> list:
        tables = [("Overall", self._overall_table(), ["term"])]
        if len(self.effects):
            tables.append((f"By {self.label_name}", self.effects, [self.label_name]))
        return tables

    def _repr_fields(self) -> dict:
        return {"kind": repr(self.kind)}


class CallawaySantAnnaResults(EventStudyResultsBase):
    """Group-time ATTs with influence functions; aggregations derive from them.

    Read-only headline fields (``att``, ``se``, ``t_stat``, ``p_value``,
    ``conf_int``) are the ``simple`` aggregation (cohort-size weighted average
    of post-treatment ATT(g, t), R ``aggte(type="simple")``); other attributes
    may be attached freely.
    """

    _settings = ("control_group", "estimation_method", "base_period", "anticipation")
    _aggregation_source = "Callaway-Sant'Anna"  # names the estimator in aggregation titles

    def _setup(self, est, f) -> None:
        self._balance_e = f.balance_e  # fit(balance_e=) of diff-diff 3.x: a balanced event study
        for name in self._settings:
            setattr(self, name, getattr(est, name))
        panel, self._cells = f.panel, f.cells
        self._att, self._pg, self._psi = f.att, f.pg, f.psi
        self._n_treated, self._n_control = f.n_treated, f.n_control
        g = panel.first_treat
        self._groups = np.unique(g[g > 0])
        self._times, self._unit_ids = panel.times, panel.units
        self.n_obs = panel.n_rows
        self.n_units = int(g.size)
        self.n_treated_units = int((g > 0).sum())
        self.n_control_units = int((g == 0).sum())
        self.n_dropped_always_treated = f.dropped
        self.groups = self._groups.copy()
        self.time_periods = panel.times.copy()

    # ---------------------------------------------------------------- engine
    @property
    def df(self):
        """Degrees of freedom of t inference (design df with a survey design, else normal)."""
        first = np.zeros((self._att.size + self._groups.size, 1))
        first[0, 0] = 1.0
        return self._inference.df_of(first, points=lambda r: r[:1])

    def _variance_of(self, mapping, point_fn):
        """Variance of the estimates ``mapping.T @ [att, pg]``; ``point_fn(att, pg)`` gives
        them from replicate estimates (their weights may be estimated too)."""
        return self._inference.variance(mapping, points=self._points(point_fn))

    def _points(self, point_fn):
        k = self._att.size
        return lambda theta: point_fn(theta[:k], theta[k:])

    # ----------------------------------------------------------- group-time
    @cached_property
    def _gt(self):
        cells = self._cells
        ok = np.isfinite(self._att)
        mapping = np.zeros((self._att.size + self._groups.size, int(ok.sum())))
        mapping[np.flatnonzero(ok), np.arange(int(ok.sum()))] = 1.0
        var = self._variance_of(mapping, lambda a, p: a[ok])
        se = np.full(self._att.size, np.nan)
        se[ok] = var.se
        table = tidy(
            {"group": integer_labels(cells.group), "time": integer_labels(cells.time),
             "event_time": integer_labels(_event_time(cells))},
            self._att, se, var.df, self.alpha, var.crit,
        )
        table["post"] = cells.post
        for name, values in self._cell_columns().items():
            table[name] = values
        return table, var

    def _cell_columns(self) -> dict:
        """Columns the group-time table adds after ``post`` (counts of units per cell)."""
        return {"n_treated": self._n_treated, "n_control": self._n_control}

    @property
    def group_time_effects(self) -> pd.DataFrame:
        """ATT(g, t) per cohort and period, with standard errors and intervals."""
        return self.to_dataframe("group_time")

    @property
    def influence_functions(self) -> np.ndarray:
        """Unit x cell influence values on the sum scale (``att - ATT ~ psi.sum(0)``)."""
        psi = self._psi
        return psi.copy() if isinstance(psi, np.ndarray) else psi.toarray()

    # ------------------------------------------------------------ aggregate
    def aggregate(
        self,
        kind: str = "simple",
        min_e: float = -np.inf,
        max_e: float = np.inf,
        balance_e: int | None = None,
    ) -> AggregationResults:
        """Aggregate the group-time ATTs, as R ``did::aggte``.

        ``simple``: cohort-size weighted average of post-treatment cells.
        ``dynamic`` (``event_study``): one effect per event time ``e = t - g``
        (cohort-size weights), overall = mean over ``e >= 0``; ``min_e``,
        ``max_e`` restrict event times and ``balance_e`` keeps cohorts
        observed at least ``balance_e`` periods after treatment.
        ``group``: mean of each cohort's post-treatment cells, overall weighted
        by cohort size. ``calendar``: per period, cohort-size weighted over
        treated cohorts; overall = mean over periods.
        Standard errors come from the stored influence functions, including
        the influence of the estimated cohort-size weights; nothing is refit.

        Parameters
        ----------
        kind : {"simple", "dynamic", "event_study", "group", "calendar"}, default "simple"
            The aggregation.
        min_e, max_e : float, default -inf, inf
            Event-time window of ``"dynamic"``.
        balance_e : int, optional
            Keep cohorts observed at least this many periods after treatment.

        Returns
        -------
        AggregationResults
            The overall effect and, except for ``"simple"``, the table of effects.

        Raises
        ------
        ValueError
            If ``kind`` is unknown.

        Examples
        --------
        >>> import diff_diff as dd
        >>> res = dd.CallawaySantAnna().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal",
        ...                                 time="year", first_treat="first.treat")
        >>> round(res.aggregate("group").att, 4)
        -0.031
        """
        return self._aggregate_many([(kind, min_e, max_e, balance_e)])[0]

    def _aggregate_many(self, specs) -> list:
        """Several aggregations; with analytic standard errors their variances come
        from one pass over the influence values."""
        prepared = [self._prepare(*spec) for spec in specs]
        variances = self._inference.variances(
            [(p["mapping"], self._points(p["points"]), None) for p in prepared])
        return [self._finish(p, var) for p, var in zip(prepared, variances)]

    def _prepare(self, kind, min_e, max_e, balance_e) -> dict:
        kind = _ALIASES.get(kind, kind)
        if kind not in KINDS:
            raise ValueError(f"aggregate kind must be one of {list(KINDS) + list(_ALIASES)}, got {kind!r}")
        parts, overall_mode, label_name = self._parts(kind, min_e, max_e, balance_e)

        def points(att, pg):
            est = np.array([self._combine(att, pg, m, parts.estimated_weights) for m in parts.members])
            return np.append(est, self._overall_point(est, pg, parts, overall_mode))

        estimate = points(self._att, self._pg)
        return dict(kind=kind, parts=parts, label_name=label_name, points=points,
                    estimate=estimate, mapping=self._aggregate_map(parts, estimate, overall_mode))

    def _finish(self, p, var) -> AggregationResults:
        parts, estimate, label_name = p["parts"], p["estimate"], p["label_name"]
        n = len(parts.members)
        se = np.where(np.isfinite(estimate), var.se, np.nan)  # no estimate, no standard error
        effects = tidy({label_name: integer_labels(parts.labels)}, estimate[:n], se[:n],
                       var.df, self.alpha, var.crit if n else None)
        if p["kind"] == "simple":
            effects = effects.iloc[0:0]
        overall = tidy({"term": ["overall"]}, estimate[n:], se[n:], var.df,
                       self.alpha).iloc[0].to_dict()
        vcov = pd.DataFrame(var.vcov[:n, :n], index=integer_labels(parts.labels),
                            columns=integer_labels(parts.labels))
        mapping = p["mapping"]
        df = var.df if var.df is None or np.ndim(var.df) == 0 else float(var.df[-1])
        out = AggregationResults(p["kind"], label_name, effects, vcov, overall, self.alpha,
                                 self._inference.estimate.psi, mapping, df)
        out.source = self._aggregation_source
        return out

    def _parts(self, kind, min_e, max_e, balance_e):
        cells = self._cells
        ok = np.isfinite(self._att)
        e = _event_time(cells)
        if kind == "simple":
            keep = np.flatnonzero(ok & cells.post & (e <= max_e))
            return _Parts(np.array(["overall"]), [keep], True), "single", "term"
        if kind == "dynamic":
            include = ok.copy()
            events = np.unique(e[ok])
            if balance_e is not None:
                include &= (self._times[-1] - cells.group) >= balance_e
                if not include.any():
                    longest = int(np.max(self._times[-1] - cells.group)) if cells.group.size else 0
                    raise ValueError(f"balance_e={balance_e}: no cohort is observed that many "
                                     f"periods after treatment (the longest is {longest})")
                events = np.unique(e[include])
                events = events[(events <= balance_e)
                                & (events >= balance_e - self._times[-1] + self._times[0])]
            events = events[(events >= min_e) & (events <= max_e)]
            members = [np.flatnonzero(include & (e == ev)) for ev in events]
            return _Parts(events, members, True), "mean_post_events", "event_time"
        if kind == "group":
            members, labels = [], []
            for g in self._groups:
                m = np.flatnonzero(ok & (cells.group == g) & cells.post & (e <= max_e))
                if m.size:
                    members.append(m)
                    labels.append(g)
            return _Parts(np.array(labels), members, False), "cohort_weighted", "group"
        members, labels = [], []
        for t in np.unique(cells.time[cells.post & ok]):
            m = np.flatnonzero(ok & cells.post & (cells.time == t))
            members.append(m)
            labels.append(t)
        return _Parts(np.array(labels), members, True), "mean_all", "time"

    def _cell_pg(self, pg, members):
        return pg[np.searchsorted(self._groups, self._cells.group[members])]

    def _combine(self, att, pg, members, estimated):
        if members.size == 0:  # no cell could be estimated (warned at the fit)
            return np.nan
        if not estimated:
            return float(np.mean(att[members]))
        weights = self._cell_pg(pg, members)
        return float(weights @ att[members] / weights.sum())

    def _aggregate_map(self, parts, estimate, mode):
        """Map ((K + G) x (J + 1)) from the influence basis to the J aggregates and the overall.

        Every aggregate is a weighted average of cells: its influence is
        ``psi @ weights`` plus, for cohort-share weights, the influence of the
        estimated shares. A unit of cohort g contributes ``w_i (s_g - c_g
        theta) / (S n)`` to an average ``theta = sum_k pg_k att_k / S`` (``s_g``
        sums and ``c_g`` counts the averaged cells of cohort g; R ``did``'s weight
        influence function): that is the ``E`` block's row g times
        ``(s_g - c_g theta) / S``.
        """
        k, n_groups, n_parts = self._att.size, self._groups.size, len(parts.members)
        cells = np.zeros((k, n_parts))
        shares = np.zeros((n_groups, n_parts))
        for j, members in enumerate(parts.members):
            if members.size == 0:
                continue
            if parts.estimated_weights:
                pg = self._cell_pg(self._pg, members)
                cells[members, j] = pg / pg.sum()
                shares[:, j] = self._share_terms(self._cells.group[members], self._att[members],
                                                 estimate[j], pg.sum())
            else:
                cells[members, j] = 1.0 / members.size
        parts_map = np.vstack([cells, shares])
        if n_parts == 0:  # no effect could be estimated
            overall = np.zeros(k + n_groups)
        elif mode == "single":
            overall = parts_map[:, 0]
        elif mode == "mean_post_events":
            post = np.flatnonzero(parts.labels >= 0)
            overall = parts_map[:, post].mean(axis=1) if post.size else np.zeros(k + n_groups)
        elif mode == "mean_all":
            overall = parts_map.mean(axis=1)
        else:  # cohort-share weighted average of the group effects
            pg = self._pg[np.searchsorted(self._groups, parts.labels)]
            total = pg.sum()
            overall = parts_map @ (pg / total)
            overall[k:] += self._share_terms(parts.labels, estimate[:n_parts],
                                             estimate[n_parts], total)
        return np.column_stack([parts_map, overall])

    def _share_terms(self, cell_groups, att, theta, total):
        """``(s_g - c_g theta) / S`` per cohort g (the weight-influence coefficients)."""
        n_groups = self._groups.size
        idx = np.searchsorted(self._groups, cell_groups)
        s = np.bincount(idx, weights=att, minlength=n_groups)
        c = np.bincount(idx, minlength=n_groups)
        return (s - c * theta) / total

    def _overall_point(self, est, pg, parts, mode):
        if mode == "single":
            return est[0]
        if mode == "mean_post_events":
            post = parts.labels >= 0
            return float(np.mean(est[post])) if post.any() else np.nan
        if mode == "mean_all":
            return float(np.mean(est)) if est.size else np.nan
        if est.size == 0:
            return np.nan
        weights = pg[np.searchsorted(self._groups, parts.labels)]
        return float(weights @ est / weights.sum())

    # --------------------------------------------------------------- headline
    @cached_property
    def _standard(self) -> list:
        """The simple and event-study aggregations, computed together."""
        return self._aggregate_many([("simple", -np.inf, np.inf, None),
                                     ("dynamic", -np.inf, np.inf, self._balance_e)])

    @property
    def _simple(self) -> AggregationResults:
        return self._standard[0]

    @property
    def _dynamic(self) -> AggregationResults:
        return self._standard[1]

    @cached_property
    def _group(self) -> AggregationResults:
        return self.aggregate("group")

    _headline = property(lambda self: self._simple._overall)

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """Effects by event time ``e = t - g`` (R ``aggte(type="dynamic")``)."""
        return effects_table(self.to_dataframe("event_study"), "event_time")

    @property
    def event_study_vcov(self) -> pd.DataFrame:
        """Covariance of the event-study effects (for joint pre-trend tests)."""
        return self._dynamic.vcov.copy()

    @property
    def group_effects(self) -> pd.DataFrame:
        """Effects by cohort (R ``aggte(type="group")``)."""
        return effects_table(self.to_dataframe("group"), "group")

    def pretrend_test(self, level: str = "event_study") -> dict:
        """Wald test that all pre-treatment effects are zero.

        ``level="event_study"`` tests the pre-treatment event-study effects;
        ``"group_time"`` tests every pre-treatment ATT(g, t), as the p-value R
        ``did`` prints. Returns ``statistic`` (Wald / q), ``df1`` (q), ``df2``
        (design df, or None: chi-square) and ``p_value``.

        Parameters
        ----------
        level : {"event_study", "group_time"}, default "event_study"
            Which pre-treatment effects to test.

        Returns
        -------
        dict
        """
        if level == "event_study":
            es = self._dynamic.effects
            pre = es["event_time"].to_numpy() < 0
            est = es["estimate"].to_numpy()[pre]
            vcov = self._dynamic.vcov.to_numpy()[np.ix_(pre, pre)]
        elif level == "group_time":
            gt, var = self._gt
            ok = np.isfinite(self._att)
            pre_all = (~self._cells.post) & ok & (self._cells.base != self._cells.current)
            est = self._att[pre_all]
            index = np.flatnonzero(pre_all[ok])
            vcov = var.vcov[np.ix_(index, index)]
        else:
            raise ValueError(f"level must be 'event_study' or 'group_time', got {level!r}")
        if est.size == 0:
            return {"statistic": np.nan, "df1": 0, "df2": None, "p_value": np.nan}
        return wald_test(est, vcov, self.df)

    # ----------------------------------------------------------------- output
    _title = "Callaway-Sant'Anna group-time ATTs"
    _levels = {"group_time": "_group_time_table", "event_study": "_event_study_table",
               "group": "_group_table", "calendar": "_calendar_table", "overall": "_overall_table"}

    def _group_time_table(self):
        return self._gt[0]

    def _group_table(self):
        return self._group.effects

    def _calendar_table(self):
        return self.aggregate("calendar").effects

    def _event_study_table(self):
        return self._dynamic.effects

    def _info(self) -> list:
        return [
            ("Estimation method", self.estimation_method),
            ("Control group", self.control_group),
            ("Base period", self.base_period),
            ("Anticipation", self.anticipation),
            ("Units (treated / never treated)",
             f"{self.n_units} ({self.n_treated_units} / {self.n_control_units})"),
            ("Observations", self.n_obs),
        ]

    def _tables(self) -> list:
        return [("Overall ATT (simple)", self._overall_table(), ["term"]),
                ("Event study", self._dynamic.effects, ["event_time"])]

    def _repr_fields(self) -> dict:
        return {"cells": self._att.size, "units": self.n_units}


def _event_time(cells) -> np.ndarray:
    """``t - g``, rounded so that float periods (0.1, 0.2, ...) give one value per event time."""
    return np.round(cells.time - cells.group, 9)
