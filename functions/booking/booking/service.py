"""The booking context's use cases: availability, book, read, cancel, reschedule, shifts, expiry.

Plain Python on plain data: each use case takes the config, a clock and the caller, and talks to
DynamoDB only through the booking store (`homevisits.persistence.bookings`, reads and the ledger)
and `homevisits.lifecycle` (every write of a booking). Every refusal raises a
homevisits.errors class *before* anything is written; every write that moves capacity is one
transaction with the region-day ledger, retried on a lost race (re-read, re-check) and then
answered `busy_try_again`.

Rescheduling policy (documented in docs/data-model-booking.md): a confirmed booking can be moved
free of charge until 24 hours (booking.cancellation_free_hours) before its current window starts;
later it is refused with 409 `too_late_to_reschedule` — the patient may cancel (the late-cancellation
rules apply) and book again, so a fee is never taken silently by a "move". A `held` booking (nothing
held on the card yet) can be moved at any time.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable


from booking import account, availability, fees, person
from homevisits import capacity, lifecycle, video_calls
from homevisits.booking_state import OPEN, BookingStatus as S
from homevisits.auth import Caller
from homevisits.clock import Clock, parse_utc, to_ms, utc_iso, utc_iso_ms
from homevisits.errors import (AddressOutsideRegion, BusyTryAgain, DomainError, Forbidden, InvalidPhoneNumber,
                               InvalidRequest, InvalidTransition, NotAllowedToBookFor, NotFound, PatientTooYoung,
                               ShiftChangeStrandsBookings, TooLateToReschedule, VisitUnderWay, WindowFull)
from homevisits.identity import keyed_hash, parse_personal_number, patient_key, person_key
from homevisits.messaging import SOURCE_BOOKING
from homevisits.ledger import DayLedger
from homevisits.persistence import bookings as repository
from homevisits.persistence.booking import BookingModel
from homevisits.regions import Config, Region, region_day_key
from homevisits.tariff import cancellation_fee

Publish = Callable[[str, str, dict], None]
ADULT_AGE = 18
RESCHEDULABLE = (S.HELD, S.CONFIRMED)


@dataclass
class Context:
    """What every use case needs: configuration, time and the event publisher (tests swap them)."""
    config: Config
    clock: Clock
    publish: Publish


def booking_id_for(caller_sub: str, idempotency_key: str) -> str:
    """The same caller and Idempotency-Key always name the same booking (a retry after a lost
    response finds it instead of creating another); unguessable without the pepper."""
    return "bk_" + keyed_hash(f"booking:{caller_sub}:{idempotency_key}")[:26]


def view(b: BookingModel, now: datetime | None = None) -> dict:
    """A booking as its patient sees it (no personal numbers, no symptoms); with `now`, its ETA is
    the live one as of then (`live_eta`)."""
    out = {"id": b.booking_id, "status": b.status, "region": b.region, "date": b.date,
           "window_start": b.window_start, "window_end": _local_end(b), "visit_type": b.visit_type,
           "starts_at": b.starts_at, "ends_at": b.ends_at, "priority": b.priority or "normal",
           "fee": {"amount": int(b.fee_amount), "currency": b.fee_currency, "reason": b.fee_reason},
           "hold_expires_at": b.hold_expires_at, "payment_status": b.payment_status,
           **_live(b, now),
           "address": {k: b.address.get(k) for k in ("street", "city", "postal_code")},
           "patient": {"name": (b.patient or {}).get("name")},
           "created_at": b.created_at, "updated_at": b.updated_at}
    if b.for_child:
        out["for_child"] = {"name": b.for_child.get("name")}
    if b.cancellation:
        out["cancellation"] = b.cancellation
    if b.unkept:
        out["unkept"] = b.unkept
    return out


def _live(b: BookingModel, now: datetime | None) -> dict:
    """The visit's `eta` as of `now`, recomputed from its clinician's live route (visit events,
    position, travel: homevisits.live_eta) with one GetItem (the copy the last plan wrote when there
    is no live route, or the visit is no longer on the way); and, after a nurse visit, its
    `video_call` (the doctor's name and the expected time) when the plan gave it one."""
    if now is None or b.status not in (S.CONFIRMED, S.EN_ROUTE, S.ARRIVED) or not b.clinician_id:
        return {"eta": b.eta}
    from homevisits.live_eta import call_of, eta_of
    from homevisits.persistence import live
    from homevisits.regions import load_config
    item = live.get_route(b.region_day, b.clinician_id)
    route = item.route() if item else None
    e = eta_of(route, b.booking_id, now, load_config().region(b.region).travel or None)
    eta = e.eta if e else b.eta
    call = call_of(route, b.booking_id, eta)
    return {"eta": eta, **({"video_call": call} if call else {})}


def _local_end(b: BookingModel) -> str:
    from homevisits.regions import load_config
    try:
        tz = load_config().region(b.region).tz
        return parse_utc(b.ends_at).astimezone(tz).strftime("%H:%M")
    except Exception:  # a region removed from config: the stored instant still answers
        return b.ends_at


def _candidate(region: Region, visit_type, w, lat: float, lon: float, vid: str) -> capacity.Visit:
    return capacity.Visit(id=vid, skill=visit_type.skill, location=(lat, lon),
                          earliest=int(w.start_utc.timestamp()), latest=int(w.end_utc.timestamp()),
                          service_s=visit_type.service_minutes * 60,
                          video_call_s=visit_type.video_call_minutes * 60)


# ---- service areas and availability

def day_availability(ctx: Context, postal_code: str, day: date, visit_type: str,
                     point: tuple[float, float] | None = None) -> dict:
    """The day's windows with `available`: time allows it and a visit still fits the clinicians'
    day — at `point` (the patient's address, lat/lon) when given, else at the region's centre (the
    booking re-checks with the address either way)."""
    region, _ = ctx.config.region_for_postal_code(postal_code)
    vt = ctx.config.visit_type(visit_type)
    if point is not None and not region.contains(*point):
        raise AddressOutsideRegion(f"the address is outside {region.name}")
    where = point or region.center
    now = ctx.clock.now()
    windows = availability.day_windows(region, day, now)
    out = []
    day_state = None
    for w, time_ok in windows:
        free = False
        if time_ok:
            if day_state is None:
                ledger = repository.read_ledger(region_day_key(region.id, day), vt.skill)
                day_state = (ledger, lifecycle.counted_visits(ledger, now))
            ledger, counted = day_state
            if ledger.shifts:
                probe = _candidate(region, vt, w, where[0], where[1], "~probe")
                free = lifecycle.place(ledger, probe, region, day, now, counted, allow_rebuild=False) is not None
        out.append({"start": w.start_local.strftime("%H:%M"), "end": w.end_local.strftime("%H:%M"),
                    "available": free})
    return {"region": region.id, "date": day.isoformat(), "visit_type": vt.id, "status": region.status,
            "time_zone": region.time_zone, "checked_at": "address" if point is not None else "region_centre",
            "windows": out}


# ---- booking

def _phone(raw: str, country: str) -> str:
    import phonenumbers  # ~80 ms of imports that only creating a booking needs: not at cold start

    try:
        n = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("the phone number cannot be read") from None
    kind = phonenumbers.number_type(n)
    if not phonenumbers.is_valid_number(n) or kind not in (phonenumbers.PhoneNumberType.MOBILE,
                                                           phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise InvalidPhoneNumber("a mobile phone number is needed: the clinician may call on the way")
    if phonenumbers.region_code_for_number(n) not in ("SE", "NO"):
        raise InvalidPhoneNumber("a Swedish or Norwegian mobile number is needed")
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


@dataclass
class Draft:
    """A validated booking request: everything but what needs DynamoDB (the fee history, the day)."""
    booking_id: str
    caller_sub: str
    req: object  # schemas.BookingRequest
    region: Region
    visit_type: object  # regions.VisitType
    window: object  # availability.Window
    postal_code: str
    booker: object  # identity.PersonalNumber
    treated: object
    treated_key: str
    phone: str
    frikort: dict | None
    rday: str
    now: object  # datetime


@dataclass
class Reads:
    """The reads a booking needs, started together (threads) so they cost one round trip (the
    person's bookings two: a Query, then the bookings it names); the caller may start them before
    Powertools writes its idempotency record, overlapping that too."""
    ledger: Future
    fees_paid: Future | None  # None: the fee does not depend on the patient's history
    people: Future  # person.PersonBookings of the treated person
    account_day: Future  # repository.AccountDay: the caller's account's bookings of the day

    def ledger_now(self) -> DayLedger:
        return self.ledger.result()

    def person_now(self) -> person.PersonBookings:
        return self.people.result()

    def paid(self, booking_id: str, now_iso: str) -> int:
        """Fees paid in the last 12 months plus those of the person's other open bookings."""
        if self.fees_paid is None:
            return 0
        paid = self.fees_paid.result()
        return sum(paid.values()) + person.pending_fees(self.person_now(), booking_id, set(paid), now_iso)


_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="booking-read")
    return _pool


def prepare_booking(ctx: Context, caller: Caller, req, booking_id: str) -> Draft:
    """Validate a booking request (req: schemas.BookingRequest) without touching DynamoDB: area,
    window, address, symptoms, identity, age, phone. Raises the first refusal."""
    cfg = ctx.config
    now = ctx.clock.now()
    region, code = cfg.region_for_postal_code(req.postal_code)
    vt = cfg.visit_type(req.visit_type)
    w = availability.bookable_window(region, req.date, req.window_start, now)
    if req.address.postal_code:
        other, _ = cfg.region_for_postal_code(req.address.postal_code)
        if other.id != region.id:
            raise AddressOutsideRegion("the address's postal code is in another region than postal_code")
    if not region.contains(req.address.lat, req.address.lon):
        raise AddressOutsideRegion(f"the address is outside {region.name}")
    max_chars = int(cfg.booking.get("symptoms_max_chars", 2000))
    if req.symptoms and len(req.symptoms) > max_chars:
        raise InvalidRequest(f"symptoms may hold at most {max_chars} characters", code="symptoms_too_long",
                             status=422)
    today = region.local_date(now)
    booker = parse_personal_number(req.patient.personal_number, region.country, today=today)
    _signed_in(cfg, caller, booker, today)
    treated = booker
    if req.for_child is not None:
        child = parse_personal_number(req.for_child.personal_number, region.country, today=today)
        if child.age_on(req.date) >= ADULT_AGE:
            raise NotAllowedToBookFor("booking for another adult needs a power of attorney, which we cannot "
                                      "accept here; the patient books for themselves")
        if booker.age_on(today) < ADULT_AGE:
            raise NotAllowedToBookFor("a guardian booking for a child must be an adult")
        treated = child
    min_age = int(cfg.booking.get("min_age_years", 1))
    if treated.age_on(req.date) < min_age:
        raise PatientTooYoung(f"we see children from {min_age} year of age; for younger children call 1177")
    phone = _phone(req.patient.phone, region.country)
    # A frikort the patient declares makes an eligible visit free at once, but nobody has checked it
    # yet: the booking says so, and the dispatcher sees it marked unverified (dispatch.repository).
    frikort = {**req.frikort.model_dump(mode="json"), "declared": True, "verified": False} if req.frikort else None
    return Draft(booking_id=booking_id, caller_sub=caller.sub, req=req, region=region, visit_type=vt, window=w,
                 postal_code=code, booker=booker, treated=treated, treated_key=patient_key(treated), phone=phone,
                 frikort=frikort, rday=region_day_key(region.id, req.date), now=now)


def _signed_in(cfg: Config, caller: Caller, booker, today) -> None:
    """The booker is the person the e-ID login verified: a token carrying a personal number books
    only for that person (and their children); booking under another adult's number is refused.
    `booking.identity_claim_required` refuses tokens without the claim (a deployment whose identity
    provider always sets it)."""
    if caller.personal_number is None:
        if cfg.booking.get("identity_claim_required"):
            raise Forbidden("sign in with e-ID (BankID) to book", code="identity_required")
        return
    try:
        signed = parse_personal_number(caller.personal_number, booker.country, today=today)
    except DomainError:
        signed = None
    if signed is None or signed.digits != booker.digits:
        raise NotAllowedToBookFor("the patient must be the person signed in with e-ID (or their child); "
                                  "booking for another adult needs a power of attorney, which we cannot accept here")


def start_reads(ctx: Context, d: Draft) -> Reads:
    """Start the region-day ledger read, the treated person's and the account's bookings of the day
    and (only when the fee can depend on it) the patient's 12-month fee history, in parallel."""
    pool = _executor()
    history = fees.history_matters(ctx.config, d.region, d.visit_type.id, d.treated.birth_date, d.req.date,
                                   d.frikort)
    return Reads(ledger=pool.submit(repository.read_ledger, d.rday, d.visit_type.skill),
                 fees_paid=pool.submit(fees.paid_12m, d.treated_key, d.now) if history else None,
                 people=pool.submit(person.read, d.treated_key, d.region.local_date(d.now)),
                 account_day=pool.submit(account.read, d.caller_sub, d.req.date.isoformat()))


def create_booking(ctx: Context, caller: Caller, req, booking_id: str) -> dict:
    """Book a window (req: schemas.BookingRequest). Returns {"booking": view, "created": bool}.

    Validates everything first (area, window, identity, age, phone, address, symptoms), quotes the
    fee, then writes booking + clinical note + ledger in one transaction only if every accepted
    visit of the region-day plus this one still fit (homevisits.capacity)."""
    draft = prepare_booking(ctx, caller, req, booking_id)
    return finish_booking(ctx, draft, start_reads(ctx, draft))


def finish_booking(ctx: Context, d: Draft, reads: Reads, idempotency=None) -> dict:
    """Quote the fee, check the day and commit (see create_booking).

    `idempotency` (optional, booking.idempotency.TransactionalStore) adds the API's idempotency
    record, marked completed with the answer, to the booking's transaction and is told when that
    transaction committed: the record then needs no write of its own afterwards."""
    cfg, req, region, vt, w = ctx.config, d.req, d.region, d.visit_type, d.window
    booking_id, now = d.booking_id, d.now
    now_iso, day = utc_iso(now), req.date.isoformat()
    holder_id = reads.person_now().days.get(day)
    stale = person.claim_day(holder_id, reads.person_now().bookings.get(holder_id), day, booking_id, now_iso)
    acct = account.claim(cfg, reads.account_day.result(), booking_id, now_iso)
    amount, currency, reason = fees.quote(cfg, region, vt.id, d.treated.birth_date, req.date, d.frikort,
                                          reads.paid(booking_id, now_iso))
    status = S.CONFIRMED if amount == 0 else S.HELD
    hold_until = utc_iso(now + timedelta(minutes=int(cfg.booking["hold_minutes"]))) if status == S.HELD else None
    address = req.address.model_dump(mode="json")
    address["postal_code"] = d.postal_code
    booker, treated = d.booker, d.treated
    fields = dict(
        booking_id=booking_id, patient_sub=d.caller_sub, region=region.id, region_day=d.rday,
        date=req.date.isoformat(), window_start=w.start_local.strftime("%H:%M"), starts_at=utc_iso(w.start_utc),
        ends_at=utc_iso(w.end_utc), visit_type=vt.id, status=status, fee_amount=amount, fee_currency=currency,
        fee_reason=reason,
        patient={"personal_number": booker.digits, "country": booker.country, "name": req.patient.name,
                 "phone": d.phone, "key": patient_key(booker)},
        for_child=({"personal_number": treated.digits, "country": treated.country, "name": req.for_child.name,
                    "key": d.treated_key} if req.for_child else None),
        frikort=d.frikort, address=address, hold_expires_at=hold_until, priority=req.priority,
        payment_status="none" if amount == 0 else "pending",
        created_at=utc_iso(now), updated_at=utc_iso(now))
    b = lifecycle.draft(fields)
    note = None
    if req.symptoms:
        note = repository.new_clinical_note(booking_id, d.caller_sub, req.symptoms,
                                            now + timedelta(days=int(cfg.retention["clinical_days"])))
    entry = lifecycle.ledger_visit(b, visit_type=vt)
    new_visit = capacity.visit_from_ledger(booking_id, entry)
    result = {"booking": view(b), "created": True}
    extra = idempotency.transaction_items(result) if idempotency is not None else ()

    for attempt in range(lifecycle.MAX_ATTEMPTS):
        ledger = reads.ledger_now() if attempt == 0 else repository.read_ledger(d.rday, vt.skill)
        if booking_id in (ledger.visits or {}):
            break  # an earlier attempt of this same request committed: answer it below
        plan = lifecycle.place(ledger, new_visit, region, req.date, now)
        if plan is None:
            raise WindowFull("this window is fully booked; please choose another")
        ledger.visits = {**(ledger.visits or {}), booking_id: entry}
        ledger.take(plan)
        keep_until = person.expires_at(req.date, region.tz)
        outcome, b = lifecycle.create_booking(fields, note, ledger, extra, person_day=(d.treated_key, stale, keep_until),
                                              account_day=(acct, keep_until))
        if outcome == repository.PERSON_DAY_TAKEN:
            # Another booking of this person took the day meanwhile: decide again on what it holds.
            stale = person.claim_day_now(d.treated_key, day, booking_id, now_iso)
            continue
        if outcome == repository.ACCOUNT_DAY_CHANGED:
            # Another booking of this account changed its day meanwhile: count again.
            acct = account.claim(cfg, account.read(d.caller_sub, day), booking_id, now_iso)
            continue
        if outcome == repository.COMMITTED:
            if idempotency is not None and extra:
                idempotency.completed_in_transaction()
            if status == S.CONFIRMED:
                ctx.publish(SOURCE_BOOKING, "BookingConfirmed",
                            {"booking_id": booking_id, "region": region.id, "date": b.date})
            return result
        if outcome == repository.EXISTS:
            break
        lifecycle.backoff(attempt)
    else:
        raise BusyTryAgain("many bookings are being made for this day right now; please try again")
    existing = repository.get_booking(booking_id)
    if existing is None or existing.patient_sub != d.caller_sub:
        raise BusyTryAgain("please try again")
    return {"booking": view(existing), "created": False}


def _own(caller: Caller, booking_id: str) -> BookingModel:
    """The caller's booking; someone else's answers exactly like a missing one (ids are not probed)."""
    b = repository.get_booking(booking_id)
    if b is None or b.patient_sub != caller.sub:
        raise NotFound("no such booking")
    return b


def get_booking(caller: Caller, booking_id: str, now: datetime) -> dict:
    return view(_own(caller, booking_id), now)


def list_bookings(caller: Caller, now: datetime) -> dict:
    return {"bookings": [view(b, now) for b in repository.bookings_of_patient(caller.sub)]}


def cancel_booking(ctx: Context, caller: Caller, booking_id: str, reason: str | None) -> dict:
    """Cancel, applying the 24-hour rule, and give the capacity back. Cancelling twice answers the
    first cancellation again, and publishes its event again: if the first request died between the
    write and the publish, the retry is what tells payments to release the hold (consumers
    de-duplicate on the booking's state, so a second event is harmless)."""
    b = _own(caller, booking_id)
    if b.status == S.CANCELLED:
        if b.cancellation:
            _publish_cancelled(ctx, b, b.cancellation)
        return view(b)
    now = to_ms(ctx.clock.now())  # decided on exactly the instant stored as evidence
    region = ctx.config.region(b.region)
    decision = "free" if b.unkept else cancellation_decision(
        b.status, b.starts_at, now, int(ctx.config.booking.get("cancellation_free_hours", 24)))
    fee = cancellation_fee(region, "late") if decision == "late" else 0
    record = {"at": utc_iso_ms(now), "reason": reason, "fee_decision": decision, "fee_amount": fee,
              "currency": region.currency}
    done = lifecycle.release_booking(booking_id, S.CANCELLED, reason="patient_cancelled", now=now,
                                     expect=(S.HELD, S.CONFIRMED), extra={"cancellation": record})
    _publish_cancelled(ctx, done, done.cancellation or record)
    return view(done)


def cancellation_decision(status: str, starts_at: str, at: datetime, free_hours: int) -> str:
    """"free" until exactly `free_hours` before the window starts (that instant included) or while
    nothing is held yet, else "late". `at` is the cancellation's instant (to the millisecond), the
    same value stored in the booking's cancellation record, so the evidence always agrees."""
    if status == S.HELD or at <= parse_utc(starts_at) - timedelta(hours=free_hours):
        return "free"
    return "late"


def _publish_cancelled(ctx: Context, b, record: dict) -> None:
    ctx.publish(SOURCE_BOOKING, "BookingCancelled",
                {"booking_id": b.booking_id, "region": b.region, "fee_decision": record.get("fee_decision"),
                 "fee_amount": record.get("fee_amount", 0), "currency": record.get("currency")})


def reschedule_booking(ctx: Context, caller: Caller, booking_id: str, new_date: date, window_start: str) -> dict:
    """Move a booking to another window (same or another day): the old place is freed and the new
    one taken in one transaction over both ledgers, only if the new window still fits."""
    b = _own(caller, booking_id)
    now = ctx.clock.now()
    region = ctx.config.region(b.region)
    w = availability.bookable_window(region, new_date, window_start, now)
    target_day = region_day_key(region.id, new_date)
    if b.region_day == target_day and b.window_start == w.start_local.strftime("%H:%M") \
            and b.status in RESCHEDULABLE:
        return view(b)  # already there: a repeated request
    if b.status not in RESCHEDULABLE:
        raise InvalidTransition(f"a {b.status} booking cannot be rescheduled", details={"status": b.status})
    free_hours = int(ctx.config.booking.get("cancellation_free_hours", 24))
    # A visit we could not keep (b.unkept) may be moved at any time: the service's fault, not the patient's.
    if b.status == S.CONFIRMED and not b.unkept and now > parse_utc(b.starts_at) - timedelta(hours=free_hours):
        raise TooLateToReschedule(f"a booking can be moved until {free_hours} hours before it starts; you may "
                                  "cancel it (the late-cancellation fee applies) and book again")
    if b.status == S.HELD and b.hold_expires_at and b.hold_expires_at <= utc_iso(now):
        raise InvalidTransition("the reservation has expired; please book again", details={"status": S.HELD})
    vt = ctx.config.visit_type(b.visit_type)
    for attempt in range(lifecycle.MAX_ATTEMPTS):
        b = _own(caller, booking_id)
        if b.status not in RESCHEDULABLE:
            raise InvalidTransition(f"a {b.status} booking cannot be rescheduled", details={"status": b.status})
        # Another day: the treated person's lock of it (one open booking a day) and the account's
        # place on it (the account's limit a day), both in the move's transaction.
        claim = acct_claim = None
        key = person_key(b.for_child or b.patient) if new_date.isoformat() != b.date else None
        if key is not None:
            stale = person.claim_day_now(key, new_date.isoformat(), booking_id, utc_iso(now))
            keep_until = person.expires_at(new_date, region.tz)
            claim = (key, stale, keep_until)
            acct = account.claim(ctx.config, account.read(b.patient_sub, new_date.isoformat()), booking_id,
                                 utc_iso(now))
            acct_claim = (acct, keep_until)
        old = repository.read_ledger(b.region_day)
        new = old if target_day == b.region_day else repository.read_ledger(target_day)
        entry = dict((old.visits or {}).get(booking_id) or lifecycle.ledger_visit(b, visit_type=vt))
        entry.update(starts_at=utc_iso(w.start_utc), ends_at=utc_iso(w.end_utc))
        visit = capacity.visit_from_ledger(booking_id, entry)
        counted = lifecycle.counted_visits(new, now)
        new.routes = {c: [v for v in seq if v != booking_id] for c, seq in (new.routes or {}).items()} or None
        plan = lifecycle.place(new, visit, region, new_date, now,
                               counted=lambda bid, raw: bid != booking_id and counted(bid, raw))
        if plan is None:
            raise WindowFull("the new window is fully booked; please choose another")
        if new is not old:
            visits = dict(old.visits or {})
            visits.pop(booking_id, None)
            old.visits = visits
            old.routes = {c: [v for v in seq if v != booking_id] for c, seq in (old.routes or {}).items()}
        new.visits = {**(new.visits or {}), booking_id: entry}
        new.take(plan)
        values = {"date": new_date.isoformat(), "window_start": w.start_local.strftime("%H:%M"),
                  "starts_at": utc_iso(w.start_utc), "ends_at": utc_iso(w.end_utc), "region_day": target_day,
                  "updated_at": utc_iso(now), "status_reason": "rescheduled", "unkept": None}
        ledgers = [new] if new is old else [old, new]
        before = {"date": b.date, "window_start": b.window_start}
        if lifecycle.try_reschedule(b, values, ledgers, person_day=claim, account_day=acct_claim):
            if b.status == S.CONFIRMED:  # a held booking is confirmed (and told so) with its new window
                ctx.publish(SOURCE_BOOKING, "BookingRescheduled",
                            {"booking_id": booking_id, "region": b.region, "date": b.date,
                             "window_start": b.window_start, "starts_at": b.starts_at, "previous": before,
                             "at": values["updated_at"]})
            return view(b)
        lifecycle.backoff(attempt)
    raise BusyTryAgain("the booking is being changed by another request; try again")


# ---- shifts (dispatchers)

def _shift_raw(body) -> dict:
    named = {"name": body.name} if body.name else {}
    if body.video_calls:  # a remote doctor: no route, no place, no break to plan
        return {"role": body.role, "start": body.start, "end": body.end, "video_calls": True, **named}
    start = body.start_location  # put_shift checked it is there
    end = body.end_location or start
    brk = body.break_.model_dump() if body.break_ else dict(capacity.DEFAULT_BREAK)
    return {"role": body.role, "start": body.start, "end": body.end,
            "start_location": start.model_dump(), "end_location": end.model_dump(), "break": brk, **named}


def put_shift(ctx: Context, caller: Caller, region_id: str, clinician_id: str, day: date, body,
              override: bool = False) -> dict:
    """Set one clinician's shift on a region-day. Without `override`, a change that would leave
    accepted visits without a clinician is refused (409 shift_change_strands_bookings); with it
    (a late start, an early end) the day is re-planned with the fewest changes and the visits that
    fit nowhere are listed as `unkept` (see `_change_shift`)."""
    caller.require_dispatcher_of(region_id)
    region = ctx.config.region(region_id)
    if body.end <= body.start:
        raise InvalidRequest("a shift ends after it starts", code="invalid_shift")
    if body.video_calls and body.role != "doctor":
        raise InvalidRequest("only a doctor takes the nurse visits' video calls", code="invalid_shift")
    if not body.video_calls and body.start_location is None:
        raise InvalidRequest("a shift with a route needs its start_location", code="invalid_shift")
    for loc in ([] if body.video_calls else [body.start_location, body.end_location or body.start_location]):
        if not region.contains(loc.lat, loc.lon):
            raise AddressOutsideRegion(f"the shift's start/end location is outside {region.name}")
    raw = _shift_raw(body)
    if "break" in raw and raw["break"]["earliest"] > raw["break"]["latest"]:
        raise InvalidRequest("the break's earliest start is after its latest", code="invalid_shift")
    return _change_shift(ctx, region, clinician_id, day, raw, override=override)


def remove_shift(ctx: Context, caller: Caller, region_id: str, clinician_id: str, day: date) -> dict:
    """Take a clinician off a region-day (sick leave): their visits go to the others where they fit,
    the rest are `unkept` and their patients offered the nearest free windows. Visits they finished
    stay as they are; a visit under way refuses the removal (409 visit_under_way: end the shift
    after it with PUT ?override=true). Repeating it answers the same unkept visits again."""
    caller.require_dispatcher_of(region_id)
    region = ctx.config.region(region_id)
    return _change_shift(ctx, region, clinician_id, day, None, override=True)


def _change_shift(ctx: Context, region: Region, clinician_id: str, day: date, raw: dict | None, *,
                  override: bool) -> dict:
    """Write `raw` (None: remove) as the clinician's shift, keeping the ledger's promise that every
    visit it holds can be served. With `override`, the visits that no longer fit anywhere leave the
    ledger in the same transaction that marks their bookings unkept (homevisits.lifecycle), and a
    VisitUnkept event per booking asks notifications to offer the patient other windows."""
    rday = region_day_key(region.id, day)
    for attempt in range(lifecycle.MAX_ATTEMPTS):
        now = ctx.clock.now()
        ledger = repository.read_ledger(rday)
        if (ledger.shifts or {}).get(clinician_id) == raw:
            if raw is None:
                return _removed_again(ctx, ledger, region, day, clinician_id)
            return _shift_view(ledger, region.id, day)
        shifts = dict(ledger.shifts or {})
        old = shifts.get(clinician_id)
        if old is not None and raw is not None and video_calls.on_calls(old) != video_calls.on_calls(raw) \
                and (ledger.routes or {}).get(clinician_id):
            raise ShiftChangeStrandsBookings("this clinician's route holds visits: take the shift off the day "
                                             "(DELETE) before declaring them on video calls")
        if raw is None:
            shifts.pop(clinician_id)
        else:
            shifts[clinician_id] = raw
        ledger.shifts = shifts
        stranded: list[BookingModel] = []
        if ledger.visits:
            if override:
                plan, stranded = _absorb(ledger, region, day, now, clinician_id, removing=raw is None)
                ledger.routes = plan.sequences()  # a plan of the whole day
            elif raw is not None:  # only its own route and its neighbours' can change (homevisits.ledger)
                part = ledger.around_clinician(clinician_id, day, region.tz)
                found = capacity.check(lifecycle.ledger_day(part, region, day, now), None, part.routes)
                if found is None:
                    raise ShiftChangeStrandsBookings("this change would leave booked visits without a clinician; "
                                                     "send it again with ?override=true to list them as unkept")
                ledger.take(found)
        if stranded:
            days: dict = {day: ledger}
            offered = {b.booking_id: nearest_free_windows(ctx, region, lifecycle.ledger_visit(b), day, now, days)
                       for b in stranded}
            record = {"at": utc_iso(now), "reason": "clinician_unavailable", "clinician_id": clinician_id,
                      "offered": offered}
            saved = lifecycle.try_strand(stranded, record, ledger)
        else:
            saved = repository.save_ledger(ledger)
        if saved:
            for b in stranded:
                _publish_unkept(ctx, b)
            return {**_shift_view(ledger, region.id, day), "unkept": [_unkept_view(b) for b in stranded]}
        lifecycle.backoff(attempt)
    raise BusyTryAgain("the day is being changed by another request; try again")


def _absorb(ledger: DayLedger, region: Region, day: date, now, clinician_id: str, *,
            removing: bool) -> tuple[capacity.Plan, list[BookingModel]]:
    """The ledger's routes after the clinician's change with the fewest changes, and the open
    bookings that fit nowhere (already taken out of `ledger`). Visits the clinician finished stop
    holding capacity; visits under way stay with them (VisitUnderWay when that is impossible)."""
    theirs = list((ledger.routes or {}).get(clinician_id, []))
    facts = repository.get_bookings(theirs, consistent=True) if theirs else {}
    visits = dict(ledger.visits or {})
    under_way = frozenset(bid for bid, b in facts.items() if b.status in (S.EN_ROUTE, S.ARRIVED))
    for bid, b in facts.items():
        if b.status not in OPEN and bid in visits:
            visits[bid] = {**visits[bid], "status": b.status}  # done: it needs no capacity any more
    if removing and under_way:
        raise VisitUnderWay("the clinician has a visit under way; end the shift after it with "
                            "PUT …/shifts/{date}?override=true instead", details={"booking_ids": sorted(under_way)})
    ledger.visits = visits
    d = lifecycle.ledger_day(ledger, region, day, now)
    urgent = frozenset(bid for bid, raw in visits.items() if raw.get("priority") == "urgent")
    found = capacity.absorb(d, dict(ledger.routes or {}), keep=under_way, urgent=urgent)
    if found is None:
        raise VisitUnderWay("the new shift cannot finish the visits under way", details={"booking_ids": sorted(under_way)})
    plan, left = found
    bookings = repository.get_bookings(left, consistent=True) if left else {}
    for bid in left:
        visits.pop(bid, None)
    ledger.visits = visits
    return plan, [bookings[bid] for bid in left if bid in bookings and bookings[bid].status in OPEN]


def nearest_free_windows(ctx: Context, region: Region, entry: dict, day: date, now, ledgers: dict,
                         limit: int = 3, days: int = 2) -> list[dict]:
    """Up to `limit` windows that a visit like `entry` (a ledger visit) could be moved to now, the
    nearest first: later the same day, then the next `days` days (availability's rules: not started,
    inside the horizon, the visit fits the day at its address). `ledgers`: date -> ledger already
    read (the changed day's, not yet saved); others are read once and added."""
    vt = ctx.config.visit_type(entry["visit_type"])
    out: list[dict] = []
    for i in range(days + 1):
        d = day + timedelta(days=i)
        if d not in ledgers:
            ledgers[d] = repository.get_ledger(region_day_key(region.id, d))
        ledger = ledgers[d]
        if ledger is None or not ledger.shifts:
            continue
        counted = lifecycle.counted_visits(ledger, now)
        for w, time_ok in availability.day_windows(region, d, now):
            if not time_ok or utc_iso(w.start_utc) == entry["starts_at"]:
                continue
            probe = _candidate(region, vt, w, float(entry["lat"]), float(entry["lon"]), "~probe")
            if lifecycle.place(ledger, probe, region, d, now, counted, allow_rebuild=False) is not None:
                out.append({"date": d.isoformat(), "window_start": w.start_local.strftime("%H:%M"),
                            "window_end": w.end_local.strftime("%H:%M")})
                if len(out) >= limit:
                    return out
    return out


def _unkept_view(b: BookingModel) -> dict:
    return {"booking_id": b.booking_id, "visit_type": b.visit_type, "window_start": b.window_start,
            "priority": b.priority or "normal", "offered": (b.unkept or {}).get("offered", [])}


def _publish_unkept(ctx: Context, b: BookingModel) -> None:
    ctx.publish(SOURCE_BOOKING, "VisitUnkept", {"booking_id": b.booking_id, "region": b.region,
                                                "region_day": b.region_day,
                                                "offered": (b.unkept or {}).get("offered", [])})


def _removed_again(ctx: Context, ledger: DayLedger, region: Region, day: date, clinician_id: str) -> dict:
    """A repeated removal: the visits that one left unkept (told again: notifications send once)."""
    unkept = [b for b, _ in repository.bookings_of_region_day(ledger.region_day)
              if b.status in OPEN and (b.unkept or {}).get("clinician_id") == clinician_id]
    if not unkept:
        raise NotFound("this clinician has no shift on that day", code="no_shift")
    for b in unkept:
        _publish_unkept(ctx, b)
    return {**_shift_view(ledger, region.id, day), "unkept": [_unkept_view(b) for b in unkept]}


def _shift_view(ledger: DayLedger | None, region_id: str, day: date) -> dict:
    shifts = (ledger.shifts or {}) if ledger else {}
    visits = (ledger.visits or {}) if ledger else {}
    return {"region": region_id, "date": day.isoformat(), "version": ledger.version if ledger else 0,
            "shifts": [{"clinician_id": c, **s} for c, s in sorted(shifts.items())],
            "visits_holding_capacity": len(visits), "routes": (ledger.routes or {}) if ledger else {}}


def list_shifts(ctx: Context, caller: Caller, region_id: str, day: date) -> dict:
    caller.require_dispatcher_of(region_id)
    ctx.config.region(region_id)
    return _shift_view(repository.get_ledger(region_day_key(region_id, day)), region_id, day)


# ---- hold expiry (the schedule)

def expire_holds(ctx: Context) -> dict:
    """Expire every held booking whose hold ran out, giving its capacity back (BookingExpired).

    Finds them in the ledgers of today..horizon for every region (one BatchGetItem, no Scan)."""
    now = ctx.clock.now()
    now_iso = utc_iso(now)
    keys = []
    for region in ctx.config.regions.values():
        today = region.local_date(now)
        keys += [region_day_key(region.id, today + timedelta(days=i)) for i in range(-1, region.booking_horizon_days + 1)]
    expired, skipped = [], 0
    for ledger in repository.ledgers(keys):
        for bid, raw in (ledger.visits or {}).items():
            if raw.get("status") != S.HELD or not raw.get("hold_expires_at") or raw["hold_expires_at"] > now_iso:
                continue
            try:
                b = lifecycle.release_booking(bid, S.EXPIRED, reason="hold_expired", now=now, expect=(S.HELD,))
            except (InvalidTransition, NotFound, BusyTryAgain):
                skipped += 1  # confirmed meanwhile (the ledger is told by confirm_booking) or busy: next run
                continue
            expired.append(bid)
            ctx.publish(SOURCE_BOOKING, "BookingExpired", {"booking_id": bid, "region": b.region})
    return {"expired": expired, "skipped": skipped}
