"""Taylor-series linearization: the design variance of a sum of influence values.

For influence values ``psi`` (n x k, on the sum scale) the variance of
``psi.sum(0)`` under a stratified multistage design is (Binder 1983; R
``survey::svyrecvar`` with ultimate-cluster approximation)::

    V = sum_h (1 - n_h/N_h) n_h/(n_h - 1) sum_j (z_hj - zbar_h)(z_hj - zbar_h)'

where ``z_hj`` are PSU totals of ``psi`` in stratum h. Independent observations
(each row its own PSU, one stratum) and one-way clustering (PSU = cluster) are
special cases of the same formula, so they share this code.

The functions here are pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from .._grouping import dense_rank
from .._lazy import sparse as sp

# R's survey package: a stratum whose correction factor is below this is a census.
CENSUS_TOLERANCE = 1e-7


def psu_totals(psi: np.ndarray, psu: np.ndarray, n_psu: int) -> np.ndarray:
    """Sum the rows of ``psi`` (n x k) within PSU codes ``psu`` -> (n_psu x k).

    One pass over the data: a ``bincount`` per column for a few columns, else a sparse
    indicator product; no Python loop over rows or PSUs.
    """
    psi = np.asarray(psi, dtype=float)
    one_dim = psi.ndim == 1
    if one_dim:
        psi = psi[:, None]
    n = psi.shape[0]
    if psu.shape[0] != n:
        raise ValueError(f"psi has {n} rows but the design has {psu.shape[0]}")
    if psi.shape[1] <= 4:  # a few columns: one counting pass each, no matrix to build
        totals = np.empty((n_psu, psi.shape[1]))
        for j in range(psi.shape[1]):
            totals[:, j] = np.bincount(psu, weights=psi[:, j], minlength=n_psu)
        return totals[:, 0] if one_dim else totals
    indicator = sp.csc_matrix(
        (np.ones(n), psu, np.arange(n + 1)), shape=(n_psu, n)
    )
    totals = np.asarray(indicator @ psi)
    return totals[:, 0] if one_dim else totals


def stratum_weights(
    stratum_n_psu: np.ndarray,
    stratum_fpc: np.ndarray,
    lonely_psu: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-stratum variance multipliers under R's lonely-PSU rules.

    Returns ``(scale, centred, lonely)``: the multiplier of each stratum's sum
    of squared deviations (``(1 - f_h) n_h/(n_h-1)``; 0 for census strata and
    for lonely PSUs that ``remove``, ``certainty`` and ``average`` leave out),
    whether its PSU totals are centred on the stratum mean (not so for a lonely
    PSU under ``adjust``, which is measured against zero, the grand mean of an
    influence function), and which strata hold a single, non-census PSU.
    """
    n_h = stratum_n_psu.astype(float)
    f = np.asarray(stratum_fpc, dtype=float)
    census = f < CENSUS_TOLERANCE
    lonely = (n_h == 1) & ~census
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n_h > 1, f * n_h / (n_h - 1.0), f)
    scale = np.where(census, 0.0, scale)
    centred = ~(lonely & (lonely_psu == "adjust"))
    if lonely_psu in ("remove", "certainty", "average"):
        scale = np.where(lonely, 0.0, scale)
    return scale, centred, lonely


def lonely_inflation(present: np.ndarray, lonely: np.ndarray, lonely_psu: str) -> np.ndarray:
    """Overall factor per domain from the lonely-PSU rule.

    ``present`` (n_strata,) or (n_strata, n_domains) marks the strata a
    domain touches. ``average`` scales by (strata present) / (present strata
    with more than one PSU), as R does for a subset. Where nothing identifies
    the variance (every present stratum a lonely PSU left out by ``remove`` or
    ``average``), the factor is NaN.
    """
    present = np.asarray(present, dtype=bool)
    shape = present.shape[1:]
    lonely = lonely.reshape((-1,) + (1,) * len(shape))
    n_present = present.sum(axis=0)
    n_ok = (present & ~lonely).sum(axis=0)
    if lonely_psu == "average":
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(n_ok > 0, n_present / np.maximum(n_ok, 1), np.nan)
    else:
        factor = np.ones(shape)
    if lonely_psu in ("remove", "average"):
        factor = np.where(n_ok > 0, factor, np.nan)
    return np.asarray(factor, dtype=float)


