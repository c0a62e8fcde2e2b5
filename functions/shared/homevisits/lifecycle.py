"""The one owner of a booking's life: every write of a booking's status (and so of its version)
goes through this module, which checks the move against `homevisits.booking_state` first.

Transitions that move capacity write the booking item (conditioned on its expected status and
version) and the region-day capacity ledger (conditioned on its version) in one DynamoDB
transaction: either both change or neither. A lost race (another writer changed either item)
re-reads and re-decides, a bounded number of times, then answers `busy_try_again`. Repeating a
transition that already happened returns the booking as it is (idempotent), so callers on
at-least-once paths (queues, webhooks) may retry.

Callers: booking (create, cancel, reschedule, expire, erase), payments (held -> confirmed with the
payment record, card declined -> cancelled, the payment status shown on the booking), dispatch
(visit events, the plan's clinician and ETA). Storage is `homevisits.persistence.bookings`.
"""
from __future__ import annotations

import random
import time
from datetime import date, datetime
from typing import Callable

from homevisits import capacity
from homevisits.booking_state import OPEN, BookingStatus, require_move
from homevisits.clock import utc_iso
from homevisits.errors import BusyTryAgain, InvalidTransition, NotFound, WindowFull
from homevisits.ledger import DayLedger
from homevisits.persistence import bookings as store
from homevisits.persistence.booking import BookingModel
from homevisits.regions import Region, load_config

S = BookingStatus
MAX_ATTEMPTS = 12
read_ledger = store.read_ledger


def backoff(attempt: int) -> None:
    """Full-jitter exponential pause between optimistic-locking attempts (at most 1 s): losers
    spread out instead of colliding again on the same ledger version."""
    time.sleep(random.uniform(0, min(1.0, 0.03 * 2 ** attempt)))


def ledger_visit(b: BookingModel, status: str | None = None, visit_type=None) -> dict:
    """The ledger's routing view of a booking (no personal data beyond the coordinates)."""
    vt = visit_type or load_config().visit_type(b.visit_type)
    return {"visit_type": b.visit_type, "skill": vt.skill, "starts_at": b.starts_at, "ends_at": b.ends_at,
            "lat": float(b.address["lat"]), "lon": float(b.address["lon"]), "service_s": vt.service_minutes * 60,
            "video_call_s": vt.video_call_minutes * 60, "status": status or b.status,
            "hold_expires_at": b.hold_expires_at if (status or b.status) == S.HELD else None,
            "priority": b.priority or "normal"}


def counted_visits(ledger: DayLedger, now: datetime) -> Callable[[str, dict], bool]:
    """Which ledger visits hold capacity now. A hold the ledger shows as expired is checked against
    the booking item first (one BatchGetItem, only when such holds exist): if the booking moved on
    (e.g. confirmed) without the ledger hearing of it, it still counts — never give its place away."""
    now_iso = utc_iso(now)
    doubtful = [bid for bid, raw in (ledger.visits or {}).items()
                if raw.get("status") == S.HELD and not capacity.holds_capacity(raw, now_iso)]
    moved_on = {bid for bid, b in store.get_bookings(doubtful, consistent=True,
                                                     attributes=["booking_id", "status"]).items()
                if b.status in OPEN and b.status != S.HELD}
    return lambda bid, raw: bid in moved_on or capacity.holds_capacity(raw, now_iso)


def ledger_day(ledger: DayLedger, region: Region, day: date, now: datetime,
               counted: Callable[[str, dict], bool] | None = None) -> capacity.Day:
    return capacity.day_from_ledger(ledger.shifts or {}, ledger.visits or {}, day=day, tz=region.tz,
                                    remote_doctors=region.remote_doctors, travel=region.travel or None,
                                    counted=counted or counted_visits(ledger, now))


def place(ledger: DayLedger, visit: capacity.Visit, region: Region, day: date, now: datetime,
          counted: Callable[[str, dict], bool] | None = None, allow_rebuild: bool = True) -> capacity.Plan | None:
    """A plan for the part of the day around `visit` (its nearest routes, homevisits.ledger) with
    the visit in it, or None (refuse). Adopt it with `ledger.take(plan)`. `counted` defaults to the
    visits holding capacity now (lapsed holds looked up first)."""
    part = ledger.around(visit, day, region.tz)
    d = ledger_day(part, region, day, now, counted=counted)
    return capacity.check(d, visit, part.routes, allow_rebuild=allow_rebuild)


