"""The high-cost protection at capture: a visit fee is taken only as far as the patient's 12
calendar months leave room under the cap (capture ≤ remaining), whatever was quoted when booking.

Quoting counts open bookings too (booking.person.pending_fees), but two bookings can still be
quoted at once, or a visit completed after another was captured: the capture is the last word."""
from __future__ import annotations

from datetime import datetime

from homevisits.clock import utc_iso
from homevisits.tariff import cap_period_start, cap_remaining, chargeable


def visit_fee_due(config, payment, now: datetime, fees_counted) -> int:
    """The visit fee to capture for `payment` (minor units): the held amount, capped by what the
    high-cost protection leaves once the patient's other fees of the 12 calendar months before
    `now` are counted. `fees_counted(patient_key, since_iso) -> {booking_id: amount}` reads them."""
    held = int(payment.amount or 0)
    if not payment.counts_toward_cap or not payment.patient_key or held == 0:
        return held
    counted = fees_counted(payment.patient_key, utc_iso(cap_period_start(now)))
    counted.pop(payment.booking_id, None)
    remaining = cap_remaining(config, payment.region, sum(counted.values()))
    # A remainder below the minimum card charge is waived, as when quoting (tariff.chargeable).
    return held if remaining is None else chargeable(config, min(held, remaining), payment.currency)
