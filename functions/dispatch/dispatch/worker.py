"""Re-planning one region-day, and the ReplanQueue worker (SQS FIFO) that runs it.

One run at a time per region-day: the queue's message group is the region-day, so SQS FIFO hands
a group's next message to a worker only after the previous batch of that group is done; and
whatever runs outside the queue (the dispatcher's "optimize now") is ordered by the plan's
optimistic lock: a plan is stored only if the stored one is still the version this run read and
was computed from inputs no newer than this run's (`repository.save_plan`). A run that loses
re-reads and tries again, or stops when the stored plan is already at least as new.

`replan` reads the stored plan *before* the inputs, so a run whose inputs are older than a plan
written meanwhile is always refused, by one guard or the other.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date

from aws_lambda_powertools.utilities.batch import (SqsFifoPartialProcessor, process_partial_response)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from homevisits import messaging, settings
from homevisits.booking_state import BookingStatus as S
from homevisits.clock import default_clock
from homevisits.errors import DayOver
from homevisits.observability import get_logger
from homevisits.regions import load_config, parse_region_day, region_day_key

from dispatch import live, repository
from dispatch.builder import build_problem
from dispatch.kpis import timeliness
from dispatch.plans import Plan, changed_clinicians, known_places, plan_from_solution, previous_routes
from dispatch.travel_providers import provider_for

logger = get_logger("replan-worker")
settings.get()  # cold start: a bad environment fails here, never in a request


def optimize_budget(requested: float | None = None) -> float:
    """The solver budget of a dispatcher's "optimize now": the request's (the API refuses more than
    `settings.SOLVER_TIME_LIMIT_MAX_S`, so every accepted value is honoured), else the settings'."""
    return requested if requested is not None else settings.get().optimize_time_limit_s


def scaled_budget(limit_s: float, n_jobs: int) -> float:
    """Background re-plans of small days converge in a fraction of a second: spend ~0.1 s per
    visit (at least 0.5 s), never more than `limit_s`, so a busy queue keeps moving."""
    return min(limit_s, max(0.5, 0.1 * n_jobs))


@dataclass
class ReplanResult:
    plan: Plan | None
    stored: bool
    skipped: bool = False  # inputs unchanged since the stored plan
    changed: list | None = None


def _empty_solution(problem):
    from dispatch.problem import Solution
    return Solution(routes=(), unassigned=tuple(j.id for j in problem.jobs), cost=0, duration=0, service=0,
                    waiting_time=0)


def _solve(problem, budget_s: float):
    """Solve; if the visits under way cannot be finished inside their clinicians' shifts (they
    overran), let those clinicians work over rather than fail the whole region-day."""
    from dispatch.optimizer import solve  # OR-Tools only on the optimize path
    from dispatch.problem import UNBOUNDED_END
    try:
        return solve(problem, budget_s)
    except (RuntimeError, ValueError):  # the optimizer's "no solution" / "locks infeasible"
        if not problem.locked:
            raise
        logger.warning("locked routes overrun their shifts: planning them with overtime")
        vehicles = tuple(replace(v, time_window=(v.time_window[0], UNBOUNDED_END)) if v.id in problem.locked else v
                         for v in problem.vehicles)
        return solve(replace(problem, vehicles=vehicles), budget_s)


def _copy_etas(plan: Plan, visits: dict) -> None:
    """Bookings show their clinician and ETA from the plan; the plan is already stored, so a failed
    copy is logged (and repaired by the next run) rather than failing the run."""
    try:
        repository.write_etas(plan, visits)
    except Exception as err:  # noqa: BLE001 - the copy is secondary to the stored plan
        logger.error("could not copy ETAs into bookings", extra={"region_day": plan.region_day,
                                                                   "error_type": type(err).__name__})


def behind_the_clock(plan: Plan, now) -> bool:
    """Has the day overtaken the plan: a visit not yet under way whose ETA is already past? Then
    the same inputs still need a new plan (from now on), so a scheduled run re-plans it."""
    from homevisits.clock import parse_utc
    return any(s.get("status") == S.CONFIRMED and parse_utc(s["eta"]) < now
               for r in plan.routes for s in r.get("stops", []))


