"""Benchmark of ``diff_diff.SyntheticDiD`` against 3.13.0 and ``synthdid-py``.

The issue's targets (printed as verdicts, information otherwise): on the 500 x 40
block panel with 200 placebo draws, ``new`` at least 7x faster than 3.13.0 and
faster than synthdid-py; with the jackknife and with 200 bootstrap draws, faster
than both.

Cases (one estimator call each; one table per case):

================  ==========================================  ==========================
case              variance                                    data
================  ==========================================  ==========================
block_placebo     placebo, 200 draws, seed 0                  500 units x 40 periods
block_jackknife   jackknife (fixed weights, one unit at a     500 units x 40 periods
                  time)
block_bootstrap   bootstrap, 200 draws, seed 0 (units         500 units x 40 periods
                  resampled, weights re-estimated)
prop99_placebo    placebo, 200 draws, seed 0                  California Prop 99, 39 x 31
================  ==========================================  ==========================

Implementations, each case in its own fresh subprocess:

* ``new``: the checkout (current interpreter)::

      res = SyntheticDiD(variance_method=v, n_bootstrap=200, seed=0).fit(
          df, outcome="y", treatment="treated", unit="unit", time="time",
          post_periods=post)
      res.att, res.se

  (``treated``: the unit-level indicator, 1 in every period of a treated unit).
* ``old``: diff-diff 3.13.0's ``SyntheticDiD`` with the same call (its ``fit``
  has the same signature; in every variance method it also draws
  ``min(n_bootstrap, 20)`` placebo pre-fit replicates for its fit diagnostics,
  which are part of its call).
* ``synthdid``: synthdid-py 0.1.0 (a port of R ``synthdid``)::

      p = panel_matrices(df, unit="unit", time="time", outcome="y", treatment="d")
      tau = synthdid_estimate(p.Y, p.N0, p.T0)
      se = tau.se(method=v, replications=200, random_state=0)

  (``d``: the cell-level indicator, treated unit x post period, which
  ``panel_matrices`` needs). The reshaping is inside the timed call, as ``new``
  and 3.13.0 reshape inside ``fit``.

The old release and synthdid-py run under their own interpreters (``-E -s``):
``--old-python`` (default ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python``
or ``venv313`` next to the checkout) and ``--synthdid-python`` (default
``$DIFF_DIFF_SYNTHDID_PYTHON``, ``benchmarks/.venv-synthdid/bin/python``,
``venv-synthdid`` next to the checkout or ``scratch/venv-synthdid`` next to it)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0
    python -m venv /work/venv-synthdid && /work/venv-synthdid/bin/pip install synthdid-py==0.1.0

An implementation without an interpreter is reported as "not run".

Data (generated in every child; a fingerprint shows that all children of a case saw
the same frame; generation is not timed):

* ``block_*``: :func:`make_block_panel`, a factor model: 500 units (50 treated,
  chosen at random), periods 1..40, the last 10 post;
  ``y_it = a_i + b_t + L_i' F_t + tau 1{treated, post} + e_it`` with ``a_i ~ N(0, 1)``
  (+0.5 for treated units), ``b_t = 0.05 t + 0.5 sin(t / 4)``, three factors
  ``F_t`` (random walks, step sd 0.3), loadings ``L_i ~ N(0, 1)`` (+0.7 on the
  first factor for treated units: DiD is biased, SDID reweights), ``e_it ~ N(0,
  0.5^2)`` and ``tau = 1``. ``--quick`` divides the units by 10 (50 x 40, 5 treated).
* ``prop99_placebo``: the checkout's ``diff_diff/datasets/data/prop99.csv`` (the
  file behind ``diff_diff.load_prop99()``, read with pandas so that the other
  interpreters get the same frame), ``california`` added; post periods 1989-2000.

Measuring (as ``bench_stacked_etwfe.py``): glibc's default allocator; repeats (5
for ``new``, 3 for the others, which stop early once another call would take the
case past ``--slow-budget`` seconds, shown as e.g. ``2 of 3``); the first call,
median and minimum wall time; ``tracemalloc MB`` of one extra call (skipped above
``--traced-limit`` seconds); ``RSS +MB`` the rise of the resident-set high-water
mark during the timed calls; ``max RSS MB`` the child's peak. Each table ends with
the ratios median / median and max RSS / max RSS over ``new``.

Agreement: every child returns the ATT and SE; the parent prints them and the
differences from ``new``. The point estimates solve the same Frank-Wolfe problems
with R's stopping rule: expected equal to ~1e-8 or better (observed: 1e-13 or
better). The placebo SEs coincide when the implementations draw the same
permutations from ``seed=0`` / ``random_state=0`` (observed: identical SEs), and so do
the bootstrap SEs of ``new`` and synthdid-py (the same resamples: both sort
``integers(0, N, N)`` draws; 3.13.0's bootstrap SE is close, not identical); the
jackknife SEs are deterministic.

Usage::

    python benchmarks/bench_sdid.py                        # everything
    python benchmarks/bench_sdid.py --quick                # block panel units / 10
    python benchmarks/bench_sdid.py --cases block_jackknife --impls new old
    python benchmarks/bench_sdid.py --synthdid-python /path/to/venv-synthdid/bin/python
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import zlib

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py is next to this script (also in the other venvs' children)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

SYNTHDID_VERSION = "0.1.0"
SEED = 20240611
N_UNITS, N_TREATED, N_PERIODS, N_POST = 500, 50, 40, 10
N_DRAWS = 200
PROP99_CSV = os.path.join(harness.REPO, "diff_diff", "datasets", "data", "prop99.csv")
SPEED_TARGET_OLD = 7.0  # block_placebo: old / new at least this
TARGETS = {  # case -> {impl: minimum ratio impl / new}
    "block_placebo": {"old": SPEED_TARGET_OLD, "synthdid": 1.0},
    "block_jackknife": {"old": 1.0, "synthdid": 1.0},
    "block_bootstrap": {"old": 1.0, "synthdid": 1.0},
}


@dataclasses.dataclass(frozen=True)
class _ScratchInterpreter(harness.Interpreter):
    """An interpreter also looked up under ``scratch/`` next to the checkout."""

    def candidates(self) -> tuple:
        return super().candidates() + (
            os.path.join(os.path.dirname(harness.REPO), "scratch", self.venv, "bin", "python"),)


INTERPRETERS = {
    "old": OLD_RELEASE,
    "synthdid": _ScratchInterpreter(
        "synthdid", "DIFF_DIFF_SYNTHDID_PYTHON", "venv-synthdid",
        f"synthdid-py=={SYNTHDID_VERSION}",
        f"python -m venv /work/venv-synthdid && /work/venv-synthdid/bin/pip install "
        f"synthdid-py=={SYNTHDID_VERSION}"),
}

# case -> data, variance method, title
CASES = {
    "block_placebo": dict(data="block", method="placebo",
                          title=f"placebo, {N_DRAWS} draws"),
    "block_jackknife": dict(data="block", method="jackknife", title="jackknife"),
    "block_bootstrap": dict(data="block", method="bootstrap",
                            title=f"bootstrap, {N_DRAWS} draws"),
    "prop99_placebo": dict(data="prop99", method="placebo",
                           title=f"California Prop 99, placebo, {N_DRAWS} draws"),
}
# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION}"),
    "synthdid": ("synthdid", f"synthdid-py {SYNTHDID_VERSION}"),
}
# data -> column roles (treatment: unit level; cell: treated x post, for synthdid-py)
COLUMNS = {
    "block": dict(outcome="y", treatment="treated", unit="unit", time="time", cell="d"),
    "prop99": dict(outcome="packspercapita", treatment="california", unit="state",
                   time="year", cell="treated"),
}


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def make_block_panel(n_units: int, n_treated: int, seed: int = SEED) -> pd.DataFrame:
    """The factor-model block panel (module docstring): unit, time, y, treated, d."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, N_PERIODS + 1)
    treated = np.zeros(n_units, dtype=np.int64)
    treated[rng.permutation(n_units)[:n_treated]] = 1
    a = rng.normal(0.0, 1.0, n_units) + 0.5 * treated
    b = 0.05 * t + 0.5 * np.sin(t / 4.0)
    factors = np.cumsum(rng.normal(0.0, 0.3, (N_PERIODS, 3)), axis=0)
    loadings = rng.normal(0.0, 1.0, (n_units, 3))
    loadings[:, 0] += 0.7 * treated
    post = t > N_PERIODS - N_POST
    d = np.outer(treated, post).astype(np.int64)
    y = (a[:, None] + b[None, :] + loadings @ factors.T + 1.0 * d
         + rng.normal(0.0, 0.5, (n_units, N_PERIODS)))
    return pd.DataFrame({"unit": np.repeat(np.arange(n_units), N_PERIODS),
                         "time": np.tile(t, n_units), "y": y.ravel(),
                         "treated": np.repeat(treated, N_PERIODS), "d": d.ravel()})


