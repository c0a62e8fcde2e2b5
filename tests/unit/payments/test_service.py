"""The payment state machine with a fake Stripe, DynamoDB in memory and a settable clock."""
from __future__ import annotations

from datetime import timedelta

import pytest

from homevisits.auth import Caller
from homevisits.errors import (BookingExpired, BookingNotPayable, Forbidden, NotFound, PaymentDeclined,
                               PaymentProviderUnavailable)
from homevisits.persistence.booking import BookingModel
from homevisits.persistence.ledger import read_day
from homevisits.persistence.payments import PaymentModel, ReconFindingModel, fees_paid_since
from payments.cancellation import charge_cancellation_fee, release_hold, waive_fee
from payments.capture import capture_fee
from payments.hold import hold_fee
from payments.repair import reconcile, sync_from_stripe

# The fake Stripe's cards (conftest.FakeStripe): fine, declined, 3-D Secure, declined off session.
PM_OK, PM_DECLINED, PM_3DS, PM_OFF_SESSION_FAILS = "pm_ok", "pm_declined", "pm_3ds", "pm_offsession_fails"


def booking(booking_id):
    return BookingModel.get(booking_id, consistent_read=True)


def payment(booking_id):
    return PaymentModel.get(f"BOOKING#{booking_id}", "PAYMENT", consistent_read=True)


def in_ledger(booking_id) -> bool:
    b = booking(booking_id)
    return booking_id in read_day(b.region_day).visits


def dispatcher(region="stockholm"):
    return Caller(sub="disp-1", role="dispatcher", region=region)


# ---------------------------------------------------------------- hold
def test_a_hold_authorizes_the_fee_and_confirms_the_booking(ctx, make_booking, stripe_fake, published):
    bid = make_booking()
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized"}
    p = payment(bid)
    assert (p.status, p.amount, p.currency) == ("authorized", 35000, "SEK")
    assert stripe_fake.intents[p.payment_intent_id].status == "requires_capture"
    assert booking(bid).status == "confirmed"
    assert [dt for dt, _ in published] == ["BookingConfirmed"]
    assert ("hold", f"hold:{bid}:1") in stripe_fake.calls


def test_paying_twice_holds_once(ctx, make_booking, stripe_fake, published):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized"}
    assert len(stripe_fake.held()) == 1 and len(published) == 1


def test_only_the_patient_of_the_booking_can_pay_it(ctx, make_booking):
    bid = make_booking()
    with pytest.raises(NotFound):
        hold_fee(ctx, "someone-else", bid, PM_OK)
    with pytest.raises(NotFound):
        hold_fee(ctx, "patient-1", "no-such-booking", PM_OK)


def test_one_stripe_customer_per_patient(ctx, make_booking, stripe_fake):
    hold_fee(ctx, "patient-1", make_booking(), PM_OK)
    hold_fee(ctx, "patient-1", make_booking(), PM_OK)
    assert stripe_fake.customers == 1


def test_a_declined_card_keeps_the_place_for_another_card(ctx, make_booking, stripe_fake):
    """Issue 12, defect 8: the 402 says until when the place is kept, and another card within that
    time confirms the booking (before: the booking was cancelled, the next card got 409)."""
    bid = make_booking()
    with pytest.raises(PaymentDeclined) as err:
        hold_fee(ctx, "patient-1", bid, PM_DECLINED)
    assert err.value.status == 402 and err.value.code == "payment_declined"
    assert err.value.details["retry_until"] == booking(bid).hold_expires_at
    assert booking(bid).status == "held" and in_ledger(bid)
    assert payment(bid).status == "failed" and payment(bid).payment_intent_id is None
    assert stripe_fake.held() == {}
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized"}
    assert booking(bid).status == "confirmed" and in_ledger(bid)
    assert list(stripe_fake.held()) == [payment(bid).payment_intent_id]
    assert payment(bid).attempt == 2


def test_a_declined_card_past_the_reservation_says_the_booking_is_gone(ctx, make_booking, clock, stripe_fake):
    bid = make_booking(hold_minutes=15)
    with pytest.raises(PaymentDeclined):
        hold_fee(ctx, "patient-1", bid, PM_DECLINED)
    clock.advance(minutes=16)
    with pytest.raises(BookingExpired) as err:
        hold_fee(ctx, "patient-1", bid, PM_OK)
    assert err.value.status == 410 and err.value.code == "booking_expired"
    assert stripe_fake.held() == {}


