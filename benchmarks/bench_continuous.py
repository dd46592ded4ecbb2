"""Benchmark of ``diff_diff.ContinuousDiD`` against diff-diff 3.13.0 and moderndid's
``cont_did`` (its Python port of R ``contdid``).

One case, one timed call each (the dose aggregation: ``ATT^glob``, ``ACRT^glob``,
``ATT(d)`` and ``ACRT(d)`` on 50 doses, with standard errors), the same estimand options
in all three: a cubic B-spline (``degree=3``) with one interior knot at the treated doses'
median (``num_knots=1``), never-treated comparisons, varying base period, no
anticipation, the same 50-point dose grid (the full data's treated dose range, passed
as ``dvals``; 3.13.0's default grid is another).

=====  ==============================================================================
case   call
=====  ==============================================================================
dose   ``ContinuousDiD(degree=3, num_knots=1, control_group="never_treated")``
       (3.13.0 the same; moderndid ``cont_did(degree=3, num_knots=1,
       control_group="nevertreated", aggregation="dose")``)
=====  ==============================================================================

Implementations, each in its own fresh subprocess:

* ``new``: the checkout; analytic SEs (it also computes both event studies in the
  call - they are always computed).
* ``old``: diff-diff 3.13.0 (``n_bootstrap=0``: analytic SEs), its own venv, run
  with ``-E -s`` so it cannot import the checkout: ``--old-python`` (default
  ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313`` or ``../venv313``)::

      python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0

* ``moderndid``: moderndid 0.4.1 ``cont_did`` on the same pandas frame (it converts
  to polars inside). It has no analytic SEs: every SE is a multiplier bootstrap of its
  influence functions, ``biters`` draws (its default 1000, option ``--biters``), part
  of the timed call; the analytic SE ``sqrt(sum IF^2) / n`` is computed outside the
  timing for the agreement table. ``--moderndid-python`` (default
  ``$DIFF_DIFF_MODERNDID_PYTHON``, ``benchmarks/.venv-moderndid``,
  ``../venv-moderndid`` or ``../scratch/venv-moderndid``; Python >= 3.12)::

      python3.12 -m venv /work/scratch/venv-moderndid
      /work/scratch/venv-moderndid/bin/pip install moderndid==0.4.1

Data (generated in every child from a fixed seed, not timed; a fingerprint shows that
all children saw the same frame): 50,000 units x 10 periods (500,000 rows), cohorts
first treated in 4, 6 or 8 (20% each) or never (40%); treated units draw a dose
``D ~ U(0.05, 1)`` (0 for the never treated; the column holds it in every period);
``y = a_i + 0.1 t + 1{t >= g} (0.5 D + D^2) + N(0, 1)``, ``a_i ~ N(0, 1)``. True
``ATT(d) = 0.5 d + d^2``, ``ACRT(d) = 0.5 + 2 d``.

Measuring (as the other ``bench_*`` scripts): one untimed warm-up call on the first
1,000 units in every child; repeats (``--repeats`` for new, ``--slow-repeats`` for the
others, which stop early once another call would pass ``--slow-budget``); medians and
minima; ``tracemalloc MB`` the peak of one extra call (skipped above
``--traced-limit`` s), ``RSS +MB`` the rise of the resident-set high-water mark during
the timed calls, ``max RSS MB`` the child's peak. Use ``--threads 1``: under load,
OpenBLAS's two-thread products on skinny matrices slow every numpy implementation down
by 3-5x (the checkout's fit 0.95 s with one thread, 4.7 s with two on a loaded machine).

Agreement: ``ATT^glob`` and ``ACRT^glob`` and their SEs, and the largest differences
of the ``ATT(d)`` / ``ACRT(d)`` curves, each against ``new``. Expected: estimates equal
to ~1e-10 or better (all three fit the same spline); analytic SEs: ``new`` = sqrt(n/(n -
1)) x moderndid's analytic SE (its reported SE is a bootstrap: Monte Carlo noise of
~2-3%); 3.13.0's ``ACRT^glob`` SE is smaller than ours since it leaves out the
estimation of the cohort weights and of the average spline derivative (issue 12).

Usage::

    python benchmarks/bench_continuous.py --threads 1         # everything, ~8 min
    python benchmarks/bench_continuous.py --quick --threads 1  # units / 10
    python benchmarks/bench_continuous.py --impls new moderndid --repeats 9
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import statistics
import sys
import warnings

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also for the other venvs)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

MODERNDID_VERSION = "0.4.1"
N_UNITS, N_PERIODS = 50_000, 10
COHORTS = (4, 6, 8)
COHORT_PROBS = (0.40, 0.20, 0.20, 0.20)  # never, then COHORTS
SEED = 20261206
WARMUP_UNITS = 1_000
TRACED_LIMIT = 45.0  # s; moderndid (~25-30 s here) gets its tracemalloc call, 3.13.0 not
SPEC = dict(degree=3, num_knots=1)


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
        "python3.12 -m venv /work/scratch/venv-moderndid && "
        f"/work/scratch/venv-moderndid/bin/pip install moderndid=={MODERNDID_VERSION}"),
}
CASES = {"dose": dict(label="cubic, 1 knot, never treated")}
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION}"),
    "moderndid": ("moderndid", f"moderndid {MODERNDID_VERSION}"),
}


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def make_panel(n_units: int, seed: int = SEED) -> pd.DataFrame:
    """Balanced long panel with staggered adoption and continuous doses (module docstring)."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array((0,) + COHORTS), size=n_units, p=COHORT_PROBS)
    dose = np.where(g > 0, rng.uniform(0.05, 1.0, n_units), 0.0)
    t = np.arange(1, N_PERIODS + 1)
    post = (g[:, None] > 0) & (t[None, :] >= g[:, None])
    y = (rng.normal(0.0, 1.0, n_units)[:, None] + 0.1 * t[None, :]
         + post * (0.5 * dose + dose ** 2)[:, None]
         + rng.normal(0.0, 1.0, (n_units, N_PERIODS)))
    return pd.DataFrame({
        "unit": np.repeat(np.arange(1, n_units + 1), N_PERIODS),
        "time": np.tile(t, n_units),
        "y": y.ravel(),
        "first_treat": np.repeat(g, N_PERIODS),
        "dose": np.repeat(dose, N_PERIODS),
    })


