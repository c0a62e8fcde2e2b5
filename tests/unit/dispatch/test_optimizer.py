"""The optimizer: every plan passes the independent feasibility checker, and the rules hold."""
from __future__ import annotations

import random

import pytest

from dispatch.feasibility import check
from dispatch.optimizer import solve
from dispatch.problem import Break, Job, Problem, Vehicle

H, MIN = 3600, 60
DOCTOR, NURSE = 1, 2
TL = 1.0


def feasible(problem, sol, **kw):
    errs, travel = check(problem, sol, **kw)
    assert errs == []
    assert travel == sol.duration
    return travel


def route_jobs(sol):
    return {r.vehicle: [s.id for s in r.steps if s.type == "job"] for r in sol.routes}


def vehicle_of(sol):
    return {jid: v for v, jobs in route_jobs(sol).items() for jid in jobs}


def test_line_all_served_optimal(line_problem):
    sol = solve(line_problem, TL)
    feasible(line_problem, sol, require_all=True)
    # one clinician out to location 5 and back is optimal: 2 * 50 min
    assert sol.duration == 2 * 50 * MIN
    assert sol.unassigned == ()
    steps = sol.routes[0].steps
    assert steps[0].type == "start" and steps[-1].type == "end"


def test_time_windows_and_multiple_windows(mk):
    jobs = [Job(1, 1, 30 * MIN, ((8 * H, 8 * H + 30 * MIN),)),
            # first window unreachable after job 1 (needs 08:50 at the earliest), second one works
            Job(2, 5, 30 * MIN, ((8 * H, 8 * H + 45 * MIN), (13 * H, 14 * H))),
            Job(3, 3, 30 * MIN, ((10 * H, 10 * H + 15 * MIN),))]
    p = mk(jobs, [Vehicle(1, 0, 0, (8 * H, 16 * H))])
    sol = solve(p, TL)
    feasible(p, sol, require_all=True)
    arr = {s.id: s.arrival for r in sol.routes for s in r.steps if s.type == "job"}
    assert 13 * H <= arr[2] <= 14 * H
    assert 10 * H <= arr[3] <= 10 * H + 15 * MIN


def test_breaks_taken_in_window(break_problem):
    sol = solve(break_problem, TL)
    feasible(break_problem, sol, require_all=True)
    steps = sol.routes[0].steps
    brk = [s for s in steps if s.type == "break"]
    assert len(brk) == 1 and brk[0].id == 9
    assert 11 * H <= brk[0].arrival <= 12 * H
    # never during a visit
    for s in steps:
        if s.type == "job":
            assert s.arrival + s.service <= brk[0].arrival or s.arrival >= brk[0].arrival + 30 * MIN


def test_break_forces_unassigned_when_day_is_full(mk):
    # 7.5 h of visits at the depot + 30-min lunch + ... in an 8-hour shift: one visit must go
    jobs = [Job(i, 0, 90 * MIN, ((8 * H, 16 * H),)) for i in range(1, 6)]
    p = mk(jobs, [Vehicle(1, 0, 0, (8 * H, 16 * H), breaks=(Break(1, ((12 * H, 13 * H),), 60 * MIN),))])
    sol = solve(p, TL)
    feasible(p, sol)
    assert len(sol.unassigned) == 1


def test_skills(skills_problem):
    sol = solve(skills_problem, TL)
    feasible(skills_problem, sol, require_all=True)
    v = vehicle_of(sol)
    assert v[1] == 1 and v[3] == 1 and v[2] == 2 and v[4] == 2


def test_job_without_capable_vehicle_is_unassigned(mk):
    jobs = [Job(1, 1, 600, skills=frozenset({99})), Job(2, 2, 600)]
    p = mk(jobs, [Vehicle(1, 0, 0, (8 * H, 16 * H))])
    sol = solve(p, TL)
    feasible(p, sol)
    assert sol.unassigned == (1,)


