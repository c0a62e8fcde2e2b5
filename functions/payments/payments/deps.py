"""Wiring: the service with its real repository, Stripe gateway and the stack's clock (built once
per container; tests build PaymentService with fakes instead)."""
from __future__ import annotations

from functools import lru_cache

from homevisits.clock import default_clock


@lru_cache(maxsize=1)
def gateway():
    from payments.gateway import StripeGateway
    return StripeGateway()


def service(on_finding=None):
    from payments.repository import PaymentsRepository
    from payments.service import PaymentService
    return PaymentService(PaymentsRepository(), gateway(), default_clock(), on_finding=on_finding)
