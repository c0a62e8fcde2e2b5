"""Immutable problem data for the routing optimizer.

All times are integer seconds on one common axis (e.g. seconds since local midnight, or since the
Unix epoch — the optimizer only needs consistency). Locations are indices into ``durations``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

TimeWindow = tuple[int, int]

#: Time horizon used when a vehicle or job has no window (VROOM: "no constraint").
UNBOUNDED_END = 2**31 - 1


@dataclass(frozen=True)
class Break:
    """A break of ``service`` seconds starting inside one of ``time_windows`` (VROOM semantics)."""

    id: int
    time_windows: tuple[TimeWindow, ...]
    service: int = 0


@dataclass(frozen=True)
class Job:
    """One visit. ``time_windows`` constrain the service start; empty = anytime.

    ``video_call_seconds`` > 0 marks a nurse visit that ends with a video call with a remote doctor:
    the call runs in [service start + service, ... + video_call_seconds] and needs a free doctor.

    Amounts as VROOM's: ``delivery`` is loaded at the vehicle's start and dropped here, ``pickup``
    is picked up here and brought back to the end. The optimizer counts ``delivery`` against
    ``capacity``; ``pickup`` is read by ``vroom_io`` (which hands the optimizer pickup-only
    dimensions as deliveries, an equivalent constraint) and by the feasibility checker;
    ``optimizer.solve`` refuses a job with ``pickup`` amounts (ValueError) rather than ignore them.
    """

    id: int
    location: int
    service: int = 0
    time_windows: tuple[TimeWindow, ...] = ()
    skills: frozenset[int] = frozenset()
    priority: int = 0
    delivery: tuple[int, ...] = ()
    video_call_seconds: int = 0
    pickup: tuple[int, ...] = ()


# "Visit" is the domain word; "Job" is VROOM's.
Visit = Job


@dataclass(frozen=True)
class Vehicle:
    """A clinician's shift: from ``start`` to ``end`` (location indices) inside ``time_window``.

    ``max_tasks`` (VROOM's) bounds the jobs of its route; the optimizer does not model it
    (``optimizer.solve`` refuses it with a ValueError): ``vroom_io.for_optimizer`` hands it over as
    one more capacity dimension, and the feasibility checker checks it.
    """

    id: int
    start: int | None
    end: int | None
    time_window: TimeWindow = (0, UNBOUNDED_END)
    skills: frozenset[int] = frozenset()
    capacity: tuple[int, ...] = ()
    breaks: tuple[Break, ...] = ()
    max_tasks: int | None = None


@dataclass(frozen=True)
class Problem:
    """A routing problem.

    - ``durations[i][j]``: travel seconds from location i to j (also the travel cost).
    - ``remote_doctors``: how many remote doctors can hold video calls at the same time
      (None = unlimited; 0 = no nurse visit with a call can be served).
    - ``call_shifts``: the shifts (start, end) of the doctors on video calls; when given they replace
      ``remote_doctors``: a call lies inside one stretch of constant doctors on shift and never more
      calls run at once than that stretch has doctors (``homevisits.video_calls``), so each call of a
      plan gets a named doctor. The calls of locked visits (under way) are facts, not constrained.
    - ``locked``: vehicle id -> ordered job ids that must stay first in that vehicle's route.
    - ``previous_routes``: vehicle id -> ordered job ids of the previous plan (warm start, stability).
    - ``reassignment_cost``: cost units added when a job served in ``previous_routes`` by one
      vehicle is served by another one.
    """

    vehicles: tuple[Vehicle, ...]
    jobs: tuple[Job, ...]
    durations: tuple[tuple[int, ...], ...]
    remote_doctors: int | None = None
    call_shifts: tuple[TimeWindow, ...] = ()
    locked: dict[int, tuple[int, ...]] = field(default_factory=dict)
    previous_routes: dict[int, tuple[int, ...]] = field(default_factory=dict)
    reassignment_cost: int = 0

    def __hash__(self) -> int:  # dict fields are not hashable; identity is fine for a frozen value
        return id(self)

    def calls_limited(self) -> bool:
        """Do the video calls compete for doctors (a count, or doctors on shift)?"""
        return self.remote_doctors is not None or bool(self.call_shifts)

    def job_by_id(self) -> dict[int, Job]:
        return {j.id: j for j in self.jobs}

    def vehicle_by_id(self) -> dict[int, Vehicle]:
        return {v.id: v for v in self.vehicles}

    def validate(self) -> None:
        """Raise ValueError on structurally bad data (ids, indices, windows, matrix shape)."""
        n = len(self.durations)
        for row in self.durations:
            if len(row) != n:
                raise ValueError("duration matrix must be square")
            if row and min(row) < 0:
                raise ValueError("durations must be >= 0")
        ids = [j.id for j in self.jobs]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate job id")
        vids = [v.id for v in self.vehicles]
        if len(set(vids)) != len(vids):
            raise ValueError("duplicate vehicle id")
        for j in self.jobs:
            if not 0 <= j.location < n:
                raise ValueError(f"job {j.id}: location index {j.location} outside the matrix")
            if j.service < 0 or j.video_call_seconds < 0:
                raise ValueError(f"job {j.id}: negative duration")
            if not 0 <= j.priority <= 100:
                raise ValueError(f"job {j.id}: priority must be in 0..100")
            for a, b in j.time_windows:
                if a > b:
                    raise ValueError(f"job {j.id}: time window start after end")
        for v in self.vehicles:
            if v.start is None and v.end is None:
                raise ValueError(f"vehicle {v.id}: needs a start or an end")
            for loc in (v.start, v.end):
                if loc is not None and not 0 <= loc < n:
                    raise ValueError(f"vehicle {v.id}: location index {loc} outside the matrix")
            if v.time_window[0] > v.time_window[1]:
                raise ValueError(f"vehicle {v.id}: time window start after end")
            for b in v.breaks:
                for a, e in b.time_windows:
                    if a > e:
                        raise ValueError(f"break {b.id}: time window start after end")
        for a, b in self.call_shifts:
            if a > b:
                raise ValueError("call shift start after end")
        jobs = self.job_by_id()
        for vid, seq in list(self.locked.items()) + list(self.previous_routes.items()):
            if vid not in vids:
                raise ValueError(f"unknown vehicle {vid} in locked/previous_routes")
        seen: set[int] = set()
        vehicles = self.vehicle_by_id()
        for vid, seq in self.locked.items():
            for jid in seq:
                if jid not in jobs:
                    raise ValueError(f"locked job {jid} unknown")
                if not jobs[jid].skills <= vehicles[vid].skills:
                    raise ValueError(f"locked job {jid} needs skills vehicle {vid} lacks")
                if jid in seen:
                    raise ValueError(f"job {jid} locked twice")
                seen.add(jid)


@dataclass(frozen=True)
class Step:
    type: str  # "start" | "job" | "break" | "end"
    id: int | None  # job or break id; None for start/end
    arrival: int  # service start (seconds)
    service: int = 0
    waiting_time: int = 0
    location: int | None = None


@dataclass(frozen=True)
class Route:
    vehicle: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Solution:
    routes: tuple[Route, ...]
    unassigned: tuple[int, ...]
    cost: int  # travel duration + reassignment costs (no penalties)
    duration: int  # total travel seconds
    service: int
    waiting_time: int
    computing_time_ms: int = 0
    loading_time_ms: int = 0
    status: str = ""
