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

    /work/venv_ports/bin/python benchmarks/parity_cs_ports.py ports --out /tmp/cs_ports.json
    # optional second interpreter; --only keeps just that port
    /work/venv_ports_md041/bin/python benchmarks/parity_cs_ports.py ports \\
        --only moderndid --out /tmp/cs_ports_md041.json

Step 2: fit diff_diff the same way and compare (diff_diff's dev python)::

    /work/venv/bin/python benchmarks/parity_cs_ports.py compare /tmp/cs_ports.json /tmp/cs_ports_md041.json

Every fit is panel mpdta (``lemp`` on ``year``, unit ``countyreal``, cohort
``first.treat``), base period "varying", no anticipation, for control group
never-treated / not-yet-treated x estimation method dr / ipw / reg x no
covariates / ``lpop``: 12 cases. All standard errors are ANALYTIC (ports:
``bstrap=False`` / ``boot=False`` and ``cband=False``; diff_diff:
``n_bootstrap=0``). Each case records ATT(g,t), and the ``simple``,
``dynamic`` (event study), ``group`` and ``calendar`` aggregations with their
overall effects. The mpdta file is diff_diff's bundled copy
(``diff_diff/datasets/data/mpdta.csv``), read with pandas in both steps so
that every package sees the same data.

The comparison prints, per case and port, the number of estimates compared,
the largest absolute difference of the estimates, and the range of SE ratios
(diff_diff / port). diff_diff scales unit influence functions by n/(n-1)
(the ports, like R ``did``, do not), so with n = 500 counties every ratio
should be sqrt(500/499) = 1.0010015; the column ``max|r-k|`` shows the
largest departure from that constant and flags anything beyond it.

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


def cases():
    for control in CONTROLS:
        for method in METHODS:
            for cov in COVARIATES:
                cid = f"{control}/{method}/{'+'.join(cov) or 'nocov'}"
                yield cid, control, method, cov


def _floats(values):
    return [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]


def _agg(labels, att, se, overall_att, overall_se):
    return {"labels": [] if labels is None else [int(round(float(x))) for x in labels],
            "att": [] if att is None else _floats(att), "se": [] if se is None else _floats(se),
            "overall": _floats([overall_att, overall_se])}


# ------------------------------------------------------------------ ports
def fit_csdid(data, control, method, cov):
    from csdid.att_gt import ATTgt

    model = ATTgt(yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                  data=data, control_group=R_CONTROL[control],
                  xformla=("lemp~" + "+".join(cov)) if cov else None, cband=False)
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


def fit_moderndid(data, control, method, cov):
    import moderndid as md

    mp = md.att_gt(data=data, yname="lemp", tname="year", idname="countyreal",
                   gname="first.treat", xformla=("~" + "+".join(cov)) if cov else None,
                   est_method=method, control_group=R_CONTROL[control], boot=False,
                   cband=False, base_period="varying")
    out = {"group_time": {"group": [int(g) for g in mp.groups], "time": [int(t) for t in mp.times],
                          "att": _floats(mp.att_gt), "se": _floats(mp.se_gt)}}
    for kind in KINDS:
        a = md.aggte(mp, type=kind, boot=False, cband=False)
        out[kind] = _agg(a.event_times, a.att_by_event, a.se_by_event, a.overall_att, a.overall_se)
    return out


PORTS = {"csdid": fit_csdid, "moderndid": fit_moderndid}


def run_ports(args):
    import pandas as pd
    from importlib.metadata import version

    data = pd.read_csv(args.data)
    report = {"meta": {"python": platform.python_version(), "executable": sys.executable,
                       "data": str(args.data), "ports": {}},
              "results": {}}
    for name, fit in PORTS.items():
        if args.only and name not in args.only:
            continue
        try:
            __import__(name)
            label = f"{name} {version(name)}"
        except Exception as exc:  # noqa: BLE001 - report why a port is missing
            report["meta"]["ports"][name] = f"not importable: {exc!r}"
            print(f"{name}: not importable ({exc!r})", file=sys.stderr)
            continue
        report["meta"]["ports"][name] = label
        results = report["results"][label] = {}
        for cid, control, method, cov in cases():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results[cid] = fit(data.copy(), control, method, cov)
            except Exception as exc:  # noqa: BLE001 - a failing case is a result too
                results[cid] = {"error": repr(exc)}
            print(f"{label:18s} {cid:34s} {'ERROR ' + results[cid]['error'] if 'error' in results[cid] else 'ok'}",
                  file=sys.stderr)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


# ------------------------------------------------------------- diff_diff
def fit_diff_diff(data, control, method, cov):
    from diff_diff import CallawaySantAnna

    res = CallawaySantAnna(estimation_method=method, control_group=control, n_bootstrap=0,
                           base_period="varying").fit(
        data, outcome="lemp", unit="countyreal", time="year", first_treat="first.treat",
        covariates=list(cov) or None)
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


def compare(args):
    import pandas as pd

    data = pd.read_csv(args.data)
    n_units = data["countyreal"].nunique()
    k = math.sqrt(n_units / (n_units - 1))
    ours = {cid: _flatten(fit_diff_diff(data.copy(), control, method, cov))
            for cid, control, method, cov in cases()}
    ports = {}
    for path in args.ports_json:
        report = json.loads(Path(path).read_text())
        for name, note in report["meta"]["ports"].items():
            if note.startswith("not importable"):
                print(f"# {path}: {name} {note}")
        for label, results in report["results"].items():
            ports[f"{label} (py{report['meta']['python']})"] = results

    header = (f"{'case':32s} {'port':26s} {'n':>4s} {'max|dEst|':>10s} {'SE ratio min':>12s} "
              f"{'SE ratio max':>12s} {'max|r-k|':>9s}  note")
    print(f"SE ratio r = diff_diff SE / port SE; k = sqrt(n/(n-1)) = {k:.7f} (n = {n_units})")
    print(header)
    print("-" * len(header))
    rows, worst = [], {}
    for cid, *_ in cases():
        for label, results in ports.items():
            fit = results.get(cid)
            if fit is None or "error" in fit:
                note = "missing" if fit is None else "port error: " + fit["error"][:80]
                print(f"{cid:32s} {label:26s} {'':>4s} {'':>10s} {'':>12s} {'':>12s} {'':>9s}  {note}")
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
            print(f"{cid:32s} {label:26s} {len(d_est):4d} {max_d:10.2e} {r_min:12.7f} "
                  f"{r_max:12.7f} {dev[0]:9.2e}  {note}")
            rows.append({"case": cid, "port": label, "n": len(d_est), "max_abs_est_diff": max_d,
                         "se_ratio_min": r_min, "se_ratio_max": r_max, "max_abs_ratio_minus_k": dev[0],
                         "note": note})
            w = worst.setdefault(label, [0.0, 0.0])
            w[0] = max(w[0], max_d)
            w[1] = max(w[1], dev[0])
    print("-" * len(header))
    for label, (d, dv) in worst.items():
        print(f"{'ALL CASES':32s} {label:26s} {'':4s} {d:10.2e} {'':12s} {'':12s} {dv:9.2e}")
    if args.out:
        Path(args.out).write_text(json.dumps({"k": k, "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("ports", help="fit with csdid / moderndid (run with the ports' python)")
    p.add_argument("--out", default="/tmp/parity_cs_ports.json")
    p.add_argument("--only", nargs="+", choices=sorted(PORTS), help="ports to run (default: all)")
    p.add_argument("--data", default=str(MPDTA))
    c = sub.add_parser("compare", help="fit diff_diff and compare (run with diff_diff's python)")
    c.add_argument("ports_json", nargs="*", default=["/tmp/parity_cs_ports.json"])
    c.add_argument("--out", default=None, help="also write the comparison as JSON")
    c.add_argument("--data", default=str(MPDTA))
    args = parser.parse_args(argv)
    (run_ports if args.mode == "ports" else compare)(args)


if __name__ == "__main__":
    main()
