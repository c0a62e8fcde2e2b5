"""Live ETAs recomputed from what happened on a route (homevisits.live_eta), with the travel model."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from homevisits.clock import parse_utc
from homevisits.live_eta import recompute, route_snapshot, tells
from homevisits.travel import duration_s

HOME = {"lat": 59.3326, "lon": 18.0649}
A = {"lat": 59.3426, "lon": 18.0649}   # ~1.1 km north
B = {"lat": 59.3126, "lon": 18.0849}   # ~2.5 km south-east
C = {"lat": 59.3326, "lon": 18.0249}   # ~2.3 km west


def at(hhmm: str) -> datetime:
    """A time on 2026-12-01 in Stockholm (UTC+1 in December), as UTC."""
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 12, 1, h - 1, m, tzinfo=timezone.utc)


def iso(hhmm: str) -> str:
    return at(hhmm).strftime("%Y-%m-%dT%H:%M:%SZ")


def stop(bid, place, window, minutes=30):
    ws, we = window
    return {"booking_id": bid, **place, "window_start_at": iso(ws), "window_end_at": iso(we), "service_s": minutes * 60}


def route(events=None, position=None, breaks=None):
    return {"start": {**HOME, "at": iso("08:00")},
            "stops": [stop("a", A, ("08:00", "10:00")), stop("b", B, ("10:00", "12:00")),
                      stop("c", C, ("10:00", "12:00"))],
            "breaks": breaks or [], "events": events or {}, "position": position}


def drive(p, q) -> timedelta:
    return timedelta(seconds=duration_s((p["lat"], p["lon"]), (q["lat"], q["lon"])))


def test_before_anything_happens_the_etas_chain_from_the_shift_start():
    etas = recompute(route(), at("07:00"))
    assert parse_utc(etas["a"].eta) == at("08:00") + drive(HOME, A)
    # b may not start before its window (10:00); c follows b's service and the drive
    assert parse_utc(etas["b"].eta) == at("10:00")
    assert parse_utc(etas["c"].eta) == at("10:30") + drive(B, C)
    assert {e.state for e in etas.values()} == {"planned"}


def test_the_issues_symptom_a_clinician_on_the_way_at_0945_is_never_shown_an_earlier_time():
    """At 09:45 a clinician who set off at 09:30 from the first visit, late, is still driving: the
    ETA is not a past plan time (the issue saw 08:53) but the drive from where they left, or now."""
    events = {"a": {"arrived": iso("08:40"), "completed": iso("09:30")}, "b": {"on_the_way": iso("09:30")}}
    etas = recompute(route(events), at("09:45"))
    assert etas["b"].state == "en_route"
    expected = max(at("09:30") + drive(A, B), at("10:00"))
    assert parse_utc(etas["b"].eta) == expected
    assert parse_utc(etas["b"].eta) >= at("09:45")
    assert etas["a"].state == "done" and etas["a"].eta == iso("08:40")


def test_an_eta_not_reached_yet_is_never_in_the_past():
    events = {"a": {"on_the_way": iso("08:00")}}
    etas = recompute(route(events), at("09:50"))  # should have been there at ~08:05: still driving
    assert etas["a"].eta == iso("09:50")
    assert parse_utc(etas["b"].eta) >= at("09:50") + timedelta(minutes=30) + drive(A, B)


def test_completed_means_the_clinician_leaves_now_and_later_stops_follow():
    events = {"a": {"arrived": iso("08:10"), "completed": iso("10:40")}}
    etas = recompute(route(events), at("10:40"))
    assert parse_utc(etas["b"].eta) == at("10:40") + drive(A, B)
    assert parse_utc(etas["c"].eta) == parse_utc(etas["b"].eta) + timedelta(minutes=30) + drive(B, C)


def test_a_visit_that_runs_over_keeps_the_clinician_until_now():
    events = {"a": {"arrived": iso("08:10")}}
    etas = recompute(route(events), at("11:00"))  # a's 30 minutes ended at 08:40, still there at 11:00
    assert etas["a"].state == "arrived" and etas["a"].eta == iso("08:10")
    assert parse_utc(etas["b"].eta) == at("11:00") + drive(A, B)


def test_a_reported_position_replaces_the_departure_point():
    events = {"a": {"arrived": iso("08:10"), "completed": iso("08:40")}, "b": {"on_the_way": iso("09:35")}}
    near_b = {"lat": B["lat"] + 0.001, "lon": B["lon"]}
    etas = recompute(route(events, position={**near_b, "at": iso("10:20")}), at("10:20"))
    assert parse_utc(etas["b"].eta) == at("10:20") + drive(near_b, B)


def test_a_position_older_than_the_last_event_is_ignored():
    events = {"a": {"arrived": iso("08:10"), "completed": iso("10:30")}}
    far = {"lat": 59.5, "lon": 18.3, "at": iso("10:00")}
    assert recompute(route(events, position=far), at("10:30")) == recompute(route(events), at("10:30"))


def test_the_window_will_be_missed_is_flagged():
    events = {"a": {"arrived": iso("08:10")}}
    etas = recompute(route(events), at("11:50"))
    assert etas["b"].late and etas["c"].late and not etas["a"].late


def test_a_planned_break_is_taken_on_the_way():
    brk = [{"before": "c", "start": iso("11:00"), "minutes": 30}]
    without = recompute(route(), at("07:00"))
    with_break = recompute(route(breaks=brk), at("07:00"))
    assert parse_utc(with_break["c"].eta) == max(parse_utc(without["c"].eta) - drive(B, C), at("11:00")) \
        + timedelta(minutes=30) + drive(B, C)


def test_route_snapshot_places_each_break_before_the_stop_after_it():
    stops = [{"booking_id": "a", "address": A, "window_start_at": iso("08:00"), "window_end_at": iso("10:00"),
              "service_minutes": 30, "eta": iso("08:10")},
             {"booking_id": "b", "address": B, "window_start_at": iso("12:00"), "window_end_at": iso("14:00"),
              "service_minutes": 45, "eta": iso("12:00")}]
    snap = route_snapshot(stops, {**HOME, "at": iso("08:00")}, [{"start": iso("11:00"), "minutes": 30}])
    assert snap["breaks"] == [{"before": "b", "start": iso("11:00"), "minutes": 30}]
    assert snap["stops"][1]["service_s"] == 45 * 60 and snap["stops"][0]["lat"] == A["lat"]


def eta(bid, when, state="planned", late=False):
    from homevisits.live_eta import LiveEta
    return LiveEta(bid, iso(when), state, late)


def test_the_first_eta_counts_as_heard_and_small_moves_are_not_texted():
    out, told = tells({"b": eta("b", "10:00")}, {}, 15)
    assert out == [] and told == {"b": {"eta": iso("10:00"), "late": False, "seq": 0}}
    out, told2 = tells({"b": eta("b", "10:14")}, told, 15)
    assert out == [] and told2 == told


def test_a_move_beyond_the_margin_is_texted_once():
    told = {"b": {"eta": iso("10:00"), "late": False}}
    out, told = tells({"b": eta("b", "10:16")}, told, 15)
    assert out == [{"booking_id": "b", "eta": iso("10:16"), "previous_eta": iso("10:00"), "reason": "moved", "seq": 1}]
    again, _ = tells({"b": eta("b", "10:20")}, told, 15)
    assert again == []  # 4 minutes from what the patient heard last


def test_the_window_missed_is_texted_once():
    told = {"b": {"eta": iso("11:50"), "late": False}}
    out, told = tells({"b": eta("b", "12:05", late=True)}, told, 15)
    assert [o["reason"] for o in out] == ["late"]
    again, _ = tells({"b": eta("b", "12:10", late=True)}, told, 15)
    assert again == []


def test_an_eta_back_where_it_was_is_a_new_decision_with_its_own_number():
    """10:00 -> 10:30 -> 10:00: three texts the patient needs; each decision is numbered (the
    text's identity), so the second 10:00 is not the first one again."""
    told = {"b": {"eta": iso("10:00"), "late": False}}  # a record from before decisions were numbered
    decided = []
    for hhmm in ("10:30", "10:00", "10:30"):
        out, told = tells({"b": eta("b", hhmm)}, told, 15)
        decided += out
    assert [(c["eta"], c["seq"]) for c in decided] == [(iso("10:30"), 1), (iso("10:00"), 2), (iso("10:30"), 3)]
    assert told["b"]["seq"] == 3
    again, same = tells({"b": eta("b", "10:31")}, told, 15)
    assert again == [] and same == told  # no decision, no number


def test_arrived_and_done_visits_are_not_texted():
    out, _ = tells({"a": eta("a", "12:30", state="arrived", late=True)}, {"a": {"eta": iso("10:00")}}, 15)
    assert out == []
