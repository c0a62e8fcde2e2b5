"""Wiring: the use cases' context with the real repository, Stripe gateway and the stack's clock
(the gateway built once per container; tests build a PaymentContext with fakes instead)."""
from __future__ import annotations

from functools import lru_cache

from homevisits.clock import default_clock


@lru_cache(maxsize=1)
def gateway():
    from payments.gateway import StripeGateway
    return StripeGateway()


def context(on_finding=None):
    from payments.context import PaymentContext
    from payments.repository import PaymentsRepository
    return PaymentContext(PaymentsRepository(), gateway(), default_clock(), on_finding=on_finding)
