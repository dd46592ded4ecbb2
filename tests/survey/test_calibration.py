"""calibrate()/rake(): targets met, errors named, report, variance options."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from diff_diff import (
    CalibrationError,
    SurveyDesign,
    aggregate_survey,
    calibrate,
    rake,
    survey_mean,
)


@pytest.fixture
def sample():
    rng = np.random.default_rng(11)
    n = 600
    df = pd.DataFrame(
        {
            "cell": rng.choice(["TX-2019", "TX-2020", "OH-2019", "OH-2020"], n),
            "sex": rng.choice(["F", "M"], n),
            "age": rng.choice(["18-34", "35-64", "65+"], n),
            "inc": rng.lognormal(3, 0.4, n),
            "w": rng.uniform(20, 80, n),
            "st": rng.integers(0, 4, n),
        }
    )
    df["psu"] = df["st"] * 10 + rng.integers(0, 5, n)
    df["y"] = rng.normal(size=n) + (df["age"] == "65+") * 1.5
    return df


def _cell_totals(df, shift=1.15):
    out = []
    for m in ("sex", "age"):
        t = df.groupby(["cell", m])["w"].sum().rename("total").reset_index()
        t = t.rename(columns={m: "level"}).assign(margin=m)
        out.append(t)
    t = pd.concat(out, ignore_index=True)
    bump = np.where(t["level"].isin(["F", "65+"]), shift, 1.0)
    t["total"] = t["total"] * bump
    t["total"] *= (
        t.groupby("cell")["total"].transform("sum")
        / t.groupby(["cell", "margin"])["total"].transform("sum")
    ) / 2
    return t


@pytest.mark.parametrize("method, bounds", [("raking", None), ("linear", None), ("logit", (0.3, 3.0)),
                                            ("linear", (0.5, 2.0)), ("raking", (0.5, 2.0))])
def test_each_group_meets_its_totals(sample, method, bounds):
    totals = _cell_totals(sample)
    before = sample.copy()
    out, design = calibrate(sample, SurveyDesign(weights="w", strata="st", psu="psu"), totals,
                            by="cell", method=method, bounds=bounds)
    pd.testing.assert_frame_equal(sample, before)
    assert design.weights == "w_cal" and design.strata == "st"
    for _, row in totals.iterrows():
        part = out[(out["cell"] == row["cell"]) & (out[row["margin"]] == row["level"])]
        assert part["w_cal"].sum() == pytest.approx(row["total"], rel=1e-9)
    g = out["w_cal"] / out["w"]
    if bounds is not None:
        assert g.min() >= bounds[0] - 1e-12 and g.max() <= bounds[1] + 1e-12
    report = design.calibration.report
    assert report.converged and report.max_rel_error < 1e-10
    assert report.ratio_range == (pytest.approx(g.min()), pytest.approx(g.max()))
    assert set(report.margins.columns) == {"cell", "margin", "level", "target", "achieved", "rel_error"}
    assert len(report.groups) == 4


def test_design_keeps_fifteen_fields_and_reports_calibration(sample):
    out, design = rake(sample, SurveyDesign(weights="w"),
                       {"sex": {"F": 20000, "M": 16000}, "age": {"18-34": 12000, "35-64": 14000, "65+": 10000}})
    assert len(dataclasses.fields(design)) == 15
    assert design.calibration.method == "raking"
    assert out["w_cal"].sum() == pytest.approx(36000)


def test_numeric_auxiliary_and_intercept(sample):
    n_pop = 40000.0
    inc_total = (sample["inc"] * sample["w"]).sum() * 1.3
    out, _ = calibrate(sample, SurveyDesign(weights="w"), {"(Intercept)": n_pop, "inc": inc_total},
                       method="linear")
    assert out["w_cal"].sum() == pytest.approx(n_pop)
    assert (out["w_cal"] * out["inc"]).sum() == pytest.approx(inc_total)


def test_linear_solution_is_closed_form_greg(sample):
    totals = {"sex": {"F": 21000.0, "M": 15000.0}}
    out, _ = calibrate(sample, SurveyDesign(weights="w"), totals, method="linear")
    for sex, total in totals["sex"].items():
        part = sample[sample["sex"] == sex]
        np.testing.assert_allclose(out.loc[part.index, "w_cal"], part["w"] * total / part["w"].sum())


def test_calibration_reduces_variance_of_the_calibrated_variable(sample):
    design = SurveyDesign(weights="w", strata="st", psu="psu")
    sample["is_old"] = (sample["age"] == "65+").astype(float)
    totals = {"age": {"18-34": 12000, "35-64": 14000, "65+": 10000}}
    out, cal = calibrate(sample, design, totals)
    se = survey_mean(out, "is_old", cal)["se"].iloc[0]
    assert se == pytest.approx(0.0, abs=1e-12)  # a calibrated share is known exactly
    _, fixed = calibrate(sample, design, totals, account_for_calibration=False)
    assert survey_mean(out, "is_old", fixed)["se"].iloc[0] > 0.005


def test_errors_name_group_and_margin(sample):
    design = SurveyDesign(weights="w")
    totals = _cell_totals(sample)
    extra = pd.DataFrame({"cell": ["TX-2019"], "margin": ["sex"], "level": ["X"], "total": [5.0]})
    totals.loc[(totals["cell"] == "TX-2019") & (totals["level"] == "F"), "total"] -= 5.0
    with pytest.raises(CalibrationError, match=r"level 'X' of margin 'sex'.*no respondents.*TX-2019"):
        calibrate(sample, design, pd.concat([totals, extra]), by="cell")
    totals = _cell_totals(sample)
    missing = totals[~((totals["cell"] == "OH-2020") & (totals["level"] == "M"))]
    with pytest.raises(CalibrationError, match=r"no population total for level 'M'.*OH-2020"):
        calibrate(sample, design, missing, by="cell")
    bad = totals.copy()
    bad.loc[bad["margin"] == "age", "total"] *= 1.5
    with pytest.raises(CalibrationError, match="disagree on the population total"):
        calibrate(sample, design, bad, by="cell")
    zero = totals.copy()
    f_row = (zero["cell"] == "TX-2020") & (zero["level"] == "F")
    m_row = (zero["cell"] == "TX-2020") & (zero["level"] == "M")
    zero.loc[m_row, "total"] += zero.loc[f_row, "total"].to_numpy()
    zero.loc[f_row, "total"] = 0.0
    with pytest.raises(CalibrationError, match=r"total of 0.*TX-2020"):
        calibrate(sample, design, zero, by="cell", method="raking")
    far = _cell_totals(sample, shift=4.0)
    with pytest.raises(CalibrationError, match="did not converge.*bounds"):
        calibrate(sample, design, far, by="cell", method="logit", bounds=(0.8, 1.25))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(method="ipf"), "method"),
        (dict(method="logit"), "bounds"),
        (dict(bounds=(1.2, 3.0)), "bounds"),
        (dict(trim=(0.5, 0.9)), "trim"),
        (dict(max_iter=0), "max_iter"),
        (dict(tol=2.0), "tol"),
        (dict(by="cell"), "DataFrame"),
    ],
)
def test_argument_errors(sample, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        calibrate(sample, SurveyDesign(weights="w"), {"sex": {"F": 1.0, "M": 1.0}}, **kwargs)


def test_trim_clips_and_preserves_group_totals(sample):
    totals = _cell_totals(sample, shift=1.6)
    with pytest.warns(UserWarning, match="clips every weight of 1 group"):
        calibrate(sample, SurveyDesign(weights="w"), totals, by="cell", method="linear",
                  trim=(0.8, 1.3))
    out, design = calibrate(sample, SurveyDesign(weights="w"), totals, by="cell",
                            method="linear", trim=(0.7, 1.8))
    assert design.calibration.report.n_trimmed > 0
    by_cell = out.groupby("cell")[["w", "w_cal"]].sum()
    target = totals[totals["margin"] == "sex"].groupby("cell")["total"].sum()
    np.testing.assert_allclose(by_cell["w_cal"], target.loc[by_cell.index], rtol=1e-9)


def test_replicate_designs_are_recalibrated(sample):
    rng = np.random.default_rng(2)
    reps = []
    for r in range(10):
        sample[f"r{r}"] = sample["w"] * rng.choice([0.0, 2.0], len(sample))
        reps.append(f"r{r}")
    design = SurveyDesign(weights="w", replicate_weights=reps, replicate_method="BRR")
    totals = {"sex": {"F": 20000.0, "M": 16000.0}}
    out, cal = calibrate(sample, design, totals)
    assert cal.replicate_weights == [f"{r}_cal" for r in reps]
    for r in reps:
        assert out.loc[out["sex"] == "F", f"{r}_cal"].sum() == pytest.approx(20000.0)
    assert cal.calibration.report.replicates_recalibrated == 10
    sample["is_f"] = (sample["sex"] == "F").astype(float)
    out, cal = calibrate(sample, design, totals)
    assert survey_mean(out, "is_f", cal)["se"].iloc[0] == pytest.approx(0.0, abs=1e-8)


def test_aggregate_after_per_cell_raking_accounts_for_calibration(sample):
    sample["is_old"] = (sample["age"] == "65+").astype(float)
    design = SurveyDesign(weights="w", strata="st", psu="psu")
    out, cal = calibrate(sample, design, _cell_totals(sample), by="cell")
    panel, _ = aggregate_survey(out, ["cell"], ["is_old", "y"], cal)
    np.testing.assert_allclose(panel["is_old_se"], 0.0, atol=1e-12)
    ref = survey_mean(out, "y", cal, by="cell")
    np.testing.assert_allclose(panel["y_se"], ref["se"], rtol=1e-12)
    # calibrated nationally, cell SEs still see the calibration (rows outside a cell move)
    nat_totals = {"age": {"18-34": 12000.0, "35-64": 14000.0, "65+": 10000.0}}
    out2, cal2 = calibrate(sample, design, nat_totals)
    panel2, _ = aggregate_survey(out2, ["cell"], "y", cal2)
    fixed = calibrate(sample, design, nat_totals, account_for_calibration=False)[1]
    panel3, _ = aggregate_survey(out2, ["cell"], "y", fixed)
    assert not np.allclose(panel2["y_se"], panel3["y_se"])


def test_domains_of_a_calibrated_design_keep_the_calibration(sample):
    design = SurveyDesign(weights="w", strata="st", psu="psu")
    out, cal = calibrate(sample, design, _cell_totals(sample), by="cell")
    by_domain = survey_mean(out, "y", cal, by="sex").set_index("sex")
    sub_design, sub_data = cal.subpopulation(out, out["sex"] == "F")
    assert sub_design.calibration is cal.calibration
    sub = survey_mean(sub_data, "y", sub_design)
    assert sub["estimate"].iloc[0] == pytest.approx(by_domain.loc["F", "estimate"], rel=1e-12)
    assert sub["se"].iloc[0] == pytest.approx(by_domain.loc["F", "se"], rel=1e-10)
    overridden, _ = aggregate_survey(out, ["cell"], "y", cal, lonely_psu="adjust")
    default, _ = aggregate_survey(out, ["cell"], "y", cal)
    np.testing.assert_allclose(overridden["y_se"], default["y_se"])  # no lonely strata here


@pytest.mark.parametrize("kwargs", [dict(), dict(method="logit", bounds=(0.5, 2.0), trim=(0.6, 1.7)),
                                    dict(method="linear", numeric=True)])
def test_replicates_calibrated_on_patterns_equal_each_replicate_calibrated_alone(sample, kwargs):
    """Replicates are calibrated on the distinct (cell, x) patterns with summed weights;
    each must equal the row-by-row calibration of that replicate as a design of its own."""
    kwargs = dict(kwargs)
    totals = _cell_totals(sample)
    if kwargs.pop("numeric", False):  # a continuous auxiliary: every row its own pattern
        inc = (sample["w"] * sample["inc"]).groupby(sample["cell"]).sum() * 1.05
        totals = pd.concat([totals, pd.DataFrame({"cell": inc.index, "margin": "inc",
                                                  "level": np.nan, "total": inc.values})])
    rng = np.random.default_rng(5)
    reps = [f"r{r}" for r in range(4)]
    data = sample.assign(**{r: sample["w"] * rng.uniform(0.5, 1.5, len(sample)) for r in reps})
    design = SurveyDesign(weights="w", replicate_weights=reps, replicate_method="bootstrap")
    out, _ = calibrate(data, design, totals, by="cell", **kwargs)
    for r in reps:
        alone, _ = calibrate(data, SurveyDesign(weights=r), totals, by="cell", **kwargs)
        np.testing.assert_allclose(out[f"{r}_cal"], alone[f"{r}_cal"], rtol=1e-12)


def test_grouped_solve_equals_the_pseudo_inverse_on_singular_and_empty_groups():
    from diff_diff.survey.calibration_model import solve_grouped

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 40, 4))
    x[1, :, 3] = x[1, :, 0] + x[1, :, 1]  # collinear: singular
    x[2, :, 2] = 0.0  # a column without respondents
    x[3, :, 1] = x[3, :, 0] * (1 + 1e-7)  # nearly collinear
    gram = np.einsum("gni,gnj->gij", x, x)
    rhs = np.einsum("gni,gn->gi", x, rng.normal(size=(5, 40)))
    rhs[2, 2] = 3.0  # no respondents but a target: the generalized inverse ignores it
    expected = np.stack([np.linalg.pinv(g / np.sqrt(np.outer(np.diag(g) + (np.diag(g) == 0),
                                                             np.diag(g) + (np.diag(g) == 0))),
                                        rcond=1e-12, hermitian=True)
                         @ (r / np.sqrt(np.diag(g) + (np.diag(g) == 0)))
                         / np.sqrt(np.diag(g) + (np.diag(g) == 0)) for g, r in zip(gram, rhs)])
    np.testing.assert_allclose(solve_grouped(gram, rhs), expected, rtol=1e-9, atol=1e-12)
    assert solve_grouped(gram, rhs)[2, 2] == 0.0


def test_calibrated_variance_with_missing_outcomes_is_the_observed_rows_domain(sample):
    """A missing outcome puts its row outside every domain (na_rm): the calibrated SE is that
    of the domain 'y observed' with the calibration over all rows (it used to crash when a
    row was in no domain: per-row weights were taken over all rows, not the domain's)."""
    design = SurveyDesign(weights="w", strata="st", psu="psu")
    out, cal = calibrate(sample, design, _cell_totals(sample), by="cell")
    out = out.assign(y=out["y"].where(np.arange(len(out)) % 7 != 0))
    seen = out.assign(seen=out["y"].notna(), y0=out["y"].fillna(0.0))
    ref = survey_mean(seen, "y0", cal, by=["cell", "seen"]).query("seen")
    got = survey_mean(out, "y", cal, by="cell", na_rm=True)
    np.testing.assert_allclose(got["estimate"], ref["estimate"], rtol=1e-12)
    np.testing.assert_allclose(got["se"], ref["se"], rtol=1e-10)
    panel, _ = aggregate_survey(out, ["cell"], "y", cal)
    np.testing.assert_allclose(panel["y_se"], ref["se"], rtol=1e-10)
    assert (got["se"] > 0).all()
