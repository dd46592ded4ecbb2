"""Heterogeneous adoption designs (de Chaisemartin, Ciccia, D'Haultfoeuille & Knau).

Every unit starts treatment in the same period with a dose ``D >= 0`` and no
unit (or only a few) stays untreated; the weighted average slope
``WAS = E[Y(D) - Y(0)] / E[D]`` is identified by comparing the average
outcome change with the change of the least-treated units (the limit of
``E[dY | D = d]`` as ``d`` falls to the bottom of the dose distribution).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import any_occurrence, codes_of, label_codes
from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..linalg.local_poly import local_linear_boundary
from ..results.had import HeterogeneousAdoptionResults
from ..survey.design import SurveyDesign
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_int
from .panel import (
    _first_treat,
    check_constant_within_unit,
    check_one_row_per_cell,
    number_label,
    numeric,
)
from .registry import register

DESIGNS = ("auto", "continuous_at_zero", "continuous_near_d_lower", "mass_point")
KERNELS = {"epanechnikov": "epa", "epa": "epa", "triangular": "tri", "tri": "tri",
           "uniform": "uni", "uni": "uni"}
MASS_POINT_SHARE = 0.02  # auto rule: a larger share of units at the lowest dose is a mass point
NEAR_ZERO = 0.01  # auto rule: a lowest dose below 1% of the median dose counts as zero


def _positive_or_none(v) -> bool:
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool)
                         and np.isfinite(v) and v > 0)


@register(aliases=("HAD",), data="panel", inference="influence", event_study=True,
          example=lambda: dict(outcome="y", dose="dose", time="time", unit="unit",
                               first_treat="first_treat"))
class HeterogeneousAdoptionDiD(Estimator):
    """Weighted average slope when every unit adopts with its own dose (HAD).

    de Chaisemartin, Ciccia, D'Haultfoeuille & Knau, "Difference-in-differences
    estimators when no unit remains untreated" (R ``DIDHAD``, Stata
    ``did_had``). With ``dY`` a unit's outcome change from the last period
    before adoption ``F - 1`` and ``D`` its dose:

    * ``continuous_at_zero`` (some units have doses near 0):
      ``WAS = (mean(dY) - mu(0)) / mean(D)`` with ``mu(0) = lim E[dY | D = d]``
      as ``d`` falls to 0, estimated by a local-linear regression at the
      boundary (kernel, MSE-optimal bandwidth). ``att`` uses the conventional
      local-linear intercept; the confidence interval, t statistic and
      p-value are the robust bias-corrected ones (Calonico, Cattaneo & Farrell
      2018), centred on ``att_bias_corrected``, as the paper and ``did_had``
      report them.
    * ``continuous_near_d_lower`` (doses bounded away from 0): the same at the
      lowest dose ``d_lower`` with denominator ``mean(D - d_lower)``; it
      estimates ``WAS_d_lower``, the slope relative to ``d_lower``, under
      assumptions that cannot be tested (a warning says so).
    * ``mass_point`` (many units exactly at ``d_lower``): the Wald ratio
      ``(E[dY | D > d] - E[dY | D = d]) / (E[D | D > d] - E[D | D = d])`` at
      ``d = d_lower`` (2SLS of ``dY`` on ``D`` instrumented by ``1{D > d}``).
    * ``auto``: a mass point if more than 2% of units (and at least two)
      share the lowest dose, else at zero if the lowest dose is 0 or below 1%
      of the median dose, else near ``d_lower`` (positive-weight units only).

    With more than two periods, effect ``l`` (event time ``l - 1``) uses
    ``Y_{F-1+l} - Y_{F-1}`` and the dose of period ``F-1+l``; placebo ``l``
    (event time ``-1-l``) uses ``Y_{F-1-l} - Y_{F-1}`` with the same dose;
    each horizon has its own bandwidth. ``dynamic=True`` divides by the
    cumulative dose. Influence values (one per unit and horizon) feed the
    library's inference engine: independent units, ``cluster=``, a survey
    design (Taylor linearization; sampling weights enter the means, the
    local-linear fit and the bandwidth selection), replicate weights (refits
    with the full-sample bandwidths) or a PSU multiplier bootstrap (with a
    sup-t band across horizons).

    Parameters
    ----------
    design : {"auto", "continuous_at_zero", "continuous_near_d_lower", "mass_point"}
    d_lower : float, optional
        Lowest dose (default: the smallest dose in the adoption period).
    kernel : {"epanechnikov", "triangular", "uniform"}
    h, b : float, optional
        Bandwidths of the local-linear fit and of its bias correction
        (default: MSE-optimal ``h`` and ``b = h``, as ``nprobust``; the
        selector always uses nearest-neighbour residuals, whatever ``vce``).
    vce : {None, "nn", "hc0", "hc1", "hc2", "hc3"}
        Residuals of the local-linear variance: nearest neighbours (``nn``,
        ``did_had``'s choice) or the fits' residuals. ``None``: ``nn``, or
        ``hc1`` when units are clustered (``cluster=`` or a design with PSUs),
        where nearest neighbours from the same cluster would difference out
        the cluster's shock.
    alpha : float
    cluster : str, optional
        Column, constant within unit, to cluster on (without a PSU design).
    n_bootstrap : int
        Multiplier bootstrap draws (0: analytic standard errors).
    bootstrap_weights : {"rademacher", "mammen", "webb"}
    seed : int, optional
    cband : bool
        Uniform (sup-t) band across horizons from the bootstrap (only with
        ``n_bootstrap > 0``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from diff_diff import HeterogeneousAdoptionDiD
    >>> g = np.arange(1, 401)
    >>> dose = np.modf(g * 0.6180339887498949)[0]
    >>> df = pd.DataFrame({"unit": np.repeat(g, 2), "t": np.tile([1, 2], 400),
    ...                    "d": np.column_stack([0 * dose, dose]).ravel()})
    >>> df["y"] = np.sin(df["unit"]) + 2.0 * df["d"] + 0.3 * np.cos(7.0 * df["unit"] * df["t"])
    >>> res = HeterogeneousAdoptionDiD().fit(df, outcome="y", dose="d", time="t", unit="unit")
    >>> res.design, round(res.att, 2)
    ('continuous_at_zero', 1.95)
    """

    _allowed = {
        **INFERENCE_ALLOWED,
        "design": DESIGNS,
        "kernel": tuple(KERNELS),
        "vce": (None, "nn", "hc0", "hc1", "hc2", "hc3"),
    }
    _checks = {
        **INFERENCE_CHECKS,
        "d_lower": (lambda v: v is None or (isinstance(v, numbers.Real) and np.isfinite(v)
                                            and v >= 0), "None or a non-negative number"),
        "h": (_positive_or_none, "None or a positive number"),
        "b": (_positive_or_none, "None or a positive number"),
    }
    _results_class = HeterogeneousAdoptionResults

    def __init__(
        self,
        design: str = "auto",
        d_lower: float | None = None,
        kernel: str = "epanechnikov",
        h: float | None = None,
        b: float | None = None,
        vce: str | None = None,
        alpha: float = 0.05,
        cluster: str | None = None,
        n_bootstrap: int = 0,
        bootstrap_weights: str = "rademacher",
        seed: int | None = None,
        cband: bool = True,
    ):
        self._store(locals())

    def fit(
        self,
        data: pd.DataFrame,
        outcome: str,
        dose: str,
        time: str,
        unit: str,
        first_treat: str | None = None,
        effects: int | None = None,
        placebo: int = 0,
        dynamic: bool = False,
        trends_lin: bool = False,
        covariates: list[str] | None = None,
        survey_design: SurveyDesign | None = None,
    ):
        """Estimate the weighted average slope by horizon.

        Parameters
        ----------
        data : DataFrame
            Long panel, one row per unit and period; not modified.
        outcome, dose, time, unit : str
            Columns. Doses are 0 before adoption and non-negative.
        first_treat : str, optional
            First treated period per unit (0 or inf: never). With several
            adoption periods only the last cohort and the never treated are
            kept (with a warning). Without it, the adoption period is the
            first period with a positive dose, which must be common to all
            units that are ever treated.
        effects : int, optional
            Number of post-adoption horizons (default: all).
        placebo : int
            Number of pre-adoption placebo horizons (at most ``effects`` and
            the periods before ``F - 1``).
        dynamic : bool
            Divide effect ``l`` by the mean cumulative dose over its periods
            (``continuous_at_zero`` only).
        trends_lin : bool
            Allow unit-specific linear trends (DIDHAD ``trends_lin``): effect
            ``l`` subtracts ``l (Y_{F-1} - Y_{F-2})`` from its outcome change;
            placebo ``l`` uses ``Y_{F-2-l} - Y_{F-2} + l (Y_{F-1} - Y_{F-2})``.
            Needs two periods before adoption.
        covariates : None
            Not supported (the paper's covariate extension needs a
            multivariate nonparametric fit); passing any raises.
        survey_design : SurveyDesign, optional
            A ``pweight`` design whose columns are constant within unit.

        Returns
        -------
        HeterogeneousAdoptionResults
        """
        if covariates:
            raise ValueError("HeterogeneousAdoptionDiD does not support covariates (the "
                             "paper's extension needs a multivariate nonparametric fit)")
        for name, value, low in (("effects", effects, 1), ("placebo", placebo, 0)):
            if value is not None and not is_int(value, low):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        for name, value in (("dynamic", dynamic), ("trends_lin", trends_lin)):
            if value not in (True, False):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if self.d_lower not in (None, 0) and self.design == "continuous_at_zero":
            raise ValueError("d_lower is the boundary of the near-d_lower and mass-point "
                             "designs; continuous_at_zero evaluates at 0")
        return self._fit(data, survey_design, dict(outcome=outcome, dose=dose, time=time,
                                                   unit=unit, first_treat=first_treat),
                         effects=effects, placebo=placebo, dynamic=dynamic,
                         trends_lin=trends_lin)

    def _sample(self, data, columns, **options):
        c = columns
        panel = _wide_panel(data, c["outcome"], c["dose"], c["time"], c["unit"],
                            c["first_treat"])
        return Sample((panel, options), panel.unit_rows[panel.keep], c["unit"], columns)

    def _estimate(self, sample, design):
        panel, options = sample.arrays
        weights = design.weights if design.from_survey else None
        spec = _FitSpec(kernel=KERNELS[self.kernel], h=self.h, b=self.b,
                        vce=self.vce or ("hc1" if design.clustered else "nn"))
        positive = np.ones(panel.y.shape[0], dtype=bool) if weights is None else weights > 0
        problem = HADProblem(panel, options["effects"], options["placebo"], options["dynamic"],
                             self.design, self.d_lower, options["trends_lin"], positive)
        fit = problem.estimate(weights, spec)
        # 2SLS conventions (AER::ivreg + sandwich) without a survey design: (n - 1)/(n - 2)
        factor = (fit.n_obs - 1.0) / (fit.n_obs - 2.0) if problem.design == "mass_point" else None
        estimate = Estimate(fit.att_bc, fit.psi,
                            reestimate=partial(problem.refit, spec=spec, full=fit),
                            small_sample=factor, groups=np.zeros(fit.att_bc.size),
                            name="HeterogeneousAdoptionDiD")
        return SimpleNamespace(problem=problem, fit=fit, estimate=estimate, vce=spec.vce)


@dataclass(frozen=True, eq=False)
class _FitSpec:
    kernel: str
    h: float | None
    b: float | None
    vce: str


@dataclass(frozen=True, eq=False)
class WidePanel:
    """Outcomes and doses as unit x period arrays (NaN where a unit is not observed)."""

    units: np.ndarray
    times: np.ndarray
    y: np.ndarray  # (n, T)
    d: np.ndarray  # (n, T)
    adoption: int  # index of the adoption period F
    unit_rows: np.ndarray  # a row of data per unit (all units)
    keep: np.ndarray  # bool per unit: in the analysis (staggered panels keep the last cohort)


def _wide_panel(data, outcome, dose, time, unit, first_treat) -> WidePanel:
    y = numeric(data, outcome, "outcome", allow_nan=True)
    d = numeric(data, dose, "dose", allow_nan=True)
    if (d < 0).any():
        raise ValueError(f"dose column {dose!r} has negative values")
    missing = np.isnan(y) | np.isnan(d)
    if missing.any():
        warn_user(f"HeterogeneousAdoptionDiD: dropped {int(missing.sum())} row(s) with a missing "
                  f"outcome ({outcome!r}) or dose ({dose!r}); their units are left out of the "
                  "horizons that need those periods")
    unit_code, units = label_codes(data, unit, "unit")
    time_code, times = codes_of(pd.Series(numeric(data, time, "time")))
    n, n_t = len(units), len(times)
    cell = unit_code * n_t + time_code
    check_one_row_per_cell(cell, units, times, "HeterogeneousAdoptionDiD")
    wide_y = np.full(n * n_t, np.nan)
    wide_d = np.full(n * n_t, np.nan)
    wide_y[cell], wide_d[cell] = y, d
    wide_y, wide_d = wide_y.reshape(n, n_t), wide_d.reshape(n, n_t)
    unit_rows = any_occurrence(unit_code, n)
    keep = np.ones(n, dtype=bool)
    if first_treat is not None:
        g_rows = _first_treat(data, first_treat)
        g = g_rows[check_constant_within_unit(g_rows, unit_code, units, first_treat)]
        g = np.where(g > times[-1], 0.0, g)  # first treated after the window: untreated in it
        cohorts = np.unique(g[g > 0])
        if cohorts.size == 0:
            raise ValueError(f"first_treat column {first_treat!r}: no unit is treated within "
                             "the observed periods")
        unknown = cohorts[~np.isin(cohorts, times)]
        if unknown.size:
            raise ValueError(f"first_treat column {first_treat!r} has values that are not "
                             f"observed periods: {[number_label(v) for v in unknown[:5]]}")
        if cohorts.size > 1:
            keep = (g == cohorts[-1]) | (g == 0) | (g > times[-1])
            warn_user(
                f"HeterogeneousAdoptionDiD: adoption is staggered ({cohorts.size} cohorts); "
                f"kept the last cohort ({number_label(cohorts[-1])}) and the never treated "
                f"({int(keep.sum())} of {n} units)")
        adoption = int(np.searchsorted(times, cohorts[-1]))
        if not (np.nan_to_num(wide_d[keep & (g > 0), adoption]) > 0).any():
            raise ValueError(f"no unit of the cohort first treated in "
                             f"{number_label(cohorts[-1])} has a positive dose then (dose "
                             f"column {dose!r})")
        if (np.nan_to_num(wide_d[keep & (g == 0)]) > 0).any():
            raise ValueError(f"units never treated by first_treat {first_treat!r} have positive "
                             f"doses in {dose!r}")
    else:
        treated = np.nan_to_num(wide_d) > 0
        if not treated.any():
            raise ValueError(f"dose column {dose!r} is never positive: nothing adopts")
        first = np.where(treated.any(axis=1), treated.argmax(axis=1), n_t)
        adoption = int(first.min())
        # a unit not observed in the adoption period is not a later adopter (its horizons
        # that need that period are left out)
        seen_untreated = np.isfinite(wide_d[:, adoption]) & (wide_d[:, adoption] == 0)
        late = (first < n_t) & (first != adoption) & seen_untreated
        if late.any():
            raise ValueError(
                f"HeterogeneousAdoptionDiD: units start treatment in different periods "
                f"({sorted({number_label(times[j]) for j in np.unique(first[first < n_t])})[:5]}); "
                "the design needs one adoption period (pass first_treat= to keep the last "
                "cohort and the never treated)")
    before = np.nan_to_num(wide_d[keep, :adoption])
    if (before != 0).any():
        raise ValueError(f"dose column {dose!r} must be 0 before the adoption period "
                         f"{number_label(times[adoption])}")
    if adoption < 1:
        raise ValueError("HeterogeneousAdoptionDiD needs a period before adoption")
    return WidePanel(units=units, times=times, y=wide_y[keep], d=wide_d[keep],
                     adoption=adoption, unit_rows=unit_rows, keep=keep)


@dataclass(frozen=True, eq=False)
class Horizon:
    kind: str  # "effect" or "placebo"
    lag: int  # l
    event_time: int
    outcome_change: np.ndarray  # (n,) NaN where not observed
    regressor: np.ndarray  # (n,) dose of period F-1+l
    denominator: np.ndarray  # (n,) dose (or cumulative dose) entering the mean


@dataclass(frozen=True, eq=False)
class HADEstimate:
    att: np.ndarray  # (L,) conventional estimates
    att_bc: np.ndarray  # (L,) bias-corrected (the intervals' centres)
    psi: np.ndarray  # (n_units, L) influence values of att_bc, sum scale
    bandwidth: np.ndarray  # (L,) h (NaN for the mass point)
    bias_bandwidth: np.ndarray  # (L,) b
    n_obs: np.ndarray  # (L,) units used
    n_in_bandwidth: np.ndarray  # (L,) units with dose within h of the boundary
    dose_mean: np.ndarray  # (L,) denominators
    qug: np.ndarray  # (L, 2) QUG statistic and p-value (effects; NaN for placebos)


class HADProblem:
    """The horizons of one fit; :meth:`estimate` runs them for any unit weights."""

    def __init__(self, panel: WidePanel, effects, placebo, dynamic, design, d_lower,
                 trends_lin=False, positive=None):
        f = panel.adoption
        n_t = panel.times.size
        if trends_lin and f < 2:
            raise ValueError("trends_lin=True needs two periods before adoption (F >= 3)")
        max_effects = n_t - f
        if effects is None:
            effects = max_effects
        elif effects > max_effects:
            warn_user(f"HeterogeneousAdoptionDiD: effects={effects} reduced to "
                      f"{max_effects} (periods after adoption)")
            effects = max_effects
        max_placebo = min(f - 2 if trends_lin else f - 1, effects)
        if placebo > max_placebo:
            warn_user(f"HeterogeneousAdoptionDiD: placebo={placebo} reduced to "
                      f"{max_placebo} (periods before the base period, and at most the "
                      "effects)")
            placebo = max_placebo
        self.panel = panel
        self.dynamic = dynamic
        dose_f = panel.d[:, f]
        usable = np.isfinite(dose_f) if positive is None else np.isfinite(dose_f) & positive
        self.design, self.d_lower = _resolve_design(dose_f[usable], design, d_lower)
        if dynamic and self.design != "continuous_at_zero":
            raise ValueError("dynamic=True is defined for the continuous_at_zero design only")
        if self.design == "continuous_near_d_lower":
            warn_user(
                "HeterogeneousAdoptionDiD: no dose near 0 - the target is WAS_d_lower (the "
                "slope relative to the lowest dose), identified under assumptions that "
                "cannot be tested")
        y = panel.y
        # unit-specific linear trends (DIDHAD trends_lin): remove l times the last pre-period
        # change from effect l, and compare placebos with F - 2 instead of F - 1
        slope = y[:, f - 1] - y[:, f - 2] if trends_lin else 0.0
        horizons = []
        for lag in range(1, effects + 1):
            x = panel.d[:, f - 1 + lag]
            den = np.sum(panel.d[:, f:f + lag], axis=1) if dynamic else x
            change = y[:, f - 1 + lag] - y[:, f - 1] - lag * slope
            horizons.append(Horizon("effect", lag, lag - 1, change, x, den))
        for lag in range(1, placebo + 1):
            effect = horizons[lag - 1]
            if trends_lin:
                change = y[:, f - 2 - lag] - y[:, f - 2] + lag * slope
            else:
                change = y[:, f - 1 - lag] - y[:, f - 1]
            horizons.append(Horizon("placebo", lag, -1 - lag, change, effect.regressor,
                                    effect.denominator))
        self.horizons = sorted(horizons, key=lambda hz: hz.event_time)

    @property
    def n_units(self) -> int:
        return self.panel.y.shape[0]

    def estimate(self, weights, spec) -> HADEstimate:
        n, k = self.n_units, len(self.horizons)
        out = {name: np.full(k, np.nan) for name in
               ("att", "att_bc", "bandwidth", "bias_bandwidth", "dose_mean")}
        psi = np.zeros((n, k))
        n_obs = np.zeros(k, dtype=np.int64)
        n_bw = np.zeros(k, dtype=np.int64)
        qug = np.full((k, 2), np.nan)
        for j, hz in enumerate(self.horizons):
            ok = np.isfinite(hz.outcome_change) & np.isfinite(hz.regressor) \
                & np.isfinite(hz.denominator)
            if weights is not None:
                ok &= weights > 0
            rows = np.flatnonzero(ok)
            w = None if weights is None else weights[rows]
            res = self._fit_horizon(hz, rows, w, spec)
            for name in out:
                out[name][j] = res[name]
            psi[rows, j] = res["psi"]
            n_obs[j] = rows.size
            n_bw[j] = res["n_bw"]
            if hz.kind == "effect":
                qug[j] = qug_test(hz.regressor[rows])
        return HADEstimate(psi=psi, n_obs=n_obs, n_in_bandwidth=n_bw, qug=qug, **out)

    def _fit_horizon(self, hz, rows, w, spec, h=None, b=None) -> dict:
        dy, x, den = hz.outcome_change[rows], hz.regressor[rows], hz.denominator[rows]
        wt = np.ones(rows.size) if w is None else w
        y_mean = np.average(dy, weights=wt)
        if self.design == "mass_point":
            return _mass_point(dy, x, wt, self.d_lower)
        c = 0.0 if self.design == "continuous_at_zero" else self.d_lower
        d_mean = np.average(den - c, weights=wt)
        if not d_mean > 0:
            raise ValueError(f"HeterogeneousAdoptionDiD: horizon {hz.event_time}: the mean "
                             "dose above the boundary is 0")
        fit = local_linear_boundary(x, dy, c, weights=w, kernel=spec.kernel,
                                    h=spec.h if h is None else h, b=spec.b if b is None else b,
                                    vce=spec.vce)
        return {"att": (y_mean - fit.mu_us) / d_mean, "att_bc": (y_mean - fit.mu_bc) / d_mean,
                "psi": -fit.influence / d_mean, "bandwidth": fit.h, "bias_bandwidth": fit.b,
                "dose_mean": d_mean, "n_bw": int(np.sum(x - c <= fit.h))}

    def refit(self, unit_weights, spec, full: HADEstimate) -> np.ndarray:
        """Bias-corrected estimates under other unit weights, bandwidths held fixed."""
        out = np.full(len(self.horizons), np.nan)
        for j, hz in enumerate(self.horizons):
            ok = np.isfinite(hz.outcome_change) & np.isfinite(hz.regressor) \
                & np.isfinite(hz.denominator) & (unit_weights > 0)
            rows = np.flatnonzero(ok)
            h = None if np.isnan(full.bandwidth[j]) else full.bandwidth[j]
            b = None if np.isnan(full.bias_bandwidth[j]) else full.bias_bandwidth[j]
            out[j] = self._fit_horizon(hz, rows, unit_weights[rows], spec, h, b)["att_bc"]
        return out


def _resolve_design(dose, design, d_lower):
    """The design and the lowest dose (the auto rule is described on the class)."""
    if dose.size == 0:
        raise ValueError("HeterogeneousAdoptionDiD: no dose observed in the adoption period")
    low = float(dose.min()) if d_lower is None else float(d_lower)
    if d_lower is not None and (dose < low).any():
        raise ValueError(f"d_lower={d_lower} is above the smallest dose {dose.min():g}")
    at_low = int(np.sum(dose == low))
    if design == "auto":
        if at_low >= 2 and at_low > MASS_POINT_SHARE * dose.size:
            design = "mass_point"
        elif low == 0 or low < NEAR_ZERO * np.median(np.abs(dose)):
            design = "continuous_at_zero"
        else:
            design = "continuous_near_d_lower"
    elif design != "mass_point" and at_low >= 2 and at_low >= 0.1 * dose.size:
        warn_user(
            f"HeterogeneousAdoptionDiD: {at_low} of {dose.size} units have exactly the lowest "
            f"dose {low:g}; a local-linear fit at the boundary sees a mass point there - "
            "consider design='mass_point'")
    if design == "continuous_at_zero":
        low = 0.0
    return design, low


def _mass_point(dy, x, w, d_lower) -> dict:
    """Wald ratio at the mass point and its influence values (2SLS with intercept)."""
    z = (x > d_lower).astype(float)
    wz = np.average(z, weights=w)
    y_mean, x_mean = np.average(dy, weights=w), np.average(x, weights=w)
    s_zd = np.sum(w * (z - wz) * (x - x_mean))
    if not abs(s_zd) > 0:
        raise ValueError("HeterogeneousAdoptionDiD: mass_point design with no unit above "
                         "d_lower (or none at it)")
    beta = np.sum(w * (z - wz) * (dy - y_mean)) / s_zd
    resid = (dy - y_mean) - beta * (x - x_mean)
    psi = w * (z - wz) * resid / s_zd
    return {"att": beta, "att_bc": beta, "psi": psi, "bandwidth": np.nan,
            "bias_bandwidth": np.nan, "dose_mean": np.average(x - d_lower, weights=w),
            "n_bw": int(np.sum(x <= d_lower))}


def qug_test(dose) -> tuple[float, float]:
    """QUG test of a quasi-untreated group: ``T = D_(1) / (D_(2) - D_(1))`` over the
    positive doses, ``p = 1 / (1 + T)`` (small p: the lowest doses are not near 0).

    Parameters
    ----------
    dose : array_like
        Each unit's dose; zeros and NaN are ignored.

    Returns
    -------
    tuple of float
        The statistic ``T`` and its p-value.
    """
    positive = np.sort(np.asarray(dose, dtype=float)[np.asarray(dose) > 0])
    if positive.size < 2:
        return np.nan, np.nan
    gap = positive[1] - positive[0]
    t = np.inf if gap == 0 else positive[0] / gap
    return float(t), float(1.0 / (1.0 + t))
