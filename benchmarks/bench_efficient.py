"""Benchmark of ``diff_diff.EfficientDiD`` against diff-diff 3.13.0.

Acceptance criteria (EfficientDiD issue): on a balanced panel of 50,000 units x
20 periods (1,000,000 rows), staggered adoption with 4 treated cohorts plus
never-treated units, every case at least 3x faster than diff-diff 3.13.0
(median / median) and using the same or less memory.

Cases (one timed call each: ATT(g,t) + overall ATT + event-study aggregation):

=====  ============================================  ====================================
case   call                                          criterion
=====  ============================================  ====================================
all    ``pt_assumption="all"``, analytic SEs         3.13.0 / new >= 3x, memory <= 3.13.0
post   ``pt_assumption="post"``, analytic SEs        3.13.0 / new >= 3x, memory <= 3.13.0
boot   ``pt_assumption="all"``, 999-draw bootstrap   3.13.0 / new >= 3x, memory <= 3.13.0
cov    ``pt_assumption="all"``, covariates (below)   information (not an issue criterion)
=====  ============================================  ====================================

``cov``: ``fit(..., covariates=["r1", "r2", "r3"])``, indicators of a region
drawn uniformly from 4 per unit (fixed seed; no effect on y), on 10,000 units
(200,000 rows; ``--quick``: 1,000): 3.13.0's covariate path smooths
``Omega*(X)`` with an n x n kernel, so the full size is out of its reach. Its
estimates and SEs differ from ours by design (docs/estimators.md, EfficientDiD
with covariates: its influence values centre every unit at the ATT, its
``Omega*(X)`` is a kernel smoother without the never-treated cross term).

Implementations, each case in its own fresh subprocess:

* ``new``: the checkout (current interpreter)::

      res = EfficientDiD(pt_assumption=pt, n_bootstrap=B, seed=1).fit(
          df, "y", "unit", "time", "first_treat")
      res.overall_att, res.overall_se, res.event_study_effects   # lazy: touched in the call

  The group-time SEs (``res.group_time_effects``, also lazy) are not part of
  the judged call; their extra cost is timed separately (column ``+gt s``).
  3.13.0 computes them inside ``fit``.
* ``old``: diff-diff 3.13.0 through its current API: the same ``fit`` (ATT(g,t),
  their SEs and the overall ATT are computed eagerly; ``event_study_effects``
  stays empty without the deprecated ``fit(aggregate=)``), then
  ``res.aggregate("event_study")`` (recomputed from the retained influence
  functions; with the bootstrap it replays the fit's multiplier bootstrap).
  3.13.0's defaults otherwise (``omega_ridge=1e-6``; the checkout's is 0).

The old release runs under its own interpreter (``-E -s``, so ``PYTHONPATH``
cannot make it import the checkout): ``--old-python`` (default
``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python``, or ``venv313``
next to the checkout)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0

Without it the old rows are reported as "not run" and nothing is judged.

Data (generated in every child from a fixed seed; a fingerprint shows that all
children saw the same frame; generation is not timed): unit ids 1..50,000,
periods 1..20 (column ``time``), one row per unit and period sorted by unit
then period; cohorts first treated in 5, 9, 13 or 17 (15% each) or never
(``first_treat = 0``, 40%), drawn independently per unit;
``y = a_i + b_t + effect + N(0, 1)`` with a unit effect ``a_i ~ N(0, 1)``,
period effects ``b_t = 0.1 t + N(0, 0.2^2)`` and a true effect ``1 + 0.05 e``
at event time ``e >= 0``. Parallel trends hold in every period, so both
assumptions are valid here.

Measuring (as ``bench_cs.py``): glibc's default allocator, as users run it
(``--mmap-threshold N`` sets ``MALLOC_MMAP_THRESHOLD_=N``); one untimed
warm-up call on the first 1,000 units in every child, so that modules loaded
lazily (the checkout imports scipy in its first fit, 3.13.0 when
``diff_diff`` is imported) do not count in the RSS rise of one side only;
repeats (5 for ``new``, 3 for 3.13.0, which stop early once another call
would take the case past ``--slow-budget`` seconds, 120 here, shown as e.g.
``2 of 3``: 3.13.0's PT-All call takes ~19 s here, with the bootstrap 20-33 s);
the median and minimum wall time, the verdict on the medians.
``tracemalloc MB`` is the peak of one extra call under ``tracemalloc`` (the
call's own working memory, the input frame excluded; skipped when the median
is above ``--traced-limit`` seconds, 60 here so that 3.13.0's rows get one
too), ``RSS +MB`` the rise of the resident-set high-water mark during the
timed calls, ``max RSS MB`` the child's total peak. Memory is compared on the
larger of ``tracemalloc MB`` and ``RSS +MB``.

Agreement: every child returns the overall ATT and SE and the event-study
estimates and SEs; the parent prints the differences from ``new``, the
post-treatment event times (``e >= 0``) apart from the pre-treatment ones.

* PT-Post (``post``): estimates should agree to ~1e-12; analytic SEs differ
  by diff_diff's small-sample factor sqrt(n/(n-1)) (1.00001 here; 3.13.0 uses
  none). 3.13.0 leaves out the pre-treatment cells at the first period
  (``t = 1``, event times ``1 - g``: -4, -8, -12, -16), so those event-study
  placebos average fewer cells (or are missing) there: printed apart, by design.
* PT-All (``all``, ``boot``): the estimates differ by design: 3.13.0's
  ``Omega`` omits the covariance of the two never-treated pieces of a moment
  (``tests/parity/ports/edid_reference.py``), keeps duplicate moments and
  adds a ridge, so its GLS weights differ. The differences are printed (also
  in units of ``new``'s SE), not judged.
* Bootstrap SEs also differ by Monte Carlo noise (different draws).

The 1-minute load average after each child's timed calls is printed: on a
shared machine other processes inflate and scatter the times (``--threads 1``
sets ``OMP/OPENBLAS/MKL/RAYON_NUM_THREADS`` in every child). The checkout
suffers most: its analytic variance is a Gram product of the 50,000 x 80
influence matrix, which took 1.5 s with two OpenBLAS threads while another
process held one of the two cores, 0.016 s with one thread.

Usage::

    python benchmarks/bench_efficient.py                  # everything, ~6 min
    python benchmarks/bench_efficient.py --quick          # units / 10, ~1 min
    python benchmarks/bench_efficient.py --cases post --repeats 9
    python benchmarks/bench_efficient.py --impls new      # skip 3.13.0 (nothing judged)
    python benchmarks/bench_efficient.py --mmap-threshold 1048576 --threads 1
"""