def replan(region_id: str, day: date, *, time_limit_s: float, trigger: str = "replan", force: bool = False,
           clock=None, attempts: int = 3) -> ReplanResult:
    """Compute and store a new plan of one region-day; publish PlanChanged when one was stored.

    `force` re-solves even when nothing changed since the stored plan (the dispatcher's optimize).
    Raises repository.StalePlan if every attempt lost to concurrent writers, ValueError for a
    budget no Lambda of the template could honour (above `settings.SOLVER_TIME_LIMIT_MAX_S`)."""
    if not 0 < time_limit_s <= settings.SOLVER_TIME_LIMIT_MAX_S:
        raise ValueError(f"time_limit_s must be in (0, {settings.SOLVER_TIME_LIMIT_MAX_S}]")
    config = load_config()
    region = config.region(region_id)
    clock = clock or default_clock()
    if day < region.local_date(clock.now()):
        # A past day's plan is the record of what happened: it is never re-planned.
        if force:
            raise DayOver(f"{day.isoformat()} is over: its plan is the record of the day and is not re-planned")
        return ReplanResult(repository.get_plan(region.id, day), stored=False, skipped=True, changed=[])
    for _ in range(attempts):
        previous = repository.get_plan(region.id, day)
        inputs = repository.load_inputs(region, day)
        now = clock.now()
        if not force and previous is not None and previous.input_hash == inputs.input_hash \
                and not behind_the_clock(previous, now):
            # Nothing to solve; still make the bookings' ETAs agree with the stored plan (a slower
            # run's ETA writes may have landed after a newer plan's), and publish its PlanChanged
            # if the run that stored it died before it could.
            _copy_etas(previous, {v.booking_id: v for v in inputs.visits})
            _refresh_live(previous.region_day, now)
            if previous.announce is not None:
                _announce(previous)
            return ReplanResult(previous, stored=False, skipped=True, changed=[])
        pins = previous.pins if previous else {}
        built = build_problem(inputs, config.visit_types, travel=provider_for(region),
                              previous_routes=previous_routes(previous), now=now, pins=pins,
                              known_places=known_places(previous))
        if built.problem.jobs and built.problem.vehicles:
            budget = time_limit_s if force else scaled_budget(time_limit_s, len(built.problem.jobs))
            solution = _solve(built.problem, budget)
        else:
            solution = _empty_solution(built.problem)
        plan = plan_from_solution(built, solution, region=region.id, date=day.isoformat(), computed_at=now,
                                  input_version=inputs.input_version, input_hash=inputs.input_hash,
                                  trigger=trigger, late_risk_minutes=settings.get().late_risk_minutes)
        plan.solver["time_limit_s"] = time_limit_s
        plan.keep_pins(pins)
        changed = changed_clinicians(previous.routes if previous else None, plan.routes)
        pending = _live(plan, built, now)
        plan.announce = announcement(previous, plan, pending.eta_changes)
        try:
            repository.save_plan(plan, previous.version if previous else None)
        except repository.StalePlan:
            latest = repository.get_plan(region.id, day)
            if latest is not None and latest.input_version >= inputs.input_version and not force:
                logger.info("a plan at least as new is stored", extra={"region_day": plan.region_day})
                return ReplanResult(latest, stored=False)
            continue
        live.save_pending(pending, plan.version, now)
        _copy_etas(plan, built.visits)
        _announce(plan)
        logger.info("plan stored", extra={"region_day": plan.region_day, "version": plan.version,
                                          "served": plan.kpis.get("visits_served"),
                                          "unassigned": plan.kpis.get("visits_unassigned")})
        return ReplanResult(plan, stored=True, changed=changed)
    raise repository.StalePlan(f"could not store a plan of {region_day_key(region_id, day)} after {attempts} attempts")


def _refresh_live(region_day: str, now) -> None:
    """Time passed with the plan unchanged: patients whose ETA crossed a threshold are told."""
    try:
        live.refresh_day(region_day, now)
    except Exception as err:  # noqa: BLE001 - advice only; the next run tries again
        logger.error("live ETAs not refreshed", extra={"region_day": region_day, "error_type": type(err).__name__})


def _live(plan: Plan, built, now) -> "live.Pending":
    """The plan's live ETAs (dispatch.live): its stops and timeliness KPIs show them, and the
    patients whose ETA moved past the margin are listed for its PlanChanged."""
    pending = live.for_plan(plan, built.shifts, now, events_of=repository.visit_events)
    plan.kpis.update(timeliness(plan.routes, plan.unassigned, int(plan.kpis.get("late_risk_minutes", 15))))
    return pending


