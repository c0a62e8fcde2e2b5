"""dispatch.live on an in-memory store: a stored plan's live routes, events and positions moving the
ETAs, what patients are told and when (once per threshold), and the location endpoint's checks."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from homevisits.clock import FixedClock, parse_utc, utc_iso
from homevisits.errors import InvalidRequest

from dispatch import live, repository, worker

MORNING = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)  # 07:00 local


@pytest.fixture
def planned(rd, monkeypatch, live_store):
    """Visits a (08–10) and b (12–14) for one doctor, planned at 07:00 local (the real optimizer)."""
    inputs = rd.inputs([rd.visit("a", "08:00", dlat=0.03), rd.visit("b", "12:00", dlon=0.03)], [rd.shift("doc")])
    state = {"plan": None}

    def save_plan(plan, expected):
        plan.version = (expected or 0) + 1
        state["plan"] = plan
        return plan

    monkeypatch.setattr(repository, "get_plan", lambda region, day: state["plan"])
    monkeypatch.setattr(repository, "load_inputs", lambda region, day: inputs)
    monkeypatch.setattr(repository, "save_plan", save_plan)
    monkeypatch.setattr(repository, "write_etas", lambda plan, visits: None)
    monkeypatch.setattr(repository, "mark_announced", lambda plan: True)
    published = []
    monkeypatch.setattr(worker.messaging, "publish", lambda source, dt, detail: published.append((dt, detail)))
    monkeypatch.setattr(live.messaging, "publish", lambda source, dt, detail: published.append((dt, detail)))
    worker.replan("stockholm", rd.day, time_limit_s=0.3, clock=FixedClock(MORNING), force=True)
    return SimpleNamespace(rd=rd, store=live_store, published=published, plan=lambda: state["plan"])


def booking(bid, rd):
    return SimpleNamespace(booking_id=bid, region_day=f"stockholm#{rd.day.isoformat()}", eta=None)


def test_a_stored_plan_writes_one_live_route_per_clinician_and_its_stops_show_live_etas(planned):
    rd_key = f"stockholm#{planned.rd.day.isoformat()}"
    item = planned.store.items[(rd_key, "doc")]
    assert [s["booking_id"] for s in item.stops] == ["a", "b"] and item.plan_version == 1
    stops = planned.plan().routes[0]["stops"]
    assert all(s["eta_state"] == "planned" for s in stops)
    assert item.told == {s["booking_id"]: {"eta": s["eta"], "late": False, "seq": 0} for s in stops}
    assert planned.plan().kpis["arrivals"] == 0


def test_an_event_moves_the_later_stops_and_tells_only_past_the_margin(planned):
    rd = planned.rd
    b_before = planned.store.items[(f"stockholm#{rd.day.isoformat()}", "doc")].told["b"]["eta"]
    late = MORNING + timedelta(hours=5, minutes=30)  # a still there at 12:30 local: b moves by over 15 min
    live.record_event(booking("a", rd), "doc", "arrived", MORNING + timedelta(hours=1, minutes=10))
    assert planned.published == [p for p in planned.published if p[0] == "PlanChanged"]  # on time: nothing
    live.record_event(booking("a", rd), "doc", "completed", late)
    changes = [d["eta_changes"] for t, d in planned.published if t == "EtaChanged"]
    assert len(changes) == 1 and changes[0][0]["booking_id"] == "b"
    assert changes[0][0]["previous_eta"] == b_before and parse_utc(changes[0][0]["eta"]) > late
    live.record_event(booking("a", rd), "doc", "completed", late)  # a repeat recompute: nothing new
    assert len([1 for t, _ in planned.published if t == "EtaChanged"]) == 1


def test_the_on_the_way_eta_is_what_the_patient_has_heard(planned):
    rd = planned.rd
    at = MORNING + timedelta(hours=2, minutes=30)  # 09:30 local, late for a's 08–10
    eta = live.eta_after_event(booking("a", rd), "doc", "on_the_way", at)
    assert parse_utc(eta) > at
    live.record_event(booking("a", rd), "doc", "on_the_way", at, told_eta=eta)
    item = planned.store.items[(f"stockholm#{rd.day.isoformat()}", "doc")]
    assert item.told["a"] == {"eta": eta, "late": False, "seq": 1}  # a decision: an older text is stale
    assert live.current(item, at)["a"].eta == eta


def test_an_older_position_than_the_stored_one_is_ignored(planned):
    rd_key = f"stockholm#{planned.rd.day.isoformat()}"
    now = MORNING + timedelta(hours=1)
    stored, etas = live.record_position(rd_key, "doc", 59.36, 18.06, now, now)
    assert stored and set(etas) == {"a", "b"}
    stored, _ = live.record_position(rd_key, "doc", 59.40, 18.06, now - timedelta(minutes=1), now)
    assert not stored
    assert planned.store.items[(rd_key, "doc")].position == {"lat": 59.36, "lon": 18.06, "at": utc_iso(now)}


def test_a_position_without_a_route_is_kept_for_the_next_plan(live_store, monkeypatch):
    monkeypatch.setattr(live.messaging, "publish", lambda *a: None)
    stored, etas = live.record_position("stockholm#2026-12-01", "doc-new", 59.33, 18.06, MORNING, MORNING)
    assert stored and etas == {}
    assert live_store.items[("stockholm#2026-12-01", "doc-new")].position["lat"] == 59.33


def test_a_position_time_must_have_a_zone_and_be_recent():
    from dispatch.location import position_time
    assert position_time(None, MORNING) == MORNING
    assert position_time(MORNING - timedelta(minutes=5), MORNING) == MORNING - timedelta(minutes=5)
    for bad in (MORNING.replace(tzinfo=None), MORNING + timedelta(minutes=10), MORNING - timedelta(hours=13)):
        with pytest.raises(InvalidRequest):
            position_time(bad, MORNING)


def test_time_passing_alone_tells_a_patient_their_window_will_be_missed_once(planned):
    """No event, no ping: a stuck at 'arrived' until 13:50 local makes b (12–14) late; the
    scheduled run (inputs unchanged) tells b's patient once, and again nothing."""
    rd = planned.rd
    rd_key = f"stockholm#{rd.day.isoformat()}"
    live.record_event(booking("a", rd), "doc", "arrived", MORNING + timedelta(hours=1, minutes=10))
    planned.published.clear()
    later = MORNING + timedelta(hours=6, minutes=50)
    assert live.refresh_day(rd_key, later) == 1
    [(kind, detail)] = planned.published
    assert kind == "EtaChanged" and detail["eta_changes"][0]["reason"] == "late"
    assert live.refresh_day(rd_key, later + timedelta(minutes=5)) == 0


