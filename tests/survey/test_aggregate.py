"""aggregate_survey: panel layout, fallbacks, warnings, second stage, errors."""

import warnings

import numpy as np
import pandas as pd
import pytest

from diff_diff import SurveyDesign, aggregate_survey, survey_mean


@pytest.fixture
def micro():
    rng = np.random.default_rng(7)
    states, years, per_cell = ["AL", "AK", "AZ", "AR"], [2019, 2020, 2021], 30
    rows = len(states) * len(years) * per_cell
    df = pd.DataFrame(
        {
            "state": np.repeat(states, len(years) * per_cell),
            "year": np.tile(np.repeat(years, per_cell), len(states)),
        }
    )
    df["stratum"] = df["state"]
    df["psu"] = df["state"] + "-" + (np.arange(rows) % 6).astype(str)
    df["w"] = rng.uniform(50, 150, rows)
    df["smoke"] = (rng.random(rows) < 0.2).astype(float)
    df["bmi"] = rng.normal(27, 4, rows)
    df["age"] = rng.integers(18, 80, rows).astype(float)
    return df


DESIGN = SurveyDesign(weights="w", strata="stratum", psu="psu")


def test_panel_layout_and_values(micro):
    before = micro.copy()
    panel, design2 = aggregate_survey(micro, ["state", "year"], ["smoke", "bmi"], DESIGN,
                                      covariates="age")
    pd.testing.assert_frame_equal(micro, before)
    assert list(panel.columns) == [
        "state", "year",
        "smoke_mean", "smoke_se", "smoke_n", "smoke_precision",
        "bmi_mean", "bmi_se", "bmi_n", "bmi_precision",
        "age_mean", "cell_n", "cell_n_eff", "cell_sum_w", "srs_fallback", "smoke_weight",
    ]
    assert len(panel) == 12
    assert panel[["state", "year"]].equals(
        panel[["state", "year"]].sort_values(["state", "year"]).reset_index(drop=True)
    )
    ref = survey_mean(micro, ["smoke", "bmi"], DESIGN, by=["state", "year"])
    for var in ("smoke", "bmi"):
        r = ref[ref["variable"] == var].sort_values(["state", "year"])
        np.testing.assert_allclose(panel[f"{var}_mean"], r["estimate"], rtol=1e-12)
        np.testing.assert_allclose(panel[f"{var}_se"], r["se"], rtol=1e-12)
        np.testing.assert_allclose(panel[f"{var}_precision"], 1 / r["se"].to_numpy() ** 2)
    cell = micro[(micro["state"] == "AZ") & (micro["year"] == 2020)]
    row = panel[(panel["state"] == "AZ") & (panel["year"] == 2020)].iloc[0]
    assert row["age_mean"] == pytest.approx(np.average(cell["age"], weights=cell["w"]))
    assert row["cell_n"] == 30 and row["smoke_n"] == 30
    assert row["cell_sum_w"] == pytest.approx(cell["w"].sum())
    assert row["cell_n_eff"] == pytest.approx(cell["w"].sum() ** 2 / (cell["w"] ** 2).sum())
    assert not panel["srs_fallback"].any()
    assert design2 == SurveyDesign(weights="smoke_weight", psu="state", weight_type="pweight")
    # pweight second stage: constant within state, the state's mean cell population
    per_state = panel.groupby("state")["smoke_weight"].nunique()
    assert (per_state == 1).all()
    az = micro[micro["state"] == "AZ"].groupby("year")["w"].sum().mean()
    assert panel.loc[panel["state"] == "AZ", "smoke_weight"].iloc[0] == pytest.approx(az)
    # the second-stage design resolves on the panel
    assert design2.resolve(panel).n_psu == 4


def test_aweight_second_stage_is_precision(micro):
    panel, design2 = aggregate_survey(micro, ["state", "year"], "bmi", DESIGN,
                                      second_stage_weights="aweight")
    np.testing.assert_allclose(panel["bmi_weight"], panel["bmi_precision"])
    assert design2.weight_type == "aweight"


