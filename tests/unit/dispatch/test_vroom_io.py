"""VROOM JSON in and out, proved on VROOM's own documented examples and against VROOM itself (pyvroom)."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from dispatch.feasibility import check
from dispatch.optimizer import solve
from dispatch.problem import Break, Job, Problem, Route, Solution, Step, Vehicle
from dispatch.vroom_io import (InputError, fallback_duration_matrix, for_optimizer, from_optimizer, parse_input,
                               parse_problem, problem_to_vroom_input, to_vroom_output)

H = 3600
EXAMPLES = Path(__file__).parent / "data" / "vroom"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def ours(data: dict, time_limit: float = 0.5) -> dict:
    parsed = parse_input(data)
    plan = from_optimizer(solve(for_optimizer(parsed.problem), time_limit), parsed.problem)
    return to_vroom_output(plan, parsed.problem, parsed.echo)


def pyvroom(data: dict, tmp_path) -> dict:
    import vroom

    path = tmp_path / "vroom-input.json"
    path.write_text(json.dumps(data))
    return vroom.Input.from_json(str(path)).solve(exploration_level=5, nb_threads=1).to_dict()


def without_times(out: dict) -> dict:
    out = copy.deepcopy(out)
    out["summary"].pop("computing_times", None)
    return out


SMALL = {
    "vehicles": [
        {"id": 1, "start_index": 0, "end_index": 0, "time_window": [8 * H, 16 * H], "skills": [1],
         "breaks": [{"id": 10, "time_windows": [[11 * H, 12 * H]], "service": 1800}], "capacity": [4]},
        {"id": 2, "start_index": 0, "end_index": 0, "time_window": [8 * H, 16 * H], "skills": [2], "capacity": [4]},
    ],
    "jobs": [
        {"id": 101, "location_index": 1, "service": 2400, "skills": [1], "time_windows": [[8 * H, 10 * H]],
         "delivery": [1]},
        {"id": 102, "location_index": 2, "service": 2700, "skills": [2], "time_windows": [[10 * H, 12 * H]],
         "delivery": [1], "priority": 50},
        {"id": 103, "location_index": 3, "service": 1800, "skills": [1], "delivery": [1]},
    ],
    "matrices": {"car": {"durations": [[0, 600, 900, 1200], [600, 0, 700, 800], [900, 700, 0, 500],
                                       [1200, 800, 500, 0]]}},
}


def assert_vroom_invariants(problem: Problem, out: dict) -> None:
    """What VROOM's docs promise of every plan: service starts at arrival + waiting_time inside a
    window, durations are cumulative travel, loads follow delivery/pickup, totals add up."""
    jobs = problem.job_by_id()
    assert check(problem, out) == ([], out["summary"]["duration"])
    for r in out["routes"]:
        steps = r["steps"]
        assert [s["type"] for s in steps][0] == "start" and steps[-1]["type"] == "end"
        assert all(s["violations"] == [] for s in steps)
        assert r["setup"] == sum(s["setup"] for s in steps)
        assert [s["duration"] for s in steps] == sorted(s["duration"] for s in steps)
        assert r["duration"] == steps[-1]["duration"]
        assert r["service"] == sum(s["service"] for s in steps)  # breaks included
        assert r["waiting_time"] == sum(s["waiting_time"] for s in steps)
        for prev, s in zip(steps, steps[1:]):
            # time passes only by serving, waiting and driving
            assert s["arrival"] - (prev["arrival"] + prev["waiting_time"] + prev["setup"] + prev["service"]) == \
                s["duration"] - prev["duration"]
            if s["type"] == "job":
                windows = jobs[s["id"]].time_windows
                begin = s["arrival"] + s["waiting_time"]
                assert not windows or any(a <= begin <= b for a, b in windows)
    assert out["summary"]["duration"] == sum(r["duration"] for r in out["routes"])
    assert out["summary"]["service"] == sum(r["service"] for r in out["routes"])
    assert out["summary"]["setup"] == sum(r["setup"] for r in out["routes"])
    assert out["summary"]["unassigned"] == len(out["unassigned"])


def test_example_2_matches_vroom_documented_solution_and_vroom_itself(tmp_path):
    """VROOM's custom-matrix example: our output is its documented solution, field for field."""
    data = example("example_2.json")
    got = without_times(ours(data))
    assert got == without_times(example("example_2_sol.json"))
    assert got == without_times(pyvroom(data, tmp_path))


