"""subpopulation(), survey_mean/survey_total behaviour, SurveyMetadata."""

import numpy as np
import pandas as pd
import pytest

from diff_diff import SurveyDesign, SurveyMetadata, survey_mean, survey_total


@pytest.fixture
def frame():
    rng = np.random.default_rng(3)
    n = 60
    return pd.DataFrame(
        {
            "y": rng.normal(10, 2, n),
            "smoker": rng.random(n) < 0.3,
            "w": rng.uniform(1, 5, n),
            "st": np.repeat([1, 2, 3], 20),
            "p": np.repeat(np.arange(12), 5),
            "dom": rng.choice(["x", "y"], n),
        }
    )


DESIGN = SurveyDesign(weights="w", strata="st", psu="p")


@pytest.mark.parametrize(
    "mask_of",
    [
        lambda df: (df["dom"] == "x").to_numpy(),
        lambda df: df["dom"] == "x",
        lambda df: (df["dom"] == "x").astype(int).to_numpy(),
        lambda df: (lambda d: d["dom"] == "x"),
    ],
)
def test_subpopulation_equals_domain_estimate(frame, mask_of):
    before = frame.copy()
    sub_design, sub_data = DESIGN.subpopulation(frame, mask_of(frame))
    pd.testing.assert_frame_equal(frame, before)
    assert sub_design.weights == "_subpop_weight" and sub_design.strata == "st"
    got = survey_mean(sub_data, "y", sub_design)
    ref = survey_mean(frame, "y", DESIGN, by="dom")
    ref = ref[ref["dom"] == "x"].iloc[0]
    np.testing.assert_allclose(got["estimate"].iloc[0], ref["estimate"], rtol=1e-12)
    np.testing.assert_allclose(got["se"].iloc[0], ref["se"], rtol=1e-12)
    assert got["df"].iloc[0] == ref["df"]


def test_subpopulation_by_column_name_and_replicates(frame):
    frame["in_x"] = frame["dom"] == "x"
    frame["r1"] = frame["w"] * 1.1
    frame["r2"] = frame["w"] * 0.9
    design = SurveyDesign(weights="w", replicate_weights=["r1", "r2"], replicate_method="BRR")
    sub_design, sub_data = design.subpopulation(frame, "in_x")
    assert (sub_data.loc[~frame["in_x"], ["r1_subpop", "r2_subpop", "_subpop_weight"]] == 0).all().all()
    assert sub_design.replicate_weights == ["r1_subpop", "r2_subpop"]


@pytest.mark.parametrize(
    "mask, fragment",
    [
        (np.zeros(60, bool), "excludes every row"),
        (np.ones(5, bool), "one value per row"),
        (np.array(["a"] * 60), "boolean"),
        (np.full(60, 2), "only 0 and 1"),
        (pd.Series([True] * 59 + [None]), "missing"),
        ("nope", "not found"),
    ],
)
def test_subpopulation_rejects_bad_masks(frame, mask, fragment):
    with pytest.raises(ValueError, match=fragment):
        DESIGN.subpopulation(frame, mask)


def test_survey_mean_bool_variable_and_columns(frame):
    out = survey_mean(frame, ["y", "smoker"], DESIGN, by="dom", deff=True)
    assert list(out.columns) == [
        "dom", "variable", "estimate", "se", "df", "conf_low", "conf_high", "n", "deff"
    ]
    assert len(out) == 4
    share = out[(out["dom"] == "x") & (out["variable"] == "smoker")]["estimate"].iloc[0]
    x = frame[frame["dom"] == "x"]
    assert share == pytest.approx(np.average(x["smoker"], weights=x["w"]))
    assert (out["conf_low"] < out["estimate"]).all() and (out["estimate"] < out["conf_high"]).all()


def test_survey_total_uses_raw_weights(frame):
    out = survey_total(frame, "y", DESIGN)
    assert out["estimate"].iloc[0] == pytest.approx((frame["w"] * frame["y"]).sum())


