"""Benchmark of ``aggregate_survey`` pushed down to Polars and DuckDB (issue 17).

One Parquet file of N respondents (default 10,000,000; ``--quick``: 1,000,000) is
generated in chunks into ``/tmp`` (never into the repository; reused when present):
50 states x 10 years = 500 cells, 500 strata nested in states, 5,000 PSUs nested in
strata, weights, two outcomes (``smoke`` with 2% missing, ``bmi``) and a covariate. Each
case runs in its own child process, so the peak RSS is that case's alone:

* ``pandas``: ``pd.read_parquet`` then the in-memory ``aggregate_survey`` (the reference);
* ``polars``: ``aggregate_survey(path, ..., engine="polars")`` (lazy scan, streaming);
* ``duckdb``: ``aggregate_survey(path, ..., engine="duckdb")``;
* ``duckdb-floor``: a hand-written DuckDB ``GROUP BY`` over the same file with the same
  grouping and 15 aggregates (the cost of one scan: the floor; ours has 20 - the design
  needs per outcome the valid count, the count with positive weight and five weighted
  sums, and it checks the weights);
* ``spark``: ``aggregate_survey(spark.read.parquet(path), ...)`` in a local-mode PySpark
  session (``local[2]``), run by the interpreter ``--spark-python`` names (the JVM is
  started once, outside the timed calls);
* ``rake-pandas`` / ``rake-polars`` / ``rake-duckdb``: ``rake`` by state-year to two
  categorical margins (``sex``, ``agegrp``), then ``aggregate_survey`` on the calibrated
  design (calibration-aware variance) - in memory after ``pd.read_parquet``, or on the
  engine (one pattern scan for the rake, the calibrated weight a joined factor table).

Every timed call starts from the file (reading included). Columns: median and minimum
wall time of the repeats, the peak RSS of the child's whole process tree (sampled every
0.1 s from ``/proc``, the sum over the child and its descendants - a JVM included), the
ratio of the median to the pandas median and to the DuckDB floor's median. The parent checks that every pushed-down panel
equals the pandas panel (max relative difference of the means and standard errors).

Usage::

    python benchmarks/bench_pushdown.py            # 10M rows, ~3 min
    python benchmarks/bench_pushdown.py --quick    # 1M rows
    python benchmarks/bench_pushdown.py --rows 20000000 --repeats 3
    python benchmarks/bench_pushdown.py --rows 100000000 --repeats 1 \
        --cases duckdb duckdb-floor polars      # the generated file is ~3 GB
    ... --delete                                # remove the generated file afterwards
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _harness  # noqa: E402

CASES = ("pandas", "polars", "duckdb", "duckdb-floor", "spark", "rake-pandas", "rake-polars",
         "rake-duckdb")
# PySpark lives in its own interpreter (pyspark 4 + numpy/pandas/narwhals); --spark-python
SPARK_PYTHON = os.environ.get("DIFF_DIFF_SPARK_PYTHON", "/work/scratch/venv-spark/bin/python")
BY = ["state", "year"]
OUTCOMES = ["smoke", "bmi"]


def parquet_path(rows: int) -> str:
    return f"/tmp/diff_diff_bench_pushdown_v2_{rows}.parquet"


def generate(rows: int, chunk: int = 1_000_000) -> str:
    """Write the benchmark file in chunks (memory bounded by one chunk)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = parquet_path(rows)
    if os.path.exists(path):
        return path
    tmp = path + ".part"
    rng = np.random.default_rng(20240617)
    writer = None
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        state = rng.integers(0, 50, n)
        stratum = state * 10 + rng.integers(0, 10, n)
        psu = stratum * 10 + rng.integers(0, 10, n)
        smoke = (rng.random(n) < 0.15 + 0.002 * state).astype(float)
        smoke[rng.random(n) < 0.02] = np.nan
        table = pa.table({
            "state": state.astype(np.int32), "year": rng.integers(2010, 2020, n).astype(np.int32),
            "stratum": stratum.astype(np.int32), "psu": psu.astype(np.int32),
            "w": rng.uniform(50, 500, n), "smoke": smoke,
            "bmi": rng.normal(27 + 0.02 * state, 4, n), "age": rng.uniform(18, 85, n),
            "sex": rng.integers(0, 2, n).astype(np.int8),
            "agegrp": rng.integers(0, 5, n).astype(np.int8),
        })
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
        done += n
    writer.close()
    os.replace(tmp, path)
    return path