def test_a_zero_fee_confirms_at_once_holding_nothing_and_saves_the_card(ctx, make_booking, stripe_fake,
                                                                         published):
    bid = make_booking(fee=0)
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized", "card_saved": True}
    assert booking(bid).status == "confirmed" and payment(bid).amount == 0
    assert stripe_fake.intents == {} and len(published) == 1  # no money held
    assert payment(bid).kind == "card_on_file" and payment(bid).setup_intent_id in stripe_fake.setups


def test_an_expired_reservation_cannot_be_paid(ctx, make_booking, clock, stripe_fake):
    bid = make_booking(hold_minutes=15)
    clock.advance(minutes=16)
    with pytest.raises(BookingExpired):
        hold_fee(ctx, "patient-1", bid, PM_OK)
    assert stripe_fake.held() == {}


def test_a_booking_that_expires_during_the_hold_gets_its_money_back(ctx, make_booking, stripe_fake,
                                                                  set_booking_status, monkeypatch):
    bid = make_booking()
    real_hold = stripe_fake.hold

    def hold_while_booking_expires(**kw):
        answer = real_hold(**kw)
        set_booking_status(bid, "expired")
        return answer

    monkeypatch.setattr(stripe_fake, "hold", hold_while_booking_expires)
    with pytest.raises(BookingNotPayable):
        hold_fee(ctx, "patient-1", bid, PM_OK)
    assert stripe_fake.held() == {}
    assert payment(bid).status == "released" and booking(bid).status == "expired"


# ---------------------------------------------------------------- 3-D Secure
def test_3ds_needs_the_patient_then_the_webhook_confirms(ctx, make_booking, stripe_fake, published):
    bid = make_booking()
    answer = hold_fee(ctx, "patient-1", bid, PM_3DS)
    assert answer["status"] == "requires_action" and answer["client_secret"]
    assert booking(bid).status == "held" and payment(bid).status == "requires_action"
    pi = payment(bid).payment_intent_id
    stripe_fake.authenticate(pi)
    assert sync_from_stripe(ctx, bid, stripe_fake.retrieve(pi)) == "authorized"
    assert booking(bid).status == "confirmed" and payment(bid).status == "authorized"
    # the app polling the same endpoint meanwhile is answered, never double-confirmed
    assert hold_fee(ctx, "patient-1", bid, PM_3DS) == {"status": "authorized"}
    assert sync_from_stripe(ctx, bid, stripe_fake.retrieve(pi)) == "unchanged"
    assert len(published) == 1


def test_3ds_completed_is_picked_up_by_reconciliation_without_a_webhook(ctx, make_booking, stripe_fake, clock):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_3DS)
    stripe_fake.authenticate(payment(bid).payment_intent_id)
    clock.advance(minutes=2)
    reconcile(ctx)
    assert booking(bid).status == "confirmed" and payment(bid).status == "authorized"


def test_3ds_abandoned_past_the_reservation_releases_and_expires(ctx, make_booking, stripe_fake, clock):
    bid = make_booking(hold_minutes=15)
    hold_fee(ctx, "patient-1", bid, PM_3DS)
    clock.advance(minutes=20)
    reconcile(ctx)
    assert booking(bid).status == "expired" and not in_ledger(bid)
    assert payment(bid).status == "released"
    assert all(pi.status == "canceled" for pi in stripe_fake.intents.values())


def test_a_failed_3ds_lets_the_patient_try_another_card_under_a_new_key(ctx, make_booking, stripe_fake):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_3DS)
    stripe_fake.authenticate(payment(bid).payment_intent_id, success=False)
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized"}
    hold_keys = [k for op, k in stripe_fake.calls if op == "hold"]
    assert hold_keys == [f"hold:{bid}:1", f"hold:{bid}:2"]
    assert len(stripe_fake.held()) == 1


