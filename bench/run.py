"""Runs the benchmarks and writes docs/benchmarks.md: each section with the command that made it.

`make bench` runs the quick set (a stratified Solomon sample, generated home-visit days, the booking
path, booking at scale, a short soak); `make bench BENCH_ARGS=--full` runs all 56 Solomon instances and a 2-minute soak.
Every benchmark measures its baseline in the same run (PyVRP and VROOM on the same matrix; a bare
DynamoDB round trip), so the ratios hold on whatever machine runs them."""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def benches(full: bool) -> list[tuple[str, list[str]]]:
    return [
        ("Handler cold-import time", ["bench.import_time", "--runs", "7" if full else "5"]),
        ("Booking path latency", ["bench.booking_latency"] + (["--requests", "400"] if full else [])),
        ("Booking at scale: day size, concurrent bookers, units and cost per booking",
         ["bench.booking_scale"] + (["--sizes", "200,1000,2000,3000"] if full else [])),
        ("Dispatch: generated home-visit days vs VROOM", ["bench.homevisit_days", "--days", "9" if full else "6",
                                                          "--budget", "10"]),
        ("Dispatch: a 500-visit region-day within 60 s", ["bench.homevisit_large", "--visits", "500",
                                                          "--budget", "60"]),
        ("Dispatch: Gehring-Homberger VRPTW vs PyVRP and VROOM (complete plans at any budget)",
         ["bench.homberger"] + (["--instances", "c1_10_1,r1_10_1,rc2_10_1", "--budgets", "1,10,30"] if full
                                else ["--size", "200", "--sample", "3", "--budgets", "10"])),
        ("Dispatch: wall time of `homevisits solve` against --time-limit (1 000 visits, process start-up included)",
         ["bench.solve_wall", "--budgets", "1,10" if full else "1", "--runs", "3" if full else "2"]),
        ("Dispatch: Solomon VRPTW vs PyVRP and VROOM", ["bench.solomon", "--budget", "10"] +
         (["--all"] if full else ["--sample", "12"])),
        ("Dispatch: Solomon VRPTW on two processes each (ours as in production, PyVRP best of two seeds)",
         ["bench.solomon", "--budget", "10", "--workers", "0", "--pyvrp-runs", "2"] +
         (["--all"] if full else ["--sample", "12"])),
        ("Soak: concurrent patients, dispatchers and clinicians", ["bench.soak", "--seconds",
                                                                   "120" if full else "60"]),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.run")
    p.add_argument("--full", action="store_true", help="all Solomon instances, longer soak")
    p.add_argument("--only", default="", help="comma-separated module names, e.g. bench.solomon")
    p.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    args = p.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    sections = []
    for title, cmd in benches(args.full):
        if only and cmd[0] not in only:
            continue
        with tempfile.NamedTemporaryFile("r", suffix=".md", delete=False) as tmp:
            out = tmp.name
        shown = "python -m " + " ".join(cmd)
        print(f"== {title}: {shown}", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, "-m", *cmd, "--out", out], cwd=REPO)
        body = Path(out).read_text(encoding="utf-8") if Path(out).exists() else ""
        os.unlink(out)
        status = "" if rc == 0 else f"\n\n**This benchmark exited with code {rc}.**"
        sections.append(f"## {title}\n\nCommand: `{shown}` ({time.monotonic() - t0:.0f} s, finished "
                        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)\n\n{body.strip()}{status}\n")
    out_path = Path(args.out)
    if only and out_path.exists():
        # Replace just the sections that ran; keep the others from the last full run.
        old = out_path.read_text(encoding="utf-8")
        parts = old.split("\n## ")
        kept = {p.split("\n", 1)[0]: "## " + p for p in parts[1:]}
        for sec in sections:
            kept[sec.split("\n", 1)[0][3:]] = sec
        out_path.write_text(parts[0] + "\n" + "\n".join(v.rstrip() + "\n" for v in kept.values()), encoding="utf-8")
        print(f"updated {args.out}")
        return 0
    head = (f"# Benchmarks\n\nWritten by `make bench` (`python -m bench.run{' --full' if args.full else ''}`) on "
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}. Medians and ratios are against baselines measured in the "
            f"same run on the same machine.\n\n")
    Path(args.out).write_text(head + "\n".join(sections), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
