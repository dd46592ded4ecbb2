"""Benchmark of ``diff_diff.StackedDiD`` and ``diff_diff.WooldridgeDiD`` against 3.13.0 and ``etwfe``.

No acceptance criteria exist for these estimators: every row is information.

Cases (one estimator call each; one table per case):

=========  =====================================================  ========================
case       call                                                   data
=========  =====================================================  ========================
stacked    ``StackedDiD(kappa_pre=3, kappa_post=3)``              50,000 units x 20 periods
ols        ``WooldridgeDiD()`` (linear ETWFE, CR1 by unit)         50,000 units x 20 periods
logit      ``WooldridgeDiD(method="logit")`` on ``y_bin``          10,000 units x 20 periods
poisson    ``WooldridgeDiD(method="poisson")`` on ``y_count``      10,000 units x 20 periods
=========  =====================================================  ========================

Implementations, each case in its own fresh subprocess:

* ``new``: the checkout (current interpreter)::

      res = StackedDiD(kappa_pre=3, kappa_post=3).fit(df, outcome="y", unit="unit",
                                                      time="period", first_treat="first_treat")
      res = WooldridgeDiD(method=m).fit(df, "y", "unit", "period", "first_treat")
      res.att, res.se, res.event_study_effects      # inside the timed call

  (``WooldridgeDiD`` builds its aggregations in ``fit``; ``StackedDiD``'s event
  study and overall ATT are the fit itself.)
* ``old``: diff-diff 3.13.0 with the same calls; ``StackedDiD``'s
  ``event_study_effects`` is a dict ``{e: {"effect", "se", "n_obs"}}`` (the
  reference row, ``n_obs = 0``, is left out); ``WooldridgeDiD`` computes only the
  simple aggregation in ``fit``, so ``res.aggregate("event_study")`` is inside
  the timed call (its ``event_study_effects`` is then ``{e: {"att", "se", ...}}``).
* ``etwfe``: the PyPI ``etwfe`` 0.1.4 (Python port of R ``etwfe``, on pyfixest
  0.60.0; ``patsy`` is needed by ``emfx`` but not declared)::

      m = etwfe("y ~ 0", tvar="period", gvar="first_treat", data=df, ivar="unit",
                vcov={"CRV1": "unit"})                            # ols
      m = etwfe("y_bin ~ 0", tvar="period", gvar="first_treat", data=df,
                family="logit", vcov={"CRV1": "unit"})            # logit; "poisson" alike
      m.emfx(type="simple"), m.emfx(type="event")                 # inside the timed call

  For OLS ``ivar="unit"`` gives unit + period fixed effects, the model of
  ``new`` (etwfe's default, cohort + period effects, gives the same ATTs on a
  balanced panel). etwfe's default vcov is ``"hetero"`` (HC1); it is clustered
  by unit here, as ``new`` and 3.13.0 are by default. Nonlinear families force
  ``ivar=None`` and no absorbed effects: intercept, cohort and period dummies
  and the cells (pyfixest ``feglm`` / ``fepois``), the model of ``new`` and
  3.13.0. etwfe's not-yet-treated default matches theirs. etwfe has no stacked
  estimator (``stacked``: "n/a"). The note gives the time of ``etwfe()`` (the
  fit) alone.

The old release and etwfe run under their own interpreters (``-E -s``, so
``PYTHONPATH`` cannot make them import the checkout): ``--old-python``
(default ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python``, or
``venv313`` next to the checkout) and ``--etwfe-python`` (default
``$DIFF_DIFF_ETWFE_PYTHON``, ``benchmarks/.venv_etwfe/bin/python`` or
``venv_etwfe`` next to the checkout)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0
    python -m venv /work/venv_etwfe && /work/venv_etwfe/bin/pip install etwfe==0.1.4 patsy

An implementation without an interpreter is reported as "not run".

Data (generated in every child from fixed seeds; a fingerprint shows that all
children of a case saw the same frame; generation is not timed):

* ``stacked``, ``ols``: ``bench_cs.make_panel`` (unit ids, periods 1..20,
  cohorts first treated in 5, 9, 13 or 17 or never, ``first_treat = 0``, ~40%;
  ``y`` with unit and period effects, an ``x``-specific trend and the true
  effect ``1 + 0.05 e`` at ``e >= 0``), columns ``unit``, ``period``, ``y``,
  ``first_treat``.
* ``logit``, ``poisson``: ``make_glm_panel``: the cohorts and periods of
  ``bench_cs.make_panel`` for 10,000 units, and, with a unit term ``a_i ~
  N(0, 0.5^2)``, ``index = a_i + 0.05 (t - 10) + 0.1 1{treated cohort} + (0.3 +
  0.02 e) 1{e >= 0}``: ``y_bin ~ Bernoulli(logistic(index - 0.3))``, ``y_count
  ~ Poisson(exp(0.5 + index))``.

Measuring (as ``bench_sun_abraham.py``): glibc's default allocator
(``--mmap-threshold N`` sets ``MALLOC_MMAP_THRESHOLD_=N``); repeats (5 for
``new``, 3 for the others, which stop early once another call would take the
case past ``--slow-budget`` seconds, shown as e.g. ``2 of 3``); the first call
(one-off costs such as lazy imports; counted in the median), median and
minimum wall time. ``tracemalloc MB`` is the peak of one extra call under
``tracemalloc`` (the input frame excluded; skipped above ``--traced-limit``
seconds; pyfixest's Rust demeaner allocates outside it), ``RSS +MB`` the rise
of the resident-set high-water mark during the timed calls, ``max RSS MB`` the
child's total peak (data included). Each case's table ends with the ratios
over ``new``: median / median and max RSS / max RSS.

Agreement: every child returns the overall ATT and SE and the event-study
estimates and SEs; the parent prints each overall ATT and the differences from
``new``. Expected: points equal to ~1e-10 or better (etwfe's nonlinear fits
stop at pyfixest's IRLS tolerance, 1e-8 by default: ~1e-9 on the points;
``--etwfe-iwls-tol 1e-12`` closes that). SEs differ by small-sample
conventions only, reported, not judged:

* ``stacked``: new and 3.13.0 use the same CR1 by unit: ratio 1.
* ``ols``: all multiply the CR1 sandwich by ``G/(G-1) (n-1)/(n-K)``; 3.13.0 and
  etwfe/pyfixest (``ssc(k_fixef="nonnested")``) take ``K = k + T`` (unit
  effects nested in the unit cluster not counted), ``new`` every absorbed
  effect, ``K = k + N + T - 1``: ratio ``sqrt((n-k-T)/(n-k-N-T+1))`` (as
  ``bench_sun_abraham.py``).
* ``logit``, ``poisson``: ``new``'s delta-method SEs come from unit influence
  values through the engine (``G/(G-1)`` only); 3.13.0 and pyfixest multiply
  by ``G/(G-1) (n-1)/(n-p)``, ``p`` = all QMLE parameters (intercept, cohort and
  period dummies, cells): ratio ``sqrt((n-p)/(n-1))``. etwfe's SEs also move
  with pyfixest's IRLS tolerance (~1e-5 relative at the default 1e-8).

Usage::

    python benchmarks/bench_stacked_etwfe.py                 # everything, ~8 min
    python benchmarks/bench_stacked_etwfe.py --quick         # units / 10, ~45 s
    python benchmarks/bench_stacked_etwfe.py --cases ols logit --impls new etwfe
    python benchmarks/bench_stacked_etwfe.py --etwfe-python /path/to/venv_etwfe/bin/python
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also in the other venvs' children)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402
from bench_cs import COHORTS, N_PERIODS, N_UNITS, SEED, make_panel  # noqa: E402
from bench_imputation import _compare, _dict_effects, _summary, squash_pandas_warnings  # noqa: E402

ETWFE_VERSION = "0.1.4"
GLM_UNITS = 10_000  # the nonlinear cases (--quick divides by 10 too)
GLM_SEED = 7  # the outcome draws of make_glm_panel (the cohorts come from bench_cs's SEED)

INTERPRETERS = {
    "old": OLD_RELEASE,
    "etwfe": harness.Interpreter(
        "etwfe", "DIFF_DIFF_ETWFE_PYTHON", "venv_etwfe", f"etwfe=={ETWFE_VERSION} and patsy",
        f"python -m venv /work/venv_etwfe && /work/venv_etwfe/bin/pip install "
        f"etwfe=={ETWFE_VERSION} patsy"),
}

# case -> estimator, method, outcome column, panel, title
CASES = {
    "stacked": dict(estimator="StackedDiD", method=None, outcome="y", panel="cs",
                    title="StackedDiD(kappa_pre=3, kappa_post=3)"),
    "ols": dict(estimator="WooldridgeDiD", method="ols", outcome="y", panel="cs",
                title="WooldridgeDiD() (linear ETWFE, CR1 by unit)"),
    "logit": dict(estimator="WooldridgeDiD", method="logit", outcome="y_bin", panel="glm",
                  title='WooldridgeDiD(method="logit")'),
    "poisson": dict(estimator="WooldridgeDiD", method="poisson", outcome="y_count",
                    panel="glm", title='WooldridgeDiD(method="poisson")'),
}
# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION}"),
    "etwfe": ("etwfe", f"etwfe {ETWFE_VERSION} (pyfixest)"),
}


def skip_reason(case: str, impl: str) -> str | None:
    """etwfe has no stacked estimator."""
    if impl == "etwfe" and CASES[case]["estimator"] == "StackedDiD":
        return "n/a (etwfe has no stacked DiD)"
    return None


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def make_glm_panel(n_units: int) -> pd.DataFrame:
    """``bench_cs.make_panel``'s cohorts and periods with a binary and a count outcome."""
    df = make_panel(n_units)[["unit", "period", "first_treat"]].copy()
    rng = np.random.default_rng(GLM_SEED)
    g, t = df["first_treat"].to_numpy(), df["period"].to_numpy()
    a = np.repeat(rng.normal(0.0, 0.5, n_units), N_PERIODS)
    e = t - g
    tau = np.where((g > 0) & (e >= 0), 0.3 + 0.02 * e, 0.0)
    index = a + 0.05 * (t - 10) + 0.1 * (g > 0) + tau
    df["y_bin"] = (rng.random(t.size) < 1.0 / (1.0 + np.exp(-(index - 0.3)))).astype(float)
    df["y_count"] = rng.poisson(np.exp(0.5 + index)).astype(float)
    return df


