"""What every payments use case shares: one small context (repository, Stripe port, clock, config,
publish) and the few rules they all apply — is this money owed by the booking's own state, does a
fee count toward the high-cost cap, record a finding, give a hold back.

The use cases (one module each, docs/payments.md): `hold` (POST /bookings/{id}/payment), `capture`
(visit completed), `cancellation` (release, late/no-show fees, waivers), `repair` (Stripe's view,
renewals, reconciliation). Every move of the payment state machine is a conditional write on the
record's version, so the API, the webhook, the event consumer and reconciliation can race and only
one of them wins; the others re-read and find the work done. Every Stripe call carries a key
derived from what it protects, so a repeated call can never hold, capture or refund twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from homevisits.booking_state import OPEN, BookingStatus as S
from homevisits.clock import Clock, parse_utc
from homevisits.errors import PaymentRejected
from homevisits.observability import get_logger
from homevisits.tariff import FRIKORT_VISIT_TYPES

logger = get_logger("payments")

# A customer-initiated card authorization lasts 7 days; a merchant-initiated one (our renewals)
# can be as short as 4 days 18 hours (Visa). Used when Stripe does not tell us capture_before.
ON_SESSION_VALIDITY = timedelta(days=7)
OFF_SESSION_VALIDITY = timedelta(days=4, hours=18)


def _default_publish(source: str, detail_type: str, detail: dict) -> None:
    from homevisits.messaging import publish
    publish(source, detail_type, detail)


@dataclass
class PaymentContext:
    """The dependencies of every use case: `repo` (payments.repository.PaymentsRepository or a fake),
    `gateway` (payments.gateway.StripeGateway or a fake), `clock`, `config` (the service's config,
    loaded when not given), `publish(source, detail_type, detail)` for bus events, and `on_finding`
    (called with each finding, e.g. to count them in a metric)."""
    repo: Any
    gateway: Any
    clock: Clock
    config: Any = None
    publish: Callable[[str, str, dict], None] = field(default=_default_publish)
    on_finding: Callable[[str, str, dict], None] | None = None

    def __post_init__(self) -> None:
        if self.config is None:
            from homevisits.regions import load_config
            self.config = load_config()
        if self.publish is None:
            self.publish = _default_publish

    def now(self) -> datetime:
        return self.clock.now()

    def save(self, payment):
        """The payment record, conditional on its version (StaleWrite when it moved meanwhile)."""
        return self.repo.save(payment, self.now())

    def note_provider_down(self, payment, booking_id: str) -> None:
        """Stripe did not answer: the attempt says so (best effort; the caller re-raises the error)."""
        payment.last_error = "provider_unavailable"
        try:
            self.save(payment)
        except Exception:
            logger.exception("could not record the provider error", extra={"booking_id": booking_id})

    def finding(self, booking_id: str, kind: str, details: dict | None = None) -> None:
        """Something a person should look at: logged (ids only), stored in OpsTable, counted."""
        details = details or {}
        logger.warning("payment finding", extra={"booking_id": booking_id, "finding": kind, **details})
        try:
            self.repo.add_finding(booking_id, kind, details, self.now())
        except Exception:  # a report must never break the money path
            logger.exception("could not store the finding", extra={"booking_id": booking_id})
        if self.on_finding:
            self.on_finding(booking_id, kind, details)


def customer_for(ctx: PaymentContext, patient_sub: str) -> str:
    """The patient's Stripe customer, created (once, under `customer:{sub}`) on their first payment."""
    customer = ctx.repo.customer_of(patient_sub)
    if customer is None:
        customer = ctx.repo.remember_customer(patient_sub, ctx.gateway.ensure_customer(patient_sub), ctx.now())
    return customer


def patient_key(booking) -> str | None:
    """The treated patient's ledger key (the child's when a guardian booked)."""
    from homevisits.identity import person_key
    return person_key(booking.for_child or booking.patient)


def set_gsi(payment, partition: str | None, sort: str | None = None) -> None:
    """List the record where reconciliation looks next (`partition`, due at `sort`), or nowhere."""
    payment.gsi1pk = partition
    payment.gsi1sk = f"{sort}#{payment.booking_id}" if partition else None


def owed(booking, kind: str) -> bool:
    """Does the booking's own state call for this money move? `kind`: visit (the visit fee),
    late, no_show (their fees), release (give the hold back). Events only say *when* to look."""
    if booking is None:
        return kind == "release"
    decision = (booking.cancellation or {}).get("fee_decision")
    if kind == "visit":
        return booking.status == S.COMPLETED
    if kind == "no_show":
        return booking.status == S.NO_SHOW
    if kind == "late":
        return booking.status == S.CANCELLED and decision == "late"
    if kind == "release":
        return booking.status not in OPEN and not (booking.status == S.CANCELLED and decision == "late")
    return False


def not_owed(booking_id: str, kind: str, booking) -> str:
    """A money event the booking's state does not call for: nothing changes; logged (ids only)."""
    logger.warning("payment event ignored: the booking's state does not call for it",
                   extra={"booking_id": booking_id, "kind": kind,
                          "booking_status": str(booking.status) if booking is not None else None})
    return "ignored_wrong_state"


def hold_expired(ctx: PaymentContext, booking) -> bool:
    """The booking's reservation (its time to be paid) has run out."""
    return bool(booking.hold_expires_at) and parse_utc(booking.hold_expires_at) <= ctx.now()


def capture_before(ctx: PaymentContext, intent, off_session: bool) -> datetime:
    """Until when the hold `intent` can be captured (Stripe's figure, else the card networks')."""
    if intent.capture_before:
        return intent.capture_before
    start = intent.created or ctx.now()
    return start + (OFF_SESSION_VALIDITY if off_session else ON_SESSION_VALIDITY)


def counts_toward_cap(ctx: PaymentContext, booking) -> bool:
    """Does this booking's visit fee count toward the high-cost protection's cap?"""
    region = ctx.config.region(booking.region)
    return booking.visit_type in FRIKORT_VISIT_TYPES and \
        region.country in ctx.config.payments.get("high_cost_cap", {})


def release_intent(ctx: PaymentContext, booking_id: str, payment_intent_id: str):
    """Cancel a hold; answers the PaymentIntent as it ends up (canceled, or already captured)."""
    try:
        return ctx.gateway.release(payment_intent_id, key=f"release:{booking_id}:{payment_intent_id}")
    except PaymentRejected:
        intent = ctx.gateway.retrieve(payment_intent_id)
        if intent.status in ("canceled", "succeeded", "requires_payment_method"):
            return intent
        raise
