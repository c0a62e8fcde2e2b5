"""The booking API on the real local stack: service areas, availability, bookings and their rules.

Region-days used here (nobody else books them): stockholm today+1..+6, skane +2."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest

from booking.service import booking_id_for

pytestmark = pytest.mark.stack


def test_service_area_answers_for_open_launching_and_unserved_codes(api):
    r = api.get("/service-areas/111 22")
    assert r.status_code == 200 and r.json()["region"] == "stockholm" and r.json()["bookable"] is True
    r = api.get("/service-areas/41101")
    assert r.status_code == 200 and r.json()["status"] == "launching" and r.json()["bookable"] is False
    r = api.get("/service-areas/98130")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_served"
    assert api.get("/service-areas/abc").json()["error"]["code"] == "invalid_postal_code"


def test_availability_tells_the_truth_about_shifts(hv):
    """No clinician that day: nothing available; a doctor 13-16 can reach the 12 and 14 windows only."""
    day = hv.local_day(6)
    _, tok = hv.patient()
    q = f"/availability?postal_code=11122&date={day}&visit_type=doctor"
    r = hv.api.get(q, tok)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["region"], body["date"], body["visit_type"]) == ("stockholm", day.isoformat(), "doctor")
    assert [w["start"] for w in body["windows"]] == ["08:00", "10:00", "12:00", "14:00", "16:00", "18:00"]
    assert not any(w["available"] for w in body["windows"])
    hv.put_shift("stockholm", day, f"doc-{uuid.uuid4().hex[:6]}", start="13:00", end="16:00")
    got = {w["start"]: w["available"] for w in hv.api.get(q, tok).json()["windows"]}
    assert got == {"08:00": False, "10:00": False, "12:00": True, "14:00": True, "16:00": False, "18:00": False}
    nurse = {w["start"]: w["available"] for w in hv.api.get(q.replace("doctor", "nurse"), tok).json()["windows"]}
    assert not any(nurse.values())


def test_availability_at_the_patients_address_counts_the_drive(hv):
    """A doctor 13-16 based in central Stockholm: the 12 and 14 windows are open at the centre, but
    not for an address in Norrtälje (~100 min away: no window can be reached and left in time)."""
    day = hv.local_day(16)
    _, tok = hv.patient()
    hv.put_shift("stockholm", day, f"doc-{uuid.uuid4().hex[:6]}", start="13:00", end="16:00")
    q = f"/availability?postal_code=11122&date={day}&visit_type=doctor"
    centre = hv.api.get(q, tok).json()
    assert centre["checked_at"] == "region_centre"
    assert [w["start"] for w in centre["windows"] if w["available"]] == ["12:00", "14:00"]
    near = hv.api.get(q + f"&lat={hv.STOCKHOLM['lat'] + 0.01}&lon={hv.STOCKHOLM['lon']}", tok).json()
    assert near["checked_at"] == "address"
    assert [w["start"] for w in near["windows"] if w["available"]] == ["12:00", "14:00"]
    far = hv.api.get(q + "&lat=59.758&lon=18.705", tok).json()
    assert not any(w["available"] for w in far["windows"]), far
    # ... and the booking agrees with what availability said
    r = hv.book(tok, hv.body(day, "14:00", address={"street": "Storgatan 1", "city": "Norrtälje",
                                                     "lat": 59.758, "lon": 18.705}))
    assert r.status_code == 409 and r.json()["error"]["code"] == "window_full", r.text
    for bad in ("&lat=59.3", "&lat=55.6&lon=13.0"):  # half a point; a point in another region
        r = hv.api.get(q + bad, tok)
        assert r.status_code in (400, 422) and r.json()["error"]["code"] in ("invalid_location", "address_outside_region")


def test_windows_that_have_started_are_not_available_today(hv):
    day = hv.local_day(0)
    hv.put_shift("stockholm", day, f"doc-{uuid.uuid4().hex[:6]}", start="08:00", end="20:00")
    _, tok = hv.patient()
    now_local = hv.now().astimezone(__import__("zoneinfo").ZoneInfo("Europe/Stockholm"))
    for w in hv.api.get(f"/availability?postal_code=11122&date={day}&visit_type=doctor", tok).json()["windows"]:
        started = now_local.strftime("%H:%M") >= w["start"]
        if started:
            assert w["available"] is False


@pytest.fixture(scope="module")
def open_day(hv):
    """stockholm, two days ahead: two doctors and a nurse all day."""
    day = hv.local_day(2)
    for cid, role in (("sthlm-d1", "doctor"), ("sthlm-d2", "doctor"), ("sthlm-n1", "nurse")):
        hv.put_shift("stockholm", day, f"{cid}-{day}", role=role)
    return day


def test_a_booking_is_held_with_its_fee_and_only_its_patient_sees_it(hv, open_day):
    sub, tok = hv.patient()
    key = str(uuid.uuid4())
    body = hv.body(open_day, "10:00")
    r = hv.book(tok, body, key)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["status"] == "held" and b["fee"] == {"amount": 35000, "currency": "SEK", "reason": "standard"}
    assert (b["region"], b["date"], b["window_start"], b["window_end"], b["visit_type"]) == \
        ("stockholm", open_day.isoformat(), "10:00", "12:00", "doctor")
    assert b["hold_expires_at"] and b["id"] == booking_id_for(sub, key)
    assert "personal_number" not in r.text and "Hosta" not in r.text
    assert [x["id"] for x in hv.api.get("/bookings", tok).json()["bookings"]] == [b["id"]]
    assert hv.api.get(f"/bookings/{b['id']}", tok).json()["id"] == b["id"]
    _, other = hv.patient()
    r = hv.api.get(f"/bookings/{b['id']}", other)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert hv.api.get(f"/bookings/bk_{uuid.uuid4().hex}", other).json()["error"]["code"] == "not_found"
    assert hv.api.get("/bookings", other).json() == {"bookings": []}
    assert hv.api.post(f"/bookings/{b['id']}/cancel", other).status_code == 404
    # what was written: the booking, the ledger entry and the symptoms in the clinical table (with a TTL)
    ledger = hv.ledger("stockholm", open_day)
    assert ledger["visits"][b["id"]]["status"] == "held"
    assert any(b["id"] in seq for seq in ledger["routes"].values())
    note = hv.note_item(b["id"])
    assert note["symptoms"]["S"] == "Hosta sedan fyra dagar" and int(note["expires_at"]["N"]) > 0
    item = hv.booking_item(b["id"])
    assert item["patient"]["S"].count(body["patient"]["personal_number"].replace("-", "")) == 1 and "+46701234567" in item["patient"]["S"]


def test_the_same_idempotency_key_never_books_twice(hv, open_day):
    sub, tok = hv.patient()
    key, body = str(uuid.uuid4()), hv.body(open_day, "12:00")
    first = hv.book(tok, body, key)
    again = hv.book(tok, body, key)
    assert first.status_code == 201 and again.status_code in (200, 201)
    assert again.json()["id"] == first.json()["id"]
    other_body = dict(body, window_start="14:00")
    r = hv.book(tok, other_body, key)
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert len(hv.api.get("/bookings", tok).json()["bookings"]) == 1


def _nothing_written(hv, before):
    assert hv.table_counts() == before


@pytest.mark.parametrize("case,change,status,code", [
    ("no key", None, 400, "idempotency_key_required"),
    ("bad personnummer", {"patient": {"personal_number": "19811218-9875", "name": "x", "phone": "+46701234567"}},
     422, "invalid_personal_number"),
    ("landline", {"patient": {"personal_number": "19811218-9876", "name": "x", "phone": "+4687001234"}},
     422, "invalid_phone_number"),
    ("address elsewhere", {"address": {"street": "x", "city": "Malmö", "lat": 55.6, "lon": 13.0}},
     422, "address_outside_region"),
    ("launching region", {"postal_code": "41101"}, 409, "region_not_open"),
    ("not a window", {"window_start": "09:00"}, 400, "invalid_window"),
    ("unknown visit type", {"visit_type": "dentist"}, 400, "invalid_visit_type"),
    ("too long symptoms", {"symptoms": "x" * 2001}, 422, "symptoms_too_long"),
    ("infant", {"for_child": "infant"}, 422, "patient_too_young"),
    ("adult as child", {"for_child": "adult"}, 422, "not_allowed_to_book_for"),
    ("outside horizon", {"date": "+60"}, 422, "outside_booking_horizon"),
    ("unserved postal code", {"postal_code": "98130"}, 404, "not_served"),
    ("schema", {"address": {"street": "x"}}, 400, "invalid_request"),
    ("unknown priority", {"priority": "asap"}, 400, "invalid_request"),
])
def test_every_refusal_is_a_clear_4xx_and_writes_nothing(hv, open_day, case, change, status, code):
    _, tok = hv.patient()
    body = _apply(hv, open_day, change)
    before = hv.table_counts()
    r = hv.api.post("/bookings", tok, body) if case == "no key" else hv.book(tok, body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    assert hv.table_counts() == before
    assert hv.api.get("/bookings", tok).json() == {"bookings": []}


def test_an_urgent_booking_keeps_its_triage_priority(hv, open_day):
    """`priority` is stored on the booking and answered by POST and GET; without it a visit is normal."""
    _, tok = hv.patient()
    r = hv.book(tok, hv.body(open_day, "16:00", priority="urgent"))
    assert r.status_code == 201 and r.json()["priority"] == "urgent", r.text
    bid = r.json()["id"]
    assert hv.api.get(f"/bookings/{bid}", tok).json()["priority"] == "urgent"
    assert hv.booking_item(bid)["priority"] == {"S": "urgent"}
    r = hv.book(tok, hv.body(open_day, "18:00"))
    assert r.status_code == 201 and r.json()["priority"] == "normal", r.text
    assert hv.api.get("/bookings", tok).json()["bookings"][-1]["priority"] == "normal"


def test_a_token_with_an_e_id_personal_number_books_only_for_that_person(hv, open_day):
    """BankID puts the verified personal number in the token: the patient books for themselves or
    their child, never under another adult's number (nothing written)."""
    from devstack.tokens import issue
    from tests.integration.booking.conftest import personnummer
    me, other = personnummer(date(1979, 4, 2)), personnummer(date(1985, 9, 9))
    tok = issue("patient", f"patient-eid-{uuid.uuid4().hex[:8]}", personal_number=me)
    body = hv.body(open_day, "18:00")
    body["patient"]["personal_number"] = other
    before = hv.table_counts()
    r = hv.book(tok, body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_allowed_to_book_for", r.text
    assert hv.table_counts() == before
    body["patient"]["personal_number"] = me.replace("-", "")  # same person, another spelling
    body["for_child"] = {"personal_number": personnummer(date(2019, 6, 1)), "name": "Barn"}
    r = hv.book(tok, body)
    assert r.status_code == 201, r.text


def _apply(hv, open_day, change):
    body = hv.body(open_day, "16:00")
    for k, v in (change or {}).items():
        if k == "for_child":
            born = hv.local_day(-100) if v == "infant" else date(1990, 1, 1)
            from stdnum import luhn
            digits = f"{born:%y%m%d}123"
            body["for_child"] = {"personal_number": f"{born:%Y%m%d}-123{luhn.calc_check_digit(digits)}", "name": "c"}
        elif k == "date":
            body["date"] = hv.local_day(int(v)).isoformat()
        else:
            body[k] = v
    return body


def _child_body(hv, day, window, age_years=5):
    return hv.child_body(day, window, age_years)


def test_a_guardian_books_for_a_child_free_of_charge_and_it_is_confirmed_at_once(hv, open_day):
    _, tok = hv.patient()
    r = hv.book(tok, _child_body(hv, open_day, "18:00"))
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["status"] == "confirmed" and b["fee"]["amount"] == 0 and b["fee"]["reason"] == "under_18"
    assert b["for_child"] == {"name": "Barn"} and b["hold_expires_at"] is None
    assert hv.ledger("stockholm", open_day)["visits"][b["id"]]["status"] == "confirmed"


def test_cancelling_early_is_free_returns_capacity_and_repeats_answer_the_same(hv, open_day):
    _, tok = hv.patient()
    b = hv.book(tok, hv.body(open_day, "08:00")).json()
    assert b["id"] in hv.ledger("stockholm", open_day)["visits"]
    r = hv.api.post(f"/bookings/{b['id']}/cancel", tok, {"reason": "feeling better"})
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["status"] == "cancelled"
    assert c["cancellation"]["fee_decision"] == "free" and c["cancellation"]["fee_amount"] == 0
    assert b["id"] not in hv.ledger("stockholm", open_day)["visits"]
    again = hv.api.post(f"/bookings/{b['id']}/cancel", tok)
    assert again.status_code == 200 and again.json()["cancellation"] == c["cancellation"]


def _window_within_24h(hv):
    """A window that starts within the next 24 hours (today or tomorrow), not yet started."""
    from zoneinfo import ZoneInfo
    now = hv.now()
    tz = ZoneInfo("Europe/Stockholm")
    for days in (0, 1):
        d = now.astimezone(tz).date() + timedelta(days=days)
        for h in (8, 10, 12, 14, 16, 18):
            start = datetime(d.year, d.month, d.day, h, tzinfo=tz)
            if now + timedelta(minutes=5) < start < now + timedelta(hours=23):
                return d, f"{h:02d}:00"
    raise AssertionError("no window within 24 h")


def test_cancelling_a_confirmed_visit_within_24_hours_costs_the_late_fee(hv):
    day, window = _window_within_24h(hv)
    hv.put_shift("stockholm", day, f"late-d-{uuid.uuid4().hex[:4]}")
    _, tok = hv.patient()
    r = hv.book(tok, _child_body(hv, day, window))
    assert r.status_code == 201, r.text
    c = hv.api.post(f"/bookings/{r.json()['id']}/cancel", tok).json()
    assert c["cancellation"]["fee_decision"] == "late" and c["cancellation"]["fee_amount"] == 40000
    assert c["cancellation"]["currency"] == "SEK"


def test_rescheduling_moves_the_capacity_between_days_in_one_step(hv, open_day):
    target = hv.local_day(3)
    hv.put_shift("stockholm", target, f"resched-d-{target}")
    _, tok = hv.patient()
    b = hv.book(tok, hv.body(open_day, "14:00")).json()
    r = hv.api.post(f"/bookings/{b['id']}/reschedule", tok, {"date": target.isoformat(), "window_start": "16:00"})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["id"], moved["date"], moved["window_start"], moved["status"]) == \
        (b["id"], target.isoformat(), "16:00", "held")
    assert b["id"] not in hv.ledger("stockholm", open_day)["visits"]
    assert hv.ledger("stockholm", target)["visits"][b["id"]]["starts_at"] == moved["starts_at"]
    again = hv.api.post(f"/bookings/{b['id']}/reschedule", tok, {"date": target.isoformat(), "window_start": "16:00"})
    assert again.status_code == 200 and again.json()["updated_at"] == moved["updated_at"]


