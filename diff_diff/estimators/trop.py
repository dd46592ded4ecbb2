"""Triply robust panel estimator (TROP; Athey, Imbens, Qu & Viviano 2025)."""

from __future__ import annotations

import math
import numbers
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import label_codes
from .._warnings import warn_user
from ..results.trop import TROPResults
from ..survey.design import SurveyDesign
from ..survey.units import resolve_unit_design
from ._trop import fit_lowrank, fit_lowrank_batch
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, is_int, is_prob, is_seed
from .panel import numeric, require_columns
from .registry import check_supported, register
from .synthetic import _rao_wu

DEFAULT_TIME_GRID = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0)
DEFAULT_UNIT_GRID = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0)
DEFAULT_NN_GRID = (0.01, 0.1, 1.0, math.inf)
CV_TOL = 1e-7
BATCH_ELEMENTS = 1 << 20  # cells of a stack of fits solved together (memory bound)
CV_STACK = 25  # cross-validation fits per stack (a tuple's fits may stop early)


def _grid(value, name, allow_inf):
    if value is None:
        return None
    values = np.atleast_1d(np.asarray(value, dtype=float))
    ok = values.size > 0 and not np.isnan(values).any() and (values >= 0).all()
    ok = ok and (allow_inf or np.isfinite(values).all())
    if not ok:
        raise ValueError(f"TROP: {name} must be a non-empty list of numbers >= 0"
                         + ("" if allow_inf else " (finite)") + f", got {value!r}")
    if name == "lambda_nn_grid" and (values == 0).any():
        raise ValueError(
            "TROP: lambda_nn_grid must not contain 0: without a penalty the low-rank term "
            "is unrestricted on the treated cells (they have no weight), so the estimate "
            "is not defined; use a small positive value, or inf for no low-rank term")
    return tuple(float(v) for v in values)


@register(aliases=(), data="panel", inference="influence", weight_types=("pweight",),
          replicate=True, bootstrap=None, event_study=False,
          example=lambda: dict(outcome="y", treatment="d", unit="unit", time="time"),
          example_settings=lambda: dict(method="global", lambda_time_grid=[0.2],
                                        lambda_unit_grid=[0.2], lambda_nn_grid=[1.0],
                                        n_bootstrap=6, seed=1))
