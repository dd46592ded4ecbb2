"""Benchmark of ``diff_diff.HeterogeneousAdoptionDiD`` against 3.13.0 and ``did_had`` 0.2.1.

No acceptance criteria exist for this estimator: every row is information.
The timed work is "per horizon: first differences, MSE-optimal bandwidth,
local-linear boundary fit with its bias correction, weighted average slope
and its analytic SE", design ``continuous_at_zero``, Epanechnikov kernel,
nearest-neighbour residuals (every implementation's default).

Cases (one timed call each):

==========  ============================================================
case        data and call
==========  ============================================================
two_period  G = 100,000 units x 2 periods; dose 0 in period 1 and
            ``D ~ U(0, 1)`` in period 2; ``dY = D + D^2 + N(0, 1)``
            (the paper's DGP1, true WAS 5/3); one effect
event       G = 20,000 units x 8 periods, adoption in period 5 (like
            the deterministic panel of the HAD spec, section 12.2, with
            more units and a constant dose after adoption);
            ``effects=4``, ``placebo=3`` (event times 0..3 and -2..-4:
            every horizon the panel has)
==========  ============================================================

Implementations, each case in its own fresh subprocess:

* ``new``: the checkout (current interpreter)::

      res = HeterogeneousAdoptionDiD(design="continuous_at_zero").fit(
          df, outcome="y", dose="d", time="t", unit="unit", effects=E, placebo=P)
      res.event_study_effects

  ``n_bootstrap=0`` (the default): analytic SEs. The SEs are lazy, so the
  table is built inside the timed call.
* ``old``: diff-diff 3.13.0::

      HeterogeneousAdoptionDiD(design="continuous_at_zero").fit(
          df, outcome="y", dose="d", time="t", unit="unit", cband=False)

  3.13.0 picks the mode from the panel: two periods give the single-effect
  results, more give the event study over every horizon (no
  ``effects=``/``placebo=``; here the same 7 horizons). Its ``n_bootstrap``
  must be >= 1 (default 999); the draws only feed the sup-t band, which it
  skips on unweighted, unclustered fits anyway, and ``cband=False`` turns it
  off explicitly, so its SEs are analytic too.
* ``didhad``: ``did_had`` 0.2.1 (Python port of Stata ``did_had``, on
  ``nprobust`` 0.5.0)::

      DidHad(kernel="epa").fit(df, outcome="y", group="unit", time="t",
                               treatment="d", effects=E, placebo=P).estimates

  It has no design option: it always evaluates the boundary at 0.

The old release and ``did_had`` run under their own interpreters (``-E -s``,
so ``PYTHONPATH`` cannot make them import the checkout): ``--old-python``
(default ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python``, or
``venv313`` next to the checkout) and ``--didhad-python`` (default
``$DIFF_DIFF_DIDHAD_PYTHON``, ``benchmarks/.venv_didhad/bin/python`` or
``venv_didhad`` next to the checkout)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0
    python -m venv /work/venv_didhad && /work/venv_didhad/bin/pip install did-had==0.2.1

An implementation without an interpreter is reported as "not run".

Data (generated in every child; a fingerprint shows that all children saw
the same frame; generation is not timed): columns ``unit``, ``t``, ``d``,
``y``, sorted by unit then period.

* ``two_period``: seed 20240611; ``y = a_i`` in period 1 with
  ``a_i ~ N(0, 1)`` and ``y = a_i + D + D^2 + e`` in period 2.
* ``event``: no randomness. ``g = 1..G``, ``base_g = frac(0.618034 g)``,
  ``a_g = sin 2g``; ``D_gt = 0`` before period 5 and ``base_g`` from it;
  ``y = a_g + 0.3 t + (1.5 + 0.5 base_g) D_gt + 0.7 sin(5g + 3t) +
  0.3 cos(11 g t)``. The spec panel's dose grows after adoption
  (``base_g (1 + 0.1 (t - 5))``); here it is constant, because 3.13.0's
  event study refuses doses that vary within unit after adoption.

Measuring (as ``bench_imputation.py``): glibc's default allocator
(``--mmap-threshold N`` sets ``MALLOC_MMAP_THRESHOLD_=N``); repeats (5 for
``new``, 3 for the others, which stop early once another call would take the
case past ``--slow-budget`` seconds); the median and minimum wall time;
``tracemalloc MB`` is the peak of one extra call under ``tracemalloc``
(skipped above ``--traced-limit`` seconds), ``RSS +MB`` the rise of the
resident-set high-water mark during the timed calls, ``max RSS MB`` the
child's total peak.

Agreement, per horizon, against ``new``: ``did_had`` reports the
conventional estimate (new's ``estimate`` column) with a bias-corrected
interval; 3.13.0's ``att`` is the bias-corrected value (new's
``estimate_bc``), so each is compared with its own column. Bandwidths ``h``
(relative difference) and the SE ratio new / other. Expected: estimates
and bandwidths equal to ~1e-8 or better; SE ratio new / did_had =
``sqrt(G/(G-1))`` (new's inference engine applies the small-sample factor).

Usage::

    python benchmarks/bench_had.py                   # everything, ~10 min on 2 cores
    python benchmarks/bench_had.py --quick           # units / 10, ~1 min
    python benchmarks/bench_had.py --impls new didhad --cases event --repeats 9
    python benchmarks/bench_had.py --mmap-threshold 1048576 --threads 1
"""

