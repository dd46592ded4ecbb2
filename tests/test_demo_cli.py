"""The demo and the command line."""

import numpy as np
import pandas as pd
import pytest

from diff_diff.cli import main
from diff_diff.datasets import simulate_brfss
from diff_diff.demo import run_demo


def test_simulator_is_seeded_and_consistent():
    a = simulate_brfss(respondents=30_000, seed=5)
    b = simulate_brfss(respondents=30_000, seed=5)
    pd.testing.assert_frame_equal(a.microdata, b.microdata)
    m = a.microdata
    assert set(m["age"]) and set(m["educ"]) and m["design_weight"].gt(0).all()
    assert (m["smoker_1"] <= m["smoker_0"]).all()  # the ban only lowers smoking
    observed = np.where(m["treated"], m["smoker_1"], m["smoker_0"])
    np.testing.assert_array_equal(m["smoker"], observed)
    never = a.states[a.states["first_treat"] == 0]
    assert len(never) > 0
    # margins of every state-year add up to the same population across margins
    sums = a.margins.groupby(["state", "year", "margin"])["total"].sum().unstack()
    np.testing.assert_allclose(sums["age"], sums["educ"])
    assert a.truth_overall < 0
    assert (a.truth_event_study.loc[a.truth_event_study["event_time"] < 0, "truth"] == 0).all()


def test_drift_parameters_validated():
    with pytest.raises(ValueError, match="drift"):
        simulate_brfss(drift=1.2)
    with pytest.raises(ValueError, match="cohorts"):
        simulate_brfss(cohorts=(1999,))


def test_demo_small_run(tmp_path):
    lines = []
    out = run_demo(seed=11, respondents=60_000, out_dir=tmp_path, progress=lines.append)
    assert list(out.table["weights"]) == [
        "design weights", "national rake per wave", "rake per state-year"]
    assert out.figure is not None and out.figure.exists()
    report = "\n".join(lines)
    assert "True overall ATT" in report and "figure written" in report
    bias = out.table.set_index("weights")["bias"].abs()
    assert bias["rake per state-year"] < bias["design weights"]
    assert {"design", "national", "state_year", "truth"} <= set(out.event_study.columns)


def test_cli_cs_on_own_data(tmp_path, capsys):
    from diff_diff import load_mpdta

    path = tmp_path / "mpdta.csv"
    load_mpdta().to_csv(path, index=False)
    code = main(["cs", str(path), "--outcome", "lemp", "--unit", "countyreal", "--time", "year",
                 "--first-treat", "first.treat", "--out", str(tmp_path / "out")])
    assert code == 0
    assert "Callaway-Sant'Anna" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "out" / "cs_event_study.csv")
    assert table["event_time"].tolist() == [-3, -2, -1, 0, 1, 2, 3]
    assert (tmp_path / "out" / "cs_event_study.png").exists()
    assert main(["cs", str(path), "--outcome", "nope", "--unit", "countyreal", "--time", "year",
                 "--first-treat", "first.treat", "--out", str(tmp_path / "o2")]) == 2


def test_cli_bjs_on_own_data_with_design(tmp_path, capsys):
    from diff_diff import ImputationDiD, SurveyDesign, load_mpdta

    df = load_mpdta().assign(w=lambda d: 1.0 + d["countyreal"] % 3)
    path = tmp_path / "mpdta.csv"
    df.to_csv(path, index=False)
    code = main(["bjs", str(path), "--outcome", "lemp", "--unit", "countyreal", "--time",
                 "year", "--first-treat", "first.treat", "--weights", "w",
                 "--aux-partition", "estimand", "--out", str(tmp_path / "out")])
    assert code == 0
    assert "Imputation DiD" in capsys.readouterr().out
    overall = pd.read_csv(tmp_path / "out" / "bjs_overall.csv")
    res = ImputationDiD(aux_partition="estimand").fit(
        df, "lemp", "countyreal", "year", "first.treat", survey_design=SurveyDesign(weights="w"))
    assert overall["estimate"].iloc[0] == pytest.approx(res.att, rel=1e-12)
    assert overall["se"].iloc[0] == pytest.approx(res.se, rel=1e-12)
    assert len(pd.read_csv(tmp_path / "out" / "bjs_observation.csv")) == 291
    assert (tmp_path / "out" / "bjs_event_study.png").exists()
    assert main(["bjs", str(path), "--outcome", "lemp", "--unit", "countyreal", "--time",
                 "year", "--first-treat", "first.treat", "--anticipation", "-1",
                 "--out", str(tmp_path / "o2")]) == 2


def test_demo_too_small_for_state_year_raking_explains(tmp_path, capsys):
    code = main(["demo", "--respondents", "3000", "--out", str(tmp_path)])
    assert code == 2
    assert "run the demo with more respondents" in capsys.readouterr().err


def test_cli_missing_file_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    code = main(["cs", str(missing), "--outcome", "y", "--unit", "u", "--time", "t",
                 "--first-treat", "g"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: file {str(missing)!r} not found"
