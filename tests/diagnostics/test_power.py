"""Power analysis: the analytic formulas against their definitions, simulated power
against the analytic one where both apply, the survey population, and errors."""

import math
import warnings

import numpy as np
import pytest
from scipy import stats

import diff_diff as dd

Z = stats.norm.ppf(0.975)


def test_mde_power_and_sample_size_solve_their_equations():
    pa = dd.PowerAnalysis(alpha=0.05, power=0.8)
    res = pa.mde(n_treated=40, n_control=60, sigma=2.0, n_pre=3, n_post=2, rho=0.3, deff=1.5)
    se = math.sqrt(1.5 * 4.0 * (1 / 40 + 1 / 60) * (1 / 3 + 1 / 2) * 0.7)
    assert res.se == pytest.approx(se, rel=1e-14) and res.design == "panel"
    exact = stats.norm.sf(Z - res.mde / se) + stats.norm.cdf(-Z - res.mde / se)
    assert exact == pytest.approx(0.8, abs=1e-12)
    # the textbook (z_{1-a/2} + z_power) se ignores the far tail: slightly larger
    assert res.mde < (Z + stats.norm.ppf(0.8)) * se < res.mde * (1 + 1e-4)
    power = pa.power(0.9, 40, 60, 2.0, 3, 2, 0.3, 1.5).power
    assert power == pytest.approx(stats.norm.sf(Z - 0.9 / se) + stats.norm.cdf(-Z - 0.9 / se),
                                  abs=1e-15)


def test_two_by_two_variance_and_one_sided_tests():
    res = dd.PowerAnalysis().mde(50, 50, 1.0)
    assert res.se == pytest.approx(math.sqrt(2 * (2 / 50)), rel=1e-14) and res.design == "2x2"
    greater = dd.PowerAnalysis(alternative="greater").mde(50, 50, 1.0)
    assert greater.mde == pytest.approx((stats.norm.ppf(0.95) + stats.norm.ppf(0.8)) * res.se,
                                        rel=1e-12)
    less = dd.PowerAnalysis(alternative="less").mde(50, 50, 1.0)
    assert less.mde == pytest.approx(-greater.mde, rel=1e-12)


@pytest.mark.parametrize("deff,frac", [(1.0, 0.5), (2.3, 0.3)])
def test_sample_size_is_the_smallest_that_reaches_the_target(deff, frac):
    pa = dd.PowerAnalysis(power=0.9)
    res = pa.sample_size(0.4, 1.5, n_pre=2, n_post=2, rho=0.2, deff=deff, treat_frac=frac)
    n = res.required_n
    assert res.power >= 0.9 and res.n_treated + res.n_control == n

    def power(total):
        n_t = max(1, round(frac * total))
        return pa.power(0.4, n_t, total - n_t, 1.5, 2, 2, 0.2, deff).power

    assert power(n - 1) < 0.9 <= power(n)
    # the design effect scales the sample size
    plain = pa.sample_size(0.4, 1.5, n_pre=2, n_post=2, rho=0.2, treat_frac=frac).required_n
    assert n == pytest.approx(plain * deff, rel=0.02)


def test_function_forms_and_curves():
    assert dd.compute_mde(50, 50, 1.0) == dd.PowerAnalysis().mde(50, 50, 1.0).mde
    assert dd.compute_power(0.5, 50, 50, 1.0) == dd.PowerAnalysis().power(0.5, 50, 50, 1.0).power
    assert dd.compute_sample_size(0.5, 1.0, deff=1.8) == 453
    curve = dd.PowerAnalysis().power_curve(50, 50, 1.0)
    assert curve["power"].iloc[0] == pytest.approx(0.05, abs=1e-12)
    assert (np.diff(curve["power"]) > 0).all()
    sizes = dd.PowerAnalysis().sample_size_curve([0.3, 0.5, 1.0], 1.0)
    assert sizes["required_n"].is_monotonic_decreasing


def test_clear_errors():
    with pytest.raises(ValueError, match="alternative must be one of"):
        dd.PowerAnalysis(alternative="two")
    with pytest.raises(ValueError, match="n_treated must be a positive number"):
        dd.PowerAnalysis().mde(0, 10, 1.0)
    with pytest.raises(ValueError, match="rho must be in"):
        dd.PowerAnalysis().mde(10, 10, 1.0, rho=1.0)
    with pytest.raises(ValueError, match="wrong sign"):
        dd.PowerAnalysis(alternative="greater").sample_size(-0.5, 1.0)
    with pytest.raises(ValueError, match="treatment_period must be in"):
        dd.simulate_power(dd.DiD(), treatment_period=1, n_simulations=2, progress=False)
    with pytest.raises(ValueError, match="dose-response"):
        dd.simulate_power(dd.HeterogeneousAdoptionDiD(), n_simulations=2, progress=False)
    with pytest.raises(ValueError, match="weight_variation must be one of"):
        dd.SurveyPowerConfig(weight_variation="huge")


