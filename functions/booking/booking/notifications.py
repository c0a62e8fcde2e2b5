"""Notifications: SMS to patients (booking confirmed, clinician on the way with ETA, visit done, no-show,
cancellation, a visit we missed with a link to book again, a move to another window, a waived fee, a
changed ETA, a visit we cannot keep with the nearest free windows) and route-change messages to clinicians.

Consumes the NotificationsQueue (EventBridge events in SQS bodies, at least once, any order). Each
event becomes one message per recipient, written to the outbox (OpsTable) under a message id derived
from the event's identity and the recipient, with a put that only succeeds once: an event delivered
twice sends once. Texts never hold symptoms, personal numbers or names of others.

Sending goes through `SmsSender`: SNS Publish on AWS and locally (HOMEVISITS_LOCAL_BUS_URL set), where
the local stack answers it, nothing leaves the machine and the message is marked `sent_locally`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from homevisits import settings
from homevisits.booking_state import BookingStatus as S
from homevisits.clock import Clock, default_clock, parse_utc, utc_iso_ms
from homevisits.observability import get_logger
from homevisits.regions import region_day_key

logger = get_logger("notifications")
settings.get()  # cold start: a bad environment fails here, never in a request
processor = BatchProcessor(event_type=EventType.SQS)

STOCKHOLM = "Europe/Stockholm"
# Clinicians hear about route changes only once the day is near: before that the plan is still
# forming with every booking, and they read the route in the morning anyway.
ROUTE_CHANGE_NOTICE_HOURS = 12


# ---------------------------------------------------------------- the port
class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> str | None:
        """Hand one SMS to the provider; the provider's message id (None if nothing was sent)."""


class SnsSmsSender:
    """AWS SNS direct SMS publish (transactional)."""

    def __init__(self, client=None, sender_id: str = "Hembesok"):
        self._client = client
        self.sender_id = sender_id

    def send(self, phone: str, text: str) -> str | None:
        if self._client is None:
            from homevisits.aws import client
            self._client = client("sns")
        resp = self._client.publish(PhoneNumber=phone, Message=text, MessageAttributes={
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
            "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": self.sender_id}})
        return resp.get("MessageId")


class LocalSmsSender(SnsSmsSender):
    """The local stack's sender: the same SNS Publish, answered by the local stack (nothing leaves
    the machine, so the outbox marks the message `sent_locally`)."""


def default_sender() -> SmsSender:
    return LocalSmsSender() if settings.get().is_local else SnsSmsSender()


# ---------------------------------------------------------------- messages
@dataclass(frozen=True)
class Message:
    recipient_key: str  # patient:{sub} | clinician:{id}
    phone: str | None
    kind: str
    text: str
    language: str
    identity: str  # what makes this message unique (with the recipient)
    booking_id: str | None = None
    region_day: str | None = None

    @property
    def message_id(self) -> str:
        return hashlib.sha256(f"{self.identity}|{self.recipient_key}".encode()).hexdigest()[:32]


VISIT_NAMES = {"sv": {"doctor": "läkare", "nurse": "sjuksköterska"},
               "en": {"doctor": "doctor", "nurse": "nurse"}}


def _lang(booking) -> str:
    patient = booking.patient or {}
    lang = (patient.get("language") or "").lower()[:2]
    if lang in ("sv", "en"):
        return lang
    phone = str(patient.get("phone") or "")
    return "sv" if not phone or phone.startswith("+46") else "en"


def _tz(booking) -> ZoneInfo:
    try:
        from homevisits.regions import load_config
        return load_config().region(booking.region).tz
    except Exception:
        return ZoneInfo(STOCKHOLM)


def _hhmm(iso: str | None, tz: ZoneInfo) -> str | None:
    if not iso:
        return None
    try:
        return parse_utc(iso).astimezone(tz).strftime("%H:%M")
    except ValueError:
        return None


def _window(booking, tz: ZoneInfo) -> tuple[str, str, str]:
    """(date, start, end) of the booking's window in local time."""
    start = parse_utc(booking.starts_at).astimezone(tz)
    end = parse_utc(booking.ends_at).astimezone(tz)
    return start.strftime("%Y-%m-%d"), start.strftime("%H:%M"), end.strftime("%H:%M")


