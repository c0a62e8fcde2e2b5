"""Where Stripe and DynamoDB disagree, or an event never came: follow what Stripe says of a
PaymentIntent (the webhook), finish a capture that was due, renew a hold that would lapse before the
visit, settle a hold whose booking ended without its event, finish or release 3-D Secure and
unanswered hold attempts — and the scheduled reconciliation run that does all of it (gsi1 Queries
only, no Scan)."""
from __future__ import annotations

from datetime import datetime, timedelta

from homevisits.booking_state import IN_PROGRESS, BookingStatus as S
from homevisits.clock import parse_utc, utc_iso
from homevisits.errors import (BookingNotPayable, PaymentDeclined, PaymentProviderUnavailable,
                               PaymentRejected, RequestInProgress)
from homevisits.persistence.payments import (ACTION_PENDING, AUTHORIZED, CAPTURE_DUE, FAILED, HOLD_EXPIRY,
                                             OPEN_STATES, PENDING, PENDING_PK, RELEASED)
from payments.cancellation import charge_cancellation_fee, release_hold
from payments.capture import capture_fee
from payments.context import PaymentContext, capture_before, hold_expired, logger, release_intent, set_gsi
from payments.hold import after_hold, declined, finish_authorization
from payments.repository import StaleWrite

# A hold must outlive the visit by this much (the capture follows the completion event).
CAPTURE_MARGIN = timedelta(hours=12)


def sync_from_stripe(ctx: PaymentContext, booking_id: str, intent) -> str:
    """Move the state machine to what Stripe says of `intent`, through the same conditional
    transitions as the API path. Stale or unknown intents change nothing."""
    payment = ctx.repo.get_payment(booking_id)
    if payment is None:
        return "unknown_booking"
    if intent.id != payment.payment_intent_id:
        if intent.status == "requires_capture" and payment.status in (RELEASED, FAILED) and \
                intent.metadata.get("booking_id") == booking_id:
            release_intent(ctx, booking_id, intent.id)  # a stray hold on a dead booking
            return "stray_released"
        return "stale"
    status = intent.status
    if status == "requires_capture" and payment.status in OPEN_STATES:
        try:
            finish_authorization(ctx, ctx.repo.get_booking(booking_id), payment, intent)
        except BookingNotPayable:
            return "released"
        return "authorized"
    if status == "succeeded" and payment.status == AUTHORIZED:
        if payment.gsi1pk == CAPTURE_DUE:
            return resume_capture(ctx, payment)
        ctx.finding(booking_id, "captured_outside_the_service", {"payment_intent": intent.id})
        return "reported"
    if status == "canceled" and payment.status == AUTHORIZED:
        # The hold went away (lapsed, or cancelled in the dashboard): renew it at the next run.
        payment.capture_before = utc_iso(ctx.now())
        set_gsi(payment, HOLD_EXPIRY, payment.capture_before)
        ctx.save(payment)
        ctx.finding(booking_id, "hold_canceled_at_stripe", {"payment_intent": intent.id})
        return "renew"
    if status == "requires_payment_method" and payment.status in OPEN_STATES:
        payment.last_error = intent.last_error_code or "authentication_failed"
        ctx.save(payment)
        return "attempt_failed"
    return "unchanged"


def resume_capture(ctx: PaymentContext, payment) -> str:
    """Finish a capture that was recorded as due (the visit fee, or a late/no-show fee)."""
    reason = payment.capture_reason
    if reason == "visit":
        return capture_fee(ctx, payment.booking_id)
    if reason in ("late", "no_show"):
        return charge_cancellation_fee(ctx, payment.booking_id, reason)
    return "unchanged"


def renew_hold(ctx: PaymentContext, payment) -> str:
    """Look after one live hold: settle it when its booking ended without the event reaching us,
    and replace it when it would lapse before the visit is captured — a new off-session hold under
    `hold:{booking}:renew:{n}` first, then the old one is cancelled (never a moment unheld)."""
    booking = ctx.repo.get_booking(payment.booking_id)
    if booking is None or booking.status not in IN_PROGRESS:
        return settle_missed_event(ctx, booking, payment)
    if payment.status != AUTHORIZED or not payment.payment_intent_id:
        return "not_held"
    now = ctx.now()
    held_until = parse_utc(payment.capture_before) if payment.capture_before else now
    renew_before = now + timedelta(hours=int(ctx.config.payments.get("renew_hold_before_hours", 36)))
    if held_until > renew_before:
        return "held"
    if held_until >= parse_utc(booking.ends_at) + CAPTURE_MARGIN:
        return "not_needed"  # outlives the visit (stays listed: the sweep still watches it)
    n = int(payment.renewals or 0) + 1
    old = payment.payment_intent_id
    try:
        new = ctx.gateway.hold(booking_id=payment.booking_id, amount=int(payment.amount),
                               currency=payment.currency, customer=payment.customer_id,
                               payment_method=payment.payment_method_id,
                               key=f"hold:{payment.booking_id}:renew:{n}", off_session=True,
                               metadata={"renewal": str(n)})
    except (PaymentDeclined, PaymentRejected):
        new = None
    if new is not None and new.status != "requires_capture":
        release_intent(ctx, payment.booking_id, new.id)
        new = None
    if new is None:
        payment.last_error = "renewal_failed"
        if held_until <= now:  # lapsed: the capture will charge the saved card or invoice
            set_gsi(payment, None)
        ctx.save(payment)
        ctx.finding(payment.booking_id, "hold_renewal_failed", {"renewal": n})
        return "renewal_failed"
    new_before = capture_before(ctx, new, off_session=True)
    payment.payment_intent_id = new.id
    payment.renewals = n
    payment.capture_before = utc_iso(new_before)
    payment.last_error = None
    set_gsi(payment, HOLD_EXPIRY, payment.capture_before)
    try:
        ctx.save(payment)
    except StaleWrite:
        release_intent(ctx, payment.booking_id, new.id)  # the record moved on: drop the new hold
        return "raced"
    try:
        release_intent(ctx, payment.booking_id, old)
    except (PaymentProviderUnavailable, PaymentRejected):
        ctx.finding(payment.booking_id, "old_hold_not_released", {"payment_intent": old})
    return "renewed"


