"""The booking store: reads and writes of booking items, their region-day capacity ledgers and
clinical notes (BookingsTable, CapacityTable, ClinicalTable).

Only `homevisits.lifecycle` calls the write functions marked *lifecycle only* (an architecture
test holds it): a booking's status and version change in one place. Every booking write is
conditioned on the status and the version the writer read (optimistic locking), so a lost race is
reported (False / LOST_RACE) and the caller re-reads; a version only ever goes up.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from homevisits.ledger import DayLedger
from homevisits.persistence import ledger as ledger_store
from homevisits.persistence.base import condition_failed, transaction
from homevisits.persistence.booking import (AccountDayModel, BookingModel, ClinicalNoteModel, PersonDayModel,
                                            account_pk, person_day_sk, person_pk)

COMMITTED, EXISTS, PERSON_DAY_TAKEN, LOST_RACE = "committed", "exists", "person_day_taken", "lost_race"
ACCOUNT_DAY_CHANGED = "account_day_changed"


@dataclass(frozen=True)
class AccountDay:
    """The bookings an account made for one local day, as read (`version` None: nothing stored yet).
    Written back whole, conditioned on `version` (AccountDayModel)."""
    patient_sub: str
    day: str
    booking_ids: tuple[str, ...] = ()
    version: int | None = None


# ---------------------------------------------------------------- reads
def get_booking(booking_id: str, consistent: bool = True) -> BookingModel | None:
    try:
        return BookingModel.get(booking_id, consistent_read=consistent)
    except DoesNotExist:
        return None


def get_bookings(booking_ids: Iterable[str], consistent: bool = False,
                 attributes: list[str] | None = None) -> dict[str, BookingModel]:
    """booking id -> booking (BatchGetItem); missing ids are left out."""
    ids = list(dict.fromkeys(booking_ids))
    if not ids:
        return {}
    return {b.booking_id: b for b in BookingModel.batch_get(ids, consistent_read=consistent,
                                                            attributes_to_get=attributes)}


def bookings_of_patient(patient_sub: str) -> list[BookingModel]:
    """The patient's bookings, by window start (one Query on the by-patient index)."""
    return list(BookingModel.by_patient.query(patient_sub))


def bookings_of_region_day(region_day: str) -> list[tuple[BookingModel, dict]]:
    """Every booking of a region-day (any status) with its raw item (for optional attributes such
    as `priority` that the model does not declare)."""
    conn = BookingModel._get_connection()
    out, start = [], None
    while True:
        page = conn.query(region_day, index_name="by-region-day", exclusive_start_key=start)
        for raw in page.get("Items", []):
            out.append((BookingModel.from_raw_data(raw), raw))
        start = page.get("LastEvaluatedKey")
        if not start:
            return out


def person_days(patient_key: str, from_day: str) -> dict[str, str]:
    """day -> the booking id a person's day item names, for days from `from_day` on (one Query)."""
    items = PersonDayModel.query(person_pk(patient_key), PersonDayModel.sk >= person_day_sk(from_day),
                                 consistent_read=True)
    return {item.sk.removeprefix("DAY#"): item.booking_id for item in items}


def person_day(patient_key: str, day: str) -> str | None:
    """The booking id the person's item of `day` names (None when there is none)."""
    try:
        return PersonDayModel.get(person_pk(patient_key), person_day_sk(day), consistent_read=True).booking_id
    except DoesNotExist:
        return None


def account_day(patient_sub: str, day: str) -> AccountDay:
    """The account's bookings of `day` (one consistent GetItem; empty when none is stored)."""
    try:
        item = AccountDayModel.get(account_pk(patient_sub), person_day_sk(day), consistent_read=True)
    except DoesNotExist:
        return AccountDay(patient_sub, day)
    return AccountDay(patient_sub, day, tuple(str(bid) for bid in item.booking_ids or ()), item.version)


def _account_day_item(acct: AccountDay, expires_at) -> AccountDayModel:
    """The item to put (in the caller's transaction): conditioned by PynamoDB on the version read,
    or on not existing yet."""
    item = AccountDayModel(account_pk(acct.patient_sub), person_day_sk(acct.day), booking_ids=list(acct.booking_ids),
                           expires_at=expires_at)
    if acct.version is not None:
        item.version = acct.version
    return item


