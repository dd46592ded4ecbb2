"""Results of :class:`~diff_diff.TripleDifference`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import ResultsBase
from .table import tidy

CELLS = ("treated_eligible", "treated_ineligible", "control_eligible", "control_ineligible")


class TripleDifferenceResults(ResultsBase):
    """The DDD and its parts.

    Attributes
    ----------
    comparisons : DataFrame
        The three two-group DiDs of the treated-eligible cell (``vs``, ``estimate``,
        ``sign`` in the DDD).
    group_means : DataFrame
        Weighted mean outcome by cell (and period for repeated cross-sections; the mean
        change for panel data) and the number of observations.
    n_obs, n_treated_eligible, n_treated_ineligible, n_control_eligible,
    n_control_ineligible : int
    estimation_method : str
    survey_metadata : SurveyMetadata or None
    """

    _title = "Triple differences (Ortiz-Villavicencio & Sant'Anna 2025)"
    _levels = {"overall": "_overall_table", "comparisons": "_comparison_table",
               "group_means": "_means_table"}
    _raw_levels = ("comparisons", "group_means")

    def _setup(self, estimator, fitted) -> None:
        problem, inference = fitted.problem, self._inference
        var = inference.variance()
        self.df = var.df
        self.estimation_method = estimator.estimation_method
        self._headline = tidy({"term": ["ATT"]}, inference.estimate.theta, var.se, var.df,
                              self.alpha).iloc[0].to_dict()
        counts = np.bincount(problem.cell, minlength=4)
        for name, n in zip(CELLS, counts):
            setattr(self, f"n_{name}", int(n))
        self.n_obs = int(problem.y.size * (2 if problem.panel else 1))
        self.panel = problem.panel
        pairs = fitted.parts["pairs"]
        self._comparisons = pd.DataFrame({
            "vs": ["treated_ineligible", "control_eligible", "control_ineligible"],
            "estimate": [pairs["B"], pairs["C"], pairs["D"]], "sign": [1, 1, -1]})
        w = fitted.weights
        rows = []
        for k, name in enumerate(CELLS):
            in_cell = problem.cell == k
            if problem.panel:
                rows.append({"cell": name, "period": "change", "n": int(in_cell.sum()),
                             "mean": float(np.average(problem.y[in_cell], weights=w[in_cell]))})
            else:
                for period in (0, 1):
                    here = in_cell & (problem.post == period)
                    rows.append({"cell": name, "period": "post" if period else "pre",
                                 "n": int(here.sum()),
                                 "mean": float(np.average(problem.y[here], weights=w[here]))})
        self._means = pd.DataFrame(rows)

    @property
    def comparisons(self) -> pd.DataFrame:
        """The three two-group DiDs of the treated-eligible cell (a copy)."""
        return self._comparisons.copy()

    @property
    def group_means(self) -> pd.DataFrame:
        """Weighted mean outcome by cell, with the number of observations (a copy)."""
        return self._means.copy()

    def _comparison_table(self):
        return self._comparisons

    def _means_table(self):
        return self._means

    def _info(self) -> list:
        return [("Estimation method", self.estimation_method),
                ("Data", "panel" if self.panel else "repeated cross-sections"),
                ("Units by cell" if self.panel else "Observations by cell",
                 f"treated-eligible {self.n_treated_eligible}, "
                 f"treated-ineligible {self.n_treated_ineligible}, "
                 f"control-eligible {self.n_control_eligible}, "
                 f"control-ineligible {self.n_control_ineligible}"),
                ("DDD from three DiDs", "{:.4g} (vs treated-ineligible) + {:.4g} (vs "
                 "control-eligible) - {:.4g} (vs control-ineligible)".format(
                     *self._comparisons["estimate"]))]

    def _tables(self) -> list:
        return [("Triple-difference ATT", self._overall_table(), ["term"])]