def test_setting_off_already_late_is_one_text_not_two(planned):
    """The on-the-way text names an ETA after the window: that is the patient's 'late' news, so no
    separate late text follows from the same event."""
    rd = planned.rd
    at = MORNING + timedelta(hours=3, minutes=55)  # 10:55 local for a's 08–10
    eta = live.eta_after_event(booking("a", rd), "doc", "on_the_way", at)
    planned.published.clear()
    live.record_event(booking("a", rd), "doc", "on_the_way", at, told_eta=eta)
    assert not [d for t, d in planned.published if t == "EtaChanged" and any(c["booking_id"] == "a" for c in d["eta_changes"])]


def test_a_plan_whose_live_route_was_written_meanwhile_still_tells_the_moves_it_found(planned, monkeypatch):
    """A re-plan at 12:30 local (a not started: b, 12–14, moves past the margin) loses its live-route
    write to a ping that told nobody: the route is stored from a fresh read, and what b's patient
    is recorded as told is what the texts said last (notifications drop a decision the record has
    moved past, so a record left at the old ETA would leave the patient untold)."""
    rd = planned.rd
    rd_key = f"stockholm#{rd.day.isoformat()}"
    saved = repository.save_plan

    def save_plan_then_a_ping(plan, expected):
        item = planned.store.get_route(rd_key, "doc")
        assert planned.store.save_route(item)  # written meanwhile: the plan's live write loses once
        return saved(plan, expected)

    monkeypatch.setattr(repository, "save_plan", save_plan_then_a_ping)
    before = planned.store.items[(rd_key, "doc")].told["b"]["eta"]
    planned.published.clear()
    later = MORNING + timedelta(hours=5, minutes=30)
    worker.replan("stockholm", rd.day, time_limit_s=0.3, clock=FixedClock(later), force=True)
    texts = [c for _, d in planned.published for c in d.get("eta_changes", []) if c["booking_id"] == "b"]
    assert texts and texts[-1]["eta"] != before
    assert planned.store.items[(rd_key, "doc")].told["b"]["eta"] == texts[-1]["eta"]
    assert planned.store.items[(rd_key, "doc")].told["b"]["seq"] == texts[-1]["seq"]


def test_a_patient_told_an_eta_then_another_then_the_first_again_gets_three_numbered_decisions(planned):
    """b (12–14): the clinician reports positions far away, back near, far again; each move past
    the margin is a decision with the next number (what notifications key the text by), so the
    ETA told a second time is a new text, and the record names the last decision."""
    rd = planned.rd
    rd_key = f"stockholm#{rd.day.isoformat()}"
    live.record_event(booking("a", rd), "doc", "completed", MORNING + timedelta(hours=4))
    planned.published.clear()
    now = MORNING + timedelta(hours=4, minutes=1)
    for i, lat in enumerate((60.3, 59.36, 60.3)):  # ~100 km away, near, away again
        live.record_position(rd_key, "doc", lat, 18.1, now + timedelta(seconds=i), now + timedelta(seconds=i))
    texts = [c for t, d in planned.published if t == "EtaChanged" for c in d["eta_changes"] if c["booking_id"] == "b"]
    assert [c["seq"] for c in texts] == [1, 2, 3], texts
    assert texts[0]["eta"] != texts[1]["eta"] != texts[2]["eta"]
    assert planned.store.items[(rd_key, "doc")].told["b"]["seq"] == 3
