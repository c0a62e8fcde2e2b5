"""The Stripe port: the only module that imports stripe.

`StripeGateway` speaks PaymentIntents with manual capture (and SetupIntents to save a free visit's
card for its fees) and maps every Stripe error to a domain
error: a declined card -> PaymentDeclined (402), the network/5xx/rate limits -> PaymentProviderUnavailable
(503), a refused request (wrong state, idempotency clash) -> PaymentRejected. Every mutating call
takes an idempotency key derived from what it protects (`hold:{booking}:{attempt}`,
`capture:{booking}`, …): Stripe replays the first answer for a key, so a retry can never hold,
capture or refund twice.

Keys: locally STRIPE_API_KEY (+ STRIPE_API_BASE for localstripe); on AWS the secret key from the SSM
SecureString named by STRIPE_SECRET_PARAMETER, read through Powertools parameters (cached).

API version: every request sends `Stripe-Version: STRIPE_API_VERSION`, the version the pinned SDK's
typed params were generated for (a test fails when an SDK upgrade changes it, so the API version only
moves on purpose). On that version `payment_method_types` is no longer writable (400
`payment_method_types_no_longer_supported` since 2026-09-30.endive); holds use dynamic payment
methods restricted to cards, without redirects (the card is confirmed here, server side).

Time: one Stripe call, retries included, ends within CALL_BUDGET_S (`_BoundedHTTPClient`), so the
payments functions (15 s for the API) answer inside their timeout even when Stripe hangs.
"""
from __future__ import annotations

import json
import threading
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

import stripe

if TYPE_CHECKING:
    from pydantic import SecretStr
    from stripe._base_address import BaseAddresses
    from stripe.params import PaymentIntentCreateParams, SetupIntentCreateParams

from homevisits import settings
from payments.stripe_objects import (Intent, Setup, WebhookEvent, _get, intent_from_stripe,  # noqa: F401
                                     setup_from_stripe)
from homevisits.errors import (InvalidEvent, InvalidSignature, PaymentDeclined, PaymentProviderUnavailable,
                               PaymentRejected)

SECRET_MAX_AGE_S = 300
# The API version the pinned SDK (pyproject: stripe>=16.1,<16.2) was generated for. Upgrade both together,
# after reading Stripe's changelog for every version in between (docs/deployment.md lists what was checked).
STRIPE_API_VERSION = "2026-10-28.endive"
# One Stripe call, its retries included, ends within CALL_BUDGET_S. The payments API function has 15 s
# (template.yaml) and a first payment makes two calls (customer, hold): 2 x 5 s leaves 5 s for
# DynamoDB. A retry reuses the idempotency key, and a call cut short answers 503 with Retry-After:
# the app retries with the same key and Stripe replays the first answer, so a short budget never
# doubles a hold or a capture.
CALL_BUDGET_S = 5.0
CONNECT_TIMEOUT_S = 2.0
MAX_NETWORK_RETRIES = 2
MIN_ATTEMPT_S = 1.0  # no attempt (first or retry) starts with less time than this left

T = TypeVar("T")


def _map_error(err: Exception, action: str) -> Exception:
    if isinstance(err, stripe.CardError):
        error = err.error
        declined = PaymentDeclined(
            "The card was declined. Please use another card or contact your bank.",
            details={"decline_code": getattr(error, "decline_code", None) or err.code or "card_declined"})
        body = error.to_dict() if error is not None else None
        declined.payment_intent_id = _get(_get(body, "payment_intent"), "id")
        declined.stripe_code = err.code
        return declined
    if isinstance(err, (stripe.APIConnectionError, stripe.RateLimitError, stripe.AuthenticationError,
                        stripe.PermissionError)):
        return PaymentProviderUnavailable(f"the payment provider did not answer ({action}); please retry")
    if isinstance(err, stripe.IdempotencyError):
        return PaymentRejected(f"{action}: the idempotency key was used with other parameters",
                               code="idempotency_conflict")
    if isinstance(err, stripe.InvalidRequestError):
        rejected = PaymentRejected(f"the payment provider refused to {action}")
        rejected.stripe_code = err.code
        return rejected
    if isinstance(err, stripe.StripeError):
        status = getattr(err, "http_status", None) or 500
        if status >= 500 or status == 409:
            return PaymentProviderUnavailable(f"the payment provider failed ({action}); please retry")
        return PaymentRejected(f"the payment provider refused to {action}")
    return err


def _secret(value: SecretStr | None, parameter: str | None, what: str) -> str:
    """The secret given in the environment (local, tests), else the SSM parameter named there (AWS)."""
    if value:
        return value.get_secret_value()
    name = parameter
    if not name:
        raise PaymentProviderUnavailable(f"no Stripe {what} configured")
    from aws_lambda_powertools.utilities import parameters
    return parameters.get_parameter(name, decrypt=True, max_age=SECRET_MAX_AGE_S)


