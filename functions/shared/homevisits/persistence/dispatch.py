"""Dispatch's tables: one plan per region-day (PlansTable), and its OpsTable items (visit-event
records, access-audit entries, the travel-time cache).

Plans are written under two guards (see docs/dispatch.md): the item's `version` (optimistic lock:
the writer must have read the plan it replaces) and `input_version` (a run computed from older
bookings/shifts than the stored plan never replaces it)."""
from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.attributes import TTLAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from homevisits.persistence.base import JSONAttribute, condition_failed, meta


class PlanModel(Model):
    """The current plan of one region-day (`stockholm#2026-12-01`).

    `routes`/`unassigned`/`kpis` hold what dispatchers see: no symptoms, no names, no personal
    numbers (addresses only, which routing needs). `input_version` orders plans by the inputs they
    were computed from (a string that sorts: ledger version, then the newest booking change);
    `input_hash` identifies the inputs exactly so an unchanged region-day is not re-solved."""

    Meta = meta("PlansTable")

    region_day = UnicodeAttribute(hash_key=True)
    region = UnicodeAttribute()
    date = UnicodeAttribute()
    input_version = UnicodeAttribute()
    input_hash = UnicodeAttribute()
    routes = JSONAttribute(default=list)
    unassigned = JSONAttribute(default=list)
    kpis = JSONAttribute(default=dict)
    computed_at = UnicodeAttribute()
    trigger = UnicodeAttribute(null=True)  # optimize | replan
    solver = JSONAttribute(null=True)  # {"time_limit_s", "computing_time_ms", "status"}
    # The PlanChanged detail not yet on the bus ({"clinicians": [...]}); removed once published, so
    # a publish that failed after the plan was stored is retried by the next run (at least once).
    announce = JSONAttribute(null=True)
    # The dispatcher's pins: {booking_id: clinician_id, or null for a visit kept out of the routes}.
    pins = JSONAttribute(null=True)
    # Visits closed as missed (nobody arrived in the window): [{"booking_id", "reason", ...}].
    missed = JSONAttribute(null=True)
    video_calls = JSONAttribute(null=True)  # the doctors' calendars of video calls (dispatch.video)
    version = VersionAttribute()


class VisitEventModel(Model):
    """One accepted visit event (pk `VISIT#{booking_id}`, sk `EVENT#{type}`): written in the same
    transaction as the booking's status change, so a repeated event finds it and is answered
    idempotently; `published` turns true once the VisitEvent reached the bus (a repeat re-publishes
    an event whose publish failed, so at-least-once holds)."""

    Meta = meta("OpsTable")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    event_id = UnicodeAttribute()
    booking_id = UnicodeAttribute()
    type = UnicodeAttribute()
    at = UnicodeAttribute()
    clinician_id = UnicodeAttribute(null=True)
    actor_sub = UnicodeAttribute()
    eta = UnicodeAttribute(null=True)
    published = BooleanAttribute(default=False)
    expires_at = TTLAttribute(null=True)


class AccessAuditModel(Model):
    """Who read which patient's data (pk `AUDIT#{patient_sub}`, sk `{iso}#{reader_sub}`): the
    patient's access-log extract reads these."""

    Meta = meta("OpsTable")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    reader_sub = UnicodeAttribute()
    reader_role = UnicodeAttribute()
    booking_id = UnicodeAttribute()
    what = UnicodeAttribute()
    at = UnicodeAttribute()


class TravelCacheModel(Model):
    """A cached travel duration between two rounded points (pk `TRAVEL#{provider}`, sk
    `{lat,lon}>{lat,lon}`), expiring after a while because roads and speeds change."""

    Meta = meta("OpsTable")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    seconds = NumberAttribute()
    expires_at = TTLAttribute(null=True)


def get_plan_item(region_day: str) -> PlanModel | None:
    try:
        return PlanModel.get(region_day, consistent_read=True)
    except DoesNotExist:
        return None


def save_plan_item(item: PlanModel, expected_version: int | None) -> bool:
    """Store a plan if the stored one is still at `expected_version` (None: there is none yet) and
    was computed from inputs no newer than this one's. False otherwise."""
    condition = None
    if expected_version is not None:
        item.version = expected_version  # PynamoDB then conditions the write on it and stores +1
        condition = PlanModel.input_version <= item.input_version
    try:
        item.save(condition=condition)
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True


def forget_announcement(region_day: str, version: int) -> bool:
    """Remove a plan's pending PlanChanged if the plan is still `version`; False otherwise."""
    try:  # the table connection: Model.update would bump the version (the plan itself is unchanged)
        PlanModel._get_connection().update_item(region_day, actions=[PlanModel.announce.remove()],
                                                condition=PlanModel.version == version)
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def get_event_item(pk: str, sk: str) -> VisitEventModel | None:
    try:
        return VisitEventModel.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None
