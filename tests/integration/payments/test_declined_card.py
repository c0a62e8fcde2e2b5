"""A declined card keeps the booking's place for another card until its reservation runs out
(issue 12, defect 8), on the real local stack (localstripe's declining test card, the payments
function behind the gateway, DynamoDB Local). Before: the 402 said "use another card" while the
booking was already cancelled, so the next card got 409 "please book again"."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from homevisits.clock import parse_utc

from .test_payments_stack import CARD_DECLINED, CARD_OK, intents_of, pay

pytestmark = pytest.mark.stack


def _decline(api, bid, token, card, booking_of):
    r = pay(api, bid, token, card(CARD_DECLINED))
    assert r.status_code == 402, r.text
    err = r.json()["error"]
    assert err["code"] == "payment_declined" and "declined" in err["message"]
    held_until = booking_of(bid).hold_expires_at
    assert err["details"]["retry_until"] == held_until and held_until in err["message"]
    assert booking_of(bid).status == "held"
    return held_until


def test_a_declined_card_then_another_card_confirms_with_one_hold(api, book, card, stripe_client,
                                                                  payment_of, booking_of):
    from homevisits.persistence.ledger import read_day
    bid, token, _ = book()
    _decline(api, bid, token, card, booking_of)
    assert bid in read_day(booking_of(bid).region_day).visits  # the place is kept
    assert payment_of(bid).status == "failed"
    assert [pi.status for pi in intents_of(stripe_client, bid)] == ["requires_payment_method"]

    r = pay(api, bid, token, card(CARD_OK))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "authorized"}
    assert booking_of(bid).status == "confirmed"
    held = [pi.id for pi in intents_of(stripe_client, bid) if pi.status == "requires_capture"]
    assert held == [payment_of(bid).payment_intent_id]
    seen = api.get(f"/bookings/{bid}", token).json()
    assert seen["status"] == "confirmed"


def test_two_cards_racing_after_a_decline_hold_once(api, book, card, stripe_client, payment_of, booking_of):
    bid, token, _ = book()
    _decline(api, bid, token, card, booking_of)
    cards = [card(CARD_OK), card(CARD_OK)]
    answers: list = [None, None]
    start = threading.Barrier(2)

    def go(i):
        start.wait()
        answers[i] = pay(api, bid, token, cards[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(a.status_code for a in answers)
    assert codes in ([200, 200], [200, 409]), [a.text for a in answers]
    for a in answers:
        if a.status_code == 409:
            assert a.json()["error"]["code"] == "request_in_progress"
    assert booking_of(bid).status == "confirmed"
    held = [pi.id for pi in intents_of(stripe_client, bid) if pi.status == "requires_capture"]
    assert held == [payment_of(bid).payment_intent_id]


def test_a_declined_card_past_the_deadline_says_the_booking_is_gone_and_frees_the_place(
        api, book, card, stripe_client, booking_of, moved_clock):
    from homevisits.persistence.ledger import read_day
    bid, token, _ = book()
    held_until = _decline(api, bid, token, card, booking_of)
    region_day = booking_of(bid).region_day

    moved_clock(parse_utc(held_until) + timedelta(seconds=30))
    r = pay(api, bid, token, card(CARD_OK))  # before the expiry job has run
    assert r.status_code == 410, r.text
    assert r.json()["error"]["code"] == "booking_expired"

    result = api.invoke("BookingJobsFunction", {"job": "expire_holds"})
    assert result["expired"] >= 1, result
    assert booking_of(bid).status == "expired"
    assert bid not in read_day(region_day).visits  # the window's capacity is free again
    r = pay(api, bid, token, card(CARD_OK))
    assert r.status_code == 410, r.text
    err = r.json()["error"]
    assert err["code"] == "booking_expired" and "book again" in err["message"]
    assert [pi for pi in intents_of(stripe_client, bid) if pi.status == "requires_capture"] == []
