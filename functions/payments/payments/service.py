"""Payments domain: hold the fee when a visit is booked, capture it once when the visit is done,
release it on a free cancellation, charge late-cancellation and no-show fees, waive them, renew
holds that would lapse before the visit, and repair what Stripe and DynamoDB disagree on.

Takes a repository, a gateway (`payments.gateway.StripeGateway` or a fake) and a clock. Every move
of the payment state machine (docs/payments.md) is a conditional write on the record's version, so
the API, the webhook, the event consumer and reconciliation can race and only one of them wins;
the others re-read and find the work done. Every Stripe call carries a key derived from what it
protects, so a repeated call can never hold, capture or refund twice.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from homevisits.booking_state import IN_PROGRESS, OPEN, BookingStatus as S
from homevisits.clock import Clock, parse_utc, utc_iso
from homevisits.errors import (BookingNotPayable, InvalidRequest, InvalidTransition, NotFound,
                               PaymentDeclined, PaymentProviderUnavailable, PaymentRejected,
                               RequestInProgress)
from homevisits.observability import get_logger
from homevisits.persistence.payments import (ACTION_PENDING, AUTHORIZED, CAPTURE_DUE, CAPTURED, FAILED,
                                             HOLD_EXPIRY, OPEN_STATES, PENDING, PENDING_PK, RELEASED,
                                             REQUIRES_ACTION)
from homevisits.tariff import FRIKORT_VISIT_TYPES, cancellation_fee, chargeable

from homevisits.lifecycle import MAX_ATTEMPTS, backoff
from payments import high_cost
from payments.repository import NoLongerFits, StaleWrite

logger = get_logger("payments")

WAIVER_REASONS = frozenset({"sudden_illness", "child_illness", "covid_symptoms", "accident",
                            "bereavement", "service_fault"})
# A customer-initiated card authorization lasts 7 days; a merchant-initiated one (our renewals)
# can be as short as 4 days 18 hours (Visa). Used when Stripe does not tell us capture_before.
ON_SESSION_VALIDITY = timedelta(days=7)
OFF_SESSION_VALIDITY = timedelta(days=4, hours=18)
# A hold must outlive the visit by this much (the capture follows the completion event).
CAPTURE_MARGIN = timedelta(hours=12)


def _patient_key(booking) -> str | None:
    """The treated patient's ledger key (the child's when a guardian booked)."""
    from homevisits.identity import person_key
    return person_key(booking.for_child or booking.patient)


def _default_publish(source: str, detail_type: str, detail: dict) -> None:
    from homevisits.messaging import publish
    publish(source, detail_type, detail)


class PaymentService:
    def __init__(self, repo, gateway, clock: Clock, config=None,
                 publish: Callable[[str, str, dict], None] | None = None,
                 on_finding: Callable[[str, str, dict], None] | None = None):
        if config is None:
            from homevisits.regions import load_config
            config = load_config()
        self.repo, self.gateway, self.clock, self.config = repo, gateway, clock, config
        self.publish = publish or _default_publish
        self.on_finding = on_finding

    # ------------------------------------------------------------------ helpers
    def _now(self) -> datetime:
        return self.clock.now()

    def _save(self, payment):
        return self.repo.save(payment, self._now())

    def _finding(self, booking_id: str, kind: str, details: dict | None = None) -> None:
        """Something a person should look at: logged (ids only), stored in OpsTable, counted."""
        details = details or {}
        logger.warning("payment finding", extra={"booking_id": booking_id, "finding": kind, **details})
        try:
            self.repo.add_finding(booking_id, kind, details, self._now())
        except Exception:  # a report must never break the money path
            logger.exception("could not store the finding", extra={"booking_id": booking_id})
        if self.on_finding:
            self.on_finding(booking_id, kind, details)

    @staticmethod
    def _set_gsi(payment, partition: str | None, sort: str | None = None) -> None:
        payment.gsi1pk = partition
        payment.gsi1sk = f"{sort}#{payment.booking_id}" if partition else None

    def _owed(self, booking, kind: str) -> bool:
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

    def _not_owed(self, booking_id: str, kind: str, booking) -> str:
        """A money event the booking's state does not call for: nothing changes; logged (ids only)."""
        logger.warning("payment event ignored: the booking's state does not call for it",
                       extra={"booking_id": booking_id, "kind": kind,
                              "booking_status": str(booking.status) if booking is not None else None})
        return "ignored_wrong_state"

    def _hold_expired(self, booking) -> bool:
        return bool(booking.hold_expires_at) and parse_utc(booking.hold_expires_at) <= self._now()

    def _capture_before(self, intent, off_session: bool) -> datetime:
        if intent.capture_before:
            return intent.capture_before
        start = intent.created or self._now()
        return start + (OFF_SESSION_VALIDITY if off_session else ON_SESSION_VALIDITY)

    def _counts_toward_cap(self, booking) -> bool:
        region = self.config.region(booking.region)
        return booking.visit_type in FRIKORT_VISIT_TYPES and \
            region.country in self.config.payments.get("high_cost_cap", {})

    def _release_intent(self, booking_id: str, payment_intent_id: str):
        """Cancel a hold; answers the PaymentIntent as it ends up (canceled, or already captured)."""
        try:
            return self.gateway.release(payment_intent_id, key=f"release:{booking_id}:{payment_intent_id}")
        except PaymentRejected:
            intent = self.gateway.retrieve(payment_intent_id)
            if intent.status in ("canceled", "succeeded", "requires_payment_method"):
                return intent
            raise

    def _publish_confirmed(self, booking) -> None:
        from homevisits.messaging import SOURCE_PAYMENTS
        try:
            self.publish(SOURCE_PAYMENTS, "BookingConfirmed",
                         {"booking_id": booking.booking_id, "region": booking.region, "date": booking.date})
        except Exception:  # the booking is confirmed either way; a lost notice is logged, not fatal
            logger.exception("could not publish BookingConfirmed", extra={"booking_id": booking.booking_id})

    # ------------------------------------------------------------------ hold (POST /bookings/{id}/payment)
    def hold_fee(self, patient_sub: str, booking_id: str, payment_method: str) -> dict:
        """Hold the booking's fee on the card `payment_method` and confirm the booking.

        Answers {"status": "authorized"} or {"status": "requires_action", "client_secret": …}
        (3-D Secure: the webhook or reconciliation confirms once the patient completes it).
        Raises NotFound (not the caller's booking), BookingNotPayable (not held any more),
        PaymentDeclined (the booking is cancelled and its capacity returned),
        PaymentProviderUnavailable (nothing half-done: a retry resumes with the same key)."""
        booking = self.repo.get_booking(booking_id)
        if booking is None or booking.patient_sub != patient_sub:
            raise NotFound("no such booking")
        payment = self.repo.get_payment(booking_id)
        if payment is not None and payment.status in (AUTHORIZED, CAPTURED) and \
                booking.status in IN_PROGRESS | {S.COMPLETED}:
            return {"status": "authorized"}  # a repeated request: answered, never held twice
        if payment is not None and payment.status == FAILED:
            raise BookingNotPayable("the card was declined for this booking; please book again",
                                    code="payment_failed")
        if booking.status == S.CONFIRMED and int(booking.fee_amount or 0) == 0:
            return {"status": "authorized"}  # nothing to pay: booking confirmed it when it was made
        if booking.status != S.HELD:
            raise BookingNotPayable(f"the booking is {booking.status} and can no longer be paid")
        if payment is not None and payment.status == RELEASED:
            raise BookingNotPayable("the booking can no longer be paid")
        if payment is not None and payment.payment_intent_id:
            answer = self._resume_attempt(booking, payment, payment_method)
            if answer is not None:
                return answer
            payment = self.repo.get_payment(booking_id)
        if self._hold_expired(booking):
            raise BookingNotPayable("the reservation has expired; please book again", code="hold_expired")
        if int(booking.fee_amount) == 0:
            return self._confirm_free(booking, payment)
        return self._place_hold(booking, payment, payment_method)

    def _resume_attempt(self, booking, payment, payment_method: str) -> dict | None:
        """Carry an earlier attempt on, or close it when it definitively failed (then None)."""
        intent = self.gateway.retrieve(payment.payment_intent_id)
        if intent.status == "requires_capture":
            self._finish_authorization(booking, payment, intent)
            return {"status": "authorized"}
        if intent.status in ("requires_action", "requires_confirmation", "processing"):
            if payment_method == payment.payment_method_id or intent.status == "processing":
                return {"status": "requires_action", "client_secret": intent.client_secret}
            # The patient switched card: the unfinished attempt is dropped before a new one starts.
            self._release_intent(booking.booking_id, intent.id)
        elif intent.status == "succeeded":
            self._finding(booking.booking_id, "captured_while_held", {"payment_intent": intent.id})
            raise InvalidTransition("this payment was already taken", code="already_paid")
        # requires_payment_method (3-D Secure failed, card declined later) or canceled: next attempt.
        payment.attempt = int(payment.attempt) + 1
        payment.payment_intent_id = None
        payment.status = PENDING
        payment.last_error = f"attempt_{intent.status}"
        self._set_gsi(payment, PENDING_PK, utc_iso(self._now()))
        try:
            self._save(payment)
        except StaleWrite:
            raise RequestInProgress("the payment is being processed; retry shortly") from None
        return None

    def _customer(self, patient_sub: str) -> str:
        customer = self.repo.customer_of(patient_sub)
        if customer is None:
            customer = self.repo.remember_customer(patient_sub, self.gateway.ensure_customer(patient_sub),
                                                   self._now())
        return customer

    def _confirm_free(self, booking, payment) -> dict:
        """A zero fee (child, frikort, cap reached): confirmed at once, no Stripe call."""
        now = self._now()
        if payment is None:
            payment = self.repo.new_payment(booking, now, status=AUTHORIZED, attempt=1,
                                            patient_key=_patient_key(booking),
                                            counts_toward_cap=self._counts_toward_cap(booking))
        payment.status = AUTHORIZED
        payment.amount = 0
        try:
            self.repo.authorize_and_confirm(payment, booking, now)
        except NoLongerFits:
            self.repo.release_booking(booking.booking_id, S.EXPIRED, reason="hold_expired", now=now,
                                      expect=(S.HELD,))
            raise BookingNotPayable("the reservation has expired; please book again",
                                    code="hold_expired") from None
        except StaleWrite:
            fresh = self.repo.get_payment(booking.booking_id)
            if fresh is not None and fresh.status == AUTHORIZED:
                return {"status": "authorized"}
            raise BookingNotPayable("the booking changed meanwhile; please retry") from None
        self._publish_confirmed(booking)
        return {"status": "authorized"}

    def _place_hold(self, booking, payment, payment_method: str) -> dict:
        now = self._now()
        customer = self._customer(booking.patient_sub)
        if payment is None:
            payment = self.repo.new_payment(booking, now, status=PENDING, attempt=1, customer_id=customer,
                                            payment_method_id=payment_method,
                                            patient_key=_patient_key(booking),
                                            counts_toward_cap=self._counts_toward_cap(booking))
        elif payment.payment_method_id and not payment.payment_intent_id and not \
                (payment.last_error or "").startswith(("attempt_", "rejected")):
            # The last try's outcome is unknown (timeout, 5xx, the function died): it may have reached
            # Stripe, so replay exactly that request under its key and Stripe answers with the hold it
            # made (if any) instead of making a second one — even if the app sent a new card token.
            payment_method = payment.payment_method_id
        else:
            payment.payment_method_id = payment_method
        payment.customer_id = customer
        payment.status = PENDING
        self._set_gsi(payment, PENDING_PK, utc_iso(now))
        try:
            self._save(payment)  # written before Stripe is called: reconciliation can find the attempt
        except StaleWrite:
            raise RequestInProgress("the payment is being processed; retry shortly") from None
        key = f"hold:{booking.booking_id}:{int(payment.attempt)}"
        try:
            intent = self.gateway.hold(booking_id=booking.booking_id, amount=int(payment.amount),
                                       currency=payment.currency, customer=customer,
                                       payment_method=payment_method, key=key)
        except PaymentDeclined as err:
            self._declined(booking, payment, getattr(err, "payment_intent_id", None))
            raise
        except PaymentProviderUnavailable:
            payment.last_error = "provider_unavailable"
            try:
                self._save(payment)
            except Exception:
                logger.exception("could not record the provider error", extra={"booking_id": booking.booking_id})
            raise
        except PaymentRejected as err:
            # A refused create holds nothing; the next try is a new attempt with its own key.
            payment.attempt = int(payment.attempt) + 1
            payment.last_error = "rejected"
            self._save(payment)
            raise InvalidRequest("the payment method cannot be used; please try another card",
                                 code="invalid_payment_method") from err
        return self._after_hold(booking, payment, intent)

    def _after_hold(self, booking, payment, intent) -> dict:
        if intent.status == "requires_capture":
            self._finish_authorization(booking, payment, intent)
            return {"status": "authorized"}
        if intent.status in ("requires_action", "requires_confirmation", "processing"):
            payment.status = REQUIRES_ACTION
            payment.payment_intent_id = intent.id
            payment.last_error = None
            self._set_gsi(payment, ACTION_PENDING, utc_iso(self._now()))
            try:
                self._save(payment)
            except StaleWrite:
                # Someone (the webhook) moved it on meanwhile: answer from the fresh state.
                fresh = self.repo.get_payment(booking.booking_id)
                if fresh is not None and fresh.status == AUTHORIZED:
                    return {"status": "authorized"}
                raise RequestInProgress("the payment is being processed; retry shortly") from None
            return {"status": "requires_action", "client_secret": intent.client_secret}
        # requires_payment_method right away: the card was refused without an error.
        self._declined(booking, payment, intent.id)
        raise PaymentDeclined("The card was declined. Please use another card or contact your bank.")

    def _declined(self, booking, payment, payment_intent_id: str | None) -> None:
        """A declined card: the booking is cancelled and its capacity comes back; nothing is held."""
        now = self._now()
        self.repo.release_booking(booking.booking_id, S.CANCELLED, reason="payment_declined", now=now,
                                  expect=(S.HELD,))
        payment.status = FAILED
        payment.payment_intent_id = payment_intent_id or payment.payment_intent_id
        payment.last_error = "card_declined"
        self._set_gsi(payment, None)
        try:
            self._save(payment)
        except StaleWrite:
            logger.warning("payment changed while recording a decline", extra={"booking_id": booking.booking_id})

    def _finish_authorization(self, booking, payment, intent) -> bool:
        """payment → authorized and booking held → confirmed, in one transaction (API, webhook and
        reconciliation all come here). True when this call confirmed the booking."""
        booking_id = booking.booking_id
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                backoff(attempt - 1)  # the ledger is contended (bookings of the same day): spread out
            if payment is None:
                raise NotFound("no such payment")
            if payment.status in (AUTHORIZED, CAPTURED) and payment.payment_intent_id == intent.id:
                return False
            if payment.payment_intent_id not in (None, intent.id):
                return False  # an older attempt's intent: the record follows a newer one
            if payment.status not in OPEN_STATES or booking is None or booking.status != S.HELD:
                # Booking gone (expired, cancelled) or payment closed: never keep money held for it.
                self._release_intent(booking_id, intent.id)
                if payment.status in OPEN_STATES:
                    payment.status = RELEASED
                    payment.payment_intent_id = intent.id
                    self._set_gsi(payment, None)
                    try:
                        self._save(payment)
                    except StaleWrite:
                        pass
                raise BookingNotPayable("the reservation ended before the payment completed; nothing "
                                        "was charged", code="hold_expired")
            capture_before = self._capture_before(intent, off_session=False)
            payment.status = AUTHORIZED
            payment.payment_intent_id = intent.id
            payment.payment_method_id = intent.payment_method or payment.payment_method_id
            payment.capture_before = utc_iso(capture_before)
            payment.last_error = None
            self._set_gsi(payment, HOLD_EXPIRY, utc_iso(capture_before))
            try:
                self.repo.authorize_and_confirm(payment, booking, self._now())
            except StaleWrite:
                booking = self.repo.get_booking(booking_id)
                payment = self.repo.get_payment(booking_id)
                continue
            except NoLongerFits:
                # The reservation lapsed and its place was taken: give the money and the booking up.
                self.repo.release_booking(booking_id, S.EXPIRED, reason="hold_expired", now=self._now(),
                                          expect=(S.HELD,))
                payment = self.repo.get_payment(booking_id)
                booking = self.repo.get_booking(booking_id)
                continue
            self._publish_confirmed(booking)
            return True
        raise RequestInProgress("the payment is being processed; retry shortly")

    # ------------------------------------------------------------------ capture (visit completed)
    def capture_fee(self, booking_id: str) -> str:
        """Capture the held fee exactly once after the visit is completed (the booking says so, not
        the event that asks); answers what happened."""
        booking = self.repo.get_booking(booking_id)
        if not self._owed(booking, "visit"):
            return self._not_owed(booking_id, "visit", booking)
        payment = self.repo.get_payment(booking_id)
        if payment is None:
            if int(booking.fee_amount or 0) == 0:
                return "nothing_to_capture"
            self._finding(booking_id, "completed_without_payment")
            return "no_payment"
        if payment.status == CAPTURED:
            return "already_captured"
        if payment.status != AUTHORIZED:
            self._finding(booking_id, f"completed_while_{payment.status}",
                          {"payment_intent": payment.payment_intent_id})
            return "not_authorized"
        now = self._now()
        if payment.capture_amount is None:  # decided once: a retry takes what the first try decided
            payment.capture_amount = high_cost.visit_fee_due(self.config, payment, now, self.repo.fees_counted_since)
        amount = int(payment.capture_amount)
        if amount == 0 or not payment.payment_intent_id:
            if payment.payment_intent_id:  # the high-cost protection leaves nothing to take: give the hold back
                intent = self._release_intent(booking_id, payment.payment_intent_id)
                if intent.status == "succeeded":
                    self._finding(booking_id, "captured_before_release", {"payment_intent": intent.id})
            payment.status = CAPTURED
            payment.amount_captured = 0
            payment.captured_at = utc_iso(now)
            self._set_gsi(payment, None)
            self.repo.capture_with_ledger(payment, None, now)
            return "captured"
        self._mark_capture_due(payment, "visit")
        intent = self._capture_intent(payment, amount)
        if intent.status != "succeeded":
            return self._visit_fee_without_hold(payment)
        return self._finish_visit_capture(payment, intent)

    def _mark_capture_due(self, payment, reason: str) -> None:
        """Record that a capture is owed before calling Stripe, so reconciliation can finish it."""
        if payment.gsi1pk == CAPTURE_DUE and payment.capture_reason == reason:
            return
        payment.capture_reason = reason
        self._set_gsi(payment, CAPTURE_DUE, utc_iso(self._now()))
        self._save(payment)

    def _capture_intent(self, payment, amount: int):
        """Capture ≤ the held amount under `capture:{booking}`; the PaymentIntent as it ends up."""
        amount = min(int(amount), int(payment.amount))
        try:
            return self.gateway.capture(payment.payment_intent_id, amount, key=f"capture:{payment.booking_id}")
        except PaymentRejected:
            # Already captured (a repeat), or the hold lapsed: Stripe's state is the truth.
            intent = self.gateway.retrieve(payment.payment_intent_id)
            if intent.status in ("succeeded", "canceled", "requires_payment_method"):
                return intent
            raise

    def _finish_visit_capture(self, payment, intent) -> str:
        now = self._now()
        for _ in range(4):
            if payment.status == CAPTURED:
                return "already_captured"
            captured_at = utc_iso(now)
            payment.status = CAPTURED
            payment.amount_captured = int(intent.amount_received or 0)
            payment.captured_at = captured_at
            self._set_gsi(payment, None)
            ledger = None
            if payment.patient_key and payment.amount_captured > 0:
                ledger = self.repo.ledger_entry(payment.patient_key, payment.booking_id, captured_at,
                                                payment.amount_captured, payment.currency,
                                                bool(payment.counts_toward_cap))
            try:
                self.repo.capture_with_ledger(payment, ledger, now)
                self.repo.set_booking_payment_status(payment.booking_id, CAPTURED)
                return "captured"
            except StaleWrite:
                payment = self.repo.get_payment(payment.booking_id)
        raise RequestInProgress("the capture is being recorded elsewhere")

    def _visit_fee_without_hold(self, payment) -> str:
        """The hold lapsed before the capture: charge the saved card, else record an invoice."""
        amount = int(payment.amount if payment.capture_amount is None else payment.capture_amount)
        intent = self._charge_saved_card(payment, amount, key=f"charge:{payment.booking_id}", kind="visit_fee")
        if intent is not None:
            payment.payment_intent_id = intent.id
            return self._finish_visit_capture(payment, intent)
        payment.status = FAILED
        payment.invoice_due = int(payment.invoice_due or 0) + amount
        payment.last_error = "hold_lapsed"
        self._set_gsi(payment, None)
        self._save(payment)
        self._finding(payment.booking_id, "invoice_due", {"amount": amount})
        return "invoice_due"

    def _charge_saved_card(self, payment, amount: int, key: str, kind: str):
        """An off-session charge on the saved card; None when it needs the patient (→ invoice)."""
        if not (payment.customer_id and payment.payment_method_id):
            return None
        try:
            intent = self.gateway.charge_off_session(
                booking_id=payment.booking_id, customer=payment.customer_id,
                payment_method=payment.payment_method_id, amount=int(amount), currency=payment.currency,
                key=key, kind=kind)
        except (PaymentDeclined, PaymentRejected):
            return None
        if intent.status == "succeeded":
            return intent
        if intent.status in ("requires_action", "requires_confirmation", "requires_capture"):
            self._release_intent(payment.booking_id, intent.id)  # off session nobody can authenticate
        return None

    # ------------------------------------------------------------------ release (free cancel / expiry)
    def release_hold(self, booking_id: str, reason: str = "cancelled") -> str:
        """Give the hold back (free cancellation, expired booking: the booking's own state says so,
        never only the event). Idempotent."""
        booking = self.repo.get_booking(booking_id)
        if not self._owed(booking, "release"):
            return self._not_owed(booking_id, "release", booking)
        for _ in range(4):
            payment = self.repo.get_payment(booking_id)
            if payment is None:
                return "nothing_held"
            if payment.status in (CAPTURED, RELEASED, FAILED):
                return f"already_{payment.status}"
            if payment.payment_intent_id:
                intent = self._release_intent(booking_id, payment.payment_intent_id)
                if intent.status == "succeeded":
                    self._finding(booking_id, "captured_before_release", {"payment_intent": intent.id})
                    return "captured"
            elif payment.status == PENDING:
                # A hold attempt with an unknown outcome: reconciliation replays it under its key and
                # cancels whatever it finds.
                payment.last_error = "released_unknown_attempt"
            payment.status = RELEASED
            payment.capture_reason = None
            self._set_gsi(payment, PENDING_PK if payment.last_error == "released_unknown_attempt" else None,
                          utc_iso(self._now()))
            try:
                self._save(payment)
            except StaleWrite:
                continue
            self.repo.set_booking_payment_status(booking_id, RELEASED)
            return "released"
        raise RequestInProgress("the payment is changing; retry")

    # ------------------------------------------------------------------ late cancellation / no-show
    def charge_cancellation_fee(self, booking_id: str, kind: str) -> str:
        """Take the late-cancellation or no-show fee the tariff sets, when the booking's own state
        calls for it (cancelled late, or no_show): from the hold first (capture ≤ held), the rest off
        session on the saved card, else an invoice. A dispatcher's waiver wins. Any other state
        changes nothing ("ignored_wrong_state")."""
        booking = self.repo.get_booking(booking_id)
        if not self._owed(booking, kind):
            return self._not_owed(booking_id, kind, booking)
        payment = self.repo.get_payment(booking_id)
        if payment is None:
            self._finding(booking_id, f"{kind}_fee_without_payment")
            return "no_payment"
        fee = cancellation_fee(self.config.region(booking.region), kind)
        if fee <= 0 and not payment.cancellation_fee:
            return self.release_hold(booking_id, f"{kind}_without_fee")
        cf = dict(payment.cancellation_fee or {})
        if cf.get("status") in ("charged", "invoice_due", "waived", "refunded"):
            return f"already_{cf['status']}"
        if payment.waiver:
            return self._settle_waiver(payment)["status"]
        if not cf:
            cf = {"kind": kind, "amount": fee, "currency": payment.currency, "status": "due",
                  "at": utc_iso(self._now())}
            payment.cancellation_fee = cf
        self._mark_capture_due(payment, kind)
        if "captured" not in cf:
            captured = 0
            if payment.status == AUTHORIZED and payment.payment_intent_id and int(payment.amount) > 0:
                intent = self._capture_intent(payment, min(int(cf["amount"]), int(payment.amount)))
                if intent.status == "succeeded":
                    captured = int(intent.amount_received or 0)
                    payment.status = CAPTURED
                    payment.amount_captured = captured
                    payment.captured_at = utc_iso(self._now())
                else:
                    payment.status = RELEASED  # the hold lapsed: all of the fee goes off session
            elif payment.payment_intent_id and payment.status in OPEN_STATES + (AUTHORIZED,):
                self._release_intent(booking_id, payment.payment_intent_id)
                payment.status = RELEASED
            elif payment.status in OPEN_STATES + (AUTHORIZED,):
                payment.status = RELEASED
            cf["captured"] = captured
            payment.cancellation_fee = cf
            self._save(payment)  # the capture is on record before any further charge
        owed = int(cf["amount"]) - int(cf["captured"])
        rest = chargeable(self.config, owed, payment.currency)
        if rest < owed:  # below the minimum charge: waived, never sent to Stripe (docs/payments.md)
            cf["waived_below_minimum"] = owed
        if rest > 0:
            intent = self._charge_saved_card(payment, rest, key=f"fee-rest:{booking_id}", kind=f"{kind}_rest")
            charges = list(payment.extra_charges or [])
            if intent is not None:
                charges.append({"kind": "fee_rest", "amount": rest, "currency": payment.currency,
                                "payment_intent_id": intent.id, "status": "charged"})
                cf["status"] = "charged"
            else:
                charges.append({"kind": "fee_rest", "amount": rest, "currency": payment.currency,
                                "status": "invoice_due"})
                payment.invoice_due = int(payment.invoice_due or 0) + rest
                cf["status"] = "invoice_due"
            payment.extra_charges = charges
        else:
            cf["status"] = "charged"
        payment.cancellation_fee = cf
        payment.capture_reason = None
        self._set_gsi(payment, None)
        self._save(payment)
        self.repo.set_booking_payment_status(booking_id, payment.status)
        if cf["status"] == "invoice_due":
            self._finding(booking_id, "invoice_due", {"amount": rest})
        fresh = self.repo.get_payment(booking_id)
        if fresh is not None and fresh.waiver:  # waived while we were charging: give it back
            return self._settle_waiver(fresh)["status"]
        return cf["status"]

    # ------------------------------------------------------------------ waiver (POST /bookings/{id}/fee-waiver)
    def waive_fee(self, caller, booking_id: str, reason: str) -> dict:
        """A dispatcher of the booking's region waives a late-cancellation/no-show fee for a valid
        reason: released if not yet taken, refunded (`refund:{booking}`) if taken. The patient is
        told (FeeWaived; notifications send one SMS per booking however often this is asked)."""
        answer = self._waive_fee(caller, booking_id, reason)
        booking = self.repo.get_booking(booking_id)
        payment = self.repo.get_payment(booking_id)
        fee = (payment.cancellation_fee or {}) if payment is not None else {}
        kind = "late" if booking.status == S.CANCELLED else "no_show"
        from homevisits.messaging import SOURCE_PAYMENTS
        try:
            self.publish(SOURCE_PAYMENTS, "FeeWaived", {
                "booking_id": booking_id, "region": booking.region, "kind": fee.get("kind") or kind,
                "fee_amount": int(fee.get("amount") or cancellation_fee(self.config.region(booking.region), kind)),
                "currency": fee.get("currency") or booking.fee_currency, "refunded": int(answer.get("refunded") or 0)})
        except Exception:  # the waiver stands either way; a lost notice is logged, not fatal
            logger.exception("could not publish FeeWaived", extra={"booking_id": booking_id})
        return answer

    def _waive_fee(self, caller, booking_id: str, reason: str) -> dict:
        booking = self.repo.get_booking(booking_id)
        if booking is None:
            raise NotFound("no such booking")
        caller.require_dispatcher_of(booking.region)
        if reason not in WAIVER_REASONS:
            raise InvalidRequest(f"reason must be one of {sorted(WAIVER_REASONS)}", code="invalid_waiver_reason")
        if not (self._owed(booking, "late") or self._owed(booking, "no_show")):
            raise InvalidTransition("only a late cancellation or a no-show has a fee to waive",
                                    code="no_fee_to_waive")
        for _ in range(4):
            payment = self.repo.get_payment(booking_id)
            if payment is None:
                return {"status": "waived", "refunded": 0}
            if payment.waiver:
                return self._settle_waiver(payment)
            payment.waiver = {"reason": reason, "by": caller.sub, "at": utc_iso(self._now())}
            try:
                self._save(payment)
            except StaleWrite:
                continue
            return self._settle_waiver(payment)
        raise RequestInProgress("the payment is changing; retry")

    def _settle_waiver(self, payment) -> dict:
        booking_id = payment.booking_id
        cf = dict(payment.cancellation_fee or {})
        if cf.get("status") in ("waived", "refunded"):
            return {"status": cf["status"], "refunded": int(payment.amount_refunded or 0)}
        refunded = 0
        if "captured" not in cf:
            # Not taken yet: release the hold (it may turn out to be captured after all).
            if payment.payment_intent_id and payment.status in OPEN_STATES + (AUTHORIZED,):
                intent = self._release_intent(booking_id, payment.payment_intent_id)
                if intent.status == "succeeded":
                    cf["captured"] = int(intent.amount_received or 0)
                    payment.amount_captured = cf["captured"]
                    payment.status = CAPTURED
                else:
                    payment.status = RELEASED
            elif payment.status in OPEN_STATES + (AUTHORIZED,):
                payment.status = RELEASED
        if int(cf.get("captured") or 0) > 0 and payment.payment_intent_id:
            amount = int(cf["captured"])
            self.gateway.refund(payment.payment_intent_id, amount, key=f"refund:{booking_id}")
            refunded += amount
        charges = []
        for charge in payment.extra_charges or []:
            charge = dict(charge)
            if charge.get("status") == "charged" and charge.get("payment_intent_id"):
                self.gateway.refund(charge["payment_intent_id"], int(charge["amount"]),
                                    key=f"refund:{booking_id}:rest")
                refunded += int(charge["amount"])
                charge["status"] = "refunded"
            elif charge.get("status") == "invoice_due":
                payment.invoice_due = max(0, int(payment.invoice_due or 0) - int(charge["amount"]))
                charge["status"] = "waived"
            charges.append(charge)
        payment.extra_charges = charges
        payment.amount_refunded = int(payment.amount_refunded or 0) + refunded
        cf["status"] = "refunded" if refunded else "waived"
        payment.cancellation_fee = cf
        payment.capture_reason = None
        self._set_gsi(payment, None)
        self._save(payment)
        self.repo.set_booking_payment_status(booking_id, "refunded" if refunded else payment.status)
        return {"status": cf["status"], "refunded": refunded}

    # ------------------------------------------------------------------ Stripe's view (webhook, reconcile)
    def sync_from_stripe(self, booking_id: str, intent) -> str:
        """Move the state machine to what Stripe says of `intent`, through the same conditional
        transitions as the API path. Stale or unknown intents change nothing."""
        payment = self.repo.get_payment(booking_id)
        if payment is None:
            return "unknown_booking"
        if intent.id != payment.payment_intent_id:
            if intent.status == "requires_capture" and payment.status in (RELEASED, FAILED) and \
                    intent.metadata.get("booking_id") == booking_id:
                self._release_intent(booking_id, intent.id)  # a stray hold on a dead booking
                return "stray_released"
            return "stale"
        status = intent.status
        if status == "requires_capture" and payment.status in OPEN_STATES:
            try:
                self._finish_authorization(self.repo.get_booking(booking_id), payment, intent)
            except BookingNotPayable:
                return "released"
            return "authorized"
        if status == "succeeded" and payment.status == AUTHORIZED:
            if payment.gsi1pk == CAPTURE_DUE:
                return self.resume_capture(payment)
            self._finding(booking_id, "captured_outside_the_service", {"payment_intent": intent.id})
            return "reported"
        if status == "canceled" and payment.status == AUTHORIZED:
            # The hold went away (lapsed, or cancelled in the dashboard): renew it at the next run.
            payment.capture_before = utc_iso(self._now())
            self._set_gsi(payment, HOLD_EXPIRY, payment.capture_before)
            self._save(payment)
            self._finding(booking_id, "hold_canceled_at_stripe", {"payment_intent": intent.id})
            return "renew"
        if status == "requires_payment_method" and payment.status in OPEN_STATES:
            payment.last_error = intent.last_error_code or "authentication_failed"
            self._save(payment)
            return "attempt_failed"
        return "unchanged"

    def resume_capture(self, payment) -> str:
        reason = payment.capture_reason
        if reason == "visit":
            return self.capture_fee(payment.booking_id)
        if reason in ("late", "no_show"):
            return self.charge_cancellation_fee(payment.booking_id, reason)
        return "unchanged"

    # ------------------------------------------------------------------ reconciliation
    def renew_hold(self, payment) -> str:
        """Look after one live hold: settle it when its booking ended without the event reaching us,
        and replace it when it would lapse before the visit is captured — a new off-session hold under
        `hold:{booking}:renew:{n}` first, then the old one is cancelled (never a moment unheld)."""
        booking = self.repo.get_booking(payment.booking_id)
        if booking is None or booking.status not in IN_PROGRESS:
            return self.settle_missed_event(booking, payment)
        if payment.status != AUTHORIZED or not payment.payment_intent_id:
            return "not_held"
        now = self._now()
        capture_before = parse_utc(payment.capture_before) if payment.capture_before else now
        renew_before = now + timedelta(hours=int(self.config.payments.get("renew_hold_before_hours", 36)))
        if capture_before > renew_before:
            return "held"
        if capture_before >= parse_utc(booking.ends_at) + CAPTURE_MARGIN:
            return "not_needed"  # outlives the visit (stays listed: the sweep still watches it)
        n = int(payment.renewals or 0) + 1
        old = payment.payment_intent_id
        try:
            new = self.gateway.hold(booking_id=payment.booking_id, amount=int(payment.amount),
                                    currency=payment.currency, customer=payment.customer_id,
                                    payment_method=payment.payment_method_id,
                                    key=f"hold:{payment.booking_id}:renew:{n}", off_session=True,
                                    metadata={"renewal": str(n)})
        except (PaymentDeclined, PaymentRejected):
            new = None
        if new is not None and new.status != "requires_capture":
            self._release_intent(payment.booking_id, new.id)
            new = None
        if new is None:
            payment.last_error = "renewal_failed"
            if capture_before <= now:  # lapsed: the capture will charge the saved card or invoice
                self._set_gsi(payment, None)
            self._save(payment)
            self._finding(payment.booking_id, "hold_renewal_failed", {"renewal": n})
            return "renewal_failed"
        new_before = self._capture_before(new, off_session=True)
        payment.payment_intent_id = new.id
        payment.renewals = n
        payment.capture_before = utc_iso(new_before)
        payment.last_error = None
        self._set_gsi(payment, HOLD_EXPIRY, payment.capture_before)
        try:
            self._save(payment)
        except StaleWrite:
            self._release_intent(payment.booking_id, new.id)  # the record moved on: drop the new hold
            return "raced"
        try:
            self._release_intent(payment.booking_id, old)
        except (PaymentProviderUnavailable, PaymentRejected):
            self._finding(payment.booking_id, "old_hold_not_released", {"payment_intent": old})
        return "renewed"

    def settle_missed_event(self, booking, payment) -> str:
        """A hold on a booking that is no longer active: the event that should have moved the money
        was lost or is late. Do what it would have done (everything is idempotent)."""
        if booking is None:
            self._finding(payment.booking_id, "hold_without_booking", {"payment_intent": payment.payment_intent_id})
            return "reported"
        decision = (booking.cancellation or {}).get("fee_decision")
        if booking.status == S.COMPLETED:
            outcome = self.capture_fee(booking.booking_id)
        elif booking.status == S.NO_SHOW:
            outcome = self.charge_cancellation_fee(booking.booking_id, "no_show")
        elif booking.status == S.CANCELLED and decision == "late":
            outcome = self.charge_cancellation_fee(booking.booking_id, "late")
        elif booking.status in (S.CANCELLED, S.EXPIRED, S.MISSED):
            outcome = self.release_hold(booking.booking_id, booking.status)
        else:
            return "not_active"
        logger.info("settled a hold whose event was missed",
                    extra={"booking_id": booking.booking_id, "booking_status": booking.status, "outcome": outcome})
        return f"settled_{outcome}"

    def resolve_action_pending(self, payment) -> str:
        """A hold waiting for 3-D Secure: confirm it once done, or release and expire the booking
        when its reservation ran out."""
        booking = self.repo.get_booking(payment.booking_id)
        intent = self.gateway.retrieve(payment.payment_intent_id)
        if intent.status == "requires_capture":
            try:
                self._finish_authorization(booking, payment, intent)
                return "authorized"
            except BookingNotPayable:
                return "released"
        if booking is None or booking.status != S.HELD or self._hold_expired(booking):
            if intent.status in ("requires_action", "requires_confirmation", "requires_payment_method"):
                self._release_intent(payment.booking_id, intent.id)
            payment.status = RELEASED
            self._set_gsi(payment, None)
            self._save(payment)
            if booking is not None and booking.status == S.HELD:
                self.repo.release_booking(payment.booking_id, S.EXPIRED, reason="payment_not_completed",
                                          now=self._now(), expect=(S.HELD,))
            return "expired"
        return "waiting"

    def resolve_pending(self, payment) -> str:
        """A hold attempt left unfinished (its answer lost, or the request gave up on a contended
        ledger) for over two minutes: the same request is replayed under its key (Stripe answers
        with the hold it made, or makes one). A hold on a still-held booking is finished (the
        booking confirmed) without waiting for the patient to retry; otherwise whatever comes back
        is released."""
        booking = self.repo.get_booking(payment.booking_id)
        if not (payment.customer_id and payment.payment_method_id):
            self._set_gsi(payment, None)
            self._save(payment)
            return "nothing_sent"
        try:
            intent = self.gateway.hold(booking_id=payment.booking_id, amount=int(payment.amount),
                                       currency=payment.currency, customer=payment.customer_id,
                                       payment_method=payment.payment_method_id,
                                       key=f"hold:{payment.booking_id}:{int(payment.attempt)}")
        except (PaymentDeclined, PaymentRejected):
            intent = None
        except PaymentProviderUnavailable:
            self._finding(payment.booking_id, "hold_attempt_unresolved", {"attempt": int(payment.attempt)})
            return "reported"
        if intent is not None and intent.status in ("requires_capture", "requires_action", "requires_confirmation"):
            if booking is not None and booking.status == S.HELD and payment.status == PENDING:
                return self._after_hold(booking, payment, intent)["status"]
            self._release_intent(payment.booking_id, intent.id)
        if payment.status == PENDING:
            payment.status = RELEASED
        self._set_gsi(payment, None)
        self._save(payment)
        return "released"

    def reconcile(self, limit: int = 1000) -> dict:
        """One reconciliation run (gsi1 Queries only). Answers counts per outcome."""
        now = self._now()
        outcomes: dict[str, int] = {}

        def run(partition: str, upto: datetime, action) -> None:
            for payment in self.repo.due(partition, utc_iso(upto) + "~", limit):
                try:
                    outcome = action(payment)
                except (PaymentProviderUnavailable, RequestInProgress, StaleWrite):
                    outcome = "retry_later"
                except Exception:
                    logger.exception("reconciliation step failed", extra={"booking_id": payment.booking_id})
                    outcome = "error"
                outcomes[f"{partition}:{outcome}"] = outcomes.get(f"{partition}:{outcome}", 0) + 1

        # Every live hold is looked at (not only those about to lapse): a hold whose booking ended
        # without its event reaching us is settled here. One GetItem per live hold per run.
        run(HOLD_EXPIRY, now + timedelta(days=3650), self.renew_hold)
        run(ACTION_PENDING, now, self.resolve_action_pending)
        run(CAPTURE_DUE, now - timedelta(minutes=5), self.resume_capture)
        run(PENDING_PK, now - timedelta(minutes=2), self.resolve_pending)
        return outcomes
