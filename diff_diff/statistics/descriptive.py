"""Design-based means and totals, overall and by domain (R ``svymean``/``svytotal``/``svyby``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .._grouping import group_codes
from ..inference.domains import domain_deff, domain_statistics
from ..inference.estimate import warn_if_unidentified
from ..inference.intervals import standard_error, t_inference
from ..survey.columns import as_column_list, numeric_matrix
from ..survey.design import SurveyDesign


def survey_mean(
    data,
    variable: str | Sequence[str],
    survey_design: SurveyDesign,
    by: str | Sequence[str] | None = None,
    deff: bool = False,
    na_rm: bool = False,
    alpha: float = 0.05,
    *,
    engine: str | None = None,
    return_stats: bool = False,
) -> pd.DataFrame:
    """Design-weighted means with design-based standard errors.

    The mean of y in domain d is ``sum_{i in d} w_i y_i / sum_{i in d} w_i``.
    Its variance is the Taylor linearization of the influence values
    ``w_i (y_i - ybar_d) / sum_d w`` over the full design, so every stratum
    and PSU counts even where the domain has no members (Lumley 2010, sec.
    2.4.1), or the replicate variance of the replicate means. Matches R's
    ``svymean(~y, design)`` and ``svyby(~y, ~d, design, svymean)``.

    Parameters
    ----------
    data : DataFrame, Polars/DuckDB/PyArrow frame, Parquet path or SurveyStatistics
        One row per respondent. Anything but a pandas DataFrame is summed
        where it lives (one grouped scan; see ``diff_diff.statistics.pushdown``).
    variable : str or list of str
        Numeric (or boolean) columns; a 0/1 column gives a prevalence.
    survey_design : SurveyDesign
        A ``pweight`` or ``fweight`` design.
    by : str or list of str, optional
        Domain columns; one row per domain (and variable) in the result.
    deff : bool
        Add R's design effect: design variance over the variance of the same
        estimate under simple random sampling without replacement of the same
        size (``pweight`` designs).
    na_rm : bool
        Leave rows with a missing value in any ``variable`` out of the
        domains (keeping the design), as R's ``na.rm=TRUE``. Without it a
        missing value is an error.
    alpha : float
        1 - confidence level of the intervals (t with the design df).
    engine : {"pandas", "polars", "duckdb"}, optional
        Force the engine (as :func:`~diff_diff.aggregate_survey`).
    return_stats : bool
        Return the additive sufficient statistics (``SurveyStatistics``)
        instead of the estimates; pass them back as ``data`` to finish.

    Returns
    -------
    DataFrame
        ``by`` columns, ``variable``, ``estimate``, ``se``, ``df``,
        ``conf_low``, ``conf_high``, ``n`` (rows with positive weight) and
        ``deff`` when asked.

    Examples
    --------
    >>> import pandas as pd
    >>> from diff_diff import SurveyDesign, survey_mean
    >>> df = pd.DataFrame({"y": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
    ...                    "w": [2.0, 1.0, 1.0, 3.0, 2.0, 1.0],
    ...                    "psu": [1, 1, 2, 2, 3, 3]})
    >>> out = survey_mean(df, "y", SurveyDesign(weights="w", psu="psu"))
    >>> round(float(out["estimate"].iloc[0]), 4)
    0.7
    """
    if engine is not None or return_stats or not isinstance(data, pd.DataFrame):
        from .pushdown import describe_pushdown

        return describe_pushdown("mean", data, variable, survey_design, by, deff, na_rm, alpha,
                                 engine, return_stats)
    return _describe("mean", data, variable, survey_design, by, deff, na_rm, alpha)


def survey_total(
    data,
    variable: str | Sequence[str],
    survey_design: SurveyDesign,
    by: str | Sequence[str] | None = None,
    deff: bool = False,
    na_rm: bool = False,
    alpha: float = 0.05,
    *,
    engine: str | None = None,
    return_stats: bool = False,
) -> pd.DataFrame:
    """Design-based population totals ``sum_{i in d} w_i y_i`` with standard errors.

    Uses the raw (as supplied) weights, so the totals are on the population
    scale the weights describe. Matches R's ``svytotal`` and
    ``svyby(..., svytotal)``. Parameters and result as :func:`survey_mean`.

    Parameters
    ----------
    data : DataFrame, Polars/DuckDB/PyArrow frame, Parquet path or SurveyStatistics
        One row per respondent (see :func:`survey_mean`).
    variable : str or sequence of str
        Column(s) to total.
    survey_design : SurveyDesign
        Weights and sampling design.
    by : str or sequence of str, optional
        Domain column(s): one total per domain, with domain (subpopulation) variance.
    deff : bool, default False
        Add the design effect.
    na_rm : bool, default False
        Drop rows where the variable is missing (as a domain), instead of raising.
    alpha : float, default 0.05
        Significance level of the intervals.
    engine : {"pandas", "polars", "duckdb"}, optional
        Force the engine (as :func:`~diff_diff.aggregate_survey`).
    return_stats : bool
        Return the additive sufficient statistics (``SurveyStatistics``)
        instead of the estimates; pass them back as ``data`` to finish.

    Returns
    -------
    DataFrame
        One row per variable (and domain): ``estimate``, ``se``, ``df``, ``conf_low``,
        ``conf_high`` (and ``deff``).

    Raises
    ------
    ValueError
        If a column is missing, or has missing values without ``na_rm``.

    Examples
    --------
    >>> import pandas as pd
    >>> from diff_diff import SurveyDesign, survey_total
    >>> df = pd.DataFrame({"y": [1.0, 0.0, 1.0, 1.0], "w": [10.0, 10.0, 20.0, 20.0],
    ...                    "st": [1, 1, 2, 2]})
    >>> float(survey_total(df, "y", SurveyDesign(weights="w", strata="st"))["estimate"].iloc[0])
    50.0
    """
    if engine is not None or return_stats or not isinstance(data, pd.DataFrame):
        from .pushdown import describe_pushdown

        return describe_pushdown("total", data, variable, survey_design, by, deff, na_rm,
                                 alpha, engine, return_stats)
    return _describe("total", data, variable, survey_design, by, deff, na_rm, alpha)


def _domains(data: pd.DataFrame, by: list[str] | None) -> tuple[np.ndarray, pd.DataFrame | None]:
    if by is None:
        return np.zeros(len(data), dtype=np.int64), None
    return group_codes(data, by)


def _describe(kind, data, variable, survey_design, by, deff, na_rm, alpha) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(survey_design, SurveyDesign):
        raise TypeError(
            f"survey_design must be a SurveyDesign, got {type(survey_design).__name__}"
        )
    variables = as_column_list(variable, "variable")
    by_cols = None if by is None else as_column_list(by, "by")
    design = survey_design.resolve(data)
    if design.weight_type == "aweight":
        raise ValueError(
            "survey means and totals need pweight (or fweight) designs; aweight (precision) "
            "weights describe regression error variances, not the sample"
        )
    if deff and design.weight_type != "pweight":
        raise ValueError("deff compares with simple random sampling and needs a pweight design")
    y = numeric_matrix(data, variables)
    complete = ~np.isnan(y).any(axis=1)
    empty = [v for v, col in zip(variables, y.T) if np.isnan(col).all()]
    if empty:
        raise ValueError(f"variable(s) {empty} have no non-missing values")
    if not complete.all() and not na_rm:
        bad = [v for v, col in zip(variables, y.T) if np.isnan(col).any()]
        raise ValueError(
            f"variable(s) {bad} contain {int((~complete).sum())} rows with missing values; "
            "pass na_rm=True to leave those rows out of the domains"
        )
    domain, keys = _domains(data, by_cols)
    domain = np.where(complete, domain, -1)
    n_domains = 1 if keys is None else len(keys)
    warn_if_unidentified(design, "survey_" + kind)
    stats = domain_statistics(kind, design, y, domain, n_domains)
    est, var, df, n_pos = stats.estimate, stats.variance, stats.df, stats.n
    cells, var_index, out = _estimate_table(keys, by_cols, variables, est, var, df, n_pos,
                                           stats.sum_w, alpha)
    if deff:
        out["deff"] = domain_deff(kind, design, np.where(complete[:, None], y, 0.0), domain,
                                  n_domains, var)[cells, var_index]
    return pd.DataFrame(out)


def _estimate_table(keys, by_cols, variables, est, var, df, n_pos, sum_w, alpha):
    """``(cells, var_index, columns)`` of the result table: one row per domain with positive
    weight and variable, with the estimate, its SE, df, t interval and count."""
    se = standard_error(var)
    keep = np.flatnonzero(sum_w > 0)
    k = len(variables)
    cells = np.repeat(keep, k)
    var_index = np.tile(np.arange(k), keep.size)
    _, _, lo, hi = t_inference(est[cells, var_index], se[cells, var_index], df[cells], alpha)
    out = {} if keys is None else {c: keys[c].to_numpy()[cells] for c in by_cols}
    out.update(
        variable=np.asarray(variables, dtype=object)[var_index],
        estimate=est[cells, var_index],
        se=se[cells, var_index],
        df=df[cells],
        conf_low=lo,
        conf_high=hi,
        n=n_pos[cells].astype(np.int64),
    )
    return cells, var_index, out
