"""The simulated day's report renders a small summary into one self-contained page: routes as SVG,
a timeline per clinician, money in kronor, the SMS outbox and the checks, and a section per
dispatcher action (sick leave, move, pin) with what it did, the routes before and after, the SMS it
caused and the unkept visits — all from the summary it is given (fresh ids each run)."""
from __future__ import annotations

import re
from html import escape
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


# ---------------------------------------------------------------- the dispatchers' actions (issue 14)
def _stop(window: str, eta: str, lat: float, lon: float, **kw) -> dict:
    import uuid
    return {"booking_id": f"bk_{uuid.uuid4().hex[:20]}", "visit_type": "doctor", "window_start": window,
            "window_end": f"{int(window[:2]) + 2:02d}:00", "eta_local": eta, "lat": lat, "lon": lon,
            "pinned": False, "priority": "normal", "late": False, **kw}


def _actions() -> list[dict]:
    """A sick leave, a move and a pin as devstack.demo_dispatch records them, with fresh ids."""
    a1, a2, a3 = (_stop("08:00", "08:05", 55.60, 13.00), _stop("12:00", "12:10", 55.61, 13.02),
                  _stop("16:00", "16:03", 55.58, 12.98))
    b1 = _stop("10:00", "10:20", 55.59, 13.01)
    sick = {"id": "sick", "region": "skane", "region_name": "Skåne", "title": "skane-doc-2 calls in sick",
            "at": "2026-12-07T06:00:00+00:00",
            "done": ["DELETE /regions/skane/clinicians/skane-doc-2/shifts/2026-12-07 → 200: 1 of their 3 visits "
                     "cannot be kept"],
            "routes": [{"clinician_id": "skane-doc-2", "role": "doctor", "start": {"lat": 55.6, "lon": 13.0},
                        "before": [a1, a2, a3], "after": []},
                       {"clinician_id": "skane-doc-1", "role": "doctor", "start": {"lat": 55.59, "lon": 13.0},
                        "before": [b1], "after": [a1, b1, a2]}],
            "highlight": [a1["booking_id"], a2["booking_id"], a3["booking_id"]],
            "sms": [{"recipient": "patient:p-77", "kind": "visit_unkept", "at": "2026-12-07T06:00:05Z",
                     "text": "Tyvärr kan vi inte komma <b>16:00</b>. Lediga tider: 2026-12-08 08:00–10:00."},
                    {"recipient": "clinician:skane-doc-1", "kind": "route_changed", "at": "2026-12-07T06:00:05Z",
                     "text": "Din rutt för 2026-12-07 har ändrats (plan v17)."}],
            "unkept": [{"booking_id": a3["booking_id"], "visit_type": "doctor", "window_start": "16:00",
                        "priority": "normal", "reason": "clinician_unavailable",
                        "offered": [{"date": "2026-12-08", "window_start": "08:00", "window_end": "10:00"},
                                    {"date": "2026-12-08", "window_start": "10:00", "window_end": "12:00"}],
                        "rescheduled_to": "2026-12-08 08:00–10:00", "final_status": "confirmed"}],
            "unassigned": [{"booking_id": a3["booking_id"], "visit_type": "doctor", "window_start": "16:00",
                            "window_end": "18:00", "reason": "clinician_unavailable"}],
            "checks": [{"name": "sick leave: nothing silently dropped", "ok": True, "detail": ""}]}
    m1, m2 = _stop("12:00", "12:39", 59.33, 18.06), _stop("14:00", "14:30", 59.35, 18.1)
    move = {"id": "move", "region": "stockholm", "region_name": "Stockholm", "title": "A visit moved",
            "at": "2026-12-07T06:00:00+00:00", "done": ["POST /regions/stockholm/plans/2026-12-07/moves → 200, plan v24"],
            "routes": [{"clinician_id": "sthlm-doc-2", "role": "doctor", "start": {"lat": 59.3, "lon": 18.0},
                        "before": [m1, m2], "after": [m2]},
                       {"clinician_id": "sthlm-doc-3", "role": "doctor", "start": {"lat": 59.4, "lon": 18.1},
                        "before": [], "after": [{**m1, "eta_local": "12:00"}]}],
            "highlight": [m1["booking_id"]],
            "sms": [{"recipient": "patient:p-5", "kind": "eta_changed", "at": "2026-12-07T06:00:03Z",
                     "text": "Ny beräknad ankomsttid för ditt hembesök: ca kl 12:00"}],
            "unkept": [], "unassigned": [],
            "checks": [{"name": "move: the patients whose live ETA moved were texted", "ok": False,
                        "detail": "expected 1, texted 0"}]}
    p1 = _stop("14:00", "14:05", 57.7, 11.97, pinned=True)
    pin = {"id": "pin", "region": "vastra-gotaland", "region_name": "Västra Götaland", "title": "A visit pinned",
           "at": "2026-12-07T06:00:00+00:00", "done": ["POST /regions/vastra-gotaland/plans/2026-12-07/optimize → 200"],
           "routes": [{"clinician_id": "vgr-doc-1", "role": "doctor", "start": {"lat": 57.71, "lon": 11.96},
                       "before": [], "after": [p1]}],
           "highlight": [p1["booking_id"]], "sms": [], "unkept": [], "unassigned": [],
           "checks": [{"name": "pin: the visit stayed with vgr-doc-1", "ok": True, "detail": ""}]}
    return [sick, move, pin]


