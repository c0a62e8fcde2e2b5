"""Construction: a complete first plan, fast, before any improvement.

``insert`` is our own insertion (plain Python, no numpy: the Lambda ships without it): visits
farthest first (or by window), each at the cheapest feasible place next to one of its nearest
planned visits, else in the routes of more neighbours, or on a new route when that costs less (on
R2/RC2 1-10 % less travel than opening one only when nothing else fits), else anywhere it fits. Feasibility is exact (windows,
several windows per visit, the vehicle's shift, capacity, skills, breaks, locked prefixes): a
break is a stop at the previous place, taken as early as its window allows, which is one of the
schedules OR-Tools' break model accepts. 1 000 visits take ~0.3 s where OR-Tools' own first
solutions take minutes (PARALLEL_CHEAPEST_INSERTION: 866-1000 of 1000 visits still unplanned
after 10 s).

``portfolio`` is for small problems (jobs x vehicles <= ``portfolio_max_size``): OR-Tools'
first-solution strategies each with a greedy descent on the full model; which first solution you
start from mattered more than the metaheuristic on 100-visit instances.
"""
from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, field

from ..problem import UNBOUNDED_END, Problem, Route, Solution, Step, Vehicle
from .config import SearchConfig, search_parameters
from .model import Neighbours, build, job_routes, unservable
from .plan import earliest_schedule, extract

_NEAR = 12  # nearest visits whose routes are tried first
_WIDE = 60  # ... and then


@dataclass
class _Stop:
    kind: str  # "job" | "break"
    id: int
    loc: int | None  # None for a break (taken where the vehicle is)
    service: int
    windows: list  # sorted (start, end) of the service start


@dataclass
class _Route:
    v: Vehicle
    stops: list = field(default_factory=list)
    starts: list = field(default_factory=list)  # service start of each stop
    load: list = field(default_factory=list)
    locked: int = -1  # stops up to and including this index are fixed (the locked prefix)
    prev_loc: list = field(default_factory=list)  # where the vehicle is before stop i (i = 0..len)
    next_loc: list = field(default_factory=list)  # where it drives next from there


def _locate(r: _Route) -> None:
    loc, prev = r.v.start, []
    for s in r.stops:
        prev.append(loc)
        if s.kind == "job":
            loc = s.loc
    prev.append(loc)
    loc, nxt = r.v.end, [r.v.end]
    for s in reversed(r.stops):
        if s.kind == "job":
            loc = s.loc
        nxt.append(loc)
    r.prev_loc, r.next_loc = prev, nxt[::-1]


def _first_start(arr: int, windows) -> int | None:
    for a, e in windows:
        if arr <= e:
            return max(arr, a)
    return None


