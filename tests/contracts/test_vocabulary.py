"""One vocabulary for inference settings across estimator families, 3.x spellings accepted."""

import numpy as np
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel
from diff_diff.estimators import _template  # noqa: F401  (the example estimator too)
from diff_diff.estimators import registered

SHARED = ("alpha", "cluster", "n_bootstrap", "bootstrap_weights", "seed")


@pytest.mark.parametrize("entry", registered(), ids=lambda e: e.name)
def test_every_estimator_speaks_the_shared_settings(entry):
    params = entry.cls().get_params()
    assert set(SHARED) <= set(params)
    if entry.capabilities.bootstrap == "multiplier":
        assert "cband" in params and params["n_bootstrap"] == 0
    if entry.capabilities.inference == "regression":
        assert "vcov_type" in params


@pytest.fixture(scope="module")
def panel():
    return example_panel(n_units=120)


CS_KW = dict(outcome="y", unit="unit", time="time", first_treat="first_treat")


def test_bootstrap_weights_none_is_rademacher_as_in_3x(panel):
    a = dd.CS(n_bootstrap=50, seed=3, bootstrap_weights=None).fit(panel, **CS_KW)
    b = dd.CS(n_bootstrap=50, seed=3, bootstrap_weights="rademacher").fit(panel, **CS_KW)
    assert a.se == b.se
    c = dd.CS(n_bootstrap=50, seed=3, bootstrap_weights="webb").fit(panel, **CS_KW)
    assert c.se != b.se


@pytest.mark.parametrize("cls", [dd.CS, dd.BJS])
def test_vcov_type_hc1_accepted_others_refused(cls, panel):
    assert cls(vcov_type="hc1").fit(panel, **CS_KW).att == cls().fit(panel, **CS_KW).att
    with pytest.raises(ValueError, match=r"vcov_type must be one of \['hc1'\]"):
        cls(vcov_type="hc2").fit(panel, **CS_KW)


def test_regression_accepts_analytical_spelling_and_zero_draws_only_without_wild(panel):
    kw = dict(outcome="y", treatment="treated", time="post")
    a = dd.DiD(inference="analytical").fit(panel, **kw)
    b = dd.DiD(inference="analytic", n_bootstrap=0).fit(panel, **kw)
    assert (a.att, a.se) == (b.att, b.se)
    with pytest.raises(ValueError, match="n_bootstrap >= 2"):
        dd.DiD(inference="wild_bootstrap", cluster="psu", n_bootstrap=0).fit(panel, **kw)
    with pytest.raises(ValueError, match="n_bootstrap must be 0 or an integer >= 2"):
        dd.DiD(n_bootstrap=1).fit(panel, **kw)
    wild = dd.DiD(inference="wild_bootstrap", cluster="psu", n_bootstrap=99, seed=1,
                  bootstrap_weights=None).fit(panel, **kw)
    assert np.isfinite(wild.p_value)
