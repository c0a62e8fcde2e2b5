"""DynamoDB access of the booking context (the shared PynamoDB models): GetItem, Query on the
by-patient index, and the transactions that write a booking together with its region-day ledger.

Each commit function makes one attempt and reports a lost race as False; the service re-reads,
re-decides and retries (optimistic locking on the ledger's version, no in-memory lock)."""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from homevisits.lifecycle import commit_booking_update, connection, read_ledger  # noqa: F401  (re-exported for the service)
from homevisits.persistence.booking import BookingModel, CapacityModel, ClinicalNoteModel


def get_booking(booking_id: str, consistent: bool = True) -> BookingModel | None:
    try:
        return BookingModel.get(booking_id, consistent_read=consistent)
    except DoesNotExist:
        return None


def bookings_of(patient_sub: str) -> list[BookingModel]:
    """The patient's bookings, by window start (one Query on the by-patient index)."""
    return list(BookingModel.by_patient.query(patient_sub))


COMMITTED, EXISTS, LOST_RACE = "committed", "exists", "lost_race"


def commit_new_booking(booking: BookingModel, note: ClinicalNoteModel | None, ledger: CapacityModel,
                       extra_updates=()) -> str:
    """Booking (must not exist) + clinical note + ledger (version-checked) in one transaction, plus
    `extra_updates` ((model instance, update actions) pairs, e.g. the idempotency record).

    Returns COMMITTED, EXISTS (the booking id is taken: an earlier attempt of the same request
    committed) or LOST_RACE (the ledger changed or the transaction collided: re-read and retry)."""
    try:
        with TransactWrite(connection=connection()) as tw:
            tw.save(booking, condition=BookingModel.booking_id.does_not_exist())  # item 0
            if note is not None:
                tw.save(note, condition=ClinicalNoteModel.booking_id.does_not_exist())
            tw.save(ledger)
            for item, actions in extra_updates:
                tw.update(item, actions=actions)
        return COMMITTED
    except TransactWriteError as e:
        reasons = e.cancellation_reasons or []
        first = reasons[0] if reasons else None
        if first is not None and first.code == "ConditionalCheckFailed":
            return EXISTS
        return LOST_RACE


def commit_ledger(ledger: CapacityModel) -> bool:
    """Save a ledger conditioned on its version (shift changes)."""
    try:
        ledger.save()
        return True
    except PutError as e:
        if e.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise


def get_ledger(region_day: str) -> CapacityModel | None:
    try:
        return CapacityModel.get(region_day, consistent_read=True)
    except DoesNotExist:
        return None


def ledgers(region_days: list[str]) -> list[CapacityModel]:
    """Many region-days at once (BatchGetItem), for the expiry job."""
    return list(CapacityModel.batch_get(region_days, consistent_read=True)) if region_days else []