def settle_missed_event(ctx: PaymentContext, booking, payment) -> str:
    """A hold on a booking that is no longer active: the event that should have moved the money
    was lost or is late. Do what it would have done (everything is idempotent)."""
    if booking is None:
        ctx.finding(payment.booking_id, "hold_without_booking", {"payment_intent": payment.payment_intent_id})
        return "reported"
    decision = (booking.cancellation or {}).get("fee_decision")
    if booking.status == S.COMPLETED:
        outcome = capture_fee(ctx, booking.booking_id)
    elif booking.status == S.NO_SHOW:
        outcome = charge_cancellation_fee(ctx, booking.booking_id, "no_show")
    elif booking.status == S.CANCELLED and decision == "late":
        outcome = charge_cancellation_fee(ctx, booking.booking_id, "late")
    elif booking.status in (S.CANCELLED, S.EXPIRED, S.MISSED):
        outcome = release_hold(ctx, booking.booking_id, booking.status)
    else:
        return "not_active"
    logger.info("settled a hold whose event was missed",
                extra={"booking_id": booking.booking_id, "booking_status": booking.status, "outcome": outcome})
    return f"settled_{outcome}"


def resolve_action_pending(ctx: PaymentContext, payment) -> str:
    """A hold waiting for 3-D Secure: confirm it once done, or release and expire the booking
    when its reservation ran out."""
    booking = ctx.repo.get_booking(payment.booking_id)
    intent = ctx.gateway.retrieve(payment.payment_intent_id)
    if intent.status == "requires_capture":
        try:
            finish_authorization(ctx, booking, payment, intent)
            return "authorized"
        except BookingNotPayable:
            return "released"
    if booking is None or booking.status != S.HELD or hold_expired(ctx, booking):
        if intent.status in ("requires_action", "requires_confirmation", "requires_payment_method"):
            release_intent(ctx, payment.booking_id, intent.id)
        payment.status = RELEASED
        set_gsi(payment, None)
        ctx.save(payment)
        if booking is not None and booking.status == S.HELD:
            ctx.repo.release_booking(payment.booking_id, S.EXPIRED, reason="payment_not_completed",
                                     now=ctx.now(), expect=(S.HELD,))
        return "expired"
    return "waiting"


def resolve_pending(ctx: PaymentContext, payment) -> str:
    """A hold attempt left unfinished (its answer lost, or the request gave up on a contended
    ledger) for over two minutes: the same request is replayed under its key (Stripe answers
    with the hold it made, or makes one). A hold on a still-held booking is finished (the
    booking confirmed) without waiting for the patient to retry; otherwise whatever comes back
    is released."""
    booking = ctx.repo.get_booking(payment.booking_id)
    if not (payment.customer_id and payment.payment_method_id):
        set_gsi(payment, None)
        ctx.save(payment)
        return "nothing_sent"
    try:
        intent = ctx.gateway.hold(booking_id=payment.booking_id, amount=int(payment.amount),
                                  currency=payment.currency, customer=payment.customer_id,
                                  payment_method=payment.payment_method_id,
                                  key=f"hold:{payment.booking_id}:{int(payment.attempt)}")
    except PaymentDeclined:
        if booking is not None and booking.status == S.HELD and payment.status == PENDING:
            declined(ctx, booking, payment)  # as on the API path: the patient may try another card
            return "declined"
        intent = None
    except PaymentRejected:
        intent = None
    except PaymentProviderUnavailable:
        ctx.finding(payment.booking_id, "hold_attempt_unresolved", {"attempt": int(payment.attempt)})
        return "reported"
    if intent is not None and intent.status in ("requires_capture", "requires_action", "requires_confirmation"):
        if booking is not None and booking.status == S.HELD and payment.status == PENDING:
            return after_hold(ctx, booking, payment, intent)["status"]
        release_intent(ctx, payment.booking_id, intent.id)
    if payment.status == PENDING:
        payment.status = RELEASED
    set_gsi(payment, None)
    ctx.save(payment)
    return "released"


def reconcile(ctx: PaymentContext, limit: int = 1000) -> dict:
    """One reconciliation run (gsi1 Queries only). Answers counts per outcome."""
    now = ctx.now()
    outcomes: dict[str, int] = {}

    def run(partition: str, upto: datetime, action) -> None:
        for payment in ctx.repo.due(partition, utc_iso(upto) + "~", limit):
            try:
                outcome = action(ctx, payment)
            except (PaymentProviderUnavailable, RequestInProgress, StaleWrite):
                outcome = "retry_later"
            except Exception:
                logger.exception("reconciliation step failed", extra={"booking_id": payment.booking_id})
                outcome = "error"
            outcomes[f"{partition}:{outcome}"] = outcomes.get(f"{partition}:{outcome}", 0) + 1

    # Every live hold is looked at (not only those about to lapse): a hold whose booking ended
    # without its event reaching us is settled here. One GetItem per live hold per run.
    run(HOLD_EXPIRY, now + timedelta(days=3650), renew_hold)
    run(ACTION_PENDING, now, resolve_action_pending)
    run(CAPTURE_DUE, now - timedelta(minutes=5), resume_capture)
    run(PENDING_PK, now - timedelta(minutes=2), resolve_pending)
    return outcomes