def rake_margins():
    """Population counts per state-year: sex 49/51%, five equal age groups, 20,000 people."""
    import pandas as pd

    rows = []
    for state in range(50):
        for year in range(2010, 2020):
            rows += [(state, year, "sex", lev, 20000.0 * sh) for lev, sh in ((0, .49), (1, .51))]
            rows += [(state, year, "agegrp", lev, 4000.0) for lev in range(5)]
    return pd.DataFrame(rows, columns=[*BY, "margin", "level", "total"])


def _call(case: str, path: str):
    from diff_diff import SurveyDesign, aggregate_survey, rake

    design = SurveyDesign(weights="w", strata="stratum", psu="psu")
    if case.startswith("rake-"):
        margins, engine = rake_margins(), case.split("-")[1]

        def run():
            if engine == "pandas":
                import pandas as pd

                data, cal = rake(pd.read_parquet(path), design, margins, by=BY)
            else:
                data, cal = rake(path, design, margins, by=BY, engine=engine)
            # bmi only: the in-memory calibrated variance fails on an outcome with missing
            # values (smoke), see the report of issue 17
            return aggregate_survey(data, BY, ["bmi"], cal, covariates="age")[0]
        return run
    if case == "spark":
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[2]").appName("bench_pushdown")
                 .config("spark.ui.enabled", "false")
                 .config("spark.sql.shuffle.partitions", "8")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        return lambda: aggregate_survey(spark.read.parquet(path), BY, OUTCOMES, design,
                                        covariates="age")[0]
    if case == "pandas":
        import pandas as pd

        return lambda: aggregate_survey(pd.read_parquet(path), BY, OUTCOMES, design,
                                        covariates="age")[0]
    if case in ("polars", "duckdb"):
        return lambda: aggregate_survey(path, BY, OUTCOMES, design, covariates="age",
                                        engine=case)[0]
    import duckdb

    sql = (
        "SELECT state, year, stratum, psu, count(*) AS n, sum(w) AS sw, sum(w*w) AS sw2, "
        + ", ".join(f"sum(w*{y}) AS swy_{y}, sum(w*{y}*{y}) AS swyy_{y}, "
                    f"sum(w*w*{y}) AS s2wy_{y}, sum(w*w*{y}*{y}) AS s2wyy_{y}, "
                    f"count({y}) AS nv_{y}" for y in OUTCOMES)
        + f", sum(w*age) AS swx FROM read_parquet('{path}') GROUP BY ALL")
    return lambda: duckdb.sql(sql).fetchnumpy()


def child(case: str, path: str, repeats: int) -> None:
    import warnings

    warnings.simplefilter("ignore")
    call = _call(case, path)
    # the lazily imported modules, outside the timed calls (the first call paid them)
    import importlib.util

    for name in ("diff_diff.statistics.pushdown", "diff_diff.survey.calibration_engine",
                 "narwhals", "duckdb", "polars", "scipy.stats"):
        if importlib.util.find_spec(name.split(".")[0]) is not None:
            importlib.import_module(name)
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
    panel = None
    if case != "duckdb-floor":
        outcomes = ["bmi"] if case.startswith("rake-") else OUTCOMES
        cols = [f"{y}_{s}" for y in outcomes for s in ("mean", "se")] + ["age_mean"]
        panel = {c: out[c].tolist() for c in cols}
    _harness.emit_result({"times": times, "maxrss_mb": _harness.maxrss_mb(), "panel": panel})


