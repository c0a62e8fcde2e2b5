"""Retention of personal data in bookings (issue 12, defect 11; the policy is docs/security.md).

A booking's personal data — the patient's and the child's name and personal number, the phone,
the address with its door code and coordinates, the frikort number — are needed to plan, make and
bill the visit, and for questions about it afterwards; `retention.personal_data_days` (default 90)
full days after the visit's local date they are pseudonymised, exactly as a patient's own erasure
does (`booking.privacy.erase_booking_data`): the personal number becomes the HMAC key the fee ledger
uses (the high-cost protection and the bookkeeping still add up), everything else goes, and the
clinical note and the texts of the SMS sent about the booking go with them. What stays on the
booking: its id, region, date and window, visit type, status, fee and payment state.

Before a day's bookings are pseudonymised, its anonymised statistics are written (OpsTable
`STATS#{region}` / `{date}`: visits per visit type and status, fees per status and currency), so
figures survive any later deletion. A booking still open that long after its day (which the expiry
and missed-visit jobs prevent) is kept and counted, never erased mid-flight.

The daily schedule looks at the `retention.lookback_days` (default 7) days before the cut-off too,
so a skipped run is caught up; days already done are found erased and cost one Query each.
"""
from __future__ import annotations

from datetime import timedelta

from booking.privacy import ALREADY_ERASED, ERASED, IN_PROGRESS, erase_booking_data, erase_outbox
from homevisits.clock import utc_iso
from homevisits.persistence import bookings as store
from homevisits.persistence.ops import save_day_stats
from homevisits.regions import region_day_key

DEFAULT_PERSONAL_DATA_DAYS = 90
DEFAULT_LOOKBACK_DAYS = 7


def due_days(config, now) -> list[tuple[str, str]]:
    """(region id, local date) of every region-day whose personal data are due: the visit date
    plus `personal_data_days` is before today, within the lookback."""
    keep = int(config.retention.get("personal_data_days", DEFAULT_PERSONAL_DATA_DAYS))
    back = int(config.retention.get("lookback_days", DEFAULT_LOOKBACK_DAYS))
    out = []
    for region in config.regions.values():
        last = region.local_date(now) - timedelta(days=keep + 1)
        out += [(region.id, (last - timedelta(days=i)).isoformat()) for i in range(back, -1, -1)]
    return out


def day_statistics(bookings) -> tuple[dict, dict]:
    """(visits per visit type and status, fees per status and currency) of one day's bookings."""
    visits: dict[str, dict[str, int]] = {}
    fees: dict[str, dict[str, int]] = {}
    for b in bookings:
        by_status = visits.setdefault(b.visit_type, {})
        by_status[b.status] = by_status.get(b.status, 0) + 1
        by_currency = fees.setdefault(b.status, {})
        by_currency[b.fee_currency] = by_currency.get(b.fee_currency, 0) + int(b.fee_amount or 0)
    return visits, fees


def apply_retention(ctx) -> dict:
    """Pseudonymise the personal data of every finished booking past the retention, day by day,
    after writing the day's statistics. `ctx`: booking.service.Context. Answers counts."""
    now = ctx.clock.now()
    now_iso = utc_iso(now)
    counts = {"days": 0, "erased": 0, "already_erased": 0, "kept_open": 0, "busy": 0}
    for region_id, day in due_days(ctx.config, now):
        bookings = [b for b, _raw in store.bookings_of_region_day(region_day_key(region_id, day))]
        if not bookings:
            continue
        counts["days"] += 1
        visits, fees = day_statistics(bookings)
        save_day_stats(region_id, day, visits, fees, now_iso)
        erased_of: dict[str, set[str]] = {}
        for b in bookings:
            outcome, b = erase_booking_data(b, now_iso)
            if outcome in (ERASED, ALREADY_ERASED):
                counts[outcome] += 1
                erased_of.setdefault(b.patient_sub, set()).add(b.booking_id)
            elif outcome == IN_PROGRESS:
                counts["kept_open"] += 1
            else:
                counts["busy"] += 1
        for patient_sub, booking_ids in erased_of.items():
            erase_outbox(patient_sub, booking_ids)
    return counts