def test_switching_card_during_3ds_drops_the_unfinished_attempt(ctx, make_booking, stripe_fake):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_3DS)
    first = payment(bid).payment_intent_id
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized"}
    assert stripe_fake.intents[first].status == "canceled"
    assert len(stripe_fake.held()) == 1


# ---------------------------------------------------------------- provider failures
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_stripe_outage_during_the_hold_answers_503_and_the_retry_holds_once(ctx, make_booking,
                                                                           stripe_fake, when):
    bid = make_booking()
    stripe_fake.fail("hold", when)
    with pytest.raises(PaymentProviderUnavailable):
        hold_fee(ctx, "patient-1", bid, PM_OK)
    assert booking(bid).status == "held"
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized"}
    assert len(stripe_fake.held()) == 1
    assert {k for op, k in stripe_fake.calls if op == "hold"} == {f"hold:{bid}:1"}


def test_a_lost_hold_on_a_booking_that_expired_is_found_and_released(ctx, make_booking, stripe_fake,
                                                                  clock, set_booking_status):
    bid = make_booking()
    stripe_fake.fail("hold", "after")  # Stripe held the money, we never heard
    with pytest.raises(PaymentProviderUnavailable):
        hold_fee(ctx, "patient-1", bid, PM_OK)
    assert len(stripe_fake.held()) == 1
    set_booking_status(bid, "expired")
    release_hold(ctx, bid, "expired")  # BookingExpired
    clock.advance(minutes=5)
    reconcile(ctx)
    assert stripe_fake.held() == {}


def test_a_lost_hold_on_a_booking_still_held_is_finished_by_reconciliation(ctx, make_booking, stripe_fake,
                                                                         clock, published):
    """Stripe held the money, the answer never came and the patient does not retry: after two
    minutes reconciliation replays the request under its key and confirms the booking — no
    second hold, no waiting for the reservation to lapse."""
    bid = make_booking()
    stripe_fake.fail("hold", "after")
    with pytest.raises(PaymentProviderUnavailable):
        hold_fee(ctx, "patient-1", bid, PM_OK)
    assert booking(bid).status == "held" and payment(bid).status == "pending"
    reconcile(ctx)  # under two minutes old: the live request may still be running
    assert booking(bid).status == "held"
    clock.advance(minutes=3)
    reconcile(ctx)
    assert booking(bid).status == "confirmed" and payment(bid).status == "authorized"
    assert len(stripe_fake.held()) == 1 and [dt for dt, _ in published] == ["BookingConfirmed"]
    assert {k for op, k in stripe_fake.calls if op == "hold"} == {f"hold:{bid}:1"}


# ---------------------------------------------------------------- capture
def test_a_completed_visit_is_captured_exactly_once(ctx, make_booking, stripe_fake, set_booking_status):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "completed")
    for _ in range(3):
        capture_fee(ctx, bid)
    assert [op for op, _ in stripe_fake.calls].count("capture") == 1
    assert [pi.amount_received for pi in stripe_fake.captures(bid)] == [35000]
    p = payment(bid)
    assert (p.status, p.amount_captured) == ("captured", 35000)
    assert fees_paid_since(p.patient_key, "2026-01-01") == 35000


def test_a_failed_capture_is_retried_with_the_same_key(ctx, make_booking, stripe_fake, clock, set_booking_status):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "completed")
    stripe_fake.fail("capture", "after")  # captured at Stripe, answer lost
    with pytest.raises(PaymentProviderUnavailable):
        capture_fee(ctx, bid)
    assert payment(bid).status == "authorized" and payment(bid).gsi1pk == "CAPTURE_DUE"
    clock.advance(minutes=10)
    reconcile(ctx)
    assert payment(bid).status == "captured"
    assert {k for op, k in stripe_fake.calls if op == "capture"} == {f"capture:{bid}"}
    assert len(stripe_fake.captures(bid)) == 1


def test_the_fee_ledger_only_counts_doctor_visits_toward_the_cap(ctx, make_booking, set_booking_status):
    doctor, nurse = make_booking(visit_type="doctor"), make_booking(visit_type="nurse")
    for bid in (doctor, nurse):
        hold_fee(ctx, "patient-1", bid, PM_OK)
        set_booking_status(bid, "completed")
        capture_fee(ctx, bid)
    assert fees_paid_since(payment(doctor).patient_key, "2026-01-01") == 35000
    assert fees_paid_since(payment(doctor).patient_key, "2027-01-01") == 0


