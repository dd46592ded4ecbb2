"""diff-diff: difference-in-differences with complex survey data as a first-class input."""

from ._version import __version__
from .datasets import load_mpdta
from .estimators import (
    CallawaySantAnna,
    DifferenceInDifferences,
    HeterogeneousAdoptionDiD,
    ImputationDiD,
    MultiPeriodDiD,
    TwoWayFixedEffects,
)
from .survey import (
    CalibrationError,
    SurveyDesign,
    SurveyMetadata,
    aggregate_survey,
    as_replicate_design,
    calibrate,
    rake,
    survey_mean,
    survey_total,
)

# short aliases
BJS = ImputationDiD
CS = CallawaySantAnna
HAD = HeterogeneousAdoptionDiD
DiD = DifferenceInDifferences
TWFE = TwoWayFixedEffects
EventStudy = MultiPeriodDiD

__all__ = [
    "BJS",
    "CS",
    "CallawaySantAnna",
    "DiD",
    "DifferenceInDifferences",
    "EventStudy",
    "HAD",
    "HeterogeneousAdoptionDiD",
    "ImputationDiD",
    "MultiPeriodDiD",
    "TWFE",
    "TwoWayFixedEffects",
    "SurveyDesign",
    "CalibrationError",
    "SurveyMetadata",
    "aggregate_survey",
    "as_replicate_design",
    "calibrate",
    "load_mpdta",
    "rake",
    "__version__",
    "survey_mean",
    "survey_total",
]
