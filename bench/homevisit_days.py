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
breaks); VROOM runs with its default exploration level (5) and 2 threads; ours single-threaded
with ``--budget`` seconds. Both plans are checked with dispatch.feasibility.

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from bench import emit
from dispatch.feasibility import check
from dispatch.optimizer import solve
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


def run_ours(problem: Problem, budget: float) -> dict:
    t = time.monotonic()
    sol = solve(problem, budget)
    wall = time.monotonic() - t
    errs, travel = check(problem, sol)
    return {"drive_s": travel, "served": len(problem.jobs) - len(sol.unassigned), "feasible": not errs,
            "errors": errs[:3], "time": wall, "routes": len(sol.routes)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=6)
    ap.add_argument("--budget", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out")
    ap.add_argument("--remote-doctors", type=int, default=None,
                    help="also solve each day with 15-min video calls after nurse visits and this many "
                         "remote doctors (ours only: VROOM cannot model it)")
    args = ap.parse_args(argv)
    rows = []
    for d in range(args.days):
        seed = args.seed + d
        region, problem = generate_day(seed)
        ours = run_ours(problem, args.budget)
        vr = run_vroom(problem)
        row = {"day": seed, "region": region, "visits": len(problem.jobs), "clinicians": len(problem.vehicles),
               "ours": ours, "vroom": vr}
        if args.remote_doctors is not None:
            calls = Problem(problem.vehicles, tuple(
                Job(j.id, j.location, j.service, j.time_windows, j.skills, j.priority, j.delivery,
                    15 * MIN if NURSE in j.skills else 0) for j in problem.jobs), problem.durations,
                remote_doctors=args.remote_doctors)
            row["ours_calls"] = run_ours(calls, args.budget)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return emit(report(rows, args), args.out)


def report(rows, args) -> str:
    lines = [f"### Home-visit days, budget {args.budget:g} s (ours) vs VROOM (exploration 5, 2 threads)", "",
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
