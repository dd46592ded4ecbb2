"""Reference 2x2x2 triple differences (Ortiz-Villavicencio & Sant'Anna 2025) from moderndid.

Source: the PyPI package ``moderndid`` 0.4.1, module ``moderndid.didtriple``
(a Python port of R ``triplediff``: ``ddd()`` and ``gen_dgp_2periods()``).
moderndid needs Python >= 3.12. Generated with Python 3.12.1, numpy 2.5,
scipy 1.18, statsmodels 0.15, polars 2.1, pandas 3.1 (exact versions in the
fixture's ``meta``).

API used (``import moderndid as m``):

* data: ``m.gen_ddd_2periods(n, dgp_type=1, panel=True|False,
  random_state=seed)`` (port of R ``gen_dgp_2periods``; returns a polars
  frame with id, state, partition, time (1/2), y, cov1..cov4, cluster). Its
  true ATT is 0; we ADD a known heterogeneous effect ``tau = 2 + cov1`` to y
  of the treated-eligible (state = 1, partition = 1) in period 2, drop
  ``cluster``, rename ``time`` to ``period`` and add a sampling weight
  ``weight ~ U(0.5, 2)`` (per unit for the panel, per row for the cross
  sections; separate ``default_rng`` seeds). The CSVs below are the data;
  every estimate is computed on the CSV as read back, so no RNG agreement
  is needed.
* estimates: ``m.ddd(df, yname="y", tname="period", idname="id",
  gname="state", pname="partition", xformla="~ cov1 + cov2 + cov3 + cov4"
  (or None), est_method=E, weightsname=None|"weight")`` for E in reg, ipw,
  dr, all other arguments at their defaults (boot=False, alpha=0.05,
  trim_level=0.995, panel=True). Repeated cross-sections: the same call with
  ``panel=False`` and no idname. Two periods route to
  ``didtriple.estimators.ddd_panel.ddd_panel`` (panel) or
  ``ddd_rc._ddd_rc_2period`` -> ``ddd_rc`` (cross-sections).

What it computes (read from the source, and re-derived below):

* Subgroups: 4 = (S=1, Q=1) treated-eligible, 3 = (S=1, Q=0), 2 = (S=0,
  Q=1), 1 = (S=0, Q=0). Panel: "treated" = the second smallest value of
  gname (glist[1]); cross-sections: gname != 0 and finite.
* ATT = DiD(4 v 3) + DiD(4 v 2) - DiD(4 v 1), each DiD a two-group 2x2
  estimator fitted ONLY on the rows of its two cells (propensity score
  P(subgroup 4 | X) by logit on the pair, outcome regression on the
  comparison cell). Panel: dr = Sant'Anna-Zhao "traditional" locally
  efficient DR on delta y (DRDID ``drdid_panel``, not ``drdid_imp_panel``),
  reg = ``reg_did_panel``, ipw = Hajek ``std_ipw_did_panel``. Cross
  sections: dr = locally efficient ``drdid_rc`` (OR fitted in all four
  (cell, period) cells, including the treated), reg = ``reg_did_rc``, ipw =
  ``std_ipw_did_rc``. Verified: each ``did_atts`` entry equals moderndid's
  own DRDID function on the two-cell subsample (``decomposition`` block:
  ATTs agree to ~1e-13; influence functions see the trap on the logit
  Hessian below).
* Influence function (one value per unit for the panel, sorted by id; one
  per row, in CSV row order, for the cross sections): IF = (n/n_43) IF_43 +
  (n/n_42) IF_42 - (n/n_41) IF_41, IF_4j the pair-level DRDID influence
  function (mean scale on its n_4j rows, zero outside the pair), n the
  number of units (rows for RCS), n_4j = #rows in cells 4 and j (UNWEIGHTED
  counts, also with weights). So IF is on the mean scale of the full
  sample: ATT - theta ~ mean(IF), mean(IF) = 0 up to rounding.
* SE: analytic by default (boot=False): se = sd(IF, ddof=1) / sqrt(n)
  (``np.std(inf_func, ddof=1) / np.sqrt(n)``), recorded as ``se`` and
  recomputed as ``se_from_if``; ``se_ddof0`` = sd(IF, ddof=0)/sqrt(n) is
  also stored (DRDID's own pair-level SEs use ddof 0:
  ``np.std(if, ddof=1) * sqrt(n-1) / n``). CIs: att +- z_{0.975} se.
  boot=True gives a multiplier (Rademacher) bootstrap on the IF (not
  recorded); ``cluster=`` forces boot=True with a warning.
* Weights: normalised to mean 1 over the whole sample (ATT and IF are
  invariant to that scale); propensity logit = statsmodels GLM Binomial with
  ``freq_weights``; OR = statsmodels WLS; they must be constant within unit.

Conventions, traps:

* Propensity trimming: a comparison unit with ps >= 0.995 gets weight 0
  (treated never trimmed); ps is capped at 1 - 1e-6 (no lower clip, unlike
  DRDID's [1e-6, 1 - 1e-6]). For the PANEL route ``ddd(trim_level=)`` is
  IGNORED (``ddd_panel`` never receives it; 0.995 is hard-coded): checked
  with trim_level=0.6 below (``trim_level_ignored_panel``). The RCS route
  does use it. No unit is trimmed in this data (``trimming`` block).
* Logit Hessian in the IF: ddd uses statsmodels ``GLM(...).fit().cov_params()
  * n_pair``, i.e. the inverse Hessian from the LAST IRLS iteration's weights
  (the penultimate iterate, default tol 1e-8), not the Hessian at the final
  fitted ps (R glm's vcov has the same feature). The coefficients agree with
  a fully converged fit to ~1e-13 but that inverse Hessian is off by ~1e-7
  relative, so ipw/dr IFs with covariates move by up to ~1e-4 absolute
  (``decomposition.max_abs_diff_if``; DRDID's pair functions use the exact
  Hessian) and the SE by ``decomposition.rel_diff_se`` (up to ~1e-7).
  Compare IFs/SEs with covariates at ~1e-6 relative, ATTs at ~1e-10.
* reg: the "propensity" is 1 and nothing is trimmed; the control OR fit is
  on the comparison cell only. Without covariates reg = ipw = dr = the
  DDD of cell means of delta y (panel), checked in ``no_cov_by_hand``.
* Covariates are read from the first-period rows (must be time invariant in
  a panel); collinear covariates are dropped (QR) in the panel route only.
* The generator's y is in the hundreds (210 + index), with cell-specific
  trends in the no-covariate case, so no-covariate estimates are far from
  the truth and ipw/reg on the cross-sections are noisy: that is the DGP.

Run from the repository root with the moderndid venv outside the
repository (and not this checkout on ``sys.path``, hence ``-P``):

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/venv-moderndid
    /tmp/venv-moderndid/bin/pip install moderndid==0.4.1
    /tmp/venv-moderndid/bin/python -P tests/parity/ports/ddd_moderndid.py

It writes ``tests/parity/fixtures/ddd_moderndid.json``,
``tests/parity/fixtures/ddd_panel.csv`` and ``tests/parity/fixtures/ddd_rc.csv``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import warnings

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/ddd_moderndid.json"
PANEL_CSV = "tests/parity/fixtures/ddd_panel.csv"
RC_CSV = "tests/parity/fixtures/ddd_rc.csv"

PANEL = dict(n_units=1500, dgp_type=1, seed=20250, weight_seed=11, weight_low=0.5, weight_high=2.0)
RC = dict(n_per_period=1000, dgp_type=1, seed=7, weight_seed=12, weight_low=0.5, weight_high=2.0)
EFFECT = "tau = 2 + cov1 added to y for state=1, partition=1, period=2"
COVS = ["cov1", "cov2", "cov3", "cov4"]
XFORMLA = "~ cov1 + cov2 + cov3 + cov4"
METHODS = ["reg", "ipw", "dr"]
# influence functions stored for these (est_method, covariates, weighted) cases
STORE_IF_PANEL = {(e, c, False) for e in METHODS for c in (True, False)} | {("dr", True, True)}
STORE_IF_RC = {("dr", True, False), ("dr", True, True)}


def add_effect(df):
    te = (df["state"] == 1) & (df["partition"] == 1) & (df["period"] == 2)
    df.loc[te, "y"] = df.loc[te, "y"] + 2.0 + df.loc[te, "cov1"]
    return df, float((2.0 + df.loc[te, "cov1"]).mean())


def make_panel():
    import moderndid as m

    g = m.gen_ddd_2periods(PANEL["n_units"], PANEL["dgp_type"], panel=True, random_state=PANEL["seed"])
    df = g["data"].to_pandas().drop(columns="cluster").rename(columns={"time": "period"})
    df = df.sort_values(["id", "period"]).reset_index(drop=True)
    df, mean_tau = add_effect(df)
    rng = np.random.default_rng(PANEL["weight_seed"])
    w = rng.uniform(PANEL["weight_low"], PANEL["weight_high"], PANEL["n_units"])
    df["weight"] = w[df["id"].to_numpy() - 1]
    df = df[["id", "period", "y", "state", "partition", *COVS, "weight"]]
    return df, {"generator_oracle_att": float(g["oracle_att"]), "mean_tau_treated_eligible": mean_tau,
                "oracle_att": float(g["oracle_att"]) + mean_tau}


def make_rc():
    import moderndid as m

    g = m.gen_ddd_2periods(RC["n_per_period"], RC["dgp_type"], panel=False, random_state=RC["seed"])
    df = g["data"].to_pandas().drop(columns=["cluster", "id"]).rename(columns={"time": "period"})
    df, mean_tau = add_effect(df.reset_index(drop=True))
    rng = np.random.default_rng(RC["weight_seed"])
    df["weight"] = rng.uniform(RC["weight_low"], RC["weight_high"], len(df))
    df = df[["period", "y", "state", "partition", *COVS, "weight"]]
    return df, {"generator_oracle_att": float(g["oracle_att"]), "mean_tau_treated_eligible_post": mean_tau,
                "oracle_att": float(g["oracle_att"]) + mean_tau}


def fl(a):
    return [float(v) for v in np.asarray(a, dtype=float)]


def run_ddd(df, est_method, cov, weighted, panel, **extra):
    import moderndid as m

    kw = dict(yname="y", tname="period", gname="state", pname="partition",
              xformla=XFORMLA if cov else None, est_method=est_method,
              weightsname="weight" if weighted else None)
    if panel:
        kw["idname"] = "id"
    else:
        kw["panel"] = False
    kw.update(extra)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = m.ddd(df, **kw)
    return res, sorted({str(w.message) for w in caught})


def subgroup_of(state, partition):
    return np.where(state == 1, np.where(partition == 1, 4, 3), np.where(partition == 1, 2, 1))


def panel_arrays(df):
    pre = df[df["period"] == 1].sort_values("id")
    post = df[df["period"] == 2].sort_values("id")
    assert (pre["id"].to_numpy() == post["id"].to_numpy()).all()
    return dict(ids=pre["id"].to_numpy(), y0=pre["y"].to_numpy(float), y1=post["y"].to_numpy(float),
                sg=subgroup_of(pre["state"].to_numpy(), pre["partition"].to_numpy()),
                x=pre[COVS].to_numpy(float), w=pre["weight"].to_numpy(float))


def rc_arrays(df):
    return dict(y=df["y"].to_numpy(float), post=(df["period"] == 2).to_numpy().astype(int),
                sg=subgroup_of(df["state"].to_numpy(), df["partition"].to_numpy()),
                x=df[COVS].to_numpy(float), w=df["weight"].to_numpy(float))


def decomposition(arr, res, est_method, cov, weighted, panel):
    """Re-derive each DiD with moderndid's DRDID functions on the two-cell subsample."""
    import moderndid as m

    fun = {("dr", True): m.drdid_panel, ("reg", True): m.reg_did_panel, ("ipw", True): m.std_ipw_did_panel,
           ("dr", False): m.drdid_rc, ("reg", False): m.reg_did_rc, ("ipw", False): m.std_ipw_did_rc}
    sg = arr["sg"]
    n = len(sg)
    X = np.column_stack([np.ones(n), arr["x"]]) if cov else np.ones((n, 1))
    w = arr["w"] if weighted else np.ones(n)
    out, if_sum, att_sum = {}, np.zeros(n), 0.0
    for j, sign in ((3, 1.0), (2, 1.0), (1, -1.0)):
        mask = (sg == 4) | (sg == j)
        d = (sg[mask] == 4).astype(int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if panel:
                r = fun[(est_method, True)](arr["y1"][mask], arr["y0"][mask], d, X[mask],
                                             i_weights=w[mask], influence_func=True)
            else:
                r = fun[(est_method, False)](arr["y"][mask], arr["post"][mask], d, X[mask],
                                              i_weights=w[mask], influence_func=True)
        n_j = int(mask.sum())
        padded = np.zeros(n)
        padded[mask] = r.att_inf_func
        if_sum += sign * (n / n_j) * padded
        att_sum += sign * r.att
        out[f"att_4v{j}"] = float(r.att)
        out[f"se_4v{j}_drdid"] = float(r.se)  # DRDID convention: sd(IF_j, ddof=0) / sqrt(n_j)
        out[f"n_4v{j}"] = n_j
        out[f"abs_diff_att_4v{j}"] = float(abs(r.att - res.did_atts[f"att_4v{j}"]))
    out["abs_diff_att"] = float(abs(att_sum - res.att))
    inf = np.asarray(res.att_inf_func, dtype=float)
    out["max_abs_diff_if"] = float(np.max(np.abs(if_sum - inf)))
    out["max_abs_if"] = float(np.max(np.abs(inf)))
    # DRDID's pair functions invert the logit Hessian at the fitted ps (exact at the MLE)
    out["se_from_pair_ifs"] = float(np.std(if_sum, ddof=1) / np.sqrt(n))
    out["rel_diff_se"] = float(abs(out["se_from_pair_ifs"] - res.se) / res.se)
    return out


def trimming(arr, weighted, panel):
    """Propensity scores of the comparison cells in each pair (dr/ipw with covariates)."""
    n = len(arr["sg"])
    X = np.column_stack([np.ones(n), arr["x"]])
    w = arr["w"] if weighted else np.ones(n)
    if panel:
        from moderndid.didtriple.nuisance import compute_all_nuisances

        ps, _ = compute_all_nuisances(arr["y1"], arr["y0"], arr["sg"], X, w, est_method="dr")
    else:
        from moderndid.didtriple.nuisance_rc import compute_all_nuisances_rc

        ps, _ = compute_all_nuisances_rc(arr["y"], arr["post"], arr["sg"], X, w, est_method="dr")
    out = {}
    for j, p in zip((3, 2, 1), ps):
        sub = arr["sg"][(arr["sg"] == 4) | (arr["sg"] == j)]
        pc = np.asarray(p.propensity_scores)[sub == j]
        out[f"4v{j}"] = {"n_trimmed": int((~np.asarray(p.keep_ps)).sum()), "ps_min_comparison": float(pc.min()),
                         "ps_max_comparison": float(pc.max()), "n_comparison_ps_ge_0.6": int((pc >= 0.6).sum())}
    return out


def one_case(df, arr, est_method, cov, weighted, panel, store_if):
    res, warns = run_ddd(df, est_method, cov, weighted, panel)
    inf = np.asarray(res.att_inf_func, dtype=float)
    n = len(inf)
    case = {
        "est_method": est_method, "covariates": COVS if cov else [], "xformla": XFORMLA if cov else None,
        "weightsname": "weight" if weighted else None,
        "att": float(res.att), "se": float(res.se), "lci": float(res.lci), "uci": float(res.uci),
        "se_from_if": float(np.std(inf, ddof=1) / np.sqrt(n)),
        "se_ddof0": float(np.std(inf, ddof=0) / np.sqrt(n)),
        "if_mean": float(inf.mean()), "n_if": n,
        "did_atts": {k: float(v) for k, v in res.did_atts.items()},
        "subgroup_counts": {k: int(v) for k, v in res.subgroup_counts.items()},
        "args": {k: v for k, v in res.args.items()},
        "warnings": warns,
        "decomposition": decomposition(arr, res, est_method, cov, weighted, panel),
    }
    assert abs(case["se"] - case["se_from_if"]) < 1e-12 * max(1.0, case["se"])
    if store_if:
        if panel:
            case["influence_function"] = {"id": [int(v) for v in arr["ids"]], "value": fl(inf)}
        else:
            case["influence_function"] = {"row": "CSV row order (0-based)", "value": fl(inf)}
    return case


def cell_counts(df, by_unit):
    d = df[df["period"] == 1] if by_unit else df
    c = d.groupby(["state", "partition"]).size()
    return {f"S{s}_Q{q}": int(v) for (s, q), v in c.items()}


def md5(path):
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


def main():
    from importlib.metadata import version

    panel_df, panel_truth = make_panel()
    panel_df.to_csv(PANEL_CSV, index=False)
    rc_df, rc_truth = make_rc()
    rc_df.to_csv(RC_CSV, index=False)
    # estimate on exactly what the CSVs hold
    panel_df = pd.read_csv(PANEL_CSV)
    rc_df = pd.read_csv(RC_CSV)
    parr, rarr = panel_arrays(panel_df), rc_arrays(rc_df)

    out = {
        "meta": {
            "script": "tests/parity/ports/ddd_moderndid.py",
            "source": (f"moderndid {version('moderndid')} (moderndid.didtriple, Python port of R triplediff: "
                       "ddd / gen_dgp_2periods)"),
            "numpy": version("numpy"), "pandas": version("pandas"), "scipy": version("scipy"),
            "statsmodels": version("statsmodels"), "polars": version("polars"),
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "call_panel": ("moderndid.ddd(df, yname='y', tname='period', idname='id', gname='state', "
                           "pname='partition', xformla='~ cov1 + cov2 + cov3 + cov4' | None, est_method=E, "
                           "weightsname=None | 'weight')  # boot=False, alpha=0.05, trim_level=0.995 defaults"),
            "call_rc": ("moderndid.ddd(df, yname='y', tname='period', gname='state', pname='partition', "
                        "xformla=..., est_method=E, weightsname=..., panel=False)"),
            "data_generator": "moderndid.gen_ddd_2periods(n, dgp_type=1, panel=True|False, random_state=seed)",
            "effect_added": EFFECT,
            "ddd_definition": ("att = did_atts.att_4v3 + att_4v2 - att_4v1; subgroup 4 = (S=1,Q=1), 3 = (S=1,Q=0), "
                               "2 = (S=0,Q=1), 1 = (S=0,Q=0); each DiD on the rows of its two cells only"),
            "if_convention": ("IF = (n/n_43) IF_43 + (n/n_42) IF_42 - (n/n_41) IF_41 (pair IFs zero outside the "
                              "pair, n_4j unweighted row counts); mean scale: att - theta ~ mean(IF); panel: one "
                              "value per unit sorted by id; rc: one value per row in CSV order"),
            "se_convention": "se = sd(IF, ddof=1) / sqrt(n) (analytic, boot=False default); ci = att +- 1.96 se",
            "trimming": ("comparison units with ps >= 0.995 get weight 0, ps capped at 1 - 1e-6; the panel "
                         "route ignores ddd(trim_level=) (hard-coded 0.995)"),
            "panel_csv": PANEL_CSV, "panel_csv_md5": md5(PANEL_CSV),
            "rc_csv": RC_CSV, "rc_csv_md5": md5(RC_CSV),
        },
        "panel": {"params": PANEL, "truth": panel_truth, "n_units": int(panel_df["id"].nunique()),
                  "n_rows": int(len(panel_df)), "cell_counts_units": cell_counts(panel_df, True), "cases": {}},
        "rc": {"params": RC, "truth": rc_truth, "n_rows": int(len(rc_df)),
               "cell_counts_rows": cell_counts(rc_df, False),
               "cell_counts_rows_by_period": {
                   str(t): cell_counts(rc_df[rc_df["period"] == t], False) for t in (1, 2)},
               "cases": {}},
    }
    for panel, df, arr, store, blk in ((True, panel_df, parr, STORE_IF_PANEL, "panel"),
                                       (False, rc_df, rarr, STORE_IF_RC, "rc")):
        for weighted in (False, True):
            for cov in (True, False):
                for e in METHODS:
                    name = f"{e}_{'cov' if cov else 'nocov'}{'_weighted' if weighted else ''}"
                    out[blk]["cases"][name] = one_case(df, arr, e, cov, weighted, panel, (e, cov, weighted) in store)
        out[blk]["trimming"] = {"unweighted": trimming(arr, False, panel), "weighted": trimming(arr, True, panel)}

    # no covariates, panel, unweighted: reg = ipw = dr = DDD of the cell means of delta y
    dy = parr["y1"] - parr["y0"]
    mu = {j: dy[parr["sg"] == j].mean() for j in (1, 2, 3, 4)}
    by_hand = float((mu[4] - mu[3]) + (mu[4] - mu[2]) - (mu[4] - mu[1]))
    out["panel"]["no_cov_by_hand"] = {
        "formula": "(m4 - m3) + (m4 - m2) - (m4 - m1) = m4 - m3 - m2 + m1, m_j = mean(y2 - y1) in subgroup j",
        "value": by_hand,
        "max_abs_diff": max(abs(out["panel"]["cases"][f"{e}_nocov"]["att"] - by_hand) for e in METHODS)}
    # trim_level is not passed to the panel estimator
    r06, _ = run_ddd(panel_df, "dr", True, False, True, trim_level=0.6)
    base = out["panel"]["cases"]["dr_cov"]
    out["panel"]["trim_level_ignored_panel"] = {
        "call": "ddd(..., est_method='dr', xformla=covs, trim_level=0.6)", "att": float(r06.att),
        "se": float(r06.se), "equals_default": bool(r06.att == base["att"] and r06.se == base["se"])}
    r06rc, _ = run_ddd(rc_df, "dr", True, False, False, trim_level=0.6)
    out["rc"]["trim_level_0.6"] = {"att": float(r06rc.att), "se": float(r06rc.se),
                                  "equals_default": bool(r06rc.att == out["rc"]["cases"]["dr_cov"]["att"])}

    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
