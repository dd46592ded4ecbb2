"""Opening the data where they live (narwhals), and joining small tables into them.

Shared by the pushed-down survey statistics (``diff_diff.statistics``) and calibration on
an engine (:mod:`diff_diff.survey.calibration_engine`). narwhals, polars, duckdb and
pyarrow are imported inside functions, never when ``diff_diff`` is imported.
"""

from __future__ import annotations

import importlib.util
import os

import pandas as pd

ENGINES = ("pandas", "polars", "duckdb")

# prefix of every column the scan creates (keeps clear of the user's names)
P = "__dd_"


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _need(name: str, why: str):
    if not _installed(name):
        raise ImportError(f"{why} needs the {name!r} package: pip install 'diff-diff[engines]'")
    return importlib.import_module(name)


def file_engine(engine: str | None) -> str:
    """The engine that reads a Parquet path: the forced one, else DuckDB, else Polars."""
    if engine in ("duckdb", "polars"):
        return engine
    for name in ("duckdb", "polars"):
        if _installed(name):
            return name
    raise ImportError("reading a Parquet path needs DuckDB or Polars: "
                      "pip install 'diff-diff[engines]'")


def open_input(data, engine: str | None):
    """``(kind, frame, engine_name)``: kind ``"pandas"`` (a pandas DataFrame for the
    in-memory path) or ``"narwhals"`` (a narwhals frame to scan)."""
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES)} or None, got {engine!r}")
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        reader = file_engine(engine)
        if reader == "duckdb":
            native = _need("duckdb", "a Parquet path").read_parquet(path)
        else:
            native = _need("polars", "a Parquet path").scan_parquet(path)
        frame = _wrap(native)
        if engine == "pandas":
            return "pandas", _to_pandas(frame), "pandas"
        return "narwhals", frame, reader
    if isinstance(data, pd.DataFrame):
        if engine in (None, "pandas"):
            return "pandas", data, "pandas"
        if engine == "polars":
            return "narwhals", _wrap(_need("polars", "engine='polars'").from_pandas(data)), engine
        return "narwhals", _wrap(_need("duckdb", "engine='duckdb'").from_df(data)), engine
    root = type(data).__module__.split(".")[0]
    if root == "pyarrow" and engine in ("polars", "duckdb"):
        if engine == "polars":
            native = _need("polars", "engine='polars'").from_arrow(data).lazy()
        else:
            native = _need("duckdb", "engine='duckdb'").from_arrow(data)
        return "narwhals", _wrap(native), engine
    frame = _wrap(data)
    own = str(frame.implementation).rsplit(".", 1)[-1].lower()
    if engine == "pandas":
        return "pandas", _to_pandas(frame), "pandas"
    if engine is not None and engine != own:
        raise ValueError(
            f"engine={engine!r} does not match the input, a {type(data).__module__}."
            f"{type(data).__name__} (engine {own!r}); pass engine=None to compute where the "
            "data are, or convert the data yourself")
    return "narwhals", frame, own


def _wrap(native):
    if not _installed("narwhals"):
        raise ImportError(
            f"data of type {type(native).__name__} needs narwhals (the dataframe-agnostic "
            "layer): pip install 'diff-diff[engines]'; or pass a pandas DataFrame")
    import narwhals as nw

    try:
        return nw.from_native(native)
    except TypeError:
        raise TypeError(
            f"data must be a pandas DataFrame, a frame narwhals reads (Polars, DuckDB, "
            f"PyArrow, ...), a Parquet path or SurveyStatistics; got {type(native).__name__}"
        ) from None


def _collect(frame):
    import narwhals as nw

    if isinstance(frame, nw.LazyFrame):
        if str(frame.implementation).endswith("POLARS"):
            return frame.collect(engine="streaming")
        return frame.collect()
    return frame


def to_pandas_small(frame) -> pd.DataFrame:
    """A small (aggregated) narwhals frame as pandas, column by column (no pyarrow needed)."""
    done = _collect(frame)
    return pd.DataFrame({c: done.get_column(c).to_numpy() for c in done.columns})


def _to_pandas(frame) -> pd.DataFrame:
    return to_pandas_small(frame)


# ---------------------------------------------------------------------------
# the scan
# ---------------------------------------------------------------------------
def schema_of(frame) -> dict:
    return dict(frame.collect_schema())


def check_columns(schema: dict, named: list[tuple[str, str]]) -> None:
    """``named``: (what, column). Same messages as the in-memory path."""
    for what, col in named:
        if col not in schema:
            raise ValueError(f"{what} not found in data")


def check_numeric(schema: dict, col: str, what: str, allow_bool: bool) -> None:
    dtype = schema[col]
    is_bool = str(dtype) == "Boolean"
    if (is_bool and not allow_bool) or not (dtype.is_numeric() or is_bool):
        raise ValueError(f"{what} must be numeric{' or boolean' if allow_bool else ''}, "
                         f"got dtype {dtype}")


