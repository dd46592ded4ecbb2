"""Regression DiD estimators on the one WLS core: 2x2 DiD, TWFE, event study."""

from __future__ import annotations

import warnings


import numpy as np
import pandas as pd

from .._grouping import label_codes
from .._warnings import warn_user
from ..inference.regression import VCOV_TYPES, regression_variance, wild_contrast_inference
from ..linalg.cells import grid_cell_fit
from ..linalg.wls import RANK_ACTIONS, wls
from ..survey.design import WEIGHT_TYPES, SurveyDesign
from ..survey.units import resolve_row_design
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator
from .panel import numeric, require_columns
from .registry import register


class _Regression(Estimator):
    """Shared machinery: data checks, design, weights, fit, variance."""

    _allowed = {
        **INFERENCE_ALLOWED,
        "vcov_type": VCOV_TYPES,
        "rank_deficient_action": RANK_ACTIONS,
        "inference": ("analytic", "analytical", "wild_bootstrap"),  # "analytical": 3.x spelling
    }
    _checks = INFERENCE_CHECKS

    def __init__(self, vcov_type="hc1", cluster=None, alpha=0.05, rank_deficient_action="warn",
                 inference="analytic", n_bootstrap=999, bootstrap_weights="rademacher", seed=None):
        self._store(locals())

    def _wild(self, fit, y, absorb, var, cluster, contrast, design):
        """Wild cluster bootstrap for ``contrast'b`` when ``inference="wild_bootstrap"``."""
        if self.inference != "wild_bootstrap":
            return None
        if self.n_bootstrap < 2:
            raise ValueError(f"{type(self).__name__}: inference='wild_bootstrap' needs "
                             f"n_bootstrap >= 2, got {self.n_bootstrap}")
        return wild_contrast_inference(fit, y, absorb, var, cluster, contrast, design,
                                       self.n_bootstrap, self.bootstrap_weights or "rademacher",
                                       self.seed, self.alpha)

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _binary(data, col, role):
        values = numeric(data, col, role)
        if not np.isin(values, (0.0, 1.0)).all():
            bad = np.unique(values[~np.isin(values, (0.0, 1.0))])[:3]
            raise ValueError(f"{role} column {col!r} must be binary 0/1, found {list(bad)}")
        return values

    def _weights(self, data, survey_design):
        """Analysis weights, frequency flag, resolved design, metadata."""
        design, meta = resolve_row_design(data, survey_design, type(self).__name__)
        if design is None:
            return None, False, None, None
        return design.weights, design.weight_type == "fweight", design, meta

    @staticmethod
    def _dummies(data, cols):
        """Indicator columns for ``fixed_effects`` (first level dropped)."""
        blocks, names = [], []
        for col in cols or []:
            codes, labels = label_codes(data, col, "fixed_effects")
            for j in range(1, len(labels)):
                blocks.append((codes == j).astype(float))
                names.append(f"{col}[{labels[j]}]")
        return blocks, names

    @staticmethod
    def _absorb(data, cols):
        return [label_codes(data, c, "absorb")[0] for c in cols or []]

    def _design_fit(self, data, y, blocks, names, fixed_effects, absorb, survey_design,
                    expected_collinear):
        """Design matrix (with ``fixed_effects`` dummies), weights and the fit."""
        dummies, dummy_names = self._dummies(data, fixed_effects)
        x = np.column_stack(blocks + dummies)
        names = names + dummy_names
        weights, frequency, design, meta = self._weights(data, survey_design)
        codes = self._absorb(data, absorb)
        fit = self._wls(y, x, names, weights, frequency, codes,
                        expected_collinear=tuple(expected_collinear) + tuple(dummy_names))
        return fit, x, names, frequency, design, meta, codes

    def _cell_fit(self, data, y, cells, names, covariates, time, unit_codes, survey_design):
        """WLS of ``y`` on one indicator per cell (``cells``: each row's cell, -1 for none)
        and the covariates, absorbing units and periods; for ``hc2``/``hc3``/``hc2_bm``,
        whose leverages need them in the design, the periods enter as dummies instead.
        Returns ``(fit, x, absorb, weights, frequency, design, meta)``."""
        time_codes = label_codes(data, time, "time")[0]
        weights, frequency, design, meta = self._weights(data, survey_design)
        absorb = [unit_codes, time_codes]
        if (not covariates and not frequency and self.vcov_type in ("hc1", "cr1")
                and getattr(self, "inference", "analytic") != "wild_bootstrap"
                and (design is None or design.replicate is None)):
            # a balanced panel: solved on the (cohort pattern, period) cells, no n x k design
            fit = grid_cell_fit(y, cells, len(names), unit_codes, time_codes, weights,
                                list(names), self.rank_deficient_action)
            if fit is not None:
                return fit, None, absorb, weights, frequency, design, meta
        x = np.zeros((y.size, len(names) + len(covariates)), order="F")
        inside = np.flatnonzero(cells >= 0)
        x[inside, cells[inside]] = 1.0
        for j, c in enumerate(covariates):
            x[:, len(names) + j] = numeric(data, c, "covariate")
        extra = []
        if self.vcov_type in ("hc2", "hc3", "hc2_bm"):
            n_t = int(time_codes.max()) + 1
            dummies = np.zeros((y.size, n_t - 1), order="F")
            later = np.flatnonzero(time_codes > 0)
            dummies[later, time_codes[later] - 1] = 1.0
            x = np.column_stack([x, dummies])
            extra = [f"{time}[{j}]" for j in range(1, n_t)]
            absorb = [unit_codes]
        fit = self._wls(y, x, list(names) + list(covariates) + extra, weights, frequency,
                        absorb, expected_collinear=tuple(extra))
        return fit, x, absorb, weights, frequency, design, meta

    def _wls(self, y, x, names, weights, frequency, absorb, expected_collinear=()):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = wls(y, x, names, weights, absorb, self.rank_deficient_action, frequency)
        for w in caught:
            dropped = [n for n, k in zip(names, fit.kept) if not k]
            if set(dropped) <= set(expected_collinear):
                continue
            warn_user(w.message, w.category)
        return fit

    def _infer(self, fit, y, x, frequency, absorb, design, cluster, contrast, contrasts=None,
               vcov_type=None, default_cluster=False, groups=None):
        """The coefficients' covariance (``vcov_type`` menu, or the survey design with replicate
        refits) and, with ``inference="wild_bootstrap"``, the wild bootstrap of ``contrast``."""
        vcov_type = vcov_type or self.vcov_type
        # only CR2 (hc2_bm) needs to know whether the absorbed effects nest in the clusters
        nested = (vcov_type == "hc2_bm" and bool(absorb) and cluster is not None
                  and _nested(absorb, cluster))

        def refit(w):
            return wls(y, x, fit.names, w, absorb, "silent", frequency).coef[fit.kept]
        var = regression_variance(
            fit, vcov_type=vcov_type if cluster is None or vcov_type != "hc1" else "cr1",
            cluster=cluster, design=design, contrasts=contrasts, absorbed_nested_in_cluster=nested,
            single_absorbed=absorb[0] if len(absorb) == 1 else None, refit=refit,
            default_cluster=default_cluster, name=type(self).__name__, groups=groups)
        if np.isnan(contrast).any():
            return var, None
        return var, self._wild(fit, y, absorb, var, cluster, contrast, design)


