"""The booking write path on the local stack: which DynamoDB calls a booking makes, and the
idempotency record written inside the booking's own transaction.

The handler runs in-process here (the same `lambda_handler` the gateway's worker runs, with an
API Gateway v2 event) so every botocore call can be counted. Region-days: skane today+12, +13."""
from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import date

import pytest

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def days(hv):
    d1, d2 = hv.local_day(12), hv.local_day(13)
    for c in range(2):
        hv.put_shift("skane", d1, f"wp-{c}-{d1}", where=hv.MALMO)
    hv.put_shift("skane", d2, f"wp-only-{d2}", start="08:00", end="09:00", where=hv.MALMO)
    return d1, d2


def _event(sub: str, key: str, body: dict) -> dict:
    from devstack.gateway import api_event
    from devstack.tokens import issue
    fid, event = api_event("POST", "/bookings", token=issue("patient", sub), json_body=body,
                           headers={"Idempotency-Key": key})
    assert fid == "BookingFunction"
    return event


class Calls:
    """Counts botocore API calls made in this process while active."""

    def __enter__(self):
        import botocore.client
        self.counts: Counter = Counter()
        self._orig = botocore.client.BaseClient._make_api_call
        counts, orig = self.counts, self._orig

        def counting(client, operation_name, api_params):
            counts[operation_name] += 1
            return orig(client, operation_name, api_params)

        botocore.client.BaseClient._make_api_call = counting
        return self

    def __exit__(self, *exc):
        import botocore.client
        botocore.client.BaseClient._make_api_call = self._orig


def _invoke(sub: str, key: str, body: dict) -> tuple[int, dict]:
    from booking import app
    from devstack.lambda_runtime import LambdaContext
    out = app.lambda_handler(_event(sub, key, body), LambdaContext("BookingFunction"))
    return out["statusCode"], json.loads(out["body"])


def test_an_adult_doctor_booking_is_one_read_stage_and_one_transaction(hv, days):
    d1, _ = days
    sub = f"patient-{uuid.uuid4().hex[:8]}"
    key = str(uuid.uuid4())
    # A birth date no other test books for: a person with other bookings nearby needs one more read.
    body = hv.body(d1, "10:00", where=hv.MALMO, born=date(1977, 4, 23))
    hv.api.drain(60)  # the stack quiet (re-plans of earlier bookings write the ledger): no lost race to retry
    with Calls() as calls:
        status, booking = _invoke(sub, key, body)
    assert status == 201, booking
    # Powertools' INPROGRESS record, the ledger's doctor shards (one Query), the fee history (a Query),
    # the person's open bookings (their day items, a Query; nothing booked yet, so no
    # BatchGetItem) and the account's bookings of the day (a GetItem) read in parallel with it, then
    # ONE transaction that also completes the idempotency record: no UpdateItem afterwards.
    assert calls.counts == Counter({"PutItem": 1, "Query": 3, "GetItem": 1, "TransactWriteItems": 1}), calls.counts

    # The record is COMPLETED with exactly the answer, so a retry gets it without running again.
    ddb = hv.stack.boto_client("dynamodb")
    done = [it for it in ddb.scan(TableName="IdempotencyTable")["Items"]
            if booking["id"] in it.get("data", {}).get("S", "")]
    assert len(done) == 1 and done[0]["status"]["S"] == "COMPLETED"
    assert json.loads(done[0]["data"]["S"]) == {"booking": booking, "created": True}
    assert "validation" in done[0]  # the payload hash Powertools wrote with INPROGRESS is kept
    with Calls() as calls:
        status2, again = _invoke(sub, key, body)
    assert (status2, again) == (201, booking)
    assert calls.counts.get("TransactWriteItems", 0) == 0 and calls.counts.get("UpdateItem", 0) == 0

    # Same key, another body: Powertools' payload validation still refuses it, writing nothing.
    other = dict(body, window_start="12:00")
    status3, err = _invoke(sub, key, other)
    assert status3 == 422 and err["error"]["code"] == "idempotency_key_reused"


