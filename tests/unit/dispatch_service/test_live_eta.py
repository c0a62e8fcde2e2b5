"""The ETA sent when a clinician sets off is never in the past: a slipped day moves it."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from dispatch.visits import live_eta

NOW = datetime(2026, 12, 1, 15, 48, tzinfo=timezone.utc)


def _booking(eta):
    return SimpleNamespace(booking_id="b2", region="stockholm", date="2026-12-01", eta=eta,
                           address={"lat": 59.3326, "lon": 18.0649})


def _repo(prev_address):
    stops = [{"booking_id": "b1", "address": prev_address}, {"booking_id": "b2", "address": {}}]
    plan = SimpleNamespace(routes=[{"clinician_id": "c1", "stops": stops}])
    return SimpleNamespace(get_plan=lambda region, day: plan)


def test_a_planned_eta_still_ahead_is_kept():
    assert live_eta(_booking("2026-12-01T16:30:00Z"), NOW, _repo({"lat": 59.33, "lon": 18.06})) == "2026-12-01T16:30:00Z"


def test_a_past_eta_becomes_now_plus_the_drive_from_the_stop_before():
    eta = live_eta(_booking("2026-12-01T15:41:00Z"), NOW, _repo({"lat": 59.40, "lon": 18.00}))
    assert eta > "2026-12-01T15:48:00Z"  # strictly after now: there is a drive of several km


def test_without_a_plan_the_eta_is_not_before_now():
    repo = SimpleNamespace(get_plan=lambda region, day: None)
    assert live_eta(_booking("2026-12-01T15:00:00Z"), NOW, repo) == "2026-12-01T15:48:00Z"
