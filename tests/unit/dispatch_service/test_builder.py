"""Building the optimizer's Problem from bookings and shifts."""
from __future__ import annotations

from datetime import timedelta

from dispatch.builder import PRIORITY, SKILLS, build_problem, parse_when
from dispatch.travel_providers import ModelProvider


def test_windows_and_shifts_are_seconds_since_local_midnight(rd, config):
    """GIVEN a 16–18 doctor visit and an 08–16 shift WHEN built THEN times count from local midnight."""
    built = build_problem(rd.inputs([rd.visit("b1", "16:00")], [rd.shift("doc", end="18:00")]), config.visit_types)
    job = built.problem.jobs[0]
    assert job.time_windows == ((16 * 3600, 18 * 3600),)
    assert built.problem.vehicles[0].time_window == (8 * 3600, 18 * 3600)
    assert job.service == config.visit_types["doctor"].service_minutes * 60
    assert built.at(16 * 3600) == rd.local("16:00")


def test_skills_service_and_video_call_come_from_the_visit_type(rd, config):
    """A nurse visit needs a nurse and carries the digital doctor's call; the region's remote doctors count."""
    built = build_problem(rd.inputs([rd.visit("n1", "10:00", "nurse"), rd.visit("d1", "10:00", "doctor")],
                                    [rd.shift("doc"), rd.shift("nur", role="nurse")]), config.visit_types)
    jobs = {built.job_booking[j.id]: j for j in built.problem.jobs}
    assert jobs["n1"].skills == frozenset({SKILLS["nurse"]})
    assert jobs["n1"].video_call_seconds == config.visit_types["nurse"].video_call_minutes * 60 > 0
    assert jobs["d1"].video_call_seconds == 0
    vehicles = {built.vehicle_clinician[v.id]: v for v in built.problem.vehicles}
    assert vehicles["nur"].skills == frozenset({SKILLS["nurse"]})
    assert built.problem.remote_doctors == rd.region.remote_doctors


def test_lunch_starts_inside_the_default_break_window(rd, config):
    """An 08–16 shift gets a 30-minute lunch starting 11:00–13:30 local."""
    built = build_problem(rd.inputs([], [rd.shift("doc")]), config.visit_types)
    (brk,) = built.problem.vehicles[0].breaks
    assert brk.service == 30 * 60
    assert brk.time_windows == ((11 * 3600, 13 * 3600 + 30 * 60),)


def test_a_shift_that_misses_the_break_window_has_no_break(rd, config):
    """A 14–20 shift starts after the latest lunch start: no break is forced on it."""
    built = build_problem(rd.inputs([], [rd.shift("doc", start="14:00", end="20:00")]), config.visit_types)
    assert built.problem.vehicles[0].breaks == ()


def test_the_shifts_own_break_window_is_used(rd, config):
    built = build_problem(rd.inputs([], [rd.shift("doc", **{"break": {"earliest": "12:00", "latest": "12:30",
                                                                       "minutes": 45}})]), config.visit_types)
    (brk,) = built.problem.vehicles[0].breaks
    assert (brk.service, brk.time_windows) == (45 * 60, ((12 * 3600, 12 * 3600 + 1800),))


def test_visits_under_way_are_locked_in_order_with_relaxed_windows(rd, config):
    """completed → arrived → en_route stay first in their clinician's route; their windows no longer bind."""
    visits = [rd.visit("c", "08:00", status="completed", clinician_id="doc"),
              rd.visit("e", "12:00", status="en_route", clinician_id="doc"),
              rd.visit("a", "10:00", status="arrived", clinician_id="doc"),
              rd.visit("free", "14:00")]
    built = build_problem(rd.inputs(visits, [rd.shift("doc")]), config.visit_types)
    vid = built.clinician_vehicle()["doc"]
    assert [built.job_booking[j] for j in built.problem.locked[vid]] == ["c", "a", "e"]
    jobs = {built.job_booking[j.id]: j for j in built.problem.jobs}
    assert jobs["e"].time_windows == () and jobs["free"].time_windows != ()


def test_held_and_cancelled_bookings_stay_out(rd, config):
    visits = [rd.visit("h", "08:00", status="held"), rd.visit("x", "10:00", status="cancelled"),
              rd.visit("ok", "10:00")]
    built = build_problem(rd.inputs(visits, [rd.shift("doc")]), config.visit_types)
    assert sorted(built.job_booking.values()) == ["ok"]


def test_an_unkept_visit_stays_out_of_the_routes_with_its_reason(rd, config):
    """The booking side gave an unkept visit's place away: dispatch must not plan it over others."""
    inputs = rd.inputs([rd.visit("gone", "08:00", unkept=True), rd.visit("ok", "08:00")], [rd.shift("doc")])
    built = build_problem(inputs, config.visit_types)
    assert sorted(built.job_booking.values()) == ["ok"] and built.excluded == {"gone": "clinician_unavailable"}
    kept = rd.inputs([rd.visit("gone", "08:00"), rd.visit("ok", "08:00")], [rd.shift("doc")])
    assert kept.input_hash != inputs.input_hash  # the mark alone asks for a new plan


