"""WooldridgeDiD (ETWFE): the cell effects equal the estimators they are known to equal
on a balanced panel without covariates (Wooldridge 2021: not-yet-treated ETWFE is the
imputation estimator; never-treated ETWFE is Callaway-Sant'Anna with a universal base
period), aggregations are the weighted averages they claim, survey designs, errors.
Parity with the etwfe package: tests/parity/test_wooldridge_etwfe.py."""


import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel

MPDTA = dict(outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")


@pytest.fixture(scope="module")
def mpdta():
    return dd.load_mpdta()


def test_not_yet_treated_cells_are_the_imputation_estimator(mpdta):
    res = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    tau = dd.ImputationDiD().fit(mpdta, **MPDTA).treatment_effects
    cells = tau.groupby(["first_treat", "time"])["tau"].mean()
    table = res.group_time_effects.set_index(["group", "time"])["estimate"]
    assert len(table) == len(cells) == 7
    for key, value in cells.items():
        assert table[key] == pytest.approx(value, abs=1e-12)


def test_never_treated_cells_are_callaway_santanna_universal(mpdta):
    res = dd.WooldridgeDiD(control_group="never_treated").fit(mpdta, **MPDTA)
    cs = dd.CS(base_period="universal").fit(mpdta, **MPDTA)
    ours = res.event_study_effects.set_index("event_time")["estimate"]
    theirs = cs.event_study_effects.set_index("event_time")["estimate"].drop(-1)
    assert ours.index.tolist() == theirs.index.tolist()
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=0, atol=1e-12)


def test_aggregations_are_weighted_averages_of_cells(mpdta):
    res = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    cells = res.group_time_effects
    post = cells[cells["event_time"] >= 0]
    assert res.att == pytest.approx(np.average(post["estimate"], weights=post["n"]), abs=1e-14)
    for kind, column in (("group", "group"), ("calendar", "time"), ("event_study",
                                                                      "event_time")):
        table = res.aggregate(kind).set_index(column)
        for key, part in post.groupby(column):
            assert table.loc[key, "estimate"] == pytest.approx(
                np.average(part["estimate"], weights=part["n"]), abs=1e-14)
    # delta method with fixed weights: the simple ATT's variance is w' V w
    w = np.where(cells["event_time"] >= 0, cells["n"], 0.0)
    w /= w.sum()
    assert res.se == pytest.approx(np.sqrt(w @ res.vcov.to_numpy() @ w), rel=1e-12)
    # on a balanced panel the cohort-share weights are the cell weights
    assert res.aggregate("simple", "cohort_share")["estimate"] == pytest.approx(res.att,
                                                                                abs=1e-14)


def test_survey_designs_and_invariances():
    panel = example_panel()
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    base = dd.ETWFE().fit(panel, "y", "unit", "time", "first_treat", survey_design=design)
    scaled = dd.ETWFE().fit(panel.assign(weight=panel["weight"] * 3.0), "y", "unit", "time",
                            "first_treat", survey_design=design)
    shuffled = dd.ETWFE().fit(panel.sample(frac=1.0, random_state=2), "y", "unit", "time",
                              "first_treat", survey_design=design)
    for other in (scaled, shuffled):
        assert other.att == pytest.approx(base.att, rel=1e-10)
        assert other.se == pytest.approx(base.se, rel=1e-9)
    assert base.df is not None and base.survey_metadata is not None
    data, rep = dd.as_replicate_design(panel, design, "JKn")
    replicate = dd.ETWFE().fit(data, "y", "unit", "time", "first_treat", survey_design=rep)
    assert replicate.att == pytest.approx(base.att, abs=1e-12)
    assert 0.6 < replicate.se / base.se < 1.6


def test_unsupported_periods_and_errors(mpdta):
    treated_all = mpdta[mpdta["first.treat"] > 0]  # no never-treated units; 2007 all treated
    with pytest.warns(UserWarning, match=r"period\(s\) \[2007\]"):
        res = dd.WooldridgeDiD().fit(treated_all, **MPDTA)
    assert 2007 not in res.time_periods
    with pytest.raises(ValueError, match="no comparison observation"):
        dd.WooldridgeDiD(unsupported_period_action="error").fit(treated_all, **MPDTA)
    with pytest.raises(ValueError, match="no never-treated units"):
        dd.WooldridgeDiD(control_group="never_treated").fit(treated_all, **MPDTA)
    with pytest.raises(ValueError, match="no unit is treated"):
        dd.WooldridgeDiD().fit(mpdta.assign(**{"first.treat": 0}), **MPDTA)
    with pytest.raises(ValueError, match="method must be one of"):
        dd.WooldridgeDiD(method="probit").fit(mpdta, **MPDTA)
    res = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    with pytest.raises(ValueError, match="kind must be one of"):
        res.aggregate("dynamic")
    with pytest.raises(ValueError, match="weights must be one of"):
        res.aggregate("group", weights="equal")


