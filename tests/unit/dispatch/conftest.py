"""Tiny hand-readable routing instances for the dispatch tests.

Locations lie on a line, 10 minutes apart: location i is at minute 10*i from the depot (0).
Times are seconds since midnight; H = one hour.
"""
from __future__ import annotations

import pytest

from dispatch.problem import Break, Job, Problem, Vehicle

H = 3600
MIN = 60


def line_matrix(n: int, step: int = 10 * MIN) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(abs(i - j) * step for j in range(n)) for i in range(n))


def make_problem(jobs, vehicles, n_locations=8, **kw) -> Problem:
    return Problem(tuple(vehicles), tuple(jobs), line_matrix(n_locations), **kw)


DOCTOR, NURSE = 1, 2


@pytest.fixture
def line_problem() -> Problem:
    """Two clinicians 08-16 at the depot, five 30-min visits at 1..5 with windows 08-12."""
    jobs = [Job(i, i, 30 * MIN, ((8 * H, 12 * H),)) for i in range(1, 6)]
    vehicles = [Vehicle(1, 0, 0, (8 * H, 16 * H)), Vehicle(2, 0, 0, (8 * H, 16 * H))]
    return make_problem(jobs, vehicles)


@pytest.fixture
def break_problem() -> Problem:
    """One clinician 08-16 with a 30-min lunch starting 11:00-12:00; four 1-hour visits 08-16."""
    jobs = [Job(i, i, H, ((8 * H, 16 * H),)) for i in range(1, 5)]
    vehicles = [Vehicle(1, 0, 0, (8 * H, 16 * H), breaks=(Break(9, ((11 * H, 12 * H),), 30 * MIN),))]
    return make_problem(jobs, vehicles)


@pytest.fixture
def skills_problem() -> Problem:
    """A doctor (vehicle 1, far side) and a nurse (vehicle 2); doctor visits need the doctor."""
    jobs = [Job(1, 1, 30 * MIN, skills=frozenset({DOCTOR})), Job(2, 2, 30 * MIN, skills=frozenset({NURSE})),
            Job(3, 3, 30 * MIN, skills=frozenset({DOCTOR})), Job(4, 1, 30 * MIN, skills=frozenset({NURSE}))]
    vehicles = [Vehicle(1, 7, 7, (8 * H, 20 * H), skills=frozenset({DOCTOR})),
                Vehicle(2, 0, 0, (8 * H, 20 * H), skills=frozenset({NURSE}))]
    return make_problem(jobs, vehicles)


@pytest.fixture
def nurse_problem() -> Problem:
    """Three nurses each with one visit next door, all windows 09:00-11:00, 20-min video calls."""
    jobs = [Job(i, i, 45 * MIN, ((9 * H, 11 * H),), frozenset({NURSE}), video_call_seconds=20 * MIN)
            for i in range(1, 4)]
    vehicles = [Vehicle(k, k, k, (8 * H, 16 * H), skills=frozenset({NURSE})) for k in range(1, 4)]
    return make_problem(jobs, vehicles, remote_doctors=1)


@pytest.fixture
def mk():
    """The make_problem helper (tests cannot import conftest under importmode=importlib)."""
    return make_problem
