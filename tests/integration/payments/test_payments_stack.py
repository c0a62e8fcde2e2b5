"""Payments on the real local stack: the booking API, the payments function behind the gateway,
DynamoDB Local, the event bus and queues, and localstripe spoken to by the real Stripe SDK."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from homevisits.messaging import SOURCE_BOOKING, SOURCE_DISPATCH, publish

CARD_OK, CARD_DECLINED, CARD_3DS = "4242424242424242", "4000000000000341", "4000002760003184"
WEBHOOK_SECRET = "whsec_local_stack"

pytestmark = pytest.mark.stack


def settle(api, done, timeout_s: float = 60):
    """Wait until the bus and queues are quiet and `done()` holds.

    The gateway's /_local/drain currently fails while its DynamoDB stream poller is stuck on a
    TrimmedDataAccessException (a devstack issue, reported); the queues keep delivering on their
    own threads, so the outcome is polled instead, then a moment is left for duplicates."""
    import requests
    try:
        if api.drain(timeout_s).get("drained") and done():
            return
    except (requests.ConnectionError, AssertionError):
        pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            time.sleep(3)  # later copies of the same event are still delivered: let them land
            return
        time.sleep(0.3)
    raise AssertionError("the events were not processed in time")


def pay(api, booking_id, token, payment_method):
    return api.post(f"/bookings/{booking_id}/payment", token, json={"payment_method": payment_method})


def intents_of(stripe_client, booking_id):
    return [pi for pi in stripe_client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
            if pi.to_dict().get("metadata", {}).get("booking_id") == booking_id]


def test_book_hold_complete_three_times_captures_once(api, book, card, stripe_client, payment_of, booking_of):
    bid, token, booking = book()
    assert booking["fee"] == {"amount": 35000, "currency": "SEK"} or booking["fee"]["amount"] == 35000
    r = pay(api, bid, token, card(CARD_OK))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "authorized"}
    pi_id = payment_of(bid).payment_intent_id
    assert stripe_client.v1.payment_intents.retrieve(pi_id).status == "requires_capture"
    assert booking_of(bid).status == "confirmed"
    dispatcher = api.token("dispatcher", "disp-payments", "stockholm")
    for kind in ("arrived", "completed"):  # the visit happened (money follows the booking's state)
        assert api.post(f"/visits/{bid}/events", dispatcher, json={"type": kind}).status_code == 200

    for _ in range(3):  # at-least-once delivery: the same completion, three more times
        publish(SOURCE_DISPATCH, "VisitEvent", {"booking_id": bid, "type": "completed",
                                                "at": "2026-12-01T15:30:00Z", "clinician_id": "doc-1"})
    settle(api, lambda: payment_of(bid).status == "captured")

    pi = stripe_client.v1.payment_intents.retrieve(pi_id, params={"expand": ["latest_charge"]})
    assert pi.status == "succeeded"
    charge = pi.latest_charge
    assert charge.captured and charge.amount == 35000 and charge.amount_refunded == 0
    assert [p.id for p in intents_of(stripe_client, bid) if p.status == "succeeded"] == [pi_id]
    record = payment_of(bid)
    assert (record.status, record.amount_captured, record.currency) == ("captured", 35000, "SEK")


def test_paying_again_answers_the_same_and_holds_once(api, book, card, stripe_client):
    bid, token, _ = book()
    pm = card(CARD_OK)
    assert pay(api, bid, token, pm).json() == {"status": "authorized"}
    assert pay(api, bid, token, pm).json() == {"status": "authorized"}
    assert len(intents_of(stripe_client, bid)) == 1


def test_another_patient_cannot_pay_or_see_the_booking(api, book, card):
    bid, _, _ = book()
    r = pay(api, bid, api.token("patient", "someone-else"), card(CARD_OK))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_a_malformed_payment_method_is_refused(api, book):
    bid, token, _ = book()
    r = pay(api, bid, token, "4242424242424242")  # never card data: only a pm_ id
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"


def test_an_early_cancellation_releases_the_hold(api, book, card, stripe_client, payment_of):
    bid, token, _ = book(days_ahead=5)
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized"}
    pi_id = payment_of(bid).payment_intent_id
    r = api.post(f"/bookings/{bid}/cancel", token, json={"reason": "feeling better"})
    assert r.status_code == 200, r.text
    settle(api, lambda: payment_of(bid).status == "released")
    assert stripe_client.v1.payment_intents.retrieve(pi_id).status == "canceled"
    assert payment_of(bid).status == "released"


def test_a_late_cancellation_fee_above_the_hold_captures_it_and_charges_the_rest(
        api, book, card, stripe_client, payment_of, booking_of):
    bid, token, _ = book()
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized"}
    pi_id = payment_of(bid).payment_intent_id
    # The booking side decided "late" (inside 24 h) and published it; delivered twice.
    from homevisits import lifecycle
    from homevisits.clock import default_clock
    lifecycle.release_booking(bid, "cancelled", reason="patient_cancelled", now=default_clock().now(),
                              expect=("confirmed",),
                              extra={"cancellation": {"at": "2026-12-01T10:00:00.000Z", "reason": None,
                                                      "fee_decision": "late", "fee_amount": 40000,
                                                      "currency": "SEK"}})
    for _ in range(2):
        publish(SOURCE_BOOKING, "BookingCancelled", {"booking_id": bid, "region": "stockholm",
                                                     "fee_decision": "late", "fee_amount": 40000,
                                                     "currency": "SEK"})
    settle(api, lambda: (payment_of(bid).cancellation_fee or {}).get("status") == "charged")
    record = payment_of(bid)
    assert record.cancellation_fee["status"] == "charged"
    pi = stripe_client.v1.payment_intents.retrieve(pi_id, params={"expand": ["latest_charge"]})
    assert pi.status == "succeeded" and pi.latest_charge.amount == 35000
    rests = [p for p in intents_of(stripe_client, bid) if p.id != pi_id]
    assert [(p.amount, p.status) for p in rests] == [(5000, "succeeded")]

    # A dispatcher of the region accepts a valid reason: everything comes back.
    other = api.post(f"/bookings/{bid}/fee-waiver", api.token("dispatcher", "d2", "skane"),
                     json={"reason": "sudden_illness"})
    assert other.status_code == 403
    from homevisits.persistence.booking import BookingModel
    b = booking_of(bid)
    b.update(actions=[BookingModel.status.set("cancelled"),
                      BookingModel.cancellation.set({"fee_decision": "late", "fee_amount": 40000})])
    r = api.post(f"/bookings/{bid}/fee-waiver", api.token("dispatcher", "d1", "stockholm"),
                 json={"reason": "sudden_illness"})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "refunded", "refunded": 40000}
    refunded = [rf.amount for pid in [pi_id] + [p.id for p in rests]
                for rf in stripe_client.v1.refunds.list(params={"payment_intent": pid}).data]
    assert sorted(refunded) == [5000, 35000]


def test_a_3ds_card_needs_action_and_reconciliation_confirms_once_done(api, book, card, stack, payment_of,
                                                                      booking_of, stripe_client):
    import requests
    bid, token, _ = book()
    r = pay(api, bid, token, card(CARD_3DS))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "requires_action" and body["client_secret"].startswith("pi_")
    assert booking_of(bid).status == "held"
    pi_id = payment_of(bid).payment_intent_id
    # The app completes 3-D Secure with Stripe.js (localstripe's test hook stands in for it).
    done = requests.post(f"{stack.urls['stripe']}/v1/payment_intents/{pi_id}/_authenticate",
                         data={"client_secret": body["client_secret"], "success": "true",
                               "key": "pk_test_local"}, timeout=10)
    assert done.status_code == 200, done.text
    # localstripe sends no amount_capturable_updated: the scheduled reconciliation finds it.
    api.invoke("ReconcileFunction", {})
    assert booking_of(bid).status == "confirmed" and payment_of(bid).status == "authorized"
    assert stripe_client.v1.payment_intents.retrieve(pi_id).status == "requires_capture"


def _signed(payload: str, secret: str = WEBHOOK_SECRET) -> dict:
    t = int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"}


def _event(event_id: str, pi_id: str, booking_id: str, kind="payment_intent.succeeded") -> str:
    return json.dumps({"id": event_id, "object": "event", "type": kind, "created": int(time.time()),
                       "data": {"object": {"id": pi_id, "object": "payment_intent",
                                           "metadata": {"booking_id": booking_id}}}})


def test_signed_webhooks_are_accepted_once_and_forged_ones_refused(api, book, card, payment_of):
    bid, token, _ = book()
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized"}
    pi_id = payment_of(bid).payment_intent_id
    payload = _event(f"evt_test_{bid}", pi_id, bid, "payment_intent.amount_capturable_updated")

    r = api.http.post(api.base + "/payments/webhook", data=payload, headers=_signed(payload), timeout=30)
    assert r.status_code == 200, r.text
    again = api.http.post(api.base + "/payments/webhook", data=payload, headers=_signed(payload), timeout=30)
    assert again.status_code == 200 and again.json().get("duplicate") is True
    assert payment_of(bid).status == "authorized"  # the event changed nothing: the API path was first

    unsigned = api.http.post(api.base + "/payments/webhook", data=payload,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert unsigned.status_code == 400 and unsigned.json()["error"]["code"] == "invalid_signature"
    headers = _signed(payload)
    tampered = payload.replace("amount_capturable_updated", "canceled")
    forged = api.http.post(api.base + "/payments/webhook", data=tampered, headers=headers, timeout=30)
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_signature"
    wrong_key = api.http.post(api.base + "/payments/webhook", data=payload,
                              headers=_signed(payload, "whsec_someone_else"), timeout=30)
    assert wrong_key.status_code == 400


def test_an_unknown_webhook_event_is_harmless(api):
    payload = json.dumps({"id": "evt_unknown_1", "object": "event", "type": "customer.created",
                          "created": int(time.time()), "data": {"object": {"id": "cus_x", "object": "customer"}}})
    r = api.http.post(api.base + "/payments/webhook", data=payload, headers=_signed(payload), timeout=30)
    assert r.status_code == 200, r.text
