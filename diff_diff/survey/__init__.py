"""Survey designs: description, resolution against data, metadata, descriptives."""

from .aggregate import aggregate_survey
from .calibration import CalibrationError, CalibrationInfo, CalibrationReport, calibrate, rake
from .descriptive import survey_mean, survey_total
from .design import LONELY_PSU_RULES, REPLICATE_METHODS, WEIGHT_TYPES, SurveyDesign
from .metadata import SurveyMetadata
from .replicate_weights import as_replicate_design
from .resolved import ReplicateSpec, ResolvedDesign, trivial_design

__all__ = [
    "as_replicate_design",
    "CalibrationError",
    "CalibrationInfo",
    "CalibrationReport",
    "calibrate",
    "rake",
    "aggregate_survey",
    "LONELY_PSU_RULES",
    "REPLICATE_METHODS",
    "WEIGHT_TYPES",
    "ReplicateSpec",
    "ResolvedDesign",
    "SurveyDesign",
    "SurveyMetadata",
    "survey_mean",
    "survey_total",
    "trivial_design",
]