def load_prop99_csv() -> pd.DataFrame:
    """``diff_diff.load_prop99()`` without importing diff_diff (the same file)."""
    df = pd.read_csv(PROP99_CSV)
    df["california"] = (df["state"] == "California").astype(np.int64)
    return df


def frame_fingerprint(df: pd.DataFrame) -> str:
    """``harness.fingerprint`` with text columns replaced by the CRC-32 of each value (the
    bytes of an object array are pointers, which differ from process to process)."""
    out = df.copy()
    for col in out.columns:
        if not np.issubdtype(out[col].to_numpy().dtype, np.number):
            out[col] = np.array([zlib.crc32(str(v).encode()) for v in out[col]], dtype=np.int64)
    return harness.fingerprint(out)


def case_units(case: str, scale: int) -> int:
    return N_UNITS // scale if CASES[case]["data"] == "block" else 39


def make_data(case: str, scale: int) -> tuple:
    """(frame, post periods)."""
    if CASES[case]["data"] == "block":
        df = make_block_panel(N_UNITS // scale, N_TREATED // scale)
        return df, list(range(N_PERIODS - N_POST + 1, N_PERIODS + 1))
    return load_prop99_csv(), list(range(1989, 2001))


# ---------------------------------------------------------------------------
# the timed calls; each returns (result object, summary)
# ---------------------------------------------------------------------------
def make_call(impl: str, case: str, df: pd.DataFrame, post: list):
    """(timed call, versions)."""
    spec = CASES[case]
    cols = COLUMNS[spec["data"]]
    method = spec["method"]
    versions = harness.interpreter_versions()

    if impl in ("new", "old"):
        if impl == "new":
            diff_diff, fields = harness.checkout_package()
        else:
            diff_diff, fields = harness.old_package()
        versions.update(fields)
        kw = {k: v for k, v in cols.items() if k != "cell"}

        def call():
            res = diff_diff.SyntheticDiD(variance_method=method, n_bootstrap=N_DRAWS,
                                         seed=0).fit(df, post_periods=post, **kw)
            return res, dict(att=float(res.att), se=float(res.se))

        return call, versions

    if impl == "synthdid":
        import synthdid
        from synthdid import panel_matrices, synthdid_estimate

        versions.update(package=f"synthdid-py {SYNTHDID_VERSION}",
                        path=harness.module_dir(synthdid))

        def call():
            p = panel_matrices(df, unit=cols["unit"], time=cols["time"],
                               outcome=cols["outcome"], treatment=cols["cell"])
            tau = synthdid_estimate(p.Y, p.N0, p.T0)
            se = tau.se(method=method, replications=N_DRAWS, random_state=0)
            return tau, dict(att=float(tau), se=float(se))

        return call, versions

    raise ValueError(impl)


# ---------------------------------------------------------------------------
# child: one implementation, one case, one process
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl, case = args.child, args.case
    tag = f"[{case}/{impl}]"
    (df, post), gen_s = harness.timed(make_data, case, args.scale)
    fp = frame_fingerprint(df)
    call, versions = make_call(impl, case, df, post)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.2f} s",
          file=sys.stderr, flush=True)
    row = dict(impl=impl, case=case, n_rows=len(df), versions=versions, fingerprint=fp,
               gen_s=gen_s, error=None)
    repeats = args.repeats if impl == "new" else args.slow_repeats
    try:
        timing = harness.time_calls(
            call, repeats, budget=float("inf") if impl == "new" else args.slow_budget,
            keep=lambda out: out[1], tag=tag, warning_chars=160, squash_warnings=True)
    except Exception as exc:  # noqa: BLE001 - a peer may fail; report it, don't crash the run
        if impl == "new":
            raise
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"  {tag} failed: {text}", file=sys.stderr, flush=True)
        harness.emit_result(dict(row, error=f"failed: {text}"))
        return 0
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
def case_title(case: str, quick: bool) -> str:
    n = case_units(case, 10 if quick else 1)
    if CASES[case]["data"] == "block":
        return (f"{case}: {CASES[case]['title']}, {n} units ({N_TREATED // (10 if quick else 1)} "
                f"treated) x {N_PERIODS} periods ({N_POST} post)")
    return f"{case}: {CASES[case]['title']}, 39 states (1 treated) x 31 years (12 post)"


