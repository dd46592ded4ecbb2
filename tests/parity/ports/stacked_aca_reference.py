"""Hand-built reference for stacked DiD (Wing, Freedman & Hollingsworth 2024) on the ACA data.

Source: the authors' tutorial repository ``hollina/stacked-did-weights``
(Wing, Hollingsworth & Freedman, "Getting Started With Stacked DID"), files

* ``data/acs1860_unins_2008_2021.csv`` (commit e86d4b2): ACA Medicaid
  expansion, state-year uninsurance rate of 18-60 year olds, 51 states x
  2008-2021 = 714 rows, columns ``st, statefip, year, adopt_year`` (empty =
  never adopted) ``, unins``. Copied byte for byte to
  ``tests/parity/fixtures/stacked_aca_uninsured.csv`` (md5 in the fixture);
* ``stacked-example-r-and-stata.qmd`` (commit 6b29c93): the R / Stata code and
  the prose quoting the results; its rendered ``stacked-example-r-and-stata.html``
  (same commit) holds the printed outputs (etable, esttab, hypotheses, lincom).
  Every published number is stored under ``published`` with the exact text it
  comes from.

What is computed here (numpy / pandas only, no diff_diff import, nothing taken
from the authors' code but the definitions):

* sub-experiments: for each adoption year ``a`` (kappa_pre = 3, kappa_post = 2)
  treated = states with ``adopt_year == a``; clean controls = states with
  ``adopt_year > a + kappa_post`` or never adopting; window years
  ``a - 3 .. a + 2``; a sub-experiment is kept only if the window fits inside
  2008-2021 (so 2020 and 2021 are dropped; 2014, 2015, 2016, 2019 stay);
* corrective weights (the tutorial's ``compute_weights``): treated rows 1;
  control rows of sub-experiment ``a`` at event time ``e`` get
  ``(N^D_{a,e} / N^D_e) / (N^C_{a,e} / N^C_e)`` (its share of all treated
  rows at ``e`` over its share of all control rows at ``e``);
* the regression ``feols(unins ~ i(event_time, treat, ref = -1) | treat +
  event_time, cluster = statefip, weights = stack_weight)`` as plain WLS on an
  explicit design: intercept, treat dummy, event-time dummies (e != -1) and
  treat x event-time dummies (e != -1), 12 columns, solved with
  ``numpy.linalg.lstsq`` on sqrt(w)-scaled rows. By Frisch-Waugh-Lovell the
  interaction coefficients, residuals and the clustered sandwich block equal
  those of the absorbed-fixed-effect fit;
* the state-clustered covariance
  ``V = c * B^-1 (sum_g s_g s_g') B^-1``, ``B = X'WX``, ``s_g = sum_{i in g}
  w_i x_i u_i`` (u = y - X b). ``raw`` = the sandwich with c = 1;
  ``fixest`` = c = G/(G-1) * (n-1)/(n-K);
* the average post effect ``(b_0 + b_1 + b_2) / 3`` and its SE
  ``sqrt(a' V a)``; weighted R2 and within R2 (as ``etable`` prints them).

Small-sample convention of fixest for this call (default ``ssc()``: adj = TRUE,
fixef.K = "nested", cluster.adj = TRUE, fixef.force_exact = FALSE), from the
fixest documentation (``?ssc``, rdrr.io/cran/fixest/man/ssc.html, and the
vignette "On standard-errors", lrberge/fixest vignettes/standard_errors.Rmd):

* ``adj``: factor (n - 1) / (n - K), "K the number of estimated parameters";
  n is the number of observations (fixest 0.5 ``dof`` doc: "n the number of
  observation"). Here it does not matter whether n counts rows or weights:
  the corrective weights sum to the row count (per event time, control
  weights sum to N^C_e), so n = 600 either way;
* ``fixef.K = "nested"``: K = number of variables + fixed-effect coefficients
  not nested in the clusters. Neither ``treat`` nor ``event_time`` is nested
  in ``statefip`` (a state adopting in 2019 is a control in 2014-2016 and
  treated in 2019; every state has six event times), so both count; with two
  fixed effects fixest counts all levels minus one reference per extra fixed
  effect (vignette: "6 plus 4 minus one reference") unless
  ``fixef.force_exact``: 2 + 6 - 1 = 7. K = 5 + 7 = 12 = the 12 columns here;
* ``cluster.adj``: G / (G - 1), G = 51 states (one-way: ``cluster.df`` moot);
  ``t.df = "min"`` gives the G - 1 = 50 df the tutorial passes to
  ``hypotheses(df = 50)`` (df does not enter the SE).

Stata ``reghdfe ... [aw = stack_weight], cluster(statefip) absorb(treat
event_time)`` uses the same N, K and G/(G-1), so its 7-digit ``lincom`` SE
(.0056281) checks the convention (R prints only 3 significant digits).

Run from the repository root (any Python with numpy and pandas):

    python tests/parity/ports/stacked_aca_reference.py

It writes ``tests/parity/fixtures/stacked_aca_reference.json`` and keeps an
existing ``diff_diff_3_13`` block. That block comes from the released
diff-diff 3.13.0 (a venv outside the checkout, e.g. ``python -m venv
/work/venv313 && /work/venv313/bin/pip install diff-diff==3.13.0``), run from
the repository root with ``-P`` so this checkout's ``diff_diff`` is not
imported, AFTER the script above:

    /work/venv313/bin/python -P - <<'EOF'
    import json, platform, warnings
    import pandas as pd, diff_diff
    from importlib.metadata import version
    P = "tests/parity/fixtures/stacked_aca_reference.json"
    df = pd.read_csv("tests/parity/fixtures/stacked_aca_uninsured.csv")
    df["first_treat"] = df["adopt_year"].fillna(0).astype(int)   # never -> 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the IC1 trimming warning (2020, 2021)
        r = diff_diff.StackedDiD(kappa_pre=3, kappa_post=2).fit(
            df, outcome="unins", unit="statefip", time="year", first_treat="first_treat")
    es = {str(h): {"effect": float(v["effect"]), "se": float(v["se"])}
          for h, v in sorted(r.event_study_effects.items())}
    out = json.load(open(P))
    out["diff_diff_3_13"] = {
        "call": ("StackedDiD(kappa_pre=3, kappa_post=2).fit(df, outcome='unins', unit='statefip', "
                 "time='year', first_treat='first_treat')  # first_treat = adopt_year, never = 0; "
                 "defaults weighting='aggregate', control_group='not_yet_treated', "
                 "cluster='unit', vcov_type='hc1'"),
        "versions": {"diff_diff": diff_diff.__version__, "numpy": version("numpy"),
                     "pandas": version("pandas"), "python": platform.python_version()},
        "event_study": es, "overall_att": float(r.overall_att),
        "overall_se": float(r.overall_se), "n_stacked_obs": int(r.n_stacked_obs),
        "n_obs": int(r.n_obs), "n_clusters": int(r.n_clusters),
        "n_sub_experiments": int(r.n_sub_experiments),
        "groups": [int(g) for g in r.groups], "trimmed_groups": [int(g) for g in r.trimmed_groups],
        "inference_df": float(r.inference_df)}
    with open(P, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\\n")
    EOF
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CSV = FIXTURES / "stacked_aca_uninsured.csv"
OUT = FIXTURES / "stacked_aca_reference.json"
KAPPA_PRE, KAPPA_POST = 3, 2
REF = -1
EVENT_TIMES = [e for e in range(-KAPPA_PRE, KAPPA_POST + 1) if e != REF]  # -3, -2, 0, 1, 2
POST = [e for e in EVENT_TIMES if e >= 0]

QMD = "hollina/stacked-did-weights stacked-example-r-and-stata.qmd @ 6b29c93"
HTML = "hollina/stacked-did-weights stacked-example-r-and-stata.html @ 6b29c93 (rendered output)"

# Every number the tutorial publishes about this data and model, with its text.
PUBLISHED = {
    "qmd": {
        "source": QMD,
        "n_rows": {
            "value": 714,
            "text": "That's 51 States $\\times$ 14 years = 714 total observations."},
        "kappa": {
            "value": {"kappa_pre": 3, "kappa_post": 2},
            "text": "kappa_pre = 3,\n              kappa_post = 2)"},
        "sub_experiments": {
            "value": {"2014": {"treated": 28, "controls": 18},
                      "2015": {"treated": 3, "controls": 18},
                      "2016": {"treated": 2, "controls": 18},
                      "2019": {"treated": 2, "controls": 11}},
            "text": ("the stacked data set consists of 4 sub-experiments: 2014, 2015, 2016, and "
                     "2019. There are 28 treated units in the 2014 sub-experiment, 3 treated units "
                     "in the 2015 sub-experiment, and 2 treated units in the 2016 and 2019 "
                     "sub-experiments. In contrast, there are 18 clean controls in the 2014, "
                     "2015, and 2016 sub-experiments, and 11 clean controls in the 2019 "
                     "sub-experiment.")},
        "effects_pp": {
            "value": {"0": -1.6, "1": -2.4, "2": -2.5},
            "text": ("reduced the uninsurance rate by 1.6 percentage points in the year of "
                     "adoption, 2.4 percentage points in at 1 year after adoption, and 2.5 "
                     "percentage points at 2 years after adoption.")},
        "coefficients": {
            "value": {"0": -0.01627, "1": -0.023864, "2": -0.025500},
            "text": "$(-.01627 + -0.023864 + -.025500)/3 = -.0219$"},
        "avg_post": {
            "value": -0.0219,
            "text": "$(-.01627 + -0.023864 + -.025500)/3 = -.0219$"},
        "avg_post_pp": {
            "value": -2.2,
            "text": "the average effect is about -2.2 percentage points"},
        "avg_post_se": {"value": 0.006, "text": "with a standard error of .006."},
        "hypotheses_df": {"value": 50, "text": "df = 50)"},
    },
    "html": {
        "source": HTML,
        "counts_R": {
            "value": {"2014": [28, 18, 46], "2015": [3, 18, 21], "2016": [2, 18, 20],
                      "2019": [2, 11, 13]},
            "text": ("   sub_exp N_treated N_control N_total\n"
                     "1:    2014        28        18      46\n"
                     "2:    2015         3        18      21\n"
                     "3:    2016         2        18      20\n"
                     "4:    2019         2        11      13")},
        "stack_rows": {
            "value": {"n": 600, "control_rows": 390, "treated_rows": 210},
            "text": ("statefip |        600 ... (390 missing values generated)\n"
                     "(210 missing values generated)")},
        "avg_control_weight": {
            "value": {"2014": 2.8888889, "2015": 0.3095238, "2016": 0.2063492,
                      "2019": 0.3376623},
            "text": ("   sub_exp avg_control_weight\n"
                     "1:    2014          2.8888889\n"
                     "2:    2015          0.3095238\n"
                     "3:    2016          0.2063492\n"
                     "4:    2019          0.3376623")},
        "etable": {
            "value": {"coef": {"-3": -0.0010, "-2": -0.0030, "0": -0.0163, "1": -0.0239,
                               "2": -0.0255},
                      "se": {"-3": 0.0037, "-2": 0.0030, "0": 0.0039, "1": 0.0065,
                             "2": 0.0071},
                      "n_obs": 600, "r2": 0.42775, "within_r2": 0.01288},
            "text": ("treat x event_time = -3    -0.0010 (0.0037)\n"
                     "treat x event_time = -2    -0.0030 (0.0030)\n"
                     "treat x event_time = 0  -0.0163*** (0.0039)\n"
                     "treat x event_time = 1  -0.0239*** (0.0065)\n"
                     "treat x event_time = 2  -0.0255*** (0.0071)\n"
                     "Observations                            600\n"
                     "R2                                  0.42775\n"
                     "Within R2                           0.01288")},
        "esttab_stata": {
            "value": {"coef": {"-3": -0.00102, "-2": -0.00303, "0": -0.0163, "1": -0.0239,
                               "2": -0.0255},
                      "se": {"-3": 0.00368, "-2": 0.00299, "0": 0.00393, "1": 0.00645,
                             "2": 0.00707},
                      "n_obs": 600},
            "text": ("1.treat#1.~1     -0.00102 (0.00368) 1.treat#1.~2     -0.00303 (0.00299) "
                     "1.treat#1.~4      -0.0163*** (0.00393) 1.treat#1.~5      -0.0239*** "
                     "(0.00645) 1.treat#1.~6      -0.0255*** (0.00707) N 600")},
        "hypotheses_R": {
            "value": {"estimate": -0.0219, "se": 0.00563, "t": -3.89, "ci": [-0.0332, -0.0106],
                      "df": 50},
            "text": " -0.0219    0.00563 -3.89   <0.001 -0.0332 -0.0106 50"},
        "lincom_stata": {
            "value": {"estimate": -0.0218778, "se": 0.0056281, "t": -3.89,
                      "ci": [-0.0331822, -0.0105733]},
            "text": "(1) |  -.0218778   .0056281    -3.89   0.000    -.0331822   -.0105733"},
    },
}


def build_stack(df: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    tmin, tmax = int(df["year"].min()), int(df["year"].max())
    adopt = df["adopt_year"]
    parts, counts, trimmed = [], {}, []
    for a in sorted(int(v) for v in adopt.dropna().unique()):
        if a - KAPPA_PRE < tmin or a + KAPPA_POST > tmax:
            trimmed.append(a)
            continue
        treated = adopt == a
        clean = adopt.isna() | (adopt > a + KAPPA_POST)
        window = df["year"].between(a - KAPPA_PRE, a + KAPPA_POST)
        sub = df[(treated | clean) & window].copy()
        sub["sub_exp"] = a
        sub["treat"] = (sub["adopt_year"] == a).astype(int)
        sub["event_time"] = sub["year"] - a
        parts.append(sub)
        st = sub.drop_duplicates("statefip")
        counts[str(a)] = {"treated": int(st["treat"].sum()),
                          "controls": int((1 - st["treat"]).sum())}
    stack = pd.concat(parts, ignore_index=True)
    # corrective weights, shares taken within each event time
    g = stack.groupby(["sub_exp", "event_time"])["treat"]
    n_t_sub, n_sub = g.transform("sum"), g.transform("size")
    n_c_sub = n_sub - n_t_sub
    h = stack.groupby("event_time")["treat"]
    n_t_all, n_all = h.transform("sum"), h.transform("size")
    n_c_all = n_all - n_t_all
    stack["stack_weight"] = np.where(stack["treat"] == 1, 1.0,
                                     (n_t_sub / n_t_all) / (n_c_sub / n_c_all))
    return stack, {"sub_experiments": counts, "trimmed": trimmed}


def design(stack: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    cols, names = [np.ones(len(stack)), stack["treat"].to_numpy(float)], ["intercept", "treat"]
    for e in EVENT_TIMES:
        cols.append((stack["event_time"] == e).to_numpy(float))
        names.append(f"et[{e}]")
    for e in EVENT_TIMES:
        cols.append(((stack["event_time"] == e) & (stack["treat"] == 1)).to_numpy(float))
        names.append(f"treat:et[{e}]")
    return np.column_stack(cols), names


def wls(y, X, w):
    sw = np.sqrt(w)
    beta, _, rank, _ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    assert rank == X.shape[1], "design is rank deficient"
    return beta, y - X @ beta


def main():
    raw = CSV.read_bytes()
    df = pd.read_csv(CSV)
    assert len(df) == 714 and df["statefip"].nunique() == 51
    assert (df.groupby("statefip")["year"].nunique() == 14).all()

    stack, info = build_stack(df)
    y = stack["unins"].to_numpy(float)
    w = stack["stack_weight"].to_numpy(float)
    X, names = design(stack)
    n, K = X.shape
    beta, u = wls(y, X, w)

    bread = np.linalg.inv(X.T @ (X * w[:, None]))
    cl = stack["statefip"].to_numpy()
    scores = pd.DataFrame(X * (w * u)[:, None]).groupby(cl).sum().to_numpy()
    G = scores.shape[0]
    v_raw = bread @ (scores.T @ scores) @ bread
    factor = G / (G - 1) * (n - 1) / (n - K)
    v_fx = factor * v_raw

    idx = {e: names.index(f"treat:et[{e}]") for e in EVENT_TIMES}
    a = np.zeros(K)
    for e in POST:
        a[idx[e]] = 1.0 / len(POST)

    # weighted R2 and within R2 (etable); the FE-only fit is intercept + treat + event-time dummies
    ybar = np.sum(w * y) / np.sum(w)
    ssr = np.sum(w * u ** 2)
    _, u0 = wls(y, X[:, : 2 + len(EVENT_TIMES)], w)
    r2 = 1 - ssr / np.sum(w * (y - ybar) ** 2)
    within_r2 = 1 - ssr / np.sum(w * u0 ** 2)

    avg_ctrl_w = (stack[(stack["event_time"] == 0) & (stack["treat"] == 0)]
                  .groupby("sub_exp")["stack_weight"].mean())

    ref = {
        "sub_experiments": info["sub_experiments"],
        "trimmed_adoption_years": info["trimmed"],
        "n_obs": int(n), "n_treated_rows": int(stack["treat"].sum()),
        "n_control_rows": int((1 - stack["treat"]).sum()), "sum_weights": float(w.sum()),
        "n_clusters": int(G), "K": int(K), "design_columns": names,
        "avg_control_weight_e0": {str(k): float(v) for k, v in avg_ctrl_w.items()},
        "coef": {str(e): float(beta[idx[e]]) for e in EVENT_TIMES},
        "se": {str(e): float(np.sqrt(v_fx[idx[e], idx[e]])) for e in EVENT_TIMES},
        "se_raw_sandwich": {str(e): float(np.sqrt(v_raw[idx[e], idx[e]])) for e in EVENT_TIMES},
        "avg_post": float(a @ beta),
        "avg_post_se": float(np.sqrt(a @ v_fx @ a)),
        "avg_post_se_raw_sandwich": float(np.sqrt(a @ v_raw @ a)),
        "small_sample_factor": float(factor),
        "small_sample_factor_formula": (
            f"G/(G-1) * (n-1)/(n-K) = {G}/{G - 1} * {n - 1}/{n - K} (fixest default ssc(): "
            "cluster.adj, adj, fixef.K='nested'; n = rows = sum of weights = 600; K = 5 "
            "interactions + 7 non-nested FE coefficients (treat 2 + event_time 6 - 1))"),
        "r2": float(r2), "within_r2": float(within_r2),
    }

    # agreement at the printed precision: reference rounded to the published decimals
    def agree(pub: float, val: float, decimals: int) -> bool:
        return bool(round(val, decimals) == round(pub, decimals))

    esttab_se = PUBLISHED["html"]["esttab_stata"]["value"]["se"]
    etable_se = PUBLISHED["html"]["etable"]["value"]["se"]
    comparison = {
        "qmd_coef_e0 (-.01627, 5 dp)": agree(-0.01627, ref["coef"]["0"], 5),
        "qmd_coef_e1 (-0.023864, 6 dp)": agree(-0.023864, ref["coef"]["1"], 6),
        "qmd_coef_e2 (-.025500, 6 dp)": agree(-0.025500, ref["coef"]["2"], 6),
        "qmd_avg_post (-.0219, 4 dp)": agree(-0.0219, ref["avg_post"], 4),
        "qmd_avg_post_se (.006, 3 dp)": agree(0.006, ref["avg_post_se"], 3),
        "html_hypotheses_se (0.00563, 5 dp)": agree(0.00563, ref["avg_post_se"], 5),
        "html_lincom (-.0218778, 7 dp)": agree(-0.0218778, ref["avg_post"], 7),
        "html_lincom_se (.0056281, 7 dp)": agree(0.0056281, ref["avg_post_se"], 7),
        "html_esttab_se (5 dp)": all(agree(esttab_se[k], ref["se"][k], 5) for k in ref["se"]),
        "html_etable_se (4 dp)": all(agree(etable_se[k], ref["se"][k], 4) for k in ref["se"]),
        "html_r2 (0.42775, 5 dp)": agree(0.42775, r2, 5),
        "html_within_r2 (0.01288, 5 dp)": agree(0.01288, within_r2, 5),
        "html_avg_control_weight (7 dp)": all(
            agree(PUBLISHED["html"]["avg_control_weight"]["value"][k], v, 7)
            for k, v in ref["avg_control_weight_e0"].items()),
        "counts": ref["sub_experiments"] == PUBLISHED["qmd"]["sub_experiments"]["value"],
    }

    out = {
        "meta": {
            "script": "tests/parity/ports/stacked_aca_reference.py",
            "source": ("hand-built numpy WLS + CR1 reference of the tutorial in "
                       "hollina/stacked-did-weights (Wing, Freedman & Hollingsworth 2024, "
                       "NBER WP 32054)"),
            "r_call": ("feols(unins ~ i(event_time, treat, ref = -1) | treat + event_time, "
                       "cluster = statefip, weights = stack_weight)"),
            "design": ("kappa_pre=3, kappa_post=2; treated adopt_year == a; clean controls "
                       "adopt_year > a + 2 or never; window a-3..a+2; keep a with 2008 <= a-3 "
                       "and a+2 <= 2021; control weight (N^D_ae/N^D_e)/(N^C_ae/N^C_e), "
                       "treated 1"),
            "se_convention": ("se = sqrt(diag(c * B^-1 M B^-1)), B = X'WX, M = sum_g s_g s_g', "
                              "s_g = sum_{i in g} w_i x_i u_i, clusters statefip, "
                              "c = G/(G-1)*(n-1)/(n-K); se_raw_sandwich: c = 1"),
            "fixest_docs": ("?ssc (rdrr.io/cran/fixest/man/ssc.html): adj '(n - 1) / (n - K), "
                            "with K the number of estimated parameters'; fixef.K='nested' "
                            "(default) 'number of variables plus the number of fixed-effects "
                            "that are not nested in the clusters'; cluster.adj G/(G-1). Vignette "
                            "'On standard-errors' (lrberge/fixest vignettes/standard_errors.Rmd): "
                            "two FEs counted as levels summed minus one reference unless "
                            "fixef.force_exact"),
            "data_file": "tests/parity/fixtures/stacked_aca_uninsured.csv",
            "data_source": "hollina/stacked-did-weights data/acs1860_unins_2008_2021.csv @ e86d4b2",
            "data_md5": hashlib.md5(raw).hexdigest(),
            "python": platform.python_version(), "numpy": version("numpy"),
            "pandas": version("pandas"), "date": datetime.date.today().isoformat(),
        },
        "reference": ref,
        "published": PUBLISHED,
        "agreement_at_published_precision": comparison,
    }
    if OUT.exists():  # keep the block the diff-diff 3.13.0 command adds (see docstring)
        old = json.loads(OUT.read_text())
        if "diff_diff_3_13" in old:
            out["diff_diff_3_13"] = old["diff_diff_3_13"]

    print(f"data md5 {out['meta']['data_md5']}, n={n}, G={G}, K={K}, factor={factor:.10f}")
    print("sub-experiments", info["sub_experiments"], "trimmed", info["trimmed"])
    print("avg control weight at e=0",
          {k: round(v, 7) for k, v in ref["avg_control_weight_e0"].items()})
    print(f"{'e':>3} {'coef':>14} {'se (fixest)':>14} {'se (raw)':>14}")
    for e in EVENT_TIMES:
        k = str(e)
        print(f"{e:>3} {ref['coef'][k]:>14.10f} {ref['se'][k]:>14.10f} "
              f"{ref['se_raw_sandwich'][k]:>14.10f}")
    print(f"avg post {ref['avg_post']:.10f} se {ref['avg_post_se']:.10f} "
          f"(raw {ref['avg_post_se_raw_sandwich']:.10f})")
    print(f"R2 {r2:.6f} within R2 {within_r2:.6f}")
    for k, v in comparison.items():
        print(f"  {'ok ' if v else 'OFF'} {k}")
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