def _money(amount: int | None, currency: str | None, lang: str) -> str:
    amount = int(amount or 0)
    units = amount // 100 if amount % 100 == 0 else amount / 100
    cur = (currency or "SEK").upper()
    if cur in ("SEK", "NOK") and lang == "sv":
        return f"{units} kr"
    return f"{units} {cur}"


def _ref(booking_id: str) -> str:
    """A short reference the patient can quote (the end of the id, without its prefix)."""
    return booking_id.rsplit("_", 1)[-1].replace("-", "")[-6:].upper()


def _patient_message(booking, kind: str, text: str, identity: str) -> Message:
    phone = (booking.patient or {}).get("phone")
    return Message(recipient_key=f"patient:{booking.patient_sub}", phone=phone, kind=kind, text=text,
                   language=_lang(booking), identity=identity, booking_id=booking.booking_id,
                   region_day=booking.region_day)


def booking_confirmed(booking, identity: str) -> Message:
    lang, tz = _lang(booking), _tz(booking)
    day, start, end = _window(booking, tz)
    who = VISIT_NAMES[lang].get(booking.visit_type, booking.visit_type)
    fee = int(booking.fee_amount or 0)
    if lang == "sv":
        money = (f"Avgiften {_money(fee, booking.fee_currency, lang)} är reserverad på ditt kort och dras "
                 "när besöket är klart." if fee else "Besöket är kostnadsfritt för dig.")
        text = (f"Hembesök bokat: {who} kommer {day} mellan {start} och {end}. {money} "
                f"Ha telefonen nära till hands. Ref {_ref(booking.booking_id)}. "
                "Vid livshotande tillstånd ring 112.")
    else:
        money = (f"The fee of {_money(fee, booking.fee_currency, lang)} is reserved on your card and taken "
                 "when the visit is done." if fee else "The visit is free of charge for you.")
        text = (f"Home visit booked: a {who} comes on {day} between {start} and {end}. {money} "
                f"Keep your phone at hand. Ref {_ref(booking.booking_id)}. "
                "In a life-threatening emergency call 112.")
    return _patient_message(booking, "booking_confirmed", text, identity)


def visit_event(booking, detail: dict, identity: str) -> Message | None:
    lang, tz = _lang(booking), _tz(booking)
    kind = detail.get("type")
    who = VISIT_NAMES[lang].get(booking.visit_type, booking.visit_type)
    if kind == "on_the_way":
        eta = _hhmm(detail.get("eta") or booking.eta, tz)
        if lang == "sv":
            when = f" och beräknas vara hos dig ca kl {eta}" if eta else ""
            text = f"Din {who} är på väg{when}. Ha telefonen nära till hands, vi kan behöva ringa dig."
        else:
            when = f" and expects to arrive around {eta}" if eta else ""
            text = f"Your {who} is on the way{when}. Keep your phone at hand, we may call you."
        return _patient_message(booking, "on_the_way", text, identity)
    if kind == "completed":
        fee = int(booking.fee_amount or 0)
        if lang == "sv":
            money = f" Avgiften {_money(fee, booking.fee_currency, lang)} dras från ditt kort." if fee else ""
            text = f"Ditt hembesök är klart. Tack!{money} Vid frågor, ring 1177 för rådgivning."
        else:
            money = f" The fee of {_money(fee, booking.fee_currency, lang)} is taken from your card." if fee else ""
            text = f"Your home visit is done. Thank you!{money} For advice, call 1177."
        return _patient_message(booking, "visit_completed", text, identity)
    if kind == "no_show":
        if lang == "sv":
            text = ("Vi kom men kunde inte träffa dig vid hembesöket. En avgift för uteblivet besök kan tas ut; "
                    "hör av dig om du hade giltigt förhinder.")
        else:
            text = ("We came but could not see you for your home visit. A no-show fee may be charged; "
                    "contact us if you had a valid reason.")
        return _patient_message(booking, "no_show", text, identity)
    return None  # arrived: the patient opens the door, no SMS needed


