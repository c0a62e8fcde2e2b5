"""The payments context's storage: payment records and the rest (homevisits.persistence.payments),
and the booking as payments sees it, whose every write goes through its owner, homevisits.lifecycle
(payment authorized + booking confirmed + ledger in one transaction; the payment state shown on the
booking, under the booking's version). A lost race surfaces as `StaleWrite`; the service then
re-reads and decides again."""
from __future__ import annotations

from datetime import datetime

from homevisits import lifecycle
from homevisits.booking_state import BookingStatus
from homevisits.clock import utc_iso
from homevisits.errors import InvalidTransition, WindowFull
from homevisits.persistence import bookings as store
from homevisits.persistence.payments import PaymentRecords, StaleWrite, fees_counted_since

__all__ = ["NoLongerFits", "PaymentsRepository", "StaleWrite"]


class NoLongerFits(Exception):
    """The reservation lapsed and the window was given away meanwhile: the booking cannot be confirmed."""


class PaymentsRepository(PaymentRecords):
    """Payment records (PaymentRecords) and bookings as payments sees them."""

    def get_booking(self, booking_id: str):
        return store.get_booking(booking_id)

    def authorize_and_confirm(self, payment, booking, now: datetime) -> None:
        """One transaction: the payment record (as given, version-checked), the booking held→confirmed
        (status and version checked, by lifecycle) and the capacity ledger (version checked). Raises
        StaleWrite when any of them changed meanwhile, NoLongerFits when a lapsed reservation lost its
        place."""
        payment.updated_at = utc_iso(now)
        try:
            done = lifecycle.try_confirm(booking, now=now, extra={"payment_status": payment.status},
                                         also_save=[payment])
        except WindowFull:
            raise NoLongerFits(booking.booking_id) from None
        except InvalidTransition:
            raise StaleWrite(payment.booking_id) from None
        if not done:
            raise StaleWrite(payment.booking_id)

    def fees_counted_since(self, patient_key: str, since_iso: str) -> dict[str, int]:
        """booking id -> visit fee the patient paid since `since_iso` counting toward the cap."""
        return fees_counted_since(patient_key, since_iso)

    def set_booking_payment_status(self, booking_id: str, status: str) -> None:
        """Show the payment status on the booking (read by GET /bookings), through its owner."""
        lifecycle.set_payment_status(booking_id, status)

    def release_booking(self, booking_id: str, to_status: str, *, reason: str, now: datetime,
                        expect: tuple[str, ...]):
        """Cancel/expire a booking and give its capacity back (lifecycle, one transaction). None when
        the booking already moved elsewhere (e.g. the expiry job was first)."""
        try:
            return lifecycle.release_booking(booking_id, BookingStatus(to_status), reason=reason, now=now,
                                             expect=expect)
        except InvalidTransition:
            return None
