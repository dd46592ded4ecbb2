"""ImputationDiD against diff-diff 3.13.0 (R didimputation's numbers) and pyfixest did2s.

Fixture and script: tests/parity/ports/imputation_ports.py.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diff_diff import ImputationDiD, SurveyDesign
from tests.parity.ports.imputation_ports import ARGS, SCENARIOS, frame

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "imputation_ports.json").read_text())


def _fit(name, data=None):
    unbalanced, covariates, settings, design = SCENARIOS[name]
    df = frame(unbalanced) if data is None else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the time-invariant part of x is absorbed, etc.
        res = ImputationDiD(**settings).fit(
            df, covariates=covariates, survey_design=SurveyDesign(**design) if design else None,
            **ARGS)
    return df, res


def _reference_se(name, df, res):
    """The standard errors in 3.13's convention, from our influence values.

    With a survey design 3.13 uses Taylor linearization as we do, so our own
    standard errors compare directly. Otherwise 3.13 (like R didimputation)
    reports BJS Theorem 3 as written, ``sqrt(sum_c (sum_{i in c} psi_i)^2)``
    over clusters c (units by default): no centring and no G/(G-1) factor,
    which our engine applies. Comparing that sum of our influence values tests
    them exactly.
    """
    _, _, settings, design = SCENARIOS[name]
    if design:
        table = pd.concat([res.to_dataframe("overall"), res.event_study_effects,
                           res.group_effects])
        return table["se"].to_numpy()
    psi = res.influence_functions
    units = np.sort(df["countyreal"].unique())
    cluster = settings.get("cluster")
    if cluster is not None:
        labels = df.drop_duplicates("countyreal").set_index("countyreal")[cluster]
        codes = pd.factorize(labels.loc[units].to_numpy())[0]
        psi = np.vstack([np.bincount(codes, weights=col) for col in psi.T]).T
    return np.sqrt((psi ** 2).sum(axis=0))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_matches_diff_diff_313(name):
    ref = FIXTURE["dd313"][name]
    df, res = _fit(name)
    se = dict(zip(_keys(res), _reference_se(name, df, res)))
    es = res.event_study_effects.set_index("event_time")
    assert sorted(map(int, ref["event_study"])) == sorted(es.index)
    for h, (effect, want) in ref["event_study"].items():
        assert es.loc[int(h), "estimate"] == pytest.approx(effect, abs=1e-9)
        assert se[("event_study", int(h))] == pytest.approx(want, rel=1e-8)
    if SCENARIOS[name][2].get("anticipation"):
        # 3.13 averages the anticipation periods into the overall and group effects;
        # ours are post-treatment (t >= g) only, like the event study's h >= 0.
        return
    assert res.att == pytest.approx(ref["overall"][0], abs=1e-9)
    assert se[("overall", None)] == pytest.approx(ref["overall"][1], rel=1e-8)
    grp = res.group_effects.set_index("group")
    assert sorted(map(int, ref["group"])) == sorted(grp.index)
    for g, (effect, want) in ref["group"].items():
        assert grp.loc[int(g), "estimate"] == pytest.approx(effect, abs=1e-9)
        assert se[("group", int(g))] == pytest.approx(want, rel=1e-8)


def _keys(res):
    index = res.vcov.index
    return [(kind, None if kind == "overall" else int(label))
            for kind, label in zip(index.get_level_values("kind"), index.get_level_values("label"))]


@pytest.mark.parametrize("name", ["balanced", "covariate"])
def test_points_match_pyfixest_did2s(name):
    ref = FIXTURE["pyfixest"][name]
    df = frame(False)
    df = df[df["first.treat"] != 2004].reset_index(drop=True)
    _, res = _fit(name, df)
    assert res.att == pytest.approx(ref["overall"], abs=1e-5)
    es = res.event_study_effects.set_index("event_time")
    for h, effect in ref["event_study"].items():
        assert es.loc[int(h), "estimate"] == pytest.approx(effect, abs=1e-5)
