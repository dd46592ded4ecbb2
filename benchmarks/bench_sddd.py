"""Benchmark of the staggered ``diff_diff.TripleDifference`` against diff-diff 3.13.0 and
moderndid 0.4.1.

Acceptance criterion (issue 12): on a balanced panel of 50,000 units x 20 periods
(1,000,000 rows), 4 enabling cohorts plus never-enabled units and an eligibility
partition, every case at least 3x faster than diff-diff 3.13.0 (median / median) and
using the same or less memory. moderndid's ``ddd`` (a Python port of R triplediff) runs
in the same run as a second reference.

Cases (one timed call each: every ATT(g, t) with its influence function, the overall ATT
and its SE, the event-study aggregation):

=====  ===========================================================================
case   call
=====  ===========================================================================
nyt    ``dr``, not-yet-treated comparisons (one DDD per comparison cohort, GMM), no
       covariates, varying base period (3.13.0's defaults)
cov    ``dr``, never-treated comparisons, covariates ``x1`` (continuous) and ``x2``
       (binary), varying base period
=====  ===========================================================================

Implementations, each case in its own fresh subprocess:

* ``new``: the checkout::

      res = TripleDifference(control_group=C).fit(df, outcome="y", partition="eligible",
          unit="unit", time="time", first_treat="first_treat", covariates=X)
      res.att, res.se, res.event_study_effects      # aggregations are lazy: in the call

* ``old``: diff-diff 3.13.0, the same ``fit`` with ``aggregate="event_study"`` (its
  staggered results have no ``aggregate()`` method).
* ``moderndid``: ``moderndid.ddd(df, yname="y", tname="time", idname="unit",
  gname="first_treat", pname="eligible", xformla=None | "~ x1 + x2",
  control_group="notyettreated" | "nevertreated", base_period="varying",
  est_method="dr")`` then ``agg_ddd(res, type="simple")`` and ``type="eventstudy"``
  (``boot=False, cband=False``).

Interpreters: ``--old-python`` (default ``$DIFF_DIFF_OLD_PYTHON``,
``benchmarks/.venv313/bin/python`` or ``venv313`` next to the checkout) and
``--moderndid-python`` (``$DIFF_DIFF_MODERNDID_PYTHON``, ``benchmarks/.venv-moderndid``,
``../venv-moderndid`` or ``../scratch/venv-moderndid``; moderndid needs Python >= 3.12).
Children of the references run with ``-E -s`` so that they cannot import the checkout;
a reference child still running after ``--budget`` seconds (default 900) is stopped and
reported as ``> budget s`` (its ratio as a lower bound), so the run always ends.

Data (generated in every child from a fixed seed; a fingerprint shows that all children
saw the same frame; generation is not timed): units 1..50,000, periods 1..20, one row per
unit and period sorted by unit and period; enabling cohorts 5, 9, 13, 17 (17.5% each) or
never (30%), eligibility ``Q ~ Bernoulli(0.5)`` per unit, ``x1 ~ N(0, 1)``, ``x2 ~
Bernoulli(0.4)``; ``y = a_i + (0.1 + 0.05 Q + 0.03 1{enabled}) t + 0.02 x1 t + effect +
N(0, 1)`` (trends differ by eligibility and by enabled state, as the DDD allows) with an
effect ``1 + 0.05 e`` for eligible units of enabled cohorts at event time ``e >= 0``.

Measuring (the shared harness): one untimed warm-up call on the first 1,000 units in every
child; repeats (``--repeats`` for new, ``--slow-repeats`` for the references, cut once
another call would pass ``--slow-budget`` seconds); median and minimum wall time;
``tracemalloc MB`` (one extra call; skipped above ``--traced-limit`` s, default 20:
tracemalloc slows moderndid's Python-level work by more than 10x), ``RSS +MB``
(rise of the resident-set high-water mark over the timed calls) and ``max RSS MB``.
Memory is compared on the larger of ``tracemalloc MB`` and ``RSS +MB``. ``--threads 1``
pins the BLAS threads of every child.

Agreement: the parent prints the overall ATT and SE of each implementation and the
largest event-study differences from ``new``. Expected: estimates equal to ~1e-10;
analytic SEs of ``new`` larger by ``sqrt(n/(n-1))`` than moderndid's ddof-0 SEs outside
GMM cells (the aggregates' influence functions are averaged over cells, so ratios near
1.00001 are expected).

Usage::

    python benchmarks/bench_sddd.py --threads 1                   # everything
    python benchmarks/bench_sddd.py --quick                       # units / 10
    python benchmarks/bench_sddd.py --impls new moderndid --cases cov
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also for the references)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

N_UNITS, N_PERIODS = 50_000, 20
COHORTS = (5, 9, 13, 17)
COHORT_PROBS = (0.30, 0.175, 0.175, 0.175, 0.175)  # never, then COHORTS
SEED = 20261206
SPEED_TARGET = 3.0
WARMUP_UNITS = 1_000
MODERNDID_VERSION = "0.4.1"

CASES = {
    "nyt": dict(control="not_yet_treated", covariates=None,
                label="dr, not yet treated (GMM), no covariates"),
    "cov": dict(control="never_treated", covariates=["x1", "x2"],
                label="dr, never treated, covariates x1 x2"),
}
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION} fit(aggregate=)"),
    "moderndid": ("moderndid", f"moderndid {MODERNDID_VERSION} ddd+agg_ddd"),
}


@dataclasses.dataclass(frozen=True)
class _ScratchInterpreter(harness.Interpreter):
    """An interpreter also looked up under ``scratch/`` next to the checkout."""

    def candidates(self) -> tuple:
        return super().candidates() + (
            os.path.join(os.path.dirname(harness.REPO), "scratch", self.venv, "bin", "python"),)


INTERPRETERS = {
    "old": OLD_RELEASE,
    "moderndid": _ScratchInterpreter(
        "moderndid", "DIFF_DIFF_MODERNDID_PYTHON", "venv-moderndid",
        f"moderndid=={MODERNDID_VERSION}",
        f"python3.12 -m venv /work/scratch/venv-moderndid && "
        f"/work/scratch/venv-moderndid/bin/pip install moderndid=={MODERNDID_VERSION}"),
}


def make_panel(n_units: int, n_periods: int = N_PERIODS, seed: int = SEED) -> pd.DataFrame:
    """Balanced long panel with staggered enabling and a partition; see the docstring."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array((0,) + COHORTS), size=n_units, p=COHORT_PROBS)
    q = (rng.random(n_units) < 0.5).astype(float)
    x1 = rng.normal(0.0, 1.0, n_units)
    x2 = rng.binomial(1, 0.4, n_units).astype(float)
    t = np.arange(1, n_periods + 1)
    level = rng.normal(0.0, 1.0, n_units) + 0.5 * x1
    slope = 0.1 + 0.05 * q + 0.03 * (g > 0) + 0.02 * x1
    e = t[None, :] - g[:, None]
    effect = np.where((g[:, None] > 0) & (q[:, None] == 1) & (e >= 0), 1.0 + 0.05 * e, 0.0)
    y = (level[:, None] + slope[:, None] * t[None, :] + effect
         + rng.normal(0.0, 1.0, (n_units, n_periods)))
    return pd.DataFrame({
        "unit": np.repeat(np.arange(1, n_units + 1), n_periods),
        "time": np.tile(t, n_units), "y": y.ravel(),
        "first_treat": np.repeat(g, n_periods), "eligible": np.repeat(q, n_periods),
        "x1": np.repeat(x1, n_periods), "x2": np.repeat(x2, n_periods),
    })


