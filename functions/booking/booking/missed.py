"""Visits nobody came to: closed as missed once their window has ended, plus a grace, without the
clinician marking `arrived` (issue 12, defect 6).

A missed visit is the service's fault: its booking becomes `missed` through the lifecycle owner
(capacity given back in the same transaction), and one `BookingMissed` on the bus tells payments
to release the hold (no fee; a missed booking is not in progress, so its hold is never renewed
again) and notifications to text the patient a way to book again. Dispatch lists it apart in the
region-day's plan (`missed`, with its reason).

Settings (`booking` in the service config): `missed_grace_minutes` (default 60) after the window's
end; `missed_lookback_days` (default 2): how many local days back the sweep looks, so a run that
was skipped is caught up. Reads are Queries of the `by-region-day` index, no Scan.
"""
from __future__ import annotations

from datetime import timedelta

from homevisits import lifecycle
from homevisits.booking_state import AWAITING_ARRIVAL, BookingStatus as S
from homevisits.clock import parse_utc
from homevisits.errors import BusyTryAgain, InvalidTransition, NotFound
from homevisits.messaging import SOURCE_BOOKING
from homevisits.persistence import bookings as store
from homevisits.regions import region_day_key

MISSED_REASON = "no_arrival_in_window"
DEFAULT_GRACE_MINUTES = 60
DEFAULT_LOOKBACK_DAYS = 2


def grace(config) -> timedelta:
    return timedelta(minutes=int(config.booking.get("missed_grace_minutes", DEFAULT_GRACE_MINUTES)))


def swept_days(config, now) -> list[str]:
    """The region-days whose windows may have ended without an arrival: from `missed_lookback_days`
    before the grace-shifted now up to today, every region (local dates)."""
    back = int(config.booking.get("missed_lookback_days", DEFAULT_LOOKBACK_DAYS))
    cutoff = now - grace(config)
    keys = []
    for region in config.regions.values():
        last = region.local_date(cutoff)
        keys += [region_day_key(region.id, last - timedelta(days=i)) for i in range(back, -1, -1)]
    return keys


def close_missed_visits(ctx) -> dict:
    """Close every confirmed or en-route visit whose window ended more than the grace ago.

    `ctx`: booking.service.Context. Answers {"missed": [booking ids], "skipped": n}; a booking that
    moved meanwhile (arrived at the last minute) or is busy is skipped and looked at again next run."""
    now = ctx.clock.now()
    cutoff = now - grace(ctx.config)
    missed, skipped = [], 0
    for rd in swept_days(ctx.config, now):
        for b, _raw in store.bookings_of_region_day(rd):
            if b.status not in AWAITING_ARRIVAL or parse_utc(b.ends_at) > cutoff:
                continue
            try:
                done = lifecycle.release_booking(b.booking_id, S.MISSED, reason=MISSED_REASON, now=now,
                                                 expect=tuple(AWAITING_ARRIVAL))
            except (InvalidTransition, NotFound, BusyTryAgain):
                skipped += 1
                continue
            missed.append(b.booking_id)
            ctx.publish(SOURCE_BOOKING, "BookingMissed", {"booking_id": done.booking_id, "region": done.region,
                                                          "date": done.date, "reason": MISSED_REASON})
    return {"missed": missed, "skipped": skipped}
