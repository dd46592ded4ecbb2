"""Nonlinear extended TWFE (Wooldridge 2023): pooled logit or Poisson quasi-maximum
likelihood with cohort, period and cohort x period terms; ATT(g, t) as average
structural function differences, standard errors by the delta method."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..inference.estimate import Estimate
from .base import Estimator, Sample
from .registry import Capabilities

LINKS = ("logit", "poisson")


def _plain(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def _mean(eta, method):
    if method == "logit":
        return 0.5 * (1.0 + np.tanh(0.5 * eta))  # logistic, overflow-free
    return np.exp(np.clip(eta, -700, 700))


def _derivative(eta, method):
    """dG/deta: the variance function of the canonical link."""
    mu = _mean(eta, method)
    return mu * (1.0 - mu) if method == "logit" else mu


class NonlinearProblem:
    """The pooled QMLE of one fit. Every regressor (intercept, cohort and period dummies,
    cell indicators) is constant within a cohort x period pattern, so the likelihood's
    sufficient statistics are the patterns' weighted counts and outcome sums: ``xp`` holds
    one design row per pattern, ``pattern`` each row's pattern."""

    def __init__(self, xp, pattern, y, cell_pattern, unit_of_row, n_units, method, name):
        self.xp, self.pattern, self.y = xp, pattern, y
        self.cell_pattern = cell_pattern  # the pattern of each cell
        self.n_cells = cell_pattern.size
        self.unit_of_row, self.n_units = unit_of_row, n_units
        self.method, self.name = method, name
        self.first_cell = xp.shape[1] - self.n_cells  # column of the first cell indicator

    def _beta(self, w_row):
        """IRLS on the pattern sums (exact: the rows of a pattern share their design row)."""
        xp, method, n_pat = self.xp, self.method, self.xp.shape[0]
        sw = np.bincount(self.pattern, weights=w_row, minlength=n_pat)
        swy = np.bincount(self.pattern, weights=w_row * self.y, minlength=n_pat)
        beta = np.zeros(xp.shape[1])
        mean_y = swy.sum() / sw.sum()
        if mean_y <= 0 or (method == "logit" and mean_y >= 1):
            raise ValueError(f"{self.name}: the outcome does not vary (mean {mean_y:g}); the "
                             f"{method} model has no finite fit")
        cell_mean = np.divide(swy, sw, out=np.full(sw.size, 0.5), where=sw > 0)
        extreme = (cell_mean <= 0) | ((cell_mean >= 1) if method == "logit" else False)
        if extreme[sw > 0].any() and method == "logit":
            raise ValueError(f"{self.name}: some cohort x period cell has an outcome that is "
                             "all 0 or all 1 (perfect prediction): the logit model has no "
                             "finite fit; use method='ols' or 'poisson'")
        beta[0] = np.log(mean_y / (1 - mean_y)) if method == "logit" else np.log(mean_y)
        for _ in range(200):
            eta = xp @ beta
            score = xp.T @ (swy - sw * _mean(eta, method))
            hessian = (xp * (sw * _derivative(eta, method))[:, None]).T @ xp
            try:
                step = np.linalg.solve(hessian, score)
            except np.linalg.LinAlgError:
                raise ValueError(f"{self.name}: the {method} fit is not identified (a cell "
                                 "without variation in the outcome?)") from None
            beta = beta + step
            if np.max(np.abs(step)) < 1e-12 * max(1.0, np.max(np.abs(beta))):
                break
        else:  # pragma: no cover - the canonical-link QMLE is concave; reached only if separated
            raise ValueError(f"{self.name}: the {method} fit did not converge (perfect "
                             "prediction in some cohort x period cell?)")
        return beta, hessian

    def _att(self, beta):
        """ATT(g, t) = G(eta_gt) - G(eta_gt - tau_gt) (every observation of the cell has the
        same index) and its gradient in beta (the delta method)."""
        eta = self.xp @ beta
        att = np.zeros(self.n_cells)
        grad = np.zeros((self.n_cells, beta.size))
        for j, p in enumerate(self.cell_pattern):
            on = eta[p]
            off = on - beta[self.first_cell + j]
            att[j] = _mean(on, self.method) - _mean(off, self.method)
            d_on, d_off = _derivative(on, self.method), _derivative(off, self.method)
            grad[j] = (d_on - d_off) * self.xp[p]
            grad[j, self.first_cell + j] += d_off
        return att, grad

    def estimate(self, unit_weights):
        """Cell ATTs and their unit influence values (sum scale) under unit weights."""
        from .._lazy import sparse

        w_row = unit_weights[self.unit_of_row]
        beta, hessian = self._beta(w_row)
        att, grad = self._att(beta)
        mu = _mean(self.xp @ beta, self.method)
        resid = w_row * (self.y - mu[self.pattern])
        by_unit = sparse.csr_matrix((resid, (self.unit_of_row, self.pattern)),
                                    shape=(self.n_units, self.xp.shape[0]))
        per_unit = np.asarray(by_unit @ self.xp)  # each unit's score
        psi_beta = np.linalg.solve(hessian, per_unit.T).T
        return att, psi_beta @ grad.T, beta

    def att(self, unit_weights):
        """The cell ATTs alone (replicate refits)."""
        return self.estimate(unit_weights)[0]


