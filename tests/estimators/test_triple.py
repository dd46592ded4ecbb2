"""TripleDifference (2x2x2): without covariates the weighted cell-mean DDD and its
design-based standard error computed independently (survey_total of the linearised
combination, R-exact); the three-DiD identity; panel and repeated cross-sections; errors.
Parity with moderndid's port of R triplediff: tests/parity/test_triple_moderndid.py."""

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel

KW = dict(outcome="y", group="treated", partition="eligible", post="post")


@pytest.fixture(scope="module")
def panel():
    return example_panel()


def _cell_linearisation(data, w):
    """DDD = sum_c sign_c (ybar_c,post - ybar_c,pre) and its linearisation z_i."""
    cell = np.where(data["treated"] == 1, np.where(data["eligible"] == 1, 0, 1),
                    np.where(data["eligible"] == 1, 2, 3))
    sign = np.array([1.0, -1.0, -1.0, 1.0])
    y, post = data["y"].to_numpy(), data["post"].to_numpy()
    tau, z = 0.0, np.zeros(len(data))
    for c in range(4):
        for p, s in ((1, 1.0), (0, -1.0)):
            m = (cell == c) & (post == p)
            mean = np.average(y[m], weights=w[m])
            tau += sign[c] * s * mean
            z[m] += sign[c] * s * (y[m] - mean) / w[m].sum()
    return tau, z


@pytest.mark.parametrize("method", ["reg", "ipw", "dr"])
def test_without_covariates_it_is_the_weighted_cell_mean_ddd(panel, method):
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    res = dd.TripleDifference(estimation_method=method).fit(panel, survey_design=design, **KW)
    w = panel["weight"].to_numpy()
    tau, z = _cell_linearisation(panel, w)
    assert res.att == pytest.approx(tau, abs=1e-12)
    # the design-based SE of the linearised combination, by the (R-exact) survey total
    total = dd.survey_total(panel.assign(z=z), "z", design)  # the total of w_i z_i
    assert res.se == pytest.approx(float(total["se"].iloc[0]), rel=1e-10)
    plain = dd.TripleDifference(estimation_method=method).fit(panel, **KW)
    tau0, z0 = _cell_linearisation(panel, np.ones(len(panel)))
    n = len(panel)
    assert plain.att == pytest.approx(tau0, abs=1e-12)
    assert plain.se == pytest.approx(np.sqrt(n / (n - 1) * (z0 ** 2).sum()), rel=1e-10)


def test_the_three_did_identity_with_covariates(panel):
    res = dd.TripleDifference(estimation_method="dr").fit(panel, covariates=["x1"], **KW)
    parts = res.comparisons.set_index("vs")["estimate"]
    assert res.att == pytest.approx(parts["treated_ineligible"] + parts["control_eligible"]
                                    - parts["control_ineligible"], abs=1e-14)
    # each part is the two-group DR DiD of the cells' units (CS's 2x2 building block)
    from diff_diff.estimators import drdid
    cell = lambda t, e: (panel["treated"] == t) & (panel["eligible"] == e)  # noqa: E731
    sub = panel[cell(1, 1) | cell(0, 0)]
    x = np.column_stack([np.ones(len(sub)), sub["x1"]])
    ref = drdid.dr_did_rc(sub["y"].to_numpy(), sub["post"].to_numpy(),
                          sub["treated"].to_numpy().astype(float), x, np.ones(len(sub)))
    assert parts["control_ineligible"] == pytest.approx(ref.att, abs=1e-12)


def test_panel_mode_uses_changes_and_pre_period_covariates(panel):
    two = panel[panel["time"].isin([3, 5])].assign(post=lambda d: (d["time"] == 5).astype(int))
    res = dd.TripleDifference(estimation_method="reg").fit(two, unit="unit", **KW)
    wide = two.pivot(index="unit", columns="time", values="y")
    units = two.drop_duplicates("unit").set_index("unit")
    change = (wide[5] - wide[3]).rename("y")
    frame = units[["treated", "eligible"]].join(change)
    means = frame.groupby(["treated", "eligible"])["y"].mean()
    assert res.att == pytest.approx(means[(1, 1)] - means[(1, 0)] - means[(0, 1)]
                                    + means[(0, 0)], abs=1e-12)
    assert res.panel and res.n_obs == len(two)
    cov = dd.TripleDifference().fit(two, unit="unit", covariates=["x1"], **KW)
    assert np.isfinite(cov.se)
    with pytest.raises(ValueError, match="exactly one pre-period row and one post-period"):
        dd.TripleDifference().fit(panel, unit="unit", **KW)


def test_clear_errors(panel):
    with pytest.raises(ValueError, match=r"cell\(s\) \['control_ineligible'\]"):
        dd.TripleDifference().fit(panel[~((panel["treated"] == 0) & (panel["eligible"] == 0))],
                                  **KW)
    with pytest.raises(ValueError, match="partition column 'dose' must be 0/1"):
        dd.TripleDifference().fit(panel, **{**KW, "partition": "dose"})
    with pytest.raises(ValueError, match="estimation_method must be one of"):
        dd.TripleDifference(estimation_method="ols").fit(panel, **KW)
    assert dd.DDD is dd.TripleDifference
    assert isinstance(dd.TripleDifference().fit(panel, **KW).group_means, pd.DataFrame)


def test_zero_weight_cell_is_a_clear_error(panel):
    """A cell (or a cell in one period) with zero total weight used to give NaN with
    RuntimeWarnings and then a ZeroDivisionError."""
    cell_d = (panel["treated"] == 0) & (panel["eligible"] == 0)
    design = dd.SurveyDesign(weights="w")
    with pytest.raises(ValueError, match="cell 'control_ineligible' in the pre period has "
                                         "zero total weight"):
        dd.TripleDifference().fit(panel.assign(w=np.where(cell_d, 0.0, panel["weight"])),
                                  survey_design=design, **KW)
    a_pre = (panel["treated"] == 1) & (panel["eligible"] == 1) & (panel["post"] == 0)
    with pytest.raises(ValueError, match="cell 'treated_eligible' in the pre period"):
        dd.TripleDifference().fit(panel.assign(w=np.where(a_pre, 0.0, panel["weight"])),
                                  survey_design=design, **KW)
    two = panel[panel["time"].isin([3, 5])].assign(post=lambda d: (d["time"] == 5).astype(int))
    cell_c = (two["treated"] == 0) & (two["eligible"] == 1)
    with pytest.raises(ValueError, match="cell 'control_eligible' has zero total weight"):
        dd.TripleDifference().fit(two.assign(w=np.where(cell_c, 0.0, two["weight"])),
                                  survey_design=design, unit="unit", **KW)


def test_multi_period_panel_error_suggests_subsetting_or_cluster(panel):
    with pytest.raises(ValueError, match="subset the data to one pre and one post period, or "
                                         "fit the pooled rows without unit= but with cluster="):
        dd.TripleDifference().fit(panel, unit="unit", **KW)


def test_summary_spells_out_the_cells(panel):
    text = dd.TripleDifference().fit(panel, **KW).summary()
    assert "TE / TI" not in text and " CI)" not in text
    assert "treated-eligible 732, treated-ineligible 372, control-eligible 228, " \
           "control-ineligible 108" in text
    assert "(vs treated-ineligible) +" in text and "(vs control-ineligible)" in text
