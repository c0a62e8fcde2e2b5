"""Dispatch on the real local stack: plans over HTTP, the clinician's route, visit events, the
optimistic lock on plans, and re-planning through the stream and the FIFO queue."""
from __future__ import annotations

import json
from datetime import date

import pytest

pytestmark = pytest.mark.stack

FAST = {"time_limit_s": 1}


def optimize(api, seeded, token):
    return api.post(f"/regions/{seeded.region}/plans/{seeded.date}/optimize", token, json=FAST)


@pytest.fixture(scope="module")
def plan(api, seeded, tokens):
    r = optimize(api, seeded, tokens["dispatcher"])
    assert r.status_code == 200, r.text
    return r.json()


def rebuilt(seeded):
    """The Problem the stored plan was computed from, rebuilt in-process from DynamoDB Local."""
    from homevisits.regions import load_config

    from dispatch import repository
    from dispatch.builder import build_problem

    config = load_config()
    inputs = repository.load_inputs(config.region(seeded.region), seeded.day)
    return build_problem(inputs, config.visit_types)


def test_optimize_stores_a_versioned_plan_that_get_returns(api, seeded, tokens, plan):
    assert plan["stored"] is True and plan["version"] >= 1
    served = {s["booking_id"] for r in plan["routes"] for s in r["stops"]}
    assert served | {u["booking_id"] for u in plan["unassigned"]} == set(seeded.bookings)
    got = api.get(f"/regions/{seeded.region}/plans/{seeded.date}", tokens["dispatcher"])
    assert got.status_code == 200 and got.json()["version"] >= plan["version"]
    assert set(got.json()["kpis"]) >= {"total_driving_minutes", "utilisation", "visits_served", "late_risk",
                                       "on_time_share"}


def test_a_budget_above_what_the_worker_honours_is_refused_and_nothing_is_planned(api, seeded, tokens, plan):
    """One maximum for the API and the worker: more is a 400 (body or query), never a silent cut, and
    the stored plan stays as it was; the API document states the same maximum."""
    from homevisits.settings import SOLVER_TIME_LIMIT_MAX_S

    url = f"/regions/{seeded.region}/plans/{seeded.date}"
    before = api.get(url, tokens["dispatcher"]).json()["version"]
    over = api.post(url + "/optimize", tokens["dispatcher"], json={"time_limit_s": SOLVER_TIME_LIMIT_MAX_S + 1})
    assert over.status_code == 400 and over.json()["error"]["code"] == "invalid_request", over.text
    over = api.post(url + "/optimize?time_limit_s=60", tokens["dispatcher"])
    assert over.status_code == 400 and over.json()["error"]["code"] == "invalid_request", over.text
    assert api.get(url, tokens["dispatcher"]).json()["version"] == before
    spec = api.get("/openapi.json").json()
    schema = spec["components"]["schemas"]["OptimizeIn"]["properties"]["time_limit_s"]
    assert schema["anyOf"][0]["maximum"] == SOLVER_TIME_LIMIT_MAX_S


def test_every_stored_route_passes_the_independent_feasibility_check(api, seeded, tokens, plan):
    from dispatch import repository
    from dispatch.feasibility import check
    from dispatch.plans import plan_as_vroom_output

    stored = repository.get_plan(seeded.region, seeded.day)
    built = rebuilt(seeded)
    violations, _ = check(built.problem, plan_as_vroom_output(stored, built))
    assert violations == []
    assert stored.kpis["visits_served"] == len(seeded.bookings)  # an easy day: everyone is served


def test_the_dispatchers_plan_has_addresses_but_no_symptoms_or_personal_data(api, seeded, tokens, plan):
    body = api.get(f"/regions/{seeded.region}/plans/{seeded.date}", tokens["dispatcher"]).text
    for secret in ("19811218-9876", "Anna", "+46701234567", "4321", "cough", "rash", "door_code", "symptoms"):
        assert secret not in body
    stop = json.loads(body)["routes"][0]["stops"][0]
    assert stop["address"]["street"] == "Drottninggatan 1" and stop["eta_local"] and stop["window_end"]


def test_plans_are_only_for_the_regions_dispatcher(api, seeded, tokens, plan):
    path = f"/regions/{seeded.region}/plans/{seeded.date}"
    assert api.get(path, tokens["other_dispatcher"]).status_code == 403
    assert api.get(path, tokens["doctor"]).status_code == 403
    assert api.post(path + "/optimize", tokens["patient"], json=FAST).status_code == 403
    missing = api.get(f"/regions/{seeded.region}/plans/2099-01-01", tokens["dispatcher"])
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_plan"


def test_the_plans_etas_are_written_into_the_bookings(api, seeded, tokens, plan):
    from homevisits.persistence.booking import BookingModel
    from dispatch import repository

    stored = repository.get_plan(seeded.region, seeded.day)
    for bid, (clinician, eta) in stored.assignments().items():
        b = BookingModel.get(bid)
        assert (b.clinician_id, b.eta) == (clinician, eta)


