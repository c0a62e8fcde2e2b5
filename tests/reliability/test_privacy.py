"""Privacy: nothing personal in logs, staff reads audited and extractable by the patient, erasure of
finished bookings that keeps the financial records, and symptoms gone after their retention."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest


# ---------------------------------------------------------------- (a) logs
def _small_day(api, h, world) -> list:
    """A small day through the HTTP API and the queues; returns the people whose data went through."""
    people = [world.owner, world.other]
    p1, p2, p3 = h.new_person("log"), h.new_person("log"), h.new_person("log")
    people += [p1, p2, p3]
    day = world.day
    r = h.book(api, p1, day, "18:00")
    if r.status_code == 201:
        h.pay(api, p1, r.json()["id"])
        api.post(f"/bookings/{r.json()['id']}/cancel", api.token("patient", p1.sub), {"reason": p1.symptoms})
    # invalid requests carrying personal data: a bad personal number, a declined card, a bad body
    bad = h.booking_body(p2, day, "12:00")
    bad["patient"]["personal_number"] = p2.personal_number[:-1] + str((int(p2.personal_number[-1]) + 1) % 10)
    api.post("/bookings", api.token("patient", p2.sub), bad, headers={"Idempotency-Key": uuid.uuid4().hex})
    bad = h.booking_body(p3, day, "12:00")
    bad["patient"]["phone"] = {"nested": p3.phone}
    bad["visit_type"] = p3.name
    api.post("/bookings", api.token("patient", p3.sub), bad, headers={"Idempotency-Key": uuid.uuid4().hex})
    r = h.book(api, p3, day, "16:00")
    if r.status_code == 201:
        h.pay(api, p3, r.json()["id"], h.CARD_DECLINED)
    if not world.error:
        tok = api.token("clinician", world.clinician, "stockholm")
        api.get(f"/me/route?date={day}", tok)
        for ev in ("on_the_way", "arrived", "completed"):
            api.post(f"/visits/{world.bookings['main']}/events", tok, {"type": ev})
        api.get(f"/regions/stockholm/plans/{day}", api.token("dispatcher", "disp-stockholm", "stockholm"))
        api.get(f"/bookings/{world.bookings['main']}", api.token("patient", world.owner.sub))
    h.drain(api)
    api.invoke("ReconcileFunction", {})
    return people


def test_no_personal_data_in_any_log_line_of_a_small_day(api, stack, h, world):
    """Neither the gateway's log nor the handlers' log lines hold a personal number, name, phone,
    address or symptom text of anyone who booked that day."""
    log_path = stack.state / "gateway.log"
    before = log_path.stat().st_size if log_path.exists() else 0
    people = _small_day(api, h, world)
    text = log_path.read_bytes()[before:].decode("utf-8", errors="replace") if log_path.exists() else ""
    assert '"service":' in text, "no handler log line reached gateway.log: the capture is not working"
    leaks = [(p.sub, s) for p in people for s in p.secrets() if s and s in text]
    assert not leaks, f"personal data in gateway.log: {leaks[:10]}"


def test_no_personal_data_in_in_process_handler_logs(stack, h, world, capfd, caplog):
    """Handlers run in this process (booking with bad input, payment with a declined card) log nothing personal."""
    import logging
    # INFO, as the template configures. (At DEBUG, botocore itself logs every DynamoDB request body,
    # personal data included: DEBUG must never be switched on for botocore in production.)
    caplog.set_level(logging.INFO)
    p = h.new_person("inproc")
    c = h.claims("patient", p.sub)
    body = h.booking_body(p, world.day, "14:00")
    h.call_inprocess("POST", "/bookings", c, body, {"Idempotency-Key": uuid.uuid4().hex})
    body["patient"]["personal_number"] = "19" + p.personal_number[2:-1] + "0"
    h.call_inprocess("POST", "/bookings", c, body, {"Idempotency-Key": uuid.uuid4().hex})
    body["symptoms"] = {"text": p.symptoms}
    h.call_inprocess("POST", "/bookings", c, body, {"Idempotency-Key": uuid.uuid4().hex})
    h.call_inprocess("POST", "/bookings/not-a-booking/payment", c, {"payment_method": p.name})
    out, err = capfd.readouterr()
    text = out + err + "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    leaks = [s for s in p.secrets() if s in text]
    assert not leaks, f"personal data in in-process logs: {leaks}"


# ---------------------------------------------------------------- (b) audit and access log
def _privacy_app():
    from booking import privacy
    from homevisits.http import make_resolver
    app = make_resolver("privacy-test")
    app.include_router(privacy.router)
    return app


def _call_router(app, method: str, path: str, claims: dict | None):
    from devstack import template as tpl
    from devstack.gateway import http_event
    from devstack.lambda_runtime import LambdaContext
    route = tpl.Route(method, path, "BookingFunction", "booking.app.lambda_handler", True)
    event = http_event(route, method, path, "", {"content-type": "application/json"}, b"", {}, claims, "127.0.0.1")
    result = app.resolve(event, LambdaContext("BookingFunction"))
    return result["statusCode"], json.loads(result["body"])


def test_the_access_log_shows_staff_reads_by_role_and_pseudonym_newest_first(stack):
    """A patient's extract lists their own audit entries only, newest first, without staff ids."""
    from homevisits.persistence.dispatch import AccessAuditModel
    me, other = f"pat-{uuid.uuid4().hex[:8]}", f"pat-{uuid.uuid4().hex[:8]}"
    for i, (patient, reader, role) in enumerate([(me, "doc-secret-id-1", "clinician"),
                                                 (me, "disp-secret-id-2", "dispatcher"),
                                                 (other, "doc-secret-id-1", "clinician")]):
        at = f"2026-12-01T0{i}:00:00Z"
        AccessAuditModel(f"AUDIT#{patient}", f"{at}#{reader}", reader_sub=reader, reader_role=role,
                         booking_id=f"bk-{i}", what="route_stop", at=at).save()
    app = _privacy_app()
    status, body = _call_router(app, "GET", "/me/access-log", {"sub": me, "role": "patient"})
    assert status == 200, body
    assert [e["booking_id"] for e in body["entries"]] == ["bk-1", "bk-0"]
    assert [e["reader_role"] for e in body["entries"]] == ["dispatcher", "clinician"]
    assert "secret-id" not in json.dumps(body)
    for role in ("clinician", "dispatcher"):
        status, body = _call_router(app, "GET", "/me/access-log", {"sub": "x", "role": role, "region": "stockholm"})
        assert status == 403 and body["error"]["code"] == "forbidden"


