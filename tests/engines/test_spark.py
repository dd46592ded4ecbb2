"""A real PySpark session (local mode) runs the pushed-down survey statistics and gets the
in-memory results to 1e-10: aggregate_survey under a stratified cluster design,
survey_mean and survey_total with replicate weights, and rake(by=) with the
calibration-aware variance of the raked design.

Spark needs Java (17 or later) and the ``pyspark`` package (``pip install
'diff-diff[spark]'``). Without them these tests skip, unless ``DIFF_DIFF_REQUIRE_SPARK=1``
is set (``.ci/run`` sets it when Java is present), in which case a missing piece fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import numpy as np
import pytest

from diff_diff import aggregate_survey, survey_mean, survey_total

from .test_pushdown import MICRO, TAYLOR, assert_same, quiet, replicate_designs

# pyspark's own deprecation notices about pandas 3 are not ours to act on
pytestmark = pytest.mark.filterwarnings("ignore:::pyspark")

REQUIRED = os.environ.get("DIFF_DIFF_REQUIRE_SPARK") == "1"


def _require(ok: bool, why: str) -> None:
    if not ok:
        if REQUIRED:
            pytest.fail(f"DIFF_DIFF_REQUIRE_SPARK=1 but {why}")
        pytest.skip(why)


@pytest.fixture(scope="module")
def spark():
    _require(importlib.util.find_spec("pyspark") is not None,
             "pyspark is not installed (pip install 'diff-diff[spark]')")
    _require(shutil.which("java") is not None or "JAVA_HOME" in os.environ,
             "no Java runtime (PySpark needs Java 17 or later)")
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("diff-diff-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.session.timeZone", "UTC")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def to_spark(spark, df):
    with np.errstate(all="ignore"):
        return quiet(spark.createDataFrame, df)


def test_aggregate_survey_stratified_cluster_design(spark):
    design = TAYLOR["strata-psu"]
    args = (["state", "year"], ["smoke", "bmi"], design)
    ref, ref2 = quiet(aggregate_survey, MICRO, *args, covariates="age")
    got, got2 = quiet(aggregate_survey, to_spark(spark, MICRO), *args, covariates="age")
    assert_same(got, ref)
    assert got2 == ref2
    assert ref["bmi_se"].notna().all() and (ref["bmi_se"] > 0).all()


def test_survey_mean_and_total_with_replicate_weights(spark):
    df, design = replicate_designs()["JKn"]
    assert len(design.replicate_weights) == df["psu"].nunique()  # JKn: one per PSU
    sdf = to_spark(spark, df)
    for fn in (survey_mean, survey_total):
        ref = quiet(fn, df, ["smoke", "inc"], design, by="state", deff=True)
        got = quiet(fn, sdf, ["smoke", "inc"], design, by="state", deff=True)
        assert_same(got, ref)


def test_rake_by_cells_and_the_calibrated_design(spark):
    from diff_diff import rake

    from .test_calibration_pushdown import BY, DF, RAKE, TAYLOR, same

    ref, rdes = quiet(rake, DF, TAYLOR, RAKE, by=BY)
    out, des = quiet(rake, to_spark(spark, DF), TAYLOR, RAKE, by=BY)
    got = DF.merge(out.toPandas(), on=list(DF.columns), how="left")
    np.testing.assert_allclose(got["w_cal"], ref["w_cal"], rtol=1e-10)
    assert des.weights == "w_cal" and des.calibration.by == tuple(BY)
    # the calibrated Spark design end to end: calibration-aware Taylor variance
    a, _ = quiet(aggregate_survey, ref, BY, "y", rdes)
    b, _ = quiet(aggregate_survey, out, BY, "y", des)
    same(b, a, BY)
    same(quiet(survey_mean, out, "y", des, by="sex"), quiet(survey_mean, ref, "y", rdes, by="sex"))
