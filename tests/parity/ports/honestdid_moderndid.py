"""Reference values of HonestDiD (Rambachan & Roth 2023) from moderndid's didhonest.

Source: the PyPI package ``moderndid`` 0.4.1, module ``moderndid.didhonest`` (a
Python port of R ``HonestDiD``), with its ``didhonest`` extra (cvxpy, highspy).
moderndid needs Python >= 3.12. Generated with Python 3.12.1, numpy 2.5, scipy
1.18, cvxpy 1.9 (Clarabel 0.11), highspy 1.16, polars 2.1 (exact versions in
the fixture's ``meta``). Inputs are pure numbers (betahat ordered pre then
post without the reference period, sigma, num_pre_periods, num_post_periods),
stored in the fixture; alpha = 0.05 everywhere.

API used (``import moderndid.didhonest as h``; ``l`` is a 1-D float array):

* ``h.construct_original_cs(b, S, npre, npost, l_vec=l, alpha=0.05)``
* ``h.create_sensitivity_results_sm(b, S, npre, npost, method="FLCI",
  m_vec=None, l_vec=l, alpha=0.05)``: m_vec=None gives moderndid's (and R's)
  default grid ``linspace(0, compute_delta_sd_upperbound_m(b, S, npre, 0.05),
  10)``, recorded as ``m_vec``. Beside it ``h.compute_flci(b, S, M, npre,
  npost, post_period_weights=l, alpha=0.05)`` (what the wrapper calls) gives
  the half-length, the affine weights and the centre; its lb/ub are asserted
  equal to the wrapper's. ``h.minimize_variance`` and
  ``fixed_length_ci.get_min_bias_h`` give the ends of the h search.
* ``h.compute_conditional_cs_sd`` / ``_rm`` / ``_sdrm(b, S, npre, npost,
  l_vec=l, alpha=0.05, m_bar=M, hybrid_flag=F, grid_points=1000,
  grid_lb=None, grid_ub=None, seed=0)`` with F = "ARP" (method
  "Conditional") or "LF" (method "C-LF"): exactly the call that
  ``create_sensitivity_results_sm/_rm`` make for each M (checked once per
  case and family: ``wrapper_check``). lb/ub = first/last accepted grid
  point, as in the wrappers. Recorded with each: the grid ends actually used,
  its step, the number of accepted points, whether they are contiguous and
  whether an end of the grid was accepted (open CI).
* DeltaSDRM: ``h.create_sensitivity_results_rm(..., bound="deviation from
  linear trend")`` = ``compute_conditional_cs_sdrm``.
* Identified sets (betahat taken as the truth): ``h.compute_identified_set_sd
  / _rm / _sdrm(m_bar, true_beta=b, l_vec=l, num_pre_periods,
  num_post_periods)``; ``h.compute_delta_sd_upperbound_m(b, S, npre, 0.05)``
  and ``h.compute_delta_sd_lowerbound_m(b, S, npre, 0.05)``.
* ``h.honest_did`` is not used: it takes a moderndid event-study object, and
  it changes a default (grid_points=100 for relative magnitudes, 1000 in
  ``create_sensitivity_results_rm``).

Defaults that fix the answer (moderndid 0.4.1; recorded per call):

* Every call leaves monotonicity_direction and bias_direction at None,
  hybrid_kappa at alpha/10 = 0.005, post_period_moments_only at True, seed 0,
  grid_points 1000.
* DeltaSD ARP/LF grid (``utils.linear_trend_grid_bounds``): centre c =
  l'b_post + b_last_pre * sum_t t*l_t (extension of the last pre slope),
  half-width M * sum_t |l_t| t(t+1)/2 + 20 * max(sd(c), sd(l'b_post)).
* DeltaRM grid (``utils.relative_magnitudes_grid_bounds``, per Mbar): centre
  l'b_post, half-width R*D + max(20 sd(l'b_post), 6 R sd_D), R = Mbar *
  sum_t t|l_t|, D = largest |first difference| of (b_pre, 0), sd_D the
  largest sd of those differences.
* DeltaSDRM grid: ``linear_trend_grid_bounds(..., relative=True)``: centre as
  DeltaSD, half-width Mbar*reach*D2 + max(20 max(sd(c), sd(l'b_post)),
  6 Mbar reach sd_D2), D2 = largest |second difference| of (b_pre, 0).
* FLCI: h (the sd of the affine estimator) is searched on [h_min_variance,
  h_min_bias] by golden section to tolerance min((h_max - h_min)/num_points,
  1e-6 h_max), num_points = 100, after a closed form near h_min; M = 0 takes
  the minimum-variance weights. No grid over h is used as the answer. The
  worst-case bias is a cvxpy/Clarabel program and cv_alpha(t) the exact
  folded-normal quantile (brentq), so FLCI numbers carry solver tolerance
  (~1e-8 relative) but no Monte Carlo error.
* LF critical value: 1000 draws of numpy ``default_rng(seed=0)
  .multivariate_normal`` and one LP per draw; the 1 - kappa quantile.

Conventions and traps found:

* C-LF and Conditional endpoints ARE grid points: lb/ub move with
  grid_points and grid_lb/grid_ub (a step is ~(grid_ub - grid_lb)/999).
  Compare with a tolerance of one grid step, or pass the recorded grid.
* moderndid's default grids differ from R HonestDiD's: R centres the DeltaSD
  grid on 0 (identified set at trueBeta = 0, +-20 sd(l'b_post)) and uses
  [-20 sd, +20 sd] for DeltaRM/DeltaSDRM. So default-grid results agree with
  R only up to a grid step, and R's narrow grid can cut the CI (R's SDRM ub
  below is the grid end).
* R's FLCI takes the best of a 100-point grid over h and a Monte Carlo
  folded-normal quantile (1e6 draws), so R's FLCI differs from moderndid's at
  ~1e-4 (the "bc" r_reference block measures it).
* C-LF uses numpy's RNG; R's uses R's RNG: C-LF can never agree exactly with
  R (nor with an implementation not drawing numpy default_rng(0)
  multivariate_normal in the same order).
* DeltaSDRM in moderndid / R is "second differences relative to the largest
  pre-period second difference" (one parameter Mbar). It is NOT the
  intersection DeltaSD(M) and DeltaRM(Mbar); no (M, Mbar) version exists.
* The DeltaSD identified set is empty (moderndid returns NaN, stored null)
  when M < the largest |second difference| of (b_pre, 0); R returns
  l'b_post for both ends there (its LP "did not find an optimum" branch).
  Identified sets under RM with Mbar = 0 are the point l'b_post.
* moderndid vs R on BCdata (``cases.bc.r_reference``; R values as printed
  by HonestDiD.jl, inputs rounded to 10 digits): with R's grids passed
  explicitly, every Conditional (ARP) and C-LF endpoint, the original CI,
  DeltaSD_upperBound_Mpre and lowerBound (inf) agree with R to the printed
  digits (<= 6e-11). The LF endpoints agree although the RNGs differ (no grid
  point moved here; it can). FLCI differs by ~5e-5 (R's Monte Carlo quantile;
  moderndid's M = 0.1 half-length is within 5e-8 of the exact corner
  solution, R's within 5e-5), so the C-F hybrid, whose grid is the FLCI(kappa)
  interval, differs by 1.9e-4 (a tenth of its grid step). R's own CI is cut
  by its grid twice: DeltaSDRM(Mbar=1) ub = 0.3794577373 = 20 sd and DeltaSD
  avg-l (gridPoints 100) ub = 0.8531008055 = its grid end (open_at_grid_ub).
  moderndid's default grids were never open in the cases here.
* At M = 0 the Conditional DeltaSD CI is centred on b_0 + b_-2 (only moments
  touching post periods are used: delta_0 = -delta_-2) while the FLCI uses
  minimum-variance weights over all pre periods, so the two differ a lot
  (mpdta: [-0.035, 0.044] vs [-0.051, 0.007]); R behaves the same way.
* NaN is stored as null, +-inf as the strings "inf"/"-inf".
* moderndid prints a HiGHS banner on stdout; no call raised an error here
  (an error would be stored as ``error`` with null numbers).

Cases: ``mpdta_cs_universal`` (our CallawaySantAnna event study on R did's
mpdta, universal base, never-treated controls, analytic vcov; produced in the
main environment by ``python tests/parity/ports/honestdid_moderndid.py
--print-mpdta-inputs``, which fits ``dd.CallawaySantAnna(base_period=
"universal").fit(df, outcome="lemp", unit="countyreal", time="year",
first_treat="first.treat")``, drops e = -1 from ``event_study_effects`` and
``event_study_vcov`` and symmetrises the vcov as (V + V')/2, its raw
asymmetry being ~2e-20); ``bc`` (Benzarti & Carloni, R HonestDiD's
``BCdata_EventStudy``, as printed to 10 significant digits in HonestDiD.jl's
test/reference.jl; neither moderndid nor this machine has the R .rda), with
an ``r_reference`` block: R values from that file next to moderndid run with
R's grids; ``synthetic`` (literal numbers below).

Run from the repository root with a scratch venv outside the repository (and
not this checkout on ``sys.path``, hence ``-P``):

    ~/.pyenv/versions/3.12.1/bin/python -m venv /work/scratch/venv-moderndid
    /work/scratch/venv-moderndid/bin/pip install "moderndid[didhonest]==0.4.1"
    /work/scratch/venv-moderndid/bin/python -P tests/parity/ports/honestdid_moderndid.py

It writes ``tests/parity/fixtures/honestdid_moderndid.json`` (about 3
minutes). Reruns reproduce every number bit for bit on the same machine;
only the ``seconds`` fields (and ``meta.date``) change.
"""

