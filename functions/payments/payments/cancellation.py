"""When a visit does not happen: give the hold back (free cancellation, expiry, a visit nobody came
to), take the late-cancellation or no-show fee the tariff sets (from the hold first, the rest off
session on the saved card, else an invoice), and a dispatcher's waiver of such a fee (released if
not taken yet, refunded if taken). The booking's own state decides, never the event that asks."""
from __future__ import annotations

from homevisits.booking_state import BookingStatus as S
from homevisits.clock import utc_iso
from homevisits.errors import InvalidRequest, InvalidTransition, NotFound, RequestInProgress
from homevisits.persistence.payments import (AUTHORIZED, CAPTURED, FAILED, INVOICE, INVOICED, OPEN_STATES, PENDING,
                                             PENDING_PK, RELEASED)
from homevisits.tariff import cancellation_fee, chargeable
from payments import card_on_file
from payments.capture import capture_intent, charge_saved_card, mark_capture_due
from payments.context import PaymentContext, logger, not_owed, owed, patient_key, release_intent, set_gsi
from payments.repository import StaleWrite

WAIVER_REASONS = frozenset({"sudden_illness", "child_illness", "covid_symptoms", "accident",
                            "bereavement", "service_fault"})


def release_hold(ctx: PaymentContext, booking_id: str, reason: str = "cancelled") -> str:
    """Give the hold back (free cancellation, expired booking: the booking's own state says so,
    never only the event). Idempotent."""
    booking = ctx.repo.get_booking(booking_id)
    if not owed(booking, "release"):
        return not_owed(booking_id, "release", booking)
    for _ in range(4):
        payment = ctx.repo.get_payment(booking_id)
        if payment is None:
            return "nothing_held"
        if card_on_file.is_card_on_file(payment) and payment.status != RELEASED:
            return card_on_file.close(ctx, payment, "released")  # a free visit: nothing held, nothing owed
        if payment.status in (CAPTURED, RELEASED, FAILED):
            return f"already_{payment.status}"
        if payment.payment_intent_id:
            intent = release_intent(ctx, booking_id, payment.payment_intent_id)
            if intent.status == "succeeded":
                ctx.finding(booking_id, "captured_before_release", {"payment_intent": intent.id})
                return "captured"
        elif payment.status == PENDING:
            # A hold attempt with an unknown outcome: reconciliation replays it under its key and
            # cancels whatever it finds.
            payment.last_error = "released_unknown_attempt"
        payment.status = RELEASED
        payment.capture_reason = None
        set_gsi(payment, PENDING_PK if payment.last_error == "released_unknown_attempt" else None,
                utc_iso(ctx.now()))
        try:
            ctx.save(payment)
        except StaleWrite:
            continue
        ctx.repo.set_booking_payment_status(booking_id, RELEASED)
        return "released"
    raise RequestInProgress("the payment is changing; retry")