def test_waiting_break_and_loads_match_vroom(tmp_path):
    """A route that must wait for a window and take a break: arrival is the arrival, service starts
    after waiting_time, the break counts in service, loads drop with each delivery — as VROOM says."""
    data = {
        "vehicles": [{"id": 7, "start_index": 0, "end_index": 0, "time_window": [0, 20000], "capacity": [5],
                      "breaks": [{"id": 1, "time_windows": [[4000, 4500]], "service": 600}]}],
        "jobs": [{"id": 1, "location_index": 1, "service": 300, "delivery": [2], "time_windows": [[3000, 3500]]},
                 {"id": 2, "location_index": 2, "service": 300, "delivery": [1], "time_windows": [[7000, 8000]]}],
        "matrices": {"car": {"durations": [[0, 1000, 2000], [1000, 0, 1000], [2000, 1000, 0]]}},
    }
    got, ref = without_times(ours(data)), without_times(pyvroom(data, tmp_path))
    assert_vroom_invariants(parse_problem(data), got)
    assert got["summary"] == ref["summary"]
    for mine, theirs in zip(got["routes"][0]["steps"], ref["routes"][0]["steps"]):
        assert mine == theirs
    _, job1, brk, job2, end = got["routes"][0]["steps"]
    assert (job1["arrival"], job1["waiting_time"], job1["load"]) == (3500, 0, [1])
    # 200 s of the drive to job 2 fit before the break window opens; the rest follows the break
    assert (brk["arrival"], brk["duration"], brk["service"]) == (4000, 1200, 600)
    assert (job2["arrival"], job2["waiting_time"], job2["load"]) == (5400, 1600, [0])


def random_day(seed: int, n: int = 30, vehicles: int = 4) -> dict:
    """n deliveries with one- or two-hour windows on a grid, vehicles with capacity and a lunch break."""
    import random

    rng = random.Random(seed)
    pts = [(rng.randint(0, 100), rng.randint(0, 100)) for _ in range(n + 1)]
    D = [[int(60 * math.dist(a, b)) for b in pts] for a in pts]
    jobs = [{"id": i, "location_index": i, "service": rng.choice([300, 900, 1800]), "delivery": [rng.randint(1, 3)],
             "time_windows": [[(a := rng.randint(0, 6) * H), a + rng.choice([H, 2 * H])]]} for i in range(1, n + 1)]
    return {"vehicles": [{"id": k, "start_index": 0, "end_index": 0, "time_window": [0, 12 * H], "capacity": [25],
                          "breaks": [{"id": 1, "time_windows": [[4 * H, 5 * H]], "service": 1800}]}
                         for k in range(1, vehicles + 1)],
            "jobs": jobs, "matrices": {"car": {"durations": D}}}


@pytest.mark.parametrize("seed, setup, open_routes, per_hour", [(1, 0, False, 3600), (2, 120, False, 1000),
                                                              (4, 0, True, 7200)])
