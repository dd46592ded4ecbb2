"""Design-based means and totals of many domains at once, and their design effects.

The domain kernel of the engine (R ``svyby``): one variance per domain and
variable, without the covariance across domains, so thousands of cells
(:func:`~diff_diff.aggregate_survey`) cost one pass over the rows. Taylor
linearization of the full design (every stratum and PSU counts, domains are
zero-weighted subsets) or exact replicate means and totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._grouping import dense_rank
from .._lazy import sparse as sp
from .replicate import replicate_vcov_from_estimates
from ..survey.resolved import ResolvedDesign
from .tsl import distinct_psus, domain_tsl_variance


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
    key = d * np.int64(design.n_psu) + design.psu[inset]
    if distinct_psus(design) and n_domains * design.n_psu > 4 * key.size + 1024:
        psu_pairs = key  # each row its own PSU: the pairs are the rows, in order (as hashed)
    else:
        _, psu_pairs = dense_rank(key, n_domains * design.n_psu)
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


def domain_deff(kind, design, y, domain, n_domains, var) -> np.ndarray:
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
