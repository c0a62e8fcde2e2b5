"""Independent feasibility checker (no OR-Tools; trusts no solver number except the step times).

``check(problem, plan)`` walks every route with the duration matrix and returns
``(violations, travel)``: a list of human-readable violation strings (empty = feasible) and the
recomputed total travel duration. ``plan`` is a ``Solution`` or a VROOM-format output dict.

Semantics, VROOM's (the solver contract): in an output dict a step's ``arrival`` is when the vehicle
arrives and the service starts at ``arrival + waiting_time``; a ``Solution``'s ``Step.arrival`` is
the service start itself. (``arrival_is_service_start=True`` reads a dict the ``Solution`` way.)
Between two consecutive services the vehicle drives the leg and takes the breaks listed between
them; the gap must hold the drive plus those breaks, and each break lies inside the gap (never
during a service) and starts inside one of its windows. Loads as VROOM's: the route's deliveries
are on board at the start, each job drops its ``delivery`` and takes its ``pickup``; the load after
every step stays within ``capacity``. In a dict, a job's ``arrival`` may not precede the earliest
possible arrival, and the ``load`` and cumulative ``duration`` the dict reports are checked against
the recomputed ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homevisits import video_calls

from .problem import UNBOUNDED_END, Problem, Solution


@dataclass(frozen=True)
class _Step:
    type: str
    id: int | None
    start: int  # service start (or break start / route start / route end)
    arrival: int | None = None  # the reported arrival (dicts only)
    duration: int | None = None  # the reported cumulative travel (dicts only)
    load: tuple[int, ...] | None = None  # the reported load after the step (dicts only)


def _routes_from(plan: Any, arrival_is_service_start: bool) -> tuple[list[tuple[int, list[_Step]]], list[int]]:
    if isinstance(plan, Solution):
        return ([(r.vehicle, [_Step(s.type, s.id, s.arrival) for s in r.steps]) for r in plan.routes],
                list(plan.unassigned))
    routes = []
    for r in plan.get("routes", []):
        steps = []
        for s in r.get("steps", []):
            sid = s.get("id", s.get("job"))
            arrival = int(s.get("arrival", 0))
            t = arrival if arrival_is_service_start else arrival + int(s.get("waiting_time", 0))
            load = tuple(s["load"]) if isinstance(s.get("load"), list) else None
            steps.append(_Step(s["type"], sid, t, None if arrival_is_service_start else arrival,
                               s.get("duration"), load))
        routes.append((r["vehicle"], steps))
    return routes, [u["id"] for u in plan.get("unassigned", [])]


def _in_windows(t: int, windows) -> bool:
    if not windows:
        return True
    return any(a <= t <= b for a, b in windows)


def check(problem: Problem, plan: Any, *, arrival_is_service_start: bool = False,
          require_all: bool = False) -> tuple[list[str], int]:
    """Return (violations, recomputed total travel seconds)."""
    errs: list[str] = []
    jobs = problem.job_by_id()
    vehicles = problem.vehicle_by_id()
    D = problem.durations
    routes, unassigned = _routes_from(plan, arrival_is_service_start)
    served: dict[int, int] = {}
    calls: list[tuple[int, int, int]] = []
    seen_vehicles: set[int] = set()
    travel_total = 0
    for vid, steps in routes:
        v = vehicles.get(vid)
        if v is None:
            errs.append(f"route of unknown vehicle {vid}")
            continue
        if vid in seen_vehicles:
            errs.append(f"vehicle {vid} has two routes")
        seen_vehicles.add(vid)
        tw0, tw1 = v.time_window
        breaks = {b.id: b for b in v.breaks}
        taken: set[int] = set()
        loc = v.start
        if steps and steps[0].type == "start":
            t_free = steps[0].start
            if t_free < tw0:
                errs.append(f"vehicle {vid}: starts at {t_free} before its window {tw0}")
            body = steps[1:]
        else:
            if v.start is not None:
                errs.append(f"vehicle {vid}: route does not begin with a start step")
            t_free = None
            body = steps
        gap_breaks: list[_Step] = []
        route_jobs = [jobs[s.id] for s in body if s.type == "job" and s.id in jobs]
        size = max([len(v.capacity)] + [max(len(j.delivery), len(j.pickup)) for j in route_jobs])
        load = [sum(j.delivery[k] for j in route_jobs if k < len(j.delivery)) for k in range(size)]
        peak = list(load)
        travelled = 0
        if steps and steps[0].load is not None and list(steps[0].load) != load:
            errs.append(f"vehicle {vid}: start load {list(steps[0].load)} but the route's deliveries are {load}")
        job_seq: list[int] = []
        ended = False
        for s in body:
            if ended:
                errs.append(f"vehicle {vid}: step after the end step")
                break
            if s.type == "break":
                b = breaks.get(s.id)
                if b is None:
                    errs.append(f"vehicle {vid}: unknown break {s.id}")
                    continue
                if s.id in taken:
                    errs.append(f"vehicle {vid}: break {s.id} taken twice")
                taken.add(s.id)
                if b.time_windows and not _in_windows(s.start, b.time_windows):
                    errs.append(f"vehicle {vid}: break {s.id} starts at {s.start}, outside its windows {list(b.time_windows)}")
                if s.start < tw0 or s.start + b.service > tw1:
                    errs.append(f"vehicle {vid}: break {s.id} outside the vehicle's window")
                gap_breaks.append(s)
                if s.load is not None and list(s.load) != load:
                    errs.append(f"vehicle {vid}: break {s.id} reports load {list(s.load)}, actual {load}")
                continue
            if s.type not in ("job", "end"):
                errs.append(f"vehicle {vid}: unknown step type {s.type!r}")
                continue
            if s.type == "job":
                j = jobs.get(s.id)
                if j is None:
                    errs.append(f"vehicle {vid}: unknown job {s.id}")
                    continue
                dest, service = j.location, j.service
            else:
                dest, service = v.end, 0
                ended = True
            d = D[loc][dest] if (loc is not None and dest is not None) else 0
            travel_total += d
            # The gap [t_free, s.start] must hold the drive and the breaks, breaks inside the gap.
            prev_end = t_free
            bsum = 0
            for b_step in sorted(gap_breaks, key=lambda x: x.start):
                b = breaks[b_step.id]
                if prev_end is not None and b_step.start < prev_end:
                    errs.append(f"vehicle {vid}: break {b_step.id} at {b_step.start} overlaps the previous service/break (free at {prev_end})")
                prev_end = b_step.start + b.service
                bsum += b.service
            if prev_end is not None and prev_end > s.start:
                errs.append(f"vehicle {vid}: break before {s.type} {s.id} ends at {prev_end} after its start {s.start}")
            if t_free is not None and s.start < t_free + d + bsum:
                errs.append(f"vehicle {vid}: {s.type} {s.id} starts at {s.start} but cannot be reached before {t_free + d + bsum}")
            elif t_free is not None and s.arrival is not None and s.arrival < t_free + d + bsum:
                errs.append(f"vehicle {vid}: {s.type} {s.id} reports arrival {s.arrival} but cannot arrive before {t_free + d + bsum}")
            travelled += d
            if s.duration is not None and s.duration != travelled:
                errs.append(f"vehicle {vid}: {s.type} {s.id} reports duration {s.duration}, travelled {travelled}")
            gap_breaks = []
            if s.type == "job":
                if s.id in served:
                    errs.append(f"job {s.id} served twice (vehicles {served[s.id]} and {vid})")
                served[s.id] = vid
                job_seq.append(s.id)
                if not _in_windows(s.start, j.time_windows):
                    errs.append(f"job {s.id}: service starts at {s.start}, outside its windows {list(j.time_windows)}")
                if s.start < tw0 or s.start + service > tw1:
                    errs.append(f"job {s.id}: served outside vehicle {vid}'s window {v.time_window}")
                if not j.skills <= v.skills:
                    errs.append(f"job {s.id}: needs skills {sorted(j.skills - v.skills)} vehicle {vid} lacks")
                for k, a in enumerate(j.delivery):
                    load[k] -= a
                for k, a in enumerate(j.pickup):
                    load[k] += a
                peak = [max(p, x) for p, x in zip(peak, load)]
                if j.video_call_seconds > 0:
                    calls.append((s.start + j.service, s.start + j.service + j.video_call_seconds, s.id))
            else:
                if s.start > tw1:
                    errs.append(f"vehicle {vid}: ends at {s.start} after its window end {tw1}")
            if s.load is not None and list(s.load) != load:
                errs.append(f"vehicle {vid}: {s.type} {s.id} reports load {list(s.load)}, actual {load}")
            t_free = s.start + service
            loc = dest
        if gap_breaks:
            for b_step in gap_breaks:
                if t_free is not None and b_step.start < t_free:
                    errs.append(f"vehicle {vid}: break {b_step.id} overlaps the previous service")
        if not ended and v.end is not None:
            errs.append(f"vehicle {vid}: route has no end step")
        if job_seq and set(breaks) - taken:
            errs.append(f"vehicle {vid}: breaks {sorted(set(breaks) - taken)} not taken")
        for k, amount in enumerate(peak):
            cap = v.capacity[k] if k < len(v.capacity) else None
            if cap is not None and amount > cap:
                errs.append(f"vehicle {vid}: load {amount} exceeds capacity {cap} (dimension {k})")
        if v.max_tasks is not None and len(job_seq) > v.max_tasks:
            errs.append(f"vehicle {vid}: {len(job_seq)} jobs, more than its max_tasks {v.max_tasks}")
        lock = list(problem.locked.get(vid, ()))
        if lock and job_seq[:len(lock)] != lock:
            errs.append(f"vehicle {vid}: locked prefix {lock} not kept (route starts {job_seq[:len(lock)]})")
    for vid, lock in problem.locked.items():
        if lock and vid not in seen_vehicles:
            errs.append(f"vehicle {vid}: locked jobs {list(lock)} but no route")
    # Doctors on shift for calls: each call inside one stretch of them, never more at once than they
    # are (homevisits.video_calls); the calls of locked visits are facts, not planned.
    if problem.call_shifts and calls:
        locked = {jid for seq in problem.locked.values() for jid in seq}
        planned = [(a, b) for a, b, jid in calls if jid not in locked]
        errs += [f"doctors on shift: {e}" for e in
                 video_calls.violations(video_calls.segments(problem.call_shifts), planned)]
    # Remote doctors: never more simultaneous calls than doctors (half-open intervals).
    elif problem.remote_doctors is not None and calls:
        events = sorted([(a, 1) for a, _, _ in calls] + [(b, -1) for _, b, _ in calls],
                        key=lambda e: (e[0], e[1]))
        cur = peak = 0
        peak_t = None
        for t, dlt in events:
            cur += dlt
            if cur > peak:
                peak, peak_t = cur, t
        if peak > problem.remote_doctors:
            errs.append(f"remote doctors: {peak} simultaneous video calls at {peak_t} > capacity {problem.remote_doctors}")
    for jid in served:
        if jid in unassigned:
            errs.append(f"job {jid} both served and listed unassigned")
    missing = [j.id for j in problem.jobs if j.id not in served and j.id not in unassigned]
    if missing:
        errs.append(f"jobs neither served nor unassigned: {missing}")
    if require_all:
        left = [j.id for j in problem.jobs if j.id not in served]
        if left:
            errs.append(f"jobs not served: {left}")
    return errs, travel_total


def is_feasible(problem: Problem, plan: Any, **kw) -> bool:
    return not check(problem, plan, **kw)[0]


__all__ = ["check", "is_feasible", "UNBOUNDED_END"]