def test_our_times_are_the_times_vroom_gives_our_routes(seed, setup, open_routes, per_hour, tmp_path):
    """VROOM's plan mode (its own ETA choice for given routes) on our routes reproduces every step's
    place, arrival, waiting_time, duration, setup, service and load, with no violation (open routes:
    vehicles without a start or without an end), and each route's cost (one per_hour for all)."""
    import vroom

    data = random_day(seed)
    for j in data["jobs"]:
        j["setup"] = setup
    for v in data["vehicles"]:
        v["costs"] = {"per_hour": per_hour}
    if open_routes:
        del data["vehicles"][0]["start_index"], data["vehicles"][1]["end_index"]
    got = ours(data, 1.0)
    assert_vroom_invariants(parse_problem(data), got)
    planned = copy.deepcopy(data)
    for v in planned["vehicles"]:
        route = next((r for r in got["routes"] if r["vehicle"] == v["id"]), None)
        v["steps"] = ([{"type": s["type"], **({"id": s["id"]} if "id" in s else {})} for s in route["steps"]]
                      if route else [{"type": "start"}, {"type": "end"}])
    path = tmp_path / "planned.json"
    path.write_text(json.dumps(planned))
    ref = vroom.Input.from_json(str(path)).check(nb_threads=1).to_dict()
    fields = ("type", "id", "location_index", "arrival", "waiting_time", "duration", "setup", "service", "load")
    compared = 0
    for route in got["routes"]:
        theirs = next(r for r in ref["routes"] if r["vehicle"] == route["vehicle"])["steps"]
        assert len(theirs) == len(route["steps"])
        for mine, their in zip(route["steps"], theirs):
            assert {k: mine.get(k) for k in fields} == {k: their.get(k) for k in fields}
            assert their["violations"] == []
            compared += 1
        assert route["cost"] == next(r for r in ref["routes"] if r["vehicle"] == route["vehicle"])["cost"]
    assert compared > 30
    for key in ("cost", "duration", "waiting_time", "setup", "service"):
        assert got["summary"][key] == ref["summary"][key]


def test_timestamps_beyond_2_to_the_31_like_vroom(tmp_path):
    """VROOM takes times up to 2^32-1 (timestamps after 2038); the optimizer counts from the earliest
    window start, and the plan comes back on the input's axis, as VROOM's. A span the optimizer
    cannot hold is refused."""
    later = 3_000_000_000
    data = random_day(6, n=10, vehicles=2)
    for v in data["vehicles"]:
        v["time_window"] = [later + x for x in v["time_window"]]
        v["breaks"][0]["time_windows"] = [[later + a, later + b] for a, b in v["breaks"][0]["time_windows"]]
    for j in data["jobs"]:
        j["time_windows"] = [[later + a, later + b] for a, b in j["time_windows"]]
    got, ref = without_times(ours(data)), without_times(pyvroom(data, tmp_path))
    assert_vroom_invariants(parse_problem(data), got)
    assert got["summary"]["unassigned"] == ref["summary"]["unassigned"]
    assert all(s["arrival"] >= later for r in got["routes"] for s in r["steps"])
    for v in data["vehicles"]:  # VROOM's default window: any time
        del v["time_window"]
    got = without_times(ours(data))
    assert_vroom_invariants(parse_problem(data), got)
    assert got["summary"]["unassigned"] == without_times(pyvroom(data, tmp_path))["summary"]["unassigned"]
    data["vehicles"][0]["time_window"] = [0, later]
    with pytest.raises(InputError, match="horizon"):
        for_optimizer(parse_problem(data))


def test_distances_are_reported_as_vroom_reports_them():
    """With a distances matrix, each step carries the distance driven so far; a break taken during a
    drive gets its share of the leg pro rata (VROOM's helpers.cpp), routes and summary the sums.
    (pyvroom's serialisers drop distances, so this is checked against VROOM's rule, not its output.)"""
    data = {
        "vehicles": [{"id": 7, "start_index": 0, "end_index": 0, "time_window": [0, 20000],
                      "breaks": [{"id": 1, "time_windows": [[4000, 4500]], "service": 600}]}],
        "jobs": [{"id": 1, "location_index": 1, "service": 300, "time_windows": [[3000, 3500]]},
                 {"id": 2, "location_index": 2, "service": 300, "time_windows": [[7000, 8000]]}],
        "matrices": {"car": {"durations": [[0, 1000, 2000], [1000, 0, 1000], [2000, 1000, 0]],
                             "distances": [[0, 9000, 30000], [9000, 0, 11000], [30000, 11000, 0]]}},
    }
    got = ours(data)
    steps = got["routes"][0]["steps"]
    assert [(s["type"], s["duration"], s["distance"]) for s in steps] == [
        ("start", 0, 0), ("job", 1000, 9000), ("break", 1200, 9000 + 2200), ("job", 2000, 20000),
        ("end", 4000, 50000)]
    assert got["routes"][0]["distance"] == got["summary"]["distance"] == 50000
    assert "distance" not in ours(example("example_2.json"))["summary"]  # none without distances
    bad = copy.deepcopy(data)
    bad["matrices"]["car"]["distances"] = [[0, 1], [1, 0]]
    with pytest.raises(InputError, match="distances must be the size"):
        parse_input(bad)


