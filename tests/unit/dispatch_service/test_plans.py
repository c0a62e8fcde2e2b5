"""Plans from optimizer solutions: routes with ETAs, unassigned reasons, KPIs, change detection."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dispatch.builder import build_problem
from dispatch.feasibility import check
from dispatch.kpis import compute_kpis
from dispatch.plans import (Plan, changed_clinicians, clinician_route, earliest_times, plan_as_vroom_output,
                            plan_from_solution)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def solve_plan(rd, config, visits, shifts, time_limit_s=0.5):
    from dispatch.optimizer import solve
    inputs = rd.inputs(visits, shifts)
    built = build_problem(inputs, config.visit_types)
    solution = solve(built.problem, time_limit_s)
    plan = plan_from_solution(built, solution, region=rd.region.id, date=rd.day.isoformat(), computed_at=NOW,
                              input_version=inputs.input_version, input_hash=inputs.input_hash)
    return built, solution, plan


@pytest.fixture
def day_plan(rd, config):
    visits = [rd.visit("d1", "08:00", dlat=0.01), rd.visit("d2", "12:00", dlat=-0.01, dlon=0.02),
              rd.visit("n1", "10:00", "nurse", dlon=0.03), rd.visit("n2", "14:00", "nurse", dlat=0.02),
              rd.visit("nobody", "08:00", dlat=0.3)]
    # The doctor works 08–09 only: the far 08–10 visit cannot be reached and back in time.
    shifts = [rd.shift("doc", end="09:00"), rd.shift("nur", role="nurse", end="17:00")]
    return solve_plan(rd, config, visits, shifts)


def test_every_route_of_the_plan_passes_the_independent_check(day_plan):
    """What is stored (ETAs, breaks, starts and ends) is feasible for the problem it came from."""
    built, _solution, plan = day_plan
    violations, _ = check(built.problem, plan_as_vroom_output(plan, built))
    assert violations == []


def test_stops_carry_utc_and_local_etas_inside_their_windows(day_plan):
    _built, _s, plan = day_plan
    stops = [s for r in plan.routes for s in r["stops"]]
    assert stops
    for s in stops:
        assert s["eta"].endswith("Z") and len(s["eta_local"]) == 5
        assert s["window_start_at"] <= s["eta"] <= s["window_end_at"]
        assert set(s["address"]) == {"street", "city", "postal_code", "lat", "lon"}  # no door code


def test_a_visit_no_one_can_reach_is_unassigned_with_a_reason(day_plan):
    _b, _s, plan = day_plan
    assert {u["booking_id"]: u["reason"] for u in plan.unassigned}.get("nobody") == "no_capacity"


def test_plan_holds_no_personal_data(day_plan):
    """Patients' names, personal numbers, phones, door codes and symptoms never enter a plan; the
    only names in it are the staff's (a route's clinician, a video call's doctor and nurse)."""
    public = Plan.to_public(day_plan[2])
    text = str(public)
    for word in ("personal_number", "phone", "door_code", "symptoms", "patient"):
        assert word not in text

    def name_keys(x, where=""):
        if isinstance(x, dict):
            for k, v in x.items():
                if "name" in k:
                    yield where, k
                yield from name_keys(v, k)
        elif isinstance(x, list):
            for v in x:
                yield from name_keys(v, where)

    assert set(name_keys(public)) <= {("routes", "name"), ("video_call", "doctor_name"), ("doctors", "name"),
                                      ("calls", "nurse_name"), ("unassigned", "nurse_name")}


def test_a_visit_type_no_clinician_has_is_reported_as_such(rd, config):
    _b, _s, plan = solve_plan(rd, config, [rd.visit("n", "10:00", "nurse")], [rd.shift("doc")])
    assert plan.unassigned == [{"booking_id": "n", "reason": "no_clinician_with_skill", "visit_type": "nurse",
                                "window_start": "10:00", "window_end": "12:00", "status": "confirmed",
                                "priority": "normal", "frikort": None}]


def test_a_self_declared_frikort_is_shown_unverified_and_never_its_number(rd, config):
    """The dispatcher sees which free visits rest on a frikort nobody has verified (issue 12, defect 4)."""
    from dispatch.repository import frikort_mark
    mark = frikort_mark({"number": "FK-1", "valid_until": "2027-06-01", "declared": True, "verified": False})
    assert mark == {"declared": True, "verified": False}
    assert frikort_mark(None) is None
    assert frikort_mark({"number": "FK-1", "valid_until": "2027-06-01"}) == {"declared": True, "verified": False}
    _b, _s, plan = solve_plan(rd, config, [rd.visit("f", "10:00", frikort=mark), rd.visit("c", "12:00")],
                              [rd.shift("doc")])
    stops = {s["booking_id"]: s for r in plan.routes for s in r["stops"]}
    assert stops["f"]["frikort"] == {"declared": True, "verified": False} and stops["c"]["frikort"] is None
    assert "FK-1" not in str(Plan.to_public(plan))