from __future__ import annotations

import datetime
import json
import math
import platform
import sys
import time
import warnings

import numpy as np

OUT = "tests/parity/fixtures/honestdid_moderndid.json"
ALPHA = 0.05
GRID_POINTS = 1000
SEED = 0
MBAR_GRID = [0.0, 0.5, 1.0, 1.5, 2.0]

# Produced by --print-mpdta-inputs with diff_diff at commit 683dd98 (see docstring).
MPDTA_CS_UNIVERSAL = dict(
    event_times=[-4, -3, -2, 0, 1, 2, 3],
    reference_period=-1,
    betahat=[0.003306356692516565, 0.025021829597554557, 0.024458744971171377,
             -0.019931816789258493, -0.05095736706519682, -0.13725873888940301,
             -0.10081136308540614],
    sigma=[
        [0.0005990922750162139, 0.00033658051582771676, 0.0002112377981893105,
         2.847826986453273e-05, -8.262958814716546e-05, -0.0002139814691481773,
         -0.00017203633245703643],
        [0.00033658051582771676, 0.0003289531936259701, 0.00017750632030848757,
         3.830287337328717e-05, -4.275982511321036e-05, -0.0001313985485019329,
         -9.718142006030885e-05],
        [0.0002112377981893105, 0.00017750632030848757, 0.00020308131052072125,
         3.3334601037239485e-05, -4.0437444283465777e-05, -9.593931731525083e-05,
         -6.446987160938838e-05],
        [2.847826986453273e-05, 3.830287337328717e-05, 3.3334601037239485e-05,
         0.00014014317318009048, 6.165493198845873e-05, 4.380876284885434e-05,
         6.575330769059592e-05],
        [-8.262958814716546e-05, -4.275982511321036e-05, -4.0437444283465777e-05,
         6.165493198845873e-05, 0.0002859614633671193, 0.0003611232923273502,
         0.0003259254978014035],
        [-0.0002139814691481773, -0.0001313985485019329, -9.593931731525083e-05,
         4.380876284885434e-05, 0.0003611232923273502, 0.0013302180682214363,
         0.0008673084320522858],
        [-0.00017203633245703643, -9.718142006030885e-05, -6.446987160938838e-05,
         6.575330769059592e-05, 0.0003259254978014035, 0.0008673084320522858,
         0.0011829222444469706],
    ],
    num_pre_periods=3, num_post_periods=4,
)

