"""Benchmark of ``diff_diff.CallawaySantAnna`` against 3.13.0 and the PyPI port ``csdid``.

Acceptance criteria (CallawaySantAnna issue): on a balanced panel of 50,000
units x 20 periods (1,000,000 rows), staggered adoption with 4 treated cohorts
plus never-treated units, "ATT(g,t) + simple + event-study aggregation with
analytic SEs" in under 0.15 s with ``estimation_method="reg"`` and under
0.5 s with ``"dr"`` (medians); with a 999-draw multiplier bootstrap under 1 s;
peak memory under 600 MB.

Cases (one timed call each; the issue does not say whether covariates are
included, so the criteria are judged on the rows without covariates and the
covariate rows are information):

=========  ======================================  =============================
case       call                                    criterion
=========  ======================================  =============================
reg        ``reg``, no covariates, analytic SEs    reg < 0.15 s, < 600 MB
dr         ``dr``, no covariates, analytic SEs     dr < 0.5 s, < 600 MB
reg_x      ``reg`` with covariate ``x``            information (reg row)
dr_x       ``dr`` with covariate ``x``             information (dr row)
boot       ``dr``, no covariates, 999 draws        bootstrap < 1 s, < 600 MB
=========  ======================================  =============================

Implementations, each case in its own fresh subprocess:

* ``new``: the checkout (current interpreter)::

      res = CallawaySantAnna(estimation_method=m, n_bootstrap=B, seed=1).fit(
          df, outcome="y", unit="unit", time="period", first_treat="first_treat",
          covariates=cov)
      res.overall_att, res.overall_se, res.event_study_effects   # lazy: touched in the call

  The group-time SEs (``res.group_time_effects``, also lazy) are not part of
  the judged call; their extra cost is timed separately (column ``+gt s``).
  3.13.0 and csdid compute them inside ``fit``.
* ``old``: diff-diff 3.13.0 through its current API: ``fit(...)`` (ATT(g,t) and
  the simple aggregation are computed eagerly) then
  ``res.aggregate("event_study")``. With the bootstrap, ``aggregate()``
  replays the fit's multiplier bootstrap (a second pass over the draws).
* ``old_fitagg``: 3.13.0 through the deprecated one-pass route
  ``fit(..., aggregate="event_study")`` (a single bootstrap covers every
  level; the DeprecationWarning is expected).
* ``csdid``: csdid 0.4.3 (port of R ``did``): ``ATTgt(...)`` (preprocessing),
  ``.fit(est_method=m, bstrap=...)``, ``.aggte("simple")`` and
  ``.aggte("dynamic")``; analytic SEs, or ``biters=999`` with ``cband=True``
  for the bootstrap case. Its console output goes to a StringIO (inside the
  timed call).

The old release and csdid run under their own interpreters (``-E -s``, so
``PYTHONPATH`` cannot make them import the checkout): ``--old-python``
(default ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python``, or
``venv313`` next to the checkout) and ``--ports-python`` (default
``$DIFF_DIFF_PORTS_PYTHON``, ``benchmarks/.venv_ports/bin/python`` or
``venv_ports`` next to the checkout)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0
    python -m venv /work/venv_ports && /work/venv_ports/bin/pip install csdid==0.4.3

An implementation without an interpreter is reported as "not run".

Data (generated in every child from a fixed seed; a fingerprint shows that all
children saw the same frame; generation is not timed): unit ids 1..50,000,
periods 1..20, one row per unit and period sorted by unit then period. A
time-invariant covariate ``x ~ N(0, 1)``; cohorts first treated in 5, 9, 13
or 17 (about 15% each, more likely for larger ``x``) or never (``0``, about
40%). ``y = a_i + b_t + 0.02 t x_i + effect + N(0, 1)`` with a unit effect
correlated with ``x``, period effects, an ``x``-specific trend (so the
covariate matters) and a true effect ``1 + 0.05 e`` at event time ``e >= 0``.

Measuring: glibc's default allocator, as users run it (``--mmap-threshold N``
sets ``MALLOC_MMAP_THRESHOLD_=N`` as ``bench_aggregate.py`` does, so that every
freed buffer over N bytes goes back to the system and each call page-faults
its temporaries afresh: with 1048576 this adds roughly 0.1 s to the reg call
and 0.3 s to the bootstrap here; memory is judged on ``tracemalloc``, which
does not depend on the allocator);
repeats (5 for ``new``, 3 for the others; the others stop early once another
call would take the case past ``--slow-budget`` seconds, shown as e.g.
``2 of 3``); the median and minimum wall time, the verdict on the median.
``tracemalloc MB`` is the peak of one extra call under ``tracemalloc`` (the
call's own working memory, the input frame excluded; skipped when the median
is above ``--traced-limit`` seconds), ``RSS +MB`` the rise of the resident-set
high-water mark during the timed calls, ``max RSS MB`` the child's total peak.
The memory criterion uses the larger of the two.

Agreement: every child returns the overall ATT and SE and the event-study
estimates and SEs; the parent prints the differences from ``new``. Without
covariates all estimates should agree to ~1e-12; analytic SEs differ by
diff_diff's small-sample factor sqrt(n/(n-1)) (1.00001 here); bootstrap SEs
differ by Monte Carlo noise (different draws).

The 1-minute load average after each child's timed calls is printed: on a
shared machine other processes inflate and scatter the times (multithreaded
BLAS suffers most; ``--threads 1`` sets ``OMP/OPENBLAS/MKL/RAYON_NUM_THREADS``
in every child).

Usage::

    python benchmarks/bench_cs.py                   # everything, ~6 min
    python benchmarks/bench_cs.py --quick           # units / 10, ~2 min
    python benchmarks/bench_cs.py --impls new old   # skip the deprecated route and csdid
    python benchmarks/bench_cs.py --cases reg dr boot --repeats 9
    python benchmarks/bench_cs.py --mmap-threshold 1048576 --threads 1
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
import os
import statistics
import sys
import warnings

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also in the other venvs' children)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

CSDID_VERSION = "0.4.3"

# Interpreters of the other implementations.
INTERPRETERS = {
    "old": OLD_RELEASE,
    "ports": harness.Interpreter(
        "ports", "DIFF_DIFF_PORTS_PYTHON", "venv_ports", f"csdid=={CSDID_VERSION}",
        f"python -m venv /work/venv_ports && /work/venv_ports/bin/pip install "
        f"csdid=={CSDID_VERSION}"),
}

# Full size (``--quick`` divides the units by 10).
N_UNITS, N_PERIODS = 50_000, 20
COHORTS = (5, 9, 13, 17)
SEED = 20240917
N_BOOT = 999
MEMORY_LIMIT_MB = 600.0

# case -> method, covariates, bootstrap draws, judged?, criterion (seconds), criterion label
CASES = {
    "reg": dict(method="reg", covariates=None, n_boot=0, judged=True, limit=0.15,
                label="reg analytic <0.15s"),
    "dr": dict(method="dr", covariates=None, n_boot=0, judged=True, limit=0.5,
               label="dr analytic <0.5s"),
    "reg_x": dict(method="reg", covariates=["x"], n_boot=0, judged=False, limit=0.15,
                  label="info (reg row, <0.15s)"),
    "dr_x": dict(method="dr", covariates=["x"], n_boot=0, judged=False, limit=0.5,
                 label="info (dr row, <0.5s)"),
    "boot": dict(method="dr", covariates=None, n_boot=N_BOOT, judged=True, limit=1.0,
                 label=f"bootstrap {N_BOOT} <1s"),
}
# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION} fit+aggregate()"),
    "old_fitagg": ("old", f"old: {OLD_VERSION} fit(aggregate=)"),
    "csdid": ("ports", f"csdid {CSDID_VERSION}"),
}


# ---------------------------------------------------------------------------
# data (shared by every implementation: plain numpy/pandas, fixed seed)
# ---------------------------------------------------------------------------
def make_panel(n_units: int, n_periods: int = N_PERIODS, seed: int = SEED) -> pd.DataFrame:
    """Balanced long panel with staggered adoption; see the module docstring."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n_units)
    # multinomial logit over (never, 5, 9, 13, 17): never ~40%, each cohort ~15%,
    # later cohorts more likely for larger x (selection on the covariate)
    base = np.log(0.375)
    logits = np.column_stack([np.zeros(n_units)]
                             + [base + 0.075 * (k + 1) * x for k in range(len(COHORTS))])
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    pick = (rng.random(n_units)[:, None] > np.cumsum(prob, axis=1)).sum(axis=1)
    g = np.array((0,) + COHORTS)[pick]
    t = np.arange(1, n_periods + 1)
    unit_effect = rng.normal(0.0, 1.0, n_units) + 0.5 * x
    period_effect = 0.1 * t + rng.normal(0.0, 0.2, n_periods)
    e = t[None, :] - g[:, None]
    effect = np.where((g[:, None] > 0) & (e >= 0), 1.0 + 0.05 * e, 0.0)
    y = (unit_effect[:, None] + period_effect[None, :] + 0.02 * t[None, :] * x[:, None]
         + effect + rng.normal(0.0, 1.0, (n_units, n_periods)))
    return pd.DataFrame({
        "unit": np.repeat(np.arange(1, n_units + 1), n_periods),
        "period": np.tile(t, n_units),
        "y": y.ravel(),
        "first_treat": np.repeat(g, n_periods),
        "x": np.repeat(x, n_periods),
    })


