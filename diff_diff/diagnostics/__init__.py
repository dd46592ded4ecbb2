"""Diagnostics: pre-tests that consume data or results, never estimators' internals."""

from .bacon import BaconDecomposition, BaconDecompositionResults
from .honest_did import HonestDiD, HonestDiDResults, SensitivityResults, compute_honest_did
from .had_pretests import qug_test, stute_test, yatchew_test
from .placebo import (
    PlaceboTestResults,
    leave_one_out_test,
    permutation_test,
    placebo_group_test,
    placebo_timing_test,
    run_all_placebo_tests,
    run_placebo_test,
)
from .power import (
    PowerAnalysis,
    PowerResults,
    SimulationPowerResults,
    SurveyPowerConfig,
    compute_mde,
    compute_power,
    compute_sample_size,
    simulate_mde,
    simulate_panel,
    simulate_power,
    simulate_sample_size,
)
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
           "stute_test", "twowayfeweights", "yatchew_test", "PlaceboTestResults",
           "leave_one_out_test", "permutation_test", "placebo_group_test",
           "placebo_timing_test", "run_all_placebo_tests", "run_placebo_test", "PowerAnalysis",
           "PowerResults", "SimulationPowerResults", "SurveyPowerConfig", "compute_mde",
           "compute_power", "compute_sample_size", "simulate_mde", "simulate_panel",
           "simulate_power", "simulate_sample_size"]
