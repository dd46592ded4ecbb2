"""SurveyDesign.resolve: data validation and the arrays it returns."""

import warnings

import numpy as np
import pandas as pd
import pytest

from diff_diff import SurveyDesign


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            "w": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0],
            "st": ["a", "a", "a", "a", "b", "b", "b", "b"],
            "p": [1, 1, 2, 2, 3, 3, 4, 4],
            "p_nest": [1, 1, 2, 2, 1, 1, 2, 2],
            "N": [10.0, 10.0, 10.0, 10.0, 4.0, 4.0, 4.0, 4.0],
            "frac": [0.2, 0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.5],
            "r1": [0.0, 0.0, 4.0, 6.0, 1.0, 2.0, 3.0, 4.0],
            "r2": [2.0, 3.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0],
        }
    )


def _raises(design, data, *fragments, exc=ValueError):
    with pytest.raises(exc) as err:
        design.resolve(data)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


@pytest.mark.parametrize(
    "kwargs, column",
    [
        ({"weights": "nope"}, "nope"),
        ({"strata": "nope"}, "nope"),
        ({"psu": "nope"}, "nope"),
        ({"fpc": "nope"}, "nope"),
        ({"weights": "w", "replicate_weights": ["r1", "nope"], "replicate_method": "JK1"}, "nope"),
    ],
)
def test_missing_column(frame, kwargs, column):
    _raises(SurveyDesign(**kwargs), frame, column, "not found")


@pytest.mark.parametrize(
    "value, fragment",
    [(np.nan, "missing"), (np.inf, "infinite"), (-1.0, "negative")],
)
def test_bad_weight_values(frame, value, fragment):
    frame.loc[3, "w"] = value
    _raises(SurveyDesign(weights="w"), frame, "'w'", fragment)


def test_all_zero_weights(frame):
    frame["w"] = 0.0
    _raises(SurveyDesign(weights="w"), frame, "'w'", "zero")


def test_non_numeric_weights(frame):
    frame["w"] = frame["w"].astype(str)
    _raises(SurveyDesign(weights="w"), frame, "'w'", "numeric")


def test_fractional_fweights(frame):
    frame.loc[0, "w"] = 1.5
    _raises(SurveyDesign(weights="w", weight_type="fweight"), frame, "'w'", "whole", "1.5")


@pytest.mark.parametrize("field, column", [("strata", "st"), ("psu", "p")])
def test_missing_labels(frame, field, column):
    frame[column] = frame[column].astype(object)
    frame.loc[2, column] = None
    _raises(SurveyDesign(**{field: column}), frame, column, "missing")


def test_psu_shared_across_strata_needs_nest(frame):
    _raises(SurveyDesign(strata="st", psu="p_nest"), frame, "'p_nest'", "nest=True", "1")
    design = SurveyDesign(strata="st", psu="p_nest", nest=True).resolve(frame)
    assert design.n_psu == 4
    assert design.df == 2.0


def test_fpc_must_be_constant_within_stratum(frame):
    frame.loc[0, "N"] = 11.0
    _raises(SurveyDesign(strata="st", psu="p", fpc="N"), frame, "'N'", "constant", "'a'")


def test_fpc_below_sampled_psus(frame):
    frame["N"] = 1.5
    _raises(SurveyDesign(strata="st", psu="p", fpc="N"), frame, "'N'", "smaller", "2 sampled")


def test_fpc_mixed_counts_and_fractions(frame):
    frame.loc[frame["st"] == "b", "N"] = 0.5
    _raises(SurveyDesign(strata="st", psu="p", fpc="N"), frame, "'N'", "mixes")


def test_fpc_negative_or_missing(frame):
    frame.loc[0:3, "N"] = -2.0
    _raises(SurveyDesign(strata="st", psu="p", fpc="N"), frame, "'N'", "negative")
    frame.loc[0:3, "N"] = np.nan
    _raises(SurveyDesign(strata="st", psu="p", fpc="N"), frame, "'N'", "missing")


