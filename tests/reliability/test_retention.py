"""Retention of personal data in bookings (issue 12, defect 11), on the real local stack with its
clock moved past the retention: the daily job pseudonymises finished bookings (name, personal
number, phone, address and door code, symptoms, the texts sent) and keeps anonymised statistics of
the day; a booking whose retention has not run out is untouched."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.stack



def _booking(bid):
    from homevisits.persistence.booking import BookingModel
    return BookingModel.get(bid, consistent_read=True)


def _note(bid):
    from homevisits.persistence.booking import ClinicalNoteModel
    try:
        return ClinicalNoteModel.get(bid, consistent_read=True)
    except ClinicalNoteModel.DoesNotExist:
        return None


def _texts_about(person, bid):
    from homevisits.persistence.ops import outbox_of
    return [m for m in outbox_of(f"patient:{person.sub}") if m.booking_id == bid]


def test_personal_data_past_the_retention_are_pseudonymised_and_statistics_kept(api, h, moved_clock):
    day = api.free_day("skane", 25)
    later = day + timedelta(days=1)
    for d in (day, later):
        h.put_shift(api, "skane", d, f"doc-retention-{d:%m%d}", area=h.SKANE)
    visited, cancelled, recent = h.new_person("ret-a"), h.new_person("ret-b"), h.new_person("ret-c")
    visit = h.book_and_pay(api, visited, day, "10:00", h.SKANE)
    dispatcher = api.token("dispatcher", "disp-retention", "skane")
    for kind in ("arrived", "completed"):
        h.expect(api.post(f"/visits/{visit}/events", dispatcher, json={"type": kind}), 200)
    gone = h.book_and_pay(api, cancelled, day, "12:00", h.SKANE)
    h.expect(api.post(f"/bookings/{gone}/cancel", api.token("patient", cancelled.sub), json={}), 200)
    kept = h.book_and_pay(api, recent, later, "10:00", h.SKANE)
    h.drain(api)
    assert _note(visit) is not None and _texts_about(visited, visit), "the visit's note and SMS exist first"

    # 91 days after the visit's day: its retention (90 full days) ran out; the next day's did not.
    moved_clock(datetime.combine(day + timedelta(days=91), datetime.min.time(), ZoneInfo("Europe/Stockholm"))
                .replace(hour=3))
    result = api.invoke("BookingJobsFunction", {"job": "retention"})
    assert result["erased"] >= 2, result

    for bid, person, status in ((visit, visited, "completed"), (gone, cancelled, "cancelled")):
        b = _booking(bid)
        stored = json.dumps({"patient": b.patient, "address": b.address, "for_child": b.for_child,
                             "frikort": b.frikort}, ensure_ascii=False)
        for secret in person.secrets():
            assert secret not in stored
        assert b.patient["erased"] and b.patient.get("patient_key") and set(b.patient) == {"erased", "patient_key"}
        assert b.address == {"erased": True}
        assert (b.status, b.region, b.date, b.visit_type, int(b.fee_amount)) == (status, "skane", day.isoformat(),
                                                                               "doctor", 35000)
        assert _note(bid) is None
        texts = _texts_about(person, bid)
        assert texts and all(m.text == "[erased]" and m.phone is None for m in texts)
    assert _booking(kept).patient["name"] == recent.name and _booking(kept).address["door_code"] == recent.door_code
    assert _note(kept) is not None

    from homevisits.persistence.ops import day_stats
    stats = day_stats("skane", day.isoformat())
    assert stats.visits == {"doctor": {"completed": 1, "cancelled": 1}}
    assert stats.fees == {"completed": {"SEK": 35000}, "cancelled": {"SEK": 35000}}

    again = api.invoke("BookingJobsFunction", {"job": "retention"})
    assert again["erased"] == 0 and again["already_erased"] >= 2, again
