"""Booking path latency on the local stack, against a bare DynamoDB GetItem measured in the same run.

Starts a fresh local stack (DynamoDB Local, localstripe, gateway), seeds doctors' shifts, then:
1. baseline: N bare GetItem round trips to DynamoDB Local (boto3, one client, warm);
2. HTTP: N sequential POST /bookings through the gateway (token check, Powertools idempotency,
   capacity check, one transaction), each with a fresh Idempotency-Key;
3. floor: N bare TransactWriteItems shaped like a booking's;
4. in-process: N calls of the booking function's `lambda_handler` with the API Gateway v2 event the
   gateway would build (`devstack.gateway.api_event`), every botocore API call counted
   (`BaseClient._make_api_call`), so the DynamoDB calls per booking are exact.

    python -m bench.booking_latency [--requests 120] [--out FILE]

Goal: p99 of a booking <= 3 x one DynamoDB round trip. Writes markdown to docs/benchmarks-booking.md
unless --out says otherwise."""
from __future__ import annotations

import argparse
import random
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from bench.local_stack import running_stack

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks-booking.md"
WINDOWS = ["08:00", "10:00", "12:00", "14:00", "16:00", "18:00"]
CENTER = (59.3326, 18.0649)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000 if values else 0.0


def _personnummer(rnd: random.Random) -> str:
    from devstack.demo_data import synthetic_personnummer
    born = datetime(1950, 1, 1) + timedelta(days=rnd.randrange(0, 365 * 50))
    return synthetic_personnummer(born.date(), rnd.randrange(100, 999))


def _body(day, rnd: random.Random) -> dict:
    return {"visit_type": "doctor", "date": day.isoformat(), "window_start": rnd.choice(WINDOWS),
            "postal_code": "11122",
            "address": {"street": "Bänkgatan 1", "city": "Stockholm", "lat": CENTER[0] + rnd.uniform(-0.05, 0.05),
                        "lon": CENTER[1] + rnd.uniform(-0.1, 0.1)},
            "patient": {"personal_number": _personnummer(rnd), "name": "Bench Patient", "phone": "+46701234567"},
            "symptoms": "Hosta"}


