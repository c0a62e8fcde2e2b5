"""VROOM-compatible JSON in and out (docs/API.md of VROOM-Project/vroom).

Input: every key VROOM documents is either supported with VROOM's meaning or refused with an
``InputError`` naming it — never ignored (the table is in docs/dispatch.md). Supported:
``vehicles`` (``id``, ``description``, ``profile`` (one for all), ``start``/``start_index``,
``end``/``end_index``, ``capacity``, ``skills``, ``type``, ``time_window``, ``breaks``
[{``id``, ``time_windows``, ``service``, ``description``}], ``costs`` and ``speed_factor`` at their
defaults, ``max_tasks``, ``steps`` as a valid warm start), ``jobs`` (``id``, ``description``,
``location``, ``location_index``, ``setup`` (where no other job or vehicle start shares the place),
``service``, ``delivery``, ``pickup``, deprecated ``amount``, ``skills``, ``priority``,
``time_windows``), ``shipments`` empty, ``matrices.<profile>.durations``
(or the deprecated top-level ``matrix``), ``matrices.<profile>.distances`` (reported, not planned
on), ``matrices.<profile>.costs`` equal to the durations.
VROOM's own input checks apply: non-negative 32-bit integers, one amount size for every
``capacity``/``delivery``/``pickup`` (the first vehicle's), ``location_index`` on all tasks or none,
inside the matrix, unique job ids and break ids per vehicle.
Extensions (VROOM has no such keys): job ``video_call_seconds``; top-level ``remote_doctors``,
``call_shifts`` [[start, end], …] (the doctors on shift for video calls), ``locked`` {vehicle id: [job ids]}, ``previous_routes`` {vehicle id: [job ids]},
``reassignment_cost``.

Without a matrix, durations come from ``homevisits.travel.duration_matrix`` when that module is
importable, else from the fallback below (haversine x 1.3 detour at 40 km/h).

Output, as VROOM's: a step's ``arrival`` is when the vehicle arrives; its service starts at
``arrival + waiting_time``; ``duration`` is the travel time driven so far; a break is taken where
the vehicle is, part of a drive may come before it (VROOM's own rule); ``load`` after each step
when amounts are used; ``service`` counts breaks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from .problem import UNBOUNDED_END, Break, Job, Problem, Route, Solution, Step, Vehicle

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
DEFAULT_PROFILE = "car"
UNBOUNDED = ((0, UNBOUNDED_END), (0, UINT32_MAX))  # a vehicle window meaning "any time" (ours, VROOM's)
DEFAULT_COSTS = {"fixed": 0, "per_hour": 3600, "per_km": 0, "per_task_hour": 0}

TOP_KEYS = {"vehicles", "jobs", "shipments", "matrices", "matrix",
            "remote_doctors", "call_shifts", "locked", "previous_routes", "reassignment_cost"}
VEHICLE_KEYS = {"id", "description", "profile", "start", "start_index", "end", "end_index", "capacity",
                "costs", "skills", "type", "time_window", "breaks", "speed_factor", "max_tasks", "steps"}
STEP_KEYS = {"type", "id"}
JOB_KEYS = {"id", "description", "location", "location_index", "setup", "service", "delivery", "pickup",
            "amount", "skills", "priority", "time_windows", "video_call_seconds"}
BREAK_KEYS = {"id", "time_windows", "service", "description"}
#: VROOM keys refused, and why (the message names the key).
REFUSED = {
    "max_travel_time": "the optimizer has no per-vehicle travel limit",
    "max_distance": "the optimizer has no distances",
    "max_load": "breaks with a maximum load are not supported",
    "setup_per_type": "per-vehicle-type setup times are not supported",
    "service_per_type": "per-vehicle-type service times are not supported",
    "service_at": "plan-mode timing (VROOM's -c) is not supported",
    "service_after": "plan-mode timing (VROOM's -c) is not supported",
    "service_before": "plan-mode timing (VROOM's -c) is not supported",
}


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


@dataclass(frozen=True)
class Echo:
    """What VROOM's output repeats from the input: coordinates and indices as given, descriptions."""

    indices: bool = True  # locations were given as matrix indices
    coords: dict[int, list[float]] = field(default_factory=dict)  # location index -> [lon, lat]
    job_description: dict[int, str] = field(default_factory=dict)
    vehicle_description: dict[int, str] = field(default_factory=dict)
    break_description: dict[tuple[int, int], str] = field(default_factory=dict)
    job_setup: dict[int, int] = field(default_factory=dict)  # part of the Problem's service
    distances: list[list[int]] | None = None  # reported as VROOM reports them (metres), not planned on
    per_hour: int = DEFAULT_COSTS["per_hour"]  # one for all vehicles: cost = travel time x per_hour / 3600


@dataclass(frozen=True)
class VroomInput:
    problem: Problem
    echo: Echo
    #: vehicle ``steps`` (VROOM's solving mode: the search starts from these routes): vehicle id -> job ids
    initial_routes: dict[int, list[int]] = field(default_factory=dict)


def _uint(x: Any, what: str, limit: int = UINT32_MAX) -> int:
    # VROOM (rapidjson IsUint/IsUint64): a JSON integer, 0 <= x <= 2^32-1 (ids: 2^64-1); 5.0 is not one.
    if isinstance(x, bool) or not isinstance(x, int):
        raise InputError(f"{what} must be a non-negative integer, got {x!r}")
    if not 0 <= x <= limit:
        raise InputError(f"{what} must be a non-negative integer at most {limit}, got {x}")
    return x



