"""diff-diff: difference-in-differences with complex survey data as a first-class input."""

from ._version import __version__
from .survey import SurveyDesign, SurveyMetadata, aggregate_survey, survey_mean, survey_total

__all__ = [
    "SurveyDesign",
    "SurveyMetadata",
    "aggregate_survey",
    "__version__",
    "survey_mean",
    "survey_total",
]
