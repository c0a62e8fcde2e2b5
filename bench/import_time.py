"""Cold-import time of each Lambda handler module against the bare toolkit it builds on.

Each measurement is a fresh interpreter (as a cold start is), timing `import <handler module>`;
the baseline imports boto3 + PynamoDB + Powertools' event handler the same way. Also records
whether OR-Tools or Stripe got loaded (only the dispatch optimizer may load OR-Tools, only payments
Stripe — and neither at import). Medians of --runs runs."""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from bench import emit
from devstack import template as tpl

BASELINE = "boto3, pynamodb.models, aws_lambda_powertools.event_handler"
PROBE = """
import json, sys, time
t = time.perf_counter()
import {modules}
dt = time.perf_counter() - t
print(json.dumps({{"s": dt, "ortools": "ortools" in sys.modules, "stripe": "stripe" in sys.modules}}))
"""


def measure(modules: str, runs: int) -> dict:
    samples, last = [], {}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PROBE.format(modules=modules)], capture_output=True,
                             text=True, check=True, env={"AWS_DEFAULT_REGION": "eu-north-1", "PATH": ""})
        last = json.loads(out.stdout.strip().splitlines()[-1])
        samples.append(last["s"] * 1000)
    return {"median_ms": statistics.median(samples), "ortools": last["ortools"], "stripe": last["stripe"]}


def run(args) -> str:
    base = measure(BASELINE, args.runs)
    rows = [f"Fresh interpreter per run, median of {args.runs}; baseline = `import {BASELINE}`.", "",
            "| function | handler module | import ms (median) | × baseline | loads OR-Tools | loads Stripe |",
            "|---|---|---:|---:|---|---|",
            f"| (baseline) | boto3 + pynamodb + powertools | {base['median_ms']:.0f} | 1.00 | no | no |"]
    for fid, fn in sorted(tpl.functions().items()):
        module = fn["Properties"]["Handler"].rpartition(".")[0]
        m = measure(module, args.runs)
        rows.append(f"| {fid} | `{module}` | {m['median_ms']:.0f} | {m['median_ms'] / base['median_ms']:.2f} | "
                    f"{'yes' if m['ortools'] else 'no'} | {'yes' if m['stripe'] else 'no'} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.import_time")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    text = run(args)
    return emit(text, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
