"""A patient's first payment (POST /bookings/{id}/payment) on the local stack, round trip by round trip.

Starts a fresh local stack (DynamoDB Local, localstripe, gateway), books N visits through the API
(a patient each, a card each), then pays each one by calling the payments function's own
`lambda_handler` with the API Gateway v2 event the gateway would build:
- cold: the first payment of a fresh interpreter (a new Lambda instance): its init (`import
  payments.app`) is timed apart, as Lambda times it apart from the invocation's 15 s;
- warm: a second payment in the same interpreter.
Each interpreter runs either as the code is ("after") or with `payments.deps.warm` made a no-op
("before": Stripe imported and the AWS clients built by the first payment, as before that
warm-up), alternating, so both variants share the stack, the machine and its load.
Every AWS API call (botocore) and every Stripe HTTP request is timed, so what one payment does is
exact; the rest of the invocation (imports and client set-up at call time, CPU) is "other".

    python -m bench.payment_latency [--payments 6] [--out FILE]

Prints markdown (and writes it to --out)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bench.local_stack import running_stack

PROBE = r"""
import json, sys, time
from collections import defaultdict
spans = defaultdict(list)
if sys.argv[1] == "before":  # as before the warm-up at init: Stripe and the clients on first use
    import payments.deps
    payments.deps.warm = lambda: None
t = time.perf_counter()
import payments.app as app
init_s = time.perf_counter() - t

import botocore.client, botocore.session, requests
_call, _make, _req = botocore.client.BaseClient._make_api_call, botocore.session.Session.create_client, requests.Session.request

def call(self, op, params):
    t = time.perf_counter()
    try:
        return _call(self, op, params)
    finally:
        spans[f"{self.meta.service_model.service_name}.{op}"].append(time.perf_counter() - t)

def make(self, name, *a, **k):
    t = time.perf_counter()
    try:
        return _make(self, name, *a, **k)
    finally:
        spans[f"(boto3 client {name} made)"].append(time.perf_counter() - t)

def req(self, method, url, *a, **k):
    t = time.perf_counter()
    try:
        return _req(self, method, url, *a, **k)
    finally:
        path = "/" + "/".join(p if not p.split("_")[0] in ("pi", "cus", "pm", "ch") else "{id}"
                              for p in url.split("://", 1)[1].split("?")[0].split("/")[1:])
        spans[f"stripe {method.upper()} {path}"].append(time.perf_counter() - t)

botocore.client.BaseClient._make_api_call = call
botocore.session.Session.create_client = make
requests.Session.request = req
from devstack.lambda_runtime import LambdaContext
out = []
for event in json.loads(sys.stdin.read()):
    spans.clear()
    stripe_loaded = "stripe" in sys.modules
    t = time.perf_counter()
    r = app.lambda_handler(event, LambdaContext("PaymentsFunction", 15))
    total = time.perf_counter() - t
    out.append({"total": total, "status": r["statusCode"], "body": r.get("body", "")[:200],
                "spans": {k: v for k, v in spans.items()}, "stripe_loaded_before": stripe_loaded})
