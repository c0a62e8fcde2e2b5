"""The high-cost protection on the real local stack (issue 12, defect 3): fees in 12 calendar months
stop at 1 150 SEK. Open bookings count toward the cap when a new one is quoted, and a capture
re-checks what is left (capture ≤ remaining), so two bookings quoted at once can never take more.

Region-days: stockholm today+24..+27 (fresh doctor shifts per booking)."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.payments.conftest import CARD_OK, personal_number
from tests.integration.payments.test_payments_stack import pay, settle

pytestmark = pytest.mark.stack

CAP = 115000


def _seed_paid(pn: str, amounts: list[int], days_ago: int = 30) -> None:
    """Visit fees this person already paid (the fee ledger), as earlier captures would have written."""
    from homevisits.identity import patient_key
    from homevisits.persistence.payments import FeeLedgerModel, fees_pk
    at = datetime.now(timezone.utc) - timedelta(days=days_ago)
    for n, amount in enumerate(amounts):
        bid = f"bk_seed{uuid.uuid4().hex[:8]}"
        FeeLedgerModel(fees_pk(patient_key(pn)), f"{(at + timedelta(hours=n)).isoformat()}#{bid}", booking_id=bid,
                       amount=amount, currency="SEK", counts_toward_cap=True).save()


def _book(api, token: str, pn: str, days_ahead: int, window: str = "10:00") -> dict:
    from zoneinfo import ZoneInfo
    day = (datetime.now(ZoneInfo("Europe/Stockholm")) + timedelta(days=days_ahead)).date()
    dispatcher = api.token("dispatcher", "disp-cap", "stockholm")
    r = api.put(f"/regions/stockholm/clinicians/doc-{uuid.uuid4().hex[:8]}/shifts/{day}", dispatcher,
                json={"role": "doctor", "start": "08:00", "end": "20:00",
                      "start_location": {"lat": 59.33, "lon": 18.06}})
    assert r.status_code == 200, r.text
    r = api.post("/bookings", token, headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "visit_type": "doctor", "date": day.isoformat(), "window_start": window, "postal_code": "11122",
        "address": {"street": "Drottninggatan 1", "city": "Stockholm", "lat": 59.3326, "lon": 18.0649},
        "patient": {"personal_number": pn, "name": "Test Patient", "phone": "+46701234567"}})
    assert r.status_code == 201, r.text
    return r.json()


def _complete(api, booking_id: str) -> None:
    dispatcher = api.token("dispatcher", "disp-cap", "stockholm")
    for kind in ("arrived", "completed"):
        r = api.post(f"/visits/{booking_id}/events", dispatcher, json={"type": kind})
        assert r.status_code == 200, r.text


def test_open_bookings_count_toward_the_cap_when_a_new_one_is_quoted(api):
    """After 3 x 350 SEK, the first open booking is quoted the 100 SEK left and the second nothing."""
    pn = personal_number(random.Random(uuid.uuid4().int))
    _seed_paid(pn, [35000, 35000, 35000])
    token = api.token("patient", f"patient-{uuid.uuid4().hex[:10]}")
    first = _book(api, token, pn, 24)
    second = _book(api, token, pn, 25)
    assert first["fee"]["amount"] == 10000 and first["fee"]["reason"] == "high_cost_cap"
    assert second["fee"]["amount"] == 0 and second["fee"]["reason"] == "high_cost_cap", second
    # a cancelled booking no longer counts: the next one is quoted what is left again
    assert api.post(f"/bookings/{first['id']}/cancel", token).status_code == 200
    third = _book(api, token, pn, 26)
    assert third["fee"]["amount"] == 10000, third


def test_a_capture_never_takes_more_than_the_cap_leaves(api, card, stripe_client, payment_of):
    """Quoted 100 SEK and held; meanwhile another visit's 100 SEK was captured (two bookings quoted
    at once): the completed visit captures nothing, the hold is released, the year stays at 1 150."""
    from homevisits.identity import patient_key
    from homevisits.persistence.payments import fees_paid_since
    pn = personal_number(random.Random(uuid.uuid4().int))
    _seed_paid(pn, [35000, 35000, 35000])
    token = api.token("patient", f"patient-{uuid.uuid4().hex[:10]}")
    booking = _book(api, token, pn, 27)
    assert booking["fee"]["amount"] == 10000
    r = pay(api, booking["id"], token, card(CARD_OK))
    assert r.status_code == 200 and r.json() == {"status": "authorized"}, r.text
    _seed_paid(pn, [10000], days_ago=1)
    _complete(api, booking["id"])
    settle(api, lambda: payment_of(booking["id"]).status in ("captured", "released"))
    record = payment_of(booking["id"])
    assert int(record.amount_captured or 0) == 0, (record.status, record.amount_captured)
    intent = stripe_client.v1.payment_intents.retrieve(record.payment_intent_id, params={"expand": ["latest_charge"]})
    assert intent.status == "canceled" and not intent.latest_charge.captured
    since = (datetime.now(timezone.utc) - timedelta(days=366)).isoformat()
    assert fees_paid_since(patient_key(pn), since) == CAP


def test_a_capture_takes_only_what_the_cap_leaves(api, card, stripe_client, payment_of):
    """Quoted and held 350 SEK; meanwhile 3 x 350 SEK were captured: 100 SEK is captured, no more."""
    from homevisits.identity import patient_key
    from homevisits.persistence.payments import fees_paid_since
    pn = personal_number(random.Random(uuid.uuid4().int))
    token = api.token("patient", f"patient-{uuid.uuid4().hex[:10]}")
    booking = _book(api, token, pn, 27, window="14:00")
    assert booking["fee"]["amount"] == 35000
    assert pay(api, booking["id"], token, card(CARD_OK)).status_code == 200
    _seed_paid(pn, [35000, 35000, 35000], days_ago=1)
    _complete(api, booking["id"])
    settle(api, lambda: payment_of(booking["id"]).status == "captured")
    record = payment_of(booking["id"])
    assert int(record.amount_captured) == 10000
    intent = stripe_client.v1.payment_intents.retrieve(record.payment_intent_id, params={"expand": ["latest_charge"]})
    charge = intent.latest_charge  # what was taken: the charge less what went back (a partial capture)
    assert intent.status == "succeeded" and charge.captured and charge.amount - charge.amount_refunded == 10000
    since = (datetime.now(timezone.utc) - timedelta(days=366)).isoformat()
    assert fees_paid_since(patient_key(pn), since) == CAP

