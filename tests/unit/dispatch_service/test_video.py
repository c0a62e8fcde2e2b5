"""Naming the doctor of each nurse visit's video call after a plan (dispatch.video)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from dispatch.video import NO_DOCTOR, assign_calls, expected_slots

ORIGIN = datetime(2026, 12, 1, 23, 0, tzinfo=timezone.utc)  # local midnight, Stockholm


def _built(doctors: dict):
    shifts = {cid: SimpleNamespace(start=ORIGIN + timedelta(hours=a), end=ORIGIN + timedelta(hours=b), name=name)
              for cid, (name, a, b) in doctors.items()}
    return SimpleNamespace(time_zone="Europe/Stockholm", call_doctors=shifts,
                           t=lambda at: int((at - ORIGIN).total_seconds()))


def _stop(bid: str, hh: int, mm: int = 0) -> dict:
    eta = ORIGIN + timedelta(hours=hh, minutes=mm)
    return {"booking_id": bid, "eta": eta.strftime("%Y-%m-%dT%H:%M:%SZ"), "service_minutes": 50, "video_call_minutes": 15}


def test_a_call_no_doctor_is_free_for_is_flagged_and_listed_not_dropped():
    """Two nurses finish at the same time, one doctor on calls: one call gets her, the other is
    flagged on its stop and listed in the plan's video_calls.unassigned."""
    routes = [{"clinician_id": "n1", "stops": [_stop("a", 10)]}, {"clinician_id": "n2", "stops": [_stop("b", 10)]}]
    video = assign_calls(_built({"dr": ("Dr Berg", 8, 16)}), routes)
    calls = {s["booking_id"]: s["video_call"] for r in routes for s in r["stops"]}
    taken = [b for b, vc in calls.items() if vc["doctor_id"] == "dr"]
    flagged = [b for b, vc in calls.items() if vc.get("flag") == NO_DOCTOR]
    assert len(taken) == 1 and len(flagged) == 1 and set(taken + flagged) == {"a", "b"}
    assert calls[taken[0]]["doctor_name"] == "Dr Berg" and calls[taken[0]]["start_local"] == "10:50"
    assert [c["booking_id"] for c in video["unassigned"]] == flagged
    assert [c["booking_id"] for c in video["doctors"][0]["calls"]] == taken


def test_without_declared_doctors_the_slot_is_shown_without_a_name_and_nothing_is_flagged():
    """The region's remote_doctors count: the call's slot, no doctor named, no flag."""
    routes = [{"clinician_id": "n1", "stops": [_stop("a", 10)]}]
    video = assign_calls(_built({}), routes)
    vc = routes[0]["stops"][0]["video_call"]
    assert vc["doctor_id"] is None and "flag" not in vc and vc["start_local"] == "10:50"
    assert video == {"doctors": [], "unassigned": []}


def test_a_late_nurse_pushes_the_doctors_next_call_in_every_view():
    """Live: the first call's nurse is 20 minutes late; the doctor's next call starts after it."""
    routes = [{"clinician_id": "n1", "stops": [_stop("a", 10)]},
              {"clinician_id": "n2", "stops": [_stop("b", 10, 15)]}]
    video = assign_calls(_built({"dr": ("Dr Berg", 8, 16)}), routes)
    slots = expected_slots(video, {"a": ORIGIN + timedelta(hours=11, minutes=10)})
    assert slots["a"][0] == ORIGIN + timedelta(hours=11, minutes=10)
    assert slots["b"][0] == slots["a"][1]  # pushed, not overlapping


def test_a_dispatchers_move_waits_for_a_doctor_on_calls(rd, config):
    """Moving a 10-12 nurse visit onto a route when the only doctor on calls starts at 11:30: the visit
    starts at 10:40 so its call begins as the doctor's shift does (at 10:00 it would have none)."""
    from dispatch.builder import build_problem
    from dispatch.steering import Move, apply_move
    built = build_problem(rd.inputs([rd.visit("n1", "10:00", "nurse")],
                                    [rd.shift("nur", role="nurse"),
                                     rd.shift("vdoc", start="11:30", end="13:00", video_calls=True)]),
                          config.visit_types)
    _routes, _pins, solution = apply_move(built, {}, {}, Move("n1", "nur", None, False))
    (step,) = [s for r in solution.routes for s in r.steps if s.type == "job"]
    service = config.visit_types["nurse"].service_minutes * 60
    assert step.arrival + service == 11 * 3600 + 30 * 60
