"""Triple differences for two periods (Ortiz-Villavicencio & Sant'Anna 2025; R ``triplediff``)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import codes_of
from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..results.triple import TripleDifferenceResults
from . import drdid
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_int, is_prob
from .panel import check_constant_within_unit, numeric
from .registry import register

METHODS = ("dr", "reg", "ipw")
CELLS = ("treated_eligible", "treated_ineligible", "control_eligible", "control_ineligible")


@register(aliases=("DDD",), data="panel or cross-section", inference="influence",
          event_study=False,
          example=lambda: dict(outcome="y", group="treated", partition="eligible", post="post",
                               covariates=["x1"]))
class TripleDifference(Estimator):
    """Triple differences (DDD), as Ortiz-Villavicencio & Sant'Anna (2025) and R
    ``triplediff`` define them: two periods, or staggered adoption.

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

    Two periods (``fit`` with ``group=``, ``partition=``, ``post=``): panel data
    (``unit=`` given: one row per unit and period, covariates taken in the pre-period)
    or repeated cross-sections (no ``unit``: each row its own observation).

    Staggered adoption (``fit`` with ``partition=``, ``unit=``, ``time=``,
    ``first_treat=``; a balanced panel): ``first_treat`` is the period the unit's group
    (state) is first treated, 0 or inf for never; the eligible units of cohort ``g``
    are treated from ``g`` on. ``ATT(g, t) = E[Y_t(g) - Y_t(inf) | S = g, Q = 1]``
    is the DDD of cohort ``g``'s eligible units against its ineligible units and the
    eligible and ineligible units of a comparison cohort, outcome changes from the base
    period of :class:`~diff_diff.CallawaySantAnna`. With ``"never_treated"`` the
    comparison is the never-treated cohort; with ``"not_yet_treated"`` every cohort not
    yet treated (and the never treated) gives a DDD of its own, and they are combined
    with the GMM weights ``Omega^-1 1 / (1' Omega^-1 1)`` of the paper (Eqs. 4.11-4.12;
    pooling not-yet-treated cohorts into one comparison group would be biased). The
    results aggregate the cells as R ``did::aggte`` does, with cohort shares of the
    eligible units (:class:`~diff_diff.results.triple_staggered.StaggeredTripleDiffResults`).

    Parameters
    ----------
    estimation_method : {"dr", "reg", "ipw"}
    pscore_trim : float
        Comparison units with propensity above ``1 - pscore_trim`` are dropped (ipw, dr).
    alpha, cluster, n_bootstrap, bootstrap_weights, seed, cband
        The shared inference settings.
    vcov_type : {"hc1"}
        Accepted for diff-diff 3.x (the variance is the design's).
    control_group : {"not_yet_treated", "never_treated"}
        Staggered design: the comparison cohorts (3.x default: not yet treated).
    anticipation : int
        Staggered design: periods of anticipation (base period ``g - anticipation - 1``).
    base_period : {"varying", "universal"}
        Staggered design: pre-treatment cells compare consecutive periods (``varying``)
        or every period with ``g - anticipation - 1`` (``universal``).
    panel : bool
        True (default): panel data when ``unit`` is given. False: repeated
        cross-sections, every row its own observation (``unit`` is not needed and not
        used), as ``panel=False`` of :class:`~diff_diff.CallawaySantAnna` and moderndid's
        ``ddd``.
    allow_unbalanced_panel : bool
        Staggered design: a panel whose units miss periods (or values) is an error
        (False, default) or is estimated from every observation with the repeated
        cross-section estimators, influence values summed by unit so that standard
        errors treat the unit as the sampling unit (True; a balanced panel still takes
        the panel estimators, as R ``did`` and moderndid do).

    Examples
    --------
    >>> import diff_diff as dd
    >>> from diff_diff.datasets import example_panel
    >>> res = dd.TripleDifference(estimation_method="reg").fit(
    ...     example_panel(), outcome="y", group="treated", partition="eligible", post="post")
    >>> res.estimation_method, round(res.att, 3)
    ('reg', 0.119)

    The staggered design on the same panel (cohorts treated in periods 3, 4 and 5):

    >>> res = dd.TripleDifference(control_group="not_yet_treated").fit(
    ...     example_panel(), outcome="y", partition="eligible", unit="unit", time="time",
    ...     first_treat="first_treat")
    >>> res.group_time_effects.shape[0], round(res.att, 3)
    (15, 0.154)
    >>> {k: round(w, 3) for k, w in res.gmm_weights[(4, 4)].items()}  # 0: never treated
    {0: 0.328, 5: 0.672}
    """

    _allowed = {**INFERENCE_ALLOWED, "estimation_method": METHODS,
                "control_group": ("not_yet_treated", "never_treated"),
                "base_period": ("varying", "universal"), "panel": (True, False),
                "allow_unbalanced_panel": (True, False)}
    _checks = {**INFERENCE_CHECKS,
               "pscore_trim": (lambda v: is_prob(v) and v < 0.5, "in (0, 0.5)"),
               "anticipation": (lambda v: is_int(v, 0), "a non-negative integer")}
    _staggered_defaults = {"control_group": "not_yet_treated", "anticipation": 0,
                           "base_period": "varying", "allow_unbalanced_panel": False}

    def __init__(self, estimation_method="dr", pscore_trim=0.01, alpha=0.05, cluster=None,
                 n_bootstrap=0, bootstrap_weights="rademacher", seed=None, cband=True,
                 vcov_type="hc1", control_group="not_yet_treated", anticipation=0,
                 base_period="varying", panel=True, allow_unbalanced_panel=False):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, group: str | None = None,
            partition: str | None = None, post: str | None = None,
            covariates: list[str] | None = None, survey_design=None,
            unit: str | None = None, *, time: str | None = None,
            first_treat: str | None = None, aggregate: str | None = None,
            balance_e: int | None = None):
        """Estimate the DDD: two periods (``group``, ``partition``, ``post``) or staggered
        adoption (``partition``, ``unit``, ``time``, ``first_treat``).

        Parameters
        ----------
        data : DataFrame
            Not modified.
        outcome : str
        group, partition, post : str
            0/1 columns: the treated group ``S``, the eligible partition ``Q`` (constant
            within unit with panel data) and the post-treatment period. The staggered
            design takes ``partition`` only.
        covariates : list of str, optional
            Two periods: pre-period values (panel). Staggered: base-period values.
        survey_design : SurveyDesign, optional
            ``pweight`` design (columns constant within unit with panel data).
        unit : str, optional
            Unit identifier. Two periods: panel data (one pre and one post row per unit);
            without it the rows are repeated cross-sections. Staggered: required.
        time, first_treat : str, optional
            Staggered design (keyword only): the period, and the first period the unit's
            group is treated (0 or inf: never; constant within unit). Passing them with
            ``group`` or ``post`` is an error.
        aggregate : {"simple", "event_study", "group", "all"}, optional
            Staggered, diff-diff 3.x: compute these aggregations during the fit (they are
            always available afterwards; a ``FutureWarning`` says so).
        balance_e : int, optional
            Staggered, diff-diff 3.x: the event study keeps cohorts observed at least
            ``balance_e`` periods after treatment.

        Returns
        -------
        TripleDifferenceResults or StaggeredTripleDiffResults
        """
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        staggered = {"time": time, "first_treat": first_treat, "aggregate": aggregate,
                     "balance_e": balance_e}
        two_period = {"group": group, "post": post}
        given = [k for k, v in staggered.items() if v is not None]
        if given:
            mixed = [k for k, v in two_period.items() if v is not None]
            if mixed:
                raise ValueError(
                    "TripleDifference: group= and post= describe the two-period design, "
                    "time= and first_treat= the staggered one; got "
                    f"{', '.join(f'{k}=' for k in mixed + given)}: pass one set")
            return self._fit_staggered(data, survey_design, dict(
                outcome=outcome, partition=partition, unit=unit, time=time,
                first_treat=first_treat, covariates=covariates or None), aggregate, balance_e)
        missing = [k for k, v in (("group", group), ("partition", partition), ("post", post))
                   if v is None]
        if missing:
            raise ValueError(
                f"TripleDifference: missing {', '.join(f'{k}=' for k in missing)}: the "
                "two-period design needs group=, partition= and post=; the staggered design "
                "partition=, unit=, time= and first_treat=")
        changed = {k: getattr(self, k) for k, v in self._staggered_defaults.items()
                   if getattr(self, k) != v}
        if changed:
            raise ValueError(
                f"TripleDifference: {', '.join(f'{k}={v!r}' for k, v in changed.items())} "
                "applies to the staggered design (fit with unit=, time=, first_treat=), not "
                "to this two-period fit")
        return self._fit(data, survey_design, dict(outcome=outcome, group=group,
                                                   partition=partition, post=post, unit=unit,
                                                   covariates=covariates or None))

    def _fit_staggered(self, data, survey_design, columns, aggregate, balance_e):
        from .callaway_santanna import apply_legacy_aggregation, check_legacy_aggregation

        name = type(self).__name__
        role = "eligibility" if "eligibility" in columns else "partition"
        needed = ("unit",) * bool(self.panel) + ("time", "first_treat", role)
        missing = [k for k in needed if columns[k] is None]
        if missing:
            raise ValueError(f"{name}: the staggered design needs "
                             f"{'unit=, ' if self.panel else ''}time=, first_treat= "
                             f"and {role}=; missing {', '.join(f'{k}=' for k in missing)} "
                             "(repeated cross-sections need no unit=: pass panel=False)")
        if not self.panel:
            columns = {**columns, "unit": None}
        check_legacy_aggregation(name, aggregate, balance_e)
        res = self._fit(data, survey_design, columns, balance_e=balance_e)
        return apply_legacy_aggregation(name, res, aggregate)

    def _comparison_group(self) -> str:
        """``control_group`` in this library's spelling (3.x also took R's)."""
        from .triple_staggered import R_SPELLINGS

        return R_SPELLINGS.get(self.control_group, self.control_group)

    # ------------------------------------------------------------------ template steps
    def _sample(self, data, columns, balance_e=None) -> Sample:
        if "first_treat" in columns:
            from .triple_staggered import staggered_sample

            return staggered_sample(self, data, columns, balance_e)
        c = columns
        y = numeric(data, c["outcome"], "outcome")
        s = binary_column(data, c["group"], "group")
        q = binary_column(data, c["partition"], "partition")
        p = binary_column(data, c["post"], "post")
        covs = c["covariates"] or []
        x = (np.column_stack([np.ones(len(data))] + [numeric(data, v, "covariate")
                                                      for v in covs])
             if covs else None)
        if c["unit"] is None or not self.panel:
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
        if "first_treat" in sample.columns:
            from .triple_staggered import staggered_estimate

            return staggered_estimate(self, sample, design)
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
        if hasattr(fitted, "cells"):
            from ..results.triple_staggered import StaggeredTripleDiffResults

            return StaggeredTripleDiffResults.from_fit(self, fitted, inference, metadata)
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

    def estimate(self, weights):
        if not ((weights > 0) & (self.cell == 0)).any():
            raise ValueError("TripleDifference: no treated-eligible unit with positive weight")
        try:
            if self.panel:
                fit = ddd_changes(self.y, self.cell, self.x, weights, self.method, self.trim)
                return fit.att, fit.psi, {"pairs": fit.pairs, "n_trimmed": fit.n_trimmed}
            fit = ddd_levels(self.y, self.post, self.cell, self.x, weights, self.method,
                             self.trim)
        except drdid.EstimationError as err:
            raise ValueError(f"TripleDifference: {err}") from None
        return fit.att, fit.psi, {"pairs": fit.pairs, "n_trimmed": fit.n_trimmed}

    def att(self, weights):
        return np.array([self.estimate(weights)[0]])


# the three DiDs of cell A (0): against B (1), C (2) and D (3), and their signs in the DDD
PAIRS = ((1, "B", 1.0), (2, "C", 1.0), (3, "D", -1.0))


def _named(fit, other, *args):
    """``fit(other, *args)``; an EstimationError names the comparison."""
    try:
        return fit(other, *args)
    except drdid.EstimationError as err:
        raise drdid.EstimationError(f"the comparison of the treated-eligible cell with "
                                    f"{CELLS[other]}: {err}") from None


@dataclass(frozen=True, eq=False)
class DDDFit:
    """One DDD: the estimate, its influence values (sum scale, one per unit given), the three
    DiDs by comparison cell (``B``, ``C``, ``D``), the number of trimmed units, the DiD
    against B (reusable) and the propensity fits by comparison cell (1, 2, 3)."""

    att: float
    psi: np.ndarray
    pairs: dict
    n_trimmed: int = 0
    pair_b: object = None
    ps: dict | None = None


def ddd_changes(dy, cell, x, w, method="dr", trim=0.01, pair_b=None, ps=None) -> DDDFit:
    """The DDD of outcome changes ``dy`` of units in four cells (``cell``: 0 treated-eligible,
    1 treated-ineligible, 2 comparison-eligible, 3 comparison-ineligible).

    ``DiD(0, 1) + DiD(0, 2) - DiD(0, 3)``, each two-cell DiD on those cells' units by
    outcome regression, IPW or the doubly robust form (``x``: covariates with an intercept
    column; ``None``: the weighted cell means). Every cell needs positive weight.
    Pieces of earlier calls can be passed back: ``pair_b``, the DiD against cell 1 of a
    call whose cells 0 and 1 were the same units in the same positions; ``ps``, propensity
    fits by comparison cell (:func:`~diff_diff.estimators.drdid.propensity`) on the same
    units, covariates and weights. Raises
    :class:`~diff_diff.estimators.drdid.EstimationError` naming the comparison.
    """
    if x is None:
        total = np.bincount(cell, weights=w, minlength=4)
        mean = np.bincount(cell, weights=w * dy, minlength=4) / total
        sign = np.array([1.0, -1.0, -1.0, 1.0])
        psi = sign[cell] * w * (dy - mean[cell]) / total[cell]
        pairs = {"B": mean[0] - mean[1], "C": mean[0] - mean[2], "D": mean[0] - mean[3]}
        return DDDFit(mean[0] - mean[1] - mean[2] + mean[3], psi, pairs)
    fn, ps = drdid.ESTIMATORS[method], dict(ps or {})

    def pair(other):
        use = np.flatnonzero((cell == 0) | (cell == other))
        d = (cell[use] == 0).astype(float)
        if method == "reg":
            return use, fn(dy[use], d, x[use], w[use])
        if ps.get(other) is None:
            ps[other] = drdid.propensity(d, x[use], w[use])
        return use, fn(dy[use], d, x[use], w[use], trim, ps=ps[other])

    att, psi, pairs, trimmed, first = 0.0, np.zeros(dy.size), {}, 0, None
    for other, name, sign in PAIRS:
        if other == 1 and pair_b is not None:
            use, res = pair_b
        else:
            use, res = _named(pair, other)
        first = (use, res) if other == 1 else first
        pairs[name] = res.att
        att += sign * res.att
        psi[use] += sign * res.inf / use.size
        trimmed += res.n_trimmed
    return DDDFit(att, psi, pairs, trimmed, first, ps)


def ddd_levels(y, post, cell, x, w, method="dr", trim=0.01) -> DDDFit:
    """The DDD of repeated cross-sections: outcome levels ``y`` of observations in four
    cells (``cell`` as :func:`ddd_changes`) and two periods (``post`` 0/1).

    ``DiD(0, 1) + DiD(0, 2) - DiD(0, 3)``, each two-cell DiD on those cells' observations
    of both periods by the repeated cross-section estimators of Sant'Anna & Zhao (2020)
    (:data:`~diff_diff.estimators.drdid.ESTIMATORS_RC`; ``x`` with an intercept column,
    ``None``: the four weighted means). Influence values are on the sum scale, one per
    observation; the doubly robust one carries the sign convention documented in
    :func:`~diff_diff.estimators.drdid.dr_did_rc`. Every cell needs positive weight in
    both periods. Raises :class:`~diff_diff.estimators.drdid.EstimationError` naming the
    comparison.
    """
    def pair(other):
        use = np.flatnonzero((cell == 0) | (cell == other))
        d = (cell[use] == 0).astype(float)
        if x is None:
            return use, drdid.means_did_rc(y[use], post[use], d, w[use])
        fn = drdid.ESTIMATORS_RC[method]
        extra = () if method == "reg" else (trim,)
        return use, fn(y[use], post[use], d, x[use], w[use], *extra)

    att, psi, pairs, trimmed = 0.0, np.zeros(y.size), {}, 0
    for other, name, sign in PAIRS:
        use, res = _named(pair, other)
        pairs[name] = res.att
        att += sign * res.att
        psi[use] += sign * res.inf / use.size
        trimmed += res.n_trimmed
    return DDDFit(att, psi, pairs, trimmed)


def binary_column(data, col, role):
    """A 0/1 column as floats (a ValueError naming the column otherwise)."""
    values = numeric(data, col, role)
    if not np.isin(values, (0.0, 1.0)).all():
        bad = np.unique(values[~np.isin(values, (0.0, 1.0))])[:3]
        raise ValueError(f"{role} column {col!r} must be 0/1, found {list(bad)}")
    return values