def read_ledger(region_day: str, skill: str | None = None) -> DayLedger:
    """The region-day's ledger (strongly consistent; only `skill`'s shards when given), empty if
    nothing is stored yet (homevisits.ledger, persistence.ledger)."""
    return ledger_store.read_day(region_day, skill)


def get_ledger(region_day: str, consistent: bool = True) -> DayLedger | None:
    """The stored region-day, or None when nothing is stored for it."""
    return ledger_store.get_day(region_day, consistent=consistent)


def ledgers(region_days: list[str]) -> list[DayLedger]:
    """Many region-days at once (one Query each, in parallel), for the expiry job."""
    return ledger_store.days(region_days)


def clinical_notes(booking_ids: list[str], now: datetime) -> dict:
    """booking id -> symptoms, leaving out notes past their expiry (TTL deletion lags)."""
    out: dict[str, str | None] = {}
    if not booking_ids:
        return out
    for note in ClinicalNoteModel.batch_get(list(dict.fromkeys(booking_ids))):
        exp = note.expires_at
        if exp is not None and exp.astimezone(timezone.utc) <= now:
            continue
        out[note.booking_id] = note.symptoms
    return out


# ---------------------------------------------------------------- writes that are not a booking's
def save_ledger(ledger: DayLedger) -> bool:
    """Save a ledger's changed shards, each conditioned on its version (shift changes); False when
    another writer won."""
    return ledger_store.save_day(ledger)


def delete_clinical_note(booking_id: str) -> None:
    ClinicalNoteModel(booking_id=booking_id).delete()


def new_clinical_note(booking_id: str, patient_sub: str, symptoms: str, expires_at: datetime) -> ClinicalNoteModel:
    return ClinicalNoteModel(booking_id=booking_id, patient_sub=patient_sub, symptoms=symptoms,
                             expires_at=expires_at)


# ---------------------------------------------------------------- booking writes (lifecycle only)
def draft_booking(fields: dict) -> BookingModel:
    """A booking not yet stored (its first write is `insert_booking`)."""
    return BookingModel(**fields)