def _summary(att, se, event_time, es_att, es_se) -> dict:
    def floats(values):
        return [float(v) if v is not None and math.isfinite(float(v)) else None
                for v in np.ravel(np.asarray(values, dtype=float))]

    return dict(att=float(att), se=float(np.ravel(np.asarray(se, dtype=float))[0]),
                event_time=[int(round(float(e))) for e in event_time],
                es_att=floats(es_att), es_se=floats(es_se))


def make_call(impl: str, spec: dict):
    """(``run(frame) -> (result, summary)``, versions)."""
    versions = harness.interpreter_versions()
    control, covs = spec["control"], spec["covariates"]
    kw = dict(outcome="y", partition="eligible", unit="unit", time="time",
              first_treat="first_treat", covariates=covs)
    if impl in ("new", "old"):
        diff_diff, fields = (harness.checkout_package() if impl == "new" else
                             harness.old_package())
        versions.update(fields)

        def run(frame):
            if impl == "new":
                res = diff_diff.TripleDifference(control_group=control).fit(frame, **kw)
                es = res.event_study_effects
                return res, _summary(res.att, res.se, es["event_time"], es["estimate"],
                                     es["se"])
            # 3.13.0's staggered results have no aggregate(): the event study comes from
            # its (deprecated) fit(aggregate="event_study")
            res = diff_diff.TripleDifference(control_group=control).fit(
                frame, aggregate="event_study", **kw)
            effects = res.event_study_effects
            keys = sorted(effects)
            return res, _summary(res.overall_att, res.overall_se, keys,
                                 [effects[k]["effect"] for k in keys],
                                 [effects[k]["se"] for k in keys])

        return run, versions
    if impl == "moderndid":
        import moderndid

        versions.update(package=f"moderndid {moderndid.__version__}",
                        path=harness.module_dir(moderndid))
        cg = {"not_yet_treated": "notyettreated", "never_treated": "nevertreated"}[control]
        formula = None if covs is None else "~ " + " + ".join(covs)

        def run(frame):
            res = moderndid.ddd(frame, yname="y", tname="time", idname="unit",
                                gname="first_treat", pname="eligible", xformla=formula,
                                control_group=cg, base_period="varying", est_method="dr")
            simple = moderndid.agg_ddd(res, type="simple", boot=False, cband=False)
            es = moderndid.agg_ddd(res, type="eventstudy", boot=False, cband=False)
            return res, _summary(simple.overall_att, simple.overall_se, es.egt, es.att_egt,
                                 es.se_egt)

        return run, versions
    raise ValueError(impl)


