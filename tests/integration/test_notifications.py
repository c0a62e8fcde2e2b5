"""Notifications: one SMS per event and recipient however often the event arrives, never a symptom
or a personal number in the text, route changes to clinicians on the service day."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.stack

SYMPTOMS = "Örsprång och feber sedan tre dagar, hostar blod"
PERSONAL_NUMBER = "19811218-9876"


class RecordingSender:
    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def send(self, phone, text):
        self.sent.append((phone, text))
        return f"msg-{len(self.sent)}"


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def now(self):
        return self.at


def _booking(stack, *, phone="+46701234567", fee=35000, language=None):
    from homevisits.persistence.booking import BookingModel, ClinicalNoteModel
    bid = f"bk-{uuid.uuid4()}"
    sub = f"patient-{uuid.uuid4().hex[:8]}"
    patient = {"personal_number": PERSONAL_NUMBER, "name": "Anna Andersson", "phone": phone}
    if language:
        patient["language"] = language
    BookingModel(booking_id=bid, patient_sub=sub, region="stockholm", region_day="stockholm#2026-12-01",
                 date="2026-12-01", window_start="16:00", starts_at="2026-12-01T15:00:00Z",
                 ends_at="2026-12-01T17:00:00Z", visit_type="doctor", status="confirmed", fee_amount=fee,
                 fee_currency="SEK", patient=patient,
                 address={"street": "Drottninggatan 1", "city": "Stockholm", "door_code": "1234",
                          "lat": 59.3326, "lon": 18.0649},
                 created_at="2026-11-25T00:00:00Z", updated_at="2026-11-25T00:00:00Z").save()
    ClinicalNoteModel(booking_id=bid, patient_sub=sub, symptoms=SYMPTOMS,
                      expires_at=datetime.now(timezone.utc) + timedelta(days=90)).save()
    return bid, sub


def _event(detail_type, detail, source="homevisits.booking"):
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "time": "2026-11-30T10:00:00Z", "detail": detail}


def _outbox(recipient_key):
    from homevisits.persistence.ops import outbox_of
    return outbox_of(recipient_key)


def _assert_clean(text):
    assert "feber" not in text and "Örsprång" not in text and "blod" not in text
    assert PERSONAL_NUMBER not in text and "811218" not in text
    assert "Anna" not in text and "1234" not in text


def test_a_confirmation_delivered_twice_is_sent_once(stack):
    """The same BookingConfirmed arriving twice (SQS at least once) gives one outbox item and one SMS."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    sender = RecordingSender()
    event = _event("BookingConfirmed", {"booking_id": bid, "region": "stockholm", "date": "2026-12-01"})
    clock = Clock(datetime(2026, 11, 30, 10, tzinfo=timezone.utc))
    assert handle_event(event, sender, clock) == ["sent"]
    assert handle_event(event, sender, clock) == ["duplicate"]
    # the producer re-publishing the same fact under a new bus id is still the same message
    assert handle_event({**event, "id": str(uuid.uuid4())}, sender, clock) == ["duplicate"]
    assert len(sender.sent) == 1
    phone, text = sender.sent[0]
    assert phone == "+46701234567"
    assert "16:00" in text and "18:00" in text and "350 kr" in text
    _assert_clean(text)
    items = _outbox(f"patient:{sub}")
    assert [(i.kind, i.status, i.provider_message_id) for i in items] == [("booking_confirmed", "sent", "msg-1")]


