"""Fault injection through the real local stack: Stripe failing or timing out at each step, DynamoDB
throttling and conditional failures, a handler dying between two writes, events delivered twice and
out of order, and webhook replays. After each scenario reconciliation runs and the invariants of
devstack.invariants are checked on the scenario's region-day.

The faulty steps run in this process (handlers imported here, talking to the same DynamoDB Local and
localstripe as the gateway); setup goes through the HTTP API. The Stripe port is wrapped at the
payments function's seam (`payments.deps.gateway`); the wrapper also replays a mutating call's first
answer for a repeated idempotency key, as real Stripe does (localstripe ignores Idempotency-Key, so
without it the stack could not tell a correct key from a fresh one)."""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import time
import uuid

import pytest

from devstack import invariants

pytestmark = pytest.mark.stack

_days = itertools.count(2)
MUTATING = ("hold", "capture", "release", "refund", "charge_off_session")


class FaultyStripe:
    """`payments.gateway.StripeGateway` with injected failures, before or after the real call."""

    def __init__(self, real):
        self.real = real
        self.faults: list[dict] = []
        self.replays: dict[str, object] = {}
        self.calls: list[tuple[str, str | None]] = []

    def fail(self, method: str, when: str = "before", make=None, times: int = 1):
        from homevisits.errors import PaymentProviderUnavailable
        self.faults.append({"method": method, "when": when, "times": times,
                            "make": make or (lambda: PaymentProviderUnavailable("injected: Stripe timed out"))})

    def _take(self, method: str, when: str):
        for f in self.faults:
            if f["method"] == method and f["when"] == when and f["times"] > 0:
                f["times"] -= 1
                return f["make"]()
        return None

    def __getattr__(self, name):
        attr = getattr(self.real, name)
        if name not in MUTATING:
            return attr

        def call(*args, **kwargs):
            key = kwargs.get("key")
            self.calls.append((name, key))
            if key in self.replays:
                return self.replays[key]
            exc = self._take(name, "before")
            if exc:
                raise exc
            result = attr(*args, **kwargs)
            if key:
                self.replays[key] = result
            exc = self._take(name, "after")
            if exc:
                raise exc
            return result

        return call


@pytest.fixture
def stripe_faults(monkeypatch, stack):
    from payments import deps
    faulty = FaultyStripe(deps.gateway())
    monkeypatch.setattr(deps, "gateway", lambda: faulty)
    return faulty


@pytest.fixture
def day(api, h):
    """A Skåne region-day with a doctor of its own on shift: an untouched day when one is left in
    the booking horizon, else a day shared with earlier scenarios (the invariants hold per
    region-day whatever else is booked there)."""
    try:
        d = api.free_day("skane", 1)
    except AssertionError:
        d = h.future_day(next(_days) % 12 + 2)
    h.put_shift(api, "skane", d, f"doc-faults-{d:%m%d}-{uuid.uuid4().hex[:6]}", area=h.SKANE)
    return d


# Every booking version this module saw: one that goes back in any later scenario is a violation.
VERSIONS = invariants.VersionWatch()


def settle_and_check(api, h, d, allow=()):
    h.drain(api)
    api.invoke("ReconcileFunction", {})
    h.drain(api)
    report = invariants.check([f"skane#{d}"], versions=VERSIONS)
    report.assert_ok(allow)
    return report


def live_holds(booking_id: str) -> list[dict]:
    return [pi for pi in invariants.stripe_payment_intents()
            if (pi.get("metadata") or {}).get("booking_id") == booking_id and pi["status"] == "requires_capture"]


def _book(api, h, d, window="10:00"):
    p = h.new_person("fault")
    bid = h.expect(h.book(api, p, d, window, h.SKANE), 201)["id"]
    assert not VERSIONS.poll([f"skane#{d}"])
    return p, bid


def _pay_inprocess(h, p, bid, pm=None):
    return h.call_inprocess("POST", f"/bookings/{bid}/payment", h.claims("patient", p.sub),
                            {"payment_method": pm or h.payment_method()})


