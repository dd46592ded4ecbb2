"""Measuring and orchestration code shared by the benchmark scripts.

The ``bench_*.py`` scripts run each measured case in a fresh child process,
often under another interpreter (the 3.13.0 release venv, the ports venv, the
pyfixest venv) that does not have the checkout's ``diff_diff``. Those children
re-run the script itself, so this module is imported by path: every script
puts its own directory on ``sys.path`` before ``import _harness``. For the
same reason this module imports only the standard library, numpy and pandas
at module level; anything else (scipy, diff_diff) is imported inside the
functions that need it.

Contents (one section each):

* memory probes: :func:`maxrss_mb`, :class:`RssWindow` (rise of the resident-set
  high-water mark over a window), :func:`traced_peak_mb` (``tracemalloc`` peak
  of one call);
* timing: :func:`time_calls` (repeated calls in one RSS window, with an
  optional time budget and recorded warnings) and :func:`measure` (the
  in-process row of ``bench_inference.py`` / ``bench_calibration.py``);
* in the children: :func:`fingerprint` of the generated data, importing the
  checkout or the old release (:func:`checkout_package`, :func:`old_package`),
  :func:`interpreter_versions`, :func:`emit_result`;
* command line: :func:`make_parser` (with ``--quick``), the shared options,
  :func:`dispatch` (child or parent);
* the other implementations' interpreters: :class:`Interpreter`,
  :data:`OLD_RELEASE`, :func:`locate_interpreters`;
* running the children: :func:`child_environment` (allocator and thread
  variables), :func:`run_child`, :class:`Job` / :func:`run_jobs`;
* environment text and the parents' output: header, tables
  (:func:`print_table`), notes (:func:`child_notes`, :func:`finish`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import hashlib
import json
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
from contextlib import nullcontext

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULT_TAG = "@@RESULT "
MB = 1024.0 * 1024.0
OLD_VERSION = "3.13.0"
# Set to --threads in the children (BLAS, OpenMP; RAYON for 3.13.0's and pyfixest's Rust code).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")


# ---------------------------------------------------------------------------
# memory probes
# ---------------------------------------------------------------------------
def _status_kb(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``); None where absent."""
    try:
        with open("/proc/self/status") as fh:
            match = re.search(rf"^{key}:\s+(\d+)\s+kB", fh.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def maxrss_mb() -> float:
    """Peak resident set of this process so far (``ru_maxrss``), in MB."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
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
    """Peak RSS rise over the current RSS between ``start()`` and ``stop()``.

    Where ``/proc/self/clear_refs`` can reset the high-water mark (``exact``),
    the rise is ``VmHWM`` at ``stop()`` minus ``VmRSS`` at ``start()``;
    elsewhere it falls back to ``ru_maxrss`` differences, which only see a
    call that exceeds every earlier peak of the process.
    """

    def start(self) -> None:
        """Collect garbage, reset the mark and record the base."""
        gc.collect()
        self.exact = _reset_hwm()
        self.base_mb = _status_kb("VmRSS") / 1024.0 if self.exact else maxrss_mb()

    def stop(self) -> float:
        """The rise in MB since ``start()`` (never negative)."""
        peak = _status_kb("VmHWM") / 1024.0 if self.exact else maxrss_mb()
        return max(0.0, peak - self.base_mb)


def traced_peak_mb(call, *, quiet: bool = True) -> float:
    """Peak of Python/numpy allocations (MB) during one ``call()`` under ``tracemalloc``.

    Inputs that exist before the call are not counted. ``quiet`` silences the
    call's warnings (they were recorded during the timed calls).
    """
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        with warnings.catch_warnings() if quiet else nullcontext():
            if quiet:
                warnings.simplefilter("ignore")
            out = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    gc.collect()
    return peak / MB


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------
def warning_messages(caught, limit: int = 160, squash: bool = False) -> list[str]:
    """Sorted distinct ``"Category: message"`` texts, each message cut to ``limit`` characters.

    ``squash`` folds runs of white space (multi-line messages) first.
    """
    texts = set()
    for w in caught:
        message = str(w.message)
        if squash:
            message = " ".join(message.split())
        texts.add(f"{w.category.__name__}: {message[:limit]}")
    return sorted(texts)


def load_1min() -> float | None:
    """The 1-minute load average, None where the platform has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def load_text() -> str:
    """The three load averages as text, for the parents' header and notes."""
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1/5/15 min)"


