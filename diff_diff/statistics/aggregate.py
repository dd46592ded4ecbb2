"""From respondent microdata to a geography x period panel: :func:`aggregate_survey`."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .._grouping import group_codes
from .._frames import column
from .._warnings import warn_user
from ..inference.domains import domain_statistics
from ..inference.intervals import standard_error
from ..survey.columns import as_column_list, numeric_matrix
from ..survey.design import LONELY_PSU_RULES, SurveyDesign

SECOND_STAGE_WEIGHTS = ("pweight", "aweight")


def aggregate_survey(
    data,
    by: str | Sequence[str],
    outcomes: str | Sequence[str],
    survey_design: SurveyDesign,
    covariates: str | Sequence[str] | None = None,
    min_n: int = 2,
    lonely_psu: str | None = None,
    second_stage_weights: str = "pweight",
    *,
    engine: str | None = None,
    return_stats: bool = False,
) -> tuple[pd.DataFrame, SurveyDesign]:
    """Collapse microdata to cells (e.g. state x year) with design-based precision.

    Each cell of ``by`` is a domain of the full design: its mean of every
    outcome is the design-weighted mean, and its standard error the Taylor
    linearization over the whole design (every stratum and PSU counts, as R's
    ``svyby(~y, ~state+year, design, svymean)``), or the replicate variance
    for replicate designs. The returned panel feeds the panel estimators with
    the returned second-stage design.

    Parameters
    ----------
    data : DataFrame, Polars/DuckDB/PyArrow frame, Parquet path or SurveyStatistics
        Respondent-level microdata. Not modified. Anything but a pandas
        DataFrame is aggregated where it lives (one grouped scan; see
        ``diff_diff.statistics.pushdown``); a Parquet path or glob is read
        lazily by DuckDB (else Polars). A ``SurveyStatistics`` from
        ``return_stats=True`` is finished without reading data.
    by : str or list of str
        Cell columns; the first is the geographic unit that clusters the
        second stage (e.g. ``["state", "year"]``).
    outcomes : str or list of str
        Numeric (or boolean) outcomes; missing values leave that respondent
        out of that outcome's cell mean only.
    survey_design : SurveyDesign
        The first-stage (respondent) design: ``pweight`` or ``fweight``.
    covariates : str or list of str, optional
        Numeric columns whose design-weighted cell means are carried along.
    min_n : int
        Cells with fewer valid respondents than this for an outcome use the
        variance of independent draws (``n/(n-1) sum psi_i^2``) instead of the
        design variance; so do cells whose design variance is not identified.
        Such cells are flagged in ``srs_fallback`` and listed in a warning.
    lonely_psu : str, optional
        Override the design's lonely-PSU rule for this aggregation.
    second_stage_weights : {"pweight", "aweight"}
        Weight of each cell in the second stage (column
        ``{first outcome}_weight``):

        - ``"pweight"``: the estimated population of the geographic unit, the
          mean over its cells of the cell's sum of first-stage weights. It is
          constant within a unit, so unit-level panel estimators (e.g.
          Callaway-Sant'Anna) accept it, and the second stage targets the
          population-weighted average effect across units.
        - ``"aweight"``: the precision ``1/se^2`` of the first outcome's cell
          mean (0 where undefined): inverse-variance weighting for regression
          estimators that accept analytic weights; it targets efficiency, not
          a population average.
    engine : {"pandas", "polars", "duckdb"}, optional
        Force the engine: ``"pandas"`` collects the data and runs the
        in-memory path; ``"polars"``/``"duckdb"`` push a pandas frame, a
        PyArrow table or a Parquet path down to that engine. Default: where
        the data are (pandas in memory, Parquet by DuckDB if installed).
    return_stats : bool
        Return the additive sufficient statistics of the scan (a
        ``SurveyStatistics``) instead of
        the panel; statistics of disjoint files add up with ``+``.

    Returns
    -------
    panel : DataFrame
        Sorted by ``by``; columns: the ``by`` columns, for each outcome
        ``{y}_mean``, ``{y}_se``, ``{y}_n`` (valid respondents with positive
        weight) and ``{y}_precision`` (``1/se^2``, NaN where the variance is 0
        or undefined), for each covariate ``{x}_mean``, then ``cell_n`` (rows),
        ``cell_n_eff`` (Kish effective size), ``cell_sum_w`` (sum of the
        first-stage weights as supplied), ``srs_fallback`` and
        ``{first outcome}_weight``.
    second_stage_design : SurveyDesign
        ``SurveyDesign(weights="{first outcome}_weight", psu=by[0],
        weight_type=second_stage_weights)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from diff_diff import SurveyDesign, aggregate_survey
    >>> rng = np.random.default_rng(0)
    >>> micro = pd.DataFrame({"state": np.repeat(["A", "B"], 40),
    ...                       "year": np.tile(np.repeat([2020, 2021], 20), 2),
    ...                       "psu": np.repeat(np.arange(16), 5),
    ...                       "w": rng.uniform(1, 3, 80), "smoke": rng.random(80) < 0.2})
    >>> panel, design2 = aggregate_survey(micro, ["state", "year"], "smoke",
    ...                                   SurveyDesign(weights="w", psu="psu"))
    >>> list(panel.columns[:6])
    ['state', 'year', 'smoke_mean', 'smoke_se', 'smoke_n', 'smoke_precision']
    >>> design2.psu, design2.weights
    ('state', 'smoke_weight')
    """
    if engine is not None or return_stats or not isinstance(data, pd.DataFrame):
        from .pushdown import aggregate_pushdown

        return aggregate_pushdown(data, by, outcomes, survey_design, covariates, min_n,
                                  lonely_psu, second_stage_weights, engine, return_stats)
    by_cols, outcome_cols, covariate_cols = _check_arguments(
        data, by, outcomes, survey_design, covariates, min_n, lonely_psu, second_stage_weights
    )
    if lonely_psu is not None:
        survey_design = survey_design.copy_with(lonely_psu=lonely_psu)
    design = survey_design.resolve(data)
    if design.weight_type == "aweight":
        raise ValueError(
            "aggregate_survey needs a pweight (or fweight) first-stage design; aweight "
            "(precision) weights do not describe the sample"
        )
    cell, keys = group_codes(data, by_cols)
    n_cells = len(keys)
    raw = design.raw_weights
    positive = design.weights > 0
    cell_sum_w = np.bincount(cell, weights=raw, minlength=n_cells)
    cell_sum_w2 = np.bincount(cell, weights=raw**2, minlength=n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        cell_n_eff = np.where(cell_sum_w2 > 0, cell_sum_w**2 / cell_sum_w2, 0.0)

    panel = keys.copy()
    y = numeric_matrix(data, outcome_cols)
    fallback = np.zeros(n_cells, dtype=bool)
    for name, (mean, se, n_valid, used_srs) in zip(
        outcome_cols, _outcome_cells(design, y, cell, n_cells, min_n)
    ):
        fallback |= used_srs
        with np.errstate(divide="ignore"):
            precision = np.where(se > 0, 1.0 / se**2, np.nan)
        panel[f"{name}_mean"] = mean
        panel[f"{name}_se"] = se
        panel[f"{name}_n"] = n_valid
        panel[f"{name}_precision"] = precision
    if covariate_cols:
        x = numeric_matrix(data, covariate_cols)
        for j, name in enumerate(covariate_cols):
            valid = ~np.isnan(x[:, j]) & positive
            w = np.where(valid, design.weights, 0.0)
            total = np.bincount(cell, weights=w * np.where(valid, x[:, j], 0.0), minlength=n_cells)
            sw = np.bincount(cell, weights=w, minlength=n_cells)
            with np.errstate(invalid="ignore", divide="ignore"):
                panel[f"{name}_mean"] = np.where(sw > 0, total / sw, np.nan)
    panel["cell_n"] = np.bincount(cell, minlength=n_cells)
    panel["cell_n_eff"] = cell_n_eff
    panel["cell_sum_w"] = cell_sum_w
    panel["srs_fallback"] = fallback
    _warn_fallback(keys, fallback, by_cols)

    first = outcome_cols[0]
    panel = _drop_inestimable(panel, first, outcome_cols, by_cols)
    weight_col = f"{first}_weight"
    panel[weight_col] = _second_stage_weight(panel, by_cols[0], first, second_stage_weights)
    panel = _drop_weightless_units(panel, by_cols[0], weight_col)
    second_stage = SurveyDesign(
        weights=weight_col, psu=by_cols[0], weight_type=second_stage_weights
    )
    return panel.reset_index(drop=True), second_stage


def _check_arguments(data, by, outcomes, survey_design, covariates, min_n, lonely_psu,
                     second_stage_weights):
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("aggregate_survey: data has no rows")
    if not isinstance(survey_design, SurveyDesign):
        raise TypeError(
            f"survey_design must be a SurveyDesign, got {type(survey_design).__name__}"
        )
    by_cols = as_column_list(by, "by")
    outcome_cols = as_column_list(outcomes, "outcomes")
    covariate_cols = [] if covariates is None else as_column_list(covariates, "covariates")
    for name, cols in (("by", by_cols), ("outcomes", outcome_cols), ("covariates", covariate_cols)):
        for c in cols:
            column(data, c, f"aggregate_survey: {name} column {c!r}")
        if len(set(cols)) != len(cols):
            raise ValueError(f"aggregate_survey: {name} lists a column twice: {cols}")
    overlap = set(by_cols) & (set(outcome_cols) | set(covariate_cols))
    if overlap or set(outcome_cols) & set(covariate_cols):
        raise ValueError(
            "aggregate_survey: a column can only play one role (cell, outcome or covariate): "
            f"{sorted(overlap or set(outcome_cols) & set(covariate_cols))}"
        )
    if second_stage_weights not in SECOND_STAGE_WEIGHTS:
        raise ValueError(
            f"second_stage_weights must be one of {list(SECOND_STAGE_WEIGHTS)}, "
            f"got {second_stage_weights!r}"
        )
    if isinstance(min_n, bool) or not isinstance(min_n, (int, np.integer)) or min_n < 1:
        raise ValueError(f"min_n must be an integer >= 1, got {min_n!r}")
    if lonely_psu is not None and lonely_psu not in LONELY_PSU_RULES:
        raise ValueError(f"lonely_psu must be one of {list(LONELY_PSU_RULES)}, got {lonely_psu!r}")
    return by_cols, outcome_cols, covariate_cols


def _outcome_cells(design, y, cell, n_cells, min_n):
    """Cell means, SEs, valid counts and fallback flags of every outcome column.

    Outcomes without missing values share one pass over the design; each
    outcome with missing values gets its own domains (valid respondents only).
    """
    missing = np.isnan(y)
    complete = np.flatnonzero(~missing.any(axis=0))
    batches = ([complete] if complete.size else []) + [
        np.array([j]) for j in np.flatnonzero(missing.any(axis=0))
    ]
    results = [None] * y.shape[1]
    for cols in batches:
        valid = ~missing[:, cols].any(axis=1)
        domain = np.where(valid, cell, -1)
        stats = domain_statistics("mean", design, y[:, cols], domain, n_cells, with_df=False)
        for i, j in enumerate(cols):
            var = stats.variance[:, i]
            use_srs = (stats.sum_w > 0) & ((stats.n < min_n) | ~np.isfinite(var))
            if use_srs.any():
                srs = _independent_variance(stats.influence[:, i], domain, design.weights,
                                            n_cells, stats.n)
                var = np.where(use_srs, srs, var)
            se = standard_error(var)
            results[j] = (stats.estimate[:, i], se, stats.n, use_srs)
    return results


def _independent_variance(psi, domain, weights, n_cells, n_valid):
    """``n/(n-1) sum_i psi_i^2`` per cell: the respondents as independent draws."""
    inset = (domain >= 0) & (weights > 0)
    ss = np.bincount(domain[inset], weights=psi[inset] ** 2, minlength=n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_valid > 1, ss * n_valid / (n_valid - 1.0), np.nan)


def _cell_labels(keys: pd.DataFrame, mask: np.ndarray, limit: int = 5) -> str:
    rows = keys.loc[mask].head(limit).itertuples(index=False, name=None)
    shown = ", ".join(str(r if len(r) > 1 else r[0]) for r in rows)
    extra = int(mask.sum()) - limit
    return shown + (f" and {extra} more" if extra > 0 else "")


def _warn_fallback(keys, fallback, by_cols) -> None:
    if fallback.any():
        warn_user(
            f"aggregate_survey: {int(fallback.sum())} cell(s) {tuple(by_cols)} use the variance "
            "of independent draws (fewer than min_n valid respondents, or a design variance "
            f"that is not identified): {_cell_labels(keys, fallback)}")


def _drop_inestimable(panel, first, outcome_cols, by_cols):
    bad = ~np.isfinite(panel[f"{first}_mean"].to_numpy())
    if not bad.any():
        return panel
    others = [c for c in outcome_cols[1:] if np.isfinite(panel.loc[bad, f"{c}_mean"]).any()]
    note = f"; this also drops data of {others}" if others else ""
    warn_user(
        f"aggregate_survey: dropped {int(bad.sum())} cell(s) {tuple(by_cols)} without an "
        f"estimable mean of {first!r} (no valid respondent with positive weight): "
        f"{_cell_labels(panel[by_cols], bad)}{note}")
    kept = panel.loc[~bad]
    if kept.empty:
        raise ValueError(
            f"aggregate_survey: no cell has an estimable mean of {first!r}; nothing to aggregate"
        )
    return kept


def _second_stage_weight(panel, unit, first, kind) -> np.ndarray:
    if kind == "pweight":
        return panel.groupby(unit, sort=False)["cell_sum_w"].transform("mean").to_numpy()
    precision = panel[f"{first}_precision"].to_numpy()
    return np.where(np.isfinite(precision), precision, 0.0)


def _drop_weightless_units(panel, unit, weight_col):
    total = panel.groupby(unit, sort=False)[weight_col].transform("sum").to_numpy()
    weightless = total <= 0
    if not weightless.any():
        return panel
    units = panel.loc[weightless, unit].unique()
    warn_user(
        f"aggregate_survey: dropped {len(units)} {unit!r} unit(s) whose second-stage weights are "
        f"all zero: {list(units[:5])}")
    kept = panel.loc[~weightless]
    if kept.empty:
        raise ValueError("aggregate_survey: no unit has a positive second-stage weight")
    return kept