def booking_cancelled(booking, detail: dict, identity: str) -> Message:
    lang, tz = _lang(booking), _tz(booking)
    day, start, end = _window(booking, tz)
    late = detail.get("fee_decision") == "late" and int(detail.get("fee_amount") or 0) > 0
    fee = _money(detail.get("fee_amount"), detail.get("currency") or booking.fee_currency, lang)
    if lang == "sv":
        money = (f"Avbokningen skedde mindre än 24 timmar före besöket: en avgift på {fee} tas ut."
                 if late else "Ingen avgift tas ut och reservationen på kortet släpps.")
        text = f"Ditt hembesök {day} {start}–{end} är avbokat. {money}"
    else:
        money = (f"It was cancelled less than 24 hours before the visit: a fee of {fee} is charged."
                 if late else "No fee is charged and the reservation on your card is released.")
        text = f"Your home visit on {day} {start}–{end} is cancelled. {money}"
    return _patient_message(booking, "cancelled", text, identity)


DEFAULT_REBOOK_LINK = "hembesok://boka?ref={ref}"


def _rebook_link(booking) -> str:
    """Where the patient books again (the app's booking screen; `booking.rebook_link` in the config,
    `{ref}` the booking's short reference)."""
    try:
        from homevisits.regions import load_config
        template = str(load_config().booking.get("rebook_link") or DEFAULT_REBOOK_LINK)
    except Exception:
        template = DEFAULT_REBOOK_LINK
    return template.replace("{ref}", _ref(booking.booking_id))


def booking_missed(booking, identity: str) -> Message:
    """Nobody came within the window: our fault, no fee, and a way to book again."""
    lang, tz = _lang(booking), _tz(booking)
    day, start, end = _window(booking, tz)
    link = _rebook_link(booking)
    if lang == "sv":
        text = (f"Vi ber om ursäkt: vi kunde inte komma till ditt hembesök {day} {start}–{end}. Ingen avgift "
                f"tas ut och reservationen på kortet släpps. Boka en ny tid: {link} "
                "Vid livshotande tillstånd ring 112, för rådgivning 1177.")
    else:
        text = (f"We are sorry: we could not come to your home visit on {day} {start}–{end}. No fee is charged "
                f"and the reservation on your card is released. Book a new time: {link} "
                "In a life-threatening emergency call 112; for advice call 1177.")
    return _patient_message(booking, "missed", text, identity)


def booking_rescheduled(booking, identity: str) -> Message:
    """The visit moved to another window (the booking as it is now)."""
    lang, tz = _lang(booking), _tz(booking)
    day, start, end = _window(booking, tz)
    who = VISIT_NAMES[lang].get(booking.visit_type, booking.visit_type)
    if lang == "sv":
        text = (f"Ditt hembesök är flyttat: {who} kommer {day} mellan {start} och {end}. "
                f"Ref {_ref(booking.booking_id)}.")
    else:
        text = f"Your home visit has moved: a {who} comes on {day} between {start} and {end}. Ref {_ref(booking.booking_id)}."
    return _patient_message(booking, "rescheduled", text, identity)


def fee_waived(booking, detail: dict, identity: str) -> Message:
    """A late-cancellation or no-show fee was waived (and what was already taken is paid back)."""
    lang = _lang(booking)
    fee = _money(detail.get("fee_amount"), detail.get("currency") or booking.fee_currency, lang)
    refunded = int(detail.get("refunded") or 0)
    if lang == "sv":
        back = (f" {_money(refunded, detail.get('currency') or booking.fee_currency, lang)} betalas tillbaka "
                "till ditt kort." if refunded else "")
        text = f"Avgiften på {fee} för ditt hembesök är efterskänkt.{back} Ref {_ref(booking.booking_id)}."
    else:
        back = (f" {_money(refunded, detail.get('currency') or booking.fee_currency, lang)} is paid back "
                "to your card." if refunded else "")
        text = f"The fee of {fee} for your home visit has been waived.{back} Ref {_ref(booking.booking_id)}."
    return _patient_message(booking, "fee_waived", text, identity)


