"""Every HTTP handler on Powertools' own sample events (tests/fixtures/events, copied from
aws-powertools/powertools-lambda-python tests/events/): the payload 2.0 shape as API Gateway sends
it, with a JWT authorizer, cookies, a client certificate and stage variables, and bodies
base64-encoded as an HTTP API sends them for a content type that is not text.

The handlers run in-process against the session's local stack (DynamoDB Local, localstripe)."""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devstack import template as tpl
from devstack.demo_data import synthetic_personnummer
from devstack.lambda_runtime import LambdaContext

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "events"
DAY_AHEAD = 41  # a region-day of its own in the shared session stack


def sample_event(method: str, path: str, *, body: bytes | None = None, base64_body: bool = True,
                 claims: dict | None = None, content_type: str | None = None,
                 headers: dict | None = None) -> tuple[str, dict]:
    """(function id, event): Powertools' sample event made into a request for one of our routes.
    Without a content type, as a client that sends none: API Gateway then base64-encodes the body."""
    sample = "apiGatewayProxyV2Event.json" if body is not None else "apiGatewayProxyV2Event_GET.json"
    event = copy.deepcopy(json.loads((EVENTS / sample).read_text(encoding="utf-8")))
    path_only, _, query = path.partition("?")
    route, params = tpl.match(tpl.routes(), method, path_only)
    event["routeKey"] = event["requestContext"]["routeKey"] = route.route_key
    event["rawPath"] = event["requestContext"]["http"]["path"] = path_only
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    event["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&")) if query else None
    event["pathParameters"] = params or None
    event["headers"] = {**event["headers"], **({"content-type": content_type} if content_type else {}),
                        **(headers or {})}
    if claims is None:
        event["requestContext"].pop("authorizer", None)
    else:  # as the JWT authorizer passes them: every claim a string
        event["requestContext"]["authorizer"]["jwt"]["claims"] = {k: str(v) for k, v in claims.items()}
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
        event["isBase64Encoded"] = base64_body
    return route.function, event


def run(function_id: str, event: dict) -> tuple[int, dict | str]:
    import importlib
    module, _, attr = tpl.handler_of(function_id).rpartition(".")
    handler = getattr(importlib.import_module(module), attr)
    out = handler(event, LambdaContext(function_id))
    body = out.get("body") or ""
    if out.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    try:
        return out["statusCode"], json.loads(body)
    except ValueError:
        return out["statusCode"], body


def patient_claims(sub: str) -> dict:
    return {"sub": sub, "role": "patient", "token_use": "access"}


@pytest.fixture(scope="module")
def day(api) -> date:
    now = datetime.fromisoformat(api.http.post(api.base + "/_local/clock", json={}, timeout=10).json()["now"])
    d = now.astimezone(ZoneInfo("Europe/Stockholm")).date() + timedelta(days=DAY_AHEAD)
    disp = api.token("dispatcher", "disp-samples", "skane")
    r = api.put(f"/regions/skane/clinicians/doc-samples/shifts/{d}", disp,
                {"role": "doctor", "start": "08:00", "end": "20:00", "start_location": {"lat": 55.605, "lon": 13.0038}})
    assert r.status_code == 200, r.text
    return d


def booking_body(d: date) -> dict:
    return {"visit_type": "doctor", "date": d.isoformat(), "window_start": "12:00", "postal_code": "21120",
            "address": {"street": "Testgatan 1", "city": "Malmö", "lat": 55.605, "lon": 13.0038},
            "patient": {"personal_number": synthetic_personnummer(date(1981, 12, 18), 321), "name": "Test Patient",
                        "phone": "+46701234567"},
            "symptoms": "Hosta"}


