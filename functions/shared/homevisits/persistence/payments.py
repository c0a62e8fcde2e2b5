"""Payments: one payment record per booking, the per-patient fee ledger, processed events, Stripe
customers (PaymentsTable, pk/sk + sparse gsi1), and reconciliation findings (OpsTable).

Item shapes on PaymentsTable (no card data, ever: only Stripe ids):
| pk                        | sk                          | what                                   |
|---------------------------|-----------------------------|----------------------------------------|
| BOOKING#{booking_id}      | PAYMENT                     | the payment record (state machine)     |
| FEES#{patient_key}        | {captured_at}#{booking_id}  | a captured visit fee (high-cost cap)   |
| STRIPE_EVENT#{event_id}   | EVENT                       | a processed webhook event (TTL 30 d)   |
| BUS_EVENT#{event_id}      | EVENT                       | a processed bus event (TTL 30 d)       |
| CUSTOMER#{patient_sub}    | STRIPE                      | the patient's Stripe customer id       |
gsi1 is sparse: only records that reconciliation must look at carry gsi1pk/gsi1sk
(HOLD_EXPIRY/capture_before, ACTION_PENDING/created_at, CAPTURE_DUE/due_at, PENDING/created_at).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.attributes import (BooleanAttribute, NumberAttribute, TTLAttribute, UnicodeAttribute,
                                 VersionAttribute)
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from homevisits.clock import utc_iso
from homevisits.persistence.base import JSONAttribute, condition_failed, meta, transaction

PAYMENT_SK = "PAYMENT"
EVENT_SK = "EVENT"

# Payment states (docs/payments.md): pending -> requires_action -> authorized -> captured,
# or -> released / failed.
PENDING, REQUIRES_ACTION, AUTHORIZED, CAPTURED, RELEASED, FAILED = (
    "pending", "requires_action", "authorized", "captured", "released", "failed")
OPEN_STATES = (PENDING, REQUIRES_ACTION)
# A late-cancellation or no-show fee with no card to take it from: recorded to be invoiced.
INVOICED = "invoiced"
# What a record is for (`kind`; absent: the visit fee's hold). A free visit's record saves the card
# for its fees (a SetupIntent, nothing held: pending -> requires_action -> authorized), or, with no
# card, records the fee as an invoice (status invoiced).
CARD_ON_FILE, INVOICE = "card_on_file", "invoice"

# gsi1 partitions (what reconciliation queries).
HOLD_EXPIRY, ACTION_PENDING, CAPTURE_DUE, PENDING_PK = "HOLD_EXPIRY", "ACTION_PENDING", "CAPTURE_DUE", "PENDING"


EVENT_TTL = timedelta(days=30)
FINDING_TTL = timedelta(days=90)


class StaleWrite(Exception):
    """A conditional write lost: someone else changed the item first."""


def booking_pk(booking_id: str) -> str:
    return f"BOOKING#{booking_id}"


def fees_pk(patient_key: str) -> str:
    return f"FEES#{patient_key}"


class Gsi1(GlobalSecondaryIndex):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class PaymentModel(Model):
    """The payment of one booking: which PaymentIntent holds the fee, and where it stands."""

    Meta = meta("PaymentsTable")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=PAYMENT_SK)
    booking_id = UnicodeAttribute()
    patient_sub = UnicodeAttribute()
    patient_key = UnicodeAttribute(null=True)  # HMAC of the treated patient's personal number
    region = UnicodeAttribute()
    visit_type = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    attempt = NumberAttribute(default=1)  # part of the hold's idempotency key
    renewals = NumberAttribute(default=0)  # part of a renewed hold's idempotency key
    payment_intent_id = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)  # None: the visit fee's hold | card_on_file | invoice
    setup_intent_id = UnicodeAttribute(null=True)  # card_on_file: the SetupIntent that saved the card
    amount = NumberAttribute()  # minor units held (the visit fee); an invoice: the fee invoiced
    currency = UnicodeAttribute()
    amount_captured = NumberAttribute(default=0)
    # The visit fee to take, decided once when its capture became due: ≤ the held amount and ≤ what
    # the high-cost protection still leaves (payments.high_cost); None until then.
    capture_amount = NumberAttribute(null=True)
    amount_refunded = NumberAttribute(default=0)
    capture_before = UnicodeAttribute(null=True)  # UTC ISO: the authorization lapses after this
    customer_id = UnicodeAttribute(null=True)
    payment_method_id = UnicodeAttribute(null=True)
    # [{"kind": "fee_rest", "amount", "currency", "payment_intent_id", "status": charged|invoice_due|refunded}]
    extra_charges = JSONAttribute(default=list)
    # {"kind": late|no_show, "amount", "status": due|charged|invoice_due|waived|refunded, "at"}
    cancellation_fee = JSONAttribute(null=True)
    waiver = JSONAttribute(null=True)  # {"reason", "by", "at"}
    invoice_due = NumberAttribute(default=0)  # minor units to be invoiced (printing is out of scope)
    counts_toward_cap = BooleanAttribute(default=False)
    last_error = UnicodeAttribute(null=True)  # an error code, never a message with personal data
    captured_at = UnicodeAttribute(null=True)
    capture_reason = UnicodeAttribute(null=True)  # visit | late | no_show: why a capture is due
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = VersionAttribute()

    gsi1 = Gsi1()


class FeeLedgerModel(Model):
    """One captured visit fee of a patient (written with the payment's captured state)."""

    Meta = meta("PaymentsTable")

    pk = UnicodeAttribute(hash_key=True)  # FEES#{patient_key}
    sk = UnicodeAttribute(range_key=True)  # {captured_at}#{booking_id}
    booking_id = UnicodeAttribute()
    amount = NumberAttribute()
    currency = UnicodeAttribute()
    counts_toward_cap = BooleanAttribute(default=True)


class ProcessedEventModel(Model):
    """An event already handled (Stripe webhooks and bus events repeat): kept 30 days."""

    Meta = meta("PaymentsTable")

    pk = UnicodeAttribute(hash_key=True)  # STRIPE_EVENT#{id} | BUS_EVENT#{id}
    sk = UnicodeAttribute(range_key=True, default=EVENT_SK)
    type = UnicodeAttribute(null=True)
    processed_at = UnicodeAttribute()
    expires_at = TTLAttribute()


class StripeCustomerModel(Model):
    """The Stripe customer of a patient (created once, reused for every booking)."""

    Meta = meta("PaymentsTable")

    pk = UnicodeAttribute(hash_key=True)  # CUSTOMER#{patient_sub}
    sk = UnicodeAttribute(range_key=True, default="STRIPE")
    customer_id = UnicodeAttribute()
    created_at = UnicodeAttribute()


class ReconFindingModel(Model):
    """What reconciliation could not repair on its own (OpsTable, pk RECON#{date}); no personal data."""

    Meta = meta("OpsTable")

    pk = UnicodeAttribute(hash_key=True)  # RECON#{YYYY-MM-DD}
    sk = UnicodeAttribute(range_key=True)  # {booking_id}#{kind}
    booking_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    details = JSONAttribute(default=dict)
    found_at = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)


