"""The money-and-capacity invariants of the system, checked against the real stores (DynamoDB Local
and localstripe) after a fault scenario, a soak or a demo day.

- capacity: every booking of a region-day that holds capacity (held and not expired, confirmed,
  en_route, arrived) is a live visit of that region-day's capacity ledger (homevisits.ledger), and the ledger has no
  live visit that is not such a booking (nothing lost, nothing doubled) — except a visit that took
  place (completed, no_show), which may keep its time in the ledger;
- payment: no booking is confirmed (or further) without an authorized or captured payment, unless
  its fee is 0; a completed visit with a fee is captured;
- holds: no live hold (PaymentIntent `requires_capture` on localstripe) without a live booking, and
  at most one live hold per booking;
- captures: per booking at most one captured visit-fee PaymentIntent;
- money (read from Stripe's charges and refunds themselves, never from a PaymentIntent's
  `amount_received`, which localstripe omits): per booking, the money taken (captured or charged,
  minus refunds) ≤ its fee + the fee of a late-cancellation or no-show decision, and nothing for a
  booking that ended without a visit and without a fee (cancelled free, expired, missed); every
  charge of a customer of the checked bookings belongs to a booking; per treated person, the visit
  fees taken in any 12 calendar months ≤ the high-cost cap of the region's country;
- versions: no booking's version ever decreases (a `VersionWatch` remembers the highest version it
  saw of every booking, across checks and polls).

A checker reads, it never repairs. It is scoped to region-days (and the bookings in them), because
the local stores are shared by everything that ran in the same session. Used by
tests/reliability (after each scenario) and bench/soak.py (at the end of a soak)."""
from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field
from typing import Iterable

LIVE = ("held", "confirmed", "en_route", "arrived")
VISITED = ("completed", "no_show")  # may stay in the ledger: the visit used that time
PAID_STATES = ("confirmed", "en_route", "arrived", "completed")
PAYMENT_OK = ("authorized", "captured")


@dataclass(frozen=True)
class Violation:
    kind: str  # capacity_lost | capacity_ghost | capacity_doubled | unpaid_confirmation | ...
    booking_id: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.booking_id}: {self.detail}"


@dataclass
class Report:
    region_days: list[str]
    bookings: int = 0
    payment_intents: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, kind: str, booking_id: str, detail: str = "") -> None:
        self.violations.append(Violation(kind, booking_id, detail))

    def kinds(self) -> set[str]:
        return {v.kind for v in self.violations}

    def assert_ok(self, allow: Iterable[str] = ()) -> None:
        bad = [v for v in self.violations if v.kind not in set(allow)]
        assert not bad, "invariants violated:\n  " + "\n  ".join(map(str, bad))

    def markdown(self) -> str:
        lines = [f"- region-days checked: {len(self.region_days)}, bookings: {self.bookings}, "
                 f"PaymentIntents: {self.payment_intents}",
                 f"- violations: {len(self.violations)}"]
        lines += [f"  - `{v}`" for v in self.violations[:50]]
        return "\n".join(lines)


def _now_iso() -> str:
    from homevisits.clock import default_clock, utc_iso
    return utc_iso(default_clock().now())


def _booking_holds_capacity(b, now_iso: str) -> bool:
    if b.status not in LIVE:
        return False
    if b.status == "held" and b.hold_expires_at and b.hold_expires_at <= now_iso:
        return False
    return True


def _ledger_holds_capacity(raw: dict, now_iso: str) -> bool:
    from homevisits.capacity import holds_capacity
    if "status" not in raw:  # a ledger that keeps only live visits: an expiry time still ends a hold
        return not (raw.get("hold_expires_at") and raw["hold_expires_at"] <= now_iso)
    return holds_capacity(raw, now_iso)


def stripe_payment_intents(base: str | None = None, key: str | None = None) -> list[dict]:
    """Every PaymentIntent localstripe holds (the local store lists everything in one page)."""
    return stripe_list("payment_intents", base, key)


