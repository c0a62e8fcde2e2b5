"""A booking's states and the moves between them: the words, the table, the named sets. Pure data.

    held ──▶ confirmed ──▶ en_route ──▶ arrived ──▶ completed
      │          │ └───────arrived──────▲    │
      │          ├──▶ cancelled          └──▶ no_show ◀── en_route
      │          └──▶ missed ◀── en_route   (the window ended, plus a grace, without `arrived`)
      ├──▶ cancelled
      └──▶ expired

`homevisits.lifecycle` is the only module that writes a booking's status (it asks `require_move`
first); every other module reads these names and sets from here, never spells its own.
"""
from __future__ import annotations

from enum import StrEnum

from homevisits.errors import InvalidTransition


class BookingStatus(StrEnum):
    HELD = "held"  # capacity reserved, the fee not yet held on the card
    CONFIRMED = "confirmed"  # the fee is held (or there is none): the visit will be planned
    EN_ROUTE = "en_route"  # the clinician set off
    ARRIVED = "arrived"
    COMPLETED = "completed"  # the visit fee is captured
    CANCELLED = "cancelled"  # by the patient (free or late), or a declined card
    NO_SHOW = "no_show"  # nobody was there: the no-show fee applies
    EXPIRED = "expired"  # the reservation ran out before the fee was held
    MISSED = "missed"  # nobody came: the window ended (plus a grace) without `arrived`; the service's fault, no fee


S = BookingStatus

# The legal moves: status -> the statuses it may become. Anything else is refused.
MOVES: dict[BookingStatus, frozenset[BookingStatus]] = {
    S.HELD: frozenset({S.CONFIRMED, S.CANCELLED, S.EXPIRED}),
    S.CONFIRMED: frozenset({S.EN_ROUTE, S.ARRIVED, S.CANCELLED, S.MISSED}),
    S.EN_ROUTE: frozenset({S.ARRIVED, S.NO_SHOW, S.MISSED}),
    S.ARRIVED: frozenset({S.COMPLETED, S.NO_SHOW}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.NO_SHOW: frozenset(),
    S.EXPIRED: frozenset(),
    S.MISSED: frozenset(),
}

# Not finished: the visit holds capacity in its region-day ledger, and erasure keeps its data.
OPEN = frozenset({S.HELD, S.CONFIRMED, S.EN_ROUTE, S.ARRIVED})
# Booked and paid for, not yet done: its card hold must stay alive until the capture.
IN_PROGRESS = frozenset({S.CONFIRMED, S.EN_ROUTE, S.ARRIVED})
# The visit's time is over (done, or nobody opened): a fact of its day, which stays in the plan
# where it happened, locked, and is never re-planned (not even after its patient's data is erased).
HAPPENED = frozenset({S.COMPLETED, S.NO_SHOW})
# What a region-day's plan shows (happened visits stay in it as facts of the day, and a missed
# one is listed apart, so the dispatcher sees who was not visited).
PLANNED = frozenset({S.CONFIRMED, S.EN_ROUTE, S.ARRIVED, S.MISSED}) | HAPPENED
# A visit whose window may pass without anyone arriving: the sweep closes it as missed.
AWAITING_ARRIVAL = frozenset({S.CONFIRMED, S.EN_ROUTE})
# Finished, one way or another: no move leads out of these.
FINISHED = frozenset(s for s, targets in MOVES.items() if not targets)
# Statuses whose booking may owe money: the visit fee (completed), the no-show fee, a late
# cancellation's fee (cancelled with fee_decision "late").
BILLABLE = frozenset({S.COMPLETED, S.NO_SHOW, S.CANCELLED})


def may_move(current: str, target: str) -> bool:
    return BookingStatus(target) in MOVES.get(BookingStatus(current), frozenset())


def require_move(current: str, target: str) -> None:
    """Raise InvalidTransition unless `current` may become `target`."""
    if not may_move(current, target):
        raise InvalidTransition(f"a {current} booking cannot become {target}",
                                details={"status": str(current), "target": str(target)})
