"""A small simulated survey panel that every estimator of the library can fit."""

from __future__ import annotations

import numpy as np
import pandas as pd


def example_panel(n_units: int = 240, n_periods: int = 6, seed: int = 0) -> pd.DataFrame:
    """A staggered-adoption unit x period panel with a stratified cluster sample design.

    Units are sampled in 6 strata of 10 PSUs (``stratum``, ``psu``, with
    population PSU counts ``fpc`` and probability weights ``weight``, all
    constant within unit). A quarter of the units are never treated
    (``first_treat`` 0); the others adopt in periods 3, 4 or 5 and then
    receive a continuous ``dose`` in (0, 1]. The true effect is ``2 * dose``
    from adoption on, on top of unit and period effects and a covariate.

    Columns: ``unit``, ``time`` (1..n_periods), ``y``, ``first_treat``,
    ``treated`` (ever treated), ``post`` (period >= 4), ``d`` (treated now),
    ``dose``, ``x1``, ``weight``, ``stratum``, ``psu``, ``fpc``, and
    ``eligible`` (a unit-level 0/1 partition, two thirds of the units, for
    triple differences).

    Examples
    --------
    >>> from diff_diff.datasets import example_panel
    >>> example_panel().shape
    (1440, 14)
    """
    rng = np.random.default_rng(seed)
    unit = np.arange(n_units)
    stratum = unit % 6
    psu = stratum * 10 + (unit // 6) % 10
    cohort = rng.choice([0, 3, 4, 5], size=n_units, p=[0.25, 0.25, 0.25, 0.25])
    dose_level = rng.uniform(0.05, 1.0, n_units)
    weight = rng.uniform(1.0, 3.0, n_units) * (1.0 + stratum / 5.0)
    alpha = rng.normal(size=n_units) + 0.3 * rng.normal(size=60)[psu]
    time = np.arange(1, n_periods + 1)
    u, t = np.repeat(unit, n_periods), np.tile(time, n_units)
    g = cohort[u]
    d = ((g > 0) & (t >= g)).astype(float)
    dose = d * dose_level[u]
    x1 = rng.normal(size=u.size) + 0.2 * t
    y = alpha[u] + 0.5 * t + 0.4 * x1 + 2.0 * dose + rng.normal(scale=0.5, size=u.size)
    return pd.DataFrame({
        "unit": u, "time": t, "y": y, "first_treat": g, "treated": (g > 0).astype(int),
        "post": (t >= 4).astype(int), "d": d.astype(int), "dose": dose, "x1": x1,
        "weight": weight[u], "stratum": stratum[u], "psu": psu[u], "fpc": np.full(u.size, 40),
        "eligible": (u % 3 != 0).astype(int),
    })
