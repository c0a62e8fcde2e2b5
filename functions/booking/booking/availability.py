"""Which windows of a region-day can be booked: local 2-hour windows, not started, inside the horizon.

Pure functions of the region (config) and "now"; the capacity part (does a visit still fit) is
`homevisits.capacity`, applied by the service on the ledger."""
from __future__ import annotations

from datetime import date, datetime, time

from homevisits.errors import RegionNotOpen, WindowNotBookable
from homevisits.regions import Region, Window


def parse_window_start(s: str) -> time:
    return datetime.strptime(s, "%H:%M").time()


def within_horizon(region: Region, day: date, now: datetime) -> bool:
    """Today (local) up to booking_horizon_days ahead, inclusive."""
    today = region.local_date(now)
    return 0 <= (day - today).days <= region.booking_horizon_days


def open_for_booking(window: Window, now: datetime) -> bool:
    """A window that has already started (or passed) cannot be booked."""
    return now < window.start_utc


def bookable_window(region: Region, day: date, window_start: str, now: datetime) -> Window:
    """The window a booking asks for, if it can be booked now; raises otherwise (writes nothing)."""
    if not region.bookable:
        raise RegionNotOpen(f"{region.name} is not taking bookings yet")
    w = region.window(day, parse_window_start(window_start))  # InvalidRequest for a non-window time
    if not within_horizon(region, day, now):
        raise WindowNotBookable(f"bookings are taken up to {region.booking_horizon_days} days ahead",
                                code="outside_booking_horizon")
    if not open_for_booking(w, now):
        raise WindowNotBookable("this window has already started")
    return w


def day_windows(region: Region, day: date, now: datetime) -> list[tuple[Window, bool]]:
    """Every window of the day with whether time alone allows booking it."""
    ok_day = region.bookable and within_horizon(region, day, now)
    return [(w, ok_day and open_for_booking(w, now)) for w in region.windows(day)]