BC_SOURCE = ("https://github.com/eohne/HonestDiD.jl/blob/"
             "8179fe811b5e4e2296ad65e14568049e7bed2eda/test/reference.jl")
# R HonestDiD BCdata_EventStudy (years 2004-2007 pre, 2008 reference, 2009-2012 post).
BC = dict(
    event_times=[2004, 2005, 2006, 2007, 2009, 2010, 2011, 2012],
    reference_period=2008,
    betahat=[0.006696351804, 0.02934503369, -0.006472972222, 0.0730149895, 0.1959611177,
             0.3120639026, 0.2395415455, 0.1260425001],
    sigma=[
        [0.0008428358124, 0.0004768686777, 0.0002618051076, 0.0002354220342,
         0.0001676371467, 0.0001128707663, 1.992816215e-05, -0.0001368265366],
        [0.0004768686777, 0.0006425420288, 0.0003987425007, 0.0002435515198,
         0.0002201960306, 0.0001804591157, 3.84376508e-05, -2.960421989e-05],
        [0.0002618051076, 0.0003987425007, 0.0005229949602, 0.000211768609,
         0.0001840722252, 0.000145852784, 7.005197403e-05, 5.952994979e-05],
        [0.0002354220342, 0.0002435515198, 0.000211768609, 0.0003089595411,
         0.0001197866077, 0.0001334081317, 0.0001016335009, 0.0001079051726],
        [0.0001676371467, 0.0002201960306, 0.0001840722252, 0.0001197866077,
         0.000359970436, 0.0002478818642, 0.0001749579242, 0.0001654256921],
        [0.0001128707663, 0.0001804591157, 0.000145852784, 0.0001334081317,
         0.0002478818642, 0.0004263949813, 0.0002171437809, 0.0002892747871],
        [1.992816215e-05, 3.84376508e-05, 7.005197403e-05, 0.0001016335009,
         0.0001749579242, 0.0002171437809, 0.0004886697861, 0.0003805322049],
        [-0.0001368265366, -2.960421989e-05, 5.952994979e-05, 0.0001079051726,
         0.0001654256921, 0.0002892747871, 0.0003805322049, 0.000761739444],
    ],
    num_pre_periods=4, num_post_periods=4,
)