@pytest.mark.slow
def test_simulated_power_agrees_with_the_analytic_power():
    """Two periods, unit effects of variance 1 and noise of variance 1 (rho = 0.5 of a
    total variance 2): the analytic power is exact for the DiD of means."""
    effect = 0.6
    res = dd.simulate_power(dd.DiD(cluster="unit"), n_units=80, n_periods=2,
                            treatment_effect=effect, n_simulations=400, seed=5,
                            progress=False)
    analytic = dd.PowerAnalysis().power(effect, 40, 40, math.sqrt(2.0), rho=0.5)
    assert abs(res.power - analytic.power) < 3 * res.power_se
    assert res.std_estimate == pytest.approx(analytic.se, rel=0.15)
    assert abs(res.bias) < 3 * res.std_estimate / math.sqrt(400)
    assert res.power_ci[0] < res.power < res.power_ci[1]


def test_survey_population_and_common_random_numbers():
    cfg = dd.SurveyPowerConfig(n_strata=3, psu_per_stratum=4, heterogeneous_te_by_strata=True)
    data, truth = dd.diagnostics.simulate_panel(96, 4, 1.0, 0.5, 3, 1.0, 0, cfg)
    assert {"weight", "stratum", "psu", "fpc"} <= set(data.columns)
    assert data.groupby("psu")["treated"].nunique().max() == 1   # treated by whole PSUs
    on = data["d"] == 1
    effects = np.linspace(0.5, 1.5, 3)[data.loc[on, "stratum"]]
    assert truth == pytest.approx(np.average(effects, weights=data.loc[on, "weight"]), rel=1e-12)
    res = dd.simulate_power(dd.CS(), n_units=96, n_periods=4, treatment_period=3,
                            effect_sizes=[0.0, 1.0], n_simulations=8, seed=1, progress=False,
                            survey_config=dd.SurveyPowerConfig(n_strata=3, psu_per_stratum=4))
    assert res.survey and res.table["n_failures"].sum() == 0
    # same draws at both effect sizes: a linear estimator shifts by the effect exactly
    assert res.table["std_estimate"].iloc[0] == pytest.approx(res.table["std_estimate"].iloc[1],
                                                              rel=1e-9)
    again = dd.simulate_power(dd.CS(), n_units=96, n_periods=4, treatment_period=3,
                              effect_sizes=[0.0, 1.0], n_simulations=8, seed=1, progress=False,
                              survey_config=dd.SurveyPowerConfig(n_strata=3, psu_per_stratum=4))
    assert again.table.equals(res.table)


def test_failures_are_counted_and_extractor_used():
    class Flaky(dd.DiD):
        calls = 0

        def fit(self, *args, **kwargs):
            Flaky.calls += 1
            if Flaky.calls % 2:
                raise ValueError("boom")
            return super().fit(*args, **kwargs)

    Flaky.capabilities = dd.DiD.capabilities
    dd.estimators.registry.REGISTRY.setdefault("Flaky", dd.estimators.registry.REGISTRY[
        "DifferenceInDifferences"])
    with pytest.warns(UserWarning, match="5 of 10 fits failed"):
        res = dd.simulate_power(Flaky(), n_simulations=10, seed=0, progress=False,
                                estimator_kwargs=dict(outcome="y", treatment="treated",
                                                      time="post"))
    dd.estimators.registry.REGISTRY.pop("Flaky")
    assert res.n_simulation_failures == 5 and res.table["n_simulations"].iloc[0] == 5
    res = dd.simulate_power(dd.DiD(), n_simulations=5, seed=0, progress=False,
                            result_extractor=lambda r: (1.0, 1.0, 0.0, (0.0, 2.0)))
    assert res.power == 1.0 and res.mean_estimate == 1.0


