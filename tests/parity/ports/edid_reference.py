"""Independent reference values for the efficient DiD estimator (no covariates).

Chen, Sant'Anna & Xie (2025), "Efficient Difference-in-Differences and Event
Study Estimators" (arXiv 2506.17729), the unconditional (no-covariate) case on a
balanced panel. Everything here is written from the formulas below with numpy /
scipy / pandas only; it does NOT use the library's EfficientDiD. The library is
imported only for check 3 (PT-Post must equal its CallawaySantAnna), and diff-diff
3.13.0 (the earlier release, in a separate venv) is run only for the comparison
of section 4.

Run from the repository root:

    python tests/parity/ports/edid_reference.py

It writes ``tests/parity/fixtures/edid_reference.json``. The 3.13 section shells
out to ``/work/venv313/bin/python`` (env var ``EDID_V313_PYTHON`` overrides),
run from a temporary directory so that it imports the installed 3.13.0 and not
this checkout. If that interpreter is missing, the 3.13 numbers already stored in
the fixture are kept (they are recorded data, not recomputed by CI).

Definitions (implemented exactly)
---------------------------------
Units i with weights w_i (1 if unweighted), periods s = 1..T in time order,
groups h = each finite cohort and ``inf`` (never treated). W_h = sum of w_i in h,
Ybar_h(s) = sum_{i in h} w_i Y_is / W_h, N_h = #units in h, c_h = N_h / (N_h - 1).
Anticipation 0.

PT-All: cells (g, t) for every finite cohort g > period 1 and every t != 1.
Moments are pairs (g', t') with g' a finite cohort or inf, t' != 1, t' < g',
excluding the degenerate (g, t) (identically 0; pre-treatment cells only), and
all (inf, t') collapsed into ONE moment "inf" (they are identical: the generated
outcome and the influence function telescope, see ``collapse`` in the checks).

  yhat_(g',t') = [Ybar_g(t) - Ybar_g(1)] - [Ybar_inf(t) - Ybar_inf(t')]
                 - [Ybar_g'(t') - Ybar_g'(1)]
  yhat_inf     = [Ybar_g(t) - Ybar_g(1)] - [Ybar_inf(t) - Ybar_inf(1)]

Each moment is a sum of "pieces" coef * [Ybar_h(a) - Ybar_h(b)]; the influence
value of unit i of group h for the moment is the sum over its pieces of group h
of coef * (w_i / W_h) * [(Y_ia - Y_ib) - (Ybar_h(a) - Ybar_h(b))] ("sum scale").
Omega_jk = sum_h c_h sum_{i in h} psi_ij psi_ik (every cross term included, in
particular the covariance of the two never-treated pieces Y_t - Y_t' and
Y_t' - Y_1 when g' = inf - the term diff-diff 3.13 omits).
omega = Omega^-1 1 / (1' Omega^-1 1); ATT(g,t) = omega' yhat;
psi_i = sum_j omega_j psi_ij; SE = sqrt(n / (n - 1) * sum_i psi_i^2).

PT-Post: one moment per cell, base b = g - 1, cells every t != b:
  yhat = [Ybar_g(t) - Ybar_g(b)] - [Ybar_inf(t) - Ybar_inf(b)]
(= CallawaySantAnna, never-treated controls, base_period="universal").

Aggregations (R did::aggte): "simple" = post cells (t >= g) weighted by
pg_k = W_{g_k} / n (divided by their sum P); event study ES(e) = the same over
cells with t - g = e; "dynamic_overall" = mean of ES(e) over e >= 0 (aggte's
dynamic overall). Influence of an aggregate (sum scale):
  IF_i = sum_k (pg_k / P) psi_ik + (1/n) sum_k wif_ik att_k,
  wif_ik = (w_i 1{G_i = g_k} - pg_k) / P
           - [sum_l (w_i 1{G_i = g_l} - pg_l)] pg_k / P^2   (l, k over the cells)
which is aggte's get_agg_inf_func + wif divided by n (R's influence functions are
n times ours); SE = sqrt(n / (n - 1) * sum_i IF_i^2).

Cases: mpdta (``../shared/data/mpdta.csv`` beside the repository, byte identical
to ``diff_diff/datasets/data/mpdta.csv``; md5 in the fixture), y = lemp,
unit = countyreal, time = year (2003-2007), cohort = first.treat (0 = never).
(a) unweighted; (b) unit weight w = 1 + countyreal % 3; (c) cohort 2007 and
never-treated units only, unweighted.

Checks recorded in the fixture
------------------------------
1. route2: every cell recomputed from the T x T within-group covariance matrices
   of the outcome vectors (V_h = cov(Y_h)/N_h, ddof 1; weighted: c_h sum
   (w_i/W_h)^2 (Y_i - Ybar_h)(Y_i - Ybar_h)') and per-group contrast matrices
   A_h: Omega = sum_h A_h' V_h A_h, yhat = sum_h A_h' Ybar_h,
   Var = n/(n-1) sum_h omega' A_h' V_h A_h omega / c_h. Cell (2007, 2007) of
   case (c) is written out in full (both Omegas).
2. gmm: theta = argmin (yhat - theta 1)' Omega^-1 (yhat - theta 1) by
   scipy.optimize.minimize_scalar (Brent) for every cell, vs omega' yhat.
3. cs_parity: PT-Post cells and aggregations vs the library's
   CallawaySantAnna(control_group="never_treated", base_period="universal",
   estimation_method="reg") (case (b) through SurveyDesign(weights=...)).
4. v3_13: diff-diff 3.13.0 EfficientDiD(pt_assumption="all") and a replay of its
   definitions (3.13's Omega: never-treated cross term dropped, duplicate
   (inf, t') moments kept, relative ridge 1e-6 * trace/H), to diagnose the
   differences.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import brentq, minimize_scalar

OUT = "tests/parity/fixtures/edid_reference.json"
# the team's shared folder sits beside the repository
MPDTA = str(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mpdta.csv")
V313_PYTHON = os.environ.get("EDID_V313_PYTHON", "/work/venv313/bin/python")
INF = np.inf
OURS_AGGS = {}  # (case, pt) -> our aggregations, filled by main() for the 3.13 section

TOLERANCES = {
    "att_abs": 1e-10,
    "se_rel": 1e-8,
    "omega_abs": 1e-8,
    "cond_rel": 1e-6,
    "aggregate_att_abs": 1e-10,
    "aggregate_se_rel": 1e-8,
    "note": ("For the implementation under test vs this reference (same estimator, "
             "floating-point reassociation only; cond(Omega) <= ~1e3 here). Moments may "
             "be ordered differently: compare omega as a mapping moment -> weight. "
             "v3_13 numbers are documentation of the old release, not a target."),
}


# --------------------------------------------------------------------------- data
class Panel:
    """Balanced panel in wide form: Y (n x T), G (n,) with inf = never, w (n,)."""

    def __init__(self, df: pd.DataFrame, weighted: bool):
        wide = df.pivot(index="countyreal", columns="year", values="lemp").sort_index()
        assert not wide.isna().any().any(), "panel must be balanced"
        ft = df.groupby("countyreal")["first.treat"]
        assert (ft.nunique() == 1).all()
        first = ft.first().reindex(wide.index).to_numpy()
        self.units = wide.index.to_numpy()
        self.Y = wide.to_numpy(float)
        self.periods = [int(p) for p in wide.columns]
        self.col = {p: j for j, p in enumerate(self.periods)}
        self.p1 = self.periods[0]
        self.G = np.where(first == 0, INF, first).astype(float)
        self.w = (1.0 + self.units % 3) if weighted else np.ones(len(self.units))
        self.n = len(self.units)
        self.cohorts = sorted(int(g) for g in set(self.G[np.isfinite(self.G)]))
        self.groups = [float(g) for g in self.cohorts] + [INF]
        self.mask = {h: self.G == h for h in self.groups}
        self.N = {h: int(self.mask[h].sum()) for h in self.groups}
        self.W = {h: float(self.w[self.mask[h]].sum()) for h in self.groups}
        self.c = {h: self.N[h] / (self.N[h] - 1.0) for h in self.groups}
        self.cvec = np.array([self.c[h] for h in self.G])
        self.weighted = weighted

    def diff(self, a, b):
        return self.Y[:, self.col[a]] - self.Y[:, self.col[b]]

    def mean(self, h, a, b):
        m = self.mask[h]
        return float(self.w[m] @ self.diff(a, b)[m] / self.W[h])

    def piece_if(self, h, a, b):
        """(w_i / W_h) [(Y_ia - Y_ib) - (Ybar_h(a) - Ybar_h(b))] for i in h, else 0."""
        m = self.mask[h]
        out = np.zeros(self.n)
        out[m] = self.w[m] / self.W[h] * (self.diff(a, b)[m] - self.mean(h, a, b))
        return out


def load_case(name):
    df = pd.read_csv(MPDTA)
    if name == "c_single_cohort_2007":
        df = df[df["first.treat"].isin([0, 2007])]
    return Panel(df, weighted=(name == "b_weighted"))


CASES = {
    "a_unweighted": "all 500 counties, unweighted",
    "b_weighted": "all 500 counties, unit weight w = 1 + countyreal % 3",
    "c_single_cohort_2007": "cohort 2007 and never-treated counties only (440), unweighted",
}


def label(h):
    return "inf" if not np.isfinite(h) else int(h)


# ------------------------------------------------------------------------ moments
# A moment is (label [g', t'], pieces); a piece is (coef, group, a, b) meaning
# coef * [Ybar_group(a) - Ybar_group(b)].
def moments_all(P: Panel, g, t):
    target = (1.0, float(g), t, P.p1)
    out = [(["inf", None], [target, (-1.0, INF, t, P.p1)])]
    for gp in P.cohorts:
        for tp in P.periods:
            if tp == P.p1 or tp >= gp or (gp == g and tp == t):
                continue
            out.append(([gp, tp], [target, (-1.0, INF, t, tp), (-1.0, float(gp), tp, P.p1)]))
    return out


def moments_all_uncollapsed_inf(P: Panel, g, t):
    """The (inf, t') moments before collapsing (for the collapse check)."""
    target = (1.0, float(g), t, P.p1)
    return [(["inf", tp], [target, (-1.0, INF, t, tp), (-1.0, INF, tp, P.p1)])
            for tp in P.periods if tp != P.p1]


def moments_post(P: Panel, g, t):
    b = g - 1
    return [(["inf", b], [(1.0, float(g), t, b), (-1.0, INF, t, b)])]


def cells(P: Panel, pt):
    out = []
    for g in P.cohorts:
        if g <= P.p1:
            continue
        for t in P.periods:
            if (pt == "all" and t == P.p1) or (pt == "post" and t == g - 1):
                continue
            out.append((g, t))
    return out


def moment_matrix(P: Panel, moments):
    yhat = np.array([sum(c * P.mean(h, a, b) for c, h, a, b in pcs) for _, pcs in moments])
    Psi = np.column_stack([sum(c * P.piece_if(h, a, b) for c, h, a, b in pcs)
                           for _, pcs in moments])
    return yhat, Psi


def efficient(P: Panel, moments):
    """Route 1: per-unit influence values."""
    yhat, Psi = moment_matrix(P, moments)
    Omega = Psi.T @ (P.cvec[:, None] * Psi)
    cond = float(np.linalg.cond(Omega))
    x = np.linalg.solve(Omega, np.ones(len(yhat)))
    omega = x / x.sum()
    att = float(omega @ yhat)
    psi = Psi @ omega
    se = float(np.sqrt(P.n / (P.n - 1.0) * psi @ psi))
    return dict(yhat=yhat, Omega=Omega, cond=cond, omega=omega, att=att, psi=psi, se=se)


def efficient_route2(P: Panel, moments):
    """Route 2: T x T within-group covariance matrices of the outcome vectors."""
    T, J = len(P.periods), len(moments)
    yhat, Omega, V, A = np.zeros(J), np.zeros((J, J)), {}, {}
    for h in P.groups:
        m = P.mask[h]
        Yh, wh = P.Y[m], P.w[m]
        if P.weighted:
            ybar = wh @ Yh / wh.sum()
            D = Yh - ybar
            V[h] = P.c[h] * (D * (wh / wh.sum())[:, None] ** 2).T @ D
        else:
            ybar = Yh.mean(axis=0)
            V[h] = np.cov(Yh, rowvar=False, ddof=1) / m.sum()
        A[h] = np.zeros((T, J))
        for j, (_, pcs) in enumerate(moments):
            for c, gh, a, b in pcs:
                if gh == h:
                    A[h][P.col[a], j] += c
                    A[h][P.col[b], j] -= c
        yhat += A[h].T @ ybar
        Omega += A[h].T @ V[h] @ A[h]
    x = np.linalg.solve(Omega, np.ones(J))
    omega = x / x.sum()
    var = P.n / (P.n - 1.0) * sum(omega @ A[h].T @ V[h] @ A[h] @ omega / P.c[h]
                                  for h in P.groups)
    return dict(yhat=yhat, Omega=Omega, omega=omega, att=float(omega @ yhat),
                se=float(np.sqrt(var)), V=V, A=A)


def gmm_bruteforce(yhat, Omega):
    """argmin_theta f(theta) = (yhat - theta 1)' Omega^-1 (yhat - theta 1), numerically.

    Returns (theta_brent, theta_foc, floor): Brent's minimisation of f itself, and the root
    (scipy.optimize.brentq) of f's central-difference derivative (f(th+h) - f(th-h)) / 2h,
    which is exact for a quadratic up to rounding. ``floor`` = sqrt(2 eps max(f) / a),
    a = 1' Omega^-1 1, is the resolution of any minimiser that only compares values of f
    in double precision (f is flat to within rounding over that distance).
    """
    Oinv = np.linalg.inv(Omega)

    def f(th):
        r = yhat - th
        return float(r @ Oinv @ r)

    lo, hi = float(yhat.min()), float(yhat.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    brent = minimize_scalar(f, bracket=(lo, hi), method="brent", options={"xtol": 1e-14}).x
    h = 1e-2
    foc = brentq(lambda th: (f(th + h) - f(th - h)) / (2 * h), lo - 1.0, hi + 1.0,
                 xtol=1e-16, rtol=4 * np.finfo(float).eps, maxiter=500)
    a = float(np.ones(len(yhat)) @ Oinv @ np.ones(len(yhat)))
    floor = float(np.sqrt(2 * np.finfo(float).eps * max(f(brent), f(lo), f(hi)) / a))
    return float(brent), float(foc), floor


# -------------------------------------------------------------------- aggregation
def aggregate(P: Panel, cell_list, which):
    """Weighted average of cells ``which`` (indices) with cohort-mass weights and its IF."""
    g = np.array([cell_list[k]["g"] for k in which], float)
    att = np.array([cell_list[k]["att"] for k in which])
    pg = np.array([P.W[x] for x in g]) / P.n
    Ptot = pg.sum()
    wts = pg / Ptot
    inf1 = sum(wts[j] * cell_list[k]["psi"] for j, k in enumerate(which))
    ind = np.column_stack([P.w * (P.G == x) - pg[j] for j, x in enumerate(g)])  # n x K
    wif = ind / Ptot - np.outer(ind.sum(axis=1), pg / Ptot ** 2)
    IF = inf1 + wif @ att / P.n
    est = float(wts @ att)
    return est, IF


def se_of(P: Panel, IF):
    return float(np.sqrt(P.n / (P.n - 1.0) * IF @ IF))


def run_case(P: Panel, pt):
    out_cells = []
    for g, t in cells(P, pt):
        mom = moments_all(P, g, t) if pt == "all" else moments_post(P, g, t)
        r = efficient(P, mom)
        out_cells.append(dict(g=g, t=t, e=t - g, post=bool(t >= g), att=r["att"], se=r["se"],
                              moments=[m[0] for m in mom], omega=r["omega"], yhat=r["yhat"],
                              cond=r["cond"], psi=r["psi"], Omega=r["Omega"], _mom=mom))
    post = [k for k, c in enumerate(out_cells) if c["post"]]
    simple, IF_simple = aggregate(P, out_cells, post)
    es, es_IF = [], {}
    for e in sorted({c["e"] for c in out_cells}):
        which = [k for k, c in enumerate(out_cells) if c["e"] == e]
        est, IF = aggregate(P, out_cells, which)
        es_IF[e] = IF
        es.append(dict(e=int(e), att=est, se=se_of(P, IF),
                       cohorts=[out_cells[k]["g"] for k in which]))
    post_e = [e for e in es_IF if e >= 0]
    dyn = float(np.mean([x["att"] for x in es if x["e"] >= 0]))
    IF_dyn = sum(es_IF[e] for e in post_e) / len(post_e)
    aggs = dict(simple=dict(att=simple, se=se_of(P, IF_simple)), event_study=es,
                dynamic_overall=dict(att=dyn, se=se_of(P, IF_dyn), events=post_e))
    return out_cells, aggs


def public_cells(cell_list):
    return [dict(g=c["g"], t=c["t"], e=c["e"], post=c["post"], att=c["att"], se=c["se"],
                 moments=c["moments"], omega=c["omega"].tolist(), yhat=c["yhat"].tolist(),
                 cond=c["cond"]) for c in cell_list]


# ------------------------------------------------------------------------- checks
def check_route2(P: Panel, cell_list):
    d = dict(att=0.0, se=0.0, omega=0.0, Omega_rel=0.0, yhat=0.0)
    for c in cell_list:
        r2 = efficient_route2(P, c["_mom"])
        d["att"] = max(d["att"], abs(r2["att"] - c["att"]))
        d["se"] = max(d["se"], abs(r2["se"] / c["se"] - 1))
        d["omega"] = max(d["omega"], float(np.abs(r2["omega"] - c["omega"]).max()))
        d["yhat"] = max(d["yhat"], float(np.abs(r2["yhat"] - c["yhat"]).max()))
        d["Omega_rel"] = max(d["Omega_rel"], float(np.abs(r2["Omega"] - c["Omega"]).max()
                                                   / np.abs(c["Omega"]).max()))
    return {f"max_abs_diff_{k}" if k not in ("se", "Omega_rel") else
            ("max_rel_diff_se" if k == "se" else "max_rel_diff_Omega"): v for k, v in d.items()}


def closed_form_cell(P: Panel, cell_list, g, t):
    c = next(x for x in cell_list if x["g"] == g and x["t"] == t)
    r2 = efficient_route2(P, c["_mom"])
    return dict(
        cell=[g, t], moments=c["moments"],
        note=("route 1: Omega = Psi' diag(c_h) Psi from per-unit influence values; route 2: "
              "Omega = sum_h A_h' (S_h / N_h) A_h with S_h = np.cov(Y_h, ddof=1) the T x T "
              "within-group covariance of (Y_2003..Y_2007) and A_h the moment contrasts; "
              "SE2 = sqrt(n/(n-1) sum_h omega' A_h' S_h A_h omega (N_h-1)/N_h^2)"),
        S_over_N={str(label(h)): r2["V"][h].tolist() for h in P.groups},
        contrasts={str(label(h)): r2["A"][h].T.tolist() for h in P.groups},
        Omega_route1=c["Omega"].tolist(), Omega_route2=r2["Omega"].tolist(),
        max_abs_diff_Omega=float(np.abs(r2["Omega"] - c["Omega"]).max()),
        max_abs_Omega=float(np.abs(c["Omega"]).max()),
        omega_route1=c["omega"].tolist(), omega_route2=r2["omega"].tolist(),
        att_route1=c["att"], att_route2=r2["att"], abs_diff_att=abs(r2["att"] - c["att"]),
        se_route1=c["se"], se_route2=r2["se"], rel_diff_se=abs(r2["se"] / c["se"] - 1),
        cond=c["cond"],
    )


def check_gmm(cell_list):
    d_brent, d_foc, worst_ratio = 0.0, 0.0, 0.0
    for c in cell_list:
        th_b, th_f, floor = gmm_bruteforce(c["yhat"], c["Omega"])
        d_brent = max(d_brent, abs(th_b - c["att"]))
        d_foc = max(d_foc, abs(th_f - c["att"]))
        worst_ratio = max(worst_ratio, abs(th_b - c["att"]) / floor)
    return dict(brent_max_abs_diff=d_brent, foc_root_max_abs_diff=d_foc,
                brent_max_diff_over_floor=worst_ratio)


def check_collapse(P: Panel, g, t):
    """The (inf, t') moments are one moment: identical yhat and influence columns."""
    mom = moments_all_uncollapsed_inf(P, g, t)
    yhat, Psi = moment_matrix(P, mom)
    y1, Psi1 = moment_matrix(P, moments_all(P, g, t)[:1])
    Om = Psi.T @ (P.cvec[:, None] * Psi)
    return dict(cell=[g, t], t_primes=[m[0][1] for m in mom],
                max_abs_diff_yhat=float(np.abs(yhat - y1[0]).max()),
                max_abs_diff_psi=float(np.abs(Psi - Psi1).max()),
                eigenvalues_Omega_uncollapsed=np.linalg.eigvalsh(Om).tolist())


def cs_results(df, weighted):
    import diff_diff as dd

    cs = dd.CallawaySantAnna(control_group="never_treated", base_period="universal",
                             estimation_method="reg")
    if weighted:
        df = df.assign(w=1.0 + df["countyreal"] % 3)
        res = cs.fit(df, "lemp", "countyreal", "year", "first.treat",
                     survey_design=dd.SurveyDesign(weights="w"))
    else:
        res = cs.fit(df, "lemp", "countyreal", "year", "first.treat")
    return res


def check_cs(P: Panel, name, cell_list, aggs):
    df = pd.read_csv(MPDTA)
    if name == "c_single_cohort_2007":
        df = df[df["first.treat"].isin([0, 2007])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cs_results(df, name == "b_weighted")
    gt = res.group_time_effects
    d_att, d_se, n = 0.0, 0.0, 0
    for c in cell_list:
        row = gt[(gt["group"] == c["g"]) & (gt["time"] == c["t"])]
        assert len(row) == 1
        d_att = max(d_att, abs(float(row["estimate"].iloc[0]) - c["att"]))
        d_se = max(d_se, abs(float(row["se"].iloc[0]) / c["se"] - 1))
        n += 1
    est = res.event_study_effects
    e_att, e_se = 0.0, 0.0
    for x in aggs["event_study"]:
        row = est[est["event_time"] == x["e"]]
        assert len(row) == 1
        e_att = max(e_att, abs(float(row["estimate"].iloc[0]) - x["att"]))
        e_se = max(e_se, abs(float(row["se"].iloc[0]) / x["se"] - 1))
    return dict(
        library_call=("CallawaySantAnna(control_group='never_treated', base_period='universal', "
                      "estimation_method='reg').fit(df, 'lemp', 'countyreal', 'year', "
                      "'first.treat'" + (", survey_design=SurveyDesign(weights='w'))"
                                         if name == "b_weighted" else ")")),
        n_cells=n, max_abs_diff_att=d_att, max_rel_diff_se=d_se,
        simple_library=dict(att=float(res.overall_att), se=float(res.overall_se)),
        simple_abs_diff_att=abs(float(res.overall_att) - aggs["simple"]["att"]),
        simple_rel_diff_se=abs(float(res.overall_se) / aggs["simple"]["se"] - 1),
        event_study_max_abs_diff_att=e_att, event_study_max_rel_diff_se=e_se,
        event_study_note="e = -1 is CS's reference (0, se 0) and not a PT-Post cell here",
    )


# -------------------------------------------------------------------- diff-diff 3.13
V313_SCRIPT = r"""
import json, sys, warnings
import numpy as np, pandas as pd
import diff_diff as dd
df = pd.read_csv(sys.argv[1])
if sys.argv[3] == "c_single_cohort_2007":
    df = df[df["first.treat"].isin([0, 2007])]
out = {"version": dd.__version__, "module": dd.__file__, "numpy": np.__version__,
       "pandas": pd.__version__}
with warnings.catch_warnings(record=True) as wr:
    warnings.simplefilter("always")
    r = dd.EfficientDiD(pt_assumption=sys.argv[2]).fit(df, "lemp", "countyreal", "year",
                                                       "first.treat")
    es = r.aggregate("event_study")
out["warnings"] = [str(x.message) for x in wr]
out["omega_ridge"] = float(r.omega_ridge)
out["cells"] = [dict(g=int(g), t=int(t), att=float(v["effect"]), se=float(v["se"]),
                     omega=[float(x) for x in (r.efficient_weights or {}).get((g, t), [])],
                     cond=float((r.omega_condition_numbers or {}).get((g, t), float("nan"))))
                for (g, t), v in r.group_time_effects.items()]
out["simple"] = dict(att=float(r.overall_att), se=float(r.overall_se))
out["event_study"] = [dict(e=int(e), att=float(a), se=float(s))
                      for e, a, s in zip(es.event_time, es.att, es.se)]
print(json.dumps(out))
"""


def run_v313(pt, name):
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = subprocess.run([V313_PYTHON, "-c", V313_SCRIPT, MPDTA, pt, name], cwd=tmp,
                              env=env, capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert out["version"] == "3.13.0", out["version"]
    assert "/work/main" not in out["module"], out["module"]
    return out


def pairs_v313(P: Panel, g, t):
    """3.13's pair list: (inf, t') for every t' != 1 (duplicates kept), then (g', t') with
    t' != 1, t' < g'; the degenerate (g, t) self-pair dropped (its ridge path)."""
    pairs = [(INF, tp) for tp in P.periods if tp != P.p1]
    pairs += [(float(gp), tp) for gp in P.cohorts for tp in P.periods if tp != P.p1 and tp < gp]
    return [(gp, tp) for gp, tp in pairs if not (gp == g and tp == t)]


def replay_v313(P: Panel, g, t, pt, omit_cross=True, ridge=1e-6):
    """Our estimator with 3.13's Omega. Pieces of pair j: A = (g: t - 1),
    B_j = -(inf: t - t'_j), C_j = -(g'_j: t'_j - 1). 3.13's Omega has A.A, B.B, A.C (g' = g),
    C.C (same g'), but NOT B_j.C_k for g'_k = inf (the never-treated cross covariance)."""
    if pt == "post":
        b = g - 1
        pieces = [[("A", (1.0, float(g), t, b)), ("B", (-1.0, INF, t, b))]]
        labels = [["inf", b]]
    else:
        pieces, labels = [], []
        for gp, tp in pairs_v313(P, g, t):
            pieces.append([("A", (1.0, float(g), t, P.p1)), ("B", (-1.0, INF, t, tp)),
                           ("C", (-1.0, gp, tp, P.p1))])
            labels.append([label(gp), tp])
    J = len(pieces)
    ifs = [[(kind, pc[1], P.piece_if(pc[1], pc[2], pc[3])) for kind, pc in pcs] for pcs in pieces]
    yhat = np.array([sum(c * P.mean(h, a, b) for _, (c, h, a, b) in pcs) for pcs in pieces])
    coef = [[pc[0] for _, pc in pcs] for pcs in pieces]
    Omega = np.zeros((J, J))
    for j in range(J):
        for k in range(J):
            v = 0.0
            for p, (kp, hp, fp) in enumerate(ifs[j]):
                for q, (kq, hq, fq) in enumerate(ifs[k]):
                    if hp != hq:
                        continue
                    if omit_cross and not np.isfinite(hp) and {kp, kq} == {"B", "C"}:
                        continue
                    v += coef[j][p] * coef[k][q] * P.c[hp] * float(fp @ fq)
            Omega[j, k] = v
    cond = float(np.linalg.cond(Omega))
    if J == 1:
        omega = np.array([1.0])
    elif ridge > 0:
        x = np.linalg.solve(Omega + ridge * max(np.trace(Omega) / J, 0.0) * np.eye(J), np.ones(J))
        omega = x / x.sum()
    else:
        x = (np.linalg.pinv(Omega) @ np.ones(J) if cond > 1e12
             else np.linalg.solve(Omega, np.ones(J)))
        omega = x / x.sum()
    Psi = np.column_stack([sum(c * f for (_, _, f), c in zip(ifs[j], coef[j])) for j in range(J)])
    psi = Psi @ omega
    ss = float(psi @ psi)
    return dict(labels=labels, omega=omega, att=float(omega @ yhat), cond=cond, psi=psi,
                se_v313_convention=float(np.sqrt(ss)),
                se_our_convention=float(np.sqrt(P.n / (P.n - 1.0) * ss)))


def v313_section(P: Panel, name, pt, ours):
    v = run_v313(pt, name)
    ref = {(c["g"], c["t"]): c for c in ours}
    rows, extra, replay_cells = [], [], []
    for c in v["cells"]:
        if (c["g"], c["t"]) not in ref:  # 3.13 PT-Post reports (g, g-1) (= 0), not t = 2003
            extra.append(dict(g=c["g"], t=c["t"], att_v313=c["att"], se_v313=c["se"]))
            continue
        o = ref[(c["g"], c["t"])]
        rep = replay_v313(P, c["g"], c["t"], pt)
        dup = replay_v313(P, c["g"], c["t"], pt, omit_cross=False)  # full Omega, dup moments, ridge
        replay_cells.append(dict(g=c["g"], t=c["t"], e=c["t"] - c["g"], att=rep["att"],
                                 psi=rep["psi"]))
        row = dict(
            g=c["g"], t=c["t"], post=c["t"] >= c["g"],
            att_v313=c["att"], se_v313=c["se"], cond_v313=c["cond"],
            att_ours=o["att"], se_ours=o["se"],
            rel_diff_att=(c["att"] - o["att"]) / abs(o["att"]),
            abs_diff_att=c["att"] - o["att"],
            diff_att_in_se_units=(c["att"] - o["att"]) / o["se"],
            rel_diff_se=(c["se"] - o["se"]) / o["se"],
            replay_v313=dict(att=rep["att"], se_v313_convention=rep["se_v313_convention"],
                             se_our_convention=rep["se_our_convention"], cond=rep["cond"],
                             moments=rep["labels"]),
            replay_abs_diff_att=abs(rep["att"] - c["att"]),
            replay_rel_diff_se=abs(rep["se_v313_convention"] / c["se"] - 1),
            replay_max_abs_diff_omega=(float(np.abs(rep["omega"] - np.array(c["omega"])).max())
                                       if len(c["omega"]) == len(rep["omega"]) else None),
            full_omega_duplicates_ridge=dict(att=dup["att"], se=dup["se_our_convention"],
                                             abs_diff_att_vs_ours=abs(dup["att"] - o["att"]),
                                             rel_diff_se_vs_ours=abs(dup["se_our_convention"]
                                                                     / o["se"] - 1)),
        )
        rows.append(row)
    post = [r for r in rows if r["post"]]
    summary = dict(
        post_cells_rel_diff_att_abs_range=[min(abs(r["rel_diff_att"]) for r in post),
                                           max(abs(r["rel_diff_att"]) for r in post)],
        post_cells_rel_diff_se_range=[min(r["rel_diff_se"] for r in post),
                                      max(r["rel_diff_se"] for r in post)],
        all_cells_max_rel_diff_att=max(abs(r["rel_diff_att"]) for r in rows),
        replay_max_abs_diff_att=max(r["replay_abs_diff_att"] for r in rows),
        replay_max_rel_diff_se=max(r["replay_rel_diff_se"] for r in rows),
        replay_max_abs_diff_omega=max((r["replay_max_abs_diff_omega"] or 0.0) for r in rows),
        full_omega_duplicates_ridge_max_abs_diff_att=max(
            r["full_omega_duplicates_ridge"]["abs_diff_att_vs_ours"] for r in rows),
        post_cells_max_abs_diff_att=max(abs(r["abs_diff_att"]) for r in post),
        post_cells_max_abs_diff_att_in_se_units=max(abs(r["diff_att_in_se_units"]) for r in post),
        se_convention_factor=float(np.sqrt(P.n / (P.n - 1.0))),
    )
    # aggregations: ours vs 3.13, and 3.13 replayed (its cells, our aggregation code, its SE
    # convention = ours / sqrt(n/(n-1)))
    conv = np.sqrt(P.n / (P.n - 1.0))
    ours_aggs = OURS_AGGS[(name, pt)]
    post_idx = [k for k, x in enumerate(replay_cells) if x["t"] >= x["g"]]
    s_att, s_IF = aggregate(P, replay_cells, post_idx)
    agg = dict(simple=dict(
        att_v313=v["simple"]["att"], se_v313=v["simple"]["se"],
        att_ours=ours_aggs["simple"]["att"], se_ours=ours_aggs["simple"]["se"],
        rel_diff_att=((v["simple"]["att"] - ours_aggs["simple"]["att"])
                      / abs(ours_aggs["simple"]["att"])),
        rel_diff_se=v["simple"]["se"] / ours_aggs["simple"]["se"] - 1,
        replay_abs_diff_att=abs(s_att - v["simple"]["att"]),
        replay_rel_diff_se=abs(se_of(P, s_IF) / conv / v["simple"]["se"] - 1)))
    es_rows = []
    ours_es = {x["e"]: x for x in ours_aggs["event_study"]}
    for x in v["event_study"]:
        which = [k for k, y in enumerate(replay_cells) if y["e"] == x["e"]]
        row = dict(e=x["e"], att_v313=x["att"], se_v313=x["se"])
        if x["e"] in ours_es:
            o = ours_es[x["e"]]
            row.update(att_ours=o["att"], se_ours=o["se"], abs_diff_att=x["att"] - o["att"],
                       rel_diff_se=(x["se"] / o["se"] - 1) if x["se"] else None)
        if which and x["se"]:
            e_att, e_IF = aggregate(P, replay_cells, which)
            row.update(replay_abs_diff_att=abs(e_att - x["att"]),
                       replay_rel_diff_se=abs(se_of(P, e_IF) / conv / x["se"] - 1))
        es_rows.append(row)
    agg["event_study"] = es_rows
    return dict(meta={k: v[k] for k in ("version", "numpy", "pandas", "omega_ridge", "warnings")},
                call=f"EfficientDiD(pt_assumption='{pt}').fit(df, 'lemp', 'countyreal', 'year', "
                     "'first.treat'); r.aggregate('event_study')",
                cells=rows, cells_not_in_reference=extra,
                reference_cells_not_in_v313=[[g, t] for (g, t) in ref if (g, t) not in
                                             {(c["g"], c["t"]) for c in v["cells"]}],
                simple=v["simple"], event_study=v["event_study"], summary=summary,
                aggregations_compared=agg)


# --------------------------------------------------------------------------- main
def jsonable(x):
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    return x


def main():
    from importlib.metadata import version

    with open(MPDTA, "rb") as fh:
        md5 = hashlib.md5(fh.read()).hexdigest()
    old = None
    if os.path.exists(OUT):
        with open(OUT) as fh:
            old = json.load(fh)
    out = {
        "meta": {
            "script": "tests/parity/ports/edid_reference.py",
            "source": ("independent numpy implementation of Chen, Sant'Anna & Xie (2025) "
                       "arXiv 2506.17729, no covariates; formulas in the script docstring"),
            "numpy": version("numpy"), "scipy": version("scipy"), "pandas": version("pandas"),
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "mpdta_md5": md5,
            "data": dict(file="mpdta.csv", y="lemp", unit="countyreal", time="year",
                         first_treat="first.treat (0 = never treated -> group 'inf')",
                         periods="2003-2007, period 1 = 2003", anticipation=0),
            "cases": CASES,
            "weights": "case b: w_i = 1 + countyreal % 3 (unit level)",
            "moment_labels": ("[g', t'] = the pair (comparison cohort, its pre-period); "
                              "['inf', null] = the collapsed never-treated moment (PT-All); "
                              "PT-Post: ['inf', b] with b = g - 1"),
            "se": "sqrt(n/(n-1) * sum_i psi_i^2), psi on the sum scale (see docstring)",
            "omega_scale": ("Omega_jk = sum_h c_h sum_{i in h} psi_ij psi_ik, c_h = N_h/(N_h-1) "
                            "(Omega of the estimated moments, not n times it); cond is the "
                            "2-norm condition number (scale free)"),
            "aggregation": ("simple: post cells weighted by W_g; event_study: cells with "
                            "t - g = e, same weights; dynamic_overall: mean of ES(e), e >= 0; "
                            "SEs include aggte's wif (estimated cohort shares)"),
            "tolerances": TOLERANCES,
        },
        "cases": {},
        "checks": {},
    }
    panels, results = {}, {}
    for name, desc in CASES.items():
        P = load_case(name)
        panels[name] = P
        case = dict(description=desc, n_units=P.n, periods=P.periods,
                    groups={str(label(h)): dict(N=P.N[h], W=P.W[h]) for h in P.groups})
        for pt in ("all", "post"):
            cl, aggs = run_case(P, pt)
            results[(name, pt)] = (cl, aggs)
            OURS_AGGS[(name, pt)] = aggs
            case[pt] = dict(cells=public_cells(cl), aggregations=aggs,
                            max_cond=max(c["cond"] for c in cl))
        out["cases"][name] = case

    chk = out["checks"]
    chk["route2_closed_form"] = {
        "case_c_cell_2007_2007": closed_form_cell(panels["c_single_cohort_2007"],
                                                  results[("c_single_cohort_2007", "all")][0],
                                                  2007, 2007),
        "all_cells": {f"{name}/{pt}": check_route2(panels[name], results[(name, pt)][0])
                      for name in CASES for pt in ("all", "post")},
    }
    chk["gmm_bruteforce"] = {
        "method": ("theta minimising f(theta) = (yhat - theta 1)' Omega^-1 (yhat - theta 1), "
                   "compared with omega' yhat. brent: scipy.optimize.minimize_scalar("
                   "method='brent', bracket=(min yhat, max yhat), xtol=1e-14) on f; it can only "
                   "resolve theta to ~floor = sqrt(2 eps f / a), a = 1' Omega^-1 1 (about 5e-10 "
                   "here: f is flat to rounding within that distance), so its difference is "
                   "also given in units of floor. foc_root: scipy.optimize.brentq on the "
                   "central-difference derivative (f(th + 0.01) - f(th - 0.01)) / 0.02 (exact "
                   "for a quadratic up to rounding)"),
        "max_abs_diff_theta_vs_att": {f"{name}/{pt}": check_gmm(results[(name, pt)][0])
                                      for name in CASES for pt in ("all", "post")},
    }
    chk["collapse"] = [check_collapse(panels["a_unweighted"], 2004, 2004),
                       check_collapse(panels["a_unweighted"], 2007, 2005)]
    chk["cs_parity"] = {name: check_cs(panels[name], name, *results[(name, "post")])
                        for name in CASES}
    chk["cs_parity"]["scope"] = ("PT-Post cells (att, se), simple aggregation and event study "
                                 "vs the library's CallawaySantAnna")

    if os.path.exists(V313_PYTHON):
        v = {}
        for name, pt in (("a_unweighted", "all"), ("c_single_cohort_2007", "all"),
                         ("a_unweighted", "post")):
            v[f"{name}/{pt}"] = v313_section(panels[name], name, pt, results[(name, pt)][0])
        out["v3_13"] = v
    elif old is not None and "v3_13" in old:
        out["v3_13"] = old["v3_13"]
    if "v3_13" in out:
        out["v3_13_diagnosis"] = diagnosis(out["v3_13"])
    out["v3_13_notes"] = V313_NOTES
    with open(OUT, "w") as f:
        json.dump(jsonable(out), f, indent=1, sort_keys=True)
        f.write("\n")


def diagnosis(v):
    a, c, p = (v[k]["summary"] for k in ("a_unweighted/all", "c_single_cohort_2007/all",
                                           "a_unweighted/post"))
    sa = v["a_unweighted/all"]["aggregations_compared"]["simple"]
    return [
        (f"PT-All, case a: 3.13's post-treatment ATT(g,t) differ from the reference by "
         f"{100 * a['post_cells_rel_diff_att_abs_range'][0]:.2f}% to "
         f"{100 * a['post_cells_rel_diff_att_abs_range'][1]:.1f}% (relative; up to "
         f"{a['post_cells_max_abs_diff_att']:.4f} absolute, "
         f"{a['post_cells_max_abs_diff_att_in_se_units']:.2f} SE); simple ATT "
         f"{sa['att_v313']:.6f} vs {sa['att_ours']:.6f} ({100 * sa['rel_diff_att']:+.2f}%). "
         f"Case c (single cohort): {100 * c['post_cells_rel_diff_att_abs_range'][1]:.2f}%."),
        (f"Replaying 3.13's definitions (Omega without the never-treated cross covariance, "
         f"duplicate (inf, t') moments, ridge 1e-6, SE without n/(n-1)) reproduces every 3.13 "
         f"cell: max |dATT| {a['replay_max_abs_diff_att']:.1e}, max rel dSE "
         f"{a['replay_max_rel_diff_se']:.1e}, max |d omega| {a['replay_max_abs_diff_omega']:.1e}"
         f" (case a); aggregations too (see aggregations_compared)."),
        (f"With the full Omega but 3.13's duplicate moments and ridge the ATTs are within "
         f"{a['full_omega_duplicates_ridge_max_abs_diff_att']:.1e} of the reference: the "
         f"omitted term is the cause of the ATT differences; duplicates + ridge are not."),
        (f"SE: 3.13 omits n/(n-1) (factor {a['se_convention_factor']:.6f}); PT-Post SEs are "
         f"exactly that factor lower ({100 * p['post_cells_rel_diff_se_range'][0]:.4f}%), ATTs "
         f"equal; PT-All post-cell SEs differ by {100 * a['post_cells_rel_diff_se_range'][0]:+.3f}"
         f"% to {100 * a['post_cells_rel_diff_se_range'][1]:+.3f}% (convention + other weights)."),
        ("3.13 PT-Post reports (g, g-1) cells (0, se 0) and no t = period-1 cells, so its PT-Post "
         "event study at e = -3 is cohort 2007's cell only (no (2006, 2003))."),
    ]


V313_NOTES = {
    "definitions_read_from": ("diff_diff 3.13.0 efficient_did.py, efficient_did_weights.py "
                              "(facts only)"),
    "omega": ("3.13 builds Omega*_jk = (1/pi_g)Var(Y_t-Y_1|g) + (1/pi_inf)Cov(Y_t-Y_t'j, "
              "Y_t-Y_t'k|inf) - 1{g'j=g}(1/pi_g)Cov(Y_t-Y_1, Y_t'j-Y_1|g) - (same for k) + "
              "1{g'j=g'k}(1/pi_g'j)Cov(Y_t'j-Y_1, Y_t'k-Y_1|g'j), pi_h = N_h/n, ddof 1 (= n times "
              "our Omega) - it lacks -(1/pi_inf)[Cov(Y_t-Y_t'j, Y_t'k-Y_1|inf) 1{g'k=inf} + "
              "Cov(Y_t'j-Y_1, Y_t-Y_t'k|inf) 1{g'j=inf}]"),
    "moments": ("3.13 keeps every (inf, t') for t' != period 1 (4 identical moments in mpdta) "
                "and, on its default ridge path, drops the degenerate (g, t) self-pair"),
    "weights": ("(Omega + 1e-6 * max(trace/H, 0) I) x = 1, omega = x / sum(x) "
                "(omega_ridge = 1e-6 default)"),
    "se": ("3.13: sqrt(mean(EIF^2)/n) with EIF = n psi, i.e. sqrt(sum psi^2) - no n/(n-1) "
           "factor; its EIF itself carries both never-treated pieces, so its SE is the SE of "
           "its own (sub-optimally) weighted estimator"),
    "replay": ("replay_v313 = our code with 3.13's Omega, pair list, ridge and SE convention; "
               "full_omega_duplicates_ridge = our full Omega but 3.13's duplicate pairs + ridge "
               "(isolates the duplicates/ridge from the omitted term)"),
}


if __name__ == "__main__":
    main()
