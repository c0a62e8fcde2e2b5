"""`make demo`: a simulated day of the home-visit service, end to end through the HTTP API.

It starts its own local stack (the standard ports if free, else free ones), with a copy of the
service configuration in which Västra Götaland is open and Uppsala is "coming soon". Then, in
simulated time (`/_local/clock`):

1. the day before, 09:00: dispatchers put tomorrow's shifts (doctors and nurses in every region);
   patients check their postal code (one outside every area, one in the launching region), look at
   the free windows, book (adults, a guardian for a child, frikort holders) and hold the fee on a card
   (one card is declined, one needs 3-D Secure); two patients per region cancel early (free);
   dispatch re-plans as bookings arrive;
2. the day itself from 07:00: one patient per region cancels late (fee); after the morning re-plan
   the dispatchers act (devstack.demo_dispatch): a doctor in Skåne calls in sick (taken off the
   day, the unkept visits listed and their patients offered other windows), a visit in Stockholm is
   moved to another clinician and position, one in Västra Götaland is pinned to another doctor and
   the day re-planned; then the clinicians fetch their route and work it visit by visit (on the way,
   arrived, completed; one no-show per region; one Stockholm clinician sets off late and reports
   positions: live ETAs), while dispatch keeps re-planning and payments capture;
3. then it prints a summary per region (bookings, served, driving, on-time share, money held /
   captured / released / fees in SEK), the SMS outbox, writes demo-output/report.html, stops the
   stack, and exits 0 only if the checks of the day passed.

Options: --seed N, --out DIR, --scale F (bookings per region × F), --verbose.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import shutil
import signal
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from devstack.demo_data import (LAUNCHING_POSTAL_CODE, LAUNCHING_REGION, OUTSIDE_POSTAL_CODE, PeopleFactory,
                                Patient)
from devstack.paths import REPO
from devstack.report import render_report, sek
from homevisits import settings

TZ = ZoneInfo("Europe/Stockholm")
REGIONS = ("stockholm", "skane", "vastra-gotaland")
CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"  # attaches, then every charge is declined
CARD_3DS = "4000002760003184"  # always needs 3-D Secure
# (clinician suffix, role, shift start, end) per region; Stockholm is the busiest.
ROSTER = {
    "stockholm": [("doc-1", "doctor", "08:00", "16:00"), ("doc-2", "doctor", "12:00", "20:00"),
                  ("doc-3", "doctor", "08:00", "16:00"), ("nurse-1", "nurse", "08:00", "16:00"),
                  ("nurse-2", "nurse", "12:00", "20:00")],
    "skane": [("doc-1", "doctor", "08:00", "16:00"), ("doc-2", "doctor", "12:00", "20:00"),
              ("nurse-1", "nurse", "08:00", "16:00"), ("nurse-2", "nurse", "10:00", "18:00")],
    "vastra-gotaland": [("doc-1", "doctor", "08:00", "16:00"), ("doc-2", "doctor", "11:00", "19:00"),
                        ("nurse-1", "nurse", "08:00", "16:00")],
}
BOOKINGS_PER_REGION = {"stockholm": 26, "skane": 20, "vastra-gotaland": 15}
PREFIX = {"stockholm": "sthlm", "skane": "skane", "vastra-gotaland": "vgr"}


class DemoFailure(Exception):
    """The day cannot go on (the API answered something no client could work with)."""


# ---------------------------------------------------------------- output
class Progress:
    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.t0 = time.monotonic()
        self.sim: datetime | None = None

    def __call__(self, msg: str, *, detail: bool = False):
        if detail and not self.verbose:
            return
        wall = time.monotonic() - self.t0
        sim = f" {self.sim.astimezone(TZ):%a %H:%M}" if self.sim else ""
        print(f"[{wall:6.1f}s{sim}] {msg}", flush=True)


# ---------------------------------------------------------------- API client
class Client:
    """The apps' view of the API: HTTP calls with Bearer tokens, nothing else."""

    def __init__(self, base: str, stripe_base: str, log: Progress):
        self.base, self.stripe_base, self.log = base, stripe_base, log
        self._local = threading.local()
        self.tokens: dict[tuple, str] = {}
        self.unexpected: list[str] = []
        self.drain_failures = 0

    @property
    def http(self) -> requests.Session:
        """One HTTP session per thread (patients of different regions book at the same time)."""
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def token(self, role: str, sub: str, region: str | None = None) -> str:
        from devstack.tokens import issue
        key = (role, sub, region)
        if key not in self.tokens:
            self.tokens[key] = issue(role, sub, region, ttl_s=6 * 3600)
        return self.tokens[key]

    def call(self, method: str, path: str, token: str | None = None, body=None, headers=None,
             expect=(200, 201), timeout: float = 120) -> requests.Response:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        r = self.http.request(method, self.base + path, json=body, headers=h, timeout=timeout)
        if expect and r.status_code not in expect:
            self.unexpected.append(f"{method} {path} -> {r.status_code} {r.text[:200]}")
            self.log(f"unexpected answer: {method} {path} -> {r.status_code} {r.text[:160]}", detail=True)
        return r

    def set_clock(self, at: datetime):
        r = self.http.post(self.base + "/_local/clock", json={"now": at.astimezone(timezone.utc).isoformat()},
                           timeout=10)
        r.raise_for_status()
        self.log.sim = at

    def drain(self, timeout_s: float = 300) -> dict:
        """Wait until queues and streams are quiet; {"drained", "dead_letters"}."""
        try:
            r = self.http.post(self.base + "/_local/drain", json={"timeout_s": timeout_s}, timeout=timeout_s + 30)
        except requests.ConnectionError:
            # The gateway closed the connection: its stream poller raised (DynamoDB Local's
            # TrimmedDataAccessException). Queues still run: give them a moment instead.
            self.drain_failures += 1
            time.sleep(3)
            return {"drained": False, "dead_letters": {}}
        body = r.json()
        if r.status_code != 200:
            self.unexpected.append(f"drain did not settle in {timeout_s}s")
        return body

    def invoke(self, function_id: str, event: dict | None = None) -> bool:
        r = self.http.post(f"{self.base}/_local/invoke/{function_id}", json=event or {}, timeout=300)
        return r.status_code == 200

    def payment_method(self, card_number: str) -> str:
        """A card payment method on localstripe, created with the Stripe SDK as the app's SDK would."""
        import stripe
        client = stripe.StripeClient("sk_test_local", base_addresses={"api": self.stripe_base})
        pm = client.v1.payment_methods.create(params={"type": "card", "card": {
            "number": card_number, "exp_month": 12, "exp_year": date.today().year + 3, "cvc": "123"}})
        return pm.id


