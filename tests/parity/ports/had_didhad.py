"""Reference values of the heterogeneous-adoption DiD event study from did-had.

Source: the PyPI package ``did-had`` 0.2.1 (module ``did_had``; a Python port
of the Stata/R ``did_had`` command of de Chaisemartin, Ciccia,
D'Haultfoeuille & Knau), which calls ``nprobust`` 0.5.0 (``lprobust`` with
``p=1``, ``eval=0``, ``vce="nn"``, ``nnmatch=3``, ``bwselect="mse-dpi"``).
Generated with Python 3.11, numpy 2.4, pandas 3.1, scipy 1.17.

API used: ``DidHad(kernel=..., bw_method="mse-dpi").fit(df, outcome="y",
group="unit", time="year", treatment="d", effects=L, placebo=P,
dynamic=...)``; the rows of ``results.estimates`` are recorded.

Conventions of did-had (what the numbers mean), per horizon ``l`` with
``dY = Y_{F-1+l} - Y_{F-1}`` (placebo: ``Y_{F-1-l} - Y_{F-1}``), running
variable ``D = D_{F-1+l}`` (placebo: the dose of the mirrored post period) and
normaliser ``Dn = D`` (``dynamic=True``: the sum of the doses from ``F`` to
``F-1+l``):

* ``estimate = (mean(dY) - tau.us) / mean(Dn)`` (conventional, not bias
  corrected);
* ``se = se.rb / mean(Dn)`` (nprobust's robust bias-corrected SE);
* ``lb, ub = (mean(dY) - tau.bc) / mean(Dn) -/+ 1.959963984540054 * se``, i.e.
  the CI is centred on the bias-corrected estimate (``alpha`` is stored but
  the critical value is hard-coded to the 95% one);
* ``bw`` = nprobust's ``h``; ``n_bw`` = ``#{D <= h}`` (counted by did-had, not
  nprobust's ``N.h``; the latter is kept as ``n_h_nprobust``);
* ``n`` = number of units; QUG (effects only): ``T = D_(1) / (D_(2) - D_(1))``
  over the positive doses, ``p = 1 / (1 + T)``.

Extra per-row fields from the underlying ``lprobust`` call: ``tau_us``,
``tau_bc``, ``se_rb``, ``n_h_nprobust``, plus ``mean_dy`` and ``mean_dnorm``.

Data are deterministic (no RNG) and rebuilt by ``panel(name)``, which needs
only numpy and pandas.

Run from the repository root in the venv that has did-had (and not this
checkout on ``sys.path``, hence ``-P``):

    /work/venv_didhad/bin/python -P tests/parity/ports/had_didhad.py

It writes ``tests/parity/fixtures/had_didhad.json``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd

OUT = "tests/parity/fixtures/had_didhad.json"
GOLDEN = 0.6180339887498949
N_PERIODS = 8
F_RANK = 5  # treatment starts at t = 5 (year 2005)

PANELS = {
    "A": dict(G=300, dose_power=1),
    "B": dict(G=1000, dose_power=2),
}

CASES = {
    "A_epa_e3_p2": dict(panel="A", kernel="epa", effects=3, placebo=2, dynamic=False),
    "A_epa_e3_p2_dynamic": dict(panel="A", kernel="epa", effects=3, placebo=2, dynamic=True),
    "A_tri_e4_p3": dict(panel="A", kernel="tri", effects=4, placebo=3, dynamic=False),
    "A_uni_e1_p0": dict(panel="A", kernel="uni", effects=1, placebo=0, dynamic=False),
    "B_epa_e4_p2": dict(panel="B", kernel="epa", effects=4, placebo=2, dynamic=False),
}


def panel(name):
    """Long panel (columns unit, year, y, d) for panel ``"A"`` or ``"B"``.

    ``base_g = frac(g * 0.6180339887498949)``, ``a_g = sin(2g)``,
    ``D_{g,t} = 0`` for ``t < 5`` else ``base_g**k * (1 + 0.1 (t - 5))``
    (``k = 1`` in A, ``2`` in B), ``Y_{g,t} = a_g + 0.3 t + (1.5 + 0.5 base_g)
    D_{g,t} + 0.7 sin(5g + 3t) + 0.3 cos(11 g t)``, ``year = 2000 + t``.
    """
    spec = PANELS[name]
    G = spec["G"]
    g = np.repeat(np.arange(1, G + 1, dtype=float), N_PERIODS)
    t = np.tile(np.arange(1, N_PERIODS + 1, dtype=float), G)
    base = np.modf(g * GOLDEN)[0]
    a = np.sin(2 * g)
    d = np.where(t < F_RANK, 0.0, base ** spec["dose_power"] * (1 + 0.1 * (t - F_RANK)))
    y = (a + 0.3 * t + (1.5 + 0.5 * base) * d + 0.7 * np.sin(5 * g + 3 * t)
         + 0.3 * np.cos(11 * g * t))
    return pd.DataFrame({"unit": g.astype(np.int64), "year": (2000 + t).astype(np.int64),
                         "y": y, "d": d})


def _num(v):
    v = float(v)
    return v if np.isfinite(v) else None


def run_case(spec):
    """Fit did-had on one case; returns {row name: {field: value}}."""
    from did_had import DidHad, core

    # Record the raw lprobust outputs that did-had reduces to est/se/CI.
    calls = []
    orig = core.lprobust_rbc_mu_se

    def spy(x, y, **kw):
        out = orig(x=x, y=y, **kw)
        calls.append(dict(tau_us=out[0], tau_bc=out[1], se_rb=out[2], h=out[3],
                          n_h_nprobust=out[4], mean_dy=float(np.mean(y))))
        return out

    core.lprobust_rbc_mu_se = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = DidHad(kernel=spec["kernel"], bw_method="mse-dpi").fit(
                panel(spec["panel"]), outcome="y", group="unit", time="year",
                treatment="d", effects=spec["effects"], placebo=spec["placebo"],
                dynamic=spec["dynamic"])
    finally:
        core.lprobust_rbc_mu_se = orig

    est = res.estimates
    assert len(est) == len(calls)
    wide = panel(spec["panel"]).pivot(index="unit", columns="year", values="d")
    post = [c for c in wide.columns if c >= 2000 + F_RANK]
    rows = {}
    for (_, r), c in zip(est.iterrows(), calls):
        ell = int(r["horizon"])
        assert c["h"] == r["bandwidth"]
        row = {
            "estimate": _num(r["estimate"]), "se": _num(r["se"]),
            "lb": _num(r["ci_lower"]), "ub": _num(r["ci_upper"]),
            "bw": _num(r["bandwidth"]), "n": int(r["n_groups"]),
            "n_bw": int(r["n_in_bw"]),
            "tau_us": c["tau_us"], "tau_bc": c["tau_bc"], "se_rb": c["se_rb"],
            "n_h_nprobust": int(c["n_h_nprobust"]), "mean_dy": c["mean_dy"],
            "mean_dnorm": float(wide[post[:ell]].sum(axis=1).mean() if spec["dynamic"]
                                else wide[post[ell - 1]].mean()),
        }
        if r["type"] == "effect":
            row["qug_T"] = _num(r["qg_T"])
            row["qug_p"] = _num(r["qg_pval"])
        rows[str(r["name"])] = row
    return rows


def main():
    from importlib.metadata import version

    out = {
        "meta": {
            "source": f"did-had {version('did-had')} (module did_had, class DidHad)",
            "nprobust": f"nprobust {version('nprobust')}",
            "numpy": version("numpy"), "pandas": version("pandas"),
            "scipy": version("scipy"),
            "call": ("DidHad(kernel=K, bw_method='mse-dpi').fit(df, outcome='y', "
                     "group='unit', time='year', treatment='d', effects=L, placebo=P, "
                     "dynamic=DYN)"),
            "note": ("estimate = (mean(dY) - tau_us)/mean(Dn) (conventional). se is "
                     "did-had's robust bias-corrected SE se_rb/mean(Dn) (Dn = D, or the "
                     "cumulative dose if dynamic). The CI is centred on the bias-corrected "
                     "estimate (mean(dY) - tau_bc)/mean(Dn), +/- 1.959963984540054*se "
                     "(critical value hard-coded, alpha unused). n_bw = #{D <= bw} "
                     "counted by did-had; n_h_nprobust is nprobust's N.h. qug_T/qug_p only "
                     "on Effect rows: T = D(1)/(D(2)-D(1)) over positive doses, "
                     "p = 1/(1+T)."),
        },
        "cases": {},
    }
    for name, spec in CASES.items():
        out["cases"][name] = {"spec": spec, "rows": run_case(spec)}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
