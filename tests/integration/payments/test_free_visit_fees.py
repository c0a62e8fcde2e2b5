"""A free visit's missed-visit fee can be collected, on the real local stack (issue 12, defect 4).

A child's visit costs nothing and is confirmed without a card, but a no-show costs 400 SEK
"whether or not you have a frikort" (seed 000). `POST /bookings/{id}/payment` on a free booking now
saves the card with a SetupIntent (usage off_session, through the real Stripe SDK on localstripe;
nothing held), and a no-show charges the tariff's fee to it off session. Without a card, the fee
becomes a recorded invoice (a payment record of kind invoice, status invoiced) instead of being lost."""
from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta

import pytest

from .conftest import STOCKHOLM, personal_number
from .test_payments_stack import CARD_OK, intents_of, pay, settle

pytestmark = pytest.mark.stack


def _book_child(api, days_ahead: int) -> tuple[str, str]:
    """A free doctor visit for a child (its own doctor on shift); answers (booking id, token)."""
    from devstack.demo_data import synthetic_personnummer
    rng = random.Random(uuid.uuid4().int)
    day = (datetime.now(STOCKHOLM) + timedelta(days=days_ahead)).date()
    dispatcher = api.token("dispatcher", "disp-free-fees", "stockholm")
    r = api.put(f"/regions/stockholm/clinicians/doc-free-{uuid.uuid4().hex[:8]}/shifts/{day}", dispatcher,
                json={"role": "doctor", "start": "08:00", "end": "20:00",
                      "start_location": {"lat": 59.33, "lon": 18.06}})
    assert r.status_code == 200, r.text
    token = api.token("patient", f"patient-{uuid.uuid4().hex[:10]}")
    child = synthetic_personnummer(date(day.year - 6, 1 + rng.randrange(12), 1 + rng.randrange(28)),
                                   rng.randrange(100, 999))
    r = api.post("/bookings", token, headers={"Idempotency-Key": str(uuid.uuid4())}, json={
        "visit_type": "doctor", "date": day.isoformat(), "window_start": "12:00", "postal_code": "11122",
        "address": {"street": "Drottninggatan 1", "city": "Stockholm", "lat": 59.3326, "lon": 18.0649},
        "patient": {"personal_number": personal_number(rng), "name": "Förälder", "phone": "+46701234567"},
        "for_child": {"personal_number": child, "name": "Barn"}, "symptoms": "öronvärk"})
    assert r.status_code == 201, r.text
    assert r.json()["fee"]["amount"] == 0 and r.json()["status"] == "confirmed"
    return r.json()["id"], token


def _no_show(api, booking_id: str) -> None:
    dispatcher = api.token("dispatcher", "disp-free-fees", "stockholm")
    for kind in ("arrived", "no_show"):
        r = api.post(f"/visits/{booking_id}/events", dispatcher, json={"type": kind})
        assert r.status_code == 200, r.text


def _status(payment_of, booking_id: str) -> str | None:
    from pynamodb.exceptions import DoesNotExist
    try:
        return payment_of(booking_id).status
    except DoesNotExist:
        return None


def test_a_free_visits_card_is_saved_and_its_no_show_fee_charged_off_session(api, card, stripe_client,
                                                                             payment_of, booking_of):
    bid, token = _book_child(api, days_ahead=7)
    r = pay(api, bid, token, card(CARD_OK))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "authorized", "card_saved": True}
    saved = payment_of(bid)
    assert (saved.kind, saved.status, int(saved.amount)) == ("card_on_file", "authorized", 0)
    setup = stripe_client.v1.setup_intents.retrieve(saved.setup_intent_id).to_dict()
    assert (setup["status"], setup["usage"], setup["customer"]) == ("succeeded", "off_session", saved.customer_id)
    assert setup["payment_method"] == saved.payment_method_id
    assert intents_of(stripe_client, bid) == []  # nothing held for a free visit
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized", "card_saved": True}
    assert booking_of(bid).status == "confirmed"

    _no_show(api, bid)
    settle(api, lambda: (payment_of(bid).cancellation_fee or {}).get("status") == "charged")
    fee = payment_of(bid).cancellation_fee
    assert (fee["kind"], fee["amount"], fee["status"]) == ("no_show", 40000, "charged")
    taken = [(pi.amount, pi.status, pi.customer) for pi in intents_of(stripe_client, bid)]
    assert taken == [(40000, "succeeded", saved.customer_id)]


def test_a_free_visit_without_a_card_invoices_its_no_show_fee(api, stripe_client, payment_of, booking_of):
    bid, _ = _book_child(api, days_ahead=8)
    _no_show(api, bid)
    settle(api, lambda: _status(payment_of, bid) == "invoiced")
    p = payment_of(bid)
    assert (p.kind, p.status, int(p.amount), int(p.invoice_due), p.currency) == \
        ("invoice", "invoiced", 40000, 40000, "SEK")
    assert booking_of(bid).payment_status == "invoiced"
    assert intents_of(stripe_client, bid) == []
