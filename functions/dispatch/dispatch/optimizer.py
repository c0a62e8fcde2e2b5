"""The routing optimizer (the only module importing OR-Tools).

Model (one OR-Tools routing node per job, plus one start and one end node per vehicle):
- arc cost = travel duration (``problem.durations``); no fixed vehicle cost, no span cost;
- time dimension: transit = service(from) + travel; slack = waiting; job windows via
  SetRange/RemoveInterval; vehicle windows on start and end cumuls;
- skills: allowed vehicles per job (see the note below); jobs no vehicle can serve are reported
  unassigned;
- priorities: one disjunction per job with penalty ``big * (1 + 101 * priority)`` where ``big``
  exceeds any insertion detour, so serving a job always pays, and one job of priority p is worth
  more than 101 jobs of priority < p;
- capacity: one dimension per amount index (``delivery`` / vehicle ``capacity``);
- breaks: SetBreakIntervalsOfVehicle (breaks never overlap a service; a break is taken between two
  services, before/while driving or on arrival); a break OR-Tools places before the route's start
  or after its end is reported at the start/end location (the route starts earlier/ends later;
  a hard "inside the span" constraint would force the slow CP feasibility filter);
- locks: NextVar chains from the vehicle's start (NextVar(prev) == job constraints, VehicleVar
  fixed; locked jobs are mandatory), also applied with ApplyLocksToAllVehicles for the first
  solution; locks that cannot be kept feasibly raise ValueError;
- remote doctors: every job with ``video_call_seconds`` gets an optional interval
  [start + service, start + service + call] (performed iff the job is served) and a Cumulative
  constraint with capacity ``remote_doctors`` over those intervals (checked by the CP feasibility
  filter). The insertion heuristics fail under that filter (0 of 64 nurse visits planned), so when
  the calls outnumber the doctors: plan without the limit (40 % of the time); if the calls fit,
  done; else drop the calls above capacity and improve that plan under the constraint
  (ALL_UNPERFORMED + local search if the start is refused). The plan always satisfies the limit;
  it may leave visits unassigned that a better search would fit;
- stability: a "reassign" dimension with per-vehicle unary transits (``reassignment_cost`` for a
  job whose previous vehicle was another one) and span cost coefficient 1;
- warm start: previous routes (trimmed to a time-feasible prefix-preserving subsequence) are read
  with ReadAssignmentFromRoutes AFTER CloseModelWithParameters(params).
- skills: SetAllowedVehiclesForIndex does not accept a Python list in ortools 9.15 (SWIG
  Span<const int> typemap), so VehicleVar(i).SetValues([-1] + allowed) is used instead; and the
  problem is first split into independent sub-problems linked by skills (doctors / nurses), which
  also makes every sub-model skill-free and much faster.

Search (measured, see docs/benchmarks-dispatch.md): plain cheapest-insertion + GLS gets stuck in
the first local optimum within 10 s on 100-stop instances; which first solution you start from
matters more than the metaheuristic. So for small (sub-)problems (jobs x vehicles <= 3000) a
portfolio of first-solution strategies (LCI, PCA, SAVINGS, PMCA) each gets a greedy descent in 80 %
of the budget, the best local optimum is then improved by GLS; larger ones use
PARALLEL_CHEAPEST_INSERTION + GLS directly. Iterated local search (ruin & recreate) stopped at the
first local optimum on our model in 9.15; ``ls_operator_neighbors_ratio`` < 1 made plans worse.
Time-limited solves (no ``solution_limit``) replace the GLS phase by our own ruin & recreate loop.
First version (``lns_sub=False``, ``_solve_lns``): remove 5-15 visits around a random one, re-solve
the partial plan with a greedy descent on the whole closed model, keep improvements (≈ 1.019 vs
1.029 × PyVRP on the Solomon sample, days 1.026 vs 1.033 × VROOM). Default now (``_solve_lns_sub``):
each iteration re-plans only the routes around a random visit — the routes of its nearest visits
(2..6) plus one unused vehicle — on a fresh small model (the sub-problem's vehicles, their visits,
the nearest unassigned visits): remove 3-10 visits nearest the seed from those routes, read the
ruined routes back, greedy descent, keep the new routes if travel + reassignment + unassigned
penalties of those routes drop. Routes do not interact (no remote-doctor limit in that path), so the
sub-plan's routes, with their times, replace the old ones. An iteration costs 10-40 ms instead of
~150 ms, and large sub-problems (> 3000 jobs × vehicles) start it from the first solution without
the full-model descent (that descent alone took > 30 s on 275 visits × 81 nurses; the 500-visit
day ran 63 s with a 60 s budget, now within it). Measured and not kept (see
docs/benchmarks-dispatch.md): re-inserting with a first-solution strategy from the ruined routes
(ApplyLocksToAllVehicles + LCI/PCI: almost never accepted), simulated-annealing acceptance,
SISR-like strings per route, a route-elimination move, Shaw-like time relatedness, first solutions without the portfolio
descents, 3 or 8 routes per sub-model.

Processes (``SearchConfig.workers``, 0 = one per CPU): OR-Tools holds the GIL during a search, so
independent sub-problems (doctors, nurses) are solved in forked processes at once, each with the
whole budget. CPUs left over go to one sub-problem's ruin & recreate: with 24 routes or more, rounds
of ``lns_round_s`` on groups of neighbouring routes at once (merged after each round); with fewer,
independent runs from the same plan with different seeds, the best wins.

Determinism: OR-Tools' search itself is deterministic; what is not is how far it gets within a
wall-clock time limit (and the LNS sub-searches bounded by ``lns_time_limit``). For reproducible
plans pass ``solution_limit`` (the search then stops after that many solutions; the time limit
stays a safety net) — identical input + seed + solution_limit give identical plans. ``seed``
permutes the order of the job nodes (0 = input order), which changes tie-breaking; different seeds
explore differently (useful for a multi-start).
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field, replace

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from .problem import UNBOUNDED_END, Job, Problem, Route, Solution, Step

FSS = routing_enums_pb2.FirstSolutionStrategy
LSM = routing_enums_pb2.LocalSearchMetaheuristic


@dataclass(frozen=True)
class SearchConfig:
    """Search knobs (defaults are the measured best on our benchmarks, see docs)."""

    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"  # or "ILS" for iterated local search (ruin&recreate)
    gls_lambda: float = 0.1
    use_full_propagation: bool = False
    lns_time_limit_ms: int = 100
    extra_operators: tuple[str, ...] = ()  # names of local_search_operators fields to switch on
    disabled_operators: tuple[str, ...] = ()
    ils_ruin: str = "SISR"  # "SISR" | "RANDOM_WALK" | "SPATIALLY_CLOSE"
    ils_acceptance: str = "SA"  # "SA" | "GREEDY"
    ils_sa_initial_temperature: float = 100.0
    ils_sa_final_temperature: float = 0.01
    ils_sisr_max_removed_sequence_size: int = 10
    ils_sisr_avg_num_removed_visits: int = 10
    ils_sisr_bypass_factor: float = 0.01
    log_search: bool = False
    # Multi-start: each strategy gets a greedy descent within portfolio_share * budget / len, the
    # best local optimum is then improved by the metaheuristic for the rest of the budget.
    portfolio: tuple[str, ...] = ("LOCAL_CHEAPEST_INSERTION", "PATH_CHEAPEST_ARC", "SAVINGS",
                                  "PATH_MOST_CONSTRAINED_ARC")
    portfolio_share: float = 0.8
    portfolio_descent: bool = True  # False: first solutions only, the sub-model LNS does the rest
    # Above this many (jobs x vehicles) the first solutions alone take seconds: no portfolio, the
    # budget goes to ``first_solution`` + the metaheuristic (measured on 140-visit/37-clinician days).
    portfolio_max_size: int = 3000
    # Ruin & recreate around OR-Tools (time-limited solves only, i.e. without ``solution_limit``):
    # after the first local optimum, repeatedly remove ``lns_min_removed``..``lns_max_removed``
    # visits close to a random seed visit, re-solve the partial plan with a greedy descent (the
    # local search re-inserts them), keep the result if it is better. Replaces the GLS phase.
    lns: bool = True
    lns_min_removed: int = 3
    lns_max_removed: int = 10
    lns_threshold: float = 0.0  # accept a worse plan within this fraction of the best (-> 0 at the end)
    lns_neighbors_ratio: float = 1.0  # ls_operator_neighbors_ratio in the re-insertion descents
    # Sub-model ruin & recreate (``_solve_lns_sub``): each iteration re-plans only the routes around
    # a random visit (2..lns_sub_routes of them + one unused vehicle) on a fresh small model.
    lns_sub: bool = True
    lns_sub_routes: int = 6
    lns_sub_unused: int = 1  # unused vehicles added to each sub-model (a new route may pay off)
    # "DESCENT": greedy descent from the ruined routes (the local search re-inserts the removed
    # visits); or a first-solution strategy completing the ruined routes (ApplyLocksToAllVehicles).
    lns_recreate: str = "DESCENT"
    lns_sub_time_limit_s: float = 1.0
    # Simulated-annealing acceptance in the sub-model LNS: temperature from lns_sa_t0 to lns_sa_tf
    # times the mean objective per visit, decreasing geometrically over the LNS time (0 = greedy).
    lns_sa_t0: float = 0.0
    # Relatedness of two visits = travel + this weight x |difference of their earliest window starts|
    # (Shaw-like; 0 = travel only).
    lns_time_relatedness: float = 0.0
    lns_ruin: str = "NEAREST"  # "NEAREST": the k visits nearest the seed; "STRINGS": one string per route
    lns_string_max: int = 5
    lns_route_elimination: float = 0.0  # probability of also removing the shortest chosen route
    lns_sa_tf: float = 0.001
    # Above this size (jobs x vehicles) the LNS starts from the first solution without the greedy
    # descent over the whole model (on 275 visits x 81 nurses that descent alone took > 30 s).
    lns_full_descent_max_size: int = 3000
    # Independent sub-problems (e.g. doctors and nurses) are solved in this many processes at once,
    # each with the whole budget (0 = as many as this process has CPUs; 1 = one after the other).
    workers: int = 0
    # Set by ``solve`` from ``workers``: processes left for one sub-problem's ruin & recreate. With
    # more than one, each round splits the routes into that many groups of neighbouring routes,
    # improved at once for ``lns_round_s`` seconds, then merged.
    lns_workers: int = 1
    lns_round_s: float = 1.5
    # ... but only with at least this many routes: with fewer (Solomon's 10-19) each group is
    # little more than one sub-model, and the split measured no gain (1150.0 vs 1151.5, noise);
    # there the processes run independent ruin & recreate from the same plan, the best one wins.
    lns_split_min_routes: int = 24
    # Operators switched off in the re-insertion descents: the insertion-LNS / chain / subtrip ones
    # cost ~70 % of a descent (0.49 -> 0.15 s per iteration on R109) for little gain.
    lns_disabled_operators: tuple[str, ...] = (
        "use_global_cheapest_insertion_path_lns", "use_local_cheapest_insertion_path_lns",
        "use_relocate_path_global_cheapest_insertion_insert_unperformed",
        "use_global_cheapest_insertion_visit_types_lns", "use_local_cheapest_insertion_visit_types_lns",
        "use_lin_kernighan", "use_relocate_expensive_chain", "use_exchange_subtrip", "use_relocate_subtrip",
        "use_shortest_path_swap_active", "use_swap_active_chain", "use_shortest_path_two_opt",
        "use_make_chain_inactive", "use_swap_active", "use_relocate_pair", "use_exchange_pair",
        "use_light_relocate_pair")


DEFAULT_CONFIG = SearchConfig()


def _search_parameters(cfg: SearchConfig, time_limit_s: float, solution_limit: int | None):
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(FSS, cfg.first_solution)
    if cfg.metaheuristic == "ILS":
        params.use_iterated_local_search = True
        ils = params.iterated_local_search_parameters
        rr = ils.ruin_recreate_parameters
        del rr.ruin_strategies[:]
        rs = rr.ruin_strategies.add()
        if cfg.ils_ruin == "SISR":
            rs.sisr.max_removed_sequence_size = cfg.ils_sisr_max_removed_sequence_size
            rs.sisr.avg_num_removed_visits = cfg.ils_sisr_avg_num_removed_visits
            rs.sisr.bypass_factor = cfg.ils_sisr_bypass_factor
        elif cfg.ils_ruin == "RANDOM_WALK":
            rs.random_walk.num_removed_visits = cfg.ils_sisr_avg_num_removed_visits
        else:
            rs.spatially_close_routes.num_ruined_routes = 2
        if cfg.ils_acceptance == "SA":
            sa = ils.reference_solution_acceptance_strategy.simulated_annealing
            sa.initial_temperature = cfg.ils_sa_initial_temperature
            sa.final_temperature = cfg.ils_sa_final_temperature
        else:
            ils.reference_solution_acceptance_strategy.greedy_descent.SetInParent()
        params.local_search_metaheuristic = LSM.GREEDY_DESCENT
    else:
        params.local_search_metaheuristic = getattr(LSM, cfg.metaheuristic)
    params.guided_local_search_lambda_coefficient = cfg.gls_lambda
    params.use_full_propagation = cfg.use_full_propagation
    params.lns_time_limit.FromMilliseconds(cfg.lns_time_limit_ms)
    ops = params.local_search_operators
    for name in cfg.extra_operators:
        setattr(ops, name, 3)  # BOOL_TRUE
    for name in cfg.disabled_operators:
        setattr(ops, name, 2)  # BOOL_FALSE
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    if solution_limit:
        params.solution_limit = int(solution_limit)
    params.log_search = cfg.log_search
    return params


@dataclass
class _Model:
    problem: Problem
    jobs: list[Job]  # model jobs, in node order
    unservable: list[int]  # job ids no vehicle can serve
    node_loc: list[int | None]
    node_service: list[int]
    manager: pywrapcp.RoutingIndexManager = None
    routing: pywrapcp.RoutingModel = None
    time_dim: object = None
    break_intervals: dict = field(default_factory=dict)  # name -> (vehicle id, Break)
    job_index: dict = field(default_factory=dict)  # job id -> routing index


def _travel(m: _Model, a: int, b: int) -> int:
    la, lb = m.node_loc[a], m.node_loc[b]
    if la is None or lb is None:
        return 0
    return m.problem.durations[la][lb]


def _max_arc(problem: Problem) -> int:
    return max((max(r) for r in problem.durations if r), default=0)


def _penalty_unit(problem: Problem, max_arc: int) -> int:
    """``big``: more than any insertion detour, so serving a visit always pays."""
    return 2 * max_arc + problem.reassignment_cost + 1


def _unassigned_penalty(big: int, jobs) -> int:
    """What leaving ``jobs`` unassigned costs in the objective: one priority level outweighs 101
    visits of the levels below."""
    return sum(big * (1 + 101 * j.priority) for j in jobs)


def _horizon(problem: Problem, max_arc: int | None = None) -> int:
    ends = [v.time_window[1] for v in problem.vehicles]
    ends += [w[1] for j in problem.jobs for w in j.time_windows]
    finite = [e for e in ends if e < UNBOUNDED_END]
    if max_arc is None:
        max_arc = _max_arc(problem)
    bound = sum(j.service + j.video_call_seconds for j in problem.jobs)
    bound += (len(problem.jobs) + 1) * max_arc
    bound += sum(b.service for v in problem.vehicles for b in v.breaks)
    h = max(finite, default=0) + bound
    return min(h, 2**40)


def _job_allowed_vehicles(problem: Problem, job: Job) -> list[int]:
    return [k for k, v in enumerate(problem.vehicles) if job.skills <= v.skills]


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


def _build(problem: Problem, cfg: SearchConfig, seed: int, *, validate: bool = True,
           max_arc: int | None = None) -> _Model:
    """The routing model of ``problem``. ``validate=False`` and a precomputed ``max_arc`` (largest
    matrix entry) skip the O(matrix) passes for the LNS sub-models (the matrix is the big one)."""
    if validate:
        problem.validate()
    if max_arc is None:
        max_arc = _max_arc(problem)
    locked_ids = {jid for seq in problem.locked.values() for jid in seq}
    jobs: list[Job] = []
    unservable: list[int] = []
    vid_to_k = {v.id: k for k, v in enumerate(problem.vehicles)}
    for j in problem.jobs:
        allowed = _job_allowed_vehicles(problem, j)
        if not allowed and j.id not in locked_ids:
            unservable.append(j.id)
        elif j.video_call_seconds > 0 and problem.remote_doctors == 0 and j.id not in locked_ids:
            unservable.append(j.id)
        else:
            jobs.append(j)
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
    m = _Model(problem, jobs, unservable, node_loc, node_service)
    n = len(node_loc)
    manager = pywrapcp.RoutingIndexManager(n, nv, starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    m.manager, m.routing = manager, routing
    solver = routing.solver()

    dur = problem.durations
    travel = [[0] * n for _ in range(n)]
    for a in range(n):
        la = node_loc[a]
        if la is None:
            continue
        row = dur[la]
        ta = travel[a]
        for b in range(n):
            lb = node_loc[b]
            if lb is not None:
                ta[b] = row[lb]
    time_m = [[node_service[a] + t for t in travel[a]] for a in range(n)]
    travel_cb = routing.RegisterTransitMatrix(travel)
    time_cb = routing.RegisterTransitMatrix(time_m)
    routing.SetArcCostEvaluatorOfAllVehicles(travel_cb)

    horizon = _horizon(problem, max_arc)
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    m.time_dim = time_dim

    # Job windows, skills, priorities.
    big = _penalty_unit(problem, max_arc)
    for node, j in enumerate(jobs):
        idx = manager.NodeToIndex(node)
        m.job_index[j.id] = idx
        _windows_domain(time_dim.CumulVar(idx), j.time_windows, 0, horizon)
        allowed = _job_allowed_vehicles(problem, j)
        if len(allowed) < nv:
            # (SetAllowedVehiclesForIndex is not callable from Python in 9.15: Span typemap)
            routing.VehicleVar(idx).SetValues([-1] + allowed)
        if j.id not in locked_ids:
            routing.AddDisjunction([idx], _unassigned_penalty(big, (j,)))

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
    if problem.remote_doctors is not None:
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


def _time_feasible_prefix(m: _Model, k: int, seq: list[int]) -> list[int]:
    """Greedy: keep jobs of ``seq`` (routing indices) in order while windows & capacity hold."""
    p = m.problem
    v = p.vehicles[k]
    jobs_by_idx = {m.job_index[j.id]: j for j in m.jobs}
    loc = v.start
    t = v.time_window[0]
    load = [0] * len(v.capacity)
    kept = []
    for idx in seq:
        j = jobs_by_idx[idx]
        arr = t + (p.durations[loc][j.location] if loc is not None else 0)
        start = None
        for a, b in sorted(j.time_windows) or [(0, UNBOUNDED_END)]:
            if arr <= b:
                start = max(arr, a)
                break
        if start is None:
            continue
        new_load = [load[d] + (j.delivery[d] if d < len(j.delivery) else 0) for d in range(len(load))]
        if any(new_load[d] > v.capacity[d] for d in range(len(load))):
            continue
        back = start + j.service + (p.durations[j.location][v.end] if v.end is not None else 0)
        if back > v.time_window[1]:
            continue
        kept.append(idx)
        load = new_load
        t = start + j.service
        loc = j.location
    return kept


def _initial_routes(m: _Model, initial: dict[int, list[int]] | None):
    """Routes (routing indices per vehicle) from ``initial`` (vehicle id -> job ids) and the locks."""
    p = m.problem
    base = dict(p.previous_routes)
    if initial:
        base.update({k: tuple(v) for k, v in initial.items()})
    if not base and not p.locked:
        return None
    used = set()
    routes = []
    by_id = p.job_by_id()
    for k, v in enumerate(p.vehicles):
        lock = list(p.locked.get(v.id, ()))
        used.update(lock)
        seq = [jid for jid in base.get(v.id, ()) if jid not in lock]
        allowed = [jid for jid in seq if jid in m.job_index and jid not in used
                   and by_id[jid].skills <= v.skills]
        used.update(allowed)
        lock_idx = [m.job_index[j] for j in lock]
        rest = _time_feasible_prefix(m, k, lock_idx + [m.job_index[j] for j in allowed])
        rest = [i for i in rest if i not in lock_idx]
        routes.append(lock_idx + rest)
    return routes


def _job_routes(m: _Model, assignment) -> dict[int, list[int]]:
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


def _run(problem: Problem, cfg: SearchConfig, seed: int, params_cfg: SearchConfig, time_limit_s: float,
         solution_limit: int | None, start: dict[int, list[int]] | None):
    """One search on a fresh model. Returns (model, assignment or None)."""
    m = _build(problem, cfg, seed)
    routing = m.routing
    params = _search_parameters(params_cfg, time_limit_s, solution_limit)
    routing.CloseModelWithParameters(params)  # before ReadAssignmentFromRoutes (see pitfalls)
    locks = [[m.job_index[j] for j in problem.locked.get(v.id, ())] for v in problem.vehicles]
    if any(locks):
        routing.ApplyLocksToAllVehicles(locks, False)
    assignment = None
    routes = _initial_routes(m, start) if (start or problem.previous_routes) else None
    if routes is not None:
        init = routing.ReadAssignmentFromRoutes(routes, True)
        if init is not None:
            assignment = routing.SolveFromAssignmentWithParameters(init, params)
    if assignment is None:
        assignment = routing.SolveWithParameters(params)
    return m, assignment


def _components(problem: Problem) -> list[tuple[list[int], list[int]]]:
    """Independent sub-problems: (vehicle positions, job positions) linked by skills.

    Vehicles are joined when some job can be served by both; every video-call job ties its
    component to the others holding video-call jobs (the remote doctors are shared). Jobs no
    vehicle can serve are left out (reported unassigned by the sub-solves' callers).
    """
    nv = len(problem.vehicles)
    parent = list(range(nv))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    job_vehicles = []
    call_anchor = None
    for j in problem.jobs:
        allowed = _job_allowed_vehicles(problem, j)
        job_vehicles.append(allowed)
        for k in allowed[1:]:
            union(allowed[0], k)
        if allowed and j.video_call_seconds > 0 and problem.remote_doctors is not None:
            if call_anchor is None:
                call_anchor = allowed[0]
            union(call_anchor, allowed[0])
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for k in range(nv):
        groups.setdefault(find(k), ([], []))[0].append(k)
    for i, allowed in enumerate(job_vehicles):
        if allowed:
            groups[find(allowed[0])][1].append(i)
    return [g for _, g in sorted(groups.items())]


def solve(problem: Problem, time_limit_s: float = 10.0, seed: int = 0, *,
          solution_limit: int | None = None, config: SearchConfig | None = None,
          initial_routes: dict[int, list[int]] | None = None) -> Solution:
    """Plan routes for ``problem``. See the module docstring for the model and determinism.

    ``initial_routes`` (vehicle id -> job ids) overrides ``problem.previous_routes`` as warm start.
    The problem is first split into independent sub-problems (vehicles linked by the skills of
    the jobs they can serve, e.g. doctors and nurses), solved in parallel processes when there are
    CPUs for it (``SearchConfig.workers``; each then gets the whole budget), else one after the other
    with a share of the time proportional to their number of jobs. In each, without a warm start, a portfolio of
    first-solution strategies is tried (greedy descent each) and the best is improved by the
    metaheuristic for the remaining time.
    """
    t0 = time.monotonic()
    if not solution_limit:
        # keep a little of the wall-clock budget for what follows the last search (extraction,
        # the caller's own work): 1 %, at most 0.5 s
        time_limit_s = max(0.05, time_limit_s - min(0.5, 0.01 * time_limit_s))
    problem.validate()
    comps = _components(problem)
    cfg = config or DEFAULT_CONFIG
    cpus = _cpus(cfg)
    if len(comps) <= 1:
        return _solve_one(problem, time_limit_s, seed, solution_limit, replace(cfg, lns_workers=cpus),
                          initial_routes)
    served_pos = {i for _, js in comps for i in js}
    unassigned = [problem.jobs[i].id for i in range(len(problem.jobs)) if i not in served_pos]
    parts = []
    for vs, js in comps:
        if not js:
            continue
        vids = {problem.vehicles[k].id for k in vs}
        jids = {problem.jobs[i].id for i in js}
        sub = Problem(
            vehicles=tuple(problem.vehicles[k] for k in vs),
            jobs=tuple(problem.jobs[i] for i in js),
            durations=problem.durations,
            remote_doctors=problem.remote_doctors,
            locked={v: s for v, s in problem.locked.items() if v in vids},
            previous_routes={v: tuple(j for j in s if j in jids) for v, s in problem.previous_routes.items()
                             if v in vids},
            reassignment_cost=problem.reassignment_cost,
        )
        init = {v: [j for j in s if j in jids] for v, s in initial_routes.items() if v in vids} \
            if initial_routes else None
        parts.append((sub, init))
    deadline = t0 + time_limit_s
    workers = max(1, min(cpus, len(parts)))
    cfg = replace(cfg, lns_workers=max(1, cpus // max(1, len(parts))))
    if workers > 1:
        solved = _solve_parts_parallel(parts, workers, deadline, seed, solution_limit, cfg)
    else:
        solved = _solve_parts(parts, deadline, seed, solution_limit, cfg)
    # Reassignment costs for jobs whose previous vehicle is in another component are not counted
    # by the sub-solves (such a move is impossible by skills anyway).
    return replace(_merge(problem, solved, unassigned), computing_time_ms=int((time.monotonic() - t0) * 1000),
                   status=",".join(s.status for s in solved))


def _merge(problem: Problem, sols, unassigned=()) -> Solution:
    """One plan from plans of disjoint sets of vehicles (and ``unassigned``, visits none of them
    planned): routes in the problem's vehicle order, figures summed."""
    by_vehicle: dict[int, Route] = {r.vehicle: r for s in sols for r in s.routes}
    return Solution(tuple(by_vehicle[v.id] for v in problem.vehicles if v.id in by_vehicle),
                    tuple(sorted({*unassigned, *(j for s in sols for j in s.unassigned)})),
                    sum(s.cost for s in sols), sum(s.duration for s in sols), sum(s.service for s in sols),
                    sum(s.waiting_time for s in sols))


def _cpus(cfg: SearchConfig) -> int:
    """Processes the optimizer may use: ``cfg.workers``, 0 = the CPUs this process may run on."""
    if cfg.workers > 0:
        return cfg.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _solve_parts(parts, deadline: float, seed: int, solution_limit: int | None,
                 config: SearchConfig | None) -> list[Solution]:
    """Solve sub-problems one after the other, each with a share of the time left proportional to
    its number of jobs."""
    out = []
    for n_done, (sub, init) in enumerate(parts):
        left = deadline - time.monotonic()
        remaining_jobs = sum(len(p.jobs) for p, _ in parts[n_done:])
        share = max(0.05, left * len(sub.jobs) / max(1, remaining_jobs))
        out.append(_solve_one(sub, share, seed, solution_limit, config, init))
    return out


def _child(conn, fn, deadline: float) -> None:
    try:
        res = ("ok", fn(deadline))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which re-raises it
        res = ("error", exc)
    try:
        try:
            conn.send(res)
        except Exception as exc:  # noqa: BLE001 - e.g. an exception that does not pickle
            conn.send(("error", RuntimeError(f"optimizer worker failed: {exc!r}")))
    finally:
        conn.close()


def _run_parallel(tasks, deadline: float, bounded: bool = True) -> list:
    """Run ``task(deadline)`` for every task at once: the first here, the others in forked
    processes (OR-Tools holds the GIL, so threads would not help; fork + a Pipe only, because AWS
    Lambda has no /dev/shm for multiprocessing's queues and pools). Results come back in order;
    a task's exception is re-raised here. Where fork is unavailable the tasks run here one after
    the other; a worker that dies or hangs has its task redone here with whatever time is left."""
    import multiprocessing

    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        return [t(deadline) for t in tasks]
    children = []
    for fn in tasks[1:]:
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(send, fn, deadline), daemon=True)
        proc.start()
        send.close()
        children.append((proc, recv))
    try:
        results = [tasks[0](deadline)]
        for (proc, recv), fn in zip(children, tasks[1:]):
            # a search ends at the deadline; allow for model building and the answer's transfer
            wait = max(5.0, deadline - time.monotonic() + 30.0) if bounded else None
            try:
                got = recv.recv() if recv.poll(wait) else None
            except EOFError:
                got = None
            if got is None:
                results.append(fn(max(deadline, time.monotonic() + 1.0)))
            elif got[0] == "error":
                raise got[1]
            else:
                results.append(got[1])
        return results
    finally:
        for proc, recv in children:
            recv.close()
            proc.join(timeout=1.0)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _solve_parts_parallel(parts, workers: int, deadline: float, seed: int, solution_limit: int | None,
                          config: SearchConfig | None) -> list[Solution]:
    """Solve independent sub-problems in ``workers`` processes at once, each with the whole time
    left. Sub-problems are spread over the workers by number of jobs (largest first)."""
    order = sorted(range(len(parts)), key=lambda i: -len(parts[i][0].jobs))
    bins: list[list[int]] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in order:
        b = load.index(min(load))
        bins[b].append(i)
        load[b] += len(parts[i][0].jobs)
    bins = [b for b in bins if b]
    tasks = [lambda dl, b=b: _solve_parts([parts[i] for i in b], dl, seed, solution_limit, config) for b in bins]
    results: dict[int, Solution] = {}
    for b, sols in zip(bins, _run_parallel(tasks, deadline, bounded=not solution_limit)):
        results.update(zip(b, sols))
    return [results[i] for i in range(len(parts))]


