"""The independent checker accepts a correct plan and catches every kind of violation."""
from __future__ import annotations

import dataclasses

import pytest

from dispatch.feasibility import check
from dispatch.problem import Break, Job, Problem, Route, Solution, Step, Vehicle

H, MIN = 3600, 60
D = tuple(tuple(abs(i - j) * 10 * MIN for j in range(6)) for i in range(6))  # 10 min per step


def base_problem(**kw) -> Problem:
    jobs = (Job(1, 1, 30 * MIN, ((8 * H, 10 * H),), frozenset({1}), delivery=(1,)),
            Job(2, 2, 30 * MIN, ((9 * H, 11 * H),), delivery=(1,), video_call_seconds=20 * MIN),
            Job(3, 3, 30 * MIN, ((8 * H, 12 * H),), delivery=(1,), video_call_seconds=20 * MIN))
    vehicles = (Vehicle(1, 0, 0, (8 * H, 16 * H), frozenset({1}), (2,), (Break(7, ((10 * H, 11 * H),), 30 * MIN),)),
                Vehicle(2, 0, 0, (8 * H, 16 * H), frozenset(), (5,)))
    return Problem(vehicles, jobs, D, **kw)


def good_plan() -> Solution:
    # vehicle 1: start 08:00, job 1 at 08:10-08:40, job 2 at 09:00-09:30 (call 09:30-09:50),
    # break 10:00-10:30, end 10:50.  vehicle 2: job 3 at 08:30-09:00 (call 09:00-09:20), end 09:30.
    r1 = Route(1, (Step("start", None, 8 * H, location=0), Step("job", 1, 8 * H + 10 * MIN, 30 * MIN, location=1),
                   Step("job", 2, 9 * H, 30 * MIN, 10 * MIN, location=2), Step("break", 7, 10 * H, 30 * MIN),
                   Step("end", None, 10 * H + 50 * MIN, location=0)))
    r2 = Route(2, (Step("start", None, 8 * H, location=0), Step("job", 3, 8 * H + 30 * MIN, 30 * MIN, location=3),
                   Step("end", None, 9 * H + 30 * MIN, location=0)))
    return Solution((r1, r2), (), 0, 0, 0, 0)


def with_steps(plan: Solution, vehicle: int, steps) -> Solution:
    routes = tuple(Route(r.vehicle, tuple(steps)) if r.vehicle == vehicle else r for r in plan.routes)
    return dataclasses.replace(plan, routes=routes)


def test_good_plan_passes():
    errs, travel = check(base_problem(remote_doctors=1), good_plan(), require_all=True)
    assert errs == []
    assert travel == (10 + 10 + 20 + 30 + 30) * MIN


def violations(problem, plan):
    errs, _ = check(problem, plan)
    assert errs, "the checker must report a violation"
    return " | ".join(errs)


def test_window_violation():
    p = good_plan()
    steps = list(p.routes[1].steps)
    steps[1] = dataclasses.replace(steps[1], arrival=12 * H + MIN)
    steps[2] = dataclasses.replace(steps[2], arrival=13 * H)
    assert "outside its windows" in violations(base_problem(), with_steps(p, 2, steps))


def test_travel_time_violation():
    p = good_plan()
    steps = list(p.routes[1].steps)
    steps[1] = dataclasses.replace(steps[1], arrival=8 * H + 5 * MIN)  # needs 30 min to get there
    assert "cannot be reached" in violations(base_problem(), with_steps(p, 2, steps))


def test_job_served_twice():
    p = good_plan()
    steps = list(p.routes[1].steps)
    steps.insert(2, Step("job", 1, 9 * H + 30 * MIN, 30 * MIN, location=1))
    steps[-1] = Step("end", None, 11 * H, location=0)
    assert "served twice" in violations(base_problem(), with_steps(p, 2, steps))


def test_skills_violation():
    p = good_plan()
    # move job 1 (needs skill 1) to vehicle 2 (has none)
    steps = [Step("start", None, 8 * H), Step("job", 1, 8 * H + 10 * MIN), Step("job", 3, 9 * H),
             Step("end", None, 10 * H)]
    r1 = [s for s in p.routes[0].steps if s.id != 1]
    plan = with_steps(with_steps(p, 2, steps), 1, r1)
    assert "skills" in violations(base_problem(), plan)


def test_capacity_violation():
    p = base_problem()
    small = dataclasses.replace(p, vehicles=(dataclasses.replace(p.vehicles[0], capacity=(1,)), p.vehicles[1]))
    assert "exceeds capacity" in violations(small, good_plan())


def test_vehicle_window_violation():
    p = base_problem()
    short = dataclasses.replace(p, vehicles=(dataclasses.replace(p.vehicles[0], time_window=(8 * H, 10 * H + 40 * MIN)),
                                            p.vehicles[1]))
    assert "window" in violations(short, good_plan())


def test_break_outside_window_and_missing_and_overlapping():
    p = good_plan()
    steps = list(p.routes[0].steps)
    late = steps[:3] + [Step("break", 7, 11 * H + MIN, 30 * MIN), Step("end", None, 11 * H + 51 * MIN)]
    assert "outside its windows" in violations(base_problem(), with_steps(p, 1, late))
    missing = steps[:3] + [steps[4]]
    assert "not taken" in violations(base_problem(), with_steps(p, 1, missing))
    # break during the service of job 2 (09:00-09:30)
    p2 = base_problem()
    wide = dataclasses.replace(p2, vehicles=(dataclasses.replace(
        p2.vehicles[0], breaks=(Break(7, ((9 * H, 11 * H),), 30 * MIN),)), p2.vehicles[1]))
    during = steps[:2] + [Step("break", 7, 9 * H + 10 * MIN, 30 * MIN)] + [steps[2], steps[4]]
    assert violations(wide, with_steps(p, 1, during))