def _tree_rss_mb(root: int) -> float:
    """Resident set of ``root`` and all its descendants now (MB), from ``/proc``."""
    parent, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            parent[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += [p for p, pp in parent.items() if pp == pid and p not in tree]
    return sum(rss.get(p, 0) for p in tree) / _harness.MB


def run_case(case: str, path: str, repeats: int, spark_python: str) -> dict:
    python = spark_python if case == "spark" else sys.executable
    cmd = [python, os.path.abspath(__file__), "--child", case, "--path", path,
           "--repeats", str(repeats)]
    env = dict(os.environ)
    if case == "spark":  # the checkout, for an interpreter that does not install it
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(HERE), *filter(None, [env.get("PYTHONPATH")])])
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, stdin=devnull)
    peak, loads = 0.0, []
    import threading

    def sample():
        while proc.poll() is None:
            nonlocal peak
            peak = max(peak, _tree_rss_mb(proc.pid))
            time.sleep(0.1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    loads.append(_harness.load_1min())
    for line in out.splitlines():
        if line.startswith(_harness.RESULT_TAG):
            result = json.loads(line[len(_harness.RESULT_TAG):])
            result["tree_rss_mb"] = peak
            result["load"] = loads[-1]
            print(f"  {case}: median {statistics.median(result['times']):.2f} s, tree RSS "
                  f"{peak:.0f} MB, load {loads[-1]:.1f}", file=sys.stderr, flush=True)
            return result
    raise RuntimeError(f"case {case} failed:\n{err[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 rows")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--spark-python", default=SPARK_PYTHON,
                        help="interpreter with pyspark for the spark case")
    parser.add_argument("--delete", action="store_true",
                        help="delete the generated Parquet file at the end")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.path, args.repeats)
        return 0
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    t0 = time.perf_counter()
    path = generate(rows)
    size = os.path.getsize(path) / _harness.MB
    print(f"bench_pushdown: {rows:,} rows, {size:.0f} MB Parquet at {path} "
          f"(ready in {time.perf_counter() - t0:.1f} s); {args.repeats} repeats per case")
    print(_harness.environment())
    results = {case: run_case(case, path, args.repeats, args.spark_python)
               for case in args.cases}
    _table({c: r for c, r in results.items() if not c.startswith("rake-")}, "pandas")
    _table({c: r for c, r in results.items() if c.startswith("rake-")}, "rake-pandas")
    print("\nvs pandas: pandas median / case median (higher is faster); vs floor: case median "
          "/ duckdb-floor median (lower is better). Peak RSS: the child's process tree "
          "(sampled), ru_maxrss: the child process alone. Load: 1-min load average after "
          f"each case; at the end {_harness.load_text()}.")
    if args.delete:
        os.remove(path)
        print(f"deleted {path}")
    return 0


def _table(results: dict, reference: str) -> None:
    if not results:
        return
    base = statistics.median(results[reference]["times"]) if reference in results else None
    floor = (statistics.median(results["duckdb-floor"]["times"])
             if "duckdb-floor" in results else None)
    ref = results.get(reference, {}).get("panel")
    if ref is None:  # no pandas run (100M rows): compare with DuckDB's panel
        ref = next((r["panel"] for c, r in results.items() if c.endswith("duckdb")), None)
    print(f"\n{'case':<14}{'median s':>10}{'min s':>9}{'tree RSS MB':>13}{'ru_maxrss':>11}"
          f"{'vs pandas':>11}{'vs floor':>10}{'load':>7}{'max rel diff':>14}")
    for case, res in results.items():
        med, low = statistics.median(res["times"]), min(res["times"])
        ratio = f"{base / med:.1f}x" if base else "-"
        vs_floor = f"{med / floor:.2f}x" if floor else "-"
        diff = "-"
        if ref is not None and res["panel"] is not None and res["panel"] is not ref:
            diff = f"{_max_rel(ref, res['panel']):.1e}"
        print(f"{case:<14}{med:>10.2f}{low:>9.2f}{res['tree_rss_mb']:>13.0f}"
              f"{res['maxrss_mb']:>11.0f}{ratio:>11}{vs_floor:>10}{res['load']:>7.1f}{diff:>14}")


def _max_rel(ref: dict, got: dict) -> float:
    import numpy as np

    worst = 0.0
    for c, values in ref.items():
        a, b = np.asarray(values, float), np.asarray(got[c], float)
        if a.shape != b.shape:
            return float("inf")
        ok = np.isfinite(a)
        worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]),
                                                                             1e-300))))
    return worst


if __name__ == "__main__":
    sys.exit(main())
