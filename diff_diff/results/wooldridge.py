"""Results of :class:`~diff_diff.WooldridgeDiD`: group-time ATTs and their aggregations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.intervals import sqrt_diag, t_inference
from .base import EventStudyResultsBase
from .table import effects_table, integer_labels, tidy, with_wild

KINDS = ("simple", "group", "calendar", "event_study")
WEIGHTS = ("cell", "cohort_share")


def cell_weights(labels, mass, unit_mass, weights):
    """The cells' aggregation weights: their (weighted) sizes, or their cohorts'."""
    if weights == "cell":
        return np.asarray(mass, float)
    return np.array([unit_mass.get(a, 0.0) for a, _ in labels])


def contrast_layout(labels, mass, unit_mass):
    """``(key, rows)`` blocks of every contrast the results report: the cells, then each
    aggregation kind under each weighting (the order CR2 df are requested in)."""
    blocks = [("cells", np.eye(len(labels)))]
    for weights in WEIGHTS:
        w = cell_weights(labels, mass, unit_mass, weights)
        for kind in KINDS:
            blocks.append(((kind, weights), aggregation_rows(labels, w, kind)[1]))
    return blocks


def aggregation_rows(labels, weights, kind):
    """The aggregates of ``kind`` as rows over the cells: ``(keys, rows, column)``; each row
    averages its cells with ``weights`` (``simple``, ``group`` and ``calendar`` over the
    treated cells ``t >= g``; ``event_study`` over every cell, leads included)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    a = np.array([c for c, _ in labels])
    t = np.array([b for _, b in labels])
    e = t - a
    post = e >= 0
    if kind == "simple":
        keys, column, members = [None], None, [post]
    else:
        source = {"group": a, "calendar": t, "event_study": e}[kind]
        scope = np.ones(e.size, bool) if kind == "event_study" else post
        keys = np.unique(source[scope])
        column = {"group": "group", "calendar": "time", "event_study": "event_time"}[kind]
        members = [scope & (source == key) for key in keys]
    rows = []
    for member in members:
        row = np.where(member, weights, 0.0)
        rows.append(row / row.sum())
    return keys, np.array(rows), column, members


