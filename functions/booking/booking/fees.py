"""The fee of a new booking: homevisits.tariff's rules on the treated patient's 12-month history.

Split in two so the booking can start the history read early (in parallel with its other reads):
`history_matters` says whether the history can change the fee at all (children, frikort and nurse
visits never read it), `paid_12m` reads it (one Query), `quote` applies the rules. What counts
toward the high-cost protection is what was paid in the last 12 calendar months plus the fees of
the patient's open bookings (booking.person.pending_fees): two bookings quoted together can never
be quoted past the cap (and a capture re-checks it, payments.high_cost)."""
from __future__ import annotations

from datetime import date, datetime

from homevisits.clock import utc_iso
from homevisits.tariff import FRIKORT_VISIT_TYPES, HIGH_COST_CAP, STANDARD, cap_period_start, quote_fee


def history_matters(config, region, visit_type: str, birth_date: date, on_date: date, frikort: dict | None) -> bool:
    """True when what the patient paid in the last 12 months can change this visit's fee (the
    high-cost protection applies to it)."""
    if visit_type not in FRIKORT_VISIT_TYPES:
        return False
    if config.payments.get("high_cost_cap", {}).get(region.country) is None:
        return False
    return quote_fee(config, region, visit_type, birth_date, on_date, frikort, 0).reason in (STANDARD, HIGH_COST_CAP)


def paid_12m(patient_key: str, now: datetime) -> dict[str, int]:
    """booking id -> visit fee (minor units) the patient paid in the 12 calendar months before `now`."""
    from homevisits.persistence.payments import fees_counted_since  # only bookings need it (cold start)
    return fees_counted_since(patient_key, utc_iso(cap_period_start(now)))


def quote(config, region, visit_type: str, birth_date: date, on_date: date, frikort: dict | None,
          paid: int) -> tuple[int, str, str]:
    """(amount in minor units, currency, reason) for the treated patient, who paid or owes `paid`
    (minor units) in visit fees counting toward the high-cost protection."""
    q = quote_fee(config, region, visit_type, birth_date, on_date, frikort, paid)
    return q.amount, q.currency, q.reason
