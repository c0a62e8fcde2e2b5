"""The dispatcher steering the plan on the real local stack: move, pin, unpin and unassign a visit
through POST /regions/{region}/plans/{date}/moves; refusals leave the plan as it was."""
from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def day(stack, api, seed, drain):
    """Two doctors and a nurse; doctor visits at 08, 10, 12 and 14, a nurse visit at 10; planned."""
    s = seed.region_day(clinicians={f"doc-a-{uuid.uuid4().hex[:5]}": "doctor", f"doc-b-{uuid.uuid4().hex[:5]}": "doctor",
                                    f"nurse-{uuid.uuid4().hex[:5]}": "nurse"})
    ids = {w: seed.booking(s, w, "doctor", dlat=0.01 * i, dlon=-0.01 * i)
           for i, w in enumerate(["08:00", "10:00", "12:00", "14:00"])}
    ids["nurse"] = seed.booking(s, "10:00", "nurse", dlat=0.02)
    drain(30)
    token = api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", s.region)
    r = api.post(f"/regions/{s.region}/plans/{s.date}/optimize", token, {"time_limit_s": 1})
    assert r.status_code == 200, r.text
    return {"s": s, "ids": ids, "token": token}


def _plan(api, day) -> dict:
    r = api.get(f"/regions/{day['s'].region}/plans/{day['s'].date}", day["token"])
    assert r.status_code == 200, r.text
    return r.json()


def _move(api, day, plan, **body):
    return api.post(f"/regions/{day['s'].region}/plans/{day['s'].date}/moves", day["token"],
                    {"plan_version": plan["version"], **body})


def _where(plan, booking_id):
    for r in plan["routes"]:
        ids = [s["booking_id"] for s in r["stops"]]
        if booking_id in ids:
            return r["clinician_id"], ids.index(booking_id), r["stops"][ids.index(booking_id)]
    return None, None, None


def _doctors(day):
    return sorted(c for c, role in day["s"].clinicians.items() if role == "doctor")


def test_a_pinned_move_lands_where_asked_and_outlives_a_replan(api, day):
    """Moving the 12:00 visit to the other doctor with pin answers the next plan version with it
    there, pinned; a forced re-plan keeps it with that doctor."""
    plan = _plan(api, day)
    bid = day["ids"]["12:00"]
    now_with, _, _ = _where(plan, bid)
    target = next(c for c in _doctors(day) if c != now_with)
    r = _move(api, day, plan, booking_id=bid, clinician_id=target, pin=True)
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["version"] == plan["version"] + 1
    clinician, _, stop = _where(moved, bid)
    assert clinician == target and stop["pinned"] is True
    assert {"booking_id": bid, "clinician_id": target} in moved["pins"]
    assert _plan(api, day)["version"] == moved["version"]  # stored

    r = api.post(f"/regions/{day['s'].region}/plans/{day['s'].date}/optimize", day["token"], {"time_limit_s": 1})
    assert r.status_code == 200, r.text
    assert _where(r.json(), bid)[0] == target

    # unpinned in place: the visit stays where it is, and the pin is gone
    plan = _plan(api, day)
    r = _move(api, day, plan, booking_id=bid, clinician_id=target, pin=False)
    assert r.status_code == 200, r.text
    assert _where(r.json(), bid)[0] == target and r.json()["pins"] == []


def test_a_stale_plan_version_is_refused_and_changes_nothing(api, day):
    plan = _plan(api, day)
    bid = day["ids"]["10:00"]
    r = api.post(f"/regions/{day['s'].region}/plans/{day['s'].date}/moves", day["token"],
                 {"booking_id": bid, "clinician_id": _doctors(day)[0], "plan_version": plan["version"] - 1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "plan_version_conflict", r.text
    assert _plan(api, day)["version"] == plan["version"]


def test_a_move_to_a_clinician_without_the_skill_is_refused(api, day):
    plan = _plan(api, day)
    nurse = next(c for c, role in day["s"].clinicians.items() if role == "nurse")
    r = _move(api, day, plan, booking_id=day["ids"]["08:00"], clinician_id=nurse)
    assert r.status_code == 409 and r.json()["error"]["code"] == "skill_mismatch", r.text
    assert _plan(api, day) == plan


def test_a_position_that_breaks_a_window_is_refused(api, day):
    """The 08:00 visit placed after the 14:00 visit on the same route cannot keep its window."""
    plan = _plan(api, day)
    late_with, late_pos, _ = _where(plan, day["ids"]["14:00"])
    early = day["ids"]["08:00"]
    early_with, _, _ = _where(plan, early)
    position = late_pos + (0 if early_with == late_with else 1)
    r = _move(api, day, plan, booking_id=early, clinician_id=late_with, position=position)
    assert r.status_code == 409 and r.json()["error"]["code"] == "window_missed", r.text
    assert _plan(api, day) == plan


def test_an_unassigned_visit_stays_out_until_moved_back(api, day):
    """Unassigning lists the visit as unassigned by the dispatcher, a re-plan keeps it out, and a
    move puts it back on a route (the best place when no position is given)."""
    plan = _plan(api, day)
    bid = day["ids"]["10:00"]
    r = _move(api, day, plan, booking_id=bid, clinician_id=None)
    assert r.status_code == 200, r.text
    out = r.json()
    assert _where(out, bid)[0] is None
    assert {"booking_id": bid, "reason": "unassigned_by_dispatcher"}.items() <= \
        next(u for u in out["unassigned"] if u["booking_id"] == bid).items()

    r = api.post(f"/regions/{day['s'].region}/plans/{day['s'].date}/optimize", day["token"], {"time_limit_s": 1})
    assert r.status_code == 200 and _where(r.json(), bid)[0] is None, r.text

    plan = _plan(api, day)
    r = _move(api, day, plan, booking_id=bid, clinician_id=_doctors(day)[1])
    assert r.status_code == 200, r.text
    assert _where(r.json(), bid)[0] == _doctors(day)[1]
    assert all(u["booking_id"] != bid for u in r.json()["unassigned"])


def test_only_the_regions_dispatcher_may_move(api, day):
    plan = _plan(api, day)
    other = api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", "skane")
    clinician = api.token("clinician", _doctors(day)[0], day["s"].region)
    for token in (other, clinician):
        r = api.post(f"/regions/{day['s'].region}/plans/{day['s'].date}/moves", token,
                     {"booking_id": day["ids"]["08:00"], "clinician_id": _doctors(day)[0],
                      "plan_version": plan["version"]})
        assert r.status_code == 403, r.text
    assert _plan(api, day)["version"] == plan["version"]
