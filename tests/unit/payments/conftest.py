"""Fixtures for the payments unit tests: DynamoDB in memory (moto, tables from template.yaml), a
fake Stripe that behaves like the real one where it matters (idempotency keys replay the first
answer, holds lapse at capture_before, 3-D Secure, declines, off-session authentication) and can
fail at any step, a settable clock, and helpers to write bookings as the booking side does."""
from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta, timezone

import pytest

from homevisits.clock import FixedClock, utc_iso
from homevisits.errors import PaymentDeclined, PaymentProviderUnavailable, PaymentRejected

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)

# Payment methods of the fake Stripe and how they behave.
PM_OK = "pm_ok"
PM_DECLINED = "pm_declined"
PM_3DS = "pm_3ds"  # needs 3-D Secure on session; refused off session (authentication_required)
PM_OFF_SESSION_FAILS = "pm_offsession_fails"  # fine on session, declined off session


def _models():
    from homevisits.persistence.booking import BookingModel, ClinicalNoteModel
    from homevisits.persistence.ledger import LedgerShardModel
    from homevisits.persistence.payments import (FeeLedgerModel, PaymentModel, ProcessedEventModel,
                                                 ReconFindingModel, StripeCustomerModel)
    return [BookingModel, LedgerShardModel, ClinicalNoteModel, PaymentModel, FeeLedgerModel,
            ProcessedEventModel, ReconFindingModel, StripeCustomerModel]


def _reset_connections():
    # PynamoDB caches a client per model: drop it so each test talks to its own moto backend.
    for model in _models():
        model._connection = None
    import homevisits.persistence.base  # the shared transaction connection too (tests of the stack may have built it)
    homevisits.persistence.base._connection = None


