"""SurveyDesign: the public fields and construction-time validation."""

import dataclasses

import pytest

from diff_diff import SurveyDesign

FIELDS = [
    ("weights", None),
    ("strata", None),
    ("psu", None),
    ("fpc", None),
    ("weight_type", "pweight"),
    ("nest", False),
    ("lonely_psu", "remove"),
    ("replicate_weights", None),
    ("replicate_method", None),
    ("fay_rho", 0.0),
    ("replicate_strata", None),
    ("combined_weights", True),
    ("replicate_scale", None),
    ("replicate_rscales", None),
    ("mse", False),
]
REPS = ["r1", "r2", "r3", "r4"]


def test_exactly_the_fifteen_fields_in_order_with_defaults():
    fields = dataclasses.fields(SurveyDesign)
    assert [(f.name, f.default) for f in fields] == FIELDS


def test_plain_mutable_dataclass():
    design = SurveyDesign(weights="w")
    design.strata = "st"
    assert design.strata == "st"
    assert dataclasses.asdict(design)["weights"] == "w"
    assert SurveyDesign(weights="w") == SurveyDesign(weights="w")


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"weight_type": "iweight"}, ["weight_type", "iweight"]),
        ({"lonely_psu": "fail"}, ["lonely_psu", "fail"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK2"},
         ["replicate_method", "JK2"]),
        ({"weights": "w", "replicate_method": "JK1"}, ["replicate_method", "replicate_weights"]),
        ({"weights": "w", "replicate_weights": REPS}, ["replicate_method"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "Fay"},
         ["fay_rho", "Fay"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "Fay", "fay_rho": 1.0},
         ["fay_rho", "1.0"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "BRR", "fay_rho": 0.3},
         ["fay_rho", "0.3", "BRR"]),
        ({"fay_rho": 0.5}, ["fay_rho", "0.5"]),
        ({"weights": "w", "strata": "st", "replicate_weights": REPS, "replicate_method": "JK1"},
         ["strata", "st", "replicate_weights"]),
        ({"weights": "w", "psu": "p", "replicate_weights": REPS, "replicate_method": "JK1"},
         ["psu", "p"]),
        ({"weights": "w", "fpc": "f", "replicate_weights": REPS, "replicate_method": "JK1"},
         ["fpc", "f"]),
        ({"replicate_weights": REPS, "replicate_method": "JK1"}, ["weights", "replicate_weights"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JKn"},
         ["replicate_strata", "JKn"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JKn",
          "replicate_strata": [1, 1, 2]}, ["replicate_strata", "length 3", "4"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK1",
          "replicate_strata": [1, 1, 2, 2]}, ["replicate_strata", "JK1"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK1",
          "replicate_scale": 0.0}, ["replicate_scale", "0.0"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK1",
          "replicate_scale": -2.0}, ["replicate_scale", "-2.0"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK1",
          "replicate_scale": float("inf")}, ["replicate_scale", "inf"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "BRR",
          "replicate_scale": 0.5}, ["replicate_scale", "BRR"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "SDR",
          "replicate_rscales": [1, 1, 1, 1]}, ["replicate_rscales", "SDR"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK1",
          "replicate_rscales": [1, 1]}, ["replicate_rscales", "length 2"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK1",
          "replicate_rscales": [1, -1, 1, 1]}, ["replicate_rscales", "-1"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK1",
          "replicate_rscales": [1, float("nan"), 1, 1]}, ["replicate_rscales", "nan"]),
        ({"weights": "w", "replicate_weights": REPS, "replicate_method": "JK1",
          "replicate_rscales": [0, 0, 0, 0]}, ["replicate_rscales"]),
        ({"replicate_scale": 1.0}, ["replicate_scale", "replicate design"]),
        ({"weights": "w", "replicate_weights": ["r1", "r1"], "replicate_method": "JK1"},
         ["replicate_weights", "twice"]),
    ],
)
def test_bad_settings_raise_value_error_naming_field_and_value(kwargs, fragments):
    with pytest.raises(ValueError) as err:
        SurveyDesign(**kwargs)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weights": 3},
        {"strata": ["a"]},
        {"replicate_weights": "r1", "replicate_method": "JK1", "weights": "w"},
        {"nest": "yes"},
        {"mse": 1},
    ],
)
def test_wrong_types_raise_type_error(kwargs):
    with pytest.raises(TypeError):
        SurveyDesign(**kwargs)


@pytest.mark.parametrize("method", ["BRR", "JK1", "SDR", "bootstrap"])
def test_valid_replicate_designs_construct(method):
    design = SurveyDesign(weights="w", replicate_weights=REPS, replicate_method=method)
    assert design.is_replicate
    assert design.columns() == ["w"] + REPS


def test_valid_jkn_and_fay():
    SurveyDesign(weights="w", replicate_weights=REPS, replicate_method="JKn",
                 replicate_strata=[1, 1, 2, 2])
    SurveyDesign(weights="w", replicate_weights=REPS, replicate_method="JKn",
                 replicate_rscales=[0.5, 0.5, 0.5, 0.5])
    SurveyDesign(weights="w", replicate_weights=REPS, replicate_method="Fay", fay_rho=0.5)


def test_mutation_is_revalidated_by_resolve():
    import pandas as pd

    design = SurveyDesign(weights="w")
    design.lonely_psu = "bogus"
    with pytest.raises(ValueError, match="lonely_psu"):
        design.resolve(pd.DataFrame({"w": [1.0, 2.0]}))
