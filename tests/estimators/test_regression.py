"""Regression DiD family: WLS core, absorbed effects, variance menu, survey."""

import warnings

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff import DifferenceInDifferences, MultiPeriodDiD, SurveyDesign, TwoWayFixedEffects
from diff_diff.linalg.wls import RankDeficientError, demean, wls


@pytest.fixture(scope="module")
def cross():
    rng = np.random.default_rng(1)
    n = 500
    df = pd.DataFrame({"treat": rng.integers(0, 2, n), "post": rng.integers(0, 2, n),
                       "x1": rng.normal(size=n), "w": rng.uniform(1, 4, n),
                       "cl": rng.integers(0, 25, n), "st": rng.integers(0, 5, n)})
    df["y"] = 1 + df.treat + 0.5 * df.post + 2 * df.treat * df.post + 0.3 * df.x1 + rng.normal(size=n)
    return df


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(2)
    n_units, n_t = 60, 6
    u = np.repeat(np.arange(n_units), n_t)
    t = np.tile(np.arange(2001, 2001 + n_t), n_units)
    treated = u < 30
    df = pd.DataFrame({"unit": u, "year": t, "treat": treated.astype(int),
                       "x1": rng.normal(size=u.size), "w": np.repeat(rng.uniform(1, 3, n_units), n_t)})
    df["D"] = (treated & (t >= 2004)).astype(int)
    df["y"] = (np.repeat(rng.normal(size=n_units), n_t) + 0.1 * (t - 2000) + 1.5 * df["D"]
               + 0.2 * df["x1"] + rng.normal(size=u.size))
    return df


def test_absorbed_equals_dummy_regression(panel):
    y = panel["y"].to_numpy()
    x = panel[["D", "x1"]].to_numpy(float)
    u = panel["unit"].to_numpy()
    t = panel["year"].to_numpy() - 2001
    w = panel["w"].to_numpy()
    absorbed = wls(y, x, ["D", "x1"], w, [u, t])
    dummies = np.column_stack([x, np.ones(len(y))] + [(u == j) * 1.0 for j in range(1, 60)]
                              + [(t == j) * 1.0 for j in range(1, 6)])
    full = wls(y, dummies, [f"c{j}" for j in range(dummies.shape[1])], w)
    np.testing.assert_allclose(absorbed.coef, full.coef[:2], rtol=1e-9)
    np.testing.assert_allclose(absorbed.resid, full.resid, atol=1e-9)
    assert absorbed.rank + absorbed.df_absorbed == full.rank
    # TWFE with absorbed effects: the CR1 SE of the dummy-variable regression (k counts dummies)
    from diff_diff.inference.regression import regression_variance

    res = TwoWayFixedEffects().fit(panel, "y", "D", "unit", "year", covariates=["x1"],
                                   survey_design=None)
    unweighted = wls(y, dummies, [f"c{j}" for j in range(dummies.shape[1])])
    dummy_var = regression_variance(unweighted, "cr1", cluster=u)
    assert res.att == pytest.approx(unweighted.coef[0], rel=1e-9)
    assert res.se == pytest.approx(np.sqrt(dummy_var.vcov[0, 0]), rel=1e-9)


def test_demean_alternating_projections_converge():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 30, 2000), rng.integers(0, 20, 2000)
    v = rng.normal(size=(2000, 2))
    w = rng.uniform(1, 2, 2000)
    out = demean(v, [a, b], w)
    for codes in (a, b):
        sums = np.bincount(codes, weights=w * out[:, 0])
        assert np.abs(sums).max() < 1e-8


