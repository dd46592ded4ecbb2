"""Monte Carlo coverage of SunAbraham / StackedDiD 95% intervals under a stratified cluster survey.

Criterion (issue 11): with at least 500 replications, the 95% confidence
intervals of ``dd.SunAbraham()`` and ``dd.StackedDiD(kappa_pre=2, kappa_post=1)``
fitted with ``survey_design=SurveyDesign(weights="w", strata="stratum",
psu="psu", fpc="n_psu_pop")`` (Taylor linearization, Student t with the design
df) cover the finite-population target in 93%-97% of the replications, for
the overall ATT and every post-treatment event-study effect (e >= 0) of each
estimator. Pre-treatment event times (placebos, truth 0) and two naive fits
are shown for information.

Population and sample
---------------------
Those of ``mc_edid_coverage.py`` (imported from it, not copied; see its
docstring), so replication r draws the EfficientDiD study's sample r for the
same ``--seed``:

* a fixed finite population of 20 strata x 40 PSUs x 40 units, 6 periods;
  cohorts first treated in period 3, 4 or 5 (or never) assigned per PSU with
  stratum-dependent probabilities (early adopters in high strata);
* ``Y0 = a_i + lambda_t + u_j + v_jt + 0.5 x_i + e_it`` with a PSU effect u_j
  and a PSU x period AR(1) shock v_jt (rho 0.7), so outcomes are correlated
  within a PSU over units and periods and clustering matters; each cohort's
  Y0 is shifted period by period so that parallel trends hold EXACTLY in the
  finite population in all six periods (shifts of a few hundredths);
* effect ``tau_it = b_g (1 + 0.3 e) (1 + 0.6 x_i) (0.7 + 0.6 s_h) + (1 + 0.3 e)
  k_j + q_i`` at exposure e = t - g >= 0, b_g = 1.0, 0.6, 1.4 for g = 3, 4, 5:
  it differs by cohort and event time (so the aggregation weights matter), by
  stratum, PSU, unit and the binary x;
* each replication draws a stratified two-stage sample: 4-6 PSUs per stratum
  by SRS without replacement out of 40 (99 PSUs), then 1 in 2 of the x = 1 and
  1 in 4 of the x = 0 units of each sampled PSU (unequal selection
  probabilities: x = 1 is oversampled and has larger effects); weight =
  1 / inclusion probability, 13.3 to 40; ~1,390 units, 8,300 rows; design df
  99 - 20 = 79. ``--scale K`` multiplies the population and the sampled PSUs
  per stratum by K (information only).

Truth: the population quantity each estimator targets
----------------------------------------------------
Let ATT(g, t) be the mean of tau_it over the population units of cohort g
(computed from the population's tau array) and N_g the population size of
cohort g.

* SunAbraham. The saturated regression (never-treated controls, reference
  e = -1) makes each cohort x event-time coefficient delta_ge the weighted DiD
  of cohort g against the never treated between g - 1 and g + e; its
  population value is ATT(g, g + e) because parallel trends hold exactly in
  the population. The event-study effect is beta_e = sum_g w_ge delta_ge with
  w_ge = the weighted row count of cell (g, e) over that of all cohorts
  observed at e (the cohort shares, estimated from the sampling weights);
  their population values are N_g / sum_{g' observed at e} N_g'. The overall
  ATT averages the post-treatment cells (e >= 0) by their weighted row count,
  whose population value is N_g per cell. So the target is
  ``beta_e = sum_g N_g ATT(g, g+e) / sum_g N_g`` and ``overall = sum_{post
  (g, e)} N_g ATT(g, g+e) / sum_{post (g, e)} N_g`` (R ``did``'s ``simple``).
* StackedDiD (``weighting="aggregate"``, ``control_group="not_yet_treated"``).
  Sub-experiment a = 3, 4, 5 (every window a - 2 .. a + 1 fits in 1..6): cohort
  a and its clean controls (never treated, and for a = 3 cohort 5, untreated
  through period 4). With the corrective Q-weights, delta_e = sum_a pi_ae
  DiD_ae exactly, DiD_ae the (weighted) DiD of sub-experiment a between a - 1
  and a + e, pi_ae the sub-experiment's share of the treated observations at
  event time e (sums of sampling weights under the design). Population values:
  DiD_ae = ATT(a, a+e) (exact parallel trends; the clean controls are
  untreated in the window) and pi_ae = N_a / sum_a' N_a'. The overall ATT is
  the unweighted mean of delta_0 and delta_1 (the authors' definition), so the
  target is ``(1/2) sum_{e=0,1} sum_a N_a ATT(a, a+e) / sum_a' N_a'``.

The weights are not assumed: the script takes them from the estimators' own
fits on the whole population (unit weights): SunAbraham's
``cohort_weights`` and, for the overall ATT, the population row counts of
the post cells; StackedDiD's treated Q-weighted row shares per event time in
``stacked_data`` (it checks these equal N_g / sum N_g). The ATT(g, t) come
from tau. The census fits must reproduce every truth (the run stops if
``|census - truth|`` exceeds 1e-8 for any estimand): this checks that parallel
trends hold in the population and that the derivation of each target is the
estimator's. Each estimate is a smooth function of Horvitz-Thompson totals,
so it is design-consistent for its target.

Variants (same sample for all)
------------------------------
* ``design``  ``survey_design=SurveyDesign(weights=, strata=, psu=, fpc=)``
  (judged)
* ``w_only``  ``SurveyDesign(weights="w")``: weighted, but the units are taken
  as independent PSUs (no strata, no clustering, no fpc); shows what ignoring
  the clustering costs (information)
* ``naive``   no survey design: unweighted, the estimators' default CR1 by
  unit (information); biased, because x = 1 units are oversampled and have
  larger effects, and the SE ignores the PSU clustering.

Diagnostics
-----------
To tell a wrong truth from a wrong variance: mean bias over its Monte Carlo
SE; the coverage of the oracle interval ``estimate +- t(df) MC SD`` (the
centre and shape of the estimates); SE/SD; and the Satterthwaite effective df
of the variance estimator. SunAbraham's SEs hold the cohort-share weights
fixed (as ``fixest::aggregate``), although under this design the cohort
shares vary from sample to sample (cohorts are assigned per PSU). The
``SA fixed-w`` rows re-aggregate each sample's design-based cohort x event
coefficients (``cohort_effects``, ``vcov``) with the POPULATION weights: that
estimator has the same target, and its delta-method SE is exact to first
order. Comparing its MC SD with SunAbraham's shows the variance the estimated
weights add (when cohorts' effects differ), which the SunAbraham SE leaves
out. The ``SA + w-term`` rows rebuild SunAbraham's estimates by hand (on
this balanced panel each delta_ge is a weighted DiD of means, see
``sa_linearized``) and add the term of the estimated weights to the
linearization; TSL variance of the PSU totals with fpc, t(df). The script
checks on every sample that the hand-built estimates equal the package's
and that, with the weights' term, the hand-built SE equals the
package's SE (largest discrepancies printed).

Usage::

    python benchmarks/mc_sa_stacked_coverage.py              # 2000 reps, 3-6 min on 2 cores
    python benchmarks/mc_sa_stacked_coverage.py --quick      # 50 reps
    python benchmarks/mc_sa_stacked_coverage.py --reps 1000 --seed 7 --workers 2
    python benchmarks/mc_sa_stacked_coverage.py --scale 2    # 198 PSUs (information)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker process

import argparse  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # the other coverage studies live next to this script
    sys.path.insert(0, HERE)
import _harness as harness  # noqa: E402
import mc_cs_survey_coverage as cs  # noqa: E402
import mc_edid_coverage as ed  # noqa: E402

import diff_diff as dd  # noqa: E402

LOW, HIGH = cs.LOW, cs.HIGH  # the acceptance band, 0.93-0.97
KAPPA_PRE, KAPPA_POST = 2, 1
FIT = ed.FIT  # outcome="y", unit="unit", time="t", first_treat="g"
DESIGNS = {
    "design": dd.SurveyDesign(weights="w", strata="stratum", psu="psu", fpc="n_psu_pop"),
    "w_only": dd.SurveyDesign(weights="w"),
    "naive": None,
}
VARIANT_LABEL = {"design": "design (strata+PSU+fpc)", "w_only": "weights only",
                 "naive": "naive (no design)"}
ESTIMATORS = ("sa", "stacked")
EST_LABEL = {"sa": "SunAbraham", "stacked": "StackedDiD", "sa_fixed": "SA fixed-w",
             "sa_full": "SA + w-term"}


def make_estimator(name: str):
    if name == "sa":
        return dd.SunAbraham()
    return dd.StackedDiD(kappa_pre=KAPPA_PRE, kappa_post=KAPPA_POST)


def estimand_rows(res) -> dict:
    """{key: (estimate, se, conf_low, conf_high)}: the overall ATT and every event time."""
    out = {("overall",): (res.overall_att, res.overall_se, *res.overall_conf_int)}
    es = res.event_study_effects
    for e, est, se, lo, hi in zip(es["event_time"], es["estimate"], es["se"], es["conf_low"],
                                  es["conf_high"]):
        out[("event", int(e))] = (est, se, lo, hi)
    return out


def fixed_weight_rows(res, weights: dict, keys: list, df: float, alpha: float = 0.05):
    """SunAbraham's cohort x event coefficients re-aggregated with fixed (population) weights:
    ``weights[key]`` = {(g, e): weight}; delta-method SE from ``res.vcov``; t(df) interval."""
    coef = res.cohort_effects.set_index(["group", "event_time"])["estimate"]
    index = [(int(g), int(e)) for g, e in res.vcov.index]
    vcov = res.vcov.to_numpy()
    crit = stats.t.ppf(1 - alpha / 2, df)
    out = []
    for key in keys:
        c = np.array([weights[key].get(cell, 0.0) for cell in index])
        est = float(c @ coef.loc[res.vcov.index].to_numpy())
        se = float(np.sqrt(c @ vcov @ c))
        out.append((est, se, est - crit * se, est + crit * se))
    return np.array(out)


def design_se(data: pd.DataFrame, z: np.ndarray) -> np.ndarray:
    """TSL standard errors of ``sum_s w_i z_i`` (columns of z, one row per sampled unit):
    ``V = sum_h (1 - n_h / N_h) n_h / (n_h - 1) sum_j (T_hj - Tbar_h)^2``, T_hj the PSU totals."""
    first = data[data["t"] == 1]
    wz = first["w"].to_numpy()[:, None] * z
    psu_code, psu = pd.factorize(first["psu"])
    totals = np.zeros((psu.size, z.shape[1]))
    np.add.at(totals, psu_code, wz)
    stratum = first.groupby("psu", sort=False)["stratum"].first().loc[psu].to_numpy()
    big_n = first.groupby("psu", sort=False)["n_psu_pop"].first().loc[psu].to_numpy()
    var = np.zeros(z.shape[1])
    for h in np.unique(stratum):
        rows = stratum == h
        n_h = rows.sum()
        dev = totals[rows] - totals[rows].mean(axis=0)
        var += (1 - n_h / big_n[rows][0]) * n_h / (n_h - 1) * (dev**2).sum(axis=0)
    return np.sqrt(var)


def sa_linearized(data: pd.DataFrame, weights: dict, keys: list) -> np.ndarray:
    """SunAbraham's estimates rebuilt by hand with their design-based linearization, the
    estimated cohort-share weights INCLUDED; (K, 3): estimate, SE with the weight term, SE with
    the weights held fixed (what SunAbraham reports).

    On a balanced panel with never-treated controls, delta_ge = (Ybar_g,t - Ybar_g,g-1) -
    (Ybar_0,t - Ybar_0,g-1) (weighted means), linearized by z_i = 1{G_i = g} (D_i - Dbar_g) /
    Nhat_g - 1{G_i = 0} (D_i - Dbar_0) / Nhat_0, D_i = y_it - y_i,g-1. An aggregate
    sum_c Nhat_c delta_c / sum_c Nhat_c over cells c (weights ``weights[key]`` say which) adds
    1{G_i = g_c} (delta_c - theta) / sum_c Nhat_c per cell of the unit's cohort."""
    n_t = ed.N_PERIODS
    y = data["y"].to_numpy().reshape(-1, n_t)  # rows are unit-major, t = 1..n_t
    first = data[data["t"] == 1]
    g = first["g"].to_numpy()
    w = first["w"].to_numpy()
    never = g == 0
    size = {c: w[g == c].sum() for c in ed.COHORTS}
    cells = sorted({cell for ws in weights.values() for cell in ws})
    delta, z_delta = {}, {}
    for gg, e in cells:
        t, r = gg + e, gg - 1
        d = y[:, t - 1] - y[:, r - 1]
        mine = g == gg
        mean_g = np.average(d[mine], weights=w[mine])
        mean_0 = np.average(d[never], weights=w[never])
        delta[gg, e] = mean_g - mean_0
        z_delta[gg, e] = (np.where(mine, d - mean_g, 0.0) / size[gg]
                          - np.where(never, d - mean_0, 0.0) / w[never].sum())
    out = []
    z_all = []
    for key in keys:
        members = list(weights[key])
        total = sum(size[gg] for gg, _ in members)
        theta = sum(size[gg] * delta[gg, e] for gg, e in members) / total
        z_fixed = sum(size[gg] / total * z_delta[gg, e] for gg, e in members)
        z_full = z_fixed + sum(np.where(g == gg, delta[gg, e] - theta, 0.0) / total
                               for gg, e in members)
        out.append(theta)
        z_all += [z_full, z_fixed]
    se = design_se(data, np.column_stack(z_all))
    return np.column_stack([out, se[0::2], se[1::2]])


