"""Example data shipped with the package, and simulators."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .brfss import SimulatedSurvey, simulate_brfss
from .panel import example_panel

__all__ = ["SimulatedSurvey", "example_panel", "load_mpdta", "load_prop99", "simulate_brfss"]


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


def load_prop99() -> pd.DataFrame:
    """California's Proposition 99 tobacco tax: cigarette sales by state, 1970-2000
    (Abadie, Diamond & Hainmueller 2010; the panel R ``synthdid`` ships as
    ``california_prop99``).

    Redistributed from R ``synthdid`` (BSD-3-Clause, via the ``synthdid-py`` port; the
    data are Abadie, Diamond & Hainmueller's). 39 states x 31 years; columns ``state``,
    ``year``, ``packspercapita``,
    ``treated`` (1 for California from 1989 on, as synthdid's file) and
    ``california`` (1 for every year of California: the treated unit, as
    :class:`~diff_diff.SyntheticDiD` takes it).

    Examples
    --------
    >>> from diff_diff import load_prop99
    >>> df = load_prop99()
    >>> df.shape, int(df["california"].sum())
    ((1209, 5), 31)
    """
    with resources.files(__package__).joinpath("data/prop99.csv").open("r") as fh:
        data = pd.read_csv(fh)
    data["california"] = (data["state"] == "California").astype(int)
    return data
