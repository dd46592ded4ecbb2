"""Monte Carlo coverage of ImputationDiD's overall-ATT interval under a stratified cluster survey.

Criterion: with at least 500 replications, the 95% confidence interval of the
overall ATT (``res.overall_conf_int``: Student t with the design df) covers the
finite-population overall ATT in 93%-97% of the replications, for every
design-based variant below (``bjs_default``, ``bjs_estimand``, ``bjs_cohort``,
``bjs_boot``; ``bjs_horizon`` and ``naive`` are shown for information).

Population, sample and truth
----------------------------
Those of ``mc_cs_survey_coverage.py`` (imported from it, not copied; see its
docstring): a fixed finite population of 20 strata x 50 PSUs x 40 units and
10 periods, cohorts first treated in period 4, 6 or 8 (or never) assigned per
PSU with stratum-dependent probabilities, exact parallel trends in the
population, an effect that grows with exposure and varies with the covariate
x, stratum, PSU and unit; in each replication a stratified two-stage sample
(6-8 PSUs per stratum by SRS, then 1 in 2 of the x = 1 and 1 in 4 of the
x = 0 units of each PSU; 139 PSUs, ~1,950 units, weights 12.5 to 33.3,
design df 119). Replication r draws the same sample as replication r of the
CS study with the same ``--seed``.

The truth is the CS study's: the population mean effect over post-treatment
cells (g, t), weighted by the population cohort sizes. ImputationDiD's
overall ATT is the weighted mean of the imputed effects over all treated
unit-periods with t >= g; on a balanced panel every unit of cohort g
contributes its 11 - g post-treatment periods, so this is the same cohort-size
weighted average, and with exact parallel trends in the population a fit on
the whole population (unit weights) returns it exactly (checked at start-up:
``|census - truth|`` is printed and the run stops if it exceeds 1e-8).

Variants (same sample for all; every design-based variant uses
``SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop")``)
---------------------------------------------------------------------------
* ``bjs_default``  ``ImputationDiD()``: ``aux_partition="cohort_horizon"``,
  BJS Theorem 3 as R ``didimputation``, Taylor linearization (TSL)
* ``bjs_estimand`` ``aux_partition="estimand"``: treated effects centred on
  the estimate, the design-based linearization of the weighted mean, TSL
* ``bjs_cohort``   ``aux_partition="cohort"``, TSL
* ``bjs_horizon``  ``aux_partition="horizon"``, TSL (information)
* ``bjs_x``        the default with ``covariates=["x"]``: x is time-invariant
  here, so it is absorbed by the unit effects and ImputationDiD drops it with
  a warning. The script checks this on the census at start-up and then leaves
  the variant out (it would be ``bjs_default`` again); it runs only if x
  were kept.
* ``bjs_boot``     the default with ``n_bootstrap=499`` (multiplier bootstrap
  by PSU within strata)
* ``naive``        ``ImputationDiD()`` without a survey design (unweighted,
  units independent)

Which variants should meet the criterion
----------------------------------------
BJS Theorem 3 centres each treated effect on the average effect of its
auxiliary cell (cohort x horizon by default), which conditions on the
treated composition: the variance misses the term from how many sampled
units fall in cohorts with different effects. Here cohorts are assigned per
PSU, so a sample's cohort shares vary with the PSUs drawn, and the effects
differ by cohort (longer exposure, and early adopters sit in high strata
with larger effects). ``bjs_default`` (and ``bjs_cohort``, ``bjs_boot``, which
bootstraps the same influence values) may therefore under-cover, while
``bjs_estimand`` should be close to nominal. How large the missing term is
depends on the population, and the Monte Carlo decides. On a balanced panel
``bjs_cohort`` has exactly the same influence values as ``bjs_default``
(within a cohort every unit has the same post-treatment periods, so the
BJS Eq. 8 cohort average is the mean of the cohort x horizon averages); its
row must repeat the default's.

Reference standard errors (no Monte Carlo)
------------------------------------------
The census fit's influence values with ``aux_partition="estimand"`` linearize
the estimator, so their exact variance under the two-stage design (the CS
study's ``reference_ses``) is the estimator's true SD. For each other
partition, the sample's influence values centre the treated effects on the
cell's BJS Eq. 8 average, which weights by squared sampling weights and so
tends to the design-weighted population cell mean, not the census one: the
census influence values are re-centred on those limits (see
``reference_influence``), and the expectation of their TSL variance estimator
is the variant's expected squared SE. The coverage of a t interval with that
SE follows. The difference between the estimand and the default influence
values is the composition term (treated units falling in cohorts and
horizons with effects away from the overall ATT); its variance and its
covariance with the rest are printed too. All this predicts the Monte Carlo
before it runs.

Usage::

    python benchmarks/mc_bjs_survey_coverage.py                 # 500 reps, ~2 min on 2 cores
    python benchmarks/mc_bjs_survey_coverage.py --quick         # 50 reps
    python benchmarks/mc_bjs_survey_coverage.py --reps 2000 --seed 7 --workers 2
    python benchmarks/mc_bjs_survey_coverage.py --boot-draws 199 --boot-reps 200
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # mc_cs_survey_coverage.py lives next to this script
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
import mc_cs_survey_coverage as cs  # noqa: E402

from diff_diff import ImputationDiD  # noqa: E402

LOW, HIGH = cs.LOW, cs.HIGH  # the acceptance band, 0.93-0.97
DESIGN = cs.DESIGN_FPC  # SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop")

VARIANTS = {
    "bjs_default": "bjs_default  cohort_horizon, TSL",
    "bjs_estimand": "bjs_estimand estimand, TSL",
    "bjs_cohort": "bjs_cohort   cohort, TSL",
    "bjs_horizon": "bjs_horizon  horizon, TSL (info)",
    "bjs_x": "bjs_x        cohort_horizon + x, TSL",
    "bjs_boot": "bjs_boot     cohort_horizon, PSU bootstrap",
    "naive": "naive        no design (info)",
}
JUDGED = ("bjs_default", "bjs_estimand", "bjs_cohort", "bjs_boot")
PARTITION = {"bjs_estimand": "estimand", "bjs_cohort": "cohort", "bjs_horizon": "horizon"}


def fit_one(variant: str, data, boot_seed: int, boot_draws: int):
    est = ImputationDiD(aux_partition=PARTITION.get(variant, "cohort_horizon"),
                        n_bootstrap=boot_draws if variant == "bjs_boot" else 0, seed=boot_seed)
    res = est.fit(data, covariates=["x"] if variant == "bjs_x" else None,
                  survey_design=None if variant == "naive" else DESIGN, **cs.FIT)
    lo, hi = res.overall_conf_int
    df = res.df
    return (res.overall_att, res.overall_se, lo, hi, np.nan if df is None else df)


# set in the parent before the workers fork
_POP: cs.Population | None = None
_ACTIVE: tuple = ()


def replicate(args):
    rep, seed, with_boot, boot_draws = args
    rng = np.random.default_rng([seed, 1, rep])  # the CS study's sample of replication rep
    data = cs.draw_sample(_POP, rng)
    boot_seed = int(rng.integers(2**31 - 1))
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning in a replication is a finding: fail loudly
        for v in _ACTIVE:
            if v == "bjs_boot" and not with_boot:
                continue
            out[v] = fit_one(v, data, boot_seed, boot_draws)
    return rep, out


# ------------------------------------------------------------------ census checks
def census_frame(pop: cs.Population):
    n_psu = pop.stratum.size
    psu = np.repeat(np.arange(n_psu), cs.N_UNITS)
    pos = np.tile(np.arange(cs.N_UNITS), n_psu)
    return cs.long_frame(pop, psu, pos, None)


def census_fits(pop: cs.Population) -> dict:
    """Census fits (unit weights) by partition: overall ATT, influence values of the
    overall ATT (n_psu x N_UNITS) and the imputed effects (``treatment_effects``)."""
    data = census_frame(pop)
    out = {}
    for part in ("cohort_horizon", "cohort", "horizon", "estimand"):
        res = ImputationDiD(aux_partition=part).fit(data, **cs.FIT)
        z = res.influence_functions[:, 0]  # overall ATT; units sorted = (psu, pos) order
        out[part] = (res.overall_att, z.reshape(pop.stratum.size, cs.N_UNITS),
                     res.treatment_effects)
    return out


def reference_influence(pop: cs.Population, census: dict) -> dict:
    """Influence values whose TSL variance the sample's TSL variance estimates, by partition.

    In a sample, a treated effect is centred on its cell's BJS Eq. 8 average,
    ``sum_i A_i B_i / sum_i A_i^2``, whose weights are SQUARED sampling weights;
    its limit is the design-weighted population cell mean ``sum_U s tau / sum_U s``
    (``s``: the unit's sampling weight), not the census cell mean (which the
    census fit uses). The reference swaps the census centres for these:
    ``z_i = z_i(estimand) + sum_t w_it (theta - c_cell)``, ``w_it = 1 / M`` (balanced
    panel: every partition's Eq. 8 centre is a weighted mean of the cell's effects).
    """
    theta, z_est, te = census["estimand"]
    te = te[te["weight"] > 0]
    unit = te["unit"].to_numpy()
    psu, pos = unit // cs.N_UNITS, unit % cs.N_UNITS
    s = ((cs.N_PSU_POP / cs.sample_sizes())[pop.stratum[psu]]
         * np.where(pop.x[psu, pos] == 1.0, cs.RATE_X1, cs.RATE_X0))
    tau, w = te["tau"].to_numpy(), te["weight"].to_numpy()
    g, e = te["first_treat"].to_numpy(), te["event_time"].to_numpy()
    out = {"estimand": z_est}  # the centre, theta_hat, is consistent for theta
    for part, key in (("cohort_horizon", g * 100 + e), ("cohort", g), ("horizon", e)):
        cells, cell = np.unique(key, return_inverse=True)
        centre = (np.bincount(cell, weights=s * tau) / np.bincount(cell, weights=s))[cell]
        shift = np.bincount(unit, weights=w * (theta - centre), minlength=z_est.size)
        out[part] = z_est + shift.reshape(z_est.shape)
    return out


def covariate_kept(pop: cs.Population) -> tuple[bool, str]:
    """Does a census fit keep x as a covariate? (x is time-invariant: expected not.)"""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = ImputationDiD().fit(census_frame(pop), covariates=["x"], **cs.FIT)
    dropped = [str(w.message) for w in caught if "dropped" in str(w.message)]
    return not dropped, (dropped[0] if dropped else f"x kept (overall ATT {res.overall_att:.6f})")


# ------------------------------------------------------------------ report
def summarize(results: dict, truth: float):
    """The CS study's summary table, over this study's variants."""
    with mock.patch.object(cs, "VARIANTS", {k: VARIANTS[k] for k in _ACTIVE}):
        return cs.summarize(results, truth)


def paired(results: dict, truth: float, a: str, b: str) -> str:
    """Same samples: mean SE ratio of a over b and the replications where only one covers."""
    reps = [r for r in sorted(results) if a in results[r] and b in results[r]]
    if not reps:
        return ""
    ra = np.array([results[r][a] for r in reps], dtype=float)
    rb = np.array([results[r][b] for r in reps], dtype=float)
    cov_a = (ra[:, 2] <= truth) & (truth <= ra[:, 3])
    cov_b = (rb[:, 2] <= truth) & (truth <= rb[:, 3])
    ratio = ra[:, 1] / rb[:, 1]
    return (f"{a} vs {b} (same samples): SE ratio mean {ratio.mean():.4f} "
            f"[min {ratio.min():.4f}, max {ratio.max():.4f}]; only {a} covers: "
            f"{int((cov_a & ~cov_b).sum())}, only {b} covers: {int((~cov_a & cov_b).sum())}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=500, help="replications (default 500)")
    parser.add_argument("--quick", action="store_true", help="50 replications")
    parser.add_argument("--seed", type=int, default=20240611,
                        help="master seed (population and samples, as the CS study)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--boot-draws", type=int, default=499,
                        help="bootstrap draws of bjs_boot (default 499)")
    parser.add_argument("--boot-reps", type=int, default=None,
                        help="replications that also run bjs_boot (default all)")
    args = parser.parse_args(argv)
    reps = 50 if args.quick else args.reps
    boot_reps = reps if args.boot_reps is None else min(args.boot_reps, reps)

    global _POP, _ACTIVE
    t_start = time.perf_counter()
    pop = cs.build_population(args.seed)
    _POP = pop
    print(cs.environment())
    n_units = pop.stratum.size * cs.N_UNITS
    counts = {g: int((pop.first_treat == g).sum()) for g in cs.COHORTS + (0,)}
    print(f"population (mc_cs_survey_coverage.py): {cs.N_STRATA} strata x {cs.N_PSU_POP} PSUs x "
          f"{cs.N_UNITS} units = {n_units:,} units, {cs.N_PERIODS} periods; PSUs per cohort "
          + ", ".join(f"{'never' if g == 0 else f'g={g}'}: {c}" for g, c in counts.items()))
    n_sampled = int(cs.sample_sizes().sum())
    per_psu = cs.N_X1 // cs.RATE_X1 + (cs.N_UNITS - cs.N_X1) // cs.RATE_X0
    print(f"sample: {n_sampled} PSUs (6-8 per stratum), about {n_sampled * per_psu:,} units; "
          f"seed {args.seed}")
    print(f"truth (finite-population overall ATT, simple aggregation): {pop.truth:.6f}; "
          f"largest parallel-trends adjustment of a cell mean: {pop.max_shift:.4f}")

    census = census_fits(pop)
    gap = max(abs(att - pop.truth) for att, _, _ in census.values())
    print(f"census ImputationDiD: {census['cohort_horizon'][0]:.6f} "
          f"(|census - truth| = {gap:.2e}, largest over the four partitions)")
    if not gap < 1e-8:
        print("STOP: the census fit does not reproduce the truth")
        return 2
    same = np.abs(census["cohort"][1] - census["cohort_horizon"][1]).max()
    print(f"census influence values, cohort vs cohort_horizon partition: largest difference "
          f"{same:.1e} (balanced panel: identical)")
    kept, why = covariate_kept(pop)
    _ACTIVE = tuple(v for v in VARIANTS if kept or v != "bjs_x")
    if not kept:
        print(f"bjs_x left out: the census fit with covariates=['x'] warns: {why}")
    print(f"population built and census fits in {time.perf_counter() - t_start:.1f} s\n")

    t0 = time.perf_counter()
    jobs = [(r, args.seed, r < boot_reps, args.boot_draws) for r in range(reps)]
    results = dict(harness.parallel_map(replicate, jobs, args.workers, chunksize=5))
    elapsed = time.perf_counter() - t0
    print(f"{reps} replications ({boot_reps} with the bootstrap, {args.boot_draws} draws) in "
          f"{elapsed:.1f} s on {args.workers} process(es): {elapsed * args.workers / reps:.2f} s "
          "per replication per process\n")

    table = summarize(results, pop.truth)
    print(cs.format_table(table))
    print("\nMCSE cov = sqrt(p (1 - p) / R); bias/MCSE = mean bias / (MC SD / sqrt(R)); "
          "SE/SD = mean SE / MC SD.")
    print(paired(results, pop.truth, "bjs_default", "bjs_estimand"))

    df = float(table.loc[table["variant"] == VARIANTS["bjs_default"], "mean df"].iloc[0])
    ref_z = reference_influence(pop, census)
    refs = {part: cs.reference_ses(pop, z) for part, z in ref_z.items()}
    true_sd = refs["estimand"]["true"]
    print(f"\nReference SEs from the census influence values (no Monte Carlo): true SD of the "
          f"estimator (estimand linearization, exact two-stage design variance) {true_sd:.4f}")
    print(f"{'partition':16}{'E[TSL] fpc':>11}{'/ true SD':>11}{'pred. cov.':>12}"
          f"{'E[TSL] no fpc':>15}{'pred. cov.':>12}")
    for part in ("cohort_horizon", "cohort", "horizon", "estimand"):
        ref = refs[part]
        print(f"{part:16}{ref['fpc']:>11.4f}{ref['fpc'] / true_sd:>11.3f}"
              f"{cs.expected_coverage(ref['fpc'] / true_sd, df):>12.3f}"
              f"{ref['nofpc']:>15.4f}{cs.expected_coverage(ref['nofpc'] / true_sd, df):>12.3f}")
    comp = ref_z["estimand"] - ref_z["cohort_horizon"]
    v_est, v_def, v_comp = (cs.reference_ses(pop, z)["true"] ** 2
                            for z in (ref_z["estimand"], ref_z["cohort_horizon"], comp))
    print(f"composition term (estimand minus cohort_horizon influence values): variance "
          f"{v_comp / v_est:.1%} of the estimator's, 2 x its covariance with the rest "
          f"{(v_est - v_def - v_comp) / v_est:+.1%}; net share missing from the default "
          f"{1 - v_def / v_est:.1%}")
    print("(E[TSL]: expected TSL SE of the variant with that partition; pred. cov.: coverage of "
          "a t interval whose SE equals it; the SE's own sampling noise lowers it slightly. "
          "The MC SD should match the true SD.)")

    print()
    judged = table.set_index(table["variant"].map({lab: k for k, lab in VARIANTS.items()}))
    inside = {k: LOW <= judged.loc[k, "coverage"] <= HIGH for k in judged.index}
    for k in judged.index:
        print(f"{'judged' if k in JUDGED else 'info'}: {k}: coverage "
              f"{judged.loc[k, 'coverage']:.3f} {'inside' if inside[k] else 'OUTSIDE'} "
              f"[{LOW:.2f}, {HIGH:.2f}]")
    present = [k for k in JUDGED if k in judged.index]
    detail = ", ".join(f"{k} {judged.loc[k, 'coverage']:.3f}" for k in present)
    if reps < 500:
        verdict = f"NOT JUDGED (R = {reps} < 500)"
    else:
        verdict = "PASS" if all(inside[k] for k in present) else "FAIL"
    print(f"criterion: 95% CI coverage of the overall ATT in [{LOW:.0%}, {HIGH:.0%}] with "
          f"R >= 500, for the design-based variants: {verdict} ({detail})")
    print(f"wall time {time.perf_counter() - t_start:.1f} s")
    return 0 if verdict.startswith(("PASS", "NOT")) else 1


if __name__ == "__main__":
    sys.exit(main())
