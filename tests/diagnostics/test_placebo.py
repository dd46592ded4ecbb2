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
    """Every unit (treated and control) is left out in turn; JK1 over all of them."""
    before = panel.copy()
    res = dd.leave_one_out_test(panel, "y", "treated", "time", "unit", post_periods=POST)
    pd.testing.assert_frame_equal(panel, before)
    units = np.sort(panel["unit"].unique())
    assert res.leave_one_out_effects.index.tolist() == units.tolist()
    treated = np.sort(panel.loc[panel["treated"] == 1, "unit"].unique())
    control = np.sort(panel.loc[panel["treated"] == 0, "unit"].unique())
    for left_out in (treated[0], control[0]):
        sub = panel[panel["unit"] != left_out]
        ref = did(sub, sub["treated"], sub["time"].isin(POST).astype(int))
        assert res.leave_one_out_effects[left_out] == pytest.approx(ref.att, abs=1e-13)
    e = res.leave_one_out_effects.to_numpy()
    n = e.size
    assert n == units.size
    assert res.se == pytest.approx(np.sqrt((n - 1) / n * ((e - e.mean()) ** 2).sum()), rel=1e-12)
    assert res.placebo_effect == pytest.approx(e.mean(), rel=1e-14)
    text = res.summary()
    assert "Range of estimates" in text and "np.int64" not in text
    low, high = res.leave_one_out_effects.idxmin(), res.leave_one_out_effects.idxmax()
    assert f"(unit {low} .. {high} left out)" in text


def test_leave_one_out_jackknife_se_is_calibrated():
    """Null DGP with 40 + 40 units and two periods: the jackknife SE matches the true
    sd of the DiD (sqrt(2 (1/40 + 1/40)) = 0.316); dropping only treated units gave
    about 0.22."""
    rng = np.random.default_rng(0)
    n, ses = 80, []
    tr = np.r_[np.ones(40), np.zeros(40)].astype(int)
    for _ in range(40):
        a = rng.normal(size=n)
        df = pd.DataFrame({"unit": np.r_[np.arange(n), np.arange(n)],
                           "time": np.r_[np.ones(n), 2 * np.ones(n)].astype(int),
                           "y": np.r_[a + rng.normal(size=n), a + rng.normal(size=n)],
                           "treated": np.r_[tr, tr]})
        ses.append(dd.leave_one_out_test(df, "y", "treated", "time", "unit",
                                         post_periods=[2]).se)
    assert np.mean(ses) == pytest.approx(np.sqrt(2 * (1 / 40 + 1 / 40)), rel=0.08)