from __future__ import annotations

import math
import os
import statistics
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also in the other venvs' children)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

DIDHAD_VERSION = "0.2.1"
SEED = 20240611
GOLDEN = 0.6180339887498949
ADOPTION = 5  # adoption period of the event case

INTERPRETERS = {
    "old": OLD_RELEASE,
    "didhad": harness.Interpreter(
        "didhad", "DIFF_DIFF_DIDHAD_PYTHON", "venv_didhad", f"did-had=={DIDHAD_VERSION}",
        f"python -m venv /work/venv_didhad && /work/venv_didhad/bin/pip install "
        f"did-had=={DIDHAD_VERSION}"),
}

# case -> units, periods, effects, placebos, description
CASES = {
    "two_period": dict(n_units=100_000, n_periods=2, effects=1, placebo=0,
                       label="2 periods, D ~ U(0,1), 1 effect"),
    "event": dict(n_units=20_000, n_periods=8, effects=4, placebo=3,
                  label="8 periods, F = 5, 4 effects + 3 placebos"),
}
# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION}"),
    "didhad": ("didhad", f"did_had {DIDHAD_VERSION}"),
}


# ---------------------------------------------------------------------------
# data (outside the timed calls)
# ---------------------------------------------------------------------------
def make_two_period(n_units: int) -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    a = rng.normal(size=n_units)
    dose = rng.uniform(0.0, 1.0, n_units)
    dy = dose + dose ** 2 + rng.normal(size=n_units)
    return pd.DataFrame({
        "unit": np.repeat(np.arange(1, n_units + 1), 2),
        "t": np.tile([1, 2], n_units),
        "d": np.column_stack([np.zeros(n_units), dose]).ravel(),
        "y": np.column_stack([a, a + dy]).ravel(),
    })


def make_event(n_units: int, n_periods: int) -> pd.DataFrame:
    g = np.repeat(np.arange(1, n_units + 1), n_periods).astype(float)
    t = np.tile(np.arange(1, n_periods + 1), n_units).astype(float)
    base = np.modf(g * GOLDEN)[0]
    d = np.where(t < ADOPTION, 0.0, base)  # constant after adoption: 3.13.0 requires it
    y = (np.sin(2.0 * g) + 0.3 * t + (1.5 + 0.5 * base) * d + 0.7 * np.sin(5.0 * g + 3.0 * t)
         + 0.3 * np.cos(11.0 * g * t))
    return pd.DataFrame({"unit": g.astype(np.int64), "t": t.astype(np.int64), "d": d, "y": y})


def make_data(case: str, scale: int) -> pd.DataFrame:
    spec = CASES[case]
    n = spec["n_units"] // scale
    return make_two_period(n) if case == "two_period" else make_event(n, spec["n_periods"])


# ---------------------------------------------------------------------------
# the timed calls; each returns (result object, summary)
# ---------------------------------------------------------------------------
def _floats(values):
    out = []
    for v in values:
        v = None if v is None else float(v)
        out.append(v if v is not None and math.isfinite(v) else None)
    return out


def _summary(event_time, est, est_bc, se, h, n_bw=None) -> dict:
    k = len(event_time)
    return dict(event_time=[int(round(float(e))) for e in event_time],
                est=_floats(est if est is not None else [None] * k),
                est_bc=_floats(est_bc if est_bc is not None else [None] * k),
                se=_floats(se), h=_floats(h),
                n_bw=[None] * k if n_bw is None else [int(v) for v in n_bw])