# ------------------------------------------------------------------ truth
def cell_att(pop: ed.Population) -> dict:
    """Population ATT(g, t) = mean of tau over cohort g's units at t, every t."""
    return {(g, t): float(pop.tau[pop.first_treat == g][:, :, t - 1].mean())
            for g in ed.COHORTS for t in range(1, ed.N_PERIODS + 1)}


def sa_target(pop: ed.Population, census) -> tuple[dict, dict]:
    """SunAbraham's target per estimand and the weights {key: {(g, e): w}} behind it, from the
    census fit's own aggregation weights (checked against N_g / sum N_g)."""
    att = cell_att(pop)
    size = {g: float((pop.first_treat == g).sum() * ed.N_UNITS) for g in ed.COHORTS}
    weights = {}
    for e, ws in census.cohort_weights.items():
        cells = {(int(g), int(e)): float(w) for g, w in ws.items()}
        total = sum(size[g] for g, _ in cells)
        gap = max(abs(w - size[g] / total) for (g, _), w in cells.items())
        if gap > 1e-12:
            raise RuntimeError(f"SunAbraham census weights at e={e} are not N_g / sum N_g")
        weights[("event", int(e))] = cells
    # overall: post cells by their row count (population: N_g per cell)
    table = census.cohort_effects
    post = [(int(g), int(e)) for g, e in zip(table["group"], table["event_time"]) if e >= 0]
    total = sum(size[g] for g, _ in post)
    weights[("overall",)] = {(g, e): size[g] / total for g, e in post}
    truth = {key: sum(w * (att[g, g + e] if e >= 0 else 0.0) for (g, e), w in ws.items())
             for key, ws in weights.items()}
    return truth, weights


