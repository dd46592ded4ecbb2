"""Reference staggered triple differences (Ortiz-Villavicencio & Sant'Anna 2025) from moderndid.

Source: the PyPI package ``moderndid`` 0.4.1, module ``moderndid.didtriple`` (a Python
port of R ``triplediff``: ``ddd()`` with several periods -> ``ddd_mp``, and
``agg_ddd()``). moderndid needs Python >= 3.12. Generated with Python 3.12.1,
numpy 2.5, scipy 1.18, statsmodels 0.15, polars 2.1, pandas 3.1 (exact versions in
the fixture's ``meta``).

Data (``tests/parity/fixtures/ddd_staggered.csv``): ``moderndid.core.data.
gen_ddd_scalable(500, dgp_type=1, n_periods=5, n_cohorts=3, n_covariates=4,
att_base=1.0, random_state=2025)``: a balanced panel of 500 units x periods 1..5,
enabling cohorts 2, 3, 4 and never (0), a 0/1 partition, covariates cov1..cov4
(constant within unit) and an effect ``g * (t - g + 1)`` for the eligible units of
cohort g from g on. We drop ``cluster``, rename ``group`` to ``first_treat``, make
``cov4`` time-varying (``cov4 + 0.5 N(0, 1)`` per row; the estimators use its
base-period value), add a sampling weight ``weight ~ U(0.5, 2)`` per unit
(``default_rng(11)``) and round to 6 decimals. Every number below is computed on the
CSV as read back.

Calls (``import moderndid as m``): ``res = m.ddd(df, yname="y", tname="time",
idname="id", gname="first_treat", pname="partition", xformla="~ cov1 + cov2 + cov3 +
cov4" | None, control_group=C, base_period=B, est_method=E, weightsname=None |
"weight")`` (boot=False, alpha=0.05 defaults) and ``m.agg_ddd(res, type=T,
boot=False, cband=False)`` for T in simple, eventstudy, group.

What it computes (read from the source):

* Cells (g, t) for t = 2..T (varying) or 1..T (universal), base period t - 1 for
  pre-treatment cells with ``varying``, else the last period before g; comparison
  cohorts: the never treated (``nevertreated``), or every cohort k != g with
  k > max(t, base) plus the never treated (``notyettreated``).
* Per comparison k: ``ddd_panel`` on the units of cohorts g and k, outcome change
  from the base period, covariates from the base period: DiD(4 v 3) + DiD(4 v 2) -
  DiD(4 v 1) with subgroups 4 = (g, eligible), 3 = (g, ineligible), 2 = (k,
  eligible), 1 = (k, ineligible); reg / ipw / dr (DRDID panel forms; comparison units
  with propensity >= 0.995 get weight 0: ``pscore_trim=0.005`` on our side).
* Several comparisons: GMM, ``w = Omega^-1 1 / (1' Omega^-1 1)`` with ``Omega =
  np.cov`` of their influence functions (each scaled to the full sample, zero
  outside the comparison), ``att = w' att_k``, ``IF = IF_k w``.
* Aggregation weights: cohort shares ``mean(weight * 1{cohort = g, eligible})``
  (eligible units only; the paper's P(G = g)), with the influence of the estimated
  shares (R did's ``wif``); group: mean of the cohort's post-treatment cells,
  overall weighted by cohort share.

Standard errors recorded: ``se_if`` = sd(IF, ddof=1) / sqrt(n) from the influence
functions moderndid returns (mean scale, one row per unit). That is our engine's
variance of the sum-scale influence values, ``n/(n-1) sum (psi_i - mean)^2``.
moderndid's own analytic SEs are stored too (``se_moderndid``): it uses
sqrt(mean(IF^2)/n) (ddof 0) except for cells pooling several comparisons, whose SE
is the GMM formula ``(n 1' Omega^-1 1)^-1/2`` with np.cov (ddof 1, so equal to
``se_if`` there).

The propensity logit (statsmodels ``GLM(...).fit()``, default tolerance 1e-8) stops
early enough that its coefficients, and the inverse Hessian of its last IRLS
iteration that enters the influence function, are off by ~1e-7 relative; the GMM
weights come from the influence functions, so GMM cells move by up to ~3e-5 (ipw)
and standard errors by up to ~7e-6 relative. The ``tight_logit`` block repeats the
ipw and dr cases with covariates with that fit run to ``tol=1e-13`` (``GLM.fit``
wrapped while ``ddd`` runs); nothing else changes.

Repeated cross-sections and unbalanced panels (blocks ``rc`` and ``unbalanced``; data
``tests/parity/fixtures/ddd_staggered_unbalanced.csv``): the same panel with 15% of its
rows dropped at random (``default_rng(12)``) and a row-level weight ``weight_rc ~ U(0.5,
2)`` (``default_rng(13)``). ``rc``: ``m.ddd(..., idname=None, panel=False,
weightsname=None | "weight_rc")``, every row its own observation (moderndid's
``ddd_mp_rc``: per comparison cohort ``ddd_rc`` - the repeated cross-section DRDID forms,
covariates as observed in each row - on the rows of cohorts g and k in periods t and
the base period; influence function one value per row). ``unbalanced``: ``m.ddd(...,
idname="id", allow_unbalanced_panel=True, weightsname=None | "weight")``: the same
``ddd_rc`` per comparison on every observation of the cell's two periods, influence
values scaled to the n units and summed within unit (one row per unit). Both trim
comparison observations with propensity >= ``trim_level`` = 0.995 (``pscore_trim=0.005``
on our side). Its repeated cross-section DR influence function subtracts the estimation
effect of the comparison's pre-period outcome regression (R ``DRDID::drdid_rc`` adds it);
our ``drdid.dr_did_rc`` subtracts it too, so the standard errors agree with no constant.

Run from the repository root with the moderndid venv (outside the repository, and
``-P`` so this checkout is not imported):

    /path/to/venv-moderndid/bin/python -P tests/parity/ports/ddd_staggered_moderndid.py

It writes ``tests/parity/fixtures/ddd_staggered_moderndid.json``,
``tests/parity/fixtures/ddd_staggered.csv`` and
``tests/parity/fixtures/ddd_staggered_unbalanced.csv``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import warnings

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/ddd_staggered_moderndid.json"
CSV = "tests/parity/fixtures/ddd_staggered.csv"
UNBALANCED_CSV = "tests/parity/fixtures/ddd_staggered_unbalanced.csv"
DROP_SEED, ROW_WEIGHT_SEED, DROP_SHARE = 12, 13, 0.15
DGP = dict(n=500, dgp_type=1, n_periods=5, n_cohorts=3, n_covariates=4, att_base=1.0,
           random_state=2025)
NOISE_SEED, WEIGHT_SEED = 10, 11
COVS = ["cov1", "cov2", "cov3", "cov4"]
PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "polars")  # versions in the fixture
XFORMLA = "~ cov1 + cov2 + cov3 + cov4"

# (est_method, covariates, control_group, base_period, weighted)
CASES = [(e, cov, cg, bp, False)
         for bp in ("varying", "universal")
         for cg in ("nevertreated", "notyettreated")
         for e, cov in (("dr", True), ("reg", True), ("ipw", True), ("dr", False))]
CASES += [("dr", True, "notyettreated", "varying", True),
          ("ipw", True, "nevertreated", "universal", True),
          ("reg", False, "notyettreated", "universal", True)]


# (layout, est_method, covariates, control_group, base_period, weighted)
ROW_CASES = [("rc", "dr", True, "notyettreated", "varying", False),
             ("rc", "reg", True, "nevertreated", "universal", False),
             ("rc", "ipw", True, "notyettreated", "universal", False),
             ("rc", "dr", False, "nevertreated", "varying", False),
             ("rc", "dr", True, "nevertreated", "universal", True),
             ("rc", "reg", True, "notyettreated", "varying", True),
             ("unbalanced", "dr", True, "notyettreated", "varying", False),
             ("unbalanced", "reg", True, "nevertreated", "universal", False),
             ("unbalanced", "ipw", True, "nevertreated", "varying", True),
             ("unbalanced", "dr", False, "notyettreated", "universal", False),
             ("unbalanced", "dr", True, "notyettreated", "universal", True)]


def make_unbalanced(df):
    """The panel with DROP_SHARE of its rows dropped and a row-level weight."""
    rng = np.random.default_rng(DROP_SEED)
    keep = np.sort(rng.choice(len(df), int(round(len(df) * (1 - DROP_SHARE))), replace=False))
    out = df.iloc[keep].reset_index(drop=True)
    out["weight_rc"] = np.random.default_rng(ROW_WEIGHT_SEED).uniform(0.5, 2.0, len(out))
    out["weight_rc"] = out["weight_rc"].round(6)
    return out


def row_name(case):
    layout, *rest = case
    return name_of(tuple(rest))


def one_row_case(df, case):
    """A repeated cross-section or unbalanced-panel case, stored like :func:`one_case`."""
    import moderndid as m

    layout, e, cov, cg, bp, weighted = case
    rc = layout == "rc"
    weights = ("weight_rc" if rc else "weight") if weighted else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = m.ddd(df, yname="y", tname="time", idname=None if rc else "id",
                    gname="first_treat", pname="partition", xformla=XFORMLA if cov else None,
                    control_group=cg, base_period=bp, est_method=e, weightsname=weights,
                    panel=not rc, allow_unbalanced_panel=not rc)
        out = {"layout": layout, "est_method": e, "covariates": COVS if cov else [],
               "control_group": cg, "base_period": bp, "weightsname": weights,
               **summarise(m, res)}
    out["warnings"] = sorted({str(w.message) for w in caught})
    return out


def make_data():
    from moderndid.core.data import gen_ddd_scalable

    df = gen_ddd_scalable(**DGP)["data"].to_pandas()
    df = df.drop(columns="cluster").rename(columns={"group": "first_treat"})
    df = df.sort_values(["id", "time"]).reset_index(drop=True)
    df["cov4"] = df["cov4"] + 0.5 * np.random.default_rng(NOISE_SEED).standard_normal(len(df))
    ids = df["id"].to_numpy()
    weight = np.random.default_rng(WEIGHT_SEED).uniform(0.5, 2.0, ids.max() + 1)
    df["weight"] = weight[ids]
    df[["y", *COVS, "weight"]] = df[["y", *COVS, "weight"]].round(6)  # a smaller CSV
    return df[["id", "time", "y", "first_treat", "partition", *COVS, "weight"]]


def name_of(case):
    e, cov, cg, bp, weighted = case
    return f"{e}_{'cov' if cov else 'nocov'}_{cg}_{bp}{'_weighted' if weighted else ''}"


def se_if(inf):
    inf = np.asarray(inf, dtype=float)
    return float(np.std(inf, ddof=1) / np.sqrt(inf.shape[0]))


def fl(values):
    return [float(v) for v in np.asarray(values, dtype=float)]


def one_case(df, case):
    import moderndid as m

    e, cov, cg, bp, weighted = case
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = m.ddd(df, yname="y", tname="time", idname="id", gname="first_treat",
                    pname="partition", xformla=XFORMLA if cov else None, control_group=cg,
                    base_period=bp, est_method=e, weightsname="weight" if weighted else None)
        out = {
            "est_method": e, "covariates": COVS if cov else [], "control_group": cg,
            "base_period": bp, "weightsname": "weight" if weighted else None,
            **summarise(m, res),
        }
    out["warnings"] = sorted({str(w.message) for w in caught})
    return out


def summarise(m, res):
    """The cells and the three aggregations of a moderndid ``ddd`` result."""
    inf = np.asarray(res.inf_func_mat, dtype=float)
    out = {
        "n": int(res.n),
        "group_time": {"group": fl(res.groups), "time": fl(res.times), "att": fl(res.att),
                       "se_if": [se_if(inf[:, j]) for j in range(inf.shape[1])],
                       "se_moderndid": fl(res.se)},
        "aggregations": {},
    }
    for kind in ("simple", "eventstudy", "group"):
        agg = m.agg_ddd(res, type=kind, boot=False, cband=False)
        block = {"overall_att": float(agg.overall_att),
                 "overall_se_if": se_if(agg.inf_func_overall),
                 "overall_se_moderndid": float(agg.overall_se)}
        if kind != "simple":
            block.update({"label": fl(agg.egt), "att": fl(agg.att_egt),
                          "se_if": [se_if(agg.inf_func[:, j])
                                    for j in range(agg.inf_func.shape[1])],
                          "se_moderndid": fl(agg.se_egt)})
        out["aggregations"][kind] = block
    return out


class TightLogit:
    """Within the block, statsmodels' GLM fits run to tol=1e-13 (the propensity logit)."""

    def __enter__(self):
        from statsmodels.genmod.generalized_linear_model import GLM

        self.original = GLM.fit

        def fit(model, *args, **kwargs):
            kwargs.setdefault("tol", 1e-13)
            kwargs.setdefault("maxiter", 1000)
            return self.original(model, *args, **kwargs)

        GLM.fit = fit
        return self

    def __exit__(self, *exc):
        from statsmodels.genmod.generalized_linear_model import GLM

        GLM.fit = self.original


