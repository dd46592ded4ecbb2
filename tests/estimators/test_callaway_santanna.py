"""CallawaySantAnna: behaviour, survey handling, aggregation invariants."""

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff import CallawaySantAnna, SurveyDesign, load_mpdta

ARGS = dict(outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")


@pytest.fixture(scope="module")
def mpdta():
    df = load_mpdta()
    rng = np.random.default_rng(0)
    units = df["countyreal"].unique()
    for name, values in {
        "cl": rng.integers(0, 40, units.size),
        "st": rng.integers(0, 5, units.size),
        "w": rng.uniform(1, 3, units.size),
    }.items():
        df[name] = df["countyreal"].map(dict(zip(units, values)))
    return df


def test_no_covariates_all_methods_agree_and_alias(mpdta):
    fits = [CallawaySantAnna(estimation_method=m).fit(mpdta, **ARGS) for m in ("reg", "ipw", "dr")]
    for res in fits[1:]:
        np.testing.assert_allclose(res.group_time_effects["estimate"],
                                   fits[0].group_time_effects["estimate"], rtol=1e-12)
        np.testing.assert_allclose(res.overall_se, fits[0].overall_se, rtol=1e-10)
    assert dd.CS is CallawaySantAnna


def test_overall_is_cohort_weighted_mean_of_post_cells(mpdta):
    res = CallawaySantAnna().fit(mpdta, **ARGS)
    gt = res.group_time_effects
    post = gt[gt["time"] >= gt["group"]]
    units = mpdta.drop_duplicates("countyreal")
    size = units["first.treat"].value_counts()
    w = post["group"].map(size)
    assert res.overall_att == pytest.approx(np.average(post["estimate"], weights=w), rel=1e-12)
    es = res.event_study_effects
    assert res.aggregate("dynamic").overall_att == pytest.approx(
        es.loc[es["event_time"] >= 0, "estimate"].mean(), rel=1e-12)
    grp = res.group_effects
    assert res.aggregate("group").overall_att == pytest.approx(
        np.average(grp["estimate"], weights=grp["group"].map(size)), rel=1e-12)


def test_headline_read_only_and_provenance_settable(mpdta):
    res = CallawaySantAnna().fit(mpdta, **ARGS)
    with pytest.raises(AttributeError):
        res.att = 1.0
    setattr(res, "_balance_adjustment", {"method": "ipw"})
    assert res._balance_adjustment["method"] == "ipw"
    assert res.att == res.overall_att and res.se == res.overall_se
    lo, hi = res.conf_int
    assert lo < res.att < hi and 0 <= res.p_value <= 1


def test_survey_psu_equal_unit_cluster_equals_clustered(mpdta):
    plain = CallawaySantAnna().fit(mpdta, **ARGS)
    by_unit = CallawaySantAnna().fit(mpdta, **ARGS, survey_design=SurveyDesign(psu="countyreal"))
    assert by_unit.overall_se == pytest.approx(plain.overall_se, rel=1e-12)
    clustered = CallawaySantAnna(cluster="cl").fit(mpdta, **ARGS)
    by_psu = CallawaySantAnna().fit(mpdta, **ARGS, survey_design=SurveyDesign(psu="cl"))
    assert by_psu.overall_se == pytest.approx(clustered.overall_se, rel=1e-12)
    np.testing.assert_allclose(by_psu.event_study_effects["se"],
                               clustered.event_study_effects["se"], rtol=1e-12)


def test_survey_metadata_and_df(mpdta):
    design = SurveyDesign(weights="w", strata="st", psu="cl", nest=True)
    res = CallawaySantAnna().fit(mpdta, **ARGS, survey_design=design)
    meta = res.survey_metadata
    for value in (meta.design_effect, meta.effective_n, meta.sum_weights):
        assert np.isfinite(value)
    assert meta.sum_weights == pytest.approx(mpdta.drop_duplicates("countyreal")["w"].sum())
    assert res.df == meta.df_survey == meta.n_psu - meta.n_strata


def test_pweight_only_and_unit_constant_design(mpdta):
    with pytest.raises(ValueError, match="pweight"):
        CallawaySantAnna().fit(mpdta, **ARGS,
                               survey_design=SurveyDesign(weights="w", weight_type="aweight"))
    varying = mpdta.assign(w2=mpdta["w"] + mpdta["year"] % 2)
    with pytest.raises(ValueError, match="'w2'.*constant within"):
        CallawaySantAnna().fit(varying, **ARGS, survey_design=SurveyDesign(weights="w2"))


def test_replicate_and_bootstrap(mpdta):
    units = mpdta.drop_duplicates("countyreal")
    design = SurveyDesign(weights="w", strata="st", psu="cl", nest=True)
    out, rep = dd.as_replicate_design(units, design, "JKn")
    df = mpdta.merge(out[["countyreal"] + rep.replicate_weights], on="countyreal")
    tsl = CallawaySantAnna().fit(df, **ARGS, survey_design=design)
    jk = CallawaySantAnna().fit(df, **ARGS, survey_design=rep)
    assert jk.overall_att == pytest.approx(tsl.overall_att, rel=1e-12)
    assert jk.overall_se == pytest.approx(tsl.overall_se, rel=0.1)
    with pytest.raises(ValueError, match="replicate"):
        CallawaySantAnna(n_bootstrap=99).fit(df, **ARGS, survey_design=rep)
    boot = CallawaySantAnna(n_bootstrap=4000, seed=3).fit(df, **ARGS, survey_design=design)
    assert boot.overall_se == pytest.approx(tsl.overall_se, rel=0.08)
    es = boot.event_study_effects
    assert {"cband_low", "cband_high"} <= set(es.columns)
    wide = (es["cband_high"] - es["cband_low"]) >= (es["conf_high"] - es["conf_low"]) - 1e-12
    assert wide.all()
    again = CallawaySantAnna(n_bootstrap=4000, seed=3).fit(df, **ARGS, survey_design=design)
    assert again.overall_se == boot.overall_se


def test_tiny_panel_works():
    rows = []
    for i in range(8):
        g = 3 if i < 3 else 0
        for t in (1, 2, 3):
            rows.append({"id": i, "t": t, "g": g, "y": i * 0.1 + t + (g == 3 and t == 3) * 1.0,
                         "w": 1.0 + i % 2})
    df = pd.DataFrame(rows)
    res = CallawaySantAnna().fit(df, "y", "id", "t", "g", survey_design=SurveyDesign(weights="w"))
    assert res.overall_att == pytest.approx(1.0)
    assert np.isfinite(res.survey_metadata.design_effect)


def test_never_treated_as_inf_and_input_untouched(mpdta):
    before = mpdta.copy()
    inf = mpdta.assign(**{"first.treat": mpdta["first.treat"].replace(0, np.inf)})
    a = CallawaySantAnna().fit(mpdta, **ARGS)
    b = CallawaySantAnna().fit(inf, **ARGS)
    assert a.overall_att == b.overall_att
    pd.testing.assert_frame_equal(mpdta, before)


def test_row_order_and_weight_scale_invariance(mpdta):
    design = SurveyDesign(weights="w", strata="st", psu="cl", nest=True)
    a = CallawaySantAnna().fit(mpdta, **ARGS, survey_design=design)
    shuffled = mpdta.sample(frac=1.0, random_state=1).assign(w=lambda d: d["w"] * 17.0)
    b = CallawaySantAnna().fit(shuffled, **ARGS, survey_design=design)
    assert b.overall_att == pytest.approx(a.overall_att, rel=1e-10)
    assert b.overall_se == pytest.approx(a.overall_se, rel=1e-10)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(control_group="everyone"), "control_group"),
        (dict(estimation_method="ols"), "estimation_method"),
        (dict(anticipation=-1), "anticipation"),
        (dict(anticipation=True), "anticipation"),
        (dict(alpha=1.5), "alpha"),
        (dict(n_bootstrap=1), "n_bootstrap"),
        (dict(pscore_trim=0.7), "pscore_trim"),
        (dict(base_period="fixed"), "base_period"),
    ],
)
def test_bad_settings_fail_in_fit(mpdta, kwargs, fragment):
    est = CallawaySantAnna(**kwargs)  # the constructor only stores
    with pytest.raises(ValueError, match=fragment):
        est.fit(mpdta, **ARGS)


