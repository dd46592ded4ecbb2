"""Results of :class:`~diff_diff.ImputationDiD` (Borusyak, Jaravel & Spiess 2024)."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..inference import wald_test
from .base import EventStudyResultsBase
from .table import effects_table, integer_labels, tidy


class ImputationDiDResults(EventStudyResultsBase):
    """Imputed treatment effects, their aggregations and inference.

    Read-only headline fields (``att``, ``se``, ``t_stat``, ``p_value``,
    ``conf_int``) are the overall ATT: the (sampling-weighted) mean imputed
    effect over all treated observations from ``t >= g``. Other attributes may
    be attached freely.

    Attributes
    ----------
    event_study_effects : DataFrame
        Effects by horizon ``h = t - g`` (``h < 0`` only under anticipation).
    group_effects : DataFrame
        Effects by cohort.
    treatment_effects : DataFrame
        Each treated observation's imputed effect and its weight in the overall ATT.
    vcov : DataFrame
        Covariance of all estimands (overall, event study, groups).
    influence_functions : ndarray (n_units, K)
        Unit influence values of the estimands on the sum scale.
    n_obs, n_treated_obs, n_untreated_obs, n_units, n_treated_units, n_control_units
        Observations and units used (``n_control_units``: untreated in every
        observed period, including cohorts first treated after the last one).
    survey_metadata : SurveyMetadata or None
    """

    def _setup(self, estimator, fitted) -> None:
        self.anticipation = estimator.anticipation
        self.aux_partition = estimator.aux_partition
        self._problem = problem = fitted.problem
        self._estimate = estimate = fitted.fit
        rows = problem.rows
        labels = problem.labels
        self._kinds = labels["kind"].to_numpy()
        self._labels = labels["label"].to_numpy()
        tau = estimate.tau
        self.n_obs = int(rows.y.size)
        self.n_treated_obs = int(np.isfinite(tau).sum())
        self.n_untreated_obs = int(problem.untreated_rows.size)
        cohort = problem.unit_cohort
        self.n_units = problem.n_units
        self.n_treated_units = int((cohort > 0).sum())
        self.n_control_units = int((cohort == 0).sum())
        self.groups = integer_labels(self._labels[self._kinds == "group"])
        self.time_periods = integer_labels(rows.times)

    # ---------------------------------------------------------------- engine
    @cached_property
    def _variance(self):
        """Covariance of all estimands, df and (bootstrap) the sup-t critical value."""
        return self._inference.variance(band=self._kinds == "event_study")

    @property
    def df(self):
        """Degrees of freedom of the overall ATT's t inference (design df with a survey
        design, replicate df with replicate weights, else None: normal)."""
        df = self._variance.df
        return df if df is None or np.ndim(df) == 0 else float(df[self._kinds == "overall"][0])

    def _table(self, kind: str, label_name: str, band: bool = False) -> pd.DataFrame:
        mask = self._kinds == kind
        var = self._variance
        df = var.df if var.df is None or np.ndim(var.df) == 0 else var.df[mask]
        labels = integer_labels(self._labels[mask]) if kind != "overall" else ["ATT"]
        table = tidy({label_name: labels}, self._estimate.theta[mask], var.se[mask], df,
                     self.alpha, var.crit if band else None)
        table["n_obs"] = self._estimate.n_obs[mask]
        return table

    @cached_property
    def _overall(self) -> dict:
        return self._table("overall", "term").iloc[0].to_dict()

    _headline = property(lambda self: self._overall)

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """Effects by horizon ``h = t - g`` with intervals (uniform bands with the bootstrap)."""
        return effects_table(self.to_dataframe("event_study"), "event_time")

    @property
    def group_effects(self) -> pd.DataFrame:
        """Effects by cohort (first treated period)."""
        return effects_table(self.to_dataframe("group"), "group")

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of every estimand (rows: overall, event times, groups)."""
        index = pd.MultiIndex.from_arrays([self._kinds, self._labels], names=["kind", "label"])
        return pd.DataFrame(self._variance.vcov, index=index, columns=index)

    @property
    def event_study_vcov(self) -> pd.DataFrame:
        """Covariance of the event-study effects (for joint tests)."""
        es = self._kinds == "event_study"
        labels = integer_labels(self._labels[es])
        return pd.DataFrame(self._variance.vcov[np.ix_(es, es)], index=labels, columns=labels)

    @property
    def influence_functions(self) -> np.ndarray:
        """Unit x estimand influence values on the sum scale (columns as :attr:`vcov`)."""
        return self._estimate.psi.copy()

    @property
    def treatment_effects(self) -> pd.DataFrame:
        """One row per treated observation: unit, time, cohort, horizon, imputed effect
        ``tau`` (NaN where it cannot be imputed) and its weight in the overall ATT."""
        return self.to_dataframe("observation")

    def _treatment_effects(self) -> pd.DataFrame:
        problem, est = self._problem, self._estimate
        rows, tr = problem.rows, problem.treated_rows
        tau = est.tau
        post = np.isfinite(tau) & (problem.horizon >= 0)
        s = self._inference.design.weights[rows.unit_code[tr]]
        weight = np.where(post, s, 0.0)
        total = weight.sum()
        return pd.DataFrame({
            "unit": rows.units[rows.unit_code[tr]],
            "time": integer_labels(rows.times[rows.time_code[tr]]),
            "first_treat": integer_labels(problem.cohort),
            "event_time": integer_labels(problem.horizon),
            "tau": tau,
            "weight": weight / total if total > 0 else weight,
        })

    # ----------------------------------------------------------- pre-trends
    def pretrend_test(self, n_leads: int | None = None) -> dict:
        """Test of parallel pre-trends (BJS 2024, Eq. 9 / Test 1).

        On the untreated observations only, the outcome is regressed on the
        unit and period effects (and covariates) plus indicators of
        pre-treatment horizons; their coefficients are jointly tested to be
        zero with the same variance as the estimates (units, clusters, survey
        design or replicate weights). ``n_leads=k`` uses the ``k`` horizons
        closest to treatment (earlier periods and never-treated units are the
        baseline), as BJS Eq. 9. ``None`` uses every horizon except the
        closest one, the reference: the test that all pre-treatment horizons
        share one level (leads for every horizon would be collinear with the
        unit effects).

        Parameters
        ----------
        n_leads : int, optional
            Number of pre-treatment horizons to test (closest to treatment first).

        Returns
        -------
        dict
            ``statistic`` (Wald / q), ``df1`` (q), ``df2`` (design df, or None:
            chi-square), ``p_value`` and ``leads`` (a tidy table by event time).
        """
        inference = self._inference
        leads, coef, estimate = self._problem.pretrend_estimate(inference.design.weights,
                                                                n_leads)
        ok = np.isfinite(coef)
        se = np.full(leads.size, np.nan)
        vcov, df2 = np.zeros((0, 0)), inference.design_df
        if ok.any():
            var = inference.of(estimate, analytic=True).variance()
            vcov, se[ok], df2 = var.vcov, var.se, var.df
        out = wald_test(estimate.theta, vcov, df2)
        out["leads"] = tidy({"event_time": integer_labels(leads)}, coef, se, df2, self.alpha)
        return out

    # ----------------------------------------------------------------- output
    _title = "Imputation DiD (Borusyak, Jaravel & Spiess)"
    _levels = {"observation": "_treatment_effects", "overall": "_overall_table",
               "event_study": "_event_study_table", "group": "_group_table"}
    _raw_levels = ("observation",)

    def _overall_table(self):
        return self._table("overall", "term")

    def _event_study_table(self):
        return self._table("event_study", "event_time", band=True)

    def _group_table(self):
        return self._table("group", "group")

    def _info(self) -> list:
        return [
            ("Anticipation", self.anticipation),
            ("Auxiliary partition (variance)", self.aux_partition),
            ("Units (treated / untreated throughout)",
             f"{self.n_units} ({self.n_treated_units} / {self.n_control_units})"),
            ("Observations (treated / untreated)",
             f"{self.n_obs} ({self.n_treated_obs} / {self.n_untreated_obs})"),
        ]

    def _tables(self) -> list:
        return [("Overall ATT", self._overall_table(), ["term"]),
                ("Event study", self._event_study_table(), ["event_time"])]

    def _repr_fields(self) -> dict:
        return {"treated_obs": self.n_treated_obs, "units": self.n_units}


class TwoStageDiDResults(ImputationDiDResults):
    """Results of :class:`~diff_diff.TwoStageDiD`: the same estimands and tables as
    :class:`ImputationDiDResults` (``event_study`` is the default table), with the two-stage
    GMM variance."""

    _title = "Two-stage DiD (Gardner; Butts & Gardner GMM variance)"
    _levels = {"event_study": "_event_study_table", "overall": "_overall_table",
               "group": "_group_table", "observation": "_treatment_effects"}

    def _info(self) -> list:
        return [row for row in super()._info() if not row[0].startswith("Auxiliary")]
