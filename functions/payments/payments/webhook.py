"""Stripe webhooks: verify the signature on the exact raw body, handle each event once (by id), and
move the state machine only from what Stripe says *now* (the PaymentIntent is re-read), so events
that repeat, arrive out of order or race the API path change nothing twice."""
from __future__ import annotations

from homevisits.errors import DomainError, InvalidEvent, InvalidSignature, PaymentRejected
from homevisits.observability import get_logger
from payments import deps
from payments.context import PaymentContext
from payments.repair import sync_from_stripe

logger = get_logger("payments-webhook")

HANDLED = frozenset({"payment_intent.amount_capturable_updated", "payment_intent.succeeded",
                     "payment_intent.payment_failed", "payment_intent.canceled", "charge.refunded"})


def handle_webhook(payload: str | None, signature: str | None,
                   ctx: PaymentContext | None = None) -> tuple[int, dict]:
    """(HTTP status, body) for one webhook delivery. 400 `invalid_signature` when not Stripe's,
    400 `invalid_event` when signed but not an event object; 200 for everything verified, including
    unknown, stale and repeated events."""
    ctx = ctx or deps.context()
    try:
        event = ctx.gateway.verify_webhook(payload, signature)
    except (InvalidSignature, InvalidEvent) as err:
        return err.status, err.to_body()
    key = f"STRIPE_EVENT#{event.id}"
    if not event.id or ctx.repo.already_processed(key):
        return 200, {"received": True, "duplicate": True}
    outcome = "ignored"
    if event.type in HANDLED and event.payment_intent_id:
        try:
            intent = ctx.gateway.retrieve(event.payment_intent_id)  # the truth, not the event's copy
        except PaymentRejected:  # not a PaymentIntent we can read: nothing of ours
            intent = None
        booking_id = intent.metadata.get("booking_id") if intent is not None else None
        if booking_id:
            try:
                outcome = sync_from_stripe(ctx, booking_id, intent)
            except DomainError as err:  # e.g. the booking ended: nothing more to do for this event
                outcome = err.code
    ctx.repo.mark_processed(key, event.type, ctx.now())
    logger.info("stripe event handled", extra={"event_type": event.type, "outcome": outcome})
    return 200, {"received": True, "outcome": outcome}
