"""ChaisemartinDHaultfoeuille against the authors' Python port of did_multiplegt_dyn
(``py-did-multiplegt-dyn`` 0.1.9; ``tests/parity/ports/dcdh_multiplegt.py``, which also
re-derives the numbers of the cases without covariates or trends with numpy from the
formulas it documents; fixture ``dcdh_multiplegt.json``, data ``dcdh_panels.csv``: 300
groups x 8 periods, a binary staggered treatment, a binary treatment switching on and off,
a treatment in 0..3 moving up or down once).

Effects 1..3, placebos 1..2, the average total effect, normalised effects, clusters,
covariates (``controls``), linear trends (``trends_lin``, also with groups first switching
in the second period, which both drop), ``trends_nonparam``, all three at once, and
group-constant weights (a survey design's weights): estimates and switcher counts to
1e-12. Standard errors: theirs ``sqrt(sum U^2) / G``, ours the engine's ``sqrt(n / (n -
1))`` (clusters: ``C / (C - 1)``) times the centred version of the same sum: equal up to
that constant where the recentred values sum to zero (1e-12); where they do not
(single-group cohorts, covariates) ours equal the centred sum of their stored values
(1e-10). With covariates our influence values differ from theirs in two documented ways
(docs/estimators.md): they subtract ``M' theta`` from every group's (placebos: within a
baseline), which only a centred variance ignores, and with several first-period levels
they scale the coefficients' influence by the regression weight of all levels over that
of the group's own; with that scale put back, ours equal theirs up to those shifts
(1e-10). Their ``weight=`` case with cell weights varying over time is not compared (a
survey design's unit weights cannot express it).

``same_switchers``, ``only_never_switchers`` (each unweighted and weighted, on every
sample; with covariates, with cells, with linear trends, which the reference's
``same_switchers`` leaves alone) are compared the same way. The joint tests (effects,
placebos, and ``effects_equal``): our Wald statistics, on the engine's covariance, times
``G / (G - 1)`` equal the reference's ``b' pinv(V) b`` (recomputed by the port script from
its estimates and ``vcov`` and checked there against its p-values) to 1e-10 where the
recentred values sum to zero, 2e-4 on the non-binary sample (its single-group cohorts).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.estimators.dcdh import DCDHProblem

HERE = Path(__file__).parent / "fixtures"
FIXTURE = json.loads((HERE / "dcdh_multiplegt.json").read_text())
CASES = [(sample, name) for sample in ("binary_staggered", "switching", "nonbinary")
         for name, case in FIXTURE[sample]["cases"].items()
         if case["args"].get("weight") in (None, "wg")]
INFLUENCE = [(s, n) for s, n in CASES if "influence" in FIXTURE[s]["cases"][n]
             and n != "default"]
KW = dict(unit="group", time="time", treatment="treatment")


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(HERE / "dcdh_panels.csv")


def _fit(data, sample, args):
    frame = data[(data["sample"] == sample) & (data["time"] >= args.get("start", 1))]
    design = dd.SurveyDesign(weights="wg") if args.get("weight") == "wg" else None
    options = {k: args[k] for k in ("same_switchers", "only_never_switchers", "effects_equal")
               if k in args}
    return dd.DCDH(cluster=args.get("cluster"), **options).fit(
        frame, outcome=args.get("outcome", "y"), L_max=args["effects"],
        controls=args.get("controls"), trends_lin=args.get("trends_lin", False),
        trends_nonparam=args.get("trends_nonparam"), survey_design=design, **KW)


def _rows(case):
    rows = [(int(k.split("_")[1]), v) for k, v in case["effects"].items()]
    return rows + [(-int(k.split("_")[1]), v) for k, v in (case["placebos"] or {}).items()]


@pytest.mark.parametrize("sample,name", CASES, ids=[f"{a}-{b}" for a, b in CASES])
def test_matches_did_multiplegt_dyn(data, sample, name):
    case = FIXTURE[sample]["cases"][name]
    args = case["args"]
    res = _fit(data, sample, args)
    assert res.n_groups == case["n_groups_used"]
    frame = data[data["sample"] == sample]
    n = frame[args["cluster"]].nunique() if "cluster" in args else res.n_groups
    scale = np.sqrt(n / (n - 1))
    # SEs compared here where the recentred values sum to zero; the others below
    exact_se = "influence" not in case or name == "default"
    rtol = 1e-4 if sample == "nonbinary" else 1e-12
    table = (res.normalized_effects if args.get("normalized") else
             res.event_study_effects).set_index("event_time")
    counts = res.event_study_effects.set_index("event_time")["n_switchers"]
    for l, theirs in _rows(case):
        assert table.loc[l, "estimate"] == pytest.approx(theirs["Estimate"], abs=1e-12)
        if exact_se:
            assert table.loc[l, "se"] == pytest.approx(scale * theirs["SE"], rel=rtol)
        if args.get("trends_lin") and l < 0:
            # their placebo rows all show the last placebo's count; Switchers.w is right
            if "weight" not in args:
                assert counts[l] == theirs["Switchers.w"]
        else:
            assert counts[l] == theirs["Switchers"]
    ate = res.average_total_effect.iloc[0]
    if args.get("trends_lin"):  # the reference reports none either
        assert case["ate"]["Average_Total_Effect"]["Estimate"] is None
        assert np.isnan(ate["estimate"]) and np.isnan(ate["se"])
        return
    theirs = case["ate"]["Average_Total_Effect"]
    assert ate["estimate"] == pytest.approx(theirs["Estimate"], abs=1e-12)
    if exact_se:
        assert ate["se"] == pytest.approx(scale * theirs["SE"], rel=rtol)


TESTS = [(s, n) for s, n in CASES if "wald_statistics" in FIXTURE[s]["cases"][n]]


@pytest.mark.parametrize("sample,name", TESTS, ids=[f"{a}-{b}" for a, b in TESTS])
def test_joint_tests_match(data, sample, name):
    """Joint nullity of the effects and of the placebos, equality of the effects: the
    reference's statistics up to the engine's ``(G - 1) / G``; p-values from the same
    chi-square laws."""
    from scipy.stats import chi2, f

    case = FIXTURE[sample]["cases"][name]
    res = _fit(data, sample, case["args"])
    tests = res.joint_tests.set_index("test")
    assert list(tests.index) == ["effects", "placebos", "effects_equal"]
    G = res.n_groups
    L, P = len(case["effects"]), len(case["placebos"])
    assert tests["df1"].tolist() == [L, P + bool(case["args"].get("trends_lin")), L - 1]
    rtol = 2e-4 if sample == "nonbinary" else 1e-10
    theta = res._inference.estimate.theta
    for test, theirs in case["wald_statistics"].items():
        row = tests.loc[test]
        wald = row["statistic"] * row["df1"]
        if "controls" in case["args"]:  # the documented covariate differences
            assert wald * G / (G - 1) == pytest.approx(theirs, rel=0.05)
            continue
        if "influence" in case:  # cells: the engine's variance of their centred values
            keys = ([f"Uvar_effect_{l}" for l in range(1, L + 1)]
                    + [f"Uvar_placebo_{l}" for l in range(1, P + 1)])
            U = np.column_stack([case["influence"][k] for k in keys])
            U = U - U.mean(axis=0)
            V = (U.T @ U) / (G - 1) / G
            est = np.r_[theta[:L], theta[L:L + P]]
            sel = {"effects": np.eye(L + P)[:, :L], "placebos": np.eye(L + P)[:, L:],
                   "effects_equal": (np.eye(L + P)[:, :L] - 1.0 / L * np.outer(
                       np.r_[np.ones(L), np.zeros(P)], np.ones(L)))[:, :L - 1]}[test]
            b = sel.T @ est
            mine = b @ np.linalg.pinv(sel.T @ V @ sel) @ b
            assert wald == pytest.approx(mine, rel=1e-8), test
            continue
        if test == "placebos" and row["df1"] > P:
            # trends_lin: the reference estimates one placebo fewer (docs): ours over its P
            mapping = np.eye(theta.size)[:, L:L + P]
            b = mapping.T @ theta
            wald = b @ np.linalg.pinv(res._inference.variance(mapping).vcov) @ b
            assert wald * G / (G - 1) == pytest.approx(theirs, rel=rtol), test
            continue
        assert wald * G / (G - 1) == pytest.approx(theirs, rel=rtol), test
        # weighted: a survey design's (weights only) df G - 1, so an F test
        p = (chi2.sf(wald, row["df1"]) if "weight" not in case["args"] else
             f.sf(row["statistic"], row["df1"], G - 1))
        assert row["df2"] == (None if "weight" not in case["args"] else G - 1)
        assert row["p_value"] == pytest.approx(p, rel=1e-12)


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


def _their_scale(monkeypatch):
    """The reference's scale of the coefficients' influence: the regression weight of all
    first-period levels over that of the group's own level."""
    original = DCDHProblem._coefficients

    def scaled(self, w):
        coef, influence = original(self, w)
        _, _, sample = self._first_differences(w)
        cells = np.where(sample, w[:, None], 0.0)
        for b in range(self.levels.size):
            own = self.level == b
            influence[own] *= cells.sum() / cells[own].sum()
        return coef, influence

    monkeypatch.setattr(DCDHProblem, "_coefficients", scaled)