class _Planner:
    def __init__(self, problem: Problem):
        self.p = problem
        self.D = problem.durations
        self.jobs = problem.job_by_id()

    def job_stop(self, jid: int) -> _Stop:
        j = self.jobs[jid]
        return _Stop("job", jid, j.location, j.service, sorted(j.time_windows) or [(0, UNBOUNDED_END)])

    def new_route(self, v: Vehicle) -> _Route:
        r = _Route(v, load=[0] * len(v.capacity))
        tw0, tw1 = v.time_window
        for b in sorted(v.breaks, key=lambda b: min((a for a, _ in b.time_windows), default=tw0)):
            wins = [(max(a, tw0), min(e, tw1 - b.service)) for a, e in b.time_windows] or [(tw0, tw1 - b.service)]
            r.stops.append(_Stop("break", b.id, None, b.service, sorted(w for w in wins if w[0] <= w[1])))
        _locate(r)
        starts = self.schedule(r, 0, list(r.stops))
        r.starts = starts if starts is not None else []
        return r if starts is not None else None

    def state_before(self, r: _Route, pos: int) -> tuple[int, int | None]:
        """(time the vehicle is free, where it is) before stop ``pos``."""
        t = r.starts[pos - 1] + r.stops[pos - 1].service if pos > 0 else r.v.time_window[0]
        return t, r.prev_loc[pos]

    def schedule(self, r: _Route, pos: int, stops: list, old: list | None = None) -> list | None:
        """Service starts of ``stops`` placed from position ``pos`` of ``r`` on (its earlier stops
        kept), or None if a window, the shift's end or a break does not fit. With ``old`` (the
        current starts from ``pos`` on, ``stops`` being one new stop + the current ones), stops as
        soon as a visit after another visit starts at its old time again (the rest is unchanged)."""
        D, v = self.D, r.v
        t, loc = self.state_before(r, pos)
        out = []
        job_seen = False
        for i, s in enumerate(stops):
            if s.kind == "job":
                arr = t + (D[loc][s.loc] if loc is not None else 0)
                loc = s.loc
            else:
                arr = t
            st = _first_start(arr, s.windows)
            if st is None:
                return None
            out.append(st)
            t = st + s.service
            if old is not None and i >= 1 and s.kind == "job":
                if job_seen and st == old[i - 1]:
                    return out
                job_seen = True
        if v.end is not None and loc is not None:
            t += D[loc][v.end]
        return out if t <= v.time_window[1] else None

    def fits_load(self, r: _Route, jid: int) -> bool:
        dl = self.jobs[jid].delivery
        return all(r.load[d] + (dl[d] if d < len(dl) else 0) <= c for d, c in enumerate(r.v.capacity))

    def delta(self, r: _Route, pos: int, loc: int) -> int:
        """Added travel of a visit at ``loc`` placed before stop ``pos``."""
        D = self.D
        prev, nxt = r.prev_loc[pos], r.next_loc[pos]
        a = D[prev][loc] if prev is not None else 0
        b = D[loc][nxt] if nxt is not None else 0
        c = D[prev][nxt] if prev is not None and nxt is not None else 0
        return a + b - c

    def try_insert(self, r: _Route, pos: int, stop: _Stop) -> list | None:
        """New starts from ``pos`` on if ``stop`` fits before stop ``pos``, else None."""
        new = self.schedule(r, pos, [stop] + r.stops[pos:], old=r.starts[pos:])
        if new is None:
            return None
        return new + r.starts[pos + len(new) - 1:]

    def apply(self, r: _Route, pos: int, stop: _Stop, new: list) -> None:
        r.stops.insert(pos, stop)
        r.starts[pos:] = new
        _locate(r)
        dl = self.jobs[stop.id].delivery
        for d in range(len(r.load)):
            r.load[d] += dl[d] if d < len(dl) else 0

    def best_in(self, r: _Route, positions, jid: int, stop: _Stop):
        """(added travel, position, new starts) of the cheapest feasible place among ``positions``."""
        if not self.fits_load(r, jid):
            return None
        cands = sorted((self.delta(r, pos, stop.loc), pos) for pos in positions if pos > r.locked)
        for cost, pos in cands:
            new = self.try_insert(r, pos, stop)
            if new is not None:
                return cost, pos, new
        return None


ORDERS = ("far", "window")


