"""Reference continuous-treatment DiD (Callaway, Goodman-Bacon & Sant'Anna 2024) from moderndid.

Source: the PyPI package ``moderndid`` 0.4.1, module ``moderndid.didcont``
(a Python port of R ``contdid``: ``cont_did()``; data from
``moderndid.gen_cont_did_data``, the port of R ``simulate_contdid_data``).
moderndid needs Python >= 3.12. Generated with Python 3.12, numpy 2.5,
scipy 1.18, polars 2.1, pandas 3.1 (exact versions in the fixture's ``meta``).

API used (``import moderndid as m``):

* data: ``m.gen_cont_did_data(n, num_time_periods, p_untreated=...,
  dose_linear_effect=0.5, dose_quadratic_effect=1.0, seed=s)``. Dose
  D ~ U(0, 1) per unit (0 for never-treated, constant over time, also before
  treatment), cohorts G in {0, 2, .., T} (0 = never treated), y = t + eta_i +
  1{G > 0, t >= G} (0.5 D + D^2) + N(0, 1), eta_i ~ N(G, 1). So the true
  ATT(d) = 0.5 d + d^2 and ACRT(d) = 0.5 + 2 d in every post-treatment cell.
  Both panels go to one CSV (column ``sample``: ``two_period`` = 1000 units,
  periods 1-2, p_untreated = 0.25; ``staggered`` = 1000 units, periods 1-4,
  cohorts 0/2/3/4 with probability 1/4 each). Every estimate is computed on
  the CSV as read back, so no RNG agreement is needed.
* estimates: ``m.cont_did(df, yname="Y", tname="time_period", idname="id",
  gname="G", dname="D", random_state=SEED, **case)`` with the case
  arguments in ``cases[*].args`` (everything else at its default:
  target_parameter="level", aggregation="dose", dose_est_method="parametric",
  degree=3, num_knots=0, control_group="notyettreated", base_period="varying",
  anticipation=0, biters=1000, boot_type="multiplier", cband=False,
  alpha=0.05, dvals=None).

Standard errors: EVERY reported SE is a multiplier bootstrap (Rademacher
signs, biters=1000) of an influence function (IF): draws
``sqrt(n) * (signs @ IF) / n``, se = IQR(draws, inverted_cdf) / 1.3489795 /
sqrt(n). The analytic counterpart of that bootstrap is
``se_analytic = sqrt(sum(IF**2)) / n`` (recorded, plus ``sd(IF, ddof=1) /
sqrt(n)``); the bootstrap SE differs from it by Monte Carlo error (~2-5%).
IFs are on the "n x" scale: one value per unit (sorted by id), mean zero,
theta_hat - theta ~ mean(IF). The seed makes the bootstrap SEs reproducible
within moderndid only (the RNG stream order is cell IFs, overall ATT,
overall ACRT, ATT(d), ACRT(d)); compare with a tolerance, or compare
``se_analytic`` exactly.

``by_hand``: every dose case is re-derived below with numpy and
``scipy.interpolate.BSpline`` only (no moderndid code) from the algorithm as
read in the source; the max abs differences of the estimates and of the IFs
are stored (all ~1e-12 or below). The same functions document the algorithm.

Run from the repository root with the moderndid venv outside the
repository (and not this checkout on ``sys.path``, hence ``-P``):

    python3.12 -m venv /tmp/venv-moderndid
    /tmp/venv-moderndid/bin/pip install moderndid==0.4.1
    /tmp/venv-moderndid/bin/python -P tests/parity/ports/contdid_moderndid.py

It writes ``tests/parity/fixtures/contdid_moderndid.json`` and
``tests/parity/fixtures/contdid_sim.csv``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import warnings

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline

OUT = "tests/parity/fixtures/contdid_moderndid.json"
CSV = "tests/parity/fixtures/contdid_sim.csv"
SEED = 20240  # random_state of cont_did (bootstrap)

SAMPLES = {
    "two_period": dict(
        n=1000,
        num_time_periods=2,
        p_untreated=0.25,
        dose_linear_effect=0.5,
        dose_quadratic_effect=1.0,
        seed=101,
    ),
    "staggered": dict(
        n=1000, num_time_periods=4, dose_linear_effect=0.5, dose_quadratic_effect=1.0, seed=202
    ),
}
CASES = {
    "two_period": {
        "default": {},
        "degree3_knots3": dict(degree=3, num_knots=3),
        "degree1_knots0": dict(degree=1, num_knots=0),
    },
    "staggered": {
        "default": {},
        "degree3_knots3": dict(degree=3, num_knots=3),
        "nevertreated": dict(control_group="nevertreated"),
        "eventstudy_slope": dict(aggregation="eventstudy", target_parameter="slope"),
        "eventstudy_level": dict(aggregation="eventstudy", target_parameter="level"),
    },
}
# grid indices at which the ATT(d) / ACRT(d) influence functions are stored (two_period default)
IF_GRID_IDX = [0, 10, 25, 40, 49]
BOOT_Z = 1.3489795


def fl(a):
    return [float(v) for v in np.asarray(a, dtype=float).ravel()]


def md5(path):
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


def make_data():
    import moderndid as m

    frames = []
    for name, spec in SAMPLES.items():
        df = m.gen_cont_did_data(**spec).to_pandas()
        df.insert(0, "sample", name)
        frames.append(df[["sample", "id", "time_period", "G", "D", "Y"]])
    return pd.concat(frames, ignore_index=True)


def run(df, **case):
    import moderndid as m
    import polars as pl

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = m.cont_did(
            pl.from_pandas(df),
            yname="Y",
            tname="time_period",
            idname="id",
            gname="G",
            dname="D",
            random_state=SEED,
            **case,
        )
    return res, sorted({str(w.message) for w in caught})


def se_pair(inf):
    inf = np.asarray(inf, dtype=float)
    n = inf.shape[0]
    return np.sqrt(np.sum(inf**2, axis=0)) / n, np.std(inf, axis=0, ddof=1) / np.sqrt(n)


# --------------------------------------------------------------------------------------------------
# independent re-derivation (numpy + scipy only)
# --------------------------------------------------------------------------------------------------


def basis(x, degree, interior, lo, hi, deriv=0):
    """Clamped B-spline basis on [lo, hi] (all K = degree + 1 + len(interior) columns), scipy,
    extrapolating."""
    t = np.r_[[lo] * (degree + 1), np.sort(interior), [hi] * (degree + 1)]
    k = len(t) - degree - 1
    out = np.empty((len(x), k))
    for j in range(k):
        c = np.zeros(k)
        c[j] = 1.0
        s = BSpline(t, c, degree, extrapolate=True)
        out[:, j] = (s.derivative(deriv) if deriv else s)(x)
    return out


def wide(df):
    """Unit x period outcome matrix (rows sorted by id) with each unit's cohort and dose."""
    y = df.pivot(index="id", columns="time_period", values="Y").sort_index()
    first = df.sort_values(["id", "time_period"]).groupby("id").first()
    # a unit's dose: its value in its first post-treatment period (constant here)
    return (
        y.to_numpy(float),
        y.columns.to_numpy(),
        first["G"].to_numpy(),
        first["D"].to_numpy(float),
    )