def _call_shifts(raw: Any) -> tuple[tuple[int, int], ...]:
    """The ``call_shifts`` extension: [[start, end], …], each start <= end."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError("'call_shifts' must be a list of [start, end]")
    out = []
    for k, w in enumerate(raw):
        if not isinstance(w, list) or len(w) != 2:
            raise InputError(f"'call_shifts[{k}]' must be [start, end]")
        a, b = _uint(w[0], f"call_shifts[{k}]"), _uint(w[1], f"call_shifts[{k}]")
        if a > b:
            raise InputError(f"'call_shifts[{k}]' starts after it ends")
        out.append((a, b))
    return tuple(out)

def _id(obj: dict, what: str) -> int:
    if "id" not in obj:
        raise InputError(f"{what} needs an 'id'")
    return _uint(obj["id"], f"{what}.id", UINT64_MAX)


def _window(w: Any, what: str) -> tuple[int, int]:
    if not isinstance(w, list) or len(w) != 2:
        raise InputError(f"{what}: a time window is [start, end]")
    a, b = _uint(w[0], what), _uint(w[1], what)
    if a > b:
        raise InputError(f"{what}: window start {a} after end {b}")
    return a, b


def _windows(raw: Any, what: str) -> tuple[tuple[int, int], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InputError(f"{what} must be a list of [start, end]")
    return tuple(sorted(_window(w, what) for w in raw))


def _amount(raw: Any, what: str, size: int) -> tuple[int, ...]:
    if raw is None:
        return (0,) * size
    if not isinstance(raw, list):
        raise InputError(f"{what} must be a list of non-negative integers")
    if len(raw) != size:
        raise InputError(f"{what} has {len(raw)} dimension(s) but the first vehicle's capacity has {size} "
                         "(VROOM: every capacity, delivery and pickup has the same size)")
    return tuple(_uint(x, what) for x in raw)


def _skills(raw: Any, what: str) -> frozenset[int]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list):
        raise InputError(f"{what} must be a list of integers")
    return frozenset(_uint(x, what) for x in raw)


def _description(obj: dict, what: str) -> str | None:
    d = obj.get("description")
    if d is not None and not isinstance(d, str):
        raise InputError(f"{what}.description must be a string")
    return d


def _check_keys(obj: dict, allowed: set[str], what: str) -> None:
    for key in obj:
        if key in REFUSED:
            raise InputError(f"{what}: '{key}' is not supported: {REFUSED[key]}")
        if key not in allowed:
            raise InputError(f"{what}: unknown field '{key}'")


def _matrix(raw: Any, what: str) -> list[list[int]]:
    if not isinstance(raw, list) or not raw or not all(isinstance(r, list) for r in raw):
        raise InputError(f"{what} must be a non-empty list of lists")
    n = len(raw)
    if any(len(r) != n for r in raw):
        raise InputError(f"{what} must be square ({n} rows)")
    for row in raw:  # whole rows at C speed; the first bad entry named by _uint
        if set(map(type, row)) != {int} or min(row) < 0 or max(row) > UINT32_MAX:
            for x in row:
                _uint(x, f"{what} entry")
    return raw


def _profile_matrices(data: dict, profile: str) -> tuple[list[list[int]] | None, list[list[int]] | None]:
    """The durations and distances for ``profile`` (checking the matrices object); None if absent."""
    mats = data.get("matrices")
    if mats is None:
        if "matrix" in data:
            return _matrix(data["matrix"], "matrix"), None
        return None, None
    if not isinstance(mats, dict):
        raise InputError("'matrices' must be an object {profile: {durations: ...}}")
    for name, m in mats.items():
        if not isinstance(m, dict):
            raise InputError(f"matrices.{name} must be an object")
        _check_keys(m, {"durations", "distances", "costs"}, f"matrices.{name}")
    if profile not in mats or "durations" not in mats[profile]:
        raise InputError(f"matrices.{profile}.durations is missing (the vehicles' profile is '{profile}')")
    durations = _matrix(mats[profile]["durations"], f"matrices.{profile}.durations")
    if "costs" in mats[profile]:
        costs = _matrix(mats[profile]["costs"], f"matrices.{profile}.costs")
        if costs != durations:
            raise InputError(f"matrices.{profile}.costs is not supported unless equal to the durations "
                             "(the optimizer's travel cost is the travel time)")
    distances = None
    if "distances" in mats[profile]:
        distances = _matrix(mats[profile]["distances"], f"matrices.{profile}.distances")
        if len(distances) != len(durations):
            raise InputError(f"matrices.{profile}.distances must be the size of the durations ({len(durations)})")
    return durations, distances


def _vehicle_profile(raw_vehicles: list) -> str:
    profiles = set()
    for rv in raw_vehicles:
        p = rv.get("profile", DEFAULT_PROFILE) if isinstance(rv, dict) else DEFAULT_PROFILE
        if not isinstance(p, str):
            raise InputError("vehicle profile must be a string")
        profiles.add(p)
    if len(profiles) > 1:
        raise InputError(f"'profile': vehicles with several profiles {sorted(profiles)} are not supported")
    return profiles.pop() if profiles else DEFAULT_PROFILE


def _vehicle_costs(raw: Any, what: str) -> int:
    """The vehicle's ``per_hour`` (the other costs only at VROOM's defaults)."""
    if raw is None:
        return DEFAULT_COSTS["per_hour"]
    if not isinstance(raw, dict):
        raise InputError(f"{what}.costs must be an object")
    for key, value in raw.items():
        if key not in DEFAULT_COSTS:
            raise InputError(f"{what}.costs: unknown field '{key}'")
        if _uint(value, f"{what}.costs.{key}") != DEFAULT_COSTS[key] and key != "per_hour":
            raise InputError(f"{what}.costs.{key} = {value} is not supported (only VROOM's default "
                             f"{DEFAULT_COSTS[key]}: the optimizer minimises travel time)")
    return raw.get("per_hour", DEFAULT_COSTS["per_hour"])


def parse_input(data: Any) -> VroomInput:
    """Parse a VROOM input dict. Raises InputError with a clear message."""
    if not isinstance(data, dict):
        raise InputError("problem must be a JSON object")
    _check_keys(data, TOP_KEYS, "problem")
    if data.get("shipments") not in (None, []):
        raise InputError("'shipments' are not supported (pickup-and-delivery pairs); jobs with "
                         "'pickup' or 'delivery' amounts are")
    raw_vehicles = data.get("vehicles")
    raw_jobs = data.get("jobs", [])
    if not isinstance(raw_vehicles, list) or not raw_vehicles:
        raise InputError("'vehicles' must be a non-empty list")
    if not isinstance(raw_jobs, list):
        raise InputError("'jobs' must be a list")
    if not all(isinstance(rv, dict) for rv in raw_vehicles):
        raise InputError("each vehicle must be an object")
    if not all(isinstance(rj, dict) for rj in raw_jobs):
        raise InputError("each job must be an object")
    profile = _vehicle_profile(raw_vehicles)
    matrix, distances = _profile_matrices(data, profile)
    if matrix is None and profile != DEFAULT_PROFILE:
        raise InputError(f"'profile' '{profile}': without matrices only the travel model's "
                         f"'{DEFAULT_PROFILE}' profile exists")
    first_cap = raw_vehicles[0].get("capacity")
    amount_size = len(first_cap) if isinstance(first_cap, list) else 0
    coords: list[tuple[float, float]] = []  # (lat, lon), without a matrix
    coord_index: dict[tuple[float, float], int] = {}
    echo_coords: dict[int, list[float]] = {}

    def lonlat(obj: dict, key: str, what: str) -> list[float]:
        ll = obj[key]
        if (not isinstance(ll, list) or len(ll) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in ll)):
            raise InputError(f"{what}.{key} must be [lon, lat]")
        lon, lat = float(ll[0]), float(ll[1])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InputError(f"{what}.{key}: [lon, lat] out of range")
        return [ll[0], ll[1]]

    def loc_of(obj: dict, idx_key: str, loc_key: str, what: str) -> int | None:
        if matrix is not None:
            if idx_key not in obj:
                if loc_key in obj:
                    raise InputError(f"{what}: with matrices, '{idx_key}' is needed (VROOM: missing location index)")
                return None
            idx = _uint(obj[idx_key], f"{what}.{idx_key}")
            if idx >= len(matrix):
                raise InputError(f"{what}.{idx_key} {idx} exceeds the durations matrix size {len(matrix)}")
            if loc_key in obj:
                echo_coords[idx] = lonlat(obj, loc_key, what)
            return idx
        if idx_key in obj:
            raise InputError(f"{what}: '{idx_key}' needs matrices (VROOM: unexpected location index "
                             "while no custom matrices provided)")
        if loc_key not in obj:
            return None
        ll = lonlat(obj, loc_key, what)
        key = (float(ll[1]), float(ll[0]))
        if key not in coord_index:
            coord_index[key] = len(coords)
            coords.append(key)
            echo_coords[coord_index[key]] = ll
        return coord_index[key]

    vehicles, vehicle_description, break_description = [], {}, {}
    per_hour: set[int] = set()
    for i, rv in enumerate(raw_vehicles):
        vid = _id(rv, f"vehicles[{i}]")
        what = f"vehicle {vid}"
        _check_keys(rv, VEHICLE_KEYS, what)
        start = loc_of(rv, "start_index", "start", what)
        end = loc_of(rv, "end_index", "end", what)
        if start is None and end is None:
            raise InputError(f"{what}: needs a start or an end")
        # VROOM's default window: the whole uint32 time axis
        tw = _window(rv["time_window"], f"{what}.time_window") if "time_window" in rv else (0, UINT32_MAX)
        per_hour.add(_vehicle_costs(rv.get("costs"), what))
        if "speed_factor" in rv:
            sf = rv["speed_factor"]
            if isinstance(sf, bool) or not isinstance(sf, (int, float)) or not 0 < sf <= 5:
                raise InputError(f"{what}.speed_factor must be a number in (0, 5]")
            if sf != 1:
                raise InputError(f"{what}.speed_factor = {sf} is not supported (only 1)")
        max_tasks = _uint(rv["max_tasks"], f"{what}.max_tasks", UINT64_MAX) if "max_tasks" in rv else None
        if "type" in rv and not isinstance(rv["type"], str):
            raise InputError(f"{what}.type must be a string")
        if (d := _description(rv, what)) is not None:
            vehicle_description[vid] = d
        raw_breaks = rv.get("breaks", [])
        if not isinstance(raw_breaks, list):
            raise InputError(f"{what}.breaks must be a list")
        breaks, break_ids = [], set()
        for b in raw_breaks:
            if not isinstance(b, dict):
                raise InputError(f"{what}: each break must be an object")
            bid = _id(b, f"{what} break")
            _check_keys(b, BREAK_KEYS, f"{what} break {bid}")
            if bid in break_ids:
                raise InputError(f"{what}: duplicate break id {bid}")
            break_ids.add(bid)
            if (d := _description(b, f"{what} break {bid}")) is not None:
                break_description[(vid, bid)] = d
            breaks.append(Break(bid, _windows(b.get("time_windows"), f"{what} break {bid} time_windows"),
                                _uint(b.get("service", 0), f"{what} break {bid} service")))
        capacity = _amount(rv.get("capacity"), f"{what}.capacity", amount_size) if amount_size else ()
        if not amount_size and rv.get("capacity") not in (None, []):
            raise InputError(f"{what}.capacity has {len(rv['capacity'])} dimension(s) but the first vehicle's "
                             "has none (VROOM: every capacity, delivery and pickup has the same size)")
        vehicles.append(Vehicle(vid, start, end, tw, _skills(rv.get("skills"), f"{what}.skills"), capacity,
                                tuple(breaks), max_tasks if max_tasks is not None and max_tasks < len(raw_jobs) else None))
    jobs, job_description, job_setup = [], {}, {}
    for i, rj in enumerate(raw_jobs):
        jid = _id(rj, f"jobs[{i}]")
        what = f"job {jid}"
        _check_keys(rj, JOB_KEYS, what)
        loc = loc_of(rj, "location_index", "location", what)
        if loc is None:
            raise InputError(f"{what}: needs 'location_index' (with matrices) or 'location'")
        setup = _uint(rj.get("setup", 0), f"{what}.setup")
        if setup:
            job_setup[jid] = setup
        prio = _uint(rj.get("priority", 0), f"{what}.priority")
        if prio > 100:
            raise InputError(f"{what}: priority must be in 0..100")
        # VROOM reads the deprecated 'amount' as a delivery when neither delivery nor pickup is given.
        delivery_raw = rj["amount"] if "amount" in rj and "delivery" not in rj and "pickup" not in rj \
            else rj.get("delivery")
        delivery = _amount(delivery_raw, f"{what}.delivery", amount_size)
        pickup = _amount(rj.get("pickup"), f"{what}.pickup", amount_size)
        if (d := _description(rj, what)) is not None:
            job_description[jid] = d
        jobs.append(Job(jid, loc, setup + _uint(rj.get("service", 0), f"{what}.service"),
                        _windows(rj.get("time_windows"), f"{what}.time_windows"),
                        _skills(rj.get("skills"), f"{what}.skills"), prio,
                        delivery if any(delivery) else (),
                        _uint(rj.get("video_call_seconds", 0), f"{what}.video_call_seconds"),
                        pickup if any(pickup) else ()))
    ids = [j.id for j in jobs]
    if len(set(ids)) != len(ids):
        dup = sorted({x for x in ids if ids.count(x) > 1})
        raise InputError(f"duplicate job id: {dup[0]}")
    if job_setup:
        # VROOM skips a task's setup after a task at the same place (or at the vehicle's start):
        # setup is part of the service exactly when no job shares its place with another or a start.
        places = [j.location for j in jobs] + [v.start for v in vehicles if v.start is not None]
        shared = next((j.id for j in jobs if j.id in job_setup and places.count(j.location) > 1), None)
        if shared is not None:
            raise InputError(f"job {shared}.setup is not supported when jobs share a location with another "
                             "job or a vehicle start (VROOM then skips the setup)")
    durations = matrix if matrix is not None else (duration_matrix(coords) if coords else [])

    def id_map(raw: Any, what: str) -> dict[int, tuple[int, ...]]:
        if raw is None:
            return {}
        if not isinstance(raw, dict) or not all(isinstance(v, list) for v in raw.values()):
            raise InputError(f"'{what}' must be an object vehicle id -> [job ids]")
        out = {}
        for k, v in raw.items():
            try:
                vid = int(k)
            except ValueError:
                raise InputError(f"'{what}': {k!r} is not a vehicle id") from None
            out[vid] = tuple(_uint(x, what, UINT64_MAX) for x in v)
        return out

    rd = data.get("remote_doctors")
    problem = Problem(
        vehicles=tuple(vehicles),
        jobs=tuple(jobs),
        durations=tuple(tuple(r) for r in durations),
        remote_doctors=None if rd is None else _uint(rd, "remote_doctors"),
        call_shifts=_call_shifts(data.get("call_shifts")),
        locked=id_map(data.get("locked"), "locked"),
        previous_routes=id_map(data.get("previous_routes"), "previous_routes"),
        reassignment_cost=_uint(data.get("reassignment_cost", 0), "reassignment_cost"),
    )
    try:
        problem.validate()
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if len(per_hour) > 1:
        raise InputError(f"vehicle costs.per_hour differ {sorted(per_hour)}: only one for all vehicles is supported "
                         "(the optimizer minimises travel time)")
    if per_hour != {DEFAULT_COSTS["per_hour"]} and isinstance(data.get("matrices"), dict) and any(
            isinstance(m, dict) and "costs" in m for m in data["matrices"].values()):
        raise InputError("a costs matrix with a non-default costs.per_hour is inconsistent (as VROOM says)")
    initial = _planned_routes(problem, {v.id: rv["steps"] for v, rv in zip(vehicles, raw_vehicles) if "steps" in rv})
    if initial and problem.previous_routes:
        raise InputError("vehicle 'steps' and the 'previous_routes' extension are two warm starts: give one")
    return VroomInput(problem, Echo(matrix is not None, echo_coords, job_description, vehicle_description,
                                    break_description, job_setup, distances, per_hour.pop()), initial)


def _planned_routes(problem: Problem, raw: dict[int, Any]) -> dict[int, list[int]]:
    """Vehicle ``steps`` as VROOM reads them when solving: the jobs' order starts the search, and
    each route must be valid (VROOM: an error otherwise); breaks are placed by the solver."""
    jobs, vehicles = problem.job_by_id(), problem.vehicle_by_id()
    routes: dict[int, list[int]] = {}
    planned: set[int] = set()
    for vid, steps in raw.items():
        what = f"vehicle {vid}.steps"
        if not isinstance(steps, list):
            raise InputError(f"{what} must be a list")
        seq = []
        for step in steps:
            if not isinstance(step, dict):
                raise InputError(f"{what}: each step must be an object")
            _check_keys(step, STEP_KEYS, what)
            kind = step.get("type")
            if kind in ("pickup", "delivery"):
                raise InputError(f"{what}: '{kind}' steps belong to shipments, which are not supported")
            if kind not in ("start", "job", "break", "end"):
                raise InputError(f"{what}: unknown step type {kind!r}")
            if kind == "job":
                jid = _uint(step.get("id"), f"{what} job id", UINT64_MAX)
                if jid not in jobs:
                    raise InputError(f"{what}: invalid job id {jid}")
                if jid in planned:
                    raise InputError(f"{what}: duplicate job id {jid} in input steps")
                planned.add(jid)
                seq.append(jid)
            elif kind == "break":
                bid = _uint(step.get("id"), f"{what} break id", UINT64_MAX)
                if bid not in {b.id for b in vehicles[vid].breaks}:
                    raise InputError(f"{what}: invalid break id {bid}")
        if (why := _invalid_route(problem, vehicles[vid], [jobs[j] for j in seq])) is not None:
            raise InputError(f"{what}: infeasible route for vehicle {vid}: {why}")
        routes[vid] = seq
    return routes


def _through_gap(t: int, leg: int, breaks, job: Job | None) -> int | None:
    """From ``t``, take ``breaks`` then drive ``leg`` (VROOM's way) and serve ``job`` (None: arrive
    at the end): when that is over, or None if a window is missed."""
    pending = leg
    for b in breaks:
        w = next((w for w in b.time_windows or ((0, UNBOUNDED_END),) if t <= w[1]), None)
        if w is None:
            return None
        if t < w[0]:
            pending -= min(pending, w[0] - t)
            t = w[0]
        t += b.service
    t += pending
    if job is None:
        return t
    w = next((w for w in job.time_windows or ((0, UNBOUNDED_END),) if t <= w[1]), None)
    return None if w is None else max(t, w[0]) + job.service


def _invalid_route(problem: Problem, v: Vehicle, seq: list[Job]) -> str | None:
    """Why the vehicle cannot serve ``seq`` in that order (skills, loads, max_tasks, windows with
    every break somewhere), or None."""
    if not seq:
        return None
    if bad := [j.id for j in seq if not j.skills <= v.skills]:
        return f"job {bad[0]} needs skills the vehicle lacks"
    if v.max_tasks is not None and len(seq) > v.max_tasks:
        return f"{len(seq)} jobs, more than max_tasks {v.max_tasks}"
    load = _sum((j.delivery for j in seq), len(v.capacity))
    for j in [None, *seq]:
        if j is not None:
            load = [x - (j.delivery[d] if d < len(j.delivery) else 0) + (j.pickup[d] if d < len(j.pickup) else 0)
                    for d, x in enumerate(load)]
        if any(x > c for x, c in zip(load, v.capacity)):
            return "the load exceeds the capacity"
    legs = _legs(v, [("job", j) for j in seq], problem.durations)
    breaks = sorted(v.breaks, key=lambda b: b.time_windows[0] if b.time_windows else (0, 0))
    # earliest time free after the i-th job having taken the first k breaks (earlier is never worse)
    best = {0: v.time_window[0]}
    for i in range(len(seq) + 1):
        nxt: dict[int, int] = {}
        for k, t in best.items():
            for m in range(len(breaks) - k + 1):
                if i == len(seq) and k + m != len(breaks):
                    continue
                done = _through_gap(t, legs[i], breaks[k:k + m], seq[i] if i < len(seq) else None)
                if done is not None and done < nxt.get(k + m, UNBOUNDED_END + 1):
                    nxt[k + m] = done
        best = nxt
    if not best or min(best.values()) > v.time_window[1]:
        return "its time windows, the vehicle's and its breaks' cannot all be kept in that order"
    return None


def parse_problem(data: Any) -> Problem:
    """Parse a VROOM input dict into a Problem. Raises InputError with a clear message."""
    return parse_input(data).problem


def for_optimizer(problem: Problem) -> Problem:
    """The problem as the optimizer models it: capacity counts ``delivery`` only, so a dimension in
    which jobs only pick up is handed over as deliveries (the load then peaks at the end instead of
    the start: the same bound), and ``max_tasks`` as one more dimension in which each job weighs 1.
    A dimension mixing pickups and deliveries is refused. Times are counted from the earliest
    window start (``time_origin``), window ends clipped to the optimizer's horizon: VROOM's times
    reach 2^32-1, the optimizer's 2^31-1. ``from_optimizer`` turns its plan back."""
    problem = _shifted(_pickups_as_deliveries(problem), -time_origin(problem))
    if all(v.max_tasks is None for v in problem.vehicles):
        return problem
    # max_tasks: one more dimension in which every job weighs 1
    size = max([len(v.capacity) for v in problem.vehicles] + [len(j.delivery) for j in problem.jobs])
    jobs = tuple(replace(j, delivery=j.delivery + (0,) * (size - len(j.delivery)) + (1,)) for j in problem.jobs)
    vehicles = tuple(replace(v, capacity=v.capacity + (UINT32_MAX,) * (size - len(v.capacity))
                             + (len(jobs) if v.max_tasks is None else v.max_tasks,), max_tasks=None)
                     for v in problem.vehicles)
    return replace(problem, jobs=jobs, vehicles=vehicles)