def test_urgent_bookings_weigh_more(rd, config):
    built = build_problem(rd.inputs([rd.visit("u", "08:00", priority="urgent"), rd.visit("n", "08:00")],
                                    [rd.shift("doc")]), config.visit_types)
    prio = {built.job_booking[j.id]: j.priority for j in built.problem.jobs}
    assert prio == {"u": PRIORITY["urgent"], "n": PRIORITY["normal"]} and prio["u"] > prio["n"]


def test_now_keeps_visits_from_starting_in_the_past(rd, config):
    """At 11:00, a 10–12 visit can start from 11:00 on; an 08–10 visit not yet started is missed."""
    built = build_problem(rd.inputs([rd.visit("late", "10:00"), rd.visit("missed", "08:00")], [rd.shift("doc")]),
                          config.visit_types, now=rd.local("11:00"))
    jobs = {built.job_booking[j.id]: j for j in built.problem.jobs}
    assert jobs["late"].time_windows == ((11 * 3600, 12 * 3600),)
    assert built.excluded == {"missed": "window_passed"}


def test_previous_routes_map_to_vehicles_and_jobs(rd, config):
    built = build_problem(rd.inputs([rd.visit("a", "08:00"), rd.visit("b", "10:00")], [rd.shift("doc")]),
                          config.visit_types, previous_routes={"doc": ["b", "a", "gone"], "left": ["a"]})
    vid = built.clinician_vehicle()["doc"]
    bj = built.booking_job()
    assert built.problem.previous_routes == {vid: (bj["b"], bj["a"])}
    assert built.problem.reassignment_cost > 0


def test_durations_come_from_the_provider_and_points_are_shared(rd, config):
    """Two visits at the same address share one matrix row; the matrix is the provider's."""
    class Fixed:
        def matrix(self, points):
            return [[0 if i == j else 600 for j in range(len(points))] for i in range(len(points))]

    built = build_problem(rd.inputs([rd.visit("a", "08:00", dlat=0.01), rd.visit("b", "10:00", dlat=0.01)],
                                    [rd.shift("doc")]), config.visit_types, travel=Fixed())
    assert len(built.problem.durations) == 2  # the depot and the one address
    assert built.problem.durations[0][1] == 600
    built.problem.validate()


def test_model_provider_matches_the_shared_travel_model(rd):
    from homevisits import travel
    pts = [rd.center, (rd.center[0] + 0.05, rd.center[1])]
    assert ModelProvider(rd.region.travel).matrix(pts) == travel.duration_matrix(pts, rd.region.travel)


def test_shift_times_may_be_local_or_utc(rd):
    assert parse_when("08:00", rd.day, rd.region.tz) == rd.local("08:00")
    assert parse_when("2026-12-01T07:00:00Z", rd.day, rd.region.tz) == rd.local("08:00")
    assert parse_when("24:00", rd.day, rd.region.tz) == rd.local("00:00") + timedelta(days=1)


def test_input_hash_ignores_what_dispatch_writes_but_version_orders_changes(rd):
    """ETA/clinician writes do not change the hash; any booking change raises the version."""
    a = rd.inputs([rd.visit("a", "08:00")], [rd.shift("doc")])
    b = rd.inputs([rd.visit("a", "08:00", eta="2026-12-01T07:10:00Z", clinician_id="doc", version=2,
                            updated_at="2026-11-25T11:00:00Z")], [rd.shift("doc")])
    c = rd.inputs([rd.visit("a", "10:00")], [rd.shift("doc")], ledger_version=2)
    assert a.input_hash == b.input_hash != c.input_hash
    assert a.input_version < b.input_version < c.input_version


def test_a_doctor_on_video_calls_drives_no_route_and_bounds_the_calls(rd, config):
    """A doctor's shift with video_calls is no vehicle: their shift is the problem's call_shifts (local
    time from midnight), and the plan names them for the nurse visit's call."""
    from dispatch.plans import plan_from_solution
    from dispatch.optimizer import solve
    built = build_problem(rd.inputs([rd.visit("n1", "10:00", "nurse")],
                                    [rd.shift("nur", role="nurse"),
                                     rd.shift("vdoc", start="09:00", end="13:00", video_calls=True, name="Dr Berg")]),
                          config.visit_types)
    assert list(built.vehicle_clinician.values()) == ["nur"] and set(built.call_doctors) == {"vdoc"}
    assert built.problem.call_shifts == ((9 * 3600, 13 * 3600),)
    plan = plan_from_solution(built, solve(built.problem, 1.0), region="stockholm", date=rd.day.isoformat(),
                              computed_at=rd.local("07:00"), input_version="1", input_hash="h")
    (stop,) = plan.routes[0]["stops"]
    assert stop["video_call"]["doctor_id"] == "vdoc" and stop["video_call"]["doctor_name"] == "Dr Berg"
    assert plan.video_calls["doctors"][0]["calls"][0]["booking_id"] == "n1"
