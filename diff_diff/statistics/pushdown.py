"""Survey statistics pushed down to the engine that holds the data.

:func:`~diff_diff.aggregate_survey`, :func:`~diff_diff.survey_mean` and
:func:`~diff_diff.survey_total` accept, besides a pandas DataFrame, a Polars
DataFrame or LazyFrame, a DuckDB relation, a PyArrow table (anything narwhals
reads) and a Parquet path or glob. The engine runs one grouped scan that returns
additive sufficient statistics; this module finishes means, totals, variances,
degrees of freedom and design effects from them with the same variance code as
the in-memory path.

The scan groups by (cell, stratum, PSU) when the design names PSUs; by (cell,
stratum) with sums of squares when each row is its own PSU (a moments table, so
the result stays small); by cell with two sums per replicate for replicate
designs. Those tables are what ``return_stats=True`` returns
(:class:`SurveyStatistics`); statistics of disjoint files add up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import group_codes
from ..inference.intervals import standard_error
from ..inference.replicate import replicate_vcov_from_estimates
from ..inference.tsl import domain_tsl_variance, lonely_inflation, stratum_weights
from ..survey.columns import as_column_list
from ..survey.design import LONELY_PSU_RULES, SurveyDesign
from ..survey.resolved import _fpc_factor, _replicate_scaling, REPLICATE_RANK_TOLERANCE
from .._warnings import warn_user
from .descriptive import _estimate_table

# the centring pass runs where a one-pass sum of squares would lose more than 4 digits
CANCELLATION = 1e4

CALIBRATED_STATS = (
    "return_stats=True is not available for a calibrated design (Taylor variance): its "
    "statistics are tied to the calibration of the whole sample, so statistics of "
    "separate files do not add up; calibrate the union and aggregate it"
)


@dataclass(frozen=True, eq=False)
class SurveyStatistics:
    """Additive sufficient statistics of a survey design, computed by one scan.

    Returned by ``aggregate_survey``, ``survey_mean`` and ``survey_total`` with
    ``return_stats=True``; pass it back as their ``data`` to finish the
    estimates without rereading the microdata. Statistics of disjoint row sets
    (e.g. one file per year) combine with ``+`` or :meth:`combine` into those of
    their union.

    Parameters
    ----------
    table : DataFrame
        One row per group (cell, and stratum and PSU where the layout needs
        them): key columns, then ``sum:*``, ``min:*`` and ``max:*`` columns.
    keys : tuple of str
        The key columns of ``table``.
    by : tuple of str
        Cell (domain) columns.
    outcomes : tuple of str
        Outcome (variable) columns.
    covariates : tuple of str
        Covariate columns (``aggregate_survey``).
    joint : bool
        One validity for all outcomes (``survey_mean``/``survey_total``: rows
        complete in every variable) rather than one per outcome.
    design : SurveyDesign
        The design the statistics were computed under.
    layout : {"psu", "moments", "replicate"}
        Groups by (cell, stratum, PSU), by (cell, stratum), or by cell.
    gram : ndarray, optional
        Sums of products of the replicate weights (replicate df).
    engine : str
        The engine that ran the scan.
    calibration : CalibratedTable, optional
        A calibrated design's finer table (cell, calibration group, margin levels,
        stratum, PSU) for the calibration-aware variance (internal; never combined).
    source : object, optional
        The scanned frame (internal): the moments layout rereads it once, centred, when
        the one-pass sums of squares would lose digits; None for combined statistics
        (their one-pass sums are used as they are).
    """

    table: pd.DataFrame
    keys: tuple
    by: tuple
    outcomes: tuple
    covariates: tuple
    joint: bool
    design: SurveyDesign
    layout: str
    gram: np.ndarray | None = None
    engine: str = ""
    calibration: object = None
    source: object = None

    def combine(self, *others: "SurveyStatistics") -> "SurveyStatistics":
        """The statistics of the union of disjoint row sets.

        Parameters
        ----------
        *others : SurveyStatistics
            Statistics computed with the same columns and design.

        Returns
        -------
        SurveyStatistics
        """
        parts = [self, *others]
        for other in others:
            if not isinstance(other, SurveyStatistics):
                raise TypeError(f"can only combine SurveyStatistics, got {type(other).__name__}")
            if _signature(other) != _signature(self):
                raise ValueError(
                    "SurveyStatistics.combine: the statistics differ in columns, design or "
                    "layout; combine only statistics computed with the same arguments")
        table = pd.concat([p.table for p in parts], ignore_index=True)
        rule = {c: c.split(":")[0] for c in table.columns if ":" in c}
        if self.keys:
            table = table.groupby(list(self.keys), dropna=False, sort=False).agg(rule)
            table = table.reset_index()
        else:
            table = table.agg(rule).to_frame().T
        gram = None if self.gram is None else sum(p.gram for p in parts)
        return replace(self, table=table, gram=gram, engine="+".join(p.engine for p in parts),
                       source=None)

    def __add__(self, other: "SurveyStatistics") -> "SurveyStatistics":
        return self.combine(other)


def _signature(s: SurveyStatistics):
    design = s.design.copy_with(lonely_psu="remove")
    return (s.keys, s.by, s.outcomes, s.covariates, s.joint, s.layout, repr(design),
            s.gram is None)


# ---------------------------------------------------------------------------
# entry points (called by aggregate_survey / survey_mean / survey_total)
# ---------------------------------------------------------------------------
def aggregate_pushdown(data, by, outcomes, survey_design, covariates, min_n, lonely_psu,
                       second_stage_weights, engine, return_stats):
    from .aggregate import _check_arguments, aggregate_survey

    by_cols = as_column_list(by, "by")
    outcome_cols = as_column_list(outcomes, "outcomes")
    covariate_cols = [] if covariates is None else as_column_list(covariates, "covariates")
    if not isinstance(data, SurveyStatistics):
        from ._scan import open_input

        kind, frame, engine_name = open_input(data, engine)
        if kind == "pandas" and not return_stats:
            return aggregate_survey(frame, by, outcomes, survey_design, covariates, min_n,
                                    lonely_psu, second_stage_weights)
        # the in-memory argument checks, on an empty frame with the same columns
        _check_arguments(_probe(frame, kind), by, outcomes, survey_design, covariates, min_n,
                         lonely_psu, second_stage_weights)
        _refuse_row_level(survey_design, return_stats)
        stats = compute_statistics(frame, kind, engine_name, by_cols, outcome_cols,
                                   covariate_cols, survey_design, joint=False,
                                   lean=not return_stats)
        if return_stats:  # small and additive: no reference to the data
            return replace(stats, source=None)
    else:
        stats = data
        _check_stats(stats, by_cols, outcome_cols, covariate_cols, survey_design, False)
        _check_arguments(_empty(stats), by, outcomes, survey_design, covariates, min_n,
                         lonely_psu, second_stage_weights)
    return finish_aggregate(stats, survey_design, min_n, lonely_psu, second_stage_weights)


def describe_pushdown(kind, data, variable, survey_design, by, deff, na_rm, alpha, engine,
                      return_stats):
    from .descriptive import _describe

    variables = as_column_list(variable, "variable")
    by_cols = [] if by is None else as_column_list(by, "by")
    if not isinstance(survey_design, SurveyDesign):
        raise TypeError(
            f"survey_design must be a SurveyDesign, got {type(survey_design).__name__}")
    if not isinstance(data, SurveyStatistics):
        from ._scan import open_input

        mode, frame, engine_name = open_input(data, engine)
        if mode == "pandas" and not return_stats:
            return _describe(kind, frame, variable, survey_design, by, deff, na_rm, alpha)
        _refuse_row_level(survey_design, return_stats)
        stats = compute_statistics(frame, mode, engine_name, by_cols, variables, [],
                                   survey_design, joint=True)
        if return_stats:  # small and additive: no reference to the data
            return replace(stats, source=None)
    else:
        stats = data
        _check_stats(stats, by_cols, variables, [], survey_design, True)
    return finish_describe(kind, stats, survey_design, deff, na_rm, alpha)


def _probe(frame, kind) -> pd.DataFrame:
    """An empty pandas frame with the input's column names (for the argument checks)."""
    if kind == "pandas":
        return frame.iloc[:1]
    from ._scan import schema_of

    names = list(schema_of(frame))
    return pd.DataFrame({c: [0.0] for c in names}, columns=names)


