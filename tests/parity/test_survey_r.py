"""Parity with R ``survey`` 4.1.1: svymean, svytotal, svyby, deff, degf and vcov.

Fixtures come from ``tests/parity/r/survey_descriptives.R`` (Taylor
linearization designs) and ``tests/parity/r/survey_replicates.R`` (replicate
designs); see ``tests/parity/r/README.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diff_diff import SurveyDesign, survey_mean, survey_total
from diff_diff.inference import design_variance

FIXTURES = Path(__file__).parent / "fixtures"


def _load(name: str) -> dict:
    path = FIXTURES / name
    with path.open() as fh:
        return json.load(fh)


DESCRIPTIVES = _load("survey_descriptives.json")
REPLICATES = _load("survey_replicates.json")
RTOL = 1e-8


def _frame(fixture: dict, name: str) -> pd.DataFrame:
    columns = fixture["datasets"][name]
    return pd.DataFrame(
        {k: pd.array(v, dtype="Float64").astype(float) if any(x is None for x in v) else v
         for k, v in columns.items()}
    )


def _key(values) -> tuple:
    return tuple(str(v) for v in values)


def _check_case(fixture: dict, case: dict) -> None:
    data = _frame(fixture, case["dataset"])
    before = data.copy()
    design = SurveyDesign(**case["design"])
    func = survey_mean if case["statistic"] == "mean" else survey_total
    out = func(
        data,
        case["variables"],
        design,
        by=case["by"],
        deff=case["deff"],
        na_rm=case["na_rm"],
    )
    pd.testing.assert_frame_equal(data, before)
    result = case["result"]
    domains = result["domains"] or [[]]
    by = case["by"] or []
    expected_rows = len(domains) * len(case["variables"])
    assert len(out) == expected_rows, (len(out), expected_rows)
    lookup = {
        (_key([row[c] for c in by]), row["variable"]): row for row in out.to_dict("records")
    }
    for d, dom in enumerate(domains):
        for j, var in enumerate(case["variables"]):
            row = lookup[(_key(dom), var)]
            np.testing.assert_allclose(row["estimate"], result["estimate"][d][j], rtol=RTOL)
            np.testing.assert_allclose(row["se"], result["se"][d][j], rtol=RTOL)
            if case["deff"]:
                np.testing.assert_allclose(row["deff"], result["deff"][d][j], rtol=RTOL)
    resolved = design.resolve(data)
    assert resolved.df == result["df"]
    if result["vcov"] is not None and not case["na_rm"]:  # na_rm: 1 x 1, checked as se
        np.testing.assert_allclose(
            _engine_vcov(case, data, resolved), np.array(result["vcov"]), rtol=RTOL
        )


def _engine_vcov(case: dict, data: pd.DataFrame, design) -> np.ndarray:
    """The full covariance through the engine itself, from influence values."""
    y = data[case["variables"]].to_numpy(dtype=float)
    if case["statistic"] == "mean":
        w = design.weights
        est = w @ y / w.sum()
        psi = w[:, None] * (y - est) / w.sum()

        def refit_batch(rep_w):
            return (rep_w.T @ y) / rep_w.sum(axis=0)[:, None]
    else:
        w = design.raw_weights
        est = w @ y
        psi = w[:, None] * y
        scale = design.weight_scale

        def refit_batch(rep_w):
            return (rep_w / scale).T @ y
    if design.replicate is None:
        return design_variance(psi, design).vcov
    return design_variance(None, design, estimate=est, refit_batch=refit_batch).vcov


@pytest.mark.parametrize("case", DESCRIPTIVES["cases"], ids=lambda c: c["id"])
def test_taylor_designs_match_r(case):
    _check_case(DESCRIPTIVES, case)


@pytest.mark.parametrize("case", REPLICATES["cases"], ids=lambda c: c["id"])
def test_replicate_designs_match_r(case):
    _check_case(REPLICATES, case)


def test_fixtures_cover_every_rule_and_method():
    rules = {c["design"].get("lonely_psu", "remove") for c in DESCRIPTIVES["cases"]}
    assert rules == {"remove", "certainty", "adjust", "average"}
    methods = {c["design"]["replicate_method"] for c in REPLICATES["cases"]}
    assert methods == {"BRR", "Fay", "JK1", "JKn", "SDR", "bootstrap"}
    assert {c["design"]["mse"] for c in REPLICATES["cases"]} == {True, False}
    assert len(DESCRIPTIVES["cases"]) >= 150 and len(REPLICATES["cases"]) >= 150
