"""SyntheticDiD: the published Proposition 99 numbers (Arkhangelsky et al. 2021, Table 1
and Figure 1), the variance algorithms computed by hand, survey designs and errors.
Parity with the synthdid ports: tests/parity/test_synthdid_ports.py."""

import math
import warnings

import numpy as np
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel
from diff_diff.estimators import _synthdid as sd

POST = list(range(1989, 2001))
KW = dict(outcome="packspercapita", treatment="california", unit="state", time="year",
          post_periods=POST)


@pytest.fixture(scope="module")
def prop99():
    return dd.load_prop99()


@pytest.fixture(scope="module")
def fit99(prop99):
    return dd.SyntheticDiD(variance_method="placebo", seed=0, n_bootstrap=5).fit(prop99, **KW)


def test_published_prop99_estimate_and_weights(fit99):
    """-15.604 (Table 1); unit weights Nevada .124, New Hampshire .105, Connecticut .078,
    Delaware .070, Colorado .058; time weights 1986 .366, 1987 .206, 1988 .427 (Fig. 1)."""
    assert round(fit99.att, 3) == -15.604
    units = fit99.get_unit_weights_df().set_index("unit")["weight"]
    for state, weight in (("Nevada", .124), ("New Hampshire", .105), ("Connecticut", .078),
                          ("Delaware", .070), ("Colorado", .058)):
        assert round(units[state], 3) == weight
    times = fit99.time_weights.set_index("period")["weight"]
    assert [round(times[y], 3) for y in (1986, 1987, 1988)] == [.366, .206, .427]
    assert times.drop([1986, 1987, 1988]).eq(0).all()
    assert units.sum() == pytest.approx(1) and times.sum() == pytest.approx(1)
    assert fit99.n_treated == 1 and fit99.n_control == 38 and len(fit99.pre_periods) == 19


def test_placebo_draws_are_the_sequential_refits(prop99, fit99):
    """The batched solver gives each placebo estimate as a one-at-a-time refit would (each
    starting, as R, from the fitted weights of the remaining controls)."""
    res = dd.SyntheticDiD(variance_method="placebo", seed=3, n_bootstrap=4).fit(prop99, **KW)
    Y, n0, t0 = _matrix(prop99)
    rng = np.random.default_rng(3)
    for draw in res.variance_effects:
        perm = rng.permutation(n0)
        Yb = np.vstack([Y[perm[:n0 - 1]], Y[perm[n0 - 1:]]])
        omega = fit99.unit_weights["weight"].to_numpy()
        ref = sd.estimate(Yb, n0 - 1, t0, zeta_omega=fit99.zeta_omega,
                          zeta_lambda=fit99.zeta_lambda, min_decrease=fit99.min_decrease,
                          omega_start=sd.sum_normalize(omega[perm[:n0 - 1]]),
                          lambda_start=fit99.time_weights["weight"].to_numpy())
        assert draw == pytest.approx(ref.tau, abs=1e-10)
    r = res.variance_effects.size
    assert res.se == pytest.approx(math.sqrt((r - 1) / r) * np.std(res.variance_effects, ddof=1))


def _matrix(prop99):
    wide = prop99.pivot(index="state", columns="year", values="packspercapita")
    order = [s for s in wide.index if s != "California"] + ["California"]
    return wide.loc[order].to_numpy(), 38, 19


def test_one_treated_unit_jackknife_and_bootstrap_are_nan_with_a_warning(prop99):
    for method in ("jackknife", "bootstrap"):
        with pytest.warns(UserWarning, match=f"the {method} standard error is undefined"):
            res = dd.SyntheticDiD(variance_method=method).fit(prop99, **KW)
        assert math.isnan(res.se) and round(res.att, 3) == -15.604


@pytest.fixture(scope="module")
def several():
    """Prop 99 with three more 'treated' states (a block of four treated units)."""
    data = dd.load_prop99()
    extra = ["Nevada", "Utah", "Kentucky"]
    return data.assign(california=data["state"].isin(["California"] + extra).astype(int))