from __future__ import annotations

import functools
import gc
import math
import os
import statistics
import sys
import warnings

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also for 3.13.0's children)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

INTERPRETERS = {"old": OLD_RELEASE}

# Full size (``--quick`` divides the units by 10).
N_UNITS, N_PERIODS = 50_000, 20
COHORTS = (5, 9, 13, 17)
COHORT_PROBS = (0.40, 0.15, 0.15, 0.15, 0.15)  # never, then COHORTS
SEED = 20250611
N_BOOT = 999
SPEED_TARGET = 3.0  # 3.13.0 median / new median, at least
WARMUP_UNITS = 1_000  # untimed warm-up call on the first units
TRACED_LIMIT = 60.0  # s; 3.13.0's PT-All call (~18 s) still gets its tracemalloc call

# case -> pt_assumption, bootstrap draws, label
CASES = {
    "all": dict(pt="all", n_boot=0, label="PT-All, analytic SEs"),
    "post": dict(pt="post", n_boot=0, label="PT-Post, analytic SEs"),
    "boot": dict(pt="all", n_boot=N_BOOT, label=f"PT-All, bootstrap {N_BOOT}"),
    "cov": dict(pt="all", n_boot=0, units=10_000, covariates=["r1", "r2", "r3"],
                label="PT-All, 3 region indicators, 10,000 units"),
}
# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION} fit+aggregate()"),
}


# ---------------------------------------------------------------------------
# data (shared by both implementations: plain numpy/pandas, fixed seed)
# ---------------------------------------------------------------------------
def make_panel(n_units: int, n_periods: int = N_PERIODS, seed: int = SEED) -> pd.DataFrame:
    """Balanced long panel with staggered adoption; see the module docstring."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array((0,) + COHORTS), size=n_units, p=COHORT_PROBS)
    t = np.arange(1, n_periods + 1)
    unit_effect = rng.normal(0.0, 1.0, n_units)
    period_effect = 0.1 * t + rng.normal(0.0, 0.2, n_periods)
    e = t[None, :] - g[:, None]
    effect = np.where((g[:, None] > 0) & (e >= 0), 1.0 + 0.05 * e, 0.0)
    y = (unit_effect[:, None] + period_effect[None, :] + effect
         + rng.normal(0.0, 1.0, (n_units, n_periods)))
    return pd.DataFrame({
        "unit": np.repeat(np.arange(1, n_units + 1), n_periods),
        "time": np.tile(t, n_units),
        "y": y.ravel(),
        "first_treat": np.repeat(g, n_periods),
    })


def add_regions(df: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Indicators r1-r3 of a region (0-3) drawn per unit, constant over periods."""
    n_units = df["unit"].nunique()
    region = np.random.default_rng([seed, 1]).integers(0, 4, n_units)
    for k in (1, 2, 3):
        df[f"r{k}"] = np.repeat((region == k) * 1.0, N_PERIODS)
    return df


