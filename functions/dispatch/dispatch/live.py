"""Live ETAs, dispatch's side: each route's live item (homevisits.persistence.live) kept current
and patients told when their ETA moves.

The item is rewritten when a plan is stored (`for_plan` before the save, `save_pending` after it: the
route's stops in plan order, with the visit events read from their records), when a visit event
is accepted (`record_event`) and when the clinician reports a position (`record_position`).
Each write recomputes the route's ETAs (homevisits.live_eta, the region's travel model, the
stack's clock) and decides which patients to text: once per threshold, the margin from
`homevisits.settings.eta_notify_margin_minutes`. A plan's texts ride on its PlanChanged
(`eta_changes`); the others go out as one EtaChanged event. Readers recompute at read time
(`current`), so a shown ETA is never older than the read. The optimizer is never run here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from homevisits import messaging
from homevisits.clock import parse_utc, utc_iso
from homevisits.live_eta import LiveEta, next_seq, recompute, route_snapshot, tells
from homevisits.observability import get_logger
from homevisits.persistence import live as store
from homevisits.regions import load_config, parse_region_day
from homevisits.settings import eta_notify_margin_minutes

logger = get_logger("live-eta")
ATTEMPTS = 5


def _profile(region_id: str) -> dict | None:
    return load_config().region(region_id).travel or None


def _day_end(region_day: str) -> datetime:
    region_id, day = parse_region_day(region_day)
    return load_config().region(region_id).day_bounds_utc(day)[1]


def current(item, now: datetime) -> dict[str, LiveEta]:
    """The route's ETAs as of `now` (recomputed, not stored ones)."""
    return recompute(item.route(), now, _profile(parse_region_day(item.region_day)[0]))


def overlay(stops: list[dict], etas: dict[str, LiveEta], tz) -> None:
    """Show live ETAs on a plan's (or a route's) stops: `eta`, `eta_local`, `eta_state`, `late`."""
    for s in stops:
        e = etas.get(s["booking_id"])
        if e is None:
            continue
        s.update({"eta": e.eta, "eta_local": parse_utc(e.eta).astimezone(tz).strftime("%H:%M"),
                  "eta_state": e.state, "late": e.late})


def _tz(region_id: str):
    return load_config().region(region_id).tz


def ready_for_calls(items: dict, now: datetime) -> dict[str, datetime]:
    """booking id -> when its nurse is expected to be ready for the video call (live ETA + service),
    from the region-day's live items."""
    from datetime import timedelta
    out: dict[str, datetime] = {}
    for item in items.values():
        if not item.stops:
            continue
        service = {s["booking_id"]: int(s.get("service_s") or 0) for s in item.stops}
        for bid, e in current(item, now).items():
            out[bid] = parse_utc(e.eta) + timedelta(seconds=service.get(bid, 0))
    return out


def show_calls(video: dict | None, stops: list[dict], doctor_calls: list[dict] | None, items: dict,
               now: datetime, tz) -> None:
    """The video calls as now expected (dispatch.video.expected_slots: the nurses' live ETAs, each
    doctor's calls in order, never overlapping) on `stops`' `video_call` and on `doctor_calls`."""
    from dispatch.video import expected_slots
    slots = expected_slots(video, ready_for_calls(items, now))

    def put(d: dict, bid: str) -> None:
        if bid in slots:
            a, e = slots[bid]
            d.update({"expected_start": utc_iso(a), "expected_start_local": a.astimezone(tz).strftime("%H:%M"),
                      "expected_end": utc_iso(e), "expected_end_local": e.astimezone(tz).strftime("%H:%M")})

    for s in stops:
        if s.get("video_call"):
            put(s["video_call"], s["booking_id"])
    for c in doctor_calls or []:
        put(c, c["booking_id"])


def show_on_plan(plan, now: datetime) -> None:
    """The dispatcher's plan as of `now`: each stop's live ETA, the video calls as now expected, and
    the on-time KPIs from the actual arrivals and the live ETAs (one Query of the region-day's live
    items)."""
    from dispatch.kpis import DEFAULT_LATE_RISK_MINUTES, timeliness
    items = store.routes_of_day(plan.region_day)
    tz = _tz(plan.region)
    for r in plan.routes:
        item = items.get(r["clinician_id"])
        if item is not None:
            overlay(r["stops"], current(item, now), tz)
    if plan.video_calls:
        show_calls(plan.video_calls, [s for r in plan.routes for s in r["stops"]],
                   [c for d in plan.video_calls.get("doctors", []) for c in d.get("calls", [])], items, now, tz)
    plan.kpis = {**plan.kpis, **timeliness(plan.routes, plan.unassigned,
                                           int(plan.kpis.get("late_risk_minutes", DEFAULT_LATE_RISK_MINUTES)))}


