"""A limit of open bookings per account and day, on the real local stack (issue 12, defect 4).

One account (the patient signed in) filled a doctor window with 10 "children": a child's visit is
free, so it is confirmed with no card and nothing held it back. Now an account has at most
`booking.max_open_bookings_per_account_day` (3) open bookings a day, whoever they are for: the
next one answers 409 `account_day_limit` and writes nothing (no booking, no capacity taken). A
cancelled booking gives its place back; concurrent bookings cannot together pass the limit.

Region-days used here (nobody else books them): stockholm today+40..+42."""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.stack

LIMIT = 3


def _packaged_limit() -> int:
    from pathlib import Path

    import homevisits.regions as regions
    raw = json.loads((Path(regions.__file__).parent / "config" / "service.json").read_text(encoding="utf-8"))
    return raw["booking"]["max_open_bookings_per_account_day"]


def _account_day(hv, sub: str, day) -> dict | None:
    return hv.stack.boto_client("dynamodb").get_item(
        TableName="OpsTable", Key={"pk": {"S": f"ACCOUNT#{sub}"}, "sk": {"S": f"DAY#{day}"}},
        ConsistentRead=True).get("Item")


def _named(item: dict | None) -> list[str]:
    return [v["S"] for v in (item or {}).get("booking_ids", {}).get("L", [])]


def test_the_packaged_configuration_sets_the_limit():
    assert _packaged_limit() == LIMIT


def test_one_account_booking_ten_children_into_one_window_gets_three(hv):
    """Ten children of one account in one doctor window: the first three are booked (free,
    confirmed), the fourth and every later one answer 409 account_day_limit and write nothing; the
    window would have held them all (another account books it afterwards)."""
    day = hv.local_day(40)
    for n in range(6):
        hv.put_shift("stockholm", day, f"acct-doc{n}-{day}")
    sub, tok = hv.patient()
    answers = []
    for n in range(10):
        if n == LIMIT:
            before = (hv.table_counts(), hv.ledger("stockholm", day))
        answers.append(hv.book(tok, hv.child_body(day, "16:00")))
    created = [a for a in answers[:LIMIT]]
    assert all(a.status_code == 201 for a in created), [a.text for a in created]
    assert all(a.json()["status"] == "confirmed" and a.json()["fee"]["amount"] == 0 for a in created)
    for a in answers[LIMIT:]:
        assert a.status_code == 409, a.text
        err = a.json()["error"]
        assert err["code"] == "account_day_limit", a.text
        assert err["details"] == {"limit": LIMIT, "date": day.isoformat()}
    counts, ledger = before
    assert hv.table_counts() == counts  # no booking, note, idempotency record or ledger shard more
    assert hv.ledger("stockholm", day) == ledger  # no capacity taken, not even a version moved
    ids = sorted(a.json()["id"] for a in created)
    assert sorted(b["id"] for b in hv.api.get("/bookings", tok).json()["bookings"]) == ids
    assert sorted(_named(_account_day(hv, sub, day))) == ids
    # the window had room for more: another account books it
    _, other = hv.patient()
    r = hv.book(other, hv.child_body(day, "16:00"))
    assert r.status_code == 201, r.text


def test_a_cancelled_booking_gives_its_place_back_and_other_days_are_not_counted(hv):
    day, next_day = hv.local_day(41), hv.local_day(42)
    for d in (day, next_day):
        for n in range(2):
            hv.put_shift("stockholm", d, f"acct-free{n}-{d}")
    sub, tok = hv.patient()
    ids = [hv.book(tok, hv.child_body(day, w)).json()["id"] for w in ("08:00", "10:00", "12:00")]
    refused = hv.book(tok, hv.child_body(day, "14:00"))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "account_day_limit", refused.text
    assert hv.book(tok, hv.child_body(next_day, "14:00")).status_code == 201  # a day of its own
    assert hv.api.post(f"/bookings/{ids[0]}/cancel", tok).status_code == 200
    again = hv.book(tok, hv.child_body(day, "14:00"))
    assert again.status_code == 201, again.text
    assert sorted(_named(_account_day(hv, sub, day))) == sorted(ids[1:] + [again.json()["id"]])
    # and the limit holds again
    r = hv.book(tok, hv.child_body(day, "16:00"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "account_day_limit", r.text


def test_a_reschedule_onto_a_full_day_of_the_account_is_refused(hv):
    """Moving a booking onto a day where the account already has the limit is refused too (it
    would pass the limit by the back door), and the booking stays where it was."""
    day, other_day = hv.local_day(41), hv.local_day(42)
    _, tok = hv.patient()
    for w in ("08:00", "10:00", "12:00"):
        assert hv.book(tok, hv.child_body(day, w)).status_code == 201
    moving = hv.book(tok, hv.child_body(other_day, "08:00"))
    assert moving.status_code == 201, moving.text
    bid = moving.json()["id"]
    r = hv.api.post(f"/bookings/{bid}/reschedule", tok, {"date": day.isoformat(), "window_start": "16:00"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "account_day_limit", r.text
    assert hv.api.get(f"/bookings/{bid}", tok).json()["date"] == other_day.isoformat()


def test_concurrent_bookings_of_one_account_cannot_pass_the_limit(hv):
    """Eight children of one account booked at once, each with its own key: exactly three commit;
    the others answer 409 (account_day_limit, or request_in_progress / busy_try_again)."""
    day = hv.local_day(40)
    sub, tok = hv.patient()
    bodies = [hv.child_body(day, w) for w in ("08:00", "10:00", "12:00", "14:00", "18:00", "08:00", "10:00", "12:00")]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda b: hv.book_from_thread(tok, b, str(uuid.uuid4())), bodies))
    created = [a for a in answers if a.status_code == 201]
    assert len(created) == LIMIT, [(a.status_code, a.text[:120]) for a in answers]
    for a in answers:
        if a.status_code != 201:
            assert a.status_code == 409 and a.json()["error"]["code"] in ("account_day_limit", "busy_try_again"), a.text
    assert sum(a.status_code == 409 and a.json()["error"]["code"] == "account_day_limit" for a in answers) >= 3
    ids = sorted(a.json()["id"] for a in created)
    assert sorted(b["id"] for b in hv.api.get("/bookings", tok).json()["bookings"]) == ids
    assert sorted(_named(_account_day(hv, sub, day))) == ids