def test_kpis_sum_the_routes(day_plan):
    _b, solution, plan = day_plan
    k = plan.kpis
    assert k["visits_served"] == sum(len(r["stops"]) for r in plan.routes)
    assert k["visits_unassigned"] == len(plan.unassigned) >= 1
    assert k["total_driving_minutes"] == pytest.approx(sum(r["driving_minutes"] for r in plan.routes), abs=0.2)
    assert 0 < k["utilisation"] <= 1
    assert k["on_time_share"] == pytest.approx(k["visits_served"] / (k["visits_served"] + k["visits_unassigned"]),
                                               abs=0.001)


def test_late_risk_counts_stops_close_to_their_window_end():
    stop = {"service_minutes": 30, "window_start_at": "2026-12-01T07:00:00Z", "window_end_at": "2026-12-01T09:00:00Z"}
    routes = [{"driving_minutes": 10, "stops": [{**stop, "eta": "2026-12-01T08:50:00Z"},
                                                {**stop, "eta": "2026-12-01T07:30:00Z"}]}]
    k = compute_kpis(routes, [{"booking_id": "x"}], shift_seconds=8 * 3600, late_risk_minutes=15)
    assert (k["late_risk"], k["visits_served"], k["on_time_share"]) == (1, 2, round(2 / 3, 3))
    assert k["utilisation"] == round(3600 / (8 * 3600), 3)


def test_etas_are_the_earliest_feasible_service_starts(rd, config):
    """A lone doctor visit next to the depot starts at the window's opening, not at its end."""
    _b, _s, plan = solve_plan(rd, config, [rd.visit("a", "08:00")], [rd.shift("doc")])
    (stop,) = plan.routes[0]["stops"]
    assert stop["eta_local"] == "08:00"
    assert plan.kpis["late_risk"] == 0


def test_earliest_times_keeps_the_solution_when_nothing_can_move(rd, config):
    built, solution, _plan = solve_plan(rd, config, [rd.visit("a", "08:00")], [rd.shift("doc")])
    shifted = earliest_times(built.problem, solution)
    assert check(built.problem, shifted)[0] == []
    assert earliest_times(built.problem, shifted) == shifted


def test_changed_clinicians_are_those_whose_stop_order_differs():
    old = [{"clinician_id": "a", "stops": [{"booking_id": "1"}, {"booking_id": "2"}]},
           {"clinician_id": "b", "stops": [{"booking_id": "3"}]}]
    new = [{"clinician_id": "a", "stops": [{"booking_id": "1"}, {"booking_id": "2"}]},
           {"clinician_id": "c", "stops": [{"booking_id": "3"}]}]
    assert changed_clinicians(old, new) == ["b", "c"]
    assert changed_clinicians(None, new) == ["a", "c"]


class FakeRouteRepo:
    def __init__(self, plan, bookings, notes):
        self.plan, self.bookings, self.notes, self.audits = plan, bookings, notes, []

    def get_plan(self, region, day):
        return self.plan

    def get_bookings(self, ids):
        return {i: self.bookings[i] for i in ids if i in self.bookings}

    def clinical_notes(self, ids, now):
        return {i: n for i, n in self.notes.items() if i in ids}

    def audit_read(self, *args):
        self.audits.append(args)


class B:
    def __init__(self, booking_id, status="confirmed", region="stockholm"):
        self.booking_id, self.status, self.region = booking_id, status, region
        self.patient_sub = f"patient-{booking_id}"
        self.patient = {"name": "Anna Andersson", "phone": "+46701234567", "personal_number": "19811218-9876"}
        self.for_child = None
        self.address = {"street": "Drottninggatan 1", "city": "Stockholm", "postal_code": "11122",
                        "door_code": "1234", "lat": 59.3, "lon": 18.0}


def test_a_clinician_sees_only_their_stops_with_door_code_first_name_and_symptoms(day_plan, rd):
    from homevisits.auth import Caller
    _b, _s, plan = day_plan
    mine = plan.route_of("nur")
    ids = [s["booking_id"] for s in mine["stops"]]
    others = [s["booking_id"] for r in plan.routes if r["clinician_id"] != "nur" for s in r["stops"]]
    repo = FakeRouteRepo(plan, {i: B(i) for i in ids + others}, {i: f"cough {i}" for i in ids + others})
    body = clinician_route(Caller("nur", "clinician", "stockholm"), "stockholm", rd.day, NOW, repo=repo)
    assert [s["booking_id"] for s in body["stops"]] == ids
    first = body["stops"][0]
    assert first["address"]["door_code"] == "1234" and first["patient"] == {
        "first_name": "Anna", "phone": "+46701234567", "is_child": False}
    assert first["symptoms"] == f"cough {ids[0]}"
    assert "personal_number" not in str(body)
    assert [a[0] for a in repo.audits] == [f"patient-{i}" for i in ids]  # one access-log entry per patient read


def test_a_stop_cancelled_after_planning_shows_nothing_of_the_patient(day_plan, rd):
    from homevisits.auth import Caller
    _b, _s, plan = day_plan
    ids = [s["booking_id"] for s in plan.route_of("nur")["stops"]]
    repo = FakeRouteRepo(plan, {ids[0]: B(ids[0], status="cancelled")}, {})
    body = clinician_route(Caller("nur", "clinician", "stockholm"), "stockholm", rd.day, NOW, repo=repo)
    assert ids[0] not in [s["booking_id"] for s in body["stops"]] and repo.audits == []
