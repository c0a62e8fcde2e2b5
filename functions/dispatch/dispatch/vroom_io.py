"""VROOM-compatible JSON in and out.

Input (https://github.com/VROOM-Project/vroom/blob/master/docs/API.md, the subset we support):
``vehicles`` (``id``, ``start_index``/``end_index`` or ``start``/``end`` as ``[lon, lat]``,
``time_window``, ``skills``, ``breaks`` [{``id``, ``time_windows``, ``service``}], ``capacity``),
``jobs`` (``id``, ``location_index`` or ``location``, ``service``, ``skills``, ``time_windows``,
``priority``, ``delivery``), optional ``matrices.car.durations`` (or top-level ``matrix``).
Extensions (ignored by VROOM): job ``video_call_seconds``; top-level ``remote_doctors``,
``locked`` {vehicle id: [job ids]}, ``previous_routes`` {vehicle id: [job ids]},
``reassignment_cost``.

Without a matrix, durations come from ``homevisits.travel.duration_matrix`` when that module is
importable, else from the fallback below (haversine x 1.3 detour at 40 km/h).

Output: ``routes`` (``vehicle``, ``steps`` [{``type``, ``id``, ``arrival``, ``service``,
``waiting_time``, ``location_index``}], ``cost``, ``duration``, ``service``, ``waiting_time``),
``unassigned`` [{``id``}], ``summary``. Per the solver contract a step's ``arrival`` is its
service start; ``waiting_time`` is the wait before it.
"""
from __future__ import annotations

import math
from typing import Any

from .problem import UNBOUNDED_END, Break, Job, Problem, Solution, Vehicle


class InputError(ValueError):
    """The JSON is not a problem we can solve (message says why)."""


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371000.0 * math.asin(min(1.0, math.sqrt(h)))


DETOUR = 1.3
SPEED_MPS = 40 / 3.6


def fallback_duration_matrix(points: list[tuple[float, float]], profile=None) -> list[list[int]]:
    """Seconds between (lat, lon) points: great-circle x 1.3 detour at 40 km/h, rounded."""
    return [[0 if i == j else int(round(haversine_m(p, q) * DETOUR / SPEED_MPS)) for j, q in enumerate(points)]
            for i, p in enumerate(points)]


def duration_matrix(points: list[tuple[float, float]], profile=None) -> list[list[int]]:
    try:
        from homevisits.travel import duration_matrix as shared_matrix  # type: ignore
    except ImportError:
        return fallback_duration_matrix(points, profile)
    return [[int(round(x)) for x in row] for row in shared_matrix(points, profile)]


def _int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or (isinstance(x, float) and not x.is_integer()):
        raise InputError(f"{what} must be an integer, got {x!r}")
    return int(x)