# ---------------------------------------------------------------------------
# the timed calls; each returns (result, summary)
# ---------------------------------------------------------------------------
def _floats(values) -> list:
    return [float(v) for v in np.ravel(np.asarray(values, dtype=float))]


def _summary(att, att_se, acrt, acrt_se, grid, att_d, acrt_d, **extra) -> dict:
    return dict(att=float(att), att_se=float(att_se), acrt=float(acrt),
                acrt_se=float(acrt_se), grid=_floats(grid), att_d=_floats(att_d),
                acrt_d=_floats(acrt_d), **extra)


def dose_grid(frame: pd.DataFrame) -> np.ndarray:
    """The common dose grid: 50 points over the treated doses' range (moderndid's and the
    checkout's default; 3.13.0's default differs, so every call gets this one)."""
    treated = frame.loc[frame["first_treat"] > 0, "dose"].to_numpy()
    return np.linspace(treated.min(), treated.max(), 50)


def make_calls(impl: str, biters: int, grid: np.ndarray):
    """``run(frame) -> (result, summary)`` and the versions of the child."""
    versions = harness.interpreter_versions()
    cols = ("y", "unit", "time", "first_treat", "dose")
    if impl == "moderndid":
        from importlib.metadata import version

        import moderndid

        versions.update(package=f"moderndid {version('moderndid')}",
                        path=harness.module_dir(moderndid), polars=version("polars"))

        def run(frame):
            res = moderndid.cont_did(frame, yname="y", tname="time", idname="unit",
                                     gname="first_treat", dname="dose",
                                     control_group="nevertreated", aggregation="dose",
                                     biters=biters, random_state=1, dvals=grid, **SPEC)
            n = len(res.overall_att_inf_func)
            return res, _summary(res.overall_att, res.overall_att_se, res.overall_acrt,
                                 res.overall_acrt_se, res.dose, res.att_d, res.acrt_d,
                                 n=n)

        def analytic(res):  # outside the timing: its SEs are a bootstrap
            n = len(res.overall_att_inf_func)
            return dict(att_se_analytic=float(np.sqrt(np.sum(res.overall_att_inf_func ** 2))
                                              / n),
                        acrt_se_analytic=float(np.sqrt(np.sum(res.overall_acrt_inf_func ** 2))
                                               / n))

        return run, analytic, versions
    versions.update((harness.checkout_package() if impl == "new" else harness.old_package())[1])
    from diff_diff import ContinuousDiD  # the checkout's or 3.13.0's

    def run(frame):
        res = ContinuousDiD(control_group="never_treated", dvals=grid, **SPEC).fit(frame,
                                                                                  *cols)
        if impl == "new":
            att = res.dose_response_att
            acrt = res.dose_response_acrt
            return res, _summary(res.att, res.se, res.acrt, res.acrt_se, res.dose_grid,
                                 att["estimate"], acrt["estimate"])
        return res, _summary(res.overall_att, res.overall_att_se, res.overall_acrt,
                             res.overall_acrt_se, res.dose_grid,
                             res.dose_response_att.effects, res.dose_response_acrt.effects)

    return run, None, versions


