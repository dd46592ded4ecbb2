"""SunAbraham against diff-diff 3.13.0's SunAbraham and pyfixest 0.60.0.

Fixture and script: tests/parity/ports/sun_abraham_refs.py (its docstring and the
fixture's ``meta`` describe the calls: 3.13's estimator as shipped, and pyfixest's
``feols`` of the saturated cohort x relative-period regression with ``| unit + time``,
aggregated with fixed cohort-share weights in numpy). Cases: mpdta and four simulated
balanced panels (one with a time-varying covariate, one without never-treated units);
runs: CR1 by unit (default), CR1 by a coarser cluster, anticipation 1, classical,
``last_treated`` controls (pyfixest only: 3.13 has no such option), hc2 and hc2_bm
(3.13 only).

Points (overall ATT, event study, cohort effects, cohort weights): abs 1e-10
(observed <= 1e-13; 3.13's full-dummy paths and pyfixest's MAP demeaning at 1e-13
differ from ours only by rounding on these balanced panels).

Standard errors, with n rows, k = cohort-cell coefficients + covariates, N units and
T periods of the estimation sample (after the last_treated truncation):

* CR1 (``vcov_type="hc1"``, clustered by unit or a coarser cluster that nests the
  units): all three use ``G/(G-1) * (n-1)/(n-K) * meat``. pyfixest (default ``ssc``,
  ``k_fixef="nonnested"``: its ``df_k``) and 3.13 (``k + absorbed_fe_cr1_k_increment``,
  the fixest convention) take ``K = k + T``: the unit effects nested in the cluster are
  not counted (but for the constant). Ours counts every absorbed effect, ``K = k + N +
  T - 1`` (the dummy-variable regression), so exactly

      var_ours = var_ref * (n - k - T) / (n - k - N - T + 1).

  On mpdta that is (2500 - 17) / (2500 - 516): our SEs are 12.2% larger. As N grows
  with T fixed the factor tends to T / (T - 1), not 1.
* classical: all three use ``RSS / (n - k - N - T + 1)``; no factor.
* t df: ours and pyfixest ``G - 1`` (CR1) and ``n - k - N - T + 1`` (classical); 3.13
  uses the residual df ``n - k - N - T + 1`` also for CR1 (its default
  ``df_convention="residual"``).

SE tolerance: rel 1e-10 after the factor (observed <= 2e-14).

hc2 (one-way) and hc2_bm (CR2 + Bell-McCaffrey df by unit) are recorded from 3.13,
which fits them on the full dummy design; ours puts the period effects in the
design for them (units absorbed) and matches without a factor.

All runs use ``weights_se="fixed"``: the references hold the cohort shares fixed in the
variance of the aggregates (``fixest::aggregate``); our default adds the term of the
estimated shares (tests/estimators/test_sun_abraham.py).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import diff_diff as dd
from tests.parity.fixture_data import staggered_case_panel

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "sun_abraham_refs.json").read_text())
CASES = FIXTURE["cases"]
RUNS = FIXTURE["meta"]["runs"]
POINT_TOL = 1e-10  # abs
SE_TOL = 1e-10  # rel

SUPPORTED = [(name, run, ref) for name in sorted(CASES) for run in sorted(CASES[name]["runs"])
             for ref in ("dd313", "pyfixest")
             if ref in CASES[name]["runs"][run]
             and RUNS[run]["vcov_type"] in ("hc1", "classical")]
CR1_BOTH = [(name, run) for name, run, ref in SUPPORTED
            if ref == "dd313" and RUNS[run]["vcov_type"] == "hc1"
            and "pyfixest" in CASES[name]["runs"][run]]
CR2_313 = [(name, run) for name in sorted(CASES) for run in sorted(CASES[name]["runs"])
           if RUNS[run]["vcov_type"] in ("hc2", "hc2_bm")]


def _panel(name):
    return staggered_case_panel(CASES[name], FIXTURE["meta"]["mpdta_md5"])


def _covariates(name):
    return ["x"] if CASES[name]["params"].get("beta") is not None else None


def _fit(name, run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dd.SunAbraham(**RUNS[run], weights_se="fixed").fit(
            _panel(name), outcome="y", unit="unit", time="time", first_treat="first_treat",
            covariates=_covariates(name))


def _sizes(name, run, res):
    """n, k, N, T of the estimation sample."""
    panel, spec = _panel(name), RUNS[run]
    periods = panel["time"]
    if spec["control_group"] == "last_treated":
        last = panel.loc[panel["first_treat"] > 0, "first_treat"].max()
        periods = periods[periods < last - spec["anticipation"]]
    k = len(res.cohort_effects) + len(_covariates(name) or [])
    return res.n_obs, k, res.n_units, int(periods.nunique())


def _factor(name, run, res):
    """sd_ours / sd_ref: sqrt((n - k - T) / (n - k - N - T + 1)) for CR1, 1 for classical."""
    n, k, N, T = _sizes(name, run, res)
    if RUNS[run]["vcov_type"] == "hc1":
        return np.sqrt((n - k - T) / (n - k - N - T + 1))
    return 1.0


def _ref_tables(ref, which):
    """Event study, cohort effects, weights and event-study vcov of either reference."""
    es = pd.DataFrame(ref["event_study"]).set_index("event_time")
    if which == "dd313":
        cells = pd.DataFrame(ref["cohort_effects"])
        weights, order = ref["cohort_weights"], ref["event_study_vcov_index"]
    else:
        cells = pd.DataFrame(ref["cells"])
        weights, order = ref["weights"], list(es.index)
    vcov = pd.DataFrame(ref["event_study_vcov"], index=order, columns=order)
    return es, cells.set_index(["group", "event_time"]), weights, vcov


@pytest.mark.parametrize(("name", "run", "which"), SUPPORTED)
def test_points(name, run, which):
    ref = CASES[name]["runs"][run][which]
    res = _fit(name, run)
    es_ref, cells_ref, weights_ref, _ = _ref_tables(ref, which)
    assert res.n_obs == (ref["n_obs"] if which == "dd313" else ref["N"])
    assert res.att == pytest.approx(ref["overall"]["estimate"], abs=POINT_TOL, rel=0)

    es = res.event_study_effects.set_index("event_time")
    assert list(es.index) == list(es_ref.index)  # every relative period but the reference
    np.testing.assert_allclose(es["estimate"], es_ref["estimate"], rtol=0, atol=POINT_TOL)
    assert list(es["n_groups"]) == list(es_ref["n_groups"])

    cells = res.cohort_effects.set_index(["group", "event_time"])
    assert list(cells.index) == list(cells_ref.index)
    np.testing.assert_allclose(cells["estimate"], cells_ref["estimate"], rtol=0, atol=POINT_TOL)

    want = {int(e): {int(g): w for g, w in ws.items()} for e, ws in weights_ref.items()}
    assert sorted(res.cohort_weights) == sorted(want)
    for e, ws in want.items():
        assert sorted(res.cohort_weights[e]) == sorted(ws), e
        for g, w in ws.items():
            assert res.cohort_weights[e][g] == pytest.approx(w, abs=POINT_TOL, rel=0), (e, g)
            assert cells.loc[(g, e), "weight"] == pytest.approx(w, abs=POINT_TOL, rel=0)
    if which == "dd313":
        np.testing.assert_allclose(cells["weight"], cells_ref["weight"], rtol=0, atol=POINT_TOL)


@pytest.mark.parametrize(("name", "run", "which"), SUPPORTED)
def test_standard_errors(name, run, which):
    """SEs and covariances through the exact K relation (module docstring)."""
    ref = CASES[name]["runs"][run][which]
    res = _fit(name, run)
    n, k, N, T = _sizes(name, run, res)
    f = _factor(name, run, res)
    es_ref, cells_ref, _, vcov_ref = _ref_tables(ref, which)

    assert res.se == pytest.approx(ref["overall"]["se"] * f, rel=SE_TOL)
    es = res.event_study_effects.set_index("event_time")
    np.testing.assert_allclose(es["se"], es_ref["se"] * f, rtol=SE_TOL, atol=0)
    ours = res.event_study_vcov.loc[vcov_ref.index, vcov_ref.columns].to_numpy()
    scale = np.abs(vcov_ref.to_numpy()).max()
    np.testing.assert_allclose(ours, vcov_ref.to_numpy() * f**2, rtol=SE_TOL,
                               atol=SE_TOL * scale)
    cells = res.cohort_effects.set_index(["group", "event_time"])
    np.testing.assert_allclose(cells["se"], cells_ref["se"] * f, rtol=SE_TOL, atol=0)

    classical = RUNS[run]["vcov_type"] == "classical"
    if which == "pyfixest":
        # the estimation sample and pyfixest's own K (df_k): k + T (CR1), k + N + T - 1 (iid)
        assert (ref["N"], ref["k"] - (1 if _covariates(name) else 0)) == (n, len(cells))
        assert (ref["n_units"], ref["n_periods"]) == (N, T)
        assert ref["df_k"] == (k + N + T - 1 if classical else k + T)
        vcov_cells = np.asarray(ref["cells_vcov"])
        np.testing.assert_allclose(res.vcov.to_numpy(), vcov_cells * f**2, rtol=SE_TOL,
                                   atol=SE_TOL * np.abs(vcov_cells).max())
        # t df: G - 1 (CRV1) or n - K (iid), as ours
        assert res.df == ref["df_t"] == (n - k - N - T + 1 if classical else ref["G"] - 1)
        if classical:  # same df, same SE: same p-values
            np.testing.assert_allclose(cells["p_value"], cells_ref["p_value"], rtol=0,
                                       atol=1e-10)
    else:
        # 3.13: residual df under CR1 too (df_convention="residual"); ours G - 1 there
        assert ref["overall"]["df"] == n - k - N - T + 1
        if classical:
            assert res.df == n - k - N - T + 1
        else:
            # 3.13's K increment (from its own helper) is T: K_313 = k + T; the absorbed
            # rank it counts for the residual df is N + T - 1, as ours
            assert ref["cr1_k_increment"] == T
            assert ref["absorbed_fe_rank"] == N + T - 1
            assert res.df == res.n_clusters - 1


@pytest.mark.parametrize(("name", "run"), CR1_BOTH)
def test_references_agree_on_cr1(name, run):
    """3.13 and pyfixest use the same K = k + T: their CR1 SEs agree directly."""
    a, b = CASES[name]["runs"][run]["dd313"], CASES[name]["runs"][run]["pyfixest"]
    assert a["overall"]["se"] == pytest.approx(b["overall"]["se"], rel=SE_TOL)
    np.testing.assert_allclose([r["se"] for r in a["event_study"]],
                               [r["se"] for r in b["event_study"]], rtol=SE_TOL, atol=0)
    np.testing.assert_allclose([r["se"] for r in a["cohort_effects"]],
                               [r["se"] for r in b["cells"]], rtol=SE_TOL, atol=0)


@pytest.mark.parametrize(("name", "run"), CR2_313)
def test_cr2_matches_313(name, run):
    """3.13's hc2 (one-way) and hc2_bm (CR2 by unit, Bell-McCaffrey df per contrast), fit
    on the full dummy design; no small-sample factor in either."""
    ref = CASES[name]["runs"][run]["dd313"]
    res = _fit(name, run)
    es_ref, cells_ref, _, _ = _ref_tables(ref, "dd313")
    assert res.att == pytest.approx(ref["overall"]["estimate"], abs=POINT_TOL, rel=0)
    assert res.se == pytest.approx(ref["overall"]["se"], rel=SE_TOL)
    es = res.event_study_effects.set_index("event_time")
    np.testing.assert_allclose(es["se"], es_ref["se"], rtol=SE_TOL, atol=0)
    cells = res.cohort_effects.set_index(["group", "event_time"])
    np.testing.assert_allclose(cells["se"], cells_ref["se"], rtol=SE_TOL, atol=0)
    assert res.df == pytest.approx(ref["overall"]["df"], rel=1e-8)
    half = stats.t.ppf(0.975, es_ref["df"]) * es["se"]  # alpha = 0.05
    np.testing.assert_allclose(es["conf_high"] - es["estimate"], half, rtol=1e-8, atol=0)
