"""The inference engine: TSL kernels, replicate modes, bootstrap, t inference."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from diff_diff import SurveyDesign
from diff_diff.inference import (
    bootstrap_p_value,
    bootstrap_se,
    cluster_variance,
    design_effects,
    design_variance,
    domain_tsl_variance,
    draw_multipliers,
    iid_variance,
    influence_from_scores,
    percentile_interval,
    replicate_vcov_from_estimates,
    sup_t_critical,
    t_inference,
    tsl_vcov,
)


def _survey_frame(seed=0, n=400, lonely=True):
    rng = np.random.default_rng(seed)
    strata = rng.integers(0, 6, n)
    psu = strata * 10 + rng.integers(0, 4, n)
    if lonely:
        psu[strata == 5] = 50  # a stratum with one PSU
    return pd.DataFrame(
        {
            "st": strata,
            "p": psu,
            "w": rng.uniform(0.5, 3.0, n),
            "N": np.where(strata == 0, 4, 40).astype(float),
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "d": rng.integers(0, 3, n),
        }
    )


def test_iid_and_cluster_formulas():
    rng = np.random.default_rng(1)
    psi = rng.normal(size=(50, 3))
    v = iid_variance(psi)
    dev = psi - psi.mean(0)
    np.testing.assert_allclose(v.vcov, 50 / 49 * dev.T @ dev)
    assert v.df == 49
    cluster = rng.integers(0, 7, 50)
    totals = np.vstack([psi[cluster == g].sum(0) for g in range(7)])
    tdev = totals - totals.mean(0)
    cv = cluster_variance(psi, cluster)
    np.testing.assert_allclose(cv.vcov, 7 / 6 * tdev.T @ tdev)
    assert cv.df == 6


def test_influence_from_scores_gives_the_sandwich():
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(80), rng.normal(size=80)])
    w = rng.uniform(1, 2, 80)
    y = X @ [1.0, 2.0] + rng.normal(size=80)
    bread = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(bread, X.T @ (w * y))
    scores = X * (w * (y - X @ beta))[:, None]
    psi = influence_from_scores(scores, np.linalg.inv(bread))
    meat = scores.T @ scores
    expected = 80 / 79 * np.linalg.inv(bread) @ meat @ np.linalg.inv(bread)
    np.testing.assert_allclose(iid_variance(psi).vcov, expected, rtol=1e-10)


@pytest.mark.parametrize("rule", ["remove", "certainty", "adjust", "average"])
@pytest.mark.parametrize("fpc", [None, "N"])
def test_domain_kernel_equals_zero_padded_full_kernel(rule, fpc):
    df = _survey_frame()
    design = SurveyDesign(weights="w", strata="st", psu="p", fpc=fpc, lonely_psu=rule).resolve(df)
    y = df[["y", "x"]].to_numpy()
    domain = df["d"].to_numpy()
    psi = design.weights[:, None] * y
    got = domain_tsl_variance(psi, domain, 3, design)
    for d in range(3):
        padded = np.where((domain == d)[:, None], psi, 0.0)
        full = tsl_vcov(padded, design)
        if rule == "average":  # the full kernel counts every stratum as present
            continue
        np.testing.assert_allclose(got[d], np.diag(full), rtol=1e-10)
    # whole sample as one domain: identical for every rule
    whole = domain_tsl_variance(psi, np.zeros(len(df), np.int64), 1, design)
    np.testing.assert_allclose(whole[0], np.diag(tsl_vcov(psi, design)), rtol=1e-10)


def test_lonely_rules_relations():
    df = _survey_frame()
    psi = df[["y"]].to_numpy() - df["y"].mean()
    v = {
        rule: tsl_vcov(psi, SurveyDesign(strata="st", psu="p", lonely_psu=rule).resolve(df))[0, 0]
        for rule in ("remove", "certainty", "adjust", "average")
    }
    assert v["remove"] == pytest.approx(v["certainty"])
    assert v["adjust"] > v["remove"]
    assert v["average"] == pytest.approx(v["remove"] * 6 / 5)


def test_census_strata_contribute_nothing():
    df = _survey_frame(lonely=False)
    df["N"] = df.groupby("st")["p"].transform("nunique").astype(float)  # every stratum a census
    design = SurveyDesign(strata="st", psu="p", fpc="N").resolve(df)
    np.testing.assert_allclose(tsl_vcov(df[["y"]].to_numpy(), design), 0.0)


def test_replicate_influence_mode_exact_for_totals_and_close_for_means():
    df = _survey_frame(lonely=False)
    rng = np.random.default_rng(5)
    reps = [f"r{j}" for j in range(20)]
    for r in reps:
        df[r] = df["w"] * rng.choice([0.0, 2.0], len(df))
    design = SurveyDesign(weights="w", replicate_weights=reps, replicate_method="BRR").resolve(df)
    y = df[["y", "x"]].to_numpy()
    w = design.weights
    total = w @ y
    by_if = design_variance(w[:, None] * y, design, estimate=total)
    by_refit = design_variance(None, design, estimate=total, refit=lambda rw: rw @ y)
    np.testing.assert_allclose(by_if.vcov, by_refit.vcov, rtol=1e-10)
    mean = total / w.sum()
    psi = w[:, None] * (y - mean) / w.sum()
    lin = design_variance(psi, design, estimate=mean)
    exact = design_variance(None, design, estimate=mean,
                            refit_batch=lambda rw: (rw.T @ y) / rw.sum(0)[:, None])
    np.testing.assert_allclose(lin.se, exact.se, rtol=0.1)
    assert lin.method == exact.method == "replicate" and exact.df == design.df


def test_failed_replicates_are_dropped_with_warning():
    thetas = np.array([[1.0], [2.0], [np.nan], [4.0]])
    with pytest.warns(UserWarning, match="1 of 4 replicates"):
        vcov, n_valid = replicate_vcov_from_estimates(thetas, np.array([2.0]), 1.0,
                                                      np.ones(4), mse=False)
    assert n_valid == 3
    np.testing.assert_allclose(vcov, [[np.sum((np.array([1, 2, 4]) - 7 / 3) ** 2)]])
    with pytest.warns(UserWarning):
        vcov, _ = replicate_vcov_from_estimates(np.array([[1.0], [np.nan]]), np.array([1.0]),
                                                1.0, np.ones(2), mse=True)
    assert np.isnan(vcov).all()


def test_refit_errors_become_dropped_replicates():
    df = _survey_frame(lonely=False)
    rng = np.random.default_rng(9)
    for r in ("r1", "r2", "r3"):
        df[r] = df["w"] * rng.uniform(0.5, 1.5, len(df))
    design = SurveyDesign(weights="w", replicate_weights=["r1", "r2", "r3"],
                          replicate_method="JK1").resolve(df)
    assert design.df == 2.0
    calls = []

    def refit(rw):
        calls.append(1)
        if len(calls) == 2:
            raise np.linalg.LinAlgError("singular")
        return np.array([rw.sum()])

    with pytest.warns(UserWarning, match="1 of 3"):
        v = design_variance(None, design, estimate=[1.0], refit=refit)
    assert v.n_valid_replicates == 2 and v.df == 1.0


def test_engine_argument_errors():
    df = _survey_frame()
    design = SurveyDesign(weights="w", strata="st", psu="p").resolve(df)
    with pytest.raises(ValueError, match="one row per design row"):
        design_variance(np.ones((3, 1)), design)
    with pytest.raises(ValueError, match="method must be one of"):
        design_variance(np.ones(len(df)), design, method="jackknife")
    with pytest.raises(ValueError, match="replicate_weights"):
        design_variance(np.ones(len(df)), design, method="replicate")
    with pytest.raises(TypeError, match="ResolvedDesign"):
        design_variance(np.ones(len(df)), SurveyDesign())
    df["r1"], df["r2"] = df["w"], df["w"]
    rep = SurveyDesign(weights="w", replicate_weights=["r1", "r2"],
                       replicate_method="JK1").resolve(df)
    with pytest.raises(ValueError, match="replicate-weight design"):
        design_variance(np.ones(len(df)), rep, method="bootstrap")
    with pytest.raises(ValueError, match="estimate"):
        design_variance(np.ones(len(df)), rep)


def test_t_inference_joint_nan_and_values():
    est = np.array([1.0, 2.0, 3.0, 4.0])
    se = np.array([0.5, 0.0, np.nan, 1.0])
    t, p, lo, hi = t_inference(est, se, df=10)
    assert t[0] == pytest.approx(2.0)
    assert p[0] == pytest.approx(2 * stats.t(10).sf(2.0))
    assert lo[0] == pytest.approx(1.0 - stats.t(10).ppf(0.975) * 0.5)
    for arr in (t, p, lo, hi):
        assert np.isnan(arr[1]) and np.isnan(arr[2])
    t, p, lo, hi = t_inference(est, se, df=0)
    assert np.isnan(np.vstack([t, p, lo, hi])).all()
    t, p, lo, hi = t_inference(1.0, 0.5, df=None)
    assert p == pytest.approx(2 * stats.norm.sf(2.0))
    with pytest.raises(ValueError, match="alpha"):
        t_inference(1.0, 1.0, 3, alpha=1.5)


@pytest.mark.parametrize("kind", ["rademacher", "mammen", "webb"])
def test_multiplier_moments(kind):
    v = draw_multipliers(np.random.default_rng(0), (400_000, 1), kind)
    assert abs(v.mean()) < 0.01 and abs(v.var() - 1.0) < 0.01
    if kind == "mammen":
        assert abs((v**3).mean() - 1.0) < 0.03


def test_bootstrap_matches_tsl_in_expectation_and_is_seeded():
    df = _survey_frame()
    for rule in ("remove", "adjust", "average"):
        design = SurveyDesign(weights="w", strata="st", psu="p", fpc="N",
                              lonely_psu=rule).resolve(df)
        psi = design.weights[:, None] * df[["y", "x"]].to_numpy() / len(df)
        tsl = design_variance(psi, design)
        boot = design_variance(psi, design, method="bootstrap", n_bootstrap=20_000, seed=11)
        np.testing.assert_allclose(boot.vcov, tsl.vcov, rtol=0.06, atol=0.03 * tsl.vcov[0, 0])
        assert boot.df == tsl.df and boot.draws.shape == (20_000, 2)
    a = design_variance(psi, design, method="bootstrap", n_bootstrap=50, seed=3, multiplier="webb")
    b = design_variance(psi, design, method="bootstrap", n_bootstrap=50, seed=3, multiplier="webb")
    np.testing.assert_array_equal(a.draws, b.draws)
    with pytest.raises(ValueError, match="multiplier"):
        design_variance(psi, design, method="bootstrap", multiplier="normal")


def test_bootstrap_summaries():
    rng = np.random.default_rng(4)
    draws = rng.normal(size=(5000, 3)) * [1.0, 2.0, 0.5]
    se = bootstrap_se(draws)
    np.testing.assert_allclose(se, [1.0, 2.0, 0.5], rtol=0.05)
    np.testing.assert_allclose(bootstrap_se(draws, "iqr"), se, rtol=0.08)
    lo, hi = percentile_interval(np.zeros(3), draws)
    np.testing.assert_allclose(hi, 1.96 * np.array([1.0, 2.0, 0.5]), rtol=0.08)
    crit = sup_t_critical(draws, se)
    assert 1.96 < crit < 3.0  # wider than pointwise, about the 3-dim max
    p = bootstrap_p_value(np.array([0.0, 10.0, 1.0]), draws)
    assert p[0] == 1.0 and p[1] == pytest.approx(1 / 5001)
    with pytest.raises(ValueError, match="sd"):
        bootstrap_se(draws, "mad")


def test_design_effects_one_without_clustering():
    rng = np.random.default_rng(8)
    psi = rng.normal(size=(100, 2))
    psi -= psi.mean(0)
    df = pd.DataFrame({"w": np.ones(100)})
    design = SurveyDesign(weights="w").resolve(df)
    v = design_variance(psi, design)
    np.testing.assert_allclose(design_effects(psi, design, v), 1.0)


def test_no_warnings_on_clean_paths():
    df = _survey_frame(lonely=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        design = SurveyDesign(weights="w", strata="st", psu="p", fpc="N").resolve(df)
        v = design_variance(df[["y"]].to_numpy(), design)
        v.inference(np.array([0.3]))


def test_design_variance_bootstrap_is_the_mean_square_of_the_draws_and_needs_draws():
    from diff_diff.survey import trivial_design

    psi = np.random.default_rng(0).normal(size=(50, 2)) + 0.3
    design = trivial_design(50)
    v = design_variance(psi, design, method="bootstrap", n_bootstrap=200, seed=1)
    np.testing.assert_allclose(v.vcov, v.draws.T @ v.draws / 200, rtol=1e-14)
    assert v.df == 49
    for bad in (0, 1, 2.5, True):
        with pytest.raises(ValueError, match="n_bootstrap must be an integer >= 2"):
            design_variance(psi, design, method="bootstrap", n_bootstrap=bad)