def _drop_overlapping_calls(problem: Problem, sol: Solution) -> dict[int, list[int]]:
    """Job routes of ``sol`` without the video-call jobs that push calls above capacity."""
    jobs = problem.job_by_id()
    calls = []
    for r in sol.routes:
        for st in r.steps:
            if st.type == "job" and jobs[st.id].video_call_seconds > 0:
                a = st.arrival + st.service
                calls.append((a, a + jobs[st.id].video_call_seconds, jobs[st.id].priority, st.id))
    calls.sort()
    active: list[int] = []  # end times of kept calls
    dropped = set()
    for a, b, _prio, jid in calls:
        active = [e for e in active if e > a]
        if len(active) >= (problem.remote_doctors or 0):
            dropped.add(jid)
            continue
        active.append(b)
    return {r.vehicle: [st.id for st in r.steps if st.type == "job" and st.id not in dropped] for r in sol.routes}


def _solve_one(problem: Problem, time_limit_s: float, seed: int, solution_limit: int | None,
               config: SearchConfig | None, initial_routes: dict[int, list[int]] | None) -> Solution:
    cfg = config or DEFAULT_CONFIG
    n_calls = sum(1 for j in problem.jobs if j.video_call_seconds > 0)
    if problem.remote_doctors is not None and n_calls > problem.remote_doctors:
        return _solve_with_calls(problem, time_limit_s, seed, solution_limit, cfg, initial_routes)
    return _solve_plain(problem, time_limit_s, seed, solution_limit, cfg, initial_routes)


