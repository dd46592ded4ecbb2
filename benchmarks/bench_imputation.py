"""Benchmark of ``diff_diff.ImputationDiD`` against 3.13.0 and ``pyfixest.did2s``.

No acceptance criteria exist for this estimator: every row is information.
The timed work is "imputation (untreated two-way model, imputed effects) +
overall ATT + event-study and group effects, with their SEs", on the panel of
``bench_cs.py`` (50,000 units x 20 periods = 1,000,000 rows, staggered
adoption, 4 treated cohorts plus never-treated units).

Cases (one timed call each):

=========  ============================================================
case       call
=========  ============================================================
plain      no covariates, analytic SEs
covariate  one time-varying covariate ``x2 = x * period / 20`` in the
           untreated model, analytic SEs
boot       no covariates, 999-draw multiplier bootstrap (seed 1); not run
           by pyfixest (``did2s`` has no bootstrap)
=========  ============================================================

Implementations, each case in its own fresh subprocess:

* ``new``: the checkout (current interpreter)::

      res = ImputationDiD(n_bootstrap=B, seed=1).fit(
          df, outcome="y", unit="unit", time="period", first_treat="first_treat",
          covariates=cov)
      res.att, res.se, res.event_study_effects, res.group_effects

  The SEs are lazy (one engine pass covers every estimand), so the four are
  touched inside the timed call.
* ``old``: diff-diff 3.13.0 through its current API: ``fit(...)`` (imputation,
  overall ATT and SE are eager) then ``res.aggregate("event_study")`` and
  ``res.aggregate("group")``. 3.13.0 refuses ``aggregate("event_study")`` on a
  bootstrapped fit (its per-target draws are not kept), so ``boot`` uses the
  deprecated one-pass route ``fit(..., aggregate="all")`` (the
  DeprecationWarning is expected and silenced).
* ``pyfixest``: pyfixest 0.60.0's Gardner two-stage estimator (same point
  estimates as the imputation estimator; its SE is Gardner's GMM SE, a
  different variance estimator), two calls::

      did2s(df, yname="y", first_stage="~ 0 | unit + period",
            second_stage="~ i(rel, ref=-1000)", treatment="treat", cluster="unit")
      did2s(df, yname="y", first_stage="~ 0 | unit + period",
            second_stage="~ treat", treatment="treat", cluster="unit")

  with ``first_stage="~ 0 + x2 | unit + period"`` for ``covariate``.
  ``treat = 1{first_treat > 0 and period >= first_treat}`` and
  ``rel = period - first_treat`` (``-1000`` for never-treated units) are built
  before the timed call. The event study also has pre-treatment horizons
  (mean first-stage residuals of the treated units' untreated periods); they
  are not compared. pyfixest 0.60.0 builds the variance from a DENSE
  first-stage design matrix, rows x (units + periods + covariates) doubles
  (1,000,000 x 50,020 = 400 GB at full size; 4 GB with ``--quick``, where one
  call peaks at ~12 GB RSS and takes 70-130 s on 2 cores). The child estimates
  the peak as 3x that matrix and skips the call ("skipped", with the sizes)
  when it exceeds ``--pyfixest-max-gb`` (default 70% of the memory available
  when the child starts); the child's address space is also capped at its
  size then plus that limit, so that a wrong estimate ends in a MemoryError
  (reported as "failed", as any exception of ``did2s``) and not in the OOM
  killer. Expect it to run with ``--quick`` only.
* ``pyfixest_est``: the point estimates of the same two-stage fits without the
  variance: pyfixest's private ``pyfixest.did.did2s._did2s_estimate`` (what
  ``did2s`` calls before its variance; the two ``feols`` fits, Rust
  alternating-projections demeaner, ``fixef_tol=1e-06``) on a copy of the
  frame, as ``did2s`` does, for the same two second stages. It runs at full
  size, so it gives the point-estimate agreement and the time of the
  estimation part where ``did2s`` cannot run. No SEs. Most of its time is the
  first stage's ``fixef()`` (the unit and period effects recovered for the
  prediction through formulaic's sparse dummy matrix, built column by column:
  ~15 of ~19 s per fit at full size).

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
generation is not timed): unit ids 1..50,000, periods 1..20, sorted by unit
then period; cohorts first treated in 5, 9, 13 or 17 (about 15% each) or
never (``first_treat = 0``, about 40%); ``y = a_i + b_t + 0.02 t x_i + effect
+ N(0, 1)`` with a true effect ``1 + 0.05 e`` at event time ``e >= 0``. Added
before timing: ``x2 = x * period / 20`` (so ``0.02 t x = 0.4 x2``: the
covariate absorbs the ``x``-specific trend), ``treat`` and ``rel``. Each
implementation gets a copy of only the columns it uses.

Measuring (as ``bench_cs.py``): glibc's default allocator, as users run it
(``--mmap-threshold N`` sets ``MALLOC_MMAP_THRESHOLD_=N``); repeats (5 for
``new``, 3 for the others, which stop early once another call would take the
case past ``--slow-budget`` seconds, shown as e.g. ``1 of 3``); the median and
minimum wall time. ``tracemalloc MB`` is the peak of one extra call under
``tracemalloc`` (the call's own working memory, the input frame excluded;
skipped when the median is above ``--traced-limit`` seconds; memory allocated
outside Python's allocators, e.g. in pyfixest's Rust demeaner, is invisible to
it), ``RSS +MB`` the rise of the resident-set high-water mark during the timed
calls, ``max RSS MB`` the child's total peak.

Agreement: every child returns the overall ATT and SE and the event-study and
group estimates and SEs; the parent prints the differences from ``new``.
Expected: point estimates equal to ~1e-10 with 3.13.0 and ~1e-6 with pyfixest
(iterative demeaning to ``fixef_tol=1e-06``); analytic SE ratio new / 3.13.0
= sqrt(G/(G-1)) with G the number of units (1.00001 here: ``new``'s inference
engine applies the small-sample factor, 3.13.0 does not); new / pyfixest is
reported only (Gardner's GMM SE); bootstrap SEs differ by Monte Carlo noise
(different draws).

The 1-minute load average after each child's timed calls is printed: on a
shared machine other processes inflate and scatter the times (``--threads 1``
sets ``OMP/OPENBLAS/MKL/RAYON_NUM_THREADS`` in every child).

Usage::

    python benchmarks/bench_imputation.py                  # everything, ~9 min
    python benchmarks/bench_imputation.py --quick          # units / 10, ~7 min (pyfixest did2s)
    python benchmarks/bench_imputation.py --impls new old  # skip pyfixest
    python benchmarks/bench_imputation.py --cases plain boot --repeats 9
    python benchmarks/bench_imputation.py --mmap-threshold 1048576 --threads 1
    python benchmarks/bench_imputation.py --estimator two_stage --units 2000  # did2s with SEs
"""

