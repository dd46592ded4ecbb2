"""HonestDiD (Rambachan & Roth 2023): each piece checked against an independent
computation (linear programs, brute-force minimisation, a bisection version of the
ARP test as R writes it), plus invariances, the published mpdta number and the API.
Parity with the reference port is in tests/parity/test_honest_did_moderndid.py."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import diff_diff as dd
from diff_diff.diagnostics import _honest_sets as sets


@pytest.fixture(scope="module")
def cs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dd.CS(base_period="universal").fit(dd.load_mpdta(), outcome="lemp",
                                                  unit="countyreal", time="year",
                                                  first_treat="first.treat")


def random_case(seed, n_pre, n_post, scale=0.01):
    rng = np.random.default_rng(seed)
    root = rng.normal(size=(n_pre + n_post, n_pre + n_post))
    sigma = root @ root.T / (n_pre + n_post) * scale ** 2
    beta = rng.normal(size=n_pre + n_post) * scale
    l_vec = np.abs(rng.normal(size=n_post)) + 0.1
    return beta, sigma, l_vec


# ------------------------------------------------------------------ FLCI
@pytest.mark.parametrize("t", [0.0, 0.3, 1.7, 6.0, 45.0])
def test_folded_normal_quantile_solves_its_equation(t):
    c, slope = sets.folded_normal_quantile(t, 0.05)
    assert stats.norm.cdf(c - t) - stats.norm.cdf(-c - t) == pytest.approx(0.95, abs=1e-14)
    h = 1e-6
    numeric = (sets.folded_normal_quantile(t + h, 0.05)[0]
               - sets.folded_normal_quantile(max(t - h, 0), 0.05)[0]) / (t + h - max(t - h, 0))
    assert slope == pytest.approx(numeric, abs=1e-6)
    if t == 0:
        assert c == pytest.approx(stats.norm.ppf(0.975), abs=1e-14)


@pytest.mark.parametrize("seed,n_pre,n_post", [(1, 3, 4), (2, 4, 2), (3, 2, 3), (4, 1, 2)])
def test_flci_bias_is_the_worst_case_over_delta_sd_by_linear_programming(seed, n_pre, n_post):
    beta, sigma, l_vec = random_case(seed, n_pre, n_post)
    M = 0.004
    lo, hi, weights, half, sd, bias = sets.flci(beta, sigma, n_pre, l_vec, M, 0.05)
    assert bias == pytest.approx(sets.worst_case_bias_lp(weights, l_vec, n_pre, M), rel=1e-6)
    full = np.r_[weights, l_vec]
    assert sd == pytest.approx(math.sqrt(full @ sigma @ full), rel=1e-12)
    assert half == pytest.approx(sd * sets.folded_normal_quantile(bias / sd, 0.05)[0], rel=1e-12)
    assert (lo + hi) / 2 == pytest.approx(full @ beta, abs=1e-15)


@pytest.mark.parametrize("seed,n_pre,n_post,M", [(1, 3, 4, 0.002), (5, 4, 2, 0.01),
                                                 (6, 5, 3, 0.0005)])
def test_flci_half_length_is_minimal(seed, n_pre, n_post, M):
    """No choice of lead weights (with bounded bias) gives a shorter interval: Nelder-Mead
    from many starts on the half-length with the bias from linear programming."""
    beta, sigma, l_vec = random_case(seed, n_pre, n_post)
    half = sets.flci(beta, sigma, n_pre, l_vec, M, 0.05)[3]
    total = np.arange(1, n_post + 1) @ l_vec
    diff = np.eye(n_pre) - np.eye(n_pre, k=-1)

    constant = sum(abs(np.arange(1, s + 1) @ l_vec[n_post - s:]) for s in range(1, n_post + 1))

    def half_length(c):
        weights = diff @ diff @ np.r_[c, total]   # every bounded-bias estimator has this form
        full = np.r_[weights, l_vec]
        sd = math.sqrt(full @ sigma @ full)
        bias = M * (constant + np.abs(c).sum())   # its worst-case bias (next test: = the LP)
        return sd * sets.folded_normal_quantile(bias / sd, 0.05)[0]

    rng = np.random.default_rng(seed)
    best = min(optimize.minimize(half_length, rng.normal(size=n_pre - 1) * 3,
                                 method="Nelder-Mead",
                                 options={"xatol": 1e-10, "fatol": 1e-14}).fun
               for _ in range(6))
    assert half <= best * (1 + 1e-7)


def test_worst_case_bias_closed_form_equals_the_linear_program():
    """The bias the FLCI minimises, for arbitrary lead weights of the bounded-bias form."""
    rng = np.random.default_rng(11)
    for n_pre, n_post in ((3, 4), (4, 2), (2, 1)):
        l_vec = np.abs(rng.normal(size=n_post)) + 0.1
        total = np.arange(1, n_post + 1) @ l_vec
        constant = sum(abs(np.arange(1, s + 1) @ l_vec[n_post - s:])
                       for s in range(1, n_post + 1))
        diff = np.eye(n_pre) - np.eye(n_pre, k=-1)
        for _ in range(5):
            c = rng.normal(size=n_pre - 1)
            weights = diff @ diff @ np.r_[c, total]
            assert sets.worst_case_bias_lp(weights, l_vec, n_pre, 1.0) == pytest.approx(
                constant + np.abs(c).sum(), rel=1e-7)


def test_flci_at_m_zero_is_the_minimum_variance_unbiased_interval():
    beta, sigma, l_vec = random_case(7, 3, 3)
    lo, hi, weights, half, sd, bias = sets.flci(beta, sigma, 3, l_vec, 0.0, 0.05)
    pre, post = np.arange(-3, 0), np.arange(1, 4)
    trend = np.r_[pre, post]
    n = 3
    # minimum variance subject to unbiasedness under linear delta through delta_0 = 0
    # (the only violations Delta^SD(0) allows): one slope condition, KKT system
    kkt = np.block([[2 * sigma[:n, :n], pre[:, None]], [pre[None, :], np.zeros((1, 1))]])
    rhs = np.r_[-2 * sigma[:n, n:] @ l_vec, -(post @ l_vec)]
    weights_ref = np.linalg.solve(kkt, rhs)[:n]
    assert weights == pytest.approx(weights_ref, abs=1e-12)
    assert bias == 0 and half == pytest.approx(stats.norm.ppf(0.975) * sd, rel=1e-14)
    assert trend @ np.r_[weights, l_vec] == pytest.approx(0, abs=1e-12)


# ------------------------------------------------------------------ identified sets
def test_identified_sets_nest_in_the_bound_and_contain_the_estimate():
    beta, sigma, l_vec = random_case(8, 3, 3)
    previous = None
    for mbar in (0.0, 0.5, 1.0, 2.0):
        lb, ub = sets.identified_set(beta, 3, l_vec, sets.restriction_rm(3, 3, mbar))
        assert lb <= l_vec @ beta[3:] <= ub
        if previous is not None:
            assert lb <= previous[0] + 1e-12 and ub >= previous[1] - 1e-12
        previous = (lb, ub)
    # Mbar = 0: no post-period change, delta_post = delta_0 = 0
    lb, ub = sets.identified_set(beta, 3, l_vec, sets.restriction_rm(3, 3, 0.0))
    assert lb == pytest.approx(l_vec @ beta[3:], abs=1e-12) and ub == pytest.approx(lb, abs=1e-12)


def test_relative_magnitudes_identified_set_in_closed_form():
    """One post period: |delta_1| <= Mbar * max pre first difference, so the set is
    beta_1 +- Mbar * max_t |beta_t - beta_{t-1}| (beta_0 = 0)."""
    beta = np.array([0.3, -0.1, 0.25, 0.8])  # three leads, one post
    lb, ub = sets.identified_set(beta, 3, np.ones(1), sets.restriction_rm(3, 1, 1.5))
    biggest = np.abs(np.diff(np.r_[beta[:3], 0.0])).max()
    assert (lb, ub) == pytest.approx((0.8 - 1.5 * biggest, 0.8 + 1.5 * biggest), abs=1e-12)


def test_smoothness_identified_set_extrapolates_the_last_slope():
    """Delta^SD(M), one post period: delta_1 = 2 delta_0 - delta_{-1} + r, |r| <= M, with
    delta_0 = 0: the set is beta_1 + beta_{-1} +- M (needs the leads to satisfy the bound)."""
    beta = np.array([-0.2, -0.1, 0.5])  # leads -2, -1 (a straight line through 0), post 0
    lb, ub = sets.identified_set(beta, 2, np.ones(1), sets.restriction_sd(2, 1, 0.05))
    assert (lb, ub) == pytest.approx((0.5 - 0.1 - 0.05, 0.5 - 0.1 + 0.05), abs=1e-12)
    curved = np.array([0.3, -0.1, 0.5])  # second difference 0.5 > M: no delta fits
    assert np.isnan(sets.identified_set(curved, 2, np.ones(1),
                                        sets.restriction_sd(2, 1, 0.05))).all()


# ------------------------------------------------------------------ ARP test
def _arp_reference(beta, sigma, A, d, n_pre, l_vec, theta, alpha):
    """The conditional ARP test written as R HonestDiD writes it: the linear program by a
    solver, the truncation points by bisection on re-solved programs."""
    n_post = l_vec.size
    last = n_post - 1
    direction = np.eye(n_post)[last] / l_vec[last]
    nuisance = np.array([np.eye(n_post)[j] - l_vec[j] / l_vec[last] * np.eye(n_post)[last]
                         for j in range(n_post - 1)]).T
    rows = np.flatnonzero(np.abs(A[:, n_pre:]).sum(axis=1) > 0)
    A_r = A[rows]
    y = A_r @ beta - d[rows] - A_r[:, n_pre:] @ direction * theta
    X = A_r[:, n_pre:] @ nuisance
    cov = A_r @ sigma @ A_r.T
    sd = np.sqrt(np.diag(cov))

    def value(yy):
        res = optimize.linprog(np.r_[1.0, np.zeros(X.shape[1])], A_ub=-np.c_[sd, X], b_ub=-yy,
                               bounds=(None, None), method="highs")
        return res.fun, -res.ineqlin.marginals

    eta, gamma = value(y)
    var_b = gamma @ cov @ gamma
    b = cov @ gamma / var_b
    base = y - b * (gamma @ y)

    def optimal(t):  # gamma still attains the program's value at y(t)
        return abs(value(base + b * t)[0] - gamma @ (base + b * t)) < 1e-9

    def edge(inside, outside):
        for _ in range(45):
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if optimal(mid) else (inside, mid)
        return inside

    far = 50 * math.sqrt(var_b) + abs(eta)
    v_lo = -math.inf if optimal(eta - far) else edge(eta, eta - far)
    v_up = math.inf if optimal(eta + far) else edge(eta, eta + far)
    s = math.sqrt(var_b)
    stat = eta / s
    crit = max(0.0, stats.truncnorm.ppf(1 - alpha, v_lo / s, v_up / s))
    return not stat > crit, (v_lo, v_up)


def test_dual_vertices_give_the_linear_program_value():
    beta, sigma, l_vec = random_case(9, 3, 3)
    (A, d), = sets.restriction_sd(3, 3, 0.01)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(A.shape[0], 2))
    sd = rng.uniform(0.5, 2.0, A.shape[0])
    vertices = sets._dual_vertices(sd, X)
    for _ in range(20):
        y = rng.normal(size=A.shape[0])
        lp = optimize.linprog(np.r_[1.0, 0, 0], A_ub=-np.c_[sd, X], b_ub=-y,
                              bounds=(None, None), method="highs")
        assert (vertices @ y).max() == pytest.approx(lp.fun, abs=1e-9)


@pytest.mark.slow
def test_conditional_test_matches_the_bisection_version(cs):
    """Accept/reject on a theta grid across both ends of the set equals the R-style
    computation (LP + bisection for the truncation points)."""
    beta, sigma = _mpdta_arrays(cs)
    l_vec = np.full(4, 0.25)
    grid = np.r_[np.linspace(-0.26, -0.16, 5), np.linspace(0.0, 0.1, 5)]
    polyhedra = sets.restriction_rm(3, 4, 1.0)
    for A, d in (polyhedra[0], polyhedra[5]):
        ours = sets.arp_accept(beta, sigma, A, d, 3, l_vec, grid, 0.05, "ARP")
        ref = [_arp_reference(beta, sigma, A, d, 3, l_vec, t, 0.05)[0] for t in grid]
        assert ours.tolist() == ref
        assert 0 < sum(ref) < grid.size  # the grid crosses the set's ends


def test_sets_scale_with_the_data(cs):
    """Multiplying the estimates by c and the covariance by c^2 (and M by c for
    smoothness) multiplies every bound by c."""
    base = dd.HonestDiD(method="relative_magnitude", M=1.0)
    beta, sigma = _mpdta_arrays(cs)
    one = base.fit_arrays(beta, sigma, 3)
    ten = base.fit_arrays(10 * beta, 100 * sigma, 3)
    for field in ("lb", "ub", "ci_lb", "ci_ub", "original_estimate", "original_se"):
        assert getattr(ten, field) == pytest.approx(10 * getattr(one, field), rel=1e-9)
    sd_one = dd.HonestDiD(method="smoothness", M=0.01).fit_arrays(beta, sigma, 3)
    sd_ten = dd.HonestDiD(method="smoothness", M=0.1).fit_arrays(10 * beta, 100 * sigma, 3)
    assert (sd_ten.ci_lb, sd_ten.ci_ub) == pytest.approx((10 * sd_one.ci_lb, 10 * sd_one.ci_ub),
                                                         rel=1e-9)


# ------------------------------------------------------------------ on results
def _mpdta_arrays(cs):
    events = [-4, -3, -2, 0, 1, 2, 3]
    table = cs.event_study_effects.set_index("event_time")
    return (table.loc[events, "estimate"].to_numpy(),
            cs.event_study_vcov.loc[events, events].to_numpy())


def test_mpdta_relative_magnitudes_reproduces_r(cs):
    """R HonestDiD on mpdta (CS, universal base, average of the post periods, Mbar = 1,
    C-LF): [-0.210, 0.056] (the issue's reference; 3.13 reported [-0.178, 0.023])."""
    res = dd.compute_honest_did(cs, method="relative_magnitude", M=1.0)
    assert res.ci_method == "C-LF"
    assert (round(res.ci_lb, 3), round(res.ci_ub, 3)) == (-0.210, 0.056)
    assert res.lb == pytest.approx(-0.138387, abs=1e-6) and res.ub == pytest.approx(-0.016093,
                                                                                  abs=1e-6)
    assert res.original_estimate == pytest.approx(cs.event_study_effects["estimate"].iloc[4:]
                                                  .mean(), abs=1e-15)
    assert res.pre_periods_used == [-4, -3, -2] and res.post_periods_used == [0, 1, 2, 3]
    assert res.reference_period == -1
    bounds = res.event_study_bounds
    assert bounds["event_time"].tolist() == [0, 1, 2, 3]
    assert (bounds["ci_lb"] <= bounds["lb"]).all() and (bounds["ub"] <= bounds["ci_ub"]).all()


def test_fit_equals_fit_arrays_on_the_full_covariance(cs):
    """The results path reads the event study and its full covariance, nothing else."""
    beta, sigma = _mpdta_arrays(cs)
    for method, M in (("smoothness", 0.005), ("relative_magnitude", 0.5), ("combined", 1.0)):
        honest = dd.HonestDiD(method=method, M=M)
        a, b = honest.fit(cs), honest.fit_arrays(beta, sigma, 3)
        assert (a.lb, a.ub, a.ci_lb, a.ci_ub) == (b.lb, b.ub, b.ci_lb, b.ci_ub) or \
            np.allclose([a.lb, a.ub, a.ci_lb, a.ci_ub], [b.lb, b.ub, b.ci_lb, b.ci_ub],
                        equal_nan=True, rtol=0, atol=1e-15)
    diagonal = dd.HonestDiD(M=0.5).fit_arrays(beta, np.diag(np.diag(sigma)), 3)
    assert diagonal.ci_ub != dd.HonestDiD(M=0.5).fit(cs).ci_ub


def test_sensitivity_and_breakdown(cs):
    honest = dd.HonestDiD(method="relative_magnitude")
    sens = honest.sensitivity_analysis(cs, M_grid=[0.0, 0.25, 0.5, 1.0])
    assert sens.table["M"].tolist() == [0.0, 0.25, 0.5, 1.0]
    assert (np.diff(sens.table["ci_ub"]) >= 0).all() and (np.diff(sens.table["ci_lb"]) <= 0).all()
    assert sens.breakdown_M == 0.25
    value = honest.breakdown_value(cs, tol=0.01)
    assert 0.25 <= value < 0.5
    assert dd.HonestDiD(M=value).fit(cs).ci_ub < 0 <= dd.HonestDiD(M=value + 0.01).fit(cs).ci_ub
    # the first post period alone is not significant even under parallel trends
    assert dd.HonestDiD(l_vec=[1, 0, 0, 0]).breakdown_value(cs) is None
    assert "Delta^RM" in sens.summary()


def test_survey_design_df_and_original_interval():
    data = dd.load_mpdta()
    rng = np.random.default_rng(3)
    units = data["countyreal"].unique()
    weight = pd.Series(rng.uniform(0.5, 2.0, units.size), index=units)
    data = data.assign(w=data["countyreal"].map(weight), psu=data["countyreal"] // 7)
    data["stratum"] = data["psu"] % 4
    design = dd.SurveyDesign(weights="w", strata="stratum", psu="psu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dd.CS(base_period="universal").fit(data, outcome="lemp", unit="countyreal",
                                                 time="year", first_treat="first.treat",
                                                 survey_design=design)
    honest = dd.compute_honest_did(res, M=0.5)
    assert honest.df_survey == res.df and res.df is not None
    half = stats.t.ppf(0.975, res.df) * honest.original_se
    assert honest.original_ci == pytest.approx((honest.original_estimate - half,
                                                honest.original_estimate + half))
    assert "Design degrees of freedom" in honest.summary()
    # weights scaled by a constant: the same sets
    scaled = data.assign(w=data["w"] * 7.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res7 = dd.CS(base_period="universal").fit(scaled, outcome="lemp", unit="countyreal",
                                                  time="year", first_treat="first.treat",
                                                  survey_design=design)
    again = dd.compute_honest_did(res7, M=0.5)
    assert (again.ci_lb, again.ci_ub) == pytest.approx((honest.ci_lb, honest.ci_ub), abs=1e-12)


def test_clear_errors(cs):
    with pytest.raises(ValueError, match="method must be one of"):
        dd.HonestDiD(method="linear")
    with pytest.raises(ValueError, match="FLCI is defined for method='smoothness'"):
        dd.HonestDiD(method="relative_magnitude", ci_method="FLCI")
    with pytest.raises(ValueError, match="ci_method must be one of"):
        dd.HonestDiD(ci_method="C-F")
    with pytest.raises(ValueError, match="M must be a finite number >= 0"):
        dd.HonestDiD(M=-1)
    with pytest.raises(ValueError, match="l_vec needs one weight per event time"):
        dd.compute_honest_did(cs, l_vec=[1, 0])
    with pytest.raises(ValueError, match="not all zero"):
        dd.compute_honest_did(cs, l_vec=[0, 0, 0, 0])
    with pytest.raises(TypeError, match="event_study_effects and event_study_vcov"):
        dd.compute_honest_did(object())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        varying = dd.CS().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
                              first_treat="first.treat")
        bjs = dd.ImputationDiD().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal",
                                     time="year", first_treat="first.treat",
                                     aggregate="event_study")
    with pytest.raises(ValueError, match="base_period='universal'"):
        dd.compute_honest_did(varying)
    with pytest.raises(ValueError, match="at least one coefficient before the reference"):
        dd.compute_honest_did(bjs)
    beta, sigma = _mpdta_arrays(cs)
    with pytest.raises(ValueError, match="at least two pre-periods"):
        dd.HonestDiD(method="combined").fit_arrays(beta[2:], sigma[2:, 2:], 1)


def test_gaps_in_event_time_are_refused(cs):
    class Gappy:
        event_study_effects = cs.event_study_effects.query("event_time != -3")
        event_study_vcov = cs.event_study_vcov.drop(index=-3, columns=-3)

    with pytest.raises(ValueError, match=r"event times \[-3\] are missing"):
        dd.compute_honest_did(Gappy())


def test_empty_grid_and_open_grid_warn(cs):
    with pytest.warns(UserWarning, match="reaches the end of the theta grid"):
        res = dd.compute_honest_did(cs, M=2.0, grid_lb=-0.2, grid_ub=0.1)
    assert res.ci_lb == pytest.approx(-0.2) and res.ci_ub == pytest.approx(0.1)
    with pytest.warns(UserWarning, match="confidence set is empty"):
        res = dd.compute_honest_did(cs, M=0.0, grid_lb=0.5, grid_ub=0.6)
    assert math.isnan(res.ci_lb)


def test_plots(cs):
    import matplotlib
    matplotlib.use("Agg")
    res = dd.compute_honest_did(cs, M=0.5)
    ax = dd.plot_honest_event_study(res)
    assert "robust set" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    sens = dd.HonestDiD().sensitivity_analysis(cs)
    ax = dd.plot_sensitivity(sens)
    assert ax.get_xticklabels()[0].get_text() == "original"
    with pytest.raises(ValueError, match="HonestDiD\\(\\).fit"):
        dd.plot_honest_event_study(dd.HonestDiD().fit_arrays(*_mpdta_arrays(cs), 3))


# ------------------------------------------------------------------ review additions
def test_flci_is_mirror_symmetric_in_the_target_and_its_bias_is_the_lp_value():
    """theta = -l' tau has the mirrored interval; with mixed-sign l the closed-form bias
    still equals the worst case by linear programming (R's formula overstates it when
    sum_t t l_t < 0)."""
    beta, sigma, _ = random_case(21, 3, 3)
    for l_vec in (np.array([0.5, 0.3, 0.2]), np.array([1.0, -2.0, 0.5])):
        lo, hi, weights, half, sd, bias = sets.flci(beta, sigma, 3, l_vec, 0.003, 0.05)
        mlo, mhi, mweights, mhalf, *_ = sets.flci(beta, sigma, 3, -l_vec, 0.003, 0.05)
        assert (mlo, mhi) == pytest.approx((-hi, -lo), abs=1e-9)
        assert bias == pytest.approx(sets.worst_case_bias_lp(weights, l_vec, 3, 0.003),
                                     rel=1e-7)


def _r_single_post_test(y, sigma, A, d, alpha):
    """R HonestDiD's one-post-period conditional test (.testInIdentifiedSet): the largest
    normalised moment, conditioned on being the largest, against its truncated normal."""
    from scipy import stats as st

    sd = np.sqrt(np.diag(A @ sigma @ A.T))
    a_t, d_t = A / sd[:, None], d / sd
    moments = a_t @ y - d_t
    j = int(np.argmax(moments))
    gamma = a_t[j]
    c = sigma @ gamma / (gamma @ sigma @ gamma)
    z = y - c * (gamma @ y)
    a_bar = a_t - a_t[j]
    d_bar = d_t - d_t[j]
    slope, level = a_bar @ c, d_bar - a_bar @ z
    lo = max([lv / sl for sl, lv in zip(slope, level) if sl < -1e-12], default=-np.inf)
    hi = min([lv / sl for sl, lv in zip(slope, level) if sl > 1e-12], default=np.inf)
    sigma_bar = np.sqrt(gamma @ sigma @ gamma)
    crit = d_t[j] + sigma_bar * st.truncnorm.ppf(1 - alpha, (lo - d_t[j]) / sigma_bar,
                                                 (hi - d_t[j]) / sigma_bar)
    return not (gamma @ y > crit)


def test_single_post_period_test_is_r_s():
    beta, sigma, _ = random_case(22, 3, 1)
    grid = np.linspace(-0.05, 0.05, 41)
    for A, d in sets.restriction_rm(3, 1, 1.0) + sets.restriction_sd(3, 1, 0.004):
        ours = sets.arp_accept(beta, sigma, A, d, 3, np.ones(1), grid, 0.05, "ARP")
        ref = [_r_single_post_test(beta - np.r_[0, 0, 0, t], sigma, A, d, 0.05) for t in grid]
        assert ours.tolist() == ref


def test_other_event_study_results(cs):
    data = dd.load_mpdta()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sa = dd.SunAbraham().fit(data, outcome="lemp", unit="countyreal", time="year",
                                 first_treat="first.treat")
        ant = dd.CS(base_period="universal", anticipation=1).fit(
            data, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")
        mp = dd.MultiPeriodDiD().fit(data.assign(treated=(data["first.treat"] == 2007) * 1),
                                     "lemp", "treated", "year", post_periods=[2007],
                                     unit="countyreal")
    res = dd.compute_honest_did(sa, M=0.5)
    assert res.reference_period == -1 and res.post_periods_used == [0, 1, 2, 3]
    assert np.isfinite([res.ci_lb, res.ci_ub]).all()
    res = dd.compute_honest_did(ant, M=0.5)
    assert res.reference_period == -2 and res.post_periods_used[0] == -1
    assert res.l_vec[0] == 0 and "Anticipation periods" in res.summary()
    res = dd.compute_honest_did(mp, method="smoothness", M=0.0)
    assert res.post_periods_used == [0] and len(res.pre_periods_used) == 3


def test_precise_estimate_far_from_zero_is_found_by_widening():
    """Leads near 0, effects 40 standard errors away: R's grid (0 +- 20 se) misses the set."""
    beta = np.array([0.001, -0.002, 0.0015, 0.40, 0.45])
    sigma = np.diag([1e-4] * 5)
    res = dd.HonestDiD(M=0.5).fit_arrays(beta, sigma, 3)
    assert res.grid_widened and np.isfinite([res.ci_lb, res.ci_ub]).all()
    assert res.ci_lb < res.lb and res.ub < res.ci_ub and res.is_significant
    assert "nan" not in res.summary()


def test_breakdown_tolerance_and_scale_invariance(cs):
    with pytest.raises(ValueError, match="tol must be a positive number"):
        dd.HonestDiD().breakdown_value(cs, tol=0)
    beta, sigma = _mpdta_arrays(cs)
    tiny = dd.HonestDiD(M=1.0).fit_arrays(beta * 1e-12, sigma * 1e-24, 3)
    one = dd.HonestDiD(M=1.0).fit_arrays(beta, sigma, 3)
    scaled_back = (tiny.ci_lb * 1e12, tiny.ci_ub * 1e12)
    assert scaled_back == pytest.approx((one.ci_lb, one.ci_ub), rel=1e-9)
    assert sets.folded_normal_quantile(1e17, 0.5)[1] == 1.0
