"""Pre-trends power (Roth 2022): the box probability, the Wald form and the MDV checked
against closed forms derived independently of the implementation."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import diff_diff as dd
from diff_diff.diagnostics.pretrends_power import box_probability

Z = stats.norm.ppf(0.975)


@pytest.fixture(scope="module")
def cs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dd.CS(base_period="universal").fit(dd.load_mpdta(), outcome="lemp",
                                                  unit="countyreal", time="year",
                                                  first_treat="first.treat")


class Manual:
    """An event study given by hand (the two attributes PreTrendsPower reads)."""

    def __init__(self, events, estimates, vcov):
        self.event_study_effects = pd.DataFrame({"event_time": events, "estimate": estimates})
        self.event_study_vcov = pd.DataFrame(vcov, index=events, columns=events)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_box_probability_of_independent_coefficients_is_the_product(k):
    rng = np.random.default_rng(k)
    sd, mean = rng.uniform(0.5, 2.0, k), rng.normal(0, 1, k)
    exact = np.prod(stats.norm.cdf((Z * sd - mean) / sd) - stats.norm.cdf((-Z * sd - mean) / sd))
    prob, error = box_probability(mean, np.diag(sd ** 2), -Z * sd, Z * sd)
    assert prob == pytest.approx(exact, abs=1e-13) and error < 1e-12


def test_box_probability_of_two_correlated_coefficients_by_adaptive_quadrature():
    """Against scipy's deterministic adaptive dblquad of the bivariate density."""
    cov = np.array([[1.0, 0.7], [0.7, 2.0]])
    mean, lo, hi = np.array([0.4, -0.9]), np.array([-1.5, -2.0]), np.array([1.0, 2.5])
    density = stats.multivariate_normal(mean, cov).pdf
    ref, _ = integrate.dblquad(lambda y, x: density([x, y]), lo[0], hi[0], lo[1], hi[1],
                               epsabs=1e-13, epsrel=1e-13)
    assert box_probability(mean, cov, lo, hi)[0] == pytest.approx(ref, abs=1e-11)


def test_one_pre_period_nis_power_and_mdv_in_closed_form():
    """k = 1: power = 1 - [Phi(z - M/s) - Phi(-z - M/s)], at M = 0 exactly alpha."""
    s = 0.3
    study = Manual([-2, -1], [0.1, 0.0], np.diag([s ** 2, 0.0]))
    res = dd.PreTrendsPower(violation_type="constant").fit(study, M=0.5)
    assert res.pre_periods.tolist() == [-2] and res.reference_period == -1
    shift = 0.5 / s
    assert res.power == pytest.approx(1 - (stats.norm.cdf(Z - shift) - stats.norm.cdf(-Z - shift)),
                                      abs=1e-14)
    assert dd.PreTrendsPower().fit(study, M=0).power == pytest.approx(0.05, abs=1e-14)
    mdv = res.mdv / s  # in standard errors: solves the power equation
    assert 1 - (stats.norm.cdf(Z - mdv) - stats.norm.cdf(-Z - mdv)) == pytest.approx(0.8,
                                                                                     abs=1e-10)


def test_wald_power_is_the_noncentral_chi_square_tail_by_its_poisson_mixture(cs):
    """P(chi2_k(lam) > c) = sum_j Pois(j; lam/2) P(chi2_{k+2j} > c), summed directly."""
    res = dd.PreTrendsPower(pretest_form="wald").fit(cs, M=0.02)
    k, lam = res.n_pre_periods, res.noncentrality
    delta = 0.02 * res.violation_weights
    assert lam == pytest.approx(delta @ np.linalg.solve(res.vcov, delta), rel=1e-12)
    j = np.arange(200)
    mixture = stats.poisson.pmf(j, lam / 2) @ stats.chi2.sf(stats.chi2.ppf(0.95, k), k + 2 * j)
    assert res.power == pytest.approx(mixture, abs=1e-12)


@pytest.mark.parametrize("form", ["nis", "wald"])
@pytest.mark.parametrize("shape", ["linear", "constant", "last_period"])
def test_mdv_reaches_the_target_power_and_scales_with_the_standard_errors(cs, form, shape):
    res = dd.PreTrendsPower(violation_type=shape, pretest_form=form).fit(cs)
    assert res.violation_magnitude == res.mdv > 0
    assert res.power == pytest.approx(0.8, abs=1e-9)
    curve = res.power_curve(n_points=12)["power"].to_numpy()
    assert (np.diff(curve) > 0).all() and curve[0] < 0.8 < curve[-1]
    doubled = Manual(res.pre_periods.tolist() + [-1], list(res.pre_period_effects) + [0.0],
                     np.pad(4 * res.vcov, ((0, 1), (0, 1))))
    again = dd.PreTrendsPower(violation_type=shape, pretest_form=form).fit(doubled)
    assert again.mdv == pytest.approx(2 * res.mdv, rel=1e-9)
    assert dd.compute_mdv(cs, violation_type=shape, pretest_form=form) == res.mdv


