"""Reference de Chaisemartin-D'Haultfoeuille (dCDH) event-study DID from the authors' Python port.

Source: the PyPI package ``py-did-multiplegt-dyn`` 0.1.9 (import name ``did_multiplegt_dyn``, the
authors' port of R ``DIDmultiplegtDYN`` / Stata ``did_multiplegt_dyn``), class
``did_multiplegt_dyn.DidMultiplegtDyn``. Generated with Python 3.11, polars 1.44.2 (NOT 2.x, see
traps), numpy 2.4, pandas 3.1 (exact versions in the fixture's ``meta``).

API used::

    from did_multiplegt_dyn import DidMultiplegtDyn
    m = DidMultiplegtDyn(pl.from_pandas(df), "y", "group", "time", "treatment",
                         effects=L, placebo=P, **case).fit()
    m.result["did_multiplegt_dyn"]["Effects" | "Placebos" | "ATE"]   # pandas tables
    m.result["did_multiplegt_dyn"]["p_jointeffects" | "p_jointplacebo"]
    m.result["coef"]["vcov"]      # vcov of effects + placebos (pandas, named)
    m.result["df"]          # the internal (group, time) polars frame, with the U_Gg* columns

Data (one CSV, column ``sample``; simulated below with numpy, seed ``SEED``; 300 groups x 8 periods
each; every estimate is computed on the CSV as read back). Columns: sample, group (1..300), time
(1..8), treatment, y, w (a positive cell weight, U(0.5, 2), used only by the ``weighted`` case),
cluster (5 groups per cluster, 60 clusters, used only by the ``cluster`` case).

* ``binary_staggered``: absorbing binary treatment, first treated in 3..7 or never (25%);
  y = a_g + b_t + D (1 + 0.5 (exposure - 1)) + N(0, 1).
* ``switching``: binary, each group switches at most once: joiners (0 -> 1), leavers (1 -> 0),
  never treated, always treated; y = a_g + b_t + 1.5 D (+ 0.3 (t - S) for treated joiners) + e.
* ``nonbinary``: D in {0,1,2,3}; 70% of groups change level once (up or down) at a date in 3..7,
  the rest are stayers; y = a_g + b_t + 0.8 D + e.

Cases (``cases[*].args`` hold the exact keyword arguments; everything else at the package
default): ``default`` = effects=3, placebo=2 for every sample; for binary_staggered also
``effects1`` (effects=1, placebo=1: DID_1 = DID_M), ``normalized`` (effects=3, placebo=2,
normalized=True), ``cluster`` (cluster="cluster") and ``weighted`` (weight="w"); for switching also
``cluster``.

Covariate and trend cases (added with the estimator's ``controls``, ``trends_lin`` and
``trends_nonparam``; args keys ``outcome`` and ``start`` pick the outcome column and the first
period kept, the rest are the package's keywords). Extra CSV columns, from their own generator
(seed SEED + 1, so the columns above are unchanged): x1, x2 (time-varying covariates), yc (an
outcome shifted by them), yt (an outcome with group-specific linear trends), region (1..3,
constant within group), wg (a group-constant weight). Cases: ``controls`` (x1, x2 on yc; x1
alone for nonbinary), ``controls_weighted`` (weight=wg), ``trends_lin`` (on yt),
``trends_lin_weighted``, ``trends_lin_from2`` (periods 2..8, so groups first switching in the
second period exist and are dropped), ``trends_nonparam`` (region), ``trends_nonparam_weighted``
and ``all_three`` (x1, trends_lin, region on yc). They are not re-derived by hand here; for
the covariate and trends_nonparam cases ``influence`` holds the variance U of every effect,
placebo and the ATE.
Option and test cases (added with the estimator's ``same_switchers``, ``only_never_switchers``
and ``effects_equal``; effects=3, placebo=3 and effects_equal=True in each): for every sample
``tests`` (no other option), ``same_switchers``, ``only_never_switchers``, each also
``_weighted`` (weight=wg); for switching also ``only_never_controls`` (x1, x2 on yc) and
``same_switchers_trends_lin`` (on yt: the reference
ignores same_switchers with trends_lin); for nonbinary ``same_switchers_cells``
(trends_nonparam=region). Each stores ``p_equality_effects`` and ``wald_statistics``: the
statistics b' pinv(V) b behind ``p_jointeffects``, ``p_jointplacebo`` and
``p_equality_effects``, recomputed from the package's estimates and ``vcov`` and asserted to
give its p-values (1e-10; the p-values alone lose everything below 1e-16).
``same_switchers_pl`` cases (added with the estimator's ``same_switchers_pl``; stored per
sample under ``same_switchers_pl_cases``, not ``cases``, and compared in
tests/estimators/test_dcdh.py): effects=3, placebo=3, effects_equal=True,
same_switchers=True, same_switchers_pl=True, on every sample unweighted and weighted
(weight=wg); for binary_staggered also with cluster="cluster"; for switching also with
controls (x1, x2 on yc) and with trends_lin (on yt); for nonbinary with
trends_nonparam=region.
Reference facts found on the way (see docs/estimators.md, dCDH section):
* the coefficient theta_d is the regression of first differences of Y on those of X, centred
  within (period, baseline, trends_nonparam) cells, over the not-yet-switched (g, t) cells of
  baseline d; each long difference of Y loses theta_d' times that of X.
* its influence on the variance U is scaled by rsum / N_c_d, rsum the weight of the
  regression cells of ALL baselines and N_c_d that of baseline d (1 with one baseline);
* part2 subtracts M' theta_d from every group's variance U (effects: all groups; placebos:
  groups of baseline d), a shift its uncentred variance keeps;
* the slope M counts a cell only when l <= T_g - 2.
* same_switchers: the switchers of every effect (and of every placebo, which take the
  effects' switchers) are those with F_g - 1 + L <= T_g and controls of positive weight at
  each t = F_g - 1 + j, j = 1..L (L the number of effects estimated); with trends_lin the
  package runs each effect with same_switchers on for that effect alone, whatever is asked.
* same_switchers_pl (only inside its same_switchers branch): a placebo's switchers are
  the same switchers that also have, for every j = 1..P (P the placebos estimated), an
  outcome at F_g - 1 - j and a group of their cell with F > F_g - 1 - j (they themselves
  count, so in a balanced panel this is F_g - 1 - P >= 1 on the 1-based labels; with
  only_never_switchers a never-switcher of the cell); the effects are unchanged. With
  trends_lin the package runs every placebo with it on, whatever is asked.
* only_never_switchers: controls (also the control cohorts of the variance) are the groups
  with F_g = T + 1 only; T_g, the sample and the covariate regression are unchanged.
* trends_lin caps the placebos at max_g min(L_g, F_g - 2) - 1 (F_g on the original time
  labels), one fewer than the switchers allow when L_g binds.

Estimand as implemented (read from did_multiplegt_dyn_core / did_multiplegt_main; notation:
N_{g,t} = cell weight (1 without ``weight``; 0 when y or D is missing), d_g = D_{g,1} the
baseline ("status quo") treatment, F_g = first period with D_{g,t} != d_g (T+1 if never),
S_g = 1 if the mean of D over F_g..T_g exceeds d_g (switcher "in"), 0 otherwise ("out")):

* Sample restrictions: groups whose baseline level d has no variation in F_g (e.g. always-treated
  with no same-baseline switcher) are dropped; (t, d) cells where no same-baseline group is still
  unswitched are dropped. G = number of groups left (the denominator of everything below).
  T_g = (max F over groups with the same baseline) - 1 = last period with a same-baseline
  not-yet-switcher; L_g = T_g - F_g + 1.
* Effect l, direction s: the switchers are groups with S_g = s, L_g >= l, observed at
  t = F_g - 1 + l, with at least one control. Controls at (t, d): groups with baseline d and
  F_{g'} > t (not yet switched; never-switchers and not-yet-switchers of BOTH directions).
  With dY_{g,t} = Y_{g,t} - Y_{g,t-l} (so for a switcher: Y_{F_g-1+l} - Y_{F_g-1}),
  N^s_l = sum of N_{g,F_g-1+l} over those switchers, N^s_{t,d} and N^c_{t,d} the switcher and
  control weight totals in cell (t, d):
      DID^s_l = (1/N^s_l) sum_switchers N_{g,t} (dY_{g,t} - mean_c(t,d)),
  mean_c(t,d) = N-weighted mean of dY over the controls. DID^1 is computed over joiners
  (S_g = 1), DID^0 over leavers (S_g = 0), same formula; leavers enter with a minus sign:
      DID_l = [sum_joiners N (dY - c) - sum_leavers N (dY - c)] / (N^1_l + N^0_l).
  Equivalently DID_l = (1/G) sum_g U_{g,l} with the per-group U
      U^s_{g,l} = (G/N^s_l) sum_{t=l+1}^{T_g} N_{g,t} (1{g switcher at t} - (N^s_{t,d_g}/N^c_{t,d_g})
                  1{F_g > t}) dY_{g,t},   (times 1{l <= T_g - 1}),
      U_{g,l} = (N^1_l U^1_{g,l} - N^0_l U^0_{g,l}) / (N^1_l + N^0_l)
  (U^0 = the same U formula run over leavers and their controls).
  effects=1 gives DID_1 = DID_M (same formula, l = 1).
* Placebo l: the same switchers (L_g >= l) at the same row t = F_g - 1 + l, with the backward
  long difference Y_{F_g-1-l} - Y_{F_g-1} (needs F_g - 1 - l >= 1), and the SAME control set
  (F_{g'} > F_g - 1 + l, same baseline) using their Y_{t-2l} - Y_{t-l}; same U/variance formula.
  Note the sign: Y_{earlier} - Y_{baseline}.
* Average total effect: per direction, w_l = N^s_l / sum_l N^s_l and delta^s_l = (1/N^s_l)
  sum_switchers N |D_{g,F_g-1+l} - d_g|; U^{ATE,s}_g = sum_l w_l U^s_{g,l} / sum_l w_l delta^s_l,
  and the directions are mixed with w+ = A+ / (A+ + A-), A = total sum of N |D - d| over all
  (switcher, l) cells. Net result: ATE = [sum_l sum_joiners N (dY - c) - sum_l sum_leavers
  N (dY - c)] / sum_l sum_switchers N |D_{g,F_g-1+l} - d_g| (an effect per unit of treatment).
* normalized=True: DID^n_l = DID_l / delta^n_l, delta^n_l = N-weighted mean over the switchers of
  sum_{k=0}^{l-1} |D_{g,F_g+k} - d_g| (directions mixed with N^1_l, N^0_l); SE_l / delta^n_l.
  Placebos are normalized too, by the same cumulative dose computed over the placebo-l switchers
  (the ATE is still reported, un-normalized).

Analytic standard errors (the package default; bootstrap only if ``bootstrap=(reps, seed)``):

* Per effect l (and per placebo, same recipe with placebo long differences), per direction, a
  variance U is built from cohort-recentred long differences:
      U^{var,s}_{g,l} = (G/N^s_l) sum_{t=l+1}^{T_g} N_{g,t} (1{switcher} - (N^s_{t,d}/N^c_{t,d})
                        1{F_g > t}) DOF_{g,t} (dY_{g,t} - E_{g,t}).
  E_{g,t} and DOF_{g,t} (n = number of groups, or of DISTINCT CLUSTERS when ``cluster`` is set):
  - switcher cell: cohort = switchers (of that direction, at that l) sharing (d_g, F_g,
    D_{g,F_g}). If the cohort has n >= 2: E = N-weighted cohort mean of dY, DOF = sqrt(n/(n-1)).
  - control cell (t < F_g, same-direction switchers exist at t): cohort = the controls in (d_g, t).
    If n >= 2: E = their N-weighted mean, DOF = sqrt(n/(n-1)).
  - a singleton cohort (n = 1) falls back to the union of switchers and controls in (d_g, t):
    E = its N-weighted mean, DOF = sqrt(n_u/(n_u-1)).
  The directions are combined as U^{var}_{g,l} = (N^1_l U^{var,1}_{g,l} - N^0_l U^{var,0}_{g,l}) /
  (N^1_l + N^0_l). Then
      Var(DID_l) = sum_g (U^{var}_{g,l})^2 / G^2,                            (no cluster)
      Var(DID_l) = sum_clusters (sum_{g in c} U^{var}_{g,l})^2 / G^2         (cluster)
  i.e. no overall n/(n-1) factor, the denominator is G^2 (number of GROUPS, even when clustered),
  and the small-sample corrections are only the per-cohort sqrt(n/(n-1)) factors above.
  The point estimate's U (without recentring/DOF) averages to DID_l, but is NOT the one squared.
* ATE variance: the per-group U^{ATE,var}_g is built exactly as the ATE U above but from the
  U^{var,s}_{g,l} (so the covariances between horizons are included through the per-group sum),
  Var = sum_g (U^{ATE,var}_g)^2 / G^2 (cluster totals when clustered).
* Covariances (coef.vcov, joint tests): cov(l, m) = (V(l+m) - V(l) - V(m)) / 2 with
  V(l+m) = sum_g (U^{var}_{g,l} + U^{var}_{g,m})^2 / G^2 (normalized: each U divided by its
  delta). p_jointeffects = 1 - chi2_L.cdf(b' pinv(V) b); same for placebos (only if >= 2).

``influence`` (default cases, no cluster): one value per group sorted by group id (the groups the
package kept) of the estimator U (``U_{l}``, mean = estimate) and of the variance U
(``Uvar_{l}``, se = sqrt(sum Uvar^2)/G), for each effect, placebo, and the ATE, read from the
package's internal columns U_Gg{l}_global_XX, U_Gg_var_glob_{l}_XX, U_Gg_pl_{l}_global_XX,
U_Gg_var_glob_pl_{l}_XX, U_Gg_global_XX, U_Gg_var_global_XX.

``by_hand``: every case is re-derived below with numpy only (no package code) from the formulas
above; the max abs differences of the estimates, SEs and the ATE are stored and asserted < 1e-9.

Traps found:
* The package crashes with polars >= 2.0 (``pl.count()`` without argument was removed):
  pin ``polars<2`` (1.44.2 used). It only accepts a polars DataFrame (TypeError on pandas).
* same_switchers=True with only_never_switchers=True crashes (polars ColumnNotFoundError:
  its same-switchers loop reads a column ``T_max_XX`` that does not exist), so that pair has
  no case.
* Default ``placebo=1`` (R/Stata default 0), default ``effects=1``.
* Groups with a baseline level that never varies in F_g are silently dropped (G shrinks), e.g.
  always-treated groups when no group with baseline 1 ever leaves.
* With ``cluster``, the SE divides by G^2 (groups), not by the number of clusters, and the
  cohort DOF counts distinct clusters (not groups); groups must be nested in clusters (else
  ValueError). The clustered vcov equals (V(l+m) - V(l) - V(m)) / 2 with cluster totals
  (checked: ``vcov_effects_max_abs_diff_vs_by_hand`` ~1e-17 in every case).
* ``result["coef"]["b"]`` lists the effects, then the effects AGAIN, then the ATE (not the
  placebos); use the tables.
* Placebo long difference is Y_{F-1-l} - Y_{F-1} (not Y_{F-1} - Y_{F-1-l}).

Run from the repository root with a scratch venv outside the repository:

    python3 -m venv /tmp/venv_dcdh
    /tmp/venv_dcdh/bin/pip install py-did-multiplegt-dyn==0.1.9 "polars==1.44.2"
    /tmp/venv_dcdh/bin/python -P tests/parity/ports/dcdh_multiplegt.py

It writes ``tests/parity/fixtures/dcdh_multiplegt.json`` and ``tests/parity/fixtures/dcdh_panels.csv``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import warnings

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/dcdh_multiplegt.json"
CSV = "tests/parity/fixtures/dcdh_panels.csv"
SEED = 20250
N_GROUPS, N_PERIODS = 300, 8

BASE = dict(effects=3, placebo=2)
CASES = {
    "binary_staggered": {
        "default": dict(BASE),
        "effects1": dict(effects=1, placebo=1),
        "normalized": dict(BASE, normalized=True),
        "cluster": dict(BASE, cluster="cluster"),
        "weighted": dict(BASE, weight="w"),
    },
    "switching": {
        "default": dict(BASE),
        "cluster": dict(BASE, cluster="cluster"),
    },
    "nonbinary": {
        "default": dict(BASE),
    },
}
# covariates and trends (outcome / start: the outcome column and the first period kept; the
# other keys are did_multiplegt_dyn's); wg is constant within group
CTRL = dict(BASE, controls=["x1", "x2"], outcome="yc")
TL = dict(BASE, trends_lin=True, outcome="yt")
TNP = dict(BASE, trends_nonparam=["region"])
CASES["binary_staggered"].update({
    "controls": CTRL, "controls_weighted": dict(CTRL, weight="wg"),
    "trends_lin": TL, "trends_lin_from2": dict(TL, start=2)})
CASES["switching"].update({
    "controls": CTRL, "controls_weighted": dict(CTRL, weight="wg"),
    "trends_lin": TL, "trends_lin_weighted": dict(TL, weight="wg"),
    "trends_nonparam": TNP,
    "all_three": dict(BASE, controls=["x1"], trends_lin=True, trends_nonparam=["region"],
                      outcome="yc")})
CASES["nonbinary"].update({
    "controls": dict(BASE, controls=["x1"], outcome="yc"),
    "trends_nonparam": TNP, "trends_nonparam_weighted": dict(TNP, weight="wg")})
# same_switchers, only_never_switchers and the tests (effects_equal on in every one):
# placebo=3 because ChaisemartinDHaultfoeuille estimates placebos -1..-L_max
OPT = dict(effects=3, placebo=3, effects_equal=True)
for _sample in CASES:
    CASES[_sample].update({
        "tests": dict(OPT), "tests_weighted": dict(OPT, weight="wg"),
        "same_switchers": dict(OPT, same_switchers=True),
        "same_switchers_weighted": dict(OPT, same_switchers=True, weight="wg"),
        "only_never_switchers": dict(OPT, only_never_switchers=True),
        "only_never_switchers_weighted": dict(OPT, only_never_switchers=True, weight="wg")})
CASES["switching"].update({
    "only_never_controls": dict(OPT, only_never_switchers=True, controls=["x1", "x2"],
                                outcome="yc"),
    "same_switchers_trends_lin": dict(OPT, same_switchers=True, trends_lin=True,
                                      outcome="yt")})
CASES["nonbinary"].update({
    "same_switchers_cells": dict(OPT, same_switchers=True, trends_nonparam=["region"])})
NEW_OPTIONS = ("controls", "trends_lin", "trends_nonparam", "same_switchers",
               "only_never_switchers", "effects_equal", "same_switchers_pl")
# same_switchers_pl (placebos over the same switchers observed at every placebo lag), kept
# apart from ``cases`` (in ``same_switchers_pl_cases``): tests/estimators/test_dcdh.py reads them
SSPL = dict(OPT, same_switchers=True, same_switchers_pl=True)
PL_CASES = {sample: {"same_switchers_pl": dict(SSPL),
                     "same_switchers_pl_weighted": dict(SSPL, weight="wg")}
            for sample in CASES}
PL_CASES["binary_staggered"].update({
    "same_switchers_pl_cluster": dict(SSPL, cluster="cluster")})
PL_CASES["switching"].update({
    "same_switchers_pl_controls": dict(SSPL, controls=["x1", "x2"], outcome="yc"),
    "same_switchers_pl_trends_lin": dict(SSPL, trends_lin=True, outcome="yt")})
PL_CASES["nonbinary"].update({
    "same_switchers_pl_cells": dict(SSPL, trends_nonparam=["region"])})


def fl(a):
    return [float(v) for v in np.asarray(a, dtype=float).ravel()]


def md5(path):
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------


def make_data():
    rng = np.random.default_rng(SEED)
    G, T = N_GROUPS, N_PERIODS
    t_idx = np.arange(1, T + 1)
    out = []

    def frame(name, D, Y):
        g = np.repeat(np.arange(1, G + 1), T)
        return pd.DataFrame({
            "sample": name, "group": g, "time": np.tile(t_idx, G), "treatment": D.ravel().astype(int),
            "y": np.round(Y.ravel(), 10), "w": np.round(rng.uniform(0.5, 2.0, G * T), 6),
            "cluster": (g - 1) // 5 + 1,
        })

    def effects_base():
        a = rng.normal(0, 1, G)[:, None]
        b = (np.linspace(0, 1.4, T) + rng.normal(0, 0.3, T))[None, :]
        return a + b + rng.normal(0, 1, (G, T))

    # 1. binary staggered, absorbing; effect grows with exposure
    base = effects_base()
    F = rng.choice([0, 3, 4, 5, 6, 7], size=G, p=[0.25, 0.15, 0.15, 0.15, 0.15, 0.15])
    D = ((F[:, None] > 0) & (t_idx[None, :] >= F[:, None])).astype(int)
    expo = np.where(D == 1, t_idx[None, :] - F[:, None] + 1, 0)
    out.append(frame("binary_staggered", D, base + D * (1.0 + 0.5 * (expo - 1))))

    # 2. switching on and off, at most once per group
    base = effects_base()
    typ = rng.choice(["never", "always", "join", "leave"], size=G, p=[0.2, 0.15, 0.35, 0.30])
    S = rng.integers(3, 8, size=G)[:, None]
    D = np.select([typ[:, None] == "always", typ[:, None] == "join", typ[:, None] == "leave"],
                  [np.ones((G, T)), t_idx[None, :] >= S, t_idx[None, :] < S], 0).astype(int)
    extra = np.where((typ[:, None] == "join") & (D == 1), 0.3 * (t_idx[None, :] - S), 0.0)
    out.append(frame("switching", D, base + 1.5 * D + extra))

    # 3. non-binary 0..3, one change (up or down) or stayer
    base = effects_base()
    D0 = rng.integers(0, 4, size=G)
    change = rng.random(G) < 0.7
    S = rng.integers(3, 8, size=G)
    D1 = np.array([rng.choice([v for v in range(4) if v != d0]) for d0 in D0])
    D = np.where(change[:, None] & (t_idx[None, :] >= S[:, None]), D1[:, None], D0[:, None])
    out.append(frame("nonbinary", D, base + 0.8 * D))
    return add_covariates(pd.concat(out, ignore_index=True))


def add_covariates(df):
    """Columns for the covariate and trend cases, drawn from their own generator (so the
    columns above are those of the first fixture): x1 (cell noise plus a common trend), x2
    (a group-specific trend plus noise), yc = y + 0.8 x1 - 0.5 x2 + 0.6 x1 D (the covariates
    shift the outcome; x1's changes also differ after a switch), yt = y + a group-specific
    linear trend whose slope is larger for groups switching later, region (1..3, constant
    within group), wg (a group-constant weight, U(0.5, 2))."""
    rng = np.random.default_rng(SEED + 1)
    n = len(df)
    t = df["time"].to_numpy(float)
    g = df["group"].to_numpy()
    key = df["sample"].astype(str) + ":" + df["group"].astype(str)
    gcode = pd.factorize(key)[0]
    n_g = gcode.max() + 1
    slope_x, slope_y = rng.normal(0, 0.3, n_g), rng.normal(0, 0.2, n_g)
    x1 = np.round(rng.normal(0, 1, n) + 0.1 * t, 8)
    x2 = np.round(slope_x[gcode] * t + rng.normal(0, 0.5, n), 8)
    D = df["treatment"].to_numpy(float)
    yc = df["y"].to_numpy() + 0.8 * x1 - 0.5 * x2 + 0.6 * x1 * (D > 0)
    first = df.assign(on=D != df.groupby(key)["treatment"].transform("first")).groupby(key)["on"]
    late = first.transform(lambda s: np.argmax(s.to_numpy()) if s.any() else len(s)).to_numpy()
    yt = df["y"].to_numpy() + (slope_y[gcode] + 0.05 * late) * t
    wg = np.round(rng.uniform(0.5, 2.0, n_g), 6)[gcode]
    return df.assign(x1=x1, x2=x2, yc=np.round(yc, 10), yt=np.round(yt, 10),
                     region=(g - 1) % 3 + 1, wg=wg)


# ---------------------------------------------------------------------------------------------------------------
# independent re-derivation (numpy only)
# ---------------------------------------------------------------------------------------------------------------


class Panel:
    def __init__(self, df, weight=None, cluster=None):
        df = df.sort_values(["group", "time"])
        self.ids = np.sort(df["group"].unique())
        self.T = df["time"].nunique()
        shape = (len(self.ids), self.T)
        self.Y = df["y"].to_numpy(float).reshape(shape)
        self.D = df["treatment"].to_numpy(float).reshape(shape)
        self.N = (df[weight].to_numpy(float) if weight else np.ones(len(df))).reshape(shape)
        self.C = df[cluster].to_numpy().reshape(shape)[:, 0] if cluster else None
        T = self.T
        d1 = self.D[:, 0]
        changed = self.D != d1[:, None]
        F = np.where(changed.any(1), changed.argmax(1) + 1, T + 1)  # 1-based period of first change
        # drop baselines with no variation in F_g
        keep = np.ones(len(d1), bool)
        for d in np.unique(d1):
            m = d1 == d
            if np.all(F[m] == F[m][0]):
                keep[m] = False
        self.keep = keep
        self.ids = self.ids[keep]
        self.Y, self.D, self.N, d1, F = self.Y[keep], self.D[keep], self.N[keep], d1[keep], F[keep]
        if self.C is not None:
            self.C = self.C[keep]
        self.G = len(d1)
        self.d1, self.F = d1, F
        self.Tg = np.array([F[d1 == d].max() - 1 for d in d1])  # last period with a same-baseline control
        post = (np.arange(1, T + 1)[None, :] >= F[:, None]) & (np.arange(1, T + 1)[None, :] <= self.Tg[:, None])
        avg_post = np.where(post, self.D, 0).sum(1) / np.maximum(post.sum(1), 1)
        self.Sg = np.where(F <= T, (avg_post > d1).astype(int), -1)
        self.dF = np.array([self.D[g, F[g] - 1] if F[g] <= T else d1[g] for g in range(self.G)])

    def y(self, g, t):
        return self.Y[g, t - 1]

    def ncount(self, members):
        """number of independent units (groups, or distinct clusters) in a list of group indices"""
        if self.C is None:
            return len(members)
        return len({self.C[g] for g in members})

    def direction(self, l, s, placebo=False):
        """Per-direction pieces for effect (or placebo) l and direction s (1 in, 0 out)."""
        G, T, d1, F = self.G, self.T, self.d1, self.F

        def diff(g, t):
            if placebo:
                return None if t - 2 * l < 1 else self.y(g, t - 2 * l) - self.y(g, t - l)
            return None if t - l < 1 else self.y(g, t) - self.y(g, t - l)

        # switchers: (g, t) with t = F_g - 1 + l
        sw = {}
        for g in range(G):
            t = F[g] - 1 + l
            if self.Sg[g] != s or F[g] > T or t > self.Tg[g] or diff(g, t) is None:
                continue
            ctrl = [h for h in range(G) if d1[h] == d1[g] and F[h] > t and diff(h, t) is not None]
            if placebo:
                if F[g] - 1 + l > T or t - l < 1:
                    continue
            if ctrl and sum(self.N[h, t - 1] for h in ctrl) > 0:
                sw[g] = t
        Ns = sum(self.N[g, t - 1] for g, t in sw.items())
        if Ns == 0:
            return None
        U = np.zeros(G)
        Uv = np.zeros(G)
        times_with_sw = {t for t in sw.values()}
        for t in sorted(times_with_sw):
            if t < l + 1:
                continue
            for d in np.unique(d1):
                S_cell = [g for g, tt in sw.items() if tt == t and d1[g] == d]
                if not S_cell:
                    continue
                C_cell = [h for h in range(G) if d1[h] == d and F[h] > t and diff(h, t) is not None
                          and self.N[h, t - 1] > 0 and t <= self.Tg[h] and l <= self.Tg[h] - 1]
                Nsw = sum(self.N[g, t - 1] for g in S_cell)
                Nc = sum(self.N[h, t - 1] for h in C_cell)
                ratio = Nsw / Nc
                wmean = lambda ms: sum(self.N[m, t - 1] * diff(m, t) for m in ms) / sum(self.N[m, t - 1] for m in ms)
                union = S_cell + C_cell
                n_u = self.ncount(union)
                # controls' E / DOF
                n_c = self.ncount(C_cell)
                if n_c >= 2:
                    Ec, dofc = wmean(C_cell), np.sqrt(n_c / (n_c - 1))
                elif n_u >= 2:
                    Ec, dofc = wmean(union), np.sqrt(n_u / (n_u - 1))
                else:
                    Ec, dofc = np.nan, np.nan
                for h in C_cell:
                    dy = diff(h, t)
                    U[h] -= G / Ns * self.N[h, t - 1] * ratio * dy
                    Uv[h] -= G / Ns * self.N[h, t - 1] * ratio * dofc * (dy - Ec)
                # switchers' E / DOF: cohort (d1, F_g, D_{g,F_g})
                for g in S_cell:
                    coh = [k for k in S_cell if F[k] == F[g] and self.dF[k] == self.dF[g]]
                    n_s = self.ncount(coh)
                    if n_s >= 2:
                        Es, dofs = wmean(coh), np.sqrt(n_s / (n_s - 1))
                    else:
                        Es, dofs = wmean(union), np.sqrt(n_u / (n_u - 1))
                    dy = diff(g, t)
                    U[g] += G / Ns * self.N[g, t - 1] * dy
                    Uv[g] += G / Ns * self.N[g, t - 1] * dofs * (dy - Es)
        sign = 1 if s == 1 else -1
        absdd = {g: abs(self.D[g, t - 1] - d1[g]) for g, t in sw.items()}
        cum = {g: sum(abs(self.D[g, k - 1] - d1[g]) for k in range(F[g], F[g] + l)) for g in sw}
        delta = sum(self.N[g, t - 1] * absdd[g] for g, t in sw.items()) / Ns
        delta_n = sum(self.N[g, t - 1] * cum[g] for g, t in sw.items()) / Ns
        return dict(Ns=Ns, U=sign * U, Uv=sign * Uv, delta=delta, delta_n=delta_n, n_sw=len(sw))

    def var(self, Uv):
        if self.C is None:
            return np.sum(Uv ** 2) / self.G ** 2
        tot = pd.Series(Uv).groupby(self.C).sum().to_numpy()
        return np.sum(tot ** 2) / self.G ** 2

    def combine(self, l, placebo=False, normalized=False):
        parts = [p for p in (self.direction(l, 1, placebo), self.direction(l, 0, placebo)) if p is not None]
        Ntot = sum(p["Ns"] for p in parts)
        U = sum(p["Ns"] / Ntot * p["U"] for p in parts)
        Uv = sum(p["Ns"] / Ntot * p["Uv"] for p in parts)
        est, se = U.sum() / self.G, np.sqrt(self.var(Uv))
        dn = sum(p["Ns"] / Ntot * p["delta_n"] for p in parts)
        if normalized:
            est, se, Uv = est / dn, se / dn, Uv / dn
        return dict(est=est, se=se, U=U, Uv=Uv, parts=parts, switchers=Ntot, delta_n=dn)

    def ate(self, L):
        A, Unum, Uvnum = 0.0, np.zeros(self.G), np.zeros(self.G)
        for s in (1, 0):
            ps = [self.direction(l, s) for l in range(1, L + 1)]
            ps = [p for p in ps if p is not None]
            for p in ps:
                A += p["Ns"] * p["delta"]
                Unum += p["Ns"] * p["U"]
                Uvnum += p["Ns"] * p["Uv"]
        U, Uv = Unum / A, Uvnum / A
        return dict(est=U.sum() / self.G, se=np.sqrt(self.var(Uv)), U=U, Uv=Uv)


def by_hand(df, args):
    p = Panel(df, weight=args.get("weight"), cluster=args.get("cluster"))
    norm = bool(args.get("normalized", False))
    eff = [p.combine(l, normalized=norm) for l in range(1, args["effects"] + 1)]
    pla = [p.combine(l, placebo=True, normalized=norm) for l in range(1, args["placebo"] + 1)]
    res = dict(G=p.G, effects=eff, placebos=pla, ids=p.ids)
    if not norm:
        res["ate"] = p.ate(args["effects"])
    # cluster-robust covariance of the effects (what the vcov should be)
    V = np.array([[np.sum((pd.Series(a["Uv"] + b["Uv"]).groupby(p.C).sum() if p.C is not None
                           else pd.Series(a["Uv"] + b["Uv"])).to_numpy() ** 2) / p.G ** 2 for b in eff] for a in eff])
    vd = np.diag(V) / 4  # V(a) = V(a + a) / 4
    res["cov_effects"] = (V - vd[:, None] - vd[None, :]) / 2  # (V(a+b) - V(a) - V(b)) / 2
    return res


# ---------------------------------------------------------------------------------------------------------------


def run(df, args):
    import polars as pl
    from did_multiplegt_dyn import DidMultiplegtDyn

    args = dict(args)
    outcome = args.pop("outcome", "y")
    df = df[df["time"] >= args.pop("start", 1)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = DidMultiplegtDyn(pl.from_pandas(df), outcome, "group", "time", "treatment",
                             **args).fit()
    msgs = sorted({str(w.message) for w in caught if "deprecat" not in str(w.message).lower()})
    return m.result, msgs


def table(tab):
    if tab is None:
        return None
    tab = tab.copy()
    return {str(idx): {str(c): (None if pd.isna(v) or v == "" else float(v)) for c, v in row.items()}
            for idx, row in tab.iterrows()}


def influence(res, n_eff, n_pl, ids_expected):
    import polars as pl

    d = res["df"].filter(pl.col("first_obs_by_gp_XX") == 1).sort("group_XX")
    gid = d["group_XX"].to_numpy()
    assert np.array_equal(gid, ids_expected), "group_XX is not the original group id"
    out = {"group": [int(v) for v in gid]}
    for l in range(1, n_eff + 1):
        out[f"U_effect_{l}"] = fl(d[f"U_Gg{l}_global_XX"].fill_null(0).to_numpy())
        out[f"Uvar_effect_{l}"] = fl(d[f"U_Gg_var_glob_{l}_XX"].fill_null(0).to_numpy())
    for l in range(1, n_pl + 1):
        out[f"U_placebo_{l}"] = fl(d[f"U_Gg_pl_{l}_global_XX"].fill_null(0).to_numpy())
        out[f"Uvar_placebo_{l}"] = fl(d[f"U_Gg_var_glob_pl_{l}_XX"].fill_null(0).to_numpy())
    out["U_ate"] = fl(d["U_Gg_global_XX"].fill_null(0).to_numpy())
    out["Uvar_ate"] = fl(d["U_Gg_var_global_XX"].fill_null(0).to_numpy())
    return out


def variance_influence(res, n_eff, n_pl):
    import polars as pl

    d = res["df"].filter(pl.col("first_obs_by_gp_XX") == 1).sort("group_XX")
    out = {"group": [int(v) for v in d["group_XX"].to_numpy()]}
    for l in range(1, n_eff + 1):
        out[f"Uvar_effect_{l}"] = fl(d[f"U_Gg_var_glob_{l}_XX"].fill_null(0).to_numpy())
    for l in range(1, n_pl + 1):
        out[f"Uvar_placebo_{l}"] = fl(d[f"U_Gg_var_glob_pl_{l}_XX"].fill_null(0).to_numpy())
    if "U_Gg_var_global_XX" in d.columns:  # none with trends_lin
        out["Uvar_ate"] = fl(d["U_Gg_var_global_XX"].fill_null(0).to_numpy())
    return out


def wald_statistics(case):
    """The reference's test statistics b' pinv(V) b from its estimates and ``vcov``
    (joint nullity of the effects and of the placebos; equality of the effects: the first
    L - 1 effects minus the mean of all L), checked against its p-values."""
    from scipy.stats import chi2

    names, V = case["vcov_names"], np.asarray(case["vcov"])
    eff = [k for k in names if k.startswith("Effect_")]
    pla = [k for k in names if k.startswith("Placebo_")]
    b = {k: case["effects"][k]["Estimate"] for k in eff}
    b.update({k: case["placebos"][k]["Estimate"] for k in pla})
    out = {}
    for key, keys, p_key in (("effects", eff, "p_jointeffects"),
                             ("placebos", pla, "p_jointplacebo")):
        at = [names.index(k) for k in keys]
        est = np.array([b[k] for k in keys])
        W = float(est @ np.linalg.pinv(V[np.ix_(at, at)]) @ est)
        out[key] = W
        assert abs(chi2.sf(W, len(keys)) - case[p_key]) < 1e-10, (key, W, case[p_key])
    L = len(eff)
    at = [names.index(k) for k in eff]
    C = np.eye(L)[:L - 1] - 1.0 / L
    est = C @ np.array([b[k] for k in eff])
    W = float(est @ np.linalg.pinv(C @ V[np.ix_(at, at)] @ C.T) @ est)
    assert abs(chi2.sf(W, L - 1) - case["p_equality_effects"]) < 1e-10, (W, case)
    out["effects_equal"] = W
    return out


def one_case(df, name, args):
    res, msgs = run(df, args)
    dyn = res["did_multiplegt_dyn"]
    eff, pla, ate = table(dyn.get("Effects")), table(dyn.get("Placebos")), table(dyn.get("ATE"))
    vcov = res["coef"]["vcov"]
    case = {
        "args": args, "warnings": msgs,
        "call": ("DidMultiplegtDyn(pl.from_pandas(df), 'y', 'group', 'time', 'treatment', "
                 + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ").fit()"),
        "effects": eff, "placebos": pla, "ate": ate,
        "p_jointeffects": None if dyn.get("p_jointeffects") is None else float(dyn["p_jointeffects"]),
        "p_jointplacebo": None if dyn.get("p_jointplacebo") is None else float(dyn["p_jointplacebo"]),
        "vcov_names": [str(c) for c in vcov.columns], "vcov": [fl(r) for r in vcov.to_numpy()],
        "delta_D_avg_total": (None if dyn.get("delta_D_avg_total") is None else float(dyn["delta_D_avg_total"])),
    }
    if args.get("effects_equal"):
        case["p_equality_effects"] = float(dyn["p_equality_effects"])
        case["wald_statistics"] = wald_statistics(case)
    if any(k in args for k in NEW_OPTIONS):
        # not re-derived by hand: the variance-U columns per kept group (sorted by id) for
        # the covariate cases, whose influence values the parity test compares
        case["n_groups_used"] = int(res["df"]["group_XX"].n_unique())
        if "controls" in args or "trends_nonparam" in args:
            case["influence"] = variance_influence(res, args["effects"], args["placebo"])
        return case
    est_e = [eff[f"Effect_{l}"]["Estimate"] for l in range(1, args["effects"] + 1)]
    se_e = [eff[f"Effect_{l}"]["SE"] for l in range(1, args["effects"] + 1)]
    est_p = [pla[f"Placebo_{l}"]["Estimate"] for l in range(1, args["placebo"] + 1)]
    se_p = [pla[f"Placebo_{l}"]["SE"] for l in range(1, args["placebo"] + 1)]
    bh = by_hand(df, args)
    case["n_groups_used"] = int(bh["G"])
    diffs = {
        "effects": max(abs(a - b["est"]) for a, b in zip(est_e, bh["effects"])),
        "effects_se": max(abs(a - b["se"]) for a, b in zip(se_e, bh["effects"])),
        "placebos": max(abs(a - b["est"]) for a, b in zip(est_p, bh["placebos"])),
        "placebos_se": max(abs(a - b["se"]) for a, b in zip(se_p, bh["placebos"])),
        "switchers_w": max(abs(eff[f"Effect_{l}"]["Switchers.w"] - b["switchers"])
                           for l, b in enumerate(bh["effects"], 1)),
        "switchers": max(abs(eff[f"Effect_{l}"]["Switchers"] - sum(q["n_sw"] for q in b["parts"]))
                         for l, b in enumerate(bh["effects"], 1)),
    }
    if "ate" in bh and ate is not None:
        diffs["ate"] = abs(ate["Average_Total_Effect"]["Estimate"] - bh["ate"]["est"])
        diffs["ate_se"] = abs(ate["Average_Total_Effect"]["SE"] - bh["ate"]["se"])
    case["by_hand_max_abs_diff"] = {k: float(v) for k, v in diffs.items()}
    # covariance of the effects: package vs by-hand cluster-robust
    L = args["effects"]
    pkg_cov = np.asarray(case["vcov"])[:L, :L]
    case["by_hand_cov_effects"] = [fl(r) for r in bh["cov_effects"]]
    case["vcov_effects_max_abs_diff_vs_by_hand"] = float(np.max(np.abs(pkg_cov - bh["cov_effects"])))
    if args.get("normalized"):
        case["delta_normalized"] = fl([b["delta_n"] for b in bh["effects"]])
    assert max(diffs.values()) < 1e-9, (name, diffs)
    assert case["vcov_effects_max_abs_diff_vs_by_hand"] < 1e-9, name
    if name == "default":
        inf = influence(res, args["effects"], args["placebo"], bh["ids"])
        for l, b in enumerate(bh["effects"], 1):
            assert np.max(np.abs(np.asarray(inf[f"U_effect_{l}"]) - b["U"])) < 1e-9
            assert np.max(np.abs(np.asarray(inf[f"Uvar_effect_{l}"]) - b["Uv"])) < 1e-9
        for l, b in enumerate(bh["placebos"], 1):
            assert np.max(np.abs(np.asarray(inf[f"U_placebo_{l}"]) - b["U"])) < 1e-9
            assert np.max(np.abs(np.asarray(inf[f"Uvar_placebo_{l}"]) - b["Uv"])) < 1e-9
        assert np.max(np.abs(np.asarray(inf["U_ate"]) - bh["ate"]["U"])) < 1e-9
        assert np.max(np.abs(np.asarray(inf["Uvar_ate"]) - bh["ate"]["Uv"])) < 1e-9
        case["influence"] = inf
    return case


def main():
    from importlib.metadata import version

    make_data().to_csv(CSV, index=False)
    data = pd.read_csv(CSV)

    out = {
        "meta": {
            "script": "tests/parity/ports/dcdh_multiplegt.py",
            "source": (f"py-did-multiplegt-dyn {version('py-did-multiplegt-dyn')} "
                       "(did_multiplegt_dyn.DidMultiplegtDyn; the authors' port of R DIDmultiplegtDYN)"),
            "numpy": version("numpy"), "pandas": version("pandas"), "polars": version("polars"),
            "scipy": version("scipy"), "python": platform.python_version(),
            "date": datetime.date.today().isoformat(), "seed": SEED,
            "call": ("DidMultiplegtDyn(pl.from_pandas(df[df['sample'] == sample]), 'y', 'group', 'time', "
                     "'treatment', **cases[case].args).fit().result"),
            "se_convention": ("analytic: Var(DID_l) = sum_g Uvar_{g,l}^2 / G^2 (cluster: sum over clusters of "
                              "squared cluster totals / G^2, G = groups); Uvar uses cohort-recentred long "
                              "differences times per-cohort sqrt(n/(n-1)); see the script's docstring"),
            "influence_convention": ("one value per kept group sorted by group id; mean(U) = estimate, "
                                     "se = sqrt(sum Uvar^2) / G"),
            "table_columns": ("Estimate, SE, LB CI, UB CI (95%, normal), N = number of (g,t) cells used "
                              "(switcher cells + control cells with a non-zero contribution; ATE row: cells used by "
                              "any effect), Switchers = number of switchers (ATE row: summed over effects); "
                              "N.w / Switchers.w = the same sums of the cell weights N_gt"),
            "csv": CSV, "csv_md5": md5(CSV),
            "tolerances": ("estimates and switcher counts 1e-12; SEs 1e-12 after sqrt(n/(n-1)) "
                           "where the recentred U sum to zero (else 1e-4, or centred U); covariate "
                           "influence values up to the reference's shifts 1e-10; Wald "
                           "statistics times (G - 1) / G (clusters: (C - 1) / C) 1e-10 where "
                           "the recentred U sum to zero, else 1e-3 (see "
                           "tests/parity/test_dcdh_multiplegt.py)"),
        },
    }
    for sample, cases in CASES.items():
        df = data[data["sample"] == sample].drop(columns="sample").reset_index(drop=True)
        blk = {"n_groups": int(df["group"].nunique()), "n_rows": int(len(df)), "cases": {}}
        for name, args in cases.items():
            blk["cases"][name] = one_case(df, name, args)
        blk["same_switchers_pl_cases"] = {name: one_case(df, name, args)
                                          for name, args in PL_CASES[sample].items()}
        out[sample] = blk

    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