# ---------------------------------------------------------------------------
# child
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl, case = args.child, args.case
    n_units = N_UNITS // args.scale
    tag = f"[{case}/{impl}]"
    df, gen_s = harness.timed(make_panel, n_units)
    fp = harness.fingerprint(df)
    run, analytic, versions = make_calls(impl, args.biters, dose_grid(df))
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)
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
    summary = dict(timing.kept)
    if analytic is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary.update(analytic(call()[0]))
    median = statistics.median(timing.times)
    traced_mb = harness.traced_peak_mb(call) if median <= args.traced_limit else None
    row = dict(impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
               fingerprint=fp, gen_s=gen_s, warm_s=warm_s, repeats_asked=repeats,
               **timing.fields(traced_mb), warnings=timing.warnings, summary=summary,
               load=timing.load)
    harness.print_summary(tag, row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def print_table(rows: dict, missing: list) -> None:
    header = ["case", "call", "implementation", "repeats", "median s", "min s",
              "tracemalloc MB", "RSS +MB", "max RSS MB"]
    impl_order = {m: i for i, m in enumerate(IMPLS)}
    entries = [(r["case"], r["impl"], r, None) for r in rows.values()]
    entries += [(c, m, None, reason) for c, m, reason in missing]
    entries.sort(key=lambda e: impl_order[e[1]])
    body = []
    for case, impl, r, reason in entries:
        if r is None:
            body.append([case, CASES[case]["label"], IMPLS[impl][1]] + ["-"] * 5
                        + [reason])
            continue
        body.append([case, CASES[case]["label"], IMPLS[impl][1], harness.repeats_cell(r)]
                    + harness.timing_cells(r) + harness.memory_cells(r))
    harness.print_table(header, body, ["<", "<", "<"] + [">"] * 6,
                        groups=[case for case, *_ in entries])


def print_agreement(rows: dict) -> list:
    notes = []
    new = rows.get(("dose", "new"))
    if new is None:
        return notes
    s = new["summary"]
    n = new["n_units"]
    scale = math.sqrt(n / (n - 1))
    print("agreement with new (ATT_glob, ACRT_glob, their SEs; the curves on the grid):")
    print(f"  new: ATT_glob {s['att']:.12f} (SE {s['att_se']:.6g})  ACRT_glob "
          f"{s['acrt']:.12f} (SE {s['acrt_se']:.6g})  [truth ACRT_glob ~ 0.5 + 2 E[D] = "
          f"{0.5 + 2 * 0.525:.3f}]")
    for impl in ("old", "moderndid"):
        row = rows.get(("dose", impl))
        if row is None:
            continue
        o = row["summary"]
        d_grid = max(abs(a - b) for a, b in zip(s["grid"], o["grid"]))
        d_att_d = max(abs(a - b) for a, b in zip(s["att_d"], o["att_d"]))
        d_acrt_d = max(abs(a - b) for a, b in zip(s["acrt_d"], o["acrt_d"]))
        print(f"  {IMPLS[impl][1]}: |dATT_glob| {abs(s['att'] - o['att']):.2e}  |dACRT_glob| "
              f"{abs(s['acrt'] - o['acrt']):.2e}  max|d grid| {d_grid:.1e}  max|dATT(d)| "
              f"{d_att_d:.2e}  max|dACRT(d)| {d_acrt_d:.2e}")
        print(f"    SE ratio new/{impl}: ATT_glob {s['att_se'] / o['att_se']:.6f}  ACRT_glob "
              f"{s['acrt_se'] / o['acrt_se']:.6f}" + (
                  "  (reported SEs are its bootstrap)" if impl == "moderndid" else ""))
        if "att_se_analytic" in o:
            print(f"    vs its analytic SEs sqrt(sum IF^2)/n, divided by sqrt(n/(n-1)) = "
                  f"{scale:.7f}: ATT_glob {s['att_se'] / o['att_se_analytic'] / scale:.12f}  "
                  f"ACRT_glob {s['acrt_se'] / o['acrt_se_analytic'] / scale:.12f}")
        if row["fingerprint"] != new["fingerprint"]:
            notes.append(f"dose/{impl} generated DIFFERENT data; its agreement numbers are "
                         "not meaningful")
    print(f"  expected: estimates equal (same spline); SE ratios sqrt(n/(n-1)) = {scale:.7f} "
          f"to moderndid's analytic SEs; {OLD_VERSION}'s ACRT_glob SE leaves out the cohort "
          "weights' and the average derivative's estimation (smaller)")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    harness.print_header(
        "ContinuousDiD", args.quick, "units",
        data=f"{n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows, cohorts "
             f"{', '.join(map(str, COHORTS))} (20% each) + never treated (40%), doses "
             f"U(0.05, 1), seed {SEED}; moderndid biters {args.biters}")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "case x implementation", env, f"new {args.repeats}, others {args.slow_repeats} "
        f"(budget {args.slow_budget:g} s per case)")
    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    jobs, _ = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons, args,
                                extra=lambda case, impl: ("--biters", str(args.biters)))
    rows, missing, failed, errors = harness.run_jobs(jobs, __file__, env, args.child_timeout)
    notes += errors
    load_end = harness.load_text()
    print()
    print_table(rows, [(c, m, reason) for (c, m), reason in missing.items()])
    print()
    harness.print_ratios(rows, cases, {m: IMPLS[m][1].split(":")[-1].strip()
                                       for m in impls if m != "new"})
    print()
    notes = print_agreement(rows) + notes
    notes += harness.child_notes(list(rows.values()), load_end, "--slow-budget",
                                 name=lambda r: f"{r['case']}/{r['impl']}")
    return harness.finish(notes, failed, quick_scaled="units" if args.quick else None)


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS,
                                 f"{OLD_VERSION} and moderndid", slow_budget=300.0,
                                 child_timeout=1800.0)
    parser.add_argument("--biters", type=int, default=1000,
                        help="moderndid's bootstrap draws (its SEs; default 1000, its own)")
    parser.set_defaults(traced_limit=TRACED_LIMIT)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
