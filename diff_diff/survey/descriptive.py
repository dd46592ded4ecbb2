"""Design-based means and totals, overall and by domain (R ``svymean``/``svytotal``/``svyby``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._grouping import dense_rank, group_codes
from ..inference.intervals import t_inference
from ..inference.replicate import replicate_vcov_from_estimates
from ..inference.tsl import domain_tsl_variance
from .design import SurveyDesign
from .resolved import ResolvedDesign


def survey_mean(
    data: pd.DataFrame,
    variable: str | Sequence[str],
    survey_design: SurveyDesign,
    by: str | Sequence[str] | None = None,
    deff: bool = False,
    na_rm: bool = False,
    alpha: float = 0.05,
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
    data : DataFrame
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
    return _describe("mean", data, variable, survey_design, by, deff, na_rm, alpha)


def survey_total(
    data: pd.DataFrame,
    variable: str | Sequence[str],
    survey_design: SurveyDesign,
    by: str | Sequence[str] | None = None,
    deff: bool = False,
    na_rm: bool = False,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Design-based population totals ``sum_{i in d} w_i y_i`` with standard errors.

    Uses the raw (as supplied) weights, so the totals are on the population
    scale the weights describe. Matches R's ``svytotal`` and
    ``svyby(..., svytotal)``. Parameters and result as :func:`survey_mean`.

    Examples
    --------
    >>> import pandas as pd
    >>> from diff_diff import SurveyDesign, survey_total
    >>> df = pd.DataFrame({"y": [1.0, 0.0, 1.0, 1.0], "w": [10.0, 10.0, 20.0, 20.0],
    ...                    "st": [1, 1, 2, 2]})
    >>> float(survey_total(df, "y", SurveyDesign(weights="w", strata="st"))["estimate"].iloc[0])
    50.0
    """
    return _describe("total", data, variable, survey_design, by, deff, na_rm, alpha)


def as_column_list(value, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f"{name} must be a column name or a non-empty list of column names, got {value!r}")


def numeric_matrix(data: pd.DataFrame, variables: list[str]) -> np.ndarray:
    columns = []
    for col in variables:
        if col not in data.columns:
            raise ValueError(f"variable {col!r} not found in data")
        series = data[col]
        if pd.api.types.is_bool_dtype(series):
            series = series.astype(float)
        elif not pd.api.types.is_numeric_dtype(series):
            raise ValueError(f"variable {col!r} must be numeric or boolean, got dtype {series.dtype}")
        values = series.to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(values).any():
            raise ValueError(f"variable {col!r} contains infinite values")
        columns.append(values)
    return np.column_stack(columns)


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
    if not complete.all() and not na_rm:
        bad = [v for v, col in zip(variables, y.T) if np.isnan(col).any()]
        raise ValueError(
            f"variable(s) {bad} contain {int((~complete).sum())} rows with missing values; "
            "pass na_rm=True to leave those rows out of the domains"
        )
    domain, keys = _domains(data, by_cols)
    domain = np.where(complete, domain, -1)
    n_domains = 1 if keys is None else len(keys)
    stats = domain_statistics(kind, design, y, domain, n_domains)
    est, var, df, n_pos = stats.estimate, stats.variance, stats.df, stats.n
    se = np.where(np.isnan(var), np.nan, np.sqrt(np.clip(var, 0.0, None)))
    keep = np.flatnonzero(stats.sum_w > 0)
    k = len(variables)
    cells = np.repeat(keep, k)
    var_index = np.tile(np.arange(k), keep.size)
    t, p, lo, hi = t_inference(est[cells, var_index], se[cells, var_index], df[cells], alpha)
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
    if deff:
        out["deff"] = _deff(kind, design, np.where(complete[:, None], y, 0.0), domain, n_domains,
                            var)[cells, var_index]
    return pd.DataFrame(out)


@dataclass(frozen=True, eq=False)
class DomainStatistics:
    """Means or totals of k variables in D domains with their design variances."""

    estimate: np.ndarray  # (D, k)
    variance: np.ndarray  # (D, k)
    df: np.ndarray  # (D,)
    n: np.ndarray  # (D,) rows with positive weight
    sum_w: np.ndarray  # (D,) sum of the weights used (analysis weights for means, raw for totals)
    influence: np.ndarray  # (n, k) each row's influence value for its own domain


