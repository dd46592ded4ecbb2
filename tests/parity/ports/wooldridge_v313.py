"""diff-diff 3.13.0's WooldridgeDiD with ``demean_covariates=False`` (``jwdid``'s ``xasis``)
on the etwfe port's simulated panel, for the comparison in tests/estimators/test_wooldridge.py.

What 3.13.0 does with a covariate ``x`` given as ``xtvar`` (read from its source and
checked on these numbers): the cells are interacted with ``x`` (cohort-centred with
``demean_covariates=True``, raw with False), ``x`` enters at its level (with True: centred
within cohort x period), times the treated-cohort dummies and times the period dummies.
With False that is our ``covariates=["x"]`` model; then

* logit / Poisson: 3.13's ATT(g, t) is the cell's mean of ``G(eta) - G(eta0)``, a quantity
  the centring does not move: it equals ours (recorded ``att``); its SE is the QMLE sandwich
  with ``G/(G-1) (n-1)/(n-k)`` (ours ``G/(G-1)``);
* OLS: 3.13 reports the cell COEFFICIENT as ATT(g, t): with raw interactions that is the
  cell's effect at x = 0, not its average effect (recorded; ours is
  ``results.cell_coefficients`` under ``demean_covariates=False``, the ATT is the mean);
* with True 3.13 also centres the level of ``x`` within cohort x period, a different
  control model (recorded as ``demean_true`` for reference, not compared).

Run from /tmp with 3.13.0's interpreter (so this checkout is not imported):

    cd /tmp && /work/venv313/bin/python /work/main/tests/parity/ports/wooldridge_v313.py
"""

import datetime
import json
import warnings
from importlib.metadata import version
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
SIM = ROOT / "tests" / "parity" / "fixtures" / "etwfe_sim_panel.csv"
OUT = ROOT / "tests" / "parity" / "fixtures" / "wooldridge_v313.json"


def panel():
    sim = pd.read_csv(SIM)
    u, t = sim["unit"].astype(int), sim["time"].astype(int)
    return sim.assign(x=((u * 7 + t * 3) % 11 - 5) / 10.0)  # the port's add_sim_columns


def run(method, outcome, demean):
    import diff_diff as dd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dd.WooldridgeDiD(method=method, demean_covariates=demean).fit(
            panel(), outcome, "unit", "time", "first_treat", xtvar=["x"])
    cells = sorted(res.group_time_effects)
    return {"g": [int(g) for g, _ in cells], "t": [int(t) for _, t in cells],
            "att": [float(res.group_time_effects[c]["att"]) for c in cells],
            "se": [float(res.group_time_effects[c]["se"]) for c in cells],
            "overall_att": float(res.overall_att), "overall_se": float(res.overall_se),
            "n_obs": int(res.n_obs)}


def main():
    out = {"meta": {"source": f"diff-diff {version('diff-diff')}",
                    "script": "tests/parity/ports/wooldridge_v313.py",
                    "call": "WooldridgeDiD(method=, demean_covariates=).fit(sim, y, 'unit', "
                            "'time', 'first_treat', xtvar=['x'])",
                    "data": "tests/parity/fixtures/etwfe_sim_panel.csv + x (add_sim_columns)",
                    "tolerances": "ATT 1e-10; nonlinear SE ratio sqrt((n-1)/(n-k)) to 1e-7",
                    "date": datetime.date.today().isoformat()},
           "cases": {}}
    for method, outcome in [("ols", "y_count"), ("logit", "y_bin"), ("poisson", "y_count")]:
        out["cases"][method] = {"demean_false": run(method, outcome, False),
                                "demean_true": run(method, outcome, True)}
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
