"""What a survey-aware result reports about its design: :class:`SurveyMetadata`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .resolved import ResolvedDesign


@dataclass
class SurveyMetadata:
    """Summary of the survey design behind a result.

    Weight summaries use the raw (as supplied) weights of the rows with
    positive weight that the estimate uses.

    Attributes
    ----------
    weight_type : str
    effective_n : float
        Kish effective sample size ``(sum w)^2 / sum w^2``.
    design_effect : float
        Kish design effect from unequal weighting, ``n sum w^2 / (sum w)^2``
        (equal weights give 1). Not a variance ratio: see ``estimate_deff``.
    sum_weights : float
        Sum of the raw weights.
    n_obs : int
        Rows with positive weight.
    n_strata, n_psu : int or None
        Strata and PSUs with positive weight (one stratum when unstratified,
        one PSU per row without a PSU column); ``None`` for replicate
        designs, whose structure the replicates hide.
    weight_range : (float, float)
        Smallest and largest positive raw weight.
    df_survey : float
        Design degrees of freedom used for t inference.
    replicate_method : str or None
    n_replicates : int or None
    lonely_psu : str
    n_lonely_strata : int
        Strata with a single sampled PSU.
    variance_method : str or None
        How the result's variance was computed (``tsl``, ``replicate``,
        ``bootstrap``).
    estimate_deff : dict or None
        Per-estimate design effects: design variance divided by the variance
        of the same influence values under independent sampling with the same
        weights (the misspecification effect of Skinner 1989).
    """

    weight_type: str
    effective_n: float
    design_effect: float
    sum_weights: float
    n_obs: int
    n_strata: int | None
    n_psu: int | None
    weight_range: tuple[float, float]
    df_survey: float
    replicate_method: str | None = None
    n_replicates: int | None = None
    lonely_psu: str = "remove"
    n_lonely_strata: int = 0
    variance_method: str | None = None
    estimate_deff: dict | None = field(default=None)

    def summary_items(self) -> list[tuple[str, object]]:
        """The design lines of a result's summary, as (key, value) pairs."""
        if self.replicate_method is not None:
            layout = ("Replicates", f"{self.n_replicates} ({self.replicate_method})")
        else:
            layout = ("Strata / PSUs", f"{self.n_strata} / {self.n_psu}")
        return [("Weight type", self.weight_type), layout,
                ("Sum of weights", self.sum_weights), ("Kish effective n", self.effective_n),
                ("Kish design effect (weights)", self.design_effect),
                ("Design degrees of freedom", self.df_survey)]

    @classmethod
    def from_design(
        cls,
        design: ResolvedDesign,
        variance_method: str | None = None,
        estimate_deff: dict | None = None,
    ) -> "SurveyMetadata":
        """Metadata of the rows of ``design`` with positive weight.

        Parameters
        ----------
        design : ResolvedDesign
            The resolved design.
        variance_method : str, optional
            How the variance was computed (recorded as given).
        estimate_deff : dict, optional
            Design effects of the estimates, recorded as given.

        Returns
        -------
        SurveyMetadata
        """
        inset = design.weights > 0
        w = design.raw_weights[inset]
        sum_w = float(w.sum())
        sum_w2 = float(np.square(w).sum())
        n = int(inset.sum())
        if design.replicate is None:
            psus = design.psus_with_weight()
            n_strata = int(np.unique(design.psu_stratum[psus]).size)
            n_psu = int(psus.size)
            if design.psu_multiplicity is not None:
                n_psu = int(np.rint(design.psu_multiplicity[psus].sum()))
            lonely = int(((design.stratum_n_psu == 1) & (design.stratum_fpc > 0)).sum())
            method, n_rep = None, None
        else:
            n_strata = n_psu = None
            lonely = 0
            method, n_rep = design.replicate.method, design.replicate.n_replicates
        return cls(
            weight_type=design.weight_type,
            effective_n=sum_w**2 / sum_w2 if sum_w2 > 0 else float(n),
            design_effect=n * sum_w2 / sum_w**2 if sum_w > 0 else 1.0,
            sum_weights=sum_w,
            n_obs=n,
            n_strata=n_strata,
            n_psu=n_psu,
            weight_range=(float(w.min()), float(w.max())) if n else (np.nan, np.nan),
            df_survey=float(design.df),
            replicate_method=method,
            n_replicates=n_rep,
            lonely_psu=design.lonely_psu,
            n_lonely_strata=lonely,
            variance_method=variance_method,
            estimate_deff=estimate_deff,
        )