@dataclasses.dataclass
class Timing:
    """What :func:`time_calls` measured."""

    times: list  # wall time of each call, s
    kept: object  # ``keep(out)`` of the first call (None without ``keep``)
    rss_rise_mb: float
    rss_exact: bool
    warnings: list  # recorded warning texts (empty unless recorded)
    load: float | None  # 1-minute load average right after the calls

    def fields(self, traced_mb: float | None) -> dict:
        """The timing and memory fields of a result row (``max_rss_mb`` read now)."""
        return dict(times=self.times, median_s=statistics.median(self.times),
                    min_s=min(self.times), traced_mb=traced_mb, rss_rise_mb=self.rss_rise_mb,
                    rss_exact=self.rss_exact, max_rss_mb=maxrss_mb())


def time_calls(call, repeats: int, *, make_input=None, budget: float = float("inf"),
               keep=None, tag: str | None = None, warning_chars: int | None = None,
               squash_warnings: bool = False) -> Timing:
    """Time ``repeats`` calls inside one :class:`RssWindow`.

    ``call()`` is timed, or ``call(make_input())`` with ``make_input`` (the input
    is built untimed before each call). ``keep(out)`` of the first call is
    returned as ``Timing.kept``. The repeats stop early once another call would
    take the total past ``budget`` seconds (estimated by the median so far).
    With ``tag`` each call's time goes to stderr as ``"  {tag} call i: t s"``.
    With ``warning_chars`` every warning is recorded (``"always"``) and returned
    through :func:`warning_messages`; without it warnings behave as usual.
    """
    times, kept = [], None
    window = RssWindow()
    window.start()
    recording = warning_chars is not None
    with warnings.catch_warnings(record=True) if recording else nullcontext() as caught:
        if recording:
            warnings.simplefilter("always")
        for i in range(repeats):
            arg = make_input() if make_input is not None else None
            t0 = time.perf_counter()
            out = call(arg) if make_input is not None else call()
            times.append(time.perf_counter() - t0)
            if keep is not None and i == 0:
                kept = keep(out)
            del out, arg
            gc.collect()
            if tag is not None:
                print(f"  {tag} call {i + 1}: {times[-1]:.3f} s", file=sys.stderr, flush=True)
            if sum(times) + statistics.median(times) > budget and i + 1 < repeats:
                break
    rss_rise = window.stop()
    messages = warning_messages(caught, warning_chars, squash_warnings) if recording else []
    return Timing(times=times, kept=kept, rss_rise_mb=rss_rise, rss_exact=window.exact,
                  warnings=messages, load=load_1min())


def print_summary(prefix: str, row: dict, suffix: str = "") -> None:
    """One stderr line: median, min, tracemalloc peak ("-" if skipped) and RSS rise of a row."""
    traced = "-" if row["traced_mb"] is None else f"{row['traced_mb']:.0f}"
    print(f"  {prefix} median {row['median_s']:.3f} s, min {row['min_s']:.3f} s, tracemalloc "
          f"{traced} MB, RSS +{row['rss_rise_mb']:.0f} MB{suffix}", file=sys.stderr, flush=True)


def measure(label, call, make_input, repeats, *, info=None, criterion=None) -> dict:
    """Time ``call(make_input())`` ``repeats`` times, then one tracemalloc run.

    ``make_input`` is not timed. ``criterion`` is ``(seconds, megabytes)``
    (either may be None) or None for information-only rows. Returns the row
    (``info`` plus label, timing and memory fields, criterion).
    """
    timing = time_calls(call, repeats, make_input=make_input)
    traced_mb = traced_peak_mb(functools.partial(call, make_input()), quiet=False)
    gc.collect()  # the input is gone with the partial
    row = dict(info or {})
    row.update(label=label, **timing.fields(traced_mb), criterion=criterion)
    print_summary(f"{label}:", row, f"; times {times_text(row['times'])}")
    return row


