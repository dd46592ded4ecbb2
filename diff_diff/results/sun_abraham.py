"""Results of :class:`~diff_diff.SunAbraham`: the event study, the cohort effects, the overall ATT."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.intervals import sqrt_diag, t_inference
from .base import EventStudyResultsBase
from .table import effects_table, integer_labels, tidy, with_wild


class SunAbrahamResults(EventStudyResultsBase):
    """Interaction-weighted event study.

    Attributes
    ----------
    event_study_effects : DataFrame
        ``beta_e`` by relative period (the reference period is not a row), with
        the number of cohorts averaged (``n_groups``).
    cohort_effects : DataFrame
        Every ``delta_ge`` with its standard error and weight in ``beta_e``.
    cohort_weights : dict
        ``{e: {g: w_ge}}``.
    event_study_vcov : DataFrame
    vcov : DataFrame
        Covariance of the cohort x relative-period coefficients.
    n_obs, n_units, n_treated_units : int
    survey_metadata : SurveyMetadata or None
    """

    _title = "Sun-Abraham interaction-weighted event study"
    _levels = {"event_study": "_event_table", "cohort": "_cohort_table",
               "overall": "_overall_table"}

    @classmethod
    def from_parts(cls, estimator, fit, var, agg, labels, metadata, wild, n_units, n_treated,
                   agg_vcov=None):
        """From the saturated cohort x relative-period regression and its aggregation.

        Used by ``SunAbraham.fit``.

        Parameters
        ----------
        estimator, fit, var
            The estimator, the regression and the covariance of its coefficients.
        agg, labels
            The interaction-weighted aggregation (event-study and overall contrasts) and
            the cells' (cohort, relative period) labels.
        metadata, wild
            Design summary and wild-bootstrap results (or None).
        n_units, n_treated
            Units in the fit, and treated units among them.
        agg_vcov : ndarray, optional
            Covariance of the aggregates (event times, then the overall ATT) with the
            estimated cohort shares' term; None: ``c' V c`` with the shares held fixed.

        Returns
        -------
        SunAbrahamResults
        """
        self = cls.__new__(cls)
        self.estimator_params = estimator.get_params()
        self.alpha = estimator.alpha
        self.n_bootstrap = estimator.n_bootstrap
        self.survey_metadata = metadata
        self.control_group = estimator.control_group
        self.anticipation = estimator.anticipation
        self.vcov_type = var.vcov_type
        self.n_clusters = var.n_clusters
        self.n_obs = int(round(fit.n_obs))
        self.n_units, self.n_treated_units = n_units, n_treated
        self.reference_period = -1 - estimator.anticipation
        coef = fit.coef[fit.kept]
        kept_labels = [lab for lab, k in zip(labels, fit.kept[:len(labels)]) if k]
        n_cells = len(kept_labels)
        index = pd.MultiIndex.from_tuples(
            [(_plain(g), _plain(e)) for g, e in kept_labels], names=["group", "event_time"])
        self.vcov = pd.DataFrame(var.vcov[:n_cells, :n_cells], index=index, columns=index)
        df = var.df
        n_events = len(agg["events"])
        row_df = (np.full(n_events + 1, np.nan if df is None else df, dtype=float)
                  if var.contrast_df is None else np.asarray(var.contrast_df[-(n_events + 1):]))
        c = agg["event_contrasts"]
        estimates = c @ coef
        vcov_es = c @ var.vcov @ c.T if agg_vcov is None else agg_vcov[:n_events, :n_events]
        events = integer_labels(np.array(agg["events"]))
        es_df = None if df is None and var.contrast_df is None else row_df[:n_events]
        table = tidy({"event_time": events}, estimates, sqrt_diag(vcov_es), es_df, self.alpha)
        table["n_groups"] = [len(agg["weights"][e]) for e in agg["events"]]
        self._events = table
        self.event_study_vcov = pd.DataFrame(vcov_es, index=events, columns=events)
        cohort_se = sqrt_diag(var.vcov[:n_cells, :n_cells])
        self._cohorts = tidy(
            {"group": integer_labels(np.array([g for g, _ in kept_labels])),
             "event_time": integer_labels(np.array([e for _, e in kept_labels]))},
            coef[:n_cells], cohort_se,
            None if df is None and var.contrast_df is None else df, self.alpha)
        self._cohorts["weight"] = [agg["weights"][e].get(g, 0.0) for g, e in kept_labels]
        self.cohort_weights = {_plain(e): {_plain(g): float(w) for g, w in ws.items()}
                               for e, ws in agg["weights"].items()}
        overall = agg["overall"]
        est = float(overall @ coef)
        var_overall = overall @ var.vcov @ overall if agg_vcov is None else agg_vcov[-1, -1]
        se = float(np.sqrt(var_overall)) if np.isfinite(est) and var_overall >= 0 else np.nan
        overall_df = None if df is None and var.contrast_df is None else float(row_df[-1])
        t, p, lo, hi = t_inference(est, se, overall_df, self.alpha)
        self._headline = with_wild({"estimate": est, "se": se, "t_stat": float(t),
                                    "p_value": float(p), "conf_low": float(lo),
                                    "conf_high": float(hi)}, wild)
        self.df = overall_df
        self.wild_bootstrap = wild
        return self

    def _event_table(self) -> pd.DataFrame:
        return self._events

    def _cohort_table(self) -> pd.DataFrame:
        return self._cohorts

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """``beta_e`` by relative period (tidy; ``table[e]["effect"]`` as in 3.x)."""
        return effects_table(self.to_dataframe("event_study"), "event_time")

    @property
    def cohort_effects(self) -> pd.DataFrame:
        """Every cohort x relative-period coefficient with its weight."""
        return self.to_dataframe("cohort")

    def _info(self) -> list:
        info = [("Control group", self.control_group), ("Anticipation", self.anticipation),
                ("Reference period", self.reference_period),
                ("Units (treated)", f"{self.n_units} ({self.n_treated_units})"),
                ("Observations", self.n_obs), ("Variance", self.vcov_type)]
        if self.n_clusters:
            info.append(("Clusters", self.n_clusters))
        return info

    def _tables(self) -> list:
        return [("Overall ATT (post-period cells, by size)", self._overall_table(), ["term"]),
                ("Event study (interaction-weighted)", self._events, ["event_time"])]

    def _event_study_table(self):
        return self._events

    def _repr_fields(self) -> dict:
        return {"event_times": len(self._events), "units": self.n_units}


def _plain(value):
    value = float(value)
    return int(value) if value.is_integer() else value