def stacked_target(pop: ed.Population, census) -> dict:
    """StackedDiD's target: sum_a pi_ae ATT(a, a+e) per event time, pi_ae the treated
    Q-weighted row shares of the census stack (checked against N_a / sum N_a); overall: the
    mean over e = 0..kappa_post."""
    att = cell_att(pop)
    size = {g: float((pop.first_treat == g).sum() * ed.N_UNITS) for g in ed.COHORTS}
    st = census.stacked_data
    treated = st[st["_treat"] == 1]
    mass = treated.groupby(["_event_time", "_sub_exp"])["_q_weight"].sum()
    truth = {}
    for e in sorted(st["_event_time"].unique()):
        if e == -1:
            continue
        pi = mass.loc[e] / mass.loc[e].sum()
        total = sum(size[int(a)] for a in pi.index)
        gap = max(abs(p - size[int(a)] / total) for a, p in pi.items())
        if gap > 1e-12:
            raise RuntimeError(f"StackedDiD census target weights at e={e} are not N_a / sum N_a")
        truth[("event", int(e))] = sum(p * (att[int(a), int(a) + e] if e >= 0 else 0.0)
                                       for a, p in pi.items())
    post = [truth[("event", e)] for e in range(KAPPA_POST + 1)]
    truth[("overall",)] = float(np.mean(post))
    return truth