def true_simple_att(df: pd.DataFrame) -> float:
    """R ``did``'s simple aggregation of the true effects, with the sample cohort sizes."""
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


def make_calls(impl: str, spec: dict, df: pd.DataFrame):
    """(timed call, extra untimed-in-the-verdict call or None, versions)."""
    method, cov, n_boot = spec["method"], spec["covariates"], spec["n_boot"]
    cols = dict(outcome="y", unit="unit", time="period", first_treat="first_treat")
    versions = harness.interpreter_versions()

    if impl == "new":
        versions.update(harness.checkout_package()[1])
        from diff_diff import CallawaySantAnna

        def call():
            res = CallawaySantAnna(estimation_method=method, n_bootstrap=n_boot, seed=1).fit(
                df, covariates=cov, **cols)
            att, se = res.overall_att, res.overall_se  # simple aggregation (lazy)
            es = res.event_study_effects  # event-study aggregation (lazy)
            return res, _summary(att, se, es["event_time"], es["estimate"], es["se"])

        def extra(res):
            return res.group_time_effects  # group-time SEs (lazy; not in the judged call)

        return call, extra, versions

    if impl in ("old", "old_fitagg"):
        versions.update(harness.old_package()[1])
        from diff_diff import CallawaySantAnna

        if impl == "old":
            def call():
                res = CallawaySantAnna(estimation_method=method, n_bootstrap=n_boot,
                                       seed=1).fit(df, covariates=cov, **cols)
                att, se = res.overall_att, res.overall_se  # computed in fit
                es = res.aggregate("event_study")  # replays the bootstrap when B > 0
                return res, _summary(att, se, es.event_time, es.att, es.se)
        else:
            def call():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # fit(aggregate=)
                    warnings.simplefilter("ignore", FutureWarning)
                    res = CallawaySantAnna(estimation_method=method, n_bootstrap=n_boot,
                                           seed=1).fit(df, covariates=cov,
                                                       aggregate="event_study", **cols)
                es = res.event_study_effects  # {e: {"effect", "se", ...}}
                keys = sorted(es)
                return res, _summary(res.overall_att, res.overall_se, keys,
                                     [es[k]["effect"] for k in keys], [es[k]["se"] for k in keys])
        return call, None, versions

    if impl == "csdid":
        from importlib.metadata import version as pkg_version

        from csdid.att_gt import ATTgt

        versions.update(package=f"csdid {pkg_version('csdid')}",
                        path=harness.module_dir(sys.modules["csdid"]),
                        drdid=pkg_version("drdid"))
        boot = n_boot > 0
        xformla = ("y~" + "+".join(cov)) if cov else None

        def call():
            np.random.seed(1)  # csdid's serial bootstrap draws from the global state
            with contextlib.redirect_stdout(io.StringIO()):  # csdid prints its summaries
                model = ATTgt(yname="y", tname="period", idname="unit", gname="first_treat",
                              data=df, control_group="nevertreated", xformla=xformla,
                              cband=boot, biters=n_boot if boot else 1000)
                model.fit(est_method=method, base_period="varying", bstrap=boot)
                model.aggte(typec="simple", bstrap=boot, cband=boot)
                simple = model.atte
                model.aggte(typec="dynamic", bstrap=boot, cband=boot)
                dynamic = model.atte
            return model, _summary(simple["overall_att"], simple["overall_se"], dynamic["egt"],
                                   dynamic["att_egt"], dynamic["se_egt"])

        return call, None, versions

    raise ValueError(impl)


