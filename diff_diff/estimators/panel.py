"""Long panel data to unit x period arrays, and the unit-level survey design."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._frames import check_data, column
from .._grouping import any_occurrence, codes_of, label_codes
from .._warnings import warn_user


@dataclass(frozen=True, eq=False)
class UnitPanel:
    """A balanced panel as arrays: ``y[i, j]`` is unit i's outcome in period ``times[j]``."""

    units: np.ndarray  # unit labels (n,)
    times: np.ndarray  # sorted periods (T,)
    y: np.ndarray  # (n, T)
    first_treat: np.ndarray  # (n,) first treated period, 0 for never treated
    x: np.ndarray | None  # (n, T, p) covariates, or None
    unit_rows: np.ndarray  # (n,) a row of ``data`` for each unit (its first)
    n_rows: int  # rows of data used


def require_columns(data: pd.DataFrame, **columns) -> None:
    """``data`` is a frame with rows, and each named column (by role) is there exactly once."""
    check_data(data)
    if len(data) == 0:
        raise ValueError("data has no rows")
    for role, col in columns.items():
        if col is None:
            continue
        cols = col if isinstance(col, list) else [col]
        for c in cols:
            if not isinstance(c, str):
                raise TypeError(f"{role} must be a column name, got {c!r}")
            column(data, c, f"{role} column {c!r}")


def numeric(data: pd.DataFrame, col: str, role: str, allow_nan: bool = False,
            allow_inf: bool = False) -> np.ndarray:
    """A numeric column as floats; missing values and infinities are errors unless allowed."""
    series = data[col]
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(float)
    if not pd.api.types.is_numeric_dtype(series):
        raise ValueError(f"{role} column {col!r} must be numeric, got dtype {series.dtype}")
    values = series.to_numpy(dtype=float, na_value=np.nan)
    if not allow_nan and np.isnan(values).any():
        raise ValueError(f"{role} column {col!r} has {int(np.isnan(values).sum())} missing values")
    if not allow_inf and np.isinf(values).any():
        raise ValueError(f"{role} column {col!r} has {int(np.isinf(values).sum())} infinite values")
    return values


def number_label(value):
    """A period or cohort for messages: an int when it is a whole number."""
    value = float(value)
    return int(value) if value.is_integer() else value


def check_constant_within_unit(values, unit_code, units, column: str,
                               role: str = "first_treat") -> np.ndarray:
    """Raise when ``values`` (one per row) vary within a unit; returns a row per unit."""
    rep = any_occurrence(unit_code, len(units))
    varies = values != values[rep][unit_code]
    if varies.any():
        bad = np.asarray(units)[np.unique(unit_code[varies])[:3]]
        raise ValueError(f"{role} column {column!r} varies within unit(s) {list(bad)}; it "
                         "must be constant within each unit")
    return rep


def check_one_row_per_cell(cell, units, times, name: str) -> None:
    """Raise when a (unit, period) cell code ``unit * T + period`` occurs twice."""
    n_t = len(times)
    counts = np.bincount(cell, minlength=len(units) * n_t)
    if (counts > 1).any():
        dup = np.flatnonzero(counts > 1)[0]
        raise ValueError(
            f"{name}: unit {units[dup // n_t]!r} appears more than once in period "
            f"{number_label(times[dup % n_t])}; the panel needs one row per unit and period")


def balanced_wide(data: pd.DataFrame, unit: str, time: str, values: dict, name: str):
    """Arrays of one value per row as units x periods matrices of a balanced panel (one
    row per unit and period, else a clear error): ``(codes, units, periods, wide,
    first_row)`` with ``codes`` each row's unit, ``wide`` the matrices by key and
    ``first_row`` a row of each unit."""
    t = numeric(data, time, "time")
    codes, units = label_codes(data, unit, "unit")
    periods = np.unique(t)
    n, n_t = len(units), periods.size
    pos = np.searchsorted(periods, t)
    if np.bincount(codes * n_t + pos, minlength=n * n_t).max() != 1 or len(data) != n * n_t:
        raise ValueError(f"{name}: the panel must be balanced (one row per unit and period)")
    wide = {}
    for key, value in values.items():
        wide[key] = np.empty((n, n_t))
        wide[key][codes, pos] = value
    first_row = np.zeros(n, dtype=np.int64)
    first_row[codes[::-1]] = np.arange(len(data))[::-1]
    return codes, units, periods, wide, first_row


def _first_treat(data: pd.DataFrame, column: str) -> np.ndarray:
    """First treated period per row: 0 for never treated (0 or inf in the data)."""
    g = numeric(data, column, "first_treat", allow_nan=True, allow_inf=True)
    if np.isnan(g).any():
        raise ValueError(f"first_treat column {column!r} has missing values; use 0 or inf "
                         "for never-treated units")
    if np.isinf(g).any():
        g = np.where(np.isinf(g) & (g > 0), 0.0, g)
    if (g < 0).any():
        raise ValueError(f"first_treat column {column!r} has negative values")
    return g


