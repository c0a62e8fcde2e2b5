"""A visit nobody came to is closed (issue 12, defect 6), on the real local stack with its clock
moved past the window: the booking becomes missed, the hold is released (no fee: the service's
fault) and never renewed again, the patient gets an SMS with a way to book again, and the
dispatcher sees the visit as missed in the plan. A visit the clinician reached stays as it is."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from .conftest import personal_number
from .test_payments_stack import CARD_OK, intents_of, pay, settle

pytestmark = pytest.mark.stack

MALMO = {"postal_code": "21120", "lat": 55.6050, "lon": 13.0038}
DAY_AHEAD = 41  # a region-day of its own (the session's horizon is 45 days)
FAST = {"time_limit_s": 1}



def _book_malmo(api, day: str, window: str, rng: random.Random) -> tuple[str, str]:
    sub = f"patient-{uuid.uuid4().hex[:10]}"
    token = api.token("patient", sub)
    r = api.post("/bookings", token, headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "visit_type": "doctor", "date": day, "window_start": window, "postal_code": MALMO["postal_code"],
        "address": {"street": "Stortorget 1", "city": "Malmö", "door_code": "4321",
                    "lat": MALMO["lat"], "lon": MALMO["lon"]},
        "patient": {"personal_number": personal_number(rng), "name": "Missed Patient", "phone": "+46701234567"}})
    assert r.status_code == 201, r.text
    return r.json()["id"], token


def test_a_visit_nobody_came_to_is_missed_released_told_and_never_renewed(
        api, card, stripe_client, payment_of, booking_of, moved_clock):
    rng = random.Random(uuid.uuid4().int)
    tz = ZoneInfo("Europe/Stockholm")
    r = api.http.post(api.base + "/_local/clock", json={}, timeout=10)
    day = (datetime.fromisoformat(r.json()["now"]).astimezone(tz) + timedelta(days=DAY_AHEAD)).date()
    dispatcher = api.token("dispatcher", "disp-missed", "skane")
    for clinician in (f"doc-{uuid.uuid4().hex[:8]}", f"doc-{uuid.uuid4().hex[:8]}"):
        r = api.put(f"/regions/skane/clinicians/{clinician}/shifts/{day}", dispatcher,
                    json={"role": "doctor", "start": "08:00", "end": "20:00",
                          "start_location": {"lat": MALMO["lat"], "lon": MALMO["lon"]}})
        assert r.status_code == 200, r.text
    missed_id, token = _book_malmo(api, day.isoformat(), "10:00", rng)
    reached_id, reached_token = _book_malmo(api, day.isoformat(), "10:00", rng)
    for bid, tok in ((missed_id, token), (reached_id, reached_token)):
        assert pay(api, bid, tok, card(CARD_OK)).json() == {"status": "authorized"}
    r = api.post(f"/regions/skane/plans/{day}/optimize", dispatcher, json=FAST)
    assert r.status_code == 200, r.text
    held_intent = payment_of(missed_id).payment_intent_id

    # The clinician reaches one visit inside its window; nobody comes to the other.
    moved_clock(datetime.combine(day, datetime.min.time(), tz).replace(hour=11))
    r = api.post(f"/visits/{reached_id}/events", dispatcher, json={"type": "arrived"})
    assert r.status_code == 200, r.text
    # The window (10-12) ended, then the grace (60 minutes) passed: the sweep runs.
    moved_clock(datetime.combine(day, datetime.min.time(), tz).replace(hour=13, minute=5))
    result = api.invoke("BookingJobsFunction", {"job": "close_missed_visits"})
    assert result["missed"] >= 1, result

    assert booking_of(missed_id).status == "missed"
    assert booking_of(reached_id).status == "arrived"
    settle(api, lambda: payment_of(missed_id).status == "released"
           and booking_of(missed_id).payment_status == "released")
    assert stripe_client.v1.payment_intents.retrieve(held_intent).status == "canceled"
    seen = api.get(f"/bookings/{missed_id}", token).json()
    assert seen["status"] == "missed" and seen["payment_status"] == "released"

    from homevisits.persistence.ops import outbox_of
    sub = booking_of(missed_id).patient_sub
    texts = [m for m in outbox_of(f"patient:{sub}") if m.kind == "missed"]
    assert len(texts) == 1 and "hembesok://boka" in texts[0].text and texts[0].phone == "+46701234567"

    plan = api.get(f"/regions/skane/plans/{day}", dispatcher).json()
    missed = {m["booking_id"]: m for m in plan["missed"]}
    assert missed[missed_id]["reason"] == "no_arrival_in_window"
    routed = {s["booking_id"] for route in plan["routes"] for s in route["stops"]}
    assert missed_id not in routed and reached_id in routed
    assert missed_id not in {u["booking_id"] for u in plan["unassigned"]}

    # A late "arrived" is refused: the visit is closed. Days later, reconciliation renews nothing.
    r = api.post(f"/visits/{missed_id}/events", dispatcher, json={"type": "arrived"})
    assert r.status_code == 409, r.text
    moved_clock(datetime.combine(day, datetime.min.time(), tz) + timedelta(days=6))
    api.invoke("ReconcileFunction", {})
    intents = intents_of(stripe_client, missed_id)
    assert [pi.id for pi in intents] == [held_intent] and intents[0].status == "canceled"
    assert int(payment_of(missed_id).renewals or 0) == 0
    assert payment_of(missed_id).status == "released"
    assert sum(pi.amount_received or 0 for pi in intents) == 0