def test_booking_routes_take_base64_bodies(stack, day):
    """POST /bookings, then cancel, each with a base64 body: the booking is made and cancelled."""
    sub = f"patient-{uuid.uuid4().hex[:8]}"
    fid, event = sample_event("POST", "/bookings", body=json.dumps(booking_body(day)).encode(),
                              claims=patient_claims(sub), content_type="application/json",
                              headers={"idempotency-key": str(uuid.uuid4())})
    status, booked = run(fid, event)
    assert status == 201, booked
    fid, event = sample_event("POST", f"/bookings/{booked['id']}/cancel", body=b'{"reason": "feeling better"}',
                              claims=patient_claims(sub))
    status, cancelled = run(fid, event)
    assert status == 200, cancelled
    assert cancelled["status"] == "cancelled"


def test_shift_route_takes_a_base64_body(stack, day):
    """The dispatcher's PUT of a shift, base64 body, is stored."""
    fid, event = sample_event("PUT", f"/regions/skane/clinicians/nurse-samples/shifts/{day}",
                              body=json.dumps({"role": "nurse", "start": "08:00", "end": "12:00",
                                               "start_location": {"lat": 55.6, "lon": 13.0}}).encode(),
                              claims={"sub": "disp-x", "role": "dispatcher", "region": "skane"})
    status, out = run(fid, event)
    assert status == 200, out


def test_dispatch_visit_event_takes_a_base64_body(stack):
    """A clinician's visit event with a base64 body passes validation and reaches the domain (an
    unknown visit: 404 not_found, not a 400 about the body)."""
    fid, event = sample_event("POST", f"/visits/{uuid.uuid4()}/events", body=b'{"type": "arrived"}',
                              claims={"sub": "clin-x", "role": "clinician", "region": "skane"})
    status, out = run(fid, event)
    assert status == 404, out
    assert out["error"]["code"] == "visit_not_found"


def _signed(payload: bytes, secret: str) -> str:
    t = int(time.time())
    sig = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={sig}"


def test_payments_webhook_takes_a_base64_body(stack):
    """Stripe's signed event, base64-encoded by the gateway: verified and acknowledged."""
    payload = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "customer.created", "object": "event",
                          "data": {"object": {"id": "cus_x", "object": "customer"}}}).encode()
    fid, event = sample_event("POST", "/payments/webhook", body=payload,
                              headers={"stripe-signature": _signed(payload, stack.env["STRIPE_WEBHOOK_SECRET"])})
    status, out = run(fid, event)
    assert status == 200, out
    assert out["received"] is True


def test_docs_answer_on_the_get_sample(stack):
    fid, event = sample_event("GET", "/openapi.json")
    status, out = run(fid, event)
    assert status == 200 and out["openapi"].startswith("3.")


NOT_UTF8 = b'{"reason": "\xff\xfe"}'


@pytest.mark.parametrize("method,path,claims", [
    ("POST", "/bookings", patient_claims("p-bytes")),
    ("POST", "/bookings/b-1/cancel", patient_claims("p-bytes")),
    ("POST", "/bookings/b-1/payment", patient_claims("p-bytes")),
    ("POST", "/visits/v-1/events", {"sub": "c", "role": "clinician", "region": "skane"}),
    ("POST", "/payments/webhook", None),
])
def test_a_body_that_is_not_utf8_is_a_400(stack, method, path, claims):
    """Bytes that are not UTF-8 are not JSON: 400 invalid_json on every body route, never a 500."""
    fid, event = sample_event(method, path, body=NOT_UTF8, claims=claims,
                              headers={"idempotency-key": "k-1", "stripe-signature": "t=1,v1=00"})
    status, out = run(fid, event)
    assert status == 400, out
    assert out["error"]["code"] == "invalid_json"


def test_a_signed_webhook_whose_json_is_not_an_object_is_a_400(stack):
    payload = b'[{"id": "evt_1", "type": "payment_intent.succeeded"}]'
    fid, event = sample_event("POST", "/payments/webhook", body=payload, base64_body=False,
                              content_type="application/json",
                              headers={"stripe-signature": _signed(payload, stack.env["STRIPE_WEBHOOK_SECRET"])})
    status, out = run(fid, event)
    assert status == 400, out
    assert out["error"]["code"] == "invalid_event"