def test_example_3_without_its_planned_routes_keeps_every_promise(tmp_path):
    """VROOM's example 3 (coordinates, deliveries, windows) less its 'steps': a plan that keeps VROOM's
    invariants and serves as many jobs as VROOM on the same matrix."""
    data = example("example_3.json")
    for v in data["vehicles"]:
        del v["steps"]
    parsed = parse_input(data)
    got = ours(data, 1.0)
    assert_vroom_invariants(parsed.problem, got)
    assert all("location" in s for r in got["routes"] for s in r["steps"] if s["type"] != "break")
    assert all("location_index" not in s for r in got["routes"] for s in r["steps"])  # not given in input
    on_matrix = problem_to_vroom_input(parsed.problem)
    assert got["summary"]["unassigned"] <= pyvroom(on_matrix, tmp_path)["summary"]["unassigned"]
    assert {u["type"] for u in got["unassigned"]} <= {"job"}
    assert all("location" in u for u in got["unassigned"])


def test_example_1_and_3_refused_for_what_we_do_not_support():
    """Shipments and plan-mode timing are refused by name, never ignored."""
    with pytest.raises(InputError, match="'shipments'"):
        parse_input(example("example_1.json"))
    raw = example("example_3.json")
    del raw["vehicles"][0]  # planned over capacity: see below
    with pytest.raises(InputError, match="'service_after'"):
        parse_input(raw)


def test_example_1_without_what_we_refuse_keeps_every_promise():
    """VROOM's example 1 (coordinates, skills, a break, Unix timestamps): without its shipment it mixes
    a pickup with deliveries in one dimension (refused); without that job too, our plan keeps VROOM's
    invariants, takes vehicle 2's break and serves everything."""
    data = example("example_1.json")
    del data["shipments"]
    with pytest.raises(InputError, match="'pickup' and 'delivery'"):
        for_optimizer(parse_problem(data))
    data["jobs"] = [j for j in data["jobs"] if "pickup" not in j]
    got = ours(data)
    assert_vroom_invariants(parse_problem(data), got)
    assert got["summary"]["unassigned"] == 0 and got["summary"]["delivery"] == [3]
    assert any(s["type"] == "break" for r in got["routes"] if r["vehicle"] == 2 for s in r["steps"])
    assert all(s["arrival"] >= 1600416000 for r in got["routes"] for s in r["steps"])


def with_steps(data: dict, routes: dict[int, list[dict]]) -> dict:
    data = copy.deepcopy(data)
    for v in data["vehicles"]:
        if v["id"] in routes:
            v["steps"] = routes[v["id"]]
    return data


def test_example_3_planned_routes_over_capacity_are_refused_like_vroom(tmp_path):
    """VROOM's example 3 plans vehicle 1 over its capacity (to show plan-mode violations): when
    solving, VROOM refuses such steps, and so do we."""
    raw = example("example_3.json")
    steps = {v["id"]: [{k: x for k, x in st.items() if k in ("type", "id")} for st in v.pop("steps")]
             for v in raw["vehicles"]}
    on_matrix = with_steps(problem_to_vroom_input(parse_problem(raw)), steps)
    with pytest.raises(InputError, match="infeasible route for vehicle 1: the load exceeds the capacity"):
        parse_input(on_matrix)
    with pytest.raises(Exception, match="Route over capacity for vehicle 1"):
        pyvroom(on_matrix, tmp_path)


