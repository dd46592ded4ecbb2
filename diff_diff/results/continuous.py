"""Results of :class:`~diff_diff.ContinuousDiD`: the averages, the dose-response curves
and the event studies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import EventStudyResultsBase
from .table import effects_table, integer_labels, tidy


class ContinuousDiDResults(EventStudyResultsBase):
    """Dose-response DiD estimates.

    The headline (``att``, ``se``, ...) is ``ATT^glob``, the binary DiD of the treated
    against the comparison units averaged over post-treatment cells; ``acrt`` (and
    ``acrt_se``, ``acrt_conf_int``, ``acrt_p_value``) is ``ACRT^glob``, the average
    derivative of the dose-response curve over the treated units' doses.

    Attributes
    ----------
    dose_response_att, dose_response_acrt : DataFrame
        ``dose``, then the tidy columns (and ``cband_low``/``cband_high`` with a
        bootstrap and ``cband=True``) of ``ATT(d)`` and ``ACRT(d)`` on the dose grid.
    event_study_effects, event_study_slopes : DataFrame
        ``event_time`` (``t - g`` in the time column's units, as CallawaySantAnna;
        negative: placebo cells with base period ``t - 1``), then the tidy columns of
        ``ATT(g, t)`` and ``ACRT(g, t)`` averaged with cohort-share weights.
    group_time_effects : DataFrame
        ``group``, ``time``, ``att``, ``acrt`` of every cell and ``weight`` (the cell's
        weight in ``ATT_glob``; 0 before treatment; ACRT and the curves renormalise over
        the cells with a curve).
    dose_grid : ndarray
    groups, time_periods : list
    n_obs, n_units, n_treated_units, n_control_units : int
        ``n_control_units``: the never-treated units (none needed with
        ``control_group="lowest_dose"``).
    degree, num_knots, anticipation : int
    control_group, base_period, treatment_type : str
    reference_dose : float or None
        ``d_L`` with ``control_group="lowest_dose"`` (the curves are
        ``ATT(d) - ATT(d_L)``), else None.
    dose_est_method : str
        ``"parametric"`` or ``"cck"``.
    sieve_selection : dict or None
        With ``dose_est_method="cck"``: ``segments`` (chosen), ``dimension``
        (``J = segments + 3``), ``lepski_segments`` (before the cap at the
        second-largest candidate), ``candidates``, ``theta_star`` (the Lepski test's
        bootstrap critical value), ``alpha_hat``, ``sup_t`` (candidates x candidates
        sup-t statistics of the differences, upper triangle), ``n_draws``,
        ``crit_att``/``crit_acrt`` (the uniform bands' critical values, at least the
        pointwise normal quantile) and their values before that floor
        (``crit_att_unbounded``, ``crit_acrt_unbounded``).
    event_window : dict
        ``min_e``, ``max_e``, ``balance_e`` of the event studies.
    survey_metadata : SurveyMetadata or None
    """

    _title = "Continuous-dose DiD (Callaway, Goodman-Bacon & Sant'Anna 2024)"
    _headline_term = "ATT_glob"
    _levels = {"overall": "_overall_table", "dose_response": "_dose_table",
               "event_study": "_event_table", "event_study_slope": "_slope_table",
               "group_time": "_cell_table"}
    _raw_levels = ("group_time",)

    def _setup(self, estimator, fitted) -> None:
        problem, info, inference = fitted.problem, fitted.info, self._inference
        theta = inference.estimate.theta
        var = inference.variance()
        se, self.df = var.se, var.df
        k = problem.grid.size
        periods = problem.periods
        self.dose_grid = problem.grid.copy()
        self.degree, self.num_knots = problem.degree, problem.num_knots
        self.control_group = estimator.control_group
        self.treatment_type = estimator.treatment_type
        self.anticipation, self.base_period = estimator.anticipation, estimator.base_period
        self.reference_dose = problem.reference_dose
        overall = tidy({"term": ["ATT_glob", "ACRT_glob"]}, theta[:2], se[:2], self.df,
                       self.alpha)
        self._overall = overall
        self._headline = overall.iloc[0].to_dict()
        self._acrt = overall.iloc[1].to_dict()

        selection = problem.selection
        self.sieve_selection = None if selection is None else dict(selection)
        self.dose_est_method = estimator.dose_est_method

        def band(cols):
            if selection is not None:  # CCK: its own band, with the selection margin
                if not estimator.cband:
                    return None
                return selection["crit_att" if cols[0] == 2 else "crit_acrt"]
            if var.draws is None or not estimator.cband:
                return None
            mapping = np.zeros((theta.size, len(cols)))
            mapping[cols, np.arange(len(cols))] = 1.0
            return inference.variance(mapping).crit

        att_cols = np.arange(2, 2 + k)
        acrt_cols = np.arange(2 + k, 2 + 2 * k)
        self._dose = {name: tidy({"dose": problem.grid}, theta[cols], se[cols], self.df,
                                 self.alpha, band(cols))
                      for name, cols in (("att", att_cols), ("acrt", acrt_cols))}
        # discrete doses against the lowest dose: no ACRT at that dose (not identified)
        self._dose["acrt"].loc[problem.acrt_undefined, self._dose["acrt"].columns[1:]] = np.nan
        start = 2 + 2 * k
        self._events = {}
        for name in ("att", "acrt"):
            events = info["events"][name]
            cols = np.arange(start, start + len(events))
            start += len(events)
            self._events[name] = tidy({"event_time": integer_labels(np.array(events, float))},
                                      theta[cols], se[cols], self.df, self.alpha)
        self._event_overall = tidy({"term": ["ATT_es", "ACRT_es"]}, theta[start:start + 2],
                                   se[start:start + 2], self.df, self.alpha)
        self.event_window = dict(zip(("min_e", "max_e", "balance_e"), problem.window))
        weights = info["weights"]
        self._cells = pd.DataFrame({
            "group": integer_labels(np.array([periods[r["g"]] for r in info["cells"]])),
            "time": integer_labels(np.array([periods[r["t"]] for r in info["cells"]])),
            "att": [r.get("att", np.nan) for r in info["cells"]],
            "acrt": [r.get("acrt", np.nan) for r in info["cells"]],
            "weight": [weights.get((r["g"], r["t"]), 0.0) for r in info["cells"]]})
        self.groups = [_plain(periods[g]) for g in np.unique(problem.gpos[problem.gpos > 0])]
        self.time_periods = [_plain(p) for p in periods]
        self.n_units = int(problem.Y.shape[0])
        self.n_obs = int(problem.Y.size)
        self.n_treated_units = int((problem.gpos > 0).sum())
        self.n_control_units = int((problem.gpos == 0).sum())
        self._dropped = info["dropped"]

    # ------------------------------------------------------------- the averages
    @property
    def acrt(self) -> float:
        """``ACRT^glob``: the average derivative of the dose-response curve."""
        return self._acrt["estimate"]

    @property
    def acrt_se(self) -> float:
        """Standard error of ``ACRT^glob``."""
        return self._acrt["se"]

    @property
    def acrt_p_value(self) -> float:
        """p-value of ``ACRT^glob``."""
        return self._acrt["p_value"]

    @property
    def acrt_conf_int(self) -> tuple:
        """Confidence interval of ``ACRT^glob``."""
        return (self._acrt["conf_low"], self._acrt["conf_high"])

    overall_acrt, overall_acrt_se = acrt, acrt_se
    overall_acrt_p_value, overall_acrt_conf_int = acrt_p_value, acrt_conf_int

    @property
    def overall_att_se(self) -> float:
        """3.x name of ``se``."""
        return self.se

    # ----------------------------------------------------------------- tables
    @property
    def dose_response_att(self) -> pd.DataFrame:
        """``ATT(d)`` on the dose grid (a tidy table with ``dose``)."""
        return self._dose["att"].copy()

    @property
    def dose_response_acrt(self) -> pd.DataFrame:
        """``ACRT(d)`` on the dose grid (a tidy table with ``dose``)."""
        return self._dose["acrt"].copy()

    @property
    def event_study_effects(self) -> pd.DataFrame:
        """Event study of ``ATT(g, t)`` (by ``event_time``)."""
        return effects_table(self._events["att"].copy(), "event_time")

    @property
    def event_study_slopes(self) -> pd.DataFrame:
        """Event study of ``ACRT(g, t)`` (by ``event_time``)."""
        return effects_table(self._events["acrt"].copy(), "event_time")

    @property
    def event_study_overall(self) -> pd.DataFrame:
        """Averages of the event studies over their event times ``>= 0`` (after the
        ``min_e``/``max_e``/``balance_e`` window): ``ATT_es`` of ``ATT(g, t)``,
        ``ACRT_es`` of ``ACRT(g, t)`` (moderndid's event-study ``overall_att``)."""
        return self._event_overall.copy()

    @property
    def group_time_effects(self) -> pd.DataFrame:
        """Every cell's ``att``, ``acrt`` and weight in ``ATT_glob``."""
        return self._cells.copy()

    def _overall_table(self):
        return self._overall

    def _dose_table(self):
        return pd.concat([t.assign(target=name) for name, t in self._dose.items()],
                         ignore_index=True)[["target"] + list(self._dose["att"].columns)]

    def _event_table(self):
        return self._events["att"]

    def _slope_table(self):
        return self._events["acrt"]

    def _cell_table(self):
        return self._cells

    # ---------------------------------------------------------------- printing
    def _info(self) -> list:
        knots = f", {self.num_knots} interior knot(s)" if self.num_knots else ""
        model = (("Dose model", f"saturated, {len(self.dose_grid)} dose value(s) reported")
                 if self.treatment_type == "discrete" else
                 ("B-spline", f"degree {self.degree}{knots}"))
        if self.sieve_selection is not None:
            chosen = self.sieve_selection
            model = ("B-spline (CCK)", f"degree {self.degree}, {chosen['segments']} segment(s) "
                     f"chosen of {chosen['candidates']}")
        comparison = self.control_group.replace("_", " ")
        if self.reference_dose is not None:
            comparison += f" (d_L = {self.reference_dose:.4g})"
        info = [model, ("Comparison units", comparison),
                ("Base period", self.base_period + (
                    f", anticipation {self.anticipation}" if self.anticipation else "")),
                ("Units (treated / comparison)",
                 f"{self.n_units} ({self.n_treated_units} / {self.n_control_units})"),
                ("Cohorts", ", ".join(map(str, self.groups)))]
        if self._dropped:
            info.append(("Cells without a curve", str(len(self._dropped))))
        return info

    def _tables(self) -> list:
        return [("Averages over the treated (post-treatment cells)", self._overall, ["term"]),
                ("Event study: ATT by periods since treatment", self._events["att"],
                 ["event_time"])]

    def plot_dose_response(self, target: str = "att", ax=None, title: str | None = None):
        """Plot ``ATT(d)`` or ``ACRT(d)`` with pointwise intervals (and the uniform band
        when computed).

        Parameters
        ----------
        target : {"att", "acrt"}
            The curve to draw.
        ax : matplotlib Axes, optional
            Where to draw (default: a new figure).
        title : str, optional
            The axis title (default: names the curve).

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import _pyplot

        if target not in ("att", "acrt"):
            raise ValueError(f"target must be 'att' or 'acrt', got {target!r}")
        table = self._dose[target]
        if ax is None:
            _, ax = _pyplot().subplots(figsize=(6, 4))
        ax.plot(table["dose"], table["estimate"], color="C0", label=target.upper() + "(d)")
        ax.fill_between(table["dose"], table["conf_low"], table["conf_high"], color="C0",
                        alpha=0.25, label=f"{1 - self.alpha:.0%} pointwise")
        if "cband_low" in table:
            ax.plot(table["dose"], table["cband_low"], color="C0", ls="--", lw=0.8,
                    label="uniform band")
            ax.plot(table["dose"], table["cband_high"], color="C0", ls="--", lw=0.8)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("dose")
        ax.set_ylabel("ATT(d)" if target == "att" else "ACRT(d)")
        ax.set_title(title if title is not None else
                     ("Dose-response: ATT(d)" if target == "att" else
                      "Average causal response ACRT(d)"))
        ax.legend(frameon=False)
        return ax


def _plain(value):
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value
