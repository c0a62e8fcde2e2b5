"""Stream records and the schedule → re-plan requests (one per region-day, FIFO de-duplication ids)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from dispatch import stream

ARN_BOOKINGS = "arn:aws:dynamodb:eu-north-1:000000000000:table/BookingsTable/stream/2026-11-25T00:00:00.000"
ARN_CAPACITY = "arn:aws:dynamodb:eu-north-1:000000000000:table/CapacityTable/stream/2026-11-25T00:00:00.000"


def image(status="confirmed", region_day="stockholm#2026-12-01", starts_at="2026-12-01T15:00:00Z", **extra):
    item = {"booking_id": {"S": "b1"}, "status": {"S": status}, "region_day": {"S": region_day},
            "starts_at": {"S": starts_at}, "ends_at": {"S": "2026-12-01T17:00:00Z"}, "visit_type": {"S": "doctor"},
            "address": {"S": json.dumps({"lat": 59.3, "lon": 18.0, "door_code": "1"})}, "version": {"N": "1"}}
    for k, v in extra.items():
        item[k] = {"N": str(v)} if isinstance(v, int) else {"S": v}
    return item


def record(seq, old=None, new=None, arn=ARN_BOOKINGS, keys=None, name="MODIFY"):
    ddb = {"SequenceNumber": str(seq), "Keys": keys or {"booking_id": {"S": "b1"}},
           "StreamViewType": "NEW_AND_OLD_IMAGES", "SizeBytes": 100}
    if old:
        ddb["OldImage"] = old
    if new:
        ddb["NewImage"] = new
    return {"eventID": str(seq), "eventName": name, "eventSource": "aws:dynamodb", "eventSourceARN": arn,
            "awsRegion": "eu-north-1", "dynamodb": ddb}


@pytest.fixture
def sent(monkeypatch):
    out = []
    monkeypatch.setattr(stream.messaging, "request_replan", lambda rd, dedup_id: out.append((rd, dedup_id)))
    return out


def test_a_confirmation_asks_for_a_replan_of_its_region_day(sent):
    res = stream.lambda_handler({"Records": [record(11, image("held"), image("confirmed"))]}, None)
    assert sent == [("stockholm#2026-12-01", "stockholm#2026-12-01:11")]
    assert res == {"batchItemFailures": []}


def test_dispatchs_own_eta_writes_ask_for_nothing(sent):
    old = image()
    new = image(eta="2026-12-01T15:10:00Z", clinician_id="c1", version=2)
    stream.lambda_handler({"Records": [record(12, old, new)]}, None)
    assert sent == []


def test_bookings_that_never_were_planned_ask_for_nothing(sent):
    stream.lambda_handler({"Records": [record(13, None, image("held"), name="INSERT"),
                                       record(14, image("held"), image("expired"))]}, None)
    assert sent == []


def test_a_cancelled_visit_and_a_moved_one_replan_every_day_they_touch(sent):
    stream.lambda_handler({"Records": [
        record(15, image("confirmed"), image("cancelled")),
        record(16, image(), image(region_day="stockholm#2026-12-02", starts_at="2026-12-02T15:00:00Z"))]}, None)
    assert [rd for rd, _ in sent] == ["stockholm#2026-12-01", "stockholm#2026-12-02"]


def test_a_moved_address_is_a_change(sent):
    new = image()
    new["address"] = {"S": json.dumps({"lat": 59.4, "lon": 18.0})}
    stream.lambda_handler({"Records": [record(17, image(), new)]}, None)
    assert len(sent) == 1


def test_each_region_day_is_requested_once_per_batch(sent):
    stream.lambda_handler({"Records": [record(18, image("held"), image()), record(19, image(), image("en_route"))]},
                          None)
    assert sent == [("stockholm#2026-12-01", "stockholm#2026-12-01:18")]


def test_a_capacity_ledger_change_replans_its_day(sent):
    keys = {"region_day": {"S": "skane#2026-12-03"}}
    stream.lambda_handler({"Records": [record(20, arn=ARN_CAPACITY, keys=keys)]}, None)
    assert sent == [("skane#2026-12-03", "skane#2026-12-03:20")]


def test_a_failed_send_fails_only_its_record(monkeypatch):
    calls = []

    def flaky(rd, dedup_id):
        calls.append(rd)
        if rd.startswith("skane"):
            raise RuntimeError("queue down")

    monkeypatch.setattr(stream.messaging, "request_replan", flaky)
    res = stream.lambda_handler({"Records": [
        record(21, image("held"), image()),
        record(22, arn=ARN_CAPACITY, keys={"region_day": {"S": "skane#2026-12-03"}})]}, None)
    assert res == {"batchItemFailures": [{"itemIdentifier": "22"}]}


def test_the_schedule_requests_today_and_tomorrow_of_open_regions(sent, monkeypatch):
    from homevisits.clock import FixedClock
    monkeypatch.setattr(stream, "default_clock", lambda: FixedClock(datetime(2026, 12, 1, 23, 30, tzinfo=timezone.utc)))
    stream.lambda_handler({"source": "aws.scheduler"}, None)
    days = sorted(rd for rd, _ in sent)
    # 23:30Z is already 00:30 on the 2nd in Stockholm; vastra-gotaland is only launching.
    assert days == ["skane#2026-12-02", "skane#2026-12-03", "stockholm#2026-12-02", "stockholm#2026-12-03"]
    assert all(d.endswith(":schedule:20261201T2330") for _, d in sent)
