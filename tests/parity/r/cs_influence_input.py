"""Write the input of ``cs_svytotal.R``: mpdta units with a survey design and CS influence values.

The unit-level influence values of the overall (simple) Callaway-Sant'Anna ATT
come from ``diff_diff``; R ``survey::svytotal`` then gives their Taylor
linearization standard error, which ``tests/parity/test_cs_svytotal.py``
compares with ``CallawaySantAnna``'s own. Run from the repository root:

    python tests/parity/r/cs_influence_input.py && Rscript tests/parity/r/cs_svytotal.R
"""

import numpy as np

from diff_diff import CallawaySantAnna, SurveyDesign, load_mpdta

OUT = "tests/parity/fixtures/cs_influence_input.csv"


def design_frame():
    df = load_mpdta()
    rng = np.random.default_rng(20261130)
    units = np.sort(df["countyreal"].unique())
    strata = rng.integers(1, 7, units.size)
    psu = rng.integers(1, 9, units.size)  # labels restart within strata: nest
    weights = rng.uniform(0.5, 4.0, units.size)
    fpc = np.array([12, 15, 10, 20, 9, 14])[strata - 1]
    for name, values in (("stratum", strata), ("psu", psu), ("w", weights), ("fpc", fpc)):
        df[name] = df["countyreal"].map(dict(zip(units, values)))
    return df


DESIGN = SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="fpc", nest=True)


def influence(df, method):
    res = CallawaySantAnna(estimation_method=method).fit(
        df, "lemp", "countyreal", "year", "first.treat", covariates=["lpop"], survey_design=DESIGN
    )
    return res, res.aggregate("simple").influence_functions[:, -1]


if __name__ == "__main__":
    df = design_frame()
    units = df.drop_duplicates("countyreal").sort_values("countyreal")
    out = units[["countyreal", "stratum", "psu", "w", "fpc"]].copy()
    for method in ("reg", "ipw", "dr"):
        res, psi = influence(df, method)
        order = np.argsort(res._unit_ids)
        out[f"psi_{method}"] = psi[order]
    out.to_csv(OUT, index=False, float_format="%.17g")
    print(f"wrote {OUT}")
