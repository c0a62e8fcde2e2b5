"""Booking state transitions that move capacity, each one DynamoDB transaction with the ledger.

Every transition here writes the booking item (conditioned on its expected status and version) and
the region-day capacity ledger (conditioned on its version) together: either both change or
neither. A lost race (another writer changed either item) re-reads and re-decides, a bounded number
of times, then answers `busy_try_again`. Repeating a transition that already happened returns the
booking as it is (idempotent), so callers on at-least-once paths (queues, webhooks) may retry.

Used by booking (cancel, expire), payments (held -> confirmed, card declined -> cancelled).
"""
from __future__ import annotations

import random
import time
from datetime import date, datetime
from typing import Callable

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from homevisits import capacity
from homevisits.aws import pynamodb_settings
from homevisits.clock import utc_iso
from homevisits.errors import BusyTryAgain, InvalidTransition, NotFound, WindowFull
from homevisits.persistence.booking import BookingModel, CapacityModel
from homevisits.regions import Region, load_config

MAX_ATTEMPTS = 12


_connection: Connection | None = None


def connection() -> Connection:
    """One PynamoDB connection per process for transactions (a botocore client costs ~0.5 s to
    build, and is thread-safe once built)."""
    global _connection
    if _connection is None:
        c = Connection(region=BookingModel.Meta.region, **pynamodb_settings())
        c.client  # build it now, once, before threads share it
        _connection = c
    return _connection


def backoff(attempt: int) -> None:
    """Full-jitter exponential pause between optimistic-locking attempts (at most 1 s): losers
    spread out instead of colliding again on the same ledger version."""
    time.sleep(random.uniform(0, min(1.0, 0.03 * 2 ** attempt)))


def read_ledger(region_day: str) -> CapacityModel:
    """The region-day's ledger (strongly consistent), or a new empty one (not yet saved)."""
    try:
        return CapacityModel.get(region_day, consistent_read=True)
    except DoesNotExist:
        return CapacityModel(region_day, shifts={}, visits={}, routes=None)


def ledger_visit(b: BookingModel, status: str | None = None, visit_type=None) -> dict:
    """The ledger's routing view of a booking (no personal data beyond the coordinates)."""
    vt = visit_type or load_config().visit_type(b.visit_type)
    return {"visit_type": b.visit_type, "skill": vt.skill, "starts_at": b.starts_at, "ends_at": b.ends_at,
            "lat": float(b.address["lat"]), "lon": float(b.address["lon"]), "service_s": vt.service_minutes * 60,
            "video_call_s": vt.video_call_minutes * 60, "status": status or b.status,
            "hold_expires_at": b.hold_expires_at if (status or b.status) == "held" else None}


def counted_visits(ledger: CapacityModel, now: datetime) -> Callable[[str, dict], bool]:
    """Which ledger visits hold capacity now. A hold the ledger shows as expired is checked against
    the booking item first (one BatchGetItem, only when such holds exist): if the booking moved on
    (e.g. confirmed) without the ledger hearing of it, it still counts — never give its place away."""
    now_iso = utc_iso(now)
    doubtful = [bid for bid, raw in (ledger.visits or {}).items()
                if raw.get("status") == "held" and not capacity.holds_capacity(raw, now_iso)]
    moved_on: set[str] = set()
    if doubtful:
        for b in BookingModel.batch_get(doubtful, consistent_read=True,
                                        attributes_to_get=["booking_id", "status"]):
            if b.status in capacity.ACCEPTED and b.status != "held":
                moved_on.add(b.booking_id)
    return lambda bid, raw: bid in moved_on or capacity.holds_capacity(raw, now_iso)


def ledger_day(ledger: CapacityModel, region: Region, day: date, now: datetime,
               counted: Callable[[str, dict], bool] | None = None) -> capacity.Day:
    return capacity.day_from_ledger(ledger.shifts or {}, ledger.visits or {}, day=day, tz=region.tz,
                                    remote_doctors=region.remote_doctors, travel=region.travel or None,
                                    counted=counted or counted_visits(ledger, now))


