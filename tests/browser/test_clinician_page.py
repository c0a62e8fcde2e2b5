"""The clinician's phone page in a real browser (Debian's chromium through Playwright, at a phone's
size) against the local stack: today's route in order with what the visit needs, and the event
buttons moving a visit through its states on the real API."""
from __future__ import annotations

import random
import uuid

import pytest

from tests.browser.conftest import OUTPUT

pytestmark = [pytest.mark.stack, pytest.mark.browser]

REGION = "stockholm"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def _phone(browser, url: str, errors: list[str], **context):
    """A page at a phone's size on `url`, its script errors collected in `errors`."""
    page = browser.new_context(**PHONE, **context).new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page


@pytest.fixture(scope="module")
def route_day(api):
    """One nurse on shift some days ahead with three paid visits booked through the API, planned."""
    from devstack.demo_data import PeopleFactory

    day = api.free_day(REGION, 14, 30)
    run = uuid.uuid4().hex[:6]
    dispatcher = api.token("dispatcher", f"disp-{run}", REGION)
    nurse = f"phone-nurse-{run}"
    r = api.put(f"/regions/{REGION}/clinicians/{nurse}/shifts/{day}", dispatcher,
                {"role": "nurse", "start": "08:00", "end": "17:00", "start_location": {"lat": 59.33, "lon": 18.06}})
    assert r.status_code in (200, 201), r.text
    people = PeopleFactory(seed=random.randint(1, 10**6))
    booked = {}
    for window in ("08:00", "12:00", "14:00"):
        p = people.patient(REGION, day, child=False, frikort=False)
        symptoms = f"Hosta och feber ({window})"
        body = {"visit_type": "nurse", "date": day.isoformat(), "window_start": window,
                "postal_code": p.postal_code, "address": {**p.address, "door_code": f"{random.randint(1000, 9999)}"},
                "symptoms": symptoms,
                "patient": {"personal_number": p.adult.personal_number, "name": p.adult.name, "phone": p.adult.phone}}
        token = api.token("patient", p.sub)
        r = api.post("/bookings", token, body, headers={"Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.text
        bid = r.json()["id"]
        r = api.post(f"/bookings/{bid}/payment", token, {"payment_method": "pm_card_visa"})
        assert r.status_code == 200, r.text
        booked[bid] = {"token": token, "door_code": body["address"]["door_code"], "symptoms": symptoms,
                       "phone": p.adult.phone}
    r = api.post(f"/regions/{REGION}/plans/{day}/optimize", dispatcher, {"time_limit_s": 1})
    assert r.status_code == 200, r.text
    return {"day": day, "nurse": nurse, "token": api.token("clinician", nurse, REGION), "booked": booked}


def _status(api, route_day, bid) -> str:
    return api.get(f"/bookings/{bid}", route_day["booked"][bid]["token"]).json()["status"]


def test_the_phone_page_shows_the_route_and_moves_a_visit_through_its_states(api, route_day, browser):
    """At a phone's size the page lists the clinician's stops in the route's order with door code,
    symptoms, a call link and a navigation link; On my way, Arrived and Completed move the first
    visit on the real API, and the page shows the new state."""

    served = api.get("/clinician")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/html"), served.text[:200]
    route = api.get(f"/me/route?date={route_day['day']}", route_day["token"]).json()
    order = [s["booking_id"] for s in route["stops"]]
    assert sorted(order) == sorted(route_day["booked"]), route

    errors: list[str] = []
    page = _phone(browser, f"{api.base}/clinician#token={route_day['token']}&date={route_day['day']}", errors)
    page.wait_for_selector("body[data-rendered='true']", timeout=20000)
    assert "token=" not in page.url  # the token leaves the address bar once read

    cards = page.locator("li.stop")
    assert [cards.nth(i).get_attribute("data-booking") for i in range(cards.count())] == order
    first = order[0]
    card = page.locator(f"li.stop[data-booking='{first}']")
    facts = route_day["booked"][first]
    assert card.locator(".door-code").inner_text() == facts["door_code"]
    assert facts["symptoms"] in card.locator(".symptoms").inner_text()
    assert card.locator("a.call").get_attribute("href") == f"tel:{facts['phone']}"
    assert card.locator("a.nav").get_attribute("href").startswith("geo:")
    # the page is laid out for the phone: nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
    page.screenshot(path=str(OUTPUT / "clinician.png"), full_page=True)

    for button, expected in (("on_the_way", "en_route"), ("arrived", "arrived"), ("completed", "completed")):
        card.locator(f"button[data-event='{button}']").click()
        page.wait_for_selector(f"li.stop[data-booking='{first}'][data-status='{expected}']", timeout=20000)
        assert _status(api, route_day, first) == expected
    assert card.locator("button.event").count() == 0  # a completed visit offers no more events
    assert not errors, errors


def test_the_phone_page_without_a_token_asks_to_sign_in(api, browser):
    """Opened without a token, the page calls nothing and says how to get in."""

    page = _phone(browser, f"{api.base}/clinician", [])
    page.wait_for_function("document.getElementById('status').textContent.includes('sign in')", timeout=10000)
    assert page.locator("li.stop").count() == 0


def test_the_phone_page_shares_the_position_only_when_ticked(api, route_day, browser):
    """With the browser's geolocation allowed, nothing is sent until the clinician ticks "share my
    position"; then the phone's position goes to POST /me/location (stored for today's route)."""

    from homevisits.persistence import live
    where = {"latitude": 59.3401, "longitude": 18.0702}
    context = browser.new_context(**PHONE, geolocation=where, permissions=["geolocation"])
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/me/location") else None)
    page.goto(f"{api.base}/clinician#token={route_day['token']}&date={route_day['day']}")
    page.wait_for_selector("body[data-rendered='true']", timeout=20000)
    page.wait_for_timeout(1000)
    assert sent == []  # not without the clinician's say
    with page.expect_response(lambda r: r.url.endswith("/me/location"), timeout=20000) as answer:
        page.locator("#share").check()
    body = answer.value.json()
    assert answer.value.status == 200 and body["stored"] is True, body
    item = live.get_route(f"{REGION}#{body['date']}", route_day["nurse"])
    assert item is not None and (item.position["lat"], item.position["lon"]) == (where["latitude"], where["longitude"])


def test_the_phone_page_shows_the_nurse_her_video_call_and_the_doctor_his_calendar(api, route_day, browser):
    """A doctor declared on video calls for the day: after the re-plan, the nurse's page shows each
    remaining visit's call with the doctor's name and slot, and the doctor's page lists the same
    calls (patient, nurse, booking) at the same times."""

    day, run = route_day["day"], uuid.uuid4().hex[:6]
    dispatcher = api.token("dispatcher", f"disp-{run}", REGION)
    doctor = f"phone-vdoc-{run}"
    r = api.put(f"/regions/{REGION}/clinicians/{doctor}/shifts/{day}", dispatcher,
                {"role": "doctor", "video_calls": True, "start": "08:00", "end": "20:00", "name": "Dr Vera Holm"})
    assert r.status_code == 200, r.text
    r = api.post(f"/regions/{REGION}/plans/{day}/optimize", dispatcher, {"time_limit_s": 1})
    assert r.status_code == 200, r.text
    route = api.get(f"/me/route?date={day}", route_day["token"]).json()
    with_calls = {s["booking_id"]: s["video_call"] for s in route["stops"] if s.get("video_call")}
    assert with_calls and all(vc["doctor_id"] == doctor for vc in with_calls.values()), route

    errors: list[str] = []
    page = _phone(browser, f"{api.base}/clinician#token={route_day['token']}&date={day}", errors)
    page.wait_for_selector("body[data-rendered='true']", timeout=20000)
    shown = {}
    for bid in with_calls:
        text = page.locator(f"li.stop[data-booking='{bid}'] .vcall").inner_text()
        assert "Dr Vera Holm" in text, text
        shown[bid] = text.split(" with ")[0].replace("Video call ", "")
    page.screenshot(path=str(OUTPUT / "clinician-video-call.png"), full_page=True)

    page = _phone(browser, f"{api.base}/clinician#token={api.token('clinician', doctor, REGION)}&date={day}", errors)
    page.wait_for_selector("body[data-rendered='true']", timeout=20000)
    slots = page.locator("li.callslot")
    assert sorted(slots.nth(i).get_attribute("data-booking") for i in range(slots.count())) == sorted(with_calls)
    for bid, when in shown.items():
        card = page.locator(f"li.callslot[data-booking='{bid}']")
        assert card.locator(".when").inner_text() == when  # the same slot as on the nurse's phone
        assert route_day["nurse"] in card.locator(".meta").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"]
    page.screenshot(path=str(OUTPUT / "clinician-doctor-calls.png"), full_page=True)

    # the dispatcher's console: the doctor's row on the timeline holds the same calls
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{api.base}/console#token={dispatcher}&region={REGION}&date={day}")
    page.wait_for_selector("body[data-rendered='true']", timeout=20000)
    row = page.locator(f"g.clinician-row[data-clinician='{doctor}']")
    assert row.count() == 1 and "video calls" in (row.locator("text").first.text_content() or "")
    assert row.locator("rect.call").count() == len(with_calls)
    assert not errors, errors