def insert(problem: Problem, start: dict[int, list[int]] | None = None, near=None,
           order: str = "far") -> Solution:
    """A plan by insertion (see the module docstring), starting from the locked prefixes and then
    ``start`` (vehicle id -> visit ids; the visits that no longer fit are inserted anew). Raises
    ValueError when a locked prefix cannot be kept. ``near``: visit id -> its ``_WIDE`` (or more)
    nearest servable visits, nearest first (a ``model.Neighbours``), made here if not given. ``order`` of the visits: "far" (farthest
    from the vehicles' starts first: on the 1 000-customer R1/R2/RC1/RC2 instances 3-16 % less
    travel and fewer routes) or "window" (earliest window first: better on clustered C1)."""
    pl = _Planner(problem)
    jobs = pl.jobs
    never = unservable(problem)
    routes: dict[int, _Route] = {}
    route_of: dict[int, int] = {}
    for v in problem.vehicles:
        r = pl.new_route(v)
        if r is None:
            raise ValueError(f"vehicle {v.id}: its breaks do not fit in its time window")
        routes[v.id] = r
    # Locked prefixes first (the first visits of their routes, in order), then the warm start.
    for vid, seq in problem.locked.items():
        r = routes[vid]
        for jid in seq:
            stop = pl.job_stop(jid)
            got = next(((pos, new) for pos in range(r.locked + 1, len(r.stops) + 1)
                        if pl.fits_load(r, jid) and (new := pl.try_insert(r, pos, stop)) is not None
                        and all(s.kind != "job" for s in r.stops[pos:])), None)
            if got is None:
                raise ValueError(f"no plan keeps the locked visits feasible (locked visit {jid} of "
                                 f"vehicle {vid} breaks a window, the shift, capacity or a break)")
            pl.apply(r, got[0], stop, got[1])
            r.locked = got[0]
            route_of[jid] = vid
    for vid, seq in (start or {}).items():
        r = routes.get(vid)
        if r is None:
            continue
        for jid in seq:
            if jid in route_of or jid in never or jid not in jobs or not jobs[jid].skills <= r.v.skills:
                continue
            stop = pl.job_stop(jid)
            # at the end of the route, or before the trailing breaks
            got = None
            for pos in range(len(r.stops), r.locked, -1):
                if pos < len(r.stops) and r.stops[pos].kind == "job":
                    break
                if pl.fits_load(r, jid) and (new := pl.try_insert(r, pos, stop)) is not None:
                    got = (pos, new)
            if got is not None:
                pl.apply(r, got[0], stop, got[1])
                route_of[jid] = vid
    todo = [j for j in problem.jobs if j.id not in route_of and j.id not in never]
    if order == "far":  # farthest from the nearest vehicle start first (routes reach out first)
        D = problem.durations
        bases = sorted({v.start for v in problem.vehicles if v.start is not None})[:20]
        todo.sort(key=lambda j: (-j.priority, -min((D[b][j.location] for b in bases), default=0)))
    else:  # "window": earliest window start first
        todo.sort(key=lambda j: (-j.priority, min((a for a, _ in j.time_windows), default=0),
                                 min((e for _, e in j.time_windows), default=UNBOUNDED_END)))
    if near is None:
        near = Neighbours(problem, [j.id for j in problem.jobs if j.id not in never], _WIDE)
    # Vehicles alike (same places, shift, skills, capacity, breaks): one empty one stands for all.
    empty: dict[tuple, list[int]] = {}
    used: list[int] = []
    for v in problem.vehicles:
        if any(s.kind == "job" for s in routes[v.id].stops):
            used.append(v.id)
        else:
            empty.setdefault((v.start, v.end, v.time_window, v.skills, v.capacity, v.breaks), []).append(v.id)
    wide = near  # its first _NEAR are the nearest (one sort per visit for both)
    unassigned = []
    for j in todo:
        stop = pl.job_stop(j.id)
        # next to one of its nearest planned visits
        best = _cheapest(pl, routes, j, stop, {route_of[b]: b for b in reversed(near[j.id][:_NEAR]) if b in route_of})
        if best is None:  # in the routes of more neighbours, around where its window starts
            best = _cheapest(pl, routes, j, stop, {route_of[b]: None for b in wide[j.id] if b in route_of})
        for vids in empty.values():  # a new route, if cheaper (R2/RC2: 1-10 % less travel, see docs)
            if vids and j.skills <= routes[vids[0]].v.skills:
                r = routes[vids[0]]
                got = pl.best_in(r, range(len(r.stops) + 1), j.id, stop)
                if got and (best is None or got[0] < best[0]):
                    best = (*got, vids[0])
        if best is None:  # anywhere it fits
            best = _cheapest(pl, routes, j, stop, dict.fromkeys(used))
        if best is None:
            unassigned.append(j.id)
            continue
        _, pos, new, vid = best
        if not any(s.kind == "job" for s in routes[vid].stops):
            used.append(vid)
            next(vids for vids in empty.values() if vids and vids[0] == vid).pop(0)
        pl.apply(routes[vid], pos, stop, new)
        route_of[j.id] = vid
    return _solution(problem, routes, sorted(never) + unassigned)


def _cheapest(pl: _Planner, routes: dict, j, stop: _Stop, where: dict) -> tuple | None:
    """(added travel, position, new starts, vehicle id) of the cheapest feasible place in the
    routes of ``where`` (vehicle id -> the planned visit to go next to, or None: around where
    each of the visit's windows starts), or None."""
    best = None
    for vid, b in where.items():
        r = routes[vid]
        if not j.skills <= r.v.skills:
            continue
        if b is not None:
            i = next(k for k, s in enumerate(r.stops) if s.kind == "job" and s.id == b)
            positions = (i, i + 1)
        else:
            positions = set()
            for a, _ in stop.windows:
                at = bisect_left(r.starts, a)
                positions.update(range(max(0, at - 1), min(len(r.stops), at + 1) + 1))
        got = pl.best_in(r, positions, j.id, stop)
        if got and (best is None or got[0] < best[0]):
            best = (*got, vid)
    return best


