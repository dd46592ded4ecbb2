"""TripleDifference, staggered design: ATT(g, t) by hand from weighted cell means (one
comparison cohort and the GMM combination of several), errors and warnings, invariances,
survey designs (Taylor against survey_total, replicate refits against fits on the
replicate weights, the bootstrap) and the diff-diff 3.x call forms. Parity with
moderndid's port of R triplediff: tests/parity/test_triple_staggered_moderndid.py."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diff_diff as dd
from diff_diff.datasets import example_panel

KW = dict(outcome="y", partition="eligible", unit="unit", time="time", first_treat="first_treat")
TAYLOR = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")


@pytest.fixture(scope="module")
def panel():
    return example_panel(n_units=120)  # cohorts 3, 4, 5 and never; periods 1..6


@pytest.fixture(scope="module")
def weighted(panel):
    """Not-yet-treated comparisons, pweights only: the fit most tests read."""
    return dd.TripleDifference().fit(panel, survey_design=dd.SurveyDesign(weights="weight"),
                                     **KW)


def _units(panel):
    wide = panel.pivot(index="unit", columns="time", values="y")
    first = panel.groupby("unit")[["first_treat", "eligible", "weight"]].first()
    return wide, first


def _ddd_by_hand(panel, g, k, t, base):
    """The cell-mean DDD of cohort g against cohort k (0: never) from ``base`` to ``t`` and
    its influence values (sum scale): +A - B - C + D, each ``w (dy - mean) / sum w``."""
    wide, first = _units(panel)
    dy = (wide[t] - wide[base]).to_numpy()
    w, ft, q = (first[c].to_numpy() for c in ("weight", "first_treat", "eligible"))
    att, psi = 0.0, np.zeros(len(first))
    for cohort, elig, sign in ((g, 1, 1.0), (g, 0, -1.0), (k, 1, -1.0), (k, 0, 1.0)):
        m = (ft == cohort) & (q == elig)
        mean = np.average(dy[m], weights=w[m])
        att += sign * mean
        psi[m] = sign * w[m] * (dy[m] - mean) / w[m].sum()
    return att, psi


def _cell(res, g, t):
    gt = res.group_time_effects
    return gt[(gt["group"] == g) & (gt["time"] == t)].iloc[0]


def test_never_treated_comparison_is_the_weighted_cell_mean_ddd(panel):
    res = dd.TripleDifference(control_group="never_treated").fit(
        panel, survey_design=dd.SurveyDesign(weights="weight"), **KW)
    n = panel["unit"].nunique()
    for g, t, base in ((4, 5, 3), (4, 3, 2), (3, 6, 2)):  # post: base g - 1; pre: t - 1
        att, psi = _ddd_by_hand(panel, g, 0, t, base)
        row = _cell(res, g, t)
        assert row["estimate"] == pytest.approx(att, abs=1e-12)
        assert row["se"] == pytest.approx(np.sqrt(n / (n - 1) * (psi ** 2).sum()), rel=1e-10)
    assert res.gmm_weights[(4, 5)] == {0: 1.0}
    assert set(res.comparison_group_counts.values()) == {1}


def test_not_yet_treated_cells_combine_the_cohort_ddds_by_gmm(panel, weighted):
    """Cell (3, 3): the never treated and cohorts 4 and 5 are not yet treated in 2 and 3."""
    atts, cols = zip(*(_ddd_by_hand(panel, 3, k, 3, 2) for k in (0, 4, 5)))
    omega = np.column_stack(cols).T @ np.column_stack(cols)
    z = np.linalg.solve(omega, np.ones(3))
    w = z / z.sum()
    got = weighted.gmm_weights[(3, 3)]
    np.testing.assert_allclose([got[0], got[4], got[5]], w, rtol=1e-10)
    effects = weighted.comparison_effects.query("group == 3 and time == 3")
    np.testing.assert_allclose(effects["estimate"], atts, atol=1e-12)
    row = _cell(weighted, 3, 3)
    assert row["estimate"] == pytest.approx(w @ np.array(atts), abs=1e-12)
    n = panel["unit"].nunique()
    psi = np.column_stack(cols) @ w
    assert row["se"] == pytest.approx(np.sqrt(n / (n - 1) * (psi ** 2).sum()), rel=1e-10)
    # the minimum-variance combination: no single comparison is more precise
    singles = [np.sqrt(n / (n - 1) * (c ** 2).sum()) for c in cols]
    assert row["se"] <= min(singles)
    assert row["n_comparisons"] == 3 and weighted.comparison_group_counts[(3, 3)] == 3


def test_with_a_single_comparison_cohort_gmm_is_the_plain_ddd(panel):
    two = panel[panel["first_treat"].isin([0, 4])]
    nyt = dd.TripleDifference(control_group="not_yet_treated").fit(two, **KW)
    nt = dd.TripleDifference(control_group="never_treated").fit(two, **KW)
    pd.testing.assert_frame_equal(nyt.group_time_effects, nt.group_time_effects)
    assert all(w == {0: 1.0} for w in nyt.gmm_weights.values())


def test_aggregations_weight_cohorts_by_their_eligible_units(weighted, panel):
    _, first = _units(panel)
    elig = first[(first["eligible"] == 1) & (first["first_treat"] > 0)]
    share = elig.groupby("first_treat")["weight"].sum()
    gt = weighted.group_time_effects
    post = gt[gt["post"]]
    pg = share.reindex(post["group"]).to_numpy()
    assert weighted.att == pytest.approx(pg @ post["estimate"].to_numpy() / pg.sum(), abs=1e-12)
    es = weighted.event_study_effects
    assert weighted.overall_att_es == pytest.approx(es[es["event_time"] >= 0]["estimate"].mean())
    assert weighted.aggregate("group").effects["group"].tolist() == [3, 4, 5]
    assert weighted.n_treated_units == len(elig)
    assert weighted.n_never_enabled == (first["first_treat"] == 0).sum()


ERRORS = [
    (lambda p: p.assign(eligible=p["eligible"] * 2), {}, r"partition column 'eligible' must "
     r"be 0/1"),
    (lambda p: p.assign(eligible=np.where(p.index == 3, np.nan, p["eligible"])), {},
     "partition column 'eligible' has 1 missing values"),
    (lambda p: p.assign(eligible=np.where(p.index == 3, 1 - p["eligible"], p["eligible"])), {},
     "partition column 'eligible' varies within unit"),
    (lambda p: p.assign(eligible=np.where(p["first_treat"] == 4, 1, p["eligible"])), {},
     r"cohort first_treat=4 has no ineligible unit \('eligible' = 0\)"),
    (lambda p: p[p["first_treat"] > 0], {"control_group": "never_treated"},
     "no never-treated units .* use control_group='not_yet_treated'"),
    (lambda p: p.drop(index=[5]), {}, r"the panel is unbalanced: 1 of 120 units lack the "
     r"outcome in some of the 6 periods \(e.g. unit 0\)"),
    (lambda p: p.assign(first_treat=0), {}, "no unit is treated"),
]


@pytest.mark.parametrize("mutate,settings_,match", ERRORS)
def test_bad_input_gets_a_clear_error(panel, mutate, settings_, match):
    with pytest.raises(ValueError, match=match):
        dd.TripleDifference(**settings_).fit(mutate(panel), **KW)


def test_the_two_designs_do_not_mix(panel):
    with pytest.raises(ValueError, match="group= and post= describe the two-period design"):
        dd.DDD().fit(panel, group="treated", post="post", **KW)
    with pytest.raises(ValueError, match="needs unit=, time=, first_treat= and partition=; "
                                         "missing unit=, time="):
        dd.DDD().fit(panel, outcome="y", partition="eligible", first_treat="first_treat")
    with pytest.raises(ValueError, match="base_period='universal' applies to the staggered"):
        dd.DDD(base_period="universal").fit(panel, outcome="y", group="treated",
                                            partition="eligible", post="post")
    with pytest.raises(ValueError, match="missing post="):
        dd.DDD().fit(panel, outcome="y", group="treated", partition="eligible")


def test_without_never_treated_units_the_last_cohort_is_the_comparison(panel):
    with pytest.warns(UserWarning, match="cohort 5 .* serves as the comparison group .* "
                                         "periods from 5 on"):
        res = dd.DDD().fit(panel[panel["first_treat"] > 0], **KW)
    gt = res.group_time_effects
    assert set(gt["group"]) == {3, 4} and gt["time"].max() == 4
    assert res.comparison_cohort == 5 and res.n_obs == 4 * res.n_units
    assert res.n_never_enabled == 0
    assert res.gmm_weights[(3, 3)].keys() == {5, 4}  # cohort 5 listed as itself


def test_cells_that_cannot_be_estimated_are_warned_about(panel):
    x = np.where(panel["first_treat"] == 5, 1.0, np.random.default_rng(0).normal(size=len(panel)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = dd.DDD(estimation_method="reg").fit(panel.assign(c=x), covariates=["c"], **KW)
    text = " | ".join(str(w.message) for w in caught)
    assert "5 cell(s) not estimable and left out: (g=5, t=2) against the never treated" in text
    assert "estimated without some comparison cohorts: (g=3, t=2) against cohort 5" in text
    assert np.isfinite(res.att) and res.group_time_effects["estimate"].isna().sum() == 5


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 1e3))
def test_weight_scale_and_row_order_change_nothing(seed, scale):
    data = example_panel(n_units=60, seed=seed % 7)
    w = np.random.default_rng(seed).uniform(0.5, 2.0, 60)
    data = data.assign(weight=w[data["unit"]])
    design = dd.SurveyDesign(weights="weight")
    base = dd.DDD().fit(data, survey_design=design, **KW)
    before = data.copy(deep=True)
    scaled = dd.DDD().fit(data.assign(weight=data["weight"] * scale), survey_design=design, **KW)
    shuffled = dd.DDD().fit(data.sample(frac=1.0, random_state=seed), survey_design=design, **KW)
    pd.testing.assert_frame_equal(data, before)  # the input is never modified
    for other in (scaled, shuffled):
        pd.testing.assert_frame_equal(other.group_time_effects, base.group_time_effects,
                                      rtol=1e-9, atol=1e-12)
        assert (other.att, other.se) == pytest.approx((base.att, base.se), rel=1e-9)


def test_taylor_linearization_is_the_survey_total_of_the_influence_values(panel):
    res = dd.DDD().fit(panel, survey_design=TAYLOR, **KW)
    psi = res.aggregate("simple").influence_functions[:, -1]
    units = panel.groupby("unit").first().reset_index()
    total = dd.survey_total(units.assign(z=psi / units["weight"]), "z", TAYLOR)
    assert res.se == pytest.approx(float(total["se"].iloc[0]), rel=1e-10)
    assert res.df == 60 - 6  # PSUs minus strata


def test_replicate_weights_refit_everything_under_each_replicate(panel):
    data, design = dd.as_replicate_design(panel, TAYLOR, "JKn")
    res = dd.DDD().fit(data, survey_design=design, **KW)
    assert res.att == pytest.approx(dd.DDD().fit(panel, survey_design=TAYLOR, **KW).att)
    replicates = res._inference.replicates  # (R, cells + cohort shares)
    for r in (0, 7):
        refit = dd.DDD().fit(data, survey_design=dd.SurveyDesign(
            weights=design.replicate_weights[r]), **KW)
        np.testing.assert_allclose(replicates[r, :15], refit.group_time_effects["estimate"],
                                   atol=1e-12)  # cells, with GMM weights re-estimated
        np.testing.assert_allclose(replicates[r, 15:], refit._pg, rtol=1e-12)  # cohort shares
    assert np.isfinite(res.se) and res.df == 54.0


def test_covariates_under_survey_designs(panel):
    data, design = dd.as_replicate_design(panel, dd.SurveyDesign(weights="weight",
                                                                 psu="stratum"), "JK1")
    res = dd.DDD().fit(data, survey_design=design, covariates=["x1"], **KW)
    refit = dd.DDD().fit(data, survey_design=dd.SurveyDesign(
        weights=design.replicate_weights[2]), covariates=["x1"], **KW)
    np.testing.assert_allclose(res._inference.replicates[2, :15],
                               refit.group_time_effects["estimate"], atol=1e-12)
    taylor = dd.DDD().fit(panel, survey_design=TAYLOR, covariates=["x1"], **KW)
    assert taylor.att == res.att and np.isfinite([res.se, taylor.se]).all()


def test_multiplier_bootstrap_with_uniform_bands(panel):
    res = dd.DDD(n_bootstrap=199, seed=3).fit(panel, survey_design=TAYLOR, **KW)
    analytic = dd.DDD().fit(panel, survey_design=TAYLOR, **KW)
    assert res.att == analytic.att and res.se == pytest.approx(analytic.se, rel=0.3)
    es = res.event_study_effects
    assert {"cband_low", "cband_high"} <= set(es.columns)
    assert (es["cband_high"] - es["cband_low"] > es["conf_high"] - es["conf_low"]).all()
    again = dd.DDD(n_bootstrap=199, seed=3).fit(panel, survey_design=TAYLOR, **KW)
    assert again.se == res.se


def test_universal_base_period_and_anticipation(panel):
    res = dd.DDD(base_period="universal", control_group="never_treated").fit(panel, **KW)
    assert _cell(res, 4, 3)["estimate"] == 0.0  # the reference period g - 1
    w1 = panel.assign(weight=1.0)
    att, _ = _ddd_by_hand(w1, 4, 0, 2, 3)
    assert _cell(res, 4, 2)["estimate"] == pytest.approx(att, abs=1e-12)
    ant = dd.DDD(anticipation=1, control_group="never_treated").fit(panel, **KW)
    att, _ = _ddd_by_hand(w1, 4, 0, 5, 2)  # base period g - 1 - anticipation
    assert _cell(ant, 4, 5)["estimate"] == pytest.approx(att, abs=1e-12)


def test_the_3x_class_and_keywords_still_work(panel, weighted):
    with pytest.warns(FutureWarning, match="StaggeredTripleDifference is deprecated"):
        est = dd.SDDD(control_group="notyettreated")
    assert dd.SDDD is dd.StaggeredTripleDifference
    res = est.fit(panel, "y", "unit", "time", "first_treat", "eligible",
                  survey_design=dd.SurveyDesign(weights="weight"))
    assert type(res).__name__ == "StaggeredTripleDiffResults"
    pd.testing.assert_frame_equal(res.group_time_effects, weighted.group_time_effects)
    with pytest.warns(FutureWarning, match=r"results.aggregate"):
        res = dd.DDD().fit(panel, aggregate="all", balance_e=1, **KW)
    assert res.event_study_effects[0]["effect"] == pytest.approx(
        res.aggregate("event_study", balance_e=1).effects.set_index("event_time").loc[0,
                                                                                "estimate"])
    assert res.group_effects[4]["se"] > 0
    for name in ("n_treated_units", "n_control_units", "n_never_enabled", "n_eligible",
                 "n_ineligible", "groups", "time_periods", "overall_conf_int_es"):
        assert getattr(res, name) is not None


def test_summary_reads_clearly_and_results_pickle(weighted):
    text = weighted.summary()
    for part in ("Staggered triple differences", "Comparison cohorts:",
                 "not yet treated, one DDD each; pooled by GMM in 8 of 15 cells",
                 "Treated units:", "63: the eligible units of cohorts 3, 4, 5",
                 "ATT (simple)", "ATT (event-study avg)", "Event study", "Survey design"):
        assert part in text, part
    back = pickle.loads(pickle.dumps(weighted))
    assert back.summary() == text
    assert "Staggered triple-difference aggregation" in weighted.aggregate("group").summary()


# ---------------------------------------------------------------------------
# repeated cross-sections (panel=False) and unbalanced panels (allow_unbalanced_panel)
# ---------------------------------------------------------------------------
RC = dict(outcome="y", partition="eligible", time="time", first_treat="first_treat")
ROW_TAYLOR = dd.SurveyDesign(weights="w_row", strata="stratum", psu="psu", fpc="fpc")


@pytest.fixture(scope="module")
def rows(panel):
    """70% of the panel's rows (an unbalanced panel; as cross-sections, independent
    observations) with a weight that varies by row."""
    out = panel.sample(frac=0.7, random_state=5).sort_values(["unit", "time"])
    out = out.reset_index(drop=True)
    return out.assign(w_row=np.random.default_rng(5).uniform(0.5, 2.0, len(out)))


def _rc_ddd_by_hand(rows, g, t, base, weight):
    """The cell-mean DDD of cohort g against the never treated from repeated
    cross-sections and its influence values (sum scale, one per row): sixteen weighted
    means, each observation ``+- w (y - mean) / sum w`` of its (cohort, partition,
    period) cell."""
    att, psi = 0.0, np.zeros(len(rows))
    ft, q, tt = (rows[c].to_numpy() for c in ("first_treat", "eligible", "time"))
    y, w = rows["y"].to_numpy(), rows[weight].to_numpy()
    for cohort, elig, sign in ((g, 1, 1.0), (g, 0, -1.0), (0, 1, -1.0), (0, 0, 1.0)):
        for period, s in ((t, sign), (base, -sign)):
            m = (ft == cohort) & (q == elig) & (tt == period)
            mean = np.average(y[m], weights=w[m])
            att += s * mean
            psi[m] = s * w[m] * (y[m] - mean) / w[m].sum()
    return att, psi


def test_repeated_cross_sections_are_the_weighted_cell_mean_ddd(rows):
    res = dd.DDD(control_group="never_treated", panel=False).fit(
        rows, survey_design=dd.SurveyDesign(weights="w_row"), **RC)
    n = len(rows)
    assert res.n_units == n and res.n_obs == n
    for g, t, base in ((4, 5, 3), (3, 6, 2), (5, 3, 2)):
        att, psi = _rc_ddd_by_hand(rows, g, t, base, "w_row")
        row = _cell(res, g, t)
        assert row["estimate"] == pytest.approx(att, abs=1e-12)
        assert row["se"] == pytest.approx(np.sqrt(n / (n - 1) * (psi ** 2).sum()), rel=1e-10)
    # unit= is not needed and not used with panel=False
    with_unit = dd.DDD(control_group="never_treated", panel=False).fit(
        rows, unit="unit", survey_design=dd.SurveyDesign(weights="w_row"), **RC)
    pd.testing.assert_frame_equal(with_unit.group_time_effects, res.group_time_effects)


def test_an_unbalanced_panel_sums_the_influence_values_by_unit(panel, rows):
    """Cells as the cross-section estimator on the same rows; standard errors those of the
    cross-sections clustered by unit (a unit's observations are not independent)."""
    est = dd.DDD(control_group="never_treated", allow_unbalanced_panel=True)
    unbalanced = est.fit(rows, survey_design=dd.SurveyDesign(weights="weight"), unit="unit",
                         **RC)
    rc = dd.DDD(control_group="never_treated", panel=False).fit(
        rows, survey_design=dd.SurveyDesign(weights="weight", psu="unit"), **RC)
    a, b = unbalanced.group_time_effects, rc.group_time_effects
    np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-10)
    assert unbalanced.n_units == rows["unit"].nunique() and unbalanced.n_obs == len(rows)
    assert unbalanced.used_rc_on_unbalanced_panel and not rc.used_rc_on_unbalanced_panel
    assert "Data:                           unbalanced panel (repeated cross-section" in \
        unbalanced.summary()
    assert "repeated cross-sections (units = observations)" in rc.summary() and not rc.panel
    # a balanced panel takes the panel estimators, as R did and moderndid do
    balanced = est.fit(panel, **KW)
    pd.testing.assert_frame_equal(balanced.group_time_effects,
                                  dd.DDD(control_group="never_treated").fit(
                                      panel, **KW).group_time_effects)


