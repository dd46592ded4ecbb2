"""Monte Carlo coverage of EfficientDiD's 95% intervals under a stratified, clustered survey.

Criterion (EfficientDiD issue): with at least 500 replications, the 95%
confidence intervals (Taylor linearization through the design, Student t with
the design df) cover the finite-population target in 93%-97% of the
replications, for ``pt_assumption="all"`` (PT-All, the efficient estimator)
and ``pt_assumption="post"`` (PT-Post), for every post-treatment ATT(g, t)
cell (``res.group_time_effects``), the overall ATT (``res.overall_conf_int``,
``simple`` aggregation) and every post-treatment event-study effect
(``res.event_study_effects``, e >= 0). Pre-treatment cells and event times
(placebos, truth 0) and a naive fit are shown for information.

Population (fixed for the run, built once from ``--seed``)
-----------------------------------------------------------
* 20 strata x 40 PSUs x 40 units = 32,000 units, 6 periods (t = 1..6).
  Let ``s_h = h / 19`` be stratum h's position in [0, 1].
* Staggered adoption assigned per PSU (a county adopts a policy, say):
  cohort first treated in period 3, 4 or 5, or never treated, with
  probabilities (0.10 + 0.25 s_h, 0.20, 0.35 - 0.25 s_h, 0.35): early
  adopters sit in high strata, late adopters in low ones. Every cohort has an
  untreated first period (PT-All uses it as the base of every moment).
* ``x`` (binary, time-invariant) drives the second-stage sampling only
  (EfficientDiD has no covariate path): PSU j has n1_j = 8, 12, 16, 20 or 24
  of its 40 units with x = 1, drawn at random.
* Untreated outcome::

      Y0_it = a_i + lambda_t + u_j + v_jt + 0.5 x_i + e_it

  a_i ~ N(0.5 s_h + 0.3 [treated cohort], 1) unit effect; lambda_t =
  0.3 t + 0.5 sin t; u_j ~ N(0, 1) PSU effect; v_jt a stationary AR(1)
  PSU-by-period shock (rho 0.7, sd 0.8): outcomes are correlated within a
  PSU, over units and over time; e_it ~ N(0, 1).
* Exact parallel trends in ALL periods in the population: the random PSU
  shocks make the finite population's cohort means drift apart a little, so
  each treated cohort's Y0 is shifted, period by period, by a constant so
  that ``mean(Y0 | g, t) - mean(Y0 | never, t)`` is the same in every period
  t = 1..6, before and after treatment (never-treated units are left as
  drawn). Every DiD that PT-All combines then has the same population value;
  the shifts are a few hundredths, at most ~0.2 (the largest is printed).
* Treatment effect at exposure e = t - g >= 0, heterogeneous by cohort,
  event time, stratum, PSU, x and unit::

      tau_it = b_g (1 + 0.3 e) (1 + 0.6 x_i) (0.7 + 0.6 s_h)
               + (1 + 0.3 e) k_j + q_i

  with b_g = 1.0, 0.6, 1.4 for g = 3, 4, 5, k_j ~ N(0, 0.5^2) per PSU and
  q_i ~ N(0, 0.5^2) per unit. Observed ``Y = Y0 + tau [t >= g]``.

Truth: the finite-population value
----------------------------------
ATT(g, t) is the mean of tau_it over the population units of cohort g (0
before g); the overall ATT is R ``did``'s ``simple`` aggregation, the mean of
the post-treatment ATT(g, t) weighted by the population cohort sizes; the
event-study effect at e is the mean of ATT(g, g + e) over the cohorts observed
at e, weighted by population cohort sizes. Finite-population rather than
superpopulation values because (1) the samples are drawn from this one fixed
population and the design variance (with fpc) measures variability over those
draws only, so the finite-population value is what the intervals target; the
superpopulation value differs from it by the population's own sampling noise
(a PSU-level effect of order 0.5 / sqrt(#PSUs in the cohort)), which no
design-based interval includes; (2) parallel trends are made to hold exactly
in the finite population, so a fit on the whole population (unit weights)
reproduces every truth (checked at start-up: the run stops if ``|census -
truth|`` exceeds 1e-8 for any estimand, under either assumption). Each
estimate is a smooth function of Horvitz-Thompson totals (with estimated GLS
weights under PT-All, whose first-order effect vanishes because all moments of
a cell share the population value), so it is design-consistent for the truth.

Sample (redrawn in every replication)
-------------------------------------
Stratified two-stage sample: in stratum h, ``n_h`` = 4, 5 or 6 PSUs (h mod
3) by simple random sampling without replacement out of 40 (first-stage
fraction 0.10-0.15); in each sampled PSU, half of its x = 1 units and a
quarter of its x = 0 units by SRS without replacement within the two classes:
12-16 units per PSU, 99 PSUs (about 21 per treated cohort, 35 never), about
1,390 units and 8,300 unit-period rows. Weight = 1 / inclusion probability =
(40 / n_h) * (2 or 4), from 13.3 to 40.
``SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop")``
(``fpc`` = 40 population PSUs per stratum); design df = 99 - 20 = 79.

Fits (same sample): ``EfficientDiD(pt_assumption="all")`` and
``EfficientDiD(pt_assumption="post")`` with that design (judged), and
``EfficientDiD()`` without a design (naive: unweighted, units independent;
overall ATT only, information).

Reference standard errors (no Monte Carlo)
------------------------------------------
The census fit's influence values ``z_i`` (unit weights) linearize each
estimate: ``theta_hat - theta ~ sum over the sample of w_i z_i``. Their exact
variance under the two-stage design (``ref SD``) and the expectation of the
TSL variance estimator with fpc (``E[SE]``) follow in closed form as in
``mc_cs_survey_coverage.py``; ``pred cov`` is the coverage of a t interval
whose SE equals ``E[SE]``. The MC SD should match ``ref SD``; a gap points to
small-sample behaviour that the linearization misses (e.g. the estimated GLS
weights of PT-All).

Diagnostics (post-treatment estimands, same replications)
--------------------------------------------------------
To tell a wrong centre, a wrong SE level and a noisy SE apart: the coverage
of the oracle interval ``estimate +- t(df) MC SD``; the coverage the SEs
imply for normal estimates, ``mean(2 Phi(t(df) SE / MC SD) - 1)``; the
Satterthwaite effective df of the variance estimator, ``2 mean(SE^2)^2 /
var(SE^2)`` (the intervals use the design df, #PSUs - #strata, for every
estimand, while a cohort's cell rests on that cohort's and the never-treated
PSUs), and the coverage with that df's critical value; the RMS SE over the
expected TSL SE; and the SD of the estimates over the SD of their linear term
``sum_s w z`` computed on the same samples (nonlinearity, e.g. ratio means and
estimated GLS weights). Efficiency: PT-All / PT-Post ratios of the mean SE,
the per-replication SE ratio, the MC SD and the reference SD.

Covariate mode (``--covariates``)
---------------------------------
The same design with parallel trends holding only conditional on ``x``:
the share of x = 1 units in a PSU depends on its cohort (its count of 40 is
the draw above plus 8, 4, 0, -4 for g = 3, 4, 5 and never treated), the
untreated outcome gains ``0.5 x_i t`` (x = 1 units trend faster), and the
parallel-trends adjustment is made within each x class (cohort-and-x minus
never-and-x gaps constant over t), so unconditional parallel trends fail in
the population while conditional ones hold exactly. The judged fits are
``EfficientDiD(pt_assumption=...).fit(..., covariates=["x"])`` (binary x:
the saturated series basis, i.e. the nonparametric estimator); the census fit
with the covariate reproduces every truth; the naive row is the design-based
fit without the covariate (biased here by construction).

``--scale K`` multiplies the population PSUs per stratum and the sampled PSUs
per stratum by K (same sampling fractions, K times the PSUs): a check of
whether a coverage shortfall shrinks with the number of PSUs (information,
not judged).

Usage::

    python benchmarks/mc_edid_coverage.py                 # 2000 reps, 1.5-2.5 min on 2 cores
    python benchmarks/mc_edid_coverage.py --quick         # 50 reps
    python benchmarks/mc_edid_coverage.py --reps 1000 --seed 7 --workers 2
    python benchmarks/mc_edid_coverage.py --scale 2       # 198 PSUs (8-12 per stratum), info
    python benchmarks/mc_edid_coverage.py --covariates --reps 500   # conditional PT
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # mc_cs_survey_coverage.py lives next to this script
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
import mc_cs_survey_coverage as cs  # noqa: E402

from diff_diff import EfficientDiD, SurveyDesign  # noqa: E402

# ------------------------------------------------------------------ DGP sizes
N_STRATA = 20
SCALE = 1  # --scale: population and sampled PSUs per stratum are multiplied by it
N_PSU_POP = 40  # population PSUs per stratum (N_h); 40 * SCALE
N_UNITS = 40  # units per PSU
X1_COUNTS = np.array([8, 12, 16, 20, 24])  # possible x = 1 counts of a PSU
N_PERIODS = 6
COHORTS = (3, 4, 5)  # first treated periods; 0 = never treated
COHORT_SCALE = {3: 1.0, 4: 0.6, 5: 1.4}  # b_g
RATE_X1, RATE_X0 = 2, 4  # second stage: 1 in 2 of the x = 1 units, 1 in 4 of the x = 0 units
LOW, HIGH = cs.LOW, cs.HIGH  # the acceptance band, 0.93-0.97
COVARIATE = False  # --covariates: parallel trends conditional on x, fits with covariates=["x"]
X1_SHIFT = {3: 8, 4: 4, 5: 0, 0: -4}  # covariate mode: cohort-dependent x = 1 counts
PTS = ("all", "post")
PT_LABEL = {"all": "PT-All", "post": "PT-Post"}


def sample_sizes() -> np.ndarray:
    """First-stage sample size n_h per stratum: 4, 5, 6, 4, 5, 6, ... (times SCALE)"""
    return SCALE * (4 + np.arange(N_STRATA) % 3)


# ------------------------------------------------------------------ population
@dataclass
class Population:
    stratum: np.ndarray  # (J,) stratum of each PSU
    first_treat: np.ndarray  # (J,) cohort of each PSU (0: never treated)
    x: np.ndarray  # (J, M) sampling class
    y: np.ndarray  # (J, M, T) observed outcome
    tau: np.ndarray  # (J, M, T) treatment effect (0 before treatment)
    max_shift: float  # largest parallel-trends adjustment of a cohort-period mean


def build_population(seed: int) -> Population:
    rng = np.random.default_rng([seed, 0])
    n_psu, m, n_t = N_STRATA * N_PSU_POP, N_UNITS, N_PERIODS
    t = np.arange(1, n_t + 1, dtype=float)
    stratum = np.repeat(np.arange(N_STRATA), N_PSU_POP)
    s = stratum / (N_STRATA - 1)

    probs = np.column_stack([0.10 + 0.25 * s, np.full(n_psu, 0.20), 0.35 - 0.25 * s,
                             np.full(n_psu, 0.35)])
    pick = (rng.random(n_psu)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    first_treat = np.array(COHORTS + (0,))[pick]
    treated = first_treat > 0
    n1 = rng.choice(X1_COUNTS, n_psu)
    if COVARIATE:
        n1 = np.clip(n1 + np.array([X1_SHIFT[g] for g in first_treat]), 4, 32)
    x = (np.arange(m)[None, :] < n1[:, None]).astype(float)

    alpha = rng.normal(0.5 * s[:, None] + 0.3 * treated[:, None], 1.0, (n_psu, m))
    lam = 0.3 * t + 0.5 * np.sin(t)
    u = rng.normal(0.0, 1.0, n_psu)
    rho, sd_v = 0.7, 0.8
    v = np.empty((n_psu, n_t))
    v[:, 0] = rng.normal(0.0, sd_v, n_psu)
    for j in range(1, n_t):
        v[:, j] = rho * v[:, j - 1] + np.sqrt(1 - rho**2) * rng.normal(0.0, sd_v, n_psu)
    eps = rng.normal(0.0, 1.0, (n_psu, m, n_t))
    y0 = (alpha[:, :, None] + lam + u[:, None, None] + v[:, None, :]
          + 0.5 * x[:, :, None] + eps)
    if COVARIATE:
        y0 += 0.5 * x[:, :, None] * t

    # exact parallel trends in every period: cohort-minus-never gap constant over t (in
    # covariate mode within each x class: conditional parallel trends)
    max_shift = 0.0
    classes = (x == 0.0, x == 1.0) if COVARIATE else (np.ones_like(x, dtype=bool),)
    for cls in classes:
        never = y0[~treated[:, None] & cls].mean(axis=0)  # (T,)
        for g in COHORTS:
            mine = (first_treat == g)[:, None] & cls
            mean = y0[mine].mean(axis=0)
            shift = (never - never.mean()) - (mean - mean.mean())
            max_shift = max(max_shift, float(np.abs(shift).max()))
            y0[mine] += shift

    exposure = t[None, :] - first_treat[:, None]  # (J, T)
    on = treated[:, None] & (exposure >= 0)
    grow = np.where(on, 1.0 + 0.3 * exposure, 0.0)  # (J, T)
    b = np.array([COHORT_SCALE.get(g, 0.0) for g in first_treat])
    k = rng.normal(0.0, 0.5, n_psu)
    q = rng.normal(0.0, 0.5, (n_psu, m))
    tau = (grow[:, None, :] * (b * (0.7 + 0.6 * s))[:, None, None]
           * (1.0 + 0.6 * x[:, :, None])
           + (grow * k[:, None])[:, None, :] + q[:, :, None] * on[:, None, :])
    return Population(stratum, first_treat, x, y0 + tau, tau, max_shift)


def truths(pop: Population) -> dict:
    """Finite-population ATT(g, t) (every t), simple overall ATT and event-study effects."""
    times = range(1, N_PERIODS + 1)
    size = {g: float((pop.first_treat == g).sum() * N_UNITS) for g in COHORTS}
    att = {(g, t): float(pop.tau[pop.first_treat == g][:, :, t - 1].mean())
           for g in COHORTS for t in times}
    out = {("cell", g, t): v for (g, t), v in att.items()}
    post = [(g, t) for (g, t) in att if t >= g]
    out[("overall",)] = (sum(size[g] * att[g, t] for g, t in post)
                         / sum(size[g] for g, _ in post))
    for e in range(1 - max(COHORTS), N_PERIODS - min(COHORTS) + 1):
        cells = [(g, g + e) for g in COHORTS if 1 <= g + e <= N_PERIODS]
        out[("event", e)] = (sum(size[c[0]] * att[c] for c in cells)
                             / sum(size[c[0]] for c in cells))
    return out


def long_frame(pop: Population, psu: np.ndarray, pos: np.ndarray, w: np.ndarray | None):
    """Long panel of the units (psu[i], pos[i]) with design columns."""
    n, n_t = psu.size, N_PERIODS
    data = {
        "unit": np.repeat(psu * N_UNITS + pos, n_t),
        "t": np.tile(np.arange(1, n_t + 1), n),
        "y": pop.y[psu, pos, :].ravel(),
        "g": np.repeat(pop.first_treat[psu], n_t),
        "stratum": np.repeat(pop.stratum[psu], n_t),
        "psu": np.repeat(psu, n_t),
        "n_psu_pop": np.full(n * n_t, N_PSU_POP),
        "x": np.repeat(pop.x[psu, pos], n_t),
    }
    if w is not None:
        data["w"] = np.repeat(w, n_t)
    return pd.DataFrame(data)


def census_frame(pop: Population) -> pd.DataFrame:
    n_psu = pop.stratum.size
    return long_frame(pop, np.repeat(np.arange(n_psu), N_UNITS),
                      np.tile(np.arange(N_UNITS), n_psu), None)


def draw_sample(pop: Population, rng: np.random.Generator) -> pd.DataFrame:
    n_h = sample_sizes()
    psu = np.concatenate([h * N_PSU_POP + rng.choice(N_PSU_POP, n_h[h], replace=False)
                          for h in range(N_STRATA)])
    x = pop.x[psu] == 1.0  # (n_sel, M)
    n1 = x.sum(axis=1)
    take = np.zeros_like(x)
    for cls, size in ((x, n1 // RATE_X1), (~x, (N_UNITS - n1) // RATE_X0)):
        keys = np.where(cls, rng.random(x.shape), np.inf)  # SRS within the class
        rank = np.argsort(np.argsort(keys, axis=1), axis=1)
        take |= rank < size[:, None]
    sel_psu, pos = np.nonzero(take)
    first_stage = (N_PSU_POP / n_h)[pop.stratum[psu[sel_psu]]]
    w = first_stage * np.where(x[sel_psu, pos], RATE_X1, RATE_X0)
    return long_frame(pop, psu[sel_psu], pos, w)


# ------------------------------------------------------------------ estimation
FIT = dict(outcome="y", unit="unit", time="t", first_treat="g")
NAIVE = dict(FIT)  # without covariates
DESIGN = SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop")


def estimand_rows(res) -> dict:
    """{key: (estimate, se, conf_low, conf_high)} for every cell, event time and the overall."""
    out = {}
    gt = res.group_time_effects
    for g, t, est, se, lo, hi in zip(gt["group"], gt["time"], gt["estimate"], gt["se"],
                                     gt["conf_low"], gt["conf_high"]):
        out[("cell", int(g), int(t))] = (est, se, lo, hi)
    es = res.event_study_effects
    for e, est, se, lo, hi in zip(es["event_time"], es["estimate"], es["se"], es["conf_low"],
                                  es["conf_high"]):
        out[("event", int(e))] = (est, se, lo, hi)
    out[("overall",)] = (res.overall_att, res.overall_se, *res.overall_conf_int)
    return out


_POP: Population | None = None  # set in the parent before the workers fork
_KEYS: dict = {}  # pt -> the estimands (keys) in table order
_Z: dict = {}  # pt -> census influence values (J, M, K) of those estimands


def replicate(args):
    rep, seed = args
    rng = np.random.default_rng([seed, 1, rep])
    data = draw_sample(_POP, rng)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning in a replication is a finding: fail loudly
        for pt in PTS:
            res = EfficientDiD(pt_assumption=pt).fit(data, survey_design=DESIGN, **FIT)
            rows = estimand_rows(res)
            out[pt] = np.array([rows[k] for k in _KEYS[pt]], dtype=float)
            out["df"] = np.nan if res.df is None else float(res.df)
        if COVARIATE:  # the design-based fit without the covariate
            res = EfficientDiD().fit(data, survey_design=DESIGN, **NAIVE)
        else:
            res = EfficientDiD().fit(data, **NAIVE)
        out["naive"] = np.array([[res.overall_att, res.overall_se, *res.overall_conf_int]])
    # the linear term sum_s w_i z_i of every estimand (census influence values z)
    first = data[data["t"] == 1]
    unit = first["unit"].to_numpy()
    w = first["w"].to_numpy()[:, None]
    for pt in PTS:
        out["lin_" + pt] = (w * _Z[pt][unit // N_UNITS, unit % N_UNITS]).sum(axis=0)
    return rep, out


# ------------------------------------------------------------------ census and reference SEs
def census_fits(pop: Population, truth: dict) -> dict:
    """Per assumption: the estimands (keys, reference cells with SE 0 left out), the largest
    |census - truth| and the census influence values (J, M, K) in key order."""
    data = census_frame(pop)
    out = {}
    for pt in PTS:
        res = EfficientDiD(pt_assumption=pt).fit(data, **FIT)
        rows = estimand_rows(res)
        keys = [k for k in rows if rows[k][1] > 0]
        gap = max(abs(rows[k][0] - truth[k]) for k in keys)
        gt = res.group_time_effects
        cell_keys = [("cell", int(g), int(t)) for g, t in zip(gt["group"], gt["time"])]
        cols = dict(zip(cell_keys, res.influence_functions.T))
        dyn = res.aggregate("event_study")
        cols.update(zip([("event", int(e)) for e in dyn.effects["event_time"]],
                        dyn.influence_functions[:, :-1].T))
        cols[("overall",)] = res.aggregate("simple").influence_functions[:, -1]
        z = np.column_stack([cols[k] for k in keys])  # units sorted = (psu, pos) order
        moments = res.omega_condition_numbers["n_moments"]
        out[pt] = dict(keys=keys, gap=gap, z=z.reshape(pop.stratum.size, N_UNITS, -1),
                       moments=(int(moments.min()), int(moments.max())))
    return out


def reference_ses(pop: Population, z: np.ndarray) -> dict:
    """Exact two-stage design SD of sum_s w z and the expected TSL SE with fpc, for every
    column of z (J, M, K); as ``mc_cs_survey_coverage.reference_ses``."""
    n_h = sample_sizes().astype(float)
    big_n = float(N_PSU_POP)
    totals = z.sum(axis=1)  # (J, K)
    within = np.zeros(totals.shape)  # second-stage variance of each PSU's estimated total
    for cls, rate in ((pop.x == 1.0, RATE_X1), (pop.x == 0.0, RATE_X0)):
        size = cls.sum(axis=1).astype(float)
        m = size / rate
        mean = np.where(cls[:, :, None], z, 0.0).sum(axis=1) / size[:, None]
        dev2 = np.where(cls[:, :, None], (z - mean[:, None, :]) ** 2, 0.0).sum(axis=1)
        within += (size**2 * (1 - m / size) / m / (size - 1))[:, None] * dev2
    v_true = v_fpc = v_second = 0.0
    for h in range(N_STRATA):
        rows = pop.stratum == h
        f = n_h[h] / big_n
        between = big_n**2 * totals[rows].var(axis=0, ddof=1) / n_h[h]
        second = big_n / n_h[h] * within[rows].sum(axis=0)
        v_true = v_true + (1 - f) * between + second
        v_fpc = v_fpc + (1 - f) * (between + second)
        v_second = v_second + second
    return {"true": np.sqrt(v_true), "fpc": np.sqrt(v_fpc), "second_share": v_second / v_true}


# ------------------------------------------------------------------ report
def label(key) -> str:
    if key[0] == "cell":
        return f"ATT({key[1]},{key[2]})"
    if key[0] == "event":
        return f"e={key[1]:+d}"
    return "overall (simple)"


def is_post(key) -> bool:
    return (key[0] == "overall" or (key[0] == "cell" and key[2] >= key[1])
            or (key[0] == "event" and key[1] >= 0))


def stack(results: dict, name: str) -> np.ndarray:
    """(R, K, 4) array of (estimate, se, conf_low, conf_high) over the replications."""
    return np.stack([results[r][name] for r in sorted(results)])


def covers(arr: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(R, K) indicator: the interval exists and covers the truth."""
    lo, hi = arr[..., 2], arr[..., 3]
    return np.isfinite(lo) & np.isfinite(hi) & (lo <= truth) & (truth <= hi)


