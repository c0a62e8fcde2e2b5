"""The console as a dispatcher's tool (issue 14, item 6), in Chromium against the real local stack:
every action is performed by clicking in the page and then checked through the API — move, pin,
unpin, unassign and move back, a refused move and a stale plan version (the 409's reason shown, the
page still working), sick leave and a late start after a confirm (the unkept visits listed; a
refused shift change's 400 shown), and the lists of
unassigned, unkept and missed visits with their reasons, in Stockholm time whatever the browser's
zone. Screenshots go to test-output/."""
from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import OUTPUT, book_day, settle

pytestmark = [pytest.mark.stack, pytest.mark.browser]

REGION = "skane"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture(scope="module")
def steer_day(api):
    """Two doctors 08–17 and doctor visits at 08, 10, 12 and 14 (the last urgent), planned."""
    run = uuid.uuid4().hex[:6]
    dispatcher = api.token("dispatcher", f"disp-{run}", REGION)
    day = api.free_day(REGION, 15, 30)
    return book_day(api, REGION, day, dispatcher,
                    {f"steer-a-{run}": ("doctor", "08:00", "17:00"), f"steer-b-{run}": ("doctor", "08:00", "17:00")},
                    [("08", "08:00", "doctor", None), ("10", "10:00", "doctor", None),
                     ("12", "12:00", "doctor", None), ("14", "14:00", "doctor", "urgent")])


