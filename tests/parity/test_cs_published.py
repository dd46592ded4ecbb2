"""CallawaySantAnna against the numbers R ``did`` publishes for ``mpdta``.

The fixture ``fixtures/did_mpdta_published.json`` holds ATT(g,t) tables,
aggregations and pre-test p-values copied verbatim from the did package's
README, its "Getting Started" vignette and its ``att_gt`` / ``aggte``
reference pages (``meta.sources`` cites each page version). R prints
estimates to 4 decimals, so point estimates must agree within
``meta.tolerances.estimate_abs``. R's printed SEs are multiplier-bootstrap
SEs (1000 random draws), so our analytic SEs are compared with a relative
tolerance ``se_rel`` (see ``meta.tolerances.se_rel_justification``). The
pre-test p-value R prints uses the analytic influence-function variance and
is deterministic; it is recomputed here from our influence functions.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from diff_diff import CallawaySantAnna, load_mpdta

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "did_mpdta_published.json").read_text())
TOL = FIXTURE["meta"]["tolerances"]
EST_ABS = TOL["estimate_abs"] + 1e-12  # published rounding (+ float slack)
SE_REL = TOL["se_rel"]
P_ABS = TOL["pretest_pvalue_abs"] + 1e-12
CASES = FIXTURE["cases"]


@lru_cache(maxsize=None)
def _fit(method: str, control: str, covariates: tuple[str, ...]):
    return CallawaySantAnna(estimation_method=method, control_group=control).fit(
        load_mpdta(), outcome="lemp", unit="countyreal", time="year",
        first_treat="first.treat", covariates=list(covariates) or None,
    )


def _result(case, method=None):
    c = case["call"]
    assert c["base_period"] == "varying"
    return _fit(method or c["estimation_method"], c["control_group"], tuple(c["covariates"]))


def _rows(frame, key_cols):
    return {tuple(int(v) for v in r[:-2]): (float(r[-2]), float(r[-1]))
            for r in frame[key_cols + ["estimate", "se"]].itertuples(index=False)}


def _pairs(res, case):
    """(label, published {att, se}, ours (estimate, se)) for every published number of a case."""
    out = []
    gt = _rows(res.group_time_effects, ["group", "time"])
    for p in case["group_time"]:
        out.append((f"ATT({p['group']},{p['time']})", p, gt[(p["group"], p["time"])]))
    if case["simple"] is not None:
        out.append(("simple", case["simple"], (res.overall_att, res.overall_se)))
    blocks = [("dynamic", case["dynamic"], {}, "event_time"),
              ("group", case["group"], {}, "group")]
    blocks += [(o["kind"], o, o["options"], o["label"]) for o in case["other_aggregations"]]
    for kind, pub, options, label in blocks:
        if pub is None:
            continue
        agg = res.aggregate(kind, **options)
        tag = kind + "".join(f"[{k}={v}]" for k, v in options.items())
        ours = _rows(agg.effects, [label])
        for p in pub["effects"]:
            out.append((f"{tag} {label}={p[label]}", p, ours[(p[label],)]))
        out.append((f"{tag} overall", pub["overall"], (agg.overall_att, agg.overall_se)))
    return out


def _check(pairs, what):
    bad = []
    for label, pub, (est, se) in pairs:
        if what == "estimate" and not abs(est - pub["att"]) <= EST_ABS:
            bad.append(f"{label}: ours {est:.6f} vs published {pub['att']} (diff {est - pub['att']:+.2e})")
        if what == "se" and not abs(se / pub["se"] - 1) <= SE_REL:
            bad.append(f"{label}: ours {se:.5f} vs published {pub['se']} (ratio {se / pub['se']:.3f})")
    assert not bad, f"{len(bad)} of {len(pairs)} {what}s off:\n" + "\n".join(bad)


IDS = [c["id"] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_point_estimates_match_published_rounding(case):
    _check(_pairs(_result(case), case), "estimate")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_analytic_ses_match_published_bootstrap_ses(case):
    _check(_pairs(_result(case), case), "se")


@pytest.mark.parametrize("case", [c for c in CASES if c["pretest_pvalue"] is not None],
                         ids=[c["id"] for c in CASES if c["pretest_pvalue"] is not None])
def test_parallel_trends_pretest_pvalue(case):
    """R's Wald pre-test over the pre-treatment ATT(g,t) cells, V = IF'IF / n (no n/(n-1))."""
    res = _result(case)
    gt = res.group_time_effects
    pre = ~gt["post"].to_numpy(dtype=bool)
    att = gt["estimate"].to_numpy()[pre]
    psi = res.influence_functions[:, pre]  # sum scale: att - ATT ~ psi.sum(0)
    wald = float(att @ np.linalg.solve(psi.T @ psi, att))
    p = float(stats.chi2.sf(wald, pre.sum()))
    assert abs(p - case["pretest_pvalue"]) <= P_ABS, (p, case["pretest_pvalue"])


NOCOV = [c for c in CASES if not c["call"]["covariates"]]


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
@pytest.mark.parametrize("case", NOCOV, ids=[c["id"] for c in NOCOV])
def test_every_method_reproduces_nocovariate_numbers(case, method):
    """Without covariates dr, ipw and reg are the same unconditional DiD (att_gt docs)."""
    pairs = _pairs(_result(case, method), case)
    _check(pairs, "estimate")
    _check(pairs, "se")


def test_fixture_covers_the_published_runs():
    calls = {(c["call"]["estimation_method"], c["call"]["control_group"], tuple(c["call"]["covariates"]))
             for c in CASES}
    assert calls == {("reg", "never_treated", ()), ("dr", "never_treated", ()),
                     ("dr", "never_treated", ("lpop",)), ("dr", "not_yet_treated", ("lpop",))}
    n = sum(len(p) for c in CASES for p in [_pairs(_result(c), c)])
    assert n >= 100
