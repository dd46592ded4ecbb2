"""Reference values of Wooldridge's extended TWFE (ETWFE) from the Python ``etwfe``.

Source: the PyPI package ``etwfe`` 0.1.4 (Armand Kapllani's Python port of Grant
McDermott's R package ``etwfe``), fitted by pyfixest 0.60.0, with ``patsy`` 1.0.3
(needed by ``emfx`` but not declared as a dependency). Generated with Python 3.11,
numpy 2.4, pandas 3.1, scipy 1.17 (exact versions in the fixture's ``meta``). The
numbers were also checked against the R package's own regression tests (see
``r_crosscheck`` below).

API used (``from etwfe import etwfe``; ``etwfe()`` builds an ``ETWFE`` and fits it):

    m = etwfe("lemp ~ 0", tvar="year", gvar="first_treat", data=df,
              ivar=None, xvar=None, cgroup="notyet" | "never",
              family=None | "logit" | "poisson", vcov=None | {"CRV1": "countyreal"},
              **fit_kwargs)                       # passed on to pf.feols / fepois / feglm
    m.emfx(type="simple" | "group" | "calendar" | "event", post_only=True,
           predict="response" | "link", by_xvar="auto", window=None)

``emfx`` returns a DataFrame with ``estimate``, ``std.error``, ``conf.low``,
``conf.high`` and the label column (``_Dtreat`` = 1.0, ``first_treat``, ``year``,
``event``). etwfe has no per-cell ATT(g,t) table; ``att_gt`` here is made with the
same internal routine ``emfx`` uses (``m._compute_slopes_and_jacobians`` on the rows
``emfx`` averages, grouped by (g,t)), so it is exactly what ``emfx`` would give for
one cell; for OLS without covariates it equals the regression coefficient of the
cell (asserted).

Conventions of etwfe 0.1.4 (what the numbers mean):

* Regression: ``y ~ _Dtreat:C(g):C(t) [+ _Dtreat:C(g):C(t):x_dm + x + C(g):x +
  C(t):x] | FE``. ``FE`` = ``gvar + tvar`` (COHORT and time fixed effects, the
  default and R etwfe's default) or ``ivar + tvar`` (unit and time) when ``ivar``
  is given. With a balanced panel both give the same ATTs (case ``mpdta_notyet_unitfe``);
  only the SE small-sample factor differs. Nonlinear families force ``ivar=None`` and
  ``fe="none"``: cohort and time dummies ``C(g) + C(t)`` plus an intercept, no
  absorbed effects (pyfixest ``fepois`` / ``feglm``).
* Reference levels: ``tref`` = first period; ``gref`` = the smallest cohort value
  ``> max(t)``, else ``< min(t)`` (never treated coded 0, as in mpdta), else (not-yet
  only) the last cohort. Never-treated must be coded 0 (or a value beyond the last
  period): NaN crashes (``IntCastingNaNError``); the gvar column name must be a
  valid identifier (``first.treat`` crashes in formulaic), hence the rename.
* ``cgroup="notyet"`` (default): ``_Dtreat = 1{t >= g, g != gref}``, one
  coefficient per post-treatment cell (g, t >= g); every untreated row (never-,
  not-yet-treated, pre-periods) is a control. If ``gref`` is a real (last) cohort,
  rows with ``t >= gref`` are dropped.
* ``cgroup="never"``: ``_Dtreat = 1{t != g - 1}`` for treated cohorts, so every
  cell of a treated cohort except (g, g-1) gets its own coefficient, pre-periods
  included (also t = tref: the interaction is fully coded, only the cohort FE's
  reference is dropped); only never-treated rows and each cohort's g-1 row are
  controls. ``emfx`` simple/group/calendar use post cells t >= g only; ``event``
  with the default ``post_only=True`` STILL returns the pre-period leads (e < -1),
  ``post_only=False`` adds e = -1 as 0 with SE 0 (R etwfe instead gives zeros with
  NA SEs for the leads under ``cgroup="notyet"`` and an e = -1 row with NA SE).
* Covariates: time-constant controls go in the formula (``lemp ~ lpop``, R
  etwfe's convention); they are demeaned by cohort (over all rows, ``x - mean_g(x)``)
  and interacted with every treated cell; ``x``, ``C(g):x``, ``C(t):x`` are added.
  ``xvar`` is NOT a control: it asks for effect heterogeneity along ``xvar``
  (demeaned within treated cohorts; the never-treated keep the raw value) and adds
  only ``_Dtreat:C(g):C(t):x_dm`` and ``1{t = s} * x_dm`` terms - no ``x`` nor
  ``C(g):x`` level terms, so with cohort FE a continuous ``xvar`` that is not also
  in the formula leaves its level effect out of the model (the ATTs of case
  ``mpdta_notyet_xvar_lpop`` are about 1.5 log points: recorded as what etwfe
  does, not as a sensible estimate). ``emfx(by_xvar="auto")`` then splits by every
  distinct xvar value (500 rows for lpop); recorded with ``by_xvar=False``.
* Effects and aggregation: ``emfx`` evaluates, for every treated row i in its
  sample (notyet: ``_Dtreat == 1``; never: ``_Dtreat == 1`` and also ``t >= g``
  except for ``event``), ``s_i = h(X1_i b) - h(X0_i b)`` where ``X1`` / ``X0`` are
  the design rows with ``_Dtreat`` set to 1 / 0 (so every treatment interaction,
  covariate ones too, switched on/off) and ``h`` is the inverse link (identity for
  OLS or ``predict="link"``; ``exp`` for Poisson; the logistic cdf for logit).
  Every aggregate (simple; by g; by t; by e = t - g; and ``att_gt`` by (g,t)) is the
  plain mean of ``s_i`` over its rows, i.e. cells weighted by their row counts
  ``n_gt`` (recorded; checked to 1e-12). For nonlinear models that is the average
  structural function difference on the treated (Wooldridge 2023):
  ``ATT(g,t) = mean_{i in (g,t)} [G(X1_i b) - G(X0_i b)]``; with no covariates it
  is constant within a cell.
* Standard errors: delta method with the fitted model's vcov ``V``:
  ``J_i = h'(X1_i b) X1_i - h'(X0_i b) X0_i``, ``jbar`` = mean of ``J_i`` over the
  rows, ``se = sqrt(jbar' V jbar)``; CI = estimate -/+ 1.96 se (normal). Nothing
  is re-estimated in ``emfx`` (its ``vcov=`` argument only matters as ``False``).
* vcov: etwfe's default is ``"hetero"`` (pyfixest HC1, ``N / (N - df_k)``), NOT R
  etwfe's fixest default (clustered by the first fixed effect, i.e. by cohort
  ``gvar`` without ``ivar``). With cohort FE the HC1 SEs are ~10x the clustered
  ones on mpdta (simple ATT: 0.148 vs 0.0133). Cluster by unit with
  ``vcov={"CRV1": "countyreal"}``: ``G/(G-1) * (N-1)/(N-df_k)``, pyfixest's default
  ``ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min")``; ``df_k`` counts
  the cell coefficients plus the absorbed effects (cohort FE: ``k + (G_coh - 1) +
  (T - 1) + 1`` = 15 on mpdta; unit FE nested in the cluster: ``k + T`` = 12). The
  factor actually applied is recorded as ``vcov.ssc``. ``vcov_variants`` holds the
  clustered (main) and the default results of each case.
* GLM fits here pass ``iwls_tol=1e-12, iwls_maxiter=200`` (pyfixest's default
  1e-8 moves the mpdta Poisson SEs in the 7th digit).

Data: ``mpdta`` is R ``did``'s mpdta (``../shared/data/mpdta.csv`` beside the
repository; md5 in the fixture) with ``first.treat`` renamed ``first_treat``
(``emp = exp(lemp)`` for the Poisson cross-check). The simulated panel (seed and
parameters in ``SIM``) is written to ``tests/parity/fixtures/etwfe_sim_panel.csv``
(unit, time, first_treat, y_bin, y_count; 400 units x 6 periods, cohorts 3, 4, 5
and never treated = 0), so the test needs no RNG agreement.

Covariate cases with unit effects (``ivar="countyreal"``, what WooldridgeDiD fits):
``lemp ~ lpop`` (time-constant: pyfixest drops ``lpop`` and ``C(g):lpop`` as absorbed by
the unit effects, keeps ``C(t):lpop``), ``lemp ~ xtv`` with a time-varying control ``xtv``
built from integers by ``add_columns`` (not-yet and never-treated controls), and the same
weighted (``fit_kwargs={"weights": "w"}``, ``w`` constant within county). etwfe demeans a
control within cohort without the weights and its ``emfx`` averages the treated rows
without the weights too; ``weighted_emfx`` records, from the weighted fit, emfx's own
slopes and jacobians averaged with the weights (the ATT of the weighted population).

``r_crosscheck``: values of R etwfe's ``inst/tinytest/test_emfx.R`` (models
``lemp ~ lpop`` / ``cgroup="never"`` / ``emp ~ lpop`` Poisson, all ``vcov =
~countyreal``), stored with the largest absolute differences from this port.

Run from the repository root with a scratch venv outside the repository (and not
this checkout on ``sys.path``, hence ``-P``):

    python -m venv /work/scratch/venv-etwfe
    /work/scratch/venv-etwfe/bin/pip install etwfe==0.1.4 patsy
    /work/scratch/venv-etwfe/bin/python -P tests/parity/ports/etwfe_reference.py

It writes ``tests/parity/fixtures/etwfe_sim_panel.csv`` and
``tests/parity/fixtures/etwfe_reference.json`` (about 5 s).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/etwfe_reference.json"
SIM_CSV = "tests/parity/fixtures/etwfe_sim_panel.csv"
# the team's shared folder sits beside the repository
MPDTA = str(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mpdta.csv")
GLM_KW = {"iwls_tol": 1e-12, "iwls_maxiter": 200}
AGG_TYPES = ["simple", "group", "calendar", "event"]
LABEL = {"simple": "_Dtreat", "group": "first_treat", "calendar": None, "event": "event"}

# Simulated panel: index = a_i + lambda_t + tau(g, e) * 1{t >= g}, e = t - g;
# a_i = cohort_shift[g] + N(0, unit_sd^2); lambda_t = trend * (t - 1) + 0.2 sin(t);
# tau(g, e) = tau0 + tau_slope * e + tau_cohort * (g - 3);
# y_bin ~ Bernoulli(logistic(bin_const + index)), y_count ~ Poisson(exp(count_const + index)).
SIM = dict(seed=20240611, periods=[1, 2, 3, 4, 5, 6], cohorts={0: 100, 3: 100, 4: 100, 5: 100},
           cohort_shift={0: 0.0, 3: 0.2, 4: -0.1, 5: 0.1}, unit_sd=0.5, trend=0.1,
           tau0=0.4, tau_slope=0.1, tau_cohort=-0.1, bin_const=-0.3, count_const=0.3)

# R etwfe inst/tinytest/test_emfx.R (grantmcdermott/etwfe, commit 10f502c0), vcov = ~countyreal
R_KNOWN = {
    "source": "R etwfe inst/tinytest/test_emfx.R (commit 10f502c078485a38af377c13c9b9f78e37cedc48)",
    "m3 = etwfe(lemp ~ lpop, tvar=year, gvar=first.treat, data=mpdta, vcov=~countyreal)": {
        "simple": {"estimate": [-0.0506270331228907], "std.error": [0.0124972546529842]},
        "calendar": {"label": [2004, 2005, 2006, 2007],
                     "estimate": [-0.0212480022225509, -0.0818499992698648,
                                  -0.0442655912990223, -0.0524323095862384],
                     "std.error": [0.0217240109737018, 0.0273693827216135,
                                   0.0173733625406716, 0.015015825012757]},
        "group": {"label": [2004, 2006, 2007],
                  "estimate": [-0.0876269608795944, -0.0212783329358987, -0.0459545277368072],
                  "std.error": [0.0230474099815232, 0.0185912208081438, 0.0179714452432232]},
        "event": {"label": [0, 1, 2, 3],
                  "estimate": [-0.0332122037837542, -0.0573456479257483,
                               -0.137870386660852, -0.10953945536511],
                  "std.error": [0.0133659635774059, 0.0171496442892364,
                                0.0307883597041053, 0.0323152785480507]},
    },
    "m3n = m3 with cgroup='never'; emfx(m3n, type='event', window=c(2, 3))": {
        "event": {"label": [-2, -1, 0, 1, 2, 3],
                  "estimate": [0.0234649547538384, 0.0, -0.0211467366918433,
                               -0.0533558653415615, -0.141080104628566, -0.107544274673025],
                  "std.error": [0.0145314904277398, None, 0.0113935648352396,
                                0.0157744281621729, 0.0322891808795742, 0.0329231688783015]},
    },
    "m3p = etwfe(emp ~ lpop, ..., family='poisson'), emp = exp(lemp)": {
        "event": {"label": [0, 1, 2, 3],
                  "estimate": [-25.3497484355494, 1.09175116997388,
                               -75.1246321552693, -101.823979344829],
                  "std.error": [15.8862762958862, 40.2952222352926,
                                23.1541376499351, 27.0877431076141]},
        "event_link": {"label": [0, 1, 2, 3],
                       "estimate": [-0.0325653634930092, -0.0675071046997911,
                                    -0.132971344933511, -0.117022779216096],
                       "std.error": [0.0128503810792558, 0.0183966910997271,
                                     0.0237253182969748, 0.0225005664705109]},
    },
}

CLUSTER_MPDTA = {"CRV1": "countyreal"}
CLUSTER_SIM = {"CRV1": "unit"}
CASES = {
    # 1. not-yet-treated controls (default), cohort + year FE
    "mpdta_notyet": dict(data="mpdta", fml="lemp ~ 0", tvar="year", gvar="first_treat"),
    # 1b. the same with unit (county) + year FE
    "mpdta_notyet_unitfe": dict(data="mpdta", fml="lemp ~ 0", tvar="year", gvar="first_treat",
                                ivar="countyreal"),
    # 2. never-treated controls
    "mpdta_never": dict(data="mpdta", fml="lemp ~ 0", tvar="year", gvar="first_treat",
                        cgroup="never"),
    # 3. covariate lpop as etwfe's (time-constant) control: R etwfe's m3
    "mpdta_notyet_lpop": dict(data="mpdta", fml="lemp ~ lpop", tvar="year", gvar="first_treat"),
    # 3b. lpop as xvar (heterogeneity variable, not a control): recorded, see docstring
    "mpdta_notyet_xvar_lpop": dict(data="mpdta", fml="lemp ~ 0", tvar="year", gvar="first_treat",
                                   xvar="lpop"),
    # 3c. covariates with unit fixed effects (our specification): time-constant lpop, a
    # time-varying control xtv (both sides build it from integers, see add_columns), the
    # latter also weighted (pyfixest weights=, unit-constant w) and with never-treated controls
    "mpdta_notyet_lpop_unitfe": dict(data="mpdta", fml="lemp ~ lpop", tvar="year",
                                     gvar="first_treat", ivar="countyreal"),
    "mpdta_notyet_xtv_unitfe": dict(data="mpdta", fml="lemp ~ xtv", tvar="year",
                                    gvar="first_treat", ivar="countyreal"),
    "mpdta_notyet_xtv_weighted": dict(data="mpdta", fml="lemp ~ xtv", tvar="year",
                                      gvar="first_treat", ivar="countyreal",
                                      fit_kwargs={"weights": "w"}),
    "mpdta_never_xtv_unitfe": dict(data="mpdta", fml="lemp ~ xtv", tvar="year",
                                   gvar="first_treat", ivar="countyreal", cgroup="never"),
    # 4. nonlinear, simulated panel
    "sim_logit": dict(data="sim", fml="y_bin ~ 0", tvar="time", gvar="first_treat",
                      family="logit"),
    "sim_poisson": dict(data="sim", fml="y_count ~ 0", tvar="time", gvar="first_treat",
                        family="poisson"),
    # Poisson on mpdta with a control: R etwfe's m3p
    "mpdta_poisson_emp_lpop": dict(data="mpdta", fml="emp ~ lpop", tvar="year",
                                   gvar="first_treat", family="poisson"),
    # 5. nonlinear with controls on the simulated panel (x time-varying, xc unit-constant;
    # both built from integers by add_sim_columns, not stored in the CSV)
    "sim_logit_x": dict(data="sim", fml="y_bin ~ x", tvar="time", gvar="first_treat",
                        family="logit"),
    "sim_poisson_x_xc": dict(data="sim", fml="y_count ~ x + xc", tvar="time",
                             gvar="first_treat", family="poisson"),
    "sim_logit_never_x": dict(data="sim", fml="y_bin ~ x", tvar="time", gvar="first_treat",
                              family="logit", cgroup="never"),
    # 6. xvar (effect heterogeneity) with unit effects, a discrete xd = county % 3 (sim:
    # unit % 3); emfx also by_xvar=True (recorded as aggregations["<type>_by_xvar"])
    "mpdta_notyet_xvar_xd_unitfe": dict(data="mpdta", fml="lemp ~ 0", tvar="year",
                                        gvar="first_treat", ivar="countyreal", xvar="xd"),
    "mpdta_never_xvar_xd_unitfe": dict(data="mpdta", fml="lemp ~ 0", tvar="year",
                                       gvar="first_treat", ivar="countyreal", xvar="xd",
                                       cgroup="never"),
    "mpdta_notyet_xtv_xvar_xd_unitfe": dict(data="mpdta", fml="lemp ~ xtv", tvar="year",
                                            gvar="first_treat", ivar="countyreal", xvar="xd"),
    "sim_poisson_xvar_xd": dict(data="sim", fml="y_count ~ 0", tvar="time",
                                gvar="first_treat", family="poisson", xvar="xd"),
}


def num(x):
    x = float(x)
    return None if np.isnan(x) else x


def make_sim() -> pd.DataFrame:
    rng = np.random.default_rng(SIM["seed"])
    rows = []
    unit = 0
    for g, n in SIM["cohorts"].items():
        for _ in range(n):
            unit += 1
            a = SIM["cohort_shift"][g] + rng.normal(0.0, SIM["unit_sd"])
            for t in SIM["periods"]:
                lam = SIM["trend"] * (t - 1) + 0.2 * np.sin(t)
                tau = (SIM["tau0"] + SIM["tau_slope"] * (t - g) + SIM["tau_cohort"] * (g - 3)
                       if g > 0 and t >= g else 0.0)
                idx = a + lam + tau
                y_bin = int(rng.random() < 1.0 / (1.0 + np.exp(-(SIM["bin_const"] + idx))))
                y_count = int(rng.poisson(np.exp(SIM["count_const"] + idx)))
                rows.append((unit, t, g, y_bin, y_count))
    return pd.DataFrame(rows, columns=["unit", "time", "first_treat", "y_bin", "y_count"])


def add_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The covariate cases' columns, from integers only (the test rebuilds them exactly):
    a time-varying control ``xtv`` and a unit-constant weight ``w``."""
    county, year = df["countyreal"].astype(int), df["year"].astype(int)
    df["xtv"] = df["lpop"] + 0.05 * ((county * 7 + year * 3) % 11 - 5)
    df["w"] = 1.0 + (county % 5) / 4.0
    return df