def true_overall_att(df: pd.DataFrame) -> float:
    """The overall ATT (post-treatment cells weighted by cohort size) of the true effects."""
    g = df.drop_duplicates("unit")["first_treat"].to_numpy()
    t = np.arange(1, N_PERIODS + 1)
    num = den = 0.0
    for cohort in COHORTS:
        size = float((g == cohort).sum())
        e = t[t >= cohort] - cohort
        num += size * (1.0 + 0.05 * e).sum()
        den += size * e.size
    return num / den


# ---------------------------------------------------------------------------
# the timed calls; each returns a small summary (overall + event study)
# ---------------------------------------------------------------------------
def _floats(values) -> list:
    return [float(v) if v is not None and math.isfinite(float(v)) else None
            for v in np.ravel(np.asarray(values, dtype=float))]


def _summary(att, se, event_time, es_att, es_se) -> dict:
    return dict(att=float(att), se=float(np.ravel(np.asarray(se, dtype=float))[0]),
                event_time=[int(round(float(e))) for e in event_time],
                es_att=_floats(es_att), es_se=_floats(es_se))


def make_calls(impl: str, spec: dict):
    """(``run(frame)``: the timed call on a frame, extra call on its result or None,
    versions)."""
    pt, n_boot = spec["pt"], spec["n_boot"]
    cols = ("y", "unit", "time", "first_treat")
    kw = {"covariates": spec["covariates"]} if spec.get("covariates") else {}
    versions = harness.interpreter_versions()
    if impl not in IMPLS:
        raise ValueError(impl)
    versions.update((harness.checkout_package() if impl == "new" else harness.old_package())[1])
    from diff_diff import EfficientDiD  # the checkout's or 3.13.0's

    if impl == "new":
        def run(frame):
            res = EfficientDiD(pt_assumption=pt, n_bootstrap=n_boot, seed=1).fit(frame, *cols,
                                                                                 **kw)
            att, se = res.overall_att, res.overall_se  # overall aggregation (lazy)
            es = res.event_study_effects  # event-study aggregation (lazy)
            return res, _summary(att, se, es["event_time"], es["estimate"], es["se"])

        def extra(res):
            return res.group_time_effects  # group-time SEs (lazy; not in the judged call)

        return run, extra, versions

    def run(frame):
        res = EfficientDiD(pt_assumption=pt, n_bootstrap=n_boot, seed=1).fit(frame, *cols, **kw)
        att, se = res.overall_att, res.overall_se  # computed in fit
        es = res.aggregate("event_study")  # replays the bootstrap when B > 0
        return res, _summary(att, se, es.event_time, es.att, es.se)

    return run, None, versions


# ---------------------------------------------------------------------------
# child: one implementation, one case, one process
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl, case = args.child, args.case
    spec = CASES[case]
    n_units = spec.get("units", N_UNITS) // args.scale
    tag = f"[{case}/{impl}]"
    df, gen_s = harness.timed(make_panel, n_units)
    if spec.get("covariates"):
        df = add_regions(df)
    fp = harness.fingerprint(df)
    truth = true_overall_att(df)
    run, extra, versions = make_calls(impl, spec)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)
    # Untimed warm-up on the first units: lazily imported modules (the checkout loads
    # scipy in its first fit, 3.13.0 at import) are loaded before the RSS window.
    warm_units = min(WARMUP_UNITS, n_units)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm_s = harness.timed(run, df.iloc[:warm_units * N_PERIODS])[1]
    print(f"{tag} warm-up on {warm_units:,} units: {warm_s:.2f} s", file=sys.stderr, flush=True)
    call = functools.partial(run, df)

    repeats = args.repeats if impl == "new" else args.slow_repeats
    timing = harness.time_calls(
        call, repeats, budget=float("inf") if impl == "new" else args.slow_budget,
        keep=lambda out: out[1], tag=tag, warning_chars=160)

    # Extra work outside the judged call (new: the lazy group-time SEs).
    extra_times = []
    if extra is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(repeats):
                res, _ = call()
                extra_times.append(harness.timed(extra, res)[1])
                del res
                gc.collect()

    median = statistics.median(timing.times)
    traced_mb = harness.traced_peak_mb(call) if median <= args.traced_limit else None
    row = dict(
        impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
        fingerprint=fp, truth=truth, gen_s=gen_s, warm_s=warm_s, repeats_asked=repeats,
        **timing.fields(traced_mb),
        extra_median_s=statistics.median(extra_times) if extra_times else None,
        warnings=timing.warnings, summary=timing.kept, load=timing.load,
    )
    harness.print_summary(tag, row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def run_children(cases, impls, pythons, args, env) -> tuple:
    """Every case x implementation in its own child: rows by (case, impl), missing, failed,
    errors."""
    jobs, _ = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons, args)
    return harness.run_jobs(jobs, __file__, env, args.child_timeout)


