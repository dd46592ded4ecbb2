"""EfficientDiD: PT-Post is Callaway-Sant'Anna with never-treated controls and a universal
base period; PT-All is the GLS combination of every valid DiD, checked against a direct
computation from unit-level influence values; invariants; last_cohort; the Hausman
pretest; errors. Parity with the independent reference and the 3.13 comparison:
tests/parity/test_efficient_reference.py."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diff_diff as dd
from diff_diff.datasets import example_panel

KW = dict(outcome="y", unit="unit", time="time", first_treat="first_treat")


@pytest.fixture(scope="module")
def panel():
    return example_panel()


@pytest.fixture(scope="module")
def small(panel):
    """120 units, periods 1-5: cohorts 3, 4, 5 and never treated."""
    keep = panel["unit"] % 2 == 0
    return panel[keep & (panel["time"] <= 5)].reset_index(drop=True)


def _cells(res):
    return res.group_time_effects.set_index(["group", "time"])


def test_pt_post_is_callaway_santanna_never_treated_universal(panel):
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    ours = dd.EfficientDiD(pt_assumption="post").fit(panel, survey_design=design, **KW)
    cs = dd.CallawaySantAnna(control_group="never_treated", base_period="universal",
                             estimation_method="reg").fit(panel, survey_design=design, **KW)
    a, b = _cells(ours), _cells(cs)
    assert list(a.index) == list(b.index)
    np.testing.assert_allclose(a["estimate"], b["estimate"], atol=1e-12)
    np.testing.assert_allclose(a["se"], b["se"], rtol=1e-10, atol=1e-14)
    assert ours.overall_att == pytest.approx(cs.overall_att, abs=1e-12)
    assert ours.overall_se == pytest.approx(cs.overall_se, rel=1e-10)
    np.testing.assert_allclose(ours.event_study_effects["se"], cs.event_study_effects["se"],
                               rtol=1e-10)
    assert (ours.efficient_weights["weight"] == 1.0).all()


def _direct_pt_all(data, w_col=None):
    """ATT(g, t) and SE from first principles: every valid DiD of the cell, each unit's
    influence value on it, Omega from per-cohort covariances (ddof 1), GLS weights."""
    wide = data.pivot(index="unit", columns="time", values="y")
    g = data.groupby("unit")["first_treat"].first().loc[wide.index].to_numpy()
    w = (np.ones(len(wide)) if w_col is None
         else data.groupby("unit")[w_col].first().loc[wide.index].to_numpy())
    y, times = wide.to_numpy(), wide.columns.to_numpy()
    cohorts = np.unique(g[g > 0])
    n = len(y)

    def piece(group, a, b):  # weighted mean of Y_a - Y_b in the group, and its influence
        m = g == group
        change = y[:, a] - y[:, b]
        mean = np.average(change[m], weights=w[m])
        return mean, np.where(m, w / w[m].sum() * (change - mean), 0.0)

    out = {}
    for gc in cohorts:
        for t in range(1, len(times)):
            moments = []
            target, inf_target = piece(gc, t, 0)
            never, inf_never = piece(0, t, 0)
            moments.append((target - never, inf_target - inf_never))
            for gp in cohorts:
                for tp in range(1, len(times)):
                    if times[tp] >= gp or (gp == gc and tp == t):
                        continue
                    a, ia = piece(0, t, tp)
                    b, ib = piece(gp, tp, 0)
                    moments.append((target - a - b, inf_target - ia - ib))
            yhat = np.array([m[0] for m in moments])
            psi = np.column_stack([m[1] for m in moments])
            factor = np.ones(n)
            for h in np.unique(g):
                factor[g == h] = (g == h).sum() / ((g == h).sum() - 1)
            omega = psi.T @ (psi * factor[:, None])
            lam = np.linalg.solve(omega, np.ones(len(yhat)))
            lam /= lam.sum()
            eif = psi @ lam
            out[(gc, times[t])] = (lam @ yhat, np.sqrt(n / (n - 1) * (eif ** 2).sum()))
    return out


@pytest.mark.parametrize("weights", [None, "weight"])
def test_pt_all_equals_the_direct_gls_of_every_valid_did(small, weights):
    design = None if weights is None else dd.SurveyDesign(weights=weights)
    res = dd.EfficientDiD().fit(small, survey_design=design, **KW)
    direct = _direct_pt_all(small, weights)
    cells = _cells(res)
    assert len(cells) == len(direct)
    for key, (att, se) in direct.items():
        assert cells.loc[key, "estimate"] == pytest.approx(att, abs=1e-11)
        assert cells.loc[key, "se"] == pytest.approx(se, rel=1e-9)
    per_cell = res.efficient_weights.groupby(["group", "time"])["weight"].sum()
    np.testing.assert_allclose(per_cell, 1.0, atol=1e-12)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0))
def test_weights_scale_row_order_and_input_invariance(small, seed, scale):
    base = dd.EfficientDiD().fit(small, survey_design=dd.SurveyDesign(weights="weight"), **KW)
    rng = np.random.default_rng(seed)
    shuffled = small.sample(frac=1.0, random_state=rng.integers(2**31)).assign(
        weight=lambda d: d["weight"] * scale)
    before = shuffled.copy()
    res = dd.EfficientDiD().fit(shuffled, survey_design=dd.SurveyDesign(weights="weight"), **KW)
    pd.testing.assert_frame_equal(shuffled, before)
    np.testing.assert_allclose(_cells(res)["estimate"], _cells(base)["estimate"], atol=1e-10)
    np.testing.assert_allclose(_cells(res)["se"], _cells(base)["se"], rtol=1e-8)


def test_last_cohort_is_the_never_treated_fit_with_that_cohort_relabelled(small):
    res = dd.EfficientDiD(control_group="last_cohort").fit(small, **KW)
    relabel = small.assign(first_treat=small["first_treat"].replace(5, 0))
    ref = dd.EfficientDiD().fit(relabel[relabel["time"] < 5], **KW)
    pd.testing.assert_frame_equal(res.group_time_effects, ref.group_time_effects)
    assert sorted(res.groups) == [3, 4]


def _hausman_panel(trend):
    """Cohort 4 with a pre-period trend break of size ``trend`` relative to the others."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(600):
        g = (0, 3, 4)[i % 3]
        a = rng.normal()
        for t in range(1, 6):
            y = a + 0.3 * t + rng.normal(scale=0.5) + (0.5 if g and t >= g else 0.0)
            if g == 4 and t <= 2:
                y += trend * (t - 2)
            rows.append((i, t, g, y))
    return pd.DataFrame(rows, columns=["unit", "time", "first_treat", "y"])


