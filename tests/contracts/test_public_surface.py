"""The public surface clients call (Meta's balance.interop.diff_diff), pinned without balance."""

import dataclasses
import inspect

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd


def test_survey_design_field_names():
    names = [f.name for f in dataclasses.fields(dd.SurveyDesign)]
    assert names == [
        "weights", "strata", "psu", "fpc", "weight_type", "nest", "lonely_psu",
        "replicate_weights", "replicate_method", "fay_rho", "replicate_strata",
        "combined_weights", "replicate_scale", "replicate_rscales", "mse",
    ]
    # balance builds designs by keyword from these names
    dd.SurveyDesign(weights="w", strata="stratum", psu="psu", fpc=None, weight_type="pweight",
                    lonely_psu="adjust", nest=True)


def test_aggregate_survey_keywords_and_outputs():
    params = list(inspect.signature(dd.aggregate_survey).parameters)
    assert params == ["data", "by", "outcomes", "survey_design", "covariates", "min_n",
                      "lonely_psu", "second_stage_weights", "engine", "return_stats"]
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "state": np.repeat(["a", "b", "c"], 40), "year": np.tile([1, 2], 60),
        "stratum": np.repeat([1, 2, 3], 40), "psu": np.arange(120) // 5,
        "weight": rng.uniform(1, 2, 120), "y": rng.normal(size=120), "x": rng.normal(size=120),
    })
    panel, design = dd.aggregate_survey(
        data=df, by=["state", "year"], outcomes=["y"],
        survey_design=dd.SurveyDesign(weights="weight", strata="stratum", psu="psu"),
        covariates=["x"], min_n=2, second_stage_weights="pweight",
    )
    for col in ("y_mean", "y_se", "y_n", "y_precision", "x_mean", "y_weight"):
        assert col in panel.columns
    assert isinstance(design, dd.SurveyDesign)
    assert design.weights == "y_weight" and design.weights in panel.columns
    assert design.psu == "state"


def test_estimators_by_name_and_alias_accept_survey_design():
    for name in ("CallawaySantAnna", "CS", "ImputationDiD", "BJS", "HeterogeneousAdoptionDiD",
                 "HAD"):
        cls = getattr(dd, name)
        assert inspect.isclass(cls)
        assert "survey_design" in inspect.signature(cls.fit).parameters
        for kw in ("outcome", "unit", "time", "first_treat", "covariates"):
            assert kw in inspect.signature(cls.fit).parameters
    for name in ("SunAbraham", "SA", "TwoStageDiD", "StackedDiD", "Stacked", "WooldridgeDiD",
                 "ETWFE"):
        params = inspect.signature(getattr(dd, name).fit).parameters
        for kw in ("outcome", "unit", "time", "first_treat", "survey_design"):
            assert kw in params, (name, kw)
    for name in ("SyntheticDiD", "SDiD"):
        params = inspect.signature(getattr(dd, name).fit).parameters
        for kw in ("outcome", "treatment", "unit", "time", "post_periods", "survey_design"):
            assert kw in params, (name, kw)
    for name in ("DifferenceInDifferences", "DiD", "TwoWayFixedEffects", "TWFE",
                 "MultiPeriodDiD", "EventStudy"):
        cls = getattr(dd, name)
        params = inspect.signature(cls.fit).parameters
        for kw in ("outcome", "treatment", "time", "covariates", "survey_design"):
            assert kw in params, (name, kw)
    for name in ("CallawaySantAnna", "CS", "DifferenceInDifferences", "DiD", "TWFE",
                 "ImputationDiD", "BJS", "HeterogeneousAdoptionDiD", "HAD"):
        assert name in dd.__all__


def test_deprecated_3x_alias_warns_at_the_callers_line_and_is_not_exported():
    with pytest.warns(FutureWarning, match=r"diff_diff.Gardner is deprecated.*TwoStageDiD") as rec:
        cls = dd.Gardner
    assert cls is dd.TwoStageDiD
    assert rec[0].filename == __file__
    assert "Gardner" not in dd.__all__
    with pytest.raises(AttributeError, match="has no attribute 'Gardnr'"):
        dd.Gardnr


@pytest.mark.parametrize("alias", ["CS", "BJS"])
def test_results_provenance_read_only_headline_and_metadata(alias):
    df = dd.load_mpdta()
    df["w"] = 1.0 + (df["countyreal"] % 3)
    res = getattr(dd, alias)().fit(df, outcome="lemp", unit="countyreal", time="year",
                                   first_treat="first.treat",
                                   survey_design=dd.SurveyDesign(weights="w"))
    setattr(res, "_balance_adjustment", object())
    assert hasattr(res, "_balance_adjustment")
    for name in ("att", "se", "t_stat", "p_value", "conf_int"):
        with pytest.raises(AttributeError):
            setattr(res, name, 0.0)
    meta = res.survey_metadata
    for name in ("design_effect", "effective_n", "sum_weights"):
        assert np.isfinite(getattr(meta, name))


@pytest.mark.parametrize("alias", ["CS", "BJS"])
def test_pweight_only_guard_message(alias):
    df = dd.load_mpdta().assign(w=1.0)
    for weight_type in ("aweight", "fweight"):
        with pytest.raises(ValueError, match="pweight"):
            getattr(dd, alias)().fit(df, "lemp", "countyreal", "year", "first.treat",
                        survey_design=dd.SurveyDesign(weights="w", weight_type=weight_type))


def dose_panel():
    """Two periods, every unit dosed in the second (a heterogeneous adoption design)."""
    g = np.arange(1, 301)
    dose = np.modf(g * 0.6180339887498949)[0]
    df = pd.DataFrame({"unit": np.repeat(g, 2), "t": np.tile([1, 2], g.size),
                       "d": np.column_stack([0 * dose, dose]).ravel()})
    df["y"] = np.sin(df["unit"]) + 2.0 * df["d"] + np.cos(7.0 * df["unit"] * df["t"])
    df["w"] = 1.0 + df["unit"] % 3
    return df


def test_had_alias_headline_metadata_and_pweight_guard():
    df = dose_panel()
    res = dd.HAD().fit(df, outcome="y", dose="d", time="t", unit="unit",
                       survey_design=dd.SurveyDesign(weights="w"))
    setattr(res, "_balance_adjustment", object())
    for name in ("att", "se", "t_stat", "p_value", "conf_int"):
        with pytest.raises(AttributeError):
            setattr(res, name, 0.0)
    for name in ("design_effect", "effective_n", "sum_weights"):
        assert np.isfinite(getattr(res.survey_metadata, name))
    for weight_type in ("aweight", "fweight"):
        with pytest.raises(ValueError, match="pweight"):
            dd.HAD().fit(df, outcome="y", dose="d", time="t", unit="unit",
                         survey_design=dd.SurveyDesign(weights="w", weight_type=weight_type))