def run(args) -> str:
    """Start a stack, measure, stop it; answers the markdown report."""
    from devstack.tokens import issue

    n = int(args.requests)
    with running_stack("bench-booking-") as stack:
        base = stack.urls["api"]
        http = requests.Session()
        today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
        # ~60 bookings per region-day (a realistic day), 12 doctors 08-20 each day: room for all.
        per_day = 60
        days = [today + timedelta(days=2 + i) for i in range((3 * n) // per_day + 4)]
        disp = issue("dispatcher", "bench-dispatcher", "stockholm")
        for day in days:
            for c in range(12):
                r = http.put(f"{base}/regions/stockholm/clinicians/bench-doc-{c}/shifts/{day}",
                             json={"role": "doctor", "start": "08:00", "end": "20:00",
                                   "start_location": {"lat": CENTER[0] + 0.01 * (c % 4), "lon": CENTER[1] + 0.01 * (c // 4)}},
                             headers={"Authorization": f"Bearer {disp}"}, timeout=60)
                r.raise_for_status()
        ddb = stack.boto_client("dynamodb")
        for _ in range(20):  # warm the client and DynamoDB Local
            ddb.get_item(TableName="BookingsTable", Key={"booking_id": {"S": "warm"}})
        baseline = []
        for i in range(n):
            t = time.perf_counter()
            ddb.get_item(TableName="BookingsTable", Key={"booking_id": {"S": f"none-{i}"}})
            baseline.append(time.perf_counter() - t)

        rnd = random.Random(1)
        http_times, statuses = [], Counter()
        # An account per booking (an account has at most 3 open bookings a day), made before timing.
        tokens = [issue("patient", f"bench-patient-http-{i}") for i in range(n + 5)]
        for i in range(5):  # warm the handler (imports, clients)
            http.post(f"{base}/bookings", json=_body(days[0], rnd),
                      headers={"Authorization": f"Bearer {tokens[n + i]}", "Idempotency-Key": str(uuid.uuid4())},
                      timeout=60)
        for i in range(n):
            body = _body(days[i // per_day], rnd)
            t = time.perf_counter()
            r = http.post(f"{base}/bookings", json=body,
                          headers={"Authorization": f"Bearer {tokens[i]}", "Idempotency-Key": str(uuid.uuid4())},
                          timeout=60)
            http_times.append(time.perf_counter() - t)
            statuses[r.status_code] += 1

        # The floor on this stack: one TransactWriteItems shaped like a booking's (a new booking-sized
        # item, a new note, a copy of the day's largest ledger shard, an idempotency-record update).
        shards = ddb.query(TableName="CapacityTable", KeyConditionExpression="region_day = :d",
                           ExpressionAttributeValues={":d": {"S": f"stockholm#{days[0]}"}},
                           ConsistentRead=True)["Items"]
        led = max(shards, key=lambda it: len(str(it)))
        big = "x" * 1200  # a booking item is ~1.2 kB
        tx_times = []
        for i in range(n):
            items = [
                {"Put": {"TableName": "BookingsTable", "ConditionExpression": "attribute_not_exists(booking_id)",
                         "Item": {"booking_id": {"S": f"floor-{i}"}, "blob": {"S": big}}}},
                {"Put": {"TableName": "ClinicalTable", "ConditionExpression": "attribute_not_exists(booking_id)",
                         "Item": {"booking_id": {"S": f"floor-{i}"}, "symptoms": {"S": "Hosta"}}}},
                {"Put": {"TableName": "CapacityTable", "Item": {**led, "region_day": {"S": f"floor#{i}"}}}},
                {"Update": {"TableName": "IdempotencyTable", "Key": {"id": {"S": f"floor-{i}"}},
                            "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {":s": {"S": "COMPLETED"}}}},
            ]
            t = time.perf_counter()
            ddb.transact_write_items(TransactItems=items)
            tx_times.append(time.perf_counter() - t)

        # In-process: the booking function's own lambda_handler on the gateway's API Gateway v2
        # event (what Lambda runs, without the local gateway's HTTP hop and worker pipe), with
        # every AWS API call counted.
        import botocore.client

        from booking import app as booking_app
        from devstack.gateway import api_event
        from devstack.lambda_runtime import LambdaContext
        calls: Counter = Counter()
        original = botocore.client.BaseClient._make_api_call

        def counting(self, operation_name, api_params):
            calls[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
            return original(self, operation_name, api_params)

        def event_for(day) -> dict:  # built before the clock starts: API Gateway's work, not ours
            # an account per booking (an account has at most 3 open bookings a day)
            token = issue("patient", f"bench-patient-inproc-{uuid.uuid4().hex[:12]}")
            return api_event("POST", "/bookings", token=token, json_body=_body(day, rnd),
                             headers={"Idempotency-Key": str(uuid.uuid4())})[1]

        def handler_call(event) -> int:
            return booking_app.lambda_handler(event, LambdaContext("BookingFunction"))["statusCode"]

        botocore.client.BaseClient._make_api_call = counting
        inproc: dict[str, list[float]] = {}
        outcomes: Counter = Counter()
        try:
            offset = n // per_day + 1
            for i in range(5):
                handler_call(event_for(days[-1]))
            for phase, paused in (("replanning", False), ("alone", True)):
                # "replanning": the stack as it runs, every booking's stream record re-plans its
                # region-day (OR-Tools in a worker process) on the same 2 cores; "alone": those
                # stream consumers held back (POST /_local/streams), the booking path by itself.
                http.post(f"{base}/_local/streams", json={"paused": paused}, timeout=10).raise_for_status()
                http.post(f"{base}/_local/drain", json={"timeout_s": 300}, timeout=320)
                calls.clear()
                times = inproc.setdefault(phase, [])
                for i in range(n):
                    event = event_for(days[offset + i // per_day])
                    t = time.perf_counter()
                    outcomes[handler_call(event)] += 1
                    times.append(time.perf_counter() - t)
                offset += n // per_day + 1
            http.post(f"{base}/_local/streams", json={"paused": False}, timeout=10)
        finally:
            botocore.client.BaseClient._make_api_call = original

    rt50, rt99 = _pct(baseline, 0.5), _pct(baseline, 0.99)
    tx50, tx99 = _pct(tx_times, 0.5), _pct(tx_times, 0.99)
    h50, h99 = _pct(http_times, 0.5), _pct(http_times, 0.99)
    i50, i99 = _pct(inproc["alone"], 0.5), _pct(inproc["alone"], 0.99)
    r50, r99 = _pct(inproc["replanning"], 0.5), _pct(inproc["replanning"], 0.99)
    floor50 = rt50 + tx50
    per_req = {k: v / n for k, v in sorted(calls.items())}  # the last phase's calls (n bookings)
    ddb_calls = sum(v for k, v in per_req.items() if k.startswith("dynamodb."))
    lines = [
        f"{n} sequential bookings per path on a fresh local stack (DynamoDB Local, in-memory), 12 doctors "
        f"08-20 per region-day, ~{per_day} bookings per region-day, random windows and addresses in Stockholm.",
        "",
        "| measure | p50 ms | p99 ms | p99 / GetItem p50 | p99 / GetItem p99 |",
        "|---|---:|---:|---:|---:|",
        f"| bare DynamoDB GetItem (baseline, same run) | {rt50:.1f} | {rt99:.1f} | {rt99 / rt50:.1f} | 1.0 |",
        f"| bare TransactWriteItems shaped like a booking's (4 items, ~60-visit ledger) | {tx50:.1f} | {tx99:.1f} | "
        f"{tx99 / rt50:.1f} | {tx99 / rt99:.1f} |",
        f"| booking function in-process (`lambda_handler`, API Gateway event), re-planning paused | {i50:.1f} | "
        f"{i99:.1f} | {i99 / rt50:.1f} | {i99 / rt99:.1f} |",
        f"| the same, with every booking re-planning its day on the same 2 cores (as the stack runs) | {r50:.1f} | "
        f"{r99:.1f} | {r99 / rt50:.1f} | {r99 / rt99:.1f} |",
        f"| POST /bookings over HTTP (local gateway, token, worker process, handler) | {h50:.1f} | {h99:.1f} | "
        f"{h99 / rt50:.1f} | {h99 / rt99:.1f} |",
        "",
        f"HTTP answers: {dict(statuses)}; in-process answers: {dict(outcomes)}.",
        "",
        f"AWS API calls per booking (in-process, counted): {ddb_calls:.2f} DynamoDB — "
        + ", ".join(f"`{k}` {v:.2f}" for k, v in per_req.items()) + ". "
        "They run in two sequential stages: Powertools' INPROGRESS PutItem in parallel with the ledger "
        "GetItem and the fee-history Query (only when the high-cost protection can change the fee), "
        "then one TransactWriteItems (booking, note, ledger, idempotency record COMPLETED).",
        "",
        f"Floor of that design on this stack: GetItem p50 + transaction p50 = {floor50:.1f} ms; the booking "
        f"function's p50 is {i50 / floor50:.2f} x that floor.",
        "",
        "Goal p99 <= 3 x one round trip, read two ways (the booking function alone, re-planning paused): "
        f"against the GetItem's p99 (tail against tail) it is {i99 / rt99:.1f} x — "
        + ("met" if i99 <= 3 * rt99 else "not met")
        + f"; against the GetItem's p50 it is {i99 / rt50:.1f} x — " + ("met." if i99 <= 3 * rt50 else
            f"not met, and not reachable on this stack: a booking must read the day before deciding and then "
            f"write atomically, and DynamoDB Local's transaction alone has p99 {tx99 / rt50:.1f} x the GetItem "
            f"p50 (the GetItem's own p99 is {rt99 / rt50:.1f} x its p50)."),
    ]
    return "\n".join(lines) + "\n"


READING = """
## Reading these figures

- **What a booking does** (`functions/booking/booking/service.py`, `booking/idempotency.py`): the body
  is validated without I/O; then Powertools' idempotency record is written (INPROGRESS) while the
  region-day ledger and, for adult doctor visits without frikort, the fee history are read in
  parallel; the capacity check inserts the visit into the stored routes (a few ms of CPU on a
  ~60-visit day); one TransactWriteItems writes booking, clinical note, ledger (version-checked) and
  the idempotency record's COMPLETED answer. Two sequential round trips; nothing after the commit.
- **The floor** row is a bare transaction of the same shape: with the read in front of it, it is what
  any design that reads the day, decides and writes atomically pays on this stack.
- **Re-planning**: on this 2-core machine every booking's stream record makes the gateway re-plan the
  region-day with OR-Tools in a worker process, competing with the booking for CPU; the "alone" row
  holds the stream consumers back (`POST /_local/streams {"paused": true}`). On AWS they are separate
  Lambdas.
- **Over HTTP** adds the local gateway's hop (HTTP parse, JWT check, a pipe to the function's worker
  process); it has TCP_NODELAY since the run that found every keep-alive answer waiting ~40 ms for a
  delayed ACK. API Gateway's own overhead is not modelled.
- **The goal** (p99 <= 3 x one round trip) compares a tail with one round trip. Against the GetItem's
  p99 the booking function's p99 is the comparison of like with like; against the GetItem's p50 it
  cannot be met on DynamoDB Local, whose transaction alone (and often a GetItem's own tail) exceeds
  3 x a GetItem's p50.
- The machine is shared (other work ran during these runs): absolute figures move by 2x between runs;
  the ratios within one run are what to compare.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=120)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    report = run(args)
    head = ""
    if Path(args.out).resolve() == DEFAULT_OUT.resolve():  # standalone; bench.run adds its own heading
        head = f"# Booking path latency\n\nCommand: `python -m bench.booking_latency --requests {args.requests}`\n\n"
    tail = READING if head else ""
    Path(args.out).write_text(head + report + tail, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

