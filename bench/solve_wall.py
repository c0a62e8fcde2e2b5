"""Wall time of the whole `homevisits solve` command against its ``--time-limit``.

Each Gehring–Homberger instance (``bench.homberger`` reads them) is written as a VROOM input
JSON (the integer matrix inside, ~7 MB at 1 000 customers) and solved by a fresh
`homevisits solve FILE --time-limit T` process: the wall time is measured around the process, so
Python's start-up, the imports, reading and checking the JSON, building the plan and writing it
are all in it. CPU time (user + system, children) shows what the wall time would be on an idle
core; the load average is printed with every run because on a shared machine it decides the rest.

    python -m bench.solve_wall --instances c1_10_1,r1_10_1,rc2_10_1 --budgets 1,10 --runs 3
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import emit
from bench.homberger import homberger_dir, path_of
from bench.solomon import build_problem, read_solomon
from dispatch.vroom_io import problem_to_vroom_input


def command() -> list[str]:
    script = Path(sys.executable).parent / "homevisits"
    return [str(script)] if script.exists() else [sys.executable, "-c",
                                                  "import sys; from devstack.cli import main; sys.exit(main())"]


def run_once(path: Path, budget: float) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = subprocess.run(command() + ["solve", str(path), "--time-limit", f"{budget:g}"],
                          capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = json.loads(proc.stdout) if proc.stdout.strip() else {}
    summary = out.get("summary", {})
    return {"rc": proc.returncode, "wall": wall, "cpu": cpu, "load": load,
            "unassigned": summary.get("unassigned"), "cost": summary.get("cost")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", default="c1_10_1,r1_10_1,rc2_10_1")
    ap.add_argument("--budgets", default="1")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", help="the homberger folder (default ../shared/benchmarks/homberger)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    d = homberger_dir(args.dir)
    budgets = [float(b) for b in args.budgets.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.instances.split(","):
            problem, _ = build_problem(read_solomon(path_of(d, name)))
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(problem_to_vroom_input(problem)))
            for budget in budgets:
                runs = [run_once(path, budget) for _ in range(args.runs)]
                row = {"instance": name, "jobs": len(problem.jobs), "budget": budget, "runs": runs}
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    return emit(report(rows), args.out)


def report(rows: list[dict]) -> str:
    lines = ["| instance | visits | --time-limit s | wall s (each run) | wall / limit max | CPU s (each run) | "
             "load avg (1 min) | unassigned | exit codes |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        runs = r["runs"]
        lines.append(f"| {r['instance']} | {r['jobs']} | {r['budget']:g} | "
                     f"{' / '.join(f'{x['wall']:.2f}' for x in runs)} | "
                     f"{max(x['wall'] for x in runs) / r['budget']:.3f} | "
                     f"{' / '.join(f'{x['cpu']:.2f}' for x in runs)} | "
                     f"{' / '.join(f'{x['load']:.1f}' for x in runs)} | "
                     f"{' / '.join(str(x['unassigned']) for x in runs)} | "
                     f"{' / '.join(str(x['rc']) for x in runs)} |")
    walls = [x["wall"] / r["budget"] for r in rows for x in r["runs"]]
    lines += ["", f"- wall / limit: median {statistics.median(walls):.3f}, max {max(walls):.3f} "
                  f"(target ≤ 1.05)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
