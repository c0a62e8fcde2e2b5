"""Improvement: ruin & recreate on small sub-models, alone or on several processes.

Each iteration re-plans only the routes around a random visit (the routes of its nearest visits,
2..``lns_sub_routes``, plus one unused vehicle) on a fresh small model: remove 3-10 visits nearest
the seed from those routes, read the ruined routes back, let a greedy descent re-insert and
improve, keep the new routes if travel + reassignment + unassigned penalties of those routes drop.
Routes do not interact (no remote-doctor limit on this path), so the sub-plan's routes, with
their times, replace the old ones. An iteration costs 10-40 ms whatever the size of the day: on a
large day this is the decomposition (regions of a few routes, a new region each iteration, so no
seam stays fixed); on several processes, groups of neighbouring routes are improved at once.
"""
from __future__ import annotations

import random
import time
from dataclasses import replace

from ..problem import Problem, Solution
from .config import SearchConfig, search_parameters
from .model import (Neighbours, build, job_routes, largest_arc, objective, penalty_unit, route_cost,
                    unassigned_penalty, unservable)
from .plan import extract, merge
from .processes import run_parallel


def improve(problem: Problem, cfg: SearchConfig, seed: int, deadline: float, sol: Solution,
            near: Neighbours | None = None) -> Solution:
    """Ruin & recreate from ``sol`` until ``deadline``, on ``cfg.lns_workers`` processes.
    ``near``: the neighbour lists (``nearest``), made here if not given."""
    if near is None:
        near = nearest(problem)
    if cfg.lns_workers > 1 and deadline - time.monotonic() > _MIN_PARALLEL_S:
        return split_rounds(problem, cfg, seed, deadline, sol, cfg.lns_workers, near)
    return ruin_and_recreate(problem, cfg, seed, deadline, sol, near)


def nearest(problem: Problem, k: int = 0) -> Neighbours:
    """The neighbour lists the ruin & recreate (``k`` = ``NEAR``) and the insertion use, over the
    servable visits."""
    never = unservable(problem)
    return Neighbours(problem, [j.id for j in problem.jobs if j.id not in never], k or NEAR)


