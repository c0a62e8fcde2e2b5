"""DynamoDB access of the dispatch context (through the shared PynamoDB models).

Request paths use GetItem/Query on designed keys only: bookings of a region-day through the
`by-region-day` index, the capacity ledger and the plan by `region_day`, events and audit entries
by their OpsTable keys. Bookings are read through the booking store and written only through
`homevisits.lifecycle` (visit events, the plan's clinician and ETA)."""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone

from homevisits import lifecycle
from homevisits.booking_state import PLANNED, BookingStatus
from homevisits.clock import parse_utc, utc_iso
from homevisits.persistence import bookings as store
from homevisits.persistence.booking import BookingModel
from homevisits.persistence.dispatch import (AccessAuditModel, PlanModel, VisitEventModel, forget_announcement,
                                             get_event_item, get_plan_item, save_plan_item)
from homevisits.regions import region_day_key

from dispatch.builder import RegionDayInputs, VisitInput, shift_from_ledger
from dispatch.plans import Plan, dispatch_address

logger = logging.getLogger(__name__)


class StalePlan(Exception):
    """The plan was not stored: a newer one (by its inputs) or a concurrent write got there first."""


# ---------------------------------------------------------------- inputs
bookings_of_region_day = store.bookings_of_region_day


def frikort_mark(stored: dict | None) -> dict | None:
    """What a dispatcher sees of a booking's frikort: whether one was declared and whether anyone
    has verified it (a self-declared one is not: the visit is free on the patient's word); never
    the card's number. None when no frikort was declared."""
    if not stored:
        return None
    return {"declared": True, "verified": stored.get("verified") is True}


def visit_input(b: BookingModel) -> VisitInput:
    address = b.address or {}
    lat, lon = address.get("lat"), address.get("lon")
    return VisitInput(
        booking_id=b.booking_id, status=b.status, visit_type=b.visit_type,
        starts_at=parse_utc(b.starts_at), ends_at=parse_utc(b.ends_at),
        lat=float(lat) if lat is not None else None, lon=float(lon) if lon is not None else None,
        address=dispatch_address(address), clinician_id=b.clinician_id, priority=b.priority or "normal", unkept=bool(b.unkept),
        updated_at=b.updated_at or "", version=int(b.version or 0), eta=b.eta, frikort=frikort_mark(b.frikort))


def load_inputs(region, day: date) -> RegionDayInputs:
    """Bookings and shifts of a region-day, as the builder takes them."""
    rd = region_day_key(region.id, day)
    visits, other_newest = [], ""
    for b, _ in bookings_of_region_day(rd):
        if b.status in PLANNED:
            visits.append(visit_input(b))
        else:
            other_newest = max(other_newest, b.updated_at or "")
    ledger = store.get_ledger(rd, consistent=False)
    shifts_raw = dict(ledger.shifts or {}) if ledger else {}
    ledger_version = int(ledger.version or 0) if ledger else 0
    shifts = []
    for clinician_id, raw in sorted(shifts_raw.items()):
        try:
            shifts.append(shift_from_ledger(clinician_id, raw, region, day))
        except (KeyError, ValueError, TypeError):
            logger.warning("skipping a malformed shift in %s", rd)
    return RegionDayInputs(region=region, day=day, visits=tuple(visits), shifts=tuple(shifts),
                           ledger_version=ledger_version, other_visits_version=other_newest)


# ---------------------------------------------------------------- plans
def _plan_from_item(item: PlanModel) -> Plan:
    return Plan(region=item.region, date=item.date, routes=item.routes or [], unassigned=item.unassigned or [],
                kpis=item.kpis or {}, computed_at=item.computed_at, input_version=item.input_version,
                input_hash=item.input_hash, trigger=item.trigger or "replan", solver=item.solver or {},
                version=item.version, announce=item.announce, pins=item.pins or {}, missed=item.missed or [],
                video_calls=item.video_calls or {})


def get_plan(region: str, day: date | str) -> Plan | None:
    item = get_plan_item(region_day_key(region, day))
    return _plan_from_item(item) if item is not None else None


