"""Benchmark of ``diff_diff.aggregate_survey`` against the 3.13.0 release.

Acceptance criterion: ``aggregate_survey`` on 5,000,000 respondents (50 states
x 10 years = 500 cells, 500 strata nested in states, 5,000 PSUs nested in
strata, 2 outcomes, 2 covariates) in under 3 s (median) and under 2 GB peak
memory. The earlier release diff-diff 3.13.0 (same import name ``diff_diff``)
runs the same call in the same run, for a measured old/new ratio.

The two versions never share a process. The script re-invokes itself with
``--case new`` under the current interpreter (the checkout's ``diff_diff``)
and with ``--case old`` under a second interpreter whose environment has
``diff-diff==3.13.0`` installed (``--old-python``; by default
``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python`` or a
``venv313`` next to the checkout). Create it with::

    python -m venv /work/venv313
    /work/venv313/bin/pip install diff-diff==3.13.0

Without it the old case is reported as "not run".

Each child generates the same data from a fixed seed (nothing is written to
disk; a fingerprint of the frame checks that both children saw the same data),
then times only the call::

    aggregate_survey(df, by=["state", "year"], outcomes=["smoke", "bmi"],
                     survey_design=SurveyDesign(weights="w", strata="stratum", psu="psu"),
                     covariates=["age", "income"])

Repeats: 5 for the new code, 3 for 3.13.0 (fewer if the old calls exhaust
``--old-budget`` seconds; the table then says so). Median and minimum wall time
are shown; the verdict uses the median.

Memory columns (as in ``bench_inference.py``):

* ``tracemalloc MB``: peak of Python/numpy allocations during one extra call
  under ``tracemalloc`` (the call's own working memory, the input frame
  excluded).
* ``RSS +MB``: rise of the resident-set high-water mark (``VmHWM``, reset
  through ``/proc/self/clear_refs``) during the timed calls over the resident
  set after data generation.
* ``max RSS MB``: the child's total peak RSS, data included.

The memory criterion uses the larger of ``tracemalloc MB`` and ``RSS +MB``.

Agreement: the children return their panels; the parent compares the cell
means (``smoke_mean``, ``bmi_mean``, covariate means: expected equal to
~1e-12), the standard errors (max relative difference) and the counts. Not
compared: ``cell_sum_w`` (raw weights here, normalized weights in 3.13) and the
second-stage weight column (different definitions).

Usage::

    python benchmarks/bench_aggregate.py                      # full size, ~4 min
    python benchmarks/bench_aggregate.py --quick              # rows / 10
    python benchmarks/bench_aggregate.py --old-python /work/venv313/bin/python
    python benchmarks/bench_aggregate.py --cases new          # skip 3.13.0
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also in the old venv's child)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

CASE_NAMES = ("new", "old")

# Full size (``--quick`` divides the respondents by 10; the design stays).
N_ROWS = 5_000_000
N_STATES, N_YEARS, FIRST_YEAR = 50, 10, 2011
STRATA_PER_STATE, PSUS_PER_STRATUM = 10, 10
SEED = 20240701
TIME_LIMIT_S, MEMORY_LIMIT_MB = 3.0, 2048.0

BY = ["state", "year"]
OUTCOMES = ["smoke", "bmi"]
COVARIATES = ["age", "income"]
COMPARED_MEANS = ["smoke_mean", "bmi_mean", "age_mean", "income_mean"]
COMPARED_SES = ["smoke_se", "bmi_se"]
COMPARED_COUNTS = ["smoke_n", "bmi_n", "cell_n", "srs_fallback"]


# ---------------------------------------------------------------------------
# data (shared by both versions: plain numpy/pandas, fixed seed)
# ---------------------------------------------------------------------------
def make_microdata(n: int, seed: int = SEED) -> pd.DataFrame:
    """Respondent microdata of a stratified two-stage survey repeated yearly.

    50 states; 10 strata per state (500, labels globally unique); 10 PSUs per
    stratum (5,000, globally unique labels). Each respondent falls in a PSU and
    a year at random (rows in random order), so every PSU is sampled every
    year and each state-year cell holds about ``n / 500`` respondents.
    Weights are positive and unequal (stratum factor x lognormal). ``smoke``
    is 0/1 (float), ``bmi`` continuous; both have state, year and PSU effects,
    so the design effect is visible. Covariates ``age`` and ``income``.
    """
    rng = np.random.default_rng(seed)
    n_strata = N_STATES * STRATA_PER_STATE
    n_psu = n_strata * PSUS_PER_STRATUM
    psu = rng.integers(0, n_psu, size=n)
    psu[:n_psu] = np.arange(n_psu)  # every PSU sampled
    rng.shuffle(psu)
    year_idx = rng.integers(0, N_YEARS, size=n)
    stratum = psu // PSUS_PER_STRATUM
    state_idx = stratum // STRATA_PER_STATE

    state_effect = rng.normal(0.0, 1.0, N_STATES)
    psu_effect = rng.normal(0.0, 1.0, n_psu)
    stratum_factor = rng.uniform(0.5, 2.0, n_strata)

    w = 250.0 * stratum_factor[stratum] * rng.lognormal(0.0, 0.5, size=n)
    age = np.round(rng.uniform(18.0, 85.0, size=n), 1)
    income = np.round(rng.lognormal(10.8, 0.6, size=n), 2)
    linear = (-1.4 + 0.3 * state_effect[state_idx] + 0.25 * psu_effect[psu]
              - 0.04 * year_idx - 0.012 * (age - 50.0) - 0.3 * (np.log(income) - 10.8))
    smoke = (rng.random(n) < 1.0 / (1.0 + np.exp(-linear))).astype(float)
    bmi = (27.5 + 0.8 * state_effect[state_idx] + 0.6 * psu_effect[psu] + 0.08 * year_idx
           + 0.03 * (age - 50.0) - 0.5 * (np.log(income) - 10.8)
           + rng.normal(0.0, 5.0, size=n))
    return pd.DataFrame({
        "state": 1 + state_idx,
        "year": FIRST_YEAR + year_idx,
        "stratum": 1000 + stratum,
        "psu": 100_000 + psu,
        "w": w,
        "smoke": smoke,
        "bmi": np.round(bmi, 2),
        "age": age,
        "income": income,
    })


# ---------------------------------------------------------------------------
# child: one version in one process
# ---------------------------------------------------------------------------
def _versions(diff_diff) -> dict:
    version = getattr(diff_diff, "__version__", "?")
    return dict(diff_diff=version, package=f"diff_diff {version}",
                path=harness.module_dir(diff_diff), **harness.interpreter_versions())


def _panel_payload(panel: pd.DataFrame) -> dict:
    cols = BY + COMPARED_MEANS + COMPARED_SES + COMPARED_COUNTS
    out = {}
    for col in cols:
        if col not in panel.columns:
            continue
        values = panel[col].to_numpy()
        if values.dtype == bool:
            out[col] = [bool(v) for v in values]
        elif np.issubdtype(values.dtype, np.integer):
            out[col] = [int(v) for v in values]
        else:
            out[col] = [float(v) for v in values]  # repr round-trips exactly
    return out


def run_child(args) -> int:
    role = args.case
    diff_diff = harness.import_diff_diff(checkout_fallback=role == "new")
    versions = _versions(diff_diff)
    if role == "old" and not versions["diff_diff"].startswith(OLD_VERSION):
        print(f"[old] expected diff_diff {OLD_VERSION}, found {versions['diff_diff']} at "
              f"{versions['path']}", file=sys.stderr)
        return 3
    from diff_diff import SurveyDesign, aggregate_survey

    n = N_ROWS // args.scale
    print(f"[{role}] diff_diff {versions['diff_diff']}: generating {n:,} respondents ...",
          file=sys.stderr, flush=True)
    df, gen_s = harness.timed(make_microdata, n)
    fp = harness.fingerprint(df)
    design = SurveyDesign(weights="w", strata="stratum", psu="psu")

    def call():
        return aggregate_survey(df, by=BY, outcomes=OUTCOMES, survey_design=design,
                                covariates=COVARIATES)

    repeats = args.repeats if role == "new" else args.old_repeats
    timing = harness.time_calls(
        call, repeats, budget=float("inf") if role == "new" else args.old_budget,
        keep=lambda out: out[0], tag=f"[{role}]", warning_chars=160)
    traced_mb = harness.traced_peak_mb(call)
    panel = timing.kept
    row = dict(case=role, n=n, cells=int(len(panel)), versions=versions, fingerprint=fp,
               gen_s=gen_s, repeats_asked=repeats, **timing.fields(traced_mb),
               warnings=timing.warnings, panel=_panel_payload(panel))
    harness.print_summary(f"[{role}]", row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def old_setup_hint(where: str) -> str:
    return (
        f"old release not run: no interpreter found ({where}). Create one with\n"
        f"    {OLD_RELEASE.setup}\n"
        f"and pass --old-python /work/venv313/bin/python (or set {OLD_RELEASE.env_name}, or put "
        f"the venv at benchmarks/.venv313 or ../venv313 next to the checkout)"
    )


def run_case(name: str, python: str, args, env: dict) -> tuple[dict | None, str | None]:
    child_args = ["--case", name, "--repeats", str(args.repeats),
                  "--old-repeats", str(args.old_repeats), "--old-budget", str(args.old_budget)]
    if args.quick:
        child_args.append("--quick")
    # old: -E -s, so PYTHONPATH / the user site cannot make it import the checkout.
    cmd = harness.child_command(python, __file__, child_args, isolated=name == "old")
    row, code = harness.run_child(cmd, env, name)
    if row is None:
        return None, f"case {name} failed (exit {code}); see its stderr above"
    return row, None


def verdict(row: dict, quick: bool) -> str:
    ok = row["median_s"] < TIME_LIMIT_S and \
        max(row["traced_mb"], row["rss_rise_mb"]) < MEMORY_LIMIT_MB
    text = ("PASS" if ok else "FAIL") + f" (<{TIME_LIMIT_S:g}s,<{MEMORY_LIMIT_MB / 1024:g}GB)"
    return text + " [quick]" if quick else text


def print_table(rows: list[dict], missing: dict, quick: bool) -> None:
    header = ["version", "n", "cells", "repeats", "median s", "min s", "tracemalloc MB",
              "RSS +MB", "max RSS MB", "verdict"]
    body = [[f"{r['case']}: diff_diff {r['versions']['diff_diff']}", f"{r['n']:,}",
             f"{r['cells']:,}", harness.repeats_cell(r)] + harness.timing_cells(r)
            + harness.memory_cells(r) + [verdict(r, quick)] for r in rows]
    for name, reason in missing.items():
        body.append([f"{name}: {'diff_diff ' + OLD_VERSION if name == 'old' else 'checkout'}",
                     "-", "-", "-", "-", "-", "-", "-", "-", reason])
    harness.print_table(header, body, ["<"] + [">"] * 8 + ["<"])


def compare(new: dict, old: dict) -> list[str]:
    """Agreement lines between the two panels (aligned on the cell keys)."""
    a = pd.DataFrame(new["panel"]).set_index(BY).sort_index()
    b = pd.DataFrame(old["panel"]).set_index(BY).sort_index()
    lines = [f"cells: new {len(a)}, old {len(b)}, common {len(a.index.intersection(b.index))}"]
    a, b = a.align(b, join="inner", axis=0)
    for col in COMPARED_MEANS:
        if col in a and col in b:
            x, y = a[col].to_numpy(), b[col].to_numpy()
            d = np.abs(x - y)
            lines.append(f"max |diff| {col:<12} {np.nanmax(d):.3e}   (max rel diff "
                         f"{np.nanmax(d / np.abs(y)):.3e})")
    for col in COMPARED_SES:
        if col in a and col in b:
            x, y = a[col].to_numpy(), b[col].to_numpy()
            rel = np.abs(x - y) / np.abs(y)
            lines.append(f"max rel diff {col:<10} {np.nanmax(rel):.3e}   (max |diff| "
                         f"{np.nanmax(np.abs(x - y)):.3e}; SE range {np.nanmin(y):.4g}-"
                         f"{np.nanmax(y):.4g})")
    same = [c for c in COMPARED_COUNTS if c in a and c in b
            and np.array_equal(a[c].to_numpy(), b[c].to_numpy())]
    differ = [c for c in COMPARED_COUNTS if c in a and c in b and c not in same]
    lines.append(f"identical: {', '.join(same) or '-'}" + (f"; DIFFER: {', '.join(differ)}"
                                                             if differ else ""))
    return lines


def run_parent(args) -> int:
    cases = args.cases or list(CASE_NAMES)
    n = N_ROWS // (10 if args.quick else 1)
    harness.print_header(
        "aggregate_survey", args.quick, "respondents",
        data=f"{n:,} respondents, {N_STATES} states x {N_YEARS} years, "
             f"{N_STATES * STRATA_PER_STATE} strata, "
             f"{N_STATES * STRATA_PER_STATE * PSUS_PER_STRATUM:,} PSUs, outcomes {OUTCOMES}, "
             f"covariates {COVARIATES}, seed {SEED}",
        criteria=f"criterion: median < {TIME_LIMIT_S:g} s and peak < "
                 f"{MEMORY_LIMIT_MB / 1024:g} GB")
    env = harness.child_environment(1 << 20)
    print(f"each version in a fresh subprocess; MALLOC_MMAP_THRESHOLD_="
          f"{env['MALLOC_MMAP_THRESHOLD_']}; repeats: new {args.repeats}, old "
          f"{args.old_repeats} (budget {args.old_budget:g} s)", flush=True)

    rows, missing, notes, failed = {}, {}, [], []
    for name in cases:
        if name == "new":
            python = sys.executable
        else:
            python, _ = OLD_RELEASE.find(args.old_python)
            if python is None:
                env_name = OLD_RELEASE.env_name
                hint = old_setup_hint(args.old_python or (
                    f"${env_name}" if os.environ.get(env_name) else "default locations"))
                print(hint, file=sys.stderr)
                notes.append(hint)
                missing["old"] = "not run"
                continue
        row, error = run_case(name, python, args, env)
        if row is None:
            failed.append(name)
            missing[name] = "not run (crashed)"
            notes.append(error)
        else:
            rows[name] = row

    print()
    print_table([rows[c] for c in CASE_NAMES if c in rows], missing, args.quick)
    if "new" in rows and "old" in rows:
        new, old = rows["new"], rows["old"]
        print()
        print(f"ratio old/new (this run): median {old['median_s'] / new['median_s']:.1f}x, "
              f"min {old['min_s'] / new['min_s']:.1f}x")
        same_data = new["fingerprint"] == old["fingerprint"]
        print(f"same data in both children: {'yes' if same_data else 'NO'} "
              f"(fingerprint new {new['fingerprint']}, old {old['fingerprint']})")
        print("agreement new vs old:")
        for text in compare(new, old):
            print("  " + text)
        if not same_data:
            notes.append("the two children generated DIFFERENT data (numpy versions differ?); "
                         "the agreement numbers are not meaningful")
    for name in CASE_NAMES:
        if name in rows:
            r = rows[name]
            notes.append(harness.environment_line(name, r["versions"]))
            notes.append(f"{name}: data generation {r['gen_s']:.1f} s (not timed); call times "
                         + harness.times_text(r["times"]))
            if len(r["times"]) < r["repeats_asked"]:
                notes.append(f"{name}: REDUCED to {len(r['times'])} of {r['repeats_asked']} "
                             f"repeats (--old-budget {args.old_budget:g} s)")
            for msg in r["warnings"]:
                notes.append(f"{name} warned: {msg}")
    return harness.finish(
        notes, failed, quick_scaled="respondents" if args.quick else None,
        closing=["verdict: median time and max(tracemalloc MB, RSS +MB); tracemalloc MB is the "
                 "call's own working memory (input frame excluded)"])


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__, "respondents / 10 (smoke run)")
    parser.add_argument("--cases", nargs="+", choices=CASE_NAMES,
                        help="run only these versions (default: both)")
    OLD_RELEASE.add_option(parser, prefix="python of an environment with")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of the new code")
    parser.add_argument("--old-repeats", type=int, default=3, help="timed calls of 3.13.0")
    parser.add_argument("--old-budget", type=float, default=240.0,
                        help="stop the old repeats early once another call would pass this "
                             "many seconds in total")
    parser.add_argument("--case", choices=CASE_NAMES, help=argparse.SUPPRESS)
    return harness.dispatch(parser.parse_args(argv), "case", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
