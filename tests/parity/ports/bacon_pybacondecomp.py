"""Reference values of the Goodman-Bacon decomposition from pybacondecomp.

Source: the PyPI package ``pybacondecomp`` 0.1.0 (a Python port of Stata's
``bacondecomp`` 1.0.5 by Goodman-Bacon, Goldring & Nichols), which runs every
regression through ``pyfixest.feols``. Generated with Python 3.11, numpy 2.4,
pandas 3.1, pyfixest 0.60.0 (exact versions in the fixture's ``meta``).

API used: ``bacondecomp(df, y="y", tr="d", unit="unit", time="time",
ddetail=DD, n_jobs=1, verbose=False)``; ``d = 1{first_treat > 0 and time >=
first_treat}`` is built here (pybacondecomp takes the 0/1 treatment, not the
cohort). Recorded: ``dd_estimate`` (the TWFE coefficient of ``y ~ d | unit +
time``) and every row of ``two_by_two`` (``treated``, ``control``,
``estimate``, ``weight``, ``type``), for ``ddetail=True`` and ``False``.

Conventions of pybacondecomp (what the rows mean):

* Groups are labelled by the period of the 0 -> 1 switch (``str(int(t))``),
  ``"Never"`` and ``"Always"`` (treated in every period).
* ``ddetail=True``: ``"Never vs timing"`` (cohort vs never treated, all
  periods), ``"Early vs Late"`` (treated = earlier cohort, control = later
  cohort, periods before the later one starts) and ``"Late vs Early"``
  (treated = later cohort, control = earlier cohort, periods from the earlier
  one's start). Each 2x2 is the TWFE coefficient on that subsample, its raw
  weight ``(obs share of the subsample)^2 * var(FE-residualised d)``; the raw
  weights are then divided by their sum.
* ``ddetail=False``: each unordered pair of groups once, on all periods:
  ``"Timing groups"`` (treated = earlier cohort, control = later cohort; the
  estimate is the variance-weighted mix of the two directions),
  ``"Never vs timing"``, ``"Always vs timing"`` (treated = cohort, control =
  ``"Always"``). Always-vs-never pairs carry no treatment variation and are
  skipped.
* TRAP: with ``ddetail=True`` the always-treated comparisons are silently
  dropped (an always-treated group has no untreated period, so the
  ``Early vs Late`` block finds none, and the ``Late vs Early`` block is skipped
  for the labels Always/Never), and the remaining weights are renormalised to
  sum to one, so ``sum(weight * estimate) != dd_estimate`` while
  ``dd_estimate`` still includes those units. Case ``sim_always_treated``
  records that output only to document it: its estimates are right, its
  weights are Goodman-Bacon's divided by ``1 - (total always-treated weight)``.
  Its ``ddetail=False`` output is correct and is compared as usual.
* Analytic ``weights=`` are not used here: the 2x2 weight takes an unweighted
  ``np.var`` of residuals from a weighted regression.

Data: ``mpdta`` is R ``did``'s mpdta (``../shared/data/mpdta.csv`` beside the repository, byte
identical to ``diff_diff/datasets/data/mpdta.csv``; md5 in the fixture), with
``y = lemp``, ``unit = countyreal``, ``time = year``, ``first_treat =
first.treat``. The simulated panels use ``numpy.random.default_rng(seed)``;
their generation parameters and the full long data (unit, time, first_treat,
y) are stored in the fixture, so the test needs no RNG agreement.

Run from the repository root with a scratch venv outside the repository (and
not this checkout on ``sys.path``, hence ``-P``):

    python -m venv /tmp/venv-bacon
    /tmp/venv-bacon/bin/pip install pybacondecomp==0.1.0 pandas numpy
    /tmp/venv-bacon/bin/python -P tests/parity/ports/bacon_pybacondecomp.py

It writes ``tests/parity/fixtures/bacon_pybacondecomp.json``.
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

OUT = "tests/parity/fixtures/bacon_pybacondecomp.json"
# the team's shared folder sits beside the repository
MPDTA = str(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mpdta.csv")
TOLERANCE = 1e-10

# Simulated panels. cohorts: {first treated period: units}; never/always: units.
# effect(g, e) for event time e = t - g >= 0 is base[g] + slope[g] * e.
CASES = {
    "mpdta": dict(source="mpdta"),
    "sim_3cohorts": dict(
        source="simulated", seed=20240611, periods=list(range(2011, 2019)),
        cohorts={2013: 15, 2015: 15, 2017: 15}, never=15, always=0,
        base={2013: 1.0, 2015: 1.0, 2017: 1.0}, slope={2013: 0.0, 2015: 0.0, 2017: 0.0},
        noise_sd=1.0, trend=0.3),
    "sim_unequal_dynamic": dict(
        source="simulated", seed=777, periods=list(range(2001, 2011)),
        cohorts={2003: 4, 2005: 20, 2008: 9}, never=14, always=0,
        base={2003: 0.5, 2005: 1.5, 2008: -0.4}, slope={2003: 0.6, 2005: -0.2, 2008: 1.1},
        noise_sd=0.5, trend=0.15),
    "sim_always_treated": dict(
        source="simulated", seed=4242, periods=list(range(1, 7)),
        cohorts={3: 12, 5: 10}, never=12, always=6,
        base={1: 2.0, 3: 1.0, 5: 0.3}, slope={1: 0.4, 3: 0.5, 5: -0.3},
        noise_sd=0.8, trend=0.2),
}


def mpdta() -> pd.DataFrame:
    df = pd.read_csv(MPDTA)
    return pd.DataFrame({"unit": df["countyreal"], "time": df["year"],
                         "first_treat": df["first.treat"], "y": df["lemp"]})


def simulate(spec) -> pd.DataFrame:
    """Long balanced panel: y = a_i + trend * t + sin(t) + effect(g, t - g) * d + noise."""
    rng = np.random.default_rng(spec["seed"])
    periods = np.array(spec["periods"])
    first = ([0] * spec["never"] + [int(periods[0])] * spec["always"]
             + [g for g, n in spec["cohorts"].items() for _ in range(n)])
    first = np.array(first)
    n = first.size
    a = rng.normal(0.0, 1.0, n) + 0.1 * first / max(periods.max(), 1)
    rows = []
    for i in range(n):
        g = first[i]
        for t in periods:
            d = g > 0 and t >= g
            eff = spec["base"][g] + spec["slope"][g] * (t - g) if d else 0.0
            y = (a[i] + spec["trend"] * (t - periods[0]) + np.sin(t - periods[0]) + eff
                 + rng.normal(0.0, spec["noise_sd"]))
            rows.append((i + 1, int(t), int(g), float(y)))
    return pd.DataFrame(rows, columns=["unit", "time", "first_treat", "y"])


def run(df, ddetail):
    from pybacondecomp import bacondecomp

    data = df.assign(d=((df["first_treat"] > 0) & (df["time"] >= df["first_treat"])).astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bacondecomp(data, y="y", tr="d", unit="unit", time="time", ddetail=ddetail,
                          n_jobs=1, verbose=False)
    rows = [dict(type=str(r.type), treated=str(r.treated), control=str(r.control),
                 estimate=float(r.estimate), weight=float(r.weight))
            for r in res.two_by_two.itertuples(index=False)]
    return dict(twfe=float(res.dd_estimate), n_obs=int(res.n_obs), comparisons=rows,
                implied_twfe=float(sum(r["estimate"] * r["weight"] for r in rows)))


def main():
    from importlib.metadata import version

    with open(MPDTA, "rb") as fh:
        md5 = hashlib.md5(fh.read()).hexdigest()
    out = {
        "meta": {
            "script": "tests/parity/ports/bacon_pybacondecomp.py",
            "source": (f"pybacondecomp {version('pybacondecomp')} "
                       "(port of Stata bacondecomp 1.0.5)"),
            "pyfixest": version("pyfixest"), "numpy": version("numpy"),
            "pandas": version("pandas"), "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "call": ("bacondecomp(df, y='y', tr='d', unit='unit', time='time', "
                     "ddetail=DD, n_jobs=1, verbose=False), d = 1{first_treat > 0 and "
                     "time >= first_treat}"),
            "tolerance": (f"abs {TOLERANCE:g} on the TWFE coefficient and on every 2x2 "
                          "estimate and weight (balanced panels: pyfixest's alternating-"
                          "projection demeaning is exact after one sweep)"),
            "labels": ("groups are labelled by first treated period, 'Never', 'Always'. "
                       "ddetail=True types: 'Never vs timing' (= treated_vs_never), 'Early "
                       "vs Late' (treated earlier, control later = earlier_vs_later), 'Late "
                       "vs Early' (treated later, control earlier = later_vs_earlier). "
                       "ddetail=False: 'Timing groups' (treated = earlier cohort; the two "
                       "directions pooled: weight = sum, estimate = weighted mean), 'Never "
                       "vs timing', 'Always vs timing' (= later_vs_always_treated)."),
            "always_treated_trap": ("with ddetail=True pybacondecomp silently drops every "
                                    "comparison against always-treated units and divides "
                                    "the other weights by their sum, so weights are "
                                    "Goodman-Bacon's / (1 - always-treated weight) and "
                                    "sum(w*b) != dd_estimate (which still uses all units). "
                                    "Only case sim_always_treated has such units; its "
                                    "ddetail output is marked trap=true and is compared "
                                    "only in that renormalised form. ddetail=False handles "
                                    "them correctly."),
            "mpdta_md5": md5,
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        df = mpdta() if spec["source"] == "mpdta" else simulate(spec)
        case = {"params": {k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v)
                           for k, v in spec.items()}}
        if spec["source"] == "mpdta":
            case["params"].update(file="mpdta.csv", y="lemp", unit="countyreal", time="year",
                                  first_treat="first.treat")
        else:
            case["data"] = {c: df[c].tolist() for c in ["unit", "time", "first_treat", "y"]}
        case["ddetail"] = run(df, True)
        case["ddetail"]["trap"] = bool(spec.get("always", 0))
        case["basic"] = run(df, False)
        out["cases"][name] = case
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
