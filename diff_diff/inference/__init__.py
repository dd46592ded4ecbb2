"""The one inference engine: influence values + survey design -> variance, df, t, p, CI.

Estimators never compute a standard error themselves: they return an
:class:`Estimate` (estimates, influence values, a re-estimate function) and
:class:`Inference` turns it into covariances under any design.
:func:`design_variance` is the same engine for a bare influence matrix.
"""

from .bootstrap import MULTIPLIERS, draw_multipliers, multiplier_bootstrap
from .engine import (
    Variance,
    cluster_variance,
    design_effects,
    design_variance,
    iid_variance,
    influence_from_scores,
)
from .estimate import Estimate, Inference
from .intervals import (
    bootstrap_p_value,
    bootstrap_se,
    percentile_interval,
    sup_t_critical,
    t_inference,
    wald_test,
)
from .replicate import (
    replicate_estimates_by_refit,
    replicate_estimates_from_influence,
    replicate_vcov_from_estimates,
)
from .tsl import domain_tsl_variance, psu_totals, tsl_vcov, tsl_vcov_from_totals

__all__ = [
    "MULTIPLIERS",
    "Estimate",
    "Inference",
    "Variance",
    "bootstrap_p_value",
    "bootstrap_se",
    "cluster_variance",
    "design_effects",
    "design_variance",
    "domain_tsl_variance",
    "draw_multipliers",
    "iid_variance",
    "influence_from_scores",
    "multiplier_bootstrap",
    "percentile_interval",
    "psu_totals",
    "replicate_estimates_by_refit",
    "replicate_estimates_from_influence",
    "replicate_vcov_from_estimates",
    "sup_t_critical",
    "t_inference",
    "tsl_vcov",
    "tsl_vcov_from_totals",
    "wald_test",
]