def _empty(stats: SurveyStatistics) -> pd.DataFrame:
    names = list(dict.fromkeys([*stats.by, *stats.outcomes, *stats.covariates,
                                *stats.design.columns()]))
    return pd.DataFrame({c: [0.0] for c in names}, columns=names)


def _calibrated_taylor(design: SurveyDesign):
    """The calibration info of a design whose Taylor variance needs the residuals."""
    info = getattr(design, "calibration", None)
    if info is None or not info.account_for_calibration or design.replicate_weights:
        return None  # replicate designs carry recalibrated replicate columns instead
    return info


def _refuse_row_level(design: SurveyDesign, return_stats: bool = False) -> None:
    if not isinstance(design, SurveyDesign):
        raise TypeError(f"survey_design must be a SurveyDesign, got {type(design).__name__}")
    if return_stats and _calibrated_taylor(design) is not None:
        raise ValueError(CALIBRATED_STATS)


def _check_stats(stats, by_cols, outcomes, covariates, design, joint) -> None:
    want = (tuple(by_cols), tuple(outcomes), tuple(covariates), joint)
    have = (stats.by, stats.outcomes, stats.covariates, stats.joint)
    if want != have:
        raise ValueError(
            "the SurveyStatistics were computed for by={}, outcomes={}, covariates={} ({}); "
            "pass the same arguments (or compute new statistics)".format(
                list(stats.by), list(stats.outcomes), list(stats.covariates),
                "survey_mean/survey_total" if stats.joint else "aggregate_survey"))
    if not isinstance(design, SurveyDesign):
        raise TypeError(f"survey_design must be a SurveyDesign, got {type(design).__name__}")
    if repr(design.copy_with(lonely_psu="remove")) != repr(
            stats.design.copy_with(lonely_psu="remove")):
        raise ValueError("the SurveyStatistics were computed under another SurveyDesign "
                         f"({stats.design!r}); only lonely_psu may differ")


