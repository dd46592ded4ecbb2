"""Fast group codes for key columns (no Python loop over rows or groups)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._frames import column


def group_codes(data: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Codes 0..G-1 of the groups of ``by`` (sorted by key) and the key table.

    Each column is factorized once (sorted labels); the combined code is the
    rank of the label tuple among the tuples that occur, so group g of the
    codes is row g of the returned key table. Missing labels raise a
    ``ValueError`` naming the column.
    """
    codes = []
    labels = []
    for col in by:
        c, lab = pd.factorize(column(data, col, f"by column {col!r}"), sort=True)
        if (c < 0).any():
            raise ValueError(f"by column {col!r} contains {int((c < 0).sum())} missing values")
        codes.append(c.astype(np.int64))
        labels.append(lab)
    sizes = tuple(len(lab) for lab in labels)
    flat = np.ravel_multi_index(codes, sizes) if len(codes) > 1 else codes[0]
    n_cells = int(np.prod(sizes, dtype=np.int64))
    if n_cells <= 4 * len(data) + 1024:
        present = np.bincount(flat, minlength=n_cells) > 0
        rank = np.cumsum(present) - 1
        occurring = np.flatnonzero(present)
        group = rank[flat]
    else:  # a sparse product of many labels: rank the occurring keys by sorting
        occurring, group = np.unique(flat, return_inverse=True)
    parts = np.unravel_index(occurring, sizes) if len(codes) > 1 else (occurring,)
    keys = pd.DataFrame({col: lab.take(part) for col, lab, part in zip(by, labels, parts)})
    return group.astype(np.int64), keys


def dense_rank(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..K-1 of non-negative integer ``keys`` below ``size``, and the K distinct keys.

    Ranks by a counting pass when ``size`` is comparable to the number of keys
    (no hashing, no sort), else by hashing. Distinct keys come out sorted in
    the counting path and in order of first appearance otherwise.
    """
    keys = np.asarray(keys, dtype=np.int64)
    if size <= 4 * keys.size + 1024:
        present = np.bincount(keys, minlength=size) > 0
        if present.all():  # already dense: the keys are their codes
            return keys, np.arange(size, dtype=np.int64)
        rank = np.cumsum(present) - 1
        return rank[keys], np.flatnonzero(present)
    codes, uniques = pd.factorize(keys)
    return codes.astype(np.int64), np.asarray(uniques, dtype=np.int64)


def group_sums(codes: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of ``values`` (n x k) by group code: (n_groups x k)."""
    values = np.asarray(values, dtype=float)
    return np.column_stack([np.bincount(codes, weights=values[:, j], minlength=n_groups)
                            for j in range(values.shape[1])]).reshape(n_groups, values.shape[1])


def codes_of(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..K-1 and sorted labels; integer labels in a compact range avoid hashing."""
    values = series.to_numpy()
    if values.dtype.kind in "iu" or (
        values.dtype.kind == "f" and np.isfinite(values).all() and (values == np.round(values)).all()
    ):
        low = values.min()
        offset = (values - low).astype(np.int64)
        codes, present = dense_rank(offset, int(offset.max()) + 1)
        if np.any(np.diff(present) < 0):  # hashed path: labels in order of appearance
            order = np.argsort(present, kind="stable")
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            codes, present = rank[codes], present[order]
        return codes, (present + low).astype(values.dtype)
    codes, labels = pd.factorize(series, sort=True)
    return codes.astype(np.int64), np.asarray(labels)


def any_occurrence(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """One row index per code (which one is unspecified): a representative row of each unit."""
    rows = np.empty(n_codes, dtype=np.int64)
    rows[codes] = np.arange(codes.size)
    return rows


def label_codes(data: pd.DataFrame, col: str, role: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`codes_of` for a role's column, refusing missing labels with a message naming it."""
    series = column(data, col, f"{role} column {col!r}")
    n_missing = int(series.isna().sum())
    if n_missing:
        raise ValueError(f"{role} column {col!r} has {n_missing} missing values")
    return codes_of(series)