# ---------------------------------------------------------------- release and fees
def test_a_free_cancellation_releases_the_hold(ctx, make_booking, stripe_fake, set_booking_status):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "cancelled", cancellation={"fee_decision": "free"})
    assert release_hold(ctx, bid) == "released"
    assert release_hold(ctx, bid) == "already_released"
    assert stripe_fake.held() == {} and payment(bid).status == "released"


def test_a_late_cancellation_takes_the_hold_and_charges_the_rest_off_session(ctx, make_booking, stripe_fake,
                                                                            set_booking_status):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "cancelled", cancellation={"fee_decision": "late", "fee_amount": 40000})
    assert charge_cancellation_fee(ctx, bid, "late") == "charged"
    assert charge_cancellation_fee(ctx, bid, "late") == "already_charged"
    p = payment(bid)
    assert p.amount_captured == 35000 and p.cancellation_fee["status"] == "charged"
    assert [c["amount"] for c in p.extra_charges] == [5000]
    assert sum(pi.amount_received for pi in stripe_fake.captures(bid)) == 40000
    assert ("charge_off_session", f"fee-rest:{bid}") in stripe_fake.calls
    assert fees_paid_since(p.patient_key, "2026-01-01") == 0  # a cancellation fee is no visit fee


def test_a_fee_rest_below_the_minimum_card_charge_is_waived_not_sent_to_stripe(ctx, make_booking, stripe_fake,
                                                                               set_booking_status):
    bid = make_booking(fee=39800)  # the 400 SEK late fee leaves 2 SEK after the 398 SEK hold
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "cancelled", cancellation={"fee_decision": "late", "fee_amount": 40000})
    assert charge_cancellation_fee(ctx, bid, "late") == "charged"
    p = payment(bid)
    assert p.amount_captured == 39800 and not p.extra_charges and not p.invoice_due
    assert p.cancellation_fee["waived_below_minimum"] == 200
    assert not [c for c in stripe_fake.calls if c[0] == "charge_off_session"]


def test_a_rest_that_cannot_be_charged_is_invoiced(ctx, make_booking, set_booking_status):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OFF_SESSION_FAILS)
    set_booking_status(bid, "no_show")
    assert charge_cancellation_fee(ctx, bid, "no_show") == "invoice_due"
    p = payment(bid)
    assert p.amount_captured == 35000 and p.invoice_due == 5000


def test_a_waiver_before_the_fee_is_taken_releases_the_hold(ctx, make_booking, stripe_fake, set_booking_status):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "cancelled", cancellation={"fee_decision": "late"})
    assert waive_fee(ctx, dispatcher(), bid, "sudden_illness") == {"status": "waived", "refunded": 0}
    assert charge_cancellation_fee(ctx, bid, "late") == "already_waived"  # the late event arrives after
    assert stripe_fake.held() == {} and stripe_fake.captures(bid) == []


def test_a_waiver_after_the_fee_was_taken_refunds_it(ctx, make_booking, stripe_fake, set_booking_status):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "no_show")
    charge_cancellation_fee(ctx, bid, "no_show")
    assert waive_fee(ctx, dispatcher(), bid, "child_illness") == {"status": "refunded", "refunded": 40000}
    assert sorted(a for _, a in stripe_fake.refunds) == [5000, 35000]
    assert waive_fee(ctx, dispatcher(), bid, "child_illness")["status"] == "refunded"
    assert len(stripe_fake.refunds) == 2


def test_only_a_dispatcher_of_the_region_can_waive_and_only_for_a_valid_reason(ctx, make_booking,
                                                                            set_booking_status):
    from homevisits.errors import InvalidRequest, InvalidTransition
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    with pytest.raises(InvalidTransition):
        waive_fee(ctx, dispatcher(), bid, "sudden_illness")  # confirmed: no fee to waive
    set_booking_status(bid, "no_show")
    with pytest.raises(Forbidden):
        waive_fee(ctx, dispatcher("skane"), bid, "sudden_illness")
    with pytest.raises(Forbidden):
        waive_fee(ctx, Caller("p", "patient"), bid, "sudden_illness")
    with pytest.raises(InvalidRequest):
        waive_fee(ctx, dispatcher(), bid, "overslept")


