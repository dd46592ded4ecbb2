"""The engine side of pushed-down survey statistics: open the input, one grouped scan.

Everything here speaks narwhals, so the same expressions run on Polars (eager or lazy),
DuckDB, PyArrow and whatever else narwhals wraps. Products are formed with
``with_columns`` first and the group-by aggregates plain sums (and a few min/max checks),
which every engine runs natively. narwhals, polars, duckdb and pyarrow are imported here,
inside functions, never when ``diff_diff`` is imported.
"""

from __future__ import annotations

from ..survey._engine import (
    ENGINES, P, _collect, _installed, _need, _to_pandas, _valid, _wrap, check_columns,
    check_numeric, file_engine, grouped_sums, open_input, schema_of, to_pandas_small,
)

# the input side lives in survey._engine (calibration on engines needs it too)
__all__ = ["ENGINES", "P", "_collect", "_installed", "_need", "_to_pandas", "_valid", "_wrap",
           "check_columns", "check_numeric", "file_engine", "open_input", "schema_of",
           "to_pandas_small", "scan", "gram", "check_weights", "centred_moments",
           "cell_square_sums"]


def scan(frame, schema, keys, outcomes, covariates, joint, design, replicate_cols,
         extra_columns=None, extra_sums=None, srs_sums=True):
    """One grouped pass: the additive sufficient statistics of every key group.

    ``keys``: group columns (cells, then stratum and PSU where the layout needs them).
    ``joint``: one validity for all outcomes (rows complete in every outcome) instead of
    one per outcome. ``extra_columns`` (name: expression) are formed with the scan's own
    columns (``{P}w``, ``{P}v{j}``, ``{P}y{j}``); ``extra_sums`` (key: expression over
    those) are summed beside the standard sums. ``srs_sums=False`` leaves out the sums of
    ``w^2``, ``w^2 y`` and ``w^2 y^2`` (see :func:`cell_square_sums`). Returns a pandas
    DataFrame, one row per group.
    """
    import narwhals as nw

    f64 = nw.Float64
    # a missing weight becomes NaN, so that sum:w shows it (no separate count of nulls);
    # bad weights are then described by check_weights' own small query
    w = (nw.col(design.weights).cast(f64).fill_null(float("nan")) if design.weights
         else nw.lit(1.0, dtype=f64))
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
    if extra_columns:
        frame = frame.with_columns(**extra_columns)

    wc, w2 = nw.col(f"{P}w"), nw.col(f"{P}w") * nw.col(f"{P}w")
    # only the sums the finishing reads (every aggregate costs about as much as the scan's
    # share of one column): swy2 for deff and fweight moments, wpos for survey_mean/total
    sums = {"w": wc, "w2": w2}
    if joint:
        sums["wpos"] = (wc > 0).cast(f64)
    with_swy2 = joint or (design.psu is None and design.weight_type == "fweight")
    mins = {"wmin": f"{P}w"}
    maxs = {}
    if design.weight_type == "fweight":
        sums["wfrac"] = ((wc - wc.round(0)).abs() > 1e-10).cast(f64)
    if design.fpc:
        sums["fpcnull"] = nw.col(design.fpc).is_null().cast(f64)
        mins["fpcmin"] = maxs["fpcmax"] = f"{P}fpc"
    for j in range(len(outcomes)):
        v, y = nw.col(f"{P}v{j}"), nw.col(f"{P}y{j}")
        sums.update({f"nv{j}": v, f"npos{j}": v * (wc > 0).cast(f64), f"sw{j}": wc * v,
                     f"swy{j}": wc * y})
        if srs_sums:
            sums.update({f"s2w{j}": w2 * v, f"s2wy{j}": w2 * y, f"s2wy2{j}": w2 * y * y})
        if with_swy2:
            sums[f"swy2{j}"] = wc * y * y
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
    if extra_sums:
        sums.update(extra_sums)
    return grouped_sums(frame, keys, sums, mins, maxs)


def check_weights(frame, table, design) -> None:
    """Raise on missing, infinite or negative weights, as the in-memory path does.

    The scan's table shows bad weights cheaply (``sum:w`` not finite, a negative minimum);
    only then one more (ungrouped) query over ``frame`` counts what is wrong.
    """
    import narwhals as nw
    import numpy as np

    if design.weights is None:
        return
    total = table["sum:w"].to_numpy(dtype=float)
    if np.isfinite(total).all() and not (table["min:wmin"].to_numpy(dtype=float) < 0).any():
        return
    what = f"SurveyDesign.weights: column {design.weights!r}"
    w = nw.col(design.weights).cast(nw.Float64)
    bad = to_pandas_small(frame.select(
        w.is_null().cast(nw.Float64).sum().alias("null"), w.sum().alias("sum"),
        w.min().alias("min"), w.max().alias("max"))).astype(float).iloc[0]
    if bad["null"] > 0 or np.isnan(bad["sum"]):
        raise ValueError(f"{what} contains {max(int(bad['null']), 1)} missing (NaN) values")
    if np.isinf(bad["max"]) or np.isinf(bad["min"]):
        raise ValueError(f"{what} contains infinite values")
    raise ValueError(f"{what} contains negative values (min {bad['min']:g})")


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


