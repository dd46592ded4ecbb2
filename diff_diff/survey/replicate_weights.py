"""Replicate weights from a strata/PSU design: :func:`as_replicate_design`.

Builds jackknife (JK1, JKn), balanced repeated replication (BRR, Fay) and
Rao-Wu rescaling bootstrap replicate weights, as R's
``survey::as.svrepdesign`` does; the deterministic methods give R's weights
exactly (same PSU order, Hadamard matrix and factors).
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from .._warnings import warn_user
from .design import SurveyDesign
from .hadamard import hadamard

METHODS = ("JK1", "JKn", "BRR", "Fay", "bootstrap")


def as_replicate_design(
    data: pd.DataFrame,
    survey_design: SurveyDesign,
    method: str = "auto",
    *,
    fay_rho: float = 0.5,
    n_replicates: int = 200,
    seed: int | np.random.Generator | None = None,
    prefix: str = "repw_",
    mse: bool = False,
) -> tuple[pd.DataFrame, SurveyDesign]:
    """Replicate weights for a stratified cluster design.

    Parameters
    ----------
    data : DataFrame
        The sample; not modified.
    survey_design : SurveyDesign
        A strata/PSU (Taylor) design with ``pweight`` weights.
    method : {"auto", "JK1", "JKn", "BRR", "Fay", "bootstrap"}
        ``auto``: JKn with strata, JK1 without (R's default).

        - ``JK1``: unstratified delete-one-PSU jackknife; replicate r drops the
          r-th PSU (in order of first appearance) and multiplies the others by
          ``n/(n-1)``; variance multiplier ``(1-f)(n-1)/n``.
        - ``JKn``: stratified jackknife; one replicate per PSU, strata and PSUs
          in order of first appearance; the PSU's stratum partners get
          ``n_h/(n_h-1)``; multipliers ``(1-f_h)(n_h-1)/n_h``. Strata with a
          single PSU get no replicate (and, under ``lonely_psu="average"``,
          the variance is scaled by PSUs / replicates).
        - ``BRR`` / ``Fay``: exactly two PSUs per stratum; stratum k (labels
          sorted as text) takes the signs of row k+1 of a Hadamard matrix; the
          first PSU (first appearance) gets ``2 - rho`` where the sign is +1,
          the other ``rho`` (``rho = 0`` for BRR). FPCs are ignored (with a
          warning), as in R.
        - ``bootstrap``: Rao-Wu (1988) rescaling bootstrap: in each stratum
          draw ``n_h - 1`` PSUs with replacement; a PSU drawn t times gets
          ``1 - lam + lam * n_h/(n_h - 1) * t`` with
          ``lam = sqrt(1 - f_h)``; strata with a single PSU keep weight 1.
    fay_rho : float
        Fay's factor for ``method="Fay"``, in (0, 1).
    n_replicates : int
        Bootstrap replicates.
    seed : int or Generator, optional
        Bootstrap randomness (one generator, drawn per stratum).
    prefix : str
        Replicate columns are named ``{prefix}1 .. {prefix}R``.
    mse : bool
        Passed to the returned design.

    Returns
    -------
    (DataFrame, SurveyDesign)
        A copy of ``data`` with the replicate columns (full analysis weights)
        and a replicate ``SurveyDesign`` using them.

    Examples
    --------
    >>> import pandas as pd
    >>> from diff_diff import SurveyDesign
    >>> from diff_diff import as_replicate_design
    >>> df = pd.DataFrame({"st": [1, 1, 2, 2], "psu": [1, 2, 3, 4], "w": [1.0, 2.0, 1.0, 2.0]})
    >>> out, rep = as_replicate_design(df, SurveyDesign(weights="w", strata="st", psu="psu"), "BRR")
    >>> rep.replicate_method, len(rep.replicate_weights)
    ('BRR', 4)
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(survey_design, SurveyDesign):
        raise TypeError(f"survey_design must be a SurveyDesign, got {type(survey_design).__name__}")
    if survey_design.is_replicate:
        raise ValueError("survey_design already has replicate weights")
    if survey_design.weight_type != "pweight":
        raise ValueError(
            f"replicate weights need sampling weights (weight_type='pweight'), got "
            f"{survey_design.weight_type!r}"
        )
    design = survey_design.resolve(data)
    if method == "auto":
        method = "JKn" if design.has_strata else "JK1"
    if method not in METHODS:
        raise ValueError(f"method must be one of {['auto', *METHODS]}, got {method!r}")
    psu = _first_appearance(design.psu)
    strata = _first_appearance(design.psu_stratum[design.psu])
    n_h = np.bincount(strata[_first_rows(psu)], minlength=strata.max() + 1)
    f_h = design.stratum_fpc[_stratum_order(design)]
    if method == "JK1":
        factors, extra = _jk1(psu, design, f_h)
    elif method == "JKn":
        factors, extra = _jkn(psu, strata, n_h, f_h, design.lonely_psu)
        labels = data[survey_design.strata].to_numpy()[_first_rows(strata)]
        extra["replicate_strata"] = [_plain(labels[h - 1]) for h in extra["replicate_strata"]]
    elif method in ("BRR", "Fay"):
        rho = 0.0 if method == "BRR" else _check_rho(fay_rho)
        factors, extra = _brr(psu, data, survey_design, design, rho)
    else:
        factors, extra = _rao_wu(psu, strata, n_h, f_h, n_replicates, seed)
    weights = design.raw_weights[:, None] * factors
    out = data.copy()
    names = [f"{prefix}{r + 1}" for r in range(weights.shape[1])]
    clash = [c for c in names if c in data.columns]
    if clash:
        raise ValueError(f"as_replicate_design: columns {clash[:3]} already exist; choose a prefix")
    out = pd.concat([out, pd.DataFrame(weights, columns=names, index=data.index)], axis=1)
    rep_design = SurveyDesign(
        weights=survey_design.weights if survey_design.weights else _unit_weights(out),
        replicate_weights=names,
        replicate_method=method,
        mse=mse,
        **extra,
    )
    return out, rep_design


def _unit_weights(out: pd.DataFrame) -> str:
    name = "_design_weight"
    out[name] = 1.0
    return name


def _check_rho(rho: float) -> float:
    if not isinstance(rho, (int, float)) or not 0.0 < rho < 1.0:
        raise ValueError(f"fay_rho must be in (0, 1), got {rho!r}")
    return float(rho)


def _first_appearance(codes: np.ndarray) -> np.ndarray:
    """Recode so that 0, 1, ... follow the order in which codes first appear."""
    _, first = np.unique(codes, return_index=True)
    order = np.argsort(first, kind="stable")
    remap = np.empty(order.size, dtype=np.int64)
    remap[np.unique(codes)[order]] = np.arange(order.size)
    return remap[codes]


def _first_rows(codes: np.ndarray) -> np.ndarray:
    _, first = np.unique(codes, return_index=True)
    return first


def _stratum_order(design) -> np.ndarray:
    """Stratum codes of the design in order of first appearance."""
    row_strata = design.psu_stratum[design.psu]
    _, first = np.unique(row_strata, return_index=True)
    return np.unique(row_strata)[np.argsort(first, kind="stable")]


def _jk1(psu, design, f_h):
    if design.has_strata:
        raise ValueError("JK1 is for unstratified designs; use method='JKn' with strata")
    n = int(psu.max()) + 1
    if n < 2:
        raise ValueError("a jackknife needs at least 2 PSUs")
    factors = np.full((psu.size, n), n / (n - 1.0))
    factors[np.arange(psu.size), psu] = 0.0
    scale = float(f_h[0]) * (n - 1.0) / n
    return factors, {"replicate_scale": scale}


def _jkn(psu, strata, n_h, f_h, lonely):
    n_psu = int(psu.max()) + 1
    psu_stratum = np.empty(n_psu, dtype=np.int64)
    psu_stratum[psu] = strata
    lonely_strata = n_h == 1
    if lonely_strata.any() and lonely == "adjust":
        raise ValueError(
            "JKn replicate weights with lonely_psu='adjust' are not supported: strata "
            f"{np.flatnonzero(lonely_strata).tolist()} have a single PSU; use 'remove', "
            "'certainty' or 'average', or collapse strata"
        )
    # one replicate per PSU of a stratum with 2+ PSUs: stratum by stratum, PSUs in order
    ids = np.arange(n_psu)
    ordered = ids[np.lexsort((ids, psu_stratum))]
    columns = ordered[~lonely_strata[psu_stratum[ordered]]]
    if columns.size == 0:
        raise ValueError("no stratum has two or more PSUs; a jackknife is not possible")
    h = psu_stratum[columns]
    factors = np.ones((psu.size, columns.size))
    row_h = strata
    for j, (p, stratum) in enumerate(zip(columns, h)):
        in_h = row_h == stratum
        factors[in_h, j] = n_h[stratum] / (n_h[stratum] - 1.0)
        factors[psu == p, j] = 0.0
    rscales = f_h[h] * (n_h[h] - 1.0) / n_h[h]
    extra = {
        "replicate_strata": (h + 1).tolist(),
        "replicate_rscales": rscales.tolist(),
    }
    if lonely_strata.any() and lonely == "average":
        extra["replicate_scale"] = n_psu / columns.size
    return factors, extra


def _plain(value):
    """A numpy scalar as the matching Python scalar (labels stay readable)."""
    return value.item() if isinstance(value, np.generic) else value


def _r_text(label) -> str:
    """A stratum label as R's ``as.character`` writes it (integers without ``.0``)."""
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    return str(label)


def _brr(psu, data, survey_design, design, rho):
    if not design.has_strata:
        raise ValueError("BRR and Fay need a stratified design with two PSUs per stratum")
    if design.has_fpc:
        warn_user(
            "BRR/Fay replicate weights ignore the finite population correction (as R does)")
    labels = data[survey_design.strata].to_numpy()
    row_strata = design.psu_stratum[design.psu]
    first_rows = _first_rows(row_strata)
    stratum_text = {int(row_strata[i]): _r_text(labels[i]) for i in first_rows}
    ranked = sorted(stratum_text, key=lambda s: stratum_text[s])
    rank = np.empty(max(ranked) + 1, dtype=np.int64)
    rank[ranked] = np.arange(len(ranked))
    n_psu = int(psu.max()) + 1
    psu_stratum = np.empty(n_psu, dtype=np.int64)
    psu_stratum[psu] = row_strata
    counts = np.bincount(psu_stratum, minlength=len(ranked))
    if (counts != 2).any():
        bad = [stratum_text[s] for s in np.flatnonzero(counts != 2)[:5]]
        raise ValueError(
            f"BRR and Fay need exactly two PSUs per stratum; strata {bad} have "
            f"{sorted(set(counts[counts != 2].tolist()))} PSUs"
        )
    # PSUs are numbered by first appearance, so the lower number is the "first" PSU
    first_psu = np.full(len(ranked), np.iinfo(np.int64).max)
    np.minimum.at(first_psu, psu_stratum, np.arange(n_psu))
    is_first = first_psu[psu_stratum[psu]] == psu
    signs = hadamard(len(ranked))[1 : len(ranked) + 1]  # row k+1 for stratum k
    plus = signs[rank[row_strata]] == 1  # (n, R)
    first_gets = np.where(plus, 2.0 - rho, rho)
    other_gets = np.where(plus, rho, 2.0 - rho)
    factors = np.where(is_first[:, None], first_gets, other_gets)
    return factors, ({"fay_rho": rho} if rho > 0 else {})


def _rao_wu(psu, strata, n_h, f_h, n_replicates, seed):
    if isinstance(n_replicates, bool) or not isinstance(n_replicates, (int, np.integer)) \
            or n_replicates < 2:
        raise ValueError(f"n_replicates must be an integer >= 2, got {n_replicates!r}")
    rng = np.random.default_rng(seed)
    n_psu = int(psu.max()) + 1
    psu_stratum = np.empty(n_psu, dtype=np.int64)
    psu_stratum[psu] = strata
    order = np.argsort(psu_stratum, kind="stable")  # PSUs grouped by stratum
    starts = np.concatenate([[0], np.cumsum(n_h)[:-1]])
    draws = np.where(n_h > 1, n_h - 1, 0)
    slot_stratum = np.repeat(np.arange(n_h.size), draws)
    counts = np.zeros((n_replicates, n_psu))
    for r in range(n_replicates):
        pick = starts[slot_stratum] + (rng.random(slot_stratum.size) * n_h[slot_stratum]).astype(
            np.int64
        )
        counts[r] = np.bincount(order[pick], minlength=n_psu)
    lam = np.sqrt(np.clip(f_h, 0.0, None))
    h = psu_stratum
    with np.errstate(divide="ignore", invalid="ignore"):
        psu_factor = 1.0 - lam[h] + lam[h] * (n_h[h] / (n_h[h] - 1.0)) * counts
    psu_factor = np.where((n_h[h] > 1)[None, :], psu_factor, 1.0)
    return psu_factor.T[psu], {}