def test_rows_errors_name_the_option(panel, rows):
    with pytest.raises(ValueError, match="the panel is unbalanced: .* pass "
                                         "allow_unbalanced_panel=True"):
        dd.DDD().fit(rows, unit="unit", **RC)
    with pytest.raises(ValueError, match=r"needs unit=, time=, first_treat= and partition=; "
                                         r"missing unit= \(repeated cross-sections need no "
                                         r"unit=: pass panel=False\)"):
        dd.DDD().fit(rows, **RC)
    with pytest.raises(ValueError, match="allow_unbalanced_panel=True applies to the "
                                         "staggered design"):
        dd.DDD(allow_unbalanced_panel=True).fit(panel, outcome="y", group="treated",
                                                partition="eligible", post="post")
    with pytest.raises(ValueError, match="panel must be one of"):
        dd.DDD(panel="no").fit(rows, unit="unit", **RC)
    flipped = rows.assign(eligible=np.where(rows.index == 3, 1 - rows["eligible"],
                                            rows["eligible"]))
    with pytest.raises(ValueError, match="partition column 'eligible' varies within unit"):
        dd.DDD(allow_unbalanced_panel=True).fit(flipped, unit="unit", **RC)
    one_cohort = rows[~((rows["first_treat"] == 4) & (rows["eligible"] == 0))]
    with pytest.raises(ValueError, match="cohort first_treat=4 has no ineligible unit"):
        dd.DDD(panel=False).fit(one_cohort, **RC)