def eta_changed(booking, eta_iso: str, identity: str, late: bool = False) -> Message:
    """A new ETA; `late`: it falls after the booked window (the patient may rather rebook)."""
    lang, tz = _lang(booking), _tz(booking)
    _day, start, end = _window(booking, tz)
    eta = _hhmm(eta_iso, tz)
    if late and lang == "sv":
        text = (f"Vi är försenade: ditt hembesök beräknas nu till ca kl {eta}, efter din bokade tid {start}–{end}. "
                "Svara inte på detta sms; vill du boka om, gör det i appen.")
    elif late:
        text = (f"We are running late: your home visit is now expected around {eta}, after your booked time "
                f"{start}–{end}. If you would rather rebook, do so in the app.")
    elif lang == "sv":
        text = f"Ny beräknad ankomsttid för ditt hembesök: ca kl {eta} (inom din bokade tid {start}–{end})."
    else:
        text = f"New expected arrival for your home visit: around {eta} (within your booked time {start}–{end})."
    return _patient_message(booking, "eta_late" if late else "eta_changed", text, identity)


def visit_unkept(booking, detail: dict, identity: str) -> Message:
    """The visit lost its clinician and fits nowhere that day: say so, offer the nearest free
    windows (booking.service computed them), and how to move or cancel it free of charge."""
    lang, tz = _lang(booking), _tz(booking)
    day, start, end = _window(booking, tz)
    offered = [f"{o['date']} {o['window_start']}–{o['window_end']}" for o in detail.get("offered") or []][:3]
    if lang == "sv":
        alt = f" Lediga tider: {', '.join(offered)}." if offered else ""
        text = (f"Tyvärr kan vi inte komma till ditt hembesök {day} {start}–{end}: en kliniker har fått förhinder."
                f"{alt} Boka om i appen, eller avboka utan avgift. Ref {_ref(booking.booking_id)}. "
                "Vid livshotande tillstånd ring 112.")
    else:
        alt = f" Free times: {', '.join(offered)}." if offered else ""
        text = (f"Sorry, we cannot make your home visit on {day} {start}–{end}: a clinician is unavailable."
                f"{alt} Reschedule in the app, or cancel free of charge. Ref {_ref(booking.booking_id)}. "
                "In a life-threatening emergency call 112.")
    return _patient_message(booking, "visit_unkept", text, identity)


def route_changed(clinician_id: str, region_day: str, version, identity: str) -> Message:
    day = region_day.split("#", 1)[-1]
    text = f"Din rutt för {day} har ändrats (plan v{version}). Öppna appen för ordning och tider."
    return Message(recipient_key=f"clinician:{clinician_id}", phone=None, kind="route_changed", text=text,
                   language="sv", identity=identity, region_day=region_day)


# ---------------------------------------------------------------- events -> messages
def _booking(booking_id: str | None):
    if not booking_id:
        return None
    from homevisits.persistence.bookings import get_booking
    return get_booking(booking_id, consistent=False)


def _event_key(event: dict, *parts) -> str:
    """What identifies the event's meaning: producers may publish one fact twice with two bus ids, so
    the key is built from the fact (booking, transition, plan version) when the detail names it."""
    named = [str(p) for p in parts if p not in (None, "")]
    return "|".join([event.get("detail-type", "")] + named) if named else f"id|{event.get('id')}"


def _day_is_near(region_day: str, now: datetime) -> bool:
    try:
        region_id, day = region_day.split("#", 1)
        from homevisits.regions import load_config
        region = load_config().region(region_id)
        opening, closing = region.day_bounds_utc(datetime.strptime(day, "%Y-%m-%d").date())
    except Exception:
        return True
    return opening - timedelta(hours=ROUTE_CHANGE_NOTICE_HOURS) <= now <= closing


