"""The saturated cell regression solved on the cells equals the full-design WLS."""

import numpy as np
import pytest

from diff_diff.linalg import cells as cells_module
from diff_diff.linalg.cells import _distinct_rows, grid_cell_fit
from diff_diff.linalg.wls import RankDeficientError, wls


def _panel(n_units=240, n_t=8, seed=0):
    rng = np.random.default_rng(seed)
    unit, t = np.repeat(np.arange(n_units), n_t), np.tile(np.arange(n_t), n_units)
    cohorts = np.array([3, 5, 6])
    g = rng.choice([0, 3, 5, 6], n_units)[unit]
    raw = np.where((g > 0) & (t != g - 1), np.searchsorted(cohorts, g) * n_t + t, -1)
    codes, inverse = np.unique(raw[raw >= 0], return_inverse=True)
    cells = np.full(raw.size, -1)
    cells[raw >= 0] = inverse
    y = rng.normal(size=unit.size) + 0.3 * (cells >= 0) + 0.1 * unit % 7
    w = rng.uniform(0.5, 2.0, n_units)[unit]
    return y, cells, codes.size, unit, t, w, rng


def _design(cells, k):
    x = np.zeros((cells.size, k))
    x[np.flatnonzero(cells >= 0), cells[cells >= 0]] = 1.0
    return x


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_cell_fit_equals_the_full_design(shuffle, weighted, monkeypatch):
    y, cells, k, unit, t, w, rng = _panel()
    w = w if weighted else None
    if shuffle:
        order = rng.permutation(y.size)
        y, cells, unit, t = y[order], cells[order], unit[order], t[order]
        w = None if w is None else w[order]
    names = [f"c{j}" for j in range(k)]
    ref = wls(y, _design(cells, k), names, w, [unit, t])
    fast = grid_cell_fit(y, cells, k, unit, t, w, names)
    np.testing.assert_allclose(fast.coef, ref.coef, atol=1e-12)
    np.testing.assert_allclose(fast.resid, ref.resid, atol=1e-12)
    np.testing.assert_allclose(fast.bread_inv, ref.bread_inv, atol=1e-12)
    np.testing.assert_allclose(fast.x, ref.x, atol=1e-12)
    assert (fast.df_absorbed, fast.n_obs, fast.rank) == (ref.df_absorbed, ref.n_obs, ref.rank)
    assert fast.r_squared == pytest.approx(ref.r_squared, abs=1e-12)
    n_units = int(unit.max()) + 1
    for cluster, n_clusters in ((unit, n_units), (unit // 3, (n_units + 2) // 3)):
        np.testing.assert_allclose(fast.cluster_influence(cluster, n_clusters),
                                   ref.cluster_influence(cluster, n_clusters), atol=1e-12)
    # clusters too many for a cluster x pattern x period table: summed in row chunks
    monkeypatch.setattr(cells_module, "PAIR_TABLE_SLACK", -10 * y.size)
    np.testing.assert_allclose(fast.cluster_influence(unit // 3, (n_units + 2) // 3),
                               ref.cluster_influence(unit // 3, (n_units + 2) // 3),
                               atol=1e-12)


def test_cell_fit_declines_what_is_not_a_balanced_grid():
    y, cells, k, unit, t, w, _ = _panel()
    names = [f"c{j}" for j in range(k)]
    keep = np.arange(y.size) != 5  # one row missing
    assert grid_cell_fit(y[keep], cells[keep], k, unit[keep], t[keep], w[keep], names) is None
    varying = w * np.where(t == 2, 1.5, 1.0)  # weights not constant within unit
    assert grid_cell_fit(y, cells, k, unit, t, varying, names) is None


def test_collinear_cells_are_dropped_or_refused_as_wls_does():
    y, cells, k, unit, t, w, _ = _panel()
    cells = np.where(cells == 1, 0, cells)  # cell 1 merged into 0: column 1 empty
    names = [f"c{j}" for j in range(k)]
    with pytest.warns(UserWarning, match=r"\['c1'\] are collinear"):
        fast = grid_cell_fit(y, cells, k, unit, t, w, names)
    with pytest.warns(UserWarning):
        ref = wls(y, _design(cells, k), names, w, [unit, t])
    np.testing.assert_array_equal(fast.kept, ref.kept)
    np.testing.assert_allclose(fast.coef[fast.kept], ref.coef[ref.kept], atol=1e-12)
    with pytest.raises(RankDeficientError):
        grid_cell_fit(y, cells, k, unit, t, w, names, rank_deficient_action="error")


def test_distinct_rows_fall_back_when_fingerprints_collide(monkeypatch):
    table = np.array([[1, 2], [2, 1], [1, 2], [3, 0]])
    rows, inverse = _distinct_rows(table)
    np.testing.assert_array_equal(rows[inverse], table)
    # every fingerprint equal: the check finds the collision and sorts instead
    monkeypatch.setattr(np.random, "default_rng",
                        lambda seed: type("R", (), {"integers": lambda *a: np.zeros(2, int)})())
    rows, inverse = _distinct_rows(table)
    np.testing.assert_array_equal(rows[inverse], table)
    assert len(rows) == 3


@pytest.mark.parametrize("psu_within_unit", [True, False])
def test_survey_variance_from_unit_totals_equals_the_row_level_one(psu_within_unit,
                                                                   monkeypatch):
    """Under a Taylor design whose PSUs are constant within unit, a cell-solved fit hands
    the engine one influence row per unit; PSUs that vary within units use the rows."""
    import warnings

    import diff_diff as dd
    import diff_diff.inference.regression as reg
    from diff_diff.datasets import example_panel

    panel = example_panel(n_units=120)
    if not psu_within_unit:
        panel = panel.assign(psu=panel["psu"] * 2 + panel["time"] % 2)
    design = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
    kw = dict(outcome="y", unit="unit", time="time", first_treat="first_treat")
    taken = []
    original = reg._unit_level

    def spy(fit, design):
        out = original(fit, design)
        taken.append(not isinstance(out[0], reg._LazyInfluence))
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        monkeypatch.setattr(reg, "_unit_level", spy)
        fast = [dd.SunAbraham().fit(panel, survey_design=design, **kw),
                dd.WooldridgeDiD().fit(panel, survey_design=design, **kw)]
        monkeypatch.setattr(reg, "_unit_level", lambda fit, d: (reg._LazyInfluence(fit), d))
        rows = [dd.SunAbraham().fit(panel, survey_design=design, **kw),
                dd.WooldridgeDiD().fit(panel, survey_design=design, **kw)]
    assert taken == [psu_within_unit] * 2
    for a, b in zip(fast, rows):
        assert a.se == pytest.approx(b.se, rel=1e-12)
        np.testing.assert_allclose(a.event_study_effects["se"], b.event_study_effects["se"],
                                   rtol=1e-12)


def test_small_cell_fit_equals_the_row_fit():
    """A stacked event study's shape: design and absorbed effects functions of
    (treated, event time); unequal weights, clusters that cut across cells."""
    from diff_diff.linalg.cells import small_cell_fit

    rng = np.random.default_rng(1)
    n, n_e, events = 20_000, 7, [0, 1, 3, 4, 5, 6]  # event code 2 is the reference
    treat, event = rng.integers(0, 2, n), rng.integers(0, n_e, n)
    cell = treat * n_e + event
    cell_design = np.zeros((2 * n_e, len(events)))
    for j, e in enumerate(events):
        cell_design[n_e + e, j] = 1.0
    y = rng.normal(size=n) + 0.5 * treat * (event > 2)
    w = rng.uniform(0.2, 3.0, n)
    names = [f"e{e}" for e in events]
    ref = wls(y, cell_design[cell], names, w, [treat, event])
    fast = small_cell_fit(y, cell, cell_design, [np.repeat([0, 1], n_e),
                                                 np.tile(np.arange(n_e), 2)], w, names)
    np.testing.assert_allclose(fast.coef, ref.coef, atol=1e-12)
    np.testing.assert_allclose(fast.resid, ref.resid, atol=1e-12)
    np.testing.assert_allclose(fast.bread_inv, ref.bread_inv, atol=1e-14)
    np.testing.assert_allclose(fast.x, ref.x, atol=1e-12)
    assert (fast.df_absorbed, fast.n_obs) == (ref.df_absorbed, ref.n_obs)
    cluster = rng.integers(0, 400, n)
    np.testing.assert_allclose(fast.cluster_influence(cluster, 400),
                               ref.cluster_influence(cluster, 400), atol=1e-12)
