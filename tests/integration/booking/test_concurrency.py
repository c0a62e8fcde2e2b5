"""The capacity invariant under concurrency: parallel bookings of one region-day never overbook.

Region-days used here: skane today+9, stockholm today+10."""
from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from booking.service import booking_id_for
from homevisits.capacity import Plan, Route, check, day_from_ledger, violations
from homevisits.regions import load_config

pytestmark = pytest.mark.stack


def _independent_plan_check(hv, region_id: str, day: date, accepted_ids: set[str], own_ids: set[str] | None = None):
    """Rebuild the day from what DynamoDB holds and re-check the stored routes from scratch.

    Other test modules of the session may book the same region-day (the stack is shared): the
    answers are compared with this test's own bookings, the ledger and routes with all of them."""
    region = load_config().region(region_id)
    ledger = hv.ledger(region_id, day)
    items = {i["booking_id"]["S"]: i for i in hv.bookings_of_day(region_id, day)}
    live = {bid for bid, i in items.items() if i["status"]["S"] in ("held", "confirmed")}
    own = own_ids if own_ids is not None else set(items)
    assert live & own == accepted_ids, "booking items and successful answers disagree"
    assert set(ledger["visits"]) == live, "the ledger and the booking items disagree"
    accepted_ids = live
    for bid in accepted_ids:  # the ledger's routing copy matches the booking item
        assert ledger["visits"][bid]["starts_at"] == items[bid]["starts_at"]["S"]
    d = day_from_ledger(ledger["shifts"], ledger["visits"], day=day, tz=region.tz,
                        remote_doctors=region.remote_doctors, travel=region.travel, counted=lambda *_: True)
    # The stored routes (the proof) re-simulated must serve every accepted visit, and that schedule
    # must pass the independent checker.
    plan = check(d, None, ledger["routes"], allow_rebuild=False)
    assert plan is not None, "the stored routes no longer serve the accepted visits"
    assert violations(d, plan) == []
    assert sorted(v for seq in plan.sequences().values() for v in seq) == sorted(accepted_ids)


def _book_all_at_once(hv, jobs):
    """[(job, response)] for (sub, token, key, body) jobs, every POST /bookings released at once."""
    barrier = threading.Barrier(len(jobs))

    def go(job):
        sub, tok, key, body = job
        barrier.wait()
        return job, hv.book_from_thread(tok, body, key)

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(go, jobs))


def test_thirty_parallel_bookings_of_one_day_never_overbook(hv):
    """2 doctors for 4 hours, 30 patients at once: the accepted ones fit, the others wrote nothing."""
    day = hv.local_day(9)
    for cid in ("skane-c1", "skane-c2"):
        hv.put_shift("skane", day, f"{cid}-{day}", start="08:00", end="12:00", where=hv.MALMO)
    rnd = random.Random(7)
    jobs = []
    for i in range(30):
        sub = f"patient-conc-{uuid.uuid4().hex[:8]}"
        key = str(uuid.uuid4())
        # 30 different people (one person has one open booking a day)
        body = hv.body(day, rnd.choice(["08:00", "10:00"]), where=hv.MALMO, jitter=0.04, rnd=rnd,
                       born=date(1950, 1, 1) + timedelta(days=400 * i))
        jobs.append((sub, hv.api.token("patient", sub), key, body))
    results = _book_all_at_once(hv, jobs)
    accepted, refused = set(), []
    for (sub, _tok, key, _body), r in results:
        if r.status_code == 201:
            accepted.add(r.json()["id"])
        else:
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] in ("window_full", "busy_try_again")
            refused.append(booking_id_for(sub, key))
    assert 1 <= len(accepted) < 30, (len(accepted), [r.status_code for _, r in results])
    for bid in refused:  # a refusal left no trace
        assert hv.booking_item(bid) is None and hv.note_item(bid) is None
    _independent_plan_check(hv, "skane", day, accepted, {booking_id_for(sub, key) for sub, _t, key, _b in jobs})


