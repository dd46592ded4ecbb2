"""Local-linear regression at a boundary point with robust bias correction.

``local_linear_boundary`` estimates the conditional mean ``mu(c) = E[y | x = c]``
at one evaluation point ``c`` (typically the edge of the support of ``x``) by a
kernel-weighted local-linear fit, with the robust bias-corrected inference of
Calonico, Cattaneo and Farrell (2018, JASA, "On the effect of bias estimation
on coverage accuracy in nonparametric inference"). ``mse_dpi_bandwidth``
selects the bandwidth by the MSE-optimal direct plug-in rule. Together they
match ``nprobust::lprobust(y, x, eval = c, p = 1, bwselect = "mse-dpi")`` (R,
and the authors' Python ``nprobust-pkg`` 1.0.0), including its ``weights=``
argument: sampling weights multiply the kernel weights in the fit and in every
bandwidth stage.

Only the boundary case is implemented: ``p = 1``, ``q = 2``, ``deriv = 0``,
one-sided kernels on ``[0, 1]`` used through ``K((x - c) / h)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._warnings import warn_user

KERNELS = ("epa", "tri", "uni")
VCE_TYPES = ("nn", "hc0", "hc1", "hc2", "hc3")
# Rule-of-thumb constants of the starting bandwidth, by kernel (nprobust).
_C_KERNEL = {"epa": 2.34, "tri": 2.576, "uni": 1.843}


@dataclass(frozen=True, eq=False)
class BoundaryFit:
    """A local-linear fit at one point with robust bias correction.

    Attributes
    ----------
    c : float
        Evaluation point.
    h, b : float
        Main and bias bandwidths after the ``bwcheck`` floor.
    n_window : int
        Observations with positive kernel weight.
    mu_us : float
        Conventional local-linear intercept at ``c``.
    mu_bc : float
        Bias-corrected intercept (the local-quadratic bias estimate removed).
    se_us : float
        Standard error of ``mu_us`` (conventional).
    se_rb : float
        Robust standard error of ``mu_bc``; centre robust intervals on ``mu_bc``.
    influence : ndarray (n,)
        Influence values of ``mu_bc`` on the sum scale, in the input row
        order: ``sum(influence**2) == se_rb**2``. Zero outside the window and
        for rows with zero weight.
    diagnostics : dict
        Bandwidth details (the selector's stages when ``h`` was selected).
    """

    c: float
    h: float
    b: float
    n_window: int
    mu_us: float
    mu_bc: float
    se_us: float
    se_rb: float
    influence: np.ndarray
    diagnostics: dict = field(default_factory=dict)


def kernel_weights(u, kernel):
    """Kernel ``K(u)`` on ``[-1, 1]``: ``epa`` 0.75(1-u^2), ``tri`` 1-|u|, ``uni`` 0.5."""
    a = np.abs(u)
    inside = a <= 1
    if kernel == "epa":
        k = 0.75 * (1 - a * a)
    elif kernel == "tri":
        k = 1 - a
    elif kernel == "uni":
        k = np.full_like(a, 0.5)
    else:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    return np.where(inside, k, 0.0)


def _prepare(x, y, weights, kernel):
    """Validate, drop zero-weight rows and sort by x (stable).

    Returns ``(x, y, s, rows)`` sorted by x, where ``rows`` are the positions
    of the kept rows in the input.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or y.shape != x.shape:
        raise ValueError(f"x and y must be 1-d of equal length, got {x.shape} and {y.shape}")
    s = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if s.shape != x.shape:
        raise ValueError(f"weights must have the length of x ({x.size}), got {s.shape}")
    for name, v in (("x", x), ("y", y), ("weights", s)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(s < 0):
        raise ValueError("weights must be non-negative")
    rows = np.flatnonzero(s > 0)
    if rows.size == 0:
        raise ValueError("all weights are zero")
    order = rows[np.argsort(x[rows], kind="stable")]
    return x[order], y[order], s[order], order


def _check_bwcheck(bwcheck, n, nnmatch):
    if nnmatch < 1:
        raise ValueError(f"nnmatch must be a positive integer, got {nnmatch}")
    if bwcheck < 1:
        raise ValueError(f"bwcheck must be a positive integer, got {bwcheck}")
    if n < bwcheck:
        warn_user(f"only {n} observations with positive weight; bwcheck reduced "
                  f"from {bwcheck} to {n}")
        return n
    return int(bwcheck)


def _inverse_gram(g, what=None):
    """``g^{-1}`` by Cholesky. When that fails: the pseudo-inverse in the bandwidth
    selector's pilot stages (``what=None``, as nprobust does), a clear error in the
    final fits."""
    try:
        chol = np.linalg.cholesky(g)
    except np.linalg.LinAlgError:
        if what is None:
            return np.linalg.pinv(g)
        raise ValueError(
            f"too few distinct x values near the boundary for the {what} (ties or a mass "
            "point); pass a larger bandwidth h, or, for a mass of units at the boundary, "
            "use a mass-point estimator") from None
    cinv = np.linalg.inv(chol)
    return cinv.T @ cinv


def nn_residuals(x, y, nnmatch=3):
    """Nearest-neighbour residuals of Calonico, Cattaneo and Farrell (2018).

    ``x`` must be sorted. Each observation's neighbours start with the other
    members of its tie block (equal ``x``); while there are fewer than
    ``min(nnmatch, n - 1)``, whole tie blocks are added on the closer side
    (both sides on an exact distance tie; the only side at an edge). With
    ``J_i`` neighbours, ``r_i = sqrt(J_i/(J_i+1)) (y_i - mean of the
    neighbours' y)``. The mean is unweighted.

    Parameters
    ----------
    x, y : ndarray (n,)
        Sorted running variable and outcome.
    nnmatch : int
        Minimum number of neighbours.

    Returns
    -------
    ndarray (n,)
    """
    n = x.size
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = x[1:] != x[:-1]
    starts = np.flatnonzero(new)
    nb = starts.size
    size = np.diff(np.append(starts, n))
    bsum = np.add.reduceat(y, starts)
    vals = x[starts]
    bid = np.cumsum(new) - 1
    target = min(nnmatch, n - 1)
    count = size[bid] - 1
    total = bsum[bid] - y
    left, right = bid - 1, bid + 1
    for _ in range(target):
        active = count < target
        if not active.any():
            break
        has_l, has_r = left >= 0, right < nb
        li, ri = np.where(has_l, left, 0), np.where(has_r, right, 0)
        dl = np.where(has_l, x - vals[li], np.inf)
        dr = np.where(has_r, vals[ri] - x, np.inf)
        take_l = active & has_l & (dl <= dr)
        take_r = active & has_r & (dr <= dl)
        count = count + np.where(take_l, size[li], 0) + np.where(take_r, size[ri], 0)
        total = total + np.where(take_l, bsum[li], 0.0) + np.where(take_r, bsum[ri], 0.0)
        left = left - take_l
        right = right + take_r
    return np.sqrt(count / (count + 1.0)) * (y - total / count)


def _poly(u, order):
    """Columns ``1, u, ..., u^order``."""
    return np.vander(u, order + 1, increasing=True)


def _sandwich(ginv, design, score_weight):
    """``[G^{-1} (sum (score_weight_i R_i)(score_weight_i R_i)') G^{-1}]``."""
    a = design * score_weight[:, None]
    return ginv @ (a.T @ a) @ ginv


def _pilot(u, y, w, order, nnmatch=None):
    """Weighted polynomial fit on ``{w > 0}``; optionally the coefficient variance."""
    on = w > 0
    u, y, w = u[on], y[on], w[on]
    design = _poly(u, order)
    ginv = _inverse_gram((design * w[:, None]).T @ design)
    beta = ginv @ ((design * w[:, None]).T @ y)
    if nnmatch is None:
        return beta, None
    r = nn_residuals(u, y, nnmatch)
    return beta, _sandwich(ginv, design, r * w)


def _stage(u, y, s, kernel, order, nu, order_b, h_v, h_b1, h_b2, scale, nnmatch):
    """One plug-in stage: variance, bias constants and the closed-form bandwidth.

    ``u = x - c`` sorted. Returns ``(V, B1, B2, R, bw)``.
    """
    n = u.size
    w = kernel_weights(u / h_v, kernel) / h_v * s
    on = w > 0
    uv, yv, wv = u[on], y[on], w[on]
    design = _poly(uv, order)
    ginv = _inverse_gram((design * wv[:, None]).T @ design)
    r = nn_residuals(uv, yv, nnmatch)
    vv = _sandwich(ginv, design, r * wv)[nu, nu]
    t = uv / h_v
    bc1 = h_v ** nu * (ginv @ (design.T @ (wv * t ** (order + 1))))[nu]
    bc2 = h_v ** nu * (ginv @ (design.T @ (wv * t ** (order + 2))))[nu]
    w1 = kernel_weights(u / h_b1, kernel) * s
    beta1, v1 = _pilot(u, y, w1, order_b, nnmatch if scale > 0 else None)
    reg = 3 * bc1 ** 2 * v1[order + 1, order + 1] if scale > 0 else 0.0
    w2 = kernel_weights(u / h_b2, kernel) * s
    beta2, _ = _pilot(u, y, w2, order_b + 1)
    b1 = bc1 * beta1[order + 1]
    b2 = bc2 * beta2[order + 2]
    v = n * h_v ** (2 * nu + 1) * vv
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 when y does not vary
        bw = ((2 * nu + 1) * v / (n * 2 * (order + 1 - nu) * (b1 ** 2 + scale * reg))) \
            ** (1.0 / (2 * order + 3))
    return v, b1, b2, reg, bw


def _mse_dpi_sorted(x, y, s, c, kernel, nnmatch, bwcheck, bwregul):
    """The four-stage MSE-DPI selector on sorted, validated data."""
    n = x.size
    u = x - c
    q75, q25 = np.quantile(x, [0.75, 0.25])
    spread = min(np.std(x, ddof=1), (q75 - q25) / 1.349)
    x_range = x[-1] - x[0]
    bw_max = max(abs(c - x[0]), abs(c - x[-1]))
    bw_min = np.sort(np.abs(u))[min(bwcheck, n) - 1]
    c_bw = max(min(_C_KERNEL[kernel] * spread * n ** (-0.2), bw_max), bw_min)

    def clip(v):
        if not np.isfinite(v):
            raise ValueError("the bandwidth cannot be selected: y does not vary near the "
                             "evaluation point (pass h=)")
        return max(min(v, bw_max), bw_min)

    args = (u, y, s, kernel)
    mp2 = clip(_stage(*args, 3, 3, 4, c_bw, x_range, x_range, 0.0, nnmatch)[4])
    mp3 = clip(_stage(*args, 4, 4, 5, c_bw, x_range, x_range, 0.0, nnmatch)[4])
    st_b = _stage(*args, 2, 2, 3, c_bw, mp2, mp3, bwregul, nnmatch)
    b = clip(st_b[4])
    st_h = _stage(*args, 1, 0, 2, c_bw, b, mp2, 1.0, nnmatch)
    h = clip(st_h[4])
    diag = dict(c_bw=c_bw, mp2=mp2, mp3=mp3, bw_min=bw_min, bw_max=bw_max,
                h_stage=dict(zip(("V", "B1", "B2", "R"), st_h[:4])),
                b_stage=dict(zip(("V", "B1", "B2", "R"), st_b[:4])))
    return h, b, diag


def mse_dpi_bandwidth(x, y, c, *, weights=None, kernel="epa", nnmatch=3, bwcheck=21,
                      bwregul=1.0):
    """MSE-optimal direct plug-in bandwidths for a boundary local-linear fit.

    The bandwidth ``h`` of the local-linear (``p = 1``) estimate of ``E[y | x = c]``
    minimises the leading asymptotic MSE ``h^4 B^2 + V / (n h)``; the bias
    constant ``B`` comes from a local-quadratic pilot whose bandwidth ``b`` is
    itself MSE-optimal for the second derivative, and the pilots of ``b`` use
    third- and fourth-order fits at a rule-of-thumb bandwidth. Every stage uses
    nearest-neighbour residuals, a regularisation term (``bwregul``) and is
    clipped to ``[bw_min, bw_max]``, where ``bw_min`` is the ``bwcheck``-th
    smallest ``|x - c|`` and ``bw_max`` the largest. Matches
    ``nprobust::lpbwselect(bwselect = "mse-dpi", p = 1)`` at one point,
    including its ``weights=`` (kernel weight times sampling weight in every
    stage; the starting scale, IQR and range are unweighted).

    Parameters
    ----------
    x, y : array-like (n,)
        Running variable and outcome.
    c : float
        Evaluation point.
    weights : array-like (n,), optional
        Non-negative sampling weights; rows with zero weight are dropped first.
    kernel : {"epa", "tri", "uni"}
    nnmatch : int
        Neighbours of the nearest-neighbour residuals.
    bwcheck : int
        Minimum number of observations inside every bandwidth.
    bwregul : float
        Scale of the regularisation term of the ``b`` stage.

    Returns
    -------
    h, b : float
    diagnostics : dict
        Starting bandwidth ``c_bw``, pilots ``mp2`` and ``mp3``, ``bw_min``,
        ``bw_max`` and the ``V, B1, B2, R`` of the ``h`` and ``b`` stages.

    Examples
    --------
    >>> import numpy as np
    >>> i = np.arange(1, 501)
    >>> x = np.modf(i * 0.6180339887498949)[0]
    >>> y = x + x**2 + np.sin(7 * i)
    >>> h, b, _ = mse_dpi_bandwidth(x, y, 0.0)
    >>> bool(0 < h <= 1)
    True
    """
    xs, ys, ss, _ = _prepare(x, y, weights, kernel)
    bwcheck = _check_bwcheck(bwcheck, xs.size, nnmatch)
    return _mse_dpi_sorted(xs, ys, ss, float(c), kernel, nnmatch, bwcheck, bwregul)


def _fit_residuals(vce, y, rp, rq, beta_p, beta_q, lev):
    """Residuals for the conventional and the bias-corrected meats."""
    if vce == "nn":
        return None
    n = y.size
    r_p, r_q = y - rp @ beta_p, y - rq @ beta_q
    if vce == "hc1":
        return r_p * np.sqrt(n / (n - 2)), r_q * np.sqrt(n / (n - 3))
    if vce == "hc2":
        return r_p / np.sqrt(1 - lev), r_q / np.sqrt(1 - lev)
    if vce == "hc3":
        return r_p / (1 - lev), r_q / (1 - lev)
    return r_p, r_q


def _boundary_core(u, y, s, kernel, h, b, vce, nnmatch):
    """The fit on sorted ``u = x - c``. Returns estimates, window mask and phi."""
    wh_all = kernel_weights(u / h, kernel) / h * s
    wb_all = kernel_weights(u / b, kernel) / b * s
    on = wh_all > 0 if h > b else wb_all > 0
    u, y, wh, wb = u[on], y[on], wh_all[on], wb_all[on]
    n_w = int(on.sum())
    if np.unique(u).size < 6:
        warn_user(f"only {np.unique(u).size} distinct x values in the window "
                  "(fewer than p + 5 = 6)")
    rp, rq = _poly(u, 1), _poly(u, 2)
    if n_w == 0:
        raise ValueError("no observation with positive kernel weight within the bandwidth")
    gp_inv = _inverse_gram((rp * wh[:, None]).T @ rp, f"local-linear fit ({n_w} in the window)")
    gq_inv = _inverse_gram((rq * wb[:, None]).T @ rq,
                           f"local-quadratic bias fit ({n_w} in the window)")
    beta_p = gp_inv @ ((rp * wh[:, None]).T @ y)
    beta_q = gq_inv @ ((rq * wb[:, None]).T @ y)
    lvec = (rp * wh[:, None]).T @ u ** 2
    q = (rp * wh[:, None]).T - np.outer(lvec, (gq_inv @ (rq * wb[:, None]).T)[2])
    mu_bc = (gp_inv @ (q @ y))[0]
    lev = np.einsum("ij,jk,ik->i", rp, gp_inv, rp) * wh
    res = _fit_residuals(vce, y, rp, rq, beta_p, beta_q, lev)
    r_p, r_q = (nn_residuals(u, y, nnmatch),) * 2 if res is None else res
    v_us = _sandwich(gp_inv, rp, r_p * wh)
    phi = (gp_inv @ q)[0] * r_q
    return beta_p[0], mu_bc, np.sqrt(v_us[0, 0]), np.sqrt(phi @ phi), on, phi


def local_linear_boundary(x, y, c=0.0, *, weights=None, kernel="epa", h=None, b=None,
                          rho=1.0, vce="nn", nnmatch=3, bwcheck=21, bwregul=1.0):
    """Local-linear estimate of ``E[y | x = c]`` with robust bias correction.

    The conventional estimate is the intercept of the kernel-weighted
    regression of ``y`` on ``(1, x - c)`` with weights ``K((x - c)/h) s / h``
    (``s`` the sampling weights). The bias-corrected estimate subtracts the
    leading bias, estimated by a local-quadratic fit with bandwidth ``b``:
    ``mu_bc = mu_us - e0' Gp^{-1} L beta_q[2]``, with
    ``L = sum_i w_i (1, x_i - c)' (x_i - c)^2``. Its robust standard error
    ``se_rb`` accounts for the variability of the bias estimate (Calonico,
    Cattaneo and Farrell, 2018); intervals ``mu_bc +/- z se_rb`` have the
    right coverage at the MSE-optimal ``h``. Matches
    ``nprobust::lprobust(y, x, eval = c, p = 1, bwselect = "mse-dpi")``
    (nprobust 1.0, R or the authors' Python ``nprobust-pkg``), with its
    ``weights=``, except that rows with zero weight are dropped here (nprobust
    keeps them in the bandwidth's scale estimates).

    Parameters
    ----------
    x, y : array-like (n,)
        Running variable and outcome.
    c : float
        Evaluation point (usually ``min(x)`` or a known lower bound).
    weights : array-like (n,), optional
        Non-negative sampling weights; they multiply the kernel weights in the
        fit and in every bandwidth stage.
    kernel : {"epa", "tri", "uni"}
    h, b : float, optional
        Main and bias bandwidths. ``h`` defaults to ``mse_dpi_bandwidth`` and
        ``b`` to ``h / rho``. Both are raised to the ``bwcheck`` floor.
    rho : float
        Ratio ``h / b`` when ``b`` is not given.
    vce : {"nn", "hc0", "hc1", "hc2", "hc3"}
        Residuals of the variance: nearest neighbours, or the fits' residuals
        (``hc2``/``hc3`` use the local-linear leverage). The bandwidth selector
        always uses nearest-neighbour residuals.
    nnmatch : int
        Neighbours of the nearest-neighbour residuals.
    bwcheck : int
        Minimum number of observations inside the bandwidths.
    bwregul : float
        Regularisation scale of the bandwidth selector.

    Returns
    -------
    BoundaryFit

    Examples
    --------
    >>> import numpy as np
    >>> i = np.arange(1, 201)
    >>> x = np.modf(i * 0.6180339887498949)[0]
    >>> y = x + x**2 + np.sin(7 * i) + 0.5 * np.cos(3.0 * i**2)
    >>> fit = local_linear_boundary(x, y, 0.0)
    >>> round(fit.h, 6), fit.n_window, round(fit.mu_bc, 6), round(fit.se_rb, 6)
    (0.350504, 69, 0.139408, 0.306467)
    """
    if vce not in VCE_TYPES:
        raise ValueError(f"vce must be one of {VCE_TYPES}, got {vce!r}")
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho}")
    for name, v in (("h", h), ("b", b)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v}")
    xs, ys, ss, rows = _prepare(x, y, weights, kernel)
    c = float(c)
    bwcheck = _check_bwcheck(bwcheck, xs.size, nnmatch)
    diag = {}
    if h is None:
        h, b_sel, diag = _mse_dpi_sorted(xs, ys, ss, c, kernel, nnmatch, bwcheck, bwregul)
        diag = dict(diag, h_selected=h, b_selected=b_sel)
    if b is None:
        b = h / rho
    bw_min = np.sort(np.abs(xs - c))[bwcheck - 1]
    h, b = max(float(h), bw_min), max(float(b), bw_min)
    diag.setdefault("bw_min", bw_min)
    mu_us, mu_bc, se_us, se_rb, on, phi = _boundary_core(xs - c, ys, ss, kernel, h, b,
                                                         vce, nnmatch)
    influence = np.zeros(np.asarray(x).shape[0])
    influence[rows[on]] = phi
    return BoundaryFit(c=c, h=h, b=b, n_window=int(on.sum()), mu_us=float(mu_us),
                       mu_bc=float(mu_bc), se_us=float(se_us), se_rb=float(se_rb),
                       influence=influence, diagnostics=diag)