def test_planned_routes_start_the_search(tmp_path):
    """Valid vehicle steps (here: a plan of ours) are accepted by VROOM and by us, and the search
    starts from them; an order that misses a window is refused by both."""
    data = random_day(5, n=16, vehicles=3)
    for v in data["vehicles"]:
        del v["breaks"]  # VROOM places breaks itself and may refuse routes that fit them otherwise
    first = ours(data, 0.5)
    routes = {r["vehicle"]: [{"type": "job", "id": s["id"]} for s in r["steps"] if s["type"] == "job"]
              for r in first["routes"]}
    planned = with_steps(data, routes)
    parsed = parse_input(planned)
    assert parsed.initial_routes == {v: [s["id"] for s in seq] for v, seq in routes.items()}
    pyvroom(planned, tmp_path)  # VROOM accepts them too
    again = to_vroom_output(solve(for_optimizer(parsed.problem), 0.5, initial_routes=parsed.initial_routes),
                            parsed.problem, parsed.echo)
    assert_vroom_invariants(parsed.problem, again)
    assert again["summary"]["unassigned"] <= first["summary"]["unassigned"]
    vid, seq = max(routes.items(), key=lambda kv: len(kv[1]))
    late_first = with_steps(data, {vid: sorted(seq, key=lambda s: -next(
        j["time_windows"][0][0] for j in data["jobs"] if j["id"] == s["id"]))})
    assert len(seq) > 1
    with pytest.raises(InputError, match=f"infeasible route for vehicle {vid}"):
        parse_input(late_first)
    with pytest.raises(Exception, match="Infeasible route"):
        pyvroom(late_first, tmp_path)
    with pytest.raises(InputError, match="duplicate job id"):
        parse_input(with_steps(data, {1: [{"type": "job", "id": 1}], 2: [{"type": "job", "id": 1}]}))
    with pytest.raises(InputError, match="invalid job id 999"):
        parse_input(with_steps(data, {1: [{"type": "job", "id": 999}]}))


@pytest.mark.parametrize("break_service, valid", [(900, True), (1000, False)])
def test_planned_routes_need_room_for_every_break(break_service, valid):
    """A planned route is valid when every break fits somewhere in it (here only between the two jobs)."""
    data = {"vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "time_window": [0, 5000],
                          "breaks": [{"id": 1, "time_windows": [[200, 300]], "service": break_service}],
                          "steps": [{"type": "job", "id": 1}, {"type": "job", "id": 2}]}],
            "jobs": [{"id": 1, "location_index": 0, "service": 100, "time_windows": [[0, 100]]},
                     {"id": 2, "location_index": 0, "service": 100, "time_windows": [[1000, 1100]]}],
            "matrices": {"car": {"durations": [[0]]}}}
    if valid:
        assert parse_input(data).initial_routes == {1: [1, 2]}
    else:
        with pytest.raises(InputError, match="infeasible route for vehicle 1: its time windows"):
            parse_input(data)


def test_pickups_count_against_capacity_like_vroom(tmp_path):
    """Jobs that only pick up: the load grows along the route and never passes the capacity (the
    pickup was once ignored and plans went over capacity)."""
    n = 8
    D = [[abs(i - j) * 300 for j in range(n + 1)] for i in range(n + 1)]
    data = {"vehicles": [{"id": v, "start_index": 0, "end_index": 0, "capacity": [10, 3]} for v in (1, 2, 3)],
            "jobs": [{"id": i, "location_index": i, "service": 60, "pickup": [4, 1]} for i in range(1, n + 1)],
            "matrices": {"car": {"durations": D}}}
    got, ref = ours(data), pyvroom(data, tmp_path)
    assert_vroom_invariants(parse_problem(data), got)
    assert got["summary"]["unassigned"] == ref["summary"]["unassigned"] == 2  # 3 vehicles x 2 pickups of 4
    for r in got["routes"]:
        loads = [s["load"] for s in r["steps"]]
        assert loads[0] == [0, 0] and loads == sorted(loads) and loads[-1][0] <= 10
        assert r["pickup"] == loads[-1] and r["delivery"] == [0, 0]
    assert got["summary"]["pickup"] == [24, 6]