def from_optimizer(solution: Solution, problem: Problem) -> Solution:
    """The optimizer's plan of ``for_optimizer(problem)`` on ``problem``'s time axis."""
    origin = time_origin(problem)
    if not origin:
        return solution
    return replace(solution, routes=tuple(
        replace(r, steps=tuple(replace(s, arrival=s.arrival + origin) for s in r.steps)) for r in solution.routes))


def time_origin(problem: Problem) -> int:
    """The earliest window start (vehicles, jobs, breaks; a vehicle's unbounded window aside): the
    optimizer counts time from there."""
    return min([v.time_window[0] for v in problem.vehicles if v.time_window not in UNBOUNDED]
               + [w[0] for j in problem.jobs for w in j.time_windows]
               + [w[0] for v in problem.vehicles for b in v.breaks for w in b.time_windows], default=0)


def _shifted(problem: Problem, by: int) -> Problem:
    def window(w: tuple[int, int], what: str) -> tuple[int, int]:
        a, b = max(0, w[0] + by), min(w[1] + by, UNBOUNDED_END)  # only unbounded windows start earlier
        if a > UNBOUNDED_END:
            raise InputError(f"{what}: its window starts {a} s after the earliest one; the optimizer's "
                             f"horizon is {UNBOUNDED_END} s")
        return a, b

    if not by and all(w[1] <= UNBOUNDED_END for w in _all_windows(problem)):
        return problem
    vehicles = tuple(replace(v, time_window=window(v.time_window, f"vehicle {v.id}"), breaks=tuple(
        replace(b, time_windows=tuple(window(w, f"vehicle {v.id} break {b.id}") for w in b.time_windows))
        for b in v.breaks)) for v in problem.vehicles)
    jobs = tuple(replace(j, time_windows=tuple(window(w, f"job {j.id}") for w in j.time_windows))
                 for j in problem.jobs)
    calls = tuple(window(w, "call shift") for w in problem.call_shifts)
    return replace(problem, vehicles=vehicles, jobs=jobs, call_shifts=calls)