def test_rescheduling_to_a_full_window_is_refused_and_changes_nothing(hv):
    day = hv.local_day(4)
    hv.put_shift("stockholm", day, f"tiny-{day}", start="08:00", end="10:00")
    _, tok = hv.patient()
    first = hv.book(tok, hv.body(day, "08:00"))
    assert first.status_code == 201, first.text
    booked = hv.ledger("stockholm", day)
    _, tok2 = hv.patient()
    other_day = hv.local_day(3)
    b2 = hv.book(tok2, hv.body(other_day, "10:00")).json()
    r = hv.api.post(f"/bookings/{b2['id']}/reschedule", tok2, {"date": day.isoformat(), "window_start": "10:00"})
    assert r.status_code in (409, 422), r.text
    assert hv.ledger("stockholm", day) == booked
    assert hv.api.get(f"/bookings/{b2['id']}", tok2).json()["date"] == other_day.isoformat()


def test_rescheduling_a_confirmed_visit_within_24_hours_is_refused(hv):
    day, window = _window_within_24h(hv)
    hv.put_shift("stockholm", day, f"late-r-{uuid.uuid4().hex[:4]}")
    _, tok = hv.patient()
    b = hv.book(tok, _child_body(hv, day, window)).json()
    r = hv.api.post(f"/bookings/{b['id']}/reschedule", tok,
                    {"date": hv.local_day(5).isoformat(), "window_start": "10:00"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_late_to_reschedule"


def test_a_shift_change_that_would_strand_bookings_is_refused(hv):
    day = hv.local_day(18)  # a day of its own: another clinician there could take the booking
    cid = f"strand-{day}"
    hv.put_shift("stockholm", day, cid, start="08:00", end="16:00")
    _, tok = hv.patient()
    assert hv.book(tok, hv.body(day, "14:00")).status_code == 201
    before = hv.ledger("stockholm", day)
    r = hv.put_shift("stockholm", day, cid, start="08:00", end="12:00", expect=409)
    assert r.json()["error"]["code"] == "shift_change_strands_bookings"
    assert hv.ledger("stockholm", day) == before
    hv.put_shift("stockholm", day, cid, start="09:00", end="17:00")  # still serves it: accepted
    shifts = hv.api.get(f"/regions/stockholm/shifts/{day}", hv.dispatcher("stockholm")).json()
    assert [s["start"] for s in shifts["shifts"] if s["clinician_id"] == cid] == ["09:00"]


def test_only_the_regions_dispatcher_sets_its_shifts(hv):
    day = hv.local_day(5)
    body = {"role": "doctor", "start": "08:00", "end": "16:00", "start_location": {"lat": 59.33, "lon": 18.06}}
    r = hv.api.put(f"/regions/stockholm/clinicians/x/shifts/{day}", hv.dispatcher("skane"), body)
    assert r.status_code == 403
    _, tok = hv.patient()
    assert hv.api.put(f"/regions/stockholm/clinicians/x/shifts/{day}", tok, body).status_code == 403
    assert hv.api.get(f"/regions/stockholm/shifts/{day}", tok).status_code == 403


def test_an_expired_hold_gives_its_capacity_back(hv, moved_clock):
    """The every-minute job marks an unpaid hold `expired` and frees its place in the ledger."""
    from homevisits.regions import load_config
    day = hv.local_day(2)
    hv.put_shift("skane", day, f"exp-{day}", where=hv.MALMO)
    _, tok = hv.patient()
    r = hv.book(tok, hv.body(day, "12:00", where=hv.MALMO))
    assert r.status_code == 201, r.text
    b = r.json()
    assert hv.ledger("skane", day)["visits"][b["id"]]["status"] == "held"
    hold = load_config().booking["hold_minutes"]
    moved_clock(hv.now() + timedelta(minutes=hold + 1))
    result = hv.api.invoke("BookingJobsFunction", {})
    assert result["expired"] >= 1
    again = hv.api.invoke("BookingJobsFunction", {})  # nothing left to do: idempotent
    assert again["expired"] == 0
    assert hv.api.get(f"/bookings/{b['id']}", tok).json()["status"] == "expired"
    assert b["id"] not in hv.ledger("skane", day)["visits"]
    r = hv.api.post(f"/bookings/{b['id']}/cancel", tok)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
