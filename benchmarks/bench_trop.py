"""Benchmark of ``diff_diff.TROP`` against 3.13.0 and the authors' package ``trop``.

The issue's targets (printed as verdicts, information otherwise): Prop 99 with the
default grids (cross-validation) and 200 bootstrap draws at least 50x faster than
3.13.0; the simulated 500 x 40 panel with fixed tuning values faster than ``trop``.

Cases (one estimator call each; one table per case):

======================  ======  ==================================  ====================
case                    method  tuning, variance                    implementations
======================  ======  ==================================  ====================
prop99_fixed            global  one-point grids, 200 draws          new, old, trop
prop99_fixed_local      local   one-point grids, 200 draws          new, old
prop99_default          global  default grids (CV), 200 draws       new, old
prop99_default_local    local   default grids (CV), 200 draws       new, old
sim_500x40              global  one-point grids, ``--sim-draws``    new, trop, old
                                (20) draws                          (old: one call,
                                                                    killed after 300 s)
======================  ======  ==================================  ====================

One-point grids: ``lambda_time = 0.5``, ``lambda_unit = 0.1``, ``lambda_nn = 1.0``.
Default grids: the checkout's defaults, passed explicitly to BOTH implementations so that
both search the same grid: time and unit ``[0, 0.1, 0.5, 1, 2, 5]`` (3.13.0's defaults
too), nn ``[0.01, 0.1, 1, inf]`` (3.13.0's own default nn grid is ``[0, 0.01, 0.1, 1,
10]``; its 0 is undefined for the checkout, which rejects it, and 3.13.0 maps ``inf`` to
1e10, "no factor model"). Each version cross-validates its own way (3.13.0: all control
cells, every grid point, in its Rust backend; the checkout: up to 100 sampled control
cells, a coordinate search). Bootstrap seed 0 everywhere, 200 draws, the same method.

Implementations, each case in its own fresh subprocess:

* ``new``: the checkout (current interpreter)::

      res = TROP(method=m, lambda_time_grid=[0.5], lambda_unit_grid=[0.1],
                 lambda_nn_grid=[1.0], n_bootstrap=B, seed=0).fit(
          df, outcome, treatment, unit, time)
      res.att, res.se

  (default grids: no ``lambda_*_grid``). With ONE treated unit (Prop 99) the
  checkout's bootstrap SE is undefined and ``fit`` returns NaN without drawing,
  so its timed call is the tuning and the fit alone. Column ``+draws s`` then
  times, once and outside the judged call, the B draws that the call skips
  (the private ``TROP._bootstrap`` on the tuned problem: the same resampling and
  refits as with several treated units), and ``/ (new+draws)`` compares like
  with like (3.13.0 fits its B draws even with one treated unit); the speed
  targets are judged on that ratio; the agreement section gives the SE of those
  draws.
* ``old``: diff-diff 3.13.0's ``TROP`` with the same call (its ``fit`` has the
  same signature; its bootstrap and LOOCV run in its Rust backend, its main fit
  in Python). It computes a LOOCV score even for one-point grids.
* ``trop``: ``trop`` 0.1.11, the authors' package (cvxpy; SCS for a finite
  ``lambda_nn``). It has no local method and no data-frame interface: the child
  builds the N x T matrices ``Y``, ``W`` (untimed; no pandas in its venv) and
  times::

      res = trop.bootstrap(Y, W, treated_rows, k, lambdas=(0.1, 0.5, 1.0),
                           n_bootstrap=B, resample="stratified",
                           n_jobs=J, random_state=0)
      res.estimate, res.se

  ``k`` = number of treated periods (the last ``k`` columns); ``res.estimate``
  is ``TROP_TWFE_average`` on the full panel, each draw resamples treated and
  control units separately (as ``new`` and 3.13.0 do) and refits with the
  tuning fixed. ``n_jobs`` is ``--trop-jobs`` (default 1: one process, as the
  others; its default -1 would use every core).

The old release and ``trop`` run under their own interpreters (``-E -s``):
``--old-python`` (default ``$DIFF_DIFF_OLD_PYTHON``, ``benchmarks/.venv313/bin/python``
or ``venv313`` next to the checkout) and ``--trop-python`` (default
``$DIFF_DIFF_TROP_PYTHON``, ``benchmarks/.venv-trop/bin/python``, ``venv-trop`` or
``scratch/venv-trop`` next to the checkout)::

    python -m venv /work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0
    python -m venv /work/scratch/venv-trop && /work/scratch/venv-trop/bin/pip install trop==0.1.11

An implementation without an interpreter is reported as "not run". A 3.13.0 child
that runs past ``--old-timeout`` (prop99 cases, 1200 s) or ``--old-sim-timeout``
(``sim_500x40``, 300 s) is killed and reported as "> N s", its ratio as a lower bound
("> R x"; a target is PASS when that bound reaches it). ``--old-timeout-ratio R`` instead
gives a prop99 case's 3.13.0 child ``R`` times the time of ``new`` measured just before
in the same run (median plus its skipped draws): it either finishes or shows a lower
bound of exactly ``R``.

Data (made in every child with the standard library and numpy; a fingerprint of the
N x T matrices shows that all children saw the same panel; not timed):

* ``prop99_*``: the checkout's ``diff_diff/datasets/data/prop99.csv`` (the file
  behind ``diff_diff.load_prop99()``: ``state``, ``year``, ``packspercapita``,
  ``treated``), read with the csv module: 39 states (California treated 1989-2000)
  x 31 years (1970-2000), ``k = 12``.
* ``sim_500x40``: :func:`make_sim_panel`, the generator of
  ``tests/parity/ports/trop_reference.py`` (``SIM_BIG``): ``rng =
  numpy.random.default_rng(20250830)``, drawn in this order: ``alpha ~ N(0, 1)``
  (500 unit effects), ``beta ~ N(0, 1)`` (40 period effects), loadings ``U ~ N(0,
  1)`` (500 x 2), factors ``V ~ N(0, 1)`` (40 x 2), noise ``eps ~ N(0, 0.5^2)``
  (500 x 40); then ``U[:50] += 0.5``; units 0-49 treated in periods 31-40 (0-based
  columns 30-39, ``k = 10``), effect ``1 + 0.25 (t - 30)`` in 0-based column ``t``;
  ``Y = 10 + alpha_i + beta_t + (U V')_it + eps_it + effect_it W_it``. Frame columns
  ``unit`` (0-499), ``period`` (1-40), ``y``, ``treated`` (the cell's 0/1 state).
  ``--quick`` divides the units and treated units by 10 (50 x 40, 5 treated).

Measuring (as ``bench_sdid.py``): glibc's default allocator; repeats (5 for
``new``, 3 for the others; every implementation stops early once another call
would take the case past ``--new-budget`` (240 s) or ``--slow-budget`` (240 s),
shown as e.g. ``2 of 3``; ``sim_500x40`` makes one call each); the first call,
median and minimum wall time; ``tracemalloc MB`` of one extra call (skipped above
``--traced-limit`` seconds); ``RSS +MB`` the rise of the resident-set high-water
mark during the timed calls; ``max RSS MB`` the child's peak. Each table ends with
the ratios median / median over ``new`` (and over ``new`` + ``+draws s``).

Agreement: the parent prints every ATT and SE and the differences from ``new``.
Global, fixed tuning: ``new`` solves the convex problem to ``tol = 1e-10``; ``trop``
stops SCS at its default accuracy, so ~1e-6 relative is expected; 3.13.0 stops its
alternating minimization after 100 outer iterations (``tol = 1e-6``), so it differs
by its solver's accuracy. Bootstrap SEs use different draws in each implementation
(Monte Carlo noise, ~5% with 200 draws). Default grids: each version's own
cross-validation (the chosen tuning values are printed).

Usage::

    python benchmarks/bench_trop.py                        # everything (~1 h on 2 cores)
    python benchmarks/bench_trop.py --quick                # sim units / 10, draws / 10
    python benchmarks/bench_trop.py --cases prop99_fixed sim_500x40 --impls new trop
    python benchmarks/bench_trop.py --sim-draws 200 --old-sim-timeout 900
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.util
import math
import os
import statistics
import sys
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py is next to this script (also in the other venvs' children)
    sys.path.insert(0, HERE)
if importlib.util.find_spec("pandas") is None:
    # trop's venv has no pandas. _harness imports it at module level but uses it only
    # for data frames (not made in that child) and its version string.
    _stub = types.ModuleType("pandas")
    _stub.__version__ = "not installed"
    sys.modules["pandas"] = _stub
import _harness as harness  # noqa: E402
from _harness import OLD_RELEASE, OLD_VERSION  # noqa: E402

TROP_VERSION = "0.1.11"
PROP99_CSV = os.path.join(harness.REPO, "diff_diff", "datasets", "data", "prop99.csv")
SIM = dict(n_units=500, n_periods=40, n_treated=50, first_treated=30, seed=20250830,
           rank=2, noise_sd=0.5, loading_shift=0.5)
FIXED = dict(lambda_time=0.5, lambda_unit=0.1, lambda_nn=1.0)
N_DRAWS = 200
SIM_DRAWS = 20
BOOT_SEED = 0
TARGETS = {  # case -> {impl: minimum ratio impl / new}
    "prop99_default": {"old": 50.0},
    "prop99_default_local": {"old": 50.0},
    "sim_500x40": {"trop": 1.0},
}


@dataclasses.dataclass(frozen=True)
class _ScratchInterpreter(harness.Interpreter):
    """An interpreter also looked up under ``scratch/`` next to the checkout."""

    def candidates(self) -> tuple:
        return super().candidates() + (
            os.path.join(os.path.dirname(harness.REPO), "scratch", self.venv, "bin", "python"),)


INTERPRETERS = {
    "old": OLD_RELEASE,
    "trop": _ScratchInterpreter(
        "trop", "DIFF_DIFF_TROP_PYTHON", "venv-trop", f"trop=={TROP_VERSION}",
        f"python -m venv /work/scratch/venv-trop && /work/scratch/venv-trop/bin/pip install "
        f"trop=={TROP_VERSION}"),
}

# case -> data, method, grids ("fixed": one-point grids, "default": each version's), impls
CASES = {
    "prop99_fixed": dict(data="prop99", method="global", grids="fixed",
                         impls=("new", "old", "trop")),
    "prop99_fixed_local": dict(data="prop99", method="local", grids="fixed",
                               impls=("new", "old")),
    "prop99_default": dict(data="prop99", method="global", grids="default",
                           impls=("new", "old")),
    "prop99_default_local": dict(data="prop99", method="local", grids="default",
                                 impls=("new", "old")),
    "sim_500x40": dict(data="sim", method="global", grids="fixed",
                       impls=("new", "trop", "old")),
}
# implementation -> interpreter key, table label
IMPLS = {
    "new": (None, "new: checkout"),
    "old": ("old", f"old: {OLD_VERSION}"),
    "trop": ("trop", f"trop {TROP_VERSION}"),
}
# data -> column roles of the frame
COLUMNS = {
    "prop99": dict(outcome="packspercapita", treatment="treated", unit="state", time="year"),
    "sim": dict(outcome="y", treatment="treated", unit="unit", time="period"),
}


# ---------------------------------------------------------------------------
# data (standard library and numpy only: the trop child has no pandas)
# ---------------------------------------------------------------------------
def make_sim_panel(n_units: int, n_treated: int) -> tuple:
    """The simulated panel (module docstring): ``(Y, W)``, units in rows."""
    s = SIM
    rng = np.random.default_rng(s["seed"])
    alpha = rng.normal(0.0, 1.0, n_units)
    beta = rng.normal(0.0, 1.0, s["n_periods"])
    U = rng.normal(0.0, 1.0, (n_units, s["rank"]))
    V = rng.normal(0.0, 1.0, (s["n_periods"], s["rank"]))
    eps = rng.normal(0.0, s["noise_sd"], (n_units, s["n_periods"]))
    U[:n_treated] += s["loading_shift"]
    W = np.zeros((n_units, s["n_periods"]))
    W[:n_treated, s["first_treated"]:] = 1.0
    t = np.arange(s["n_periods"])
    effect = (1.0 + 0.25 * (t - s["first_treated"]))[None, :] * W
    Y = 10.0 + alpha[:, None] + beta[None, :] + U @ V.T + eps + effect
    return Y, W


def load_prop99_matrices() -> tuple:
    """``(Y, W, states, years)`` from prop99.csv: states and years sorted."""
    with open(PROP99_CSV, newline="") as fh:
        records = list(csv.DictReader(fh))
    states = sorted({r["state"] for r in records})
    years = sorted({int(r["year"]) for r in records})
    s_index = {s: i for i, s in enumerate(states)}
    y_index = {y: j for j, y in enumerate(years)}
    Y = np.full((len(states), len(years)), np.nan)
    W = np.zeros_like(Y)
    for r in records:
        i, j = s_index[r["state"]], y_index[int(r["year"])]
        Y[i, j] = float(r["packspercapita"])
        W[i, j] = float(r["treated"])
    if not np.isfinite(Y).all():
        raise RuntimeError("prop99.csv is not a balanced panel")
    return Y, W, states, years


def make_matrices(case: str, scale: int) -> tuple:
    """``(Y, W, unit labels, period labels)`` of a case."""
    if CASES[case]["data"] == "prop99":
        return load_prop99_matrices()
    Y, W = make_sim_panel(SIM["n_units"] // scale, SIM["n_treated"] // scale)
    return Y, W, list(range(Y.shape[0])), list(range(1, Y.shape[1] + 1))


def make_frame(case: str, Y, W, units, periods):
    """The long frame handed to diff-diff (one row per unit and period)."""
    import pandas as pd

    cols = COLUMNS[CASES[case]["data"]]
    n, n_t = Y.shape
    return pd.DataFrame({cols["unit"]: np.repeat(np.asarray(units), n_t),
                         cols["time"]: np.tile(np.asarray(periods), n),
                         cols["outcome"]: Y.ravel(),
                         cols["treatment"]: W.ravel().astype(np.int64)})


def matrix_fingerprint(Y, W, units, periods) -> str:
    """Short hash of the matrices and their labels (did every child get the same panel?)."""
    digest = hashlib.sha256()
    for a in (Y, W):
        digest.update(f"{a.shape}".encode())
        digest.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    digest.update(repr([str(u) for u in units]).encode())
    digest.update(repr([str(p) for p in periods]).encode())
    return digest.hexdigest()[:16]


def n_draws(case: str, args) -> int:
    base = args.sim_draws if CASES[case]["data"] == "sim" else N_DRAWS
    return max(2, base // args.scale)


# ---------------------------------------------------------------------------
# the timed calls; each returns (result object, summary)
# ---------------------------------------------------------------------------
DEFAULT_GRIDS = dict(lambda_time_grid=[0.0, 0.1, 0.5, 1.0, 2.0, 5.0],
                     lambda_unit_grid=[0.0, 0.1, 0.5, 1.0, 2.0, 5.0],
                     lambda_nn_grid=[0.01, 0.1, 1.0, math.inf])


def _grid_kwargs(case: str) -> dict:
    if CASES[case]["grids"] == "default":  # the same explicit grids for every version
        return {k: list(v) for k, v in DEFAULT_GRIDS.items()}
    return dict(lambda_time_grid=[FIXED["lambda_time"]], lambda_unit_grid=[FIXED["lambda_unit"]],
                lambda_nn_grid=[FIXED["lambda_nn"]])


def _summary(res) -> dict:
    out = dict(att=float(res.att), se=float(res.se), lambda_time=float(res.lambda_time),
               lambda_unit=float(res.lambda_unit), lambda_nn=float(res.lambda_nn),
               loocv_score=float(res.loocv_score) if res.loocv_score is not None else None)
    if hasattr(res, "unconverged_fits"):
        out["unconverged_fits"] = int(res.unconverged_fits)
    return out


def make_call(impl: str, case: str, data: tuple, draws: int, trop_jobs: int):
    """(timed call, versions, estimator factory or None)."""
    spec = CASES[case]
    Y, W, units, periods = data
    versions = harness.interpreter_versions()

    if impl in ("new", "old"):
        if impl == "new":
            diff_diff, fields = harness.checkout_package()
        else:
            diff_diff, fields = harness.old_package()
        versions.update(fields)
        df = make_frame(case, Y, W, units, periods)
        cols = COLUMNS[spec["data"]]

        def estimator():
            return diff_diff.TROP(method=spec["method"], n_bootstrap=draws, seed=BOOT_SEED,
                                  **_grid_kwargs(case))

        def call():
            res = estimator().fit(df, cols["outcome"], cols["treatment"], cols["unit"],
                                  cols["time"])
            return res, _summary(res)

        return call, versions, (estimator, df, cols)

    if impl == "trop":
        import trop

        versions.update(package=f"trop {TROP_VERSION}", path=harness.module_dir(trop))
        treated = np.flatnonzero(W.any(axis=1))
        k = int(W.any(axis=0).sum())
        lambdas = (FIXED["lambda_unit"], FIXED["lambda_time"], FIXED["lambda_nn"])

        def call():
            res = trop.bootstrap(Y, W, treated, k, lambdas=lambdas, n_bootstrap=draws,
                                 resample="stratified", n_jobs=trop_jobs,
                                 random_state=BOOT_SEED)
            return res, dict(att=float(res.estimate), se=float(res.se),
                             n_failed=int(res.n_failed))

        return call, versions, None

    raise ValueError(impl)


def skipped_draws(estimator, df, cols, summary: dict, draws: int) -> dict:
    """Time the bootstrap draws that the checkout skips with one treated unit (NaN SE):
    its private ``TROP._bootstrap`` on the tuned problem, once. Empty if it drew."""
    if not math.isnan(summary["se"]):
        return {}
    from diff_diff.estimators.trop import TROPProblem  # private; may change

    est = estimator()
    Y, W, *_ = est._matrix(df, cols["outcome"], cols["treatment"], cols["unit"], cols["time"])
    problem = TROPProblem(Y, W, est.method, est.tol, est.max_iter)
    lambdas = (summary["lambda_time"], summary["lambda_unit"], summary["lambda_nn"])
    rng = np.random.default_rng(BOOT_SEED)
    t0 = time.perf_counter()
    values = est._bootstrap(problem, lambdas, np.ones(Y.shape[0]), None, rng)
    seconds = time.perf_counter() - t0
    return dict(draws_s=seconds, draws_se=float(np.std(values, ddof=1)), draws_n=int(values.size))


# ---------------------------------------------------------------------------
# child: one implementation, one case, one process
# ---------------------------------------------------------------------------
def run_child(args) -> int:
    impl, case = args.child, args.case
    tag = f"[{case}/{impl}]"
    data, gen_s = harness.timed(make_matrices, case, args.scale)
    fp = matrix_fingerprint(*data)
    draws = n_draws(case, args)
    call, versions, factory = make_call(impl, case, data, draws, args.trop_jobs)
    Y = data[0]
    print(f"{tag} {versions['package']}: {Y.shape[0]} x {Y.shape[1]} panel made in "
          f"{gen_s:.2f} s; {draws} draws", file=sys.stderr, flush=True)
    row = dict(impl=impl, case=case, shape=list(Y.shape), draws=draws, versions=versions,
               fingerprint=fp, gen_s=gen_s, error=None)
    single = CASES[case]["data"] == "sim"
    repeats = 1 if single else (args.repeats if impl == "new" else args.slow_repeats)
    budget = args.new_budget if impl == "new" else args.slow_budget
    try:
        timing = harness.time_calls(call, repeats, budget=budget, keep=lambda out: out[1],
                                    tag=tag, warning_chars=160, squash_warnings=True)
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
    if impl == "new":
        extra = skipped_draws(*factory, timing.kept, draws)
        row["summary"].update(extra)
        if extra:
            print(f"  {tag} +{extra['draws_n']} skipped draws: {extra['draws_s']:.3f} s",
                  file=sys.stderr, flush=True)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------
def old_timeout(case: str, args, new_row: dict | None = None) -> float:
    """The 3.13.0 child's kill budget: ``--old-timeout-ratio`` times new's time (median
    plus skipped draws) in a prop99 case when given and new ran, else the fixed one."""
    if CASES[case]["data"] == "sim":
        return args.old_sim_timeout
    if args.old_timeout_ratio and new_row is not None:
        full = with_draws_s(new_row)
        return args.old_timeout_ratio * (new_row["median_s"] if full is None else full)
    return args.old_timeout


def run_children(cases, impls, pythons: dict, args, env) -> tuple:
    """Every case x implementation in its own child; 3.13.0 children are killed after
    their timeout. Returns rows, missing (reasons), failed tags, error notes and the
    budgets of the killed children (``over``: key -> seconds)."""
    interpreter_of = {m: IMPLS[m][0] for m in IMPLS}
    extra = ["--sim-draws", str(args.sim_draws), "--trop-jobs", str(args.trop_jobs),
             "--new-budget", str(args.new_budget)]
    rows, missing, failed, errors, over = {}, {}, [], [], {}
    for case in cases:
        case_impls = [m for m in impls if m in CASES[case]["impls"]]
        jobs, _ = harness.case_jobs([case], case_impls, interpreter_of, pythons, args,
                                    extra=lambda c, m: extra)
        for job in jobs:
            if job.python is None:
                missing[job.key] = "not run (no interpreter)"
                continue
            impl = job.key[1]
            timeout = (old_timeout(case, args, rows.get((case, "new"))) if impl == "old"
                       else args.child_timeout)
            if impl == "old":
                print(f"[{job.tag}] kill budget {timeout:.1f} s", file=sys.stderr, flush=True)
            cmd = harness.child_command(job.python, __file__, job.args, isolated=job.isolated)
            row, code = harness.run_child(cmd, env, job.tag, timeout)
            if row is not None:
                rows[job.key] = row
            elif code is None and impl == "old":
                missing[job.key] = f"> {timeout:g} s (killed)"
                over[job.key] = timeout
                print(f"[{job.tag}] killed: did not finish in {timeout:g} s", file=sys.stderr,
                      flush=True)
            else:
                failed.append(job.tag)
                missing[job.key] = "not run (crashed)"
                errors.append(f"{job.tag} timed out after {timeout:g} s" if code is None else
                              f"{job.tag} failed (exit {code}); see its stderr above")
    return rows, missing, failed, errors, over


def case_title(case: str, args) -> str:
    spec = CASES[case]
    grids = ("one-point grids (lambda_time 0.5, lambda_unit 0.1, lambda_nn 1)"
             if spec["grids"] == "fixed" else "default grids (leave-one-out CV)")
    draws = n_draws(case, args)
    if spec["data"] == "prop99":
        data = "Prop 99, 39 states (1 treated) x 31 years (12 treated)"
    else:
        n = SIM["n_units"] // args.scale
        data = (f"simulated, {n} units ({SIM['n_treated'] // args.scale} treated) x "
                f"{SIM['n_periods']} periods ({SIM['n_periods'] - SIM['first_treated']} treated)")
    return f"{case}: method={spec['method']}, {grids}, {draws} draws; {data}"


def with_draws_s(row: dict) -> float | None:
    """The median of new plus its skipped draws; None if it did not skip them."""
    extra = row["summary"].get("draws_s")
    return None if extra is None else row["median_s"] + extra


def print_tables(rows: dict, missing: dict, over: dict, cases, impls, args) -> None:
    header = ["implementation", "repeats", "first s", "median s", "min s", "+draws s",
              "tracemalloc MB", "RSS +MB", "max RSS MB", "median / new", "/ (new+draws)"]
    for case in cases:
        body = []
        new = rows.get((case, "new"))
        full = with_draws_s(new) if new is not None else None
        for impl in impls:
            if impl not in CASES[case]["impls"]:
                continue
            r, reason = rows.get((case, impl)), missing.get((case, impl))
            if r is None and reason is None:
                continue
            cells = [IMPLS[impl][1]]
            if r is None and (case, impl) in over and new is not None:
                limit = over[(case, impl)]  # killed: its time is a lower bound
                ratio_full = "-" if full is None else f"> {limit / full:.1f}x"
                body.append(cells + ["0 of 1", f"> {limit:g}", f"> {limit:g}"] + ["-"] * 5
                            + [f"> {limit / new['median_s']:.1f}x", ratio_full])
                continue
            if r is None:
                body.append(cells + [reason] + ["-"] * 9)
                continue
            extra = r["summary"].get("draws_s")
            ratio = ratio_full = "-"
            if new is not None and impl != "new":
                ratio = f"{r['median_s'] / new['median_s']:.2f}x"
                if full is not None:
                    ratio_full = f"{r['median_s'] / full:.2f}x"
            body.append(cells + [harness.repeats_cell(r), f"{r['times'][0]:.3f}"]
                        + harness.timing_cells(r)
                        + ["-" if extra is None else f"{extra:.3f}"]
                        + harness.memory_cells(r) + [ratio, ratio_full])
        if not body:
            continue
        print(case_title(case, args))
        harness.print_table(header, body, ["<"] + [">"] * 10)
        print()


def _lambdas_text(s: dict) -> str:
    return (f"lambda time/unit/nn {s['lambda_time']:g}/{s['lambda_unit']:g}/"
            f"{s['lambda_nn']:g}")


def print_agreement(rows: dict, cases, impls) -> list[str]:
    notes = []
    print("agreement with new (ATT and SE; SE* = SE of new's skipped draws):")
    for case in cases:
        new = rows.get((case, "new"))
        if new is None:
            continue
        s = new["summary"]
        se_ref = s.get("draws_se", s["se"])
        line = f"  {case}: new ATT {s['att']:.10f}  SE {s['se']:.6g}"
        if "draws_se" in s:
            line += f"  SE* {s['draws_se']:.6g}"
        if CASES[case]["grids"] == "default":
            line += f"  ({_lambdas_text(s)}, LOOCV MSE {s['loocv_score']})"
        if s.get("unconverged_fits"):
            line += f"  unconverged fits {s['unconverged_fits']}"
        print(line)
        for m in impls:
            r = rows.get((case, m))
            if m == "new" or r is None:
                continue
            o = r["summary"]
            d = abs(s["att"] - o["att"])
            text = (f"    {IMPLS[m][1]:<14} ATT {o['att']:.10f}  |dATT| {d:.2e} (rel "
                    f"{d / abs(s['att']):.1e})  SE {o['se']:.6g}  SE new/this "
                    f"{se_ref / o['se']:.4f}")
            if CASES[case]["grids"] == "default" and "lambda_time" in o:
                text += f"  ({_lambdas_text(o)})"
            if o.get("n_failed"):
                text += f"  failed draws {o['n_failed']}"
            print(text)
            if r["fingerprint"] != new["fingerprint"]:
                notes.append(f"{case}/{m} saw DIFFERENT data (fingerprint {r['fingerprint']} "
                             f"vs {new['fingerprint']}); its agreement numbers are not "
                             "meaningful")
    return notes


def print_verdicts(rows: dict, missing: dict, over: dict, cases, impls,
                   quick: bool) -> None:
    lines = []
    for case in cases:
        new = rows.get((case, "new"))
        for impl, target in TARGETS.get(case, {}).items():
            r = rows.get((case, impl))
            label = f"{case} {IMPLS[impl][1]} / new"
            full = with_draws_s(new) if new is not None else None
            if full is not None:  # judged like for like: new with its skipped draws
                label = f"{case} {IMPLS[impl][1]} / (new + draws)"
            if new is not None and r is None and (case, impl) in over:
                bound = over[(case, impl)] / (new["median_s"] if full is None else full)
                verdict = "PASS" if bound >= target else "NOT SHOWN"
                text = (f"{verdict}: {label} > {bound:.3g}x (killed after "
                        f"{over[(case, impl)]:.1f} s: a lower bound; target >= {target:g}x)")
                if full is not None:
                    text += (f"; new's call alone (NaN SE, no draws) > "
                             f"{over[(case, impl)] / new['median_s']:.3g}x")
                lines.append(text)
                continue
            if new is None or r is None:
                reason = missing.get((case, impl), "missing row" if impl in impls
                                     and "new" in impls else "not in --impls")
                lines.append(f"NOT JUDGED: {label} ({reason})")
                continue
            ratio = r["median_s"] / (new["median_s"] if full is None else full)
            verdict = "PASS" if ratio >= target else "FAIL"
            if quick:
                verdict += " (quick run: indicative only)"
            goal = "faster than it" if target == 1.0 else f"target >= {target:g}x"
            text = f"{verdict}: {label} = {ratio:.3g}x ({goal})"
            if full is not None:
                text += (f"; new's call alone (NaN SE, no draws) "
                         f"{r['median_s'] / new['median_s']:.3g}x")
            lines.append(text)
        if case == "sim_500x40" and (case, "old") in missing:
            lines.append(f"INFO: {case} {IMPLS['old'][1]}: {missing[(case, 'old')]}")
    if lines:
        print("\nspeed targets (median / median):")
        for line in lines:
            print("  " + line)


def run_parent(args) -> int:
    cases = args.cases or list(CASES)
    impls = args.impls or list(IMPLS)
    harness.print_header(
        "TROP", args.quick, "simulated units and the bootstrap draws",
        data=f"prop99: {PROP99_CSV}; sim: make_sim_panel, {SIM['n_units'] // args.scale} "
             f"units x {SIM['n_periods']} periods, rank-2 factors, seed {SIM['seed']}",
        criteria="targets: prop99_default (both methods) old/new >= 50x; sim_500x40 "
                 "trop/new > 1")
    env = harness.child_environment(args.mmap_threshold, args.threads)
    harness.print_children_setup(
        "case x implementation", env, f"new {args.repeats} (budget {args.new_budget:g} s), "
        f"others {args.slow_repeats} (budget {args.slow_budget:g} s), sim_500x40 1; "
        f"{OLD_VERSION} killed after "
        + (f"{args.old_timeout_ratio:g} x new's time (median + skipped draws)"
           if args.old_timeout_ratio else f"{args.old_timeout:g} s")
        + f" (sim {args.old_sim_timeout:g} s); "
        f"trop n_jobs={args.trop_jobs}")
    needed = {IMPLS[m][0] for m in impls}
    pythons, notes = harness.locate_interpreters(INTERPRETERS, args, needed)
    rows, missing, failed, errors, over = run_children(cases, impls, pythons, args, env)
    notes += errors
    for key, r in list(rows.items()):
        if r.get("error"):
            missing[key] = r["error"][:60]
            notes.append(f"{key[0]}/{key[1]}: {r['error']}")
            del rows[key]

    load_end = harness.load_text()
    print()
    print_tables(rows, missing, over, cases, impls, args)
    notes = print_agreement(rows, cases, impls) + notes
    print_verdicts(rows, missing, over, cases, impls, args.quick)

    traced_skip = f"; tracemalloc skipped (median over --traced-limit {args.traced_limit:g} s)"
    all_rows = list(rows.values())
    child = harness.child_notes(all_rows, load_end, "--slow-budget / --new-budget",
                                name=lambda r: f"{r['case']}/{r['impl']}",
                                call_extra=lambda r: traced_skip if r["traced_mb"] is None
                                else "")
    fps = {}
    for (case, _), r in rows.items():
        fps.setdefault(CASES[case]["data"], set()).add(r["fingerprint"])
    notes += [f"{d} data: same in every child: {'yes' if len(f) == 1 else 'NO'} (fingerprint "
              f"{', '.join(sorted(f))})" for d, f in fps.items()] + child[1:]
    return harness.finish(
        notes, failed,
        quick_scaled="simulated units and the bootstrap draws" if args.quick else None,
        closing=[
            "timed work: the fit with its standard error (tuning included; trop: "
            "trop.bootstrap, i.e. the full-panel estimate plus the draws)",
            "+draws s: the bootstrap draws the checkout skips with one treated unit (its SE is "
            "NaN by design there), timed once outside the judged call; '/ (new+draws)' "
            "divides by median + that time",
            f"sim_500x40 uses {n_draws('sim_500x40', args)} draws, not {N_DRAWS}: one fit of "
            "new or trop takes tens of seconds there; every implementation's time grows "
            "linearly with the draws"])


def main(argv=None) -> int:
    parser = harness.case_parser(__doc__, CASES, IMPLS, INTERPRETERS, "3.13.0 and trop",
                                 slow_budget=240.0, child_timeout=7200.0)
    parser.add_argument("--new-budget", type=float, default=240.0,
                        help="stop the new repeats once another call would pass this many "
                             "seconds in the case")
    parser.add_argument("--sim-draws", type=int, default=SIM_DRAWS,
                        help="bootstrap draws in sim_500x40 (divided by 10 with --quick)")
    parser.add_argument("--trop-jobs", type=int, default=1,
                        help="n_jobs of trop.bootstrap (default 1; -1: every core)")
    parser.add_argument("--old-timeout", type=float, default=1200.0,
                        help="kill a 3.13.0 child of a prop99 case after this many seconds")
    parser.add_argument("--old-timeout-ratio", type=float, default=0.0,
                        help="give a prop99 case's 3.13.0 child this many times new's time "
                             "in the same run (median + skipped draws) instead of "
                             "--old-timeout (0: off)")
    parser.add_argument("--old-sim-timeout", type=float, default=300.0,
                        help="kill the 3.13.0 child of sim_500x40 after this many seconds")
    return harness.dispatch(parser.parse_args(argv), "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
