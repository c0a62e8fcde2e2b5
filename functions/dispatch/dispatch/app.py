"""Lambda entry of the dispatch function: plans, the clinician's route, visit events.

Thin: parse → domain → response. OR-Tools is imported only inside the optimize path
(`dispatch.worker.replan`), so this module (and the OpenAPI document) stays light."""
from __future__ import annotations

from datetime import date as date_cls
from typing import Annotated, Literal, Optional

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Field

from homevisits import messaging, settings
from homevisits.clock import default_clock
from homevisits.errors import Conflict, Forbidden, InvalidRequest, NotFound
from homevisits.http import current_caller, make_resolver
from homevisits.observability import get_logger
from homevisits.regions import load_config
from homevisits.schema import Schema

logger = get_logger("dispatch")
settings.get()  # cold start: a bad environment fails here, never in a request
app = make_resolver("dispatch")

RegionId = Annotated[str, Path(max_length=40, pattern=r"^[a-z][a-z0-9-]*$")]
DateStr = Annotated[str, Path(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class OptimizeIn(Schema):
    time_limit_s: Optional[float] = Field(default=None, gt=0, le=settings.SOLVER_TIME_LIMIT_MAX_S,
                                          description="solver budget in seconds (wall time)")


class MoveIn(Schema):
    booking_id: str = Field(max_length=80)
    clinician_id: Optional[str] = Field(max_length=80, description="null takes the visit out of the routes")
    position: Optional[int] = Field(default=None, ge=0, le=500, description="index among the clinician's stops; "
                                                                            "absent: the best place")
    pin: bool = Field(default=False, description="keep the visit with that clinician in later re-plans")
    plan_version: int = Field(ge=1, description="the version of the plan the dispatcher saw")


class VisitEventIn(Schema):
    type: Literal["on_the_way", "arrived", "completed", "no_show"]


def _day(value: str):
    try:
        return date_cls.fromisoformat(value)
    except ValueError:
        raise InvalidRequest("date must be YYYY-MM-DD", code="invalid_date") from None


@app.get("/regions/<region>/plans/<date>", summary="The region-day's plan: routes, ETAs, unassigned, KPIs")
def get_plan(region: RegionId, date: DateStr):
    current_caller(app).require_dispatcher_of(region)
    load_config().region(region)
    from dispatch import live, repository
    plan = repository.get_plan(region, _day(date))
    if plan is None:
        raise NotFound(f"no plan for {region} on {date} yet", code="no_plan")
    live.show_on_plan(plan, default_clock().now())
    return plan.to_public()


@app.post("/regions/<region>/plans/<date>/optimize", summary="Re-plan the region-day now")
def optimize(region: RegionId, date: DateStr, body: Annotated[Optional[OptimizeIn], Body()] = None,
             time_limit_s: Annotated[Optional[float], Query(gt=0, le=settings.SOLVER_TIME_LIMIT_MAX_S)] = None):
    current_caller(app).require_dispatcher_of(region)
    load_config().region(region)
    from dispatch import repository
    from dispatch.worker import optimize_budget, replan
    requested = time_limit_s if time_limit_s is not None else (body.time_limit_s if body else None)
    try:
        result = replan(region, _day(date), time_limit_s=optimize_budget(requested),
                        trigger="optimize", force=True)
    except repository.StalePlan:
        raise Conflict("the plan changed while optimizing; try again", code="plan_conflict") from None
    return {**result.plan.to_public(), "stored": result.stored}


@app.post("/regions/<region>/plans/<date>/moves",
          summary="Move a visit to a clinician and position, pin or unpin it, or take it out of the routes")
def move_visit(region: RegionId, date: DateStr, body: Annotated[MoveIn, Body()]):
    current_caller(app).require_dispatcher_of(region)
    load_config().region(region)
    from dispatch import repository
    from dispatch.steering import Move, MoveRefused
    from dispatch.worker import steer
    move = Move(body.booking_id, body.clinician_id, body.position, body.pin)
    try:
        plan = steer(region, _day(date), move, plan_version=body.plan_version)
    except repository.StalePlan as err:
        raise Conflict(str(err) + "; reload the plan", code="plan_version_conflict") from None
    except MoveRefused as err:
        raise Conflict(str(err), code=err.code, details=err.details) from None
    except (LookupError, KeyError):
        raise NotFound("no such visit in this day's plan", code="not_in_plan") from None
    return plan.to_public()


@app.get("/me/route", summary="The calling clinician's stops of a day, in order, with ETAs (a doctor on "
                               "video calls: their calendar of calls)")
def my_route(date: Annotated[Optional[str], Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None):
    caller = current_caller(app).require("clinician")
    if not caller.region:
        raise Forbidden("the token carries no region", code="no_region")
    from dispatch import live, repository
    from dispatch.plans import clinician_route
    from homevisits.regions import region_day_key
    now = default_clock().now()
    region = load_config().region(caller.region)
    day = _day(date) if date else region.local_date(now)
    plan = repository.get_plan(region.id, day)
    route = clinician_route(caller, region.id, day, now, repo=repository, plan=plan)
    return live.show_on_route(route, region_day_key(region.id, day), caller.sub, now, plan=plan)


@app.post("/visits/<id>/events", summary="Mark a visit on the way, arrived, completed or no-show")
def visit_event(id: Annotated[str, Path(max_length=80)], body: Annotated[VisitEventIn, Body()]):
    caller = current_caller(app)
    from dispatch import live, repository
    from dispatch.visits import record_visit_event
    return record_visit_event(id, body.type, caller, default_clock().now(), repo=repository, live=live,
                              publish=lambda detail: messaging.publish(messaging.SOURCE_DISPATCH, "VisitEvent", detail))


@app.get("/console", summary="The dispatcher console (a self-contained page; it calls this API with a token)",
         include_in_schema=False)
def console():
    from dispatch.console import console_html
    config = settings.get()
    return _page(console_html(config.console_tile_url, config.console_tile_attribution))


def _page(html: str) -> Response:
    """A page of the function's own (no data inside): never cached, no referrer leaves it."""
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=html,
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@app.get("/console/assets/<name>", summary="The console's map library (Leaflet, from npm)", include_in_schema=False)
def console_asset(name: Annotated[str, Path(max_length=40)]):
    from dispatch.console import console_asset as asset
    found = asset(name)
    if found is None:
        raise NotFound("no such asset", code="not_found")
    body, content_type = found
    return Response(status_code=200, content_type=content_type, body=body.decode("utf-8"),
                    headers={"Cache-Control": "public, max-age=3600"})


@app.get("/clinician", summary="The clinician's phone page (self-contained; it calls this API with a token)",
         include_in_schema=False)
def clinician_page():
    from dispatch.clinician_page import clinician_html
    return _page(clinician_html())


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
