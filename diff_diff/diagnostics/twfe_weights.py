"""The weights behind a two-way fixed-effects coefficient (de Chaisemartin & D'Haultfoeuille 2020).

Under parallel trends the TWFE coefficient of ``y`` on a binary treatment with
unit and period effects is

    beta_fe = E[ sum_{(g,t): D=1} (N_gt / N_1) w_gt Delta_gt ],
    w_gt = eps_gt / sum_{(g,t): D=1} (N_gt / N_1) eps_gt,

a weighted sum of the treated cells' effects ``Delta_gt``, where ``eps`` is the
residual of the treatment on the unit and period effects (their Theorem 1; R and
Stata ``twowayfeweights``, ``type = "feTR"``). The weights sum to one but can be
negative; ``sigma_fe = |beta_fe| / sd(w)`` is the smallest standard deviation of
the cell effects under which their average could be zero although the TWFE
coefficient is ``beta_fe``, and ``sigma_fe_2`` the smallest one under which every
treated cell's effect could have the opposite sign of ``beta_fe`` (their Corollary 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._grouping import label_codes
from ..estimators.panel import numeric, require_columns
from ..linalg.wls import demean
from ..survey.units import check_survey_design


def twowayfeweights(data: pd.DataFrame, outcome: str, unit: str, time: str, treatment: str,
                    survey_design=None) -> "TWFEWeightsResults":
    """Weights of each treated (unit, period) cell in the TWFE coefficient.

    Parameters
    ----------
    data : DataFrame
        One row per observation (several rows may share a unit and period).
    outcome, unit, time, treatment : str
        Columns; ``treatment`` is 0/1.
    survey_design : SurveyDesign, optional
        Its weights (probability weights) weight the observations, as in a
        weighted TWFE regression.

    Returns
    -------
    TWFEWeightsResults

    Examples
    --------
    >>> import diff_diff as dd
    >>> d = dd.load_mpdta()
    >>> d["D"] = ((d["first.treat"] > 0) & (d["year"] >= d["first.treat"])).astype(int)
    >>> res = dd.twowayfeweights(d, outcome="lemp", unit="countyreal", time="year",
    ...                          treatment="D")
    >>> res.n_negative, round(res.beta_fe, 4)
    (20, -0.0365)
    """
    require_columns(data, outcome=outcome, unit=unit, time=time, treatment=treatment)
    y = numeric(data, outcome, "outcome")
    d = numeric(data, treatment, "treatment")
    if not np.isin(d, (0.0, 1.0)).all():
        raise ValueError(f"treatment column {treatment!r} must be binary 0/1")
    unit_code, units = label_codes(data, unit, "unit")
    time_code, times = label_codes(data, time, "time")
    if survey_design is None:
        w = np.ones(y.size)
    else:
        check_survey_design(survey_design, "twowayfeweights")
        w = survey_design.resolve(data).weights
    eps, y_tilde = demean(np.column_stack([d, y]), [unit_code, time_code], w).T
    treated = (d == 1) & (w > 0)
    if not treated.any():
        raise ValueError(f"twowayfeweights: no observation is treated ({treatment!r} is 0)")
    denom_d = float(w @ (eps * d))
    if not abs(denom_d) > 1e-12 * max(1.0, float(w @ d)):
        raise ValueError("twowayfeweights: the treatment does not vary beyond unit and period "
                         "effects")
    beta = float(w @ (eps * y_tilde)) / float(w @ (eps * eps))
    share = np.where(treated, w, 0.0) / w[treated].sum()  # N_gt / N_1 per observation
    weight = eps / float(share @ eps)
    cells = pd.DataFrame({"unit": units[unit_code[treated]], "time": times[time_code[treated]],
                          "weight": weight[treated], "n": w[treated]})
    cells = cells.groupby(["unit", "time"], sort=True).agg(weight=("weight", "first"),
                                                           n=("n", "sum")).reset_index()
    return TWFEWeightsResults(cells, beta)


class TWFEWeightsResults:
    """Weights of the treated cells in a TWFE coefficient.

    Attributes
    ----------
    weights : DataFrame
        One row per treated (unit, period) cell: ``unit``, ``time``, ``weight``
        (``w_gt``) and ``n`` (its observations, weighted).
    beta_fe : float
        The TWFE coefficient.
    n_positive, n_negative : int
        Treated cells with positive and negative weight.
    sum_positive, sum_negative : float
        Sums of ``(N_gt / N_1) w_gt`` over those cells (they add up to one).
    fraction_negative : float
        Share of the treated cells with a negative weight.
    sigma_fe : float
        ``|beta_fe| / sd(w)``: the smallest standard deviation of the cell
        effects compatible with ``beta_fe`` and an average effect of zero (the
        paper's Corollary 1). R/Stata ``twowayfeweights`` use a
        degrees-of-freedom adjusted sd (factor ``sqrt(M / (M - 1))`` over the
        ``M`` treated cells): their value is ours times ``sqrt((M - 1) / M)``.
    sigma_fe_2 : float
        ``|beta_fe| / sqrt(T_s + S_s^2 / (1 - P_s))``: the smallest standard
        deviation of the cell effects compatible with ``beta_fe`` and every
        effect of the opposite sign (Corollary 1 (ii); no degrees-of-freedom
        factor, as R/Stata). With the weights in decreasing order, ``P_k``,
        ``S_k``, ``T_k`` sum ``N_gt / N_1``, ``(N_gt / N_1) w`` and
        ``(N_gt / N_1) w^2`` over the cells from ``k`` on, and ``s`` is the
        first ``k >= 2`` with ``w_(k) < -S_k / (1 - P_k)``. NaN when no weight
        is negative (then no such effects exist) or ``beta_fe`` is 0.
    """

    def __init__(self, weights: pd.DataFrame, beta: float):
        self.weights = weights
        self.beta_fe = float(beta)
        share = weights["n"] / weights["n"].sum()
        w = weights["weight"]
        self.n_positive = int((w > 0).sum())
        self.n_negative = int((w < 0).sum())
        self.sum_positive = float((share * w)[w > 0].sum())
        self.sum_negative = float((share * w)[w < 0].sum())
        self.fraction_negative = self.n_negative / len(w)
        sd = float(np.sqrt(share @ (w - 1.0) ** 2))
        self.sigma_fe = abs(self.beta_fe) / sd if sd > 0 else float("nan")
        self.sigma_fe_2 = _sigma_fe_2(w.to_numpy(), share.to_numpy(), self.beta_fe)

    def summary(self) -> str:
        """Counts and sums of the positive and negative weights as text.

        Returns
        -------
        str
        """
        return "\n".join([
            "TWFE weights (de Chaisemartin & D'Haultfoeuille 2020, Theorem 1)", "=" * 60,
            f"{'TWFE coefficient beta_fe:':<44}{self.beta_fe:.6g}",
            f"{'Treated cells (positive / negative):':<44}{self.n_positive} / {self.n_negative}",
            f"{'Sum of negative weights:':<44}{self.sum_negative:.6g}",
            f"{'sigma_fe (sd of effects if ATT = 0):':<44}{self.sigma_fe:.6g}",
            f"{'sigma_fe_2 (sd if every effect flips sign):':<44}{self.sigma_fe_2:.6g}",
        ])

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"TWFEWeightsResults(beta_fe={self.beta_fe:.6g}, n_negative={self.n_negative}, "
                f"sigma_fe={self.sigma_fe:.6g}, sigma_fe_2={self.sigma_fe_2:.6g})")

    def to_dataframe(self) -> pd.DataFrame:
        """The weight of every treated cell (a copy of ``weights``).

        Returns
        -------
        DataFrame
            One row per treated cell.
        """
        return self.weights.copy()


def _sigma_fe_2(w: np.ndarray, share: np.ndarray, beta: float) -> float:
    """Corollary 1 (ii) of de Chaisemartin & D'Haultfoeuille (2020), see ``sigma_fe_2``."""
    if beta == 0 or not (w < 0).any():
        return float("nan")
    order = np.argsort(-w, kind="stable")
    w, p = w[order], share[order]
    tail_p = np.cumsum(p[::-1])[::-1][1:]  # from the second largest weight on
    tail_s = np.cumsum((p * w)[::-1])[::-1][1:]
    tail_t = np.cumsum((p * w * w)[::-1])[::-1][1:]
    rest = 1.0 - tail_p  # the share of the cells before k: positive
    hit = np.flatnonzero(w[1:] < -tail_s / rest)
    if not hit.size:
        return float("nan")
    k = hit[0]
    return abs(beta) / float(np.sqrt(tail_t[k] + tail_s[k] ** 2 / rest[k]))
