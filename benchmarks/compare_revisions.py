"""Speed and memory of two revisions of ``diff_diff``, side by side in one run.

Meant for refactors: does the change cost time or memory beyond the noise of
the machine, and do the estimates stay the same? The script checks out the
base revision into a temporary ``git worktree`` (removed at the end, also on
error or Ctrl-C) and times the same public-API calls on both sides::

    python benchmarks/compare_revisions.py               # HEAD vs the working tree, ~2.5 min
    python benchmarks/compare_revisions.py --quick       # units / 10, < 1 min
    python benchmarks/compare_revisions.py --base main~3 --cases cs cs_boot --rounds 4
    python benchmarks/compare_revisions.py --base HEAD~1 --current HEAD   # two commits
    python benchmarks/compare_revisions.py --repeats 7 --threads 1

Sides: ``base`` imports ``diff_diff`` from the worktree of ``--base`` (default
``HEAD``); ``current`` from this checkout's working tree, uncommitted changes
included (or from a second worktree with ``--current REV``). Each child gets
``PYTHONPATH=<side root>`` and checks that every ``diff_diff`` module it loaded
lives under that root (the editable install's finder comes after
``PYTHONPATH``); otherwise it exits with status 3 and the run stops.

Cases (``units`` at full size; ``--quick`` divides them by 10). The data come
from the other benchmark scripts' generators (imported, so both sides get the
same frames; a fingerprint checks it), plus a per-unit survey design: 50
strata x 4 PSUs (200 PSUs), unequal weights in [1, 4):

================  =======================================================  =======
case              call (public API only)                                   units
================  =======================================================  =======
cs                ``CallawaySantAnna()`` (dr), no covariates, analytic     150,000
cs_survey         the same with ``SurveyDesign(weights, strata, psu)``     150,000
cs_replicate      the same with the JKn design of ``as_replicate_design``   30,000
                  (25 strata x 2 PSUs: 50 replicates)
cs_boot           ``CallawaySantAnna(n_bootstrap=999, seed=1)``             50,000
imputation        ``ImputationDiD()``, analytic                              50,000
had               ``HeterogeneousAdoptionDiD("continuous_at_zero")``,        60,000
                  8 periods, ``effects=4, placebo=3``
twfe_survey       ``TwoWayFixedEffects()`` with the survey design           100,000
twfe_cluster      ``TwoWayFixedEffects(cluster="psu")``                     100,000
rake_replicates   ``calibrate`` (raking by state-year, 3 margins) of a      265,000
                  design with 80 bootstrap replicate columns, each        (rows)
                  recalibrated
================  =======================================================  =======

CS, ImputationDiD and HAD panels: ``bench_cs.make_panel`` / ``bench_had.make_event``
(20 / 8 periods); TWFE: ``bench_twfe.make_panel`` (20 periods). Each timed call
fits, then reads ``res.att``, ``res.se`` and (CS, ImputationDiD, HAD)
``res.event_study_effects``, so lazily computed inference is inside the timing.
``rake_replicates``: ``bench_calibration.sample`` / ``totals`` (350 state-year cells) plus
80 replicate columns ``w * U(0.5, 1.5)``; its "estimates" are 400 calibrated replicate
weights (rows 0, 1000, ... of replicates 0, 26, 53, 79), so ``agree`` compares weights.
The survey design object is deep-copied before each call (untimed), so no call
can reuse what an earlier one cached on it. The replicate columns are built by
each side's own ``as_replicate_design`` (untimed).

Measuring: every (case, side, round) is a fresh child process: ``--warmup``
untimed calls, then ``--repeats`` timed calls (``_harness.time_calls``). Sides
alternate (base, current, current, base, ...) over ``--rounds`` rounds per
case, so drifting machine load hits both alike. The table gives the median and
minimum over all timed calls of a side, their ratios current / base, the
``spread`` (largest relative difference between the per-child medians of one
side: a rough noise level), the children's peak RSS (``peak MB``: ``ru_maxrss``,
interpreter and data included) and the ``tracemalloc`` peak of one extra call
(``traced MB``: the call's own numpy/Python working memory, independent of the
allocator's caching), each the largest over the side's children, base /
current. ``flag`` says ``slower?`` when the median ratio is above
``1 + --threshold`` (0.10) and every current child's median is above every
base child's (``faster?`` the other way round), else ``same``: a prompt to
rerun that case with more ``--rounds``, not a verdict.

Agreement: the first timed call of each child returns ``att``, ``se`` and the
event-study estimates and SEs; ``d est`` / ``d se`` are the largest absolute
differences between the sides (att with the event-study estimates; se with
the event-study SEs); ``agree`` is ``exact`` (bitwise), ``yes`` (within
``--tol`` relative) or ``NO``. Children of one side that disagree with each
other, data that differ and a package source that changed during the run
(another editor) are reported in the notes.

Nothing is written to the repository; the worktree lives in a temporary
directory. Exit status 1 if a child failed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import hashlib
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # _harness.py and the data generators live next to this script
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
import bench_calibration  # noqa: E402
import bench_cs  # noqa: E402  (module level: numpy, pandas, _harness only)
import bench_had  # noqa: E402
import bench_twfe  # noqa: E402

REPO = harness.REPO
SIDES = ("base", "current")
WRONG_IMPORT = 3  # exit status of a child that imported diff_diff from elsewhere
DESIGN_SEED = 20240919
TSL_DESIGN = (50, 4)  # strata, PSUs per stratum
REPLICATE_DESIGN = (25, 2)  # JKn: one replicate per PSU

# case -> data family, units at full size, estimator, constructor options, survey design,
# whether the result has an event study (every frame gets the design columns)
CASES = {
    "cs": dict(data="cs", units=150_000, estimator="CallawaySantAnna", init={}, design=None,
               es=True),
    "cs_survey": dict(data="cs", units=150_000, estimator="CallawaySantAnna", init={},
                      design="tsl", es=True),
    "cs_replicate": dict(data="cs", units=30_000, estimator="CallawaySantAnna", init={},
                         design="replicate", es=True),
    "cs_boot": dict(data="cs", units=50_000, estimator="CallawaySantAnna",
                    init=dict(n_bootstrap=999, seed=1), design=None, es=True),
    "imputation": dict(data="cs", units=50_000, estimator="ImputationDiD", init={},
                       design=None, es=True),
    "had": dict(data="had", units=60_000, estimator="HeterogeneousAdoptionDiD",
                init=dict(design="continuous_at_zero"), design=None, es=True),
    "twfe_survey": dict(data="twfe", units=100_000, estimator="TwoWayFixedEffects", init={},
                        design="tsl", es=False),
    "twfe_cluster": dict(data="twfe", units=100_000, estimator="TwoWayFixedEffects",
                         init=dict(cluster="psu"), design=None, es=False),
    "rake_replicates": dict(data="calibration", units=265_000, estimator=None, init={},
                            design="replicate_columns", es=True),
}
N_CAL_REPLICATES = 80
FIT_COLUMNS = {
    "cs": dict(outcome="y", unit="unit", time="period", first_treat="first_treat"),
    "twfe": dict(outcome="y", treatment="d", unit="unit", time="period"),
    "had": dict(outcome="y", dose="d", time="t", unit="unit", effects=4, placebo=3),
}
HAD_PERIODS = 8


# ---------------------------------------------------------------------------
# data (plain numpy / pandas; the same in every child)
# ---------------------------------------------------------------------------
def add_design(df, n_strata: int, psu_per_stratum: int):
    """Per-unit ``stratum``, ``psu`` (nested, globally unique) and weight ``w`` columns.

    The generators number units 1..N, so unit ``u`` takes row ``u - 1`` of the draws.
    """
    unit = df["unit"].to_numpy()
    n_units = int(unit.max())
    rng = np.random.default_rng(DESIGN_SEED)
    stratum = rng.integers(0, n_strata, n_units)
    psu = stratum * psu_per_stratum + rng.integers(0, psu_per_stratum, n_units)
    weight = rng.uniform(1.0, 4.0, n_units)
    return df.assign(stratum=stratum[unit - 1], psu=psu[unit - 1], w=weight[unit - 1])


def make_data(spec: dict, scale: int):
    """The case's frame at ``units / scale`` units, with the survey design columns."""
    n_units = spec["units"] // scale
    if spec["data"] == "calibration":
        df = bench_calibration.sample(n_units)
        rng = np.random.default_rng(DESIGN_SEED)
        reps = df["w"].to_numpy()[:, None] * rng.uniform(0.5, 1.5, (n_units, N_CAL_REPLICATES))
        return df.assign(**{f"r{j}": reps[:, j] for j in range(N_CAL_REPLICATES)})
    if spec["data"] == "cs":
        df = bench_cs.make_panel(n_units)
    elif spec["data"] == "twfe":
        df = bench_twfe.make_panel(n_units)
    else:
        df = bench_had.make_event(n_units, HAD_PERIODS)
    shape = REPLICATE_DESIGN if spec["design"] == "replicate" else TSL_DESIGN
    return add_design(df, *shape)