def test_fpc_counts_and_fractions_agree(frame):
    frame["N2"] = frame["st"].map({"a": 10.0, "b": 4.0})
    frame["f2"] = frame["st"].map({"a": 2 / 10, "b": 2 / 4})
    by_count = SurveyDesign(strata="st", psu="p", fpc="N2").resolve(frame)
    by_frac = SurveyDesign(strata="st", psu="p", fpc="f2").resolve(frame)
    np.testing.assert_allclose(by_count.stratum_fpc, [0.8, 0.5])
    np.testing.assert_allclose(by_frac.stratum_fpc, by_count.stratum_fpc)


def test_fewer_than_two_replicates(frame):
    design = SurveyDesign(weights="w", replicate_weights=["r1"], replicate_method="JK1")
    _raises(design, frame, "at least 2", "r1")


def test_positive_replicate_where_full_weight_zero(frame):
    frame.loc[0, "w"] = 0.0
    frame.loc[0, "r1"] = 3.0
    design = SurveyDesign(weights="w", replicate_weights=["r1", "r2"], replicate_method="JK1")
    _raises(design, frame, "'r1'", "full-sample weight", "'w'")
    # as perturbation factors the same values are fine
    SurveyDesign(weights="w", replicate_weights=["r1", "r2"], replicate_method="JK1",
                 combined_weights=False).resolve(frame)


def test_bad_replicate_values(frame):
    frame.loc[1, "r2"] = np.nan
    design = SurveyDesign(weights="w", replicate_weights=["r1", "r2"], replicate_method="JK1")
    _raises(design, frame, "'r2'", "missing")


def test_not_a_frame_and_empty():
    with pytest.raises(TypeError, match="DataFrame"):
        SurveyDesign().resolve({"w": [1.0]})
    with pytest.raises(ValueError, match="no rows"):
        SurveyDesign().resolve(pd.DataFrame({"w": []}))


def test_pweights_rescaled_to_mean_one_silently(frame):
    before = frame.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        design = SurveyDesign(weights="w", strata="st", psu="p").resolve(frame)
    np.testing.assert_allclose(design.weights.mean(), 1.0)
    np.testing.assert_allclose(design.raw_weights, frame["w"])
    np.testing.assert_allclose(design.weights * frame["w"].sum() / len(frame), frame["w"])
    pd.testing.assert_frame_equal(frame, before)


def test_fweights_and_no_weights_keep_scale(frame):
    design = SurveyDesign(weights="w", weight_type="fweight").resolve(frame)
    np.testing.assert_allclose(design.weights, frame["w"])
    assert design.df == frame["w"].sum() - 1  # each row stands for w observations
    unweighted = SurveyDesign().resolve(frame)
    np.testing.assert_allclose(unweighted.weights, 1.0)
    assert unweighted.n_psu == 8 and unweighted.df == 7.0


