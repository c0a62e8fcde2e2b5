"""The live state of each clinician's route (OpsTable, pk `LIVE#{region_day}`, sk `ROUTE#{clinician}`).

One small item per route, written when a plan is stored (the route's stops, from the plan), when
a visit event is accepted and when the clinician reports a position; read by every ETA reader
(the patient's booking, the clinician's route, the dispatcher's plan), who recompute the ETAs from
it with `homevisits.live_eta` at the time they read. Never the optimizer: one GetItem and one
conditional PutItem per ping. Holds routing data only (coordinates, windows, event times).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DoesNotExist, PutError

from pynamodb.models import Model

from homevisits.persistence.base import JSONAttribute, condition_failed, meta

PK_PREFIX = "LIVE#"
SK_PREFIX = "ROUTE#"
KEEP_DAYS = 3  # the live state is of no use after its day; the plan and the events stay


class LiveRouteModel(Model):
    """What `homevisits.live_eta.recompute` reads (start, stops, breaks, events, position), the
    plan version the stops came from, and `told`: booking id -> {"eta", "late", "seq"}, what each
    patient last heard (so an SMS goes once per threshold) and the number of that decision (the
    ETA texts' identity: homevisits.live_eta.tells)."""

    Meta = meta("OpsTable")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    region_day = UnicodeAttribute()
    clinician_id = UnicodeAttribute()
    plan_version = NumberAttribute(default=0)
    start = JSONAttribute(null=True)
    stops = JSONAttribute(default=list)
    breaks = JSONAttribute(default=list)
    events = JSONAttribute(default=dict)
    position = JSONAttribute(null=True)
    told = JSONAttribute(default=dict)
    updated_at = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    version = VersionAttribute()

    def route(self) -> dict:
        """The route as `homevisits.live_eta.recompute` takes it."""
        return {"start": self.start, "stops": self.stops or [], "breaks": self.breaks or [],
                "events": self.events or {}, "position": self.position}


def key(region_day: str, clinician_id: str) -> tuple[str, str]:
    return f"{PK_PREFIX}{region_day}", f"{SK_PREFIX}{clinician_id}"


def new_route(region_day: str, clinician_id: str, day_end: datetime) -> LiveRouteModel:
    return LiveRouteModel(*key(region_day, clinician_id), region_day=region_day, clinician_id=clinician_id,
                          expires_at=day_end + timedelta(days=KEEP_DAYS))


def get_route(region_day: str, clinician_id: str) -> LiveRouteModel | None:
    try:
        return LiveRouteModel.get(*key(region_day, clinician_id), consistent_read=True)
    except DoesNotExist:
        return None


def routes_of_day(region_day: str) -> dict[str, LiveRouteModel]:
    """clinician id -> live route, for every route of the region-day (one Query)."""
    return {r.clinician_id: r for r in LiveRouteModel.query(f"{PK_PREFIX}{region_day}", consistent_read=True)}


def save_route(item: LiveRouteModel) -> bool:
    """Write the item if nobody wrote it since it was read (its version); False when someone did."""
    try:
        item.save()
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True