def messages_for(event: dict, clock: Clock) -> list[Message]:
    """The messages one bus event asks for (empty when it concerns nobody, or the booking is gone)."""
    kind = event.get("detail-type")
    detail = event.get("detail") or {}
    if isinstance(detail, str):
        detail = json.loads(detail)
    if kind == "BookingConfirmed":
        b = _booking(detail.get("booking_id"))
        return [booking_confirmed(b, _event_key(event, detail.get("booking_id")))] if b else []
    if kind == "VisitEvent":
        b = _booking(detail.get("booking_id"))
        if not b:
            return []
        m = visit_event(b, detail, _event_key(event, detail.get("booking_id"), detail.get("type")))
        return [m] if m else []
    if kind == "BookingCancelled":
        b = _booking(detail.get("booking_id"))
        return [booking_cancelled(b, detail, _event_key(event, detail.get("booking_id")))] if b else []
    if kind == "BookingMissed":
        b = _booking(detail.get("booking_id"))
        return [booking_missed(b, _event_key(event, detail.get("booking_id")))] if b else []
    if kind == "BookingRescheduled":
        b = _booking(detail.get("booking_id"))
        # One SMS per move: the key names the window moved to and when.
        key = _event_key(event, detail.get("booking_id"), detail.get("starts_at"), detail.get("at"))
        return [booking_rescheduled(b, key)] if b else []
    if kind == "FeeWaived":
        b = _booking(detail.get("booking_id"))
        return [fee_waived(b, detail, _event_key(event, detail.get("booking_id")))] if b else []
    if kind == "PlanChanged":
        return _plan_changed(event, detail, clock)
    if kind == "EtaChanged":
        return _eta_changes(detail.get("eta_changes") or [], clock.now(), detail.get("region_day"))
    if kind == "VisitUnkept":
        b = _booking(detail.get("booking_id"))
        if not b or not b.unkept or b.status not in (S.HELD, S.CONFIRMED):
            return []  # moved or cancelled since: nothing to offer any more
        return [visit_unkept(b, detail, _event_key(event, detail.get("booking_id"), b.unkept.get("at")))]
    return []


def _plan_changed(event: dict, detail: dict, clock: Clock) -> list[Message]:
    region_day = detail.get("region_day") or region_day_key(detail.get("region"), detail.get("date"))
    version = detail.get("version")
    if not _day_is_near(region_day, clock.now()):
        return []
    out = []
    clinicians = detail.get("clinicians") or []
    for c in clinicians:
        cid = c.get("clinician_id") if isinstance(c, dict) else c
        if cid:
            out.append(route_changed(cid, region_day, version, _event_key(event, region_day, version, "route")))
    return out + _eta_changes(detail.get("eta_changes") or detail.get("changed_etas") or [], clock.now(), region_day)


def _last_decided(region_day: str | None) -> dict:
    """booking id -> what dispatch last decided its patient should hear ({"eta", "late", "seq"}: the
    `told` record of the live route holding the visit: homevisits.persistence.live), for the region-day."""
    if not region_day:
        return {}
    from homevisits.persistence.live import routes_of_day
    out = {}
    for item in routes_of_day(region_day).values():
        told = item.told or {}
        for stop in item.stops or []:
            heard = told.get(stop["booking_id"])
            if heard and heard.get("eta"):
                out[stop["booking_id"]] = heard
    return out


def _superseded(change: dict, newest: dict | None) -> bool:
    """Whether dispatch has decided past `change` since (its record names another decision). A
    change without a number (published before decisions were numbered) is matched by its ETA."""
    if newest is None:
        return False
    if change.get("seq") is not None and newest.get("seq") is not None and int(change["seq"]) != int(newest["seq"]):
        return True
    return newest.get("eta") != change.get("eta")


def _eta_identity(booking_id: str, change: dict, late: bool) -> str:
    """One text per decision: dispatch numbers its decisions per booking (`seq`), so a decision
    delivered twice (on a PlanChanged and an EtaChanged, or retried) is one text, while an ETA told
    again after another one (11:16 -> 11:46 -> 11:16) is a new text. Without a number: one per
    booking and ETA, or per booking for "late"."""
    if change.get("seq") is not None:
        return f"ETA|{booking_id}|#{int(change['seq'])}|{change['eta']}" + ("|late" if late else "")
    return f"ETA|{booking_id}|" + ("late" if late else change["eta"])