# ---------------------------------------------------------------- the day's data
@dataclass
class Booking:
    region: str
    patient: Patient
    visit_type: str
    role: str  # adult | child | frikort
    card: str = CARD_OK
    id: str | None = None
    window_start: str | None = None
    fee: int = 0
    status: str = "new"
    payment: str | None = None
    plan: str | None = None  # early_cancel | late_cancel | no_show
    cancel_answer: dict | None = None
    confirmed: bool = False  # was confirmed once its fee was held (or free)

    @property
    def token_sub(self) -> str:
        return self.patient.sub


@dataclass
class Clinician:
    region: str
    id: str
    role: str
    start: str
    end: str
    location: dict
    done: list = field(default_factory=list)  # executed stops: dicts for the report
    loc: tuple | None = None
    busy_with: str | None = None
    finished: bool = False
    off: bool = False  # taken off the day (sick leave): does not work it


LATE_START_MINUTES = 45


def fee_decision(answer: dict | None) -> str:
    """The fee decision of a cancel answer (top level or under `cancellation`)."""
    answer = answer or {}
    return str(answer.get("fee_decision") or (answer.get("cancellation") or {}).get("fee_decision") or "?")


def local(day: date, hhmm: str | dtime) -> datetime:
    t = hhmm if isinstance(hhmm, dtime) else datetime.strptime(hhmm, "%H:%M").time()
    return datetime.combine(day, t, tzinfo=TZ)


def demo_config(state: Path) -> Path:
    """The packaged configuration with Västra Götaland open and a launching region added."""
    src = REPO / "functions" / "shared" / "homevisits" / "config" / "service.json"
    cfg = json.loads(src.read_text(encoding="utf-8"))
    cfg["regions"]["vastra-gotaland"]["status"] = "open"
    cfg["regions"].update(LAUNCHING_REGION)
    path = state / "service.demo.json"
    path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the simulation
