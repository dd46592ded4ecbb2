"""The design an estimator's inference runs on: one path from a SurveyDesign (or none)
to a resolved design whose rows are the estimator's sampling units."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._frames import column
from .._grouping import any_occurrence, codes_of
from .design import SurveyDesign
from .metadata import SurveyMetadata
from .resolved import ResolvedDesign, trivial_design


def check_survey_design(survey_design, name: str, weight_types=("pweight",),
                        replicates: bool = True) -> None:
    """A ``SurveyDesign`` (TypeError otherwise) of a kind ``name`` supports: the one
    place that refuses a weight type (or replicate weights), with one message."""
    if not isinstance(survey_design, SurveyDesign):
        raise TypeError(
            f"survey_design must be a SurveyDesign, got {type(survey_design).__name__}"
        )
    if survey_design.weight_type not in weight_types:
        accepted = " or ".join(f"'{w}'" for w in weight_types)
        kind = " (probability weights)" if tuple(weight_types) == ("pweight",) else ""
        raise ValueError(f"{name} survey support requires weight_type={accepted}{kind}, "
                         f"got {survey_design.weight_type!r}")
    if survey_design.replicate_weights and not replicates:
        raise ValueError(f"{name} does not support replicate-weight designs; use the "
                         "design's strata and PSUs (Taylor linearization)")


def resolve_unit_design(
    data: pd.DataFrame,
    survey_design: SurveyDesign | None,
    unit: str | None,
    unit_rows: np.ndarray,
    cluster: str | None,
    name: str,
) -> tuple[ResolvedDesign, SurveyMetadata | None]:
    """The design of an estimator whose sampling units are groups of rows.

    ``unit_rows`` holds one row of ``data`` per sampling unit, in the
    estimator's unit order; ``unit`` names the column that groups rows into
    units (``None``: every row is its own unit, as in repeated
    cross-sections). Survey columns must be constant within unit. Without a
    survey design units are independent; ``cluster`` (a column constant
    within unit) groups them. Only ``pweight`` designs are accepted.
    """
    unit_rows = np.asarray(unit_rows)
    if cluster is not None and unit is not None:
        per_unit = data.groupby(unit, sort=False)[cluster].nunique(dropna=False)
        if (per_unit > 1).any():
            raise ValueError(f"{name}: cluster column {cluster!r} varies within unit(s) "
                             f"{list(per_unit.index[per_unit > 1][:3])}")
    clusters = None if cluster is None else data[cluster].to_numpy()[unit_rows]
    if survey_design is None:
        design = trivial_design(len(unit_rows))
    else:
        check_survey_design(survey_design, name)
        if unit is not None:
            _check_constant_within_unit(data, survey_design, unit, name)
        design = survey_design.resolve(data.iloc[unit_rows].reset_index(drop=True))
    if clusters is not None:
        design = design.with_clusters(clusters)
    return design, None if survey_design is None else SurveyMetadata.from_design(design)


def resolve_row_design(data: pd.DataFrame, survey_design: SurveyDesign | None, name: str,
                       ) -> tuple[ResolvedDesign | None, SurveyMetadata | None]:
    """A design over every row of ``data`` (regressions; any weight type), or None."""
    if survey_design is None:
        return None, None
    check_survey_design(survey_design, name, weight_types=("pweight", "aweight", "fweight"))
    design = survey_design.resolve(data)
    return design, SurveyMetadata.from_design(design)


def _check_constant_within_unit(data, survey_design, unit, name) -> None:
    codes, labels = codes_of(data[unit])
    all_first = any_occurrence(codes, len(labels))
    for field_name, col in survey_design.named_columns():
        series = column(data, col, f"SurveyDesign.{field_name}: column {col!r}")
        n_missing = int(series.isna().sum())
        if n_missing:  # before within-unit constancy: a missing value is the real problem
            raise ValueError(f"SurveyDesign.{field_name}: column {col!r} contains {n_missing} "
                             "missing values")
        values = series.to_numpy()
        rep = values[all_first][codes]
        same = (rep == values) | (pd.isna(rep) & pd.isna(values))
        if not np.all(same):
            n_units = int(np.unique(codes[~same]).size)
            raise ValueError(
                f"Survey column {col!r} varies within units ({n_units} units have more than "
                f"one value); {name} needs survey design columns that are constant within "
                f"each unit"
            )