@pytest.mark.slow
def test_simulated_mde_and_sample_size_bracket_the_analytic_answers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mde = dd.simulate_mde(dd.DiD(cluster="unit"), n_units=80, n_periods=2,
                              n_simulations=40, seed=3, effect_range=(0.0, 2.0), tol=0.1)
        n = dd.simulate_sample_size(dd.DiD(cluster="unit"), treatment_effect=0.6, n_periods=2,
                                    n_simulations=40, seed=3, n_range=(40, 400))
    analytic = dd.PowerAnalysis().mde(40, 40, math.sqrt(2.0), rho=0.5).mde
    assert analytic * 0.75 < mde < analytic * 1.25
    assert 0.6 * 175 < n < 1.5 * 175   # analytic: 2 * 8 * ((1.96 + 0.84) / 0.6)^2 ~ 175


def test_setup_errors_raise_instead_of_silent_failed_draws():
    with pytest.raises(ValueError, match=r"TripleDifference is not supported by the built-in "
                                         r"simulator: its fit needs column\(s\) \['eligible'\]"):
        dd.simulate_power(dd.TripleDifference(), n_simulations=500, seed=0, progress=False)
    with pytest.raises(ValueError, match="the first 5 fit.* of DifferenceInDifferences all "
                                         "failed.*'nope'"):
        dd.simulate_power(dd.DiD(), n_simulations=500, seed=0, progress=False,
                          estimator_kwargs={"covariates": ["nope"]})

    class Broken(dd.DiD):
        calls = 0

        def fit(self, *args, **kwargs):
            Broken.calls += 1
            raise ValueError("always")

    registry = dd.estimators.registry.REGISTRY
    registry["Broken"] = registry["DifferenceInDifferences"]
    try:
        with pytest.raises(ValueError, match="the first 2 fit.* all failed.*always"):
            dd.simulate_power(Broken(), n_simulations=2, seed=0, progress=False)
    finally:
        registry.pop("Broken")
    assert Broken.calls == 2


def test_simulate_sample_size_clamps_to_the_survey_minimum():
    """SurveyPowerConfig() has 5 x 8 PSUs: at least 80 units; the default n_range starts
    at 20, which used to crash in the bisection."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = dd.simulate_sample_size(dd.DiD(), treatment_effect=5.0, n_periods=2,
                                    n_simulations=10, seed=1,
                                    survey_config=dd.SurveyPowerConfig())
    assert n == 80
    with pytest.raises(ValueError, match=r"ends below the smallest simulated population "
                                         r"\(80 units\)"):
        dd.simulate_sample_size(dd.DiD(), n_range=(20, 60), n_simulations=2, seed=1,
                                survey_config=dd.SurveyPowerConfig())


def test_searches_without_seed_share_one_seed(monkeypatch):
    from diff_diff.diagnostics import power as pw

    seeds = []
    real = pw.simulate_power

    def spy(estimator, **kwargs):
        seeds.append(kwargs.get("seed"))
        return real(estimator, **kwargs)

    monkeypatch.setattr(pw, "simulate_power", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pw.simulate_mde(dd.DiD(cluster="unit"), n_units=40, n_periods=2, n_simulations=10,
                        effect_range=(0.0, 4.0), tol=0.3)
        first = len(seeds)
        pw.simulate_sample_size(dd.DiD(cluster="unit"), treatment_effect=2.0, n_periods=2,
                                n_simulations=10, n_range=(10, 80))
    assert first > 2 and len(set(seeds[:first])) == 1 and seeds[0] is not None
    assert len(seeds) > first + 2 and len(set(seeds[first:])) == 1
    assert seeds[first] is not None and seeds[first] != seeds[0]


def test_icc_is_the_within_psu_correlation_of_the_simulated_outcomes():
    """ANOVA estimate of the within-period intra-PSU correlation (100 PSUs of 50 units,
    three draws, two periods): 0.204 for icc=0.2 (the PSU variance used to ignore the
    unit effects and the PSU x period shocks: 0.128)."""
    from diff_diff.diagnostics.power import SurveyPowerConfig, simulate_panel

    cfg = SurveyPowerConfig(icc=0.2, n_strata=4, psu_per_stratum=25)
    estimates = []
    for seed in range(3):
        data, _ = simulate_panel(n_units=5000, n_periods=2, treatment_effect=0.0, seed=seed,
                                 survey_config=cfg)
        for _, period in data.groupby("time"):
            by_psu = period.groupby("psu")["y"]
            k, m = by_psu.ngroups, len(period) / by_psu.ngroups
            between = m * ((by_psu.mean() - period["y"].mean()) ** 2).sum() / (k - 1)
            within = ((period["y"] - by_psu.transform("mean")) ** 2).sum() / (len(period) - k)
            estimates.append((between - within) / (between + (m - 1) * within))
    assert np.mean(estimates) == pytest.approx(0.2, abs=0.02)
