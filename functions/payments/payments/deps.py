"""Wiring: the use cases' context with the real repository, Stripe gateway and the stack's clock
(the gateway built once per container; tests build a PaymentContext with fakes instead)."""
from __future__ import annotations

from functools import lru_cache

from homevisits.clock import default_clock
from homevisits.observability import get_logger


@lru_cache(maxsize=1)
def gateway():
    from payments.gateway import StripeGateway
    return StripeGateway()


def context(on_finding=None):
    from payments.context import PaymentContext
    from payments.repository import PaymentsRepository
    return PaymentContext(PaymentsRepository(), gateway(), default_clock(), on_finding=on_finding)


def warm() -> None:
    """At the API function's init (payments.app), what a patient's first payment would otherwise do
    inside its 15 s: import Stripe's SDK (~0.4 s of CPU) and build the DynamoDB clients of the models
    it uses and the EventBridge client (~75 ms of CPU each, one botocore session apiece). On a loaded
    machine that CPU took seconds and first payments ran past the timeout (docs/benchmarks-booking.md);
    Lambda does not count the init in an invocation's timeout. Nothing is sent anywhere. A failure
    here only leaves the work to the first request, as before."""
    try:
        import payments.gateway  # noqa: F401  (stripe)
        from homevisits.aws import client
        from homevisits.persistence.base import build_clients
        from homevisits.persistence.booking import BookingModel
        from homevisits.persistence.ledger import LedgerShardModel
        from homevisits.persistence.payments import PaymentModel, StripeCustomerModel
        build_clients(BookingModel, PaymentModel, StripeCustomerModel, LedgerShardModel)
        client("events")
    except Exception:  # an optimisation only: never fail the function's init for it
        get_logger("payments").warning("warm-up at init failed; the first request builds its clients",
                                       exc_info=True)
