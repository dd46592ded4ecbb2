"""Results of :class:`~diff_diff.HeterogeneousAdoptionDiD`."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..inference.intervals import t_inference
from .base import EventStudyResultsBase
from .table import effects_table


class HeterogeneousAdoptionResults(EventStudyResultsBase):
    """Weighted average slopes by horizon, with robust bias-corrected inference.

    The headline (``att``, ``se``, ``t_stat``, ``p_value``, ``conf_int``) is
    the first effect (the adoption period, event time 0). ``att`` is the
    conventional estimate; ``att_bias_corrected`` is the centre of the
    confidence interval, and ``t_stat``/``p_value`` test it (so ``p_value <
    alpha`` exactly when the interval excludes 0). For the mass-point design
    the two coincide.

    Attributes
    ----------
    design, target_parameter : str
        The design used and ``"WAS"`` or ``"WAS_d_lower"``.
    d_lower : float
    att_bias_corrected, bandwidth, dose_mean : float
        Of the first effect: the interval's centre, the local-linear bandwidth
        (NaN for the mass point) and the denominator.
    n_units, n_obs : int
        Units in the analysis, and units with the first effect's data.
    qug_statistic, qug_p_value : float
        QUG test of the first effect's doses.
    event_study_effects : DataFrame
        One row per horizon: effects at event times ``0, 1, ...`` and placebos
        at ``-2, -3, ...`` (``-1`` is the base period), with the bandwidth,
        units within it, the dose mean and the QUG test of each effect.
    vcov : DataFrame
        Covariance of the bias-corrected estimates across horizons.
    influence_functions : ndarray (n_units, L)
    survey_metadata : SurveyMetadata or None
    """

    def _setup(self, estimator, fitted) -> None:
        self._problem = problem = fitted.problem
        self._estimate = estimate = fitted.fit
        vce = fitted.vce
        self.design = problem.design
        self.d_lower = problem.d_lower
        self.target_parameter = "WAS" if problem.d_lower == 0 else "WAS_d_lower"
        self.vce = vce if problem.design != "mass_point" else None
        self.n_units = problem.n_units
        adoption = float(problem.panel.times[problem.panel.adoption])
        self.adoption_period = int(adoption) if adoption.is_integer() else adoption
        first = next(j for j, hz in enumerate(problem.horizons)  # the headline: effect 1
                     if hz.kind == "effect" and hz.lag == 1)
        self.att_bias_corrected = float(estimate.att_bc[first])
        self.bandwidth = float(estimate.bandwidth[first])
        self.dose_mean = float(estimate.dose_mean[first])
        self.n_obs = int(estimate.n_obs[first])
        self.qug_statistic, self.qug_p_value = map(float, estimate.qug[first])

    # ---------------------------------------------------------------- engine
    @cached_property
    def _variance(self):
        return self._inference.variance()

    @property
    def df(self):
        """Degrees of freedom of t inference (design df with a survey design, else normal)."""
        return self._variance.df

    @cached_property
    def _table(self) -> pd.DataFrame:
        est, var = self._estimate, self._variance
        t, p, lo, hi = t_inference(est.att_bc, var.se, var.df, self.alpha)
        hz = self._problem.horizons
        table = pd.DataFrame({
            "event_time": [h.event_time for h in hz],
            "kind": [h.kind for h in hz],
            "horizon": [h.lag for h in hz],
            "estimate": est.att,
            "estimate_bc": est.att_bc,
            "se": var.se,
            "t_stat": t,
            "p_value": p,
            "conf_low": lo,
            "conf_high": hi,
            "n_obs": est.n_obs,
            "bandwidth": est.bandwidth,
            "n_in_bandwidth": est.n_in_bandwidth,
            "dose_mean": est.dose_mean,
            "qug_statistic": est.qug[:, 0],
            "qug_p_value": est.qug[:, 1],
        })
        if var.crit is not None:
            ok = np.isfinite(lo)
            table["cband_low"] = np.where(ok, est.att_bc - var.crit * var.se, np.nan)
            table["cband_high"] = np.where(ok, est.att_bc + var.crit * var.se, np.nan)
        return table.sort_values("event_time", kind="stable").reset_index(drop=True)

    @property
    def _headline(self) -> dict:
        row = self._table[(self._table["kind"] == "effect") & (self._table["horizon"] == 1)]
        return row.iloc[0].to_dict()

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """Effects and placebos by event time (bias-corrected intervals)."""
        return effects_table(self.to_dataframe("event_study"), "event_time")

    def _event_study_table(self):
        """For plots: points at the intervals' (bias-corrected) centres."""
        return self._table.assign(estimate=self._table["estimate_bc"])

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the bias-corrected estimates, by event time."""
        labels = [h.event_time for h in self._problem.horizons]
        return pd.DataFrame(self._variance.vcov, index=labels, columns=labels)

    @property
    def influence_functions(self) -> np.ndarray:
        """Unit x horizon influence values (sum scale), columns as :attr:`vcov`."""
        return self._estimate.psi.copy()

    _title = "Heterogeneous adoption DiD (weighted average slope)"
    _headline_term = "WAS"
    _levels = {"event_study": "_event_study_effects", "overall": "_overall_table"}

    def _event_study_effects(self) -> pd.DataFrame:
        return self._table

    def _info(self) -> list:
        return [
            ("Design", self.design),
            ("Target", self.target_parameter),
            ("Lowest dose d_lower", self.d_lower),
            ("Adoption period", self.adoption_period),
            ("Units", self.n_units),
            ("Bandwidth (first effect)", self.bandwidth),
            ("Residuals (local-linear variance)", self.vce or "2SLS"),
            ("QUG test (first effect) T / p", f"{self.qug_statistic:.4g} / "
                                             f"{self.qug_p_value:.4g}"),
        ]

    def _tables(self) -> list:
        title = ("First effect (2SLS)" if self.design == "mass_point" else
                 "First effect (estimate: conventional; interval: bias-corrected)")
        tables = [(title, self._overall_table(), ["term"])]
        if len(self._table) > 1:
            tables.append(("By event time", self._table, ["event_time"]))
        return tables

    def _repr_fields(self) -> dict:
        return {"design": repr(self.design), "horizons": len(self._problem.horizons)}