def region_days_with_bookings(booking_ids: Iterable[str]) -> list[str]:
    from homevisits.persistence.booking import BookingModel
    out = set()
    for bid in booking_ids:
        try:
            out.add(BookingModel.get(bid).region_day)
        except BookingModel.DoesNotExist:
            pass
    return sorted(out)


def check(region_days: Iterable[str], *, now_iso: str | None = None, stripe_base: str | None = None,
          settled: bool = True, versions: "VersionWatch | None" = None) -> Report:
    """Check the invariants on the given region-days (`stockholm#2026-12-01`).

    `settled`: every queue was drained (and reconciliation ran), so transitional states that a
    consumer still had to finish (completed but not yet captured, a hold on a booking still `held`)
    count as violations too. `versions`: a VersionWatch kept across checks (a version lower than
    one it saw before is a violation)."""
    from homevisits.persistence.booking import BookingModel
    from homevisits.persistence.ledger import read_day
    from homevisits.persistence.payments import PaymentModel, booking_pk, PAYMENT_SK

    now_iso = now_iso or _now_iso()
    report = Report(region_days=sorted(set(region_days)))
    bookings: dict[str, object] = {}
    for rd in report.region_days:
        day_bookings = {b.booking_id: b for b in BookingModel.by_region_day.query(rd)}
        bookings.update(day_bookings)
        visits = read_day(rd).visits
        live_bookings = {bid for bid, b in day_bookings.items() if _booking_holds_capacity(b, now_iso)}
        live_ledger = {bid for bid, raw in visits.items() if _ledger_holds_capacity(raw, now_iso)}
        for bid in sorted(live_bookings - live_ledger):
            report.add("capacity_lost", bid, f"{rd}: booking {day_bookings[bid].status} holds no capacity "
                                             f"(ledger: {visits.get(bid, {}).get('status', 'absent')})")
        for bid in sorted(live_ledger - live_bookings):
            b = day_bookings.get(bid)
            if b is not None and b.status in VISITED:
                continue  # the clinician's time was spent on it: keeping it booked is the safe side
            report.add("capacity_ghost", bid, f"{rd}: ledger holds capacity for a booking that is "
                                             f"{b.status if b else 'absent'}")
    report.bookings = len(bookings)

    payments: dict[str, object] = {}
    for bid in bookings:
        try:
            payments[bid] = PaymentModel.get(booking_pk(bid), PAYMENT_SK)
        except PaymentModel.DoesNotExist:
            pass

    for bid, b in bookings.items():
        p = payments.get(bid)
        fee = int(b.fee_amount or 0)
        if b.status in PAID_STATES and fee > 0:
            if p is None or p.status not in PAYMENT_OK:
                report.add("unpaid_confirmation", bid,
                           f"booking {b.status} with fee {fee} but payment {p.status if p else 'absent'}")
        if settled and b.status == "completed" and fee > 0 and p is not None and p.status != "captured" \
                and not p.waiver:
            report.add("capture_missing", bid, f"visit completed, payment {p.status}")
        if p is not None:
            if int(p.amount_captured or 0) > int(p.amount or 0) and not p.cancellation_fee:
                report.add("over_capture", bid, f"captured {p.amount_captured} > held {p.amount}")

    # Stripe's side: map PaymentIntents to bookings by metadata, else by the payment record.
    by_pi = {}
    for bid, p in payments.items():
        if p.payment_intent_id:
            by_pi[p.payment_intent_id] = bid
        for extra in p.extra_charges or []:
            if extra.get("payment_intent_id"):
                by_pi[extra["payment_intent_id"]] = bid
    try:
        intents = stripe_payment_intents(stripe_base)
    except OSError as e:
        report.add("stripe_unreachable", "-", str(e))
        intents = []
    per_booking: dict[str, list[dict]] = {}
    for pi in intents:
        bid = (pi.get("metadata") or {}).get("booking_id") or by_pi.get(pi["id"])
        if bid in bookings:
            per_booking.setdefault(bid, []).append(pi)
    report.payment_intents = sum(len(v) for v in per_booking.values())
    for bid, pis in per_booking.items():
        b, p = bookings[bid], payments.get(bid)
        live_holds = [pi for pi in pis if pi["status"] == "requires_capture"]
        if len(live_holds) > 1:
            report.add("double_hold", bid, f"{len(live_holds)} live holds: {[pi['id'] for pi in live_holds]}")
        for pi in live_holds:
            if b.status not in LIVE or (settled and b.status == "held"):
                report.add("orphan_hold", bid, f"{pi['id']} requires_capture while booking is {b.status}")
        manual_captured = [pi for pi in pis if pi["status"] == "succeeded"
                           and pi.get("capture_method") == "manual"]
        if len(manual_captured) > 1:
            report.add("double_capture", bid, f"{len(manual_captured)} captured holds: "
                                             f"{[pi['id'] for pi in manual_captured]}")
        if p is not None and p.status == "authorized" and p.payment_intent_id and \
                p.payment_intent_id not in {pi["id"] for pi in live_holds}:
            pi_status = next((pi["status"] for pi in pis if pi["id"] == p.payment_intent_id), "absent")
            report.add("record_disagrees", bid, f"payment authorized but {p.payment_intent_id} is {pi_status}")
    _check_money(report, bookings, payments, intents, stripe_base)
    if versions is not None:
        for bid, before, now in versions.observe(bookings.values()):
            report.add("version_went_back", bid, f"version {now} after {before} was seen")
    return report