print(json.dumps({"init": init_s, "payments": out}))
"""


def _book(http, base: str, issue, n: int) -> list[tuple[str, str]]:
    """n held bookings (a fresh doctor shift and patient each): (booking id, patient token)."""
    import random

    from devstack.demo_data import synthetic_personnummer
    rnd = random.Random(7)
    disp = issue("dispatcher", "bench-disp-pay", "stockholm")
    out = []
    for i in range(n):
        day = (datetime.now(ZoneInfo("Europe/Stockholm")) + timedelta(days=3 + i % 8)).date().isoformat()
        doc = f"bench-pay-doc-{uuid.uuid4().hex[:8]}"
        http.put(f"{base}/regions/stockholm/clinicians/{doc}/shifts/{day}", timeout=120,
                 headers={"Authorization": f"Bearer {disp}"},
                 json={"role": "doctor", "start": "08:00", "end": "20:00",
                       "start_location": {"lat": 59.33, "lon": 18.06}}).raise_for_status()
        token = issue("patient", f"bench-pay-{uuid.uuid4().hex[:10]}")
        born = datetime(1950, 1, 1) + timedelta(days=rnd.randrange(0, 365 * 50))
        r = http.post(f"{base}/bookings", timeout=120,
                      headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
                      json={"visit_type": "doctor", "date": day, "window_start": f"{8 + 2 * (i % 6):02d}:00",
                            "postal_code": "11122",
                            "address": {"street": "Bänkgatan 1", "city": "Stockholm", "lat": 59.3326, "lon": 18.0649},
                            "patient": {"personal_number": synthetic_personnummer(born.date(), rnd.randrange(100, 999)),
                                        "name": "Bench Patient", "phone": "+46701234567"},
                            "symptoms": "Hosta"})
        assert r.status_code == 201, r.text
        out.append((r.json()["id"], token))
    return out


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000 if values else 0.0


def run(args) -> str:
    import requests
    import stripe

    from devstack.gateway import api_event
    from devstack.tokens import issue

    n = int(args.payments)
    runs = []
    with running_stack("bench-payment-") as stack:
        http = requests.Session()
        base = stack.urls["api"]
        bookings = _book(http, base, issue, 4 * n)
        sc = stripe.StripeClient("sk_test_local", base_addresses={"api": stack.urls["stripe"]})

        def event(booking_id: str, token: str) -> dict:
            pm = sc.v1.payment_methods.create(params={"type": "card", "card": {
                "number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}}).id
            return api_event("POST", f"/bookings/{booking_id}/payment", token=token,
                             json_body={"payment_method": pm})[1]

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for i in range(n):  # per pair of bookings: one fresh interpreter per variant, alternating
            for variant in (("before", "after") if i % 2 == 0 else ("after", "before")):
                events = [event(*bookings.pop()), event(*bookings.pop())]
                load = os.getloadavg()[0]
                proc = subprocess.run([sys.executable, "-c", PROBE, variant], input=json.dumps(events),
                                      capture_output=True, text=True, env=env, timeout=300)
                if proc.returncode:
                    raise RuntimeError(proc.stderr[-3000:])
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                res["load"], res["variant"] = load, variant
                runs.append(res)

    lines = [f"{n} fresh interpreters per variant, each paying two held doctor bookings (new patients, card "
             "4242…) through `payments.app.lambda_handler`; medians in ms; 1-min load average "
             f"{min(r['load'] for r in runs):.1f}–{max(r['load'] for r in runs):.1f} on {os.cpu_count()} cores.",
             "", "| | before: init | before: first payment | before: second | after: init | "
             "after: first payment | after: second |", "|---|---:|---:|---:|---:|---:|---:|"]
    by = {v: [r for r in runs if r["variant"] == v] for v in ("before", "after")}
    cells = []
    for v in ("before", "after"):
        cells += [f"{_median_ms([r['init'] for r in by[v]]):.0f}",
                  f"{_median_ms([r['payments'][0]['total'] for r in by[v]]):.0f}",
                  f"{_median_ms([r['payments'][1]['total'] for r in by[v]]):.0f}"]
    lines += ["| ms (median) | " + " | ".join(cells) + " |", "",
              "Per payment, by round trip (calls, and ms summed per payment, medians):", "",
              "| round trip | calls | before: first | before: second | after: first | after: second |",
              "|---|---:|---:|---:|---:|---:|"]
    cols = [(v, idx) for v in ("before", "after") for idx in (0, 1)]
    names = sorted({k for r in runs for p in r["payments"] for k in p["spans"]})
    for k in names + ["other"]:
        row, calls = [], None
        for v, idx in cols:
            pays = [r["payments"][idx] for r in by[v]]
            if k == "other":  # the invocation minus its network round trips: imports, client set-up, CPU
                row.append(f"{_median_ms([p['total'] - sum(sum(x) for n_, x in p['spans'].items() if not n_.startswith('(')) for p in pays]):.0f}")
            else:
                row.append(f"{_median_ms([sum(p['spans'].get(k, [])) for p in pays]):.1f}")
                calls = max(calls or 0, statistics.median(len(p["spans"].get(k, [])) for p in pays))
        label = "other: imports, client set-up, CPU (the total minus the round trips)" if k == "other" else k
        lines.append(f"| {label} | {'' if calls is None else f'{calls:g}'} | " + " | ".join(row) + " |")
    statuses = [p["status"] for r in runs for p in r["payments"]]
    lines += ["", f"HTTP statuses: {dict((s, statuses.count(s)) for s in sorted(set(statuses)))}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--payments", type=int, default=6)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    from bench import emit
    return emit(run(args), args.out)


if __name__ == "__main__":
    raise SystemExit(main())
