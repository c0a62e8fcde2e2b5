"""The OR-Tools routing model of a problem, and the objective it minimises.

One routing node per visit plus a start and an end node per vehicle:
- arc cost = travel duration (``problem.durations``); no fixed vehicle cost, no span cost;
- time dimension: transit = service(from) + travel; slack = waiting; visit windows via
  SetRange/RemoveInterval; vehicle windows on start and end cumuls;
- skills: VehicleVar(i).SetValues([-1] + allowed) (SetAllowedVehiclesForIndex does not take a
  Python list in ortools 9.15);
- priorities: one disjunction per visit with penalty ``big * (1 + 101 * priority)`` where ``big``
  exceeds any insertion detour, so serving a visit always pays, and one visit of priority p is
  worth more than 101 visits of priority < p;
- capacity: one dimension per amount index (``delivery`` / vehicle ``capacity``);
- breaks: SetBreakIntervalsOfVehicle (never overlapping a service; taken before/while driving or
  on arrival); no "inside the route span" constraint (it needs the slow CP feasibility filter): a
  break placed before the start / after the end is taken at the start / end location;
- remote doctors: an optional call interval after each nurse visit with a video call, and a
  Cumulative constraint of capacity ``remote_doctors`` over them (checked by the CP filter); with
  doctors on shift (``call_shifts``) the capacity follows them: fixed blocker intervals take the
  doctors off shift out of it, and ``with_call_windows`` keeps each call inside one stretch of them;
- stability: a "reassign" dimension with per-vehicle unary transits (``reassignment_cost`` for a
  visit whose previous vehicle was another one), span cost coefficient 1;
- locks: NextVar chains from the vehicle start (locked visits are mandatory).
"""
from __future__ import annotations

import random
from itertools import compress
from operator import itemgetter
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from homevisits import video_calls

from ..problem import UNBOUNDED_END, Job, Problem, TimeWindow


@dataclass
class Model:
    """A built routing model and the maps between visits and its nodes."""

    problem: Problem
    jobs: list[Job]  # model jobs, in node order
    unservable: list[int]  # job ids no vehicle can serve
    node_loc: list[int | None]
    node_service: list[int]
    # OR-Tools' objects (untyped; OR-Tools is imported when first needed): set by ``build``
    manager: Any = None  # pywrapcp.RoutingIndexManager
    routing: Any = None  # pywrapcp.RoutingModel
    time_dim: Any = None  # pywrapcp.RoutingDimension
    break_intervals: dict = field(default_factory=dict)  # name -> (vehicle id, Break)
    job_index: dict = field(default_factory=dict)


def ortools_loaded() -> bool:
    """Whether OR-Tools is imported yet. It is imported when first needed (``build``,
    ``config.search_parameters``), not with this package: the import takes 0.15-0.35 s, which a
    1-second plan of 1 000 visits has no room for once our insertion has planned them."""
    return "ortools.constraint_solver.pywrapcp" in sys.modules


def largest_arc(problem: Problem) -> int:
    """The largest matrix entry (remembered for the last matrix: sub-problems share it)."""
    D = problem.durations
    if _LARGEST[0] is not D:
        _LARGEST[:] = [D, max((max(r) for r in D if r), default=0)]
    return _LARGEST[1]


_LARGEST: list = [None, 0]


def penalty_unit(problem: Problem, max_arc: int) -> int:
    """``big``: more than any insertion detour, so serving a visit always pays."""
    return 2 * max_arc + problem.reassignment_cost + 1


def unassigned_penalty(big: int, jobs) -> int:
    """What leaving ``jobs`` unassigned costs in the objective: one priority level outweighs 101
    visits of the levels below."""
    return sum(big * (1 + 101 * j.priority) for j in jobs)


