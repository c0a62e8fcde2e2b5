"""The pipeline: split the problem into independent parts, plan each (a complete plan first,
then improvement until the deadline), merge.

Time-limited (the default): ``construction`` gives a complete plan (the portfolio of OR-Tools
first solutions + descents on small problems, our insertion on the others, or from the warm
start), then ``lns`` improves it until the deadline. With ``solution_limit``: the full-model
OR-Tools search (guided local search) from the same start, stopped after that many solutions, so
identical input + seed give identical plans. ``seed`` permutes the order of the visit nodes
(0 = input order), which changes tie-breaking.

A binding remote-doctor limit (more video calls than doctors) needs the CP feasibility filter,
with which OR-Tools' insertions fail (0 of 64 nurse visits planned): plan without the limit
(40 % of the time); if the calls fit, done; else drop the calls above capacity and improve that
plan under the limit with the full-model search.
"""
from __future__ import annotations

import time
from dataclasses import replace

from homevisits import video_calls

from ..problem import Problem, Solution
from .config import DEFAULT_CONFIG, SearchConfig, cpus
from .construction import insert, portfolio, run, visit_routes
from .lns import improve, nearest
from .model import allowed_vehicles, job_routes, objective, ortools_loaded, with_call_windows
from .plan import extract, merge
from .processes import run_parallel


