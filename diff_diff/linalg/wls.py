"""Weighted least squares with absorbed fixed effects: the one regression core.

``wls`` fits ``y = X b + FE + e`` by weighted least squares. Fixed-effect
dimensions given in ``absorb`` are projected out (exactly, by weighted group
demeaning, for one dimension; by alternating projections to a tight tolerance
for more), so they never enter ``X``. Degrees of freedom count the absorbed
parameters as the dummy-variable regression would: levels with positive
weight, less the redundancies between dimensions (connected components of the
first two dimensions). Singleton levels (one observation) are kept: their
residual is zero and each counts one parameter, exactly as its dummy would
(``fixest`` drops singletons by default, which changes the df, not the
estimates). Collinear columns are detected in column
order, as R's ``lm`` does (later columns explained by earlier ones are dropped
with NaN coefficients). The fit hands the inference engine what it needs: the
demeaned design, residuals, weights and the bread ``(X'WX)^-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._lazy import csgraph
from .._lazy import sparse as sp
from .._warnings import warn_user

RANK_ACTIONS = ("warn", "error", "silent")
RANK_TOLERANCE = 1e-7


class RankDeficientError(ValueError):
    """Collinear regressors with ``rank_deficient_action="error"``."""


class FitMethods:
    """What every fit derives from its coefficients, design, residuals and weights
    (shared by :class:`WLSFit` and the cell-solved fits of :mod:`.cells`)."""

    @property
    def rank(self) -> int:
        return int(self.kept.sum())

    @property
    def df_resid(self) -> float:
        """Residual degrees of freedom ``n - k - absorbed``."""
        return float(self.n_obs - self.rank - self.df_absorbed)

    def scores(self) -> np.ndarray:
        """``w_i x_i e_i`` (n x k_kept): the estimating-equation contributions."""
        return self.x * (self.weights * self.resid)[:, None]

    def influence(self) -> np.ndarray:
        """Influence values of the kept coefficients on the sum scale."""
        return self.scores() @ self.bread_inv


@dataclass(frozen=True, eq=False)
class WLSFit(FitMethods):
    """A weighted least-squares fit.

    Attributes
    ----------
    coef : ndarray (k,)
        Coefficients in the order of ``names`` (NaN for dropped columns).
    names : list of str
    kept : ndarray of bool (k,)
        Columns that were identified.
    x : ndarray (n, k_kept)
        Design of the kept columns after projecting out absorbed effects.
    resid, fitted : ndarray (n,)
    weights : ndarray (n,)
        Weights used (ones when unweighted).
    bread_inv : ndarray (k_kept, k_kept)
        ``(X'WX)^-1`` of the kept columns.
    n_obs : float
        Observations with positive weight (the sum of frequency weights).
    df_absorbed : int
        Parameters absorbed by the fixed effects (levels minus redundancies).
    r_squared : float
        Weighted R^2 of the full model (absorbed effects included).
    """

    coef: np.ndarray
    names: list
    kept: np.ndarray
    x: np.ndarray
    resid: np.ndarray
    fitted: np.ndarray
    weights: np.ndarray
    bread_inv: np.ndarray
    n_obs: float
    df_absorbed: int
    r_squared: float
    frequency: bool = False

    def cluster_influence(self, cluster: np.ndarray, n_clusters: int,
                          chunk: int = 1 << 17) -> np.ndarray:
        """Influence values summed within clusters (``n_clusters`` x k_kept), in chunks of
        rows: no n x k array is formed (what a clustered variance needs of a wide fit)."""
        u = self.weights * self.resid
        totals = np.zeros((n_clusters, self.x.shape[1]))
        for start in range(0, u.size, chunk):
            rows = slice(start, start + chunk)
            m = u[rows].size
            indicator = sp.csc_matrix((u[rows], cluster[rows], np.arange(m + 1)),
                                      shape=(n_clusters, m))
            totals += indicator @ self.x[rows]
        return totals @ self.bread_inv


def _group_means(values: np.ndarray, codes: np.ndarray, n_groups: int, w: np.ndarray,
                 w_sum: np.ndarray) -> np.ndarray:
    """Weighted group means of every column of ``values`` (n x m), per row."""
    out = np.empty_like(values)
    for j in range(values.shape[1]):
        sums = np.bincount(codes, weights=w * values[:, j], minlength=n_groups)
        out[:, j] = (sums / w_sum)[codes]
    return out


def demean(
    values: np.ndarray,
    absorb: list[np.ndarray],
    weights: np.ndarray,
    tol: float = 1e-11,
    max_iter: int = 10_000,
    grid: "TwoWayGrid | None | bool" = True,
    inplace: bool = False,
) -> np.ndarray:
    """Project the columns of ``values`` off the absorbed fixed effects (weighted).

    One dimension: subtract weighted group means (exact). Several: alternate
    such projections until the largest change is below ``tol`` times the
    column scale. Rows with zero weight are carried along but do not
    influence the means. A balanced unit x period layout (:class:`TwoWayGrid`;
    ``grid``: the one already found, ``True`` to look for it) takes one exact pass.
    ``inplace``: ``values`` (a Fortran-ordered float array) is overwritten and returned.
    """
    inplace = inplace and values.dtype == float and values.flags.f_contiguous
    if not absorb:
        return values if inplace else np.array(values, dtype=float, order="F")
    if grid is True:
        grid = two_way_grid(absorb, weights)
    if grid is not None:
        values = np.asarray(values, dtype=float)
        return grid.demean(values, weights, out=values if inplace else None)
    values = values if inplace else np.array(values, dtype=float, order="F")
    sizes = [int(c.max()) + 1 for c in absorb]
    w_sums = []
    for codes, size in zip(absorb, sizes):
        s = np.bincount(codes, weights=weights, minlength=size)
        w_sums.append(np.where(s > 0, s, 1.0))
    if len(absorb) == 1:
        return values - _group_means(values, absorb[0], sizes[0], weights, w_sums[0])
    fitted = _fitted_by_cells(values, absorb, sizes, weights)
    if fitted is not None:
        values -= fitted
        return values
    scale = np.maximum(np.abs(values).max(axis=0), 1.0)
    for _ in range(max_iter):
        change = np.zeros(values.shape[1])
        for codes, size, w_sum in zip(absorb, sizes, w_sums):
            means = _group_means(values, codes, size, weights, w_sum)
            values -= means
            change = np.maximum(change, np.abs(means).max(axis=0))
        if np.all(change < tol * scale):
            return values
    warn_user(
        f"fixed-effect projections did not converge in {max_iter} iterations "
        f"(largest change {np.max(change / scale):.2e})")
    return values


def _weighted_gram(x: np.ndarray, w: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """``x' diag(w) x`` in chunks of rows (no weighted copy of a wide ``x``)."""
    if x.shape[1] <= 8:
        return (x * w[:, None]).T @ x
    gram = np.zeros((x.shape[1], x.shape[1]))
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk]
        gram += (part * w[start:start + chunk, None]).T @ part
    return gram


