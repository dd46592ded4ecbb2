"""as_replicate_design: Rao-Wu bootstrap properties and errors."""

import numpy as np
import pandas as pd
import pytest

from diff_diff import SurveyDesign, as_replicate_design, survey_mean, survey_total


@pytest.fixture
def sample():
    rng = np.random.default_rng(5)
    n_strata, per = 8, 4
    psu = np.repeat(np.arange(n_strata * per), 6)
    df = pd.DataFrame({"st": psu // per, "psu": psu, "w": rng.uniform(1, 4, psu.size)})
    df["y"] = rng.normal(size=psu.size) + df["psu"] % 3
    df["N"] = 20.0
    return df


def test_rao_wu_is_seeded_unbiased_and_close_to_tsl(sample):
    design = SurveyDesign(weights="w", strata="st", psu="psu")
    out1, rep1 = as_replicate_design(sample, design, "bootstrap", n_replicates=300, seed=4)
    out2, _ = as_replicate_design(sample, design, "bootstrap", n_replicates=300, seed=4)
    pd.testing.assert_frame_equal(out1, out2)
    factors = out1[rep1.replicate_weights].to_numpy() / sample["w"].to_numpy()[:, None]
    assert abs(factors.mean() - 1.0) < 0.02
    assert rep1.replicate_method == "bootstrap"
    boot = survey_total(out1, "y", rep1)["se"].iloc[0]
    tsl = survey_total(sample, "y", design)["se"].iloc[0]
    assert boot == pytest.approx(tsl, rel=0.15)


def test_rao_wu_fpc_shrinks_variance(sample):
    plain = SurveyDesign(weights="w", strata="st", psu="psu")
    fpc = SurveyDesign(weights="w", strata="st", psu="psu", fpc="N")
    a = as_replicate_design(sample, plain, "bootstrap", n_replicates=400, seed=1)
    b = as_replicate_design(sample, fpc, "bootstrap", n_replicates=400, seed=1)
    se_a = survey_total(*[a[0], "y", a[1]])["se"].iloc[0]
    se_b = survey_total(*[b[0], "y", b[1]])["se"].iloc[0]
    assert se_b / se_a == pytest.approx(np.sqrt(1 - 4 / 20), rel=0.02)


def test_auto_picks_jkn_or_jk1(sample):
    _, rep = as_replicate_design(sample, SurveyDesign(weights="w", strata="st", psu="psu"))
    assert rep.replicate_method == "JKn" and len(rep.replicate_weights) == 32
    _, rep = as_replicate_design(sample, SurveyDesign(weights="w", psu="psu"))
    assert rep.replicate_method == "JK1"


def test_jackknife_equals_tsl_for_a_total(sample):
    design = SurveyDesign(weights="w", strata="st", psu="psu")
    out, rep = as_replicate_design(sample, design, "JKn")
    np.testing.assert_allclose(survey_total(out, "y", rep)["se"], survey_total(sample, "y", design)["se"],
                               rtol=1e-10)


def test_lonely_strata_in_jkn(sample):
    lonely = sample[~((sample["st"] == 0) & (sample["psu"] != 0))]
    _, rep = as_replicate_design(lonely, SurveyDesign(weights="w", strata="st", psu="psu"), "JKn")
    assert len(rep.replicate_weights) == 28
    _, avg = as_replicate_design(
        lonely, SurveyDesign(weights="w", strata="st", psu="psu", lonely_psu="average"), "JKn"
    )
    assert avg.replicate_scale == pytest.approx(29 / 28)
    with pytest.raises(ValueError, match="adjust"):
        as_replicate_design(lonely, SurveyDesign(weights="w", strata="st", psu="psu",
                                                 lonely_psu="adjust"), "JKn")


@pytest.mark.parametrize(
    "kwargs, method, fragment",
    [
        (dict(strata="st", psu="psu"), "JK1", "unstratified"),
        (dict(psu="psu"), "BRR", "stratified"),
        (dict(strata="st", psu="psu"), "BRR", "exactly two PSUs"),
        (dict(strata="st", psu="psu"), "jackknife", "method"),
        (dict(strata="st", psu="psu", weight_type="fweight"), "JKn", "pweight"),
    ],
)
def test_errors(sample, kwargs, method, fragment):
    with pytest.raises(ValueError, match=fragment):
        as_replicate_design(sample, SurveyDesign(weights="w", **kwargs), method)


def test_fay_rho_checked(sample):
    pairs = sample[sample["psu"] % 4 < 2]
    with pytest.raises(ValueError, match="fay_rho"):
        as_replicate_design(pairs, SurveyDesign(weights="w", strata="st", psu="psu"), "Fay",
                            fay_rho=1.5)
    out, rep = as_replicate_design(pairs, SurveyDesign(weights="w", strata="st", psu="psu"), "Fay",
                                   fay_rho=0.3)
    assert rep.fay_rho == 0.3 and len(rep.replicate_weights) == 12
    assert survey_mean(out, "y", rep)["se"].iloc[0] > 0