def test_leave_one_out_jackknifes_psus_within_strata(panel):
    """With a PSU design: JKn over PSUs, each replicate the weighted DiD without the PSU
    and the other PSUs of its stratum reweighted by n_h / (n_h - 1)."""
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    res = dd.leave_one_out_test(panel, "y", "treated", "time", "unit", post_periods=POST,
                                survey_design=design)
    assert res.jackknife_groups == "psu"
    assert res.leave_one_out_effects.size == panel["unit"].nunique()
    psus = panel.groupby("psu")["stratum"].first()
    assert res.jackknife_effects.index.tolist() == psus.index.tolist()
    post = panel["time"].isin(POST).astype(int)
    weights_only = dd.SurveyDesign(weights="w")
    reps, var = {}, 0.0
    for h, members in psus.groupby(psus):
        n_h = members.size
        for g in members.index:
            sub = panel[panel["psu"] != g]
            w = sub["weight"] * np.where(sub["stratum"] == h, n_h / (n_h - 1), 1.0)
            reps[g] = did(sub.assign(w=w), sub["treated"], post[sub.index],
                          survey_design=weights_only).att
        r = np.array([reps[g] for g in members.index])
        var += (n_h - 1) / n_h * ((r - r.mean()) ** 2).sum()
    got = res.jackknife_effects
    for g in psus.index[:: max(1, psus.size // 6)]:
        assert got[g] == pytest.approx(reps[g], abs=1e-12)
    assert res.se == pytest.approx(np.sqrt(var), rel=1e-10)
    assert "jackknife over" in res.summary()


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


def test_fake_timing_uses_only_periods_before_the_first_post_period(panel):
    """post_periods=[4]: periods 5 and 6 are neither pre nor a valid fake date."""
    with pytest.raises(ValueError, match=r"5 is not a pre-treatment period .*first post "
                                         r"period 4 are \[1, 2, 3\]"):
        dd.placebo_timing_test(panel, "y", "treated", "time", 5, post_periods=[4])
    with pytest.warns(UserWarning, match=r"left out the periods \[5, 6\]"):
        res = dd.placebo_timing_test(panel, "y", "treated", "time", 3, post_periods=[4])
    pre = panel[panel["time"] < 4]
    ref = did(pre, pre["treated"], (pre["time"] >= 3).astype(int))
    assert res.placebo_effect == pytest.approx(ref.att, abs=1e-13) and res.n_obs == len(pre)
    # the real DiD reported next to it: periods 1-3 against 4 (5 and 6 left out, not "pre")
    window = panel[panel["time"] <= 4]
    real = did(window, window["treated"], (window["time"] == 4).astype(int))
    assert res.original_effect == pytest.approx(real.att, abs=1e-13)
    with pytest.warns(UserWarning, match="left out"):
        out = dd.run_all_placebo_tests(panel, "y", "treated", "time", "unit",
                                       post_periods=[4], n_permutations=5, seed=0)
    assert sorted(k for k in out if k.startswith("fake_timing")) == ["fake_timing_2",
                                                                     "fake_timing_3"]
    with pytest.warns(UserWarning, match="left out"):
        out = dd.run_all_placebo_tests(panel, "y", "treated", "time", "unit",
                                       post_periods=[4], pre_periods=[1, 3, 5, 6],
                                       n_permutations=5, seed=0)
    assert sorted(k for k in out if k.startswith("fake_timing")) == ["fake_timing_3"]


@pytest.fixture(scope="module")
def psu_panel():
    cfg = dd.SurveyPowerConfig(n_strata=2, psu_per_stratum=5)
    data, _ = dd.diagnostics.simulate_panel(60, 4, 0.0, 0.5, 3, 1.0, 0, cfg)
    return data


def test_permutation_permutes_psu_labels_within_strata(psu_panel):
    data = psu_panel
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    res = dd.permutation_test(data, "y", "treated", "time", "unit", post_periods=[3, 4],
                              n_permutations=6, seed=5, survey_design=design)
    rng = np.random.default_rng(5)
    by_psu = data.groupby("psu")[["treated", "stratum"]].first()
    post = data["time"].isin([3, 4]).astype(int)
    for draw in res.permutation_distribution:
        labels = by_psu["treated"].copy()
        for h in sorted(by_psu["stratum"].unique()):
            at = by_psu.index[by_psu["stratum"] == h]
            labels[at] = rng.permutation(by_psu.loc[at, "treated"].to_numpy())
        ref = did(data, data["psu"].map(labels), post, survey_design=design)
        assert draw == pytest.approx(ref.att, abs=1e-12)
    assert res.n_permutations == 6


def test_permutation_and_cluster_need_treatment_constant_within_clusters(psu_panel, panel):
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    with pytest.raises(ValueError, match="'treated' varies within 'psu' clusters; permutation "
                                         "needs the treatment assigned to whole 'psu'"):
        dd.permutation_test(panel, "y", "treated", "time", "unit", post_periods=POST,
                            n_permutations=3, seed=0, survey_design=design)
    with pytest.raises(ValueError, match="varies within 'psu' clusters"):
        dd.permutation_test(panel, "y", "treated", "time", "unit", post_periods=POST,
                            n_permutations=3, seed=0, cluster="psu")
    # cluster= alone (no survey design) permutes whole clusters too
    res = dd.permutation_test(psu_panel, "y", "treated", "time", "unit", post_periods=[3, 4],
                              n_permutations=4, seed=2, cluster="psu")
    rng = np.random.default_rng(2)
    labels = psu_panel.groupby("psu")["treated"].first()
    post = psu_panel["time"].isin([3, 4]).astype(int)
    permuted = pd.Series(rng.permutation(labels.to_numpy()), index=labels.index)
    ref = did(psu_panel, psu_panel["psu"].map(permuted), post)
    assert res.permutation_distribution[0] == pytest.approx(ref.att, abs=1e-12)




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
