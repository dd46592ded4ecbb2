"""Boundary local-linear fit with robust bias correction and its MSE-DPI bandwidth.

Parity with nprobust-pkg 1.0.0 ``lprobust`` (fixture and script:
tests/parity/ports/local_poly_nprobust.py), then invariants of the fit.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diff_diff.linalg.local_poly import (local_linear_boundary, mse_dpi_bandwidth,
                                         nn_residuals)
from tests.parity.ports.local_poly_nprobust import CASES, case_data, data

FIXTURE_PATH = Path(__file__).parents[1] / "parity" / "fixtures" / "local_poly_nprobust.json"
FIXTURE = json.loads(FIXTURE_PATH.read_text())["cases"]
FIELDS = {"tau.us": "mu_us", "tau.bc": "mu_bc", "se.us": "se_us", "se.rb": "se_rb"}


def _fit(spec, **kw):
    x, y, c, w = case_data(spec)
    return local_linear_boundary(x, y, c, weights=w, kernel=spec["kernel"],
                                 h=spec.get("h"), b=spec.get("b"),
                                 vce=spec.get("vce", "nn"), **kw)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_nprobust(name):
    ref = FIXTURE[name]
    fit = _fit(CASES[name])
    np.testing.assert_allclose([fit.h, fit.b], [ref["h"], ref["b"]], rtol=1e-9, atol=0)
    assert fit.n_window == ref["N"]
    for theirs, ours in FIELDS.items():
        np.testing.assert_allclose(getattr(fit, ours), ref[theirs], rtol=1e-9, atol=1e-10,
                                   err_msg=theirs)


def test_every_case_has_a_reference():
    assert set(FIXTURE) == set(CASES)


def test_selector_matches_fit_and_reports_stages():
    x, y, _ = data(500)
    h, b, diag = mse_dpi_bandwidth(x, y, 0.0)
    fit = local_linear_boundary(x, y, 0.0)
    assert h == fit.h == fit.diagnostics["h_selected"]
    assert b == fit.diagnostics["b_selected"]
    assert diag["bw_min"] <= h <= diag["bw_max"]
    assert set(diag["h_stage"]) == {"V", "B1", "B2", "R"}


# ---- nearest-neighbour residuals -----------------------------------------------------

def _nn_loop(x, y, nnmatch):
    """The tie-block rule of the docstring, one observation at a time."""
    n = x.size
    out = np.empty(n)
    for i in range(n):
        nbrs = [j for j in range(n) if x[j] == x[i] and j != i]
        lo = min(j for j in range(n) if x[j] == x[i]) - 1
        hi = max(j for j in range(n) if x[j] == x[i]) + 1
        while len(nbrs) < min(nnmatch, n - 1):
            dl = x[i] - x[lo] if lo >= 0 else np.inf
            dr = x[hi] - x[i] if hi < n else np.inf
            take_l, take_r = dl <= dr, dr <= dl
            if take_l:
                block = [j for j in range(n) if x[j] == x[lo]]
                nbrs += block
                lo = min(block) - 1
            if take_r:
                block = [j for j in range(n) if x[j] == x[hi]]
                nbrs += block
                hi = max(block) + 1
        k = len(nbrs)
        out[i] = np.sqrt(k / (k + 1)) * (y[i] - y[nbrs].mean())
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=2, max_size=40), st.integers(1, 5),
       st.integers(0, 2**31 - 1))
def test_nn_residuals_follow_the_tie_block_rule(xs, nnmatch, seed):
    x = np.sort(np.asarray(xs, dtype=float) / 4)
    y = np.random.default_rng(seed).normal(size=x.size)
    np.testing.assert_allclose(nn_residuals(x, y, nnmatch), _nn_loop(x, y, nnmatch),
                               rtol=1e-12, atol=1e-12)


# ---- invariants ------------------------------------------------------------------------

def _random(n, seed, ties=False):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n)
    if ties:
        x = np.round(x, 2)
    y = np.sin(3 * x) + x + rng.normal(scale=0.5, size=n)
    return x, y, rng.uniform(0.5, 4, n)


def _same(a, b, rtol=1e-8):
    for f in ("h", "b", "mu_us", "mu_bc", "se_us", "se_rb"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=rtol, atol=1e-12,
                                   err_msg=f)
    assert a.n_window == b.n_window


@settings(max_examples=25, deadline=None)
@given(st.integers(40, 400), st.integers(0, 2**31 - 1), st.booleans(),
       st.sampled_from(["epa", "tri", "uni"]), st.floats(1e-3, 1e3))
def test_scale_and_permutation_invariance(n, seed, ties, kernel, scale):
    x, y, w = _random(n, seed, ties)
    base = local_linear_boundary(x, y, 0.0, weights=w, kernel=kernel)
    scaled = local_linear_boundary(x, y, 0.0, weights=w * scale, kernel=kernel)
    _same(base, scaled)
    np.testing.assert_allclose(scaled.influence, base.influence, rtol=1e-7, atol=1e-12)
    perm = np.random.default_rng(seed + 1).permutation(n)
    moved = local_linear_boundary(x[perm], y[perm], 0.0, weights=w[perm], kernel=kernel)
    _same(base, moved)
    np.testing.assert_allclose(moved.influence, base.influence[perm], rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("vce", ["nn", "hc0", "hc1", "hc2", "hc3"])
@pytest.mark.parametrize("weighted", [False, True])
def test_influence_squares_sum_to_robust_variance(vce, weighted):
    x, y, w = _random(300, 3, ties=True)
    fit = local_linear_boundary(x, y, 0.0, weights=w if weighted else None, vce=vce)
    np.testing.assert_allclose(np.sum(fit.influence ** 2), fit.se_rb ** 2, rtol=1e-12)
    assert np.count_nonzero(fit.influence) <= fit.n_window
    assert np.all(fit.influence[np.abs(x) >= fit.h] == 0)


def test_shifting_x_and_c_together_changes_nothing():
    x, y, w = _random(500, 4)
    base = local_linear_boundary(x, y, 0.0, weights=w)
    moved = local_linear_boundary(x + 0.375, y, 0.375, weights=w)
    _same(base, moved, rtol=1e-7)
    np.testing.assert_allclose(moved.influence, base.influence, rtol=1e-6, atol=1e-12)


def test_zero_weight_rows_are_dropped():
    x, y, w = _random(400, 5)
    w[::7] = 0.0
    full = local_linear_boundary(x, y, 0.0, weights=w)
    keep = w > 0
    sub = local_linear_boundary(x[keep], y[keep], 0.0, weights=w[keep])
    _same(full, sub, rtol=1e-12)
    assert np.all(full.influence[~keep] == 0)
    np.testing.assert_array_equal(full.influence[keep], sub.influence)


def test_fixed_h_defaults_b_to_h_over_rho_and_floors_at_bwcheck():
    x, y, _ = _random(300, 6)
    fit = local_linear_boundary(x, y, 0.0, h=0.4, rho=0.5)
    assert (fit.h, fit.b) == (0.4, 0.8)
    tiny = local_linear_boundary(x, y, 0.0, h=1e-6)
    assert tiny.h == tiny.b == np.sort(np.abs(x))[20]
    assert tiny.n_window in (20, 21)  # strict > 0: the 21st point sits on the epa edge


def test_small_sample_reduces_bwcheck_with_a_warning():
    x, y, _ = _random(15, 7)
    with pytest.warns(UserWarning, match="bwcheck reduced"):
        fit = local_linear_boundary(x, y, 0.0, kernel="uni")
    assert fit.n_window <= 15


@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel="gau"), "kernel must be one of"),
    (dict(vce="hc4"), "vce must be one of"),
    (dict(h=-1.0), "h must be a positive number"),
    (dict(rho=0.0), "rho must be positive"),
    (dict(nnmatch=0), "nnmatch must be a positive integer"),
])
def test_bad_options(kwargs, message):
    x, y, _ = _random(100, 8)
    with pytest.raises(ValueError, match=message):
        local_linear_boundary(x, y, 0.0, **kwargs)


def test_bad_data():
    x, y, w = _random(100, 9)
    with pytest.raises(ValueError, match="non-negative"):
        local_linear_boundary(x, y, weights=np.where(np.arange(100) == 3, -1.0, w))
    with pytest.raises(ValueError, match="all weights are zero"):
        local_linear_boundary(x, y, weights=np.zeros(100))
    with pytest.raises(ValueError, match="NaN"):
        local_linear_boundary(np.where(np.arange(100) == 3, np.nan, x), y)
    with pytest.raises(ValueError, match="equal length"):
        local_linear_boundary(x, y[:-1])
    with pytest.raises(ValueError, match="length of x"):
        local_linear_boundary(x, y, weights=w[:-1])


def test_rank_deficient_window():
    x, y, _ = _random(100, 10)
    x[:40] = 0.0  # a mass point at c: every window holds a single x value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match="too few distinct x values"):
            local_linear_boundary(x, y, 0.0, h=0.001)