# ---------------------------------------------------------------- holds that would lapse
def test_a_visit_far_ahead_gets_its_hold_renewed_before_it_lapses(ctx, make_booking, stripe_fake, clock,
                                                                   set_booking_status):
    bid = make_booking(days_ahead=12)
    hold_fee(ctx, "patient-1", bid, PM_OK)
    first = payment(bid).payment_intent_id
    clock.advance(days=4)  # 3 days left on the 7-day authorization: not yet
    reconcile(ctx)
    assert payment(bid).payment_intent_id == first
    clock.advance(days=1, hours=13)  # 35 h left: inside the 36 h renewal margin
    reconcile(ctx)
    p = payment(bid)
    assert p.payment_intent_id != first and p.renewals == 1
    assert stripe_fake.intents[first].status == "canceled"
    assert list(stripe_fake.held()) == [p.payment_intent_id]
    assert ("hold", f"hold:{bid}:renew:1") in stripe_fake.calls
    clock.advance(days=6, hours=12)  # the visit day: the renewed hold is still good
    set_booking_status(bid, "completed")
    capture_fee(ctx, bid)
    assert payment(bid).status == "captured" and len(stripe_fake.captures(bid)) == 1


def test_a_hold_that_outlives_the_visit_is_not_renewed(ctx, make_booking, stripe_fake, clock):
    bid = make_booking(days_ahead=3)
    hold_fee(ctx, "patient-1", bid, PM_OK)
    clock.advance(days=6)
    reconcile(ctx)
    assert [op for op, _ in stripe_fake.calls].count("hold") == 1


def test_a_failed_renewal_keeps_the_old_hold_and_is_reported(ctx, make_booking, stripe_fake, clock):
    bid = make_booking(days_ahead=12)
    hold_fee(ctx, "patient-1", bid, PM_OFF_SESSION_FAILS)
    first = payment(bid).payment_intent_id
    clock.advance(days=5, hours=13)
    reconcile(ctx)
    assert payment(bid).payment_intent_id == first and stripe_fake.intents[first].status == "requires_capture"
    assert [f.kind for f in ReconFindingModel.scan()] == ["hold_renewal_failed"]


def test_a_lapsed_hold_is_charged_off_session_at_completion(ctx, make_booking, stripe_fake, clock,
                                                            set_booking_status):
    bid = make_booking(days_ahead=1)
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "completed")
    clock.advance(days=8)  # the completion event came very late: the authorization lapsed
    assert capture_fee(ctx, bid) == "captured"
    assert sum(pi.amount_received for pi in stripe_fake.captures(bid)) == 35000


# ---------------------------------------------------------------- fault injection
STEPS = ["hold", "capture", "release", "retrieve", "refund", "charge_off_session", "customer"]


def _invariants(stripe_fake, booking_ids):
    held = stripe_fake.held()
    for bid in booking_ids:
        b, p = booking(bid), payment(bid) if PaymentModel.count(f"BOOKING#{bid}") else None
        holds = [pi for pi in held.values() if pi.metadata.get("booking_id") == bid]
        assert len(holds) <= 1, f"{bid}: more than one hold"
        if holds:
            assert b.status in ("confirmed", "en_route", "arrived"), f"{bid}: money held for a {b.status} booking"
            assert p is not None and p.payment_intent_id == holds[0].id
        if b.status == "confirmed" and b.fee_amount > 0:
            assert holds, f"{bid}: confirmed without a hold"
        captured = [pi for pi in stripe_fake.captures(bid) if pi.metadata.get("kind") is None]
        assert len(captured) <= 1, f"{bid}: captured twice"
        assert all(pi.amount_received <= pi.amount for pi in captured)