def test_on_the_way_carries_the_eta_in_local_time(stack):
    """'On the way' tells the patient the ETA in Stockholm time, without symptoms."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    sender = RecordingSender()
    clock = Clock(datetime(2026, 12, 1, 15, tzinfo=timezone.utc))
    event = _event("VisitEvent", {"booking_id": bid, "type": "on_the_way", "at": "2026-12-01T15:05:00Z",
                                  "clinician_id": "c1", "eta": "2026-12-01T15:40:00Z"}, "homevisits.dispatch")
    handle_event(event, sender, clock)
    handle_event(event, sender, clock)
    assert len(sender.sent) == 1
    assert "16:40" in sender.sent[0][1]
    _assert_clean(sender.sent[0][1])
    # arrived needs no SMS; completed does, once
    handle_event(_event("VisitEvent", {"booking_id": bid, "type": "arrived"}, "homevisits.dispatch"), sender, clock)
    done = _event("VisitEvent", {"booking_id": bid, "type": "completed"}, "homevisits.dispatch")
    handle_event(done, sender, clock)
    handle_event(done, sender, clock)
    assert [i.kind for i in _outbox(f"patient:{sub}")].count("visit_completed") == 1
    assert len(sender.sent) == 2
    for _, text in sender.sent:
        _assert_clean(text)


def test_a_late_cancellation_names_the_fee_and_an_early_one_says_free(stack):
    """Cancellation texts follow the fee decision; English for a non-Swedish phone."""
    from booking.notifications import handle_event
    sender = RecordingSender()
    clock = Clock(datetime(2026, 12, 1, 9, tzinfo=timezone.utc))
    late_id, _ = _booking(stack)
    handle_event(_event("BookingCancelled", {"booking_id": late_id, "fee_decision": "late", "fee_amount": 40000,
                                             "currency": "SEK"}), sender, clock)
    free_id, _ = _booking(stack, phone="+4712345678")
    handle_event(_event("BookingCancelled", {"booking_id": free_id, "fee_decision": "free", "fee_amount": 0,
                                             "currency": "SEK"}), sender, clock)
    late_text, free_text = sender.sent[0][1], sender.sent[1][1]
    assert "400 kr" in late_text and "avbokat" in late_text
    assert "No fee" in free_text
    for t in (late_text, free_text):
        _assert_clean(t)


def test_route_changes_reach_clinicians_only_when_the_day_is_near(stack):
    """PlanChanged the week before is silent; on the service day each changed clinician gets one message,
    and a patient whose ETA moved a lot is told the new time."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    sender = RecordingSender()
    detail = {"region_day": "stockholm#2026-12-01", "version": 7, "clinicians": ["doc-1", "nurse-2"],
              "eta_changes": [{"booking_id": bid, "eta": "2026-12-01T16:30:00Z",
                               "previous_eta": "2026-12-01T15:10:00Z"}]}
    far = Clock(datetime(2026, 11, 24, 9, tzinfo=timezone.utc))
    assert handle_event(_event("PlanChanged", detail, "homevisits.dispatch"), sender, far) == []
    near = Clock(datetime(2026, 12, 1, 7, 30, tzinfo=timezone.utc))
    event = _event("PlanChanged", detail, "homevisits.dispatch")
    out = handle_event(event, sender, near)
    assert sorted(out) == ["in_app", "in_app", "sent"]
    assert handle_event(event, sender, near) == ["duplicate"] * 3
    assert [i.kind for i in _outbox("clinician:doc-1")] == ["route_changed"]
    assert "17:30" in sender.sent[0][1]


def test_a_repeated_event_through_the_queue_sends_once(api, stack):
    """End to end on the local stack: the bus delivers a BookingConfirmed twice to the notifications
    function (SQS shape, Powertools batch); one outbox item, marked sent_locally, clean text."""
    bid, sub = _booking(stack)
    entry = {"Source": "homevisits.payments", "DetailType": "BookingConfirmed",
             "Detail": json.dumps({"booking_id": bid, "region": "stockholm", "date": "2026-12-01"})}
    for _ in range(2):
        r = api.http.post(api.base + "/_local/events", json={"Entries": [entry]}, timeout=10)
        assert r.status_code == 200 and r.json()["Matched"] >= 1
    drained = api.drain(60)
    assert "NotificationsQueue" not in drained["dead_letters"]
    items = _outbox(f"patient:{sub}")
    assert len(items) == 1
    assert items[0].status == "sent_locally" and items[0].channel == "sms"
    _assert_clean(items[0].text)


def test_a_live_eta_change_is_texted_once_whichever_event_carries_it(stack):
    """dispatch decided (reason given): the same new ETA on an EtaChanged and on a PlanChanged is one
    text; 'the window will be missed' is its own text, once, saying the ETA is after the window."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    sender = RecordingSender()
    near = Clock(datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc))
    moved = {"booking_id": bid, "eta": "2026-12-01T15:50:00Z", "previous_eta": "2026-12-01T15:30:00Z",
             "reason": "moved"}
    assert handle_event(_event("EtaChanged", {"region_day": "stockholm#2026-12-01", "eta_changes": [moved]},
                               "homevisits.dispatch"), sender, near) == ["sent"]
    plan = {"region_day": "stockholm#2026-12-01", "version": 9, "clinicians": [], "eta_changes": [moved]}
    assert handle_event(_event("PlanChanged", plan, "homevisits.dispatch"), sender, near) == ["duplicate"]
    late = {"booking_id": bid, "eta": "2026-12-01T17:05:00Z", "previous_eta": "2026-12-01T16:55:00Z", "reason": "late"}
    for _ in range(2):
        handle_event(_event("EtaChanged", {"region_day": "stockholm#2026-12-01", "eta_changes": [late]},
                            "homevisits.dispatch"), sender, near)
    assert [i.kind for i in _outbox(f"patient:{sub}")].count("eta_late") == 1
    assert "16:50" in sender.sent[0][1] and "18:05" in sender.sent[1][1] and "16:00–18:00" in sender.sent[1][1]
    assert len(sender.sent) == 2
    for _, text in sender.sent:
        _assert_clean(text)


def test_an_eta_already_past_when_handled_is_not_texted(stack):
    """A backed-up queue hands over an ETA change after that time has passed: no text with a past time."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    sender = RecordingSender()
    change = {"booking_id": bid, "eta": "2026-12-01T15:20:00Z", "previous_eta": "2026-12-01T15:00:00Z",
              "reason": "moved"}
    event = _event("EtaChanged", {"region_day": "stockholm#2026-12-01", "eta_changes": [change]}, "homevisits.dispatch")
    assert handle_event(event, sender, Clock(datetime(2026, 12, 1, 15, 25, tzinfo=timezone.utc))) == []
    assert sender.sent == []


