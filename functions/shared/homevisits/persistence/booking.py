"""Bookings and clinical notes (symptoms, with a TTL); the capacity ledger is persistence.ledger."""
from __future__ import annotations

from pynamodb.attributes import (ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute,
                                 VersionAttribute)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.attributes import TTLAttribute

from homevisits.persistence.base import JSONAttribute, meta


class ByPatientIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-patient"
        projection = AllProjection()

    patient_sub = UnicodeAttribute(hash_key=True)
    starts_at = UnicodeAttribute(range_key=True)


class ByRegionDayIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-region-day"
        projection = AllProjection()

    region_day = UnicodeAttribute(hash_key=True)
    starts_at = UnicodeAttribute(range_key=True)


class BookingModel(Model):
    """One booked visit. Status words: held, confirmed, en_route, arrived, completed, cancelled,
    no_show, expired. `patient` (personal number, name, phone) and `address` are personal data;
    symptoms live in ClinicalNoteModel so they can expire on their own."""

    Meta = meta("BookingsTable")

    booking_id = UnicodeAttribute(hash_key=True)
    patient_sub = UnicodeAttribute()
    region = UnicodeAttribute()
    region_day = UnicodeAttribute()  # "stockholm#2026-12-01" (local date)
    date = UnicodeAttribute()
    window_start = UnicodeAttribute()  # "16:00" local
    starts_at = UnicodeAttribute()  # UTC ISO of the window start
    ends_at = UnicodeAttribute()
    visit_type = UnicodeAttribute()
    status = UnicodeAttribute()
    fee_amount = NumberAttribute()  # minor units
    fee_currency = UnicodeAttribute()
    fee_reason = UnicodeAttribute(null=True)  # standard | under_18 | frikort | high_cost_cap
    patient = JSONAttribute()  # {"personal_number", "name", "phone"}
    for_child = JSONAttribute(null=True)  # {"personal_number", "name"}
    frikort = JSONAttribute(null=True)
    address = JSONAttribute()  # {"street", "city", "postal_code", "door_code", "lat", "lon"}
    hold_expires_at = UnicodeAttribute(null=True)
    cancellation = JSONAttribute(null=True)  # {"at", "reason", "fee_decision", "fee_amount"}
    clinician_id = UnicodeAttribute(null=True)
    eta = UnicodeAttribute(null=True)
    payment_status = UnicodeAttribute(null=True)  # none|pending|authorized|captured|released|failed
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    status_reason = UnicodeAttribute(null=True)  # why the last transition happened (e.g. hold_expired)
    priority = UnicodeAttribute(null=True)  # triage: "urgent" | "normal" (absent: normal)
    # Set when the visit lost its clinician (sick leave, a shorter shift) and fits nowhere else that
    # day: {"at", "reason", "clinician_id", "offered": [{"date", "window_start", "window_end"}]}; its
    # place in the ledger is gone, the patient may reschedule or cancel free of charge.
    unkept = JSONAttribute(null=True)
    version = VersionAttribute()

    by_patient = ByPatientIndex()
    by_region_day = ByRegionDayIndex()


class PersonDayModel(Model):
    """Which open booking a person (the one the visit is for) has on one local day (OpsTable
    `PERSON#{patient_key}` / `DAY#{date}`; the key is the HMAC `patient_key`, no personal data).

    Written in the booking's own transaction with a condition (absent, or still naming the stale
    booking read before), so two concurrent bookings of one person and day cannot both commit. It
    is never deleted on cancel/expiry: a lock naming a booking that is no longer open (or has moved
    to another day) is stale and is taken over; the item expires a few days after its day."""

    Meta = meta("OpsTable")

    pk = UnicodeAttribute(hash_key=True)  # PERSON#{patient_key}
    sk = UnicodeAttribute(range_key=True)  # DAY#{YYYY-MM-DD}
    booking_id = UnicodeAttribute()
    expires_at = TTLAttribute(null=True)


def person_pk(patient_key: str) -> str:
    return f"PERSON#{patient_key}"


def person_day_sk(day: str) -> str:
    return f"DAY#{day}"


class AccountDayModel(Model):
    """Which open bookings one account (the patient signed in: a guardian's bookings of their
    children count too) has made for one local day (OpsTable `ACCOUNT#{patient_sub}` / `DAY#{date}`;
    booking ids only, no personal data).

    Written in the booking's own transaction, conditioned on the version read, so concurrent
    bookings of one account and day cannot together pass the limit. Like the person's day item it
    is never updated on cancel/expiry: a booking it names that is no longer open (or moved to
    another day) is dropped by the next booking that needs its place; TTL removes it after the day."""

    Meta = meta("OpsTable")

    pk = UnicodeAttribute(hash_key=True)  # ACCOUNT#{patient_sub}
    sk = UnicodeAttribute(range_key=True)  # DAY#{YYYY-MM-DD}
    booking_ids = ListAttribute(of=UnicodeAttribute, default=list)
    expires_at = TTLAttribute(null=True)
    version = VersionAttribute()


def account_pk(patient_sub: str) -> str:
    return f"ACCOUNT#{patient_sub}"


class ClinicalNoteModel(Model):
    """Symptoms and other conversation data: readable by the treating clinician, gone after 90 days
    (DynamoDB TTL; reads treat an expired item as gone because TTL deletion lags)."""

    Meta = meta("ClinicalTable")

    booking_id = UnicodeAttribute(hash_key=True)
    patient_sub = UnicodeAttribute()
    symptoms = UnicodeAttribute(null=True)
    expires_at = TTLAttribute()
