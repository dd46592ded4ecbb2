"""The calibration model matrix, kept in structured form, and its grouped products.

A calibration constrains, within each group (e.g. state-year), the weighted
sums of auxiliary columns: indicators of the levels of categorical margins
and numeric auxiliaries. The model matrix is never formed densely: categorical
blocks are level codes and products are grouped ``np.bincount`` calls, so a
Newton step costs a few passes over the data whatever the number of groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True, eq=False)
class Block:
    """One margin: ``codes`` (-1: no column) for categorical, ``values`` for numeric."""

    name: str
    offset: int
    width: int
    codes: np.ndarray | None = None
    values: np.ndarray | None = None

    @property
    def categorical(self) -> bool:
        return self.codes is not None


@dataclass(frozen=True, eq=False)
class ModelMatrix:
    """Grouped, block-structured calibration model matrix (n rows, p columns).

    Rows whose categorical code is -1 have no column in that block; they are
    routed to a discarded slot, so no product needs a boolean mask.
    """

    group: np.ndarray  # (n,) group code of each row
    n_groups: int
    blocks: tuple[Block, ...]
    n_cols: int

    @cached_property
    def _slots(self) -> dict:
        """Per categorical block: ``group * (width + 1) + code + 1`` (slot 0 discarded)."""
        return {
            i: self.group * (b.width + 1) + (b.codes + 1)
            for i, b in enumerate(self.blocks)
            if b.categorical
        }

    @cached_property
    def _coef_index(self) -> dict:
        """Per categorical block: index into ``coef.ravel()`` with a trailing zero slot."""
        size = self.n_groups * self.n_cols
        return {
            i: np.where(b.codes >= 0, self.group * self.n_cols + b.offset + b.codes, size)
            for i, b in enumerate(self.blocks)
            if b.categorical
        }

    @cached_property
    def _pair_keys(self) -> dict:
        keys = {}
        for i, a in enumerate(self.blocks):
            for j in range(i, len(self.blocks)):
                b = self.blocks[j]
                if a.categorical and b.categorical:
                    keys[i, j] = self._slots[i] * (b.width + 1) + (b.codes + 1)
        return keys

    def collapse(self) -> tuple[np.ndarray, ModelMatrix]:
        """``(pattern, model)``: the model on the distinct (group, x) rows, and each row's
        pattern.

        Calibration weight ratios are functions of ``x`` within a group, and every
        grouped product is a sum over rows, so a calibration on rows equals one on
        patterns weighted by the rows' summed weights (``np.bincount(pattern, d)``).
        With categorical margins only there are at most groups x level combinations.
        """
        key = self.group.astype(np.int64)
        radix = np.int64(self.n_groups)
        keys = []
        for b in self.blocks:
            codes = b.codes + 1 if b.categorical else np.unique(b.values, return_inverse=True)[1]
            size = np.int64((b.width + 1) if b.categorical else codes.max() + 1)
            if radix > np.iinfo(np.int64).max // max(size, 1):  # the key would overflow
                keys.append(key)
                key, radix = np.zeros_like(key), np.int64(1)
            key, radix = key * size + codes, radix * size
        if keys:
            _, first, pattern = np.unique(np.column_stack(keys + [key]), axis=0,
                                          return_index=True, return_inverse=True)
        else:
            _, first, pattern = np.unique(key, return_index=True, return_inverse=True)
        pattern = pattern.reshape(-1)
        return pattern, ModelMatrix(group=self.group[first], n_groups=self.n_groups,
                                    blocks=tuple(_take_block(b, first) for b in self.blocks),
                                    n_cols=self.n_cols)

    def linear_predictor(self, coef: np.ndarray) -> np.ndarray:
        """``x_i' coef[group_i]`` for every row; ``coef`` is (G, p)."""
        flat = np.append(coef.ravel(), 0.0)
        eta = np.zeros(self.group.shape[0])
        for i, b in enumerate(self.blocks):
            if b.categorical:
                eta += flat[self._coef_index[i]]
            else:
                eta += coef[self.group, b.offset] * b.values
        return eta

    def row_products(self, coef: np.ndarray) -> np.ndarray:
        """``x_i' coef[group_i]`` for coefficients with a trailing axis: (G, p, k) -> (n, k)."""
        k = coef.shape[2]
        flat = np.vstack([coef.reshape(-1, k), np.zeros((1, k))])
        out = np.zeros((self.group.shape[0], k))
        for i, b in enumerate(self.blocks):
            if b.categorical:
                out += flat[self._coef_index[i]]
            else:
                out += coef[self.group, b.offset] * b.values[:, None]
        return out

    def grouped_xtv(self, v: np.ndarray) -> np.ndarray:
        """``sum_{i in g} v_i x_i`` for every group: (G, p)."""
        g, n_groups = self.group, self.n_groups
        out = np.zeros((n_groups, self.n_cols))
        for i, b in enumerate(self.blocks):
            if b.categorical:
                sums = np.bincount(self._slots[i], weights=v, minlength=n_groups * (b.width + 1))
                out[:, b.offset:b.offset + b.width] = sums.reshape(n_groups, b.width + 1)[:, 1:]
            else:
                out[:, b.offset] = np.bincount(g, weights=v * b.values, minlength=n_groups)
        return out

    def grouped_xtvx(self, v: np.ndarray) -> np.ndarray:
        """``sum_{i in g} v_i x_i x_i'`` for every group: (G, p, p)."""
        out = np.zeros((self.n_groups, self.n_cols, self.n_cols))
        for i, a in enumerate(self.blocks):
            for j in range(i, len(self.blocks)):
                b = self.blocks[j]
                block = self._cross(i, j, v)
                out[:, a.offset:a.offset + a.width, b.offset:b.offset + b.width] = block
                out[:, b.offset:b.offset + b.width, a.offset:a.offset + a.width] = (
                    block.transpose(0, 2, 1)
                )
        return out

    def _cross(self, i: int, j: int, v: np.ndarray) -> np.ndarray:
        a, b = self.blocks[i], self.blocks[j]
        g, n_groups = self.group, self.n_groups
        if a.categorical and b.categorical:
            if i == j:  # indicators of one margin: diagonal
                diag = np.bincount(self._slots[i], weights=v, minlength=n_groups * (a.width + 1))
                diag = diag.reshape(n_groups, a.width + 1)[:, 1:]
                out = np.zeros((n_groups, a.width, a.width))
                idx = np.arange(a.width)
                out[:, idx, idx] = diag
                return out
            size = n_groups * (a.width + 1) * (b.width + 1)
            full = np.bincount(self._pair_keys[i, j], weights=v, minlength=size)
            return full.reshape(n_groups, a.width + 1, b.width + 1)[:, 1:, 1:]
        if a.categorical or b.categorical:
            c, cat, num = (i, a, b) if a.categorical else (j, b, a)
            block = np.bincount(
                self._slots[c], weights=v * num.values, minlength=n_groups * (cat.width + 1)
            ).reshape(n_groups, cat.width + 1, 1)[:, 1:, :]
            return block if a.categorical else block.transpose(0, 2, 1)
        return np.bincount(g, weights=v * a.values * b.values, minlength=n_groups).reshape(
            n_groups, 1, 1
        )


