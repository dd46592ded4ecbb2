"""Results of :class:`~diff_diff.SyntheticDiD`: the ATT, the unit and time weights."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.intervals import t_inference
from .base import ResultsBase


class SyntheticDiDResults(ResultsBase):
    """Synthetic DiD estimate.

    Diagnostics (refits on the stored panel): :meth:`in_time_placebo`,
    :meth:`sensitivity_to_zeta_omega`, :meth:`get_loo_effects_df`,
    :meth:`get_weight_concentration`, :meth:`trajectories`.

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
    pre_treatment_fit, pre_treatment_level_gap : float
        The pre-period gap between the treated average and the synthetic control (the
        controls' ``omega``-weighted average): its RMSE after removing its mean (the
        level is differenced out; NaN with one pre-period) and its mean.
    survey_metadata : SurveyMetadata or None
    """

    _title = "Synthetic difference-in-differences (Arkhangelsky et al. 2021)"
    _levels = {"overall": "_overall_table", "unit_weights": "_unit_table",
               "time_weights": "_time_table"}
    _raw_levels = ("unit_weights", "time_weights")

    @classmethod
    def build(cls, estimator, fit, se, df, draws, units, n0, periods, t0, metadata, n_obs,
              snapshot):
        """Assemble the result of a fit (used by ``SyntheticDiD.fit``).

        Parameters
        ----------
        estimator, fit, se, df, draws, units, n0, periods, t0, metadata, n_obs, snapshot
            The estimator, its weights and estimate, the variance draws, the panel's units
            (controls first, ``n0`` of them) and periods (``t0`` pre-periods), the design
            summary, the number of rows and the stored panel for diagnostics.

        Returns
        -------
        SyntheticDiDResults
        """
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
        # the panel, the treated units' weights and the estimator's refit function
        self._Y, self._w1, self._refit = snapshot
        self._n0, self._t0, self._fit, self._periods = n0, t0, fit, np.asarray(periods)
        self._unit_labels = np.asarray(units)
        gap = self._gap(fit.omega, self._Y[:, :t0])
        self.pre_treatment_fit = _shape_rmse(gap)
        self.pre_treatment_level_gap = float(gap.mean())
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
        """The controls' weights omega: columns ``unit``, ``weight`` (a copy)."""
        return self._units.copy()

    @property
    def time_weights(self) -> pd.DataFrame:
        """The pre-periods' weights lambda: columns ``period``, ``weight`` (a copy)."""
        return self._times.copy()

    def get_unit_weights_df(self) -> pd.DataFrame:
        """diff-diff 3.x: the unit weights, largest first."""
        return self._units.sort_values("weight", ascending=False).reset_index(drop=True)

    def get_time_weights_df(self) -> pd.DataFrame:
        """diff-diff 3.x: the time weights."""
        return self._times.copy()

    # ------------------------------------------------------------ diagnostics
    def _treated_average(self, Y):
        n0 = self._n0
        w1 = (np.full(Y.shape[0] - n0, 1.0 / (Y.shape[0] - n0)) if self._w1 is None
              else self._w1 / self._w1.sum())
        return w1 @ Y[n0:]

    def _gap(self, omega, Y):
        """Treated average minus synthetic control, period by period."""
        return self._treated_average(Y) - omega @ Y[:self._n0]

    def trajectories(self) -> pd.DataFrame:
        """``period``, ``treated`` (the treated units' average), ``synthetic`` (the controls'
        ``omega``-weighted average) and ``time_weight`` (lambda; 0 after treatment)."""
        return pd.DataFrame({"period": self._periods,
                             "treated": self._treated_average(self._Y),
                             "synthetic": self._fit.omega @ self._Y[:self._n0],
                             "time_weight": np.r_[self._fit.lam,
                                                  np.zeros(self._Y.shape[1] - self._t0)]})

    def in_time_placebo(self, fake_treatment_periods=None, zeta_omega_override=None,
                        zeta_lambda_override=None) -> pd.DataFrame:
        """The estimate with treatment moved to earlier pre-periods: a refit on the
        pre-period data alone with the fit's ``zeta_omega`` and ``zeta_lambda`` (unless
        overridden; as a fresh fit with those given). A credible design gives placebo
        effects near 0.

        Parameters
        ----------
        fake_treatment_periods : list, optional
            Pre-periods to treat as the first treated one; default every pre-period that
            leaves at least two earlier periods.

        Returns
        -------
        DataFrame
            ``fake_treatment_period``, ``att``, ``pre_fit_rmse`` (shape RMSE on the fake
            pre-window), ``n_pre_fake``, ``n_post_fake``.
        """
        t0, pre = self._t0, list(self._periods[:self._t0])
        if fake_treatment_periods is None:
            positions = list(range(2, t0))
            if not positions:
                raise ValueError("in_time_placebo: needs at least three pre-periods (two "
                                 "before a fake treatment period and one after)")
        else:
            positions = []
            for period in np.atleast_1d(np.asarray(fake_treatment_periods, dtype=object)):
                match = [i for i, p in enumerate(pre) if p == period]
                if not match:
                    raise ValueError(f"in_time_placebo: {period!r} is not a pre-period "
                                     f"(pre-periods: {_plain(pre[0])} .. {_plain(pre[-1])})")
                if match[0] < 1:
                    raise ValueError(f"in_time_placebo: {period!r} leaves no earlier period "
                                     "to fit the weights on")
                positions.append(match[0])
        fit = self._fit
        zo = fit.zeta_omega if zeta_omega_override is None else float(zeta_omega_override)
        zl = fit.zeta_lambda if zeta_lambda_override is None else float(zeta_lambda_override)
        Y = self._Y[:, :t0]
        rows = []
        for i in positions:
            placebo = self._refit(Y, self._n0, i, self._w1, zo, zl)
            rows.append({"fake_treatment_period": _plain(pre[i]), "att": placebo.tau,
                         "pre_fit_rmse": _shape_rmse(self._gap(placebo.omega, Y[:, :i])),
                         "n_pre_fake": i, "n_post_fake": t0 - i})
        return pd.DataFrame(rows)

    def sensitivity_to_zeta_omega(self, zeta_grid=None,
                                  multipliers=(0.25, 0.5, 1.0, 2.0, 4.0)) -> pd.DataFrame:
        """The estimate over unit-weight regularisation levels (time weights do not depend
        on ``zeta_omega``): ``zeta_omega``, ``att``, ``pre_fit_rmse``, ``max_unit_weight``,
        ``effective_n`` (``1 / sum(omega^2)``). Default grid: ``multipliers`` times the
        fit's ``zeta_omega``.

        Parameters
        ----------
        zeta_grid : sequence of float, optional
            The regularisation levels to refit at.
        multipliers : sequence of float, default (0.25, 0.5, 1.0, 2.0, 4.0)
            Used when ``zeta_grid`` is omitted.

        Returns
        -------
        DataFrame
        """
        fit = self._fit
        grid = (np.asarray(multipliers, float) * fit.zeta_omega if zeta_grid is None
                else np.asarray(zeta_grid, float).ravel())
        if grid.size == 0 or not np.all(np.isfinite(grid)) or (grid < 0).any():
            raise ValueError("sensitivity_to_zeta_omega: the grid must hold numbers >= 0")
        rows = []
        for zeta in grid:
            refit = self._refit(self._Y, self._n0, self._t0, self._w1, float(zeta),
                                fit.zeta_lambda, fit.min_decrease, lam=fit.lam)
            rows.append({"zeta_omega": float(zeta), "att": refit.tau,
                         "pre_fit_rmse": _shape_rmse(self._gap(refit.omega,
                                                               self._Y[:, :self._t0])),
                         "max_unit_weight": float(refit.omega.max()),
                         "effective_n": float(1.0 / (refit.omega ** 2).sum())})
        return pd.DataFrame(rows)

    def get_loo_effects_df(self) -> pd.DataFrame:
        """The estimate leaving out one unit at a time with the weights fixed (R's
        algorithm 3; the jackknife's replicates when it leaves out units, not under a
        PSU or cluster design, which leaves out PSUs): ``unit``, ``role`` (control / treated),
        ``att_loo`` and ``change`` (``att_loo - att``), largest change first. NaN where the
        estimate is undefined without the unit (the only weighted control, the only treated
        unit)."""
        fit, n0, Y = self._fit, self._n0, self._Y
        t1 = Y.shape[1] - self._t0
        series = Y @ np.r_[-fit.lam, np.full(t1, 1.0 / t1)]
        n = Y.shape[0]
        w1 = np.ones(n - n0) if self._w1 is None else np.asarray(self._w1, float)
        out = np.empty(n)
        for i in range(n):
            omega = fit.omega.copy()
            weights = w1.copy()
            if i < n0:
                omega[i] = 0.0
            else:
                weights[i - n0] = 0.0
            if omega.sum() <= 0 or weights.sum() <= 0:
                out[i] = np.nan
                continue
            out[i] = weights @ series[n0:] / weights.sum() - omega @ series[:n0] / omega.sum()
        table = pd.DataFrame({"unit": self._unit_labels,
                              "role": np.where(np.arange(n) < n0, "control", "treated"),
                              "att_loo": out, "change": out - self.att})
        order = np.argsort(-np.abs(table["change"].to_numpy()), kind="stable")
        return table.iloc[order].reset_index(drop=True)

    def get_weight_concentration(self, top_k: int = 5) -> dict:
        """``effective_n`` (``1 / sum(omega^2)``), ``herfindahl`` (``sum(omega^2)``),
        ``top_k_share`` (the ``top_k`` largest weights' sum) and ``top_k`` used.

        Parameters
        ----------
        top_k : int, default 5
            Number of largest unit weights summed in ``top_k_share``.

        Returns
        -------
        dict
        """
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0, got {top_k!r}")
        omega = np.sort(self._fit.omega)[::-1]
        k = int(min(top_k, omega.size))
        herfindahl = float((omega ** 2).sum())
        return {"effective_n": 1.0 / herfindahl, "herfindahl": herfindahl,
                "top_k_share": float(omega[:k].sum()), "top_k": k}

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


def _shape_rmse(gap) -> float:
    """RMSE of a gap series around its mean (NaN with fewer than two periods)."""
    gap = np.asarray(gap, float)
    return float(np.sqrt(((gap - gap.mean()) ** 2).mean())) if gap.size >= 2 else float("nan")


def _plain(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    return int(value) if value.is_integer() else value