# ---------------------------------------------------------------------------
# the scan
# ---------------------------------------------------------------------------
def compute_statistics(frame, kind, engine_name, by_cols, outcomes, covariates, design,
                       joint, lean=False) -> SurveyStatistics:
    """Run the one grouped scan on ``frame`` (narwhals, or pandas through narwhals).

    ``lean``: ``aggregate_survey`` under a PSU design leaves out the sums of ``w^2``
    terms, which only the ``min_n`` fallback reads; they come from a second, per-cell
    pass when some cell falls back (:meth:`_Finished.srs_sums`).
    """
    from . import _scan

    design.validate()
    if kind == "pandas":
        frame = _scan._wrap(frame)
        engine_name = "pandas"
    schema = _scan.schema_of(frame)
    role = "variable" if joint else "outcomes column"
    named = [(f"by column {c!r}", c) for c in by_cols]
    named += [(f"{role} {c!r}" if joint else f"aggregate_survey: outcomes column {c!r}", c)
              for c in outcomes]
    named += [(f"aggregate_survey: covariates column {c!r}", c) for c in covariates]
    named += [(f"SurveyDesign.{f}: column {c!r}", c) for f, c in design.named_columns()]
    info = _calibrated_taylor(design)
    if info is not None:
        named += [(f"calibrated design: column {c!r}", c) for c in
                  [*info.by, *(m for m, _, _ in info.margins if m != "(Intercept)"),
                   *([info.design_weights] if info.design_weights else [])]]
    _scan.check_columns(schema, named)
    for c in [*outcomes, *covariates]:
        _scan.check_numeric(schema, c, f"variable {c!r}", allow_bool=True)
    for f, c in design.named_columns():
        if f in ("weights", "fpc", "replicate_weights"):
            _scan.check_numeric(schema, c, f"SurveyDesign.{f}: column {c!r}", allow_bool=False)
    reps = list(design.replicate_weights or [])
    if reps:
        layout, extra = "replicate", []
        if len(reps) < 2:
            raise ValueError("SurveyDesign.replicate_weights: at least 2 replicate columns are "
                             f"needed, got {reps!r}")
    else:
        extra = [c for c in (design.strata, design.psu) if c is not None]
        layout = "psu" if design.psu is not None else "moments"
    keys = list(dict.fromkeys([*by_cols, *extra]))
    calibrated = None
    lean = lean and info is None
    if info is not None:
        from ._calibrated import CalibratedTable, aggregate_standard, scan_spec

        cal_keys, cols, sums, numeric = scan_spec(design, info, outcomes, layout)
        fine_keys = list(dict.fromkeys([*keys, *cal_keys]))
        fine = _scan.scan(frame, schema, fine_keys, outcomes, covariates, joint, design, reps,
                          extra_columns=cols, extra_sums=sums)
        table, row = aggregate_standard(fine, keys)
        calibrated = CalibratedTable(table=fine, row=row, info=info, numeric=numeric)
    else:
        lean = lean and layout == "psu" and not joint
        table = _scan.scan(frame, schema, keys, outcomes, covariates, joint, design, reps,
                           srs_sums=not lean)
    _scan.check_weights(frame, table, design)
    gram = _scan.gram(frame, design, reps) if reps and joint else None
    return SurveyStatistics(table=table, keys=tuple(keys), by=tuple(by_cols),
                            outcomes=tuple(outcomes), covariates=tuple(covariates),
                            joint=joint, design=design, layout=layout, gram=gram,
                            engine=engine_name, calibration=calibrated,
                            source=frame if layout == "moments" or lean else None)


