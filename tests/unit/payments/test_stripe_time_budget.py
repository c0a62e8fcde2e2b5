"""Every Stripe call ends, retries included, well inside the payments functions' timeouts (read from
template.yaml), measured against real sockets: a Stripe that never answers and one that keeps failing."""
from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from homevisits.errors import PaymentProviderUnavailable
from payments.gateway import CALL_BUDGET_S, MAX_NETWORK_RETRIES, StripeGateway, _client

SLACK_S = 0.75  # thread scheduling on a loaded machine; the SDK's own bookkeeping


def _payments_function_timeouts() -> dict[str, float]:
    from devstack import template
    tpl = template.load()
    default = tpl["Globals"]["Function"]["Timeout"]
    return {lid: float(fn["Properties"].get("Timeout", default))
            for lid, fn in template.functions(tpl).items()
            if fn["Properties"].get("CodeUri", "").rstrip("/") == "functions/payments"}


def test_two_stripe_calls_fit_well_inside_every_payments_function_timeout():
    """A first payment makes two calls (customer, hold); both at their worst leave a third of the time."""
    timeouts = _payments_function_timeouts()
    assert "PaymentsFunction" in timeouts and timeouts["PaymentsFunction"] == 15
    for lid, timeout_s in timeouts.items():
        assert 2 * (CALL_BUDGET_S + SLACK_S) <= timeout_s * 0.8, lid


@pytest.fixture
def black_hole():
    """A TCP port that accepts connections and never answers (a hung Stripe)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}", conns
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def _hold(gateway):
    return gateway.hold(booking_id="b1", amount=35000, currency="SEK", customer="cus_1", payment_method="pm_1",
                        key="hold:b1:1")


def test_a_stripe_that_never_answers_costs_one_call_budget_then_503(black_hole):
    base, conns = black_hole
    gateway = StripeGateway(client=_client("sk_test_hung", base))
    started = time.monotonic()
    with pytest.raises(PaymentProviderUnavailable):
        _hold(gateway)
    elapsed = time.monotonic() - started
    assert CALL_BUDGET_S - 1.5 <= elapsed <= CALL_BUDGET_S + SLACK_S, elapsed
    assert len(conns) >= 1


class _Failing(BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self):
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"error": {"type": "api_error", "message": "boom"}}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_failing_stripe_is_retried_with_the_same_key_inside_the_budget():
    _Failing.hits = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        gateway = StripeGateway(client=_client("sk_test_failing", f"http://127.0.0.1:{srv.server_port}"))
        started = time.monotonic()
        with pytest.raises(PaymentProviderUnavailable):
            _hold(gateway)
        elapsed = time.monotonic() - started
    finally:
        srv.shutdown()
        srv.server_close()
    assert _Failing.hits == 1 + MAX_NETWORK_RETRIES
    assert elapsed <= CALL_BUDGET_S, elapsed
