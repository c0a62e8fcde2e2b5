"""homevisits.lifecycle, as payments and the expiry job call it (in-process, on the local stack).

Region-days used here: skane today+4."""
from __future__ import annotations

from datetime import timedelta

import pytest

from homevisits.clock import SystemClock
from homevisits.errors import InvalidTransition, WindowFull

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def day(hv):
    d = hv.local_day(4)
    hv.put_shift("skane", d, f"life-{d}", start="08:00", end="10:00", where=hv.MALMO)
    return d


def test_a_declined_card_cancels_the_hold_and_frees_its_place_once(hv, day):
    from homevisits.lifecycle import release_booking
    _, tok = hv.patient()
    b = hv.book(tok, hv.body(day, "08:00", where=hv.MALMO)).json()
    now = SystemClock().now()
    got = release_booking(b["id"], "cancelled", reason="payment_declined", now=now)
    assert got.status == "cancelled" and got.status_reason == "payment_declined"
    assert b["id"] not in hv.ledger("skane", day)["visits"]
    version = hv.ledger("skane", day)["version"]
    again = release_booking(b["id"], "cancelled", reason="payment_declined", now=now)
    assert again.status == "cancelled" and hv.ledger("skane", day)["version"] == version
    with pytest.raises(InvalidTransition):
        release_booking(b["id"], "expired", reason="hold_expired", now=now)


def test_confirming_a_held_booking_tells_the_ledger(hv, day):
    from homevisits.lifecycle import confirm_booking
    _, tok = hv.patient()
    b = hv.book(tok, hv.body(day, "08:00", where=hv.MALMO)).json()
    got = confirm_booking(b["id"], now=SystemClock().now(), extra={"payment_status": "authorized"})
    assert (got.status, got.payment_status, got.hold_expires_at) == ("confirmed", "authorized", None)
    entry = hv.ledger("skane", day)["visits"][b["id"]]
    assert entry["status"] == "confirmed" and entry["hold_expires_at"] is None
    assert confirm_booking(b["id"], now=SystemClock().now()).status == "confirmed"


def test_confirming_after_the_hold_expired_rechecks_the_fit(hv):
    """Once a hold ran out its place may be given away: a late confirmation is refused, writing nothing."""
    import uuid

    from booking import service
    from booking.schemas import BookingRequest
    from homevisits.auth import Caller
    from homevisits.clock import FixedClock
    from homevisits.lifecycle import confirm_booking
    from homevisits.regions import load_config
    d = hv.local_day(6)
    hv.put_shift("skane", d, f"life-late-{d}", start="08:00", end="10:00", where=hv.MALMO)
    _, tok = hv.patient()
    r = hv.book(tok, hv.body(d, "08:00", where=hv.MALMO))
    assert r.status_code == 201, r.text
    later = SystemClock().now() + timedelta(minutes=load_config().booking["hold_minutes"] + 1)
    ctx = service.Context(load_config(), FixedClock(later), lambda *a: None)
    taken = 0
    with pytest.raises(WindowFull):
        for _ in range(10):  # others book while the first hold has expired, until the day is full
            service.create_booking(ctx, Caller(f"p-{uuid.uuid4().hex[:6]}", "patient"),
                                   BookingRequest.model_validate(hv.body(d, "08:00", where=hv.MALMO)),
                                   f"bk_test_{uuid.uuid4().hex}")
            taken += 1
    assert taken >= 1
    before = hv.ledger("skane", d)
    with pytest.raises(WindowFull):
        confirm_booking(r.json()["id"], now=later + timedelta(minutes=1))
    assert hv.ledger("skane", d) == before
    assert hv.api.get(f"/bookings/{r.json()['id']}", tok).json()["status"] == "held"


@pytest.mark.parametrize("offset_ms, decision", [(-1, "free"), (0, "free"), (1, "late")])
def test_the_24_hour_boundary_is_decided_to_the_millisecond_and_stored_as_decided(hv, offset_ms, decision):
    """A cancellation exactly 24 h before the window starts is free; 1 ms later it is late; and the
    stored instant says the same as the decision (issue 12, defect 9: times were cut to whole
    seconds, so one stored at exactly −24 h had been charged as late)."""
    from booking import service
    from homevisits.auth import Caller
    from homevisits.clock import FixedClock, parse_utc
    from homevisits.lifecycle import confirm_booking
    from homevisits.regions import load_config
    d = hv.local_day(5)
    hv.put_shift("skane", d, f"edge-{d}-{offset_ms}", start="08:00", end="10:00", where=hv.MALMO)
    sub, tok = hv.patient()
    r = hv.book(tok, hv.body(d, "08:00", where=hv.MALMO))
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    confirm_booking(bid, now=SystemClock().now(), extra={"payment_status": "authorized"})
    boundary = parse_utc(r.json()["starts_at"]) - timedelta(hours=24)
    # 0.4 ms more than the offset: a whole-second (or whole-millisecond) cut must not move the decision.
    at = boundary + timedelta(milliseconds=offset_ms, microseconds=400 if offset_ms < 0 else 0)
    ctx = service.Context(load_config(), FixedClock(at), lambda *a: None)
    got = service.cancel_booking(ctx, Caller(sub, "patient"), bid, "changed plans")
    record = got["cancellation"]
    assert record["fee_decision"] == decision
    assert record["fee_amount"] == (40000 if decision == "late" else 0)
    stored = parse_utc(record["at"])
    assert (stored <= boundary) == (decision == "free")  # the evidence agrees with the decision
    assert abs((stored - at).total_seconds()) < 0.001
