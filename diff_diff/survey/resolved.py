"""A survey design resolved against data: validated arrays for the engine."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._frames import column

if TYPE_CHECKING:  # pragma: no cover
    from .calibration_model import CalibrationProjection
    from .design import SurveyDesign

# Relative tolerance of R's ``degf()`` rank of the replicate weights.
REPLICATE_RANK_TOLERANCE = 1e-5


@dataclass(frozen=True, eq=False)
class ReplicateSpec:
    """Replicate weights and their variance multipliers.

    ``weights`` are analysis replicate weights (n x R) on the same scale as
    :attr:`ResolvedDesign.weights`; the replicate variance of an estimator
    ``theta`` is ``scale * sum_r rscales[r] * (theta_r - centre)^2``.
    """

    method: str
    weights: np.ndarray
    scale: float
    rscales: np.ndarray
    mse: bool
    fay_rho: float = 0.0

    @property
    def n_replicates(self) -> int:
        return int(self.weights.shape[1])

    @cached_property
    def rank(self) -> int:
        """Rank of the replicate weight matrix, as R's ``degf()`` counts it."""
        return _sequential_rank(self.weights, REPLICATE_RANK_TOLERANCE)


@dataclass(frozen=True, eq=False)
class ResolvedDesign:
    """A survey design validated against a data frame, as arrays.

    Attributes
    ----------
    weights : ndarray (n,)
        Analysis weights; pweights and aweights are rescaled to mean 1.
    raw_weights : ndarray (n,)
        The weights as supplied (ones when the design has no weights).
    weight_type : str
    psu : ndarray of int (n,)
        PSU code of each row, 0..n_psu-1 (each row is its own PSU when the
        design names no PSU column).
    psu_stratum : ndarray of int (n_psu,)
        Stratum code of each PSU.
    stratum_n_psu : ndarray of int (n_strata,)
        Sampled PSUs per stratum in the full design.
    stratum_fpc : ndarray of float (n_strata,)
        Finite population correction factor ``1 - n_h / N_h`` per stratum
        (1 without FPC).
    lonely_psu : str
    replicate : ReplicateSpec or None
    psu_multiplicity : ndarray of float (n_psu,) or None
        For frequency weights without a PSU column: how many sampled
        observations each row stands for (each is its own PSU).
    calibration : CalibrationProjection or None
        For calibrated designs: turns influence values into calibration
        residuals before Taylor linearization.
    """

    weights: np.ndarray
    raw_weights: np.ndarray
    weight_type: str
    psu: np.ndarray
    psu_stratum: np.ndarray
    stratum_n_psu: np.ndarray
    stratum_fpc: np.ndarray
    lonely_psu: str = "remove"
    has_strata: bool = False
    has_psu: bool = False
    has_fpc: bool = False
    replicate: ReplicateSpec | None = None
    psu_multiplicity: np.ndarray | None = None
    calibration: "CalibrationProjection | None" = None
    source: "SurveyDesign | None" = field(default=None, repr=False)

    # ----------------------------------------------------------- basic sizes
    @property
    def n_obs(self) -> int:
        """Number of rows (observations) of the data the design was resolved on."""
        return int(self.weights.shape[0])

    @property
    def n_psu(self) -> int:
        """Number of sampled PSUs (each row its own PSU when the design names none)."""
        return int(self.psu_stratum.shape[0])

    @property
    def n_strata(self) -> int:
        """Number of strata (1 when the design names none)."""
        return int(self.stratum_n_psu.shape[0])

    @property
    def strata(self) -> np.ndarray:
        """Stratum code of each row."""
        return self.psu_stratum[self.psu]

    @property
    def weight_scale(self) -> float:
        """Factor ``c`` with ``weights == c * raw_weights`` (rows with weight)."""
        total_raw = float(self.raw_weights.sum())
        return float(self.weights.sum()) / total_raw if total_raw > 0 else 1.0

    @property
    def uses_replicates(self) -> bool:
        """Whether variances come from replicate weights rather than strata and PSUs."""
        return self.replicate is not None

    @property
    def from_survey(self) -> bool:
        """Resolved from a :class:`SurveyDesign` (not independent units or bare clusters)."""
        return self.source is not None

    @property
    def clustered(self) -> bool:
        """Rows are grouped into PSUs (the design's own or ``cluster=`` labels)."""
        return self.has_psu

    @property
    def defines_clustering(self) -> bool:
        """PSUs or replicate weights: the design itself says how rows are correlated."""
        return self.has_psu or self.replicate is not None

    @property
    def is_trivial(self) -> bool:
        """No strata, no PSU column, no FPC and no replicates."""
        return not (self.has_strata or self.has_psu or self.has_fpc or self.uses_replicates)

    @cached_property
    def df(self) -> float:
        """Design degrees of freedom (R's ``degf``).

        Taylor designs: PSUs minus strata among rows with non-zero weight.
        Replicate designs: rank of the replicate analysis weights minus one.
        """
        if self.replicate is not None:
            return float(self.replicate.rank - 1)
        psus = self.psus_with_weight()
        strata = np.bincount(self.psu_stratum[psus], minlength=self.n_strata) > 0
        n_psu = psus.size if self.psu_multiplicity is None else self.psu_multiplicity[psus].sum()
        return float(n_psu - strata.sum())

    def psus_with_weight(self) -> np.ndarray:
        """Codes of the PSUs that hold at least one row with non-zero weight."""
        counts = np.bincount(self.psu, weights=self.weights != 0, minlength=self.n_psu)
        return np.flatnonzero(counts)

    # -------------------------------------------------------------- subsets
    def take(self, rows: np.ndarray) -> "ResolvedDesign":
        """The design restricted to ``rows`` (indices or a boolean mask).

        PSU and stratum structure (sampled PSUs per stratum, FPC) stay those of
        the full design, as R's ``subset()`` keeps them: dropping rows makes a
        domain, not a new sample.

        Parameters
        ----------
        rows : ndarray
            Row indices or a boolean mask.

        Returns
        -------
        ResolvedDesign
        """
        rows = np.asarray(rows)
        if self.calibration is not None:
            raise ValueError(
                "a calibrated design cannot be cut to a subset of rows: the calibration "
                "residuals involve every row; restrict() it to a domain instead"
            )
        rep = self.replicate
        if rep is not None:
            rep = replace(rep, weights=rep.weights[rows])
        return replace(
            self,
            weights=self.weights[rows],
            raw_weights=self.raw_weights[rows],
            psu=self.psu[rows],
            replicate=rep,
        )

    def with_clusters(self, cluster: np.ndarray) -> "ResolvedDesign":
        """Use ``cluster`` labels (one per row) as the PSUs of this design.

        For a design without a PSU column, e.g. to cluster by unit: the
        clusters become the PSUs within the design's strata (a cluster seen in
        two strata is an error unless the design has ``nest=True``, which
        splits it by stratum).

        Parameters
        ----------
        cluster : ndarray
            One cluster label per row.

        Returns
        -------
        ResolvedDesign

        Raises
        ------
        ValueError
            If a cluster spans two strata and the design is not nested.
        """
        if self.has_psu or self.replicate is not None:
            raise ValueError(
                "cluster= cannot be combined with a survey design that names PSUs or replicate "
                "weights: the design already defines the clustering"
            )
        if self.has_fpc:
            raise ValueError(
                "clusters cannot be added to a design with an FPC: the FPC counts the "
                "design's own PSUs; name the PSU column in the SurveyDesign instead"
            )
        cluster = np.asarray(cluster)
        if cluster.shape != (self.n_obs,):
            raise ValueError(
                f"cluster must have one label per row ({self.n_obs}), got shape {cluster.shape}"
            )
        codes, labels = _dense_codes(cluster)
        strata = self.strata
        if self.has_strata:
            nest = bool(self.source.nest) if self.source is not None else False
            if nest:
                codes, _ = pd.factorize(strata * np.int64(labels.shape[0]) + codes, sort=True)
                codes = codes.astype(np.int64)
            else:
                _check_nested(codes, strata, np.asarray(labels), "cluster")
        n_psu = int(codes.max()) + 1
        psu_stratum = np.zeros(n_psu, dtype=np.int64)
        psu_stratum[codes] = strata
        stratum_n_psu = np.bincount(psu_stratum, minlength=self.n_strata).astype(np.int64)
        return replace(
            self,
            psu=codes,
            psu_stratum=psu_stratum,
            stratum_n_psu=stratum_n_psu,
            has_psu=True,
            psu_multiplicity=None,
        )

    def restrict(self, inside: np.ndarray) -> "ResolvedDesign":
        """A domain: zero weight (and replicate weight) outside ``inside``.

        Parameters
        ----------
        inside : ndarray of bool
            One flag per row: the domain.

        Returns
        -------
        ResolvedDesign
        """
        inside = np.asarray(inside, dtype=bool)
        rep = self.replicate
        if rep is not None:
            rep = replace(rep, weights=np.where(inside[:, None], rep.weights, 0.0))
        return replace(
            self,
            weights=np.where(inside, self.weights, 0.0),
            raw_weights=np.where(inside, self.raw_weights, 0.0),
            replicate=rep,
        )