# ---------------------------------------------------------------- money, from charges and refunds
def stripe_list(resource: str, base: str | None = None, key: str | None = None) -> list[dict]:
    """Every object of a Stripe list endpoint (`charges`, `refunds`, `payment_intents`) on the
    local Stripe, which answers everything in one page."""
    base = base or os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:8420")
    key = key or os.environ.get("STRIPE_API_KEY", "sk_test_local")
    req = urllib.request.Request(f"{base}/v1/{resource}?limit=100000", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())["data"]


def charge_taken(charge: dict, refunds: Iterable[dict]) -> int:
    """Money a charge took, in minor units: what was captured (`amount_captured` where Stripe gives
    it, else the whole amount of a captured, succeeded charge), minus its succeeded refunds."""
    if charge.get("status") != "succeeded" or not charge.get("captured"):
        return 0
    captured = charge.get("amount_captured")
    captured = int(charge.get("amount") or 0) if captured is None else int(captured)
    refunded = sum(int(r.get("amount") or 0) for r in refunds if r.get("status") in ("succeeded", "pending"))
    return captured - refunded


def allowed_to_take(b, fee_of_decision: int) -> int:
    """The most a booking may cost: its fee plus the fee of its late/no-show decision; nothing
    when it ended without a visit and without such a decision (a free cancellation, an expired
    reservation, a visit we missed: never the patient's cost)."""
    decision = (b.cancellation or {}).get("fee_decision")
    if b.status in ("expired", "missed") or (b.status == "cancelled" and decision != "late"):
        return 0
    return int(b.fee_amount or 0) + fee_of_decision


def _fee_of_decision(b) -> int:
    from homevisits.regions import load_config
    from homevisits.tariff import cancellation_fee
    if b.status == "no_show":
        return cancellation_fee(load_config().region(b.region), "no_show")
    cancellation = b.cancellation or {}
    if b.status == "cancelled" and cancellation.get("fee_decision") == "late":
        return int(cancellation.get("fee_amount") or cancellation_fee(load_config().region(b.region), "late"))
    return 0