def memory_mb(row: dict) -> float:
    return max(row["traced_mb"] or 0.0, row["rss_rise_mb"])


def verdict(row: dict, rows: dict, quick: bool) -> str:
    """new: PASS/FAIL against the 3.13.0 row of its case; 3.13.0: the reference."""
    if row["impl"] != "new":
        return "reference"
    old = rows.get((row["case"], "old"))
    if old is None:
        return "not judged (no 3.13.0 row)"
    speedup = old["median_s"] / row["median_s"]
    mem = memory_mb(row) / memory_mb(old) if memory_mb(old) > 0 else float("inf")
    fast, small = speedup >= SPEED_TARGET, memory_mb(row) <= memory_mb(old)
    text = "PASS" if fast and small else "FAIL"
    if not fast and not small:
        text += " (time, memory)"
    elif not fast:
        text += " (time)"
    elif not small:
        text += " (memory)"
    text += f" {speedup:.1f}x, mem {mem:.2f}x"
    return text + (" [quick]" if quick else "")


def print_table(rows: dict, missing: list[tuple[str, str, str]], quick: bool) -> None:
    header = ["case", "call", "implementation", "repeats", "median s", "min s", "+gt s",
              "tracemalloc MB", "RSS +MB", "max RSS MB", "verdict"]
    body = []
    order = {c: i for i, c in enumerate(CASES)}
    impl_order = {m: i for i, m in enumerate(IMPLS)}
    entries = [(r["case"], r["impl"], r, None) for r in rows.values()]
    entries += [(c, m, None, reason) for c, m, reason in missing]
    entries.sort(key=lambda e: (order[e[0]], impl_order[e[1]]))
    for case, impl, r, reason in entries:
        label = IMPLS[impl][1]
        if r is None:
            body.append([case, CASES[case]["label"], label] + ["-"] * 7 + [reason])
            continue
        extra = "incl." if impl != "new" else (
            "-" if r["extra_median_s"] is None else f"{r['extra_median_s']:.3f}")
        body.append([case, CASES[case]["label"], label, harness.repeats_cell(r)]
                    + harness.timing_cells(r) + [extra] + harness.memory_cells(r)
                    + [verdict(r, rows, quick)])
    harness.print_table(header, body, ["<", "<", "<"] + [">"] * 7 + ["<"],
                        groups=[case for case, *_ in entries])


def print_ratios(rows: dict) -> None:
    """Median (and min) time of 3.13.0 over ``new``, per case."""
    harness.print_ratios(rows, CASES, {m: IMPLS[m][1].split(":")[-1].strip()
                                       for m in IMPLS if m != "new"})


def _compare(a: dict, b: dict, keep) -> tuple[float, float, float, int]:
    """max |est diff|, SE ratio range (a / b) over the common event times that ``keep``
    selects, and their number (SE ratios only where both SEs are positive)."""
    ea = dict(zip(a["event_time"], zip(a["es_att"], a["es_se"])))
    eb = dict(zip(b["event_time"], zip(b["es_att"], b["es_se"])))
    common = [e for e in sorted(set(ea) & set(eb)) if keep(e)]
    d, r = [], []
    for e in common:
        (xa, sa), (xb, sb) = ea[e], eb[e]
        if xa is not None and xb is not None:
            d.append(abs(xa - xb))
        if sa is not None and sb is not None and sa > 0 and sb > 0:
            r.append(sa / sb)
    return (max(d) if d else float("nan"), min(r) if r else float("nan"),
            max(r) if r else float("nan"), len(common))


def first_period_event_times() -> set:
    """Event times of the cells at the first period (3.13.0's PT-Post leaves them out)."""
    return {1 - g for g in COHORTS}


