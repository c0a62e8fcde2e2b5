"""A patient's privacy rights over the API: the access-log extract and erasure.

- `GET /me/access-log`: who read the caller's data. Entries come from the access audit dispatch
  writes when staff read a patient's data (`AUDIT#{patient_sub}`). Staff are shown by role and a
  stable pseudonym (an HMAC of their id): a patient sees "the same clinician read it twice" without
  the service publishing staff identities; the care provider resolves a pseudonym on a formal
  request (patient-data law), since it holds the key.
- `POST /me/erasure`: erases the personal data of the caller's bookings that are finished
  (completed, cancelled, no-show, expired). Names, phone numbers, addresses, door codes, frikort
  numbers and symptoms go; the personal number is replaced by the same HMAC `patient_key` the fee
  ledger uses, so the high-cost protection and the bookkeeping still add up. What accounting law
  requires stays: payment records, fee-ledger amounts, booking ids, dates, fees. Bookings still in
  progress (held, confirmed, en route, arrived) are kept and named in the receipt (cancel first).
  Every request leaves an erasure receipt (OpsTable `ERASURE#{patient_sub}`), returned as the answer.
"""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler.api_gateway import Router

from homevisits.booking_state import FINISHED
from homevisits.clock import default_clock, utc_iso
from homevisits.errors import Forbidden
from homevisits.http import current_caller
from homevisits.observability import get_logger
from homevisits.schema import Schema

if TYPE_CHECKING:
    from homevisits.persistence.booking import BookingModel

router = Router()
logger = get_logger("booking")

