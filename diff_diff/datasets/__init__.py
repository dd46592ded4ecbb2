"""Example data shipped with the package, and simulators."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .brfss import SimulatedSurvey, simulate_brfss
from .panel import example_panel

__all__ = ["SimulatedSurvey", "example_panel", "load_mpdta", "simulate_brfss"]


def load_mpdta() -> pd.DataFrame:
    """County teen employment panel used by R's ``did`` package (Callaway & Sant'Anna 2021).

    500 US counties, 2003-2007; columns ``year``, ``countyreal`` (county id),
    ``lpop`` (log population, time-invariant), ``lemp`` (log teen employment),
    ``first.treat`` (year the state's minimum wage first rose above the
    federal level, 0 for never) and ``treat``.

    Examples
    --------
    >>> from diff_diff import load_mpdta
    >>> load_mpdta().shape
    (2500, 6)
    """
    with resources.files(__package__).joinpath("data/mpdta.csv").open("r") as fh:
        return pd.read_csv(fh)
