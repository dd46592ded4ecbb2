"""diff-diff: difference-in-differences with complex survey data as a first-class input."""

from ._version import __version__
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

__all__ = [
    "SurveyDesign",
    "CalibrationError",
    "SurveyMetadata",
    "aggregate_survey",
    "as_replicate_design",
    "calibrate",
    "rake",
    "__version__",
    "survey_mean",
    "survey_total",
]
