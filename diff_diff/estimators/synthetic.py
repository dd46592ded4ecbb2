"""Synthetic difference-in-differences (Arkhangelsky et al. 2021; R ``synthdid``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .._grouping import label_codes
from .._warnings import warn_user
from ..results.synthetic import SyntheticDiDResults
from ..survey.design import SurveyDesign
from ..survey.units import resolve_unit_design
from . import _synthdid as sd
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, is_int, is_prob, is_seed
from .panel import check_constant_within_unit, numeric, require_columns
from .registry import register

VARIANCE_METHODS = ("placebo", "bootstrap", "jackknife")


def _zeta(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and math.isfinite(value) and value >= 0)


@register(aliases=("SDiD",), data="panel", inference="influence", weight_types=("pweight",),
          replicate=True, bootstrap=None, event_study=False,
          example=lambda: dict(outcome="y", treatment="treated", unit="unit", time="time",
                               post_periods=[5, 6]),
          # the example panel has more treated units than controls: no placebo there
          example_settings=lambda: dict(variance_method="jackknife"))
class SyntheticDiD(Estimator):
    """Synthetic difference-in-differences on a block design (Arkhangelsky, Athey,
    Hirshberg, Imbens & Wager 2021), as R ``synthdid`` computes it.

    Unit weights on the controls and time weights on the pre-periods (module
    :mod:`diff_diff.estimators._synthdid`: Frank-Wolfe with R's regularisation,
    intercepts, stopping rule and sparsification), then the weighted DiD of the treated
    units' average.

    Parameters
    ----------
    zeta_omega, zeta_lambda : float, optional
        Ridge levels; default R's ``(n_treated * n_post)^(1/4) * noise`` and ``1e-6 *
        noise`` (``noise``: the standard deviation of the controls' pre-period first
        differences).
    variance_method : {"placebo", "bootstrap", "jackknife"}
        R's algorithms 4, 2 and 3: ``placebo`` reassigns treatment at random among the
        controls (``n_bootstrap`` times, weights re-estimated; needs more controls than
        treated units); ``bootstrap`` resamples units (weights re-estimated);
        ``jackknife`` leaves out one unit at a time with the weights fixed. The
        bootstrap and the jackknife are undefined with one treated unit (as R: NaN, with
        a warning). Under a survey design: placebo draws within strata, the bootstrap is
        the Rao-Wu rescaling bootstrap of PSUs within strata, the jackknife leaves out
        one PSU at a time (JKn, with the FPC); replicate-weight designs refit the
        estimate per replicate.
    n_bootstrap : int
        Placebo or bootstrap draws.
    seed : int, optional
    alpha : float
    cluster : str, optional
        A column constant within unit: without a survey design, the jackknife leaves
        out, and the bootstrap resamples, whole clusters (as PSUs).
    bootstrap_weights : None
        Accepted for the shared vocabulary; any other value has no effect (a warning):
        the bootstrap here resamples units.

    Examples
    --------
    >>> import diff_diff as dd
    >>> prop99 = dd.load_prop99()
    >>> res = dd.SyntheticDiD(variance_method="placebo", n_bootstrap=50, seed=0).fit(
    ...     prop99, outcome="packspercapita", treatment="california", unit="state",
    ...     time="year", post_periods=list(range(1989, 2001)))
    >>> round(res.att, 3)
    -15.604
    """

    _allowed = {"variance_method": VARIANCE_METHODS,
                "bootstrap_weights": INFERENCE_ALLOWED["bootstrap_weights"]}
    _checks = {"alpha": (is_prob, "in (0, 1)"),
               "cluster": INFERENCE_CHECKS["cluster"],
               "n_bootstrap": (lambda v: is_int(v, 2), "an integer >= 2"),
               "seed": (is_seed, "None, an integer or a numpy Generator"),
               "zeta_omega": (_zeta, "None or a number >= 0"),
               "zeta_lambda": (_zeta, "None or a number >= 0")}

    def __init__(self, zeta_omega=None, zeta_lambda=None, alpha=0.05, variance_method="placebo",
                 n_bootstrap=200, seed=None, cluster=None, bootstrap_weights=None):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, treatment: str, unit: str, time: str,
            post_periods, covariates=None,
            survey_design: SurveyDesign | None = None) -> SyntheticDiDResults:
        """Estimate the ATT of the treated block.

        Parameters
        ----------
        data : DataFrame
            Balanced panel, one row per unit and period; not modified.
        outcome, treatment, unit, time : str
            Columns; ``treatment`` marks the treated units (0/1, constant within unit).
        post_periods : list
            The periods after treatment (all after every pre-period).
        covariates : None
            Not available yet (a clear error).
        survey_design : SurveyDesign, optional
            ``pweight`` design with columns constant within unit.
        """
        self._validate()
        if self.bootstrap_weights is not None:
            warn_user("SyntheticDiD: bootstrap_weights has no effect (its bootstrap resamples "
                      "units or PSUs; there are no multiplier weights)")
        if covariates:
            raise ValueError("SyntheticDiD: covariates are not available yet")
        require_columns(data, outcome=outcome, treatment=treatment, unit=unit, time=time,
                        cluster=self.cluster)
        # Y: controls first, then treated units; unit_rows: one input row per Y row, so the
        # design's arrays (weights, strata, PSUs) follow Y's row order
        Y, n0, t0, units, periods, unit_rows = self._matrix(data, outcome, treatment, unit,
                                                            time, post_periods)
        design, metadata = resolve_unit_design(data, survey_design, unit, unit_rows,
                                               self.cluster, "SyntheticDiD")
        grouped = survey_design is not None or self.cluster is not None
        w = design.weights if survey_design is not None else None
        w1 = None if w is None else w[n0:]
        fit = sd.estimate(Y, n0, t0, w1, self.zeta_omega, self.zeta_lambda)
        rng = np.random.default_rng(self.seed)
        draws = None
        if design.replicate is not None:
            se, df, draws = self._replicate(Y, n0, t0, design, fit)
        else:
            se, draws = self._variance(Y, n0, t0, fit, w, design if grouped else None, rng)
            df = float(design.df) if survey_design is not None else None
        return SyntheticDiDResults.build(self, fit, se, df, draws, units, n0, periods, t0,
                                         metadata, n_obs=Y.size,
                                         snapshot=(Y, w1, sd.estimate))

    # ------------------------------------------------------------------ data
    def _matrix(self, data, outcome, treatment, unit, time, post_periods):
        y = numeric(data, outcome, "outcome")
        d = numeric(data, treatment, "treatment")
        if not np.isin(d, (0.0, 1.0)).all():
            raise ValueError(f"SyntheticDiD: treatment column {treatment!r} must be 0/1 (the "
                             "treated units, constant within unit)")
        unit_codes, units = label_codes(data, unit, "unit")
        check_constant_within_unit(d, unit_codes, units, treatment, "treatment")
        t_codes, periods = label_codes(data, time, "time")
        post = np.atleast_1d(np.asarray(post_periods, dtype=object)).tolist()
        missing = [p for p in post if p not in set(periods.tolist())]
        if missing or not post:
            raise ValueError(f"SyntheticDiD: post_periods {missing or post} are not periods "
                             f"of {time!r}")
        is_post = np.isin(np.asarray(periods, dtype=object), post)
        order = np.argsort(periods)
        first_post = int(np.flatnonzero(is_post[order])[0])
        if not is_post[order][first_post:].all() or first_post < 1:
            raise ValueError("SyntheticDiD: post_periods must be the last periods, after at "
                             "least one pre-period (a block design)")
        n_units, n_periods = len(units), len(periods)
        cell = unit_codes * n_periods + t_codes
        if np.bincount(cell, minlength=n_units * n_periods).max() > 1:
            raise ValueError("SyntheticDiD: more than one row for some unit and period")
        if cell.size != n_units * n_periods:
            raise ValueError("SyntheticDiD: the panel must be balanced (every unit in every "
                             "period)")
        matrix = np.full((n_units, n_periods), np.nan)
        matrix[unit_codes, t_codes] = y
        matrix = matrix[:, order]
        treated = np.zeros(n_units)
        treated[unit_codes] = d
        if not treated.any():
            raise ValueError(f"SyntheticDiD: no unit is treated ({treatment!r} is 0 throughout)")
        if treated.all():
            raise ValueError("SyntheticDiD: every unit is treated; there are no controls")
        unit_order = np.r_[np.flatnonzero(treated == 0), np.flatnonzero(treated == 1)]
        first_row = np.zeros(n_units, dtype=np.int64)
        first_row[unit_codes[::-1]] = np.arange(len(unit_codes))[::-1]
        n0 = int((treated == 0).sum())
        return (matrix[unit_order], n0, first_post, np.asarray(units)[unit_order],
                np.asarray(periods)[order], first_row[unit_order])

    # ------------------------------------------------------------------ variance
    def _variance(self, Y, n0, t0, fit, w, design, rng):
        n1 = Y.shape[0] - n0
        opts = dict(zeta_omega=fit.zeta_omega, zeta_lambda=fit.zeta_lambda,
                    min_decrease=fit.min_decrease)
        method = self.variance_method
        if method in ("bootstrap", "jackknife") and n1 == 1:
            warn_user(f"SyntheticDiD: the {method} standard error is undefined with one treated "
                      "unit (as in R synthdid); use variance_method='placebo'")
            return math.nan, None
        if method == "jackknife":
            return self._jackknife(Y, n0, t0, fit, w, design), None
        if method == "placebo":
            strata = None if design is None else design.psu_stratum[design.psu]
            draws = self._placebo(Y, n0, t0, w, strata, rng, opts, fit)
        else:
            draws = self._bootstrap(Y, n0, t0, w, design, rng, opts, fit)
        r = draws.size
        return float(math.sqrt((r - 1) / r) * np.std(draws, ddof=1)), draws

    def _placebo(self, Y, n0, t0, w, strata, rng, opts, fit):
        n1 = Y.shape[0] - n0
        if strata is None:
            if n0 <= n1:
                raise ValueError(f"SyntheticDiD: the placebo standard error needs more controls "
                                 f"({n0}) than treated units ({n1}); use "
                                 "variance_method='bootstrap' or 'jackknife'")
            groups = [(np.arange(n0), n1, None)]
        else:
            s_control, s_treated = strata[:n0], strata[n0:]
            groups = []
            for h in np.unique(s_treated):
                pool = np.flatnonzero(s_control == h)
                need = int((s_treated == h).sum())
                if pool.size <= need:
                    raise ValueError(f"SyntheticDiD: the stratified placebo needs more controls "
                                     f"than treated units in every stratum (stratum {h}: "
                                     f"{pool.size} controls, {need} treated); use "
                                     "variance_method='bootstrap' (Rao-Wu within strata) "
                                     "or 'jackknife'")
                groups.append((pool, need, h))
            others = np.flatnonzero(~np.isin(s_control, np.unique(s_treated)))
        n = Y.shape[0]
        B = self.n_bootstrap
        counts = np.zeros((B, n0), dtype=np.int64)
        target = np.zeros((B, n))
        fake_w = np.ones(n0) if w is None else w[:n0]
        for b in range(B):
            if strata is None:
                perm = rng.permutation(n0)
                fake, rest = perm[n0 - n1:], perm[:n0 - n1]
            else:
                fake, rest = [], [others]
                for pool, need, _ in groups:
                    perm = rng.permutation(pool)
                    fake.append(perm[pool.size - need:])
                    rest.append(perm[:pool.size - need])
                fake, rest = np.concatenate(fake), np.concatenate(rest)
            counts[b, rest] = 1
            target[b, fake] = fake_w[fake]
        # every draw refits both weights, starting (as R) from the fitted ones: omega of the
        # remaining controls renormalised, lambda; all draws are solved together
        return sd.refit_batch(Y, n0, t0, counts, target,
                              omega_start=np.broadcast_to(fit.omega, (B, n0)),
                              lambda_start=np.broadcast_to(fit.lam, (B, t0)), **opts)

    def _bootstrap(self, Y, n0, t0, w, design, rng, opts, fit):
        n = Y.shape[0]
        is_treated = np.arange(n) >= n0
        mults = []
        while len(mults) < self.n_bootstrap:
            if design is None:
                mult = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
            else:
                mult = _rao_wu(design, rng)
            if not (mult[is_treated] > 0).any() or not (mult[~is_treated] > 0).any():
                continue  # every draw needs treated and control units (R redraws)
            mults.append(mult)
        M = np.array(mults)
        B = M.shape[0]
        if design is not None:  # Rao-Wu: rescaled weights; PSUs left out get no weight
            w = np.ones(n) if w is None else w  # cluster= without a survey design
            counts = (M[:, :n0] > 0).astype(np.int64)
            target = np.where(is_treated, w * M, 0.0)
        else:  # resampled units: control j appears counts[b, j] times (R's Y[sort(ind), ])
            counts = M[:, :n0].astype(np.int64)
            target = np.where(is_treated, M, 0.0)
        return sd.refit_batch(Y, n0, t0, counts, target,
                              omega_start=np.broadcast_to(fit.omega, (B, n0)),
                              lambda_start=np.broadcast_to(fit.lam, (B, t0)), **opts)

    def _jackknife(self, Y, n0, t0, fit, w, design):
        n = Y.shape[0]
        t1 = Y.shape[1] - t0
        w_all = np.ones(n) if w is None else w
        if np.count_nonzero(fit.omega) <= 1:
            warn_user("SyntheticDiD: the jackknife is undefined when one control carries all "
                      "the weight (as in R synthdid)")
            return math.nan
        time = np.r_[-fit.lam, np.full(t1, 1.0 / t1)]
        series = Y @ time  # each unit's weighted post-minus-pre difference

        def tau_without(drop, boost=None):
            keep = ~drop
            omega = np.where(keep[:n0], fit.omega, 0.0)
            w1 = np.where(keep[n0:], w_all[n0:], 0.0)
            if boost is not None:  # JKn: the stratum's other PSUs stand in for the one left out
                w1 = w1 * boost[n0:]
            if omega.sum() <= 0 or w1.sum() <= 0:
                return math.nan
            return float(w1 @ series[n0:] / w1.sum() - omega @ series[:n0] / omega.sum())

        if design is None:
            u = np.array([tau_without(np.arange(n) == i) for i in range(n)])
            if np.isnan(u).any():
                return math.nan
            return float(math.sqrt((n - 1) / n * ((u - u.mean()) ** 2).sum()))
        psu = design.psu
        stratum = design.psu_stratum[psu]
        var = 0.0
        for h in np.unique(design.psu_stratum):
            members = np.flatnonzero(design.psu_stratum == h)
            if members.size < 2:
                continue
            boost = np.where(stratum == h, members.size / (members.size - 1), 1.0)
            u = np.array([tau_without(psu == j, boost) for j in members])
            if np.isnan(u).any():
                warn_user("SyntheticDiD: the PSU jackknife is undefined here (leaving out a "
                          "PSU removes every treated unit or every weighted control)")
                return math.nan
            var += design.stratum_fpc[h] * (members.size - 1) / members.size * \
                ((u - u.mean()) ** 2).sum()
        return float(math.sqrt(var))

    def _replicate(self, Y, n0, t0, design, fit):
        from ..inference.estimate import Estimate, Inference

        opts = dict(zeta_omega=fit.zeta_omega, zeta_lambda=fit.zeta_lambda,
                    min_decrease=fit.min_decrease)

        def refit_batch(W):  # (n, R) -> (R, 1); left-out units masked, not removed
            W = np.asarray(W, float).T
            on, w1 = W[:, :n0] > 0, W[:, n0:]
            ok = on.any(axis=1) & (w1 > 0).any(axis=1)
            out = np.full((W.shape[0], 1), np.nan)
            if ok.any():
                target = np.concatenate([np.zeros((int(ok.sum()), n0)), w1[ok]], axis=1)
                out[ok, 0] = sd.refit_batch(Y, n0, t0, on[ok].astype(np.int64), target,
                                            **opts)
            return out

        estimate = Estimate(np.array([fit.tau]), None,
                            reestimate=lambda w: refit_batch(np.asarray(w)[:, None])[0],
                            reestimate_batch=refit_batch, name="SyntheticDiD")
        var = Inference(estimate, design, alpha=self.alpha).variance()
        return float(var.se[0]), var.df, None


def _rao_wu(design, rng):
    """Rao-Wu rescaled bootstrap multipliers per row: in each stratum ``n_h - 1`` PSUs drawn
    with replacement, weights times ``n_h / (n_h - 1)`` times the draw count."""
    n_psu = design.psu_stratum.size
    mult_psu = np.zeros(n_psu)
    for h in np.unique(design.psu_stratum):
        members = np.flatnonzero(design.psu_stratum == h)
        k = members.size
        if k < 2:
            mult_psu[members] = 1.0
            continue
        counts = np.bincount(rng.integers(0, k, k - 1), minlength=k)
        mult_psu[members] = counts * k / (k - 1)
    return mult_psu[design.psu]
