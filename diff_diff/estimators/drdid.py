"""Two-period, two-group DiD estimators for panel data (Sant'Anna & Zhao 2020).

Each function takes the outcome change ``dy = Y_post - Y_pre`` of the units
of one 2x2 comparison, the treated indicator ``d``, covariates ``x`` (with an
intercept column; ``None`` for none) and sampling weights ``w``, and returns
the ATT and its influence function on the mean scale over these units
(``att_hat - att ~= mean(inf)``). Nuisance estimation (outcome regression
by weighted least squares, propensity score by weighted logit) enters the
influence functions, as in R ``DRDID::reg_did_panel``,
``std_ipw_did_panel`` and ``drdid_panel``, which these reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class EstimationError(ValueError):
    """A 2x2 comparison that cannot be estimated (e.g. a singular design)."""


@dataclass(frozen=True)
class TwoByTwo:
    att: float
    inf: np.ndarray  # (n,) influence function, mean scale
    n_trimmed: int = 0


def _solve(gram: np.ndarray, rhs: np.ndarray, what: str) -> np.ndarray:
    try:
        cond = np.linalg.cond(gram)
        if not np.isfinite(cond) or cond > 1e12:
            raise np.linalg.LinAlgError
        return np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError:
        raise EstimationError(
            f"{what}: the covariates are collinear (or constant) in this comparison"
        ) from None


def outcome_regression(dy, d, x, w):
    """WLS of ``dy`` on ``x`` among comparison units; fitted values and IF pieces."""
    n = dy.shape[0]
    w_ols = w * (1.0 - d)
    gram = (x * w_ols[:, None]).T @ x / n
    coef = _solve(gram, (x * w_ols[:, None]).T @ dy / n, "outcome regression")
    fitted = x @ coef
    # asymptotic linear representation of the coefficients (n x p)
    lin_rep = (x * (w_ols * (dy - fitted))[:, None]) @ np.linalg.inv(gram)
    return fitted, lin_rep


def logit(d, x, w, max_iter: int = 100, tol: float = 1e-10):
    """Weighted logistic regression of ``d`` on ``x`` (R ``glm(binomial)``).

    Returns fitted probabilities and the linear representation of the
    coefficients, ``score @ (X'WV X / n)^-1`` (n x p).
    """
    n, p = x.shape
    beta = np.zeros(p)
    for _ in range(max_iter):
        eta = x @ beta
        prob = 1.0 / (1.0 + np.exp(-eta))
        var = np.clip(prob * (1.0 - prob), 1e-12, None)
        hess = (x * (w * var)[:, None]).T @ x
        step = _solve(hess, x.T @ (w * (d - prob)), "propensity score")
        beta = beta + step
        if np.max(np.abs(step)) < tol * (1.0 + np.max(np.abs(beta))):
            break
    else:
        raise EstimationError("propensity score: the logit did not converge (separation?)")
    prob = 1.0 / (1.0 + np.exp(-(x @ beta)))
    info = (x * (w * prob * (1.0 - prob))[:, None]).T @ x / n
    score = x * (w * (d - prob))[:, None]
    return prob, score @ np.linalg.inv(info)


def _normalized(w):
    return w / w.mean()


def reg_did(dy, d, x, w) -> TwoByTwo:
    """Outcome-regression DiD (Heckman, Ichimura & Todd 1997)."""
    w = _normalized(w)
    fitted, lin_rep = outcome_regression(dy, d, x, w)
    w_treat = w * d
    mean_treat = w_treat.mean()
    eta_treat = (w_treat * dy).mean() / mean_treat
    eta_cont = (w_treat * fitted).mean() / mean_treat
    inf_treat = w_treat * (dy - eta_treat) / mean_treat
    inf_cont = (w_treat * (fitted - eta_cont) + lin_rep @ (w_treat @ x / dy.shape[0])) / mean_treat
    return TwoByTwo(eta_treat - eta_cont, inf_treat - inf_cont)


def _ps_weights(d, x, w, trim):
    prob, lin_rep = logit(d, x, w)
    keep = np.where(d == 1, True, prob < 1.0 - trim)
    prob = np.minimum(prob, 1.0 - 1e-6)
    w_treat = keep * w * d
    w_cont = keep * w * prob * (1.0 - d) / (1.0 - prob)
    return w_treat, w_cont, lin_rep, int((~keep).sum())


def ipw_did(dy, d, x, w, trim: float = 0.01) -> TwoByTwo:
    """Normalized (Hajek) inverse-probability-weighted DiD (Abadie 2005)."""
    w = _normalized(w)
    n = dy.shape[0]
    w_treat, w_cont, lin_rep, n_trim = _ps_weights(d, x, w, trim)
    eta_treat = (w_treat * dy).mean() / w_treat.mean()
    eta_cont = (w_cont * dy).mean() / w_cont.mean()
    inf_treat = w_treat * (dy - eta_treat) / w_treat.mean()
    inf_cont = w_cont * (dy - eta_cont) / w_cont.mean()
    m2 = (w_cont * (dy - eta_cont)) @ x / n / w_cont.mean()
    inf_cont = inf_cont + lin_rep @ m2
    return TwoByTwo(eta_treat - eta_cont, inf_treat - inf_cont, n_trim)


def dr_did(dy, d, x, w, trim: float = 0.01) -> TwoByTwo:
    """Doubly robust DiD, locally efficient form (Sant'Anna & Zhao 2020)."""
    w = _normalized(w)
    n = dy.shape[0]
    w_treat, w_cont, ps_rep, n_trim = _ps_weights(d, x, w, trim)
    fitted, or_rep = outcome_regression(dy, d, x, w)
    resid = dy - fitted
    eta_treat = (w_treat * resid).mean() / w_treat.mean()
    eta_cont = (w_cont * resid).mean() / w_cont.mean()
    inf_treat = (w_treat * (resid - eta_treat) - or_rep @ (w_treat @ x / n)) / w_treat.mean()
    m2 = (w_cont * (resid - eta_cont)) @ x / n
    inf_cont = (
        w_cont * (resid - eta_cont) + ps_rep @ m2 - or_rep @ (w_cont @ x / n)
    ) / w_cont.mean()
    return TwoByTwo(eta_treat - eta_cont, inf_treat - inf_cont, n_trim)


def difference_in_means(dy, d, w) -> TwoByTwo:
    """All three estimators without covariates: weighted mean changes, treated minus comparison."""
    w = _normalized(w)
    w_treat, w_cont = w * d, w * (1.0 - d)
    eta_treat = (w_treat * dy).sum() / w_treat.sum()
    eta_cont = (w_cont * dy).sum() / w_cont.sum()
    inf = w_treat * (dy - eta_treat) / w_treat.mean() - w_cont * (dy - eta_cont) / w_cont.mean()
    return TwoByTwo(eta_treat - eta_cont, inf)


ESTIMATORS = {"reg": reg_did, "ipw": ipw_did, "dr": dr_did}