def announcement(previous: Plan | None, plan: Plan, eta_changes: list | None = None) -> dict:
    """What PlanChanged tells: the clinicians whose route changed, and each visit whose ETA moved
    ({booking_id, eta, previous_eta}): `eta_changes` when the live ETAs decided them (dispatch.live:
    once per threshold, against what the patient last heard), else every plan ETA that changed
    (notifications then decide which move is worth an SMS)."""
    before = previous.assignments() if previous else {}
    etas = eta_changes if eta_changes is not None else [
        {"booking_id": b, "eta": eta, "previous_eta": before[b][1]}
        for b, (_, eta) in sorted(plan.assignments().items()) if b in before and before[b][1] != eta]
    return {"clinicians": changed_clinicians(previous.routes if previous else None, plan.routes), "eta_changes": etas}


def _announce(plan) -> None:
    """PlanChanged on the bus, then the plan's pending announcement removed (a failure in between
    publishes it again on the next run: consumers get it at least once)."""
    announce = plan.announce or {}
    messaging.publish(messaging.SOURCE_DISPATCH, "PlanChanged",
                      {"region_day": plan.region_day, "version": plan.version,
                       "clinicians": list(announce.get("clinicians", [])),
                       "eta_changes": list(announce.get("eta_changes", []))})
    repository.mark_announced(plan)


def steer(region_id: str, day: date, move, *, plan_version: int, clock=None) -> Plan:
    """Apply a dispatcher's move (dispatch.steering.Move) to the stored plan and store the result as
    the next version. Raises repository.StalePlan when `plan_version` is not the stored one (or a
    concurrent writer won), LookupError when there is no plan or the visit is not in it, and
    steering.MoveRefused when the move breaks the plan (nothing is stored then)."""
    from dispatch.steering import apply_move, break_positions

    config = load_config()
    region = config.region(region_id)
    now = (clock or default_clock()).now()
    previous = repository.get_plan(region.id, day)
    if previous is None:
        raise LookupError("no plan for this day yet")
    if previous.version != plan_version:
        raise repository.StalePlan(f"the plan is at version {previous.version}, not {plan_version}")
    inputs = repository.load_inputs(region, day)
    # the moved visit enters the problem free of its old pin (a visit kept out can come back)
    others = {b: c for b, c in previous.pins.items() if b != move.booking_id}
    built = build_problem(inputs, config.visit_types, travel=provider_for(region),
                          previous_routes=previous_routes(previous), now=now, pins=others)
    _, pins, solution = apply_move(built, previous_routes(previous), previous.pins, move,
                                   breaks_at=break_positions(previous.routes))
    # the move's own exclusion (taken out of the routes) is part of this plan already
    if move.clinician_id is None:
        built.excluded[move.booking_id] = "unassigned_by_dispatcher"
        solution = replace(solution, unassigned=tuple(j for j in solution.unassigned
                                                      if built.job_booking[j] != move.booking_id))
    plan = plan_from_solution(built, solution, region=region.id, date=day.isoformat(), computed_at=now,
                              input_version=max(inputs.input_version, previous.input_version),
                              input_hash=previous.input_hash if previous.input_hash == inputs.input_hash else "",
                              trigger="move", late_risk_minutes=settings.get().late_risk_minutes)
    plan.keep_pins(pins)
    pending = _live(plan, built, now)
    plan.announce = announcement(previous, plan, pending.eta_changes)
    repository.save_plan(plan, previous.version)
    live.save_pending(pending, plan.version, now)
    _copy_etas(plan, built.visits)
    _announce(plan)
    logger.info("plan moved by hand", extra={"region_day": plan.region_day, "version": plan.version})
    return plan


processor = SqsFifoPartialProcessor()


def lambda_handler(event: dict, context) -> dict:
    """SQS FIFO batch: each region-day is re-planned once per batch, whatever its message count.
    A failure marks that message and the rest of the batch as failed (FIFO order is kept)."""
    done: set[str] = set()
    limit = settings.get().replan_time_limit_s

    def handle(record: SQSRecord):
        region_day = json.loads(record.body)["region_day"]
        if region_day in done:
            return
        region, day = parse_region_day(region_day)
        result = replan(region, day, time_limit_s=limit, trigger="replan")
        done.add(region_day)
        return {"stored": result.stored, "skipped": result.skipped}

    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
