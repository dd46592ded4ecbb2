"""Goodman-Bacon (2021) decomposition of the two-way fixed-effects DiD coefficient.

With staggered adoption in a balanced panel, the TWFE coefficient

    beta_DD = sum_k s_kU b_kU + sum_{k earlier than l} (s_kl^k b_kl^k + s_kl^l b_kl^l)

is a weighted average of every 2x2 DiD between timing groups (Goodman-Bacon
2021, Theorem 1): treated vs never treated (``b_kU``), an earlier group
against a later one before the later one is treated (``b_kl^k``), and a later
group against an earlier, already treated one (``b_kl^l``, the "forbidden"
comparisons whose weights make TWFE go wrong when effects change over time).
Units treated from the first period are their own timing group
(``D-bar = 1``): they enter only as controls of later groups. The weights sum to
one and reproduce the TWFE coefficient exactly; sampling weights (constant
within unit) enter as unit masses. Matches R ``bacondecomp`` / Stata
``bacondecomp`` on balanced panels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..estimators.panel import build_unit_panel, require_columns
from ..results import hooks
from ..survey.units import resolve_unit_design

WEIGHT_METHODS = ("exact", "approximate")
COMPARISON_TYPES = ("treated_vs_never", "earlier_vs_later", "later_vs_earlier",
                    "later_vs_always_treated")


class BaconDecomposition:
    """Decompose the TWFE DiD coefficient into its 2x2 comparisons.

    Parameters
    ----------
    weights : {"exact", "approximate"}
        ``exact``: Goodman-Bacon's Theorem 1 weights, the closed-form shares of
        the residual treatment variance. ``approximate`` (diff-diff 3.x's
        other option) scales the same closed-form terms to sum to one instead
        of dividing by the residual variance; in a balanced panel the two are
        identical.

    Examples
    --------
    >>> import diff_diff as dd
    >>> res = dd.BaconDecomposition().fit(dd.load_mpdta(), outcome="lemp",
    ...                                   unit="countyreal", time="year",
    ...                                   first_treat="first.treat")
    >>> round(res.twfe_estimate, 4), abs(res.decomposition_error) < 1e-12
    (-0.0365, True)
    """

    def __init__(self, weights: str = "exact"):
        self.weights = weights

    def get_params(self, deep: bool = True) -> dict:
        """The constructor settings as a dict.

        Parameters
        ----------
        deep : bool, default True
            Accepted for scikit-learn compatibility.

        Returns
        -------
        dict
            ``{"weights": ...}``.
        """
        return {"weights": self.weights}

    def fit(self, data: pd.DataFrame, outcome: str, unit: str, time: str, first_treat: str,
            survey_design=None) -> "BaconDecompositionResults":
        """Decompose the TWFE regression of ``outcome`` on ``1{time >= first_treat}`` with
        unit and period effects (balanced panel; units missing a period are dropped with a
        warning). ``survey_design`` contributes its weights (constant within unit).

        Parameters
        ----------
        data : DataFrame
            A panel: one row per unit and period.
        outcome : str
            Outcome column.
        unit, time : str
            Unit and period columns.
        first_treat : str
            First treated period of each unit (0 or NaN: never treated).
        survey_design : SurveyDesign, optional
            Its weights (constant within unit) weight the regression and the 2x2s.

        Returns
        -------
        BaconDecompositionResults
            The 2x2 comparisons, their weights and the TWFE coefficient they reproduce.

        Raises
        ------
        ValueError
            If a column is missing, ``first_treat`` varies within a unit, or there is no
            treatment timing to decompose.
        """
        if self.weights not in WEIGHT_METHODS:
            raise ValueError(f"BaconDecomposition: weights must be one of "
                             f"{list(WEIGHT_METHODS)}, got {self.weights!r}")
        require_columns(data, outcome=outcome, unit=unit, time=time, first_treat=first_treat)
        panel = build_unit_panel(data, outcome, unit, time, first_treat, None,
                                 "BaconDecomposition")
        design, metadata = resolve_unit_design(data, survey_design, unit, panel.unit_rows, None,
                                               "BaconDecomposition")
        return _decompose(panel, design.weights, self.weights == "approximate", metadata)


@dataclass(frozen=True, eq=False)
class _Groups:
    """Timing groups: first treated period index (0: always, T: never), mass, mean outcomes."""

    start: np.ndarray  # (K,) index of the first treated period
    label: np.ndarray  # (K,) first_treat value (0 for never treated)
    mass: np.ndarray  # (K,) share of the (weighted) units
    count: np.ndarray  # (K,) units
    ybar: np.ndarray  # (K, T) weighted mean outcome per period


def _groups(panel, w) -> _Groups:
    times, g = panel.times, panel.first_treat
    n_t = times.size
    start = np.where(g > 0, np.searchsorted(times, g, side="left"), n_t)
    start = np.minimum(start, n_t)
    keys, code = np.unique(start, return_inverse=True)
    mass = np.bincount(code, weights=w) / w.sum()
    count = np.bincount(code)
    ybar = np.vstack([np.average(panel.y[code == j], axis=0, weights=w[code == j])
                      for j in range(keys.size)])
    label = np.array([0.0 if k == n_t else times[k] if k > 0 else
                      float(np.min(g[(start == 0) & (g > 0)])) for k in keys])
    return _Groups(keys, label, mass, count, ybar)


def _twfe(panel, w) -> tuple[float, float]:
    """TWFE coefficient and residual treatment variance (unit-weighted, balanced panel)."""
    n_t = panel.times.size
    d = (np.arange(n_t)[None, :] >= _start(panel)[:, None]).astype(float)
    p = w / w.sum()

    def within(a):
        return a - a.mean(axis=1, keepdims=True) - p @ a + p @ a.mean(axis=1)
    d_tilde = within(d)
    v_d = float(p @ (d_tilde**2).mean(axis=1))
    if not v_d > 1e-14:
        raise ValueError("BaconDecomposition: the treatment does not vary beyond unit and "
                         "period effects (no treated cohort, or all units treated at once "
                         "from the first period)")
    return float(p @ (d_tilde * within(panel.y)).mean(axis=1)) / v_d, v_d


def _start(panel) -> np.ndarray:
    g, times = panel.first_treat, panel.times
    return np.minimum(np.where(g > 0, np.searchsorted(times, g, side="left"), times.size),
                      times.size)


def _window_change(ybar, a, b, c, d) -> np.ndarray:
    """Mean over periods [c, d) minus mean over [a, b) of each group's mean outcome."""
    return ybar[:, c:d].mean(axis=1) - ybar[:, a:b].mean(axis=1)