# ---------------------------------------------------------------------------
# finishing: validation, codes, the design skeleton
# ---------------------------------------------------------------------------
class _Finished:
    """Codes and design structure of a statistics table, validated as ``resolve`` does."""

    def __init__(self, stats: SurveyStatistics, design: SurveyDesign):
        self.stats = stats
        self.design = design
        t = stats.table
        self.t = t
        if float(t["sum:n"].sum()) == 0:
            raise ValueError("data has no rows")
        self._check_labels()
        self._check_weights()
        if stats.by:
            self.cell, self.keys = group_codes(t, list(stats.by))
        else:
            self.cell, self.keys = np.zeros(len(t), dtype=np.int64), None
        self.n_cells = 1 if self.keys is None else len(self.keys)
        self._centred = None
        if stats.layout != "replicate":
            self._structure()

    def col(self, name: str) -> np.ndarray:
        return self.t[name].to_numpy(dtype=float)

    def _check_labels(self) -> None:
        d = self.design
        for c in self.stats.by:
            n_missing = int(self.t.loc[self.t[c].isna(), "sum:n"].sum())
            if n_missing:
                raise ValueError(f"by column {c!r} contains {n_missing} missing values")
        for field, c in (("strata", d.strata), ("psu", d.psu)):
            if c is not None and c in self.t:
                n_missing = int(self.t.loc[self.t[c].isna(), "sum:n"].sum())
                if n_missing:
                    raise ValueError(f"SurveyDesign.{field}: column {c!r} contains {n_missing} "
                                     "missing values")

    def _check_weights(self) -> None:
        d, t = self.design, self.t
        what = f"SurveyDesign.weights: column {d.weights!r}"
        if d.weights is not None:
            # (the scan described bad weights already; statistics carry missing weights as
            # NaN sums)
            total = float(t["sum:w"].sum())
            if np.isnan(total):
                raise ValueError(f"{what} contains missing (NaN) values")
            if np.isinf(total):
                raise ValueError(f"{what} contains infinite values")
            if (t["min:wmin"] < 0).any():
                raise ValueError(f"{what} contains negative values (min "
                                 f"{t['min:wmin'].min():g})")
            if not total > 0:
                raise ValueError(f"{what} has all weights equal to zero")
            if "sum:wfrac" in t and t["sum:wfrac"].sum() > 0:
                raise ValueError(f"{what}: frequency weights (fweight) must be whole numbers; "
                                 "use weight_type='pweight' for sampling weights")
        for j, name in enumerate(self.stats.outcomes):
            if not np.isfinite(self.col(f"sum:swy{j}")).all():
                raise ValueError(f"variable {name!r} contains infinite values")
        for r, name in enumerate(d.replicate_weights or []):
            rwhat = f"SurveyDesign.replicate_weights: column {name!r}"
            if t[f"sum:rnull{r}"].sum() > 0:
                raise ValueError(f"{rwhat} contains {int(t[f'sum:rnull{r}'].sum())} missing "
                                 "(NaN) values")
            if np.isinf(t[f"max:rmax{r}"]).any():
                raise ValueError(f"{rwhat} contains infinite values")
            if (t[f"min:rmin{r}"] < 0).any():
                raise ValueError(f"{rwhat} contains negative values")
            if f"sum:rbad{r}" in t and t[f"sum:rbad{r}"].sum() > 0:
                raise ValueError(
                    f"SurveyDesign.replicate_weights: column {name!r} has a positive weight in "
                    f"{int(t[f'sum:rbad{r}'].sum())} rows where the full-sample weight "
                    f"{d.weights!r} is 0 (combined_weights=True expects replicate analysis "
                    "weights)")

    def _structure(self) -> None:
        """Strata, PSU codes, sampled PSUs per stratum and FPC factors."""
        d, t = self.design, self.t
        if d.strata is not None:
            codes, labels = pd.factorize(t[d.strata], sort=True)
            stratum = codes.astype(np.int64)
        else:
            stratum, labels = np.zeros(len(t), dtype=np.int64), np.array([0])
        n_strata = len(labels)
        self.stratum = stratum
        if self.stats.layout == "psu":
            raw_psu = t[d.psu]
            if d.strata is not None and d.nest:
                codes, _ = pd.factorize(pd.MultiIndex.from_arrays([stratum, raw_psu]),
                                        sort=True)
            else:
                codes, psu_labels = pd.factorize(raw_psu, sort=True)
            psu = codes.astype(np.int64)
            n_psu = int(psu.max()) + 1
            psu_stratum = np.full(n_psu, -1, dtype=np.int64)
            psu_stratum[psu] = stratum
            if d.strata is not None and not d.nest and (psu_stratum[psu] != stratum).any():
                bad = np.unique(psu[psu_stratum[psu] != stratum])
                shown = ", ".join(repr(v) for v in np.asarray(psu_labels)[bad[:5]].tolist())
                raise ValueError(
                    f"SurveyDesign.psu: column {d.psu!r} has labels that appear in more than "
                    f"one stratum ({shown}); set nest=True if PSU labels are only unique "
                    "within strata")
            self.psu = psu
            stratum_n_psu = np.bincount(psu_stratum, minlength=n_strata).astype(np.int64)
        else:
            psu_stratum = None
            if d.weight_type == "fweight":
                units = np.bincount(stratum, weights=self.col("sum:w"), minlength=n_strata)
            else:
                units = np.bincount(stratum, weights=self.col("sum:n"), minlength=n_strata)
            stratum_n_psu = np.rint(units).astype(np.int64)
        if d.fpc is not None:
            if t["sum:fpcnull"].sum() > 0:
                raise ValueError(f"SurveyDesign.fpc: column {d.fpc!r} contains missing (NaN) "
                                 "values")
            low = np.full(n_strata, np.inf)
            high = np.full(n_strata, -np.inf)
            np.minimum.at(low, stratum, self.col("min:fpcmin"))
            np.maximum.at(high, stratum, self.col("max:fpcmax"))
            if (low != high).any():
                label = labels[int(np.flatnonzero(low != high)[0])]
                raise ValueError(
                    f"SurveyDesign.fpc: column {d.fpc!r} is not constant within stratum "
                    f"{label!r}; the FPC is a property of the stratum")
            fpc = _fpc_factor(pd.DataFrame({d.fpc: low}), d.fpc, np.arange(n_strata),
                              np.asarray(labels), stratum_n_psu)
        else:
            fpc = np.ones(n_strata)
        self.skeleton = SimpleNamespace(
            n_psu=0 if psu_stratum is None else psu_stratum.shape[0], n_strata=n_strata,
            psu_stratum=psu_stratum, stratum_n_psu=stratum_n_psu, stratum_fpc=fpc,
            lonely_psu=d.lonely_psu, psu_multiplicity=None)

    # ------------------------------------------------------------------ domains
    def domain(self, kind: str, j: int, with_df: bool):
        """(estimate, variance, df, n, sum_w, sum of squared influence) per cell."""
        c, D = self.cell, self.n_cells
        sw, swy = self.col(f"sum:sw{j}"), self.col(f"sum:swy{j}")
        nv, npos = self.col(f"sum:nv{j}"), self.col(f"sum:npos{j}")
        S = np.bincount(c, weights=sw, minlength=D)
        T = np.bincount(c, weights=swy, minlength=D)
        n = np.bincount(c, weights=npos, minlength=D)
        has = S > 0
        Sd = np.where(has, S, 1.0)
        if kind == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                est = T / S
            e = np.where(has, est, 0.0)
            if f"sum:s2w{j}" in self.t:
                sums = [np.bincount(c, weights=self.col(f"sum:{k}{j}"), minlength=D)
                        for k in ("s2w", "s2wy", "s2wy2")]
                ss_psi = self.srs_ss(sums, e, has, Sd)
            else:  # a lean table: see srs_sums
                ss_psi = None
        else:
            est, e, ss_psi = T, None, None
        entry = nv > 0
        layout = self.stats.layout
        if layout == "replicate":
            var = self._replicate_variance(kind, j, est)
            df = np.full(D, self._replicate_df() if with_df else np.nan)
            return est, var, df, n, S, ss_psi
        if self.stats.calibration is not None:
            from ._calibrated import calibrated_variance

            var = calibrated_variance(self, kind, j)
        elif layout == "psu":
            if kind == "mean":
                z = np.where(has[c], (swy - e[c] * sw) / Sd[c], 0.0)
            else:
                z = swy
            var = domain_tsl_variance(z[entry], c[entry], D, self.skeleton,
                                      psu=self.psu[entry])[:, 0]
        else:
            var = self._moments_variance(kind, j, entry, e, has, Sd)
        df = self._taylor_df(j) if with_df else np.full(D, np.nan)
        return est, var, df, n, S, ss_psi

    def _moments_variance(self, kind, j, entry, e, has, Sd):
        """Each row its own PSU: per (cell, stratum) sums A of z and B of z^2/m."""
        c, h, D = self.cell, self.stratum, self.n_cells
        fweight = self.design.weight_type == "fweight"
        swy = self.col(f"sum:swy{j}")
        if kind == "mean":
            sw = self.col(f"sum:sw{j}")
            ec, sc = e[c], Sd[c]
            A = np.where(has[c], (swy - ec * sw) / sc, 0.0)
            if fweight:
                q, qy, qy2 = sw, swy, self.col(f"sum:swy2{j}")
            else:
                q, qy, qy2 = (self.col(f"sum:{k}{j}") for k in ("s2w", "s2wy", "s2wy2"))
            B = np.where(has[c], (qy2 - 2 * ec * qy + ec**2 * q) / sc**2, 0.0)
        else:
            A = swy
            B = self.col(f"sum:swy2{j}") if fweight else self.col(f"sum:s2wy2{j}")
        sk = self.skeleton
        scale, centred, lonely = stratum_weights(sk.stratum_n_psu, sk.stratum_fpc,
                                                 sk.lonely_psu)
        n_h = sk.stratum_n_psu[h].astype(float)
        m = np.where(centred[h], A / n_h, 0.0)
        ss = B - 2 * m * A + n_h * m**2
        # one-pass sums of squares lose log10(largest term / result) digits: past 4 (of
        # ~16), reread the data once with every (cell, stratum)'s values centred
        if kind == "mean":
            big = np.where(has[c], np.maximum(qy2, ec**2 * q) / sc**2, 0.0)
        else:
            big = np.maximum(B, n_h * m**2)
        if self.stats.source is not None and (big > CANCELLATION * np.abs(ss)).any():
            ss, A = self._centred_ss(kind, j, e, has, Sd, A, m, n_h, fweight)
        out = np.bincount(c[entry], weights=(scale[h] * ss)[entry], minlength=D)
        present = np.zeros((sk.n_strata, D), dtype=bool)
        present[h[entry], c[entry]] = True
        return out * lonely_inflation(present, lonely, sk.lonely_psu)

    def _centred_ss(self, kind, j, e, has, Sd, A, m, n_h, fweight):
        """``sum (z - m)^2`` per (cell, stratum) from a second, centred pass.

        Each row's value ``z`` (``w (y - e) / S`` for a mean, ``w y`` for a total; an
        fweight row is ``w`` units of ``(y - e) / S`` or ``y``) is shifted by ``c``, the
        first pass's mean of ``z`` in its (cell, stratum); the pass returns ``C1 = sum
        (z - c)`` and ``Q = sum (z - c)^2``, and ``sum (z - m)^2 = Q + 2 (c - m) C1 +
        n (c - m)^2`` over the ``n`` domain units, plus ``m^2`` for each other unit of the
        stratum: no term cancels.
        """
        if self._centred is None or self._centred[0] != kind:
            self._centred = (kind, self._centred_pass(kind))
        C1, Q = self._centred[1][j]
        n_dom = self.col(f"sum:sw{j}") if fweight else self.col(f"sum:nv{j}")
        c = self._shift(kind, j, e, has, Sd, fweight)[2]
        A = C1 + n_dom * c
        ss = Q + 2 * (c - m) * C1 + n_dom * (c - m) ** 2 + (n_h - n_dom) * m**2
        return ss, A

    def _shift(self, kind, j, e, has, Sd, fweight):
        """Per table row: the outcome's centre ``e``, scale ``a`` and the shift ``c``."""
        cell = self.cell
        if kind == "mean":
            centre = np.where(has, e, 0.0)[cell]
            scale = np.where(has, 1.0 / Sd, 0.0)[cell]
        else:
            centre, scale = np.zeros(len(cell)), np.ones(len(cell))
        n_dom = self.col(f"sum:sw{j}") if fweight else self.col(f"sum:nv{j}")
        sw, swy = self.col(f"sum:sw{j}"), self.col(f"sum:swy{j}")
        A = (swy - centre * sw) * scale  # sum of z (first pass)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(n_dom > 0, A / np.where(n_dom > 0, n_dom, 1.0), 0.0)
        return centre, scale, c

    def _centred_pass(self, kind):
        from ._scan import centred_moments

        fweight = self.design.weight_type == "fweight"
        shifts = []
        for j in range(len(self.stats.outcomes)):
            sw = self.col(f"sum:sw{j}")
            S = np.bincount(self.cell, weights=sw, minlength=self.n_cells)
            T = np.bincount(self.cell, weights=self.col(f"sum:swy{j}"), minlength=self.n_cells)
            has = S > 0
            Sd = np.where(has, S, 1.0)
            e = np.where(has, T / Sd, 0.0)
            shifts.append(self._shift(kind, j, e, has, Sd, fweight))
        return centred_moments(self.stats, self.design, shifts)

    @staticmethod
    def srs_ss(sums, e, has, Sd):
        """Per cell ``sum w^2 (y - e)^2 / S^2`` from the sums of ``w^2``, ``w^2 y``,
        ``w^2 y^2``."""
        s2w, s2wy, s2wy2 = sums
        return np.where(has, (s2wy2 - 2 * e * s2wy + e**2 * s2w) / Sd**2, 0.0)

    def srs_sums(self, j):
        """The per-cell sums of ``w^2``, ``w^2 y``, ``w^2 y^2`` of outcome ``j`` from one
        more pass grouped by the cells (a lean table leaves them out of the first)."""
        from ._scan import cell_square_sums

        if getattr(self, "_srs", None) is None:
            self._srs = cell_square_sums(self.stats, self.design, self.keys)
        return self._srs[j]

    def _taylor_df(self, j):
        c, D = self.cell, self.n_cells
        pos = self.col(f"sum:npos{j}") > 0
        if self.stats.layout == "psu":
            n_psu = np.bincount(c[pos], minlength=D).astype(float)
        elif self.design.weight_type == "fweight":
            n_psu = np.bincount(c[pos], weights=self.col(f"sum:sw{j}")[pos], minlength=D)
        else:
            n_psu = np.bincount(c[pos], weights=self.col(f"sum:npos{j}")[pos], minlength=D)
        pairs = np.unique(c[pos] * np.int64(self.skeleton.n_strata) + self.stratum[pos])
        n_strata = np.bincount(pairs // self.skeleton.n_strata, minlength=D)
        return n_psu - n_strata

    def _replicate_variance(self, kind, j, est):
        d, c, D = self.design, self.cell, self.n_cells
        R = len(d.replicate_weights)
        num = np.column_stack([np.bincount(c, weights=self.col(f"sum:rswy{j}_{r}"),
                                           minlength=D) for r in range(R)])
        if kind == "mean":
            den = np.column_stack([np.bincount(c, weights=self.col(f"sum:rsw{j}_{r}"),
                                               minlength=D) for r in range(R)])
            with np.errstate(invalid="ignore", divide="ignore"):
                num = num / den
        scale, rscales = _replicate_scaling(d, R)
        var = np.full(D, np.nan)
        for k in range(D):
            if np.isfinite(est[k]):
                vcov, _ = replicate_vcov_from_estimates(num[k][:, None], est[k:k + 1], scale,
                                                        rscales, bool(d.mse))
                var[k] = vcov[0, 0]
        return var

    def _replicate_df(self) -> float:
        from ..linalg.wls import independent_columns

        gram = self.stats.gram
        total = float(self.t["sum:w"].sum())
        if self.design.weight_type in ("pweight", "aweight"):
            gram = gram * (float(self.t["sum:n"].sum()) / total) ** 2
        return float(independent_columns(gram, REPLICATE_RANK_TOLERANCE).sum() - 1)

    def psus_with_weight(self) -> int:
        pos = self.col("sum:wpos") > 0
        if self.stats.layout == "psu":
            return int(np.unique(self.psu[pos]).size)
        return int(self.col("sum:wpos").sum())


# ---------------------------------------------------------------------------
# finishing: aggregate_survey
# ---------------------------------------------------------------------------
def finish_aggregate(stats, survey_design, min_n, lonely_psu, second_stage_weights):
    from .aggregate import (_drop_inestimable, _drop_weightless_units, _second_stage_weight,
                            _warn_fallback)

    design = survey_design
    if lonely_psu is not None:
        design = design.copy_with(lonely_psu=lonely_psu)
    if design.weight_type == "aweight":
        raise ValueError(
            "aggregate_survey needs a pweight (or fweight) first-stage design; aweight "
            "(precision) weights do not describe the sample")
    if lonely_psu is not None and lonely_psu not in LONELY_PSU_RULES:
        raise ValueError(f"lonely_psu must be one of {list(LONELY_PSU_RULES)}")
    fin = _Finished(stats, design)
    c, D = fin.cell, fin.n_cells
    by_cols = list(stats.by)
    w, w2 = fin.col("sum:w"), fin.col("sum:w2")
    cell_sum_w = np.bincount(c, weights=w, minlength=D)
    cell_sum_w2 = np.bincount(c, weights=w2, minlength=D)
    with np.errstate(invalid="ignore", divide="ignore"):
        cell_n_eff = np.where(cell_sum_w2 > 0, cell_sum_w**2 / cell_sum_w2, 0.0)
    panel = fin.keys.copy()
    fallback = np.zeros(D, dtype=bool)
    for j, name in enumerate(stats.outcomes):
        est, var, _, n, S, ss_psi = fin.domain("mean", j, with_df=False)
        use_srs = (S > 0) & ((n < min_n) | ~np.isfinite(var))
        if use_srs.any() and ss_psi is None:
            has = S > 0
            ss_psi = fin.srs_ss(fin.srs_sums(j), np.where(has, est, 0.0), has,
                                np.where(has, S, 1.0))
        if use_srs.any():
            with np.errstate(invalid="ignore", divide="ignore"):
                srs = np.where(n > 1, ss_psi * n / (n - 1.0), np.nan)
            var = np.where(use_srs, srs, var)
        se = standard_error(var)
        fallback |= use_srs
        with np.errstate(divide="ignore"):
            precision = np.where(se > 0, 1.0 / se**2, np.nan)
        panel[f"{name}_mean"] = est
        panel[f"{name}_se"] = se
        panel[f"{name}_n"] = n.astype(np.int64)
        panel[f"{name}_precision"] = precision
    for j, name in enumerate(stats.covariates):
        total = np.bincount(c, weights=fin.col(f"sum:cwx{j}"), minlength=D)
        sw = np.bincount(c, weights=fin.col(f"sum:cw{j}"), minlength=D)
        with np.errstate(invalid="ignore", divide="ignore"):
            panel[f"{name}_mean"] = np.where(sw > 0, total / sw, np.nan)
    panel["cell_n"] = np.bincount(c, weights=fin.col("sum:n"), minlength=D).astype(np.int64)
    panel["cell_n_eff"] = cell_n_eff
    panel["cell_sum_w"] = cell_sum_w
    panel["srs_fallback"] = fallback
    _warn_fallback(fin.keys, fallback, by_cols)
    first = stats.outcomes[0]
    panel = _drop_inestimable(panel, first, list(stats.outcomes), by_cols)
    weight_col = f"{first}_weight"
    panel[weight_col] = _second_stage_weight(panel, by_cols[0], first, second_stage_weights)
    panel = _drop_weightless_units(panel, by_cols[0], weight_col)
    second_stage = SurveyDesign(weights=weight_col, psu=by_cols[0],
                                weight_type=second_stage_weights)
    return panel.reset_index(drop=True), second_stage


# ---------------------------------------------------------------------------
# finishing: survey_mean / survey_total
# ---------------------------------------------------------------------------
def finish_describe(kind, stats, design, deff, na_rm, alpha) -> pd.DataFrame:
    if design.weight_type == "aweight":
        raise ValueError(
            "survey means and totals need pweight (or fweight) designs; aweight (precision) "
            "weights describe regression error variances, not the sample")
    if deff and design.weight_type != "pweight":
        raise ValueError("deff compares with simple random sampling and needs a pweight design")
    fin = _Finished(stats, design)
    variables = list(stats.outcomes)
    n_rows = float(fin.col("sum:n").sum())
    # joint validity: a row is valid in every variable or in none; per-variable counts
    # of missing values need one more look at the table (sum of each variable's nulls)
    n_valid = float(fin.col("sum:nv0").sum())
    if n_valid == 0:
        raise ValueError(f"variable(s) {variables} have no non-missing values")
    if n_valid < n_rows and not na_rm:
        raise ValueError(
            f"variable(s) {variables} contain {int(n_rows - n_valid)} rows with missing "
            "values; pass na_rm=True to leave those rows out of the domains")
    if stats.layout != "replicate" and fin.psus_with_weight() < 2:
        warn_user(
            f"survey_{kind}: the variance needs at least two PSUs (clusters, or units) with "
            f"positive weight; this design has {fin.psus_with_weight()}, so standard errors "
            "are NaN")
    k = len(variables)
    cols = [fin.domain(kind, j, with_df=True) for j in range(k)]
    est = np.column_stack([x[0] for x in cols])
    var = np.column_stack([x[1] for x in cols])
    df, n_pos, sum_w = cols[0][2], cols[0][3], cols[0][4]
    cells, var_index, out = _estimate_table(fin.keys, list(stats.by), variables, est, var, df,
                                           n_pos, sum_w, alpha)
    if deff:
        d = np.column_stack([_deff(kind, fin, j, var[:, j]) for j in range(k)])
        out["deff"] = d[cells, var_index]
    return pd.DataFrame(out)


def _deff(kind, fin, j, var):
    """R's deff from the cell sums (see :func:`~diff_diff.inference.domains.domain_deff`)."""
    c, D = fin.cell, fin.n_cells
    big_n = np.bincount(c, weights=fin.col(f"sum:sw{j}"), minlength=D)
    count = "nv" if fin.stats.layout == "replicate" else "npos"
    n = np.bincount(c, weights=fin.col(f"sum:{count}{j}"), minlength=D)
    swy = np.bincount(c, weights=fin.col(f"sum:swy{j}"), minlength=D)
    swy2 = np.bincount(c, weights=fin.col(f"sum:swy2{j}"), minlength=D)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = swy / big_n
        ss = swy2 - 2 * mean * swy + mean**2 * big_n
        s2 = ss / big_n * (n / (n - 1.0))
        srs = s2 * ((big_n - n) / (big_n * n))
        if kind == "total":
            srs = srs * big_n**2
        srs = np.where(big_n >= n, srs, np.nan)
        return var / srs