@pytest.fixture(scope="module")
def _moto():
    """moto's in-memory AWS for the module (no network): started once, tables recreated per test."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "AWS_ENDPOINT_URL",
                    "AWS_PROFILE"):
            mp.delenv(var, raising=False)
        for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                           ("AWS_DEFAULT_REGION", "eu-north-1"), ("AWS_REGION", "eu-north-1")):
            mp.setenv(var, value)
        from homevisits import settings
        settings.reload()
        with mock_aws():
            _reset_connections()
            yield
            _reset_connections()
    settings.reload()


@pytest.fixture
def ddb(_moto):
    """Empty template tables (BookingsTable, CapacityTable, PaymentsTable, OpsTable) for one test."""
    import boto3
    from devstack import template as tpl

    client = boto3.client("dynamodb", region_name="eu-north-1")
    wanted = {"BookingsTable", "CapacityTable", "PaymentsTable", "OpsTable"}
    existing = set(client.list_tables()["TableNames"])
    for t in tpl.table_definitions():
        name = t["args"]["TableName"]
        if name in wanted:
            if name in existing:
                client.delete_table(TableName=name)
            args = dict(t["args"])
            args.pop("StreamSpecification", None)
            client.create_table(**args)
    return client


class FakeIntent:
    def __init__(self, id, amount, currency, customer, payment_method, capture_method, metadata, created,
                 valid_for):
        self.id, self.amount, self.currency = id, amount, currency
        self.customer, self.payment_method, self.capture_method = customer, payment_method, capture_method
        self.metadata, self.created = dict(metadata), created
        self.status = "requires_confirmation"
        self.amount_received = 0
        self.capture_before = created + valid_for
        self.refunded = 0


class FakeStripe:
    """An in-memory Stripe with idempotency keys and fault injection.

    `fail(op, when)` makes the next call of `op` fail: when="before" (nothing happened at Stripe,
    e.g. a connection error) or "after" (Stripe did it, the answer was lost: a timeout)."""

    def __init__(self, clock):
        self.clock = clock
        self.intents: dict[str, FakeIntent] = {}
        self.keys: dict[str, tuple] = {}  # key -> (request fingerprint, answer or error)
        self.calls: list[tuple] = []
        self.faults: dict[str, list[str]] = {}
        self.customers = 0
        self.refunds: list[tuple[str, int]] = []
        self.setups: dict = {}
        self._ids = itertools.count(1)

    # -- test controls
    def fail(self, op: str, when: str = "before", times: int = 1):
        self.faults.setdefault(op, []).extend([when] * times)

    def authenticate(self, intent_id: str, success: bool = True):
        pi = self.intents[intent_id]
        assert pi.status == "requires_action"
        pi.status = "requires_capture" if success else "requires_payment_method"

    def held(self) -> dict[str, FakeIntent]:
        """Holds that are really on the card now (lapsed ones excluded)."""
        self._lapse()
        return {k: v for k, v in self.intents.items() if v.status == "requires_capture"}

    def captures(self, booking_id: str) -> list[FakeIntent]:
        return [pi for pi in self.intents.values()
                if pi.metadata.get("booking_id") == booking_id and pi.status == "succeeded"]

    # -- internals
    def _lapse(self):
        now = self.clock.now()
        for pi in self.intents.values():
            if pi.status == "requires_capture" and now >= pi.capture_before:
                pi.status = "canceled"  # Stripe cancels an authorization that lapsed

    def _view(self, pi: FakeIntent):
        from payments.gateway import Intent
        return Intent(id=pi.id, status=pi.status, amount=pi.amount, currency=pi.currency.upper(),
                      amount_received=pi.amount_received,
                      amount_capturable=pi.amount if pi.status == "requires_capture" else 0,
                      client_secret=f"{pi.id}_secret", customer=pi.customer, payment_method=pi.payment_method,
                      capture_before=pi.capture_before if pi.capture_method == "manual" else None,
                      created=pi.created, metadata=dict(pi.metadata))

    def _run(self, op: str, key: str | None, fingerprint, fn):
        self.calls.append((op, key))
        self._lapse()
        if key is not None and key in self.keys:
            seen, answer = self.keys[key]
            if seen != fingerprint:
                raise PaymentRejected("idempotency key reused with other parameters", code="idempotency_conflict")
            if isinstance(answer, Exception):
                raise answer
            return self._view(self.intents[answer]) if isinstance(answer, str) and answer in self.intents else answer
        faults = self.faults.get(op) or []
        when = faults.pop(0) if faults else None
        if when == "before":
            raise PaymentProviderUnavailable(f"{op}: connection error")
        try:
            answer = fn()
        except (PaymentDeclined, PaymentRejected) as err:
            if key is not None:
                self.keys[key] = (fingerprint, err)
            raise
        if key is not None:
            self.keys[key] = (fingerprint, answer.id if hasattr(answer, "id") and answer.id in self.intents else answer)
        if when == "after":
            raise PaymentProviderUnavailable(f"{op}: timeout")
        return answer

    # -- the gateway port
    def ensure_customer(self, patient_sub):
        def do():
            self.customers += 1
            return f"cus_{patient_sub}"
        return self._run("customer", f"customer:{patient_sub}", (patient_sub,), do)

    def _new_intent(self, amount, currency, customer, payment_method, capture_method, metadata, off_session):
        pi = FakeIntent(f"pi_{next(self._ids)}", amount, currency, customer, payment_method, capture_method,
                        metadata, self.clock.now(),
                        timedelta(days=4, hours=18) if off_session else timedelta(days=7))
        self.intents[pi.id] = pi
        declined = payment_method == PM_DECLINED or (off_session and payment_method in (PM_3DS, PM_OFF_SESSION_FAILS))
        if declined:
            pi.status = "requires_payment_method"
            err = PaymentDeclined("The card was declined.")
            err.payment_intent_id = pi.id
            raise err
        if payment_method == PM_3DS:
            pi.status = "requires_action"
        elif capture_method == "manual":
            pi.status = "requires_capture"
        else:
            pi.status = "succeeded"
            pi.amount_received = amount
        return pi

    def hold(self, *, booking_id, amount, currency, customer, payment_method, key, off_session=False,
             metadata=None):
        fp = ("hold", booking_id, amount, currency, customer, payment_method, off_session)
        return self._run("hold", key, fp, lambda: self._view(self._new_intent(
            amount, currency, customer, payment_method, "manual", {"booking_id": booking_id, **(metadata or {})},
            off_session)))

    def charge_off_session(self, *, booking_id, customer, payment_method, amount, currency, key, kind):
        fp = ("charge", booking_id, amount, customer, payment_method)
        return self._run("charge_off_session", key, fp, lambda: self._view(self._new_intent(
            amount, currency, customer, payment_method, "automatic", {"booking_id": booking_id, "kind": kind},
            True)))

    def capture(self, payment_intent_id, amount, key):
        def do():
            pi = self.intents[payment_intent_id]
            if pi.status != "requires_capture" or amount > pi.amount:
                raise PaymentRejected("This PaymentIntent could not be captured")
            pi.status, pi.amount_received = "succeeded", amount
            return self._view(pi)
        return self._run("capture", key, ("capture", payment_intent_id, amount), do)

    def release(self, payment_intent_id, key):
        def do():
            pi = self.intents[payment_intent_id]
            if pi.status not in ("requires_capture", "requires_action", "requires_confirmation",
                                 "requires_payment_method"):
                raise PaymentRejected("This PaymentIntent could not be canceled")
            pi.status = "canceled"
            return self._view(pi)
        return self._run("release", key, ("release", payment_intent_id), do)

    def refund(self, payment_intent_id, amount, key):
        def do():
            pi = self.intents[payment_intent_id]
            if pi.status != "succeeded" or pi.refunded + amount > pi.amount_received:
                raise PaymentRejected("cannot refund")
            pi.refunded += amount
            self.refunds.append((payment_intent_id, amount))
            return f"re_{len(self.refunds)}"
        return self._run("refund", key, ("refund", payment_intent_id, amount), do)

    def save_card(self, *, booking_id, customer, payment_method, key):
        """A SetupIntent (usage off_session) confirmed at once: succeeded, requires_action (3-D
        Secure) or a decline; `complete_setup(id)` finishes the 3-D Secure step."""
        from payments.gateway import Setup

        def do():
            sid = f"seti_{next(self._ids)}"
            if payment_method == PM_DECLINED:
                raise PaymentDeclined("The card was declined.")
            status = "requires_action" if payment_method == PM_3DS else "succeeded"
            self.setups[sid] = Setup(id=sid, status=status, customer=customer, payment_method=payment_method,
                                     client_secret=f"{sid}_secret", usage="off_session")
            return self.setups[sid]
        return self._run("save_card", key, ("setup", booking_id, customer, payment_method), do)

    def complete_setup(self, setup_intent_id: str):
        from dataclasses import replace
        self.setups[setup_intent_id] = replace(self.setups[setup_intent_id], status="succeeded")

    def retrieve_setup(self, setup_intent_id):
        return self._run("retrieve_setup", None, None, lambda: self.setups[setup_intent_id])

    def retrieve(self, payment_intent_id):
        return self._run("retrieve", None, None, lambda: self._view(self.intents[payment_intent_id]))


@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def stripe_fake(clock):
    return FakeStripe(clock)


@pytest.fixture
def published():
    return []


@pytest.fixture
def ctx(ddb, stripe_fake, clock, published):
    """The payments use cases' context: the real repository on DynamoDB in memory, the fake Stripe."""
    from homevisits.regions import load_config
    from payments.context import PaymentContext
    from payments.repository import PaymentsRepository
    return PaymentContext(PaymentsRepository(), stripe_fake, clock, load_config(),
                          publish=lambda source, dt, detail: published.append((dt, detail)))