def _solve_with_calls(problem: Problem, time_limit_s: float, seed: int, solution_limit: int | None,
                      cfg: SearchConfig, initial_routes: dict[int, list[int]] | None) -> Solution:
    """Remote-doctor capacity binds: the Cumulative constraint needs the CP feasibility filter, with
    which the insertion heuristics fail on real sizes (measured: 0 of 64 nurse visits planned).
    So: plan without the doctor limit (40 % of the time); if the calls fit, done; else drop the
    calls above capacity and improve from there with the constrained model (falling back to an
    empty start + local search insertion, ALL_UNPERFORMED, if that start is refused)."""
    from .feasibility import check  # no OR-Tools there

    t0 = time.monotonic()
    relaxed = replace(problem, remote_doctors=None)
    first = _solve_plain(relaxed, time_limit_s * 0.4, seed, solution_limit, cfg, initial_routes)
    if not check(problem, first)[0]:
        return first
    start = _drop_overlapping_calls(problem, first)
    left = max(0.05, time_limit_s - (time.monotonic() - t0))
    ccfg = replace(cfg, first_solution="ALL_UNPERFORMED", portfolio=())
    try:
        return _solve_plain(problem, left, seed, solution_limit, ccfg, start)
    except RuntimeError:
        # keep the relaxed plan minus the dropped calls: re-solve from it is refused, so plan
        # with the empty start (always feasible) instead
        return _solve_plain(problem, max(0.05, time_limit_s - (time.monotonic() - t0)), seed,
                            solution_limit, ccfg, None)


