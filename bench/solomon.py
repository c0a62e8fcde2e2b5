"""Solomon VRPTW benchmark: our optimizer vs PyVRP vs VROOM on the same integer matrix.

Each instance becomes ONE integer matrix: duration = distance = round(euclid * 100) (SCALE = 100);
time windows and service times are scaled by 100 too. Objective: distance only; fleet = the
instance's vehicle number; capacity as given; everyone must be served. Distances are reported
rescaled back (/ 100). Solvers run one after the other (2-core machine):
- ours: dispatch.optimizer.solve(problem, budget), one process by default (``--workers``: 0 = one per
  CPU, as in production, where two processes run independent ruin & recreate and the best wins);
- PyVRP: same matrix as distance and duration, MaxRuntime(budget), seed 0 (``--pyvrp-runs N``: seeds
  0..N-1 at once in N processes, the best counts: the fair baseline for ours on N processes);
- VROOM (pyvroom): same problem through its JSON input, default exploration (5), 2 threads; its
  wall time is recorded.

    python bench/solomon.py                 # stratified sample of 12 (2 per family)
    python bench/solomon.py --all --budget 10
    python bench/solomon.py --instances C101,R101 --budget 5
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from dispatch.feasibility import check
from dispatch.optimizer import SearchConfig, cpus, solve
from dispatch.problem import Job, Problem, Vehicle
from dispatch.vroom_io import problem_to_vroom_input

SCALE = 100
SAMPLE = ["C101", "C106", "C202", "C206", "R102", "R109", "R203", "R210", "RC103", "RC107", "RC202", "RC206"]


def solomon_dir() -> Path:
    return Path(os.environ.get("SOLOMON_DIR") or (ROOT / ".." / "shared" / "benchmarks" / "solomon")).resolve()


def read_solomon(path: Path) -> dict:
    lines = [ln.split() for ln in path.read_text().splitlines()]
    k, cap = None, None
    rows = []
    for i, parts in enumerate(lines):
        if parts[:2] == ["NUMBER", "CAPACITY"]:
            k, cap = int(lines[i + 1][0]), int(lines[i + 1][1])
        if len(parts) == 7 and all(p.replace(".", "").isdigit() for p in parts):
            rows.append([float(x) for x in parts])
    return {"name": path.stem, "vehicles": k, "capacity": cap, "rows": rows}


def build_problem(inst: dict) -> tuple[Problem, list[tuple[float, float]]]:
    rows = inst["rows"]
    pts = [(r[1], r[2]) for r in rows]
    n = len(pts)
    D = tuple(tuple(int(round(math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]) * SCALE))
                    for j in range(n)) for i in range(n))
    depot = rows[0]
    tw = (int(depot[4]) * SCALE, int(depot[5]) * SCALE)
    vehicles = tuple(Vehicle(k + 1, 0, 0, tw, capacity=(inst["capacity"],)) for k in range(inst["vehicles"]))
    jobs = tuple(Job(int(r[0]), i, int(r[6]) * SCALE, ((int(r[4]) * SCALE, int(r[5]) * SCALE),),
                     delivery=(int(r[3]),)) for i, r in enumerate(rows) if i > 0)
    return Problem(vehicles, jobs, D), pts


def run_ours(problem: Problem, budget: float, cfg: SearchConfig | None) -> dict:
    t = time.monotonic()
    sol = solve(problem, budget, config=cfg)
    wall = time.monotonic() - t
    errs, travel = check(problem, sol, require_all=True)
    return {"distance": travel / SCALE, "vehicles": len(sol.routes), "served_all": not sol.unassigned,
            "unassigned": len(sol.unassigned), "feasible": not errs, "errors": errs[:3], "time": wall}


def run_pyvrp_best_of(problem: Problem, pts, budget: float, runs: int) -> dict:
    """PyVRP with seeds 0..runs-1 at once, one process each (PyVRP itself uses one core): the
    shortest plan. The fair baseline when ours uses as many processes."""
    if runs <= 1:
        return run_pyvrp(problem, pts, budget)
    from concurrent.futures import ProcessPoolExecutor

    t = time.monotonic()
    with ProcessPoolExecutor(runs) as ex:
        res = list(ex.map(run_pyvrp, [problem] * runs, [pts] * runs, [budget] * runs, range(runs)))
    best = min(res, key=lambda r: (not (r["feasible"] and r["served_all"]), r["distance"]))
    return {**best, "time": time.monotonic() - t}


def run_pyvrp(problem: Problem, pts, budget: float, seed: int = 0) -> dict:
    import pyvrp
    from pyvrp.stop import MaxRuntime

    m = pyvrp.Model()
    locs = [m.add_location(x=int(round(x * SCALE)), y=int(round(y * SCALE))) for x, y in pts]
    v0 = problem.vehicles[0]
    depot = m.add_depot(locs[0])
    m.add_vehicle_type(num_available=len(problem.vehicles), capacity=list(v0.capacity),
                       start_depot=depot, end_depot=depot, tw_early=v0.time_window[0], tw_late=v0.time_window[1])
    for j in problem.jobs:
        (a, b), = j.time_windows
        m.add_client(locs[j.location], delivery=list(j.delivery), service_duration=j.service, tw_early=a, tw_late=b)
    D = problem.durations
    for i, li in enumerate(locs):
        for k, lk in enumerate(locs):
            if i != k:
                m.add_edge(li, lk, distance=D[i][k], duration=D[i][k])
    t = time.monotonic()
    res = m.solve(stop=MaxRuntime(budget), seed=seed, display=False)
    wall = time.monotonic() - t
    best = res.best
    return {"distance": best.distance() / SCALE, "vehicles": best.num_routes(),
            "served_all": best.is_complete(), "feasible": best.is_feasible(), "time": wall}


def vroom_output_to_plan(out: dict) -> dict:
    """pyvroom's to_dict() (VROOM semantics: service starts at arrival + waiting_time)."""
    return out


