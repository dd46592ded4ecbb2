"""Reference values of the boundary local-linear fit from nprobust.

Source: ``nprobust-pkg`` 1.0.0 (the authors' Python release of nprobust;
module ``nprobust``), function ``lprobust`` with ``p=1`` and its defaults
(``deriv=0``, ``rho=1``, ``vce="nn"``, ``nnmatch=3``, ``bwcheck=21``,
``bwregul=1``), evaluated at one point. Generated with Python 3.11,
numpy 2.4, pandas 3.1, scipy 1.17. Tolerances in the test:
rtol 1e-9 on h and b; atol 1e-10 + rtol 1e-9 on the estimates and SEs.

The data are deterministic (no RNG), so the test rebuilds them:
``i = 1..G``, ``d_i = frac(i * 0.6180339887498949)``,
``e_i = sin(7 i) + 0.5 cos(3 i^2)``, ``dy_i = d_i + d_i^2 + e_i``,
``w_i = 1 + (i mod 3)``.

Cases (``CASES``): G in (100, 500, 2500) x kernels (epa, tri, uni) x
(unweighted, weighted) with ``bwselect="mse-dpi"`` at 0; doses rounded to two
decimals (ties, exercising the tie blocks of the nearest-neighbour residuals);
a shifted dose evaluated at its minimum; fixed bandwidths (``h`` alone, and
``h`` with a larger ``b``, and a larger ``h`` with a smaller ``b``); the
residual variants ``vce="hc0"`` to ``"hc3"`` at a fixed ``h`` (a fixed ``h``
because nprobust's selector uses the chosen ``vce`` and ours always uses
nearest neighbours). Each case records nprobust's ``Estimate`` row:
``h, b, N, tau.us, tau.bc, se.us, se.rb``.

Run from the repository root in the venv that has nprobust-pkg (and not this
checkout on ``sys.path``, hence ``-P``):

    /work/venv_nprobust/bin/python -P tests/parity/ports/local_poly_nprobust.py

It writes ``tests/parity/fixtures/local_poly_nprobust.json``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

OUT = "tests/parity/fixtures/local_poly_nprobust.json"
KERNELS = ("epa", "tri", "uni")


def data(G, rounded=False, shift=0.0):
    """The deterministic golden data: dose ``d``, outcome ``dy``, weight ``w``."""
    i = np.arange(1, G + 1, dtype=float)
    d = np.modf(i * 0.6180339887498949)[0]
    e = np.sin(7 * i) + 0.5 * np.cos(3 * i ** 2)
    dy = d + d ** 2 + e
    w = 1.0 + np.arange(1, G + 1) % 3
    if rounded:
        d = np.round(d, 2)
    return d + shift, dy, w


def _cases():
    cases = {}
    for G in (100, 500, 2500):
        for k in KERNELS:
            for wtd in (False, True):
                name = f"G{G}_{k}" + ("_w" if wtd else "")
                cases[name] = dict(G=G, kernel=k, weighted=wtd)
    for k in KERNELS:
        cases[f"rounded_G500_{k}"] = dict(G=500, kernel=k, weighted=False, rounded=True)
    cases["rounded_G500_epa_w"] = dict(G=500, kernel="epa", weighted=True, rounded=True)
    cases["shift_G500_epa"] = dict(G=500, kernel="epa", weighted=False, shift=0.25,
                                   at_min=True)
    cases["fixed_h_G500_epa"] = dict(G=500, kernel="epa", weighted=False, h=0.3)
    cases["fixed_hb_G500_tri_w"] = dict(G=500, kernel="tri", weighted=True, h=0.2, b=0.35)
    cases["fixed_hb_G500_uni"] = dict(G=500, kernel="uni", weighted=False, h=0.4, b=0.25)
    for vce in ("hc0", "hc1", "hc2", "hc3"):
        cases[f"fixed_h_G500_epa_w_{vce}"] = dict(G=500, kernel="epa", weighted=True, h=0.3,
                                                  vce=vce)
    return cases


CASES = _cases()


def case_data(spec):
    """``(x, y, c, weights)`` of one case."""
    x, y, w = data(spec["G"], spec.get("rounded", False), spec.get("shift", 0.0))
    c = float(x.min()) if spec.get("at_min") else 0.0
    return x, y, c, (w if spec["weighted"] else None)


def main():
    from importlib.metadata import version

    from nprobust import lprobust

    out = {"source": f"nprobust-pkg {version('nprobust-pkg')}", "cases": {}}
    for name, spec in CASES.items():
        x, y, c, w = case_data(spec)
        kw = dict(eval=[c], p=1, kernel=spec["kernel"], weights=w, vce=spec.get("vce", "nn"))
        if "h" in spec:
            kw.update(h=spec["h"], b=spec.get("b"))
        else:
            kw.update(bwselect="mse-dpi")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = lprobust(y, x, **kw).Estimate
        row = est.iloc[0]
        out["cases"][name] = {k: float(row[k]) for k in
                              ("h", "b", "N", "tau.us", "tau.bc", "se.us", "se.rb")}
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