def test_priority_served_first(mk):
    # One clinician, 1 hour: only one of two 45-min visits fits. The high-priority one, though it
    # is farther away, must be served.
    jobs = [Job(1, 1, 45 * MIN, ((8 * H, 9 * H),), priority=0),
            Job(2, 2, 45 * MIN, ((8 * H, 9 * H),), priority=80)]
    p = mk(jobs, [Vehicle(1, 0, 0, (8 * H, 9 * H + 30 * MIN))])
    sol = solve(p, TL)
    feasible(p, sol)
    assert sol.unassigned == (1,)
    # with equal priorities the nearer one wins (less driving)
    jobs = [Job(1, 1, 45 * MIN, ((8 * H, 9 * H),)), Job(2, 2, 45 * MIN, ((8 * H, 9 * H),))]
    sol = solve(mk(jobs, [Vehicle(1, 0, 0, (8 * H, 9 * H + 30 * MIN))]), TL)
    assert sol.unassigned == (2,)


def test_capacity(mk):
    jobs = [Job(i, i, 0, delivery=(1,)) for i in range(1, 4)]
    p = mk(jobs, [Vehicle(1, 0, 0, capacity=(2,)), Vehicle(2, 0, 0, capacity=(2,))])
    sol = solve(p, TL)
    feasible(p, sol, require_all=True)
    assert len(sol.routes) == 2


def test_locks_keep_prefix(line_problem):
    p = Problem(line_problem.vehicles, line_problem.jobs, line_problem.durations,
                locked={2: (4, 1)})  # vehicle 2 is already on its way to 4, then 1
    sol = solve(p, TL)
    feasible(p, sol, require_all=True)
    assert route_jobs(sol)[2][:2] == [4, 1]


def test_remote_doctor_calls_never_overlap(nurse_problem):
    sol = solve(nurse_problem, TL)
    feasible(nurse_problem, sol, require_all=True)
    calls = sorted((s.arrival + s.service, s.arrival + s.service + 20 * MIN)
                   for r in sol.routes for s in r.steps if s.type == "job")
    assert len(calls) == 3
    for (a1, b1), (a2, b2) in zip(calls, calls[1:]):
        assert b1 <= a2  # staggered: one doctor, one call at a time


def test_remote_doctor_capacity_tight_leaves_visits_unassigned(mk):
    # Three nurses finishing at the same time (windows of 5 min, 45-min visits, 20-min calls),
    # one remote doctor: only one visit can be served, never overlapping calls.
    jobs = [Job(i, i, 45 * MIN, ((9 * H, 9 * H + 5 * MIN),), frozenset({NURSE}), video_call_seconds=20 * MIN)
            for i in range(1, 4)]
    vehicles = [Vehicle(k, k, k, (8 * H, 16 * H), skills=frozenset({NURSE})) for k in range(1, 4)]
    p = mk(jobs, vehicles, remote_doctors=1)
    sol = solve(p, TL)
    feasible(p, sol)
    assert len(sol.unassigned) == 2
    # two doctors: two visits
    p2 = mk(jobs, vehicles, remote_doctors=2)
    sol2 = solve(p2, TL)
    feasible(p2, sol2)
    assert len(sol2.unassigned) == 1
    # no limit given: all three
    p3 = mk(jobs, vehicles)
    assert solve(p3, TL).unassigned == ()


def test_warm_start_and_stability(mk):
    # Two identical clinicians at the depot, visits on both sides: previous plan gave the odd ones
    # to vehicle 2 and the even ones to vehicle 1. With a reassignment cost the re-plan keeps that.
    jobs = [Job(i, i % 7 + 1, 20 * MIN, ((8 * H, 16 * H),)) for i in range(1, 7)]
    vehicles = [Vehicle(1, 0, 0, (8 * H, 16 * H)), Vehicle(2, 0, 0, (8 * H, 16 * H))]
    prev = {2: (1, 3, 5), 1: (2, 4, 6)}
    p = mk(jobs, vehicles, previous_routes=prev, reassignment_cost=10 * H)
    sol = solve(p, TL)
    feasible(p, sol, require_all=True)
    got = vehicle_of(sol)
    for vid, seq in prev.items():
        for jid in seq:
            assert got[jid] == vid
    # a warm start alone (no stability cost) still gives a feasible, no-worse plan
    p0 = mk(jobs, vehicles, previous_routes=prev)
    sol0 = solve(p0, TL)
    feasible(p0, sol0, require_all=True)
    assert sol0.duration <= sol.duration