# ------------------------------------------------------------------ replications
_POP: ed.Population | None = None  # set in the parent before the workers fork
_KEYS: dict = {}  # estimator -> the estimands (keys) in table order
_FIXED_W: dict = {}  # SunAbraham's population aggregation weights


def replicate(args):
    rep, seed = args
    rng = np.random.default_rng([seed, 1, rep])  # the EfficientDiD study's sample rep
    data = ed.draw_sample(_POP, rng)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning in a replication is a finding: fail loudly
        for name in ESTIMATORS:
            for variant, design in DESIGNS.items():
                res = make_estimator(name).fit(data, survey_design=design, **FIT)
                rows = estimand_rows(res)
                out[name, variant] = np.array([rows[k] for k in _KEYS[name]], dtype=float)
                if name == "sa" and variant == "design":
                    df = np.nan if res.df is None else float(res.df)
                    out["df"] = df
                    out["sa_fixed", variant] = fixed_weight_rows(res, _FIXED_W, _KEYS["sa"], df)
                    lin = sa_linearized(data, _FIXED_W, _KEYS["sa"])
                    pkg = out[name, variant]
                    out["check"] = (np.abs(lin[:, 0] - pkg[:, 0]).max(),
                                    np.abs(lin[:, 1] / pkg[:, 1] - 1).max())
                    crit = stats.t.ppf(0.975, df)
                    out["sa_full", variant] = np.column_stack(
                        [lin[:, 0], lin[:, 1], lin[:, 0] - crit * lin[:, 1],
                         lin[:, 0] + crit * lin[:, 1]])
    return rep, out


