"""Soak: concurrent patients, dispatchers and clinicians against a fresh local stack on loopback for a
bounded time, then the money-and-capacity invariants (devstack.invariants) on every region-day touched.

Patients check the area and availability, book (sometimes re-sending the same Idempotency-Key), hold
the fee (a few with 3-D Secure or a declined card), list, and cancel some; dispatchers read plans and
shifts and re-plan now and then; clinicians read their route and walk their confirmed visits through
on_the_way → arrived → completed. Every answer is classified: expected (including domain refusals such
as 409 window_full or 402 declined) or unexpected (any 5xx, a transport error, an answer the API does
not promise for that call).

    python -m bench.soak --seconds 120 [--patients 8 --dispatchers 2 --clinicians 4] [--out FILE]

Writes markdown (requests, p50/p99 per route, errors, invariants) to docs/benchmarks-soak.md unless
--out says otherwise; exits 1 on any unexpected answer or invariant violation."""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import json as _json
import threading
import time
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import requests

from bench.local_stack import running_stack

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks-soak.md"
AREAS = {"stockholm": {"postal_code": "11122", "lat": 59.3326, "lon": 18.0649, "city": "Stockholm"},
         "skane": {"postal_code": "21122", "lat": 55.6050, "lon": 13.0038, "city": "Malmö"}}
CARDS = [("4242424242424242", 0.85), ("4000002760003184", 0.10), ("4000000000000341", 0.05)]
# What each call may answer besides success; anything else (and every 5xx) is unexpected.
EXPECTED = {
    "GET /service-areas/{postal_code}": {200},
    "GET /availability": {200},
    "POST /bookings": {200, 201, 409, 422},  # 409 window_full / in progress, 422 window no longer bookable
    "POST /bookings/{id}/payment": {200, 402, 409},
    "GET /bookings": {200},
    "POST /bookings/{id}/cancel": {200, 409},
    "GET /regions/{region}/plans/{date}": {200, 404},
    "GET /regions/{region}/shifts/{date}": {200},
    "POST /regions/{region}/plans/{date}/optimize": {200, 201, 202, 409},
    "GET /me/route": {200},
    # 403 not_your_visit: a re-plan moved the stop to another clinician between GET /me/route and
    # the event (only stops under way are locked) — the right answer, not a fault.
    "POST /visits/{id}/events": {200, 201, 409, "403 not_your_visit"},
    "PUT /regions/{region}/clinicians/{id}/shifts/{date}": {200, 201},
}


def personnummer(rng: random.Random) -> str:
    from devstack.demo_data import synthetic_personnummer
    return synthetic_personnummer(date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 50)), rng.randrange(0, 1000))


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.unexpected: list[str] = []

    def record(self, label: str, status: int, seconds: float, detail: str = ""):
        key = str(status)
        if 400 <= status < 500:  # a refusal: which one (window_full and busy_try_again are not alike)
            try:
                key += f" {_json.loads(detail)['error']['code']}"
            except (ValueError, KeyError, TypeError):
                pass
        with self.lock:
            self.latency[label].append(seconds)
            self.statuses[label][key] += 1
            allowed = EXPECTED.get(label, {200})
            if status >= 500 or status == 0 or (status not in allowed and key not in allowed):
                self.unexpected.append(f"{label} -> {status} {detail[:160]}")


