"""de Chaisemartin-D'Haultfoeuille TWFE weights: the Theorem 1 identity checked exactly."""

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd


def panel(seed=5, n_units=80, n_t=7, always=True):
    rng = np.random.default_rng(seed)
    g = rng.choice([0, 2, 4, 6] + ([1] if always else []), size=n_units)
    unit, t = np.repeat(np.arange(n_units), n_t), np.tile(np.arange(1, n_t + 1), n_units)
    d = ((g[unit] > 0) & (t >= g[unit])).astype(int)
    delta = np.where(d == 1, rng.normal(1.0, 0.8, t.size), 0.0)  # heterogeneous effects
    y = rng.normal(size=n_units)[unit] + rng.normal(size=n_t)[t - 1] + delta
    return pd.DataFrame({"unit": unit, "time": t, "d": d, "y": y, "delta": delta,
                         "w": rng.uniform(0.5, 2.0, n_units)[unit]})


KW = dict(outcome="y", unit="unit", time="time", treatment="d")


@pytest.mark.parametrize("weights", [None, "w"])
def test_beta_fe_is_the_weighted_sum_of_cell_effects(weights):
    """Without noise y = a_i + l_t + D delta: beta_fe = sum (N/N1) w delta exactly."""
    df = panel()
    design = None if weights is None else dd.SurveyDesign(weights=weights)
    res = dd.twowayfeweights(df, survey_design=design, **KW)
    cells = res.weights.merge(df[["unit", "time", "delta"]], on=["unit", "time"])
    share = cells["n"] / cells["n"].sum()
    assert float(share @ cells["weight"]) == pytest.approx(1.0, abs=1e-10)
    assert float(share @ (cells["weight"] * cells["delta"])) == pytest.approx(res.beta_fe,
                                                                              abs=1e-9)
    with pytest.warns(UserWarning, match="staggered"):
        twfe = dd.TWFE().fit(df, survey_design=design, **KW)
    assert res.beta_fe == pytest.approx(twfe.att, abs=1e-9)
    assert res.sum_positive + res.sum_negative == pytest.approx(1.0, abs=1e-10)
    assert res.n_positive + res.n_negative == len(res.weights) == int((df["d"] == 1).sum())


def test_negative_weights_and_sigma_fe_by_hand():
    df = panel(always=False)
    res = dd.twowayfeweights(df, **KW)
    w = res.weights["weight"].to_numpy()
    assert res.n_negative > 0 and res.sum_negative < 0  # late cells of early cohorts
    assert res.fraction_negative == pytest.approx((w < 0).mean())
    assert res.sigma_fe == pytest.approx(abs(res.beta_fe) / np.sqrt(np.mean((w - 1) ** 2)))
    assert "sigma_fe" in res.summary() and "n_negative=" in repr(res)


@pytest.mark.parametrize("seed, flip", [(1, 1.0), (6, 1.0), (25, 1.0), (6, -1.0)])
def test_sigma_fe_2_is_the_smallest_sd_of_opposite_sign_effects(seed, flip):
    """Corollary 1 (ii) by direct minimisation: over cell effects Delta that all have the
    opposite sign of beta_fe and reproduce it (sum (N/N1) w Delta = beta_fe), the smallest
    sd sqrt(sum (N/N1) (Delta - ATT)^2) is sigma_fe_2."""
    from scipy.optimize import minimize

    df = panel(seed, n_units=14, n_t=6, always=False)
    res = dd.twowayfeweights(df.assign(y=flip * df["y"]), **KW)  # flip: a negative beta_fe
    w = res.weights["weight"].to_numpy()
    p = (res.weights["n"] / res.weights["n"].sum()).to_numpy()
    assert res.n_negative > 0 and np.sign(res.beta_fe) == flip
    sign = np.sign(res.beta_fe)

    def variance(delta):
        return p @ (delta - p @ delta) ** 2

    start = np.full(w.size, -sign * abs(res.beta_fe))  # opposite sign, scaled below
    start *= res.beta_fe / (p @ (w * start)) if p @ (w * start) * res.beta_fe > 0 else 1.0
    best = minimize(variance, start, method="SLSQP",
                    bounds=[(None, 0.0) if sign > 0 else (0.0, None)] * w.size,
                    constraints=[{"type": "eq", "fun": lambda x: p @ (w * x) - res.beta_fe}],
                    options={"ftol": 1e-14, "maxiter": 1000})
    assert best.success
    assert np.sqrt(best.fun) == pytest.approx(res.sigma_fe_2, rel=1e-5)
    assert res.sigma_fe_2 > res.sigma_fe  # flipping every sign is harder than a zero ATT


def test_sigma_fe_2_needs_a_negative_weight():
    """Two groups, two periods: every treated cell weighs 1, so no effects of the opposite
    sign can give beta_fe; sigma_fe_2 is NaN (R/Stata do not report it either)."""
    df = pd.DataFrame({"unit": np.repeat([1, 2, 3, 4], 2), "time": [1, 2] * 4,
                       "d": [0, 1, 0, 1, 0, 0, 0, 0], "y": [0.0, 2.0, 1.0, 2.5, 0.0, 0.5, 1, 1]})
    res = dd.twowayfeweights(df, **KW)
    assert res.n_negative == 0 and np.allclose(res.weights["weight"], 1.0)
    assert np.isnan(res.sigma_fe_2) and "sigma_fe_2" in res.summary()


def test_bad_input():
    df = panel()
    with pytest.raises(ValueError, match="binary"):
        dd.twowayfeweights(df.assign(d=df["d"] * 2), **KW)
    with pytest.raises(ValueError, match="no observation is treated"):
        dd.twowayfeweights(df.assign(d=0), **KW)
    with pytest.raises(ValueError, match="unit column 'unit' has 7 missing values"):
        dd.twowayfeweights(df.assign(unit=df["unit"].where(df.index >= 7)), **KW)
    with pytest.raises(ValueError, match="pweight"):
        dd.twowayfeweights(df, survey_design=dd.SurveyDesign(weights="w", weight_type="aweight"),
                           **KW)
