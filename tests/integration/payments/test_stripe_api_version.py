"""The Stripe port against the local Stripe made as strict as the pinned API version: what real
Stripe refuses on 2026-10-28.endive (writable `payment_method_types`) the local one refuses too, and
the port's holds and off-session charges are accepted and read their charge."""
from __future__ import annotations

import uuid

import pytest
import stripe

from payments.gateway import STRIPE_API_VERSION, StripeGateway, _client

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def gateway(stack):
    return StripeGateway(client=_client("sk_test_local", stack.urls["stripe"]))


def test_writable_payment_method_types_is_refused_on_the_pinned_version(stack, card):
    """As Stripe's changelog (2026-09-30.endive) says: 400 payment_method_types_no_longer_supported."""
    client = stripe.StripeClient("sk_test_local", stripe_version=STRIPE_API_VERSION,
                                 base_addresses={"api": stack.urls["stripe"]})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create(params={
            "amount": 35000, "currency": "sek", "payment_method": card(), "payment_method_types": ["card"],
            "capture_method": "manual", "confirm": True})
    assert err.value.http_status == 400 and err.value.code == "payment_method_types_no_longer_supported"


def test_a_hold_is_accepted_and_reads_its_expanded_charge(gateway, card):
    customer = gateway.ensure_customer(f"patient-{uuid.uuid4().hex[:8]}")
    intent = gateway.hold(booking_id=f"b-{uuid.uuid4().hex[:8]}", amount=35000, currency="SEK", customer=customer,
                          payment_method=card(), key=f"hold:{uuid.uuid4().hex}")
    assert (intent.status, intent.amount, intent.amount_capturable, intent.currency) == \
        ("requires_capture", 35000, 35000, "SEK")
    captured = gateway.capture(intent.id, 30000, key=f"capture:{intent.id}")
    assert (captured.status, captured.amount_received) == ("succeeded", 30000)


def test_an_off_session_charge_is_accepted(gateway, card):
    customer = gateway.ensure_customer(f"patient-{uuid.uuid4().hex[:8]}")
    intent = gateway.charge_off_session(booking_id=f"b-{uuid.uuid4().hex[:8]}", customer=customer,
                                        payment_method=card(), amount=40000, currency="SEK",
                                        key=f"late:{uuid.uuid4().hex}", kind="late_cancellation")
    assert (intent.status, intent.amount_received) == ("succeeded", 40000)


def test_the_charge_is_an_id_unless_expanded_as_on_stripe(stack, gateway, card):
    """localstripe inlined the charge always, which hid a hold that never asked for it."""
    customer = gateway.ensure_customer(f"patient-{uuid.uuid4().hex[:8]}")
    intent = gateway.hold(booking_id=f"b-{uuid.uuid4().hex[:8]}", amount=35000, currency="SEK", customer=customer,
                          payment_method=card(), key=f"hold:{uuid.uuid4().hex}")
    plain = gateway.client.v1.payment_intents.retrieve(intent.id)
    assert isinstance(plain.latest_charge, str) and plain.amount_capturable == 35000
