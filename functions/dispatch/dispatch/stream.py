"""Booking and capacity changes (DynamoDB streams) and a schedule → re-plan requests (SQS FIFO).

- BookingsTable records: a change that matters to a plan (a planned visit appears, goes, moves, or
  changes status, window, place, type or priority) asks for a re-plan of its region-day — both
  region-days when a booking moved. Dispatch's own ETA writes, and bookings that never were
  planned (held → expired), ask for nothing, so storing a plan never triggers another one.
- CapacityTable records (keys only): a ledger change (shifts, bookings) re-plans its region-day.
- The EventBridge schedule (an event without Records): today's and tomorrow's region-days of every
  open region, so plans follow the clock even when nothing changes.

The de-duplication id is region-day + the stream record's sequence number (a retried batch sends
the same ids, which SQS FIFO drops); within one batch each region-day is requested once.
"""
from __future__ import annotations

from datetime import timedelta

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from homevisits import messaging, settings
from homevisits.booking_state import HAPPENED, PLANNED
from homevisits.clock import default_clock
from homevisits.observability import get_logger
from homevisits.regions import load_config, region_day_key
from homevisits.settings import table_name

logger = get_logger("replan-forwarder")
settings.get()  # cold start: a bad environment fails here, never in a request

# Fields of a booking the optimizer looks at; anything else (eta, clinician_id written by dispatch,
# payment state, timestamps) changes no plan.
RELEVANT = ("status", "region_day", "starts_at", "ends_at", "visit_type", "address", "priority", "frikort")

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def _relevant(image: dict | None) -> dict:
    image = image or {}
    out = {k: image.get(k) for k in RELEVANT}
    addr = out.get("address")
    if isinstance(addr, str):  # JSONAttribute: compare what a plan shows, not the serialisation
        import json
        try:
            a = json.loads(addr)
            out["address"] = tuple(a.get(k) for k in ("lat", "lon", "street", "city", "postal_code"))
        except ValueError:
            pass
    return out


def booking_region_days(old: dict | None, new: dict | None) -> list[str]:
    """Region-days whose plan a booking change affects (empty if none)."""
    old_planned = bool(old) and old.get("status") in PLANNED
    new_planned = bool(new) and new.get("status") in PLANNED
    if not (old_planned or new_planned):
        return []
    if old and new and _relevant(old) == _relevant(new):
        return []
    # A visit that happened is a fact of its day: a later change of it (its patient's data erased,
    # its payment settled) changes no plan.
    if old and new and old.get("status") in HAPPENED and old.get("status") == new.get("status"):
        return []
    days = []
    if old_planned and old.get("region_day"):
        days.append(old["region_day"])
    if new_planned and new.get("region_day") and new["region_day"] not in days:
        days.append(new["region_day"])
    return days


def _table_of(record: DynamoDBRecord) -> str:
    arn = record.event_source_arn or ""
    keys = (record.dynamodb.keys or {}) if record.dynamodb else {}
    if f"table/{table_name('CapacityTable')}/" in arn:
        return "capacity"
    if f"table/{table_name('BookingsTable')}/" in arn:
        return "bookings"
    return "bookings" if "booking_id" in keys else "capacity"


def region_days_of(record: DynamoDBRecord) -> list[str]:
    ddb = record.dynamodb
    if _table_of(record) == "capacity":
        rd = (ddb.keys or {}).get("region_day")
        return [rd] if rd else []
    return booking_region_days(ddb.old_image, ddb.new_image)


def scheduled_region_days(now) -> list[str]:
    """Today's and tomorrow's region-days (local dates) of every open region."""
    out = []
    for region in load_config().regions.values():
        if not region.bookable:
            continue
        today = region.local_date(now)
        out += [region_day_key(region.id, today), region_day_key(region.id, today + timedelta(days=1))]
    return out


def lambda_handler(event: dict, context) -> dict:
    if not event.get("Records"):
        now = default_clock().now()
        slot = now.strftime("%Y%m%dT%H%M")
        days = scheduled_region_days(now)
        for rd in days:
            messaging.request_replan(rd, dedup_id=f"{rd}:schedule:{slot}")
        logger.info("scheduled re-plans requested", extra={"count": len(days)})
        return {"requested": days}

    sent: set[str] = set()

    def handle(record: DynamoDBRecord):
        for rd in region_days_of(record):
            if rd in sent:
                continue
            messaging.request_replan(rd, dedup_id=f"{rd}:{record.dynamodb.sequence_number}")
            sent.add(rd)

    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