RETAINED = ["payment records", "fee ledger amounts", "booking ids, dates and fees", "access log"]
MAX_ENTRIES = 1000
_ERROR = {"application/json": {"schema": {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "object", "required": ["code", "message"],
              "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}}
ERRORS = {401: {"description": "missing or invalid token", "content": _ERROR},
          403: {"description": "only a patient has an access log and erasure rights", "content": _ERROR}}


class AccessLogEntry(Schema):
    at: str
    reader_role: str
    reader: str  # a pseudonym, stable per reader
    what: str
    booking_id: str


class AccessLog(Schema):
    entries: list[AccessLogEntry]


class KeptBooking(Schema):
    booking_id: str
    status: str
    reason: str


class ErasureReceipt(Schema):
    receipt_id: str
    at: str
    erased: list[str]
    already_erased: list[str]
    kept: list[KeptBooking]
    retained: list[str]


def reader_pseudonym(reader_sub: str) -> str:
    """A stable pseudonym of a staff reader: the same reader always gets the same one."""
    from homevisits.identity import keyed_hash
    return keyed_hash(f"reader:{reader_sub}")[:12]


def _patient(router_: Router):
    caller = current_caller(router_)
    if caller.role != "patient":
        raise Forbidden("only a patient has an access log and erasure rights")
    return caller


@router.get("/me/access-log", summary="Who read my data (access-log extract)",
            responses={200: {"description": "the access log, newest first",
                             "content": {"application/json": {"model": AccessLog}}}, **ERRORS})
def access_log() -> AccessLog:
    caller = _patient(router)
    from homevisits.persistence.ops import access_log_of
    entries = []
    for item in access_log_of(caller.sub, MAX_ENTRIES):
        entries.append(AccessLogEntry(at=item.at, reader_role=item.reader_role,
                                      reader=f"{item.reader_role}-{reader_pseudonym(item.reader_sub)}",
                                      what=item.what, booking_id=item.booking_id))
    return AccessLog(entries=entries)


def _erased_patient(patient: dict | None) -> dict:
    from homevisits.identity import person_key
    patient = patient or {}
    if patient.get("erased"):
        return patient
    return {"erased": True, "patient_key": person_key(patient)}


def _erased_address(address: dict | None) -> dict:
    # The region (kept on the booking) says where for statistics; nothing finer stays.
    return {"erased": True}


def _erase_booking(booking, now_iso: str) -> bool:
    """Erase one finished booking under its version; False if it changed meanwhile (then re-read)."""
    from homevisits import lifecycle

    values = {"patient": _erased_patient(booking.patient), "address": _erased_address(booking.address),
              "updated_at": now_iso}
    if booking.for_child:
        values["for_child"] = _erased_patient(booking.for_child)
    if booking.frikort:
        values["frikort"] = {"erased": True}
    return lifecycle.try_erase(booking, values)


def _erase_clinical(booking_id: str) -> None:
    from homevisits.persistence.bookings import delete_clinical_note
    delete_clinical_note(booking_id)  # deleting a missing note succeeds


def erase_outbox(patient_sub: str, booking_ids: set[str]) -> None:
    """Phone numbers and texts of sent messages about the erased bookings."""
    from homevisits.persistence.ops import DONE_STATES, erase_message, outbox_of
    for msg in outbox_of(f"patient:{patient_sub}"):
        if msg.booking_id in booking_ids and msg.status in DONE_STATES and (msg.phone or msg.text != "[erased]"):
            erase_message(msg)


ERASED, ALREADY_ERASED, IN_PROGRESS, GONE, BUSY = "erased", "already_erased", "in_progress", "gone", "busy"


def erase_booking_data(booking: BookingModel, now_iso: str) -> tuple[str, BookingModel]:
    """Erase the personal data of one finished booking and its clinical note (erasure, and the
    retention job). Answers (outcome, the booking as last read): erased, already_erased,
    in_progress (kept: not finished), gone, busy (it kept changing: ask again)."""
    from homevisits.persistence import bookings as store

    for _ in range(5):
        if booking.status not in FINISHED:  # in progress (or a status this code does not know)
            return IN_PROGRESS, booking
        if (booking.patient or {}).get("erased") and (booking.address or {}).get("erased"):
            _erase_clinical(booking.booking_id)
            return ALREADY_ERASED, booking
        if _erase_booking(booking, now_iso):
            _erase_clinical(booking.booking_id)
            return ERASED, booking
        fresh = store.get_booking(booking.booking_id)
        if fresh is None:  # gone meanwhile: nothing left to erase
            return GONE, booking
        booking = fresh
    return BUSY, booking


def erase_patient_data(patient_sub: str, now_iso: str) -> ErasureReceipt:
    """Erase the personal data of every finished booking of `patient_sub`; the receipt says what."""
    from homevisits.persistence import bookings as store
    from homevisits.persistence.ops import save_erasure_receipt

    erased, already, kept = [], [], []
    for booking in store.bookings_of_patient(patient_sub):
        outcome, booking = erase_booking_data(booking, now_iso)
        if outcome == ERASED:
            erased.append(booking.booking_id)
        elif outcome == ALREADY_ERASED:
            already.append(booking.booking_id)
        elif outcome == IN_PROGRESS:
            kept.append(KeptBooking(booking_id=booking.booking_id, status=booking.status,
                                    reason="in progress: cancel it, or erase once it is finished"))
        elif outcome == BUSY:
            kept.append(KeptBooking(booking_id=booking.booking_id, status=booking.status,
                                    reason="changed while erasing: ask again"))
    erase_outbox(patient_sub, set(erased) | set(already))
    receipt = ErasureReceipt(receipt_id=str(uuid.uuid4()), at=now_iso, erased=erased, already_erased=already,
                             kept=kept, retained=RETAINED)
    save_erasure_receipt(patient_sub, now_iso, receipt.receipt_id, receipt.model_dump())
    logger.info("erasure done", extra={"erased": len(erased), "already_erased": len(already), "kept": len(kept)})
    return receipt


@router.post("/me/erasure", summary="Erase my personal data from finished bookings",
             responses={200: {"description": "the erasure receipt",
                              "content": {"application/json": {"model": ErasureReceipt}}}, **ERRORS})
def erasure() -> ErasureReceipt:
    caller = _patient(router)
    return erase_patient_data(caller.sub, utc_iso(default_clock().now()))


def receipts_of(patient_sub: str) -> list[dict]:
    from homevisits.persistence.ops import erasure_receipts_of
    return erasure_receipts_of(patient_sub)


__all__ = ["router", "erase_patient_data", "erase_booking_data", "erase_outbox", "receipts_of", "reader_pseudonym",
           "AccessLog", "ErasureReceipt"]
