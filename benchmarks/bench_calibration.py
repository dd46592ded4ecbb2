"""Benchmark of weight calibration (``diff_diff.calibrate``) per state-year cell.

Criterion: 350 state-year cells (35 states x 10 years) over 265,000 respondents,
raking on three categorical margins (sex 2, age 4, education 4 levels) per
cell, in under 0.5 s median. Also reported for information: linear and logit
calibration of the same targets, and raking with 80 replicate columns
recalibrated.

Usage::

    python benchmarks/bench_calibration.py            # full size
    python benchmarks/bench_calibration.py --quick    # rows / 10
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script
    sys.path.insert(0, HERE)
from _harness import environment, import_diff_diff, make_parser, measure  # noqa: E402

import_diff_diff(checkout_fallback=True)  # run from a checkout without an installed package
from diff_diff import SurveyDesign, calibrate  # noqa: E402

MARGINS = {
    "sex": ["F", "M"],
    "age": ["18-34", "35-49", "50-64", "65+"],
    "educ": ["lt_hs", "hs", "some_college", "ba"],
}


def sample(n: int, n_states: int = 35, n_years: int = 10, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "state": rng.integers(0, n_states, n),
            "year": 2010 + rng.integers(0, n_years, n),
            "w": rng.uniform(50, 500, n),
        }
    )
    for name, levels in MARGINS.items():
        df[name] = rng.choice(levels, n)
    return df


def totals(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Per state-year population counts: weighted sample counts moved +-20%, consistent N."""
    rng = np.random.default_rng(seed)
    parts = []
    for margin in MARGINS:
        t = df.groupby(["state", "year", margin])["w"].sum().rename("total").reset_index()
        parts.append(t.rename(columns={margin: "level"}).assign(margin=margin))
    t = pd.concat(parts, ignore_index=True)
    t["total"] *= rng.uniform(0.8, 1.2, len(t))
    cell_n = df.groupby(["state", "year"])["w"].sum().rename("cell_n") * 1.1
    t = t.join(cell_n, on=["state", "year"])
    t["total"] *= t["cell_n"] / t.groupby(["state", "year", "margin"])["total"].transform("sum")
    return t.drop(columns="cell_n")


def main(argv=None) -> int:
    parser = make_parser(__doc__, None)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    n = 26_500 if args.quick else 265_000
    df = sample(n)
    tot = totals(df)
    design = SurveyDesign(weights="w")
    print(environment())
    print(f"{n:,} respondents, {df.groupby(['state', 'year']).ngroups} state-year cells, "
          f"margins {', '.join(f'{k} ({len(v)})' for k, v in MARGINS.items())}\n")
    rows = []
    for method, bounds in (("raking", None), ("linear", None), ("logit", (0.3, 3.0))):
        rows.append(
            measure(
                f"{method} by state-year",
                lambda _: calibrate(df, design, tot, method=method, by=["state", "year"],
                                    bounds=bounds),
                lambda: None,
                args.repeats,
                criterion=(0.5, None) if method == "raking" else None,
            )
        )
    rng = np.random.default_rng(2)
    reps = pd.DataFrame(
        df["w"].to_numpy()[:, None] * rng.uniform(0.5, 1.5, (n, 80)),
        columns=[f"r{j}" for j in range(80)],
    )
    rep_df = pd.concat([df, reps], axis=1)
    rep_design = SurveyDesign(weights="w", replicate_weights=list(reps.columns),
                              replicate_method="bootstrap")
    rows.append(
        measure(
            "raking by state-year, 80 replicates recalibrated",
            lambda _: calibrate(rep_df, rep_design, tot, by=["state", "year"]),
            lambda: None,
            max(1, args.repeats // 3),
        )
    )
    print(f"\n{'case':<50} {'median s':>9} {'min s':>7} {'tracemalloc MB':>15} {'verdict':>10}")
    for row in rows:
        verdict = "info"
        if row["criterion"] is not None:
            verdict = "PASS" if row["median_s"] < row["criterion"][0] else "FAIL"
            verdict += f" (<{row['criterion'][0]}s)"
        print(f"{row['label']:<50} {row['median_s']:>9.3f} {row['min_s']:>7.3f} "
              f"{row['traced_mb']:>15.0f} {verdict:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
