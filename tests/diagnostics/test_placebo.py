"""Placebo checks: each equals the DiD it describes, computed directly; permutations
respect survey strata; clear errors."""

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel

POST = [4, 5, 6]


@pytest.fixture(scope="module")
def panel():
    return example_panel().query("first_treat in (0, 4)").reset_index(drop=True)


def did(frame, treated, post, **fit):
    return dd.DifferenceInDifferences().fit(frame.assign(_d=treated, _p=post), "y", "_d", "_p",
                                            **fit)


def test_fake_timing_is_the_did_on_the_pre_periods(panel):
    res = dd.run_placebo_test(panel, "y", "treated", "time", unit="unit",
                              test_type="fake_timing", fake_treatment_period=2,
                              post_periods=POST)
    pre = panel[~panel["time"].isin(POST)]
    ref = did(pre, pre["treated"], (pre["time"] >= 2).astype(int))
    assert res.placebo_effect == pytest.approx(ref.att, abs=1e-13)
    assert res.se == pytest.approx(ref.se, abs=1e-13) and res.n_obs == len(pre)
    real = did(panel, panel["treated"], panel["time"].isin(POST).astype(int))
    assert res.original_effect == pytest.approx(real.att, abs=1e-13)
    assert not res.is_significant and "no placebo effect detected" in res.summary()


def test_fake_group_is_the_did_among_controls(panel):
    controls = np.sort(panel.loc[panel["treated"] == 0, "unit"].unique())
    fake = controls[::3]
    res = dd.placebo_group_test(panel, "y", "time", "unit", fake, post_periods=POST,
                                treatment="treated")
    sub = panel[panel["treated"] == 0]
    ref = did(sub, sub["unit"].isin(fake).astype(int), sub["time"].isin(POST).astype(int))
    assert res.placebo_effect == pytest.approx(ref.att, abs=1e-13)
    assert res.fake_group == list(fake)


def test_permutation_draws_are_dids_of_permuted_labels(panel):
    design = dd.SurveyDesign(weights="weight")
    res = dd.permutation_test(panel, "y", "treated", "time", "unit", post_periods=POST,
                              n_permutations=5, seed=3, survey_design=design)
    rng = np.random.default_rng(3)
    labels = panel.groupby("unit")["treated"].first()
    post = panel["time"].isin(POST).astype(int)
    for draw in res.permutation_distribution:
        permuted = pd.Series(rng.permutation(labels.to_numpy()), index=labels.index)
        ref = did(panel, panel["unit"].map(permuted), post, survey_design=design)
        assert draw == pytest.approx(ref.att, abs=1e-12)
    observed = did(panel, panel["treated"], post, survey_design=design).att
    assert res.placebo_effect == pytest.approx(observed, abs=1e-13)
    extreme = np.sum(np.abs(res.permutation_distribution) >= abs(observed))
    assert res.p_value == (1 + extreme) / 6


def test_permutations_stay_within_strata(panel):
    """With the treated group a stratum of its own, every permutation is the identity:
    all draws equal the observed effect and the p-value is 1."""
    data = panel.assign(block=panel["treated"])
    design = dd.SurveyDesign(weights="weight", strata="block")
    res = dd.permutation_test(data, "y", "treated", "time", "unit", post_periods=POST,
                              n_permutations=20, seed=0, survey_design=design)
    assert np.allclose(res.permutation_distribution, res.placebo_effect, rtol=0, atol=1e-12)
    assert res.p_value == 1.0


def test_permutation_with_covariates_refits(panel):
    res = dd.permutation_test(panel, "y", "treated", "time", "unit", post_periods=POST,
                              n_permutations=3, seed=1, covariates=["x1"])
    rng = np.random.default_rng(1)
    labels = panel.groupby("unit")["treated"].first()
    permuted = pd.Series(rng.permutation(labels.to_numpy()), index=labels.index)
    ref = did(panel, panel["unit"].map(permuted), panel["time"].isin(POST).astype(int),
              covariates=["x1"])
    assert res.permutation_distribution[0] == pytest.approx(ref.att, abs=1e-12)


def test_leave_one_out_effects_and_jackknife(panel):
    before = panel.copy()
    res = dd.leave_one_out_test(panel, "y", "treated", "time", "unit", post_periods=POST)
    pd.testing.assert_frame_equal(panel, before)
    treated = np.sort(panel.loc[panel["treated"] == 1, "unit"].unique())
    assert res.leave_one_out_effects.index.tolist() == treated.tolist()
    first = treated[0]
    sub = panel[panel["unit"] != first]
    ref = did(sub, sub["treated"], sub["time"].isin(POST).astype(int))
    assert res.leave_one_out_effects[first] == pytest.approx(ref.att, abs=1e-13)
    e = res.leave_one_out_effects.to_numpy()
    n = e.size
    assert res.se == pytest.approx(np.sqrt((n - 1) / n * ((e - e.mean()) ** 2).sum()), rel=1e-14)
    assert "Range of estimates" in res.summary()


def test_run_all_collects_results_and_errors(panel):
    out = dd.run_all_placebo_tests(panel, "y", "treated", "time", "unit", post_periods=POST,
                                   n_permutations=20, seed=0)
    assert set(out) == {"fake_timing_2", "fake_timing_3", "fake_group", "permutation",
                        "leave_one_out"}
    assert all(isinstance(v, dd.diagnostics.PlaceboTestResults) for v in out.values())
    one_treated = panel[(panel["treated"] == 0) | (panel["unit"] == panel.loc[
        panel["treated"] == 1, "unit"].min())]
    out = dd.run_all_placebo_tests(one_treated, "y", "treated", "time", "unit",
                                   post_periods=POST, n_permutations=5, seed=0)
    assert out["leave_one_out"] == {"error": "leave-one-out needs at least two treated units"}


def test_clear_errors(panel):
    with pytest.raises(ValueError, match="test_type must be one of"):
        dd.run_placebo_test(panel, "y", "treated", "time", test_type="fake")
    with pytest.raises(ValueError, match="post_periods= is required"):
        dd.run_placebo_test(panel, "y", "treated", "time", fake_treatment_period=2)
    with pytest.raises(ValueError, match="needs fake_treatment_period="):
        dd.run_placebo_test(panel, "y", "treated", "time", post_periods=POST)
    with pytest.raises(ValueError, match="is not a pre-treatment period"):
        dd.placebo_timing_test(panel, "y", "treated", "time", 5, post_periods=POST)
    with pytest.raises(ValueError, match="at least one earlier pre-period"):
        dd.placebo_timing_test(panel, "y", "treated", "time", 1, post_periods=POST)
    with pytest.raises(ValueError, match="needs unit="):
        dd.run_placebo_test(panel, "y", "treated", "time", test_type="permutation",
                            post_periods=POST)
    treated_unit = panel.loc[panel["treated"] == 1, "unit"].iloc[0]
    with pytest.raises(ValueError, match="are not control units"):
        dd.placebo_group_test(panel, "y", "time", "unit", [treated_unit], post_periods=POST,
                              treatment="treated")
    with pytest.raises(ValueError, match=r"post_periods \[9\] are not values"):
        dd.permutation_test(panel, "y", "treated", "time", "unit", post_periods=[9])
    with pytest.raises(ValueError, match=r"column\(s\) \['nope'\] not in the data"):
        dd.permutation_test(panel, "nope", "treated", "time", "unit", post_periods=POST)