def over_cap(fees: Iterable[tuple[str, int]], cap: int) -> list[tuple[str, int]]:
    """(first month, total) of every 12-calendar-month span whose fees exceed `cap`; `fees` are
    (visit date YYYY-MM-DD, amount) pairs."""
    by_month: dict[tuple[int, int], int] = {}
    for day, amount in fees:
        key = (int(day[:4]), int(day[5:7]))
        by_month[key] = by_month.get(key, 0) + int(amount)
    out = []
    for (y, m) in sorted(by_month):
        months = [((y * 12 + m - 1 + i) // 12, (m - 1 + i) % 12 + 1) for i in range(12)]
        total = sum(by_month.get(k, 0) for k in months)
        if total > cap:
            out.append((f"{y:04d}-{m:02d}", total))
    return out


def _check_money(report: Report, bookings: dict, payments: dict, intents: list[dict],
                 stripe_base: str | None) -> None:
    from homevisits.identity import person_key
    from homevisits.persistence import bookings as store
    from homevisits.regions import load_config
    from homevisits.tariff import FRIKORT_VISIT_TYPES

    try:
        charges, refunds = stripe_list("charges", stripe_base), stripe_list("refunds", stripe_base)
    except OSError as e:
        report.add("stripe_unreachable", "-", str(e))
        return
    refunds_of: dict[str, list[dict]] = {}
    for r in refunds:
        refunds_of.setdefault(r.get("charge") or "", []).append(r)
    booking_of_pi = {pi["id"]: (pi.get("metadata") or {}).get("booking_id") for pi in intents}
    for bid, p in payments.items():
        for pi_id in [p.payment_intent_id] + [x.get("payment_intent_id") for x in p.extra_charges or []]:
            if pi_id:
                booking_of_pi.setdefault(pi_id, bid)
    customers = {p.customer_id for p in payments.values() if p.customer_id}
    taken: dict[str, int] = {}
    for ch in charges:
        money = charge_taken(ch, refunds_of.get(ch["id"], []))
        bid = (ch.get("metadata") or {}).get("booking_id") or booking_of_pi.get(ch.get("payment_intent") or "")
        if bid:
            taken[bid] = taken.get(bid, 0) + money
        elif money and ch.get("customer") in customers:
            report.add("unattributed_charge", "-", f"{ch['id']} took {money} from customer {ch['customer']} "
                                                   "for no booking")
    for bid, b in bookings.items():
        allowed = allowed_to_take(b, _fee_of_decision(b))
        if taken.get(bid, 0) > allowed:
            report.add("over_charge", bid, f"{b.status}: taken {taken[bid]} > allowed {allowed}")

    config = load_config()
    caps = config.payments.get("high_cost_cap", {})
    people: dict[str, set[str]] = {}  # person key -> patient subs whose bookings may be theirs
    for b in bookings.values():
        key = person_key(b.for_child or b.patient)
        if key:
            people.setdefault(key, set()).add(b.patient_sub)
    for key, subs in people.items():
        fees: dict[str, list[tuple[str, int]]] = {}
        for sub in subs:
            for b in store.bookings_of_patient(sub):
                if b.status != "completed" or person_key(b.for_child or b.patient) != key \
                        or b.visit_type not in FRIKORT_VISIT_TYPES:
                    continue
                country = config.region(b.region).country
                if country in caps:
                    fees.setdefault(country, []).append((b.date, taken.get(b.booking_id, 0)))
        for country, items in fees.items():
            for month, total in over_cap(items, int(caps[country])):
                report.add("over_cap", key[:12], f"{total} in the 12 months from {month} > cap {caps[country]}")


class VersionWatch:
    """The highest version seen of every booking: a booking read later with a lower one went back
    (a writer replaced the item instead of updating it, issue 12 defect 1)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def observe(self, bookings: Iterable) -> list[tuple[str, int, int]]:
        """Record the bookings' versions; answers (booking id, highest seen before, now) for each
        one whose version went back."""
        back = []
        for b in bookings:
            v = int(b.version or 0)
            before = self.seen.get(b.booking_id)
            if before is not None and v < before:
                back.append((b.booking_id, before, v))
            self.seen[b.booking_id] = max(v, before or 0)
        return back

    def poll(self, region_days: Iterable[str]) -> list[tuple[str, int, int]]:
        """Observe every booking of the region-days now (a soak polls while it runs)."""
        from homevisits.persistence.booking import BookingModel
        return self.observe(b for rd in region_days for b in BookingModel.by_region_day.query(rd))