class DaySimulation:
    def __init__(self, client: Client, day: date, seed: int, scale: float, log: Progress):
        self.c, self.day, self.log = client, day, log
        self.rng = random.Random(seed)
        self.people = PeopleFactory(seed)
        self.scale = scale
        self.bookings: list[Booking] = []
        self.clinicians: dict[str, Clinician] = {}
        self.checks: list[dict] = []
        self.plan_versions: dict[str, list] = {r: [] for r in REGIONS}
        self.morning_plans: dict[str, dict] = {}
        self.service_area_answers: dict[str, tuple[int, dict]] = {}
        self.dead_letters: dict = {}
        # One Stockholm clinician sets off LATE_START_MINUTES late and reports a position on the way:
        # what their patients were shown (live ETAs) against the morning plan and the arrival.
        self.late = {"clinician": None, "delayed": False, "stops": {}}
        from devstack.demo_dispatch import DispatcherMorning
        self.dispatchers = DispatcherMorning(self)
        from homevisits.regions import load_config
        self.config = load_config()

    # ------------------------------------------------------------ helpers
    def check(self, name: str, ok: bool, detail="") -> bool:
        self.checks.append({"name": name, "ok": bool(ok), "detail": str(detail)[:300]})
        self.log(f"{'✔' if ok else '✘'} {name}" + (f" ({detail})" if detail and not ok else ""))
        return ok

    def dispatcher(self, region: str) -> str:
        return self.c.token("dispatcher", f"demo-dispatcher-{region}", region)

    def patient_token(self, b: Booking) -> str:
        return self.c.token("patient", b.token_sub)

    def replan(self, region: str) -> dict | None:
        """The dispatcher presses Re-plan (also what keeps plans fresh if the stream consumer lags)."""
        r = self.c.call("POST", f"/regions/{region}/plans/{self.day}/optimize", self.dispatcher(region),
                        {"time_limit_s": 1}, expect=(200, 409))
        if r.status_code != 200:
            return None
        self.plan_versions[region].append(r.json().get("version"))
        return r.json()

    def get_plan(self, region: str) -> dict | None:
        r = self.c.call("GET", f"/regions/{region}/plans/{self.day}", self.dispatcher(region), expect=(200, 404))
        if r.status_code != 200:
            return None
        plan = r.json()
        self.plan_versions[region].append(plan.get("version"))
        return plan

    # ------------------------------------------------------------ phase 1: the day before
    def service_areas(self):
        self.log("patients check their postal codes")
        for code in ("11122", "21122", "41121", OUTSIDE_POSTAL_CODE, LAUNCHING_POSTAL_CODE):
            r = self.c.call("GET", f"/service-areas/{code}", expect=(200, 404))
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            self.service_area_answers[code] = (r.status_code, body)
            self.log(f"  {code}: {r.status_code} {body.get('region') or (body.get('error') or {}).get('code')}"
                     f" {body.get('status', '')}", detail=True)
        out = self.service_area_answers[OUTSIDE_POSTAL_CODE]
        self.check("a postal code outside every area is not served",
                   out[0] == 404 and (out[1].get("error") or {}).get("code") == "not_served", out)
        launching = self.service_area_answers[LAUNCHING_POSTAL_CODE]
        self.check("a launching region answers 'launching', not bookable",
                   launching[0] == 200 and launching[1].get("status") == "launching"
                   and launching[1].get("bookable") is not True, launching)
        opened = self.service_area_answers["41121"]
        self.check("Västra Götaland is open for the demo", opened[0] == 200 and opened[1].get("status") == "open",
                   opened)

    def shifts(self):
        self.log("dispatchers put tomorrow's shifts")
        for region in REGIONS:
            for suffix, role, start, end in ROSTER[region]:
                cid = f"{PREFIX[region]}-{suffix}"
                loc = self.people.clinician_start(region)
                self.clinicians[cid] = Clinician(region, cid, role, start, end, loc)
                r = self.c.call("PUT", f"/regions/{region}/clinicians/{cid}/shifts/{self.day}", self.dispatcher(region),
                                {"role": role, "start": start, "end": end, "start_location": loc})
                if r.status_code not in (200, 201):
                    raise DemoFailure(f"PUT shift {cid} answered {r.status_code}: {r.text[:200]}")
        counts = {r: sum(1 for c in self.clinicians.values() if c.region == r) for r in REGIONS}
        self.log(f"  shifts: {counts}")

    def _windows(self, b: Booking) -> list[str]:
        r = self.c.call("GET", f"/availability?postal_code={b.patient.postal_code}&date={self.day}"
                               f"&visit_type={b.visit_type}", self.patient_token(b))
        if r.status_code != 200:
            return []
        body = r.json()
        out = []
        for w in body.get("windows", body if isinstance(body, list) else []):
            start = w.get("window_start") or w.get("start")
            avail = w.get("available")
            if start and (avail is True or (isinstance(avail, int) and not isinstance(avail, bool) and avail > 0)):
                out.append(start[:5])
        return out

    def _booking_body(self, b: Booking, window: str) -> dict:
        p = b.patient
        body = {"visit_type": b.visit_type, "date": self.day.isoformat(), "window_start": window,
                "postal_code": p.postal_code, "address": p.address,
                "patient": {"personal_number": p.adult.personal_number, "name": p.adult.name, "phone": p.adult.phone},
                "symptoms": p.symptoms}
        if p.child:
            body["for_child"] = {"personal_number": p.child.personal_number, "name": p.child.name}
        if p.frikort:
            body["frikort"] = p.frikort
        return body

    def _plan_bookings(self) -> list[Booking]:
        out = []
        for region in REGIONS:
            n = max(6, round(BOOKINGS_PER_REGION[region] * self.scale))
            for i in range(n):
                role = "child" if i in (0, 7) else "frikort" if i in (1, 9) else "adult"
                visit_type = "doctor" if role != "adult" or self.rng.random() < 0.65 else "nurse"
                patient = self.people.patient(region, self.day, child=role == "child", frikort=role == "frikort")
                b = Booking(region, patient, visit_type, role)
                if region == "stockholm" and i == 2:
                    b.card = CARD_DECLINED
                if region == "skane" and i == 2:
                    b.card = CARD_3DS
                if i in (3, 4):
                    b.plan = "early_cancel"
                if i == 5:
                    b.plan = "late_cancel"
                out.append(b)
        # Interleave regions: bookings arrive over the morning from everywhere.
        self.rng.shuffle(out)
        return out

    def book_all(self):
        """Patients of the three regions book at the same time (one thread per region, each patient
        one after the other), and each region's dispatcher looks at the plan every few bookings."""
        todo = self._plan_bookings()
        self.log(f"{len(todo)} patients book visits for {self.day} (the day before, 09:00)")
        self._idem_checked = threading.Event()

        def region_worker(region: str):
            mine = [b for b in todo if b.region == region]
            for n, b in enumerate(mine, 1):
                self.book_one(b)
                if n % 8 == 0 or n == len(mine):
                    self.c.drain()
                    before = (self.get_plan(region) or {}).get("version")
                    after = (self.replan(region) or {}).get("version")
                    booked = sum(1 for x in self.bookings if x.region == region and x.id)
                    self.log(f"  {region}: {booked} booked so far; plan v{before} from the bookings stream, "
                             f"v{after} after the dispatcher's re-plan")

        self._each_region(region_worker)

    def book_one(self, b: Booking):
        avail = self._windows(b)
        if b.plan in ("early_cancel", "late_cancel"):
            avail = [w for w in avail if w >= "10:00"] or avail  # free to cancel today only from 10:00 on
        rng = random.Random(f"{b.patient.sub}")
        # Patients prefer some hours: mornings and late afternoons fill first.
        order = sorted(avail, key=lambda w: -(3 if w in ("08:00", "10:00", "16:00") else 2) * rng.random())
        for window in order:
            key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{b.patient.sub}/{self.day}/{window}"))
            body = self._booking_body(b, window)
            r = self.c.call("POST", "/bookings", self.patient_token(b), body, {"Idempotency-Key": key},
                            expect=(200, 201, 409, 422))
            if r.status_code in (200, 201):
                ans = r.json()
                b.id, b.window_start, b.status = ans["id"], window, ans.get("status", "held")
                b.fee = int((ans.get("fee") or {}).get("amount") or 0)
                if not self._idem_checked.is_set():
                    self._idem_checked.set()
                    again = self.c.call("POST", "/bookings", self.patient_token(b), body, {"Idempotency-Key": key})
                    same = again.status_code in (200, 201) and again.json().get("id") == b.id
                    self.check("the same Idempotency-Key and body give the same booking", same,
                               f"HTTP {again.status_code}, {'same' if same else 'another'} booking id")
                break
            code = (r.json().get("error") or {}).get("code") if r.content else None
            if code not in ("window_full", "window_not_bookable", "no_capacity"):
                self.log(f"  booking refused: {r.status_code} {code}")
                break
        if not b.id:
            b.status = "no_window"
            self.bookings.append(b)
            return
        self.pay(b)
        self.bookings.append(b)
        if b.plan == "early_cancel" and b.status == "confirmed":
            self.cancel(b, "Mår bättre nu")

    def pay(self, b: Booking):
        if b.status == "confirmed":  # a free visit is confirmed at once: nothing to hold
            b.payment, b.confirmed = "not_needed", True
            return
        pm = self.c.payment_method(b.card)
        attempts = 5
        for attempt in range(attempts):
            # 503, or 500 when the function timed out (a first Stripe call on a busy machine can take
            # longer than its 15 s): the app retries; the hold's idempotency key makes a retry resume
            # the same attempt, never hold twice (docs/payments.md)
            r = self.c.call("POST", f"/bookings/{b.id}/payment", self.patient_token(b), {"payment_method": pm},
                            expect=(200, 201, 402, 409) if attempt == attempts - 1 else (200, 201, 402, 409, 500, 503))
            if r.status_code not in (500, 503):
                break
            self.log(f"  {b.region}: the payment answered {r.status_code}; the app tries again")
            time.sleep(max(5.0, float(r.headers.get("Retry-After") or 0)))
        body = r.json() if r.content else {}
        if r.status_code in (200, 201):
            b.payment = body.get("status")
        else:
            b.payment = (body.get("error") or {}).get("code", f"http_{r.status_code}")
        for _ in range(1 if r.status_code in (200, 201, 402) else 15):
            # an attempt cut short may still finish the hold: look until it has, as the app would
            got = self.c.call("GET", f"/bookings/{b.id}", self.patient_token(b))
            if got.status_code == 200:
                b.status = got.json().get("status", b.status)
            if b.status != "held":
                break
            time.sleep(2)
        b.confirmed = b.status == "confirmed"
        self.log(f"  {b.region:16s} {b.visit_type:6s} {b.window_start} {b.role:8s} fee {sek(b.fee)} "
                 f"-> payment {b.payment}, booking {b.status}", detail=True)

    def cancel(self, b: Booking, reason: str):
        r = self.c.call("POST", f"/bookings/{b.id}/cancel", self.patient_token(b), {"reason": reason})
        if r.status_code == 200:
            b.cancel_answer = r.json()
            b.status = b.cancel_answer.get("status", "cancelled")
        self.log(f"  {b.region}: a patient cancels the {b.window_start} visit ({fee_decision(b.cancel_answer)})",
                 detail=b.plan == "early_cancel")

    # ------------------------------------------------------------ phase 2: the day
    def morning(self):
        self.c.set_clock(local(self.day, "07:00"))
        self.log(f"the day begins: {self.day} 07:00")
        self.c.invoke("BookingJobsFunction", {})  # expire unpaid holds, as the schedule would
        for b in self.bookings:
            if b.plan == "late_cancel" and b.status == "confirmed":
                self.cancel(b, "Kan inte vara hemma")
        self.c.drain()
        for region in REGIONS:
            self.replan(region) or self.get_plan(region)
        self.log("the dispatchers act on their plans: a sick doctor (Skåne), a move (Stockholm), a pin "
                 "(Västra Götaland)")
        self.dispatchers.run()
        for region in REGIONS:
            plan = self.get_plan(region)
            if plan:
                self.morning_plans[region] = plan
                if region == "stockholm" and plan.get("routes"):
                    self.late["clinician"] = max(plan["routes"], key=lambda r: len(r["stops"]))["clinician_id"]
                k = plan.get("kpis", {})
                self.log(f"  {region}: plan v{plan.get('version')}: {k.get('visits_served')} visits on "
                         f"{k.get('routes_used')} routes, {k.get('visits_unassigned')} unassigned, "
                         f"{k.get('total_driving_minutes')} min driving")

    def work_the_day(self, step_minutes: int = 5):
        """Each clinician fetches their route and works it, visit by visit, in simulated time.

        Time moves in steps of `step_minutes`: the clock is set once per step, then the three regions
        act at the same time (one thread each, every region's events in their own order)."""
        heaps: dict[str, list] = {r: [] for r in REGIONS}
        seq = [0]
        rngs = {r: random.Random(f"{self.rng.random()}-{r}") for r in REGIONS}
        no_show_done: set[str] = set()
        planned_ids = {b.id: b for b in self.bookings if b.id}

        def push(at: datetime, cid: str, action: str, data=None):
            seq[0] += 1
            heapq.heappush(heaps[self.clinicians[cid].region], (at, seq[0], cid, action, data))

        for c in self.clinicians.values():
            c.loc = (c.location["lat"], c.location["lon"])
            if c.off:
                continue
            push(max(local(self.day, c.start) - timedelta(minutes=30), local(self.day, "07:05")), c.id, "next")
        end_of_day = local(self.day, "21:30")
        step = timedelta(minutes=step_minutes)
        last_replan_hour = 7
        while True:
            pending = [h[0][0] for h in heaps.values() if h]
            if not pending:
                break
            now = min(pending)
            if now > end_of_day:
                break
            self.c.set_clock(now)
            hour = now.astimezone(TZ).hour
            if hour >= last_replan_hour + 2:
                last_replan_hour = hour
                done = sum(len(x.done) for x in self.clinicians.values())
                self.log(f"{done} visits done so far; dispatchers re-plan the rest of the day")
                self._each_region(self.replan)
            until = now + step
            self._each_region(lambda region: self._act(region, heaps[region], until, push, rngs[region],
                                                       no_show_done, planned_ids))
        self.c.set_clock(local(self.day, "21:00"))
        self.log("the day is over: letting payments and notifications settle")
        self.c.invoke("BookingJobsFunction", {})
        # visits nobody came to (the unkept ones the patients did not move) are closed as missed
        self.c.invoke("BookingJobsFunction", {"job": "close_missed_visits"})
        drained = self.c.drain(300)
        self.dead_letters = drained.get("dead_letters") or {}

    def _each_region(self, fn):
        """fn(region) for every region at once, one thread each; the first error is raised here."""
        errors: list[BaseException] = []

        def run(region):
            try:
                fn(region)
            except BaseException as e:
                errors.append(e)
        threads = [threading.Thread(target=run, args=(r,)) for r in REGIONS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def _act(self, region: str, heap: list, until: datetime, push, rng: random.Random, no_show_done: set,
             planned_ids: dict):
        """Everything one region's clinicians do before `until`, in time order."""
        from homevisits.travel import duration_s
        profile = self.config.region(region).travel
        while heap and heap[0][0] < until:
            at, _, cid, action, data = heapq.heappop(heap)
            c = self.clinicians[cid]
            token = self.c.token("clinician", cid, c.region)
            if action == "next":
                r = self.c.call("GET", f"/me/route?date={self.day}", token)
                stops = r.json().get("stops", []) if r.status_code == 200 else []
                handled = {s["booking_id"] for s in c.done}
                todo = [s for s in stops if s["booking_id"] not in handled
                        and s.get("status") in ("confirmed", "en_route", "arrived")]
                if not todo:
                    # Nothing now: look again in a while (a re-plan may still give this clinician work).
                    if at < local(self.day, c.end) - timedelta(minutes=30):
                        push(at + timedelta(minutes=30), cid, "next")
                    else:
                        c.finished = True
                    continue
                stop = todo[0]
                dest = (stop["address"]["lat"], stop["address"]["lon"])
                drive = duration_s(c.loc, dest, profile)
                eta = datetime.fromisoformat(stop["eta"].replace("Z", "+00:00"))
                leave = max(at, eta - timedelta(seconds=drive))
                if cid == self.late["clinician"] and not self.late["delayed"]:
                    self.late["delayed"] = True
                    leave += timedelta(minutes=LATE_START_MINUTES)
                    self.log(f"  {cid} starts the day {LATE_START_MINUTES} minutes late")
                push(leave, cid, "go",
                     {"stop": stop, "drive": drive, "planned_eta": stop["eta"],
                      "symptoms_seen": bool(stop.get("symptoms"))})
            elif action == "go":
                stop = data["stop"]
                r = self.c.call("POST", f"/visits/{stop['booking_id']}/events", token, {"type": "on_the_way"},
                                expect=(200, 201, 403, 409))
                if r.status_code not in (200, 201):
                    push(at, cid, "next")  # the plan gave this visit to someone else: ask again
                    continue
                arrive = at + timedelta(seconds=data["drive"] * rng.uniform(0.9, 1.25))
                push(max(arrive, local(self.day, stop["window_start"])), cid, "arrive", data)
                if cid == self.late["clinician"]:
                    self._late_set_off(stop, at, planned_ids)
                    mid = ((c.loc[0] + stop["address"]["lat"]) / 2, (c.loc[1] + stop["address"]["lon"]) / 2)
                    push(at + (arrive - at) / 2, cid, "ping", {"stop": stop, "where": mid})
            elif action == "ping":
                r = self.c.call("POST", "/me/location", token, {"lat": data["where"][0], "lon": data["where"][1]},
                                expect=(200,))
                bid = data["stop"]["booking_id"]
                shown = next((x["eta"] for x in (r.json().get("stops") or []) if x["booking_id"] == bid), None) \
                    if r.status_code == 200 else None
                if bid in self.late["stops"]:
                    self.late["stops"][bid]["eta_after_position"] = shown
            elif action == "arrive":
                stop = data["stop"]
                self.c.call("POST", f"/visits/{stop['booking_id']}/events", token, {"type": "arrived"})
                b = planned_ids.get(stop["booking_id"])
                if (region not in no_show_done and at >= local(self.day, "10:00") and b is not None
                        and b.role == "adult" and b.plan is None):
                    no_show_done.add(region)
                    b.plan = "no_show"
                    push(at + timedelta(minutes=10), cid, "done", {**data, "arrived_at": at, "outcome": "no_show"})
                else:
                    service = int(stop.get("service_minutes") or 40) * rng.uniform(0.85, 1.2)
                    push(at + timedelta(minutes=service), cid, "done",
                         {**data, "arrived_at": at, "outcome": "completed"})
            elif action == "done":
                stop = data["stop"]
                self.c.call("POST", f"/visits/{stop['booking_id']}/events", token, {"type": data["outcome"]})
                dest = (stop["address"]["lat"], stop["address"]["lon"])
                w0, w1 = local(self.day, stop["window_start"]), local(self.day, stop["window_end"])
                c.done.append({
                    "booking_id": stop["booking_id"], "lat": dest[0], "lon": dest[1],
                    "visit_type": stop.get("visit_type"),
                    "window_start": w0.astimezone(timezone.utc).isoformat(),
                    "window_end": w1.astimezone(timezone.utc).isoformat(),
                    "eta": data["arrived_at"].astimezone(timezone.utc).isoformat(),
                    "planned_eta": data["planned_eta"], "service_s": int((at - data["arrived_at"]).total_seconds()),
                    "drive_s": data["drive"], "status": data["outcome"], "symptoms_seen": data["symptoms_seen"],
                    "on_time": w0 <= data["arrived_at"] <= w1})
                c.loc = dest
                if stop["booking_id"] in self.late["stops"]:
                    self.late["stops"][stop["booking_id"]]["arrived"] = data["arrived_at"].astimezone(timezone.utc).isoformat()
                verb = "no-show at" if data["outcome"] == "no_show" else "done with"
                self.log(f"  {at.astimezone(TZ):%H:%M} {cid} {verb} the {stop['window_start']} visit",
                         detail=data["outcome"] != "no_show")
                push(at, cid, "next")

    def _late_set_off(self, stop: dict, at: datetime, planned_ids: dict):
        """The late clinician set off for `stop`: note the morning plan's ETA and what the patient is
        shown now (GET /bookings/{id}, the live ETA)."""
        bid = stop["booking_id"]
        b = planned_ids.get(bid)
        morning = next((st.get("eta") for r in (self.morning_plans.get("stockholm") or {}).get("routes", [])
                        for st in r["stops"] if st["booking_id"] == bid), None)
        shown = None
        if b is not None:
            r = self.c.call("GET", f"/bookings/{bid}", self.patient_token(b), expect=(200,))
            shown = r.json().get("eta") if r.status_code == 200 else None
        self.late["stops"][bid] = {
            "booking_id": bid, "patient": f"patient:{b.token_sub}" if b else None,
            "window_start": local(self.day, stop["window_start"]).astimezone(timezone.utc).isoformat(),
            "window_end": local(self.day, stop["window_end"]).astimezone(timezone.utc).isoformat(),
            "morning_eta": morning, "set_off": at.astimezone(timezone.utc).isoformat(), "eta_at_set_off": shown}

    # ------------------------------------------------------------ phase 3: results
    def money(self) -> dict:
        """Per booking: the payment record (PaymentsTable) and what localstripe says was taken."""
        from homevisits.persistence.payments import PaymentModel, booking_pk
        out = {}
        for b in self.bookings:
            if not b.id:
                continue
            try:
                p = PaymentModel.get(booking_pk(b.id), "PAYMENT")
            except PaymentModel.DoesNotExist:
                continue
            out[b.id] = {"status": p.status, "amount": int(p.amount or 0), "captured": int(p.amount_captured or 0),
                         "refunded": int(p.amount_refunded or 0), "fee": p.cancellation_fee,
                         "extra": p.extra_charges or [], "intent": p.payment_intent_id}
        return out

    def final_statuses(self):
        for b in self.bookings:
            if b.id:
                r = self.c.call("GET", f"/bookings/{b.id}", self.patient_token(b))
                if r.status_code == 200:
                    b.status = r.json().get("status", b.status)

    def outbox(self) -> list[dict]:
        from homevisits.persistence.ops import OutboxMessageModel
        # A scan is fine for this local report (never on a request path).
        items = [m for m in OutboxMessageModel.scan(OutboxMessageModel.pk.startswith("OUTBOX#"))]
        items.sort(key=lambda m: (m.created_at, m.recipient_key))
        return [{"recipient": m.recipient_key, "kind": m.kind, "status": m.status, "text": m.text,
                 "phone": m.phone, "at": m.created_at, "message_id": m.message_id, "booking_id": m.booking_id}
                for m in items]

    def summarize(self, started: float) -> dict:
        self.final_statuses()
        money = self.money()
        sms = self.outbox()
        regions = []
        for region in REGIONS:
            rb = [b for b in self.bookings if b.region == region]
            clin = [c for c in self.clinicians.values() if c.region == region]
            served = [s for c in clin for s in c.done]
            driving = 0
            for c in clin:
                prev = (c.location["lat"], c.location["lon"])
                from homevisits.travel import duration_s
                for s in c.done:
                    driving += duration_s(prev, (s["lat"], s["lon"]), self.config.region(region).travel)
                    prev = (s["lat"], s["lon"])
                if c.done:
                    driving += duration_s(prev, (c.location["lat"], c.location["lon"]),
                                          self.config.region(region).travel)
            pays = [money[b.id] for b in rb if b.id in money]
            held = sum(p["amount"] for p in pays if p["status"] in ("authorized", "captured", "released")
                       or p["captured"] or p["fee"])
            fees = sum(int((p["fee"] or {}).get("amount") or 0) for p in pays
                       if (p["fee"] or {}).get("status") in ("charged", "captured", "invoice_due"))
            captured = sum(p["captured"] for p in pays)
            captured += sum(int(x.get("amount") or 0) for p in pays for x in p["extra"] if x.get("status") == "charged")
            released = sum(p["amount"] for p in pays if p["status"] == "released")
            morning = self.morning_plans.get(region) or {}
            regions.append({
                "id": region, "name": self.config.region(region).name, "currency": "SEK",
                "time_zone": "Europe/Stockholm",
                "bookings": sum(1 for b in rb if b.id), "attempts": len(rb),
                "confirmed": sum(1 for b in rb if b.confirmed),
                "served": sum(1 for s in served if s["status"] == "completed"),
                "no_show": sum(1 for s in served if s["status"] == "no_show"),
                "cancelled": sum(1 for b in rb if b.status == "cancelled"),
                "unassigned": [{"booking_id": u.get("booking_id")} for u in morning.get("unassigned", [])],
                "planned_driving_minutes": (morning.get("kpis") or {}).get("total_driving_minutes"),
                "driving_s": driving,
                "on_time_share": (sum(1 for s in served if s["on_time"]) / len(served)) if served else 0.0,
                "money": {"held": held, "captured": captured, "released": released, "fees": fees},
                "clinicians": [{"id": c.id, "role": c.role, "shift_start": c.start, "shift_end": c.end,
                                "start": c.location, "stops": c.done} for c in clin],
                "plan_versions": [v for v in self.plan_versions[region] if v is not None],
            })
        return {"date": self.day.isoformat(), "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "duration_s": round(time.monotonic() - started), "regions": regions, "sms": sms,
                "checks": self.checks, "money_by_booking": money,
                "live_etas": {"clinician": self.late["clinician"], "late_minutes": LATE_START_MINUTES,
                              "stops": list(self.late["stops"].values())},
                "dispatcher_actions": self.dispatchers.actions}

    def verify(self, summary: dict):
        by_region = {r["id"]: r for r in summary["regions"]}
        for region in REGIONS:
            r = by_region[region]
            self.check(f"{region}: money was held and captured",
                       r["money"]["held"] > 0 and r["money"]["captured"] > 0, r["money"])
            self.check(f"{region}: at least 80 % of the confirmed visits were served (completed or no-show)",
                       r["served"] + r["no_show"] >= 0.8 * max(1, self._confirmed_count(region)),
                       f"{r['served']}+{r['no_show']} of {self._confirmed_count(region)}")
        declined = [b for b in self.bookings if b.card == CARD_DECLINED]
        self.check("the declined card's booking was not confirmed",
                   bool(declined) and all(b.status not in ("confirmed", "completed", "en_route", "arrived")
                                          and b.payment != "authorized" for b in declined),
                   [(b.status, b.payment) for b in declined])
        three_ds = [b for b in self.bookings if b.card == CARD_3DS]
        self.check("the 3-D Secure card asked for a further step (requires_action) and was not visited",
                   bool(three_ds) and all(b.payment == "requires_action" and b.status not in ("completed", "no_show")
                                          for b in three_ds),
                   [(b.status, b.payment) for b in three_ds])
        free = [b for b in self.bookings if b.role in ("child", "frikort") and b.id]
        self.check("children and frikort holders pay nothing",
                   bool(free) and all(b.fee == 0 for b in free), [(b.role, b.fee) for b in free])
        money = summary["money_by_booking"]
        early = [b for b in self.bookings if b.plan == "early_cancel" and b.id]
        self.check("early cancellations are free and their holds released",
                   bool(early) and all(b.status == "cancelled" and money.get(b.id, {}).get("captured", 0) == 0
                                       and money.get(b.id, {}).get("status") in ("released", None)
                                       for b in early),
                   [(b.status, money.get(b.id, {}).get("status")) for b in early])
        late = [b for b in self.bookings if b.plan == "late_cancel" and b.status == "cancelled"]
        self.check("a late cancellation costs the fee",
                   bool(late) and all(int((money.get(b.id, {}).get("fee") or {}).get("amount") or 0) > 0 for b in late),
                   [(money.get(b.id, {}).get("fee")) for b in late])
        no_shows = [b for b in self.bookings if b.plan == "no_show"]
        self.check("a no-show costs the fee",
                   bool(no_shows) and all((money.get(b.id, {}).get("fee") or {}).get("kind") == "no_show"
                                          for b in no_shows if b.fee > 0),
                   [(money.get(b.id, {}).get("fee")) for b in no_shows])
        sms = summary["sms"]
        kinds = {m["kind"] for m in sms}
        self.check("patients got SMS: confirmed, on the way, done",
                   {"booking_confirmed", "on_the_way", "visit_completed"} <= kinds, sorted(kinds))
        leaks = [m for m in sms for b in self.bookings
                 if b.patient.adult.personal_number in m["text"] or b.patient.symptoms in m["text"]]
        self.check("no SMS holds a personal number or symptoms", not leaks, leaks[:2])
        seen = [s["symptoms_seen"] for c in self.clinicians.values() for s in c.done]
        self.check("clinicians saw their own patients' symptoms on their route", bool(seen) and any(seen))
        plan_text = json.dumps(self.morning_plans, ensure_ascii=False)
        self.check("the dispatcher's plans hold no symptoms or personal numbers",
                   not any(b.patient.symptoms in plan_text or b.patient.adult.personal_number in plan_text
                           for b in self.bookings))
        self._verify_live_etas(summary)
        self.dispatchers.verify_day()
        self.check("no message ended in a dead-letter queue", not self.dead_letters,
                   {k: len(v) for k, v in self.dead_letters.items()})

    def _verify_live_etas(self, summary: dict):
        """The late clinician's patients: shown a live ETA never already past, the same in the "on the
        way" SMS, and nearer the arrival than the morning plan's."""
        stops = [s for s in summary["live_etas"]["stops"] if s.get("eta_at_set_off")]
        t = lambda iso: datetime.fromisoformat(iso.replace("Z", "+00:00"))  # noqa: E731
        self.check(f"a clinician {LATE_START_MINUTES} min late: their patients were shown live ETAs, none already past",
                   bool(stops) and all(t(s["eta_at_set_off"]) >= t(s["set_off"]) for s in stops),
                   [(s["set_off"], s["eta_at_set_off"]) for s in stops][:3])
        texts = {m["recipient"]: m["text"] for m in summary["sms"] if m["kind"] == "on_the_way"}
        said = [f"{t(s['eta_at_set_off']).astimezone(TZ):%H:%M}" in texts.get(s["patient"], "") for s in stops]
        self.check("their 'on the way' SMS said the ETA the API showed", bool(said) and all(said),
                   [(s["eta_at_set_off"], texts.get(s["patient"], "")[:80]) for s in stops][:3])
        arrived = [s for s in stops if s.get("arrived") and s.get("morning_eta")]
        live_err = [abs((t(s["eta_at_set_off"]) - t(s["arrived"])).total_seconds()) / 60 for s in arrived]
        plan_err = [abs((t(s["morning_eta"]) - t(s["arrived"])).total_seconds()) / 60 for s in arrived]
        summary["live_etas"]["mean_error_minutes"] = {
            "live": round(sum(live_err) / len(live_err), 1) if live_err else None,
            "morning_plan": round(sum(plan_err) / len(plan_err), 1) if plan_err else None}
        self.check("live ETAs were nearer the actual arrivals than the morning plan's",
                   bool(arrived) and sum(live_err) < sum(plan_err), summary["live_etas"]["mean_error_minutes"])

    def _confirmed_count(self, region: str) -> int:
        """Visits that were still due on the day: confirmed, not cancelled, not left unkept by the sick
        leave (nobody comes to those: they are listed and their patients offered other windows), not
        moved to another day."""
        gone = self.dispatchers.moved_off_day | {b for b in self.dispatchers.unkept if self._still_unkept(b)}
        return sum(1 for b in self.bookings if b.region == region and b.confirmed and b.status != "cancelled"
                   and b.id not in gone)

    def _still_unkept(self, booking_id: str) -> bool:
        return not any(u["booking_id"] == booking_id and u.get("rescheduled_to")
                       for a in self.dispatchers.actions for u in a["unkept"])


# ---------------------------------------------------------------- printing
def print_summary(summary: dict):
    print()
    print(f"Simulated day {summary['date']} — summary per region (SEK)")
    head = (f"{'region':18s}{'bookings':>9s}{'served':>8s}{'no-show':>8s}{'cancel':>7s}{'driving':>10s}"
            f"{'on time':>9s}{'held':>11s}{'captured':>11s}{'released':>11s}{'fees':>9s}")
    print(head)
    print("-" * len(head))
    for r in summary["regions"]:
        m = r["money"]
        drive = f"{int(r['driving_s']) // 3600}h{int(r['driving_s']) % 3600 // 60:02d}"
        print(f"{r['name']:18s}{r['bookings']:>9d}{r['served']:>8d}{r['no_show']:>8d}{r['cancelled']:>7d}"
              f"{drive:>10s}{round(100 * r['on_time_share']):>8d}%{sek(m['held']):>11s}{sek(m['captured']):>11s}"
              f"{sek(m['released']):>11s}{sek(m['fees']):>9s}")
    print()
    sms = summary["sms"]
    kinds: dict[str, int] = {}
    for m in sms:
        kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
    print(f"SMS outbox: {len(sms)} messages ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")
    for m in sms:
        at = datetime.fromisoformat(m["at"].replace("Z", "+00:00")).astimezone(TZ)
        print(f"  {at:%a %H:%M} {m['recipient']:24s} {m['kind']:17s} {m['text']}")
    print()
    for a in summary.get("dispatcher_actions") or []:
        at = datetime.fromisoformat(a["at"]).astimezone(TZ) if a.get("at") else None
        print(f"{a['region_name']}{f' {at:%H:%M}' if at else ''}: {a['title']}")
        for line in a["done"]:
            print(f"  - {line}")
        for u in a["unkept"]:
            offered = ", ".join(f"{o['date']} {o['window_start']}" for o in u.get("offered", []))
            print(f"  unkept: the {u.get('window_start')} {u.get('visit_type')} visit ({u.get('reason')}); offered "
                  f"{offered or 'nothing'}; {u.get('rescheduled_to') and 'moved to ' + u['rescheduled_to'] or ''}"
                  f"{' ' + u['final_status'] if u.get('final_status') else ''}")
        print(f"  SMS: {len(a['sms'])} ({', '.join(sorted({m['kind'] for m in a['sms']}))})")
        for c in a["checks"]:
            print(f"  {'✔' if c['ok'] else '✘'} {c['name']}")
    print()
    failed = [c for c in summary["checks"] if not c["ok"]]
    print(f"Checks: {len(summary['checks']) - len(failed)}/{len(summary['checks'])} passed")
    for c in failed:
        print(f"  ✘ {c['name']}: {c['detail']}")


# ---------------------------------------------------------------- main
def choose_stack(state: Path):
    from devstack.stack import Stack, port_open
    std = Stack.from_env()
    std.state = state
    if not any(port_open(p) for p in (std.api_port, std.dynamodb_port, std.stripe_port)):
        return std
    return Stack.ephemeral(state)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--out", default=str(REPO / "demo-output"))
    ap.add_argument("--scale", type=float, default=1.0, help="bookings per region × this")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)

    started = time.monotonic()
    log = Progress(args.verbose)
    out = Path(args.out)
    state = out / "state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    # The gateway inherits this process's environment: configuration and small solver budgets.
    os.environ["HOMEVISITS_CONFIG"] = str(demo_config(state))
    os.environ.setdefault("REPLAN_TIME_LIMIT_S", "1")
    os.environ.setdefault("OPTIMIZE_TIME_LIMIT_S", "2")
    os.environ["HOMEVISITS_STATE_DIR"] = str(state)

    def _sigterm(_signo, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _sigterm)

    stack = choose_stack(state)
    code = 1
    try:
        log(f"starting the local stack (api :{stack.api_port}, dynamodb :{stack.dynamodb_port}, "
            f"stripe :{stack.stripe_port}); logs in {state}")
        stack.start()
        os.environ.update(stack.env)  # this process reads results through the same tables
        settings.reload()  # the code under test reads its environment once
        client = Client(stack.urls["api"], stack.urls["stripe"], log)
        day = (datetime.now(TZ) + timedelta(days=1)).date()
        sim = DaySimulation(client, day, args.seed, args.scale, log)
        client.set_clock(local(day - timedelta(days=1), "09:00"))
        sim.service_areas()
        sim.shifts()
        sim.book_all()
        sim.morning()
        sim.work_the_day()
        summary = sim.summarize(started)
        sim.verify(summary)
        summary["checks"] = sim.checks
        summary["unexpected_answers"] = client.unexpected[:50]
        out.mkdir(parents=True, exist_ok=True)
        report = out / "report.html"
        report.write_text(render_report(summary), encoding="utf-8")
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
        print_summary(summary)
        print(f"\nReport: {report}")
        code = 0 if all(c["ok"] for c in sim.checks) else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the stack", flush=True)
        code = 130
    except DemoFailure as e:
        print(f"\nthe day could not go on: {e}", flush=True)
        code = 1
    except Exception:
        traceback.print_exc()
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stack.stop()
        log("local stack stopped")
    return code


if __name__ == "__main__":
    raise SystemExit(main())