# ---------------------------------------------------------------------------
# child: one implementation, one case, one process
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl, case = args.child, args.case
    spec = CASES[case]
    n_units = N_UNITS // args.scale
    tag = f"[{case}/{impl}]"
    df, gen_s = harness.timed(make_panel, n_units)
    fp = harness.fingerprint(df)
    truth = true_simple_att(df)
    call, extra, versions = make_calls(impl, spec, df)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)

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
        fingerprint=fp, truth=truth, gen_s=gen_s, repeats_asked=repeats,
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
    """Every case x implementation in its own child: rows by (case, impl), missing, failed, errors."""
    jobs, _ = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons, args)
    return harness.run_jobs(jobs, __file__, env, args.child_timeout)


def memory_mb(row: dict) -> float:
    return max(row["traced_mb"] or 0.0, row["rss_rise_mb"])


def verdict(row: dict, quick: bool) -> str:
    spec = CASES[row["case"]]
    fast = row["median_s"] < spec["limit"]
    small = memory_mb(row) < MEMORY_LIMIT_MB
    if spec["judged"]:
        text = "PASS" if fast and small else "FAIL"
        if not fast and not small:
            text += " (time, memory)"
        elif not fast:
            text += " (time)"
        elif not small:
            text += " (memory)"
    else:
        text = "info: " + ("within" if fast and small else "over") + " the reg/dr limit"
    return text + (" [quick]" if quick else "")