def _solution(problem: Problem, routes: dict, unassigned: list[int]) -> Solution:
    jobs = problem.job_by_id()
    D = problem.durations
    prev_vehicle = {jid: vid for vid, seq in problem.previous_routes.items() for jid in seq}
    out = []
    travel = service = wait = reassign = 0
    for v in problem.vehicles:
        r = routes[v.id]
        if not any(s.kind == "job" for s in r.stops):
            continue
        steps = [Step("start", None, v.time_window[0], 0, 0, v.start)]
        t, loc = v.time_window[0], v.start
        for s, st in zip(r.stops, r.starts):
            if s.kind == "job":
                d = D[loc][s.loc] if loc is not None else 0
                travel += d
                service += s.service
                steps.append(Step("job", s.id, st, s.service, st - t - d, s.loc))
                loc = s.loc
                if prev_vehicle.get(s.id, v.id) != v.id:
                    reassign += problem.reassignment_cost
            else:
                steps.append(Step("break", s.id, st, s.service, 0, None))
            t = st + s.service
        d = D[loc][v.end] if loc is not None and v.end is not None else 0
        travel += d
        steps.append(Step("end", None, t + d, 0, 0, v.end))
        steps = earliest_schedule(problem, v, steps) or steps
        wait += sum(s.waiting_time for s in steps)
        out.append(Route(v.id, tuple(steps)))
    return Solution(tuple(out), tuple(sorted(unassigned)), travel + reassign, travel, service, wait,
                    status="insertion")


def run(problem: Problem, cfg: SearchConfig, seed: int, time_limit_s: float, solution_limit: int | None,
        start: dict[int, list[int]] | None, *, first_solution: str | None = None,
        metaheuristic: str | None = None):
    """One OR-Tools search on a fresh full model, from ``start`` (vehicle id -> visit ids, read
    as given: it must be feasible) or from the first-solution strategy. Returns (model,
    assignment or None)."""
    m = build(problem, seed, validate=False)
    routing = m.routing
    params = search_parameters(cfg, time_limit_s, solution_limit, first_solution=first_solution,
                               metaheuristic=metaheuristic)
    routing.CloseModelWithParameters(params)  # before ReadAssignmentFromRoutes (see pitfalls)
    locks = [[m.job_index[j] for j in problem.locked.get(v.id, ())] for v in problem.vehicles]
    if any(locks):
        routing.ApplyLocksToAllVehicles(locks, False)
    assignment = None
    if start and any(start.values()):
        routes = [[m.job_index[j] for j in start.get(v.id, ()) if j in m.job_index] for v in problem.vehicles]
        init = routing.ReadAssignmentFromRoutes(routes, True)
        if init is not None:
            assignment = routing.SolveFromAssignmentWithParameters(init, params)
    if assignment is None:
        assignment = routing.SolveWithParameters(params)
    return m, assignment


def portfolio(problem: Problem, cfg: SearchConfig, seed: int, deadline: float,
              solution_limit: int | None) -> tuple[Solution, dict] | None:
    """The best of OR-Tools' first-solution strategies, each followed by a greedy descent within
    ``portfolio_share`` of the time left / their number (to the end with ``solution_limit``):
    (plan, visit routes), or None if none found a plan."""
    best = None
    each = (deadline - time.monotonic()) * cfg.portfolio_share / max(1, len(cfg.portfolio))
    for strategy in cfg.portfolio:
        left = deadline - time.monotonic()
        if left <= 0.2:
            break
        m, a = run(problem, cfg, seed, left if solution_limit else min(each, left), None, None,
                   first_solution=strategy, metaheuristic="GREEDY_DESCENT")
        if a is not None and (best is None or a.ObjectiveValue() < best[0]):
            best = (a.ObjectiveValue(), extract(m, a), job_routes(m, a))
    return best[1:] if best else None


def visit_routes(sol: Solution) -> dict[int, list[int]]:
    """Vehicle id -> visit ids of a plan."""
    return {r.vehicle: [s.id for s in r.steps if s.type == "job"] for r in sol.routes}

