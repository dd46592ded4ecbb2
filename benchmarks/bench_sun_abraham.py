"""Benchmark of ``diff_diff.SunAbraham`` against 3.13.0 and ``pyfixest``.

No acceptance criteria exist for this estimator: every row is information.
The timed work is "the saturated cohort x relative-period regression (unit and
period effects absorbed, CR1 by unit) + overall ATT + interaction-weighted
event study, with their SEs", on the panel of ``bench_cs.py`` (50,000 units x
20 periods = 1,000,000 rows, staggered adoption, 4 treated cohorts plus
never-treated units: 4 x 19 = 76 cohort x relative-period coefficients,
event times -16..15 without the reference -1).

Implementations, each in its own fresh subprocess (one case, ``cr1``):

* ``new``: the checkout (current interpreter)::

      res = SunAbraham(weights_se="fixed").fit(df, outcome="y", unit="unit",
                                               time="period", first_treat="first_treat")

  (``weights_se="fixed"``: the cohort shares held fixed in the SEs, as the peers do;
  the default adds the shares' term, a few per-unit sums more.)
      res.att, res.se, res.event_study_effects

* ``old``: diff-diff 3.13.0's ``SunAbraham`` with the same call (never-treated
  controls, ``vcov_type="hc1"``: CR1 by unit); its ``event_study_effects`` is a
  dict ``{e: {"effect", "se", ...}}``.
* ``pyfixest``: pyfixest 0.60.0, the regression written out by hand as in
  ``tests/parity/ports/sun_abraham_refs.py``: one 0/1 column per (cohort g,
  relative period e = period - g) observed, except e = -1 (never-treated rows:
  none), then::

      fit = feols("y ~ D0 + ... + D75 | unit + period", data, vcov={"CRV1": "unit"})

  with pyfixest's defaults (``ssc()``, the Rust alternating-projections
  demeaner), and the aggregation in numpy with fixed cohort-share weights:
  ``w_ge = n_ge / sum_g n_ge`` (``n_ge`` rows of cell (g, e)), ``beta_e = sum_g
  w_ge delta_ge``, overall ATT ``sum_{e>=0} n_ge delta_ge / sum_{e>=0} n_ge``,
  covariances ``W V W'`` (``V`` from pyfixest's private ``_vcov``). Building
  the indicator columns and the aggregation are inside the timed call (``new``
  and 3.13.0 do both inside ``fit``); the note gives the time of ``feols``
  alone.

The old release and pyfixest run under their own interpreters (``-E -s``, so
``PYTHONPATH`` cannot make them import the checkout): ``--old-python``
(default ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python``, or
``venv313`` next to the checkout) and ``--pyfixest-python`` (default
``$DIFF_DIFF_PYFIXEST_PYTHON``, ``benchmarks/.venv_pyfixest/bin/python`` or
``venv_pyfixest`` next to the checkout)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0
    python -m venv /work/venv_pyfixest && /work/venv_pyfixest/bin/pip install pyfixest==0.60.0

An implementation without an interpreter is reported as "not run".

Data: ``bench_cs.make_panel`` (imported; generated in every child from its
fixed seed; a fingerprint shows that all children saw the same frame;
generation is not timed): cohorts first treated in 5, 9, 13 or 17 or never
(``first_treat = 0``, ~40%), true effect ``1 + 0.05 e`` at ``e >= 0``; its
``x``-specific trend is not adjusted for here, so the estimates need not equal
the true overall ATT (printed for reference). Every implementation gets a copy
of ``unit``, ``period``, ``y``, ``first_treat``.

Measuring (as ``bench_imputation.py``): glibc's default allocator
(``--mmap-threshold N`` sets ``MALLOC_MMAP_THRESHOLD_=N``); repeats (5 for
``new``, 3 for the others, which stop early once another call would take the
case past ``--slow-budget`` seconds); the first call (one-off costs such as
lazy imports; counted in the median), median and minimum wall time.
``tracemalloc MB`` is the peak of one extra call under ``tracemalloc`` (the
input frame excluded; skipped above ``--traced-limit`` seconds; pyfixest's
Rust demeaner allocates outside it), ``RSS +MB`` the rise of the resident-set
high-water mark during the timed calls, ``max RSS MB`` the child's total peak.

Agreement: every child returns the overall ATT and SE and the event-study
estimates and SEs; the parent prints the differences from ``new``. Expected
(``tests/parity/test_sun_abraham_ports.py``): points equal to ~1e-10 or
better. SEs differ by the small-sample convention only, which is reported, not
judged: all three multiply the CR1 sandwich by ``G/(G-1) (n-1)/(n-K)``;
3.13.0 and pyfixest (``ssc(k_fixef="nonnested")``, its ``_df_k``) take ``K = k
+ T`` (the unit effects nested in the unit cluster are not counted), ``new``
counts every absorbed effect, ``K = k + N + T - 1``, so SE new / theirs =
``sqrt((n - k - T) / (n - k - N - T + 1))`` (1.025981 here; it tends to
``sqrt(T / (T - 1))``, not 1, as N grows) and 3.13.0 and pyfixest agree with
each other. (3.13.0's t df is the residual df, ours and pyfixest's ``G - 1``:
p-values and intervals differ slightly more; they are not compared.)

Usage::

    python benchmarks/bench_sun_abraham.py                 # everything, ~2.5 min
    python benchmarks/bench_sun_abraham.py --quick         # units / 10, ~15 s
    python benchmarks/bench_sun_abraham.py --impls new old --repeats 9
    python benchmarks/bench_sun_abraham.py --mmap-threshold 1048576 --threads 1
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py lives next to this script (also in the other venvs' children)
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
from _harness import OLD_VERSION  # noqa: E402
from bench_cs import COHORTS, N_PERIODS, N_UNITS, SEED, make_panel, true_simple_att  # noqa: E402
from bench_imputation import (  # noqa: E402
    INTERPRETERS, PYFIXEST_VERSION, _compare, _summary, squash_pandas_warnings)

REFERENCE = -1  # relative period without a coefficient (no anticipation)
COLUMNS = ["unit", "period", "y", "first_treat"]

CASES = {"cr1": dict(label="CR1 by unit, analytic SEs")}
# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION} SunAbraham"),
    "pyfixest": ("pyfixest", f"pyfixest {PYFIXEST_VERSION} feols + numpy"),
}


# ---------------------------------------------------------------------------
# the saturated design (pyfixest's input; k for the expected SE ratio)
# ---------------------------------------------------------------------------
def cells_of(df) -> tuple:
    """``(codes, cells, counts)``: each row's cell index (-1: no indicator), the
    (cohort, relative period) cells sorted by cohort then period, rows per cell."""
    g = df["first_treat"].to_numpy()
    e = df["period"].to_numpy() - g
    has = np.flatnonzero((g > 0) & (e != REFERENCE))
    span = int(e[has].max() - e[has].min()) + 1
    key = (g[has] - g[has].min()) * span + (e[has] - e[has].min())
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    first = has[np.unique(inverse, return_index=True)[1]]  # a row of each cell
    codes = np.full(len(df), -1, dtype=np.int64)
    codes[has] = inverse
    cells = [(int(gg), int(ee)) for gg, ee in zip(g[first], e[first])]
    return codes, cells, counts.astype(float)


def pyfixest_sun_abraham(pyfixest, df, feols_times: list) -> tuple:
    """Indicators, ``feols``, aggregation; ``(fit, summary)``; appends the feols time."""
    import pandas as pd

    codes, cells, n_ge = cells_of(df)
    dummies = np.zeros((len(df), len(cells)))
    inside = np.flatnonzero(codes >= 0)
    dummies[inside, codes[inside]] = 1.0
    names = [f"D{j}" for j in range(len(cells))]
    data = pd.concat([df[["y", "unit", "period"]].reset_index(drop=True),
                      pd.DataFrame(dummies, columns=names)], axis=1)
    del dummies
    t0 = time.perf_counter()
    fit = pyfixest.feols(f"y ~ {' + '.join(names)} | unit + period", data=data,
                         vcov={"CRV1": "unit"})
    feols_times.append(time.perf_counter() - t0)
    idx = [list(fit._coefnames).index(n) for n in names]
    b = fit.coef().to_numpy()[idx]
    V = np.asarray(fit._vcov)[np.ix_(idx, idx)]

    events = sorted({e for _, e in cells})
    cell_e = np.array([e for _, e in cells])
    W = np.zeros((len(events), len(cells)))
    for i, ev in enumerate(events):
        members = cell_e == ev
        W[i, members] = n_ge[members] / n_ge[members].sum()
    c = np.where(cell_e >= 0, n_ge, 0.0)
    c /= c.sum()
    out = _summary(c @ b, math.sqrt(c @ V @ c), events, W @ b,
                   np.sqrt(np.diag(W @ V @ W.T)))
    out["df_k"] = int(getattr(fit, "_df_k", -1))  # the K of its (n-1)/(n-K)
    return fit, out


# ---------------------------------------------------------------------------
# the timed calls; each returns (result object, summary)
# ---------------------------------------------------------------------------
def make_call(impl: str, df):
    """(timed call, versions, feols times or None)."""
    cols = dict(outcome="y", unit="unit", time="period", first_treat="first_treat")
    versions = harness.interpreter_versions()

    if impl in ("new", "old"):
        if impl == "new":
            diff_diff, fields = harness.checkout_package()
        else:
            diff_diff, fields = harness.old_package()
        versions.update(fields)
        estimator = diff_diff.SunAbraham

        # the peers hold the cohort shares fixed in the SEs: so does "new" here (its
        # default, weights_se="estimated", adds their term; the fit is the same)
        settings = {"weights_se": "fixed"} if impl == "new" else {}

        def call():
            res = estimator(**settings).fit(df, **cols)
            att, se, es = res.att, res.se, res.event_study_effects
            if isinstance(es, dict):  # 3.13.0: {e: {"effect", "se", ...}}
                keys = sorted(es)
                return res, _summary(att, se, keys, [es[e]["effect"] for e in keys],
                                     [es[e]["se"] for e in keys])
            return res, _summary(att, se, es["event_time"], es["estimate"], es["se"])

        return call, versions, None

    if impl == "pyfixest":
        import pyfixest

        versions.update(package=f"pyfixest {pyfixest.__version__}",
                        path=harness.module_dir(pyfixest))
        feols_times = []
        return (lambda: pyfixest_sun_abraham(pyfixest, df, feols_times)), versions, feols_times

    raise ValueError(impl)


# ---------------------------------------------------------------------------
# child: one implementation, one process
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl, case = args.child, args.case
    n_units = N_UNITS // args.scale
    tag = f"[{case}/{impl}]"
    data, gen_s = harness.timed(make_panel, n_units)
    fp = harness.fingerprint(data)
    truth = true_simple_att(data)
    df = data[COLUMNS].copy()
    del data
    sizes = dict(n=len(df), k=len(cells_of(df)[1]), N=int(df["unit"].nunique()),
                 T=int(df["period"].nunique()))
    call, versions, feols_times = make_call(impl, df)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)

    repeats = args.repeats if impl == "new" else args.slow_repeats
    timing = harness.time_calls(
        call, repeats, budget=float("inf") if impl == "new" else args.slow_budget,
        keep=lambda out: out[1], tag=tag, warning_chars=160, squash_warnings=True)
    feols_s = None if feols_times is None else statistics.median(feols_times[:len(timing.times)])
    if impl == "pyfixest":
        timing.warnings = squash_pandas_warnings(timing.warnings)
    median = statistics.median(timing.times)
    traced_mb = harness.traced_peak_mb(call) if median <= args.traced_limit else None
    row = dict(impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
               fingerprint=fp, truth=truth, sizes=sizes, gen_s=gen_s, feols_s=feols_s,
               repeats_asked=repeats, **timing.fields(traced_mb), warnings=timing.warnings,
               summary=timing.kept, load=timing.load)
    harness.print_summary(tag, row)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
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


def expected_se_ratio(sizes: dict) -> float:
    """SE new / SE (3.13.0 or pyfixest): K = k + N + T - 1 against K = k + T."""
    n, k, N, T = (sizes[key] for key in ("n", "k", "N", "T"))
    return math.sqrt((n - k - T) / (n - k - N - T + 1))


def print_agreement(rows: dict) -> list[str]:
    notes = []
    print("agreement with new (overall ATT over the post-treatment cells by size; event study "
          "over the common event times):")
    for case in CASES:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s, z = new["summary"], new["sizes"]
        f = expected_se_ratio(z)
        print(f"  {case}: new overall ATT {s['att']:.12f}  SE {s['se']:.6g}  (true overall ATT "
              f"{new['truth']:.6f}; {len(s['event_time'])} event times, k = {z['k']} "
              "coefficients)")
        for m in IMPLS:
            r = rows.get((case, m))
            if m == "new" or r is None:
                continue
            o = r["summary"]
            es = _compare(s, o, "event_time", "es_att", "es_se")
            ratio = s["se"] / o["se"]
            text = (f"    vs {IMPLS[m][1]:<32} |dATT| {abs(s['att'] - o['att']):.2e}  SE "
                    f"new/this {ratio:.6f}  event study max|dEst| {es['diff']:.2e}, SE ratio "
                    f"{es['lo']:.6f}-{es['hi']:.6f}  (all SE ratios / expected - 1 within "
                    f"{max(abs(v / f - 1) for v in (ratio, es['lo'], es['hi'])):.1e})")
            if o.get("df_k") is not None:
                text += f"; its K = {o['df_k']} (k + T = {z['k'] + z['T']})"
            print(text)
            if es["only_a"] or es["only_b"]:
                print(f"       event times only in new {es['only_a']}, only here {es['only_b']}")
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{case}/{m} generated DIFFERENT data (fingerprint "
                             f"{r['fingerprint']} vs {new['fingerprint']}); its agreement "
                             "numbers are not meaningful")
        old, pf = rows.get((case, "old")), rows.get((case, "pyfixest"))
        if old is not None and pf is not None:
            ratio = old["summary"]["se"] / pf["summary"]["se"]
            print(f"    {OLD_VERSION} vs pyfixest: SE ratio {ratio:.9f} (expected 1: the same K)")
        n, k, N, T = (z[key] for key in ("n", "k", "N", "T"))
        print(f"  expected SE ratio new / {OLD_VERSION} and new / pyfixest: sqrt((n-k-T)/"
              f"(n-k-N-T+1)) = sqrt(({n}-{k}-{T})/({n}-{k}-{N}-{T}+1)) = {f:.6f}: the "
              "small-sample K (tests/parity/test_sun_abraham_ports.py), reported, not judged")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    harness.print_header(
        "SunAbraham", args.quick, "units",
        data=f"{n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows "
             f"(bench_cs.make_panel), cohorts {', '.join(map(str, COHORTS))} + never treated "
             f"(~40%), seed {SEED}",
        criteria="no acceptance criteria: every row is information")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "implementation", env, f"new {args.repeats}, others {args.slow_repeats} "
        f"(budget {args.slow_budget:g} s per case)")

    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    jobs, _ = harness.case_jobs(cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons, args)
    rows, missing, failed, errors = harness.run_jobs(jobs, __file__, env, args.child_timeout)
    notes += errors

    load_end = harness.load_text()
    print()
    print_table(rows, missing)
    print()
    harness.print_ratios(rows, CASES, {m: m for m in IMPLS if m != "new" and m in impls})
    print()
    notes = print_agreement(rows) + notes

    skipped = f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"

    def call_extra(r):
        text = skipped if r["traced_mb"] is None else ""
        if r.get("feols_s") is not None:
            text += (f"; feols alone median {r['feols_s']:.3f} s (the rest: {r['sizes']['k']} "
                     "indicator columns, aggregation)")
        return text

    notes += harness.child_notes(list(rows.values()), load_end, "--slow-budget",
                                 name=lambda r: f"{r['case']}/{r['impl']}", call_extra=call_extra)
    if args.quick:  # (harness.quick_note speaks of verdicts; this script has none)
        notes.append("QUICK run: 1/10 of the units")
    return harness.finish(notes, failed, closing=[
        "no acceptance criteria for SunAbraham: timings and memory are information only",
        f"SEs: {OLD_VERSION} and pyfixest count K = k + T (unit effects nested in the unit "
        "cluster left out), new K = k + N + T - 1 (every absorbed effect): the expected ratio "
        f"above; {OLD_VERSION}'s t df (residual df) also differs from new's and pyfixest's "
        "G - 1 (p-values and intervals not compared)"])


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, "3.13.0 and pyfixest",
                                 slow_budget=150.0, child_timeout=1800.0)
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