def test_bad_data(mpdta):
    with pytest.raises(ValueError, match="not found"):
        CallawaySantAnna().fit(mpdta, outcome="nope", unit="countyreal", time="year",
                               first_treat="first.treat")
    dup = pd.concat([mpdta, mpdta.iloc[:1]])
    with pytest.raises(ValueError, match="more than once"):
        CallawaySantAnna().fit(dup, **ARGS)
    varying = mpdta.copy()
    varying.loc[0, "first.treat"] = 2006
    with pytest.raises(ValueError, match="varies within"):
        CallawaySantAnna().fit(varying, **ARGS)
    with pytest.raises(ValueError, match="cluster"):
        CallawaySantAnna(cluster="cl").fit(mpdta, **ARGS, survey_design=SurveyDesign(psu="cl"))


def test_get_set_params():
    est = CallawaySantAnna(estimation_method="reg")
    assert est.get_params()["estimation_method"] == "reg"
    est.set_params(anticipation=1)
    assert est.anticipation == 1
    with pytest.raises(ValueError, match="no parameter"):
        est.set_params(method="x")


def test_unbalanced_units_dropped_and_aggregate_kinds(mpdta):
    short = mpdta.drop(index=mpdta.index[:2])
    with pytest.warns(UserWarning, match="balance"):
        res = CallawaySantAnna().fit(short, **ARGS)
    assert res.n_units == 499
    assert set(res.to_dataframe("calendar")["time"]) == {2004, 2005, 2006, 2007}
    assert list(res.to_dataframe("group")["group"]) == [2004, 2006, 2007]
    with pytest.raises(ValueError, match="kind"):
        res.aggregate("weekly")
    bal = res.aggregate("event_study", balance_e=1)
    assert list(bal.effects["event_time"]) == [-2, -1, 0, 1]
    trimmed = res.aggregate("dynamic", min_e=-1, max_e=1)
    assert list(trimmed.effects["event_time"]) == [-1, 0, 1]
    assert "Event study" in res.summary()
    test = res.pretrend_test()
    assert test["df1"] == 3 and 0 <= test["p_value"] <= 1


