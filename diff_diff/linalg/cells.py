"""Regressions whose design is a function of a few cells, solved on the cells.

Sun-Abraham's and ETWFE's regressions put one indicator per (cohort, period) cell in the
design and absorb unit and period effects. On a balanced panel whose weights are constant
within unit (:class:`~diff_diff.linalg.wls.TwoWayGrid`), the within transformation of an
indicator column depends on the unit only through its pattern of cells over the periods
(its cohort), so the demeaned design is a small ``patterns x periods x cells`` table and
the normal equations need only the outcome's weighted sums per (pattern, period). The fit
(``grid_cell_fit``) equals :func:`~diff_diff.linalg.wls.wls` on the full design (the
tests assert it) without forming the ``n x k`` design; the clustered variance by unit
needs each unit's score, a ``periods x cells`` product per pattern.

``small_cell_fit`` covers the other shape: the design and every absorbed effect are
functions of one small cell code (a stacked event study: treated x event time), so the
whole fit is a weighted regression on the cells, and a cluster's score sums its rows'
weighted residuals per cell.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from .wls import (FitMethods, _rank_check, absorbed_parameters, independent_columns,
                  two_way_grid)


PAIR_TABLE_SLACK = 1 << 20  # cluster x pattern x period tables up to 4n + this are summed


class CellGridFit(FitMethods):
    """A :class:`~diff_diff.linalg.wls.WLSFit` whose design is held by cells.

    Every attribute and method of ``WLSFit`` is available; ``x`` (the demeaned design,
    ``n x k_kept``) is formed only when something asks for it.
    """

    frequency = False

    def __init__(self, coef, names, kept, resid, fitted, weights, bread_inv, n_obs,
                 df_absorbed, r_squared, cell_x, row_pattern, row_time, unit_codes,
                 unit_pattern):
        self.coef, self.names, self.kept = coef, names, kept
        self.resid, self.fitted, self.weights = resid, fitted, weights
        self.bread_inv, self.n_obs, self.df_absorbed = bread_inv, n_obs, df_absorbed
        self.r_squared = r_squared
        self._cell_x = cell_x  # (patterns, periods, k_kept), demeaned
        self._row_pattern, self._row_time = row_pattern, row_time
        self._unit_codes, self._unit_pattern = unit_codes, unit_pattern

    @cached_property
    def x(self) -> np.ndarray:
        """The demeaned design of the kept columns, row by row (``n x k_kept``)."""
        return np.asfortranarray(self._cell_x[self._row_pattern, self._row_time])

    def cluster_influence(self, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
        """Influence values summed within clusters; by units (or clusters that are the
        units) without forming the design: per pattern, the units' weighted residuals
        (units x periods) times the pattern's design (periods x cells)."""
        if n_clusters != self._unit_pattern.size or not np.array_equal(cluster,
                                                                       self._unit_codes):
            u = self.weights * self.resid
            n_p, n_t, k = self._cell_x.shape
            if n_clusters * n_p * n_t <= 4 * u.size + PAIR_TABLE_SLACK:
                # each cluster's residual sums per (pattern, period), times the design
                key = (cluster * np.int64(n_p) + self._row_pattern) * n_t + self._row_time
                sums = np.bincount(key, weights=u, minlength=n_clusters * n_p * n_t)
                return (sums.reshape(n_clusters, n_p * n_t)
                        @ self._cell_x.reshape(n_p * n_t, k)) @ self.bread_inv
            totals = np.zeros((n_clusters, k))
            for start in range(0, u.size, 1 << 16):
                rows = slice(start, start + (1 << 16))
                part = self._cell_x[self._row_pattern[rows], self._row_time[rows]]
                for j in range(part.shape[1]):
                    totals[:, j] += np.bincount(cluster[rows], weights=part[:, j] * u[rows],
                                                minlength=n_clusters)
            return totals @ self.bread_inv
        n_units, n_t = self._unit_pattern.size, self._cell_x.shape[1]
        table = np.zeros((n_units, n_t))
        table[self._unit_codes, self._row_time] = self.weights * self.resid
        totals = np.empty((n_units, self._cell_x.shape[2]))
        for p in range(self._cell_x.shape[0]):
            units = np.flatnonzero(self._unit_pattern == p)
            totals[units] = table[units] @ self._cell_x[p]
        return totals @ self.bread_inv


