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
import gc
import hashlib
import inspect
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

# Interpreters of the other implementations: (env variable, default locations).
INTERPRETERS = {
    "old": ("DIFF_DIFF_OLD_PYTHON", (os.path.join(HERE, ".venv313", "bin", "python"),
                                     os.path.join(os.path.dirname(REPO), "venv313", "bin",
                                                  "python"))),
    "pyfixest": ("DIFF_DIFF_PYFIXEST_PYTHON",
                 (os.path.join(HERE, ".venv_pyfixest", "bin", "python"),
                  os.path.join(os.path.dirname(REPO), "venv_pyfixest", "bin", "python"))),
}
SETUP_HINT = {
    "old": f"python -m venv /work/venv313 && /work/venv313/bin/pip install "
           f"diff-diff=={OLD_VERSION}",
    "pyfixest": "python -m venv /work/venv_pyfixest && /work/venv_pyfixest/bin/pip install "
                "pyfixest",
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

MB = 1024.0 * 1024.0
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")


# ---------------------------------------------------------------------------
# memory probes (as in bench_cs.py)
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


def fingerprint(df: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for col in df.columns:
        values = df[col].to_numpy()
        digest.update(f"{col}:{values.dtype.str};".encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------
# the timed calls; each returns (result object, {"coef", "se"})
# ---------------------------------------------------------------------------
def _import_diff_diff(role: str):
    try:
        import diff_diff
    except ImportError:
        if role != "new":
            raise
        sys.path.insert(0, REPO)  # a checkout without an installed package
        import diff_diff
    return diff_diff


def _summary(coef, se) -> dict:
    return dict(coef=float(coef), se=float(se))


def make_call(impl: str, df: pd.DataFrame):
    """(timed call, versions)."""
    import scipy

    versions = dict(python=platform.python_version(), executable=sys.executable,
                    numpy=np.__version__, scipy=scipy.__version__, pandas=pd.__version__)

    if impl == "new":
        diff_diff = _import_diff_diff("new")
        versions.update(package=f"diff_diff {diff_diff.__version__}",
                        path=os.path.dirname(os.path.abspath(diff_diff.__file__)))
        from diff_diff import TwoWayFixedEffects

        def call():
            res = TwoWayFixedEffects().fit(df, outcome="y", treatment="d", unit="unit",
                                           time="period")
            return res, _summary(res.att, res.se)

        return call, versions

    if impl in ("old", "old_absorb"):
        diff_diff = _import_diff_diff(impl)
        version = getattr(diff_diff, "__version__", "?")
        if not version.startswith(OLD_VERSION):
            raise RuntimeError(f"expected diff_diff {OLD_VERSION}, found {version} at "
                               f"{diff_diff.__file__}")
        versions.update(package=f"diff_diff {version}",
                        path=os.path.dirname(os.path.abspath(diff_diff.__file__)),
                        rust_backend=bool(getattr(diff_diff, "HAS_RUST_BACKEND", False)))
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
                        path=os.path.dirname(os.path.abspath(pyfixest.__file__)))
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
    t0 = time.perf_counter()
    df = make_panel(n_units)
    gen_s = time.perf_counter() - t0
    fp = fingerprint(df)
    call, versions = make_call(impl, df)
    print(f"{tag} {versions['package']}: {len(df):,} rows generated in {gen_s:.1f} s",
          file=sys.stderr, flush=True)

    times, summary = [], None
    window = RssWindow()
    window.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(args.repeats):
            t0 = time.perf_counter()
            out = call()
            times.append(time.perf_counter() - t0)
            if summary is None:
                summary = out[1]
            del out
            gc.collect()
            print(f"  {tag} call {i + 1}: {times[-1]:.3f} s", file=sys.stderr, flush=True)
            if sum(times) + statistics.median(times) > args.budget and i + 1 < args.repeats:
                break
    rss_rise = window.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    messages = sorted({f"{w.category.__name__}: {' '.join(str(w.message).split())[:200]}"
                       for w in caught})

    median = statistics.median(times)
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = call()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del out
    gc.collect()

    row = dict(
        impl=impl, n_units=n_units, n_periods=N_PERIODS, n_rows=len(df), versions=versions,
        fingerprint=fp, gen_s=gen_s, repeats_asked=args.repeats, times=times,
        median_s=median, min_s=min(times), traced_mb=traced_peak / MB, rss_rise_mb=rss_rise,
        rss_exact=window.exact, max_rss_mb=_maxrss_mb(), warnings=messages, summary=summary,
        load=load,
    )
    print(f"  {tag} median {median:.3f} s, min {row['min_s']:.3f} s, tracemalloc "
          f"{row['traced_mb']:.0f} MB, RSS +{rss_rise:.0f} MB", file=sys.stderr, flush=True)
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


def run_one(impl: str, python: str, args, env: dict) -> tuple[dict | None, str | None]:
    cmd = [python]
    if impl != "new":
        cmd += ["-E", "-s"]  # ignore PYTHONPATH / user site: the checkout cannot shadow them
    cmd += [os.path.abspath(__file__), "--child", impl, "--repeats", str(args.repeats),
            "--budget", str(args.budget)]
    if args.quick:
        cmd.append("--quick")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env,
                              timeout=args.child_timeout)
    except subprocess.TimeoutExpired:
        return None, f"{impl} timed out after {args.child_timeout:g} s"
    print(f"[{impl}] finished in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    result = next((ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)), None)
    if proc.returncode != 0 or result is None:
        return None, f"{impl} failed (exit {proc.returncode}); see its stderr above"
    return json.loads(result[len(RESULT_TAG):]), None


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
        reps = f"{len(r['times'])}"
        if len(r["times"]) < r["repeats_asked"]:
            reps += f" of {r['repeats_asked']}"
        body.append([
            label, reps, f"{r['times'][0]:.3f}", f"{r['median_s']:.3f}", f"{r['min_s']:.3f}",
            f"{r['traced_mb']:.0f}", f"{r['rss_rise_mb']:.0f}" + ("" if r["rss_exact"] else "~"),
            f"{r['max_rss_mb']:.0f}", verdict(r, quick),
        ])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    align = ["<"] + [">"] * 7 + ["<"]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for b in body:
        print(line(b))


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


def environment_line(row: dict) -> str:
    v = row["versions"]
    extra = ""
    if "rust_backend" in v:
        extra = f" | rust backend {'yes' if v['rust_backend'] else 'no'}"
    return (f"{row['impl']}: {v['package']} ({v['path']}) | python {v['python']} "
            f"({v['executable']}) | numpy {v['numpy']} | scipy {v['scipy']} | pandas "
            f"{v['pandas']}{extra}")


def _load_text() -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1/5/15 min)"


def run_parent(args) -> int:
    impls = args.impls or list(IMPLS)
    n_units = N_UNITS // args.scale
    print("diff-diff TwoWayFixedEffects benchmark" + (" (QUICK: units / 10)" if args.quick else ""))
    print(f"data: {n_units:,} units x {N_PERIODS} periods = {n_units * N_PERIODS:,} rows, half "
          f"treated from period {ADOPTION} (no staggering), effect {EFFECT:g}, AR(1) errors "
          f"rho {RHO:g}, seed {SEED}")
    print(f"{os.cpu_count()} CPUs | {platform.machine()} {platform.system()} | criterion: unit + "
          f"time FE, CR1 by unit, median < {LIMIT_S:g} s")
    env = dict(os.environ)
    if args.mmap_threshold > 0:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
    else:
        env.pop("MALLOC_MMAP_THRESHOLD_", None)  # glibc's dynamic threshold (what users get)
    if args.threads:
        for name in THREAD_VARS:
            env[name] = str(args.threads)
    threads = ", ".join(f"{v}={env[v]}" for v in THREAD_VARS if v in env) or "library defaults"
    malloc = env.get("MALLOC_MMAP_THRESHOLD_", "unset (glibc default)")
    print(f"each implementation in a fresh subprocess; MALLOC_MMAP_THRESHOLD_={malloc}; "
          f"threads: {threads}; repeats: {args.repeats} (budget {args.budget:g} s each)")
    print(f"load average at start: {_load_text()}", flush=True)

    pythons, notes = {}, []
    for key, explicit in (("old", args.old_python), ("pyfixest", args.pyfixest_python)):
        if not any(IMPLS[m][0] == key for m in impls):
            continue
        python, where = find_python(key, explicit)
        pythons[key] = python
        if python is None:
            hint = (f"{key} interpreter not found ({where}); create it with\n    "
                    f"{SETUP_HINT[key]}\nand pass --{key}-python")
            print(hint, file=sys.stderr)
            notes.append(hint)

    rows, missing, failed = {}, {}, []
    for impl in impls:
        key = IMPLS[impl][0]
        python = sys.executable if key is None else pythons.get(key)
        if python is None:
            missing[impl] = "not run (no interpreter)"
            continue
        row, error = run_one(impl, python, args, env)
        if row is None:
            failed.append(impl)
            missing[impl] = "not run (crashed)"
            notes.append(error)
        else:
            rows[impl] = row

    load_end = _load_text()
    print()
    print_table(rows, missing, args.quick)
    print()
    print_ratios(rows)
    print()
    notes = print_agreement(rows) + notes
    fps = {r["fingerprint"] for r in rows.values()}
    notes.append(f"same data in every child: {'yes' if len(fps) <= 1 else 'NO'} (fingerprint "
                 f"{', '.join(sorted(fps))})")
    for impl, r in rows.items():
        notes.append(environment_line(r))
        if "ssc_defaults" in r["versions"]:
            notes.append(f"{impl}: ssc{r['versions']['ssc_defaults']}; feols defaults "
                         f"{r['versions']['feols_defaults']}")
    loads = [r["load"] for r in rows.values() if r.get("load") is not None]
    if loads:
        notes.append(f"1-min load average after each child's timed calls: max {max(loads):.2f}, "
                     f"median {statistics.median(loads):.2f} (at the end: {load_end}; "
                     f"{os.cpu_count()} CPUs). Other processes on the machine inflate and "
                     "scatter the times (see README)")
    for impl, r in rows.items():
        line = f"{impl}: call times " + " ".join(f"{t:.3f}" for t in r["times"])
        if len(r["times"]) < r["repeats_asked"]:
            line += f" (REDUCED to {len(r['times'])} of {r['repeats_asked']} by --budget)"
        notes.append(line)
        for msg in r["warnings"]:
            notes.append(f"{impl} warned: {msg}")
    if args.quick:
        notes.append("QUICK run: 1/10 of the units; verdicts are indicative only")
    notes.append(f"verdict: median time of the call < {LIMIT_S:g} s, printed for every "
                 "implementation; the criterion is judged on new. 'first s' is the first call "
                 "(counted in the median)")
    notes.append("old (3.13.0 TwoWayFixedEffects) absorbs unit and pre/post effects, not the "
                 "20 period effects: same coefficient here, different residuals and SE; "
                 "old_absorb is 3.13.0's unit + period model")
    print()
    for note in notes:
        print("note: " + note)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="units / 10 (smoke run)")
    parser.add_argument("--impls", nargs="+", choices=list(IMPLS), help="default: all")
    parser.add_argument("--old-python", default=None,
                        help=f"python with diff-diff=={OLD_VERSION} (default: "
                             "$DIFF_DIFF_OLD_PYTHON, benchmarks/.venv313/bin/python, "
                             "../venv313/bin/python)")
    parser.add_argument("--pyfixest-python", default=None,
                        help="python with pyfixest (default: $DIFF_DIFF_PYFIXEST_PYTHON, "
                             "benchmarks/.venv_pyfixest/bin/python, ../venv_pyfixest/bin/python)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per implementation")
    parser.add_argument("--budget", type=float, default=120.0,
                        help="stop the repeats once another call would pass this many seconds")
    parser.add_argument("--mmap-threshold", type=int, default=0,
                        help="MALLOC_MMAP_THRESHOLD_ of the children (default 0: glibc's "
                             "dynamic threshold, what users run; 1048576 as bench_aggregate.py)")
    parser.add_argument("--threads", type=int, default=None,
                        help="set OMP/OPENBLAS/MKL/RAYON/NUMBA_NUM_THREADS in every child "
                             "(default: leave the environment as it is)")
    parser.add_argument("--child-timeout", type=float, default=900.0)
    parser.add_argument("--child", choices=list(IMPLS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.scale = 10 if args.quick else 1
    if args.child:
        return run_child(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