def test_locked_prefix_violation():
    prob = base_problem(locked={1: (2, 1)})
    assert "locked prefix" in violations(prob, good_plan())
    prob2 = base_problem(locked={2: (3,)})
    assert check(prob2, good_plan())[0] == []


def test_remote_doctor_overlap():
    # job 2's call runs 09:30-09:50; serve job 3 at 09:15 so its call (09:45-10:05) overlaps it
    p = good_plan()
    steps = list(p.routes[1].steps)
    steps[1] = dataclasses.replace(steps[1], arrival=9 * H + 15 * MIN)
    steps[2] = dataclasses.replace(steps[2], arrival=10 * H + 15 * MIN)
    plan = with_steps(p, 2, steps)
    prob = base_problem(remote_doctors=1)
    assert "remote doctors" in violations(prob, plan)
    assert check(dataclasses.replace(prob, remote_doctors=2), plan)[0] == []
    assert check(dataclasses.replace(prob, remote_doctors=None), plan)[0] == []


def test_unassigned_bookkeeping_and_unknown_ids():
    p = good_plan()
    plan = dataclasses.replace(p, unassigned=(1,))
    assert "both served and listed unassigned" in violations(base_problem(), plan)
    steps = list(p.routes[1].steps)
    steps.insert(2, Step("job", 99, 10 * H))
    assert "unknown job" in violations(base_problem(), with_steps(p, 2, steps))
    dropped = with_steps(p, 2, [p.routes[1].steps[0], p.routes[1].steps[-1]])
    assert "neither served nor unassigned" in violations(base_problem(), dropped)


def as_dict(plan: Solution) -> dict:
    """The plan as a dict with VROOM's meaning: arrival is the arrival, service starts after waiting_time."""
    return {"routes": [{"vehicle": r.vehicle, "steps": [
        {"type": s.type, **({"id": s.id} if s.id is not None else {}), "arrival": s.arrival - s.waiting_time,
         "waiting_time": s.waiting_time} for s in r.steps]} for r in plan.routes], "unassigned": []}


def test_vroom_dict_input_both_arrival_conventions():
    """A dict is read VROOM's way (service at arrival + waiting_time) unless told otherwise."""
    out = as_dict(good_plan())
    assert check(base_problem(remote_doctors=1), out)[0] == []
    # read as if arrival were the service start, job 2 (waiting 10 min) would start before its window
    assert "outside its windows" in " | ".join(check(base_problem(), out, arrival_is_service_start=True)[0])
    for r in out["routes"]:
        for s in r["steps"]:
            s["arrival"] += s["waiting_time"]
    assert check(base_problem(remote_doctors=1), out, arrival_is_service_start=True)[0] == []


def test_reported_arrival_duration_and_load_are_checked():
    """A dict's own figures must be the true ones: no arrival before the vehicle can be there, the
    cumulative travel and the load after each step as recomputed."""
    out = as_dict(good_plan())
    job3 = out["routes"][1]["steps"][1]
    job3["arrival"], job3["waiting_time"] = job3["arrival"] - 10 * MIN, 10 * MIN  # same service start
    assert "reports arrival" in violations(base_problem(), out)
    out = as_dict(good_plan())
    out["routes"][1]["steps"][1]["duration"] = 20 * MIN
    assert "reports duration" in violations(base_problem(), out)
    out["routes"][1]["steps"][1]["duration"] = 30 * MIN
    out["routes"][1]["steps"][1]["load"] = [1]
    assert "reports load" in violations(base_problem(), out)
    out["routes"][1]["steps"][1]["load"] = [0]
    assert check(base_problem(), out)[0] == []


def test_pickups_fill_the_vehicle_along_the_route():
    """VROOM's loads: deliveries are on board from the start, pickups are collected; the peak counts."""
    p = base_problem()
    jobs = (dataclasses.replace(p.jobs[0], delivery=(), pickup=(2,)),
            dataclasses.replace(p.jobs[1], delivery=(1,)), p.jobs[2])
    swapped = dataclasses.replace(p, jobs=jobs)  # vehicle 1 (capacity 2): 1 on board, then +2 -1
    assert "load 3 exceeds capacity 2" in violations(swapped, good_plan())
    only_pickup = dataclasses.replace(p, jobs=(jobs[0], dataclasses.replace(p.jobs[1], delivery=()), p.jobs[2]))
    assert check(only_pickup, good_plan())[0] == []


def test_max_tasks():
    """A route with more jobs than its vehicle's max_tasks is a violation."""
    p = base_problem()
    limited = dataclasses.replace(p, vehicles=(dataclasses.replace(p.vehicles[0], max_tasks=1), p.vehicles[1]))
    assert "more than its max_tasks 1" in violations(limited, good_plan())
    roomy = dataclasses.replace(p, vehicles=(dataclasses.replace(p.vehicles[0], max_tasks=2), p.vehicles[1]))
    assert check(roomy, good_plan())[0] == []