def _solve_plain(problem: Problem, time_limit_s: float, seed: int, solution_limit: int | None,
                 cfg: SearchConfig, initial_routes: dict[int, list[int]] | None) -> Solution:
    t0 = time.monotonic()
    deadline = t0 + time_limit_s
    start = initial_routes
    best = None  # (objective, job routes)
    t_load = time.monotonic()
    warm = bool(initial_routes or problem.previous_routes)
    small = len(problem.jobs) * len(problem.vehicles) <= cfg.portfolio_max_size
    if not warm and small and len(cfg.portfolio) > 1 and cfg.portfolio_share > 0:
        each = time_limit_s * cfg.portfolio_share / len(cfg.portfolio)
        for st in cfg.portfolio:
            left = deadline - time.monotonic()
            if left <= 0.2:
                break
            pc = replace(cfg, first_solution=st, metaheuristic="GREEDY_DESCENT")
            # deterministic mode: let the descent finish (bounded by the overall deadline only)
            tl = left if solution_limit else min(each, left)
            first_only = not solution_limit and cfg.lns and cfg.lns_sub and not cfg.portfolio_descent
            m, a = _run(problem, cfg, seed, pc, tl, 1 if first_only else None, None)
            if a is None:
                continue
            obj = a.ObjectiveValue()
            if best is None or obj < best[0]:
                best = (obj, _job_routes(m, a), _extract(m, a))
        if best is not None and any(best[1].values()):
            start = best[1]
    if start is not None and not any(start.values()):
        start = None  # an empty warm start only wastes the first-solution heuristic
    if cfg.lns and not solution_limit and cfg.first_solution != "ALL_UNPERFORMED":
        res = _solve_lns(problem, cfg, seed, deadline, start, best)
        if res is not None:
            t_end = time.monotonic()
            return replace(res, loading_time_ms=int((t_load - t0) * 1000),
                           computing_time_ms=int((t_end - t_load) * 1000))
    left = max(0.05, deadline - time.monotonic())
    m, assignment = _run(problem, cfg, seed, cfg, left, solution_limit, start)
    t_end = time.monotonic()
    if best is not None and (assignment is None or best[0] < assignment.ObjectiveValue()):
        return replace(best[2], loading_time_ms=int((t_load - t0) * 1000),
                       computing_time_ms=int((t_end - t_load) * 1000), status="portfolio")
    if assignment is None:
        if problem.locked:
            raise ValueError("no plan keeps the locked visits feasible (locked prefixes break windows, "
                             f"skills or breaks; routing status {m.routing.status()})")
        raise RuntimeError(f"no solution found (routing status {m.routing.status()})")
    sol = _extract(m, assignment)
    return replace(sol, loading_time_ms=int((t_load - t0) * 1000),
                   computing_time_ms=int((t_end - t_load) * 1000), status=str(m.routing.status()))