def _all_windows(problem: Problem):
    for v in problem.vehicles:
        yield v.time_window
        for b in v.breaks:
            yield from b.time_windows
    for j in problem.jobs:
        yield from j.time_windows
    yield from problem.call_shifts


def _pickups_as_deliveries(problem: Problem) -> Problem:
    if not any(j.pickup for j in problem.jobs):
        return problem
    ndim = max(len(j.pickup) for j in problem.jobs)
    mixed = [d for d in range(ndim)
             if any(d < len(j.pickup) and j.pickup[d] for j in problem.jobs)
             and any(d < len(j.delivery) and j.delivery[d] for j in problem.jobs)]
    if mixed:
        raise InputError(f"jobs with both 'pickup' and 'delivery' amounts in dimension {mixed[0]} are not "
                         "supported (only one of them per capacity dimension)")

    def counted(j: Job) -> Job:
        size = max(len(j.delivery), len(j.pickup))
        amt = tuple((j.delivery[d] if d < len(j.delivery) else 0) + (j.pickup[d] if d < len(j.pickup) else 0)
                    for d in range(size))
        return replace(j, delivery=amt, pickup=())

    return replace(problem, jobs=tuple(counted(j) for j in problem.jobs))


def _sum(amounts, size: int) -> list[int]:
    out = [0] * size
    for a in amounts:
        for d, x in enumerate(a):
            out[d] += x
    return out


