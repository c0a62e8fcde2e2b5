"""``homevisits solve PROBLEM.json [--time-limit SECONDS] [--seed N] [--solution-limit N] [--indent N]``.

Reads a VROOM input JSON (``-`` = stdin), writes VROOM output JSON to stdout. Never a stack trace:
every failure is one line on stderr, VROOM's ``{"code": …, "error": …}`` on stdout, and an exit code:

- 0: a plan was written (visits it leaves unassigned are counted on stderr, with a hint when a
  longer ``--time-limit`` might serve them);
- 1: internal error (the solver failed, or its plan did not pass the independent checker, or
  stdout was closed before the plan was written);
- 2: input error (bad arguments, unreadable file, not UTF-8, not JSON, nested too deeply, a problem
  VROOM would refuse or a field we do not support);
- 130: interrupted.

These are VROOM's own codes (0 ok, 1 internal, 2 input). ``--time-limit`` bounds the whole
command from the start of the process: Python's start-up, imports, reading the problem, building
the plan and writing it count against it (measured in docs/benchmarks-dispatch.md).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_TIME_LIMIT_S = 86400.0
INT32_MAX = 2**31 - 1
MIN_SEARCH_S = 0.05  # what the search gets when reading the problem ate the whole limit
OUTPUT_RESERVE_S = 0.05  # writing and checking the plan: this + OUTPUT_RESERVE_PER_JOB_S a job
OUTPUT_RESERVE_PER_JOB_S = 0.00008  # (1 000 visits: 0.06-0.09 s measured, 0.13 s reserved)


class CliError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _seconds(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(x) or not 0 < x <= MAX_TIME_LIMIT_S:
        raise argparse.ArgumentTypeError(f"must be a number of seconds in (0, {MAX_TIME_LIMIT_S:g}], got {text!r}")
    return x


def _bounded_int(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            x = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not lo <= x <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}..{hi}, got {x}")
        return x
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit itself
        raise CliError(EXIT_INPUT, message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="homevisits solve", description="Solve a VROOM-format routing problem.")
    p.add_argument("problem", help="VROOM input JSON file ('-' for stdin)")
    p.add_argument("--time-limit", type=_seconds, default=10.0,
                   help=f"search time in seconds, in (0, {MAX_TIME_LIMIT_S:g}] (default 10)")
    p.add_argument("--seed", type=_bounded_int(0, INT32_MAX), default=0, help="search seed (default 0)")
    p.add_argument("--solution-limit", type=_bounded_int(1, INT32_MAX), default=None,
                   help="stop after this many solutions (deterministic plans)")
    p.add_argument("--indent", type=_bounded_int(0, 16), default=None, help="pretty-print JSON")
    return p


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _read(path: str) -> Any:
    try:
        if path == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                raw = fh.read()
    except OSError as exc:
        raise CliError(EXIT_INPUT, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CliError(EXIT_INPUT, f"{path} is not UTF-8 (JSON must be): byte 0x{raw[exc.start]:02x} at "
                                   f"offset {exc.start}") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise CliError(EXIT_INPUT, f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers of thousands of digits
        raise CliError(EXIT_INPUT, f"{path} is not valid JSON: {exc}") from None


def _servable_alone(problem, job) -> bool:
    """Could some vehicle serve ``job`` on an otherwise empty route (windows, skills, capacity;
    breaks and remote doctors aside)? Then leaving it unassigned is the search's doing."""
    D = problem.durations
    for v in problem.vehicles:
        if not job.skills <= v.skills:
            continue
        amounts = (job.delivery, job.pickup)
        if any(k < len(v.capacity) and a[k] > v.capacity[k] for a in amounts for k in range(len(a))):
            continue
        t0, t1 = v.time_window
        arrive = t0 + (D[v.start][job.location] if v.start is not None else 0)
        back = D[job.location][v.end] if v.end is not None else 0
        for a, b in job.time_windows or ((0, t1),):
            begin = max(arrive, a)
            if begin <= b and begin + job.service + back <= t1:
                return True
    return False


def _report_unassigned(problem, solution, time_limit: float) -> None:
    if not solution.unassigned:
        return
    jobs = problem.job_by_id()
    fits = [j for j in solution.unassigned if _servable_alone(problem, jobs[j])]
    msg = f"homevisits solve: {len(solution.unassigned)} of {len(problem.jobs)} jobs unassigned"
    if fits:
        msg += (f"; {len(fits)} of them fit an empty route on their own, so the time limit "
                f"({time_limit:g} s) may have been too short: try a longer --time-limit")
    else:
        msg += " (none of them fits any vehicle on its own: skills, time windows or capacity)"
    print(msg, file=sys.stderr)


def _run(argv: list[str], t0: float) -> dict:
    args = _parser().parse_args(argv)
    from .vroom_io import InputError, for_optimizer, from_optimizer, parse_input, to_vroom_output

    data = _read(args.problem)
    try:
        parsed = parse_input(data)
        model = for_optimizer(parsed.problem)
    except InputError as exc:
        raise CliError(EXIT_INPUT, f"invalid problem: {exc}") from None
    from .feasibility import check
    from .optimizer import solve

    problem = parsed.problem
    # the time limit is the command's: reading and checking the problem count against it
    reserve = OUTPUT_RESERVE_S + OUTPUT_RESERVE_PER_JOB_S * len(model.jobs)
    budget = max(MIN_SEARCH_S, args.time_limit - (time.monotonic() - t0) - reserve)
    try:
        solution = solve(model, budget, args.seed, solution_limit=args.solution_limit,
                         initial_routes=parsed.initial_routes or None)
    except ValueError as exc:
        raise CliError(EXIT_INPUT, f"invalid problem: {exc}") from None
    except RuntimeError as exc:
        raise CliError(EXIT_INTERNAL, f"no plan: {exc}") from None
    solution = from_optimizer(solution, problem)
    out = to_vroom_output(solution, problem, parsed.echo)
    errs, _ = check(problem, out)
    if errs:
        raise CliError(EXIT_INTERNAL, f"the plan fails the independent check ({len(errs)} violations, "
                                      f"first: {errs[0]})")
    _report_unassigned(problem, solution, args.time_limit)
    return {"out": out, "indent": args.indent}


def process_start() -> float:
    """When this process started, on ``time.monotonic``'s clock (Linux: from /proc, to 10 ms;
    elsewhere: now)."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat", "rb") as fh:
            ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime", "rb") as fh:
            uptime = float(fh.read().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return now
    return now - age if 0 <= age < 60 else now


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "solve":
        argv = argv[1:]
    if any(a in ("-h", "--help") for a in argv):
        _parser().print_help()
        return EXIT_OK
    t0 = process_start()
    try:
        result = _run(argv, t0)
    except CliError as exc:
        return _fail(exc.code, str(exc))
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted")
    except RecursionError:
        return _fail(EXIT_INPUT, "problem nested too deeply")
    except MemoryError:
        return _fail(EXIT_INTERNAL, "out of memory")
    except Exception as exc:  # the promise: never a stack trace
        return _fail(EXIT_INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
    if not _write(result["out"], result["indent"]):
        print("homevisits solve: stdout closed before the plan was written", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


def _write(out: dict, indent: int | None) -> bool:
    try:
        json.dump(out, sys.stdout, indent=indent)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return True
    except BrokenPipeError:  # the reader went away (e.g. `| head`)
        # no second error when the interpreter flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False


def _fail(code: int, message: str) -> int:
    print(f"homevisits solve: {message}", file=sys.stderr)
    _write({"code": code, "error": message}, None)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