class Client:
    def __init__(self, base: str, stats: Stats):
        self.base, self.stats = base, stats
        self.http = requests.Session()

    def call(self, label: str, method: str, path: str, token: str | None = None, json=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        t0 = time.perf_counter()
        try:
            r = self.http.request(method, self.base + path, json=json, headers=h, timeout=60)
        except requests.RequestException as e:
            self.stats.record(label, 0, time.perf_counter() - t0, type(e).__name__)
            return None
        self.stats.record(label, r.status_code, time.perf_counter() - t0, r.text)
        return r


def _token(role: str, sub: str, region: str | None = None) -> str:
    from devstack.tokens import issue
    return issue(role, sub, region, 3600)


def _stripe_pm(stripe_base: str, card: str) -> str:
    r = requests.post(stripe_base + "/v1/payment_methods", headers={"Authorization": "Bearer sk_test_local"},
                      data={"type": "card", "card[number]": card, "card[exp_month]": "12", "card[exp_year]": "2031",
                            "card[cvc]": "123"}, timeout=10)
    return r.json()["id"]


def patient(c: Client, stripe_base: str, days: list[date], stop: float, seed: int, booked: list):
    rng = random.Random(seed)
    while time.monotonic() < stop:
        # a household's account per booking (an account has at most 3 open bookings a day)
        tok = _token("patient", f"soak-patient-{seed}-{rng.getrandbits(32):08x}")
        region = rng.choice(list(AREAS))
        area = AREAS[region]
        day = rng.choice(days)
        c.call("GET /service-areas/{postal_code}", "GET", f"/service-areas/{area['postal_code']}")
        r = c.call("GET /availability", "GET",
                   f"/availability?postal_code={area['postal_code']}&date={day}&visit_type=doctor", tok)
        windows = [w["start"] for w in (r.json().get("windows", []) if r is not None and r.ok else [])
                   if w.get("available")]
        if not windows:
            time.sleep(0.2)
            continue
        body = {"visit_type": "doctor", "date": day.isoformat(), "window_start": rng.choice(windows),
                "postal_code": area["postal_code"],
                "address": {"street": f"Soakgatan {rng.randrange(1, 99)}", "city": area["city"], "door_code": "1234",
                            "lat": area["lat"] + rng.uniform(-0.03, 0.03), "lon": area["lon"] + rng.uniform(-0.05, 0.05)},
                "patient": {"personal_number": personnummer(rng), "name": "Soak Patient",
                            "phone": f"+46701{rng.randrange(0, 999999):06d}"},
                "symptoms": "hosta"}
        key = uuid.uuid4().hex
        r = c.call("POST /bookings", "POST", "/bookings", tok, body, {"Idempotency-Key": key})
        if r is None or r.status_code not in (200, 201):
            continue
        bid = r.json()["id"]
        if rng.random() < 0.2:  # a client retry: the same key and body answer the same booking
            again = c.call("POST /bookings", "POST", "/bookings", tok, body, {"Idempotency-Key": key})
            if again is not None and again.ok and again.json().get("id") != bid:
                c.stats.unexpected.append(f"POST /bookings same key gave {again.json().get('id')} != {bid}")
        card = rng.choices([cd for cd, _ in CARDS], [w for _, w in CARDS])[0]
        c.call("POST /bookings/{id}/payment", "POST", f"/bookings/{bid}/payment", tok,
               {"payment_method": _stripe_pm(stripe_base, card)})
        booked.append((region, day))
        c.call("GET /bookings", "GET", "/bookings", tok)
        if rng.random() < 0.25:
            c.call("POST /bookings/{id}/cancel", "POST", f"/bookings/{bid}/cancel", tok, {"reason": "soak"})


def dispatcher(c: Client, region: str, days: list[date], stop: float, seed: int):
    rng = random.Random(seed)
    tok = _token("dispatcher", f"soak-disp-{region}", region)
    last_optimize = 0.0
    while time.monotonic() < stop:
        day = rng.choice(days)
        c.call("GET /regions/{region}/plans/{date}", "GET", f"/regions/{region}/plans/{day}", tok)
        c.call("GET /regions/{region}/shifts/{date}", "GET", f"/regions/{region}/shifts/{day}", tok)
        if time.monotonic() - last_optimize > 8:
            c.call("POST /regions/{region}/plans/{date}/optimize", "POST", f"/regions/{region}/plans/{day}/optimize",
                   tok)
            last_optimize = time.monotonic()
        time.sleep(0.5)


def clinician(c: Client, region: str, clinician_id: str, days: list[date], stop: float):
    tok = _token("clinician", clinician_id, region)
    done: set[tuple[str, str]] = set()
    while time.monotonic() < stop:
        for day in days:
            r = c.call("GET /me/route", "GET", f"/me/route?date={day}", tok)
            stops = r.json().get("stops", []) if r is not None and r.ok else []
            for s in stops[:1]:
                bid = s.get("booking_id")
                for ev in ("on_the_way", "arrived", "completed"):
                    if (bid, ev) in done or time.monotonic() >= stop:
                        continue
                    c.call("POST /visits/{id}/events", "POST", f"/visits/{bid}/events", tok, {"type": ev})
                    done.add((bid, ev))
        time.sleep(1.0)


def _drain(http, base: str) -> str:
    """Wait for the gateway's queues and streams to go quiet (retried: a broken drain is reported)."""
    last = ""
    for _ in range(3):
        try:
            r = http.post(base + "/_local/drain", json={"timeout_s": 120}, timeout=130)
            if r.ok:
                return "drained"
            last = f"drain answered {r.status_code}"
        except requests.RequestException as e:
            last = f"drain failed ({type(e).__name__})"
        time.sleep(1)
    return last


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000


def run(args) -> str:
    """Start a stack, soak it for args.seconds, check the invariants; answers the markdown report."""
    stats = Stats()
    with running_stack("soak-") as stack:
        base, stripe_base = stack.urls["api"], stack.urls["stripe"]
        setup = Client(base, stats)
        today = datetime.now(timezone.utc).date()
        days = [today + timedelta(days=d) for d in (2, 3)]
        clinicians = []
        for region, area in AREAS.items():
            tok = _token("dispatcher", f"soak-disp-{region}", region)
            for day in days:
                for i in range(max(1, args.clinicians // len(AREAS))):
                    cid = f"soak-{region}-doc-{i}"
                    setup.call("PUT /regions/{region}/clinicians/{id}/shifts/{date}", "PUT",
                               f"/regions/{region}/clinicians/{cid}/shifts/{day}", tok,
                               {"role": "doctor", "start": "08:00", "end": "20:00",
                                "start_location": {"lat": area["lat"], "lon": area["lon"]}})
                    clinicians.append((region, cid))
        clinicians = sorted(set(clinicians))
        stop = time.monotonic() + args.seconds
        booked: list = []
        threads = [threading.Thread(target=patient, args=(Client(base, stats), stripe_base, days, stop, 1000 + i, booked))
                   for i in range(args.patients)]
        regions = list(AREAS)
        threads += [threading.Thread(target=dispatcher, args=(Client(base, stats), regions[i % len(regions)], days,
                                                              stop, 2000 + i))
                    for i in range(args.dispatchers)]
        threads += [threading.Thread(target=clinician, args=(Client(base, stats), region, cid, days, stop))
                    for region, cid in clinicians[:args.clinicians]]
        from devstack import invariants
        region_days = sorted({f"{r}#{d}" for r in AREAS for d in days})
        versions = invariants.VersionWatch()
        went_back: list = []
        watching = threading.Event()

        def watch_versions():
            # Every booking's version, polled while the soak runs: one that goes back is a violation.
            while not watching.wait(2.0):
                went_back.extend(versions.poll(region_days))

        watcher = threading.Thread(target=watch_versions, daemon=True)
        t0 = time.monotonic()
        watcher.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.seconds + 120)
        elapsed = time.monotonic() - t0
        drain = _drain(setup.http, base)
        try:
            # The next scheduled reconciliation, three minutes on (simulated clock): a hold attempt
            # left unfinished is only taken over once it is two minutes old (no live request then).
            now = datetime.fromisoformat(setup.http.post(base + "/_local/clock", json={}, timeout=10).json()["now"])
            setup.http.post(base + "/_local/clock", json={"now": (now + timedelta(minutes=3)).isoformat()},
                            timeout=10).raise_for_status()
            setup.http.post(base + "/_local/invoke/ReconcileFunction", json={}, timeout=300)
        except requests.RequestException as e:
            drain += f"; reconcile failed ({type(e).__name__})"
        drain += "; " + _drain(setup.http, base)
        watching.set()
        watcher.join(30)
        report = invariants.check(region_days, stripe_base=stripe_base, versions=versions)
        for bid, before, now in went_back:
            report.add("version_went_back", bid, f"version {now} after {before} was seen (polled during the soak)")

    total = sum(len(v) for v in stats.latency.values())
    lines = [f"Command: `python -m bench.soak --seconds {args.seconds} --patients {args.patients} "
             f"--dispatchers {args.dispatchers} --clinicians {args.clinicians}`",
             "",
             f"{len(threads)} client threads on loopback against a fresh local stack for {elapsed:.0f} s "
             f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end); {total} requests ({total / max(elapsed, 1):.1f}/s); "
             f"queues: {drain}.",
             "",
             "| route | requests | p50 ms | p99 ms | statuses | unexpected |",
             "|---|---:|---:|---:|---|---:|"]
    unexpected_by_route: dict[str, int] = defaultdict(int)
    for u in stats.unexpected:
        unexpected_by_route[u.split(" -> ")[0]] += 1
    for label in sorted(stats.latency):
        v = stats.latency[label]
        statuses = ", ".join(f"{s}×{n}" for s, n in sorted(stats.statuses[label].items()))  # "409 window_full×3"
        lines.append(f"| `{label}` | {len(v)} | {_pct(v, 0.5):.0f} | {_pct(v, 0.99):.0f} | {statuses} | "
                     f"{unexpected_by_route.get(label, 0)} |")
    lines += ["", f"Unexpected answers: {len(stats.unexpected)}"]
    lines += [f"- `{u}`" for u in sorted(set(stats.unexpected))[:20]]
    lines += ["", "Invariants after drain + reconciliation run 3 simulated minutes later (devstack.invariants; money "
              "from Stripe's charges and refunds; booking versions polled every 2 s during the soak):",
              report.markdown()]
    args._failed = bool(stats.unexpected) or not report.ok
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--patients", type=int, default=8)
    ap.add_argument("--dispatchers", type=int, default=2)
    ap.add_argument("--clinicians", type=int, default=4)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    text = run(args)
    body = f"# Soak\n\n{text}" if Path(args.out).resolve() == DEFAULT_OUT.resolve() else text
    Path(args.out).write_text(body, encoding="utf-8")
    print(text)
    return 1 if getattr(args, "_failed", False) else 0


if __name__ == "__main__":
    sys.exit(main())