def _removed(ledger: CapacityModel, booking_id: str) -> bool:
    """Drop a visit from the ledger and its routes; False if it was not there."""
    visits = dict(ledger.visits or {})
    if booking_id not in visits:
        return False
    visits.pop(booking_id)
    ledger.visits = visits
    if ledger.routes:
        ledger.routes = {c: [v for v in seq if v != booking_id] for c, seq in ledger.routes.items()}
    return True


def _get(booking_id: str) -> BookingModel:
    try:
        return BookingModel.get(booking_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("no such booking") from None


def _set_actions(b: BookingModel, values: dict) -> list:
    actions = []
    for name, value in values.items():
        attr = getattr(BookingModel, name)
        actions.append(attr.remove() if value is None else attr.set(value))
    return actions


def commit_booking_update(b: BookingModel, values: dict, expect_status: str,
                          ledgers: list[CapacityModel] = ()) -> bool:
    """One transaction: the booking's update (conditioned on `expect_status`) and the ledgers
    (each version-checked). False when another writer won (the caller re-reads and retries); `b`
    is updated on success."""
    try:
        with TransactWrite(connection=connection()) as tw:
            tw.update(b, actions=_set_actions(b, values), condition=BookingModel.status == expect_status)
            for ledger in ledgers:
                tw.save(ledger)
    except TransactWriteError:
        return False
    for k, v in values.items():
        setattr(b, k, v)
    return True


def release_booking(booking_id: str, to_status: str, *, reason: str, now: datetime,
                    expect: tuple[str, ...] = ("held",), extra: dict | None = None) -> BookingModel:
    """Move a booking from one of `expect` to `to_status` and give its capacity back, atomically.

    `extra` sets further booking attributes in the same write (e.g. {"cancellation": {...}}).
    Idempotent: a booking already in `to_status` is returned unchanged. Raises NotFound,
    InvalidTransition (any other status), BusyTryAgain (lost the race MAX_ATTEMPTS times)."""
    for attempt in range(MAX_ATTEMPTS):
        b = _get(booking_id)
        if b.status == to_status:
            return b
        if b.status not in expect:
            raise InvalidTransition(f"a {b.status} booking cannot become {to_status}",
                                    details={"status": b.status})
        ledger = read_ledger(b.region_day)
        values = {"status": to_status, "status_reason": reason, "updated_at": utc_iso(now), **(extra or {})}
        if commit_booking_update(b, values, b.status, [ledger] if _removed(ledger, booking_id) else []):
            return b
        backoff(attempt)
    raise BusyTryAgain("the booking is being changed by another request; try again")


def confirm_booking(booking_id: str, *, now: datetime, extra: dict | None = None) -> BookingModel:
    """held -> confirmed (the fee is held on the card, or there is none), with the ledger told.

    If the hold already expired, the visit's place may have been given away: it is re-checked
    against the day and, when it no longer fits, WindowFull is raised (release the card hold and
    tell the patient). Idempotent for an already confirmed booking."""
    config = load_config()
    for attempt in range(MAX_ATTEMPTS):
        b = _get(booking_id)
        if b.status == "confirmed":
            return b
        if b.status != "held":
            raise InvalidTransition(f"a {b.status} booking cannot be confirmed", details={"status": b.status})
        region = config.region(b.region)
        ledger = read_ledger(b.region_day)
        raw = (ledger.visits or {}).get(booking_id)
        still_held = raw is not None and capacity.holds_capacity(raw, utc_iso(now))
        visits = dict(ledger.visits or {})
        visits[booking_id] = ledger_visit(b, "confirmed")
        if not still_held:
            counted = counted_visits(ledger, now)
            day = ledger_day(ledger, region, date.fromisoformat(b.date), now,
                             counted=lambda bid, r: bid != booking_id and counted(bid, r))
            plan = capacity.check(day, capacity.visit_from_ledger(booking_id, visits[booking_id]),
                                  ledger.routes)
            if plan is None:
                raise WindowFull("the hold expired and the window is no longer free")
            ledger.routes = plan.sequences()
        ledger.visits = visits
        values = {"status": "confirmed", "hold_expires_at": None, "updated_at": utc_iso(now), **(extra or {})}
        if commit_booking_update(b, values, "held", [ledger]):
            return b
        backoff(attempt)
    raise BusyTryAgain("the booking is being changed by another request; try again")
