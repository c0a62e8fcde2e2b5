"""DynamoDB access of the payments context (through the shared PynamoDB models).

Every write is conditional: payment records carry a version (optimistic locking), a booking moves
only from the status the caller expects, and the moves that belong together (payment authorized +
booking confirmed; payment captured + fee-ledger entry) are one transaction. A lost race surfaces
as `StaleWrite`; the service then re-reads and decides again."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from pynamodb.exceptions import (DoesNotExist, PutError, TransactWriteError, UpdateError)
from pynamodb.transactions import TransactWrite

from homevisits.clock import utc_iso
from homevisits.persistence.booking import BookingModel, CapacityModel
from homevisits.persistence.payments import (PAYMENT_SK, FeeLedgerModel, PaymentModel,
                                             ProcessedEventModel, ReconFindingModel,
                                             StripeCustomerModel, booking_pk, fees_pk)

EVENT_TTL = timedelta(days=30)
FINDING_TTL = timedelta(days=90)


def _transaction() -> TransactWrite:
    # Reuse the models' connection (one botocore client per container, not one per transaction).
    return TransactWrite(connection=PaymentModel._get_connection().connection)


class StaleWrite(Exception):
    """A conditional write lost: someone else changed the item first."""


def _conditional_failed(err: Exception) -> bool:
    cause = getattr(err, "cause_response_code", None)
    if cause in ("ConditionalCheckFailedException", "TransactionCanceledException"):
        return True
    reasons = getattr(err, "cancellation_reasons", None) or []
    return any(r is not None and getattr(r, "code", None) == "ConditionalCheckFailed" for r in reasons)


class NoLongerFits(Exception):
    """The reservation lapsed and the window was given away meanwhile: the booking cannot be confirmed."""


def release_booking(booking_id: str, to_status: str, *, reason: str, now: datetime,
                    expect: tuple[str, ...]):
    """Cancel/expire a booking and give its capacity back (homevisits.lifecycle, one transaction).
    None when the booking already moved elsewhere (e.g. the expiry job was first)."""
    from homevisits import lifecycle
    from homevisits.errors import InvalidTransition
    try:
        return lifecycle.release_booking(booking_id, to_status, reason=reason, now=now, expect=expect)
    except InvalidTransition:
        return None


def _confirmed_ledger(booking: BookingModel, now: datetime) -> CapacityModel:
    """The region-day ledger with the booking's visit marked confirmed (no hold expiry any more).

    The same rule as homevisits.lifecycle.confirm_booking, built from its helpers so payments can put
    the ledger in the payment's own transaction: a visit whose reservation lapsed is re-checked
    against the day and NoLongerFits is raised when its place is gone."""
    from homevisits import capacity, lifecycle
    from homevisits.regions import load_config

    booking_id = booking.booking_id
    ledger = lifecycle.read_ledger(booking.region_day)
    visits = dict(ledger.visits or {})
    raw = visits.get(booking_id)
    still_held = raw is not None and capacity.holds_capacity(raw, utc_iso(now))
    visits[booking_id] = lifecycle.ledger_visit(booking, "confirmed")
    if not still_held:
        region = load_config().region(booking.region)
        counted = lifecycle.counted_visits(ledger, now)
        day = lifecycle.ledger_day(ledger, region, date.fromisoformat(booking.date), now,
                                   counted=lambda bid, r: bid != booking_id and counted(bid, r))
        plan = capacity.check(day, capacity.visit_from_ledger(booking_id, visits[booking_id]), ledger.routes)
        if plan is None:
            raise NoLongerFits(booking_id)
        ledger.routes = plan.sequences()
    ledger.visits = visits
    return ledger


class PaymentsRepository:
    """Payment records, bookings (as payments sees them), customers, processed events, findings."""

    # ---- reads
    def get_booking(self, booking_id: str) -> BookingModel | None:
        try:
            return BookingModel.get(booking_id, consistent_read=True)
        except DoesNotExist:
            return None

    def get_payment(self, booking_id: str) -> PaymentModel | None:
        try:
            return PaymentModel.get(booking_pk(booking_id), PAYMENT_SK, consistent_read=True)
        except DoesNotExist:
            return None

    def due(self, gsi1pk: str, upto: str, limit: int = 200) -> list[PaymentModel]:
        """Payment records in a reconciliation partition of gsi1 with gsi1sk ≤ `upto` (a Query)."""
        return list(PaymentModel.gsi1.query(gsi1pk, PaymentModel.gsi1sk <= upto, limit=limit))

    # ---- customers
    def customer_of(self, patient_sub: str) -> str | None:
        try:
            return StripeCustomerModel.get(f"CUSTOMER#{patient_sub}", "STRIPE").customer_id
        except DoesNotExist:
            return None

    def remember_customer(self, patient_sub: str, customer_id: str, now: datetime) -> str:
        """Store the patient's customer id once; a concurrent first payment keeps the winner's."""
        item = StripeCustomerModel(f"CUSTOMER#{patient_sub}", "STRIPE", customer_id=customer_id,
                                   created_at=utc_iso(now))
        try:
            item.save(condition=StripeCustomerModel.pk.does_not_exist())
            return customer_id
        except PutError as err:
            if not _conditional_failed(err):
                raise
            return self.customer_of(patient_sub) or customer_id

    # ---- payment records
    def new_payment(self, booking: BookingModel, now: datetime, **fields) -> PaymentModel:
        return PaymentModel(booking_pk(booking.booking_id), PAYMENT_SK, booking_id=booking.booking_id,
                            patient_sub=booking.patient_sub, region=booking.region,
                            visit_type=booking.visit_type, amount=int(booking.fee_amount),
                            currency=booking.fee_currency, created_at=utc_iso(now),
                            updated_at=utc_iso(now), **fields)

    def save(self, payment: PaymentModel, now: datetime) -> PaymentModel:
        """Write the record if nobody changed it since it was read (version), else StaleWrite."""
        payment.updated_at = utc_iso(now)
        try:
            payment.save()
        except PutError as err:
            if _conditional_failed(err):
                raise StaleWrite(payment.booking_id) from err
            raise
        return payment

    def authorize_and_confirm(self, payment: PaymentModel, booking: BookingModel, now: datetime) -> None:
        """One transaction: the payment record (as given, version-checked), the booking held→confirmed
        (status and version checked) and the capacity ledger (version checked). Raises StaleWrite
        when any of them changed meanwhile, NoLongerFits when a lapsed reservation lost its place."""
        payment.updated_at = utc_iso(now)
        ledger = _confirmed_ledger(booking, now)
        try:
            with _transaction() as tx:
                tx.save(payment)
                tx.update(booking, actions=[BookingModel.status.set("confirmed"),
                                            BookingModel.payment_status.set(payment.status),
                                            BookingModel.hold_expires_at.remove(),
                                            BookingModel.updated_at.set(utc_iso(now))],
                          condition=BookingModel.status == "held")
                tx.save(ledger)
        except TransactWriteError as err:
            if _conditional_failed(err):
                raise StaleWrite(payment.booking_id) from err
            raise

    def capture_with_ledger(self, payment: PaymentModel, ledger: FeeLedgerModel | None, now: datetime) -> None:
        """One transaction: the payment's captured state and the patient's fee-ledger entry."""
        payment.updated_at = utc_iso(now)
        try:
            with _transaction() as tx:
                tx.save(payment)
                if ledger is not None:
                    tx.save(ledger, condition=FeeLedgerModel.pk.does_not_exist())
        except TransactWriteError as err:
            if _conditional_failed(err):
                raise StaleWrite(payment.booking_id) from err
            raise

    def ledger_entry(self, patient_key: str, booking_id: str, captured_at: str, amount: int,
                     currency: str, counts_toward_cap: bool) -> FeeLedgerModel:
        return FeeLedgerModel(fees_pk(patient_key), f"{captured_at}#{booking_id}", booking_id=booking_id,
                              amount=int(amount), currency=currency, counts_toward_cap=counts_toward_cap)

    def set_booking_payment_status(self, booking_id: str, status: str) -> None:
        """Mirror the payment status on the booking (read by GET /bookings); best effort, no version."""
        try:
            BookingModel(booking_id).update(actions=[BookingModel.payment_status.set(status)],
                                            condition=BookingModel.booking_id.exists(),
                                            add_version_condition=False)
        except UpdateError:
            pass

    # ---- processed events
    def already_processed(self, key: str) -> bool:
        try:
            ProcessedEventModel.get(key, "EVENT")
            return True
        except DoesNotExist:
            return False

    def mark_processed(self, key: str, event_type: str, now: datetime) -> None:
        try:
            ProcessedEventModel(key, "EVENT", type=event_type, processed_at=utc_iso(now),
                                expires_at=now + EVENT_TTL).save(
                condition=ProcessedEventModel.pk.does_not_exist())
        except PutError as err:
            if not _conditional_failed(err):
                raise

    # ---- reconciliation findings (no personal data: booking id, kind, Stripe ids and states)
    def add_finding(self, booking_id: str, kind: str, details: dict, now: datetime) -> None:
        ReconFindingModel(f"RECON#{now.date().isoformat()}", f"{booking_id}#{kind}", booking_id=booking_id,
                          kind=kind, details=details, found_at=utc_iso(now),
                          expires_at=now + FINDING_TTL).save()

    def release_booking(self, booking_id: str, to_status: str, *, reason: str, now: datetime,
                        expect: tuple[str, ...]):
        return release_booking(booking_id, to_status, reason=reason, now=now, expect=expect)
