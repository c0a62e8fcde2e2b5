"""Realistic home-visit days: our optimizer vs VROOM (pyvroom) on the same problem and matrix.

Days are generated deterministically from ``--seed`` (day i uses seed + i): a region (Stockholm,
Skåne/Malmö, Västra Götaland/Gothenburg, in turn), 60–300 visits scattered around the city
(normal, sigma ~8 km, some suburbs up to ~30 km), each with a 2-hour window 08–20, doctor visits
(30–45 min, skill 1) and nurse visits (45–60 min, skill 2); doctors and nurses with shifts 08–16,
10–18 or 13–21 (a visit may start until 20:00) starting/ending at the regional base, a 30-min lunch break starting 3.5–5 h into
the shift; enough clinicians that every visit can be served. Travel durations come from
``dispatch.vroom_io.duration_matrix`` (the shared travel model when present, else haversine ×1.3
at 40 km/h). Times are seconds since local midnight.

Both solvers get the same problem (VROOM through its JSON input: same matrix, windows, skills,
breaks); VROOM runs with its default exploration level (5) and 2 threads; ours with ``--budget``
seconds and one process per CPU (``--workers``; doctors and nurses are planned at once). Both plans are checked with dispatch.feasibility.

    python bench/homevisit_days.py --days 6 --budget 10
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from bench import emit
from dispatch.feasibility import check
from dispatch.optimizer import SearchConfig, cpus, solve
from dispatch.problem import Break, Job, Problem, Vehicle
from dispatch.vroom_io import duration_matrix, problem_to_vroom_input

H, MIN = 3600, 60
DOCTOR, NURSE = 1, 2
REGIONS = [("stockholm", 59.3293, 18.0686), ("skane", 55.6050, 13.0038), ("vastra-gotaland", 57.7089, 11.9746)]


def _point(rng: random.Random, lat0: float, lon0: float) -> tuple[float, float]:
    sigma_km = 8.0 if rng.random() < 0.85 else 18.0
    dn, de = rng.gauss(0, sigma_km), rng.gauss(0, sigma_km)
    dn, de = max(-30, min(30, dn)), max(-30, min(30, de))
    lat = lat0 + dn / 111.2
    lon = lon0 + de / (111.2 * math.cos(math.radians(lat0)))
    return (round(lat, 5), round(lon, 5))


def generate_day(seed: int, n_visits: int | None = None) -> tuple[str, Problem]:
    rng = random.Random(seed)
    region, lat0, lon0 = REGIONS[seed % len(REGIONS)]
    n = n_visits or rng.randint(60, 300)
    base = (lat0, lon0)
    points = [base] + [_point(rng, lat0, lon0) for _ in range(n)]
    D = duration_matrix(points)
    jobs = []
    load = {DOCTOR: 0, NURSE: 0}
    slots = [8, 10, 12, 14, 16, 18]
    weights = [3, 4, 4, 4, 3, 2]
    for i in range(1, n + 1):
        kind = DOCTOR if rng.random() < 0.45 else NURSE
        service = rng.choice([30, 35, 40, 45]) * MIN if kind == DOCTOR else rng.choice([45, 50, 55, 60]) * MIN
        h = rng.choices(slots, weights)[0]
        jobs.append(Job(i, i, service, ((h * H, (h + 2) * H),), frozenset({kind})))
        load[kind] += service + D[0][i] // 2 + 12 * MIN  # service + rough share of driving
    vehicles = []
    vid = 1
    for kind in (DOCTOR, NURSE):
        # 7.5 working hours per shift, aim at ~60 % utilisation so that every visit fits
        count = max(2, math.ceil(load[kind] / (7.5 * H * 0.6)))
        for c in range(count):
            start = (8, 13, 10)[c % 3] * H  # shifts 08-16, 13-21, 10-18 (visits may start until 20:00)
            lunch = Break(vid, ((start + 3 * H + 30 * MIN, start + 5 * H),), 30 * MIN)
            vehicles.append(Vehicle(vid, 0, 0, (start, start + 8 * H), frozenset({kind}), (), (lunch,)))
            vid += 1
    return region, Problem(tuple(vehicles), tuple(jobs), tuple(tuple(r) for r in D))


def run_vroom(problem: Problem, threads: int = 2, exploration: int = 5) -> dict:
    import vroom

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(problem_to_vroom_input(problem), fh)
        path = fh.name
    try:
        t = time.monotonic()
        sol = vroom.Input.from_json(path).solve(exploration_level=exploration, nb_threads=threads)
        wall = time.monotonic() - t
    finally:
        os.unlink(path)
    out = sol.to_dict()
    errs, travel = check(problem, out, arrival_is_service_start=False)
    served = len(problem.jobs) - len(out["unassigned"])
    return {"drive_s": travel, "served": served, "feasible": not errs, "errors": errs[:3], "time": wall,
            "routes": len(out["routes"])}


def run_ours(problem: Problem, budget: float, workers: int = 0) -> dict:
    t = time.monotonic()
    sol = solve(problem, budget, config=SearchConfig(workers=workers))
    wall = time.monotonic() - t
    errs, travel = check(problem, sol)
    return {"drive_s": travel, "served": len(problem.jobs) - len(sol.unassigned), "feasible": not errs,
            "errors": errs[:3], "time": wall, "routes": len(sol.routes), "status": sol.status}


def one_skill(problem: Problem) -> Problem:
    return replace(problem, jobs=tuple(replace(j, skills=frozenset()) for j in problem.jobs),
                   vehicles=tuple(replace(v, skills=frozenset()) for v in problem.vehicles))


def without_breaks(problem: Problem) -> Problem:
    return replace(problem, vehicles=tuple(replace(v, breaks=()) for v in problem.vehicles))


def run_pyvrp(problem: Problem, budget: float, seed: int = 0) -> dict:
    """PyVRP (no lunch breaks: it cannot model them) on the same matrix, windows and shifts, one
    model per skill (doctors and nurses are independent), ``budget`` seconds each, one after the
    other on one core."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    D = problem.durations
    drive = routes = served = 0
    ok = True
    t = time.monotonic()
    for skill in sorted({s for v in problem.vehicles for s in v.skills}):
        jobs = [j for j in problem.jobs if j.skills <= {skill}]
        vehicles = [v for v in problem.vehicles if skill in v.skills]
        if not jobs:
            continue
        m = pyvrp.Model()
        locs = [vehicles[0].start] + [j.location for j in jobs]
        nodes = [m.add_location(x=0, y=0) for _ in locs]
        depot = m.add_depot(nodes[0])
        shifts: dict[tuple[int, int], int] = {}
        for v in vehicles:
            assert v.start == v.end == locs[0], "one base per region in the generated days"
            shifts[v.time_window] = shifts.get(v.time_window, 0) + 1
        for (a, b), n in sorted(shifts.items()):
            m.add_vehicle_type(num_available=n, start_depot=depot, end_depot=depot, tw_early=a, tw_late=b)
        for k, j in enumerate(jobs):
            (a, b), = j.time_windows
            m.add_client(nodes[k + 1], service_duration=j.service, tw_early=a, tw_late=b)
        for i, li in enumerate(locs):
            for k, lk in enumerate(locs):
                if i != k:
                    m.add_edge(nodes[i], nodes[k], distance=D[li][lk], duration=D[li][lk])
        best = m.solve(stop=MaxRuntime(budget), seed=seed, display=False).best
        drive += best.distance()
        routes += best.num_routes()
        served += best.num_clients()
        ok = ok and best.is_feasible()
    return {"drive_s": drive, "served": served, "feasible": ok, "time": time.monotonic() - t, "routes": routes}