# Values that HonestDiD.jl's reference.jl says R HonestDiD computed on BCdata_EventStudy
# (10 significant digits; R version not stated). The settings of each R call are those
# of the HonestDiD.jl tests that use them (test/validate_e2e.jl, validate_variants.jl,
# validate_integration.jl at the same commit); grid bounds are R's defaults (see
# r_grid()). "inferred": the file names no call for it; the settings are our reading.
R_BC = [
    dict(name="original_ci", kind="original", l="first_post",
         r=(0.15877494280765, 0.233147292681241)),
    dict(name="flci_M0", kind="flci", l="first_post", m=0.0, r=(0.131411316, 0.2161696482),
         r_half_length=0.04237916612),
    dict(name="flci_M0.1", kind="flci", l="first_post", m=0.1, r=(0.1194440001, 0.4185082143),
         r_half_length=0.1495321071,
         r_optimal_vec=[2.861389194e-12, -9.074547384e-12, 2.517812476e-11, 1, 1, 0, 0, 0]),
    dict(name="flci_M0.2", kind="flci", l="first_post", m=0.2, r=(0.01944400015, 0.5185082143),
         r_half_length=0.2495321071),
    dict(name="DeltaSD_upperBound_Mpre", kind="m_upper", r=0.202169869297069),
    dict(name="DeltaSD_lowerBound_Mpre_gp200", kind="m_lower", grid_points=200, r="inf"),
    dict(name="sens_conditional_M0", kind="cs", delta="sd", flag="ARP", l="first_post", m=0.0,
         grid_points=1000, r=(0.2100501789, 0.3277998271),
         r_call="createSensitivityResults(method='Conditional', Mvec=c(0, 0.1, 0.2))"),
    dict(name="sens_conditional_M0.1", kind="cs", delta="sd", flag="ARP", l="first_post", m=0.1,
         grid_points=1000, r=(0.1195044811, 0.4180257149),
         r_call="createSensitivityResults(method='Conditional', Mvec=c(0, 0.1, 0.2))"),
    dict(name="sens_conditional_M0.2", kind="cs", delta="sd", flag="ARP", l="first_post", m=0.2,
         grid_points=1000, r=(0.02030132213, 0.5179737331),
         r_call="createSensitivityResults(method='Conditional', Mvec=c(0, 0.1, 0.2))"),
    dict(name="ccs_sd_arp", kind="cs", delta="sd", flag="ARP", l="first_post", m=0.1,
         grid_points=200, r=(0.1228761035, 0.4168150178),
         r_call="computeConditionalCS_DeltaSD(M=0.1, hybrid_flag='ARP', gridPoints=200)"),
    dict(name="ccs_sd_flci_hybrid", kind="cs", delta="sd", flag="FLCI", l="first_post", m=0.1,
         grid_points=200, r=(0.1197138266, 0.4182383879),
         r_call="computeConditionalCS_DeltaSD(M=0.1, hybrid_flag='FLCI', gridPoints=200)"),
    dict(name="ccs_sd_avg_arp", kind="cs", delta="sd", flag="ARP", l="avg_post", m=0.1,
         grid_points=100, r=(-0.1809607769, 0.8531008055),
         r_call="computeConditionalCS_DeltaSD(l_vec=rep(1/4, 4), M=0.1, hybrid_flag='ARP', "
                "gridPoints=100)"),
    dict(name="ccs_rm_arp", kind="cs", delta="rm", flag="ARP", l="first_post", m=1.0,
         grid_points=200, r=(0.07055244362, 0.3184394077), inferred=True,
         r_call="computeConditionalCS_DeltaRM(Mbar=1, hybrid_flag='ARP', gridPoints=200)"),
    dict(name="ccs_sdrm_arp", kind="cs", delta="sdrm", flag="ARP", l="first_post", m=1.0,
         grid_points=100, r=(0.07282522231, 0.3794577373),
         r_call="computeConditionalCS_DeltaSDRM(Mbar=1, hybrid_flag='ARP', gridPoints=100)"),
    dict(name="lf_sd", kind="cs", delta="sd", flag="LF", l="first_post", m=0.1,
         grid_points=200, r=(0.1228761035, 0.4168150178),
         r_call="computeConditionalCS_DeltaSD(M=0.1, hybrid_flag='LF', gridPoints=200, seed=0)"),
    dict(name="lf_rm", kind="cs", delta="rm", flag="LF", l="first_post", m=1.0,
         grid_points=200, r=(0.07055244362, 0.3184394077),
         r_call="computeConditionalCS_DeltaRM(Mbar=1, hybrid_flag='LF', gridPoints=200, seed=0)"),
]

# A fixed small case: pre-trend with small curvature, rising effects, correlated errors
# (one negative covariance). Literal numbers; sigma is exactly symmetric and positive definite.
SYNTHETIC = dict(
    event_times=[-4, -3, -2, 0, 1, 2],
    reference_period=-1,
    betahat=[-0.06, -0.035, -0.02, 0.15, 0.22, 0.31],
    sigma=[
        [0.0009, 0.0003375, 0.0001215, 0.00006, 0.00002, -0.00004],
        [0.0003375, 0.000625, 0.000225, 0.00011, 0.00006, 0.00002],
        [0.0001215, 0.000225, 0.0004, 0.0002, 0.00011, 0.00006],
        [0.00006, 0.00011, 0.0002, 0.000484, 0.00028, 0.00016],
        [0.00002, 0.00006, 0.00011, 0.00028, 0.000784, 0.00044],
        [-0.00004, 0.00002, 0.00006, 0.00016, 0.00044, 0.001225],
    ],
    num_pre_periods=3, num_post_periods=3,
)

