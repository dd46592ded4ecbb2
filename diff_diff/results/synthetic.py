"""Results of :class:`~diff_diff.SyntheticDiD`: the ATT, the unit and time weights."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.intervals import t_inference
from .base import ResultsBase


class SyntheticDiDResults(ResultsBase):
    """Synthetic DiD estimate.

    Attributes
    ----------
    unit_weights : DataFrame
        ``unit``, ``weight``: the controls' weights omega (sum to one).
    time_weights : DataFrame
        ``period``, ``weight``: the pre-periods' weights lambda (sum to one).
    noise_level, zeta_omega, zeta_lambda, min_decrease : float
        The regularisation used (R ``synthdid``'s defaults unless given).
    variance_method, n_bootstrap : str, int
    variance_effects : ndarray or None
        The placebo or bootstrap estimates behind the standard error.
    pre_periods, post_periods : list
    n_treated, n_control, n_obs : int
    survey_metadata : SurveyMetadata or None
    """

    _title = "Synthetic difference-in-differences (Arkhangelsky et al. 2021)"
    _levels = {"overall": "_overall_table", "unit_weights": "_unit_table",
               "time_weights": "_time_table"}
    _raw_levels = ("unit_weights", "time_weights")

    @classmethod
    def build(cls, estimator, fit, se, df, draws, units, n0, periods, t0, metadata, n_obs):
        self = cls.__new__(cls)
        self.estimator_params = estimator.get_params()
        self.alpha = estimator.alpha
        self.n_bootstrap = estimator.n_bootstrap
        self.variance_method = estimator.variance_method
        self.survey_metadata = metadata
        self.noise_level, self.zeta_omega = fit.noise, fit.zeta_omega
        self.zeta_lambda, self.min_decrease = fit.zeta_lambda, fit.min_decrease
        self.n_control, self.n_treated = int(n0), int(len(units) - n0)
        self.n_obs = int(n_obs)
        self.pre_periods = [_plain(p) for p in periods[:t0]]
        self.post_periods = [_plain(p) for p in periods[t0:]]
        self._units = pd.DataFrame({"unit": units[:n0], "weight": fit.omega})
        self._times = pd.DataFrame({"period": periods[:t0], "weight": fit.lam})
        self.variance_effects = None if draws is None else np.asarray(draws)
        self.df = df
        t, p, lo, hi = t_inference(fit.tau, se, df, self.alpha)
        self._headline = {"estimate": float(fit.tau), "se": float(se), "t_stat": float(t),
                          "p_value": float(p), "conf_low": float(lo), "conf_high": float(hi)}
        return self

    @property
    def placebo_effects(self):
        """3.x name of :attr:`variance_effects`."""
        return self.variance_effects

    @property
    def unit_weights(self) -> pd.DataFrame:
        return self._units.copy()

    @property
    def time_weights(self) -> pd.DataFrame:
        return self._times.copy()

    def get_unit_weights_df(self) -> pd.DataFrame:
        """diff-diff 3.x: the unit weights, largest first."""
        return self._units.sort_values("weight", ascending=False).reset_index(drop=True)

    def get_time_weights_df(self) -> pd.DataFrame:
        """diff-diff 3.x: the time weights."""
        return self._times.copy()

    def _unit_table(self):
        return self._units

    def _time_table(self):
        return self._times

    def _info(self) -> list:
        top = self.get_unit_weights_df().head(3)
        return [("Treated / control units", f"{self.n_treated} / {self.n_control}"),
                ("Pre / post periods", f"{len(self.pre_periods)} / {len(self.post_periods)}"),
                ("Largest unit weights", ", ".join(f"{u}: {w:.3f}" for u, w in
                                                    zip(top["unit"], top["weight"]))),
                ("Regularisation", f"zeta_omega {self.zeta_omega:.4g}, zeta_lambda "
                                   f"{self.zeta_lambda:.3g} (noise {self.noise_level:.4g})"),
                ("Standard error", f"{self.variance_method}"
                 + (f" ({self.n_bootstrap} draws)" if self.variance_method != "jackknife"
                    else ""))]

    def _repr_fields(self) -> dict:
        return {"treated": self.n_treated, "controls": self.n_control}


def _plain(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    return int(value) if value.is_integer() else value