def _horizon(problem: Problem, max_arc: int | None = None) -> int:
    ends = [v.time_window[1] for v in problem.vehicles]
    ends += [w[1] for j in problem.jobs for w in j.time_windows]
    finite = [e for e in ends if e < UNBOUNDED_END]
    if max_arc is None:
        max_arc = largest_arc(problem)
    bound = sum(j.service + j.video_call_seconds for j in problem.jobs)
    bound += (len(problem.jobs) + 1) * max_arc
    bound += sum(b.service for v in problem.vehicles for b in v.breaks)
    h = max(finite, default=0) + bound
    return min(h, 2**40)


def allowed_vehicles(problem: Problem, job: Job) -> list[int]:
    """Positions of the vehicles with the skills ``job`` needs."""
    if not job.skills:
        return list(range(len(problem.vehicles)))
    return [k for k, v in enumerate(problem.vehicles) if job.skills <= v.skills]


def unservable(problem: Problem) -> set[int]:
    """Ids of the visits no plan can serve: no vehicle has their skills, or they need a remote
    doctor and there is none (no doctor on shift when their call could run) (locked visits are kept:
    the model then fails on them)."""
    locked = {jid for seq in problem.locked.values() for jid in seq}
    return {j.id for j in problem.jobs if j.id not in locked
            and (not allowed_vehicles(problem, j) or no_doctor_for(problem, j))}


def no_doctor_for(problem: Problem, job: Job) -> bool:
    """Does ``job``'s video call find no remote doctor at any time it could run?"""
    if job.video_call_seconds <= 0:
        return False
    if problem.call_shifts:
        return not call_windows(problem, job)
    return problem.remote_doctors == 0


def call_windows(problem: Problem, job: Job) -> tuple[TimeWindow, ...]:
    """``job``'s service-start windows cut to where its call lies inside one stretch of doctors on
    shift (``problem.call_shifts``); empty when nowhere."""
    segs = video_calls.segments(problem.call_shifts)
    allowed = [(a - job.service, b - job.service)
               for a, b in video_calls.call_start_windows(segs, job.video_call_seconds)]
    wins = job.time_windows or ((0, UNBOUNDED_END),)
    return tuple(sorted((max(a, c), min(b, d)) for a, b in wins for c, d in allowed if max(a, c) <= min(b, d)))


def with_call_windows(problem: Problem) -> Problem:
    """``problem`` with each video-call visit's windows cut to its ``call_windows`` when doctors are
    on shift for calls (not the locked visits: theirs are happening; nor those whose call fits
    nowhere: ``unservable`` leaves them out)."""
    if not problem.call_shifts:
        return problem
    locked = {jid for seq in problem.locked.values() for jid in seq}
    jobs = []
    for j in problem.jobs:
        if j.video_call_seconds > 0 and j.id not in locked:
            wins = call_windows(problem, j)
            if wins and wins != tuple(sorted(j.time_windows)):
                j = replace(j, time_windows=wins)
        jobs.append(j)
    return replace(problem, jobs=tuple(jobs))