@register(aliases=("DiD",), data="panel or cross-section", inference="regression",
          weight_types=WEIGHT_TYPES, bootstrap="wild",
          example=lambda: dict(outcome="y", treatment="treated", time="post", covariates=["x1"]))
class DifferenceInDifferences(_Regression):
    """The 2x2 difference-in-differences regression.

    ``y = a + b treat + c post + ATT treat*post (+ X g + fixed effects) + e``,
    by (weighted) least squares; the ATT is the interaction coefficient.
    Standard errors: ``vcov_type`` ``classical``, ``hc1`` (default), ``hc2``,
    ``hc3``, ``cr1`` (with ``cluster``), or ``hc2_bm`` (HC2/CR2 with
    Bell-McCaffrey / Satterthwaite degrees of freedom, R ``clubSandwich``).
    Weights come from ``survey_design``: analytic (``aweight``) or frequency
    (``fweight``) weights alone give a weighted regression with the chosen
    ``vcov_type`` (R ``lm(weights=)``); probability weights or a design with
    strata, PSUs, FPC or replicates give design-based variance (Taylor
    linearization of the scores, R ``svyglm``; or replicate refits), and then
    only the default ``vcov_type`` is allowed.

    Parameters
    ----------
    vcov_type : str, default "hc1"
        ``"classical"``, ``"hc1"``, ``"hc2"``, ``"hc3"``, ``"cr1"`` (needs ``cluster``) or
        ``"hc2_bm"``.
    cluster : str, optional
        Column whose values are the clusters of ``cr1`` / ``hc2_bm`` and of the wild
        bootstrap.
    alpha : float, default 0.05
        Significance level of the confidence intervals.
    rank_deficient_action : {"warn", "error", "silent"}, default "warn"
        What to do when regressors are collinear (the collinear columns are dropped).
    inference : {"analytic", "wild_bootstrap"}, default "analytic"
        ``"wild_bootstrap"`` replaces the analytic p-value and interval of the ATT by a
        wild cluster bootstrap (``"analytical"`` is the 3.x spelling of ``"analytic"``).
    n_bootstrap : int, default 999
        Wild bootstrap draws.
    bootstrap_weights : {"rademacher", "mammen", "webb"}, default "rademacher"
        Wild bootstrap multipliers.
    seed : int, optional
        Seed of the wild bootstrap.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from diff_diff import DifferenceInDifferences
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"treat": np.repeat([0, 1], 100), "post": np.tile([0, 1], 100)})
    >>> df["y"] = 1 + df["treat"] + 0.5 * df["post"] + 2 * df["treat"] * df["post"] + rng.normal(0, 0.1, 200)
    >>> res = DifferenceInDifferences().fit(df, "y", "treat", "post")
    >>> round(res.att, 1)
    2.0
    """

    def fit(
        self,
        data: pd.DataFrame,
        outcome: str,
        treatment: str,
        time: str | None = None,
        covariates: list[str] | None = None,
        fixed_effects: list[str] | None = None,
        absorb: list[str] | None = None,
        survey_design: SurveyDesign | None = None,
        post: str | None = None,
    ):
        """Fit the 2x2 regression and return the interaction coefficient as the ATT.

        Parameters
        ----------
        data : DataFrame
            One row per observation (a panel or repeated cross-sections).
        outcome : str
            Outcome column.
        treatment : str
            Treated-group indicator (0/1).
        time : str
            Post-period indicator (0/1).
        covariates : list of str, optional
            Numeric columns added to the regression.
        fixed_effects : list of str, optional
            Categorical columns entered as dummies (first level dropped).
        absorb : list of str, optional
            Categorical columns absorbed (within transformation) instead of estimated.
        survey_design : SurveyDesign, optional
            Weights and sampling design. Analytic or frequency weights alone give a weighted
            regression with ``vcov_type``; probability weights, strata, PSUs, FPC or replicate
            weights give design-based variance (Taylor linearization or replicate refits).
        post : str, optional
            Synonym of ``time`` (the 3.x name); give one of the two.

        Returns
        -------
        RegressionResults
            The ATT with its inference, the coefficient table and the design metadata.

        Raises
        ------
        ValueError
            If a column is missing or not 0/1, a treatment x time cell is empty (or has no
            positive weight), or the interaction is collinear with the other regressors.

        Examples
        --------
        See :class:`DifferenceInDifferences`.
        """
        from ..results.regression import RegressionResults

        self._validate()
        if time is None and post is None:
            raise ValueError("DifferenceInDifferences: give the post-period indicator as time=")
        if time is not None and post is not None and time != post:
            raise ValueError("give either time= or post= (synonyms), not both")
        time = time if time is not None else post
        covariates = _as_list(covariates)
        fixed_effects, absorb = _as_list(fixed_effects), _as_list(absorb)
        require_columns(data, outcome=outcome, treatment=treatment, time=time,
                        covariates=covariates, fixed_effects=fixed_effects, absorb=absorb,
                        cluster=self.cluster)
        d = self._binary(data, treatment, "treatment")
        p = self._binary(data, time, "time")
        y = numeric(data, outcome, "outcome")
        blocks = [np.ones(len(data)), d, p, d * p] + [numeric(data, c, "covariate") for c in covariates]
        names = ["(Intercept)", treatment, time, f"{treatment}:{time}"] + covariates
        _check_cells(d, p, np.ones(d.size, dtype=bool), treatment, time)
        fit, x, names, frequency, design, meta, codes = self._design_fit(
            data, y, blocks, names, fixed_effects, absorb, survey_design,
            ("(Intercept)", treatment, time))
        target = names.index(f"{treatment}:{time}")
        _check_cells(d, p, fit.weights > 0, treatment, time)  # cells left without weight
        if not fit.kept[target]:
            raise ValueError(
                "DifferenceInDifferences: the treatment x time interaction is not identified "
                "(collinear with the covariates or fixed effects)"
            )
        cluster = None if self.cluster is None else label_codes(data, self.cluster, "cluster")[0]
        var, wild = self._infer(fit, y, x, frequency, codes, design, cluster,
                                _unit_vector(fit, target))
        positive = fit.weights > 0
        res = RegressionResults._build(
            self, fit, var, target, meta,
            n_treated=int(((d == 1) & positive).sum()), n_control=int(((d == 0) & positive).sum()),
            title="Difference-in-differences (2x2)", wild=wild,
        )
        res._warn_if_not_identified()
        return res


