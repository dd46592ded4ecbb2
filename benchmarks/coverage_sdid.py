"""Monte Carlo coverage of SyntheticDiD (jackknife, placebo) under a stratified clustered survey population.

The structure of ``coverage_survey.py`` (which does the same for SunAbraham and
StackedDiD): everything is simulated by ``diff_diff.simulate_power`` (one call per
estimator x inference mode), on the survey population of
``diff_diff.diagnostics.simulate_panel`` with a ``SurveyPowerConfig``:

* ``n_strata`` strata x ``psu_per_stratum`` PSUs (default 5 x 12 = 60 PSUs, FPC 200
  population PSUs per stratum), ``n_units`` units spread evenly over the PSUs
  (default 600: 10 per PSU), ``n_periods`` periods (default 8);
* outcome ``y = a_i + 0.3 t + s_pt + tau_i d_it + e_it``: unit effect a_i with a PSU
  random effect (sd ``psu_re_sd``, default 1), a PSU x period shock s_pt (sd
  ``psu_period_factor * psu_re_sd``, default 0.5) and e_it ~ N(0, ``sigma`` = 1);
* treatment assigned to whole PSUs (``treatment_fraction`` of them, default 0.15:
  9 of 60), all from ``treatment_period`` (default 5) on: a block design (4 pre,
  4 post periods), as SyntheticDiD needs. The fraction is well below 0.5 because
  the stratified placebo needs more control than treated units in every stratum
  (with 9 treated PSUs among 5 x 12, a stratum with 6 or more treated PSUs, which
  makes the stratified placebo fail, is rare: about 1% of the draws; such fits are
  counted as failures, and the count is printed before the run);
* weights varying across strata (1 .. 1 + n_strata / 2) and within stratum
  (log-normal, CV 0.5), informative (larger unit effects, larger weights);
* effects heterogeneous by stratum (0.5 .. 1.5 x ``treatment_effect``), so the
  truth is the weighted ATT of the treated post-period observations (returned by
  ``simulate_panel`` per draw); an unweighted estimator targets a different number.

Estimators (fit keywords ``outcome="y", treatment="treated", unit="unit",
time="time", post_periods=[treatment_period .. n_periods]``; ``treated`` is the
unit-level indicator of simulate_panel):

* ``SDID-jackknife``: ``SyntheticDiD(variance_method="jackknife")``; with a survey
  design the jackknife leaves out one PSU at a time within strata (JKn, with the
  FPC), without one it leaves out one unit at a time (R's algorithm 3, fixed
  weights);
* ``SDID-placebo``: ``SyntheticDiD(variance_method="placebo", n_bootstrap=B,
  seed=0)`` (``--placebo-draws``, default 20); with a design the placebo
  reassigns treatment at random among the control units within each stratum,
  without one among all controls. Each fit re-solves the weights B times (~2 s
  per fit at B = 20 here, against ~0.1 s for the jackknife), so its cells run
  ``--placebo-n-sim`` simulations (default 200) and the few draws make its SE
  noisy (relative SD ~ 1 / sqrt(2 (B - 1)), about 16% at B = 20).
  The placebo permutes units, not PSUs: it does not see the PSU x period shocks
  that the treated PSUs share, so it is expected to understate the variance.

Inference modes (the same simulated panels in every cell: every call uses the same
seed, and the generator below reproduces ``simulate_power``'s own draws, which is
checked at start-up):

* ``design``: ``simulate_power(..., survey_config=cfg)``, i.e. the fit gets
  ``SurveyDesign(weights, strata, psu, fpc)``: weighted treated mean, design-based
  variance (above), t interval with df = #PSU - #strata;
* ``naive``: ``data_generator=`` returning the same survey panel and no
  ``survey_config``, so the fit gets no design: unweighted, unit-level jackknife
  or placebo, normal interval;
* ``psu_cluster`` (optional): as ``naive`` with ``cluster="psu"`` (unweighted; the
  jackknife leaves out whole PSUs): the clustering is right, the weights are
  ignored (bias only);
* ``weights_only`` (optional): ``SurveyDesign(weights="weight")``: weighted, no
  strata or PSUs (unit-level jackknife / placebo): no bias, wrong clustering.

Printed per cell: coverage of the 95% interval (``res.conf_int``) with its Monte
Carlo SE ``sqrt(p (1 - p) / R)``, bias against the per-draw truth (and its Monte
Carlo SE), RMSE, mean SE, the SD of the estimates and the SD of the errors
(estimate - truth), mean SE / SD of errors, the number of successful simulations
and failures. Design-based cells are judged against 93%-97% (with at least 500
simulations).

Usage::

    python benchmarks/coverage_sdid.py                   # jackknife 1000, placebo 200 per cell, ~11 min
    python benchmarks/coverage_sdid.py --quick           # 100 (placebo 20) simulations per cell
    python benchmarks/coverage_sdid.py --n-sim 500 --estimators SDID-jackknife \\
        --modes design naive psu_cluster weights_only
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _harness as harness  # noqa: E402
import coverage_survey as cs  # noqa: E402  (its generator, draw check, truth summary, table)

import diff_diff as dd  # noqa: E402

ESTIMATORS = {  # label -> constructor keywords of SyntheticDiD (placebo draws set in main)
    "SDID-jackknife": {"variance_method": "jackknife"},
    "SDID-placebo": {"variance_method": "placebo", "seed": 0},
}
MODES = {
    "design": "SurveyDesign(weights, strata, psu, fpc): weighted; jackknife JKn by PSU "
              "within strata (FPC) / placebo within strata; t, df #PSU-#strata",
    "naive": "no design: unweighted; jackknife by unit / placebo over all controls; normal",
    "psu_cluster": "no design, cluster='psu': unweighted; jackknife by PSU (placebo: as naive)",
    "weights_only": "SurveyDesign(weights) only: weighted; jackknife by unit / placebo over "
                    "all controls",
}
JUDGED = ("design",)
LOW, HIGH, MIN_JUDGED = 0.93, 0.97, 500


def fit_keywords(s: dict) -> dict:
    return dict(outcome="y", treatment="treated", unit="unit", time="time",
                post_periods=list(range(s["treatment_period"], s["n_periods"] + 1)))


def n_sim_of(label: str, s: dict) -> int:
    """Simulations of an estimator's cells (the placebo's are far slower)."""
    return s["placebo_n_sim"] if label == "SDID-placebo" else s["n_sim"]


def run_cell(job):
    """One estimator x inference mode: a simulate_power call; returns its table row."""
    label, mode, s = job
    kwargs = dict(ESTIMATORS[label])
    if kwargs["variance_method"] == "placebo":
        kwargs["n_bootstrap"] = s["placebo_draws"]
    cfg = cs.make_config(s)
    common = dict(n_units=s["n_units"], n_periods=s["n_periods"],
                  treatment_effect=s["treatment_effect"],
                  treatment_fraction=s["treatment_fraction"],
                  treatment_period=s["treatment_period"], sigma=s["sigma"],
                  n_simulations=s["n_sim"], seed=s["seed"], progress=False,
                  estimator_kwargs=fit_keywords(s))
    generator = dict(data_generator=cs.survey_panel,
                     data_generator_kwargs=dict(
                         treatment_fraction=s["treatment_fraction"],
                         treatment_period=s["treatment_period"], sigma=s["sigma"],
                         survey_config=cfg))
    if mode == "design":
        est, extra = dd.SyntheticDiD(**kwargs), dict(survey_config=cfg)
    elif mode == "weights_only":
        est = dd.SyntheticDiD(**kwargs)
        extra = dict(survey_config=cs.make_config(s, dd.SurveyDesign(weights="weight")))
    elif mode == "naive":
        est, extra = dd.SyntheticDiD(**kwargs), generator
    elif mode == "psu_cluster":
        est, extra = dd.SyntheticDiD(**kwargs, cluster="psu"), generator
    else:
        raise ValueError(mode)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = dd.simulate_power(est, **common, **extra)
    elapsed = time.perf_counter() - t0
    warned = Counter(f"[{label} / {mode}] {type(w.message).__name__}: {w.message}"
                     for w in caught)
    return label, mode, res.table.iloc[0].to_dict(), elapsed, warned


def placebo_infeasible(s: dict) -> int:
    """Draws (of this run's seeds) in which some stratum has at least as many treated as
    control units: the stratified placebo fails there (counted as failures)."""
    cfg = cs.make_config(s)
    bad = 0
    for child in np.random.SeedSequence(s["seed"]).spawn(s["n_sim"]):
        data, _ = cs.survey_panel(s["n_units"], s["n_periods"], s["treatment_effect"], child,
                                  s["treatment_fraction"], s["treatment_period"], s["sigma"],
                                  cfg)
        units = data.drop_duplicates("unit")
        counts = units.groupby("stratum")["treated"].agg(["sum", "size"])
        bad += int(((counts["sum"] > 0) & (2 * counts["sum"] >= counts["size"])).any())
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sim", type=int, default=1000,
                        help="simulations per SDID-jackknife x mode (default 1000)")
    parser.add_argument("--placebo-n-sim", type=int, default=200,
                        help="simulations per SDID-placebo x mode (default 200)")
    parser.add_argument("--quick", action="store_true",
                        help="100 simulations per cell (placebo 20)")
    parser.add_argument("--seed", type=int, default=20240611, help="seed (same for every cell)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--placebo-draws", type=int, default=20,
                        help="n_bootstrap of SDID-placebo (default 20)")
    parser.add_argument("--n-units", type=int, default=600)
    parser.add_argument("--n-periods", type=int, default=8)
    parser.add_argument("--treatment-period", type=int, default=5)
    parser.add_argument("--treatment-effect", type=float, default=1.0)
    parser.add_argument("--treatment-fraction", type=float, default=0.15)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--n-strata", type=int, default=5)
    parser.add_argument("--psu-per-stratum", type=int, default=12)
    parser.add_argument("--fpc-per-stratum", type=float, default=200.0)
    parser.add_argument("--weight-variation", default="moderate",
                        choices=["none", "low", "moderate", "high"])
    parser.add_argument("--psu-re-sd", type=float, default=1.0)
    parser.add_argument("--psu-period-factor", type=float, default=0.5)
    parser.add_argument("--no-informative-sampling", action="store_true")
    parser.add_argument("--homogeneous-te", action="store_true",
                        help="same effect in every stratum (weighted = unweighted truth)")
    parser.add_argument("--estimators", nargs="+", choices=list(ESTIMATORS),
                        default=list(ESTIMATORS))
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=["design", "naive"])
    args = parser.parse_args(argv)
    s = dict(n_sim=100 if args.quick else args.n_sim, seed=args.seed, n_units=args.n_units,
             n_periods=args.n_periods, treatment_period=args.treatment_period,
             treatment_effect=args.treatment_effect,
             treatment_fraction=args.treatment_fraction, sigma=args.sigma,
             n_strata=args.n_strata, psu_per_stratum=args.psu_per_stratum,
             fpc_per_stratum=args.fpc_per_stratum, weight_variation=args.weight_variation,
             psu_re_sd=args.psu_re_sd, psu_period_factor=args.psu_period_factor,
             informative_sampling=not args.no_informative_sampling,
             heterogeneous_te_by_strata=not args.homogeneous_te,
             placebo_draws=args.placebo_draws,
             placebo_n_sim=20 if args.quick else args.placebo_n_sim)
    if "SDID-jackknife" not in args.estimators:
        s["n_sim"] = s["placebo_n_sim"]  # the draws shown by the checks below
    cfg = cs.make_config(s)
    n_psu = s["n_strata"] * s["psu_per_stratum"]
    n_treated_psu = max(1, round(s["treatment_fraction"] * n_psu))
    print(cs.environment())
    print(f"seed {s['seed']}, simulations per cell: "
          + ", ".join(f"{label} {n_sim_of(label, s)}" for label in args.estimators)
          + f"; {args.workers} process(es)")
    print(f"panel: n_units {s['n_units']} ({s['n_units'] / n_psu:g} per PSU), n_periods "
          f"{s['n_periods']}, treatment_period {s['treatment_period']} (block: "
          f"{s['treatment_period'] - 1} pre, {s['n_periods'] - s['treatment_period'] + 1} post), "
          f"treatment_fraction {s['treatment_fraction']} of PSUs ({n_treated_psu} of {n_psu}), "
          f"treatment_effect {s['treatment_effect']:g}, sigma {s['sigma']:g}")
    print("population: " + ", ".join(f"{f.name}={getattr(cfg, f.name)!r}"
                                     for f in dataclasses.fields(cfg)
                                     if f.name not in ("icc", "weight_cv", "survey_design")))
    print(f"  -> {n_psu} PSUs, PSU x period shock sd "
          f"{s['psu_period_factor'] * s['psu_re_sd']:g}, design df {n_psu - s['n_strata']}")
    print("estimators: " + "; ".join(
        f"{label} = SyntheticDiD({', '.join(f'{k}={v!r}' for k, v in kw.items())}"
        + (f", n_bootstrap={s['placebo_draws']}" if kw['variance_method'] == 'placebo' else "")
        + ")" for label, kw in ESTIMATORS.items() if label in args.estimators))
    cs.check_same_draws(s)
    print("check: the naive modes' generator reproduces simulate_power's draws (same panels "
          "in every cell)")
    print(cs.truth_summary(s))
    if "SDID-placebo" in args.estimators:
        bad = placebo_infeasible(dict(s, n_sim=s["placebo_n_sim"]))
        print(f"draws with a stratum of at least as many treated as control units (stratified "
              f"placebo fails; counted as failures of SDID-placebo / design): {bad} of "
              f"{s['placebo_n_sim']}")
    print("modes: " + "; ".join(f"{m} = {MODES[m]}" for m in args.modes))

    t_start = time.perf_counter()
    # the slow cells (placebo) first, so that the workers finish together
    jobs = [(label, mode, dict(s, n_sim=n_sim_of(label, s)))
            for label in reversed(args.estimators) for mode in args.modes]
    results, warned_all = {}, Counter()
    for label, mode, row, elapsed, warned in harness.parallel_map(run_cell, jobs, args.workers,
                                                                 chunksize=1):
        results[(label, mode)] = cs.stats_row(label, mode, row, elapsed)
        print(f"  done: {label} / {mode} in {elapsed:.0f} s", flush=True)
        warned_all.update(warned)
    order = [(label, mode) for label in args.estimators for mode in args.modes]
    table = pd.DataFrame([results[key] for key in order])
    print(f"\n{len(jobs)} cells in {time.perf_counter() - t_start:.0f} s\n")
    print(cs.format_table(table))
    print("\nMCSE = sqrt(p (1 - p) / n); bias = mean(estimate - truth), truth = the draw's "
          "weighted ATT; SD est = SD of the estimates; SD err = SD of estimate - truth; "
          "SE/SDerr = mean SE / SD err; s = wall seconds of the cell.")

    verdicts = []
    for _, r in table[table["mode"].isin(JUDGED)].iterrows():
        if r["n"] < MIN_JUDGED:
            verdict = f"NOT JUDGED (n < {MIN_JUDGED})"
        else:
            verdict = "PASS" if LOW <= r["coverage"] <= HIGH else "FAIL"
        verdicts.append(verdict)
        print(f"{verdict}: {r['estimator']} / {r['mode']} coverage {r['coverage']:.3f} "
              f"(MCSE {r['MCSE']:.4f}), target {LOW:.0%}-{HIGH:.0%}")
    if warned_all:
        print("\nwarnings raised in the simulations (count, message):")
        for msg, count in warned_all.most_common():
            print(f"  {count:6d}  {msg}")
    else:
        print("\nno warnings in the simulations.")
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")
    return 1 if "FAIL" in verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