def _removed(ledger: DayLedger, booking_id: str) -> bool:
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
    b = store.get_booking(booking_id)
    if b is None:
        raise NotFound("no such booking")
    return b


def create_booking(fields: dict, note, ledger: DayLedger, extra_updates=(),
                   person_day: tuple | None = None, account_day: tuple | None = None) -> tuple[str, BookingModel]:
    """A new booking (`fields`: every BookingModel attribute; its status held, or confirmed when
    nothing is to be paid) with its clinical note, its ledger, (`person_day`, see
    store.insert_booking) the treated person's day lock and (`account_day`) the account's bookings
    of the day, in one transaction. Answers (store.COMMITTED | EXISTS | PERSON_DAY_TAKEN |
    ACCOUNT_DAY_CHANGED | LOST_RACE, the booking as written)."""
    if fields.get("status") not in (S.HELD, S.CONFIRMED):
        raise InvalidTransition(f"a booking starts held or confirmed, not {fields.get('status')}")
    b = store.draft_booking(fields)
    return store.insert_booking(b, note, ledger, extra_updates, person_day, account_day), b


def draft(fields: dict) -> BookingModel:
    """A booking as `create_booking` would write it, not stored (for its ledger entry and view)."""
    return store.draft_booking(fields)


def release_booking(booking_id: str, to_status: str, *, reason: str, now: datetime,
                    expect: tuple[str, ...] = (S.HELD,), extra: dict | None = None) -> BookingModel:
    """Move a booking from one of `expect` to `to_status` and give its capacity back, atomically.

    `extra` sets further booking attributes in the same write (e.g. {"cancellation": {...}}).
    Idempotent: a booking already in `to_status` is returned unchanged. Raises NotFound,
    InvalidTransition (any other status), BusyTryAgain (lost the race MAX_ATTEMPTS times)."""
    to_status = BookingStatus(to_status)
    for attempt in range(MAX_ATTEMPTS):
        b = _get(booking_id)
        if b.status == to_status:
            return b
        if b.status not in expect:
            raise InvalidTransition(f"a {b.status} booking cannot become {to_status}",
                                    details={"status": b.status})
        require_move(b.status, to_status)
        ledger = read_ledger(b.region_day)
        values = {"status": to_status, "status_reason": reason, "updated_at": utc_iso(now), **(extra or {})}
        if store.commit_booking_update(b, values, b.status, [ledger] if _removed(ledger, booking_id) else []):
            return b
        backoff(attempt)
    raise BusyTryAgain("the booking is being changed by another request; try again")


def _confirmed_ledger(b: BookingModel, now: datetime) -> DayLedger:
    """The region-day ledger with the booking's visit marked confirmed (no hold expiry any more).
    A visit whose reservation lapsed is re-checked against the day: WindowFull when its place is gone."""
    booking_id = b.booking_id
    ledger = read_ledger(b.region_day)
    raw = (ledger.visits or {}).get(booking_id)
    still_held = raw is not None and capacity.holds_capacity(raw, utc_iso(now))
    visits = dict(ledger.visits or {})
    visits[booking_id] = ledger_visit(b, S.CONFIRMED)
    if not still_held:
        counted = counted_visits(ledger, now)
        plan = place(ledger, capacity.visit_from_ledger(booking_id, visits[booking_id]), load_config().region(b.region),
                     date.fromisoformat(b.date), now, counted=lambda bid, r: bid != booking_id and counted(bid, r))
        if plan is None:
            raise WindowFull("the hold expired and the window is no longer free")
        ledger.take(plan)
    ledger.visits = visits
    return ledger


def try_confirm(b: BookingModel, *, now: datetime, extra: dict | None = None, also_save=()) -> bool:
    """One attempt at held -> confirmed for the booking `b` as read, with the ledger told and
    `also_save` (e.g. the payment record, version-checked) in the same transaction. False when
    another writer changed any of them (re-read and decide again); WindowFull when a lapsed
    reservation lost its place; InvalidTransition when `b` is not held."""
    require_move(b.status, S.CONFIRMED)
    ledger = _confirmed_ledger(b, now)
    values = {"status": S.CONFIRMED, "hold_expires_at": None, "updated_at": utc_iso(now), **(extra or {})}
    if b.unkept:
        values["unkept"] = None  # an unkept visit the day has room for again (re-checked above) is kept
    return store.commit_booking_update(b, values, S.HELD, [ledger], also_save=also_save)