def _solve_lns(problem: Problem, cfg: SearchConfig, seed: int, deadline: float,
               start: dict[int, list[int]] | None, best) -> Solution | None:
    """Ruin & recreate: greedy descent from ``start`` (or from the first solution), then remove a
    cluster of nearby visits and let a greedy descent re-insert them, keeping improvements.
    Returns None when no first solution was found (the caller then runs the plain search)."""
    gd = replace(cfg, metaheuristic="GREEDY_DESCENT")
    if best is not None and start == best[1]:
        obj, routes, sol = best
    else:
        left = deadline - time.monotonic()
        big_model = len(problem.jobs) * len(problem.vehicles) > cfg.lns_full_descent_max_size
        first_only = cfg.lns_sub and big_model
        m, a = _run(problem, cfg, seed, gd, max(0.05, left), 1 if first_only else None, start)
        if a is None:
            return None
        obj, routes, sol = a.ObjectiveValue(), _job_routes(m, a), _extract(m, a)
        if best is not None and best[0] < obj:
            obj, routes, sol = best
    n_calls = sum(1 for j in problem.jobs if j.video_call_seconds > 0)
    if cfg.lns_sub and (problem.remote_doctors is None or n_calls <= problem.remote_doctors):
        if cfg.lns_workers > 1:
            return _solve_lns_sub_split(problem, cfg, seed, deadline, sol, cfg.lns_workers)
        return _solve_lns_sub(problem, cfg, seed, deadline, sol)
    status = "lns"
    m = _build(problem, cfg, seed)
    routing = m.routing
    gd_params = _search_parameters(replace(gd, disabled_operators=tuple(gd.disabled_operators)
                                           + tuple(cfg.lns_disabled_operators)), 1.0, None)
    if cfg.lns_neighbors_ratio < 1.0:
        gd_params.ls_operator_neighbors_ratio = cfg.lns_neighbors_ratio
        gd_params.ls_operator_min_neighbors = 10
    routing.CloseModelWithParameters(gd_params)
    locked = {jid for seq in problem.locked.values() for jid in seq}
    jobs = {j.id: j for j in m.jobs}
    D = problem.durations
    rng = random.Random(seed)
    cur_obj, cur_routes = obj, routes
    t_start = time.monotonic()
    span = max(1e-3, deadline - t_start)
    while True:
        now = time.monotonic()
        left = deadline - now
        if left < 0.05:
            break
        served = [j for v in problem.vehicles for j in cur_routes.get(v.id, ()) if j not in locked]
        if not served:
            break
        s0 = jobs[rng.choice(served)].location
        k = rng.randint(cfg.lns_min_removed, cfg.lns_max_removed)
        near = sorted(served, key=lambda j: min(D[s0][jobs[j].location], D[jobs[j].location][s0]))
        removed = set(near[:k])
        part = [[m.job_index[j] for j in cur_routes.get(v.id, ()) if j not in removed] for v in problem.vehicles]
        init = routing.ReadAssignmentFromRoutes(part, True)
        if init is None:
            continue
        gd_params.time_limit.FromMilliseconds(max(1, int(left * 1000)))
        a = routing.SolveFromAssignmentWithParameters(init, gd_params)
        if a is None:
            continue
        o = a.ObjectiveValue()
        if o < obj:
            obj, routes = o, _job_routes(m, a)
            sol = _extract(m, a)
            cur_obj, cur_routes = obj, routes
        elif o < cur_obj or o <= obj * (1 + cfg.lns_threshold * (1 - (now - t_start) / span)):
            cur_obj, cur_routes = o, _job_routes(m, a)
    return replace(sol, status=status)


