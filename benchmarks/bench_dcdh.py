"""Benchmark of ``diff_diff.ChaisemartinDHaultfoeuille`` against 3.13.0 and the authors' port.

The timed work is "DID_1 .. DID_5, placebos 1 .. 5 and their analytic SEs" (the average
total effect and the normalised effects come with them in every implementation) on a
1,000,000-row panel: 50,000 groups x 20 periods, in two designs (cases):

* ``staggered``: a binary absorbing treatment, first treated in 6..18 (equal shares) or never
  (30%);
* ``switching``: a binary treatment that switches once, on (joiners, 35%) or off (leavers,
  25%) in 6..18, or never moves (never treated 25%, always treated 15%).

``y = a_g + b_t + D (1 + 0.1 min(exposure, 5)) + N(0, 1)``. Issue 13 asks for at least 10x
3.13.0's speed and more than the port's.

Implementations, each in its own fresh subprocess:

* ``new``: the checkout::

      res = ChaisemartinDHaultfoeuille().fit(df, outcome="y", unit="unit", time="time",
                                             treatment="d", L_max=5)
      res.event_study_effects

* ``old``: diff-diff 3.13.0's ``ChaisemartinDHaultfoeuille(twfe_diagnostic=False)`` with the
  same ``fit`` call (its TWFE weights diagnostic switched off: the others do not compute it);
  ``event_study_effects`` and ``placebo_event_study`` are dicts by horizon;
* ``port``: ``py-did-multiplegt-dyn`` 0.1.9 (the authors' port of R ``did_multiplegt_dyn``,
  polars 1.x; the parity reference of ``tests/parity/test_dcdh_multiplegt.py``)::

      DidMultiplegtDyn(pl.from_pandas(df), "y", "unit", "time", "d", effects=5,
                       placebo=5).fit()

  with the conversion to polars inside the timed call.

The old release and the port run under their own interpreters (``-E -s``):
``--old-python`` (default ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python`` or
``venv313`` next to the checkout) and ``--port-python`` (``$DIFF_DIFF_DCDH_PYTHON``,
``benchmarks/.venv_dcdh/bin/python`` or ``venv_dcdh`` next to the checkout)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0
    python -m venv /work/venv_dcdh && /work/venv_dcdh/bin/pip install \\
        py-did-multiplegt-dyn==0.1.9 "polars<2"

Time budget: each child of ``old`` and ``port`` is stopped after ``--budget`` seconds
(default 600) and reported as "> budget s"; its repeats stop early once another call
would pass ``--slow-budget`` seconds. Measuring as ``bench_sun_abraham.py``: repeats (3 for
``new``, 2 for the others), the first call counted in the median (``new``'s includes the
lazy scipy import of the first p-value), ``tracemalloc MB`` (one extra call; skipped above
``--traced-limit`` seconds; polars allocates outside it), ``RSS +MB`` the rise of the
resident-set high-water mark over the timed calls, ``max RSS MB`` the child's peak.

Agreement: each child returns the effects and placebos with their SEs; the parent prints
the differences from ``new``. Expected (tests/parity/test_dcdh_multiplegt.py): estimates
equal to ~1e-12; SE new / port = ``sqrt(G / (G - 1))`` (the engine's small-sample factor;
the port's per-cohort factors are the same); 3.13.0's SEs 0.4-8% smaller (it leaves out
the cohort corrections; issue 13).

Usage::

    python benchmarks/bench_dcdh.py                  # everything
    python benchmarks/bench_dcdh.py --quick          # groups / 10
    python benchmarks/bench_dcdh.py --impls new port --cases switching
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also in the other venvs)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_VERSION  # noqa: E402

N_UNITS, N_PERIODS, L_MAX, SEED = 50_000, 20, 5, 20251
PORT_VERSION = "0.1.9"
CASES = {"staggered": dict(label="binary absorbing, staggered"),
         "switching": dict(label="binary, joiners and leavers")}
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION} ChaisemartinDHaultfoeuille"),
    "port": ("port", f"port: py-did-multiplegt-dyn {PORT_VERSION}"),
}
INTERPRETERS = {
    "old": harness.OLD_RELEASE,
    "port": harness.Interpreter(
        "port", "DIFF_DIFF_DCDH_PYTHON", "venv_dcdh",
        f"py-did-multiplegt-dyn=={PORT_VERSION} and polars<2",
        f"python -m venv /work/venv_dcdh && /work/venv_dcdh/bin/pip install "
        f"py-did-multiplegt-dyn=={PORT_VERSION} 'polars<2'"),
}


def make_panel(n_units: int, design: str, seed: int = SEED) -> pd.DataFrame:
    """``unit, time, d, y`` (balanced, sorted by unit and time)."""
    rng = np.random.default_rng(seed)
    T = N_PERIODS
    t = np.arange(1, T + 1)
    a = rng.normal(0, 1, n_units)[:, None]
    b = (0.05 * t + rng.normal(0, 0.2, T))[None, :]
    dates = np.arange(6, 19)
    if design == "staggered":
        F = rng.choice(np.r_[0, dates], n_units, p=np.r_[0.3, np.full(dates.size, 0.7 / 13)])
        D = ((F[:, None] > 0) & (t[None, :] >= F[:, None])).astype(float)
        start = np.where(F > 0, F, T + 1)
    else:
        kind = rng.choice(4, n_units, p=[0.25, 0.15, 0.35, 0.25])  # never, always, on, off
        S = rng.choice(dates, n_units)
        D = np.select([kind[:, None] == 1, kind[:, None] == 2, kind[:, None] == 3],
                      [np.ones((n_units, T)), t[None, :] >= S[:, None],
                       t[None, :] < S[:, None]], 0.0)
        start = np.where(kind >= 2, S, T + 1)
    exposure = np.clip(t[None, :] - start[:, None] + 1, 0, None)
    Y = a + b + D * (1.0 + 0.1 * np.minimum(exposure, 5)) + rng.normal(0, 1, (n_units, T))
    return pd.DataFrame({"unit": np.repeat(np.arange(n_units), T), "time": np.tile(t, n_units),
                         "d": D.ravel(), "y": np.round(Y.ravel(), 12)})


def _summary(horizons, estimates, ses) -> dict:
    return dict(event_time=[int(h) for h in horizons],
                estimate=[float(v) for v in estimates], se=[float(v) for v in ses])


def make_call(impl: str, df):
    """(timed call returning (result, summary), versions)."""
    versions = harness.interpreter_versions()
    cols = dict(outcome="y", unit="unit", time="time", treatment="d", L_max=L_MAX)
    if impl == "new":
        diff_diff, fields = harness.checkout_package()
        versions.update(fields)

        def call():
            res = diff_diff.ChaisemartinDHaultfoeuille().fit(df, **cols)
            es = res.event_study_effects
            return res, _summary(es["event_time"], es["estimate"], es["se"])

        return call, versions
    if impl == "old":
        diff_diff, fields = harness.old_package()
        versions.update(fields)

        def call():
            res = diff_diff.ChaisemartinDHaultfoeuille(twfe_diagnostic=False).fit(df, **cols)
            rows = {**res.event_study_effects, **(res.placebo_event_study or {})}
            keys = sorted(k for k in rows if k != 0)
            return res, _summary(keys, [rows[k]["effect"] for k in keys],
                                 [rows[k]["se"] for k in keys])

        return call, versions
    if impl == "port":
        import polars as pl
        from importlib.metadata import version

        from did_multiplegt_dyn import DidMultiplegtDyn

        versions.update(package=f"py-did-multiplegt-dyn {version('py-did-multiplegt-dyn')} "
                                f"(polars {pl.__version__})",
                        path=harness.module_dir(sys.modules["did_multiplegt_dyn"]))

        def call():
            m = DidMultiplegtDyn(pl.from_pandas(df), "y", "unit", "time", "d", effects=L_MAX,
                                 placebo=L_MAX).fit()
            out = m.result["did_multiplegt_dyn"]
            eff, pla = out["Effects"], out["Placebos"]
            keys = [int(k.split("_")[1]) for k in eff.index]
            keys += [-int(k.split("_")[1]) for k in pla.index]
            return m, _summary(keys, list(eff["Estimate"]) + list(pla["Estimate"]),
                               list(eff["SE"]) + list(pla["SE"]))

        return call, versions
    raise ValueError(impl)


def run_child(args) -> int:
    impl, case = args.child, args.case
    n_units = N_UNITS // args.scale
    tag = f"[{case}/{impl}]"
    df, gen_s = harness.timed(make_panel, n_units, case)
    fp = harness.fingerprint(df)
    call, versions = make_call(impl, df)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)
    repeats = args.repeats if impl == "new" else args.slow_repeats
    timing = harness.time_calls(
        call, repeats, budget=float("inf") if impl == "new" else args.slow_budget,
        keep=lambda out: out[1], tag=tag, warning_chars=160, squash_warnings=True)
    median = float(np.median(timing.times))
    traced_mb = harness.traced_peak_mb(call) if median <= args.traced_limit else None
    row = dict(impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
               fingerprint=fp, gen_s=gen_s, repeats_asked=repeats,
               **timing.fields(traced_mb), warnings=timing.warnings, summary=timing.kept,
               load=timing.load)
    harness.print_summary(tag, row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def run_with_budget(jobs, env, args) -> tuple:
    """Run the jobs one after another; ``old`` and ``port`` children are stopped after
    ``--budget`` seconds and reported as "> budget s" (not as failures)."""
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
            continue
        if code is None and slow:
            missing[job.key] = f"> {args.budget:g} s (stopped)"
            print(f"[{job.tag}] stopped after {time.perf_counter() - t0:.0f} s (--budget)",
                  file=sys.stderr, flush=True)
            continue
        failed.append(job.tag)
        missing[job.key] = "not run (crashed)"
        errors.append(f"{job.tag} timed out after {timeout:g} s" if code is None else
                      f"{job.tag} failed (exit {code}); see its stderr above")
    return rows, missing, failed, errors


def print_table(rows: dict, missing: dict) -> None:
    header = ["case", "implementation", "repeats", "first s", "median s", "min s",
              "tracemalloc MB", "RSS +MB", "max RSS MB"]
    body = []
    for case in CASES:
        for impl in IMPLS:
            r, reason = rows.get((case, impl)), missing.get((case, impl))
            if r is None and reason is None:
                continue
            cells = [case, IMPLS[impl][1]]
            if r is None:
                body.append(cells + [reason] + ["-"] * 6)
            else:
                body.append(cells + [harness.repeats_cell(r), f"{r['times'][0]:.3f}"]
                            + harness.timing_cells(r) + harness.memory_cells(r))
    if body:
        harness.print_table(header, body, ["<", "<"] + [">"] * 7)


def print_agreement(rows: dict) -> list:
    notes = []
    print("agreement with new (effects 1..5 and placebos -1..-5, common horizons):")
    for case in CASES:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s = new["summary"]
        G = new["n_units"]
        print(f"  {case}: new DID_1 {s['estimate'][s['event_time'].index(1)]:.10f}; expected "
              f"SE new / port sqrt(G/(G-1)) = {np.sqrt(G / (G - 1)):.8f}")
        for m in IMPLS:
            r = rows.get((case, m))
            if m == "new" or r is None:
                continue
            o = r["summary"]
            a = dict(zip(s["event_time"], zip(s["estimate"], s["se"])))
            b = dict(zip(o["event_time"], zip(o["estimate"], o["se"])))
            common = sorted(set(a) & set(b))
            diff = max(abs(a[k][0] - b[k][0]) for k in common)
            ratios = [a[k][1] / b[k][1] for k in common if b[k][1] > 0]
            print(f"    vs {IMPLS[m][1]:<44} {len(common)} horizons: max|dEst| {diff:.2e}, "
                  f"SE new/this {min(ratios):.6f}-{max(ratios):.6f}")
            if set(a) != set(b):
                print(f"       horizons only in new {sorted(set(a) - set(b))}, only here "
                      f"{sorted(set(b) - set(a))}")
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{case}/{m} generated DIFFERENT data; its agreement numbers are "
                             "not meaningful")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    harness.print_header(
        "ChaisemartinDHaultfoeuille", args.quick, "groups",
        data=f"{n_units:,} groups x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows per "
             f"case, L_max = {L_MAX} with {L_MAX} placebos, seed {SEED}",
        criteria="issue 13: >= 10x 3.13.0 and faster than the port")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "implementation", env, f"new {args.repeats}, others {args.slow_repeats} "
        f"(repeats cut at {args.slow_budget:g} s, children stopped at {args.budget:g} s)")
    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    jobs, _ = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons, args)
    rows, missing, failed, errors = run_with_budget(jobs, env, args)
    notes += errors
    load_end = harness.load_text()
    print()
    print_table(rows, missing)
    print()
    stopped = {key: float(reason.split()[1]) for key, reason in missing.items()
               if reason.startswith(">")}  # "> <budget> s": stopped at its budget
    harness.print_ratios(rows, CASES, {m: m for m in IMPLS if m != "new" and m in impls},
                         bounds=stopped)
    print()
    notes = print_agreement(rows) + notes
    child = harness.child_notes(list(rows.values()), load_end, "--slow-budget",
                                name=lambda r: f"{r['case']}/{r['impl']}")
    # the harness compares fingerprints across all rows; the cases differ by design
    same = [c for c in cases if len({r["fingerprint"] for (k, _), r in rows.items()
                                      if k == c}) > 1]
    child[0] = ("same data in every child of a case: " + ("yes" if not same else
                                                          f"NO ({', '.join(same)})"))
    notes += child
    return harness.finish(notes, failed, quick_scaled="groups" if args.quick else None)


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, "3.13.0 and the port",
                                 slow_budget=300.0, child_timeout=1800.0)
    parser.add_argument("--budget", type=float, default=600.0,
                        help="stop an old or port child after this many seconds and report "
                             "'> budget s'")
    parser.set_defaults(repeats=3, slow_repeats=2)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
