"""Column arguments and numeric columns of a data frame, checked with clear messages."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .._frames import column


def as_column_list(value, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"{name} must be a column name or a non-empty list of column names, got {value!r}")


def numeric_matrix(data: pd.DataFrame, variables: list[str]) -> np.ndarray:
    columns = []
    for col in variables:
        series = column(data, col, f"variable {col!r}")
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(float)
        elif not pd.api.types.is_numeric_dtype(series):
            raise ValueError(f"variable {col!r} must be numeric or boolean, got dtype {series.dtype}")
        values = series.to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(values).any():
            raise ValueError(f"variable {col!r} contains infinite values")
        columns.append(values)
    return np.column_stack(columns)