def insert_booking(booking: BookingModel, note: ClinicalNoteModel | None, ledger: DayLedger,
                   extra_updates=(), person_day: tuple | None = None, account_day: tuple | None = None) -> str:
    """*Lifecycle only.* Booking (must not exist) + clinical note + the ledger's changed shards (each
    version-checked) in one
    transaction, plus `extra_updates` ((model instance, update actions) pairs, e.g. the idempotency
    record), `person_day` = (patient_key, stale booking id or None, expires_at): the person's day
    item now naming this booking, conditioned on it being absent or still naming the stale booking,
    and `account_day` = (AccountDay as it is to be written, expires_at): the account's bookings of
    the day, conditioned on the version read.

    COMMITTED, EXISTS (the booking id is taken: an earlier attempt of the same request committed),
    PERSON_DAY_TAKEN (another booking of the person took the day meanwhile), ACCOUNT_DAY_CHANGED
    (another booking of the account changed its day item meanwhile: re-read it and decide again) or
    LOST_RACE (the ledger changed or the transaction collided: re-read and retry)."""
    person_index = account_index = None
    try:
        with transaction() as tw:
            tw.save(booking, condition=BookingModel.booking_id.does_not_exist())  # item 0
            n = 1
            if note is not None:
                tw.save(note, condition=ClinicalNoteModel.booking_id.does_not_exist())
                n += 1
            for shard in ledger_store.shard_models(ledger):
                tw.save(shard)
                n += 1
            if person_day is not None:
                key, stale, expires_at = person_day
                tw.save(*_person_day_claim(key, booking.date, booking.booking_id, stale, expires_at))
                person_index = n
                n += 1
            if account_day is not None:
                tw.save(_account_day_item(*account_day))
                account_index = n
                n += 1
            for item, actions in extra_updates:
                tw.update(item, actions=actions)
        return COMMITTED
    except TransactWriteError as e:
        reasons = e.cancellation_reasons or []
        failed = [i for i, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"]
        if 0 in failed:
            return EXISTS
        if person_index in failed:
            return PERSON_DAY_TAKEN
        if account_index in failed:
            return ACCOUNT_DAY_CHANGED
        return LOST_RACE


def _person_day_claim(patient_key: str, day: str, booking_id: str, stale: str | None, expires_at):
    """(item, condition): the person's `day` item naming `booking_id`, written only if it is absent
    (`stale` None) or still names `stale`."""
    item = PersonDayModel(person_pk(patient_key), person_day_sk(day), booking_id=booking_id, expires_at=expires_at)
    return item, (PersonDayModel.pk.does_not_exist() if stale is None else PersonDayModel.booking_id == stale)


def _actions(values: dict) -> list:
    actions = []
    for name, value in values.items():
        attr = getattr(BookingModel, name)
        actions.append(attr.remove() if value is None else attr.set(value))
    return actions


def commit_booking_update(b: BookingModel, values: dict, expect_status: str, ledgers: Iterable[DayLedger] = (),
                          also_save: Iterable = (), person_day: tuple | None = None,
                          account_day: tuple | None = None) -> bool:
    """*Lifecycle only.* One transaction: the booking's update (conditioned on `expect_status` and on
    the version read; the version goes up by one), the ledgers' changed shards, `also_save` items
    (each version-checked by its model), `person_day` = (patient_key, stale booking id or None,
    expires_at): the person's item of the booking's (new) date naming it, and `account_day` =
    (AccountDay, expires_at): the account's item of that date, both as insert_booking writes them.
    False when another writer won; `b` is updated on success."""
    shards = [m for ledger in ledgers for m in ledger_store.shard_models(ledger)]
    saves: list = [(item, None) for item in (*shards, *also_save)]
    if person_day is not None:
        key, stale, expires_at = person_day
        saves.append(_person_day_claim(key, values.get("date", b.date), b.booking_id, stale, expires_at))
    if account_day is not None:
        saves.append((_account_day_item(*account_day), None))
    return _commit(b, values, expect_status, saves)


def _commit(b: BookingModel, values: dict, expect_status: str, saves: list) -> bool:
    """The booking's conditional update plus (item, condition) saves, in one transaction."""
    try:
        with transaction() as tw:
            tw.update(b, actions=_actions(values), condition=BookingModel.status == expect_status)
            for item, condition in saves:
                tw.save(item, condition=condition)
    except TransactWriteError as err:
        if condition_failed(err):
            return False
        raise
    for k, v in values.items():
        setattr(b, k, v)
    return True


def commit_bookings_update(changes: list[tuple[BookingModel, dict]], ledger: DayLedger) -> bool:
    """*Lifecycle only.* One transaction: each booking's update (conditioned on the status and the
    version read; statuses are not changed here) and the ledger's changed shards (each
    version-checked). False when another writer won; the bookings are updated on success."""
    try:
        with transaction() as tw:
            for b, values in changes:
                tw.update(b, actions=_actions(values), condition=BookingModel.status == b.status)
            for shard in ledger_store.shard_models(ledger):
                tw.save(shard)
    except TransactWriteError as err:
        if condition_failed(err):
            return False
        raise
    for b, values in changes:
        for k, v in values.items():
            setattr(b, k, v)
    return True


def update_booking(b: BookingModel, values: dict, expect_statuses: Iterable[str]) -> bool:
    """*Lifecycle only.* Update fields of a booking read before (never a freshly built one), if its
    status is one of `expect_statuses` and its version unchanged; the version goes up by one.
    False when another writer won (re-read and decide again)."""
    try:
        b.update(actions=_actions(values), condition=BookingModel.status.is_in(*[str(s) for s in expect_statuses]))
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def commit_visit_event(b: BookingModel, values: dict, expect_status: str, record) -> bool:
    """*Lifecycle only.* One transaction: the booking's move (status and version checked) and the
    visit event's record (conditioned on not existing yet). False when either condition failed."""
    return _commit(b, values, expect_status, [(record, type(record).pk.does_not_exist())])
