"""The sharded ledger: a booking changes only its route's shard, and shards together still prove the day."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from homevisits import capacity
from homevisits.ledger import DayLedger, Shard

TZ = ZoneInfo("Europe/Stockholm")
DAY = date(2026, 12, 1)
POOLED = frozenset({"nurse"})
CENTER = (59.3326, 18.0649)


def shift(role, lat, lon, start="08:00", end="20:00"):
    return {"role": role, "start": start, "end": end, "start_location": {"lat": lat, "lon": lon},
            "end_location": {"lat": lat, "lon": lon}, "break": dict(capacity.DEFAULT_BREAK)}


def entry(skill, window_h, lat, lon):
    start = datetime(DAY.year, DAY.month, DAY.day, window_h, tzinfo=TZ)
    return {"visit_type": skill, "skill": skill, "starts_at": start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ends_at": (start + timedelta(hours=2)).astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lat": lat, "lon": lon, "service_s": 2400 if skill == "doctor" else 3000,
            "video_call_s": 0 if skill == "doctor" else 900, "status": "confirmed", "hold_expires_at": None}


def stored_day(doctors=4, nurses=2) -> DayLedger:
    """A region-day as stored: one shard per doctor (two visits each), the nurses in one pool."""
    shards = []
    for i in range(doctors):
        lat, lon = CENTER[0] + 0.02 * i, CENTER[1]
        visits = {f"d{i}-a": entry("doctor", 8, lat, lon), f"d{i}-b": entry("doctor", 14, lat, lon + 0.01)}
        shards.append(Shard(f"doctor#route#doc{i}", {f"doc{i}": shift("doctor", lat, lon)}, visits,
                            {f"doc{i}": list(visits)}, version=3))
    pool = Shard("nurse#pool", version=5)
    for j in range(nurses):
        pool.shifts[f"nur{j}"] = shift("nurse", CENTER[0] - 0.02 * j, CENTER[1])
        pool.visits[f"n{j}"] = entry("nurse", 10, CENTER[0] - 0.02 * j, CENTER[1])
        pool.routes[f"nur{j}"] = [f"n{j}"]
    shards.append(pool)
    return DayLedger("stockholm#2026-12-01", shards, POOLED)


def day_of(ledger: DayLedger) -> capacity.Day:
    return capacity.day_from_ledger(ledger.shifts, ledger.visits, day=DAY, tz=TZ, remote_doctors=1, travel=None,
                                    counted=lambda *_: True)


def test_reading_changes_nothing():
    """A ledger read and not touched has nothing to write."""
    assert stored_day().changed() == []


def test_a_booking_rewrites_only_the_route_it_joins():
    """Adding a visit to one doctor's route writes that doctor's shard, at the version it was read."""
    led = stored_day()
    led.visits = {**led.visits, "new": entry("doctor", 10, CENTER[0] + 0.02, CENTER[1])}
    led.routes = {**led.routes, "doc1": ["d1-a", "new", "d1-b"]}
    changed = led.changed()
    assert [s.key for s in changed] == ["doctor#route#doc1"]
    assert changed[0].version == 3 and set(changed[0].visits) == {"d1-a", "d1-b", "new"}
    assert changed[0].routes == {"doc1": ["d1-a", "new", "d1-b"]} and set(changed[0].shifts) == {"doc1"}


def test_nurse_routes_share_one_shard_because_remote_doctors_are_shared():
    """A nurse visit (with a video call) changes the pool, never a doctor's shard."""
    led = stored_day()
    led.visits = {**led.visits, "n-new": entry("nurse", 12, CENTER[0], CENTER[1])}
    led.routes = {**led.routes, "nur0": ["n0", "n-new"]}
    assert [s.key for s in led.changed()] == ["nurse#pool"]


def test_a_released_visit_leaves_only_its_shard():
    """Cancelling removes the visit from its route's shard; no other shard is written."""
    led = stored_day()
    led.visits = {b: r for b, r in led.visits.items() if b != "d2-a"}
    led.routes = {c: [b for b in seq if b != "d2-a"] for c, seq in led.routes.items()}
    changed = led.changed()
    assert [s.key for s in changed] == ["doctor#route#doc2"] and set(changed[0].visits) == {"d2-b"}


def test_a_lapsed_hold_off_every_route_stays_in_its_shard():
    """A visit no route serves (an expired hold awaiting release) is kept where it was stored."""
    led = stored_day()
    led.routes = {**led.routes, "doc0": ["d0-b"]}
    changed = led.changed()
    assert [s.key for s in changed] == ["doctor#route#doc0"]
    assert "d0-a" in changed[0].visits and changed[0].routes == {"doc0": ["d0-b"]}


