"""DynamoDB access of the dispatch context (through the shared PynamoDB models).

Request paths use GetItem/Query on designed keys only: bookings of a region-day through the
`by-region-day` index, the capacity ledger and the plan by `region_day`, events and audit entries
by their OpsTable keys."""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from homevisits.aws import pynamodb_settings
from homevisits.clock import parse_utc, utc_iso
from homevisits.persistence.booking import BookingModel, CapacityModel, ClinicalNoteModel
from homevisits.persistence.dispatch import AccessAuditModel, PlanModel, VisitEventModel

from dispatch.builder import PLANNED, RegionDayInputs, VisitInput, shift_from_ledger
from dispatch.plans import Plan, dispatch_address

logger = logging.getLogger(__name__)


class StalePlan(Exception):
    """The plan was not stored: a newer one (by its inputs) or a concurrent write got there first."""


def _region_day(region: str, day: date | str) -> str:
    return f"{region}#{day if isinstance(day, str) else day.isoformat()}"


# ---------------------------------------------------------------- inputs
def bookings_of_region_day(region_day: str) -> list[tuple[BookingModel, dict]]:
    """Every booking of a region-day (any status) with its raw item (for optional attributes such
    as `priority` that the shared model does not declare)."""
    conn = BookingModel._get_connection()
    out, start = [], None
    while True:
        page = conn.query(region_day, index_name="by-region-day", exclusive_start_key=start)
        for raw in page.get("Items", []):
            out.append((BookingModel.from_raw_data(raw), raw))
        start = page.get("LastEvaluatedKey")
        if not start:
            return out


def visit_input(b: BookingModel, raw: dict | None = None) -> VisitInput:
    address = b.address or {}
    priority = ((raw or {}).get("priority") or {}).get("S") or "normal"
    lat, lon = address.get("lat"), address.get("lon")
    return VisitInput(
        booking_id=b.booking_id, status=b.status, visit_type=b.visit_type,
        starts_at=parse_utc(b.starts_at), ends_at=parse_utc(b.ends_at),
        lat=float(lat) if lat is not None else None, lon=float(lon) if lon is not None else None,
        address=dispatch_address(address), clinician_id=b.clinician_id, priority=priority,
        updated_at=b.updated_at or "", version=int(b.version or 0), eta=b.eta)


def load_inputs(region, day: date) -> RegionDayInputs:
    """Bookings and shifts of a region-day, as the builder takes them."""
    rd = _region_day(region.id, day)
    visits, other_newest = [], ""
    for b, raw in bookings_of_region_day(rd):
        if b.status in PLANNED:
            visits.append(visit_input(b, raw))
        else:
            other_newest = max(other_newest, b.updated_at or "")
    try:
        ledger = CapacityModel.get(rd)
        shifts_raw, ledger_version = dict(ledger.shifts or {}), int(ledger.version or 0)
    except DoesNotExist:
        shifts_raw, ledger_version = {}, 0
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
                version=item.version, announce=item.announce)


def get_plan(region: str, day: date | str) -> Plan | None:
    try:
        return _plan_from_item(PlanModel.get(_region_day(region, day), consistent_read=True))
    except DoesNotExist:
        return None


def save_plan(plan: Plan, expected_version: int | None) -> Plan:
    """Store `plan` if the stored one is still at `expected_version` (None: there is none yet) and
    was computed from inputs no newer than this plan's. Raises StalePlan otherwise."""
    item = PlanModel(plan.region_day, region=plan.region, date=plan.date, input_version=plan.input_version,
                     input_hash=plan.input_hash, routes=plan.routes, unassigned=plan.unassigned, kpis=plan.kpis,
                     computed_at=plan.computed_at, trigger=plan.trigger, solver=plan.solver,
                     announce=plan.announce)
    condition = None
    if expected_version is not None:
        item.version = expected_version  # PynamoDB then conditions the write on it and stores +1
        condition = PlanModel.input_version <= plan.input_version
    try:
        item.save(condition=condition)
    except PutError as err:
        if _conditional_failure(err):
            raise StalePlan(f"plan of {plan.region_day} not stored: a newer or concurrent plan exists") from None
        raise
    plan.version = item.version
    return plan


def mark_announced(plan: Plan) -> bool:
    """Forget the plan's pending PlanChanged (it reached the bus). False when the stored plan is no
    longer this version (a newer plan carries its own announcement)."""
    try:  # the table connection: Model.update would bump the version (the plan itself is unchanged)
        PlanModel._get_connection().update_item(plan.region_day, actions=[PlanModel.announce.remove()],
                                                condition=PlanModel.version == plan.version)
    except UpdateError as err:
        if _conditional_failure(err):
            return False
        raise
    plan.announce = None
    return True