class TROP(Estimator):
    """Triply robust panel estimator (Athey, Imbens, Qu & Viviano 2025).

    The untreated outcomes are modelled as unit effects plus period effects plus a
    low-rank matrix ``L``, fitted on the untreated cells by weighted least squares with
    a nuclear-norm penalty ``lambda_nn ||L||_*``; cells are weighted by unit weights
    ``exp(-lambda_unit d_j)`` (``d``: the root mean squared outcome distance to the
    treated) times time weights ``exp(-lambda_time |s - t|)``. The effect of a treated
    cell is its outcome minus the fitted untreated outcome; the ATT is their average
    (weighted by survey weights with a design).

    * ``method="local"`` (the paper's estimator): one fit per treated cell ``(i, t)``,
      with ``d_j`` the RMS difference between unit ``j`` and unit ``i`` over the other
      periods in which both are untreated, and time distance ``|s - t|``.
    * ``method="global"`` (as the authors' ``trop`` package computes it for a block
      design): one fit, ``d_j`` the RMS distance to the treated units' average
      trajectory over the periods before the first treatment, and time distance to the
      centre of the treated block (``T - P/2`` in 0-based period index, ``P`` periods
      from the first treatment on).

    The nuclear-norm problem is convex and solved to convergence (accelerated proximal
    gradient, ``tol`` on the relative change of ``L``; optimality verified by its KKT
    conditions in the tests). ``lambda_nn = inf`` drops ``L`` (a weighted two-way fixed
    effects fit). The tuning parameters are chosen by leave-one-out cross-validation on
    control cells when a grid has more than one value: each of up to
    ``max_loocv_samples`` cells (never-treated units in treated periods, a seeded
    sample) is treated as if treated, predicted, and the squared errors averaged; the
    grids are searched one parameter at a time, cycling until no value changes.

    Standard errors: a unit block bootstrap (``n_bootstrap`` draws resampling treated
    and control units separately, tuning fixed; with a survey design or ``cluster=``
    the Rao-Wu rescaled bootstrap of PSUs within strata, crossed with treatment when no
    PSU mixes treated and control units), or refits per replicate with replicate
    weights. With one treated unit (or PSU) the bootstrap SE is undefined: NaN with a
    warning. Units with zero survey weight drop out.

    Parameters
    ----------
    method : {"local", "global"}
    lambda_time_grid, lambda_unit_grid : list of float, optional
        Default ``[0, 0.1, 0.5, 1, 2, 5]``.
    lambda_nn_grid : list of float, optional
        Default ``[0.01, 0.1, 1, inf]`` (positive; ``inf``: no low-rank term).
    max_iter : int
        Iterations of the nuclear-norm solver per fit (a warning if reached).
    tol : float
        Relative change of ``L`` at which the solver stops.
    alpha : float
    n_bootstrap : int
        Bootstrap draws (>= 2).
    seed : int, optional
    non_absorbing : bool
        Accept treatment switching off (``method="local"`` only; the effect of a cell is
        then its contemporaneous effect, assuming no carry-over).
    max_loocv_samples : int
        Control cells used by the cross-validation.
    cluster : str, optional
        A column constant within unit: the bootstrap resamples whole clusters (as PSUs).
    bootstrap_weights : None
        Accepted for the shared vocabulary; any other value has no effect (a warning):
        the bootstrap resamples units.

    Examples
    --------
    >>> import warnings
    >>> import diff_diff as dd
    >>> with warnings.catch_warnings(record=True) as caught:  # one treated unit: no SE
    ...     res = dd.TROP(method="global", lambda_time_grid=[0.5], lambda_unit_grid=[0.1],
    ...                   lambda_nn_grid=[1.0], n_bootstrap=10, seed=0).fit(
    ...         dd.load_prop99(), outcome="packspercapita", treatment="treated",
    ...         unit="state", time="year")
    >>> round(res.att, 3), res.se
    (-21.955, nan)
    """

    _allowed = {"method": ("local", "global"), "non_absorbing": (True, False),
                "bootstrap_weights": INFERENCE_ALLOWED["bootstrap_weights"]}
    _checks = {"alpha": (is_prob, "in (0, 1)"),
               "cluster": INFERENCE_CHECKS["cluster"],
               "n_bootstrap": (lambda v: is_int(v, 2), "an integer >= 2"),
               "seed": (is_seed, "None, an integer or a numpy Generator"),
               "max_iter": (lambda v: is_int(v, 1), "a positive integer"),
               "max_loocv_samples": (lambda v: is_int(v, 1), "a positive integer"),
               "tol": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)
                       and 0 < v < 1, "in (0, 1)")}

    def __init__(self, method="local", lambda_time_grid=None, lambda_unit_grid=None,
                 lambda_nn_grid=None, max_iter=10000, tol=1e-10, alpha=0.05,
                 n_bootstrap=200, seed=None, non_absorbing=False, max_loocv_samples=100,
                 cluster=None, bootstrap_weights=None):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, treatment: str, unit: str, time: str,
            survey_design: SurveyDesign | None = None) -> TROPResults:
        """Estimate the ATT.

        Parameters
        ----------
        data : DataFrame
            Balanced panel, one row per unit and period; not modified.
        outcome, treatment, unit, time : str
            ``treatment`` is the 0/1 treatment state of the unit in the period
            (absorbing unless ``non_absorbing``).
        survey_design : SurveyDesign, optional
            ``pweight`` design with columns constant within unit.
        """
        self._validate()
        if self.bootstrap_weights is not None:
            warn_user("TROP: bootstrap_weights has no effect (its bootstrap resamples units or "
                      "PSUs; there are no multiplier weights)")
        grids = (_grid(self.lambda_time_grid, "lambda_time_grid", False) or DEFAULT_TIME_GRID,
                 _grid(self.lambda_unit_grid, "lambda_unit_grid", False) or DEFAULT_UNIT_GRID,
                 _grid(self.lambda_nn_grid, "lambda_nn_grid", True) or DEFAULT_NN_GRID)
        if self.non_absorbing and self.method == "global":
            raise ValueError("TROP: non_absorbing=True needs method='local' (the global fit's "
                             "weights assume a block of treated periods)")
        check_supported(self, survey_design)
        require_columns(data, outcome=outcome, treatment=treatment, unit=unit, time=time,
                        cluster=self.cluster)
        Y, W, units, periods, unit_rows = self._matrix(data, outcome, treatment, unit, time)
        if self.non_absorbing:
            warn_user("TROP: non_absorbing=True assumes no carry-over: a cell's effect is "
                      "that of the current treatment state (the triple-robustness result "
                      "is shown for block assignment)")
        design, metadata = resolve_unit_design(data, survey_design, unit, unit_rows,
                                               self.cluster, "TROP")
        w_all = design.weights if survey_design is not None else np.ones(Y.shape[0])
        full = TROPProblem(Y, W, self.method, self.tol, self.max_iter)
        kept = np.flatnonzero(w_all > 0)  # units without weight (a subpopulation) drop out
        problem, w = full.restrict(kept), w_all[kept]
        if self.method == "global" and np.unique(W[W.any(axis=1)].argmax(axis=1)).size > 1:
            warn_user("TROP: method='global' weights periods by their distance to the centre "
                      "of one treated block, but the treated units start treatment in "
                      "different periods; method='local' fits each treated cell on its own")
        rng = np.random.default_rng(self.seed)
        lambdas, score, searched = problem.tune(grids, w, self.max_loocv_samples, rng)
        fit = problem.fit(lambdas, w)
        grouped = survey_design is not None or self.cluster is not None
        replicate = design.replicate is not None
        if _treated_clusters(problem.W, design.psu[kept] if grouped and not replicate
                             else None) < 2:
            what = "unit" if not grouped or replicate else "PSU or cluster"
            warn_user(f"TROP: the standard error is undefined with one treated {what} (every "
                      "bootstrap draw keeps it, and a replicate without it has no estimate, "
                      "so only the controls' noise would show); NaN, as R synthdid")
            se, df, draws = math.nan, None, None
        elif replicate:
            se, df, draws = self._replicate(full, lambdas, design)
        else:
            if survey_design is not None and survey_design.fpc is not None:
                warn_user("TROP: the Rao-Wu bootstrap does not apply the finite population "
                          "correction (standard errors as without fpc)")
            sub_design = None if not grouped else SimpleNamespace(
                psu=design.psu[kept], psu_stratum=design.psu_stratum)
            draws = self._bootstrap(problem, lambdas, w, sub_design, rng)
            se = float(np.std(draws, ddof=1))
            df = float(design.df) if survey_design is not None else None
        return TROPResults.build(self, fit, lambdas, score, searched, se, df, draws,
                                 units[kept], periods, problem.W, metadata,
                                 problem.unconverged)

    # ------------------------------------------------------------------ data
    def _matrix(self, data, outcome, treatment, unit, time):
        y = numeric(data, outcome, "outcome")
        d = numeric(data, treatment, "treatment")
        if not np.isin(d, (0.0, 1.0)).all():
            raise ValueError(f"TROP: treatment column {treatment!r} must be 0/1 (the unit's "
                             "treatment state in the period)")
        unit_codes, units = label_codes(data, unit, "unit")
        t_codes, periods = label_codes(data, time, "time")
        n, n_t = len(units), len(periods)
        cell = unit_codes * n_t + t_codes
        if np.bincount(cell, minlength=n * n_t).max() > 1:
            raise ValueError("TROP: more than one row for some unit and period")
        if cell.size != n * n_t:
            raise ValueError("TROP: the panel must be balanced (every unit in every period)")
        order = np.argsort(periods)
        Y = np.empty((n, n_t))
        W = np.empty((n, n_t))
        Y[unit_codes, t_codes] = y
        W[unit_codes, t_codes] = d
        Y, W, periods = Y[:, order], W[:, order], np.asarray(periods)[order]
        if not W.any():
            raise ValueError(f"TROP: no cell is treated ({treatment!r} is 0 throughout)")
        if not self.non_absorbing and (np.diff(W, axis=1) < 0).any():
            bad = np.asarray(units)[np.flatnonzero((np.diff(W, axis=1) < 0).any(axis=1))[:3]]
            raise ValueError(
                f"TROP: treatment switches off for unit(s) {list(bad)}; the treatment column "
                "must be an absorbing state (0 until treated, then 1), or pass "
                "non_absorbing=True (method='local')")
        never = ~W.any(axis=1)
        if not never.any():
            raise ValueError("TROP: every unit is treated at some point; the fit needs "
                             "never-treated units")
        if (W[:, 0] == 1).any():
            bad = np.asarray(units)[np.flatnonzero(W[:, 0] == 1)[:3]]
            raise ValueError(f"TROP: unit(s) {list(bad)} are treated in the first period, so "
                             "their unit effect has no untreated period to be estimated from")
        first_row = np.zeros(n, dtype=np.int64)
        first_row[unit_codes[::-1]] = np.arange(len(unit_codes))[::-1]
        return Y, W, np.asarray(units), periods, first_row

    # ------------------------------------------------------------------ variance
    def _bootstrap(self, problem, lambdas, w, design, rng):
        n = problem.Y.shape[0]
        treated = problem.W.any(axis=1)
        draws, specs = [], []
        failures = 0
        # resampled units (as many rows in every draw): the draws' fits solved together
        stacked = design is None
        while len(draws) < self.n_bootstrap:
            if design is None:
                rows = np.concatenate([rng.choice(np.flatnonzero(g), size=int(g.sum()))
                                       for g in (treated, ~treated)])
                mult = np.bincount(rows, minlength=n).astype(float)
            else:
                mult = _rao_wu(_by_treatment(design, treated), rng)
            keep = mult > 0
            if not (keep & treated).any() or not (keep & ~treated).any():
                continue
            if design is None:  # resampled units: repeated rows
                rows, weights = np.repeat(np.arange(n), mult.astype(int)), w
            else:  # Rao-Wu: rescaled weights, left-out PSUs dropped
                rows, weights = np.flatnonzero(keep), w * mult
            try:
                if stacked:  # checked now (the same draws fail), fitted below as a stack
                    problem.draw(rows, lambdas, weights)
                    specs.append((rows, weights))
                else:
                    draws.append(problem.subset(rows, lambdas, weights))
            except ValueError:
                failures += 1
                if failures > self.n_bootstrap:
                    raise ValueError("TROP: most bootstrap draws cannot be fitted (a resample "
                                     "leaves a period with no untreated unit)") from None
            if stacked and len(specs) == self.n_bootstrap:
                draws = list(problem.draws(specs, lambdas))
        if failures:
            warn_user(f"TROP: {failures} bootstrap draw(s) could not be fitted and were "
                      "redrawn")
        return np.asarray(draws)

    def _replicate(self, problem, lambdas, design):
        from ..inference.estimate import Estimate, Inference

        def refit(weights):
            weights = np.asarray(weights, float)
            keep = np.flatnonzero(weights > 0)
            try:
                return np.array([problem.subset(keep, lambdas, weights)])
            except ValueError:
                return np.array([np.nan])

        estimate = Estimate(refit(design.weights), None, reestimate=refit, name="TROP")
        var = Inference(estimate, design, alpha=self.alpha).variance()
        return float(var.se[0]), var.df, None