def save_plan(plan: Plan, expected_version: int | None) -> Plan:
    """Store `plan` if the stored one is still at `expected_version` (None: there is none yet) and
    was computed from inputs no newer than this plan's. Raises StalePlan otherwise."""
    item = PlanModel(plan.region_day, region=plan.region, date=plan.date, input_version=plan.input_version,
                     input_hash=plan.input_hash, routes=plan.routes, unassigned=plan.unassigned, kpis=plan.kpis,
                     computed_at=plan.computed_at, trigger=plan.trigger, solver=plan.solver,
                     announce=plan.announce, pins=plan.pins or None, missed=plan.missed or None,
                     video_calls=plan.video_calls or None)
    if not save_plan_item(item, expected_version):
        raise StalePlan(f"plan of {plan.region_day} not stored: a newer or concurrent plan exists")
    plan.version = item.version
    return plan


def mark_announced(plan: Plan) -> bool:
    """Forget the plan's pending PlanChanged (it reached the bus). False when the stored plan is no
    longer this version (a newer plan carries its own announcement)."""
    if not forget_announcement(plan.region_day, plan.version):
        return False
    plan.announce = None
    return True


def write_etas(plan: Plan, visits: dict) -> int:
    """Copy each visit's clinician and ETA from the plan into its booking (GET /bookings/{id} shows
    them); clears them for a visit that lost its place. Only bookings still planned are touched, and
    only when something changed. Returns how many bookings were updated."""
    assigned = plan.assignments()
    wanted = {}
    for bid, v in visits.items():
        if v.status not in (BookingStatus.CONFIRMED, BookingStatus.EN_ROUTE):
            continue
        clinician, eta = assigned.get(bid, (None, None))
        if (clinician, eta) == (v.clinician_id, v.eta):
            continue
        if v.status == BookingStatus.EN_ROUTE and clinician is None:
            continue  # under way: keep who is driving there
        wanted[bid] = (clinician, eta)
    n = 0
    for bid, b in store.get_bookings(wanted, consistent=True).items():
        clinician, eta = wanted[bid]
        if (b.clinician_id, b.eta) != (clinician, eta) and lifecycle.try_assign(b, clinician, eta):
            n += 1  # a booking that changed meanwhile is left for the plan its change triggers
    return n


# ---------------------------------------------------------------- bookings and visit events
get_booking = store.get_booking


def get_bookings(booking_ids: list[str]) -> dict:
    return store.get_bookings(booking_ids)


def event_key(booking_id: str, event_type: str) -> tuple[str, str]:
    return f"VISIT#{booking_id}", f"EVENT#{event_type}"


def get_event(booking_id: str, event_type: str) -> VisitEventModel | None:
    return get_event_item(*event_key(booking_id, event_type))


def event_record(booking_id: str, event_type: str, **fields) -> VisitEventModel:
    """A visit event's record, not yet stored (`apply_transition` writes it with the move)."""
    return VisitEventModel(*event_key(booking_id, event_type), booking_id=booking_id, type=event_type,
                           published=False, **fields)


class TransitionConflict(Exception):
    """The booking's status (or version) changed between the read and the write."""


def apply_transition(booking: BookingModel, from_status: str, to_status: str, record: VisitEventModel,
                     now: datetime) -> None:
    """The booking moves from `from_status` to `to_status` through its owner (homevisits.lifecycle:
    conditioned on the status and the version read) with the event record created in the same
    transaction (conditioned on not existing). TransitionConflict when either changed meanwhile."""
    if booking.status != from_status or not lifecycle.try_visit_move(
            booking, to_status, now=now, clinician_id=record.clinician_id, record=record):
        raise TransitionConflict(booking.booking_id)


def visit_events(booking_ids: list[str]) -> dict:
    """booking id -> {event type: iso} of the accepted visit events (one BatchGetItem)."""
    from dispatch.visits import EVENTS
    keys = [event_key(b, t) for b in dict.fromkeys(booking_ids) for t in EVENTS]
    out: dict = {}
    for rec in VisitEventModel.batch_get(keys, consistent_read=True):
        out.setdefault(rec.booking_id, {})[rec.type] = rec.at
    return out


def mark_published(record: VisitEventModel) -> None:
    record.update(actions=[VisitEventModel.published.set(True)])


# ---------------------------------------------------------------- clinical notes and audit
clinical_notes = store.clinical_notes


def audit_read(patient_sub: str, reader_sub: str, reader_role: str, booking_id: str, what: str,
               now: datetime) -> None:
    at = now.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    AccessAuditModel(f"AUDIT#{patient_sub}", f"{at}#{reader_sub}", reader_sub=reader_sub, reader_role=reader_role,
                     booking_id=booking_id, what=what, at=utc_iso(now)).save()
