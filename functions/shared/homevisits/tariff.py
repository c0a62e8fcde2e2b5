"""What a visit costs the patient: the regional fee, the exemptions and the high-cost protection.

Pure rules on configuration (`config/service.json`: `regions.*.fees`, `payments`), no I/O and no
Stripe, so booking can quote the fee when a visit is booked and payments can charge exactly that.
Amounts are integers in the region currency's minor units (öre/øre), as Stripe counts them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from dateutil.relativedelta import relativedelta

from homevisits.errors import InvalidRequest

STANDARD, UNDER_18, FRIKORT, HIGH_COST_CAP = "standard", "under_18", "frikort", "high_cost_cap"
# Only a publicly financed doctor visit is covered by a frikort and the high-cost protection; the
# nurse visit followed by a digital doctor is privately financed.
FRIKORT_VISIT_TYPES = frozenset({"doctor"})
CANCELLATION_FEE_KEYS = {"late": "late_cancellation", "no_show": "no_show"}


@dataclass(frozen=True)
class FeeQuote:
    amount: int  # minor units
    currency: str  # ISO 4217, upper case
    reason: str  # standard | under_18 | frikort | high_cost_cap


def _region(config, region):
    return config.region(region) if isinstance(region, str) else region


def age_on(birth_date: date, on_date: date) -> int:
    """Completed years on `on_date` (a birthday on 29 February counts on 1 March in other years)."""
    years = on_date.year - birth_date.year
    if (on_date.month, on_date.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def frikort_valid(config, region, frikort: dict | None, on_date: date) -> bool:
    """True when `frikort` ({"number", "valid_until", "region"}) covers a visit in `region` on `on_date`.

    A frikort is issued by one region but honoured in the whole country; it must be issued in a
    country that has frikort (`payments.frikort_countries`), the same country as the visit, and
    still be valid on the visit day (valid_until inclusive)."""
    region = _region(config, region)
    if not frikort or not str(frikort.get("number") or "").strip():
        return False
    countries = set(config.payments.get("frikort_countries", []))
    if region.country not in countries:
        return False
    issuer = frikort.get("region")
    if issuer in config.regions and config.regions[issuer].country != region.country:
        return False
    try:
        valid_until = date.fromisoformat(str(frikort.get("valid_until")))
    except ValueError:
        return False
    return on_date <= valid_until


def chargeable(config, amount: int, currency: str) -> int:
    """`amount` (minor units), or 0 when it is above 0 but below what a card can be charged in `currency`
    (`payments.min_charge`: Stripe's minimum charge amount, 3.00 SEK / 3.00 NOK). Such a remainder is
    waived, never sent to Stripe (which refuses it): docs/payments.md."""
    minimum = int(config.payments.get("min_charge", {}).get(currency.upper(), 0))
    return 0 if 0 < int(amount) < minimum else int(amount)


def quote_fee(config, region, visit_type: str, birth_date: date, on_date: date,
              frikort: dict | None, fees_paid_12m: int) -> FeeQuote:
    """The fee the patient pays for a visit of `visit_type` in `region` on `on_date`.

    `birth_date` is the treated patient's (the child's when a guardian books); `fees_paid_12m` is
    what that patient already paid in visit fees counting toward the high-cost protection over the
    last 12 calendar months plus the fees of their open bookings (minor units). Raises InvalidRequest for a visit type the region has no fee for."""
    region = _region(config, region)
    try:
        fee = int(region.fees[visit_type])
    except KeyError:
        raise InvalidRequest(f"no fee for visit type {visit_type!r} in {region.name}",
                             code="invalid_visit_type") from None
    currency = region.currency.upper()
    payments = config.payments
    exempt_age = payments.get("exempt_under_age", {}).get(region.country)
    if exempt_age is not None and age_on(birth_date, on_date) < int(exempt_age):
        return FeeQuote(0, currency, UNDER_18)
    if visit_type in FRIKORT_VISIT_TYPES:
        if frikort_valid(config, region, frikort, on_date):
            return FeeQuote(0, currency, FRIKORT)
        remaining = cap_remaining(config, region, fees_paid_12m)
        if remaining is not None and fee > remaining:
            # A remainder below the minimum charge is waived: the cap is as good as reached.
            return FeeQuote(chargeable(config, remaining, currency), currency, HIGH_COST_CAP)
    return FeeQuote(fee, currency, STANDARD)


CAP_PERIOD = relativedelta(months=12)


def cap_period_start(now: datetime) -> datetime:
    """The start of the high-cost protection's 12 months before `now`: calendar months (5 December
    2026 -> 5 December 2025; 29 February -> 28 February), not 365 days."""
    return now - CAP_PERIOD


def cap_remaining(config, region, counted: int) -> int | None:
    """What the patient may still be charged in visit fees under the high-cost protection, having
    `counted` (minor units) paid or owed in the period; None where the region's country has no cap."""
    region = _region(config, region)
    cap = config.payments.get("high_cost_cap", {}).get(region.country)
    return None if cap is None else max(0, int(cap) - max(0, int(counted)))


def cancellation_fee(region, kind: str) -> int:
    """The fee for a late cancellation (`kind="late"`) or a no-show (`"no_show"`), in minor units."""
    try:
        key = CANCELLATION_FEE_KEYS[kind]
    except KeyError:
        raise InvalidRequest(f"kind must be one of {sorted(CANCELLATION_FEE_KEYS)}") from None
    return int(region.fees[key])