from __future__ import annotations

import importlib
import math
import os
import resource
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
from bench_cs import COHORTS, N_PERIODS, N_UNITS, SEED, make_panel, true_simple_att  # noqa: E402

PYFIXEST_VERSION = "0.60.0"

# Interpreters of the other implementations.
INTERPRETERS = {
    "old": OLD_RELEASE,
    "pyfixest": harness.Interpreter(
        "pyfixest", "DIFF_DIFF_PYFIXEST_PYTHON", "venv_pyfixest", f"pyfixest=={PYFIXEST_VERSION}",
        f"python -m venv /work/venv_pyfixest && /work/venv_pyfixest/bin/pip install "
        f"pyfixest=={PYFIXEST_VERSION}"),
}

N_BOOT = 999
ESTIMATOR_CLASSES = {"imputation": "ImputationDiD", "two_stage": "TwoStageDiD"}
NEVER_REL = -1000  # rel of never-treated units (the reference level of i(rel))
DENSE_PEAK_FACTOR = 3.0  # did2s peak RSS / its dense first-stage matrix (measured ~3.0x)

# case -> covariates, bootstrap draws, description
CASES = {
    "plain": dict(covariates=None, n_boot=0, label="no covariates, analytic SEs"),
    "covariate": dict(covariates=["x2"], n_boot=0, label="x2 = x t/20, analytic SEs"),
    "boot": dict(covariates=None, n_boot=N_BOOT, label=f"bootstrap {N_BOOT} draws"),
}
# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION} fit+aggregate()"),
    "pyfixest": ("pyfixest", f"pyfixest {PYFIXEST_VERSION} did2s"),
    "pyfixest_est": ("pyfixest", "pyfixest two-stage points only"),
}
PYFIXEST_IMPLS = ("pyfixest", "pyfixest_est")


