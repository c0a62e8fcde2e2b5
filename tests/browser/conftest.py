"""What the console's browser tests share: Debian's Chromium through Playwright, the stack's
(possibly simulated) today, a day booked through the real API, and where screenshots go."""
from __future__ import annotations

import random
import shutil
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def chromium_path() -> str:
    """Debian's chromium, or skip (the browser tests need one, and the playwright package)."""
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if not path:
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium): the console test needs a browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed")
    return path


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a module; each test opens its own context (page, time zone)."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class BookedDay:
    """A region-day booked through the API: the clinicians' shifts and the visits (window -> id)."""
    region: str
    day: date
    dispatcher: str  # a token of the region's dispatcher
    clinicians: dict  # clinician id -> role
    visits: dict = field(default_factory=dict)  # label -> booking id
    patients: dict = field(default_factory=dict)  # booking id -> {"token", "personal_number", "name"}

    @property
    def date(self) -> str:
        return self.day.isoformat()

    def plan(self, api) -> dict:
        r = api.get(f"/regions/{self.region}/plans/{self.date}", self.dispatcher)
        assert r.status_code == 200, r.text
        return r.json()


def book_day(api, region: str, day: date, dispatcher: str, shifts: dict, visits: list) -> BookedDay:
    """Shifts (clinician id -> (role, start, end)) and visits ((label, window, visit type, priority)),
    booked as patients book them (frikort: confirmed without a card), then planned."""
    from devstack.demo_data import PeopleFactory

    booked = BookedDay(region, day, dispatcher, {cid: role for cid, (role, _, _) in shifts.items()})
    people = PeopleFactory(seed=random.randint(1, 10**6))
    for cid, (role, start, end) in shifts.items():
        r = api.put(f"/regions/{region}/clinicians/{cid}/shifts/{day}", dispatcher,
                    {"role": role, "start": start, "end": end, "start_location": people.clinician_start(region)})
        assert r.status_code in (200, 201), r.text
    for label, window, visit_type, priority in visits:
        p = people.patient(region, day, frikort=True)
        token = api.token("patient", f"patient-{uuid.uuid4().hex[:10]}")
        body = {"visit_type": visit_type, "date": day.isoformat(), "window_start": window,
                "postal_code": p.postal_code, "address": p.address, "symptoms": p.symptoms, "frikort": p.frikort,
                "patient": {"personal_number": p.adult.personal_number, "name": p.adult.name, "phone": p.adult.phone}}
        if priority:
            body["priority"] = priority
        r = api.post("/bookings", token, body, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.text
        bid = r.json()["id"]
        if api.get(f"/bookings/{bid}", token).json().get("status") == "held":  # the payment call confirms it
            assert api.post(f"/bookings/{bid}/payment", token, {"payment_method": "pm_card_visa"}).status_code == 200
        booked.visits[label] = bid
        booked.patients[bid] = {"token": token, "personal_number": p.adult.personal_number, "name": p.adult.name,
                                "symptoms": p.symptoms}
    settle(api)  # the bookings' own re-plans first: none may land while a test steers the plan
    r = api.post(f"/regions/{region}/plans/{day}/optimize", dispatcher, {"time_limit_s": 1})
    assert r.status_code == 200, r.text
    settle(api)
    return booked


def settle(api) -> None:
    """Wait until the stack's queues and streams are quiet (the background re-plans done)."""
    try:
        api.drain(120)
    except Exception as e:  # the gateway's stream poller can fail on DynamoDB Local (reported)
        warnings.warn(f"drain failed ({type(e).__name__})")