# ---------------------------------------------------------------------------
# in the children: data, imports, result
# ---------------------------------------------------------------------------
def fingerprint(df: pd.DataFrame) -> str:
    """Short hash of a frame's columns, dtypes and values (did every child get the same data?)."""
    digest = hashlib.sha256()
    for col in df.columns:
        values = df[col].to_numpy()
        digest.update(f"{col}:{values.dtype.str};".encode())
        if values.dtype.kind == "O":  # object arrays hold pointers: hash the values instead
            values = pd.util.hash_pandas_object(df[col], index=False).to_numpy()
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()[:16]


def timed(make, *args):
    """``(make(*args), seconds it took)``: data generation, reported but not judged."""
    t0 = time.perf_counter()
    out = make(*args)
    return out, time.perf_counter() - t0


def import_diff_diff(checkout_fallback: bool):
    """Import ``diff_diff``; with ``checkout_fallback``, from this checkout if it is not installed.

    The other implementations' children pass False, so that they can only
    import the package installed in their own environment.
    """
    try:
        import diff_diff
    except ImportError:
        if not checkout_fallback:
            raise
        sys.path.insert(0, REPO)  # a checkout without an installed package
        import diff_diff
    return diff_diff


def module_dir(module) -> str:
    """The directory a module was imported from."""
    return os.path.dirname(os.path.abspath(module.__file__))


def interpreter_versions() -> dict:
    """Python, executable, numpy, scipy and pandas versions of this process."""
    import scipy

    return dict(python=platform.python_version(), executable=sys.executable,
                numpy=np.__version__, scipy=scipy.__version__, pandas=pd.__version__)


def checkout_package() -> tuple:
    """The checkout's ``diff_diff`` and its ``package`` / ``path`` version fields."""
    diff_diff = import_diff_diff(True)
    return diff_diff, dict(package=f"diff_diff {diff_diff.__version__}",
                           path=module_dir(diff_diff))


def old_package(expected: str = OLD_VERSION) -> tuple:
    """The installed old release of ``diff_diff`` and its version fields.

    Raises RuntimeError if the installed version is not ``expected``.
    """
    diff_diff = import_diff_diff(False)
    version = getattr(diff_diff, "__version__", "?")
    if not version.startswith(expected):
        raise RuntimeError(f"expected diff_diff {expected}, found {version} at "
                           f"{diff_diff.__file__}")
    return diff_diff, dict(package=f"diff_diff {version}", path=module_dir(diff_diff),
                           rust_backend=bool(getattr(diff_diff, "HAS_RUST_BACKEND", False)))


def emit_result(payload) -> None:
    """Hand a child's result to its parent: one tagged JSON line on stdout."""
    print(RESULT_TAG + json.dumps(payload), flush=True)


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------
def make_parser(doc: str, quick_help: str | None):
    """An argparse parser described by the first line of ``doc``, with ``--quick``."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    return parser


def add_impl_options(parser, impls, interpreters: dict) -> None:
    """Add ``--impls`` (choices ``impls``) and the ``--{key}-python`` option of each interpreter."""
    parser.add_argument("--impls", nargs="+", choices=list(impls), help="default: all")
    for interpreter in interpreters.values():
        interpreter.add_option(parser)


def add_child_options(parser, *, child_timeout: float) -> None:
    """Add ``--mmap-threshold``, ``--threads`` and ``--child-timeout``."""
    parser.add_argument("--mmap-threshold", type=int, default=0,
                        help="MALLOC_MMAP_THRESHOLD_ of the children (default 0: glibc's "
                             "dynamic threshold, what users run; 1048576 as bench_aggregate.py)")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"set {'/'.join(v[:-12] for v in THREAD_VARS)}_NUM_THREADS in every child "
                             "(default: leave the environment as it is)")
    parser.add_argument("--child-timeout", type=float, default=child_timeout)


def dispatch(args, child_flag: str, run_child, run_parent) -> int:
    """Run a script's child (``args.{child_flag}`` given) or parent; ``--quick`` sets ``args.scale = 10``."""
    args.scale = 10 if args.quick else 1
    if getattr(args, child_flag):
        return run_child(args)
    return run_parent(args)