def case_units(case: str, scale: int) -> int:
    return (N_UNITS if CASES[case]["panel"] == "cs" else GLM_UNITS) // scale


def make_data(case: str, n_units: int) -> pd.DataFrame:
    spec = CASES[case]
    if spec["panel"] == "cs":
        return make_panel(n_units)[["unit", "period", "y", "first_treat"]].copy()
    return make_glm_panel(n_units)[["unit", "period", "first_treat", spec["outcome"]]].copy()


def sizes_of(df: pd.DataFrame) -> dict:
    """n, N, T, the treated cells k (not-yet-treated ETWFE: t >= g) and the cohort levels C."""
    g, t = df["first_treat"].to_numpy(), df["period"].to_numpy()
    post = (g > 0) & (t >= g)
    k = int(np.unique(g[post] * 1000 + t[post]).size)
    return dict(n=len(df), N=int(df["unit"].nunique()), T=int(np.unique(t).size), k=k,
                C=int(np.unique(g).size))


# ---------------------------------------------------------------------------
# the timed calls; each returns (result object, summary)
# ---------------------------------------------------------------------------
def make_call(impl: str, case: str, df: pd.DataFrame, args):
    """(timed call, versions, fit times or None, extra fields of the row)."""
    spec = CASES[case]
    y = spec["outcome"]
    cols = dict(outcome=y, unit="unit", time="period", first_treat="first_treat")
    versions = harness.interpreter_versions()

    if impl in ("new", "old"):
        if impl == "new":
            diff_diff, fields = harness.checkout_package()
        else:
            diff_diff, fields = harness.old_package()
        versions.update(fields)
        if spec["estimator"] == "StackedDiD":
            def build():
                return diff_diff.StackedDiD(kappa_pre=3, kappa_post=3)
        else:
            def build():
                return diff_diff.WooldridgeDiD(method=spec["method"])

        def call():
            res = build().fit(df, **cols)
            if impl == "new":
                es = res.event_study_effects
                return res, _summary(res.att, res.se, es["event_time"], es["estimate"],
                                     es["se"])
            if spec["estimator"] == "StackedDiD":
                return res, _summary(res.overall_att, res.overall_se,
                                     *_dict_effects(res.event_study_effects))
            res.aggregate("event_study")  # 3.13.0: only "simple" is computed in fit
            es = res.event_study_effects  # {e: {"att", "se", ...}}
            keys = sorted(es)
            return res, _summary(res.overall_att, res.overall_se, keys,
                                 [es[e]["att"] for e in keys], [es[e]["se"] for e in keys])

        return call, versions, None, {}

    if impl == "etwfe":
        import etwfe as etwfe_pkg
        import pyfixest
        from etwfe import etwfe

        versions.update(package=f"etwfe {ETWFE_VERSION}", path=harness.module_dir(etwfe_pkg),
                        pyfixest=pyfixest.__version__)
        kw = dict(tvar="period", gvar="first_treat", data=df, vcov={"CRV1": "unit"})
        if spec["method"] == "ols":
            kw["ivar"] = "unit"
        else:
            kw["family"] = spec["method"]
            if args.etwfe_iwls_tol is not None:
                kw.update(iwls_tol=args.etwfe_iwls_tol, iwls_maxiter=200)
        fit_times = []
        extra = {}

        def call():
            t0 = time.perf_counter()
            m = etwfe(f"{y} ~ 0", **kw)
            fit_times.append(time.perf_counter() - t0)
            simple = m.emfx(type="simple")
            ev = m.emfx(type="event")
            if not extra:
                fit = m.model_
                extra.update(df_k=int(getattr(fit, "_df_k", -1)),
                             ssc=float(np.ravel(getattr(fit, "_ssc", [np.nan]))[0]),
                             formula=m.formula_)
            return m, _summary(simple["estimate"].iloc[0], simple["std.error"].iloc[0],
                               ev["event"], ev["estimate"], ev["std.error"])

        return call, versions, fit_times, extra

    raise ValueError(impl)


