"""Command line: ``python -m diff_diff demo`` and ``python -m diff_diff cs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(seed=args.seed, respondents=args.respondents, out_dir=args.out,
             drift_start=args.drift_start)
    return 0


def _read(path: str) -> pd.DataFrame:
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(path)
    raise SystemExit(f"cannot read {path!r}: use a .csv or .parquet file")


def _cs(args) -> int:
    from .estimators import CallawaySantAnna
    from .survey import SurveyDesign

    data = _read(args.data)
    design = None
    if any([args.weights, args.strata, args.psu]):
        design = SurveyDesign(weights=args.weights, strata=args.strata, psu=args.psu,
                              nest=args.nest)
    est = CallawaySantAnna(estimation_method=args.method, control_group=args.control_group,
                           n_bootstrap=args.bootstrap, seed=args.seed)
    res = est.fit(data, outcome=args.outcome, unit=args.unit, time=args.time,
                  first_treat=args.first_treat, covariates=args.covariates,
                  survey_design=design)
    print(res.summary())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for level in ("group_time", "event_study", "group"):
        res.to_dataframe(level).to_csv(out / f"cs_{level}.csv", index=False)
    try:
        import matplotlib

        matplotlib.use("Agg")
        ax = res.plot_event_study()
        ax.figure.savefig(out / "cs_event_study.png", dpi=130)
        print(f"\nTables and event-study figure written to {out}/")
    except ImportError:
        print(f"\nTables written to {out}/ (install matplotlib for the figure)")
    return 0


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
    cs.add_argument("data")
    cs.add_argument("--outcome", required=True)
    cs.add_argument("--unit", required=True)
    cs.add_argument("--time", required=True)
    cs.add_argument("--first-treat", required=True, dest="first_treat")
    cs.add_argument("--covariates", nargs="*", default=None)
    cs.add_argument("--weights")
    cs.add_argument("--strata")
    cs.add_argument("--psu")
    cs.add_argument("--nest", action="store_true")
    cs.add_argument("--method", default="dr", choices=("dr", "ipw", "reg"))
    cs.add_argument("--control-group", default="never_treated", dest="control_group",
                    choices=("never_treated", "not_yet_treated"))
    cs.add_argument("--bootstrap", type=int, default=0)
    cs.add_argument("--seed", type=int, default=None)
    cs.add_argument("--out", default="cs_output")
    cs.set_defaults(func=_cs)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