def test_max_tasks_and_setup_like_vroom(tmp_path):
    """max_tasks bounds each route's jobs; a setup is spent before the service, inside the window,
    and reported apart from it — the same plan figures as VROOM's."""
    data = random_day(3, n=12, vehicles=3)
    for v in data["vehicles"]:
        v["max_tasks"] = 3
    for j in data["jobs"]:
        j["setup"] = 120
    got, ref = without_times(ours(data, 1.0)), without_times(pyvroom(data, tmp_path))
    problem = parse_problem(data)
    assert_vroom_invariants(problem, got)
    assert all(v.max_tasks == 3 for v in problem.vehicles)
    assert all(sum(s["type"] == "job" for s in r["steps"]) <= 3 for r in got["routes"])
    assert got["summary"]["unassigned"] == ref["summary"]["unassigned"] >= 3
    assert all(s["setup"] == 120 for r in got["routes"] for s in r["steps"] if s["type"] == "job")
    assert got["summary"]["setup"] == 120 * (12 - got["summary"]["unassigned"])
    served = [j for j in data["jobs"] if j["id"] not in {u["id"] for u in got["unassigned"]}]
    assert got["summary"]["service"] == sum(j["service"] for j in served) + 1800 * len(got["routes"])
    too_many = copy.deepcopy(data)
    too_many["vehicles"][0]["max_tasks"] = 12
    assert parse_problem(too_many).vehicles[0].max_tasks is None  # cannot bind: nothing to hand over


def test_pickups_and_deliveries_in_one_dimension_refused():
    """VROOM's mixed loads (deliveries on board from the start, pickups collected) are not modelled by
    the optimizer: refused with the field named."""
    data = copy.deepcopy(SMALL)
    data["jobs"][0]["pickup"] = [1]
    with pytest.raises(InputError, match="'pickup' and 'delivery'"):
        for_optimizer(parse_problem(data))


def test_service_start_is_arrival_plus_waiting_for_a_solution_that_waits():
    """A Solution's step time is its service start; in the output the arrival is earlier by the wait
    (VROOM's times by default: leave as late as the first window allows; or the plan's own times)."""
    p = Problem((Vehicle(1, 0, 0, (0, 10 * H)),), (Job(5, 1, 600, ((2 * H, 3 * H),)),), ((0, 900), (900, 0)))
    sol = Solution((Route(1, (Step("start", None, 0, location=0), Step("job", 5, 2 * H, 600, location=1),
                              Step("end", None, 2 * H + 1500, location=0))),), (), 1800, 1800, 600, 0)
    out = to_vroom_output(sol, p)
    start, job, end = out["routes"][0]["steps"]
    assert start["arrival"] == 2 * H - 900  # VROOM leaves as late as the window allows
    assert (job["arrival"], job["waiting_time"], job["duration"]) == (2 * H, 0, 900)
    p_break = Problem((Vehicle(1, 0, 0, (0, 10 * H), breaks=(Break(3, ((0, 100),), 60),)),), p.jobs, p.durations)
    steps = (Step("start", None, 0, location=0), Step("break", 3, 0, 60),
             Step("job", 5, 2 * H, 600, location=1), Step("end", None, 2 * H + 1500, location=0))
    out = to_vroom_output(Solution((Route(1, steps),), (), 0, 0, 0, 0), p_break, vroom_times=False)
    start, brk, job, end = out["routes"][0]["steps"]
    assert (brk["arrival"], brk["service"], "location_index" in brk) == (0, 60, False)
    assert (job["arrival"], job["waiting_time"]) == (960, 2 * H - 960)
    assert (end["arrival"], end["duration"]) == (2 * H + 1500, 1800)
    assert check(p_break, out)[0] == []


def test_parse_with_matrix():
    p = parse_problem(SMALL)
    assert [v.id for v in p.vehicles] == [1, 2]
    v1 = p.vehicles[0]
    assert v1.start == 0 and v1.time_window == (8 * H, 16 * H) and v1.skills == {1} and v1.capacity == (4,)
    assert v1.breaks[0].time_windows == ((11 * H, 12 * H),) and v1.breaks[0].service == 1800
    j = p.job_by_id()[102]
    assert j.location == 2 and j.priority == 50 and j.time_windows == ((10 * H, 12 * H),) and j.delivery == (1,)
    assert p.durations[1][3] == 800