# sd_conditional_m: the two M of the DeltaSD Conditional / C-LF calls (one below and one
# above the largest pre-period |second difference|); sdrm_mbar: the DeltaSDRM Mbar values.
CASES = {
    "mpdta_cs_universal": dict(inputs=MPDTA_CS_UNIVERSAL, sd_conditional_m=[0.0, 0.03],
                               sdrm_mbar=[0.5, 1.0],
                               source="diff_diff CallawaySantAnna(base_period='universal') on "
                                      "R did's mpdta (lemp, countyreal, year, first.treat)"),
    "bc": dict(inputs=BC, sd_conditional_m=[0.0, 0.1], sdrm_mbar=[0.5, 1.0],
               source="R HonestDiD BCdata_EventStudy (Benzarti & Carloni 2019, profits), "
                      "10 significant digits from " + BC_SOURCE),
    "synthetic": dict(inputs=SYNTHETIC, sd_conditional_m=[0.0, 0.02], sdrm_mbar=[0.5, 1.0],
                      source="literal numbers in this script"),
}


def num(x):
    """JSON-safe float: NaN -> None, +-inf -> 'inf'/'-inf'."""
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def timed(fn, *args, **kwargs):
    """(result, seconds, warnings, error) of one call."""
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out, err = fn(*args, **kwargs), None
        except Exception as exc:  # recorded, not raised
            out, err = None, f"{type(exc).__name__}: {exc}"
    msgs = sorted({str(w.message) for w in caught})
    return out, round(time.perf_counter() - t0, 2), msgs, err


def l_vectors(npost):
    first = np.zeros(npost)
    first[0] = 1.0
    return {"first_post": first, "avg_post": np.full(npost, 1.0 / npost)}


def original(h, b, S, npre, npost, l):
    res, secs, warns, err = timed(h.construct_original_cs, b, S, npre, npost, l_vec=l, alpha=ALPHA)
    if err:
        return dict(error=err, seconds=secs)
    return dict(lb=num(res.lb), ub=num(res.ub), seconds=secs, warnings=warns)


def flci(h, b, S, npre, npost, l):
    from moderndid.didhonest.fixed_length_ci import get_min_bias_h

    res, secs, warns, err = timed(h.create_sensitivity_results_sm, b, S, npre, npost,
                                  method="FLCI", m_vec=None, l_vec=l, alpha=ALPHA)
    rec = dict(call=("create_sensitivity_results_sm(b, S, npre, npost, method='FLCI', "
                     "m_vec=None, l_vec=l, alpha=0.05)"),
               m_vec_rule="linspace(0, compute_delta_sd_upperbound_m(b, S, npre, 0.05), 10)",
               alpha=ALPHA, num_points=100, seconds=secs, warnings=warns,
               h_min_variance=num(h.minimize_variance(S, npre, npost, l)),
               h_min_bias=num(get_min_bias_h(S, npre, npost, l)))
    if err:
        rec["error"] = err
        return rec
    rec["m_vec"] = [num(m) for m in res["m"]]
    rows = []
    for m, lb, ub in zip(res["m"], res["lb"], res["ub"]):
        d, dsecs, dwarns, derr = timed(h.compute_flci, b, S, m, npre, npost,
                                       post_period_weights=l, alpha=ALPHA)
        row = dict(m=num(m), lb=num(lb), ub=num(ub), seconds=dsecs)
        if derr:
            row["compute_flci_error"] = derr
        else:
            assert (float(d.flci[0]), float(d.flci[1])) == (float(lb), float(ub))
            row.update(half_length=num(d.optimal_half_length),
                       center=num(d.optimal_vec @ b),
                       optimal_vec=[num(v) for v in d.optimal_vec], status=str(d.status))
        rows.append(row)
    rec["rows"] = rows
    return rec


def default_grid(delta, b, S, npre, npost, l, m, flag):
    """The grid ends moderndid computes when grid_lb/grid_ub are None."""
    from moderndid.didhonest import utils

    if delta == "rm":
        return utils.relative_magnitudes_grid_bounds(b, S, npre, npost, l, m)
    if delta == "sdrm":
        return utils.linear_trend_grid_bounds(b, S, npre, npost, l, m, relative=True)
    if flag == "FLCI":
        return None  # FLCI hybrid: the FLCI (alpha = kappa) ends
    return utils.linear_trend_grid_bounds(b, S, npre, npost, l, m)


