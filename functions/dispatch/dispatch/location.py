"""POST /me/location: where the calling clinician is now, feeding their route's live ETAs.

A Lambda of its own (LocationFunction), so a phone pinging every minute or so runs the least code
with the least rights: its route's live item (OpsTable `LIVE#…` items only: GetItem, PutItem) and
the bus (EtaChanged for the patients whose ETA moved past the margin). Never the optimizer.

Refused with 400 and nothing written: coordinates out of range or outside the clinician's region
(swapped lat/lon land there), an `at` without a time zone, in the future, or older than a day's
work. A position older than the one stored is accepted and ignored (pings arrive out of order)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Optional

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from homevisits import settings
from homevisits.clock import default_clock, utc_iso
from homevisits.errors import Forbidden, InvalidRequest
from homevisits.http import current_caller, make_resolver
from homevisits.observability import get_logger
from homevisits.regions import load_config, region_day_key

logger = get_logger("location")
settings.get()  # cold start: a bad environment fails here, never in a request
app = make_resolver("location")
CLOCK_SKEW = timedelta(minutes=2)  # a phone's clock may run a little ahead
OLDEST = timedelta(hours=12)


class LocationIn(BaseModel):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="WGS 84 latitude")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="WGS 84 longitude")
    at: Optional[datetime] = Field(default=None, description="when the position was taken, ISO-8601 with a "
                                                             "time zone; default: now")


def position_time(at: datetime | None, now: datetime) -> datetime:
    """The instant a position was taken; InvalidRequest when it cannot be trusted."""
    if at is None:
        return now
    if at.tzinfo is None:
        raise InvalidRequest("at needs a time zone (e.g. 2026-12-01T09:45:00Z)", code="invalid_time")
    if at > now + CLOCK_SKEW:
        raise InvalidRequest("at is in the future", code="invalid_time")
    if at < now - OLDEST:
        raise InvalidRequest("at is too old to say where the clinician is", code="invalid_time")
    return at


@app.post("/me/location", summary="Where the calling clinician is now (feeds their route's live ETAs)")
def post_location(body: Annotated[LocationIn, Body()]):
    caller = current_caller(app).require("clinician")
    if not caller.region:
        raise Forbidden("the token carries no region", code="no_region")
    now = default_clock().now()
    at = position_time(body.at, now)
    region = load_config().region(caller.region)
    if not region.contains(body.lat, body.lon):
        raise InvalidRequest("the position is outside the clinician's region (lat and lon swapped?)",
                             code="position_outside_region")
    from dispatch import live
    region_day = region_day_key(region.id, region.local_date(at))
    stored, etas = live.record_position(region_day, caller.sub, body.lat, body.lon, at, now)
    return {"clinician_id": caller.sub, "date": region.local_date(at).isoformat(), "at": utc_iso(at), "stored": stored,
            "stops": [{"booking_id": bid, **e.as_dict()} for bid, e in etas.items()]}


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