def _own_region_day() -> str:
    """A region-day no other test plans (the dispatch tests seed days up to 2036)."""
    from datetime import date
    return f"stockholm#{date(2041, 1, 1) + timedelta(days=uuid.uuid4().int % 3000)}"


def _live_route(region_day: str, bid: str, told_eta: str, seq: int | None = None, late: bool = False):
    """Dispatch's live route holding `bid`, its record saying the patient is to hear `told_eta`
    (decision number `seq`)."""
    from homevisits.persistence import live
    item = live.get_route(region_day, "doc-told") or live.new_route(region_day, "doc-told", datetime.now(timezone.utc) + timedelta(days=1))
    item.stops = [{"booking_id": bid, "lat": 59.33, "lon": 18.06, "window_start_at": "2026-12-01T15:00:00Z",
                   "window_end_at": "2026-12-01T17:00:00Z", "service_s": 2400}]
    item.told = {bid: {"eta": told_eta, "late": late, **({"seq": seq} if seq is not None else {})}}
    assert live.save_route(item)


def test_an_eta_change_superseded_before_it_is_handled_is_not_texted(stack):
    """The queue hands events over in any order (a retried batch comes after newer ones): a move
    that dispatch has since decided past is not texted after the newer one, so the last text the
    patient gets says the newest ETA (the flaky live-ETA test saw 11:16 texted after 11:46)."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    region_day = _own_region_day()
    sender = RecordingSender()
    near = Clock(datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc))
    older = {"booking_id": bid, "eta": "2026-12-01T15:50:00Z", "previous_eta": "2026-12-01T15:30:00Z", "reason": "moved"}
    newer = {"booking_id": bid, "eta": "2026-12-01T16:20:00Z", "previous_eta": "2026-12-01T15:50:00Z", "reason": "moved"}
    _live_route(region_day, bid, newer["eta"])  # both decided; the newer one last
    for change in (newer, older):  # handed over newest first
        handle_event(_event("EtaChanged", {"region_day": region_day, "eta_changes": [change]}, "homevisits.dispatch"),
                     sender, near)
    assert len(sender.sent) == 1 and "17:20" in sender.sent[0][1], sender.sent
    assert [m.kind for m in _outbox(f"patient:{sub}")] == ["eta_changed"]


def test_texts_sent_in_one_second_keep_their_order_in_the_outbox(stack):
    """Two ETA texts of one second (an event's and the next event's, the queue being quick): the
    outbox says which went last, to the millisecond, as the patient's phone does."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    region_day = _own_region_day()
    sender = RecordingSender()
    first = {"booking_id": bid, "eta": "2026-12-01T16:20:00Z", "previous_eta": "2026-12-01T15:50:00Z", "reason": "moved"}
    then = {"booking_id": bid, "eta": "2026-12-01T15:50:00Z", "previous_eta": "2026-12-01T16:20:00Z", "reason": "moved"}
    for change, at in ((first, 100_000), (then, 900_000)):  # one second, 0.1 s and 0.9 s into it
        _live_route(region_day, bid, change["eta"])
        handle_event(_event("EtaChanged", {"region_day": region_day, "eta_changes": [change]}, "homevisits.dispatch"),
                     sender, Clock(datetime(2026, 12, 1, 15, 30, 0, at, tzinfo=timezone.utc)))
    texts = sorted((m for m in _outbox(f"patient:{sub}") if m.kind == "eta_changed"), key=lambda m: m.created_at)
    assert [m.text.split("ca kl ")[1][:5] for m in texts] == ["17:20", "16:50"], [(m.created_at, m.text) for m in texts]
    assert texts[0].created_at < texts[1].created_at


