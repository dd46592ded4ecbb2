"""Gardner's (2022) two-stage DiD, with the GMM variance of Butts & Gardner (2022)."""

from __future__ import annotations

from ..results.imputation import TwoStageDiDResults
from .base import INFERENCE_ALLOWED
from .imputation import ImputationDiD
from .registry import register


@register(data="panel", inference="influence", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", first_treat="first_treat"))
class TwoStageDiD(ImputationDiD):
    """Two-stage difference-in-differences (Gardner 2022; R ``did2s``).

    Stage 1 fits unit and period effects (and covariates) on the untreated
    observations; stage 2 regresses the outcome net of those effects on the
    treatment (overall ATT) or on event-time indicators (event study) over all
    observations. The points equal :class:`~diff_diff.ImputationDiD`'s exactly
    (Borusyak, Jaravel & Spiess 2024 show the equivalence). Standard errors
    are the GMM sandwich that carries the first stage's estimation error
    (Butts & Gardner 2022): the linearization of both stages, which is the
    imputation estimator's influence function centred on each estimate
    (``ImputationDiD(aux_partition="estimand")``). They go through the
    library's engine, so clusters, survey designs (Taylor linearization,
    replicate refits) and the PSU multiplier bootstrap all work; without a
    design they equal R ``did2s`` / pyfixest ``did2s`` clustered by unit up to
    the engine's ``G/(G-1)`` factor.

    Parameters
    ----------
    anticipation : int
        Periods before ``first_treat`` already affected (treated in stage 2).
    alpha : float
    cluster : str, optional
        Column (constant within unit) to cluster on, without a survey design
        (default: units).
    n_bootstrap : int
        PSU multiplier bootstrap draws (0: analytic standard errors).
    bootstrap_weights : {"rademacher", "mammen", "webb"}
    seed : int, optional
    horizon_max : int, optional
        Largest event time in the event study.
    pretrends : bool
        diff-diff 3.x: ``False`` only; the pre-trend test is
        :meth:`~diff_diff.results.imputation.ImputationDiDResults.pretrend_test`
        on the untreated observations.
    cband : bool
        Uniform band for the event study from the bootstrap.
    vcov_type : {"hc1"}
        Accepted for diff-diff 3.x compatibility.
    rank_deficient_action : {"warn", "error", "silent"}
        Covariates collinear with the effects in stage 1 are dropped with a
        warning, raise, or are dropped silently.

    Examples
    --------
    >>> import diff_diff as dd
    >>> d = dd.load_mpdta()
    >>> two = dd.TwoStageDiD().fit(d, outcome="lemp", unit="countyreal", time="year",
    ...                            first_treat="first.treat")
    >>> bjs = dd.ImputationDiD().fit(d, outcome="lemp", unit="countyreal", time="year",
    ...                              first_treat="first.treat")
    >>> abs(two.att - bjs.att) < 1e-12
    True
    """

    aux_partition = "estimand"  # the GMM linearization centres each estimand on itself
    leave_one_out = False
    _allowed = {**INFERENCE_ALLOWED, "pretrends": (False,),
                "rank_deficient_action": ImputationDiD._allowed["rank_deficient_action"]}
    _results_class = TwoStageDiDResults  # the value checks (_checks) are ImputationDiD's

    def __init__(
        self,
        anticipation: int = 0,
        alpha: float = 0.05,
        cluster: str | None = None,
        n_bootstrap: int = 0,
        bootstrap_weights: str = "rademacher",
        seed: int | None = None,
        horizon_max: int | None = None,
        pretrends: bool = False,
        cband: bool = True,
        vcov_type: str = "hc1",
        rank_deficient_action: str = "warn",
    ):
        self._store(locals())