def test_scale_invariance_of_mean_and_total_scaling(frame):
    scaled = frame.assign(w=frame["w"] * 37.5)
    a = survey_mean(frame, "y", DESIGN, by="dom")
    b = survey_mean(scaled, "y", DESIGN, by="dom")
    np.testing.assert_allclose(a[["estimate", "se"]], b[["estimate", "se"]], rtol=1e-12)
    ta = survey_total(frame, "y", DESIGN)
    tb = survey_total(scaled, "y", DESIGN)
    np.testing.assert_allclose(tb[["estimate", "se"]], ta[["estimate", "se"]] * 37.5, rtol=1e-12)


def test_descriptive_errors(frame):
    with pytest.raises(ValueError, match="not found"):
        survey_mean(frame, "nope", DESIGN)
    with pytest.raises(ValueError, match="not found"):
        survey_mean(frame, "y", DESIGN, by="nope")
    with pytest.raises(TypeError, match="SurveyDesign"):
        survey_mean(frame, "y", {"weights": "w"})
    with pytest.raises(ValueError, match="numeric"):
        survey_mean(frame, "dom", DESIGN)
    with pytest.raises(ValueError, match="pweight"):
        survey_mean(frame, "y", SurveyDesign(weights="w", weight_type="aweight"))
    frame.loc[3, "y"] = np.nan
    with pytest.raises(ValueError, match="na_rm=True"):
        survey_mean(frame, "y", DESIGN)
    out = survey_mean(frame, "y", DESIGN, na_rm=True)
    assert out["n"].iloc[0] == 59
    frame["dom"] = frame["dom"].astype(object)
    frame.loc[5, "dom"] = None
    with pytest.raises(ValueError, match="missing"):
        survey_mean(frame, "y", DESIGN, by="dom", na_rm=True)


def test_unidentified_variance_is_nan_with_nan_inference():
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0], "w": [1.0, 1.0, 1.0], "st": [1, 2, 3], "p": [1, 2, 3]})
    out = survey_mean(df, "y", SurveyDesign(weights="w", strata="st", psu="p"))
    row = out.iloc[0]
    assert row["estimate"] == pytest.approx(2.0)
    assert np.isnan(row["se"]) and np.isnan(row["conf_low"]) and np.isnan(row["conf_high"])
    certain = survey_mean(df, "y", SurveyDesign(weights="w", strata="st", psu="p",
                                                lonely_psu="certainty"))
    assert certain["se"].iloc[0] == 0.0 and np.isnan(certain["conf_low"].iloc[0])


def test_fweight_mean_equals_expanded_data():
    df = pd.DataFrame({"y": [1.0, 4.0, 2.0, 7.0], "f": [2, 1, 3, 1], "st": [1, 1, 2, 2]})
    expanded = df.loc[df.index.repeat(df["f"])].reset_index(drop=True)
    for strata in (None, "st"):
        fw = survey_mean(df, "y", SurveyDesign(weights="f", weight_type="fweight", strata=strata))
        ex = survey_mean(expanded, "y", SurveyDesign(strata=strata))
        np.testing.assert_allclose(fw[["estimate", "se", "df"]], ex[["estimate", "se", "df"]],
                                   rtol=1e-12)


def test_metadata_from_design(frame):
    design = SurveyDesign(weights="w", strata="st", psu="p").resolve(frame)
    meta = SurveyMetadata.from_design(design, variance_method="tsl")
    w = frame["w"].to_numpy()
    assert meta.sum_weights == pytest.approx(w.sum())
    assert meta.effective_n == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert meta.design_effect == pytest.approx(len(w) * (w**2).sum() / w.sum() ** 2)
    assert (meta.n_strata, meta.n_psu, meta.df_survey) == (3, 12, 9.0)
    assert meta.weight_range == (pytest.approx(w.min()), pytest.approx(w.max()))
    for value in (meta.effective_n, meta.design_effect, meta.sum_weights, meta.df_survey):
        assert np.isfinite(value)
    frame["r1"], frame["r2"] = frame["w"] * 1.2, frame["w"] * 0.8
    rep = SurveyDesign(weights="w", replicate_weights=["r1", "r2"],
                       replicate_method="BRR").resolve(frame)
    rep_meta = SurveyMetadata.from_design(rep)
    assert rep_meta.replicate_method == "BRR" and rep_meta.n_replicates == 2
    assert rep_meta.n_psu is None and np.isfinite(rep_meta.design_effect)