def _conditional_failure(err) -> bool:
    cause = getattr(err, "cause_response_code", None) or ""
    return "ConditionalCheckFailed" in cause or "TransactionCanceled" in cause


def write_etas(plan: Plan, visits: dict) -> int:
    """Copy each visit's clinician and ETA from the plan into its booking (GET /bookings/{id} shows
    them); clears them for a visit that lost its place. Only bookings still planned are touched, and
    only when something changed. Returns how many bookings were updated."""
    assigned = plan.assignments()
    n = 0
    for bid, v in visits.items():
        if v.status not in ("confirmed", "en_route"):
            continue
        clinician, eta = assigned.get(bid, (None, None))
        if (clinician, eta) == (v.clinician_id, v.eta):
            continue
        if v.status == "en_route" and clinician is None:
            continue  # under way: keep who is driving there
        b = BookingModel(booking_id=bid)
        b.version = v.version or 1
        actions = [BookingModel.eta.set(eta) if eta else BookingModel.eta.remove(),
                   BookingModel.clinician_id.set(clinician) if clinician else BookingModel.clinician_id.remove()]
        try:
            b.update(actions=actions, condition=BookingModel.status.is_in("confirmed", "en_route"),
                     add_version_condition=False)
            n += 1
        except UpdateError as err:
            if not _conditional_failure(err):
                raise
    return n


# ---------------------------------------------------------------- bookings and visit events
def get_booking(booking_id: str) -> BookingModel | None:
    try:
        return BookingModel.get(booking_id, consistent_read=True)
    except DoesNotExist:
        return None


def get_bookings(booking_ids: list[str]) -> dict:
    if not booking_ids:
        return {}
    return {b.booking_id: b for b in BookingModel.batch_get(list(dict.fromkeys(booking_ids)))}


def event_key(booking_id: str, event_type: str) -> tuple[str, str]:
    return f"VISIT#{booking_id}", f"EVENT#{event_type}"


def get_event(booking_id: str, event_type: str) -> VisitEventModel | None:
    try:
        return VisitEventModel.get(*event_key(booking_id, event_type), consistent_read=True)
    except DoesNotExist:
        return None


class TransitionConflict(Exception):
    """The booking's status (or version) changed between the read and the write."""


def apply_transition(booking: BookingModel, from_status: str, to_status: str, record: VisitEventModel,
                     now: datetime) -> None:
    """One transaction: the booking moves from `from_status` to `to_status` (conditioned on both the
    status and the version read) and the event record is created (conditioned on not existing)."""
    conn = Connection(region=BookingModel.Meta.region, **pynamodb_settings())
    try:
        with TransactWrite(connection=conn) as tx:
            actions = [BookingModel.status.set(to_status), BookingModel.updated_at.set(utc_iso(now))]
            if record.clinician_id:
                actions.append(BookingModel.clinician_id.set(record.clinician_id))
            tx.update(booking, actions=actions, condition=BookingModel.status == from_status)
            tx.save(record, condition=VisitEventModel.pk.does_not_exist())
    except TransactWriteError as err:
        if _conditional_failure(err):
            raise TransitionConflict(booking.booking_id) from None
        raise


def mark_published(record: VisitEventModel) -> None:
    record.update(actions=[VisitEventModel.published.set(True)])


# ---------------------------------------------------------------- clinical notes and audit
def clinical_notes(booking_ids: list[str], now: datetime) -> dict:
    """booking id -> symptoms, leaving out notes past their expiry (TTL deletion lags)."""
    out = {}
    if not booking_ids:
        return out
    for note in ClinicalNoteModel.batch_get(list(dict.fromkeys(booking_ids))):
        exp = note.expires_at
        if exp is not None and exp.astimezone(timezone.utc) <= now:
            continue
        out[note.booking_id] = note.symptoms
    return out


def audit_read(patient_sub: str, reader_sub: str, reader_role: str, booking_id: str, what: str,
               now: datetime) -> None:
    at = now.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    AccessAuditModel(f"AUDIT#{patient_sub}", f"{at}#{reader_sub}", reader_sub=reader_sub, reader_role=reader_role,
                     booking_id=booking_id, what=what, at=utc_iso(now)).save()
