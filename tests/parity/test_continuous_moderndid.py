"""ContinuousDiD against moderndid 0.4.1's ``cont_did`` (a Python port of R contdid;
``tests/parity/ports/contdid_moderndid.py``; fixture ``contdid_moderndid.json`` with the
data ``contdid_sim.csv``, simulated by moderndid's ``gen_cont_did_data``: a two-period
sample and a staggered one with three cohorts, true ``ATT(d) = 0.5 d + d^2``).

Dose aggregation (cubic B-spline without and with three interior knots, a linear fit;
not-yet-treated and never-treated comparisons) and the event studies of ``ATT(g, t)``
and ``ACRT(g, t)``: the averages, the curves on moderndid's grid, the cells and their
weights to 1e-11; the analytic standard errors (theirs ``sqrt(sum IF^2) / n``, ours the
engine's ``sqrt(n / (n - 1))`` times that) to 1e-10 relative. moderndid reports
multiplier-bootstrap standard errors by default; the fixture keeps the analytic ones
computed from its influence functions. Its default comparison group is not yet treated,
ours never treated (as in 3.13): the test passes it explicitly.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

HERE = Path(__file__).parent / "fixtures"
FIXTURE = json.loads((HERE / "contdid_moderndid.json").read_text())
CASES = [(sample, name) for sample in ("two_period", "staggered")
         for name in FIXTURE[sample]["cases"]]
KW = dict(outcome="Y", unit="id", time="time_period", first_treat="G", dose="D")


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(HERE / "contdid_sim.csv")


@pytest.mark.parametrize("sample,name", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_matches_moderndid(data, sample, name):
    case = FIXTURE[sample]["cases"][name]
    args = case.get("args", {})
    control = "never_treated" if args.get("control_group") == "nevertreated" else \
        "not_yet_treated"
    res = dd.ContinuousDiD(degree=args.get("degree", 3), num_knots=args.get("num_knots", 0),
                           control_group=control).fit(data[data["sample"] == sample], **KW)
    n = FIXTURE[sample]["n_units"]
    scale = np.sqrt(n / (n - 1))
    if args.get("aggregation") == "eventstudy":
        table = res.event_study_slopes if args["target_parameter"] == "slope" else \
            res.event_study_effects
        assert table["event_time"].tolist() == case["event_times"]
        np.testing.assert_allclose(table["estimate"], case["att_by_event"], atol=1e-11)
        np.testing.assert_allclose(table["se"], scale * np.array(case["se_by_event_analytic"]),
                                   rtol=1e-10)
        return
    assert res.att == pytest.approx(case["overall_att"], abs=1e-11)
    assert res.acrt == pytest.approx(case["overall_acrt"], abs=1e-11)
    assert res.se == pytest.approx(scale * case["overall_att_se_analytic"], rel=1e-10)
    assert res.acrt_se == pytest.approx(scale * case["overall_acrt_se_analytic"], rel=1e-10)
    np.testing.assert_allclose(res.dose_grid, case["dose"], atol=1e-14)
    for target in ("att", "acrt"):
        table = getattr(res, f"dose_response_{target}")
        np.testing.assert_allclose(table["estimate"], case[f"{target}_d"], atol=1e-11)
        np.testing.assert_allclose(table["se"], scale * np.array(case[f"{target}_d_se_analytic"]),
                                   rtol=1e-10)
    cells = res.group_time_effects.merge(pd.DataFrame(case["cells"]), on=["group", "time"],
                                         suffixes=("", "_m"))
    assert len(cells) == len(case["cells"])
    np.testing.assert_allclose(cells["att"], cells["att_m"], atol=1e-11)
    np.testing.assert_allclose(cells["acrt"], cells["acrt_m"], atol=1e-11)
    np.testing.assert_allclose(cells["weight"], cells["weight_m"], atol=1e-14)


def test_influence_functions_match_moderndid(data):
    """moderndid's influence values are on the ``n x`` scale (mean), ours on the sum scale;
    units sorted by id in both."""
    case = FIXTURE["two_period"]["cases"]["default"]
    res = dd.ContinuousDiD(control_group="not_yet_treated").fit(
        data[data["sample"] == "two_period"], **KW)
    psi = res._inference.estimate.psi
    n = FIXTURE["two_period"]["n_units"]
    theirs = case["influence_function"]
    np.testing.assert_allclose(n * psi[:, 0], theirs["overall_att"], atol=1e-11)
    np.testing.assert_allclose(n * psi[:, 1], theirs["overall_acrt"], atol=1e-10)
    k = len(res.dose_grid)
    for j, g in enumerate(theirs["grid_idx"]):  # five grid points, (point, unit) arrays
        np.testing.assert_allclose(n * psi[:, 2 + g], theirs["att_d"][j], atol=1e-10)
        np.testing.assert_allclose(n * psi[:, 2 + k + g], theirs["acrt_d"][j], atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Extensions (fixture block ``extensions``): anticipation and the universal base period as
# moderndid computes them; saturated discrete doses (column ``Dd``, four values) against
# moderndid's cubic through the four values (the same fit), ACRT(d) its finite differences;
# control_group="lowest_dose" against moderndid's ATT(d) - ATT(d_L); weighted fits (unit weight
# ``w``) against moderndid on the panel with each unit repeated w times. SEs: the analytic SE
# of moderndid's influence values (collapsed to the units when weighted) times sqrt(n/(n-1)).
# ---------------------------------------------------------------------------------------------
EXT = FIXTURE["extensions"]


def _fit_extension(data, case):
    sample = data[data["sample"] == case["sample"]].assign(D=lambda f: f[case["dose_column"]])
    ours = dict(case["ours"])
    ours.setdefault("control_group", "not_yet_treated")
    design = dd.SurveyDesign(weights="w") if case["weighted"] else None
    return dd.ContinuousDiD(**ours).fit(sample, survey_design=design, **KW)


def _close(actual, expected, **tol):
    expected = np.array([np.nan if v is None else v for v in np.atleast_1d(expected)], float)
    np.testing.assert_allclose(np.asarray(actual, float), expected, equal_nan=True, **tol)


@pytest.mark.parametrize("name", sorted(EXT))
def test_extensions_match_moderndid(data, name):
    case = EXT[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dropped-cohort warning of anticipation=1
        res = _fit_extension(data, case)
    n = case["n_units"]
    assert res.n_units == n
    scale = np.sqrt(n / (n - 1))
    if case["kind"].startswith("es_"):
        table = res.event_study_slopes if case["kind"] == "es_slope" else \
            res.event_study_effects
        assert table["event_time"].tolist() == case["event_times"]
        _close(table["estimate"], case["att_by_event"], atol=1e-11)
        _close(table["se"], scale * np.array(case["se_by_event_analytic"]), rtol=1e-10,
               atol=1e-15)
        return
    np.testing.assert_allclose(res.dose_grid, case["dose"], atol=1e-14)
    assert res.att == pytest.approx(case["overall_att"], abs=1e-11)
    assert res.se == pytest.approx(scale * case["overall_att_se_analytic"], rel=1e-10)
    if "overall_acrt" in case:
        assert res.acrt == pytest.approx(case["overall_acrt"], abs=1e-11)
        assert res.acrt_se == pytest.approx(scale * case["overall_acrt_se_analytic"], rel=1e-10)
    if "reference_dose" in case:
        assert res.reference_dose == pytest.approx(case["reference_dose"], abs=1e-15)
    for target in ("att", "acrt"):
        table = getattr(res, f"dose_response_{target}")
        _close(table["estimate"], case[f"{target}_d"], atol=1e-11)
        expected_se = [None if v is None else scale * v for v in case[f"{target}_d_se_analytic"]]
        _close(table["se"], expected_se, rtol=1e-9, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# The CCK dose-response estimator (fixture block ``cck``): moderndid's cont_did with
# dose_est_method="cck" on the two-period sample (outcome ``Y``, or ``Yw`` with a sin(10 d)
# wiggle), same seed (so the same Gaussian draws): the selected number of segments, the Lepski
# statistics and critical value, the curves, ACRT_glob, the uniform bands' critical values
# and the analytic SEs. Tolerance 1e-8: npiv moves its quantile knots apart by up to 1e-10 of
# the dose range (ours are the plain quantiles).
# ---------------------------------------------------------------------------------------------
CCK = FIXTURE["cck"]


@pytest.mark.parametrize("name", sorted(CCK))
def test_cck_matches_moderndid(data, name):
    case = CCK[name]
    args = case["args"]
    sample = data[data["sample"] == "two_period"].assign(Y=lambda f: f[case["outcome"]])
    res = dd.ContinuousDiD(dose_est_method="cck", control_group="not_yet_treated",
                           seed=FIXTURE["meta"]["seed"], cck_draws=args.get("biters", 1000),
                           alpha=args.get("alpha", 0.05), dvals=args.get("dvals")).fit(
        sample, **KW)
    sel, theirs = res.sieve_selection, case["selection"]
    assert sel["candidates"] == theirs["candidates"]
    assert sel["segments"] == theirs["segments"] and sel["dimension"] == theirs["j_tilde"]
    assert sel["alpha_hat"] == pytest.approx(theirs["alpha_hat"], rel=1e-14)
    assert sel["theta_star"] == pytest.approx(theirs["theta_star"], rel=1e-8)
    sup_t = sel["sup_t"][np.triu_indices(len(sel["candidates"]), 1)]
    np.testing.assert_allclose(sup_t, theirs["sup_t"], rtol=1e-8)
    assert sel["crit_att"] == pytest.approx(case["att_d_crit_val"], rel=1e-8)
    assert sel["crit_acrt"] == pytest.approx(case["acrt_d_crit_val"], rel=1e-8)
    n = case["n_units"]
    scale = np.sqrt(n / (n - 1))
    np.testing.assert_allclose(res.dose_grid, case["dose"], atol=1e-14)
    assert res.att == pytest.approx(case["overall_att"], abs=1e-12)
    assert res.se == pytest.approx(scale * case["overall_att_se_analytic"], rel=1e-10)
    assert res.acrt == pytest.approx(case["overall_acrt"], abs=1e-8)
    assert res.acrt_se == pytest.approx(scale * case["overall_acrt_se_analytic"], rel=1e-8)
    # moderndid's overall ACRT SE is already analytic here (std of the IF over the treated)
    assert case["overall_acrt_se"] == pytest.approx(case["overall_acrt_se_analytic"],
                                                    rel=1e-12)
    for target, crit in (("att", sel["crit_att"]), ("acrt", sel["crit_acrt"])):
        table = getattr(res, f"dose_response_{target}")
        np.testing.assert_allclose(table["estimate"], case[f"{target}_d"], atol=1e-8)
        np.testing.assert_allclose(table["se"], scale * np.array(case[f"{target}_d_se"]),
                                   rtol=1e-8)
        np.testing.assert_allclose(table["cband_high"] - table["estimate"], crit * table["se"],
                                   rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Event-study windows (fixture block ``windows``): min_e / max_e / balance_e and the event
# study's average over event times >= 0, against cont_did(aggregation="eventstudy", ...).
# ---------------------------------------------------------------------------------------------
WINDOWS = FIXTURE["windows"]


@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_event_study_windows_match_moderndid(data, name):
    case = WINDOWS[name]
    args = case["args"]
    res = dd.ContinuousDiD(control_group="not_yet_treated",
                           base_period=args.get("base_period", "varying")).fit(
        data[data["sample"] == "staggered"], min_e=args.get("min_e", -np.inf),
        max_e=args.get("max_e", np.inf), balance_e=args.get("balance_e"), **KW)
    n = case["n_units"]
    scale = np.sqrt(n / (n - 1))
    slope = args["target_parameter"] == "slope"
    table = res.event_study_slopes if slope else res.event_study_effects
    assert table["event_time"].tolist() == case["event_times"]
    _close(table["estimate"], case["att_by_event"], atol=1e-11)
    _close(table["se"], scale * np.array(case["se_by_event_analytic"]), rtol=1e-10, atol=1e-15)
    overall = res.event_study_overall.set_index("term").loc["ACRT_es" if slope else "ATT_es"]
    assert overall["estimate"] == pytest.approx(case["overall_att"], abs=1e-11)
    assert overall["se"] == pytest.approx(scale * case["overall_se_analytic"], rel=1e-10)


@pytest.mark.parametrize("name", ["eventstudy_level", "eventstudy_slope"])
def test_event_study_overall_matches_moderndid(data, name):
    """The unwindowed event studies' averages over e >= 0 (the earlier fixture cases)."""
    case = FIXTURE["staggered"]["cases"][name]
    res = dd.ContinuousDiD(control_group="not_yet_treated").fit(
        data[data["sample"] == "staggered"], **KW)
    n = FIXTURE["staggered"]["n_units"]
    term = "ACRT_es" if case["args"]["target_parameter"] == "slope" else "ATT_es"
    overall = res.event_study_overall.set_index("term").loc[term]
    assert overall["estimate"] == pytest.approx(case["overall_att"], abs=1e-11)
    assert overall["se"] == pytest.approx(np.sqrt(n / (n - 1)) * case["overall_se_analytic"],
                                          rel=1e-10)