def _windows(raw: Any, what: str) -> tuple[tuple[int, int], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(f"{what} must be a list of [start, end]")
    out = []
    for w in raw:
        if not isinstance(w, (list, tuple)) or len(w) != 2:
            raise InputError(f"{what}: each window must be [start, end]")
        a, b = _int(w[0], what), _int(w[1], what)
        if a > b:
            raise InputError(f"{what}: window start {a} after end {b}")
        out.append((a, b))
    return tuple(out)


def _amount(raw: Any, what: str) -> tuple[int, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(f"{what} must be a list of integers")
    return tuple(_int(x, what) for x in raw)


def _skills(raw: Any, what: str) -> frozenset[int]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise InputError(f"{what} must be a list of integers")
    return frozenset(_int(x, what) for x in raw)


def parse_problem(data: Any) -> Problem:
    """Parse a VROOM input dict into a Problem. Raises InputError with a clear message."""
    if not isinstance(data, dict):
        raise InputError("problem must be a JSON object")
    if data.get("shipments"):
        raise InputError("shipments are not supported")
    raw_vehicles = data.get("vehicles")
    raw_jobs = data.get("jobs", [])
    if not isinstance(raw_vehicles, list) or not raw_vehicles:
        raise InputError("'vehicles' must be a non-empty list")
    if not isinstance(raw_jobs, list):
        raise InputError("'jobs' must be a list")
    matrix = None
    mats = data.get("matrices")
    if isinstance(mats, dict):
        prof = mats.get("car") or next(iter(mats.values()), None)
        if isinstance(prof, dict):
            matrix = prof.get("durations")
    if matrix is None and "matrix" in data:
        matrix = data["matrix"]
    coords: list[tuple[float, float]] = []  # (lat, lon)
    coord_index: dict[tuple[float, float], int] = {}

    def loc_of(obj: dict, idx_key: str, loc_key: str, what: str) -> int | None:
        if matrix is not None:
            if idx_key in obj:
                return _int(obj[idx_key], f"{what}.{idx_key}")
            if loc_key in obj:
                raise InputError(f"{what}: with a matrix, use '{idx_key}'")
            return None
        if loc_key not in obj:
            if idx_key in obj:
                raise InputError(f"{what}: '{idx_key}' needs 'matrices.car.durations'")
            return None
        ll = obj[loc_key]
        if not isinstance(ll, (list, tuple)) or len(ll) != 2 or not all(isinstance(x, (int, float)) for x in ll):
            raise InputError(f"{what}.{loc_key} must be [lon, lat]")
        lon, lat = float(ll[0]), float(ll[1])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InputError(f"{what}.{loc_key}: [lon, lat] out of range")
        key = (lat, lon)
        if key not in coord_index:
            coord_index[key] = len(coords)
            coords.append(key)
        return coord_index[key]

    vehicles = []
    for i, rv in enumerate(raw_vehicles):
        if not isinstance(rv, dict) or "id" not in rv:
            raise InputError(f"vehicles[{i}] must be an object with an 'id'")
        vid = _int(rv["id"], f"vehicles[{i}].id")
        what = f"vehicle {vid}"
        start = loc_of(rv, "start_index", "start", what)
        end = loc_of(rv, "end_index", "end", what)
        if start is None and end is None:
            raise InputError(f"{what}: needs a start or an end")
        tw = _windows([rv["time_window"]], f"{what}.time_window")[0] if "time_window" in rv else (0, UNBOUNDED_END)
        breaks = []
        for b in rv.get("breaks", []) or []:
            if not isinstance(b, dict) or "id" not in b:
                raise InputError(f"{what}: each break needs an 'id'")
            breaks.append(Break(_int(b["id"], f"{what} break id"),
                                _windows(b.get("time_windows"), f"{what} break time_windows"),
                                _int(b.get("service", 0), f"{what} break service")))
        vehicles.append(Vehicle(vid, start, end, tw, _skills(rv.get("skills"), f"{what}.skills"),
                                _amount(rv.get("capacity"), f"{what}.capacity"), tuple(breaks)))
    jobs = []
    for i, rj in enumerate(raw_jobs):
        if not isinstance(rj, dict) or "id" not in rj:
            raise InputError(f"jobs[{i}] must be an object with an 'id'")
        jid = _int(rj["id"], f"jobs[{i}].id")
        what = f"job {jid}"
        loc = loc_of(rj, "location_index", "location", what)
        if loc is None:
            raise InputError(f"{what}: needs 'location_index' (with a matrix) or 'location'")
        prio = _int(rj.get("priority", 0), f"{what}.priority")
        if not 0 <= prio <= 100:
            raise InputError(f"{what}: priority must be in 0..100")
        jobs.append(Job(jid, loc, _int(rj.get("service", 0), f"{what}.service"),
                        _windows(rj.get("time_windows"), f"{what}.time_windows"),
                        _skills(rj.get("skills"), f"{what}.skills"), prio,
                        _amount(rj.get("delivery", rj.get("amount")), f"{what}.delivery"),
                        _int(rj.get("video_call_seconds", 0), f"{what}.video_call_seconds")))
    if matrix is None:
        durations = duration_matrix(coords) if coords else []
    else:
        if not isinstance(matrix, list) or not all(isinstance(r, list) for r in matrix):
            raise InputError("matrices.car.durations must be a list of lists")
        durations = [[_int(x, "matrix entry") for x in row] for row in matrix]

    def id_map(raw: Any, what: str) -> dict[int, tuple[int, ...]]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise InputError(f"'{what}' must be an object vehicle id -> [job ids]")
        try:
            return {int(k): tuple(_int(x, what) for x in v) for k, v in raw.items()}
        except (TypeError, ValueError) as exc:
            raise InputError(f"'{what}': {exc}") from None

    rd = data.get("remote_doctors")
    problem = Problem(
        vehicles=tuple(vehicles),
        jobs=tuple(jobs),
        durations=tuple(tuple(r) for r in durations),
        remote_doctors=None if rd is None else _int(rd, "remote_doctors"),
        locked=id_map(data.get("locked"), "locked"),
        previous_routes=id_map(data.get("previous_routes"), "previous_routes"),
        reassignment_cost=_int(data.get("reassignment_cost", 0), "reassignment_cost"),
    )
    try:
        problem.validate()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return problem


def to_vroom_output(solution: Solution) -> dict:
    """The Solution in VROOM's output format (integers throughout)."""
    routes = []
    for r in solution.routes:
        steps, travel, service, waiting = [], 0, 0, 0
        prev_loc = None
        for s in r.steps:
            step: dict[str, Any] = {"type": s.type}
            if s.type in ("job", "break"):
                step["id"] = s.id
            if s.type == "job":
                step["job"] = s.id
            step["arrival"] = int(s.arrival)
            step["service"] = int(s.service)
            step["waiting_time"] = int(s.waiting_time)
            if s.location is not None:
                step["location_index"] = s.location
            steps.append(step)
            service += s.service if s.type == "job" else 0
            waiting += s.waiting_time
        routes.append({"vehicle": r.vehicle, "steps": steps, "service": service, "waiting_time": waiting})
    return {
        "code": 0,
        "summary": {
            "cost": int(solution.cost),
            "routes": len(solution.routes),
            "unassigned": len(solution.unassigned),
            "duration": int(solution.duration),
            "service": int(solution.service),
            "waiting_time": int(solution.waiting_time),
            "computing_times": {"loading": int(solution.loading_time_ms), "solving": int(solution.computing_time_ms)},
        },
        "unassigned": [{"id": j} for j in solution.unassigned],
        "routes": routes,
    }


def add_route_durations(out: dict, problem: Problem) -> dict:
    """Fill per-route ``duration`` and ``cost`` (travel seconds) from the matrix."""
    D = problem.durations
    for r in out["routes"]:
        locs = [s.get("location_index") for s in r["steps"] if s["type"] != "break"]
        locs = [x for x in locs if x is not None]
        d = sum(D[a][b] for a, b in zip(locs, locs[1:]))
        r["duration"] = d
        r["cost"] = d
    return out


def problem_to_vroom_input(problem: Problem) -> dict:
    """The Problem as VROOM input JSON (with the duration matrix; extensions only when set)."""
    vehicles = []
    for v in problem.vehicles:
        rv: dict[str, Any] = {"id": v.id}
        if v.start is not None:
            rv["start_index"] = v.start
        if v.end is not None:
            rv["end_index"] = v.end
        if v.time_window != (0, UNBOUNDED_END):
            rv["time_window"] = list(v.time_window)
        if v.skills:
            rv["skills"] = sorted(v.skills)
        if v.capacity:
            rv["capacity"] = list(v.capacity)
        if v.breaks:
            rv["breaks"] = [{"id": b.id, "time_windows": [list(w) for w in b.time_windows], "service": b.service}
                            for b in v.breaks]
        vehicles.append(rv)
    jobs = []
    for j in problem.jobs:
        rj: dict[str, Any] = {"id": j.id, "location_index": j.location, "service": j.service}
        if j.time_windows:
            rj["time_windows"] = [list(w) for w in j.time_windows]
        if j.skills:
            rj["skills"] = sorted(j.skills)
        if j.priority:
            rj["priority"] = j.priority
        if j.delivery:
            rj["delivery"] = list(j.delivery)
        if j.video_call_seconds:
            rj["video_call_seconds"] = j.video_call_seconds
        jobs.append(rj)
    out: dict[str, Any] = {"vehicles": vehicles, "jobs": jobs,
                           "matrices": {"car": {"durations": [list(r) for r in problem.durations]}}}
    if problem.remote_doctors is not None:
        out["remote_doctors"] = problem.remote_doctors
    if problem.locked:
        out["locked"] = {str(k): list(v) for k, v in problem.locked.items()}
    if problem.previous_routes:
        out["previous_routes"] = {str(k): list(v) for k, v in problem.previous_routes.items()}
    if problem.reassignment_cost:
        out["reassignment_cost"] = problem.reassignment_cost
    return out