def charge_cancellation_fee(ctx: PaymentContext, booking_id: str, kind: str) -> str:
    """Take the late-cancellation or no-show fee the tariff sets, when the booking's own state
    calls for it (cancelled late, or no_show): from the hold first (capture ≤ held), the rest off
    session on the saved card, else an invoice. A dispatcher's waiver wins. Any other state
    changes nothing ("ignored_wrong_state")."""
    booking = ctx.repo.get_booking(booking_id)
    if not owed(booking, kind):
        return not_owed(booking_id, kind, booking)
    payment = ctx.repo.get_payment(booking_id)
    fee = cancellation_fee(ctx.config.region(booking.region), kind)
    if payment is None:
        if fee <= 0:
            return "nothing_owed"
        return _invoice(ctx, booking, kind, fee)
    if fee <= 0 and not payment.cancellation_fee:
        return release_hold(ctx, booking_id, f"{kind}_without_fee")
    cf = dict(payment.cancellation_fee or {})
    if cf.get("status") in ("charged", "invoice_due", INVOICED, "waived", "refunded"):
        return f"already_{cf['status']}"
    if payment.waiver:
        return _settle_waiver(ctx, payment)["status"]
    if card_on_file.is_card_on_file(payment) and "captured" not in cf:
        card_on_file.usable_card(ctx, payment)  # the free visit's saved card, or none (-> invoice)
    if not cf:
        cf = {"kind": kind, "amount": fee, "currency": payment.currency, "status": "due",
              "at": utc_iso(ctx.now())}
        payment.cancellation_fee = cf
    mark_capture_due(ctx, payment, kind)
    if "captured" not in cf:
        captured = 0
        if payment.status == AUTHORIZED and payment.payment_intent_id and int(payment.amount) > 0:
            intent = capture_intent(ctx, payment, min(int(cf["amount"]), int(payment.amount)))
            if intent.status == "succeeded":
                captured = int(intent.amount_received or 0)
                payment.status = CAPTURED
                payment.amount_captured = captured
                payment.captured_at = utc_iso(ctx.now())
            else:
                payment.status = RELEASED  # the hold lapsed: all of the fee goes off session
        elif payment.payment_intent_id and payment.status in OPEN_STATES + (AUTHORIZED,):
            release_intent(ctx, booking_id, payment.payment_intent_id)
            payment.status = RELEASED
        elif payment.status in OPEN_STATES + (AUTHORIZED,):
            payment.status = RELEASED
        cf["captured"] = captured
        payment.cancellation_fee = cf
        ctx.save(payment)  # the capture is on record before any further charge
    owed_rest = int(cf["amount"]) - int(cf["captured"])
    rest = chargeable(ctx.config, owed_rest, payment.currency)
    if rest < owed_rest:  # below the minimum charge: waived, never sent to Stripe (docs/payments.md)
        cf["waived_below_minimum"] = owed_rest
    if rest > 0:
        intent = charge_saved_card(ctx, payment, rest, key=f"fee-rest:{booking_id}", kind=f"{kind}_rest")
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
    set_gsi(payment, None)
    ctx.save(payment)
    ctx.repo.set_booking_payment_status(booking_id, payment.status)
    if cf["status"] == "invoice_due":
        ctx.finding(booking_id, "invoice_due", {"amount": rest})
    fresh = ctx.repo.get_payment(booking_id)
    if fresh is not None and fresh.waiver:  # waived while we were charging: give it back
        return _settle_waiver(ctx, fresh)["status"]
    return cf["status"]


def _invoice(ctx: PaymentContext, booking, kind: str, fee: int) -> str:
    """A fee owed with no card to take it from (a free visit booked without one): recorded as an
    invoice (a payment record of kind invoice, the tariff's amount, status invoiced) instead of being
    lost. Like every cancellation fee it does not count toward the high-cost protection."""
    now = ctx.now()
    payment = ctx.repo.new_payment(booking, now, status=INVOICED, kind=INVOICE, attempt=1,
                                   patient_key=patient_key(booking), counts_toward_cap=False)
    payment.amount = fee
    payment.invoice_due = fee
    payment.cancellation_fee = {"kind": kind, "amount": fee, "currency": payment.currency, "status": INVOICED,
                                "captured": 0, "at": utc_iso(now)}
    try:
        ctx.save(payment)  # written only if no record exists (its version): an event twice invoices once
    except StaleWrite:
        return charge_cancellation_fee(ctx, booking.booking_id, kind)
    ctx.repo.set_booking_payment_status(booking.booking_id, INVOICED)
    ctx.finding(booking.booking_id, "invoice_due", {"amount": fee})
    return INVOICED


