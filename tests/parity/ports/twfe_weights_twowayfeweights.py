"""Reference TWFE weights (de Chaisemartin & D'Haultfoeuille 2020) from twowayfeweights.

Source: the PyPI package ``twowayfeweights`` 0.1.0 (a Python port of the Stata
command ``twowayfeweights``, checked by its authors against Stata and against
R ``TwoWayFEWeights`` 2.1.0). It computes everything in double precision with
an exact (pseudo-inverse plus iterative refinement) solve of the fixed-effect
regression on collapsed (g,t) cells. Generated with Python 3.11, numpy 2.4,
pandas 3.1, scipy 1.17 (exact versions in the fixture's ``meta``).

API used: ``twowayfeweights(df, Y="y", G="unit", T="time", D="d",
type="feTR")``. Recorded: ``beta``, ``nr_plus``, ``nr_minus``,
``nr_weights``, ``tot_cells``, ``sum_plus``, ``sum_minus``, ``sensibility``,
``sensibility2`` and the ``weight`` of every treated (g,t) cell from
``res.weights`` (columns ``Group_TWFE``, ``Time_TWFE``, ``weight``).

Conventions of twowayfeweights (what the numbers mean):

* ``res.weights`` has one row per (g,t) cell present in the data, treated or
  not; its ``weight`` is ``(N_gt / N_1) * w_gt`` (Stata's ``path()`` output,
  summing to one), NOT the paper's ``w_gt``. Untreated cells get exactly 0
  (asserted below and not stored). diff_diff's ``weights["weight"]`` is
  ``w_gt`` itself, so the comparison is ``ours * n / sum(n) == theirs``.
* ``sum_plus`` / ``sum_minus`` are sums of ``(N_gt / N_1) w_gt`` (as ours).
* Weights with ``|(N_gt / N_1) w_gt| < 1e-10`` are set to 0 before counting
  (``nr_plus``, ``nr_minus`` exclude them; ``tot_cells`` still counts them).
  No cell here is near that threshold (the smallest ``|weight|`` of each case
  is recorded as ``min_abs_weight``).
* ``sensibility`` (sigma_fe) = ``|beta| / sd`` with ``sd`` the
  ``N_gt``-weighted standard deviation of ``w_gt`` over the treated cells
  WITH a degrees-of-freedom factor ``sqrt(M / (M - 1))``, ``M`` = number of
  treated cells (Stata ``summarize [aw=]``; R ``TwoWayFEWeights`` 2.x
  "Modif. Diego: DoF adjustment to the sd of w_gt"). The paper's Corollary 1
  (and diff_diff) use ``sd = sqrt(sum (N_gt/N_1)(w_gt - 1)^2)`` without it,
  so ``ours = theirs * sqrt(M / (M - 1))``.
* ``sensibility2`` (sigma_fe_2 of Corollary 1: the smallest sd of the cell
  effects compatible with every effect having the opposite sign of beta) is
  only computed when some weight is negative; it is diff_diff's ``sigma_fe_2``
  as is (no DoF factor in either).

Data: ``mpdta`` is R ``did``'s mpdta (``../shared/data/mpdta.csv`` beside the
repository, byte identical to ``diff_diff/datasets/data/mpdta.csv``; md5 in the
fixture) with ``y = lemp``, ``unit = countyreal``, ``time = year`` and ``d =
1{first.treat > 0 and year >= first.treat}``. The simulated panels use
``numpy.random.default_rng(seed)``; their parameters and full long data (unit,
time, d, y) are stored, so the test needs no RNG agreement:

* ``sim_always_treated``: balanced staggered adoption with never- and
  always-treated units (an always-treated unit has no untreated period but
  still gets weights through the period effects);
* ``sim_switching_unbalanced``: a non-absorbing binary treatment (units switch
  on and off, some twice), with a random 8% of the rows dropped, so the panel
  is unbalanced and diff_diff's alternating projections need many sweeps.

Run from the repository root with a scratch venv outside the repository (and
not this checkout on ``sys.path``, hence ``-P``):

    python -m venv /tmp/venv-twfew
    /tmp/venv-twfew/bin/pip install twowayfeweights==0.1.0
    /tmp/venv-twfew/bin/python -P tests/parity/ports/twfe_weights_twowayfeweights.py

It writes ``tests/parity/fixtures/twfe_weights_twowayfeweights.json``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/twfe_weights_twowayfeweights.json"
# the team's shared folder sits beside the repository
MPDTA = str(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mpdta.csv")
TOLERANCE = 1e-10

CASES = {
    "mpdta": dict(source="mpdta"),
    # cohorts: {first treated period: units}; effect(g, e) = base[g] + slope[g] * e
    "sim_always_treated": dict(
        source="staggered", seed=31415, periods=list(range(1, 9)),
        cohorts={3: 10, 5: 14, 7: 8}, never=12, always=7,
        base={1: 2.5, 3: 1.0, 5: 0.4, 7: -0.2}, slope={1: 0.3, 3: 0.5, 5: -0.2, 7: 0.8},
        noise_sd=0.7, trend=0.25),
    # each unit: 0, 1 or 2 treatment spells [start, end) at random periods;
    # effect = base + slope * (periods since the spell started) + unit effect
    "sim_switching_unbalanced": dict(
        source="switching", seed=1, periods=list(range(2001, 2011)), units=60,
        p_spells=[0.2, 0.55, 0.25], base=1.2, slope=0.3, unit_effect_sd=0.8,
        noise_sd=0.6, trend=0.1, drop_share=0.08),
}


def mpdta() -> pd.DataFrame:
    df = pd.read_csv(MPDTA)
    d = ((df["first.treat"] > 0) & (df["year"] >= df["first.treat"])).astype(int)
    return pd.DataFrame({"unit": df["countyreal"], "time": df["year"], "d": d, "y": df["lemp"]})


def staggered(spec) -> pd.DataFrame:
    """y = a_i + trend * (t - t0) + sin(t - t0) + effect(g, t - g) * d + noise (balanced)."""
    rng = np.random.default_rng(spec["seed"])
    periods = np.array(spec["periods"])
    first = np.array([0] * spec["never"] + [int(periods[0])] * spec["always"]
                     + [g for g, n in spec["cohorts"].items() for _ in range(n)])
    a = rng.normal(0.0, 1.0, first.size) + 0.2 * first / periods.max()
    rows = []
    for i, g in enumerate(first):
        for t in periods:
            d = int(g > 0 and t >= g)
            eff = spec["base"][g] + spec["slope"][g] * (t - g) if d else 0.0
            y = (a[i] + spec["trend"] * (t - periods[0]) + np.sin(t - periods[0]) + eff
                 + rng.normal(0.0, spec["noise_sd"]))
            rows.append((i + 1, int(t), d, float(y)))
    return pd.DataFrame(rows, columns=["unit", "time", "d", "y"])


def switching(spec) -> pd.DataFrame:
    """Non-absorbing 0/1 treatment in spells; then a random share of rows is dropped."""
    rng = np.random.default_rng(spec["seed"])
    periods = np.array(spec["periods"])
    T = periods.size
    rows = []
    for i in range(spec["units"]):
        n_spells = int(rng.choice(3, p=spec["p_spells"]))
        d = np.zeros(T, dtype=int)
        since = np.zeros(T)
        cuts = np.sort(rng.choice(np.arange(1, T + 1), size=2 * n_spells, replace=False))
        for k in range(n_spells):
            s, e = cuts[2 * k], cuts[2 * k + 1]  # treated on [s, e); e == T: never ends
            d[s:e] = 1
            since[s:e] = np.arange(e - s)
        a = rng.normal(0.0, 1.0)
        u = rng.normal(0.0, spec["unit_effect_sd"])
        for j, t in enumerate(periods):
            eff = (spec["base"] + spec["slope"] * since[j] + u) * d[j]
            y = a + spec["trend"] * j + np.cos(j) + eff + rng.normal(0.0, spec["noise_sd"])
            rows.append((i + 1, int(t), int(d[j]), float(y)))
    df = pd.DataFrame(rows, columns=["unit", "time", "d", "y"])
    keep = rng.random(len(df)) >= spec["drop_share"]
    return df[keep].reset_index(drop=True)


def run(df):
    from twowayfeweights import twowayfeweights

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = twowayfeweights(df, Y="y", G="unit", T="time", D="d", type="feTR")
    w = res.weights.rename(columns={"Group_TWFE": "unit", "Time_TWFE": "time"})
    treated = df.loc[df["d"] == 1, ["unit", "time"]].drop_duplicates()
    w = w.merge(treated.assign(treated=True), on=["unit", "time"], how="left")
    w["treated"] = w["treated"].fillna(False).astype(bool)
    assert (w.loc[~w["treated"], "weight"] == 0).all()  # untreated cells: exactly 0
    w = w[w["treated"]].sort_values(["unit", "time"]).reset_index(drop=True)
    assert len(w) == res.tot_cells == len(treated)
    s2 = res.sensibility2
    return dict(
        beta=float(res.beta), nr_plus=int(res.nr_plus), nr_minus=int(res.nr_minus),
        nr_weights=int(res.nr_weights), tot_cells=int(res.tot_cells),
        sum_plus=float(res.sum_plus), sum_minus=float(res.sum_minus),
        sensibility=float(res.sensibility), sensibility2=None if s2 is None else float(s2),
        n_cells_all=int(len(res.weights)), min_abs_weight=float(w["weight"].abs().min()),
        weights={"unit": [int(v) for v in w["unit"]], "time": [int(v) for v in w["time"]],
                 "weight": [float(v) for v in w["weight"]]})


def main():
    from importlib.metadata import version

    with open(MPDTA, "rb") as fh:
        md5 = hashlib.md5(fh.read()).hexdigest()
    out = {
        "meta": {
            "script": "tests/parity/ports/twfe_weights_twowayfeweights.py",
            "source": (f"twowayfeweights {version('twowayfeweights')} (Python port of Stata "
                       "twowayfeweights; R TwoWayFEWeights 2.x conventions)"),
            "numpy": version("numpy"), "pandas": version("pandas"), "scipy": version("scipy"),
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "call": "twowayfeweights(df, Y='y', G='unit', T='time', D='d', type='feTR')",
            "tolerance": (f"abs {TOLERANCE:g} on beta, sum_plus, sum_minus, every w_gt "
                          "(= weight * N_1 / N_gt) and sigma_fe after the DoF factor; counts "
                          "exact"),
            "weight_convention": ("weights.weight = (N_gt / N_1) * w_gt (sums to 1), one row per "
                                  "treated cell (untreated cells: exactly 0 in the package, not "
                                  "stored); diff_diff's weight column is w_gt"),
            "sensibility_convention": ("sensibility = |beta| / (sd * sqrt(M / (M - 1))), sd = "
                                       "sqrt(sum (N_gt/N_1)(w_gt - 1)^2), M = tot_cells (Stata "
                                       "summarize [aw=] / R 2.x DoF adjustment); diff_diff's "
                                       "sigma_fe is |beta| / sd (paper, Corollary 1)"),
            "sensibility2": ("sigma_fe_2 of Corollary 1 (opposite-sign effects in all cells); "
                             "compared with diff_diff's sigma_fe_2 as is (no DoF factor)"),
            "zero_threshold": ("the package sets |(N_gt/N_1) w_gt| < 1e-10 to 0 before counting; "
                               "min_abs_weight per case shows no cell is near it"),
            "mpdta_md5": md5,
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        if spec["source"] == "mpdta":
            df = mpdta()
        elif spec["source"] == "staggered":
            df = staggered(spec)
        else:
            df = switching(spec)
        case = {"params": {k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v)
                           for k, v in spec.items()}}
        if spec["source"] == "mpdta":
            case["params"].update(file="mpdta.csv", y="lemp", unit="countyreal", time="year",
                                  d="1{first.treat > 0 and year >= first.treat}")
        else:
            case["data"] = {c: df[c].tolist() for c in ["unit", "time", "d", "y"]}
        case["n_obs"] = int(len(df))
        case["result"] = run(df)
        out["cases"][name] = case
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