def test_jackknife_is_the_fixed_weight_leave_one_out(several):
    res = dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW)
    omega = res.unit_weights.set_index("unit")["weight"]
    lam = res.time_weights["weight"].to_numpy()
    wide = several.pivot(index="state", columns="year", values="packspercapita")
    diff = wide.to_numpy()[:, 19:].mean(axis=1) - wide.to_numpy()[:, :19] @ lam
    diff = dict(zip(wide.index, diff))
    treated = ["California", "Kentucky", "Nevada", "Utah"]
    units = list(omega.index) + treated
    u = []
    for out in units:
        om = omega.drop(out, errors="ignore")
        tr = [t for t in treated if t != out]
        u.append(np.mean([diff[t] for t in tr]) - sum(om[s] * diff[s] for s in om.index)
                 / om.sum())
    u = np.array(u)
    n = len(units)
    assert res.se == pytest.approx(math.sqrt((n - 1) / n * ((u - u.mean()) ** 2).sum()),
                                   rel=1e-12)
    expected = np.mean([diff[t] for t in treated]) - sum(omega[s] * diff[s]
                                                           for s in omega.index)
    assert res.att == pytest.approx(expected, abs=1e-10)


def test_invariances(several):
    a = dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW)
    b = dd.SyntheticDiD(variance_method="jackknife").fit(several.sample(frac=1.0,
                                                                        random_state=1), **KW)
    assert (a.att, a.se) == pytest.approx((b.att, b.se), rel=1e-12)
    data = several.assign(w=1.0 + (several["state"].str.len() % 3))
    design = dd.SurveyDesign(weights="w")
    c = dd.SyntheticDiD(variance_method="jackknife").fit(data, survey_design=design, **KW)
    d = dd.SyntheticDiD(variance_method="jackknife").fit(data.assign(w=data["w"] * 5),
                                                         survey_design=design, **KW)
    assert (c.att, c.se) == pytest.approx((d.att, d.se), rel=1e-12)
    assert c.survey_metadata is not None


def test_survey_designs_on_the_example_panel():
    panel = example_panel(n_units=240, seed=5).query(
        "first_treat == 0 or (first_treat == 5 and (unit // 6) % 3 == 0)")
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    kw = dict(outcome="y", treatment="treated", unit="unit", time="time", post_periods=[5, 6])
    jk = dd.SyntheticDiD(variance_method="jackknife").fit(panel, survey_design=design, **kw)
    boot = dd.SyntheticDiD(variance_method="bootstrap", n_bootstrap=8, seed=1).fit(
        panel, survey_design=design, **kw)
    placebo = dd.SyntheticDiD(variance_method="placebo", n_bootstrap=8, seed=1).fit(
        panel, survey_design=design, **kw)
    assert jk.att == boot.att == placebo.att
    for res in (jk, boot, placebo):
        assert np.isfinite(res.se) and res.df is not None
    data, rep = dd.as_replicate_design(panel, design, "JKn")
    replicate = dd.SyntheticDiD(variance_method="jackknife").fit(data, survey_design=rep, **kw)
    assert replicate.att == pytest.approx(jk.att, abs=1e-12) and np.isfinite(replicate.se)


def test_clear_errors(prop99):
    with pytest.raises(ValueError, match="needs more controls"):
        few = prop99[prop99["state"].isin(["California", "Nevada"])]
        dd.SyntheticDiD().fit(few, **KW)
    with pytest.raises(ValueError, match="must be the last periods"):
        dd.SyntheticDiD().fit(prop99, **{**KW, "post_periods": [1980, 1981]})
    with pytest.raises(ValueError, match="balanced"):
        dd.SyntheticDiD().fit(prop99.iloc[1:], **KW)
    with pytest.raises(ValueError, match="constant within"):
        dd.SyntheticDiD().fit(prop99, **{**KW, "treatment": "treated"})
    with pytest.raises(ValueError, match="covariates are not available"):
        dd.SyntheticDiD().fit(prop99, covariates=["year"], **KW)
    with pytest.raises(ValueError, match="variance_method must be one of"):
        dd.SyntheticDiD(variance_method="exact").fit(prop99, **KW)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dd.SyntheticDiD(variance_method="jackknife").fit(
            prop99.assign(california=prop99["state"].isin(["California", "Utah"]) * 1), **KW)


def test_review_fixes(several):
    """Unit levels do not leak into the weights (the estimate is invariant to adding a
    constant per unit); the cluster bootstrap runs without a survey design."""
    base = dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW)
    rng = np.random.default_rng(0)
    shift = dict(zip(several["state"].unique(), rng.normal(size=39) * 1e6))
    moved = several.assign(packspercapita=several["packspercapita"]
                           + several["state"].map(shift))
    again = dd.SyntheticDiD(variance_method="jackknife").fit(moved, **KW)
    assert again.att == pytest.approx(base.att, abs=1e-8)
    clustered = dd.SyntheticDiD(variance_method="bootstrap", n_bootstrap=10, seed=1,
                                cluster="region").fit(
        several.assign(region=several["state"].str[0]), **KW)
    assert np.isfinite(clustered.se)


