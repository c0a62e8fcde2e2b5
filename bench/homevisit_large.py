"""A large region-day (default 500 visits) planned within a wall-clock budget (default 60 s) vs VROOM.

The day comes from ``bench.homevisit_days.generate_day(seed, visits)``: the same generator as the
home-visit days bench (doctor and nurse visits with 2-hour windows, skills, shifts 08-16 / 10-18 /
13-21 and a 30-min lunch break per clinician, clinicians scaled to ~60 % utilisation), just with a
fixed number of visits. Our wall time is measured around the ``dispatch.optimizer.solve`` call, so it
includes the model building; both plans are checked with ``dispatch.feasibility.check``. VROOM gets
the same problem (exploration 5, 2 threads) and is timed the same way.

    python -m bench.homevisit_large --visits 500 --budget 60 --seed 2
"""
from __future__ import annotations

import argparse
import json
import sys

from bench.homevisit_days import generate_day, run_ours, run_vroom
from bench import emit
from dispatch.optimizer import SearchConfig, cpus


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visits", type=int, default=500)
    ap.add_argument("--workers", type=int, default=0,
                    help="optimizer processes (0 = one per CPU, as in production; 1 = a single process)")
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--days", type=int, default=1, help="days seed, seed+1, ...")
    ap.add_argument("--no-vroom", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    rows = []
    for d in range(args.days):
        seed = args.seed + d
        region, problem = generate_day(seed, args.visits)
        ours = run_ours(problem, args.budget, args.workers)
        row = {"day": seed, "region": region, "visits": len(problem.jobs), "clinicians": len(problem.vehicles),
               "doctors": sum(1 for v in problem.vehicles if 1 in v.skills), "ours": ours}
        if not args.no_vroom:
            row["vroom"] = run_vroom(problem)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return emit(report(rows, args), args.out)


def report(rows, args) -> str:
    lines = [f"### {args.visits}-visit region-day, budget {args.budget:g} s "
             f"(ours, {cpus(SearchConfig(workers=args.workers))} process(es)) vs VROOM "
             "(exploration 5, 2 threads)", "",
             "Wall times include model building (ours: around the `solve` call).", "",
             "| day | region | visits | clinicians (doctors) | ours wall s | served ours | served VROOM | "
             "drive ours h | drive VROOM h | ours/VROOM | VROOM wall s | feasible ours/VROOM |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, v = r["ours"], r.get("vroom")
        ratio = f"{o['drive_s'] / v['drive_s']:.4f}" if v and v["drive_s"] else "—"
        lines.append(
            f"| {r['day']} | {r['region']} | {r['visits']} | {r['clinicians']} ({r['doctors']}) | {o['time']:.1f} | "
            f"{o['served']} | {v['served'] if v else '—'} | {o['drive_s'] / 3600:.2f} | "
            f"{(v['drive_s'] / 3600) if v else float('nan'):.2f} | {ratio} | {v['time'] if v else float('nan'):.1f} | "
            f"{'yes' if o['feasible'] else 'NO'}/{('yes' if v['feasible'] else 'NO') if v else '—'} |")
    lines.append("")
    within = sum(r["ours"]["time"] <= args.budget for r in rows)
    lines.append(f"- ours within the {args.budget:g} s budget (wall, incl. model building): {within}/{len(rows)}")
    errs = [e for r in rows for e in r["ours"]["errors"]]
    if errs:
        lines.append(f"- feasibility violations (ours, first ones): {errs[:3]}")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
