"""Calibration on an engine (Polars, DuckDB, PyArrow, Parquet, ... through narwhals).

:func:`~diff_diff.calibrate` and :func:`~diff_diff.rake` called with a frame that is not a
pandas DataFrame (or with ``engine=``) land here. The calibrated weight is never
materialised: it is ``d * g`` with the ratio ``g`` taken from a small *factor table*
joined into the data, so the result is the input (lazy where the input is lazy) with the
calibrated weight column as an expression, and a design that uses it.

Two routes, both the in-memory algorithm (:func:`diff_diff.survey.calibration._solve`:
damped Newton in every group, the same stopping rule), so the weights agree with the
in-memory ones to rounding:

* **patterns** - every margin categorical (or the intercept): the ratio is a function of
  the (group, margin levels) pattern, and every product the Newton step needs is a sum
  over rows, so one grouped scan over the patterns (sums of the design weights and of
  every replicate weight) gives all the solver needs; the solve then runs in memory on
  the patterns, exactly as the in-memory code calibrates replicates. The factor table
  has one row per pattern (``g``, and one ``g`` per replicate).
* **scans** - continuous (numeric) margins: ``g = link(eta0 + sum_k beta_k x_k)`` varies
  within a pattern of the categorical margins, so each evaluation of the Newton iteration
  (the start, each trial step) is one grouped scan over the categorical patterns of the
  sums of ``d g x``, ``d g' x x'`` with the coefficients joined in as a factor table
  (``eta0`` and the ``beta_k`` per pattern). Linear calibration without bounds takes two
  or three scans; raking and logit about one per Newton step (more when a step is halved).
  Replicate designs are refused on this route (each replicate would need its own Newton
  scans; the in-memory code solves them on the distinct values of the continuous margins,
  which are as many as the rows).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ._engine import P, attach, check_columns, check_numeric, grouped_sums, open_input
from ._engine import schema_of, to_native

KEY_PREFIX = f"{P}k"


def calibrate_engine(data, survey_design, totals, *, method, by, bounds, trim, max_iter, tol,
                     weight_column, account_for_calibration, engine):
    """Calibrate on the engine that holds ``data``; see :func:`~diff_diff.calibrate`.

    Parameters
    ----------
    data : Polars/DuckDB/PyArrow frame, Parquet path, or pandas DataFrame with ``engine``
        The sample.
    survey_design : SurveyDesign
        Its (``pweight``) design.
    totals : dict or DataFrame
        Population totals, as for :func:`~diff_diff.calibrate`.
    method, by, bounds, trim, max_iter, tol, weight_column, account_for_calibration
        As for :func:`~diff_diff.calibrate`.
    engine : {"pandas", "polars", "duckdb"} or None
        Force an engine (``"pandas"``: collect and calibrate in memory).

    Returns
    -------
    (frame, SurveyDesign)
        The input in its own engine (a DuckDB relation, a Polars LazyFrame, ...) with the
        calibrated weight column (and ``<col>_cal`` replicate columns) as expressions of a
        joined factor table, and the calibrated design (its ``calibration`` attribute as
        in memory). Row order is the engine's (a join does not promise the input order).
    """
    from . import calibration as cal

    kind, frame, _ = open_input(data, engine)
    args = dict(method=method, by=by, bounds=bounds, trim=trim, max_iter=max_iter, tol=tol,
                weight_column=weight_column, account_for_calibration=account_for_calibration)
    if kind == "pandas":
        return cal.calibrate(frame, survey_design, totals, **args)
    by_cols, bounds, trim = cal._check_arguments(survey_design, method, by, bounds, trim,
                                                 max_iter, tol)
    survey_design.validate()
    long = cal._long_totals(totals, by_cols)
    schema = schema_of(frame)
    named = [(f"by column {c!r}", c) for c in by_cols]
    named += [(f"SurveyDesign.{f}: column {c!r}", c) for f, c in survey_design.named_columns()]
    margin_names = list(dict.fromkeys(long["margin"]))
    named += [(f"calibrate: margin column {m!r}", m) for m in margin_names if m != cal.INTERCEPT]
    check_columns(schema, named)
    for f, c in survey_design.named_columns():
        if f in ("weights", "replicate_weights"):
            check_numeric(schema, c, f"SurveyDesign.{f}: column {c!r}", allow_bool=False)
    numeric = [m for m in margin_names if long.loc[long["margin"] == m, "level"].isna().all()]
    categorical = [m for m in margin_names if m not in numeric]
    continuous = [m for m in numeric if m != cal.INTERCEPT]
    for m in continuous:
        check_numeric(schema, m, f"calibrate: numeric margin {m!r}", allow_bool=True)
    reps = list(survey_design.replicate_weights or [])
    if continuous and reps and account_for_calibration:
        raise ValueError(
            "calibrate on an engine: a replicate design with continuous margins "
            f"({continuous}) is not supported: each replicate would need its own Newton "
            "scans (the in-memory code solves them on the distinct values of the continuous "
            "margins, as many as the rows); calibrate in memory (engine='pandas'), use "
            "categorical margins, or account_for_calibration=False")
    name = weight_column or (f"{survey_design.weights}_cal" if survey_design.weights
                             else "_cal_weight")
    if name in schema:
        raise ValueError(f"calibrate: weight_column {name!r} already exists in data")
    for col in reps:
        if f"{col}_cal" in schema:
            raise ValueError(f"calibrate: replicate column {col}_cal already exists in data")

    solver = _Solver(frame, schema, survey_design, long, by_cols, categorical, numeric,
                     continuous, method, bounds, trim, max_iter, tol, reps,
                     account_for_calibration)
    factors, weight_expr, rep_exprs, report = solver.run()
    keys = by_cols + categorical
    joined = attach(frame, factors, keys, schema)
    import narwhals as nw

    new_cols = {name: weight_expr}
    new_reps = None
    if reps:
        new_reps = [f"{c}_cal" for c in reps]
        new_cols.update(dict(zip(new_reps, rep_exprs)))
    out = joined.with_columns(**new_cols).select(*[nw.col(c) for c in schema], *new_cols)
    info = cal.CalibrationInfo(
        method=method, by=tuple(by_cols), margins=tuple(solver.margins),
        design_weights=survey_design.weights,
        account_for_calibration=bool(account_for_calibration), report=report,
        calibrated_weights=name)
    new_design = replace(
        survey_design, weights=name, replicate_weights=new_reps,
        combined_weights=True if new_reps is not None else survey_design.combined_weights)
    new_design.calibration = info
    return to_native(out), new_design


def link_exprs(eta, method, bounds):
    """``(g, g')`` of the linear predictor as narwhals expressions (as ``_link``)."""
    import narwhals as nw

    f64 = nw.Float64
    if method == "linear":
        raw = 1.0 + eta
        if bounds is None:
            return raw, raw.is_finite().cast(f64)
        low, high = bounds
        return raw.clip(low, high), ((raw > low) & (raw < high)).cast(f64)
    if method == "raking":
        raw = eta.exp()
        if bounds is None:
            return raw, nw.when(raw.is_finite()).then(raw).otherwise(0.0)
        low, high = bounds
        return raw.clip(low, high), nw.when((raw > low) & (raw < high)).then(raw).otherwise(0.0)
    low, high = bounds
    a = (high - low) / ((high - 1.0) * (1.0 - low))
    c, dd = high - 1.0, 1.0 - low
    t = a * eta
    r = (-t.abs()).exp()
    up = t > 0
    num = nw.when(up).then(low * c * r + high * dd).otherwise(low * c + high * dd * r)
    den = nw.when(up).then(c * r + dd).otherwise(c + dd * r)
    return num / den, a * c * dd * (high - low) * r / (den * den)


class _Solver:
    """The pattern scan, the solve (patterns or scans), trimming, report, factor table."""

    def __init__(self, frame, schema, design, long, by_cols, categorical, numeric,
                 continuous, method, bounds, trim, max_iter, tol, reps, account):
        self.frame, self.schema, self.design = frame, schema, design
        self.long, self.by_cols = long, by_cols
        self.categorical, self.numeric, self.continuous = categorical, numeric, continuous
        self.method, self.bounds, self.trim = method, bounds, trim
        self.max_iter, self.tol, self.reps, self.account = max_iter, tol, reps, account

    # ------------------------------------------------------------------ expressions
    def _d(self):
        import narwhals as nw

        w = self.design.weights
        return nw.col(w).cast(nw.Float64) if w else nw.lit(1.0, dtype=nw.Float64)

    def _x(self, m):
        import narwhals as nw

        return nw.col(m).cast(nw.Float64)

    def _grouped(self, frame, sums, mins=None, maxs=None) -> pd.DataFrame:
        """One grouped scan over the categorical patterns: plain sums of formed columns."""
        return grouped_sums(frame, self.by_cols + self.categorical, sums, mins, maxs)

    # ------------------------------------------------------------------ the first scan
    def _pattern_scan(self) -> pd.DataFrame:
        import narwhals as nw

        f64 = nw.Float64
        d = self._d()
        frame = self.frame.with_columns(**{f"{P}d": d})
        dc = nw.col(f"{P}d")
        sums = {"d": dc, "dpos": (dc > 0).cast(f64), "dnull": dc.is_null().cast(f64)}
        for k, m in enumerate(self.continuous):
            x = self._x(m)
            sums[f"xbad{k}"] = (x.is_null() | ~x.is_finite()).cast(f64)
        for r, col in enumerate(self.reps):
            rep = nw.col(col).cast(f64)
            sums[f"r{r}"] = rep if self.design.combined_weights else rep * dc
            sums[f"rnull{r}"] = rep.is_null().cast(f64)
            sums[f"rneg{r}"] = (rep < 0).cast(f64)
        table = self._grouped(frame, sums, {"dmin": f"{P}d"}, {"dmax": f"{P}d"})
        self._check_weights(table)
        return table

    def _check_weights(self, t) -> None:
        from .calibration import CalibrationError

        d = self.design
        what = f"SurveyDesign.weights: column {d.weights!r}"
        if d.weights is not None:
            if t["sum:dnull"].sum() > 0 or np.isnan(t["sum:d"]).any():
                raise ValueError(f"{what} contains {max(int(t['sum:dnull'].sum()), 1)} "
                                 "missing (NaN) values")
            if np.isinf(t["max:dmax"]).any():
                raise ValueError(f"{what} contains infinite values")
            if (t["min:dmin"] < 0).any():
                raise ValueError(f"{what} contains negative values (min {t['min:dmin'].min():g})")
            if not t["sum:d"].sum() > 0:
                raise ValueError(f"{what} has all weights equal to zero")
        for k, m in enumerate(self.continuous):
            if t[f"sum:xbad{k}"].sum() > 0:
                raise CalibrationError(
                    f"calibrate: numeric margin {m!r} has missing or infinite values")
        for r, col in enumerate(self.reps):
            rwhat = f"SurveyDesign.replicate_weights: column {col!r}"
            if t[f"sum:rnull{r}"].sum() > 0 or not np.isfinite(t[f"sum:r{r}"]).all():
                raise ValueError(f"{rwhat} contains missing (NaN) or infinite values")
            if t[f"sum:rneg{r}"].sum() > 0:
                raise ValueError(f"{rwhat} contains negative values")

    # ------------------------------------------------------------------ model
    def _model(self, table):
        from . import calibration as cal

        for col in self.by_cols:  # counted in rows of the data, as in memory (not patterns)
            missing = table[col].isna().to_numpy()
            if missing.any():
                raise ValueError(f"by column {col!r} contains "
                                 f"{int(table['sum:n'].to_numpy()[missing].sum())} missing values")
        data = table[self.by_cols + self.categorical].copy()
        for m in self.continuous:
            data[m] = 1.0  # placeholder: the numeric products come from the scans
        group, keys = cal._groups(data, self.by_cols)
        margins, model, targets = cal._build_model(data, self.long, self.by_cols, group,
                                                   keys, self.method)
        self.margins, self.model, self.targets, self.keys = margins, model, targets, keys
        self.num_offset = {b.name: b.offset for b in model.blocks if not b.categorical}
        self.numeric_blocks = list(self.num_offset)

    def label(self, i):
        from .calibration import _group_label

        return _group_label(self.keys, i, self.by_cols)

    # ------------------------------------------------------------------ run
    def run(self):
        import narwhals as nw

        from . import calibration as cal

        table = self._pattern_scan()
        self._model(table)
        model = self.model
        n_rows = table["sum:n"].to_numpy(dtype=float)
        d_p = table["sum:d"].to_numpy(dtype=float)
        factors = table[self.by_cols + self.categorical].copy()
        if not self.continuous:
            return self._run_patterns(table, factors, n_rows, d_p)
        # continuous margins: Newton iterations as grouped scans
        self._n_rows = n_rows
        self._check_feasible_scan(table)
        coef, iters, err = self._newton()
        factors[f"{P}eta0"] = self._eta0(coef)
        for m in self.numeric_blocks:
            factors[f"{P}b{self.num_offset[m]}"] = coef[model.group, self.num_offset[m]]
        g_row, _ = link_exprs(self._eta_expr(), self.method, self.bounds)
        n_trimmed = 0
        if self.trim is not None:
            low, high = self.trim
            frame = attach(self.frame, factors, self.by_cols + self.categorical, self.schema)
            frame = frame.with_columns(**{f"{P}d": self._d(), f"{P}g": g_row})
            ratio, d = nw.col(f"{P}g"), nw.col(f"{P}d")
            out = (ratio < low) | (ratio > high)
            stats = self._align(self._grouped(frame, {
                "removed": (ratio - ratio.clip(low, high)) * d,
                "inside": nw.when(out).then(0.0).otherwise(d),
                "out": out.cast(nw.Float64)}))
            removed = np.bincount(model.group, weights=stats["sum:removed"],
                                  minlength=model.n_groups)
            inside_w = np.bincount(model.group, weights=stats["sum:inside"],
                                   minlength=model.n_groups)
            with np.errstate(invalid="ignore", divide="ignore"):
                shift = np.where(inside_w > 0, removed / inside_w, 0.0)
            stuck = (inside_w == 0) & (removed != 0)
            if stuck.any():
                cal.warn_user(
                    f"calibrate: trim={self.trim} clips every weight of {int(stuck.sum())} "
                    "group(s)" + "; ".join(self.label(i) for i in np.flatnonzero(stuck)[:5])
                    + ", so their totals are not preserved; widen trim")
            n_trimmed = int(stats["sum:out"].sum())
            factors[f"{P}shift"] = shift[model.group]
            g_row = nw.when((g_row < low) | (g_row > high)).then(g_row.clip(low, high)) \
                .otherwise(g_row + nw.col(f"{P}shift"))
        if self.trim is None:  # the last evaluation saw the final ratio: no more scans
            report = self._report_from(self._last, iters, err, n_trimmed)
        else:
            report = self._report_scan(factors, g_row, iters, err, n_trimmed)
        # replicates (only without accounting for calibration here, see calibrate_engine):
        # each replicate weight times the full-sample ratio g, as in memory
        return factors, self._d() * g_row, [self._replicate(col) * g_row for col in self.reps], \
            report

    def _replicate(self, col):
        """Replicate column ``col`` as a combined weight (times d when given as factors)."""
        import narwhals as nw

        rep = nw.col(col).cast(nw.Float64)
        return rep if self.design.combined_weights else rep * self._d()

    # ------------------------------------------------------------------ patterns route
    def _run_patterns(self, table, factors, n_rows, d_p):
        from . import calibration as cal

        model, targets, keys = self.model, self.targets, self.keys
        margins, method, bounds, tol = self.margins, self.method, self.bounds, self.tol
        cal._check_feasible(model, d_p, targets, keys, margins, method, bounds)
        g, iters, err = cal._solve(model, d_p, targets, method, bounds, self.max_iter, tol)
        cal._raise_unconverged(err, tol, keys, model, d_p * g, targets, margins,
                               "the full-sample weights")
        n_trimmed = 0
        if self.trim is not None:
            low, high = self.trim
            outside = (g < low) | (g > high)
            g, _ = cal._trim(g, d_p, model.group, model.n_groups, self.trim, self.label)
            n_trimmed = int(n_rows[outside].sum())
        factors[f"{P}g"] = g
        rep_exprs = []
        n_rep = 0
        import narwhals as nw

        for r, col in enumerate(self.reps):
            rep_p = table[f"sum:r{r}"].to_numpy(dtype=float)
            if self.account:
                what = f" in replicate {col!r}"
                cal._check_feasible(model, rep_p, targets, keys, margins, method, bounds, what)
                g_r, _, err_r = cal._solve(model, rep_p, targets, method, bounds,
                                           self.max_iter, tol)
                cal._raise_unconverged(err_r, tol, keys, model, rep_p * g_r, targets, margins,
                                       f"replicate {col!r}")
                if self.trim is not None:
                    g_r, _ = cal._trim(g_r, rep_p, model.group, model.n_groups, self.trim,
                                       self.label)
                n_rep += 1
                factors[f"{P}g{r}"] = g_r
                ratio = nw.col(f"{P}g{r}")
            else:
                ratio = nw.col(f"{P}g")
            rep_exprs.append(self._replicate(col) * ratio)
        report = cal._report(model, d_p * g, d_p, g, targets, keys, self.by_cols, margins,
                             iters, err, tol, n_trimmed, n_rep)
        groups = report.groups.copy()
        groups["n"] = np.bincount(model.group, weights=n_rows,
                                  minlength=model.n_groups).astype(np.int64)
        report = replace(report, groups=groups)
        return factors, self._d() * nw.col(f"{P}g"), rep_exprs, report

    # ------------------------------------------------------------------ scans route
    def _align(self, stats) -> pd.DataFrame:
        """A scan's table in the order of the model's patterns (missing patterns: 0)."""
        keys = self.by_cols + self.categorical
        if not keys:
            return stats
        merged = self._pattern_table_keys.merge(stats, on=keys, how="left")
        return merged.fillna({c: 0.0 for c in stats.columns if c.startswith("sum:")})

    def _eta0(self, coef) -> np.ndarray:
        """The categorical part of the linear predictor, per pattern."""
        cat_only = coef.copy()
        for m in self.numeric_blocks:
            cat_only[:, self.num_offset[m]] = 0.0
        return self.model.linear_predictor(cat_only)

    def _eta_expr(self):
        import narwhals as nw

        eta = nw.col(f"{P}eta0")
        for m in self.numeric_blocks:
            x = nw.lit(1.0) if m not in self.continuous else self._x(m)
            eta = eta + nw.col(f"{P}b{self.num_offset[m]}") * x
        return eta

    def _g_expr(self, factors, coef):
        """The frame with the factor table for ``coef`` joined and ``{P}g``, ``{P}d`` formed."""
        table = factors.copy()
        table[f"{P}eta0"] = self._eta0(coef)
        for m in self.numeric_blocks:
            table[f"{P}b{self.num_offset[m]}"] = coef[self.model.group, self.num_offset[m]]
        joined = attach(self.frame, table, self.by_cols + self.categorical, self.schema)
        g, dg = link_exprs(self._eta_expr(), self.method, self.bounds)
        return joined.with_columns(**{f"{P}d": self._d(), f"{P}g": g, f"{P}dg": dg})

    def _evaluate(self, coef):
        """Misfit sums ``sum d g x``, Jacobian ``sum d g' x x'`` and finiteness per group."""
        import narwhals as nw

        f64 = nw.Float64
        frame = self._g_expr(self._factor_keys, coef)
        g, dg, d = nw.col(f"{P}g"), nw.col(f"{P}dg"), nw.col(f"{P}d")
        finite = g.is_finite() & dg.is_finite()
        gd = nw.when(finite).then(g * d).otherwise(0.0)
        dgd = nw.when(finite).then(dg * d).otherwise(0.0)
        sums = {"gd": gd, "dgd": dgd, "bad": (~finite).cast(f64)}
        xs = {m: self._x(m) for m in self.continuous}
        for m, x in xs.items():
            sums[f"gdx:{m}"] = gd * x
            sums[f"dgdx:{m}"] = dgd * x
        cont = list(xs)
        for i, a in enumerate(cont):
            for b in cont[i:]:
                sums[f"dgdxx:{a}:{b}"] = dgd * xs[a] * xs[b]
        # the ratio's extremes over rows with d > 0 (for the report, from the last call)
        frame = frame.with_columns(**{
            f"{P}glo": nw.when(d > 0).then(g).otherwise(float("inf")),
            f"{P}ghi": nw.when(d > 0).then(g).otherwise(-float("inf"))})
        stats = self._align(self._grouped(frame, sums, {"glo": f"{P}glo"},
                                          {"ghi": f"{P}ghi"}))
        self._last = stats
        return self._assemble(stats)

    def _start(self, stats):
        """The first evaluation (all coefficients 0) from the feasibility scan's sums.

        Every link has ``g(0) = 1`` and ``g'(0) = 1`` (bounds always hold 1 strictly
        inside), so ``sum d g x = sum d g' x = sum d x``: no join and no scan needed.
        """
        start = pd.DataFrame({"sum:gd": stats["sum:d"], "sum:dgd": stats["sum:d"],
                              "sum:bad": 0.0})
        for m in self.continuous:
            start[f"sum:gdx:{m}"] = start[f"sum:dgdx:{m}"] = stats[f"sum:dx:{m}"]
        for i, a in enumerate(self.continuous):
            for b in self.continuous[i:]:
                start[f"sum:dgdxx:{a}:{b}"] = stats[f"sum:dxx:{a}:{b}"]
        pos = stats["sum:dpos"].to_numpy(dtype=float) > 0
        start["min:glo"] = np.where(pos, 1.0, np.inf)
        start["max:ghi"] = np.where(pos, 1.0, -np.inf)
        self._last = start
        return self._assemble(start)

    def _sum(self, stats, key, m=None, m2=None):
        """Per-pattern sums of ``v`` times the numeric margins ``m`` (and ``m2``)."""
        base = stats
        names = [x for x in (m, m2) if x is not None and x != "(Intercept)"]
        if not names:
            return base[f"sum:{key}"].to_numpy(dtype=float)
        if len(names) == 1:
            return base[f"sum:{key}x:{names[0]}"].to_numpy(dtype=float)
        a, b = names
        col = f"sum:{key}xx:{a}:{b}"
        if col not in base:
            col = f"sum:{key}xx:{b}:{a}"
        return base[col].to_numpy(dtype=float)

    def _assemble(self, stats):
        model = self.model
        G = model.n_groups
        grp = model.group
        gd = stats["sum:gd"].to_numpy(dtype=float)
        dgd = stats["sum:dgd"].to_numpy(dtype=float)
        xtv = model.grouped_xtv(gd)
        xtvx = model.grouped_xtvx(dgd)
        blocks = model.blocks
        for i, a in enumerate(blocks):
            if a.categorical:
                continue
            xtv[:, a.offset] = np.bincount(grp, weights=self._sum(stats, "gd", a.name),
                                           minlength=G)
            for j, b in enumerate(blocks):
                if b.categorical:
                    v = self._sum(stats, "dgd", a.name)
                    slots = model._slots[j]
                    block = np.bincount(slots, weights=v, minlength=G * (b.width + 1))
                    block = block.reshape(G, b.width + 1)[:, 1:]
                    xtvx[:, b.offset:b.offset + b.width, a.offset] = block
                    xtvx[:, a.offset, b.offset:b.offset + b.width] = block
                else:
                    xtvx[:, a.offset, b.offset] = np.bincount(
                        grp, weights=self._sum(stats, "dgd", a.name, b.name), minlength=G)
        finite = np.bincount(grp, weights=stats["sum:bad"].to_numpy(dtype=float),
                             minlength=G) == 0
        return xtv, xtvx, finite

    def _check_feasible_scan(self, table) -> None:
        """As ``_check_feasible``: needs ``sum d x`` and ``sum 1[d>0] x`` (one scan)."""
        import narwhals as nw

        from . import calibration as cal

        keys = self.by_cols + self.categorical
        pats = table[keys].copy()
        pats[f"{P}pat"] = np.arange(len(table))
        self._pattern_table_keys = pats
        self._factor_keys = table[keys].copy()
        frame = self.frame.with_columns(**{f"{P}d": self._d()})
        d = nw.col(f"{P}d")
        sums = {"d": d, "dpos": (d > 0).cast(nw.Float64)}
        for m in self.continuous:
            sums[f"dx:{m}"] = d * self._x(m)
            sums[f"dposx:{m}"] = (d > 0).cast(nw.Float64) * self._x(m)
        for i, a in enumerate(self.continuous):  # the Jacobian at the start (see _start)
            for b in self.continuous[i:]:
                sums[f"dxx:{a}:{b}"] = d * self._x(a) * self._x(b)
        stats = self._align(self._grouped(frame, sums))
        self._feasible_stats = stats

        class _Products:  # grouped_xtv of the sums above, for the in-memory check
            def __init__(self, solver, key):
                self.solver, self.key = solver, key
                self.n_cols, self.blocks = solver.model.n_cols, solver.model.blocks

            def grouped_xtv(self, _):
                model = self.solver.model
                out = model.grouped_xtv(stats[f"sum:{self.key}"].to_numpy(dtype=float))
                for b in model.blocks:
                    if not b.categorical and b.name in self.solver.continuous:
                        out[:, b.offset] = np.bincount(
                            model.group, weights=stats[f"sum:{self.key}x:{b.name}"],
                            minlength=model.n_groups)
                return out

        sample = _Products(self, "d").grouped_xtv(None)
        reach = _Products(self, "dpos").grouped_xtv(None)

        class _Fixed:
            def __init__(self, model):
                self.n_cols, self.blocks = model.n_cols, model.blocks
                self.calls = iter([sample, reach])

            def grouped_xtv(self, _):
                return next(self.calls)

        cal._check_feasible(_Fixed(self.model), np.zeros(1), self.targets, self.keys,
                            self.margins, self.method, self.bounds)

    def _newton(self):
        """``calibration._solve`` with every evaluation a grouped scan."""
        from .calibration_model import solve_grouped

        model, targets = self.model, self.targets
        n_groups = model.n_groups
        coef = np.zeros((n_groups, model.n_cols))
        scale = 1.0 + np.abs(targets)
        xtv, jac, _ = self._start(self._feasible_stats)
        misfit = targets - xtv
        err = np.max(np.abs(misfit) / scale, axis=1)
        size = np.sqrt(np.sum((misfit / scale) ** 2, axis=1))
        iterations = 0
        while iterations < self.max_iter and (err >= self.tol).any():
            iterations += 1
            pending = err >= self.tol
            step = np.zeros_like(coef)
            step[pending] = solve_grouped(jac[pending], misfit[pending])
            for _ in range(60):
                trial = coef + step
                xtv_new, jac_new, finite = self._evaluate(trial)
                with np.errstate(invalid="ignore", over="ignore"):
                    new_misfit = targets - xtv_new
                    new_size = np.sqrt(np.sum((new_misfit / scale) ** 2, axis=1))
                worse = pending & (~finite | ~(new_size < size))
                if not worse.any():
                    break
                step[worse] /= 2.0
            coef, jac, misfit = trial, jac_new, new_misfit
            err = np.max(np.abs(misfit) / scale, axis=1)
            size = np.sqrt(np.sum((misfit / scale) ** 2, axis=1))
        if not np.all(err < self.tol):
            from .calibration import _raise_unconverged

            _raise_unconverged(err, self.tol, self.keys, _AchievedModel(model, targets - misfit),
                               None, targets, self.margins, "the full-sample weights")
        return coef, iterations, err

    def _report_scan(self, factors, g_row, iters, err, n_trimmed):
        """The report from one more scan with the final ratio (achieved margins, ranges)."""
        import narwhals as nw

        joined = attach(self.frame, factors, self.by_cols + self.categorical, self.schema)
        frame = joined.with_columns(**{f"{P}d": self._d(), f"{P}g": g_row})
        d, g = nw.col(f"{P}d"), nw.col(f"{P}g")
        frame = frame.with_columns(**{
            f"{P}glo": nw.when(d > 0).then(g).otherwise(float("inf")),
            f"{P}ghi": nw.when(d > 0).then(g).otherwise(-float("inf"))})
        sums = {"gd": g * d}
        for m in self.continuous:
            sums[f"gdx:{m}"] = g * d * self._x(m)
        stats = self._align(self._grouped(frame, sums, {"glo": f"{P}glo"},
                                          {"ghi": f"{P}ghi"}))
        return self._report_from(stats, iters, err, n_trimmed)

    def _report_from(self, stats, iters, err, n_trimmed):
        """The report from per-pattern sums ``gd`` (and ``gdx``) and the ratio's extremes."""
        from . import calibration as cal

        model = self.model
        achieved = model.grouped_xtv(stats["sum:gd"].to_numpy(dtype=float))
        for b in model.blocks:
            if not b.categorical:
                achieved[:, b.offset] = np.bincount(
                    model.group, weights=self._sum(stats, "gd", b.name), minlength=model.n_groups)
        # ratio extremes: the pattern minima and maxima stand in for rows (d > 0 only)
        lo = stats["min:glo"].fillna(np.inf).to_numpy(dtype=float)
        hi = stats["max:ghi"].fillna(-np.inf).to_numpy(dtype=float)
        pos = self._feasible_stats["sum:dpos"].to_numpy(dtype=float) > 0
        wrapped = _AchievedModel(model, achieved, doubled=True)
        report = cal._report(wrapped, None, np.concatenate([pos, pos]).astype(float),
                             np.concatenate([lo, hi]), self.targets, self.keys, self.by_cols,
                             self.margins, iters, err, self.tol, n_trimmed, 0)
        n_rows = self._n_rows
        groups = report.groups.copy()
        groups["n"] = np.bincount(model.group, weights=n_rows,
                                  minlength=model.n_groups).astype(np.int64)
        return replace(report, groups=groups)


class _AchievedModel:
    """A model whose grouped sums of the weights are known (``achieved``), for the report
    and error helpers of the in-memory code; ``doubled``: rows are patterns twice over
    (minima, then maxima of the ratio)."""

    def __init__(self, model, achieved, doubled=False):
        self.blocks, self.n_cols, self.n_groups = model.blocks, model.n_cols, model.n_groups
        self.group = np.concatenate([model.group, model.group]) if doubled else model.group
        self._achieved = achieved

    def grouped_xtv(self, _):
        return self._achieved