def cell(y, periods, G, D, g, t, degree, knots, grid, control_group):
    """One (g, t) cell: returns the estimates and IFs on the full sample (n x scale)."""
    n = len(G)
    pos = {p: i for i, p in enumerate(periods)}
    base = t - 1 if t < g else g - 1  # varying base period, anticipation 0 (periods are 1..T here)
    if control_group == "notyettreated":
        keep = (G == g) | (G == 0) | (G > max(t, base))
    else:
        keep = (G == g) | (G == 0)
    dy = y[:, pos[t]] - y[:, pos[base]]
    treated = keep & (G == g)
    control = keep & ~treated
    n_t, n_c = treated.sum(), control.sum()
    dose, dyt = D[treated], dy[treated]
    lo, hi = dose.min(), dose.max()
    kn = knots[(knots > lo) & (knots < hi)]
    X = np.column_stack([np.ones(n_t), basis(dose, degree, kn, lo, hi)[:, 1:]])
    beta, *_ = np.linalg.lstsq(X, dyt, rcond=None)
    e = dyt - X @ beta
    ybar_c = dy[control].mean()
    Minv = np.linalg.inv(X.T @ X / n_t)
    reg_if = (
        e[:, None] * X
    ) @ Minv  # n_t x p, IF of beta on the treated (mean scale within the treated)
    dB_i = basis(dose, degree, kn, lo, hi, 1)[:, 1:]
    acrt_i = dB_i @ beta[1:]
    acrt = acrt_i.mean()
    a = np.r_[0.0, dB_i.mean(axis=0)]
    Xg = np.column_stack([np.ones(len(grid)), basis(grid, degree, kn, lo, hi)[:, 1:]])
    dXg = np.column_stack([np.zeros(len(grid)), basis(grid, degree, kn, lo, hi, 1)[:, 1:]])
    out = dict(
        att=dyt.mean() - ybar_c,
        acrt=acrt,
        att_d=Xg @ beta - ybar_c,
        acrt_d=dXg @ beta,
        if_att=np.zeros(n),
        if_acrt=np.zeros(n),
        if_att_d=np.zeros((n, len(grid))),
        if_acrt_d=np.zeros((n, len(grid))),
        knots=kn,
        boundary=(lo, hi),
    )
    out["if_att"][treated] = n / n_t * (dyt - dyt.mean())
    out["if_att"][control] = -n / n_c * (dy[control] - ybar_c)
    out["if_acrt"][treated] = n / n_t * ((acrt_i - acrt) + reg_if @ a)
    out["if_att_d"][treated] = n / n_t * (reg_if @ Xg.T)
    out["if_att_d"][control] = (-n / n_c * (dy[control] - ybar_c))[:, None]
    out["if_acrt_d"][treated] = n / n_t * (reg_if @ dXg.T)
    return out