def impl_label(impl: str, case: str) -> str:
    """The table label of an implementation in a case (3.13.0's bootstrap takes another route)."""
    if impl == "old" and CASES[case]["n_boot"]:
        return f'old: {OLD_VERSION} fit(aggregate="all")'
    return IMPLS[impl][1]


def runs(impl: str, case: str) -> bool:
    """pyfixest has no bootstrap."""
    return not (impl in PYFIXEST_IMPLS and CASES[case]["n_boot"])


# ---------------------------------------------------------------------------
# data: bench_cs's panel plus the derived columns (outside the timed calls)
# ---------------------------------------------------------------------------
def make_data(n_units: int) -> pd.DataFrame:
    """``bench_cs.make_panel`` with ``x2``, ``treat`` and ``rel``; see the module docstring."""
    df = make_panel(n_units)
    g, t = df["first_treat"].to_numpy(), df["period"].to_numpy()
    df["x2"] = df["x"].to_numpy() * t / N_PERIODS
    df["treat"] = ((g > 0) & (t >= g)).astype(np.int64)
    df["rel"] = np.where(g > 0, t - g, NEVER_REL).astype(np.int64)
    return df


def input_columns(impl: str, spec: dict) -> list:
    """The columns an implementation gets (a copy is made before timing)."""
    cov = spec["covariates"] or []
    if impl in PYFIXEST_IMPLS:
        return ["unit", "period", "y", "treat", "rel"] + cov
    return ["unit", "period", "y", "first_treat"] + cov


# ---------------------------------------------------------------------------
# the timed calls; each returns (result object(s), summary)
# ---------------------------------------------------------------------------
def _float(v):
    v = float(v)
    return v if math.isfinite(v) else None


def _summary(att, se, event_time, es_att, es_se, group=(), g_att=(), g_se=()) -> dict:
    def floats(values):
        return [None if v is None else _float(v) for v in values]

    return dict(att=float(att), se=None if se is None else _float(se),
                event_time=[int(round(float(e))) for e in event_time],
                es_att=floats(es_att), es_se=floats(es_se),
                group=[int(round(float(g))) for g in group],
                g_att=floats(g_att), g_se=floats(g_se))


def _dict_effects(effects: dict) -> tuple:
    """keys, estimates, SEs of 3.13.0's ``{key: {"effect", "se", "n_obs"}}`` (no reference rows)."""
    keys = sorted(k for k, v in effects.items() if v.get("n_obs", 1) > 0)
    return keys, [effects[k]["effect"] for k in keys], [effects[k]["se"] for k in keys]


def dense_first_stage_gb(df: pd.DataFrame, cov) -> float:
    """Size of the dense first-stage design matrix of pyfixest's did2s variance, GB."""
    cols = df["unit"].nunique() + df["period"].nunique() + len(cov or [])
    return len(df) * cols * 8 / 1e9


def memory_available_gb() -> float | None:
    """``MemAvailable`` of ``/proc/meminfo`` in GB (None where absent)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def cap_address_space(extra_gb: float) -> str:
    """Limit this process's address space to its current size + ``extra_gb``; a note."""
    try:
        with open("/proc/self/status") as fh:
            vm = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmSize:")) * 1024
        cap = int(vm + extra_gb * 1e9)
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    except (OSError, ValueError, StopIteration) as exc:
        return f"address space not capped ({exc})"
    return f"address space capped at {cap / 1e9:.1f} GB"