def test_warm_start_with_infeasible_previous_route_is_repaired(line_problem):
    # previous route in a silly order that breaks windows -> trimmed, still a feasible plan
    p = Problem(line_problem.vehicles, tuple(
        Job(j.id, j.location, j.service, ((8 * H, 8 * H + 70 * MIN),) if j.id == 1 else j.time_windows)
        for j in line_problem.jobs), line_problem.durations, previous_routes={1: (5, 4, 3, 2, 1)})
    sol = solve(p, TL)
    feasible(p, sol, require_all=True)


def test_deterministic_with_seed_and_solution_limit(line_problem):
    a = solve(line_problem, 5.0, seed=3, solution_limit=50)
    b = solve(line_problem, 5.0, seed=3, solution_limit=50)
    assert route_jobs(a) == route_jobs(b)
    assert [r.steps for r in a.routes] == [r.steps for r in b.routes]


def _minutes_apart(pts) -> tuple[tuple[int, ...], ...]:
    """Travel seconds between points on a km grid at 1 km per minute."""
    return tuple(tuple(int(60 * ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5) for b in pts) for a in pts)


def keeps_locks_and_counts_reassignments(p: Problem, sol) -> None:
    got = route_jobs(sol)
    for vid, seq in p.locked.items():
        assert got[vid][:len(seq)] == list(seq)
    prev_vehicle = {j: v for v, seq in p.previous_routes.items() for j in seq}
    moved = sum(1 for vid, seq in got.items() for j in seq if prev_vehicle.get(j, vid) != vid)
    assert sol.cost == sol.duration + moved * p.reassignment_cost


def _random_problem(seed: int) -> Problem:
    rng = random.Random(seed)
    n = 16
    pts = [(rng.uniform(0, 30), rng.uniform(0, 30)) for _ in range(n)]
    D = _minutes_apart(pts)
    jobs = []
    for i in range(1, n):
        st = rng.choice(range(8, 18, 2)) * H
        skill = rng.choice([DOCTOR, NURSE])
        jobs.append(Job(i, i, rng.choice([30, 45, 60]) * MIN, ((st, st + 2 * H),), frozenset({skill}),
                        priority=rng.choice([0, 0, 50]),
                        video_call_seconds=15 * MIN if skill == NURSE else 0))
    vehicles = []
    for k in range(1, 5):
        skill = DOCTOR if k % 2 else NURSE
        s = rng.choice([8, 12]) * H
        vehicles.append(Vehicle(k, 0, 0, (s, s + 8 * H), frozenset({skill}),
                                breaks=(Break(k, ((s + 3 * H, s + 5 * H),), 30 * MIN),)))
    # lock one visit onto a clinician who can do it (as if already on the way)
    locked = {}
    for j in jobs:
        (a, b), = j.time_windows
        fit = [v for v in vehicles if j.skills <= v.skills and v.time_window[0] + D[0][j.location] <= b
               and max(a, v.time_window[0] + D[0][j.location]) + j.service + D[j.location][0] <= v.time_window[1] - H]
        if fit:
            locked = {fit[0].id: (j.id,)}
            break
    return Problem(tuple(vehicles), tuple(jobs), D, remote_doctors=1, locked=locked)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_days_are_feasible(seed):
    p = _random_problem(seed)
    sol = solve(p, TL)
    feasible(p, sol)
    assert len(sol.unassigned) < len(p.jobs)


def test_services_start_as_early_as_possible(break_problem):
    # ETAs: the first visit right after the drive from the base, no needless lateness
    sol = solve(break_problem, TL)
    feasible(break_problem, sol, require_all=True)
    steps = sol.routes[0].steps
    first = steps[1]
    assert first.type == "job"
    assert first.arrival == steps[0].arrival + 10 * MIN * first.location
    assert first.waiting_time == 0