def _route_cost(problem: Problem, v, seq: list[int], jobs: dict, prev_vehicle: dict) -> int:
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


def _solve_lns_sub(problem: Problem, cfg: SearchConfig, seed: int, deadline: float, sol: Solution
                   ) -> Solution:
    """Ruin & recreate on small sub-models: pick a random visit, the routes of its nearest visits
    (2..``lns_sub_routes``) plus one unused vehicle, remove ``lns_min_removed``..``lns_max_removed``
    visits nearest to it from those routes, and re-plan only those vehicles and their visits (and
    the nearest unassigned ones) on a fresh model: re-insertion heuristic from the ruined routes,
    then a greedy descent. Kept if the routes' objective (travel + reassignment + penalties of
    unassigned visits) improves. Routes do not interact outside a remote-doctor limit, so each
    sub-plan's routes (with their times) replace the old ones as they are."""
    vid_pos = {v.id: k for k, v in enumerate(problem.vehicles)}
    jobs = problem.job_by_id()
    locked = {jid for seq in problem.locked.values() for jid in seq}
    prev_vehicle = {jid: vid for vid, seq in problem.previous_routes.items() for jid in seq}
    max_arc = _max_arc(problem)
    big = _penalty_unit(problem, max_arc)
    D = problem.durations
    route_objs = {r.vehicle: r for r in sol.routes}
    routes = {v.id: [st.id for st in route_objs[v.id].steps if st.type == "job"] if v.id in route_objs else []
              for v in problem.vehicles}
    unservable = set()
    for j in problem.jobs:
        if not _job_allowed_vehicles(problem, j) and j.id not in locked:
            unservable.add(j.id)
        elif j.video_call_seconds > 0 and problem.remote_doctors == 0 and j.id not in locked:
            unservable.add(j.id)
    unassigned = {jid for jid in sol.unassigned if jid not in unservable}
    route_of = {jid: vid for vid, seq in routes.items() for jid in seq}
    free = [j.id for j in problem.jobs if j.id not in locked and j.id not in unservable]
    # Nearest other visits of each visit (symmetrised), computed once.
    near = {}
    w = cfg.lns_time_relatedness
    tw0 = {j: (min(a for a, _ in jobs[j].time_windows) if jobs[j].time_windows else 0) for j in free}
    for a in free:
        la, ta = jobs[a].location, tw0[a]
        near[a] = sorted((b for b in free if b != a),
                         key=lambda b: min(D[la][jobs[b].location], D[jobs[b].location][la])
                         + w * abs(tw0[b] - ta))
    rng = random.Random(seed)
    recreate = cfg.lns_recreate if cfg.lns_recreate != "DESCENT" else "LOCAL_CHEAPEST_INSERTION"
    gd = replace(cfg, first_solution=recreate, metaheuristic="GREEDY_DESCENT",
                 disabled_operators=tuple(cfg.disabled_operators) + tuple(cfg.lns_disabled_operators))
    params = _search_parameters(gd, 1.0, None)
    n_iter = n_acc = 0
    t_lns = time.monotonic()
    span = max(1e-3, deadline - t_lns)
    cur_cost = sum(_route_cost(problem, problem.vehicles[vid_pos[vid]], seq, jobs, prev_vehicle)
                   for vid, seq in routes.items()) + _unassigned_penalty(big, (jobs[j] for j in unassigned))
    best_cost, best_state = cur_cost, (dict(routes), dict(route_objs), set(unassigned))
    per_visit = cur_cost / max(1, len(route_of))
    t0, tf = cfg.lns_sa_t0 * per_visit, cfg.lns_sa_tf * per_visit
    while True:
        left = deadline - time.monotonic()
        if left < 0.05:
            break
        served = [j for j in route_of if j not in locked]
        pool = served + list(unassigned)
        if not pool:
            break
        s0 = rng.choice(list(unassigned)) if unassigned and rng.random() < 0.5 else rng.choice(pool)
        n_routes = rng.randint(min(2, cfg.lns_sub_routes), cfg.lns_sub_routes)
        chosen: list[int] = []
        if s0 in route_of:
            chosen.append(route_of[s0])
        for b in near[s0]:
            if len(chosen) >= n_routes:
                break
            vb = route_of.get(b)
            if vb is not None and vb not in chosen:
                chosen.append(vb)
        unused = [v.id for v in problem.vehicles if not routes[v.id]]
        drop = None  # route elimination: its visits must go to the other chosen routes
        if len(chosen) > 1 and rng.random() < cfg.lns_route_elimination:
            cands = [vid for vid in chosen if not any(j in locked for j in routes[vid])]
            if cands:
                drop = min(cands, key=lambda vid: (len(routes[vid]), rng.random()))
        if unused and drop is None and cfg.lns_sub_unused == 1:
            chosen.append(rng.choice(unused))
        elif unused and drop is None and cfg.lns_sub_unused > 1:
            chosen += rng.sample(unused, min(len(unused), cfg.lns_sub_unused))
        chosen_set = set(chosen)
        k = rng.randint(cfg.lns_min_removed, cfg.lns_max_removed)
        removed = {s0} if s0 in route_of else set()
        if drop is not None:
            removed |= set(routes[drop])
            k += len(routes[drop])
        if cfg.lns_ruin == "STRINGS":
            # SISR-like: from each chosen route, a string of consecutive visits around its visit
            # nearest to the seed
            for vid in chosen:
                seq = routes[vid]
                if not seq or vid == drop:
                    continue
                pos = {j: i for i, j in enumerate(seq)}
                c = s0 if s0 in pos else next((b for b in near[s0] if b in pos), None)
                if c is None:
                    continue
                ln = min(len(seq), rng.randint(1, cfg.lns_string_max))
                lo = max(0, min(pos[c] - rng.randint(0, ln - 1), len(seq) - ln))
                removed |= {j for j in seq[lo:lo + ln] if j not in locked}
        else:
            for b in near[s0]:
                if len(removed) >= k:
                    break
                if route_of.get(b) in chosen_set and b not in locked:
                    removed.add(b)
        extra = [b for b in near[s0] if b in unassigned][:5] if unassigned else []
        if s0 in unassigned:
            extra = [s0] + extra[:4]
        sub_jobs = [jid for vid in chosen for jid in routes[vid]] + extra
        kept = [vid for vid in chosen if vid != drop]
        sub = Problem(
            vehicles=tuple(problem.vehicles[vid_pos[vid]] for vid in kept),
            jobs=tuple(jobs[j] for j in sub_jobs),
            durations=D,
            remote_doctors=problem.remote_doctors,
            locked={vid: problem.locked[vid] for vid in kept if vid in problem.locked},
            previous_routes=problem.previous_routes,
            reassignment_cost=problem.reassignment_cost,
        )
        old_cost = sum(_route_cost(problem, problem.vehicles[vid_pos[vid]], routes[vid], jobs, prev_vehicle)
                       for vid in chosen) + _unassigned_penalty(big, (jobs[j] for j in extra))
        m = _build(sub, cfg, 0, validate=False, max_arc=max_arc)
        routing = m.routing
        params.time_limit.FromMilliseconds(max(1, int(min(left, cfg.lns_sub_time_limit_s) * 1000)))
        routing.CloseModelWithParameters(params)
        part = [[m.job_index[j] for j in routes[vid] if j not in removed] for vid in kept]
        n_iter += 1
        if cfg.lns_recreate == "DESCENT":
            init = routing.ReadAssignmentFromRoutes(part, True)
            a = routing.SolveFromAssignmentWithParameters(init, params) if init is not None else None
        else:
            if not routing.ApplyLocksToAllVehicles(part, False):
                continue
            a = routing.SolveWithParameters(params)
        if a is None:
            continue
        new = _job_routes(m, a)
        new_un = [j for j in sub_jobs if all(j not in seq for seq in new.values())]
        new_cost = sum(_route_cost(problem, problem.vehicles[vid_pos[vid]], seq, jobs, prev_vehicle)
                       for vid, seq in new.items()) + _unassigned_penalty(big, (jobs[j] for j in new_un))
        delta = new_cost - old_cost
        if delta >= 0:
            if t0 <= 0 or delta == 0:
                continue
            temp = t0 * (tf / t0) ** min(1.0, (time.monotonic() - t_lns) / span) if tf > 0 else t0
            if delta > -temp * math.log(max(1e-12, rng.random())):
                continue
        n_acc += 1
        s = _extract(m, a)
        for vid in chosen:
            route_objs.pop(vid, None)
            for j in routes[vid]:
                route_of.pop(j, None)
        for r in s.routes:
            route_objs[r.vehicle] = r
        for vid in chosen:
            routes[vid] = new.get(vid, [])
            for j in routes[vid]:
                route_of[j] = vid
        unassigned = (unassigned - set(sub_jobs)) | set(new_un)
        cur_cost += delta
        if cur_cost < best_cost:
            best_cost, best_state = cur_cost, (dict(routes), dict(route_objs), set(unassigned))
    routes, route_objs, unassigned = best_state
    # The whole plan from the per-route pieces.
    out_routes = tuple(route_objs[v.id] for v in problem.vehicles if routes[v.id])
    travel = wait = service = reassign = 0
    for r in out_routes:
        v = problem.vehicles[vid_pos[r.vehicle]]
        seq = routes[r.vehicle]
        c = _route_cost(problem, v, seq, jobs, {})
        travel += c
        reassign += _route_cost(problem, v, seq, jobs, prev_vehicle) - c
        service += sum(jobs[j].service for j in seq)
        wait += sum(st.waiting_time for st in r.steps)
    un = tuple(sorted(unservable | unassigned))
    return Solution(out_routes, un, travel + reassign, travel, service, wait,
                    status=f"lns-sub:{n_acc}/{n_iter}/{time.monotonic() - t_lns:.1f}s")


