"""The local stack is made of real parts: DynamoDB Local, localstripe, and a gateway that behaves
like API Gateway's HTTP API with a JWT authorizer."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack import template as tpl
from devstack.tokens import AUDIENCE, ISSUER


def test_tables_are_created_from_the_template(stack):
    ddb = stack.boto_client("dynamodb")
    names = set(ddb.list_tables()["TableNames"])
    assert names == set(tpl.resources("AWS::DynamoDB::Table"))
    bookings = ddb.describe_table(TableName="BookingsTable")["Table"]
    assert {i["IndexName"] for i in bookings["GlobalSecondaryIndexes"]} == {"by-patient", "by-region-day"}
    assert bookings["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ttl = ddb.describe_time_to_live(TableName="ClinicalTable")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"


def test_a_booking_round_trips_through_dynamodb_local(stack):
    from homevisits.persistence.booking import BookingModel
    bid = f"test-{uuid.uuid4()}"
    BookingModel(booking_id=bid, patient_sub="p1", region="stockholm", region_day="stockholm#2026-12-01",
                 date="2026-12-01", window_start="16:00", starts_at="2026-12-01T15:00:00Z",
                 ends_at="2026-12-01T17:00:00Z", visit_type="doctor", status="held", fee_amount=35000,
                 fee_currency="SEK", patient={"name": "x"}, address={"lat": 59.3, "lon": 18.0},
                 created_at="2026-11-25T00:00:00Z", updated_at="2026-11-25T00:00:00Z").save()
    got = BookingModel.get(bid)
    assert (got.status, got.fee_amount, got.version) == ("held", 35000, 1)
    assert [b.booking_id for b in BookingModel.by_patient.query("p1") if b.booking_id == bid] == [bid]
    got.delete()


def test_localstripe_answers_the_real_stripe_sdk(stack):
    import stripe
    client = stripe.StripeClient("sk_test_local", base_addresses={"api": stack.urls["stripe"]})
    pi = client.v1.payment_intents.create(params={"amount": 35000, "currency": "sek", "capture_method": "manual"})
    assert pi.status == "requires_payment_method" and pi.amount == 35000


def test_public_route_needs_no_token(api):
    r = api.get("/service-areas/111 22")
    assert r.status_code == 200, r.text
    assert r.json()["region"] == "stockholm"


def test_no_token_is_refused_before_the_handler(api):
    r = api.get("/bookings")
    assert r.status_code == 401 and r.json() == {"message": "Unauthorized"}


def test_a_forged_token_is_refused(api):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"sub": "p1", "role": "patient", "iss": ISSUER, "aud": AUDIENCE,
                         "iat": int(time.time()), "exp": int(time.time()) + 600}, other_key, algorithm="RS256")
    assert api.get("/bookings", forged).status_code == 401
    assert api.get("/bookings", "not-a-jwt").status_code == 401


def test_an_expired_token_is_refused(api):
    assert api.get("/bookings", api.token("patient", ttl_s=-120)).status_code == 401


def test_a_valid_token_reaches_the_handler_with_its_claims(api):
    sub = f"patient-{uuid.uuid4().hex[:6]}"
    r = api.get("/bookings", api.token("patient", sub))
    assert r.status_code == 200, r.text
    assert r.json() == {"bookings": []}
    # the handler read the role claim: a dispatcher is refused by the handler, not the authorizer
    r = api.get("/bookings", api.token("dispatcher", "d1", "stockholm"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_unknown_routes_are_404(api):
    assert api.get("/nope").status_code == 404


def test_make_up_and_down_leave_no_process_behind_and_no_simulated_time(tmp_path):
    """`make up` starts at the real time even when an earlier stack left its simulated time behind
    (seen: a fresh stack 2.6 days ahead); the time a stack sets is its own and `make down` ends it."""
    import requests

    from devstack.stack import free_port
    env = {**os.environ, "HOMEVISITS_STATE_DIR": str(tmp_path), "API_PORT": str(free_port()),
           "DYNAMODB_PORT": str(free_port()), "STRIPE_PORT": str(free_port())}
    (tmp_path / "clock.json").write_text(json.dumps({"offset_s": 2.6 * 86400}))  # an earlier stack's
    up = subprocess.run([sys.executable, "-m", "devstack.stack", "up"], env=env, capture_output=True,
                        text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    base = f"http://127.0.0.1:{env['API_PORT']}"
    assert base in up.stdout
    pids = json.loads((tmp_path / "stack.json").read_text())["pids"]
    assert set(pids) == {"dynamodb", "stripe", "gateway"}
    try:
        now = datetime.fromisoformat(requests.post(base + "/_local/clock", json={}, timeout=10).json()["now"])
        assert abs((now - datetime.now(timezone.utc)).total_seconds()) < 60
        requests.post(base + "/_local/clock", json={"offset_s": 86400}, timeout=10)
        assert (tmp_path / "clock.json").exists()
    finally:
        down = subprocess.run([sys.executable, "-m", "devstack.stack", "down"], env=env, capture_output=True,
                              text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (tmp_path / "clock.json").exists()


def test_stream_consumers_can_be_held_back_and_resumed(api):
    """POST /_local/streams pauses the DynamoDB-stream pollers (benches measure one path alone) and
    resumes them; a drain afterwards still empties every queue."""
    r = api.http.post(api.base + "/_local/streams", json={"paused": True}, timeout=10)
    try:
        assert r.json() == {"paused": True}
        assert api.http.post(api.base + "/_local/streams", json={}, timeout=10).json() == {"paused": True}
    finally:
        r = api.http.post(api.base + "/_local/streams", json={"paused": False}, timeout=10)
    assert r.json() == {"paused": False}
    assert api.drain()["drained"] is True
