"""Plots (matplotlib, imported only when a plot is drawn)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib: pip install 'diff-diff[plot]'"
        ) from err
    return plt


def plot_event_study(
    effects,
    ax=None,
    label: str | None = None,
    color: str | None = None,
    offset: float = 0.0,
    band: bool = True,
    title: str | None = "Event study",
    use_cband: bool | None = None,
):
    """Plot effects by event time with confidence intervals (and uniform bands).

    ``effects`` is any result with an event study (its ``event_study_effects``)
    or a tidy table with ``event_time``, ``estimate``, ``conf_low``,
    ``conf_high`` (and optionally ``cband_low``/``cband_high``). Several
    estimates can share one axis with ``offset`` and ``label``. ``use_cband``
    is the diff-diff 3.x name of ``band``. Returns the axis.

    Parameters
    ----------
    effects
        A result with an event study, or a tidy table.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    label : str, optional
        Legend label of this series.
    color : str, optional
        Matplotlib colour.
    offset : float, default 0.0
        Horizontal shift (to place several series side by side).
    band : bool, default True
        Draw the uniform (sup-t) band when the result has one.
    title : str or None, default 'Event study'
        Axes title (None: none).
    use_cband : bool, optional
        3.x name of ``band``.

    Returns
    -------
    matplotlib Axes

    Raises
    ------
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import diff_diff as dd
    >>> res = dd.CS().fit(dd.load_mpdta(), outcome="lemp", unit="countyreal", time="year",
    ...                   first_treat="first.treat")
    >>> ax = dd.plot_event_study(res)
    >>> ax.get_xlabel()
    'Periods since treatment'
    """
    if use_cband is not None:
        band = bool(use_cband)
    if not isinstance(effects, pd.DataFrame):
        table = getattr(effects, "_event_study_table", None)
        if table is None:
            raise TypeError("plot_event_study needs a result with an event study or a tidy "
                            f"table, got {type(effects).__name__}")
        effects = table()
    missing = {"event_time", "estimate", "conf_low", "conf_high"} - set(effects.columns)
    if missing:
        raise ValueError(f"plot_event_study: the table lacks column(s) {sorted(missing)}")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    x = effects["event_time"].to_numpy(dtype=float) + offset
    y = effects["estimate"].to_numpy(dtype=float)
    lo = effects["conf_low"].to_numpy(dtype=float)
    hi = effects["conf_high"].to_numpy(dtype=float)
    line = ax.errorbar(x, y, yerr=np.vstack([y - lo, hi - y]), fmt="o", capsize=3,
                       color=color, label=label)
    if band and "cband_low" in effects:
        ax.vlines(x, effects["cband_low"], effects["cband_high"], alpha=0.35, linewidth=6,
                  color=line[0].get_color())
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.axvline(-0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("Periods since treatment")
    ax.set_ylabel("Effect")
    if title:
        ax.set_title(title)
    if label:
        ax.legend()
    return ax


def plot_estimates(
    table: pd.DataFrame,
    label: str,
    ax=None,
    color: str | None = None,
    title: str | None = None,
):
    """Plot estimates with confidence intervals, one row per ``label`` value.

    ``table`` is a tidy table with ``label``, ``estimate``, ``conf_low`` and
    ``conf_high``. Returns the axis.
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.5 * len(table) + 2.0), layout="constrained")
    y = np.arange(len(table))[::-1]
    est = table["estimate"].to_numpy(dtype=float)
    lo = table["conf_low"].to_numpy(dtype=float)
    hi = table["conf_high"].to_numpy(dtype=float)
    ax.errorbar(est, y, xerr=np.vstack([est - lo, hi - est]), fmt="o", capsize=3, color=color)
    ax.set_yticks(y, [str(v) for v in table[label]])
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("Effect")
    if title:
        ax.set_title(title)
    return ax


