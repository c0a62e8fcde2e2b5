"""The optimizer's Problem for one region-day, built from plain booking and shift data.

Time axis: integer seconds since the region-day's local midnight, measured in real (UTC) seconds,
so a day with a daylight-saving change stays correct (`origin` is that midnight as a UTC instant).

What goes in:
- visits: confirmed bookings, plus en_route/arrived/completed/no_show ones, which are *locked*:
  they stay first in their clinician's route in the order finished (completed, no-show) → arrived
  → en_route (then by the previous plan's order), with their windows relaxed because they already
  happened or are under way (the clinician's current position is then the end of that locked
  prefix); a finished visit whose address was erased keeps the place the stored plan had for it;
- service minutes and the nurse visit's video call from config `visit_types`; skills doctor/nurse;
  priority 100 for an urgent booking, 10 otherwise;
- vehicles: each clinician's shift (start/end place and time) with a lunch break starting inside
  the shift's break window (the ledger's `break` {earliest, latest, minutes}, local times; default
  `homevisits.capacity.DEFAULT_BREAK`, 30 minutes starting 11:00–13:30), clipped to the shift and
  left out when the shift does not reach it — the same rule the booking side's capacity check uses;
- remote doctors: the doctors on shift for video calls (a doctor's shift with `video_calls`: no
  route, their shifts are the problem's `call_shifts`), or, when none is declared, the region's
  `remote_doctors` for the nurse visits' video calls;
- `now`: a visit not yet under way cannot start before now;
- previous plan routes: warm start, and a reassignment cost so a re-plan moves few visits;
- unkept visits (their clinician left the day and they fit nowhere else: `booking.service`'s
  shift changes) stay out (`clinician_unavailable`) until the patient moves them;
- the dispatcher's pins (`dispatch.steering`): a pinned visit may go only to its clinician (a skill
  only that clinician's vehicle has); a visit the dispatcher took out of the routes stays out
  (`unassigned_by_dispatcher`).

Imports no OR-Tools, no AWS: plain data in, a `BuiltProblem` out.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone

from homevisits.booking_state import HAPPENED, PLANNED, BookingStatus as S
from homevisits.regions import region_day_key

from dispatch.problem import Break, Job, Problem, Vehicle
from dispatch.travel_providers import ModelProvider, TravelTimeProvider

SKILLS = {"doctor": 1, "nurse": 2}
# A finished visit (done, or nobody opened) is a fact of its day: it stays first in its route,
# locked, and is never re-planned (booking_state.HAPPENED).
LOCKED_ORDER: dict[str, int] = {S.COMPLETED: 0, S.NO_SHOW: 0, S.ARRIVED: 1, S.EN_ROUTE: 2}
PRIORITY = {"urgent": 100, "normal": 10}
DEFAULT_BREAK = {"earliest": "11:00", "latest": "13:30", "minutes": 30}  # as homevisits.capacity
PIN_SKILL_BASE = 1_000_000  # vehicle id + this: a skill only that clinician has (a dispatcher's pin)
MISSED_REASON = "no_arrival_in_window"  # the window ended (plus the grace) and nobody had arrived
REASSIGNMENT_COST_S = 600  # moving a visit to another clinician costs as much as 10 minutes' driving

Point = tuple[float, float]


@dataclass(frozen=True)
class VisitInput:
    """One booking as dispatch sees it (no names, no personal numbers, no symptoms)."""

    booking_id: str
    status: str
    visit_type: str
    starts_at: datetime  # window start, UTC
    ends_at: datetime
    lat: float | None
    lon: float | None
    address: dict = field(default_factory=dict, hash=False, compare=False)  # street, city, postal_code, lat, lon
    clinician_id: str | None = None
    priority: str = "normal"
    updated_at: str = ""
    version: int = 0
    eta: str | None = None
    unkept: bool = False  # lost its clinician and fit nowhere (booking side): out of the routes until moved
    # {"declared": True, "verified": bool} when the patient declared a frikort (never its number), else None
    frikort: dict | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class ShiftInput:
    clinician_id: str
    role: str
    start: datetime  # UTC
    end: datetime
    start_location: Point
    end_location: Point
    break_window: tuple[datetime, datetime] | None = None  # UTC; earliest and latest start of the lunch
    break_minutes: int = 0
    video_calls: bool = False  # a doctor on the nurse visits' video calls: no route
    name: str | None = None


@dataclass(frozen=True)
class RegionDayInputs:
    """Everything a plan of one region-day is computed from."""

    region: object  # homevisits.regions.Region
    day: date
    visits: tuple[VisitInput, ...]
    shifts: tuple[ShiftInput, ...]
    ledger_version: int = 0
    other_visits_version: str = ""  # bookings of the day not planned (held, cancelled…), for the version

    @property
    def region_day(self) -> str:
        return region_day_key(self.region.id, self.day)

    @property
    def input_version(self) -> str:
        """Orders inputs in time: the ledger version first (every booking, cancellation and shift
        change rewrites the ledger), then the newest booking change, then the sum of booking
        versions (ties within one second). Compared as strings."""
        newest = max([v.updated_at for v in self.visits] + [self.other_visits_version], default="")
        total = sum(v.version for v in self.visits)
        return f"{self.ledger_version:010d}|{newest}|{total:08d}"

    @property
    def input_hash(self) -> str:
        """Identifies exactly what a plan is made of (what the optimizer sees, and the address text a
        dispatcher sees), so an unchanged region-day is not re-solved."""
        doc = {
            "visits": sorted([v.booking_id, v.status, v.visit_type, v.starts_at.isoformat(), v.ends_at.isoformat(),
                              v.lat, v.lon, v.priority, v.clinician_id if v.status in LOCKED_ORDER else None,
                              v.unkept, v.frikort,
                              [v.address.get(k) for k in ("street", "city", "postal_code")]]
                             for v in self.visits),
            "shifts": sorted([s.clinician_id, s.role, s.start.isoformat(), s.end.isoformat(), list(s.start_location),
                              list(s.end_location),
                              [t.isoformat() for t in s.break_window] if s.break_window else None,
                              s.break_minutes, s.video_calls, s.name]
                             for s in self.shifts),
            "remote_doctors": getattr(self.region, "remote_doctors", None),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class BuiltProblem:
    problem: Problem
    origin: datetime  # UTC instant of t = 0
    job_booking: dict  # job id -> booking id
    vehicle_clinician: dict  # vehicle id -> clinician id
    visits: dict  # booking id -> VisitInput (every planned visit, incl. excluded ones)
    shifts: dict  # clinician id -> ShiftInput
    excluded: dict  # booking id -> reason it could not enter the problem
    now_t: int | None = None
    locations: tuple = ()
    time_zone: str = "UTC"
    call_doctors: dict = field(default_factory=dict)  # clinician id -> ShiftInput of a doctor on video calls

    def booking_job(self) -> dict:
        return {b: j for j, b in self.job_booking.items()}

    def clinician_vehicle(self) -> dict:
        return {c: v for v, c in self.vehicle_clinician.items()}

    def t(self, at: datetime) -> int:
        return int(round((at - self.origin).total_seconds()))

    def at(self, t: int) -> datetime:
        return self.origin + timedelta(seconds=int(t))


def local_midnight_utc(day: date, tz) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(timezone.utc)


def parse_when(value: str, day: date, tz) -> datetime:
    """A shift time as stored: local "HH:MM" on `day`, or an ISO instant (UTC if no offset)."""
    value = str(value).strip()
    if len(value) <= 5 and ":" in value:
        hh, mm = value.split(":")
        if int(hh) == 24:
            return datetime.combine(day + timedelta(days=1), time(0, int(mm)), tzinfo=tz).astimezone(timezone.utc)
        return datetime.combine(day, time(int(hh), int(mm)), tzinfo=tz).astimezone(timezone.utc)
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _point(raw, fallback: Point | None = None) -> Point | None:
    if isinstance(raw, dict) and raw.get("lat") is not None and raw.get("lon") is not None:
        return (float(raw["lat"]), float(raw["lon"]))
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        return (float(raw[0]), float(raw[1]))
    return fallback


def shift_from_ledger(clinician_id: str, raw: dict, region, day: date) -> ShiftInput:
    """A ledger shift ({role, start, end, start_location, end_location?, break?}) as a ShiftInput.

    `end_location` defaults to `start_location`, which defaults to the region's centre; `break`
    is {"earliest": "11:00", "latest": "13:30", "minutes": 30} (local start times), default
    DEFAULT_BREAK; minutes 0 means no break."""
    tz = region.tz
    start = parse_when(raw["start"], day, tz)
    end = parse_when(raw["end"], day, tz)
    if raw.get("video_calls"):
        centre = tuple(region.center)
        return ShiftInput(clinician_id=clinician_id, role=str(raw.get("role", "doctor")), start=start, end=end,
                          start_location=centre, end_location=centre, video_calls=True, name=raw.get("name"))
    start_loc = _point(raw.get("start_location"), tuple(region.center))
    end_loc = _point(raw.get("end_location"), start_loc)
    brk = raw.get("break") if isinstance(raw.get("break"), dict) else DEFAULT_BREAK
    window = (parse_when(brk.get("earliest", DEFAULT_BREAK["earliest"]), day, tz),
              parse_when(brk.get("latest", DEFAULT_BREAK["latest"]), day, tz))
    return ShiftInput(clinician_id=clinician_id, role=str(raw.get("role", "doctor")), start=start, end=end,
                      start_location=start_loc, end_location=end_loc, break_window=window,
                      break_minutes=int(brk.get("minutes", DEFAULT_BREAK["minutes"])), name=raw.get("name"))


def build_problem(inputs: RegionDayInputs, visit_types: dict, *, travel: TravelTimeProvider | None = None,
                  previous_routes: dict | None = None, now: datetime | None = None,
                  reassignment_cost: int = REASSIGNMENT_COST_S, pins: dict | None = None,
                  known_places: dict | None = None) -> BuiltProblem:
    """The Problem for `inputs`.

    `visit_types`: id -> VisitType (config). `previous_routes`: clinician id -> ordered booking ids
    of the stored plan. `now` (UTC) keeps visits that are not under way from starting in the past.
    `pins`: booking id -> clinician id (None: kept out of the routes by the dispatcher).
    `known_places`: booking id -> (lat, lon) where the stored plan had a stop: a finished visit
    whose address was erased is still placed where it happened.
    """
    known_places = known_places or {}
    region = inputs.region
    origin = local_midnight_utc(inputs.day, region.tz)
    travel = travel or ModelProvider(getattr(region, "travel", None))
    previous_routes = previous_routes or {}

    def t(at: datetime) -> int:
        return int(round((at - origin).total_seconds()))

    now_t = t(now) if now is not None else None
    points: list[Point] = []
    index: dict[Point, int] = {}

    def loc(p: Point) -> int:
        key = (round(p[0], 6), round(p[1], 6))
        if key not in index:
            index[key] = len(points)
            points.append(key)
        return index[key]

    call_doctors = {s.clinician_id: s for s in inputs.shifts if s.video_calls}
    shifts = sorted((s for s in inputs.shifts if not s.video_calls), key=lambda s: s.clinician_id)
    vehicles, vehicle_clinician = [], {}
    for vid, s in enumerate(shifts, start=1):
        lo, hi = t(s.start), t(s.end)
        breaks = ()
        if s.break_minutes > 0 and s.break_window:
            b0 = max(t(s.break_window[0]), lo)
            b1 = min(t(s.break_window[1]), hi - s.break_minutes * 60)
            if b0 <= b1:
                breaks = (Break(1, ((b0, b1),), s.break_minutes * 60),)
        skill = SKILLS.get(s.role)
        vehicles.append(Vehicle(vid, loc(s.start_location), loc(s.end_location), (lo, hi),
                                frozenset({skill}) if skill else frozenset(), breaks=breaks))
        vehicle_clinician[vid] = s.clinician_id
    clinician_vehicle = {c: v for v, c in vehicle_clinician.items()}

    visits = {v.booking_id: v for v in inputs.visits if v.status in PLANNED}
    excluded: dict[str, str] = {}
    jobs, job_booking = [], {}
    locked_lists: dict[int, list[tuple]] = {}
    prev_pos = {b: i for seq in previous_routes.values() for i, b in enumerate(seq)}
    for jid, v in enumerate(sorted(visits.values(), key=lambda v: (v.starts_at, v.booking_id)), start=1):
        if v.status == S.MISSED:
            excluded[v.booking_id] = MISSED_REASON  # a fact of the day: listed apart, never routed
            continue
        place = (v.lat, v.lon) if v.lat is not None and v.lon is not None else None
        if place is None and v.status in HAPPENED:
            place = known_places.get(v.booking_id)
        if place is None:
            excluded[v.booking_id] = "finished" if v.status in HAPPENED else "no_location"
            continue
        vt = visit_types.get(v.visit_type)
        if vt is None:
            excluded[v.booking_id] = "unknown_visit_type"
            continue
        locked_to = clinician_vehicle.get(v.clinician_id) if v.status in LOCKED_ORDER else None
        if v.status in LOCKED_ORDER and locked_to is None:
            # Under way or done without a clinician on shift in this plan: nothing left to route.
            excluded[v.booking_id] = "clinician_not_on_shift" if v.status not in HAPPENED else "finished"
            continue
        if locked_to is None and v.unkept:
            # The capacity ledger gave its place away: planning it could push out a visit it promised.
            excluded[v.booking_id] = "clinician_unavailable"
            continue
        if locked_to is None and pins and v.booking_id in pins and pins[v.booking_id] is None:
            excluded[v.booking_id] = "unassigned_by_dispatcher"
            continue
        skill = SKILLS.get(vt.skill) if locked_to is None else None  # under way: who goes is decided
        pinned_to = clinician_vehicle.get((pins or {}).get(v.booking_id)) if locked_to is None else None
        if locked_to is not None:
            windows = ()  # it is happening or happened: its window no longer constrains the plan
        else:
            lo, hi = t(v.starts_at), t(v.ends_at)
            if now_t is not None:
                lo = max(lo, now_t)
            if lo > hi:
                excluded[v.booking_id] = "window_passed"
                continue
            windows = ((lo, hi),)
        call_s = 0 if v.status in HAPPENED else vt.video_call_minutes * 60  # a finished visit's call is over
        job_skills = {skill} if skill else set()
        if pinned_to is not None:
            job_skills.add(PIN_SKILL_BASE + pinned_to)
        jobs.append(Job(jid, loc(place), vt.service_minutes * 60, windows, frozenset(job_skills),
                        PRIORITY.get(v.priority, PRIORITY["normal"]), (), call_s))
        job_booking[jid] = v.booking_id
        if locked_to is not None:
            locked_lists.setdefault(locked_to, []).append(
                (LOCKED_ORDER[v.status], prev_pos.get(v.booking_id, 10**6), v.starts_at, jid))
    pinned_vehicles = {PIN_SKILL_BASE + vid for j in jobs for vid in [x - PIN_SKILL_BASE for x in j.skills]
                       if vid > 0}
    vehicles = [replace(v, skills=v.skills | {PIN_SKILL_BASE + v.id}) if PIN_SKILL_BASE + v.id in pinned_vehicles
                else v for v in vehicles]
    booking_job = {b: j for j, b in job_booking.items()}
    locked = {vid: tuple(x[-1] for x in sorted(items)) for vid, items in locked_lists.items()}
    locked_ids = {j for seq in locked.values() for j in seq}
    previous = {}
    for clinician, seq in previous_routes.items():
        vid = clinician_vehicle.get(clinician)
        if vid is None:
            continue
        ids = tuple(booking_job[b] for b in seq if b in booking_job and booking_job[b] not in locked_ids)
        if ids:
            previous[vid] = ids
    matrix = travel.matrix(points) if points else []
    durations = tuple(tuple(int(x) for x in row) for row in matrix)
    problem = Problem(tuple(vehicles), tuple(jobs), durations,
                      remote_doctors=getattr(region, "remote_doctors", None),
                      call_shifts=tuple(sorted((t(s.start), t(s.end)) for s in call_doctors.values())), locked=locked,
                      previous_routes=previous, reassignment_cost=reassignment_cost if previous else 0)
    return BuiltProblem(problem=problem, origin=origin, job_booking=job_booking,
                        vehicle_clinician=vehicle_clinician, visits=visits, shifts={s.clinician_id: s for s in shifts},
                        excluded=excluded, now_t=now_t, locations=tuple(points),
                        time_zone=getattr(region, "time_zone", "UTC"), call_doctors=call_doctors)
