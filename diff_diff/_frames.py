"""One place that checks the data frames users pass: every named column goes through here."""

from __future__ import annotations

import pandas as pd


# frames the estimators convert to pandas once, at fit (the module a frame's class is from)
CONVERTED = ("polars", "pyarrow", "duckdb", "pyspark", "narwhals", "dask", "modin", "ibis")


def as_pandas(data, name: str = "data"):
    """``data`` as a pandas DataFrame: a pandas frame as is; a Polars DataFrame or LazyFrame,
    a PyArrow table or any frame narwhals reads (DuckDB relation, Spark, ...) converted once
    (collected if lazy; column types kept as pandas maps them). Anything else is returned
    unchanged, for :func:`check_data` to refuse.

    Parameters
    ----------
    data : object
        The frame a user passed.
    name : str
        The argument's name in messages.
    """
    root = type(data).__module__.split(".")[0]
    if isinstance(data, pd.DataFrame) or root not in CONVERTED:
        return data
    if root == "pyarrow" and hasattr(data, "to_pandas"):
        return data.to_pandas()
    try:
        import narwhals as nw
    except ImportError:
        if root == "polars":  # polars converts itself (through pyarrow)
            return (data.collect() if hasattr(data, "collect") else data).to_pandas()
        raise ImportError(f"{name}: converting a {type(data).__module__}.{type(data).__name__} "
                          "to pandas needs narwhals: pip install 'diff-diff[engines]'") from None
    frame = nw.from_native(data)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    return frame.to_pandas()


def check_data(data, name: str = "data") -> None:
    """A pandas DataFrame with flat column labels (TypeError / ValueError otherwise)."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (or a Polars, PyArrow, DuckDB or "
                        f"Spark frame, converted once), got "
                        f"{type(data).__module__}.{type(data).__name__}")
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