def test_parse_with_coordinates_uses_travel_model():
    data = {"vehicles": [{"id": 1, "start": [18.0686, 59.3293], "end": [18.0686, 59.3293]}],
            "jobs": [{"id": 1, "location": [18.10, 59.35], "service": 600}]}
    p = parse_problem(data)
    assert len(p.durations) == 2 and p.vehicles[0].start == p.vehicles[0].end == 0
    # ~2.7 km apart: a few minutes of driving, symmetric, zero diagonal
    assert 120 < p.durations[0][1] < 1200
    assert p.durations[0][1] == p.durations[1][0] and p.durations[0][0] == 0


def test_fallback_matrix_model():
    # one degree of latitude ~111 km; x1.3 detour at 40 km/h -> ~13000 s
    m = fallback_duration_matrix([(59.0, 18.0), (60.0, 18.0)])
    assert 12800 < m[0][1] < 13200


def with_job(**fields) -> dict:
    data = copy.deepcopy(SMALL)
    data["jobs"].append({"id": 9, "location_index": 1, **fields})
    return data


def with_vehicle(**fields) -> dict:
    data = copy.deepcopy(SMALL)
    data["vehicles"][0].update(fields)
    return data


# Inputs VROOM itself refuses (checked below against pyvroom), with the words of our message.
VROOM_REFUSES = [
    (with_job(delivery=[1, 1]), "dimension"),  # amount sizes differ
    (with_vehicle(capacity=[4, 4]), "dimension"),
    (with_job(delivery=[-1]), "non-negative"),
    (with_job(pickup=[-2]), "non-negative"),
    (with_job(service=-5), "non-negative"),
    (with_job(location_index=9), "exceeds the durations matrix"),
    (with_job(time_windows=[[5, 1]]), "after end"),
    (with_job(id=101), "duplicate job id: 101"),
    (with_job(service=1.5), "integer"),
    (with_job(priority=101), "priority"),
    (with_vehicle(breaks=[{"id": 1, "service": 5}, {"id": 1, "service": 6}]), "duplicate break id"),
    ({"vehicles": [{"id": 1, "start_index": 0}], "jobs": [{"id": 1, "location_index": 0, "delivery": [1]}],
      "matrices": {"car": {"durations": [[0]]}}}, "dimension"),  # a delivery without capacity
    ({**SMALL, "matrices": {"car": {"durations": [[0, 2**63], [1, 0]]}}}, "at most 4294967295"),
    ({**SMALL, "matrices": {"car": {"durations": [[0, 1], [1]]}}}, "square"),
    ({"vehicles": [], "jobs": []}, "vehicles"),
]