def test_structure_arrays(frame):
    design = SurveyDesign(weights="w", strata="st", psu="p", fpc="N").resolve(frame)
    assert design.n_obs == 8 and design.n_strata == 2 and design.n_psu == 4
    np.testing.assert_array_equal(design.stratum_n_psu, [2, 2])
    np.testing.assert_array_equal(design.psu_stratum, [0, 0, 1, 1])
    np.testing.assert_array_equal(design.strata, [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_allclose(design.stratum_fpc, [1 - 2 / 10, 1 - 2 / 4])
    assert design.df == 2.0


def test_replicate_scaling_defaults(frame):
    reps = ["r1", "r2"]
    cases = {
        "BRR": 1 / 2,
        "SDR": 4 / 2,
        "JK1": 1 / 2,
        "bootstrap": 1 / 1,
    }
    for method, scale in cases.items():
        spec = SurveyDesign(weights="w", replicate_weights=reps, replicate_method=method,
                            combined_weights=False).resolve(frame).replicate
        assert spec.scale == pytest.approx(scale)
        np.testing.assert_allclose(spec.rscales, 1.0)
    fay = SurveyDesign(weights="w", replicate_weights=reps, replicate_method="Fay",
                       fay_rho=0.5, combined_weights=False).resolve(frame).replicate
    assert fay.scale == pytest.approx(1 / (2 * 0.25))
    frame["r3"] = frame["r1"]
    jkn = SurveyDesign(weights="w", replicate_weights=["r1", "r2", "r3"], replicate_method="JKn",
                       replicate_strata=[7, 7, 9], combined_weights=False).resolve(frame).replicate
    assert jkn.scale == 1.0
    np.testing.assert_allclose(jkn.rscales, [0.5, 0.5, 0.0])


def test_replicate_weights_share_the_normalization(frame):
    combined = SurveyDesign(weights="w", replicate_weights=["r1", "r2"],
                            replicate_method="JK1").resolve(frame)
    c = len(frame) / frame["w"].sum()
    np.testing.assert_allclose(combined.replicate.weights, frame[["r1", "r2"]].to_numpy() * c)
    factors = SurveyDesign(weights="w", replicate_weights=["r1", "r2"], replicate_method="JK1",
                           combined_weights=False).resolve(frame)
    np.testing.assert_allclose(
        factors.replicate.weights, frame[["r1", "r2"]].to_numpy() * (frame["w"].to_numpy() * c)[:, None]
    )


def test_replicate_df_is_rank_minus_one(frame):
    frame["r3"] = frame["r1"] + frame["r2"]  # linearly dependent
    design = SurveyDesign(weights="w", replicate_weights=["r1", "r2", "r3"],
                          replicate_method="JK1").resolve(frame)
    assert design.df == 1.0


def test_take_keeps_the_full_design_structure(frame):
    design = SurveyDesign(weights="w", strata="st", psu="p", fpc="N").resolve(frame)
    sub = design.take(np.array([0, 2, 4]))
    assert sub.n_obs == 3 and sub.n_psu == 4
    np.testing.assert_array_equal(sub.stratum_n_psu, design.stratum_n_psu)
    assert sub.df == 3 - 2


def test_with_clusters(frame):
    base = SurveyDesign(weights="w").resolve(frame)
    clustered = base.with_clusters(frame["p"].to_numpy())
    assert clustered.n_psu == 4 and clustered.df == 3.0
    stratified = SurveyDesign(weights="w", strata="st").resolve(frame)
    with pytest.raises(ValueError, match="more than one stratum"):
        stratified.with_clusters(frame["p_nest"].to_numpy())
    with pytest.raises(ValueError, match="names PSUs or replicate"):
        SurveyDesign(psu="p").resolve(frame).with_clusters(frame["p"].to_numpy())
    with pytest.raises(ValueError, match="one label per row"):
        base.with_clusters(np.arange(3))


def test_check_survey_design_refuses_unsupported_kinds_with_one_message():
    from diff_diff.survey.units import check_survey_design

    with pytest.raises(TypeError, match="must be a SurveyDesign"):
        check_survey_design({"weights": "w"}, "X")
    with pytest.raises(ValueError, match=r"X survey support requires weight_type='pweight' "
                                         r"\(probability weights\), got 'aweight'"):
        check_survey_design(SurveyDesign(weights="w", weight_type="aweight"), "X")
    check_survey_design(SurveyDesign(weights="w", weight_type="fweight"), "X",
                        ("pweight", "fweight"))
    rep = SurveyDesign(weights="w", replicate_weights=["r1", "r2"], replicate_method="JK1")
    check_survey_design(rep, "X")
    with pytest.raises(ValueError, match="X does not support replicate-weight designs"):
        check_survey_design(rep, "X", replicates=False)


def test_integer_cluster_labels_far_apart_are_coded_without_a_huge_table():
    from diff_diff.survey.resolved import trivial_design

    design = trivial_design(4).with_clusters(np.array([0, 10**12, 0, 10**12]))
    assert design.n_psu == 2 and list(design.psu) == [0, 1, 0, 1]
    dense = trivial_design(4).with_clusters(np.array([1, 0, 1, 0]))
    assert list(dense.psu) == [1, 0, 1, 0]