def md5(path):
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


def main():
    from importlib.metadata import version

    make_data().to_csv(CSV, index=False)
    df = pd.read_csv(CSV)  # estimate on exactly what the CSV holds
    units = df[df["time"] == 1]
    out = {
        "meta": {
            "script": "tests/parity/ports/ddd_staggered_moderndid.py",
            "source": (f"moderndid {version('moderndid')} (moderndid.didtriple: ddd -> ddd_mp, "
                       "agg_ddd; Python port of R triplediff)"),
            **{package: version(package) for package in PACKAGES},
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "data_generator": ("moderndid.core.data.gen_ddd_scalable(" +
                               ", ".join(f"{k}={v}" for k, v in DGP.items()) + ")"),
            "data_changes": ("cluster dropped; group -> first_treat; cov4 += 0.5 N(0,1) per row "
                             f"(default_rng({NOISE_SEED})); weight ~ U(0.5, 2) per unit "
                             f"(default_rng({WEIGHT_SEED}))"),
            "call": ("moderndid.ddd(df, yname='y', tname='time', idname='id', "
                     "gname='first_treat', pname='partition', xformla='" + XFORMLA +
                     "' | None, control_group=C, base_period=B, est_method=E, "
                     "weightsname=None | 'weight'); moderndid.agg_ddd(res, type=T, "
                     "boot=False, cband=False)"),
            "se_convention": ("se_if = sd(IF, ddof=1) / sqrt(n) of moderndid's influence "
                              "functions (mean scale, one row per unit); se_moderndid = its own "
                              "analytic SE (ddof 0, GMM cells ddof 1)"),
            "trimming": "moderndid's panel route: comparison units with ps >= 0.995 get weight 0",
            "csv": CSV, "csv_md5": md5(CSV),
            "tolerance": ("estimates 1e-8 absolute, standard errors 1e-6 relative (ipw and dr "
                          "with covariates: against tight_logit; against cases, 5e-5 and 2e-5)"),
            "tight_logit": ("the ipw/dr cases with covariates again, statsmodels GLM.fit run "
                            "to tol=1e-13, maxiter=1000 (the propensity logit)"),
        },
        "n_units": int(df["id"].nunique()), "n_rows": int(len(df)),
        "cells_units": {f"g{g}_q{q}": int(v) for (g, q), v in
                        units.groupby(["first_treat", "partition"]).size().items()},
        "cases": {},
    }
    for case in CASES:
        out["cases"][name_of(case)] = one_case(df, case)
    out["tight_logit"] = {}
    with TightLogit():
        for case in CASES:
            if case[0] in ("ipw", "dr") and case[1]:
                out["tight_logit"][name_of(case)] = one_case(df, case)
    make_unbalanced(df).to_csv(UNBALANCED_CSV, index=False)
    rows = pd.read_csv(UNBALANCED_CSV)
    out["meta"].update({
        "unbalanced_csv": UNBALANCED_CSV, "unbalanced_csv_md5": md5(UNBALANCED_CSV),
        "unbalanced_data": (f"{CSV} with {DROP_SHARE:.0%} of rows dropped "
                            f"(default_rng({DROP_SEED})); weight_rc ~ U(0.5, 2) per row "
                            f"(default_rng({ROW_WEIGHT_SEED}))"),
        "call_rows": ("rc: moderndid.ddd(rows, ..., idname=None, panel=False, weightsname="
                      "None | 'weight_rc'); unbalanced: moderndid.ddd(rows, ..., idname='id', "
                      "allow_unbalanced_panel=True, weightsname=None | 'weight')"),
        "rows_tolerance": ("as the panel cases: estimates 1e-8, SEs 1e-6 relative against "
                           "rows_tight_logit for ipw/dr with covariates"),
    })
    out["rows"] = {"n_rows": int(len(rows)), "cases": {}, "tight_logit": {}}
    for case in ROW_CASES:
        out["rows"]["cases"][f"{case[0]}-{row_name(case)}"] = one_row_case(rows, case)
    with TightLogit():
        for case in ROW_CASES:
            if case[1] in ("ipw", "dr") and case[2]:
                out["rows"]["tight_logit"][f"{case[0]}-{row_name(case)}"] = one_row_case(
                    rows, case)
    with open(OUT, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
