"""The capacity check: it never accepts a day that cannot be served, and its plans re-check clean."""
from __future__ import annotations

import random
import statistics
import time
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from homevisits.capacity import Day, Shift, Visit, check, day_from_ledger, holds_capacity, rebuild, violations

H, MIN = 3600, 60
T0 = 1_764_576_000  # 2025-12-01T08:00:00Z: any fixed epoch works, the check only needs consistency
CENTER = (59.3326, 18.0649)


def shift(cid, skill="doctor", start=0, end=12 * H, loc=CENTER, brk=True):
    return Shift(cid, skill, T0 + start, T0 + end, loc, loc,
                 break_earliest=T0 + 3 * H, break_latest=T0 + 5 * H + 30 * MIN, break_s=30 * MIN if brk else 0)


def visit(vid, window, skill="doctor", loc=CENTER, service=40 * MIN, call=0):
    w0 = T0 + window * 2 * H
    return Visit(vid, skill, loc, w0, w0 + 2 * H, service, call)


def near(i, spread=0.05, seed=0):
    rnd = random.Random(seed * 1000 + i)
    return (CENTER[0] + rnd.uniform(-spread, spread), CENTER[1] + rnd.uniform(-2 * spread, 2 * spread))


def test_a_single_visit_fits_an_open_shift():
    """One doctor, one doctor visit: a plan that serves it inside its window."""
    day = Day((shift("d1"),), (), 1)
    plan = check(day, visit("v1", 2))
    assert plan is not None and plan.route_of("v1") == "d1"
    assert violations(Day(day.shifts, (visit("v1", 2),), 1), plan) == []


def test_it_refuses_more_visits_than_one_window_can_hold():
    """A 2-hour shift cannot serve four 40-minute visits plus travel: the fourth is refused."""
    day = Day((shift("d1", end=2 * H, brk=False),), (), 1)
    accepted = []
    for i in range(4):
        v = visit(f"v{i}", 0, loc=near(i))
        plan = check(Day(day.shifts, tuple(accepted), 1), v)
        if plan is not None:
            accepted.append(v)
            assert violations(Day(day.shifts, tuple(accepted), 1), plan) == []
    assert 1 <= len(accepted) < 4
    assert check(Day(day.shifts, tuple(accepted), 1), visit("late", 0, loc=near(9))) is None


def test_a_visit_needs_a_clinician_with_its_skill():
    """A nurse visit on a day with only doctors is refused."""
    assert check(Day((shift("d1"),), (), 1), visit("n", 1, skill="nurse", service=50 * MIN, call=15 * MIN)) is None


def test_nurse_visits_need_a_free_remote_doctor():
    """No remote doctor: nurse visits cannot be served; one remote doctor: calls never overlap."""
    nurses = (shift("n1", "nurse"), shift("n2", "nurse"), shift("n3", "nurse"))
    nv = [visit(f"n{i}", 0, "nurse", near(i), 50 * MIN, 15 * MIN) for i in range(3)]
    assert check(Day(nurses, (), 0), nv[0]) is None
    plan = check(Day(nurses, tuple(nv[:2]), 1), nv[2])
    assert plan is not None
    assert violations(Day(nurses, tuple(nv), 1), plan) == []
    calls = sorted(s.call for r in plan.routes for s in r.stops)
    assert all(a[1] <= b[0] for a, b in zip(calls, calls[1:]))


def test_every_clinician_gets_lunch_inside_the_break_window():
    """A doctor busy all day still takes 30 minutes between 11:00 and 14:00 (here T0+3h..T0+6h)."""
    sh = (shift("d1"),)
    vs = tuple(visit(f"v{w}", w, loc=near(w)) for w in range(6))
    plan = check(Day(sh, vs, 1))
    assert plan is not None
    r = plan.routes[0]
    assert T0 + 3 * H <= r.break_start <= T0 + 5 * H + 30 * MIN
    assert all(not (s.start < r.break_start + 30 * MIN and r.break_start < s.end) for s in r.stops)
    assert violations(Day(sh, vs, 1), plan) == []


def test_a_shift_outside_the_break_window_owes_no_break():
    """An afternoon shift (after the break window) serves visits without a break."""
    sh = (shift("d1", start=7 * H, end=12 * H),)
    plan = check(Day(sh, (), 1), visit("v", 4))
    assert plan is not None and plan.routes[0].break_start is None


def test_the_checker_catches_a_broken_plan():
    """The independent re-check flags a plan whose clinician cannot reach the next visit in time."""
    sh = (shift("d1", brk=False),)
    vs = (visit("a", 0, loc=CENTER), visit("b", 0, loc=(59.9, 18.9)))
    plan = check(Day(sh, vs[:1], 1))
    assert plan is not None
    from homevisits.capacity import Plan, Route, Stop
    r = plan.routes[0]
    forged = Plan((Route(r.clinician_id, r.stops + (Stop("b", r.stops[0].end, r.stops[0].end + 60,
                                                         r.stops[0].end + 60 + 40 * MIN),), None,
                         r.back_at, r.travel_s),))
    assert any("cannot reach" in e for e in violations(Day(sh, vs, 1), forged))