def test_in_time_placebo_is_a_fresh_fit_on_the_pre_periods(prop99, fit99):
    table = fit99.in_time_placebo([1985])
    assert table["n_pre_fake"].tolist() == [15]
    assert table["n_post_fake"].tolist() == [4]
    pre = prop99[prop99["year"] < 1989]
    for fake, att in zip(table["fake_treatment_period"], table["att"]):
        kw = {**KW, "post_periods": list(range(fake, 1989))}
        direct = dd.SyntheticDiD(zeta_omega=fit99.zeta_omega, zeta_lambda=fit99.zeta_lambda,
                                 n_bootstrap=2, seed=0).fit(pre, **kw)
        assert att == pytest.approx(direct.att, abs=1e-10)
    short = dd.SyntheticDiD(n_bootstrap=2, seed=0).fit(prop99[prop99["year"] >= 1983], **KW)
    assert short.in_time_placebo()["fake_treatment_period"].tolist() == [1985, 1986, 1987,
                                                                          1988]
    with pytest.raises(ValueError, match="not a pre-period"):
        fit99.in_time_placebo([1990])
    with pytest.raises(ValueError, match="no earlier period"):
        fit99.in_time_placebo([1970])


def test_zeta_sensitivity_weights_and_fit_diagnostics(fit99):
    table = fit99.sensitivity_to_zeta_omega()
    middle = table.iloc[2]
    assert middle["zeta_omega"] == pytest.approx(fit99.zeta_omega)
    assert middle["att"] == pytest.approx(fit99.att, abs=1e-12)
    # more regularisation spreads the weights (effective number of controls grows)
    assert np.all(np.diff(table["effective_n"]) > 0)
    omega = fit99.unit_weights["weight"].to_numpy()
    conc = fit99.get_weight_concentration(top_k=3)
    assert conc["effective_n"] == pytest.approx(1 / (omega ** 2).sum())
    assert conc["effective_n"] == pytest.approx(middle["effective_n"])
    assert conc["top_k_share"] == pytest.approx(np.sort(omega)[-3:].sum())
    with pytest.raises(ValueError, match="top_k"):
        fit99.get_weight_concentration(-1)
    with pytest.raises(ValueError, match="grid"):
        fit99.sensitivity_to_zeta_omega(zeta_grid=[-1.0])
    paths = fit99.trajectories()
    gap = (paths["treated"] - paths["synthetic"]).to_numpy()[:19]
    assert fit99.pre_treatment_level_gap == pytest.approx(gap.mean())
    assert fit99.pre_treatment_fit == pytest.approx(gap.std())
    assert middle["pre_fit_rmse"] == pytest.approx(fit99.pre_treatment_fit)
    # the DiD of the trajectories with the time weights is the estimate
    lam = paths["time_weight"].to_numpy()[:19]
    assert gap @ lam * -1 + (paths["treated"] - paths["synthetic"]).to_numpy()[19:].mean() \
        == pytest.approx(fit99.att, abs=1e-10)


def test_leave_one_out_table_gives_the_jackknife(several):
    res = dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW)
    loo = res.get_loo_effects_df()
    assert sorted(loo["role"].value_counts().items()) == [("control", 35), ("treated", 4)]
    u = loo["att_loo"].to_numpy()
    n = u.size
    assert res.se == pytest.approx(math.sqrt((n - 1) / n * ((u - u.mean()) ** 2).sum()),
                                   rel=1e-12)
    assert np.all(np.diff(np.abs(loo["change"])) <= 0)


def test_bootstrap_weights_have_no_effect_and_say_so(several):
    with pytest.warns(UserWarning, match="bootstrap_weights has no effect"):
        res = dd.SyntheticDiD(variance_method="jackknife", bootstrap_weights="mammen").fit(
            several, **KW)
    assert res.se == dd.SyntheticDiD(variance_method="jackknife").fit(several, **KW).se


def test_stratified_placebo_without_enough_controls_points_to_the_other_methods():
    panel = example_panel()
    block = panel[panel["first_treat"].isin([0, 4])]
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    with pytest.raises(ValueError, match=r"stratum .*controls, .*treated\); use "
                                         r"variance_method='bootstrap'"):
        dd.SyntheticDiD(n_bootstrap=20, seed=0).fit(
            block, outcome="y", treatment="treated", unit="unit", time="time",
            post_periods=[4, 5, 6], survey_design=design)
