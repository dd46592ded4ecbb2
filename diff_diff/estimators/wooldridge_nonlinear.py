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


def _quasi_loglik(y, eta, w, method):
    if method == "logit":
        return float(np.sum(w * (y * eta - np.logaddexp(0.0, eta))))
    return float(np.sum(w * (y * eta - np.exp(np.clip(eta, -700, 700)))))


class CovariateProblem(NonlinearProblem):
    """The pooled QMLE with covariates. Every design column is a function of the row's
    cohort x period pattern times 1 or one covariate, so a row's design is
    ``sum_j z_ij blocks[j][pattern_i]`` (``z[:, 0] = 1``, ``z[:, j]`` the j-th covariate):
    the likelihood's score and Hessian are sums over patterns of the rows' weighted
    moments of ``z``; no row-level design matrix is formed. ``treat`` marks the treatment
    columns (the cells and their covariate interactions), which the counterfactual index
    switches off."""

    def __init__(self, blocks, z, treat, pattern, y, cell_pattern, unit_of_row, n_units,
                 method, name):
        self.blocks, self.z = blocks, z
        self.blocks0 = blocks.copy()
        self.blocks0[:, :, treat] = 0.0
        self.treat = treat
        self.pattern, self.y = pattern, y
        self.cell_pattern = cell_pattern
        self.n_cells = cell_pattern.size
        self.unit_of_row, self.n_units = unit_of_row, n_units
        self.method, self.name = method, name
        self.n_pat, self.k = blocks.shape[1], blocks.shape[2]
        self.sub = None  # with xvar: (row -> (cell, value) group or -1, group -> pattern)

    def _index(self, blocks, beta):
        """The rows' index ``sum_j z_ij (blocks[j] @ beta)[pattern_i]``."""
        by_pattern = blocks @ beta  # (m + 1, P)
        return np.einsum("ij,ij->i", self.z, by_pattern.T[self.pattern])

    def _moments(self, values):
        """``sum_j blocks[j].T @ (pattern sums of values * z_j)``."""
        out = np.zeros(self.k)
        for j in range(self.z.shape[1]):
            out += self.blocks[j].T @ np.bincount(self.pattern, weights=values * self.z[:, j],
                                                  minlength=self.n_pat)
        return out

    def _hessian(self, wd):
        m1 = self.z.shape[1]
        hessian = np.zeros((self.k, self.k))
        for j in range(m1):
            for h in range(j, m1):
                s = np.bincount(self.pattern, weights=wd * self.z[:, j] * self.z[:, h],
                                minlength=self.n_pat)
                part = self.blocks[j].T @ (s[:, None] * self.blocks[h])
                hessian += part if h == j else part + part.T
        return hessian

    def check_rank(self):
        """``ValueError`` unless the design has full column rank (unit weights)."""
        hessian = self._hessian(np.ones(self.y.size))
        scale = np.sqrt(np.clip(np.diag(hessian), 1e-300, None))
        eig = np.linalg.eigvalsh(hessian / np.outer(scale, scale))
        if np.diag(hessian).min() <= 0 or eig.min() < 1e-10 * eig.max():
            raise ValueError(f"{self.name}: the design with covariates is not of full rank "
                             "(a covariate constant, or collinear with the cohort and period "
                             "terms?)")

    def _beta(self, w_row):
        method, y = self.method, self.y
        mean_y = np.sum(w_row * y) / np.sum(w_row)
        if mean_y <= 0 or (method == "logit" and mean_y >= 1):
            raise ValueError(f"{self.name}: the outcome does not vary (mean {mean_y:g}); the "
                             f"{method} model has no finite fit")
        beta = np.zeros(self.k)
        beta[0] = np.log(mean_y / (1 - mean_y)) if method == "logit" else np.log(mean_y)
        eta = self._index(self.blocks, beta)
        value = _quasi_loglik(y, eta, w_row, method)
        for _ in range(200):
            mu = _mean(eta, method)
            score = self._moments(w_row * (y - mu))
            hessian = self._hessian(w_row * _derivative(eta, method))
            try:
                step = np.linalg.solve(hessian, score)
            except np.linalg.LinAlgError:
                raise ValueError(f"{self.name}: the {method} fit is not identified") from None
            size = 1.0
            for _ in range(60):  # step halving: the quasi-likelihood must not fall
                trial = beta + size * step
                eta_new = self._index(self.blocks, trial)
                new = _quasi_loglik(y, eta_new, w_row, method)
                if new >= value - 1e-12 * abs(value):
                    break
                size /= 2
            beta, eta, value = trial, eta_new, new
            if np.max(np.abs(size * step)) < 1e-11 * max(1.0, np.max(np.abs(beta))):
                break
        else:  # pragma: no cover - concave; reached only under separation
            raise ValueError(f"{self.name}: the {method} fit did not converge (perfect "
                             "prediction?)")
        return beta, self._hessian(w_row * _derivative(eta, method)), eta

    def _att(self, beta, w_row):
        """ATT(g, t): the weighted mean over the cell's rows of ``G(eta) - G(eta0)``
        (``eta0`` without the treatment terms), and its gradient in beta, the mean of
        ``G'(eta) x - G'(eta0) x0`` (etwfe's ``emfx``: the covariates held at their
        values)."""
        eta = self._index(self.blocks, beta)
        eta0 = self._index(self.blocks0, beta)
        s = _mean(eta, self.method) - _mean(eta0, self.method)
        d1, d0 = _derivative(eta, self.method), _derivative(eta0, self.method)
        att, grad = self._average(self.pattern, self.n_pat, self.cell_pattern,
                                  np.arange(self.n_pat), w_row, s, d1, d0)
        if self.sub is None:
            return att, grad
        code, sub_pattern = self.sub  # rows' (cell, xvar value) groups, -1 outside cells
        on = code >= 0
        att_sub, grad_sub = self._average(code[on], sub_pattern.size,
                                          np.arange(sub_pattern.size), sub_pattern,
                                          w_row[on], s[on], d1[on], d0[on], on)
        return np.concatenate([att, att_sub]), np.vstack([grad, grad_sub])

    def _average(self, group, n_groups, chosen, pattern_of, w, s, d1, d0, rows=None):
        """Weighted means over each chosen group's rows of ``s`` and of the gradient
        ``d1 x - d0 x0`` (``pattern_of``: each group's pattern, whose blocks give x)."""
        z = self.z if rows is None else self.z[rows]
        mass = np.bincount(group, weights=w, minlength=n_groups)[chosen]
        att = np.bincount(group, weights=w * s, minlength=n_groups)[chosen] / mass
        pats = pattern_of[chosen]
        grad = np.zeros((chosen.size, self.k))
        for j in range(z.shape[1]):
            a = np.bincount(group, weights=w * d1 * z[:, j], minlength=n_groups)[chosen]
            b = np.bincount(group, weights=w * d0 * z[:, j], minlength=n_groups)[chosen]
            grad += a[:, None] * self.blocks[j][pats] - b[:, None] * self.blocks0[j][pats]
        return att, grad / mass[:, None]

    def estimate(self, unit_weights):
        """Cell ATTs and their unit influence values (sum scale) under unit weights."""
        from .._lazy import sparse

        w_row = unit_weights[self.unit_of_row]
        beta, hessian, eta = self._beta(w_row)
        att, grad = self._att(beta, w_row)
        resid = w_row * (self.y - _mean(eta, self.method))
        per_unit = np.zeros((self.n_units, self.k))
        for j in range(self.z.shape[1]):
            by_unit = sparse.csr_matrix((resid * self.z[:, j], (self.unit_of_row, self.pattern)),
                                        shape=(self.n_units, self.n_pat))
            per_unit += np.asarray(by_unit @ self.blocks[j])
        psi_beta = np.linalg.solve(hessian, per_unit.T).T
        return att, psi_beta @ grad.T, beta


