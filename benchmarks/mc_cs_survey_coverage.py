"""Monte Carlo coverage of CallawaySantAnna's overall-ATT interval under a stratified, clustered survey.

Criterion: with at least 500 replications, the 95% confidence interval of the
overall ATT (``res.overall_conf_int``: Taylor-linearization SE, Student t with
the design df) covers the finite-population overall ATT in 93%-97% of the
replications, for (a) ``reg`` without covariates and (b) ``dr`` with a
covariate.

Population (fixed for the run, built once from ``--seed``)
-----------------------------------------------------------
* 20 strata x 50 PSUs x 40 units = 40,000 units, 10 periods (t = 1..10).
  Let ``s_h = h / 19`` be stratum h's position in [0, 1].
* Staggered adoption assigned per PSU (a policy adopted by a county, say):
  cohort first treated in period 4, 6 or 8, or never treated, with
  probabilities (0.10 + 0.25 s_h, 0.20, 0.35 - 0.25 s_h, 0.35). Early adopters
  sit in high strata, late adopters in low ones.
* Covariate ``x`` (binary, time-invariant): PSU j has n1_j = 8, 12, 16, 20
  or 24 of its 40 units with x = 1 (drawn at random, then nudged by steps of
  4 so that every cohort has exactly 16 per PSU on average). Its population
  share is thus exactly 0.4 in every cohort, but varies across PSUs, so a
  sample's cohorts differ in x and ``dr`` has something to adjust.
* Untreated outcome::

      Y0_it = a_i + lambda_t + u_j + v_jt + 0.3 t x_i + e_it

  a_i ~ N(0.5 s_h + 0.3 [treated cohort], 1) unit effect; lambda_t =
  0.3 t + 0.5 sin t period effect; u_j ~ N(0, 1) PSU effect; v_jt a
  stationary AR(1) PSU-by-period shock (rho 0.7, sd 0.8), so shocks are
  correlated over time within a PSU; 0.3 t x_i a covariate-specific trend;
  e_it ~ N(0, 1).
* Exact parallel trends in the population: the random PSU shocks make the
  finite population's cohort means drift apart a little, so for every cohort
  g, covariate value x and period t the population mean of Y0 in the cell
  (g, x) is shifted by a constant so that ``mean(Y0 | g, x, t) -
  mean(Y0 | never, x, t)`` does not depend on t (never-treated units are left
  as drawn). Conditional parallel trends given x then hold exactly in the
  population and, because the share of x = 1 is 0.4 in every cohort,
  unconditional parallel trends hold exactly too. (The shifts are typically
  a few hundredths, at most ~0.15; the largest is printed.)
* Treatment effect at exposure e = t - g >= 0, growing with exposure and
  heterogeneous across strata, PSUs and units::

      tau_it = (1 + 0.3 e) (1 + 0.6 x_i) (0.7 + 0.6 s_h) + (1 + 0.3 e) k_j + q_i

  with k_j ~ N(0, 0.5^2) per PSU and q_i ~ N(0, 0.5^2) per unit.
  Observed ``Y = Y0 + tau * [t >= g]``.

Truth
-----
The finite-population overall ATT in R ``did``'s ``simple`` aggregation
sense: the average over post-treatment cells (g, t) (4 <= g <= t <= 10) of
the population mean effect of cohort g at t, weighted by the POPULATION size
of cohort g. Because parallel trends hold exactly in the population, every
estimator here applied to the whole population (unit weights) returns this
number exactly (checked at start-up: ``|census - truth|`` is printed). Each
estimate is a smooth function of Horvitz-Thompson totals, so it is
design-consistent (approximately unbiased) for the truth.

Sample (redrawn in every replication)
-------------------------------------
Stratified two-stage sample: in stratum h, ``n_h`` = 6, 7 or 8 PSUs (h mod 3)
by simple random sampling without replacement out of 50 (first-stage
fraction 0.12-0.16); in each sampled PSU, half of its x = 1 units and a
quarter of its x = 0 units by SRS without replacement within the two classes
(x = 1 is oversampled): 12-16 units per PSU, 139 PSUs, about 1,950 units and
19,500 unit-period rows. Weight = 1 / inclusion probability = (50 / n_h) *
(2 or 4), from 12.5 to 33.3.
``SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop")``
(``fpc`` = 50 population PSUs per stratum), or the same without ``fpc``.
Design df = 139 PSUs - 20 strata = 119.

Variants (all ``control_group="never_treated"``)
-------------------------------------------------
* (a)  ``reg``, no covariates, Taylor linearization (TSL), design with fpc
* (a0) the same without fpc (with-replacement first stage: conservative)
* (b)  ``dr`` with covariate x, TSL, design with fpc
* (b0) the same without fpc
* (c)  (a) with ``n_bootstrap=199`` (multiplier bootstrap by PSU within strata)
* (d)  naive: ``reg`` without a survey design (unweighted, units independent)

The criterion is judged on (a) and (b); (a0) and (b0) are shown against the
same band for information.

Reference standard errors (no Monte Carlo)
------------------------------------------
The census fit's influence values ``z_i`` (unit weights) linearize each
estimator: ``theta_hat - theta ~ sum over the sample of w_i z_i``. Their
exact variance under the two-stage design is::

    V = sum_h [N_h^2 (1 - f_h) S2_h / n_h + (N_h / n_h) sum_j V_j]

(``S2_h``: variance of the PSU totals of z in stratum h; ``V_j``: the
second-stage variance of PSU j's estimated total). The ultimate-cluster
(TSL) variance estimator has expectation ``sum_h [N_h^2 S2_h / n_h + (N_h /
n_h) sum_j V_j]`` without fpc and ``(1 - f_h)`` times that with fpc. The
script prints these three standard errors for (a) and (b) and the coverage a
t interval would have with the expected SE, to compare with the Monte Carlo.

Usage::

    python benchmarks/mc_cs_survey_coverage.py                 # 500 reps, ~1 min on 2 cores
    python benchmarks/mc_cs_survey_coverage.py --quick         # 50 reps
    python benchmarks/mc_cs_survey_coverage.py --reps 1000 --seed 7 --workers 2
    python benchmarks/mc_cs_survey_coverage.py --boot-reps 200 # bootstrap (c) on 200 reps only
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

import _harness as harness  # noqa: E402 (next to this script)
import diff_diff  # noqa: E402
from diff_diff import CallawaySantAnna, SurveyDesign  # noqa: E402

# ------------------------------------------------------------------ DGP sizes
N_STRATA = 20
N_PSU_POP = 50  # population PSUs per stratum (N_h)
N_UNITS = 40  # units per PSU
N_X1 = 16  # mean number of units with x = 1 per PSU (share 0.4)
X1_COUNTS = np.array([8, 12, 16, 20, 24])  # possible x = 1 counts of a PSU
X_TREND = 0.3  # extra trend per period of x = 1 units
N_PERIODS = 10
COHORTS = (4, 6, 8)  # first treated periods; 0 = never treated
RATE_X1, RATE_X0 = 2, 4  # second stage: 1 in 2 of the x = 1 units, 1 in 4 of the x = 0 units
LOW, HIGH = 0.93, 0.97  # the acceptance band

VARIANTS = {
    "a": "(a)  reg, TSL, strata+PSU+fpc",
    "a0": "(a0) reg, TSL, strata+PSU, no fpc",
    "b": "(b)  dr + x, TSL, strata+PSU+fpc",
    "b0": "(b0) dr + x, TSL, strata+PSU, no fpc",
    "c": "(c)  reg, PSU bootstrap B=199, fpc",
    "d": "(d)  naive reg, no design",
}
JUDGED = ("a", "b")


def sample_sizes() -> np.ndarray:
    """First-stage sample size n_h per stratum: 6, 7, 8, 6, 7, 8, ..."""
    return 6 + np.arange(N_STRATA) % 3


# ------------------------------------------------------------------ population
@dataclass
class Population:
    stratum: np.ndarray  # (J,) stratum of each PSU
    first_treat: np.ndarray  # (J,) cohort of each PSU (0: never treated)
    x: np.ndarray  # (J, M) covariate
    y: np.ndarray  # (J, M, T) observed outcome
    truth: float
    max_shift: float  # largest parallel-trends adjustment of a cell mean


def build_population(seed: int) -> Population:
    rng = np.random.default_rng([seed, 0])
    n_psu, m, n_t = N_STRATA * N_PSU_POP, N_UNITS, N_PERIODS
    t = np.arange(1, n_t + 1, dtype=float)
    stratum = np.repeat(np.arange(N_STRATA), N_PSU_POP)
    s = stratum / (N_STRATA - 1)

    # cohorts by PSU, correlated with strata
    probs = np.column_stack([0.10 + 0.25 * s, np.full(n_psu, 0.20), 0.35 - 0.25 * s,
                             np.full(n_psu, 0.35)])
    pick = (rng.random(n_psu)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    first_treat = np.array(COHORTS + (0,))[pick]
    treated = first_treat > 0

    # covariate: PSU j has n1_j units with x = 1 (n1_j in 8..24, step 4), exactly
    # 16 per PSU on average within every cohort
    n1 = rng.choice(X1_COUNTS, n_psu)
    for g in COHORTS + (0,):
        mine = np.flatnonzero(first_treat == g)
        gap = N_X1 * mine.size - n1[mine].sum()  # a multiple of 4
        while gap != 0:
            step = 4 if gap > 0 else -4
            movable = mine[(n1[mine] + step >= X1_COUNTS[0]) & (n1[mine] + step <= X1_COUNTS[-1])]
            n1[rng.choice(movable)] += step
            gap -= step
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
          + X_TREND * t * x[:, :, None] + eps)

    # exact parallel trends in the population, within each covariate cell
    max_shift = 0.0
    for xv in (0.0, 1.0):
        never = y0[(~treated)[:, None] & (x == xv)].mean(axis=0)  # (T,)
        for g in COHORTS:
            cell = (first_treat == g)[:, None] & (x == xv)  # (J, M)
            mean = y0[cell].mean(axis=0)
            shift = (never - never.mean()) - (mean - mean.mean())
            max_shift = max(max_shift, float(np.abs(shift).max()))
            y0[cell] += shift

    exposure = t[None, :] - first_treat[:, None]  # (J, T)
    on = treated[:, None] & (exposure >= 0)
    grow = np.where(on, 1.0 + 0.3 * exposure, 0.0)  # (J, T)
    k = rng.normal(0.0, 0.5, n_psu)
    q = rng.normal(0.0, 0.5, (n_psu, m))
    tau = (grow[:, None, :] * (1.0 + 0.6 * x[:, :, None]) * (0.7 + 0.6 * s)[:, None, None]
           + (grow * k[:, None])[:, None, :] + q[:, :, None] * on[:, None, :])
    y = y0 + tau

    # truth: population cohort sizes x population mean effects, post cells only
    num = den = 0.0
    for g in COHORTS:
        mine = first_treat == g
        for j in np.flatnonzero(t >= g):
            n_g = mine.sum() * m
            num += n_g * tau[mine, :, j].mean()
            den += n_g
    return Population(stratum, first_treat, x, y, num / den, max_shift)


def long_frame(pop: Population, psu: np.ndarray, pos: np.ndarray, w: np.ndarray | None):
    """Long panel of the units (psu[i], pos[i]) with design columns."""
    n, n_t = psu.size, N_PERIODS
    data = {
        "unit": np.repeat(psu * N_UNITS + pos, n_t),
        "t": np.tile(np.arange(1, n_t + 1), n),
        "y": pop.y[psu, pos, :].ravel(),
        "g": np.repeat(pop.first_treat[psu], n_t),
        "x": np.repeat(pop.x[psu, pos], n_t),
        "stratum": np.repeat(pop.stratum[psu], n_t),
        "psu": np.repeat(psu, n_t),
        "n_psu_pop": np.full(n * n_t, N_PSU_POP),
    }
    if w is not None:
        data["w"] = np.repeat(w, n_t)
    return pd.DataFrame(data)


def draw_sample(pop: Population, rng: np.random.Generator) -> pd.DataFrame:
    n_h = sample_sizes()
    psus = [h * N_PSU_POP + rng.choice(N_PSU_POP, n_h[h], replace=False)
            for h in range(N_STRATA)]
    psu = np.concatenate(psus)
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
DESIGN_FPC = SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop")
DESIGN_NOFPC = SurveyDesign(weights="w", strata="stratum", psu="psu")


def fit_one(variant: str, data: pd.DataFrame, boot_seed: int):
    if variant in ("a", "a0", "c", "d"):
        method, cov = "reg", None
    else:
        method, cov = "dr", ["x"]
    design = {"a": DESIGN_FPC, "b": DESIGN_FPC, "c": DESIGN_FPC,
              "a0": DESIGN_NOFPC, "b0": DESIGN_NOFPC, "d": None}[variant]
    est = CallawaySantAnna(estimation_method=method, control_group="never_treated",
                           n_bootstrap=199 if variant == "c" else 0, seed=boot_seed)
    res = est.fit(data, covariates=cov, survey_design=design, **FIT)
    lo, hi = res.overall_conf_int
    df = res.df
    return (res.overall_att, res.overall_se, lo, hi, np.nan if df is None else df)


_POP: Population | None = None  # set in the parent before the workers fork


def replicate(args):
    rep, seed, with_boot = args
    rng = np.random.default_rng([seed, 1, rep])
    data = draw_sample(_POP, rng)
    boot_seed = int(rng.integers(2**31 - 1))
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning in a replication is a finding: fail loudly
        for v in VARIANTS:
            if v == "c" and not with_boot:
                continue
            out[v] = fit_one(v, data, boot_seed)
    return rep, out


# ------------------------------------------------------------------ reference SEs
def census_influence(pop: Population, method: str, covariates):
    """Overall ATT and its influence values from a fit on the whole population (unit weights)."""
    n_psu = pop.stratum.size
    psu = np.repeat(np.arange(n_psu), N_UNITS)
    pos = np.tile(np.arange(N_UNITS), n_psu)
    data = long_frame(pop, psu, pos, None)
    res = CallawaySantAnna(estimation_method=method, control_group="never_treated").fit(
        data, covariates=covariates, **FIT)
    agg = res.aggregate("simple")
    z = agg.influence_functions[:, -1]  # one row per unit; unit labels are already sorted
    return agg.overall_att, z.reshape(n_psu, N_UNITS)


def reference_ses(pop: Population, z: np.ndarray) -> dict:
    """Design SE of sum_s w z and the expected TSL SE with / without fpc (see docstring)."""
    n_h = sample_sizes().astype(float)
    big_n = float(N_PSU_POP)
    totals = z.sum(axis=1)
    # second-stage variance of each PSU's estimated total: SRS within the two x classes
    within = np.zeros(z.shape[0])
    for cls, rate in ((pop.x == 1.0, RATE_X1), (pop.x == 0.0, RATE_X0)):
        size = cls.sum(axis=1)
        m = size / rate
        mean = np.where(cls, z, 0.0).sum(axis=1) / size
        s2 = np.where(cls, (z - mean[:, None]) ** 2, 0.0).sum(axis=1) / (size - 1)
        within += size**2 * (1 - m / size) * s2 / m
    v_true = v_nofpc = v_fpc = v_second = 0.0
    for h in range(N_STRATA):
        rows = pop.stratum == h
        f = n_h[h] / big_n
        between = big_n**2 * totals[rows].var(ddof=1) / n_h[h]
        second = big_n / n_h[h] * within[rows].sum()
        v_true += (1 - f) * between + second
        v_nofpc += between + second
        v_fpc += (1 - f) * (between + second)
        v_second += second
    return {"true": np.sqrt(v_true), "nofpc": np.sqrt(v_nofpc), "fpc": np.sqrt(v_fpc),
            "second_share": v_second / v_true}


def expected_coverage(se_ratio: float, df: float) -> float:
    """Coverage of theta_hat +- t_{df} * SE when SE = se_ratio * true SD (normal estimate)."""
    crit = stats.t.ppf(0.975, df)
    return float(2 * stats.norm.cdf(crit * se_ratio) - 1)


# ------------------------------------------------------------------ report
def summarize(results: dict, truth: float) -> pd.DataFrame:
    rows = []
    for v, label in VARIANTS.items():
        arr = np.array([results[r][v] for r in sorted(results) if v in results[r]], dtype=float)
        if arr.size == 0:
            continue
        att, se, lo, hi, df = arr.T
        ok = np.isfinite(lo) & np.isfinite(hi)
        cover = float(np.mean((lo <= truth) & (truth <= hi) & ok))
        reps = att.size
        sd = att.std(ddof=1)
        rows.append({
            "variant": label,
            "R": reps,
            "coverage": cover,
            "MCSE cov": np.sqrt(cover * (1 - cover) / reps),
            "mean bias": att.mean() - truth,
            "bias/MCSE": (att.mean() - truth) / (sd / np.sqrt(reps)),
            "MC SD": sd,
            "mean SE": se.mean(),
            "SE/SD": se.mean() / sd,
            "RMS SE/SD": np.sqrt(np.mean(se**2)) / sd,
            "mean df": np.nanmean(df) if np.isfinite(df).any() else np.nan,
            "failed CI": int((~ok).sum()),
        })
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    fmt = {"coverage": "{:.3f}", "MCSE cov": "{:.4f}", "mean bias": "{:+.4f}",
           "bias/MCSE": "{:+.2f}", "MC SD": "{:.4f}", "mean SE": "{:.4f}",
           "SE/SD": "{:.3f}", "RMS SE/SD": "{:.3f}", "mean df": "{:.1f}"}
    shown = table.copy()
    for col, f in fmt.items():
        shown[col] = [("n/a" if not np.isfinite(val) else f.format(val)) for val in table[col]]
    return shown.to_string(index=False)


def environment() -> str:
    return (f"diff_diff {diff_diff.__version__}, numpy {np.__version__}, pandas {pd.__version__}, "
            f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500, help="replications (default 500)")
    parser.add_argument("--quick", action="store_true", help="50 replications")
    parser.add_argument("--seed", type=int, default=20240611, help="master seed")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--boot-reps", type=int, default=None,
                        help="replications that also run the bootstrap variant (c) (default all)")
    args = parser.parse_args(argv)
    reps = 50 if args.quick else args.reps
    boot_reps = reps if args.boot_reps is None else min(args.boot_reps, reps)

    global _POP
    t0 = time.perf_counter()
    pop = build_population(args.seed)
    _POP = pop
    print(environment())
    n_units = pop.stratum.size * N_UNITS
    counts = {g: int((pop.first_treat == g).sum()) for g in COHORTS + (0,)}
    print(f"population: {N_STRATA} strata x {N_PSU_POP} PSUs x {N_UNITS} units = {n_units:,} units, "
          f"{N_PERIODS} periods; PSUs per cohort "
          + ", ".join(f"{'never' if g == 0 else f'g={g}'}: {c}" for g, c in counts.items()))
    print(f"sample: {int(sample_sizes().sum())} PSUs (6-8 per stratum), about "
          f"{int(sample_sizes().sum()) * (N_X1 // RATE_X1 + (N_UNITS - N_X1) // RATE_X0):,} "
          f"units; seed {args.seed}")
    print(f"truth (finite-population overall ATT, simple aggregation): {pop.truth:.6f}; "
          f"largest parallel-trends adjustment of a cell mean: {pop.max_shift:.4f}")

    refs = {}
    for key, method, cov in (("a", "reg", None), ("b", "dr", ["x"])):
        census, z = census_influence(pop, method, cov)
        refs[key] = (census, reference_ses(pop, z))
        print(f"census {method}{' + x' if cov else ''}: {census:.6f} "
              f"(|census - truth| = {abs(census - pop.truth):.2e})")
    print(f"population built and census fits in {time.perf_counter() - t0:.1f} s\n")

    t0 = time.perf_counter()
    jobs = [(r, args.seed, r < boot_reps) for r in range(reps)]
    results = dict(harness.parallel_map(replicate, jobs, args.workers, chunksize=5))
    elapsed = time.perf_counter() - t0
    print(f"{reps} replications ({boot_reps} with the bootstrap) in {elapsed:.1f} s "
          f"on {args.workers} process(es): {elapsed * args.workers / reps:.2f} s per replication "
          "per process\n")

    table = summarize(results, pop.truth)
    print(format_table(table))
    print("\nMCSE cov = sqrt(p (1 - p) / R); bias/MCSE = mean bias / (MC SD / sqrt(R)); "
          "SE/SD = mean SE / MC SD.")

    df = float(table.loc[table["variant"] == VARIANTS["a"], "mean df"].iloc[0])
    print("\nReference SEs from the census influence values (exact design variance of the "
          "linearized estimator; no Monte Carlo):")
    print(f"{'':14}{'design SE':>10}{'2nd-stage share':>17}{'E[TSL] fpc':>12}{'no fpc':>9}"
          f"{'cov. fpc':>10}{'no fpc':>8}")
    for key, label in (("a", "reg"), ("b", "dr + x")):
        ref = refs[key][1]
        print(f"{label:14}{ref['true']:>10.4f}{ref['second_share']:>17.3f}"
              f"{ref['fpc']:>12.4f}{ref['nofpc']:>9.4f}"
              f"{expected_coverage(ref['fpc'] / ref['true'], df):>10.3f}"
              f"{expected_coverage(ref['nofpc'] / ref['true'], df):>8.3f}")
    print("(2nd-stage share: part of the design variance from sampling units within PSUs, "
          "which a first-stage fpc wrongly shrinks too; cov.: coverage of a t interval whose SE "
          "equals its expectation, the SE's own sampling noise lowers it slightly)")

    print()
    judged = table.set_index(table["variant"].map({lab: k for k, lab in VARIANTS.items()}))
    inside = {k: LOW <= judged.loc[k, "coverage"] <= HIGH for k in judged.index}
    for k in ("a0", "b0"):
        if k in inside:
            print(f"info: {VARIANTS[k].strip()}: coverage {judged.loc[k, 'coverage']:.3f} "
                  f"{'inside' if inside[k] else 'OUTSIDE'} [{LOW:.2f}, {HIGH:.2f}]")
    detail = ", ".join(f"{k} {judged.loc[k, 'coverage']:.3f}" for k in JUDGED)
    if reps < 500:
        verdict = "NOT JUDGED" + f" (R = {reps} < 500)"
    else:
        verdict = "PASS" if all(inside[k] for k in JUDGED) else "FAIL"
    print(f"criterion: 95% CI coverage of the overall ATT in [{LOW:.0%}, {HIGH:.0%}] with "
          f"R >= 500, for (a) and (b): {verdict} ({detail})")
    return 0 if verdict.startswith(("PASS", "NOT")) else 1


if __name__ == "__main__":
    sys.exit(main())