class _BoundedHTTPClient(stripe.RequestsClient):
    """The SDK's requests client with one time budget per Stripe call: each attempt's connect and read
    timeouts shrink to the time left, and no retry starts (nor sleeps) past what is left.

    The SDK retries network errors, 409 and 5xx with the same idempotency key (safe by construction);
    its backoff sleeps 0.5 s, then up to 1 s (stripe._http_client.HTTPClient)."""

    def __init__(self, budget_s: float = CALL_BUDGET_S, connect_s: float = CONNECT_TIMEOUT_S):
        super().__init__(timeout=(connect_s, budget_s))
        self.budget_s, self.connect_s = budget_s, connect_s
        self._deadline = threading.local()

    def _left(self) -> float:
        return getattr(self._deadline, "at", time.monotonic() + self.budget_s) - time.monotonic()

    def request_with_retries(self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None,
                             max_network_retries: int | None = None, *, _usage: list[str] | None = None):
        self._deadline.at = time.monotonic() + self.budget_s
        try:
            return super().request_with_retries(method, url, headers, post_data, max_network_retries,
                                                _usage=_usage)
        finally:
            del self._deadline.at

    # RequestsClient answers bytes where HTTPClient declares str: the SDK's own override, kept as is.
    def request(self, method: str, url: str, headers: Mapping[str, str] | None,  # type: ignore[override]
                post_data: Any = None, *, _usage: list[str] | None = None) -> tuple[bytes, int, Mapping[str, str]]:
        left = self._left()
        if left < MIN_ATTEMPT_S:
            raise stripe.APIConnectionError(f"no time left for the payment provider ({left:.1f} s)",
                                            should_retry=False)
        connect = min(self.connect_s, left / 2)
        self._timeout = (connect, left - connect)  # connect + read never exceed what is left
        return super().request(method, url, headers, post_data)

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return min(super()._sleep_time_seconds(num_retries), max(0.0, self._left() - MIN_ATTEMPT_S))

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries) -> bool:
        if self._left() < MIN_ATTEMPT_S + self.INITIAL_DELAY:  # the SDK sleeps at least this first
            return False
        return super()._should_retry(response, api_connection_error, num_retries, max_network_retries)


@lru_cache(maxsize=4)
def _client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    base: BaseAddresses | None = {"api": api_base} if api_base else None
    return stripe.StripeClient(api_key, stripe_version=STRIPE_API_VERSION, base_addresses=base,
                               http_client=_BoundedHTTPClient(), max_network_retries=MAX_NETWORK_RETRIES)


def _refuse_below_minimum(amount: int, currency: str, action: str) -> None:
    """The domain waives amounts below Stripe's minimum charge (homevisits.tariff.chargeable); one that
    still arrives here is a bug, refused before Stripe would answer it with a 400 amount_too_small."""
    from homevisits.regions import load_config
    from homevisits.tariff import chargeable
    if chargeable(load_config(), amount, currency) != int(amount) or int(amount) <= 0:
        raise PaymentRejected(f"{action}: {amount} {currency.upper()} is below the minimum card charge",
                              code="amount_below_minimum")


