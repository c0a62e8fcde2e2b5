"""Nurse visit + digital doctor on the real local stack: the dispatcher declares doctors on video
calls through the shifts API, each plan names a doctor and a slot for every nurse visit's call, and
the nurse, the doctor, the dispatcher and the patient see the same call."""
from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.stack


def _doctor_shift(name: str, start: str, end: str) -> dict:
    return {"role": "doctor", "video_calls": True, "start": start, "end": end, "name": name}


def test_nurse_and_doctor_see_the_same_call_slot(api, seed, drain):
    """Two nurses' visits in the same window, two doctors on calls: every call gets a named doctor
    inside their shift, no doctor holds two calls at once, and the nurse's route, the doctor's
    calendar, the dispatcher's plan and the patient's booking agree on who and when."""
    nurses = {f"nurse-{uuid.uuid4().hex[:6]}": "nurse" for _ in range(2)}
    s = seed.region_day(clinicians=nurses)
    visits = [seed.booking(s, "10:00", "nurse", dlat=0.01 * i, dlon=-0.01 * i) for i in range(4)]
    dispatcher = api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", s.region)
    doctors = {f"vdoc-{uuid.uuid4().hex[:6]}": ("Dr Alva Berg", "09:00", "13:00"),
               f"vdoc-{uuid.uuid4().hex[:6]}": ("Dr Omar Lind", "10:00", "17:00")}
    for cid, (name, start, end) in doctors.items():
        r = api.put(f"/regions/{s.region}/clinicians/{cid}/shifts/{s.date}", dispatcher, _doctor_shift(name, start, end))
        assert r.status_code == 200, r.text
        assert next(x for x in r.json()["shifts"] if x["clinician_id"] == cid)["video_calls"] is True
    drain(30)
    r = api.post(f"/regions/{s.region}/plans/{s.date}/optimize", dispatcher, {"time_limit_s": 3})
    assert r.status_code == 200, r.text
    plan = r.json()
    stops = {st["booking_id"]: (rt["clinician_id"], st) for rt in plan["routes"] for st in rt["stops"]}
    assert set(stops) == set(visits)
    assert plan["video_calls"]["unassigned"] == []
    assert not any(rt["clinician_id"] in doctors for rt in plan["routes"])  # no route for a doctor on calls
    calendars = {d["clinician_id"]: d for d in plan["video_calls"]["doctors"]}
    assert set(calendars) == set(doctors)
    for cid, d in calendars.items():
        calls = d["calls"]
        assert all(d["shift_start"] <= c["start"] and c["end"] <= d["shift_end"] for c in calls)
        assert all(a["end"] <= b["start"] for a, b in zip(calls, calls[1:])), "a doctor holds two calls at once"
    for bid, (_, st) in stops.items():
        vc = st["video_call"]
        assert vc["doctor_id"] in doctors and vc["doctor_name"] == doctors[vc["doctor_id"]][0]
        assert any(c["booking_id"] == bid and c["start"] == vc["start"] for c in calendars[vc["doctor_id"]]["calls"])

    # the nurse's phone and the doctor's calendar show the same slot
    bid = visits[0]
    nurse_id, st = stops[bid]
    doctor_id = st["video_call"]["doctor_id"]
    mine = api.get(f"/me/route?date={s.date}", api.token("clinician", nurse_id, s.region))
    assert mine.status_code == 200, mine.text
    nurse_stop = next(x for x in mine.json()["stops"] if x["booking_id"] == bid)
    assert nurse_stop["video_call"]["doctor_name"] == doctors[doctor_id][0]
    theirs = api.get(f"/me/route?date={s.date}", api.token("clinician", doctor_id, s.region))
    assert theirs.status_code == 200, theirs.text
    body = theirs.json()
    assert body["stops"] == []
    call = next(c for c in body["video_calls"] if c["booking_id"] == bid)
    assert (call["start"], call["end"]) == (nurse_stop["video_call"]["start"], nurse_stop["video_call"]["end"])
    assert call["expected_start"] == nurse_stop["video_call"]["expected_start"]
    assert call["nurse_id"] == nurse_id and call["patient"]["name"] == "Anna Andersson"
    # the patient sees the doctor's name and when the call is expected
    patient = api.token("patient", s.bookings[bid]["patient_sub"])
    mine = api.get(f"/bookings/{bid}", patient)
    assert mine.status_code == 200, mine.text
    assert mine.json()["video_call"]["doctor_name"] == doctors[doctor_id][0]
    assert mine.json()["video_call"]["start"] <= call["expected_start"]  # a push by the doctor's previous call aside


def test_a_call_no_doctor_can_take_is_flagged_and_the_visit_left_out(api, seed, drain):
    """One doctor on calls 15:00-16:00 only: the nurse visit of the 08-10 window cannot end with a call
    then, so it is not routed (no_remote_doctor); the 14-16 visit is, its call inside the shift."""
    s = seed.region_day(clinicians={f"nurse-{uuid.uuid4().hex[:6]}": "nurse"})
    early = seed.booking(s, "08:00", "nurse", dlat=0.01)
    later = seed.booking(s, "14:00", "nurse", dlat=-0.01)
    dispatcher = api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", s.region)
    doc = f"vdoc-{uuid.uuid4().hex[:6]}"
    r = api.put(f"/regions/{s.region}/clinicians/{doc}/shifts/{s.date}", dispatcher,
                _doctor_shift("Dr Kim Ek", "15:00", "16:00"))
    assert r.status_code == 200, r.text
    drain(30)
    r = api.post(f"/regions/{s.region}/plans/{s.date}/optimize", dispatcher, {"time_limit_s": 2})
    assert r.status_code == 200, r.text
    plan = r.json()
    left = {u["booking_id"]: u["reason"] for u in plan["unassigned"]}
    assert left.get(early) == "no_remote_doctor"
    (st,) = [x for rt in plan["routes"] for x in rt["stops"]]
    assert st["booking_id"] == later and st["video_call"]["doctor_id"] == doc
    d = plan["video_calls"]["doctors"][0]
    assert d["shift_start"] <= st["video_call"]["start"] and st["video_call"]["end"] <= d["shift_end"]


@pytest.mark.parametrize("body, code", [
    ({"role": "nurse", "video_calls": True, "start": "08:00", "end": "12:00"}, "invalid_shift"),
    ({"role": "doctor", "start": "08:00", "end": "12:00"}, "invalid_shift"),  # a route needs its start
])
def test_bad_video_call_shifts_are_refused_and_nothing_is_written(api, seed, body, code):
    """Only a doctor goes on video calls; a shift with a route needs its start_location (400)."""
    s = seed.region_day(clinicians={f"nurse-{uuid.uuid4().hex[:6]}": "nurse"})
    dispatcher = api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", s.region)
    cid = f"x-{uuid.uuid4().hex[:6]}"
    r = api.put(f"/regions/{s.region}/clinicians/{cid}/shifts/{s.date}", dispatcher, body)
    assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
    shifts = api.get(f"/regions/{s.region}/shifts/{s.date}", dispatcher).json()["shifts"]
    assert cid not in {x["clinician_id"] for x in shifts}