# ---------------------------------------------------------------------------
# child: one case, one side, one round
# ---------------------------------------------------------------------------
def foreign_modules(root: str) -> list:
    """``diff_diff`` modules (or namespace paths) loaded from outside ``root``."""
    prefix = os.path.realpath(root) + os.sep
    bad = []
    for name, module in list(sys.modules.items()):
        if name != "diff_diff" and not name.startswith("diff_diff."):
            continue
        file = getattr(module, "__file__", None)
        paths = [file] if file else list(getattr(module, "__path__", []))
        bad += [f"{name}: {p}" for p in paths if not os.path.realpath(p).startswith(prefix)]
    return bad


def check_imports(root: str, when: str) -> None:
    """Exit with :data:`WRONG_IMPORT` if any ``diff_diff`` module is not under ``root``."""
    bad = sorted(foreign_modules(root))
    if bad:
        more = f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else ""
        print(f"FATAL ({when}): {len(bad)} diff_diff module(s) imported from outside {root}:"
              "\n  " + "\n  ".join(bad[:5]) + more, file=sys.stderr, flush=True)
        sys.exit(WRONG_IMPORT)


def source_hash(root: str) -> str:
    """Short hash of every ``.py`` file under ``root/diff_diff`` (did the code change?)."""
    digest = hashlib.sha256()
    package = os.path.join(root, "diff_diff")
    for folder, _, files in sorted(os.walk(package)):
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, package).encode() + b"\0")
            with open(path, "rb") as fh:
                digest.update(fh.read() + b"\0")
    return digest.hexdigest()[:12]