def print_agreement(rows: dict) -> list[str]:
    notes = []
    print("agreement with new (overall ATT; event study over common event times, post-treatment "
          "e >= 0 and pre-treatment e < 0 apart):")
    first = first_period_event_times()
    for case, spec in CASES.items():
        new = rows.get((case, "new"))
        old = rows.get((case, "old"))
        if new is None:
            continue
        s = new["summary"]
        print(f"  {case}: new overall ATT {s['att']:.12f}  SE {s['se']:.6g}  (true overall ATT "
              f"{new['truth']:.6f}; {len(s['event_time'])} event times)")
        if old is None:
            continue
        o = old["summary"]
        d_att = abs(s["att"] - o["att"])
        print(f"    vs {IMPLS['old'][1]}: overall ATT {o['att']:.12f}  |dATT| {d_att:.2e} "
              f"({d_att / s['se']:.3f} new SE)  SE ratio new/old {s['se'] / o['se']:.6f}")
        groups = [("e >= 0", lambda e: e >= 0)]
        if spec["pt"] == "post":
            groups += [("e < 0 w/o t = 1 cells", lambda e: e < 0 and e not in first),
                       ("e < 0 with t = 1 cells", lambda e: e < 0 and e in first)]
        else:
            groups += [("e < 0", lambda e: e < 0)]
        for name, keep in groups:
            d, lo, hi, n = _compare(s, o, keep)
            print(f"      event study {name:<23} ({n:2d}): max|dEst| {d:.2e}, "
                  f"SE ratio new/old {lo:.6f}-{hi:.6f}")
        only_new = sorted(set(s["event_time"]) - set(o["event_time"]))
        only_old = sorted(set(o["event_time"]) - set(s["event_time"]))
        if only_new or only_old:
            print(f"      event times only in new: {only_new or '-'}; only in old: "
                  f"{only_old or '-'}")
        if spec["pt"] == "post":
            print("      expected: estimates equal to ~1e-12 except the event times with t = 1 "
                  f"cells ({', '.join(map(str, sorted(first)))}: 3.13.0 leaves those cells out "
                  "under PT-Post)")
        else:
            print("      by design: 3.13.0's Omega omits the never-treated cross term (and keeps "
                  "duplicate moments, ridge 1e-6), so its GLS weights and estimates differ; "
                  "not judged")
        if spec["n_boot"]:
            print("      (bootstrap SEs: different draws, so ratios also show Monte Carlo noise, "
                  f"about +-{100 / math.sqrt(2 * N_BOOT):.1f}% per SE)")
        if old["fingerprint"] != new["fingerprint"]:
            notes.append(f"{case}/old generated DIFFERENT data (fingerprint "
                         f"{old['fingerprint']} vs {new['fingerprint']}); its agreement "
                         "numbers are not meaningful")
    n = next((r["n_units"] for r in rows.values()), N_UNITS)
    print(f"  analytic SEs: expected ratio sqrt(n/(n-1)) = {math.sqrt(n / (n - 1)):.6f} where the "
          f"estimates agree (diff_diff's small-sample factor; {OLD_VERSION} uses none)")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    harness.print_header(
        "EfficientDiD", args.quick, "units",
        data=f"{n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows, cohorts "
             f"{', '.join(map(str, COHORTS))} (~15% each) + never treated (~40%), "
             f"seed {SEED}" + ("; case cov: 10,000 units (--quick 1,000), 3 region indicators"
                               if "cov" in cases else ""),
        criteria=f"criteria per case: {OLD_VERSION} median / new median >= {SPEED_TARGET:g}x "
                 f"and new memory <= {OLD_VERSION}'s")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "case x implementation", env, f"new {args.repeats}, {OLD_VERSION} {args.slow_repeats} "
        f"(budget {args.slow_budget:g} s per case)")

    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    rows, missing, failed, errors = run_children(cases, impls, pythons, args, env)
    notes += errors

    load_end = harness.load_text()
    print()
    print_table(rows, [(c, m, reason) for (c, m), reason in missing.items()], args.quick)
    print()
    print_ratios(rows)
    print()
    notes = print_agreement(rows) + notes
    skipped = f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"
    notes += harness.child_notes(list(rows.values()), load_end, "--slow-budget",
                                 name=lambda r: f"{r['case']}/{r['impl']}",
                                 call_extra=lambda r: skipped if r["traced_mb"] is None else "")
    return harness.finish(notes, failed, quick_scaled="units" if args.quick else None, closing=(
        f"verdict (new rows): {OLD_VERSION} median / new median >= {SPEED_TARGET:g}x and "
        f"max(tracemalloc MB, RSS +MB) of new <= that of {OLD_VERSION}; 'mem' is their ratio "
        "new / old",
        "+gt s: median extra time of res.group_time_effects (lazy group-time SEs) after the "
        f"judged call, not in the verdict; {OLD_VERSION} computes them inside fit ('incl.')"))


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, OLD_VERSION,
                                 slow_budget=120.0, child_timeout=1800.0)
    parser.set_defaults(traced_limit=TRACED_LIMIT)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