def _treated_clusters(W, psu) -> int:
    """How many units (or PSUs / clusters) hold treated units."""
    treated = W.any(axis=1)
    return int(treated.sum()) if psu is None else int(np.unique(psu[treated]).size)


def _by_treatment(design, treated):
    """Rao-Wu strata crossed with treatment when every PSU is all treated or all control
    (treated and control PSUs are then resampled separately, as units are without a
    design); PSUs that mix the two stay whole (draws without treated or control units
    are redrawn)."""
    psu, n_psu = design.psu, design.psu_stratum.size
    mixed = np.bincount(psu, weights=treated, minlength=n_psu)
    size = np.bincount(psu, minlength=n_psu)
    if ((mixed > 0) & (mixed < size)).any():
        return design
    return SimpleNamespace(psu=psu, psu_stratum=design.psu_stratum * 2 + (mixed > 0))


def _unit_weights(dist, lam, controls):
    """``exp(-lam * dist)``; an error when every control unit's weight underflows to 0."""
    with np.errstate(invalid="ignore"):
        weights = np.where(np.isfinite(dist), np.exp(-lam * np.where(np.isfinite(dist), dist,
                                                                      0.0)), 0.0)
    if controls.any() and not (weights[controls] > 0).any():
        finite = dist[controls & np.isfinite(dist)]
        span = (f"{finite.min():.3g} to {finite.max():.3g}" if finite.size
                else "undefined (no common untreated period)")
        raise ValueError(f"lambda_unit={lam:g} is too large for the outcome's scale: the "
                         f"control units' distances are {span}, so every weight "
                         "exp(-lambda_unit * distance) is 0; use a smaller lambda_unit (or "
                         "rescale the outcome)")
    return weights