def make_design(dd, spec: dict, df):
    """``(frame, design or None)``; the replicate case adds this side's replicate columns."""
    if spec["design"] is None:
        return df, None
    design = dd.SurveyDesign(weights="w", strata="stratum", psu="psu")
    if spec["design"] == "replicate":
        return dd.as_replicate_design(df, design, "JKn")
    return df, design


def make_calibration_call(dd, df):
    """``rake_replicates``: the timed calibration and its untimed design maker."""
    totals = bench_calibration.totals(df)
    reps = [f"r{j}" for j in range(N_CAL_REPLICATES)]
    design = dd.SurveyDesign(weights="w", replicate_weights=reps, replicate_method="bootstrap")
    rows = np.arange(0, len(df), 1000)[:100]

    def call(design_copy):
        out, cal = dd.calibrate(df, design_copy, totals, by=["state", "year"])
        picked = [out[cal.replicate_weights[j]].to_numpy()[rows] for j in (0, 26, 53, 79)]
        values = [float(v) for v in np.concatenate(picked)]
        return dict(att=float(out[cal.weights].sum()), se=0.0,
                    event_time=list(range(len(values))), es_estimate=values,
                    es_se=[0.0] * len(values))

    return call, (lambda: copy.deepcopy(design)), df


def make_call(dd, spec: dict, df):
    """The timed call (takes a fresh copy of the design) and its untimed input maker."""
    if spec["data"] == "calibration":
        return make_calibration_call(dd, df)
    estimator = getattr(dd, spec["estimator"])
    columns = FIT_COLUMNS[spec["data"]]
    df, design = make_design(dd, spec, df)

    def call(design_copy):
        extra = {} if design_copy is None else {"survey_design": design_copy}
        res = estimator(**spec["init"]).fit(df, **columns, **extra)
        out = dict(att=float(res.att), se=float(res.se))  # lazy inference happens here
        if spec["es"]:
            es = res.event_study_effects
            out.update(event_time=[int(e) for e in es["event_time"]],
                       es_estimate=[float(v) for v in es["estimate"]],
                       es_se=[float(v) for v in es["se"]])
        return out

    return call, (lambda: copy.deepcopy(design)), df