def centred_psu_totals(
    totals: np.ndarray,
    psu_stratum: np.ndarray,
    stratum_n_psu: np.ndarray,
    centred: np.ndarray,
    psu_multiplicity: np.ndarray | None = None,
) -> np.ndarray:
    """Deviations of PSU totals (per sampled unit) from their stratum mean.

    ``totals`` is (n_psu x k). With a multiplicity (frequency weights), a PSU
    total stands for ``m`` identical units of ``total / m`` each.
    """
    n_strata = stratum_n_psu.shape[0]
    indicator = sp.csc_matrix(
        (np.ones(psu_stratum.shape[0]), psu_stratum, np.arange(psu_stratum.shape[0] + 1)),
        shape=(n_strata, psu_stratum.shape[0]),
    )
    sums = np.asarray(indicator @ totals)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(centred[:, None], sums / stratum_n_psu[:, None], 0.0)
    if psu_multiplicity is None:
        per_unit = totals
    else:
        m = psu_multiplicity[:, None]
        per_unit = np.divide(totals, m, out=np.zeros_like(totals), where=m > 0)
    return per_unit - means[psu_stratum]


def tsl_vcov_from_totals(
    totals: np.ndarray,
    psu_stratum: np.ndarray,
    stratum_n_psu: np.ndarray,
    stratum_fpc: np.ndarray,
    lonely_psu: str = "remove",
    *,
    psu_multiplicity: np.ndarray | None = None,
    stratum_present: np.ndarray | None = None,
    diag_only: bool = False,
) -> np.ndarray:
    """Stratified between-PSU variance of PSU totals (n_psu x k).

    Returns the k x k covariance matrix, or its diagonal (k,) when
    ``diag_only`` (cheap for many domains at once).
    ``stratum_present`` marks the strata a domain touches; the ``average``
    rule counts only those, as R does for a subset design.
    """
    totals = np.asarray(totals, dtype=float)
    if totals.ndim == 1:
        totals = totals[:, None]
    scale, centred, lonely = stratum_weights(stratum_n_psu, stratum_fpc, lonely_psu)
    present = np.ones(lonely.shape, bool) if stratum_present is None else stratum_present
    inflation = lonely_inflation(present, lonely, lonely_psu)
    dev = centred_psu_totals(totals, psu_stratum, stratum_n_psu, centred, psu_multiplicity)
    c = scale[psu_stratum]
    if psu_multiplicity is not None:
        c = c * psu_multiplicity
    if diag_only:
        out = np.einsum("j,jk,jk->k", c, dev, dev)
    else:
        out = (dev * c[:, None]).T @ dev
    return out * inflation