def _legs(v: Vehicle, items: list, D) -> list[int]:
    """Drive of each gap of a route: to each job in turn, then to the end (0 without one)."""
    legs, cur = [], v.start
    for kind, obj in items:
        if kind == "job":
            legs.append(D[cur][obj.location] if cur is not None else 0)
            cur = obj.location
    legs.append(D[cur][v.end] if cur is not None and v.end is not None else 0)
    return legs


def _asap(v: Vehicle, items: list, legs: list[int], start: int) -> tuple[list[int], int] | None:
    """Leaving at ``start``, each job and break as early as VROOM would (a break is taken where the
    vehicle is, after driving what of the next leg fits before its window opens): their start
    times and the arrival at the end, or None if a window is missed."""
    t, gap, starts = start, 0, []
    pending = legs[0]
    for kind, obj in items:
        windows = obj.time_windows or ((0, UNBOUNDED_END),)
        if kind == "job":
            t += pending
            gap += 1
            pending = legs[gap]
        w = next((w for w in windows if t <= w[1]), None)
        if w is None:
            return None
        if t < w[0] and kind == "break":
            pending -= min(pending, w[0] - t)
        t = max(t, w[0])
        starts.append(t)
        t += obj.service
    t += pending
    return (starts, t) if t <= v.time_window[1] else None


