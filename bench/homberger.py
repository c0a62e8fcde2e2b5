"""Gehring–Homberger VRPTW (200/400/1000 customers): ours vs PyVRP vs VROOM on the same matrix.

The instances are in Solomon's format (``bench.solomon`` reads and builds them: one integer matrix
round(euclid × 100), windows and service × 100, the instance's fleet and capacity, distance
only, everyone must be served). Data: ``../shared/benchmarks/homberger/`` next to the repository
(``homberger_200/``, ``homberger_400/``, ``homberger_1000/``, ``BKS.json``), or ``--dir`` /
``HOMBERGER_DIR``. For each instance and budget, in one run: ours (``dispatch.optimizer.solve``,
wall time measured around the call, so model building is included), PyVRP (``MaxRuntime``,
best of ``--pyvrp-runs`` seeds at once) and VROOM (pyvroom, exploration 5, 2 threads, once per
instance: it has no time limit). Every plan goes through ``dispatch.feasibility.check``.

    python -m bench.homberger --instances c1_10_1,r1_10_1,rc2_10_1 --budgets 1,10,30
    python -m bench.homberger --size 200 --sample 6 --budgets 10 --workers 0 --pyvrp-runs 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from bench import emit
from bench.solomon import SCALE, build_problem, read_solomon, run_ours, run_pyvrp_best_of, run_vroom
from dispatch.optimizer import SearchConfig, cpus

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("c1", "c2", "r1", "r2", "rc1", "rc2")
SIZE_TAG = {200: "2", 400: "4", 1000: "10"}


def homberger_dir(override: str | None = None) -> Path:
    return Path(override or os.environ.get("HOMBERGER_DIR")
                or (ROOT / ".." / "shared" / "benchmarks" / "homberger")).resolve()


def sample(size: int, n: int) -> list[str]:
    """The first instance of each family, then the second, ...: ``n`` names of that size."""
    names = [f"{fam}_{SIZE_TAG[size]}_{k}" for k in range(1, 11) for fam in FAMILIES]
    return names[:n]


def path_of(d: Path, name: str) -> Path:
    tag = name.split("_")[1]
    size = {v: k for k, v in SIZE_TAG.items()}[tag]
    return d / f"homberger_{size}" / f"{name}.txt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--instances", help="comma-separated names, e.g. c1_10_1,r1_4_1")
    g.add_argument("--size", type=int, choices=sorted(SIZE_TAG), help="a sample of this size (see --sample)")
    ap.add_argument("--sample", type=int, default=6, help="instances of --size: one per family first")
    ap.add_argument("--budgets", default="10", help="comma-separated seconds, e.g. 1,10,30")
    ap.add_argument("--solvers", default="ours,pyvrp,vroom")
    ap.add_argument("--workers", type=int, default=0, help="our processes (0 = one per CPU)")
    ap.add_argument("--pyvrp-runs", type=int, default=2, help="PyVRP seeds at once, the best counts")
    ap.add_argument("--dir", help="the homberger folder (default ../shared/benchmarks/homberger)")
    ap.add_argument("--out")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    d = homberger_dir(args.dir)
    names = [x.strip() for x in args.instances.split(",")] if args.instances else sample(args.size or 200, args.sample)
    budgets = [float(b) for b in args.budgets.split(",")]
    solvers = args.solvers.split(",")
    bks = json.loads((d / "BKS.json").read_text())
    cfg = SearchConfig(workers=args.workers)
    rows = []
    for name in names:
        problem, pts = build_problem(read_solomon(path_of(d, name)))
        vroom = None
        if "vroom" in solvers:
            vroom = run_vroom(problem)
            vroom.pop("output")
        for budget in budgets:
            row = {"instance": name, "customers": len(problem.jobs), "budget": budget,
                   "bks": bks.get(name, {}).get("best_known_cost"), "vroom": vroom}
            if "ours" in solvers:
                row["ours"] = run_ours(problem, budget, cfg)
            if "pyvrp" in solvers:
                row["pyvrp"] = run_pyvrp_best_of(problem, pts, budget, args.pyvrp_runs)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return emit(report(rows, args), args.out)


def _f(x, nd=1):
    return "—" if x is None else f"{x:.{nd}f}"


def report(rows: list[dict], args) -> str:
    lines = [f"### Gehring–Homberger VRPTW, distance only, matrix round(euclid×{SCALE}); ours "
             f"{cpus(SearchConfig(workers=args.workers))} process(es), PyVRP best of {args.pyvrp_runs} "
             "process(es), VROOM 2 threads (no time limit: its own wall time)", "",
             "| instance | n | budget s | ours | unplanned | wall s | PyVRP | unplanned | VROOM | VROOM s | "
             "ours/PyVRP | ours/VROOM | ours/BKS | feasible ours/PyVRP/VROOM |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, p, v = r.get("ours"), r.get("pyvrp"), r.get("vroom")
        rp = o["distance"] / p["distance"] if o and p and o["served_all"] and p["served_all"] else None
        rv = o["distance"] / v["distance"] if o and v and o["served_all"] and v["served_all"] else None
        rb = o["distance"] / r["bks"] if o and r["bks"] and o["served_all"] else None

        def ok(x):
            return "—" if not x else ("yes" if x.get("feasible", True) else "NO")
        lines.append(f"| {r['instance']} | {r['customers']} | {r['budget']:g} | {_f(o and o['distance'])} | "
                     f"{o['unassigned'] if o else '—'} | {_f(o and o['time'], 2)} | {_f(p and p['distance'])} | "
                     f"{(0 if p['served_all'] else 'some') if p else '—'} | {_f(v and v['distance'])} | "
                     f"{_f(v and v['time'], 1)} | {_f(rp, 4)} | {_f(rv, 4)} | {_f(rb, 4)} | {ok(o)}/{ok(p)}/{ok(v)} |")
    lines.append("")
    for n in sorted({r["customers"] for r in rows}):
        for b in sorted({r["budget"] for r in rows}):
            sel = [r for r in rows if r["customers"] == n and r["budget"] == b and r.get("ours")]
            if not sel:
                continue
            rp = [r["ours"]["distance"] / r["pyvrp"]["distance"] for r in sel
                  if r.get("pyvrp") and r["ours"]["served_all"] and r["pyvrp"]["served_all"]]
            rv = [r["ours"]["distance"] / r["vroom"]["distance"] for r in sel
                  if r.get("vroom") and r["ours"]["served_all"] and r["vroom"]["served_all"]]
            over = [r["ours"]["time"] / b for r in sel]
            full = sum(r["ours"]["served_all"] and r["ours"]["feasible"] for r in sel)
            text = (f"- {n} customers, {b:g} s: ours served everyone feasibly on {full}/{len(sel)}; "
                    f"wall/budget max {max(over):.3f}")
            if rp:
                text += f"; ours/PyVRP mean **{statistics.mean(rp):.4f}** (median {statistics.median(rp):.4f}, n={len(rp)})"
            if rv:
                text += f"; ours/VROOM mean {statistics.mean(rv):.4f}"
            lines.append(text)
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