def test_a_clinician_sees_only_their_own_stops_with_symptoms_and_it_is_audited(api, seeded, tokens, plan):
    from homevisits.persistence.dispatch import AccessAuditModel
    from dispatch import repository

    stored = repository.get_plan(seeded.region, seeded.day)
    mine = [s["booking_id"] for s in stored.route_of(tokens["nurse_id"])["stops"]]
    r = api.get(f"/me/route?date={seeded.date}", tokens["nurse"])
    assert r.status_code == 200, r.text
    stops = r.json()["stops"]
    assert [s["booking_id"] for s in stops] == mine
    assert all(seeded.bookings[b]["visit_type"] == "nurse" for b in mine)
    assert {s["symptoms"] for s in stops} == {"rash", "persistent cough"}
    assert stops[0]["address"]["door_code"] == "4321" and stops[0]["patient"]["first_name"] == "Anna"
    assert "19811218-9876" not in r.text
    sub = seeded.bookings[mine[0]]["patient_sub"]
    audit = list(AccessAuditModel.query(f"AUDIT#{sub}"))
    assert audit and audit[-1].reader_sub == tokens["nurse_id"] and audit[-1].booking_id == mine[0]


def test_an_expired_clinical_note_is_treated_as_gone(api, seeded, tokens, plan):
    expired = next(b for b, v in seeded.bookings.items() if v["window"] == "10:00" and v["visit_type"] == "doctor")
    stops = api.get(f"/me/route?date={seeded.date}", tokens["doctor"]).json()["stops"]
    assert {s["booking_id"]: s["symptoms"] for s in stops}[expired] is None


def test_a_clinician_without_a_route_sees_no_stops(api, seeded, tokens, plan):
    r = api.get(f"/me/route?date={seeded.date}", tokens["stranger"])
    assert r.status_code == 200 and r.json()["stops"] == []


def test_visit_events_follow_the_state_machine_over_http(api, seeded, tokens, plan, drain):
    from homevisits.persistence.booking import BookingModel
    from homevisits.persistence.dispatch import VisitEventModel
    from dispatch import repository

    stored = repository.get_plan(seeded.region, seeded.day)
    bid = stored.route_of(tokens["doctor_id"])["stops"][0]["booking_id"]
    path = f"/visits/{bid}/events"

    assert api.post(path, tokens["stranger"], json={"type": "on_the_way"}).status_code == 403
    assert api.post(path, tokens["nurse"], json={"type": "on_the_way"}).status_code == 403
    bad = api.post(path, tokens["doctor"], json={"type": "completed"})
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "invalid_transition"
    assert api.post(path, tokens["doctor"], json={"type": "teleported"}).status_code == 400

    first = api.post(path, tokens["doctor"], json={"type": "on_the_way"})
    assert first.status_code == 200 and first.json() == {"booking_id": bid, "status": "en_route",
                                                         "event_id": f"{bid}:on_the_way", "repeat": False}
    again = api.post(path, tokens["doctor"], json={"type": "on_the_way"})
    assert again.status_code == 200 and again.json()["repeat"] is True
    assert api.post(path, tokens["doctor"], json={"type": "arrived"}).json()["status"] == "arrived"
    assert api.post(path, tokens["doctor"], json={"type": "completed"}).json()["status"] == "completed"
    assert api.post(path, tokens["doctor"], json={"type": "no_show"}).status_code == 409

    assert BookingModel.get(bid).status == "completed"
    records = {e.type: e for e in VisitEventModel.query(f"VISIT#{bid}")}
    assert set(records) == {"on_the_way", "arrived", "completed"} and all(e.published for e in records.values())
    drained = drain(60)
    assert "ReplanQueue" not in drained["dead_letters"]


def test_the_regions_dispatcher_may_post_an_event_for_a_clinician(api, seeded, tokens, plan):
    from dispatch import repository

    stored = repository.get_plan(seeded.region, seeded.day)
    bid = stored.route_of(tokens["nurse_id"])["stops"][-1]["booking_id"]
    assert api.post(f"/visits/{bid}/events", tokens["other_dispatcher"], json={"type": "on_the_way"}).status_code == 403
    r = api.post(f"/visits/{bid}/events", tokens["dispatcher"], json={"type": "on_the_way"})
    assert r.status_code == 200 and r.json()["status"] == "en_route"


