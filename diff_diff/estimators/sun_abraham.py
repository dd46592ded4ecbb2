"""Sun & Abraham (2021) interaction-weighted event study on the weighted-least-squares core."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._grouping import label_codes
from .._warnings import warn_user
from ..results.sun_abraham import SunAbrahamResults
from ..survey.design import WEIGHT_TYPES, SurveyDesign
from .panel import _first_treat, check_constant_within_unit, numeric, require_columns
from .registry import register
from .regression import _Regression

# "not_yet_treated" (diff-diff 3.x) fits the same saturated regression as "never_treated": the
# not-yet-treated periods of later cohorts carry their own cohort x relative-period indicators
CONTROL_GROUPS = ("never_treated", "not_yet_treated", "last_treated")


@register(aliases=("SA",), data="panel", inference="regression", weight_types=WEIGHT_TYPES,
          bootstrap="wild", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat"))
class SunAbraham(_Regression):
    """Interaction-weighted event study (Sun & Abraham 2021; R ``fixest::sunab``).

    The saturated regression ``y_it = a_i + l_t + sum_{g, e != r} delta_ge
    1{G_i = g} 1{t - g = e} (+ X g) + e_it`` (unit and period effects absorbed,
    one coefficient per cohort and relative period except the reference
    ``r = -1 - anticipation``) gives cohort-specific effects free of the
    contamination of TWFE event studies. The event study averages them with
    cohort-share weights, ``beta_e = sum_g w_ge delta_ge``, ``w_ge`` the share
    of cohort g among the cohorts observed at e (weighted by the sampling
    weights), and the overall ATT averages the post-treatment cells by their
    size. Standard errors are the delta method on the coefficient covariance
    with the weights held fixed (as ``fixest::aggregate``), with any
    ``vcov_type`` of the regression family or a survey design.

    Parameters
    ----------
    control_group : {"never_treated", "last_treated", "not_yet_treated"}
        Comparison units: never treated, or the last treated cohort (its
        periods from its treatment on are dropped, and it serves as the
        control). ``not_yet_treated`` (accepted for diff-diff 3.x) is the same
        regression as ``never_treated``: in the saturated model the later
        cohorts' untreated periods have indicators of their own.
    anticipation : int
        Periods of anticipation: the reference is the period ``1 + anticipation``
        observed periods before treatment (by position, whatever the spacing of
        the periods; event times are reported as ``t - g``).
    vcov_type : {"hc1", "classical", "hc2", "hc3", "cr1", "hc2_bm"}
        ``hc1`` (default) clusters by ``cluster`` or, without it, by unit (CR1);
        ``classical``, ``hc2`` and ``hc3`` without ``cluster`` do not cluster;
        ``hc2_bm`` is CR2 with Bell-McCaffrey degrees of freedom by ``cluster``
        or unit.
    cluster : str, optional
    alpha : float
    rank_deficient_action : {"warn", "error", "silent"}
    inference : {"analytic", "wild_bootstrap"}
        ``wild_bootstrap``: wild cluster bootstrap p-value and interval of the
        overall ATT (needs ``cluster``).
    n_bootstrap, bootstrap_weights, seed
        Wild bootstrap draws, multipliers and seed (``inference="wild_bootstrap"``;
        diff-diff 3.x's pairs bootstrap is not available, and ``n_bootstrap > 0``
        with analytic inference warns).

    Examples
    --------
    >>> import diff_diff as dd
    >>> res = dd.SunAbraham().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal",
    ...                           time="year", first_treat="first.treat")
    >>> round(res.att, 4)
    -0.04
    """

    _allowed = {**_Regression._allowed, "control_group": CONTROL_GROUPS}
    _checks = {**_Regression._checks,
               "anticipation": (lambda v: isinstance(v, int) and not isinstance(v, bool)
                                and v >= 0, "a non-negative integer")}

    def __init__(self, control_group="never_treated", anticipation=0, vcov_type="hc1",
                 cluster=None, alpha=0.05, rank_deficient_action="warn", inference="analytic",
                 n_bootstrap=0, bootstrap_weights="rademacher", seed=None):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            covariates: list[str] | None = None,
            survey_design: SurveyDesign | None = None) -> SunAbrahamResults:
        """Fit the saturated regression and aggregate it.

        Parameters
        ----------
        data : DataFrame
            Long panel, one row per unit and period; not modified.
        outcome, unit, time, first_treat : str
            Columns; ``first_treat`` is the first treated period (0 or inf:
            never treated), constant within unit; periods are numeric.
        covariates : list of str, optional
        survey_design : SurveyDesign, optional
            Weights (any type) and a design for the variance.
        """
        self._validate()
        if self.n_bootstrap and self.inference != "wild_bootstrap":
            warn_user("SunAbraham: n_bootstrap is used by inference='wild_bootstrap' (the wild "
                      "cluster bootstrap of the overall ATT); diff-diff 3.x's pairs bootstrap is "
                      "not available, so the standard errors are analytic")
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        require_columns(data, outcome=outcome, unit=unit, time=time, first_treat=first_treat,
                        covariates=covariates, cluster=self.cluster)
        rows, g, t, relative, unit_codes = self._sample(data, unit, time, first_treat)
        data = data.iloc[rows]
        y = numeric(data, outcome, "outcome")
        cells, labels = _cells(g, t, relative, self.anticipation)
        names = [f"{first_treat}[{_num(gg)}]:e[{_num(e)}]" for gg, e in labels]
        fit, x, absorb, weights, frequency, design, meta = self._cell_fit(
            data, y, cells, names, covariates, time, unit_codes, survey_design)
        w = np.ones(y.size) if weights is None else weights
        agg = _aggregation(labels, cells, w, fit.kept[:len(labels)], fit.rank)
        vcov_type = self.vcov_type
        one_way = vcov_type in ("classical", "hc2", "hc3") and self.cluster is None
        cluster = None if one_way else label_codes(data, self.cluster or unit,
                                                   "cluster" if self.cluster else "unit")[0]
        # replicates that drop a whole cohort lose only that cohort's coefficients
        groups = np.array([str(_num(g_)) for g_, _ in labels] + ["other"] * (fit.kept.size
                                                                          - len(labels)))
        var, wild = self._infer(fit, y, x, frequency, absorb, design, cluster,
                                agg["overall"], contrasts=agg["contrasts"],
                                vcov_type=vcov_type, default_cluster=self.cluster is None,
                                groups=groups[fit.kept])
        res = SunAbrahamResults.from_parts(self, fit, var, agg, labels, meta, wild,
                                           n_units=int(unit_codes.max()) + 1,
                                           n_treated=int(np.unique(unit_codes[g > 0]).size))
        res._warn_if_not_identified()
        return res

    def _sample(self, data, unit, time, first_treat):
        """Rows used, cohort, period and relative position per row, unit codes (never treated:
        cohort 0). Relative time counts observed periods (``position(t) - position(g)``), so
        the reference is the period just before treatment however periods are spaced."""
        t = numeric(data, time, "time")
        g = _first_treat(data, first_treat)
        unit_codes, units = label_codes(data, unit, "unit")
        check_constant_within_unit(g, unit_codes, units, first_treat)
        periods = np.unique(t)
        g = np.where(g > periods[-1], 0.0, g)  # treated after the window: never treated in it
        position = np.searchsorted(periods, t)
        start = np.searchsorted(periods, g)  # first observed period on or after g
        keep = ~((g > 0) & (start - self.anticipation <= 0))  # no pre-period: dropped
        if not keep.all():
            warn_user(f"SunAbraham: dropped {int((~keep).sum())} row(s) of units treated from "
                      "the first period (no pre-treatment period)")
        if self.control_group == "last_treated":
            cohorts = np.unique(g[keep & (g > 0)])
            if cohorts.size < 2:
                raise ValueError("SunAbraham: control_group='last_treated' needs at least two "
                                 "treated cohorts")
            last = cohorts[-1]
            last_start = int(np.searchsorted(periods, last))
            keep &= position < last_start - self.anticipation  # its untreated periods only
            g = np.where(g == last, 0.0, g)
        if not (g[keep] > 0).any():
            raise ValueError(f"SunAbraham: no unit is treated (first_treat column "
                             f"{first_treat!r})")
        if self.control_group in ("never_treated", "not_yet_treated") and not (g[keep] == 0).any():
            raise ValueError("SunAbraham: there are no never-treated units; use "
                             "control_group='last_treated'")
        rows = np.flatnonzero(keep)
        relative = (position - start)[rows]
        _check_references(g[rows], relative, self.anticipation, first_treat)
        codes = pd.factorize(unit_codes[rows], sort=True)[0].astype(np.int64)
        return rows, g[rows], t[rows], relative, codes


def _check_references(g, relative, anticipation, column):
    """Every treated cohort needs rows in its reference period, or its cells are collinear."""
    treated = g > 0
    cohorts = np.unique(g[treated])
    seen = np.unique(g[treated & (relative == -1 - anticipation)])
    missing = cohorts[~np.isin(cohorts, seen)]
    if missing.size:
        raise ValueError(f"SunAbraham: cohort(s) {[_num(c) for c in missing]} of {column!r} have "
                         f"no observation in their reference period ({1 + anticipation} "
                         "period(s) before treatment); their effects are not identified")


def _num(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def _cells(g, t, relative, anticipation):
    """Cell code of each row (-1: no indicator) and the (cohort, relative period) labels,
    sorted by cohort, then relative period; labels give ``t - g`` in the data's units, the
    reference is by position (``relative == -1 - anticipation``)."""
    e = np.round(t - g, 9)
    has = (g > 0) & (relative != -1 - anticipation)
    cohort_code, cohorts = pd.factorize(g[has], sort=True)
    event_code, events = pd.factorize(e[has], sort=True)
    pair = cohort_code.astype(np.int64) * len(events) + event_code
    present, code = np.unique(pair, return_inverse=True)
    cells = np.full(g.size, -1, dtype=np.int64)
    cells[has] = code
    labels = [(float(cohorts[p // len(events)]), float(events[p % len(events)]))
              for p in present]
    return cells, labels


def _aggregation(labels, cells, w, kept, rank) -> dict:
    """Cohort-share weights per relative period and the overall post-period weights, as
    contrasts of the kept coefficients (rows: event times, then the overall ATT)."""
    mass = np.bincount(cells[cells >= 0], weights=w[cells >= 0], minlength=len(labels))
    position = np.cumsum(kept) - 1  # index among the kept coefficients
    events = sorted({e for _, e in labels})
    contrasts = np.zeros((len(events), rank))
    weights = {}
    for i, ev in enumerate(events):
        members = [j for j, (_, e) in enumerate(labels) if e == ev and kept[j]]
        total = mass[members].sum()
        weights[ev] = {labels[j][0]: mass[j] / total for j in members} if total > 0 else {}
        for j in members:
            contrasts[i, position[j]] = mass[j] / total
    post = [j for j, (_, e) in enumerate(labels) if e >= 0 and kept[j]]
    overall = np.zeros(rank)
    if post:
        overall[position[post]] = mass[post] / mass[post].sum()
    else:
        overall[:] = np.nan
    return {"events": events, "contrasts": np.vstack([contrasts, np.nan_to_num(overall)]),
            "event_contrasts": contrasts, "overall": overall, "weights": weights,
            "mass": mass, "position": position}