def print_table(rows: list[dict], missing: list[tuple[str, str, str]], quick: bool) -> None:
    header = ["case", "criterion", "implementation", "repeats", "median s", "min s", "+gt s",
              "tracemalloc MB", "RSS +MB", "max RSS MB", "verdict"]
    body = []
    order = {c: i for i, c in enumerate(CASES)}
    impl_order = {m: i for i, m in enumerate(IMPLS)}
    entries = [(r["case"], r["impl"], r, None) for r in rows]
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
                    + [verdict(r, quick)])
    harness.print_table(header, body, ["<", "<", "<"] + [">"] * 7 + ["<"],
                        groups=[case for case, *_ in entries])


def print_ratios(rows: dict) -> None:
    """Median (and min) time of each other implementation over ``new``, per case."""
    harness.print_ratios(rows, CASES, {m: IMPLS[m][1].split(":")[-1].strip()
                                       for m in IMPLS if m != "new"})


def _es_diff(a: dict, b: dict) -> tuple[float, float, float, int, int]:
    """max |est diff|, SE ratio range (a / b) over the common event times, counts."""
    ea = dict(zip(a["event_time"], zip(a["es_att"], a["es_se"])))
    eb = dict(zip(b["event_time"], zip(b["es_att"], b["es_se"])))
    common = sorted(set(ea) & set(eb))
    d, r = [], []
    for e in common:
        (xa, sa), (xb, sb) = ea[e], eb[e]
        if xa is not None and xb is not None:
            d.append(abs(xa - xb))
        if sa is not None and sb is not None and sb > 0:
            r.append(sa / sb)
    return (max(d) if d else float("nan"), min(r) if r else float("nan"),
            max(r) if r else float("nan"), len(common), len(set(ea) ^ set(eb)))


