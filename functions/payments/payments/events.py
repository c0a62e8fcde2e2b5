"""SQS consumer of the bus events that move money: VisitEvent (completed → capture, no_show → fee),
BookingCancelled (free → release, late → fee), BookingExpired and BookingMissed (release).

Delivered at least once and in any order: each event id is handled once (PaymentsTable
`BUS_EVENT#{id}`), and every handler compares states (money follows the booking's own state and
the tariff, never an event's figures: an event for a booking in another state changes nothing) and uses keys derived from the booking, so
the same visit completed three times (three event ids) still captures once. A failing record is
reported back (partial batch failure) and retried; the rest of the batch is not."""
from __future__ import annotations

import json

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from homevisits import settings
from homevisits.observability import get_logger
from payments import deps
from payments.cancellation import charge_cancellation_fee, release_hold
from payments.capture import capture_fee
from payments.context import PaymentContext

logger = get_logger("payment-events")
settings.get()  # cold start: a bad environment fails here, never in a request
processor = BatchProcessor(event_type=EventType.SQS)


def handle_event(event: dict, ctx: PaymentContext) -> str:
    """Apply one EventBridge event (as delivered in an SQS body); answers the outcome."""
    detail_type = event.get("detail-type")
    detail = event.get("detail") or {}
    booking_id = detail.get("booking_id")
    if not booking_id:
        return "ignored"
    if detail_type == "VisitEvent":
        kind = detail.get("type")
        if kind == "completed":
            return capture_fee(ctx, booking_id)
        if kind == "no_show":
            return charge_cancellation_fee(ctx, booking_id, "no_show")
        return "ignored"
    if detail_type == "BookingCancelled":
        # The event says which booking to look at; the booking's own state says what is owed.
        if detail.get("fee_decision") == "late":
            return charge_cancellation_fee(ctx, booking_id, "late")
        return release_hold(ctx, booking_id, "cancelled")
    if detail_type == "BookingExpired":
        return release_hold(ctx, booking_id, "expired")
    if detail_type == "BookingMissed":  # nobody came: the service's fault, the hold goes back
        return release_hold(ctx, booking_id, "missed")
    return "ignored"


def record_handler(record: SQSRecord) -> str:
    event = json.loads(record.body)
    ctx = deps.context()
    key = f"BUS_EVENT#{event.get('id')}"
    if event.get("id") and ctx.repo.already_processed(key):
        return "duplicate"
    outcome = handle_event(event, ctx)
    if event.get("id"):
        ctx.repo.mark_processed(key, str(event.get("detail-type")), ctx.now())
    logger.info("payment event handled", extra={"detail_type": event.get("detail-type"),
                                                "booking_id": (event.get("detail") or {}).get("booking_id"),
                                                "outcome": outcome})
    return outcome


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
