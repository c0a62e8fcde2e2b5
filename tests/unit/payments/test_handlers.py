"""The thin entries: the SQS consumer (partial batch failures, duplicates) and the webhook handler."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest

from homevisits.persistence.payments import PaymentModel
from payments.capture import capture_fee
from payments.hold import hold_fee

SECRET = "whsec_unit"


class _Context:
    function_name, memory_limit_in_mb, invoked_function_arn, aws_request_id = "f", 128, "arn:f", "r"

    def get_remaining_time_in_millis(self):
        return 30000


def payment(booking_id):
    return PaymentModel.get(f"BOOKING#{booking_id}", "PAYMENT", consistent_read=True)


def sqs(*events):
    return {"Records": [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps(e),
                         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                         "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-north-1:0:q",
                         "awsRegion": "eu-north-1"} for e in events]}


def bus_event(detail_type, detail, event_id=None):
    return {"version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": detail_type,
            "source": "homevisits.dispatch", "detail": detail}


@pytest.fixture
def wired(ctx, monkeypatch, stripe_fake):
    import payments.deps as deps
    monkeypatch.setattr(deps, "context", lambda on_finding=None: ctx)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    from homevisits import settings
    settings.reload()
    from payments.gateway import StripeGateway
    stripe_fake.verify_webhook = lambda payload, sig, secret=None: \
        StripeGateway(client=object()).verify_webhook(payload, sig, secret)
    return ctx


def test_a_completion_delivered_three_times_captures_once(wired, make_booking, stripe_fake, set_booking_status):
    from payments.events import lambda_handler
    bid = make_booking()
    hold_fee(wired, "patient-1", bid, "pm_ok")
    set_booking_status(bid, "completed")
    same = bus_event("VisitEvent", {"booking_id": bid, "type": "completed"})
    result = lambda_handler(sqs(same, same, bus_event("VisitEvent", {"booking_id": bid, "type": "completed"})),
                            _Context())
    assert result == {"batchItemFailures": []}
    assert payment(bid).status == "captured"
    assert [op for op, _ in stripe_fake.calls].count("capture") == 1


def test_a_failing_record_is_retried_alone(wired, make_booking, stripe_fake, set_booking_status):
    from payments.events import lambda_handler
    ok, failing = make_booking(), make_booking()
    hold_fee(wired, "patient-1", ok, "pm_ok")
    hold_fee(wired, "patient-1", failing, "pm_ok")
    set_booking_status(ok, "cancelled", cancellation={"fee_decision": "free"})
    set_booking_status(failing, "completed")
    event = sqs(bus_event("BookingCancelled", {"booking_id": ok, "fee_decision": "free"}),
                bus_event("VisitEvent", {"booking_id": failing, "type": "completed"}))
    stripe_fake.fail("capture", "before")
    result = lambda_handler(event, _Context())
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [event["Records"][1]["messageId"]]
    assert payment(ok).status == "released"
    assert lambda_handler({"Records": event["Records"][1:]}, _Context()) == {"batchItemFailures": []}
    assert payment(failing).status == "captured"


def test_an_events_figures_and_a_wrong_state_move_no_money(wired, make_booking, stripe_fake, set_booking_status):
    """Money follows the booking's own state and the tariff: a no-show with fee_amount 99999 for a
    completed, captured visit, a completion for a visit still confirmed and a free cancellation of a
    booking that is not cancelled change nothing."""
    from payments.events import handle_event
    done, open_ = make_booking(), make_booking()
    for bid in (done, open_):
        hold_fee(wired, "patient-1", bid, "pm_ok")
    set_booking_status(done, "completed")
    assert capture_fee(wired, done) == "captured"
    calls, captured = len(stripe_fake.calls), payment(done)
    assert handle_event(bus_event("VisitEvent", {"booking_id": done, "type": "no_show", "fee_amount": 99999}),
                        wired) == "ignored_wrong_state"
    assert handle_event(bus_event("BookingCancelled", {"booking_id": done, "fee_decision": "late",
                                                       "fee_amount": 99999}), wired) == "ignored_wrong_state"
    assert handle_event(bus_event("VisitEvent", {"booking_id": open_, "type": "completed"}),
                        wired) == "ignored_wrong_state"
    assert handle_event(bus_event("BookingCancelled", {"booking_id": open_, "fee_decision": "free"}),
                        wired) == "ignored_wrong_state"
    assert len(stripe_fake.calls) == calls
    assert payment(done).version == captured.version and payment(open_).status == "authorized"


def test_expiry_and_unrelated_events_are_handled_harmlessly(wired, make_booking):
    from payments.events import lambda_handler
    bid = make_booking()
    event = sqs(bus_event("BookingExpired", {"booking_id": bid}),
                bus_event("VisitEvent", {"booking_id": bid, "type": "on_the_way"}),
                bus_event("PlanChanged", {"region_day": "x"}))
    assert lambda_handler(event, _Context()) == {"batchItemFailures": []}


def _signed(payload: str) -> str:
    at = int(time.time())
    return f"t={at},v1=" + hmac.new(SECRET.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()


def test_a_webhook_finishes_3ds_once_and_ignores_repeats(wired, make_booking, stripe_fake, published):
    from payments.webhook import handle_webhook
    bid = make_booking()
    hold_fee(wired, "patient-1", bid, "pm_3ds")
    pi = payment(bid).payment_intent_id
    stripe_fake.authenticate(pi)
    payload = json.dumps({"id": "evt_a", "type": "payment_intent.amount_capturable_updated",
                          "data": {"object": {"id": pi, "object": "payment_intent"}}})
    assert handle_webhook(payload, _signed(payload)) == (200, {"received": True, "outcome": "authorized"})
    assert handle_webhook(payload, _signed(payload))[1].get("duplicate") is True
    other = payload.replace("evt_a", "evt_b")  # Stripe may send a second, different event
    assert handle_webhook(other, _signed(other))[1]["outcome"] == "unchanged"
    assert payment(bid).status == "authorized" and len(published) == 1


def test_a_forged_webhook_is_refused_before_anything_is_read(wired, stripe_fake):
    from payments.webhook import handle_webhook
    status, body = handle_webhook('{"id": "evt_x"}', "t=1,v1=00")
    assert status == 400 and body["error"]["code"] == "invalid_signature"
    assert stripe_fake.calls == []
