"""diff-diff: difference-in-differences with complex survey data as a first-class input."""

from ._version import __version__
from .datasets import load_mpdta, load_prop99
from .diagnostics import (
    BaconDecomposition,
    HonestDiD,
    PowerAnalysis,
    PreTrendsPower,
    SurveyPowerConfig,
    compute_honest_did,
    compute_mde,
    compute_mdv,
    compute_power,
    compute_pretrends_power,
    compute_sample_size,
    leave_one_out_test,
    permutation_test,
    placebo_group_test,
    placebo_timing_test,
    qug_test,
    run_all_placebo_tests,
    run_placebo_test,
    simulate_mde,
    simulate_power,
    simulate_sample_size,
    stute_test,
    twowayfeweights,
    yatchew_test,
)
from .estimators import (
    CallawaySantAnna,
    ChaisemartinDHaultfoeuille,
    ContinuousDiD,
    DifferenceInDifferences,
    EfficientDiD,
    HeterogeneousAdoptionDiD,
    ImputationDiD,
    MultiPeriodDiD,
    StackedDiD,
    StaggeredTripleDifference,
    SunAbraham,
    SyntheticDiD,
    TROP,
    TripleDifference,
    TwoStageDiD,
    TwoWayFixedEffects,
    WooldridgeDiD,
)
from .survey import (
    CalibrationError,
    SurveyDesign,
    SurveyMetadata,
    as_replicate_design,
    calibrate,
    rake,
)
from .plotting import (
    plot_event_study,
    plot_group_effects,
    plot_honest_event_study,
    plot_power_curve,
    plot_pretrends_power,
    plot_sensitivity,
)
from .statistics import aggregate_survey, survey_mean, survey_total

# short aliases
Bacon = BaconDecomposition
SA = SunAbraham
Stacked = StackedDiD
ETWFE = WooldridgeDiD
SDiD = SyntheticDiD
DDD = TripleDifference
SDDD = StaggeredTripleDifference  # deprecated with the class (3.x)
CDiD = ContinuousDiD
EDiD = EfficientDiD
DCDH = ChaisemartinDHaultfoeuille
BJS = ImputationDiD
CS = CallawaySantAnna
HAD = HeterogeneousAdoptionDiD
DiD = DifferenceInDifferences
TWFE = TwoWayFixedEffects
EventStudy = MultiPeriodDiD

# names 3.x deprecated (they warn on use and go in 4.0)
_DEPRECATED_ALIASES = {"Gardner": "TwoStageDiD"}


def __getattr__(name):
    if name in _DEPRECATED_ALIASES:
        import warnings

        target = _DEPRECATED_ALIASES[name]
        warnings.warn(f"diff_diff.{name} is deprecated and will be removed in 4.0; use "
                      f"diff_diff.{target}", FutureWarning, stacklevel=2)
        return globals()[target]
    raise AttributeError(f"module 'diff_diff' has no attribute {name!r}")

__all__ = [
    "Bacon",
    "BaconDecomposition",
    "SA",
    "SunAbraham",
    "BJS",
    "CS",
    "CallawaySantAnna",
    "ChaisemartinDHaultfoeuille",
    "ContinuousDiD",
    "DiD",
    "DifferenceInDifferences",
    "EDiD",
    "EfficientDiD",
    "EventStudy",
    "HAD",
    "HeterogeneousAdoptionDiD",
    "HonestDiD",
    "ImputationDiD",
    "MultiPeriodDiD",
    "Stacked",
    "StackedDiD",
    "SDiD",
    "SyntheticDiD",
    "CDiD",
    "DCDH",
    "DDD",
    "SDDD",
    "StaggeredTripleDifference",
    "TROP",
    "TripleDifference",
    "PowerAnalysis",
    "PreTrendsPower",
    "SurveyPowerConfig",
    "TWFE",
    "TwoStageDiD",
    "TwoWayFixedEffects",
    "ETWFE",
    "WooldridgeDiD",
    "SurveyDesign",
    "CalibrationError",
    "SurveyMetadata",
    "aggregate_survey",
    "as_replicate_design",
    "calibrate",
    "compute_honest_did",
    "compute_mde",
    "compute_mdv",
    "compute_power",
    "compute_pretrends_power",
    "compute_sample_size",
    "leave_one_out_test",
    "load_mpdta",
    "load_prop99",
    "permutation_test",
    "placebo_group_test",
    "placebo_timing_test",
    "plot_event_study",
    "plot_group_effects",
    "plot_honest_event_study",
    "plot_power_curve",
    "plot_pretrends_power",
    "plot_sensitivity",
    "qug_test",
    "rake",
    "run_all_placebo_tests",
    "run_placebo_test",
    "simulate_mde",
    "simulate_power",
    "simulate_sample_size",
    "stute_test",
    "__version__",
    "survey_mean",
    "survey_total",
    "twowayfeweights",
    "yatchew_test",
]
