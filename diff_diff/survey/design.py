"""The survey design description: :class:`SurveyDesign`.

A ``SurveyDesign`` names the columns of a data frame that carry the sampling
design (weights, strata, primary sampling units, finite population
corrections, replicate weights) and the settings that govern design-based
variance. It holds no data; :meth:`SurveyDesign.resolve` validates it against a
data frame and returns a :class:`~diff_diff.survey.resolved.ResolvedDesign` of
arrays that the inference engine consumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from .._frames import column

from .resolved import numeric_column

if TYPE_CHECKING:  # pragma: no cover
    from .resolved import ResolvedDesign

WEIGHT_TYPES = ("pweight", "fweight", "aweight")
LONELY_PSU_RULES = ("remove", "certainty", "adjust", "average")
REPLICATE_METHODS = ("BRR", "Fay", "JK1", "JKn", "SDR", "bootstrap")
# Methods whose scaling is fixed by construction (R's svrepdesign overrides it).
_FIXED_SCALE_METHODS = ("BRR", "Fay", "SDR")


@dataclass
class SurveyDesign:
    """Description of a complex survey design by column names.

    Parameters
    ----------
    weights : str, optional
        Column of sampling weights (inverse inclusion probabilities for
        ``pweight``). ``None`` means every row has weight 1.
    strata : str, optional
        Column of stratum labels.
    psu : str, optional
        Column of primary-sampling-unit (cluster) labels. ``None`` makes every
        row its own PSU.
    fpc : str, optional
        Column of finite population corrections, constant within stratum:
        either the population number of PSUs in the stratum (values > 1) or
        the first-stage sampling fraction (values <= 1), as R's
        ``survey::svydesign``.
    weight_type : {"pweight", "fweight", "aweight"}
        Probability (sampling) weights, frequency weights (integer counts of
        identical rows) or analytic (precision) weights.
    nest : bool
        PSU labels are only unique within strata (R's ``nest=TRUE``).
    lonely_psu : {"remove", "certainty", "adjust", "average"}
        Treatment of strata with a single sampled PSU, with the semantics of
        R's ``options(survey.lonely.psu=)``: ``remove`` and ``certainty`` let
        such a stratum contribute nothing, ``adjust`` measures its PSU total
        against zero (the grand mean of an influence function), ``average``
        replaces its contribution by the average over the other strata.
    replicate_weights : list of str, optional
        Replicate weight columns. Replicate designs carry no strata, PSU or
        FPC: the replicates encode the design.
    replicate_method : {"BRR", "Fay", "JK1", "JKn", "SDR", "bootstrap"}
        How the replicates were formed; sets the variance multiplier as R's
        ``survey::svrepdesign`` does: BRR 1/R, Fay 1/(R(1-rho)^2), JK1
        (R-1)/R, JKn sum over strata of (n_h-1)/n_h, SDR 4/R, bootstrap
        1/(R-1).
    fay_rho : float
        Fay's perturbation factor, required in (0, 1) for ``Fay``.
    replicate_strata : list of int, optional
        Stratum of each replicate column (required for ``JKn`` unless
        ``replicate_rscales`` are given); n_h is the number of replicate
        columns in stratum h.
    combined_weights : bool
        ``True``: replicate columns are full analysis weights. ``False``:
        they are perturbation factors to multiply with ``weights``.
    replicate_scale : float, optional
        Overall variance multiplier replacing the method's default (JK1, JKn
        and bootstrap only).
    replicate_rscales : list of float, optional
        Per-replicate multipliers replacing the method's default (JK1, JKn
        and bootstrap only).
    mse : bool
        Centre replicate deviations on the full-sample estimate (``True``)
        or on the mean of the replicate estimates (``False``), as R's
        ``mse`` option.

    Examples
    --------
    >>> import pandas as pd
    >>> from diff_diff import SurveyDesign
    >>> df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "w": [1.0, 2.0, 1.0, 2.0],
    ...                    "st": [1, 1, 2, 2], "cl": [1, 2, 3, 4]})
    >>> design = SurveyDesign(weights="w", strata="st", psu="cl")
    >>> design.resolve(df).n_psu
    4
    """

    weights: str | None = None
    strata: str | None = None
    psu: str | None = None
    fpc: str | None = None
    weight_type: str = "pweight"
    nest: bool = False
    lonely_psu: str = "remove"
    replicate_weights: list[str] | None = None
    replicate_method: str | None = None
    fay_rho: float = 0.0
    replicate_strata: list[int] | None = None
    combined_weights: bool = True
    replicate_scale: float | None = None
    replicate_rscales: list[float] | None = None
    mse: bool = False

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check the settings (not the data); raise ``ValueError``/``TypeError``.

        Called on construction and again by :meth:`resolve`, since the
        dataclass is mutable.
        """
        for name in ("weights", "strata", "psu", "fpc"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"SurveyDesign.{name} must be a column name (str) or None, "
                    f"got {value!r}"
                )
        _check_choice("weight_type", self.weight_type, WEIGHT_TYPES)
        _check_choice("lonely_psu", self.lonely_psu, LONELY_PSU_RULES)
        for name in ("nest", "combined_weights", "mse"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(
                    f"SurveyDesign.{name} must be True or False, got {getattr(self, name)!r}"
                )
        self._validate_replicate_settings()

    def _validate_replicate_settings(self) -> None:
        method = self.replicate_method
        reps = self.replicate_weights
        if method is not None:
            _check_choice("replicate_method", method, REPLICATE_METHODS)
        if reps is not None:
            if isinstance(reps, str) or not isinstance(reps, Sequence):
                raise TypeError(
                    "SurveyDesign.replicate_weights must be a list of column names, "
                    f"got {reps!r}"
                )
            if not all(isinstance(c, str) for c in reps):
                raise TypeError(
                    f"SurveyDesign.replicate_weights must hold column names (str), got {list(reps)!r}"
                )
            if len(set(reps)) != len(reps):
                raise ValueError(
                    f"SurveyDesign.replicate_weights lists a column twice: {list(reps)!r}"
                )
        if method is not None and reps is None:
            raise ValueError(
                f"SurveyDesign.replicate_method={method!r} needs replicate_weights "
                "(the replicate weight columns)"
            )
        if reps is not None and method is None:
            raise ValueError(
                "SurveyDesign.replicate_weights is set but replicate_method=None; "
                f"choose one of {REPLICATE_METHODS}"
            )
        rho = self.fay_rho
        if not isinstance(rho, (int, float, np.floating, np.integer)) or not math.isfinite(rho):
            raise ValueError(f"SurveyDesign.fay_rho must be a finite number, got {rho!r}")
        if method == "Fay" and not 0.0 < rho < 1.0:
            raise ValueError(
                f"SurveyDesign.fay_rho must be in (0, 1) for replicate_method='Fay', got {rho!r}"
            )
        if method != "Fay" and rho != 0.0:
            raise ValueError(
                f"SurveyDesign.fay_rho={rho!r} is only used by replicate_method='Fay' "
                f"(got replicate_method={method!r}); leave it at 0.0"
            )
        if reps is None:
            for name in ("replicate_strata", "replicate_scale", "replicate_rscales"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"SurveyDesign.{name}={getattr(self, name)!r} needs a replicate "
                        "design (replicate_weights and replicate_method)"
                    )
            return
        for name in ("strata", "psu", "fpc"):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"SurveyDesign.{name}={getattr(self, name)!r} cannot be combined with "
                    "replicate_weights: replicate weights encode strata, PSUs and FPC"
                )
        if self.weights is None:
            raise ValueError(
                "SurveyDesign.replicate_weights needs the full-sample weights column "
                "in SurveyDesign.weights"
            )
        n_rep = len(reps)
        if method == "JKn":
            if self.replicate_strata is None and self.replicate_rscales is None:
                raise ValueError(
                    "SurveyDesign.replicate_strata is required for replicate_method='JKn' "
                    "(the stratum of each replicate column; or give the multipliers "
                    "(n_h-1)/n_h directly in replicate_rscales)"
                )
        elif self.replicate_strata is not None:
            raise ValueError(
                f"SurveyDesign.replicate_strata is only used by replicate_method='JKn', "
                f"got replicate_method={method!r}"
            )
        if self.replicate_strata is not None:
            strata = list(self.replicate_strata)
            if len(strata) != n_rep:
                raise ValueError(
                    f"SurveyDesign.replicate_strata has length {len(strata)} but there are "
                    f"{n_rep} replicate_weights columns"
                )
            if any(pd.isna(s) for s in strata):
                raise ValueError("SurveyDesign.replicate_strata contains missing values")
        if method in _FIXED_SCALE_METHODS:
            for name in ("replicate_scale", "replicate_rscales"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"SurveyDesign.{name} is not used by replicate_method={method!r}, "
                        "whose scaling is fixed; it applies to JK1, JKn and bootstrap"
                    )
        scale = self.replicate_scale
        if scale is not None:
            if (
                isinstance(scale, bool)
                or not isinstance(scale, (int, float, np.floating, np.integer))
                or not math.isfinite(scale)
                or scale <= 0
            ):
                raise ValueError(
                    f"SurveyDesign.replicate_scale must be a positive finite number, got {scale!r}"
                )
        rscales = self.replicate_rscales
        if rscales is not None:
            try:
                arr = np.asarray(rscales, dtype=float)
            except (TypeError, ValueError):
                raise ValueError(
                    f"SurveyDesign.replicate_rscales must be numbers, got {rscales!r}"
                ) from None
            if arr.ndim != 1 or arr.size != n_rep:
                raise ValueError(
                    f"SurveyDesign.replicate_rscales has length {arr.size} but there are "
                    f"{n_rep} replicate_weights columns"
                )
            if not np.all(np.isfinite(arr)) or np.any(arr < 0) or not np.any(arr > 0):
                raise ValueError(
                    "SurveyDesign.replicate_rscales must be finite, non-negative and not all "
                    f"zero, got {rscales!r}"
                )

    # --------------------------------------------------------------- resolving
    @property
    def is_replicate(self) -> bool:
        """Whether variance comes from replicate weights."""
        return self.replicate_weights is not None

    def columns(self) -> list[str]:
        """All data columns the design refers to, in field order."""
        return [col for _, col in self.named_columns()]

    def named_columns(self) -> list[tuple[str, str]]:
        """``(field, column)`` for every data column the design refers to."""
        named = [(f, getattr(self, f)) for f in ("weights", "strata", "psu", "fpc")]
        reps = [("replicate_weights", c) for c in self.replicate_weights or []]
        return [(f, c) for f, c in named if c is not None] + reps

    def resolve(self, data: pd.DataFrame) -> "ResolvedDesign":
        """Validate the design against ``data`` and return its arrays.

        Raises a ``ValueError`` naming the column and the problem for a
        missing column, invalid weights, missing strata or PSU labels, PSU
        labels shared across strata without ``nest=True``, an FPC that varies
        within a stratum or is below the number of sampled PSUs, fewer than
        two replicate columns, or a positive replicate weight where the
        full-sample weight is zero.

        Parameters
        ----------
        data : DataFrame
            The data the design describes.

        Returns
        -------
        ResolvedDesign

        Raises
        ------
        ValueError
            As above.

        Examples
        --------
        >>> import pandas as pd
        >>> from diff_diff import SurveyDesign
        >>> df = pd.DataFrame({"w": [1.0, 2.0, 1.0, 2.0], "st": [1, 1, 2, 2],
        ...                    "psu": [1, 2, 3, 4]})
        >>> r = SurveyDesign(weights="w", strata="st", psu="psu").resolve(df)
        >>> r.n_obs, r.n_psu, r.n_strata
        (4, 4, 2)
        """
        from .resolved import resolve_design

        self.validate()
        return resolve_design(self, data)

    def subpopulation(
        self,
        data: pd.DataFrame,
        mask: Any,
        weight_column: str = "_subpop_weight",
    ) -> tuple["SurveyDesign", pd.DataFrame]:
        """Restrict estimation to a domain while keeping the full design.

        Rows outside the domain get weight zero (and zero replicate weights),
        so strata and PSUs without domain members still count in the
        variance, as R's ``subset()`` of a survey design does.

        Parameters
        ----------
        data : DataFrame
            The full sample. It is not modified.
        mask : bool array, Series, column name, or callable
            Domain membership per row; a callable receives ``data``.
        weight_column : str
            Name of the new weight column in the returned frame.

        Returns
        -------
        (SurveyDesign, DataFrame)
            A design whose ``weights`` (and replicate columns) point at the
            domain-restricted columns of the returned copy of ``data``.
        """
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
        inside = _domain_mask(data, mask)
        if weight_column in data.columns and weight_column != self.weights:
            raise ValueError(
                f"subpopulation: weight_column {weight_column!r} already exists in data; "
                "pick another name"
            )
        out = data.copy()
        base = (
            np.ones(len(data))
            if self.weights is None
            else numeric_column(data, self.weights, "weights")
        )
        out[weight_column] = np.where(inside, base, 0.0)
        new_reps = None
        if self.replicate_weights is not None:
            new_reps = []
            for col in self.replicate_weights:
                name = f"{col}_subpop"
                values = numeric_column(data, col, "replicate_weights")
                out[name] = np.where(inside, values, 0.0)
                new_reps.append(name)
        return self.copy_with(weights=weight_column, replicate_weights=new_reps), out

    def copy_with(self, **changes) -> "SurveyDesign":
        """``dataclasses.replace`` that keeps the design's calibration (if any).

        Parameters
        ----------
        **changes
            Fields to change, by name.

        Returns
        -------
        SurveyDesign
        """
        new = replace(self, **changes)
        if hasattr(self, "calibration"):
            new.calibration = self.calibration
        return new


