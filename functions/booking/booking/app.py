"""Lambda entry of the booking function: service areas, availability, bookings, shifts.

Thin: parse (pydantic schemas, path/query params) -> booking.service -> JSON. Errors become HTTP in
homevisits.http only. POST /bookings runs through Powertools idempotency keyed on the caller and
the Idempotency-Key header, with the body as the validated payload."""
from __future__ import annotations

import json
from urllib.parse import unquote
from datetime import date
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from booking import service
from booking.idempotency import TransactionalStore
from booking.privacy import router as privacy_router
from booking.schemas import BookingRequest, CancelRequest, RescheduleRequest, ShiftRequest
from homevisits import settings
from homevisits.auth import Caller
from homevisits.aws import boto_config
from homevisits.clock import default_clock
from homevisits.errors import DomainError, IdempotencyKeyRequired, InvalidRequest
from homevisits.http import current_caller, json_response, make_resolver
from homevisits.messaging import publish
from homevisits.observability import get_logger
from homevisits.regions import load_config
from homevisits.settings import table_name

logger = get_logger("booking")
settings.get()  # cold start: a bad environment fails here, never in a request
app = make_resolver("booking")
app.include_router(privacy_router)  # GET /me/access-log, POST /me/erasure

# Powertools' DynamoDB layer; its COMPLETED record is written in the booking's own transaction.
idempotency_store = TransactionalStore(table_name=table_name("IdempotencyTable"), boto_config=boto_config())
idempotency_config = IdempotencyConfig(
    event_key_jmespath="[caller, key]",  # the caller's own key: two patients never collide
    payload_validation_jmespath="body",  # same key + another body -> 422 idempotency_key_reused
    expires_after_seconds=24 * 3600, raise_on_no_idempotency_key=True)


def _ctx() -> service.Context:
    return service.Context(config=load_config(), clock=default_clock(), publish=publish)


def _date(raw: str | None, name: str = "date") -> date:
    try:
        return date.fromisoformat(raw or "")
    except ValueError:
        raise InvalidRequest(f"{name} must be a date YYYY-MM-DD", code="invalid_date") from None


def _body(model, required: bool = True):
    raw = app.current_event.decoded_body  # HTTP APIs base64-encode bodies of non-text content types
    if not raw:
        if required:
            raise InvalidRequest("a JSON body is required")
        return model()
    try:
        return model.model_validate(json.loads(raw))
    except ValidationError as e:
        problems = [{"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", "")} for err in e.errors()]
        raise InvalidRequest("the request does not match the schema", details={"problems": problems}) from None


@app.get("/service-areas/<postal_code>", summary="Is a postal code inside a service area?")
def service_area(postal_code: Annotated[str, Path(max_length=16)]):
    # The path arrives URL-encoded ("111%2022"): decode before reading the code.
    region, code = load_config().region_for_postal_code(unquote(postal_code))
    return {"postal_code": code, "region": region.id, "name": region.name, "status": region.status,
            "bookable": region.bookable, "country": region.country, "currency": region.currency,
            "time_zone": region.time_zone}


@app.get("/availability", summary="The day's 2-hour windows and whether each can still be booked")
def availability(postal_code: Annotated[str, Query(max_length=10)],
                 date: Annotated[str, Query(max_length=10)],
                 visit_type: Annotated[str, Query(max_length=20)] = "doctor",
                 lat: Annotated[float | None, Query(ge=-90, le=90, description="the address, for an exact answer")] = None,
                 lon: Annotated[float | None, Query(ge=-180, le=180)] = None):
    current_caller(app)
    if (lat is None) != (lon is None):
        raise InvalidRequest("send both lat and lon, or neither", code="invalid_location")
    point = (lat, lon) if lat is not None else None
    return service.day_availability(_ctx(), postal_code, _date(date), visit_type, point)


@idempotent_function(data_keyword_argument="request", persistence_store=idempotency_store,
                     config=idempotency_config)
def book(*, request: dict, caller: Caller | None = None, prepared: tuple | None = None) -> dict:
    """The domain call behind POST /bookings, run at most once per (caller, Idempotency-Key).

    `caller` is the verified caller (its sub is `request["caller"]`); `prepared` (draft, reads), from
    `prepare()`, carries the validation and the reads already started; without it (a key used
    before whose request is refused now) the request is validated here."""
    ctx = _ctx()
    if prepared is None or prepared[0] is None:
        caller = caller or Caller(sub=request["caller"], role="patient")
        if caller.sub != request["caller"]:
            raise InvalidRequest("caller mismatch")
        result = service.create_booking(ctx, caller, BookingRequest.model_validate(request["body"]),
                                        service.booking_id_for(request["caller"], request["key"]))
    else:
        result = service.finish_booking(ctx, prepared[0], prepared[1], idempotency=idempotency_store)
    return {"booking": result["booking"], "created": result["created"]}