@register(aliases=("TWFE",), data="panel", inference="regression", weight_types=WEIGHT_TYPES,
          bootstrap="wild", example=lambda: dict(outcome="y", treatment="d", unit="unit",
                                                 time="time"))
class TwoWayFixedEffects(_Regression):
    """Two-way fixed-effects DiD: ``y_it = a_i + l_t + ATT D_it (+ X g) + e``.

    Unit and time effects are absorbed; ``D`` is the unit-period treatment
    status (or ``treatment * post`` when ``post`` is given). Standard errors
    are clustered by unit by default (``vcov_type=None``: CR1 with
    ``cluster`` or the unit); an explicit one-way type (``classical``,
    ``hc1``, ``hc2``, ``hc3``) without ``cluster`` does not cluster, and
    ``hc2_bm`` is CR2 by ``cluster`` or unit. The small-sample factors count
    the absorbed effects as the dummy-variable regression does. With
    staggered adoption the TWFE coefficient is a weighted average of
    comparisons that can have negative weights (Goodman-Bacon 2021): a
    warning points to :class:`~diff_diff.CallawaySantAnna`.

    Parameters
    ----------
    vcov_type : str, optional
        ``"classical"``, ``"hc1"``, ``"hc2"``, ``"hc3"``, ``"cr1"`` (needs ``cluster``) or
        ``"hc2_bm"``. ``None`` (default) clusters by ``cluster`` or by unit (CR1).
    cluster : str, optional
        Column whose values are the clusters of ``cr1`` / ``hc2_bm`` and of the wild
        bootstrap.
    alpha : float, default 0.05
        Significance level of the confidence intervals.
    rank_deficient_action : {"warn", "error", "silent"}, default "warn"
        What to do when regressors are collinear (the collinear columns are dropped).
    inference : {"analytic", "wild_bootstrap"}, default "analytic"
        ``"wild_bootstrap"`` replaces the analytic p-value and interval of the ATT by a
        wild cluster bootstrap (``"analytical"`` is the 3.x spelling of ``"analytic"``).
    n_bootstrap : int, default 999
        Wild bootstrap draws.
    bootstrap_weights : {"rademacher", "mammen", "webb"}, default "rademacher"
        Wild bootstrap multipliers.
    seed : int, optional
        Seed of the wild bootstrap.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from diff_diff import TwoWayFixedEffects
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"unit": np.repeat(np.arange(30), 4), "time": np.tile(range(4), 30)})
    >>> df["d"] = ((df["unit"] < 10) & (df["time"] >= 2)).astype(int)
    >>> df["y"] = 0.1 * df["unit"] + 1.5 * df["d"] + rng.normal(0, 0.1, len(df))
    >>> res = TwoWayFixedEffects().fit(df, "y", "d", unit="unit", time="time")
    >>> round(res.att, 1)
    1.5
    """

    _allowed = {**_Regression._allowed, "vcov_type": (None,) + VCOV_TYPES}

    def __init__(self, vcov_type=None, cluster=None, alpha=0.05, rank_deficient_action="warn",
                 inference="analytic", n_bootstrap=999, bootstrap_weights="rademacher", seed=None):
        super().__init__(vcov_type, cluster, alpha, rank_deficient_action, inference,
                         n_bootstrap, bootstrap_weights, seed)

    def fit(
        self,
        data: pd.DataFrame,
        outcome: str,
        treatment: str,
        unit: str,
        time: str,
        covariates: list[str] | None = None,
        survey_design: SurveyDesign | None = None,
        post: str | None = None,
    ):
        """Fit the two-way fixed-effects regression.

        Parameters
        ----------
        data : DataFrame
            A panel: one row per unit and period.
        outcome : str
            Outcome column.
        treatment : str
            Treatment status of the unit in the period (0/1); with ``post``, the
            treated-group indicator.
        unit, time : str
            Unit and period columns (their effects are absorbed).
        covariates : list of str, optional
            Time-varying numeric columns added to the regression.
        survey_design : SurveyDesign, optional
            Weights and sampling design. Analytic or frequency weights alone give a weighted
            regression with ``vcov_type``; probability weights, strata, PSUs, FPC or replicate
            weights give design-based variance (Taylor linearization or replicate refits).
        post : str, optional
            Post-period indicator; the treatment is then ``treatment * post``.

        Returns
        -------
        RegressionResults
            The ATT and its inference; ``decompose()`` gives the Goodman-Bacon decomposition.

        Raises
        ------
        ValueError
            If a column is missing or not 0/1, or the treatment is collinear with the fixed
            effects.

        Examples
        --------
        See :class:`TwoWayFixedEffects`.
        """
        from ..results.regression import RegressionResults

        self._validate()
        covariates = _as_list(covariates)
        require_columns(data, outcome=outcome, treatment=treatment, unit=unit, time=time,
                        covariates=covariates, cluster=self.cluster, post=post)
        d = self._binary(data, treatment, "treatment")
        if post is not None:
            d = d * self._binary(data, post, "post")
        y = numeric(data, outcome, "outcome")
        unit_codes, _ = label_codes(data, unit, "unit")
        time_codes, times = label_codes(data, time, "time")
        _warn_staggered(d, unit_codes, time_codes)
        names = ["treatment"] + covariates
        blocks = [d] + [numeric(data, c, "covariate") for c in covariates]
        weights, frequency, design, meta = self._weights(data, survey_design)
        vcov_type = self.vcov_type or "cr1"
        one_way = vcov_type in ("classical", "hc1", "hc2", "hc3") and self.cluster is None
        cluster_col = self.cluster if self.cluster is not None else unit
        cluster = (None if one_way else unit_codes if cluster_col == unit
                   else label_codes(data, cluster_col, "cluster")[0])
        absorb = [unit_codes, time_codes]
        if vcov_type in ("hc2", "hc3", "hc2_bm"):
            # leverages/CR2 need the time effects in the design: absorb units only
            time_dummies = [(time_codes == j).astype(float) for j in range(1, len(times))]
            blocks += time_dummies
            names += [f"{time}[{t}]" for t in times[1:]]
            absorb = [unit_codes]
        x = np.column_stack(blocks)
        fit = self._wls(y, x, names, weights, frequency, absorb,
                        expected_collinear=tuple(n for n in names if n.startswith(f"{time}[")))
        if not fit.kept[0]:
            raise ValueError("TwoWayFixedEffects: the treatment is collinear with the fixed effects")
        var, wild = self._infer(fit, y, x, frequency, absorb, design, cluster,
                                _unit_vector(fit, 0), vcov_type=vcov_type,
                                default_cluster=self.cluster is None)
        positive = fit.weights > 0
        n_treated = int(np.count_nonzero(np.bincount(unit_codes[(d == 1) & positive])))
        res = RegressionResults._build(
            self, fit, var, 0, meta,
            n_treated=n_treated,
            n_control=int(np.count_nonzero(np.bincount(unit_codes[positive]))) - n_treated,
            title="Two-way fixed effects DiD", wild=wild,
        )
        design_columns = [] if survey_design is None else survey_design.columns()
        columns = list(dict.fromkeys([unit, time, *design_columns]))
        res._panel = dict(frame=data[columns].assign(**{_Y: y, _D: d}), unit=unit, time=time,
                          design=survey_design, covariates=bool(covariates), outcome=_Y,
                          treatment=_D)
        res._warn_if_not_identified()
        return res


