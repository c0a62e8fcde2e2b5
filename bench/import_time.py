"""Cold-import time of each Lambda handler module against the bare toolkit it builds on.

Each measurement is a fresh interpreter (as a cold start is), timing `import <handler module>`;
the baseline imports boto3 + PynamoDB + Powertools' event handler the same way. Also records
whether OR-Tools or Stripe got loaded (only the dispatch optimizer may load OR-Tools, only payments
Stripe — and neither at import). Medians of --runs runs; each run of a handler is paired with a run
of the baseline right before it and the × column is the median of the pairs' ratios, so a machine
busy with other work slows both sides of a pair alike."""
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


def probe(modules: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(modules=modules)], capture_output=True,
                         text=True, check=True, env={"AWS_DEFAULT_REGION": "eu-north-1", "PATH": ""})
    last = json.loads(out.stdout.strip().splitlines()[-1])
    return {**last, "ms": last["s"] * 1000}


def measure(modules: str, runs: int) -> dict:
    """Median import ms of `modules`, and the median ratio to the baseline run just before each run."""
    pairs = [(probe(BASELINE), probe(modules)) for _ in range(runs)]
    last = pairs[-1][1]
    return {"median_ms": statistics.median(m["ms"] for _, m in pairs),
            "baseline_ms": statistics.median(b["ms"] for b, _ in pairs),
            "ratio": statistics.median(m["ms"] / b["ms"] for b, m in pairs),
            "ortools": last["ortools"], "stripe": last["stripe"]}


def run(args) -> str:
    functions = {fid: fn for fid, fn in sorted(tpl.functions().items()) if not args.function or fid in args.function}
    rows = [f"Fresh interpreter per run, median of {args.runs}; baseline = `import {BASELINE}`, run just "
            "before each handler run (× = median of the pairs' ratios).", "",
            "| function | handler module | import ms (median) | baseline ms (median) | × baseline | loads OR-Tools | loads Stripe |",
            "|---|---|---:|---:|---:|---|---|"]
    for fid, fn in functions.items():
        module = fn["Properties"]["Handler"].rpartition(".")[0]
        m = measure(module, args.runs)
        rows.append(f"| {fid} | `{module}` | {m['median_ms']:.0f} | {m['baseline_ms']:.0f} | {m['ratio']:.2f} | "
                    f"{'yes' if m['ortools'] else 'no'} | {'yes' if m['stripe'] else 'no'} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.import_time")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--function", action="append", help="only this function (logical id); repeatable")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    text = run(args)
    return emit(text, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