def test_repeated_cross_sections_equal_panel_means_without_covariates(mpdta):
    panel = CallawaySantAnna().fit(mpdta, **ARGS)
    for method in ("reg", "ipw", "dr"):
        rc = CallawaySantAnna(panel=False, estimation_method=method).fit(
            mpdta, outcome="lemp", unit=None, time="year", first_treat="first.treat")
        np.testing.assert_allclose(rc.group_time_effects["estimate"],
                                   panel.group_time_effects["estimate"], rtol=1e-10)
        assert rc.n_units == len(mpdta)
        assert rc.overall_se > panel.overall_se  # levels, not changes: no within-unit pairing


def test_repeated_cross_sections_with_survey_design_and_covariates(mpdta):
    design = SurveyDesign(weights="w", strata="st", psu="cl", nest=True)
    for method in ("reg", "ipw", "dr"):
        res = CallawaySantAnna(panel=False, estimation_method=method).fit(
            mpdta, outcome="lemp", unit=None, time="year", first_treat="first.treat",
            covariates=["lpop"], survey_design=design)
        assert np.isfinite(res.overall_att) and np.isfinite(res.overall_se)
        assert res.df == res.survey_metadata.df_survey


def test_unbalanced_panel_clusters_by_unit(mpdta):
    short = mpdta.drop(index=mpdta.sample(150, random_state=3).index)
    res = CallawaySantAnna(allow_unbalanced_panel=True).fit(short, **ARGS)
    assert res.n_units == short["countyreal"].nunique()
    assert res.n_obs == len(short)
    # the unbalanced path is the repeated cross-section estimator clustered by unit
    rc = CallawaySantAnna(panel=False, cluster="countyreal").fit(
        short, outcome="lemp", unit=None, time="year", first_treat="first.treat")
    np.testing.assert_allclose(res.group_time_effects["estimate"],
                               rc.group_time_effects["estimate"], rtol=1e-10)
    np.testing.assert_allclose(res.group_time_effects["se"], rc.group_time_effects["se"],
                               rtol=1e-10)
    # a balanced panel with allow_unbalanced_panel=True uses the panel estimators (R did >= 2.3)
    full = CallawaySantAnna(allow_unbalanced_panel=True).fit(mpdta, **ARGS)
    assert full.overall_se == pytest.approx(CallawaySantAnna().fit(mpdta, **ARGS).overall_se)


@pytest.mark.parametrize("method", ["ipw", "dr"])
@pytest.mark.parametrize("time_varying", [False, True])
def test_cells_equal_direct_two_by_two_fits(mpdta, method, time_varying):
    """Cells sharing one propensity fit give what a fresh 2x2 fit of each cell gives."""
    from diff_diff.estimators.drdid import ESTIMATORS

    df = mpdta.copy()
    df["z"] = df["lpop"] + (np.random.default_rng(1).normal(size=len(df)) if time_varying else 0.0)
    res = CallawaySantAnna(estimation_method=method).fit(df, covariates=["z"], survey_design=SurveyDesign(weights="w"), **ARGS)
    wide = {c: df.pivot(index="countyreal", columns="year", values=c) for c in ("lemp", "z")}
    units = df.drop_duplicates("countyreal").set_index("countyreal").loc[wide["lemp"].index]
    for row in res.group_time_effects.itertuples():
        g, t = row.group, row.time
        base = g - 1 if t >= g else t - 1
        use = ((units["first.treat"] == g) | (units["first.treat"] == 0)).to_numpy()
        d = (units["first.treat"] == g).to_numpy()[use].astype(float)
        dy = (wide["lemp"][t] - wide["lemp"][base]).to_numpy()[use]
        x = np.column_stack([np.ones(use.sum()), wide["z"][base].to_numpy()[use]])
        direct = ESTIMATORS[method](dy, d, x, units["w"].to_numpy()[use])
        assert row.estimate == pytest.approx(direct.att, rel=1e-10, abs=1e-13)


@pytest.mark.parametrize("panel", [True, False])
@pytest.mark.parametrize("method", ["reg", "ipw", "dr"])
def test_collinear_covariates_name_the_cell(mpdta, panel, method):
    df = mpdta.assign(lpop2=2.0 * mpdta["lpop"])
    args = dict(ARGS, unit="countyreal" if panel else None)
    with pytest.raises(ValueError, match=r"CallawaySantAnna: ATT\(g=2004, t=2004\): .*collinear"):
        CallawaySantAnna(estimation_method=method, panel=panel).fit(
            df, covariates=["lpop", "lpop2"], **args)
