"""StackedDiD on the authors' own example (Wing, Freedman & Hollingsworth 2024; the ACA
Medicaid expansion and uninsurance, their tutorial ``hollina/stacked-did-weights``):
the published numbers, a hand-built stacked regression (numpy, the authors'
definitions; ``tests/parity/ports/stacked_aca_reference.py``) and diff-diff 3.13.0, all
recorded in ``tests/parity/fixtures/stacked_aca_reference.json``.

Our CR1 uses the same small-sample factor as fixest here (G/(G-1) (n-1)/(n-K), K
counting the absorbed treat and event-time effects), so the standard errors agree with
the reference to 1e-12 and with Stata's ``lincom`` to its 7 printed decimals.
"""

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import diff_diff as dd

HERE = Path(__file__).parent / "fixtures"
FIXTURE = json.loads((HERE / "stacked_aca_reference.json").read_text())


@pytest.fixture(scope="module")
def result():
    raw = (HERE / "stacked_aca_uninsured.csv").read_bytes()
    assert hashlib.md5(raw).hexdigest() == FIXTURE["meta"]["data_md5"]
    data = pd.read_csv(HERE / "stacked_aca_uninsured.csv")
    data["first_treat"] = data["adopt_year"].fillna(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 2020 and 2021 are trimmed
        return dd.StackedDiD(kappa_pre=3, kappa_post=2).fit(
            data, outcome="unins", unit="statefip", time="year", first_treat="first_treat")


def test_equals_the_hand_built_regression(result):
    ref = FIXTURE["reference"]
    table = result.event_study_effects.set_index("event_time")
    for e, coef in ref["coef"].items():
        assert table.loc[int(e), "estimate"] == pytest.approx(coef, abs=1e-14)
        assert table.loc[int(e), "se"] == pytest.approx(ref["se"][e], rel=1e-12)
    assert result.att == pytest.approx(ref["avg_post"], abs=1e-14)
    assert result.se == pytest.approx(ref["avg_post_se"], rel=1e-12)
    assert result.n_obs == ref["n_obs"] and result.n_clusters == ref["n_clusters"]
    assert result.df == ref["n_clusters"] - 1  # R hypotheses(df = 50), as the authors
    weights = result.stacked_data.query("_treat == 0 and _event_time == 0")
    means = weights.groupby("_sub_exp")["_q_weight"].mean()
    for a, value in ref["avg_control_weight_e0"].items():
        assert means[float(a)] == pytest.approx(value, rel=1e-14)


def test_equals_the_published_numbers(result):
    pub = FIXTURE["published"]["html"]
    lincom = pub["lincom_stata"]["value"]
    assert round(result.att, 7) == lincom["estimate"] and round(result.se, 7) == lincom["se"]
    assert (round(result.conf_int[0], 7), round(result.conf_int[1], 7)) == tuple(lincom["ci"])
    table = result.event_study_effects.set_index("event_time")
    esttab = pub["esttab_stata"]["value"]
    for e, se in esttab["se"].items():
        assert round(table.loc[int(e), "se"], 5) == se
    counts = pub["counts_R"]["value"]
    stacked = result.stacked_data.query("_event_time == 0")
    for a, (n_t, n_c, _) in counts.items():
        sub = stacked[stacked["_sub_exp"] == float(a)]
        assert (sub["_treat"].sum(), (1 - sub["_treat"]).sum()) == (n_t, n_c)
    assert result.groups == [2014, 2015, 2016, 2019] and result.trimmed_groups == [2020, 2021]


def test_equals_diff_diff_3_13(result):
    old = FIXTURE["diff_diff_3_13"]
    assert result.att == pytest.approx(old["overall_att"], abs=1e-14)
    assert result.se == pytest.approx(old["overall_se"], rel=1e-12)
    table = result.event_study_effects.set_index("event_time")
    events = old["event_study"]
    for e, row in events.items():
        if int(e) == -1:
            continue  # 3.13 lists the reference period as 0 / 0
        assert table.loc[int(e), "estimate"] == pytest.approx(row["effect"], abs=1e-14)
        assert table.loc[int(e), "se"] == pytest.approx(row["se"], rel=1e-12)
    assert np.isfinite(result.p_value)
