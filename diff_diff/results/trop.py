"""Results of :class:`~diff_diff.TROP`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.intervals import t_inference
from .base import ResultsBase
from .synthetic import _plain


class TROPResults(ResultsBase):
    """The TROP estimate, the tuning and the fitted model.

    Attributes
    ----------
    lambda_time, lambda_unit, lambda_nn : float
        The tuning parameters used (chosen by cross-validation when a grid had several
        values; ``loocv_score`` is then their mean squared leave-one-out error).
    treatment_effects : DataFrame
        ``unit``, ``period``, ``effect``: every treated cell's effect (its outcome minus
        the fitted untreated outcome).
    unit_effects, time_effects : DataFrame
        The global fit's effects (``method="global"``; None for ``"local"``, which fits
        once per treated cell).
    factor_matrix : ndarray or None
        The global fit's low-rank term ``L`` (units x periods).
    effective_rank : float or None
        Sum of ``L``'s singular values over the largest.
    bootstrap_distribution : ndarray or None
        The bootstrap estimates behind the standard error.
    n_treated, n_control, n_treated_obs, n_obs, n_pre_periods, n_post_periods : int
    method : str
    survey_metadata : SurveyMetadata or None
    """

    _title = "Triply robust panel estimator (Athey, Imbens, Qu & Viviano 2025)"
    _levels = {"overall": "_overall_table", "treatment_effects": "_effects_table"}
    _raw_levels = ("treatment_effects",)

    @classmethod
    def build(cls, estimator, fit, lambdas, score, searched, se, df, draws, units, periods,
              W, metadata, unconverged):
        """From the tuned fit and its resampled or replicate estimates.

        Used by ``TROP.fit``.

        Parameters
        ----------
        estimator, fit
            The estimator and the fit at the chosen tuning values (cells and effects).
        lambdas, score, searched
            The chosen ``(lambda_time, lambda_unit, lambda_nn)``, their leave-one-out
            score and whether a grid was searched.
        se, df, draws
            Standard error, degrees of freedom (survey designs) and the bootstrap or
            replicate estimates (None when the SE is undefined).
        units, periods, W
            Unit and period labels of the panel and its treatment matrix.
        metadata, unconverged
            Design summary, and the number of solver runs that hit ``max_iter``.

        Returns
        -------
        TROPResults
        """
        self = cls.__new__(cls)
        self.estimator_params = estimator.get_params()
        self.alpha, self.method = estimator.alpha, estimator.method
        self.n_bootstrap, self.survey_metadata = estimator.n_bootstrap, metadata
        self.non_absorbing = estimator.non_absorbing
        self.lambda_time, self.lambda_unit, self.lambda_nn = (float(v) for v in lambdas)
        self.loocv_score, self.tuned = float(score), bool(searched)
        treated = W.any(axis=1)
        self.n_treated, self.n_control = int(treated.sum()), int((~treated).sum())
        self.n_treated_obs, self.n_obs = int(W.sum()), int(W.size)
        first = int(np.flatnonzero(W.any(axis=0))[0])
        self.n_pre_periods, self.n_post_periods = first, int(W.shape[1] - first)
        self._effects = pd.DataFrame({"unit": units[fit.rows],
                                      "period": [_plain(p) for p in periods[fit.cols]],
                                      "effect": fit.tau})
        self.unit_effects = self.time_effects = self.factor_matrix = None
        self.effective_rank = None
        if self.method == "global":
            a, b, L = fit.parts
            self.unit_effects = pd.DataFrame({"unit": units, "effect": a})
            self.time_effects = pd.DataFrame({"period": [_plain(p) for p in periods],
                                              "effect": b})
            self.factor_matrix = L.copy()
            s = np.linalg.svd(L, compute_uv=False)
            self.effective_rank = float(s.sum() / s[0]) if s.size and s[0] > 0 else 0.0
        self.bootstrap_distribution = None if draws is None else np.asarray(draws)
        self.unconverged_fits = int(unconverged)
        self.df = df
        t, p, lo, hi = t_inference(fit.att, se, df, self.alpha)
        self._headline = {"estimate": float(fit.att), "se": float(se), "t_stat": float(t),
                          "p_value": float(p), "conf_low": float(lo), "conf_high": float(hi)}
        return self

    @property
    def treatment_effects(self) -> pd.DataFrame:
        """Every treated cell's effect: columns ``unit``, ``period``, ``effect`` (a copy)."""
        return self._effects.copy()

    def get_treatment_effects_df(self) -> pd.DataFrame:
        """diff-diff 3.x: the treated cells' effects."""
        return self._effects.copy()

    def get_unit_effects_df(self) -> pd.DataFrame | None:
        """diff-diff 3.x: the global fit's unit effects."""
        return None if self.unit_effects is None else self.unit_effects.copy()

    def get_time_effects_df(self) -> pd.DataFrame | None:
        """diff-diff 3.x: the global fit's period effects."""
        return None if self.time_effects is None else self.time_effects.copy()

    def _effects_table(self):
        return self._effects

    def _info(self) -> list:
        nn = "inf (no low-rank term)" if np.isinf(self.lambda_nn) else f"{self.lambda_nn:g}"
        tuning = (f"time {self.lambda_time:g}, unit {self.lambda_unit:g}, nuclear norm {nn}"
                  + (f" (leave-one-out CV, MSE {self.loocv_score:.4g})" if self.tuned
                     else " (given)"))
        return [("Method", self.method + (" (one fit per treated cell)"
                                          if self.method == "local" else " (one fit)")),
                ("Treated / control units", f"{self.n_treated} / {self.n_control}"),
                ("Treated cells", self.n_treated_obs),
                ("Tuning", tuning),
                ("Standard error", "replicate weights" if self.bootstrap_distribution is None
                 else f"unit block bootstrap ({len(self.bootstrap_distribution)} draws)")]

    def _repr_fields(self) -> dict:
        return {"treated_cells": self.n_treated_obs}