# ---------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------
def _dense_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..G-1 (sorted labels) of cluster labels; labels that already are such codes
    (the estimators' unit codes) are used as they are."""
    if (labels.dtype.kind in "iu" and labels.size and labels.min() == 0
            and labels.max() < labels.size):
        present = np.bincount(labels)
        if present.all():
            return labels.astype(np.int64, copy=False), np.arange(present.size)
    codes, uniques = pd.factorize(labels, sort=True)
    if (codes < 0).any():
        raise ValueError(f"cluster contains {int((codes < 0).sum())} missing values")
    return codes.astype(np.int64), np.asarray(uniques)


def trivial_design(n: int, frequency_weights: np.ndarray | None = None) -> ResolvedDesign:
    """Independent, equally weighted observations (or frequency-weighted rows)."""
    if frequency_weights is None:
        weights = np.ones(n)
        multiplicity = None
        n_units = n
        weight_type = "pweight"
    else:
        weights = np.asarray(frequency_weights, dtype=float)
        if weights.shape != (n,):
            raise ValueError(f"frequency weights must have shape ({n},), got {weights.shape}")
        _check_weight_values(weights, "frequency weights")
        multiplicity = weights
        n_units = int(np.rint(weights.sum()))
        weight_type = "fweight"
    return ResolvedDesign(
        weights=weights,
        raw_weights=weights.copy(),
        weight_type=weight_type,
        psu=np.arange(n, dtype=np.int64),
        psu_stratum=np.zeros(n, dtype=np.int64),
        stratum_n_psu=np.array([n_units], dtype=np.int64),
        stratum_fpc=np.ones(1),
        psu_multiplicity=multiplicity,
    )


def resolve_design(design: "SurveyDesign", data: pd.DataFrame) -> ResolvedDesign:
    """Validate ``design`` against ``data``; see :meth:`SurveyDesign.resolve`."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    n = len(data)
    if n == 0:
        raise ValueError("SurveyDesign.resolve: data has no rows")
    raw = _weights(design, data)
    total = raw.sum()
    if design.weight_type in ("pweight", "aweight"):
        weights = raw * (n / total)
    else:
        weights = raw.copy()

    if design.replicate_weights is not None:
        replicate = _replicates(design, data, raw, weights)
        return ResolvedDesign(
            weights=weights,
            raw_weights=raw,
            weight_type=design.weight_type,
            psu=np.arange(n, dtype=np.int64),
            psu_stratum=np.zeros(n, dtype=np.int64),
            stratum_n_psu=np.array([n], dtype=np.int64),
            stratum_fpc=np.ones(1),
            lonely_psu=design.lonely_psu,
            replicate=replicate,
            source=design,
        )

    if design.strata is not None:
        strata, strata_labels = _labels(data, design.strata, "strata")
    else:
        strata, strata_labels = np.zeros(n, dtype=np.int64), np.array([0])
    n_strata = strata_labels.shape[0]

    if design.psu is not None:
        psu, psu_labels = _labels(data, design.psu, "psu")
        if design.strata is not None:
            if design.nest:
                psu, _ = pd.factorize(strata * np.int64(psu_labels.shape[0]) + psu, sort=True)
                psu = psu.astype(np.int64)
            else:
                _check_nested(psu, strata, psu_labels, f"SurveyDesign.psu: column {design.psu!r}")
    else:
        psu = np.arange(n, dtype=np.int64)
    n_psu = int(psu.max()) + 1
    psu_stratum = np.zeros(n_psu, dtype=np.int64)
    psu_stratum[psu] = strata
    multiplicity = None
    if design.weight_type == "fweight" and design.psu is None:
        # each of the w_i identical observations a row stands for is a PSU
        multiplicity = weights
        stratum_n_psu = np.rint(np.bincount(psu_stratum, weights, minlength=n_strata))
        stratum_n_psu = stratum_n_psu.astype(np.int64)
    else:
        stratum_n_psu = np.bincount(psu_stratum, minlength=n_strata).astype(np.int64)

    if design.fpc is not None:
        stratum_fpc = _fpc_factor(data, design.fpc, strata, strata_labels, stratum_n_psu)
    else:
        stratum_fpc = np.ones(n_strata)
    calibration = None
    info = getattr(design, "calibration", None)
    if info is not None and info.account_for_calibration:
        from .calibration import calibration_projection

        calibration = calibration_projection(info, data, weights)

    return ResolvedDesign(
        weights=weights,
        raw_weights=raw,
        weight_type=design.weight_type,
        psu=psu,
        psu_stratum=psu_stratum,
        stratum_n_psu=stratum_n_psu,
        stratum_fpc=stratum_fpc,
        lonely_psu=design.lonely_psu,
        has_strata=design.strata is not None,
        has_psu=design.psu is not None,
        has_fpc=design.fpc is not None,
        psu_multiplicity=multiplicity,
        calibration=calibration,
        source=design,
    )


def _column(data: pd.DataFrame, name: str, field_name: str) -> pd.Series:
    return column(data, name, f"SurveyDesign.{field_name}: column {name!r}")


def numeric_column(data: pd.DataFrame, column: str, field_name: str) -> np.ndarray:
    """A design column as floats; ValueError naming the field if missing or not numeric."""
    series = _column(data, column, field_name)
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise ValueError(
            f"SurveyDesign.{field_name}: column {column!r} must be numeric, got dtype {series.dtype}"
        )
    return series.to_numpy(dtype=float, na_value=np.nan)


def _check_weight_values(values: np.ndarray, what: str) -> None:
    n_nan = int(np.isnan(values).sum())
    if n_nan:
        raise ValueError(f"{what} contains {n_nan} missing (NaN) values")
    if np.isinf(values).any():
        raise ValueError(f"{what} contains infinite values")
    if (values < 0).any():
        raise ValueError(f"{what} contains negative values (min {values.min():g})")


def _weights(design: "SurveyDesign", data: pd.DataFrame) -> np.ndarray:
    if design.weights is None:
        return np.ones(len(data))
    values = numeric_column(data, design.weights, "weights")
    what = f"SurveyDesign.weights: column {design.weights!r}"
    _check_weight_values(values, what)
    if not (values > 0).any():
        raise ValueError(f"{what} has all weights equal to zero")
    if design.weight_type == "fweight":
        fractional = np.abs(values - np.round(values)) > 1e-10
        if fractional.any():
            raise ValueError(
                f"{what}: frequency weights (fweight) must be whole numbers, found "
                f"{values[fractional][0]!r}; use weight_type='pweight' for sampling weights"
            )
    return values


def _labels(data: pd.DataFrame, column: str, field_name: str) -> tuple[np.ndarray, np.ndarray]:
    series = _column(data, column, field_name)
    n_missing = int(series.isna().sum())
    if n_missing:
        raise ValueError(
            f"SurveyDesign.{field_name}: column {column!r} contains {n_missing} missing values"
        )
    codes, labels = pd.factorize(series, sort=True)
    return codes.astype(np.int64), np.asarray(labels)


def _check_nested(psu: np.ndarray, strata: np.ndarray, psu_labels: np.ndarray, what: str) -> None:
    """Every PSU label must sit in one stratum (O(n), no sort)."""
    n_psu = psu_labels.shape[0]
    first = np.empty(n_psu, dtype=np.int64)
    first[psu[::-1]] = strata[::-1]
    crossing = strata != first[psu]
    if crossing.any():
        shared = np.unique(psu[crossing])
        shown = ", ".join(repr(v) for v in psu_labels[shared[:5]].tolist())
        raise ValueError(
            f"{what} has labels that appear in more than one "
            f"stratum ({shown}{', ...' if shared.size > 5 else ''}); set nest=True if PSU "
            "labels are only unique within strata"
        )


def _fpc_factor(
    data: pd.DataFrame,
    column: str,
    strata: np.ndarray,
    strata_labels: np.ndarray,
    stratum_n_psu: np.ndarray,
) -> np.ndarray:
    """Per-stratum correction ``1 - n_h/N_h`` from counts or fractions (R rules)."""
    values = numeric_column(data, column, "fpc")
    what = f"SurveyDesign.fpc: column {column!r}"
    if np.isnan(values).any():
        raise ValueError(f"{what} contains missing (NaN) values")
    if np.isinf(values).any():
        raise ValueError(f"{what} contains infinite values")
    if (values < 0).any():
        raise ValueError(f"{what} contains negative values (min {values.min():g})")
    n_strata = strata_labels.shape[0]
    first = np.empty(n_strata)
    first[strata[::-1]] = values[::-1]
    varies = values != first[strata]
    if varies.any():
        label = strata_labels[strata[np.flatnonzero(varies)[0]]]
        raise ValueError(
            f"{what} is not constant within stratum {label!r}; the FPC is a property of "
            "the stratum"
        )
    is_count = (first > 1).any()
    if is_count and (first < 1).any():
        raise ValueError(
            f"{what} mixes population counts (> 1) and sampling fractions (< 1); use one "
            "form for every stratum"
        )
    if is_count:
        too_small = first < stratum_n_psu
        if too_small.any():
            h = int(np.flatnonzero(too_small)[0])
            raise ValueError(
                f"{what}: population size {first[h]:g} in stratum {strata_labels[h]!r} is "
                f"smaller than its {stratum_n_psu[h]} sampled PSUs"
            )
        return 1.0 - stratum_n_psu / first
    # sampling fractions: N_h = n_h / f_h, so 1 - n_h/N_h = 1 - f_h (f_h = 0: no FPC)
    return 1.0 - first


def _replicates(
    design: "SurveyDesign", data: pd.DataFrame, raw: np.ndarray, weights: np.ndarray
) -> ReplicateSpec:
    columns = list(design.replicate_weights)
    if len(columns) < 2:
        raise ValueError(
            f"SurveyDesign.replicate_weights: at least 2 replicate columns are needed, got {columns!r}"
        )
    reps = np.empty((len(data), len(columns)), order="F")
    for j, col in enumerate(columns):
        values = numeric_column(data, col, "replicate_weights")
        _check_weight_values(values, f"SurveyDesign.replicate_weights: column {col!r}")
        if design.combined_weights:
            bad = (values > 0) & (raw == 0)
            if bad.any():
                raise ValueError(
                    f"SurveyDesign.replicate_weights: column {col!r} has a positive weight in "
                    f"{int(bad.sum())} rows where the full-sample weight {design.weights!r} is 0 "
                    "(combined_weights=True expects replicate analysis weights)"
                )
        reps[:, j] = values
    if design.combined_weights:
        total = raw.sum()
        reps *= weights.sum() / total
    else:
        reps *= weights[:, None]
    n_rep = len(columns)
    scale, rscales = _replicate_scaling(design, n_rep)
    return ReplicateSpec(
        method=design.replicate_method,
        weights=reps,
        scale=scale,
        rscales=rscales,
        mse=bool(design.mse),
        fay_rho=float(design.fay_rho),
    )


def _replicate_scaling(design: "SurveyDesign", n_rep: int) -> tuple[float, np.ndarray]:
    """Default multipliers of R's ``svrepdesign`` with user overrides."""
    method = design.replicate_method
    rscales = np.ones(n_rep)
    if method == "BRR":
        scale = 1.0 / n_rep
    elif method == "Fay":
        scale = 1.0 / (n_rep * (1.0 - design.fay_rho) ** 2)
    elif method == "SDR":
        scale = 4.0 / n_rep
    elif method == "JK1":
        scale = (n_rep - 1.0) / n_rep
    elif method == "bootstrap":
        scale = 1.0 / (n_rep - 1.0)
    elif design.replicate_strata is not None:  # JKn
        scale = 1.0
        _, codes, counts = np.unique(
            np.asarray(design.replicate_strata), return_inverse=True, return_counts=True
        )
        n_h = counts[codes].astype(float)
        rscales = (n_h - 1.0) / n_h
    else:  # JKn with explicit rscales
        scale = 1.0
    if design.replicate_scale is not None:
        scale = float(design.replicate_scale)
    if design.replicate_rscales is not None:
        rscales = np.asarray(design.replicate_rscales, dtype=float)
    return scale, rscales


def _sequential_rank(matrix: np.ndarray, tol: float) -> int:
    """Rank by left-to-right elimination with column deferral (R's LINPACK ``qr``)."""
    from ..linalg.wls import independent_columns

    return int(independent_columns(matrix.T @ matrix, tol).sum())
