"""Fixtures for the payments integration tests on the real local stack: bookings made through the
booking API (a fresh doctor shift each, so capacity never runs out), cards made on localstripe with
the real Stripe SDK, and read-only views of what Stripe and DynamoDB hold."""
from __future__ import annotations

import itertools
import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"  # declined when charged (localstripe and Stripe test cards)
CARD_3DS = "4000002760003184"  # always needs 3-D Secure


def personal_number(rng: random.Random) -> str:
    """A random valid Swedish personnummer of an adult (so every test patient starts a fresh fee history)."""
    from devstack.demo_data import synthetic_personnummer
    born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 50))
    return synthetic_personnummer(born.date(), rng.randrange(0, 1000))


@pytest.fixture(scope="session")
def stripe_client(stack):
    import stripe
    return stripe.StripeClient("sk_test_local", base_addresses={"api": stack.urls["stripe"]})


@pytest.fixture(scope="session")
def card(stripe_client):
    """A PaymentMethod id for a test card number, as the app's Stripe SDK would create it."""
    def make(number: str = CARD_OK) -> str:
        pm = stripe_client.v1.payment_methods.create(params={
            "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}})
        return pm.id
    return make


@pytest.fixture(scope="session")
def book(api):
    """Book a doctor visit through POST /bookings; answers (booking id, the patient's token)."""
    rng = random.Random(uuid.uuid4().int)
    slots = itertools.count()

    def make(days_ahead: int | None = None) -> tuple[str, str, dict]:
        n = next(slots)
        day = (datetime.now(STOCKHOLM) + timedelta(days=days_ahead or 3 + n % 8)).date().isoformat()
        window = f"{8 + 2 * (n % 6):02d}:00"
        clinician = f"doc-{uuid.uuid4().hex[:8]}"
        dispatcher = api.token("dispatcher", "disp-payments", "stockholm")
        r = api.put(f"/regions/stockholm/clinicians/{clinician}/shifts/{day}", dispatcher,
                    json={"role": "doctor", "start": "08:00", "end": "20:00",
                          "start_location": {"lat": 59.33, "lon": 18.06}})
        assert r.status_code in (200, 201), r.text
        sub = f"patient-{uuid.uuid4().hex[:10]}"
        token = api.token("patient", sub)
        r = api.post("/bookings", token, headers={"Idempotency-Key": str(uuid.uuid4())}, json={
            "visit_type": "doctor", "date": day, "window_start": window, "postal_code": "11122",
            "address": {"street": "Drottninggatan 1", "city": "Stockholm", "door_code": "1234",
                        "lat": 59.3326, "lon": 18.0649},
            "patient": {"personal_number": personal_number(rng), "name": "Test Patient",
                        "phone": "+46701234567"},
            "symptoms": "persistent cough"})
        assert r.status_code == 201, r.text
        body = r.json()
        return body["id"], token, body

    return make


@pytest.fixture
def payment_of(stack):
    from homevisits.persistence.payments import PaymentModel

    def read(booking_id: str):
        return PaymentModel.get(f"BOOKING#{booking_id}", "PAYMENT", consistent_read=True)
    return read


@pytest.fixture
def booking_of(stack):
    from homevisits.persistence.booking import BookingModel

    def read(booking_id: str):
        return BookingModel.get(booking_id, consistent_read=True)
    return read