def test_a_clinicians_read_of_the_route_is_in_the_patients_access_log(api, world):
    """After the treating clinician reads /me/route, the patient's GET /me/access-log lists it."""
    world.need()
    r = api.get(f"/me/route?date={world.day}", api.token("clinician", world.clinician, "stockholm"))
    assert r.status_code == 200, r.text
    r = api.get("/me/access-log", api.token("patient", world.owner.sub))
    assert r.status_code == 200, f"GET /me/access-log -> {r.status_code} {r.text[:200]} " \
                                 "(is booking.privacy.router included in booking/app.py?)"
    entries = r.json()["entries"]
    mine = [e for e in entries if e["booking_id"] in world.bookings.values() and e["reader_role"] == "clinician"]
    assert mine, f"no clinician read in the access log: {entries}"
    assert world.clinician not in r.text, "the reader's identity is shown, not a pseudonym"
    other = api.get("/me/access-log", api.token("patient", world.other.sub))
    assert other.status_code == 200 and not any(e["booking_id"] in world.bookings.values()
                                                for e in other.json()["entries"])


# ---------------------------------------------------------------- (c) erasure
def _seed_booking(person, status: str, booking_id: str | None = None):
    from homevisits.persistence.booking import BookingModel, ClinicalNoteModel
    bid = booking_id or f"erase-{uuid.uuid4().hex[:10]}"
    now = "2026-11-20T10:00:00Z"
    BookingModel(booking_id=bid, patient_sub=person.sub, region="stockholm", region_day="stockholm#2026-11-21",
                 date="2026-11-21", window_start="10:00", starts_at=f"2026-11-21T09:00:{len(bid) % 60:02d}Z",
                 ends_at="2026-11-21T11:00:00Z", visit_type="doctor", status=status, fee_amount=35000,
                 fee_currency="SEK", fee_reason="standard",
                 patient={"personal_number": person.personal_number, "name": person.name, "phone": person.phone},
                 for_child={"personal_number": "20200101-0008", "name": person.name + " Jr"},
                 frikort={"number": "FK-" + person.phone, "valid_until": "2027-01-01", "region": "stockholm"},
                 address={"street": person.street, "city": "Stockholm", "postal_code": "11122",
                          "door_code": person.door_code, "lat": 59.33, "lon": 18.06},
                 created_at=now, updated_at=now).save()
    ClinicalNoteModel(booking_id=bid, patient_sub=person.sub, symptoms=person.symptoms,
                      expires_at=datetime.now(timezone.utc) + timedelta(days=90)).save()
    return bid