def show_on_route(route: dict, region_day: str, clinician_id: str, now: datetime, plan=None) -> dict:
    """A clinician's route (GET /me/route) with each stop's live ETA as of `now`; with video calls
    (a nurse's, or a doctor's calendar) their expected times too, from every route's live item
    (one Query then, else one GetItem)."""
    tz = _tz(parse_region_day(region_day)[0])
    calls = route.get("video_calls")
    if plan is not None and plan.video_calls and (calls or any(s.get("video_call") for s in route.get("stops", []))):
        items = store.routes_of_day(region_day)
        item = items.get(clinician_id)
        if item is not None and route.get("stops"):
            overlay(route["stops"], current(item, now), tz)
        show_calls(plan.video_calls, route.get("stops", []), calls, items, now, tz)
        return route
    item = store.get_route(region_day, clinician_id) if route.get("stops") else None
    if item is not None:
        overlay(route["stops"], current(item, now), tz)
    return route


# ---------------------------------------------------------------- a plan being stored
@dataclass
class Pending:
    """The live items of a plan not yet stored, and the ETA changes to tell its patients."""
    items: list = field(default_factory=list)
    eta_changes: list = field(default_factory=list)


def for_plan(plan, shifts: dict, now: datetime, *, events_of) -> Pending:
    """Recompute the ETAs of `plan`'s routes from what happened (and overlay them on its stops, so
    the stored plan, its KPIs and the bookings' copies are live); the items to store after it.

    `shifts`: clinician id -> ShiftInput (its start place); `events_of(booking ids)` ->
    {booking id: {event type: iso}} from the visit-event records."""
    from zoneinfo import ZoneInfo
    tz = ZoneInfo(load_config().region(plan.region).time_zone)
    existing = store.routes_of_day(plan.region_day)
    told_before: dict = {}
    for it in existing.values():
        told_before.update(it.told or {})
    under_way = [s["booking_id"] for r in plan.routes for s in r["stops"] if s.get("status") != "confirmed"]
    facts = events_of(under_way) if under_way else {}
    margin = eta_notify_margin_minutes()
    profile = _profile(plan.region)
    pending = Pending()
    planned = set()
    for r in plan.routes:
        cid = r["clinician_id"]
        planned.add(cid)
        shift = shifts.get(cid)
        place = shift.start_location if shift is not None else (None, None)
        item = existing.get(cid) or store.new_route(plan.region_day, cid, _day_end(plan.region_day))
        snap = route_snapshot(r["stops"], {"lat": place[0], "lon": place[1], "at": r["start_at"]}, r.get("breaks", []))
        ids = [s["booking_id"] for s in snap["stops"]]
        known = item.events or {}
        item.start, item.stops, item.breaks = snap["start"], snap["stops"], snap["breaks"]
        item.events = {b: {**known.get(b, {}), **facts.get(b, {})} for b in ids if known.get(b) or facts.get(b)}
        etas = recompute(item.route(), now, profile)
        overlay(r["stops"], etas, tz)
        changes, item.told = tells(etas, {b: told_before[b] for b in ids if b in told_before}, margin)
        pending.eta_changes += changes
        pending.items.append(item)
    for cid, item in existing.items():
        if cid not in planned and item.stops:
            item.stops, item.breaks = [], []  # off the plan (no shift any more): nothing to estimate
            pending.items.append(item)
    return pending


def save_pending(pending: Pending, plan_version: int | None, now: datetime) -> None:
    """Write a stored plan's live items. A item written meanwhile (a ping, an event) keeps its
    newer position, events and what its patients heard; the plan's stops replace the old ones.
    Then the texts are decided again against what was heard (the plan's own decisions were taken
    against an older record, and notifications drop a decision the record has moved past): the
    moves found are published as one EtaChanged once the item is stored."""
    for item in pending.items:
        item.plan_version, item.updated_at = plan_version or 0, utc_iso(now)
        changes: list = []
        for _ in range(ATTEMPTS):
            if store.save_route(item):
                if changes:
                    publish_eta_changes(item.region_day, changes)
                break
            fresh = store.get_route(item.region_day, item.clinician_id)
            if fresh is None:
                item.version = None
                continue
            ids = {s["booking_id"] for s in item.stops}
            fresh_events = fresh.events or {}
            item.events = {b: {**(item.events or {}).get(b, {}), **fresh_events.get(b, {})}
                           for b in ids if (item.events or {}).get(b) or fresh_events.get(b)}
            item.position = fresh.position
            heard = {**(item.told or {}), **{b: v for b, v in (fresh.told or {}).items() if b in ids}}
            changes, item.told = tells(current(item, now), heard, eta_notify_margin_minutes()) \
                if item.stops else ([], heard)
            item.version = fresh.version
        else:
            logger.warning("live route not stored after retries", extra={"region_day": item.region_day})


