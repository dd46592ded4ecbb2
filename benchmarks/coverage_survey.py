"""Monte Carlo coverage of SunAbraham and StackedDiD under a stratified clustered survey population.

Everything is simulated by ``diff_diff.simulate_power`` (one call per estimator x
inference mode), on the survey population of ``diff_diff.diagnostics.simulate_panel``
with a ``SurveyPowerConfig``:

* ``n_strata`` strata x ``psu_per_stratum`` PSUs (default 5 x 8 = 40 PSUs, FPC 200
  population PSUs per stratum), ``n_units`` units spread evenly over the PSUs
  (default 600: 15 per PSU), ``n_periods`` periods (default 6);
* outcome ``y = a_i + 0.3 t + s_pt + tau_i d_it + e_it``: unit effect a_i with a PSU
  random effect (sd ``psu_re_sd``, default 1), a PSU x period shock s_pt (sd
  ``psu_period_factor * psu_re_sd``, default 0.5) and e_it ~ N(0, ``sigma`` = 1);
* treatment assigned to whole PSUs (half of them), all adopting at
  ``treatment_period`` (default 4), so there is one cohort and the panel is
  balanced;
* weights varying across strata (1 .. 1 + n_strata / 2) and within stratum
  (log-normal, CV 0.5), informative (larger unit effects, larger weights);
* effects heterogeneous by stratum (0.5 .. 1.5 x ``treatment_effect``), so the
  truth is the weighted ATT of the treated post-period observations (returned by
  ``simulate_panel`` per draw); an unweighted estimator targets a different number.

Estimators (fit keywords ``outcome="y", unit="unit", time="time",
first_treat="first_treat"``):

* ``SunAbraham()`` (never-treated controls);
* ``StackedDiD(kappa_pre=3, kappa_post=2)``: the window that fills the panel (all
  three post periods, as the truth). With one cohort on a balanced panel its
  overall ATT equals SunAbraham's (both are the DiD of each post period against
  period ``treatment_period - 1``, averaged over post periods with equal weights);
  only the standard errors differ (no unit effects in the stacked regression);
* ``StackedDiD(kappa_pre=1, kappa_post=1)``: the short window (post periods 4-5 only;
  the effect is constant over time, so the truth is the same).

Inference modes (the same simulated panels in every cell: every call uses the same
seed, and the generator below reproduces ``simulate_power``'s own draws, which is
checked at start-up):

* ``design``: ``simulate_power(..., survey_config=cfg)``, i.e. the fit gets
  ``SurveyDesign(weights, strata, psu, fpc)``: weighted estimate, Taylor
  linearization by PSU within strata with FPC, t interval with df = #PSU - #strata;
* ``naive``: ``data_generator=`` returning the same survey panel and no
  ``survey_config``, so the fit gets no design: unweighted, CR1 clustered by unit
  (the estimators' default), t with df = #units - 1;
* ``psu_cluster``: as ``naive`` with ``cluster="psu"`` (unweighted, CR1 by PSU,
  df = #PSU - 1): the clustering is right, the weights are ignored (bias only);
* ``weights_only``: ``SurveyDesign(weights="weight")`` (probability weights, no
  strata or PSUs): weighted, clustered by unit (the clustering is wrong, no bias).

``naive`` fails for both reasons; ``psu_cluster`` and ``weights_only`` separate them.

Printed per cell: coverage of the 95% interval of the overall ATT (``res.conf_int``)
with its Monte Carlo SE ``sqrt(p (1 - p) / R)``, bias against the per-draw truth
(and its Monte Carlo SE), RMSE, mean SE, the SD of the estimates and the SD of the
errors (estimate - truth; differs from the former because the weighted truth varies
from draw to draw), mean SE / SD of errors, the number of successful simulations and
failures. Design-based cells are judged against 93%-97% (with at least 500
simulations).

Usage::

    python benchmarks/coverage_survey.py               # 2000 simulations per cell, 2 processes
    python benchmarks/coverage_survey.py --quick       # 100 simulations per cell
    python benchmarks/coverage_survey.py --n-sim 500 --seed 7 --workers 1
    python benchmarks/coverage_survey.py --psu-re-sd 2 --psu-period-factor 1
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _harness as harness  # noqa: E402

import diff_diff as dd  # noqa: E402
from diff_diff.diagnostics import simulate_panel  # noqa: E402

FIT_KEYWORDS = dict(outcome="y", unit="unit", time="time", first_treat="first_treat")

ESTIMATORS = {  # label -> (class, constructor keywords)
    "SunAbraham": (dd.SunAbraham, {}),
    "StackedDiD(3,2)": (dd.StackedDiD, {"kappa_pre": 3, "kappa_post": 2}),
    "StackedDiD(1,1)": (dd.StackedDiD, {"kappa_pre": 1, "kappa_post": 1}),
}
MODES = {
    "design": "SurveyDesign(weights, strata, psu, fpc): weighted, TSL by PSU, df #PSU-#strata",
    "naive": "no design: unweighted, CR1 by unit (default)",
    "psu_cluster": "no design, cluster='psu': unweighted, CR1 by PSU",
    "weights_only": "SurveyDesign(weights) only: weighted, clustered by unit",
}
JUDGED = ("design",)
LOW, HIGH, MIN_JUDGED = 0.93, 0.97, 500


def survey_panel(n_units, n_periods, treatment_effect, seed, treatment_fraction,
                 treatment_period, sigma, survey_config):
    """simulate_power's data_generator: the survey panel and its weighted ATT, drawn as
    simulate_power draws it without a generator (``default_rng`` of the same child seed)."""
    return simulate_panel(n_units, n_periods, treatment_effect, treatment_fraction,
                          treatment_period, sigma, np.random.default_rng(seed), survey_config)


def make_config(s: dict, survey_design=None) -> dd.SurveyPowerConfig:
    return dd.SurveyPowerConfig(
        n_strata=s["n_strata"], psu_per_stratum=s["psu_per_stratum"],
        fpc_per_stratum=s["fpc_per_stratum"], weight_variation=s["weight_variation"],
        psu_re_sd=s["psu_re_sd"], psu_period_factor=s["psu_period_factor"],
        informative_sampling=s["informative_sampling"],
        heterogeneous_te_by_strata=s["heterogeneous_te_by_strata"],
        survey_design=survey_design)


def run_cell(job):
    """One estimator x inference mode: a simulate_power call; returns its table row."""
    label, mode, s = job
    cls, kwargs = ESTIMATORS[label]
    cfg = make_config(s)
    common = dict(n_units=s["n_units"], n_periods=s["n_periods"],
                  treatment_effect=s["treatment_effect"],
                  treatment_fraction=s["treatment_fraction"],
                  treatment_period=s["treatment_period"], sigma=s["sigma"],
                  n_simulations=s["n_sim"], seed=s["seed"], progress=False)
    generator = dict(data_generator=survey_panel, estimator_kwargs=FIT_KEYWORDS,
                     data_generator_kwargs=dict(
                         treatment_fraction=s["treatment_fraction"],
                         treatment_period=s["treatment_period"], sigma=s["sigma"],
                         survey_config=cfg))
    if mode == "design":
        est, extra = cls(**kwargs), dict(survey_config=cfg)
    elif mode == "weights_only":
        est = cls(**kwargs)
        extra = dict(survey_config=make_config(s, dd.SurveyDesign(weights="weight")))
    elif mode == "naive":
        est, extra = cls(**kwargs), generator
    elif mode == "psu_cluster":
        est, extra = cls(**kwargs, cluster="psu"), generator
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


def stats_row(label, mode, row, elapsed) -> dict:
    n, cov = int(row["n_simulations"]), float(row["coverage"])
    bias, rmse = float(row["bias"]), float(row["rmse"])
    sd_err = math.sqrt(max(rmse ** 2 - bias ** 2, 0.0))  # SD (ddof 0) of estimate - truth
    return {"estimator": label, "mode": mode, "coverage": cov,
            "MCSE": math.sqrt(cov * (1 - cov) / n) if n else math.nan,
            "bias": bias, "bias MCSE": sd_err / math.sqrt(n) if n else math.nan,
            "RMSE": rmse, "mean SE": float(row["mean_se"]), "SD est": float(row["std_estimate"]),
            "SD err": sd_err, "SE/SDerr": float(row["mean_se"]) / sd_err,
            "truth": float(row["truth"]), "n": n, "fail": int(row["n_failures"]),
            "s": elapsed}


def format_table(table: pd.DataFrame) -> str:
    fmt = {"coverage": "{:.3f}", "MCSE": "{:.4f}", "bias": "{:+.4f}", "bias MCSE": "{:.4f}",
           "RMSE": "{:.4f}", "mean SE": "{:.4f}", "SD est": "{:.4f}", "SD err": "{:.4f}",
           "SE/SDerr": "{:.3f}", "truth": "{:.4f}", "s": "{:.0f}"}
    shown = table.copy()
    for col, f in fmt.items():
        shown[col] = [("n/a" if not np.isfinite(v) else f.format(v)) for v in table[col]]
    return shown.to_string(index=False)


def check_same_draws(s: dict) -> None:
    """The generator's panel equals simulate_power's own draw for the same child seed."""
    child = np.random.SeedSequence(s["seed"]).spawn(1)[0]
    cfg = make_config(s)
    own, truth = simulate_panel(s["n_units"], s["n_periods"], s["treatment_effect"],
                                s["treatment_fraction"], s["treatment_period"], s["sigma"],
                                np.random.default_rng(child), cfg)
    made, truth2 = survey_panel(s["n_units"], s["n_periods"], s["treatment_effect"], child,
                                s["treatment_fraction"], s["treatment_period"], s["sigma"], cfg)
    pd.testing.assert_frame_equal(own, made)
    assert truth == truth2


def truth_summary(s: dict) -> str:
    """Weighted (the truth) and unweighted ATT of the treated post-period observations over
    the run's draws: their difference is the bias expected of an unweighted estimator. The
    per-unit effect is rebuilt as simulate_panel builds it (treatment_effect x
    linspace(0.5, 1.5, n_strata)[stratum]) and checked against the returned truth."""
    cfg = make_config(s)
    mult = (np.linspace(0.5, 1.5, s["n_strata"]) if s["heterogeneous_te_by_strata"]
            else np.ones(s["n_strata"]))
    weighted, unweighted = [], []
    for child in np.random.SeedSequence(s["seed"]).spawn(s["n_sim"]):
        data, truth = survey_panel(s["n_units"], s["n_periods"], s["treatment_effect"], child,
                                   s["treatment_fraction"], s["treatment_period"], s["sigma"],
                                   cfg)
        on = data["d"].to_numpy() == 1
        effect = s["treatment_effect"] * mult[data["stratum"].to_numpy()[on]]
        rebuilt = np.average(effect, weights=data["weight"].to_numpy()[on])
        assert abs(rebuilt - truth) < 1e-9, (rebuilt, truth)
        weighted.append(truth)
        unweighted.append(effect.mean())
    w, u = np.array(weighted), np.array(unweighted)
    return (f"truth (weighted ATT) over the draws: mean {w.mean():.4f}, SD {w.std(ddof=1):.4f}; "
            f"unweighted ATT: mean {u.mean():.4f}; expected bias of an unweighted estimator "
            f"{(u - w).mean():+.4f}")


def environment() -> str:
    return (f"diff_diff {dd.__version__}, numpy {np.__version__}, pandas {pd.__version__}, "
            f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sim", type=int, default=2000,
                        help="simulations per estimator x mode (default 2000)")
    parser.add_argument("--quick", action="store_true", help="100 simulations per cell")
    parser.add_argument("--seed", type=int, default=20240611, help="seed (same for every cell)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--n-units", type=int, default=600)
    parser.add_argument("--n-periods", type=int, default=6)
    parser.add_argument("--treatment-period", type=int, default=4)
    parser.add_argument("--treatment-effect", type=float, default=1.0)
    parser.add_argument("--treatment-fraction", type=float, default=0.5)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--n-strata", type=int, default=5)
    parser.add_argument("--psu-per-stratum", type=int, default=8)
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
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    args = parser.parse_args(argv)
    s = dict(n_sim=100 if args.quick else args.n_sim, seed=args.seed, n_units=args.n_units,
             n_periods=args.n_periods, treatment_period=args.treatment_period,
             treatment_effect=args.treatment_effect,
             treatment_fraction=args.treatment_fraction, sigma=args.sigma,
             n_strata=args.n_strata, psu_per_stratum=args.psu_per_stratum,
             fpc_per_stratum=args.fpc_per_stratum, weight_variation=args.weight_variation,
             psu_re_sd=args.psu_re_sd, psu_period_factor=args.psu_period_factor,
             informative_sampling=not args.no_informative_sampling,
             heterogeneous_te_by_strata=not args.homogeneous_te)
    cfg = make_config(s)
    n_psu = s["n_strata"] * s["psu_per_stratum"]
    print(environment())
    print(f"seed {s['seed']}, {s['n_sim']} simulations per cell, {args.workers} process(es)")
    print(f"panel: n_units {s['n_units']} ({s['n_units'] / n_psu:g} per PSU), n_periods "
          f"{s['n_periods']}, treatment_period {s['treatment_period']} (one cohort), "
          f"treatment_fraction {s['treatment_fraction']} of PSUs, treatment_effect "
          f"{s['treatment_effect']:g}, sigma {s['sigma']:g}")
    print("population: " + ", ".join(f"{f.name}={getattr(cfg, f.name)!r}"
                                     for f in dataclasses.fields(cfg)
                                     if f.name not in ("icc", "weight_cv", "survey_design")))
    print(f"  -> {n_psu} PSUs, PSU x period shock sd "
          f"{s['psu_period_factor'] * s['psu_re_sd']:g}, design df {n_psu - s['n_strata']}")
    check_same_draws(s)
    print("check: the naive modes' generator reproduces simulate_power's draws (same panels "
          "in every cell)")
    print(truth_summary(s))
    print("modes: " + "; ".join(f"{m} = {MODES[m]}" for m in args.modes))

    t_start = time.perf_counter()
    jobs = [(label, mode, s) for label in args.estimators for mode in args.modes]
    results, warned_all = {}, Counter()
    for label, mode, row, elapsed, warned in harness.parallel_map(run_cell, jobs, args.workers,
                                                                 chunksize=1):
        results[(label, mode)] = stats_row(label, mode, row, elapsed)
        warned_all.update(warned)
    table = pd.DataFrame([results[(label, mode)] for label, mode, _ in jobs])
    print(f"\n{len(jobs)} cells x {s['n_sim']} simulations in "
          f"{time.perf_counter() - t_start:.0f} s\n")
    print(format_table(table))
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
