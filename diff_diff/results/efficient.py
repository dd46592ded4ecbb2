"""Results of :class:`~diff_diff.EfficientDiD` and its Hausman pretest."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .callaway_santanna import CallawaySantAnnaResults
from .table import integer_labels


class EfficientDiDResults(CallawaySantAnnaResults):
    """Efficient ATT(g, t), their aggregations and the GLS weights behind them.

    The headline (``att``, ``se``, ...) is the cohort-size weighted average of
    the post-treatment ATT(g, t); ``group_time_effects``,
    ``event_study_effects``, ``group_effects`` and :meth:`aggregate` are as for
    :class:`CallawaySantAnnaResults`.

    Attributes
    ----------
    pt_assumption : str
    efficient_weights : DataFrame
        One row per cell and moment: the comparison cohort (``comparison``;
        0 = the comparison group), its period ``baseline`` and the GLS weight
        (with covariates the weights depend on X: the column holds their
        average over the target cohort, weighted by the unit weights).
    omega_condition_numbers : DataFrame
        Condition number of each cell's moment covariance (scaled to unit
        diagonal; with covariates that of ``Omega*(X)`` averaged over the target
        cohort) and the number of moments; with covariates also
        ``n_not_definite``, the number of distinct covariate values at which
        the series estimate of ``Omega*(X)`` was not positive definite and the
        cohort average stood in for it.
    estimation_path : {"nocov", "dr"}
        ``"dr"`` when fitted with covariates (doubly robust sieve path).
    covariates : list of str
        The baseline covariates (empty without).
    sieve_order : int or None
        Polynomial order of the series basis used (chosen or given); None
        without covariates.
    """

    _settings = ("pt_assumption", "control_group", "anticipation", "omega_ridge")
    _title = "Efficient DiD group-time ATTs (Chen, Sant'Anna & Xie 2025)"

    def _setup(self, est, f) -> None:
        super()._setup(est, f)
        self.covariates = list(f.covariates or [])
        self.estimation_path = "dr" if self.covariates else "nocov"
        self.sieve_order = f.sieve_order
        cells = self._cells
        rows = []
        for c, ((labels, _), lam) in enumerate(zip(f.moments, f.moment_weights)):
            for (gp, base), weight in zip(labels, lam):
                rows.append((cells.group[c], cells.time[c], gp, base, weight))
        frame = pd.DataFrame(rows, columns=["group", "time", "comparison", "baseline", "weight"])
        for col in ("group", "time", "comparison", "baseline"):
            frame[col] = integer_labels(frame[col].to_numpy())
        self._efficient_weights = frame
        self._condition = pd.DataFrame({
            "group": integer_labels(cells.group), "time": integer_labels(cells.time),
            "n_moments": [len(labels) for labels, _ in f.moments],
            "condition_number": f.condition})
        if f.not_definite is not None:
            self._condition["n_not_definite"] = f.not_definite

    @property
    def efficient_weights(self) -> pd.DataFrame:
        """One row per cell and moment: comparison cohort, baseline and GLS weight (a copy)."""
        return self._efficient_weights.copy()

    @property
    def omega_condition_numbers(self) -> pd.DataFrame:
        """Condition numbers of each cell's moment covariance (a copy)."""
        return self._condition.copy()

    def _info(self) -> list:
        moments = self._condition["n_moments"]
        replaced = []
        if "n_not_definite" in self._condition and self._condition["n_not_definite"].sum() > 0:
            per_cell = self._condition["n_not_definite"]
            # the series Omega*(X) was not positive definite there: the cohort average stood in
            replaced = [("Omega*(X) -> cohort average",
                         f"{int(per_cell.sum())} covariate values, "
                         f"{int((per_cell > 0).sum())} of {len(per_cell)} cells")]
        return [
            ("Parallel trends", "all periods and cohorts (PT-All)" if self.pt_assumption == "all"
             else "post-treatment only (PT-Post)"),
            ("Comparison group", self.control_group),
            ("Anticipation", self.anticipation),
            ("Covariates", (f"{', '.join(self.covariates)} (series order {self.sieve_order})"
                            if self.covariates else "none")),
            ("Moments per cell", f"{moments.min()} to {moments.max()}"),
            ("Units (treated / comparison)",
             f"{self.n_units} ({self.n_treated_units} / {self.n_control_units})"),
            ("Observations", self.n_obs),
        ] + replaced


@dataclass
class HausmanPretestResult:
    """Hausman pretest of PT-All against PT-Post.

    Attributes
    ----------
    statistic : float
        ``d' V^+ d`` over the post-treatment event-study differences.
    p_value : float
        Chi-square with ``df`` degrees of freedom.
    df : int
        Rank of ``V``.
    reject : bool
        ``p_value < alpha``.
    alpha : float
    att_all, att_post : float
        Overall ATT under each assumption.
    recommendation : {"pt_all", "pt_post", "inconclusive"}
    gt_details : DataFrame or None
        Per event time: ``es_all``, ``es_post``, ``delta`` and its standard error.
    """

    statistic: float
    p_value: float
    df: int
    reject: bool
    alpha: float
    att_all: float
    att_post: float
    recommendation: str
    gt_details: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return (f"HausmanPretestResult(H={self.statistic:.3f}, p={self.p_value:.4f}, "
                f"df={self.df}, recommend={self.recommendation})")

    def summary(self) -> str:
        """A short text report."""
        lines = ["Hausman pretest: parallel trends in all periods (PT-All) vs post only",
                 f"  H = {self.statistic:.4g} on {self.df} df, p = {self.p_value:.4g}",
                 f"  overall ATT: {self.att_all:.4g} (PT-All), {self.att_post:.4g} (PT-Post)",
                 "  " + {"pt_all": "no evidence against PT-All: its efficient estimates apply",
                         "pt_post": f"PT-All rejected at {self.alpha:g}: use pt_assumption='post'",
                         "inconclusive": "no common post-treatment event time to compare"}[
                     self.recommendation]]
        if self.gt_details is not None:
            lines.append(self.gt_details.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return "\n".join(lines)

