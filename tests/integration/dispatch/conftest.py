"""A seeded region-day on the real local stack: shifts in the capacity ledger, confirmed bookings
with addresses and clinical notes, written straight to DynamoDB Local (as booking and payments
would have left them). Each test module gets its own date, so modules never share a plan."""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pytest

CENTER = (59.3326, 18.0649)


@dataclass
class Seeded:
    region: str
    day: date
    clinicians: dict  # clinician id -> role
    bookings: dict = field(default_factory=dict)  # booking id -> {"patient_sub", "visit_type", "window"}

    @property
    def region_day(self) -> str:
        return f"{self.region}#{self.day.isoformat()}"

    @property
    def date(self) -> str:
        return self.day.isoformat()


def seed_booking(seeded: Seeded, window: str, visit_type: str = "doctor", dlat: float = 0.0, dlon: float = 0.0,
                 symptoms: str | None = "persistent cough", note_expired: bool = False, status: str = "confirmed",
                 priority: str | None = None):
    """Write one confirmed booking (and its clinical note) for the seeded region-day; returns its id."""
    from homevisits.clock import utc_iso
    from homevisits.persistence.booking import BookingModel, ClinicalNoteModel
    from homevisits.regions import load_config

    region = load_config().region(seeded.region)
    w = region.window(seeded.day, datetime.strptime(window, "%H:%M").time())
    bid = f"bk-{uuid.uuid4().hex[:12]}"
    patient_sub = f"patient-{uuid.uuid4().hex[:8]}"
    now = utc_iso(datetime.now(timezone.utc))
    BookingModel(booking_id=bid, patient_sub=patient_sub, region=seeded.region, region_day=seeded.region_day,
                 date=seeded.date, window_start=window, starts_at=utc_iso(w.start_utc), ends_at=utc_iso(w.end_utc),
                 visit_type=visit_type, status=status, fee_amount=35000, fee_currency="SEK",
                 patient={"personal_number": "19811218-9876", "name": "Anna Andersson", "phone": "+46701234567"},
                 address={"street": "Drottninggatan 1", "city": "Stockholm", "postal_code": "11122",
                          "door_code": "4321", "lat": CENTER[0] + dlat, "lon": CENTER[1] + dlon},
                 payment_status="authorized", created_at=now, updated_at=now, priority=priority).save()
    if symptoms is not None:
        expires = datetime.now(timezone.utc) + (timedelta(days=-1) if note_expired else timedelta(days=90))
        ClinicalNoteModel(booking_id=bid, patient_sub=patient_sub, symptoms=symptoms, expires_at=expires).save()
    seeded.bookings[bid] = {"patient_sub": patient_sub, "visit_type": visit_type, "window": window}
    return bid


def seed_region_day(region: str = "stockholm", clinicians: dict | None = None) -> Seeded:
    """A fresh far-future date with a ledger holding the clinicians' 08–17 shifts."""
    from homevisits.persistence.ledger import read_day, save_day

    # the OS's randomness: another module's seeding of `random` must not hand two modules one day
    day = date(2028, 1, 1) + timedelta(days=random.SystemRandom().randrange(0, 8000))
    clinicians = clinicians or {f"doc-{uuid.uuid4().hex[:6]}": "doctor", f"nurse-{uuid.uuid4().hex[:6]}": "nurse"}
    seeded = Seeded(region, day, clinicians)
    ledger = read_day(seeded.region_day)
    ledger.shifts = {cid: {"role": role, "start": "08:00", "end": "17:00",
                           "start_location": {"lat": CENTER[0], "lon": CENTER[1]}} for cid, role in clinicians.items()}
    assert save_day(ledger)
    return seeded


@pytest.fixture(scope="module")
def seeded(stack, api) -> Seeded:
    """Two doctors' and one nurse's visits spread over the day, one with an expired clinical note."""
    s = seed_region_day()
    seed_booking(s, "08:00", "doctor", dlat=0.01)
    seed_booking(s, "10:00", "doctor", dlat=-0.01, dlon=0.02, note_expired=True)
    seed_booking(s, "12:00", "doctor", dlon=-0.02)
    seed_booking(s, "10:00", "nurse", dlat=0.02, symptoms="rash")
    seed_booking(s, "14:00", "nurse", dlat=-0.02, dlon=-0.01)
    # Let the stream-triggered re-plans of the seeding settle first (not asserted: tests only rely
    # on the plan's own ordering guarantees).
    settle(api, 20)
    return s


def settle(api, timeout_s: float = 60) -> dict:
    """POST /_local/drain, asked again if the gateway dropped the connection (its stream poller can
    raise DynamoDB Local's TrimmedDataAccessException out of a drain)."""
    import requests
    for _ in range(3):
        try:
            r = api.http.post(api.base + "/_local/drain", json={"timeout_s": timeout_s}, timeout=timeout_s + 10)
            return r.json()
        except requests.ConnectionError:
            continue
    return {"drained": False, "dead_letters": {}}


@pytest.fixture(scope="session")
def drain(stack, api):
    """`drain(timeout_s)` → the gateway's drain answer ({"drained", "dead_letters"})."""
    return lambda timeout_s=60: settle(api, timeout_s)


@pytest.fixture(scope="module")
def tokens(api, seeded):
    doc, nurse = sorted(seeded.clinicians, key=lambda c: seeded.clinicians[c])
    return {
        "dispatcher": api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", seeded.region),
        "other_dispatcher": api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", "skane"),
        "doctor": api.token("clinician", doc, seeded.region),
        "nurse": api.token("clinician", nurse, seeded.region),
        "stranger": api.token("clinician", f"doc-{uuid.uuid4().hex[:6]}", seeded.region),
        "patient": api.token("patient", f"patient-{uuid.uuid4().hex[:6]}"),
        "doctor_id": doc, "nurse_id": nurse,
    }


@pytest.fixture(scope="session")
def seed(stack):
    """The seeding helpers, for tests that need their own region-day."""
    from types import SimpleNamespace
    return SimpleNamespace(region_day=seed_region_day, booking=seed_booking)