# ---------------------------------------------------------------- Stripe faults
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_hold_that_times_out_is_resumed_never_doubled(api, h, day, stripe_faults, when):
    """Stripe times out creating the hold (before or after it made it): the patient gets a retryable
    503, the retry (even with a freshly tokenised card) ends with exactly one hold and a confirmed booking."""
    p, bid = _book(api, h, day)
    stripe_faults.fail("hold", when)
    status, body = _pay_inprocess(h, p, bid)
    assert status == 503 and body["error"]["code"] == "payment_provider_unavailable", body
    status, body = _pay_inprocess(h, p, bid)
    assert status == 200 and body["status"] == "authorized", body
    assert len(live_holds(bid)) == 1
    settle_and_check(api, h, day)


def test_a_hold_whose_handler_dies_after_stripe_answered_is_recovered(api, h, day, stripe_faults):
    """The function dies right after Stripe made the hold (nothing recorded): the retry or
    reconciliation finds that same hold; never two, never a confirmed booking without one."""
    p, bid = _book(api, h, day)
    pm = h.payment_method()
    stripe_faults.fail("hold", "after", make=lambda: RuntimeError("injected: the Lambda was killed"))
    status, _ = _pay_inprocess(h, p, bid, pm)
    assert status >= 500
    status, body = _pay_inprocess(h, p, bid, pm)
    assert status == 200 and body["status"] == "authorized", body
    assert len(live_holds(bid)) == 1
    settle_and_check(api, h, day)


def test_a_declined_card_holds_nothing_and_keeps_the_place_for_another_card(api, h, day, stripe_faults):
    """A declined card: 402 saying until when the place is kept (issue 12, defect 8), nothing is
    held, the booking stays held for another card (the expiry job gives its capacity back later)."""
    p, bid = _book(api, h, day)
    status, body = _pay_inprocess(h, p, bid, h.payment_method(h.CARD_DECLINED))
    assert status == 402, body
    assert body["error"]["details"]["retry_until"]
    assert live_holds(bid) == []
    settle_and_check(api, h, day)


def _confirmed_planned_visit(api, h, d):
    p, bid = _book(api, h, d)
    h.expect(h.pay(api, p, bid), 200, 201)
    plan = h.optimize(api, "skane", d)
    clinician = h.clinician_of(plan, bid)
    assert clinician, f"the visit is not planned: {plan}"
    return p, bid, clinician


def _collect_bus(monkeypatch):
    """Events the in-process handlers publish, kept here instead of reaching the gateway's bus."""
    from homevisits import messaging
    published = []

    def publish(source, detail_type, detail):
        published.append({"version": "0", "id": str(uuid.uuid4()), "source": source,
                          "detail-type": detail_type, "detail": json.loads(json.dumps(detail, default=str))})

    monkeypatch.setattr(messaging, "publish", publish)
    try:
        import booking.app
        monkeypatch.setattr(booking.app, "publish", publish)
    except ImportError:
        pass
    return published


def _deliver(h, events: list[dict]) -> list[str]:
    """Deliver events to the payments consumer in-process as one SQS batch; answers failed ids."""
    records = [{"messageId": f"m-{i}-{uuid.uuid4().hex[:6]}", "receiptHandle": "r", "body": json.dumps(e),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-north-1:0:PaymentEventsQueue",
                "awsRegion": "eu-north-1"} for i, e in enumerate(events)]
    result = h.invoke_inprocess("PaymentEventsFunction", {"Records": records}) or {}
    return [f["itemIdentifier"] for f in result.get("batchItemFailures") or []]


def _payment(bid):
    from homevisits.persistence.payments import PaymentModel, booking_pk
    return PaymentModel.get(booking_pk(bid), "PAYMENT", consistent_read=True)


