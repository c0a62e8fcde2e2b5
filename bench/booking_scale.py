"""Booking at scale (issue 15): one region-day of 200-3 000 visits, many bookers at once, cost per booking.

Seeds a region-day's capacity ledger with N visits that fit (doctors 08-20 on a grid over Stockholm,
each with `--fill` visits near its start, every route re-checked by `homevisits.capacity`), then
calls the booking function's own `lambda_handler` (API Gateway v2 events built as the local gateway
builds them) from K threads at once, and counts every DynamoDB call through botocore
(`ReturnConsumedCapacity=TOTAL` added to each request, the units summed from the answers).

    python -m bench.booking_scale [--sizes 200,1000,2000] [--bookers 1,10,20,50] [--out FILE]
    (figures and their reading: docs/benchmarks-scale.md)
    python -m bench.booking_scale --target env   # the tables named by the environment (real DynamoDB)

`--target local` (default) starts a DynamoDB Local of its own (in memory) and creates the template's
tables; `--target env` uses whatever the environment names: AWS credentials, AWS_REGION, the table
variables of `homevisits.settings` (BOOKINGS_TABLE, CAPACITY_TABLE, ...) and, if set,
AWS_ENDPOINT_URL_DYNAMODB. It overwrites the Stockholm ledgers of days 2..horizon and leaves its
bookings behind: point it at a bench deployment's tables, never at production.

Measured: ledger bytes per visit (the stored item(s) of the region-day, DynamoDB's size rule:
attribute names + values); the largest region-day that still takes a booking (bisection on N);
booking latency p50/p99, lost races (cancelled TransactWriteItems) and 409 answers per cell of
(day size x concurrent bookers); read/write units and handler seconds per booking, priced at
on-demand rates (the PRICE_* constants: US East (N. Virginia), sources in docs/benchmarks-scale.md).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from devstack.scale_data import WINDOWS, generate_day, seed_day
from homevisits import settings

# Doctors start on a grid inside Stockholm's service area; visits lie within ~1 km of their doctor.
GRID = (59.22, 17.88, 59.45, 18.25)
ITEM_LIMIT = 400 * 1024

# On-demand prices, US East (N. Virginia), read 2026-12-05 (sources in docs/benchmarks-scale.md).
PRICE_WRU = 0.625 / 1e6  # USD per write request unit
PRICE_RRU = 0.125 / 1e6  # USD per read request unit
PRICE_GBS_ARM = 0.0000133334  # USD per GB-second, arm64
PRICE_REQUEST = 0.20 / 1e6  # USD per Lambda request


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000 if values else 0.0


# ---- AWS call accounting

@dataclass
class Meter:
    """Every botocore call of the process: count, units consumed, transactions cancelled."""
    calls: Counter = field(default_factory=Counter)
    rcu: float = 0.0
    wcu: float = 0.0
    cancelled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self):
        with self.lock:
            self.calls.clear()
            self.rcu = self.wcu = 0.0
            self.cancelled = 0

    def add(self, op: str, response: dict | None, cancelled: bool):
        caps = (response or {}).get("ConsumedCapacity")
        caps = caps if isinstance(caps, list) else [caps] if caps else []
        with self.lock:
            self.calls[op] += 1
            self.cancelled += cancelled
            for c in caps:
                r, w = c.get("ReadCapacityUnits"), c.get("WriteCapacityUnits")
                if r is None and w is None:  # older answers give only the total
                    if op in ("GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"):
                        r = c.get("CapacityUnits", 0)
                    else:
                        w = c.get("CapacityUnits", 0)
                self.rcu += float(r or 0)
                self.wcu += float(w or 0)


CAPACITY_OPS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                "BatchWriteItem", "TransactWriteItems", "TransactGetItems"}


def install_meter(meter: Meter):
    """Wrap botocore's one entry point for API calls (PynamoDB and boto3 both go through it)."""
    import botocore.client
    from botocore.exceptions import ClientError
    original = botocore.client.BaseClient._make_api_call

    def metered(self, operation_name, api_params):
        if self.meta.service_model.service_name != "dynamodb":
            return original(self, operation_name, api_params)
        if operation_name in CAPACITY_OPS:
            api_params = {**api_params, "ReturnConsumedCapacity": "TOTAL"}
        try:
            response = original(self, operation_name, api_params)
        except ClientError as e:
            meter.add(operation_name, e.response, e.response.get("Error", {}).get("Code") ==
                      "TransactionCanceledException")
            raise
        meter.add(operation_name, response, False)
        return response

    botocore.client.BaseClient._make_api_call = metered
    return lambda: setattr(botocore.client.BaseClient, "_make_api_call", original)


