"""Results of the staggered :class:`~diff_diff.TripleDifference` (and of the deprecated
``StaggeredTripleDifference``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .callaway_santanna import CallawaySantAnnaResults
from .table import integer_labels


class StaggeredTripleDiffResults(CallawaySantAnnaResults):
    """Group-time ATTs of the staggered triple difference and their aggregations.

    The cells, tables, aggregations (``aggregate``, ``event_study_effects``,
    ``group_effects``), pre-trend test, bootstrap bands and plots are those of
    :class:`~diff_diff.results.callaway_santanna.CallawaySantAnnaResults`; cohorts are
    weighted by the (weighted) number of their eligible units, the treated
    (Ortiz-Villavicencio & Sant'Anna 2025, Eq. 4.13). The headline (``att``, ``se``, ...)
    is the ``simple`` aggregation: the cohort-share weighted average of the
    post-treatment ATT(g, t); ``overall_att_es`` (and ``overall_se_es``, ...) is the
    paper's event-study average (Eq. 4.14).

    Attributes
    ----------
    group_time_effects : DataFrame
        ATT(g, t) with ``n_treated`` (eligible units of the cohort), ``n_control``
        (units of the comparison cohorts) and ``n_comparisons`` (comparison cohorts).
    gmm_weights : dict
        ``{(g, t): {comparison cohort: weight}}`` (0: the never treated); one comparison
        has weight 1.
    comparison_group_counts : dict
        ``{(g, t): number of comparison cohorts}``.
    comparison_effects : DataFrame
        The DDD of each cell against each comparison cohort and its GMM weight.
    n_units, n_treated_units, n_control_units, n_never_enabled, n_eligible, n_ineligible : int
        Units; treated units are the eligible units of the treated cohorts.
    comparison_cohort : float or None
        With no never-treated unit: the last cohort, which served as the comparison.
    panel, allow_unbalanced_panel : bool
        The estimator's settings.
    used_rc_on_unbalanced_panel : bool
        An unbalanced panel was estimated with the repeated cross-section estimators
        (``allow_unbalanced_panel=True``); with ``panel=False`` (cross-sections) the units
        are the observations.

    Examples
    --------
    >>> import diff_diff as dd
    >>> from diff_diff.datasets import example_panel
    >>> res = dd.TripleDifference(control_group="never_treated").fit(
    ...     example_panel(), outcome="y", partition="eligible", unit="unit", time="time",
    ...     first_treat="first_treat")
    >>> res.comparison_group_counts[(3, 4)], res.n_treated_units, res.n_never_enabled
    (1, 122, 56)
    >>> res.event_study_effects[["event_time", "estimate"]].round(3).iloc[3].tolist()
    [0.0, 0.227]
    """

    _settings = CallawaySantAnnaResults._settings + ("pscore_trim", "panel",
                                                     "allow_unbalanced_panel")
    _aggregation_source = "Staggered triple-difference"
    _title = "Staggered triple differences (Ortiz-Villavicencio & Sant'Anna 2025)"

    def _setup(self, est, f) -> None:
        super()._setup(est, f)
        self._estimator = type(est).__name__  # names it in warnings
        g, q = f.enabling, f.eligible
        self.n_never_enabled = int((g == 0).sum())
        self.n_eligible = int((q == 1).sum())
        self.n_ineligible = int((q == 0).sum())
        self.comparison_cohort = f.last_cohort
        self._layout = f.layout
        self.used_rc_on_unbalanced_panel = f.layout == "unbalanced panel"
        self._comparisons = f.comparisons
        self._n_comparisons = np.array([len(labels) for labels, _, _ in f.comparisons])

    def _cell_columns(self) -> dict:
        return {**super()._cell_columns(), "n_comparisons": self._n_comparisons}

    def _cell_keys(self):
        cells = self._cells
        return list(zip(integer_labels(cells.group).tolist(),
                        integer_labels(cells.time).tolist()))

    @property
    def gmm_weights(self) -> dict:
        """``{(g, t): {comparison cohort: weight}}`` of every estimated cell."""
        return {key: {_label(k): float(w) for k, w in zip(labels, weights)}
                for key, (labels, weights, _) in zip(self._cell_keys(), self._comparisons)
                if len(labels)}

    @property
    def comparison_group_counts(self) -> dict:
        """``{(g, t): number of comparison cohorts}`` of every estimated cell."""
        return {key: int(n) for key, n in zip(self._cell_keys(), self._n_comparisons) if n}

    @property
    def comparison_effects(self) -> pd.DataFrame:
        """The DDD of each cell against each of its comparison cohorts and its weight."""
        rows = [{"group": g, "time": t, "comparison": _label(k), "estimate": float(a),
                 "weight": float(w)}
                for (g, t), (labels, weights, atts) in zip(self._cell_keys(), self._comparisons)
                for k, w, a in zip(labels, weights, atts)]
        return pd.DataFrame(rows, columns=["group", "time", "comparison", "estimate", "weight"])

    # the paper's overall effect: the mean of the post-treatment event-study effects
    overall_att_es = property(lambda self: self._dynamic.att,
                              doc="Event-study average ATT (paper Eq. 4.14).")
    overall_se_es = property(lambda self: self._dynamic.se,
                             doc="Standard error of ``overall_att_es``.")
    overall_t_stat_es = property(lambda self: self._dynamic.t_stat,
                                 doc="t statistic of ``overall_att_es``.")
    overall_p_value_es = property(lambda self: self._dynamic.p_value,
                                  doc="p-value of ``overall_att_es``.")
    overall_conf_int_es = property(lambda self: self._dynamic.conf_int,
                                   doc="Confidence interval of ``overall_att_es``.")

    def _info(self) -> list:
        k, pooled = self._att.size, int((self._n_comparisons > 1).sum())
        if self._comparison_group() == "never_treated":
            control = "never treated"
        else:
            control = f"not yet treated, one DDD each; pooled by GMM in {pooled} of {k} cells"
        cohorts = ", ".join(str(_label(g)) for g in self._groups)
        layout = {"unbalanced panel": "unbalanced panel (repeated cross-section estimators, "
                                      "influence values summed by unit)",
                  "repeated cross-sections": "repeated cross-sections (units = observations)"}
        info = [
            ("Data", layout.get(self._layout, "panel")),
            ("Estimation method", self.estimation_method),
            ("Comparison cohorts", control),
            ("Base period", self.base_period),
            ("Anticipation", self.anticipation),
            ("Units", f"{self.n_units} ({self.n_eligible} eligible, {self.n_ineligible} "
                      "ineligible)"),
            ("Treated units", f"{self.n_treated_units}: the eligible units of cohorts "
                              f"{cohorts}"),
            ("Never-treated units", self.n_never_enabled),
        ]
        if self.comparison_cohort is not None:
            info.append(("Comparison-only cohort", _label(self.comparison_cohort)))
        return info + [("Observations", self.n_obs)]

    def _comparison_group(self) -> str:
        return {"nevertreated": "never_treated"}.get(self.control_group, self.control_group)

    def _tables(self) -> list:
        overall = pd.concat([self._overall_table().assign(term="ATT (simple)"),
                             self._dynamic._overall_table().assign(term="ATT (event-study avg)")],
                            ignore_index=True)
        return [("Overall ATT: simple (the headline) and the event-study average", overall,
                 ["term"]),
                ("Event study (effects by periods since treatment)", self._dynamic.effects,
                 ["event_time"])]


def _label(cohort):
    """A cohort as an int when it is a whole number."""
    cohort = float(cohort)
    return int(cohort) if cohort.is_integer() else cohort