@pytest.mark.parametrize("bad, msg", VROOM_REFUSES)
def test_inputs_vroom_refuses_are_refused(bad, msg, tmp_path):
    """Each input VROOM rejects is rejected here too, with a message saying why."""
    import vroom

    with pytest.raises(InputError, match=msg):
        parse_problem(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(Exception):
        vroom.Input.from_json(str(path)).solve(exploration_level=1, nb_threads=1)


@pytest.mark.parametrize("bad, field", [
    ({**SMALL, "shipments": [{"pickup": {"id": 1, "location_index": 1}, "delivery": {"id": 1, "location_index": 2}}]},
     "shipments"),
    ({**SMALL, "matrices": {"car": {**SMALL["matrices"]["car"], "costs": [[0, 1, 1, 1]] * 4}}}, "costs"),
    (with_vehicle(costs={"fixed": 100}), "costs.fixed"),
    (with_vehicle(costs={"per_hour": 7200}), "costs.per_hour differ"),
    (with_vehicle(costs={"per_km": 1}), "costs.per_km"),
    (with_vehicle(max_travel_time=3600), "max_travel_time"),
    (with_vehicle(max_distance=3600), "max_distance"),
    (with_vehicle(speed_factor=1.5), "speed_factor"),
    (with_vehicle(profile="bike"), "profile"),
    (with_vehicle(steps=[{"type": "job", "id": 101, "service_at": 5}]), "service_at"),
    (with_vehicle(steps=[{"type": "pickup", "id": 101}]), "shipments"),
    (with_vehicle(breaks=[{"id": 1, "service": 5, "max_load": [1]}]), "max_load"),
    (with_job(setup=60), "setup"),  # job 9 shares location 1 with job 101: VROOM would skip the setup
    (with_job(service_per_type={"a": 5}), "service_per_type"),
    (with_job(colour="red"), "colour"),
    ({**SMALL, "options": {}}, "options"),
])
def test_unsupported_fields_are_refused_by_name(bad, field):
    """A field the optimizer cannot honour is refused with its name, never silently ignored."""
    with pytest.raises(InputError, match=field):
        parse_problem(bad)


def test_one_per_hour_for_all_scales_the_cost_and_a_costs_matrix_with_it_is_refused():
    """costs.per_hour, one for all vehicles, prices the travel time as VROOM does; with a costs matrix
    VROOM calls it inconsistent, and so do we."""
    data = copy.deepcopy(SMALL)
    for v in data["vehicles"]:
        v["costs"] = {"per_hour": 7200}
    out = ours(data)
    assert out["summary"]["cost"] == 2 * out["summary"]["duration"]
    data["matrices"]["car"]["costs"] = data["matrices"]["car"]["durations"]
    with pytest.raises(InputError, match="inconsistent"):
        parse_input(data)


def test_supported_defaults_are_accepted():
    """VROOM's defaults written out, descriptions, costs equal to durations and a max_tasks that cannot
    bind change nothing."""
    data = with_vehicle(costs={"fixed": 0, "per_hour": 3600}, speed_factor=1, max_tasks=10, profile="car",
                        description="Anna", type="doctor")
    data["matrices"]["car"]["costs"] = data["matrices"]["car"]["durations"]
    data["jobs"][0]["description"] = "Storgatan 1"
    data["jobs"][0]["setup"] = 0
    p = parse_input(data)
    plain = parse_problem(SMALL)
    assert (p.problem.jobs, p.problem.vehicles, p.problem.durations) == (plain.jobs, plain.vehicles, plain.durations)
    assert p.echo.vehicle_description == {1: "Anna"} and p.echo.job_description == {101: "Storgatan 1"}


def test_deprecated_amount_is_a_delivery():
    data = copy.deepcopy(SMALL)
    data["jobs"][0]["amount"] = data["jobs"][0].pop("delivery")
    assert parse_problem(data).jobs[0].delivery == (1,)


def test_round_trip():
    p = parse_problem(SMALL)
    q = parse_problem(json.loads(json.dumps(problem_to_vroom_input(p))))
    assert q.jobs == p.jobs and q.vehicles == p.vehicles and q.durations == p.durations


def test_output_format_and_feasible():
    p = parse_problem(SMALL)
    out = ours(SMALL, 1.0)
    s = out["summary"]
    assert set(s) == {"cost", "routes", "unassigned", "delivery", "amount", "pickup", "setup", "service",
                      "duration", "waiting_time", "priority", "violations", "computing_times"}
    assert s["unassigned"] == 0 and s["routes"] == 2 and s["delivery"] == [3] and s["priority"] == 50
    assert_vroom_invariants(p, out)
    assert any(st["type"] == "break" and st["id"] == 10 for r in out["routes"] for st in r["steps"])


def test_call_shifts_extension_round_trips_and_bad_ones_are_refused():
    """``call_shifts`` (doctors on shift for video calls) is read and written back; a shift ending
    before it starts is an input error, never ignored."""
    from dispatch import vroom_io
    doc = {"vehicles": [{"id": 1, "start": [18.0, 59.3]}],
           "jobs": [{"id": 1, "location": [18.01, 59.31], "service": 600, "video_call_seconds": 900}],
           "call_shifts": [[3600, 7200]]}
    p = vroom_io.parse_problem(doc)
    assert p.call_shifts == ((3600, 7200),)
    assert vroom_io.problem_to_vroom_input(p)["call_shifts"] == [[3600, 7200]]
    with pytest.raises(vroom_io.InputError):
        vroom_io.parse_problem({**doc, "call_shifts": [[7200, 3600]]})