def by_hand_dose(df, degree=3, num_knots=0, control_group="notyettreated"):
    y, periods, G, D = wide(df)
    n = len(G)
    tr_doses = D[G > 0]
    knots = (
        np.quantile(tr_doses, np.linspace(0, 1, num_knots + 2)[1:-1])
        if num_knots > 0
        else np.array([])
    )
    grid = np.linspace(tr_doses.min(), tr_doses.max(), 50)
    cohorts = np.unique(G[(G > 0) & (G >= periods[1])])
    cells = {
        (g, t): cell(y, periods, G, D, g, t, degree, knots, grid, control_group)
        for t in periods[1:]
        for g in cohorts
        if t >= g
    }  # pre-treatment cells get no weight
    p = {g: np.mean(G == g) for g in cohorts}
    S = sum(p.values())
    K = {g: sum(1 for (gg, _) in cells if gg == g) for g in cohorts}
    dev = sum((G == g) - p[g] for g in cohorts)
    psi = {
        g: ((G == g) - p[g]) / S - p[g] / S**2 * dev for g in cohorts
    }  # IF of the cohort share p_g / S
    res = {}
    for key in ("att", "acrt", "att_d", "acrt_d"):
        est = sum(p[g] / S / K[g] * c[key] for (g, t), c in cells.items())
        inf = sum(p[g] / S / K[g] * c["if_" + key] for (g, t), c in cells.items())
        inf = inf + sum(
            np.multiply.outer(psi[g] / K[g], np.atleast_1d(c[key])).reshape(inf.shape)
            for (g, t), c in cells.items()
        )
        res[key], res["if_" + key] = est, inf
    res["grid"], res["knots"], res["n"] = grid, knots, n
    res["cells"] = cells
    res["weights"] = {(g, t): p[g] / S / K[g] for (g, t) in cells}
    return res


# --------------------------------------------------------------------------------------------------


def dose_case(df, args, store_if):
    res, warns = run(df, **args)
    ptep = res.pte_params
    n = len(res.overall_att_inf_func)
    se_att_a, se_att_sd = se_pair(res.overall_att_inf_func)
    se_acrt_a, se_acrt_sd = se_pair(res.overall_acrt_inf_func)
    se_attd_a, _ = se_pair(res.att_d_inf_func)
    se_acrtd_a, _ = se_pair(res.acrt_d_inf_func)
    case = {
        "args": args,
        "warnings": warns,
        "n_units": n,
        "dose": fl(res.dose),
        "knots_global": fl(ptep.knots),
        "degree": int(ptep.degree),
        "att_d": fl(res.att_d),
        "att_d_se": fl(res.att_d_se),
        "att_d_se_analytic": fl(se_attd_a),
        "acrt_d": fl(res.acrt_d),
        "acrt_d_se": fl(res.acrt_d_se),
        "acrt_d_se_analytic": fl(se_acrtd_a),
        "att_d_crit_val": float(res.att_d_crit_val),
        "acrt_d_crit_val": float(res.acrt_d_crit_val),
        "overall_att": float(res.overall_att),
        "overall_att_se": float(res.overall_att_se),
        "overall_att_se_analytic": float(se_att_a),
        "overall_att_se_sd_ddof1": float(se_att_sd),
        "overall_acrt": float(res.overall_acrt),
        "overall_acrt_se": float(res.overall_acrt_se),
        "overall_acrt_se_analytic": float(se_acrt_a),
        "overall_acrt_se_sd_ddof1": float(se_acrt_sd),
        "if_mean_att": float(np.mean(res.overall_att_inf_func)),
        "if_mean_acrt": float(np.mean(res.overall_acrt_inf_func)),
    }
    bh = by_hand_dose(
        df,
        degree=args.get("degree", 3),
        num_knots=args.get("num_knots", 0),
        control_group=args.get("control_group", "notyettreated"),
    )
    case["cells"] = [
        {
            "group": int(g),
            "time": int(t),
            "weight": float(bh["weights"][(g, t)]),
            "att": float(c["att"]),
            "acrt": float(c["acrt"]),
            "knots": fl(c["knots"]),
            "boundary_knots": fl(c["boundary"]),
        }
        for (g, t), c in bh["cells"].items()
    ]
    diffs = {
        "grid": np.max(np.abs(bh["grid"] - res.dose)),
        "knots": np.max(np.abs(bh["knots"] - ptep.knots)) if len(bh["knots"]) else 0.0,
        "overall_att": abs(bh["att"] - res.overall_att),
        "overall_acrt": abs(bh["acrt"] - res.overall_acrt),
        "att_d": np.max(np.abs(bh["att_d"] - res.att_d)),
        "acrt_d": np.max(np.abs(bh["acrt_d"] - res.acrt_d)),
        "if_att": np.max(np.abs(bh["if_att"] - res.overall_att_inf_func)),
        "if_acrt": np.max(np.abs(bh["if_acrt"] - res.overall_acrt_inf_func)),
        "if_att_d": np.max(np.abs(bh["if_att_d"] - res.att_d_inf_func)),
        "if_acrt_d": np.max(np.abs(bh["if_acrt_d"] - res.acrt_d_inf_func)),
    }
    case["by_hand_max_abs_diff"] = {k: float(v) for k, v in diffs.items()}
    assert max(diffs.values()) < 1e-8, diffs
    # bootstrap SE within ~12% of the IF-based SE (Monte Carlo error of 1000 IQR-based draws)
    assert abs(case["overall_acrt_se"] / case["overall_acrt_se_analytic"] - 1) < 0.12
    assert abs(case["overall_att_se"] / case["overall_att_se_analytic"] - 1) < 0.12
    if store_if:
        case["influence_function"] = {
            "id": [int(v) for v in np.sort(df["id"].unique())],
            "overall_att": fl(res.overall_att_inf_func),
            "overall_acrt": fl(res.overall_acrt_inf_func),
            "grid_idx": IF_GRID_IDX,
            "dose_at_grid_idx": fl(res.dose[IF_GRID_IDX]),
            "att_d": [fl(res.att_d_inf_func[:, j]) for j in IF_GRID_IDX],
            "acrt_d": [fl(res.acrt_d_inf_func[:, j]) for j in IF_GRID_IDX],
        }
    return case


