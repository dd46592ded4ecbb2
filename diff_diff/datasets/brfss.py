"""A BRFSS-style survey simulator with composition drift: :func:`simulate_brfss`.

The population: adults in 50 states over a decade, described by counts in
age x sex x education cells per state-year (education rises slowly). Smoking
follows a logistic model in state, year, demographics and a PSU-year shock;
states adopt smoking bans in staggered years, some never, and a ban lowers
each adult's smoking probability by a planted amount that is larger for the
less educated.

The survey: in every state-year two strata are sampled at different rates,
five PSUs per stratum, adults drawn within PSUs; design weights are inverse
selection probabilities. Then nonresponse: response propensities differ by
age, and - the drift - less-educated adults in adopting states stop
answering, progressively from ``drift_start`` years relative to adoption.
Less-educated adults smoke more, so treated states' respondents drift toward
non-smokers: design-weighted estimates exaggerate the ban's effect, with a
growing dynamic profile, while pre-trends look clean (when the drift starts
at adoption). Raking each state-year to its population margins removes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

AGE = ("18-34", "35-49", "50-64", "65+")
SEX = ("female", "male")
EDUC = ("less than HS", "high school", "some college", "college")
# logit-scale smoking effects
_B_AGE = np.array([0.25, 0.15, 0.0, -0.55])
_B_SEX = np.array([-0.15, 0.15])
_B_EDUC = np.array([1.2, 0.55, 0.0, -0.85])
# the ban's effect on the smoking probability, by education (times ``effect``)
_EFFECT_SCALE = np.array([1.4, 1.15, 0.9, 0.6])
_RESPONSE_AGE = np.array([0.45, 0.55, 0.65, 0.75])


@dataclass(frozen=True, eq=False)
class SimulatedSurvey:
    """Output of :func:`simulate_brfss`.

    Attributes
    ----------
    microdata : DataFrame
        One row per respondent: ``state``, ``year``, ``first_treat`` (ban year,
        0 never), ``stratum``, ``psu``, ``design_weight``, ``age``, ``sex``,
        ``educ``, ``smoker`` (observed 0/1), ``smoker_0``/``smoker_1``
        (potential outcomes without/with a ban) and ``treated`` (ban in force).
    margins : DataFrame
        Population counts per ``state``, ``year``, ``margin`` (age, sex, educ),
        ``level``: the totals for :func:`~diff_diff.calibrate`.
    states : DataFrame
        ``state``, ``first_treat``, ``population`` (mean adult population).
    truth_overall : float
        The population ATT in the Callaway-Sant'Anna ``simple`` sense: the
        average of post-ban state-year effects over adopting states, cohorts
        weighted by population.
    truth_event_study : DataFrame
        ``event_time`` and ``truth`` (0 before adoption).
    truth_group_time : DataFrame
        ``group``, ``time``, ``truth`` for every post-ban cohort-year.
    """

    microdata: pd.DataFrame
    margins: pd.DataFrame
    states: pd.DataFrame
    truth_overall: float
    truth_event_study: pd.DataFrame
    truth_group_time: pd.DataFrame


def simulate_brfss(
    n_states: int = 50,
    years: tuple[int, int] = (2010, 2019),
    respondents: int = 300_000,
    cohorts: tuple[int, ...] = (2013, 2015, 2017),
    never_treated_share: float = 0.3,
    effect: float = -0.03,
    drift: float = 0.7,
    drift_start: int = 0,
    drift_ramp: int = 3,
    seed: int = 2024,
) -> SimulatedSurvey:
    """Simulate BRFSS-style survey microdata with composition drift.

    Parameters
    ----------
    n_states : int
        States (at least 6).
    years : (int, int)
        First and last survey year.
    respondents : int
        Approximate number of respondents over all state-years.
    cohorts : tuple of int
        Ban adoption years; states are spread evenly over them, except the
        never-treated share.
    never_treated_share : float
        Share of states that never adopt.
    effect : float
        The ban's average effect on the smoking probability (negative lowers
        smoking), scaled by education from 1.4x (less than high school) to
        0.6x (college).
    drift : float in [0, 1)
        Largest relative fall of the response propensity of adults without a
        high-school diploma in adopting states (0: no drift).
    drift_start : int
        Years relative to adoption when the fall begins (negative: before the
        ban, so pre-trends show it).
    drift_ramp : int
        Years over which the fall grows to ``drift``.
    seed : int
        Everything is drawn from ``numpy.random.default_rng(seed)``.

    Returns
    -------
    SimulatedSurvey

    Examples
    --------
    >>> from diff_diff.datasets import simulate_brfss
    >>> sim = simulate_brfss(respondents=20_000, seed=1)
    >>> sim.microdata["state"].nunique(), round(sim.truth_overall, 3) < 0
    (50, True)
    """
    _check(n_states, years, respondents, cohorts, never_treated_share, drift, drift_ramp)
    rng = np.random.default_rng(seed)
    year_list = np.arange(years[0], years[1] + 1)
    n_years = year_list.size
    states = _states(rng, n_states, cohorts, never_treated_share, year_list)
    educ_share = _education_shares(rng, n_states, n_years)  # (S, T, 4)
    age_share = np.array([0.3, 0.25, 0.25, 0.2])
    sex_share = np.array([0.51, 0.49])
    pop = states["population"].to_numpy()[:, None] * (1 + 0.01 * np.arange(n_years))[None, :]

    state_effect = rng.normal(0.0, 0.25, n_states)
    year_effect = -0.04 * np.arange(n_years)
    micro = _sample(rng, states, year_list, pop, age_share, sex_share, educ_share,
                    respondents, drift, drift_start, drift_ramp)
    logit = (-1.55 + state_effect[micro["s"]] + year_effect[micro["t"]]
             + _B_AGE[micro["a"]] + _B_SEX[micro["x"]] + _B_EDUC[micro["e"]]
             + micro["psu_shock"])
    p0 = np.clip(1.0 / (1.0 + np.exp(-logit)), 0.06, 0.9)
    tau = effect * _EFFECT_SCALE[micro["e"]]
    u = rng.random(p0.size)
    y0 = (u < p0).astype(float)
    y1 = (u < np.clip(p0 + tau, 0.0, 1.0)).astype(float)
    first_treat = states["first_treat"].to_numpy()[micro["s"]]
    year = year_list[micro["t"]]
    treated = (first_treat > 0) & (year >= first_treat)
    microdata = pd.DataFrame(
        {
            "state": states["state"].to_numpy()[micro["s"]],
            "year": year,
            "first_treat": first_treat,
            "stratum": micro["stratum"],
            "psu": micro["psu"],
            "design_weight": micro["weight"],
            "age": np.asarray(AGE, dtype=object)[micro["a"]],
            "sex": np.asarray(SEX, dtype=object)[micro["x"]],
            "educ": np.asarray(EDUC, dtype=object)[micro["e"]],
            "smoker": np.where(treated, y1, y0),
            "smoker_0": y0,
            "smoker_1": y1,
            "treated": treated,
        }
    )
    margins = _margins(states, year_list, pop, age_share, sex_share, educ_share)
    truth_gt, truth_overall, truth_es = _truth(states, year_list, pop, educ_share, effect)
    return SimulatedSurvey(microdata, margins, states, truth_overall, truth_es, truth_gt)


def _check(n_states, years, respondents, cohorts, never_share, drift, drift_ramp):
    if not isinstance(n_states, (int, np.integer)) or n_states < 6:
        raise ValueError(f"n_states must be an integer >= 6, got {n_states!r}")
    if len(years) != 2 or years[1] - years[0] < 3:
        raise ValueError(f"years must span at least 4 years, got {years!r}")
    if not cohorts or any(not (years[0] < c <= years[1]) for c in cohorts):
        raise ValueError(f"cohorts must be years after {years[0]} and up to {years[1]}, got {cohorts!r}")
    if respondents < 50 * n_states * (years[1] - years[0] + 1) // 10:
        raise ValueError(f"respondents={respondents} is too few for {n_states} states")
    if not 0 < never_share < 1:
        raise ValueError(f"never_treated_share must be in (0, 1), got {never_share!r}")
    if not 0 <= drift < 1:
        raise ValueError(f"drift must be in [0, 1), got {drift!r}")
    if drift_ramp < 1:
        raise ValueError(f"drift_ramp must be >= 1, got {drift_ramp!r}")


def _states(rng, n_states, cohorts, never_share, year_list):
    n_never = max(1, int(round(never_share * n_states)))
    adopt = np.concatenate([
        np.zeros(n_never, dtype=int),
        np.resize(np.asarray(cohorts, dtype=int), n_states - n_never),
    ])
    rng.shuffle(adopt)
    population = np.round(np.exp(rng.normal(np.log(3e6), 0.8, n_states)), -3)
    return pd.DataFrame(
        {
            "state": [f"S{j:02d}" for j in range(1, n_states + 1)],
            "first_treat": adopt,
            "population": population,
        }
    )


def _education_shares(rng, n_states, n_years):
    base = np.array([0.2, 0.3, 0.25, 0.25])
    tilt = rng.normal(0.0, 0.25, n_states)
    trend = np.arange(n_years) * 0.02
    logits = np.log(base)[None, None, :] + (
        np.array([1.0, 0.5, 0.0, -1.0])[None, None, :]
        * (tilt[:, None, None] - trend[None, :, None])
    )
    share = np.exp(logits)
    return share / share.sum(axis=2, keepdims=True)


def _sample(rng, states, year_list, pop, age_share, sex_share, educ_share, respondents,
            drift, drift_start, drift_ramp):
    """Attempted interviews per state-year-stratum-PSU, then nonresponse."""
    n_states, n_years = pop.shape
    strata_share = np.array([0.65, 0.35])  # population share of the two strata
    attempts_per_cell = int(np.ceil(respondents / (n_states * n_years * 0.55)))
    per_psu = max(2, attempts_per_cell // 10)
    s_idx, t_idx, h_idx, j_idx = np.meshgrid(
        np.arange(n_states), np.arange(n_years), np.arange(2), np.arange(5), indexing="ij"
    )
    cells = np.column_stack([s_idx.ravel(), t_idx.ravel(), h_idx.ravel(), j_idx.ravel()])
    n = cells.shape[0] * per_psu
    rows = np.repeat(cells, per_psu, axis=0)
    s, t, h = rows[:, 0], rows[:, 1], rows[:, 2]
    a = rng.choice(len(AGE), size=n, p=age_share)
    x = rng.choice(len(SEX), size=n, p=sex_share)
    # education within the state-year, the second stratum more educated
    shift = np.where(h == 1, 0.35, -0.15)
    share = educ_share[s, t]
    tilted = share * np.exp(np.outer(shift, [-1.0, -0.4, 0.2, 0.8]))
    tilted /= tilted.sum(axis=1, keepdims=True)
    e = (rng.random(n)[:, None] > np.cumsum(tilted, axis=1)).sum(axis=1)
    weight = pop[s, t] * strata_share[h] / (5 * per_psu)
    psu_key = ((s * n_years + t) * 2 + h) * 5 + rows[:, 3]
    psu_shock = rng.normal(0.0, 0.2, psu_key.max() + 1)[psu_key]
    adopt = states["first_treat"].to_numpy()[s]
    rel = year_list[t] - adopt
    ramp = np.clip((rel - drift_start + 1) / drift_ramp, 0.0, 1.0)
    fall = np.where((adopt > 0) & (e == 0), drift * ramp, 0.0)
    respond = rng.random(n) < _RESPONSE_AGE[a] * (1.0 - fall)
    keep = np.flatnonzero(respond)
    labels = states["state"].to_numpy().astype(str)
    stratum = np.char.add(labels[s], np.where(h == 0, "-A", "-B"))
    psu = np.char.add(np.char.add(stratum, "-"), (t * 5 + rows[:, 3]).astype(str))
    return {
        "s": s[keep], "t": t[keep], "a": a[keep], "x": x[keep], "e": e[keep],
        "weight": weight[keep], "psu_shock": psu_shock[keep],
        "stratum": stratum[keep].astype(object), "psu": psu[keep].astype(object),
    }


def _margins(states, year_list, pop, age_share, sex_share, educ_share):
    parts = []
    names = states["state"].to_numpy()
    n_states, n_years = pop.shape
    st = np.repeat(names, n_years)
    yr = np.tile(year_list, n_states)
    total = pop.ravel()
    for margin, levels, shares in (
        ("age", AGE, np.broadcast_to(age_share, (n_states * n_years, len(AGE)))),
        ("sex", SEX, np.broadcast_to(sex_share, (n_states * n_years, len(SEX)))),
        ("educ", EDUC, educ_share.reshape(-1, len(EDUC))),
    ):
        counts = np.round(total[:, None] * shares)
        counts[:, -1] = total - counts[:, :-1].sum(axis=1)  # margins add up exactly
        parts.append(pd.DataFrame({
            "state": np.repeat(st, len(levels)),
            "year": np.repeat(yr, len(levels)),
            "margin": margin,
            "level": np.tile(np.asarray(levels, dtype=object), st.size),
            "total": counts.ravel(),
        }))
    return pd.concat(parts, ignore_index=True)


def _truth(states, year_list, pop, educ_share, effect):
    """Population ATT(g, t), the simple aggregation and the event-study truths."""
    adopt = states["first_treat"].to_numpy()
    size = pop.mean(axis=1)
    state_effect = effect * (educ_share @ _EFFECT_SCALE)  # (S, T): population mean effect
    rows = []
    for g in np.unique(adopt[adopt > 0]):
        members = adopt == g
        for j, year in enumerate(year_list):
            if year >= g:
                value = np.average(state_effect[members, j], weights=pop[members, j])
                rows.append((g, year, value, size[members].sum()))
    gt = pd.DataFrame(rows, columns=["group", "time", "truth", "cohort_size"])
    overall = float(np.average(gt["truth"], weights=gt["cohort_size"]))
    gt["event_time"] = gt["time"] - gt["group"]
    es = gt.groupby("event_time").apply(
        lambda d: np.average(d["truth"], weights=d["cohort_size"]), include_groups=False
    ).rename("truth").reset_index()
    pre = np.arange(year_list[0] - gt["group"].max(), 0)
    es = pd.concat([pd.DataFrame({"event_time": pre, "truth": 0.0}), es], ignore_index=True)
    return gt.drop(columns="cohort_size"), overall, es
