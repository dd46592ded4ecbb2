"""Results of :class:`~diff_diff.StackedDiD`: the stacked event study and its overall ATT."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.intervals import sqrt_diag, t_inference
from .base import EventStudyResultsBase
from .table import effects_table, integer_labels, tidy, with_wild


class StackedDiDResults(EventStudyResultsBase):
    """Stacked event study with corrective weights.

    Attributes
    ----------
    event_study_effects : DataFrame
        ``delta_e`` by event time (the reference period is not a row).
    event_study_vcov : DataFrame
    groups, trimmed_groups : list
        Adoption cohorts with a sub-experiment, and those trimmed (window outside the
        data, or no clean controls).
    stacked_data : DataFrame
        The stacked rows: the data's columns plus ``_sub_exp`` (the focal cohort),
        ``_treat``, ``_event_time`` and ``_q_weight``.
    n_sub_experiments, n_obs (stacked rows), n_treated_units, n_control_units
    kappa_pre, kappa_post, weighting, control_group, cluster_name, n_clusters
    survey_metadata : SurveyMetadata or None
    """

    _title = "Stacked DiD (Wing, Freedman & Hollingsworth 2024)"
    _levels = {"event_study": "_event_table", "overall": "_overall_table"}

    @classmethod
    def from_parts(cls, estimator, fit, var, events, overall, stack, source, metadata, wild):
        """From the stacked event-study regression: its coefficients and their covariance.

        Used by ``StackedDiD.fit``.

        Parameters
        ----------
        estimator, fit, var
            The estimator, the weighted regression on the stack and its variance.
        events, overall
            The event times of the coefficients and the contrast of the overall ATT.
        stack
            The stack's bookkeeping (rows, sub-experiments, treated rows, event times,
            corrective weights ``stack.q``).
        source : tuple
            ``(frame, is_stack)``: the stacked rows are ``frame.iloc[stack.rows]``, or
            ``frame`` itself when ``is_stack``; read when ``stacked_data`` is first asked
            for.
        metadata, wild
            Design summary and wild-bootstrap results (or None).

        Returns
        -------
        StackedDiDResults
        """
        self = cls.__new__(cls)
        self.estimator_params = estimator.get_params()
        self.alpha = estimator.alpha
        self.n_bootstrap = estimator.n_bootstrap
        self.survey_metadata = metadata
        for name in ("kappa_pre", "kappa_post", "weighting", "control_group", "anticipation"):
            setattr(self, name, getattr(estimator, name))
        self.cluster_name = estimator.cluster
        self.vcov_type = var.vcov_type
        self.n_clusters = var.n_clusters
        self.n_obs = self.n_stacked_obs = stack.n_rows
        self.n_sub_experiments = stack.n_sub
        self.groups = [_plain(a) for a in stack.groups]
        self.trimmed_groups = [_plain(a) for a in stack.trimmed]
        self.n_treated_units, self.n_control_units = stack.n_units()
        self.reference_period = -1 - estimator.anticipation
        k = len(events)
        coef = fit.coef[fit.kept]
        vcov = var.vcov[:k, :k]
        df = var.df
        # CR2 (hc2_bm): Bell-McCaffrey df per contrast (the events, then the overall ATT)
        rows_df = None if var.contrast_df is None else np.asarray(var.contrast_df, float)
        labels = integer_labels(np.array(events))
        self._events = tidy({"event_time": labels}, coef[:k], sqrt_diag(vcov),
                            df if rows_df is None else rows_df[:k], self.alpha)
        self.event_study_vcov = pd.DataFrame(vcov, index=labels, columns=labels)
        est = float(overall @ coef)
        se = float(np.sqrt(overall @ var.vcov @ overall))
        if rows_df is not None:
            df = float(rows_df[-1])
        t, p, lo, hi = t_inference(est, se, df, self.alpha)
        self._headline = with_wild({"estimate": est, "se": se, "t_stat": float(t),
                                    "p_value": float(p), "conf_low": float(lo),
                                    "conf_high": float(hi)}, wild)
        self.df = df
        self.wild_bootstrap = wild
        # the stacked frame is assembled when first asked for (it is as large as the stack)
        self._stacked = None
        self._stack_parts = (source, stack)
        return self

    @property
    def stacked_data(self) -> pd.DataFrame:
        """The stacked rows with ``_sub_exp``, ``_treat``, ``_event_time``, ``_q_weight``."""
        if self._stacked is None:
            (frame, is_stack), stack = self._stack_parts
            stacked = frame if is_stack else frame.iloc[stack.rows]
            extra = pd.DataFrame({"_sub_exp": np.array(stack.groups, dtype=float)[stack.sub],
                                  "_treat": stack.treat.astype(int),
                                  "_event_time": stack.event, "_q_weight": stack.q})
            base = stacked.drop(columns=[c for c in extra.columns if c in stacked.columns])
            self._stacked = pd.concat([base.reset_index(drop=True), extra], axis=1)
            self._stack_parts = None
        return self._stacked.copy()

    def _event_table(self) -> pd.DataFrame:
        return self._events

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """``delta_e`` by event time (tidy; ``table[e]["effect"]`` as in 3.x)."""
        return effects_table(self.to_dataframe("event_study"), "event_time")

    def _info(self) -> list:
        info = [("Event window", f"[-{self.kappa_pre}, {self.kappa_post}]"),
                ("Weighting", self.weighting), ("Control group", self.control_group),
                ("Sub-experiments", f"{self.n_sub_experiments} (cohorts {self.groups})")]
        if self.trimmed_groups:
            info.append(("Trimmed cohorts", str(self.trimmed_groups)))
        info += [("Units (treated / control)", f"{self.n_treated_units} / "
                  f"{self.n_control_units}"),
                 ("Stacked observations", self.n_obs),
                 ("Variance", f"{self.vcov_type}, clustered by {self.cluster_name}")]
        if self.n_clusters:
            info.append(("Clusters", self.n_clusters))
        return info

    def _tables(self) -> list:
        return [("Overall ATT (mean of the post-period effects)", self._overall_table(),
                 ["term"]),
                ("Event study (trimmed aggregate ATT by event time)", self._events,
                 ["event_time"])]

    def _event_study_table(self):
        return self._events

    def _repr_fields(self) -> dict:
        return {"sub_experiments": self.n_sub_experiments, "event_times": len(self._events)}


def _plain(value):
    value = float(value)
    return int(value) if value.is_integer() else value