def summarize(arr: np.ndarray, keys: list, truth: np.ndarray, ref: dict, df: float):
    """One row per estimand, plus the mean over the post-treatment cells."""
    est, se = arr[..., 0], arr[..., 1]
    hit = covers(arr, truth)
    reps = est.shape[0]
    sd = est.std(axis=0, ddof=1)
    cover = hit.mean(axis=0)
    crit = stats.norm.ppf(0.975)
    rows = []
    for j, key in enumerate(keys):
        bias = est[:, j].mean() - truth[j]
        rows.append({
            "estimand": label(key),
            "post": is_post(key),
            "truth": truth[j],
            "R": reps,
            "coverage": cover[j],
            "MCSE cov": np.sqrt(cover[j] * (1 - cover[j]) / reps),
            "cov z": np.mean(np.abs(est[:, j] - truth[j]) <= crit * se[:, j]),
            "mean bias": bias,
            "bias/MCSE": bias / (sd[j] / np.sqrt(reps)),
            "MC SD": sd[j],
            "mean SE": se[:, j].mean(),
            "SE/SD": se[:, j].mean() / sd[j],
            "RMS SE/SD": np.sqrt(np.mean(se[:, j] ** 2)) / sd[j],
            "ref SD": ref["true"][j],
            "E[SE]/ref": ref["fpc"][j] / ref["true"][j],
            "pred cov": cs.expected_coverage(ref["fpc"][j] / ref["true"][j], df),
            "failed CI": int((~np.isfinite(arr[:, j, 2])).sum()),
        })
    table = pd.DataFrame(rows)
    cells = [j for j, k in enumerate(keys) if k[0] == "cell" and is_post(k)]
    per_rep = hit[:, cells].mean(axis=1)  # share of the post cells covered, per replication
    mean_row = {col: np.nan for col in table.columns}
    mean_row.update({
        "estimand": f"post cells, mean of {len(cells)}", "post": True, "R": reps,
        "coverage": per_rep.mean(), "MCSE cov": per_rep.std(ddof=1) / np.sqrt(reps),
        "cov z": table.loc[cells, "cov z"].mean(),
        "mean bias": table.loc[cells, "mean bias"].mean(),
        "SE/SD": table.loc[cells, "SE/SD"].mean(),
        "RMS SE/SD": table.loc[cells, "RMS SE/SD"].mean(),
        "E[SE]/ref": table.loc[cells, "E[SE]/ref"].mean(),
        "pred cov": table.loc[cells, "pred cov"].mean(),
        "failed CI": int(table.loc[cells, "failed CI"].sum())})
    table = pd.concat([table, pd.DataFrame([mean_row])], ignore_index=True)
    order = sorted(range(len(table)), key=lambda i: (not table.loc[i, "post"], i))
    return table.loc[order].reset_index(drop=True)