def test_rank_deficiency_actions(cross):
    y = cross["y"].to_numpy()
    x = np.column_stack([np.ones(len(y)), cross["x1"], 2 * cross["x1"]])
    with pytest.warns(UserWarning, match="collinear"):
        fit = wls(y, x, ["one", "x1", "x1b"])
    assert np.isnan(fit.coef[2]) and fit.rank == 2
    with pytest.raises(RankDeficientError):
        wls(y, x, ["one", "x1", "x1b"], rank_deficient_action="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wls(y, x, ["one", "x1", "x1b"], rank_deficient_action="silent")


def test_variance_menu_relations(cross):
    fits = {v: DifferenceInDifferences(vcov_type=v).fit(cross, "y", "treat", "post")
            for v in ("classical", "hc1", "hc2", "hc3", "hc2_bm")}
    assert len({round(f.att, 12) for f in fits.values()}) == 1
    assert fits["hc2_bm"].se == pytest.approx(fits["hc2"].se, rel=1e-12)
    assert fits["hc3"].se > fits["hc2"].se
    assert fits["hc1"].df == len(cross) - 4
    cr1 = DifferenceInDifferences(vcov_type="cr1", cluster="cl").fit(cross, "y", "treat", "post")
    assert cr1.df == 24 and cr1.n_clusters == 25
    auto = DifferenceInDifferences(cluster="cl").fit(cross, "y", "treat", "post")
    assert auto.se == cr1.se
    with pytest.raises(ValueError, match="cluster"):
        DifferenceInDifferences(vcov_type="cr1").fit(cross, "y", "treat", "post")
    with pytest.raises(ValueError, match="ignores clustering"):
        DifferenceInDifferences(vcov_type="hc2", cluster="cl").fit(cross, "y", "treat", "post")


def test_survey_paths_and_errors(cross):
    design = SurveyDesign(weights="w", strata="st", psu="cl", nest=True)
    res = DifferenceInDifferences().fit(cross, "y", "treat", "post", survey_design=design)
    assert res.df == res.survey_metadata.df_survey
    with pytest.raises(ValueError, match="survey design"):
        DifferenceInDifferences(vcov_type="hc2_bm").fit(cross, "y", "treat", "post",
                                                        survey_design=design)
    with pytest.raises(ValueError, match="clustering"):
        DifferenceInDifferences(cluster="cl").fit(cross, "y", "treat", "post", survey_design=design)
    scaled = cross.assign(w=cross["w"] * 13.0)
    res2 = DifferenceInDifferences().fit(scaled, "y", "treat", "post", survey_design=design)
    assert res2.att == pytest.approx(res.att, rel=1e-12) and res2.se == pytest.approx(res.se, rel=1e-12)


def test_fweights_equal_expanded_rows(cross):
    small = cross.iloc[:80].assign(f=np.tile([1, 2, 3, 1], 20))
    expanded = small.loc[small.index.repeat(small["f"])]
    a = DifferenceInDifferences().fit(small, "y", "treat", "post",
                                      survey_design=SurveyDesign(weights="f", weight_type="fweight"))
    b = DifferenceInDifferences().fit(expanded, "y", "treat", "post")
    assert a.att == pytest.approx(b.att, rel=1e-12)
    assert a.se == pytest.approx(b.se, rel=1e-10)  # HC1 with n = sum of frequency weights
    assert a.df == b.df == len(expanded) - 4


def test_twfe_staggered_warning_and_clustering(panel):
    stag = panel.assign(D=((panel["unit"] < 30) & (panel["year"] >= 2004 + panel["unit"] % 2)).astype(int))
    with pytest.warns(UserWarning, match="staggered"):
        TwoWayFixedEffects().fit(stag, "y", "D", "unit", "year")
    res = TwoWayFixedEffects().fit(panel, "y", "D", "unit", "year")
    assert res.vcov_type == "cr1" and res.n_clusters == 60 and res.df == 59
    bm = TwoWayFixedEffects(vcov_type="hc2_bm").fit(panel, "y", "D", "unit", "year")
    assert bm.att == pytest.approx(res.att, rel=1e-9)
    via_post = TwoWayFixedEffects().fit(panel.assign(after=(panel["year"] >= 2004) * 1), "y",
                                        "treat", "unit", "year", post="after")
    assert via_post.att == pytest.approx(res.att, rel=1e-12)
    psu_design = SurveyDesign(weights="w", psu="unit")
    by_psu = TwoWayFixedEffects().fit(panel, "y", "D", "unit", "year", survey_design=psu_design)
    assert by_psu.n_clusters == 60
    with pytest.raises(ValueError, match="cluster= cannot be combined .* names PSUs"):
        TwoWayFixedEffects(cluster="unit").fit(panel, "y", "D", "unit", "year",
                                               survey_design=psu_design)


def test_multiperiod_reference_and_errors(panel):
    res = MultiPeriodDiD().fit(panel, "y", "treat", "year", post_periods=[2004, 2005, 2006])
    pe = res.period_effects
    assert res.reference_period == 2003
    assert pe.loc[pe["is_reference"], "estimate"].item() == 0.0
    post = pe[pe["post"]]
    assert res.avg_att == pytest.approx(post["estimate"].mean(), rel=1e-12)
    assert res.att == res.avg_att
    with pytest.raises(ValueError, match="post_periods"):
        MultiPeriodDiD().fit(panel, "y", "treat", "year")
    with pytest.raises(ValueError, match="reference_period"):
        MultiPeriodDiD().fit(panel, "y", "treat", "year", post_periods=[2004], reference_period=2004)
    with pytest.raises(ValueError, match="varies within"):
        MultiPeriodDiD().fit(panel, "y", "D", "year", reference_period=2003, unit="unit")
    assert dd.EventStudy is MultiPeriodDiD


def test_binary_checks_and_read_only(cross):
    with pytest.raises(ValueError, match="binary"):
        DifferenceInDifferences().fit(cross.assign(post=cross["post"] * 2), "y", "treat", "post")
    res = DifferenceInDifferences().fit(cross, "y", "treat", post="post")
    with pytest.raises(AttributeError):
        res.att = 0.0
    res._balance_adjustment = "provenance"
    table = res.to_dataframe()
    assert list(table.columns[:3]) == ["term", "estimate", "se"]
    assert "Difference-in-differences" in res.summary()


def test_wild_cluster_bootstrap_equals_explicit_refits(cross):
    from diff_diff.inference.bootstrap import draw_multipliers
    from diff_diff.inference.regression import regression_variance

    df = cross.assign(cl=cross["cl"] % 12)
    res = DifferenceInDifferences(cluster="cl", inference="wild_bootstrap", n_bootstrap=99,
                                  seed=5, bootstrap_weights="webb").fit(df, "y", "treat", "post")
    n = len(df)
    x = np.column_stack([np.ones(n), df.treat, df.post, df.treat * df.post])
    y = df["y"].to_numpy()
    codes = df["cl"].to_numpy()
    restricted = wls(y, x[:, :3], ["a", "b", "c"])
    v = draw_multipliers(np.random.default_rng(5), (99, 12), "webb")
    t_draws = []
    for b in range(99):
        star = wls(restricted.fitted + v[b][codes] * restricted.resid, x, ["a", "b", "c", "d"])
        var = regression_variance(star, "cr1", cluster=codes)
        t_draws.append(star.coef[3] / np.sqrt(var.vcov[3, 3]))
    np.testing.assert_allclose(res.wild_bootstrap["t_draws"], t_draws, rtol=1e-9)
    assert res.p_value == pytest.approx(np.mean(np.abs(t_draws) >= abs(res.att / res.se)))
    assert res.conf_int[0] < res.att < res.conf_int[1]
    assert res.inference_method == "wild_bootstrap"


def test_wild_bootstrap_needs_clusters_and_no_design(cross, panel):
    with pytest.raises(ValueError, match="cluster"):
        DifferenceInDifferences(inference="wild_bootstrap").fit(cross, "y", "treat", "post")
    with pytest.raises(ValueError, match="survey design"):
        DifferenceInDifferences(cluster="cl", inference="wild_bootstrap").fit(
            cross, "y", "treat", "post", survey_design=SurveyDesign(weights="w"))
    res = TwoWayFixedEffects(inference="wild_bootstrap", n_bootstrap=199, seed=1).fit(
        panel, "y", "D", "unit", "year")
    assert 0 <= res.p_value <= 1 and res.wild_bootstrap["n_clusters"] == 60
    mp = MultiPeriodDiD(cluster="unit", inference="wild_bootstrap", n_bootstrap=99, seed=1).fit(
        panel, "y", "treat", "year", post_periods=[2004, 2005, 2006])
    assert mp.avg_conf_int[0] < mp.avg_att < mp.avg_conf_int[1]