def run_child(args) -> int:
    """Import the side's diff_diff, build the data, time the calls, emit one result line."""
    root = os.path.realpath(args.root)
    import diff_diff as dd

    check_imports(root, "after import")
    spec = CASES[args.case]
    tag = f"[{args.case}/{args.child}]"
    df, gen_s = harness.timed(make_data, spec, args.scale)
    call, make_input, df = make_call(dd, spec, df)
    for _ in range(args.warmup):
        call(make_input())
    timing = harness.time_calls(call, args.repeats, make_input=make_input,
                                keep=lambda out: out, warning_chars=160)
    fields = timing.fields(None)  # peak RSS read now, before tracemalloc's own overhead
    traced_mb = harness.traced_peak_mb(functools.partial(call, make_input()))
    fields["traced_mb"] = traced_mb
    check_imports(root, "after the calls")
    versions = harness.interpreter_versions()
    versions.update(package=f"diff_diff {dd.__version__}", path=harness.module_dir(dd))
    row = dict(side=args.child, case=args.case, n_rows=len(df), gen_s=gen_s,
               fingerprint=harness.fingerprint(df), source=source_hash(root),
               versions=versions, summary=timing.kept, warnings=timing.warnings,
               load=timing.load, **fields)
    print(f"  {tag} median {row['median_s']:.3f} s, min {row['min_s']:.3f} s, tracemalloc "
          f"{traced_mb:.0f} MB, peak RSS {row['max_rss_mb']:.0f} MB", file=sys.stderr)
    harness.emit_result(row)
    return 0


