"""Pre-tests of heterogeneous adoption designs: statistics by hand, size and power."""

import numpy as np
import pytest

from diff_diff import qug_test, stute_test, yatchew_test


def _ols_resid(dose, y, order):
    x = np.vander(dose, order + 1, increasing=True)
    return y - x @ np.linalg.lstsq(x, y, rcond=None)[0]


def test_stute_statistic_by_hand_with_ties():
    rng = np.random.default_rng(0)
    dose = np.round(rng.uniform(size=60), 1)  # many ties
    y = 1 + dose + rng.normal(size=60)
    res = stute_test(dose, y, order=1, n_bootstrap=99, seed=1)
    e = _ols_resid(dose, y, 1)
    c = np.array([e[dose <= d].sum() for d in dose])
    assert res["statistic"] == pytest.approx(np.sum(c**2) / dose.size**2, rel=1e-12)
    again = stute_test(dose, y, order=1, n_bootstrap=99, seed=1)
    assert again["p_value"] == res["p_value"]
    perm = rng.permutation(60)
    assert stute_test(dose[perm], y[perm], n_bootstrap=99, seed=1)["statistic"] == \
        pytest.approx(res["statistic"], rel=1e-12)


def test_yatchew_statistic_by_hand():
    rng = np.random.default_rng(1)
    dose = rng.uniform(size=80)
    y = dose + rng.normal(size=80) * (0.5 + dose)
    res = yatchew_test(dose, y, order=1)
    idx = np.lexsort((y, dose))
    ds, ys = dose[idx], y[idx]
    e = _ols_resid(ds, ys, 1)
    s_lin, s_diff = np.var(e, ddof=1), 0.5 * np.mean(np.diff(ys) ** 2)
    t = np.sqrt(80) * (s_lin - s_diff) / np.sqrt(np.mean((e[1:] * e[:-1]) ** 2))
    assert res["statistic"] == pytest.approx(t, rel=1e-12)
    homo = yatchew_test(dose, y, order=0, het_robust=False)
    e0 = ys - ys.mean()
    assert homo["statistic"] == pytest.approx(np.sqrt(80) * (np.var(e0, ddof=1) / s_diff - 1),
                                              rel=1e-12)


def test_size_and_power():
    rng = np.random.default_rng(2)
    reject_null, reject_alt = [], []
    for _ in range(150):
        dose = rng.uniform(size=150)
        noise = rng.normal(size=150)
        reject_null.append(stute_test(dose, 1 + dose + noise, n_bootstrap=99,
                                      seed=rng)["p_value"] < 0.05)
        reject_alt.append(stute_test(dose, 1 + 4 * (dose - 0.5) ** 2 + noise, n_bootstrap=99,
                                     seed=rng)["p_value"] < 0.05)
    assert 0.0 <= np.mean(reject_null) <= 0.11
    assert np.mean(reject_alt) > 0.5
    big = rng.uniform(size=20_000)
    assert yatchew_test(big, np.sin(6 * big) + rng.normal(size=20_000))["p_value"] < 0.01
    assert yatchew_test(big, big + rng.normal(size=20_000))["p_value"] > 0.001


def test_errors_and_qug():
    with pytest.raises(ValueError, match="same length"):
        stute_test([0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="order must be"):
        yatchew_test([0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0], order=2)
    with pytest.raises(ValueError, match="all doses are equal"):
        yatchew_test([0.5] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="n_bootstrap"):
        stute_test([0.1, 0.2, 0.3, 0.4], [1.0, 2.0, 3.0, 4.0], n_bootstrap=10)
    assert qug_test([0.0, 0.2, 0.5]) == pytest.approx((2 / 3, 0.6))
