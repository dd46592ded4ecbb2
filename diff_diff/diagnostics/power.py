"""Power, minimum detectable effect and sample size for difference-in-differences,
analytic (with a survey design effect) and by simulation (any registered estimator,
optionally on a simulated stratified cluster sample).

Analytic variance of the DiD estimate with ``n_pre`` pre- and ``n_post`` post-periods,
outcome variance ``sigma^2``, within-unit correlation ``rho`` between periods
(equicorrelated; Burlig, Preonas & Woerman 2020) and design effect ``deff``::

    Var = deff * sigma^2 (1/n_treated + 1/n_control) (1/n_pre + 1/n_post) (1 - rho)

(for one pre and one post period ``2 sigma^2 (1 - rho) (1/n_t + 1/n_c)``). Power is
exact for the normal test (both tails for ``"two-sided"``); the MDE and the sample size
solve ``power = target`` exactly (the usual ``(z_{1-alpha/2} + z_power) se`` drops the
far tail and is slightly conservative). The design effect of a survey design is the
ratio of its variance to that of a simple random sample of the same size; estimate it
on a pilot with ``survey_mean(..., deff=True)`` or take it from a comparable study.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._lazy import optimize, stats
from .._warnings import warn_user

ALTERNATIVES = ("two-sided", "greater", "less")


def _check_positive(**values):
    for name, value in values.items():
        if not (isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
                and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def _variance(sigma, n_treated, n_control, n_pre, n_post, rho, deff):
    _check_positive(sigma=sigma, n_treated=n_treated, n_control=n_control, n_pre=n_pre,
                    n_post=n_post, deff=deff)
    if not -1 < rho < 1:
        raise ValueError(f"rho must be in (-1, 1), got {rho!r}")
    groups, periods = 1 / n_treated + 1 / n_control, 1 / n_pre + 1 / n_post
    return deff * sigma ** 2 * groups * periods * (1 - rho)


def _power(effect, se, alpha, alternative):
    if alternative == "two-sided":
        z = stats.norm.isf(alpha / 2)
        return float(stats.norm.sf(z - effect / se) + stats.norm.cdf(-z - effect / se))
    z = stats.norm.isf(alpha)
    sign = 1.0 if alternative == "greater" else -1.0
    return float(stats.norm.sf(z - sign * effect / se))


@dataclass
class PowerResults:
    """An analytic power calculation (every input and the three answers)."""

    power: float
    mde: float
    required_n: int | None
    effect_size: float | None
    alpha: float
    alternative: str
    n_treated: float
    n_control: float
    n_pre: int
    n_post: int
    sigma: float
    rho: float
    deff: float
    se: float
    design: str

    def summary(self) -> str:
        """The inputs and the answer as text (what ``print(result)`` shows).

        Returns
        -------
        str
        """
        lines = [f"DiD power analysis ({self.design}, {self.alternative}, alpha = {self.alpha:g})",
                 "=" * 64,
                 f"{'Treated / control units:':<30}{self.n_treated:g} / {self.n_control:g}",
                 f"{'Periods pre / post:':<30}{self.n_pre} / {self.n_post}",
                 f"{'sigma, rho, design effect:':<30}{self.sigma:g}, {self.rho:g}, {self.deff:g}",
                 f"{'Standard error of the DiD:':<30}{self.se:.6g}",
                 f"{'Power:':<30}{self.power:.4f}"
                 + (f" against effect {self.effect_size:g}" if self.effect_size is not None
                    else ""),
                 f"{'Minimum detectable effect:':<30}{self.mde:.6g}"]
        if self.required_n is not None:
            lines.append(f"{'Required units (total):':<30}{self.required_n}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """Every field as a dict.

        Returns
        -------
        dict
        """
        return dict(self.__dict__)


class PowerAnalysis:
    """Analytic power, MDE and sample size of a DiD (module docstring).

    Parameters
    ----------
    alpha : float
        Test level.
    power : float
        Target power for :meth:`mde` and :meth:`sample_size`.
    alternative : {"two-sided", "greater", "less"}

    Examples
    --------
    >>> import diff_diff as dd
    >>> pa = dd.PowerAnalysis()
    >>> round(pa.mde(n_treated=50, n_control=50, sigma=1.0).mde, 4)
    0.7924
    >>> pa.sample_size(effect_size=0.5, sigma=1.0, deff=1.8).required_n
    453
    """

    def __init__(self, alpha: float = 0.05, power: float = 0.8, alternative: str = "two-sided"):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if not 0 < power < 1:
            raise ValueError(f"power must be in (0, 1), got {power!r}")
        if alternative not in ALTERNATIVES:
            raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
        self.alpha, self.target, self.alternative = float(alpha), float(power), alternative

    def _effect_for(self, se):
        """The smallest effect (in the tested direction) with power ``target``."""
        if self.target <= _power(0.0, se, self.alpha, self.alternative):
            return 0.0
        sign = -1.0 if self.alternative == "less" else 1.0
        upper = (stats.norm.isf(self.alpha / 2) + stats.norm.ppf(self.target) + 1) * se
        root = optimize.brentq(lambda e: _power(sign * e, se, self.alpha, self.alternative)
                               - self.target, 0.0, upper, xtol=1e-14 * se, rtol=1e-14)
        return sign * root

    def _result(self, power, mde, required_n, effect, n_t, n_c, n_pre, n_post, sigma, rho,
                deff, se):
        design = "2x2" if n_pre == 1 and n_post == 1 else "panel"
        return PowerResults(power=power, mde=mde, required_n=required_n, effect_size=effect,
                            alpha=self.alpha, alternative=self.alternative, n_treated=n_t,
                            n_control=n_c, n_pre=n_pre, n_post=n_post, sigma=sigma, rho=rho,
                            deff=deff, se=se, design=design)

    def mde(self, n_treated, n_control, sigma, n_pre: int = 1, n_post: int = 1, rho: float = 0.0,
            deff: float = 1.0) -> PowerResults:
        """The minimum detectable effect with the target power.

        Parameters
        ----------
        n_treated, n_control : int
            Treated and control units.
        sigma : float
            Standard deviation of the outcome.
        n_pre, n_post : int, default 1
            Pre- and post-treatment periods.
        rho : float, default 0.0
            Within-unit correlation of the outcome between periods, in (-1, 1).
        deff : float, default 1.0
            Design effect of the survey design (1: simple random sampling).

        Returns
        -------
        PowerResults
            ``mde``, with the inputs.

        Raises
        ------
        ValueError
            If a count, ``sigma`` or ``deff`` is not positive, or ``rho`` is outside (-1, 1).
        """
        se = math.sqrt(_variance(sigma, n_treated, n_control, n_pre, n_post, rho, deff))
        mde = self._effect_for(se)
        return self._result(_power(mde, se, self.alpha, self.alternative), mde, None, None,
                            n_treated, n_control, n_pre, n_post, sigma, rho, deff, se)

    def power(self, effect_size, n_treated, n_control, sigma, n_pre: int = 1, n_post: int = 1,
              rho: float = 0.0, deff: float = 1.0) -> PowerResults:
        """Power against ``effect_size``.

        Parameters
        ----------
        effect_size : float
            The true effect to detect.
        n_treated, n_control : int
            Treated and control units.
        sigma : float
            Standard deviation of the outcome.
        n_pre, n_post : int, default 1
            Pre- and post-treatment periods.
        rho : float, default 0.0
            Within-unit correlation of the outcome between periods, in (-1, 1).
        deff : float, default 1.0
            Design effect of the survey design (1: simple random sampling).

        Returns
        -------
        PowerResults
            ``power``, with the inputs.

        Raises
        ------
        ValueError
            If a count, ``sigma`` or ``deff`` is not positive, or ``rho`` is outside (-1, 1).
        """
        se = math.sqrt(_variance(sigma, n_treated, n_control, n_pre, n_post, rho, deff))
        return self._result(_power(float(effect_size), se, self.alpha, self.alternative),
                            self._effect_for(se), None, float(effect_size), n_treated,
                            n_control, n_pre, n_post, sigma, rho, deff, se)

    def sample_size(self, effect_size, sigma, n_pre: int = 1, n_post: int = 1, rho: float = 0.0,
                    deff: float = 1.0, treat_frac: float = 0.5) -> PowerResults:
        """The smallest total number of units (``treat_frac`` of them treated, rounded to
        whole units) with the target power against ``effect_size``.

        Parameters
        ----------
        effect_size : float
            The true effect to detect.
        sigma : float
            Standard deviation of the outcome.
        n_pre, n_post : int, default 1
            Pre- and post-treatment periods.
        rho : float, default 0.0
            Within-unit correlation of the outcome between periods, in (-1, 1).
        deff : float, default 1.0
            Design effect of the survey design (1: simple random sampling).
        treat_frac : float, default 0.5
            Share of the units treated.

        Returns
        -------
        PowerResults
            ``required_n`` (and the treated and control counts), with the inputs.

        Raises
        ------
        ValueError
            If a count, ``sigma`` or ``deff`` is not positive, or ``rho`` is outside (-1, 1).
        """
        effect = float(effect_size)
        if effect == 0 or not math.isfinite(effect):
            raise ValueError(f"effect_size must be a nonzero number, got {effect_size!r}")
        if not 0 < treat_frac < 1:
            raise ValueError(f"treat_frac must be in (0, 1), got {treat_frac!r}")

        def power_at(n):
            n_t = max(1, round(treat_frac * n))
            n_c = max(1, n - n_t)
            se = math.sqrt(_variance(sigma, n_t, n_c, n_pre, n_post, rho, deff))
            return _power(effect, se, self.alpha, self.alternative), n_t, n_c, se

        unit_se = math.sqrt(_variance(sigma, treat_frac, 1 - treat_frac, n_pre, n_post, rho,
                                      deff))  # se = unit_se / sqrt(n)
        if _power(effect, unit_se * 1e-9, self.alpha, self.alternative) < self.target:
            raise ValueError("the effect has the wrong sign for this one-sided alternative")
        guess = (self._effect_for(unit_se) / effect) ** 2
        n = max(2, math.floor(guess) - 2)
        while power_at(n)[0] < self.target:
            n += 1
        while n > 2 and power_at(n - 1)[0] >= self.target:
            n -= 1
        power, n_t, n_c, se = power_at(n)
        return self._result(power, self._effect_for(se), int(n), effect, n_t, n_c, n_pre,
                            n_post, sigma, rho, deff, se)

    def power_curve(self, n_treated, n_control, sigma, effect_sizes=None, n_pre: int = 1,
                    n_post: int = 1, rho: float = 0.0, deff: float = 1.0) -> pd.DataFrame:
        """Power by effect size (default: 0 to 2.5 MDE): columns ``effect_size``, ``power``.

        Parameters
        ----------
        n_treated, n_control : int
            Treated and control units.
        sigma : float
            Standard deviation of the outcome.
        effect_sizes : sequence of float, optional
            The effects to evaluate; default 0 to 2.5 times the MDE.
        n_pre, n_post : int, default 1
            Pre- and post-treatment periods.
        rho : float, default 0.0
            Within-unit correlation of the outcome between periods, in (-1, 1).
        deff : float, default 1.0
            Design effect of the survey design (1: simple random sampling).

        Returns
        -------
        DataFrame
        """
        base = self.mde(n_treated, n_control, sigma, n_pre, n_post, rho, deff)
        if effect_sizes is None:
            effect_sizes = np.linspace(0.0, 2.5 * base.mde, 51)
        sizes = np.asarray(effect_sizes, float).ravel()
        return pd.DataFrame({"effect_size": sizes,
                             "power": [_power(e, base.se, self.alpha, self.alternative)
                                       for e in sizes]})

    def sample_size_curve(self, effect_sizes, sigma, n_pre: int = 1, n_post: int = 1,
                          rho: float = 0.0, deff: float = 1.0,
                          treat_frac: float = 0.5) -> pd.DataFrame:
        """Required units by effect size: columns ``effect_size``, ``required_n``.

        Parameters
        ----------
        effect_sizes : sequence of float
            The effects to evaluate.
        sigma : float
            Standard deviation of the outcome.
        n_pre, n_post : int, default 1
            Pre- and post-treatment periods.
        rho : float, default 0.0
            Within-unit correlation of the outcome between periods, in (-1, 1).
        deff : float, default 1.0
            Design effect of the survey design (1: simple random sampling).
        treat_frac : float, default 0.5
            Share of the units treated.

        Returns
        -------
        DataFrame
        """
        sizes = np.asarray(effect_sizes, float).ravel()
        return pd.DataFrame({"effect_size": sizes, "required_n": [
            self.sample_size(e, sigma, n_pre, n_post, rho, deff, treat_frac).required_n
            for e in sizes]})


def compute_mde(n_treated, n_control, sigma, power: float = 0.8, alpha: float = 0.05,
                n_pre: int = 1, n_post: int = 1, rho: float = 0.0, deff: float = 1.0) -> float:
    """Minimum detectable effect (two-sided test; :class:`PowerAnalysis`).

    Parameters
    ----------
    n_treated, n_control : int
        Treated and control units.
    sigma : float
        Standard deviation of the outcome.
    power : float, default 0.8
        Target power.
    alpha : float, default 0.05
        Test level.
    n_pre, n_post : int, default 1
        Pre- and post-treatment periods.
    rho : float, default 0.0
        Within-unit correlation of the outcome between periods, in (-1, 1).
    deff : float, default 1.0
        Design effect of the survey design (1: simple random sampling).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If a count, ``sigma`` or ``deff`` is not positive, or ``rho`` is outside (-1, 1).

    Examples
    --------
    >>> import diff_diff as dd
    >>> round(dd.compute_mde(n_treated=50, n_control=50, sigma=1.0), 4)
    0.7924
    """
    return PowerAnalysis(alpha, power).mde(n_treated, n_control, sigma, n_pre, n_post, rho,
                                           deff).mde


def compute_power(effect_size, n_treated, n_control, sigma, alpha: float = 0.05, n_pre: int = 1,
                  n_post: int = 1, rho: float = 0.0, deff: float = 1.0) -> float:
    """Power of the two-sided test against ``effect_size`` (:class:`PowerAnalysis`).

    Parameters
    ----------
    effect_size : float
        The true effect to detect.
    n_treated, n_control : int
        Treated and control units.
    sigma : float
        Standard deviation of the outcome.
    alpha : float, default 0.05
        Test level.
    n_pre, n_post : int, default 1
        Pre- and post-treatment periods.
    rho : float, default 0.0
        Within-unit correlation of the outcome between periods, in (-1, 1).
    deff : float, default 1.0
        Design effect of the survey design (1: simple random sampling).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If a count, ``sigma`` or ``deff`` is not positive, or ``rho`` is outside (-1, 1).
    """
    return PowerAnalysis(alpha).power(effect_size, n_treated, n_control, sigma, n_pre, n_post,
                                      rho, deff).power


def compute_sample_size(effect_size, sigma, power: float = 0.8, alpha: float = 0.05,
                        n_pre: int = 1, n_post: int = 1, rho: float = 0.0, deff: float = 1.0,
                        treat_frac: float = 0.5) -> int:
    """Total units needed (two-sided test; :class:`PowerAnalysis`).

    Parameters
    ----------
    effect_size : float
        The true effect to detect.
    sigma : float
        Standard deviation of the outcome.
    power : float, default 0.8
        Target power.
    alpha : float, default 0.05
        Test level.
    n_pre, n_post : int, default 1
        Pre- and post-treatment periods.
    rho : float, default 0.0
        Within-unit correlation of the outcome between periods, in (-1, 1).
    deff : float, default 1.0
        Design effect of the survey design (1: simple random sampling).
    treat_frac : float, default 0.5
        Share of the units treated.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If a count, ``sigma`` or ``deff`` is not positive, or ``rho`` is outside (-1, 1).

    Examples
    --------
    >>> import diff_diff as dd
    >>> dd.compute_sample_size(effect_size=0.5, sigma=1.0, deff=1.8)
    453
    """
    return PowerAnalysis(alpha, power).sample_size(effect_size, sigma, n_pre, n_post, rho, deff,
                                                   treat_frac).required_n


# ------------------------------------------------------------------ simulation
_WEIGHT_CV = {"none": 0.0, "low": 0.2, "moderate": 0.5, "high": 1.0}


@dataclass
class SurveyPowerConfig:
    """A simulated survey population for :func:`simulate_power`.

    Units are spread evenly over ``n_strata`` strata of ``psu_per_stratum`` PSUs
    (``fpc_per_stratum`` PSUs in the population of each stratum); treatment is
    assigned to whole PSUs (as policies reach whole areas). The outcome gets a PSU
    effect (sd ``psu_re_sd``) and a PSU x period shock (sd ``psu_period_factor`` times
    that), which parallel trends across PSUs must average out; with ``icc`` the PSU
    effect's sd is the one making ``icc`` the within-period correlation of two units'
    outcomes in a PSU (unit effects have variance 1, noise ``sigma ** 2``). Weights vary
    across strata and, within stratum, log-normally with coefficient of variation
    ``weight_cv`` (or ``weight_variation``: none 0, low 0.2, moderate 0.5, high 1).
    ``informative_sampling``: units with larger unit effects get larger weights.
    ``heterogeneous_te_by_strata``: the effect varies from 0.5 to 1.5 times
    ``treatment_effect`` across strata; the truth is then the weighted ATT.
    ``survey_design``: the design to fit with (default: weights, strata, PSUs, FPC).
    """

    n_strata: int = 5
    psu_per_stratum: int = 8
    fpc_per_stratum: float = 200.0
    weight_variation: str = "moderate"
    psu_re_sd: float = 2.0
    psu_period_factor: float = 0.5
    icc: float | None = None
    weight_cv: float | None = None
    informative_sampling: bool = False
    heterogeneous_te_by_strata: bool = False
    survey_design: object = None

    def __post_init__(self):
        if int(self.n_strata) < 1 or int(self.psu_per_stratum) < 2:
            raise ValueError("SurveyPowerConfig needs n_strata >= 1 and psu_per_stratum >= 2")
        if self.fpc_per_stratum < self.psu_per_stratum:
            raise ValueError("fpc_per_stratum (population PSUs) must be at least "
                             "psu_per_stratum (sampled PSUs)")
        if self.weight_variation not in _WEIGHT_CV:
            raise ValueError(f"weight_variation must be one of {list(_WEIGHT_CV)}, "
                             f"got {self.weight_variation!r}")
        if self.icc is not None and not 0 <= self.icc < 1:
            raise ValueError(f"icc must be in [0, 1), got {self.icc!r}")

    def design(self):
        """The design the simulated data are fitted with: ``survey_design``, or the
        simulated weights, strata, PSUs and FPC.

        Returns
        -------
        SurveyDesign
        """
        if self.survey_design is not None:
            return self.survey_design
        from ..survey import SurveyDesign

        return SurveyDesign(weights="weight", strata="stratum", psu="psu", fpc="fpc")


def _check_panel(n_units, n_periods, treatment_fraction, treatment_period, sigma, config):
    if int(n_periods) < 2 or int(n_units) < 4:
        raise ValueError(f"the simulated panel needs n_units >= 4 and n_periods >= 2, got "
                         f"{n_units!r} and {n_periods!r}")
    if not 1 < int(treatment_period) <= int(n_periods):
        raise ValueError(f"treatment_period must be in 2..n_periods ({n_periods}), "
                         f"got {treatment_period!r}")
    if not 0 < treatment_fraction < 1:
        raise ValueError(f"treatment_fraction must be in (0, 1), got {treatment_fraction!r}")
    _check_positive(sigma=sigma)
    if config is not None:
        n_psu = int(config.n_strata) * int(config.psu_per_stratum)
        if int(n_units) < 2 * n_psu:
            raise ValueError(f"the survey population needs at least two units per PSU "
                             f"({2 * n_psu} units for {n_psu} PSUs), got n_units={n_units}")


def simulate_panel(n_units: int = 100, n_periods: int = 4, treatment_effect: float = 5.0,
                   treatment_fraction: float = 0.5, treatment_period: int = 2,
                   sigma: float = 1.0, seed=None, survey_config: SurveyPowerConfig | None = None):
    """One simulated panel (columns as :func:`diff_diff.datasets.example_panel`:
    ``unit``, ``time`` 1..n_periods, ``y``, ``first_treat``, ``treated``, ``post``,
    ``d``, ``x1``, and with ``survey_config`` ``weight``, ``stratum``, ``psu``,
    ``fpc``), treatment from period ``treatment_period`` on. Returns ``(data, truth)``
    with ``truth`` the (weighted) ATT of the treated post-period observations."""
    _check_panel(n_units, n_periods, treatment_fraction, treatment_period, sigma, survey_config)
    rng = np.random.default_rng(seed)
    n, T = int(n_units), int(n_periods)
    unit, time = np.arange(n), np.arange(1, T + 1)
    alpha_u = rng.normal(size=n)
    weight = np.ones(n)
    effect = np.full(n, float(treatment_effect))
    shocks = np.zeros((n, T))
    cfg = survey_config
    if cfg is None:
        treated = np.zeros(n, dtype=bool)
        treated[rng.choice(n, size=max(1, round(treatment_fraction * n)), replace=False)] = True
        extra = {}
    else:
        n_psu = int(cfg.n_strata) * int(cfg.psu_per_stratum)
        psu = unit % n_psu
        stratum = psu // int(cfg.psu_per_stratum)
        # icc: within-period correlation of two units of a PSU; the PSU effect and the
        # PSU x period shock are shared, the unit effect (variance 1) and noise are not
        re_sd = (math.sqrt(cfg.icc * (1 + sigma ** 2)
                           / ((1 - cfg.icc) * (1 + cfg.psu_period_factor ** 2)))
                 if cfg.icc is not None else cfg.psu_re_sd)
        alpha_u = alpha_u + rng.normal(scale=re_sd, size=n_psu)[psu]
        shocks = rng.normal(scale=cfg.psu_period_factor * re_sd, size=(n_psu, T))[psu]
        cv = cfg.weight_cv if cfg.weight_cv is not None else _WEIGHT_CV[cfg.weight_variation]
        log_sd = math.sqrt(math.log(1 + cv ** 2))
        base = np.linspace(1.0, 1.0 + cfg.n_strata / 2, int(cfg.n_strata))[stratum]
        weight = base * np.exp(rng.normal(-log_sd ** 2 / 2, log_sd, n))
        if cfg.informative_sampling:
            weight = weight * np.exp(0.5 * (alpha_u - alpha_u.mean()) / alpha_u.std())
        treated_psu = np.zeros(n_psu, dtype=bool)
        treated_psu[rng.choice(n_psu, size=max(1, round(treatment_fraction * n_psu)),
                               replace=False)] = True
        treated = treated_psu[psu]
        if cfg.heterogeneous_te_by_strata:
            effect = effect * np.linspace(0.5, 1.5, int(cfg.n_strata))[stratum]
        extra = {"weight": np.repeat(weight, T), "stratum": np.repeat(stratum, T),
                 "psu": np.repeat(psu, T), "fpc": np.full(n * T, float(cfg.fpc_per_stratum))}
    u, t = np.repeat(unit, T), np.tile(time, n)
    d = (treated[u] & (t >= treatment_period)).astype(int)
    x1 = rng.normal(size=u.size)
    y = (alpha_u[u] + 0.3 * t + shocks[u, t - 1] + effect[u] * d
         + rng.normal(scale=sigma, size=u.size))
    data = pd.DataFrame({"unit": u, "time": t, "y": y,
                         "first_treat": np.where(treated[u], int(treatment_period), 0),
                         "treated": treated[u].astype(int),
                         "post": (t >= treatment_period).astype(int), "d": d, "x1": x1,
                         **extra})
    on = d == 1
    truth = float(np.average(effect[u][on], weights=weight[u][on]))
    return data, truth


@dataclass
class SimulationPowerResults:
    """Simulated power (and estimator performance) at one or more effect sizes.

    ``table``: one row per effect size with ``power``, ``power_se``,
    ``power_ci_low``/``high`` (Wilson), ``mean_estimate``, ``std_estimate``,
    ``mean_se``, ``bias``, ``rmse``, ``coverage`` (of the estimator's confidence
    interval), ``truth``, ``n_simulations``, ``n_failures``. The headline fields are
    the row of the first effect size.
    """

    table: pd.DataFrame
    estimator: str
    alpha: float
    n_simulations: int
    survey: bool

    def __getattr__(self, name):
        table = self.__dict__.get("table")
        if table is not None and name in table.columns:
            return table[name].iloc[0]
        raise AttributeError(name)

    @property
    def rejection_rate(self) -> float:
        """Share of simulations that rejected at the first effect size (= ``power``, 3.x name)."""
        return float(self.table["power"].iloc[0])

    @property
    def power_ci(self) -> tuple:
        """Monte Carlo confidence interval of the power at the first effect size."""
        row = self.table.iloc[0]
        return float(row["power_ci_low"]), float(row["power_ci_high"])

    @property
    def n_simulation_failures(self) -> int:
        """Fits that raised, over all effect sizes."""
        return int(self.table["n_failures"].sum())

    def summary(self) -> str:
        """The results table by effect size as text.

        Returns
        -------
        str
        """
        cols = ["effect_size", "truth", "power", "power_se", "mean_estimate", "bias", "rmse",
                "mean_se", "std_estimate", "coverage", "n_failures"]
        body = self.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")
        return "\n".join([f"Simulated power: {self.estimator}, {self.n_simulations} simulations"
                          f"{' of a survey sample' if self.survey else ''}, alpha = {self.alpha:g}",
                          "=" * 64, body])

    def __str__(self) -> str:
        return self.summary()

    def to_dataframe(self) -> pd.DataFrame:
        """The results by effect size.

        Returns
        -------
        DataFrame
            One row per effect size: power, its standard error, bias, RMSE, coverage, failures.
        """
        return self.table.copy()

    def plot(self, ax=None, **kwargs):
        """:func:`diff_diff.plot_power_curve` of these results.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when omitted.
        **kwargs
            Passed to ``plot_power_curve``.

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import plot_power_curve

        return plot_power_curve(self, ax=ax, **kwargs)