def test_an_eta_told_again_after_another_is_texted_again_and_each_decision_once(stack):
    """ETA 16:50 -> 17:20 -> 16:50 (local): three decisions, three texts, the last one 16:50 (the
    second 16:50 was dropped as a duplicate of the first when texts were keyed by booking and ETA).
    Each decision delivered twice (retried, and published again under another bus id) is still one text."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    region_day = _own_region_day()
    sender = RecordingSender()
    near = Clock(datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc))
    a, b = "2026-12-01T15:50:00Z", "2026-12-01T16:20:00Z"
    decisions = [{"booking_id": bid, "eta": b, "previous_eta": a, "reason": "moved", "seq": 1},
                 {"booking_id": bid, "eta": a, "previous_eta": b, "reason": "moved", "seq": 2},
                 {"booking_id": bid, "eta": b, "previous_eta": a, "reason": "moved", "seq": 3}]
    for n, change in enumerate(decisions, 1):
        _live_route(region_day, bid, change["eta"], seq=change["seq"])
        event = _event("EtaChanged", {"region_day": region_day, "eta_changes": [change]}, "homevisits.dispatch")
        assert handle_event(event, sender, near) == ["sent"]
        assert handle_event(event, sender, near) == ["duplicate"]  # the same event retried
        again = _event("EtaChanged", {"region_day": region_day, "eta_changes": [change]}, "homevisits.dispatch")
        assert handle_event(again, sender, near) == ["duplicate"]  # published twice (another bus id)
    assert [t.split("ca kl ")[1][:5] for _, t in sender.sent] == ["17:20", "16:50", "17:20"], sender.sent
    assert [m.kind for m in _outbox(f"patient:{sub}")] == ["eta_changed"] * 3


def test_a_decision_superseded_by_one_with_the_same_eta_is_sent_once(stack):
    """A -> B -> A, the middle decision handed over last: the record names decision 3 (ETA A), so
    decision 2 (B) is stale and never texted, and decision 1 (also A) is stale too: its ETA is
    the one the patient is to hear, but the patient heard B in between (dispatch's decision 3 is
    the one to text)."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    region_day = _own_region_day()
    sender = RecordingSender()
    near = Clock(datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc))
    a, b = "2026-12-01T15:50:00Z", "2026-12-01T16:20:00Z"
    first = {"booking_id": bid, "eta": a, "previous_eta": "2026-12-01T15:30:00Z", "reason": "moved", "seq": 1}
    middle = {"booking_id": bid, "eta": b, "previous_eta": a, "reason": "moved", "seq": 2}
    last = {"booking_id": bid, "eta": a, "previous_eta": b, "reason": "moved", "seq": 3}
    _live_route(region_day, bid, a, seq=3)
    for change in (last, first, middle):
        handle_event(_event("EtaChanged", {"region_day": region_day, "eta_changes": [change]}, "homevisits.dispatch"),
                     sender, near)
    assert [t.split("ca kl ")[1][:5] for _, t in sender.sent] == ["16:50"], sender.sent


def test_a_late_text_superseded_before_it_is_handled_is_not_sent(stack):
    """'The window will be missed' decided, then a newer decision (the clinician caught up, or
    later still): the delayed late text is stale and not sent; the newer one is, and one past the
    window still says the window will be missed."""
    from booking.notifications import handle_event
    bid, sub = _booking(stack)
    region_day = _own_region_day()
    sender = RecordingSender()
    near = Clock(datetime(2026, 12, 1, 15, 30, tzinfo=timezone.utc))
    late = {"booking_id": bid, "eta": "2026-12-01T17:05:00Z", "previous_eta": "2026-12-01T16:40:00Z",
            "reason": "late", "seq": 4}
    later = {"booking_id": bid, "eta": "2026-12-01T17:35:00Z", "previous_eta": "2026-12-01T17:05:00Z",
             "reason": "moved", "seq": 5}
    _live_route(region_day, bid, later["eta"], seq=5, late=True)
    for change in (later, late):  # the late text handed over after the newer decision
        handle_event(_event("EtaChanged", {"region_day": region_day, "eta_changes": [change]}, "homevisits.dispatch"),
                     sender, near)
    assert len(sender.sent) == 1, sender.sent
    assert "18:35" in sender.sent[0][1] and "16:00–18:00" in sender.sent[0][1] and "försenade" in sender.sent[0][1]
    assert [m.kind for m in _outbox(f"patient:{sub}")] == ["eta_late"]