def fees_counted_since(patient_key: str, since_iso: str) -> dict[str, int]:
    """booking id -> visit fee (minor units) the patient paid since `since_iso` (UTC ISO) that
    counts toward the high-cost protection; one Query on the patient's ledger partition."""
    out: dict[str, int] = {}
    for entry in FeeLedgerModel.query(fees_pk(patient_key), FeeLedgerModel.sk >= since_iso, consistent_read=True):
        if entry.counts_toward_cap:
            out[entry.booking_id] = out.get(entry.booking_id, 0) + int(entry.amount)
    return out


def fees_paid_since(patient_key: str, since_iso: str) -> int:
    """Visit fees (minor units) the patient paid since `since_iso` that count toward the cap."""
    return sum(fees_counted_since(patient_key, since_iso).values())


class PaymentRecords:
    """Payment records, the fee ledger, Stripe customers, processed events, reconciliation findings."""

    # ---- reads
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
            if not condition_failed(err):
                raise
            return self.customer_of(patient_sub) or customer_id

    # ---- payment records
    def new_payment(self, booking, now: datetime, **fields) -> PaymentModel:
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
            if condition_failed(err):
                raise StaleWrite(payment.booking_id) from err
            raise
        return payment

    def capture_with_ledger(self, payment: PaymentModel, ledger: FeeLedgerModel | None, now: datetime) -> None:
        """One transaction: the payment's captured state and the patient's fee-ledger entry."""
        payment.updated_at = utc_iso(now)
        try:
            with transaction() as tx:
                tx.save(payment)
                if ledger is not None:
                    tx.save(ledger, condition=FeeLedgerModel.pk.does_not_exist())
        except TransactWriteError as err:
            if condition_failed(err):
                raise StaleWrite(payment.booking_id) from err
            raise

    def ledger_entry(self, patient_key: str, booking_id: str, captured_at: str, amount: int,
                     currency: str, counts_toward_cap: bool) -> FeeLedgerModel:
        return FeeLedgerModel(fees_pk(patient_key), f"{captured_at}#{booking_id}", booking_id=booking_id,
                              amount=int(amount), currency=currency, counts_toward_cap=counts_toward_cap)

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
            if not condition_failed(err):
                raise

    # ---- reconciliation findings (no personal data: booking id, kind, Stripe ids and states)
    def add_finding(self, booking_id: str, kind: str, details: dict, now: datetime) -> None:
        ReconFindingModel(f"RECON#{now.date().isoformat()}", f"{booking_id}#{kind}", booking_id=booking_id,
                          kind=kind, details=details, found_at=utc_iso(now),
                          expires_at=now + FINDING_TTL).save()
