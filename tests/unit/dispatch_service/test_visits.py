"""The visit event state machine and how an event is recorded and published."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from homevisits.auth import Caller
from homevisits.errors import Forbidden, InvalidRequest, InvalidTransition, NotFound

from dispatch.visits import EVENTS, may_post_event, record_visit_event, transition_for

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("status, event, to", [
    ("confirmed", "on_the_way", "en_route"), ("en_route", "arrived", "arrived"),
    ("confirmed", "arrived", "arrived"), ("arrived", "completed", "completed"),
    ("en_route", "no_show", "no_show"), ("arrived", "no_show", "no_show")])
def test_allowed_moves(status, event, to):
    tr = transition_for(status, event)
    assert (tr.from_status, tr.to_status, tr.repeat) == (status, to, False)


@pytest.mark.parametrize("status, event", [
    ("confirmed", "completed"), ("en_route", "completed"), ("confirmed", "no_show"), ("held", "on_the_way"),
    ("cancelled", "arrived"), ("completed", "no_show"), ("no_show", "completed"), ("completed", "on_the_way")])
def test_illegal_moves_are_refused(status, event):
    with pytest.raises(InvalidTransition) as e:
        transition_for(status, event)
    assert e.value.status == 409 and e.value.code == "invalid_transition"


def test_repeating_the_event_that_led_here_is_a_repeat():
    for event, (target, _) in EVENTS.items():
        assert transition_for(target, event).repeat


def test_unknown_event_type_is_a_bad_request():
    with pytest.raises(InvalidRequest):
        transition_for("confirmed", "teleported")


def test_who_may_post():
    assert may_post_event(Caller("c1", "clinician", "stockholm"), "stockholm", None, "c1")
    assert may_post_event(Caller("c1", "clinician", "stockholm"), "stockholm", "c1", None)
    assert not may_post_event(Caller("c2", "clinician", "stockholm"), "stockholm", "c1", "c1")
    assert may_post_event(Caller("d", "dispatcher", "stockholm"), "stockholm", None, None)
    assert not may_post_event(Caller("d", "dispatcher", "skane"), "stockholm", None, None)
    assert not may_post_event(Caller("p", "patient"), "stockholm", None, None)


class Booking:
    def __init__(self, status="confirmed"):
        self.booking_id, self.status, self.region, self.date = "b1", status, "stockholm", "2026-12-01"
        self.clinician_id, self.eta = "c1", "2026-12-01T08:30:00Z"


class Plan:
    routes = [{"clinician_id": "c1", "stops": [{"booking_id": "b1"}]}]


class FakeRepo:
    """In-memory stand-in for dispatch.repository's visit-event functions."""

    class TransitionConflict(Exception):
        pass

    def __init__(self, booking):
        self.booking, self.events, self.conflicts = booking, {}, 0

    def get_booking(self, booking_id):
        return self.booking if booking_id == "b1" else None

    def get_plan(self, region, day):
        return Plan()

    def get_event(self, booking_id, event_type):
        return self.events.get(event_type)

    def event_record(self, booking_id, event_type, **fields):
        from types import SimpleNamespace
        return SimpleNamespace(booking_id=booking_id, type=event_type, published=False, **fields)

    def apply_transition(self, booking, from_status, to_status, record, now):
        if self.conflicts:
            self.conflicts -= 1
            raise self.TransitionConflict()
        assert self.booking.status == from_status and record.type not in self.events
        self.booking.status = to_status
        self.events[record.type] = record

    def mark_published(self, record):
        record.published = True


def test_an_event_moves_the_booking_and_is_published_once():
    repo, sent = FakeRepo(Booking()), []
    caller = Caller("c1", "clinician", "stockholm")
    first = record_visit_event("b1", "on_the_way", caller, NOW, repo=repo, publish=sent.append)
    again = record_visit_event("b1", "on_the_way", caller, NOW, repo=repo, publish=sent.append)
    assert (first["status"], first["repeat"], again["repeat"]) == ("en_route", False, True)
    assert len(sent) == 1
    assert sent[0] == {"booking_id": "b1", "type": "on_the_way", "at": "2026-12-01T08:00:00Z", "clinician_id": "c1",
                       "eta": "2026-12-01T08:30:00Z", "event_id": "b1:on_the_way"}


def test_a_late_duplicate_of_an_earlier_event_is_still_a_repeat():
    repo, sent = FakeRepo(Booking()), []
    caller = Caller("c1", "clinician", "stockholm")
    for event in ("on_the_way", "arrived", "on_the_way"):
        record_visit_event("b1", event, caller, NOW, repo=repo, publish=sent.append)
    assert [d["type"] for d in sent] == ["on_the_way", "arrived"] and repo.booking.status == "arrived"


def test_a_repeat_republishes_an_event_whose_publish_failed():
    repo = FakeRepo(Booking())
    caller = Caller("c1", "clinician", "stockholm")

    def broken(_detail):
        raise RuntimeError("bus down")

    with pytest.raises(RuntimeError):
        record_visit_event("b1", "on_the_way", caller, NOW, repo=repo, publish=broken)
    sent = []
    again = record_visit_event("b1", "on_the_way", caller, NOW, repo=repo, publish=sent.append)
    assert again["repeat"] and [d["event_id"] for d in sent] == ["b1:on_the_way"]


def test_a_concurrent_change_is_re_read_and_decided_again():
    repo, sent = FakeRepo(Booking()), []
    repo.conflicts = 1
    out = record_visit_event("b1", "on_the_way", Caller("c1", "clinician", "stockholm"), NOW, repo=repo,
                             publish=sent.append)
    assert out["status"] == "en_route" and len(sent) == 1


def test_another_clinician_is_forbidden_and_unknown_visits_are_not_found():
    repo = FakeRepo(Booking())
    with pytest.raises(Forbidden):
        record_visit_event("b1", "on_the_way", Caller("c2", "clinician", "stockholm"), NOW, repo=repo,
                           publish=print)
    with pytest.raises(NotFound):
        record_visit_event("zz", "on_the_way", Caller("c1", "clinician", "stockholm"), NOW, repo=repo,
                           publish=print)


def test_an_illegal_event_publishes_nothing():
    repo, sent = FakeRepo(Booking()), []
    with pytest.raises(InvalidTransition):
        record_visit_event("b1", "completed", Caller("c1", "clinician", "stockholm"), NOW, repo=repo,
                           publish=sent.append)
    assert sent == [] and repo.booking.status == "confirmed"
