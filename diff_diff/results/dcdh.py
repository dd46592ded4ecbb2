"""Results of :class:`~diff_diff.ChaisemartinDHaultfoeuille`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference import wald_test
from .base import EventStudyResultsBase
from .table import effects_table, tidy


class ChaisemartinDHaultfoeuilleResults(EventStudyResultsBase):
    """Dynamic effects of switching treatments.

    The headline (``att``, ``se``, ...) is ``DID_1`` (with a binary absorbing treatment
    the DID_M of de Chaisemartin & D'Haultfoeuille 2020).

    Attributes
    ----------
    event_study_effects : DataFrame
        ``event_time`` (``l = 1 .. L``: effects ``l - 1`` periods after the switch are at
        ``l``; placebos at ``-1, -2, ...``), the tidy columns, ``n_switchers`` (with the
        bootstrap and ``cband=True``, ``cband_low``/``cband_high``: a uniform band over
        the effects).
    normalized_effects : DataFrame
        ``DID_l`` divided by the switchers' average cumulated treatment change ``dose``
        (``sum_{k<l} |D_{F_g+k} - D_g1|``); placebos by the same quantity over their
        switchers.
    average_total_effect : DataFrame
        One row: the effects' switcher-weighted sum over the doses' (per unit of
        treatment); its standard error includes the covariances between horizons.
    joiners_leavers : DataFrame
        DID_1 of the joiners and of the leavers (3.x fields ``joiners_att``, ``joiners_se``,
        ``joiners_t_stat``, ``joiners_p_value``, ``joiners_conf_int``, the same for
        ``leavers_``, and ``joiners_available`` / ``leavers_available``).
    joint_tests : DataFrame
        Wald tests with the covariance between horizons (``did_multiplegt_dyn``'s
        ``p_jointeffects``, ``p_jointplacebo`` and, with ``effects_equal=True``,
        ``p_equality_effects``).
    n_groups, n_switchers, n_obs : int
    survey_metadata : SurveyMetadata or None
    """

    _title = "de Chaisemartin & D'Haultfoeuille event-study DiD"
    _headline_term = "DID_1"
    _levels = {"overall": "_overall_table", "event_study": "_event_table",
               "normalized": "_normalized_table", "average_total_effect": "_ate_table",
               "joiners_leavers": "_directions_table"}

    def _setup(self, estimator, fitted) -> None:
        problem, inference = fitted.problem, self._inference
        theta = inference.estimate.theta
        var = inference.variance()
        se, self.df = var.se, var.df
        L, P = len(problem.effects), len(problem.placebos)
        info = fitted.info
        crit = None
        if var.draws is not None and estimator.cband:  # sup-t band over the effects
            crit = inference.variance(np.eye(theta.size)[:, :L]).crit
        effects = tidy({"event_time": np.array(problem.effects)}, theta[:L], se[:L], self.df,
                       self.alpha, crit)
        effects["n_switchers"] = info["n_switchers"]
        placebos = tidy({"event_time": -np.array(problem.placebos, dtype=int)},
                        theta[L:L + P], se[L:L + P], self.df, self.alpha)
        placebos["n_switchers"] = info["n_placebo"]
        self._events = pd.concat([placebos.iloc[::-1], effects], ignore_index=True)
        self._events["n_switchers"] = self._events["n_switchers"].astype(int)
        norm_effects = tidy({"event_time": np.array(problem.effects)},
                            theta[L + P:2 * L + P], se[L + P:2 * L + P], self.df,
                            self.alpha).assign(dose=info["dose"])
        norm_placebos = tidy({"event_time": -np.array(problem.placebos, dtype=int)},
                             theta[2 * L + P:2 * L + 2 * P], se[2 * L + P:2 * L + 2 * P],
                             self.df, self.alpha).assign(dose=info["placebo_dose"])
        self._normalized = pd.concat([norm_placebos.iloc[::-1], norm_effects],
                                     ignore_index=True)
        k = len(problem.directions)
        at = theta.size - k - 1  # the average total effect (none with linear trends)
        if problem.has_ate:
            self._ate = tidy({"term": ["average_total_effect"]}, theta[at:at + 1],
                             se[at:at + 1], self.df, self.alpha)
        else:
            self._ate = tidy({"term": ["average_total_effect"]}, np.full(1, np.nan),
                             np.full(1, np.nan), self.df, self.alpha)
        est, err = np.full(2, np.nan), np.full(2, np.nan)
        for j, s in enumerate(problem.directions):
            slot = 0 if s > 0 else 1
            est[slot], err[slot] = theta[at + 1 + j], se[at + 1 + j]
        self._directions = tidy({"term": ["joiners", "leavers"]}, est, err, self.df,
                                self.alpha)
        self._directions["n_switchers"] = [info.get("n_joiners", 0), info.get("n_leavers", 0)]
        self.joiners_available = 1.0 in problem.directions
        self.leavers_available = -1.0 in problem.directions
        self._headline = effects.iloc[0].to_dict()
        self.n_groups = int(problem.Y.shape[0])
        self.n_obs = int(problem.Y.size)
        self.n_switchers = int((problem.F < problem.Y.shape[1]).sum())
        self.L_max = L
        self._joint = self._joint_tests(theta, L, P, estimator.effects_equal)

    def _joint_tests(self, theta, L, P, equal):
        """Wald tests: all effects zero, all placebos zero (each with at least two), and
        with ``equal`` all effects equal (the ``L - 1`` first effects minus their mean)."""
        inference, k = self._inference, theta.size
        rows = []

        def test(name, mapping, size):
            out = {"statistic": np.nan, "df1": mapping.shape[1], "df2": inference.design_df,
                   "p_value": np.nan}
            if size >= 2:
                var = inference.variance(mapping)
                out = wald_test(mapping.T @ theta, var.vcov, inference.design_df)
            rows.append({"test": name, **out})

        test("effects", np.eye(k)[:, :L], L)
        test("placebos", np.eye(k)[:, L:L + P], P)
        if equal:
            contrast = np.eye(k)[:, :L] - 1.0 / L * np.outer(np.r_[np.ones(L), np.zeros(k - L)],
                                                            np.ones(L))
            test("effects_equal", contrast[:, :L - 1], L)
        return pd.DataFrame(rows, columns=["test", "statistic", "df1", "df2", "p_value"])

    @property
    def joint_tests(self) -> pd.DataFrame:
        """Wald tests using the covariance between horizons: ``effects`` (all ``DID_l``
        zero), ``placebos`` (all placebos zero) and, with ``effects_equal=True``,
        ``effects_equal`` (all ``DID_l`` equal: the first ``L - 1`` effects minus the mean
        of all ``L``, as ``did_multiplegt_dyn``). Columns ``statistic`` (Wald / ``df1``),
        ``df1``, ``df2`` (the design's degrees of freedom, or None: chi-square) and
        ``p_value``; NaN with fewer than two estimates (as the reference, which reports
        none then)."""
        return self._joint.copy()

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """``DID_l`` by ``event_time`` (``l = 1 .. L``) and the placebos (``-1, -2, ...``):
        the tidy columns and ``n_switchers``."""
        return effects_table(self._events.copy(), "event_time")

    @property
    def normalized_effects(self) -> pd.DataFrame:
        """The effects and placebos divided by their switchers' mean cumulated treatment
        change (column ``dose``)."""
        return effects_table(self._normalized.copy(), "event_time")

    @property
    def average_total_effect(self) -> pd.DataFrame:
        """One row: the effect per unit of treatment over the horizons (NaN with
        ``trends_lin``); its SE includes the covariances between horizons."""
        return self._ate.copy()

    @property
    def joiners_leavers(self) -> pd.DataFrame:
        """DID_1 of the switchers up (joiners) and down (leavers, signed as an effect of
        treatment), ``n_switchers``; NaN where there are none."""
        return self._directions.copy()

    def _direction(self, which, field):
        row = self._directions.iloc[0 if which == "joiners" else 1]
        if field == "conf_int":
            return (row["conf_low"], row["conf_high"])
        return row[field]

    def _direction_property(which, field, text):
        return property(lambda self: self._direction(which, field),
                        doc=f"{text} of the {which}' DID_1 (3.x field; NaN without {which}).")

    joiners_att = _direction_property("joiners", "estimate", "Estimate")
    joiners_se = _direction_property("joiners", "se", "Standard error")
    joiners_t_stat = _direction_property("joiners", "t_stat", "t statistic")
    joiners_p_value = _direction_property("joiners", "p_value", "p-value")
    joiners_conf_int = _direction_property("joiners", "conf_int", "Confidence interval")
    leavers_att = _direction_property("leavers", "estimate", "Estimate")
    leavers_se = _direction_property("leavers", "se", "Standard error")
    leavers_t_stat = _direction_property("leavers", "t_stat", "t statistic")
    leavers_p_value = _direction_property("leavers", "p_value", "p-value")
    leavers_conf_int = _direction_property("leavers", "conf_int", "Confidence interval")
    del _direction_property

    @property
    def placebo_event_study(self) -> pd.DataFrame:
        """The placebo rows of :attr:`event_study_effects` (3.x name)."""
        return self.event_study_effects.query("event_time < 0").reset_index(drop=True)

    def _overall_table(self):
        return pd.DataFrame([{"term": "DID_1", **{k: self._headline[k] for k in
                                                  self._ate.columns if k != "term"}}])

    def _event_table(self):
        return self._events

    def _normalized_table(self):
        return self._normalized

    def _ate_table(self):
        return self._ate

    def _directions_table(self):
        return self._directions

    def _info(self) -> list:
        n_placebos = int((self._events["event_time"] < 0).sum())
        info = [("Groups (switchers)", f"{self.n_groups} ({self.n_switchers})"),
                ("Effects / placebos", f"{self.L_max} / {n_placebos}")]
        labels = {"effects": "Joint test effects = 0 (p)",
                  "placebos": "Joint test placebos = 0 (p)",
                  "effects_equal": "Test effects equal (p)"}
        for row in self._joint.itertuples(index=False):
            if np.isfinite(row.p_value):
                info.append((labels[row.test], row.p_value))
        return info

    def _tables(self) -> list:
        return [("DID_1 (the headline) and the average total effect per unit of treatment",
                 pd.concat([self._overall_table(), self._ate], ignore_index=True), ["term"]),
                ("Effects by periods since the first switch (placebos < 0)", self._events,
                 ["event_time"])]
