"""What one account (the patient signed in, `sub`) has booked for one day: at most
`booking.max_open_bookings_per_account_day` open bookings, whoever each visit is for.

The person-day lock (booking.person) stops one person booking a day twice; this stops one account
filling a window with many "children" (free visits need no card, so nothing else holds them back).
Read with one GetItem of the account's day item (`ACCOUNT#{sub}` / `DAY#{date}`, OpsTable), in
parallel with the booking's other reads; the item is written in the booking's own transaction,
conditioned on the version read (`homevisits.lifecycle.create_booking`), so two concurrent bookings
of one account cannot both take the last place. Bookings it names that are no longer open (or that
moved to another day) are dropped when a booking needs their place: a cancelled or expired booking
frees its place without writing the item."""
from __future__ import annotations

from dataclasses import replace

from booking import person
from homevisits.errors import AccountDayLimit
from homevisits.persistence import bookings as repository
from homevisits.persistence.bookings import AccountDay
from homevisits.regions import Config


def limit(config: Config) -> int:
    """Open bookings one account may have for one day (the configuration is the one source)."""
    return int(config.booking["max_open_bookings_per_account_day"])


def read(patient_sub: str, day: str) -> AccountDay:
    return repository.account_day(patient_sub, day)


def claim(config: Config, acct: AccountDay, booking_id: str, now_iso: str) -> AccountDay:
    """The account's day with `booking_id` added, to be written in the booking's transaction.

    Raises AccountDayLimit when the account already has the limit of open bookings that day. Only
    then are the named bookings read (one BatchGetItem) to drop those no longer open there."""
    if booking_id in acct.booking_ids:
        return acct  # an earlier attempt of the same request: it already holds its place
    most = limit(config)
    ids = list(acct.booking_ids)
    if len(ids) >= most:
        named = repository.get_bookings(ids, consistent=True)
        ids = [bid for bid in ids if bid in named and person.is_open(named[bid], now_iso)
               and named[bid].date == acct.day]
        if len(ids) >= most:
            raise AccountDayLimit(f"an account may have at most {most} open bookings for one day; cancel one "
                                  "or choose another day", details={"limit": most, "date": acct.day})
    return replace(acct, booking_ids=(*ids, booking_id))