# ------------------------------------------------------------------ report
def label(key) -> str:
    return "overall ATT" if key[0] == "overall" else f"e={key[1]:+d}"


def is_post(key) -> bool:
    return key[0] == "overall" or key[1] >= 0


def stack(results: dict, name) -> np.ndarray:
    """(R, K, 4) array of (estimate, se, conf_low, conf_high) over the replications."""
    return np.stack([results[r][name] for r in sorted(results)])


def covers(arr: np.ndarray, truth: np.ndarray) -> np.ndarray:
    lo, hi = arr[..., 2], arr[..., 3]
    return np.isfinite(lo) & np.isfinite(hi) & (lo <= truth) & (truth <= hi)


def summarize(arr: np.ndarray, keys: list, truth: np.ndarray, df: float) -> pd.DataFrame:
    est, se = arr[..., 0], arr[..., 1]
    hit = covers(arr, truth)
    reps = est.shape[0]
    crit = stats.t.ppf(0.975, df)
    rows = []
    for j, key in enumerate(keys):
        sd = est[:, j].std(ddof=1)
        bias = est[:, j].mean() - truth[j]
        cover = hit[:, j].mean()
        v = se[:, j] ** 2
        rows.append({
            "estimand": label(key), "post": is_post(key), "truth": truth[j], "R": reps,
            "coverage": cover, "MCSE cov": np.sqrt(cover * (1 - cover) / reps),
            "mean bias": bias, "bias/MCSE": bias / (sd / np.sqrt(reps)),
            "MC SD": sd, "mean SE": se[:, j].mean(), "SE/SD": se[:, j].mean() / sd,
            "RMS SE/SD": np.sqrt(v.mean()) / sd,
            "cov oracle": np.mean(np.abs(est[:, j] - truth[j]) <= crit * sd),
            "eff df": 2 * v.mean() ** 2 / v.var(ddof=1),
        })
    table = pd.DataFrame(rows)
    order = sorted(range(len(table)), key=lambda i: (not table.loc[i, "post"], i))
    return table.loc[order].reset_index(drop=True)


FORMATS = {"truth": "{:.4f}", "coverage": "{:.3f}", "MCSE cov": "{:.4f}",
           "mean bias": "{:+.4f}", "bias/MCSE": "{:+.2f}", "MC SD": "{:.4f}",
           "mean SE": "{:.4f}", "SE/SD": "{:.3f}", "RMS SE/SD": "{:.3f}",
           "cov oracle": "{:.3f}", "eff df": "{:.1f}"}