class NonlinearETWFE(Estimator):
    """The logit / Poisson path of :class:`~diff_diff.WooldridgeDiD` on the fit template
    (unit-level sampling units: survey columns constant within unit)."""

    def __init__(self, owner):
        self._owner = owner
        self.cluster, self.n_bootstrap = owner.cluster, 0
        self.bootstrap_weights, self.seed = owner.bootstrap_weights, owner.seed
        self.alpha, self.cband = owner.alpha, False

    @classmethod
    def _param_names(cls):
        return []

    def _validate(self):
        return None

    # sampling units are the panel's units: pweight designs, constant within unit
    capabilities = Capabilities(data="panel", inference="influence", weight_types=("pweight",),
                                replicate=True, bootstrap="multiplier")

    def fit(self, data, outcome, unit, time, first_treat, survey_design):
        return self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                   first_treat=first_treat))

    def _sample(self, data, columns):
        owner, c = self._owner, columns
        rows, g, t, unit_codes, periods = owner._sample(data, c["unit"], c["time"],
                                                        c["first_treat"])
        frame = data.iloc[rows]
        y = frame[c["outcome"]].to_numpy(dtype=float)
        if not np.isfinite(y).all():
            raise ValueError(f"outcome column {c['outcome']!r} has missing or infinite values")
        method = owner.method
        if method == "logit" and ((y < 0) | (y > 1)).any():
            raise ValueError(f"WooldridgeDiD(method='logit'): outcome {c['outcome']!r} must lie "
                             "in [0, 1] (binary or a fraction)")
        if method == "poisson" and (y < 0).any():
            raise ValueError(f"WooldridgeDiD(method='poisson'): outcome {c['outcome']!r} must "
                             "be non-negative")
        cells, labels = owner._cells(g, t, periods)
        cohorts = np.unique(g)
        cohort_code = np.searchsorted(cohorts, g)
        time_code = np.searchsorted(periods, t)
        codes, pattern = np.unique(cohort_code * periods.size + time_code, return_inverse=True)
        pc, pt = codes // periods.size, codes % periods.size  # each pattern's cohort, period
        rep = np.zeros(codes.size, dtype=np.int64)
        rep[pattern[::-1]] = np.arange(pattern.size)[::-1]  # a row of each pattern
        columns_x = [np.ones(codes.size)]
        columns_x += [(pc == k).astype(float) for k in range(1, cohorts.size)]
        columns_x += [(pt == k).astype(float) for k in range(1, periods.size)]
        trends = owner._trend_cohorts(g, periods) if owner.cohort_trends else []
        columns_x += [(cohorts[pc] == c) * periods[pt] for c in trends]  # cohort trends
        pattern_cell = cells[rep]
        columns_x += [(pattern_cell == j).astype(float) for j in range(len(labels))]
        xp = np.column_stack(columns_x)
        cell_pattern = np.array([int(np.flatnonzero(pattern_cell == j)[0])
                                 for j in range(len(labels))], dtype=np.int64)
        first_rows = np.unique(unit_codes, return_index=True)[1]
        problem = NonlinearProblem(xp, pattern, y, cell_pattern, unit_codes,
                                   int(unit_codes.max()) + 1, method, "WooldridgeDiD")
        problem.labels, problem.g, problem.unit_codes = labels, g, unit_codes
        problem.cell = cells
        problem.trends = trends
        if np.linalg.matrix_rank(xp) < xp.shape[1]:
            raise ValueError("WooldridgeDiD: the cohort x period cells are not identified "
                             "(a cohort observed in too few periods?)")
        return Sample(problem, rows[first_rows], c["unit"], columns)

    def _estimate(self, sample, design):
        problem = sample.arrays
        att, psi, beta = problem.estimate(design.weights)
        estimate = Estimate(att, psi, reestimate=problem.att, name="WooldridgeDiD")
        return SimpleNamespace(estimate=estimate, problem=problem, weights=design.weights,
                               beta=beta)

    def _results(self, fitted, inference, metadata):
        from ..results.wooldridge import WooldridgeDiDResults

        problem = fitted.problem
        var = inference.variance()
        w_row = fitted.weights[problem.unit_codes]
        inside = problem.cell >= 0
        mass = np.bincount(problem.cell[inside], weights=w_row[inside],
                           minlength=problem.n_cells)
        from .wooldridge import _cohort_mass

        unit_mass = _cohort_mass(problem.g, problem.unit_codes, w_row)
        n_clusters = None if inference.method == "replicate" else inference.design.n_psu
        res = WooldridgeDiDResults.build(
            self._owner, np.asarray(fitted.estimate.theta), np.asarray(var.vcov), var.df,
            n_clusters, f"{self._owner.method} QMLE, " + (
                "delta method" if inference.method == "tsl" else inference.label),
            problem.labels, mass, unit_mass, metadata, None,
            n_obs=problem.y.size, n_units=int(problem.unit_codes.max()) + 1,
            n_treated=int(np.unique(problem.unit_codes[problem.g > 0]).size), covariates=[])
        if problem.trends:
            first = problem.first_cell - len(problem.trends)
            res.cohort_trend_coefs = {_plain(c): float(fitted.beta[first + j])
                                      for j, c in enumerate(problem.trends)}
        res._inference = inference
        return res
