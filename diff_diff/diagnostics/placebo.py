"""Placebo and permutation checks of a 2x2 difference-in-differences design.

The design: ``treatment`` marks the treated group (0/1, constant within unit),
``time`` the period, ``post_periods`` the periods after treatment. Each check
re-estimates the DiD (:class:`~diff_diff.DifferenceInDifferences`, with the
``survey_design`` and any estimator keywords given) where no effect should be:

* ``"fake_timing"``: only the periods before the first of ``post_periods`` (periods
  after it are never used as "pre"), with a pretend treatment date
  ``fake_treatment_period`` strictly inside that range (periods from it on are "post");
* ``"fake_group"``: only the control units, some of them (``fake_treatment_group``)
  pretending to be treated, in the real post periods;
* ``"permutation"``: the treated-group label reassigned at random ``n_permutations``
  times, across the units or, when the survey design has PSUs (or ``cluster=`` is
  given), across whole PSUs/clusters, which must then each be all treated or all
  control (treatment assigned by cluster); within survey strata when the design has
  strata, so every stratum keeps its number of treated units/clusters. The p-value is
  ``(1 + #{|permuted| >= |observed|}) / (1 + n_permutations)`` (exact for a
  random-assignment null);
* ``"leave_one_out"``: the real DiD with each unit left out in turn (how much one unit
  drives it), and the delete-one jackknife standard error over units, or over
  PSUs/clusters when given (JKn within survey strata).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .._lazy import stats
from .._warnings import warn_user

TEST_TYPES = ("fake_timing", "fake_group", "permutation", "leave_one_out")


class PlaceboTestResults:
    """One placebo check.

    Attributes
    ----------
    test_type : str
    placebo_effect, se, t_stat, p_value, conf_int
        The placebo estimate and its inference (for ``"permutation"`` the observed
        effect, the permutation distribution's standard deviation and the
        permutation p-value; for ``"leave_one_out"`` the mean of the leave-one-out
        estimates and their jackknife standard error).
    n_obs, alpha, is_significant
    original_effect, original_se
        The DiD on the real design (context for the placebo).
    permutation_distribution : ndarray or None
    leave_one_out_effects : Series or None
        The DiD with each unit left out, indexed by that unit (influence diagnostics).
    jackknife_effects : Series or None
        The jackknife replicates, indexed by the cluster left out (the same as
        ``leave_one_out_effects`` when the jackknife is over units); ``jackknife_groups``
        names the cluster column.
    fake_period, fake_group, n_permutations
    """

    def __init__(self, **fields):
        for name in ("permutation_distribution", "leave_one_out_effects", "jackknife_effects",
                     "jackknife_groups", "fake_period",
                     "fake_group", "n_permutations", "original_effect", "original_se"):
            setattr(self, name, None)
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def is_significant(self) -> bool:
        """Whether ``p_value < alpha``."""
        return bool(self.p_value < self.alpha)

    def summary(self) -> str:
        """The check, the placebo estimate with its inference, and the real DiD, as text.

        Returns
        -------
        str
            The text ``print(result)`` shows.
        """
        kind = self.test_type
        if kind == "fake_timing":
            label = f"fake treatment period {self.fake_period}"
        elif kind == "fake_group":
            label = f"fake treated group of {len(self.fake_group)} control units"
        elif kind == "permutation":
            label = f"{self.n_permutations} permutations of the treated group"
        else:
            label = f"{len(self.leave_one_out_effects)} units left out in turn"
            if self.jackknife_groups is not None and (
                    self.jackknife_effects is not self.leave_one_out_effects):
                label += (f"; jackknife over {len(self.jackknife_effects)} "
                          f"{self.jackknife_groups!r} clusters")
        if kind in ("fake_timing", "fake_group"):
            reading = ("a placebo effect: evidence against the design" if self.is_significant
                       else "no placebo effect detected")
            interval = "Confidence interval:"
        elif kind == "permutation":
            reading = ("the observed effect is unusual under random assignment"
                       if self.is_significant else "not unusual under random assignment")
            interval = "Permutation 95% range:" if self.alpha == 0.05 else "Permutation range:"
        else:
            reading = "jackknife test of the mean jackknife replicate"
            interval = "Confidence interval:"
        lines = [f"Placebo test: {kind.replace('_', ' ')} ({label})", "=" * 64,
                 f"{'Effect:':<26}{self.placebo_effect:.6g}",
                 f"{'Standard error:':<26}{self.se:.6g}",
                 f"{'p-value:':<26}{self.p_value:.4g} ({reading})",
                 f"{interval:<26}[{self.conf_int[0]:.6g}, {self.conf_int[1]:.6g}]"]
        if kind == "leave_one_out":
            effects = self.leave_one_out_effects
            lines.append(f"{'Range of estimates:':<26}[{effects.min():.6g}, {effects.max():.6g}]"
                         f" (unit {_plain(effects.idxmin())} .. {_plain(effects.idxmax())} "
                         "left out)")
        lines.append(f"{'Observations:':<26}{self.n_obs}")
        if self.original_effect is not None and kind != "permutation":
            lines.append(f"{'Real DiD (se):':<26}{self.original_effect:.6g} "
                         f"({self.original_se:.6g})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"PlaceboTestResults(test_type={self.test_type!r}, "
                f"placebo_effect={self.placebo_effect:.6g}, p_value={self.p_value:.4g})")

    def to_dict(self) -> dict:
        """The headline numbers as a dict (test type, estimate, inference, original DiD).

        Returns
        -------
        dict
            Plain Python values.
        """
        return {"test_type": self.test_type, "placebo_effect": self.placebo_effect,
                "se": self.se, "t_stat": self.t_stat, "p_value": self.p_value,
                "conf_int": tuple(self.conf_int), "n_obs": self.n_obs, "alpha": self.alpha,
                "original_effect": self.original_effect, "original_se": self.original_se}


# ------------------------------------------------------------------ helpers
def _did(data, outcome, treatment, post, survey_design, estimator_kwargs):
    from ..estimators import DifferenceInDifferences

    fit_keys = ("covariates", "fixed_effects", "absorb")
    fit_kwargs = {k: estimator_kwargs[k] for k in fit_keys if k in estimator_kwargs}
    init = {k: v for k, v in estimator_kwargs.items() if k not in fit_keys}
    return DifferenceInDifferences(**init).fit(data, outcome, treatment, post,
                                               survey_design=survey_design, **fit_kwargs)


def _check(data, columns):
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not in the data")


def _post_indicator(data, time, post_periods):
    if post_periods is None:
        raise ValueError("post_periods= is required: the periods after treatment")
    periods = np.atleast_1d(post_periods).tolist()
    unknown = [p for p in periods if p not in set(data[time].unique().tolist())]
    if unknown:
        raise ValueError(f"post_periods {unknown} are not values of {time!r}")
    return data[time].isin(periods).astype(int)


def _pre_sample(data, time, post_periods):
    """The rows before the first post period (the placebo sample) and its periods."""
    _post_indicator(data, time, post_periods)
    first_post = min(np.atleast_1d(post_periods).tolist())
    pre = data.loc[data[time] < first_post]
    return pre, np.sort(pre[time].unique()), first_post


def _plain(value):
    """A numpy scalar as the Python value (for messages and summaries)."""
    return value.item() if isinstance(value, np.generic) else value


def _constant_by(frame, by, column, what, labels=None):
    """``column`` per ``by`` group; ValueError if it varies within a group (``labels``:
    the group labels by code, for the message)."""
    spread = frame.groupby(by, sort=True)[column].agg(["min", "max"])
    varies = spread.index[spread["min"] != spread["max"]]
    if len(varies):
        example = varies[0] if labels is None else labels[varies[0]]
        raise ValueError(f"{column!r} varies within {what} (e.g. {_plain(example)!r})")
    return spread["min"]


def _assignment_groups(frame, unit, survey_design, estimator_kwargs):
    """The sampling/assignment clusters: ``(column, keys, strata, labels)``.

    The survey design's PSUs (within strata), else the ``cluster=`` column, else the
    units. ``keys`` are integer cluster codes of the rows, ``strata`` integer stratum
    codes per cluster (zeros without strata); ValueError if a unit spans clusters or a
    cluster spans strata."""
    psu = getattr(survey_design, "psu", None)
    column = psu or estimator_kwargs.get("cluster") or unit
    if column not in frame.columns:
        raise ValueError(f"cluster column {column!r} not in the data")
    strata_col = getattr(survey_design, "strata", None)
    if column != unit:
        _constant_by(frame, unit, column, f"units; units must be nested in {column!r}")
    if strata_col is not None and getattr(survey_design, "nest", False) and column == psu:
        key = pd.MultiIndex.from_arrays([frame[strata_col], frame[column]])
        codes, labels = pd.factorize(key, sort=True)
    else:
        codes, labels = pd.factorize(frame[column], sort=True)
    strata = np.zeros(codes.max() + 1, dtype=int)
    if strata_col is not None:
        coded = pd.DataFrame({"g": codes, "s": pd.factorize(frame[strata_col])[0]})
        strata = _constant_by(coded, "g", "s", "a cluster (strata must contain whole "
                              f"{column!r} clusters)").to_numpy()
    return column, codes, strata, labels


def _result(test_type, res, alpha, n_obs, **extra):
    return PlaceboTestResults(test_type=test_type, placebo_effect=float(res.att), se=float(res.se),
                              t_stat=float(res.att / res.se) if res.se > 0 else math.nan,
                              p_value=float(res.p_value), conf_int=tuple(res.conf_int),
                              n_obs=int(n_obs), alpha=alpha, **extra)


def _original(data, outcome, treatment, time, post_periods, survey_design, kwargs):
    post = _post_indicator(data, time, post_periods)
    # periods after the first post period that are not post periods are neither pre nor
    # post: left out (coding them as pre-treatment would bias the real DiD)
    first_post = min(np.atleast_1d(post_periods).tolist())
    between = (data[time] > first_post).to_numpy() & (post == 0).to_numpy()
    if between.any():
        left_out = sorted({_plain(p) for p in data.loc[between, time]})
        warn_user(f"placebo tests: left out the periods {left_out} after the first post "
                  "period that are not in post_periods")
        data, post = data.loc[~between], post[~between]
    frame = data.assign(_post=post)
    res = _did(frame, outcome, treatment, "_post", survey_design, kwargs)
    return res, frame


# ------------------------------------------------------------------ the checks
def placebo_timing_test(data, outcome: str, treatment: str, time: str, fake_treatment_period,
                        post_periods=None, alpha: float = 0.05, survey_design=None,
                        **estimator_kwargs) -> PlaceboTestResults:
    """DiD on the pre-treatment periods only, with treatment pretended to start at
    ``fake_treatment_period`` (which must leave pre-periods on both sides).

    Parameters
    ----------
    data : DataFrame
        A panel or repeated cross-sections, one row per observation.
    outcome : str
        Outcome column.
    treatment : str
        Treated-group indicator (0/1, constant within unit).
    time : str
        Period column.
    fake_treatment_period
        The pretend first treated period, strictly inside the pre-treatment periods.
    post_periods : list
        The periods after treatment (required).
    alpha : float, default 0.05
        Significance level of the interval and of ``is_significant``.
    survey_design : SurveyDesign, optional
        Weights and design of every DiD fit.
    **estimator_kwargs
        Settings of the underlying :class:`~diff_diff.DifferenceInDifferences` (``vcov_type``,
        ``cluster``, ...) and its ``fit`` keywords ``covariates``, ``fixed_effects``,
        ``absorb``.

    Returns
    -------
    PlaceboTestResults
        The placebo estimate, its inference and the DiD on the real design.

    Raises
    ------
    ValueError
        If a column is missing, ``post_periods`` is not given or not in the data, or
        ``fake_treatment_period`` leaves no pre-period on one side.
    """
    _check(data, [outcome, treatment, time])
    pre, periods, first_post = _pre_sample(data, time, post_periods)
    fake = _plain(fake_treatment_period)
    if fake not in set(periods.tolist()):
        raise ValueError(f"fake_treatment_period {fake!r} is not a pre-treatment period "
                         f"(those before the first post period {_plain(first_post)!r} are "
                         f"{periods.tolist()})")
    if fake == periods[0]:
        raise ValueError("fake_treatment_period must leave at least one earlier pre-period "
                         f"(it is the first one, {_plain(periods[0])!r})")
    frame = pre.assign(_fake_post=(pre[time] >= fake_treatment_period).astype(int))
    res = _did(frame, outcome, treatment, "_fake_post", survey_design, estimator_kwargs)
    original, _ = _original(data, outcome, treatment, time, post_periods, survey_design,
                            estimator_kwargs)
    return _result("fake_timing", res, alpha, len(frame), fake_period=fake_treatment_period,
                   original_effect=float(original.att), original_se=float(original.se))


def placebo_group_test(data, outcome: str, time: str, unit: str, fake_treatment_group,
                       post_periods=None, treatment: str | None = None, alpha: float = 0.05,
                       survey_design=None, **estimator_kwargs) -> PlaceboTestResults:
    """DiD among the control units only (``treatment == 0`` when ``treatment`` is given),
    the units in ``fake_treatment_group`` pretending to be treated.

    Parameters
    ----------
    data : DataFrame
        A panel or repeated cross-sections, one row per observation.
    outcome : str
        Outcome column.
    time : str
        Period column.
    unit : str
        Unit column.
    fake_treatment_group : list
        Control units that pretend to be treated.
    post_periods : list
        The periods after treatment (required).
    treatment : str, optional
        Treated-group indicator; when given, the treated units are dropped first.
    alpha : float, default 0.05
        Significance level of the interval and of ``is_significant``.
    survey_design : SurveyDesign, optional
        Weights and design of every DiD fit.
    **estimator_kwargs
        Settings of the underlying :class:`~diff_diff.DifferenceInDifferences` (``vcov_type``,
        ``cluster``, ...) and its ``fit`` keywords ``covariates``, ``fixed_effects``,
        ``absorb``.

    Returns
    -------
    PlaceboTestResults
        The placebo estimate, its inference and the DiD on the real design.

    Raises
    ------
    ValueError
        If a column is missing, ``post_periods`` is not given or not in the data.
    """
    _check(data, [outcome, time, unit, treatment])
    frame = data if treatment is None else data.loc[data[treatment] == 0]
    fake = np.atleast_1d(fake_treatment_group).tolist()
    controls = set(frame[unit].unique().tolist())
    outside = [u for u in fake if u not in controls]
    if outside:
        raise ValueError(f"fake_treatment_group units {outside[:5]} are not control units")
    if not fake or len(set(fake)) == len(controls):
        raise ValueError("fake_treatment_group must name some, not all, of the control units")
    frame = frame.assign(_fake_treated=frame[unit].isin(fake).astype(int),
                         _post=_post_indicator(frame, time, post_periods))
    res = _did(frame, outcome, "_fake_treated", "_post", survey_design, estimator_kwargs)
    extra = {}
    if treatment is not None:
        original, _ = _original(data, outcome, treatment, time, post_periods, survey_design,
                                estimator_kwargs)
        extra = {"original_effect": float(original.att), "original_se": float(original.se)}
    return _result("fake_group", res, alpha, len(frame), fake_group=fake, **extra)


def permutation_test(data, outcome: str, treatment: str, time: str, unit: str,
                     post_periods=None, n_permutations: int = 1000, alpha: float = 0.05,
                     seed=None, survey_design=None, **estimator_kwargs) -> PlaceboTestResults:
    """Randomisation inference: the treated-group label permuted ``n_permutations``
    times across units, or across whole PSUs (survey design) / clusters (``cluster=``)
    when given, within survey strata. With PSUs/clusters the treatment must be constant
    within each (ValueError otherwise): permuting units that were assigned by cluster
    would understate the spread of the null distribution and over-reject.

    Parameters
    ----------
    data : DataFrame
        A panel or repeated cross-sections, one row per observation.
    outcome : str
        Outcome column.
    treatment : str
        Treated-group indicator (0/1, constant within unit).
    time : str
        Period column.
    unit : str
        Unit column.
    post_periods : list
        The periods after treatment (required).
    n_permutations : int, default 1000
        Random relabellings of the treated group.
    alpha : float, default 0.05
        Significance level of the interval and of ``is_significant``.
    seed : int, optional
        Seed of the permutations.
    survey_design : SurveyDesign, optional
        Weights and design of every DiD fit; labels are permuted across its PSUs, within its
        strata.
    **estimator_kwargs
        Settings of the underlying :class:`~diff_diff.DifferenceInDifferences` (``vcov_type``,
        ``cluster``, ...) and its ``fit`` keywords ``covariates``, ``fixed_effects``,
        ``absorb``.

    Returns
    -------
    PlaceboTestResults
        The placebo estimate, its inference and the DiD on the real design.

    Raises
    ------
    ValueError
        If a column is missing, ``post_periods`` is not given or not in the data, or the
        treatment varies within a PSU or cluster.
    """
    _check(data, [outcome, treatment, time, unit])
    if int(n_permutations) < 1:
        raise ValueError(f"n_permutations must be positive, got {n_permutations!r}")
    original, frame = _original(data, outcome, treatment, time, post_periods, survey_design,
                                estimator_kwargs)
    column, codes, strata, labels = _assignment_groups(frame, unit, survey_design,
                                                       estimator_kwargs)
    what = "units" if column == unit else f"{column!r} clusters"
    assigned = _constant_by(frame.assign(_group=codes), "_group", treatment,
                            f"{what}; permutation needs the treatment assigned to whole "
                            f"{what}", labels).to_numpy()
    rng = np.random.default_rng(seed)
    fast = not any(k in estimator_kwargs for k in ("covariates", "fixed_effects", "absorb"))
    weights = (frame[survey_design.weights].to_numpy(float)
               if survey_design is not None and getattr(survey_design, "weights", None)
               else np.ones(len(frame)))
    y, post = frame[outcome].to_numpy(float), frame["_post"].to_numpy()
    draws = np.empty(int(n_permutations))
    for b in range(draws.size):
        permuted = assigned.copy()
        for s in np.unique(strata):
            at = np.flatnonzero(strata == s)
            permuted[at] = rng.permutation(assigned[at])
        treated = permuted[codes]
        if fast:
            draws[b] = _cell_did(y, treated, post, weights)
        else:
            draws[b] = _did(frame.assign(**{treatment: treated}), outcome, treatment, "_post",
                            survey_design, estimator_kwargs).att
    observed = float(original.att)
    as_extreme = np.abs(draws) >= abs(observed) * (1 - 1e-12)  # ties count as extreme
    p_value = (1 + as_extreme.sum()) / (1 + draws.size)
    spread = float(np.std(draws, ddof=1)) if draws.size > 1 else math.nan
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return PlaceboTestResults(test_type="permutation", placebo_effect=observed, se=spread,
                              t_stat=observed / spread if spread > 0 else math.nan,
                              p_value=float(p_value), conf_int=(float(low), float(high)),
                              n_obs=len(frame), alpha=alpha, permutation_distribution=draws,
                              n_permutations=int(n_permutations), original_effect=observed,
                              original_se=float(original.se))


def _cell_did(y, treated, post, weights):
    """The 2x2 DiD of weighted cell means (what the saturated regression gives)."""
    means = []
    for d in (1, 0):
        for p in (1, 0):
            cell = (treated == d) & (post == p)
            w = weights[cell]
            means.append(np.dot(w, y[cell]) / w.sum() if w.sum() > 0 else math.nan)
    return (means[0] - means[1]) - (means[2] - means[3])


def leave_one_out_test(data, outcome: str, treatment: str, time: str, unit: str,
                       post_periods=None, alpha: float = 0.05, survey_design=None,
                       **estimator_kwargs) -> PlaceboTestResults:
    """The DiD re-estimated with each unit left out in turn (``leave_one_out_effects``,
    for influence diagnostics) and its delete-one jackknife standard error.

    The jackknife deletes one cluster at a time: the survey design's PSUs, else the
    ``cluster=`` column, else the units. Without strata it is JK1,
    ``(G-1)/G sum_g (theta_(g) - mean)^2``; with survey strata it is JKn, the PSUs left
    in the stratum reweighted by ``n_h/(n_h-1)`` and
    ``sum_h (n_h-1)/n_h sum_(g in h) (theta_(g) - mean_h)^2`` (strata with one PSU
    contribute nothing; no finite population correction). The effect tested is the
    mean of the jackknife replicates (``jackknife_effects``), against a normal
    reference.

    Parameters
    ----------
    data : DataFrame
        A panel or repeated cross-sections, one row per observation.
    outcome : str
        Outcome column.
    treatment : str
        Treated-group indicator (0/1, constant within unit).
    time : str
        Period column.
    unit : str
        Unit column.
    post_periods : list
        The periods after treatment (required).
    alpha : float, default 0.05
        Significance level of the interval and of ``is_significant``.
    survey_design : SurveyDesign, optional
        Weights and design of every DiD fit; its PSUs and strata define the jackknife.
    **estimator_kwargs
        Settings of the underlying :class:`~diff_diff.DifferenceInDifferences` (``vcov_type``,
        ``cluster``, ...) and its ``fit`` keywords ``covariates``, ``fixed_effects``,
        ``absorb``.

    Returns
    -------
    PlaceboTestResults
        The placebo estimate, its inference and the DiD on the real design.

    Raises
    ------
    ValueError
        If a column is missing, ``post_periods`` is not given or not in the data.
    """
    _check(data, [outcome, treatment, time, unit])
    original, frame = _original(data, outcome, treatment, time, post_periods, survey_design,
                                estimator_kwargs)
    column, codes, strata, labels = _assignment_groups(frame, unit, survey_design,
                                                       estimator_kwargs)
    what = "units" if column == unit else f"{column!r} clusters"
    is_treated = frame[treatment].to_numpy() == 1
    for side, rows in (("treated", is_treated), ("control", ~is_treated)):
        if np.unique(codes[rows]).size < 2:
            raise ValueError(f"leave-one-out needs at least two {side} {what}")
    weight_col = getattr(survey_design, "weights", None) if survey_design is not None else None
    base = frame[weight_col].to_numpy(float) if weight_col else np.ones(len(frame))
    y, post = frame[outcome].to_numpy(float), frame["_post"].to_numpy()
    treated = frame[treatment].to_numpy()
    fast = not any(k in estimator_kwargs for k in ("covariates", "fixed_effects", "absorb"))
    refit_design = None
    if survey_design is not None:
        from ..survey import SurveyDesign

        refit_design = SurveyDesign(weights="_jk_weight", weight_type=survey_design.weight_type)

    def estimate(w):
        if fast:
            return _cell_did(y, treated, post, w)
        keep = w > 0
        sub = frame.loc[keep].assign(_jk_weight=w[keep])
        return _did(sub, outcome, treatment, "_post", refit_design, estimator_kwargs).att

    unit_codes, unit_labels = pd.factorize(frame[unit], sort=True)
    effects = pd.Series([estimate(np.where(unit_codes == i, 0.0, base))
                         for i in range(len(unit_labels))],
                        index=pd.Index([_plain(u) for u in unit_labels], name=unit), name="att")
    if column == unit and not strata.any():
        replicates = effects.to_numpy()
        scale = np.full(replicates.size, (replicates.size - 1) / replicates.size)
        centre = np.full(replicates.size, replicates.mean())
        jackknife = effects
    else:
        row_stratum = strata[codes]
        sizes = np.bincount(strata)
        replicates = np.full(labels.size, math.nan)
        for g in range(labels.size):
            n_h = sizes[strata[g]]
            if n_h < 2:
                continue
            factor = np.where(row_stratum == strata[g], n_h / (n_h - 1), 1.0)
            replicates[g] = estimate(np.where(codes == g, 0.0, base * factor))
        used = sizes[strata] >= 2
        scale = np.where(used, (sizes[strata] - 1) / np.maximum(sizes[strata], 1), 0.0)
        means = np.bincount(strata[used], weights=replicates[used], minlength=sizes.size)
        centre = np.where(used, means[strata] / np.maximum(sizes[strata], 1), 0.0)
        index = (pd.MultiIndex.from_tuples([tuple(_plain(v) for v in t) for t in labels])
                 if isinstance(labels, pd.MultiIndex)
                 else pd.Index([_plain(v) for v in labels], name=column))
        jackknife = pd.Series(replicates, index=index, name="att")
        replicates = np.where(used, replicates, 0.0)
        if not used.any():
            raise ValueError("leave-one-out needs a stratum with at least two PSUs")
    se = math.sqrt(float((scale * (replicates - centre) ** 2).sum()))
    mean = float(jackknife.mean())
    z = stats.norm.ppf(1 - alpha / 2)
    t = mean / se if se > 0 else math.nan
    p = float(2 * stats.norm.sf(abs(t))) if se > 0 else math.nan
    return PlaceboTestResults(test_type="leave_one_out", placebo_effect=mean, se=se, t_stat=t,
                              p_value=p, conf_int=(mean - z * se, mean + z * se),
                              n_obs=len(frame), alpha=alpha, leave_one_out_effects=effects,
                              jackknife_effects=jackknife, jackknife_groups=column,
                              original_effect=float(original.att),
                              original_se=float(original.se))


def run_placebo_test(data, outcome: str, treatment: str, time: str, unit: str | None = None,
                     test_type: str = "fake_timing", fake_treatment_period=None,
                     fake_treatment_group=None, post_periods=None, n_permutations: int = 1000,
                     alpha: float = 0.05, seed=None, survey_design=None,
                     **estimator_kwargs) -> PlaceboTestResults:
    """One placebo check by name (``test_type``; module docstring).

    Parameters
    ----------
    data : DataFrame
        A panel or repeated cross-sections, one row per observation.
    outcome : str
        Outcome column.
    treatment : str
        Treated-group indicator (0/1, constant within unit).
    time : str
        Period column.
    unit : str, optional
        Unit column (needed by every check but ``"fake_timing"``).
    test_type : {"fake_timing", "fake_group", "permutation", "leave_one_out"}
        The check to run (see the module description).
    fake_treatment_period : optional
        For ``"fake_timing"``: the pretend first treated period.
    fake_treatment_group : list, optional
        For ``"fake_group"``: control units that pretend to be treated.
    post_periods : list
        The periods after treatment (required).
    n_permutations : int, default 1000
        Random relabellings of the treated group.
    alpha : float, default 0.05
        Significance level of the interval and of ``is_significant``.
    seed : int, optional
        Seed of the permutations.
    survey_design : SurveyDesign, optional
        Weights and design of every DiD fit.
    **estimator_kwargs
        Settings of the underlying :class:`~diff_diff.DifferenceInDifferences` (``vcov_type``,
        ``cluster``, ...) and its ``fit`` keywords ``covariates``, ``fixed_effects``,
        ``absorb``.

    Returns
    -------
    PlaceboTestResults
        The placebo estimate, its inference and the DiD on the real design.

    Raises
    ------
    ValueError
        If a column is missing, ``post_periods`` is not given or not in the data, or
        ``test_type`` is unknown.

    Examples
    --------
    >>> import diff_diff as dd
    >>> from diff_diff.datasets import example_panel
    >>> df = example_panel().query("first_treat in (0, 4)")
    >>> res = dd.run_placebo_test(df, "y", "treated", "time", unit="unit",
    ...                           test_type="fake_timing", fake_treatment_period=2,
    ...                           post_periods=[4, 5, 6])
    >>> res.is_significant
    False
    """
    if test_type not in TEST_TYPES:
        raise ValueError(f"test_type must be one of {TEST_TYPES}, got {test_type!r}")
    common = dict(alpha=alpha, survey_design=survey_design, **estimator_kwargs)
    if test_type == "fake_timing":
        if fake_treatment_period is None:
            raise ValueError("test_type='fake_timing' needs fake_treatment_period=")
        return placebo_timing_test(data, outcome, treatment, time, fake_treatment_period,
                                   post_periods, **common)
    if unit is None:
        raise ValueError(f"test_type={test_type!r} needs unit=")
    if test_type == "fake_group":
        if fake_treatment_group is None:
            raise ValueError("test_type='fake_group' needs fake_treatment_group=")
        return placebo_group_test(data, outcome, time, unit, fake_treatment_group, post_periods,
                                  treatment=treatment, **common)
    if test_type == "permutation":
        return permutation_test(data, outcome, treatment, time, unit, post_periods,
                                n_permutations, seed=seed, **common)
    return leave_one_out_test(data, outcome, treatment, time, unit, post_periods, **common)


def run_all_placebo_tests(data, outcome: str, treatment: str, time: str, unit: str,
                          pre_periods=None, post_periods=None, n_permutations: int = 500,
                          alpha: float = 0.05, seed=None, survey_design=None,
                          **estimator_kwargs) -> dict:
    """Every check with defaults: fake timing at each period before the first post period
    except the earliest (keys ``"fake_timing_<period>"``; ``pre_periods`` restricts them
    to the listed periods, and periods outside that range are skipped), fake group (half
    of the control units, the first in sorted order), permutation and leave-one-out. A
    check that cannot run gives ``{"error": message}`` under its key.

    Parameters
    ----------
    data : DataFrame
        A panel or repeated cross-sections, one row per observation.
    outcome : str
        Outcome column.
    treatment : str
        Treated-group indicator (0/1, constant within unit).
    time : str
        Period column.
    unit : str
        Unit column.
    pre_periods : list, optional
        Restrict the fake-timing checks to these periods.
    post_periods : list
        The periods after treatment (required).
    n_permutations : int, default 500
        Random relabellings of the treated group.
    alpha : float, default 0.05
        Significance level of the interval and of ``is_significant``.
    seed : int, optional
        Seed of the permutations.
    survey_design : SurveyDesign, optional
        Weights and design of every DiD fit.
    **estimator_kwargs
        Settings of the underlying :class:`~diff_diff.DifferenceInDifferences` (``vcov_type``,
        ``cluster``, ...) and its ``fit`` keywords ``covariates``, ``fixed_effects``,
        ``absorb``.

    Returns
    -------
    dict
        Check name -> :class:`PlaceboTestResults` (or ``{"error": message}``).
    """
    _check(data, [outcome, treatment, time, unit])
    _, periods, _ = _pre_sample(data, time, post_periods)
    valid = [_plain(p) for p in periods[1:]]   # fake dates with a pre-period on each side
    fake_periods = valid if pre_periods is None else [
        p for p in (_plain(v) for v in np.atleast_1d(pre_periods)) if p in set(valid)]
    common = dict(alpha=alpha, survey_design=survey_design, **estimator_kwargs)
    out = {}

    def attempt(key, fn, *args, **kwargs):
        try:
            out[key] = fn(*args, **kwargs)
        except (ValueError, TypeError) as err:
            out[key] = {"error": str(err)}

    for period in fake_periods:
        attempt(f"fake_timing_{period}", placebo_timing_test, data, outcome, treatment, time,
                period, post_periods, **common)
    controls = np.sort(data.loc[data[treatment] == 0, unit].unique())
    attempt("fake_group", placebo_group_test, data, outcome, time, unit,
            controls[: max(1, controls.size // 2)], post_periods, treatment=treatment, **common)
    attempt("permutation", permutation_test, data, outcome, treatment, time, unit, post_periods,
            n_permutations, seed=seed, **common)
    attempt("leave_one_out", leave_one_out_test, data, outcome, treatment, time, unit,
            post_periods, **common)
    return out