def test_cr2(mpdta):
    cr2 = dd.WooldridgeDiD(vcov_type="hc2_bm").fit(mpdta, **MPDTA)
    cr1 = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    assert cr2.att == pytest.approx(cr1.att, abs=1e-12) and 0.8 < cr2.se / cr1.se < 1.3


def _dummy_ols(panel, terms, trends=()):
    """The ETWFE regression by hand (unit and period dummies, numpy lstsq): the not-yet
    cells, each covariate's terms (``cells``: centred at the cell mean and interacted with
    the cell; ``level``; ``cohort``: x times the treated-cohort dummies; ``period``: x times
    the period dummies but the first) and cohort trends. Returns the cell coefficients."""
    g, t = panel["first_treat"].to_numpy(), panel["time"].to_numpy()
    cell = pd.Series(list(zip(g, t))).where((g > 0) & (t >= g))
    keys = sorted(cell.dropna().unique())
    cols = [(cell == key).to_numpy(float) for key in keys]
    for name, kinds in terms.items():
        x = panel[name].to_numpy()
        for key in keys:
            on = (cell == key).to_numpy()
            if "cells" in kinds:
                cols.append(np.where(on, x - x[on].mean(), 0.0))
        cols += [x] if "level" in kinds else []
        cols += [x * (g == c) for c in (3, 4, 5)] if "cohort" in kinds else []
        cols += [x * (t == s) for s in range(2, 7)] if "period" in kinds else []
    cols += [t * (g == c) for c in trends]
    units = pd.get_dummies(panel["unit"]).to_numpy(float)
    periods = pd.get_dummies(t).to_numpy(float)[:, 1:]
    design = np.column_stack(cols + [units, periods])
    beta = np.linalg.lstsq(design, panel["y"].to_numpy(), rcond=None)[0]
    return dict(zip(keys, beta[:len(keys)]))


@pytest.mark.parametrize("kw,terms", [
    (dict(covariates=["x1"]), {"x1": ("cells", "level", "cohort", "period")}),
    (dict(exovar="x1"), {"x1": ("level",)}),
    (dict(xtvar=["x1"]), {"x1": ("cells", "level")}),
    (dict(xgvar=["x1"], exovar=["x2"]), {"x1": ("level", "cohort"), "x2": ("level",)}),
])
def test_covariate_roles_are_the_documented_regressions(kw, terms):
    panel = example_panel().assign(x2=lambda d: np.cos(d["unit"] * d["time"]))
    res = dd.ETWFE().fit(panel, "y", "unit", "time", "first_treat", **kw)
    cells = res.group_time_effects.set_index(["group", "time"])["estimate"]
    for key, value in _dummy_ols(panel, terms).items():
        assert cells[key] == pytest.approx(value, abs=1e-9)
    assert sorted(res.covariates) == sorted(terms)
    assert res.covariate_terms == {k: sorted(v) for k, v in terms.items()}


def test_covariate_invariants(mpdta):
    # treated-cell interactions alone leave the not-yet fit of the controls unchanged
    plain = dd.WooldridgeDiD().fit(mpdta, **MPDTA)
    het = dd.WooldridgeDiD().fit(mpdta, xtvar="lpop", **MPDTA)
    np.testing.assert_allclose(het.group_time_effects["estimate"],
                               plain.group_time_effects["estimate"], rtol=0, atol=1e-12)
    assert het.se != pytest.approx(plain.se, rel=1e-3)
    # shifting a control moves no cell (centred at the cell means; levels absorbed)
    full = dd.WooldridgeDiD().fit(mpdta, covariates=["lpop"], **MPDTA)
    shifted = dd.WooldridgeDiD().fit(mpdta.assign(lpop=mpdta["lpop"] + 7.0),
                                     covariates=["lpop"], **MPDTA)
    np.testing.assert_allclose(shifted.group_time_effects["estimate"],
                               full.group_time_effects["estimate"], rtol=0, atol=1e-10)
    assert full.att != pytest.approx(plain.att, abs=1e-4)
    # a role named twice is the union of its terms: xtvar + xgvar + (period terms) = covariates
    assert dd.WooldridgeDiD().fit(mpdta, xtvar="lpop", xgvar="lpop", **MPDTA).att == \
        pytest.approx(het.att, abs=1e-12)  # lpop is constant in county: cohort terms absorbed