def test_break_before_first_visit_leaves_time_to_drive(mk):
    # lunch 11:00-11:30 before the only visit (window 11:30-12:00, far from the base): the route
    # must leave early enough to drive there AND take the break before the visit starts
    jobs = [Job(1, 5, 30 * MIN, ((11 * H + 30 * MIN, 12 * H),))]
    p = mk(jobs, [Vehicle(1, 0, 0, (8 * H, 16 * H), breaks=(Break(7, ((11 * H, 11 * H),), 30 * MIN),))])
    sol = solve(p, TL)
    feasible(p, sol, require_all=True)
    steps = sol.routes[0].steps
    assert [s.type for s in steps] == ["start", "break", "job", "end"]
    assert steps[0].arrival + p.durations[0][5] + 30 * MIN <= steps[2].arrival


def test_sub_model_lns_repairs_a_bad_route(mk):
    # Start from one route zigzagging along the line (5, 1, 4, 2, 3): the sub-model ruin & recreate
    # must reach the straight sweep 1..5 (0 -> 5 -> 0 = 100 min of driving, the optimum on a line).
    import time

    from dispatch.optimizer import DEFAULT_CONFIG
    from dispatch.optimizer.construction import insert
    from dispatch.optimizer.lns import ruin_and_recreate

    jobs = [Job(i, i, 30 * MIN, ((8 * H, 16 * H),)) for i in range(1, 6)]
    p = mk(jobs, [Vehicle(1, 0, 0, (8 * H, 18 * H)), Vehicle(2, 0, 0, (8 * H, 18 * H))])
    bad = insert(p, {1: [5, 1, 4, 2, 3], 2: []})
    assert route_jobs(bad) == {1: [5, 1, 4, 2, 3]}
    assert bad.duration > 100 * MIN
    sol = ruin_and_recreate(p, DEFAULT_CONFIG, 0, time.monotonic() + 1.0, bad)
    feasible(p, sol, require_all=True)
    assert sol.duration == 100 * MIN
    assert sol.cost == sol.duration


def _stability_day(seed: int) -> Problem:
    """Like _random_problem, without the remote-doctor limit (so the time-limited solve runs the
    sub-model LNS), with a previous plan and a reassignment cost."""
    p = _random_problem(seed)
    rng = random.Random(seed)
    prev: dict[int, list[int]] = {}
    for j in p.jobs:
        fit = [v.id for v in p.vehicles if j.skills <= v.skills]
        prev.setdefault(rng.choice(fit), []).append(j.id)
    prev = {v: tuple(s) for v, s in prev.items()}
    return Problem(p.vehicles, p.jobs, p.durations, locked=p.locked, previous_routes=prev,
                   reassignment_cost=20 * MIN)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_time_limited_solve_keeps_locks_breaks_skills_and_counts_reassignments(seed):
    p = _stability_day(seed)
    sol = solve(p, TL)
    feasible(p, sol)
    keeps_locks_and_counts_reassignments(p, sol)
    jobs = p.job_by_id()
    vehicles = p.vehicle_by_id()
    for vid, seq in route_jobs(sol).items():
        assert all(jobs[j].skills <= vehicles[vid].skills for j in seq)


def _two_skill_day(seed: int = 5) -> Problem:
    """Doctors and nurses: two independent sub-problems (no video calls tie them)."""
    rng = random.Random(seed)
    n = 21
    pts = [(rng.uniform(0, 30), rng.uniform(0, 30)) for _ in range(n)]
    D = _minutes_apart(pts)
    starts = [rng.choice(range(8, 16, 2)) * H for _ in range(n)]
    jobs = [Job(i, i, 30 * MIN, ((starts[i], starts[i] + 2 * H),), frozenset({DOCTOR if i % 2 else NURSE}))
            for i in range(1, n)]
    vehicles = [Vehicle(k, 0, 0, (8 * H, 18 * H), frozenset({DOCTOR if k % 2 else NURSE}),
                        breaks=(Break(k, ((11 * H, 13 * H),), 30 * MIN),)) for k in range(1, 5)]
    return Problem(tuple(vehicles), tuple(jobs), D)


def test_parallel_sub_problems_give_the_same_plan_as_one_after_the_other():
    from dispatch.optimizer import SearchConfig

    p = _two_skill_day()
    one = solve(p, 5.0, seed=1, solution_limit=40, config=SearchConfig(workers=1))
    two = solve(p, 5.0, seed=1, solution_limit=40, config=SearchConfig(workers=2))
    feasible(p, two, require_all=True)
    assert [r.steps for r in one.routes] == [r.steps for r in two.routes]
    assert (one.cost, one.unassigned) == (two.cost, two.unassigned)