def _fitted_by_cells(values, absorb, sizes, weights, max_cells=20_000, max_levels=2_000):
    """The fixed effects' exact fit to every column when the absorbed dimensions form few
    joint cells, else None.

    The fixed effects are functions of the joint cell (one level per dimension), so
    their weighted fit to any column depends on the column only through its weighted
    cell sums: the projection is solved exactly on the cells (a dense least-squares
    problem in the dummies of every level) and subtracted row by row. A stacked event
    study (treated x event time: a dozen cells over millions of rows) takes one pass.
    """
    n = values.shape[0]
    if int(np.prod(sizes, dtype=float)) > 4 * n or sum(sizes) > max_levels:
        return None
    from .._grouping import dense_rank

    key = np.ravel_multi_index(absorb, sizes)
    cell, present = dense_rank(key, int(np.prod(sizes)))
    n_cells = present.size
    if n_cells > max_cells or 4 * n_cells > n:
        return None
    cell_w = np.bincount(cell, weights=weights, minlength=n_cells)
    sums = np.column_stack([np.bincount(cell, weights=weights * values[:, j],
                                        minlength=n_cells) for j in range(values.shape[1])])
    means = sums / np.where(cell_w > 0, cell_w, 1.0)[:, None]
    levels = np.unravel_index(present, sizes)
    offsets = np.cumsum([0] + list(sizes[:-1]))
    dummies = np.zeros((n_cells, sum(sizes)))
    for codes, offset in zip(levels, offsets):
        dummies[np.arange(n_cells), offset + codes] = 1.0
    root = np.sqrt(cell_w)[:, None]
    coef = np.linalg.lstsq(dummies * root, means * root, rcond=None)[0]
    return (dummies @ coef)[cell]


