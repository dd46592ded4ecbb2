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
