"""What the payments domain reads of Stripe's objects: plain frozen data made from a PaymentIntent or
a SetupIntent as Stripe (or localstripe, which omits some fields) answers it, and a verified
webhook's event. No stripe import: the port (`payments.gateway`) is the only module that talks to
Stripe and builds these."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass(frozen=True)
class Intent:
    """What the domain needs to know of a PaymentIntent (amounts in minor units)."""

    id: str
    status: str  # Stripe's: requires_payment_method | requires_confirmation | requires_action |
    #              processing | requires_capture | canceled | succeeded
    amount: int
    currency: str
    amount_received: int = 0
    amount_capturable: int = 0
    client_secret: str | None = None
    customer: str | None = None
    payment_method: str | None = None
    capture_before: datetime | None = None
    created: datetime | None = None
    metadata: dict = field(default_factory=dict, hash=False, compare=False)
    last_error_code: str | None = None


@dataclass(frozen=True)
class Setup:
    """What the domain needs to know of a SetupIntent (a card saved for later off-session charges)."""

    id: str
    status: str  # Stripe's: requires_payment_method | requires_confirmation | requires_action |
    #              processing | canceled | succeeded
    customer: str | None = None
    payment_method: str | None = None
    client_secret: str | None = None
    usage: str | None = None


def setup_from_stripe(si) -> Setup:
    if hasattr(si, "to_dict"):
        si = si.to_dict()
    pm, customer = _get(si, "payment_method"), _get(si, "customer")
    return Setup(id=_get(si, "id"), status=_get(si, "status"),
                 customer=customer if isinstance(customer, str) or customer is None else _get(customer, "id"),
                 payment_method=pm if isinstance(pm, str) or pm is None else _get(pm, "id"),
                 client_secret=_get(si, "client_secret"), usage=_get(si, "usage"))


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    object_type: str | None
    object_id: str | None
    payment_intent_id: str | None
    booking_id: str | None


def _get(obj, key, default=None):
    if not isinstance(obj, dict):
        return default
    value = obj.get(key, default)
    return default if value is None else value


def _ts(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=timezone.utc) if value else None


def intent_from_stripe(pi) -> Intent:
    """An Intent from a Stripe PaymentIntent (real Stripe, or localstripe which omits some fields)."""
    if hasattr(pi, "to_dict"):
        pi = pi.to_dict()  # StripeObject (v16) is no mapping: work on plain data
    charge = _get(pi, "latest_charge")
    charge = charge if charge is not None and not isinstance(charge, str) else None
    card = _get(_get(charge, "payment_method_details"), "card")
    capture_before = _get(card, "capture_before")
    status = _get(pi, "status")
    amount = int(_get(pi, "amount", 0))
    received = _get(pi, "amount_received")
    if received is None:  # localstripe: derive from the charge
        received = 0
        if charge is not None and _get(charge, "captured") and _get(charge, "status") == "succeeded":
            received = int(_get(charge, "amount_captured", 0)) or (
                int(_get(charge, "amount", 0)) - int(_get(charge, "amount_refunded", 0)))
    capturable = _get(pi, "amount_capturable")
    if capturable is None:
        capturable = amount if status == "requires_capture" else 0
    error = _get(pi, "last_payment_error")
    pm = _get(pi, "payment_method")
    customer = _get(pi, "customer")
    return Intent(
        id=_get(pi, "id"), status=status, amount=amount, currency=str(_get(pi, "currency", "")).upper(),
        amount_received=int(received), amount_capturable=int(capturable),
        client_secret=_get(pi, "client_secret"),
        customer=customer if isinstance(customer, str) or customer is None else _get(customer, "id"),
        payment_method=pm if isinstance(pm, str) or pm is None else _get(pm, "id"),
        capture_before=_ts(capture_before), created=_ts(_get(pi, "created")),
        metadata=dict(_get(pi, "metadata", {}) or {}), last_error_code=_get(error, "code"))


