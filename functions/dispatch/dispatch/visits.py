"""Visit events: the clinician's part of the booking state machine.

    confirmed ──on_the_way──▶ en_route ──arrived──▶ arrived ──completed──▶ completed
        └──────────arrived──────────────▲     └──no_show──▶ no_show ◀──no_show── en_route

`arrived` is accepted straight from `confirmed` (a clinician who forgot to tap "on the way" must
still be able to work); `completed` needs `arrived` (the fee is captured on it); `no_show` needs
the clinician to have set off. Repeating an accepted event (a retry, even a late one) is answered
idempotently and publishes nothing new; any other move is refused with `invalid_transition`.

`record_visit_event` applies one event: a conditional transaction on the booking's status and
version plus the event's own record, then one VisitEvent on the bus (re-published on a repeat if
the first publish failed, so payments and notifications get it at least once)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from homevisits.auth import Caller
from homevisits.booking_state import BookingStatus as S
from homevisits.clock import utc_iso
from homevisits.errors import Forbidden, InvalidRequest, InvalidTransition, NotFound

# Each event's target and the statuses it may come from (a subset of homevisits.booking_state.MOVES).
EVENTS: dict[str, tuple[S, frozenset[S]]] = {
    "on_the_way": (S.EN_ROUTE, frozenset({S.CONFIRMED})),
    "arrived": (S.ARRIVED, frozenset({S.CONFIRMED, S.EN_ROUTE})),
    "completed": (S.COMPLETED, frozenset({S.ARRIVED})),
    "no_show": (S.NO_SHOW, frozenset({S.EN_ROUTE, S.ARRIVED})),
}


@dataclass(frozen=True)
class Transition:
    event_type: str
    from_status: str
    to_status: str
    repeat: bool  # the booking is already where this event leads: answer without a second effect


def transition_for(status: str, event_type: str) -> Transition:
    """The move `event_type` makes from `status`. Raises InvalidRequest for an unknown event type
    and InvalidTransition when the event is not allowed in `status`."""
    if event_type not in EVENTS:
        raise InvalidRequest(f"type must be one of {sorted(EVENTS)}", code="invalid_event_type")
    target, sources = EVENTS[event_type]
    if status == target:
        return Transition(event_type, status, target, repeat=True)
    if status not in sources:
        raise InvalidTransition(f"a visit that is {status} cannot be marked {event_type}",
                                details={"status": status, "event": event_type})
    return Transition(event_type, status, target, repeat=False)


def event_id(booking_id: str, event_type: str) -> str:
    """Derived from what it identifies, so every retry names the same event."""
    return f"{booking_id}:{event_type}"


def may_post_event(caller: Caller, booking_region: str, booking_clinician: str | None,
                   planned_clinician: str | None) -> bool:
    """The clinician the visit is assigned to (in the current plan, or on the booking once under
    way), or a dispatcher of the visit's region."""
    if caller.role == "dispatcher":
        return caller.region == booking_region
    if caller.role == "clinician":
        return caller.sub in {c for c in (booking_clinician, planned_clinician) if c}
    return False


def record_visit_event(booking_id: str, event_type: str, caller: Caller, now: datetime, *, repo, publish,
                       live=None) -> dict:
    """Apply one visit event; returns {"booking_id", "status", "event_id", "repeat"}.

    `repo`: the dispatch repository (get_booking, get_plan, get_event, apply_transition,
    mark_published, event_record); `publish(detail)`: puts the VisitEvent on the bus; `live`:
    the live ETAs (dispatch.live: eta_after_event, record_event), None to leave them alone. The
    "on the way" event carries the visit's live ETA (the patient's text says it), never a plan time."""
    if event_type not in EVENTS:
        raise InvalidRequest(f"type must be one of {sorted(EVENTS)}", code="invalid_event_type")
    booking = repo.get_booking(booking_id)
    if booking is None:
        raise NotFound("no such visit", code="visit_not_found")
    planned = None
    if not (caller.role == "clinician" and caller.sub == booking.clinician_id):
        plan = repo.get_plan(booking.region, booking.date)  # the plan decides who the visit is for
        if plan is not None:
            planned = next((r["clinician_id"] for r in plan.routes
                            if any(s["booking_id"] == booking_id for s in r["stops"])), None)
    if not may_post_event(caller, booking.region, booking.clinician_id, planned):
        raise Forbidden("only the clinician assigned to this visit (or its region's dispatcher) may do that",
                        code="not_your_visit")
    for _attempt in range(3):
        try:
            tr = transition_for(booking.status, event_type)
        except InvalidTransition:
            tr = None
        if tr is None or tr.repeat:
            # Not a move from here: a repeat of an accepted event (a retry, or a late duplicate)
            # gets the same answer and the event goes out once; anything else is refused.
            record = repo.get_event(booking_id, event_type)
            if record is None:
                if tr is None:
                    raise InvalidTransition(f"a visit that is {booking.status} cannot be marked {event_type}",
                                            details={"status": booking.status, "event": event_type})
                return {"booking_id": booking_id, "status": booking.status,
                        "event_id": event_id(booking_id, event_type), "repeat": True}
            if not record.published:
                publish(_detail(record))
                repo.mark_published(record)
            return {"booking_id": booking_id, "status": booking.status, "event_id": record.event_id, "repeat": True}
        clinician = (caller.sub if caller.role == "clinician" else None) or booking.clinician_id or planned
        eta = booking.eta
        if live is not None and event_type == "on_the_way":
            eta = live.eta_after_event(booking, clinician, event_type, now) or _not_before(eta, now)
        record = repo.event_record(booking_id, event_type, event_id=event_id(booking_id, event_type),
                                   at=utc_iso(now), clinician_id=clinician, actor_sub=caller.sub, eta=eta)
        try:
            # Conditioned on the status and version read and on the event record not existing yet.
            repo.apply_transition(booking, tr.from_status, tr.to_status, record, now)
        except repo.TransitionConflict:
            booking = repo.get_booking(booking_id)  # moved meanwhile (or this event won elsewhere): decide again
            continue
        if live is not None:
            live.record_event(booking, clinician, event_type, now,
                              told_eta=record.eta if event_type == "on_the_way" else None)
        publish(_detail(record))
        repo.mark_published(record)
        return {"booking_id": booking_id, "status": tr.to_status, "event_id": record.event_id, "repeat": False}
    raise InvalidTransition("the visit changed while the event was applied; try again", code="conflict")


def _not_before(eta: str | None, now: datetime) -> str:
    """Without a live route (no plan yet): the booking's ETA, never one already past."""
    return max(eta, utc_iso(now)) if eta else utc_iso(now)


def _detail(record) -> dict:
    return {"booking_id": record.booking_id, "type": record.type, "at": record.at,
            "clinician_id": record.clinician_id, "eta": record.eta, "event_id": record.event_id}
