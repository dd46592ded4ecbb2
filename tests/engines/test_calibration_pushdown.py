"""Calibration on engines (calibrate/rake with by=, raking/linear/logit, bounds, trim,
replicates) and aggregate_survey/survey_mean/survey_total on the calibrated engine design
equal the in-memory path (the reference) to 1e-10; clear errors for what engines refuse."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from diff_diff import SurveyDesign, aggregate_survey, calibrate, rake, survey_mean, survey_total
from diff_diff.survey.calibration import CalibrationError

pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")
pa = pytest.importorskip("pyarrow")
pytest.importorskip("narwhals")

TOL = 1e-10
BY = ["state", "year"]


def make(seed=5, n=600):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "state": rng.choice(["A", "B", "C"], n), "year": rng.choice([2020, 2021], n),
        "sex": rng.choice(["f", "m"], n), "age": rng.choice(["y", "m", "o"], n),
        "w": rng.uniform(1, 5, n), "inc": rng.lognormal(0, 0.5, n),
        "psu": rng.integers(0, 30, n), "y": rng.normal(10, 2, n),
    })
    df["stratum"] = df["psu"] % 3
    for r in range(4):  # JK1-like replicate factors
        df[f"rep{r}"] = np.where(df["psu"] % 4 == r, 0.0, 4 / 3)
    return df


DF = make()


def rake_totals(df):
    rows = []
    for (s, yr), _ in df.groupby(BY):
        for m, levels, shares in (("sex", ["f", "m"], [0.55, 0.45]),
                                  ("age", ["m", "o", "y"], [0.3, 0.3, 0.4])):
            rows += [(s, yr, m, lev, 320.0 * sh) for lev, sh in zip(levels, shares)]
    return pd.DataFrame(rows, columns=[*BY, "margin", "level", "total"])


def linear_totals(df):
    sex = rake_totals(df)
    sex = sex[sex["margin"] == "sex"]
    g = df.assign(wx=df["w"] * df["inc"]).groupby(BY)
    inc = (g["wx"].sum() / g["w"].sum() * 336.0).reset_index(name="total")
    inc["margin"], inc["level"] = "inc", None
    return pd.concat([sex, inc[[*BY, "margin", "level", "total"]]], ignore_index=True)


RAKE = rake_totals(DF)
LINEAR = linear_totals(DF)


def quiet(f, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*a, **k)


def back(frame, base=DF) -> pd.DataFrame:
    """An engine's result as pandas, in the input's row order (rows are unique)."""
    if isinstance(frame, (pl.LazyFrame, pl.DataFrame)):
        out = (frame.collect() if isinstance(frame, pl.LazyFrame) else frame).to_pandas()
    elif isinstance(frame, pa.Table):
        out = frame.to_pandas()
    else:
        out = frame.df()
    return base.merge(out, on=list(base.columns), how="left")


def same(got: pd.DataFrame, ref: pd.DataFrame, keys=None):
    if keys:
        got = got.sort_values(keys).reset_index(drop=True)
        ref = ref.sort_values(keys).reset_index(drop=True)
    assert list(got.columns) == list(ref.columns)
    for c in ref.columns:
        if ref[c].dtype.kind == "f":
            np.testing.assert_allclose(got[c].to_numpy(float), ref[c].to_numpy(float),
                                       rtol=TOL, atol=TOL, err_msg=c)
        else:
            assert [str(v) for v in got[c]] == [str(v) for v in ref[c]], c


ENGINES = {
    "duckdb": lambda df: duckdb.from_df(df),
    "polars-lazy": lambda df: pl.from_pandas(df).lazy(),
    "pyarrow": lambda df: pa.Table.from_pandas(df, preserve_index=False),
}
CASES = {
    "rake-by": (RAKE, dict(method="raking", by=BY)),
    "rake-bounds-trim": (RAKE, dict(method="raking", by=BY, bounds=(0.3, 3.0),
                                    trim=(0.5, 2.0))),
    "linear-continuous": (LINEAR, dict(method="linear", by=BY)),
    "logit-continuous": (LINEAR, dict(method="logit", by=BY, bounds=(0.2, 5.0))),
    "linear-bounds-trim": (LINEAR, dict(method="linear", by=BY, bounds=(0.5, 2.0),
                                        trim=(0.6, 1.8))),
}
TAYLOR = SurveyDesign(weights="w", strata="stratum", psu="psu")
ROWS = SurveyDesign(weights="w", strata="stratum")


# every route and option once, every engine at least once (the engines share the code; the
# routes and options do not): patterns (rake), patterns + bounds + trim, scans (linear,
# logit with bounds, linear with bounds + trim); the calibrated design end to end once per
# kind of margin (categorical, numeric) - its variance does not depend on the route
@pytest.mark.parametrize("case, engine, end_to_end", [
    ("rake-by", "duckdb", True), ("rake-bounds-trim", "polars-lazy", False),
    ("linear-continuous", "polars-lazy", True), ("logit-continuous", "duckdb", False),
    ("linear-bounds-trim", "pyarrow", False)])
def test_weights_report_and_statistics_equal_memory(case, engine, end_to_end):
    totals, kw = CASES[case]
    ref, rdes = quiet(calibrate, DF, TAYLOR, totals, **kw)
    out, des = quiet(calibrate, ENGINES[engine](DF), TAYLOR, totals, **kw)
    got = back(out)
    np.testing.assert_allclose(got["w_cal"], ref["w_cal"], rtol=TOL)
    r1, r2 = rdes.calibration.report, des.calibration.report
    assert (r1.iterations, r1.n_trimmed, r1.converged) == (r2.iterations, r2.n_trimmed,
                                                           r2.converged)
    same(r2.margins, r1.margins)
    same(r2.groups, r1.groups)
    np.testing.assert_allclose(r2.ratio_range, r1.ratio_range, rtol=TOL)
    assert des.weights == "w_cal" and des.calibration.by == tuple(BY)
    if not end_to_end:
        return
    # the calibrated engine design end to end (calibration-aware Taylor variance)
    a, _ = quiet(aggregate_survey, ref, BY, "y", rdes, covariates="inc")
    b, _ = quiet(aggregate_survey, out, BY, "y", des, covariates="inc")
    same(b, a, BY)
    same(survey_mean(out, "y", des, by="sex", deff=True),
         survey_mean(ref, "y", rdes, by="sex", deff=True))


@pytest.mark.parametrize("case, engine", [("rake-by", "duckdb"),
                                          ("linear-continuous", "polars-lazy")])
def test_rows_as_psus_moments_variance_equals_memory(case, engine):
    totals, kw = CASES[case]
    ref, rdes = quiet(calibrate, DF, ROWS, totals, **kw)
    out, des = quiet(calibrate, ENGINES[engine](DF), ROWS, totals, **kw)
    same(survey_total(out, ["y", "inc"], des, by="age"),
         survey_total(ref, ["y", "inc"], rdes, by="age"))
    a, _ = quiet(aggregate_survey, ref, BY, "y", rdes)
    b, _ = quiet(aggregate_survey, out, BY, "y", des)
    same(b, a, BY)


def test_rake_without_by_on_pyarrow_and_parquet(tmp_path):
    margins = {"sex": {"f": 5000.0, "m": 4000.0}, "age": {"m": 3000.0, "o": 3000.0,
                                                         "y": 3000.0}}
    ref, rdes = rake(DF, TAYLOR, margins)
    out, des = rake(ENGINES["pyarrow"](DF), TAYLOR, margins)
    np.testing.assert_allclose(back(out)["w_cal"], ref["w_cal"], rtol=TOL)
    path = tmp_path / "micro.parquet"
    DF.to_parquet(path)
    rel, des2 = rake(str(path), TAYLOR, margins, engine="duckdb")
    same(survey_mean(rel, "y", des2), survey_mean(ref, "y", rdes))
    # input unchanged, scale invariance of the ratio g
    big = DF.assign(w=DF["w"] * 7.0)
    scaled, _ = rake(duckdb.from_df(big), TAYLOR, margins)
    np.testing.assert_allclose(back(scaled, big)["w_cal"], ref["w_cal"], rtol=1e-9)
    assert DF.equals(make())  # the input is not modified


def test_replicate_design_recalibrated_on_the_engine():
    design = SurveyDesign(weights="w", replicate_weights=[f"rep{r}" for r in range(4)],
                          replicate_method="JK1", combined_weights=False)
    ref, rdes = rake(DF, design, RAKE, by=BY)
    out, des = rake(pl.from_pandas(DF).lazy(), design, RAKE, by=BY)
    got = back(out)
    for r in range(4):
        np.testing.assert_allclose(got[f"rep{r}_cal"], ref[f"rep{r}_cal"], rtol=TOL)
    assert des.calibration.report.replicates_recalibrated == 4
    same(survey_mean(out, "y", des, by="sex"), survey_mean(ref, "y", rdes, by="sex"))


def test_errors_name_what_engines_refuse():
    design = SurveyDesign(weights="w", replicate_weights=[f"rep{r}" for r in range(4)],
                          replicate_method="JK1", combined_weights=False)
    with pytest.raises(ValueError, match="replicate design with continuous margins"):
        calibrate(duckdb.from_df(DF), design, LINEAR, by=BY, method="linear")
    with pytest.raises(CalibrationError, match="no population total for level 'o'"):
        rake(duckdb.from_df(DF), TAYLOR, RAKE[RAKE["level"] != "o"], by=BY)
    with pytest.raises(ValueError, match="margin column 'nope' not found"):
        rake(duckdb.from_df(DF), TAYLOR, {"nope": {"a": 1.0}})
    with pytest.raises(ValueError, match="weight_column 'w' already exists"):
        rake(duckdb.from_df(DF), TAYLOR, RAKE, by=BY, weight_column="w")
    with pytest.raises(CalibrationError, match="did not converge"):
        calibrate(duckdb.from_df(DF), TAYLOR, LINEAR, by=BY, method="raking", max_iter=1)
    out, des = rake(duckdb.from_df(DF), TAYLOR, RAKE, by=BY)
    with pytest.raises(ValueError, match="return_stats=True is not available"):
        survey_mean(out, "y", des, return_stats=True)


def test_covariates_after_a_numeric_margin_and_fixed_ratio_replicates():
    # the calibrated scan's numeric-margin columns once overwrote aggregate_survey's
    # covariate columns (cov_mean was x's total / N), and the continuous-margin route dropped
    # the replicate columns of account_for_calibration=False
    ref, rdes = quiet(calibrate, DF, TAYLOR, LINEAR, by=BY, method="linear")
    out, des = quiet(calibrate, pl.from_pandas(DF).lazy(), TAYLOR, LINEAR, by=BY,
                     method="linear")
    a, _ = quiet(aggregate_survey, ref, BY, "y", rdes, covariates="inc")
    b, _ = quiet(aggregate_survey, out, BY, "y", des, covariates="inc")
    same(b, a, BY)
    assert not np.allclose(a["inc_mean"], a["inc_mean"].iloc[0])  # a real covariate mean
    design = SurveyDesign(weights="w", replicate_weights=[f"rep{r}" for r in range(4)],
                          replicate_method="JK1", combined_weights=False)
    kw = dict(by=BY, method="linear", account_for_calibration=False)
    ref, rdes = quiet(calibrate, DF, design, LINEAR, **kw)
    out, des = quiet(calibrate, duckdb.from_df(DF), design, LINEAR, **kw)
    got = back(out)
    assert des.replicate_weights == rdes.replicate_weights == [f"rep{r}_cal" for r in range(4)]
    for r in range(4):
        np.testing.assert_allclose(got[f"rep{r}_cal"], ref[f"rep{r}_cal"], rtol=TOL)
    same(survey_mean(out, "y", des, by="sex"), survey_mean(ref, "y", rdes, by="sex"))


def test_a_user_table_named_like_a_python_variable_does_not_capture_the_factor_join():
    # DuckDB resolves the connection's tables before Python variables (replacement scans)
    con = duckdb.connect()
    for name in ("small", "table"):
        con.execute(f'CREATE TABLE "{name}" AS SELECT 1 AS state, 2.0 AS sex')
    ref, rdes = rake(DF, TAYLOR, RAKE, by=BY)
    out, des = rake(con.from_df(DF), TAYLOR, RAKE, by=BY)
    np.testing.assert_allclose(back(out)["w_cal"], ref["w_cal"], rtol=TOL)


def test_missing_by_values_are_counted_in_rows_as_in_memory():
    df = DF.assign(state=DF["state"].where(DF["psu"] % 7 != 0, None))
    n_missing = int(df["state"].isna().sum())
    for data in (df, duckdb.from_df(df), pl.from_pandas(df).lazy()):
        with pytest.raises(ValueError, match=f"by column 'state' contains {n_missing} missing"):
            rake(data, TAYLOR, RAKE, by=BY)