def test_mpdta_shapes_and_inputs(cs):
    res = dd.compute_pretrends_power(cs, M=0.03)
    assert res.pre_periods.tolist() == [-4, -3, -2] and res.reference_period == -1
    assert res.violation_weights.tolist() == [-3.0, -2.0, -1.0]  # a trend through -1
    es = cs.event_study_effects.set_index("event_time")
    np.testing.assert_allclose(res.pre_period_effects, es.loc[[-4, -3, -2], "estimate"])
    np.testing.assert_allclose(res.vcov, cs.event_study_vcov.loc[[-4, -3, -2], [-4, -3, -2]])
    last = dd.PreTrendsPower(violation_type="last_period").fit(cs, pre_periods=[-3, -2])
    assert last.violation_weights.tolist() == [0.0, 1.0]
    custom = dd.PreTrendsPower(violation_type="custom", violation_weights=[1, 0, 0]).fit(cs)
    assert custom.mdv > last.mdv  # the earliest period is the noisiest
    assert "Power against M x shape" in res.summary() and "mdv=" in repr(res)
    assert dd.PreTrendsPower().power_at(cs, 0.03) == res.power


def test_bad_inputs(cs):
    with pytest.raises(ValueError, match="violation_type must be one of"):
        dd.PreTrendsPower(violation_type="quadratic")
    with pytest.raises(ValueError, match="pretest_form must be one of"):
        dd.PreTrendsPower(pretest_form="f")
    with pytest.raises(ValueError, match=r"power \(target_power\) must be in \(alpha, 1\)"):
        dd.PreTrendsPower(power=1.2)
    with pytest.raises(ValueError, match="needs violation_weights"):
        dd.PreTrendsPower(violation_type="custom").fit(cs)
    with pytest.raises(ValueError, match="violation_weights must be 3 finite numbers"):
        dd.PreTrendsPower(violation_type="custom", violation_weights=[1, 2]).fit(cs)
    with pytest.raises(ValueError, match=r"pre_periods \[-1\] are not leads before the reference period -1"):
        dd.PreTrendsPower().fit(cs, pre_periods=[-1])
    with pytest.raises(TypeError, match="needs event-study results"):
        dd.PreTrendsPower().fit(object())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bjs = dd.BJS().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
                           first_treat="first.treat")
    with pytest.raises(ValueError, match="no pre-treatment coefficient"):
        dd.PreTrendsPower().fit(bjs)


