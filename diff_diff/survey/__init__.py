"""Survey designs: description, resolution against data, replicate weights, calibration,
metadata. Design-based statistics from them live in :mod:`diff_diff.statistics`."""

from .calibration import CalibrationError, CalibrationInfo, CalibrationReport, calibrate, rake
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
    "LONELY_PSU_RULES",
    "REPLICATE_METHODS",
    "WEIGHT_TYPES",
    "ReplicateSpec",
    "ResolvedDesign",
    "SurveyDesign",
    "SurveyMetadata",
    "trivial_design",
]