def test_rows_invariances(rows):
    design = dd.SurveyDesign(weights="w_row")
    est = dd.DDD(panel=False)  # not yet treated: GMM over comparison cohorts
    before = rows.copy(deep=True)
    base = est.fit(rows, survey_design=design, covariates=["x1"], **RC)
    pd.testing.assert_frame_equal(rows, before)
    scaled = est.fit(rows.assign(w_row=rows["w_row"] * 37.0), survey_design=design,
                     covariates=["x1"], **RC)
    shuffled = est.fit(rows.sample(frac=1.0, random_state=2), survey_design=design,
                       covariates=["x1"], **RC)
    for other in (scaled, shuffled):
        pd.testing.assert_frame_equal(other.group_time_effects, base.group_time_effects,
                                      rtol=1e-9, atol=1e-12)
        assert (other.att, other.se) == pytest.approx((base.att, base.se), rel=1e-9)


def test_rows_under_survey_designs(panel, rows):
    """Taylor linearization over the rows' strata and PSUs is the survey total of the
    influence values; replicate designs refit every cell (GMM weights included); the PSU
    multiplier bootstrap."""
    res = dd.DDD(panel=False).fit(rows, survey_design=ROW_TAYLOR, **RC)
    psi = res.aggregate("simple").influence_functions[:, -1]
    total = dd.survey_total(rows.assign(z=psi / rows["w_row"]), "z", ROW_TAYLOR)
    assert res.se == pytest.approx(float(total["se"].iloc[0]), rel=1e-10)
    assert res.df == 60 - 6
    dense = panel.assign(w_row=np.random.default_rng(6).uniform(0.5, 2.0, len(panel)))
    res = dd.DDD(panel=False).fit(dense, survey_design=dd.SurveyDesign(weights="w_row"), **RC)
    data, design = dd.as_replicate_design(dense, dd.SurveyDesign(weights="w_row",
                                                                 psu="stratum"), "JK1")
    rep = dd.DDD(panel=False).fit(data, survey_design=design, **RC)
    assert rep.att == pytest.approx(res.att, abs=1e-12) and np.isfinite(rep.se)
    k = res.group_time_effects.shape[0]
    refit = dd.DDD(panel=False).fit(data, survey_design=dd.SurveyDesign(
        weights=design.replicate_weights[4]), **RC)
    np.testing.assert_allclose(rep._inference.replicates[4, :k],
                               refit.group_time_effects["estimate"], atol=1e-12)
    np.testing.assert_allclose(rep._inference.replicates[4, k:], refit._pg, rtol=1e-12)
    assert rep.df == 5  # JK1 on 6 PSUs
    taylor = dd.DDD(panel=False).fit(rows, survey_design=ROW_TAYLOR, **RC)
    boot = dd.DDD(panel=False, n_bootstrap=199, seed=4).fit(rows, survey_design=ROW_TAYLOR,
                                                           **RC)
    assert boot.att == taylor.att and boot.se == pytest.approx(taylor.se, rel=0.3)


