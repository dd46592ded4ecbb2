"""Benchmark of the inference engine (``diff_diff.inference.design_variance``).

Measures the acceptance criteria of the large-data inference issue:

1. Taylor linearization (TSL) of a 10,000,000 x 20 influence matrix, 500 strata,
   5,000 PSUs: under 2 s (also with an FPC column). ``SurveyDesign.resolve`` is
   timed separately, for information.
2. 999-draw PSU multiplier bootstrap of a 1,000,000 x 50 influence matrix, 500
   strata, 5,000 PSUs: under 2 s and under 1 GB peak memory. For information,
   the same with no PSU column (every row its own PSU).
3. Replicate variance, 1,000,000 rows x 20 influence columns, 80 JK1 combined
   replicate weight columns (influence re-weighting mode), and the time of
   ``resolved.df`` (rank of the replicate weights), for information.

Every case runs in a fresh subprocess (this script re-invoked with
``--case NAME``), so memory numbers of one case do not leak into another.
Within a case, each measured call is repeated; the table shows the median and
the minimum wall time. "Cold" calls get a fresh copy of the resolved design,
so the cached design degrees of freedom (``ResolvedDesign.df``, and the
replicate-weight rank) are recomputed as in a first call; "warm" calls reuse a
design whose df is already cached. Criteria are judged on the cold median.

Memory columns:

* ``tracemalloc MB``: peak of Python/numpy allocations during one extra call
  run under ``tracemalloc`` (numpy reports its buffers to tracemalloc), i.e.
  the engine's own working memory, inputs excluded.
* ``RSS +MB``: rise of the process resident-set high-water mark (``VmHWM``,
  reset through ``/proc/self/clear_refs``) over the resident set just before
  the timed calls (after data generation). Falls back to ``ru_maxrss``
  differences where the reset is not possible.
* ``max RSS MB``: the process' total peak RSS (``ru_maxrss``) at the end of the
  measurement, data generation included.

The memory criterion is judged on the larger of ``tracemalloc MB`` and
``RSS +MB``.

Usage::

    python benchmarks/bench_inference.py            # full sizes (~4 min, ~2.5 GB peak RSS)
    python benchmarks/bench_inference.py --quick    # rows / 10, smoke run
    python benchmarks/bench_inference.py --cases tsl boot_psu --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import signal
import sys
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import measure  # noqa: E402

harness.import_diff_diff(checkout_fallback=True)  # run from a checkout without an installed package

CASE_NAMES = ("tsl", "tsl_fpc", "boot_psu", "boot_nopsu", "replicate")

# Full sizes (``--quick`` divides the row counts by 10).
TSL_ROWS, TSL_K = 10_000_000, 20
BOOT_ROWS, BOOT_K = 1_000_000, 50
NOPSU_ROWS, NOPSU_FALLBACK_ROWS, NOPSU_LIMIT_S = 1_000_000, 200_000, 60.0
REP_ROWS, REP_K, REP_R = 1_000_000, 20, 80
N_STRATA, N_PSU = 500, 5_000
FPC_POPULATION_PSUS = 40
N_DRAWS = 999
TIME_LIMIT_S, MEMORY_LIMIT_MB = 2.0, 1024.0


# ---------------------------------------------------------------------------
# measurement helpers (the timing and memory probes are in _harness.py)
# ---------------------------------------------------------------------------
def cold(resolved):
    """A copy of ``resolved`` without cached df / replicate rank."""
    rep = resolved.replicate
    if rep is not None:
        rep = dataclasses.replace(rep)
    return dataclasses.replace(resolved, replicate=rep)


class _TooSlow(Exception):
    pass


def _time_limited(fn, seconds):
    """Wall time of ``fn()``, or None if it ran longer than ``seconds`` (aborted)."""
    if not hasattr(signal, "setitimer"):  # not POSIX: just run it
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    def on_alarm(signum, frame):
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    t0 = time.perf_counter()
    try:
        fn()
        return time.perf_counter() - t0
    except _TooSlow:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        gc.collect()


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def survey_frame(rng, n, n_strata, n_psu, fpc=False):
    """Rows spread over PSUs at random; PSU labels globally unique.

    PSU ``p`` lies in stratum ``p % n_strata`` (n_psu / n_strata PSUs each);
    every PSU gets at least one row.
    """
    psu = rng.integers(0, n_psu, size=n)
    psu[:n_psu] = np.arange(n_psu)
    rng.shuffle(psu)
    data = {
        "w": rng.uniform(0.5, 5.0, size=n),
        "stratum": psu % n_strata,
        "psu": psu,
    }
    if fpc:
        data["fpc"] = np.full(n, float(FPC_POPULATION_PSUS))
    return pd.DataFrame(data)


def influence(rng, n, k):
    return rng.standard_normal((n, k))


# ---------------------------------------------------------------------------
# cases (each runs in its own process)
# ---------------------------------------------------------------------------
def case_tsl(args, fpc=False):
    from diff_diff import SurveyDesign
    from diff_diff.inference import design_variance

    n = TSL_ROWS // args.scale
    rng = np.random.default_rng(20240601)
    df = survey_frame(rng, n, N_STRATA, N_PSU, fpc=fpc)
    psi = influence(rng, n, TSL_K)
    design = SurveyDesign(
        weights="w", strata="stratum", psu="psu", fpc="fpc" if fpc else None
    )
    tag = "tsl+fpc" if fpc else "tsl"
    info = dict(n=n, k=TSL_K, strata=N_STRATA, psus=N_PSU)
    rows = [
        measure(f"{tag}: resolve", design.resolve, lambda: df, args.repeats,
                info=dict(info, k="-")),
    ]
    resolved = design.resolve(df)

    def call(d):
        return design_variance(psi, d)

    rows.append(measure(f"{tag}: design_variance (cold)", call, lambda: cold(resolved),
                        args.repeats, info=info, criterion=(TIME_LIMIT_S, None)))
    _ = resolved.df  # cache
    rows.append(measure(f"{tag}: design_variance (warm df)", call, lambda: resolved,
                        args.repeats, info=info))
    rows.append(measure(f"{tag}: ResolvedDesign.df", lambda d: d.df, lambda: cold(resolved),
                        args.repeats, info=dict(info, k="-")))
    return rows, []


def case_tsl_fpc(args):
    return case_tsl(args, fpc=True)


def case_boot_psu(args):
    from diff_diff import SurveyDesign
    from diff_diff.inference import design_variance

    n = BOOT_ROWS // args.scale
    rng = np.random.default_rng(20240602)
    df = survey_frame(rng, n, N_STRATA, N_PSU)
    psi = influence(rng, n, BOOT_K)
    resolved = SurveyDesign(weights="w", strata="stratum", psu="psu").resolve(df)
    info = dict(n=n, k=BOOT_K, strata=N_STRATA, psus=N_PSU)

    def call(d):
        return design_variance(psi, d, method="bootstrap", n_bootstrap=N_DRAWS, seed=1)

    rows = [
        measure("bootstrap 999, PSUs (cold)", call, lambda: cold(resolved), args.repeats,
                info=info, criterion=(TIME_LIMIT_S, MEMORY_LIMIT_MB)),
    ]
    boot = np.diag(call(resolved).vcov)
    tsl = np.diag(design_variance(psi, resolved).vcov)
    notes = [
        f"boot_psu sanity: bootstrap/TSL variance ratio over {BOOT_K} columns: "
        f"mean {np.mean(boot / tsl):.3f}, range {np.min(boot / tsl):.3f}-{np.max(boot / tsl):.3f}"
    ]
    return rows, notes


def case_boot_nopsu(args):
    from diff_diff import SurveyDesign
    from diff_diff.inference import design_variance

    notes = []
    n = args.rows or NOPSU_ROWS // args.scale

    def build(n):
        rng = np.random.default_rng(20240603)
        df = pd.DataFrame({"w": rng.uniform(0.5, 5.0, size=n)})
        psi = influence(rng, n, BOOT_K)
        return psi, SurveyDesign(weights="w").resolve(df)

    def call_with(psi, draws):
        return lambda d: design_variance(psi, d, method="bootstrap", n_bootstrap=draws, seed=1)

    psi, resolved = build(n)
    if args.rows is None and args.scale == 1:
        # Trial 999-draw call at full size, aborted after NOPSU_LIMIT_S seconds
        # (SIGALRM fires between the bootstrap's draw blocks).
        first = _time_limited(lambda: call_with(psi, N_DRAWS)(cold(resolved)), NOPSU_LIMIT_S)
        if first is None:
            notes.append(
                f"boot_nopsu: a 999-draw call at n={n:,} did not finish within "
                f"{NOPSU_LIMIT_S:.0f} s; REDUCED to n={NOPSU_FALLBACK_ROWS:,} rows"
            )
            print(f"  no-PSU trial at n={n:,} exceeded {NOPSU_LIMIT_S:.0f} s; "
                  f"reducing to n={NOPSU_FALLBACK_ROWS:,}", file=sys.stderr, flush=True)
            n = NOPSU_FALLBACK_ROWS
            del psi, resolved
            gc.collect()
            psi, resolved = build(n)
        else:
            notes.append(f"boot_nopsu: kept full size n={n:,} (untimed trial call took "
                         f"{first:.1f} s <= {NOPSU_LIMIT_S:.0f} s)")
            print(f"  no-PSU trial at n={n:,}: {first:.1f} s", file=sys.stderr, flush=True)
    info = dict(n=n, k=BOOT_K, strata=1, psus=n)
    rows = [
        measure("bootstrap 999, no PSU (cold)", call_with(psi, N_DRAWS), lambda: cold(resolved),
                args.slow_repeats, info=info),
    ]
    return rows, notes


def case_replicate(args):
    from diff_diff import SurveyDesign
    from diff_diff.inference import design_variance

    n = REP_ROWS // args.scale
    rng = np.random.default_rng(20240604)
    w = rng.uniform(0.5, 5.0, size=n)
    group = rng.integers(0, REP_R, size=n)  # JK1: drop one group per replicate
    names = [f"rw{r:02d}" for r in range(REP_R)]
    df = pd.DataFrame({"w": w})
    factor = REP_R / (REP_R - 1.0)
    df = pd.concat(
        [df, pd.DataFrame({name: np.where(group == r, 0.0, w * factor)
                           for r, name in enumerate(names)})],
        axis=1,
    )
    del group
    psi = influence(rng, n, REP_K)
    design = SurveyDesign(weights="w", replicate_weights=names, replicate_method="JK1")
    info = dict(n=n, k=REP_K, strata="-", psus="-")
    rows = [
        measure("replicate JK1x80: resolve", design.resolve, lambda: df, args.repeats,
                info=dict(info, k="-")),
    ]
    resolved = design.resolve(df)
    del df
    gc.collect()
    estimate = np.zeros(REP_K)

    def call(d):
        return design_variance(psi, d, estimate=estimate)

    rows.append(measure("replicate JK1x80: design_variance (cold)", call,
                        lambda: cold(resolved), args.repeats, info=info))
    _ = resolved.df
    rows.append(measure("replicate JK1x80: design_variance (warm rank)", call,
                        lambda: resolved, args.repeats, info=info))
    rows.append(measure("replicate JK1x80: resolved.df (QR rank)", lambda d: d.df,
                        lambda: cold(resolved), args.repeats, info=dict(info, k="-")))
    notes = [f"replicate: resolved.df = {resolved.df:g} (rank {resolved.replicate.rank} "
             f"of {REP_R} columns)"]
    return rows, notes


CASES = {
    "tsl": case_tsl,
    "tsl_fpc": case_tsl_fpc,
    "boot_psu": case_boot_psu,
    "boot_nopsu": case_boot_nopsu,
    "replicate": case_replicate,
}


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    print(f"[{args.case}] generating data ...", file=sys.stderr, flush=True)
    rows, notes = CASES[args.case](args)
    harness.emit_result({"rows": rows, "notes": notes})
    return 0


def verdict(row, quick):
    crit = row.get("criterion")
    if not crit:
        return "info"
    limit_s, limit_mb = crit
    ok = True
    if limit_s is not None:
        ok &= row["median_s"] < limit_s
    if limit_mb is not None:
        ok &= max(row["traced_mb"], row["rss_rise_mb"]) < limit_mb
    text = "PASS" if ok else "FAIL"
    parts = []
    if limit_s is not None:
        parts.append(f"<{limit_s:g}s")
    if limit_mb is not None:
        parts.append(f"<{limit_mb / 1024:g}GB")
    text += " (" + ",".join(parts) + ")"
    return text + " [quick]" if quick else text


def fmt_int(value):
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_table(rows, notes, quick):
    header = ["case", "n", "k", "strata", "PSUs", "median s", "min s",
              "tracemalloc MB", "RSS +MB", "max RSS MB", "verdict"]
    body = [[r["label"], fmt_int(r["n"]), fmt_int(r["k"]), fmt_int(r["strata"]),
             fmt_int(r["psus"])] + harness.timing_cells(r) + harness.memory_cells(r)
            + [verdict(r, quick)] for r in rows]
    harness.print_table(header, body, ["<"] + [">"] * 9 + ["<"], rstrip=False)
    if notes:
        harness.print_notes(notes)


def run_parent(args) -> int:
    cases = args.cases or list(CASE_NAMES)
    harness.print_header("inference", args.quick, "rows")
    print(harness.environment())
    print(f"repeats: {args.repeats} (slow cases {args.slow_repeats}); each case in a fresh "
          "subprocess; 'cold' = fresh design copy (df recomputed)")
    # Freed buffers of >= 1 MB go back to the OS at once, so a case's RSS rise is
    # not hidden by glibc reusing heap memory freed earlier in the process.
    child_env = harness.child_environment(1 << 20)
    print(f"children: MALLOC_MMAP_THRESHOLD_={child_env['MALLOC_MMAP_THRESHOLD_']}", flush=True)
    rows, notes, failed = [], [], []
    for name in cases:
        child_args = ["--case", name, "--repeats", str(args.repeats),
                      "--slow-repeats", str(args.slow_repeats)]
        if args.quick:
            child_args.append("--quick")
        if args.rows is not None:
            child_args += ["--rows", str(args.rows)]
        payload, code = harness.run_child(
            harness.child_command(sys.executable, __file__, child_args), child_env, name)
        if payload is None:
            failed.append(name)
            notes.append(f"case {name} crashed (exit {code})")
            continue
        rows.extend(payload["rows"])
        notes.extend(payload["notes"])
    if args.quick:
        notes.append("QUICK run: row counts are 1/10 of the issue's sizes; verdicts are "
                     "indicative only")
    notes.append("verdicts use the cold median time and max(tracemalloc MB, RSS +MB); "
                 "rows marked 'info' are reported, not judged")
    print()
    print_table(rows, notes, args.quick)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__, "row counts / 10 (smoke run)")
    parser.add_argument("--cases", nargs="+", choices=CASE_NAMES, help="subset of cases")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of fast calls")
    parser.add_argument("--slow-repeats", type=int, default=3, help="repeats of slow calls")
    parser.add_argument("--case", choices=CASE_NAMES, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=None,
                        help="rows of the no-PSU bootstrap case (skips its 60 s trial)")
    return harness.dispatch(parser.parse_args(argv), "case", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