@dataclass(frozen=True, eq=False)
class TwoWayGrid:
    """A balanced two-way layout: every (a, b) pair once, positive weights constant within
    each level of ``a`` (a panel of units x periods with unit weights). Projecting off both
    effects is then exact in one pass: ``x - xbar_a - xbar_b^w + xbar^w`` (unit means over
    periods, weighted period means, weighted grand mean)."""

    n_a: int
    n_b: int
    ordered: bool  # rows sorted by a, then b: the data reshape to (n_a, n_b)
    codes: tuple | None = None  # (a, b) when not ordered

    def demean(self, values: np.ndarray, weights: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
        """The projected columns, into ``out`` (may be ``values`` itself) or a new array."""
        one_dim = values.ndim == 1
        values = values[:, None] if one_dim else values
        m = values.shape[1]
        if out is not None and out.ndim == 1:
            out = out[:, None]
        if self.ordered:
            out = np.empty((values.shape[0], m), order="F") if out is None else out
            unit_w = weights.reshape(self.n_a, self.n_b)[:, 0]
            unit_w = unit_w / unit_w.sum()
            for j in range(m):  # each column as a units x periods matrix
                grid = np.ascontiguousarray(values[:, j]).reshape(self.n_a, self.n_b)
                unit_means = grid.mean(axis=1)
                period_term = unit_w @ grid - unit_w @ unit_means
                result = out[:, j].reshape(self.n_a, self.n_b)
                np.subtract(grid, unit_means[:, None], out=result)
                result -= period_term[None, :]
        else:
            a, b = self.codes
            total = weights.sum()
            out = np.empty_like(values) if out is None else out
            for j in range(m):
                x = values[:, j]
                unit_means = np.bincount(a, weights=x, minlength=self.n_a) / self.n_b
                period_means = np.bincount(b, weights=weights * x,
                                           minlength=self.n_b) / (total / self.n_b)
                grand = float(weights @ x) / total
                out[:, j] = x - unit_means[a] - period_means[b] + grand
        return out[:, 0] if one_dim else out


def two_way_grid(absorb: list[np.ndarray], weights: np.ndarray) -> TwoWayGrid | None:
    """The :class:`TwoWayGrid` of two absorbed dimensions, or None when they are not one."""
    if len(absorb) != 2:
        return None
    a, b = absorb
    n_a, n_b = int(a.max()) + 1, int(b.max()) + 1
    if n_a * n_b != a.size or not (weights > 0).all():
        return None
    ordered = bool((a.reshape(n_a, n_b) == np.arange(n_a)[:, None]).all()
                   and (b.reshape(n_a, n_b) == np.arange(n_b)[None, :]).all())
    if ordered:
        grid_w = weights.reshape(n_a, n_b)
        if not (grid_w == grid_w[:, :1]).all():
            return None
        return TwoWayGrid(n_a, n_b, True)
    if not (np.bincount(a * n_b + b, minlength=a.size) == 1).all():
        return None
    first = np.empty(n_a)
    first[a] = weights
    if not (weights == first[a]).all():
        return None
    return TwoWayGrid(n_a, n_b, False, (a, b))


def absorbed_parameters(absorb: list[np.ndarray], weights: np.ndarray,
                        grid: "TwoWayGrid | None | bool" = True) -> int:
    """Number of identified fixed-effect parameters.

    Levels with positive weight, minus one per additional dimension for
    every connected component of the first two dimensions (exact for one or
    two dimensions; assumes a connected design beyond two).
    """
    if not absorb:
        return 0
    if grid is True:
        grid = two_way_grid(absorb, weights)
    if grid is not None:  # complete and connected: every level, one normalisation
        return grid.n_a + grid.n_b - 1
    positive = weights > 0
    counts = [np.bincount(c[positive], minlength=int(c.max()) + 1) for c in absorb]
    total = sum(int((cnt > 0).sum()) for cnt in counts)
    if len(absorb) == 1:
        return total
    a, b = absorb[0][positive], absorb[1][positive]
    na, nb = counts[0].size, counts[1].size
    n_a = int((counts[0] > 0).sum())
    if na * nb <= 4 * a.size + 1024:
        # a level of the second dimension seen with every level of the first connects all
        present = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb) > 0
        if present.sum(axis=0).max() == n_a:
            return total - 1 - (len(absorb) - 2)
    graph = sp.coo_matrix((np.ones(a.size), (a, na + b)), shape=(na + nb, na + nb))
    _, labels = csgraph.connected_components(graph, directed=False)
    used = np.zeros(na + nb, dtype=bool)
    used[a] = True
    used[na + b] = True
    components = np.unique(labels[used]).size
    return total - components - (len(absorb) - 2)


def _rank_check(keep: np.ndarray, names: list, action: str) -> None:
    """Warn about (or refuse) the collinear columns ``~keep`` as ``action`` says."""
    if not keep.all():
        dropped = [names[j] for j in np.flatnonzero(~keep)]
        message = (f"regressors {dropped} are collinear with earlier regressors or the fixed "
                   "effects and were dropped")
        if action == "error":
            raise RankDeficientError(message)
        if action == "warn":
            warn_user(message)
    if not keep.any():
        raise RankDeficientError("no identified regressor: every column is collinear")


