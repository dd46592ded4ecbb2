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


def _mean(eta, method):
    if method == "logit":
        return 0.5 * (1.0 + np.tanh(0.5 * eta))  # logistic, overflow-free
    return np.exp(np.clip(eta, -700, 700))


def _derivative(eta, method):
    """dG/deta: the variance function of the canonical link."""
    mu = _mean(eta, method)
    return mu * (1.0 - mu) if method == "logit" else mu


class NonlinearProblem:
    """The pooled QMLE of one fit: design ``x`` (intercept, cohort and period dummies,
    then the cell indicators), outcome ``y``, rows grouped into sampling units."""

    def __init__(self, x, y, cell, n_cells, unit_of_row, method, name):
        self.x, self.y, self.cell, self.n_cells = x, y, cell, n_cells
        self.unit_of_row, self.method, self.name = unit_of_row, method, name
        self.first_cell = x.shape[1] - n_cells  # column of the first cell indicator

    def _beta(self, w_row):
        x, y, method = self.x, self.y, self.method
        beta = np.zeros(x.shape[1])
        mean_y = np.average(y, weights=w_row)
        beta[0] = np.log(mean_y / (1 - mean_y)) if method == "logit" else np.log(mean_y)
        for _ in range(200):
            eta = x @ beta
            v = _derivative(eta, method)
            score = x.T @ (w_row * (y - _mean(eta, method)))
            hessian = (x * (w_row * v)[:, None]).T @ x
            step = np.linalg.solve(hessian, score)
            beta = beta + step
            if np.max(np.abs(step)) < 1e-12 * max(1.0, np.max(np.abs(beta))):
                break
        else:  # pragma: no cover - the canonical-link QMLE is concave; reached only if separated
            raise ValueError(f"{self.name}: the {method} fit did not converge (perfect "
                             "prediction in some cohort x period cell?)")
        return beta, hessian

    def estimate(self, unit_weights):
        """Cell ATTs and their unit influence values (sum scale) under unit weights."""
        w_row = unit_weights[self.unit_of_row]
        beta, hessian = self._beta(w_row)
        eta = self.x @ beta
        att, grad = self._att(beta, eta, w_row)
        mu = _mean(eta, self.method)
        scores = self.x * (w_row * (self.y - mu))[:, None]  # rows x coefficients
        per_unit = np.zeros((unit_weights.size, self.x.shape[1]))
        np.add.at(per_unit, self.unit_of_row, scores)
        psi_beta = np.linalg.solve(hessian, per_unit.T).T
        return att, psi_beta @ grad.T, beta

    def _att(self, beta, eta, w_row):
        """ATT(g, t) = weighted mean over the cell's rows of G(eta) - G(eta - tau_gt), and
        its gradient in beta (the delta method, the rows' covariates held fixed)."""
        att = np.zeros(self.n_cells)
        grad = np.zeros((self.n_cells, beta.size))
        for j in range(self.n_cells):
            rows = self.cell == j
            w = w_row[rows]
            total = w.sum()
            tau = beta[self.first_cell + j]
            on, off = eta[rows], eta[rows] - tau
            att[j] = w @ (_mean(on, self.method) - _mean(off, self.method)) / total
            d_on, d_off = _derivative(on, self.method), _derivative(off, self.method)
            xs = self.x[rows]
            grad[j] = (w * (d_on - d_off)) @ xs / total
            grad[j, self.first_cell + j] += w @ d_off / total
        return att, grad

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
        columns_x = [np.ones(y.size)]
        columns_x += [(cohort_code == k).astype(float) for k in range(1, cohorts.size)]
        columns_x += [(time_code == k).astype(float) for k in range(1, periods.size)]
        for j in range(len(labels)):
            columns_x.append((cells == j).astype(float))
        x = np.column_stack(columns_x)
        first_rows = np.unique(unit_codes, return_index=True)[1]
        problem = NonlinearProblem(x, y, cells, len(labels), unit_codes, method,
                                   "WooldridgeDiD")
        problem.labels, problem.g, problem.unit_codes = labels, g, unit_codes
        if np.linalg.matrix_rank(x) < x.shape[1]:
            raise ValueError("WooldridgeDiD: the cohort x period cells are not identified "
                             "(a cohort observed in too few periods?)")
        return Sample(problem, rows[first_rows], c["unit"], columns)

    def _estimate(self, sample, design):
        problem = sample.arrays
        att, psi, beta = problem.estimate(design.weights)
        estimate = Estimate(att, psi, reestimate=problem.att, name="WooldridgeDiD")
        return SimpleNamespace(estimate=estimate, problem=problem, weights=design.weights)

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
            n_clusters, f"{self._owner.method} QMLE, delta method",
            problem.labels, mass, unit_mass, metadata, None,
            n_obs=problem.y.size, n_units=int(problem.unit_codes.max()) + 1,
            n_treated=int(np.unique(problem.unit_codes[problem.g > 0]).size), covariates=[])
        res._inference = inference
        return res
