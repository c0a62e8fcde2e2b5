"""Hold the fee and confirm the booking (POST /bookings/{id}/payment): a new attempt or the resumption
of an earlier one, a free visit confirmed without Stripe, a declined card, 3-D Secure; and the one
place a hold becomes `authorized` with its booking confirmed (`finish_authorization`, also used by
the webhook and reconciliation through `payments.repair`)."""
from __future__ import annotations

from homevisits.booking_state import IN_PROGRESS, BookingStatus as S
from homevisits.clock import utc_iso
from homevisits.errors import (BookingExpired, BookingNotPayable, InvalidRequest, InvalidTransition, NotFound,
                               PaymentDeclined, PaymentProviderUnavailable, PaymentRejected,
                               RequestInProgress)
from homevisits.lifecycle import MAX_ATTEMPTS, backoff
from homevisits.persistence.payments import (ACTION_PENDING, AUTHORIZED, CAPTURED, FAILED, HOLD_EXPIRY,
                                             OPEN_STATES, PENDING, PENDING_PK, RELEASED, REQUIRES_ACTION)
from payments import card_on_file
from payments.context import (PaymentContext, capture_before, counts_toward_cap, customer_for, hold_expired, logger,
                              patient_key, release_intent, set_gsi)
from payments.repository import NoLongerFits, StaleWrite


def hold_fee(ctx: PaymentContext, patient_sub: str, booking_id: str, payment_method: str) -> dict:
    """Hold the booking's fee on the card `payment_method` and confirm the booking.

    Answers {"status": "authorized"} or {"status": "requires_action", "client_secret": …}
    (3-D Secure: the webhook or reconciliation confirms once the patient completes it).
    Raises NotFound (not the caller's booking), BookingExpired (410: its time to be paid ran out,
    its place was given back), BookingNotPayable (cancelled or otherwise not held any more),
    PaymentDeclined (402: nothing is held, the booking keeps its place for another card until
    `retry_until`, its `hold_expires_at`), PaymentProviderUnavailable (nothing half-done: a retry
    resumes with the same key)."""
    booking = ctx.repo.get_booking(booking_id)
    if booking is None or booking.patient_sub != patient_sub:
        raise NotFound("no such booking")
    payment = ctx.repo.get_payment(booking_id)
    if int(booking.fee_amount or 0) == 0 and booking.status in IN_PROGRESS:
        # A free visit (confirmed when it was booked): nothing to hold, but its late-cancellation
        # or no-show fee still needs a way to be paid, so the card is saved (payments.card_on_file).
        return card_on_file.save_card(ctx, booking, payment, payment_method)
    if payment is not None and payment.status in (AUTHORIZED, CAPTURED) and \
            booking.status in IN_PROGRESS | {S.COMPLETED}:
        return {"status": "authorized"}  # a repeated request: answered, never held twice
    if booking.status == S.EXPIRED:
        raise _expired(booking)
    if booking.status != S.HELD:
        raise BookingNotPayable(f"the booking is {booking.status} and can no longer be paid")
    if payment is not None and payment.status == RELEASED:
        raise BookingNotPayable("the booking can no longer be paid")
    if payment is not None and payment.payment_intent_id:
        answer = _resume_attempt(ctx, booking, payment, payment_method)
        if answer is not None:
            return answer
        payment = ctx.repo.get_payment(booking_id)
    if hold_expired(ctx, booking):
        raise _expired(booking)  # the expiry job has not run yet: the place no longer counts
    if int(booking.fee_amount) == 0:
        answer = _confirm_free(ctx, booking, payment)
        return card_on_file.save_card(ctx, ctx.repo.get_booking(booking_id), ctx.repo.get_payment(booking_id),
                                      payment_method) if answer["status"] == "authorized" else answer
    return _place_hold(ctx, booking, payment, payment_method)


def _resume_attempt(ctx: PaymentContext, booking, payment, payment_method: str) -> dict | None:
    """Carry an earlier attempt on, or close it when it definitively failed (then None)."""
    intent = ctx.gateway.retrieve(payment.payment_intent_id)
    if intent.status == "requires_capture":
        finish_authorization(ctx, booking, payment, intent)
        return {"status": "authorized"}
    if intent.status in ("requires_action", "requires_confirmation", "processing"):
        if payment_method == payment.payment_method_id or intent.status == "processing":
            return {"status": "requires_action", "client_secret": intent.client_secret}
        # The patient switched card: the unfinished attempt is dropped before a new one starts.
        release_intent(ctx, booking.booking_id, intent.id)
    elif intent.status == "succeeded":
        ctx.finding(booking.booking_id, "captured_while_held", {"payment_intent": intent.id})
        raise InvalidTransition("this payment was already taken", code="already_paid")
    # requires_payment_method (3-D Secure failed, card declined later) or canceled: next attempt.
    payment.attempt = int(payment.attempt) + 1
    payment.payment_intent_id = None
    payment.status = PENDING
    payment.last_error = f"attempt_{intent.status}"
    set_gsi(payment, PENDING_PK, utc_iso(ctx.now()))
    try:
        ctx.save(payment)
    except StaleWrite:
        raise RequestInProgress("the payment is being processed; retry shortly") from None
    return None