def _retry(fn, attempts=6):
    for _ in range(attempts):
        try:
            return fn()
        except PaymentProviderUnavailable:
            continue
    return fn()


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_failure_at_any_step_never_leaves_money_or_bookings_inconsistent(ctx, make_booking, stripe_fake,
                                                                         clock, step, when, set_booking_status):
    completed, cancelled, late = make_booking(), make_booking(), make_booking()
    stripe_fake.fail(step, when, times=2)
    for bid in (completed, cancelled, late):
        _retry(lambda: hold_fee(ctx, "patient-1", bid, PM_OK))
    _invariants(stripe_fake, [completed, cancelled, late])
    set_booking_status(completed, "completed")
    set_booking_status(cancelled, "cancelled", cancellation={"fee_decision": "free"})
    set_booking_status(late, "cancelled", cancellation={"fee_decision": "late", "fee_amount": 40000})
    _retry(lambda: capture_fee(ctx, completed))
    _retry(lambda: release_hold(ctx, cancelled))
    _retry(lambda: charge_cancellation_fee(ctx, late, "late"))
    clock.advance(minutes=10)
    reconcile(ctx)
    # Payments never moved the bookings: each is where the booking side left it.
    assert [booking(b).status for b in (completed, cancelled, late)] == ["completed", "cancelled", "cancelled"]
    assert payment(completed).status == "captured" and len(stripe_fake.captures(completed)) == 1
    assert payment(cancelled).status == "released"
    assert payment(late).cancellation_fee["status"] == "charged"
    held = stripe_fake.held()
    assert not any(pi.metadata.get("booking_id") in (completed, cancelled, late) for pi in held.values())
    assert len([pi for pi in stripe_fake.captures(completed)]) == 1


def test_a_free_booking_confirmed_by_booking_takes_no_money_when_completed(ctx, make_booking, stripe_fake,
                                                                          set_booking_status):
    bid = make_booking(fee=0, status="confirmed")
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized", "card_saved": True}
    set_booking_status(bid, "completed")
    assert capture_fee(ctx, bid) == "nothing_to_capture"
    assert stripe_fake.intents == {}  # the card was saved for fees, never charged
    assert payment(bid).status == "released" and payment(bid).gsi1pk is None


def test_confirming_marks_the_visit_confirmed_in_the_capacity_ledger(ctx, make_booking):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    entry = read_day(booking(bid).region_day).visits[bid]
    assert entry["status"] == "confirmed" and entry.get("hold_expires_at") is None
    assert booking(bid).hold_expires_at is None


@pytest.mark.parametrize("status, cancellation, expected", [
    ("cancelled", {"fee_decision": "free"}, "released"),
    ("expired", None, "released"),
    ("cancelled", {"fee_decision": "late", "fee_amount": 40000}, "captured"),
    ("completed", None, "captured"),
])
def test_reconciliation_settles_a_hold_whose_event_was_lost(ctx, make_booking, stripe_fake,
                                                           set_booking_status, status, cancellation, expected):
    bid = make_booking()
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, status, **({"cancellation": cancellation} if cancellation else {}))
    reconcile(ctx)  # BookingCancelled / BookingExpired / VisitEvent never arrived
    assert payment(bid).status == expected
    assert stripe_fake.held() == {}


# ---- free visits: the card saved for their fees, or an invoice (issue 12, defect 4)

def test_a_free_visits_no_show_charges_the_tariffs_fee_to_the_saved_card(ctx, make_booking, stripe_fake,
                                                                        set_booking_status):
    """The card is saved with a SetupIntent (usage off_session, no money held); the no-show fee is
    the tariff's (400 SEK), charged off session, and does not count toward the high-cost cap."""
    bid = make_booking(fee=0, status="confirmed")
    assert hold_fee(ctx, "patient-1", bid, PM_OK)["card_saved"] is True
    setup = stripe_fake.setups[payment(bid).setup_intent_id]
    assert (setup.usage, setup.status, setup.payment_method) == ("off_session", "succeeded", PM_OK)
    assert hold_fee(ctx, "patient-1", bid, PM_OK)["card_saved"] is True and len(stripe_fake.setups) == 1
    set_booking_status(bid, "no_show")
    assert charge_cancellation_fee(ctx, bid, "no_show") == "charged"
    charged = [pi for pi in stripe_fake.intents.values() if pi.metadata.get("booking_id") == bid]
    assert [(pi.amount, pi.status, pi.customer) for pi in charged] == [(40000, "succeeded", "cus_patient-1")]
    assert charge_cancellation_fee(ctx, bid, "no_show") == "already_charged"
    assert len(stripe_fake.intents) == 1
    assert fees_paid_since(payment(bid).patient_key, "2000-01-01") == 0


