"""HeterogeneousAdoptionDiD against did-had 0.2.1 (Python port of Stata/R did_had) and R.

Fixtures and scripts: tests/parity/ports/had_didhad.py (did-had on deterministic panels)
and tests/parity/r/had_mass_point.R (AER::ivreg + sandwich, survey::svycontrast).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diff_diff import HeterogeneousAdoptionDiD, SurveyDesign
from tests.parity.ports.had_didhad import panel

FIXTURES = Path(__file__).parent / "fixtures"
DIDHAD = json.loads((FIXTURES / "had_didhad.json").read_text())
MASS = json.loads((FIXTURES / "had_mass_point.json").read_text())


@pytest.mark.parametrize("name", sorted(DIDHAD["cases"]))
def test_matches_did_had(name):
    case = DIDHAD["cases"][name]
    spec = case["spec"]
    res = HeterogeneousAdoptionDiD(design="continuous_at_zero", kernel=spec["kernel"]).fit(
        panel(spec["panel"]), outcome="y", dose="d", time="year", unit="unit",
        effects=spec["effects"], placebo=spec["placebo"], dynamic=spec["dynamic"])
    es = res.event_study_effects.set_index(["kind", "horizon"])
    psi = res.influence_functions
    order = [(h.kind, h.lag) for h in res._problem.horizons]
    for label, ref in case["rows"].items():
        kind, lag = label.split("_")
        key = ("effect" if kind == "Effect" else "placebo", int(lag))
        row = es.loc[key]
        assert row["estimate"] == pytest.approx(ref["estimate"], abs=1e-9)
        assert row["bandwidth"] == pytest.approx(ref["bw"], rel=1e-9)
        assert row["n_in_bandwidth"] == ref["n_bw"] and row["n_obs"] == ref["n"]
        # did-had's interval is centred on the bias-corrected estimate ...
        assert row["estimate_bc"] == pytest.approx((ref["lb"] + ref["ub"]) / 2, abs=1e-9)
        # ... and its SE is sqrt(sum psi^2) of our influence values (the engine then
        # centres them and applies n/(n-1), as for every estimator)
        column = psi[:, order.index(key)]
        assert np.sqrt(np.sum(column**2)) == pytest.approx(ref["se"], rel=1e-8)
        if "qug_T" in ref:
            assert row["qug_statistic"] == pytest.approx(ref["qug_T"], rel=1e-10)


def _mass_frame(dataset):
    """The R script's data (see its meta), as a two-period panel."""
    g = np.arange(1, 601)
    u = np.modf(g * 0.6180339887498949)[0]
    if dataset == "mass_point":
        d = np.where(u < 0.3, 0.2, 0.2 + 1.5 * np.clip(u - 0.3, 0, None) ** 1.5)
        dy = 0.5 + 1.2 * (d - 0.2) + 0.8 * np.sin(3 * g) + 0.4 * np.cos(7 * g * u)
    else:
        d = np.where(u < 0.25, 0.0, (u - 0.25) * 2)
        dy = 0.5 + 1.2 * d + 0.8 * np.sin(3 * g) + 0.4 * np.cos(7 * g * u)
    stratum = g % 4
    unit = pd.DataFrame({"unit": g, "w": 1 + (g % 4) * 0.5, "stratum": stratum,
                         "psu": stratum * 100 + (g - 1) // 40})
    before = unit.assign(t=1, d=0.0, y=0.0)
    after = unit.assign(t=2, d=d, y=dy)
    return pd.concat([before, after], ignore_index=True)


@pytest.mark.parametrize("case", MASS["cases"], ids=lambda c: c["id"])
def test_mass_point_matches_r(case):
    df = _mass_frame(case["dataset"])
    args = dict(outcome="y", dose="d", time="t", unit="unit")
    ref = case["result"]
    res = HeterogeneousAdoptionDiD().fit(df, **args)
    assert res.design == "mass_point" and res.d_lower == pytest.approx(case["d_lower"])
    assert res.att == pytest.approx(ref["beta"], rel=1e-10)
    assert res.se == pytest.approx(ref["se_hc1"], rel=1e-10)  # AER + sandwich HC1
    clustered = HeterogeneousAdoptionDiD(cluster="psu").fit(df, **args)
    assert clustered.se == pytest.approx(ref["se_cr1_psu"], rel=1e-10)  # vcovCL HC1
    for name, fields in (("strat_psu", dict(weights="w", strata="stratum", psu="psu")),
                         ("weights_only", dict(weights="w"))):
        svy = case["survey"][name]
        res = HeterogeneousAdoptionDiD().fit(df, survey_design=SurveyDesign(**fields), **args)
        assert res.att == pytest.approx(svy["beta"], rel=1e-10)
        assert res.se == pytest.approx(svy["se"], rel=1e-10)  # svycontrast of svyby means
        assert res.df == svy["df"]