class WooldridgeDiDResults(EventStudyResultsBase):
    """ETWFE cell effects ``ATT(g, t)`` and their aggregations.

    Attributes
    ----------
    group_time_effects : DataFrame
        One row per cell: ``group``, ``time``, ``event_time``, tidy columns, and the
        cell's (weighted) number of observations ``n``.
    event_study_effects, group_effects, calendar_effects : DataFrame
        The aggregations with cell weights (:meth:`aggregate` for others).
    vcov : DataFrame
        Covariance of the cells' ATTs.
    cell_coefficients : DataFrame or None
        The linear model's cell coefficients (``group``, ``time``, ``coefficient``): the
        ATTs with centred covariate interactions, the effects at covariate value 0 with
        ``demean_covariates=False``; None for logit/Poisson.
    xvar : str or None
        The heterogeneity variable (``aggregate(..., by_xvar=True)``).
    n_obs, n_units, n_treated_units, n_clusters : int
    survey_metadata : SurveyMetadata or None
    """

    _title = "Extended TWFE (Wooldridge 2021)"
    _levels = {"group_time": "_cell_table", "event_study": "_event_table",
               "group": "_group_table", "calendar": "_calendar_table",
               "overall": "_overall_table"}

    @classmethod
    def from_parts(cls, estimator, fit, var, labels, mass, unit_mass, metadata, wild, n_units,
                   n_treated, covariates, transform=None):
        """From the linear fit: the cell coefficients and their covariance.

        Used by ``WooldridgeDiD.fit``.

        Parameters
        ----------
        estimator, fit, var, labels, mass, unit_mass
            The estimator, the linear fit, its variance, the cells' labels and weights.
        metadata, wild, n_units, n_treated, covariates
            Design summary, wild-bootstrap results, counts and covariates used.
        transform : ndarray (k, rank), optional
            The cells' ATTs as a linear map of the kept coefficients (with ``xvar``);
            default: the first ``k`` coefficients.

        Returns
        -------
        WooldridgeDiDResults
        """
        k = len(labels)
        contrast_df = None
        if var.contrast_df is not None:  # rows as the estimator stacked them (contrast_layout)
            flat, at = np.asarray(var.contrast_df, float), 0
            contrast_df = {}
            for key, rows in contrast_layout(labels, mass, unit_mass):
                contrast_df[key] = flat[at:at + rows.shape[0]]
                at += rows.shape[0]
        coef, vcov = fit.coef[fit.kept][:k], var.vcov[:k, :k]
        if transform is not None:
            coef, vcov = transform @ fit.coef[fit.kept], transform @ var.vcov @ transform.T
        return cls.build(estimator, coef, vcov, var.df,
                         var.n_clusters, var.vcov_type, labels, mass, unit_mass, metadata, wild,
                         int(round(fit.n_obs)), n_units, n_treated, covariates, contrast_df)

    @classmethod
    def build(cls, estimator, coef, vcov, df, n_clusters, vcov_type, labels, mass, unit_mass,
              metadata, wild, n_obs, n_units, n_treated, covariates, contrast_df=None):
        """From cell ATTs, their covariance and the cells' weights (any method).

        Used by ``WooldridgeDiD.fit``.

        Parameters
        ----------
        estimator, coef, vcov, df, n_clusters, vcov_type, labels, mass, unit_mass
            The estimator, the cell ATTs, their covariance and its degrees of freedom, clusters
            and type, the cells' labels and weights.
        metadata, wild, n_obs, n_units, n_treated, covariates, contrast_df
            Design summary, wild-bootstrap results, counts, covariates used and the
            aggregations' degrees of freedom.

        Returns
        -------
        WooldridgeDiDResults
        """
        self = cls.__new__(cls)
        self.estimator_params = estimator.get_params()
        self.alpha = estimator.alpha
        self.n_bootstrap = estimator.n_bootstrap
        self.survey_metadata = metadata
        self.method = estimator.method
        self.control_group = estimator.control_group
        self.anticipation = estimator.anticipation
        self.vcov_type = vcov_type
        self.n_clusters = n_clusters
        self.n_obs = int(n_obs)
        self.n_units, self.n_treated_units = n_units, n_treated
        self.covariates = list(covariates)
        self.covariate_terms = {}
        self.xvar = None
        self._xvar_cells = None
        self.cell_coefficients = None
        self.cohort_trends = bool(getattr(estimator, "cohort_trends", False))
        self.cohort_trend_coefs = {}
        self._coef = np.asarray(coef, float)
        self._vcov = np.asarray(vcov, float)
        self.df = df
        self._labels = labels
        self._mass = np.asarray(mass, float)
        self._unit_mass = unit_mass
        self._contrast_df = contrast_df
        self.groups = sorted({_plain(a) for a, _ in labels})
        self.time_periods = sorted({_plain(b) for _, b in labels})
        index = pd.MultiIndex.from_tuples([(_plain(a), _plain(b)) for a, b in labels],
                                          names=["group", "time"])
        self.vcov = pd.DataFrame(self._vcov, index=index, columns=index)
        cell_df = self.df if contrast_df is None else contrast_df["cells"]
        cells = tidy({"group": integer_labels(np.array([a for a, _ in labels])),
                      "time": integer_labels(np.array([b for _, b in labels])),
                      "event_time": integer_labels(np.array([b - a for a, b in labels]))},
                     self._coef, sqrt_diag(self._vcov), cell_df, self.alpha)
        cells["n"] = self._mass
        self._cells = cells
        simple = self._aggregate("simple", "cell")
        self._headline = with_wild(simple["overall"], wild)
        if contrast_df is not None:
            self.df = simple["df"]
        self.wild_bootstrap = wild
        self._tables_by_kind = {kind: self._aggregate(kind, "cell")["table"]
                                for kind in ("event_study", "group", "calendar")}
        return self

    # ------------------------------------------------------------------ aggregation
    def _weights(self, weights):
        return cell_weights(self._labels, self._mass, self._unit_mass, weights)

    def _aggregate(self, kind, weights):
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        keys, c, column, members = aggregation_rows(self._labels, self._weights(weights), kind)
        est = c @ self._coef
        vcov = c @ self._vcov @ c.T
        df = self.df
        if self._contrast_df is not None:  # CR2: Bell-McCaffrey df of each aggregate
            df = np.asarray(self._contrast_df[(kind, weights)], float)
        if kind == "simple":
            se = float(np.sqrt(vcov[0, 0]))
            one = df if df is None or np.ndim(df) == 0 else float(df[0])
            tt, p, lo, hi = t_inference(float(est[0]), se, one, self.alpha)
            overall = {"estimate": float(est[0]), "se": se, "t_stat": float(tt),
                       "p_value": float(p), "conf_low": float(lo), "conf_high": float(hi)}
            return {"overall": overall, "table": None, "df": one}
        table = tidy({column: integer_labels(np.asarray(keys, float))}, est, sqrt_diag(vcov),
                     df, self.alpha)
        table["n_cells"] = [int(m.sum()) for m in members]
        return {"table": table, "vcov": pd.DataFrame(
            vcov, index=table[column].tolist(), columns=table[column].tolist())}

    def _set_xvar_cells(self, labels, mass, coef, vcov):
        """The effects of every (cell, value of ``xvar``): ``labels`` ``(cell index,
        value)``, their weighted numbers of rows, estimates and covariance."""
        self._xvar_cells = (labels, np.asarray(mass, float), np.asarray(coef, float),
                            np.asarray(vcov, float))

    def _aggregate_by_xvar(self, kind, weights):
        if self.xvar is None:
            raise ValueError("by_xvar=True needs a fit with xvar=")
        if self._xvar_cells is None:
            raise ValueError(f"by_xvar=True: xvar {self.xvar!r} has too many distinct values "
                             "among the treated rows (more than 50): the effects by its values "
                             "are for a discrete xvar")
        if weights != "cell":
            raise ValueError("by_xvar=True aggregates with weights='cell' only")
        labels, mass, coef, vcov = self._xvar_cells
        values = np.array([v for _, v in labels])
        parts = []
        for value in np.unique(values):
            members = np.flatnonzero(values == value)
            cell_labels = [self._labels[labels[i][0]] for i in members]
            if kind != "event_study" and not any(b >= a for a, b in cell_labels):
                continue
            keys, rows, column, groups = aggregation_rows(cell_labels, mass[members], kind)
            full = np.zeros((rows.shape[0], coef.size))
            full[:, members] = rows
            est, cov = full @ coef, full @ vcov @ full.T
            label = {} if column is None else {column: integer_labels(np.asarray(keys, float))}
            table = tidy({**label, self.xvar: np.full(len(keys), value)}, est, sqrt_diag(cov),
                         self.df, self.alpha)
            table["n_cells"] = [int(m.sum()) for m in groups]
            parts.append(table)
        out = pd.concat(parts, ignore_index=True)
        first = [c for c in ("group", "time", "event_time") if c in out.columns]
        return out.sort_values(first + [self.xvar], kind="stable").reset_index(drop=True)

    def aggregate(self, kind: str = "simple", weights: str = "cell", by_xvar: bool = False):
        """An aggregation of the cells: ``"simple"`` (a dict: the overall ATT over the
        treated cells), or a table by ``"group"``, ``"calendar"`` or ``"event_study"``;
        ``weights``: ``"cell"`` (the cells' weighted numbers of observations) or
        ``"cohort_share"`` (the cohorts' weighted numbers of units).

        Parameters
        ----------
        kind : {"simple", "group", "calendar", "event_study"}, default "simple"
            The aggregation.
        weights : {"cell", "cohort_share"}, default "cell"
            How cells are weighted.
        by_xvar : bool, default False
            With a fit with ``xvar=``: a table of the aggregation at each value of
            ``xvar`` (the mean effect of the treated rows with that value; ``etwfe``'s
            ``emfx(by_xvar=True)``), ``"simple"`` included; cell weights only; the
            degrees of freedom are the overall ATT's.

        Returns
        -------
        dict or DataFrame
        """
        if by_xvar:
            if kind not in KINDS:
                raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
            return self._aggregate_by_xvar(kind, weights)
        out = self._aggregate(kind, weights)
        return dict(out["overall"]) if kind == "simple" else out["table"].copy()

    # ------------------------------------------------------------------ tables
    def _cell_table(self) -> pd.DataFrame:
        return self._cells

    def _event_table(self) -> pd.DataFrame:
        return self._tables_by_kind["event_study"]

    def _group_table(self) -> pd.DataFrame:
        return self._tables_by_kind["group"]

    def _calendar_table(self) -> pd.DataFrame:
        return self._tables_by_kind["calendar"]

    @property
    def group_time_effects(self) -> pd.DataFrame:
        """ATT(g, t) of every cell (tidy)."""
        return self.to_dataframe("group_time")

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """Effects by event time (tidy; ``table[e]["effect"]`` as in 3.x)."""
        return effects_table(self.to_dataframe("event_study"), "event_time")

    @property
    def event_study_vcov(self) -> pd.DataFrame:
        """Covariance of the event-study effects."""
        return self._aggregate("event_study", "cell")["vcov"]

    @property
    def group_effects(self) -> pd.DataFrame:
        """Effects by cohort (``aggregate("group")`` as a table)."""
        return effects_table(self.to_dataframe("group"), "group")

    @property
    def calendar_effects(self) -> pd.DataFrame:
        """Effects by calendar period (``aggregate("calendar")`` as a table)."""
        return effects_table(self.to_dataframe("calendar"), "time")

    def _info(self) -> list:
        info = [("Method", self.method), ("Control group", self.control_group),
                ("Anticipation", self.anticipation),
                ("Units (treated)", f"{self.n_units} ({self.n_treated_units})"),
                ("Observations", self.n_obs), ("Cells", len(self._labels)),
                ("Variance", self.vcov_type)]
        if self.covariates:
            info.insert(3, ("Covariates", ", ".join(self.covariates)))
        if self.xvar is not None:  # effects by its values: aggregate(kind, by_xvar=True)
            info.insert(3, ("Heterogeneity (xvar)", f"{self.xvar} (aggregate(by_xvar=True))"))
        if self.n_clusters:
            info.append(("Clusters", self.n_clusters))
        return info

    def _tables(self) -> list:
        return [("Overall ATT (treated cells, by size)", self._overall_table(), ["term"]),
                ("Event study", self._event_table(), ["event_time"]),
                ("By cohort", self._group_table(), ["group"])]

    def _event_study_table(self):
        return self._event_table()

    def _repr_fields(self) -> dict:
        return {"cells": len(self._labels)}


def _plain(value):
    value = float(value)
    return int(value) if value.is_integer() else value