def conditional(h, delta, b, S, npre, npost, l, m, flag, grid_points=GRID_POINTS,
                grid_lb=None, grid_ub=None):
    fn = {"sd": h.compute_conditional_cs_sd, "rm": h.compute_conditional_cs_rm,
          "sdrm": h.compute_conditional_cs_sdrm}[delta]
    res, secs, warns, err = timed(fn, b, S, npre, npost, l_vec=l, m_bar=m, alpha=ALPHA,
                                  hybrid_flag=flag, grid_points=grid_points, grid_lb=grid_lb,
                                  grid_ub=grid_ub, seed=SEED)
    rec = dict(m=num(m), hybrid_flag=flag, grid_points=grid_points, seed=SEED, alpha=ALPHA,
               hybrid_kappa=ALPHA / 10, post_period_moments_only=True,
               monotonicity_direction=None, bias_direction=None,
               grid_given=grid_lb is not None, seconds=secs, warnings=warns)
    if err:
        rec.update(error=err, lb=None, ub=None)
        return rec
    grid, acc = np.asarray(res["grid"], float), np.asarray(res["accept"], float)
    idx = np.flatnonzero(acc)
    if grid_lb is None:
        expect = default_grid(delta, b, S, npre, npost, l, m, flag)
        if expect is not None:
            assert (float(grid[0]), float(grid[-1])) == (float(expect[0]), float(expect[1]))
    rec.update(lb=num(grid[idx[0]]) if idx.size else None,
               ub=num(grid[idx[-1]]) if idx.size else None,
               grid_lb=num(grid[0]), grid_ub=num(grid[-1]), grid_step=num(grid[1] - grid[0]),
               n_accepted=int(idx.size),
               accepted_contiguous=bool(idx.size and idx[-1] - idx[0] + 1 == idx.size),
               open_at_grid_lb=bool(acc[0]), open_at_grid_ub=bool(acc[-1]))
    return rec


def identified(h, delta, b, npre, npost, l, m):
    fn = {"sd": h.compute_identified_set_sd, "rm": h.compute_identified_set_rm,
          "sdrm": h.compute_identified_set_sdrm}[delta]
    res, secs, warns, err = timed(fn, m, b, l, npre, npost)
    if err:
        return dict(m=num(m), error=err, id_lb=None, id_ub=None)
    return dict(m=num(m), id_lb=num(res.id_lb), id_ub=num(res.id_ub),
                empty=bool(math.isnan(float(res.id_lb))), warnings=warns)


def wrapper_check(h, b, S, npre, npost, l, sd_m, rm_m, sdrm_m):
    """One call of each public wrapper equals the direct call recorded next to it."""
    out = {}
    sm, rm = h.create_sensitivity_results_sm, h.create_sensitivity_results_rm
    for name, fn, kw, delta, m, flag in [
        ("sd_conditional", sm, dict(method="Conditional", m_vec=[sd_m]), "sd", sd_m, "ARP"),
        ("sd_c_lf", sm, dict(method="C-LF", m_vec=[sd_m]), "sd", sd_m, "LF"),
        ("rm_c_lf", rm, dict(method="C-LF", m_bar_vec=[rm_m]), "rm", rm_m, "LF"),
        ("sdrm_c_lf", rm, dict(method="C-LF", m_bar_vec=[sdrm_m],
                               bound="deviation from linear trend"), "sdrm", sdrm_m, "LF"),
    ]:
        res, _, _, err = timed(fn, b, S, npre, npost, l_vec=l, alpha=ALPHA, **kw)
        direct = conditional(h, delta, b, S, npre, npost, l, m, flag)
        same = (err is None
                and [num(res["lb"][0]), num(res["ub"][0])] == [direct["lb"], direct["ub"]])
        assert same, (name, err, res, direct)
        out[name] = dict(m=num(m), equal=same)
    return out


def run_case(h, spec):
    inp = spec["inputs"]
    b, S = np.array(inp["betahat"], float), np.array(inp["sigma"], float)
    npre, npost = inp["num_pre_periods"], inp["num_post_periods"]
    assert b.size == npre + npost and S.shape == (b.size, b.size) and (S == S.T).all()
    lvecs = l_vectors(npost)
    case = dict(source=spec["source"],
                inputs=dict(inp, min_eigenvalue=num(np.linalg.eigvalsh(S).min())),
                l_vecs={k: [num(v) for v in l] for k, l in lvecs.items()},
                m_upper=num(h.compute_delta_sd_upperbound_m(b, S, npre, ALPHA)),
                sd_conditional_m=spec["sd_conditional_m"], rm_mbar=MBAR_GRID,
                sdrm_mbar=spec["sdrm_mbar"])
    lower, secs, warns, err = timed(h.compute_delta_sd_lowerbound_m, b, S, npre, ALPHA)
    case["m_lower"] = dict(value=None if err else num(lower), error=err, seconds=secs,
                           warnings=warns, grid_points=1000,
                           grid_ub=num(3 * np.sqrt(np.diag(S)[:npre]).max()))
    for key in ["original_ci", "sd_flci", "sd_conditional", "sd_c_lf", "rm_c_lf",
                "rm_conditional", "sdrm_c_lf", "sdrm_conditional", "identified_sd",
                "identified_rm", "identified_sdrm"]:
        case[key] = {}
    for lname, l in lvecs.items():
        print(f"  {lname}", flush=True)
        case["original_ci"][lname] = original(h, b, S, npre, npost, l)
        case["sd_flci"][lname] = flci(h, b, S, npre, npost, l)
        m_sd = case["sd_flci"][lname].get("m_vec", [])
        for key, delta, flag, ms in [
            ("sd_conditional", "sd", "ARP", spec["sd_conditional_m"]),
            ("sd_c_lf", "sd", "LF", spec["sd_conditional_m"]),
            ("rm_c_lf", "rm", "LF", MBAR_GRID),
            ("rm_conditional", "rm", "ARP", MBAR_GRID),
            ("sdrm_c_lf", "sdrm", "LF", spec["sdrm_mbar"]),
            ("sdrm_conditional", "sdrm", "ARP", spec["sdrm_mbar"]),
        ]:
            case[key][lname] = [conditional(h, delta, b, S, npre, npost, l, m, flag) for m in ms]
        case["identified_sd"][lname] = [identified(h, "sd", b, npre, npost, l, m)
                                        for m in sorted(set(m_sd) | set(spec["sd_conditional_m"]))]
        case["identified_rm"][lname] = [identified(h, "rm", b, npre, npost, l, m)
                                        for m in MBAR_GRID]
        case["identified_sdrm"][lname] = [identified(h, "sdrm", b, npre, npost, l, m)
                                          for m in sorted(set(spec["sdrm_mbar"]) | {0.0, 2.0})]
    case["wrapper_check"] = wrapper_check(h, b, S, npre, npost, lvecs["first_post"],
                                          spec["sd_conditional_m"][1], 1.0, spec["sdrm_mbar"][1])
    return case


