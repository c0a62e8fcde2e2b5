"""A self-declared frikort is marked unverified and shown to the dispatcher, on the real local stack
(issue 12, defect 4).

A frikort the patient types in makes a doctor visit free at once, with no card. The booking now
keeps `frikort.declared: true, verified: false`, and the day's plan (`GET /regions/{r}/plans/{d}`)
shows each such stop with `frikort: {"declared": true, "verified": false}` (never the card's
number), so the dispatcher can see which free visits rest on the patient's word alone.

Region-day used here (nobody else books it): stockholm today+43."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.stack

FRIKORT_NUMBER = "FK-7788-1234"


def test_a_self_declared_frikort_is_stored_unverified_and_the_plan_shows_it(hv):
    day = hv.local_day(43)
    hv.put_shift("stockholm", day, f"frikort-doc-{day}")
    _, tok = hv.patient()
    frikort = {"number": FRIKORT_NUMBER, "valid_until": (day.replace(year=day.year + 1)).isoformat(),
               "region": "stockholm"}
    declared = hv.book(tok, hv.body(day, "10:00", frikort=frikort))
    assert declared.status_code == 201, declared.text
    assert declared.json()["fee"] == {"amount": 0, "currency": "SEK", "reason": "frikort"}
    assert declared.json()["status"] == "confirmed"
    child = hv.book(tok, hv.child_body(day, "14:00"))  # free too, but by age: nothing to verify
    assert child.status_code == 201, child.text
    fid, cid = declared.json()["id"], child.json()["id"]

    stored = json.loads(hv.booking_item(fid)["frikort"]["S"])
    assert stored["declared"] is True and stored["verified"] is False and stored["number"] == FRIKORT_NUMBER
    assert "frikort" not in hv.booking_item(cid) or hv.booking_item(cid)["frikort"].get("NULL")

    dispatcher = hv.dispatcher("stockholm")
    r = hv.api.post(f"/regions/stockholm/plans/{day}/optimize", dispatcher, {"time_limit_s": 1})
    assert r.status_code == 200, r.text
    plan = hv.api.get(f"/regions/stockholm/plans/{day}", dispatcher)
    assert plan.status_code == 200, plan.text
    visits = {s["booking_id"]: s for rt in plan.json()["routes"] for s in rt["stops"]}
    visits.update({u["booking_id"]: u for u in plan.json()["unassigned"]})
    assert visits[fid]["frikort"] == {"declared": True, "verified": False}
    assert visits[cid]["frikort"] is None
    assert FRIKORT_NUMBER not in plan.text  # the dispatcher needs the mark, not the card's number
