"""Reference values of the imputation estimator from other implementations.

* diff-diff 3.13.0 ``ImputationDiD`` (its point estimates and unit-clustered
  Theorem-3 standard errors agree with R ``didimputation``; R's packages are
  not on Debian, so this is the available reference): overall ATT, event
  study and group effects with standard errors, for balanced and unbalanced
  panels, a time-varying covariate, sampling weights, a stratified cluster
  design, ``cluster=``, anticipation, the three auxiliary partitions and the
  leave-one-out refinement (BJS Appendix A.9).
* pyfixest ``did2s`` (Gardner's two-stage estimator, whose point estimates
  equal the imputation estimator's): overall and event-study points on the
  balanced panels without the 2004 cohort (pyfixest 0.60.0 fails when a unit
  has a single untreated period, as mpdta's 2004 cohort does, and on
  unbalanced panels).

The data are R ``did``'s mpdta with deterministic additions (``frame``), so
the test rebuilds them without a stored copy. Run from the repository root,
once per source, each in an environment that has it (and not this checkout on
``sys.path``, hence ``-P``):

    python -P tests/parity/ports/imputation_ports.py dd313     # pip install diff-diff==3.13.0
    python -P tests/parity/ports/imputation_ports.py pyfixest  # pip install pyfixest==0.60.0

Each run updates its own part of ``tests/parity/fixtures/imputation_ports.json``.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/imputation_ports.json"
MPDTA = "diff_diff/datasets/data/mpdta.csv"
ARGS = dict(outcome="lemp", unit="countyreal", time="year", first_treat="first.treat")

# name: (unbalanced, covariates, estimator settings, survey design fields)
SCENARIOS = {
    "balanced": (False, None, {}, None),
    "covariate": (False, ["x"], {}, None),
    "unbalanced": (True, None, {}, None),
    "unbalanced_covariate": (True, ["x"], {}, None),
    "weights": (False, ["x"], {}, {"weights": "w"}),
    "weights_unbalanced": (True, None, {}, {"weights": "w"}),
    "survey": (False, ["x"], {}, {"weights": "w", "strata": "stratum", "psu": "psu"}),
    "cluster": (False, None, {"cluster": "psu"}, None),
    "anticipation": (False, None, {"anticipation": 1}, None),
    "partition_cohort": (True, None, {"aux_partition": "cohort"}, None),
    "partition_horizon": (True, ["x"], {"aux_partition": "horizon"}, None),
    "leave_one_out": (True, ["x"], {"leave_one_out": True}, None),
    "leave_one_out_cohort": (False, None, {"leave_one_out": True, "aux_partition": "cohort"},
                             None),
}


def frame(unbalanced: bool) -> pd.DataFrame:
    """mpdta plus a time-varying covariate, weights, strata and PSUs (all deterministic)."""
    df = pd.read_csv(MPDTA)
    c, t = df["countyreal"], df["year"]
    df["x"] = df["lpop"] + 0.05 * (t - 2003) * (c % 7 - 3) + 0.1 * np.sin(c * t)
    df["w"] = 1.0 + 0.5 * (c % 5)
    df["stratum"] = c % 4
    df["psu"] = (c % 4).astype(str) + "-" + (c // 400).astype(str)
    if unbalanced:
        df = df[(c * 7 + t) % 11 != 0].reset_index(drop=True)
    return df


def from_dd313() -> dict:
    import diff_diff as dd

    assert dd.__version__ == "3.13.0", dd.__version__
    out = {"version": dd.__version__}
    for name, (unbalanced, covariates, settings, design) in SCENARIOS.items():
        df = frame(unbalanced)
        survey = dd.SurveyDesign(**design) if design else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = dd.ImputationDiD(**settings).fit(df, covariates=covariates, survey_design=survey,
                                                   aggregate="all", **ARGS)
        out[name] = {
            "overall": [res.overall_att, res.overall_se],
            "event_study": {str(h): [v["effect"], v["se"]]
                            for h, v in sorted(res.event_study_effects.items())
                            if np.isfinite(v["effect"]) and v.get("n_obs", 1) > 0},
            "group": {str(int(g)): [v["effect"], v["se"]]
                      for g, v in sorted(res.group_effects.items())},
        }
    return out


def from_pyfixest() -> dict:
    import pyfixest as pf

    out = {"version": pf.__version__}
    for name in ("balanced", "covariate"):
        _, covariates, _, _ = SCENARIOS[name]
        df = frame(False)
        df = df[df["first.treat"] != 2004].reset_index(drop=True)  # see the module docstring
        g = df["first.treat"]
        df["treat"] = ((g > 0) & (df["year"] >= g)).astype(int)
        df["rel"] = np.where(g > 0, df["year"] - g, -1000).astype(int)
        first = "~ 0" + "".join(f" + {c}" for c in covariates or []) + " | countyreal + year"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            overall = pf.did2s(df, yname="lemp", first_stage=first, second_stage="~ treat",
                               treatment="treat", cluster="countyreal")
            es = pf.did2s(df, yname="lemp", first_stage=first,
                          second_stage="~ i(rel, ref=-1000)", treatment="treat",
                          cluster="countyreal")
        coef = es.coef()
        out[name] = {
            "overall": float(overall.coef()["treat"]),
            "event_study": {k.split("::")[1]: float(v) for k, v in coef.items()
                            if int(k.split("::")[1]) >= 0},
        }
    return out


def main(source: str) -> None:
    if not os.path.exists(MPDTA):
        sys.exit("run from the repository root")
    data = json.load(open(OUT)) if os.path.exists(OUT) else {}
    data[source] = {"dd313": from_dd313, "pyfixest": from_pyfixest}[source]()
    data["meta"] = {
        "script": "tests/parity/ports/imputation_ports.py",
        "tolerance": "points abs 1e-9 (pyfixest: 1e-5, its demeaning tolerance); standard "
                     "errors rtol 1e-8 (see the test for how each is compared)",
    }
    with open(OUT, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