def print_tables(rows: dict, missing: dict, cases, impls, quick: bool) -> None:
    header = ["implementation", "repeats", "first s", "median s", "min s", "tracemalloc MB",
              "RSS +MB", "max RSS MB", "median / new", "max RSS / new"]
    for case in cases:
        body = []
        new = rows.get((case, "new"))
        for impl in impls:
            r, reason = rows.get((case, impl)), missing.get((case, impl))
            if r is None and reason is None:
                continue
            cells = [IMPLS[impl][1]]
            if r is None:
                body.append(cells + [reason] + ["-"] * 8)
                continue
            ratio = rss = "-"
            if new is not None:
                ratio = f"{r['median_s'] / new['median_s']:.2f}x"
                rss = f"{r['max_rss_mb'] / new['max_rss_mb']:.2f}x"
            body.append(cells + [harness.repeats_cell(r), f"{r['times'][0]:.3f}"]
                        + harness.timing_cells(r) + harness.memory_cells(r) + [ratio, rss])
        if not body:
            continue
        print(case_title(case, quick))
        harness.print_table(header, body, ["<"] + [">"] * 9)
        print()


def print_agreement(rows: dict, cases, impls) -> list[str]:
    notes = []
    print("agreement with new (ATT and SE):")
    for case in cases:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s = new["summary"]
        print(f"  {case}: new ATT {s['att']:.12f}  SE {s['se']:.10g}")
        for m in impls:
            r = rows.get((case, m))
            if m == "new" or r is None:
                continue
            o = r["summary"]
            print(f"    {IMPLS[m][1]:<20} ATT {o['att']:.12f}  |dATT| "
                  f"{abs(s['att'] - o['att']):.1e}  SE {o['se']:.10g}  SE new/this "
                  f"{s['se'] / o['se']:.8f}")
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{case}/{m} generated DIFFERENT data (fingerprint "
                             f"{r['fingerprint']} vs {new['fingerprint']}); its agreement "
                             "numbers are not meaningful")
    return notes


