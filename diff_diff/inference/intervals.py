"""From a variance to tests and intervals: t with design df, bootstrap bands."""

from __future__ import annotations

import numpy as np

from .._lazy import special


def _check_alpha(alpha: float) -> float:
    if not isinstance(alpha, (int, float, np.floating)) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def standard_error(variance) -> np.ndarray:
    """Standard errors from variances, the library's one convention: the square root
    of a non-negative variance, NaN for a negative or missing one (not identified;
    t, p and intervals are then NaN too). Nothing is clipped to zero."""
    variance = np.asarray(variance, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(variance >= 0, np.sqrt(np.abs(variance)), np.nan)


def sqrt_diag(vcov: np.ndarray) -> np.ndarray:
    """Standard errors from a covariance matrix (:func:`standard_error` of its diagonal)."""
    return standard_error(np.diag(vcov))


def valid_df(df) -> np.ndarray:
    """Usable degrees of freedom: ``None``/inf (normal) or a positive number."""
    if df is None:
        return np.asarray(True)
    df = np.asarray(df, dtype=float)
    return ~np.isnan(df) & (df > 0)


def t_inference(
    estimate: np.ndarray,
    se: np.ndarray,
    df,
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """t statistics, two-sided p-values and (1-alpha) intervals.

    Uses Student t with ``df`` degrees of freedom (a number, or one per
    estimate; normal when ``None`` or infinite). Where the standard error is
    not finite or not positive, or ``df`` is not usable, t, p and both
    interval ends are NaN together; the estimate itself is never altered.

    Returns ``(t, p, conf_low, conf_high)`` as arrays shaped like ``estimate``.
    """
    alpha = _check_alpha(alpha)
    estimate = np.asarray(estimate, dtype=float)
    df_shape = np.shape(df) if df is not None else ()
    shape = np.broadcast_shapes(estimate.shape, np.shape(se), df_shape)
    estimate = np.broadcast_to(estimate, shape)
    se = np.broadcast_to(np.asarray(se, dtype=float), shape)
    dof = np.broadcast_to(np.inf if df is None else np.asarray(df, dtype=float), shape)
    ok = np.isfinite(se) & (se > 0) & np.isfinite(estimate) & valid_df(dof)
    safe_se = np.where(ok, se, 1.0)
    safe_df = np.where(ok, dof, 1.0)
    t = np.where(ok, estimate / safe_se, np.nan)
    p = np.where(ok, 2.0 * special.stdtr(safe_df, -np.abs(np.where(ok, t, 0.0))), np.nan)
    crit = special.stdtrit(safe_df, 1.0 - alpha / 2.0)  # scipy.stats.t.ppf, lighter import
    low = np.where(ok, estimate - crit * safe_se, np.nan)
    high = np.where(ok, estimate + crit * safe_se, np.nan)
    return t, p, low, high


def bootstrap_se(draws: np.ndarray, method: str = "sd") -> np.ndarray:
    """Standard errors from bootstrap deviations (B x k).

    ``sd``: the standard deviation of the draws. ``iqr``: the interquartile
    range divided by that of the standard normal, robust to a few extreme
    draws (R ``did``'s choice).
    """
    draws = np.asarray(draws, dtype=float)
    if method == "sd":
        return draws.std(axis=0, ddof=1)
    if method == "iqr":
        q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0)
        return (q75 - q25) / (special.ndtri(0.75) - special.ndtri(0.25))
    raise ValueError(f"bootstrap se method must be 'sd' or 'iqr', got {method!r}")


def percentile_interval(
    estimate: np.ndarray, draws: np.ndarray, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval ``theta_hat + quantiles of (theta*_b - theta_hat)``."""
    alpha = _check_alpha(alpha)
    lo, hi = np.quantile(np.asarray(draws, dtype=float), [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    estimate = np.asarray(estimate, dtype=float)
    return estimate + lo, estimate + hi


def bootstrap_p_value(estimate: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Two-sided p-value of ``theta = 0``: share of ``|theta*_b - theta_hat| >= |theta_hat|``.

    Uses ``(1 + count) / (B + 1)`` so it is never exactly zero.
    """
    draws = np.asarray(draws, dtype=float)
    estimate = np.asarray(estimate, dtype=float)
    count = (np.abs(draws) >= np.abs(estimate)[None, ...]).sum(axis=0)
    return (1.0 + count) / (draws.shape[0] + 1.0)


def sup_t_critical(draws: np.ndarray, se: np.ndarray, alpha: float = 0.05) -> float:
    """Critical value for a uniform (sup-t) band over the k estimates.

    The (1-alpha) quantile over draws of ``max_j |delta_bj| / se_j``; columns
    with a zero or non-finite standard error are left out. The band is
    ``theta_hat_j +- c * se_j`` (Montiel Olea & Plagborg-Moller 2019).
    """
    alpha = _check_alpha(alpha)
    draws = np.asarray(draws, dtype=float)
    se = np.asarray(se, dtype=float)
    keep = np.isfinite(se) & (se > 0)
    if not keep.any():
        return float("nan")
    t_max = np.max(np.abs(draws[:, keep]) / se[keep], axis=1)
    return float(np.quantile(t_max, 1.0 - alpha))


def wald_test(estimate: np.ndarray, vcov: np.ndarray, df=None) -> dict:
    """Joint test that every ``estimate`` is zero.

    ``W = b' V^+ b`` (pseudo-inverse); with ``df`` (design degrees of freedom)
    ``W / q ~ F(q, df)``, else ``W ~ chi-square(q)``. Returns ``statistic``
    (``W / q``), ``df1`` (q), ``df2`` and ``p_value``; NaN when there is
    nothing to test or the covariance is not finite.
    """
    estimate = np.asarray(estimate, dtype=float).ravel()
    vcov = np.asarray(vcov, dtype=float).reshape(estimate.size, estimate.size)
    q = int(estimate.size)
    out = {"statistic": np.nan, "df1": q, "df2": df, "p_value": np.nan}
    if q == 0 or not (np.isfinite(estimate).all() and np.isfinite(vcov).all()):
        return out
    wald = float(estimate @ np.linalg.pinv(vcov) @ estimate)
    out["statistic"] = wald / q
    if df is None:
        out["p_value"] = float(special.chdtrc(q, wald))
    elif df > 0:
        out["p_value"] = float(special.fdtrc(q, df, wald / q))
    return out