def test_covariates_under_survey_designs():
    panel = example_panel()
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    base = dd.ETWFE().fit(panel, "y", "unit", "time", "first_treat", covariates=["x1"],
                          survey_design=design)
    scaled = dd.ETWFE().fit(panel.assign(weight=panel["weight"] * 3.0), "y", "unit", "time",
                            "first_treat", covariates=["x1"], survey_design=design)
    assert scaled.att == pytest.approx(base.att, rel=1e-10)
    assert scaled.se == pytest.approx(base.se, rel=1e-9)
    assert base.survey_metadata is not None and base.df is not None
    # the weighted cell means centre the interactions: a weighted cell is the weighted
    # average of the row effects b_gt + c_gt (x - centre)
    unweighted = dd.ETWFE().fit(panel, "y", "unit", "time", "first_treat", covariates=["x1"])
    assert base.att != pytest.approx(unweighted.att, abs=1e-6)
    data, rep = dd.as_replicate_design(panel, design, "JKn")
    replicate = dd.ETWFE().fit(data, "y", "unit", "time", "first_treat", covariates=["x1"],
                               survey_design=rep)
    assert replicate.att == pytest.approx(base.att, abs=1e-12)
    assert 0.6 < replicate.se / base.se < 1.6


def test_cohort_trends_recover_effects_under_cohort_specific_trends():
    rng = np.random.default_rng(3)
    n, periods = 120, np.arange(1, 8)
    g = np.array([0, 4, 5, 6])[np.arange(n) % 4]
    unit, t = np.repeat(np.arange(n), 7), np.tile(periods, n)
    gg = g[unit]
    slope = {0: 0.0, 4: 0.3, 5: -0.2, 6: 0.1}
    trend = np.array([slope[c] for c in gg]) * t
    tau = 1.0 + 0.5 * (t - gg)
    index = rng.normal(size=n)[unit] + 0.2 * t + trend + np.where((gg > 0) & (t >= gg), tau, 0)
    panel = pd.DataFrame({"unit": unit, "time": t, "first_treat": gg, "y": index})
    res = dd.WooldridgeDiD(cohort_trends=True).fit(panel, "y", "unit", "time", "first_treat")
    cells = res.group_time_effects
    np.testing.assert_allclose(cells["estimate"], 1.0 + 0.5 * cells["event_time"], atol=1e-9)
    assert res.cohort_trends and res.cohort_trend_coefs == pytest.approx(
        {4: 0.3, 5: -0.2, 6: 0.1}, abs=1e-9)
    plain = dd.WooldridgeDiD().fit(panel, "y", "unit", "time", "first_treat")
    assert abs(plain.att - res.att) > 0.1  # without trends: biased
    # Poisson on the exact mean exp(index): the QMLE recovers the index, trends included
    count = panel.assign(y=np.exp(index / 4))
    pois = dd.WooldridgeDiD(method="poisson", cohort_trends=True).fit(
        count, "y", "unit", "time", "first_treat")
    assert pois.cohort_trend_coefs == pytest.approx({4: 0.075, 5: -0.05, 6: 0.025}, abs=1e-8)
    with pytest.raises(ValueError, match="trend is not identified"):
        dd.WooldridgeDiD(cohort_trends=True, control_group="never_treated").fit(
            panel, "y", "unit", "time", "first_treat")
    with pytest.raises(ValueError, match="cohort 4 has 1 untreated period"):
        dd.WooldridgeDiD(cohort_trends=True).fit(panel[panel["time"] >= 3], "y", "unit",
                                                 "time", "first_treat")
    with pytest.raises(ValueError, match="cohort_trends must be True or False"):
        dd.WooldridgeDiD(cohort_trends="yes").fit(panel, "y", "unit", "time", "first_treat")


def test_bad_covariates_name_the_column(mpdta):
    with pytest.raises(ValueError, match="covariate column 'x' has 1 missing"):
        dd.WooldridgeDiD().fit(mpdta.assign(x=np.where(mpdta.index == 3, np.nan, 1.0)),
                               covariates=["x"], **MPDTA)
    with pytest.raises(ValueError, match="covariate column 'x' must be numeric"):
        dd.WooldridgeDiD().fit(mpdta.assign(x="a"), xgvar="x", **MPDTA)
    with pytest.raises(ValueError, match="'nope'"):
        dd.WooldridgeDiD().fit(mpdta, xtvar=["nope"], **MPDTA)
    with pytest.raises(TypeError, match="exovar must hold column names"):
        dd.WooldridgeDiD().fit(mpdta, exovar=[1], **MPDTA)


