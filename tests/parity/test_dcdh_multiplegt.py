"""ChaisemartinDHaultfoeuille against the authors' Python port of did_multiplegt_dyn
(``py-did-multiplegt-dyn`` 0.1.9; ``tests/parity/ports/dcdh_multiplegt.py``, which also
re-derives every number with numpy from the formulas it documents; fixture
``dcdh_multiplegt.json``, data ``dcdh_panels.csv``: 300 groups x 8 periods, a binary
staggered treatment, a binary treatment switching on and off, a treatment in 0..3 moving
up or down once).

Effects 1..3, placebos 1..2, the average total effect, normalised effects, and clusters:
estimates and switcher counts to 1e-12; the influence values behind the standard errors
(cohort-recentred, with the per-cohort sqrt(n/(n-1)) corrections) to 1e-12. The standard
errors: theirs ``sqrt(sum U^2) / G``, ours the engine's ``sqrt(n / (n - 1))`` (clusters:
``C / (C - 1)``) times the centred version of the same sum: equal up to that constant
where the recentred values sum to zero (1e-12); with single-group cohorts (the
non-binary sample) they do not quite, 1e-4. Their ``weight=`` case uses cell weights that
vary over time, which a survey design's unit weights cannot express; it is not compared.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

HERE = Path(__file__).parent / "fixtures"
FIXTURE = json.loads((HERE / "dcdh_multiplegt.json").read_text())
CASES = [(sample, name) for sample in ("binary_staggered", "switching", "nonbinary")
         for name, case in FIXTURE[sample]["cases"].items() if "weight" not in case["args"]]
KW = dict(outcome="y", unit="group", time="time", treatment="treatment")


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(HERE / "dcdh_panels.csv")


def _fit(data, sample, args):
    return dd.DCDH(cluster=args.get("cluster")).fit(data[data["sample"] == sample],
                                                    L_max=args["effects"], **KW)


@pytest.mark.parametrize("sample,name", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_matches_did_multiplegt_dyn(data, sample, name):
    case = FIXTURE[sample]["cases"][name]
    args = case["args"]
    res = _fit(data, sample, args)
    assert res.n_groups == case["n_groups_used"]
    frame = data[data["sample"] == sample]
    n = frame[args["cluster"]].nunique() if "cluster" in args else res.n_groups
    scale = np.sqrt(n / (n - 1))
    rtol = 1e-4 if sample == "nonbinary" else 1e-12
    table = (res.normalized_effects if args.get("normalized") else
             res.event_study_effects).set_index("event_time")
    counts = res.event_study_effects.set_index("event_time")["n_switchers"]
    rows = [(int(k.split("_")[1]), v) for k, v in case["effects"].items()]
    rows += [(-int(k.split("_")[1]), v) for k, v in case.get("placebos", {}).items()]
    for l, theirs in rows:
        assert table.loc[l, "estimate"] == pytest.approx(theirs["Estimate"], abs=1e-12)
        assert table.loc[l, "se"] == pytest.approx(scale * theirs["SE"], rel=rtol)
        assert counts[l] == theirs["Switchers"]
    ate = case["ate"]["Average_Total_Effect"]
    assert res.average_total_effect["estimate"].iloc[0] == pytest.approx(ate["Estimate"],
                                                                        abs=1e-12)
    assert res.average_total_effect["se"].iloc[0] == pytest.approx(scale * ate["SE"], rel=rtol)


@pytest.mark.parametrize("sample", ["binary_staggered", "switching", "nonbinary"])
def test_influence_values_match(data, sample):
    case = FIXTURE[sample]["cases"]["default"]
    theirs = case["influence"]
    res = _fit(data, sample, case["args"])
    psi = res._inference.estimate.psi
    G = res.n_groups
    keys = ["Uvar_effect_1", "Uvar_effect_2", "Uvar_effect_3", "Uvar_placebo_1",
            "Uvar_placebo_2"]
    for j, key in enumerate(keys):
        np.testing.assert_allclose(G * psi[:, j], theirs[key], atol=1e-12)
    # layout: effects, placebos, their normalised versions, the ATE, joiners, leavers
    ate = 2 * len(res.event_study_effects)
    np.testing.assert_allclose(G * psi[:, ate], theirs["Uvar_ate"], atol=1e-12)