def waive_fee(ctx: PaymentContext, caller, booking_id: str, reason: str) -> dict:
    """A dispatcher of the booking's region waives a late-cancellation/no-show fee for a valid
    reason: released if not yet taken, refunded (`refund:{booking}`) if taken. The patient is
    told (FeeWaived; notifications send one SMS per booking however often this is asked)."""
    answer = _waive_fee(ctx, caller, booking_id, reason)
    booking = ctx.repo.get_booking(booking_id)
    payment = ctx.repo.get_payment(booking_id)
    fee = (payment.cancellation_fee or {}) if payment is not None else {}
    kind = "late" if booking.status == S.CANCELLED else "no_show"
    from homevisits.messaging import SOURCE_PAYMENTS
    try:
        ctx.publish(SOURCE_PAYMENTS, "FeeWaived", {
            "booking_id": booking_id, "region": booking.region, "kind": fee.get("kind") or kind,
            "fee_amount": int(fee.get("amount") or cancellation_fee(ctx.config.region(booking.region), kind)),
            "currency": fee.get("currency") or booking.fee_currency, "refunded": int(answer.get("refunded") or 0)})
    except Exception:  # the waiver stands either way; a lost notice is logged, not fatal
        logger.exception("could not publish FeeWaived", extra={"booking_id": booking_id})
    return answer


def _waive_fee(ctx: PaymentContext, caller, booking_id: str, reason: str) -> dict:
    booking = ctx.repo.get_booking(booking_id)
    if booking is None:
        raise NotFound("no such booking")
    caller.require_dispatcher_of(booking.region)
    if reason not in WAIVER_REASONS:
        raise InvalidRequest(f"reason must be one of {sorted(WAIVER_REASONS)}", code="invalid_waiver_reason")
    if not (owed(booking, "late") or owed(booking, "no_show")):
        raise InvalidTransition("only a late cancellation or a no-show has a fee to waive",
                                code="no_fee_to_waive")
    for _ in range(4):
        payment = ctx.repo.get_payment(booking_id)
        if payment is None:
            # The fee's event may not have been handled yet: record the fee first (an invoice, with
            # no card to take it from), so the waiver is on record and a late event changes nothing.
            kind = "late" if owed(booking, "late") else "no_show"
            if cancellation_fee(ctx.config.region(booking.region), kind) <= 0:
                return {"status": "waived", "refunded": 0}
            charge_cancellation_fee(ctx, booking_id, kind)
            continue
        if payment.waiver:
            return _settle_waiver(ctx, payment)
        payment.waiver = {"reason": reason, "by": caller.sub, "at": utc_iso(ctx.now())}
        try:
            ctx.save(payment)
        except StaleWrite:
            continue
        return _settle_waiver(ctx, payment)
    raise RequestInProgress("the payment is changing; retry")


def _settle_waiver(ctx: PaymentContext, payment) -> dict:
    booking_id = payment.booking_id
    cf = dict(payment.cancellation_fee or {})
    if cf.get("status") in ("waived", "refunded"):
        return {"status": cf["status"], "refunded": int(payment.amount_refunded or 0)}
    refunded = 0
    if "captured" not in cf:
        # Not taken yet: release the hold (it may turn out to be captured after all).
        if payment.payment_intent_id and payment.status in OPEN_STATES + (AUTHORIZED,):
            intent = release_intent(ctx, booking_id, payment.payment_intent_id)
            if intent.status == "succeeded":
                cf["captured"] = int(intent.amount_received or 0)
                payment.amount_captured = cf["captured"]
                payment.status = CAPTURED
            else:
                payment.status = RELEASED
        elif payment.status in OPEN_STATES + (AUTHORIZED,):
            payment.status = RELEASED
    if payment.status == INVOICED:  # nothing was taken: the invoice is withdrawn
        payment.invoice_due = 0
        payment.status = RELEASED
    if int(cf.get("captured") or 0) > 0 and payment.payment_intent_id:
        amount = int(cf["captured"])
        ctx.gateway.refund(payment.payment_intent_id, amount, key=f"refund:{booking_id}")
        refunded += amount
    charges = []
    for charge in payment.extra_charges or []:
        charge = dict(charge)
        if charge.get("status") == "charged" and charge.get("payment_intent_id"):
            ctx.gateway.refund(charge["payment_intent_id"], int(charge["amount"]),
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
    set_gsi(payment, None)
    ctx.save(payment)
    ctx.repo.set_booking_payment_status(booking_id, "refunded" if refunded else payment.status)
    return {"status": cf["status"], "refunded": refunded}