def by_hand_es(df, target):
    """Event study: cells (g, t) for every t >= 2 (pre-treatment too), cohort-share weights within
    event time."""
    y, periods, G, D = wide(df)
    grid = np.linspace(D[G > 0].min(), D[G > 0].max(), 50)
    cohorts = np.unique(G[(G > 0) & (G >= periods[1])])
    key = "acrt" if target == "slope" else "att"
    cells = {
        (g, t): cell(y, periods, G, D, g, t, 3, np.array([]), grid, "notyettreated")
        for t in periods[1:]
        for g in cohorts
    }
    p = {g: np.mean(G == g) for g in cohorts}
    ev = sorted({t - g for g, t in cells})
    est, inf = [], []
    for e in ev:
        keys = [(g, t) for g, t in cells if t - g == e]
        S = sum(p[g] for g, _ in keys)
        dev = sum((G == g) - p[g] for g, _ in keys)
        est.append(sum(p[g] / S * cells[(g, t)][key] for g, t in keys))
        inf.append(
            sum(
                p[g] / S * cells[(g, t)]["if_" + key]
                + (((G == g) - p[g]) / S - p[g] / S**2 * dev) * cells[(g, t)][key]
                for g, t in keys
            )
        )
    ev, est, inf = np.array(ev), np.array(est), np.column_stack(inf)
    post = ev >= 0
    return ev, est, inf, est[post].mean(), inf[:, post].mean(axis=1)


def es_case(df, args):
    res, warns = run(df, **args)
    es = res.event_study
    ag = res.att_gt
    inf_e = es.influence_func["by_event"]
    inf_o = es.influence_func["overall"]
    ev, est, inf, overall, inf_overall = by_hand_es(df, args["target_parameter"])
    diffs = {
        "event_times": float(np.max(np.abs(ev - np.asarray(es.event_times)))),
        "att_by_event": float(np.max(np.abs(est - es.att_by_event))),
        "if_by_event": float(np.max(np.abs(inf - inf_e))),
        "overall": float(abs(overall - es.overall_att)),
        "if_overall": float(np.max(np.abs(inf_overall - inf_o))),
    }
    assert max(diffs.values()) < 1e-8, diffs
    return {
        "by_hand_max_abs_diff": diffs,
        "args": args,
        "warnings": warns,
        "event_times": [int(e) for e in es.event_times],
        "att_by_event": fl(es.att_by_event),
        "se_by_event": fl(es.se_by_event),
        "se_by_event_analytic": fl(se_pair(inf_e)[0]),
        "overall_att": float(es.overall_att),
        "overall_se": float(es.overall_se),
        "overall_se_analytic": float(se_pair(inf_o)[0]),
        "att_gt": {
            "group": [int(v) for v in ag.groups],
            "time": [int(v) for v in ag.times],
            "att": fl(ag.att),
            "se": fl(ag.se),
            "se_analytic": fl(se_pair(ag.influence_func)[0]),
        },
    }


