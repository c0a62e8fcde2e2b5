"""VROOM JSON in/out and the ``homevisits solve`` CLI."""
from __future__ import annotations

import json

import pytest

from dispatch import solve_cli
from dispatch.feasibility import check
from dispatch.vroom_io import (InputError, fallback_duration_matrix, parse_problem, problem_to_vroom_input,
                               to_vroom_output)

H = 3600

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


@pytest.mark.parametrize("bad, msg", [
    ({"jobs": []}, "vehicles"),
    ({**SMALL, "jobs": [{"id": 1, "location_index": 9}]}, "outside the matrix"),
    ({**SMALL, "jobs": [{"id": 1, "location_index": 1, "time_windows": [[5, 1]]}]}, "after end"),
    ({**SMALL, "jobs": [{"id": 1, "location_index": 1, "priority": 101}]}, "priority"),
    ({**SMALL, "jobs": [{"id": 1, "location_index": 1}, {"id": 1, "location_index": 2}]}, "duplicate"),
    ({**SMALL, "jobs": [{"id": 1}]}, "location"),
    ({**SMALL, "jobs": [{"id": 1, "location_index": 1, "service": "long"}]}, "integer"),
    ({**SMALL, "shipments": [{"pickup": {}, "delivery": {}}]}, "shipments"),
    ([1, 2], "object"),
])
def test_bad_input(bad, msg):
    with pytest.raises(InputError, match=msg):
        parse_problem(bad)


def test_round_trip():
    p = parse_problem(SMALL)
    q = parse_problem(json.loads(json.dumps(problem_to_vroom_input(p))))
    assert q.jobs == p.jobs and q.vehicles == p.vehicles and q.durations == p.durations


def test_output_format_and_feasible():
    from dispatch.optimizer import solve

    p = parse_problem(SMALL)
    out = to_vroom_output(solve(p, 1.0))
    assert set(out) >= {"routes", "unassigned", "summary"}
    s = out["summary"]
    assert set(s) >= {"cost", "routes", "unassigned", "duration", "service", "waiting_time", "computing_times"}
    assert s["unassigned"] == 0 and s["routes"] == 2
    for r in out["routes"]:
        types = [st["type"] for st in r["steps"]]
        assert types[0] == "start" and types[-1] == "end"
        for st in r["steps"]:
            assert all(isinstance(st[k], int) for k in ("arrival", "service", "waiting_time"))
    assert check(p, out)[0] == []
    assert any(st["type"] == "break" and st["id"] == 10 for r in out["routes"] for st in r["steps"])


def test_cli_solves_small_file(tmp_path, capsys):
    f = tmp_path / "problem.json"
    f.write_text(json.dumps(SMALL))
    assert solve_cli.main(["solve", str(f), "--time-limit", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["unassigned"] == 0
    assert check(parse_problem(SMALL), out)[0] == []
    # cost = sum of route durations, integers
    assert out["summary"]["duration"] == sum(r["duration"] for r in out["routes"])


def test_cli_bad_input_exit_2(tmp_path, capsys):
    f = tmp_path / "bad.json"
    f.write_text("{not json")
    assert solve_cli.main([str(f)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    f.write_text(json.dumps({"vehicles": []}))
    assert solve_cli.main([str(f)]) == 2
    assert "invalid problem" in capsys.readouterr().err
    assert solve_cli.main([str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert solve_cli.main([str(f), "--time-limit", "x"]) == 2