def test_a_capture_timeout_then_every_event_twice_and_reversed_captures_once(api, h, day, stripe_faults,
                                                                           monkeypatch):
    """The visit's events reach payments twice each, newest first, and the first capture times out
    after Stripe took the money: one capture of at most the held amount, recorded as captured."""
    p, bid, clinician = _confirmed_planned_visit(api, h, day)
    published = _collect_bus(monkeypatch)
    for ev in ("on_the_way", "arrived", "completed"):
        status, body = h.call_inprocess("POST", f"/visits/{bid}/events", h.claims("clinician", clinician, "skane"),
                                        {"type": ev})
        assert status in (200, 201), body
    visit_events = [e for e in published if e["detail-type"] == "VisitEvent"]
    assert [e["detail"]["type"] for e in visit_events] == ["on_the_way", "arrived", "completed"]
    stripe_faults.fail("capture", "after")
    failed = _deliver(h, list(reversed(visit_events)))
    assert len(failed) == 1, "the timed-out capture must be reported back for redelivery"
    assert _deliver(h, list(reversed(visit_events))) == []
    duplicates = [{**e, "id": str(uuid.uuid4())} for e in visit_events]  # published twice: new ids
    assert _deliver(h, duplicates + visit_events) == []
    captures = [k for m, k in stripe_faults.calls if m == "capture"]
    assert len(set(captures)) == 1, f"capture keys must be derived from the booking: {captures}"
    pay = _payment(bid)
    assert pay.status == "captured" and int(pay.amount_captured) <= int(pay.amount)
    settle_and_check(api, h, day)


def test_a_free_cancellation_delivered_twice_with_a_stale_completion_releases_once(api, h, day, monkeypatch):
    """BookingCancelled arrives twice and a stray 'completed' for the same visit arrives after it:
    the hold is released once and nothing is captured."""
    p, bid = _book(api, h, day)
    h.expect(h.pay(api, p, bid), 200, 201)
    published = _collect_bus(monkeypatch)
    status, body = h.call_inprocess("POST", f"/bookings/{bid}/cancel", h.claims("patient", p.sub), {})
    assert status == 200 and body["status"] == "cancelled", body
    cancelled = [e for e in published if e["detail-type"] == "BookingCancelled"]
    assert len(cancelled) == 1
    stale = {"version": "0", "id": str(uuid.uuid4()), "source": "homevisits.dispatch", "detail-type": "VisitEvent",
             "detail": {"booking_id": bid, "type": "completed", "at": "2026-01-01T00:00:00Z"}}
    assert _deliver(h, [cancelled[0], {**cancelled[0], "id": str(uuid.uuid4())}]) == []
    assert _deliver(h, [stale, cancelled[0]]) == []
    assert _payment(bid).status == "released" and live_holds(bid) == []
    settle_and_check(api, h, day)


def test_a_cancellation_that_dies_before_its_event_still_releases_the_hold(api, h, day, monkeypatch):
    """The cancel handler commits, then dies before publishing BookingCancelled; the patient retries.
    After the queues drain and reconciliation runs, no hold is left on a cancelled booking."""
    p, bid = _book(api, h, day)
    h.expect(h.pay(api, p, bid), 200, 201)
    import booking.app

    def dead_bus(*_a, **_k):
        raise ConnectionError("injected: the bus was unreachable and the function timed out")

    monkeypatch.setattr(booking.app, "publish", dead_bus)
    status, _ = h.call_inprocess("POST", f"/bookings/{bid}/cancel", h.claims("patient", p.sub), {})
    monkeypatch.undo()
    status2, body = h.call_inprocess("POST", f"/bookings/{bid}/cancel", h.claims("patient", p.sub), {})
    assert status2 == 200 and body["status"] == "cancelled", body
    settle_and_check(api, h, day)
    assert live_holds(bid) == [], (f"first cancel answered {status}; the retry answered the cancellation "
                                   "without publishing BookingCancelled, so the hold stays on the card")


# ---------------------------------------------------------------- DynamoDB faults
def _book_inprocess(h, p, d, key, window="12:00"):
    return h.call_inprocess("POST", "/bookings", h.claims("patient", p.sub), h.booking_body(p, d, window, h.SKANE),
                            {"Idempotency-Key": key})


def _bookings_of(sub: str, d) -> list:
    from homevisits.persistence.booking import BookingModel
    return [b for b in BookingModel.by_patient.query(sub) if b.date == d.isoformat()]


