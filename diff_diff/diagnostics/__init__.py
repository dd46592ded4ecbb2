"""Diagnostics: pre-tests that consume data or results, never estimators' internals."""

from .bacon import BaconDecomposition, BaconDecompositionResults
from .honest_did import HonestDiD, HonestDiDResults, SensitivityResults, compute_honest_did
from .had_pretests import qug_test, stute_test, yatchew_test
from .pretrends_power import (
    PreTrendsPower,
    PreTrendsPowerResults,
    compute_mdv,
    compute_pretrends_power,
)
from .twfe_weights import TWFEWeightsResults, twowayfeweights

__all__ = ["BaconDecomposition", "BaconDecompositionResults", "HonestDiD", "HonestDiDResults",
           "PreTrendsPower", "PreTrendsPowerResults", "SensitivityResults", "TWFEWeightsResults",
           "compute_honest_did", "compute_mdv", "compute_pretrends_power", "qug_test",
           "stute_test", "twowayfeweights", "yatchew_test"]