def make_call(impl: str, spec: dict, df: pd.DataFrame, args):
    """(timed call, versions, reason not to run it or None, notes)."""
    cov, n_boot = spec["covariates"], spec["n_boot"]
    cols = dict(outcome="y", unit="unit", time="period", first_treat="first_treat")
    versions = harness.interpreter_versions()

    estimator = ESTIMATOR_CLASSES[args.estimator]
    if impl == "new":
        versions.update(harness.checkout_package()[1])
        new_class = getattr(importlib.import_module("diff_diff"), estimator)

        def call():
            res = new_class(n_bootstrap=n_boot, seed=1).fit(
                df, covariates=cov, **cols)
            att, se = res.att, res.se  # lazy: one engine pass for every estimand
            es, gr = res.event_study_effects, res.group_effects
            return res, _summary(att, se, es["event_time"], es["estimate"], es["se"],
                                 gr["group"], gr["estimate"], gr["se"])

        return call, versions, None, []

    if impl == "old":
        versions.update(harness.old_package()[1])
        old_class = getattr(importlib.import_module("diff_diff"), estimator)

        if not n_boot:
            def call():
                res = old_class().fit(df, covariates=cov, **cols)
                att, se = res.overall_att, res.overall_se  # computed in fit
                es = res.aggregate("event_study")
                gr = res.aggregate("group")
                keep = ~np.asarray(es.is_reference, dtype=bool)
                return res, _summary(att, se, es.event_time[keep], es.att[keep], es.se[keep],
                                     gr.label, gr.att, gr.se)
        else:
            def call():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # fit(aggregate=)
                    warnings.simplefilter("ignore", FutureWarning)
                    res = old_class(n_bootstrap=n_boot, seed=1).fit(
                        df, covariates=cov, aggregate="all", **cols)
                es = _dict_effects(res.event_study_effects)
                gr = _dict_effects(res.group_effects)
                return res, _summary(res.overall_att, res.overall_se, *es, *gr)

        return call, versions, None, []

    if impl in PYFIXEST_IMPLS:
        import pyfixest

        versions.update(package=f"pyfixest {pyfixest.__version__}",
                        path=harness.module_dir(pyfixest))
        first = f"~0+{'+'.join(cov)}|unit+period" if cov else "~0|unit+period"
        es_stage, att_stage = f"~i(rel,ref={NEVER_REL})", "~treat"

        def summary(es_fit, att_fit, with_se):
            coef = es_fit.coef()
            horizons = [int(round(float(str(name).split("::")[-1]))) for name in coef.index]
            es_se = es_fit.se().to_numpy() if with_se else [None] * len(coef)
            return _summary(att_fit.coef().iloc[0], att_fit.se().iloc[0] if with_se else None,
                            horizons, coef.to_numpy(), es_se)

        if impl == "pyfixest":
            need = DENSE_PEAK_FACTOR * dense_first_stage_gb(df, cov)
            avail = memory_available_gb()
            if args.pyfixest_max_gb is not None:
                limit, whence = args.pyfixest_max_gb, "--pyfixest-max-gb"
            elif avail is not None:
                limit, whence = 0.7 * avail, f"70% of the {avail:.0f} GB available"
            else:
                limit, whence = float("inf"), "no limit: available memory unknown"
            if need > limit:
                n_cols = df["unit"].nunique() + df["period"].nunique() + len(cov or [])
                return None, versions, (
                    f"skipped: did2s's variance builds a dense {len(df):,} x {n_cols:,} "
                    f"first-stage matrix ({need / DENSE_PEAK_FACTOR:,.1f} GB; estimated peak "
                    f"{need:,.1f} GB > limit {limit:.1f} GB, {whence})"), []
            notes = [f"estimated peak {need:.1f} GB (limit {limit:.1f} GB, {whence}); "
                     + (cap_address_space(limit) if math.isfinite(limit) else
                        "address space not capped")]

            def call():
                es_fit = pyfixest.did2s(df, yname="y", first_stage=first, second_stage=es_stage,
                                        treatment="treat", cluster="unit")
                att_fit = pyfixest.did2s(df, yname="y", first_stage=first,
                                         second_stage=att_stage, treatment="treat",
                                         cluster="unit")
                return (es_fit, att_fit), summary(es_fit, att_fit, True)

            return call, versions, None, notes

        try:
            from pyfixest.did.did2s import _did2s_estimate
        except ImportError as exc:  # private API, written against 0.60.0
            return None, versions, f"failed: {exc}", []

        def call():
            # did2s copies the frame before _did2s_estimate mutates it (y_hat, bool treat)
            es_fit = _did2s_estimate(data=df.copy(), yname="y", _first_stage=first,
                                     _second_stage=es_stage, treatment="treat")[0]
            att_fit = _did2s_estimate(data=df.copy(), yname="y", _first_stage=first,
                                      _second_stage=att_stage, treatment="treat")[0]
            return (es_fit, att_fit), summary(es_fit, att_fit, False)

        return call, versions, None, []

    raise ValueError(impl)


