"""A catalogue of bad inputs tried on every registered estimator: each must give a
ValueError or TypeError whose message names the column, and leave the input frame as it was."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd
from diff_diff.datasets import example_panel
from diff_diff.estimators import _template  # noqa: F401  (the example estimator too)
from diff_diff.estimators import registered

ENTRIES = registered()
DESIGN = dict(weights="weight", strata="stratum", psu="psu")


def _columns(entry) -> dict:
    """The column arguments of the estimator's example call (role -> column)."""
    panel = example_panel(n_units=12)
    return {role: value for role, value in entry.capabilities.example().items()
            if isinstance(value, str) and value in panel.columns}


def _with_nan(data, col):
    return data.assign(**{col: data[col].where(data["unit"] != 5)})


# (case, how the data is spoiled, the column the message must name, survey design or None)
def _cases(entry):
    cols = _columns(entry)
    yield "not a frame", lambda d: d.to_dict(), None, None
    yield "MultiIndex columns", lambda d: d.set_axis(
        pd.MultiIndex.from_product([["a"], d.columns]), axis=1), "MultiIndex", None
    for role, col in cols.items():
        yield f"{role} missing", lambda d, c=col: d.drop(columns=c), col, None
        yield f"{role} duplicated", lambda d, c=col: pd.concat([d, d[[c]]], axis=1), col, None
        yield f"{role} NaN", lambda d, c=col: _with_nan(d, c), col, None
    if "outcome" in cols:
        out = cols["outcome"]
        yield "outcome infinite", lambda d: d.assign(**{out: d[out].where(
            d["unit"] != 5, np.inf)}), out, None
    if "first_treat" in cols:
        ft = cols["first_treat"]
        yield "cohort changes within a unit", lambda d: d.assign(**{ft: np.where(
            (d["unit"] == 5) & (d["time"] == 6), 4, d[ft])}), ft, None
    for field in ("weight", "stratum", "psu"):
        yield f"design {field} NaN", lambda d, c=field: _with_nan(d, c), field, DESIGN
    yield "design weight as text", lambda d: d.assign(weight=d["weight"].astype(str)), \
        "weight", DESIGN


CASES = [(e, *case) for e in ENTRIES for case in _cases(e)]


# Missing outcomes (and doses) are not an error where the estimator's reference drops
# incomplete units or rows (R did, didimputation, did_had): then a warning must say so.
MAY_DROP = ("outcome NaN", "dose NaN")


@pytest.mark.parametrize("entry, case, spoil, named, design", CASES,
                         ids=[f"{c[0].name}-{c[1]}" for c in CASES])
def test_bad_input_is_refused_naming_the_column(entry, case, spoil, named, design):
    panel = example_panel(n_units=60)
    data = spoil(panel)
    before = data.copy(deep=True) if isinstance(data, pd.DataFrame) else None
    survey = None if design is None else dd.SurveyDesign(**design)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            res = entry.cls(**entry.capabilities.example_settings()).fit(
                data, survey_design=survey, **entry.capabilities.example())
        except (ValueError, TypeError) as err:
            if named is not None:
                assert re.search(re.escape(named), str(err)), (case, str(err))
        else:
            assert case in MAY_DROP, f"{case}: no error"
            assert any("dropped" in str(w.message) for w in caught), case
            assert np.isfinite(res.att), case
    if before is not None:
        pd.testing.assert_frame_equal(data, before)


CS_KW = dict(outcome="y", unit="unit", time="time", first_treat="first_treat")


def test_cs_without_never_treated_units_points_to_not_yet_treated():
    panel = example_panel(n_units=60)
    everyone = panel.assign(first_treat=panel["first_treat"].replace(0, 5))
    with pytest.raises(ValueError, match="no never-treated units.*not_yet_treated"):
        dd.CS().fit(everyone, **CS_KW)
    with pytest.warns(UserWarning, match="not estimable"):  # the last cohort has no comparison
        res = dd.CS(control_group="not_yet_treated").fit(everyone, **CS_KW)
    assert np.isfinite(res.att)


def test_cs_without_any_treated_unit_says_so():
    panel = example_panel(n_units=60)
    with pytest.raises(ValueError, match="no unit is treated"):
        dd.CS().fit(panel.assign(first_treat=0), **CS_KW)
    with pytest.raises(ValueError, match="every treated unit is treated from the first period"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dd.CS().fit(panel.assign(first_treat=np.where(panel["first_treat"] > 0, 1, 0)),
                        **CS_KW)


def test_a_single_psu_warns_that_the_variance_is_not_identified():
    panel = example_panel(n_units=60).assign(one=1)
    design = dd.SurveyDesign(weights="weight", psu="one")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = dd.survey_mean(panel, "y", design)
        res = dd.CS().fit(panel, survey_design=design, **CS_KW)
    messages = [str(w.message) for w in caught]
    assert sum("at least two PSUs" in m for m in messages) == 2, messages
    assert any("standard error of the headline effect is NaN" in m for m in messages)
    assert np.isnan(out["se"].iloc[0]) and np.isnan(res.se)


def test_a_single_psu_warns_once_per_fit_not_again_for_a_derived_test():
    """BJS's pretrend_test reuses the fit's design (Inference.of): no second warning."""
    panel = example_panel(n_units=60).assign(one=1)
    design = dd.SurveyDesign(weights="weight", psu="one")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = dd.BJS().fit(panel, survey_design=design, **CS_KW)
        pre = res.pretrend_test()
    messages = [str(w.message) for w in caught]
    assert sum("at least two PSUs" in m for m in messages) == 1, messages
    assert np.isnan(res.se) and np.isnan(pre["p_value"])


def test_did_names_the_empty_treatment_by_time_cells():
    panel = example_panel(n_units=60)
    with pytest.raises(ValueError, match="no observations with treated=1, post=0 or "
                                         "treated=1, post=1"):
        dd.DiD().fit(panel[panel["treated"] == 0], outcome="y", treatment="treated",
                     time="post")
    with pytest.raises(ValueError, match="all four treatment x time cells"):
        dd.DiD().fit(panel.iloc[:1], outcome="y", treatment="treated", time="post")


def test_survey_mean_of_an_all_missing_variable_is_refused():
    panel = example_panel(n_units=20).assign(z=np.nan)
    with pytest.raises(ValueError, match=r"\['z'\] have no non-missing values"):
        dd.survey_mean(panel, "z", dd.SurveyDesign(weights="weight"), na_rm=True)
