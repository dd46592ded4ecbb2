"""StackedDiD: the stack and its corrective weights built as the paper defines them,
the identity that makes the weighted regression the weighted average of the
sub-experiments' DiDs, survey designs, and errors. Published numbers:
tests/parity/test_stacked_published.py."""

import warnings

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel


@pytest.fixture(scope="module")
def panel():
    df = example_panel(n_units=600, n_periods=8, seed=3)
    return df.assign(pop=1.0 + df["unit"] % 7)


def fit(data, design=None, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return dd.StackedDiD(**settings).fit(data, "y", "unit", "time", "first_treat",
                                             population="pop", survey_design=design)


def sub_experiment_dids(stacked, weights, weighting, ref=-1):
    """Each sub-experiment's DiD by event time and its target weight, by hand."""
    frame = stacked.assign(w=weights)

    def mean(rows):
        return np.average(rows["y"], weights=rows["w"])

    dids, target = {}, {}
    for a, sub in frame.groupby("_sub_exp"):
        treated, control = sub[sub["_treat"] == 1], sub[sub["_treat"] == 0]
        at0 = sub["_event_time"] == 0
        target[a] = {"aggregate": treated.loc[treated["_event_time"] == 0, "w"].sum(),
                     "sample_share": sub.loc[at0, "w"].sum(),
                     "population": treated.loc[treated["_event_time"] == 0, "pop"].sum()
                     }[weighting]
        for e in sorted(sub["_event_time"].unique()):
            if e == ref:
                continue
            at = lambda rows, k: rows[rows["_event_time"] == k]  # noqa: E731
            dids[a, e] = ((mean(at(treated, e)) - mean(at(treated, ref)))
                          - (mean(at(control, e)) - mean(at(control, ref))))
    total = sum(target.values())
    return dids, {a: v / total for a, v in target.items()}


@pytest.mark.parametrize("weighting", ["aggregate", "sample_share", "population"])
@pytest.mark.parametrize("survey", [False, True])
def test_event_study_is_the_weighted_average_of_sub_experiment_dids(panel, weighting, survey):
    design = dd.SurveyDesign(weights="weight") if survey else None
    res = fit(panel, design, kappa_pre=2, kappa_post=2, weighting=weighting)
    stacked = res.stacked_data
    weights = stacked["weight"] if survey else np.ones(len(stacked))
    dids, pi = sub_experiment_dids(stacked, weights, weighting)
    table = res.event_study_effects.set_index("event_time")
    for e in (-2, 0, 1, 2):
        expected = sum(pi[a] * dids[a, e] for a in pi)
        assert table.loc[e, "estimate"] == pytest.approx(expected, abs=1e-12)
    assert res.att == pytest.approx(table.loc[[0, 1, 2], "estimate"].mean(), abs=1e-14)


def test_the_stack_follows_the_paper(panel):
    res = fit(panel, kappa_pre=3, kappa_post=2)
    stacked = res.stacked_data
    g = panel.groupby("unit")["first_treat"].first()
    # cohorts 3, 4, 5 adopt in periods 3..5 of 1..8: 3 has no room for three pre-periods
    assert res.groups == [4, 5] and res.trimmed_groups == [3]
    for a, sub in stacked.groupby("_sub_exp"):
        assert set(sub["time"]) == set(range(int(a) - 3, int(a) + 3))
        treated = set(sub.loc[sub["_treat"] == 1, "unit"])
        controls = set(sub.loc[sub["_treat"] == 0, "unit"])
        assert treated == set(g.index[g == a])
        assert controls == set(g.index[(g == 0) | (g > a + 2)])
        assert (sub.loc[sub["_treat"] == 1, "_q_weight"] == 1).all()
    strict = fit(panel, kappa_pre=3, kappa_post=2, control_group="strict").stacked_data
    for a, sub in strict.groupby("_sub_exp"):
        assert set(sub.loc[sub["_treat"] == 0, "unit"]) == set(g.index[(g == 0) | (g > a + 5)])
    never = fit(panel, kappa_pre=3, kappa_post=2, control_group="never_treated").stacked_data
    assert set(never.loc[never["_treat"] == 0, "unit"]) == set(g.index[g == 0])
    assert res.n_obs == len(stacked) and res.n_sub_experiments == 2


def test_aggregate_weights_are_the_authors_formula(panel):
    stacked = fit(panel, kappa_pre=1, kappa_post=1).stacked_data
    for e, at in stacked.groupby("_event_time"):
        n_t = at[at["_treat"] == 1].groupby("_sub_exp").size()
        n_c = at[at["_treat"] == 0].groupby("_sub_exp").size()
        expected = (n_t / n_t.sum()) / (n_c / n_c.sum())
        got = at[at["_treat"] == 0].groupby("_sub_exp")["_q_weight"].agg(["min", "max"])
        assert np.allclose(got["min"], expected, rtol=1e-14)
        assert np.allclose(got["max"], expected, rtol=1e-14)


def test_invariances(panel):
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    base = fit(panel, design, kappa_pre=2, kappa_post=1)
    scaled = fit(panel.assign(weight=panel["weight"] * 9.0), design, kappa_pre=2, kappa_post=1)
    shuffled = fit(panel.sample(frac=1.0, random_state=4), design, kappa_pre=2, kappa_post=1)
    for other in (scaled, shuffled):
        assert other.att == pytest.approx(base.att, rel=1e-10)
        assert other.se == pytest.approx(base.se, rel=1e-9)
    assert base.survey_metadata is not None and base.df is not None


def test_clusters_and_cr2(panel):
    unit = fit(panel, kappa_pre=2, kappa_post=1)
    by_sub = fit(panel, kappa_pre=2, kappa_post=1, cluster="unit_subexp")
    by_psu = fit(panel, kappa_pre=2, kappa_post=1, cluster="psu")
    assert unit.att == by_sub.att == by_psu.att
    assert unit.n_clusters == unit.stacked_data["unit"].nunique()
    assert by_sub.n_clusters > unit.n_clusters and by_psu.n_clusters == panel["psu"].nunique()
    cr2 = fit(panel, kappa_pre=2, kappa_post=1, vcov_type="hc2_bm")
    assert cr2.att == pytest.approx(unit.att, abs=1e-12)
    assert 0.8 < cr2.se / unit.se < 1.25


def test_replicate_design_refits_with_its_corrective_weights(panel):
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu")
    data, rep = dd.as_replicate_design(panel, design, "JKn")
    res = fit(data, rep, kappa_pre=2, kappa_post=1)
    taylor = fit(panel, design, kappa_pre=2, kappa_post=1)
    assert res.att == pytest.approx(taylor.att, abs=1e-12)
    assert 0.7 < res.se / taylor.se < 1.4


def test_clear_errors(panel):
    with pytest.raises(ValueError, match="kappa_pre must be at least 1 \\+ anticipation"):
        fit(panel, kappa_pre=1, anticipation=1)
    with pytest.raises(ValueError, match="weighting='population' needs population="):
        dd.StackedDiD(weighting="population").fit(panel, "y", "unit", "time", "first_treat")
    with pytest.raises(ValueError, match="no sub-experiment left"):
        fit(panel, kappa_pre=5, kappa_post=5)
    with pytest.raises(ValueError, match="no unit is treated"):
        fit(panel.assign(first_treat=0))
    with pytest.raises(ValueError, match="weighting must be one of"):
        fit(panel, weighting="equal")
    with pytest.raises(ValueError, match="pweight"):
        fit(panel.assign(weight=np.ceil(panel["weight"])),
            dd.SurveyDesign(weights="weight", weight_type="fweight"))
    with pytest.warns(FutureWarning, match="clean_control is deprecated"):
        est = dd.StackedDiD(clean_control="strict")
    assert est.control_group == "strict"
    with pytest.warns(UserWarning, match=r"cohort\(s\) \[3\] trimmed"):
        dd.StackedDiD(kappa_pre=3, kappa_post=2).fit(panel, "y", "unit", "time", "first_treat")


def test_review_fixes(panel):
    """CR2 reports Bell-McCaffrey df; anticipating units are not clean controls; event times
    must be whole periods; an explicit cluster column survives a survey design."""
    cr2 = fit(panel, kappa_pre=2, kappa_post=1, vcov_type="hc2_bm")
    assert cr2.df is not None and 1 < cr2.df < cr2.n_clusters
    assert cr2.event_study_effects["p_value"].notna().all()
    g = panel.groupby("unit")["first_treat"].first()
    ant = fit(panel, kappa_pre=3, kappa_post=1, anticipation=1).stacked_data
    for a, sub in ant.groupby("_sub_exp"):
        controls = set(sub.loc[sub["_treat"] == 0, "unit"])
        assert controls == set(g.index[(g == 0) | (g - 1 > a + 1)])
    half = panel.assign(time=panel["time"] / 2, first_treat=panel["first_treat"] / 2)
    with pytest.raises(ValueError, match="whole numbers of periods"):
        fit(half, kappa_pre=1, kappa_post=1)
    with pytest.raises(ValueError, match="design already defines the clustering"):
        fit(panel, dd.SurveyDesign(weights="weight", psu="psu"), kappa_pre=2, kappa_post=1,
            cluster="stratum")
    weights_only = dd.SurveyDesign(weights="weight")
    by_unit = fit(panel, weights_only, kappa_pre=2, kappa_post=1)
    by_stratum = fit(panel, weights_only, kappa_pre=2, kappa_post=1, cluster="stratum")
    assert by_stratum.n_clusters == 6 and by_stratum.se != by_unit.se


def test_stack_built_from_classes_reads_only_its_rows(panel):
    """The stack is gathered from (cohort, period) classes: outcome values outside every
    window are never read (a missing value there is no error, one inside is counted once
    per copy), the stacked frame is the data's rows as they were at the fit, and
    shuffling the input rows changes nothing but the stack's row order. The default fit
    (from sums over the data's rows) equals the fit on the stacked rows (taken when an
    outcome is missing outside the windows)."""
    base = fit(panel, kappa_pre=1, kappa_post=1)
    outside = panel["time"] == 1  # no window [a - 1, a + 1] of cohorts 3..5 reaches it
    holes = panel.assign(y=np.where(outside, np.nan, panel["y"]))
    res = fit(holes, kappa_pre=1, kappa_post=1)
    assert res.att == pytest.approx(base.att, abs=1e-13)
    assert res.se == pytest.approx(base.se, rel=1e-12)
    assert np.allclose(res.event_study_vcov, base.event_study_vcov, rtol=1e-11, atol=0)
    assert (res.n_obs, res.n_treated_units, res.n_control_units, res.n_clusters) == (
        base.n_obs, base.n_treated_units, base.n_control_units, base.n_clusters)
    inside = (panel["time"] == 4) & (panel["unit"] == panel["unit"].iloc[0])
    copies = int((base.stacked_data["unit"] == panel["unit"].iloc[0])
                 .where(base.stacked_data["time"] == 4, False).sum())
    with pytest.raises(ValueError, match=f"has {copies} missing values"):
        fit(panel.assign(y=np.where(inside, np.nan, panel["y"])), kappa_pre=1, kappa_post=1)
    data = panel.copy()
    res = fit(data, kappa_pre=1, kappa_post=1)
    data.loc[:, "y"] = 0.0
    stacked = res.stacked_data
    assert np.allclose(stacked["y"], base.stacked_data["y"], rtol=0, atol=0)
    assert (stacked.groupby("_sub_exp")["_treat"].sum() > 0).all()
    shuffled = fit(panel.sample(frac=1.0, random_state=5), kappa_pre=1, kappa_post=1)
    assert shuffled.att == pytest.approx(base.att, abs=1e-12)
    assert shuffled.se == pytest.approx(base.se, rel=1e-10)
    assert (shuffled.n_obs, shuffled.n_treated_units, shuffled.n_control_units) == (
        base.n_obs, base.n_treated_units, base.n_control_units)


def test_class_fit_with_repeated_rows_and_string_units(panel):
    """Repeated (unit, period) rows and string unit labels: the fit from class sums equals
    the fit on the stacked rows (forced by a missing outcome outside every window)."""
    data = panel.iloc[np.r_[np.arange(len(panel)), np.arange(0, len(panel), 7)]]
    data = data.assign(unit="u" + data["unit"].astype(str)).sample(frac=1.0, random_state=1)
    rows = fit(data.assign(y=np.where(data["time"] == 8, np.nan, data["y"])),
               kappa_pre=2, kappa_post=1)
    sums = fit(data, kappa_pre=2, kappa_post=1)
    assert sums.att == pytest.approx(rows.att, abs=1e-13)
    assert np.allclose(sums.event_study_vcov, rows.event_study_vcov, rtol=1e-11, atol=0)
    assert (sums.n_obs, sums.n_treated_units, sums.n_control_units, sums.n_clusters) == (
        rows.n_obs, rows.n_treated_units, rows.n_control_units, rows.n_clusters)
    assert sums.n_obs > len(sums.stacked_data.drop_duplicates()) > 0


def test_unidentified_event_times_raise_the_same_error_on_every_path():
    # periods two apart: event times 1 and 2 have no rows; the default (class-sum) fit used
    # to fail with an AttributeError instead of the error the row fit gives
    rng = np.random.default_rng(0)
    rows = [(i, t, [0, 6, 10][i % 3], rng.normal()) for i in range(40) for t in range(2, 21, 2)]
    df = pd.DataFrame(rows, columns=["u", "t", "g", "y"]).assign(w=1.0)
    for design in (None, dd.SurveyDesign(weights="w")):
        with pytest.raises(ValueError, match=r"\['treat:e\[1\]', 'treat:e\[2\]'\] not "
                                             "identified"), \
                pytest.warns(UserWarning, match="collinear"):
            dd.StackedDiD(kappa_pre=2, kappa_post=2).fit(df, "y", "u", "t", "g",
                                                         survey_design=design)