@pytest.mark.parametrize("fault", ["throttled", "answer_lost", "condition_failed"])
def test_a_failing_booking_transaction_never_loses_or_doubles_capacity(api, h, day, boto_faults, fault):
    """TransactWriteItems throttled, its answer lost after it committed, or cancelled by a concurrent
    ledger write: the request is answered cleanly (no 500) and a retry with the same key ends with
    exactly one booking whose capacity is in the ledger."""
    p = h.new_person("ddb")
    key = uuid.uuid4().hex
    if fault == "throttled":
        boto_faults.plan("TransactWriteItems", 1, h.client_error("ThrottlingException", "Rate exceeded"))
    elif fault == "answer_lost":
        boto_faults.plan("TransactWriteItems", 1, h.client_error("InternalServerError", "injected"), after=True)
    else:
        boto_faults.plan("TransactWriteItems", 1, h.client_error(
            "TransactionCanceledException", "Transaction cancelled",
            reasons=[{"Code": "None"}, {"Code": "None"}, {"Code": "ConditionalCheckFailed"}]))
    status, body = _book_inprocess(h, p, day, key)
    assert status in (200, 201, 409, 429, 503), f"{fault}: {status} {body}"
    status, body = _book_inprocess(h, p, day, key)
    assert status in (200, 201), f"{fault} retry: {status} {body}"
    assert len(_bookings_of(p.sub, day)) == 1
    assert any(op == "TransactWriteItems" for op, _ in boto_faults.calls), "the fault was never reached"
    settle_and_check(api, h, day)


class _Died(BaseException):
    """The function's process ending (not an Exception: nothing in the handler may catch it)."""


def test_a_handler_dying_right_after_the_booking_transaction_answers_the_retry_from_its_record(
        api, h, day, boto_faults):
    """The booking transaction commits — it also turns the idempotency record COMPLETED with the
    answer — and the function dies before anything else runs: the retry with the same key gets the
    first answer (201, the same booking) from Powertools without running the booking again."""
    p = h.new_person("die")
    key = uuid.uuid4().hex
    boto_faults.plan("TransactWriteItems", 1, lambda op: _Died(op), after=True)
    with pytest.raises(_Died):
        _book_inprocess(h, p, day, key)
    [booking] = _bookings_of(p.sub, day)
    writes_before = sum(op in ("TransactWriteItems", "UpdateItem") for op, _ in boto_faults.calls)
    status, body = _book_inprocess(h, p, day, key)
    assert (status, body["id"]) == (201, booking.booking_id), body
    assert sum(op in ("TransactWriteItems", "UpdateItem") for op, _ in boto_faults.calls) == writes_before
    assert len(_bookings_of(p.sub, day)) == 1
    settle_and_check(api, h, day)


# ---------------------------------------------------------------- webhooks
def _webhook(api, h, event: dict, at: int | None = None, secret: str = "whsec_local_stack"):
    payload = json.dumps(event)
    return api.http.post(api.base + "/payments/webhook", data=payload,
                         headers={"Stripe-Signature": h.sign_webhook(payload, secret, at),
                                  "content-type": "application/json"}, timeout=30)


