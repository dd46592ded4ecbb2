"""WooldridgeDiD against the ``etwfe`` package (0.1.4, the Python port of R etwfe, itself
checked against R etwfe's test values; ``tests/parity/ports/etwfe_reference.py``).

* Linear, mpdta, not-yet-treated (etwfe with ``ivar=`` unit fixed effects) and
  never-treated: every ATT(g, t) and every aggregation to 1e-12. Standard errors
  (CR1 by unit) differ by one constant: both use ``G/(G-1) (n-1)/(n-K)``, but our ``K``
  counts the absorbed unit effects (as our regression family does, R ``lm`` +
  ``sandwich``), fixest/pyfixest leave out effects nested in the clusters; so our
  variance is theirs times ``(n - k_fixest) / (n - K_ours)`` (asserted to 1e-9).
* Logit and Poisson on a simulated panel: ATT(g, t) and aggregations to 1e-10; the
  aggregations' delta-method SEs equal etwfe's times ``sqrt((n - k)/(n - 1))`` (to
  1e-7; both are IRLS solutions), the
  small-sample factor pyfixest's CRV1 applies to the GLM and our engine does not
  (ours: ``G/(G-1)`` only). The port script's per-cell SEs (``att_gt``, made by hand
  from etwfe internals because etwfe prints no cell table) are not used: they disagree
  with etwfe's own ``emfx`` aggregations of single cells, which ours match.
* Covariates (``covariates=``: etwfe's formula controls, unit effects): time-constant
  ``lpop``, a time-varying ``xtv`` (not-yet and never-treated controls): ATT(g, t) and the
  aggregations to 1e-10, SEs with the same constant ``sqrt((n - k_fixest)/(n - K_ours))``
  (``K_ours``: the identified coefficients, the unit effects and T - 1 periods).
  Weighted (``SurveyDesign(weights="w")`` against pyfixest ``weights="w"``): our cells and
  aggregations average the treated rows with the weights, as the port's ``weighted_emfx``
  does from etwfe's weighted fit (etwfe's ``emfx`` itself averages them unweighted);
  our variance is the design-based one (PSU = unit, ``G/(G-1)`` only), so the SE ratio is
  ``sqrt((n - k_fixest)/(n - 1))``.
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

HERE = Path(__file__).parent / "fixtures"
FIXTURE = json.loads((HERE / "etwfe_reference.json").read_text())
KINDS = {"simple": None, "group": "group", "calendar": "calendar", "event": "event_study"}


def _theirs(case):
    return FIXTURE["cases"][case]["vcov_variants"]["cluster_unit"]


def _compare(res, case, se_ratio, rtol=1e-9):
    theirs = _theirs(case)
    if "weighted_emfx" in theirs:
        theirs = {"att_gt": theirs["weighted_emfx"]["att_gt"],
                  "aggregations": theirs["weighted_emfx"]}
    cells = res.group_time_effects
    gt = theirs["att_gt"]
    ours = cells.set_index(["group", "time"])["estimate"]
    for g, t, est in zip(gt["g"], gt["t"], gt["estimate"]):
        assert ours[(g, t)] == pytest.approx(est, abs=1e-10)
    for kind, name in KINDS.items():
        ref = theirs["aggregations"][kind]
        if name is None:
            est, se = np.array([res.att]), np.array([res.se])
        else:
            table = res.aggregate(name)
            est, se = table["estimate"].to_numpy(), table["se"].to_numpy()
            if kind == "event" and res.control_group == "never_treated":
                keep = table["event_time"].to_numpy() >= 0  # etwfe lists leads too
                est, se = est[keep], se[keep]
                ref_keep = np.asarray(ref["label"]) >= 0
                ref = {k: np.asarray(v)[ref_keep] for k, v in ref.items()}
        np.testing.assert_allclose(est, ref["estimate"], rtol=0, atol=1e-10)
        if se_ratio is not None and kind == "simple":
            cell_se = cells.set_index(["group", "time"])["se"]
            ratio = [cell_se[(g, t)] / s for g, t, s in zip(gt["g"], gt["t"], gt["std.error"])]
            if "w" in gt:  # the weighted cells (etwfe's per-cell SEs are not used otherwise)
                np.testing.assert_allclose(ratio, se_ratio, rtol=rtol)
        if se_ratio is not None:
            np.testing.assert_allclose(se / np.asarray(ref["std.error"]), se_ratio, rtol=rtol)


@pytest.fixture(scope="module")
def mpdta():
    data = dd.load_mpdta()
    return data


def test_linear_not_yet_treated(mpdta):
    res = dd.WooldridgeDiD().fit(mpdta, outcome="lemp", unit="countyreal", time="year",
                                 first_treat="first.treat")
    vcov = _theirs("mpdta_notyet_unitfe")["vcov"]
    n, g = FIXTURE["cases"]["mpdta_notyet_unitfe"]["n_obs"], vcov["n_clusters"]
    k_ours = 7 + 500 + 4  # cells, unit effects, period effects
    ratio = math.sqrt((n - vcov["df_k"]) / (n - k_ours))
    assert vcov["ssc"] == pytest.approx(g / (g - 1) * (n - 1) / (n - vcov["df_k"]), rel=1e-12)
    _compare(res, "mpdta_notyet_unitfe", ratio)


def test_linear_never_treated_points(mpdta):
    res = dd.WooldridgeDiD(control_group="never_treated").fit(
        mpdta, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")
    _compare(res, "mpdta_never", None)  # etwfe's cohort effects: other SE constants


@pytest.mark.parametrize("case,method,outcome", [("sim_logit", "logit", "y_bin"),
                                                 ("sim_poisson", "poisson", "y_count")])
def test_nonlinear(case, method, outcome):
    sim = pd.read_csv(HERE / "etwfe_sim_panel.csv")
    res = dd.WooldridgeDiD(method=method).fit(sim, outcome, "unit", "time", "first_treat")
    n = FIXTURE["cases"][case]["n_obs"]
    k = len(_theirs(case)["coefficients"]["estimate"])
    # both fits are IRLS solutions to ~1e-12: the SE ratio holds to ~1e-9
    _compare(res, case, math.sqrt((n - k) / (n - 1)), rtol=1e-7)


def _with_covariates(data):
    """The port's ``add_columns``: the same integer arithmetic, so the same floats."""
    county, year = data["countyreal"].astype(int), data["year"].astype(int)
    return data.assign(xtv=data["lpop"] + 0.05 * ((county * 7 + year * 3) % 11 - 5),
                       w=1.0 + (county % 5) / 4.0)


