"""With Meta's balance installed (CI installs it), its adapter fits our estimators by alias."""

import importlib.util
import logging
import os

import pytest

import diff_diff as dd

HAVE_BALANCE = importlib.util.find_spec("balance") is not None
needs_balance = pytest.mark.skipif(
    not HAVE_BALANCE and not os.environ.get("DIFF_DIFF_REQUIRE_BALANCE"),
    reason="balance is not installed")


def _adapter():
    """balance's diff_diff adapter, with balance's info logging quietened."""
    logging.getLogger("balance").setLevel(logging.WARNING)
    from balance.interop import diff_diff as bd

    return bd


def _mpdta_sample():
    """mpdta with unequal weights, and the same rows as a balance Sample."""
    from balance import Sample

    df = dd.load_mpdta()
    df["weight"] = 1.0 + df["countyreal"] % 3
    sample = Sample.from_frame(
        df.assign(id=df["countyreal"].astype(str) + "-" + df["year"].astype(str)),
        id_column="id", weight_column="weight")
    return df, sample


@needs_balance
@pytest.mark.parametrize("alias", ["CS", "BJS"])
def test_fit_did_by_alias_equals_native(alias):
    bd = _adapter()
    df, sample = _mpdta_sample()
    fitted = bd.fit_did(sample, estimator=alias, outcome="lemp", time="year", unit="countyreal",
                        treatment_first="first.treat")
    native = getattr(dd, alias)().fit(df, "lemp", "countyreal", "year", "first.treat",
                                      survey_design=dd.SurveyDesign(weights="weight"))
    assert type(fitted) is type(native)
    assert fitted.att == pytest.approx(native.att, rel=1e-12)
    assert fitted.se == pytest.approx(native.se, rel=1e-12)


@needs_balance
def test_fit_did_had_with_the_dose_as_an_estimator_argument():
    from balance import Sample

    from tests.contracts.test_public_surface import dose_panel

    bd = _adapter()

    df = dose_panel().rename(columns={"w": "weight"})
    sample = Sample.from_frame(df.assign(id=df["unit"].astype(str) + "-" + df["t"].astype(str)),
                               id_column="id", weight_column="weight")
    fitted = bd.fit_did(sample, estimator="HAD", outcome="y", time="t", unit="unit", dose="d")
    native = dd.HAD().fit(df, outcome="y", dose="d", time="t", unit="unit",
                          survey_design=dd.SurveyDesign(weights="weight"))
    assert fitted.att == pytest.approx(native.att, rel=1e-12)
    assert fitted.se == pytest.approx(native.se, rel=1e-12)


@needs_balance
def test_fit_did_passes_the_3x_aggregate_keyword_as_the_brfss_tutorial_does():
    bd = _adapter()
    df, sample = _mpdta_sample()
    with pytest.warns(FutureWarning, match="aggregate"):
        fitted = bd.fit_did(sample, estimator="CallawaySantAnna", outcome="lemp", time="year",
                            unit="countyreal", treatment_first="first.treat",
                            estimation_method="reg", control_group="not_yet_treated",
                            base_period="universal", cluster="countyreal", aggregate="all")
    native = dd.CS(estimation_method="reg", control_group="not_yet_treated",
                   base_period="universal", cluster="countyreal").fit(
        df, "lemp", "countyreal", "year", "first.treat",
        survey_design=dd.SurveyDesign(weights="weight"))
    assert fitted.att == pytest.approx(native.att, rel=1e-12)
    assert fitted.event_study_effects[0]["effect"] == native.event_study_effects[0]["effect"]