# ---------------------------------------------------------------- events and positions
def _update(region_day: str, clinician_id: str, now: datetime, change, *, announce: bool = True,
            create: bool = False) -> dict[str, LiveEta] | None:
    """Read the live item, apply `change(item)` (False: nothing to do), recompute, decide the texts,
    write it under its version (again from a fresh read if someone wrote meanwhile), then publish
    the texts as one EtaChanged. The route's ETAs, or None without a live item."""
    for _ in range(ATTEMPTS):
        item = store.get_route(region_day, clinician_id)
        if item is None:
            if not create:
                return None
            item = store.new_route(region_day, clinician_id, _day_end(region_day))
        if change(item) is False:
            return current(item, now)
        etas = current(item, now)
        changes, item.told = tells(etas, item.told or {}, eta_notify_margin_minutes())
        item.updated_at = utc_iso(now)
        if not store.save_route(item):
            continue
        if changes and announce:
            publish_eta_changes(region_day, changes)
        return etas
    logger.warning("live route not updated after retries", extra={"region_day": region_day})
    return None


def refresh_day(region_day: str, now: datetime) -> int:
    """The clock moved with no event or ping (a visit running over, a clinician stuck): recompute
    every route of the region-day and tell the patients whose ETA crossed a threshold meanwhile.
    Writes only the routes whose patients are told. The number of patients told."""
    told = 0
    for item in store.routes_of_day(region_day).values():
        if not item.stops:
            continue
        changes, new_told = tells(current(item, now), item.told or {}, eta_notify_margin_minutes())
        if not changes:
            continue
        item.told, item.updated_at = new_told, utc_iso(now)
        if store.save_route(item):  # lost to a ping or an event: that write told them already
            publish_eta_changes(region_day, changes)
            told += len(changes)
    return told


def publish_eta_changes(region_day: str, changes: list[dict]) -> None:
    try:
        messaging.publish(messaging.SOURCE_DISPATCH, "EtaChanged", {"region_day": region_day, "eta_changes": changes})
    except Exception as err:  # noqa: BLE001 - an ETA text is advice: the visit goes on without it
        logger.error("EtaChanged not published", extra={"region_day": region_day, "error_type": type(err).__name__})


def eta_after_event(booking, clinician_id: str | None, event_type: str, at: datetime) -> str | None:
    """The live ETA of `booking` if `event_type` happened at `at` (nothing written): what the
    "on the way" text says. None when the route has no live item (no plan yet)."""
    item = store.get_route(booking.region_day, clinician_id) if clinician_id else None
    if item is None or not any(s["booking_id"] == booking.booking_id for s in item.stops or []):
        return None
    item.events = {**(item.events or {}), booking.booking_id: {**(item.events or {}).get(booking.booking_id, {}),
                                                               event_type: utc_iso(at)}}
    e = current(item, at).get(booking.booking_id)
    return e.eta if e else None


def record_event(booking, clinician_id: str | None, event_type: str, at: datetime, told_eta: str | None = None) -> None:
    """An accepted visit event on the clinician's live route: the route's ETAs move, patients
    whose ETA moved past the margin are told; `told_eta`: what this visit's patient was just told
    (the "on the way" text), so it is not told twice."""
    if not clinician_id:
        return
    bid = booking.booking_id

    def change(item):
        events = dict(item.events or {})
        events[bid] = {**events.get(bid, {}), event_type: utc_iso(at)}
        item.events = events
        if told_eta:  # the text said this ETA, and so said the window will be missed if it will
            window_end = next((st["window_end_at"] for st in item.stops or [] if st["booking_id"] == bid), None)
            late = bool(window_end) and parse_utc(told_eta) > parse_utc(window_end)
            # a decision of what the patient hears like any other: a text delayed since is stale
            heard = (item.told or {}).get(bid)
            item.told = {**(item.told or {}), bid: {"eta": told_eta, "late": late, "seq": next_seq(heard)}}

    try:
        _update(booking.region_day, clinician_id, at, change)
    except Exception as err:  # noqa: BLE001 - the event is recorded; the next plan rebuilds the item
        logger.error("live route not updated for a visit event", extra={"error_type": type(err).__name__})


def record_position(region_day: str, clinician_id: str, lat: float, lon: float, at: datetime,
                    now: datetime) -> tuple[bool, dict[str, LiveEta]]:
    """The clinician's position at `at`; an older one than the stored position is ignored (pings
    arrive out of order). (stored, the route's ETAs as of `now`)."""
    stored = {"value": False}

    def change(item):
        old = item.position
        if old and old.get("at") and parse_utc(old["at"]) >= at:
            return False
        item.position = {"lat": lat, "lon": lon, "at": utc_iso(at)}
        stored["value"] = True
        return True

    etas = _update(region_day, clinician_id, now, change, create=True)
    return stored["value"], etas or {}
