"""Benchmark of ``diff_diff.TwoWayFixedEffects`` against 3.13.0 and ``pyfixest``.

Acceptance criterion (regression-family issue): TWFE (unit + time fixed
effects, 50,000 units x 20 periods = 1,000,000 rows, clustered by unit) under
0.5 s median; the earlier 3.13 release and ``pyfixest`` are shown side by side
in the same run.

Implementations, each in its own fresh subprocess and interpreter:

* ``new``: the checkout (current interpreter)::

      res = TwoWayFixedEffects().fit(df, outcome="y", treatment="d", unit="unit",
                                     time="period")
      res.att, res.se

  Unit and period effects absorbed, CR1 clustered by unit (the default).
* ``old``: diff-diff 3.13.0's ``TwoWayFixedEffects``. Its static ``fit`` is
  ``fit(data, outcome, treatment, post, unit)``: ``treatment`` is the
  ever-treated group indicator, ``post`` a 0/1 post indicator, the regressor
  is ``treatment * post`` and the absorbed "time" effects are the two levels
  of ``post`` (``time=`` is a deprecated alias of ``post``: passing the
  calendar period there warns and fits ``treatment * period``). So the
  nearest 3.13.0 TWFE call is::

      TwoWayFixedEffects().fit(df, outcome="y", treatment="treated", post="post",
                               unit="unit")

  clustered by unit by default. On this balanced, common-adoption panel its
  point estimate equals the unit + period TWFE coefficient exactly (the
  residualized regressor is ``(D_i - mean D)(post_t - mean post)`` either way),
  but the period effects are not absorbed (only pre/post), so its residuals and
  SE belong to a different model.
* ``old_absorb``: the same unit + period model in 3.13.0, through
  ``DifferenceInDifferences(cluster="unit").fit(df, outcome="y",
  treatment="treated", post="post", absorb=["unit", "period"])`` (the group
  and post main effects are absorbed and dropped as collinear).
* ``pyfixest``::

      fit = pyfixest.feols("y ~ d | unit + period", data=df, vcov={"CRV1": "unit"})
      fit.coef()["d"], fit.se()["d"]

  pyfixest's defaults: the Rust alternating-projections demeaner
  (``MapDemeaner(fixef_tol=1e-06, backend="rust")`` in 0.60) and ``ssc()``.

The old release and pyfixest run under their own interpreters (``-E -s``, so
``PYTHONPATH`` cannot make them import the checkout): ``--old-python``
(default ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python``, or
``venv313`` next to the checkout) and ``--pyfixest-python`` (default
``$DIFF_DIFF_PYFIXEST_PYTHON``, ``benchmarks/.venv_pyfixest/bin/python`` or
``venv_pyfixest`` next to the checkout)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0
    python -m venv /work/venv_pyfixest && /work/venv_pyfixest/bin/pip install pyfixest

An implementation without an interpreter is reported as "not run".

Data (generated in every child from a fixed seed; a fingerprint shows that all
children saw the same frame; generation is not timed): unit ids 1..50,000,
periods 1..20, one row per unit and period sorted by unit then period. Half of
the units (a seeded random half) are treated from period 11 on, all at once
(no staggering). ``y = a_i + b_t + 1.0 d_it + e_it`` with unit effects
``N(0, 1)`` shifted by 0.5 for the treated units, period effects
``0.1 t + N(0, 0.2^2)`` and AR(1) errors within unit (rho 0.5, innovations
``N(0, 1)``), so clustering by unit matters. Columns: ``unit``, ``period``,
``y``, ``d`` (unit-period treatment status), ``treated`` (ever treated),
``post`` (period >= 11).

Measuring (as ``bench_cs.py``): glibc's default allocator, as users run it
(``--mmap-threshold N`` sets ``MALLOC_MMAP_THRESHOLD_=N`` instead); repeats
(5 for every implementation; the first call, which includes one-off costs
such as lazy imports, is shown separately and counts in the median);
median and minimum wall time, the verdict on the median. ``tracemalloc MB`` is
the peak of one extra call under ``tracemalloc`` (the call's own working
memory, the input frame excluded; memory allocated outside Python's allocators,
e.g. in pyfixest's Rust demeaner, is invisible to it), ``RSS +MB`` the rise of the
resident-set high-water mark during the timed calls, ``max RSS MB`` the
child's total peak. Memory is information only (the criterion is time).

Agreement: every child returns the coefficient and SE; the parent prints them
with the differences from ``new``. Point estimates should agree to ~1e-10.
SEs differ by small-sample conventions: ``new`` multiplies the CR1 sandwich by
``G/(G-1) (n-1)/(n-k)`` with ``k`` counting every absorbed effect as the dummy
regression does (R ``estimatr`` "stata"): intercept, ``d``, ``N-1`` unit and
``T-1`` period dummies, ``k = N + T``. pyfixest's default
``ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min")`` (fixest's
``fixef.K = "nested"``) drops the fixed effects nested in the cluster variable
(the unit effects, when clustering by unit) and adds one back for the fully
nested dimension, so ``k = 1 + (N + T - 1) - N + 1 = T + 1`` (its ``_df_k``),
and the ratio new / pyfixest is ``sqrt((n-T-1)/(n-N-T))`` (1.025978 here).
3.13.0's CR1 uses the same nested count (its ``absorbed_fe_cr1_k_increment``),
so ``old_absorb`` should equal pyfixest's SE. The parent prints the expected
ratios next to the observed ones.

The 1-minute load average after each child's timed calls is printed: on a
shared machine other processes inflate and scatter the times (``--threads 1``
sets ``OMP/OPENBLAS/MKL/RAYON_NUM_THREADS`` in every child; RAYON also
governs pyfixest's Rust core).

Usage::

    python benchmarks/bench_twfe.py                     # all four, ~40 s
    python benchmarks/bench_twfe.py --quick             # units / 10, ~20 s
    python benchmarks/bench_twfe.py --impls new old pyfixest --repeats 9
    python benchmarks/bench_twfe.py --mmap-threshold 1048576 --threads 1
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also in the other venvs' children)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

# Interpreters of the other implementations.
INTERPRETERS = {
    "old": OLD_RELEASE,
    "pyfixest": harness.Interpreter(
        "pyfixest", "DIFF_DIFF_PYFIXEST_PYTHON", "venv_pyfixest", "pyfixest",
        "python -m venv /work/venv_pyfixest && /work/venv_pyfixest/bin/pip install pyfixest"),
}

# Full size (``--quick`` divides the units by 10).
N_UNITS, N_PERIODS = 50_000, 20
ADOPTION = 11  # first treated period (half of the units, all at once)
EFFECT = 1.0
RHO = 0.5
SEED = 20240918
LIMIT_S = 0.5

# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION} TWFE (unit+post FE)"),
    "old_absorb": ("old", f"old: {OLD_VERSION} DiD absorb=unit,period"),
    "pyfixest": ("pyfixest", "pyfixest feols"),
}


# ---------------------------------------------------------------------------
# data (shared by every implementation: plain numpy/pandas, fixed seed)
# ---------------------------------------------------------------------------
def make_panel(n_units: int, n_periods: int = N_PERIODS, seed: int = SEED) -> pd.DataFrame:
    """Balanced long panel, half of the units treated from ``ADOPTION`` on."""
    rng = np.random.default_rng(seed)
    treated = np.zeros(n_units, dtype=np.int64)
    treated[rng.permutation(n_units)[: n_units // 2]] = 1
    t = np.arange(1, n_periods + 1)
    post = (t >= ADOPTION).astype(np.int64)
    unit_effect = rng.normal(0.0, 1.0, n_units) + 0.5 * treated
    period_effect = 0.1 * t + rng.normal(0.0, 0.2, n_periods)
    err = rng.normal(0.0, 1.0, (n_units, n_periods))
    for j in range(1, n_periods):  # AR(1) within unit
        err[:, j] += RHO * err[:, j - 1]
    d = treated[:, None] * post[None, :]
    y = unit_effect[:, None] + period_effect[None, :] + EFFECT * d + err
    return pd.DataFrame({
        "unit": np.repeat(np.arange(1, n_units + 1), n_periods),
        "period": np.tile(t, n_units),
        "y": y.ravel(),
        "d": d.ravel(),
        "treated": np.repeat(treated, n_periods),
        "post": np.tile(post, n_units),
    })


# ---------------------------------------------------------------------------
# the timed calls; each returns (result object, {"coef", "se"})
# ---------------------------------------------------------------------------
def _summary(coef, se) -> dict:
    return dict(coef=float(coef), se=float(se))


def make_call(impl: str, df: pd.DataFrame):
    """(timed call, versions)."""
    versions = harness.interpreter_versions()

    if impl == "new":
        versions.update(harness.checkout_package()[1])
        from diff_diff import TwoWayFixedEffects

        def call():
            res = TwoWayFixedEffects().fit(df, outcome="y", treatment="d", unit="unit",
                                           time="period")
            return res, _summary(res.att, res.se)

        return call, versions

    if impl in ("old", "old_absorb"):
        versions.update(harness.old_package()[1])
        if impl == "old":
            from diff_diff import TwoWayFixedEffects

            def call():
                res = TwoWayFixedEffects().fit(df, outcome="y", treatment="treated",
                                               post="post", unit="unit")
                return res, _summary(res.att, res.se)
        else:
            from diff_diff import DifferenceInDifferences

            def call():
                res = DifferenceInDifferences(cluster="unit").fit(
                    df, outcome="y", treatment="treated", post="post",
                    absorb=["unit", "period"])
                return res, _summary(res.att, res.se)

        return call, versions

    if impl == "pyfixest":
        import pyfixest

        versions.update(package=f"pyfixest {pyfixest.__version__}",
                        path=harness.module_dir(pyfixest))
        # the documented defaults that decide the SE and the demeaning
        versions["ssc_defaults"] = str(inspect.signature(pyfixest.ssc))
        feols_params = inspect.signature(pyfixest.feols).parameters
        defaults = [f"{name}={feols_params[name].default!r}"
                    for name in ("ssc", "demeaner", "fixef_tol", "demeaner_backend")
                    if name in feols_params]
        try:
            from pyfixest.demeaners import MapDemeaner

            defaults.append(f"default demeaner {MapDemeaner()!r}")
        except ImportError:  # releases before the typed demeaners
            pass
        versions["feols_defaults"] = ", ".join(defaults)

        def call():
            fit = pyfixest.feols("y ~ d | unit + period", data=df, vcov={"CRV1": "unit"})
            out = _summary(fit.coef()["d"], fit.se()["d"])
            out["df_k"] = int(getattr(fit, "_df_k", -1))  # the k of its (n-1)/(n-k)
            return fit, out

        return call, versions

    raise ValueError(impl)


# ---------------------------------------------------------------------------
# child: one implementation, one process
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl = args.child
    n_units = N_UNITS // args.scale
    tag = f"[{impl}]"
    df, gen_s = harness.timed(make_panel, n_units)
    fp = harness.fingerprint(df)
    call, versions = make_call(impl, df)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)

    timing = harness.time_calls(call, args.repeats, budget=args.budget, keep=lambda out: out[1],
                                tag=tag, warning_chars=200, squash_warnings=True)
    traced_mb = harness.traced_peak_mb(call)
    row = dict(
        impl=impl, n_units=n_units, n_periods=N_PERIODS, n_rows=len(df), versions=versions,
        fingerprint=fp, gen_s=gen_s, repeats_asked=args.repeats, **timing.fields(traced_mb),
        warnings=timing.warnings, summary=timing.kept, load=timing.load,
    )
    harness.print_summary(tag, row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def run_children(impls, pythons, args, env) -> tuple:
    """Every implementation in its own child: rows by impl, missing, failed, errors."""
    jobs = []
    for impl in impls:
        key = IMPLS[impl][0]
        child_args = ["--child", impl, "--repeats", str(args.repeats),
                      "--budget", str(args.budget)] + (["--quick"] if args.quick else [])
        jobs.append(harness.Job(key=impl, tag=impl,
                                python=sys.executable if key is None else pythons.get(key),
                                args=child_args, isolated=impl != "new"))
    return harness.run_jobs(jobs, __file__, env, args.child_timeout)


def verdict(row: dict, quick: bool) -> str:
    text = "PASS" if row["median_s"] < LIMIT_S else "FAIL"
    return text + (" [quick]" if quick else "")


def print_table(rows: dict, missing: dict, quick: bool) -> None:
    header = ["implementation", "repeats", "first s", "median s", "min s", "tracemalloc MB",
              "RSS +MB", "max RSS MB", f"median < {LIMIT_S:g} s"]
    body = []
    for impl in IMPLS:
        label = IMPLS[impl][1]
        r = rows.get(impl)
        if r is None:
            if impl in missing:
                body.append([label] + ["-"] * 7 + [missing[impl]])
            continue
        body.append([label, harness.repeats_cell(r), f"{r['times'][0]:.3f}"]
                    + harness.timing_cells(r) + harness.memory_cells(r) + [verdict(r, quick)])
    harness.print_table(header, body, ["<"] + [">"] * 7 + ["<"])


def print_ratios(rows: dict) -> None:
    """Median (and min) time of each other implementation over ``new``, from this run."""
    new = rows.get("new")
    if new is None:
        return
    print("ratio of median times, this run (min/min in parentheses):")
    for impl in IMPLS:
        r = rows.get(impl)
        if impl == "new" or r is None:
            continue
        print(f"  {IMPLS[impl][1] + ' / new':<44} {r['median_s'] / new['median_s']:5.2f}x  "
              f"(min {r['min_s'] / new['min_s']:.2f}x)")


def expected_se_ratio(impl: str, n_units: int, n_periods: int) -> tuple[float | None, str]:
    """new SE / this SE from the small-sample conventions alone (None: different model)."""
    n = n_units * n_periods
    k_new = n_units + n_periods  # intercept + d + (N-1) unit + (T-1) period dummies
    if impl in ("pyfixest", "old_absorb"):
        # d + one constant + (T-1) period effects; the unit effects are nested in the cluster
        k_nested = n_periods + 1
        return (math.sqrt((n - k_nested) / (n - k_new)),
                f"sqrt((n-T-1)/(n-N-T)) = sqrt(({n}-{k_nested})/({n}-{k_new}))")
    return None, "different model (period effects not absorbed): SEs not comparable"


def print_agreement(rows: dict) -> list[str]:
    notes = []
    new = rows.get("new")
    print(f"agreement (true effect {EFFECT:g}):")
    for impl in IMPLS:
        r = rows.get(impl)
        if r is None:
            continue
        s = r["summary"]
        text = f"  {IMPLS[impl][1]:<40} coef {s['coef']:.12f}  SE {s['se']:.9f}"
        if s.get("df_k") is not None:
            text += f" (its k = {s['df_k']})"
        if new is not None and impl != "new":
            n0 = new["summary"]
            ratio = n0["se"] / s["se"]
            exp, how = expected_se_ratio(impl, r["n_units"], r["n_periods"])
            text += f"  |dcoef| {abs(n0['coef'] - s['coef']):.2e}  SE new/this {ratio:.6f}"
            if exp is not None:
                text += f" (expected {exp:.6f} = {how}; off by {abs(ratio / exp - 1):.1e})"
            else:
                text += f" ({how})"
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{impl} generated DIFFERENT data (fingerprint {r['fingerprint']} vs "
                             f"{new['fingerprint']}); its agreement numbers are not meaningful")
        print(text)
    return notes


def run_parent(args) -> int:
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    harness.print_header(
        "TwoWayFixedEffects", args.quick, "units",
        data=f"{n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows, half "
             f"treated from period {ADOPTION} (no staggering), effect {EFFECT:g}, AR(1) errors "
             f"rho {RHO:g}, seed {SEED}",
        criteria=f"criterion: unit + time FE, CR1 by unit, median < {LIMIT_S:g} s")
    env = harness.child_environment(args.mmap_threshold, args.threads, override=True)
    harness.print_children_setup("implementation", env,
                                 f"{args.repeats} (budget {args.budget:g} s each)")

    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    rows, missing, failed, errors = run_children(impls, pythons, args, env)
    notes += errors

    load_end = harness.load_text()
    print()
    print_table(rows, missing, args.quick)
    print()
    print_ratios(rows)
    print()
    notes = print_agreement(rows) + notes

    def ssc_notes(r):
        v = r["versions"]
        if "ssc_defaults" not in v:
            return []
        return [f"{r['impl']}: ssc{v['ssc_defaults']}; feols defaults {v['feols_defaults']}"]

    notes += harness.child_notes(list(rows.values()), load_end, "--budget",
                                 name=lambda r: r["impl"], impl_notes=ssc_notes)
    return harness.finish(notes, failed, quick_scaled="units" if args.quick else None, closing=(
        f"verdict: median time of the call < {LIMIT_S:g} s, printed for every implementation; "
        "the criterion is judged on new. 'first s' is the first call (counted in the median)",
        "old (3.13.0 TwoWayFixedEffects) absorbs unit and pre/post effects, not the 20 period "
        "effects: same coefficient here, different residuals and SE; old_absorb is 3.13.0's "
        "unit + period model"))


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__, "units / 10 (smoke run)")
    harness.add_impl_options(parser, IMPLS, INTERPRETERS)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per implementation")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="stop the repeats once another call would pass this many seconds")
    harness.add_child_options(parser, child_timeout=900.0)
    parser.add_argument("--child", choices=list(IMPLS), help=argparse.SUPPRESS)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
