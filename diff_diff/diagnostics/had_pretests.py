"""Pre-tests of heterogeneous adoption designs (de Chaisemartin, Ciccia, D'Haultfoeuille & Knau).

* :func:`qug_test`: is there a quasi-untreated group (doses near 0)?
* :func:`stute_test`: Cramer-von Mises test that ``E[y | D]`` is a polynomial
  in ``D`` (order 0: mean independence, the pre-trends test on placebo
  outcome changes; order 1: linearity, under which TWFE's slope is the WAS),
  with a wild bootstrap (Stute, Gonzalez Manteiga & Presedo Quindimil 1998).
* :func:`yatchew_test`: the same null by Yatchew's differencing test, with the
  heteroskedasticity-robust variance of the paper (fast for very large G).

Inputs are one value per unit; the tests treat units as independent draws.
"""

from __future__ import annotations

import numpy as np

from .._lazy import stats
from ..estimators.had import qug_test
from ..inference.bootstrap import draw_multipliers

__all__ = ["qug_test", "stute_test", "yatchew_test"]


def _check(dose, y, order):
    dose = np.asarray(dose, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if dose.shape != y.shape:
        raise ValueError(f"dose and y must have the same length, got {dose.size} and {y.size}")
    if not (np.isfinite(dose).all() and np.isfinite(y).all()):
        raise ValueError("dose and y must be finite (drop missing values first)")
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (mean independence) or 1 (linearity), got {order!r}")
    if dose.size < order + 3:
        raise ValueError(f"need at least {order + 3} units, got {dose.size}")
    if order == 1 and np.ptp(dose) == 0:
        raise ValueError("all doses are equal: linearity in the dose cannot be tested")
    return dose, y


def _design(dose, order):
    return np.vander(dose, order + 1, increasing=True)


def _cvm(resid_sorted, block_end):
    """``G^-2 sum_g (sum_{h: D_h <= D_g} e_h)^2`` for residuals sorted by dose, columns
    being draws; ``block_end`` maps each unit to the last row of its tie block."""
    g = resid_sorted.shape[0]
    cum = np.cumsum(resid_sorted, axis=0)[block_end]
    return np.sum(cum**2, axis=0) / g**2


def stute_test(dose, y, order: int = 1, n_bootstrap: int = 999, seed=None) -> dict:
    """Stute's Cramer-von Mises test of ``H0: E[y | D]`` is a polynomial of ``order``.

    ``S = G^-2 sum_g c(D_g)^2`` with ``c(d) = sum_{h: D_h <= d} e_h`` the
    cumulated OLS residuals (units with tied doses share a value). Critical
    values come from a wild bootstrap with Mammen multipliers:
    ``y* = fitted + eta e``, refit, recompute; ``p = (1 + #{S* >= S}) / (B + 1)``.

    Returns ``statistic``, ``p_value``, ``n``, ``order``.

    Parameters
    ----------
    dose : array_like
        Each unit's dose.
    y : array_like
        Each unit's outcome (change).
    order : int, default 1
        Degree of the polynomial under the null.
    n_bootstrap : int, default 999
        Wild bootstrap draws.
    seed : int, optional
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``statistic``, ``p_value``, ``n``, ``order``.
    """
    dose, y = _check(dose, y, order)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) \
            or n_bootstrap < 99:
        raise ValueError(f"n_bootstrap must be an integer >= 99, got {n_bootstrap!r}")
    order_idx = np.argsort(dose, kind="stable")
    d_sorted, y_sorted = dose[order_idx], y[order_idx]
    x = _design(d_sorted, order)
    q, _ = np.linalg.qr(x)
    resid = y_sorted - q @ (q.T @ y_sorted)
    last = np.r_[d_sorted[1:] != d_sorted[:-1], True]
    block_end = np.flatnonzero(last)[np.cumsum(np.r_[True, last[:-1]]) - 1]
    statistic = float(_cvm(resid[:, None], block_end)[0])
    rng = np.random.default_rng(seed)
    exceed, chunk = 0, 200
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        eta = draw_multipliers(rng, (size, dose.size), "mammen").T  # (n, size)
        star = eta * resid[:, None]
        star = star - q @ (q.T @ star)  # residuals of the refit on fitted + eta e
        exceed += int(np.sum(_cvm(star, block_end) >= statistic))
    return {"statistic": statistic, "p_value": (1 + exceed) / (n_bootstrap + 1),
            "n": int(dose.size), "order": order}


def yatchew_test(dose, y, order: int = 1, het_robust: bool = True) -> dict:
    """Yatchew's differencing test of ``H0: E[y | D]`` is a polynomial of ``order``.

    Units sorted by dose (then outcome): ``sigma2_lin`` is the variance of the
    OLS residuals, ``sigma2_diff = mean((y_(g) - y_(g-1))^2) / 2`` over
    consecutive units. Under the null both estimate the noise variance;
    ``T = sqrt(G) (sigma2_lin - sigma2_diff) / sqrt(mean((e_(g) e_(g-1))^2))``
    (heteroskedasticity-robust) or ``sqrt(G) (sigma2_lin / sigma2_diff - 1)``;
    one-sided ``p = 1 - Phi(T)``. Normalisations follow R ``YatchewTest``.

    Returns ``statistic``, ``p_value``, ``sigma2_lin``, ``sigma2_diff``, ``n``.

    Parameters
    ----------
    dose : array_like
        Each unit's dose.
    y : array_like
        Each unit's outcome (change).
    order : int, default 1
        Degree of the polynomial under the null.
    het_robust : bool, default True
        Heteroskedasticity-robust normalisation.

    Returns
    -------
    dict
        ``statistic``, ``p_value``, ``sigma2_lin``, ``sigma2_diff``, ``n``.
    """
    dose, y = _check(dose, y, order)
    idx = np.lexsort((y, dose))
    d_sorted, y_sorted = dose[idx], y[idx]
    x = _design(d_sorted, order)
    beta, *_ = np.linalg.lstsq(x, y_sorted, rcond=None)
    resid = y_sorted - x @ beta
    g = dose.size
    sigma2_lin = float(np.var(resid, ddof=1))
    sigma2_diff = float(0.5 * np.mean(np.diff(y_sorted) ** 2))
    if het_robust:
        sigma4 = float(np.mean((resid[1:] * resid[:-1]) ** 2))
        t = np.sqrt(g) * (sigma2_lin - sigma2_diff) / np.sqrt(sigma4) if sigma4 > 0 else np.nan
    else:
        t = np.sqrt(g) * (sigma2_lin / sigma2_diff - 1) if sigma2_diff > 0 else np.nan
    return {"statistic": float(t), "p_value": float(stats.norm.sf(t)) if np.isfinite(t)
            else np.nan, "sigma2_lin": sigma2_lin, "sigma2_diff": sigma2_diff, "n": int(g)}
