"""twowayfeweights (feTR weights) against twowayfeweights 0.1.0 (Python port of Stata/R).

Fixture and script: tests/parity/ports/twfe_weights_twowayfeweights.py (its docstring and
the fixture's ``meta`` describe the package's conventions: its cell weights are
``(N_gt / N_1) w_gt``, and its sigma_fe carries a ``sqrt(M / (M - 1))`` DoF factor that
the paper and diff_diff do not).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from tests.parity.fixture_data import mpdta_checked

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures" / "twfe_weights_twowayfeweights.json").read_text())
CASES = FIXTURE["cases"]
# The package solves the FE regression exactly; ours alternates projections until the
# largest change is below 1e-11 of the column scale. Balanced panels converge after one
# sweep (observed max difference ~3e-15); the unbalanced switching panel needs many
# sweeps and its w_gt differ by up to ~4e-13 - both far inside 1e-10.
TOL = 1e-10


def _panel(name):
    case = CASES[name]
    if "data" in case:
        return pd.DataFrame(case["data"])
    df = mpdta_checked(FIXTURE["meta"]["mpdta_md5"])
    d = ((df["first.treat"] > 0) & (df["year"] >= df["first.treat"])).astype(int)
    return pd.DataFrame({"unit": df["countyreal"], "time": df["year"], "d": d, "y": df["lemp"]})


def _fit(name):
    return dd.twowayfeweights(_panel(name), outcome="y", unit="unit", time="time",
                              treatment="d")


def _cells(name, res):
    """Our cells joined to the package's, with its weight turned back into w_gt."""
    ref = pd.DataFrame(CASES[name]["result"]["weights"])
    cells = res.weights.merge(ref, on=["unit", "time"], how="outer", suffixes=("", "_ref"),
                              validate="1:1", indicator=True)
    assert (cells["_merge"] == "both").all(), "treated cells differ"
    share = cells["n"] / cells["n"].sum()  # N_gt / N_1
    cells["w_ref"] = cells["weight_ref"] / share
    return cells, share


@pytest.mark.parametrize("name", sorted(CASES))
def test_beta_counts_and_sums(name):
    res, ref = _fit(name), CASES[name]["result"]
    assert len(_panel(name)) == CASES[name]["n_obs"]
    assert res.beta_fe == pytest.approx(ref["beta"], abs=TOL)
    assert len(res.weights) == ref["tot_cells"] == ref["nr_weights"]  # no weight zeroed
    assert res.n_positive == ref["nr_plus"]
    assert res.n_negative == ref["nr_minus"]
    assert res.sum_positive == pytest.approx(ref["sum_plus"], abs=TOL)
    assert res.sum_negative == pytest.approx(ref["sum_minus"], abs=TOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_cell_weight(name):
    res = _fit(name)
    cells, share = _cells(name, res)
    # the package's per-cell weight is (N_gt / N_1) w_gt; ours is w_gt
    np.testing.assert_allclose(cells["weight"], cells["w_ref"], rtol=0, atol=TOL)
    np.testing.assert_allclose(share * cells["weight"], cells["weight_ref"], rtol=0, atol=TOL)
    assert CASES[name]["result"]["min_abs_weight"] > 1e-6  # far from its 1e-10 zeroing


@pytest.mark.parametrize("name", sorted(CASES))
def test_sigma_fe_up_to_dof_factor(name):
    """The package (Stata ``summarize [aw=]``, R TwoWayFEWeights 2.x) divides by an sd with
    a sqrt(M / (M - 1)) DoF factor, M = treated cells; the paper's Corollary 1 and ours
    use sd = sqrt(sum (N_gt/N_1)(w_gt - 1)^2). Everything else in sigma_fe agrees."""
    res, ref = _fit(name), CASES[name]["result"]
    m = ref["tot_cells"]
    assert res.sigma_fe == pytest.approx(ref["sensibility"] * np.sqrt(m / (m - 1)),
                                         rel=TOL, abs=0)
    assert abs(res.sigma_fe / ref["sensibility"] - 1) > 1e-4  # the convention gap is real


@pytest.mark.parametrize("name", sorted(CASES))
def test_sigma_fe_2(name):
    """Corollary 1's second measure (every effect of the opposite sign): no DoF factor in
    the package's value, so it agrees as is."""
    res, ref = _fit(name), CASES[name]["result"]
    assert ref["sensibility2"] is not None
    assert res.sigma_fe_2 == pytest.approx(ref["sensibility2"], rel=TOL, abs=0)
