"""One open booking per person and day, on the real local stack (issue 12, defect 5).

The same person booking the same day twice with two Idempotency-Keys gets 409 `already_booked`
naming the booking they already have; a guardian may still book their child that day; a
cancelled booking frees the day; and concurrent attempts leave exactly one booking.

Region-days used here (nobody else books them): stockholm today+20..+23."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def day(hv):
    d = hv.local_day(20)
    for n in range(3):
        hv.put_shift("stockholm", d, f"pd-doc{n}-{d}")
    return d


def _person_days(hv, day) -> list[dict]:
    """The person-day items of `day` (OpsTable), whoever they belong to."""
    ddb = hv.stack.boto_client("dynamodb")
    items = ddb.scan(TableName="OpsTable", FilterExpression="begins_with(pk, :p) AND sk = :s",
                     ExpressionAttributeValues={":p": {"S": "PERSON#"}, ":s": {"S": f"DAY#{day}"}})["Items"]
    return items


def test_a_second_open_booking_of_the_same_person_and_day_is_refused_with_the_first_ones_id(hv, day):
    _, tok = hv.patient()
    body = hv.body(day, "08:00")
    first = hv.book(tok, body)
    assert first.status_code == 201, first.text
    before = hv.table_counts()
    r = hv.book(tok, dict(body, window_start="14:00"))  # another Idempotency-Key, another window
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "already_booked" and err["details"]["booking_id"] == first.json()["id"]
    assert hv.table_counts() == before
    assert [b["id"] for b in hv.api.get("/bookings", tok).json()["bookings"]] == [first.json()["id"]]


def test_the_same_key_again_answers_the_booking_and_another_account_is_refused_too(hv, day):
    """The person is who the visit is for, not the account: a second account booking the same
    person's day is refused as well."""
    _, tok = hv.patient()
    body, key = hv.body(day, "10:00"), str(uuid.uuid4())
    first = hv.book(tok, body, key)
    assert first.status_code == 201, first.text
    assert hv.book(tok, body, key).json()["id"] == first.json()["id"]
    _, other = hv.patient()
    r = hv.book(other, dict(body, window_start="16:00"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_booked", r.text


def test_a_guardian_may_book_their_child_on_the_day_they_booked_themselves(hv, day):
    from tests.integration.booking.conftest import personnummer
    _, tok = hv.patient()
    body = hv.body(day, "12:00")
    assert hv.book(tok, body).status_code == 201
    child = dict(body, window_start="18:00",
                 for_child={"personal_number": personnummer(date(2018, 3, 3)), "name": "Barn"})
    r = hv.book(tok, child)
    assert r.status_code == 201, r.text
    # ... but not the same child twice
    r = hv.book(tok, dict(child, window_start="16:00"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_booked", r.text


def test_a_cancelled_booking_frees_the_day_for_its_person(hv, day):
    _, tok = hv.patient()
    body = hv.body(day, "14:00")
    first = hv.book(tok, body).json()["id"]
    assert hv.api.post(f"/bookings/{first}/cancel", tok).status_code == 200
    r = hv.book(tok, dict(body, window_start="16:00"))
    assert r.status_code == 201, r.text
    assert r.json()["id"] != first


def test_concurrent_bookings_of_one_person_and_day_leave_exactly_one(hv):
    """Eight requests at once, each with its own key and window: one booking, seven 409s naming it."""
    d = hv.local_day(21)
    hv.put_shift("stockholm", d, f"pd-race-{d}")
    hv.put_shift("stockholm", d, f"pd-race2-{d}")
    _, tok = hv.patient()
    body = hv.body(d, "08:00")
    windows = ["08:00", "10:00", "12:00", "14:00", "16:00", "18:00", "08:00", "10:00"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda w: hv.book_from_thread(tok, dict(body, window_start=w), str(uuid.uuid4())),
                                windows))
    created = [a for a in answers if a.status_code == 201]
    assert len(created) == 1, [(a.status_code, a.text[:120]) for a in answers]
    winner = created[0].json()["id"]
    for a in answers:
        if a.status_code != 201:
            assert a.status_code == 409 and a.json()["error"]["code"] in ("already_booked", "request_in_progress",
                                                                         "busy_try_again"), a.text
    assert sum(a.json()["error"]["code"] == "already_booked" for a in answers if a.status_code == 409) >= 5
    assert all(a.json()["error"].get("details", {}).get("booking_id") == winner
               for a in answers if a.status_code == 409 and a.json()["error"]["code"] == "already_booked")
    open_ones = [i for i in hv.bookings_of_day("stockholm", d) if i["status"]["S"] in ("held", "confirmed")]
    assert [i["booking_id"]["S"] for i in open_ones] == [winner]
    # the person's day item names the winner (other tests' people may book this day too: only the
    # item naming the winner is known to be this person's)
    mine = [i for i in _person_days(hv, d) if i["booking_id"]["S"] == winner]
    assert len(mine) == 1, mine


def test_a_move_onto_a_day_the_person_already_has_a_booking_is_refused(hv):
    """Rescheduling takes the new day's person-day lock too: a person with a booking on day A and
    one on day B cannot move B onto A (409 already_booked naming A's booking); B stays where it was.
    Moving B to a free day C works, and then another booking of that person on B is accepted."""
    a, b, c = hv.local_day(22), hv.local_day(23), hv.local_day(24)
    for d in (a, b, c):
        hv.put_shift("stockholm", d, f"pd-move-{d}-{uuid.uuid4().hex[:4]}")
    _, tok = hv.patient()
    body = hv.body(a, "08:00")
    first = hv.book(tok, body)
    second = hv.book(tok, dict(body, date=b.isoformat(), window_start="10:00"))
    assert first.status_code == 201 and second.status_code == 201, (first.text, second.text)
    first_id, second_id = first.json()["id"], second.json()["id"]

    r = hv.api.post(f"/bookings/{second_id}/reschedule", tok, {"date": a.isoformat(), "window_start": "12:00"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_booked", r.text
    assert r.json()["error"]["details"]["booking_id"] == first_id
    assert hv.api.get(f"/bookings/{second_id}", tok).json()["date"] == b.isoformat()

    r = hv.api.post(f"/bookings/{second_id}/reschedule", tok, {"date": c.isoformat(), "window_start": "12:00"})
    assert r.status_code == 200, r.text
    again = hv.book(tok, dict(body, date=b.isoformat(), window_start="14:00"))
    assert again.status_code == 201, again.text  # day B is free again: its lock names a booking moved away
