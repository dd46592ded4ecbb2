"""Calibration-aware variance of pushed-down means and totals (a calibrated engine design).

After calibration the influence value ``w_i u_i`` of a domain estimate is replaced by its
calibration residual ``w_i (u_i - x_i' b_g)``, ``b_g`` the design-weighted least-squares
fit of ``u`` on the calibration model in group g (R's g-calibration linearization; the
in-memory code is :class:`~diff_diff.survey.calibration_model.CalibrationProjection`).
The residual is linear in the model's terms, so everything the variance needs is a sum
over rows within (cell, calibration group, categorical margin levels, stratum[, PSU]):

* ``b`` from sums of ``d x u`` (``d``: design weights) per (cell, group) and the Gram
  matrix ``sum d x x'`` per group;
* the PSU totals of the residuals from sums of ``w`` and ``w x`` per (group, PSU) (the
  correction ``-(sum_{i in PSU} w_i x_i)' b``) beside the PSU totals of ``w u``;
* without PSUs (each row its own PSU): the (cell, stratum) moments of the residuals from
  sums of ``w^2``, ``w^2 x``, ``w^2 x x'``, ``w^2 u x`` and ``w^2 u^2``.

One grouped scan (keys: cell, group, margin levels, stratum, PSU) returns these sums; the
standard statistics table is its aggregate, and the variance is finished here with the
in-memory kernels (:func:`~diff_diff.inference.tsl.domain_tsl_variance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..inference.tsl import domain_tsl_variance, lonely_inflation, stratum_weights
from ..survey.calibration_model import ModelMatrix, Block, solve_grouped

INTERCEPT = "(Intercept)"


@dataclass(frozen=True, eq=False)
class CalibratedTable:
    """The fine table of a calibrated design's scan and how it maps to the standard one."""

    table: pd.DataFrame  # one row per (cell, group, levels, stratum[, PSU])
    row: np.ndarray  # each fine row's row in the standard (aggregated) table
    info: object  # CalibrationInfo
    numeric: tuple  # numeric margins (the intercept included)


def scan_spec(design, info, outcomes, layout):
    """Extra keys, formed columns and sums of the calibrated scan (narwhals expressions)."""
    import narwhals as nw

    from ..survey._engine import P

    f64 = nw.Float64
    d = (nw.col(info.design_weights).cast(f64) if info.design_weights
         else nw.lit(1.0, dtype=f64))
    numeric = [m for m, kind, _ in info.margins if kind == "numeric"]
    cats = [m for m, kind, _ in info.margins if kind == "categorical"]
    cols = {f"{P}cd": d}
    for k, m in enumerate(numeric):
        cols[f"{P}calx{k}"] = nw.lit(1.0, dtype=f64) if m == INTERCEPT else nw.col(m).cast(f64)
    w = nw.col(f"{P}w")
    for j in range(len(outcomes)):
        cols[f"{P}vp{j}"] = nw.col(f"{P}v{j}") * (w > 0).cast(f64)
    dc = nw.col(f"{P}cd")
    x = [nw.col(f"{P}calx{k}") for k in range(len(numeric))]
    sums = {"cal_cd": dc}
    for k in range(len(numeric)):
        sums[f"cal_cdx{k}"] = dc * x[k]
        sums[f"cal_cwx{k}"] = w * x[k]
        for m in range(k, len(numeric)):
            sums[f"cal_cdxx{k}_{m}"] = dc * x[k] * x[m]
    for j in range(len(outcomes)):
        vp, y = nw.col(f"{P}vp{j}"), nw.col(f"{P}y{j}")
        sums[f"cal_cdv{j}"] = dc * vp
        sums[f"cal_cdy{j}"] = dc * vp * y
        for k in range(len(numeric)):
            sums[f"cal_cdvx{j}_{k}"] = dc * vp * x[k]
            sums[f"cal_cdyx{j}_{k}"] = dc * vp * y * x[k]
    if layout == "moments":
        w2 = w * w
        for k in range(len(numeric)):
            sums[f"cal_cw2x{k}"] = w2 * x[k]
            for m in range(k, len(numeric)):
                sums[f"cal_cw2xx{k}_{m}"] = w2 * x[k] * x[m]
        for j in range(len(outcomes)):
            v, y = nw.col(f"{P}v{j}"), nw.col(f"{P}y{j}")
            for k in range(len(numeric)):
                sums[f"cal_cw2vx{j}_{k}"] = w2 * v * x[k]
                sums[f"cal_cw2yx{j}_{k}"] = w2 * y * x[k]
    keys = list(info.by) + cats
    return keys, cols, sums, tuple(numeric)