def plot_bacon(results, ax=None, title: str | None = "Goodman-Bacon decomposition"):
    """Each 2x2 comparison's estimate against its weight, by comparison type, with the
    TWFE estimate as a horizontal line (``results``: a Bacon decomposition). Returns the axis.
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    table = results.comparisons
    markers = {"treated_vs_never": "o", "earlier_vs_later": "^", "later_vs_earlier": "v",
               "later_vs_always_treated": "s"}
    for kind, part in table.groupby("comparison_type", sort=False):
        label = kind.replace("_", " ")
        ax.scatter(part["weight"], part["estimate"], marker=markers.get(kind, "o"),
                   label=f"{label} (total weight {part['weight'].sum():.2f})", alpha=0.8)
    ax.axhline(results.twfe_estimate, color="grey", linewidth=1, linestyle="--",
               label=f"TWFE estimate {results.twfe_estimate:.3g}")
    ax.set_xlabel("Weight")
    ax.set_ylabel("2x2 DiD estimate")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def plot_pretrends_power(results, ax=None, M_grid=None, n_points: int = 60,
                         title: str | None = "Power of the pre-test"):
    """The pre-test's power against the violation magnitude ``M`` (``results``: a
    :class:`~diff_diff.PreTrendsPower` fit), with the target power, the minimum
    detectable violation and ``alpha`` marked. Returns the axis.

    Parameters
    ----------
    results : PreTrendsPowerResults
        A :class:`~diff_diff.PreTrendsPower` fit.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    M_grid : sequence of float, optional
        Violation magnitudes; default 0 to 2.5 times the MDV.
    n_points : int, default 60
        Grid size when ``M_grid`` is omitted.
    title : str or None, default 'Power of the pre-test'
        Axes title (None: none).

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    curve = results.power_curve(M_grid, n_points)
    test = "no individually significant lead" if results.pretest_form == "nis" else "Wald test"
    ax.plot(curve["M"], curve["power"], color="C0", label=f"power ({test})")
    ax.axhline(results.target_power, color="grey", linewidth=1, linestyle="--",
               label=f"target power {results.target_power:g}")
    ax.axhline(results.alpha, color="grey", linewidth=1, linestyle=":",
               label=f"nominal level alpha {results.alpha:g}")
    ax.axvline(results.mdv, color="C3", linewidth=1,
               label=f"minimum detectable violation {results.mdv:.3g}")
    ax.set_xlabel(f"Violation magnitude M ({results.violation_type.replace('_', ' ')} shape)")
    ax.set_ylabel("Probability the pre-test rejects")
    ax.set_ylim(0, 1.02)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_sensitivity(results, ax=None,
                     title: str | None = "Sensitivity to violations of parallel trends"):
    """Robust confidence sets by ``M`` next to the original interval (``results``: a
    :meth:`~diff_diff.HonestDiD.sensitivity_analysis`). Returns the axis.

    Parameters
    ----------
    results : SensitivityResults
        The output of ``HonestDiD.sensitivity_analysis``.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    title : str or None, default 'Sensitivity to violations of parallel trends'
        Axes title (None: none).

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    table = results.table
    ms = table["M"].to_numpy(float)
    step = np.diff(ms).min() if ms.size > 1 else 1.0
    x_orig = ms.min() - step
    low, high = results.original_ci
    ax.errorbar([x_orig], [results.original_estimate],
                yerr=[[results.original_estimate - low], [high - results.original_estimate]],
                fmt="o", color="C3", capsize=4, label="original interval")
    mid = (table["ci_lb"] + table["ci_ub"]) / 2
    ax.errorbar(ms, mid, yerr=[mid - table["ci_lb"], table["ci_ub"] - mid], fmt="none",
                color="C0", capsize=4, label=f"robust set ({results.ci_method})")
    ax.axhline(0, color="grey", linewidth=1, linestyle="--")
    bound = "M" if results.method == "smoothness" else "Mbar"
    ax.set_xticks(np.r_[x_orig, ms])
    ax.set_xticklabels(["original"] + [f"{m:.3g}" for m in ms])
    ax.set_xlabel(f"{bound} ({results.method.replace('_', ' ')})")
    ax.set_ylabel("Effect")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def plot_honest_event_study(results, ax=None, title: str | None = "Event study with robust sets"):
    """The event study's estimates and intervals, with each post-period's robust
    confidence set drawn beside it (``results``: a :class:`~diff_diff.HonestDiD` fit
    on results with an event study). Returns the axis.

    Parameters
    ----------
    results : HonestDiDResults
        A :class:`~diff_diff.HonestDiD` fit with ``event_study_bounds=True``.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    title : str or None, default 'Event study with robust sets'
        Axes title (None: none).

    Returns
    -------
    matplotlib Axes
    """
    bounds = getattr(results, "event_study_bounds", None)
    if bounds is None or results.original_results is None:
        raise ValueError("plot_honest_event_study needs HonestDiD().fit(results) output (with "
                         "the original event-study results)")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    plot_event_study(results.original_results, ax=ax, label="estimate and interval", band=False,
                     title=None)
    bound = "M" if results.method == "smoothness" else "Mbar"
    x = bounds["event_time"].to_numpy(float) + 0.2
    mid = (bounds["ci_lb"] + bounds["ci_ub"]) / 2
    ax.errorbar(x, mid, yerr=[mid - bounds["ci_lb"], bounds["ci_ub"] - mid], fmt="none",
                color="C1", capsize=4, linewidth=2,
                label=f"robust set ({results.ci_method}, {bound} = {results.M:g})")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def plot_power_curve(results, ax=None, target: float | None = 0.8,
                     title: str | None = "Power curve"):
    """Power against effect size (or sample size): ``results`` is a
    :func:`~diff_diff.simulate_power` result (with its Wilson band) or a table with
    ``power`` and ``effect_size`` or ``n`` columns (``PowerAnalysis.power_curve``).
    Returns the axis.

    Parameters
    ----------
    results
        A ``simulate_power`` result or a power-curve table.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    target : float or None, default 0.8
        Target power drawn as a horizontal line (None: none).
    title : str or None, default 'Power curve'
        Axes title (None: none).

    Returns
    -------
    matplotlib Axes
    """
    table = results.table if hasattr(results, "table") else results
    if not isinstance(table, pd.DataFrame) or "power" not in table.columns:
        raise TypeError("plot_power_curve needs simulate_power results or a table with a "
                        f"'power' column, got {type(results).__name__}")
    x_col = next((c for c in ("effect_size", "n", "n_units") if c in table.columns), None)
    if x_col is None:
        raise ValueError("plot_power_curve: the table needs an 'effect_size' or 'n' column")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.plot(table[x_col], table["power"], marker="o" if len(table) < 15 else None, color="C0",
            label="power")
    if {"power_ci_low", "power_ci_high"} <= set(table.columns):
        ax.fill_between(table[x_col], table["power_ci_low"], table["power_ci_high"],
                        color="C0", alpha=0.2, label="95% simulation interval")
    if target is not None:
        ax.axhline(target, color="grey", linewidth=1, linestyle="--", label=f"target {target:g}")
    ax.set_xlabel("Effect size" if x_col == "effect_size" else "Units")
    ax.set_ylabel("Power")
    ax.set_ylim(0, 1.02)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_group_effects(results, ax=None, title: str | None = "Effects by cohort"):
    """Effects by treatment cohort with confidence intervals (``results``: a result with
    ``group_effects``, e.g. CallawaySantAnna, or a table with ``group``, ``estimate``,
    ``conf_low``, ``conf_high``). Returns the axis.

    Parameters
    ----------
    results
        A result with ``group_effects`` or a tidy table by ``group``.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure when omitted.
    title : str or None, default 'Effects by cohort'
        Axes title (None: none).

    Returns
    -------
    matplotlib Axes
    """
    table = results if isinstance(results, pd.DataFrame) else getattr(results, "group_effects",
                                                                       None)
    if table is None:
        raise TypeError("plot_group_effects needs a result with group_effects (e.g. "
                        f"CallawaySantAnna) or a tidy table, got {type(results).__name__}")
    table = pd.DataFrame(table)
    missing = {"group", "estimate", "conf_low", "conf_high"} - set(table.columns)
    if missing:
        raise ValueError(f"plot_group_effects: the table lacks column(s) {sorted(missing)}")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    y = np.arange(len(table))
    est = table["estimate"].to_numpy(float)
    ax.errorbar(est, y, xerr=[est - table["conf_low"], table["conf_high"] - est], fmt="o",
                color="C0", capsize=4)
    ax.axvline(0, color="grey", linewidth=1, linestyle="--")
    ax.set_yticks(y)
    ax.set_yticklabels([f"cohort {g:g}" if isinstance(g, (int, float, np.number)) else str(g)
                        for g in table["group"]])
    ax.invert_yaxis()
    ax.set_xlabel("Effect")
    if title:
        ax.set_title(title)
    return ax