def run_vroom(problem: Problem, threads: int = 2, exploration: int = 5) -> dict:
    import vroom

    data = problem_to_vroom_input(problem)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(data, fh)
        path = fh.name
    try:
        t = time.monotonic()
        inp = vroom.Input.from_json(path)
        sol = inp.solve(exploration_level=exploration, nb_threads=threads)
        wall = time.monotonic() - t
    finally:
        os.unlink(path)
    out = sol.to_dict()
    errs, travel = check(problem, out, arrival_is_service_start=False, require_all=False)
    served_all = not out["unassigned"]
    return {"distance": travel / SCALE, "vehicles": len(out["routes"]), "served_all": served_all,
            "feasible": not errs, "errors": errs[:3], "time": wall, "output": out}


def load_bks() -> dict[str, tuple[int, float]]:
    path = solomon_dir() / "bks.csv"
    with open(path) as fh:
        return {r["instance"]: (int(r["vehicles"]), float(r["distance"])) for r in csv.DictReader(fh)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=10.0)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--instances", help="comma-separated names, e.g. C101,R101")
    g.add_argument("--sample", type=int, help="first N of the fixed stratified sample (default: all 12)")
    g.add_argument("--all", action="store_true", help="all 56 instances")
    ap.add_argument("--solvers", default="ours,pyvrp,vroom")
    ap.add_argument("--config", default=None, help="JSON of SearchConfig overrides (tuning)")
    ap.add_argument("--pyvrp-runs", type=int, default=1,
                    help="PyVRP runs with seeds 0.. at once, one process each; the best counts")
    ap.add_argument("--workers", type=int, default=1,
                    help="our optimizer's processes (default 1: PyVRP runs on one core; 0 = one per CPU)")
    ap.add_argument("--out", help="write a markdown section to this file")
    ap.add_argument("--json", help="write raw results as JSON")
    args = ap.parse_args(argv)
    d = solomon_dir()
    if args.all:
        names = sorted(p.stem for p in d.glob("*.txt") if p.stem != "README")
    elif args.instances:
        names = [x.strip() for x in args.instances.split(",") if x.strip()]
    else:
        names = SAMPLE[: args.sample] if args.sample else SAMPLE
    solvers = args.solvers.split(",")
    cfg = SearchConfig(**{"workers": args.workers, **(json.loads(args.config) if args.config else {})})
    bks = load_bks()
    results = []
    for name in names:
        inst = read_solomon(d / f"{name}.txt")
        problem, pts = build_problem(inst)
        row = {"instance": name, "bks": bks.get(name)}
        if "ours" in solvers:
            row["ours"] = run_ours(problem, args.budget, cfg)
        if "pyvrp" in solvers:
            row["pyvrp"] = run_pyvrp_best_of(problem, pts, args.budget, args.pyvrp_runs)
        if "vroom" in solvers:
            r = run_vroom(problem)
            r.pop("output")
            row["vroom"] = r
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    text = report(results, args, solvers)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _fmt(x, nd=1):
    return "—" if x is None else f"{x:.{nd}f}"