def _decompose(panel, w, approximate, metadata) -> "BaconDecompositionResults":
    if not (w > 0).all():  # units without weight are not in the weighted regression
        keep = w > 0
        panel = replace(panel, units=panel.units[keep], y=panel.y[keep],
                        first_treat=panel.first_treat[keep], unit_rows=panel.unit_rows[keep],
                        n_rows=int(keep.sum()) * panel.times.size)
        w = w[keep]
    n_t = panel.times.size
    grp = _groups(panel, w)
    beta, v_d = _twfe(panel, w)
    dbar = (n_t - grp.start) / n_t  # share of periods treated
    rows = []
    for i in range(grp.start.size):
        for j in range(i + 1, grp.start.size):
            k, lt = i, j  # k starts earlier than l (starts are sorted)
            nk, nl = grp.mass[k], grp.mass[lt]
            share = nk / (nk + nl)
            scale = share * (1.0 - share)
            ak, al = grp.start[k], grp.start[lt]
            if al == n_t:  # l never treated: k against the never treated
                if 0 < ak < n_t:
                    s = (nk + nl) ** 2 * scale * dbar[k] * (1 - dbar[k])
                    b = (_window_change(grp.ybar[[k]], 0, ak, ak, n_t)
                         - _window_change(grp.ybar[[lt]], 0, ak, ak, n_t))[0]
                    rows.append(("treated_vs_never", k, lt, b, s))
                continue
            if ak > 0:  # earlier k treated, later l as control, before l is treated
                s = (((nk + nl) * (1 - dbar[lt])) ** 2 * scale * (dbar[k] - dbar[lt])
                     / (1 - dbar[lt]) * (1 - dbar[k]) / (1 - dbar[lt]))
                b = (_window_change(grp.ybar[[k]], 0, ak, ak, al)
                     - _window_change(grp.ybar[[lt]], 0, ak, ak, al))[0]
                rows.append(("earlier_vs_later", k, lt, b, s))
            # later l treated, earlier (already treated) k as control
            s = ((nk + nl) * dbar[k]) ** 2 * scale * dbar[lt] / dbar[k] * (dbar[k] - dbar[lt]) \
                / dbar[k]
            b = (_window_change(grp.ybar[[lt]], ak, al, al, n_t)
                 - _window_change(grp.ybar[[k]], ak, al, al, n_t))[0]
            kind = "later_vs_always_treated" if ak == 0 else "later_vs_earlier"
            rows.append((kind, lt, k, b, s))
    kinds, treated, control, est, raw = (list(x) for x in zip(*rows))
    raw = np.array(raw)
    weight = raw / raw.sum() if approximate else raw / v_d
    table = pd.DataFrame({
        "comparison_type": kinds,
        "treated_group": _labels(grp.label[treated]),
        "control_group": _labels(grp.label[control]),
        "estimate": np.array(est, dtype=float),
        "weight": weight,
        "n_treated": grp.count[treated],
        "n_control": grp.count[control],
    })
    return BaconDecompositionResults(table, beta, panel, grp, metadata)


