"""One place that checks the data frames users pass: every named column goes through here."""

from __future__ import annotations

import pandas as pd


def check_data(data, name: str = "data") -> None:
    """A pandas DataFrame with flat column labels (TypeError / ValueError otherwise)."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(data).__name__}")
    if isinstance(data.columns, pd.MultiIndex):
        raise ValueError(f"{name} has MultiIndex (hierarchical) columns; flatten them first, "
                         "e.g. data.columns = ['_'.join(map(str, c)) for c in data.columns]")


def column(data: pd.DataFrame, col, what: str) -> pd.Series:
    """The column ``col`` of ``data``; ``what`` names it in messages (e.g. "outcome column 'y'").

    Refuses a missing column, and a name that several columns share (pandas would return
    a frame and fail later with an unrelated error).
    """
    check_data(data)
    if col not in data.columns:
        raise ValueError(f"{what} not found in data")
    matches = int((data.columns == col).sum())
    if matches > 1:
        raise ValueError(f"{what} is ambiguous: {matches} columns of data have that name; "
                         "rename the duplicates")
    return data[col]