def test_parallel_time_limited_solve_uses_the_budget_once():
    import time as _time

    from dispatch.optimizer import SearchConfig

    p = _two_skill_day(6)
    t = _time.monotonic()
    sol = solve(p, 2.0, config=SearchConfig(workers=2))
    assert _time.monotonic() - t < 2.0 + 1.5  # both halves ran at once, not 2 + 2 s
    feasible(p, sol, require_all=True)


def test_a_worker_process_error_reaches_the_caller(mk):
    from dispatch.optimizer import SearchConfig

    # the nurse half (solved in the worker process: the doctor half is larger) has a locked visit
    # whose window its clinician can never reach: the ValueError must come back, not a hang
    jobs = [Job(1, 1, 30 * MIN, skills=frozenset({DOCTOR})), Job(2, 2, 30 * MIN, skills=frozenset({DOCTOR})),
            Job(3, 3, 30 * MIN, skills=frozenset({DOCTOR})),
            Job(4, 7, 30 * MIN, ((8 * H, 8 * H + 5 * MIN),), frozenset({NURSE}))]
    vehicles = [Vehicle(1, 0, 0, (8 * H, 16 * H), frozenset({DOCTOR})),
                Vehicle(2, 0, 0, (8 * H, 16 * H), frozenset({NURSE}))]
    p = mk(jobs, vehicles, locked={2: (4,)})
    with pytest.raises(ValueError, match="locked"):
        solve(p, 2.0, config=SearchConfig(workers=2))
    with pytest.raises(ValueError, match="locked"):
        solve(p, 2.0, config=SearchConfig(workers=1))


def _one_skill_day(seed: int = 8) -> Problem:
    """30 visits, 8 interchangeable clinicians, one visit locked, a previous plan: one sub-problem."""
    rng = random.Random(seed)
    n = 31
    pts = [(15.0, 15.0)] + [(rng.uniform(0, 30), rng.uniform(0, 30)) for _ in range(n - 1)]
    D = _minutes_apart(pts)
    starts = [rng.choice(range(8, 16, 2)) * H for _ in range(n)]
    jobs = tuple(Job(i, i, 30 * MIN, ((starts[i], starts[i] + 2 * H),)) for i in range(1, n))
    vehicles = tuple(Vehicle(k, 0, 0, (8 * H, 18 * H), breaks=(Break(k, ((11 * H, 13 * H),), 30 * MIN),))
                     for k in range(1, 9))
    early = min(jobs, key=lambda j: j.time_windows[0][0])
    prev = {k: tuple(j.id for j in jobs if j.id % 8 == k % 8) for k in range(1, 9)}
    return Problem(vehicles, jobs, D, locked={1: (early.id,)}, previous_routes=prev, reassignment_cost=10 * MIN)


def test_split_routes_partition_vehicles_and_visits():
    from dispatch.optimizer.lns import split_routes

    p = _one_skill_day()
    sol = solve(p, 5.0, solution_limit=30)
    groups = split_routes(p, sol, 2, random.Random(1))
    assert len(groups) == 2
    vids = [v.id for g, _ in groups for v in g.vehicles]
    assert sorted(vids) == sorted(v.id for v in p.vehicles)
    planned = [j.id for g, _ in groups for j in g.jobs]
    assert sorted(planned) == sorted(j.id for j in p.jobs)
    for g, part in groups:
        assert {r.vehicle for r in part.routes} <= {v.id for v in g.vehicles}
        assert set(g.locked) <= {v.id for v in g.vehicles}


def test_split_ruin_and_recreate_keeps_plans_feasible_and_locks():
    from dispatch.optimizer import SearchConfig

    p = _one_skill_day()
    cfg = SearchConfig(workers=2, lns_split_min_routes=2, lns_round_s=0.3)
    sol = solve(p, 2.0, config=cfg)
    assert sol.status.startswith("lns-split2"), sol.status
    feasible(p, sol)
    keeps_locks_and_counts_reassignments(p, sol)
    assert len(sol.unassigned) < 3