def _labels(values):
    values = np.asarray(values, dtype=float)
    return values.astype(np.int64) if np.all(values == np.round(values)) else values


class BaconDecompositionResults:
    """The 2x2 comparisons behind a TWFE coefficient.

    Attributes
    ----------
    comparisons : DataFrame
        One row per 2x2: ``comparison_type`` (``treated_vs_never``,
        ``earlier_vs_later``, ``later_vs_earlier``, ``later_vs_always_treated``),
        ``treated_group`` and ``control_group`` (first treated period; 0: never
        treated), ``estimate``, ``weight``, ``n_treated``, ``n_control``.
    twfe_estimate : float
        The TWFE coefficient (unit and period effects, unit weights).
    decomposition_error : float
        ``sum(weight * estimate) - twfe_estimate`` (zero up to rounding).
    by_type : DataFrame
        Total weight and weighted average estimate per comparison type.
    n_timing_groups, n_never_treated, n_always_treated, n_obs : int
    survey_metadata : SurveyMetadata or None
    """

    def __init__(self, comparisons, twfe, panel, groups, metadata):
        self.comparisons = comparisons
        self.twfe_estimate = float(twfe)
        self.decomposition_error = float(comparisons["weight"] @ comparisons["estimate"] - twfe)
        n_t = panel.times.size
        self.n_timing_groups = int(((groups.start > 0) & (groups.start < n_t)).sum())
        self.n_never_treated = int(groups.count[groups.start == n_t].sum())
        self.n_always_treated = int(groups.count[groups.start == 0].sum())
        self.n_obs = int(panel.y.size)
        self.survey_metadata = metadata

    @property
    def by_type(self) -> pd.DataFrame:
        """Total weight and weighted average estimate of each comparison type."""
        c = self.comparisons.assign(product=lambda t: t["weight"] * t["estimate"])
        out = c.groupby("comparison_type", sort=False)[["weight", "product"]].sum()
        out["estimate"] = out["product"] / out["weight"]
        return out[["weight", "estimate"]].reset_index()

    def to_dataframe(self) -> pd.DataFrame:
        """The 2x2 comparisons as a table.

        Returns
        -------
        DataFrame
            One row per 2x2 comparison (a copy of ``comparisons``).
        """
        return self.comparisons.copy()

    def summary(self) -> str:
        """The decomposition as text (what ``print(result)`` shows).

        Returns
        -------
        str
            The TWFE coefficient, the weight and average estimate of each comparison type.
        """
        lines = ["Goodman-Bacon decomposition of the TWFE coefficient", "=" * 60,
                 f"TWFE estimate:          {self.twfe_estimate:.6g}",
                 f"Decomposition error:    {self.decomposition_error:.3g}",
                 f"Timing groups:          {self.n_timing_groups}",
                 f"Never / always treated: {self.n_never_treated} / {self.n_always_treated} units",
                 "", "By comparison type:"]
        for row in self.by_type.itertuples(index=False):
            lines.append(f"  {row.comparison_type:<26} weight {row.weight:7.4f}   "
                         f"estimate {row.estimate: .6g}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"BaconDecompositionResults(twfe_estimate={self.twfe_estimate:.6g}, "
                f"comparisons={len(self.comparisons)})")

    def plot(self, ax=None, **kwargs):
        """Estimate against weight of every 2x2, by comparison type (matplotlib).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Axes to draw on; a new figure when omitted.
        **kwargs
            Passed to the scatter plot.

        Returns
        -------
        matplotlib Axes
        """
        from ..plotting import plot_bacon

        return plot_bacon(self, ax=ax, **kwargs)


hooks.DECOMPOSERS["bacon"] = BaconDecomposition
