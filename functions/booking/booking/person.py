"""What one person (the one a visit is for) already has booked: at most one open booking a day,
and the fees of their open bookings, which count toward the high-cost protection before they are
captured.

Read with one Query of the person's day items (`PERSON#{patient_key}`, OpsTable) and one
BatchGetItem of the bookings they name; the day item of a new booking is written in the booking's
own transaction (`homevisits.lifecycle.create_booking`), so two concurrent bookings of one person and day
cannot both commit."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from homevisits import capacity
from homevisits.booking_state import BookingStatus
from homevisits.errors import AlreadyBooked
from homevisits.persistence import bookings as repository
from homevisits.tariff import FRIKORT_VISIT_TYPES, HIGH_COST_CAP, STANDARD

# A visit can still be under way (en route, arrived) a day after its window: look back that far.
LOOK_BACK = timedelta(days=2)
# Day items are kept a little after their day, then DynamoDB's TTL removes them.
KEEP_AFTER_DAY = timedelta(days=3)


@dataclass(frozen=True)
class PersonBookings:
    days: dict[str, str] = field(default_factory=dict)  # local date -> booking id its day item names
    bookings: dict = field(default_factory=dict)  # booking id -> booking (the ones still stored)


def read(patient_key: str, today: date) -> PersonBookings:
    days = repository.person_days(patient_key, (today - LOOK_BACK).isoformat())
    return PersonBookings(days, repository.get_bookings(days.values(), consistent=True))


def is_open(b, now_iso: str) -> bool:
    """Held (and the hold not run out), confirmed, en route or arrived."""
    return b is not None and capacity.holds_capacity({"status": b.status, "hold_expires_at": b.hold_expires_at},
                                                     now_iso)


def claim_day(holder_id: str | None, holder, day: str, booking_id: str, now_iso: str) -> str | None:
    """Whether `booking_id` may take the person's `day`, whose item names `holder_id` (the booking
    `holder`, None if gone). Answers the stale booking id the write must be conditioned on (None:
    the item must be absent). Raises AlreadyBooked when the holder is another open booking of that
    day: a second open booking of the same person and day is refused."""
    if holder_id is None or holder_id == booking_id:
        return holder_id
    if is_open(holder, now_iso) and holder.date == day:
        raise AlreadyBooked("you already have a booking that day; change or cancel it instead of booking again",
                            details={"booking_id": holder_id})
    return holder_id  # cancelled, expired, finished or moved to another day: take the day over


def claim_day_now(patient_key: str, day: str, booking_id: str, now_iso: str) -> str | None:
    """claim_day on the person's `day` item as stored now (a GetItem, and the booking it names):
    for a retry after losing the day's item, and for a reschedule onto another day."""
    holder_id = repository.person_day(patient_key, day)
    holder = repository.get_booking(holder_id) if holder_id else None
    return claim_day(holder_id, holder, day, booking_id, now_iso)


def expires_at(day: date, tz) -> object:
    from datetime import datetime, time
    return datetime.combine(day + KEEP_AFTER_DAY, time(0, 0), tzinfo=tz)


def pending_fees(pb: PersonBookings, exclude: str, captured: set[str], now_iso: str) -> int:
    """Fees (minor units) of the person's other bookings that will be taken and count toward the
    high-cost protection but are not in the fee ledger yet: open ones, and completed ones whose
    capture is not recorded yet."""
    total = 0
    for bid, b in pb.bookings.items():
        if bid == exclude or bid in captured or b.visit_type not in FRIKORT_VISIT_TYPES:
            continue
        if b.fee_reason not in (STANDARD, HIGH_COST_CAP):
            continue
        if is_open(b, now_iso) or b.status == BookingStatus.COMPLETED:
            total += int(b.fee_amount or 0)
    return total
