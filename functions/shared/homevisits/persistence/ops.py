"""OpsTable items of notifications (the SMS outbox) and of retention (anonymised day statistics).

| pk                        | sk                 | what                                          |
|---------------------------|--------------------|-----------------------------------------------|
| OUTBOX#{recipient_key}    | MSG#{message_id}   | one message to one recipient (TTL: retention) |
| STATS#{region}            | {date}             | anonymised statistics of a region-day (retention) |

`recipient_key` is `patient:{sub}` or `clinician:{id}`, so a patient's messages are one Query (for
an access-log extract or erasure). `message_id` is derived from the event it answers and the
recipient, and the item is written with a condition that it does not exist yet: an event delivered
twice finds its message already there and sends nothing more.

The access audit (`AUDIT#{patient_sub}` / `{iso}#{reader_sub}`) lives with dispatch, which writes it:
`homevisits.persistence.dispatch.AccessAuditModel`, re-exported here as `AuditModel`.
"""
from __future__ import annotations

from pynamodb.attributes import TTLAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from homevisits.persistence.base import JSONAttribute, condition_failed, meta
from homevisits.persistence.dispatch import AccessAuditModel as AuditModel  # noqa: F401  (one model, one place)

# Outbox states: pending (written, not yet handed to the SMS provider) -> sent | sent_locally,
# or in_app (no phone number: the recipient's app shows it).
PENDING, SENT, SENT_LOCALLY, IN_APP = "pending", "sent", "sent_locally", "in_app"
DONE_STATES = (SENT, SENT_LOCALLY, IN_APP)


def outbox_pk(recipient_key: str) -> str:
    return f"OUTBOX#{recipient_key}"


def outbox_sk(message_id: str) -> str:
    return f"MSG#{message_id}"


class OutboxMessageModel(Model):
    """One notification to one recipient. `text` never holds symptoms or personal numbers; `phone`
    is kept only so a stuck message can be re-sent, and the item expires with the retention."""

    Meta = meta("OpsTable")

    pk = UnicodeAttribute(hash_key=True)  # OUTBOX#{recipient_key}
    sk = UnicodeAttribute(range_key=True)  # MSG#{message_id}
    message_id = UnicodeAttribute()
    recipient_key = UnicodeAttribute()
    channel = UnicodeAttribute()  # sms | app
    phone = UnicodeAttribute(null=True)
    kind = UnicodeAttribute()  # booking_confirmed | on_the_way | visit_completed | no_show | cancelled | eta_changed | route_changed
    language = UnicodeAttribute(default="sv")
    text = UnicodeAttribute()
    booking_id = UnicodeAttribute(null=True)
    region_day = UnicodeAttribute(null=True)
    source_event_id = UnicodeAttribute()
    status = UnicodeAttribute(default=PENDING)
    provider_message_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()  # UTC ISO to the millisecond: two texts of one second stay in order
    sent_at = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
    version = VersionAttribute()

    def put_once(self) -> bool:
        """Write the message if no message with its id exists; False when it already does."""
        try:
            self.save(condition=OutboxMessageModel.pk.does_not_exist())
            return True
        except PutError as e:
            if condition_failed(e):
                return False
            raise


def outbox_of(recipient_key: str) -> list[OutboxMessageModel]:
    """Every message of one recipient (one Query)."""
    return list(OutboxMessageModel.query(outbox_pk(recipient_key)))


def erase_message(msg: OutboxMessageModel) -> None:
    """Drop the phone number and the text of a sent message (erasure)."""
    msg.update(actions=[OutboxMessageModel.phone.remove(), OutboxMessageModel.text.set("[erased]")])


def access_log_of(patient_sub: str, limit: int) -> list[AuditModel]:
    """Who read the patient's data, newest first (one Query)."""
    return list(AuditModel.query(f"AUDIT#{patient_sub}", scan_index_forward=False, limit=limit))


class ErasureReceiptModel(Model):
    """An erasure receipt (OpsTable pk `ERASURE#{patient_sub}`, sk `{iso}#{receipt_id}`): what was
    erased and what was kept, itself free of personal data."""

    Meta = meta("OpsTable")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    receipt = JSONAttribute(default=dict)


def save_erasure_receipt(patient_sub: str, at_iso: str, receipt_id: str, receipt: dict) -> None:
    ErasureReceiptModel(pk=f"ERASURE#{patient_sub}", sk=f"{at_iso}#{receipt_id}", receipt=receipt).save()


def erasure_receipts_of(patient_sub: str) -> list[dict]:
    return [item.receipt for item in ErasureReceiptModel.query(f"ERASURE#{patient_sub}")]


class DayStatsModel(Model):
    """Anonymised statistics of one region-day (pk `STATS#{region}`, sk `{date}`), written by the
    retention job before the day's bookings are pseudonymised: visits per visit type and status, and
    the fees per status (minor units, with the currency). No booking ids, no people."""

    Meta = meta("OpsTable")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    visits = JSONAttribute(default=dict)  # {"doctor": {"completed": 3, "cancelled": 1}}
    fees = JSONAttribute(default=dict)  # {"completed": {"SEK": 105000}}
    computed_at = UnicodeAttribute()


def save_day_stats(region: str, day: str, visits: dict, fees: dict, computed_at: str) -> None:
    """Write (or rewrite: a repeated run computes the same figures) the day's statistics."""
    DayStatsModel(pk=f"STATS#{region}", sk=day, visits=visits, fees=fees, computed_at=computed_at).save()


def day_stats(region: str, day: str) -> DayStatsModel | None:
    try:
        return DayStatsModel.get(f"STATS#{region}", day, consistent_read=True)
    except DayStatsModel.DoesNotExist:
        return None