def test_webhook_replays_and_forgeries_change_nothing(api, h, day):
    """A 3-D Secure hold completed on localstripe, then its webhooks replayed, reordered (a stale
    payment_failed after the success) and forged: the booking stays confirmed with one hold."""
    p, bid = _book(api, h, day)
    body = h.expect(h.pay(api, p, bid, h.CARD_3DS), 200, 201)
    assert body["status"] == "requires_action", body
    pi_id = _payment(bid).payment_intent_id
    h.stripe_post(f"/v1/payment_intents/{pi_id}/_authenticate", {"client_secret": body["client_secret"],
                                                                 "success": "true"})
    pi = h.stripe_get(f"/v1/payment_intents/{pi_id}")
    ok = {"id": f"evt_{uuid.uuid4().hex[:16]}", "object": "event", "type": "payment_intent.amount_capturable_updated",
          "created": int(time.time()), "data": {"object": pi}}
    stale_fail = {"id": f"evt_{uuid.uuid4().hex[:16]}", "object": "event", "type": "payment_intent.payment_failed",
                  "created": int(time.time()) - 60, "data": {"object": {**pi, "status": "requires_payment_method"}}}
    for event in (ok, ok, stale_fail, ok):
        r = _webhook(api, h, event)
        assert r.status_code == 200, r.text
    assert _webhook(api, h, ok, secret="whsec_forged").status_code == 400
    assert _webhook(api, h, ok, at=int(time.time()) - 3600).status_code == 400
    r = api.http.post(api.base + "/payments/webhook", data=json.dumps(ok), timeout=30,
                      headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_signature"
    h.drain(api)
    from homevisits.persistence.booking import BookingModel
    assert BookingModel.get(bid, consistent_read=True).status == "confirmed"
    assert _payment(bid).status == "authorized" and len(live_holds(bid)) == 1
    settle_and_check(api, h, day)


# ---------------------------------------------------------------- outages
@contextlib.contextmanager
def dynamodb_hangs(stack):
    """DynamoDB Local stops answering (SIGSTOP): the kernel still accepts connections and requests,
    nothing answers — the worst outage for a client (timeouts, not refusals). SIGCONT resumes it
    with its in-memory tables intact, and it then runs whatever requests were left in its sockets."""
    pid = stack.pids["dynamodb"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _timeout_of(function_id: str) -> float:
    from devstack import template as tpl
    t = tpl.load()
    return float(tpl.functions(t)[function_id]["Properties"].get("Timeout", t["Globals"]["Function"]["Timeout"]))


def _timed(call):
    t0 = time.monotonic()
    r = call()
    return r, time.monotonic() - t0


def _assert_unavailable_in_time(r, elapsed: float, function_id: str):
    assert r.status_code == 503, f"{r.status_code} after {elapsed:.1f}s: {r.text[:300]}"
    assert r.json()["error"]["code"] == "service_unavailable", r.text
    assert int(r.headers["Retry-After"]) > 0
    assert elapsed < _timeout_of(function_id), f"{function_id} answered after {elapsed:.1f}s"


def _retry_until_done(call, timeout_s: float = 90):
    """A client honouring Retry-After: retries 409 request_in_progress / 503 until an answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = call()
        if r.status_code not in (409, 503) or time.monotonic() > deadline:
            return r
        assert "Retry-After" in r.headers, r.text
        time.sleep(min(5, int(r.headers["Retry-After"])))


def test_while_dynamodb_hangs_the_api_answers_503_in_time_and_the_retry_books_once(api, h, day, stack):
    """DynamoDB stops answering: POST /bookings, GET /bookings and POST /bookings/{id}/payment each
    answer 503 service_unavailable with Retry-After within their function's timeout (not a hang,
    not a 500). When it is back, the same Idempotency-Key books exactly once, the payment holds
    once, and the region-day's invariants hold."""
    p, paid = _book(api, h, day, "16:00")
    p2 = h.new_person("outage")
    key = uuid.uuid4().hex
    token = api.token("patient", p2.sub)
    pm = h.payment_method()
    with dynamodb_hangs(stack):
        created, t_create = _timed(lambda: h.book(api, p2, day, "18:00", h.SKANE, key=key))
        listed, t_list = _timed(lambda: api.get("/bookings", token))
        held, t_hold = _timed(lambda: api.post(f"/bookings/{paid}/payment", api.token("patient", p.sub),
                                               {"payment_method": pm}))
    _assert_unavailable_in_time(created, t_create, "BookingFunction")
    _assert_unavailable_in_time(listed, t_list, "BookingFunction")
    _assert_unavailable_in_time(held, t_hold, "PaymentsFunction")

    r = _retry_until_done(lambda: h.book(api, p2, day, "18:00", h.SKANE, key=key))
    assert r.status_code == 201, r.text
    assert len(_bookings_of(p2.sub, day)) == 1
    r = _retry_until_done(lambda: api.post(f"/bookings/{paid}/payment", api.token("patient", p.sub),
                                           {"payment_method": pm}))
    assert r.status_code == 200 and r.json()["status"] == "authorized", r.text
    assert len(live_holds(paid)) == 1
    settle_and_check(api, h, day)