def _eta_changes(changes: list, now: datetime, region_day: str | None = None) -> list[Message]:
    """Patients whose ETA moved: [{"booking_id", "eta", "previous_eta", "reason"?, "seq"?}]. With a
    `reason` (moved | late) dispatch's live ETAs already decided the text is due (once per
    threshold) and `seq` numbers the decision; without one the move must exceed the margin. One
    text per decision (`_eta_identity`), whichever event carried it (a plan's PlanChanged or an
    EtaChanged).

    The queue hands events over in any order (a retried batch comes after newer ones): a decision
    dispatch has decided past since (its live route's record of what the patient is to hear names
    another decision) is not texted, a move or a "late" alike, so the last text a patient gets is
    the newest decision."""
    from homevisits.settings import eta_notify_margin_minutes
    out = []
    decided: dict | None = None
    for change in changes:
        eta, before, reason = change.get("eta"), change.get("previous_eta"), change.get("reason")
        if not eta:
            continue
        try:
            if parse_utc(eta) < now:
                continue
        except ValueError:
            continue
        if before and not reason:
            try:
                if abs((parse_utc(eta) - parse_utc(before)).total_seconds()) < eta_notify_margin_minutes() * 60:
                    continue
            except ValueError:
                pass
        if reason in ("moved", "late"):
            decided = _last_decided(region_day) if decided is None else decided
            if _superseded(change, decided.get(change.get("booking_id"))):
                logger.info("superseded ETA change not texted", extra={"region_day": region_day, "reason": reason})
                continue
        b = _booking(change.get("booking_id"))
        if b and b.status in (S.CONFIRMED, S.EN_ROUTE):
            late = reason == "late"
            # a move after a superseded "late" still says the window will be missed
            after_window = late or _after(eta, b.ends_at)
            out.append(eta_changed(b, eta, _eta_identity(b.booking_id, change, late), late=after_window))
    return out


def _after(iso: str, end: str | None) -> bool:
    try:
        return bool(end) and parse_utc(iso) > parse_utc(end)
    except ValueError:
        return False


# ---------------------------------------------------------------- outbox + send
def deliver(message: Message, sender: SmsSender, clock: Clock, retention_days: int = 90) -> str:
    """Write the message to the outbox once and send it; the outcome: sent | sent_locally | in_app |
    duplicate. A message found `pending` (a crash between write and send) is sent again: at least once."""
    from homevisits.persistence import ops

    now = clock.now()
    item = ops.OutboxMessageModel(
        ops.outbox_pk(message.recipient_key), ops.outbox_sk(message.message_id),
        message_id=message.message_id, recipient_key=message.recipient_key,
        channel="sms" if message.phone else "app", phone=message.phone, kind=message.kind,
        language=message.language, text=message.text, booking_id=message.booking_id,
        region_day=message.region_day, source_event_id=message.identity[:200], status=ops.PENDING,
        created_at=utc_iso_ms(now), expires_at=now + timedelta(days=retention_days))
    if not item.put_once():
        item = ops.OutboxMessageModel.get(ops.outbox_pk(message.recipient_key), ops.outbox_sk(message.message_id))
        if item.status in ops.DONE_STATES:
            return "duplicate"
    if not item.phone:
        status, provider_id = ops.IN_APP, None
    else:
        provider_id = sender.send(item.phone, item.text)
        status = ops.SENT_LOCALLY if isinstance(sender, LocalSmsSender) else ops.SENT
    item.update(actions=[ops.OutboxMessageModel.status.set(status),
                         ops.OutboxMessageModel.provider_message_id.set(provider_id),
                         ops.OutboxMessageModel.sent_at.set(utc_iso_ms(clock.now()))])
    return status


_sender: SmsSender | None = None


def handle_event(event: dict, sender: SmsSender | None = None, clock: Clock | None = None) -> list[str]:
    """Turn one bus event into delivered messages; the outcome of each."""
    global _sender
    if sender is None:
        _sender = _sender or default_sender()
        sender = _sender
    clock = clock or default_clock()
    retention = 90
    try:
        from homevisits.regions import load_config
        retention = int(load_config().retention.get("clinical_days", 90))
    except Exception:
        pass
    outcomes = []
    for m in messages_for(event, clock):
        outcomes.append(deliver(m, sender, clock, retention))
    logger.info("notified", extra={"detail_type": event.get("detail-type"), "outcomes": outcomes})
    return outcomes


def record_handler(record: SQSRecord):
    handle_event(json.loads(record.body))


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
