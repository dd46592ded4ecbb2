"""de Chaisemartin & D'Haultfoeuille's event-study DiD for treatments that switch (R/Stata
``did_multiplegt_dyn``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from .._grouping import label_codes
from .._warnings import warn_user
from ..inference.estimate import Estimate
from ..results.dcdh import ChaisemartinDHaultfoeuilleResults
from .base import INFERENCE_ALLOWED, INFERENCE_CHECKS, Estimator, Sample, is_int
from .panel import (balanced_wide, check_constant_within_unit, number_label, numeric,
                    require_columns)
from .registry import register


@register(aliases=("DCDH",), data="panel", inference="influence", event_study=True,
          example=lambda: dict(outcome="y", unit="unit", time="time", treatment="d"),
          example_settings=lambda: dict())
class ChaisemartinDHaultfoeuille(Estimator):
    """Event-study DiD for binary, non-binary and switching treatments (de Chaisemartin &
    D'Haultfoeuille 2024, "Difference-in-differences estimators of intertemporal treatment
    effects"; R/Stata ``did_multiplegt_dyn``).

    A group's first switch is the first period ``F_g`` its treatment differs from its
    first-period value ``D_g1``. For each horizon ``l``, each switcher's outcome change
    from ``F_g - 1`` to ``F_g - 1 + l`` is compared with the mean change of the groups
    with the same ``D_g1`` that have not switched by ``F_g - 1 + l``; ``DID_l`` averages
    these over the switchers that have such controls, with sign +1 for switchers up and
    -1 for switchers down (so it is the effect of more treatment). Placebos compare the
    changes from ``F_g - 1`` back to ``F_g - 1 - l`` for the same switchers and controls.
    With one effect and a binary absorbing treatment ``DID_1`` is the DID_M of de
    Chaisemartin & D'Haultfoeuille (2020).

    Normalised effects divide ``DID_l`` by the switchers' average cumulated treatment
    change; the average total effect is the ratio of the horizon-weighted sums. Groups
    whose treatment later moves both above and below ``D_g1`` are dropped (as the
    reference does by default).

    Parameters
    ----------
    placebo : bool
        Also estimate placebos ``-1 .. -L_max`` (where pre-periods allow).
    drop_larger_lower : bool
        Drop groups whose treatment goes both above and below its first value.
    same_switchers : bool
        Compute every effect, placebo, normalised effect and the average total effect on
        the same switchers: those observed ``L`` periods after their switch with controls
        then (``L`` the number of effects estimated), as ``did_multiplegt_dyn``'s
        ``same_switchers`` (so the effects' path is not a change of composition). Ignored
        with ``fit(trends_lin=True)``, whose effect ``l`` already uses the switchers
        reaching ``l`` (as the reference does).
    same_switchers_pl : bool
        With ``same_switchers=True`` (required; a ``ValueError`` otherwise, as with
        ``placebo=False``): the placebos and normalised placebos use only those of the same
        switchers observed for every placebo lag, i.e. at ``F_g - 1 - P`` (``P`` the number
        of placebos estimated), as ``did_multiplegt_dyn``'s ``same_switchers_pl``; the
        effects are unchanged. Ignored with ``fit(trends_lin=True)``, whose placebo ``l``
        already uses the switchers reaching lag ``l`` (as the reference does).
    only_never_switchers : bool
        Compare switchers only with groups that never switch (of the same first-period
        treatment and ``trends_nonparam`` cell), not with the not yet switched
        (``did_multiplegt_dyn``'s ``only_never_switchers``). Switchers without such a
        group are left out.
    effects_equal : bool
        Also test that all effects ``DID_1 .. DID_L`` are equal (``did_multiplegt_dyn``'s
        ``effects_equal``): a Wald test of the ``L - 1`` demeaned effects with their
        covariance, in :attr:`~ChaisemartinDHaultfoeuilleResults.joint_tests`.
    alpha, cluster, n_bootstrap, bootstrap_weights, seed, cband
        The shared inference settings; influence values are per group.

    Examples
    --------
    >>> import diff_diff as dd
    >>> from diff_diff.datasets import example_panel
    >>> res = dd.DCDH().fit(example_panel(), outcome="y", unit="unit", time="time",
    ...                     treatment="d", L_max=2)
    >>> round(res.att, 3), res.event_study_effects["event_time"].tolist()
    (0.98, [-2, -1, 1, 2])
    """

    _allowed = dict(INFERENCE_ALLOWED)
    _checks = {**INFERENCE_CHECKS,
               "placebo": (lambda v: isinstance(v, bool), "True or False"),
               "drop_larger_lower": (lambda v: isinstance(v, bool), "True or False"),
               "same_switchers": (lambda v: isinstance(v, bool), "True or False"),
               "same_switchers_pl": (lambda v: isinstance(v, bool), "True or False"),
               "only_never_switchers": (lambda v: isinstance(v, bool), "True or False"),
               "effects_equal": (lambda v: isinstance(v, bool), "True or False")}
    _results_class = ChaisemartinDHaultfoeuilleResults

    def __init__(self, alpha=0.05, cluster=None, n_bootstrap=0, bootstrap_weights="rademacher",
                 seed=None, cband=True, placebo=True, drop_larger_lower=True,
                 same_switchers=False, only_never_switchers=False, effects_equal=False,
                 same_switchers_pl=False):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str | None = None,
            time: str | None = None, treatment: str | None = None, L_max: int | None = None,
            survey_design=None, group: str | None = None, controls=None,
            trends_lin: bool = False, trends_nonparam=None, covariates=None,
            trends_linear=None) -> ChaisemartinDHaultfoeuilleResults:
        """Estimate ``DID_1 .. DID_L_max`` (default ``L_max=1``), the placebos, the
        normalised effects and the average total effect.

        Parameters
        ----------
        data : DataFrame
            A balanced group x period panel, one row per cell; not modified.
        outcome, unit, time, treatment : str
            ``treatment``: numeric (binary or not), may switch on and off.
        L_max : int, optional
            Number of dynamic effects.
        survey_design : SurveyDesign, optional
            Columns constant within group.
        group : str, optional
            diff-diff 3.x name of ``unit`` (a ``FutureWarning``).
        controls : str or list of str, optional
            Time-varying covariates (``did_multiplegt_dyn``'s ``controls``). For each
            first-period treatment level, the outcome's period-to-period changes of the
            groups not yet switched are regressed on the covariates' changes with period
            effects; every long difference of the outcome then has the covariates' long
            difference times those coefficients taken off. The standard errors include the
            estimation of the coefficients. Each column must be numeric without missing
            values, and its changes must vary within some period among those groups.
        trends_lin : bool
            Group-specific linear trends (``did_multiplegt_dyn``'s ``trends_lin``): the
            estimators run on the first-differenced outcome (groups first switching in the
            second period are dropped) and ``DID_l`` is the sum of the first ``l`` such
            effects over the switchers that reach horizon ``l`` (placebos likewise). No
            average total effect is reported (NaN).
        trends_nonparam : str or list of str, optional
            Columns constant within each group (e.g. a region); switchers are compared only
            with groups sharing their values (``did_multiplegt_dyn``'s
            ``trends_nonparam``).
        covariates, trends_linear
            diff-diff 3.x names of ``controls`` and ``trends_lin`` (a ``FutureWarning``).
        """
        if group is not None:
            if unit is not None:
                raise ValueError("give unit= or its 3.x name group=, not both")
            warn_user("ChaisemartinDHaultfoeuille: fit(group=...) is the 3.x name of unit=",
                      FutureWarning)
            unit = group
        if covariates is not None:
            if controls is not None:
                raise ValueError("give controls= or its 3.x name covariates=, not both")
            warn_user("ChaisemartinDHaultfoeuille: fit(covariates=...) is the 3.x name of "
                      "controls=", FutureWarning)
            controls = covariates
        if trends_linear is not None:
            warn_user("ChaisemartinDHaultfoeuille: fit(trends_linear=...) is the 3.x name of "
                      "trends_lin=", FutureWarning)
            trends_lin = trends_linear
        if not isinstance(trends_lin, (bool, np.bool_)):
            raise ValueError(f"trends_lin must be True or False, got {trends_lin!r}")
        controls, trends_nonparam = _names(controls, "controls"), _names(trends_nonparam,
                                                                         "trends_nonparam")
        if unit is None or time is None or treatment is None:
            raise ValueError("ChaisemartinDHaultfoeuille.fit needs unit, time and treatment")
        if L_max is not None and not is_int(L_max, 1):
            raise ValueError(f"L_max must be an integer >= 1, got {L_max!r}")
        return self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                   treatment=treatment),
                         L_max=1 if L_max is None else int(L_max), controls=controls,
                         trends_lin=bool(trends_lin), trends_nonparam=trends_nonparam)

    def _sample(self, data, columns, L_max, controls=(), trends_lin=False,
                trends_nonparam=()) -> Sample:
        c = columns
        if self.same_switchers_pl and not (self.same_switchers and self.placebo):
            missing = "same_switchers=True" if not self.same_switchers else "placebo=True"
            raise ValueError(
                "ChaisemartinDHaultfoeuille: same_switchers_pl=True restricts the placebos to "
                f"the same switchers, so it needs {missing} (as did_multiplegt_dyn's "
                "same_switchers_pl needs same_switchers)")
        require_columns(data, controls=list(controls), trends_nonparam=list(trends_nonparam))
        y = numeric(data, c["outcome"], "outcome")
        d = numeric(data, c["treatment"], "treatment")
        values = {"y": y, "d": d}
        for j, col in enumerate(controls):
            values[("x", j)] = numeric(data, col, "controls")
        codes, units, periods, wide, first = balanced_wide(
            data, c["unit"], c["time"], values, "ChaisemartinDHaultfoeuille")
        n, T = len(units), periods.size
        if T < 2 + trends_lin:
            raise ValueError("ChaisemartinDHaultfoeuille: needs at least two periods (three "
                             "with trends_lin)")
        Y, D = wide["y"], wide["d"]
        X = np.stack([wide[("x", j)] for j in range(len(controls))], axis=2) if controls \
            else None
        # comparison cells: first-period treatment x the trends_nonparam values
        keys = [D[:, 0]]
        for col in trends_nonparam:
            tcodes, _ = label_codes(data, col, "trends_nonparam")
            check_constant_within_unit(tcodes, codes, units, col, "trends_nonparam")
            keys.append(tcodes[first].astype(float))
        cell = np.unique(np.column_stack(keys), axis=0, return_inverse=True)[1].ravel()
        base = D[:, :1]
        both = ((D > base).any(axis=1) & (D < base).any(axis=1))
        keep = ~both if self.drop_larger_lower else np.ones(n, dtype=bool)
        if both.any() and self.drop_larger_lower:
            warn_user(f"ChaisemartinDHaultfoeuille: dropped {int(both.sum())} group(s) whose "
                      "treatment goes both above and below its first-period value "
                      "(drop_larger_lower=True)")
        # groups whose initial treatment level has no variation in the switch date have no
        # role (no switcher, or no control): left out, as the reference does
        changed = D != base
        F = np.where(changed.any(axis=1), changed.argmax(axis=1), T)
        for value in np.unique(cell[keep]):
            at = keep & (cell == value)
            if np.unique(F[at]).size == 1:
                keep &= ~at
        if trends_lin:  # no first difference before a switch in the second period
            keep &= F != 1
        if not keep.any():
            raise ValueError("ChaisemartinDHaultfoeuille: no group switches treatment with a "
                             "group of the same initial treatment still unswitched to compare "
                             "with")
        clusters = None
        if self.cluster is not None:
            require_columns(data, cluster=self.cluster)
            ccodes, _ = label_codes(data, self.cluster, "cluster")
            check_constant_within_unit(ccodes, codes, units, self.cluster, "cluster")
            clusters = ccodes[first][keep]
        if trends_lin:
            Y, D, periods = np.diff(Y, axis=1), D[:, 1:], periods[1:]
            X = None if X is None else np.diff(X, axis=1)
        problem = DCDHProblem(Y[keep], D[keep], periods, L_max, self.placebo, clusters,
                              cell=cell[keep], X=None if X is None else X[keep],
                              controls=tuple(controls), trends_lin=trends_lin,
                              same_switchers=self.same_switchers,
                              only_never_switchers=self.only_never_switchers,
                              same_switchers_pl=self.same_switchers_pl)
        if not problem.effects:
            if self.only_never_switchers:
                raise ValueError("ChaisemartinDHaultfoeuille: only_never_switchers=True, but no "
                                 "switcher has a never-switching group of the same initial "
                                 "treatment to compare with")
            raise ValueError("ChaisemartinDHaultfoeuille: no group switches treatment with a "
                             "group of the same initial treatment still unswitched to compare "
                             "with")
        return Sample(problem, first[keep], c["unit"], columns)

    def _estimate(self, sample, design):
        problem = sample.arrays
        theta, psi, info = problem.estimate(design.weights)
        estimate = Estimate(theta, psi, reestimate=problem.theta, name="dCDH")
        return SimpleNamespace(estimate=estimate, problem=problem, info=info)


def _names(value, role):
    """Column names given as one string or a list of strings."""
    if value is None:
        return ()
    names = (value,) if isinstance(value, str) else value
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError(f"{role} must be a column name or a list of them, got {value!r}") \
            from None
    if not all(isinstance(v, str) for v in names):
        raise TypeError(f"{role} must be a column name or a list of them, got {value!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{role} names a column twice: {list(names)}")
    return names


class DCDHProblem:
    """Outcomes and treatments (groups x periods) and the switchers' layout.

    ``cell`` codes the comparison cells (first-period treatment x ``trends_nonparam``
    values); ``X`` (groups x periods x controls) the covariates; with ``trends_lin`` the
    arrays are already first-differenced. ``same_switchers``: every estimate over the
    switchers reaching the last effect (not with ``trends_lin``); ``same_switchers_pl``: the
    placebos over those of them with every placebo lag; ``only_never_switchers``: controls
    are the groups that never switch."""

    def __init__(self, Y, D, periods, L_max, placebo, clusters=None, cell=None, X=None,
                 controls=(), trends_lin=False, same_switchers=False,
                 only_never_switchers=False, same_switchers_pl=False):
        self.Y, self.D, self.periods, self.clusters = Y, D, periods, clusters
        self.X, self.controls, self.trends_lin = X, tuple(controls), trends_lin
        self.same_switchers = same_switchers and not trends_lin
        self.same_switchers_pl = same_switchers_pl and self.same_switchers
        self.only_never = only_never_switchers
        n, T = Y.shape
        base = D[:, 0]
        self.levels, self.level = np.unique(base, return_inverse=True)
        self.cell = self.level if cell is None else np.unique(cell, return_inverse=True)[1]
        changed = D != base[:, None]
        F = np.where(changed.any(axis=1), changed.argmax(axis=1), T)  # T: never switches
        self.F, self.base = F, base
        sw = F < T
        # only_never_switchers: a cell's switchers need a never-switcher in it
        never_cells = np.unique(self.cell[~sw])
        self.never_cell = np.isin(self.cell, never_cells)
        # last period at which some group of the same comparison cell is unswitched
        last = np.empty(n, dtype=np.int64)
        for value in np.unique(self.cell):
            at = self.cell == value
            last[at] = F[at].max() - 1
        self.last = last
        # switchers up (+1) or down (-1): the mean treatment from the switch to the last
        # period with controls against the first-period value (the reference's rule)
        span = (np.arange(T) >= F[:, None]) & (np.arange(T) <= last[:, None])
        mean_after = (np.where(span, D, 0.0).sum(axis=1)
                      / np.maximum(span.sum(axis=1), 1))
        self.sign = np.where(sw, np.where(mean_after > base, 1.0, -1.0), 0.0)
        effects, placebos = [], []
        for l in range(1, L_max + 1):
            if not self._reaches(l).any():
                break
            effects.append(l)
        self.effects = effects
        if placebo:
            for l in range(1, len(effects) + 1):
                if (self._reaches(self._span(l)) & (F - 1 - l >= 0)).any():
                    placebos.append(l)
        self.placebos = placebos
        self.has_ate = not trends_lin
        first = self._reaches(self._span(1))  # switchers with an effect at l = 1
        self.directions = tuple(s for s in (1.0, -1.0) if (first & (self.sign == s)).any())
        if effects and len(effects) < L_max:  # none: the caller raises
            warn_user(f"ChaisemartinDHaultfoeuille: only {len(effects)} effect(s) can be "
                      f"estimated (asked for L_max={L_max}): no switcher has a control group "
                      "that long")
        if X is not None:
            self._check_controls()

    def _reaches(self, l):
        """Switchers observed ``l - 1`` periods after their switch with controls then."""
        T = self.Y.shape[1]
        out = (self.F < T) & (self.F - 1 + l <= np.minimum(self.last, T - 1))
        return out & self.never_cell if self.only_never else out

    def _span(self, l):
        """The horizon a switcher must reach to enter effect ``l``: ``l``, or the last
        effect with ``same_switchers``."""
        return len(self.effects) if self.same_switchers else l

    def _same(self, w):
        """``same_switchers``: the switchers (of positive weight) with controls of positive
        weight at the last effect (then also at every earlier one); None without it."""
        if not self.same_switchers:
            return None
        L = len(self.effects)
        at = self._reaches(L) & (w > 0)
        t = self.F - 1 + L
        pool = (w > 0) & (self.F == self.Y.shape[1]) if self.only_never else w > 0
        out = np.zeros_like(at)
        for value in np.unique(self.cell[at]):
            members = self.cell == value
            top = self.F[members & pool].max(initial=-1)
            out |= at & members & (t < top)
        return out

    def theta(self, weights):
        """The estimates alone (replicate refits)."""
        return self.estimate(weights)[0]

    # ---- covariates -----------------------------------------------------------------

    def _first_differences(self, w):
        """Period-to-period changes of the outcome and covariates (periods 1..T-1) and the
        regression sample: groups not yet switched, of positive weight."""
        Y, X, F = self.Y, self.X, self.F
        dY, dX = np.diff(Y, axis=1), np.diff(X, axis=1)
        t = np.arange(1, Y.shape[1])
        sample = (t[None, :] < F[:, None]) & (w[:, None] > 0)
        return dY, dX, sample

    def _within(self, dX, w, sample):
        """Covariate changes minus their weighted mean in the same period and comparison
        cell over the regression sample."""
        out = np.zeros_like(dX)
        for value in np.unique(self.cell):
            at = sample & (self.cell == value)[:, None]
            ww = np.where(at, w[:, None], 0.0)
            total = ww.sum(axis=0)
            mean = np.einsum("nt,ntk->tk", ww, dX) / np.where(total > 0, total, 1.0)[:, None]
            out[at] = (dX - mean[None])[at]
        return out

    def _check_controls(self):
        """Each covariate's changes must vary within a period and cell among the groups not
        yet switched, for every first-period treatment level (else the coefficient is not
        identified)."""
        w = np.ones(self.Y.shape[0])
        _, dX, sample = self._first_differences(w)
        within = self._within(dX, w, sample)
        for b, value in enumerate(self.levels):
            rows = within[sample & (self.level == b)[:, None]]
            if rows.shape[0] == 0:
                continue
            scale = np.abs(dX[sample & (self.level == b)[:, None]]).max(initial=0.0) + 1.0
            flat = np.abs(rows).max(axis=0) <= 1e-10 * scale
            if flat.any():
                col = self.controls[int(np.argmax(flat))]
                raise ValueError(
                    f"ChaisemartinDHaultfoeuille: control {col!r} does not change differently "
                    "across the not-yet-switched groups of any period (first-period treatment "
                    f"{number_label(value)}): its effect cannot be told from the period "
                    "effects; drop it (time-invariant covariates cancel out of the estimator)")
            if np.linalg.matrix_rank(rows) < rows.shape[1]:
                raise ValueError(
                    "ChaisemartinDHaultfoeuille: the changes of the controls "
                    f"{list(self.controls)} are collinear among the not-yet-switched groups "
                    f"of first-period treatment {number_label(value)}; drop one")

    def _coefficients(self, w):
        """Per first-period treatment level ``b``: ``theta_b`` from the weighted regression
        of the outcome's changes on the covariates' changes (within period and cell) over
        the groups not yet switched, and each group's influence on its ``theta`` (sum
        scale), as ``did_multiplegt_dyn`` computes it: scores against a fit with period
        effects, each period's scaled by ``sqrt(n/(n-1))`` (n groups or clusters in it)."""
        dY, dX, sample = self._first_differences(w)
        within = self._within(dX, w, sample)
        n, k = self.Y.shape[0], dX.shape[2]
        coef = np.zeros((self.levels.size, k))
        influence = np.zeros((n, k))
        dY0 = np.where(sample, dY, 0.0)
        for b in range(self.levels.size):
            at = sample & (self.level == b)[:, None]
            ww = np.where(at, w[:, None], 0.0)
            A = np.einsum("nt,ntj,ntk->jk", ww, within, within)
            if not at.any():
                continue
            inverse = np.linalg.pinv(A)
            coef[b] = inverse @ np.einsum("nt,ntk,nt->k", ww, within, dY0)
            # fit with period effects only (the reference's centring of the scores)
            total = ww.sum(axis=0)
            safe = np.where(total > 0, total, 1.0)
            mx = np.einsum("nt,ntk->tk", ww, dX) / safe[:, None]
            my = (ww * dY0).sum(axis=0) / safe
            xd, yd, root = (dX - mx[None])[at], (dY0 - my[None])[at], np.sqrt(ww[at])
            beta = np.linalg.lstsq(xd * root[:, None], yd * root, rcond=None)[0]
            fitted = my[None] + (dX - mx[None]) @ beta
            size = np.array([self._size(at[:, j]) for j in range(at.shape[1])])
            big = size >= 2
            dof = np.where(big, np.sqrt(size / np.where(big, size - 1.0, 1.0)), 1.0)
            resid = np.where(at, dof[None] * (dY0 - fitted * big[None]), 0.0)
            score = np.einsum("nt,ntk->nk", ww * resid, within)
            group = self.level == b
            influence[group] = score[group] @ inverse.T
        return coef, influence

    # ---- effects --------------------------------------------------------------------

    def _horizon(self, l, w, placebo=False, directions=(1.0, -1.0), only=None, adjust=None):
        """Effect (or placebo) ``l``: ``(estimate, psi, n_switchers, total weight, dose,
        cumulated dose)``; ``psi`` the cohort-recentred influence values of
        ``did_multiplegt_dyn`` (sum scale), the estimate the sum of the plain ones.
        ``only``: the switchers allowed; ``adjust``: the covariates' coefficients and
        influence values."""
        Y, D, F = self.Y, self.D, self.F
        n, T = Y.shape
        eligible = self._reaches(l) & (w > 0)
        if placebo:
            eligible &= F - 1 - l >= 0
        if only is not None:
            eligible &= only
        plain, recentred = np.zeros(n), np.zeros(n)
        total = dose = cumulated = 0.0
        count = 0
        slopes = None
        if adjust is not None:
            coef, influence = adjust
            theta_g = coef[self.level]
            slopes = {s: np.zeros_like(coef) for s in directions}
        for t in np.unique(F[eligible] - 1 + l):
            a, b = (t - 2 * l, t - l) if placebo else (t, t - l)
            change = Y[:, a] - Y[:, b]
            if adjust is not None:
                xchange = self.X[:, a] - self.X[:, b]
                change = change - np.einsum("nk,nk->n", xchange, theta_g)
            for value in np.unique(self.cell[eligible & (F - 1 + l == t)]):
                same = self.cell == value
                controls = same & (F > t) & (w > 0)
                if self.only_never:
                    controls &= F == T
                wc = w[controls]
                if wc.sum() <= 0:
                    continue
                dc = change[controls]
                m_c = wc @ dc / wc.sum()
                level = self.level[np.argmax(same)]
                # the reference counts a cell's covariate slope only when the horizon is
                # below T_g - 1 (its ``l <= T_g - 2``)
                counted = adjust is not None and l <= self.last[np.argmax(same)] - 1
                for s in directions:
                    movers = eligible & same & (F - 1 + l == t) & (self.sign == s)
                    if not movers.any():
                        continue
                    ws, ds = w[movers], change[movers]
                    n_s = ws.sum()
                    union = movers | controls
                    e_u, dof_u = self._centre(change, w, union)
                    # controls: centred at their mean (or the cell's union if alone)
                    e_c, dof_c = (m_c, self._dof(controls)) if self._size(controls) >= 2 \
                        else (e_u, dof_u)
                    plain[controls] -= s * n_s * wc * dc / wc.sum()
                    recentred[controls] -= s * n_s * wc * dof_c * (dc - e_c) / wc.sum()
                    plain[movers] += s * ws * ds
                    # switchers: centred within their cohort (same treatment at the switch)
                    at_switch = D[movers, F[movers]]
                    centre = np.empty(ws.size)
                    scale = np.empty(ws.size)
                    idx = np.flatnonzero(movers)
                    for lev in np.unique(at_switch):
                        members = np.zeros(n, dtype=bool)
                        members[idx[at_switch == lev]] = True
                        if self._size(members) >= 2:
                            e, dof = self._centre(change, w, members)
                        else:
                            e, dof = e_u, dof_u
                        centre[at_switch == lev] = e
                        scale[at_switch == lev] = dof
                    recentred[movers] += s * ws * scale * (ds - centre)
                    if counted:
                        slopes[s][level] += (ws @ xchange[movers]
                                             - n_s * (wc @ xchange[controls]) / wc.sum())
                    total += n_s
                    count += int(movers.sum())
                    steps = np.abs(D[movers][:, F[movers][0]:t + 1]
                                   - self.base[movers][:, None])
                    cumulated += ws @ steps.sum(axis=1)
                    dose += ws @ np.abs(D[movers, t] - self.base[movers])
        if adjust is not None:
            # the estimated coefficients' share of the influence values
            for s, slope in slopes.items():
                recentred -= s * np.einsum("nk,nk->n", influence, slope[self.level])
        if total <= 0:
            return np.nan, recentred, 0, 0.0, np.nan, np.nan
        return (float(plain.sum() / total), recentred / total, count, total, dose / total,
                cumulated / total)

    def _effect(self, l, w, placebo=False, directions=(1.0, -1.0), adjust=None, same=None):
        """:meth:`_horizon` (over ``same`` when given), or with linear trends the sum of
        horizons ``1..l`` over the switchers that reach ``l`` (and, for placebos, have
        ``l`` pre-periods)."""
        if not self.trends_lin:
            return self._horizon(l, w, placebo, directions, only=same, adjust=adjust)
        only = self._reaches(l)
        if placebo:
            only &= self.F - 1 - l >= 0
        parts = [self._horizon(k, w, placebo, directions, only=only, adjust=adjust)
                 for k in range(1, l + 1)]
        est = float(sum(p[0] for p in parts))
        psi = sum(p[1] for p in parts)
        return (est, psi) + tuple(parts[-1][2:])

    def _size(self, members):
        """Groups in ``members``, or their distinct clusters when clustered."""
        if self.clusters is None:
            return int(members.sum())
        return int(np.unique(self.clusters[members]).size)

    def _dof(self, members):
        k = self._size(members)
        return np.sqrt(k / (k - 1.0)) if k >= 2 else np.nan

    def _centre(self, change, w, members):
        wm = w[members]
        return wm @ change[members] / wm.sum(), self._dof(members)

    def estimate(self, weights):
        """theta = [DID_1..DID_L, placebos, normalised effects, normalised placebos, average
        total effect (unless trends_lin), joiners' and leavers' DID_1 (those present)]; psi
        (groups x theta, sum scale); info (counts and doses)."""
        w = np.asarray(weights, float)
        adjust = None if self.X is None else self._coefficients(w)
        same = self._same(w)
        thetas, psis = [], []
        info = {"n_switchers": [], "n_placebo": [], "dose": [], "placebo_dose": []}
        totals, doses = [], []
        for l in self.effects:
            est, psi, count, total, dose, cumulated = self._effect(l, w, adjust=adjust,
                                                                   same=same)
            thetas.append(est)
            psis.append(psi)
            info["n_switchers"].append(count)
            info["dose"].append(cumulated)
            totals.append(total)
            doses.append(dose)
        same_pl = same
        if self.same_switchers_pl:  # the same switchers observed at every placebo lag
            same_pl = same & (self.F - 1 - len(self.placebos) >= 0)
        for l in self.placebos:
            est, psi, count, _, _, cumulated = self._effect(l, w, placebo=True,
                                                            adjust=adjust, same=same_pl)
            thetas.append(est)
            psis.append(psi)
            info["n_placebo"].append(count)
            info["placebo_dose"].append(cumulated)
        L = len(self.effects)
        scale = np.r_[info["dose"], info["placebo_dose"]]
        for j in range(len(scale)):
            thetas.append(thetas[j] / scale[j])
            psis.append(psis[j] / scale[j])
        if self.has_ate:
            totals, doses = np.array(totals), np.array(doses)
            amount = totals @ doses  # sum over switcher cells of w |D - D_1|
            thetas.append(float(totals @ np.array(thetas[:L]) / amount))
            psis.append(np.column_stack(psis[:L]) @ totals / amount)
        if adjust is not None:
            info["coefficients"] = adjust[0]
        # DID_1 of the joiners and of the leavers (the latter signed as an effect of
        # treatment, so DID_1 is their switcher-weighted average)
        for s in self.directions:  # those with switchers in the full sample
            est, psi, count, *_ = self._effect(1, w, directions=(s,), adjust=adjust,
                                               same=same)
            thetas.append(est)
            psis.append(psi)
            info["n_joiners" if s > 0 else "n_leavers"] = count
        return np.array(thetas, float), np.column_stack(psis), info