# --------------------------------------------------------------------------------------------------
# extensions: anticipation, universal base period, discrete doses, lowest-dose comparison, sampling
# weights
# --------------------------------------------------------------------------------------------------
# discrete doses: column ``Dd`` = ceil(4 D) / 4 in {0.25, 0.5, 0.75, 1} (rounded after simulation,
# so Y still follows the continuous D; parity needs no truth). Weighted cases: unit weight ``w`` = 1
# + id % 3; moderndid takes no weights, so it runs on the panel with each unit repeated w times (new
# ids) - a weighted mean/regression with integer weights equals the unweighted one on the repeated
# rows. Its IF (one value per copy, n_rep x scale) is collapsed to the original units: psi_i = sum
# over copies of IF / n_rep (the sum-scale influence value of unit i, ours), se_analytic = sqrt(sum
# psi_i^2) - the same formula as sqrt(sum IF^2) / n without weights.
LEVELS = np.array([0.25, 0.5, 0.75, 1.0])
M_ARGS = dict(control_group="notyettreated")
EXTENSIONS = {
    # name: (sample, dose column, weighted, moderndid args, our constructor arguments, kind)
    "anticipation1_dose": (
        "staggered",
        "D",
        False,
        dict(anticipation=1),
        dict(anticipation=1),
        "dose",
    ),
    "anticipation1_es_level": (
        "staggered",
        "D",
        False,
        dict(anticipation=1, aggregation="eventstudy", target_parameter="level"),
        dict(anticipation=1),
        "es_level",
    ),
    "anticipation1_es_slope": (
        "staggered",
        "D",
        False,
        dict(anticipation=1, aggregation="eventstudy", target_parameter="slope"),
        dict(anticipation=1),
        "es_slope",
    ),
    "universal_es_level": (
        "staggered",
        "D",
        False,
        dict(base_period="universal", aggregation="eventstudy", target_parameter="level"),
        dict(base_period="universal"),
        "es_level",
    ),
    "universal_es_slope": (
        "staggered",
        "D",
        False,
        dict(base_period="universal", aggregation="eventstudy", target_parameter="slope"),
        dict(base_period="universal"),
        "es_slope",
    ),
    "universal_anticipation1_es_level": (
        "staggered",
        "D",
        False,
        dict(
            base_period="universal",
            anticipation=1,
            aggregation="eventstudy",
            target_parameter="level",
        ),
        dict(base_period="universal", anticipation=1),
        "es_level",
    ),
    "universal_dose": (
        "staggered",
        "D",
        False,
        dict(base_period="universal"),
        dict(base_period="universal"),
        "dose",
    ),
    "discrete_dose": ("staggered", "Dd", False, {}, dict(treatment_type="discrete"), "discrete"),
    "discrete_dose_nevertreated": (
        "staggered",
        "Dd",
        False,
        dict(control_group="nevertreated"),
        dict(treatment_type="discrete", control_group="never_treated"),
        "discrete",
    ),
    "discrete_two_period": (
        "two_period",
        "Dd",
        False,
        {},
        dict(treatment_type="discrete"),
        "discrete",
    ),
    "lowest_dose_continuous": (
        "staggered",
        "D",
        False,
        {},
        dict(control_group="lowest_dose"),
        "lowest",
    ),
    "lowest_dose_discrete": (
        "staggered",
        "Dd",
        False,
        {},
        dict(control_group="lowest_dose", treatment_type="discrete"),
        "lowest_discrete",
    ),
    "weighted_dose": ("staggered", "D", True, {}, {}, "dose"),
    "weighted_discrete": ("staggered", "Dd", True, {}, dict(treatment_type="discrete"), "discrete"),
    "weighted_lowest_dose": (
        "staggered",
        "D",
        True,
        {},
        dict(control_group="lowest_dose"),
        "lowest",
    ),
    "weighted_universal_es_slope": (
        "staggered",
        "D",
        True,
        dict(base_period="universal", aggregation="eventstudy", target_parameter="slope"),
        dict(base_period="universal"),
        "es_slope",
    ),
    "weighted_anticipation1_dose": (
        "staggered",
        "D",
        True,
        dict(anticipation=1),
        dict(anticipation=1),
        "dose",
    ),
}