def independent_columns(gram: np.ndarray, tol: float = RANK_TOLERANCE,
                        scale: np.ndarray | None = None) -> np.ndarray:
    """Columns kept in order: each must add at least ``tol`` of its own norm (R ``lm``).

    Works on the Gram matrix ``X'WX``; a column whose residual norm, after the
    columns accepted before it, is below ``tol`` times its norm is dropped.
    ``scale``: squared norms to compare with instead (the columns' norms before
    absorbed effects were projected out: a covariate the fixed effects explain
    leaves only rounding noise, which must not count as a column of its own).
    """
    from scipy.linalg import solve_triangular

    accepted: list[int] = []
    chol = np.zeros((0, 0))
    for j in range(gram.shape[0]):
        g_jj = gram[j, j]
        if not g_jj > 0:
            continue
        if accepted:
            v = solve_triangular(chol, gram[accepted, j], lower=True, check_finite=False)
            resid = g_jj - v @ v
        else:
            v, resid = np.zeros(0), g_jj
        reference = g_jj if scale is None else max(g_jj, scale[j])
        if resid <= 0 or np.sqrt(resid) < tol * np.sqrt(reference):
            continue
        k = len(accepted)
        grown = np.zeros((k + 1, k + 1))
        grown[:k, :k] = chol
        grown[k, :k] = v
        grown[k, k] = np.sqrt(resid)
        chol = grown
        accepted.append(j)
    keep = np.zeros(gram.shape[0], dtype=bool)
    keep[accepted] = True
    return keep


def wls(
    y: np.ndarray,
    x: np.ndarray,
    names: list[str],
    weights: np.ndarray | None = None,
    absorb: list[np.ndarray] | None = None,
    rank_deficient_action: str = "warn",
    frequency: bool = False,
) -> WLSFit:
    """Weighted least squares of ``y`` on ``x`` with absorbed fixed effects.

    Parameters
    ----------
    y : ndarray (n,)
    x : ndarray (n, k)
    names : list of str
        Column names (for messages and results).
    weights : ndarray (n,), optional
        Non-negative weights; rows with zero weight do not count.
    absorb : list of int ndarrays, optional
        Fixed-effect codes (0..G-1) per dimension.
    rank_deficient_action : {"warn", "error", "silent"}
        Collinear columns are dropped (coefficient NaN) with a warning, raise
        :class:`RankDeficientError`, or are dropped silently.
    frequency : bool
        Weights are frequency weights: ``n`` is their sum.
    """
    if rank_deficient_action not in RANK_ACTIONS:
        raise ValueError(
            f"rank_deficient_action must be one of {list(RANK_ACTIONS)}, got {rank_deficient_action!r}"
        )
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n, k = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    absorb = list(absorb or [])
    grid = two_way_grid(absorb, w)
    stacked = np.empty((n, k + 1), order="F")  # columns contiguous for the projections
    stacked[:, 0], stacked[:, 1:] = y, x
    both = demean(stacked, absorb, w, grid=grid, inplace=True)
    y_t, x_t = both[:, 0], both[:, 1:]
    unit_weights = bool(np.all(w == 1.0))
    gram = x_t.T @ x_t if unit_weights else _weighted_gram(x_t, w)
    raw = np.einsum("ij,ij->j", x, x) if unit_weights else np.einsum("ij,ij,i->j", x, x, w)
    keep = independent_columns(gram, scale=raw if absorb else None)
    _rank_check(keep, names, rank_deficient_action)
    x_k = x_t if keep.all() else x_t[:, keep]
    bread_inv = np.linalg.inv(gram[np.ix_(keep, keep)])
    coef_k = bread_inv @ (x_k.T @ (y_t if unit_weights else w * y_t))
    coef = np.full(k, np.nan)
    coef[keep] = coef_k
    resid = y_t - x_k @ coef_k
    fitted = y - resid
    if unit_weights:  # the same sums without the weight passes
        n_obs = float(n)
        centred = y - y.mean()
        tss, rss = float(centred @ centred), float(resid @ resid)
    else:
        positive = w > 0
        n_obs = float(w[positive].sum()) if frequency else float(positive.sum())
        centred = y - np.average(y, weights=w)
        tss, rss = float(w @ (centred * centred)), float(w @ (resid * resid))
    r2 = 1.0 - rss / tss if tss > 0 else np.nan
    return WLSFit(
        coef=coef, names=list(names), kept=keep, x=x_k, resid=resid, fitted=fitted, weights=w,
        bread_inv=bread_inv, n_obs=n_obs, df_absorbed=absorbed_parameters(absorb, w, grid),
        r_squared=r2, frequency=frequency,
    )