# ---------------------------------------------------------------------------
# child: one implementation, one case, one process
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl, case = args.child, args.case
    n_units = case_units(case, args.scale)
    tag = f"[{case}/{impl}]"
    df, gen_s = harness.timed(make_data, case, n_units)
    fp = harness.fingerprint(df)
    sizes = sizes_of(df)
    call, versions, fit_times, extra = make_call(impl, case, df, args)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)
    row = dict(impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
               fingerprint=fp, sizes=sizes, gen_s=gen_s, error=None)

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
    if impl == "etwfe":
        timing.warnings = squash_pandas_warnings(timing.warnings)
    fit_s = None if fit_times is None else statistics.median(fit_times[:len(timing.times)])
    median = statistics.median(timing.times)
    traced_mb = harness.traced_peak_mb(call) if median <= args.traced_limit else None
    row.update(repeats_asked=repeats, **timing.fields(traced_mb), warnings=timing.warnings,
               summary=timing.kept, load=timing.load, fit_s=fit_s, extra=dict(extra))
    harness.print_summary(tag, row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def print_tables(rows: dict, missing: dict, cases, impls, quick: bool) -> None:
    """One table per case: timing, memory and the ratios over new."""
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
        n_units = case_units(case, 10 if quick else 1)
        print(f"{case}: {CASES[case]['title']}, {n_units:,} units x {N_PERIODS} periods = "
              f"{n_units * N_PERIODS:,} rows")
        harness.print_table(header, body, ["<"] + [">"] * 9)
        print()


def expected_ratio(case: str, z: dict, impl: str, extra: dict) -> tuple:
    """(expected SE ratio new / impl, its formula)."""
    n, k, N, T, C = (z[key] for key in ("n", "k", "N", "T", "C"))
    if CASES[case]["estimator"] == "StackedDiD":
        return 1.0, "same CR1"
    if case == "ols":
        return (math.sqrt((n - k - T) / (n - k - N - T + 1)),
                f"sqrt((n-k-T)/(n-k-N-T+1)), n={n}, k={k}, N={N}, T={T}")
    p = 1 + (C - 1) + (T - 1) + k
    if impl == "etwfe" and extra.get("df_k", -1) > 0:
        p = extra["df_k"]
    return math.sqrt((n - p) / (n - 1)), f"sqrt((n-p)/(n-1)), n={n}, p={p}"


def print_agreement(rows: dict, missing: dict, cases, impls) -> list[str]:
    notes = []
    print("agreement with new (overall ATT; event study over the common event times):")
    for case in cases:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s, z = new["summary"], new["sizes"]
        print(f"  {case}: new overall ATT {s['att']:.12f}  SE {s['se']:.8g}  "
              f"({len(s['event_time'])} event times {min(s['event_time'])}..."
              f"{max(s['event_time'])})")
        for m in impls:
            if m == "new":
                continue
            r = rows.get((case, m))
            if r is None:
                if (case, m) in missing and not skip_reason(case, m):
                    print(f"    {IMPLS[m][1]:<28} {missing[(case, m)]}")
                continue
            o = r["summary"]
            f, formula = expected_ratio(case, z, m, r.get("extra") or {})
            es = _compare(s, o, "event_time", "es_att", "es_se")
            ratio = s["se"] / o["se"]
            worst = max(abs(v / f - 1) for v in (ratio, es["lo"], es["hi"]) if v is not None)
            print(f"    {IMPLS[m][1]:<28} ATT {o['att']:.12f}  |dATT| "
                  f"{abs(s['att'] - o['att']):.1e}  SE {o['se']:.8g} (new/this "
                  f"{ratio:.6f})  event study max|dEst| {es['diff']:.1e}, SE ratio "
                  f"{es['lo']:.6f}-{es['hi']:.6f}")
            print(f"    {'':<28} expected SE ratio {f:.6f} = {formula}; all SE ratios / "
                  f"expected - 1 within {worst:.1e}")
            if es["only_a"] or es["only_b"]:
                print(f"    {'':<28} event times only in new {es['only_a']}, only here "
                      f"{es['only_b']}")
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{case}/{m} generated DIFFERENT data (fingerprint "
                             f"{r['fingerprint']} vs {new['fingerprint']}); its agreement "
                             "numbers are not meaningful")
    return notes


def same_data_notes(rows: dict, cases) -> list[str]:
    notes = []
    for case in cases:
        fps = {r["fingerprint"] for (c, _), r in rows.items() if c == case}
        if fps:
            notes.append(f"{case}: same data in every child: "
                         f"{'yes' if len(fps) == 1 else 'NO'} (fingerprint "
                         f"{', '.join(sorted(fps))})")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    harness.print_header(
        "StackedDiD / WooldridgeDiD (ETWFE)", args.quick, "units",
        data=f"stacked, ols: bench_cs.make_panel, {case_units('ols', args.scale):,} units x "
             f"{N_PERIODS} periods; logit, poisson: make_glm_panel, "
             f"{case_units('logit', args.scale):,} units x {N_PERIODS} periods; cohorts "
             f"{', '.join(map(str, COHORTS))} + never treated (~40%), seed {SEED}",
        criteria="no acceptance criteria: every row is information")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "case x implementation", env, f"new {args.repeats}, others {args.slow_repeats} "
        f"(budget {args.slow_budget:g} s per case)")

    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    extra = (lambda case, impl: ["--etwfe-iwls-tol", str(args.etwfe_iwls_tol)]
             if impl == "etwfe" and args.etwfe_iwls_tol is not None else [])
    jobs, skipped = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons,
                                      args, extra=extra, skip=skip_reason)
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
    notes = print_agreement(rows, missing, cases, impls) + notes

    traced_skip = f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"

    def call_extra(r):
        text = traced_skip if r["traced_mb"] is None else ""
        if r.get("fit_s") is not None:
            text += f"; etwfe() fit alone median {r['fit_s']:.3f} s (the rest: emfx)"
        return text

    def impl_notes(r):
        if r["impl"] != "etwfe":
            return []
        return [f"etwfe: pyfixest {r['versions'].get('pyfixest', '?')}; IRLS tolerance "
                + (f"{args.etwfe_iwls_tol:g}" if args.etwfe_iwls_tol is not None
                   else "pyfixest's default (1e-8)")]

    all_rows = list(rows.values())
    child = harness.child_notes(all_rows, load_end, "--slow-budget",
                                name=lambda r: f"{r['case']}/{r['impl']}",
                                impl_notes=impl_notes, call_extra=call_extra)
    notes += same_data_notes(rows, cases) + child[1:]  # (per-case same-data lines instead)
    for r in all_rows:
        if r["impl"] == "etwfe" and r.get("extra"):
            notes.append(f"{r['case']}/etwfe: {r['extra'].get('formula')} (pyfixest df_k "
                         f"{r['extra'].get('df_k')}, ssc {r['extra'].get('ssc'):.9f})")
    if args.quick:  # (harness.quick_note speaks of verdicts; this script has none)
        notes.append("QUICK run: 1/10 of the units")
    return harness.finish(notes, failed, closing=[
        "no acceptance criteria for StackedDiD / WooldridgeDiD: timings and memory are "
        "information only",
        "timed work: fit + overall ATT/SE + event study with SEs (3.13.0 WooldridgeDiD: "
        "fit + aggregate('event_study'); etwfe: etwfe() + emfx('simple') + emfx('event'))",
        "SEs: small-sample conventions differ (module docstring); the expected ratios above"])


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, "3.13.0 and etwfe",
                                 slow_budget=150.0, child_timeout=1800.0)
    parser.add_argument("--etwfe-iwls-tol", type=float, default=None,
                        help="iwls_tol of etwfe's logit/poisson fits (default: pyfixest's "
                             "1e-8; 1e-12 as tests/parity/ports/etwfe_reference.py)")
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
