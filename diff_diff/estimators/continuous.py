"""Difference-in-differences with a continuous dose (Callaway, Goodman-Bacon & Sant'Anna
2024; R ``contdid``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..results.continuous import ContinuousDiDResults
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_int
from .panel import _first_treat, balanced_wide, check_constant_within_unit, numeric
from .registry import register

CONTROL_GROUPS = ("never_treated", "not_yet_treated")
GRID_POINTS = 50


@register(aliases=("CDiD",), data="panel", inference="influence", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat",
                               dose="dose"),
          example_settings=lambda: dict(degree=1))
class ContinuousDiD(Estimator):
    """Dose-response DiD (Callaway, Goodman-Bacon & Sant'Anna 2024; R ``contdid``).

    For each treated cohort ``g`` and period ``t`` (pre-treatment cells included, base
    period ``t - 1`` before treatment and ``g - 1`` after), the outcome change of the
    cohort's units is regressed on a B-spline of their dose (degree ``degree``,
    ``num_knots`` interior knots at quantiles of all treated doses, boundary knots at the
    cohort's own dose range, an intercept); the comparison units' mean change is
    subtracted. Then ``ATT(d)`` is the fitted curve minus that mean, ``ACRT(d)`` its
    derivative, ``ATT^glob`` the cell's binary DiD and ``ACRT^glob`` the derivative
    averaged over the cohort's doses. Post-treatment cells are combined with cohort-share
    weights split equally over each cohort's post periods (over the cells with a fitted
    curve for ACRT and the curves), and by event time with cohort shares
    (``event_study_effects`` of ``ATT(g, t)``, ``event_study_slopes`` of ``ACRT(g, t)``).

    Standard errors come from influence functions that include the estimation of the
    spline coefficients, of the average of the derivative over the doses and of the
    cohort weights, through the engine: clusters, survey designs (weighted regressions
    and means), replicate refits, the PSU bootstrap (with ``cband``, uniform bands over
    the dose grid).

    Parameters
    ----------
    degree : int
        Spline degree (3: cubic).
    num_knots : int
        Interior knots (0: a global polynomial of degree ``degree``).
    dvals : array-like, optional
        Doses at which ``ATT(d)`` and ``ACRT(d)`` are reported (default 50 points over
        the treated doses' range).
    control_group : {"never_treated", "not_yet_treated"}
    alpha, cluster, n_bootstrap, bootstrap_weights, seed, cband
        The shared inference settings.

    Examples
    --------
    >>> import diff_diff as dd
    >>> from diff_diff.datasets import example_panel
    >>> res = dd.ContinuousDiD(degree=1).fit(example_panel(), outcome="y", unit="unit",
    ...                                      time="time", first_treat="first_treat",
    ...                                      dose="dose")
    >>> round(res.att, 3), round(res.acrt, 3)
    (1.054, 2.194)
    """

    _allowed = {**INFERENCE_ALLOWED, "control_group": CONTROL_GROUPS}
    _checks = {**INFERENCE_CHECKS,
               "degree": (lambda v: is_int(v, 1), "an integer >= 1"),
               "num_knots": (lambda v: is_int(v, 0), "an integer >= 0")}
    _results_class = ContinuousDiDResults

    def __init__(self, degree=3, num_knots=0, dvals=None, control_group="never_treated",
                 alpha=0.05, cluster=None, n_bootstrap=0, bootstrap_weights="rademacher",
                 seed=None, cband=True):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            dose: str, survey_design=None, aggregate=None) -> ContinuousDiDResults:
        """Estimate the dose-response curves, their averages and the event studies.

        Parameters
        ----------
        data : DataFrame
            Balanced panel; not modified.
        outcome, unit, time, first_treat, dose : str
            Columns; ``first_treat`` 0 (or inf) for never treated, else one of the
            periods; ``dose`` each treated unit's dose (its value in the first treated
            period is used; controls' values are not used but must be numbers).
        survey_design : SurveyDesign, optional
        aggregate : {None, "dose", "event_study", "eventstudy"}
            Accepted for 3.x calls; everything is always computed (the event studies are
            ``event_study_effects`` and ``event_study_slopes``).
        """
        if aggregate not in (None, "dose", "event_study", "eventstudy"):
            raise ValueError("aggregate must be None, 'dose' or 'event_study', got "
                             f"{aggregate!r}")
        return self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                   first_treat=first_treat, dose=dose))

    # ------------------------------------------------------------------ template steps
    def _sample(self, data, columns) -> Sample:
        c = columns
        y = numeric(data, c["outcome"], "outcome")
        d = numeric(data, c["dose"], "dose")
        g = _first_treat(data, c["first_treat"])
        codes, units, periods, wide, first = balanced_wide(
            data, c["unit"], c["time"], {"y": y, "d": d}, "ContinuousDiD")
        check_constant_within_unit(g, codes, units, c["first_treat"])
        n = len(units)
        Y = wide["y"]
        G = g[first]
        G = np.where((G == 0) | ~np.isfinite(G) | (G > periods[-1]), 0.0, G)
        off = (G > 0) & ~np.isin(G, periods)
        if off.any():
            raise ValueError(f"ContinuousDiD: {c['first_treat']!r} values "
                             f"{sorted(set(G[off].tolist()))[:5]} are not periods of "
                             f"{c['time']!r}")
        gpos = np.where(G > 0, np.searchsorted(periods, G), 0)  # cohort as a period position
        early = (G > 0) & (gpos == 0)
        keep = ~early
        if early.any():
            warn_user(f"ContinuousDiD: dropped {int(early.sum())} unit(s) treated in the first "
                      "period (no pre-treatment period)")
        dose_at_start = np.where(G > 0, wide["d"][np.arange(n), gpos], 0.0)
        if ((G > 0) & keep & ~(dose_at_start > 0)).any():
            raise ValueError(f"ContinuousDiD: every treated unit needs a positive dose in its "
                             f"first treated period (column {c['dose']!r})")
        if not ((G > 0) & keep).any():
            raise ValueError("ContinuousDiD: no unit is treated")
        if self.control_group == "never_treated" and not ((G == 0) & keep).any():
            raise ValueError("ContinuousDiD: there are no never-treated units; use "
                             "control_group='not_yet_treated'")
        problem = ContinuousProblem(Y[keep], gpos[keep], dose_at_start[keep], periods,
                                    self.degree, self.num_knots, self.control_group,
                                    self.dvals)
        return Sample(problem, first[keep], c["unit"], columns)

    def _estimate(self, sample, design):
        problem = sample.arrays
        theta, psi, info = problem.estimate(design.weights)
        estimate = Estimate(theta, psi, reestimate=problem.theta,
                            name="ContinuousDiD")
        return SimpleNamespace(estimate=estimate, problem=problem, info=info)


class ContinuousProblem:
    """One fit's data: outcomes ``Y`` (units x periods), cohorts as period positions
    (0: never treated), each unit's dose."""

    def __init__(self, Y, gpos, dose, periods, degree, num_knots, control_group, dvals):
        self.Y, self.gpos, self.dose, self.periods = Y, gpos, dose, periods
        self.degree, self.num_knots, self.control_group = degree, num_knots, control_group
        treated = gpos > 0
        doses = dose[treated]
        if num_knots:
            probs = np.linspace(0, 1, num_knots + 2)[1:-1]
            self.knots = np.quantile(doses, probs)
        else:
            self.knots = np.zeros(0)
        self.grid = (np.linspace(doses.min(), doses.max(), GRID_POINTS) if dvals is None
                     else np.asarray(dvals, float).ravel())
        T = Y.shape[1]
        cells = []
        for g in np.unique(gpos[treated]):
            for t in range(1, T):
                base = t - 1 if t < g else g - 1
                cells.append((int(g), t, base))
        self.cells = cells
        self.event_times = None  # set by the first (full-sample) estimate

    def _event(self, row):
        """Event time in the time column's units (as CallawaySantAnna labels it)."""
        return float(self.periods[row["t"]] - self.periods[row["g"]])

    def _warn(self, cells, dropped):
        if dropped:
            warn_user(f"ContinuousDiD: {len(dropped)} post-treatment cell(s) have too few "
                      "distinct doses for the spline (cohort(s) "
                      f"{sorted({_plain(self.periods[g]) for g, _ in dropped})}); ACRT and the "
                      "dose-response curves average the other cells (ATT_glob uses all)")
        # material extrapolation only: beyond a cohort's doses by over 10% of the grid's
        # span (sampling alone leaves each cohort's range a little short of the grid's)
        slack = 0.1 * (self.grid.max() - self.grid.min())
        outside = sorted({_plain(self.periods[r["g"]]) for r in cells if r["ok"]
                          and r["t"] >= r["g"] and (self.grid.min() < r["lo"] - slack
                                                    or self.grid.max() > r["hi"] + slack)})
        if outside:
            warn_user("ContinuousDiD: the dose grid reaches well beyond the doses of "
                      f"cohort(s) {outside}; their curves are extrapolated there (a dose grid "
                      "within every cohort's dose range avoids it, see dvals=)")

    # ------------------------------------------------------------------ pieces
    def _basis(self, x, lo, hi, derivative=False):
        from .._lazy import interpolate

        p = self.degree
        inner = self.knots[(self.knots > lo) & (self.knots < hi)]
        t = np.r_[[lo] * (p + 1), inner, [hi] * (p + 1)]
        m = t.size - p - 1
        if not derivative:
            B = interpolate.BSpline.design_matrix(np.asarray(x, float), t, p,
                                                  extrapolate=True).toarray()
            return np.column_stack([np.ones(len(x)), B[:, 1:]])
        cols = []
        for j in range(1, m):
            coef = np.zeros(m)
            coef[j] = 1.0
            cols.append(interpolate.BSpline(t, coef, p, extrapolate=True).derivative(1)(x))
        return np.column_stack(cols)

    def theta(self, weights):
        """The estimates alone (replicate refits)."""
        return self.estimate(weights)[0]

    def estimate(self, weights):
        """``theta`` = [ATT^glob, ACRT^glob, ATT(d) on the grid, ACRT(d) on the grid, the
        event study of ATT(g, t), that of ACRT(g, t)], psi (units x theta, sum scale),
        info."""
        Y, gpos, dose = self.Y, self.gpos, self.dose
        first_call = self.event_times is None
        n = Y.shape[0]
        w = np.asarray(weights, float)
        W = w.sum()
        k_grid = self.grid.size
        cell_rows = []
        for g, t, base in self.cells:
            dy = Y[:, t] - Y[:, base]
            treated = gpos == g
            if self.control_group == "never_treated":
                control = gpos == 0
            else:
                # not yet treated in either period, the cohort itself excluded (R did)
                control = (gpos == 0) | ((gpos > max(t, base)) & (gpos != g))
            wt, wc = w * treated, w * control
            if wt.sum() <= 0 or wc.sum() <= 0:
                continue
            m_c = wc @ dy / wc.sum()
            psi_mc = wc * (dy - m_c) / wc.sum()
            m_t = wt @ dy / wt.sum()
            att = m_t - m_c
            psi_att = wt * (dy - m_t) / wt.sum() - psi_mc
            lo, hi = dose[treated].min(), dose[treated].max()
            X = self._basis(dose[treated], lo, hi)
            positive = wt[treated] > 0  # replicate refits may leave units out
            fitted_ok = (np.unique(dose[treated][positive]).size >= X.shape[1]
                         and np.linalg.matrix_rank(X[positive]) == X.shape[1])
            row = {"g": g, "t": t, "att": att, "psi_att": psi_att, "ok": fitted_ok, "lo": lo,
                   "hi": hi}
            if fitted_ok:
                xw = X * wt[treated][:, None]
                bread = np.linalg.inv(X.T @ xw)
                beta = bread @ (xw.T @ dy[treated])
                resid = dy[treated] - X @ beta
                psi_beta = np.zeros((n, X.shape[1]))
                psi_beta[treated] = (X * (wt[treated] * resid)[:, None]) @ bread
                D = self._basis(dose[treated], lo, hi, derivative=True)
                slopes = D @ beta[1:]
                Wt = wt.sum()
                acrt = wt[treated] @ slopes / Wt
                a = np.r_[0.0, wt[treated] @ D / Wt]
                psi_acrt = psi_beta @ a
                psi_acrt[treated] += wt[treated] * (slopes - acrt) / Wt
                Bg = self._basis(self.grid, lo, hi)
                Dg = np.column_stack([np.zeros(k_grid), self._basis(self.grid, lo, hi, True)])
                row.update(acrt=acrt, psi_acrt=psi_acrt, att_d=Bg @ beta - m_c,
                           psi_att_d=psi_beta @ Bg.T - psi_mc[:, None],
                           acrt_d=Dg @ beta, psi_acrt_d=psi_beta @ Dg.T)
            cell_rows.append(row)
        dropped = [(r["g"], r["t"]) for r in cell_rows if not r["ok"] and r["t"] >= r["g"]]
        # cohort shares (and their influence): p_g = W_g / W over every unit
        cohorts = sorted({r["g"] for r in cell_rows})
        p = {g: (w * (gpos == g)).sum() / W for g in cohorts}
        psi_p = {g: w * ((gpos == g) - p[g]) / W for g in cohorts}
        post = [r for r in cell_rows if r["t"] >= r["g"]]

        def combine(rows, key, value_shape):
            """Cohort shares among the cohorts of ``rows``, split equally over each
            cohort's cells in ``rows`` (weights summing to one)."""
            members = sorted({r["g"] for r in rows})
            S = sum(p[g] for g in members)
            psi_S = sum(psi_p[g] for g in members)
            K = {g: sum(1 for r in rows if r["g"] == g) for g in members}
            theta = np.zeros(value_shape)
            psi = np.zeros((n,) + value_shape)
            for r in rows:
                g = r["g"]
                share = p[g] / S / K[g]
                d_share = psi_p[g] / S / K[g] - p[g] / S ** 2 / K[g] * psi_S
                theta = theta + share * r[key]
                psi = psi + share * r["psi_" + key] + np.multiply.outer(d_share, r[key])
            return theta, psi

        t_att, p_att = combine(post, "att", ())
        fitted_post = [r for r in post if r["ok"]]
        if fitted_post:
            t_acrt, p_acrt = combine(fitted_post, "acrt", ())
            t_attd, p_attd = combine(fitted_post, "att_d", (k_grid,))
            t_acrtd, p_acrtd = combine(fitted_post, "acrt_d", (k_grid,))
        else:
            t_acrt, p_acrt = np.nan, np.zeros(n)
            t_attd = t_acrtd = np.full(k_grid, np.nan)
            p_attd = p_acrtd = np.zeros((n, k_grid))
        thetas = [np.atleast_1d(t_att), np.atleast_1d(t_acrt), t_attd, t_acrtd]
        psis = [p_att[:, None], p_acrt[:, None], p_attd, p_acrtd]
        # event studies of ATT(g, t) (every cell) and of ACRT(g, t) (cells with a curve):
        # cohort-share weights among the cells at each event time
        events = {}
        for key in ("att", "acrt"):
            rows = [r for r in cell_rows if key in r]
            events[key] = sorted({self._event(r) for r in rows})
            if self.event_times is not None:  # refits keep the full sample's layout
                events[key] = self.event_times[key]
            for e in events[key]:
                members = [r for r in rows if self._event(r) == e]
                if not members:
                    thetas.append(np.array([np.nan]))
                    psis.append(np.zeros((n, 1)))
                    continue
                mass = sum(p[r["g"]] for r in members)
                d_mass = sum(psi_p[r["g"]] for r in members)
                thetas.append(np.atleast_1d(sum(p[r["g"]] / mass * r[key] for r in members)))
                psis.append(sum(p[r["g"]] / mass * r["psi_" + key]
                                + (psi_p[r["g"]] / mass - p[r["g"]] / mass ** 2 * d_mass)
                                * r[key] for r in members)[:, None])
        if self.event_times is None:
            self.event_times = events
        theta = np.concatenate(thetas)
        psi = np.column_stack(psis)
        S = sum(p[g] for g in {r["g"] for r in post})
        K = {g: sum(1 for r in post if r["g"] == g) for g in cohorts}
        info = {"cells": cell_rows, "dropped": dropped, "events": events,
                "weights": {(r["g"], r["t"]): p[r["g"]] / S / K[r["g"]] for r in post}}
        if first_call:  # the full-sample fit (refits stay quiet)
            self._warn(cell_rows, dropped)
        return theta, psi, info


def _plain(value):
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value