# ------------------------------------------------------------------ nonlinear
@pytest.fixture(scope="module")
def binary_panel():
    rng = np.random.default_rng(0)
    n, periods = 400, np.arange(1, 7)
    g = np.array([0, 3, 4, 5])[np.arange(n) % 4]
    a = rng.normal(size=n) * 0.5
    unit, t = np.repeat(np.arange(n), 6), np.tile(periods, n)
    gg = g[unit]
    eta = -0.5 + a[unit] + 0.1 * t + 0.2 * (gg > 0) + 0.5 * ((gg > 0) & (t >= gg))
    return pd.DataFrame({"unit": unit, "time": t, "first_treat": gg,
                         "y_bin": rng.binomial(1, 1 / (1 + np.exp(-eta))),
                         "y_count": rng.poisson(np.exp(eta)),
                         "w": np.repeat(rng.uniform(0.5, 2.0, n), 6),
                         "psu": unit // 4, "stratum": (unit // 4) % 5})


@pytest.mark.parametrize("method,outcome", [("logit", "y_bin"), ("poisson", "y_count")])
def test_nonlinear_cells_reproduce_the_cell_means(binary_panel, method, outcome):
    """The treated cells are saturated: G(eta_gt) equals the cell's mean outcome, so
    ATT(g, t) + G(eta_gt - tau_gt) is the observed mean of cohort g at t."""
    from diff_diff.estimators.wooldridge_nonlinear import _mean

    res = dd.WooldridgeDiD(method=method).fit(binary_panel, outcome, "unit", "time",
                                              "first_treat")
    means = binary_panel.groupby(["first_treat", "time"])[outcome].mean()
    cells = res.group_time_effects
    assert len(cells) == 9 and res.method == method
    from diff_diff.estimators.wooldridge import WooldridgeDiD
    from diff_diff.estimators.wooldridge_nonlinear import NonlinearETWFE
    est = NonlinearETWFE(WooldridgeDiD(method=method))
    sample = est._sample(binary_panel, dict(outcome=outcome, unit="unit", time="time",
                                            first_treat="first_treat"))
    problem = sample.arrays
    beta, _ = problem._beta(np.ones(problem.y.size))
    for j, (g, t) in enumerate(problem.labels):
        eta = problem.xp[problem.cell_pattern[j]] @ beta
        assert _mean(eta, method) == pytest.approx(means[(g, t)], rel=1e-9)
        counterfactual = _mean(eta - beta[problem.first_cell + j], method)
        row = cells[(cells["group"] == g) & (cells["time"] == t)].iloc[0]
        assert row["estimate"] == pytest.approx(means[(g, t)] - counterfactual, abs=1e-10)


@pytest.mark.parametrize("method,outcome", [("logit", "y_bin"), ("poisson", "y_count")])
def test_nonlinear_delta_method_by_finite_differences(binary_panel, method, outcome):
    """The influence values are H^-1 scores mapped by the ATT gradient: check the gradient
    numerically and the variance as the clustered sum of squares of the influence."""
    from diff_diff.estimators.wooldridge import WooldridgeDiD
    from diff_diff.estimators.wooldridge_nonlinear import NonlinearETWFE

    est = NonlinearETWFE(WooldridgeDiD(method=method))
    problem = est._sample(binary_panel, dict(outcome=outcome, unit="unit", time="time",
                                             first_treat="first_treat")).arrays
    beta, _ = problem._beta(np.ones(problem.y.size))
    att, grad = problem._att(beta)
    h = 1e-6
    for k in range(beta.size):
        step = np.zeros(beta.size)
        step[k] = h
        up = problem._att(beta + step)[0]
        down = problem._att(beta - step)[0]
        np.testing.assert_allclose(grad[:, k], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)
    n_units = binary_panel["unit"].nunique()
    _, psi, _ = problem.estimate(np.ones(n_units))
    res = dd.WooldridgeDiD(method=method).fit(binary_panel, outcome, "unit", "time",
                                              "first_treat")
    centred = psi - psi.mean(axis=0)
    vcov = centred.T @ centred * n_units / (n_units - 1)
    np.testing.assert_allclose(res.vcov.to_numpy(), vcov, rtol=1e-10)


def test_nonlinear_survey_and_errors(binary_panel):
    design = dd.SurveyDesign(weights="w", strata="stratum", psu="psu")
    res = dd.WooldridgeDiD(method="logit").fit(binary_panel, "y_bin", "unit", "time",
                                               "first_treat", survey_design=design)
    scaled = dd.WooldridgeDiD(method="logit").fit(binary_panel.assign(w=binary_panel["w"] * 4),
                                                  "y_bin", "unit", "time", "first_treat",
                                                  survey_design=design)
    assert scaled.att == pytest.approx(res.att, rel=1e-9)
    assert scaled.se == pytest.approx(res.se, rel=1e-8)
    assert res.df is not None and res.survey_metadata is not None
    data, rep = dd.as_replicate_design(binary_panel, design, "JKn")
    replicate = dd.WooldridgeDiD(method="logit").fit(data, "y_bin", "unit", "time",
                                                     "first_treat", survey_design=rep)
    assert replicate.att == pytest.approx(res.att, abs=1e-10)
    assert 0.6 < replicate.se / res.se < 1.6
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        dd.WooldridgeDiD(method="logit").fit(binary_panel, "y_count", "unit", "time",
                                             "first_treat")
    with pytest.raises(ValueError, match="not of full rank"):
        dd.WooldridgeDiD(method="poisson").fit(binary_panel.assign(c=2.0), "y_count", "unit",
                                               "time", "first_treat", exovar="c")
    with pytest.raises(ValueError, match="wild bootstrap is for the linear model"):
        dd.WooldridgeDiD(method="poisson", inference="wild_bootstrap").fit(
            binary_panel, "y_count", "unit", "time", "first_treat")


def test_time_invariant_covariates_are_dropped_with_a_warning(mpdta):
    """lpop is constant within county: the unit effects absorb it; it must be dropped as
    collinear, not kept as rounding noise with a wild coefficient."""
    with pytest.warns(UserWarning, match=r"\['lpop'\] are collinear"):
        res = dd.WooldridgeDiD().fit(mpdta, exovar=["lpop"], **MPDTA)
    assert res.att == pytest.approx(dd.WooldridgeDiD().fit(mpdta, **MPDTA).att, abs=1e-14)


def test_cr2_reports_bell_mccaffrey_df_for_every_aggregate(mpdta):
    res = dd.WooldridgeDiD(vcov_type="hc2_bm").fit(mpdta, **MPDTA)
    assert res.df is not None and 1 < res.df < 499
    for kind in ("group", "calendar", "event_study"):
        table = res.aggregate(kind)
        assert table["p_value"].notna().all()
    cells = res.group_time_effects
    cr1 = dd.WooldridgeDiD().fit(mpdta, **MPDTA).group_time_effects
    assert (cells["p_value"] != cr1["p_value"]).all()


def test_logit_without_variation_is_a_clear_error(binary_panel):
    flat = binary_panel.assign(y_bin=np.where(binary_panel["first_treat"] == 3, 1,
                                              binary_panel["y_bin"]))
    with pytest.raises(ValueError, match="perfect prediction"):
        dd.WooldridgeDiD(method="logit").fit(flat, "y_bin", "unit", "time", "first_treat")
    with pytest.raises(ValueError, match="does not vary"):
        dd.WooldridgeDiD(method="poisson").fit(binary_panel.assign(y_count=0), "y_count",
                                               "unit", "time", "first_treat")


# ------------------------------------------------------------------ nonlinear covariates
FIXTURE_PATH = Path(__file__).parents[1] / "parity" / "fixtures"


@pytest.fixture(scope="module")
def etwfe():
    return json.loads((FIXTURE_PATH / "etwfe_reference.json").read_text())


@pytest.fixture(scope="module")
def sim_panel():
    """The port's simulated panel with its integer-built covariates (add_sim_columns)."""
    sim = pd.read_csv(FIXTURE_PATH / "etwfe_sim_panel.csv")
    u, t = sim["unit"].astype(int), sim["time"].astype(int)
    return sim.assign(x=((u * 7 + t * 3) % 11 - 5) / 10.0, xc=(u % 7) / 3.0 - 1.0,
                      xd=(u % 3).astype(float))


ETWFE_KINDS = {"simple": None, "group": "group", "calendar": "calendar", "event": "event_study"}


def _against_etwfe(res, reference, se_ratio, atol=1e-10, rtol=1e-7, by_xvar=False):
    """Every emfx aggregation (``by_xvar``: its tables by the xvar's values) and its SE
    divided by ``se_ratio``; etwfe's never-treated event study lists the leads, compared
    on e >= 0."""
    theirs = reference["vcov_variants"]["cluster_unit"]["aggregations"]
    for kind, name in ETWFE_KINDS.items():
        ref = theirs[kind + ("_by_xvar" if by_xvar else "")]
        if by_xvar:
            table = res.aggregate(name or "simple", by_xvar=True)
        elif name is None:
            table = pd.DataFrame({"estimate": [res.att], "se": [res.se]})
        else:
            table = res.aggregate(name)
        est, se = table["estimate"].to_numpy(), table["se"].to_numpy()
        if kind == "event":
            keep = table["event_time"].to_numpy() >= 0
            est, se = est[keep], se[keep]
            ref_keep = np.asarray(ref["label"]) >= 0
            ref = {k: np.asarray(v)[ref_keep] for k, v in ref.items()}
        if by_xvar:
            np.testing.assert_array_equal(table[res.xvar].to_numpy()[keep if kind == "event"
                                                                     else slice(None)],
                                          ref[res.xvar])
        np.testing.assert_allclose(est, ref["estimate"], rtol=0, atol=atol)
        np.testing.assert_allclose(se / np.asarray(ref["std.error"], float), se_ratio,
                                   rtol=rtol)


def _glm_ratio(reference):
    """pyfixest's CRV1 on a GLM: G/(G-1) (n-1)/(n-k); ours (the design-based variance over
    the units) G/(G-1): the SEs differ by sqrt((n-k)/(n-1))."""
    theirs = reference["vcov_variants"]["cluster_unit"]
    n, k = reference["n_obs"], len(theirs["coefficients"]["estimate"])
    g = theirs["vcov"]["n_clusters"]
    assert theirs["vcov"]["ssc"] == pytest.approx(g / (g - 1) * (n - 1) / (n - k), rel=1e-12)
    return np.sqrt((n - k) / (n - 1))


@pytest.mark.parametrize("case,method,outcome,kw,control", [
    ("sim_logit_x", "logit", "y_bin", dict(covariates=["x"]), "not_yet_treated"),
    ("sim_poisson_x_xc", "poisson", "y_count", dict(covariates=["x", "xc"]),
     "not_yet_treated"),
    ("sim_logit_never_x", "logit", "y_bin", dict(covariates=["x"]), "never_treated")])
def test_nonlinear_covariates_match_etwfe(etwfe, sim_panel, case, method, outcome, kw,
                                          control):
    reference = etwfe["cases"][case]
    res = dd.WooldridgeDiD(method=method, control_group=control).fit(
        sim_panel, outcome, "unit", "time", "first_treat", **kw)
    _against_etwfe(res, reference, _glm_ratio(reference))
    assert res.covariates == kw["covariates"] and res.n_obs == reference["n_obs"]


def test_nonlinear_poisson_with_lpop_matches_etwfe_and_r(etwfe, mpdta):
    """R etwfe's m3p (emp ~ lpop, Poisson; also R's test values through the port)."""
    reference = etwfe["cases"]["mpdta_poisson_emp_lpop"]
    res = dd.WooldridgeDiD(method="poisson").fit(mpdta.assign(emp=np.exp(mpdta["lemp"])),
                                                 "emp", "countyreal", "year", "first.treat",
                                                 covariates=["lpop"])
    _against_etwfe(res, reference, _glm_ratio(reference), atol=1e-9)
    r = etwfe["r_crosscheck"]["r_values"]
    r_event = r[[k for k in r if k.startswith("m3p")][0]]["event"]
    np.testing.assert_allclose(res.aggregate("event_study")["estimate"], r_event["estimate"],
                               rtol=0, atol=5e-4)


def test_nonlinear_covariates_invariants_and_delta_method(sim_panel):
    from diff_diff.estimators.wooldridge import WooldridgeDiD, _covariate_terms
    from diff_diff.estimators.wooldridge_nonlinear import NonlinearETWFE

    kw = dict(outcome="y_count", unit="unit", time="time", first_treat="first_treat")
    panel = sim_panel.assign(w=1.0 + (sim_panel["unit"] % 4) / 3.0)
    before = panel.copy()
    design = dd.SurveyDesign(weights="w")
    base = dd.WooldridgeDiD(method="poisson").fit(panel, covariates=["x"], survey_design=design,
                                                  **kw)
    pd.testing.assert_frame_equal(panel, before)
    scaled = dd.WooldridgeDiD(method="poisson").fit(panel.assign(w=panel["w"] * 7.0),
                                                    covariates=["x"], survey_design=design,
                                                    **kw)
    shuffled = dd.WooldridgeDiD(method="poisson").fit(panel.sample(frac=1.0, random_state=1),
                                                      covariates=["x"], survey_design=design,
                                                      **kw)
    for other in (scaled, shuffled):
        np.testing.assert_allclose(other.group_time_effects["estimate"],
                                   base.group_time_effects["estimate"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(other.group_time_effects["se"],
                                   base.group_time_effects["se"], rtol=1e-8)
    # shifting the covariate is a reparametrisation: the ASF effects do not move
    shifted = dd.WooldridgeDiD(method="poisson").fit(panel.assign(x=panel["x"] + 3.0),
                                                     covariates=["x"], survey_design=design,
                                                     **kw)
    np.testing.assert_allclose(shifted.group_time_effects["estimate"],
                               base.group_time_effects["estimate"], rtol=1e-8, atol=1e-10)
    # the weighted cell is the weighted mean of the rows' G(eta) - G(eta0); the gradient
    est = NonlinearETWFE(WooldridgeDiD(method="poisson"),
                         _covariate_terms(["x", "xc"], None, None, None))
    problem = est._sample(panel, dict(kw, covariates=["x", "xc"])).arrays
    w_row = panel.groupby("unit")["w"].first().to_numpy()[problem.unit_of_row]
    beta = problem._beta(w_row)[0]
    att, grad = problem._att(beta, w_row)
    h = 1e-6
    for k in range(0, beta.size, 3):
        step = np.zeros(beta.size)
        step[k] = h
        numeric = (problem._att(beta + step, w_row)[0] - problem._att(beta - step, w_row)[0])
        np.testing.assert_allclose(grad[:, k], numeric / (2 * h), rtol=1e-5, atol=1e-8)
    # the score is zero at the estimate
    from diff_diff.estimators.wooldridge_nonlinear import _mean
    eta = problem._index(problem.blocks, beta)
    score = problem._moments(w_row * (problem.y - _mean(eta, "poisson")))
    assert np.max(np.abs(score)) < 1e-8 * problem.y.size


def test_nonlinear_covariates_under_survey_designs(sim_panel):
    panel = sim_panel.assign(w=1.0 + (sim_panel["unit"] % 4) / 3.0,
                             psu=sim_panel["unit"] // 4, stratum=(sim_panel["unit"] // 4) % 5)
    design = dd.SurveyDesign(weights="w", strata="stratum", psu="psu")
    kw = dict(outcome="y_bin", unit="unit", time="time", first_treat="first_treat",
              covariates=["x"])
    res = dd.WooldridgeDiD(method="logit").fit(panel, survey_design=design, **kw)
    assert res.df is not None and res.survey_metadata is not None
    data, rep = dd.as_replicate_design(panel, design, "JKn")
    replicate = dd.WooldridgeDiD(method="logit").fit(data, survey_design=rep, **kw)
    assert replicate.att == pytest.approx(res.att, abs=1e-10)
    assert 0.7 < replicate.se / res.se < 1.4


# ------------------------------------------------------------------ xvar
def _mpdta_xd(mpdta):
    county, year = mpdta["countyreal"].astype(int), mpdta["year"].astype(int)
    return mpdta.assign(xtv=mpdta["lpop"] + 0.05 * ((county * 7 + year * 3) % 11 - 5),
                        xd=(county % 3).astype(float))


@pytest.mark.parametrize("case,control,covariates", [
    ("mpdta_notyet_xvar_xd_unitfe", "not_yet_treated", None),
    ("mpdta_never_xvar_xd_unitfe", "never_treated", None),
    ("mpdta_notyet_xtv_xvar_xd_unitfe", "not_yet_treated", ["xtv"])])
def test_xvar_matches_etwfe(etwfe, mpdta, case, control, covariates):
    """etwfe's xvar (ivar= unit effects): the aggregations and the ones by the values of
    xd to 1e-12; SEs: CR1 with our K (the unit effects counted) against fixest's."""
    reference = etwfe["cases"][case]
    res = dd.WooldridgeDiD(control_group=control).fit(_mpdta_xd(mpdta), covariates=covariates,
                                                      xvar="xd", **MPDTA)
    theirs = reference["vcov_variants"]["cluster_unit"]
    n, k_fixest = reference["n_obs"], theirs["vcov"]["df_k"]
    n_coef = len(theirs["coefficients"]["estimate"])
    assert k_fixest == n_coef + 5  # the nested unit effects count once, plus 4 periods
    ratio = np.sqrt((n - k_fixest) / (n - (n_coef + 500 + 4)))
    _against_etwfe(res, reference, ratio, atol=1e-12, rtol=1e-9)
    _against_etwfe(res, reference, ratio, atol=1e-12, rtol=1e-9, by_xvar=True)
    assert res.xvar == "xd"


def test_xvar_invariants_and_errors(mpdta):
    data = _mpdta_xd(mpdta).assign(w=lambda d: 1.0 + (d["countyreal"] % 4) / 3.0)
    before = data.copy()
    design = dd.SurveyDesign(weights="w")
    base = dd.WooldridgeDiD().fit(data, xvar="xd", survey_design=design, **MPDTA)
    pd.testing.assert_frame_equal(data, before)
    scaled = dd.WooldridgeDiD().fit(data.assign(w=data["w"] * 5.0), xvar="xd",
                                    survey_design=design, **MPDTA)
    shuffled = dd.WooldridgeDiD().fit(data.sample(frac=1.0, random_state=4), xvar="xd",
                                      survey_design=design, **MPDTA)
    for other in (scaled, shuffled):
        for by in (False, True):
            a, b = other.aggregate("group", by_xvar=by), base.aggregate("group", by_xvar=by)
            np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=0, atol=1e-12)
            np.testing.assert_allclose(a["se"], b["se"], rtol=1e-9)
    assert "Heterogeneity (xvar):" in base.summary() and "xd (aggregate" in base.summary()
    # each cell is the weighted mean of its values' effects
    by = base.aggregate("simple", by_xvar=True)
    assert np.average(by["estimate"], weights=data[data["first.treat"].between(
        1, data["year"].max()) & (data["year"] >= data["first.treat"])].groupby("xd")["w"].sum()
    ) == pytest.approx(base.att, abs=1e-12)
    with pytest.raises(ValueError, match="also given a role with cell interactions"):
        dd.WooldridgeDiD().fit(data, covariates=["xd"], xvar="xd", **MPDTA)
    with pytest.raises(TypeError, match="xvar must be one column name"):
        dd.WooldridgeDiD().fit(data, xvar=["xd"], **MPDTA)
    with pytest.raises(ValueError, match="needs a fit with xvar"):
        dd.WooldridgeDiD().fit(data, **MPDTA).aggregate("group", by_xvar=True)
    lpop = dd.WooldridgeDiD().fit(data, xvar="lpop", **MPDTA)
    with pytest.raises(ValueError, match="too many distinct values"):
        lpop.aggregate("simple", by_xvar=True)
    with pytest.raises(ValueError, match="weights='cell' only"):
        base.aggregate("group", weights="cohort_share", by_xvar=True)


# ------------------------------------------------------------------ demean_covariates
@pytest.mark.parametrize("method,outcome", [("ols", "y_count"), ("logit", "y_bin"),
                                            ("poisson", "y_count")])
def test_demean_covariates_false_against_v313(sim_panel, method, outcome):
    """3.13.0 with demean_covariates=False and xtvar=["x"] fits our covariates=["x"] model
    (tests/parity/ports/wooldridge_v313.py). Logit/Poisson: the same ATT(g, t); SEs differ
    by 3.13's (n-1)/(n-k) factor. OLS: 3.13 reports the cell coefficients (effects at
    x = 0), which are our cell_coefficients; our ATT is the cells' mean effect, the same
    under either setting."""
    v313 = json.loads((FIXTURE_PATH / "wooldridge_v313.json").read_text())
    theirs = v313["cases"][method]["demean_false"]
    kw = dict(outcome=outcome, unit="unit", time="time", first_treat="first_treat",
              covariates=["x"])
    raw = dd.WooldridgeDiD(method=method, demean_covariates=False).fit(sim_panel, **kw)
    centred = dd.WooldridgeDiD(method=method).fit(sim_panel, **kw)
    cells = raw.group_time_effects.set_index(["group", "time"])
    keys = list(zip(theirs["g"], theirs["t"]))
    np.testing.assert_allclose(raw.group_time_effects["estimate"],
                               centred.group_time_effects["estimate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(raw.group_time_effects["se"],
                               centred.group_time_effects["se"], rtol=1e-9)
    if method == "ols":
        coef = raw.cell_coefficients.set_index(["group", "time"])["coefficient"]
        np.testing.assert_allclose([coef[k] for k in keys], theirs["att"], rtol=0, atol=1e-12)
        # the centred coefficients are the ATTs; the raw ones are not
        np.testing.assert_allclose(centred.cell_coefficients["coefficient"],
                                   centred.group_time_effects["estimate"], atol=1e-12)
        assert np.max(np.abs(raw.cell_coefficients["coefficient"]
                             - raw.group_time_effects["estimate"])) > 1e-3
        return
    np.testing.assert_allclose([cells.loc[k, "estimate"] for k in keys], theirs["att"],
                               rtol=0, atol=1e-10)
    assert raw.att == pytest.approx(theirs["overall_att"], abs=1e-10)
    n, k = theirs["n_obs"], 36  # 1 + 3 cohorts + 5 periods + 9 cells, 9 + 1 + 3 + 5 x terms
    np.testing.assert_allclose(np.array([cells.loc[c, "se"] for c in keys])
                               * np.sqrt((n - 1) / (n - k)), theirs["se"], rtol=1e-7)
    assert raw.cell_coefficients is None
    with pytest.raises(ValueError, match="demean_covariates must be True or False"):
        dd.WooldridgeDiD(method=method, demean_covariates=0).fit(sim_panel, **kw)


def test_nonlinear_xvar_matches_etwfe(etwfe, sim_panel):
    """etwfe's xvar with family='poisson' (cohort effects): every aggregation and every
    aggregation by the values of xd to 1e-10, SEs theirs x sqrt((n-k)/(n-1))."""
    reference = etwfe["cases"]["sim_poisson_xvar_xd"]
    kw = dict(outcome="y_count", unit="unit", time="time", first_treat="first_treat",
              xvar="xd")
    res = dd.WooldridgeDiD(method="poisson").fit(sim_panel, **kw)
    ratio = _glm_ratio(reference)
    _against_etwfe(res, reference, ratio)
    _against_etwfe(res, reference, ratio, by_xvar=True)
    # weights scale and row order leave the effects by value unchanged
    panel = sim_panel.assign(w=1.0 + (sim_panel["unit"] % 4) / 3.0)
    design = dd.SurveyDesign(weights="w")
    base = dd.WooldridgeDiD(method="poisson").fit(panel, survey_design=design, **kw)
    for other in (panel.assign(w=panel["w"] * 3.0), panel.sample(frac=1.0, random_state=5)):
        again = dd.WooldridgeDiD(method="poisson").fit(other, survey_design=design, **kw)
        a, b = again.aggregate("event_study", by_xvar=True), base.aggregate(
            "event_study", by_xvar=True)
        np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a["se"], b["se"], rtol=1e-8)