# ---------------------------------------------------------------------------
# child: one implementation, one case, one process
# ---------------------------------------------------------------------------
def squash_pandas_warnings(messages: list) -> list:
    """pyfixest 0.60.0 under pandas 3.1: its ``inplace=`` deprecation warnings as one line."""
    prefix = "Pandas4Warning: The inplace keyword in "
    hits = [m[len(prefix):].split(" ")[0] for m in messages if m.startswith(prefix)]
    rest = [m for m in messages if not m.startswith(prefix)]
    if not hits:
        return rest
    return rest + [f"{prefix}{', '.join(hits)} is deprecated (PDEP-8; pyfixest's own calls)"]


def run_child(args) -> int:
    impl, case = args.child, args.case
    spec = CASES[case]
    n_units = args.units or N_UNITS // args.scale
    tag = f"[{case}/{impl}]"
    data, gen_s = harness.timed(make_data, n_units)
    fp = harness.fingerprint(data)
    truth = true_simple_att(data)
    df = data[input_columns(impl, spec)].copy()
    del data
    call, versions, reason, notes = make_call(impl, spec, df, args)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)
    row = dict(impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
               fingerprint=fp, truth=truth, gen_s=gen_s, notes=notes, error=None)
    if reason is not None:
        print(f"  {tag} {reason}", file=sys.stderr, flush=True)
        harness.emit_result(dict(row, error=reason))
        return 0

    repeats = args.repeats if impl == "new" else args.slow_repeats
    try:
        timing = harness.time_calls(
            call, repeats, budget=float("inf") if impl == "new" else args.slow_budget,
            keep=lambda out: out[1], tag=tag, warning_chars=160, squash_warnings=True)
    except Exception as exc:  # noqa: BLE001 - pyfixest may fail; report it, don't crash the run
        if impl not in PYFIXEST_IMPLS:
            raise
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"  {tag} failed: {text}", file=sys.stderr, flush=True)
        harness.emit_result(dict(row, error=f"failed: {text}"))
        return 0

    if impl in PYFIXEST_IMPLS:
        timing.warnings = squash_pandas_warnings(timing.warnings)
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
    jobs, skipped = harness.case_jobs(
        cases, impls, {m: IMPLS[m][0] for m in IMPLS}, pythons, args,
        extra=lambda case, impl: (["--estimator", args.estimator]
                                  + ([] if args.units is None else ["--units", str(args.units)])
                                  + ([] if args.pyfixest_max_gb is None
                                     else ["--pyfixest-max-gb", str(args.pyfixest_max_gb)])),
        skip=lambda case, impl: (None if runs(impl, case)
                                 else "not run (did2s has no bootstrap)"))
    rows, missing, failed, errors = harness.run_jobs(jobs, __file__, env, args.child_timeout)
    for key, row in list(rows.items()):  # pyfixest skipped or failed: a reason, no timings
        if row.get("error"):
            missing[key] = row["error"]
    missing.update(skipped)
    return rows, missing, failed, errors


def timed_rows(rows: dict) -> dict:
    """The rows with timings (not the skipped or failed pyfixest children)."""
    return {k: r for k, r in rows.items() if not r.get("error")}


