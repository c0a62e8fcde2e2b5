"""A free visit's card on file: the visit costs nothing (a child, a frikort, the high-cost cap), but
a late cancellation or a no-show still costs the tariff's fee "whether or not you have a frikort".

`POST /bookings/{id}/payment` on a free booking saves the card with a SetupIntent (usage
off_session, no money held) on the payment record (kind `card_on_file`); the fee is then charged off
session from it (`payments.cancellation`). Without a card the booking is still confirmed, and such
a fee becomes a recorded invoice instead of being lost. The record is listed for reconciliation
until the visit's end (HOLD_EXPIRY at `ends_at`), so a no-show whose event was lost is settled by
the sweep as a hold's would be."""
from __future__ import annotations

from homevisits.booking_state import IN_PROGRESS
from homevisits.clock import utc_iso
from homevisits.errors import (BookingNotPayable, InvalidRequest, PaymentDeclined, PaymentProviderUnavailable,
                               PaymentRejected, RequestInProgress)
from homevisits.persistence.payments import (AUTHORIZED, CARD_ON_FILE, HOLD_EXPIRY, PENDING, RELEASED,
                                             REQUIRES_ACTION)
from payments.context import PaymentContext, customer_for, patient_key, set_gsi
from payments.repository import StaleWrite

PENDING_SETUP = ("requires_action", "requires_confirmation", "processing")


def is_card_on_file(payment) -> bool:
    return payment is not None and payment.kind == CARD_ON_FILE


def _saved(payment) -> dict:
    return {"status": "authorized", "card_saved": True}


def save_card(ctx: PaymentContext, booking, payment, payment_method: str) -> dict:
    """Save `payment_method` for the free booking's fees. Answers {"status": "authorized",
    "card_saved": true}, or {"status": "requires_action", "client_secret", "card_saved": false}
    (3-D Secure: the app completes it; the next call, or the fee's charge, reads the outcome).
    A declined card raises PaymentDeclined (402) and the booking stays confirmed: nothing was due."""
    if booking.status not in IN_PROGRESS:
        raise BookingNotPayable(f"the booking is {booking.status}: there is no visit to save a card for")
    if is_card_on_file(payment) and payment.status == AUTHORIZED:
        return _saved(payment)  # a repeated request: one card on file
    if is_card_on_file(payment) and payment.setup_intent_id:
        setup = ctx.gateway.retrieve_setup(payment.setup_intent_id)
        if setup.status == "succeeded":
            return _record_saved(ctx, payment, setup)
        if setup.status in PENDING_SETUP and payment_method == payment.payment_method_id:
            return {"status": "requires_action", "client_secret": setup.client_secret, "card_saved": False}
        payment.attempt = int(payment.attempt) + 1  # another card, or the last one failed: a new attempt
        payment.setup_intent_id = None
    now = ctx.now()
    customer = customer_for(ctx, booking.patient_sub)
    if payment is None:
        payment = ctx.repo.new_payment(booking, now, status=PENDING, kind=CARD_ON_FILE, attempt=1,
                                       patient_key=patient_key(booking), counts_toward_cap=False)
    elif not is_card_on_file(payment):  # a zero-fee record confirmed before: it now keeps the card
        payment.kind = CARD_ON_FILE
    payment.amount = 0
    payment.customer_id = customer
    payment.payment_method_id = payment_method
    payment.status = PENDING
    try:
        ctx.save(payment)  # on record before Stripe is called
    except StaleWrite:
        raise RequestInProgress("the card is being saved; retry shortly") from None
    try:
        setup = ctx.gateway.save_card(booking_id=booking.booking_id, customer=customer,
                                      payment_method=payment_method,
                                      key=f"setup:{booking.booking_id}:{int(payment.attempt)}")
    except (PaymentDeclined, PaymentRejected) as err:
        payment.attempt = int(payment.attempt) + 1  # closed: another card is a new attempt
        payment.payment_method_id = None
        payment.last_error = "card_declined" if isinstance(err, PaymentDeclined) else "rejected"
        ctx.save(payment)
        if isinstance(err, PaymentDeclined):
            raise PaymentDeclined("The card was declined. Your visit stays booked; please add another card.",
                                  details=err.details) from err
        raise InvalidRequest("the payment method cannot be used; please try another card",
                             code="invalid_payment_method") from err
    except PaymentProviderUnavailable:
        ctx.note_provider_down(payment, booking.booking_id)
        raise
    payment.setup_intent_id = setup.id
    if setup.status == "succeeded":
        return _record_saved(ctx, payment, setup)
    payment.status = REQUIRES_ACTION
    payment.last_error = None
    _watch(payment, booking)
    ctx.save(payment)
    return {"status": "requires_action", "client_secret": setup.client_secret, "card_saved": False}


def _watch(payment, booking) -> None:
    """Listed for reconciliation until the visit's end: a fee whose event was lost is settled."""
    set_gsi(payment, HOLD_EXPIRY, booking.ends_at)


def _record_saved(ctx: PaymentContext, payment, setup) -> dict:
    payment.status = AUTHORIZED
    payment.payment_method_id = setup.payment_method or payment.payment_method_id
    payment.last_error = None
    booking = ctx.repo.get_booking(payment.booking_id)
    if booking is not None:
        _watch(payment, booking)
    ctx.save(payment)
    ctx.repo.set_booking_payment_status(payment.booking_id, "card_saved")
    return _saved(payment)


def usable_card(ctx: PaymentContext, payment) -> None:
    """Before a fee is charged from a card on file: a 3-D Secure setup the patient finished since is
    taken as saved; a card never saved is dropped from the record, so the fee is invoiced rather
    than charged to a card nobody authorised for it."""
    if payment.status == REQUIRES_ACTION and payment.setup_intent_id:
        setup = ctx.gateway.retrieve_setup(payment.setup_intent_id)
        if setup.status == "succeeded":
            payment.status = AUTHORIZED
            payment.payment_method_id = setup.payment_method or payment.payment_method_id
            return
    if payment.status != AUTHORIZED:
        payment.payment_method_id = None


def close(ctx: PaymentContext, payment, outcome: str) -> str:
    """The visit ended owing nothing (completed free, cancelled in time, missed by us): the record
    stops being watched; the card stays with the patient's customer."""
    if payment.status != RELEASED:
        payment.status = RELEASED
        payment.capture_reason = None
        set_gsi(payment, None)
        ctx.save(payment)
    return outcome