def _random_day(seed, n_visits=60, doctors=5, nurses=3):
    rnd = random.Random(seed)
    shifts = [shift(f"d{i}", "doctor", loc=near(100 + i, 0.08, seed)) for i in range(doctors)]
    shifts += [shift(f"n{i}", "nurse", loc=near(200 + i, 0.08, seed)) for i in range(nurses)]
    visits = []
    for i in range(n_visits):
        skill = "doctor" if rnd.random() < 0.6 else "nurse"
        visits.append(visit(f"v{i}", rnd.randrange(6), skill, near(i, 0.1, seed),
                            40 * MIN if skill == "doctor" else 50 * MIN, 0 if skill == "doctor" else 15 * MIN))
    return tuple(shifts), visits


@pytest.mark.parametrize("seed", range(6))
def test_incremental_booking_only_accepts_what_a_plan_serves(seed):
    """Booking 60 random visits one by one: every accepted set has a plan that re-checks clean."""
    shifts, candidates = _random_day(seed)
    accepted: list[Visit] = []
    hint = None
    refused = 0
    for v in candidates:
        plan = check(Day(shifts, tuple(accepted), 2), v, hint)
        if plan is None:
            refused += 1
            continue
        accepted.append(v)
        hint = plan.sequences()
        assert violations(Day(shifts, tuple(accepted), 2), plan) == []
    assert len(accepted) >= 30  # 8 clinicians x 12 h hold a good day's work
    full = rebuild(Day(shifts, tuple(accepted), 2))
    if full is not None:
        assert violations(Day(shifts, tuple(accepted), 2), full) == []


def test_inserting_into_a_sixty_visit_day_takes_a_few_milliseconds():
    """The common path (insert one visit into stored routes) stays in the low milliseconds."""
    shifts, candidates = _random_day(42, n_visits=90, doctors=7, nurses=5)
    accepted, hint = [], None
    for v in candidates:
        plan = check(Day(shifts, tuple(accepted), 2), v, hint)
        if plan is not None:
            accepted.append(v)
            hint = plan.sequences()
        if len(accepted) >= 60:
            break
    assert len(accepted) >= 55
    probe = visit("probe", 3, "doctor", near(7777, 0.05))
    times = []
    for _ in range(20):  # CPU time of this process: immune to a busy machine's scheduling
        t = time.process_time()
        check(Day(shifts, tuple(accepted), 2), probe, hint)
        times.append(time.process_time() - t)
    assert statistics.median(times) < 0.010, times


def test_ledger_data_becomes_a_day_in_local_time_and_expired_holds_are_free():
    """Shifts in local wall-clock time (Stockholm) and only live holds count."""
    tz = ZoneInfo("Europe/Stockholm")
    shifts = {"d1": {"role": "doctor", "start": "08:00", "end": "16:00",
                     "start_location": {"lat": 59.33, "lon": 18.06}}}
    visits = {"b1": {"skill": "doctor", "starts_at": "2026-12-01T07:00:00Z", "ends_at": "2026-12-01T09:00:00Z",
                     "lat": 59.3, "lon": 18.0, "service_s": 2400, "status": "held",
                     "hold_expires_at": "2026-11-30T10:00:00Z"},
              "b2": {"skill": "doctor", "starts_at": "2026-12-01T09:00:00Z", "ends_at": "2026-12-01T11:00:00Z",
                     "lat": 59.3, "lon": 18.0, "service_s": 2400, "status": "confirmed"}}
    now = "2026-11-30T10:05:00Z"
    day = day_from_ledger(shifts, visits, day=date(2026, 12, 1), tz=tz, remote_doctors=2, travel=None,
                          counted=lambda _id, raw: holds_capacity(raw, now))
    assert [v.id for v in day.visits] == ["b2"]
    s = day.shifts[0]
    from datetime import datetime, timezone
    assert s.start == int(datetime(2026, 12, 1, 7, 0, tzinfo=timezone.utc).timestamp())  # 08:00 CET
    assert s.end_location == s.start_location and s.break_s == 30 * 60