def print_table(rows: dict, missing: dict) -> None:
    header = ["case", "what", "implementation", "repeats", "median s", "min s",
              "tracemalloc MB", "RSS +MB", "max RSS MB", "note"]
    body, groups = [], []
    for case in CASES:
        for impl in IMPLS:
            r, reason = rows.get((case, impl)), missing.get((case, impl))
            if r is None and reason is None:
                continue
            cells = [case, CASES[case]["label"], impl_label(impl, case)]
            if r is None:  # the full reason of a skipped or failed child is in the agreement
                body.append(cells + ["-"] * 6 + [reason.split(":")[0]])
            else:
                body.append(cells + [harness.repeats_cell(r)] + harness.timing_cells(r)
                            + harness.memory_cells(r) + [""])
            groups.append(case)
    if body:
        harness.print_table(header, body, ["<", "<", "<"] + [">"] * 6 + ["<"], groups=groups)


def print_ratios(rows: dict, impls) -> None:
    """Median (and min) time of each other implementation over ``new``, per case."""
    harness.print_ratios(rows, CASES, {m: m for m in IMPLS if m != "new" and m in impls})


def _compare(a: dict, b: dict, key: str, att: str, se: str) -> dict:
    """max |est diff|, SE ratio range (a / b) over the common labels; labels in one only."""
    ea = dict(zip(a[key], zip(a[att], a[se])))
    eb = dict(zip(b[key], zip(b[att], b[se])))
    common = sorted(set(ea) & set(eb))
    d, r = [], []
    for e in common:
        (xa, sa), (xb, sb) = ea[e], eb[e]
        if xa is not None and xb is not None:
            d.append(abs(xa - xb))
        if sa is not None and sb is not None and sb > 0:
            r.append(sa / sb)
    return dict(n=len(common), diff=max(d) if d else None, lo=min(r) if r else None,
                hi=max(r) if r else None, only_a=sorted(set(ea) - set(eb)),
                only_b=sorted(set(eb) - set(ea)))


def _compare_text(name: str, c: dict) -> str:
    if not c["n"]:
        return ""
    text = f"{name} max|dEst| {c['diff']:.2e}" if c["diff"] is not None else f"{name} -"
    if c["lo"] is not None:
        text += f", SE ratio {c['lo']:.6f}-{c['hi']:.6f}"
    return text