def _xvar_groups(xv, row_cell):
    """Rows' (cell, xvar value) groups: ``(code, cell of each group, value of each)``,
    ``code`` -1 outside the cells; None when xvar has more than 50 values in the cells."""
    from .wooldridge import MAX_XVAR_LEVELS

    inside = row_cell >= 0
    levels, level_code = np.unique(xv[inside], return_inverse=True)
    if levels.size > MAX_XVAR_LEVELS:
        return None
    pair, sub = np.unique(row_cell[inside] * levels.size + level_code.reshape(-1),
                          return_inverse=True)
    code = np.full(xv.size, -1, dtype=np.int64)
    code[inside] = sub.reshape(-1)
    return code, pair // levels.size, levels[pair % levels.size]


class NonlinearETWFE(Estimator):
    """The logit / Poisson path of :class:`~diff_diff.WooldridgeDiD` on the fit template
    (unit-level sampling units: survey columns constant within unit)."""

    def __init__(self, owner, spec=None, xvar=None):
        self._owner = owner
        self._spec = dict(spec or {})  # covariate -> its terms (wooldridge._covariate_terms)
        self._xvar = xvar  # etwfe's heterogeneity variable
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
                                                   first_treat=first_treat,
                                                   covariates=list(self._spec)
                                                   + ([self._xvar] if self._xvar else [])))

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
        n_units = int(unit_codes.max()) + 1
        if np.linalg.matrix_rank(xp) < xp.shape[1]:
            raise ValueError("WooldridgeDiD: the cohort x period cells are not identified "
                             "(a cohort observed in too few periods?)")
        n_base = xp.shape[1] - len(labels)
        if self._spec or self._xvar:
            problem = self._covariate_problem(frame, xp, n_base, pattern, pattern_cell,
                                              cell_pattern, pc, pt, cohorts, periods, y,
                                              unit_codes, n_units, c["time"])
        else:
            problem = NonlinearProblem(xp, pattern, y, cell_pattern, unit_codes, n_units,
                                       method, "WooldridgeDiD")
            problem.names = []
        problem.first_cell = n_base
        problem.labels, problem.g, problem.unit_codes = labels, g, unit_codes
        problem.cell = cells
        problem.trends = trends
        return Sample(problem, rows[first_rows], c["unit"], columns)

    def _covariate_problem(self, frame, xp, n_base, pattern, pattern_cell, cell_pattern, pc,
                           pt, cohorts, periods, y, unit_codes, n_units, time):
        """The design blocks of the covariate terms (as the linear model's: each cell
        interacted with the covariate centred at the cell's mean; the level; the
        covariate times the cohort dummies (all but the first cohort: no unit effects
        here) and times the period dummies (all but the first period)."""
        from .panel import numeric

        spec, xvar = self._spec, self._xvar
        names_cov = list(spec)
        m = len(names_cov) + bool(xvar)
        n_pat, k_cells = xp.shape[0], xp.shape[1] - n_base
        z = np.ones((y.size, m + 1))
        columns = [[xp[:, j]] + [np.zeros(n_pat)] * m for j in range(xp.shape[1])]
        treat = list(range(n_base, xp.shape[1]))
        names = []
        for i, c in enumerate(names_cov, start=1):
            x = numeric(frame, c, "covariate")
            z[:, i] = x
            if "cells" not in spec[c]:
                continue
            sums = np.bincount(pattern, weights=x, minlength=n_pat)
            centre = sums / np.bincount(pattern, minlength=n_pat)
            if not self._owner.demean_covariates:  # only the parametrisation changes
                centre = np.zeros(n_pat)
            for j in range(k_cells):
                on = (pattern_cell == j).astype(float)
                col = [-centre * on] + [np.zeros(n_pat)] * m
                col[i] = on
                treat.append(len(columns))
                columns.append(col)
                names.append(f"cell{j}:{c}")
        for i, c in enumerate(names_cov, start=1):
            terms = spec[c]
            pieces = []
            if "level" in terms:
                pieces.append(np.ones(n_pat))
            if "cohort" in terms:
                pieces += [(pc == k).astype(float) for k in range(1, cohorts.size)]
            if "period" in terms:
                pieces += [(pt == k).astype(float) for k in range(1, periods.size)]
            for piece in pieces:
                col = [np.zeros(n_pat)] * (m + 1)
                col[i] = piece
                columns.append(col)
        sub = None
        if xvar:  # cells x centred xvar (treatment terms), centred xvar x periods (controls)
            xv = numeric(frame, xvar, "xvar")
            g_code = pc[pattern]
            with_cells = np.zeros(cohorts.size, bool)
            with_cells[np.unique(pc[pattern_cell >= 0])] = True
            means = np.bincount(g_code, weights=xv, minlength=cohorts.size) / np.maximum(
                np.bincount(g_code, minlength=cohorts.size), 1)
            z[:, m] = xv - np.where(with_cells, means, 0.0)[g_code]  # etwfe's centring
            for j in range(k_cells):
                col = [np.zeros(n_pat)] * (m + 1)
                col[m] = (pattern_cell == j).astype(float)
                treat.append(len(columns))
                columns.append(col)
            for period in range(1, periods.size):
                col = [np.zeros(n_pat)] * (m + 1)
                col[m] = (pt == period).astype(float)
                columns.append(col)
            sub = _xvar_groups(xv, pattern_cell[pattern])
        blocks = np.array([[col[j] for col in columns] for j in range(m + 1)])  # (m+1, k, P)
        blocks = np.ascontiguousarray(blocks.transpose(0, 2, 1))
        problem = CovariateProblem(blocks, z, np.array(treat, dtype=np.int64), pattern, y,
                                   cell_pattern, unit_codes, n_units, self._owner.method,
                                   "WooldridgeDiD")
        problem.check_rank()
        problem.names = names_cov
        if sub is not None:
            code, sub_cell, values = sub
            problem.sub = (code, cell_pattern[sub_cell])
            problem.sub_labels = [(int(c), float(v)) for c, v in zip(sub_cell, values)]
        return problem

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
        theta, vcov, k = np.asarray(fitted.estimate.theta), np.asarray(var.vcov), problem.n_cells
        res = WooldridgeDiDResults.build(
            self._owner, theta[:k], vcov[:k, :k], var.df,
            n_clusters, f"{self._owner.method} QMLE, " + (
                "delta method" if inference.method == "tsl" else inference.label),
            problem.labels, mass, unit_mass, metadata, None,
            n_obs=problem.y.size, n_units=int(problem.unit_codes.max()) + 1,
            n_treated=int(np.unique(problem.unit_codes[problem.g > 0]).size),
            covariates=problem.names)
        res.covariate_terms = {c: sorted(terms) for c, terms in self._spec.items()}
        res.xvar = self._xvar
        if getattr(problem, "sub", None) is not None:
            code = problem.sub[0]
            on = code >= 0
            sub_mass = np.bincount(code[on], weights=w_row[on], minlength=theta.size - k)
            res._set_xvar_cells(problem.sub_labels, sub_mass, theta[k:], vcov[k:, k:])
        if problem.trends:
            first = problem.first_cell - len(problem.trends)
            res.cohort_trend_coefs = {_plain(c): float(fitted.beta[first + j])
                                      for j, c in enumerate(problem.trends)}
        res._inference = inference
        return res