def aggregate_standard(fine: pd.DataFrame, keys: list[str]):
    """The standard statistics table (grouped by ``keys``) and each fine row's row in it."""
    rule = {c: c.split(":")[0] for c in fine.columns
            if c.startswith(("sum:", "min:", "max:")) and not _own(c)}
    if not keys:
        table = fine[list(rule)].agg(rule).to_frame().T.reset_index(drop=True)
        return table, np.zeros(len(fine), dtype=np.int64)
    grouped = fine.groupby(keys, dropna=False, sort=False)
    row = grouped.ngroup().to_numpy(dtype=np.int64)
    table = grouped.agg(rule).reset_index()
    return table, row


def _own(c: str) -> bool:
    name = c.split(":", 1)[1]
    return name.startswith("cal_")


class _Model:
    """The calibration model on the fine table's rows, with products from its sums."""

    def __init__(self, cal: CalibratedTable):
        from .._grouping import group_codes

        t = cal.table
        info = cal.info
        if info.by:
            self.group, _ = group_codes(t, list(info.by))
        else:
            self.group = np.zeros(len(t), dtype=np.int64)
        self.n_groups = int(self.group.max()) + 1
        blocks, offset, first = [], 0, True
        colidx = []
        for name, kind, levels in info.margins:
            if kind == "numeric":
                blocks.append(Block(name, offset, 1, values=np.ones(len(t))))
                offset += 1
                continue
            codes = pd.Categorical(t[name], categories=list(levels)).codes.astype(np.int64)
            if (codes < 0).any():
                raise ValueError(f"calibrated design: margin column {name!r} has values "
                                 "outside the calibrated levels")
            width = len(levels) if first else len(levels) - 1
            c = codes if first else codes - 1
            blocks.append(Block(name, offset, width, codes=c))
            colidx.append(np.where(c >= 0, offset + c, -1))
            offset += width
            first = False
        self.blocks, self.p = tuple(blocks), offset
        self.colidx = np.column_stack(colidx) if colidx else np.zeros((len(t), 0), np.int64)
        self.num_off = [b.offset for b in blocks if not b.categorical]
        self.t = t

    def matrix(self, group, n_groups):
        return ModelMatrix(group=group, n_groups=n_groups, blocks=self.blocks, n_cols=self.p)

    def xtv(self, group, n_groups, s0, s1):
        """``sum v x`` per group from ``s0 = sum v`` and ``s1[k] = sum v x_k``."""
        out = self.matrix(group, n_groups).grouped_xtv(s0)
        for k, off in enumerate(self.num_off):
            out[:, off] = np.bincount(group, weights=s1[k], minlength=n_groups)
        return out

    def gram(self, s0, s1, s2):
        """``sum d x x'`` per calibration group."""
        group, G = self.group, self.n_groups
        model = self.matrix(group, G)
        out = model.grouped_xtvx(s0)
        for k, a in enumerate(self.num_off):
            for i, b in enumerate(self.blocks):
                if b.categorical:
                    block = np.bincount(model._slots[i], weights=s1[k],
                                        minlength=G * (b.width + 1))
                    block = block.reshape(G, b.width + 1)[:, 1:]
                    out[:, b.offset:b.offset + b.width, a] = block
                    out[:, a, b.offset:b.offset + b.width] = block
            for m, b in enumerate(self.num_off):
                lo, hi = min(k, m), max(k, m)
                out[:, a, b] = np.bincount(group, weights=s2[lo, hi], minlength=G)
        return out

    def e_dot(self, rows, coef):
        """``e_k' b`` (the categorical part of ``x' b``) for fine rows and coefficient rows."""
        pad = np.hstack([coef, np.zeros((coef.shape[0], 1))])
        idx = np.where(self.colidx[rows] >= 0, self.colidx[rows], self.p)
        return pad[np.arange(len(rows))[:, None], idx].sum(axis=1) if idx.size else \
            np.zeros(len(rows))


