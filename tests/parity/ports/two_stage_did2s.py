"""Reference values of Gardner's two-stage DiD from pyfixest ``did2s``.

Source: pyfixest 0.60.0's ``did2s`` (a translation of Kyle Butts' R ``did2s``):
stage 1 is ``feols(y ~ [x] | unit + time)`` on the untreated observations,
stage 2 regresses ``y - predict(stage 1)`` on the second-stage formula over all
observations, and the covariance is Butts & Gardner's GMM sandwich summed over
clusters, ``sum_g s_g s_g'``, with NO ``G/(G-1)`` factor (``_G`` is computed
and unused). diff-diff's engine applies ``G/(G-1)``, so its standard errors are
did2s's times ``sqrt(G/(G-1))``.

Calls (``d = 1{first_treat > 0 and time >= first_treat}``, clustered by unit):

* overall: ``did2s(df, yname="y", first_stage=FS, second_stage="~ d",
  treatment="d", cluster="unit")``;
* event study: ``second_stage="~ i(rel_time, ref=-1000)"`` with ``rel_time =
  time - first_treat`` on treated rows (``d == 1``) and the sentinel ``-1000``
  on every untreated row (never treated and not yet treated), which is the
  reference level. So only post-treatment horizons ``h >= 0`` get a dummy.
  Giving not-yet-treated rows their negative ``rel_time`` instead (pre-period
  dummies, as in R did2s's ``i(rel_year, ref = c(-1, Inf))``) leaves the
  ``h >= 0`` coefficients and SEs bit-identical (the dummies are disjoint and
  there is no intercept), so those are not recorded.
* ``FS = "~ 0 | unit + time"``, or ``"~ x | unit + time"`` for the case with a
  time-varying covariate (did2s then also puts x in the GMM first-stage block).

Two runs per case:

* ``stock``: ``did2s`` as shipped. TRAP 1 (tolerance): did2s forwards no
  options to ``feols``. Its stage-1 fixed effects come from
  ``Feols.fixef()``'s ``scipy.sparse.linalg.lsqr(atol=1e-6, btol=1e-6)`` and,
  with a covariate, from MAP demeaning at ``fixef_tol=1e-6``; the points are
  off by ~1e-5 (relative lsqr stopping rule, not an absolute bound).
* ``tight``: the same call with, inside this script only, pyfixest's
  ``did2s`` module's ``feols`` wrapped to pass ``fixef_tol=1e-13,
  fixef_rm="none"`` and ``Feols.fixef``'s defaults set to ``atol = btol =
  1e-14``. No other pyfixest code is changed.

TRAP 2 (singletons): stage-1 ``feols`` drops singleton fixed-effect groups
(``fixef_rm="singleton"`` default), so a unit with one untreated period loses
its unit effect, and did2s then fails with ``ValueError: operands could not be
broadcast together`` (mpdta's 2004 cohort, first treated in its second
period). Unbalanced panels fail only this way, when a dropped row leaves a unit
one untreated observation (checked: dropping rows so that every unit keeps >= 2
untreated periods runs; ``(unit * 7 + time) % 11 != 0`` on ``sim_large`` leaves
one such unit and fails). Cases ``sim_*`` give every unit
>= 2 untreated periods; case ``trap_single_pre`` has a cohort treated in
period 2: its ``stock`` run records the error and its ``tight`` run (with
``fixef_rm="none"``) is the reference. Every case has never-treated units
(without them the last periods' time effects are not identified in stage 1).

Simulation: ``numpy.random.default_rng(seed)``; ``y = a_i + trend * t +
sin(t) + beta * x + effect(g, t - g) * d + noise``, ``effect(g, e) = base[g] +
slope[g] * e`` (heterogeneous and dynamic). The full long data are stored in
the fixture, so the test needs no RNG agreement.

Run from the repository root in the pyfixest venv (not this checkout on
``sys.path``, hence ``-P``):

    /work/venv_pyfixest/bin/python -P tests/parity/ports/two_stage_did2s.py

It writes ``tests/parity/fixtures/two_stage_did2s.json``.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import platform
import sys
import warnings

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/two_stage_did2s.json"
REF = -1000  # rel_time of every untreated row: the event study's reference level
TIGHT = dict(fixef_tol=1e-13, fixef_rm="none", lsqr_atol=1e-14, lsqr_btol=1e-14)

# cohorts: {first treated period: units}; never: never-treated units; periods 1..T.
# beta: coefficient of the time-varying covariate x (None: no covariate).
CASES = {
    "sim_small": dict(
        seed=20260611, periods=6, cohorts={3: 14, 5: 16}, never=20,
        base={3: 1.0, 5: 0.4}, slope={3: 0.5, 5: -0.3}, noise_sd=1.0, trend=0.2, beta=None),
    "sim_covariate": dict(
        seed=4711, periods=8, cohorts={3: 50, 5: 60, 7: 40}, never=50,
        base={3: 0.8, 5: 1.5, 7: -0.5}, slope={3: 0.3, 5: -0.2, 7: 0.9},
        noise_sd=0.8, trend=0.3, beta=0.6),
    "sim_large": dict(
        seed=98765, periods=10, cohorts={3: 40, 4: 90, 6: 70, 9: 60}, never=140,
        base={3: 2.0, 4: 0.5, 6: 1.2, 9: -0.3}, slope={3: -0.15, 4: 0.4, 6: 0.0, 9: 1.5},
        noise_sd=1.5, trend=0.1, beta=None),
    "trap_single_pre": dict(
        seed=31337, periods=6, cohorts={2: 15, 4: 25}, never=30,
        base={2: 1.0, 4: 2.0}, slope={2: 0.25, 4: -0.5}, noise_sd=1.0, trend=0.25, beta=None),
}


def simulate(spec) -> pd.DataFrame:
    """Long balanced panel (unit, time, first_treat, y[, x]), units numbered from 1."""
    rng = np.random.default_rng(spec["seed"])
    first = np.array([0] * spec["never"]
                     + [g for g, n in spec["cohorts"].items() for _ in range(n)])
    a = rng.normal(0.0, 1.0, first.size) + 0.05 * first
    rows = []
    for i, g in enumerate(first):
        for t in range(1, spec["periods"] + 1):
            d = g > 0 and t >= g
            eff = spec["base"][g] + spec["slope"][g] * (t - g) if d else 0.0
            x = rng.normal(0.0, 1.0) + 0.15 * t + 0.5 * a[i] + 0.2 * d
            y = (a[i] + spec["trend"] * t + np.sin(t) + eff + rng.normal(0.0, spec["noise_sd"])
                 + (spec["beta"] * x if spec["beta"] is not None else 0.0))
            rows.append((i + 1, t, int(g), float(x), float(y)))
    df = pd.DataFrame(rows, columns=["unit", "time", "first_treat", "x", "y"])
    return df if spec["beta"] is not None else df.drop(columns="x")


@contextlib.contextmanager
def tight():
    """did2s with stage-1 fixef_tol/fixef_rm and Feols.fixef's lsqr tolerances overridden."""
    from pyfixest.estimation.models.feols_ import Feols

    module = sys.modules["pyfixest.did.did2s"]  # pyfixest.did.did2s is the function
    feols, fixef = module.feols, Feols.fixef
    module.feols = functools.partial(feols, fixef_tol=TIGHT["fixef_tol"],
                                     fixef_rm=TIGHT["fixef_rm"])
    Feols.fixef = lambda self, atol=TIGHT["lsqr_atol"], btol=TIGHT["lsqr_btol"]: fixef(
        self, atol=atol, btol=btol)
    try:
        yield
    finally:
        module.feols, Feols.fixef = feols, fixef


