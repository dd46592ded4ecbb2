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

import argparse
import contextlib
import gc
import hashlib
import io
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULT_TAG = "@@RESULT "
OLD_VERSION = "3.13.0"
CSDID_VERSION = "0.4.3"

# Interpreters of the other implementations: (env variable, default locations).
INTERPRETERS = {
    "old": ("DIFF_DIFF_OLD_PYTHON", (os.path.join(HERE, ".venv313", "bin", "python"),
                                     os.path.join(os.path.dirname(REPO), "venv313", "bin",
                                                  "python"))),
    "ports": ("DIFF_DIFF_PORTS_PYTHON", (os.path.join(HERE, ".venv_ports", "bin", "python"),
                                         os.path.join(os.path.dirname(REPO), "venv_ports", "bin",
                                                      "python"))),
}
SETUP_HINT = {
    "old": f"python -m venv /work/venv313 && /work/venv313/bin/pip install "
           f"diff-diff=={OLD_VERSION}",
    "ports": f"python -m venv /work/venv_ports && /work/venv_ports/bin/pip install "
             f"csdid=={CSDID_VERSION}",
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

MB = 1024.0 * 1024.0
# Set to --threads in the children (BLAS, OpenMP; RAYON for 3.13.0's Rust backend).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")


# ---------------------------------------------------------------------------
# memory probes (as in bench_inference.py / bench_aggregate.py)
# ---------------------------------------------------------------------------
def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            match = re.search(rf"^{key}:\s+(\d+)\s+kB", fh.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _maxrss_mb() -> float:
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return value / (MB if sys.platform == "darwin" else 1024.0)


def _reset_hwm() -> bool:
    """Reset the peak-RSS mark (Linux >= 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


class RssWindow:
    """Peak RSS rise over the current RSS between ``start()`` and ``stop()``."""

    def start(self) -> None:
        gc.collect()
        self.exact = _reset_hwm()
        self.base_mb = _status_kb("VmRSS") / 1024.0 if self.exact else _maxrss_mb()

    def stop(self) -> float:
        peak = _status_kb("VmHWM") / 1024.0 if self.exact else _maxrss_mb()
        return max(0.0, peak - self.base_mb)


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


def fingerprint(df: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for col in df.columns:
        values = df[col].to_numpy()
        digest.update(f"{col}:{values.dtype.str};".encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()[:16]


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


def _import_diff_diff(role: str):
    try:
        import diff_diff
    except ImportError:
        if role != "new":
            raise
        sys.path.insert(0, REPO)  # a checkout without an installed package
        import diff_diff
    return diff_diff


def make_calls(impl: str, spec: dict, df: pd.DataFrame):
    """(timed call, extra untimed-in-the-verdict call or None, versions)."""
    method, cov, n_boot = spec["method"], spec["covariates"], spec["n_boot"]
    cols = dict(outcome="y", unit="unit", time="period", first_treat="first_treat")
    import scipy

    versions = dict(python=platform.python_version(), executable=sys.executable,
                    numpy=np.__version__, scipy=scipy.__version__, pandas=pd.__version__)

    if impl == "new":
        diff_diff = _import_diff_diff("new")
        versions.update(package=f"diff_diff {diff_diff.__version__}",
                        path=os.path.dirname(os.path.abspath(diff_diff.__file__)))
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
        diff_diff = _import_diff_diff(impl)
        version = getattr(diff_diff, "__version__", "?")
        if not version.startswith(OLD_VERSION):
            raise RuntimeError(f"expected diff_diff {OLD_VERSION}, found {version} at "
                               f"{diff_diff.__file__}")
        versions.update(package=f"diff_diff {version}",
                        path=os.path.dirname(os.path.abspath(diff_diff.__file__)),
                        rust_backend=bool(getattr(diff_diff, "HAS_RUST_BACKEND", False)))
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
                        path=os.path.dirname(os.path.abspath(sys.modules["csdid"].__file__)),
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
    t0 = time.perf_counter()
    df = make_panel(n_units)
    gen_s = time.perf_counter() - t0
    fp = fingerprint(df)
    truth = true_simple_att(df)
    call, extra, versions = make_calls(impl, spec, df)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)

    repeats = args.repeats if impl == "new" else args.slow_repeats
    budget = float("inf") if impl == "new" else args.slow_budget
    times, summary = [], None
    window = RssWindow()
    window.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(repeats):
            t0 = time.perf_counter()
            out = call()
            times.append(time.perf_counter() - t0)
            if summary is None:
                summary = out[1]
            del out
            gc.collect()
            print(f"  {tag} call {i + 1}: {times[-1]:.3f} s", file=sys.stderr, flush=True)
            if sum(times) + statistics.median(times) > budget and i + 1 < repeats:
                break
    rss_rise = window.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    messages = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})

    # Extra work outside the judged call (new: the lazy group-time SEs).
    extra_times = []
    if extra is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(repeats):
                res, _ = call()
                t0 = time.perf_counter()
                extra(res)
                extra_times.append(time.perf_counter() - t0)
                del res
                gc.collect()

    median = statistics.median(times)
    traced_mb = None
    if median <= args.traced_limit:
        gc.collect()
        tracemalloc.start()
        tracemalloc.reset_peak()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = call()
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        traced_mb = traced_peak / MB
        del out
        gc.collect()

    row = dict(
        impl=impl, case=case, n_units=n_units, n_rows=len(df), versions=versions,
        fingerprint=fp, truth=truth, gen_s=gen_s, repeats_asked=repeats, times=times,
        median_s=median, min_s=min(times),
        extra_median_s=statistics.median(extra_times) if extra_times else None,
        traced_mb=traced_mb, rss_rise_mb=rss_rise, rss_exact=window.exact,
        max_rss_mb=_maxrss_mb(), warnings=messages, summary=summary, load=load,
    )
    traced = "-" if traced_mb is None else f"{traced_mb:.0f}"
    print(f"  {tag} median {median:.3f} s, min {row['min_s']:.3f} s, tracemalloc {traced} MB, "
          f"RSS +{rss_rise:.0f} MB", file=sys.stderr, flush=True)
    print(RESULT_TAG + json.dumps(row), flush=True)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def find_python(key: str, explicit: str | None) -> tuple[str | None, str]:
    """An interpreter and where it came from (None if there is none)."""
    env_name, candidates = INTERPRETERS[key]
    if explicit:
        return (explicit if os.path.exists(explicit) else None), explicit
    env = os.environ.get(env_name)
    if env:
        return (env if os.path.exists(env) else None), f"${env_name}={env}"
    for path in candidates:
        if os.path.exists(path):
            return path, path
    return None, "default locations " + ", ".join(candidates)


def run_one(impl: str, case: str, python: str, args, env: dict) -> tuple[dict | None, str | None]:
    cmd = [python]
    if impl != "new":
        cmd += ["-E", "-s"]  # ignore PYTHONPATH / user site: the checkout cannot shadow them
    cmd += [os.path.abspath(__file__), "--child", impl, "--case", case,
            "--repeats", str(args.repeats), "--slow-repeats", str(args.slow_repeats),
            "--slow-budget", str(args.slow_budget), "--traced-limit", str(args.traced_limit)]
    if args.quick:
        cmd.append("--quick")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env,
                              timeout=args.child_timeout)
    except subprocess.TimeoutExpired:
        return None, f"{case}/{impl} timed out after {args.child_timeout:g} s"
    print(f"[{case}/{impl}] finished in {time.perf_counter() - t0:.0f} s", file=sys.stderr,
          flush=True)
    result = next((ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)), None)
    if proc.returncode != 0 or result is None:
        return None, f"{case}/{impl} failed (exit {proc.returncode}); see its stderr above"
    return json.loads(result[len(RESULT_TAG):]), None


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
        reps = f"{len(r['times'])}"
        if len(r["times"]) < r["repeats_asked"]:
            reps += f" of {r['repeats_asked']}"
        extra = "incl." if impl != "new" else (
            "-" if r["extra_median_s"] is None else f"{r['extra_median_s']:.3f}")
        body.append([
            case, CASES[case]["label"], label, reps, f"{r['median_s']:.3f}", f"{r['min_s']:.3f}",
            extra, "-" if r["traced_mb"] is None else f"{r['traced_mb']:.0f}",
            f"{r['rss_rise_mb']:.0f}" + ("" if r["rss_exact"] else "~"),
            f"{r['max_rss_mb']:.0f}", verdict(r, quick),
        ])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    align = ["<", "<", "<"] + [">"] * 7 + ["<"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    previous = None
    for (case, *_), b in zip(entries, body):
        if previous is not None and case != previous:
            print()
        previous = case
        print(line(b))


def print_ratios(rows: dict) -> None:
    """Median (and min) time of each other implementation over ``new``, per case."""
    others = [m for m in IMPLS if m != "new"]
    header = ["case"] + [f"{IMPLS[m][1].split(':')[-1].strip()} / new" for m in others]
    body = []
    for case in CASES:
        new = rows.get((case, "new"))
        if new is None:
            continue
        cells = [case]
        for m in others:
            r = rows.get((case, m))
            cells.append("-" if r is None else f"{r['median_s'] / new['median_s']:.1f}x "
                         f"(min {r['min_s'] / new['min_s']:.1f}x)")
        body.append(cells)
    if not body:
        return
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    print("ratio of median times, this run (min/min in parentheses):")
    print("  " + "  ".join(f"{h:>{w}}" for h, w in zip(header, widths)))
    for b in body:
        print("  " + "  ".join(f"{c:>{w}}" for c, w in zip(b, widths)))


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


def environment_line(row: dict) -> str:
    v = row["versions"]
    extra = ""
    if "rust_backend" in v:
        extra = f" | rust backend {'yes' if v['rust_backend'] else 'no'}"
    if "drdid" in v:
        extra = f" | drdid {v['drdid']}"
    return (f"{row['impl']}: {v['package']} ({v['path']}) | python {v['python']} "
            f"({v['executable']}) | numpy {v['numpy']} | scipy {v['scipy']} | pandas "
            f"{v['pandas']}{extra}")


def _load_text() -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1/5/15 min)"


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    print("diff-diff CallawaySantAnna benchmark" + (" (QUICK: units / 10)" if args.quick else ""))
    print(f"data: {n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows, cohorts "
          f"{', '.join(map(str, COHORTS))} + never treated (~40%), one time-invariant covariate "
          f"x, seed {SEED}")
    print(f"{os.cpu_count()} CPUs | {platform.machine()} {platform.system()} | criteria: "
          f"reg < 0.15 s, dr < 0.5 s, {N_BOOT}-draw bootstrap < 1 s (medians, no covariates), "
          f"peak < {MEMORY_LIMIT_MB:g} MB")
    env = dict(os.environ)
    if args.mmap_threshold > 0:
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(args.mmap_threshold))
    else:
        env.pop("MALLOC_MMAP_THRESHOLD_", None)  # glibc's dynamic threshold (what users get)
    if args.threads:
        for name in THREAD_VARS:
            env[name] = str(args.threads)
    threads = ", ".join(f"{v}={env[v]}" for v in THREAD_VARS if v in env) or "library defaults"
    malloc = env.get("MALLOC_MMAP_THRESHOLD_", "unset (glibc default)")
    print(f"each case x implementation in a fresh subprocess; MALLOC_MMAP_THRESHOLD_="
          f"{malloc}; threads: {threads}; repeats: new {args.repeats}, "
          f"others {args.slow_repeats} (budget {args.slow_budget:g} s per case)")
    print(f"load average at start: {_load_text()}", flush=True)

    pythons, notes = {}, []
    for key, explicit in (("old", args.old_python), ("ports", args.ports_python)):
        if not any(IMPLS[m][0] == key for m in impls):
            continue
        python, where = find_python(key, explicit)
        pythons[key] = python
        if python is None:
            hint = (f"{key} interpreter not found ({where}); create it with\n    "
                    f"{SETUP_HINT[key]}\nand pass --{key}-python")
            print(hint, file=sys.stderr)
            notes.append(hint)

    rows, missing, failed = {}, [], []
    for case in cases:
        for impl in impls:
            key = IMPLS[impl][0]
            python = sys.executable if key is None else pythons.get(key)
            if python is None:
                missing.append((case, impl, "not run (no interpreter)"))
                continue
            row, error = run_one(impl, case, python, args, env)
            if row is None:
                failed.append(f"{case}/{impl}")
                missing.append((case, impl, "not run (crashed)"))
                notes.append(error)
            else:
                rows[(case, impl)] = row

    load_end = _load_text()
    print()
    print_table(list(rows.values()), missing, args.quick)
    print()
    print_ratios(rows)
    print()
    notes = print_agreement(rows) + notes
    fps = {r["fingerprint"] for r in rows.values()}
    notes.append(f"same data in every child: {'yes' if len(fps) <= 1 else 'NO'} (fingerprint "
                 f"{', '.join(sorted(fps))})")
    seen = set()
    for (case, impl), r in rows.items():
        if impl not in seen:
            seen.add(impl)
            notes.append(environment_line(r))
    loads = [r["load"] for r in rows.values() if r.get("load") is not None]
    if loads:
        notes.append(f"1-min load average after each child's timed calls: max {max(loads):.2f}, "
                     f"median {statistics.median(loads):.2f} (at the end: {load_end}; "
                     f"{os.cpu_count()} CPUs). Other processes on the machine inflate and "
                     "scatter the times (see README)")
    for (case, impl), r in rows.items():
        line = f"{case}/{impl}: call times " + " ".join(f"{t:.3f}" for t in r["times"])
        if len(r["times"]) < r["repeats_asked"]:
            line += f" (REDUCED to {len(r['times'])} of {r['repeats_asked']} by --slow-budget)"
        if r["traced_mb"] is None:
            line += f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"
        notes.append(line)
        for msg in r["warnings"]:
            notes.append(f"{case}/{impl} warned: {msg}")
    if args.quick:
        notes.append("QUICK run: 1/10 of the units; verdicts are indicative only")
    notes.append("verdict: median time of the judged call and max(tracemalloc MB, RSS +MB); "
                 "covariate rows are information (the issue does not say whether its criteria "
                 "include covariates)")
    notes.append("+gt s: median extra time of res.group_time_effects (lazy group-time SEs) after "
                 "the judged call, not in the verdict; 3.13.0 and csdid compute them inside fit "
                 "('incl.')")
    print()
    for note in notes:
        print("note: " + note)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="units / 10 (smoke run)")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), help="default: all")
    parser.add_argument("--impls", nargs="+", choices=list(IMPLS), help="default: all")
    parser.add_argument("--old-python", default=None,
                        help=f"python with diff-diff=={OLD_VERSION} (default: "
                             "$DIFF_DIFF_OLD_PYTHON, benchmarks/.venv313/bin/python, "
                             "../venv313/bin/python)")
    parser.add_argument("--ports-python", default=None,
                        help=f"python with csdid=={CSDID_VERSION} (default: "
                             "$DIFF_DIFF_PORTS_PYTHON, benchmarks/.venv_ports/bin/python, "
                             "../venv_ports/bin/python)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of new")
    parser.add_argument("--slow-repeats", type=int, default=3,
                        help="timed calls of 3.13.0 and csdid")
    parser.add_argument("--slow-budget", type=float, default=150.0,
                        help="stop the 3.13.0/csdid repeats once another call would pass this "
                             "many seconds in the case")
    parser.add_argument("--traced-limit", type=float, default=20.0,
                        help="skip the tracemalloc call when the median is above this (s)")
    parser.add_argument("--mmap-threshold", type=int, default=0,
                        help="MALLOC_MMAP_THRESHOLD_ of the children (default 0: glibc's "
                             "dynamic threshold, what users run; 1048576 as bench_aggregate.py)")
    parser.add_argument("--threads", type=int, default=None,
                        help="set OMP/OPENBLAS/MKL/RAYON_NUM_THREADS in every child (default: "
                             "leave the environment as it is)")
    parser.add_argument("--child-timeout", type=float, default=1800.0)
    parser.add_argument("--child", choices=list(IMPLS), help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.scale = 10 if args.quick else 1
    if args.child:
        return run_child(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