def ruin_and_recreate(problem: Problem, cfg: SearchConfig, seed: int, deadline: float, sol: Solution,
                      near: Neighbours | None = None) -> Solution:
    """The ruin & recreate loop on one process (see the module docstring); returns the best plan."""
    vid_pos = {v.id: k for k, v in enumerate(problem.vehicles)}
    jobs = problem.job_by_id()
    locked = {jid for seq in problem.locked.values() for jid in seq}
    prev_vehicle = {jid: vid for vid, seq in problem.previous_routes.items() for jid in seq}
    max_arc = largest_arc(problem)
    big = penalty_unit(problem, max_arc)
    D = problem.durations
    route_objs = {r.vehicle: r for r in sol.routes}
    routes = {v.id: [st.id for st in route_objs[v.id].steps if st.type == "job"] if v.id in route_objs else []
              for v in problem.vehicles}
    never = unservable(problem)
    unassigned = {jid for jid in sol.unassigned if jid not in never}
    route_of = {jid: vid for vid, seq in routes.items() for jid in seq}
    if near is None:
        near = nearest(problem)
    rng = random.Random(seed)
    params = search_parameters(cfg, 1.0, first_solution="LOCAL_CHEAPEST_INSERTION",
                               metaheuristic="GREEDY_DESCENT", disabled_operators=cfg.lns_disabled_operators)
    n_iter = n_acc = 0
    t_lns = time.monotonic()
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
        if unused:
            chosen.append(rng.choice(unused))
        chosen_set = set(chosen)
        k = rng.randint(cfg.lns_min_removed, cfg.lns_max_removed)
        removed = {s0} if s0 in route_of else set()
        for b in near[s0]:
            if len(removed) >= k:
                break
            if route_of.get(b) in chosen_set and b not in locked:
                removed.add(b)
        extra = [b for b in near[s0] if b in unassigned][:5] if unassigned else []
        if s0 in unassigned:
            extra = [s0] + extra[:4]
        sub_jobs = [jid for vid in chosen for jid in routes[vid]] + extra
        sub = Problem(
            vehicles=tuple(problem.vehicles[vid_pos[vid]] for vid in chosen),
            jobs=tuple(jobs[j] for j in sub_jobs),
            durations=D,
            remote_doctors=problem.remote_doctors,
            call_shifts=problem.call_shifts,
            locked={vid: problem.locked[vid] for vid in chosen if vid in problem.locked},
            previous_routes=problem.previous_routes,
            reassignment_cost=problem.reassignment_cost,
        )
        old_cost = sum(route_cost(problem, problem.vehicles[vid_pos[vid]], routes[vid], jobs, prev_vehicle)
                       for vid in chosen) + unassigned_penalty(big, (jobs[j] for j in extra))
        m = build(sub, validate=False, max_arc=max_arc)
        routing = m.routing
        params.time_limit.FromMilliseconds(max(1, int(min(left, cfg.lns_sub_time_limit_s) * 1000)))
        routing.CloseModelWithParameters(params)
        part = [[m.job_index[j] for j in routes[vid] if j not in removed] for vid in chosen]
        n_iter += 1
        init = routing.ReadAssignmentFromRoutes(part, True)
        a = routing.SolveFromAssignmentWithParameters(init, params) if init is not None else None
        if a is None:
            continue
        new = job_routes(m, a)
        new_un = [j for j in sub_jobs if all(j not in seq for seq in new.values())]
        new_cost = sum(route_cost(problem, problem.vehicles[vid_pos[vid]], seq, jobs, prev_vehicle)
                       for vid, seq in new.items()) + unassigned_penalty(big, (jobs[j] for j in new_un))
        if new_cost >= old_cost:
            continue
        n_acc += 1
        s = extract(m, a)
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
    # The whole plan from the per-route pieces.
    out_routes = tuple(route_objs[v.id] for v in problem.vehicles if routes[v.id])
    travel = wait = service = reassign = 0
    for r in out_routes:
        v = problem.vehicles[vid_pos[r.vehicle]]
        seq = routes[r.vehicle]
        c = route_cost(problem, v, seq, jobs, {})
        travel += c
        reassign += route_cost(problem, v, seq, jobs, prev_vehicle) - c
        service += sum(jobs[j].service for j in seq)
        wait += sum(st.waiting_time for st in r.steps)
    un = tuple(sorted(never | unassigned))
    return Solution(out_routes, un, travel + reassign, travel, service, wait,
                    status=f"lns-sub:{n_acc}/{n_iter}/{time.monotonic() - t_lns:.1f}s")


# Below this much time left, forking processes costs more than it brings.
_MIN_PARALLEL_S = 1.0

# Nearest visits kept per visit: the seed's routes and the removed visits come from the first few.
NEAR = 60


def multistart(problem: Problem, cfg: SearchConfig, seed: int, deadline: float, sol: Solution,
               workers: int, near: Neighbours) -> Solution:
    """Too few routes to split: ``workers`` independent ruin & recreate runs from the same plan
    (the first with ``seed``, the others with derived seeds), the best plan wins."""
    tasks = [lambda dl, k=k: ruin_and_recreate(problem, cfg, seed if k == 0 else seed * 7919 + 104729 * k, dl, sol,
                                                 near)
             for k in range(workers)]
    runs = run_parallel(tasks, deadline)
    best = min(runs, key=lambda r: objective(problem, r))
    return replace(best, status=f"lns-multistart{workers}:" + " | ".join(r.status for r in runs))


def split_routes(problem: Problem, sol: Solution, n: int, rng: random.Random, min_routes: int = 0
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


def split_rounds(problem: Problem, cfg: SearchConfig, seed: int, deadline: float, sol: Solution,
                 workers: int, near: Neighbours) -> Solution:
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
        groups = split_routes(problem, sol, workers, rng, cfg.lns_split_min_routes)
        if not groups:
            res = multistart(problem, cfg, seed, deadline, sol, workers, near)
            return replace(res, status=",".join(status + [res.status])) if status else res
        tasks = [lambda dl, g=g, k=k: ruin_and_recreate(g[0], cfg, seed * 7919 + rnd * workers + k, dl, g[1], near)
                 for k, g in enumerate(groups)]
        parts = run_parallel(tasks, end)
        sol = merge(problem, parts)
        status.append("+".join(s.status.split(":", 1)[-1] for s in parts))
        rnd += 1
    return replace(sol, status=f"lns-split{workers}:{','.join(status)}")