def test_missing_outcomes_and_small_cells(micro):
    micro.loc[micro.index[:25], "bmi"] = np.nan  # AL 2019 keeps 5 bmi respondents
    small = (micro["state"] == "AK") & (micro["year"] == 2021)
    micro = micro[~small | (micro.index % 30 == 0)]  # AK 2021 keeps one respondent
    with pytest.warns(UserWarning, match=r"1 cell\(s\).*independent draws.*AK"):
        panel, _ = aggregate_survey(micro, ["state", "year"], ["smoke", "bmi"], DESIGN)
    al = panel[(panel["state"] == "AL") & (panel["year"] == 2019)].iloc[0]
    assert al["bmi_n"] == 5 and al["smoke_n"] == 30 and not al["srs_fallback"]
    ak = panel[(panel["state"] == "AK") & (panel["year"] == 2021)].iloc[0]
    assert ak["srs_fallback"] and ak["cell_n"] == 1
    assert np.isnan(ak["smoke_se"]) and np.isnan(ak["smoke_precision"])


def test_srs_fallback_variance_is_independent_draws(micro):
    with pytest.warns(UserWarning, match="12 cell"):
        panel, _ = aggregate_survey(micro, ["state", "year"], "bmi", DESIGN, min_n=1000)
    assert panel["srs_fallback"].all()
    cell = micro[(micro["state"] == "AR") & (micro["year"] == 2019)]
    w, y = cell["w"].to_numpy(), cell["bmi"].to_numpy()
    psi = w * (y - np.average(y, weights=w)) / w.sum()
    expected = np.sqrt(len(w) / (len(w) - 1) * np.sum(psi**2))
    got = panel[(panel["state"] == "AR") & (panel["year"] == 2019)]["bmi_se"].iloc[0]
    assert got == pytest.approx(expected)


def test_inestimable_cells_dropped_with_warning(micro):
    gone = (micro["state"] == "AZ") & (micro["year"] == 2021)
    micro.loc[gone, "smoke"] = np.nan
    with pytest.warns(UserWarning, match=r"dropped 1 cell.*'smoke'.*AZ.*also drops data of \['bmi'\]"):
        panel, _ = aggregate_survey(micro, ["state", "year"], ["smoke", "bmi"], DESIGN)
    assert len(panel) == 11


def test_zero_weight_units_dropped(micro):
    micro.loc[micro["state"] == "AK", "w"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel, _ = aggregate_survey(micro, ["state", "year"], "smoke", DESIGN)
    assert "AK" not in set(panel["state"])


def test_lonely_override_and_replicates(micro):
    a, _ = aggregate_survey(micro, ["state", "year"], "smoke", DESIGN, lonely_psu="adjust")
    b, _ = aggregate_survey(micro, ["state", "year"], "smoke", DESIGN)
    np.testing.assert_allclose(a["smoke_se"], b["smoke_se"])  # no lonely strata here
    rng = np.random.default_rng(1)
    for r in range(8):
        micro[f"r{r}"] = micro["w"] * rng.choice([0.5, 1.5], len(micro))
    rep = SurveyDesign(weights="w", replicate_weights=[f"r{r}" for r in range(8)],
                       replicate_method="bootstrap")
    panel, _ = aggregate_survey(micro, ["state", "year"], "smoke", rep)
    ref = survey_mean(micro, "smoke", rep, by=["state", "year"])
    np.testing.assert_allclose(panel["smoke_se"], ref["se"], rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, exc, fragment",
    [
        (dict(by=["nope"]), ValueError, "not found"),
        (dict(outcomes="nope"), ValueError, "not found"),
        (dict(covariates=["smoke"]), ValueError, "one role"),
        (dict(by=["state", "smoke"]), ValueError, "one role"),
        (dict(second_stage_weights="fweight"), ValueError, "second_stage_weights"),
        (dict(min_n=0), ValueError, "min_n"),
        (dict(lonely_psu="drop"), ValueError, "lonely_psu"),
        (dict(survey_design="w"), TypeError, "SurveyDesign"),
        (dict(outcomes="psu"), ValueError, "numeric"),
    ],
)
def test_argument_errors(micro, kwargs, exc, fragment):
    args = dict(data=micro, by=["state", "year"], outcomes="smoke", survey_design=DESIGN)
    args.update(kwargs)
    with pytest.raises(exc, match=fragment):
        aggregate_survey(**args)


def test_row_order_irrelevant(micro):
    a, _ = aggregate_survey(micro, ["state", "year"], ["smoke", "bmi"], DESIGN)
    b, _ = aggregate_survey(micro.sample(frac=1, random_state=3), ["state", "year"],
                            ["smoke", "bmi"], DESIGN)
    pd.testing.assert_frame_equal(a, b, rtol=1e-10)
