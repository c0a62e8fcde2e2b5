"""A booking's life where its state and its money cross functions, on the real local stack:
payments never move a booking's version backwards (issue 12, defect 1), and money follows the
booking's own state and the tariff, never an event's figures (defect 2)."""
from __future__ import annotations

import pytest

from homevisits.messaging import SOURCE_BOOKING, SOURCE_DISPATCH, publish

from .test_payments_stack import CARD_OK, intents_of, pay, settle

pytestmark = pytest.mark.stack

FAST = {"time_limit_s": 1}


def test_releasing_a_hold_never_moves_the_bookings_version_back(api, book, card, payment_of, booking_of):
    """The payments function mirrors the payment status on the booking through the booking's
    owner: the version goes on counting up instead of starting again at 1."""
    bid, token, _ = book(days_ahead=5)
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized"}
    confirmed = int(booking_of(bid).version)
    r = api.post(f"/bookings/{bid}/cancel", token, json={"reason": "feeling better"})
    assert r.status_code == 200, r.text
    cancelled = int(booking_of(bid).version)
    assert cancelled > confirmed
    settle(api, lambda: payment_of(bid).status == "released" and booking_of(bid).payment_status == "released")
    after = booking_of(bid)
    assert after.status == "cancelled" and after.payment_status == "released"
    assert int(after.version) >= cancelled


def test_after_a_capture_the_dispatcher_can_replan_the_day(api, book, card, payment_of, booking_of):
    """A capture used to reset the completed booking's version to 1, so the day's input stamp went
    backwards and every optimize answered 409 plan_conflict until the next visit event."""
    bid, token, _ = book(days_ahead=6)
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized"}
    b = booking_of(bid)
    dispatcher = api.token("dispatcher", "disp-life", "stockholm")
    path = f"/regions/stockholm/plans/{b.date}/optimize"
    r = api.post(path, dispatcher, json=FAST)
    assert r.status_code == 200, r.text
    for kind in ("arrived", "completed"):
        r = api.post(f"/visits/{bid}/events", dispatcher, json={"type": kind})
        assert r.status_code == 200, r.text
    settle(api, lambda: payment_of(bid).status == "captured" and booking_of(bid).payment_status == "captured")
    completed = booking_of(bid)
    assert completed.status == "completed" and int(completed.version) > int(b.version)
    r = api.post(path, dispatcher, json=FAST)
    assert r.status_code == 200, r.text
    r = api.post(path, dispatcher, json=FAST)
    assert r.status_code == 200, r.text


def test_a_no_show_event_for_a_captured_visit_charges_nothing_more(api, book, card, stripe_client,
                                                                    payment_of, booking_of):
    """An event's fee figure is never money: a `no_show` with fee_amount 99999 for a booking that
    is completed and captured changes nothing at Stripe or on the record."""
    bid, token, _ = book(days_ahead=4)
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized"}
    dispatcher = api.token("dispatcher", "disp-life", "stockholm")
    for kind in ("arrived", "completed"):
        assert api.post(f"/visits/{bid}/events", dispatcher, json={"type": kind}).status_code == 200
    settle(api, lambda: payment_of(bid).status == "captured")
    before = payment_of(bid)
    publish(SOURCE_DISPATCH, "VisitEvent", {"booking_id": bid, "type": "no_show", "fee_amount": 99999,
                                            "at": "2026-12-01T15:30:00Z", "clinician_id": "doc-1"})
    publish(SOURCE_BOOKING, "BookingCancelled", {"booking_id": bid, "region": "stockholm",
                                                 "fee_decision": "late", "fee_amount": 99999,
                                                 "currency": "SEK"})
    settle(api, lambda: True)
    after = payment_of(bid)
    assert (after.status, int(after.amount_captured), after.cancellation_fee, after.extra_charges) == \
        ("captured", 35000, None, [])
    assert int(after.version) == int(before.version)
    taken = [(p.amount, p.status) for p in intents_of(stripe_client, bid)]
    assert taken == [(35000, "succeeded")]
    assert booking_of(bid).status == "completed"


def test_a_late_cancellation_is_charged_the_tariffs_fee_not_the_events(api, book, card, stripe_client,
                                                                        payment_of, booking_of):
    """The fee of a late cancellation is what the booking's own decision and the tariff say, even
    when the event carries another figure."""
    bid, token, _ = book()
    assert pay(api, bid, token, card(CARD_OK)).json() == {"status": "authorized"}
    from homevisits import lifecycle
    from homevisits.clock import default_clock
    # The booking side decided "late" (as its 24-hour rule would inside the window) ...
    lifecycle.release_booking(bid, "cancelled", reason="patient_cancelled", now=default_clock().now(),
                              expect=("confirmed",),
                              extra={"cancellation": {"at": "2026-12-01T10:00:00.000Z", "reason": None,
                                                      "fee_decision": "late", "fee_amount": 40000,
                                                      "currency": "SEK"}})
    # ... and an event claims a far larger fee.
    publish(SOURCE_BOOKING, "BookingCancelled", {"booking_id": bid, "region": "stockholm",
                                                 "fee_decision": "late", "fee_amount": 99999,
                                                 "currency": "SEK"})
    settle(api, lambda: (payment_of(bid).cancellation_fee or {}).get("status") == "charged")
    record = payment_of(bid)
    assert record.cancellation_fee["amount"] == 40000
    taken = sorted((p.amount, p.status) for p in intents_of(stripe_client, bid) if p.status == "succeeded")
    assert taken == [(5000, "succeeded"), (35000, "succeeded")]
