"""Re-planning one region-day (repository faked in memory) and the FIFO worker's batch handling."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from homevisits.clock import FixedClock

from dispatch import repository, worker

CLOCK = FixedClock(datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc))


class Store:
    """PlansTable and the region-day's inputs in memory, with save_plan's two guards."""

    def __init__(self, inputs):
        self.inputs, self.plan, self.saves, self.etas, self.race = inputs, None, 0, [], None

    def get_plan(self, region, day):
        return replace(self.plan) if self.plan else None

    def load_inputs(self, region, day):
        return self.inputs

    def save_plan(self, plan, expected_version):
        if self.race:  # someone else stores a plan between our read and our write
            self.race, racer = None, self.race
            self.plan = replace(racer, version=(self.plan.version if self.plan else 0) + 1)
        current = self.plan.version if self.plan else None
        if current != expected_version or (self.plan and self.plan.input_version > plan.input_version):
            raise repository.StalePlan("refused")
        plan.version = (current or 0) + 1
        self.plan = replace(plan)
        self.saves += 1
        return plan

    def write_etas(self, plan, visits):
        self.etas.append(plan.version)

    def mark_announced(self, plan):
        if not self.plan or self.plan.version != plan.version:
            return False
        self.plan = replace(self.plan, announce=None)
        plan.announce = None
        return True


@pytest.fixture
def world(rd, monkeypatch, live_store):
    store = Store(rd.inputs([rd.visit("a", "08:00", dlat=0.01), rd.visit("b", "12:00", dlon=0.01)],
                            [rd.shift("doc")]))
    for name in ("get_plan", "load_inputs", "save_plan", "write_etas", "mark_announced"):
        monkeypatch.setattr(repository, name, getattr(store, name))
    published = []
    monkeypatch.setattr(worker.messaging, "publish", lambda source, dt, detail: published.append((dt, detail)))
    return store, published


def run(rd, **kw):
    return worker.replan("stockholm", rd.day, time_limit_s=0.3, clock=CLOCK, **kw)


def test_a_replan_stores_the_plan_writes_etas_and_announces_the_change(rd, world):
    store, published = world
    result = run(rd)
    assert result.stored and store.plan.version == 1 and store.etas == [1]
    assert published == [("PlanChanged", {"region_day": "stockholm#2026-12-01", "version": 1, "clinicians": ["doc"], "eta_changes": []})]
    assert store.plan.kpis["visits_served"] == 2


def test_a_plan_change_whose_publish_failed_is_announced_by_the_next_run(rd, world, monkeypatch):
    """The plan is stored, then the bus refuses PlanChanged (the message is retried): the retry has
    nothing to solve but still announces the stored plan, once."""
    store, published = world

    def down(source, dt, detail):
        raise RuntimeError("bus unavailable")

    monkeypatch.setattr(worker.messaging, "publish", down)
    with pytest.raises(RuntimeError):
        run(rd)
    assert store.plan.version == 1 and store.plan.announce == {"clinicians": ["doc"], "eta_changes": []}
    monkeypatch.setattr(worker.messaging, "publish", lambda source, dt, detail: published.append((dt, detail)))
    again = run(rd)
    assert again.skipped and store.saves == 1
    assert published == [("PlanChanged", {"region_day": "stockholm#2026-12-01", "version": 1, "clinicians": ["doc"], "eta_changes": []})]
    assert store.plan.announce is None
    run(rd)
    assert len(published) == 1  # announced once: the next skip publishes nothing


def test_unchanged_inputs_are_not_solved_again_unless_forced(rd, world):
    store, published = world
    run(rd)
    again = run(rd)
    assert again.skipped and store.saves == 1 and len(published) == 1
    forced = run(rd, force=True, trigger="optimize")
    assert forced.stored and store.plan.version == 2 and store.plan.trigger == "optimize"
    assert published[-1][1]["clinicians"] == []  # same stops: nobody's route changed


def test_a_run_that_loses_to_a_newer_plan_stops(rd, world):
    store, published = world
    run(rd)
    newer = replace(store.plan, input_version="9999999999|", input_hash="other")
    store.race = newer
    store.inputs = replace(store.inputs, visits=store.inputs.visits[:1], ledger_version=5)  # "b" was cancelled
    result = run(rd)
    assert not result.stored and result.plan.input_version == "9999999999|"
    assert store.plan.input_version == "9999999999|" and len(published) == 1


def test_a_run_that_loses_to_an_older_concurrent_write_retries(rd, world):
    store, published = world
    run(rd)
    store.race = replace(store.plan, input_hash="racer")  # same inputs version, written meanwhile
    store.inputs = replace(store.inputs, visits=store.inputs.visits[:1], ledger_version=5)
    result = run(rd)
    assert result.stored and store.plan.input_hash == store.inputs.input_hash


def test_a_day_without_clinicians_gets_a_plan_with_everything_unassigned(rd, world, monkeypatch):
    store, _ = world
    store.inputs = replace(store.inputs, shifts=())
    result = run(rd)
    assert result.plan.routes == [] and {u["booking_id"] for u in result.plan.unassigned} == {"a", "b"}


def test_budgets_come_from_the_settings_and_a_bad_one_fails_the_cold_start(monkeypatch):
    import pydantic

    from homevisits import settings
    monkeypatch.setenv("OPTIMIZE_TIME_LIMIT_S", "1.5")
    settings.reload()
    assert worker.optimize_budget() == 1.5 and worker.optimize_budget(requested=7) == 7
    for bad in ("nonsense", "0", str(settings.SOLVER_TIME_LIMIT_MAX_S + 1)):
        monkeypatch.setenv("REPLAN_TIME_LIMIT_S", bad)
        with pytest.raises(pydantic.ValidationError, match="REPLAN_TIME_LIMIT_S"):
            settings.reload()
    assert worker.scaled_budget(3.0, 2) == 0.5 and worker.scaled_budget(3.0, 100) == 3.0


def test_a_budget_no_lambda_could_honour_is_refused_not_cut(rd, world):
    """The worker never silently spends less than it was asked for: above the one maximum it refuses."""
    with pytest.raises(ValueError, match="time_limit_s"):
        worker.replan("stockholm", rd.day, time_limit_s=settings_max() + 1, clock=CLOCK)


def settings_max() -> float:
    from homevisits import settings
    return settings.SOLVER_TIME_LIMIT_MAX_S


def sqs(*region_days):
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"m{i}", "body": json.dumps({"region_day": rd}),
                         "attributes": {"MessageGroupId": rd, "MessageDeduplicationId": f"{rd}:{i}",
                                        "ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                         "messageAttributes": {}, "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:eu-north-1:0:ReplanQueue.fifo", "awsRegion": "eu-north-1"}
                        for i, rd in enumerate(region_days)]}


def test_the_worker_replans_each_region_day_of_a_batch_once(monkeypatch):
    calls = []
    monkeypatch.setattr(worker, "replan", lambda region, day, **kw: calls.append((region, day.isoformat(), kw["trigger"]))
                        or worker.ReplanResult(None, stored=True))
    out = worker.lambda_handler(sqs("stockholm#2026-12-01", "stockholm#2026-12-01", "skane#2026-12-02"), None)
    assert out == {"batchItemFailures": []}
    assert calls == [("stockholm", "2026-12-01", "replan"), ("skane", "2026-12-02", "replan")]


def test_a_failure_fails_that_message_and_the_rest_of_the_fifo_batch(monkeypatch):
    def replan(region, day, **kw):
        if region == "skane":
            raise RuntimeError("boom")
        return worker.ReplanResult(None, stored=True)

    monkeypatch.setattr(worker, "replan", replan)
    out = worker.lambda_handler(sqs("stockholm#2026-12-01", "skane#2026-12-02", "stockholm#2026-12-03"), None)
    assert out == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}


def test_visits_under_way_that_overrun_the_shift_are_still_planned(rd, world):
    """Three visits already under way cannot fit a one-hour shift: the clinician works over instead
    of the region-day failing to plan."""
    store, _ = world
    visits = [rd.visit("c", "08:00", status="completed", clinician_id="doc"),
              rd.visit("a", "08:00", status="arrived", clinician_id="doc", dlat=0.02),
              rd.visit("e", "10:00", status="en_route", clinician_id="doc", dlat=0.04),
              rd.visit("new", "10:00", dlon=0.01)]
    store.inputs = rd.inputs(visits, [rd.shift("doc", end="09:00")])
    result = run(rd)
    route = result.plan.route_of("doc")
    assert [s["booking_id"] for s in route["stops"]][:3] == ["c", "a", "e"]
    assert all(s["locked"] for s in route["stops"][:3])


def test_a_plan_overtaken_by_the_clock_is_replanned_even_with_the_same_inputs(rd, world, monkeypatch):
    """At 09:30 a visit planned for 08:00 but not yet under way needs a new ETA from now on."""
    store, _ = world
    run(rd)
    late = FixedClock(rd.local("09:30"))
    result = worker.replan("stockholm", rd.day, time_limit_s=0.3, clock=late)
    assert result.stored and not result.skipped
    etas = [s["eta"] for r in result.plan.routes for s in r["stops"]]
    assert etas and all(e >= "2026-12-01T08:30:00Z" for e in etas)  # nothing before 09:30 local
    assert worker.replan("stockholm", rd.day, time_limit_s=0.3, clock=late).skipped


def test_plan_changed_lists_each_visit_whose_eta_moved():
    """A new plan announces the clinicians whose route changed and each booking whose ETA moved,
    with the ETA before, so notifications can tell the patient; unchanged ETAs are not listed."""
    from dispatch.plans import Plan
    from dispatch.worker import announcement

    def plan(routes):
        return Plan(region="stockholm", date="2026-12-01", routes=routes, unassigned=[], kpis={},
                    computed_at="2026-12-01T06:00:00Z", input_version="1", input_hash="h")

    before = plan([{"clinician_id": "a", "stops": [{"booking_id": "b1", "eta": "2026-12-01T08:10:00Z"},
                                                    {"booking_id": "b2", "eta": "2026-12-01T10:00:00Z"}]}])
    after = plan([{"clinician_id": "a", "stops": [{"booking_id": "b1", "eta": "2026-12-01T08:10:00Z"}]},
                  {"clinician_id": "b", "stops": [{"booking_id": "b2", "eta": "2026-12-01T10:45:00Z"}]}])
    assert announcement(before, after) == {
        "clinicians": ["a", "b"],
        "eta_changes": [{"booking_id": "b2", "eta": "2026-12-01T10:45:00Z", "previous_eta": "2026-12-01T10:00:00Z"}]}
    assert announcement(None, after)["eta_changes"] == []


def test_a_move_leaves_the_routes_it_does_not_touch_as_they_were(rd, world, config):
    """Doctor A's stored route takes the lunch break before its second visit, where the optimizer
    put it; a move between doctors B and C keeps it there, so A's ETAs stay as they were and none of
    A's patients is texted (issue 14: in `make demo` a move re-timed a route it did not touch and
    texted its patients: every route was rescheduled with the break where the route ends earliest,
    here after the second visit, which moved that visit's ETA from 11:41 to 10:51)."""
    from dispatch import live
    from dispatch.builder import build_problem
    from dispatch.plans import plan_from_solution
    from dispatch.problem import Solution
    from dispatch.steering import Move, _walk, schedule_route

    store, published = world
    store.inputs = rd.inputs([rd.visit("a1", "10:00", dlat=0.0313, dlon=0.0518),
                              rd.visit("a2", "10:00", dlat=0.0482, dlon=0.0751),
                              rd.visit("a3", "12:00", dlat=0.036, dlon=0.0165),
                              rd.visit("b1", "08:00", dlat=-0.01), rd.visit("b2", "14:00", dlat=-0.02, dlon=0.01)],
                             [rd.shift("A"), rd.shift("B"), rd.shift("C", start="12:00", end="20:00")])
    now = CLOCK.now()
    built = build_problem(store.inputs, config.visit_types, now=now)
    job, vehicle = built.booking_job(), built.clinician_vehicle()
    a = _walk(built.problem, built.problem.vehicle_by_id()[vehicle["A"]], [job[b] for b in ("a1", "a2", "a3")],
              1, False)  # the break after the first visit
    b = schedule_route(built.problem, vehicle["B"], [job["b1"], job["b2"]])
    stored = plan_from_solution(built, Solution(routes=(a, b), unassigned=(), cost=0, duration=0, service=0,
                                                waiting_time=0),
                                region="stockholm", date=rd.day.isoformat(), computed_at=now,
                                input_version=store.inputs.input_version, input_hash=store.inputs.input_hash)
    pending = worker._live(stored, built, now)
    store.save_plan(stored, None)
    live.save_pending(pending, stored.version, now)
    before = {s["booking_id"]: s["eta"] for r in store.plan.routes if r["clinician_id"] == "A" for s in r["stops"]}
    assert list(before) == ["a1", "a2", "a3"] and before["a2"] > "2026-12-01T10:20"  # after the break

    moved = worker.steer("stockholm", rd.day, Move("b2", "C"), plan_version=stored.version, clock=CLOCK)

    assert [s["booking_id"] for r in moved.routes if r["clinician_id"] == "C" for s in r["stops"]] == ["b2"]
    after = {s["booking_id"]: s["eta"] for r in moved.routes if r["clinician_id"] == "A" for s in r["stops"]}
    assert after == before
    changed = published[-1][1]
    assert "A" not in changed["clinicians"] and not {c["booking_id"] for c in changed["eta_changes"]} & set(before)