def repeat_units(df):
    """Each unit repeated w times under new ids (id * 10 + copy); returns the frame and, per new id
    (sorted),
    the position of its original unit among the sorted original ids."""
    ids = np.sort(df["id"].unique())
    w = df.groupby("id")["w"].first().loc[ids].to_numpy().astype(int)
    parts = []
    for k in range(w.max()):
        part = df[df["id"].isin(ids[w > k])].copy()
        part["id"] = part["id"] * 10 + k
        parts.append(part)
    rep = pd.concat(parts, ignore_index=True)
    new_ids = np.sort(rep["id"].unique())
    return rep, np.searchsorted(ids, new_ids // 10), len(ids)


def collapse(inf, owner, n_orig):
    """IF values (n_rep x scale, rows by sorted new id) -> sum-scale influence values of the
    original units."""
    inf = np.asarray(inf, dtype=float)
    inf = inf.reshape(inf.shape[0], -1)
    out = np.zeros((n_orig, inf.shape[1]))
    np.add.at(out, owner, inf / inf.shape[0])
    return out


def se_of(psi):
    return np.sqrt(np.sum(np.asarray(psi) ** 2, axis=0))


def extension_case(data, name, spec):
    sample, dose_col, weighted, margs, ours, kind = spec
    df = data[data["sample"] == sample].drop(columns="sample").reset_index(drop=True)
    df = df.assign(D=df[dose_col])
    # units treated within anticipation + 1 periods of the first have no base period: moderndid and
    # we drop them; dropped here already so the repeated panel's ids map onto the kept units
    a = margs.get("anticipation", 0)
    df = df[~((df["G"] > 0) & (df["G"] <= df["time_period"].min() + a))]
    owner, n_orig = None, df["id"].nunique()
    run_df = df
    if weighted:
        run_df, owner, n_orig = repeat_units(df)
    args = {**M_ARGS, **margs}
    if kind in ("discrete", "lowest_discrete"):
        args.update(degree=len(LEVELS) - 1, num_knots=0, dvals=LEVELS)
    res, warns = run(run_df[["id", "time_period", "G", "D", "Y"]], **args)

    def psi_of(inf):
        inf = np.asarray(inf, dtype=float)
        if owner is not None:
            return collapse(inf, owner, n_orig)
        return inf.reshape(inf.shape[0], -1) / inf.shape[0]

    out = {
        "sample": sample,
        "dose_column": dose_col,
        "weighted": weighted,
        "moderndid_args": {k: (fl(v) if isinstance(v, np.ndarray) else v) for k, v in args.items()},
        "ours": ours,
        "kind": kind,
        "warnings": warns,
    }
    if kind.startswith("es_"):
        es = res.event_study
        psi = psi_of(es.influence_func["by_event"])
        out.update(
            event_times=[int(e) for e in es.event_times],
            att_by_event=fl(es.att_by_event),
            se_by_event_analytic=fl(se_of(psi)),
            n_units=int(psi.shape[0]),
        )
        return out
    psi_att, psi_acrt = psi_of(res.overall_att_inf_func), psi_of(res.overall_acrt_inf_func)
    psi_attd, psi_acrtd = psi_of(res.att_d_inf_func), psi_of(res.acrt_d_inf_func)
    att_d, acrt_d = np.asarray(res.att_d, float), np.asarray(res.acrt_d, float)
    overall_att, overall_acrt = float(res.overall_att), float(res.overall_acrt)
    out["n_units"] = int(psi_att.shape[0])
    out["dose"] = fl(res.dose)
    if kind in ("discrete", "lowest_discrete"):
        # saturated model = the cubic through the four cell means; ACRT from the ATT(d) values
        # (linear in them): (ATT(d_j) - ATT(d_{j-1})) / (d_j - d_{j-1}), ATT(d_0 = 0) = 0
        gaps = np.diff(np.r_[0.0, LEVELS])
        F = np.diag(1 / gaps) - np.diag(1 / gaps[1:], -1)
        acrt_d, psi_acrtd = F @ att_d, psi_attd @ F.T
        overall_acrt = psi_acrt = (
            None  # ACRT_glob of the saturated model: not in moderndid (tested by hand)
        )
    if kind in ("lowest", "lowest_discrete"):
        # against the lowest dose d_L = the grid's first point: ATT(d) - ATT(d_L) (the comparison
        # mean cancels)
        overall_att = overall_att - att_d[0]
        psi_att = psi_att - psi_attd[:, [0]]
        att_d, psi_attd = att_d - att_d[0], psi_attd - psi_attd[:, [0]]
        out["reference_dose"] = float(res.dose[0])
    if kind == "lowest_discrete":
        acrt_d[0], psi_acrtd[:, 0] = np.nan, np.nan  # not identified
    out.update(
        overall_att=overall_att,
        overall_att_se_analytic=float(se_of(psi_att)[0]),
        att_d=fl(att_d),
        att_d_se_analytic=fl(se_of(psi_attd)),
        acrt_d=[None if not np.isfinite(v) else v for v in fl(acrt_d)],
        acrt_d_se_analytic=[None if not np.isfinite(v) else v for v in fl(se_of(psi_acrtd))],
    )
    if overall_acrt is not None:
        out.update(overall_acrt=overall_acrt, overall_acrt_se_analytic=float(se_of(psi_acrt)[0]))
    return out


# --------------------------------------------------------------------------------------------------
# the CCK dose-response estimator (dose_est_method="cck"; two periods, one cohort)
# --------------------------------------------------------------------------------------------------
# Outcome ``Yw`` = Y + sin(10 D) in treated units' post period: a wiggly curve that needs more
# sieve segments than the smooth default. moderndid's cont_did reports the CCK curves with
# analytic SEs (att_d_se = sqrt(npiv HC0 SE^2 + SE of the comparison mean^2), acrt_d_se = npiv's
# derivative SE), overall_acrt_se = std(IF over the treated) / sqrt(n_treated) (analytic),
# overall_att_se a bootstrap (its IF kept). The selection diagnostics come from moderndid's public
# npiv_jhat_max / npiv_j on the same inputs cont_did passes to npiv (y = outcome change minus the
# comparison mean over the treated, x = w = dose, x_grid = the dose grid, cubic, quantile knots,
# biters draws, seed = random_state).
CCK_CASES = {
    # name: (outcome column, cont_did arguments)
    "cck_default": ("Y", {}),
    "cck_wiggly": ("Yw", {}),
    "cck_dvals": ("Y", dict(dvals=np.linspace(0.1, 0.9, 17))),
    "cck_wiggly_alpha10_biters400": ("Yw", dict(alpha=0.1, biters=400)),
}


def cck_case(data, outcome, args):
    from moderndid.npiv import npiv_j, npiv_jhat_max

    df = data[data["sample"] == "two_period"].drop(columns="sample").reset_index(drop=True)
    df = df.assign(Y=df[outcome])
    full = dict(dose_est_method="cck", cband=True, **args)
    res, warns = run(df[["id", "time_period", "G", "D", "Y"]], **full)
    y, periods, G, D = wide(df)
    dy = y[:, 1] - y[:, 0]
    treated = G > 0
    m0 = dy[~treated].mean()
    x = D[treated].reshape(-1, 1)
    grid = np.asarray(res.dose, float)
    biters = args.get("biters", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        top = npiv_jhat_max(x=x, w=x, j_x_degree=3, k_w_degree=3, knots="quantiles")
        sel = npiv_j(
            y=(dy - m0)[treated],
            x=x,
            w=x,
            x_grid=grid.reshape(-1, 1),
            j_x_degree=3,
            k_w_degree=3,
            j_x_segments_set=top["j_x_segments_set"],
            k_w_segments_set=top["k_w_segments_set"],
            knots="quantiles",
            biters=biters,
            alpha=top["alpha_hat"],
            seed=SEED,
        )
    att_if = np.asarray(res.overall_att_inf_func, float)
    acrt_if = np.asarray(res.overall_acrt_inf_func, float)
    return {
        "outcome": outcome,
        "args": {k: (fl(v) if isinstance(v, np.ndarray) else v) for k, v in full.items()},
        "warnings": warns,
        "n_units": int(len(G)),
        "n_treated": int(treated.sum()),
        "dose": fl(res.dose),
        "att_d": fl(res.att_d),
        "att_d_se": fl(res.att_d_se),
        "acrt_d": fl(res.acrt_d),
        "acrt_d_se": fl(res.acrt_d_se),
        "att_d_crit_val": float(res.att_d_crit_val),
        "acrt_d_crit_val": float(res.acrt_d_crit_val),
        "overall_att": float(res.overall_att),
        "overall_att_se_analytic": float(np.sqrt(np.sum(att_if**2)) / len(att_if)),
        "overall_acrt": float(res.overall_acrt),
        "overall_acrt_se": float(res.overall_acrt_se),
        "overall_acrt_se_analytic": float(np.sqrt(np.sum(acrt_if**2)) / len(acrt_if)),
        "selection": {
            "candidates": [int(v) for v in top["j_x_segments_set"]],
            "j_hat_max": int(top["j_hat_max"]),
            "alpha_hat": float(top["alpha_hat"]),
            "segments": int(sel["j_x_seg"]),
            "j_tilde": int(sel["j_tilde"]),
            "lepski_j_hat": int(sel["j_hat"]),
            "theta_star": float(sel["theta_star"]),
            "sup_t": fl(sel["z_sup"]),
        },
    }


# --------------------------------------------------------------------------------------------------
# event-study windows: min_e / max_e / balance_e (staggered sample, periods 1-4, cohorts 2-4)
# --------------------------------------------------------------------------------------------------
WINDOWS = {
    "level_min_e_m1_max_e_1": dict(target_parameter="level", min_e=-1, max_e=1),
    "slope_min_e_0": dict(target_parameter="slope", min_e=0),
    "level_balance_e_1": dict(target_parameter="level", balance_e=1),
    "slope_balance_e_1_max_e_0": dict(target_parameter="slope", balance_e=1, max_e=0),
    "level_balance_e_0_universal": dict(target_parameter="level", balance_e=0,
                                        base_period="universal"),
}


def window_case(data, args):
    df = data[data["sample"] == "staggered"].drop(columns="sample").reset_index(drop=True)
    full = dict(control_group="notyettreated", aggregation="eventstudy", **args)
    res, warns = run(df[["id", "time_period", "G", "D", "Y"]], **full)
    es = res.event_study
    inf_e = np.asarray(es.influence_func["by_event"], float)
    inf_o = np.asarray(es.influence_func["overall"], float)
    return {
        "args": full,
        "warnings": warns,
        "n_units": int(inf_e.shape[0]),
        "event_times": [int(e) for e in es.event_times],
        "att_by_event": fl(es.att_by_event),
        "se_by_event_analytic": fl(se_pair(inf_e)[0]),
        "overall_att": float(es.overall_att),
        "overall_se_analytic": float(se_pair(inf_o)[0]),
    }


def main():
    from importlib.metadata import version

    data = make_data()
    data["Dd"] = np.ceil(data["D"] * 4) / 4  # discrete doses (0 stays 0)
    data["w"] = 1 + data["id"] % 3  # unit weights for the weighted cases
    # a wiggly dose response for the CCK cases (treated units' post periods)
    post = (data["G"] > 0) & (data["time_period"] >= data["G"])
    data["Yw"] = data["Y"] + np.where(post, np.sin(10 * data["D"]), 0.0)
    data.to_csv(CSV, index=False)
    data = pd.read_csv(CSV)

    out = {
        "meta": {
            "script": "tests/parity/ports/contdid_moderndid.py",
            "source": f"moderndid {version('moderndid')} "
            "(moderndid.didcont.cont_did; Python port of R contdid)",
            "numpy": version("numpy"),
            "pandas": version("pandas"),
            "scipy": version("scipy"),
            "polars": version("polars"),
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "call": (
                "moderndid.cont_did(df, yname='Y', tname='time_period', idname='id', gname='G', "
                "dname='D', "
                f"random_state={SEED}, **args)"
            ),
            "data_generator": (
                "moderndid.gen_cont_did_data(**params); true ATT(d) = 0.5 d + d^2, "
                "ACRT(d) = 0.5 + 2 d, D ~ U(0,1) for treated units, 0 for G = 0"
            ),
            "if_convention": (
                "one value per unit sorted by id, n x scale: theta_hat - theta ~ mean(IF); "
                "se_analytic = sqrt(sum IF^2) / n"
            ),
            "se_convention": (
                "reported SEs: multiplier bootstrap (Rademacher, biters=1000) of the IF, "
                "se = IQR(sqrt(n) * signs @ IF / n) / 1.3489795 / sqrt(n)"
            ),
            "csv": CSV,
            "csv_md5": md5(CSV),
            "seed": SEED,
            "tolerances": {
                "estimates_abs": 1e-11,
                "se_rel": 1e-10,
                "se_note": "ours = sqrt(n / (n - 1)) * se_analytic "
                "(the engine's small-sample factor)",
            },
            "cck": (
                "block cck: cont_did(dose_est_method='cck', cband=True, random_state=seed) on "
                "the two_period sample (outcome Y or Yw); selection diagnostics from "
                "moderndid.npiv.npiv_jhat_max/npiv_j on cont_did's inputs. Tolerances: "
                "estimates 1e-8 abs, SEs and critical values 1e-8 rel (npiv moves its quantile "
                "knots apart by up to 1e-10 x the dose range; ours are the plain quantiles: "
                "differences ~1e-10); ours = sqrt(n / (n - 1)) x the analytic SEs"
            ),
            "windows": (
                "block windows: event studies with min_e/max_e/balance_e "
                "(cont_did(aggregation='eventstudy', ...)) on the staggered sample; "
                "overall = mean of the kept event times >= 0"
            ),
            "extensions": (
                "cases beyond the reference's own options are derived from its outputs by "
                "linear maps: discrete doses = moderndid's cubic through the four dose values "
                "(degree 3, dvals = the values), ACRT by finite differences of those ATT(d); "
                "lowest_dose = ATT(d) - ATT(d_L) with d_L the first grid point; weighted = "
                "moderndid on the panel with each unit repeated w times, influence values "
                "collapsed to the units"
            ),
        },
    }
    for sample, cases in CASES.items():
        df = (
            data[data["sample"] == sample]
            .drop(columns=["sample", "Dd", "w"])
            .reset_index(drop=True)
        )
        G = df.groupby("id")["G"].first()
        blk = {
            "params": SAMPLES[sample],
            "n_units": int(df["id"].nunique()),
            "n_rows": int(len(df)),
            "cohort_counts": {
                str(int(k)): int(v) for k, v in G.value_counts().sort_index().items()
            },
            "cases": {},
        }
        for name, args in cases.items():
            if args.get("aggregation") == "eventstudy":
                blk["cases"][name] = es_case(df, args)
            else:
                blk["cases"][name] = dose_case(
                    df, args, store_if=(sample == "two_period" and name == "default")
                )
        out[sample] = blk
    out["extensions"] = {
        name: extension_case(data, name, spec) for name, spec in EXTENSIONS.items()
    }
    out["cck"] = {name: cck_case(data, *spec) for name, spec in CCK_CASES.items()}
    out["windows"] = {name: window_case(data, args) for name, args in WINDOWS.items()}

    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