def _vroom_timing(v: Vehicle, items: list, D) -> tuple[int, list[int], int] | None:
    """VROOM's times for a route in this order: the earliest end, reached from the latest start
    that still reaches it (so no needless waiting), every task as early as possible from there.
    Returns (start, task starts, end) or None when the order cannot be timed that way."""
    legs = _legs(v, items, D)
    first = _asap(v, items, legs, v.time_window[0])
    if first is None:
        return None
    end = first[1]
    lo, hi = v.time_window[0], end  # the latest start whose earliest end is still `end`
    while lo < hi:
        mid = (lo + hi + 1) // 2
        timed = _asap(v, items, legs, mid)
        if timed is not None and timed[1] == end:
            lo = mid
        else:
            hi = mid - 1
    starts, _ = _asap(v, items, legs, lo)
    return lo, starts, end


def _retimed(problem: Problem, route: Route, v: Vehicle, jobs: dict[int, Job]) -> Route:
    """The route with VROOM's times (see ``_vroom_timing``), or as it is when they would not do:
    remote-doctor calls bind the times, or the order cannot be timed VROOM's way."""
    if problem.calls_limited() and any(j.video_call_seconds for j in problem.jobs):
        return route
    breaks = {b.id: b for b in v.breaks}
    body = [s for s in route.steps if s.type in ("job", "break")]
    items = [(s.type, jobs[s.id] if s.type == "job" else breaks[s.id]) for s in body]
    timing = _vroom_timing(v, items, problem.durations)
    if timing is None:
        return route
    start, starts, end = timing
    steps = [Step("start", None, start, location=v.start)]
    steps += [replace(s, arrival=t) for s, t in zip(body, starts)]
    steps.append(Step("end", None, end, location=v.end))
    return replace(route, steps=tuple(steps))


