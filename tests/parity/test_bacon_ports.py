"""BaconDecomposition against pybacondecomp 0.1.0 (Python port of Stata bacondecomp).

Fixture and script: tests/parity/ports/bacon_pybacondecomp.py (its docstring and the
fixture's ``meta`` describe pybacondecomp's labels and its always-treated trap).
"""

import json
from pathlib import Path

import numpy as np
import pytest

import diff_diff as dd
from tests.parity.fixture_data import staggered_case_panel

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "bacon_pybacondecomp.json").read_text())
CASES = FIXTURE["cases"]
# pyfixest's demeaning is exact after one sweep on balanced (sub)panels, so the only
# differences are floating-point rounding (observed max ~1e-15).
TOL = 1e-10

# ddetail=True type names -> ours (same treated/control orientation)
DETAIL_TYPES = {"Never vs timing": "treated_vs_never", "Early vs Late": "earlier_vs_later",
                "Late vs Early": "later_vs_earlier"}


def _panel(name):
    return staggered_case_panel(CASES[name], FIXTURE["meta"]["mpdta_md5"])


def _fit(name):
    return dd.BaconDecomposition().fit(_panel(name), outcome="y", unit="unit", time="time",
                                       first_treat="first_treat")


def _ours(res):
    """{(type, treated, control): (estimate, weight)} with pybacondecomp's group labels."""
    always = set(res.comparisons.loc[res.comparisons["comparison_type"]
                                     == "later_vs_always_treated", "control_group"])

    def label(g):
        return "Never" if g == 0 else "Always" if g in always else str(int(g))

    return {(r.comparison_type, label(r.treated_group), label(r.control_group)):
            (r.estimate, r.weight) for r in res.comparisons.itertuples(index=False)}


def _pooled(ours):
    """Our rows in pybacondecomp's ddetail=False form: one row per unordered pair."""
    out = {}
    for (kind, tr, co), (b, w) in ours.items():
        if kind == "treated_vs_never":
            key = ("Never vs timing", tr, co)
        elif kind == "later_vs_always_treated":
            key = ("Always vs timing", tr, co)
        elif kind == "earlier_vs_later":
            key = ("Timing groups", tr, co)  # treated = earlier cohort
        else:  # later_vs_earlier: treated later, control earlier
            key = ("Timing groups", co, tr)
        sb, sw = out.get(key, (0.0, 0.0))
        out[key] = (sb + w * b, sw + w)
    return {k: (sb / sw, sw) for k, (sb, sw) in out.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_twfe_coefficient(name):
    res = _fit(name)
    for branch in ("ddetail", "basic"):
        assert res.twfe_estimate == pytest.approx(CASES[name][branch]["twfe"], abs=TOL)
    assert res.n_obs == CASES[name]["basic"]["n_obs"]
    assert abs(res.decomposition_error) < TOL


@pytest.mark.parametrize("name", sorted(n for n in CASES if not CASES[n]["ddetail"]["trap"]))
def test_every_2x2_ddetail(name):
    ours = _ours(_fit(name))
    ref = CASES[name]["ddetail"]["comparisons"]
    assert len(ref) == len(ours)
    for row in ref:
        b, w = ours[(DETAIL_TYPES[row["type"]], row["treated"], row["control"])]
        assert b == pytest.approx(row["estimate"], abs=TOL), row
        assert w == pytest.approx(row["weight"], abs=TOL), row


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_pair_pooled(name):
    """ddetail=False (also correct with always-treated units): pooled directions."""
    ours = _pooled(_ours(_fit(name)))
    ref = CASES[name]["basic"]["comparisons"]
    assert len(ref) == len(ours)
    for row in ref:
        b, w = ours[(row["type"], row["treated"], row["control"])]
        assert b == pytest.approx(row["estimate"], abs=TOL), row
        assert w == pytest.approx(row["weight"], abs=TOL), row


def test_always_treated_trap_documented():
    """pybacondecomp's ddetail output with always-treated units: the comparisons against
    them are dropped and the rest renormalised (its weights = ours / (1 - always weight)),
    so its rows no longer add up to the TWFE coefficient. Estimates are still right."""
    name = "sim_always_treated"
    case = CASES[name]["ddetail"]
    assert case["trap"]
    res = _fit(name)
    ours = _ours(res)
    w_always = sum(w for (kind, _, _), (_, w) in ours.items()
                   if kind == "later_vs_always_treated")
    assert w_always > 0.2
    assert len(case["comparisons"]) == len(ours) - res.n_timing_groups
    for row in case["comparisons"]:
        b, w = ours[(DETAIL_TYPES[row["type"]], row["treated"], row["control"])]
        assert b == pytest.approx(row["estimate"], abs=TOL), row
        assert w / (1 - w_always) == pytest.approx(row["weight"], abs=TOL), row
    assert abs(case["implied_twfe"] - res.twfe_estimate) > 0.1
    assert np.isclose(case["twfe"], res.twfe_estimate, atol=TOL, rtol=0)