def headroom(args) -> str:
    """How far below VROOM the state of the art gets on these days, measured on the same days
    without lunch breaks (PyVRP cannot model them; VROOM and ours re-run without them too)."""
    lines = [f"### Headroom: the same days without lunch breaks, PyVRP {args.pyvrp_budget:g} s per skill "
             f"(1 core) vs VROOM (2 threads) vs ours ({args.budget:g} s)", "",
             "| day | visits | drive PyVRP h | drive VROOM h | drive ours h | PyVRP/VROOM | ours/VROOM | "
             "served PyVRP/VROOM/ours |", "|---|---|---|---|---|---|---|---|"]
    pv_r, our_r = [], []
    for d in range(args.days):
        seed = args.seed + d
        _, problem = generate_day(seed)
        relaxed = without_breaks(problem)
        pv, vr = run_pyvrp(relaxed, args.pyvrp_budget), run_vroom(relaxed)
        ours = run_ours(relaxed, args.budget, args.workers)
        n = len(problem.jobs)
        full = vr["served"] == n and pv["served"] == n and pv["feasible"]
        if full:
            pv_r.append(pv["drive_s"] / vr["drive_s"])
            our_r.append(ours["drive_s"] / vr["drive_s"])
        lines.append(f"| {seed} | {n} | {pv['drive_s'] / 3600:.2f} | {vr['drive_s'] / 3600:.2f} | "
                     f"{ours['drive_s'] / 3600:.2f} | {pv['drive_s'] / vr['drive_s']:.4f} | "
                     f"{ours['drive_s'] / vr['drive_s']:.4f} | "
                     f"{pv['served'] if pv['feasible'] else 'infeasible'}/{vr['served']}/{ours['served']} |")
        print(lines[-1], file=sys.stderr, flush=True)
    lines.append("")
    if pv_r:
        lines.append(f"- median PyVRP/VROOM on the days both serve fully: **{statistics.median(pv_r):.4f}**; "
                     f"ours/VROOM: {statistics.median(our_r):.4f} (n={len(pv_r)})")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=6)
    ap.add_argument("--workers", type=int, default=0,
                    help="optimizer processes (0 = one per CPU, as in production; 1 = a single process)")
    ap.add_argument("--budget", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--remote-doctors", type=int, default=None,
                    help="also solve each day with 15-min video calls after nurse visits and this many "
                         "remote doctors (ours only: VROOM cannot model it)")
    ap.add_argument("--one-skill", action="store_true",
                    help="every clinician may take every visit (one sub-problem instead of doctors + nurses)")
    ap.add_argument("--headroom", action="store_true",
                    help="instead: PyVRP, VROOM and ours on the same days without lunch breaks")
    ap.add_argument("--pyvrp-budget", type=float, default=15.0, help="PyVRP seconds per skill (--headroom)")
    args = ap.parse_args(argv)
    if args.headroom:
        return emit(headroom(args), args.out)
    rows = []
    for d in range(args.days):
        seed = args.seed + d
        region, problem = generate_day(seed)
        if args.one_skill:
            problem = one_skill(problem)
        ours = run_ours(problem, args.budget, args.workers)
        vr = run_vroom(problem)
        row = {"day": seed, "region": region, "visits": len(problem.jobs), "clinicians": len(problem.vehicles),
               "ours": ours, "vroom": vr}
        if args.remote_doctors is not None:
            calls = Problem(problem.vehicles, tuple(
                Job(j.id, j.location, j.service, j.time_windows, j.skills, j.priority, j.delivery,
                    15 * MIN if NURSE in j.skills else 0) for j in problem.jobs), problem.durations,
                remote_doctors=args.remote_doctors)
            row["ours_calls"] = run_ours(calls, args.budget, args.workers)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return emit(report(rows, args), args.out)


