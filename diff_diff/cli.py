"""Command line: ``python -m diff_diff demo``, ``... cs`` and ``... bjs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def _demo(args) -> int:
    from .demo import run_demo
    from .survey import CalibrationError

    try:
        run_demo(seed=args.seed, respondents=args.respondents, out_dir=args.out,
                 drift_start=args.drift_start)
    except CalibrationError as err:
        print(f"error: {err}\nThe simulated sample is too small for raking every state-year "
              "to its population margins; run the demo with more respondents (e.g. "
              "--respondents 150000, or the default 300000).", file=sys.stderr)
        return 2
    return 0


def _read(path: str) -> pd.DataFrame:
    if "://" not in path and not Path(path).is_file():  # URLs are read by pandas
        raise ValueError(f"file {path!r} not found")
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(path)
    raise SystemExit(f"cannot read {path!r}: use a .csv or .parquet file")


def _design(args):
    from .survey import SurveyDesign

    if not any([args.weights, args.strata, args.psu]):
        return None
    return SurveyDesign(weights=args.weights, strata=args.strata, psu=args.psu, nest=args.nest)


def _fit_and_write(est, args, prefix: str, levels) -> int:
    data = _read(args.data)
    res = est.fit(data, outcome=args.outcome, unit=args.unit, time=args.time,
                  first_treat=args.first_treat, covariates=args.covariates,
                  survey_design=_design(args))
    print(res.summary())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for level in levels:
        res.to_dataframe(level).to_csv(out / f"{prefix}_{level}.csv", index=False)
    try:
        import matplotlib

        matplotlib.use("Agg")
        ax = res.plot_event_study()
        ax.figure.savefig(out / f"{prefix}_event_study.png", dpi=130)
        print(f"\nTables and event-study figure written to {out}/")
    except ImportError:
        print(f"\nTables written to {out}/ (install matplotlib for the figure)")
    return 0


def _cs(args) -> int:
    from .estimators import CallawaySantAnna

    est = CallawaySantAnna(estimation_method=args.method, control_group=args.control_group,
                           n_bootstrap=args.bootstrap, seed=args.seed)
    return _fit_and_write(est, args, "cs", ("group_time", "event_study", "group"))


def _bjs(args) -> int:
    from .estimators import ImputationDiD

    est = ImputationDiD(anticipation=args.anticipation, aux_partition=args.aux_partition,
                        horizon_max=args.horizon_max, n_bootstrap=args.bootstrap,
                        seed=args.seed)
    return _fit_and_write(est, args, "bjs", ("overall", "event_study", "group", "observation"))


def _panel_arguments(command, default_out: str) -> None:
    """Data, column and design arguments shared by the estimator commands."""
    command.add_argument("data")
    command.add_argument("--outcome", required=True)
    command.add_argument("--unit", required=True)
    command.add_argument("--time", required=True)
    command.add_argument("--first-treat", required=True, dest="first_treat")
    command.add_argument("--covariates", nargs="*", default=None)
    command.add_argument("--weights")
    command.add_argument("--strata")
    command.add_argument("--psu")
    command.add_argument("--nest", action="store_true")
    command.add_argument("--bootstrap", type=int, default=0)
    command.add_argument("--seed", type=int, default=None)
    command.add_argument("--out", default=default_out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diff_diff",
                                description="Difference-in-differences with survey data.")
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="composition-drift demo on simulated BRFSS-style data")
    demo.add_argument("--seed", type=int, default=2024)
    demo.add_argument("--respondents", type=int, default=300_000,
                      help="approximate number of respondents (default 300000)")
    demo.add_argument("--out", default="demo_output", help="folder for the figure")
    demo.add_argument("--drift-start", type=int, default=0,
                      help="years relative to adoption when nonresponse drift starts")
    demo.set_defaults(func=_demo)

    cs = sub.add_parser("cs", help="Callaway-Sant'Anna on your own panel (CSV or Parquet)")
    _panel_arguments(cs, "cs_output")
    cs.add_argument("--method", default="dr", choices=("dr", "ipw", "reg"))
    cs.add_argument("--control-group", default="never_treated", dest="control_group",
                    choices=("never_treated", "not_yet_treated"))
    cs.set_defaults(func=_cs)

    bjs = sub.add_parser("bjs", help="Borusyak-Jaravel-Spiess imputation on your own panel")
    _panel_arguments(bjs, "bjs_output")
    bjs.add_argument("--anticipation", type=int, default=0)
    bjs.add_argument("--aux-partition", default="cohort_horizon", dest="aux_partition",
                     choices=("cohort_horizon", "cohort", "horizon", "estimand"))
    bjs.add_argument("--horizon-max", type=int, default=None, dest="horizon_max")
    bjs.set_defaults(func=_bjs)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
