"""Calls that diff-diff 3.x client code makes (balance's BRFSS tutorial among them)."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

matplotlib.use("Agg")
KW = dict(outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")


@pytest.fixture(scope="module")
def mpdta():
    return dd.load_mpdta()


@pytest.mark.parametrize("aggregate", ["simple", "event_study", "group", "all"])
def test_fit_aggregate_keyword_warns_and_changes_nothing(mpdta, aggregate):
    with pytest.warns(FutureWarning, match=r"results.aggregate"):
        res = dd.CS().fit(mpdta, aggregate=aggregate, **KW)
    plain = dd.CS().fit(mpdta, **KW)
    assert (res.att, res.se) == (plain.att, plain.se)
    assert res.event_study_effects.equals(plain.event_study_effects)
    with pytest.raises(ValueError, match="aggregate must be one of"):
        dd.CS().fit(mpdta, aggregate="dynamic_all", **KW)


def test_fit_balance_e_gives_the_balanced_event_study(mpdta):
    res = dd.CS().fit(mpdta, balance_e=1, **KW)
    expected = dd.CS().fit(mpdta, **KW).aggregate("dynamic", balance_e=1).effects
    pd.testing.assert_frame_equal(pd.DataFrame(res.event_study_effects), expected, rtol=1e-10)
    assert list(res.event_study_effects["event_time"]) == [-2, -1, 0, 1]
    with pytest.raises(ValueError, match="balance_e must be None or a non-negative integer"):
        dd.CS().fit(mpdta, balance_e=-1, **KW)


def test_event_study_effects_read_the_3x_way_and_as_a_table(mpdta):
    res = dd.CS().fit(mpdta, **KW)
    es = res.event_study_effects
    row = es[es["event_time"] == 2].iloc[0]
    three_x = es[2]
    assert three_x["effect"] == row["estimate"] and three_x["se"] == row["se"]
    assert three_x["conf_int"] == (row["conf_low"], row["conf_high"])
    assert isinstance(three_x["effect"], float)
    assert res.group_effects[2006]["effect"] == pytest.approx(
        res.aggregate("group").effects.set_index("group").loc[2006, "estimate"])
    assert list(es["estimate"]) == list(es.estimate)  # columns as usual
    with pytest.raises(KeyError, match="neither a column nor a value of 'event_time'"):
        es[42]
    bjs = dd.BJS().fit(mpdta, **KW).event_study_effects
    assert bjs[0]["n_obs"] == int(bjs.loc[bjs["event_time"] == 0, "n_obs"].iloc[0])


def test_top_level_plot_event_study_takes_results_or_tables(mpdta):
    res = dd.CS().fit(mpdta, **KW)
    ax = dd.plot_event_study(res)
    assert ax.get_xlabel() == "Periods since treatment"
    ax = dd.plot_event_study(res.event_study_effects, use_cband=False)
    assert len(ax.lines) >= 1
    with pytest.raises(TypeError, match="needs a result with an event study"):
        dd.plot_event_study(dd.DiD())
    with pytest.raises(ValueError, match="lacks column"):
        dd.plot_event_study(res.event_study_effects.drop(columns="conf_low"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reg = dd.EventStudy().fit(mpdta.assign(ever=(mpdta["first.treat"] > 0).astype(int)),
                                  outcome="lemp", treatment="ever", time="year",
                                  post_periods=[2006, 2007])
    points = dd.plot_event_study(reg).get_lines()[0].get_ydata()
    np.testing.assert_allclose(points, reg.event_study_effects["estimate"])


def test_effects_tables_answer_3x_truthiness_membership_and_bands(mpdta):
    res = dd.CS(n_bootstrap=49, seed=1).fit(mpdta, **KW)
    es = res.event_study_effects
    assert bool(es) and 0 in es and 9 not in es and "estimate" in es
    assert set(es[0]) == {"effect", "se", "t_stat", "p_value", "conf_int", "cband_conf_int"}
    assert es[["event_time", "estimate"]][0] == {"effect": es[0]["effect"]}
    with pytest.raises(KeyError):
        es[np.True_]
    with pytest.raises(ValueError, match="balance_e=4: no cohort is observed that many periods"):
        dd.CS().fit(mpdta, balance_e=4, **KW)


def test_imputation_accepts_the_3x_aggregate_keyword_and_refuses_balance_e(mpdta):
    with pytest.warns(FutureWarning, match="aggregate"):
        res = dd.BJS().fit(mpdta, aggregate="all", **KW)
    assert res.att == dd.BJS().fit(mpdta, **KW).att
    with pytest.raises(ValueError, match="balance_e .* is not available"):
        dd.BJS().fit(mpdta, balance_e=1, **KW)
    with pytest.raises(ValueError, match="aggregate must be one of"):
        dd.BJS().fit(mpdta, aggregate="dynamic", **KW)