def run_child(args) -> int:
    import functools
    import warnings

    impl, case = args.child, args.case
    n_units = N_UNITS // args.scale
    tag = f"[{case}/{impl}]"
    df, gen_s = harness.timed(make_panel, n_units)
    fp = harness.fingerprint(df)
    run, versions = make_call(impl, CASES[case])
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm_s = harness.timed(run, df.iloc[:min(WARMUP_UNITS, n_units) * N_PERIODS])[1]
    print(f"{tag} warm-up: {warm_s:.2f} s", file=sys.stderr, flush=True)
    call = functools.partial(run, df)
    repeats = args.repeats if impl == "new" else args.slow_repeats
    timing = harness.time_calls(
        call, repeats, budget=float("inf") if impl == "new" else args.slow_budget,
        keep=lambda out: out[1], tag=tag, warning_chars=160, squash_warnings=True)
    median = float(np.median(timing.times))
    traced_mb = harness.traced_peak_mb(call) if median <= args.traced_limit else None
    row = dict(impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
               fingerprint=fp, gen_s=gen_s, warm_s=warm_s, repeats_asked=repeats,
               **timing.fields(traced_mb), warnings=timing.warnings, summary=timing.kept,
               load=timing.load)
    harness.print_summary(tag, row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def run_with_budget(jobs, env, args) -> tuple:
    """Run the jobs one after another; reference children are stopped after ``--budget``
    seconds and reported as "> budget s" (not as failures)."""
    rows, missing, failed, errors = {}, {}, [], []
    for job in jobs:
        if job.python is None:
            missing[job.key] = "not run (no interpreter)"
            continue
        slow = job.key[1] != "new"
        timeout = args.budget if slow else args.child_timeout
        cmd = harness.child_command(job.python, __file__, job.args, isolated=job.isolated)
        t0 = time.perf_counter()
        row, code = harness.run_child(cmd, env, job.tag, timeout)
        if row is not None:
            rows[job.key] = row
        elif code is None and slow:
            missing[job.key] = f"> {args.budget:g} s (stopped)"
            print(f"[{job.tag}] stopped after {time.perf_counter() - t0:.0f} s (--budget)",
                  file=sys.stderr, flush=True)
        else:
            failed.append(job.tag)
            missing[job.key] = "not run (crashed)"
            errors.append(f"{job.tag} timed out after {timeout:g} s" if code is None else
                          f"{job.tag} failed (exit {code}); see its stderr above")
    return rows, missing, failed, errors


def memory_mb(row: dict) -> float:
    return max(row["traced_mb"] or 0.0, row["rss_rise_mb"])


def verdict(row: dict, rows: dict, quick: bool) -> str:
    if row["impl"] != "new":
        return "reference"
    old = rows.get((row["case"], "old"))
    if old is None:
        return "not judged (no 3.13.0 row)"
    speedup = old["median_s"] / row["median_s"]
    fast, small = speedup >= SPEED_TARGET, memory_mb(row) <= memory_mb(old)
    text = "PASS" if fast and small else "FAIL" + (
        " (time, memory)" if not (fast or small) else " (time)" if not fast else " (memory)")
    mem = memory_mb(row) / memory_mb(old) if memory_mb(old) > 0 else float("inf")
    return text + f" {speedup:.1f}x, mem {mem:.2f}x" + (" [quick]" if quick else "")


def print_table(rows: dict, missing: dict, quick: bool) -> None:
    header = ["case", "implementation", "repeats", "median s", "min s", "tracemalloc MB",
              "RSS +MB", "max RSS MB", "verdict"]
    body, groups = [], []
    for case in CASES:
        for impl in IMPLS:
            r, reason = rows.get((case, impl)), missing.get((case, impl))
            if r is None and reason is None:
                continue
            cells = [case, IMPLS[impl][1]]
            if r is None:
                body.append(cells + [reason] + ["-"] * 6)
            else:
                body.append(cells + [harness.repeats_cell(r)] + harness.timing_cells(r)
                            + harness.memory_cells(r) + [verdict(r, rows, quick)])
            groups.append(case)
    if body:
        harness.print_table(header, body, ["<", "<"] + [">"] * 6 + ["<"], groups=groups)


def print_agreement(rows: dict) -> list:
    notes = []
    print("agreement with new (overall ATT = simple aggregation; event study over common "
          "event times):")
    for case in CASES:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s = new["summary"]
        print(f"  {case}: new overall ATT {s['att']:.10f}  SE {s['se']:.6g}")
        for impl in IMPLS:
            r = rows.get((case, impl))
            if impl == "new" or r is None:
                continue
            o = r["summary"]
            a = dict(zip(s["event_time"], zip(s["es_att"], s["es_se"])))
            b = dict(zip(o["event_time"], zip(o["es_att"], o["es_se"])))
            common = [e for e in sorted(set(a) & set(b))
                      if None not in (a[e][0], b[e][0])]
            diff = max((abs(a[e][0] - b[e][0]) for e in common), default=float("nan"))
            ratios = [a[e][1] / b[e][1] for e in common
                      if a[e][1] is not None and b[e][1] not in (None, 0.0)]
            ratio = (f"{min(ratios):.6f}-{max(ratios):.6f}" if ratios else "-")
            print(f"    vs {IMPLS[impl][1]:<32} overall ATT {o['att']:.10f} "
                  f"(|d| {abs(s['att'] - o['att']):.2e}), SE ratio new/this "
                  f"{s['se'] / o['se']:.6f}; event study ({len(common)}): max|dEst| "
                  f"{diff:.2e}, SE ratio {ratio}")
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{case}/{impl} generated DIFFERENT data; its agreement numbers "
                             "are not meaningful")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    harness.print_header(
        "TripleDifference (staggered)", args.quick, "units",
        data=f"{n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows, "
             f"cohorts {', '.join(map(str, COHORTS))} (17.5% each) + never (30%), "
             f"eligibility 50%, seed {SEED}",
        criteria=f"criteria per case: {OLD_VERSION} median / new median >= "
                 f"{SPEED_TARGET:g}x and new memory <= {OLD_VERSION}'s")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "case x implementation", env, f"new {args.repeats}, references {args.slow_repeats} "
        f"(repeats cut at {args.slow_budget:g} s, children stopped at {args.budget:g} s)")
    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    jobs, _ = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons, args)
    rows, missing, failed, errors = run_with_budget(jobs, env, args)
    notes += errors
    load_end = harness.load_text()
    print()
    print_table(rows, missing, args.quick)
    print()
    stopped = {key: float(reason.split()[1]) for key, reason in missing.items()
               if reason.startswith(">")}
    harness.print_ratios(rows, CASES, {m: m for m in IMPLS if m != "new" and m in impls},
                         bounds=stopped)
    print()
    notes = print_agreement(rows) + notes
    notes += harness.child_notes(list(rows.values()), load_end, "--slow-budget",
                                 name=lambda r: f"{r['case']}/{r['impl']}")
    return harness.finish(notes, failed, quick_scaled="units" if args.quick else None,
                          closing=(f"verdict (new rows): {OLD_VERSION} median / new median >= "
                                   f"{SPEED_TARGET:g}x and max(tracemalloc MB, RSS +MB) of new "
                                   f"<= that of {OLD_VERSION}",))


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS,
                                 "3.13.0 and moderndid", slow_budget=300.0,
                                 child_timeout=1800.0)
    parser.add_argument("--budget", type=float, default=900.0,
                        help="stop a reference child after this many seconds and report "
                             "'> budget s'")
    # tracemalloc slows moderndid's Python-level work by an order of magnitude (its 35 s
    # call did not finish within 8 minutes under it): references above 20 s are compared
    # on the RSS rise
    parser.set_defaults(repeats=5, slow_repeats=2, traced_limit=20.0)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
