"""Borusyak, Jaravel & Spiess (2024) imputation estimator of staggered treatment effects."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import group_sums
from .._lazy import csgraph, linalg
from .._lazy import sparse as sp
from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..linalg.wls import RANK_ACTIONS, RankDeficientError, independent_columns
from ..results.imputation import ImputationDiDResults
from ..survey.design import SurveyDesign
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_int
from .panel import build_rows, number_label
from .registry import register

PARTITIONS = ("cohort_horizon", "cohort", "horizon", "estimand")
HORIZON_DECIMALS = 9  # event times t - g are rounded (float periods such as 0.1, 0.2, ...)


@register(aliases=("BJS",), data="panel", inference="influence", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat"))
class ImputationDiD(Estimator):
    """Imputation estimator for staggered adoption (Borusyak, Jaravel & Spiess 2024).

    A two-way fixed-effects model of the untreated outcome,
    ``Y_it(0) = alpha_i + lambda_t + x_it' gamma``, is fitted by (survey-)weighted
    least squares on the untreated observations only (never treated units and
    the not-yet-treated periods of later cohorts). Each treated observation's
    effect is imputed as ``tau_it = Y_it - alpha_i - lambda_t - x_it' gamma``
    and estimands are weighted means of these effects, the weights
    proportional to the sampling weights:

    * overall ATT: all treated observations with ``t >= g``;
    * event study: one effect per horizon ``h = t - g`` (``h >= -anticipation``);
    * group effects: per cohort ``g`` over its treated periods.

    Every estimand ``theta = sum_it w_it tau_it`` is linear in the outcomes,
    ``theta = sum_it v_it Y_it``; its unit influence value is
    ``sum_t v_it eps_it`` with the untreated residuals and, on treated
    observations, ``tau_it`` minus the average effect of its cell of the
    auxiliary partition (BJS Theorem 3 and Eq. 8, as R ``didimputation``).
    Standard errors come from these influence values through the library's
    inference engine: independent units (BJS's unit clustering), ``cluster=``,
    a survey design (Taylor linearization; replicate weights refit the whole
    estimator) or a PSU-level multiplier bootstrap. The engine applies the
    ``G / (G - 1)`` small-sample factor and centres the influence values, so
    standard errors are ``sqrt(G / (G - 1))`` times those of R
    ``didimputation`` when the influence values sum to zero (e.g. without
    sampling weights).

    Parameters
    ----------
    anticipation : int
        Periods before ``first_treat`` in which effects may already occur;
        they are excluded from the untreated model and reported in the event
        study at negative horizons.
    alpha : float
        1 - confidence level.
    cluster : str, optional
        Column, constant within unit, to cluster on (default: units), without
        a survey design that names PSUs.
    n_bootstrap : int
        Multiplier bootstrap draws (0: analytic standard errors), per PSU
        within strata (per unit or cluster without a design); standard errors
        are the standard deviations of the draws.
    bootstrap_weights : {"rademacher", "mammen", "webb"}
    seed : int, optional
    horizon_max : int, optional
        Event-study horizons with ``|h| <= horizon_max`` only (the overall and
        group effects still use every treated observation).
    aux_partition : {"cohort_horizon", "cohort", "horizon", "estimand"}
        Cells whose average effect re-centres the treated residuals in the
        variance (BJS Theorem 3): the finest, cohort x horizon, is R
        ``didimputation``'s choice; coarser cells are more conservative
        under effect heterogeneity. ``"estimand"`` centres every treated
        effect on the estimate itself, ``w_it (tau_it - theta)``: the
        design-based linearization of the weighted mean, which also counts
        the sampling variation of the treated composition (how many sampled
        units fall in cohorts or horizons with different effects). With a
        survey sample that stands for a population, this is the variance of
        the population estimand.
    leave_one_out : bool
        BJS Appendix A.9 refinement (Stata ``did_imputation``'s leave-out
        option): each unit's treated residuals are centred on its cell's
        average effect computed without that unit, which removes the downward
        bias of the in-sample average (exactly: the unit's cell residual sum is
        divided by ``1 - A_i^2 / sum_j A_j^2``). A cell with a single unit
        keeps the in-sample centring, with a warning. Not with
        ``aux_partition="estimand"``.
    cband : bool
        Uniform (sup-t) band for the event study from the bootstrap (needs
        ``n_bootstrap > 0``).
    vcov_type : {"hc1"}
        Accepted for diff-diff 3.x compatibility: the variance of the
        influence functions is the design's; no other type applies.
    rank_deficient_action : {"warn", "error", "silent"}
        Covariates collinear with the unit and period effects (or earlier
        covariates) among the untreated observations are dropped with a
        warning, raise, or are dropped silently.

    Examples
    --------
    >>> from diff_diff import ImputationDiD, load_mpdta
    >>> res = ImputationDiD().fit(load_mpdta(), outcome="lemp", unit="countyreal",
    ...                           time="year", first_treat="first.treat")
    >>> round(res.att, 4)
    -0.0477
    """

    _allowed = {
        **INFERENCE_ALLOWED,
        "aux_partition": PARTITIONS,
        "leave_one_out": (True, False),
        "rank_deficient_action": RANK_ACTIONS,
    }
    _checks = {
        **INFERENCE_CHECKS,
        "anticipation": (lambda v: is_int(v, 0), "a non-negative integer"),
        "horizon_max": (lambda v: v is None or is_int(v, 0), "None or a non-negative integer"),
    }
    _results_class = ImputationDiDResults

    def __init__(
        self,
        anticipation: int = 0,
        alpha: float = 0.05,
        cluster: str | None = None,
        n_bootstrap: int = 0,
        bootstrap_weights: str = "rademacher",
        seed: int | None = None,
        horizon_max: int | None = None,
        aux_partition: str = "cohort_horizon",
        leave_one_out: bool = False,
        cband: bool = True,
        vcov_type: str = "hc1",
        rank_deficient_action: str = "warn",
    ):
        self._store(locals())

    def fit(
        self,
        data: pd.DataFrame,
        outcome: str,
        unit: str,
        time: str,
        first_treat: str,
        covariates: list[str] | None = None,
        survey_design: SurveyDesign | None = None,
        aggregate: str | None = None,
        balance_e: int | None = None,
    ):
        """Impute every treated observation's effect and aggregate.

        Parameters
        ----------
        data : DataFrame
            Long panel (balanced or not): one row per unit and period. Not
            modified.
        outcome, unit, time, first_treat : str
            Columns; ``first_treat`` is the first treated period, 0 or inf for
            never-treated units, constant within unit.
        covariates : list of str, optional
            Time-varying covariates of the untreated model (time-invariant
            ones are absorbed by the unit effects and dropped).
        survey_design : SurveyDesign, optional
            A ``pweight`` design whose columns are constant within unit.
        aggregate : {"simple", "event_study", "group", "all"}, optional
            diff-diff 3.x: accepted with a ``FutureWarning``; every aggregation
            is always computed (``event_study_effects``, ``group_effects``).
        balance_e : None
            diff-diff 3.x: a balanced event study is not available here; any
            value is refused (``horizon_max`` limits the horizons).

        Returns
        -------
        ImputationDiDResults
        """
        if aggregate not in (None, "simple", "event_study", "group", "all"):
            raise ValueError(f"{type(self).__name__}: aggregate must be one of [None, 'simple', "
                             f"'event_study', 'group', 'all'], got {aggregate!r}")
        if balance_e is not None:
            raise ValueError(f"{type(self).__name__}: balance_e (a balanced event study) is not "
                             "available; horizon_max limits the event-study horizons")
        if aggregate is not None:
            warn_user(f"{type(self).__name__}: fit(aggregate=...) is accepted for diff-diff 3.x code; "
                      "every aggregation is computed by the fit (event_study_effects, "
                      "group_effects, to_dataframe(level))", FutureWarning)
        if unit is None:
            raise TypeError(f"{type(self).__name__} needs a unit column (unit=)")
        covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
        return self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                   first_treat=first_treat,
                                                   covariates=covariates))

    def _sample(self, data, columns):
        if self.leave_one_out and self.aux_partition == "estimand":
            raise ValueError("ImputationDiD: leave_one_out applies to the auxiliary cells "
                             "(cohort_horizon, cohort, horizon), not to aux_partition='estimand'")
        c = columns
        rows = build_rows(data, c["outcome"], c["unit"], c["time"], c["first_treat"],
                          c["covariates"] or None, type(self).__name__)
        return Sample(rows, rows.unit_rows, c["unit"], columns)

    def _estimate(self, sample, design):
        problem = ImputationProblem(sample.arrays, self.anticipation, self.horizon_max,
                                    self.aux_partition, sample.columns["covariates"],
                                    self.leave_one_out, name=type(self).__name__,
                                    rank_action=self.rank_deficient_action)
        fit = problem.estimate(design.weights, with_influence=True, strict=True)

        estimate = Estimate(fit.theta, fit.psi, reestimate=problem.theta,
                            groups=problem.labels["kind"].to_numpy(), name=type(self).__name__)
        return SimpleNamespace(problem=problem, fit=fit, estimate=estimate)


@dataclass(frozen=True, eq=False)
class Estimands:
    """Which treated observations enter which estimand (columns: overall, horizons, cohorts)."""

    labels: pd.DataFrame  # columns: kind ("overall", "event_study", "group"), label
    rows: np.ndarray  # (m,) treated-row index of each (row, estimand) entry
    column: np.ndarray  # (m,) estimand of each entry


@dataclass(frozen=True, eq=False)
class ImputationEstimate:
    """Imputed effects, estimands and unit influence values of one fit."""

    theta: np.ndarray  # (K,) estimands
    psi: np.ndarray | None  # (n_units, K) influence values on the sum scale
    tau: np.ndarray  # (n_treated_rows,) imputed effects (NaN: not imputable)
    n_obs: np.ndarray  # (K,) treated observations per estimand
    untreated: "UntreatedFit"


@dataclass(frozen=True, eq=False)
class UntreatedFit:
    """The two-way fixed-effects model of the untreated outcome, fitted on Omega_0.

    Unit effects are kept as within-unit means (``alpha_i = ybar_i - lbar_i -
    xbar_i' gamma``) so that effects and residuals are formed from centred
    quantities, without cancelling large levels.
    """

    lam: np.ndarray  # (T,) period effects (0 at the reference, NaN: not identified)
    gamma: np.ndarray  # (p,) coefficients (0 for dropped columns)
    kept: np.ndarray  # bool (p,): identified columns
    ybar: np.ndarray  # (n_units,) weighted untreated mean outcome (NaN: none)
    lbar: np.ndarray  # (n_units,) weighted mean period effect over the unit's untreated rows
    xbar: np.ndarray | None  # (n_units, p) weighted untreated covariate means
    rows: np.ndarray  # untreated rows used (positive weight)
    s_eps: np.ndarray  # weight x residual on those rows
    solve: object  # (time rhs (T, K), covariate rhs (p, K)) -> (b_time, b_cov)
    c_over: sp.csr_matrix  # (n_units, T) untreated weight / unit total

    def counterfactual_gap(self, y, unit, time, x):
        """``y - Y(0)-hat`` for rows with these units, periods and covariates."""
        gap = (y - self.ybar[unit]) - (self.lam[time] - self.lbar[unit])
        if x is not None:
            gap = gap - (x - self.xbar[unit]) @ self.gamma
        return gap

    def influence(self, rows, x, b_time, b_cov):
        """``sum_t s_it eps_it (b_time[t] + x_it' b_cov)`` per unit (n_units x K): the
        influence of ``b' (lambda, gamma)`` (the unit effects' part vanishes because
        each unit's weighted residuals sum to zero; covariates enter centred)."""
        n_units = rows.units.size
        u, t = rows.unit_code[self.rows], rows.time_code[self.rows]
        e = sp.csr_matrix((self.s_eps, (u, t)), shape=(n_units, rows.times.size))
        out = np.asarray(e @ b_time)
        if x is not None:
            f = group_sums(u, (x[self.rows] - self.xbar[u]) * self.s_eps[:, None], n_units)
            out += f @ b_cov
        return out


class ImputationProblem:
    """Data of one imputation fit; :meth:`estimate` runs it for any unit weights.

    Replicate designs call :meth:`estimate` once per replicate with the
    replicate's unit weights; the estimand definitions (horizons, cohorts)
    stay those of the full sample.
    """

    def __init__(self, rows, anticipation, horizon_max, partition, covariates,
                 leave_one_out=False, name="ImputationDiD", rank_action="warn"):
        self.name = name  # the estimator, for messages
        self.rank_action = rank_action  # collinear covariates: warn, error or silent
        self.rows = rows
        self.leave_one_out = leave_one_out
        self.covariates = covariates
        self.anticipation = anticipation
        period = rows.times[rows.time_code]
        g = rows.first_treat
        # treated (or anticipating) only after the window: untreated throughout it
        g = np.where(g - anticipation > rows.times[-1], 0.0, g)
        treated = (g > 0) & (period >= g - anticipation)
        self.treated_rows = np.flatnonzero(treated)
        self.untreated_rows = np.flatnonzero(~treated)
        self.cohort = g[self.treated_rows]
        self.horizon = np.round(period - g, HORIZON_DECIMALS)[self.treated_rows]
        self.unit_cohort = np.zeros(rows.units.size)
        self.unit_cohort[rows.unit_code] = g
        self.horizon_max = horizon_max
        self.pair, self.pair_cell = None, None
        if partition != "estimand":
            self.pair, self.pair_cell = _partition_codes(rows.unit_code[self.treated_rows],
                                                         self.cohort, self.horizon, partition)
        self._estimands = None

    def pretrend_estimate(self, unit_weights, n_leads):
        """BJS Eq. 9: the horizons tested, their lead coefficients (NaN: collinear with
        the effects, warned) and the identified ones as an :class:`Estimate`."""
        if n_leads is not None and not is_int(n_leads, 1):
            raise ValueError(f"n_leads must be None or a positive integer, got {n_leads!r}")
        leads, coef, psi = lead_regression(self, unit_weights, n_leads, with_influence=True)
        ok = np.isfinite(coef)
        kept = leads[ok]
        estimate = Estimate(coef[ok], psi[:, ok], name=self.name,
                            reestimate=partial(lead_coefficients, self, kept))
        return leads, coef, estimate

    def theta(self, unit_weights) -> np.ndarray:
        """The estimands under other unit weights (replicates), without influence values."""
        return self.estimate(unit_weights, with_influence=False, strict=False).theta

    @property
    def labels(self) -> pd.DataFrame:
        """Estimand of each column: ``kind`` and ``label`` (horizon or cohort)."""
        return self._estimands.labels

    @property
    def n_units(self) -> int:
        return int(self.rows.units.size)

    def estimands(self, imputable: np.ndarray) -> Estimands:
        """Overall, event-study and group estimands over the imputable treated rows."""
        if self._estimands is not None:  # fixed by the full-sample fit
            return self._estimands
        h, g = self.horizon, self.cohort
        horizons = np.unique(h[imputable])
        if self.horizon_max is not None:
            horizons = horizons[np.abs(horizons) <= self.horizon_max]
        cohorts = np.unique(g[imputable & (h >= 0)])
        labels = pd.DataFrame({
            "kind": ["overall"] + ["event_study"] * horizons.size + ["group"] * cohorts.size,
            "label": np.concatenate([[np.nan], horizons, cohorts]),
        })
        idx = np.arange(h.size)
        post = imputable & (h >= 0)
        es_col = np.searchsorted(horizons, h)
        in_es = imputable & (es_col < horizons.size)
        in_es[in_es] = horizons[es_col[in_es]] == h[in_es]
        g_col = np.searchsorted(cohorts, g)
        rows = np.concatenate([idx[post], idx[in_es], idx[post]])
        column = np.concatenate([np.zeros(int(post.sum()), dtype=np.int64),
                                 1 + es_col[in_es],
                                 1 + horizons.size + g_col[post]])
        order = np.argsort(column, kind="stable")  # entries grouped by estimand
        self._estimands = Estimands(labels, rows[order], column[order])
        return self._estimands

    def estimate(self, unit_weights, with_influence=True, strict=True) -> ImputationEstimate:
        rows = self.rows
        s_rows = unit_weights[rows.unit_code]
        tr = self.treated_rows
        if strict and not (s_rows[tr] > 0).any():
            raise ValueError(f"{self.name}: no treated observation with positive weight: no "
                             "unit is treated within the observed periods")
        fit = fit_untreated(rows, self.untreated_rows, s_rows, self.covariates, strict,
                            name=self.name, rank_action=self.rank_action)
        tau = fit.counterfactual_gap(rows.y[tr], rows.unit_code[tr], rows.time_code[tr],
                                     None if rows.x is None else rows.x[tr])
        imputable = np.isfinite(tau) & (s_rows[tr] > 0)
        if strict:
            self._report_not_imputable(fit, imputable, s_rows[tr] > 0)
            if not imputable.any():
                raise ValueError(f"{self.name}: no treated observation can be imputed (see "
                                 "the warning above)")
        est = self.estimands(imputable)
        keep = imputable[est.rows]
        entry_rows, column = est.rows[keep], est.column[keep]
        k = len(est.labels)
        s = s_rows[tr][entry_rows]
        mass = np.bincount(column, weights=s, minlength=k).astype(float)
        n_obs = np.bincount(column, minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            w = s / mass[column]
        theta = np.bincount(column, weights=w * tau[entry_rows], minlength=k).astype(float)
        theta[mass <= 0] = np.nan
        psi = None
        if with_influence:
            psi = self._influence(fit, s_rows, tau, entry_rows, column, w, k, theta, strict)
        return ImputationEstimate(theta=theta, psi=psi, tau=np.where(imputable, tau, np.nan),
                                  n_obs=n_obs, untreated=fit)

    def _influence(self, fit, s_rows, tau, entry_rows, column, w, k, theta, strict):
        """Unit influence values ``sum_t v_it eps_it`` of every estimand (n_units x K)."""
        rows, n_units = self.rows, self.n_units
        tr = self.treated_rows
        unit_e = rows.unit_code[tr][entry_rows]
        time_e = rows.time_code[tr][entry_rows]
        # Z1' w: unit, period and (centred) covariate sums of the estimand weights.
        u = sp.csr_matrix((w, (unit_e, column)), shape=(n_units, k))
        n_t = rows.times.size
        rhs_time = np.bincount(time_e * k + column, weights=w, minlength=n_t * k).reshape(n_t, k)
        rhs_time -= np.asarray((fit.c_over.T @ u).todense())
        rhs_cov = None
        if rows.x is not None:
            x_c = rows.x[tr][entry_rows] - fit.xbar[unit_e]
            rhs_cov = group_sums(column, x_c * w[:, None], k).T
        b_time, b_cov = fit.solve(rhs_time, rhs_cov)
        psi = -fit.influence(rows, rows.x, b_time, b_cov)
        # Treated part: weights times effects re-centred on their auxiliary cell.
        if self.pair is None:  # "estimand": the design-based linearization
            centre, scale = theta[column], 1.0
        else:
            centre, scale, n_single = _cell_centres(self.pair[entry_rows], self.pair_cell,
                                                    column, w, tau[entry_rows], k,
                                                    self.leave_one_out)
            if n_single and strict:
                warn_user(
                    f"{self.name}: leave_one_out is undefined for {n_single} auxiliary "
                    "cell(s) with a single unit; their residuals keep the in-sample centring")
        resid = w * (tau[entry_rows] - centre) * scale
        psi += np.asarray(sp.csr_matrix((resid, (unit_e, column)), shape=(n_units, k)).todense())
        return psi

    def _report_not_imputable(self, fit, imputable, positive):
        lost = positive & ~imputable
        if not lost.any():
            return
        unit = self.rows.unit_code[self.treated_rows]
        period = self.rows.time_code[self.treated_rows]
        units = np.unique(unit[lost & np.isnan(fit.ybar[unit])])
        periods = self.rows.times[np.unique(period[lost & np.isnan(fit.lam[period])])]
        why = []
        if units.size:
            why.append(f"{units.size} unit(s) never untreated (always treated: no unit effect)")
        if periods.size:
            why.append(f"period(s) {[number_label(t) for t in periods[:5]]} without untreated "
                       "observations (no period effect)")
        warn_user(
            f"{self.name}: {int(lost.sum())} treated observation(s) cannot be imputed and are "
            f"left out: {'; '.join(why)}")


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0..k-1 of values with few distinct levels (cohorts, horizons)."""
    levels = np.unique(values)
    return np.searchsorted(levels, values).astype(np.int64), int(levels.size)


def _partition_codes(unit, cohort, horizon, partition) -> tuple[np.ndarray, np.ndarray]:
    """Per treated row: its auxiliary cell and its (unit, cell) pair, as codes; and the
    cell of each pair."""
    g_code, n_g = _codes(cohort)
    h_code, n_h = _codes(horizon)
    cell = {"cohort": g_code, "horizon": h_code}.get(partition, g_code * n_h + h_code)
    n_cells = {"cohort": n_g, "horizon": n_h}.get(partition, n_g * n_h)
    pair_key = unit * max(n_cells, 1) + cell
    pairs, pair = np.unique(pair_key, return_inverse=True)
    return pair.astype(np.int64).ravel(), (pairs % max(n_cells, 1)).astype(np.int64)


def _cell_centres(pair, pair_cell, column, w, tau, k, leave_one_out=False):
    """BJS Eq. 8 per estimand and auxiliary cell: ``sum_i A_i B_i / sum_i A_i^2`` with
    ``A_i = sum_t w_it`` and ``B_i = sum_t w_it tau_it`` over the unit's observations
    in the cell; returned per entry. Entries are grouped by estimand (``column``).

    With ``leave_one_out`` also the factor ``1 / (1 - A_i^2 / sum_j A_j^2)`` per entry
    that turns the unit's in-sample residual sum ``B_i - A_i centre`` into the one
    centred on the cell average without unit i; returns ``(centre, scale, n_single)``
    with ``n_single`` the cells (over estimands) where that is undefined.
    """
    centre = np.zeros(pair.size)
    scale = np.ones(pair.size)
    single_cells = set()
    n_pairs, n_cells = pair_cell.size, int(pair_cell.max(initial=-1)) + 1
    bounds = np.searchsorted(column, np.arange(k + 1))
    for j in range(k):
        part = slice(bounds[j], bounds[j + 1])
        p = pair[part]
        a = np.bincount(p, weights=w[part], minlength=n_pairs)
        b = np.bincount(p, weights=w[part] * tau[part], minlength=n_pairs)
        num = np.bincount(pair_cell, weights=a * b, minlength=n_cells)
        den = np.bincount(pair_cell, weights=a * a, minlength=n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            cell_centre = np.where(den > 0, num / den, 0.0)
        centre[part] = cell_centre[pair_cell[p]]
        if leave_one_out:
            share = np.divide(a * a, den[pair_cell], out=np.zeros(n_pairs),
                              where=den[pair_cell] > 0)
            single = share > 1.0 - 1e-12  # the only unit with weight in its cell
            single_cells.update(pair_cell[single].tolist())
            pair_scale = np.where(single, 1.0, 1.0 / np.where(single, 1.0, 1.0 - share))
            scale[part] = pair_scale[p]
    return centre, scale, len(single_cells)


def fit_untreated(rows, untreated, s_rows, names, strict, x=None,
                  name="ImputationDiD", rank_action="warn") -> UntreatedFit:
    """Weighted two-way fixed-effects fit on the untreated rows (exact, no iteration).

    The unit effects are eliminated (Schur complement): the reduced normal
    equations over the period effects (first identified period as reference)
    and the columns of ``x`` (default: the covariates) are ``M b = r`` with
    ``M = Z'SZ - C' D^-1 C`` for unit totals ``D`` and unit x period weights
    ``C``; their covariate blocks are formed from within-unit centred values.
    The same factorization of ``M`` gives every estimand's influence weights.
    """
    x = rows.x if x is None else x
    un = untreated[s_rows[untreated] > 0]
    if un.size == 0:
        raise ValueError(f"{name}: no untreated observation (every unit is treated in "
                         "every period)")
    n_units, n_t = rows.units.size, rows.times.size
    u, t, s, y = rows.unit_code[un], rows.time_code[un], s_rows[un], rows.y[un]
    du = np.bincount(u, weights=s, minlength=n_units)
    dt = np.bincount(t, weights=s, minlength=n_t)
    inv_du = np.divide(1.0, du, out=np.zeros(n_units), where=du > 0)
    c = sp.csr_matrix((s, (u, t)), shape=(n_units, n_t))
    c_over = c.copy()
    c_over.data *= np.repeat(inv_du, np.diff(c.indptr))
    shared = (c.T @ c_over).toarray()  # (T, T): periods linked through common units
    _check_connected(shared, dt > 0, rows.times, name)
    ybar = np.bincount(u, weights=s * y, minlength=n_units) * inv_du
    y_c = y - ybar[u]
    m_tt = np.diag(dt) - shared
    r_t = np.bincount(t, weights=s * y_c, minlength=n_t)
    p = 0 if x is None else x.shape[1]
    xbar = None
    if p:
        xbar = group_sums(u, x[un] * s[:, None], n_units) * inv_du[:, None]
        xs_c = (x[un] - xbar[u]) * s[:, None]
        m_tx = group_sums(t, xs_c, n_t)
        m = np.block([[m_tt, m_tx], [m_tx.T, xs_c.T @ (x[un] - xbar[u])]])
        r = np.concatenate([r_t, xs_c.T @ y_c])
    else:
        m, r = m_tt, r_t
    identified = dt > 0
    free = np.concatenate([identified, np.ones(p, dtype=bool)])
    free[np.flatnonzero(identified)[0]] = False  # reference period: lambda = 0
    keep = free.copy()
    keep[free] = independent_columns(m[np.ix_(free, free)])
    dropped = np.flatnonzero(free[n_t:] & ~keep[n_t:])
    if dropped.size and strict and rank_action != "silent":
        message = (f"{name}: {[names[j] for j in dropped]} collinear with the unit and period "
                   "effects (or earlier columns) among the untreated observations")
        if rank_action == "error":
            raise RankDeficientError(message)
        warn_user(message + ": dropped")
    factor = linalg.cho_factor(m[np.ix_(keep, keep)], check_finite=False)
    coef = np.zeros(n_t + p)
    coef[keep] = linalg.cho_solve(factor, r[keep], check_finite=False)
    lam = np.where(identified, coef[:n_t], np.nan)
    gamma = coef[n_t:]
    lbar = np.asarray(c_over @ np.nan_to_num(lam)).ravel()
    ybar[du <= 0] = np.nan
    resid = y_c - (lam[t] - lbar[u])
    if p:
        resid -= (x[un] - xbar[u]) @ gamma

    return UntreatedFit(lam=lam, gamma=gamma, kept=keep[n_t:], ybar=ybar, lbar=lbar, xbar=xbar,
                        rows=un, s_eps=s * resid, solve=_ReducedSolve(factor, keep, n_t),
                        c_over=c_over)


@dataclass(frozen=True, eq=False)
class _ReducedSolve:
    """``(b_time, b_cov)`` solving the reduced normal equations for stacked right-hand sides
    (time rhs (T, K), covariate rhs (p, K) or None), with the fit's Cholesky factor."""

    factor: tuple
    keep: np.ndarray
    n_t: int

    def __call__(self, rhs_time, rhs_cov):
        rhs = rhs_time if rhs_cov is None else np.vstack([rhs_time, rhs_cov])
        out = np.zeros((self.keep.size, rhs.shape[1]))
        out[self.keep] = linalg.cho_solve(self.factor, rhs[self.keep], check_finite=False)
        return out[:self.n_t], out[self.n_t:]


def _check_connected(shared, identified, times, name="ImputationDiD"):
    """Unit and period effects are identified only within one connected set of the
    untreated (unit, period) graph; every unit joins the set of its periods, so the
    graph of periods linked by common units tells."""
    link = sp.csr_matrix(shared[np.ix_(identified, identified)] != 0)
    n_comp, label = csgraph.connected_components(link, directed=False)
    if n_comp > 1:
        periods = times[identified]
        groups = [[number_label(v) for v in periods[label == cc][:4]]
                  for cc in range(min(n_comp, 3))]
        raise ValueError(
            f"{name}: the untreated observations split into {n_comp} disconnected "
            f"sets of units and periods (periods {groups}); unit and period effects are not "
            "identified across them")


def lead_coefficients(problem, leads, unit_weights) -> np.ndarray:
    """The Eq. 9 coefficients of the given ``leads`` under other unit weights (replicates)."""
    return lead_regression(problem, unit_weights, None, leads=leads)[1]


def lead_regression(problem, unit_weights, n_leads, with_influence=False, leads=None):
    """BJS Eq. 9: untreated outcomes on unit and period effects, covariates and lead dummies.

    Returns ``(leads, coefficients, psi)``: the pre-treatment horizons tested
    (the ``n_leads`` closest to treatment, or with ``None`` all but the
    closest, unless ``leads`` is given), their coefficients (NaN if collinear,
    with a warning when ``with_influence``) and unit influence values
    (n_units x q, or None). The fit is the estimator's own exact two-way
    solver with the leads as extra columns.
    """
    rows = problem.rows
    g = problem.unit_cohort[rows.unit_code]
    h = np.where(g > 0, np.round(rows.times[rows.time_code] - g, HORIZON_DECIMALS), np.nan)
    untreated = problem.untreated_rows
    if leads is None:
        used = untreated[unit_weights[rows.unit_code[untreated]] > 0]
        leads = np.unique(h[used][np.isfinite(h[used])])[::-1]  # closest to treatment first
        if n_leads is None:
            leads = leads[1:]  # the closest horizon is the reference
        elif n_leads >= leads.size:
            raise ValueError(
                f"n_leads={n_leads} leaves no reference: there are {leads.size} pre-treatment "
                "horizons and leads for all of them are collinear with the unit effects; use "
                f"n_leads < {leads.size} or None (all but the closest horizon)")
        else:
            leads = leads[:n_leads]
        leads = np.sort(leads)
    if leads.size == 0:
        return leads, np.zeros(0), np.zeros((problem.n_units, 0))
    dummies = (h[:, None] == leads[None, :]).astype(float)
    x = dummies if rows.x is None else np.column_stack([rows.x, dummies])
    n_cov = x.shape[1] - leads.size
    names = list(problem.covariates) + [f"lead {number_label(v)}" for v in leads]
    fit = fit_untreated(rows, untreated, unit_weights[rows.unit_code], names,
                        strict=with_influence, x=x, name=problem.name)
    coef = np.where(fit.kept[n_cov:], fit.gamma[n_cov:], np.nan)
    psi = None
    if with_influence:
        pick = np.zeros((x.shape[1], leads.size))
        pick[n_cov + np.arange(leads.size), np.arange(leads.size)] = 1.0
        b_time, b_cov = fit.solve(np.zeros((rows.times.size, leads.size)), pick)
        psi = fit.influence(rows, x, b_time, b_cov)
    return leads, coef, psi