def test_two_period_panel_false_is_the_cross_section_fit(panel):
    two = panel[panel["time"].isin([2, 5])].assign(post=lambda d: (d["time"] == 5) * 1)
    kw = dict(outcome="y", group="treated", partition="eligible", post="post")
    a = dd.DDD(panel=False).fit(two, unit="unit", **kw)
    b = dd.DDD().fit(two, **kw)
    assert (a.att, a.se) == (b.att, b.se)


def test_rows_without_never_treated_units_compare_with_the_last_cohort(rows):
    with pytest.warns(UserWarning, match="cohort 5 .* serves as the comparison group .* "
                                         "periods from 5 on"):
        res = dd.DDD(panel=False).fit(rows[rows["first_treat"] > 0], **RC)
    gt = res.group_time_effects
    assert set(gt["group"]) == {3, 4} and gt["time"].max() == 4
    assert res.comparison_cohort == 5 and res.n_never_enabled == 0
    kept = rows[(rows["first_treat"] > 0) & (rows["time"] < 5)]
    assert res.n_obs == res.n_units == len(kept)  # the left-out periods' rows are gone
    assert res.gmm_weights[(3, 3)].keys() == {5, 4}


def test_rows_with_missing_values_are_dropped_and_weights_stay_with_their_rows(rows):
    gap = rows.assign(y=np.where(rows.index.isin([0, 7, 8]), np.nan, rows["y"]))
    for est, unit, design in ((dd.DDD(panel=False), None, "w_row"),
                              (dd.DDD(allow_unbalanced_panel=True), "unit", "weight")):
        with pytest.warns(UserWarning, match="dropped 3 row"):
            res = est.fit(gap, unit=unit, survey_design=dd.SurveyDesign(weights=design), **RC)
        clean = est.fit(gap.dropna(subset=["y"]), unit=unit,
                        survey_design=dd.SurveyDesign(weights=design), **RC)
        pd.testing.assert_frame_equal(res.group_time_effects, clean.group_time_effects)
        assert (res.att, res.se) == (clean.att, clean.se)