@pytest.mark.parametrize("case,control,covariate", [
    ("mpdta_notyet_lpop_unitfe", "not_yet_treated", "lpop"),
    ("mpdta_notyet_xtv_unitfe", "not_yet_treated", "xtv"),
    ("mpdta_never_xtv_unitfe", "never_treated", "xtv"),
    ("mpdta_notyet_xtv_weighted", "not_yet_treated", "xtv")])
def test_covariates(mpdta, case, control, covariate):
    data = _with_covariates(mpdta)
    weighted = case.endswith("weighted")
    design = dd.SurveyDesign(weights="w") if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the weights' normalisation note
        res = dd.WooldridgeDiD(control_group=control).fit(
            data, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat",
            covariates=[covariate], survey_design=design)
    reference = FIXTURE["cases"][case]
    vcov, n = _theirs(case)["vcov"], reference["n_obs"]
    k_fixest = vcov["df_k"]
    fixest_coefs = len(_theirs(case)["coefficients"]["estimate"])
    assert k_fixest == fixest_coefs + 5  # nested unit effects count once, plus 4 periods
    if weighted:
        ratio = math.sqrt((n - k_fixest) / (n - 1))
    else:  # the same identified coefficients as pyfixest, then 500 units and 4 periods
        ratio = math.sqrt((n - k_fixest) / (n - (fixest_coefs + 500 + 4)))
    _compare(res, case, ratio)
