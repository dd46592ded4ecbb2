"""Estimators: each turns data into estimates and influence functions (no variance code)."""

from .callaway_santanna import CallawaySantAnna
from .continuous import ContinuousDiD
from .dcdh import ChaisemartinDHaultfoeuille
from .efficient import EfficientDiD
from .had import HeterogeneousAdoptionDiD
from .imputation import ImputationDiD
from .regression import DifferenceInDifferences, MultiPeriodDiD, TwoWayFixedEffects
from .registry import REGISTRY, Capabilities, registered
from .stacked import StackedDiD
from .sun_abraham import SunAbraham
from .synthetic import SyntheticDiD
from .triple import TripleDifference
from .trop import TROP
from .triple_staggered import StaggeredTripleDifference
from .two_stage import TwoStageDiD
from .wooldridge import WooldridgeDiD

__all__ = [
    "REGISTRY",
    "Capabilities",
    "registered",
    "CallawaySantAnna",
    "ChaisemartinDHaultfoeuille",
    "ContinuousDiD",
    "DifferenceInDifferences",
    "EfficientDiD",
    "HeterogeneousAdoptionDiD",
    "ImputationDiD",
    "MultiPeriodDiD",
    "StackedDiD",
    "StaggeredTripleDifference",
    "SunAbraham",
    "SyntheticDiD",
    "TROP",
    "TripleDifference",
    "TwoStageDiD",
    "TwoWayFixedEffects",
    "WooldridgeDiD",
]