class StripeGateway:
    """Holds, captures, releases and refunds fees on Stripe (amounts in minor units)."""

    def __init__(self, client: stripe.StripeClient | None = None):
        self._given = client

    @property
    def client(self) -> stripe.StripeClient:
        if self._given is not None:
            return self._given
        config = settings.get()
        return _client(_secret(config.stripe_api_key, config.stripe_secret_parameter, "secret key"),
                       config.stripe_api_base)

    def _call(self, action: str, fn: Callable[..., T], *args, **kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as err:
            raise _map_error(err, action) from err

    def ensure_customer(self, patient_sub: str) -> str:
        """The id of a new Stripe customer for the patient (no personal data sent: only our id)."""
        customer = self._call("create a customer", self.client.v1.customers.create,
                              params={"metadata": {"patient_sub": patient_sub}},
                              options={"idempotency_key": f"customer:{patient_sub}"})
        return customer.id

    def hold(self, *, booking_id: str, amount: int, currency: str, customer: str, payment_method: str,
             key: str, off_session: bool = False, metadata: dict | None = None) -> Intent:
        """Authorize `amount` on the card without capturing it (capture_method=manual).

        On session the card is also saved for later off-session charges (late fees, renewals);
        off session (a renewal) Stripe answers a card needing 3-D Secure with a decline. The charge is
        expanded so that its `capture_before` (when the authorization lapses) is read."""
        _refuse_below_minimum(amount, currency, "hold the fee")
        params: PaymentIntentCreateParams = {
            "amount": int(amount), "currency": currency.lower(), "customer": customer,
            "payment_method": payment_method,
            # Dynamic payment methods limited to cards, confirmed here without a redirect (3-D Secure
            # is a next_action the app completes with Stripe.js, not a redirect).
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "allowed_payment_method_types": ["card"], "capture_method": "manual", "confirm": True, "expand": ["latest_charge"],
            "metadata": {"booking_id": booking_id, **(metadata or {})},
        }
        if off_session:
            params["off_session"] = True
        else:
            params["payment_method_options"] = {"card": {"setup_future_usage": "off_session"}}
        pi = self._call("hold the fee", self.client.v1.payment_intents.create, params=params,
                        options={"idempotency_key": key})
        return intent_from_stripe(pi)

    def capture(self, payment_intent_id: str, amount: int, key: str) -> Intent:
        """Capture `amount` (≤ the held amount; the rest of the hold is released)."""
        pi = self._call("capture the fee", self.client.v1.payment_intents.capture, payment_intent_id,
                        params={"amount_to_capture": int(amount)}, options={"idempotency_key": key})
        return intent_from_stripe(pi)

    def release(self, payment_intent_id: str, key: str) -> Intent:
        """Cancel an uncaptured PaymentIntent: the hold on the card goes away."""
        pi = self._call("release the hold", self.client.v1.payment_intents.cancel, payment_intent_id,
                        options={"idempotency_key": key})
        return intent_from_stripe(pi)

    def refund(self, payment_intent_id: str, amount: int, key: str) -> str:
        refund = self._call("refund the fee", self.client.v1.refunds.create,
                            params={"payment_intent": payment_intent_id, "amount": int(amount)},
                            options={"idempotency_key": key})
        return refund.id

    def charge_off_session(self, *, booking_id: str, customer: str, payment_method: str, amount: int,
                           currency: str, key: str, kind: str) -> Intent:
        """Charge the saved card now, without the patient present (capture at once)."""
        _refuse_below_minimum(amount, currency, "charge the fee")
        params: PaymentIntentCreateParams = {
            "amount": int(amount), "currency": currency.lower(), "customer": customer,
            "payment_method": payment_method,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "allowed_payment_method_types": ["card"], "confirm": True, "off_session": True, "expand": ["latest_charge"],
            "metadata": {"booking_id": booking_id, "kind": kind}}
        pi = self._call("charge the fee", self.client.v1.payment_intents.create, params=params,
                        options={"idempotency_key": key})
        return intent_from_stripe(pi)

    def save_card(self, *, booking_id: str, customer: str, payment_method: str, key: str) -> Setup:
        """Save the card for off-session charges without taking money (a SetupIntent, usage
        off_session, confirmed here): a free visit's late-cancellation or no-show fee can then be
        charged. A card needing 3-D Secure answers requires_action (the app completes it)."""
        params: SetupIntentCreateParams = {
            "customer": customer, "payment_method": payment_method, "usage": "off_session", "confirm": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "allowed_payment_method_types": ["card"],
            "metadata": {"booking_id": booking_id, "purpose": "missed_visit_fees"}}
        si = self._call("save the card", self.client.v1.setup_intents.create, params=params,
                        options={"idempotency_key": key})
        return setup_from_stripe(si)

    def retrieve_setup(self, setup_intent_id: str) -> Setup:
        si = self._call("read the saved card", self.client.v1.setup_intents.retrieve, setup_intent_id)
        return setup_from_stripe(si)

    def retrieve(self, payment_intent_id: str) -> Intent:
        pi = self._call("read the payment", self.client.v1.payment_intents.retrieve, payment_intent_id,
                        params={"expand": ["latest_charge"]})
        return intent_from_stripe(pi)

    def verify_webhook(self, payload: str, signature: str | None, secret: str | None = None) -> WebhookEvent:
        """The event of a webhook whose Stripe-Signature matches the exact raw `payload`.

        Raises InvalidSignature for a missing, stale or tampered signature or a body that is not JSON."""
        secret = secret or _secret(settings.get().stripe_webhook_secret, settings.get().stripe_webhook_secret_parameter,
                                   "webhook secret")
        if not signature or payload is None:
            raise InvalidSignature("the webhook is not signed")
        try:
            stripe.WebhookSignature.verify_header(payload, signature, secret,
                                                  stripe.Webhook.DEFAULT_TOLERANCE)
            raw = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError):
            raise InvalidSignature("the webhook signature does not match") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("data") or {}, dict):
            raise InvalidEvent("the webhook body is not a Stripe event object")
        obj = (raw.get("data") or {}).get("object") or {}
        if not isinstance(obj, dict):
            raise InvalidEvent("the webhook event's data.object is not an object")
        object_type = obj.get("object")
        pi_id = obj.get("id") if object_type == "payment_intent" else obj.get("payment_intent")
        if isinstance(pi_id, dict):
            pi_id = pi_id.get("id")
        return WebhookEvent(id=str(raw.get("id") or ""), type=str(raw.get("type") or ""),
                            object_type=object_type, object_id=obj.get("id"), payment_intent_id=pi_id,
                            booking_id=(obj.get("metadata") or {}).get("booking_id"))