def tsl_vcov(psi: np.ndarray, design) -> np.ndarray:
    """Taylor-linearization covariance (k x k) of ``psi.sum(0)`` under ``design``.

    ``design`` is a :class:`~diff_diff.survey.ResolvedDesign`; ``psi`` has one
    row per design row. A calibrated design first replaces ``psi`` by its
    calibration residuals.
    """
    psi = np.asarray(psi, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    if design.calibration is not None:
        psi = design.calibration.residualize(psi)
    n = psi.shape[0]
    if (not design.has_psu and design.n_psu == n and design.n_strata == 1
            and design.psu_multiplicity is None and design.stratum_fpc[0] >= CENSUS_TOLERANCE
            and n > 1):
        # every row its own PSU, one stratum: n/(n-1) (1 - f) sum (psi_i - mean)(psi_i - mean)'
        centred = psi - psi.mean(axis=0)
        return centred.T @ centred * (n / (n - 1.0) * design.stratum_fpc[0])
    totals = psu_totals(psi, design.psu, design.n_psu)
    return tsl_vcov_from_totals(
        totals,
        design.psu_stratum,
        design.stratum_n_psu,
        design.stratum_fpc,
        design.lonely_psu,
        psu_multiplicity=design.psu_multiplicity,
    )


def distinct_psus(design, psu=None) -> bool:
    """Whether the design's own PSU codes (``psu`` None) are all different: each row its
    own PSU (codes are dense, so ``n_psu`` codes over ``n_psu`` rows are a permutation)."""
    if psu is not None:
        return False
    codes = getattr(design, "psu", None)
    return codes is not None and int(design.n_psu) == codes.shape[0]


def domain_tsl_variance(
    psi: np.ndarray,
    domain: np.ndarray,
    n_domains: int,
    design,
    psu: np.ndarray | None = None,
    all_strata_present: bool = False,
) -> np.ndarray:
    """Taylor-linearization variances of many domain estimates at once.

    Each entry ``e`` carries influence values ``psi[e]`` (k,) in PSU
    ``psu[e]`` for domain ``domain[e]`` (codes 0..n_domains-1, -1 for none).
    Without ``psu``, entry e is design row e: one domain per row. The result
    (n_domains x k) equals ``diag(tsl_vcov(psi_d, design))`` for every domain
    d, with ``psi_d`` the influence matrix of d (zero elsewhere), without
    forming it: only the PSUs a domain touches are summed, and the untouched
    PSUs of a stratum enter as zeros in closed form. Strata count as present
    for the ``average`` rule when the domain has an entry in them (or all,
    with ``all_strata_present``, as for a calibrated design in R).
    """
    psi = np.asarray(psi, dtype=float)
    if psi.ndim == 1:
        psi = psi[:, None]
    k = psi.shape[1]
    own_rows = distinct_psus(design, psu)
    psu = design.psu if psu is None else psu
    keep = domain >= 0
    n_psu, n_strata = design.n_psu, design.n_strata
    key = domain[keep].astype(np.int64) * np.int64(n_psu) + psu[keep]
    if own_rows and n_domains * n_psu > 4 * key.size + 1024:
        # each row its own PSU and a key space too large to count: every (domain, PSU)
        # pair is one entry, in order - what hashing returns (dense_rank), without a hash
        # table as large as the data (it made many domains super-linear in the rows)
        pair, pair_key = np.arange(key.size, dtype=np.int64), key
    else:
        pair, pair_key = dense_rank(key, n_domains * n_psu)
    n_pairs = pair_key.shape[0]
    values = np.asfortranarray(psi if keep.all() else psi[keep])
    z = np.column_stack(
        [np.bincount(pair, weights=values[:, j], minlength=n_pairs) for j in range(k)]
    )
    pair_domain = pair_key // n_psu
    pair_psu = pair_key % n_psu
    pair_stratum = design.psu_stratum[pair_psu]
    scale, centred, lonely = stratum_weights(
        design.stratum_n_psu, design.stratum_fpc, design.lonely_psu
    )
    # group = (stratum, domain) cell
    group, group_key = dense_rank(pair_domain * np.int64(n_strata) + pair_stratum,
                                  n_domains * n_strata)
    n_groups = group_key.shape[0]
    g_domain = group_key // n_strata
    g_stratum = group_key % n_strata
    n_h = design.stratum_n_psu[g_stratum].astype(float)
    if design.psu_multiplicity is None:
        m = np.ones(n_pairs)
    else:
        m = design.psu_multiplicity[pair_psu]
    units_present = np.bincount(group, weights=m, minlength=n_groups)
    out = np.zeros((n_domains, k))
    for j in range(k):
        sums = np.bincount(group, weights=z[:, j], minlength=n_groups)
        mean = np.where(centred[g_stratum], sums / n_h, 0.0)
        per_unit = np.divide(z[:, j], m, out=np.zeros(n_pairs), where=m > 0)
        dev2 = m * (per_unit - mean[group]) ** 2
        ss = np.bincount(group, weights=dev2, minlength=n_groups)
        ss += (n_h - units_present) * mean**2
        out[:, j] = np.bincount(g_domain, weights=scale[g_stratum] * ss, minlength=n_domains)
    if all_strata_present:
        present = np.ones((n_strata, n_domains), dtype=bool)
    else:
        present = np.zeros((n_strata, n_domains), dtype=bool)
        present[g_stratum, g_domain] = True
    return out * lonely_inflation(present, lonely, design.lonely_psu)[:, None]
