"""The simulated day's report renders a small summary into one self-contained page: routes as SVG,
a timeline per clinician, money in kronor, the SMS outbox and the checks."""
from __future__ import annotations

import re
from html.parser import HTMLParser

from devstack.report import Projection, render_report, sek


def _summary() -> dict:
    return {
        "date": "2026-12-01", "generated_at": "2026-12-01T19:30:00Z", "duration_s": 123,
        "regions": [{
            "id": "stockholm", "name": "Stockholm", "currency": "SEK", "time_zone": "Europe/Stockholm",
            "bookings": 3, "served": 1, "no_show": 1, "cancelled": 1, "driving_s": 5400, "on_time_share": 1.0,
            "money": {"held": 105000, "captured": 35000, "released": 35000, "fees": 40000},
            "clinicians": [
                {"id": "sthlm-doc-1", "role": "doctor", "shift_start": "08:00", "shift_end": "16:00",
                 "start": {"lat": 59.33, "lon": 18.06},
                 "stops": [{"booking_id": "b1", "lat": 59.34, "lon": 18.07, "visit_type": "doctor",
                            "window_start": "2026-12-01T07:00:00Z", "window_end": "2026-12-01T09:00:00Z",
                            "eta": "2026-12-01T07:20:00Z", "service_s": 2400, "status": "completed"},
                           {"booking_id": "b2", "lat": 59.31, "lon": 18.02, "visit_type": "doctor",
                            "window_start": "2026-12-01T09:00:00Z", "window_end": "2026-12-01T11:00:00Z",
                            "eta": "2026-12-01T09:10:00Z", "service_s": 2400, "status": "no_show"}]},
                {"id": "sthlm-nurse-1", "role": "nurse", "shift_start": "10:00", "shift_end": "18:00",
                 "start": {"lat": 59.35, "lon": 18.1}, "stops": []}],
            "unassigned": [{"booking_id": "b9", "lat": 59.40, "lon": 17.95}],
        }],
        "sms": [{"recipient": "patient:p1", "kind": "booking_confirmed", "status": "sent_locally",
                 "text": "Hembesök bokat: läkare kommer <i>2026-12-01</i>"}],
        "checks": [{"name": "money was held and captured in every region", "ok": True}],
    }


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_report_is_self_contained_and_draws_each_route():
    """No external scripts, styles or images; one route path per clinician with stops; timeline rows."""
    html = render_report(_summary())
    p = _Collect()
    p.feed(html)
    assert not [t for t, a in p.tags if t in ("script", "link", "img", "iframe")]
    assert not re.search(r"(src|href)=\"https?://", html)
    routes = [a for t, a in p.tags if t == "path" and a.get("class") == "route"]
    assert len(routes) == 1  # the nurse without stops draws no route
    assert sum(1 for t, a in p.tags if t == "svg" and a.get("class") == "timeline") == 1
    assert sum(1 for t, a in p.tags if t == "rect" and a.get("class") == "visit") == 2
    assert any(a.get("class") == "unassigned" for t, a in p.tags if t == "path")


def test_the_report_shows_money_in_kronor_and_local_times():
    """Amounts are shown in kronor from minor units; ETAs in Stockholm time (UTC+1 in December)."""
    html = render_report(_summary())
    assert "1\u202f050 kr" in html and "350 kr" in html and "400 kr" in html
    assert "08:20" in html  # 07:20Z
    assert "the day worked" in html


def test_outbox_text_is_escaped():
    """Message text is data, never markup."""
    html = render_report(_summary())
    assert "<i>2026-12-01</i>" not in html and "&lt;i&gt;" in html


def test_failed_checks_are_visible():
    s = _summary()
    s["checks"].append({"name": "declined card not confirmed", "ok": False, "detail": "status confirmed"})
    assert "some checks failed" in render_report(s)


def test_projection_keeps_the_aspect_of_the_ground():
    """One km east and one km north are drawn about equally long at Stockholm's latitude."""
    proj = Projection([(59.30, 18.00), (59.40, 18.20)], 500, 500)
    x0, y0 = proj(59.30, 18.00)
    x_east, _ = proj(59.30, 18.00 + 1 / (111.32 * 0.5095))  # ~1 km east
    _, y_north = proj(59.30 + 1 / 111.32, 18.00)  # ~1 km north
    assert abs((x_east - x0) - (y0 - y_north)) < 1.0


def test_sek_formats_minor_units():
    assert sek(35000) == "350 kr" and sek(0) == "0 kr" and sek(12345, "EUR") == "123.45 EUR"


def test_demo_people_have_valid_personnummer_and_live_in_their_region():
    """The made-up patients pass python-stdnum's personnummer check, children are under 18, and each
    address lies in its region's postal codes and box."""
    from datetime import date

    from stdnum.se import personnummer

    from devstack.demo_data import AREAS, PeopleFactory
    from homevisits.regions import load_config

    config = load_config()
    people = PeopleFactory(seed=7)
    day = date(2026, 12, 1)
    for region in AREAS:
        for i in range(10):
            p = people.patient(region, day, child=i % 3 == 0)
            assert personnummer.is_valid(p.adult.personal_number)
            assert config.regions[region].covers(p.postal_code)
            assert config.regions[region].contains(p.address["lat"], p.address["lon"])
            if p.child:
                assert personnummer.is_valid(p.child.personal_number)
                assert 1 <= day.year - p.child.birth.year <= 17
