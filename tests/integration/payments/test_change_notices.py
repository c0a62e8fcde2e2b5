"""No silent changes (issue 12, defect 10), on the real local stack: a rescheduled visit and a
waived fee each send the patient an SMS (once), without personal data in the text.

Region-days: stockholm today+28..+31 (a fresh doctor shift each)."""
from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.integration.payments.conftest import CARD_OK, personal_number
from tests.integration.payments.test_payments_stack import pay, settle

pytestmark = pytest.mark.stack
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def _day(days_ahead: int):
    return (datetime.now(STOCKHOLM) + timedelta(days=days_ahead)).date()


def _shift(api, day) -> None:
    r = api.put(f"/regions/stockholm/clinicians/doc-{uuid.uuid4().hex[:8]}/shifts/{day}",
                api.token("dispatcher", "disp-notices", "stockholm"),
                json={"role": "doctor", "start": "08:00", "end": "20:00", "start_location": {"lat": 59.33, "lon": 18.06}})
    assert r.status_code == 200, r.text


def _confirmed_booking(api, card, days_ahead: int) -> tuple[str, str, str]:
    day = _day(days_ahead)
    _shift(api, day)
    sub = f"patient-{uuid.uuid4().hex[:10]}"
    token = api.token("patient", sub)
    pn = personal_number(random.Random(uuid.uuid4().int))
    r = api.post("/bookings", token, headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "visit_type": "doctor", "date": day.isoformat(), "window_start": "10:00", "postal_code": "11122",
        "address": {"street": "Drottninggatan 1", "city": "Stockholm", "door_code": "4711",
                    "lat": 59.3326, "lon": 18.0649},
        "patient": {"personal_number": pn, "name": "Anna Andersson", "phone": "+46701234567"}})
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized"}
    return bid, sub, token


def _messages(sub: str, kind: str, timeout_s: float = 30) -> list:
    from homevisits.persistence.ops import outbox_of
    deadline = time.monotonic() + timeout_s
    while True:
        found = [m for m in outbox_of(f"patient:{sub}") if m.kind == kind and m.status in ("sent", "sent_locally")]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def _clean(text: str) -> None:
    assert "Anna" not in text and "4711" not in text and "Drottninggatan" not in text


def test_a_rescheduled_visit_sends_an_sms_with_the_new_window(api, card):
    bid, sub, token = _confirmed_booking(api, card, 28)
    new_day = _day(29)
    _shift(api, new_day)
    r = api.post(f"/bookings/{bid}/reschedule", token, json={"date": new_day.isoformat(), "window_start": "14:00"})
    assert r.status_code == 200, r.text
    api.drain()
    sms = _messages(sub, "rescheduled")
    assert len(sms) == 1, [m.kind for m in _messages(sub, "booking_confirmed", 0)]
    assert new_day.isoformat() in sms[0].text and "14:00" in sms[0].text and "16:00" in sms[0].text
    _clean(sms[0].text)
    # the same request again changes nothing and sends nothing more
    assert api.post(f"/bookings/{bid}/reschedule", token,
                    json={"date": new_day.isoformat(), "window_start": "14:00"}).status_code == 200
    api.drain()
    assert len(_messages(sub, "rescheduled", 1)) == 1


def test_a_waived_no_show_fee_sends_an_sms(api, card, payment_of):
    bid, sub, _ = _confirmed_booking(api, card, 30)
    dispatcher = api.token("dispatcher", "disp-notices", "stockholm")
    for kind in ("arrived", "no_show"):
        r = api.post(f"/visits/{bid}/events", dispatcher, json={"type": kind})
        assert r.status_code == 200, r.text
    settle(api, lambda: (payment_of(bid).cancellation_fee or {}).get("status") in ("charged", "invoice_due"))
    r = api.post(f"/bookings/{bid}/fee-waiver", dispatcher, json={"reason": "sudden_illness"})
    assert r.status_code == 200, r.text
    api.drain()
    sms = _messages(sub, "fee_waived")
    assert len(sms) == 1
    assert "400 kr" in sms[0].text
    _clean(sms[0].text)
    # asked again: the same answer, no second SMS
    assert api.post(f"/bookings/{bid}/fee-waiver", dispatcher, json={"reason": "sudden_illness"}).status_code == 200
    api.drain()
    assert len(_messages(sub, "fee_waived", 1)) == 1