def make_call(impl: str, spec: dict, df: pd.DataFrame):
    """(timed call, versions)."""
    versions = harness.interpreter_versions()
    effects, placebo = spec["effects"], spec["placebo"]

    if impl == "new":
        versions.update(harness.checkout_package()[1])
        from diff_diff import HeterogeneousAdoptionDiD

        def call():
            res = HeterogeneousAdoptionDiD(design="continuous_at_zero", n_bootstrap=0).fit(
                df, outcome="y", dose="d", time="t", unit="unit", effects=effects,
                placebo=placebo)
            es = res.event_study_effects  # SEs are lazy: built here
            return res, _summary(es["event_time"], es["estimate"], es["estimate_bc"], es["se"],
                                 es["bandwidth"], es["n_in_bandwidth"])

        return call, versions

    if impl == "old":
        versions.update(harness.old_package()[1])
        from diff_diff import HeterogeneousAdoptionDiD

        def call():
            # n_bootstrap stays at its default (999; 0 is rejected): cband=False skips the draws
            res = HeterogeneousAdoptionDiD(design="continuous_at_zero").fit(
                df, outcome="y", dose="d", time="t", unit="unit", cband=False)
            if hasattr(res, "event_times"):
                h = [np.nan if f is None else f.h for f in res.bias_corrected_fit]
                return res, _summary(res.event_times, None, res.att, res.se, h)
            return res, _summary([0], None, [res.att], [res.se], [res.bias_corrected_fit.h])

        return call, versions

    if impl == "didhad":
        import did_had
        from did_had import DidHad

        versions.update(package=f"did_had {getattr(did_had, '__version__', '?')}",
                        path=harness.module_dir(did_had))

        def call():
            res = DidHad(kernel="epa").fit(df, outcome="y", group="unit", time="t",
                                           treatment="d", effects=effects, placebo=placebo)
            tab = res.estimates
            lag = tab["horizon"].to_numpy()
            et = np.where(tab["type"].to_numpy() == "effect", lag - 1, -1 - lag)
            return res, _summary(et, tab["estimate"], None, tab["se"], tab["bandwidth"],
                                 tab["n_in_bw"])

        return call, versions

    raise ValueError(impl)


# ---------------------------------------------------------------------------
# child: one implementation, one case, one process
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl, case = args.child, args.case
    spec = CASES[case]
    tag = f"[{case}/{impl}]"
    data, gen_s = harness.timed(make_data, case, args.scale)
    fp = harness.fingerprint(data)
    df = data.copy()
    del data
    call, versions = make_call(impl, spec, df)
    n_units = df["unit"].nunique()
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)
    row = dict(impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
               fingerprint=fp, gen_s=gen_s, notes=[], error=None)
    repeats = args.repeats if impl == "new" else args.slow_repeats
    timing = harness.time_calls(
        call, repeats, budget=float("inf") if impl == "new" else args.slow_budget,
        keep=lambda out: out[1], tag=tag, warning_chars=160, squash_warnings=True)
    median = statistics.median(timing.times)
    traced_mb = harness.traced_peak_mb(call) if median <= args.traced_limit else None
    row.update(repeats_asked=repeats, **timing.fields(traced_mb), warnings=timing.warnings,
               summary=timing.kept, load=timing.load)
    harness.print_summary(tag, row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def run_children(cases, impls, pythons, args, env) -> tuple:
    """Every case x implementation in its own child: rows by (case, impl), missing, failed, errors."""
    jobs, _ = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons, args)
    return harness.run_jobs(jobs, __file__, env, args.child_timeout)


def print_table(rows: dict, missing: dict) -> None:
    header = ["case", "what", "implementation", "repeats", "median s", "min s",
              "tracemalloc MB", "RSS +MB", "max RSS MB", "note"]
    body, groups = [], []
    for case in CASES:
        for impl in IMPLS:
            r, reason = rows.get((case, impl)), missing.get((case, impl))
            if r is None and reason is None:
                continue
            cells = [case, CASES[case]["label"], IMPLS[impl][1]]
            if r is None:
                body.append(cells + ["-"] * 6 + [reason])
            else:
                body.append(cells + [harness.repeats_cell(r)] + harness.timing_cells(r)
                            + harness.memory_cells(r) + [""])
            groups.append(case)
    if body:
        harness.print_table(header, body, ["<", "<", "<"] + [">"] * 6 + ["<"], groups=groups)