def report(rows, args) -> str:
    lines = [f"### Home-visit days{' (one skill)' if args.one_skill else ''}, budget {args.budget:g} s "
             f"(ours, {cpus(SearchConfig(workers=args.workers))} process(es)) "
             "vs VROOM (exploration 5, 2 threads)", "",
             "| day | region | visits | clinicians | served ours | served VROOM | drive ours h | drive VROOM h | ours/VROOM | VROOM s | feasible ours/VROOM |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for r in rows:
        o, v = r["ours"], r["vroom"]
        ratio = o["drive_s"] / v["drive_s"] if v["drive_s"] else float("nan")
        if v["served"] == r["visits"]:
            ratios.append(ratio)
        lines.append(f"| {r['day']} | {r['region']} | {r['visits']} | {r['clinicians']} | {o['served']} | {v['served']} | "
                     f"{o['drive_s'] / 3600:.2f} | {v['drive_s'] / 3600:.2f} | {ratio:.4f} | {v['time']:.1f} | "
                     f"{'yes' if o['feasible'] else 'NO'}/{'yes' if v['feasible'] else 'NO'} |")
    lines.append("")
    if any("ours_calls" in r for r in rows):
        lines.append(f"With 15-min video calls after each nurse visit and {args.remote_doctors} remote doctor(s) "
                     "(ours only):")
        lines.append("")
        for r in rows:
            c = r.get("ours_calls")
            if c:
                lines.append(f"- day {r['day']}: served {c['served']}/{r['visits']}, drive {c['drive_s'] / 3600:.2f} h, "
                             f"feasible (incl. doctor capacity): {'yes' if c['feasible'] else 'NO'}")
        lines.append("")
    all_served = [r for r in rows if r["vroom"]["served"] == r["visits"]]
    ours_all = sum(r["ours"]["served"] == r["visits"] for r in all_served)
    if ratios:
        lines.append(f"- days where VROOM serves every visit: {len(all_served)}/{len(rows)}; ours serves every visit on "
                     f"{ours_all}/{len(all_served)} of them")
        lines.append(f"- median driving ratio ours/VROOM on those days: **{statistics.median(ratios):.4f}** "
                     f"(mean {statistics.mean(ratios):.4f}, min {min(ratios):.4f}, max {max(ratios):.4f})")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