def solve(problem: Problem, time_limit_s: float = 10.0, seed: int = 0, *,
          solution_limit: int | None = None, config: SearchConfig | None = None,
          initial_routes: dict[int, list[int]] | None = None) -> Solution:
    """Plan routes for ``problem`` within ``time_limit_s`` seconds of wall time (model building
    included), or, with ``solution_limit``, reproducibly (the time limit then is a safety net).

    ``initial_routes`` (vehicle id -> visit ids) overrides ``problem.previous_routes`` as warm
    start. Raises ValueError when the problem is malformed or a locked prefix cannot be kept.
    """
    t0 = time.monotonic()
    if not solution_limit:
        # keep a little of the wall-clock budget for what follows the last search (merging, the
        # answer from a worker process, the caller's own work): 3 %, at most 0.5 s
        time_limit_s = max(0.05, time_limit_s - min(0.5, 0.03 * time_limit_s))
    problem.validate()
    _refuse_unmodelled(problem)
    original, problem = problem, with_call_windows(problem)
    comps = components(problem)
    cfg = config or DEFAULT_CONFIG
    n_cpus = cpus(cfg)
    if len(comps) <= 1:
        return _solve_one(problem, time_limit_s, seed, solution_limit, replace(cfg, lns_workers=n_cpus),
                          initial_routes)  # (windows cut to the doctors' stretches are windows of `original`)
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
            call_shifts=problem.call_shifts,
            locked={v: s for v, s in problem.locked.items() if v in vids},
            previous_routes={v: tuple(j for j in s if j in jids) for v, s in problem.previous_routes.items()
                             if v in vids},
            reassignment_cost=problem.reassignment_cost,
        )
        init = {v: [j for j in s if j in jids] for v, s in initial_routes.items() if v in vids} \
            if initial_routes else None
        parts.append((sub, init))
    deadline = t0 + time_limit_s
    workers = max(1, min(n_cpus, len(parts)))
    cfg = replace(cfg, lns_workers=max(1, n_cpus // max(1, len(parts))))
    if workers > 1:
        solved = _solve_parts_parallel(parts, workers, deadline, seed, solution_limit, cfg)
    else:
        solved = _solve_parts(parts, deadline, seed, solution_limit, cfg)
    # Reassignment costs for jobs whose previous vehicle is in another component are not counted
    # by the sub-solves (such a move is impossible by skills anyway).
    return replace(merge(original, solved, unassigned), computing_time_ms=int((time.monotonic() - t0) * 1000),
                   status=",".join(s.status for s in solved))


def _refuse_unmodelled(problem: Problem) -> None:
    """The model counts ``delivery`` only and has no task limit: a problem with job ``pickup``
    amounts or vehicle ``max_tasks`` is refused (ValueError), never planned as if they were not
    there. ``vroom_io.for_optimizer`` hands such problems over in the model's terms."""
    picks = [j.id for j in problem.jobs if any(j.pickup)]
    if picks:
        raise ValueError(f"job {picks[0]} has 'pickup' amounts, which the optimizer does not model: "
                         "convert the problem with dispatch.vroom_io.for_optimizer first")
    capped = [v.id for v in problem.vehicles if v.max_tasks is not None]
    if capped:
        raise ValueError(f"vehicle {capped[0]} has 'max_tasks', which the optimizer does not model: "
                         "convert the problem with dispatch.vroom_io.for_optimizer first")


def components(problem: Problem) -> list[tuple[list[int], list[int]]]:
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
    by_skills: dict[frozenset, list[int]] = {}
    for j in problem.jobs:
        allowed = by_skills.get(j.skills)
        if allowed is None:
            allowed = by_skills[j.skills] = allowed_vehicles(problem, j)
            for k in allowed[1:]:
                union(allowed[0], k)
        job_vehicles.append(allowed)
        if allowed and j.video_call_seconds > 0 and problem.calls_limited():
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
    for b, sols in zip(bins, run_parallel(tasks, deadline, bounded=not solution_limit)):
        results.update(zip(b, sols))
    return [results[i] for i in range(len(parts))]


def _drop_overlapping_calls(problem: Problem, sol: Solution) -> dict[int, list[int]]:
    """Job routes of ``sol`` without the video-call jobs that push calls above capacity (with doctors
    on shift: those no doctor can take, ``homevisits.video_calls.assign``; locked ones stay)."""
    jobs = problem.job_by_id()
    calls = []
    locked = {jid for seq in problem.locked.values() for jid in seq}
    for r in sol.routes:
        for st in r.steps:
            if st.type == "job" and jobs[st.id].video_call_seconds > 0 and st.id not in locked:
                a = st.arrival + st.service
                calls.append((a, a + jobs[st.id].video_call_seconds, jobs[st.id].priority, st.id))
    calls.sort()
    dropped = set()
    if problem.call_shifts:
        doctors = [video_calls.Doctor(str(k), a, b) for k, (a, b) in enumerate(problem.call_shifts)]
        _, left = video_calls.assign([(jid, a, b) for a, b, _p, jid in calls], doctors)
        dropped = set(left)
        return {r.vehicle: [st.id for st in r.steps if st.type == "job" and st.id not in dropped]
                for r in sol.routes}
    active: list[int] = []  # end times of kept calls
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
    if (problem.call_shifts and n_calls) or (problem.remote_doctors is not None and n_calls > problem.remote_doctors):
        return _solve_with_calls(problem, time_limit_s, seed, solution_limit, cfg, initial_routes)
    return _solve_plain(problem, time_limit_s, seed, solution_limit, cfg, initial_routes)


def _solve_with_calls(problem: Problem, time_limit_s: float, seed: int, solution_limit: int | None,
                      cfg: SearchConfig, initial_routes: dict[int, list[int]] | None) -> Solution:
    """Remote-doctor capacity binds: the Cumulative constraint needs the CP feasibility filter, with
    which the insertion heuristics fail on real sizes (measured: 0 of 64 nurse visits planned).
    So: plan without the doctor limit (40 % of the time); if the calls fit, done; else drop the
    calls above capacity and improve from there with the constrained model (falling back to an
    empty start + local search insertion, ALL_UNPERFORMED, if that start is refused)."""
    from ..feasibility import check  # no OR-Tools there

    t0 = time.monotonic()
    relaxed = replace(problem, remote_doctors=None, call_shifts=())
    first = _solve_plain(relaxed, time_limit_s * 0.4, seed, solution_limit, cfg, initial_routes)
    if not check(problem, first)[0]:
        return first
    start = _drop_overlapping_calls(problem, first)
    ccfg = replace(cfg, first_solution="ALL_UNPERFORMED")
    deadline = t0 + time_limit_s
    try:
        return _full_search(problem, ccfg, seed, deadline, solution_limit, start)
    except RuntimeError:
        # the relaxed plan minus the dropped calls is refused: plan from the empty start (always
        # feasible) instead
        return _full_search(problem, ccfg, seed, deadline, solution_limit, None)


def _solve_plain(problem: Problem, time_limit_s: float, seed: int, solution_limit: int | None,
                 cfg: SearchConfig, initial_routes: dict[int, list[int]] | None) -> Solution:
    """A complete plan first, then improvement until the deadline (see the module docstring)."""
    t0 = time.monotonic()
    deadline = t0 + time_limit_s
    warm = dict(problem.previous_routes)
    warm.update(initial_routes or {})
    small = len(problem.jobs) * len(problem.vehicles) <= cfg.portfolio_max_size
    near = nearest(problem)  # one set of neighbour lists for the insertions and the LNS
    # Our insertion: milliseconds on small problems, a fraction of a second on 1 000 visits; the
    # fallback when the portfolio finds nothing in its time.
    plan = insert(problem, warm, near)
    # The other visit order too while it costs little of the budget (~0.2 s on 1 000 visits).
    if time.monotonic() - t0 < _SECOND_ORDER_SHARE * time_limit_s:
        other = insert(problem, warm, near, order="window")
        if objective(problem, other) < objective(problem, plan):
            plan = other
    start = visit_routes(plan)
    best = None
    if small and not warm and cfg.portfolio:
        best = portfolio(problem, cfg, seed, deadline, solution_limit)
    elif small:  # a greedy descent from the warm start (to its end: reproducible)
        left = deadline - time.monotonic()
        m, a = run(problem, cfg, seed, max(0.05, left if solution_limit else left * cfg.portfolio_share),
                   None, start, metaheuristic="GREEDY_DESCENT")
        best = (extract(m, a), job_routes(m, a)) if a is not None else None
    if best is not None and objective(problem, best[0]) <= objective(problem, plan):
        plan, start = best
    t_first = time.monotonic()
    if solution_limit or not cfg.lns:
        res = _full_search(problem, cfg, seed, deadline, solution_limit, start)
        if objective(problem, res) > objective(problem, plan):
            res = plan
    elif not ortools_loaded() and deadline - time.monotonic() < _MIN_IMPROVE_S:
        res = plan  # importing OR-Tools would eat what is left: the insertion's plan it is
    else:
        res = improve(problem, cfg, seed, deadline, plan, near)
    return replace(res, loading_time_ms=int((t_first - t0) * 1000),
                   computing_time_ms=int((time.monotonic() - t0) * 1000))


_SECOND_ORDER_SHARE = 0.2
# Below this much time left after the construction, the ruin & recreate is not started when it
# would first have to import OR-Tools (0.15 s on a quiet machine, 0.35 s under load).
_MIN_IMPROVE_S = 0.3


def _full_search(problem: Problem, cfg: SearchConfig, seed: int, deadline: float, solution_limit: int | None,
                 start: dict[int, list[int]] | None) -> Solution:
    """The OR-Tools search (``cfg.metaheuristic``) on the full model from ``start``."""
    m, a = run(problem, cfg, seed, max(0.05, deadline - time.monotonic()), solution_limit, start)
    if a is None:
        if problem.locked:
            raise ValueError("no plan keeps the locked visits feasible (locked prefixes break windows, "
                             f"skills or breaks; routing status {m.routing.status()})")
        raise RuntimeError(f"no solution found (routing status {m.routing.status()})")
    return replace(extract(m, a), status=str(m.routing.status()))
