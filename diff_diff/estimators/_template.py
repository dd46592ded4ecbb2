"""A complete, small estimator that shows the shape every estimator of the library has.

Copy its structure for a new estimator (``CONTRIBUTING.md`` says what goes
where). The estimator is the canonical two-period panel DiD: the weighted mean
outcome change of treated units minus that of control units between a ``pre``
and a ``post`` period,

    ATT = sum_i w_i D_i dY_i / sum_i w_i D_i - sum_i w_i (1 - D_i) dY_i / sum_i w_i (1 - D_i),

with influence values (sum scale)

    psi_i = w_i D_i (dY_i - m_1) / S_1 - w_i (1 - D_i) (dY_i - m_0) / S_0.

It equals :class:`~diff_diff.CallawaySantAnna` on the same two periods (the
tests assert it). The module is private: it is an example, not public API.

The pieces:

1. ``@register``: the capabilities (data, inference kind, weight types,
   replicate/bootstrap support) and an example call; the contract sweep
   (``tests/contracts/test_estimator_sweep.py``) then fits it under every design.
2. The estimator class: ``__init__`` stores settings; ``_allowed``/``_checks``
   validate them; ``fit`` names the columns and calls the template
   ``Estimator._fit``, which calls ``_sample`` and ``_estimate`` and builds
   ``_results_class`` from what they return.
3. A problem object: the data of one fit and ``estimate(weights)``, which the
   engine also calls with replicate weights (R survey's ``withReplicates``).
4. A thin results class over :class:`~diff_diff.results.base.ResultsBase`
   (in ``results/`` for a real estimator): ``_setup`` stores what the fit
   produced, ``_headline`` and ``_info`` say what to print; the rest is derived.

Nothing here reads strata, PSUs, replicate weights or bootstrap draws: that is
the engine's job.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import codes_of, label_codes
from ..inference.estimate import Estimate
from ..results.base import ResultsBase
from ..results.table import tidy
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample
from .panel import check_constant_within_unit, check_one_row_per_cell, numeric
from .registry import register


class TwoPeriodDiDResults(ResultsBase):
    """The ATT of :class:`TwoPeriodDiD`; headline fields read-only."""

    _title = "Two-period DiD (example estimator)"

    def _setup(self, estimator, fitted) -> None:
        problem, inference = fitted.problem, self._inference
        self.n_units = int(problem.change.size)
        self.n_treated = int(problem.treated.sum())
        self.n_obs = 2 * self.n_units
        var = inference.variance()
        self.df = var.df
        self._headline = tidy({"term": ["ATT"]}, inference.estimate.theta, var.se, var.df,
                              self.alpha).iloc[0].to_dict()

    def _info(self) -> list:
        return [("Units (treated / control)",
                 f"{self.n_units} ({self.n_treated} / {self.n_units - self.n_treated})")]


@register(data="panel", inference="influence", event_study=False,
          example=lambda: dict(outcome="y", unit="unit", time="time", treatment="treated",
                               pre=2, post=6))
class TwoPeriodDiD(Estimator):
    """Two-period panel DiD: weighted mean outcome change, treated minus control.

    Parameters
    ----------
    alpha : float
    cluster : str, optional
        Column (constant within unit) to cluster on, without a survey design.
    n_bootstrap : int
        PSU multiplier bootstrap draws (0: analytic standard errors).
    bootstrap_weights : {"rademacher", "mammen", "webb"}
    seed : int, optional
    cband : bool
        Accepted for the shared vocabulary (one estimate: no band).

    Examples
    --------
    >>> from diff_diff.datasets import example_panel
    >>> from diff_diff.estimators._template import TwoPeriodDiD
    >>> res = TwoPeriodDiD().fit(example_panel(), outcome="y", unit="unit", time="time",
    ...                          treatment="treated", pre=2, post=6)
    >>> round(res.att, 3)
    1.203
    """

    _allowed = dict(INFERENCE_ALLOWED)
    _checks = dict(INFERENCE_CHECKS)
    _results_class = TwoPeriodDiDResults

    def __init__(self, alpha=0.05, cluster=None, n_bootstrap=0, bootstrap_weights="rademacher",
                 seed=None, cband=True):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, treatment: str,
            pre, post, survey_design=None) -> "TwoPeriodDiDResults":
        """Estimate the ATT in ``post`` relative to ``pre``.

        Parameters
        ----------
        data : DataFrame
            Long panel; rows of other periods are ignored. Not modified.
        outcome, unit, time, treatment : str
            Columns; ``treatment`` is 0/1 and constant within unit.
        pre, post : period labels
        survey_design : SurveyDesign, optional
            A ``pweight`` design whose columns are constant within unit.
        """
        return self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                   treatment=treatment), pre=pre, post=post)

    # the three steps of the template ---------------------------------------
    def _sample(self, data, columns, pre, post) -> Sample:
        """Read and check the columns: one outcome change and treatment per unit."""
        c = columns
        label_codes(data, c["unit"], "unit")  # refuses missing unit labels
        times = data[c["time"]]
        if times.isna().any():
            raise ValueError(f"time column {c['time']!r} has {int(times.isna().sum())} "
                             "missing values")
        for label, value in (("pre", pre), ("post", post)):
            if not (times == value).any():
                raise ValueError(f"TwoPeriodDiD: {label} period {value!r} is not in column "
                                 f"{c['time']!r}")
        rows = np.flatnonzero((times == pre).to_numpy() | (times == post).to_numpy())
        frame = data.iloc[rows]
        unit_code, units = codes_of(frame[c["unit"]])
        is_post = (frame[c["time"]] == post).to_numpy()
        check_one_row_per_cell(unit_code * 2 + is_post, units, np.array([pre, post]),
                               "TwoPeriodDiD")
        if np.bincount(unit_code, minlength=len(units)).min() < 2:
            raise ValueError("TwoPeriodDiD: every unit needs a row in both periods")
        d = numeric(frame, c["treatment"], "treatment")
        if not np.isin(d, (0.0, 1.0)).all():
            raise ValueError(f"treatment column {c['treatment']!r} must be 0/1")
        first = check_constant_within_unit(d, unit_code, units, c["treatment"], "treatment")
        y = numeric(frame, c["outcome"], "outcome")
        change = np.bincount(unit_code, weights=np.where(is_post, y, -y), minlength=len(units))
        problem = TwoPeriodProblem(change, d[first])
        return Sample(problem, rows[first], c["unit"], columns)

    def _estimate(self, sample, design):
        """Point estimate and influence values; the re-estimate function for replicates."""
        problem = sample.arrays
        att, psi = problem.estimate(design.weights)
        estimate = Estimate([att], psi[:, None], name="TwoPeriodDiD", reestimate=problem.att)
        return SimpleNamespace(estimate=estimate, problem=problem)


class TwoPeriodProblem:
    """One unit per row: outcome change and treatment. ``estimate`` takes any unit weights."""

    def __init__(self, change: np.ndarray, treated: np.ndarray):
        self.change = change
        self.treated = treated.astype(bool)

    def att(self, weights: np.ndarray) -> np.ndarray:
        """The estimate alone under other weights (replicates: a bound method pickles)."""
        return np.array([self.estimate(weights)[0]])

    def estimate(self, weights: np.ndarray):
        """``(att, psi)`` under unit ``weights`` (a group without weight is an error)."""
        w1 = np.where(self.treated, weights, 0.0)
        w0 = np.where(self.treated, 0.0, weights)
        s1, s0 = w1.sum(), w0.sum()
        if s1 <= 0 or s0 <= 0:
            raise ValueError("TwoPeriodDiD: no treated or no control unit with positive weight")
        m1, m0 = w1 @ self.change / s1, w0 @ self.change / s0
        psi = w1 * (self.change - m1) / s1 - w0 * (self.change - m0) / s0
        return m1 - m0, psi
