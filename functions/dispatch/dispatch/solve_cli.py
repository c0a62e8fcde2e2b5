"""``homevisits solve PROBLEM.json [--time-limit SECONDS] [--seed N] [--solution-limit N]``.

Reads a VROOM input JSON (``-`` = stdin), writes VROOM output JSON to stdout. Exit 2 on bad input.
"""
from __future__ import annotations

import argparse
import json
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="homevisits solve", description="Solve a VROOM-format routing problem.")
    p.add_argument("problem", help="VROOM input JSON file ('-' for stdin)")
    p.add_argument("--time-limit", type=float, default=10.0, help="search time in seconds (default 10)")
    p.add_argument("--seed", type=int, default=0, help="search seed (default 0)")
    p.add_argument("--solution-limit", type=int, default=None,
                   help="stop after this many solutions (deterministic plans)")
    p.add_argument("--indent", type=int, default=None, help="pretty-print JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "solve":
        argv = argv[1:]
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 2 if exc.code else 0
    if args.time_limit <= 0:
        print("homevisits solve: --time-limit must be > 0", file=sys.stderr)
        return 2
    from .vroom_io import InputError, add_route_durations, parse_problem, to_vroom_output

    try:
        if args.problem == "-":
            data = json.load(sys.stdin)
        else:
            with open(args.problem, encoding="utf-8") as fh:
                data = json.load(fh)
    except OSError as exc:
        print(f"homevisits solve: cannot read {args.problem}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"homevisits solve: {args.problem} is not valid JSON: {exc}", file=sys.stderr)
        return 2
    try:
        problem = parse_problem(data)
    except InputError as exc:
        print(f"homevisits solve: invalid problem: {exc}", file=sys.stderr)
        return 2
    from .optimizer import solve

    try:
        solution = solve(problem, args.time_limit, args.seed, solution_limit=args.solution_limit)
    except ValueError as exc:
        print(f"homevisits solve: invalid problem: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"homevisits solve: {exc}", file=sys.stderr)
        return 1
    out = add_route_durations(to_vroom_output(solution), problem)
    json.dump(out, sys.stdout, indent=args.indent)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