def test_absorbing_a_sick_clinicians_visits_keeps_the_other_routes_and_lists_the_rest():
    """d2 leaves: d1's route is kept as it was (order included), d2's visits go to d1 where they fit,
    the rest is returned; the plan re-checks clean against the visits it holds."""
    from homevisits.capacity import absorb
    d1 = shift("d1", end=4 * H)  # d2's shift is gone from the day; its route stays in the hint
    own = [visit("own0", 0, loc=near(0, 0.01)), visit("own1", 1, loc=near(1, 0.01))]
    theirs = [visit("t0", 0, loc=near(2, 0.01)), visit("t4", 4, loc=near(3, 0.01)), visit("t5", 5, loc=near(4, 0.01))]
    day = Day((d1,), tuple(own + theirs), 1)
    plan, left = absorb(day, {"d1": ["own0", "own1"], "d2": ["t0", "t4", "t5"]})
    assert set(left) == {"t4", "t5"}  # after d1's shift: fit nowhere
    seq = plan.sequences()["d1"]
    assert [x for x in seq if x.startswith("own")] == ["own0", "own1"] and "t0" in seq
    kept = tuple(v for v in day.visits if v.id not in left)
    assert violations(Day(day.shifts, kept, 1), plan) == []


def test_an_urgent_visit_takes_the_place_of_a_normal_one_when_nothing_else_fits():
    """A 2-hour shift holding two visits: the sick clinician's urgent visit replaces one of them,
    which is returned instead; without `urgent` the urgent visit would be the one returned."""
    from homevisits.capacity import absorb
    d1 = shift("d1", end=2 * H, brk=False)
    own = [visit("own0", 0, loc=near(0, 0.005)), visit("own1", 0, loc=near(1, 0.005))]
    sick = visit("sick-urgent", 0, loc=near(2, 0.005))
    day = Day((d1,), (*own, sick), 1)
    assert check(day) is None  # the three do not fit
    hint = {"d1": ["own0", "own1"], "d2": ["sick-urgent"]}
    assert absorb(day, hint)[1] == ["sick-urgent"]
    plan, left = absorb(day, hint, urgent=frozenset({"sick-urgent"}))
    assert len(left) == 1 and left[0].startswith("own") and plan.route_of("sick-urgent") == "d1"
    assert violations(Day(day.shifts, tuple(v for v in day.visits if v.id not in left), 1), plan) == []


def test_visits_under_way_must_stay_with_their_clinician():
    """A kept visit whose clinician is gone cannot be absorbed: None (the caller refuses)."""
    from homevisits.capacity import absorb
    day = Day((shift("d1"),), (visit("going", 0),), 1)
    assert absorb(day, {"d2": ["going"]}, keep=frozenset({"going"})) is None
    assert absorb(day, {"d1": ["going"]}, keep=frozenset({"going"}))[1] == []


def test_a_nurse_visit_is_accepted_only_where_a_doctor_on_shift_can_take_its_call():
    """One doctor on video calls 06:00-07:00 (T0-relative): a nurse visit in the 08-10 window (T0 + 0..2 h)
    cannot end with a call then; in the 04-06 window it can, its call inside the doctor's shift. The
    region's remote_doctors count no longer applies once a doctor is declared."""
    nurses = (shift("n1", "nurse", end=12 * H, brk=False), shift("n2", "nurse", end=12 * H, brk=False))
    calls_on_shift = ((T0 + 6 * H, T0 + 7 * H),)
    early = visit("early", 0, skill="nurse", service=50 * MIN, call=15 * MIN)
    assert check(Day(nurses, (), 5, call_shifts=calls_on_shift), early) is None
    assert check(Day(nurses, (), 5), early) is not None  # the count alone would take it
    ok = visit("ok", 2, skill="nurse", service=50 * MIN, call=15 * MIN)
    plan = check(Day(nurses, (), 5, call_shifts=calls_on_shift), ok)
    assert plan is not None
    (stop,) = [s for r in plan.routes for s in r.stops]
    assert stop.call is not None and T0 + 6 * H <= stop.call[0] and stop.call[1] <= T0 + 7 * H
    # a second visit whose call would overlap: the one doctor takes it after the first call
    two = Day(nurses, (ok,), 5, call_shifts=calls_on_shift)
    other = visit("other", 2, skill="nurse", service=50 * MIN, call=15 * MIN, loc=near(3))
    plan2 = check(two, other)
    assert plan2 is not None and violations(Day(nurses, (ok, other), 5, call_shifts=calls_on_shift), plan2) == []


def test_doctors_on_video_calls_in_the_ledger_are_no_route():
    """A ledger shift with video_calls becomes a call shift, never a clinician driving visits."""
    tz = ZoneInfo("Europe/Stockholm")
    shifts = {"n1": {"role": "nurse", "start": "08:00", "end": "16:00",
                     "start_location": {"lat": CENTER[0], "lon": CENTER[1]}},
              "dr": {"role": "doctor", "start": "09:00", "end": "12:00", "video_calls": True, "name": "Dr Berg"}}
    day = day_from_ledger(shifts, {}, day=date(2026, 12, 1), tz=tz, remote_doctors=2, travel=None,
                          counted=lambda *_: True)
    assert [s.clinician_id for s in day.shifts] == ["n1"]
    assert len(day.call_shifts) == 1 and day.call_shifts[0][1] - day.call_shifts[0][0] == 3 * H