def build_unit_panel(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    first_treat: str,
    covariates: list[str] | None,
    name: str,
) -> UnitPanel:
    """Validate a long panel and pivot it; incomplete units are dropped with a warning."""
    y = numeric(data, outcome, "outcome", allow_nan=True)
    g = _first_treat(data, first_treat)
    unit_code, units = label_codes(data, unit, "unit")
    if data[time].dtype.kind in "iu":
        time_code, times = codes_of(data[time])
    else:
        time_code, times = codes_of(pd.Series(numeric(data, time, "time")))
    n, n_t = len(units), len(times)
    first_row = check_constant_within_unit(g, unit_code, units, first_treat)
    cell = unit_code * n_t + time_code
    sorted_balanced = cell.size == n * n_t and bool(np.all(cell == np.arange(cell.size)))
    if not sorted_balanced:
        check_one_row_per_cell(cell, units, times, name)
    if sorted_balanced:  # rows already in unit-period order: a reshape
        y_wide = y.reshape(n, n_t).copy()
    else:
        y_wide = np.full(n * n_t, np.nan)
        y_wide[cell] = y
        y_wide = y_wide.reshape(n, n_t)
    x_wide = None
    if covariates:
        x_wide = np.full((n * n_t, len(covariates)), np.nan)
        for j, c in enumerate(covariates):
            x_wide[cell, j] = numeric(data, c, "covariate", allow_nan=True)
        x_wide = x_wide.reshape(n, n_t, len(covariates))
    complete = ~np.isnan(y_wide).any(axis=1)
    if x_wide is not None:
        complete &= ~np.isnan(x_wide).any(axis=(1, 2))
    if not complete.all():
        dropped = int((~complete).sum())
        warn_user(
            f"{name}: dropped {dropped} unit(s) not observed (with outcome and covariates) in "
            f"every period, to balance the panel")
        if not complete.any():
            raise ValueError(f"{name}: no unit is observed in every period")
    keep = np.flatnonzero(complete)
    return UnitPanel(
        units=np.asarray(units)[keep],
        times=np.asarray(times, dtype=float),
        y=y_wide[keep],
        first_treat=g[first_row][keep],
        x=None if x_wide is None else x_wide[keep],
        unit_rows=first_row[keep],
        n_rows=int(np.bincount(unit_code, minlength=n)[keep].sum()),
    )


@dataclass(frozen=True, eq=False)
class RowData:
    """Observations as rows (repeated cross-sections or an unbalanced panel)."""

    y: np.ndarray  # (N,)
    time_code: np.ndarray  # (N,) index into times
    times: np.ndarray  # (T,)
    first_treat: np.ndarray  # (N,) 0 for never treated
    x: np.ndarray | None  # (N, p)
    unit_code: np.ndarray  # (N,) sampling unit of each row (the row itself for cross-sections)
    units: np.ndarray  # unit labels
    unit_rows: np.ndarray  # a row of ``data`` (its position there) for each unit
    rows: np.ndarray  # positions of the kept rows in ``data``


def build_rows(
    data: pd.DataFrame,
    outcome: str,
    unit: str | None,
    time: str,
    first_treat: str,
    covariates: list[str] | None,
    name: str,
) -> RowData:
    """Validate rows; drop rows with a missing outcome or covariate (with a warning)."""
    y = numeric(data, outcome, "outcome", allow_nan=True)
    t = numeric(data, time, "time")
    g = _first_treat(data, first_treat)
    x = None
    if covariates:
        x = np.column_stack([numeric(data, c, "covariate", allow_nan=True) for c in covariates])
    ok = ~np.isnan(y)
    if x is not None:
        ok &= ~np.isnan(x).any(axis=1)
    if not ok.all():
        warn_user(f"{name}: dropped {int((~ok).sum())} row(s) with a missing outcome or "
                  "covariate")
    keep = np.flatnonzero(ok)
    if keep.size == 0:
        raise ValueError(f"{name}: no row has the outcome and covariates")
    time_code, times = codes_of(pd.Series(t[keep]))
    if unit is None:
        unit_code = np.arange(keep.size)
        units = keep.copy()
    else:
        label_codes(data, unit, "unit")  # refuses missing unit labels
        unit_code, units = codes_of(data[unit].iloc[keep])
        check_constant_within_unit(g[keep], unit_code, units, first_treat)
        check_one_row_per_cell(unit_code * len(times) + time_code, units, times, name)
    return RowData(
        y=y[keep], time_code=time_code, times=np.asarray(times, dtype=float),
        first_treat=g[keep], x=None if x is None else x[keep], unit_code=unit_code,
        units=np.asarray(units), unit_rows=keep[any_occurrence(unit_code, len(units))], rows=keep,
    )
