"""Diagnostics: pre-tests that consume data or results, never estimators' internals."""

from .bacon import BaconDecomposition, BaconDecompositionResults
from .had_pretests import qug_test, stute_test, yatchew_test

__all__ = ["BaconDecomposition", "BaconDecompositionResults", "qug_test", "stute_test",
           "yatchew_test"]