def test_a_stale_plan_is_never_stored(api, seeded, tokens, plan):
    from dataclasses import replace

    from dispatch import repository

    stored = repository.get_plan(seeded.region, seeded.day)
    older = replace(stored, input_version="0000000000|", computed_at="2000-01-01T00:00:00Z")
    with pytest.raises(repository.StalePlan):  # computed from older inputs
        repository.save_plan(older, stored.version)
    with pytest.raises(repository.StalePlan):  # the writer did not read the current version
        repository.save_plan(replace(stored), stored.version - 1 if stored.version > 1 else 99)
    with pytest.raises(repository.StalePlan):  # "first plan" while one exists
        repository.save_plan(replace(stored), None)
    assert repository.get_plan(seeded.region, seeded.day).version == stored.version


def test_a_plans_pending_announcement_is_cleared_only_for_its_own_version(api):
    """PlansTable on DynamoDB Local: the PlanChanged detail stored with a plan is removed once
    published, without bumping the plan's version; a stale run cannot clear a newer plan's."""
    import uuid
    from dataclasses import replace

    from dispatch import repository
    from dispatch.plans import Plan

    region, day = "skane", f"2031-01-{uuid.uuid4().int % 28 + 1:02d}"
    plan = Plan(region=region, date=day, routes=[], unassigned=[], kpis={}, computed_at="2031-01-01T00:00:00Z",
                input_version=f"0000000001|{uuid.uuid4().hex}", input_hash="h", announce={"clinicians": ["c1"]})
    stored = repository.save_plan(plan, None)
    assert repository.get_plan(region, day).announce == {"clinicians": ["c1"]}
    assert repository.mark_announced(replace(stored, version=stored.version + 7)) is False
    assert repository.get_plan(region, day).announce == {"clinicians": ["c1"]}
    assert repository.mark_announced(stored) is True
    got = repository.get_plan(region, day)
    assert got.announce is None and got.version == stored.version


def stream_record(booking_id: str, seq: int) -> dict:
    """The BookingsTable stream record DynamoDB would emit for a booking as it is stored now."""
    from homevisits.persistence.booking import BookingModel

    new = BookingModel.get(booking_id).serialize()
    old = {**new, "status": {"S": "held"}}
    return {"eventID": str(seq), "eventName": "MODIFY", "eventSource": "aws:dynamodb", "awsRegion": "eu-north-1",
            "eventSourceARN": "arn:aws:dynamodb:eu-north-1:000000000000:table/BookingsTable/stream/x",
            "dynamodb": {"Keys": {"booking_id": {"S": booking_id}}, "NewImage": new, "OldImage": old,
                         "SequenceNumber": str(seq), "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"}}


def test_a_confirmation_replans_through_the_forwarder_and_the_fifo_queue(api, seeded, tokens, plan, seed, drain):
    """The forwarder (invoked with the stream record) → ReplanQueue → worker → a newer plan with the visit."""
    from dispatch import repository

    before = repository.get_plan(seeded.region, seeded.day)
    bid = seed.booking(seeded, "18:00", "doctor", dlat=-0.005)
    result = api.invoke("ReplanForwarderFunction", {"Records": [stream_record(bid, 10**12 + before.version)]})
    assert result == {"batchItemFailures": []}
    drained = drain(60)
    assert drained["drained"] and "ReplanQueue" not in drained["dead_letters"]
    after = repository.get_plan(seeded.region, seeded.day)
    assert after.version > before.version and after.trigger == "replan"
    assert bid in after.assignments() or bid in {u["booking_id"] for u in after.unassigned}


def test_a_booking_change_replans_through_the_stream_and_the_queue(api, seeded, tokens, plan, seed, drain):
    from dispatch import repository

    drain(60)
    before = repository.get_plan(seeded.region, seeded.day)
    bid = seed.booking(seeded, "16:00", "doctor", dlat=0.005)
    assert drain(60)["drained"]
    after = repository.get_plan(seeded.region, seeded.day)
    assert after.version > before.version and after.trigger == "replan"
    assert bid in after.assignments() or bid in {u["booking_id"] for u in after.unassigned}
    # Storing the plan wrote ETAs into bookings: that must not have set off another re-plan.
    assert drain(30)["drained"]
    assert repository.get_plan(seeded.region, seeded.day).version == after.version


def test_the_schedule_enqueues_open_regions_today_and_tomorrow(api, drain):
    result = api.invoke("ReplanForwarderFunction", {"source": "aws.scheduler"})
    assert any(rd.startswith("stockholm#") for rd in result["requested"])
    assert not any(rd.startswith("vastra-gotaland#") for rd in result["requested"])
    assert drain(90)["drained"]


def test_an_empty_region_day_gets_an_empty_plan(api, seed, tokens):
    s = seed.region_day()
    r = api.post(f"/regions/{s.region}/plans/{s.date}/optimize", tokens["dispatcher"], json=FAST)
    assert r.status_code == 200, r.text
    assert r.json()["routes"] == [] and r.json()["kpis"]["visits_served"] == 0
    assert date.fromisoformat(r.json()["date"]) == s.day