# ---------------------------------------------------------------------------
# the interpreters of the other implementations
# ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Interpreter:
    """The interpreter of another implementation (option ``--{key}-python``).

    Looked up in the option, then ``$env_name``, then ``benchmarks/.{venv}/bin/python``
    and ``{venv}/bin/python`` next to the checkout.
    """

    key: str
    env_name: str
    venv: str
    package: str  # what its environment provides, for the help text
    setup: str  # the command that creates it

    def candidates(self) -> tuple:
        """The default locations, in the order they are tried."""
        return (os.path.join(HERE, "." + self.venv, "bin", "python"),
                os.path.join(os.path.dirname(REPO), self.venv, "bin", "python"))

    def find(self, explicit: str | None) -> tuple:
        """The interpreter and where it came from (None if there is none)."""
        if explicit:
            return (explicit if os.path.exists(explicit) else None), explicit
        env = os.environ.get(self.env_name)
        if env:
            return (env if os.path.exists(env) else None), f"${self.env_name}={env}"
        candidates = self.candidates()
        for path in candidates:
            if os.path.exists(path):
                return path, path
        return None, "default locations " + ", ".join(candidates)

    def add_option(self, parser, prefix: str = "python with") -> None:
        """Add ``--{key}-python`` to an argparse parser."""
        parser.add_argument(f"--{self.key}-python", default=None,
                            help=f"{prefix} {self.package} (default: ${self.env_name}, "
                                 f"benchmarks/.{self.venv}/bin/python, ../{self.venv}/bin/python)")


OLD_RELEASE = Interpreter(
    "old", "DIFF_DIFF_OLD_PYTHON", "venv313", f"diff-diff=={OLD_VERSION}",
    f"python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff=={OLD_VERSION}")


def locate_interpreters(interpreters: dict, args, needed) -> tuple:
    """``({key: python or None}, notes)`` for the interpreters whose key is in ``needed``.

    ``interpreters`` maps keys to :class:`Interpreter`; the explicit path of
    each is the option ``args.{key}_python``. A missing interpreter gets a hint
    (stderr and a note) on how to create it.
    """
    pythons, notes = {}, []
    for key, spec in interpreters.items():
        if key not in needed:
            continue
        python, where = spec.find(getattr(args, f"{key}_python"))
        pythons[key] = python
        if python is None:
            hint = (f"{key} interpreter not found ({where}); create it with\n    "
                    f"{spec.setup}\nand pass --{key}-python")
            print(hint, file=sys.stderr)
            notes.append(hint)
    return pythons, notes


# ---------------------------------------------------------------------------
# running the children
# ---------------------------------------------------------------------------
def child_environment(mmap_threshold: int | None, threads: int | None = None, *,
                      override: bool = False) -> dict:
    """The children's environment: this one with the allocator and thread settings.

    ``mmap_threshold > 0`` sets ``MALLOC_MMAP_THRESHOLD_`` (freed buffers of
    that size go back to the system at once, so a case's RSS rise is not hidden
    by memory freed earlier; an existing value is kept unless ``override``);
    otherwise the variable is removed (glibc's dynamic threshold, what users
    get). ``threads`` sets every :data:`THREAD_VARS`.
    """
    env = dict(os.environ)
    if mmap_threshold and mmap_threshold > 0:
        if override:
            env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
        else:
            env.setdefault("MALLOC_MMAP_THRESHOLD_", str(mmap_threshold))
    else:
        env.pop("MALLOC_MMAP_THRESHOLD_", None)
    if threads:
        for name in THREAD_VARS:
            env[name] = str(threads)
    return env


def child_env_text(env: dict) -> str:
    """``MALLOC_MMAP_THRESHOLD_=...; threads: ...`` of a children's environment."""
    threads = ", ".join(f"{v}={env[v]}" for v in THREAD_VARS if v in env) or "library defaults"
    malloc = env.get("MALLOC_MMAP_THRESHOLD_", "unset (glibc default)")
    return f"MALLOC_MMAP_THRESHOLD_={malloc}; threads: {threads}"


def child_command(python: str, script: str, args, *, isolated: bool = False) -> list:
    """``python [-E -s] script args``.

    ``isolated`` ignores ``PYTHONPATH`` and the user site, so the checkout
    cannot shadow the package of another interpreter's environment.
    """
    return [python] + (["-E", "-s"] if isolated else []) + [os.path.abspath(script)] + list(args)