def test_erasure_removes_personal_data_of_finished_bookings_and_keeps_the_books(stack, h):
    """Finished bookings lose names, phones, addresses, symptoms and personal numbers (replaced by the
    patient key); payment records and fee-ledger entries stay; a booking in progress is kept; a receipt
    is written; a second erasure is harmless."""
    from booking.privacy import receipts_of
    from homevisits.identity import patient_key
    from homevisits.persistence.booking import BookingModel, ClinicalNoteModel
    from homevisits.persistence.payments import FeeLedgerModel, PaymentModel, booking_pk, fees_pk
    p = h.new_person("erase")
    done, cancelled, live = (_seed_booking(p, "completed"), _seed_booking(p, "cancelled"),
                             _seed_booking(p, "confirmed"))
    key = patient_key(p.personal_number)
    PaymentModel(booking_pk(done), booking_id=done, patient_sub=p.sub, patient_key=key, region="stockholm",
                 status="captured", amount=35000, currency="SEK", amount_captured=35000,
                 created_at="2026-11-20T10:00:00Z", updated_at="2026-11-21T10:00:00Z").save()
    FeeLedgerModel(fees_pk(key), f"2026-11-21T10:00:00Z#{done}", booking_id=done, amount=35000,
                   currency="SEK").save()

    status, receipt = _call_router(_privacy_app(), "POST", "/me/erasure", {"sub": p.sub, "role": "patient"})
    assert status == 200, receipt
    assert set(receipt["erased"]) == {done, cancelled}
    assert [k["booking_id"] for k in receipt["kept"]] == [live]
    for bid, was in ((done, "completed"), (cancelled, "cancelled")):
        item = BookingModel.get(bid, consistent_read=True)
        raw = json.dumps(item.attribute_values, default=str)
        leaks = [s for s in p.secrets() if s in raw]
        assert not leaks, f"{bid} still holds {leaks}"
        assert item.patient == {"erased": True, "patient_key": key}
        assert (item.fee_amount, item.fee_currency, item.date, item.status) == (35000, "SEK", "2026-11-21", was)
        assert ClinicalNoteModel.count(bid) == 0
    assert BookingModel.get(live).patient["name"] == p.name
    assert ClinicalNoteModel.get(live).symptoms == p.symptoms
    assert PaymentModel.get(booking_pk(done), "PAYMENT").amount_captured == 35000
    assert [e.amount for e in FeeLedgerModel.query(fees_pk(key))] == [35000]
    assert json.dumps(receipt).count(p.name) == 0
    status, again = _call_router(_privacy_app(), "POST", "/me/erasure", {"sub": p.sub, "role": "patient"})
    assert status == 200 and set(again["already_erased"]) == {done, cancelled} and not again["erased"]
    assert len(receipts_of(p.sub)) == 2


def test_erasure_through_the_api_after_a_cancellation(api, h, world):
    """A patient who booked and cancelled erases their data through POST /me/erasure."""
    from homevisits.persistence.booking import BookingModel
    world.need()
    p = h.new_person("erase-api")
    r = h.book(api, p, world.day + timedelta(days=1), "10:00")
    if r.status_code != 201:  # no shift that day: book on the world's day instead
        r = h.book(api, p, world.day, "18:00")
    bid = h.expect(r, 201)["id"]
    h.expect(api.post(f"/bookings/{bid}/cancel", api.token("patient", p.sub), {}), 200)
    r = api.post("/me/erasure", api.token("patient", p.sub))
    assert r.status_code == 200, f"POST /me/erasure -> {r.status_code} {r.text[:200]} " \
                                 "(is booking.privacy.router included in booking/app.py?)"
    assert bid in r.json()["erased"]
    raw = json.dumps(BookingModel.get(bid, consistent_read=True).attribute_values, default=str)
    assert not [s for s in p.secrets() if s in raw]


# ---------------------------------------------------------------- (d) retention
def test_expired_symptoms_are_not_shown_on_the_route(api, world, h):
    """A clinical note past its expires_at is treated as gone (DynamoDB TTL lags), while a live one shows."""
    from homevisits.persistence.booking import ClinicalNoteModel
    world.need()
    marker = f"gammal anteckning {uuid.uuid4().hex[:8]}"
    note = ClinicalNoteModel.get(world.bookings["expiry"])
    note.update(actions=[ClinicalNoteModel.symptoms.set(marker),
                         ClinicalNoteModel.expires_at.set(datetime.now(timezone.utc) - timedelta(minutes=1))])
    r = api.get(f"/me/route?date={world.day}", api.token("clinician", world.clinician, "stockholm"))
    assert r.status_code == 200, r.text
    text = h.text_of(r)
    assert world.owner.symptoms in text, f"positive control: the treating clinician sees live symptoms: {text[:600]}"
    assert marker not in text, "an expired clinical note is still shown"


def test_symptoms_vanish_when_the_clock_passes_the_retention(api, world, h):
    """90 days on (simulated clock), the route shows no symptoms at all."""
    world.need()
    tok = api.token("clinician", world.clinician, "stockholm")
    try:
        api.post("/_local/clock", json={"now": (datetime.now(timezone.utc) + timedelta(days=91)).isoformat()})
        r = api.get(f"/me/route?date={world.day}", tok)
        assert r.status_code == 200, r.text
        assert world.owner.symptoms not in h.text_of(r)
    finally:
        api.post("/_local/clock", json={"offset_s": 0})
