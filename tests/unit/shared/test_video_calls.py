"""The doctors on shift for the nurse visits' video calls (homevisits.video_calls): who takes which call."""
from __future__ import annotations

from homevisits.video_calls import Doctor, assign, capacity_for, expected, fits, segments, violations

H, MIN = 3600, 60


def test_overlapping_calls_go_to_different_doctors():
    """Two calls at once need two doctors; a doctor never holds two calls at the same time."""
    doctors = [Doctor("a", 8 * H, 16 * H), Doctor("b", 8 * H, 16 * H)]
    named, left = assign([("x", 10 * H, 10 * H + 15 * MIN), ("y", 10 * H + 5 * MIN, 10 * H + 20 * MIN)], doctors)
    assert left == [] and named["x"] != named["y"]


def test_a_call_goes_only_to_a_doctor_whose_shift_holds_it_whole():
    """A call 09:50-10:05 cannot go to a doctor leaving at 10:00, nor to one starting at 10:00."""
    doctors = [Doctor("early", 8 * H, 10 * H), Doctor("late", 10 * H, 12 * H), Doctor("all", 8 * H, 12 * H)]
    named, left = assign([("x", 9 * H + 50 * MIN, 10 * H + 5 * MIN)], doctors)
    assert named == {"x": "all"} and left == []
    named, left = assign([("x", 9 * H + 50 * MIN, 10 * H + 5 * MIN)], doctors[:2])
    assert named == {} and left == ["x"]


def test_a_call_no_doctor_can_take_is_listed_never_dropped():
    """One doctor, three calls at once: one is taken, the other two come back as left over."""
    named, left = assign([(k, 10 * H, 10 * H + 15 * MIN) for k in "xyz"], [Doctor("a", 8 * H, 16 * H)])
    assert len(named) == 1 and sorted(left + list(named)) == ["x", "y", "z"]


def test_the_doctor_whose_shift_ends_first_takes_the_call_so_later_ones_still_find_one():
    """Greedy but exact: giving the 09:00 call to the doctor staying till 12 would strand the 10:30 one."""
    doctors = [Doctor("short", 8 * H, 10 * H), Doctor("long", 8 * H, 12 * H)]
    calls = [("first", 9 * H, 9 * H + 15 * MIN), ("mid", 9 * H + 5 * MIN, 9 * H + 20 * MIN),
             ("late", 10 * H + 30 * MIN, 10 * H + 45 * MIN)]
    named, left = assign(calls, doctors)
    assert left == [] and named["first"] == "short" and named["late"] == "long"


def test_the_capacity_rule_keeps_calls_inside_one_stretch_of_doctors_on_shift():
    """Shifts 08-12 and 10-14: 08-10 one doctor, 10-12 two, 12-14 one; a call across 10:00 has none."""
    segs = segments([(8 * H, 12 * H), (10 * H, 14 * H)])
    assert segs == [(8 * H, 10 * H, 1), (10 * H, 12 * H, 2), (12 * H, 14 * H, 1)]
    assert capacity_for(segs, 9 * H + 50 * MIN, 10 * H + 5 * MIN) == 0
    assert fits(segs, [(10 * H, 10 * H + 15 * MIN)], 10 * H + 5 * MIN, 10 * H + 20 * MIN)
    assert not fits(segs, [(12 * H, 12 * H + 15 * MIN)], 12 * H + 5 * MIN, 12 * H + 20 * MIN)
    assert violations(segs, [(12 * H, 12 * H + 15 * MIN), (12 * H + 5 * MIN, 12 * H + 20 * MIN)])
    assert violations(segs, [(10 * H, 10 * H + 15 * MIN), (10 * H + 5 * MIN, 10 * H + 20 * MIN)]) == []


def test_calls_kept_by_the_rule_always_find_a_named_doctor():
    """Whatever calls keep the rule, assign names a doctor for every one (random days)."""
    import random
    rng = random.Random(7)
    for _ in range(300):
        shifts = [(rng.randrange(8, 14) * H, 0) for _ in range(rng.randrange(1, 4))]
        shifts = [(a, a + rng.randrange(2, 7) * H) for a, _ in shifts]
        segs = segments(shifts)
        calls: list[tuple[int, int]] = []
        for _ in range(30):
            s = rng.randrange(8 * H, 20 * H, 5 * MIN)
            if fits(segs, calls, s, s + 15 * MIN):
                calls.append((s, s + 15 * MIN))
        named, left = assign([(k, a, b) for k, (a, b) in enumerate(calls)],
                             [Doctor(str(i), a, b) for i, (a, b) in enumerate(shifts)])
        assert left == []
        for d in {*named.values()}:
            mine = sorted(calls[k] for k, v in named.items() if v == d)
            assert all(b1 <= a2 for (_, b1), (a2, _) in zip(mine, mine[1:]))


def test_a_late_visit_pushes_the_doctors_next_call_instead_of_overlapping_it():
    """Live: the nurse of the first call is 10 minutes late; the doctor's second call waits for it."""
    cal = [("x", 10 * H, 10 * H + 15 * MIN), ("y", 10 * H + 15 * MIN, 10 * H + 30 * MIN)]
    got = expected(cal, {"x": 10 * H + 10 * MIN}, 8 * H)
    assert got["x"] == (10 * H + 10 * MIN, 10 * H + 25 * MIN)
    assert got["y"] == (10 * H + 25 * MIN, 10 * H + 40 * MIN)