def run_child(cmd: list, env: dict, tag: str, timeout: float | None = None) -> tuple:
    """Run one child (stderr passes through) and read its result line.

    Returns ``(payload, returncode)``: payload None if the child failed or
    printed no result; returncode None if it timed out. Prints
    ``[tag] finished in N s`` to stderr unless it timed out.
    """
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None
    print(f"[{tag}] finished in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    result = next((ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)), None)
    if proc.returncode != 0 or result is None:
        return None, proc.returncode
    return json.loads(result[len(RESULT_TAG):]), 0


@dataclasses.dataclass
class Job:
    """One child of :func:`run_jobs`: the script re-run with ``args`` under ``python``."""

    key: object  # the key of its row in the result
    tag: str  # its name in messages
    python: str | None  # None: no interpreter, reported as not run
    args: list
    isolated: bool = False


def parallel_map(func, jobs, workers: int, chunksize: int = 5):
    """``func`` over ``jobs`` in ``workers`` forked processes (results in completion
    order), or in this process when ``workers`` is 1 (Monte Carlo replications)."""
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            yield from pool.imap_unordered(func, jobs, chunksize=chunksize)
    else:
        yield from map(func, jobs)


def case_parser(doc: str, cases, impls, interpreters: dict, others: str, *,
                slow_budget: float, child_timeout: float) -> argparse.ArgumentParser:
    """The command line of a benchmark with cases run by several implementations in
    children (``others`` names the slow implementations in the help texts)."""
    parser = make_parser(doc, "units / 10 (smoke run)")
    parser.add_argument("--cases", nargs="+", choices=list(cases), help="default: all")
    add_impl_options(parser, impls, interpreters)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of new")
    parser.add_argument("--slow-repeats", type=int, default=3, help=f"timed calls of {others}")
    parser.add_argument("--slow-budget", type=float, default=slow_budget,
                        help=f"stop the {others} repeats once another call would pass this "
                             "many seconds in the case")
    parser.add_argument("--traced-limit", type=float, default=20.0,
                        help="skip the tracemalloc call when the median is above this (s)")
    add_child_options(parser, child_timeout=child_timeout)
    parser.add_argument("--child", choices=list(impls), help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=list(cases), help=argparse.SUPPRESS)
    return parser


def case_jobs(cases, impls, interpreter_of: dict, pythons: dict, args, *,
              extra=lambda case, impl: (), skip=lambda case, impl: None) -> tuple:
    """One :class:`Job` per case and implementation (``--child IMPL --case CASE`` with the
    repeat and budget options of ``args``), and ``{(case, impl): reason}`` for the pairs
    that ``skip`` rules out. ``interpreter_of[impl]`` is None for the checkout."""
    jobs, skipped = [], {}
    for case in cases:
        for impl in impls:
            reason = skip(case, impl)
            if reason:
                skipped[(case, impl)] = reason
                continue
            key = interpreter_of[impl]
            child_args = ["--child", impl, "--case", case, "--repeats", str(args.repeats),
                          "--slow-repeats", str(args.slow_repeats),
                          "--slow-budget", str(args.slow_budget),
                          "--traced-limit", str(args.traced_limit)]
            child_args += (["--quick"] if args.quick else []) + list(extra(case, impl))
            jobs.append(Job(key=(case, impl), tag=f"{case}/{impl}",
                            python=sys.executable if key is None else pythons.get(key),
                            args=child_args, isolated=impl != "new"))
    return jobs, skipped


def print_ratios(rows: dict, cases, labels: dict, bounds: dict | None = None) -> None:
    """Median (and min) time of each other implementation over ``new``, per case;
    ``labels``: implementation -> column title; ``bounds``: ``(case, implementation)`` ->
    the budget in seconds of a child stopped at it (its ratio printed as a lower bound)."""
    bounds = bounds or {}
    header = ["case"] + [f"{label} / new" for label in labels.values()]
    body = []
    for case in cases:
        new = rows.get((case, "new"))
        if new is None:
            continue
        cells = [case]
        for impl in labels:
            r = rows.get((case, impl))
            if r is not None:
                cells.append(f"{r['median_s'] / new['median_s']:.1f}x "
                             f"(min {r['min_s'] / new['min_s']:.1f}x)")
            elif (case, impl) in bounds:
                cells.append(f"> {bounds[case, impl] / new['median_s']:.0f}x")
            else:
                cells.append("-")
        body.append(cells)
    if not body:
        return
    print("ratio of median times, this run (min/min in parentheses):")
    print_table(header, body, [">"] * len(header), indent="  ", rule=False)


def run_jobs(jobs, script: str, env: dict, timeout: float | None) -> tuple:
    """Run the jobs one after another.

    Returns ``(rows, missing, failed, errors)``: ``{key: payload}``,
    ``{key: reason}`` for the jobs that did not run or crashed, the tags of
    the crashed ones and one message for each of them.
    """
    rows, missing, failed, errors = {}, {}, [], []
    for job in jobs:
        if job.python is None:
            missing[job.key] = "not run (no interpreter)"
            continue
        cmd = child_command(job.python, script, job.args, isolated=job.isolated)
        row, code = run_child(cmd, env, job.tag, timeout)
        if row is not None:
            rows[job.key] = row
            continue
        failed.append(job.tag)
        missing[job.key] = "not run (crashed)"
        errors.append(f"{job.tag} timed out after {timeout:g} s" if code is None else
                      f"{job.tag} failed (exit {code}); see its stderr above")
    return rows, missing, failed, errors


# ---------------------------------------------------------------------------
# environment text
# ---------------------------------------------------------------------------
def machine_text() -> str:
    """``N CPUs | machine system``."""
    return f"{os.cpu_count()} CPUs | {platform.machine()} {platform.system()}"


def environment() -> str:
    """One line on this process: diff_diff, python, numpy (BLAS), scipy, pandas, machine."""
    import scipy

    diff_diff = import_diff_diff(True)
    blas = ""
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]["name"]
    except Exception:  # noqa: BLE001 - informational only
        pass
    return (
        f"diff_diff {getattr(diff_diff, '__version__', '?')} | python {platform.python_version()} | "
        f"numpy {np.__version__} ({blas}) | scipy {scipy.__version__} | pandas {pd.__version__} | "
        f"{machine_text()}"
    )


