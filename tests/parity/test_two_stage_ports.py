"""TwoStageDiD against pyfixest 0.60.0 ``did2s`` (port of R did2s).

Fixture and script: tests/parity/ports/two_stage_did2s.py (its docstring and the
fixture's ``meta`` describe the calls, the ``stock``/``tight`` runs and the traps).

Standard errors: did2s sums the cluster scores without a small-sample factor; our
engine applies ``G/(G-1)`` (G = units), so ours = did2s * sqrt(G/(G-1)).

Tolerances:

* ``tight`` run (did2s with stage-1 lsqr atol=btol=1e-14 and MAP fixef_tol=1e-13):
  points abs 1e-11 and SEs rel 1e-11: nothing is left but floating-point rounding
  (observed <= 1.2e-14 abs / 4.5e-14 rel on points, <= 3.5e-15 rel on SEs).
* ``stock`` run (did2s as shipped): its stage-1 fixed effects stop at lsqr's
  relative rule ``||A'r|| <= 1e-6 ||A|| ||r||`` (and MAP demeaning at 1e-6 with a
  covariate), which bounds the normal-equation residual, not the error in the
  fixed effects: the error is that residual times the (sample-size dependent)
  conditioning of the dummy system and grows with the panel: observed rel 4.7e-10
  (50 units), 7.3e-7 (200), 6.6e-6 (400 units) here and 1.5e-5 on a 300 x 8
  panel. Points rel 1e-4; SEs rel 1e-5 (they move through the same residuals,
  less: observed <= 2.4e-7 rel).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "two_stage_did2s.json").read_text())
CASES = FIXTURE["cases"]
RUN_TOL = {"tight": dict(points=dict(abs=1e-11), se=dict(rel=1e-11)),
           "stock": dict(points=dict(rel=1e-4), se=dict(rel=1e-5))}
RUNS = [(name, run) for name in sorted(CASES) for run in ("stock", "tight")
        if "error" not in CASES[name][run]]


def _panel(name):
    return pd.DataFrame(CASES[name]["data"])


def _fit(estimator, name):
    covariates = ["x"] if CASES[name]["params"]["beta"] is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(_panel(name), outcome="y", unit="unit", time="time",
                             first_treat="first_treat", covariates=covariates)


@pytest.mark.parametrize(("name", "run"), RUNS)
def test_matches_did2s(name, run):
    ref = CASES[name][run]
    tol = RUN_TOL[run]
    res = _fit(dd.TwoStageDiD(), name)
    G = res.n_units
    assert G == ref["overall"]["G"] == _panel(name)["unit"].nunique()
    assert res.n_obs == ref["overall"]["n_obs"]
    factor = np.sqrt(G / (G - 1))

    overall = res.to_dataframe("overall").iloc[0]
    assert overall["estimate"] == res.att
    assert overall["se"] == res.se
    assert res.att == pytest.approx(ref["overall"]["estimate"], **tol["points"])
    assert res.se == pytest.approx(ref["overall"]["se"] * factor, **tol["se"])

    es = res.event_study_effects.set_index("event_time")
    want = {row["event_time"]: row for row in ref["event_study"]}
    assert sorted(want) == sorted(es.index)  # h >= 0 only, all horizons
    for h, row in want.items():
        assert es.loc[h, "estimate"] == pytest.approx(row["estimate"], **tol["points"]), h
        assert es.loc[h, "se"] == pytest.approx(row["se"] * factor, **tol["se"]), h


@pytest.mark.parametrize("name", sorted(CASES))
def test_points_equal_imputation(name):
    two = _fit(dd.TwoStageDiD(), name)
    bjs = _fit(dd.ImputationDiD(), name)
    assert two.att == pytest.approx(bjs.att, abs=1e-12, rel=0)
    a = two.event_study_effects.set_index("event_time")["estimate"]
    b = bjs.event_study_effects.set_index("event_time")["estimate"]
    assert list(a.index) == list(b.index)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-12)


def test_singleton_trap_documented():
    """Stock did2s fails when a unit has one untreated period (its stage-1 feols drops the
    singleton unit effect); with fixef_rm='none' (the tight run) it agrees with us."""
    case = CASES["trap_single_pre"]
    assert case["stock"]["error"].startswith("ValueError: operands could not be broadcast")
    assert min(map(int, case["params"]["cohorts"])) == 2  # one untreated period (t = 1)
    assert "overall" in case["tight"]
