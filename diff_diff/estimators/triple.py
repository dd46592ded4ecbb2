"""Triple differences for two periods (Ortiz-Villavicencio & Sant'Anna 2025; R ``triplediff``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import codes_of
from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..results.triple import TripleDifferenceResults
from . import drdid
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_prob
from .panel import check_constant_within_unit, numeric
from .registry import register

METHODS = ("dr", "reg", "ipw")
CELLS = ("treated_eligible", "treated_ineligible", "control_eligible", "control_ineligible")


@register(aliases=("DDD",), data="panel or cross-section", inference="influence",
          event_study=False,
          example=lambda: dict(outcome="y", group="treated", partition="eligible", post="post",
                               covariates=["x1"]))
class TripleDifference(Estimator):
    """Triple differences (DDD) with two periods, as Ortiz-Villavicencio & Sant'Anna (2025)
    and R ``triplediff`` define it.

    Units belong to a group ``S`` (the treated state, 1, or not, 0) and a partition
    ``Q`` (eligible for the policy, 1, or not, 0); the policy reaches the eligible units
    of the treated group after treatment. With covariates, parallel trends hold
    conditionally, and the DDD is the combination of three two-group DiDs of the
    treated-eligible cell ``A`` against each other cell (``B``: treated group,
    ineligible; ``C``: control group, eligible; ``D``: control group, ineligible)::

        DDD = DiD(A, B) + DiD(A, C) - DiD(A, D)

    each estimated on the two cells' units by outcome regression (``"reg"``), inverse
    probability weighting (``"ipw"``) or the doubly robust combination (``"dr"``, default)
    of Sant'Anna & Zhao (2020); the influence functions add up the same way and give the
    standard errors (clusters, survey designs, replicate weights, the PSU multiplier
    bootstrap through the engine). Without covariates all three are the weighted
    cell-mean DDD ``dY_A - dY_B - dY_C + dY_D`` with its design-based standard error.

    Panel data (``unit=`` given: one row per unit and period, covariates taken in the
    pre-period) or repeated cross-sections (no ``unit``: each row its own observation).

    Parameters
    ----------
    estimation_method : {"dr", "reg", "ipw"}
    pscore_trim : float
        Comparison units with propensity above ``1 - pscore_trim`` are dropped (ipw, dr).
    alpha, cluster, n_bootstrap, bootstrap_weights, seed, cband
        The shared inference settings.
    vcov_type : {"hc1"}
        Accepted for diff-diff 3.x (the variance is the design's).

    Examples
    --------
    >>> import diff_diff as dd
    >>> from diff_diff.datasets import example_panel
    >>> res = dd.TripleDifference(estimation_method="reg").fit(
    ...     example_panel(), outcome="y", group="treated", partition="eligible", post="post")
    >>> res.estimation_method, round(res.att, 3)
    ('reg', 0.119)
    """

    _allowed = {**INFERENCE_ALLOWED, "estimation_method": METHODS}
    _checks = {**INFERENCE_CHECKS,
               "pscore_trim": (lambda v: is_prob(v) and v < 0.5, "in (0, 0.5)")}

    def __init__(self, estimation_method="dr", pscore_trim=0.01, alpha=0.05, cluster=None,
                 n_bootstrap=0, bootstrap_weights="rademacher", seed=None, cband=True,
                 vcov_type="hc1"):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, group: str, partition: str, post: str,
            covariates: list[str] | None = None, survey_design=None,
            unit: str | None = None) -> TripleDifferenceResults:
        """Estimate the DDD.

        Parameters
        ----------
        data : DataFrame
            Not modified.
        outcome : str
        group, partition, post : str
            0/1 columns: the treated group ``S``, the eligible partition ``Q`` (constant
            within unit with panel data) and the post-treatment period.
        covariates : list of str, optional
        survey_design : SurveyDesign, optional
            ``pweight`` design (columns constant within unit with panel data).
        unit : str, optional
            Unit identifier: panel data (one pre and one post row per unit). Without it
            the rows are repeated cross-sections.
        """
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        return self._fit(data, survey_design, dict(outcome=outcome, group=group,
                                                   partition=partition, post=post, unit=unit,
                                                   covariates=covariates or None))

    # ------------------------------------------------------------------ template steps
    def _sample(self, data, columns) -> Sample:
        c = columns
        y = numeric(data, c["outcome"], "outcome")
        s = _binary(data, c["group"], "group")
        q = _binary(data, c["partition"], "partition")
        p = _binary(data, c["post"], "post")
        covs = c["covariates"] or []
        x = (np.column_stack([np.ones(len(data))] + [numeric(data, v, "covariate")
                                                      for v in covs])
             if covs else None)
        if c["unit"] is None:
            problem = DDDProblem(y=y, s=s, q=q, post=p, x=x, panel=False)
            rows = np.arange(len(data))
        else:
            codes, units = codes_of(data[c["unit"]])
            if pd.isna(data[c["unit"]]).any():
                raise ValueError(f"unit column {c['unit']!r} has missing values")
            check_constant_within_unit(s, codes, units, c["group"], "group")
            check_constant_within_unit(q, codes, units, c["partition"], "partition")
            counts = np.bincount(codes * 2 + p.astype(np.int64), minlength=2 * len(units))
            if (counts != 1).any():
                raise ValueError("TripleDifference: with unit= every unit needs exactly one "
                                 "pre-period row and one post-period row (post = 0 and 1); "
                                 "for a panel with more periods subset the data to one pre "
                                 "and one post period, or fit the pooled rows without unit= "
                                 "but with cluster= the unit column (dropping unit= alone "
                                 "treats repeated rows of a unit as independent and gives "
                                 "wrong standard errors)")
            pre = np.empty(len(units), dtype=np.int64)
            post_row = np.empty(len(units), dtype=np.int64)
            pre[codes[p == 0]] = np.flatnonzero(p == 0)
            post_row[codes[p == 1]] = np.flatnonzero(p == 1)
            problem = DDDProblem(y=y[post_row] - y[pre], s=s[pre], q=q[pre], post=None,
                                 x=None if x is None else x[pre], panel=True)
            rows = pre
        problem.check()
        return Sample(problem, rows, c["unit"], columns)

    def _estimate(self, sample, design):
        problem = sample.arrays
        problem.method, problem.trim = self.estimation_method, self.pscore_trim
        problem.check_weights(design.weights)
        theta, psi, parts = problem.estimate(design.weights)
        if parts["n_trimmed"]:
            warn_user(f"TripleDifference: {parts['n_trimmed']} comparison observation(s) with "
                      f"propensity above {1 - self.pscore_trim:g} were trimmed")
        estimate = Estimate(np.array([theta]), psi[:, None], reestimate=problem.att,
                            name="TripleDifference")
        return SimpleNamespace(estimate=estimate, problem=problem, parts=parts,
                               weights=design.weights)

    def _results(self, fitted, inference, metadata):
        return TripleDifferenceResults.from_fit(self, fitted, inference, metadata)


class DDDProblem:
    """The data of one DDD fit; ``estimate(weights)`` also serves replicate refits."""

    def __init__(self, y, s, q, post, x, panel):
        self.y, self.s, self.q, self.post, self.x, self.panel = y, s, q, post, x, panel
        self.cell = np.where(s == 1, np.where(q == 1, 0, 1), np.where(q == 1, 2, 3))
        self.method, self.trim = "dr", 0.01

    def check(self):
        present = np.bincount(self.cell, minlength=4)
        if self.post is not None:
            for period in (0, 1):
                here = np.bincount(self.cell[self.post == period], minlength=4)
                missing = [CELLS[k] for k in range(4) if here[k] == 0]
                if missing:
                    raise ValueError(f"TripleDifference: no observation of cell(s) {missing} "
                                     f"in the {'post' if period else 'pre'} period")
        missing = [CELLS[k] for k in range(4) if present[k] == 0]
        if missing:
            raise ValueError(f"TripleDifference: no unit in cell(s) {missing} (group x "
                             "partition): the DDD needs all four")

    def check_weights(self, weights):
        """ValueError naming a cell (and period) whose weights sum to zero."""
        w = np.asarray(weights, float)
        periods = [(None, np.ones(self.cell.size, bool))] if self.post is None else [
            ("pre", self.post == 0), ("post", self.post == 1)]
        for k, name in enumerate(CELLS):
            for label, here in periods:
                if not w[(self.cell == k) & here].sum() > 0:
                    where = "" if label is None else f" in the {label} period"
                    raise ValueError(f"TripleDifference: cell {name!r}{where} has zero total "
                                     "weight; the DDD needs positive weight in every "
                                     "group x partition cell" + ("" if label is None else
                                                                 " and period"))

    def _pair(self, other, w):
        """DiD of cell A against ``other`` on their units: (att, sum-scale psi, n_trimmed)."""
        use = np.flatnonzero((self.cell == 0) | (self.cell == other))
        d = (self.cell[use] == 0).astype(float)
        x = None if self.x is None else self.x[use]
        wu = w[use]
        if self.panel:
            dy = self.y[use]
            if x is None:
                res = drdid.difference_in_means(dy, d, wu)
            else:
                fn = {"reg": drdid.reg_did, "ipw": drdid.ipw_did, "dr": drdid.dr_did}[self.method]
                res = fn(dy, d, x, wu) if self.method == "reg" else fn(dy, d, x, wu, self.trim)
        else:
            y, post = self.y[use], self.post[use]
            if x is None:
                res = drdid.means_did_rc(y, post, d, wu)
            else:
                fn = {"reg": drdid.reg_did_rc, "ipw": drdid.ipw_did_rc,
                      "dr": drdid.dr_did_rc}[self.method]
                res = (fn(y, post, d, x, wu) if self.method == "reg"
                       else fn(y, post, d, x, wu, self.trim))
        psi = np.zeros(self.y.size)
        psi[use] = res.inf / use.size
        return res.att, psi, res.n_trimmed

    def estimate(self, weights):
        if not ((weights > 0) & (self.cell == 0)).any():
            raise ValueError("TripleDifference: no treated-eligible unit with positive weight")
        atts, psis, trimmed = {}, {}, 0
        for other, name in ((1, "B"), (2, "C"), (3, "D")):
            try:
                atts[name], psis[name], n_trim = self._pair(other, weights)
            except drdid.EstimationError as err:
                raise ValueError(f"TripleDifference: the comparison of the treated-eligible "
                                 f"cell with {CELLS[other]}: {err}") from None
            trimmed += n_trim
        theta = atts["B"] + atts["C"] - atts["D"]
        psi = psis["B"] + psis["C"] - psis["D"]
        return theta, psi, {"pairs": atts, "n_trimmed": trimmed}

    def att(self, weights):
        return np.array([self.estimate(weights)[0]])


def _binary(data, col, role):
    values = numeric(data, col, role)
    if not np.isin(values, (0.0, 1.0)).all():
        bad = np.unique(values[~np.isin(values, (0.0, 1.0))])[:3]
        raise ValueError(f"{role} column {col!r} must be 0/1, found {list(bad)}")
    return values