FORMATS = {"truth": "{:.4f}", "coverage": "{:.3f}", "MCSE cov": "{:.4f}", "cov z": "{:.3f}",
           "mean bias": "{:+.4f}", "bias/MCSE": "{:+.2f}", "MC SD": "{:.4f}",
           "mean SE": "{:.4f}", "SE/SD": "{:.3f}", "RMS SE/SD": "{:.3f}", "ref SD": "{:.4f}",
           "E[SE]/ref": "{:.3f}", "pred cov": "{:.3f}"}


def format_table(table: pd.DataFrame) -> str:
    """As ``mc_cs_survey_coverage.format_table``, for this study's columns."""
    shown = table.drop(columns="post").copy()
    for col, f in FORMATS.items():
        shown[col] = [("n/a" if not np.isfinite(val) else f.format(val)) for val in table[col]]
    return shown.to_string(index=False)


def efficiency(arrs: dict, keys: dict, refs: dict) -> pd.DataFrame:
    """PT-All / PT-Post ratios for the post-treatment estimands both assumptions report."""
    rows = []
    for key in keys["all"]:
        if not is_post(key) or key not in keys["post"]:
            continue
        ja, jp = keys["all"].index(key), keys["post"].index(key)
        a, p = arrs["all"][:, ja], arrs["post"][:, jp]
        ratio = a[:, 1] / p[:, 1]
        rows.append({"estimand": label(key),
                     "mean SE ratio": a[:, 1].mean() / p[:, 1].mean(),
                     "median per-rep": np.median(ratio),
                     "per-rep 5%": np.quantile(ratio, 0.05),
                     "per-rep 95%": np.quantile(ratio, 0.95),
                     "MC SD ratio": a[:, 0].std(ddof=1) / p[:, 0].std(ddof=1),
                     "ref SD ratio": refs["all"]["true"][ja] / refs["post"]["true"][jp],
                     "corr(est)": np.corrcoef(a[:, 0], p[:, 0])[0, 1]})
    return pd.DataFrame(rows)


