"""Plans: what an optimizer Solution means for a region-day, in the words of dispatch.

A plan holds, per clinician, the ordered stops with ETAs (UTC ISO and local HH:MM), breaks and
driving minutes; the visits left unassigned with a reason; and KPIs. It never holds symptoms,
names or personal numbers: only what routing needs (address, window, visit type, duration).
Pure: no AWS, no OR-Tools.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from homevisits.booking_state import BookingStatus as S
from homevisits.clock import utc_iso
from homevisits.regions import region_day_key

from dispatch.builder import BuiltProblem
from dispatch.kpis import DEFAULT_LATE_RISK_MINUTES, compute_kpis
from dispatch.video import assign_calls

ADDRESS_FIELDS_FOR_DISPATCH = ("street", "city", "postal_code", "lat", "lon")


@dataclass
class Plan:
    region: str
    date: str
    routes: list
    unassigned: list
    kpis: dict
    computed_at: str
    input_version: str
    input_hash: str
    trigger: str = "replan"
    solver: dict = field(default_factory=dict)
    version: int | None = None  # the stored item's version (None before it is stored)
    announce: dict | None = None  # the PlanChanged detail still to publish (see PlanModel.announce)
    pins: dict = field(default_factory=dict)  # booking id -> clinician id, or None: kept out (dispatch.steering)
    missed: list = field(default_factory=list)  # visits nobody arrived at in their window (closed as missed)
    video_calls: dict = field(default_factory=dict)  # the doctors' calendars of calls (dispatch.video)

    def keep_pins(self, pins: dict) -> None:
        """Carry the dispatcher's pins into this plan (of visits it still has) and mark their stops."""
        known = {s["booking_id"] for r in self.routes for s in r["stops"]} | {u["booking_id"] for u in self.unassigned}
        self.pins = {b: c for b, c in (pins or {}).items() if b in known}
        for r in self.routes:
            for s in r["stops"]:
                s["pinned"] = self.pins.get(s["booking_id"]) == r["clinician_id"]

    @property
    def region_day(self) -> str:
        return region_day_key(self.region, self.date)

    def assignments(self) -> dict:
        """booking id -> (clinician id, eta) for every routed stop."""
        return {s["booking_id"]: (r["clinician_id"], s["eta"]) for r in self.routes for s in r["stops"]}

    def route_of(self, clinician_id: str) -> dict | None:
        return next((r for r in self.routes if r["clinician_id"] == clinician_id), None)

    def to_public(self) -> dict:
        """The body of GET /regions/{region}/plans/{date}."""
        return {"version": self.version, "region": self.region, "date": self.date, "routes": self.routes,
                "unassigned": self.unassigned, "missed": self.missed, "kpis": self.kpis, "computed_at": self.computed_at,
                "video_calls": self.video_calls or {"doctors": [], "unassigned": []},
                "input_version": self.input_version, "trigger": self.trigger,
                "pins": [{"booking_id": b, "clinician_id": c} for b, c in sorted(self.pins.items())]}


def _local_hhmm(at: datetime, tz) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def dispatch_address(address: dict | None) -> dict:
    """The part of an address a dispatcher may see (never the door code)."""
    return {k: (address or {}).get(k) for k in ADDRESS_FIELDS_FOR_DISPATCH}


def _stop_address(visit, place) -> dict:
    """The stop's address as a dispatcher sees it; where it was erased (a finished visit), still the
    place the visit happened, so the plan keeps its route and the next re-plan finds it there."""
    address = dispatch_address(visit.address or {"lat": visit.lat, "lon": visit.lon})
    if address.get("lat") is None or address.get("lon") is None:
        address.update(lat=place[0], lon=place[1])
    return address


def unassigned_reason(built: BuiltProblem, job_id: int) -> str:
    p = built.problem
    job = p.job_by_id()[job_id]
    if not any(job.skills <= v.skills for v in p.vehicles):
        return "no_clinician_with_skill"
    if job.video_call_seconds and (p.remote_doctors == 0 if not p.call_shifts else not _call_fits(p, job)):
        return "no_remote_doctor"
    return "no_capacity"


def _call_fits(problem, job) -> bool:
    """Can `job`'s video call lie inside one stretch of the doctors on shift at some time of its window?"""
    from homevisits import video_calls
    segs = video_calls.segments(problem.call_shifts)
    wins = job.time_windows or ((0, 2**31 - 1),)
    return any(max(a, c - job.service) <= min(b, d - job.service)
               for a, b in wins for c, d in video_calls.call_start_windows(segs, job.video_call_seconds))


