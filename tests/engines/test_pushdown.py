"""Survey statistics pushed down to Polars / DuckDB / PyArrow / Parquet equal the in-memory
path (the reference) to 1e-10: aggregate_survey, survey_mean, survey_total over their
options, Taylor and replicate designs; additive statistics; clear errors."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

from diff_diff import SurveyDesign, aggregate_survey, survey_mean, survey_total

pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")
pa = pytest.importorskip("pyarrow")
pytest.importorskip("narwhals")

TOL = 1e-10


def make_micro(seed=3, n=720):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "state": rng.choice(["AL", "AK", "AZ", "AR", "CA"], n),
        "year": rng.choice([2019, 2020, 2021], n),
        "stratum": rng.integers(0, 6, n),
    })
    df["psu"] = df["stratum"] * 10 + rng.integers(0, 5, n)
    df["psu_in"] = rng.integers(0, 5, n)  # labels unique only within strata
    df["w"] = rng.uniform(20, 200, n)
    df.loc[rng.random(n) < 0.03, "w"] = 0.0
    df["fw"] = rng.integers(1, 5, n).astype(float)
    df["fpc"] = 500.0 + 3 * df["stratum"]
    df["smoke"] = rng.random(n) < 0.25
    df["bmi"] = rng.normal(27, 4, n)
    df.loc[rng.random(n) < 0.05, "bmi"] = np.nan
    df["inc"] = rng.lognormal(3, 0.5, n)
    df["age"] = rng.integers(18, 80, n).astype(float)
    df.loc[rng.random(n) < 0.04, "age"] = np.nan
    return df


MICRO = make_micro()


def engines(df):
    """The same data as every engine sees it (and the pandas reference)."""
    return {
        "polars-lazy": pl.from_pandas(df).lazy(),
        "polars": pl.from_pandas(df),
        "duckdb": duckdb.from_df(df),
        "pyarrow": pa.Table.from_pandas(df, preserve_index=False),
    }


def assert_same(got, ref):
    assert list(got.columns) == list(ref.columns)
    assert len(got) == len(ref)
    for c in ref.columns:
        a, b = ref[c].to_numpy(), got[c].to_numpy()
        if a.dtype.kind in "fiub":
            a, b = a.astype(float), b.astype(float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), c
            ok = ~np.isnan(a)
            np.testing.assert_allclose(b[ok], a[ok], rtol=TOL, atol=TOL, err_msg=c)
        else:
            assert [str(x) for x in a] == [str(x) for x in b], c


TAYLOR = {
    "strata-psu": SurveyDesign(weights="w", strata="stratum", psu="psu"),
    "nest-fpc-adjust": SurveyDesign(weights="w", strata="stratum", psu="psu_in", nest=True,
                                    fpc="fpc", lonely_psu="adjust"),
    "psu-only": SurveyDesign(weights="w", psu="psu"),
    "rows-strata-fpc": SurveyDesign(weights="w", strata="stratum", fpc="fpc"),
    "rows-only": SurveyDesign(weights="w"),
    "unweighted": SurveyDesign(psu="psu"),
    "fweight-rows": SurveyDesign(weights="fw", strata="stratum", weight_type="fweight"),
    "fweight-psu": SurveyDesign(weights="fw", psu="psu", weight_type="fweight"),
}


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("name", list(TAYLOR))
def test_aggregate_taylor_designs_every_engine(name):
    design = TAYLOR[name]
    args = (["state", "year"], ["smoke", "bmi"], design)
    ref, ref2 = quiet(aggregate_survey, MICRO, *args, covariates="age")
    every = list(engines(MICRO).values())
    data = every[list(TAYLOR).index(name) % 4]  # each engine, two designs
    got, got2 = quiet(aggregate_survey, data, *args, covariates="age")
    assert_same(got, ref)
    assert got2 == ref2


@pytest.mark.parametrize("lonely", ["remove", "certainty", "adjust", "average"])
def test_aggregate_lonely_psu_min_n_and_aweight_second_stage(lonely):
    # a stratum with one PSU and small cells that fall back to independent draws
    df = MICRO.copy()
    df.loc[df["stratum"] == 5, "psu"] = 50
    design = SurveyDesign(weights="w", strata="stratum", psu="psu")
    kw = dict(min_n=48, lonely_psu=lonely, second_stage_weights="aweight")
    ref, _ = quiet(aggregate_survey, df, ["state", "year"], "inc", design, **kw)
    assert ref["srs_fallback"].any()
    got, _ = quiet(aggregate_survey, pl.from_pandas(df).lazy(), ["state", "year"], "inc",
                   design, **kw)
    assert_same(got, ref)


@pytest.mark.parametrize("name", ["strata-psu", "nest-fpc-adjust", "rows-strata-fpc",
                                  "fweight-rows"])
@pytest.mark.parametrize("fn", [survey_mean, survey_total])
def test_mean_and_total_by_domains_every_engine(name, fn):
    design = TAYLOR[name]
    deff = design.weight_type == "pweight"
    bys = (None, "state", ["state", "year"], ["year", "state"])
    pairs = list(zip(bys, engines(MICRO).values()))
    at = 2 * list(TAYLOR).index(name) + (fn is survey_total)
    # two (by, engine) pairs per design and function; every pair over the test's cases
    for by, data in (pairs[at % 4], pairs[(at + 2) % 4]):
        ref = quiet(fn, MICRO, ["smoke", "inc"], design, by=by, deff=deff, alpha=0.1)
        got = quiet(fn, data, ["smoke", "inc"], design, by=by, deff=deff, alpha=0.1)
        assert_same(got, ref)


def test_na_rm_and_missing_values_error():
    design = TAYLOR["strata-psu"]
    ref = survey_mean(MICRO, ["bmi", "inc"], design, by="year", na_rm=True, deff=True)
    got = survey_mean(duckdb.from_df(MICRO), ["bmi", "inc"], design, by="year", na_rm=True,
                      deff=True)
    assert_same(got, ref)
    with pytest.raises(ValueError, match="na_rm=True"):
        survey_mean(pl.from_pandas(MICRO), "bmi", design)


@functools.lru_cache(maxsize=1)
def replicate_designs():
    from diff_diff import as_replicate_design

    base = SurveyDesign(weights="w", strata="stratum", psu="psu")
    out = {}
    for method in ("JKn", "bootstrap"):
        small = MICRO[MICRO["stratum"] < 2]
        df, rep = as_replicate_design(small, base, method, n_replicates=8, seed=1)
        out[method] = (df, rep)
    df, rep = out["JKn"]
    out["JKn-mse"] = (df, rep.copy_with(mse=True))
    # perturbation factors (combined_weights=False), Fay-style scaling
    factors = df[rep.replicate_weights].to_numpy() / np.where(df["w"] > 0, df["w"], 1)[:, None]
    fdf = df.drop(columns=rep.replicate_weights).copy()
    names = [f"f{r}" for r in range(factors.shape[1])]
    fdf[names] = factors
    out["factors"] = (fdf, SurveyDesign(weights="w", replicate_weights=names,
                                        replicate_method="JK1", combined_weights=False))
    return out


# each replicate method with the statistics whose finishing differs (aggregate: the panel
# and min_n; mean: ratios of replicate sums; total: sums; mse: around the estimate)
@pytest.mark.parametrize("method, aggregate, fns", [
    ("JKn", True, (survey_mean,)), ("bootstrap", False, (survey_total,)),
    ("JKn-mse", False, (survey_mean,)), ("factors", True, (survey_total,))])
def test_replicate_designs(method, aggregate, fns):
    df, design = replicate_designs()[method]
    if aggregate:
        ref, _ = quiet(aggregate_survey, df, ["state", "year"], ["smoke", "bmi"], design)
        got, _ = quiet(aggregate_survey, duckdb.from_df(df), ["state", "year"],
                       ["smoke", "bmi"], design)
        assert_same(got, ref)
    for fn in fns:
        ref = quiet(fn, df, ["smoke", "inc"], design, by="state", deff=True)
        got = quiet(fn, pl.from_pandas(df).lazy(), ["smoke", "inc"], design, by="state",
                    deff=True)
        assert_same(got, ref)


def test_parquet_path_and_glob_with_both_readers(tmp_path):
    design = TAYLOR["strata-psu"]
    import pyarrow.parquet as pq

    for year, part in MICRO.groupby("year"):  # numpy arrays: NaN stays NaN (not null)
        table = pa.table({c: part[c].to_numpy() for c in part.columns})
        assert table.column("bmi").null_count == 0
        pq.write_table(table, tmp_path / f"y{year}.parquet")
    ref, _ = quiet(aggregate_survey, MICRO, ["state", "year"], "bmi", design)
    for engine in (None, "duckdb", "polars", "pandas"):
        got, _ = quiet(aggregate_survey, str(tmp_path / "*.parquet"), ["state", "year"],
                       "bmi", design, engine=engine)
        assert_same(got, ref)


def test_yearly_statistics_add_up_to_the_whole():
    design = TAYLOR["strata-psu"]
    args = (["state", "year"], ["smoke", "bmi"], design)
    parts = [aggregate_survey(pl.from_pandas(p).lazy(), *args, return_stats=True)
             for _, p in MICRO.groupby("year")]
    combined = parts[0] + parts[1] + parts[2]
    ref, _ = quiet(aggregate_survey, MICRO, *args)
    got, _ = quiet(aggregate_survey, combined, *args)
    assert_same(got, ref)
    # the lonely-PSU rule is chosen when finishing; other arguments must match
    quiet(aggregate_survey, combined, *args, lonely_psu="adjust")
    with pytest.raises(ValueError, match="same arguments"):
        aggregate_survey(combined, ["state"], ["smoke", "bmi"], design)
    with pytest.raises(ValueError, match="another SurveyDesign"):
        aggregate_survey(combined, *args[:2], SurveyDesign(weights="w", psu="psu"))
    stats = survey_mean(MICRO, "inc", design, by="state", return_stats=True)
    assert stats.engine == "pandas" and stats.layout == "psu"
    assert len(stats.table) == MICRO.groupby(["state", "stratum", "psu"]).ngroups
    assert_same(survey_total(stats, "inc", design, by="state"),
                survey_total(MICRO, "inc", design, by="state"))


def test_invariances_and_input_unchanged():
    design = TAYLOR["strata-psu"]
    data = pl.from_pandas(MICRO)
    before = data.clone()
    a, _ = quiet(aggregate_survey, data, ["state", "year"], "inc", design)
    assert data.equals(before)
    shuffled = pl.from_pandas(MICRO.sample(frac=1, random_state=5))
    b, _ = quiet(aggregate_survey, shuffled, ["state", "year"], "inc", design)
    assert_same(b, a)
    scaled = pl.from_pandas(MICRO.assign(w=MICRO["w"] * 7.5))
    c, _ = quiet(aggregate_survey, scaled, ["state", "year"], "inc", design)
    for col in ("inc_mean", "inc_se", "cell_n_eff"):
        np.testing.assert_allclose(c[col], a[col], rtol=TOL)
    np.testing.assert_allclose(c["cell_sum_w"], 7.5 * a["cell_sum_w"], rtol=TOL)


def test_errors_say_why():
    design = TAYLOR["strata-psu"]
    bad = MICRO.assign(w=MICRO["w"].where(MICRO.index != 4, -1.0))
    with pytest.raises(ValueError, match="negative"):
        survey_mean(pl.from_pandas(bad), "inc", design)
    # bad weights are described by a second query, with the in-memory messages
    for value, message in ((np.nan, "contains 1 missing"), (np.inf, "infinite values")):
        bad = MICRO.assign(w=MICRO["w"].where(MICRO.index != 4, value))
        with pytest.raises(ValueError, match=message):
            survey_mean(bad, "inc", design)
        with pytest.raises(ValueError, match=message):
            aggregate_survey(duckdb.from_df(bad), ["state"], "inc", design)
    with pytest.raises(ValueError, match="more than one stratum"):
        survey_mean(pl.from_pandas(MICRO), "inc",
                    SurveyDesign(weights="w", strata="stratum", psu="psu_in"))
    with pytest.raises(ValueError, match="'nope' not found"):
        survey_mean(duckdb.from_df(MICRO), "nope", design)
    with pytest.raises(ValueError, match="does not match the input"):
        survey_mean(pl.from_pandas(MICRO), "inc", design, engine="duckdb")
    with pytest.raises(ValueError, match="engine must be one of"):
        survey_mean(MICRO, "inc", design, engine="spark")
    with pytest.raises(ValueError, match="aweight"):
        survey_mean(pl.from_pandas(MICRO), "inc", SurveyDesign(weights="w",
                                                               weight_type="aweight"))
    nulls = MICRO.assign(state=MICRO["state"].where(MICRO.index != 0, None))
    with pytest.raises(ValueError, match="by column 'state' contains 1 missing"):
        aggregate_survey(pl.from_pandas(nulls), ["state", "year"], "inc", design)
    with pytest.raises(TypeError, match="Parquet path"):
        survey_mean(object(), "inc", design)


def test_design_calibrated_in_memory_is_finished_on_an_engine():
    from diff_diff import calibrate

    df = MICRO.assign(one=1.0, inc=MICRO["inc"])
    pop = {"one": float(df["w"].sum()) * 1.1}
    out, cal = quiet(calibrate, df, TAYLOR["strata-psu"], pop)
    ref = survey_mean(out, "inc", cal)
    assert_same(survey_mean(pl.from_pandas(out), "inc", cal), ref)
    with pytest.raises(ValueError, match="return_stats=True is not available for a calibrated"):
        survey_mean(pl.from_pandas(out), "inc", cal, return_stats=True)


def test_import_does_not_load_the_engines():
    import subprocess
    import sys

    # (pandas itself may load pyarrow, so it is not in the list)
    code = ("import sys, diff_diff; print(sorted(m for m in ('narwhals', 'polars', 'duckdb')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_moments_table_centred_when_one_pass_sums_cancel():
    # each row its own PSU, a large common offset: the one-pass sums of squares lose about
    # log10((1e7)^2 / 1) = 14 digits; the centring pass gets the in-memory result back
    rng = np.random.default_rng(11)
    n = 600
    df = pd.DataFrame({"state": rng.choice(["A", "B", "C"], n), "year": rng.choice([1, 2], n),
                       "stratum": rng.integers(0, 4, n), "w": rng.uniform(1, 5, n),
                       "fw": rng.integers(1, 4, n).astype(float), "y": rng.normal(0, 1, n)})
    df["y"] += 1e7
    pweight = SurveyDesign(weights="w", strata="stratum")
    fweight = SurveyDesign(weights="fw", strata="stratum", weight_type="fweight")
    for design, data in ((pweight, duckdb.from_df(df)), (fweight, pl.from_pandas(df).lazy())):
        ref = survey_mean(df, "y", design, by="state")
        assert_same(survey_mean(data, "y", design, by="state"), ref)
        # statistics returned for combining keep their one-pass sums: digits lost
        stats = survey_mean(data, "y", design, by="state", return_stats=True)
        assert stats.source is None
        one_pass = survey_mean(stats, "y", design, by="state")
        assert np.max(np.abs(one_pass["se"] / ref["se"] - 1)) > 1e-4
    small = df.assign(y=df["y"] - 9e6)  # offset 1e6: the cells' means are well conditioned
    ref, _ = aggregate_survey(small, ["state", "year"], "y", pweight)
    got, _ = aggregate_survey(pa.Table.from_pandas(small, preserve_index=False),
                              ["state", "year"], "y", pweight)
    assert_same(got, ref)