def _valid(col: str, schema: dict):
    """Not missing (null, or NaN in a float column)."""
    import narwhals as nw

    x = nw.col(col)
    if not schema[col].is_float():
        return ~x.is_null()
    # not NaN, written so that DuckDB (where NaN = NaN is true) agrees with the others
    inf = float("inf")
    return ~x.is_null() & (x.is_finite() | (x == inf) | (x == -inf))




def grouped_sums(frame, keys: list[str], sums: dict, mins: dict | None = None,
                 maxs: dict | None = None) -> pd.DataFrame:
    """One grouped scan of plain aggregates, as a small pandas table.

    ``sums`` maps names to narwhals expressions, formed as columns first and summed (a
    group-by of complex expressions would run per group in Python on pandas);
    ``mins``/``maxs`` map names to columns. Columns ``sum:<name>``, ``min:<name>``,
    ``max:<name>`` (as floats) and ``sum:n`` (rows), one row per group of ``keys`` (one
    row overall without keys; missing key values are a group).
    """
    import narwhals as nw

    frame = frame.with_columns(**{f"{P}s{i}": e for i, e in enumerate(sums.values())})
    aggs = [nw.col(f"{P}s{i}").sum().alias(f"sum:{k}") for i, k in enumerate(sums)]
    aggs += [nw.col(c).min().alias(f"min:{k}") for k, c in (mins or {}).items()]
    aggs += [nw.col(c).max().alias(f"max:{k}") for k, c in (maxs or {}).items()]
    aggs.append(nw.len().alias("sum:n"))
    out = frame.group_by(keys, drop_null_keys=False).agg(*aggs) if keys else frame.select(*aggs)
    table = to_pandas_small(out)
    for c in table.columns:
        if c.startswith(("sum:", "min:", "max:")):
            table[c] = table[c].astype(float)
    return table


def attach(frame, table: pd.DataFrame, on: list[str], schema: dict | None = None):
    """``frame`` (narwhals) left-joined with the small pandas ``table`` on ``on``.

    The table is created in the frame's own engine (DuckDB: on the relation's own
    connection, through a replacement scan, so relations of any connection work; key
    columns cast to the frame's types), and nothing of the frame is materialised.
    ``schema``: the frame's narwhals schema when the caller has it (saves a bind).
    """
    import narwhals as nw

    impl = str(frame.implementation).rsplit(".", 1)[-1].lower()
    if impl == "duckdb":
        native = nw.to_native(frame)
        # DuckDB finds this frame by its variable name (a replacement scan); tables and
        # views of the connection come first, so the name must not be one a user would take
        __dd_factor_table = table.copy()
        tname = f"{P}factors"
        cols = ", ".join(f'"{c}"' for c in __dd_factor_table.columns if c not in on)
        keys = " AND ".join(f'{tname}."{c}" IS NOT DISTINCT FROM {P}t."{c}"' for c in on)
        # the key types from the relation's one bound signature (one bind per relation)
        sql_types = dict(zip(native.columns, native.types))
        casts = ", ".join(f'CAST("{c}" AS {sql_types[c]}) AS "{c}"' for c in on)
        rest = ", ".join(f'"{c}"' for c in __dd_factor_table.columns if c not in on)
        sql = (f"SELECT {P}t.*, {cols} FROM {P}t LEFT JOIN "
               f"(SELECT {casts}{', ' if rest else ''}{rest} FROM __dd_factor_table) AS {tname} "
               f"ON {keys}" if on else
               f"SELECT {P}t.*, {cols} FROM {P}t CROSS JOIN __dd_factor_table")
        return nw.from_native(native.query(f"{P}t", sql))
    if impl == "polars":
        import polars as pl

        small = pl.from_pandas(table)
        if isinstance(frame, nw.LazyFrame):
            small = small.lazy()
    elif impl == "pyarrow":
        import pyarrow as pa

        small = pa.Table.from_pandas(table, preserve_index=False)
        fields = nw.to_native(frame).schema
        small = small.cast(pa.schema([fields.field(c) if c in on else small.schema.field(c)
                                      for c in small.column_names]))
    elif impl == "pyspark":
        small = nw.to_native(frame).sparkSession.createDataFrame(table)
    else:
        small = nw.from_native(table, eager_only=True).lazy(backend=frame.implementation)
        small = nw.to_native(small)
    small = nw.from_native(small)
    schema = schema if schema is not None else schema_of(frame)
    if impl != "pyarrow":  # (pyarrow: cast natively above; narwhals' String is large_string)
        small = small.with_columns(*[nw.col(c).cast(schema[c]) for c in on])
    if not on:
        return frame.join(small, how="cross")
    return frame.join(small, on=on, how="left")


def to_native(frame):
    """The engine's own object (a DuckDB relation, a Polars LazyFrame, ...)."""
    import narwhals as nw

    return nw.to_native(frame)
