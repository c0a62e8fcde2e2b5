"""``homevisits solve`` run as a subprocess: a plan on stdout, or one clear line on stderr with a
nonzero exit code (2 = input, as VROOM's) — never a stack trace."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dispatch.feasibility import check
from dispatch.vroom_io import parse_problem

HOMEVISITS = Path(sys.executable).with_name("homevisits")

PROBLEM = {"vehicles": [{"id": 1, "start_index": 0, "end_index": 0, "time_window": [0, 1000]}],
           "jobs": [{"id": 1, "location_index": 1, "service": 500, "time_windows": [[100, 100]]}],
           "matrices": {"car": {"durations": [[0, 100], [100, 0]]}}}


def run(tmp_path, content: bytes | str | dict, *args: str, name: str = "problem.json") -> subprocess.CompletedProcess:
    path = tmp_path / name
    if isinstance(content, dict):
        content = json.dumps(content)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return subprocess.run([str(HOMEVISITS), "solve", str(path), *args], capture_output=True, text=True, timeout=120)


def assert_refused(result: subprocess.CompletedProcess, words: str, code: int = 2) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("homevisits solve: ") and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert json.loads(result.stdout) == {"code": code, "error": result.stderr.strip().removeprefix("homevisits solve: ")}


def test_a_plan_on_stdout_and_nothing_on_stderr(tmp_path):
    """A servable problem: exit 0, VROOM's output that passes the checker, a silent stderr."""
    result = run(tmp_path, PROBLEM, "--time-limit", "0.5")
    assert result.returncode == 0 and result.stderr == ""
    out = json.loads(result.stdout)
    assert out["code"] == 0 and out["summary"]["unassigned"] == 0
    assert check(parse_problem(PROBLEM), out)[0] == []


def test_deeply_nested_json_is_refused(tmp_path):
    """Nesting deeper than the parser's recursion limit once raised RecursionError."""
    assert_refused(run(tmp_path, "[" * 100_000 + "]" * 100_000), "nested too deeply")


def test_latin1_file_is_refused(tmp_path):
    """A Latin-1 file once raised UnicodeDecodeError."""
    body = json.dumps({**PROBLEM, "jobs": [{**PROBLEM["jobs"][0], "description": "Malmö"}]}, ensure_ascii=False)
    assert_refused(run(tmp_path, body.encode("latin-1")), "not UTF-8")


def test_matrix_value_of_2_to_the_63_is_refused(tmp_path):
    """A matrix value beyond VROOM's 32-bit durations once raised OverflowError in the solver."""
    big = {**PROBLEM, "matrices": {"car": {"durations": [[0, 2**63], [2**63, 0]]}}}
    assert_refused(run(tmp_path, big), "at most 4294967295")


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "1e9", "ten"])
def test_time_limit_must_be_a_finite_positive_number(tmp_path, value):
    """--time-limit inf once raised OverflowError; nan was accepted."""
    assert_refused(run(tmp_path, PROBLEM, "--time-limit", value), "--time-limit")


@pytest.mark.parametrize("content, words", [
    ("{not json", "not valid JSON"),
    ('{"vehicles": NaN}', "not valid JSON"),
    (json.dumps({"vehicles": []}), "invalid problem"),
    (json.dumps({**PROBLEM, "shipments": [{}]}), "'shipments'"),
])
def test_bad_problems_are_input_errors(tmp_path, content, words):
    assert_refused(run(tmp_path, content), words)


def test_missing_file_and_unknown_option(tmp_path):
    result = subprocess.run([str(HOMEVISITS), "solve", str(tmp_path / "missing.json")], capture_output=True,
                            text=True, timeout=60)
    assert_refused(result, "cannot read")
    assert_refused(run(tmp_path, PROBLEM, "--frobnicate"), "unrecognized arguments")


def test_unassigned_visits_that_fit_alone_are_blamed_on_the_time_limit(tmp_path):
    """Two visits that each fit the only vehicle but not together: the plan says on stderr that one is
    unassigned and that a longer --time-limit may serve it; a visit no vehicle can serve is told apart."""
    twice = {**PROBLEM, "jobs": [PROBLEM["jobs"][0], {**PROBLEM["jobs"][0], "id": 2}]}
    result = run(tmp_path, twice, "--time-limit", "0.5")
    assert result.returncode == 0 and json.loads(result.stdout)["summary"]["unassigned"] == 1
    assert "1 of 2 jobs unassigned" in result.stderr and "try a longer --time-limit" in result.stderr
    skilled = {**PROBLEM, "jobs": [PROBLEM["jobs"][0], {**PROBLEM["jobs"][0], "id": 2, "skills": [7]}]}
    result = run(tmp_path, skilled, "--time-limit", "0.5")
    assert result.returncode == 0
    assert "1 of 2 jobs unassigned" in result.stderr and "none of them fits any vehicle" in result.stderr


def test_problem_from_stdin(tmp_path):
    """'-' reads the problem from stdin; a non-UTF-8 stdin is refused like a file."""
    result = subprocess.run([str(HOMEVISITS), "solve", "-", "--time-limit", "0.5", "--indent", "2"],
                            input=json.dumps(PROBLEM).encode(), capture_output=True, timeout=120)
    assert result.returncode == 0 and json.loads(result.stdout)["summary"]["unassigned"] == 0
    result = subprocess.run([str(HOMEVISITS), "solve", "-"], input=b'{"vehicles": "\xe9"}', capture_output=True,
                            timeout=60)
    assert result.returncode == 2 and b"not UTF-8" in result.stderr and b"Traceback" not in result.stderr


def test_planned_steps_reach_the_solver(tmp_path):
    """Vehicle steps start the search (exit 0); steps that cannot be kept are an input error."""
    planned = {**PROBLEM, "vehicles": [{**PROBLEM["vehicles"][0], "steps": [{"type": "job", "id": 1}]}]}
    result = run(tmp_path, planned, "--time-limit", "0.5")
    assert result.returncode == 0 and json.loads(result.stdout)["summary"]["unassigned"] == 0
    late = {**planned, "jobs": [{**PROBLEM["jobs"][0], "time_windows": [[950, 960]]}]}
    assert_refused(run(tmp_path, late), "infeasible route for vehicle 1")


def test_a_reader_that_goes_away_is_no_stack_trace(tmp_path):
    """stdout closed before the plan is written (``| head`` gone): one line on stderr, exit 1."""
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(PROBLEM))
    proc = subprocess.Popen([str(HOMEVISITS), "solve", str(path), "--time-limit", "0.5"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "stdout closed" in err