# ---- the region-day

def _item_bytes(item: dict) -> int:
    """DynamoDB's size of an item (low-level JSON form): names + values (strings/numbers as sent)."""
    def size(v: dict) -> int:
        (t, x), = v.items()
        if t in ("S", "N", "B"):
            return len(x.encode() if isinstance(x, str) else x)
        if t == "M":
            return 3 + sum(len(k.encode()) + size(val) + 1 for k, val in x.items())
        if t == "L":
            return 3 + sum(size(val) + 1 for val in x)
        if t in ("BOOL", "NULL"):
            return 1
        return sum(len(s.encode()) for s in x)
    return sum(len(k.encode()) + size(v) for k, v in item.items())


def ledger_items(ddb, table: str, rday: str) -> list[dict]:
    """The stored item(s) of a region-day's ledger (one Query on its partition)."""
    out, kw = [], {}
    while True:
        r = ddb.query(TableName=table, KeyConditionExpression="region_day = :d",
                      ExpressionAttributeValues={":d": {"S": rday}}, ConsistentRead=True, **kw)
        out += r["Items"]
        if "LastEvaluatedKey" not in r:
            return out
        kw = {"ExclusiveStartKey": r["LastEvaluatedKey"]}


# ---- bookings

class Booker:
    """The booking function in this process, called as Lambda calls it."""

    def __init__(self, region, seed: int):
        from booking import app as booking_app
        from devstack.gateway import api_event
        from devstack.lambda_runtime import LambdaContext
        from devstack.tokens import issue
        self.app, self.ctx_cls, self.api_event, self.issue = booking_app, LambdaContext, api_event, issue
        self.region = region
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()

    def event(self, day: date, near: tuple[float, float]) -> dict:
        from bench.booking_latency import _personnummer
        with self.lock:
            rnd = self.rnd
            body = {"visit_type": "doctor", "date": day.isoformat(), "window_start": rnd.choice(WINDOWS),
                    "postal_code": "11122",
                    "address": {"street": "Skalgatan 1", "city": "Stockholm",
                                "lat": near[0] + rnd.uniform(-0.008, 0.008), "lon": near[1] + rnd.uniform(-0.015, 0.015)},
                    "patient": {"personal_number": _personnummer(rnd), "name": "Bench Patient",
                                "phone": "+46701234567"},
                    "symptoms": "Hosta"}
            sub = f"bench-scale-{rnd.getrandbits(40):x}"
        token = self.issue("patient", sub)
        return self.api_event("POST", "/bookings", token=token, json_body=body,
                              headers={"Idempotency-Key": str(uuid.uuid4())})[1]

    def call(self, event: dict) -> tuple[float, int, str | None]:
        t = time.perf_counter()
        r = self.app.lambda_handler(event, self.ctx_cls("BookingFunction"))
        dt = time.perf_counter() - t
        code = None
        if r["statusCode"] >= 400:
            try:
                code = json.loads(r["body"])["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
        return dt, r["statusCode"], code


def process_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def run_cell(booker: Booker, meter: Meter, day: date, starts: list[tuple[float, float]], k: int,
             n: int, server_pid: int | None = None) -> dict:
    """n bookings of one region-day by k concurrent bookers (threads), all released at once."""
    events = [booker.event(day, random.Random(i).choice(starts)) for i in range(n)]
    queue = list(events)
    qlock = threading.Lock()
    results: list[tuple[float, int, str | None]] = []
    barrier = threading.Barrier(k)

    def worker(_):
        barrier.wait()
        out = []
        while True:
            with qlock:
                if not queue:
                    return out
                ev = queue.pop()
            out.append(booker.call(ev))

    meter.reset()
    t0, cpu0, server0 = time.perf_counter(), time.process_time(), process_cpu_s(server_pid)
    with ThreadPoolExecutor(k) as pool:
        for part in pool.map(worker, range(k)):
            results += part
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    server1 = process_cpu_s(server_pid)
    server = (server1 - server0) if server0 is not None and server1 is not None else None
    ok = [r for r in results if r[1] == 201]
    codes = Counter(r[2] or str(r[1]) for r in results)
    accepted = max(1, len(ok))
    return {"n": n, "k": k, "p50": _pct([r[0] for r in ok], 0.5), "p99": _pct([r[0] for r in ok], 0.99),
            "codes": dict(codes), "accepted": len(ok), "lost_races": meter.cancelled,
            "tx": meter.calls.get("TransactWriteItems", 0), "rcu": meter.rcu / accepted,
            "wcu": meter.wcu / accepted, "seconds": sum(r[0] for r in ok) / accepted, "wall": wall,
            "cpu": cpu / max(1, len(results)),
            "server_cpu": server / max(1, len(results)) if server is not None else None,
            "calls": {op: c / accepted for op, c in sorted(meter.calls.items())}}


def first_booking_at(booker: Booker, meter: Meter, region, rday_of, n: int, fill: int, seed: int) -> dict:
    """Seed a fresh day of n visits and book one more: what happens, and how big the ledger is."""
    day = rday_of()
    rday = f"{region.id}#{day}"
    shifts, visits, routes = generate_day(region, day, n, fill, seed, GRID)
    try:
        seed_day(rday, shifts, visits, routes)
    except Exception as e:  # noqa: BLE001 - the store refusing the seed is the answer
        return {"n": len(visits), "stored": False, "error": type(e).__name__, "bytes": None}
    meter.reset()
    starts = [(s["start_location"]["lat"], s["start_location"]["lon"]) for s in shifts.values()]
    dt, status, code = booker.call(booker.event(day, starts[0]))
    return {"n": len(visits), "stored": True, "status": status, "code": code, "seconds": dt,
            "lost_races": meter.cancelled}


def run(args) -> str:
    from devstack.stack import Stack

    saved = dict(os.environ)
    stack = None
    if args.target == "local":
        stack = Stack.ephemeral(Path(tempfile.mkdtemp(prefix="bench-scale-")))
        stack.start_dynamodb()
        os.environ.update(stack.env)
        settings.reload()  # the code under test reads its environment once
    try:
        import boto3

        from homevisits.regions import load_config
        from homevisits.settings import table_name

        region = load_config().region("stockholm")
        meter = Meter()
        uninstall = install_meter(meter)
        booker = Booker(region, seed=1)
        ddb = boto3.client("dynamodb")
        table = table_name("CapacityTable")
        # Bookable days are today..horizon: the bench cycles through days 2..horizon-1 and re-seeds
        # (overwrites) a day's ledger before each use.
        base = region.local_date(datetime.now(region.tz)) + timedelta(days=2)
        span = max(1, region.booking_horizon_days - 3)
        counter = iter(range(10_000))

        def next_day() -> date:
            return base + timedelta(days=next(counter) % span)

        # Warm the handler (imports, clients, idempotency table) on a small day.
        warm_day = next_day()
        shifts, visits, routes = generate_day(region, warm_day, 20, args.fill, 0, GRID)
        seed_day(f"{region.id}#{warm_day}", shifts, visits, routes)
        for _ in range(3):
            booker.call(booker.event(warm_day, (GRID[0] + 0.1, GRID[1] + 0.2)))

        lines = []
        # 1. bytes per visit
        size_rows = []
        for n in args.byte_sizes:
            day = next_day()
            rday = f"{region.id}#{day}"
            shifts, visits, routes = generate_day(region, day, n, args.fill, n, GRID)
            seed_day(rday, shifts, visits, routes)
            items = ledger_items(ddb, table, rday)
            sizes = [_item_bytes(i) for i in items]
            size_rows.append((len(visits), len(shifts), len(items), sum(sizes), max(sizes)))
        (n0, _, _, b0, _), (n1, _, _, b1, _) = size_rows[0], size_rows[-1]
        per_visit = (b1 - b0) / max(1, n1 - n0)
        lines += ["### Ledger bytes per visit", "",
                  f"Region-days seeded with {args.fill} confirmed doctor visits per doctor (plus that doctor's "
                  "shift), sizes by DynamoDB's rule (attribute names + values) of what the table holds.", "",
                  "| visits | doctors | ledger items | bytes in all | largest item | bytes per visit (all / visits) |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for n, c, items, total, largest in size_rows:
            lines.append(f"| {n} | {c} | {items} | {total:,} | {largest:,} | {total / n:.0f} |")
        lines += ["", f"Marginal bytes per visit (slope {n0} -> {n1} visits, shifts included): **{per_visit:.0f}**.", ""]

        # 2. the largest day that still books
        lo, hi = args.limit_range
        probes = []
        rounds = 0
        while hi - lo > args.limit_step and rounds < 8:
            mid = (lo + hi) // 2
            r = first_booking_at(booker, meter, region, next_day, mid, args.fill, mid)
            probes.append(r)
            if r.get("stored") and r.get("status") == 201:
                lo = mid
            else:
                hi = mid
            rounds += 1
        lines += ["### The largest region-day that still takes a booking", "",
                  f"Bisection on the day's size ({args.limit_range[0]}-{args.limit_range[1]} visits, step "
                  f"{args.limit_step}): seed the day, then book one more visit.", "",
                  "| visits already booked | stored? | the next booking answers | handler s | lost races |",
                  "|---:|---|---|---:|---:|"]
        for r in sorted(probes, key=lambda r: r["n"]):
            if not r["stored"]:
                lines.append(f"| {r['n']} | no ({r['error']}) | - | - | - |")
            else:
                lines.append(f"| {r['n']} | yes | {r['status']} {r['code'] or ''} | {r['seconds']:.2f} | "
                             f"{r['lost_races']} |")
        failed_above = hi != args.limit_range[1] or any(r["n"] == hi for r in probes)
        lines += ["", f"Largest day that booked: **{lo}** visits " +
                  (f"(the next probe up, {hi}, did not)." if failed_above else
                   f"(every probe booked; {hi} is the end of the range, not a limit)."), ""]

        # 3. concurrency
        rows = []
        for n in args.sizes:
            for k in args.bookers:
                day = next_day()
                shifts, visits, routes = generate_day(region, day, n, args.fill, n + k, GRID)
                try:
                    seed_day(f"{region.id}#{day}", shifts, visits, routes)
                except Exception as e:  # noqa: BLE001
                    rows.append({"n": n, "k": k, "error": type(e).__name__})
                    continue
                starts = [(s["start_location"]["lat"], s["start_location"]["lon"]) for s in shifts.values()]
                requests = max(args.requests, 2 * k) if k > 1 else args.requests
                r = run_cell(booker, meter, day, starts, k, requests, stack.pids.get("dynamodb") if stack else None)
                r["n"] = len(visits)
                rows.append(r)
                print(f"  {n} visits, {k} bookers: p50 {r['p50']:.0f} ms p99 {r['p99']:.0f} ms "
                      f"cpu {r['cpu'] * 1000:.0f} + {server_ms(r)} ms {r['codes']} "
                      f"lost {r['lost_races']} wcu {r['wcu']:.1f} rcu {r['rcu']:.1f}", flush=True)
        lines += ["### Many bookers on one region-day", "",
                  "Each cell: a fresh region-day seeded with that many visits, then `requests` bookings by `k` "
                  "threads released together (each thread books one after another). Latency of accepted "
                  "bookings (handler wall time in this process); p99 / single: against the same day size's "
                  "one-booker p99 of this run; CPU ms: per request, this process's CPU time (all its "
                  "threads: the booking code, botocore) and the DynamoDB server's (DynamoDB Local's process, "
                  "when the bench started it).", "",
                  "| visits | k bookers | requests | p50 ms | p99 ms | p99 / single | CPU ms / request (bookers + server) | bookings/s | "
                  "answers | lost races (cancelled tx) | tx per booking | RRU / booking | WRU / booking | "
                  "DynamoDB calls / booking |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"]
        single_p99 = {r["n"]: r["p99"] for r in rows if "error" not in r and r["k"] == 1}
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['n']} | {r['k']} | - | - | - | - | - | - | seed refused: {r['error']} | | | | | |")
                continue
            calls = ", ".join(f"{op} {c:.2f}" for op, c in r["calls"].items())
            ratio = f"{r['p99'] / single_p99[r['n']]:.1f}" if single_p99.get(r["n"]) else "-"
            lines.append(f"| {r['n']} | {r['k']} | {sum(r['codes'].values())} | {r['p50']:.0f} | {r['p99']:.0f} | "
                         f"{ratio} | {r['cpu'] * 1000:.0f} + {server_ms(r)} | "
                         f"{sum(r['codes'].values()) / r['wall']:.1f} | {r['codes']} | {r['lost_races']} | {r['tx'] / max(1, r['accepted']):.2f} | "
                         f"{r['rcu']:.1f} | {r['wcu']:.1f} | {calls} |")
        lines.append("")

        # 4. cost
        singles = [r for r in rows if "error" not in r and r["k"] == 1]
        if singles:
            mem_gb = args.memory_mb / 1024
            lines += ["### Cost per 1 000 bookings (single booker, on-demand)", "",
                      f"Prices: DynamoDB on-demand ${PRICE_WRU * 1e6:.3f} per million write request units, "
                      f"${PRICE_RRU * 1e6:.3f} per million read request units; Lambda arm64 "
                      f"${PRICE_GBS_ARM:.10f} per GB-second and ${PRICE_REQUEST * 1e6:.2f} per million requests; "
                      f"BookingFunction {args.memory_mb} MB. Handler seconds are this machine's wall time.", "",
                      "| visits | WRU / booking | RRU / booking | GB-s / booking | DynamoDB $ / 1 000 | Lambda $ / 1 000 | "
                      "total $ / 1 000 |", "|---:|---:|---:|---:|---:|---:|---:|"]
            for r in singles:
                gbs = r["seconds"] * mem_gb
                ddb_cost = 1000 * (r["wcu"] * PRICE_WRU + r["rcu"] * PRICE_RRU)
                lam_cost = 1000 * (gbs * PRICE_GBS_ARM + PRICE_REQUEST)
                lines.append(f"| {r['n']} | {r['wcu']:.1f} | {r['rcu']:.1f} | {gbs:.4f} | {ddb_cost:.4f} | "
                             f"{lam_cost:.4f} | {ddb_cost + lam_cost:.4f} |")
            lines.append("")
        uninstall()
        target = ("DynamoDB Local (in memory) started by the bench" if stack else
                  f"the tables named by the environment (endpoint {os.environ.get('AWS_ENDPOINT_URL_DYNAMODB') or 'AWS'})")
        head = (f"Target: {target}. The booking function runs in this process ({os.cpu_count()} cores, shared with "
                "other work: absolute times move between runs; compare within a run).\n")
        return head + "\n" + "\n".join(lines)
    finally:
        if stack is not None:
            stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        settings.reload()  # the code under test reads its environment once


def server_ms(r: dict) -> str:
    return f"{r['server_cpu'] * 1000:.0f}" if r.get("server_cpu") is not None else "?"


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=("local", "env"), default="local")
    ap.add_argument("--sizes", type=_ints, default=[200, 1000, 2000])
    ap.add_argument("--bookers", type=_ints, default=[1, 10, 20, 50])
    ap.add_argument("--requests", type=int, default=20, help="bookings per cell (at least 2 per booker)")
    ap.add_argument("--byte-sizes", type=_ints, default=[100, 1000])
    ap.add_argument("--limit-range", type=_ints, default=[200, 4000])
    ap.add_argument("--limit-step", type=int, default=100)
    ap.add_argument("--fill", type=int, default=8, help="visits per doctor already booked")
    ap.add_argument("--memory-mb", type=int, default=512, help="BookingFunction's MemorySize")
    ap.add_argument("--out", default=None, help="also write the markdown here (bench.run does)")
    args = ap.parse_args(argv)
    report = run(args)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