def environment_line(name: str, versions: dict) -> str:
    """A child's package, interpreter and library versions (from ``interpreter_versions`` + package)."""
    v = versions
    extra = ""
    if "rust_backend" in v:
        extra = f" | rust backend {'yes' if v['rust_backend'] else 'no'}"
    if "drdid" in v:
        extra = f" | drdid {v['drdid']}"
    return (f"{name}: {v['package']} ({v['path']}) | python {v['python']} "
            f"({v['executable']}) | numpy {v['numpy']} | scipy {v['scipy']} | pandas "
            f"{v['pandas']}{extra}")


# ---------------------------------------------------------------------------
# the parents' output: header, tables, notes
# ---------------------------------------------------------------------------
def print_header(name: str, quick: bool, scaled: str, data: str | None = None,
                 criteria: str | None = None) -> None:
    """The parent's first lines.

    ``diff-diff {name} benchmark`` (with ``(QUICK: {scaled} / 10)`` on a quick
    run), then ``data: {data}`` and ``{machine_text()} | {criteria}`` where given.
    """
    print(f"diff-diff {name} benchmark" + (f" (QUICK: {scaled} / 10)" if quick else ""))
    if data is not None:
        print(f"data: {data}")
    if criteria is not None:
        print(f"{machine_text()} | {criteria}")


def print_children_setup(what: str, env: dict, repeats: str) -> None:
    """``each {what} in a fresh subprocess; <environment>; repeats: ...`` and the load average."""
    print(f"each {what} in a fresh subprocess; {child_env_text(env)}; repeats: {repeats}")
    print(f"load average at start: {load_text()}", flush=True)


def times_text(times) -> str:
    """Call times, 3 decimals, space separated."""
    return " ".join(f"{t:.3f}" for t in times)


def repeats_cell(row: dict) -> str:
    """Calls made, with ``of N`` when a time budget cut the repeats."""
    text = f"{len(row['times'])}"
    if len(row["times"]) < row["repeats_asked"]:
        text += f" of {row['repeats_asked']}"
    return text


def timing_cells(row: dict) -> list:
    """``median s``, ``min s``."""
    return [f"{row['median_s']:.3f}", f"{row['min_s']:.3f}"]