def print_agreement(rows: dict, missing: dict) -> list[str]:
    notes = []
    print("agreement with new (overall ATT = mean imputed effect over all treated observations; "
          "event study and groups over common labels):")
    for case in CASES:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s = new["summary"]
        boot = CASES[case]["n_boot"] > 0
        print(f"  {case}: new overall ATT {s['att']:.12f}  SE {s['se']:.6g}  (true overall ATT "
              f"{new['truth']:.6f}; {len(s['event_time'])} event times, {len(s['group'])} "
              "groups)")
        for m in IMPLS:
            if m == "new":
                continue
            label = impl_label(m, case)
            r = rows.get((case, m))
            if r is None:
                if (case, m) in missing and runs(m, case):
                    print(f"    vs {label:<36} {missing[(case, m)]}")
                continue
            o = r["summary"]
            se = ("SE -" if o["se"] is None else f"SE ratio new/this {s['se'] / o['se']:.6f}")
            es = _compare(s, o, "event_time", "es_att", "es_se")
            gr = _compare(s, o, "group", "g_att", "g_se")
            parts = [f"|dATT| {abs(s['att'] - o['att']):.2e}", se,
                     _compare_text("event study", es), _compare_text("groups", gr)]
            print(f"    vs {label:<36} " + "  ".join(p for p in parts if p))
            if es["only_b"]:
                pre = [e for e in es["only_b"] if e < 0]
                print(f"       {'':<36} (+{len(es['only_b'])} event times only here"
                      + (f": {len(pre)} pre-treatment horizons {min(pre)}..{max(pre)}, not "
                         "compared" if pre else "") + ")")
            if es["only_a"]:
                print(f"       {'':<36} ({len(es['only_a'])} event times of new missing here)")
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{case}/{m} generated DIFFERENT data (fingerprint "
                             f"{r['fingerprint']} vs {new['fingerprint']}); its agreement "
                             "numbers are not meaningful")
        if boot:
            print("    (bootstrap SEs: different draws, so ratios show Monte Carlo noise, "
                  f"about +-{100 / math.sqrt(2 * N_BOOT):.1f}% per SE)")
    n = next((r["n_units"] for r in rows.values()), N_UNITS)
    print(f"  analytic SEs vs {OLD_VERSION}: expected ratio sqrt(G/(G-1)) = "
          f"{math.sqrt(n / (n - 1)):.6f}, G = {n:,} units (new's small-sample factor); vs "
          "pyfixest: Gardner's GMM SE, a different variance estimator (no expected ratio)")
    return notes


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    n_units = args.units or N_UNITS // args.scale
    harness.print_header(
        ESTIMATOR_CLASSES[args.estimator], args.quick, "units",
        data=f"{n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows "
             f"(bench_cs.make_panel), cohorts {', '.join(map(str, COHORTS))} + never treated "
             f"(~40%), covariate x2 = x t/{N_PERIODS}, seed {SEED}",
        criteria="no acceptance criteria: every row is information")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "case x implementation", env, f"new {args.repeats}, others {args.slow_repeats} "
        f"(budget {args.slow_budget:g} s per case)")

    pythons, notes = harness.locate_interpreters(INTERPRETERS, args,
                                                 {IMPLS[m][0] for m in impls})
    rows, missing, failed, errors = run_children(cases, impls, pythons, args, env)
    notes += errors
    timed = timed_rows(rows)

    load_end = harness.load_text()
    print()
    print_table(timed, missing)
    print()
    print_ratios(timed, impls)
    print()
    notes = print_agreement(timed, missing) + notes

    def impl_notes(r):
        return [f"{r['impl']}: {n}" for n in r.get("notes", [])]

    skipped = f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"
    notes += harness.child_notes(list(timed.values()), load_end, "--slow-budget",
                                 name=lambda r: f"{r['case']}/{r['impl']}", impl_notes=impl_notes,
                                 call_extra=lambda r: skipped if r["traced_mb"] is None else "")
    notes += [f"{c}/{m}: {rows[(c, m)]['error']}" for c in CASES for m in IMPLS
              if rows.get((c, m), {}).get("error")]
    if args.quick and args.units is None:  # (harness.quick_note speaks of verdicts)
        notes.append("QUICK run: 1/10 of the units")
    closing = [f"no acceptance criteria for {ESTIMATOR_CLASSES[args.estimator]}: timings and "
               "memory are information only"]
    if "old" in impls and "boot" in cases:
        closing.append("old boot: 3.13.0 refuses aggregate('event_study') on a bootstrapped "
                       "fit, so the deprecated fit(aggregate='all') is timed")
    if set(impls) & set(PYFIXEST_IMPLS):
        closing.append("pyfixest: two did2s calls (event study, overall); pyfixest_est: the "
                       "same two-stage point estimates through the private _did2s_estimate, "
                       "without the variance")
    return harness.finish(notes, failed, closing=closing)


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, "3.13.0 and pyfixest",
                                 slow_budget=150.0, child_timeout=1800.0)
    parser.add_argument("--estimator", choices=list(ESTIMATOR_CLASSES), default="imputation",
                        help="new and old: ImputationDiD (default) or TwoStageDiD (same points; "
                             "pyfixest did2s is the two-stage estimator either way)")
    parser.add_argument("--pyfixest-max-gb", type=float, default=None,
                        help="skip pyfixest did2s when its estimated peak (3x its dense "
                             "first-stage matrix) is above this (default: 70%% of the memory "
                             "available when the child starts)")
    parser.add_argument("--units", type=int, default=None,
                        help="units of the panel (default 50,000; --quick: 5,000); e.g. 2000 "
                             "for a size where pyfixest did2s's dense variance fits in memory")
    args = parser.parse_args(argv)
    if args.units is not None and args.units < 100:
        parser.error("--units must be at least 100")
    return harness.dispatch(args, "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