def _sections(html: str) -> dict[str, str]:
    """id -> the HTML of each dispatcher action's section."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<section class="action" id="action-([a-z]+)">.*?</section>',
                                                          html, re.S)}


def test_each_dispatcher_action_has_a_section_with_what_it_did():
    """A section per action, holding its own region, title, steps and checks (a failed one with its
    detail), and nothing of the other actions'."""
    summary = {**_summary(), "dispatcher_actions": _actions()}
    sections = _sections(render_report(summary))
    assert list(sections) == ["sick", "move", "pin"]
    for a in summary["dispatcher_actions"]:
        html = sections[a["id"]]
        assert a["title"] in html and a["region_name"] in html
        assert all(escape(line) in html for line in a["done"])
        for c in a["checks"]:
            assert escape(c["name"]) in html
        others = [b for b in summary["dispatcher_actions"] if b is not a]
        assert not any(escape(line) in html for b in others for line in b["done"])
    assert "✘ move: the patients whose live ETA moved were texted: expected 1, texted 0" in sections["move"]
    assert 'class=ok' in sections["sick"] and 'class=bad' in sections["move"]


def test_an_actions_section_shows_the_routes_before_and_after_in_order():
    """Each affected clinician's stops before and after, in their order, with windows and ETAs; the
    visits the action is about are marked; the pinned one says so; a route left empty says so."""
    summary = {**_summary(), "dispatcher_actions": _actions()}
    sections = _sections(render_report(summary))
    for a in summary["dispatcher_actions"]:
        html = sections[a["id"]]
        rows = re.findall(r"<tr><td>([^<]+) \([a-z]*\)</td><td>(.*?)</td><td>(.*?)</td></tr>", html, re.S)
        assert [r[0] for r in rows] == [r["clinician_id"] for r in a["routes"]]
        for (_, before, after), r in zip(rows, a["routes"]):
            for cell, stops in ((before, r["before"]), (after, r["after"])):
                if not stops:
                    assert "no stops" in cell
                    continue
                shown = re.findall(r"…([0-9a-f]{6})</small>", cell)
                assert shown == [s["booking_id"][-6:] for s in stops]  # in the route's order
                assert all(f"ETA {s['eta_local']}" in cell for s in stops)
                hot = re.findall(r'<li class=hot>.*?…([0-9a-f]{6})</small>', cell)
                assert hot == [s["booking_id"][-6:] for s in stops if s["booking_id"] in a["highlight"]]
    assert "pinned" in sections["pin"] and "pinned" not in sections["move"]
    # the map: before dashed, after solid, one ring per highlighted stop drawn
    p = _Collect()
    p.feed(sections["sick"])
    assert sum(1 for t, at in p.tags if t == "path" and at.get("class") == "before") == 2
    assert sum(1 for t, at in p.tags if t == "path" and at.get("class") == "after") == 1  # skane-doc-2 has none
    assert sum(1 for t, at in p.tags if t == "circle" and at.get("class") == "hot") == 5  # a1, a2 twice, a3 once


def test_the_sick_leave_section_lists_the_unkept_visits_and_the_sms():
    """The unkept visits with reason, offered windows, the one taken and the end of the day; the
    SMS the action caused, as text (escaped); an action without SMS says none."""
    summary = {**_summary(), "dispatcher_actions": _actions()}
    sections = _sections(render_report(summary))
    sick = sections["sick"]
    u = summary["dispatcher_actions"][0]["unkept"][0]
    row = re.search(r'<table class="unkept">.*?</table>', sick, re.S).group(0)
    assert u["booking_id"][-6:] in row and "clinician_unavailable" in row
    assert "2026-12-08 08:00–10:00, 2026-12-08 10:00–12:00" in row and u["rescheduled_to"] in row
    assert "<b>16:00</b>" not in sick and "&lt;b&gt;16:00&lt;/b&gt;" in sick
    assert "SMS it caused (2)" in sick and "clinician:skane-doc-1" in sick
    assert '<table class="unassigned">' in sick and '<table class="unkept">' not in sections["move"]
    assert "SMS it caused (0)" in sections["pin"] and "<p>none</p>" in sections["pin"]
    assert "ca kl 12:00" in sections["move"]


def test_no_actions_no_sections():
    assert _sections(render_report(_summary())) == {}