def _objective(problem: Problem, sol: Solution) -> int:
    """The sub-model LNS's objective of a whole plan: travel + reassignments + the priority-weighted
    penalties of the unassigned visits (unservable ones count the same in every plan)."""
    jobs = problem.job_by_id()
    return sol.cost + _unassigned_penalty(_penalty_unit(problem, _max_arc(problem)),
                                          (jobs[j] for j in sol.unassigned))


def _solve_lns_sub_multistart(problem: Problem, cfg: SearchConfig, seed: int, deadline: float,
                              sol: Solution, workers: int) -> Solution:
    """Too few routes to split: ``workers`` independent ruin & recreate runs from the same plan
    (the first with ``seed``, the others with derived seeds), the best plan wins."""
    tasks = [lambda dl, k=k: _solve_lns_sub(problem, cfg, seed if k == 0 else seed * 7919 + 104729 * k, dl, sol)
             for k in range(workers)]
    runs = _run_parallel(tasks, deadline)
    best = min(runs, key=lambda r: _objective(problem, r))
    return replace(best, status=f"lns-multistart{workers}:" + " | ".join(r.status for r in runs))


def _split_routes(problem: Problem, sol: Solution, n: int, rng: random.Random, min_routes: int = 0
                  ) -> list[tuple[Problem, Solution]]:
    """``n`` groups of neighbouring routes, each a Problem of its own with its part of ``sol``.

    Routes are ordered by their mean travel from a random visit and cut into ``n`` runs of about
    as many visits each (a ball around that visit, then shells around it); unused vehicles are
    dealt out at random; an unassigned visit goes with the route of its nearest planned visit
    that may serve it."""
    jobs = problem.job_by_id()
    D = problem.durations
    routes = {r.vehicle: [st.id for st in r.steps if st.type == "job"] for r in sol.routes}
    routes = {v: seq for v, seq in routes.items() if seq}
    served = [j for seq in routes.values() for j in seq]
    if len(routes) < max(n, min_routes):
        return []
    p = jobs[rng.choice(served)].location
    order = sorted(routes, key=lambda v: sum(D[p][jobs[j].location] for j in routes[v]) / len(routes[v]))
    group_of: dict[int, int] = {}
    acc = 0
    for vid in order:
        group_of[vid] = min(n - 1, acc * n // len(served))
        acc += len(routes[vid])
    unused = [v.id for v in problem.vehicles if v.id not in routes]
    rng.shuffle(unused)
    for k, vid in enumerate(unused):
        group_of[vid] = k % n
    veh = {v.id: v for v in problem.vehicles}
    route_of = {j: v for v, seq in routes.items() for j in seq}
    extra: list[list[int]] = [[] for _ in range(n)]
    for jid in sol.unassigned:
        j = jobs[jid]
        ok = [g for g in range(n) if any(group_of[v.id] == g and j.skills <= v.skills for v in problem.vehicles)]
        if not ok:
            extra[0].append(jid)
            continue
        cands = [b for b in served if group_of[route_of[b]] in ok]
        g = group_of[route_of[min(cands, key=lambda b: D[j.location][jobs[b].location])]] if cands else ok[0]
        extra[g].append(jid)
    by_vehicle = {r.vehicle: r for r in sol.routes}
    out = []
    for g in range(n):
        vids = [v.id for v in problem.vehicles if group_of[v.id] == g]
        vid_set = set(vids)
        jids = [j for v in vids for j in routes.get(v, ())] + extra[g]
        sub = replace(problem, vehicles=tuple(veh[v] for v in vids), jobs=tuple(jobs[j] for j in jids),
                      locked={v: s for v, s in problem.locked.items() if v in vid_set})
        part = Solution(tuple(by_vehicle[v] for v in vids if v in routes), tuple(extra[g]), 0, 0, 0, 0)
        out.append((sub, part))
    return out


def _solve_lns_sub_split(problem: Problem, cfg: SearchConfig, seed: int, deadline: float, sol: Solution,
                         workers: int) -> Solution:
    """The sub-model ruin & recreate on ``workers`` processes: rounds of ``cfg.lns_round_s``
    seconds, each splitting the routes into groups of neighbouring routes (a new split every round,
    so no border stays fixed) that are improved at once and then merged (routes do not interact)."""
    rng = random.Random(seed)
    rnd, status = 0, []
    while True:
        left = deadline - time.monotonic()
        if left < 0.3:
            break
        end = deadline if left < 2 * cfg.lns_round_s else time.monotonic() + cfg.lns_round_s
        groups = _split_routes(problem, sol, workers, rng, cfg.lns_split_min_routes)
        if not groups:
            res = _solve_lns_sub_multistart(problem, cfg, seed, deadline, sol, workers)
            return replace(res, status=",".join(status + [res.status])) if status else res
        tasks = [lambda dl, g=g, k=k: _solve_lns_sub(g[0], cfg, seed * 7919 + rnd * workers + k, dl, g[1])
                 for k, g in enumerate(groups)]
        parts = _run_parallel(tasks, end)
        sol = _merge(problem, parts)
        status.append("+".join(s.status.split(":", 1)[-1] for s in parts))
        rnd += 1
    return replace(sol, status=f"lns-split{workers}:{','.join(status)}")


def _extract(m: _Model, assignment) -> Solution:
    p, routing, manager, time_dim = m.problem, m.routing, m.manager, m.time_dim
    jobs_by_idx = {idx: j for j, idx in ((j, m.job_index[j.id]) for j in m.jobs)}
    breaks_by_vehicle: dict[int, list[tuple[int, object]]] = {}
    ivs = assignment.IntervalVarContainer()
    for i in range(ivs.Size()):
        el = ivs.Element(i)
        name = el.Var().Name()
        if name in m.break_intervals and el.PerformedValue():
            vid, b = m.break_intervals[name]
            breaks_by_vehicle.setdefault(vid, []).append((el.StartValue(), b))
    prev_vehicle = {jid: vid for vid, seq in p.previous_routes.items() for jid in seq}
    calls_limited = p.remote_doctors is not None and any(j.video_call_seconds > 0 for j in p.jobs)
    routes, served = [], set()
    tot_travel = tot_service = tot_wait = reassign = 0
    for k, v in enumerate(p.vehicles):
        idx = routing.Start(k)
        nodes = []
        idx = assignment.Value(routing.NextVar(idx))
        while not routing.IsEnd(idx):
            nodes.append(idx)
            idx = assignment.Value(routing.NextVar(idx))
        if not nodes:
            continue
        brks = sorted(breaks_by_vehicle.get(v.id, []), key=lambda x: x[0])
        cum = [assignment.Value(time_dim.CumulVar(i)) for i in nodes]
        start_t = assignment.Value(time_dim.CumulVar(routing.Start(k)))
        end_t = assignment.Value(time_dim.CumulVar(routing.End(k)))
        first = jobs_by_idx[nodes[0]]
        d0 = p.durations[v.start][first.location] if v.start is not None else 0
        if not brks or brks[0][0] >= cum[0]:
            start_t = max(start_t, cum[0] - d0)
        if brks and brks[0][0] < start_t:  # break before leaving: taken at the start location
            start_t = brks[0][0]
        steps = [Step("start", None, start_t, 0, 0, v.start)]
        loc, t_free, bi = v.start, start_t, 0
        for i, ci in zip(nodes, cum):
            j = jobs_by_idx[i]
            gap_breaks = 0
            while bi < len(brks) and brks[bi][0] < ci:
                bs, b = brks[bi]
                steps.append(Step("break", b.id, bs, b.service, 0, None))
                gap_breaks += b.service
                bi += 1
            d = p.durations[loc][j.location] if loc is not None else 0
            wait = max(0, ci - (t_free + d + gap_breaks))
            steps.append(Step("job", j.id, ci, j.service, wait, j.location))
            tot_travel += d
            tot_service += j.service
            served.add(j.id)
            if j.id in prev_vehicle and prev_vehicle[j.id] != v.id:
                reassign += p.reassignment_cost
            loc, t_free = j.location, ci + j.service
        gap_breaks = 0
        while bi < len(brks):
            bs, b = brks[bi]
            steps.append(Step("break", b.id, bs, b.service, 0, None))
            gap_breaks += b.service
            bi += 1
        d = p.durations[loc][v.end] if v.end is not None else 0
        tot_travel += d
        end_t = max([end_t, t_free + d + gap_breaks] + [bs + b.service for bs, b in brks])
        steps.append(Step("end", None, end_t, 0, 0, v.end))
        if not calls_limited:
            steps = _earliest_schedule(p, v, steps) or steps
        tot_wait += sum(st.waiting_time for st in steps)
        routes.append(Route(v.id, tuple(steps)))
    unassigned = tuple(sorted(set(m.unservable) | {j.id for j in m.jobs if j.id not in served}))
    return Solution(tuple(routes), unassigned, tot_travel + reassign, tot_travel, tot_service, tot_wait)


def _earliest_schedule(p: Problem, v, steps: list[Step]) -> list[Step] | None:
    """Same sequence (jobs and breaks), every service as early as possible (the solver's own cumul
    values are any feasible point when breaks make it use its scheduling LP). A break is placed at
    the earliest point of its gap; the next service waits for drive + breaks. Each time is <= the
    solver's, so windows stay met; returns None if anything does not fit (then the solver's
    schedule is kept). Not used with a remote-doctor limit (moving visits moves calls)."""
    jobs = {j.id: j for j in p.jobs}
    breaks = {b.id: b for b in v.breaks}
    D = p.durations
    inf = UNBOUNDED_END
    tw0, tw1 = v.time_window
    t_free, loc = tw0, v.start
    pending: list[Step] = []
    out: list[Step] = []
    for st in steps[1:]:
        if st.type == "break":
            pending.append(st)
            continue
        if st.type == "job":
            j = jobs[st.id]
            dest, service, wins = j.location, j.service, sorted(j.time_windows) or [(0, inf)]
        else:
            dest, service, wins = v.end, 0, [(0, inf)]
        d = D[loc][dest] if (loc is not None and dest is not None) else 0
        bt, bsum = t_free, 0
        for b in pending:
            bo = breaks[b.id]
            bw = sorted(bo.time_windows) or [(tw0, inf)]
            bs = next((max(bt, a) for a, e in bw if max(bt, a) <= e), None)
            if bs is None:
                return None
            out.append(replace(b, arrival=bs, waiting_time=0))
            bt, bsum = bs + bo.service, bsum + bo.service
        pending = []
        ready = t_free + d + bsum
        arr = max(ready, bt)
        start = next((max(arr, a) for a, e in wins if max(arr, a) <= e), None)
        if start is None or start + service > tw1:
            return None
        out.append(replace(st, arrival=start, waiting_time=start - ready if st.type == "job" else 0))
        t_free, loc = start + service, dest
    if pending:
        return None
    # Leave as late as possible for the first job when no break comes first.
    first = out[0] if out else None
    start_t = tw0
    if first is not None and first.type == "job":
        d0 = D[v.start][jobs[first.id].location] if v.start is not None else 0
        start_t = max(tw0, first.arrival - d0)
        out[0] = replace(first, waiting_time=first.arrival - (start_t + d0))
    elif first is not None and first.type == "break":
        # Leading breaks: the vehicle must still leave early enough to drive to the first stop
        # and take those breaks before it (the breaks may be taken on arrival, while waiting).
        lead = 0
        nxt = None
        for st in out:
            if st.type != "break":
                nxt = st
                break
            lead += breaks[st.id].service
        start_t = first.arrival
        if nxt is not None:
            dest = jobs[nxt.id].location if nxt.type == "job" else v.end
            d0 = D[v.start][dest] if (v.start is not None and dest is not None) else 0
            start_t = max(tw0, min(start_t, nxt.arrival - d0 - lead))
            if nxt.type == "job":
                i = out.index(nxt)
                out[i] = replace(nxt, waiting_time=max(0, nxt.arrival - (start_t + d0 + lead)))
    return [replace(steps[0], arrival=start_t, waiting_time=0)] + out