def diagnostics(arr: np.ndarray, lin: np.ndarray, keys: list, truth: np.ndarray,
                ref: dict, df: float) -> pd.DataFrame:
    """Why a post-treatment coverage differs from 95%: the centre and shape of the
    estimates, the SE's level and its sampling noise (effective df)."""
    crit = stats.t.ppf(0.975, df)
    rows = []
    for j, key in enumerate(keys):
        if not is_post(key):
            continue
        est, se = arr[:, j, 0], arr[:, j, 1]
        dev = np.abs(est - truth[j])
        sd = est.std(ddof=1)
        v = se**2
        df_eff = 2 * v.mean() ** 2 / v.var(ddof=1)
        rows.append({
            "estimand": label(key),
            "coverage": np.mean(covers(arr[:, j:j + 1], truth[j:j + 1])),
            "cov oracle": np.mean(dev <= crit * sd),
            "cov from SE": np.mean(2 * stats.norm.cdf(crit * se / sd) - 1),
            "eff df": df_eff,
            "cov t(eff df)": np.mean(dev <= stats.t.ppf(0.975, df_eff) * se),
            "RMS SE/E[SE]": np.sqrt(v.mean()) / ref["fpc"][j],
            "lin SD/ref": lin[:, j].std(ddof=1) / ref["true"][j],
            "SD/lin SD": sd / lin[:, j].std(ddof=1),
            "skew": stats.skew(est),
            "ex. kurt": stats.kurtosis(est),
        })
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000, help="replications (default 2000)")
    parser.add_argument("--quick", action="store_true", help="50 replications")
    parser.add_argument("--seed", type=int, default=20240611, help="master seed")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--covariates", action="store_true",
                        help="parallel trends conditional on x; fits with covariates=['x']")
    parser.add_argument("--scale", type=int, default=1,
                        help="multiply the population and sampled PSUs per stratum by this "
                             "(same sampling fractions; > 1: information only, not judged)")
    args = parser.parse_args(argv)
    reps = 50 if args.quick else args.reps

    global _POP, _KEYS, _Z, SCALE, N_PSU_POP, COVARIATE
    SCALE = args.scale
    COVARIATE = args.covariates
    if COVARIATE:
        FIT["covariates"] = ["x"]
    N_PSU_POP = 40 * SCALE
    t_start = time.perf_counter()
    pop = build_population(args.seed)
    _POP = pop
    print(cs.environment())
    n_units = pop.stratum.size * N_UNITS
    counts = {g: int((pop.first_treat == g).sum()) for g in COHORTS + (0,)}
    print(f"population: {N_STRATA} strata x {N_PSU_POP} PSUs x {N_UNITS} units = "
          f"{n_units:,} units, {N_PERIODS} periods; PSUs per cohort "
          + ", ".join(f"{'never' if g == 0 else f'g={g}'}: {c}" for g, c in counts.items()))
    n_sampled = int(sample_sizes().sum())
    per_psu = 16 // RATE_X1 + (N_UNITS - 16) // RATE_X0
    print(f"sample: {n_sampled} PSUs ({sample_sizes().min()}-{sample_sizes().max()} per "
          f"stratum), about {n_sampled * per_psu:,} units; design df {n_sampled - N_STRATA}; "
          f"seed {args.seed}")
    truth = truths(pop)
    print(f"largest parallel-trends adjustment of a cohort-period mean: {pop.max_shift:.4f}")
    print(f"truth (finite population): overall ATT {truth[('overall',)]:.4f}; ATT(g,t) "
          + ", ".join(f"({g},{t}) {truth[('cell', g, t)]:.3f}"
                      for g in COHORTS for t in range(g, N_PERIODS + 1)))

    census = census_fits(pop, truth)
    for pt in PTS:
        lo, hi = census[pt]["moments"]
        print(f"census {PT_LABEL[pt]}: |census - truth| = {census[pt]['gap']:.2e} (largest over "
              f"{len(census[pt]['keys'])} estimands); moments per cell {lo}-{hi}")
    if not max(census[pt]["gap"] for pt in PTS) < 1e-8:
        print("STOP: the census fit does not reproduce the truth")
        return 2
    _KEYS = {pt: census[pt]["keys"] for pt in PTS}
    _Z = {pt: census[pt]["z"] for pt in PTS}
    refs = {pt: reference_ses(pop, census[pt]["z"]) for pt in PTS}
    print(f"population built and census fits in {time.perf_counter() - t_start:.1f} s\n")

    t0 = time.perf_counter()
    jobs = [(r, args.seed) for r in range(reps)]
    results = dict(harness.parallel_map(replicate, jobs, args.workers, chunksize=10))
    elapsed = time.perf_counter() - t0
    print(f"{reps} replications in {elapsed:.1f} s on {args.workers} process(es): "
          f"{elapsed * args.workers / reps:.2f} s per replication per process "
          "(3 fits each)\n")

    df = float(np.nanmean([results[r]["df"] for r in results]))
    arrs = {pt: stack(results, pt) for pt in PTS}
    tables = {}
    for pt in PTS:
        tru = np.array([truth[k] for k in _KEYS[pt]])
        tables[pt] = summarize(arrs[pt], _KEYS[pt], tru, refs[pt], df)
        with_x = ", covariates=['x']" if COVARIATE else ""
        print(f"{PT_LABEL[pt]}: EfficientDiD(pt_assumption={pt!r}){with_x}, TSL, strata+PSU+fpc, "
              f"mean design df {df:.1f}")
        print(format_table(tables[pt]))
        print()
    naive = stack(results, "naive")
    hit = covers(naive, np.array([truth[("overall",)]]))[:, 0]
    naive_label = "design, no covariate" if COVARIATE else "no design"
    print(f"info: naive PT-All ({naive_label}) overall ATT: coverage {hit.mean():.3f}, mean bias "
          f"{naive[:, 0, 0].mean() - truth[('overall',)]:+.4f}, SE/SD "
          f"{naive[:, 0, 1].mean() / naive[:, 0, 0].std(ddof=1):.3f}")
    print(textwrap.fill(
        "MCSE cov = sqrt(p (1 - p) / R) (mean row: SD of the per-replication share / sqrt(R)); "
        "cov z: coverage with the normal critical value 1.96 instead of t(df); bias/MCSE = "
        "mean bias / (MC SD / sqrt(R)); SE/SD = mean SE / MC SD; ref SD: the linearized "
        "estimator's exact design SD; E[SE]/ref: expected TSL SE (fpc) over it; pred cov: "
        "coverage of a t interval with that SE. Rows after the post-treatment block are "
        "placebos (truth 0), information only.", 100))

    print("\nDiagnostics of the post-treatment coverages (same replications)")
    for pt in PTS:
        tru = np.array([truth[k] for k in _KEYS[pt]])
        diag = diagnostics(arrs[pt], stack(results, "lin_" + pt), _KEYS[pt], tru, refs[pt], df)
        print(f"{PT_LABEL[pt]}:")
        print(diag.to_string(index=False, float_format=lambda v: f"{v:.3f}",
                             formatters={"eff df": "{:.1f}".format}))
    print(textwrap.fill(
        "cov oracle: the interval estimate +- t(df) MC SD (centre and shape of the "
        "estimates); cov from SE: mean over replications of 2 Phi(t(df) SE / MC SD) - 1 (what "
        "the SEs imply for normal estimates); eff df: 2 mean(SE^2)^2 / var(SE^2), the "
        "Satterthwaite df of the variance estimator (compare the design df); cov t(eff df): "
        "coverage with that critical value (an oracle: eff df comes from the Monte Carlo); "
        "RMS SE/E[SE]: the SEs against the expected TSL SE of the linearized estimator; lin "
        "SD/ref: MC SD of the linear term sum_s w z on the same samples over its exact value "
        "(the Monte Carlo noise of an SD, ~1/sqrt(2R)); SD/lin SD: the estimator's SD over "
        "the linear term's (its nonlinearity)", 100))

    eff = efficiency(arrs, _KEYS, refs)
    print("\nEfficiency: PT-All over PT-Post (same samples; < 1 means PT-All is more precise)")
    print(eff.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(textwrap.fill(
        "(mean SE ratio: mean SE_all / mean SE_post; per-rep: the ratio within each "
        "replication; MC SD ratio: the estimators' actual precision; ref SD ratio: the same "
        "from the census influence values; corr(est): correlation of the two estimates)", 100))

    print()
    failures, judged = [], []
    for pt in PTS:
        t = tables[pt]
        for _, row in t[t["post"]].iterrows():
            judged.append(row["coverage"])
            if not LOW <= row["coverage"] <= HIGH:
                failures.append(f"{PT_LABEL[pt]} {row['estimand']} {row['coverage']:.3f}")
    print(f"judged: {len(judged)} coverages (post-treatment cells, their mean, overall, event "
          f"times e >= 0; both assumptions), range {min(judged):.3f}-{max(judged):.3f}")
    if reps < 500:
        verdict = f"NOT JUDGED (R = {reps} < 500)"
    elif SCALE != 1:
        verdict = f"NOT JUDGED (--scale {SCALE}: information only)"
    else:
        verdict = "PASS" if not failures else "FAIL"
    print(f"criterion: 95% CI coverage in [{LOW:.0%}, {HIGH:.0%}] with R >= 500 for every "
          f"judged estimand: {verdict}" + (f" (outside: {'; '.join(failures)})" if failures
                                           else ""))
    print(f"wall time {time.perf_counter() - t_start:.1f} s")
    return 0 if verdict.startswith(("PASS", "NOT")) else 1


if __name__ == "__main__":
    sys.exit(main())