def solve_grouped(matrices: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``matrices[g] x = rhs[g]`` for every group, by pseudo-inverse.

    Columns that are zero in a group (a level without respondents, or rows
    clipped at a bound) are left out of that group's system, as a generalized
    inverse does; ``rhs`` may be (G, p) or (G, p, k).
    """
    squeeze = rhs.ndim == 2
    if squeeze:
        rhs = rhs[:, :, None]
    diag = np.abs(np.einsum("gii->gi", matrices))
    scale = np.where(diag > 0, np.sqrt(diag), 1.0)
    scaled = matrices / scale[:, :, None] / scale[:, None, :]
    b = rhs / scale[:, :, None]
    out = np.empty_like(b)
    # a direct solve where the unit-diagonal matrix is safely positive definite (every
    # Cholesky pivot >= 1e-8; a zero column is set aside with a unit diagonal and a zero
    # right-hand side, as the generalized inverse does); the pseudo-inverse elsewhere
    empty = diag == 0
    direct = np.zeros(len(matrices), dtype=bool)
    if len(matrices):
        padded = scaled + np.einsum("gi,ij->gij", empty, np.eye(scaled.shape[1]))
        direct = _safely_definite(padded)
    if direct.any():
        out[direct] = np.linalg.solve(padded[direct], np.where(empty[direct][:, :, None], 0.0,
                                                                b[direct]))
    if not direct.all():
        rest = ~direct
        pinv = np.linalg.pinv(scaled[rest], rcond=1e-12, hermitian=True)
        out[rest] = pinv @ b[rest]
    out = out / scale[:, :, None]
    return out[:, :, 0] if squeeze else out


@dataclass(frozen=True, eq=False)
class CalibrationProjection:
    """Calibration residuals of influence values (Deville-Sarndal linearization).

    With design weights ``d``, calibrated analysis weights ``w`` and model
    matrix ``X`` (block-diagonal by calibration group), an influence value
    ``psi_i = w_i u_i`` is replaced by ``w_i (u_i - x_i' b_g)`` where ``b_g``
    is the ``d``-weighted least-squares fit of ``u`` on ``X`` in group g (R
    ``survey``'s g-calibration: ``qr.resid`` on ``X sqrt(d)``).
    """

    model: ModelMatrix
    design_weights: np.ndarray  # d
    weights: np.ndarray  # w (analysis scale, as at calibration)
    gram_inverse: np.ndarray  # (G, p, p) generalized inverse of X_g' D X_g

    @classmethod
    def build(cls, model: ModelMatrix, design_weights: np.ndarray, weights: np.ndarray):
        gram = model.grouped_xtvx(design_weights)
        eye = np.broadcast_to(np.eye(model.n_cols), gram.shape)
        return cls(model, design_weights, weights, solve_grouped(gram, eye.copy()))

    def _per_unit(self, psi: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``psi / w`` row by row (0 where w = 0); ``rows``: the design rows ``psi`` holds."""
        w = (self.weights if rows is None else self.weights[rows])[:, None]
        return np.divide(psi, w, out=np.zeros_like(psi), where=w > 0)

    def residualize(self, psi: np.ndarray) -> np.ndarray:
        """Calibration residuals of an (n, k) influence matrix."""
        u = self._per_unit(psi)
        du = self.design_weights[:, None] * u
        xtu = np.stack([self.model.grouped_xtv(du[:, j]) for j in range(u.shape[1])], axis=2)
        coef = self.gram_inverse @ xtu  # (G, p, k)
        return psi - self.weights[:, None] * self.model.row_products(coef)

    def residualize_domains(
        self, psi: np.ndarray, domain: np.ndarray, psu: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Residuals of domain influence values, as (PSU, domain, value) entries.

        ``psi`` (n, k) holds each row's influence for its own domain ``domain``
        (-1: none); ``psu`` is each row's PSU code. After calibration a
        domain's residuals spread over every row of the calibration groups it
        touches; only their PSU totals matter for the variance, so for every
        (group, domain) pair the correction is summed per PSU of the group:
        ``-(sum_{i in PSU, group} w_i x_i)' b_{group, domain}``. The rows' own
        values are returned as entries too (the variance kernel sums entries
        by PSU).
        """
        model = self.model
        inside = np.flatnonzero(domain >= 0)
        n_domains = int(domain.max()) + 1 if inside.size else 1
        pair_of_row, keys = _factorize(model.group[inside] * np.int64(n_domains) + domain[inside])
        n_pairs = keys.shape[0]
        pair_group = keys // n_domains
        pair_domain = keys % n_domains
        u = self._per_unit(psi[inside], inside)
        du = self.design_weights[inside, None] * u
        by_pair = ModelMatrix(
            group=pair_of_row,
            n_groups=n_pairs,
            blocks=tuple(_take_block(b, inside) for b in model.blocks),
            n_cols=model.n_cols,
        )
        xtu = np.stack([by_pair.grouped_xtv(du[:, j]) for j in range(u.shape[1])], axis=2)
        coef = self.gram_inverse[pair_group] @ xtu  # (pairs, p, k)
        # PSU totals of w x within each calibration group: (group, PSU) cells
        n_psu = int(psu.max()) + 1
        cell_of_row, cell_keys = _factorize(model.group * np.int64(n_psu) + psu)
        by_cell = ModelMatrix(group=cell_of_row, n_groups=cell_keys.shape[0],
                              blocks=model.blocks, n_cols=model.n_cols)
        wx = by_cell.grouped_xtv(self.weights)  # (cells, p)
        cell_group = cell_keys // n_psu
        cell_psu = cell_keys % n_psu
        order = np.argsort(cell_group, kind="stable")
        sizes = np.bincount(cell_group, minlength=model.n_groups)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        reps = sizes[pair_group]
        m = int(reps.sum())
        first = np.repeat(np.cumsum(reps) - reps, reps)
        cells = order[np.repeat(starts[pair_group], reps) + (np.arange(m) - first)]
        pair_of_entry = np.repeat(np.arange(n_pairs), reps)
        correction = -np.einsum("mp,mpk->mk", wx[cells], coef[pair_of_entry])
        psus = np.concatenate([psu[inside], cell_psu[cells]])
        domains = np.concatenate([domain[inside], pair_domain[pair_of_entry]])
        values = np.concatenate([psi[inside], correction])
        return psus, domains, values


def _safely_definite(matrices: np.ndarray) -> np.ndarray:
    """Which unit-diagonal matrices have every Cholesky pivot >= 1e-8."""
    try:
        return (np.einsum("gii->gi", np.linalg.cholesky(matrices)) ** 2).min(axis=1) >= 1e-8
    except np.linalg.LinAlgError:  # one is not positive definite: find which, one by one
        out = np.zeros(len(matrices), dtype=bool)
        for k, m in enumerate(matrices):
            try:
                out[k] = (np.diag(np.linalg.cholesky(m)) ** 2).min() >= 1e-8
            except np.linalg.LinAlgError:
                pass
        return out


def _factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inverse = np.unique(keys, return_inverse=True)
    return inverse.astype(np.int64), uniq.astype(np.int64)


def _take_block(block: Block, rows: np.ndarray) -> Block:
    if block.categorical:
        return Block(block.name, block.offset, block.width, codes=block.codes[rows])
    return Block(block.name, block.offset, block.width, values=block.values[rows])