# private columns of the frame TWFE results keep for decompose()
_Y, _D = "__diff_diff_outcome__", "__diff_diff_treatment__"


def _check_cells(d, p, positive, treatment, time) -> None:
    """The 2x2 needs observations (with positive weight) in all four treatment x time cells."""
    empty = [f"{treatment}={a}, {time}={b}" for a in (0, 1) for b in (0, 1)
             if not np.any(positive & (d == a) & (p == b))]
    if empty:
        raise ValueError(f"DifferenceInDifferences: no observations with {' or '.join(empty)}; "
                         "the 2x2 comparison needs all four treatment x time cells")


def _unit_vector(fit, target):
    """Contrast selecting the target column among the kept coefficients."""
    vec = np.zeros(fit.rank)
    vec[int(fit.kept[:target].sum())] = 1.0
    return vec


def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _nested(absorb, cluster) -> bool:
    """Every absorbed level sits in one cluster."""
    for codes in absorb:
        first = np.empty(int(codes.max()) + 1, dtype=np.int64)
        first[codes] = cluster
        if (first[codes] != cluster).any():
            return False
    return True


def _warn_staggered(d, unit_codes, time_codes):
    treated = d == 1
    if not treated.any():
        return
    start = np.full(int(unit_codes.max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(start, unit_codes[treated], time_codes[treated])
    starts = np.unique(start[start < np.iinfo(np.int64).max])
    if starts.size > 1:
        warn_user(
            f"TwoWayFixedEffects: treatment starts in {starts.size} different periods "
            "(staggered adoption); the TWFE coefficient can weight some comparisons negatively "
            "(Goodman-Bacon 2021). Consider CallawaySantAnna for heterogeneity-robust effects.")


@register(aliases=("EventStudy",), data="panel or cross-section", inference="regression",
          weight_types=WEIGHT_TYPES, bootstrap="wild", event_study=True,
          example=lambda: dict(outcome="y", treatment="treated", time="time",
                               post_periods=[4, 5, 6]))
class MultiPeriodDiD(_Regression):
    """Event-study regression with one coefficient per period.

    ``y = a + b treat + sum_t l_t 1{t} + sum_{t != r} d_t treat 1{t} (+ X g) + e``:
    ``d_t`` is the effect in period t relative to the reference period r
    (default: the last period before the first post period); the average
    post-period ATT is the mean of ``d_t`` over ``post_periods`` with its
    standard error from the coefficient covariance (and, with
    ``vcov_type="hc2_bm"``, the Satterthwaite df of that contrast).

    Parameters
    ----------
    vcov_type : str, default "hc1"
        ``"classical"``, ``"hc1"``, ``"hc2"``, ``"hc3"``, ``"cr1"`` (needs ``cluster``) or
        ``"hc2_bm"``.
    cluster : str, optional
        Column whose values are the clusters of ``cr1`` / ``hc2_bm`` and of the wild
        bootstrap.
    alpha : float, default 0.05
        Significance level of the confidence intervals.
    rank_deficient_action : {"warn", "error", "silent"}, default "warn"
        What to do when regressors are collinear (the collinear columns are dropped).
    inference : {"analytic", "wild_bootstrap"}, default "analytic"
        ``"wild_bootstrap"`` replaces the analytic p-value and interval of the ATT by a
        wild cluster bootstrap (``"analytical"`` is the 3.x spelling of ``"analytic"``).
    n_bootstrap : int, default 999
        Wild bootstrap draws.
    bootstrap_weights : {"rademacher", "mammen", "webb"}, default "rademacher"
        Wild bootstrap multipliers.
    seed : int, optional
        Seed of the wild bootstrap.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from diff_diff import MultiPeriodDiD
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"unit": np.repeat(np.arange(40), 6), "time": np.tile(range(6), 40)})
    >>> df["treated"] = (df["unit"] < 20).astype(int)
    >>> df["y"] = 2.0 * df["treated"] * (df["time"] >= 3) + rng.normal(0, 0.1, len(df))
    >>> res = MultiPeriodDiD().fit(df, "y", "treated", "time", post_periods=[3, 4, 5])
    >>> round(res.avg_att, 1)
    2.0
    """

    def fit(
        self,
        data: pd.DataFrame,
        outcome: str,
        treatment: str,
        time: str,
        post_periods: list | None = None,
        reference_period=None,
        unit: str | None = None,
        covariates: list[str] | None = None,
        fixed_effects: list[str] | None = None,
        absorb: list[str] | None = None,
        survey_design: SurveyDesign | None = None,
    ):
        """Fit the event-study regression.

        Parameters
        ----------
        data : DataFrame
            One row per observation.
        outcome : str
            Outcome column.
        treatment : str
            Treated-group indicator (0/1, constant within unit).
        time : str
            Period column.
        post_periods : list, optional
            Periods after treatment (give these or ``reference_period``).
        reference_period : optional
            The omitted period; by default the last period before ``post_periods``.
        unit : str, optional
            Unit column, used to check that ``treatment`` is constant within unit.
        covariates : list of str, optional
            Numeric columns added to the regression.
        fixed_effects : list of str, optional
            Categorical columns entered as dummies (first level dropped).
        absorb : list of str, optional
            Categorical columns absorbed instead of estimated.
        survey_design : SurveyDesign, optional
            Weights and sampling design. Analytic or frequency weights alone give a weighted
            regression with ``vcov_type``; probability weights, strata, PSUs, FPC or replicate
            weights give design-based variance (Taylor linearization or replicate refits).

        Returns
        -------
        MultiPeriodResults
            One effect per period relative to the reference, and their post-period average.

        Raises
        ------
        ValueError
            If a column is missing or not 0/1, ``treatment`` varies within a unit, or the
            periods given are not in the data.

        Examples
        --------
        See :class:`MultiPeriodDiD`.
        """
        from ..results.regression import MultiPeriodResults

        self._validate()
        covariates = _as_list(covariates)
        fixed_effects, absorb = _as_list(fixed_effects), _as_list(absorb)
        require_columns(data, outcome=outcome, treatment=treatment, time=time, unit=unit,
                        covariates=covariates, fixed_effects=fixed_effects, absorb=absorb,
                        cluster=self.cluster)
        d = self._binary(data, treatment, "treatment")
        if unit is not None:
            per_unit = pd.Series(d).groupby(data[unit].to_numpy()).nunique()
            if (per_unit > 1).any():
                raise ValueError(
                    f"treatment column {treatment!r} varies within unit(s) "
                    f"{list(per_unit.index[per_unit > 1][:3])}; MultiPeriodDiD needs the "
                    "treated-group indicator (constant within unit)"
                )
        y = numeric(data, outcome, "outcome")
        time_codes, periods = label_codes(data, time, "time")
        periods = list(periods)
        post_periods, reference = _event_periods(periods, post_periods, reference_period)
        ref_code = periods.index(reference)
        blocks = [np.ones(len(data)), d]
        names = ["(Intercept)", treatment]
        for j in range(1, len(periods)):
            blocks.append((time_codes == j).astype(float))
            names.append(f"{time}[{periods[j]}]")
        effect_names = []
        for j, period in enumerate(periods):
            if j == ref_code:
                continue
            blocks.append(d * (time_codes == j))
            effect_names.append(f"{treatment}:{time}[{period}]")
        names += effect_names + covariates
        blocks += [numeric(data, c, "covariate") for c in covariates]
        fit, x, names, frequency, design, meta, codes = self._design_fit(
            data, y, blocks, names, fixed_effects, absorb, survey_design,
            names[:2 + len(periods) - 1])
        kept_names = [n for n, k in zip(names, fit.kept) if k]
        missing = [n for n in effect_names if n not in kept_names]
        if missing:
            warn_user(f"MultiPeriodDiD: period effects {missing} are not identified")
        effect_idx = [kept_names.index(n) if n in kept_names else -1 for n in effect_names]
        effect_periods = [p for p in periods if p != reference]
        contrast = np.zeros((1, fit.rank))
        post_idx = [i for i, p in zip(effect_idx, effect_periods) if p in post_periods]
        if any(i < 0 for i in post_idx) or not post_idx:
            contrast[:] = np.nan
        else:
            contrast[0, post_idx] = 1.0 / len(post_idx)
        cluster = None if self.cluster is None else label_codes(data, self.cluster, "cluster")[0]
        contrasts = np.vstack([np.eye(fit.rank), np.nan_to_num(contrast)])
        var, wild = self._infer(fit, y, x, frequency, codes, design, cluster, contrast[0],
                                contrasts=contrasts)
        positive = fit.weights > 0
        res = MultiPeriodResults._build_event(
            self, fit, var, meta, effect_idx, effect_periods, reference, post_periods, contrast,
            n_treated=int(((d == 1) & positive).sum()), n_control=int(((d == 0) & positive).sum()),
            wild=wild,
        )
        res._warn_if_not_identified()
        return res


def _event_periods(periods, post_periods, reference):
    if post_periods is None and reference is None:
        raise ValueError(
            "MultiPeriodDiD: give post_periods (the treated periods) or reference_period"
        )
    if post_periods is not None:
        post_periods = list(post_periods)
        unknown = [p for p in post_periods if p not in periods]
        if unknown:
            raise ValueError(f"post_periods {unknown} are not periods of the data")
    if reference is None:
        before = [p for p in periods if p < min(post_periods)]
        if not before:
            raise ValueError("MultiPeriodDiD: no period before the first post period")
        reference = before[-1]
    if reference not in periods:
        raise ValueError(f"reference_period {reference!r} is not a period of the data")
    if post_periods is None:
        post_periods = [p for p in periods if p > reference]
    if reference in post_periods:
        raise ValueError("reference_period cannot be one of the post_periods")
    if not post_periods:
        raise ValueError("MultiPeriodDiD: no post period after the reference period")
    return post_periods, reference