def r_grid(h, delta, S, npre, npost, l, m):
    """R HonestDiD's default grid ends: DeltaSD: ID set at trueBeta = 0 +- 20 sd(l'b_post);
    DeltaRM and DeltaSDRM: +-20 sd(l'b_post)."""
    sd = float(np.sqrt(l @ S[npre:, npre:] @ l))
    if delta == "sd":
        ids = h.compute_identified_set_sd(m, np.zeros(npre + npost), l, npre, npost)
        return float(ids.id_lb) - 20 * sd, float(ids.id_ub) + 20 * sd
    return -20 * sd, 20 * sd


def r_reference(h):
    b, S = np.array(BC["betahat"], float), np.array(BC["sigma"], float)
    npre, npost = BC["num_pre_periods"], BC["num_post_periods"]
    lvecs = l_vectors(npost)
    rows = []
    for ref in R_BC:
        row = {k: v for k, v in ref.items() if k not in ("r", "l")}
        l = lvecs.get(ref.get("l", "first_post"))
        row["l_vec"] = ref.get("l")
        r = ref["r"]
        if ref["kind"] == "original":
            res = h.construct_original_cs(b, S, npre, npost, l_vec=l, alpha=ALPHA)
            ours = (float(res.lb), float(res.ub))
        elif ref["kind"] == "flci":
            res = h.compute_flci(b, S, ref["m"], npre, npost, post_period_weights=l, alpha=ALPHA)
            ours = (float(res.flci[0]), float(res.flci[1]))
            row["moderndid_half_length"] = num(res.optimal_half_length)
            row["moderndid_optimal_vec"] = [num(v) for v in res.optimal_vec]
        elif ref["kind"] == "m_upper":
            ours = float(h.compute_delta_sd_upperbound_m(b, S, npre, ALPHA))
        elif ref["kind"] == "m_lower":
            ours = float(h.compute_delta_sd_lowerbound_m(b, S, npre, ALPHA,
                                                        grid_points=ref["grid_points"]))
        else:
            if ref["flag"] == "FLCI":
                glb = gub = None  # R and moderndid: the FLCI(alpha = kappa) ends
            else:
                glb, gub = r_grid(h, ref["delta"], S, npre, npost, l, ref["m"])
            rec = conditional(h, ref["delta"], b, S, npre, npost, l, ref["m"], ref["flag"],
                              grid_points=ref["grid_points"], grid_lb=glb, grid_ub=gub)
            row["moderndid"] = rec
            ours = (rec["lb"], rec["ub"])
        if isinstance(r, tuple):
            row["r_lb"], row["r_ub"] = r
            row["moderndid_lb"], row["moderndid_ub"] = num(ours[0]), num(ours[1])
            row["abs_diff_lb"] = abs(float(ours[0]) - r[0])
            row["abs_diff_ub"] = abs(float(ours[1]) - r[1])
        else:
            row["r_value"] = r
            row["moderndid_value"] = num(ours)
        rows.append(row)
    return rows