def _fit_keywords(estimator, post_periods):
    from ..estimators.registry import REGISTRY

    entry = REGISTRY.get(type(estimator).__name__)
    if entry is None:
        raise TypeError(f"{type(estimator).__name__} is not a registered estimator; pass "
                        "estimator_kwargs= with its fit keywords")
    keywords = dict(entry.capabilities.example())
    if "dose" in keywords:
        raise ValueError(f"{entry.name} estimates a dose-response; the simulated panel has a "
                         "binary treatment (pass data_generator= and estimator_kwargs=)")
    keywords.pop("covariates", None)
    if "post_periods" in keywords:
        keywords["post_periods"] = post_periods
    return keywords


_SIMULATED_COLUMNS = ("unit", "time", "y", "first_treat", "treated", "post", "d", "x1")
_SURVEY_COLUMNS = ("weight", "stratum", "psu", "fpc")


def _fresh_seed() -> int:
    """A random seed drawn once, so repeated simulations share their draws."""
    return int(np.random.SeedSequence().entropy)


def _wilson(p, n, alpha=0.05):
    if n == 0:
        return math.nan, math.nan
    z = stats.norm.isf(alpha / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def simulate_power(estimator, n_units: int = 100, n_periods: int = 4,
                   treatment_effect: float = 5.0, treatment_fraction: float = 0.5,
                   treatment_period: int = 2, sigma: float = 1.0, n_simulations: int = 500,
                   alpha: float = 0.05, effect_sizes=None, seed=None, data_generator=None,
                   data_generator_kwargs=None, estimator_kwargs=None, result_extractor=None,
                   progress: bool = True,
                   survey_config: SurveyPowerConfig | None = None) -> SimulationPowerResults:
    """Power of ``estimator`` (a registered estimator, instance or class) by simulation.

    Each simulation draws a panel (:func:`simulate_panel`, or ``data_generator(**kwargs)``
    returning a frame, or ``(frame, truth)``), fits the estimator (fit keywords from its
    registry entry for these columns, updated by ``estimator_kwargs``; with
    ``survey_config`` under the survey design) and records the estimate, its standard
    error, p-value and interval (``result_extractor(results) -> (estimate, se, p_value,
    (low, high))``; default the headline ``att``, ``se``, ``p_value``, ``conf_int``).
    The same random draws are used at every effect size (common random numbers), so
    power curves are smooth. Fits that raise are counted as failures (and warned about),
    except that a ``ValueError`` is raised when the first fits (up to five) all fail or
    every fit at an effect size fails (a setup error, not unlucky draws), and when the
    estimator needs columns the built-in simulator does not make (e.g.
    :class:`~diff_diff.TripleDifference`'s ``partition``).

    Parameters
    ----------
    estimator
        A registered estimator: an instance, a class or its name.
    n_units, n_periods : int, default 100, 4
        Panel size of each simulated data set.
    treatment_effect : float, default 5.0
        The true effect (when ``effect_sizes`` is not given).
    treatment_fraction : float, default 0.5
        Share of the units treated.
    treatment_period : int, default 2
        First treated period.
    sigma : float, default 1.0
        Noise standard deviation.
    n_simulations : int, default 500
        Data sets per effect size.
    alpha : float, default 0.05
        Test level.
    effect_sizes : sequence of float, optional
        Effects to evaluate (a power curve).
    seed : int, optional
        Seed of the draws.
    data_generator : callable, optional
        Replaces the built-in simulator; returns a frame or ``(frame, truth)``.
    data_generator_kwargs : dict, optional
        Keywords of ``data_generator``.
    estimator_kwargs : dict, optional
        ``fit`` keywords that override the registry's.
    result_extractor : callable, optional
        ``results -> (estimate, se, p_value, (low, high))``.
    progress : bool, default True
        Print progress.
    survey_config : SurveyPowerConfig, optional
        Simulate a stratified cluster sample and fit under its design.

    Returns
    -------
    SimulationPowerResults
        Power (with its Monte Carlo interval), bias, RMSE and coverage by effect size.

    Raises
    ------
    ValueError
        If the estimator is unknown, needs columns the simulator does not make, or every
        fit fails.

    Examples
    --------
    >>> import diff_diff as dd
    >>> res = dd.simulate_power(dd.DifferenceInDifferences(), n_units=60,
    ...                         treatment_effect=0.5, n_simulations=50, seed=1, progress=False)
    >>> res.n_simulations, bool(0 <= res.power <= 1)
    (50, True)
    """
    if isinstance(estimator, type):
        estimator = estimator()
    if int(n_simulations) < 1:
        raise ValueError(f"n_simulations must be positive, got {n_simulations!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    sizes = [float(treatment_effect)] if effect_sizes is None else [
        float(e) for e in np.atleast_1d(effect_sizes)]
    post_periods = list(range(int(treatment_period), int(n_periods) + 1))
    fit_kwargs = dict(estimator_kwargs or {})
    if data_generator is None:
        registry_kwargs = _fit_keywords(estimator, post_periods)
        columns = set(_SIMULATED_COLUMNS) | (set(_SURVEY_COLUMNS) if survey_config else set())
        lacking = sorted({v for k, v in registry_kwargs.items()
                          if k not in fit_kwargs and isinstance(v, str) and v not in columns})
        if lacking:
            raise ValueError(f"{type(estimator).__name__} is not supported by the built-in "
                             f"simulator: its fit needs column(s) {lacking} that "
                             f"simulate_panel does not make (it has {sorted(columns)}); pass "
                             "data_generator= and estimator_kwargs=")
        fit_kwargs = {**registry_kwargs, **fit_kwargs}
    elif not fit_kwargs:
        fit_kwargs = _fit_keywords(estimator, post_periods)
    if data_generator is None:
        _check_panel(n_units, n_periods, treatment_fraction, treatment_period, sigma,
                     survey_config)
    design = survey_config.design() if survey_config is not None else None
    extract = result_extractor or (lambda r: (r.att, r.se, r.p_value, r.conf_int))
    seeds = np.random.SeedSequence(seed).spawn(int(n_simulations))
    total, done = len(sizes) * len(seeds), 0
    rows = []
    # a setup error (a missing column, a bad keyword) fails every draw: stop early
    # rather than report NaN power after all the draws
    succeeded, give_up = False, min(len(seeds), 5)
    for effect in sizes:
        est, se, p, cover, failures, truths = [], [], [], [], 0, []
        for child in seeds:
            done += 1
            if progress and (done % max(1, total // 50) == 0 or done == total):
                print(f"\rsimulate_power: {done}/{total}", end="" if done < total else "\n",
                      file=sys.stderr, flush=True)
            if data_generator is None:
                data, truth = simulate_panel(n_units, n_periods, effect, treatment_fraction,
                                             treatment_period, sigma,
                                             np.random.default_rng(child), survey_config)
            else:
                made = data_generator(n_units=n_units, n_periods=n_periods,
                                      treatment_effect=effect, seed=child,
                                      **(data_generator_kwargs or {}))
                data, truth = made if isinstance(made, tuple) else (made, effect)
            try:  # a fit may fail on an unlucky draw (a cell without units, ...): count it
                res = estimator.fit(data, survey_design=design, **fit_kwargs)
                e, s, pv, ci = extract(res)
            except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as err:
                failures += 1
                last_error = err
                if not succeeded and failures >= give_up:
                    raise ValueError(
                        f"simulate_power: the first {failures} fit(s) of "
                        f"{type(estimator).__name__} all failed, which points to the setup "
                        f"(columns, keywords) rather than unlucky draws: "
                        f"{type(err).__name__}: {err}") from err
                continue
            succeeded = True
            est.append(e)
            se.append(s)
            p.append(pv)
            truths.append(truth)
            cover.append(ci[0] <= truth <= ci[1])
        n_ok = len(est)
        if not n_ok:
            raise ValueError(f"simulate_power: all {failures} fits of "
                             f"{type(estimator).__name__} failed at effect {effect:g} (last "
                             f"error: {last_error})") from last_error
        if failures:
            warn_user(f"simulate_power: {failures} of {len(seeds)} fits failed at effect "
                      f"{effect:g} (last error: {last_error})")
        est, se, p = np.array(est, float), np.array(se, float), np.array(p, float)
        truth = float(np.mean(truths)) if truths else math.nan
        power = float(np.mean(p < alpha)) if n_ok else math.nan
        low, high = _wilson(power, n_ok)
        rows.append({
            "effect_size": effect, "truth": truth, "power": power,
            "power_se": math.sqrt(power * (1 - power) / n_ok) if n_ok else math.nan,
            "power_ci_low": low, "power_ci_high": high,
            "mean_estimate": float(est.mean()) if n_ok else math.nan,
            "std_estimate": float(est.std(ddof=1)) if n_ok > 1 else math.nan,
            "mean_se": float(se.mean()) if n_ok else math.nan,
            "bias": float(np.mean(est - np.array(truths))) if n_ok else math.nan,
            "rmse": float(np.sqrt(np.mean((est - np.array(truths)) ** 2))) if n_ok else math.nan,
            "coverage": float(np.mean(cover)) if n_ok else math.nan,
            "n_simulations": n_ok, "n_failures": failures})
    return SimulationPowerResults(table=pd.DataFrame(rows), estimator=type(estimator).__name__,
                                  alpha=float(alpha), n_simulations=int(n_simulations),
                                  survey=survey_config is not None)


def simulate_mde(estimator, target_power: float = 0.8, effect_range=None, tol: float = 0.02,
                 **kwargs) -> float:
    """The smallest effect with simulated power ``target_power`` (bisection over the effect
    size with common random numbers; ``effect_range``: the bracket, default
    ``(0, 5 * sigma)``; ``tol``: relative width at which to stop). Every step uses the
    same draws (without ``seed`` one is drawn up front). Other keywords as
    :func:`simulate_power`.

    Parameters
    ----------
    estimator
        A registered estimator: an instance, a class or its name.
    target_power : float, default 0.8
        Power to reach.
    effect_range : tuple of float, optional
        Bracket of the search; default ``(0, 5 * sigma)``.
    tol : float, default 0.02
        Relative bracket width at which to stop.
    **kwargs
        As :func:`simulate_power`.

    Returns
    -------
    float
    """
    low, high = effect_range if effect_range is not None else (0.0, 5.0 * kwargs.get("sigma", 1.0))
    kwargs = {"progress": False, "n_simulations": 200, **kwargs}
    if kwargs.get("seed") is None:   # one seed for every step: common random numbers
        kwargs["seed"] = _fresh_seed()

    def power_at(effect):
        return simulate_power(estimator, treatment_effect=effect, **kwargs).power

    if power_at(high) < target_power:
        raise ValueError(f"simulated power at the top of effect_range ({high:g}) is below "
                         f"{target_power:g}; widen effect_range")
    while high - low > tol * high:
        mid = (low + high) / 2
        low, high = (low, mid) if power_at(mid) >= target_power else (mid, high)
    return high


def simulate_sample_size(estimator, target_power: float = 0.8, n_range=(20, 2000),
                         **kwargs) -> int:
    """A number of units with simulated power ``target_power``, within about 2% of
    the smallest: bisection over whole numbers of units in ``n_range`` that stops when
    the bracket is at most ``max(1, high // 50)`` units wide and returns its upper end
    (simulated power need not be monotone in ``n``, so smaller ``n`` may reach the
    target too). Every step uses the same seed (without ``seed`` one is drawn up
    front). With ``survey_config`` the low end is raised to the survey population's
    minimum (two units per PSU). Other keywords as :func:`simulate_power`.

    Parameters
    ----------
    estimator
        A registered estimator: an instance, a class or its name.
    target_power : float, default 0.8
        Power to reach.
    n_range : tuple of int, default (20, 2000)
        Bracket of the search.
    **kwargs
        As :func:`simulate_power`.

    Returns
    -------
    int
    """
    low, high = int(n_range[0]), int(n_range[1])
    kwargs = {"progress": False, "n_simulations": 200, **kwargs}
    if kwargs.get("seed") is None:
        kwargs["seed"] = _fresh_seed()
    config = kwargs.get("survey_config")
    minimum = 2 * int(config.n_strata) * int(config.psu_per_stratum) if config else 4
    if kwargs.get("data_generator") is not None and config is None:
        minimum = low   # the generator's own limits
    clamped = low < minimum
    low = max(low, minimum)
    if high < low:
        raise ValueError(f"n_range {tuple(n_range)} ends below the smallest simulated "
                         f"population ({minimum} units)")

    def power_at(n):
        return simulate_power(estimator, n_units=n, **kwargs).power

    if power_at(high) < target_power:
        raise ValueError(f"simulated power with {high} units is below {target_power:g}; "
                         "raise n_range")
    if clamped and power_at(low) >= target_power:
        return low
    while high - low > max(1, high // 50):
        mid = (low + high) // 2
        low, high = (low, mid) if power_at(mid) >= target_power else (mid, high)
    return high