def test_a_free_visit_without_a_card_records_the_fee_as_an_invoice(ctx, make_booking, stripe_fake,
                                                                    set_booking_status):
    bid = make_booking(fee=0, status="confirmed")
    set_booking_status(bid, "no_show")
    assert charge_cancellation_fee(ctx, bid, "no_show") == "invoiced"
    p = payment(bid)
    assert (p.kind, p.status, int(p.amount), int(p.invoice_due), p.currency) == \
        ("invoice", "invoiced", 40000, 40000, "SEK")
    assert p.cancellation_fee["status"] == "invoiced" and p.cancellation_fee["kind"] == "no_show"
    assert booking(bid).payment_status == "invoiced"
    assert charge_cancellation_fee(ctx, bid, "no_show") == "already_invoiced"
    assert stripe_fake.calls == []
    assert waive_fee(ctx, dispatcher(), bid, "sudden_illness")["status"] == "waived"
    assert int(payment(bid).invoice_due) == 0 and payment(bid).cancellation_fee["status"] == "waived"


def test_a_late_cancellation_of_a_free_visit_without_a_card_is_invoiced(ctx, make_booking, set_booking_status):
    bid = make_booking(fee=0, status="confirmed")
    set_booking_status(bid, "cancelled", cancellation={"fee_decision": "late", "fee_amount": 99999})
    assert charge_cancellation_fee(ctx, bid, "late") == "invoiced"
    assert int(payment(bid).amount) == 40000  # the tariff's, never the event's or the record's figure


def test_a_waiver_before_the_fee_event_leaves_nothing_to_invoice(ctx, make_booking, set_booking_status):
    bid = make_booking(fee=0, status="confirmed")
    set_booking_status(bid, "no_show")
    assert waive_fee(ctx, dispatcher(), bid, "sudden_illness")["status"] == "waived"
    assert charge_cancellation_fee(ctx, bid, "no_show") == "already_waived"
    assert int(payment(bid).invoice_due) == 0


def test_a_declined_card_on_a_free_visit_keeps_the_booking(ctx, make_booking, stripe_fake):
    bid = make_booking(fee=0, status="confirmed")
    with pytest.raises(PaymentDeclined):
        hold_fee(ctx, "patient-1", bid, PM_DECLINED)
    assert booking(bid).status == "confirmed"
    assert hold_fee(ctx, "patient-1", bid, PM_OK) == {"status": "authorized", "card_saved": True}


def test_a_card_whose_3ds_setup_was_never_finished_is_not_charged(ctx, make_booking, stripe_fake,
                                                                   set_booking_status):
    bid = make_booking(fee=0, status="confirmed")
    answer = hold_fee(ctx, "patient-1", bid, PM_3DS)
    assert answer["status"] == "requires_action" and answer["client_secret"] and answer["card_saved"] is False
    set_booking_status(bid, "no_show")
    assert charge_cancellation_fee(ctx, bid, "no_show") == "invoice_due"
    assert stripe_fake.intents == {} and int(payment(bid).invoice_due) == 40000


def test_a_finished_3ds_setup_is_the_card_on_file(ctx, make_booking, stripe_fake):
    bid = make_booking(fee=0, status="confirmed")
    hold_fee(ctx, "patient-1", bid, PM_3DS)
    stripe_fake.complete_setup(payment(bid).setup_intent_id)
    assert hold_fee(ctx, "patient-1", bid, PM_3DS) == {"status": "authorized", "card_saved": True}
    assert payment(bid).status == "authorized" and len(stripe_fake.setups) == 1


def test_reconciliation_charges_a_free_visits_no_show_whose_event_was_lost(ctx, make_booking, stripe_fake,
                                                                          set_booking_status, clock):
    bid = make_booking(fee=0, status="confirmed")
    hold_fee(ctx, "patient-1", bid, PM_OK)
    set_booking_status(bid, "no_show")
    outcomes = reconcile(ctx)
    assert any(k.endswith("settled_charged") for k in outcomes), outcomes
    assert [pi.amount for pi in stripe_fake.intents.values()] == [40000]
