"""Erasure never rewrites history (issue 12, defect 7), on the real local stack.

A completed visit and a no-show are facts of their day: they stay in the plan where they
happened, locked, through re-plans and after their patients erased their data; a past day is
never re-planned at all."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.dispatch.conftest import CENTER, Seeded, seed_booking, seed_region_day, settle

pytestmark = pytest.mark.stack
FAST = {"time_limit_s": 1}


def _finish(bid: str, status: str, clinician: str) -> None:
    from homevisits.persistence.booking import BookingModel
    b = BookingModel.get(bid, consistent_read=True)
    b.update(actions=[BookingModel.status.set(status), BookingModel.clinician_id.set(clinician)])


def _stops(plan: dict) -> dict:
    return {r["clinician_id"]: [s["booking_id"] for s in r["stops"]] for r in plan["routes"]}


def test_finished_visits_stay_in_the_plan_after_their_patients_erase_their_data(api):
    doc = f"doc-{uuid.uuid4().hex[:6]}"
    s = seed_region_day(clinicians={doc: "doctor"})
    done = seed_booking(s, "08:00", dlat=0.01)
    missed = seed_booking(s, "10:00", dlat=-0.01)
    upcoming = seed_booking(s, "14:00", dlon=0.01)
    dispatcher = api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", s.region)
    path = f"/regions/{s.region}/plans/{s.date}/optimize"
    settle(api, 30)
    r = api.post(path, dispatcher, json=FAST)
    assert r.status_code == 200, r.text
    _finish(done, "completed", doc)
    _finish(missed, "no_show", doc)
    settle(api, 30)
    before = api.post(path, dispatcher, json=FAST).json()
    assert _stops(before)[doc][:2] == [done, missed] and upcoming in _stops(before)[doc], before
    assert before["unassigned"] == []

    for bid in (done, missed):
        r = api.post("/me/erasure", api.token("patient", s.bookings[bid]["patient_sub"]))
        assert r.status_code == 200 and r.json()["erased"] == [bid], r.text
    settle(api, 30)
    after = api.post(path, dispatcher, json=FAST).json()
    assert after["unassigned"] == [], after["unassigned"]
    assert _stops(after)[doc][:2] == [done, missed] and upcoming in _stops(after)[doc]
    placed = {st["booking_id"]: st["address"] for r in after["routes"] for st in r["stops"]}
    assert (placed[done]["lat"], placed[missed]["lat"]) == (CENTER[0] + 0.01, CENTER[0] - 0.01)
    assert placed[done]["street"] is None  # the plan keeps where, not who or which street
    again = api.post(path, dispatcher, json=FAST).json()  # and the next re-plan still finds them there
    assert _stops(again)[doc][:2] == [done, missed] and again["unassigned"] == []


def test_a_past_day_is_never_re_planned(api):
    """Yesterday's plan stays as it was: optimize answers 409 day_over and a booking change of that
    day leaves the stored plan untouched."""
    from homevisits.persistence.ledger import read_day, save_day
    doc = f"doc-{uuid.uuid4().hex[:6]}"
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=2)
    s = Seeded("stockholm", yesterday, {doc: "doctor"})
    ledger = read_day(s.region_day)
    ledger.shifts = {doc: {"role": "doctor", "start": "08:00", "end": "17:00",
                           "start_location": {"lat": CENTER[0], "lon": CENTER[1]}}}
    assert save_day(ledger)
    bid = seed_booking(s, "10:00", status="completed")
    _finish(bid, "completed", doc)
    dispatcher = api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", s.region)
    settle(api, 30)
    r = api.post(f"/regions/{s.region}/plans/{s.date}/optimize", dispatcher, json=FAST)
    assert r.status_code == 409 and r.json()["error"]["code"] == "day_over", r.text
    r = api.post("/me/erasure", api.token("patient", s.bookings[bid]["patient_sub"]))
    assert r.status_code == 200
    settle(api, 30)
    from homevisits.persistence.dispatch import PlanModel
    assert PlanModel.count(s.region_day) == 0  # nothing was planned after the fact