def domain_statistics(
    kind: str,
    design: ResolvedDesign,
    y: np.ndarray,
    domain: np.ndarray,
    n_domains: int,
    with_df: bool = True,
) -> DomainStatistics:
    """Domain means (``kind="mean"``) or totals of ``y`` (n x k) with design variances.

    ``domain`` holds each row's domain code (-1: in no domain; such rows and
    rows with zero weight contribute nothing but keep their place in the
    design). NaN values of ``y`` are only allowed in rows outside every domain.
    Taylor linearization for strata/PSU designs (R ``svyby``), exact replicate
    means or totals for replicate designs. ``with_df=False`` skips the
    per-domain degrees of freedom (NaN).
    """
    weights = design.weights if kind == "mean" else design.raw_weights
    inset = (domain >= 0) & (design.weights > 0)
    rows = np.flatnonzero(inset)
    d_in = domain[rows]
    w_in = weights[rows]
    y_in = y[rows]
    sum_w = np.bincount(d_in, weights=w_in, minlength=n_domains)
    n_pos = np.bincount(d_in, minlength=n_domains)
    est = np.column_stack(
        [np.bincount(d_in, weights=w_in * y_in[:, j], minlength=n_domains)
         for j in range(y.shape[1])]
    )
    psi = np.zeros(y.shape)
    if kind == "mean":
        has = sum_w > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            est = est / sum_w[:, None]
        scale = (w_in / np.where(has, sum_w, 1.0)[d_in])[:, None]
        psi[rows] = scale * (y_in - est[d_in])
    else:
        psi[rows] = w_in[:, None] * y_in
    if design.replicate is None:
        if design.calibration is None:
            var = domain_tsl_variance(psi, domain, n_domains, design)
        else:
            psus, doms, values = design.calibration.residualize_domains(psi, domain, design.psu)
            var = domain_tsl_variance(values, doms, n_domains, design, psu=psus,
                                      all_strata_present=True)
        df = _domain_df(design, domain, n_domains) if with_df else np.full(n_domains, np.nan)
    else:
        y_clean = np.where((domain >= 0)[:, None], y, 0.0)
        var = _replicate_domain_variance(kind, design, y_clean, domain, n_domains, est)
        df = np.full(n_domains, float(design.df))
    return DomainStatistics(est, var, df, n_pos, sum_w, psi)


def _domain_df(design: ResolvedDesign, domain: np.ndarray, n_domains: int) -> np.ndarray:
    """R's ``degf`` of each domain subset: PSUs minus strata with positive weight."""
    inset = (domain >= 0) & (design.weights > 0)
    d = domain[inset].astype(np.int64)
    _, psu_pairs = dense_rank(d * np.int64(design.n_psu) + design.psu[inset],
                              n_domains * design.n_psu)
    psu_dom = psu_pairs // design.n_psu
    stratum = design.psu_stratum[psu_pairs % design.n_psu]
    _, strata_pairs = dense_rank(psu_dom * np.int64(design.n_strata) + stratum,
                                 n_domains * design.n_strata)
    if design.psu_multiplicity is None:
        n_psu = np.bincount(psu_dom, minlength=n_domains).astype(float)
    else:
        n_psu = np.bincount(
            psu_dom, weights=design.psu_multiplicity[psu_pairs % design.n_psu], minlength=n_domains
        )
    n_strata = np.bincount(strata_pairs // design.n_strata, minlength=n_domains)
    return n_psu - n_strata


def _domain_indicator(domain: np.ndarray, n_domains: int) -> sp.csr_matrix:
    rows = np.flatnonzero(domain >= 0)
    return sp.csr_matrix(
        (np.ones(rows.size), (domain[rows], rows)), shape=(n_domains, domain.shape[0])
    )


def _replicate_domain_variance(kind, design, y, domain, n_domains, est) -> np.ndarray:
    spec = design.replicate
    rep_w = spec.weights if kind == "mean" else spec.weights / design.weight_scale
    indicator = _domain_indicator(domain, n_domains)
    numer = [np.asarray(indicator @ (rep_w * y[:, [j]])) for j in range(y.shape[1])]
    if kind == "mean":
        denom = np.asarray(indicator @ rep_w)
        with np.errstate(invalid="ignore", divide="ignore"):
            numer = [n / denom for n in numer]
    thetas = np.stack(numer, axis=-1)  # (D, R, k)
    var = np.full((n_domains, y.shape[1]), np.nan)
    for d in range(n_domains):
        if not np.isfinite(est[d]).all():
            continue
        vcov, _ = replicate_vcov_from_estimates(thetas[d], est[d], spec.scale, spec.rscales, spec.mse)
        var[d] = np.diag(vcov)
    return var


def _deff(kind, design, y, domain, n_domains, var) -> np.ndarray:
    """R's ``deff``: variance over that of simple random sampling without replacement.

    SRS variance of a mean: ``s_w^2 (N - n) / (N n)`` with ``s_w^2`` the
    weighted variance (divisor ``n - 1``), N the sum of the raw weights and n
    the sample size of the domain (rows with non-zero weight; all domain rows
    for replicate designs, as R counts them). Totals multiply by ``N^2``.
    """
    raw = design.raw_weights
    in_dom = domain >= 0
    d = np.where(in_dom, domain, 0)
    w_in = np.where(in_dom, raw, 0.0)
    big_n = np.bincount(d, weights=w_in, minlength=n_domains)
    if design.replicate is None:
        n = np.bincount(d, weights=(in_dom & (raw != 0)).astype(float), minlength=n_domains)
    else:
        n = np.bincount(d, weights=in_dom.astype(float), minlength=n_domains)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.column_stack(
            [np.bincount(d, weights=w_in * y[:, j], minlength=n_domains) for j in range(y.shape[1])]
        ) / big_n[:, None]
        ss = np.column_stack(
            [np.bincount(d, weights=w_in * (y[:, j] - mean[d, j]) ** 2, minlength=n_domains)
             for j in range(y.shape[1])]
        )
        s2 = ss / big_n[:, None] * (n / (n - 1.0))[:, None]
        srs = s2 * ((big_n - n) / (big_n * n))[:, None]
        if kind == "total":
            srs = srs * (big_n**2)[:, None]
        srs = np.where((big_n >= n)[:, None], srs, np.nan)
        return var / srs