def print_mpdta_inputs():
    """Run in the MAIN environment (needs diff_diff): prints the MPDTA_CS_UNIVERSAL numbers."""
    import pandas as pd
    from pathlib import Path

    import diff_diff as dd

    path = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mpdta.csv"
    df = pd.read_csv(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dd.CallawaySantAnna(base_period="universal").fit(
            df, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")
    es, vcov = res.event_study_effects, res.event_study_vcov
    keep = [int(e) for e in es["event_time"] if e != -1]
    betahat = [float(x) for e, x in zip(es["event_time"], es["estimate"]) if e != -1]
    v = vcov.loc[keep, keep].to_numpy()
    v = (v + v.T) / 2
    print(repr(dict(event_times=keep, betahat=betahat, sigma=v.tolist())))


def main():
    from importlib.metadata import version

    import moderndid.didhonest as h

    out = {
        "meta": {
            "script": "tests/parity/ports/honestdid_moderndid.py",
            "source": (f"moderndid {version('moderndid')} moderndid.didhonest "
                       "(Python port of R HonestDiD)"),
            "python": platform.python_version(), "numpy": version("numpy"),
            "scipy": version("scipy"), "cvxpy": version("cvxpy"), "clarabel": version("clarabel"),
            "highspy": version("highspy"), "polars": version("polars"),
            "date": datetime.date.today().isoformat(),
            "alpha": ALPHA,
            "conventions": (
                "betahat/sigma exclude the reference period, pre periods first; l_vecs "
                "first_post = e_1 (R's default), avg_post = uniform average of the post periods. "
                "Conditional = hybrid_flag 'ARP', C-LF = 'LF'; hybrid_kappa = alpha/10, "
                "post_period_moments_only = True, seed = 0, grid_points = 1000 unless stated; "
                "monotonicity_direction = bias_direction = None everywhere. lb/ub of conditional "
                "methods are the first/last accepted grid points (grid_lb/grid_ub/grid_step "
                "recorded). NaN -> null, inf -> 'inf'."),
            "default_grids": (
                "DeltaSD ARP/LF: c +- (M sum|l_t| t(t+1)/2 + 20 max(sd(c), sd(l'b_post))), "
                "c = l'b_post + b_last_pre sum t l_t. DeltaRM: l'b_post +- (R D + max(20 "
                "sd(l'b_post), 6 R sd_D)), R = Mbar sum t|l_t|, D = max |first diff of "
                "(b_pre, 0)|. DeltaSDRM: c +- (Mbar reach D2 + max(20 max(sd(c), sd(l'b_post)), "
                "6 Mbar reach sd_D2)), D2 = max |second diff of (b_pre, 0)|. R HonestDiD "
                "instead: DeltaSD ID set at beta = 0 +- 20 sd(l'b_post); DeltaRM/SDRM +- 20 "
                "sd(l'b_post)."),
            "flci": ("golden-section search of h on [h_min_variance, h_min_bias] to tolerance "
                     "min((h_max-h_min)/100, 1e-6 h_max) after a closed form near h_min; M = 0: "
                     "minimum variance weights; worst-case bias by cvxpy/Clarabel; exact "
                     "folded-normal quantile. R: best of a 100-point h grid, Monte Carlo "
                     "quantile."),
            "lf_cv": "1000 draws of numpy default_rng(0).multivariate_normal, 1 - kappa quantile",
            "sdrm": ("DeltaSDRM(Mbar): post second differences <= Mbar * max pre |second "
                     "difference| (R/moderndid meaning); not DeltaSD(M) intersect DeltaRM(Mbar)"),
            "identified_sd_empty": ("moderndid returns NaN (stored null, empty=true) when M < max "
                                    "|pre second difference of (b_pre, 0)|; R returns l'b_post"),
            "calls": {
                "original_ci": "construct_original_cs(b, S, npre, npost, l_vec=l, alpha=0.05)",
                "sd_flci": ("create_sensitivity_results_sm(b, S, npre, npost, method='FLCI', "
                            "m_vec=None, l_vec=l, alpha=0.05); rows also from compute_flci(b, S, "
                            "M, npre, npost, post_period_weights=l, alpha=0.05)"),
                "sd_conditional / sd_c_lf": (
                    "compute_conditional_cs_sd(b, S, npre, npost, l_vec=l, m_bar=M, alpha=0.05, "
                    "hybrid_flag='ARP' / 'LF', grid_points=1000, grid_lb=None, grid_ub=None, "
                    "seed=0)"),
                "rm_conditional / rm_c_lf": "compute_conditional_cs_rm(same arguments, m_bar=Mbar)",
                "sdrm_conditional / sdrm_c_lf": ("compute_conditional_cs_sdrm(same arguments, "
                                                 "m_bar=Mbar) = create_sensitivity_results_rm("
                                                 "bound='deviation from linear trend')"),
                "identified_sd / _rm / _sdrm": ("compute_identified_set_sd / _rm / _sdrm(M, b, l, "
                                                "npre, npost)"),
                "m_upper": "compute_delta_sd_upperbound_m(b, S, npre, 0.05)",
                "m_lower": "compute_delta_sd_lowerbound_m(b, S, npre, 0.05) (grid_points=1000)",
                "wrapper_check": ("create_sensitivity_results_sm/_rm(..., m_vec/m_bar_vec=[one "
                                  "value]) equals the direct call for e_1"),
            },
            "seconds": "wall time per call on a 2-core machine; not reproducible",
            "regenerate": ("/work/scratch/venv-moderndid/bin/python -P "
                           "tests/parity/ports/honestdid_moderndid.py"),
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        print(name, flush=True)
        out["cases"][name] = run_case(h, spec)
    print("bc r_reference", flush=True)
    out["cases"]["bc"]["r_reference"] = dict(source=BC_SOURCE, rows=r_reference(h))
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    if "--print-mpdta-inputs" in sys.argv:
        print_mpdta_inputs()
    else:
        main()