def test_plot_draws_the_curve_and_marks_the_mdv(cs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = dd.compute_pretrends_power(cs)
    ax = res.plot(n_points=20)
    curve = ax.get_lines()[0]
    assert len(curve.get_xdata()) == 20 and curve.get_xdata()[-1] == pytest.approx(2.5 * res.mdv)
    assert any(line.get_xdata()[0] == res.mdv for line in ax.get_lines()[1:])
    assert "minimum detectable violation" in " ".join(t.get_text() for t in
                                                      ax.get_legend().get_texts())
    assert dd.plot_pretrends_power(res, ax=ax) is ax
    plt.close("all")


def test_multiperiod_event_study_vcov_feeds_the_pretest():
    d = dd.load_mpdta()
    d = d[d["first.treat"].isin([0, 2007])].assign(D=lambda x: (x["first.treat"] > 0) * 1)
    mp = dd.MultiPeriodDiD(cluster="countyreal").fit(d, outcome="lemp", treatment="D",
                                                     time="year", unit="countyreal",
                                                     post_periods=[2007])
    es, cov = mp.event_study_effects.set_index("event_time"), mp.event_study_vcov
    assert cov.index.tolist() == es.index.tolist() == [-4, -3, -2, -1, 0]
    estimated = es["se"].notna()
    np.testing.assert_allclose(np.sqrt(np.diag(cov.loc[estimated, estimated])),
                               es.loc[estimated, "se"], rtol=1e-12)
    assert (cov.loc[-1] == 0).all() and (cov[-1] == 0).all()  # the reference period
    res = dd.compute_pretrends_power(mp)
    assert res.pre_periods.tolist() == [-4, -3, -2] and res.reference_period == -1
    assert res.power == pytest.approx(0.8, abs=1e-9)


def test_reference_period_and_anticipation_come_from_the_results():
    """Anticipation periods (between the reference period and 0) are not leads."""
    d = dd.load_mpdta()
    kw = dict(outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sa = dd.SunAbraham(anticipation=1).fit(d, **kw)
        cs1 = dd.CS(base_period="universal", anticipation=1).fit(d, **kw)
        varying = dd.CS().fit(d, **kw)
    for res in (dd.compute_pretrends_power(sa), dd.compute_pretrends_power(cs1)):
        assert res.reference_period == -2 and res.pre_periods.tolist() == [-4, -3]
        assert res.violation_weights.tolist() == [-2.0, -1.0]
    assert dd.compute_pretrends_power(sa).pre_period_effects == pytest.approx(
        sa.event_study_effects.set_index("event_time").loc[[-4, -3], "estimate"])
    with pytest.raises(ValueError, match="base_period='varying'.*fit with base_period='universal'"):
        dd.compute_pretrends_power(varying)


def test_clear_errors_for_inputs_the_power_cannot_use(cs):
    with pytest.raises(ValueError, match=r"already rejects with probability 0\.\d+; the target"):
        dd.PreTrendsPower(alpha=0.3, power=0.5).fit(cs)
    collinear = Manual([-3, -2, -1], [0.1, 0.1, 0.0], [[1.0, 1.0, 0], [1.0, 1.0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match=r"leads \[-3, -2\] is singular"):
        dd.PreTrendsPower(pretest_form="wald").fit(collinear)
    many = Manual(list(range(-9, 0)), [0.0] * 9, np.diag([1.0] * 8 + [0.0]))
    with pytest.raises(ValueError, match="at most 7 leads.*got 8; choose pre_periods= or"):
        dd.PreTrendsPower().fit(many)
    assert dd.PreTrendsPower(pretest_form="wald").fit(many).n_pre_periods == 8
    assert dd.PreTrendsPower().fit(many, pre_periods=range(-5, -1)).n_pre_periods == 4
    assert dd.PreTrendsPower().fit(cs, pre_periods=-2).pre_periods.tolist() == [-2]
    broken = Manual([-3, -2, -1], [0.1, 0.1, 0.0], np.diag([1.0, 1.0, 0.0]))
    broken.event_study_vcov = broken.event_study_vcov.drop(index=-3, columns=-3)
    with pytest.raises(ValueError, match=r"no rows/columns for event times \[-3\]"):
        dd.PreTrendsPower().fit(broken)


def test_means_after_pretesting_of_independent_leads_are_truncated_normal_means():
    """Independent leads: each conditional mean is the truncated normal's; later periods
    uncorrelated with the leads are not shifted."""
    sd = np.array([0.2, 0.1, 0.05])
    cov = np.diag(np.concatenate([sd ** 2, [0.0, 0.01]]))
    study = Manual([-4, -3, -2, -1, 0], [0.0] * 5, cov)
    res = dd.PreTrendsPower(violation_type="constant").fit(study, M=0.08)
    table = res.means_after_pretesting(later_violation=[0.3])
    lo, hi = (-Z * sd - 0.08) / sd, (Z * sd - 0.08) / sd
    exact = 0.08 + sd * (stats.norm.pdf(lo) - stats.norm.pdf(hi)) / (stats.norm.cdf(hi)
                                                                    - stats.norm.cdf(lo))
    np.testing.assert_allclose(table["mean_after_pretesting"][:3], exact, rtol=0, atol=1e-13)
    assert table["shift"].iloc[3] == 0 and table["mean_after_pretesting"].iloc[3] == 0.3
    assert np.isnan(res.means_after_pretesting()["violation"].iloc[3])  # constant: not extended
    with pytest.raises(ValueError, match=r"one number per later event time \[0\], got 2"):
        res.means_after_pretesting(later_violation=[0.1, 0.2])
    with pytest.raises(ValueError, match="pretest_form='nis'"):
        dd.PreTrendsPower(pretest_form="wald").fit(study).means_after_pretesting()


def test_likelihood_ratio_is_the_density_ratio_of_the_leads(cs):
    res = dd.PreTrendsPower(violation_type="constant").fit(cs, M=0.01)
    lead = res.pre_period_effects
    under = stats.multivariate_normal(res.violation_magnitude * res.violation_weights, res.vcov)
    null = stats.multivariate_normal(np.zeros(lead.size), res.vcov)
    assert res.likelihood_ratio == pytest.approx(under.pdf(lead) / null.pdf(lead), rel=1e-12)
    zero = dd.PreTrendsPower().fit(cs, M=0.0)
    assert zero.likelihood_ratio == 1.0 and zero.bayes_factor == pytest.approx(1.0, abs=1e-14)