def calibrated_variance(fin, kind: str, j: int) -> np.ndarray:
    """Calibration-aware Taylor variance of every cell's mean or total of outcome ``j``."""
    cal = fin.stats.calibration
    t = cal.table
    col = lambda name: t[name].to_numpy(dtype=float)  # noqa: E731
    q = len(cal.numeric)
    model = _Model(cal)
    r = cal.row
    c = fin.cell[r]
    D = fin.n_cells
    S = np.bincount(fin.cell, weights=fin.col(f"sum:sw{j}"), minlength=D)
    has = S > 0
    Sd = np.where(has, S, 1.0)
    T = np.bincount(fin.cell, weights=fin.col(f"sum:swy{j}"), minlength=D)
    m = np.where(has, T / Sd, 0.0) if kind == "mean" else np.zeros(D)
    mean = kind == "mean"
    inv = np.where(has, 1.0 / Sd, 0.0) if mean else np.ones(D)
    # b per (cell, group) pair: Ginv_g sum d x u
    s1 = {}
    s2 = {}
    for k in range(q):
        s1[k] = col(f"sum:cal_cdx{k}")
        for k2 in range(k, q):
            s2[k, k2] = col(f"sum:cal_cdxx{k}_{k2}")
    gram = model.gram(col("sum:cal_cd"), s1, s2)
    eye = np.broadcast_to(np.eye(model.p), gram.shape)
    ginv = solve_grouped(gram, eye.copy())
    pair, pair_keys = np.unique(c * np.int64(model.n_groups) + model.group, return_inverse=True)
    pair_keys, pair = pair, pair_keys.astype(np.int64)
    n_pairs = len(pair_keys)
    pair_cell = pair_keys // model.n_groups
    pair_group = pair_keys % model.n_groups
    u0 = (col(f"sum:cal_cdy{j}") - m[c] * col(f"sum:cal_cdv{j}")) * inv[c]
    u1 = [(col(f"sum:cal_cdyx{j}_{k}") - m[c] * col(f"sum:cal_cdvx{j}_{k}")) * inv[c]
          for k in range(q)]
    tvec = model.xtv(pair, n_pairs, u0, u1)
    b = np.einsum("gpq,gq->gp", ginv[pair_group], tvec)
    # every fine row with every pair of its calibration group
    rows_of = pd.DataFrame({"k": np.arange(len(t)), "g": model.group})
    pairs_of = pd.DataFrame({"pair": np.arange(n_pairs), "g": pair_group})
    link = rows_of.merge(pairs_of, on="g")
    k_idx = link["k"].to_numpy(dtype=np.int64)
    p_idx = link["pair"].to_numpy(dtype=np.int64)
    bk = b[p_idx]
    eb = model.e_dot(k_idx, bk)
    num_b = [bk[:, off] for off in model.num_off]
    corr = col("sum:w")[k_idx] * eb
    for k in range(q):
        corr = corr + col(f"sum:cal_cwx{k}")[k_idx] * num_b[k]
    corr = -corr
    z = (col(f"sum:swy{j}") - m[c] * col(f"sum:sw{j}")) * inv[c]
    if fin.stats.layout == "psu":
        psu = fin.psu[r]
        values = np.concatenate([z, corr])
        doms = np.concatenate([c, pair_cell[p_idx]])
        psus = np.concatenate([psu, psu[k_idx]])
        return domain_tsl_variance(values, doms, D, fin.skeleton, psu=psus,
                                   all_strata_present=True)[:, 0]
    # each row its own PSU: (cell, stratum) moments of the residuals
    h = fin.stratum[r]
    sk = fin.skeleton
    H = sk.n_strata
    A = np.bincount(c * H + h, weights=z, minlength=D * H)
    A += np.bincount(pair_cell[p_idx] * H + h[k_idx], weights=corr, minlength=D * H)
    if mean:
        psi2 = (col(f"sum:s2wy2{j}") - 2 * m[c] * col(f"sum:s2wy{j}")
                + m[c] ** 2 * col(f"sum:s2w{j}")) * inv[c] ** 2
    else:
        psi2 = col(f"sum:s2wy2{j}")
    B = np.bincount(c * H + h, weights=psi2, minlength=D * H)
    own = pair_cell[p_idx] == c[k_idx]  # the pair of the row's own cell: the cross term
    ko = k_idx[own]
    cross_y = col(f"sum:s2wy{j}")[ko] * eb[own]
    cross_v = col(f"sum:s2w{j}")[ko] * eb[own]
    for k in range(q):
        cross_y = cross_y + col(f"sum:cal_cw2yx{j}_{k}")[ko] * num_b[k][own]
        cross_v = cross_v + col(f"sum:cal_cw2vx{j}_{k}")[ko] * num_b[k][own]
    cross = (cross_y - m[c[ko]] * cross_v) * inv[c[ko]]
    B -= 2 * np.bincount(c[ko] * H + h[ko], weights=cross, minlength=D * H)
    sq = col("sum:w2")[k_idx] * eb ** 2
    for k in range(q):
        sq = sq + 2 * eb * col(f"sum:cal_cw2x{k}")[k_idx] * num_b[k]
        for k2 in range(q):
            lo, hi = min(k, k2), max(k, k2)
            sq = sq + col(f"sum:cal_cw2xx{lo}_{hi}")[k_idx] * num_b[k] * num_b[k2]
    B += np.bincount(pair_cell[p_idx] * H + h[k_idx], weights=sq, minlength=D * H)
    A, B = A.reshape(D, H), B.reshape(D, H)
    scale, centred, lonely = stratum_weights(sk.stratum_n_psu, sk.stratum_fpc, sk.lonely_psu)
    n_h = sk.stratum_n_psu.astype(float)
    mh = np.where(centred[None, :], A / np.where(n_h > 0, n_h, 1.0)[None, :], 0.0)
    ss = B - 2 * mh * A + n_h[None, :] * mh ** 2
    out = (ss * scale[None, :]).sum(axis=1)
    present = np.ones((H, D), dtype=bool)
    return out * lonely_inflation(present, lonely, sk.lonely_psu)
