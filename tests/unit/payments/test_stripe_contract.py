"""Contract: every request the Stripe port sends, recorded at the SDK's HTTP client layer (the real
SDK encodes it), is checked against the pinned SDK's typed params for that call (the
`stripe.params.*Params` TypedDicts generated for STRIPE_API_VERSION): no key the API version does not
have (writable `payment_method_types` was removed in 2026-09-30.endive), every required key, literal
values from their allowed set; and each request carries the pinned Stripe-Version and, when it writes,
an idempotency key."""
from __future__ import annotations

import json
import re
import sys
import types
import typing
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
import stripe.params
import typing_extensions

from payments.gateway import STRIPE_API_VERSION, StripeGateway

ROUTES = [  # (method, path) -> the params TypedDict of that call in the pinned SDK
    ("POST", r"/v1/customers", "CustomerCreateParams"),
    ("POST", r"/v1/payment_intents", "PaymentIntentCreateParams"),
    ("POST", r"/v1/payment_intents/[^/]+/capture", "PaymentIntentCaptureParams"),
    ("POST", r"/v1/payment_intents/[^/]+/cancel", "PaymentIntentCancelParams"),
    ("POST", r"/v1/refunds", "RefundCreateParams"),
    ("GET", r"/v1/payment_intents/[^/]+", "PaymentIntentRetrieveParams"),
    ("POST", r"/v1/setup_intents", "SetupIntentCreateParams"),
    ("GET", r"/v1/setup_intents/[^/]+", "SetupIntentRetrieveParams"),
]
INTENT = {"id": "pi_1", "object": "payment_intent", "status": "requires_capture", "amount": 35000,
          "amount_capturable": 35000, "amount_received": 0, "currency": "sek", "metadata": {}}
ANSWERS = {"/v1/customers": {"id": "cus_1", "object": "customer"},
           "/v1/refunds": {"id": "re_1", "object": "refund"},
           "/v1/setup_intents": {"id": "seti_1", "object": "setup_intent", "status": "succeeded",
                                 "usage": "off_session", "customer": "cus_1", "payment_method": "pm_1"}}


class RecordingHTTPClient(stripe.HTTPClient):
    """The SDK's HTTP layer, recording what would go on the wire and answering a plausible object."""
    name = "recording"

    def __init__(self):
        super().__init__()
        self.requests: list[tuple[str, str, dict, str | None]] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        self.requests.append((method.upper(), url, dict(headers or {}), post_data))
        path = urlsplit(url).path
        body = ANSWERS.get("/v1/setup_intents" if path.startswith("/v1/setup_intents") else path, INTENT)
        return json.dumps(body), 200, {"request-id": "req_1"}

    def close(self):
        pass


def decode(encoded: str) -> dict:
    """The nested params of a Stripe form body or query (`a[b][0]=x` -> {"a": {"b": ["x"]}})."""
    root: dict = {}
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node):
        if isinstance(node, dict):
            if node and all(k.isdigit() for k in node):
                return [lists(node[k]) for k in sorted(node, key=int)]
            return {k: lists(v) for k, v in node.items()}
        return node
    return lists(root)


def _resolve(tp, module):
    if isinstance(tp, str):
        tp = typing.ForwardRef(tp)
    if isinstance(tp, typing.ForwardRef):
        namespace = {**vars(typing), **vars(typing_extensions), **vars(module)}
        return eval(tp.__forward_arg__, namespace)  # the SDK's own annotation text
    return tp


def violations(value, tp, module, path: str) -> list[str]:
    """Where `value` (form-decoded: scalars are strings) does not fit the annotation `tp`."""
    tp = _resolve(tp, module)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing_extensions.NotRequired, typing_extensions.Required, typing.NotRequired,
                  typing.Required):
        return violations(value, args[0], module, path)
    if origin in (typing.Union, types.UnionType):
        options = [violations(value, a, module, path) for a in args]
        return [] if any(not v for v in options) else min(options, key=len)
    if origin in (typing.Literal, typing_extensions.Literal):
        return [] if isinstance(value, str) and value in {str(a).lower() if isinstance(a, bool) else str(a) for a in args} else \
            [f"{path}={value!r} not one of {args}"]
    if origin in (list, typing.List):
        if not isinstance(value, list):
            return [f"{path} is not a list"]
        return [v for i, item in enumerate(value) for v in violations(item, args[0], module, f"{path}[{i}]")]
    if origin in (dict, typing.Dict) or tp in (dict, typing.Dict):
        return [] if isinstance(value, dict) else [f"{path} is not a map"]
    if typing_extensions.is_typeddict(tp):
        return check_params(value, tp, f"{path}.")
    if tp is bool:
        return [] if value in ("true", "false") else [f"{path}={value!r} is not a bool"]
    if tp is int:
        return [] if isinstance(value, str) and value.lstrip("-").isdigit() else [f"{path}={value!r} is not an int"]
    if tp is str:
        return [] if isinstance(value, str) else [f"{path} is not a string"]
    return []  # another type (e.g. an untyped StripeObject): nothing to check