def _open(browser, api, booked, timezone_id: str = "Europe/Stockholm"):
    """A fresh page on /console with the dispatcher's token in the fragment, rendered."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, timezone_id=timezone_id)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{api.base}/console#token={booked.dispatcher}&region={booked.region}&date={booked.date}")
    page.wait_for_selector("body[data-rendered='true']", timeout=20000)
    return context, page, errors


def _version(page) -> int:
    return int(page.evaluate("document.body.dataset.planVersion"))


def _wait_version_above(page, version: int) -> int:
    page.wait_for_function(f"Number(document.body.dataset.planVersion) > {version}", timeout=30000)
    return _version(page)


def _where(plan: dict, bid: str):
    for r in plan["routes"]:
        ids = [s["booking_id"] for s in r["stops"]]
        if bid in ids:
            return r["clinician_id"], ids.index(bid), r["stops"][ids.index(bid)]
    return None, None, None


def _no_personal_data(page, booked) -> None:
    """The console shows what a dispatcher needs: no personal numbers, names or clinical notes."""
    text = page.content()
    for who in booked.patients.values():
        assert who["personal_number"] not in text and who["personal_number"].replace("-", "") not in text
        assert who["name"] not in text and who["symptoms"] not in text


def test_a_visit_is_moved_to_another_clinician_by_clicking(browser, api, steer_day):
    plan = steer_day.plan(api)
    bid = steer_day.visits["12"]
    was, _, _ = _where(plan, bid)
    target = next(c for c in steer_day.clinicians if c != was)
    context, page, errors = _open(browser, api, steer_day)
    try:
        assert _version(page) == plan["version"]
        page.click(f"tr.stop-row[data-booking='{bid}'] button.move")
        assert page.locator("#move-panel").is_visible()
        page.select_option("#move-clinician", target)
        page.select_option("#move-position", "")  # the best place
        page.click("#move-go")
        after = _wait_version_above(page, plan["version"])

        stored = steer_day.plan(api)
        assert stored["version"] == after == plan["version"] + 1
        assert _where(stored, bid)[0] == target
        assert page.locator(f"tr.stop-row[data-booking='{bid}']").get_attribute("data-clinician") == target
        assert page.locator("#notice").get_attribute("class") == "ok"
        assert page.locator("#plan-version").inner_text() == f"v{after}"
        _no_personal_data(page, steer_day)
        page.screenshot(path=str(OUTPUT / "console-move.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()


def test_a_visit_is_pinned_and_unpinned_by_clicking(browser, api, steer_day):
    plan = steer_day.plan(api)
    bid = steer_day.visits["10"]
    clinician, _, stop = _where(plan, bid)
    assert stop["pinned"] is False
    context, page, errors = _open(browser, api, steer_day)
    try:
        page.click(f"tr.stop-row[data-booking='{bid}'] button.pin")
        pinned_version = _wait_version_above(page, plan["version"])
        stored = steer_day.plan(api)
        assert stored["version"] == pinned_version == plan["version"] + 1
        assert _where(stored, bid)[:2] == _where(plan, bid)[:2]  # pinned in place
        assert _where(stored, bid)[2]["pinned"] is True
        assert {"booking_id": bid, "clinician_id": clinician} in stored["pins"]
        row = page.locator(f"tr.stop-row[data-booking='{bid}']")
        assert row.get_attribute("data-pinned") == "true" and row.locator(".badge.pinned").count() == 1
        assert page.locator(f"#timeline rect.visit.pinned[data-booking='{bid}']").count() == 1
        assert "pinned" in page.locator("#timeline-legend").inner_text()
        page.screenshot(path=str(OUTPUT / "console-pin.png"), full_page=True)

        page.click(f"tr.stop-row[data-booking='{bid}'] button.unpin")
        unpinned_version = _wait_version_above(page, pinned_version)
        stored = steer_day.plan(api)
        assert stored["version"] == unpinned_version
        assert _where(stored, bid)[0] == clinician and _where(stored, bid)[2]["pinned"] is False
        assert all(p["booking_id"] != bid for p in stored["pins"])
        assert page.locator(f"tr.stop-row[data-booking='{bid}']").get_attribute("data-pinned") == "false"
        assert not errors, errors
    finally:
        context.close()


def test_a_visit_is_unassigned_with_its_reason_and_moved_back_by_clicking(browser, api, steer_day):
    plan = steer_day.plan(api)
    bid = steer_day.visits["08"]
    context, page, errors = _open(browser, api, steer_day)
    try:
        page.click(f"tr.stop-row[data-booking='{bid}'] button.unassign")
        out_version = _wait_version_above(page, plan["version"])
        stored = steer_day.plan(api)
        assert stored["version"] == out_version and _where(stored, bid)[0] is None
        assert next(u for u in stored["unassigned"] if u["booking_id"] == bid)["reason"] == "unassigned_by_dispatcher"
        row = page.locator(f"#unassigned tr.unassigned-row[data-booking='{bid}']")
        assert row.locator("td.reason").get_attribute("data-reason") == "unassigned_by_dispatcher"
        assert "taken out of the routes by a dispatcher" in row.inner_text()
        assert page.locator(f"tr.stop-row[data-booking='{bid}']").count() == 0

        target = sorted(steer_day.clinicians)[0]
        row.locator("button.move").click()
        page.select_option("#move-clinician", target)
        page.click("#move-go")
        back_version = _wait_version_above(page, out_version)
        stored = steer_day.plan(api)
        assert stored["version"] == back_version and _where(stored, bid)[0] == target
        assert all(u["booking_id"] != bid for u in stored["unassigned"])
        assert page.locator(f"#unassigned tr[data-booking='{bid}']").count() == 0
        assert not errors, errors
    finally:
        context.close()


def test_a_refused_move_and_a_stale_plan_show_the_reason_and_the_page_keeps_working(browser, api, steer_day):
    plan = steer_day.plan(api)
    early, late = steer_day.visits["08"], steer_day.visits["14"]
    late_with, late_pos, _ = _where(plan, late)
    early_with, _, _ = _where(plan, early)
    position = late_pos + (0 if early_with == late_with else 1)  # right after the 14:00 visit
    context, page, errors = _open(browser, api, steer_day)
    try:
        # Infeasible: the 08:00 visit after the 14:00 one cannot keep its window -> 409 window_missed.
        page.click(f"tr.stop-row[data-booking='{early}'] button.move")
        page.select_option("#move-clinician", late_with)
        page.select_option("#move-position", str(position))
        page.click("#move-go")
        page.wait_for_selector("#notice.error[data-code='window_missed']", timeout=20000)
        assert "window" in page.locator("#notice-text").inner_text()
        assert steer_day.plan(api)["version"] == plan["version"] == _version(page)  # nothing changed
        assert page.locator("tr.stop-row").count() == sum(len(r["stops"]) for r in plan["routes"])
        page.screenshot(path=str(OUTPUT / "console-refused.png"), full_page=True)

        # Stale: the plan changes behind the page's back; the page's next action answers 409.
        r = api.post(f"/regions/{REGION}/plans/{steer_day.date}/optimize", steer_day.dispatcher, {"time_limit_s": 1})
        assert r.status_code == 200, r.text
        newer = steer_day.plan(api)["version"]
        assert newer > plan["version"]
        bid = steer_day.visits["12"]
        page.click("#move-cancel")
        page.click(f"tr.stop-row[data-booking='{bid}'] button.pin")
        page.wait_for_selector("#notice.error[data-code='plan_version_conflict']", timeout=20000)
        assert f"version {newer}" in page.locator("#notice-text").inner_text()
        page.wait_for_function(f"Number(document.body.dataset.planVersion) === {newer}", timeout=20000)
        assert steer_day.plan(api)["version"] == newer  # the stale action changed nothing

        # The page works on: the same click on the reloaded plan pins the visit.
        page.click(f"tr.stop-row[data-booking='{bid}'] button.pin")
        _wait_version_above(page, newer)
        stored = steer_day.plan(api)
        assert stored["version"] == newer + 1 and _where(stored, bid)[2]["pinned"] is True
        assert not errors, errors
    finally:
        context.close()


@pytest.fixture(scope="module")
def sick_day(api):
    """A doctor working 08–20 and a colleague working 08–12; visits at 08, 10, 14 and 18 (only the
    first doctor can keep the afternoon ones)."""
    run = uuid.uuid4().hex[:6]
    dispatcher = api.token("dispatcher", f"disp-{run}", REGION)
    day = api.free_day(REGION, 31, 38)
    return book_day(api, REGION, day, dispatcher,
                    {f"sick-late-{run}": ("doctor", "08:00", "20:00"), f"sick-morning-{run}": ("doctor", "08:00", "12:00")},
                    [("08", "08:00", "doctor", None), ("10", "10:00", "doctor", None),
                     ("14", "14:00", "doctor", None), ("18", "18:00", "doctor", None)])


def test_sick_leave_after_a_confirm_lists_the_unkept_visits(browser, api, sick_day):
    sick = next(c for c in sick_day.clinicians if c.startswith("sick-late-"))
    colleague = next(c for c in sick_day.clinicians if c != sick)
    plan = sick_day.plan(api)
    assert _where(plan, sick_day.visits["14"])[0] == sick and _where(plan, sick_day.visits["18"])[0] == sick
    context, page, errors = _open(browser, api, sick_day)
    try:
        page.click(f"#clinicians tr[data-clinician='{colleague}'] button.sick")  # a change of mind: Cancel
        assert page.locator("#sick-dialog").is_visible()
        page.click("#sick-cancel")
        assert not page.locator("#sick-dialog").is_visible()
        assert len(api.get(f"/regions/{REGION}/shifts/{sick_day.date}", sick_day.dispatcher).json()["shifts"]) == 2

        page.click(f"#clinicians tr[data-clinician='{sick}'] button.sick")
        assert sick in page.locator("#sick-text").inner_text()
        page.click("#sick-confirm")
        page.wait_for_selector("#notice.ok[data-code='sick_leave']", timeout=30000)
        unkept = {sick_day.visits["14"], sick_day.visits["18"]}
        for bid in unkept:  # listed at once, from the answer: reason, who they were with, windows offered
            row = page.locator(f"#unkept tr.unkept-row[data-booking='{bid}']")
            assert row.count() == 1
            assert row.locator("td.reason").get_attribute("data-reason") == "clinician_unavailable"
            assert sick in row.inner_text()
        # ... and the re-planned day is shown as soon as it is stored (the page waits for it)
        page.wait_for_function(f"document.querySelector(\"#clinicians tr[data-clinician='{sick}']\") === null"
                               f" && Number(document.body.dataset.planVersion) > {plan['version']}", timeout=90000)

        shifts = api.get(f"/regions/{REGION}/shifts/{sick_day.date}", sick_day.dispatcher).json()["shifts"]
        assert [s["clinician_id"] for s in shifts] == [colleague]
        stored = sick_day.plan(api)
        assert all(r["clinician_id"] != sick for r in stored["routes"])
        reasons = {u["booking_id"]: u["reason"] for u in stored["unassigned"]}
        assert all(reasons.get(bid) == "clinician_unavailable" for bid in unkept), reasons
        for bid in unkept:
            seen = api.get(f"/bookings/{bid}", sick_day.patients[bid]["token"]).json()
            assert seen["unkept"]["reason"] == "clinician_unavailable"
        # nothing silently dropped: every visit is on a route or listed as unkept, on the page too
        routed = {s["booking_id"] for r in stored["routes"] for s in r["stops"]}
        for bid in sick_day.visits.values():
            assert bid in routed or reasons.get(bid) == "clinician_unavailable"
            on_page = page.locator(f"tr.stop-row[data-booking='{bid}'], tr.unkept-row[data-booking='{bid}']")
            assert on_page.count() == 1, bid
        assert page.locator("#unkept-count").inner_text() == str(sum(r == "clinician_unavailable"
                                                                    for r in reasons.values()))
        _no_personal_data(page, sick_day)
        page.screenshot(path=str(OUTPUT / "console-sick.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()


@pytest.fixture(scope="module")
def late_day(api):
    """A doctor working 08–17 and a colleague working 12–17; visits at 08, 10, 14 and 16 (only the
    first doctor is on shift in the morning)."""
    run = uuid.uuid4().hex[:6]
    dispatcher = api.token("dispatcher", f"disp-{run}", REGION)
    day = api.free_day(REGION, 39, 44)
    return book_day(api, REGION, day, dispatcher,
                    {f"late-{run}": ("doctor", "08:00", "17:00"), f"late-colleague-{run}": ("doctor", "12:00", "17:00")},
                    [("08", "08:00", "doctor", None), ("10", "10:00", "doctor", None),
                     ("14", "14:00", "doctor", None), ("16", "16:00", "doctor", None)])


def _local_hhmm(iso: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(STOCKHOLM).strftime("%H:%M")


def test_a_late_start_after_a_confirm_replans_the_day_and_lists_the_unkept_visits(browser, api, late_day):
    late = next(c for c in late_day.clinicians if not c.startswith("late-colleague-"))
    shifts_path = f"/regions/{REGION}/shifts/{late_day.date}"
    before_shift = next(s for s in api.get(shifts_path, late_day.dispatcher).json()["shifts"] if s["clinician_id"] == late)
    plan = late_day.plan(api)
    early = {late_day.visits["08"], late_day.visits["10"]}
    assert all(_where(plan, bid)[0] == late for bid in early)
    context, page, errors = _open(browser, api, late_day)
    try:
        # A refused change (the end before the start): the API's 400 code and reason in the banner, nothing changed.
        page.click(f"#clinicians tr[data-clinician='{late}'] button.shift")
        assert page.locator("#shift-panel").is_visible()
        assert page.input_value("#shift-start") == "08:00" and page.input_value("#shift-end") == "17:00"
        page.fill("#shift-start", "17:00")
        page.fill("#shift-end", "08:00")
        page.click("#shift-go")
        page.click("#shift-confirm")
        page.wait_for_selector("#notice.error[data-code='invalid_shift']", timeout=20000)
        assert "invalid_shift: a shift ends after it starts" in page.locator("#notice-text").inner_text()
        assert next(s for s in api.get(shifts_path, late_day.dispatcher).json()["shifts"]
                    if s["clinician_id"] == late) == before_shift
        assert late_day.plan(api)["version"] == plan["version"]

        # The late start: 11:00 instead of 08:00, confirmed after reading which visits are at risk.
        page.click(f"#clinicians tr[data-clinician='{late}'] button.shift")
        page.fill("#shift-start", "11:00")
        page.fill("#shift-end", "17:00")
        page.click("#shift-go")
        assert page.locator("#shift-dialog").is_visible()
        text = page.locator("#shift-text").inner_text()
        assert "08:00–17:00 to 11:00–17:00 (a late start)" in text and "08:00–10:00" in text
        assert "may move to others or become unkept" in text
        page.click("#shift-confirm")
        page.wait_for_selector("#notice.ok[data-code='shift_changed']", timeout=30000)
        page.wait_for_function(f"Number(document.body.dataset.planVersion) > {plan['version']}", timeout=90000)
        page.wait_for_function("document.querySelector('#status').textContent.includes('re-planned for 11:00–17:00')",
                               timeout=90000)

        # The shift: new start, every other field as it was.
        after_shift = next(s for s in api.get(shifts_path, late_day.dispatcher).json()["shifts"]
                           if s["clinician_id"] == late)
        assert after_shift == {**before_shift, "start": "11:00"}
        stored = late_day.plan(api)
        assert stored["version"] > plan["version"]
        assert _version(page) == stored["version"]
        route = next(r for r in stored["routes"] if r["clinician_id"] == late)
        assert _local_hhmm(route["shift_start"]) == "11:00"
        # No visit before 11:00 on their route: each is served from 11:00 on, by someone else, or listed unkept.
        assert all(_local_hhmm(s["eta"]) >= "11:00" for s in route["stops"]), route["stops"]
        reasons = {u["booking_id"]: u["reason"] for u in stored["unassigned"]}
        routed = {s["booking_id"]: r["clinician_id"] for r in stored["routes"] for s in r["stops"]}
        bid08 = late_day.visits["08"]  # its window ends at 10:00 and nobody works before 11:00
        assert bid08 not in routed and reasons.get(bid08) == "clinician_unavailable", reasons
        seen = api.get(f"/bookings/{bid08}", late_day.patients[bid08]["token"]).json()
        assert seen["unkept"]["reason"] == "clinician_unavailable" and seen["unkept"]["clinician_id"] == late
        row = page.locator(f"#unkept tr.unkept-row[data-booking='{bid08}']")
        assert row.locator("td.reason").get_attribute("data-reason") == "clinician_unavailable"
        assert late in row.inner_text()
        # Nothing silently dropped: every visit on a route or listed as unkept, on the page too.
        for bid in late_day.visits.values():
            assert bid in routed or reasons.get(bid) == "clinician_unavailable", bid
            on_page = page.locator(f"tr.stop-row[data-booking='{bid}'], tr.unkept-row[data-booking='{bid}']")
            assert on_page.count() == 1, bid
        assert "11:00–17:00" in page.locator(f"#clinicians tr.clinician-item[data-clinician='{late}']").inner_text()
        _no_personal_data(page, late_day)
        page.screenshot(path=str(OUTPUT / "console-late-start.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()


def test_the_lists_show_missed_and_unassigned_visits_with_reasons_in_stockholm_time(browser, api, moved_clock):
    """A visit nobody came to (the missed-visit sweep closed it) is listed as missed, one taken out
    by a dispatcher as unassigned, each with its reason; the browser runs in New York's zone and
    every time shown is still Stockholm's. Runs last: it moves the stack's clock."""
    run = uuid.uuid4().hex[:6]
    dispatcher = api.token("dispatcher", f"disp-{run}", REGION)
    day = api.free_day(REGION, 1, 4)
    doctor = f"lists-doc-{run}"
    booked = book_day(api, REGION, day, dispatcher, {doctor: ("doctor", "08:00", "20:00")},
                      [("missed", "08:00", "doctor", None), ("out", "14:00", "doctor", None),
                       ("kept", "16:00", "doctor", "urgent")])
    plan = booked.plan(api)
    r = api.post(f"/regions/{REGION}/plans/{day}/moves", dispatcher,
                 {"booking_id": booked.visits["out"], "clinician_id": None, "plan_version": plan["version"]})
    assert r.status_code == 200, r.text
    # The 08–10 window ended and the hour's grace passed: the sweep closes the visit as missed.
    moved_clock(datetime.combine(day, datetime.min.time(), STOCKHOLM).replace(hour=11, minute=5))
    assert api.invoke("BookingJobsFunction", {"job": "close_missed_visits"})["missed"] >= 1
    settle(api)
    plan = booked.plan(api)
    if not any(m["booking_id"] == booked.visits["missed"] for m in plan["missed"]):
        assert api.post(f"/regions/{REGION}/plans/{day}/optimize", dispatcher, {"time_limit_s": 1}).status_code == 200
        plan = booked.plan(api)
    assert {m["booking_id"]: m["reason"] for m in plan["missed"]} == {booked.visits["missed"]: "no_arrival_in_window"}

    context, page, errors = _open(browser, api, booked, timezone_id="America/New_York")
    try:
        missed = page.locator(f"#missed tr.missed-row[data-booking='{booked.visits['missed']}']")
        assert missed.locator("td.reason").get_attribute("data-reason") == "no_arrival_in_window"
        assert "nobody arrived within the window" in missed.inner_text() and "08:00–10:00" in missed.inner_text()
        out = page.locator(f"#unassigned tr.unassigned-row[data-booking='{booked.visits['out']}']")
        assert out.locator("td.reason").get_attribute("data-reason") == "unassigned_by_dispatcher"
        assert "14:00–16:00" in out.inner_text()
        assert page.locator("#missed-count").inner_text() == "1"

        # Local times: the stop's ETA as Stockholm reads the API's UTC instant, not New York.
        _, _, stop = _where(plan, booked.visits["kept"])
        local = datetime.fromisoformat(stop["eta"].replace("Z", "+00:00")).astimezone(STOCKHOLM).strftime("%H:%M")
        row = page.locator(f"tr.stop-row[data-booking='{booked.visits['kept']}']")
        assert local in row.locator("td").nth(4).inner_text()
        assert row.locator(".badge.urgent").count() == 1
        computed = datetime.fromisoformat(plan["computed_at"].replace("Z", "+00:00")).astimezone(STOCKHOLM)
        assert computed.strftime("%H:%M") in page.locator("#computed").inner_text()
        assert "Europe/Stockholm" in page.locator("#timeline-legend").inner_text()
        assert "Europe/Stockholm" in page.locator("#tz").inner_text()
        # The clinicians list: the doctor, the shift in local time, the stops.
        item = page.locator(f"#clinicians tr.clinician-item[data-clinician='{doctor}']")
        assert "08:00–20:00" in item.inner_text()
        assert page.locator("#timeline g.clinician-row").count() == 1
        _no_personal_data(page, booked)
        page.screenshot(path=str(OUTPUT / "console-lists.png"), full_page=True)
        assert not errors, errors
    finally:
        context.close()
        settle(api)  # the sweep's releases and re-plans are done before the clock goes back
