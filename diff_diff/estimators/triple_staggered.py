"""Triple differences with staggered adoption (Ortiz-Villavicencio & Sant'Anna 2025, Section 4;
R ``triplediff::ddd`` with several periods).

The staggered mode of :class:`~diff_diff.TripleDifference` (``fit`` with ``unit=``,
``time=``, ``first_treat=``) runs here, and so does the deprecated diff-diff 3.x class
:class:`StaggeredTripleDifference`. Cells, base periods and aggregations are those of
:class:`~diff_diff.CallawaySantAnna`; what is specific is the estimate of each cell: a
DDD per comparison cohort, combined by GMM when there are several.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import any_occurrence, label_codes
from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..linalg.gls import gls_weights
from ..results.triple_staggered import StaggeredTripleDiffResults
from .base import Sample
from .callaway_santanna import (CohortShareBasis, _cells, _drop_always_treated, _is_balanced,
                               _unit_view, cohort_shares)
from .drdid import EstimationError
from .panel import build_rows, build_unit_panel, check_constant_within_unit, number_label
from .triple import TripleDifference, binary_column, ddd_changes, ddd_levels

# diff-diff 3.x (and R triplediff) spellings of control_group
R_SPELLINGS = {"notyettreated": "not_yet_treated", "nevertreated": "never_treated"}


@dataclass(frozen=True, eq=False)
class StaggeredArrays:
    """The validated data of a staggered fit: the balanced unit panel, each unit's 0/1
    eligibility, units dropped as treated from the start, and the cohort that serves as
    the comparison when no unit is never treated (None otherwise)."""

    panel: object
    eligible: np.ndarray
    enabling: np.ndarray  # first_treat of each unit (0: never), before the last cohort's recode
    dropped: int
    balance_e: int | None
    last_cohort: float | None
    rows: object = None  # RowData: repeated cross-sections or an unbalanced panel
    row_eligible: np.ndarray | None = None  # the partition of each row of ``rows``


def staggered_sample(est, data: pd.DataFrame, columns: dict, balance_e) -> Sample:
    """Read and check the columns of a staggered fit (the template's ``_sample`` step)."""
    name, c = type(est).__name__, columns
    role = "eligibility" if "eligibility" in c else "partition"
    covariates = c["covariates"] or None
    q_rows = binary_column(data, c[role], role)
    if not est.panel:
        return _rows_sample(est, data, c, role, q_rows, balance_e, panel=False)
    if est.allow_unbalanced_panel and not _is_balanced(data, c["outcome"], c["unit"], c["time"],
                                                       covariates):
        return _rows_sample(est, data, c, role, q_rows, balance_e, panel=True)
    unit_code, units = label_codes(data, c["unit"], "unit")
    check_constant_within_unit(q_rows, unit_code, units, c[role], role)
    _require_balanced(data, c["outcome"], unit_code, units, c["time"], covariates, name)
    panel = build_unit_panel(data, c["outcome"], c["unit"], c["time"], c["first_treat"],
                             covariates, name)
    panel, dropped = _drop_always_treated(panel, est.anticipation, name)
    eligible, enabling = q_rows[panel.unit_rows], panel.first_treat
    panel, last = _window(panel, est._comparison_group(), est.anticipation, name)
    arrays = StaggeredArrays(panel, eligible, enabling, dropped, balance_e, last)
    return Sample(arrays, panel.unit_rows, c["unit"], columns)


def _rows_sample(est, data, c, role, q_rows, balance_e, panel) -> Sample:
    """Repeated cross-sections (``panel=False``: every row its own unit) or an unbalanced
    panel (``allow_unbalanced_panel=True``: rows grouped into units by ``unit``)."""
    name = type(est).__name__
    rows = build_rows(data, c["outcome"], c["unit"] if panel else None, c["time"],
                      c["first_treat"], c["covariates"] or None, name)
    q = q_rows[rows.rows]
    if panel:
        check_constant_within_unit(q, rows.unit_code, rows.units, c[role], role)
    g = rows.first_treat
    bad = (g > 0) & (g <= rows.times[0] + est.anticipation)
    if bad.any():
        warn_user(f"{name}: dropped {int(bad.sum())} observation(s) of units already treated "
                  "in the first period (no pre-treatment period)")
    # first treated after the last period: never treated within the window
    rows = replace(rows, first_treat=np.where(g > rows.times[-1], 0.0, g))
    rows, q = _subset_rows(rows, q, ~bad)
    _, last = _window(_unit_view(rows), est._comparison_group(), est.anticipation, name)
    enabling = rows.first_treat  # before the last cohort's recode
    if last is not None:  # its periods from its treatment on leave, with their observations
        keep = rows.times[rows.time_code] + est.anticipation < last
        rows, q = _subset_rows(rows, q, keep)
        enabling = enabling[keep]
        rows = replace(rows, times=rows.times[rows.times + est.anticipation < last],
                       first_treat=np.where(rows.first_treat == last, 0.0, rows.first_treat))
    view = _unit_view(rows)
    first = any_occurrence(rows.unit_code, rows.units.size)
    arrays = StaggeredArrays(view, q[first], enabling[first], int(bad.sum()), balance_e, last,
                             rows, q)
    return Sample(arrays, view.unit_rows, c["unit"] if panel else None, c)


def _subset_rows(rows, q, keep):
    """The observations ``keep`` (a mask) of ``rows`` and their partition ``q``; units left
    without an observation leave too (``unit_rows``: a row of the input per unit)."""
    unit_code, units = pd.factorize(rows.unit_code[keep], sort=True)
    unit_code = unit_code.astype(np.int64)
    kept = rows.rows[keep]
    return replace(rows, y=rows.y[keep], time_code=rows.time_code[keep],
                   first_treat=rows.first_treat[keep],
                   x=None if rows.x is None else rows.x[keep], unit_code=unit_code,
                   units=rows.units[units], rows=kept,
                   unit_rows=kept[any_occurrence(unit_code, units.size)]), q[keep]


def _require_balanced(data, outcome, unit_code, units, time, covariates, name) -> None:
    """Every unit observed, with the outcome and covariates, in every period."""
    cols = [outcome] + list(covariates or [])
    complete = ~data[cols].isna().any(axis=1).to_numpy()
    n_periods = data[time].nunique()
    counts = np.bincount(unit_code[complete], minlength=len(units))
    short = np.flatnonzero(counts < n_periods)
    if short.size:
        what = "the outcome and covariates" if covariates else "the outcome"
        example = np.asarray(units)[short[:1]].tolist()[0]
        raise ValueError(
            f"{name}: the panel is unbalanced: {short.size} of {len(units)} units lack "
            f"{what} in some of the {n_periods} periods (e.g. unit {example!r}); the "
            "staggered triple difference needs every unit in every period: keep the units "
            "observed throughout (drop rows with missing values, then the units with fewer "
            "rows than periods), fill the gaps, or pass allow_unbalanced_panel=True (the "
            "repeated cross-section estimators on every observation, influence values summed "
            "by unit)")


def _window(panel, control_group, anticipation, name):
    """Without never-treated units, the last cohort to be treated is the comparison group
    and the periods from its treatment on are left out (Ortiz-Villavicencio & Sant'Anna
    2025, Section 2; R triplediff). Returns the panel and that cohort (None: not needed)."""
    g = panel.first_treat
    if (g == 0).any() or not (g > 0).any():
        return panel, None
    if control_group == "never_treated":
        raise ValueError(
            f"{name}: there are no never-treated units (first_treat 0 or inf, or first "
            "treated after the last period) to compare with; every unit is eventually "
            "treated - use control_group='not_yet_treated'")
    last = g.max()
    if not (g < last).any():
        raise ValueError(
            f"{name}: every unit is treated in the same period ({number_label(last)}) and "
            "none is never treated: there is no comparison group")
    keep = panel.times + anticipation < last
    warn_user(
        f"{name}: no unit is never treated, so cohort {number_label(last)} (the last to be "
        "treated) serves as the comparison group and gets no ATT(g, t) of its own; periods "
        f"from {number_label(panel.times[~keep][0])} on, when it is treated"
        f"{' or anticipates' if anticipation else ''}, are left out")
    x = None if panel.x is None else panel.x[:, keep]
    y = panel.y[:, keep] if panel.y.shape[1] else panel.y  # a view of rows has no columns
    return replace(panel, y=y, times=panel.times[keep], x=x,
                   first_treat=np.where(g == last, 0.0, g),
                   n_rows=int(panel.y.shape[0] * keep.sum())), last


def staggered_estimate(est, sample, design):
    """Every ATT(g, t) and the cohort shares, with their influence basis (the template's
    ``_estimate`` step)."""
    name, arrays = type(est).__name__, sample.arrays
    panel, eligible, w = arrays.panel, arrays.eligible, design.weights
    g = panel.first_treat
    if not (g > 0).any():
        raise ValueError(
            f"{name}: every treated unit is treated from the first period, so none has a "
            "pre-treatment period" if arrays.dropped else
            f"{name}: no unit is treated (first_treat column "
            f"{sample.columns['first_treat']!r} is 0, inf or after the last period for every "
            "unit)")
    role = "eligibility" if "eligibility" in sample.columns else "partition"
    _check_partitions(g, eligible, w, name, sample.columns[role], arrays.last_cohort)
    cells = _cells(panel, est.anticipation, est.base_period)
    if cells.group.size == 0:
        raise ValueError(f"{name}: no treated cohort has a pre-treatment period")
    settings = (cells, est._comparison_group(), est.anticipation, est.estimation_method,
                est.pscore_trim, name, arrays.last_cohort)
    core = (StaggeredDDD(panel, eligible, *settings) if arrays.rows is None else
            StaggeredDDDRows(arrays.rows, arrays.row_eligible, panel, eligible, *settings))
    fit = core.estimate(w)
    pg = core.cohort_shares(w)
    treated = np.where(eligible == 1, g, 0.0)  # eligible units of a cohort are its treated
    estimate = Estimate(np.concatenate([fit.att, pg]), CohortShareBasis(fit.psi, treated, w),
                        reestimate=core.theta, name=name)
    return SimpleNamespace(
        estimate=estimate, panel=replace(panel, first_treat=treated), enabling=arrays.enabling,
        eligible=eligible, cells=cells, att=fit.att, psi=fit.psi, pg=pg,
        n_treated=fit.n_treated, n_control=fit.n_control, comparisons=fit.comparisons,
        dropped=arrays.dropped, balance_e=arrays.balance_e, last_cohort=arrays.last_cohort,
        layout=("panel" if arrays.rows is None else "unbalanced panel" if est.panel else
                "repeated cross-sections"))


def _check_partitions(first_treat, eligible, weights, name, column, last) -> None:
    """Every cohort, and the never-treated units, need eligible and ineligible units."""
    problems = []
    for cohort in np.unique(first_treat):
        here = (first_treat == cohort) & (weights > 0)
        label = (f"cohort first_treat={number_label(cohort)}" if cohort > 0 else
                 f"the comparison cohort {number_label(last)}" if last is not None else
                 "the never-treated units")
        for value, kind in ((1, "eligible"), (0, "ineligible")):
            if not (here & (eligible == value)).any():
                problems.append(f"{label} has no {kind} unit ({column!r} = {value})")
    if problems:
        raise ValueError(
            f"{name}: {'; '.join(problems[:4])}{' ...' if len(problems) > 4 else ''} with "
            "positive weight; the triple difference compares eligible with ineligible units "
            "within every cohort and within the never-treated: drop such cohorts' units or "
            "check the column")


class StaggeredDDD:
    """The ATT(g, t) of every cell under given unit weights (replicate refits reuse it).

    For a cell of cohort ``g`` and each comparison cohort ``k`` (never treated; with
    ``control_group="not_yet_treated"`` also every cohort not treated by the cell's
    later period plus anticipation), the DDD of the outcome change from the base period
    compares the eligible units of ``g`` with the ineligible units of ``g`` and the
    eligible and ineligible units of ``k`` (:func:`~diff_diff.estimators.triple.ddd_changes`,
    covariates from the base period). Several comparisons are combined with the weights
    ``Omega^-1 1 / (1' Omega^-1 1)``, ``Omega`` the cross-products of their influence
    values (Ortiz-Villavicencio & Sant'Anna 2025, Eqs. 4.11-4.12).
    """

    def __init__(self, panel, eligible, cells, control_group, anticipation, method, trim,
                 name="TripleDifference", last_cohort=None):
        self.panel, self.eligible, self.cells = panel, eligible, cells
        self.method, self.trim, self.name = method, trim, name
        self.never = 0.0 if last_cohort is None else float(last_cohort)  # what code 0 is
        g, times = panel.first_treat, panel.times
        self.groups = np.unique(g[g > 0])
        member = np.where(g > 0, np.searchsorted(self.groups, g) + 1, 0)  # 0: never treated
        self.member = member
        self.share_group = np.where(eligible == 1, member - 1, -1)
        order = np.argsort(member, kind="stable")
        bounds = np.searchsorted(member[order], np.arange(self.groups.size + 2))
        self.rows_of = [order[bounds[j]:bounds[j + 1]] for j in range(self.groups.size + 1)]
        self.cell_member = np.searchsorted(self.groups, cells.group) + 1
        self.x_fixed = panel.x is None or bool(np.all(panel.x == panel.x[:, :1, :]))  # panel
        never = [0] if self.rows_of[0].size else []
        self.comparisons = []
        for gc, cur, base in zip(cells.group, cells.current, cells.base):
            later = []
            if control_group == "not_yet_treated":
                cutoff = times[max(cur, base)] + anticipation
                later = [j + 1 for j, k in enumerate(self.groups) if k > cutoff and k != gc]
            self.comparisons.append(never + later)

    def comparison_label(self, code):
        """The cohort a comparison code stands for (0: never treated; the last cohort when
        it is the comparison group)."""
        return self.never if code == 0 else float(self.groups[code - 1])

    def cohort_shares(self, weights):
        """Shares of the eligible units of each cohort (the treated; paper Eq. 4.13)."""
        return cohort_shares(weights, self.share_group, self.groups.size)

    def theta(self, weights) -> np.ndarray:
        """Every cell's ATT and the cohort shares under other unit weights (replicates)."""
        return np.concatenate([self.estimate(weights, strict=False).att,
                               self.cohort_shares(weights)])

    def estimate(self, weights, strict=True):
        """Every cell's ATT, influence values (sum scale, one row per unit), unit counts and
        comparisons under unit ``weights``; ``strict``: warn about cells left out."""
        cells = self.cells
        n, k = self.eligible.size, cells.group.size
        out = SimpleNamespace(att=np.full(k, np.nan), psi=np.zeros((n, k), order="F"),
                              n_treated=np.zeros(k, np.int64), n_control=np.zeros(k, np.int64),
                              comparisons=[((), np.zeros(0), np.zeros(0))] * k)
        problems, skipped, scratch = [], [], {}
        for c in range(k):
            if cells.base[c] == cells.current[c]:  # universal base period: 0 by definition
                out.att[c] = 0.0
                continue
            fits, why, out.n_treated[c] = self._cell_fits(c, weights, scratch)
            if why:
                (skipped if fits else problems).append((cells.group[c], cells.time[c], why))
            if not fits:
                continue
            codes, atts, cols, n_control = zip(*fits)
            out.n_control[c] = sum(n_control)
            if len(fits) == 1:
                out.att[c], out.psi[:, c], gmm = atts[0], cols[0], np.ones(1)
            else:
                out.att[c], out.psi[:, c], gmm = gmm_combine(np.array(atts),
                                                             np.column_stack(cols))
            out.comparisons[c] = (tuple(self.comparison_label(j) for j in codes), gmm,
                                  np.array(atts))
        if strict:
            for found, what in ((problems, "cell(s) not estimable and left out"),
                                (skipped, "cell(s) estimated without some comparison cohorts")):
                if found:
                    shown = "; ".join(f"(g={number_label(g)}, t={number_label(t)}) {why}"
                                      for g, t, why in found[:3])
                    warn_user(f"{self.name}: {len(found)} {what}: {shown}")
        return out

    @staticmethod
    def _positive(rows, weights):
        return rows[weights[rows] > 0]

    def _cell_fits(self, c, weights, scratch):
        """The comparisons of cell ``c`` (see :meth:`_comparisons`), why some failed and
        the number of treated units; ``scratch`` is shared by the cells of one estimate."""
        panel, base = self.panel, self.cells.base[c]
        design = scratch.setdefault("design", {})
        if base not in design:
            design[base] = None if panel.x is None else np.column_stack(
                [np.ones(panel.y.shape[0]), panel.x[:, base, :]])
        dy = panel.y[:, self.cells.current[c]] - panel.y[:, base]
        treated = self._positive(self.rows_of[self.cell_member[c]], weights)
        fits, why = self._comparisons(c, treated, dy, design[base], weights,
                                      scratch.setdefault("ps", {}))
        return fits, why, int((self.eligible[treated] == 1).sum())

    def _label(self, code):
        """A comparison cohort for messages."""
        return ("the never treated" if code == 0 and not self.never else
                f"cohort {number_label(self.comparison_label(code))}")

    @staticmethod
    def _why(fits, reasons):
        """One message from ``[(comparison, reason)]`` (empty when every comparison fit)."""
        by_reason = {}
        for label, reason in reasons:
            by_reason.setdefault(reason, []).append(label)
        why = "; ".join(f"against {', '.join(labels)}: {reason}"
                        for reason, labels in by_reason.items())
        return why or ("" if fits else "no comparison cohort")

    def _comparisons(self, c, treated, dy, x, weights, cache):
        """The DDD of cell ``c`` against each of its comparison cohorts:
        ``[(code, att, psi column, n comparison units)]`` and why none could be estimated.

        Propensity fits depend on the cohorts and the base period's covariates only, so
        cells that share them share the fits (``cache``, one estimate's)."""
        n, fits, reasons, pair_b = dy.size, [], [], None
        q, g = self.eligible, self.cell_member[c]
        base = None if self.x_fixed else self.cells.base[c]
        for code in self.comparisons[c]:
            control = self._positive(self.rows_of[code], weights)
            use = np.concatenate([treated, control])
            cell = np.where(q[use] == 1, 0, 1) + 2 * (np.arange(use.size) >= treated.size)
            label = self._label(code)
            if np.bincount(cell, minlength=4).min() == 0:
                reasons.append((label, "a cohort x partition cell has no unit"))
                continue
            keys = {other: (other, g, code if other > 1 else None, base) for other in (1, 2, 3)}
            try:
                fit = ddd_changes(dy[use], cell, None if x is None else x[use], weights[use],
                                  self.method, self.trim, pair_b,
                                  {other: cache.get(key) for other, key in keys.items()})
            except EstimationError as err:
                reasons.append((label, str(err)))
                continue
            pair_b = fit.pair_b
            cache.update({keys[other]: f for other, f in (fit.ps or {}).items()})
            column = np.zeros(n)
            column[use] = fit.psi
            fits.append((code, fit.att, column, control.size))
        return fits, self._why(fits, reasons)


class StaggeredDDDRows(StaggeredDDD):
    """:class:`StaggeredDDD` on observations: repeated cross-sections (every row its own
    unit) or an unbalanced panel (rows grouped into units).

    The DDD of a cell against a comparison cohort uses every observation of the two
    cohorts in the cell's two periods: the repeated cross-section estimators
    (:func:`~diff_diff.estimators.triple.ddd_levels`; covariates as observed in each row),
    as moderndid's ``ddd`` with ``panel=False`` or ``allow_unbalanced_panel=True`` (and R
    ``did`` for the two-group case). Influence values are summed by unit, so with an
    unbalanced panel a unit's observations are not treated as independent.
    """

    def __init__(self, rows, row_eligible, unit_view, eligible, cells, control_group,
                 anticipation, method, trim, name="TripleDifference", last_cohort=None):
        super().__init__(unit_view, eligible, cells, control_group, anticipation, method, trim,
                         name, last_cohort)
        self.rows, self.row_eligible = rows, row_eligible
        self.n_times = rows.times.size
        slot = self.member[rows.unit_code] * self.n_times + rows.time_code
        self.order = np.argsort(slot, kind="stable")
        self.bounds = np.searchsorted(slot[self.order],
                                      np.arange((self.groups.size + 1) * self.n_times + 1))
        self.x = None if rows.x is None else np.column_stack([np.ones(rows.y.size), rows.x])

    def _slot(self, member, period):
        at = member * self.n_times + period
        return self.order[self.bounds[at]:self.bounds[at + 1]]

    def _cell_fits(self, c, weights, scratch):
        rows, cur, base = self.rows, self.cells.current[c], self.cells.base[c]
        if "w" not in scratch:
            scratch["w"] = weights[rows.unit_code]
        w, q = scratch["w"], self.row_eligible

        def observations(member):
            found = np.concatenate([self._slot(member, cur), self._slot(member, base)])
            return found[w[found] > 0]

        treated = observations(self.cell_member[c])
        fits, reasons = [], []
        for code in self.comparisons[c]:
            control = observations(code)
            use = np.concatenate([treated, control])
            cell = np.where(q[use] == 1, 0, 1) + 2 * (np.arange(use.size) >= treated.size)
            post = (rows.time_code[use] == cur).astype(float)
            if np.bincount(2 * cell + post.astype(np.int64), minlength=8).min() == 0:
                reasons.append((self._label(code), "a cohort x partition cell has no "
                                "observation in one of the two periods"))
                continue
            try:
                fit = ddd_levels(rows.y[use], post, cell, None if self.x is None else
                                 self.x[use], w[use], self.method, self.trim)
            except EstimationError as err:
                reasons.append((self._label(code), str(err)))
                continue
            column = np.bincount(rows.unit_code[use], weights=fit.psi,
                                 minlength=self.eligible.size)
            fits.append((code, fit.att, column, control.size))
        return fits, self._why(fits, reasons), int((q[treated] == 1).sum())


def gmm_combine(atts: np.ndarray, psi: np.ndarray):
    """The minimum-variance combination of estimates of one parameter.

    ``psi`` (n x K) holds their influence values (sum scale); the weights are
    ``Omega^-1 1 / (1' Omega^-1 1)`` with ``Omega = psi' psi`` (:func:`gls_weights`: a
    pseudo-inverse when ``Omega`` is singular). Returns the combined estimate, its influence values and the
    weights. The weights' own estimation does not enter the influence values: they sum
    to one and multiply estimates of the same parameter, so it is of second order.
    """
    weights, _ = gls_weights(psi.T @ psi)
    return float(weights @ atts), psi @ weights, weights


class StaggeredTripleDifference(TripleDifference):
    """Deprecated diff-diff 3.x name of the staggered triple difference.

    Use ``TripleDifference(...).fit(data, outcome, partition=..., unit=..., time=...,
    first_treat=...)``: the same estimator and numbers. This class keeps 3.x code
    working (constructing it gives a ``FutureWarning``): ``control_group`` in R's
    spelling (``"notyettreated"``, ``"nevertreated"``; the underscored values work too)
    and ``fit(data, outcome, unit, time, first_treat, eligibility, covariates, aggregate,
    balance_e, survey_design)``.

    Parameters
    ----------
    estimation_method : {"dr", "reg", "ipw"}, default "dr"
        Doubly robust, outcome regression or inverse probability weighting.
    control_group : {"notyettreated", "nevertreated"}, default "notyettreated"
        Comparison cohorts.
    alpha : float, default 0.05
        Significance level.
    anticipation : int, default 0
        Periods of anticipation.
    base_period : {"varying", "universal"}, default "varying"
        Base period of the pre-treatment effects.
    n_bootstrap : int, default 0
        Multiplier bootstrap draws (0: analytic standard errors).
    bootstrap_weights : {"rademacher", "mammen", "webb"}, default "rademacher"
        Bootstrap multipliers.
    seed : int, optional
        Seed of the bootstrap.
    cband : bool, default True
        Uniform confidence bands for the event study (with the bootstrap).
    pscore_trim : float, default 0.01
        Propensity scores are trimmed to ``[pscore_trim, 1 - pscore_trim]``.
    cluster : str, optional
        Column to cluster standard errors by.
    panel : bool, default True
        False: repeated cross-sections (``unit`` may be None).
    allow_unbalanced_panel : bool, default False
        True: an unbalanced panel is estimated from every observation (see
        :class:`TripleDifference`).

    Examples
    --------
    >>> import warnings
    >>> from diff_diff.estimators.triple_staggered import StaggeredTripleDifference
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     est = StaggeredTripleDifference(control_group="nevertreated")
    >>> caught[0].category.__name__, est.control_group
    ('FutureWarning', 'nevertreated')
    """

    _allowed = {**TripleDifference._allowed,
                "control_group": ("notyettreated", "nevertreated", "not_yet_treated",
                                  "never_treated")}

    def __init__(self, estimation_method="dr", control_group="notyettreated", alpha=0.05,
                 anticipation=0, base_period="varying", n_bootstrap=0,
                 bootstrap_weights="rademacher", seed=None, cband=True, pscore_trim=0.01,
                 cluster=None, panel=True, allow_unbalanced_panel=False):
        warn_user("StaggeredTripleDifference is deprecated and will be removed in 4.0; use "
                  "TripleDifference().fit(data, outcome, partition=..., unit=..., time=..., "
                  "first_treat=...): the same estimator (eligibility= is named partition=, "
                  "control_group takes 'not_yet_treated' / 'never_treated')", FutureWarning)
        self._store(locals())

    def fit(self, data, outcome, unit, time, first_treat, eligibility, covariates=None,
            aggregate=None, balance_e=None, survey_design=None) -> StaggeredTripleDiffResults:
        """Estimate every ATT(g, t): :meth:`TripleDifference.fit` with the staggered design.

        Parameters
        ----------
        data : DataFrame
            A balanced panel; not modified.
        outcome, unit, time, first_treat : str
            Columns (``first_treat``: the period the unit's group is first treated, 0 or
            inf for never).
        eligibility : str
            The 0/1 partition column (``partition=`` of :class:`TripleDifference`).
        covariates : list of str, optional
        aggregate, balance_e
            diff-diff 3.x keywords, as in :meth:`TripleDifference.fit`.
        survey_design : SurveyDesign, optional

        Returns
        -------
        StaggeredTripleDiffResults
        """
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        return self._fit_staggered(data, survey_design, dict(
            outcome=outcome, eligibility=eligibility, unit=unit, time=time,
            first_treat=first_treat, covariates=covariates or None), aggregate, balance_e)