def print_agreement(rows: dict) -> list[str]:
    notes = []
    print("agreement with new (overall = simple aggregation; event study over common event times):")
    for case in CASES:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s = new["summary"]
        boot = CASES[case]["n_boot"] > 0
        print(f"  {case}: new overall ATT {s['att']:.12f}  SE {s['se']:.6g}  (true simple ATT "
              f"{new['truth']:.6f}; {len(s['event_time'])} event times)")
        for m in IMPLS:
            r = rows.get((case, m))
            if m == "new" or r is None:
                continue
            o = r["summary"]
            d_es, r_lo, r_hi, n_common, n_only = _es_diff(s, o)
            text = (f"    vs {IMPLS[m][1]:<32} |dATT| {abs(s['att'] - o['att']):.2e}  "
                    f"SE ratio new/this {s['se'] / o['se']:.6f}  event study max|dEst| "
                    f"{d_es:.2e}, SE ratio {r_lo:.6f}-{r_hi:.6f}")
            if n_only:
                text += f"  ({n_only} event times in only one of them)"
            print(text)
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{case}/{m} generated DIFFERENT data (fingerprint "
                             f"{r['fingerprint']} vs {new['fingerprint']}); its agreement "
                             "numbers are not meaningful")
        if boot:
            print("    (bootstrap SEs: different draws, so ratios show Monte Carlo noise, "
                  f"about +-{100 / math.sqrt(2 * N_BOOT):.1f}% per SE)")
    n = next((r["n_units"] for r in rows.values()), N_UNITS)
    print(f"  analytic SEs: expected ratio sqrt(n/(n-1)) = {math.sqrt(n / (n - 1)):.6f} "
          "(diff_diff's small-sample factor; 3.13.0 and csdid use none)")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    harness.print_header(
        "CallawaySantAnna", args.quick, "units",
        data=f"{n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows, cohorts "
             f"{', '.join(map(str, COHORTS))} + never treated (~40%), one time-invariant "
             f"covariate x, seed {SEED}",
        criteria=f"criteria: reg < 0.15 s, dr < 0.5 s, {N_BOOT}-draw bootstrap < 1 s (medians, "
                 f"no covariates), peak < {MEMORY_LIMIT_MB:g} MB")
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
    print_table(list(rows.values()), [(c, m, reason) for (c, m), reason in missing.items()],
                args.quick)
    print()
    print_ratios(rows)
    print()
    notes = print_agreement(rows) + notes
    skipped = f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"
    notes += harness.child_notes(list(rows.values()), load_end, "--slow-budget",
                                 name=lambda r: f"{r['case']}/{r['impl']}",
                                 call_extra=lambda r: skipped if r["traced_mb"] is None else "")
    return harness.finish(notes, failed, quick_scaled="units" if args.quick else None, closing=(
        "verdict: median time of the judged call and max(tracemalloc MB, RSS +MB); covariate "
        "rows are information (the issue does not say whether its criteria include covariates)",
        "+gt s: median extra time of res.group_time_effects (lazy group-time SEs) after the "
        "judged call, not in the verdict; 3.13.0 and csdid compute them inside fit ('incl.')"))


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, "3.13.0 and csdid",
                                 slow_budget=150.0, child_timeout=1800.0)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