class Neighbours:
    """Visit id -> the ``k`` nearest other visits of ``candidates`` (by travel from it), nearest
    first, each list computed when first asked for: the ruin & recreate asks for a few hundred
    seeds a second, so a large day never pays for all of them up front. Plain Python at C speed
    (the Lambda ships without numpy): a threshold from a sample of the row keeps a few dozen
    candidates to sort (~0.05 ms a visit on 1 000 visits, where a Python key per pair took ms)."""

    def __init__(self, problem: Problem, candidates, k: int):
        self.jobs = problem.job_by_id()
        self.D = problem.durations
        self.cands = list(candidates)
        self.k = k
        locs = [self.jobs[b].location for b in self.cands]
        if locs and locs == list(range(locs[0], locs[0] + len(locs))):
            self.get = itemgetter(slice(locs[0], locs[0] + len(locs)))  # one location per visit, in order
        else:
            self.get = itemgetter(*locs) if locs else None
        self.cache: dict[int, list[int]] = {}

    def __getitem__(self, a: int) -> list[int]:
        got = self.cache.get(a)
        if got is None:
            got = self.cache[a] = self._nearest(a)
        return got

    def _nearest(self, a: int) -> list[int]:
        n, k, cands = len(self.cands), self.k, self.cands
        if n == 0:
            return []
        d = self.get(self.D[self.jobs[a].location])
        d = d if isinstance(d, (tuple, list)) else (d,)  # itemgetter of one item gives the bare item
        idx = range(n)
        if n > 8 * (k + 1):
            step = max(1, n // 128)
            sample = sorted(d[::step])
            thr = sample[min(len(sample) - 1, 3 * (k + 1) * len(sample) // n + 2)]
            near = list(compress(range(n), map(thr.__ge__, d)))
            if len(near) > k:
                idx = near
        order = sorted(idx, key=d.__getitem__)[:k + 1]
        return [cands[i] for i in order if cands[i] != a][:k]


def _windows_domain(cumul, windows, lo, hi):
    if not windows:
        cumul.SetRange(lo, hi)
        return
    ws = sorted(windows)
    cumul.SetRange(max(lo, ws[0][0]), min(hi, max(w[1] for w in ws)))
    reach = ws[0][1]
    for a, b in ws[1:]:
        if a > reach + 1:
            cumul.RemoveInterval(reach + 1, a - 1)
        reach = max(reach, b)


def build(problem: Problem, seed: int = 0, *, validate: bool = True,
          max_arc: int | None = None) -> Model:
    """The routing model of ``problem``. ``validate=False`` and a precomputed ``max_arc`` (largest
    matrix entry) skip the O(matrix) passes for the LNS sub-models (the matrix is the big one)."""
    from ortools.constraint_solver import pywrapcp  # see ortools_loaded

    if validate:
        problem.validate()
    if max_arc is None:
        max_arc = largest_arc(problem)
    locked_ids = {jid for seq in problem.locked.values() for jid in seq}
    vid_to_k = {v.id: k for k, v in enumerate(problem.vehicles)}
    out = unservable(problem)
    jobs = [j for j in problem.jobs if j.id not in out]
    unservable_ids = [j.id for j in problem.jobs if j.id in out]
    if seed:
        rng = random.Random(seed)
        rng.shuffle(jobs)
    nv = len(problem.vehicles)
    node_loc: list[int | None] = [j.location for j in jobs]
    node_service = [j.service for j in jobs]
    starts, ends = [], []
    for v in problem.vehicles:
        starts.append(len(node_loc))
        node_loc.append(v.start)
        node_service.append(0)
        ends.append(len(node_loc))
        node_loc.append(v.end)
        node_service.append(0)
    m = Model(problem, jobs, unservable_ids, node_loc, node_service)
    n = len(node_loc)
    manager = pywrapcp.RoutingIndexManager(n, nv, starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    m.manager, m.routing = manager, routing
    solver = routing.solver()

    dur = problem.durations
    zeros = [0] * n
    travel = [zeros if la is None else [0 if lb is None else dur[la][lb] for lb in node_loc] for la in node_loc]
    time_m = [[node_service[a] + t for t in travel[a]] for a in range(n)]
    travel_cb = routing.RegisterTransitMatrix(travel)
    time_cb = routing.RegisterTransitMatrix(time_m)
    routing.SetArcCostEvaluatorOfAllVehicles(travel_cb)

    horizon = _horizon(problem, max_arc)
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    m.time_dim = time_dim

    # Job windows, skills, priorities.
    big = penalty_unit(problem, max_arc)
    for node, j in enumerate(jobs):
        idx = manager.NodeToIndex(node)
        m.job_index[j.id] = idx
        _windows_domain(time_dim.CumulVar(idx), j.time_windows, 0, horizon)
        allowed = allowed_vehicles(problem, j)
        if len(allowed) < nv:
            # (SetAllowedVehiclesForIndex is not callable from Python in 9.15: Span typemap)
            routing.VehicleVar(idx).SetValues([-1] + allowed)
        if j.id not in locked_ids:
            routing.AddDisjunction([idx], unassigned_penalty(big, (j,)))

    # Vehicle windows.
    for k, v in enumerate(problem.vehicles):
        lo, hi = v.time_window
        hi = min(hi, horizon)
        time_dim.CumulVar(routing.Start(k)).SetRange(lo, hi)
        time_dim.CumulVar(routing.End(k)).SetRange(lo, hi)

    # Capacity.
    ndim = max([len(j.delivery) for j in jobs] + [len(v.capacity) for v in problem.vehicles] + [0])
    for d in range(ndim):
        demand = [0] * n
        for node, j in enumerate(jobs):
            demand[node] = j.delivery[d] if d < len(j.delivery) else 0
        if not any(demand):
            continue
        cb = routing.RegisterUnaryTransitVector(demand)
        caps = []
        for v in problem.vehicles:
            caps.append(v.capacity[d] if d < len(v.capacity) else sum(demand))
        routing.AddDimensionWithVehicleCapacity(cb, 0, caps, True, f"capacity{d}")

    # Breaks.
    node_visit_transits = [0] * routing.Size()
    for node, j in enumerate(jobs):
        node_visit_transits[manager.NodeToIndex(node)] = j.service
    for k, v in enumerate(problem.vehicles):
        intervals = []
        for b in v.breaks:
            wins = [(max(a, v.time_window[0]), min(e, v.time_window[1] - b.service)) for a, e in b.time_windows] \
                if b.time_windows else [(v.time_window[0], v.time_window[1] - b.service)]
            wins = sorted((a, e) for a, e in wins if a <= e)
            if not wins:
                raise ValueError(f"vehicle {v.id}: break {b.id} cannot fit in the vehicle's time window")
            name = f"break:{k}:{b.id}"
            start = solver.IntVar(wins[0][0], min(max(e for _, e in wins), horizon), name + ":start")
            reach = wins[0][1]
            for a, e in wins[1:]:
                if a > reach + 1:
                    start.RemoveInterval(reach + 1, a - 1)
                reach = max(reach, e)
            iv = solver.FixedDurationIntervalVar(start, b.service, name)
            intervals.append(iv)
            m.break_intervals[name] = (v.id, b)
            # No "break inside the route span" constraint: it would need the (slow) CP feasibility
            # filter in every insertion. A break OR-Tools puts before the start / after the end is
            # taken at the start / end location (the route then starts earlier / ends later).
        if intervals:
            time_dim.SetBreakIntervalsOfVehicle(intervals, k, node_visit_transits)

    # Remote doctors: capacity on the video calls following nurse visits.
    if problem.call_shifts:
        _doctors_on_shift(problem, m, solver, horizon, locked_ids)
    elif problem.remote_doctors is not None:
        calls, demands = [], []
        for node, j in enumerate(jobs):
            if j.video_call_seconds <= 0:
                continue
            idx = manager.NodeToIndex(node)
            call_start = solver.IntVar(0, horizon + j.service, f"call:{j.id}")
            solver.Add(call_start == time_dim.CumulVar(idx) + j.service)
            iv = solver.FixedDurationIntervalVar(call_start, j.video_call_seconds, routing.ActiveVar(idx),
                                                 f"calliv:{j.id}")
            calls.append(iv)
            demands.append(1)
        if calls and len(calls) > problem.remote_doctors:
            solver.Add(solver.Cumulative(calls, demands, problem.remote_doctors, "remote_doctors"))

    # Stability: reassignment cost through a per-vehicle unary-transit dimension.
    prev_vehicle = {}
    for vid, seq in problem.previous_routes.items():
        for jid in seq:
            prev_vehicle[jid] = vid
    if problem.reassignment_cost > 0 and prev_vehicle:
        cbs = []
        for v in problem.vehicles:
            vec = [0] * n
            for node, j in enumerate(jobs):
                pv = prev_vehicle.get(j.id)
                if pv is not None and pv != v.id:
                    vec[node] = problem.reassignment_cost
            cbs.append(routing.RegisterUnaryTransitVector(vec))
        cap = problem.reassignment_cost * (len(jobs) + 1)
        routing.AddDimensionWithVehicleTransits(cbs, 0, cap, True, "reassign")
        routing.GetDimensionOrDie("reassign").SetSpanCostCoefficientForAllVehicles(1)

    # Locks: fixed chains from the vehicle start.
    for vid, seq in problem.locked.items():
        k = vid_to_k[vid]
        prev = routing.Start(k)
        for jid in seq:
            idx = m.job_index[jid]
            solver.Add(routing.NextVar(prev) == idx)
            solver.Add(routing.VehicleVar(idx) == k)
            prev = idx

    # Finalizer: earliest service starts (consistent values for all time cumuls).
    for i in range(routing.Size()):
        routing.AddVariableMinimizedByFinalizer(time_dim.CumulVar(i))
    for k in range(nv):
        routing.AddVariableMinimizedByFinalizer(time_dim.CumulVar(routing.End(k)))
    return m


def _doctors_on_shift(problem: Problem, m: Model, solver, horizon: int, locked_ids: set) -> None:
    """The calls (of visits not locked) against the doctors on shift over the day: one Cumulative of
    the most doctors ever on shift, with fixed intervals holding the places of those off shift."""
    segs = video_calls.segments(problem.call_shifts)
    cap = max((n for _, _, n in segs), default=0)
    calls = []
    for j in m.jobs:
        if j.video_call_seconds <= 0 or j.id in locked_ids:
            continue
        idx = m.job_index[j.id]
        call_start = solver.IntVar(0, horizon + j.service, f"call:{j.id}")
        solver.Add(call_start == m.time_dim.CumulVar(idx) + j.service)
        calls.append(solver.FixedDurationIntervalVar(call_start, j.video_call_seconds, m.routing.ActiveVar(idx),
                                                     f"calliv:{j.id}"))
    if not calls or cap <= 0:
        return
    end = horizon + max(j.service + j.video_call_seconds for j in m.jobs) + 1
    blockers, demands, t = [], [], 0
    for a, b, n in segs + [(end, end, cap)]:
        if a > t:
            blockers.append(solver.FixedInterval(t, a - t, f"off:{t}"))
            demands.append(cap)
        if n < cap and b > a:
            blockers.append(solver.FixedInterval(a, b - a, f"few:{a}"))
            demands.append(cap - n)
        t = max(t, b)
    solver.Add(solver.Cumulative(calls + blockers, [1] * len(calls) + demands, cap, "doctors_on_shift"))


def job_routes(m: Model, assignment) -> dict[int, list[int]]:
    """Vehicle id -> visit ids in order, of an assignment of ``m``."""
    routing = m.routing
    jobs_by_idx = {m.job_index[j.id]: j.id for j in m.jobs}
    out = {}
    for k, v in enumerate(m.problem.vehicles):
        idx = assignment.Value(routing.NextVar(routing.Start(k)))
        seq = []
        while not routing.IsEnd(idx):
            seq.append(jobs_by_idx[idx])
            idx = assignment.Value(routing.NextVar(idx))
        out[v.id] = seq
    return out


def route_cost(problem: Problem, v, seq: list[int], jobs: dict, prev_vehicle: dict) -> int:
    """Travel of one route (start -> jobs -> end) + its reassignment costs: the model's objective."""
    D = problem.durations
    loc, c = v.start, 0
    for jid in seq:
        jl = jobs[jid].location
        if loc is not None:
            c += D[loc][jl]
        loc = jl
        pv = prev_vehicle.get(jid)
        if pv is not None and pv != v.id:
            c += problem.reassignment_cost
    if loc is not None and v.end is not None:
        c += D[loc][v.end]
    return c


def objective(problem: Problem, sol) -> int:
    """What the search minimises, for a whole plan: travel + reassignments + the priority-weighted
    penalties of the unassigned visits (unservable ones count the same in every plan)."""
    jobs = problem.job_by_id()
    return sol.cost + unassigned_penalty(penalty_unit(problem, largest_arc(problem)),
                                          (jobs[j] for j in sol.unassigned))