def test_multistart_on_few_routes_keeps_the_best_feasible_plan():
    from dispatch.optimizer import SearchConfig

    p = _one_skill_day()
    sol = solve(p, 2.0, config=SearchConfig(workers=2))  # 8 clinicians: fewer than 24 routes
    assert sol.status.startswith("lns-multistart2"), sol.status
    feasible(p, sol)
    keeps_locks_and_counts_reassignments(p, sol)
    # the winner is the best of the runs the status lists ("acc/iter/time" each)
    assert sol.status.count("lns-sub:") == 2
    assert len(sol.unassigned) < 3


def _large_day(n_visits: int = 1000, seed: int = 11) -> Problem:
    """A generated region-day: visits with 2-hour windows over 08-18 on a 40 km square, 30-45 min
    on site, interchangeable clinicians from the middle of the map working 08-18 with a lunch
    break; enough clinicians for every visit."""
    rng = random.Random(seed)
    pts = [(20.0, 20.0)] + [(rng.uniform(0, 40), rng.uniform(0, 40)) for _ in range(n_visits)]
    D = _minutes_apart(pts)
    jobs = []
    for i in range(1, n_visits + 1):
        st = rng.choice(range(8, 18, 2)) * H
        jobs.append(Job(i, i, rng.choice([30, 45]) * MIN, ((st, st + 2 * H),)))
    vehicles = []
    for k in range(1, n_visits // 5 + 1):
        vehicles.append(Vehicle(k, 0, 0, (8 * H, 18 * H), breaks=(Break(k, ((11 * H, 13 * H),), 30 * MIN),)))
    return Problem(tuple(vehicles), tuple(jobs), D)


def test_a_one_second_budget_plans_every_visit_of_a_1000_visit_day():
    """Anytime: the complete first plan comes before improvement, whatever the budget (the wall
    time against the budget is a benchmark figure: docs/benchmarks-dispatch.md)."""
    p = _large_day()
    sol = solve(p, 1.0)
    feasible(p, sol, require_all=True)
    assert sol.unassigned == ()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_insertion_plan_keeps_locks_breaks_windows_and_the_warm_start(seed):
    """Our construction alone: every plan passes the checker, keeps the locked prefixes and
    counts the reassignments away from the previous plan."""
    from dispatch.optimizer.construction import insert

    p = _stability_day(seed)
    relaxed = Problem(p.vehicles, p.jobs, p.durations, locked=p.locked, previous_routes=p.previous_routes,
                      reassignment_cost=p.reassignment_cost)
    sol = insert(relaxed, dict(p.previous_routes))
    feasible(relaxed, sol)
    keeps_locks_and_counts_reassignments(relaxed, sol)
    assert len(sol.unassigned) < len(p.jobs)


def test_the_insertion_refuses_a_lock_that_cannot_be_kept(mk):
    from dispatch.optimizer.construction import insert

    jobs = [Job(1, 7, 30 * MIN, ((8 * H, 8 * H + 5 * MIN),))]
    p = mk(jobs, [Vehicle(1, 0, 0, (8 * H, 16 * H))], locked={1: (1,)})
    with pytest.raises(ValueError, match="locked"):
        insert(p)


def test_the_insertion_uses_a_second_window_and_takes_the_break_in_its_window(mk):
    from dispatch.optimizer.construction import insert

    jobs = [Job(1, 1, 30 * MIN, ((8 * H, 8 * H + 30 * MIN),)),
            Job(2, 5, 30 * MIN, ((8 * H, 8 * H + 45 * MIN), (13 * H, 14 * H))),
            Job(3, 3, 30 * MIN, ((10 * H, 10 * H + 15 * MIN),))]
    p = mk(jobs, [Vehicle(1, 0, 0, (8 * H, 16 * H), breaks=(Break(9, ((11 * H, 12 * H),), 30 * MIN),))])
    sol = insert(p)
    feasible(p, sol, require_all=True)
    steps = sol.routes[0].steps
    arr = {s.id: s.arrival for s in steps if s.type == "job"}
    assert 13 * H <= arr[2] <= 14 * H
    brk = [s for s in steps if s.type == "break"]
    assert len(brk) == 1 and 11 * H <= brk[0].arrival <= 12 * H


@pytest.mark.parametrize("field", ["pickup", "max_tasks"])
def test_solve_refuses_what_the_model_ignores_and_for_optimizer_converts_it(mk, field):
    """The model counts deliveries only and has no task limit: a pickup or a max_tasks handed to
    ``solve`` directly is refused, not silently dropped; ``vroom_io.for_optimizer`` converts it."""
    from dispatch.vroom_io import for_optimizer, from_optimizer

    if field == "pickup":  # capacity 1, two pickups of 1: one route cannot take both
        jobs = [Job(1, 1, 0, pickup=(1,)), Job(2, 2, 0, pickup=(1,))]
        vehicles = [Vehicle(1, 0, 0, (8 * H, 16 * H), capacity=(1,)), Vehicle(2, 0, 0, (8 * H, 16 * H), capacity=(1,))]
    else:
        jobs = [Job(1, 1, 0), Job(2, 2, 0)]
        vehicles = [Vehicle(1, 0, 0, (8 * H, 16 * H), max_tasks=1), Vehicle(2, 0, 0, (8 * H, 16 * H), max_tasks=1)]
    p = mk(jobs, vehicles)
    with pytest.raises(ValueError, match=field):
        solve(p, TL)
    sol = from_optimizer(solve(for_optimizer(p), TL), p)
    feasible(p, sol, require_all=True)
    assert sorted(len(r) for r in route_jobs(sol).values()) == [1, 1]


def _calls(p, sol):
    jobs = p.job_by_id()
    return sorted((s.arrival + s.service, s.arrival + s.service + jobs[s.id].video_call_seconds, s.id)
                  for r in sol.routes for s in r.steps if s.type == "job" and jobs[s.id].video_call_seconds)


def test_doctors_on_shift_take_every_planned_call_and_none_outside_their_shifts(mk):
    """Two doctors on calls 09:00-10:00 and 10:00-12:00, three nurses finishing together: each
    planned call lies inside one doctor's shift and gets a named doctor (homevisits.video_calls)."""
    from homevisits import video_calls
    jobs = [Job(i, i, 45 * MIN, ((9 * H, 11 * H),), frozenset({NURSE}), video_call_seconds=20 * MIN)
            for i in range(1, 4)]
    vehicles = [Vehicle(k, k, k, (8 * H, 16 * H), skills=frozenset({NURSE})) for k in range(1, 4)]
    shifts = ((9 * H, 10 * H), (10 * H, 12 * H))
    p = mk(jobs, vehicles, remote_doctors=5, call_shifts=shifts)
    sol = solve(p, TL)
    feasible(p, sol, require_all=True)
    calls = _calls(p, sol)
    doctors = [video_calls.Doctor("a", *shifts[0]), video_calls.Doctor("b", *shifts[1])]
    named, left = video_calls.assign([(jid, a, b) for a, b, jid in calls], doctors)
    assert left == [] and len(named) == 3
    for a, b, _ in calls:  # never across 10:00, where one doctor hands over to the other
        assert b <= 10 * H or a >= 10 * H


def test_a_call_with_no_doctor_on_shift_leaves_its_visit_unassigned(mk):
    """A doctor on calls only 14:00-16:00 cannot take the call of a visit that must end by 12:00."""
    jobs = [Job(1, 1, 45 * MIN, ((9 * H, 11 * H),), frozenset({NURSE}), video_call_seconds=20 * MIN),
            Job(2, 2, 45 * MIN, ((13 * H, 15 * H),), frozenset({NURSE}), video_call_seconds=20 * MIN)]
    vehicles = [Vehicle(1, 0, 0, (8 * H, 18 * H), skills=frozenset({NURSE}))]
    p = mk(jobs, vehicles, call_shifts=((14 * H, 16 * H),))
    sol = solve(p, TL)
    feasible(p, sol)
    assert sol.unassigned == (1,)
    (a, b, jid), = _calls(p, sol)
    assert jid == 2 and 14 * H <= a and b <= 16 * H