def _check_choice(field: str, value: Any, allowed: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"SurveyDesign.{field} must be one of {list(allowed)}, got {value!r}"
        )


def _domain_mask(data: pd.DataFrame, mask: Any) -> np.ndarray:
    """Turn a mask specification into a boolean array, rejecting ambiguity."""
    if callable(mask):
        mask = mask(data)
    if isinstance(mask, str):
        mask = column(data, mask, f"subpopulation: mask column {mask!r}")
    if isinstance(mask, pd.Series):
        if len(mask) != len(data):
            raise ValueError(
                f"subpopulation: mask has {len(mask)} values but data has {len(data)} rows"
            )
        if mask.isna().any():
            raise ValueError("subpopulation: mask contains missing values")
        values = mask.to_numpy()
    else:
        values = np.asarray(mask)
        if values.ndim != 1 or values.shape[0] != len(data):
            raise ValueError(
                f"subpopulation: mask must be one value per row ({len(data)}), "
                f"got shape {values.shape}"
            )
    if values.dtype == bool:
        inside = values
    elif values.dtype.kind in "iuf":
        if values.dtype.kind == "f" and np.isnan(values).any():
            raise ValueError("subpopulation: mask contains missing values")
        if not np.isin(values, (0, 1)).all():
            raise ValueError("subpopulation: a numeric mask must contain only 0 and 1")
        inside = values.astype(bool)
    else:
        raise ValueError(
            f"subpopulation: mask must be boolean (or 0/1), got dtype {values.dtype}"
        )
    if not inside.any():
        raise ValueError("subpopulation: the mask excludes every row")
    return inside

