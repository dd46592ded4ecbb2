"""The one-pass projection for balanced unit x period panels equals the alternating
projections it replaces, and is used only where it is exact."""

import numpy as np
import pytest

from diff_diff.linalg import wls


def _panel(n_a=40, n_b=6, seed=0):
    rng = np.random.default_rng(seed)
    a, b = np.repeat(np.arange(n_a), n_b), np.tile(np.arange(n_b), n_a)
    return a, b, rng.normal(size=(a.size, 3)), rng.uniform(0.5, 2.0, n_a)[a], rng


def _iterative(values, absorb, weights, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(wls, "two_way_grid", lambda *args: None)
        return wls.demean(values, absorb, weights), wls.absorbed_parameters(absorb, weights)


@pytest.mark.parametrize("shuffle", [False, True])
def test_grid_projection_equals_alternating_projections(shuffle, monkeypatch):
    a, b, x, w, rng = _panel()
    order = rng.permutation(a.size) if shuffle else np.arange(a.size)
    a, b, x, w = a[order], b[order], x[order], w[order]
    grid = wls.two_way_grid([a, b], w)
    assert grid is not None and grid.ordered == (not shuffle)
    slow, slow_k = _iterative(x, [a, b], w, monkeypatch)
    np.testing.assert_allclose(wls.demean(x, [a, b], w), slow, atol=1e-12)
    assert wls.absorbed_parameters([a, b], w) == slow_k == 40 + 6 - 1


def test_grid_is_refused_where_it_would_not_be_exact():
    a, b, x, w, rng = _panel()
    assert wls.two_way_grid([a, b], rng.uniform(size=a.size)) is None  # varies within unit
    assert wls.two_way_grid([a[1:], b[1:]], w[1:]) is None  # a missing cell
    assert wls.two_way_grid([a, b], np.where(a == 3, 0.0, w)) is None  # zero weights
    duplicated = b.copy()
    duplicated[1] = duplicated[0]
    assert wls.two_way_grid([a, duplicated], w) is None  # a cell twice, another empty
    assert wls.two_way_grid([a], w) is None and wls.two_way_grid([a, b, b], w) is None


def test_few_joint_cells_are_projected_exactly_on_the_cells(monkeypatch):
    """Three absorbed dimensions with 2 x 7 x 3 levels over 5,000 rows (a stacked event
    study's shape), unbalanced, with zero weights: the cell projection equals the dense
    dummy-variable regression and the alternating projections."""
    rng = np.random.default_rng(3)
    n = 5000
    absorb = [rng.integers(0, 2, n), rng.integers(0, 7, n), rng.integers(0, 3, n)]
    values = rng.normal(size=(n, 2)) + absorb[1][:, None]
    weights = rng.uniform(0.5, 2.0, n) * (rng.random(n) > 0.05)
    fast = wls.demean(values, absorb, weights)
    dummies = np.column_stack([(c == k).astype(float) for c in absorb
                               for k in range(int(c.max()) + 1)])
    root = np.sqrt(weights)[:, None]
    coef = np.linalg.lstsq(dummies * root, values * root, rcond=None)[0]
    np.testing.assert_allclose(fast, values - dummies @ coef, atol=1e-12)
    with monkeypatch.context() as m:
        m.setattr(wls, "_fitted_by_cells", lambda *args: None)
        slow = wls.demean(values, absorb, weights)
    np.testing.assert_allclose(fast, slow, atol=1e-9)