@pytest.mark.parametrize("sample,name", INFLUENCE, ids=[f"{a}-{b}" for a, b in INFLUENCE])
def test_covariate_and_cell_influence_values(data, sample, name, monkeypatch):
    """Ours equal theirs up to the reference's shifts (constant for effects and the ATE,
    constant within first-period level for placebos) once their scale is put back; our
    standard errors are the engine's on the centred values."""
    case = FIXTURE[sample]["cases"][name]
    args, theirs = case["args"], case["influence"]
    plain = _fit(data, sample, args)
    if "controls" in args:
        _their_scale(monkeypatch)
    res = _fit(data, sample, args)
    psi, G = res._inference.estimate.psi, res.n_groups
    level = (data[(data["sample"] == sample) & (data["time"] == 1)]
             .set_index("group").loc[theirs["group"], "treatment"].to_numpy())
    L, P = len(case["effects"]), len(case["placebos"])
    columns = [(f"Uvar_effect_{l}", l - 1, False) for l in range(1, L + 1)]
    columns += [(f"Uvar_placebo_{l}", L + l - 1, True) for l in range(1, P + 1)]
    if "Uvar_ate" in theirs:
        columns.append(("Uvar_ate", 2 * len(res.event_study_effects), False))
    scale = np.sqrt(G / (G - 1))
    for key, j, by_level in columns:
        values = np.asarray(theirs[key])
        gap = G * psi[:, j] - values
        for lev in (np.unique(level) if by_level else [None]):
            at = slice(None) if lev is None else level == lev
            assert np.ptp(gap[at]) < 1e-10, key
        if "controls" not in args:  # the engine's SE on their centred values
            se = scale * np.sqrt(((values - values.mean()) ** 2).sum()) / G
            ours = plain._inference.variance().se[j]
            assert ours == pytest.approx(se, rel=1e-10), key