def print_verdicts(rows: dict, cases, quick: bool) -> None:
    lines = []
    for case in cases:
        new = rows.get((case, "new"))
        for impl, target in TARGETS.get(case, {}).items():
            r = rows.get((case, impl))
            if new is None or r is None:
                lines.append(f"NOT JUDGED: {case} {impl} / new (missing row)")
                continue
            ratio = r["median_s"] / new["median_s"]
            verdict = "PASS" if ratio >= target else "FAIL"
            if quick:
                verdict += " (quick run: indicative only)"
            lines.append(f"{verdict}: {case} {IMPLS[impl][1]} / new = {ratio:.2f}x "
                         f"(target >= {target:g}x, faster than it)"
                         if target == 1.0 else
                         f"{verdict}: {case} {IMPLS[impl][1]} / new = {ratio:.2f}x "
                         f"(target >= {target:g}x)")
    if lines:
        print("\nspeed targets (median / median):")
        for line in lines:
            print("  " + line)


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    harness.print_header(
        "SyntheticDiD", args.quick, "block-panel units",
        data=f"block: make_block_panel, {case_units('block_placebo', args.scale)} units x "
             f"{N_PERIODS} periods, factor model, seed {SEED}; prop99: {PROP99_CSV}",
        criteria=f"targets: block_placebo old/new >= {SPEED_TARGET_OLD:g}x and synthdid/new "
                 "> 1; block_jackknife and block_bootstrap both > 1")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "case x implementation", env, f"new {args.repeats}, others {args.slow_repeats} "
        f"(budget {args.slow_budget:g} s per case)")
    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    jobs, skipped = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons,
                                      args)
    rows, missing, failed, errors = harness.run_jobs(jobs, __file__, env, args.child_timeout)
    missing.update(skipped)
    notes += errors
    for key, r in list(rows.items()):
        if r.get("error"):
            missing[key] = r["error"][:60]
            notes.append(f"{key[0]}/{key[1]}: {r['error']}")
            del rows[key]

    load_end = harness.load_text()
    print()
    print_tables(rows, missing, cases, impls, args.quick)
    harness.print_ratios(rows, cases, {m: IMPLS[m][1] for m in impls if m != "new"})
    print()
    notes = print_agreement(rows, cases, impls) + notes
    print_verdicts(rows, cases, args.quick)

    traced_skip = f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"
    all_rows = list(rows.values())
    child = harness.child_notes(all_rows, load_end, "--slow-budget",
                                name=lambda r: f"{r['case']}/{r['impl']}",
                                call_extra=lambda r: traced_skip if r["traced_mb"] is None
                                else "")
    fps = {}
    for (case, _), r in rows.items():
        fps.setdefault(CASES[case]["data"], set()).add(r["fingerprint"])
    notes += [f"{d} data: same in every child: {'yes' if len(f) == 1 else 'NO'} (fingerprint "
              f"{', '.join(sorted(f))})" for d, f in fps.items()] + child[1:]
    return harness.finish(notes, failed, quick_scaled="block-panel units" if args.quick
                          else None, closing=[
        "timed work: the fit with its standard error (synthdid-py: panel_matrices + "
        "synthdid_estimate + se)"])


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, "3.13.0 and synthdid-py",
                                 slow_budget=240.0, child_timeout=3600.0)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