def plan_from_solution(built: BuiltProblem, solution, *, region: str, date: str, computed_at: datetime,
                       input_version: str, input_hash: str, trigger: str = "replan",
                       late_risk_minutes: int = DEFAULT_LATE_RISK_MINUTES) -> Plan:
    """Turn a Solution of `built.problem` into a Plan (ETAs are service starts)."""
    problem = built.problem
    tz = ZoneInfo(built.time_zone)
    if solution.routes:
        solution = earliest_times(problem, solution)
    jobs = problem.job_by_id()
    vehicles = problem.vehicle_by_id()
    locked_ids = {j for seq in problem.locked.values() for j in seq}
    routes = []
    for r in solution.routes:
        v = vehicles[r.vehicle]
        clinician = built.vehicle_clinician[r.vehicle]
        shift = built.shifts[clinician]
        stops, breaks = [], []
        locs = [v.start]
        for step in r.steps:
            if step.type == "job":
                job = jobs[step.id]
                bid = built.job_booking[step.id]
                visit = built.visits[bid]
                eta = built.at(step.arrival)
                locs.append(job.location)
                stops.append({
                    "booking_id": bid, "eta": utc_iso(eta), "eta_local": _local_hhmm(eta, tz),
                    "window_start": _local_hhmm(visit.starts_at, tz), "window_end": _local_hhmm(visit.ends_at, tz),
                    "window_start_at": utc_iso(visit.starts_at), "window_end_at": utc_iso(visit.ends_at),
                    "visit_type": visit.visit_type, "service_minutes": job.service // 60,
                    "video_call_minutes": job.video_call_seconds // 60,
                    "address": _stop_address(visit, built.locations[job.location]),
                    "status": visit.status, "locked": step.id in locked_ids, "priority": visit.priority,
                    "frikort": visit.frikort,
                })
            elif step.type == "break":
                start = built.at(step.arrival)
                end = built.at(step.arrival + step.service)
                breaks.append({"start": utc_iso(start), "end": utc_iso(end), "start_local": _local_hhmm(start, tz),
                               "end_local": _local_hhmm(end, tz), "minutes": step.service // 60})
        locs.append(v.end)
        legs = [(a, b) for a, b in zip(locs, locs[1:]) if a is not None and b is not None]
        driving_s = sum(problem.durations[a][b] for a, b in legs)
        first, last = r.steps[0], r.steps[-1]
        routes.append({
            "clinician_id": clinician, "role": shift.role, "name": shift.name,
            "shift_start": utc_iso(shift.start), "shift_end": utc_iso(shift.end),
            "start_at": utc_iso(built.at(first.arrival)), "end_at": utc_iso(built.at(last.arrival)),
            "stops": stops, "breaks": breaks, "driving_minutes": round(driving_s / 60, 1),
        })
    routes.sort(key=lambda r: r["clinician_id"])
    video = assign_calls(built, routes)
    unassigned = []
    for jid in solution.unassigned:
        bid = built.job_booking[jid]
        visit = built.visits[bid]
        unassigned.append({"booking_id": bid, "reason": unassigned_reason(built, jid),
                           "visit_type": visit.visit_type, "window_start": _local_hhmm(visit.starts_at, tz),
                           "window_end": _local_hhmm(visit.ends_at, tz), "status": visit.status,
                           "priority": visit.priority, "frikort": visit.frikort})
    missed = []
    for bid, reason in sorted(built.excluded.items()):
        visit = built.visits[bid]
        if reason == "finished":  # it happened (or nobody opened): never "unassigned"
            continue
        if visit.status == S.MISSED:
            missed.append({"booking_id": bid, "reason": reason, "visit_type": visit.visit_type,
                           "window_start": _local_hhmm(visit.starts_at, tz),
                           "window_end": _local_hhmm(visit.ends_at, tz), "clinician_id": visit.clinician_id,
                           "status": visit.status})
            continue
        unassigned.append({"booking_id": bid, "reason": reason, "visit_type": visit.visit_type,
                           "window_start": _local_hhmm(visit.starts_at, tz),
                           "window_end": _local_hhmm(visit.ends_at, tz), "status": visit.status,
                           "priority": visit.priority, "frikort": visit.frikort})
    shift_seconds = sum(int((s.end - s.start).total_seconds()) for s in built.shifts.values())
    kpis = compute_kpis(routes, unassigned, shift_seconds, late_risk_minutes, len(built.shifts))
    solver = {"computing_time_ms": getattr(solution, "computing_time_ms", 0), "status": getattr(solution, "status", "")}
    return Plan(region=region, date=date, routes=routes, unassigned=unassigned, kpis=kpis,
                computed_at=utc_iso(computed_at), input_version=input_version, input_hash=input_hash,
                trigger=trigger, solver=solver, missed=missed, video_calls=video)


def changed_clinicians(old_routes: list | None, new_routes: list) -> list[str]:
    """Clinicians whose ordered list of stops differs between two plans (added or removed routes
    included): they are the ones to tell that their route changed."""
    def seqs(routes):
        return {r["clinician_id"]: [s["booking_id"] for s in r.get("stops", [])] for r in routes or []}
    old, new = seqs(old_routes), seqs(new_routes)
    return sorted(c for c in set(old) | set(new) if old.get(c, []) != new.get(c, []))


def known_places(plan: Plan | None) -> dict:
    """booking id -> (lat, lon) of every stop of a stored plan (where its visits were placed)."""
    out = {}
    for r in (plan.routes if plan else []):
        for s in r["stops"]:
            a = s.get("address") or {}
            if a.get("lat") is not None and a.get("lon") is not None:
                out[s["booking_id"]] = (float(a["lat"]), float(a["lon"]))
    return out


def previous_routes(plan: Plan | None) -> dict:
    """clinician id -> ordered booking ids of a stored plan (warm start and stability)."""
    if plan is None:
        return {}
    return {r["clinician_id"]: [s["booking_id"] for s in r["stops"]] for r in plan.routes}


def plan_as_vroom_output(plan: Plan, built: BuiltProblem) -> dict:
    """A stored plan in the solver contract's output shape, on `built`'s time axis and ids, so the
    independent feasibility checker (`dispatch.feasibility.check`) can verify what was stored."""
    def t(iso: str) -> int:
        return built.t(datetime.fromisoformat(iso.replace("Z", "+00:00")))

    booking_job = built.booking_job()
    clinician_vehicle = built.clinician_vehicle()
    routes = []
    for r in plan.routes:
        vid = clinician_vehicle[r["clinician_id"]]
        steps = [{"type": "start", "arrival": t(r["start_at"])}]
        timed = [(t(s["eta"]), 1, {"type": "job", "id": booking_job[s["booking_id"]], "arrival": t(s["eta"])})
                 for s in r["stops"]]
        timed += [(t(b["start"]), 0, {"type": "break", "id": 1, "arrival": t(b["start"])}) for b in r["breaks"]]
        steps += [step for _, _, step in sorted(timed, key=lambda x: (x[0], x[1]))]
        steps.append({"type": "end", "arrival": t(r["end_at"])})
        routes.append({"vehicle": vid, "steps": steps})
    unassigned = [{"id": booking_job[u["booking_id"]]} for u in plan.unassigned if u["booking_id"] in booking_job]
    return {"routes": routes, "unassigned": unassigned}


ROUTE_READ = "route:address,door_code,phone,first_name,symptoms"


def _first_name(person: dict | None) -> str | None:
    name = ((person or {}).get("name") or "").strip()
    return name.split()[0] if name else None


def clinician_route(caller, region: str, day, now: datetime, *, repo, plan=False) -> dict:
    """The calling clinician's stops of `day` from the stored plan, with what the visit needs: the
    full address (door code included), the patient's first name and phone, and the symptoms —
    only for visits on their own route, only while the clinical note has not expired. Each read of
    a patient's data is written to that patient's access log.

    `repo`: get_plan, get_bookings, clinical_notes, audit_read (dispatch.repository); `plan`: the
    stored plan when the caller read it already (None: there is none)."""
    if plan is False:
        plan = repo.get_plan(region, day)
    route = plan.route_of(caller.sub) if plan else None
    body = {"clinician_id": caller.sub, "region": region, "date": day.isoformat(),
            "plan_version": plan.version if plan else None, "stops": [], "breaks": []}
    doctor = next((d for d in (plan.video_calls if plan else {}).get("doctors", []) if d["clinician_id"] == caller.sub),
                  None)
    if doctor is not None:
        body["video_calls"] = doctor_calls(caller, region, doctor, now, repo=repo)
        body.update({"shift_start": doctor["shift_start"], "shift_end": doctor["shift_end"]})
    if route is None:
        return body
    ids = [s["booking_id"] for s in route["stops"]]
    bookings = repo.get_bookings(ids)
    notes = repo.clinical_notes(ids, now)
    stops = []
    for s in route["stops"]:
        b = bookings.get(s["booking_id"])
        if b is None or b.region != region or b.status in (S.CANCELLED, S.EXPIRED, S.HELD):
            continue  # cancelled since the plan was made: nothing of that patient is shown
        patient = b.patient or {}
        child = b.for_child or None
        stops.append({
            **{k: s[k] for k in ("booking_id", "eta", "eta_local", "window_start", "window_end", "visit_type",
                                 "service_minutes", "video_call_minutes")},
            **({"video_call": s["video_call"]} if s.get("video_call") else {}),
            "status": b.status,
            "address": {k: (b.address or {}).get(k) for k in ("street", "city", "postal_code", "door_code",
                                                              "lat", "lon")},
            "patient": {"first_name": _first_name(child) if child else _first_name(patient),
                        "phone": patient.get("phone"), "is_child": bool(child)},
            "symptoms": notes.get(b.booking_id),
        })
        repo.audit_read(b.patient_sub, caller.sub, caller.role, b.booking_id, ROUTE_READ, now)
    body.update({"stops": stops, "breaks": route.get("breaks", []), "shift_start": route.get("shift_start"),
                 "shift_end": route.get("shift_end"), "driving_minutes": route.get("driving_minutes")})
    return body


CALLS_READ = "video_calls:name"


def doctor_calls(caller, region: str, doctor: dict, now: datetime, *, repo) -> list[dict]:
    """A doctor's calendar of video calls (the plan's `video_calls`) as they see it: each call's slot,
    booking, nurse and the patient's name (their own patients: each read goes to the patient's
    access log); a call whose booking was cancelled since the plan is left out."""
    ids = [c["booking_id"] for c in doctor.get("calls", [])]
    bookings = repo.get_bookings(ids) if ids else {}
    out = []
    for c in doctor.get("calls", []):
        b = bookings.get(c["booking_id"])
        if b is None or b.region != region or b.status in (S.CANCELLED, S.EXPIRED, S.HELD):
            continue
        person = b.for_child or b.patient or {}
        out.append({**c, "patient": {"name": (person or {}).get("name"), "is_child": bool(b.for_child)},
                    "status": b.status})
        repo.audit_read(b.patient_sub, caller.sub, caller.role, b.booking_id, CALLS_READ, now)
    return out


def earliest_times(problem, solution):
    """The same routes (order, breaks between the same stops), each service started as early as
    possible: the optimizer only guarantees *feasible* times, often late in the window, while an ETA
    should say when the clinician can be there. A break starts at the earliest of its window once
    the clinician is free (taken on the way); the result is kept only if the independent checker
    accepts it (video-call overlaps can change when times move), else `solution` is returned."""
    from dataclasses import replace

    from dispatch.feasibility import check
    from dispatch.problem import Route, Step

    if problem.call_shifts:  # earliest where the call still finds its stretch of doctors on shift
        from dispatch.optimizer.model import with_call_windows
        jobs = with_call_windows(problem).job_by_id()
    else:
        jobs = problem.job_by_id()
    vehicles, D = problem.vehicle_by_id(), problem.durations
    routes = []
    for r in solution.routes:
        v = vehicles[r.vehicle]
        breaks = {b.id: b for b in v.breaks}
        loc, t_free = v.start, v.time_window[0]
        steps: list = []
        pending: list = []
        for s in r.steps[1:]:
            if s.type == "break":
                pending.append(s)
                continue
            dest = jobs[s.id].location if s.type == "job" else v.end
            d = D[loc][dest] if loc is not None and dest is not None else 0
            ready, b_end, bsum = t_free, t_free, 0
            for b in pending:
                lo = min((a for a, _ in breaks[b.id].time_windows), default=t_free)
                start = max(b_end, lo)
                steps.append(Step("break", b.id, start, b.service, 0, None))
                b_end = start + b.service
                bsum += b.service
            ready = max(t_free + d + bsum, b_end)
            pending = []
            if s.type == "job":
                j = jobs[s.id]
                lo = min((a for a, _ in j.time_windows), default=ready)
                # the first window still open when ready (a call's windows may have gaps: video_calls)
                start = next((max(ready, a) for a, b in sorted(j.time_windows) if max(ready, a) <= b), max(ready, lo))
                steps.append(Step("job", s.id, start, j.service, start - ready, j.location))
                t_free, loc = start + j.service, j.location
            else:
                steps.append(Step("end", None, ready, 0, 0, v.end))
        first_job = next((s for s in steps if s.type == "job"), None)
        depart = v.time_window[0]
        if first_job is not None and steps and steps[0].type == "job" and v.start is not None:
            depart = max(depart, first_job.arrival - D[v.start][first_job.location])
        routes.append(Route(r.vehicle, (Step("start", None, depart, 0, 0, v.start), *steps)))
    shifted = replace(solution, routes=tuple(routes))
    violations, _ = check(problem, shifted)
    return shifted if not violations else solution