def test_a_childs_booking_does_not_read_the_fee_history(hv, days):
    d1, _ = days
    body = hv.body(d1, "12:00", where=hv.MALMO,
                   for_child={"personal_number": _child_number(hv, d1), "name": "Barn"})
    hv.api.drain(60)  # as above: an uncontended booking's reads are what is counted
    with Calls() as calls:
        status, booking = _invoke(f"patient-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), body)
    assert status == 201, booking
    assert booking["fee"]["amount"] == 0 and booking["status"] == "confirmed"
    # two Queries: the ledger's shards and the child's open bookings (one a day); the fee history is not read
    assert calls.counts["Query"] == 2 and calls.counts["UpdateItem"] == 0, calls.counts
    assert calls.counts["TransactWriteItems"] == 1, calls.counts


def _child_number(hv, day: date) -> str:
    from tests.integration.booking.conftest import personnummer
    return personnummer(date(day.year - 8, 3, 14))


def test_a_refused_booking_leaves_neither_booking_nor_idempotency_record(hv, days):
    _, d2 = days
    sub = f"patient-{uuid.uuid4().hex[:8]}"
    assert _invoke(sub, str(uuid.uuid4()), hv.body(d2, "08:00", where=hv.MALMO))[0] == 201
    before = hv.table_counts()
    key = str(uuid.uuid4())
    statuses = Counter()
    for _ in range(4):  # one clinician for one hour: the window fills up
        statuses[_invoke(sub, str(uuid.uuid4()) if statuses else key, hv.body(d2, "08:00", where=hv.MALMO))[0]] += 1
    assert statuses[409] >= 1, statuses
    after = hv.table_counts()
    booked = statuses[201]
    assert after["BookingsTable"] == before["BookingsTable"] + booked
    assert after["IdempotencyTable"] == before["IdempotencyTable"] + booked  # refusals leave no record


WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


@pytest.mark.parametrize("refusal,code", [
    ("bad_check_digit", "invalid_personal_number"),
    ("past_date", "outside_booking_horizon"),
    ("beyond_horizon", "outside_booking_horizon"),
    ("address_elsewhere", "address_outside_region"),
])
def test_a_refusal_found_without_io_writes_nothing(hv, days, refusal, code):
    """Refusals that need no read are answered before Powertools writes its idempotency record:
    no PutItem/DeleteItem, only the one GetItem that checks the key was not used before."""
    d1, _ = days
    body = hv.body(d1, "14:00", where=hv.MALMO)
    if refusal == "bad_check_digit":
        pn = body["patient"]["personal_number"]
        body["patient"]["personal_number"] = pn[:-1] + str((int(pn[-1]) + 1) % 10)
    elif refusal == "past_date":
        body["date"] = hv.local_day(-1).isoformat()
    elif refusal == "beyond_horizon":
        body["date"] = hv.local_day(400).isoformat()
    else:
        body["address"] = {**body["address"], "lat": 59.3326, "lon": 18.0649}  # Stockholm, booked in Skåne
    with Calls() as calls:
        status, err = _invoke(f"patient-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), body)
    assert status in (409, 422), err
    assert err["error"]["code"] == code
    assert not WRITES & set(calls.counts), calls.counts
    assert calls.counts == Counter({"GetItem": 1}), calls.counts


def test_a_booking_retried_after_its_window_passed_gets_its_stored_answer(hv, days, moved_clock):
    """The early refusal does not shadow idempotency: a retry of a key that succeeded, sent when
    the window is already past, still answers the booking, from Powertools' record (its conditional
    PutItem finds the COMPLETED record and writes nothing), never a second booking."""
    from datetime import timedelta
    d1, _ = days
    sub, key = f"patient-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    body = hv.body(d1, "16:00", where=hv.MALMO)
    status, booking = _invoke(sub, key, body)
    assert status == 201, booking
    moved_clock(hv.now() + timedelta(days=14))
    with Calls() as calls:
        again = _invoke(sub, key, body)
    assert again == (201, booking)
    assert calls.counts.get("TransactWriteItems", 0) == 0 and calls.counts.get("UpdateItem", 0) == 0
    assert calls.counts.get("DeleteItem", 0) == 0, calls.counts
