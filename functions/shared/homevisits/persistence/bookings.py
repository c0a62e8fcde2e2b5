"""The booking store: reads and writes of booking items, their region-day capacity ledgers and
clinical notes (BookingsTable, CapacityTable, ClinicalTable).

Only `homevisits.lifecycle` calls the write functions marked *lifecycle only* (an architecture
test holds it): a booking's status and version change in one place. Every booking write is
conditioned on the status and the version the writer read (optimistic locking), so a lost race is
reported (False / LOST_RACE) and the caller re-reads; a version only ever goes up.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from homevisits.ledger import DayLedger
from homevisits.persistence import ledger as ledger_store
from homevisits.persistence.base import condition_failed, transaction
from homevisits.persistence.booking import BookingModel, ClinicalNoteModel

COMMITTED, EXISTS, LOST_RACE = "committed", "exists", "lost_race"


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
                   extra_updates=()) -> str:
    """*Lifecycle only.* Booking (must not exist) + clinical note + the ledger's changed shards (each
    version-checked) in one
    transaction, plus `extra_updates` ((model instance, update actions) pairs, e.g. the idempotency
    record). COMMITTED, EXISTS (the booking id is taken: an earlier attempt of the same request
    committed) or LOST_RACE (the ledger changed or the transaction collided: re-read and retry)."""
    try:
        with transaction() as tw:
            tw.save(booking, condition=BookingModel.booking_id.does_not_exist())  # item 0
            if note is not None:
                tw.save(note, condition=ClinicalNoteModel.booking_id.does_not_exist())
            for shard in ledger_store.shard_models(ledger):
                tw.save(shard)
            for item, actions in extra_updates:
                tw.update(item, actions=actions)
        return COMMITTED
    except TransactWriteError as e:
        reasons = e.cancellation_reasons or []
        first = reasons[0] if reasons else None
        if first is not None and first.code == "ConditionalCheckFailed":
            return EXISTS
        return LOST_RACE


def _actions(values: dict) -> list:
    actions = []
    for name, value in values.items():
        attr = getattr(BookingModel, name)
        actions.append(attr.remove() if value is None else attr.set(value))
    return actions


def commit_booking_update(b: BookingModel, values: dict, expect_status: str, ledgers: Iterable[DayLedger] = (),
                          also_save: Iterable = ()) -> bool:
    """*Lifecycle only.* One transaction: the booking's update (conditioned on `expect_status` and on
    the version read; the version goes up by one), the ledgers' changed shards and `also_save` items
    (each version-checked by its model). False when another writer won; `b` is updated on success."""
    shards = [m for ledger in ledgers for m in ledger_store.shard_models(ledger)]
    return _commit(b, values, expect_status, [(item, None) for item in (*shards, *also_save)])


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