def _expired(booking) -> BookingExpired:
    return BookingExpired("the booking has expired: its time to pay ran out and its place was given back; "
                          "nothing was charged; please book again",
                          details={"expired_at": booking.hold_expires_at})


def _publish_confirmed(ctx: PaymentContext, booking) -> None:
    from homevisits.messaging import SOURCE_PAYMENTS
    try:
        ctx.publish(SOURCE_PAYMENTS, "BookingConfirmed",
                    {"booking_id": booking.booking_id, "region": booking.region, "date": booking.date})
    except Exception:  # the booking is confirmed either way; a lost notice is logged, not fatal
        logger.exception("could not publish BookingConfirmed", extra={"booking_id": booking.booking_id})


def _confirm_free(ctx: PaymentContext, booking, payment) -> dict:
    """A zero fee (child, frikort, cap reached): confirmed at once, no Stripe call."""
    now = ctx.now()
    if payment is None:
        payment = ctx.repo.new_payment(booking, now, status=AUTHORIZED, attempt=1,
                                       patient_key=patient_key(booking),
                                       counts_toward_cap=counts_toward_cap(ctx, booking))
    payment.status = AUTHORIZED
    payment.amount = 0
    try:
        ctx.repo.authorize_and_confirm(payment, booking, now)
    except NoLongerFits:
        ctx.repo.release_booking(booking.booking_id, S.EXPIRED, reason="hold_expired", now=now,
                                 expect=(S.HELD,))
        raise BookingNotPayable("the reservation has expired; please book again",
                                code="hold_expired") from None
    except StaleWrite:
        fresh = ctx.repo.get_payment(booking.booking_id)
        if fresh is not None and fresh.status == AUTHORIZED:
            return {"status": "authorized"}
        raise BookingNotPayable("the booking changed meanwhile; please retry") from None
    _publish_confirmed(ctx, booking)
    return {"status": "authorized"}


def _place_hold(ctx: PaymentContext, booking, payment, payment_method: str) -> dict:
    now = ctx.now()
    customer = customer_for(ctx, booking.patient_sub)
    if payment is None:
        payment = ctx.repo.new_payment(booking, now, status=PENDING, attempt=1, customer_id=customer,
                                       payment_method_id=payment_method,
                                       patient_key=patient_key(booking),
                                       counts_toward_cap=counts_toward_cap(ctx, booking))
    elif payment.payment_method_id and not payment.payment_intent_id and not \
            (payment.last_error or "").startswith(("attempt_", "rejected", "card_declined")):
        # The last try's outcome is unknown (timeout, 5xx, the function died): it may have reached
        # Stripe, so replay exactly that request under its key and Stripe answers with the hold it
        # made (if any) instead of making a second one — even if the app sent a new card token.
        payment_method = payment.payment_method_id
    else:
        payment.payment_method_id = payment_method
        # A new attempt on record: from now on an unanswered try is replayed as it was (above).
        payment.last_error = None
    payment.customer_id = customer
    payment.status = PENDING
    set_gsi(payment, PENDING_PK, utc_iso(now))
    try:
        ctx.save(payment)  # written before Stripe is called: reconciliation can find the attempt
    except StaleWrite:
        raise RequestInProgress("the payment is being processed; retry shortly") from None
    key = f"hold:{booking.booking_id}:{int(payment.attempt)}"
    try:
        intent = ctx.gateway.hold(booking_id=booking.booking_id, amount=int(payment.amount),
                                  currency=payment.currency, customer=customer,
                                  payment_method=payment_method, key=key)
    except PaymentDeclined as err:
        raise declined(ctx, booking, payment, err.details) from err
    except PaymentProviderUnavailable:
        ctx.note_provider_down(payment, booking.booking_id)
        raise
    except PaymentRejected as err:
        # A refused create holds nothing; the next try is a new attempt with its own key.
        payment.attempt = int(payment.attempt) + 1
        payment.last_error = "rejected"
        ctx.save(payment)
        raise InvalidRequest("the payment method cannot be used; please try another card",
                             code="invalid_payment_method") from err
    return after_hold(ctx, booking, payment, intent)


