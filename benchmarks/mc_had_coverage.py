"""Monte Carlo coverage of HeterogeneousAdoptionDiD's robust bias-corrected interval.

The estimator: ``HeterogeneousAdoptionDiD(design="continuous_at_zero")`` on a
two-period panel (period 1: every dose 0; period 2: dose D >= 0). ``res.att``
is the conventional weighted-average-slope (WAS) estimate, ``res.conf_int``
the robust bias-corrected (RBC) interval centred on
``res.att_bias_corrected``. The design is forced to ``continuous_at_zero``
because ``design="auto"`` picks ``continuous_near_d_lower`` whenever the
smallest sampled dose is above 1% of the median (often at G = 100, and almost
always under Beta(2, 2), whose density vanishes at 0), and the paper's
simulations estimate the WAS at zero.

Part 1: the paper's designs (de Chaisemartin, Ciccia, D'Haultfoeuille & Knau,
Sec. 3.1.5, Table 1), units independent, no survey design (``vce`` = "nn")
----------------------------------------------------------------------------
* DGP1: ``D ~ U(0, 1)``, ``dY = D + D^2 + N(0, 1)``.
  WAS = E[D + D^2] / E[D] = (1/2 + 1/3) / (1/2) = 5/3.
* DGP2: ``D ~ Beta(2, 2)``, same outcome. E[D] = 1/2, Var D = 1/20, so
  E[D^2] = 1/20 + 1/4 = 3/10 and WAS = (1/2 + 3/10) / (1/2) = 8/5. The
  dose density is 0 at the boundary (the paper's assumption A4 fails).
* G in {100, 500, 2500}; ``--reps`` replications each (default 500; the
  paper uses 2,000). Published RBC coverage (paper Table 1, known here only
  second-hand, so indicative only): DGP1
  about 89% / 93% / 95% at G = 100 / 500 / 2500; DGP2 about 90% at G = 100
  and about 95% at G = 2500.

Part 2: a survey design (finite population, fixed for the run)
--------------------------------------------------------------
* 10 strata x 20 PSUs x 25 units = 200 PSUs, 5,000 units. Dose drawn per
  unit, ``D ~ U(0, 1)``; ``dY = D + D^2 + u_j + e_i`` with a PSU effect
  ``u_j ~ N(0, 0.5^2)`` and ``e_i ~ N(0, 1)``. ``u`` and ``e`` are centred
  in the population (their population means are exactly 0), so the population
  mean of the untreated change dY(0) = u + e is 0 and mean(dY) / mean(D)
  over the population equals the truth; what remains is the population's
  local mean of dY(0) near D = 0, a finite-population quantity that is not
  exactly 0 (the census fit below shows its size).
* Truth: the finite-population WAS, sum(Y(D) - Y(0)) / sum(D) =
  sum(D + D^2) / sum(D) over the 5,000 units.
* Sample (redrawn each replication): 6 of the 20 PSUs in every stratum by SRS
  without replacement, all 25 units in each: 60 PSUs, 1,500 units; weight
  N_h / n_h = 20 / 6 (equal for everyone, so the weighted and unweighted point
  estimates coincide and the variants below differ only in their SEs).
  ``SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop")``
  with ``n_psu_pop`` = 20 (first-stage sampling fraction 0.3); design df 50.
* Variants: ``design_hc1`` (the default ``vce``, "hc1" when the design has
  PSUs), ``design_nn`` (``vce="nn"``), ``naive`` (no design: iid units,
  ``vce="nn"``, normal interval).
* Information population ``psu-dose`` (``--no-psu-dose`` skips it): the same,
  but doses nearly constant within PSU, ``D = 0.9 U_j + 0.1 U_i`` (``U_j``
  per PSU, ``U_i`` per unit, both U(0, 1)), the "state policy" case in which
  nearest-neighbour residuals are expected to under-cover because a unit's
  dose neighbours sit in its own PSU.

Reported per row: coverage of ``res.conf_int`` with its Monte Carlo SE
sqrt(p (1 - p) / R), mean of ``att`` and of ``att_bias_corrected`` minus the
truth, the SD of ``att_bias_corrected`` over replications, mean SE, SE/SD,
mean bandwidth h (and mean units within h; for the survey, mean sampled
PSUs with a unit within h). Survey rows also show the
coverage of the census value (the bias-corrected estimate fitted on the whole
population with unit weights), for information.

Usage::

    python benchmarks/mc_had_coverage.py                # 500 reps per cell, 2 processes
    python benchmarks/mc_had_coverage.py --quick        # 50 reps
    python benchmarks/mc_had_coverage.py --reps 2000 --seed 7 --workers 2
    python benchmarks/mc_had_coverage.py --reps-2500 200   # fewer reps at G = 2500 only
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
from collections import Counter  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import _harness as harness  # noqa: E402 (next to this script)
import diff_diff  # noqa: E402
from diff_diff import HeterogeneousAdoptionDiD, SurveyDesign  # noqa: E402

# ------------------------------------------------------------------ settings
DGPS = {
    "DGP1": ("D ~ U(0,1)", 5.0 / 3.0),
    "DGP2": ("D ~ Beta(2,2)", 8.0 / 5.0),
}
SIZES = (100, 500, 2500)
PUBLISHED = {("DGP1", 100): "~0.89", ("DGP1", 500): "~0.93", ("DGP1", 2500): "~0.95",
             ("DGP2", 100): "~0.90", ("DGP2", 2500): "~0.95"}

N_STRATA = 10
N_PSU_POP = 20  # population PSUs per stratum (N_h)
N_UNITS = 25  # units per PSU
N_PSU_SAMPLE = 6  # sampled PSUs per stratum (n_h)
SD_PSU = 0.5

FIT = dict(outcome="y", dose="d", time="t", unit="unit")
DESIGN = SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop")
SURVEY_VARIANTS = {
    "design_hc1": "design, default vce (hc1)",
    "design_nn": 'design, vce="nn"',
    "naive": "naive (no design, nn)",
}
POPULATIONS = {
    "unit-dose": "doses per unit (the brief's design)",
    "psu-dose": "doses nearly constant within PSU (information)",
}


def draw_dose(dgp: str, rng: np.random.Generator, size: int) -> np.ndarray:
    return rng.random(size) if dgp == "DGP1" else rng.beta(2.0, 2.0, size)


def two_period_frame(d: np.ndarray, dy: np.ndarray, extra: dict | None = None) -> pd.DataFrame:
    n = d.size
    data = {
        "unit": np.repeat(np.arange(n), 2),
        "t": np.tile([1, 2], n),
        "d": np.column_stack([np.zeros(n), d]).ravel(),
        "y": np.column_stack([np.zeros(n), dy]).ravel(),
    }
    for name, values in (extra or {}).items():
        data[name] = np.repeat(values, 2)
    return pd.DataFrame(data)


def summarize_fit(res) -> tuple:
    lo, hi = res.conf_int
    row = res.event_study_effects.iloc[0]
    return (res.att, res.att_bias_corrected, res.se, lo, hi, res.bandwidth,
            float(row["n_in_bandwidth"]))


def run_fit(data: pd.DataFrame, warned: Counter, **kwargs):
    survey = kwargs.pop("survey_design", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = HeterogeneousAdoptionDiD(design="continuous_at_zero", **kwargs).fit(
            data, survey_design=survey, **FIT)
    for w in caught:
        warned[str(w.message)[:90]] += 1
    return summarize_fit(res)


# ------------------------------------------------------------------ part 1
def replicate_iid(args):
    dgp, g, rep, seed = args
    rng = np.random.default_rng([seed, list(DGPS).index(dgp), g, rep])
    d = draw_dose(dgp, rng, g)
    dy = d + d**2 + rng.normal(0.0, 1.0, g)
    warned = Counter()
    out = run_fit(two_period_frame(d, dy), warned)
    return (dgp, g), rep, out, warned


# ------------------------------------------------------------------ part 2
@dataclass
class Population:
    name: str
    stratum: np.ndarray  # (J,)
    d: np.ndarray  # (J, M)
    dy: np.ndarray  # (J, M)
    truth: float
    census: tuple  # summarize_fit of the whole-population fit (unit weights)
    offset: float  # population local mean of dY(0) near 0 is not 0: census att_bc - truth


def build_population(name: str, seed: int) -> Population:
    rng = np.random.default_rng([seed, 100, list(POPULATIONS).index(name)])
    n_psu = N_STRATA * N_PSU_POP
    stratum = np.repeat(np.arange(N_STRATA), N_PSU_POP)
    if name == "unit-dose":
        d = rng.random((n_psu, N_UNITS))
    else:
        d = 0.9 * rng.random(n_psu)[:, None] + 0.1 * rng.random((n_psu, N_UNITS))
    u = rng.normal(0.0, SD_PSU, n_psu)
    u -= u.mean()
    e = rng.normal(0.0, 1.0, (n_psu, N_UNITS))
    e -= e.mean()
    dy = d + d**2 + u[:, None] + e
    truth = float((d + d**2).sum() / d.sum())
    data = two_period_frame(d.ravel(), dy.ravel())
    census = run_fit(data, Counter())
    return Population(name, stratum, d, dy, truth, census, census[1] - truth)


_POPS: dict[str, Population] = {}  # set in the parent before the workers fork


def draw_sample(pop: Population, rng: np.random.Generator) -> pd.DataFrame:
    psu = np.concatenate([h * N_PSU_POP + rng.choice(N_PSU_POP, N_PSU_SAMPLE, replace=False)
                          for h in range(N_STRATA)])
    n = psu.size * N_UNITS
    extra = {
        "stratum": np.repeat(pop.stratum[psu], N_UNITS),
        "psu": np.repeat(psu, N_UNITS),
        "w": np.full(n, N_PSU_POP / N_PSU_SAMPLE),
        "n_psu_pop": np.full(n, N_PSU_POP),
    }
    return two_period_frame(pop.d[psu].ravel(), pop.dy[psu].ravel(), extra)


def replicate_survey(args):
    name, rep, seed = args
    pop = _POPS[name]
    rng = np.random.default_rng([seed, 200, list(POPULATIONS).index(name), rep])
    data = draw_sample(pop, rng)
    warned = Counter()
    out = {
        "design_hc1": run_fit(data, warned, survey_design=DESIGN),
        "design_nn": run_fit(data, warned, survey_design=DESIGN, vce="nn"),
        "naive": run_fit(data, warned),
    }
    post = data[data["t"] == 2]
    for v, fit in out.items():  # append the number of sampled PSUs with a unit within h
        out[v] = fit + (float(post.loc[post["d"] <= fit[5], "psu"].nunique()),)
    return name, rep, out, warned


# ------------------------------------------------------------------ report
def stats_row(arr: np.ndarray, truth: float, census_bc: float | None = None) -> dict:
    att, att_bc, se, lo, hi, bw, n_bw = arr.T[:7]
    ok = np.isfinite(lo) & np.isfinite(hi)
    reps = att.size
    cover = float(np.mean(ok & (lo <= truth) & (truth <= hi)))
    sd = att_bc.std(ddof=1)
    row = {
        "R": reps,
        "coverage": cover,
        "MCSE": np.sqrt(cover * (1 - cover) / reps),
        "bias att": att.mean() - truth,
        "bias bc": att_bc.mean() - truth,
        "SD bc": sd,
        "mean SE": se.mean(),
        "SE/SD": se.mean() / sd,
        "mean h": bw.mean(),
        "n in h": n_bw.mean(),
    }
    if arr.shape[1] > 7:
        row["PSUs in h"] = arr[:, 7].mean()
    if census_bc is not None:
        row["cov census"] = float(np.mean(ok & (lo <= census_bc) & (census_bc <= hi)))
    row["failed"] = int((~ok).sum())
    return row


def format_table(table: pd.DataFrame) -> str:
    fmt = {"coverage": "{:.3f}", "MCSE": "{:.4f}", "bias att": "{:+.4f}",
           "bias bc": "{:+.4f}", "SD bc": "{:.4f}", "mean SE": "{:.4f}", "SE/SD": "{:.3f}",
           "mean h": "{:.3f}", "n in h": "{:.0f}", "PSUs in h": "{:.1f}", "cov census": "{:.3f}",
           "truth": "{:.4f}"}
    shown = table.copy()
    for col, f in fmt.items():
        if col in shown:
            shown[col] = [("n/a" if not np.isfinite(v) else f.format(v)) for v in table[col]]
    return shown.to_string(index=False)


def environment() -> str:
    return (f"diff_diff {diff_diff.__version__}, numpy {np.__version__}, pandas {pd.__version__}, "
            f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500, help="replications per cell (default 500)")
    parser.add_argument("--reps-2500", type=int, default=None,
                        help="replications at G = 2500 (default: --reps)")
    parser.add_argument("--quick", action="store_true", help="50 replications")
    parser.add_argument("--seed", type=int, default=20240611, help="master seed")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--no-psu-dose", action="store_true",
                        help="skip the information population with doses constant within PSU")
    parser.add_argument("--skip-iid", action="store_true", help="survey part only")
    parser.add_argument("--skip-survey", action="store_true", help="paper designs only")
    args = parser.parse_args(argv)
    reps = 50 if args.quick else args.reps
    reps_2500 = reps if args.reps_2500 is None else min(args.reps_2500, reps)
    print(environment())
    print(f"seed {args.seed}, {reps} replications per cell"
          + (f" ({reps_2500} at G = 2500)" if reps_2500 != reps else "")
          + f", {args.workers} process(es)")
    warned_all = Counter()
    t_start = time.perf_counter()

    if not args.skip_iid:
        print("\nPart 1: the paper's designs, iid units, "
              "HeterogeneousAdoptionDiD(design='continuous_at_zero') (vce 'nn'), "
              "RBC 95% interval")
        t0 = time.perf_counter()
        jobs = [(dgp, g, r, args.seed) for dgp in DGPS for g in SIZES
                for r in range(reps_2500 if g == 2500 else reps)]
        results: dict = {}
        runs = harness.parallel_map(replicate_iid, jobs, args.workers, chunksize=10)
        for key, rep, out, warned in runs:
            results.setdefault(key, {})[rep] = out
            warned_all.update(warned)
        elapsed = time.perf_counter() - t0
        rows = []
        for dgp, (label, truth) in DGPS.items():
            for g in SIZES:
                res = results[(dgp, g)]
                arr = np.array([res[r] for r in sorted(res)], dtype=float)
                rows.append({"DGP": f"{dgp} {label}", "G": g, "truth": truth,
                             **stats_row(arr, truth),
                             "published": PUBLISHED.get((dgp, g), "n/a")})
        print(f"{len(jobs)} fits in {elapsed:.1f} s\n")
        print(format_table(pd.DataFrame(rows)))
        print("\npublished: RBC coverage in the paper's Table 1 (2,000 reps), known only "
              "second-hand; indicative only.")

    if not args.skip_survey:
        names = [n for n in POPULATIONS if not (args.no_psu_dose and n == "psu-dose")]
        print(f"\nPart 2: survey design, population {N_STRATA} strata x {N_PSU_POP} PSUs x "
              f"{N_UNITS} units; sample {N_PSU_SAMPLE} PSUs per stratum (SRSWOR, all units): "
              f"{N_STRATA * N_PSU_SAMPLE} PSUs, {N_STRATA * N_PSU_SAMPLE * N_UNITS} units, "
              f"weight {N_PSU_POP / N_PSU_SAMPLE:.3f}, fpc {N_PSU_POP}, design df "
              f"{N_STRATA * (N_PSU_SAMPLE - 1)}; dY = D + D^2 + u_psu (sd {SD_PSU}) + e (sd 1)")
        t0 = time.perf_counter()
        for name in names:
            _POPS[name] = build_population(name, args.seed)
        for name in names:
            pop = _POPS[name]
            att, bc, se, lo, hi, bw, n_bw = pop.census
            print(f"population {name} ({POPULATIONS[name]}): truth sum(D+D^2)/sum(D) = "
                  f"{pop.truth:.6f}; census fit att {att:.4f}, att_bc {bc:.4f} "
                  f"(att_bc - truth {pop.offset:+.4f}), h {bw:.3f}")
        jobs = [(name, r, args.seed) for name in names for r in range(reps)]
        results = {}
        runs = harness.parallel_map(replicate_survey, jobs, args.workers, chunksize=10)
        for name, rep, out, warned in runs:
            results.setdefault(name, {})[rep] = out
            warned_all.update(warned)
        elapsed = time.perf_counter() - t0
        print(f"{len(jobs)} samples x {len(SURVEY_VARIANTS)} fits in {elapsed:.1f} s\n")
        for name in names:
            pop = _POPS[name]
            rows = []
            for v, label in SURVEY_VARIANTS.items():
                arr = np.array([results[name][r][v] for r in sorted(results[name])],
                               dtype=float)
                rows.append({"variant": label, **stats_row(arr, pop.truth, pop.census[1])})
            print(f"population {name}: {POPULATIONS[name]}, truth {pop.truth:.4f}")
            print(format_table(pd.DataFrame(rows)))
            print()
        print("cov census: coverage of the census fit's att_bc (the estimator applied to the "
              "whole population), for information.")

    print("\nMCSE = sqrt(p (1 - p) / R); bias att / bias bc = mean of att / att_bias_corrected "
          "minus truth; SD bc = SD of att_bias_corrected; SE/SD = mean SE / SD bc; "
          "n in h = mean units with dose within h of 0; PSUs in h = mean sampled PSUs with a unit "
          "there.")
    if warned_all:
        print("\nwarnings raised in the replications (count, message):")
        for msg, count in warned_all.most_common():
            print(f"  {count:6d}  {msg}")
    else:
        print("\nno warnings in the replications.")
    print(f"\ntotal wall time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