def format_table(table: pd.DataFrame, columns=None) -> str:
    shown = table.drop(columns="post").copy()
    for col, f in FORMATS.items():
        if col in shown:
            shown[col] = [("n/a" if not np.isfinite(val) else f.format(val))
                          for val in table[col]]
    if columns is not None:
        shown = shown[columns]
    return shown.to_string(index=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000, help="replications (default 2000)")
    parser.add_argument("--quick", action="store_true", help="50 replications")
    parser.add_argument("--seed", type=int, default=20240611,
                        help="master seed (population and samples, as the EfficientDiD study)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--scale", type=int, default=1,
                        help="multiply the population and sampled PSUs per stratum by this "
                             "(same sampling fractions; > 1: information only, not judged)")
    args = parser.parse_args(argv)
    reps = 50 if args.quick else args.reps

    global _POP, _FIXED_W
    ed.SCALE = args.scale  # read by ed.sample_sizes / ed.build_population
    ed.N_PSU_POP = 40 * args.scale
    t_start = time.perf_counter()
    pop = ed.build_population(args.seed)
    _POP = pop
    print(cs.environment())
    counts = {g: int((pop.first_treat == g).sum()) for g in ed.COHORTS + (0,)}
    print(f"population (mc_edid_coverage.py): {ed.N_STRATA} strata x {ed.N_PSU_POP} PSUs x "
          f"{ed.N_UNITS} units = {pop.stratum.size * ed.N_UNITS:,} units, {ed.N_PERIODS} "
          "periods; PSUs per cohort "
          + ", ".join(f"{'never' if g == 0 else f'g={g}'}: {c}" for g, c in counts.items()))
    n_sampled = int(ed.sample_sizes().sum())
    print(f"sample: {n_sampled} PSUs ({ed.sample_sizes().min()}-{ed.sample_sizes().max()} per "
          f"stratum), about {n_sampled * 14:,} units; design df {n_sampled - ed.N_STRATA}; "
          f"seed {args.seed}; largest parallel-trends shift {pop.max_shift:.4f}")

    census_data = ed.census_frame(pop)
    census = {name: make_estimator(name).fit(census_data, **FIT) for name in ESTIMATORS}
    sa_truth, _FIXED_W = sa_target(pop, census["sa"])
    truth = {"sa": sa_truth, "stacked": stacked_target(pop, census["stacked"])}
    truth["sa_fixed"] = truth["sa_full"] = truth["sa"]
    stop = False
    for name in ESTIMATORS:
        rows = estimand_rows(census[name])
        _KEYS[name] = list(rows)
        gap = max(abs(rows[k][0] - truth[name][k]) for k in rows)
        stop |= not gap < 1e-8
        print(f"census {EST_LABEL[name]}: |census - truth| = {gap:.2e} (largest over "
              f"{len(rows)} estimands); truth: "
              + ", ".join(f"{label(k)} {truth[name][k]:.4f}" for k in rows if is_post(k)))
    _KEYS["sa_fixed"] = _KEYS["sa_full"] = _KEYS["sa"]
    if stop:
        print("STOP: a census fit does not reproduce the truth")
        return 2
    print(f"population built and census fits in {time.perf_counter() - t_start:.1f} s\n")

    t0 = time.perf_counter()
    jobs = [(r, args.seed) for r in range(reps)]
    results = dict(harness.parallel_map(replicate, jobs, args.workers, chunksize=10))
    elapsed = time.perf_counter() - t0
    print(f"{reps} replications in {elapsed:.1f} s on {args.workers} process(es): "
          f"{elapsed * args.workers / reps:.3f} s per replication per process (6 fits each)\n")

    df = float(np.nanmean([results[r]["df"] for r in results]))
    tables = {}
    for name in ESTIMATORS + ("sa_fixed", "sa_full"):
        variants = ("design",) if name.startswith("sa_") else tuple(DESIGNS)
        tru = np.array([truth[name][k] for k in _KEYS[name]])
        for variant in variants:
            tables[name, variant] = summarize(stack(results, (name, variant)), _KEYS[name],
                                              tru, df)
    for name in ESTIMATORS:
        print(f"{EST_LABEL[name]}, {VARIANT_LABEL['design']}, TSL, mean design df {df:.1f}")
        print(format_table(tables[name, "design"]))
        print()
    print(f"{EST_LABEL['sa_fixed']}: SunAbraham's design-based cohort x event coefficients "
          "aggregated with the population weights (fixed), delta-method SE, t(df)")
    print(format_table(tables["sa_fixed", "design"]))
    print(f"\n{EST_LABEL['sa_full']}: SunAbraham's estimate with the SE of its full "
          "linearization, the estimated cohort-share weights included (built by hand, t(df))")
    print(format_table(tables["sa_full", "design"]))
    check = np.array([results[r]["check"] for r in results])
    print(f"(hand-built SunAbraham vs the package, largest over replications and estimands: "
          f"|estimate difference| {check[:, 0].max():.1e}, |SE with the weights' term / "
          f"package SE - 1| {check[:, 1].max():.1e})")
    print(textwrap.fill(
        "MCSE cov = sqrt(p (1 - p) / R); bias/MCSE = mean bias / (MC SD / sqrt(R)); SE/SD = "
        "mean SE / MC SD; cov oracle: coverage of estimate +- t(df) MC SD (centre and shape "
        "of the estimates); eff df: 2 mean(SE^2)^2 / var(SE^2), the Satterthwaite df of the "
        "variance estimator (the intervals use the design df). Rows after the post-treatment "
        "block are placebos (truth 0), information only.", 100))

    print("\nNaive inference (same samples; information)")
    cols = ["estimand", "coverage", "MCSE cov", "mean bias", "MC SD", "mean SE", "SE/SD"]
    for name in ESTIMATORS:
        for variant in ("w_only", "naive"):
            print(f"{EST_LABEL[name]}, {VARIANT_LABEL[variant]}")
            print(format_table(tables[name, variant], cols))
    print(textwrap.fill(
        "weights only: SurveyDesign(weights='w'), units as independent PSUs (unbiased, SE "
        "ignores the PSU clustering); naive: no design (unweighted, CR1 by unit).", 100))

    print("\nSunAbraham: what the estimated cohort-share weights add (post-treatment "
          "estimands, same samples)")
    sa, fx = tables["sa", "design"], tables["sa_fixed", "design"]
    for i in range(len(sa)):
        if not sa.loc[i, "post"]:
            continue
        ratio = (sa.loc[i, "MC SD"] / fx.loc[i, "MC SD"]) ** 2
        full = tables["sa_full", "design"].loc[i, "mean SE"]
        print(f"  {sa.loc[i, 'estimand']:12} MC SD {sa.loc[i, 'MC SD']:.4f} vs fixed-w "
              f"{fx.loc[i, 'MC SD']:.4f} (variance ratio {ratio:.3f}); "
              f"mean SE {sa.loc[i, 'mean SE']:.4f} (fixed-w {fx.loc[i, 'mean SE']:.4f}, "
              f"with the w-term {full:.4f})")

    print()
    failures, judged = [], []
    for name in ESTIMATORS:
        t = tables[name, "design"]
        for _, row in t[t["post"]].iterrows():
            inside = LOW <= row["coverage"] <= HIGH
            judged.append(row["coverage"])
            if not inside:
                failures.append(f"{EST_LABEL[name]} {row['estimand']} {row['coverage']:.3f}")
            naive = tables[name, "naive"].set_index("estimand").loc[row["estimand"]]
            w_only = tables[name, "w_only"].set_index("estimand").loc[row["estimand"]]
            print(f"verdict: {EST_LABEL[name]:10} {row['estimand']:12} design coverage "
                  f"{row['coverage']:.3f} (MCSE {row['MCSE cov']:.3f}) "
                  f"{'inside' if inside else 'OUTSIDE'} [{LOW:.2f}, {HIGH:.2f}]; weights only "
                  f"{w_only['coverage']:.3f}, naive {naive['coverage']:.3f}")
    if reps < 500:
        verdict = f"NOT JUDGED (R = {reps} < 500)"
    elif args.scale != 1:
        verdict = f"NOT JUDGED (--scale {args.scale}: information only)"
    else:
        verdict = "PASS" if not failures else "FAIL"
    print(f"criterion: 95% CI coverage in [{LOW:.0%}, {HIGH:.0%}] with R >= 500 for the "
          f"overall ATT and every e >= 0 of both estimators ({len(judged)} coverages, range "
          f"{min(judged):.3f}-{max(judged):.3f}): {verdict}"
          + (f" (outside: {'; '.join(failures)})" if failures else ""))
    print(f"wall time {time.perf_counter() - t_start:.1f} s")
    return 0 if verdict.startswith(("PASS", "NOT")) else 1


if __name__ == "__main__":
    sys.exit(main())