def with_xd(df: pd.DataFrame) -> pd.DataFrame:
    """mpdta with the xvar cases' discrete ``xd = county % 3`` (a separate frame: an extra
    column moves pyfixest's other fits in the last bit)."""
    return df.assign(xd=(df["countyreal"].astype(int) % 3).astype(float))


def add_sim_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The simulated panel's covariates, from integers only (the test rebuilds them): a
    time-varying ``x``, a unit-constant ``xc`` and a discrete ``xd``."""
    unit, tt = df["unit"].astype(int), df["time"].astype(int)
    df["x"] = ((unit * 7 + tt * 3) % 11 - 5) / 10.0
    df["xc"] = (unit % 7) / 3.0 - 1.0
    df["xd"] = (unit % 3).astype(float)
    return df


def load_mpdta() -> pd.DataFrame:
    df = pd.read_csv(MPDTA).rename(columns={"first.treat": "first_treat"})
    df["emp"] = np.exp(df["lemp"])
    return add_columns(df)


def emfx_rows(m) -> pd.DataFrame:
    """The rows emfx averages for simple/group/calendar (see etwfe's emfx)."""
    df = m._fit_data
    df = df[(df["_g"] != m.gref) & (df["_Dtreat"] == 1.0)]
    return df


def att_gt(m, predict="response"):
    """Per-(g,t) effects, exactly as emfx would compute one cell (etwfe internals)."""
    df = emfx_rows(m).copy()
    slopes, jac, _ = m._compute_slopes_and_jacobians(df, predict=predict)
    V = m.model_._vcov
    out = {"g": [], "t": [], "event": [], "n": [], "estimate": [], "std.error": []}
    keys = list(zip(df["_g"].astype(int), df["_t"].astype(int)))
    for g, t in sorted(set(keys)):
        mask = (df["_g"].astype(int).values == g) & (df["_t"].astype(int).values == t)
        jbar = jac[mask].mean(axis=0)
        out["g"].append(int(g))
        out["t"].append(int(t))
        out["event"].append(int(t - g))
        out["n"].append(int(mask.sum()))
        out["estimate"].append(float(slopes[mask].mean()))
        out["std.error"].append(float(np.sqrt(jbar @ V @ jbar)))
    return out


def weighted_emfx(m, wcol) -> dict:
    """emfx's estimator with the rows weighted by ``wcol`` (etwfe's emfx averages the rows
    unweighted even when the regression is weighted): per cell and per aggregate,
    est = sum w_i s_i / sum w_i and se = sqrt(jbar' V jbar), jbar the w-weighted mean of
    the rows' jacobians; etwfe's own slope/jacobian routine (not-yet-treated cases)."""
    df = emfx_rows(m).copy()
    slopes, jac, _ = m._compute_slopes_and_jacobians(df)
    V = m.model_._vcov
    w = df[wcol].to_numpy(dtype=float)
    g, t = df["_g"].astype(int).to_numpy(), df["_t"].astype(int).to_numpy()

    def one(mask):
        jbar = (jac[mask] * w[mask, None]).sum(axis=0) / w[mask].sum()
        return float(np.average(slopes[mask], weights=w[mask])), float(np.sqrt(jbar @ V @ jbar))

    out = {"att_gt": {"g": [], "t": [], "w": [], "estimate": [], "std.error": []}}
    for a, b in sorted(set(zip(g, t))):
        est, se = one((g == a) & (t == b))
        cell = out["att_gt"]
        cell["g"].append(int(a))
        cell["t"].append(int(b))
        cell["w"].append(float(w[(g == a) & (t == b)].sum()))
        cell["estimate"].append(est)
        cell["std.error"].append(se)
    for typ, key in [("simple", None), ("group", g), ("calendar", t), ("event", t - g)]:
        labels = ["ATT"] if key is None else sorted(set(key.tolist()))
        rows = {"label": [], "estimate": [], "std.error": []}
        for lab in labels:
            est, se = one(np.ones(g.size, bool) if key is None else key == lab)
            rows["label"].append(lab if key is None else int(lab))
            rows["estimate"].append(est)
            rows["std.error"].append(se)
        out[typ] = rows
    return out


def agg_table(tab: pd.DataFrame, label_col) -> dict:
    d = {"label": [], "estimate": [], "std.error": [], "conf.low": [], "conf.high": []}
    for _, r in tab.iterrows():
        d["label"].append(int(r[label_col]) if label_col != "_Dtreat" else "ATT")
        for c in ["estimate", "std.error", "conf.low", "conf.high"]:
            d[c].append(num(r[c]))
    return d


def aggregations(m, spec, predict="response") -> dict:
    kw = {"predict": predict}
    if spec.get("xvar"):
        kw["by_xvar"] = False
    out = {}
    for typ in AGG_TYPES:
        label = LABEL[typ] or m.tvar
        out[typ] = agg_table(m.emfx(type=typ, **kw), label)
    if spec.get("xvar") == "xd":  # discrete: the effects by its levels too
        for typ in AGG_TYPES:
            tab = m.emfx(type=typ, predict=predict, by_xvar=True)
            d = agg_table(tab, LABEL[typ] or m.tvar)
            d[spec["xvar"]] = [float(v) for v in tab[spec["xvar"]]]
            out[f"{typ}_by_xvar"] = d
    if m.cgroup == "never":
        out["event_post_only_false"] = agg_table(m.emfx(type="event", post_only=False, **kw),
                                                 "event")
    return out


def check_weights(cells, aggs, cgroup):
    """Each aggregate is the n_gt-weighted mean of the cells (simple/group/calendar on post
    cells)."""
    c = pd.DataFrame(cells)
    post = c[c["t"] >= c["g"]]
    worst = 0.0

    def wmean(sub):
        return float(np.sum(sub["n"] * sub["estimate"]) / np.sum(sub["n"]))

    worst = max(worst, abs(wmean(post) - aggs["simple"]["estimate"][0]))
    for key, col, src in [("group", "g", post), ("calendar", "t", post), ("event", "event", c)]:
        for lab, est in zip(aggs[key]["label"], aggs[key]["estimate"]):
            worst = max(worst, abs(wmean(src[src[col] == lab]) - est))
    assert worst < 1e-12, worst
    return worst


def coefficients(m) -> dict:
    pat = re.compile(r"^_Dtreat:C\(__etwfe_gcat\)\[(\d+)\]:C\(__etwfe_tcat\)\[(\d+)\](?::(.+))?$")
    out = {"name": [], "g": [], "t": [], "interacted_with": [], "estimate": [], "std.error": []}
    for name, b, se in zip(m.model_.coef().index, m.model_.coef().values, m.model_.se().values):
        mt = pat.match(name)
        out["name"].append(name)
        out["g"].append(int(mt.group(1)) if mt else None)
        out["t"].append(int(mt.group(2)) if mt else None)
        out["interacted_with"].append(mt.group(3) if mt else None)
        out["estimate"].append(float(b))
        out["std.error"].append(float(se))
    return out


def vcov_info(m) -> dict:
    M = m.model_
    return {"requested": m.vcov if m.vcov else None, "used": M._vcov_type_detail,
            "ssc_settings": {k: (v if isinstance(v, (bool, str)) else str(v))
                             for k, v in M._ssc_dict.items()},
            "ssc": float(np.ravel(M._ssc)[0]), "df_k": int(M._df_k),
            "n_clusters": int(M._G[0]) if M._G else None}


def check_design(m):
    """emfx rebuilds the design with patsy: every fitted coefficient must have its column,
    and for the no-FE (GLM) fits X b must reproduce the fitted linear predictor."""
    import patsy

    _, X = patsy.dmatrices(m._rhs_formula_only(), m._fit_data, return_type="dataframe")
    missing = [c for c in m.model_.coef().index if c not in X.columns]
    assert not missing, missing
    if m.fe == "none":
        eta = X[m.model_.coef().index].to_numpy() @ m.model_.coef().values
        fitted = np.asarray(m.model_._Y_hat_link).ravel()
        assert np.max(np.abs(eta - fitted)) < 1e-8


def fit(spec, data, vcov):
    from etwfe import etwfe

    kw = {k: spec[k] for k in ["ivar", "xvar", "cgroup", "family"] if k in spec}
    fit_kw = dict(GLM_KW) if spec.get("family") else {}
    fit_kw.update(spec.get("fit_kwargs", {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return etwfe(spec["fml"], tvar=spec["tvar"], gvar=spec["gvar"], data=data, vcov=vcov,
                     **kw, **fit_kw)


def run_case(name, spec, data):
    main_vcov = CLUSTER_MPDTA if spec["data"] == "mpdta" else CLUSTER_SIM
    case = {"settings": {**{k: v for k, v in spec.items()},
                         "ivar": spec.get("ivar"), "xvar": spec.get("xvar"),
                         "cgroup": spec.get("cgroup", "notyet"), "family": spec.get("family"),
                         "fit_kwargs": {**(GLM_KW if spec.get("family") else {}),
                                        **spec.get("fit_kwargs", {})}}}
    case["vcov_variants"] = {}
    t0 = time.perf_counter()
    for vname, vcov in [("cluster_unit", main_vcov), ("default", None)]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = fit(spec, data, vcov)
                check_design(m)
                res = {"vcov": vcov_info(m), "coefficients": coefficients(m),
                       "att_gt": att_gt(m), "aggregations": aggregations(m, spec)}
                res["max_abs_agg_minus_weighted_cells"] = check_weights(
                    res["att_gt"], res["aggregations"], m.cgroup)
                if spec.get("fit_kwargs", {}).get("weights"):
                    res["weighted_emfx"] = weighted_emfx(m, spec["fit_kwargs"]["weights"])
                if spec.get("family"):
                    res["att_gt_link"] = att_gt(m, predict="link")
                    res["aggregations_link"] = aggregations(m, spec, predict="link")
                if not spec.get("family") and not spec.get("xvar") and spec["fml"].endswith("~ 0"):
                    c, co = res["att_gt"], res["coefficients"]
                    lookup = {(g, t): (b, s) for g, t, b, s in
                              zip(co["g"], co["t"], co["estimate"], co["std.error"])}
                    for g, t, b, s in zip(c["g"], c["t"], c["estimate"], c["std.error"]):
                        assert abs(lookup[(g, t)][0] - b) < 1e-12
                        assert abs(lookup[(g, t)][1] - s) < 1e-12
        except Exception as exc:  # recorded, not raised
            res = {"error": f"{type(exc).__name__}: {exc}"}
            m = None
        case["vcov_variants"][vname] = res
    if m is not None:
        case["settings"].update(formula=m.formula_, gref=int(m.gref), tref=int(m.tref),
                                fe=(m.ivar or m.gvar) + " + " + m.tvar if m.fe != "none"
                                else "none (C(g) + C(t) dummies + intercept)")
        case["n_obs"] = int(len(m._fit_data))
        case["n_obs_treated_cells"] = int((m._fit_data["_Dtreat"] == 1).sum())
    seconds = time.perf_counter() - t0
    print(f"{name}: {seconds:.2f} s", file=sys.stderr)
    return case


def maxdiff(a, b):
    d = [abs(x - y) for x, y in zip(a, b) if x is not None and y is not None]
    return max(d) if d else None


def r_crosscheck(mp):
    out = {"source": R_KNOWN["source"], "tolerance_in_R_tests": 5e-4, "max_abs_diff": {}}
    keys = list(R_KNOWN)[1:]
    # m3
    m = fit({"fml": "lemp ~ lpop", "tvar": "year", "gvar": "first_treat"}, mp, CLUSTER_MPDTA)
    for typ in AGG_TYPES:
        ours = agg_table(m.emfx(type=typ), LABEL[typ] or "year")
        ref = R_KNOWN[keys[0]][typ]
        if "label" in ref:
            assert ours["label"] == ref["label"]
        out["max_abs_diff"][f"m3.{typ}"] = {c: maxdiff(ours[c], ref[c])
                                            for c in ["estimate", "std.error"]}
    # m3n, window (2, 3): etwfe has no e = -1 row (R: 0 with NA SE)
    m = fit({"fml": "lemp ~ lpop", "tvar": "year", "gvar": "first_treat", "cgroup": "never"},
            mp, CLUSTER_MPDTA)
    ours = agg_table(m.emfx(type="event", window=(2, 3)), "event")
    ref = R_KNOWN[keys[1]]["event"]
    keep = [i for i, e in enumerate(ref["label"]) if e != -1]
    assert ours["label"] == [ref["label"][i] for i in keep]
    out["m3n_event_window_python"] = ours
    out["max_abs_diff"]["m3n.event_window"] = {
        c: maxdiff(ours[c], [ref[c][i] for i in keep]) for c in ["estimate", "std.error"]}
    # m3p
    m = fit({"fml": "emp ~ lpop", "tvar": "year", "gvar": "first_treat", "family": "poisson"},
            mp, CLUSTER_MPDTA)
    for key, pred in [("event", "response"), ("event_link", "link")]:
        ours = agg_table(m.emfx(type="event", predict=pred), "event")
        ref = R_KNOWN[keys[2]][key]
        assert ours["label"] == ref["label"]
        out["max_abs_diff"][f"m3p.{key}"] = {c: maxdiff(ours[c], ref[c])
                                             for c in ["estimate", "std.error"]}
    out["r_values"] = {k: R_KNOWN[k] for k in keys}
    return out


def main():
    from importlib.metadata import version

    t_start = time.perf_counter()
    sim = make_sim()
    sim.to_csv(SIM_CSV, index=False)
    sim = add_sim_columns(sim)
    mp = load_mpdta()
    with open(MPDTA, "rb") as fh:
        md5 = hashlib.md5(fh.read()).hexdigest()
    with open(SIM_CSV, "rb") as fh:
        sim_md5 = hashlib.md5(fh.read()).hexdigest()
    out = {
        "meta": {
            "script": "tests/parity/ports/etwfe_reference.py",
            "source": (f"etwfe {version('etwfe')} (PyPI; Python port of R etwfe) on pyfixest "
                       f"{version('pyfixest')}, patsy {version('patsy')}, formulaic "
                       f"{version('formulaic')}"),
            "numpy": version("numpy"), "pandas": version("pandas"), "scipy": version("scipy"),
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "call": ("etwfe(fml, tvar=, gvar=, data=, ivar=, xvar=, cgroup=, family=, vcov=, "
                     "**fit_kwargs); m.emfx(type=, predict=, post_only=, by_xvar=False if xvar)"),
            "fixed_effects": ("gvar + tvar (cohort + time) by default; ivar + tvar if ivar given; "
                              "GLM: none (C(g) + C(t) dummies with intercept)"),
            "default_vcov": ("'hetero' = pyfixest HC1 (N/(N-df_k)); R etwfe's default is fixest's "
                             "(cluster by first FE). Main results: CRV1 by unit"),
            "aggregation": ("plain mean over treated rows of h(X1 b) - h(X0 b): cells weighted "
                            "by row counts n_gt; simple/group/calendar on post cells t >= g; "
                            "event on all treated-cohort cells with _Dtreat == 1"),
            "nonlinear_att": ("ATT(g,t) = mean over rows of cell (g,t) of G(X1 b) - G(X0 b), "
                              "X1/X0 = design with _Dtreat = 1/0 (all treatment interactions "
                              "on/off); G = exp (poisson) or logistic cdf (logit); '_link' "
                              "variants: on the index scale"),
            "se": ("delta method: jbar = mean(G'(X1 b) X1 - G'(X0 b) X0), se = sqrt(jbar' V "
                   "jbar), V = the fit's vcov (with its ssc); CI = est -/+ 1.96 se"),
            "att_gt_note": ("etwfe has no per-cell output; att_gt = emfx's own routine "
                            "(_compute_slopes_and_jacobians) averaged within (g,t)"),
            "glm_fit_kwargs": GLM_KW,
            "mpdta_md5": md5,
            "sim_panel": {"file": SIM_CSV, "md5": sim_md5, "params": {
                k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v)
                for k, v in SIM.items()}},
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        data = (with_xd(mp) if spec.get("xvar") == "xd" else mp) if spec["data"] == "mpdta" \
            else sim
        out["cases"][name] = run_case(name, spec, data)
    out["r_crosscheck"] = r_crosscheck(mp)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"total: {time.perf_counter() - t_start:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