def _distinct_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct rows, each row's index among them)`` of an integer table: rows are
    grouped by a random linear fingerprint and every row is checked against its group's
    first row (exact; a collision falls back to sorting the rows)."""
    mixer = np.random.default_rng(0).integers(1, 2**62, table.shape[1])
    with np.errstate(over="ignore"):
        fingerprint = table @ mixer
    _, first, inverse = np.unique(fingerprint, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if (table == table[first[inverse]]).all():
        return table[first], inverse
    distinct, inverse = np.unique(table, axis=0, return_inverse=True)
    return distinct, inverse.reshape(-1)


def grid_cell_fit(y, cells, n_cells, unit_codes, time_codes, weights, names,
                  rank_deficient_action="warn", max_patterns=None):
    """The WLS of ``y`` on one indicator per cell (``cells``: each row's, -1 none),
    absorbing units and periods, solved on the cells; None when the panel is not a
    balanced grid with weights constant within unit (or has too many patterns).

    Parameters
    ----------
    y : ndarray (n,)
    cells : ndarray of int (n,)
        Cell code 0..n_cells-1 of each row, -1 for rows without an indicator.
    n_cells : int
    unit_codes, time_codes : ndarray of int (n,)
        Codes 0..N-1 and 0..T-1.
    weights : ndarray (n,) or None
    names : list of str
        The cells' names (messages about collinear cells).
    rank_deficient_action : {"warn", "error", "silent"}
    max_patterns : int, optional
        Give up (None) above this many distinct patterns (default: a quarter of the units).

    Returns
    -------
    CellGridFit or None
    """
    y = np.asarray(y, dtype=float)
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=float)
    grid = two_way_grid([unit_codes, time_codes], w)
    if grid is None:
        return None
    n_units, n_t = grid.n_a, grid.n_b
    table = np.full((n_units, n_t), -1, dtype=np.int64)
    table[unit_codes, time_codes] = cells
    patterns, unit_pattern = _distinct_rows(table)
    n_p = patterns.shape[0]
    if n_p > (max_patterns if max_patterns is not None else max(n_units // 4, 1)):
        return None
    unit_w = np.zeros(n_units)
    unit_w[unit_codes] = w
    mass = np.bincount(unit_pattern, weights=unit_w, minlength=n_p)
    share = mass / mass.sum()
    design = np.zeros((n_p, n_t, n_cells))
    p_idx, t_idx = np.nonzero(patterns >= 0)
    design[p_idx, t_idx, patterns[p_idx, t_idx]] = 1.0
    # the grid's projection: x - unit mean - (weighted period mean - weighted grand mean)
    unit_mean = design.mean(axis=1)
    period_term = np.einsum("p,ptk->tk", share, design) - share @ unit_mean
    demeaned = design - unit_mean[:, None, :] - period_term[None, :, :]
    y_t = grid.demean(y, w)
    row_pattern = unit_pattern[unit_codes]
    sums = np.bincount(row_pattern * n_t + time_codes, weights=w * y_t,
                       minlength=n_p * n_t).reshape(n_p, n_t)
    gram = np.einsum("p,ptj,ptk->jk", mass, demeaned, demeaned)
    raw = np.einsum("p,ptj->j", mass, design)  # indicators: x * x = x
    keep = independent_columns(gram, scale=raw)
    _rank_check(keep, names, rank_deficient_action)
    cell_x = demeaned[:, :, keep]
    bread_inv = np.linalg.inv(gram[np.ix_(keep, keep)])
    coef_k = bread_inv @ np.einsum("ptj,pt->j", cell_x, sums)
    coef = np.full(n_cells, np.nan)
    coef[keep] = coef_k
    resid = y_t - (cell_x @ coef_k)[row_pattern, time_codes]
    fitted = y - resid
    positive = w > 0
    centred = y - np.average(y, weights=w)
    tss, rss = float(w @ (centred * centred)), float(w @ (resid * resid))
    return CellGridFit(
        coef=coef, names=list(names), kept=keep, resid=resid, fitted=fitted, weights=w,
        bread_inv=bread_inv, n_obs=float(positive.sum()), df_absorbed=n_units + n_t - 1,
        r_squared=1.0 - rss / tss if tss > 0 else np.nan, cell_x=cell_x,
        row_pattern=row_pattern, row_time=time_codes, unit_codes=unit_codes,
        unit_pattern=unit_pattern)


class SmallCellFit(CellGridFit):
    """A fit whose demeaned design is one row per cell (``cell_x``: cells x k_kept)."""

    def __init__(self, cell, **fields):
        super().__init__(row_pattern=cell, row_time=None, unit_codes=None, unit_pattern=None,
                         **fields)

    @cached_property
    def x(self) -> np.ndarray:
        return np.asfortranarray(self._cell_x[self._row_pattern])

    def cluster_influence(self, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
        n_c = self._cell_x.shape[0]
        sums = np.bincount(cluster * np.int64(n_c) + self._row_pattern,
                           weights=self.weights * self.resid,
                           minlength=n_clusters * n_c).reshape(n_clusters, n_c)
        return sums @ self._cell_x @ self.bread_inv


def small_cell_fit(y, cell, cell_design, cell_absorb, weights, names,
                   rank_deficient_action="warn"):
    """WLS of ``y`` on a design and absorbed effects that are functions of ``cell``.

    Parameters
    ----------
    y : ndarray (n,)
    cell : ndarray of int (n,)
        Cell code 0..C-1 of every row.
    cell_design : ndarray (C, k)
        The design row of each cell.
    cell_absorb : list of ndarray of int (C,)
        Each absorbed dimension's level of each cell.
    weights : ndarray (n,) or None
    names : list of str
    rank_deficient_action : {"warn", "error", "silent"}

    Returns
    -------
    SmallCellFit
        The fit :func:`~diff_diff.linalg.wls.wls` gives on the rows.
    """
    y = np.asarray(y, dtype=float)
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=float)
    n_c, k = cell_design.shape
    mass = np.bincount(cell, weights=w, minlength=n_c)
    sums = np.bincount(cell, weights=w * y, minlength=n_c)
    sizes = [int(c.max()) + 1 for c in cell_absorb]
    dummies = np.zeros((n_c, sum(sizes)))
    offset = 0
    for codes, size in zip(cell_absorb, sizes):
        dummies[np.arange(n_c), offset + codes] = 1.0
        offset += size
    root = np.sqrt(mass)[:, None]

    def project(values):  # the absorbed effects' weighted fit on the cells
        coef = np.linalg.lstsq(dummies * root, values * root, rcond=None)[0]
        return dummies @ coef

    y_mean = sums / np.where(mass > 0, mass, 1.0)
    y_t = y - project(y_mean[:, None])[:, 0][cell]
    x_t = cell_design - project(cell_design)
    gram = (x_t * mass[:, None]).T @ x_t
    raw = mass @ (cell_design * cell_design)
    keep = independent_columns(gram, scale=raw)
    _rank_check(keep, names, rank_deficient_action)
    cell_x = x_t[:, keep]
    bread_inv = np.linalg.inv(gram[np.ix_(keep, keep)])
    coef_k = bread_inv @ (cell_x.T @ np.bincount(cell, weights=w * y_t, minlength=n_c))
    coef = np.full(k, np.nan)
    coef[keep] = coef_k
    resid = y_t - (cell_x @ coef_k)[cell]
    positive = w > 0
    centred = y - np.average(y, weights=w)
    tss, rss = float(w @ (centred * centred)), float(w @ (resid * resid))
    return SmallCellFit(
        cell=cell, coef=coef, names=list(names), kept=keep, resid=resid, fitted=y - resid,
        weights=w, bread_inv=bread_inv, n_obs=float(positive.sum()),
        df_absorbed=absorbed_parameters(list(cell_absorb), mass, grid=None),
        r_squared=1.0 - rss / tss if tss > 0 else np.nan, cell_x=cell_x)