def test_hausman_pretest_statistic_and_decisions():
    ok = dd.EfficientDiD.hausman_pretest(_hausman_panel(0.0), **KW)
    bad = dd.EfficientDiD.hausman_pretest(_hausman_panel(1.0), **KW)
    assert ok.recommendation == "pt_all" and ok.p_value > 0.05
    assert bad.recommendation == "pt_post" and bad.p_value < 1e-6
    # the statistic from the two fits' event-study influence functions, by hand
    data = _hausman_panel(0.0)
    es = {pt: dd.EfficientDiD(pt_assumption=pt).fit(data, **KW).aggregate("event_study")
          for pt in ("all", "post")}
    post = {pt: es[pt].effects["event_time"].to_numpy() >= 0 for pt in es}
    delta = (es["post"].effects["estimate"].to_numpy()[post["post"]]
             - es["all"].effects["estimate"].to_numpy()[post["all"]])
    diff = (es["post"].influence_functions[:, :-1][:, post["post"]]
            - es["all"].influence_functions[:, :-1][:, post["all"]])
    n = diff.shape[0]
    vcov = n / (n - 1) * diff.T @ diff
    assert ok.statistic == pytest.approx(delta @ np.linalg.solve(vcov, delta), rel=1e-8)
    assert ok.df == delta.size
    assert "PT-All" in ok.summary()


def test_errors(small):
    never = small[small["first_treat"] > 0]
    with pytest.raises(ValueError, match="no never-treated units.*last_cohort"):
        dd.EfficientDiD().fit(never, **KW)
    one = small[small["first_treat"].isin([0, 4])]
    with pytest.raises(ValueError, match="at least two treated cohorts"):
        dd.EfficientDiD(control_group="last_cohort").fit(one, **KW)
    with pytest.raises(NotImplementedError, match="covariate path"):
        dd.EfficientDiD().fit(small, covariates=["x1"], **KW)
    with pytest.raises(ValueError, match="pt_assumption must be one of"):
        dd.EfficientDiD(pt_assumption="both").fit(small, **KW)
    with pytest.raises(ValueError, match="omega_ridge must be a non-negative number"):
        dd.EfficientDiD(omega_ridge=-1.0).fit(small, **KW)
    with pytest.warns(UserWarning, match="ratio_clip.*no effect"):
        dd.EfficientDiD(ratio_clip=5.0).fit(small, **KW)
    zero = small.assign(w=np.where(small["first_treat"] == 3, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"cohort\(s\) \[3\] have zero total weight"):
        dd.EfficientDiD().fit(zero, survey_design=dd.SurveyDesign(weights="w"), **KW)


def test_3x_calls(small):
    with pytest.warns(FutureWarning, match="aggregate"):
        res = dd.EDiD(pt_assumption="all", omega_ridge=0.0).fit(
            small, "y", "unit", "time", "first_treat", aggregate="all", store_eif=True)
    assert np.isfinite(res.overall_att) and len(res.event_study_effects)
    assert res.influence_functions.shape == (small["unit"].nunique(), len(res.group_time_effects))


def test_replicates_that_empty_a_cohort_leave_its_cells_out():
    """JK1 over counties with cohort 2004 cut to one county: the replicate without it has
    no cohort 2004, whose cells are then NaN and dropped (as CS does), not computed from
    empty means; PT-Post equals CS replicate for replicate."""
    df = dd.load_mpdta()
    one = df.loc[df["first.treat"] == 2004, "countyreal"].min()
    d = df[(df["first.treat"] != 2004) | (df["countyreal"] == one)].assign(psu=lambda x:
                                                                           x["countyreal"])
    data, design = dd.as_replicate_design(d, dd.SurveyDesign(psu="psu"), method="JK1")
    args = (data, "lemp", "countyreal", "year", "first.treat")
    with pytest.warns(UserWarning, match="1 of 481 replicates"):
        ours = dd.EfficientDiD(pt_assumption="post").fit(*args, survey_design=design)
        cs = dd.CS(control_group="never_treated", base_period="universal",
                   estimation_method="reg").fit(*args, survey_design=design)
        ours_se = _cells(ours)["se"]
        cs_se = _cells(cs)["se"]
    np.testing.assert_allclose(ours_se, cs_se, rtol=1e-10)
    assert _cells(ours).loc[(2004, 2004), "se"] == pytest.approx(0.0098058, rel=1e-4)