def report(results: list[dict], args, solvers) -> str:
    lines = [f"### Solomon VRPTW (100 customers), budget {args.budget:g} s, distance only, matrix round(euclid×{SCALE}); "
             f"ours {cpus(SearchConfig(workers=args.workers))} process(es), PyVRP best of {args.pyvrp_runs} "
             "process(es), VROOM 2 threads",
             "",
             "| instance | ours | veh | PyVRP | veh | VROOM | veh | VROOM s | ours/PyVRP | ours/VROOM | ours gap to BKS | all served (ours/PyVRP/VROOM) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    r_p, r_v, gaps, vr_times = [], [], [], []
    for row in results:
        o, p, v = row.get("ours"), row.get("pyvrp"), row.get("vroom")
        bk = row["bks"][1] if row["bks"] else None
        rp = o["distance"] / p["distance"] if o and p else None
        rv = o["distance"] / v["distance"] if o and v else None
        gap = (o["distance"] / bk - 1) * 100 if o and bk else None
        if rp is not None:
            r_p.append(rp)
        if rv is not None:
            r_v.append(rv)
        if gap is not None:
            gaps.append(gap)
        if v:
            vr_times.append(v["time"])

        def served(x):
            return "—" if not x else ("yes" if x["served_all"] and x.get("feasible", True) else "NO")
        lines.append(f"| {row['instance']} | {_fmt(o and o['distance'])} | {o['vehicles'] if o else '—'} | "
                     f"{_fmt(p and p['distance'])} | {p['vehicles'] if p else '—'} | {_fmt(v and v['distance'])} | "
                     f"{v['vehicles'] if v else '—'} | {_fmt(v and v['time'], 2)} | {_fmt(rp, 4)} | {_fmt(rv, 4)} | "
                     f"{_fmt(gap, 2)}% | {served(o)}/{served(p)}/{served(v)} |")
    mean = statistics.mean
    lines.append("")
    if r_p:
        lines.append(f"- mean ours/PyVRP: **{mean(r_p):.4f}** (n={len(r_p)})")
    if r_v:
        lines.append(f"- mean ours/VROOM: **{mean(r_v):.4f}** (n={len(r_v)})")
    if gaps:
        lines.append(f"- mean ours gap to BKS distance: {mean(gaps):.2f}%")
    for key, label in (("ours", "ours"), ("pyvrp", "PyVRP"), ("vroom", "VROOM")):
        ds = [row[key]["distance"] for row in results if row.get(key)]
        if ds:
            allok = all(row[key]["served_all"] and row[key].get("feasible", True) for row in results if row.get(key))
            lines.append(f"- mean distance {label}: {mean(ds):.2f}; everyone served & feasible on all: {allok}")
    if vr_times:
        lines.append(f"- VROOM mean wall time: {mean(vr_times):.2f} s")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