# ---------------------------------------------------------------------------
# parent: git, worktrees, the alternating children
# ---------------------------------------------------------------------------
def git(*args: str) -> str:
    """Output of ``git -C REPO args``; exits (through the ``finally`` blocks) on failure."""
    proc = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def describe(rev: str) -> str:
    """``<12-hex hash> <subject, cut to 60 characters>`` of a revision."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    text = git("log", "-1", "--format=%h %s", "--abbrev=12", commit)
    return text if len(text) <= 73 else text[:70] + "..."


def dirty_text() -> str:
    """Whether the working tree differs from HEAD (tracked / untracked, under diff_diff/)."""
    lines = [ln for ln in git("status", "--porcelain").splitlines() if ln]
    if not lines:
        return "clean"
    tracked = [ln[3:] for ln in lines if not ln.startswith("??")]
    untracked = [ln[3:] for ln in lines if ln.startswith("??")]
    in_pkg = sum(p.startswith("diff_diff/") for p in tracked + untracked)
    return (f"DIRTY: {len(tracked)} tracked file(s) modified, {len(untracked)} untracked "
            f"({in_pkg} under diff_diff/)")


@contextlib.contextmanager
def worktree(rev: str):
    """A detached ``git worktree`` of ``rev`` in a temporary directory, removed on exit."""
    parent = tempfile.mkdtemp(prefix="diff_diff_compare_")
    path = os.path.join(parent, "tree")
    try:
        git("worktree", "add", "--detach", path, rev)
        yield path
    finally:
        subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", path],
                       capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)
        subprocess.run(["git", "-C", REPO, "worktree", "prune"], capture_output=True)


def side_env(env: dict, root: str) -> dict:
    """The children's environment with ``root`` first on ``PYTHONPATH``."""
    out = dict(env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return out


def child_args(args, case: str, side: str, root: str) -> list:
    return (["--child", side, "--case", case, "--root", root, "--repeats", str(args.repeats),
             "--warmup", str(args.warmup)] + (["--quick"] if args.quick else []))


def run_all(args, roots: dict, env: dict) -> tuple:
    """Every case: ``--rounds`` rounds of one child per side, the order flipping each round.

    Returns ``({(case, side): [rows]}, failed tags)``; stops the run (SystemExit) when a
    child imported diff_diff from the wrong place.
    """
    rows, failed, flip = {}, [], False
    for case in args.cases:
        for rnd in range(args.rounds):
            for side in (SIDES[::-1] if flip else SIDES):
                tag = f"{case}/{side} round {rnd + 1}"
                cmd = harness.child_command(sys.executable, __file__,
                                            child_args(args, case, side, roots[side]))
                row, code = harness.run_child(cmd, side_env(env, roots[side]), tag,
                                              args.child_timeout)
                if code == WRONG_IMPORT:
                    raise SystemExit(f"{tag}: diff_diff was not imported from {roots[side]}; "
                                     "results would be meaningless, stopping")
                if row is None:
                    failed.append(tag + (" timed out" if code is None else f" (exit {code})"))
                else:
                    rows.setdefault((case, side), []).append(row)
            flip = not flip
    return rows, failed


# ---------------------------------------------------------------------------
# parent: summaries, agreement, table, notes
# ---------------------------------------------------------------------------
def side_stats(rows: list) -> dict:
    """Median / min over all timed calls of a side, the per-child medians and their spread,
    the children's largest peak RSS and tracemalloc peak."""
    times = [t for r in rows for t in r["times"]]
    medians = [r["median_s"] for r in rows]
    return dict(median=statistics.median(times), min=min(times),
                medians=medians, spread=max(medians) / min(medians) - 1.0,
                rss=max(r["max_rss_mb"] for r in rows),
                traced=max(r["traced_mb"] for r in rows))


def vectors(summary: dict) -> tuple:
    """``(estimates, SEs, event times)``: att then event-study estimates; se then their SEs."""
    est = [summary["att"]] + summary.get("es_estimate", [])
    se = [summary["se"]] + summary.get("es_se", [])
    return np.array(est, dtype=float), np.array(se, dtype=float), summary.get("event_time")


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|; inf where only one side is NaN or the shapes differ."""
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return math.inf
    d = np.abs(a - b)[~np.isnan(a)]
    return float(d.max()) if d.size else 0.0


def agreement(base: dict, current: dict, tol: float) -> tuple:
    """``(d est, d se, verdict)`` between two summaries (verdict exact / yes / NO)."""
    (eb, sb, tb), (ec, sc, tc) = vectors(base), vectors(current)
    if tb != tc:
        return math.inf, math.inf, "NO (event times differ)"
    d_est, d_se = max_abs_diff(eb, ec), max_abs_diff(sb, sc)
    if np.array_equal(eb, ec, equal_nan=True) and np.array_equal(sb, sc, equal_nan=True):
        return d_est, d_se, "exact"
    scale = max(1.0, float(np.nanmax(np.abs(np.concatenate([eb, sb])))))
    return d_est, d_se, "yes" if max(d_est, d_se) <= tol * scale else "NO"


def flag(base: dict, current: dict, threshold: float) -> str:
    """``slower?`` / ``faster?`` when the median ratio passes the threshold and the two
    sides' per-child medians do not overlap, else ``same``."""
    ratio = current["median"] / base["median"]
    if ratio > 1.0 + threshold and min(current["medians"]) > max(base["medians"]):
        return "slower?"
    if ratio < 1.0 / (1.0 + threshold) and max(current["medians"]) < min(base["medians"]):
        return "faster?"
    return "same"


def table_row(case: str, base: list, current: list, args) -> list:
    """One line of the table for a case that ran on both sides."""
    b, c = side_stats(base), side_stats(current)
    ratio, spread = c["median"] / b["median"], max(b["spread"], c["spread"])
    d_est, d_se, verdict = agreement(base[0]["summary"], current[0]["summary"], args.tol)
    if base[0]["fingerprint"] != current[0]["fingerprint"]:
        verdict += " (data differ)"
    return [case, f"{base[0]['n_rows']:,}", f"{b['median']:.3f}", f"{c['median']:.3f}",
            f"{ratio:.3f}", f"{c['min'] / b['min']:.3f}", f"{100 * spread:.1f}%",
            f"{b['rss']:.0f} / {c['rss']:.0f}", f"{b['traced']:.0f} / {c['traced']:.0f}",
            f"{d_est:.1e}", f"{d_se:.1e}", verdict,
            flag(b, c, args.threshold)]


def print_results(rows: dict, args) -> None:
    header = ["case", "rows", "base s", "current s", "cur/base", "min c/b", "spread",
              "peak MB b / c", "traced MB b / c", "d est", "d se", "agree", "flag"]
    body = []
    for case in args.cases:
        base, current = rows.get((case, "base")), rows.get((case, "current"))
        if base and current:
            body.append(table_row(case, base, current, args))
        else:
            missing = " and ".join(s for s in SIDES if not rows.get((case, s)))
            body.append([case] + ["-"] * 10 + [f"not run ({missing} failed)", "-"])
    harness.print_table(header, body, ["<"] + [">"] * 10 + ["<", "<"])


def consistency_notes(rows: dict) -> list:
    """Children of one side that disagree or saw other data; source or library version
    changes during the run."""
    notes = []
    for (case, side), group in rows.items():
        first = group[0]
        if any(agreement(first["summary"], r["summary"], 0.0)[2] != "exact" for r in group):
            notes.append(f"{case}/{side}: the rounds did not give identical results")
        if len({r["fingerprint"] for r in group}) > 1:
            notes.append(f"{case}/{side}: the rounds generated different data")
    stacks = {tuple(r["versions"][k] for k in ("python", "numpy", "scipy", "pandas"))
              for g in rows.values() for r in g}
    if len(stacks) > 1:
        notes.append("WARNING: the children ran different python / numpy / scipy / pandas "
                     f"versions ({'; '.join(' '.join(v) for v in sorted(stacks))}): the "
                     "environment changed during the run; rerun")
    for side in SIDES:
        hashes = sorted({r["source"] for (_, s), g in rows.items() if s == side for r in g})
        if len(hashes) > 1:
            notes.append(f"WARNING: the {side} diff_diff sources changed during the run "
                         f"(hashes {', '.join(hashes)}): someone edited them; rerun")
    return notes


def side_notes(rows: dict) -> list:
    """The environment of each side and whether both ran the same source."""
    notes, hashes = [], {}
    for side in SIDES:
        group = [r for (_, s), g in rows.items() if s == side for r in g]
        if group:
            notes.append(harness.environment_line(side, group[0]["versions"]))
            hashes[side] = group[0]["source"]
    if len(hashes) == 2:
        same = hashes["base"] == hashes["current"]
        notes.append(f"diff_diff sources (.py files): base {hashes['base']}, current "
                     f"{hashes['current']} ({'IDENTICAL' if same else 'different'})")
    return notes


def warning_notes(rows: dict) -> list:
    seen = []
    for (case, side), group in rows.items():
        for msg in sorted({m for r in group for m in r["warnings"]}):
            seen.append(f"{case}/{side} warned: {msg}")
    return seen


def print_header(args, roots: dict, env: dict) -> None:
    harness.print_header("revision comparison", args.quick, "units")
    print(f"base:    {describe(args.base)}  (--base {args.base}; worktree {roots['base']})")
    if args.current is None:
        print(f"current: {describe('HEAD')}  (working tree {REPO}; {dirty_text()})")
    else:
        print(f"current: {describe(args.current)}  (--current {args.current}; worktree "
              f"{roots['current']})")
    print(harness.machine_text())
    harness.print_children_setup(
        "case x side x round", env, f"{args.warmup} warm-up + {args.repeats} timed calls per "
        f"child, {args.rounds} rounds per case, sides alternating")


def report(rows: dict, failed: list, args) -> int:
    load_end = harness.load_text()
    print()
    print_results(rows, args)
    flat = [r for g in rows.values() for r in g]
    notes = side_notes(rows) + consistency_notes(rows)
    load = harness.load_note(flat, load_end) if flat else None
    notes += ([load] if load else []) + warning_notes(rows)
    notes += [f"child FAILED: {tag}; see its stderr above" for tag in failed]
    return harness.finish(notes, failed, quick_scaled="units" if args.quick else None, closing=(
        "base s / current s: median over all timed calls of the side; min c/b: ratio of the "
        "minima; spread: largest relative gap between one side's per-child medians",
        "peak MB b / c: peak resident set of the base / current children (interpreter and "
        "data included); traced MB: tracemalloc peak of one extra call (its own working "
        "memory); d est: max |diff| "
        "of att and event-study estimates, d se: of se and event-study SEs; agree: exact / "
        f"yes (relative tol {args.tol:g}) / NO",
        f"flag: slower? / faster? when cur/base is off 1 by more than --threshold "
        f"{args.threshold:g} and no current child's median lies within the base children's "
        "range"))


def run_parent(args) -> int:
    args.cases = args.cases or list(CASES)
    env = harness.child_environment(args.mmap_threshold, args.threads)
    with contextlib.ExitStack() as stack:
        roots = {"base": stack.enter_context(worktree(args.base))}
        roots["current"] = (REPO if args.current is None
                            else stack.enter_context(worktree(args.current)))
        print_header(args, roots, env)
        rows, failed = run_all(args, roots, env)
    return report(rows, failed, args)


def terminate(signum, frame):
    """SIGTERM / SIGHUP: exit through the ``finally`` blocks, so the worktree is removed."""
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    parser = harness.make_parser(__doc__, "units / 10 (smoke run, < 1 min)")
    parser.add_argument("--base", default="HEAD", help="base revision (default HEAD)")
    parser.add_argument("--current", default=None,
                        help="compare with this revision instead of the working tree")
    parser.add_argument("--cases", nargs="+", choices=list(CASES), help="default: all")
    parser.add_argument("--rounds", type=int, default=2, help="children per side and case")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per child")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per child first")
    parser.add_argument("--tol", type=float, default=1e-9,
                        help="relative tolerance of 'agree: yes'")
    parser.add_argument("--threshold", type=float, default=0.10,
                        help="smallest relative change of the median time that is flagged")
    harness.add_child_options(parser, child_timeout=600.0)
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child:
        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGHUP, terminate)
    return harness.dispatch(args, "child", run_child, run_parent)


if __name__ == "__main__":
    sys.exit(main())
