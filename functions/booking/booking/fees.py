"""The fee of a new booking: homevisits.tariff's rules on the treated patient's 12-month history."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from homevisits.clock import utc_iso


def quote(config, region, visit_type: str, birth_date: date, on_date: date, frikort: dict | None,
          patient_key: str, now: datetime) -> tuple[int, str, str]:
    """(amount in minor units, currency, reason) for the treated patient."""
    try:
        from homevisits.persistence.payments import fees_paid_since
        from homevisits.tariff import quote_fee
    except ImportError:  # payments' modules not shipped: the regional fee, children free in SE
        age = on_date.year - birth_date.year - ((on_date.month, on_date.day) < (birth_date.month, birth_date.day))
        if region.country == "SE" and age < 18:
            return 0, region.currency, "under_18"
        return int(region.fees[visit_type]), region.currency, "standard"
    paid = fees_paid_since(patient_key, utc_iso(now - timedelta(days=365)))
    q = quote_fee(config, region, visit_type, birth_date, on_date, frikort, paid)
    return q.amount, q.currency, q.reason
