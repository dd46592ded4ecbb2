"""Every registered estimator under every design it claims: the contract a new estimator
gets by registering (diff_diff/estimators/registry.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel
from diff_diff.estimators import _template  # noqa: F401  (the example estimator is swept too)
from diff_diff.estimators import registered
from diff_diff.results import TIDY_COLUMNS

ENTRIES = registered()
IDS = [e.name for e in ENTRIES]
REGISTRY_BY_NAME = {e.name: e for e in ENTRIES}
TAYLOR = dd.SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")
BOOTSTRAP_SETTINGS = {
    "multiplier": {"n_bootstrap": 49, "seed": 1},
    "wild": {"inference": "wild_bootstrap", "cluster": "psu", "n_bootstrap": 99, "seed": 1},
}


@pytest.fixture(scope="module")
def panel():
    return example_panel()


@pytest.fixture(scope="module")
def replicate(panel):
    return dd.as_replicate_design(panel, TAYLOR, "JKn")


def _fit(entry, data, design=None, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        settings = {**entry.capabilities.example_settings(), **settings}
        return entry.cls(**settings).fit(data, survey_design=design,
                                         **entry.capabilities.example())


def _headline(res):
    return np.array([res.att, res.se, res.t_stat, res.p_value, *res.conf_int])


def _variants(entry, panel, replicate):
    caps = entry.capabilities
    yield "plain", panel, None, {}
    yield "taylor", panel, TAYLOR, {}
    if caps.replicate:
        yield "replicate", replicate[0], replicate[1], {}
    if caps.bootstrap is not None:
        yield "bootstrap", panel, None, BOOTSTRAP_SETTINGS[caps.bootstrap]
    if caps.bootstrap == "multiplier":
        yield "bootstrap+taylor", panel, TAYLOR, BOOTSTRAP_SETTINGS["multiplier"]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_every_design_gives_finite_headline_numbers(entry, panel, replicate):
    for name, data, design, settings in _variants(entry, panel, replicate):
        before = data.copy(deep=True)
        res = _fit(entry, data, design, **settings)
        pd.testing.assert_frame_equal(data, before)  # the input is never modified
        assert np.all(np.isfinite(_headline(res))), (name, _headline(res))
        assert (res.survey_metadata is not None) == (design is not None), name
        assert res.to_dataframe().equals(res.to_dataframe(res.levels[0]))
        for level in res.levels:
            if level not in res._raw_levels:
                assert set(TIDY_COLUMNS) <= set(res.to_dataframe(level).columns), (name, level)
        text = res.summary()
        assert isinstance(text, str) and ("Survey design" in text) == (design is not None)
        assert str(res) == text and repr(res).startswith(type(res).__name__ + "(att=")
        assert "<table" in res._repr_html_()
        if entry.capabilities.event_study:
            assert {"event_time", "estimate", "conf_low", "conf_high"} <= set(
                res.event_study_effects.columns)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_headline_is_read_only_and_provenance_can_be_attached(entry, panel):
    res = _fit(entry, panel, TAYLOR)
    res._balance_adjustment = {"method": "rake"}
    assert res._balance_adjustment == {"method": "rake"}
    for name in ("att", "se", "t_stat", "p_value", "conf_int", "overall_att", "overall_se"):
        with pytest.raises(AttributeError):
            setattr(res, name, 0.0)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_weights_scale_and_row_order_do_not_matter(entry, panel):
    base = _headline(_fit(entry, panel, TAYLOR))
    scaled = panel.assign(weight=panel["weight"] * 37.5)
    np.testing.assert_allclose(_headline(_fit(entry, scaled, TAYLOR)), base, rtol=1e-9)
    shuffled = panel.sample(frac=1.0, random_state=3)
    np.testing.assert_allclose(_headline(_fit(entry, shuffled, TAYLOR)), base, rtol=1e-9)


REFUSED = [(e, w) for e in ENTRIES for w in ("pweight", "aweight", "fweight")
           if w not in e.capabilities.weight_types]


@pytest.mark.parametrize("entry, weight_type", REFUSED,
                         ids=[f"{e.name}-{w}" for e, w in REFUSED])
def test_unsupported_weight_types_are_refused_naming_the_accepted_ones(entry, weight_type, panel):
    data = panel.assign(weight=np.ceil(panel["weight"]))
    design = dd.SurveyDesign(weights="weight", weight_type=weight_type)
    with pytest.raises(ValueError, match=entry.capabilities.weight_types[0]):
        _fit(entry, data, design)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_parameters_round_trip_and_bad_values_are_refused(entry):
    est = entry.cls()
    params = est.get_params()
    assert entry.cls(**params).get_params() == params
    assert est.set_params(alpha=0.1).alpha == 0.1
    with pytest.raises(ValueError, match="no parameter"):
        est.set_params(not_a_parameter=1)
    with pytest.raises(ValueError, match="alpha"):
        entry.cls(alpha=1.5, **entry.capabilities.example_settings()).fit(
            example_panel(n_units=40), **entry.capabilities.example())


PUBLIC = [e for e in ENTRIES if e.public]


def test_the_public_estimators_are_registered():
    assert {e.name for e in PUBLIC} >= {"CallawaySantAnna", "ImputationDiD",
                                        "HeterogeneousAdoptionDiD", "DifferenceInDifferences",
                                        "TwoWayFixedEffects", "MultiPeriodDiD"}
    assert "TwoPeriodDiD" in IDS and "TwoPeriodDiD" not in dd.__all__


@pytest.mark.parametrize("entry", PUBLIC, ids=[e.name for e in PUBLIC])
def test_registry_names_and_aliases_are_public(entry):
    assert getattr(dd, entry.name) is entry.cls
    for alias in entry.aliases:
        assert getattr(dd, alias) is entry.cls
        assert alias in dd.__all__
    assert entry.cls.capabilities is entry.capabilities


WARNING_CASES = ["CallawaySantAnna", "ImputationDiD", "HeterogeneousAdoptionDiD",
                 "TwoWayFixedEffects"]


@pytest.mark.parametrize("name", WARNING_CASES)
def test_warnings_point_at_the_callers_line(name, panel):
    """Warnings from deep inside the fit template are attributed to the user's code:
    incomplete units (CS, BJS), staggered cohorts (HAD, TWFE)."""
    entry = REGISTRY_BY_NAME[name]
    data = panel
    if name in ("CallawaySantAnna", "ImputationDiD"):
        data = panel.assign(y=np.where((panel["unit"] == 1) & (panel["time"] == 2), np.nan,
                                       panel["y"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry.cls(**entry.capabilities.example_settings()).fit(
            data, **entry.capabilities.example())
    assert caught, name
    assert {w.filename for w in caught} == {__file__}, [(w.filename, str(w.message)[:60])
                                                        for w in caught]


def test_bootstrap_with_replicate_weights_is_refused_before_estimating(replicate):
    data, design = replicate
    untreated = data.assign(first_treat=0)  # estimation itself would fail: nothing treated
    with pytest.raises(ValueError, match="n_bootstrap > 0 cannot be combined with replicate"):
        dd.CS(n_bootstrap=99).fit(untreated, survey_design=design, outcome="y", unit="unit",
                                  time="time", first_treat="first_treat")


def test_to_dict_keeps_settings_apart_and_aggregations_carry_their_df(replicate):
    data, design = replicate
    res = dd.CS().fit(data, survey_design=design, outcome="y", unit="unit", time="time",
                      first_treat="first_treat")
    out = res.to_dict()
    assert out["att"] == res.att and out["df"] == res.df
    assert out["params"]["control_group"] == "never_treated"
    assert out["inference"].startswith("replicate weights (JKn)")
    group = res.aggregate("group")
    assert group.df == res.df == design_rank_df(data, design)
    assert group.to_dict()["df"] == group.df
    reg = dd.DiD(inference="analytical").fit(data, outcome="y", treatment="treated", time="post")
    assert reg.to_dict()["params"]["inference"] == "analytical"
    assert reg.title == "Difference-in-differences (2x2)"


def design_rank_df(data, design):
    return float(design.resolve(data).df)


def test_warn_user_stops_at_modules_outside_the_package(tmp_path):
    """A user module whose name merely starts with 'diff_diff' is the caller, not the library."""
    import importlib.util

    path = tmp_path / "diff_diff_helpers.py"
    path.write_text("from diff_diff._warnings import warn_user\n\n"
                    "def helper():\n    warn_user('from the library')\n")
    spec = importlib.util.spec_from_file_location("diff_diff_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.helper()
    assert caught[0].filename == str(path) and caught[0].lineno == 4


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_results_pickle_and_keep_their_inference(entry, panel, replicate):
    """Results can be saved (pickle) and reloaded with every table and re-inference intact."""
    import pickle

    for data, design in ((panel, TAYLOR), replicate):
        res = _fit(entry, data, design)
        back = pickle.loads(pickle.dumps(res))
        assert _headline(back).tolist() == _headline(res).tolist()
        assert back.summary() == res.summary()


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_polars_and_other_frames_are_converted_once_with_the_same_results(entry, panel):
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow", exc_type=ImportError)  # (or unloadable)
    base = _headline(_fit(entry, panel, TAYLOR))
    frame = pl.from_pandas(panel)
    lazy = entry.name in ("CallawaySantAnna", "SyntheticDiD")  # LazyFrames are collected
    got = _headline(_fit(entry, frame.lazy() if lazy else frame, TAYLOR))
    np.testing.assert_allclose(got, base, rtol=1e-12, atol=1e-14)
    assert isinstance(frame, pl.DataFrame) and frame.shape == panel.shape  # input untouched


def test_converted_frames_keep_their_column_types():
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow", exc_type=ImportError)  # (or unloadable)
    from diff_diff._frames import as_pandas

    df = pd.DataFrame({"i": np.arange(4, dtype=np.int64), "f": [0.5, np.nan, 1.0, 2.0],
                       "s": list("abca"), "b": [True, False, True, True],
                       "c": pd.Categorical(list("xyxy"))})
    for frame in (pl.from_pandas(df), pl.from_pandas(df).lazy(),
                  pa.Table.from_pandas(df, preserve_index=False)):
        out = as_pandas(frame)
        assert isinstance(out, pd.DataFrame) and list(out.columns) == list(df.columns)
        assert out["i"].dtype == np.int64 and out["f"].dtype == np.float64
        assert out["b"].dtype == bool and isinstance(out["c"].dtype, pd.CategoricalDtype)
        assert out["s"].tolist() == df["s"].tolist() and np.isnan(out["f"][1])
    assert as_pandas(df) is df and as_pandas([1]) == [1]  # pandas as is; others refused later
    with pytest.raises(TypeError, match="must be a pandas DataFrame .*got builtins.list"):
        dd.CallawaySantAnna().fit([1], "y", "unit", "time", "first_treat")
