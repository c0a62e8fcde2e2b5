"""The Stripe port without a network: what a PaymentIntent means, error mapping, webhook signatures."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import pytest
import stripe

from homevisits.errors import (InvalidSignature, PaymentDeclined, PaymentProviderUnavailable,
                               PaymentRejected)
from payments.gateway import StripeGateway, _map_error, intent_from_stripe

SECRET = "whsec_unit"


def test_a_real_stripe_intent_with_its_charge_gives_capture_before():
    capture_before = 1_765_000_000
    pi = stripe.PaymentIntent.construct_from({
        "id": "pi_1", "object": "payment_intent", "status": "requires_capture", "amount": 35000,
        "amount_capturable": 35000, "amount_received": 0, "currency": "sek", "client_secret": "pi_1_secret_x",
        "customer": "cus_1", "payment_method": "pm_1", "created": 1_764_400_000, "metadata": {"booking_id": "b1"},
        "latest_charge": {"id": "ch_1", "object": "charge", "captured": False, "amount": 35000,
                          "payment_method_details": {"card": {"capture_before": capture_before}}}}, "sk_test")
    intent = intent_from_stripe(pi)
    assert (intent.id, intent.status, intent.amount, intent.currency) == ("pi_1", "requires_capture", 35000, "SEK")
    assert intent.amount_capturable == 35000 and intent.metadata == {"booking_id": "b1"}
    assert intent.capture_before == datetime.fromtimestamp(capture_before, tz=timezone.utc)


def test_a_localstripe_intent_without_amount_received_is_read_from_its_charge():
    pi = stripe.PaymentIntent.construct_from({
        "id": "pi_2", "object": "payment_intent", "status": "succeeded", "amount": 35000, "currency": "sek",
        "metadata": {}, "latest_charge": {"id": "ch_2", "object": "charge", "status": "succeeded",
                                          "captured": True, "amount": 35000, "amount_refunded": 0}}, "sk_test")
    intent = intent_from_stripe(pi)
    assert intent.amount_received == 35000 and intent.capture_before is None


def test_stripe_errors_become_domain_errors():
    declined = _map_error(stripe.CardError("Your card was declined.", None, "card_declined"), "hold")
    assert isinstance(declined, PaymentDeclined) and declined.status == 402
    assert isinstance(_map_error(stripe.APIConnectionError("timeout"), "hold"), PaymentProviderUnavailable)
    assert isinstance(_map_error(stripe.RateLimitError("slow down"), "hold"), PaymentProviderUnavailable)
    server = stripe.APIError("boom", http_status=500)
    assert isinstance(_map_error(server, "capture"), PaymentProviderUnavailable)
    assert isinstance(_map_error(stripe.InvalidRequestError("already captured", None), "capture"), PaymentRejected)
    clash = _map_error(stripe.IdempotencyError("reused"), "hold")
    assert isinstance(clash, PaymentRejected) and clash.code == "idempotency_conflict"


def _sign(payload: str, secret: str = SECRET, at: int | None = None) -> str:
    at = at or int(time.time())
    return f"t={at},v1=" + hmac.new(secret.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()


PAYLOAD = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded",
                      "data": {"object": {"id": "pi_9", "object": "payment_intent",
                                          "metadata": {"booking_id": "b9"}}}})


def test_a_signed_webhook_is_read():
    event = StripeGateway(client=object()).verify_webhook(PAYLOAD, _sign(PAYLOAD), SECRET)
    assert (event.id, event.type, event.payment_intent_id, event.booking_id) == \
        ("evt_1", "payment_intent.succeeded", "pi_9", "b9")


@pytest.mark.parametrize("payload, signature", [
    (PAYLOAD, None),
    (PAYLOAD, ""),
    (PAYLOAD.replace("b9", "b8"), _sign(PAYLOAD)),
    (PAYLOAD, _sign(PAYLOAD, "whsec_other")),
    (PAYLOAD, _sign(PAYLOAD, at=int(time.time()) - 3600)),  # replayed long after
])
def test_unsigned_tampered_or_stale_webhooks_are_refused(payload, signature):
    with pytest.raises(InvalidSignature) as err:
        StripeGateway(client=object()).verify_webhook(payload, signature, SECRET)
    assert err.value.status == 400 and err.value.code == "invalid_signature"


def test_a_refund_on_a_charge_points_at_its_payment_intent():
    payload = json.dumps({"id": "evt_2", "type": "charge.refunded",
                          "data": {"object": {"id": "ch_1", "object": "charge", "payment_intent": "pi_7"}}})
    event = StripeGateway(client=object()).verify_webhook(payload, _sign(payload), SECRET)
    assert event.payment_intent_id == "pi_7"


def test_the_api_version_is_the_one_the_pinned_sdk_was_generated_for():
    """The typed params describe the SDK's own API version: an SDK upgrade that moves it fails here,
    so the API version changes only on purpose (read Stripe's changelog in between)."""
    from stripe._api_version import _ApiVersion

    from payments.gateway import STRIPE_API_VERSION, _client
    assert STRIPE_API_VERSION == _ApiVersion.CURRENT
    client = _client("sk_test_pinned", "http://127.0.0.1:9")
    assert client._requestor._options.stripe_version == STRIPE_API_VERSION


@pytest.mark.parametrize("amount", [0, 1, 299])
def test_an_amount_below_the_minimum_charge_never_reaches_stripe(amount):
    """3.00 SEK is Stripe's minimum charge: the port refuses less itself (the client here has no API)."""
    gateway = StripeGateway(client=object())
    with pytest.raises(PaymentRejected) as err:
        gateway.hold(booking_id="b1", amount=amount, currency="SEK", customer="cus_1", payment_method="pm_1",
                     key="hold:b1:1")
    assert err.value.code == "amount_below_minimum"
    with pytest.raises(PaymentRejected):
        gateway.charge_off_session(booking_id="b1", customer="cus_1", payment_method="pm_1", amount=amount,
                                   currency="NOK", key="late:b1", kind="late_cancellation")