def run(df, first_stage) -> dict:
    import pyfixest as pf

    data = df.copy()
    g = data["first_treat"]
    data["d"] = ((g > 0) & (data["time"] >= g)).astype(int)
    data["rel_time"] = np.where(data["d"] == 1, data["time"] - g, REF).astype(int)
    kw = dict(yname="y", first_stage=first_stage, treatment="d", cluster="unit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            overall = pf.did2s(data, second_stage="~ d", **kw)
            es = pf.did2s(data, second_stage=f"~ i(rel_time, ref={REF})", **kw)
    except Exception as exc:  # noqa: BLE001 - recorded (TRAP 2)
        return {"error": f"{type(exc).__name__}: {exc}"}
    coef, se = es.coef(), es.se()
    return {
        "overall": {"estimate": float(overall.coef()["d"]), "se": float(overall.se()["d"]),
                    "n_obs": int(overall._N), "G": int(overall._G)},
        "event_study": [{"event_time": int(k.split("::")[1]), "estimate": float(coef[k]),
                         "se": float(se[k])} for k in coef.index],
    }


def main():
    from importlib.metadata import version

    import pyfixest as pf

    out = {
        "meta": {
            "script": "tests/parity/ports/two_stage_did2s.py",
            "source": f"pyfixest {pf.__version__} did2s (port of R did2s by Kyle Butts)",
            "pyfixest": pf.__version__, "numpy": version("numpy"), "pandas": version("pandas"),
            "scipy": version("scipy"), "formulaic": version("formulaic"),
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "calls": (f"did2s(df, yname='y', first_stage=FS, second_stage='~ d' | "
                      f"'~ i(rel_time, ref={REF})', treatment='d', cluster='unit'); FS = "
                      "'~ 0 | unit + time' or '~ x | unit + time' (params.beta not null); d = "
                      f"1{{first_treat > 0 and time >= first_treat}}; rel_time = time - "
                      f"first_treat where d == 1, else {REF} (never and not-yet treated rows "
                      "are the reference, so only h >= 0 is estimated)"),
            "se_convention": ("did2s: sum over unit clusters of s_g s_g' (GMM), no small-sample "
                              "factor; diff-diff's engine multiplies the variance by G/(G-1), "
                              "so ours = did2s * sqrt(G/(G-1)), G = number of units"),
            "runs": ("stock: did2s as shipped (stage-1 lsqr atol=btol=1e-6, MAP fixef_tol=1e-6, "
                     f"singletons dropped). tight: same with {TIGHT} forced inside the script "
                     "(did2s forwards no options to feols)"),
            "tolerance": ("stock: points rel 1e-4 (lsqr's relative stopping rule at 1e-6; "
                          "observed <= 6.6e-6), SEs rel 1e-5 (observed <= 2.4e-7); tight: "
                          "points abs 1e-11, SEs rel 1e-11 (observed ~1e-14); SEs after the "
                          "sqrt(G/(G-1)) factor; see the test"),
            "singleton_trap": ("stock did2s drops singleton stage-1 FE groups; a unit with one "
                               "untreated period then makes did2s raise (case trap_single_pre, "
                               "stock.error); fixef_rm='none' (tight run) fixes it"),
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        df = simulate(spec)
        fs = "~ x | unit + time" if spec["beta"] is not None else "~ 0 | unit + time"
        case = {"params": {k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v)
                           for k, v in spec.items()},
                "first_stage": fs,
                "data": {c: df[c].tolist() for c in df.columns},
                "stock": run(df, fs)}
        with tight():
            case["tight"] = run(df, fs)
        out["cases"][name] = case
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