def memory_cells(row: dict) -> list:
    """``tracemalloc MB`` ("-" if skipped), ``RSS +MB`` ("~" if approximate), ``max RSS MB``."""
    return ["-" if row["traced_mb"] is None else f"{row['traced_mb']:.0f}",
            f"{row['rss_rise_mb']:.0f}" + ("" if row["rss_exact"] else "~"),
            f"{row['max_rss_mb']:.0f}"]


def print_table(header, body, align, *, groups=None, indent: str = "", rule: bool = True,
                rstrip: bool = True) -> None:
    """Print a text table, columns as wide as their widest cell.

    ``align`` holds one format alignment (``"<"`` or ``">"``) per column. A
    ``rule`` of dashes follows the header. With ``groups`` (one key per body
    row) a blank line separates rows of different keys. ``rstrip`` removes the
    padding at the end of each line.
    """
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]

    def line(cells):
        text = indent + "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths))
        return text.rstrip() if rstrip else text

    print(line(header))
    if rule:
        print("  ".join("-" * w for w in widths))
    previous = None
    for i, b in enumerate(body):
        if groups is not None:
            if previous is not None and groups[i] != previous:
                print()
            previous = groups[i]
        print(line(b))


def same_data_note(rows) -> str:
    """Whether every child generated the same frame (by fingerprint)."""
    fps = {r["fingerprint"] for r in rows}
    return (f"same data in every child: {'yes' if len(fps) <= 1 else 'NO'} (fingerprint "
            f"{', '.join(sorted(fps))})")


def load_note(rows, load_end: str) -> str | None:
    """The children's load averages after their timed calls; None if none was read."""
    loads = [r["load"] for r in rows if r.get("load") is not None]
    if not loads:
        return None
    return (f"1-min load average after each child's timed calls: max {max(loads):.2f}, "
            f"median {statistics.median(loads):.2f} (at the end: {load_end}; "
            f"{os.cpu_count()} CPUs). Other processes on the machine inflate and "
            "scatter the times (see README)")


def call_notes(name: str, row: dict, budget_option: str, extra: str = "") -> list:
    """``name: call times ...`` (with the cut by ``budget_option``, then ``extra``) and its warnings."""
    line = f"{name}: call times " + times_text(row["times"])
    if len(row["times"]) < row["repeats_asked"]:
        line += f" (REDUCED to {len(row['times'])} of {row['repeats_asked']} by {budget_option})"
    return [line + extra] + [f"{name} warned: {msg}" for msg in row["warnings"]]


def child_notes(rows, load_end: str, budget_option: str, *, name, impl_notes=None,
                call_extra=None) -> list:
    """The notes on the children of a parent that runs implementations.

    Same data or not; the environment of each implementation (its first row,
    followed by ``impl_notes(row)``); the load averages; each row's call times
    and warnings (``call_notes``, labelled ``name(row)``, ``call_extra(row)``
    appended).
    """
    notes = [same_data_note(rows)]
    seen = set()
    for r in rows:
        if r["impl"] not in seen:
            seen.add(r["impl"])
            notes.append(environment_line(r["impl"], r["versions"]))
            notes += impl_notes(r) if impl_notes else []
    load = load_note(rows, load_end)
    if load is not None:
        notes.append(load)
    for r in rows:
        notes += call_notes(name(r), r, budget_option, call_extra(r) if call_extra else "")
    return notes


def quick_note(scaled: str) -> str:
    """The note of a quick run that divides ``scaled`` (e.g. "units") by 10."""
    return f"QUICK run: 1/10 of the {scaled}; verdicts are indicative only"


def print_notes(notes) -> None:
    """A blank line, then ``note: ...`` lines."""
    print()
    for note in notes:
        print("note: " + note)


def finish(notes, failed, *, quick_scaled: str | None = None, closing=()) -> int:
    """Print the notes and return the parent's exit status (1 if any child failed).

    After ``notes`` come the :func:`quick_note` (with ``quick_scaled``, on a
    quick run) and the ``closing`` notes.
    """
    print_notes(list(notes) + ([quick_note(quick_scaled)] if quick_scaled else [])
                + list(closing))
    return 1 if failed else 0