@pytest.fixture
def make_booking(ddb, clock):
    """Write a held booking (and its place in the region-day capacity ledger) as booking does."""
    from homevisits.lifecycle import ledger_visit
    from homevisits.persistence.booking import BookingModel
    from homevisits.persistence.ledger import read_day, save_day
    counter = itertools.count(1)

    def make(days_ahead: float = 2, fee: int = 35000, currency: str = "SEK", region: str = "stockholm",
             visit_type: str = "doctor", patient_sub: str = "patient-1", status: str = "held",
             hold_minutes: int = 15, personal_number: str = "19811218-9876", cancellation=None) -> str:
        now = clock.now()
        booking_id = f"b{next(counter)}-{int(now.timestamp())}"
        starts = (now + timedelta(days=days_ahead)).replace(minute=0, second=0, microsecond=0)
        day = starts.date().isoformat()
        BookingModel(booking_id=booking_id, patient_sub=patient_sub, region=region,
                     region_day=f"{region}#{day}", date=day, window_start=f"{starts.hour:02d}:00",
                     starts_at=utc_iso(starts), ends_at=utc_iso(starts + timedelta(hours=2)),
                     visit_type=visit_type, status=status, fee_amount=fee, fee_currency=currency,
                     fee_reason="standard", patient={"personal_number": personal_number, "name": "Test"},
                     address={"lat": 59.33, "lon": 18.06}, cancellation=cancellation,
                     hold_expires_at=utc_iso(now + timedelta(minutes=hold_minutes)),
                     created_at=utc_iso(now), updated_at=utc_iso(now)).save()
        ledger = read_day(f"{region}#{day}")
        ledger.visits = {**ledger.visits, booking_id: ledger_visit(BookingModel.get(booking_id), "held")}
        assert save_day(ledger)
        return booking_id

    return make


@pytest.fixture
def set_booking_status(ddb):
    from homevisits.persistence.booking import BookingModel

    def set_status(booking_id: str, status: str, **fields):
        booking = BookingModel.get(booking_id)
        actions = [BookingModel.status.set(status)]
        for name, value in fields.items():
            actions.append(getattr(BookingModel, name).set(value))
        booking.update(actions=actions)

    return set_status