def test_a_visit_moved_between_routes_rewrites_both_shards():
    """A re-plan that moves a visit from doc0 to doc1 writes both shards, each version-checked."""
    led = stored_day()
    led.routes = {**led.routes, "doc0": ["d0-b"], "doc1": ["d0-a", "d1-a", "d1-b"]}
    changed = {s.key: s for s in led.changed()}
    assert set(changed) == {"doctor#route#doc0", "doctor#route#doc1"}
    assert "d0-a" in changed["doctor#route#doc1"].visits and "d0-a" not in changed["doctor#route#doc0"].visits


def test_a_new_shift_is_a_new_shard():
    """A clinician's first shift on the day creates its shard (stored with no version yet)."""
    led = stored_day()
    led.shifts = {**led.shifts, "doc9": shift("doctor", 59.4, 18.1)}
    changed = led.changed()
    assert [(s.key, s.version) for s in changed] == [("doctor#route#doc9", None)]


def test_around_picks_the_nearest_routes_of_the_skill_working_then():
    """The part of the day a visit is checked against: the k nearest doctors on shift in its window."""
    led = stored_day(doctors=6)
    led.shifts = {**led.shifts, "doc5": shift("doctor", CENTER[0] + 0.1, CENTER[1], start="08:00", end="10:00")}
    v = capacity.visit_from_ledger("x", entry("doctor", 16, CENTER[0] + 0.1, CENTER[1]))
    part = led.around(v, DAY, TZ, k=2)
    assert set(part.shifts) == {"doc4", "doc3"}  # doc5 is nearest but off shift at 16-18
    assert set(part.visits) == {"d4-a", "d4-b", "d3-a", "d3-b"}
    assert set(part.routes) == {"doc3", "doc4"}


def test_around_a_pooled_visit_is_the_whole_pool():
    """A nurse visit is checked against every nurse route (their video calls share remote doctors)."""
    led = stored_day(nurses=3)
    v = capacity.visit_from_ledger("x", entry("nurse", 12, CENTER[0], CENTER[1]))
    part = led.around(v, DAY, TZ, k=1)
    assert set(part.shifts) == {"nur0", "nur1", "nur2"} and set(part.visits) == {"n0", "n1", "n2"}


def test_checking_only_the_part_around_a_visit_keeps_the_whole_day_servable():
    """Book 60 random visits one by one, each checked only against its 3 nearest routes and merged
    back: the whole day's stored routes re-simulate and pass the independent checker every time."""
    rnd = random.Random(4)
    led = DayLedger("stockholm#2026-12-01", [], POOLED)
    led.shifts = {f"doc{i}": shift("doctor", CENTER[0] + rnd.uniform(-0.05, 0.05), CENTER[1] + rnd.uniform(-0.1, 0.1))
                  for i in range(6)}
    accepted = 0
    for n in range(60):
        raw = entry("doctor", rnd.choice([8, 10, 12, 14, 16, 18]), CENTER[0] + rnd.uniform(-0.05, 0.05),
                    CENTER[1] + rnd.uniform(-0.1, 0.1))
        v = capacity.visit_from_ledger(f"v{n}", raw)
        part = led.around(v, DAY, TZ, k=3)
        plan = capacity.check(day_of(part), v, part.routes)
        if plan is None:
            continue
        accepted += 1
        led.visits = {**led.visits, v.id: raw}
        led.routes = {**(led.routes or {}), **plan.sequences()}
        whole = capacity.check(day_of(led), None, led.routes, allow_rebuild=False)
        assert whole is not None and capacity.violations(day_of(led), whole) == []
    assert 20 <= accepted < 60
    # each stored shard proves its own visits: the split covers every visit exactly once
    shards = led.split().values()
    assert sorted(b for s in shards for b in s.visits) == sorted(led.visits)


def test_taking_a_plan_for_part_of_the_day_moves_its_visits_off_other_routes():
    """A plan made around a visit may list a visit another stored route still holds (a lapsed hold
    re-placed, a visit moved): after `take` each visit is on exactly one route."""
    led = stored_day()
    stop = lambda vid: capacity.Stop(vid, 0, 0, 0)  # noqa: E731 - times do not matter here
    led.take(capacity.Plan((capacity.Route("doc1", (stop("d0-a"), stop("d1-a"), stop("d1-b")), None, 0, 0),)))
    assert led.routes["doc0"] == ["d0-b"] and led.routes["doc1"] == ["d0-a", "d1-a", "d1-b"]
    assert led.routes["doc2"] == ["d2-a", "d2-b"]
    assert {s.key for s in led.changed()} == {"doctor#route#doc0", "doctor#route#doc1"}