def centred_moments(stats, design, shifts) -> list:
    """The centring pass of a moments table: per table row and outcome ``(C1, Q)``.

    ``shifts[j]``: per row of ``stats.table`` the outcome's centre ``e``, scale ``a`` and
    shift ``c``; a row's value is ``z = a w (y - e)`` (fweight: ``w`` units of
    ``a (y - e)``), and the pass sums ``z - c`` and ``(z - c)^2`` over the valid rows of
    every (cell, stratum) group, the three constants joined in as a small table.
    """
    import narwhals as nw
    import numpy as np
    import pandas as pd

    from ..survey._engine import attach

    frame, keys = stats.source, list(stats.keys)
    schema = schema_of(frame)
    f64 = nw.Float64
    table = stats.table[keys].copy() if keys else pd.DataFrame(index=[0])
    for j, (e, a, c) in enumerate(shifts):
        table[f"{P}e{j}"], table[f"{P}a{j}"], table[f"{P}c{j}"] = e, a, c
    joined = attach(frame, table, keys, schema)
    w = (nw.col(design.weights).cast(f64) if design.weights else nw.lit(1.0, dtype=f64))
    valids = [_valid(col, schema) for col in stats.outcomes]
    if stats.joint:
        every = valids[0]
        for v in valids[1:]:
            every = every & v
        valids = [every] * len(valids)
    fweight = design.weight_type == "fweight"
    cols = {}
    for j, (col, valid) in enumerate(zip(stats.outcomes, valids)):
        y = nw.col(col).cast(f64)
        z = nw.col(f"{P}a{j}") * (y - nw.col(f"{P}e{j}"))
        if not fweight:
            z = z * w
        d = z - nw.col(f"{P}c{j}")
        mu = w if fweight else nw.lit(1.0, dtype=f64)
        cols[f"{P}q1_{j}"] = nw.when(valid).then(mu * d).otherwise(0.0)
        cols[f"{P}q2_{j}"] = nw.when(valid).then(mu * d * d).otherwise(0.0)
    joined = joined.with_columns(**cols)
    aggs = [nw.col(c).sum().alias(c) for c in cols]
    out = joined.group_by(keys, drop_null_keys=False).agg(*aggs) if keys else \
        joined.select(*aggs)
    got = to_pandas_small(out)
    if keys:
        got = stats.table[keys].merge(got, on=keys, how="left")
    result = []
    for j in range(len(stats.outcomes)):
        c1 = np.nan_to_num(got[f"{P}q1_{j}"].to_numpy(dtype=float))
        q = np.nan_to_num(got[f"{P}q2_{j}"].to_numpy(dtype=float))
        result.append((c1, q))
    return result


def cell_square_sums(stats, design, cells) -> list:
    """Per cell (in the order of ``cells``, the by-values of the cell codes) and outcome:
    ``[sum w^2 v, sum w^2 y, sum w^2 y^2]`` over ``stats.source`` (one pass by cell)."""
    import narwhals as nw
    import numpy as np

    frame, by = stats.source, list(stats.by)
    schema = schema_of(frame)
    f64 = nw.Float64
    w = (nw.col(design.weights).cast(f64) if design.weights else nw.lit(1.0, dtype=f64))
    cols = {f"{P}w": w}
    for j, col in enumerate(stats.outcomes):
        valid = _valid(col, schema)
        cols[f"{P}v{j}"] = valid.cast(f64)
        cols[f"{P}y{j}"] = nw.when(valid).then(nw.col(col).cast(f64)).otherwise(0.0)
    frame = frame.with_columns(**cols)
    w2 = nw.col(f"{P}w") * nw.col(f"{P}w")
    sums = {}
    for j in range(len(stats.outcomes)):
        y = nw.col(f"{P}y{j}")
        sums.update({f"{P}a{j}": w2 * nw.col(f"{P}v{j}"), f"{P}b{j}": w2 * y,
                     f"{P}c{j}": w2 * y * y})
    frame = frame.with_columns(**sums)
    got = to_pandas_small(frame.group_by(by, drop_null_keys=False).agg(
        *[nw.col(c).sum() for c in sums]))
    got = cells[by].merge(got, on=by, how="left")
    return [[np.nan_to_num(got[f"{P}{k}{j}"].to_numpy(dtype=float)) for k in "abc"]
            for j in range(len(stats.outcomes))]
