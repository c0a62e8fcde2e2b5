"""The `homevisits` console script: local tokens, the VROOM-compatible solver, the OpenAPI document."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "solve":
        from dispatch.solve_cli import main as solve_main  # OR-Tools only when solving
        return solve_main(argv[1:])
    parser = argparse.ArgumentParser(prog="homevisits")
    sub = parser.add_subparsers(dest="cmd", required=True)
    tok = sub.add_parser("token", help="print a JWT the local gateway accepts (as Cognito would issue)")
    tok.add_argument("--role", required=True, choices=["patient", "clinician", "dispatcher"])
    tok.add_argument("--sub", required=True)
    tok.add_argument("--region", default=None)
    tok.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    tok.add_argument("--personal-number", default=None,
                     help="the e-ID-verified personal number (custom:personal_number); patients only")
    sub.add_parser("solve", help="solve a VROOM-format problem: homevisits solve PROBLEM.json [--time-limit S]")
    sub.add_parser("openapi", help="print the OpenAPI document of every route")
    args = parser.parse_args(argv)
    if args.cmd == "token":
        from devstack.tokens import issue
        if args.role != "patient" and not args.region:
            parser.error("staff tokens need --region")
        print(issue(args.role, args.sub, args.region, args.ttl, personal_number=args.personal_number))
        return 0
    if args.cmd == "openapi":
        from devstack.openapi import document
        import json
        print(json.dumps(document(), indent=2, sort_keys=True))
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
