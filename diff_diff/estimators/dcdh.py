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
from .panel import balanced_wide, check_constant_within_unit, numeric, require_columns
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
               "drop_larger_lower": (lambda v: isinstance(v, bool), "True or False")}
    _results_class = ChaisemartinDHaultfoeuilleResults

    def __init__(self, alpha=0.05, cluster=None, n_bootstrap=0, bootstrap_weights="rademacher",
                 seed=None, cband=True, placebo=True, drop_larger_lower=True):
        self._store(locals())

    def fit(self, data: pd.DataFrame, outcome: str, unit: str | None = None,
            time: str | None = None, treatment: str | None = None, L_max: int | None = None,
            survey_design=None, group: str | None = None
            ) -> ChaisemartinDHaultfoeuilleResults:
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
        """
        if group is not None:
            if unit is not None:
                raise ValueError("give unit= or its 3.x name group=, not both")
            warn_user("ChaisemartinDHaultfoeuille: fit(group=...) is the 3.x name of unit=",
                      FutureWarning)
            unit = group
        if unit is None or time is None or treatment is None:
            raise ValueError("ChaisemartinDHaultfoeuille.fit needs unit, time and treatment")
        if L_max is not None and not is_int(L_max, 1):
            raise ValueError(f"L_max must be an integer >= 1, got {L_max!r}")
        return self._fit(data, survey_design, dict(outcome=outcome, unit=unit, time=time,
                                                   treatment=treatment),
                         L_max=1 if L_max is None else int(L_max))

    def _sample(self, data, columns, L_max) -> Sample:
        c = columns
        y = numeric(data, c["outcome"], "outcome")
        d = numeric(data, c["treatment"], "treatment")
        codes, units, periods, wide, first = balanced_wide(
            data, c["unit"], c["time"], {"y": y, "d": d}, "ChaisemartinDHaultfoeuille")
        n, T = len(units), periods.size
        if T < 2:
            raise ValueError("ChaisemartinDHaultfoeuille: needs at least two periods")
        Y, D = wide["y"], wide["d"]
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
        for value in np.unique(base[keep, 0]):
            at = keep & (base[:, 0] == value)
            if np.unique(F[at]).size == 1:
                keep &= ~at
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
        problem = DCDHProblem(Y[keep], D[keep], periods, L_max, self.placebo, clusters)
        if not problem.effects:
            raise ValueError("ChaisemartinDHaultfoeuille: no group switches treatment with a "
                             "group of the same initial treatment still unswitched to compare "
                             "with")
        return Sample(problem, first[keep], c["unit"], columns)

    def _estimate(self, sample, design):
        problem = sample.arrays
        theta, psi, info = problem.estimate(design.weights)
        estimate = Estimate(theta, psi, reestimate=problem.theta, name="dCDH")
        return SimpleNamespace(estimate=estimate, problem=problem, info=info)


class DCDHProblem:
    """Outcomes and treatments (groups x periods) and the switchers' layout."""

    def __init__(self, Y, D, periods, L_max, placebo, clusters=None):
        self.Y, self.D, self.periods, self.clusters = Y, D, periods, clusters
        n, T = Y.shape
        base = D[:, 0]
        changed = D != base[:, None]
        F = np.where(changed.any(axis=1), changed.argmax(axis=1), T)  # T: never switches
        self.F, self.base = F, base
        sw = F < T
        # last period at which some group with the same initial treatment is unswitched
        last = np.empty(n, dtype=np.int64)
        for value in np.unique(base):
            at = base == value
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
            ok = sw & (F - 1 + l <= np.minimum(last, T - 1))
            if not ok.any():
                break
            effects.append(l)
        if placebo:
            for l in range(1, len(effects) + 1):
                ok = sw & (F - 1 + l <= np.minimum(last, T - 1)) & (F - 1 - l >= 0)
                if ok.any():
                    placebos.append(l)
        self.effects, self.placebos = effects, placebos
        first = sw & (F <= np.minimum(last, T - 1))  # switchers with an effect at l = 1
        self.directions = tuple(s for s in (1.0, -1.0) if (first & (self.sign == s)).any())
        if len(effects) < L_max:
            warn_user(f"ChaisemartinDHaultfoeuille: only {len(effects)} effect(s) can be "
                      f"estimated (asked for L_max={L_max}): no switcher has a control group "
                      "that long")

    def theta(self, weights):
        """The estimates alone (replicate refits)."""
        return self.estimate(weights)[0]

    def _horizon(self, l, w, placebo=False, directions=(1.0, -1.0)):
        """Effect (or placebo) ``l``: ``(estimate, psi, n_switchers, total weight, dose,
        cumulated dose)``; ``psi`` the cohort-recentred influence values of
        ``did_multiplegt_dyn`` (sum scale), the estimate the sum of the plain ones."""
        Y, D, F, T = self.Y, self.D, self.F, self.Y.shape[1]
        n = Y.shape[0]
        eligible = (F < T) & (F - 1 + l <= np.minimum(self.last, T - 1)) & (w > 0)
        if placebo:
            eligible &= F - 1 - l >= 0
        plain, recentred = np.zeros(n), np.zeros(n)
        total = dose = cumulated = 0.0
        count = 0
        for t in np.unique(F[eligible] - 1 + l):
            change = (Y[:, t - 2 * l] - Y[:, t - l]) if placebo else (Y[:, t] - Y[:, t - l])
            for value in np.unique(self.base[eligible & (F - 1 + l == t)]):
                same = self.base == value
                controls = same & (F > t) & (w > 0)
                wc = w[controls]
                if wc.sum() <= 0:
                    continue
                dc = change[controls]
                m_c = wc @ dc / wc.sum()
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
                    for level in np.unique(at_switch):
                        members = np.zeros(n, dtype=bool)
                        members[idx[at_switch == level]] = True
                        if self._size(members) >= 2:
                            e, dof = self._centre(change, w, members)
                        else:
                            e, dof = e_u, dof_u
                        centre[at_switch == level] = e
                        scale[at_switch == level] = dof
                    recentred[movers] += s * ws * scale * (ds - centre)
                    total += n_s
                    count += int(movers.sum())
                    steps = np.abs(D[movers][:, F[movers][0]:t + 1]
                                   - self.base[movers][:, None])
                    cumulated += ws @ steps.sum(axis=1)
                    dose += ws @ np.abs(D[movers, t] - self.base[movers])
        if total <= 0:
            return np.nan, recentred, 0, 0.0, np.nan, np.nan
        return (float(plain.sum() / total), recentred / total, count, total, dose / total,
                cumulated / total)

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
        total effect, joiners' and leavers' DID_1 (those present)]; psi (groups x theta, sum scale);
        info (counts and doses)."""
        w = np.asarray(weights, float)
        thetas, psis = [], []
        info = {"n_switchers": [], "n_placebo": [], "dose": [], "placebo_dose": []}
        totals, doses = [], []
        for l in self.effects:
            est, psi, count, total, dose, cumulated = self._horizon(l, w)
            thetas.append(est)
            psis.append(psi)
            info["n_switchers"].append(count)
            info["dose"].append(cumulated)
            totals.append(total)
            doses.append(dose)
        for l in self.placebos:
            est, psi, count, _, _, cumulated = self._horizon(l, w, placebo=True)
            thetas.append(est)
            psis.append(psi)
            info["n_placebo"].append(count)
            info["placebo_dose"].append(cumulated)
        L = len(self.effects)
        scale = np.r_[info["dose"], info["placebo_dose"]]
        for j in range(len(scale)):
            thetas.append(thetas[j] / scale[j])
            psis.append(psis[j] / scale[j])
        totals, doses = np.array(totals), np.array(doses)
        amount = totals @ doses  # sum over switcher cells of w |D - D_1|
        thetas.append(float(totals @ np.array(thetas[:L]) / amount))
        psis.append(np.column_stack(psis[:L]) @ totals / amount)
        # DID_1 of the joiners and of the leavers (the latter signed as an effect of
        # treatment, so DID_1 is their switcher-weighted average)
        for s in self.directions:  # those with switchers in the full sample
            est, psi, count, *_ = self._horizon(1, w, directions=(s,))
            thetas.append(est)
            psis.append(psi)
            info["n_joiners" if s > 0 else "n_leavers"] = count
        return np.array(thetas, float), np.column_stack(psis), info
