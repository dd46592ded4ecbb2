"""diff-diff: difference-in-differences with complex survey data as a first-class input."""

from ._version import __version__
from .datasets import load_mpdta
from .diagnostics import (
    BaconDecomposition,
    qug_test,
    stute_test,
    twowayfeweights,
    yatchew_test,
)
from .estimators import (
    CallawaySantAnna,
    DifferenceInDifferences,
    HeterogeneousAdoptionDiD,
    ImputationDiD,
    MultiPeriodDiD,
    SunAbraham,
    TwoStageDiD,
    TwoWayFixedEffects,
)
from .survey import (
    CalibrationError,
    SurveyDesign,
    SurveyMetadata,
    as_replicate_design,
    calibrate,
    rake,
)
from .plotting import plot_event_study
from .statistics import aggregate_survey, survey_mean, survey_total

# short aliases
Bacon = BaconDecomposition
SA = SunAbraham
BJS = ImputationDiD
CS = CallawaySantAnna
HAD = HeterogeneousAdoptionDiD
DiD = DifferenceInDifferences
TWFE = TwoWayFixedEffects
EventStudy = MultiPeriodDiD

__all__ = [
    "Bacon",
    "BaconDecomposition",
    "SA",
    "SunAbraham",
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
    "TwoStageDiD",
    "TwoWayFixedEffects",
    "SurveyDesign",
    "CalibrationError",
    "SurveyMetadata",
    "aggregate_survey",
    "as_replicate_design",
    "calibrate",
    "load_mpdta",
    "plot_event_study",
    "qug_test",
    "rake",
    "stute_test",
    "__version__",
    "survey_mean",
    "survey_total",
    "twowayfeweights",
    "yatchew_test",
]
