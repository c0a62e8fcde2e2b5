"""The checker sees money (issue 12): each invariant of devstack.invariants fails when a violation
is injected on the real local stack, and holds before it. Money is read from Stripe's charges and
refunds, so a charge made beside every PaymentIntent (which the old PaymentIntent-only reading of
`amount_received` never saw) is reported."""
from __future__ import annotations

import pytest

from devstack import invariants

pytestmark = pytest.mark.stack


def _completed_visit(api, h, person, day, window="10:00") -> str:
    """Book, hold, and complete a Skåne doctor visit through the API; answers the booking id."""
    bid = h.book_and_pay(api, person, day, window, h.SKANE)
    dispatcher = api.token("dispatcher", "disp-invariants", "skane")
    for kind in ("arrived", "completed"):
        h.expect(api.post(f"/visits/{bid}/events", dispatcher, json={"type": kind}), 200)
    return bid


def _settle(api, h):
    h.drain(api)
    api.invoke("ReconcileFunction", {})
    h.drain(api)


def _payment(bid):
    from homevisits.persistence.payments import PAYMENT_SK, PaymentModel, booking_pk
    return PaymentModel.get(booking_pk(bid), PAYMENT_SK, consistent_read=True)


def _charge_beside_the_intents(payment, amount: int, booking_id: str | None) -> dict:
    """Money taken straight through the Stripe API with the patient's saved card, as a bug or a
    person in the dashboard could: a charge of its own, no PaymentIntent of ours."""
    import stripe
    import os
    client = stripe.StripeClient(os.environ.get("STRIPE_API_KEY", "sk_test_local"),
                                 base_addresses={"api": os.environ["STRIPE_API_BASE"]})
    params = {"amount": amount, "currency": "sek", "customer": payment.customer_id,
              "source": payment.payment_method_id}
    if booking_id:
        params["metadata"] = {"booking_id": booking_id}
    return client.v1.charges.create(params=params).to_dict()  # type: ignore[arg-type]


def _seen_by_intents_only(rd: str, booking_id: str) -> int:
    """What the old checker counted: `amount_received` of the booking's PaymentIntents."""
    return sum(int(pi.get("amount_received") or 0) for pi in invariants.stripe_payment_intents()
               if (pi.get("metadata") or {}).get("booking_id") == booking_id and pi["status"] == "succeeded")


def test_money_taken_beside_the_intents_is_an_over_charge_and_a_stray_charge_is_reported(api, h):
    day = api.free_day("skane", 20)
    h.put_shift(api, "skane", day, "doc-inv-money", area=h.SKANE)
    bid = _completed_visit(api, h, h.new_person("inv-money"), day)
    _settle(api, h)
    rd = f"skane#{day}"
    invariants.check([rd]).assert_ok()
    payment = _payment(bid)
    assert payment.status == "captured"

    _charge_beside_the_intents(payment, 99999, bid)
    report = invariants.check([rd])
    over = [v for v in report.violations if v.kind == "over_charge"]
    assert [v.booking_id for v in over] == [bid], report.violations
    assert "taken 134999 > allowed 35000" in over[0].detail
    assert _seen_by_intents_only(rd, bid) == 35000  # the PaymentIntents alone still look right

    _charge_beside_the_intents(payment, 5000, None)
    assert "unattributed_charge" in invariants.check([rd]).kinds()


def test_fees_above_the_high_cost_cap_in_12_months_are_reported(api, h):
    """Three visit fees (3 × 350 SEK) stay under the 1 150 SEK cap; 200 SEK more taken for the same
    person's visit breaks the cap (and that booking's own limit)."""
    person = h.new_person("inv-cap")
    days, bids = [], []
    for n in range(3):
        day = api.free_day("skane", 20 + n)
        h.put_shift(api, "skane", day, f"doc-inv-cap-{n}", area=h.SKANE)
        days.append(day)
        bids.append(_completed_visit(api, h, person, day, "12:00"))
    _settle(api, h)
    rds = [f"skane#{d}" for d in days]
    report = invariants.check(rds)
    report.assert_ok()
    assert sum(int(_payment(b).amount_captured or 0) for b in bids) == 105000

    _charge_beside_the_intents(_payment(bids[-1]), 20000, bids[-1])
    kinds = invariants.check(rds).kinds()
    assert "over_cap" in kinds and "over_charge" in kinds


def test_a_booking_version_that_goes_back_is_reported(api, h):
    from homevisits.persistence.booking import BookingModel

    day = api.free_day("skane", 20)
    h.put_shift(api, "skane", day, "doc-inv-version", area=h.SKANE)
    bid = h.book_and_pay(api, h.new_person("inv-version"), day, "14:00", h.SKANE)
    h.drain(api)
    rd = f"skane#{day}"
    watch = invariants.VersionWatch()
    invariants.check([rd], versions=watch).assert_ok()
    assert watch.seen[bid] >= 2

    # What a writer that replaces the item instead of updating it does (issue 12, defect 1).
    item = BookingModel.get(bid, consistent_read=True)
    BookingModel._get_connection().update_item(bid, actions=[BookingModel.version.set(1)])
    report = invariants.check([rd], versions=watch)
    assert [(v.kind, v.booking_id) for v in report.violations] == [("version_went_back", bid)], report.violations
    assert f"version 1 after {int(item.version)}" in report.violations[0].detail


def test_a_charge_is_counted_as_captured_minus_its_refunds():
    """A partial capture (localstripe refunds the rest) and a refund after it are both taken off."""
    charge = {"id": "ch_1", "amount": 35000, "captured": True, "status": "succeeded"}
    refunds = [{"charge": "ch_1", "amount": 5000, "status": "succeeded"},
               {"charge": "ch_1", "amount": 1000, "status": "failed"}]
    assert invariants.charge_taken(charge, refunds) == 30000
    assert invariants.charge_taken({**charge, "amount_captured": 20000}, []) == 20000
    assert invariants.charge_taken({**charge, "captured": False}, []) == 0


def test_the_cap_counts_12_calendar_months_not_365_days():
    cap = 115000
    assert invariants.over_cap([("2026-01-31", 60000), ("2026-12-01", 60000)], cap) == [("2026-01", 120000)]
    assert invariants.over_cap([("2026-01-31", 60000), ("2027-01-01", 60000)], cap) == []
    assert invariants.over_cap([("2026-03-01", 115000)], cap) == []
