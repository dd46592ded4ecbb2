"""ImputationDiD: closed-form checks against explicit dummy regressions, behaviour, survey."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diff_diff as dd
from diff_diff import ImputationDiD, SurveyDesign, load_mpdta
from diff_diff.inference import design_variance
from diff_diff.survey.resolved import trivial_design

ARGS = dict(outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")
PANEL = dict(outcome="y", unit="unit", time="time", first_treat="g")


def panel(seed=0, n=60, periods=7, unbalanced=False, late=True):
    """A small staggered panel with heterogeneous effects, weights, strata and PSUs."""
    rng = np.random.default_rng(seed)
    cohorts = [0, 3, 4, 6] + ([9] if late else [])
    g = rng.choice(cohorts, n)
    g[:3] = 0  # never-treated units keep the graph connected
    w = rng.uniform(0.5, 3.0, n)
    stratum = rng.integers(0, 3, n)
    psu = stratum * 10 + rng.integers(0, 5, n)
    a = rng.normal(size=n)
    frames = []
    for t in range(1, periods + 1):
        x = rng.normal(size=n) + 0.2 * t
        effect = np.where((g > 0) & (t >= g), 1.0 + 0.3 * (t - g) + 0.5 * (g == 4), 0.0)
        y = a + 0.4 * t + 0.7 * x + effect + rng.normal(size=n)
        frames.append(pd.DataFrame(dict(unit=np.arange(n), time=t, y=y, x=x, g=g, w=w,
                                        stratum=stratum, psu=psu)))
    df = pd.concat(frames, ignore_index=True)
    if unbalanced:
        df = df[rng.random(len(df)) > 0.2].reset_index(drop=True)
    return df


def brute_force(df, covariates=(), weights=None, anticipation=0, partition="cohort_horizon",
                leave_one_out=False):
    """BJS by explicit dummy regression: estimands and Theorem-3 unit influence values.

    Returns ``{(kind, label): (theta, psi_by_unit)}``; written independently of
    the package (dense design matrices, loops over cells).
    """
    units = np.sort(df["unit"].unique())
    times = np.sort(df["time"].unique())
    g = df["g"].to_numpy(float)
    g = np.where(g - anticipation > times[-1], 0, g)
    t = df["time"].to_numpy(float)
    treated = (g > 0) & (t >= g - anticipation)
    s = np.ones(len(df)) if weights is None else df[weights].to_numpy(float)
    ui = np.searchsorted(units, df["unit"])
    ti = np.searchsorted(times, t)
    z = np.zeros((len(df), units.size + times.size - 1 + len(covariates)))
    z[np.arange(len(df)), ui] = 1
    later = ti > 0
    z[np.flatnonzero(later), units.size + ti[later] - 1] = 1
    for j, c in enumerate(covariates):
        z[:, units.size + times.size - 1 + j] = df[c]
    y = df["y"].to_numpy(float)
    z0, y0, s0 = z[~treated], y[~treated], s[~treated]
    gram = z0.T @ (z0 * s0[:, None])
    beta = np.linalg.solve(gram, z0.T @ (s0 * y0))
    resid0 = y0 - z0 @ beta
    tau = y - z @ beta
    h = t - g
    out = {}
    groups = {("overall", None): treated & (h >= 0)}
    for hh in np.unique(h[treated]):
        groups[("event_study", hh)] = treated & (h == hh)
    for gg in np.unique(g[treated & (h >= 0)]):
        groups[("group", gg)] = treated & (h >= 0) & (g == gg)
    cell_key = {"cohort_horizon": g * 1000 + h, "cohort": g, "horizon": h,
                "estimand": np.zeros_like(g)}[partition]
    for key, member in groups.items():
        w = np.where(member, s, 0.0)
        w = w / w.sum()
        theta = w @ tau
        v0 = -(z0 * s0[:, None]) @ np.linalg.solve(gram, z[treated].T @ w[treated])
        psi = np.zeros(units.size)
        np.add.at(psi, ui[~treated], v0 * resid0)
        for c in np.unique(cell_key[member]):
            in_c = member & (cell_key == c)
            a_u = np.bincount(ui[in_c], weights=w[in_c], minlength=units.size)
            b_u = np.bincount(ui[in_c], weights=(w * tau)[in_c], minlength=units.size)
            centre = theta if partition == "estimand" else (a_u @ b_u) / (a_u @ a_u)
            if leave_one_out:  # each unit's centre from the other units of the cell
                others = ((a_u @ b_u) - a_u * b_u) / ((a_u @ a_u) - a_u ** 2)
                alone = (a_u @ a_u) - a_u ** 2 <= 1e-14
                centre = np.where(alone, centre, others)[ui[in_c]]
            np.add.at(psi, ui[in_c], w[in_c] * (tau[in_c] - centre))
        out[key] = (theta, psi)
    return out


def _keys(res):
    kinds = res.vcov.index.get_level_values("kind")
    labels = res.vcov.index.get_level_values("label")
    return [(k, None if k == "overall" else float(v)) for k, v in zip(kinds, labels)]


@pytest.mark.parametrize("case", [
    dict(),
    dict(covariates=("x",)),
    dict(unbalanced=True, covariates=("x",), weights="w"),
    dict(anticipation=1, weights="w"),
    dict(partition="cohort", unbalanced=True),
    dict(partition="horizon", weights="w", covariates=("x",)),
    dict(partition="estimand", weights="w", unbalanced=True, covariates=("x",)),
    dict(leave_one_out=True, weights="w", unbalanced=True),
    dict(leave_one_out=True, partition="cohort", covariates=("x",)),
])
def test_estimates_and_influence_equal_explicit_dummy_regression(case):
    case = dict(case)
    df = panel(seed=len(case), unbalanced=case.pop("unbalanced", False))
    covariates = case.get("covariates", ())
    weights = case.get("weights")
    est = ImputationDiD(anticipation=case.get("anticipation", 0),
                        aux_partition=case.get("partition", "cohort_horizon"),
                        leave_one_out=case.get("leave_one_out", False))
    design = SurveyDesign(weights=weights) if weights else None
    res = est.fit(df, covariates=list(covariates) or None, survey_design=design, **PANEL)
    ref = brute_force(df, covariates, weights, case.get("anticipation", 0),
                      case.get("partition", "cohort_horizon"), case.get("leave_one_out", False))
    keys = _keys(res)
    assert set(keys) == {(k, None if v is None else float(v)) for k, v in ref}
    table = pd.concat([res.to_dataframe("overall"), res.event_study_effects, res.group_effects])
    theta = table["estimate"].to_numpy()
    psi = res.influence_functions
    for j, key in enumerate(keys):
        want_theta, want_psi = ref[(key[0], key[1])]
        assert theta[j] == pytest.approx(want_theta, abs=1e-10)
        np.testing.assert_allclose(psi[:, j], want_psi, atol=1e-10)
    # analytic SEs: the engine's variance of these influence values (units independent)
    vcov = design_variance(psi, trivial_design(psi.shape[0])).vcov
    np.testing.assert_allclose(table["se"], np.sqrt(np.diag(vcov)), rtol=1e-12)


def test_mpdta_numbers_and_alias():
    res = dd.BJS().fit(load_mpdta(), **ARGS)
    assert dd.BJS is ImputationDiD
    # points agree with diff-diff 3.13 / R didimputation (tests/parity has the full set)
    assert res.att == pytest.approx(-0.0477099182778, abs=1e-10)
    es = res.event_study_effects
    assert list(es["event_time"]) == [0, 1, 2, 3]
    assert list(es["n_obs"]) == [191, 60, 20, 20]
    assert list(res.group_effects["group"]) == [2004, 2006, 2007]
    assert res.n_units == 500 and res.n_treated_units == 191 and res.n_control_units == 309
    assert res.n_treated_obs == 291 and res.n_untreated_obs == 2209 and res.n_obs == 2500
    te = res.treatment_effects
    assert len(te) == 291 and te["weight"].sum() == pytest.approx(1.0)
    assert res.att == pytest.approx((te["weight"] * te["tau"]).sum(), rel=1e-12)


def test_headline_read_only_summary_and_tables():
    res = ImputationDiD().fit(load_mpdta(), **ARGS)
    with pytest.raises(AttributeError):
        res.att = 1.0
    res._balance_adjustment = {"method": "rake"}
    lo, hi = res.conf_int
    assert lo < res.att < hi and res.se > 0 and 0 <= res.p_value <= 1
    text = res.summary()
    assert "Imputation DiD" in text and "Event study" in text
    assert res.to_dataframe().equals(res.treatment_effects)
    assert res.to_dataframe("group").equals(res.group_effects)
    with pytest.raises(ValueError, match="level must be one of"):
        res.to_dataframe("cells")
    assert res.event_study_vcov.shape == (4, 4)
    assert "ImputationDiDResults" in repr(res)


def test_survey_design_tsl_and_psu_equals_cluster():
    df = panel(seed=3)
    res_c = ImputationDiD(cluster="psu").fit(df, **PANEL)
    res_d = ImputationDiD().fit(df, survey_design=SurveyDesign(psu="psu"), **PANEL)
    assert res_d.se == pytest.approx(res_c.se, rel=1e-12)
    assert res_d.df == df["psu"].nunique() - 1  # no strata: PSUs - 1
    full = SurveyDesign(weights="w", strata="stratum", psu="psu")
    res = ImputationDiD().fit(df, survey_design=full, **PANEL)
    psi = res.influence_functions
    units = df.drop_duplicates("unit").sort_values("unit")
    design = full.resolve(units.reset_index(drop=True))
    np.testing.assert_allclose(res.se, np.sqrt(design_variance(psi, design).vcov[0, 0]),
                               rtol=1e-12)
    assert res.df == design.df
    assert res.survey_metadata.n_psu == design.n_psu


def test_replicate_weights_refit_the_estimator():
    df = panel(seed=4)
    units = df.drop_duplicates("unit")
    out, rep = dd.as_replicate_design(units, SurveyDesign(weights="w", psu="psu"), "JK1")
    data = df.merge(out[["unit"] + rep.replicate_weights], on="unit")
    res = ImputationDiD().fit(data, covariates=["x"], survey_design=rep, **PANEL)
    # JK1 by hand: refit with each replicate's weights; (n-1)/n sum (theta_r - mean)^2
    thetas = np.array([
        ImputationDiD().fit(data, covariates=["x"], survey_design=SurveyDesign(weights=c),
                            **PANEL).att
        for c in rep.replicate_weights])
    n = thetas.size
    assert res.se == pytest.approx(np.sqrt((n - 1) / n * np.sum((thetas - thetas.mean()) ** 2)),
                                   rel=1e-10)
    assert res.df == n - 1
    tsl = ImputationDiD().fit(data, covariates=["x"],
                              survey_design=SurveyDesign(weights="w", psu="psu"), **PANEL)
    assert res.att == pytest.approx(tsl.att, rel=1e-12)
    assert res.se == pytest.approx(tsl.se, rel=0.15)
    lead = res.pretrend_test(n_leads=1)
    assert lead["df2"] == n - 1 and np.isfinite(lead["p_value"])


def test_bootstrap_reproducible_and_close_to_analytic():
    df = panel(seed=5)
    a = ImputationDiD(n_bootstrap=1999, seed=11).fit(df, **PANEL)
    b = ImputationDiD(n_bootstrap=1999, seed=11).fit(df, **PANEL)
    analytic = ImputationDiD().fit(df, **PANEL)
    assert a.se == b.se and a.att == analytic.att
    assert a.se == pytest.approx(analytic.se, rel=0.08)
    es = a.event_study_effects
    assert {"cband_low", "cband_high"} <= set(es.columns)
    assert (es["cband_high"] - es["cband_low"] >= es["conf_high"] - es["conf_low"] - 1e-12).all()
    with pytest.raises(ValueError, match="replicate"):
        rep = SurveyDesign(weights="w", replicate_weights=["w", "w"], replicate_method="JK1")
        ImputationDiD(n_bootstrap=9).fit(df, survey_design=rep, **PANEL)


def test_pretrend_test():
    res = ImputationDiD().fit(load_mpdta(), **ARGS)
    full = res.pretrend_test()
    assert full["df1"] == 3 and full["df2"] is None
    assert list(full["leads"]["event_time"]) == [-4, -3, -2]
    # leads -4..-2 against the reference -1: the coefficients diff-diff 3.13 reports
    np.testing.assert_allclose(full["leads"]["estimate"],
                               [-0.0013953502065, 0.0238410004045, 0.0216822748088], atol=1e-10)
    two = res.pretrend_test(n_leads=2)
    assert list(two["leads"]["event_time"]) == [-2, -1] and 0 < two["p_value"] < 1
    with pytest.raises(ValueError, match="n_leads=4 leaves no reference"):
        res.pretrend_test(n_leads=4)
    with pytest.raises(ValueError, match="n_leads must be"):
        res.pretrend_test(n_leads=0)


def test_not_imputable_observations_warned_and_dropped():
    df = panel(seed=6, late=False)
    df.loc[df["unit"] == 5, "g"] = 1  # treated from the first period: no unit effect
    with pytest.warns(UserWarning, match="never untreated"):
        res = ImputationDiD().fit(df, **PANEL)
    assert res.n_treated_obs == int(((df["g"] > 0) & (df["time"] >= df["g"])).sum()) - 7
    no_never = panel(seed=7, late=False)
    no_never = no_never[no_never["g"] > 0]
    with pytest.warns(UserWarning, match=r"period\(s\) \[6, 7\] without untreated"):
        res = ImputationDiD().fit(no_never, **PANEL)
    assert res.event_study_effects["event_time"].max() <= 2


def test_collinear_covariate_dropped_with_warning():
    df = panel(seed=8)
    df["fixed"] = df["unit"] % 3
    with pytest.warns(UserWarning, match=r"\['fixed'\] collinear with the unit"):
        res = ImputationDiD().fit(df, covariates=["x", "fixed"], **PANEL)
    ref = ImputationDiD().fit(df, covariates=["x"], **PANEL)
    assert res.att == pytest.approx(ref.att, rel=1e-10)


def test_disconnected_untreated_graph_raises():
    df = pd.DataFrame({"unit": [1, 1, 2, 2, 3, 3], "time": [1, 2, 1, 2, 1, 2],
                       "g": [2, 2, 2, 2, 2, 2], "y": [1.0, 2, 3, 4, 5, 6]})
    df = pd.concat([df, pd.DataFrame({"unit": [4, 4], "time": [3, 4], "g": [0, 0],
                                      "y": [1.0, 2.0]})])
    with pytest.raises(ValueError, match="disconnected"):
        ImputationDiD().fit(df, **PANEL)


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(aux_partition="unit"), "aux_partition must be one of"),
    (dict(anticipation=-1), "anticipation must be"),
    (dict(n_bootstrap=1), "n_bootstrap must be"),
    (dict(horizon_max=1.5), "horizon_max must be"),
])
def test_bad_settings_fail_in_fit(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        ImputationDiD(**kwargs).fit(panel(), **PANEL)


def test_bad_data():
    df = panel()
    with pytest.raises(ValueError, match="outcome column 'nope' not found"):
        ImputationDiD().fit(df, outcome="nope", unit="unit", time="time", first_treat="g")
    with pytest.raises(ValueError, match="pweight"):
        ImputationDiD().fit(df, survey_design=SurveyDesign(weights="w", weight_type="aweight"),
                            **PANEL)
    bad = df.copy()
    bad.loc[0, "w"] = 99.0
    with pytest.raises(ValueError, match="constant within"):
        ImputationDiD().fit(bad, survey_design=SurveyDesign(weights="w"), **PANEL)
    with pytest.raises(ValueError, match="varies within unit"):
        ImputationDiD(cluster="time").fit(df, **PANEL)


def test_horizon_max_and_anticipation_labels():
    df = panel(seed=9)
    res = ImputationDiD(horizon_max=2, anticipation=1).fit(df, **PANEL)
    es = res.event_study_effects
    assert list(es["event_time"]) == [-1, 0, 1, 2]
    full = ImputationDiD(anticipation=1).fit(df, **PANEL)
    assert res.att == full.att  # the overall ATT uses every post-treatment observation
    assert (res.treatment_effects["event_time"] >= -1).all()


def test_input_unchanged_never_treated_as_inf():
    df = panel(seed=10)
    before = df.copy()
    res = ImputationDiD().fit(df, covariates=["x"], **PANEL)
    pd.testing.assert_frame_equal(df, before)
    inf = df.assign(g=df["g"].replace(0, np.inf))
    assert ImputationDiD().fit(inf, covariates=["x"], **PANEL).att == pytest.approx(res.att,
                                                                                   rel=1e-12)


@pytest.mark.filterwarnings("ignore:ImputationDiD.*cannot be imputed")
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0))
def test_row_order_and_weight_scale_invariance(seed, scale):
    df = panel(seed=seed % 50, n=30, unbalanced=seed % 2 == 1)
    design = SurveyDesign(weights="w", strata="stratum", psu="psu")
    base = ImputationDiD().fit(df, covariates=["x"], survey_design=design, **PANEL)
    shuffled = df.sample(frac=1.0, random_state=seed).assign(w=lambda d: d["w"] * scale)
    other = ImputationDiD().fit(shuffled, covariates=["x"], survey_design=design, **PANEL)
    assert other.att == pytest.approx(base.att, rel=1e-9, abs=1e-12)
    assert other.se == pytest.approx(base.se, rel=1e-9)
    pd.testing.assert_frame_equal(other.event_study_effects, base.event_study_effects,
                                  rtol=1e-8)


def test_get_set_params_and_cli_free_repr():
    est = ImputationDiD(horizon_max=3)
    assert est.get_params()["horizon_max"] == 3
    est.set_params(aux_partition="cohort")
    assert "aux_partition='cohort'" in repr(est)
    with pytest.raises(ValueError, match="no parameter"):
        est.set_params(control_group="never_treated")


@pytest.mark.filterwarnings("ignore:ImputationDiD.*cannot be imputed")
def test_estimand_centring_is_the_design_linearization():
    """With aux_partition="estimand" (centring on the estimate) the influence values of
    each weighted mean sum to zero, also with unequal weights and an unbalanced panel
    (the brute-force test above checks them value by value)."""
    df = panel(seed=12, unbalanced=True)
    res = ImputationDiD(aux_partition="estimand").fit(
        df, survey_design=SurveyDesign(weights="w"), **PANEL)
    np.testing.assert_allclose(res.influence_functions.sum(axis=0), 0.0, atol=1e-12)
    default = ImputationDiD().fit(df, survey_design=SurveyDesign(weights="w"), **PANEL)
    assert res.att == default.att and res.se != default.se


def test_leave_one_out_widens_and_rejects_estimand():
    df = panel(seed=13)
    base = ImputationDiD().fit(df, **PANEL)
    loo = ImputationDiD(leave_one_out=True).fit(df, **PANEL)
    assert loo.att == base.att and loo.se > base.se
    with pytest.raises(ValueError, match="leave_one_out applies to the auxiliary cells"):
        ImputationDiD(leave_one_out=True, aux_partition="estimand").fit(df, **PANEL)
    lone = df[~((df["g"] == 6) & (df["unit"] != df.loc[df["g"] == 6, "unit"].min()))]
    with pytest.warns(UserWarning, match="leave_one_out is undefined for"):
        ImputationDiD(leave_one_out=True).fit(lone, **PANEL)


def _dates(df):
    """Periods 1..7 as quarter-end dates (YYYYMMDD), far apart as integers."""
    stamps = {t: int(d) for t, d in zip(range(1, 8), [20200331, 20200630, 20200930, 20201231,
                                                       20210331, 20210630, 20210930])}
    return df.assign(time=df["time"].map(stamps),
                     g=df["g"].map(lambda v: stamps.get(v, 0 if v == 0 else 20991231)))


@pytest.mark.parametrize("estimator", [ImputationDiD, dd.CallawaySantAnna])
def test_sparse_integer_periods_equal_consecutive_codes(estimator):
    """Dates coded as YYYYMMDD integers (a range much wider than the data) and rows
    shuffled so that a late period comes first: same estimates as periods 1..7."""
    df = panel(seed=14, late=False)
    shuffled = _dates(df).sample(frac=1.0, random_state=3)
    shuffled = pd.concat([shuffled[shuffled["time"] == 20210630], shuffled])
    shuffled = shuffled.drop_duplicates(["unit", "time"])
    a = estimator().fit(df, **PANEL)
    b = estimator().fit(shuffled, **PANEL)
    assert b.att == pytest.approx(a.att, rel=1e-10)
    assert b.se == pytest.approx(a.se, rel=1e-8)


def test_nothing_to_impute_and_infinite_values_are_clear_errors():
    df = panel(seed=15)
    with pytest.raises(ValueError, match="no treated observation with positive weight"):
        ImputationDiD().fit(df.assign(g=0), **PANEL)
    bad = df.copy()
    bad.loc[3, "y"] = np.inf
    with pytest.raises(ValueError, match="outcome column 'y' has 1 infinite values"):
        ImputationDiD().fit(bad, **PANEL)
    bad = df.copy()
    bad.loc[3, "x"] = -np.inf
    with pytest.raises(ValueError, match="covariate column 'x' has 1 infinite values"):
        ImputationDiD().fit(bad, covariates=["x"], **PANEL)


def test_pretrend_without_never_treated_drops_the_collinear_lead():
    df = panel(seed=16, late=False)
    df = df[df["g"] > 0]
    with pytest.warns(UserWarning):
        res = ImputationDiD().fit(df, **PANEL)
    with pytest.warns(UserWarning, match=r"\['lead -\d+'\] collinear with the unit"):
        test = res.pretrend_test()
    leads = test["leads"]
    assert leads["estimate"].isna().sum() == 1 and leads["se"].isna().sum() == 1
    assert np.isfinite(test["p_value"]) and test["df1"] == len(leads) - 1
    assert (leads["se"].dropna() < 10).all()


def test_replicates_missing_a_small_group_only_affect_that_group():
    df = panel(seed=17, n=80)
    units = df.drop_duplicates("unit")
    # every unit of cohort 6 in one PSU: the replicate dropping it has no cohort-6 effect
    units = units.assign(psu=np.where(units["g"] == 6, 999, units["psu"]))
    out, rep = dd.as_replicate_design(units, SurveyDesign(weights="w", psu="psu"), "JK1")
    data = df.drop(columns="psu").merge(out[["unit", "psu"] + rep.replicate_weights], on="unit")
    with pytest.warns(UserWarning, match=r"group: 1 of"):
        res = ImputationDiD().fit(data, survey_design=rep, **PANEL)
        res.se
    n = len(rep.replicate_weights)
    assert res.df == n - 1  # the overall keeps every replicate
    assert np.isfinite(res.se) and (res.event_study_effects["se"] > 0).all()


def test_covariates_with_large_levels_keep_their_accuracy():
    df = panel(seed=18)
    base = ImputationDiD().fit(df, covariates=["x"], **PANEL)
    shifted = ImputationDiD().fit(df.assign(x=df["x"] + 1e8), covariates=["x"], **PANEL)
    assert shifted.att == pytest.approx(base.att, abs=1e-7)
    assert shifted.se == pytest.approx(base.se, rel=1e-6)
    big_y = ImputationDiD().fit(df.assign(y=df["y"] + 1e9), covariates=["x"], **PANEL)
    assert big_y.att == pytest.approx(base.att, abs=1e-5)


def test_float_periods_give_one_row_per_horizon():
    df = panel(seed=19)
    scaled = df.assign(time=df["time"] / 10, g=df["g"] / 10)
    a = ImputationDiD().fit(df, **PANEL)
    b = ImputationDiD().fit(scaled, **PANEL)
    assert len(b.event_study_effects) == len(a.event_study_effects)
    np.testing.assert_allclose(b.event_study_effects["estimate"],
                               a.event_study_effects["estimate"], rtol=1e-9)
    assert len(b.pretrend_test()["leads"]) == len(a.pretrend_test()["leads"])
