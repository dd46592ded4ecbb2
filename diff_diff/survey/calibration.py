"""Calibration of survey weights to population totals: :func:`calibrate`, :func:`rake`.

Calibration (Deville & Sarndal 1992) finds new weights ``w_i = d_i g_i``
close to the design weights ``d_i`` such that, within every group, the
weighted sums of the auxiliaries equal known population totals. The distance
decides the form of ``g``:

- ``linear`` (GREG): ``g = 1 + x'lambda`` (optionally clipped to bounds);
- ``raking``: ``g = exp(x'lambda)`` (optionally clipped), the iterative
  proportional fitting solution for categorical margins;
- ``logit``: ``g`` in ``(L, U)`` by a scaled logistic in ``x'lambda``.

These are R's ``survey::calibrate(calfun=)`` choices and give the same weights.
Solved by Newton's method simultaneously in every group (``by=``), with the
products taken as grouped sums, not a loop over groups.

Variance afterwards accounts for the calibration: for Taylor designs the
influence values are replaced by their calibration residuals (R's
g-calibration linearization), for replicate designs every replicate is
recalibrated to the same totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .._grouping import group_codes
from .._frames import column
from .._warnings import warn_user
from .calibration_model import Block, ModelMatrix, solve_grouped
from .columns import as_column_list
from .design import SurveyDesign
from .resolved import numeric_column

METHODS = ("raking", "linear", "logit")
INTERCEPT = "(Intercept)"


class CalibrationError(ValueError):
    """Calibration targets that cannot be met (named group and margin)."""


@dataclass(frozen=True, eq=False)
class CalibrationReport:
    """How a calibration went.

    Attributes
    ----------
    converged : bool
    iterations : int
        Newton iterations of the slowest group (full sample).
    max_rel_error : float
        Largest ``|achieved - target| / (1 + |target|)`` over groups and margins.
    margins : DataFrame
        ``by`` columns, ``margin``, ``level``, ``target``, ``achieved``,
        ``rel_error`` for every constraint of the full-sample weights.
    ratio_range : (float, float)
        Smallest and largest ``g = calibrated / design`` weight ratio.
    groups : DataFrame
        Per group: ``n``, ``ratio_min``, ``ratio_max``, ``iterations``.
    n_trimmed : int
        Weights changed by ``trim``.
    replicates_recalibrated : int
        Replicate columns calibrated to the same totals.
    """

    converged: bool
    iterations: int
    max_rel_error: float
    margins: pd.DataFrame
    ratio_range: tuple[float, float]
    groups: pd.DataFrame
    n_trimmed: int = 0
    replicates_recalibrated: int = 0


@dataclass(frozen=True, eq=False)
class CalibrationInfo:
    """What a calibrated ``SurveyDesign`` remembers (its ``calibration`` attribute).

    ``SurveyDesign`` keeps exactly its fields; this object rides along as an
    attribute so that :meth:`SurveyDesign.resolve` can build the calibration
    residuals for Taylor-linearization variance.
    """

    method: str
    by: tuple[str, ...]
    margins: tuple[tuple[str, str, tuple], ...]  # (name, "categorical"|"numeric", levels)
    design_weights: str | None
    account_for_calibration: bool
    report: CalibrationReport = field(repr=False)
    calibrated_weights: str | None = None


# ---------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------
def calibrate(
    data: pd.DataFrame,
    survey_design: SurveyDesign,
    totals: Mapping[str, Any] | pd.DataFrame,
    *,
    method: str = "raking",
    by: str | Sequence[str] | None = None,
    bounds: tuple[float, float] | None = None,
    trim: tuple[float, float] | None = None,
    max_iter: int = 50,
    tol: float = 1e-10,
    weight_column: str | None = None,
    account_for_calibration: bool = True,
    engine: str | None = None,
) -> tuple[pd.DataFrame, SurveyDesign]:
    """Calibrate survey weights to population totals.

    Parameters
    ----------
    data : DataFrame
        The sample; not modified.
    survey_design : SurveyDesign
        Its design (``pweight``); replicate designs are recalibrated replicate
        by replicate.
    totals : dict or DataFrame
        Without ``by``: ``{margin: {level: total, ...}}`` for categorical
        margins (every level that occurs in the data) and
        ``{column: total}`` for numeric auxiliaries; ``"(Intercept)"``
        gives the population size. With or without ``by``: a long DataFrame
        with the ``by`` columns and ``margin``, ``level``, ``total`` (``level``
        missing for numeric margins and the intercept), one set per group.
    method : {"raking", "linear", "logit"}
    by : str or list of str, optional
        Calibrate each group (e.g. state-year) to its own totals.
    bounds : (L, U), optional
        Bounds on the ratio ``g`` of calibrated to design weights (required
        for ``logit``; clip ``linear`` and ``raking``).
    trim : (lo, hi), optional
        After calibrating, clip ``g`` to ``[lo, hi]`` and spread the removed
        weight over the untrimmed rows of the same group (as R's ``trim=``);
        margins then hold only approximately.
    max_iter, tol : int, float
        Newton iterations and convergence tolerance on
        ``|achieved - target| / (1 + |target|)`` (R's criterion).
    weight_column : str, optional
        Name of the new weight column (default ``"<weights>_cal"``).
    account_for_calibration : bool
        ``True``: variance accounts for the calibration (residual
        linearization; recalibrated replicates). ``False``: the calibrated
        weights are treated as fixed design weights (replicate weights are
        then multiplied by the full-sample ratio ``g``).
    engine : {"pandas", "polars", "duckdb"}, optional
        Calibrate where the data live: a Polars/DuckDB/PyArrow frame or a Parquet path
        (or a pandas DataFrame with ``engine=``) is calibrated by grouped scans in that
        engine and returned in it, the calibrated weight an expression of a joined factor
        table (see ``diff_diff.survey.calibration_engine``); ``"pandas"`` collects it.

    Returns
    -------
    (DataFrame, SurveyDesign)
        A copy of ``data`` with the calibrated weight column (and calibrated
        replicate columns ``<col>_cal``), and a design using them. The
        design's ``calibration`` attribute holds a :class:`CalibrationInfo`
        whose ``report`` gives convergence, achieved margins and ratio range.

    Raises
    ------
    CalibrationError
        A margin level with a population total but no respondents in a group,
        totals missing for a group or level, inconsistent margin totals, or
        no convergence (e.g. infeasible bounds): the group and margin are
        named. Uncalibrated weights are never returned silently.

    Examples
    --------
    >>> import pandas as pd
    >>> from diff_diff import SurveyDesign, calibrate
    >>> df = pd.DataFrame({"sex": ["f", "m", "f", "m"], "w": [10.0, 10.0, 10.0, 10.0]})
    >>> out, design = calibrate(df, SurveyDesign(weights="w"), {"sex": {"f": 30, "m": 50}})
    >>> out["w_cal"].round(10).tolist()
    [15.0, 25.0, 15.0, 25.0]
    """
    if engine is not None or not isinstance(data, pd.DataFrame):
        from .calibration_engine import calibrate_engine

        return calibrate_engine(data, survey_design, totals, method=method, by=by,
                                bounds=bounds, trim=trim, max_iter=max_iter, tol=tol,
                                weight_column=weight_column,
                                account_for_calibration=account_for_calibration, engine=engine)
    by_cols, bounds, trim = _check_arguments(survey_design, method, by, bounds, trim,
                                             max_iter, tol)
    survey_design.resolve(data)  # validates columns and weights
    long = _long_totals(totals, by_cols)
    group, keys = _groups(data, by_cols)
    margins, model, targets = _build_model(data, long, by_cols, group, keys, method)
    d = (
        np.ones(len(data))
        if survey_design.weights is None
        else numeric_column(data, survey_design.weights, "weights")
    )
    _check_feasible(model, d, targets, keys, margins, method, bounds)
    g, iters, err = _solve(model, d, targets, method, bounds, max_iter, tol)
    _raise_unconverged(err, tol, keys, model, d * g, targets, margins, "the full-sample weights")
    n_trimmed = 0
    if trim is not None:
        g, n_trimmed = _trim(g, d, group, model.n_groups, trim,
                             lambda i: _group_label(keys, i, by_cols))
    weights = d * g

    name = weight_column or (f"{survey_design.weights}_cal" if survey_design.weights else "_cal_weight")
    if name in data.columns:
        raise ValueError(f"calibrate: weight_column {name!r} already exists in data")
    added = {name: weights}  # the new columns, joined to a copy of data at once
    new_reps = None
    n_rep_cal = 0
    if survey_design.replicate_weights is not None:
        new_reps = []
        # every replicate is calibrated on the distinct (group, x) patterns: the same
        # solution as on the rows, at the cost of the patterns (few with categorical margins)
        pattern, patterns = model.collapse() if account_for_calibration else (None, None)
        for col in survey_design.replicate_weights:
            rep = numeric_column(data, col, "replicate_weights")
            if not survey_design.combined_weights:
                rep = rep * d
            if account_for_calibration:
                rep_p = np.bincount(pattern, weights=rep, minlength=patterns.group.size)
                _check_feasible(patterns, rep_p, targets, keys, margins, method, bounds,
                                f" in replicate {col!r}")
                g_p, _, err_r = _solve(patterns, rep_p, targets, method, bounds, max_iter, tol)
                _raise_unconverged(err_r, tol, keys, patterns, rep_p * g_p, targets, margins,
                                   f"replicate {col!r}")
                if trim is not None:
                    g_p, _ = _trim(g_p, rep_p, patterns.group, model.n_groups, trim,
                                   lambda i: _group_label(keys, i, by_cols))
                g_r = g_p[pattern]
                n_rep_cal += 1
            else:
                g_r = g
            rep_name = f"{col}_cal"
            if rep_name in data.columns:
                raise ValueError(f"calibrate: replicate column {rep_name!r} already exists in data")
            added[rep_name] = rep * g_r
            new_reps.append(rep_name)
    out = pd.concat([data, pd.DataFrame(added, index=data.index)], axis=1)

    report = _report(model, weights, d, g, targets, keys, by_cols, margins, iters, err, tol,
                     n_trimmed, n_rep_cal)
    info = CalibrationInfo(
        method=method,
        by=tuple(by_cols),
        margins=tuple(margins),
        design_weights=survey_design.weights,
        account_for_calibration=bool(account_for_calibration),
        report=report,
        calibrated_weights=name,
    )
    new_design = replace(
        survey_design,
        weights=name,
        replicate_weights=new_reps,
        combined_weights=True if new_reps is not None else survey_design.combined_weights,
    )
    new_design.calibration = info
    return out, new_design


def rake(
    data: pd.DataFrame,
    survey_design: SurveyDesign,
    margins: Mapping[str, Mapping[Any, float]] | pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    **kwargs,
) -> tuple[pd.DataFrame, SurveyDesign]:
    """Rake weights to categorical margins: ``calibrate(..., method="raking")``.

    ``margins`` maps each categorical column to its population count per
    level (or is the long DataFrame form of :func:`calibrate`). The solution
    equals iterative proportional fitting (R ``rake()``) run to convergence.

    Parameters
    ----------
    data : DataFrame
        One row per respondent.
    survey_design : SurveyDesign
        The design whose weights are raked.
    margins : mapping or DataFrame
        Population counts per level of each categorical column.
    by : str or sequence of str, optional
        Rake within each cell of these columns (e.g. state and year), with ``margins`` in
        the long form carrying the same columns.
    **kwargs
        Other :func:`calibrate` settings (``bounds``, ``max_iter``, ``tol``, ...).

    Returns
    -------
    tuple of (DataFrame, SurveyDesign)
        The data with the calibrated weight column, and the design that uses it (its
        variance accounts for the calibration).

    Raises
    ------
    CalibrationError
        If the margins cannot be met.

    Examples
    --------
    >>> import pandas as pd
    >>> from diff_diff import SurveyDesign, rake
    >>> df = pd.DataFrame({"sex": ["f", "m", "f", "m"], "age": ["y", "y", "o", "o"],
    ...                    "w": [1.0, 1.0, 1.0, 1.0]})
    >>> out, _ = rake(df, SurveyDesign(weights="w"),
    ...               {"sex": {"f": 6, "m": 4}, "age": {"y": 5, "o": 5}})
    >>> [round(v, 6) for v in out["w_cal"]]
    [3.0, 2.0, 3.0, 2.0]
    """
    if isinstance(margins, Mapping):
        for key, value in margins.items():
            if not isinstance(value, Mapping):
                raise ValueError(
                    f"rake: margin {key!r} must map levels to population counts, got {value!r}"
                )
    return calibrate(data, survey_design, margins, method="raking", by=by, **kwargs)


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def _check_arguments(survey_design, method, by, bounds, trim, max_iter, tol):
    """The settings every calibration path checks alike: ``(by_cols, bounds, trim)``."""
    if not isinstance(survey_design, SurveyDesign):
        raise TypeError(f"survey_design must be a SurveyDesign, got {type(survey_design).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    by_cols = [] if by is None else as_column_list(by, "by")
    bounds = _check_bounds(bounds, method)
    trim = _check_trim(trim)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise ValueError(f"tol must be in (0, 1), got {tol!r}")
    if survey_design.weight_type != "pweight":
        raise ValueError(
            f"calibration needs sampling weights (weight_type='pweight'), got "
            f"{survey_design.weight_type!r}"
        )
    return by_cols, bounds, trim


def _check_bounds(bounds, method):
    if bounds is None:
        if method == "logit":
            raise ValueError("method='logit' needs finite bounds=(L, U) with L < 1 < U")
        return None
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (L, U), got {bounds!r}") from None
    if not (low < 1.0 < high) or low < 0:
        raise ValueError(f"bounds must satisfy 0 <= L < 1 < U, got {bounds!r}")
    if method == "logit" and not np.isfinite(high):
        raise ValueError(f"method='logit' needs finite bounds, got {bounds!r}")
    return low, high


def _check_trim(trim):
    if trim is None:
        return None
    try:
        low, high = (float(b) for b in trim)
    except (TypeError, ValueError):
        raise ValueError(f"trim must be a pair (lo, hi), got {trim!r}") from None
    if not (0 <= low < 1.0 < high):
        raise ValueError(f"trim must satisfy 0 <= lo < 1 < hi, got {trim!r}")
    return low, high


def _long_totals(totals, by_cols) -> pd.DataFrame:
    if isinstance(totals, pd.DataFrame):
        need = by_cols + ["margin", "level", "total"]
        missing = [c for c in need if c not in totals.columns]
        if missing:
            raise ValueError(
                f"calibrate: totals DataFrame needs columns {need}; missing {missing}"
            )
        long = totals[need].copy()
    elif isinstance(totals, Mapping):
        if by_cols:
            raise ValueError(
                "calibrate: with by=, give totals as a DataFrame with the by columns and "
                "margin, level, total"
            )
        records = []
        for margin, value in totals.items():
            if isinstance(value, Mapping):
                records += [(margin, level, total) for level, total in value.items()]
            else:
                records.append((margin, None, value))
        long = pd.DataFrame(records, columns=["margin", "level", "total"])
    else:
        raise TypeError(f"totals must be a dict or a DataFrame, got {type(totals).__name__}")
    if long.empty:
        raise ValueError("calibrate: totals are empty")
    values = pd.to_numeric(long["total"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("calibrate: every total must be a finite number")
    long["total"] = values
    return long


def _groups(data, by_cols):
    if not by_cols:
        return np.zeros(len(data), dtype=np.int64), pd.DataFrame(index=[0])
    return group_codes(data, by_cols)


def _group_index(long, by_cols, keys) -> np.ndarray:
    """Group code of every totals row (-1: a group without respondents)."""
    if not by_cols:
        return np.zeros(len(long), dtype=np.int64)
    merged = long[by_cols].merge(
        keys.reset_index().rename(columns={"index": "_g"}), on=by_cols, how="left"
    )
    return merged["_g"].fillna(-1).to_numpy(dtype=np.int64)


def _build_model(data, long, by_cols, group, keys, method):
    """Blocks of the model matrix and the (G, p) target totals."""
    n_groups = len(keys)
    gidx = _group_index(long, by_cols, keys)
    if (gidx < 0).any():
        extra = long.loc[gidx < 0, by_cols].drop_duplicates()
        warn_user(
            f"calibrate: totals given for {len(extra)} group(s) without respondents are "
            f"ignored: {extra.head(5).to_dict('records')}")
    long = long.assign(_g=gidx)[gidx >= 0]
    order = list(dict.fromkeys(long["margin"]))
    numeric_names = [m for m in order if long.loc[long["margin"] == m, "level"].isna().all()]
    categorical = [m for m in order if m not in numeric_names]
    for m in categorical:
        if long.loc[long["margin"] == m, "level"].isna().any():
            raise CalibrationError(f"calibrate: margin {m!r} mixes level totals and a numeric total")
    blocks, targets_cols, margins = [], [], []
    offset = 0
    population = None  # per group, from the first categorical margin
    for j, m in enumerate(categorical):
        column(data, m, f"calibrate: margin column {m!r}")
        part = long[long["margin"] == m]
        if part.duplicated(["_g", "level"]).any():
            raise CalibrationError(f"calibrate: margin {m!r} lists a level twice for a group")
        if (part["total"] < 0).any():
            raise CalibrationError(f"calibrate: margin {m!r} has negative population totals")
        data_codes, seen = pd.factorize(data[m])
        if (data_codes < 0).any():
            raise CalibrationError(f"calibrate: margin column {m!r} has missing values")
        levels = pd.unique(pd.concat([part["level"], pd.Series(seen)], ignore_index=True))
        try:
            levels = np.sort(levels)
        except TypeError:
            levels = np.asarray(levels, dtype=object)
        codes = pd.Index(levels).get_indexer(seen)[data_codes].astype(np.int64)
        table = np.full((n_groups, len(levels)), np.nan)
        lev_idx = pd.Categorical(part["level"], categories=levels).codes
        table[part["_g"].to_numpy(), lev_idx] = part["total"].to_numpy()
        counts = np.bincount(group * len(levels) + codes, minlength=n_groups * len(levels))
        counts = counts.reshape(n_groups, len(levels))
        missing = np.isnan(table) & (counts > 0)
        if missing.any():
            g0, l0 = np.argwhere(missing)[0]
            raise CalibrationError(
                f"calibrate: no population total for level {levels[l0]!r} of margin {m!r}"
                f"{_group_label(keys, g0, by_cols)}, which has respondents"
            )
        table = np.nan_to_num(table, nan=0.0)
        sums = table.sum(axis=1)
        if population is None:
            population = sums
        elif not np.allclose(sums, population, rtol=1e-6, atol=1e-8):
            g0 = int(np.argmax(np.abs(sums - population)))
            raise CalibrationError(
                f"calibrate: margins disagree on the population total"
                f"{_group_label(keys, g0, by_cols)}: {categorical[0]!r} sums to "
                f"{population[g0]:g}, {m!r} to {sums[g0]:g}"
            )
        if j == 0:
            blocks.append(Block(m, offset, len(levels), codes=codes))
            targets_cols.append(table)
            offset += len(levels)
        else:  # the first level is implied by the population total
            blocks.append(Block(m, offset, len(levels) - 1, codes=codes - 1))
            targets_cols.append(table[:, 1:])
            offset += len(levels) - 1
        margins.append((m, "categorical", tuple(levels.tolist())))
    for m in numeric_names:
        part = long[long["margin"] == m]
        if part.duplicated("_g").any():
            raise CalibrationError(f"calibrate: margin {m!r} is given twice for a group")
        table = np.full(n_groups, np.nan)
        table[part["_g"].to_numpy()] = part["total"].to_numpy()
        if np.isnan(table).any():
            g0 = int(np.flatnonzero(np.isnan(table))[0])
            raise CalibrationError(
                f"calibrate: no total for {m!r}{_group_label(keys, g0, by_cols)}"
            )
        if m == INTERCEPT:
            if population is not None:
                if not np.allclose(table, population, rtol=1e-6, atol=1e-8):
                    raise CalibrationError(
                        f"calibrate: '(Intercept)' disagrees with the total of margin "
                        f"{categorical[0]!r}"
                    )
                continue
            values = np.ones(len(data))
        else:
            values = numeric_column(data, m, "margin")
            if np.isnan(values).any() or np.isinf(values).any():
                raise CalibrationError(f"calibrate: numeric margin {m!r} has missing or infinite values")
        blocks.append(Block(m, offset, 1, values=values))
        targets_cols.append(table[:, None])
        margins.append((m, "numeric", ()))
        offset += 1
    model = ModelMatrix(group=group, n_groups=n_groups, blocks=tuple(blocks), n_cols=offset)
    return margins, model, np.hstack(targets_cols)


def _group_label(keys, g, by_cols) -> str:
    if not by_cols:
        return ""
    row = keys.iloc[int(g)]
    values = ", ".join(f"{c}={_plain(row[c])!r}" for c in by_cols)
    return f" in group ({values})"


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _column_label(model, margins, col) -> str:
    for b, (name, kind, levels) in zip(model.blocks, margins):
        if b.offset <= col < b.offset + b.width:
            if kind == "numeric":
                return f"margin {name!r}"
            shift = 0 if b is model.blocks[0] else 1
            return f"level {levels[col - b.offset + shift]!r} of margin {name!r}"
    return f"column {col}"


def _check_feasible(model, d, targets, keys, margins, method, bounds, what=""):
    by_cols = list(keys.columns) if len(keys.columns) else []
    sample = model.grouped_xtv(d)
    reach = model.grouped_xtv((d > 0).astype(float))
    empty = (reach == 0) & (targets != 0)
    if empty.any():
        g0, c0 = np.argwhere(empty)[0]
        raise CalibrationError(
            f"calibrate: {_column_label(model, margins, c0)} has a population total of "
            f"{targets[g0, c0]:g} but no respondents with positive weight{what}"
            f"{_group_label(keys, g0, by_cols)}"
        )
    positive_only = method == "raking" or (bounds is not None and bounds[0] > 0)
    cat_cols = np.zeros(model.n_cols, dtype=bool)
    for b in model.blocks:
        if b.categorical:
            cat_cols[b.offset:b.offset + b.width] = True
    zero = (targets == 0) & (sample > 0) & cat_cols[None, :]
    if positive_only and zero.any():
        g0, c0 = np.argwhere(zero)[0]
        raise CalibrationError(
            f"calibrate: {_column_label(model, margins, c0)} has respondents but a population "
            f"total of 0{_group_label(keys, g0, by_cols)}; {method} weights cannot reach zero"
        )


# ---------------------------------------------------------------------------
# solving
# ---------------------------------------------------------------------------
def _link(eta, method, bounds):
    """Weight ratio g and its derivative in the linear predictor (R calfun)."""
    low, high = (-np.inf, np.inf) if bounds is None else bounds
    if method == "linear":
        raw = 1.0 + eta
        return np.clip(raw, low, high), ((raw > low) & (raw < high)).astype(float)
    if method == "raking":
        with np.errstate(over="ignore"):
            raw = np.exp(eta)
        return np.clip(raw, low, high), np.where((raw > low) & (raw < high), raw, 0.0)
    a = (high - low) / ((high - 1.0) * (1.0 - low))
    c, dd = high - 1.0, 1.0 - low
    t = a * eta
    with np.errstate(over="ignore"):
        r = np.exp(-np.abs(t))  # in (0, 1]: e = exp(t) for t <= 0, 1/e for t > 0
    up = t > 0
    num = np.where(up, low * c * r + high * dd, low * c + high * dd * r)
    den = np.where(up, c * r + dd, c + dd * r)
    g = num / den
    dg = a * c * dd * (high - low) * r / den**2
    return g, dg


def _solve(model, d, targets, method, bounds, max_iter, tol):
    """Damped Newton iterations in every group at once.

    Each group's step is halved until its misfit shrinks (a plain Newton
    step can overshoot when a cell has few respondents and a target far from
    its sample total). Returns ``(g, iterations, relative error per group)``.
    """
    n_groups = model.n_groups
    coef = np.zeros((n_groups, model.n_cols))
    scale = 1.0 + np.abs(targets)
    g, dg = _link(model.linear_predictor(coef), method, bounds)
    misfit = targets - model.grouped_xtv(d * g)
    err = np.max(np.abs(misfit) / scale, axis=1)
    size = np.sqrt(np.sum((misfit / scale) ** 2, axis=1))
    iterations = 0
    while iterations < max_iter and (err >= tol).any():
        iterations += 1
        pending = err >= tol
        step = np.zeros_like(coef)  # converged groups stay where they are
        step[pending] = solve_grouped(model.grouped_xtvx(d * dg)[pending], misfit[pending])
        for _ in range(60):
            trial = coef + step
            g_new, dg_new = _link(model.linear_predictor(trial), method, bounds)
            finite_rows = np.isfinite(g_new) & np.isfinite(dg_new)
            finite = np.bincount(model.group[~finite_rows], minlength=n_groups) == 0
            with np.errstate(invalid="ignore", over="ignore"):
                new_misfit = targets - model.grouped_xtv(d * np.where(finite_rows, g_new, 0.0))
                new_size = np.sqrt(np.sum((new_misfit / scale) ** 2, axis=1))
            worse = pending & (~finite | ~(new_size < size))
            if not worse.any():
                break
            step[worse] /= 2.0
        coef, g, dg, misfit = trial, g_new, dg_new, new_misfit
        err = np.max(np.abs(misfit) / scale, axis=1)
        size = np.sqrt(np.sum((misfit / scale) ** 2, axis=1))
    return g, iterations, err


def _raise_unconverged(err, tol, keys, model, weights, targets, margins, what):
    if np.all(err < tol):
        return
    by_cols = list(keys.columns) if len(keys.columns) else []
    failed = np.flatnonzero(err >= tol)
    g0 = failed[np.argmax(err[failed])]
    misfit = np.abs(targets - model.grouped_xtv(weights)) / (1.0 + np.abs(targets))
    c0 = int(np.argmax(misfit[g0]))
    raise CalibrationError(
        f"calibrate: {what} did not converge in {len(failed)} group(s); worst"
        f"{_group_label(keys, g0, by_cols)}: {_column_label(model, margins, c0)} is off by a "
        f"relative {err[g0]:.3g} (bounds infeasible, or raise max_iter)"
    )


def _trim(g, d, group, n_groups, trim, describe=str):
    """Clip g and spread the removed weight over the untrimmed rows of each group."""
    low, high = trim
    clipped = np.clip(g, low, high)
    outside = (g < low) | (g > high)
    removed = np.bincount(group, weights=(g - clipped) * d, minlength=n_groups)
    inside_w = np.bincount(group, weights=np.where(outside, 0.0, d), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(inside_w > 0, removed / inside_w, 0.0)
    stuck = (inside_w == 0) & (removed != 0)
    if stuck.any():
        warn_user(
            f"calibrate: trim={trim} clips every weight of {int(stuck.sum())} group(s)"
            + "; ".join(describe(i) for i in np.flatnonzero(stuck)[:5])
            + ", so their totals are not preserved; widen trim")
    return np.where(outside, clipped, clipped + shift[group]), int(outside.sum())


def _report(model, weights, d, g, targets, keys, by_cols, margins, iters, err, tol, n_trimmed,
            n_rep):
    achieved = model.grouped_xtv(weights)
    rows = []
    for b, (name, kind, levels) in zip(model.blocks, margins):
        shift = 0 if (kind == "numeric" or b is model.blocks[0]) else 1
        for c in range(b.width):
            level = None if kind == "numeric" else levels[c + shift]
            rows.append((name, level, b.offset + c))
    n_groups = model.n_groups
    cols = np.array([r[2] for r in rows], dtype=np.int64)
    table = pd.DataFrame(
        {
            "margin": np.tile([r[0] for r in rows], n_groups),
            "level": np.tile(np.array([r[1] for r in rows], dtype=object), n_groups),
            "target": targets[:, cols].ravel(),
            "achieved": achieved[:, cols].ravel(),
        }
    )
    table["rel_error"] = (table["achieved"] - table["target"]).abs() / (1 + table["target"].abs())
    if by_cols:
        rep = keys.loc[np.repeat(np.arange(n_groups), len(rows))].reset_index(drop=True)
        table = pd.concat([rep, table], axis=1)
    pos = d > 0
    grp = model.group[pos]
    ratio = g[pos]
    groups = pd.DataFrame(
        {
            "n": np.bincount(model.group, minlength=n_groups),
            "ratio_min": _grouped_extreme(grp, ratio, n_groups, np.minimum, np.inf),
            "ratio_max": _grouped_extreme(grp, ratio, n_groups, np.maximum, -np.inf),
        }
    )
    if by_cols:
        groups = pd.concat([keys.reset_index(drop=True), groups], axis=1)
    return CalibrationReport(
        converged=bool(np.all(err < tol)),
        iterations=int(iters),
        max_rel_error=float(table["rel_error"].max()),
        margins=table,
        ratio_range=(float(ratio.min()), float(ratio.max())),
        groups=groups,
        n_trimmed=n_trimmed,
        replicates_recalibrated=n_rep,
    )


def _grouped_extreme(group, values, n_groups, ufunc, start):
    out = np.full(n_groups, start)
    ufunc.at(out, group, values)
    return out


# ---------------------------------------------------------------------------
# variance after calibration
# ---------------------------------------------------------------------------
def calibration_projection(info: CalibrationInfo, data: pd.DataFrame, weights: np.ndarray):
    """The calibration residual operator of a calibrated design on ``data``.

    The calibrated weights come from their own column, so a domain of the
    design (``subpopulation``: zero weights outside) keeps the full-sample
    calibration, as R does for a subset of a calibrated design.
    """
    from .calibration_model import CalibrationProjection

    if info.calibrated_weights is not None and info.calibrated_weights in data.columns:
        weights = numeric_column(data, info.calibrated_weights, "weights")
    if info.design_weights is None:
        d = np.ones(len(data))
    else:
        d = numeric_column(data, info.design_weights, "weights")
    group, _ = _groups(data, list(info.by))
    blocks, offset = [], 0
    for j, (name, kind, levels) in enumerate(info.margins):
        if kind == "numeric":
            values = np.ones(len(data)) if name == INTERCEPT else numeric_column(data, name, "margin")
            blocks.append(Block(name, offset, 1, values=values))
            offset += 1
            continue
        codes = pd.Categorical(column(data, name, f"calibrated design: margin column {name!r}"), categories=list(levels)).codes.astype(np.int64)
        if (codes < 0).any():
            raise ValueError(
                f"calibrated design: margin column {name!r} has values outside the calibrated levels"
            )
        width = len(levels) if j == 0 else len(levels) - 1
        blocks.append(Block(name, offset, width, codes=codes if j == 0 else codes - 1))
        offset += width
    model = ModelMatrix(group=group, n_groups=int(group.max()) + 1, blocks=tuple(blocks),
                        n_cols=offset)
    return CalibrationProjection.build(model, d, weights)
