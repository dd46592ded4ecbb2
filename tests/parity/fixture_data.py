"""Data the port fixtures were made from, checked to be byte-identical to what the scripts read."""

import hashlib
from importlib import resources

import pandas as pd

import diff_diff as dd


def mpdta_checked(md5: str) -> pd.DataFrame:
    """``load_mpdta()``, after checking the shipped file has the md5 the fixture recorded."""
    with resources.files("diff_diff.datasets").joinpath("data/mpdta.csv").open("rb") as fh:
        assert hashlib.md5(fh.read()).hexdigest() == md5, "mpdta differs from the fixture's"
    return dd.load_mpdta()


def staggered_case_panel(case: dict, mpdta_md5: str) -> pd.DataFrame:
    """A port fixture's case as ``unit, time, first_treat, y``: its stored data, or mpdta
    (checked against ``mpdta_md5``) with those names."""
    if "data" in case:
        return pd.DataFrame(case["data"])
    df = mpdta_checked(mpdta_md5)
    return pd.DataFrame({"unit": df["countyreal"], "time": df["year"],
                         "first_treat": df["first.treat"], "y": df["lemp"]})
