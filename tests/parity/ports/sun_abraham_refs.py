"""Reference values of the Sun & Abraham (2021) interaction-weighted event study.

Two references, each run in its own venv (this checkout is never imported):

* diff-diff 3.13.0's ``SunAbraham`` (``SunAbraham(control_group="never_treated",
  anticipation=a, vcov_type=v, cluster=c).fit(df, outcome="y", unit="unit",
  time="time", first_treat="first_treat", covariates=["x"] | None)``). 3.13
  offers ``control_group`` in {"never_treated", "not_yet_treated"} only (its
  "not_yet_treated" keeps the same rows and fits the same regression), so it has
  no ``last_treated`` reference; ``vcov_type`` "hc1" (CR1, by unit unless
  ``cluster=``), "classical", "hc2" (one-way) and "hc2_bm" (CR2 + Bell-McCaffrey
  df, by unit) are recorded.
* pyfixest 0.60.0: the saturated regression written out by hand,
  ``feols("y ~ D_1 + ... + D_K [+ x] | unit + time", vcov={"CRV1": "unit"} |
  {"CRV1": c} | "iid", demeaner=MapDemeaner(fixef_tol=1e-13), fixef_rm="none")``
  with one dummy ``D = 1{first_treat = g, time - g = e}`` per treated cohort g
  and relative period e observed in the sample, except the reference
  ``e = -1 - anticipation`` (never-treated rows: no dummy). Default ``ssc()``.
  ``control_group="last_treated"`` (Sun & Abraham's last-treated comparison) is
  expressed in the data given to ``feols``: rows with ``time >= g_last -
  anticipation`` are dropped (every unit) and the last cohort gets no dummies.
  The aggregation is done here in numpy with fixed cohort-share weights (the
  ``fixest::aggregate`` / 3.13 convention): ``n_ge`` = rows of cell (g, e) in
  the estimation sample, ``w_ge = n_ge / sum_{g'} n_g'e`` over the cohorts with a
  coefficient at e, ``beta_e = sum_g w_ge delta_ge``, overall ATT = ``sum_{e >= 0}
  n_ge delta_ge / sum_{e >= 0} n_ge``; covariances ``W V W'`` (delta method,
  weights held fixed).

Small-sample conventions (the point of this fixture; see ``meta.k_conventions``):

* CR1 (clustered ``hc1``): every implementation multiplies by ``G/(G-1) *
  (n-1)/(n-K)``; they differ in K. With ``k`` = cohort-cell coefficients plus
  covariates, ``N`` units and ``T`` periods in the estimation sample:
  - pyfixest ``ssc(k_fixef="nonnested")`` (default): ``K = k + k_fe - (n_fe - 1)
    - k_fe_nested + n_fe_fully_nested = k + (N + T - 1) - N + 1 = k + T`` (unit
    effects nested in the unit (or coarser) cluster are not counted, except one
    for the constant). Recorded as ``df_k``.
  - 3.13: ``K = k + absorbed_fe_cr1_k_increment = k + 1 + rank(unit, time) -
    rank(unit) = k + T`` (fixest's convention; its ``variance-conventions.md`` D2).
    The increment is recorded from 3.13's own helper.
  - so 3.13 and pyfixest agree to rounding; diff_diff counts every absorbed
    effect (the dummy-variable regression, ``K = k + N + T - 1``), so its variance
    is theirs times ``(n - k - T) / (n - k - N - T + 1)``.
* ``classical``: all three use ``RSS / (n - k - N - T + 1) (X'X)^-1`` (lm with
  dummies; pyfixest iid ``df_k = k + N + T - 1``): no factor.
* t degrees of freedom: pyfixest CRV1 ``G - 1``; 3.13 the residual df ``n - k - N -
  T + 1`` under its default ``df_convention="residual"`` (BM df under hc2_bm).

Data: ``mpdta`` is R ``did``'s mpdta (``../shared/data/mpdta.csv`` beside the
repository, byte identical to ``diff_diff/datasets/data/mpdta.csv``; md5 in the
fixture) with ``y = lemp``, ``unit = countyreal``, ``time = year``,
``first_treat = first.treat``. Simulated balanced panels use
``numpy.random.default_rng(seed)``: ``y = a_i + trend * t + sin(t) + beta * x +
effect(g, t - g) * 1{t >= g} + noise``, ``effect(g, e) = base[g] + slope[g] * e``
(heterogeneous, dynamic), ``x`` time varying and correlated with ``a_i`` and
treatment (both rounded to 10 decimals); ``cl`` groups four consecutive units
(a cluster coarser than the unit). The data are made once here and handed to
both venvs; their full long form is stored in the fixture, so the test needs no
RNG agreement.

Run from the repository root (any Python with numpy and pandas; it runs the two
reference venvs itself via subprocess, with ``-P`` so this checkout is not on
``sys.path``; override the interpreters with ``SA_PYTHON_313`` /
``SA_PYTHON_PYFIXEST``):

    /work/venv_pyfixest/bin/python -P tests/parity/ports/sun_abraham_refs.py

It writes ``tests/parity/fixtures/sun_abraham_refs.json``. (Internally:
``--part dd313|pyfixest IN OUT`` fits one reference on the data in IN.)
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/sun_abraham_refs.json"
# the team's shared folder sits beside the repository
MPDTA = str(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mpdta.csv")
PYTHON_313 = os.environ.get("SA_PYTHON_313", "/work/venv313/bin/python")
PYTHON_PYFIXEST = os.environ.get("SA_PYTHON_PYFIXEST", "/work/venv_pyfixest/bin/python")
FIXEF_TOL = 1e-13

# A run: control group, anticipation, vcov_type, cluster column (None: unit).
# References: 3.13 fits never_treated runs with any of its vcov types; pyfixest fits
# hc1 (CRV1) and classical (iid) runs, any control group.
DEFAULT = dict(control_group="never_treated", anticipation=0, vcov_type="hc1", cluster=None)
RUNS = {
    "cr1": DEFAULT,
    "classical": {**DEFAULT, "vcov_type": "classical"},
    "hc2": {**DEFAULT, "vcov_type": "hc2"},
    "hc2_bm": {**DEFAULT, "vcov_type": "hc2_bm"},
    "cr1_coarse_cluster": {**DEFAULT, "cluster": "cl"},
    "cr1_anticipation1": {**DEFAULT, "anticipation": 1},
    "last_treated_cr1": {**DEFAULT, "control_group": "last_treated"},
    "last_treated_classical": {**DEFAULT, "control_group": "last_treated",
                               "vcov_type": "classical"},
}

# cohorts: {first treated period: units}; never: never-treated units; periods 1..T.
# beta: coefficient of the time-varying covariate x (None: no covariate).
CASES = {
    "mpdta": dict(source="mpdta", runs=["cr1", "classical", "hc2", "hc2_bm",
                                        "last_treated_cr1", "last_treated_classical"]),
    "sim_small": dict(
        source="sim", seed=20260611, periods=6, cohorts={3: 14, 5: 16}, never=20,
        base={3: 1.0, 5: 0.4}, slope={3: 0.5, 5: -0.3}, noise_sd=1.0, trend=0.2, beta=None,
        runs=["cr1", "classical", "hc2", "hc2_bm", "cr1_anticipation1"]),
    "sim_covariate": dict(
        source="sim", seed=4711, periods=8, cohorts={3: 50, 5: 60, 7: 40}, never=50,
        base={3: 0.8, 5: 1.5, 7: -0.5}, slope={3: 0.3, 5: -0.2, 7: 0.9},
        noise_sd=0.8, trend=0.3, beta=0.6,
        runs=["cr1", "classical", "hc2", "hc2_bm", "cr1_coarse_cluster", "last_treated_cr1"]),
    "sim_large": dict(
        source="sim", seed=98765, periods=10, cohorts={3: 40, 4: 90, 6: 70, 9: 60}, never=140,
        base={3: 2.0, 4: 0.5, 6: 1.2, 9: -0.3}, slope={3: -0.15, 4: 0.4, 6: 0.0, 9: 1.5},
        noise_sd=1.5, trend=0.1, beta=None,
        runs=["cr1", "classical", "cr1_coarse_cluster", "cr1_anticipation1"]),
    # no never-treated unit: only control_group="last_treated" applies (cohort 9 is
    # the control, periods 9 and 10 are dropped)
    "sim_no_never": dict(
        source="sim", seed=271828, periods=10, cohorts={3: 30, 5: 45, 7: 35, 9: 40}, never=0,
        base={3: 1.2, 5: -0.4, 7: 0.7, 9: 2.0}, slope={3: 0.2, 5: 0.5, 7: -0.4, 9: 0.0},
        noise_sd=1.0, trend=0.15, beta=None,
        runs=["last_treated_cr1", "last_treated_classical"]),
}


# ---------------------------------------------------------------- data (orchestrator)

def mpdta() -> tuple[pd.DataFrame, str]:
    with open(MPDTA, "rb") as fh:
        md5 = hashlib.md5(fh.read()).hexdigest()
    df = pd.read_csv(MPDTA)
    return pd.DataFrame({"unit": df["countyreal"], "time": df["year"],
                         "first_treat": df["first.treat"], "y": df["lemp"]}), md5


def simulate(spec) -> pd.DataFrame:
    """Long balanced panel (unit, time, first_treat, y[, x], cl), units numbered from 1."""
    rng = np.random.default_rng(spec["seed"])
    first = np.array([0] * spec["never"]
                     + [g for g, n in spec["cohorts"].items() for _ in range(n)])
    a = rng.normal(0.0, 1.0, first.size) + 0.05 * first
    rows = []
    for i, g in enumerate(first):
        for t in range(1, spec["periods"] + 1):
            d = g > 0 and t >= g
            eff = spec["base"][g] + spec["slope"][g] * (t - g) if d else 0.0
            x = rng.normal(0.0, 1.0) + 0.15 * t + 0.5 * a[i] + 0.2 * d
            y = (a[i] + spec["trend"] * t + np.sin(t) + eff + rng.normal(0.0, spec["noise_sd"])
                 + (spec["beta"] * x if spec["beta"] is not None else 0.0))
            rows.append((i + 1, t, int(g), round(float(x), 10), round(float(y), 10), i // 4 + 1))
    df = pd.DataFrame(rows, columns=["unit", "time", "first_treat", "x", "y", "cl"])
    return df if spec["beta"] is not None else df.drop(columns="x")


# ---------------------------------------------------------------- shared helpers

def sample(df: pd.DataFrame, run: dict) -> pd.DataFrame:
    """Estimation sample and cohort column ``g`` (0: control) of the saturated regression."""
    data = df.copy()
    data["g"] = data["first_treat"].astype(int)
    if run["control_group"] == "last_treated":
        last = data.loc[data["g"] > 0, "g"].max()
        data = data[data["time"] < last - run["anticipation"]].copy()
        data.loc[data["g"] == last, "g"] = 0
    data["e"] = np.where(data["g"] > 0, data["time"] - data["g"], 0).astype(int)
    return data.reset_index(drop=True)


def cells_of(data: pd.DataFrame, run: dict) -> list[tuple[int, int]]:
    ref = -1 - run["anticipation"]
    has = (data["g"] > 0) & (data["e"] != ref)
    return sorted({(int(g), int(e)) for g, e in zip(data.loc[has, "g"], data.loc[has, "e"])})


# ---------------------------------------------------------------- pyfixest part

def pyfixest_run(df: pd.DataFrame, run: dict, covariates: list[str]) -> dict:
    import pyfixest as pf

    data = sample(df, run)
    cells = cells_of(data, run)
    names = []
    for j, (g, e) in enumerate(cells):
        data[f"D{j}"] = ((data["g"] == g) & (data["e"] == e)).astype(float)
        names.append(f"D{j}")
    fml = "y ~ " + " + ".join(names + covariates) + " | unit + time"
    vcov = ({"CRV1": run["cluster"] or "unit"} if run["vcov_type"] == "hc1" else "iid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = pf.feols(fml, data=data, vcov=vcov, fixef_rm="none",
                     demeaner=pf.MapDemeaner(fixef_tol=FIXEF_TOL))
    coefnames = list(m._coefnames)
    idx = [coefnames.index(n) for n in names]
    b = np.asarray(m.coef())[idx]
    V = np.asarray(m._vcov)[np.ix_(idx, idx)]
    se = np.asarray(m.se())[idx]
    pv = np.asarray(m.pvalue())[idx]
    n_ge = np.array([float(data[n].sum()) for n in names])

    # aggregation with fixed cohort-share weights
    events = sorted({e for _, e in cells})
    W = np.zeros((len(events), len(cells)))
    weights = {}
    for i, ev in enumerate(events):
        members = [j for j, (_, e) in enumerate(cells) if e == ev]
        tot = n_ge[members].sum()
        W[i, members] = n_ge[members] / tot
        weights[str(ev)] = {str(cells[j][0]): float(n_ge[j] / tot) for j in members}
    post = np.array([e >= 0 for _, e in cells])
    c = np.where(post, n_ge, 0.0) / n_ge[post].sum()
    es, es_v = W @ b, W @ V @ W.T
    ssc = np.asarray(m._ssc).ravel()
    return {
        "N": int(m._N), "k": int(m._k), "df_k": int(m._df_k), "df_t": float(m._df_t),
        "ssc": float(ssc[0]),
        "G": int(np.asarray(m._G).ravel()[0]) if run["vcov_type"] == "hc1" else None,
        "n_units": int(data["unit"].nunique()), "n_periods": int(data["time"].nunique()),
        "fml": fml, "vcov": vcov,
        "cells": [{"group": g, "event_time": e, "estimate": float(b[j]), "se": float(se[j]),
                   "p_value": float(pv[j]), "n": float(n_ge[j])}
                  for j, (g, e) in enumerate(cells)],
        "cells_vcov": V.tolist(),
        "covariates": {cv: {"estimate": float(m.coef()[cv]), "se": float(m.se()[cv])}
                       for cv in covariates},
        "weights": weights,
        "event_study": [{"event_time": ev, "estimate": float(es[i]),
                         "se": float(np.sqrt(es_v[i, i])),
                         "n_groups": int(np.count_nonzero(W[i]))}
                        for i, ev in enumerate(events)],
        "event_study_vcov": es_v.tolist(),
        "overall": {"estimate": float(c @ b), "se": float(np.sqrt(c @ V @ c))},
    }


# ---------------------------------------------------------------- 3.13 part

def dd313_run(df: pd.DataFrame, run: dict, covariates: list[str]) -> dict:
    import diff_diff as dd
    from diff_diff.utils import absorbed_fe_cr1_k_increment, absorbed_fe_rank

    est = dd.SunAbraham(control_group=run["control_group"], anticipation=run["anticipation"],
                        vcov_type=run["vcov_type"], cluster=run["cluster"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = est.fit(df, outcome="y", unit="unit", time="time", first_treat="first_treat",
                    covariates=covariates or None)
    idx = [int(e) for e in r.event_study_vcov_index]
    es_df = r.event_study_df or {}
    out = {
        "n_obs": int(r.n_obs),
        "overall": {"estimate": float(r.overall_att), "se": float(r.overall_se),
                    "df": None if r.inference_df is None else float(r.inference_df)},
        "event_study": [{"event_time": int(e), "estimate": float(v["effect"]),
                         "se": float(v["se"]), "n_groups": int(v["n_groups"]),
                         "df": float(es_df[e]) if e in es_df else None}
                        for e, v in sorted(r.event_study_effects.items())],
        "event_study_vcov_index": idx,
        "event_study_vcov": np.asarray(r.event_study_vcov).tolist(),
        "cohort_effects": [{"group": int(g), "event_time": int(e), "estimate": float(v["effect"]),
                            "se": float(v["se"]), "weight": float(v["weight"])}
                           for (g, e), v in sorted(r.cohort_effects.items())],
        "cohort_weights": {str(int(e)): {str(int(g)): float(w) for g, w in ws.items()}
                           for e, ws in sorted(r.cohort_weights.items())},
    }
    if run["vcov_type"] == "hc1":
        # the K increment 3.13 adds to the visible k in (n-1)/(n-K), from its own helper
        cl = df[run["cluster"] or "unit"].to_numpy()
        out["cr1_k_increment"] = int(absorbed_fe_cr1_k_increment(
            df, ["unit", "time"], cl, has_intercept_col=False))
        out["absorbed_fe_rank"] = int(absorbed_fe_rank(df, ["unit", "time"],
                                                       has_intercept_col=False))
    return out


def part(which: str, path_in: str, path_out: str) -> None:
    from importlib.metadata import version

    payload = json.loads(Path(path_in).read_text())
    fit = dd313_run if which == "dd313" else pyfixest_run
    pkg = "diff-diff" if which == "dd313" else "pyfixest"
    res = {"versions": {pkg: version(pkg), "numpy": version("numpy"),
                        "pandas": version("pandas"), "scipy": version("scipy"),
                        "python": platform.python_version()}, "cases": {}}
    if which == "pyfixest":
        res["versions"]["formulaic"] = version("formulaic")
    for name, case in payload.items():
        df = pd.DataFrame(case["data"])
        covariates = ["x"] if "x" in df.columns else []
        res["cases"][name] = {}
        for run_name in case["runs"]:
            run = RUNS[run_name]
            if which == "dd313" and run["control_group"] != "never_treated":
                continue  # 3.13 has no last_treated
            if which == "pyfixest" and run["vcov_type"] not in ("hc1", "classical"):
                continue  # no CR2 / HC2 with absorbed effects in pyfixest
            try:
                res["cases"][name][run_name] = fit(df, run, covariates)
            except Exception as exc:  # noqa: BLE001 - recorded
                res["cases"][name][run_name] = {"error": f"{type(exc).__name__}: {exc}"}
    Path(path_out).write_text(json.dumps(res))


# ---------------------------------------------------------------- orchestrator

def main():
    data, md5 = {}, None
    for name, spec in CASES.items():
        if spec["source"] == "mpdta":
            df, md5 = mpdta()
        else:
            df = simulate(spec)
        data[name] = {"data": {c: df[c].tolist() for c in df.columns}, "runs": spec["runs"]}
    with tempfile.TemporaryDirectory() as tmp:
        path_in = os.path.join(tmp, "in.json")
        Path(path_in).write_text(json.dumps(data))
        parts = {}
        for which, python in (("dd313", PYTHON_313), ("pyfixest", PYTHON_PYFIXEST)):
            path_out = os.path.join(tmp, f"{which}.json")
            subprocess.run([python, "-P", __file__, "--part", which, path_in, path_out],
                           check=True)
            parts[which] = json.loads(Path(path_out).read_text())

    out = {
        "meta": {
            "script": "tests/parity/ports/sun_abraham_refs.py",
            "source": ("diff-diff 3.13.0 SunAbraham; pyfixest 0.60.0 feols of the saturated "
                       "cohort x relative-period regression, aggregated in numpy"),
            "versions": {k: v["versions"] for k, v in parts.items()},
            "date": datetime.date.today().isoformat(),
            "mpdta_md5": md5,
            "runs": RUNS,
            "calls": {
                "dd313": ("SunAbraham(control_group, anticipation, vcov_type, cluster).fit(df, "
                          "outcome='y', unit='unit', time='time', first_treat='first_treat', "
                          "covariates=['x'] | None); never_treated runs only"),
                "pyfixest": ("feols('y ~ D_1 + ... + D_K [+ x] | unit + time', vcov={'CRV1': "
                             "cluster or 'unit'} (hc1) | 'iid' (classical), fixef_rm='none', "
                             f"demeaner=MapDemeaner(fixef_tol={FIXEF_TOL:g})), one dummy per "
                             "(cohort g, relative period e) observed, except e = -1 - "
                             "anticipation; last_treated: rows with time >= g_last - "
                             "anticipation dropped, last cohort without dummies; aggregation "
                             "in numpy: w_ge = n_ge / sum_g n_ge, beta_e = sum_g w_ge delta_ge, "
                             "overall = sum_{e>=0} n_ge delta_ge / sum_{e>=0} n_ge, vcov W V W'"),
            },
            "k_conventions": {
                "notation": ("n rows, k = cohort-cell coefficients + covariates, N units, T "
                             "periods (estimation sample); CR1 = G/(G-1) (n-1)/(n-K) * meat"),
                "pyfixest_cr1": ("ssc() default k_fixef='nonnested': K = k + (N + T - 1) - N + 1 "
                                 "= k + T (df_k recorded); unit effects nested in the cluster "
                                 "are not counted"),
                "dd313_cr1": ("K = k + absorbed_fe_cr1_k_increment = k + 1 + rank(unit, time) - "
                              "rank(unit) = k + T (cr1_k_increment recorded)"),
                "diff_diff_cr1": ("K = k + N + T - 1 (every absorbed effect, as the dummy "
                                  "regression); var_ours = var_ref * (n - k - T) / "
                                  "(n - k - N - T + 1)"),
                "classical": ("all three: sigma2 = RSS / (n - k - N - T + 1) (pyfixest iid "
                              "df_k = k + N + T - 1): no factor"),
                "df": ("t df: pyfixest CRV1 G - 1, iid n - K; 3.13 residual df n - k - N - T + 1 "
                       "(df_convention='residual' default) or Bell-McCaffrey (hc2_bm)"),
            },
            "tolerance": ("points (overall, event study, cohort effects, weights) abs 1e-10; "
                          "SEs and vcov rel 1e-10 after the K factor (observed <= 2e-14), "
                          "see the test"),
            "control_group_note": ("3.13 accepts never_treated | not_yet_treated (the latter fits "
                                   "the same rows and regression); last_treated runs have the "
                                   "pyfixest reference only"),
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        params = {k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v)
                  for k, v in spec.items()}
        case = {"params": params, "runs": {}}
        if spec["source"] == "mpdta":
            params.update(file="mpdta.csv", y="lemp", unit="countyreal", time="year",
                          first_treat="first.treat")
        else:
            case["data"] = data[name]["data"]
        for run_name in spec["runs"]:
            case["runs"][run_name] = {
                which: parts[which]["cases"][name][run_name]
                for which in ("dd313", "pyfixest") if run_name in parts[which]["cases"][name]}
        out["cases"][name] = case
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--part":
        part(*sys.argv[2:5])
    else:
        main()