def confirm_booking(booking_id: str, *, now: datetime, extra: dict | None = None) -> BookingModel:
    """held -> confirmed (the fee is held on the card, or there is none), with the ledger told.

    If the hold already expired, the visit's place may have been given away: it is re-checked
    against the day and, when it no longer fits, WindowFull is raised (release the card hold and
    tell the patient). Idempotent for an already confirmed booking."""
    for attempt in range(MAX_ATTEMPTS):
        b = _get(booking_id)
        if b.status == S.CONFIRMED:
            return b
        if b.status != S.HELD:
            raise InvalidTransition(f"a {b.status} booking cannot be confirmed", details={"status": b.status})
        if try_confirm(b, now=now, extra=extra):
            return b
        backoff(attempt)
    raise BusyTryAgain("the booking is being changed by another request; try again")


def try_visit_move(b: BookingModel, to_status: str, *, now: datetime, clinician_id: str | None,
                   record) -> bool:
    """One attempt at a visit event's move (confirmed -> en_route -> arrived -> completed, or ->
    no_show) for `b` as read, with the event's own record (which must not exist yet) in the same
    transaction. False when the booking or the record changed meanwhile."""
    require_move(b.status, to_status)
    values = {"status": BookingStatus(to_status), "updated_at": utc_iso(now)}
    if clinician_id:
        values["clinician_id"] = clinician_id
    return store.commit_visit_event(b, values, b.status, record)


def try_reschedule(b: BookingModel, values: dict, ledgers: list[DayLedger],
                   person_day: tuple | None = None, account_day: tuple | None = None) -> bool:
    """One attempt at moving an open booking to another window (`values`: the new date, window,
    times and region-day), with both ledgers and (another date: see store.commit_booking_update)
    the treated person's lock of the new day (`person_day`) and the account's bookings of it
    (`account_day`), keeping its status. False on a lost race."""
    if b.status not in (S.HELD, S.CONFIRMED) or "status" in values:
        raise InvalidTransition(f"a {b.status} booking cannot be rescheduled", details={"status": b.status})
    return store.commit_booking_update(b, values, b.status, ledgers, person_day=person_day,
                                       account_day=account_day)


def try_strand(bookings: list[BookingModel], record: dict, ledger: DayLedger) -> bool:
    """One attempt at marking open bookings `unkept` (`record`: {"at", "reason", "clinician_id"}
    plus each booking's own "offered" windows under record["offered"][booking_id]) together with
    the ledger that no longer holds them, in one transaction. Their status stays (the patient
    reschedules or cancels, free). False when any of them, or the ledger, changed meanwhile."""
    changes = []
    for b in bookings:
        if b.status not in OPEN:
            raise InvalidTransition(f"a {b.status} booking has no visit to keep", details={"status": b.status})
        own = {k: v for k, v in record.items() if k != "offered"}
        own["offered"] = (record.get("offered") or {}).get(b.booking_id, [])
        changes.append((b, {"unkept": own, "updated_at": record["at"]}))
    return store.commit_bookings_update(changes, ledger)


def set_payment_status(booking_id: str, payment_status: str, *, now: datetime | None = None) -> BookingModel | None:
    """Show the payment's state on the booking (GET /bookings reads it). Read, then written under
    the version read (which goes up by one), retried on a lost race; None for a missing booking."""
    for attempt in range(MAX_ATTEMPTS):
        b = store.get_booking(booking_id)
        if b is None or b.payment_status == payment_status:
            return b
        values = {"payment_status": payment_status}
        if now is not None:
            values["updated_at"] = utc_iso(now)
        if store.update_booking(b, values, [b.status]):
            return b
        backoff(attempt)
    raise BusyTryAgain("the booking is being changed by another request; try again")


def try_assign(b: BookingModel, clinician_id: str | None, eta: str | None) -> bool:
    """Write the plan's clinician and ETA into a planned booking (confirmed or en route) as read.
    False when it changed meanwhile or is no longer planned (the next plan writes it again)."""
    return store.update_booking(b, {"clinician_id": clinician_id, "eta": eta}, (S.CONFIRMED, S.EN_ROUTE))


def try_erase(b: BookingModel, values: dict) -> bool:
    """Overwrite the personal data of a finished booking as read (`values`: patient, address, …);
    its status and facts stay. False when it changed meanwhile (re-read and decide again)."""
    if b.status in OPEN or "status" in values:
        raise InvalidTransition(f"a {b.status} booking is still in progress", details={"status": b.status})
    return store.update_booking(b, values, [b.status])