def after_hold(ctx: PaymentContext, booking, payment, intent) -> dict:
    """What a hold attempt's PaymentIntent means: authorized (the booking confirmed), 3-D Secure
    pending, or declined."""
    if intent.status == "requires_capture":
        finish_authorization(ctx, booking, payment, intent)
        return {"status": "authorized"}
    if intent.status in ("requires_action", "requires_confirmation", "processing"):
        payment.status = REQUIRES_ACTION
        payment.payment_intent_id = intent.id
        payment.last_error = None
        set_gsi(payment, ACTION_PENDING, utc_iso(ctx.now()))
        try:
            ctx.save(payment)
        except StaleWrite:
            # Someone (the webhook) moved it on meanwhile: answer from the fresh state.
            fresh = ctx.repo.get_payment(booking.booking_id)
            if fresh is not None and fresh.status == AUTHORIZED:
                return {"status": "authorized"}
            raise RequestInProgress("the payment is being processed; retry shortly") from None
        return {"status": "requires_action", "client_secret": intent.client_secret}
    # requires_payment_method right away: the card was refused without an error.
    raise declined(ctx, booking, payment)


def declined(ctx: PaymentContext, booking, payment, details: dict | None = None) -> PaymentDeclined:
    """A declined card holds nothing, and the booking keeps its place (still held, no status
    written) for another card until its reservation runs out (`hold_expires_at`); then the expiry
    job gives the place back as for any unpaid booking. The attempt is closed: the next card is a
    new attempt under its own key. Answers the 402 to raise, saying until when the place is kept."""
    payment.status = FAILED
    payment.payment_intent_id = None  # the declined PaymentIntent holds nothing; nothing to resume
    payment.attempt = int(payment.attempt) + 1
    payment.last_error = "card_declined"
    set_gsi(payment, None)
    try:
        ctx.save(payment)
    except StaleWrite:
        logger.warning("payment changed while recording a decline", extra={"booking_id": booking.booking_id})
    return PaymentDeclined("The card was declined. Please use another card or contact your bank; the booking "
                           f"keeps its place until {booking.hold_expires_at}.",
                           details={**(details or {}), "retry_until": booking.hold_expires_at})


def finish_authorization(ctx: PaymentContext, booking, payment, intent) -> bool:
    """payment → authorized and booking held → confirmed, in one transaction (API, webhook and
    reconciliation all come here). True when this call confirmed the booking."""
    booking_id = booking.booking_id
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            backoff(attempt - 1)  # the ledger is contended (bookings of the same day): spread out
        if payment is None:
            raise NotFound("no such payment")
        if payment.status in (AUTHORIZED, CAPTURED) and payment.payment_intent_id == intent.id:
            return False
        if payment.payment_intent_id not in (None, intent.id):
            return False  # an older attempt's intent: the record follows a newer one
        if payment.status not in OPEN_STATES or booking is None or booking.status != S.HELD:
            # Booking gone (expired, cancelled) or payment closed: never keep money held for it.
            release_intent(ctx, booking_id, intent.id)
            if payment.status in OPEN_STATES:
                payment.status = RELEASED
                payment.payment_intent_id = intent.id
                set_gsi(payment, None)
                try:
                    ctx.save(payment)
                except StaleWrite:
                    pass
            raise BookingNotPayable("the reservation ended before the payment completed; nothing "
                                    "was charged", code="hold_expired")
        until = capture_before(ctx, intent, off_session=False)
        payment.status = AUTHORIZED
        payment.payment_intent_id = intent.id
        payment.payment_method_id = intent.payment_method or payment.payment_method_id
        payment.capture_before = utc_iso(until)
        payment.last_error = None
        set_gsi(payment, HOLD_EXPIRY, utc_iso(until))
        try:
            ctx.repo.authorize_and_confirm(payment, booking, ctx.now())
        except StaleWrite:
            booking = ctx.repo.get_booking(booking_id)
            payment = ctx.repo.get_payment(booking_id)
            continue
        except NoLongerFits:
            # The reservation lapsed and its place was taken: give the money and the booking up.
            ctx.repo.release_booking(booking_id, S.EXPIRED, reason="hold_expired", now=ctx.now(),
                                     expect=(S.HELD,))
            payment = ctx.repo.get_payment(booking_id)
            booking = ctx.repo.get_booking(booking_id)
            continue
        _publish_confirmed(ctx, booking)
        return True
    raise RequestInProgress("the payment is being processed; retry shortly")