def test_concurrent_repeats_of_one_idempotency_key_make_one_booking(hv):
    """Ten simultaneous sends of the same request: one booking; the others see it or are told to retry."""
    day = hv.local_day(10)
    hv.put_shift("stockholm", day, f"idem-{day}")
    sub, tok = hv.patient()
    key, body = str(uuid.uuid4()), hv.body(day, "12:00")
    barrier = threading.Barrier(10)

    def go(_):
        barrier.wait()
        return hv.book_from_thread(tok, body, key)

    with ThreadPoolExecutor(10) as pool:
        rs = list(pool.map(go, range(10)))
    ok = [r for r in rs if r.status_code in (200, 201)]
    busy = [r for r in rs if r.status_code == 409]
    assert len(ok) + len(busy) == 10 and ok
    assert {r.json()["id"] for r in ok} == {booking_id_for(sub, key)}
    for r in busy:
        assert r.json()["error"]["code"] == "request_in_progress" and r.headers.get("retry-after")
    assert hv.book(tok, body, key).json()["id"] == booking_id_for(sub, key)
    assert len(hv.api.get("/bookings", tok).json()["bookings"]) == 1
    assert [i["booking_id"]["S"] for i in hv.bookings_of_day("stockholm", day)] == [booking_id_for(sub, key)]


def _seed_big_day(hv, region_id: str, day: date, visits: int, seed: int) -> dict:
    """A region-day already holding `visits` confirmed doctor visits (devstack.scale_data), stored
    straight into the ledger: far more than booking them one by one through the API would allow here."""
    from devstack.scale_data import generate_day, seed_day
    region = load_config().region(region_id)
    shifts, seeded, routes = generate_day(region, day, visits, 8, seed)
    seed_day(f"{region_id}#{day}", shifts, seeded, routes)
    return seeded


def _stored_routes_prove_the_day(hv, region_id: str, day: date) -> dict:
    """The merged shards re-simulated from scratch serve every visit they hold (independent checker)."""
    region = load_config().region(region_id)
    ledger = hv.ledger(region_id, day)
    d = day_from_ledger(ledger["shifts"], ledger["visits"], day=day, tz=region.tz,
                        remote_doctors=region.remote_doctors, travel=region.travel, counted=lambda *_: True)
    plan = check(d, None, ledger["routes"], allow_rebuild=False)
    assert plan is not None, "the stored routes no longer serve the accepted visits"
    assert violations(d, plan) == []
    assert sorted(v for seq in plan.sequences().values() for v in seq) == sorted(ledger["visits"])
    return ledger


def test_a_day_past_one_items_400_kb_still_takes_bookings(hv):
    """1 400 visits (~440 KB as one item, which DynamoDB refuses) are stored as route shards, and the
    next booking is accepted with the day still provably servable."""
    day = hv.local_day(7)
    seeded = _seed_big_day(hv, "skane", day, 1400, 1)
    assert len(seeded) == 1400
    sub, tok = hv.patient()
    r = hv.book(tok, hv.body(day, "14:00", where=hv.MALMO, jitter=0.02))
    assert r.status_code == 201, r.text
    ledger = _stored_routes_prove_the_day(hv, "skane", day)
    assert r.json()["id"] in ledger["visits"] and len(ledger["visits"]) == 1401
    assert ledger["shards"] >= 1400 // 8


def test_twenty_bookers_at_once_on_a_busy_day_are_never_told_busy(hv):
    """400 visits booked, then 20 patients at once: none is told `busy_try_again`, each accepted
    booking changed exactly one route's shard, refusals wrote nothing, the day stays servable."""
    day = hv.local_day(11)
    _seed_big_day(hv, "skane", day, 400, 2)
    before = hv.ledger("skane", day)
    rnd = random.Random(11)
    jobs = []
    for _ in range(20):
        sub = f"patient-storm-{uuid.uuid4().hex[:8]}"
        body = hv.body(day, rnd.choice(["08:00", "10:00", "12:00", "14:00", "16:00", "18:00"]), where=hv.MALMO,
                       jitter=0.04, rnd=rnd)
        jobs.append((sub, hv.api.token("patient", sub), str(uuid.uuid4()), body))
    results = _book_all_at_once(hv, jobs)
    accepted = set()
    for (sub, _tok, key, _body), r in results:
        if r.status_code == 201:
            accepted.add(r.json()["id"])
        else:
            assert r.status_code == 409 and r.json()["error"]["code"] == "window_full", r.text
            bid = booking_id_for(sub, key)
            assert hv.booking_item(bid) is None and hv.note_item(bid) is None
    assert len(accepted) >= 15, [r.status_code for _, r in results]
    after = _stored_routes_prove_the_day(hv, "skane", day)
    assert set(after["visits"]) == set(before["visits"]) | accepted
    # every shard write bumps that shard's version by one: one write per accepted booking
    assert after["version"] - before["version"] == len(accepted)
