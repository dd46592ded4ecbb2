"""Cross-check ``diff_diff.CallawaySantAnna`` against the PyPI ports of R ``did``.

The ports are ``csdid`` (``csdid.att_gt.ATTgt``) and ``moderndid``
(``moderndid.att_gt`` / ``moderndid.aggte``). They cannot share a virtualenv
with diff_diff's dev environment (their pins would leak into it), so this
script runs in two steps, each with a different interpreter.

Step 0: create the ports' venv outside the repository (once)::

    python3 -m venv /work/venv_ports
    /work/venv_ports/bin/pip install csdid moderndid

  On Python 3.11 pip resolves ``moderndid`` 0.2.0: every later release
  (0.3.0 ... 0.4.1) declares ``Requires-Python >=3.12``. To also try the newest
  one on 3.11 (unsupported by its authors), put it in a second venv without
  letting pip re-resolve its dependencies::

    python3 -m venv /work/venv_ports_md041
    /work/venv_ports/bin/pip freeze | grep -v -E '^(moderndid|csdid|drdid)=' > /tmp/req.txt
    /work/venv_ports_md041/bin/pip install -r /tmp/req.txt
    /work/venv_ports_md041/bin/pip install --no-deps --ignore-requires-python moderndid==0.4.1

Step 1: fit mpdta with every port that imports (ports' python)::

    /work/venv_ports/bin/python benchmarks/parity_cs_ports.py ports \\
        --only csdid moderndid moderndid-rc-route --out /tmp/cs_ports.json
    # optional second interpreter; --only keeps just that port
    /work/venv_ports_md041/bin/python benchmarks/parity_cs_ports.py ports \\
        --only moderndid --out /tmp/cs_ports_md041.json

Step 2: fit diff_diff the same way and compare (diff_diff's dev python)::

    /work/venv/bin/python benchmarks/parity_cs_ports.py compare /tmp/cs_ports.json /tmp/cs_ports_md041.json

``--designs`` (both steps) restricts the run to some of three designs, each
with 12 cases: control group never-treated / not-yet-treated x estimation
method dr / ipw / reg x no covariates / ``lpop``; base period "varying", no
anticipation; outcome ``lemp`` on ``year``, cohort ``first.treat``.

* ``panel`` (case ids ``control/method/cov``): balanced mpdta, unit
  ``countyreal``; the panel 2x2 estimators.
* ``rc`` (ids ``rc/...``): mpdta as repeated cross-sections, every one of the
  2,500 rows a separate observation (ports: ``panel=False`` and no idname, as
  R ``did`` numbers the rows itself; diff_diff: ``panel=False, unit=None``);
  the RC estimators ``reg_did_rc`` / ``std_ipw_did_rc`` / ``drdid_rc``.
* ``unbal`` (ids ``unbal/...``): mpdta minus ``N_DROP`` = 150 rows drawn with
  ``random.Random(SEED_DROP)`` (the stdlib generator is stable across Python
  and numpy versions; the ports' JSON records the dropped rows and ``compare``
  refuses a file that dropped other ones), with R's
  ``allow_unbalanced_panel=TRUE`` (ports: ``panel=True,
  allow_unbalanced_panel=True``; diff_diff: ``allow_unbalanced_panel=True``).
  moderndid 0.2.0 fails on that route (``TypeError``: it indexes an outcome
  tensor it never builds for unbalanced panels); the opt-in port
  ``moderndid-rc-route`` reaches the same internal code by ``panel=False``
  with ``idname``, as R does internally (its aggregated SEs are off, see below).

All standard errors are ANALYTIC (ports: ``bstrap=False`` / ``boot=False`` and
``cband=False``; diff_diff: ``n_bootstrap=0``). Each case records ATT(g,t),
and the ``simple``, ``dynamic`` (event study), ``group`` and ``calendar``
aggregations with their overall effects. The mpdta file is diff_diff's
bundled copy (``diff_diff/datasets/data/mpdta.csv``), read with pandas in both
steps so that every package sees the same data.

The comparison prints, per case and port, the number of estimates compared,
the largest absolute difference of the estimates, and the range of SE ratios
(diff_diff / port). diff_diff scales influence functions by n/(n-1) (the
ports, like R ``did``, do not), with n the number of sampled units: counties
for ``panel`` and ``unbal`` (k = sqrt(500/499) = 1.0010015), rows for ``rc``
(k = sqrt(2500/2499) = 1.0002001). The column ``max|r-k|`` shows the largest
departure from k over all estimates and flags anything beyond 1e-6;
``gt|r-k|`` is the same over the ATT(g,t) alone (aggregates excluded).

Known differences (all estimates agree to ~1e-12):

* ``rc`` and ``unbal`` with ``dr`` and ``lpop``: csdid 0.4.3 and moderndid
  0.4.1 SEs differ from diff_diff by up to ~0.1% (rc) / ~1% (unbal);
  moderndid 0.2.0 agrees to k. R ``DRDID::drdid_rc`` adds the estimation
  effect of the pre-period outcome regressions with a plus sign where the
  derivative of the estimator has a minus (its pre-period means enter the
  ATT negatively); diff_diff and moderndid 0.2.0 reproduce R, csdid 0.4.3
  (and its ``drdid``) and moderndid 0.4.1 flip that sign.
* ``moderndid-rc-route`` (0.2.0): ATT(g,t) SEs agree to k, but aggregations
  that weight cohorts are off by up to ~0.5% even without covariates: the
  unit-level cohort vector it hands to ``aggte`` is not in the unit order of
  its influence-function rows, which misaligns the cohort-share term.

``ports`` writes JSON to ``--out`` (default ``/tmp/parity_cs_ports.json``);
``compare`` prints the table and, with ``--out``, also writes it as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import platform
import sys
import warnings
from pathlib import Path

MPDTA = Path(__file__).resolve().parents[1] / "diff_diff" / "datasets" / "data" / "mpdta.csv"
CONTROLS = ("never_treated", "not_yet_treated")
METHODS = ("dr", "ipw", "reg")
COVARIATES = ((), ("lpop",))
KINDS = ("simple", "dynamic", "group", "calendar")
R_CONTROL = {"never_treated": "nevertreated", "not_yet_treated": "notyettreated"}
DESIGNS = ("panel", "rc", "unbal")
# Unbalanced panel: drop N_DROP rows of mpdta chosen by random.Random(SEED_DROP). The
# stdlib Mersenne Twister (random.sample) is stable across Python versions and
# does not depend on the numpy installed in either venv; the dropped row
# positions are also written to the ports' JSON and checked by ``compare``.
N_DROP = 150
SEED_DROP = 20240611


def cases(designs=DESIGNS):
    """(case id, design, control, method, covariates). Panel ids keep their old form."""
    for design in designs:
        prefix = "" if design == "panel" else f"{design}/"
        for control in CONTROLS:
            for method in METHODS:
                for cov in COVARIATES:
                    cid = f"{prefix}{control}/{method}/{'+'.join(cov) or 'nocov'}"
                    yield cid, design, control, method, cov


def dropped_rows(n_rows):
    import random

    return sorted(random.Random(SEED_DROP).sample(range(n_rows), N_DROP))


def design_data(data, design):
    """The data one design sees: the full panel, or mpdta minus the dropped rows."""
    if design == "unbal":
        drop = set(dropped_rows(len(data)))
        keep = [i for i in range(len(data)) if i not in drop]
        return data.iloc[keep].reset_index(drop=True)
    return data.copy()


def _floats(values):
    return [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]


def _agg(labels, att, se, overall_att, overall_se):
    return {"labels": [] if labels is None else [int(round(float(x))) for x in labels],
            "att": [] if att is None else _floats(att), "se": [] if se is None else _floats(se),
            "overall": _floats([overall_att, overall_se])}


# ------------------------------------------------------------------ ports
def fit_csdid(data, design, control, method, cov):
    from csdid.att_gt import ATTgt

    # rc: no idname (csdid refuses a repeated idname with panel=False, and R did
    # numbers the rows itself); unbal: R's allow_unbalanced_panel=TRUE.
    model = ATTgt(yname="lemp", tname="year", idname=None if design == "rc" else "countyreal",
                  gname="first.treat", data=data, control_group=R_CONTROL[control],
                  xformla=("lemp~" + "+".join(cov)) if cov else None, cband=False,
                  panel=design != "rc", allow_unbalanced_panel=design == "unbal")
    with contextlib.redirect_stdout(io.StringIO()):  # csdid prints every summary
        model.fit(est_method=method, base_period="varying", bstrap=False)
        res = model.results
        out = {"group_time": {"group": [int(g) for g in res["group"]],
                              "time": [int(t) for t in res["year"]],
                              "att": _floats(res["att"]), "se": _floats(res["se"])}}
        for kind in KINDS:
            model.aggte(typec=kind, bstrap=False, cband=False)
            a = model.atte
            out[kind] = _agg(a["egt"], a["att_egt"], a["se_egt"], a["overall_att"], a["overall_se"])
    return out


def _moderndid_results(md, mp):
    """ATT(g,t) and the aggregations of one ``moderndid.att_gt`` fit (analytic SEs)."""
    out = {"group_time": {"group": [int(g) for g in mp.groups], "time": [int(t) for t in mp.times],
                          "att": _floats(mp.att_gt), "se": _floats(mp.se_gt)}}
    for kind in KINDS:
        a = md.aggte(mp, type=kind, boot=False, cband=False)
        out[kind] = _agg(a.event_times, a.att_by_event, a.se_by_event, a.overall_att, a.overall_se)
    return out


def fit_moderndid(data, design, control, method, cov):
    import moderndid as md

    mp = md.att_gt(data=data, yname="lemp", tname="year",
                   idname=None if design == "rc" else "countyreal",
                   gname="first.treat", xformla=("~" + "+".join(cov)) if cov else None,
                   est_method=method, control_group=R_CONTROL[control], boot=False,
                   cband=False, base_period="varying", panel=design != "rc",
                   allow_unbalanced_panel=design == "unbal")
    return _moderndid_results(md, mp)


def fit_moderndid_rc_route(data, design, control, method, cov):
    """Unbalanced panel through moderndid's repeated-cross-section path, keyed by unit.

    R ``did`` implements ``allow_unbalanced_panel=TRUE`` by switching to its
    repeated-cross-section code with ``.rowid`` = the unit id (``panel`` FALSE,
    ``true_repeated_cross_sections`` FALSE). moderndid 0.2.0 fails on the public
    route (``panel=True, allow_unbalanced_panel=True`` indexes an outcome tensor
    it never built), but ``panel=False`` with an ``idname`` reaches the same
    internal path: cell influence values scaled by n_units/n_rows and summed by
    unit, cohort shares over units.
    """
    import moderndid as md

    mp = md.att_gt(data=data, yname="lemp", tname="year", idname="countyreal",
                   gname="first.treat", xformla=("~" + "+".join(cov)) if cov else None,
                   est_method=method, control_group=R_CONTROL[control], boot=False,
                   cband=False, base_period="varying", panel=False, allow_unbalanced_panel=True)
    return _moderndid_results(md, mp)


# name -> (distribution, fit, designs it runs, label suffix, run without --only)
PORTS = {"csdid": ("csdid", fit_csdid, DESIGNS, "", True),
         "moderndid": ("moderndid", fit_moderndid, DESIGNS, "", True),
         # opt-in: a workaround for moderndid 0.2.0 only (0.4.1 supports the public route
         # and gives nonsense on this one)
         "moderndid-rc-route": ("moderndid", fit_moderndid_rc_route, ("unbal",), " panel=F", False)}


def run_ports(args):
    import pandas as pd
    from importlib.metadata import version

    data = pd.read_csv(args.data)
    report = {"meta": {"python": platform.python_version(), "executable": sys.executable,
                       "data": str(args.data), "ports": {}, "designs": list(args.designs),
                       "unbal_dropped_rows": dropped_rows(len(data))},
              "results": {}}
    for name, (dist, fit, port_designs, suffix, default) in PORTS.items():
        if (name not in args.only) if args.only else not default:
            continue
        try:
            __import__(dist)
            label = f"{dist} {version(dist)}{suffix}"
        except Exception as exc:  # noqa: BLE001 - report why a port is missing
            report["meta"]["ports"][name] = f"not importable: {exc!r}"
            print(f"{name}: not importable ({exc!r})", file=sys.stderr)
            continue
        report["meta"]["ports"][name] = label
        results = report["results"][label] = {}
        for cid, design, control, method, cov in cases(args.designs):
            if design not in port_designs:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results[cid] = fit(design_data(data, design), design, control, method, cov)
            except Exception as exc:  # noqa: BLE001 - a failing case is a result too
                results[cid] = {"error": repr(exc)}
            print(f"{label:18s} {cid:34s} {'ERROR ' + results[cid]['error'] if 'error' in results[cid] else 'ok'}",
                  file=sys.stderr)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


# ------------------------------------------------------------- diff_diff
def fit_diff_diff(data, design, control, method, cov):
    from diff_diff import CallawaySantAnna

    res = CallawaySantAnna(estimation_method=method, control_group=control, n_bootstrap=0,
                           base_period="varying", panel=design != "rc",
                           allow_unbalanced_panel=design == "unbal").fit(
        data, outcome="lemp", unit=None if design == "rc" else "countyreal", time="year",
        first_treat="first.treat", covariates=list(cov) or None)
    gt = res.group_time_effects
    out = {"group_time": {"group": [int(g) for g in gt["group"]], "time": [int(t) for t in gt["time"]],
                          "att": _floats(gt["estimate"]), "se": _floats(gt["se"])}}
    for kind in KINDS:
        agg = res.aggregate(kind)
        eff = agg.effects
        label = {"dynamic": "event_time", "group": "group", "calendar": "time"}.get(kind)
        out[kind] = _agg(eff[label] if label else None, eff["estimate"] if label else None,
                         eff["se"] if label else None, agg.overall_att, agg.overall_se)
    return out


def _flatten(fit):
    """{key: (estimate, se)} for every number of one case."""
    flat = {}
    gt = fit["group_time"]
    for g, t, a, s in zip(gt["group"], gt["time"], gt["att"], gt["se"]):
        flat[("gt", g, t)] = (a, s)
    for kind in KINDS:
        block = fit[kind]
        for lab, a, s in zip(block["labels"], block["att"], block["se"]):
            flat[(kind, lab)] = (a, s)
        flat[(kind, "overall")] = tuple(block["overall"])
    return flat


def _design_of(cid):
    head = cid.split("/")[0]
    return head if head in DESIGNS else "panel"


def _scale(data, design):
    """n of the n/(n-1) factor diff_diff applies: units (panel, unbal) or rows (rc)."""
    d = design_data(data, design)
    return len(d) if design == "rc" else d["countyreal"].nunique()


def compare(args):
    import pandas as pd

    data = pd.read_csv(args.data)
    designs = tuple(args.designs)
    scale = {design: _scale(data, design) for design in designs}
    kfac = {design: math.sqrt(n / (n - 1)) for design, n in scale.items()}
    ours = {}
    for cid, design, control, method, cov in cases(designs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours[cid] = _flatten(fit_diff_diff(design_data(data, design), design, control,
                                               method, cov))
    ports = {}
    for path in args.ports_json:
        report = json.loads(Path(path).read_text())
        for name, note in report["meta"]["ports"].items():
            if note.startswith("not importable"):
                print(f"# {path}: {name} {note}")
        dropped = report["meta"].get("unbal_dropped_rows")
        if dropped is not None and dropped != dropped_rows(len(data)):
            raise SystemExit(f"{path}: its unbalanced panel dropped other rows than this run")
        for label, results in report["results"].items():
            ports[f"{label} (py{report['meta']['python']})"] = results

    header = (f"{'case':38s} {'port':35s} {'n':>4s} {'max|dEst|':>10s} {'SE ratio min':>12s} "
              f"{'SE ratio max':>12s} {'max|r-k|':>9s} {'gt|r-k|':>9s}  note")
    print("SE ratio r = diff_diff SE / port SE; k = sqrt(n/(n-1)):")
    for design in designs:
        what = {"panel": "units, balanced mpdta", "rc": "rows, mpdta as repeated cross-sections",
                "unbal": f"units, mpdta minus {N_DROP} rows (seed {SEED_DROP})"}[design]
        print(f"  {design:5s} k = {kfac[design]:.7f} (n = {scale[design]} {what})")
    print(header)
    print("-" * len(header))
    rows, worst = [], {}
    for cid, design, *_ in cases(designs):
        k = kfac[design]
        for label, results in ports.items():
            fit = results.get(cid)
            if fit is None and not any(_design_of(key) == design for key in results):
                continue  # this port does not run this design
            if fit is None or "error" in fit:
                note = "missing" if fit is None else "port error: " + fit["error"][:80]
                print(f"{cid:38s} {label:35s} {'':>4s} {'':>10s} {'':>12s} {'':>12s} {'':>9s} {'':>9s}  {note}")
                rows.append({"case": cid, "port": label, "note": note})
                continue
            theirs = _flatten(fit)
            mine = ours[cid]
            keys = sorted(set(mine) | set(theirs), key=str)
            missing = [key for key in keys if key not in mine or key not in theirs]
            both = [key for key in keys if key in mine and key in theirs]
            d_est, ratios, nan_mismatch = [], [], []
            for key in both:
                (a1, s1), (a2, s2) = mine[key], theirs[key]
                if a1 is None or a2 is None:
                    if (a1 is None) != (a2 is None):
                        nan_mismatch.append(key)
                    continue
                d_est.append((abs(a1 - a2), key))
                if s1 is not None and s2 is not None and s2 > 0:
                    ratios.append((s1 / s2, key))
                elif (s1 is None) != (s2 is None):
                    nan_mismatch.append(key)
            first = lambda pair: pair[0]  # noqa: E731 - keys mix ints and strings
            worst_d = max(d_est, key=first, default=(float("nan"), None))
            max_d = worst_d[0]
            r_min = min(ratios, key=first, default=(float("nan"), None))[0]
            r_max = max(ratios, key=first, default=(float("nan"), None))[0]
            dev = max(((abs(r - k), key) for r, key in ratios), key=first,
                      default=(float("nan"), None))
            dev_gt = max((abs(r - k) for r, key in ratios if key[0] == "gt"), default=float("nan"))
            flags = []
            if max_d > 1e-8:
                flags.append(f"est beyond 1e-8 at {worst_d[1]}")
            if dev[0] > 1e-6:
                flags.append(f"SE ratio beyond k at {dev[1]}")
            if missing:
                flags.append(f"{len(missing)} keys in one side only: {missing[:4]}")
            if nan_mismatch:
                flags.append(f"NaN mismatch {nan_mismatch[:4]}")
            note = "; ".join(flags) or "ok"
            print(f"{cid:38s} {label:35s} {len(d_est):4d} {max_d:10.2e} {r_min:12.7f} "
                  f"{r_max:12.7f} {dev[0]:9.2e} {dev_gt:9.2e}  {note}")
            rows.append({"case": cid, "port": label, "n": len(d_est), "max_abs_est_diff": max_d,
                         "se_ratio_min": r_min, "se_ratio_max": r_max, "max_abs_ratio_minus_k": dev[0],
                         "max_abs_ratio_minus_k_gt": dev_gt, "note": note})
            w = worst.setdefault((design, label), [0.0, 0.0, 0.0])
            w[0] = max(w[0], max_d)
            w[1] = max(w[1], dev[0])
            w[2] = max(w[2], dev_gt)
    print("-" * len(header))
    for (design, label), (d, dv, dvg) in worst.items():
        print(f"{'ALL ' + design + ' CASES':38s} {label:35s} {'':4s} {d:10.2e} {'':12s} {'':12s} "
              f"{dv:9.2e} {dvg:9.2e}")
    if args.out:
        Path(args.out).write_text(json.dumps({"k": kfac, "n": scale, "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("ports", help="fit with csdid / moderndid (run with the ports' python)")
    p.add_argument("--out", default="/tmp/parity_cs_ports.json")
    p.add_argument("--only", nargs="+", choices=sorted(PORTS),
                   help="ports to run (default: csdid and moderndid; moderndid-rc-route is opt-in)")
    p.add_argument("--data", default=str(MPDTA))
    p.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS),
                   help="panel (balanced), rc (repeated cross-sections), unbal (unbalanced panel)")
    c = sub.add_parser("compare", help="fit diff_diff and compare (run with diff_diff's python)")
    c.add_argument("ports_json", nargs="*", default=["/tmp/parity_cs_ports.json"])
    c.add_argument("--out", default=None, help="also write the comparison as JSON")
    c.add_argument("--data", default=str(MPDTA))
    c.add_argument("--designs", nargs="+", choices=DESIGNS, default=list(DESIGNS))
    args = parser.parse_args(argv)
    (run_ports if args.mode == "ports" else compare)(args)


if __name__ == "__main__":
    main()