def prepare(caller: Caller, key: str, body: dict) -> tuple:
    """(draft, reads): validate without I/O and start the ledger / fee-history reads, which then
    overlap Powertools' record write. Raises the refusal (DomainError)."""
    ctx = _ctx()
    draft = service.prepare_booking(ctx, caller, BookingRequest.model_validate(body),
                                    service.booking_id_for(caller.sub, key))
    return draft, service.start_reads(ctx, draft)


def answered_before(request: dict) -> bool:
    """Whether this caller's Idempotency-Key already has a record: one GetItem, never a write.

    A refusal found without I/O is answered before Powertools writes its record, unless the key
    was used before: a retry of a booking that succeeded (say the window has passed since) still
    gets its stored answer, an attempt in progress a 409, another body a 422, from Powertools."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (IdempotencyItemNotFoundError,
                                                                        IdempotencyValidationError)
    fn = book.__wrapped__  # Powertools names the record after the undecorated function
    idempotency_store.configure(idempotency_config, f"{fn.__module__}.{fn.__qualname__}")
    try:
        return idempotency_store.get_record(request) is not None
    except IdempotencyItemNotFoundError:
        return False
    except IdempotencyValidationError:
        return True


@app.post("/bookings", summary="Book a window (header Idempotency-Key)")
def create_booking(body: Annotated[BookingRequest, Body()]):
    caller = current_caller(app).require("patient")
    key = (app.current_event.headers or {}).get("idempotency-key", "").strip()
    if not key or len(key) > 200:
        raise IdempotencyKeyRequired("send an Idempotency-Key header (a fresh UUID per booking attempt)")
    raw = app.current_event.json_body
    request = {"caller": caller.sub, "key": key, "body": raw}
    try:
        prepared = prepare(caller, key, raw)
    except DomainError:
        if not answered_before(request):
            raise  # refused: nothing written
        prepared = None
    # A full window shows only in the ledger read, which overlaps the record write: such a refusal
    # costs Powertools' PutItem + DeleteItem of the record (nothing of the booking), not a round trip
    # more on every booking.
    result = book(request=request, caller=caller, prepared=prepared)
    return json_response(201 if result["created"] else 200, result["booking"])


@app.get("/bookings", summary="The caller's own bookings")
def list_bookings():
    return service.list_bookings(current_caller(app).require("patient"), default_clock().now())


@app.get("/bookings/<booking_id>", summary="One of the caller's bookings")
def get_booking(booking_id: Annotated[str, Path(max_length=64)]):
    return service.get_booking(current_caller(app).require("patient"), booking_id, default_clock().now())


@app.post("/bookings/<booking_id>/cancel", summary="Cancel (free until 24 h before the window)")
def cancel_booking(booking_id: Annotated[str, Path(max_length=64)]):
    caller = current_caller(app).require("patient")
    body = _body(CancelRequest, required=False)
    return service.cancel_booking(_ctx(), caller, booking_id, body.reason)


@app.post("/bookings/<booking_id>/reschedule", summary="Move to another window (until 24 h before)")
def reschedule_booking(booking_id: Annotated[str, Path(max_length=64)],
                       body: Annotated[RescheduleRequest, Body()]):
    caller = current_caller(app).require("patient")
    return service.reschedule_booking(_ctx(), caller, booking_id, body.date, body.window_start)


@app.put("/regions/<region>/clinicians/<clinician_id>/shifts/<day>", summary="Set a clinician's shift")
def put_shift(region: Annotated[str, Path(max_length=40)], clinician_id: Annotated[str, Path(max_length=64)],
              day: Annotated[str, Path(max_length=10)], body: Annotated[ShiftRequest, Body()],
              override: Annotated[bool, Query(description="accept a change that strands booked visits: they are "
                                                          "re-planned where they fit, the rest listed as unkept")] = False):
    caller = current_caller(app)
    return service.put_shift(_ctx(), caller, region, clinician_id, _date(day), body, override=override)


@app.delete("/regions/<region>/clinicians/<clinician_id>/shifts/<day>",
            summary="Take a clinician off the day (sick leave): their visits re-planned or listed as unkept")
def delete_shift(region: Annotated[str, Path(max_length=40)], clinician_id: Annotated[str, Path(max_length=64)],
                 day: Annotated[str, Path(max_length=10)]):
    return service.remove_shift(_ctx(), current_caller(app), region, clinician_id, _date(day))


@app.get("/regions/<region>/shifts/<day>", summary="A region-day's shifts (dispatcher)")
def list_shifts(region: Annotated[str, Path(max_length=40)], day: Annotated[str, Path(max_length=10)]):
    return service.list_shifts(_ctx(), current_caller(app), region, _date(day))


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    idempotency_config.register_lambda_context(context)
    return app.resolve(event, context)