def print_ratios(rows: dict, impls) -> None:
    """Median (and min) time of each other implementation over ``new``, per case."""
    harness.print_ratios(rows, CASES, {m: m for m in IMPLS if m != "new" and m in impls})


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_agreement(rows: dict) -> list[str]:
    """Per horizon: new's estimates, bandwidth and SE; each other implementation's differences."""
    notes = []
    print("agreement with new, per event time (did_had's estimate vs new's conventional "
          "`estimate`; 3.13.0's att vs new's bias-corrected `estimate_bc`; dh = |h - h_new| / "
          "h_new; SE ratio = new / this):")
    header = ["case", "event time", "new estimate", "new estimate_bc", "new se", "new h",
              "n in h", "vs", "|dEst|", "dh", "SE ratio"]
    body, groups, worst = [], [], {}
    for case in CASES:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s = new["summary"]
        at = {e: i for i, e in enumerate(s["event_time"])}
        others = [m for m in IMPLS if m != "new" and (case, m) in rows]
        for e in sorted(at):
            i = at[e]
            first = True
            for m in others or [None]:
                cells = [case, str(e)] + ([_fmt(s["est"][i], ".10f"), _fmt(s["est_bc"][i], ".10f"),
                                           _fmt(s["se"][i], ".6g"), _fmt(s["h"][i], ".6f"),
                                           _fmt(s["n_bw"][i], "d")] if first else [""] * 5)
                first = False
                if m is None:
                    body.append(cells + ["", "", "", ""])
                    groups.append(case)
                    continue
                o = rows[(case, m)]["summary"]
                j = dict(zip(o["event_time"], range(len(o["event_time"])))).get(e)
                if j is None:
                    body.append(cells + [m, "missing", "", ""])
                    groups.append(case)
                    continue
                col = "est_bc" if m == "old" else "est"
                a, b = s[col][i], o[col][j]
                d = None if a is None or b is None else abs(a - b)
                dh = (None if s["h"][i] is None or o["h"][j] is None
                      else abs(s["h"][i] - o["h"][j]) / s["h"][i])
                ratio = (None if s["se"][i] is None or not o["se"][j]
                         else s["se"][i] / o["se"][j])
                body.append(cells + [m, _fmt(d, ".2e"), _fmt(dh, ".2e"), _fmt(ratio, ".8f")])
                groups.append(case)
                w = worst.setdefault((case, m), [0.0, 0.0, math.inf, -math.inf])
                if d is not None:
                    w[0] = max(w[0], d)
                if dh is not None:
                    w[1] = max(w[1], dh)
                if ratio is not None:
                    w[2], w[3] = min(w[2], ratio), max(w[3], ratio)
            for m in others:
                o = rows[(case, m)]
                if o["fingerprint"] != new["fingerprint"]:
                    notes.append(f"{case}/{m} generated DIFFERENT data; its agreement numbers "
                                 "are not meaningful")
        for m in others:
            o = rows[(case, m)]["summary"]
            extra = sorted(set(o["event_time"]) - set(at))
            if extra:
                notes.append(f"{case}/{m}: event times only there: {extra}")
    if body:
        harness.print_table(header, body, ["<", ">", ">", ">", ">", ">", ">", "<", ">", ">", ">"],
                            groups=groups, indent="  ")
    print()
    for (case, m), (d, dh, lo, hi) in worst.items():
        n = rows[(case, "new")]["n_units"]
        print(f"  {case} vs {IMPLS[m][1]}: max|dEst| {d:.2e}, max dh {dh:.2e}, SE ratio "
              f"{lo:.8f}-{hi:.8f} (sqrt(G/(G-1)) = {math.sqrt(n / (n - 1)):.8f}, G = {n:,})")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    sizes = ", ".join(f"{c} {CASES[c]['n_units'] // args.scale:,} units x "
                      f"{CASES[c]['n_periods']} periods" for c in cases)
    harness.print_header(
        "HeterogeneousAdoptionDiD", args.quick, "units",
        data=f"{sizes}; design continuous_at_zero, Epanechnikov kernel, analytic SEs",
        criteria="no acceptance criteria: every row is information")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "case x implementation", env, f"new {args.repeats}, others {args.slow_repeats} "
        f"(budget {args.slow_budget:g} s per case)")

    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    rows, missing, failed, errors = run_children(cases, impls, pythons, args, env)
    notes += errors

    load_end = harness.load_text()
    print()
    print_table(rows, missing)
    print()
    print_ratios(rows, impls)
    print()
    notes = print_agreement(rows) + notes

    skipped = f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"
    child = harness.child_notes(list(rows.values()), load_end, "--slow-budget",
                                name=lambda r: f"{r['case']}/{r['impl']}",
                                call_extra=lambda r: skipped if r["traced_mb"] is None else "")
    # the cases have different data: the same-data check is per case
    per_case = [f"{c}: " + harness.same_data_note([r for k, r in rows.items() if k[0] == c])
                for c in CASES if any(k[0] == c for k in rows)]
    notes += per_case + child[1:]
    if args.quick:
        notes.append("QUICK run: 1/10 of the units")
    closing = ["no acceptance criteria for HeterogeneousAdoptionDiD: timings and memory are "
               "information only"]
    if "old" in impls:
        closing.append("old: 3.13.0 fits every horizon of the panel (no effects=/placebo=) and "
                       "reports the bias-corrected value as att; cband=False, so its "
                       "n_bootstrap (>= 1, default 999) draws nothing")
    return harness.finish(notes, failed, closing=closing)


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, "3.13.0 and did_had",
                                 slow_budget=120.0, child_timeout=1200.0)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