def to_vroom_output(solution: Solution, problem: Problem, echo: Echo | None = None, *,
                    vroom_times: bool = True) -> dict:
    """The Solution in VROOM's output format. With ``vroom_times`` each route keeps its order and
    is timed as VROOM times one (``_vroom_timing``); else the plan's own service starts are kept
    (``Step.arrival`` of a job is its service start, of a break its start). Arrivals, waits and
    cumulative durations follow from those starts and the matrix, VROOM's way: arrive, wait, serve;
    a break is taken where the vehicle is, after driving the part of the next leg that fits before it."""
    echo = echo or Echo()
    D, M = problem.durations, echo.distances
    jobs, vehicles = problem.job_by_id(), problem.vehicle_by_id()
    size = max([len(v.capacity) for v in problem.vehicles] + [len(j.delivery) for j in problem.jobs]
               + [len(j.pickup) for j in problem.jobs] + [0])
    previous_vehicle = {jid: vid for vid, seq in problem.previous_routes.items() for jid in seq}

    def where(loc: int | None) -> dict:
        out: dict[str, Any] = {}
        if loc is None:
            return out
        if loc in echo.coords:
            out["location"] = echo.coords[loc]
        if echo.indices:
            out["location_index"] = loc
        return out

    routes = []
    for r in solution.routes:
        if vroom_times:
            r = _retimed(problem, r, vehicles[r.vehicle], jobs)
        v = vehicles[r.vehicle]
        body = [s for s in r.steps if s.type != "start"]
        task_locs = [jobs[s.id].location for s in body if s.type == "job"]
        route_jobs = [jobs[s.id] for s in body if s.type == "job"]
        load = _sum((j.delivery for j in route_jobs), size)
        start_t = r.steps[0].arrival if r.steps and r.steps[0].type == "start" else None
        loc = v.start if v.start is not None else (task_locs[0] if task_locs else v.end)
        # each gap's drive: to the next job, or to the end
        legs: list[int] = []
        metres: list[int] = []  # each leg's distance, when distances were given
        cur = loc
        for s in body:
            if s.type == "break":
                continue
            dest = jobs[s.id].location if s.type == "job" else v.end
            legs.append(D[cur][dest] if cur is not None and dest is not None else 0)
            metres.append(M[cur][dest] if M is not None and cur is not None and dest is not None else 0)
            cur = dest if dest is not None else cur
        if start_t is None:
            start_t = body[0].arrival if body else v.time_window[0]
        # VROOM starts as late as the first task allows: no waiting before it
        if body and body[0].type == "job":
            start_t = max(start_t, body[0].arrival - legs[0])
        steps: list[dict] = [{"type": "start", **where(loc), "setup": 0, "service": 0, "waiting_time": 0,
                              **({"load": list(load)} if size else {}), "arrival": start_t, "duration": 0,
                              "violations": [], **({"distance": 0} if M is not None else {})}]
        free, travelled, leg_i = start_t, 0, 0
        distance = gap_distance = 0  # through the last leg driven; of the current leg so far
        pending = legs[0] if legs else 0
        service = waiting = priority = cost_extra = setups = 0
        for s in body:
            step: dict[str, Any] = {"type": s.type}
            if s.type == "break":
                b = next(b for b in v.breaks if b.id == s.id)
                before = min(pending, max(0, s.arrival - free))
                pending -= before
                travelled += before
                arrival = free + before
                if legs[leg_i]:  # VROOM's pro rata of the leg, rounded half up
                    gap_distance += int(before * metres[leg_i] / legs[leg_i] + 0.5)
                step.update(id=s.id, setup=0, service=b.service)
                if (d := echo.break_description.get((v.id, b.id))) is not None:
                    step["description"] = d
                svc = b.service
            else:
                travelled += pending
                arrival = free + pending
                distance += metres[leg_i] if leg_i < len(metres) else 0
                gap_distance = 0
                leg_i += 1
                pending = legs[leg_i] if leg_i < len(legs) else 0
                if s.type == "job":
                    j = jobs[s.id]
                    setup = echo.job_setup.get(j.id, 0)
                    step.update(where(j.location), id=j.id, setup=setup, service=j.service - setup)
                    setups += setup
                    if (d := echo.job_description.get(j.id)) is not None:
                        step["description"] = d
                    svc = j.service
                    priority += j.priority
                    load = [load[d] - (j.delivery[d] if d < len(j.delivery) else 0)
                            + (j.pickup[d] if d < len(j.pickup) else 0) for d in range(size)]
                    if j.id in previous_vehicle and previous_vehicle[j.id] != v.id:
                        cost_extra += problem.reassignment_cost
                else:  # end
                    step.update(where(v.end if v.end is not None else cur), setup=0, service=0)
                    svc = 0
            begin = arrival if s.type == "end" else s.arrival
            wait = begin - arrival
            step["waiting_time"] = wait
            if s.type == "job":
                step["job"] = s.id
            if size:
                step["load"] = list(load)
            step.update(arrival=arrival, duration=travelled, violations=[])
            if M is not None:
                step["distance"] = distance + gap_distance
            steps.append(step)
            service += svc - step["setup"]
            waiting += wait
            free = begin + svc
        if not any(s["type"] == "end" for s in steps):
            steps.append({"type": "end", **where(cur), "setup": 0, "service": 0, "waiting_time": 0,
                          **({"load": list(load)} if size else {}), "arrival": free, "duration": travelled,
                          "violations": [], **({"distance": distance} if M is not None else {})})
        # VROOM (CostWrapper::user_cost_from_user_metrics): travel x per_hour / 3600, rounded half up
        route: dict[str, Any] = {"vehicle": v.id, "cost": (travelled * echo.per_hour * 2 + 3600) // 7200 + cost_extra}
        if (d := echo.vehicle_description.get(v.id)) is not None:
            route["description"] = d
        if size:
            route["delivery"] = _sum((j.delivery for j in route_jobs), size)
            route["amount"] = route["delivery"]
            route["pickup"] = _sum((j.pickup for j in route_jobs), size)
        route.update(setup=setups, service=service, duration=travelled, waiting_time=waiting, priority=priority,
                     steps=steps, violations=[])
        if M is not None:
            route["distance"] = distance
        routes.append(route)
    summary: dict[str, Any] = {"cost": sum(r["cost"] for r in routes), "routes": len(routes),
                               "unassigned": len(solution.unassigned)}
    if size:
        summary["delivery"] = _sum((r["delivery"] for r in routes), size)
        summary["amount"] = summary["delivery"]
        summary["pickup"] = _sum((r["pickup"] for r in routes), size)
    summary.update(setup=sum(r["setup"] for r in routes), service=sum(r["service"] for r in routes), duration=sum(r["duration"] for r in routes),
                   waiting_time=sum(r["waiting_time"] for r in routes), priority=sum(r["priority"] for r in routes),
                   violations=[], **({"distance": sum(r["distance"] for r in routes)} if M is not None else {}),
                   computing_times={"loading": int(solution.loading_time_ms),
                                                   "solving": int(solution.computing_time_ms), "routing": 0})
    unassigned = []
    for jid in solution.unassigned:
        j = jobs[jid]
        u: dict[str, Any] = {"id": jid, **where(j.location), "type": "job"}
        if (d := echo.job_description.get(jid)) is not None:
            u["description"] = d
        unassigned.append(u)
    return {"code": 0, "summary": summary, "unassigned": unassigned, "routes": routes}


def problem_to_vroom_input(problem: Problem) -> dict:
    """The Problem as VROOM input JSON (with the duration matrix; extensions only when set)."""
    size = max([len(v.capacity) for v in problem.vehicles] + [len(j.delivery) for j in problem.jobs]
               + [len(j.pickup) for j in problem.jobs] + [0])

    def sized(a: tuple[int, ...]) -> list[int]:
        return list(a) + [0] * (size - len(a))

    vehicles = []
    for v in problem.vehicles:
        rv: dict[str, Any] = {"id": v.id}
        if v.start is not None:
            rv["start_index"] = v.start
        if v.end is not None:
            rv["end_index"] = v.end
        if v.time_window not in UNBOUNDED:
            rv["time_window"] = list(v.time_window)
        if v.skills:
            rv["skills"] = sorted(v.skills)
        if size:
            # VROOM needs one amount size everywhere; a missing dimension is unbounded
            rv["capacity"] = [v.capacity[d] if d < len(v.capacity) else UINT32_MAX for d in range(size)]
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
            rj["delivery"] = sized(j.delivery)
        if j.pickup:
            rj["pickup"] = sized(j.pickup)
        if j.video_call_seconds:
            rj["video_call_seconds"] = j.video_call_seconds
        jobs.append(rj)
    out: dict[str, Any] = {"vehicles": vehicles, "jobs": jobs,
                           "matrices": {"car": {"durations": [list(r) for r in problem.durations]}}}
    if problem.remote_doctors is not None:
        out["remote_doctors"] = problem.remote_doctors
    if problem.call_shifts:
        out["call_shifts"] = [list(s) for s in problem.call_shifts]
    if problem.locked:
        out["locked"] = {str(k): list(v) for k, v in problem.locked.items()}
    if problem.previous_routes:
        out["previous_routes"] = {str(k): list(v) for k, v in problem.previous_routes.items()}
    if problem.reassignment_cost:
        out["reassignment_cost"] = problem.reassignment_cost
    return out
