"""The engine side of pushed-down survey statistics: open the input, one grouped scan.

Everything here speaks narwhals, so the same expressions run on Polars (eager or lazy),
DuckDB, PyArrow and whatever else narwhals wraps. Products are formed with
``with_columns`` first and the group-by aggregates plain sums (and a few min/max checks),
which every engine runs natively. narwhals, polars, duckdb and pyarrow are imported here,
inside functions, never when ``diff_diff`` is imported.
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


def scan(frame, schema, keys, outcomes, covariates, joint, design, replicate_cols):
    """One grouped pass: the additive sufficient statistics of every key group.

    ``keys``: group columns (cells, then stratum and PSU where the layout needs them).
    ``joint``: one validity for all outcomes (rows complete in every outcome) instead of
    one per outcome. Returns a pandas DataFrame, one row per group.
    """
    import narwhals as nw

    f64 = nw.Float64
    w = nw.col(design.weights).cast(f64) if design.weights else nw.lit(1.0, dtype=f64)
    step1 = {f"{P}w": w}
    valids = [_valid(c, schema) for c in outcomes]
    if joint:
        all_valid = valids[0]
        for v in valids[1:]:
            all_valid = all_valid & v
        valids = [all_valid] * len(outcomes)
    for j, (col, valid) in enumerate(zip(outcomes, valids)):
        step1[f"{P}v{j}"] = valid.cast(f64)
        step1[f"{P}y{j}"] = nw.when(valid).then(nw.col(col).cast(f64)).otherwise(0.0)
    for j, col in enumerate(covariates):
        valid = _valid(col, schema)
        step1[f"{P}cv{j}"] = valid.cast(f64)
        step1[f"{P}cx{j}"] = nw.when(valid).then(nw.col(col).cast(f64)).otherwise(0.0)
    if design.fpc:
        step1[f"{P}fpc"] = nw.col(design.fpc).cast(f64)
    for r, col in enumerate(replicate_cols):
        rep = nw.col(col).cast(f64)
        step1[f"{P}r{r}"] = rep if design.combined_weights else rep * w
    frame = frame.with_columns(**step1)

    wc, w2 = nw.col(f"{P}w"), nw.col(f"{P}w") * nw.col(f"{P}w")
    sums = {"w": wc, "w2": w2, "wpos": (wc > 0).cast(f64), "wnull": wc.is_null().cast(f64)}
    mins = {"wmin": f"{P}w"}
    maxs = {"wmax": f"{P}w"}
    if design.weight_type == "fweight":
        sums["wfrac"] = ((wc - wc.round(0)).abs() > 1e-10).cast(f64)
    if design.fpc:
        sums["fpcnull"] = nw.col(design.fpc).is_null().cast(f64)
        mins["fpcmin"] = maxs["fpcmax"] = f"{P}fpc"
    for j in range(len(outcomes)):
        v, y = nw.col(f"{P}v{j}"), nw.col(f"{P}y{j}")
        sums.update({
            f"nv{j}": v, f"npos{j}": v * (wc > 0).cast(f64), f"sw{j}": wc * v,
            f"swy{j}": wc * y, f"swy2{j}": wc * y * y, f"s2w{j}": w2 * v,
            f"s2wy{j}": w2 * y, f"s2wy2{j}": w2 * y * y,
        })
        for r in range(len(replicate_cols)):
            rw = nw.col(f"{P}r{r}")
            sums[f"rsw{j}_{r}"] = rw * v
            sums[f"rswy{j}_{r}"] = rw * y
    for j in range(len(covariates)):
        v, x = nw.col(f"{P}cv{j}"), nw.col(f"{P}cx{j}")
        sums[f"cw{j}"] = wc * v
        sums[f"cwx{j}"] = wc * x
    for r, col in enumerate(replicate_cols):
        rw = nw.col(f"{P}r{r}")
        sums[f"rnull{r}"] = rw.is_null().cast(f64)
        mins[f"rmin{r}"] = maxs[f"rmax{r}"] = f"{P}r{r}"
        if design.combined_weights:
            sums[f"rbad{r}"] = ((rw > 0) & (wc == 0)).cast(f64)
    frame = frame.with_columns(
        **{f"{P}s_{k}": e for k, e in sums.items()},
    )
    aggs = [nw.col(f"{P}s_{k}").sum().alias(f"sum:{k}") for k in sums]
    aggs += [nw.col(c).min().alias(f"min:{k}") for k, c in mins.items()]
    aggs += [nw.col(c).max().alias(f"max:{k}") for k, c in maxs.items()]
    aggs.append(nw.len().alias("sum:n"))
    if keys:
        out = frame.group_by(keys, drop_null_keys=False).agg(*aggs)
    else:
        out = frame.select(*aggs)
    table = to_pandas_small(out)
    for c in table.columns:
        if c.startswith(("sum:", "min:", "max:")):
            table[c] = table[c].astype(float)
    return table


def gram(frame, design, replicate_cols) -> "object":
    """Sums of products of the replicate weights (R x R), for the replicate df (one pass)."""
    import narwhals as nw
    import numpy as np

    f64 = nw.Float64
    w = nw.col(design.weights).cast(f64)
    reps = {}
    for r, col in enumerate(replicate_cols):
        rep = nw.col(col).cast(f64)
        reps[r] = rep if design.combined_weights else rep * w
    frame = frame.with_columns(**{f"{P}r{r}": e for r, e in reps.items()})
    n = len(replicate_cols)
    prods = {f"{P}g{a}_{b}": nw.col(f"{P}r{a}") * nw.col(f"{P}r{b}")
             for a in range(n) for b in range(a, n)}
    frame = frame.with_columns(**prods)
    out = to_pandas_small(frame.select(*[nw.col(c).sum() for c in prods]))
    g = np.zeros((n, n))
    for a in range(n):
        for b in range(a, n):
            g[a, b] = g[b, a] = float(out[f"{P}g{a}_{b}"].iloc[0])
    return g
