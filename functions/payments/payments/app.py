"""Lambda entry of the payments HTTP routes: hold the fee, waive a fee, Stripe's webhook."""
from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from homevisits import settings
from homevisits.http import current_caller, json_response, make_resolver
from homevisits.observability import get_logger
from homevisits.schema import Schema
from payments import deps
from payments.cancellation import waive_fee as waive
from payments.hold import hold_fee as hold
from payments.webhook import handle_webhook

logger = get_logger("payments")
settings.get()  # cold start: a bad environment fails here, never in a request
deps.warm()  # Stripe and the AWS clients built at init, outside the first payment's 15 s
app = make_resolver("payments")

BookingId = Annotated[str, Path(min_length=1, max_length=64)]


class HoldRequest(Schema):
    payment_method: str = Field(min_length=4, max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$",
                                description="A Stripe PaymentMethod id created by the app (pm_…)")


class WaiverRequest(Schema):
    reason: str = Field(min_length=1, max_length=64,
                        description="sudden_illness | child_illness | covid_symptoms | accident | "
                                    "bereavement | service_fault")


@app.post("/bookings/<booking_id>/payment", summary="Hold the fee on the patient's card")
def hold_fee(booking_id: BookingId, body: HoldRequest):
    caller = current_caller(app).require("patient")
    return hold(deps.context(), caller.sub, booking_id, body.payment_method)


@app.post("/bookings/<booking_id>/fee-waiver", summary="Waive a late-cancellation or no-show fee")
def waive_fee(booking_id: BookingId, body: WaiverRequest):
    caller = current_caller(app).require("dispatcher")
    return waive(deps.context(), caller, booking_id, body.reason)


@app.post("/payments/webhook", summary="Stripe's signed events", include_in_schema=True)
def webhook():
    event = app.current_event
    status, body = handle_webhook(event.decoded_body if event.body is not None else None,
                                  event.headers.get("stripe-signature"))
    return json_response(status, body)


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