def check_params(params: dict, typed_dict, path: str = "") -> list[str]:
    """The keys and values of `params` against one of the SDK's params TypedDicts (own keys only:
    request options never travel in the body)."""
    if not isinstance(params, dict):
        return [f"{path or 'params'} is not an object"]
    module = sys.modules[typed_dict.__module__]
    own = typed_dict.__dict__.get("__annotations__", {})
    problems = [f"{path}{key}: not a parameter of {typed_dict.__name__} on {STRIPE_API_VERSION}"
                for key in params if key not in own]
    problems += [f"{path}{key}: required by {typed_dict.__name__}" for key in own
                 if key in typed_dict.__required_keys__ and key not in params]
    for key, value in params.items():
        if key in own:
            problems += violations(value, own[key], module, f"{path}{key}")
    return problems


def params_class(method: str, path: str):
    for m, pattern, name in ROUTES:
        if m == method and re.fullmatch(pattern, path):
            return getattr(stripe.params, name)
    raise AssertionError(f"the port calls {method} {path}, which this contract does not know")


@pytest.fixture
def recorded():
    """Every port operation once, through the real SDK onto the recording HTTP layer."""
    http = RecordingHTTPClient()
    client = stripe.StripeClient("sk_test_contract", stripe_version=STRIPE_API_VERSION, http_client=http)
    gateway = StripeGateway(client=client)
    gateway.ensure_customer("patient-1")
    gateway.hold(booking_id="b1", amount=35000, currency="SEK", customer="cus_1", payment_method="pm_1",
                 key="hold:b1:1", metadata={"attempt": "1"})
    gateway.hold(booking_id="b1", amount=35000, currency="SEK", customer="cus_1", payment_method="pm_1",
                 key="renew:b1:1", off_session=True)
    gateway.capture("pi_1", 30000, key="capture:b1")
    gateway.release("pi_1", key="release:b1:pi_1")
    gateway.refund("pi_1", 5000, key="refund:b1")
    gateway.charge_off_session(booking_id="b1", customer="cus_1", payment_method="pm_1", amount=5000,
                               currency="NOK", key="fee-rest:b1", kind="late_cancellation_rest")
    gateway.retrieve("pi_1")
    gateway.save_card(booking_id="b2", customer="cus_1", payment_method="pm_1", key="setup:b2:1")
    gateway.retrieve_setup("seti_1")
    return http.requests


def test_every_request_fits_the_pinned_sdk_params_of_its_call(recorded):
    assert len(recorded) == 10
    problems = []
    for method, url, headers, body in recorded:
        parts = urlsplit(url)
        params = decode(body if method == "POST" else parts.query)
        problems += [f"{method} {parts.path}: {p}" for p in check_params(params, params_class(method, parts.path))]
    assert not problems, "\n".join(problems)


def test_every_request_names_the_pinned_version_and_writes_are_idempotent(recorded):
    for method, url, headers, _ in recorded:
        assert headers.get("Stripe-Version") == STRIPE_API_VERSION, url
        if method == "POST":
            assert headers.get("Idempotency-Key"), url


def test_holds_and_charges_expand_the_charge_and_take_cards_only(recorded):
    creates = [decode(body) for method, url, _, body in recorded if urlsplit(url).path == "/v1/payment_intents"]
    assert len(creates) == 3
    for params in creates:
        assert params["expand"] == ["latest_charge"]
        assert params["allowed_payment_method_types"] == ["card"]
        assert params["automatic_payment_methods"] == {"enabled": "true", "allow_redirects": "never"}


def test_the_contract_catches_a_removed_parameter():
    """The check itself: writable payment_method_types, as the port sent it before, is refused."""
    problems = check_params({"amount": "35000", "currency": "sek", "payment_method_types": ["card"]},
                            stripe.params.PaymentIntentCreateParams)
    assert problems == ["payment_method_types: not a parameter of PaymentIntentCreateParams on "
                        f"{STRIPE_API_VERSION}"]
    wrong = check_params({"amount": "x", "automatic_payment_methods": {"redirects": "never"}},
                         stripe.params.PaymentIntentCreateParams)
    assert sorted(wrong) == sorted([
        "currency: required by PaymentIntentCreateParams", "amount='x' is not an int",
        f"automatic_payment_methods.redirects: not a parameter of PaymentIntentCreateParamsAutomaticPaymentMethods "
        f"on {STRIPE_API_VERSION}",
        "automatic_payment_methods.enabled: required by PaymentIntentCreateParamsAutomaticPaymentMethods"])


def test_a_free_visits_card_is_saved_for_off_session_use_confirmed_at_once(recorded):
    """SetupIntent.create as the pinned SDK types it: the customer and card, usage off_session,
    confirmed server side without redirects, cards only (issue 12, defect 4)."""
    creates = [decode(body) for method, url, _, body in recorded if urlsplit(url).path == "/v1/setup_intents"]
    assert creates == [{"customer": "cus_1", "payment_method": "pm_1", "usage": "off_session", "confirm": "true",
                        "automatic_payment_methods": {"enabled": "true", "allow_redirects": "never"},
                        "allowed_payment_method_types": ["card"],
                        "metadata": {"booking_id": "b2", "purpose": "missed_visit_fees"}}]