class TROPProblem:
    """The panel and the fits: ``fit(lambdas, w)``, cross-validation, resampled refits."""

    def __init__(self, Y, W, method, tol, max_iter):
        self.Y, self.W, self.method, self.tol, self.max_iter = Y, W, method, tol, max_iter
        self.unconverged = 0

    def restrict(self, rows):
        """The problem on the units ``rows``."""
        return TROPProblem(self.Y[rows], self.W[rows], self.method, self.tol, self.max_iter)

    # ----------------------------------------------------------------- weights
    def global_weights(self, Y, W, w, lam_time, lam_unit):
        """The one weight matrix of the global method."""
        n_t = Y.shape[1]
        first = int(np.flatnonzero(W.any(axis=0))[0])
        treated = W.any(axis=1)
        average = np.average(Y[treated], axis=0, weights=w[treated])
        dist = np.sqrt(((Y[:, :first] - average[:first]) ** 2).mean(axis=1))
        centre = n_t - (n_t - first) / 2.0
        time_w = np.exp(-lam_time * np.abs(np.arange(n_t) - centre))
        unit_w = _unit_weights(dist, lam_unit, ~treated)
        return (1.0 - W) * (w * unit_w)[:, None] * time_w[None, :]

    def local_weights(self, Y, W, w, i, t, lam_time, lam_unit):
        """The weight matrix of treated cell ``(i, t)``."""
        n_t = Y.shape[1]
        both = (1.0 - W) * (1.0 - W[i])[None, :]
        both[:, t] = 0.0
        count = both.sum(axis=1)
        sq = (((Y - Y[i]) ** 2) * both).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            dist = np.where(count > 0, np.sqrt(sq / np.maximum(count, 1)), np.inf)
        controls = ~W.any(axis=1)
        controls[i] = False
        unit_w = _unit_weights(dist, lam_unit, controls)
        unit_w[i] = 1.0
        time_w = np.exp(-lam_time * np.abs(np.arange(n_t) - t))
        return (1.0 - W) * (w * unit_w)[:, None] * time_w[None, :]

    # ----------------------------------------------------------------- fitting
    def _solve(self, Y, V, lam_nn, start=None, tol=None):
        a, b, L, _, converged = fit_lowrank(Y, V, lam_nn, tol or self.tol, self.max_iter,
                                            start)
        if not converged:
            self.unconverged += 1
        return a, b, L

    def effects(self, Y, W, w, lambdas):
        """Per treated cell: ``(rows, cols, tau, fitted)`` and the last fit's parts."""
        if not W.any() or W.any(axis=1).all():
            raise ValueError("the units left have no treated cell or no never-treated unit")
        lam_time, lam_unit, lam_nn = lambdas
        rows, cols = np.nonzero(W)
        w = w / w.mean()
        if self.method == "global":
            V = self.global_weights(Y, W, w, lam_time, lam_unit)
            a, b, L = self._solve(Y, V, lam_nn)
            fitted = a[:, None] + b[None, :] + L
            return rows, cols, (Y - fitted)[rows, cols], (a, b, L)
        tau = np.empty(rows.size)
        start, parts = None, None
        for k, (i, t) in enumerate(zip(rows, cols)):
            V = self.local_weights(Y, W, w, i, t, lam_time, lam_unit)
            a, b, L = self._solve(Y, V, lam_nn, start)
            start = None if math.isinf(lam_nn) else L
            tau[k] = Y[i, t] - a[i] - b[t] - L[i, t]
            parts = (a, b, L)
        return rows, cols, tau, parts

    def fit(self, lambdas, w):
        try:
            rows, cols, tau, parts = self.effects(self.Y, self.W, w, lambdas)
        except ValueError as err:
            raise ValueError(f"TROP: {err}") from None
        weights = w[rows]
        att = float(weights @ tau / weights.sum())
        from types import SimpleNamespace

        return SimpleNamespace(att=att, rows=rows, cols=cols, tau=tau, parts=parts,
                               lambdas=lambdas)

    def subset(self, rows, lambdas, w):
        """The ATT on the units ``rows`` (repeats allowed) with unit weights ``w``."""
        Y, W, wr = self.Y[rows], self.W[rows], np.asarray(w, float)[rows]
        r, c, tau, _ = self.effects(Y, W, wr, lambdas)
        return float(wr[r] @ tau / wr[r].sum())

    def draw(self, rows, lambdas, w, check=True):
        """``(Y, W, w, V)`` of the fit on the units ``rows`` (repeats allowed) with unit
        weights ``w``: ``V`` the weight matrix (global) or the stack of the treated cells'
        (local, cells in ``np.nonzero`` order); ValueError where :meth:`subset` could not
        fit it. ``check=False``: no checks and no ``V`` (None)."""
        Y, W, wr = self.Y[rows], self.W[rows], np.asarray(w, float)[rows]
        if check and (not W.any() or W.any(axis=1).all()):
            raise ValueError("the units left have no treated cell or no never-treated unit")
        wr = wr / wr.mean()
        if not check:
            return Y, W, wr, None
        lam_time, lam_unit = lambdas[:2]
        if self.method == "global":
            V = self.global_weights(Y, W, wr, lam_time, lam_unit)[None]
        else:
            V = np.stack([self.local_weights(Y, W, wr, i, t, lam_time, lam_unit)
                          for i, t in zip(*np.nonzero(W))])
        if (V.sum(axis=2) <= 0).any() or (V.sum(axis=1) <= 0).any():
            raise ValueError("a unit or period has no untreated observation with positive "
                             "weight")
        return Y, W, wr, V[0] if self.method == "global" else V

    def draws(self, specs, lambdas):
        """:meth:`subset` for each ``(rows, w)`` of ``specs`` (every ``rows`` of one
        length), the draws' fits solved as stacks (:func:`fit_lowrank_batch`): the
        global fits together; the local ones cell by cell (the k-th treated cell of
        every draw together, each started from its draw's previous cell, as in
        :meth:`effects`)."""
        lam_time, lam_unit, lam_nn = lambdas
        out = np.empty(len(specs))
        chunk = max(1, BATCH_ELEMENTS // self.Y.size)
        for lo in range(0, len(specs), chunk):
            parts = [self.draw(rows, lambdas, w, check=False) for rows, w in specs[lo:lo + chunk]]
            Y, W, wr = (np.stack(x) for x in zip(*(p[:3] for p in parts)))
            if self.method == "global":
                V = np.stack([self.global_weights(Y[d], W[d], wr[d], lam_time, lam_unit)
                              for d in range(len(parts))])
                a, b, L, _, converged = fit_lowrank_batch(Y, V, lam_nn, self.tol,
                                                          self.max_iter)
                self.unconverged += int((~converged).sum())
                tau = (Y - a[:, :, None] - b[:, None, :] - L) * W
            else:
                tau = np.zeros(Y.shape)
                cells = [np.nonzero(W[d]) for d in range(len(parts))]
                start = None
                for k in range(max(c[0].size for c in cells)):
                    idx = [d for d in range(len(parts)) if cells[d][0].size > k]
                    i = np.array([cells[d][0][k] for d in idx])
                    t = np.array([cells[d][1][k] for d in idx])
                    V = np.stack([self.local_weights(Y[d], W[d], wr[d], i[m], t[m], lam_time,
                                                     lam_unit) for m, d in enumerate(idx)])
                    L0 = None if start is None else start[idx]
                    a, b, L, _, converged = fit_lowrank_batch(Y[idx], V, lam_nn, self.tol,
                                                              self.max_iter, L0)
                    self.unconverged += int((~converged).sum())
                    m = np.arange(len(idx))
                    tau[idx, i, t] = Y[idx, i, t] - a[m, i] - b[m, t] - L[m, i, t]
                    if not math.isinf(lam_nn):
                        start = np.zeros(Y.shape) if start is None else start
                        start[idx] = L
            weight = wr[:, :, None] * W
            out[lo:lo + len(parts)] = (weight * tau).sum(axis=(1, 2)) / weight.sum(axis=(1, 2))
        return out

    # ----------------------------------------------------------- cross-validation
    def tune(self, grids, w, max_samples, rng):
        """``(lambdas, score, searched)``: the grid values (a one-point grid is used as
        given) and their leave-one-out score (NaN when nothing was searched)."""
        if all(len(g) == 1 for g in grids):
            return tuple(g[0] for g in grids), math.nan, False
        never = np.flatnonzero(~self.W.any(axis=1))
        periods = np.flatnonzero(self.W.any(axis=0))
        cells = np.array([(j, t) for j in never for t in periods])
        if len(cells) > max_samples:
            cells = cells[np.sort(rng.choice(len(cells), size=max_samples, replace=False))]
        self.cv_cells = cells
        scores, starts = {}, {}

        def score(lambdas):
            # the current tuple holds the lowest score so far (each coordinate step keeps
            # it unless a value beats it): a tuple whose partial sum of squared errors
            # already exceeds that cannot be chosen, and its fits stop there (its entry
            # is then a lower bound, above every later current score)
            if lambdas not in scores:
                best = min(scores.values(), default=math.inf)
                scores[lambdas] = self._loocv(cells, lambdas, w, starts, best)
            return scores[lambdas]

        current = [grids[0][0], grids[1][0], grids[2][-1]]
        for _ in range(10):
            changed = False
            for k in range(3):
                best = min(grids[k], key=lambda v: score(tuple(current[:k] + [v]
                                                               + current[k + 1:])))
                if best != current[k]:
                    current[k], changed = best, True
            if not changed:
                break
        lambdas = tuple(current)
        return lambdas, score(lambdas), True

    def _loocv(self, cells, lambdas, w, starts, bound=math.inf):
        """Mean squared prediction error of the control cells, each fitted as if treated.

        The cells are fitted in stacks; once the squared errors so far sum to more than
        ``bound`` times the number of cells, the rest are skipped and that partial mean
        (a lower bound of the score, above ``bound``) is returned.

        Each fit starts from the global fit of these tuning values with every sampled
        cell left out (itself started from the previous one's, ``starts``) and stops at
        a relative change of ``CV_TOL``: the scores compare tuning values, far apart."""
        lam_time, lam_unit, lam_nn = lambdas
        Y = self.Y
        w = w / w.mean()
        errors = np.empty(len(cells))
        base = None
        if not math.isinf(lam_nn):
            # every fit starts from one that left all these cells out: a start that had
            # seen a cell's outcome would leak it into that cell's prediction
            V = self.global_weights(Y, self.W, w, lam_time, lam_unit)
            V[cells[:, 0], cells[:, 1]] = 0.0
            try:
                base = self._solve(Y, V, lam_nn, starts.get("base"), max(self.tol, CV_TOL))[2]
            except ValueError:
                return math.inf
            starts["base"] = base
        if self.method == "global":
            V_all = self.global_weights(Y, self.W, w, lam_time, lam_unit)
        n_cells = len(cells)
        chunk = max(1, min(CV_STACK, BATCH_ELEMENTS // Y.size))
        for lo in range(0, n_cells, chunk):  # a stack of fits per chunk of cells
            part = cells[lo:lo + chunk]
            if self.method == "global":
                V = np.repeat(V_all[None], len(part), axis=0)
                V[np.arange(len(part)), part[:, 0], part[:, 1]] = 0.0
            else:
                V = np.empty((len(part),) + Y.shape)
                for k, (j, t) in enumerate(part):
                    W = self.W.copy()
                    W[j, t] = 1.0
                    V[k] = self.local_weights(Y, W, w, j, t, lam_time, lam_unit)
            try:
                a, b, L, _, converged = fit_lowrank_batch(
                    Y, V, lam_nn, max(self.tol, CV_TOL), self.max_iter, base)
            except ValueError:
                return math.inf
            self.unconverged += int((~converged).sum())
            k = np.arange(len(part))
            errors[lo:lo + chunk] = (Y[part[:, 0], part[:, 1]] - a[k, part[:, 0]]
                                     - b[k, part[:, 1]] - L[k, part[:, 0], part[:, 1]])
            partial = float(np.sum(errors[:lo + len(part)] ** 2))
            if partial > bound * n_cells:
                return partial / n_cells
        return float(np.mean(errors ** 2))
