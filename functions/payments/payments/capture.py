"""Take the money: capture the visit fee exactly once when the visit is completed (the booking says
so, not the event that asks), within what the high-cost protection leaves; when the hold lapsed,
charge the saved card off session, else record an invoice. The capture and off-session helpers
here serve the cancellation fees too (`payments.cancellation`)."""
from __future__ import annotations

from homevisits.clock import utc_iso
from homevisits.errors import PaymentDeclined, PaymentRejected, RequestInProgress
from homevisits.persistence.payments import AUTHORIZED, CAPTURE_DUE, CAPTURED, FAILED
from payments import card_on_file, high_cost
from payments.context import PaymentContext, not_owed, owed, release_intent, set_gsi
from payments.repository import StaleWrite


def capture_fee(ctx: PaymentContext, booking_id: str) -> str:
    """Capture the held fee exactly once after the visit is completed (the booking says so, not
    the event that asks); answers what happened."""
    booking = ctx.repo.get_booking(booking_id)
    if not owed(booking, "visit"):
        return not_owed(booking_id, "visit", booking)
    payment = ctx.repo.get_payment(booking_id)
    if payment is None:
        if int(booking.fee_amount or 0) == 0:
            return "nothing_to_capture"
        ctx.finding(booking_id, "completed_without_payment")
        return "no_payment"
    if card_on_file.is_card_on_file(payment):
        return card_on_file.close(ctx, payment, "nothing_to_capture")  # a free visit: the card was for fees
    if payment.status == CAPTURED:
        return "already_captured"
    if payment.status != AUTHORIZED:
        ctx.finding(booking_id, f"completed_while_{payment.status}",
                    {"payment_intent": payment.payment_intent_id})
        return "not_authorized"
    now = ctx.now()
    if payment.capture_amount is None:  # decided once: a retry takes what the first try decided
        payment.capture_amount = high_cost.visit_fee_due(ctx.config, payment, now, ctx.repo.fees_counted_since)
    amount = int(payment.capture_amount)
    if amount == 0 or not payment.payment_intent_id:
        if payment.payment_intent_id:  # the high-cost protection leaves nothing to take: give the hold back
            intent = release_intent(ctx, booking_id, payment.payment_intent_id)
            if intent.status == "succeeded":
                ctx.finding(booking_id, "captured_before_release", {"payment_intent": intent.id})
        payment.status = CAPTURED
        payment.amount_captured = 0
        payment.captured_at = utc_iso(now)
        set_gsi(payment, None)
        ctx.repo.capture_with_ledger(payment, None, now)
        return "captured"
    mark_capture_due(ctx, payment, "visit")
    intent = capture_intent(ctx, payment, amount)
    if intent.status != "succeeded":
        return _visit_fee_without_hold(ctx, payment)
    return _finish_visit_capture(ctx, payment, intent)


def mark_capture_due(ctx: PaymentContext, payment, reason: str) -> None:
    """Record that a capture is owed before calling Stripe, so reconciliation can finish it."""
    if payment.gsi1pk == CAPTURE_DUE and payment.capture_reason == reason:
        return
    payment.capture_reason = reason
    set_gsi(payment, CAPTURE_DUE, utc_iso(ctx.now()))
    ctx.save(payment)


def capture_intent(ctx: PaymentContext, payment, amount: int):
    """Capture ≤ the held amount under `capture:{booking}`; the PaymentIntent as it ends up."""
    amount = min(int(amount), int(payment.amount))
    try:
        return ctx.gateway.capture(payment.payment_intent_id, amount, key=f"capture:{payment.booking_id}")
    except PaymentRejected:
        # Already captured (a repeat), or the hold lapsed: Stripe's state is the truth.
        intent = ctx.gateway.retrieve(payment.payment_intent_id)
        if intent.status in ("succeeded", "canceled", "requires_payment_method"):
            return intent
        raise


def _finish_visit_capture(ctx: PaymentContext, payment, intent) -> str:
    now = ctx.now()
    for _ in range(4):
        if payment.status == CAPTURED:
            return "already_captured"
        captured_at = utc_iso(now)
        payment.status = CAPTURED
        payment.amount_captured = int(intent.amount_received or 0)
        payment.captured_at = captured_at
        set_gsi(payment, None)
        ledger = None
        if payment.patient_key and payment.amount_captured > 0:
            ledger = ctx.repo.ledger_entry(payment.patient_key, payment.booking_id, captured_at,
                                           payment.amount_captured, payment.currency,
                                           bool(payment.counts_toward_cap))
        try:
            ctx.repo.capture_with_ledger(payment, ledger, now)
            ctx.repo.set_booking_payment_status(payment.booking_id, CAPTURED)
            return "captured"
        except StaleWrite:
            payment = ctx.repo.get_payment(payment.booking_id)
    raise RequestInProgress("the capture is being recorded elsewhere")


def _visit_fee_without_hold(ctx: PaymentContext, payment) -> str:
    """The hold lapsed before the capture: charge the saved card, else record an invoice."""
    amount = int(payment.amount if payment.capture_amount is None else payment.capture_amount)
    intent = charge_saved_card(ctx, payment, amount, key=f"charge:{payment.booking_id}", kind="visit_fee")
    if intent is not None:
        payment.payment_intent_id = intent.id
        return _finish_visit_capture(ctx, payment, intent)
    payment.status = FAILED
    payment.invoice_due = int(payment.invoice_due or 0) + amount
    payment.last_error = "hold_lapsed"
    set_gsi(payment, None)
    ctx.save(payment)
    ctx.finding(payment.booking_id, "invoice_due", {"amount": amount})
    return "invoice_due"


def charge_saved_card(ctx: PaymentContext, payment, amount: int, key: str, kind: str):
    """An off-session charge on the saved card; None when it needs the patient (→ invoice)."""
    if not (payment.customer_id and payment.payment_method_id):
        return None
    try:
        intent = ctx.gateway.charge_off_session(
            booking_id=payment.booking_id, customer=payment.customer_id,
            payment_method=payment.payment_method_id, amount=int(amount), currency=payment.currency,
            key=key, kind=kind)
    except (PaymentDeclined, PaymentRejected):
        return None
    if intent.status == "succeeded":
        return intent
    if intent.status in ("requires_action", "requires_confirmation", "requires_capture"):
        release_intent(ctx, payment.booking_id, intent.id)  # off session nobody can authenticate
    return None
