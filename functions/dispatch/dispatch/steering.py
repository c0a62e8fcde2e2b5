"""The dispatcher's hand on the plan: move a visit to a clinician and a position, pin it there,
unpin it, or take it out of the routes. Pure: plain data in, routes or a refusal out (no AWS, no
OR-Tools).

A move edits the stored plan's routes, never the optimizer's answer: the routes it touches are
rescheduled here (each service as early as its window allows, the lunch break placed where the
route ends earliest); the others keep their break where the stored plan has it (and so their
times: a move texts nobody on a route it did not touch), and every route of the result must pass
the independent checker. A move that
breaks a window, a shift, a skill, the lunch break or a visit under way is refused with a reason
code, and nothing changes.

Pins (`{booking_id: clinician_id}`, kept with the plan) outlive re-plans: the builder lets a
pinned visit go only to its clinician (a skill of that clinician alone), as it keeps visits under
way with theirs. `None` as the clinician means the dispatcher took the visit out of the routes; it
stays out (listed as unassigned, reason `unassigned_by_dispatcher`) until it is moved back.
"""
from __future__ import annotations

from dataclasses import dataclass

from dispatch.problem import Route, Solution, Step


class MoveRefused(Exception):
    """The move would break the plan (code: window_missed, shift_exceeded, skill_mismatch,
    break_missed, visit_under_way, clinician_not_on_shift, position_before_visits_under_way,
    invalid_position, infeasible)."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.details = details or {}


@dataclass(frozen=True)
class Move:
    booking_id: str
    clinician_id: str | None  # None: take the visit out of the routes
    position: int | None = None  # index among the clinician's stops; None: the best place
    pin: bool = False


@dataclass(frozen=True)
class _Failure:
    code: str
    job: int | None
    reached: int  # how far along the route it got (to keep the most telling failure)


def schedule_route(problem, vehicle_id: int, seq: list[int]) -> Route | _Failure:
    """The route `seq` (job ids, in order) of one vehicle with each service as early as possible,
    the break (if any) placed where the route ends earliest; or the failure of the best attempt."""
    v = problem.vehicle_by_id()[vehicle_id]
    brk = v.breaks[0] if v.breaks else None
    options = [(None, False)] if brk is None else [(k, a) for k in range(len(seq) + 1) for a in (False, True)]
    best: Route | None = None
    worst: _Failure | None = None
    for k, on_arrival in options:
        r = _walk(problem, v, seq, k, on_arrival)
        if isinstance(r, Route):
            if best is None or r.steps[-1].arrival < best.steps[-1].arrival:
                best = r
        elif worst is None or r.reached > worst.reached:
            worst = r
    if best is not None:
        return best
    assert worst is not None  # every option either routes or fails
    return worst


def _walk(problem, v, seq: list[int], brk_at: int | None, on_arrival: bool) -> Route | _Failure:
    jobs, D = problem.job_by_id(), problem.durations
    brk = v.breaks[0] if v.breaks else None
    t, loc = v.time_window[0], v.start
    steps: list[Step] = []

    def take_break(at: int) -> int | None:
        assert brk is not None
        start = max(at, min(a for a, _ in brk.time_windows))
        if not any(a <= start <= b for a, b in brk.time_windows):
            return None
        steps.append(Step("break", brk.id, start, brk.service, 0, None))
        return start + brk.service

    for i, jid in enumerate([*seq, None]):
        if brk is not None and i == brk_at and not on_arrival:
            t = take_break(t)
            if t is None:
                return _Failure("break_missed", jid, i)
        dest = jobs[jid].location if jid is not None else v.end
        arrive = t + (D[loc][dest] if loc is not None and dest is not None else 0)
        if brk is not None and i == brk_at and on_arrival:
            arrive = take_break(arrive)
            if arrive is None:
                return _Failure("break_missed", jid, i)
        if jid is None:
            if arrive > v.time_window[1]:
                return _Failure("shift_exceeded", None, i)
            steps.append(Step("end", None, arrive, 0, 0, v.end))
            break
        job = jobs[jid]
        if not job.skills <= v.skills:
            return _Failure("skill_mismatch", jid, i)
        starts = [max(arrive, a) for a, b in job.time_windows if max(arrive, a) <= b] if job.time_windows else [arrive]
        if not starts:
            return _Failure("window_missed", jid, i)
        start = min(starts)
        steps.append(Step("job", jid, start, job.service, start - arrive, job.location))
        t, loc = start + job.service, job.location
    return Route(v.id, (Step("start", None, v.time_window[0], 0, 0, v.start), *steps))


_MESSAGES = {
    "window_missed": "the visit's window (or a later visit's) cannot be kept on that route",
    "shift_exceeded": "the route would end after the clinician's shift",
    "skill_mismatch": "the clinician does not have the skill the visit needs",
    "break_missed": "the clinician's lunch break no longer fits",
}


def break_positions(routes: list[dict]) -> dict[str, int]:
    """clinician id -> how many of their stops a stored plan's route serves before its (first)
    break: the break belongs before the first stop whose ETA is after the break's start (the rule
    the live ETAs read a route by, homevisits.live_eta.route_snapshot)."""
    out = {}
    for r in routes:
        if r.get("breaks"):
            start = r["breaks"][0]["start"]
            out[r["clinician_id"]] = next((i for i, s in enumerate(r["stops"]) if s.get("eta") and s["eta"] > start),
                                          len(r["stops"]))
    return out


def keep_break(problem, vehicle_id: int, seq: list[int], position: int) -> Route | None:
    """The route `seq` with its break after its first `position` stops (taken when the clinician is
    free, else on arrival), each service as early as possible; None if that no longer fits."""
    v = problem.vehicle_by_id()[vehicle_id]
    if not v.breaks or not 0 <= position <= len(seq):
        return None
    for on_arrival in (False, True):
        routed = _walk(problem, v, seq, position, on_arrival)
        if isinstance(routed, Route):
            return routed
    return None


def _refusal(f: _Failure, built) -> MoveRefused:
    details = {"booking_id": built.job_booking.get(f.job)} if f.job is not None else {}
    return MoveRefused(f.code, _MESSAGES.get(f.code, "the move breaks the plan"), details)


def _driving(problem, v, seq: list[int]) -> int:
    jobs, D = problem.job_by_id(), problem.durations
    locs = [v.start, *(jobs[j].location for j in seq), v.end]
    return sum(D[a][b] for a, b in zip(locs, locs[1:]) if a is not None and b is not None)


def apply_move(built, sequences: dict[str, list[str]], pins: dict, move: Move,
               breaks_at: dict[str, int] | None = None) -> tuple[dict, dict, Solution]:
    """The plan after `move`: (clinician id -> booking ids, pins, Solution of `built.problem`).

    `sequences`: the stored plan's routes (clinician id -> booking ids in order); `breaks_at`: where
    their breaks are (`break_positions`): a route the move does not touch keeps its break there
    while all its stops are still in it and it still fits. Raises MoveRefused when the move breaks
    the plan, KeyError when the booking is not a visit of it."""
    problem = built.problem
    if problem.call_shifts:  # a nurse visit goes where its call finds the doctors on shift (no OR-Tools)
        from dispatch.optimizer.model import with_call_windows
        problem = with_call_windows(problem)
    booking_job, clinician_vehicle = built.booking_job(), built.clinician_vehicle()
    job = booking_job.get(move.booking_id)
    if move.booking_id not in built.visits:
        raise KeyError(move.booking_id)
    locked = {j for seq in problem.locked.values() for j in seq}
    if job in locked:
        raise MoveRefused("visit_under_way", "the visit is under way or done: it stays with its clinician")
    vehicles = problem.vehicle_by_id()
    # The stored routes in job ids; visits gone since the plan was made are dropped.
    seqs = {c: [booking_job[b] for b in seq if b in booking_job] for c, seq in sequences.items()
            if c in clinician_vehicle}
    was = next((c for c, seq in seqs.items() if job in seq), None)
    old_position = seqs[was].index(job) if was is not None else None
    for seq in seqs.values():
        if job in seq:
            seq.remove(job)
    pins = dict(pins)
    if move.clinician_id is None:
        pins[move.booking_id] = None
    else:
        target = clinician_vehicle.get(move.clinician_id)
        if target is None:
            raise MoveRefused("clinician_not_on_shift", "that clinician has no shift on this day")
        if job is None:  # excluded from the problem (no location, window passed, …) or kept out
            reason = built.excluded.get(move.booking_id, "not_plannable")
            raise MoveRefused("infeasible", f"the visit cannot be planned ({reason})", {"reason": reason})
        seq = seqs.setdefault(move.clinician_id, [])
        fixed = len(problem.locked.get(target, ()))
        if move.position is not None and move.position < fixed:
            raise MoveRefused("position_before_visits_under_way",
                              f"the first {fixed} stops are under way or done; place the visit after them")
        if move.position is not None and move.position > len(seq):
            raise MoveRefused("invalid_position", f"the route has {len(seq)} other stops")
        positions: list[int]
        if move.position is not None:
            positions = [move.position]
        elif was == move.clinician_id and old_position is not None:
            positions = [old_position]  # pin or unpin in place
        else:
            positions = list(range(fixed, len(seq) + 1))
        best, failure = None, None
        for pos in positions:
            trial = [*seq[:pos], job, *seq[pos:]]
            routed = schedule_route(problem, target, trial)
            if isinstance(routed, Route):
                cost = (_driving(problem, vehicles[target], trial), routed.steps[-1].arrival)
                if best is None or cost < best[0]:
                    best = (cost, trial)
            elif failure is None or routed.reached > failure.reached:
                failure = routed
        if best is None:
            assert failure is not None  # at least one position was tried
            raise _refusal(failure, built)
        seqs[move.clinician_id] = best[1]
        if move.pin:
            pins[move.booking_id] = move.clinician_id
        else:
            pins.pop(move.booking_id, None)
    routes = []
    for clinician, seq in sorted(seqs.items()):
        if not seq:
            continue
        untouched = clinician not in (was, move.clinician_id) and len(seq) == len(sequences.get(clinician, ()))
        kept = keep_break(problem, clinician_vehicle[clinician], seq, (breaks_at or {})[clinician]) \
            if untouched and clinician in (breaks_at or {}) else None
        routed = kept or schedule_route(problem, clinician_vehicle[clinician], seq)
        if not isinstance(routed, Route):
            if clinician in (was, move.clinician_id):
                raise _refusal(routed, built)
            raise MoveRefused("infeasible", "another route of the stored plan no longer holds: re-plan first",
                              {"clinician_id": clinician})
        routes.append(routed)
    served = {j for seq in seqs.values() for j in seq}
    solution = Solution(routes=tuple(routes), unassigned=tuple(j.id for j in problem.jobs if j.id not in served),
                        cost=sum(_driving(problem, vehicles[r.vehicle], [s.id for s in r.steps if s.id is not None
                                                                         and s.type == "job"])
                                 for r in routes), duration=0, service=0, waiting_time=0)
    from dispatch.feasibility import check
    violations, _ = check(problem, solution)
    if violations:
        raise MoveRefused("infeasible", "the move breaks the plan", {"violations": violations[:5]})
    out = {built.vehicle_clinician[r.vehicle]: [built.job_booking[s.id] for s in r.steps if s.type == "job"]
           for r in routes}
    return out, pins, solution

