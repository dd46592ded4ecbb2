"""Results of the regression DiD estimators."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.intervals import sqrt_diag, standard_error, t_inference
from . import hooks
from .base import EventStudyResultsBase, ResultsBase
from .table import effects_table, tidy, with_wild


class RegressionResults(ResultsBase):
    """A regression DiD fit: the ATT coefficient, all coefficients and their covariance.

    ``att``, ``se``, ``t_stat``, ``p_value`` and ``conf_int`` are read-only;
    other attributes may be attached (clients record provenance).
    """

    @classmethod
    def _build(cls, estimator, fit, var, target, metadata, n_treated, n_control, title, wild=None):
        self = cls.__new__(cls)
        self.wild_bootstrap = wild
        self.inference_method = "analytic" if wild is None else "wild_bootstrap"
        self.estimator_params = estimator.get_params()
        self.alpha = estimator.alpha
        self.vcov_type = var.vcov_type
        self.n_clusters = var.n_clusters
        self._title = title
        kept_names = [n for n, k in zip(fit.names, fit.kept) if k]
        self._kept_names = kept_names
        self._fit = fit
        self._var = var
        self._index = kept_names.index(fit.names[target])
        self.coefficients = pd.Series(fit.coef, index=fit.names, name="estimate")
        self.vcov = pd.DataFrame(var.vcov, index=kept_names, columns=kept_names)
        self.n_obs = int(round(fit.n_obs))
        self.n_treated = n_treated
        self.n_control = n_control
        self.r_squared = fit.r_squared
        self.residuals = fit.resid
        self.fitted_values = fit.fitted
        self.survey_metadata = metadata
        df = var.df
        if var.contrast_df is not None:
            df = float(var.contrast_df[self._index])
        self.df = df
        return self

    def _row(self, index, df):
        est = self._fit.coef[self._fit.kept][index]
        se = float(standard_error(self._var.vcov[index, index]))
        t, p, lo, hi = t_inference(est, se, df, self.alpha)
        return {"estimate": float(est), "se": se, "t_stat": float(t), "p_value": float(p),
                "conf_low": float(lo), "conf_high": float(hi), "df": df}

    title = property(lambda self: self._title, doc="What was estimated, as the summary says.")

    def decompose(self, weights: str = "exact"):
        """Goodman-Bacon decomposition of this TWFE coefficient into its 2x2 comparisons
        (:class:`~diff_diff.BaconDecomposition`). Needs the fit without covariates, on a
        balanced panel with numeric periods, of a treatment that switches on once per unit
        and stays on.

        Parameters
        ----------
        weights : {"exact", "approximate"}, default "exact"
            As :class:`~diff_diff.BaconDecomposition`.

        Returns
        -------
        BaconDecompositionResults

        Raises
        ------
        ValueError
            If the fit is not a TWFE fit the decomposition applies to.
        """
        panel = getattr(self, "_panel", None)
        if panel is None:
            raise ValueError("decompose() is available for TwoWayFixedEffects results")
        frame, unit, time = panel["frame"], panel["unit"], panel["time"]
        if panel["covariates"]:
            raise ValueError("decompose() decomposes the TWFE regression without covariates; "
                             "this fit has covariates")
        if not pd.api.types.is_numeric_dtype(frame[time]):
            raise ValueError(f"decompose() needs numeric periods; time column {time!r} has "
                             f"dtype {frame[time].dtype}")
        if len(frame) != frame[unit].nunique() * frame[time].nunique() or \
                frame.duplicated([unit, time]).any():
            raise ValueError("decompose() needs a balanced panel (one row per unit and period)")
        treated = frame[panel["treatment"]] == 1
        first = frame.loc[treated].groupby(unit)[time].min()
        g = frame[unit].map(first).fillna(0)
        if not np.array_equal(((g > 0) & (frame[time] >= g)).to_numpy(), treated.to_numpy()):
            raise ValueError("decompose() needs a treatment that switches on once per unit and "
                             "stays on (staggered adoption)")
        first_treat = panel["treatment"] + "first"
        return hooks.DECOMPOSERS["bacon"](weights).fit(
            frame.assign(**{first_treat: g.to_numpy()}), outcome=panel["outcome"], unit=unit,
            time=time, first_treat=first_treat, survey_design=panel["design"])

    @property
    def _headline(self):
        return with_wild(self._row(self._index, self.df), self.wild_bootstrap)

    _levels = {"coefficients": "_coefficient_table", "overall": "_overall_table"}

    def _coefficient_table(self) -> pd.DataFrame:
        """Every coefficient, tidy (``term, estimate, se, t_stat, p_value, conf_low, conf_high``)."""
        if self._var.contrast_df is not None:
            rows = [dict(term=n, **self._row(i, float(self._var.contrast_df[i])))
                    for i, n in enumerate(self._kept_names)]
            return pd.DataFrame(rows).drop(columns="df")
        return tidy({"term": self._kept_names}, self._fit.coef[self._fit.kept],
                    sqrt_diag(self._var.vcov), self._var.df, self.alpha)

    def _info(self) -> list:
        info = [("Observations", self.n_obs),
                ("Treated / control", f"{self.n_treated} / {self.n_control}"),
                ("Variance", self.vcov_type), ("R-squared", self.r_squared)]
        if self.n_clusters:
            info.append(("Clusters", self.n_clusters))
        if self.df is not None:
            info.append(("Degrees of freedom", self.df))
        return info


class MultiPeriodResults(RegressionResults, EventStudyResultsBase):
    """Event-study regression results: per-period effects and the average post-period ATT.

    ``att``/``se``/... are the average post-period effect (also ``avg_att``,
    ``avg_se``, ``avg_t_stat``, ``avg_p_value``, ``avg_conf_int``, ``avg_df``).
    """

    @classmethod
    def _build_event(cls, estimator, fit, var, metadata, effect_idx, effect_periods, reference,
                     post_periods, contrast, n_treated, n_control, wild=None):
        target = fit.names.index(fit.names[0])
        self = cls._build(estimator, fit, var, target, metadata, n_treated, n_control,
                          "Event-study DiD (multi-period)", wild=wild)
        self.reference_period = reference
        self.post_periods = list(post_periods)
        est = fit.coef[fit.kept]
        rows = []
        q = fit.rank
        for i, period in zip(effect_idx, effect_periods):
            if i < 0:
                rows.append(dict(period=period, estimate=np.nan, se=np.nan, df=np.nan))
                continue
            df = var.df if var.contrast_df is None else float(var.contrast_df[i])
            rows.append(dict(period=period, estimate=est[i],
                             se=float(standard_error(var.vcov[i, i])), df=df))
        rows.append(dict(period=reference, estimate=0.0, se=np.nan, df=np.nan))
        table = pd.DataFrame(rows).sort_values("period", kind="stable").reset_index(drop=True)
        t, p, lo, hi = t_inference(table["estimate"].to_numpy(), table["se"].to_numpy(),
                                   _df_array(table["df"], var.df), self.alpha)
        table["t_stat"], table["p_value"], table["conf_low"], table["conf_high"] = t, p, lo, hi
        table["is_reference"] = table["period"] == reference
        table["post"] = table["period"].isin(self.post_periods)
        periods = list(table["period"])
        first_post = periods.index(min(self.post_periods))
        table["event_time"] = np.arange(len(periods)) - first_post
        self.period_effects = table[["period", "event_time", "estimate", "se", "t_stat", "p_value",
                                     "conf_low", "conf_high", "df", "is_reference", "post"]]
        # covariance by event time: the reference period 0, a period not estimated NaN
        where = dict(zip(effect_periods, effect_idx))
        pos = np.array([where.get(period, -1) for period in periods])
        cov = np.zeros((pos.size, pos.size))
        ok = pos >= 0
        cov[np.ix_(ok, ok)] = var.vcov[np.ix_(pos[ok], pos[ok])]
        lost = ~ok & ~table["is_reference"].to_numpy()
        cov[lost, :], cov[:, lost] = np.nan, np.nan
        events = table["event_time"].to_numpy()
        self.event_study_vcov = pd.DataFrame(cov, index=events, columns=events)
        c = contrast[0]
        if np.isnan(c).any():
            avg = dict(estimate=np.nan, se=np.nan, df=np.nan)
        else:
            df = var.df if var.contrast_df is None else float(var.contrast_df[q])
            avg = dict(estimate=float(c @ est), se=float(standard_error(c @ var.vcov @ c)), df=df)
        t, p, lo, hi = t_inference(avg["estimate"], avg["se"], avg["df"], self.alpha)
        self._avg = with_wild(
            dict(avg, t_stat=float(t), p_value=float(p), conf_low=float(lo), conf_high=float(hi)),
            wild,
        )
        self.df = avg["df"]
        return self

    @property
    def _headline(self):
        return self._avg

    avg_att = property(lambda self: self._avg["estimate"],
                       doc="Average of the post-period effects (= ``att``).")
    avg_se = property(lambda self: self._avg["se"], doc="Standard error of ``avg_att``.")
    avg_t_stat = property(lambda self: self._avg["t_stat"], doc="t statistic of ``avg_att``.")
    avg_p_value = property(lambda self: self._avg["p_value"], doc="p-value of ``avg_att``.")
    avg_conf_int = property(lambda self: (self._avg["conf_low"], self._avg["conf_high"]),
                            doc="Confidence interval of ``avg_att``.")
    avg_df = property(lambda self: self._avg["df"],
                      doc="Degrees of freedom of ``avg_att``'s inference (None: normal).")

    _headline_term = "average post-period ATT"
    _levels = {"coefficients": "_coefficient_table", "event_study": "_event_study_table",
               "overall": "_overall_table"}

    def _info(self) -> list:
        return [("Observations", self.n_obs), ("Reference period", self.reference_period),
                ("Variance", self.vcov_type), ("R-squared", self.r_squared)]

    def _tables(self) -> list:
        return [("Average post-period effect", self._overall_table(), ["term"]),
                ("Period effects (relative to the reference period)", self.period_effects,
                 ["period"])]

    def _event_study_table(self):
        return self.period_effects

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """The period effects by event time (the reference period's row is 0)."""
        return effects_table(self.to_dataframe("event_study"), "event_time")



def _df_array(column, default):
    """Per-row df for t inference (missing: the fit's df, or normal when it has none)."""
    values = column.to_numpy(dtype=float)
    return np.where(np.isnan(values), np.inf if default is None else default, values)
