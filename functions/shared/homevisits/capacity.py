"""Can a region-day's accepted visits (plus one more) all be served? A pure-Python feasibility check.

The booking side's answer to "does it still fit": given the clinicians' shifts and the visits that
hold capacity, find routes that serve every visit inside its window, by a clinician with the right
skill, with travel (`homevisits.travel.duration_s` on the region's profile), a lunch break per
clinician inside its break window, and — for nurse visits — a video call with a remote doctor at
the end, never more calls at once than the region has remote doctors. The routes found are the
proof and are stored with the ledger, so the next booking usually only tries to *insert* one visit
into them (a few hundred schedule evaluations, well under a millisecond per route).

Conservative by construction: every plan returned has been built by simulating the day second by
second, so an accepted visit set is always servable; a set that could fit but that the heuristic
does not find is refused (the booking is declined, never overbooked). `violations()` re-checks a
plan independently of the scheduling code.

Model (all times are integer seconds since the Unix epoch, UTC):
- a visit's service *starts* inside [earliest, latest] (the booked window: the clinician arrives
  any time inside it); the clinician stays `service_s + video_call_s` (a nurse stays with the
  patient during the doctor's call, which runs in the last `video_call_s`);
- a shift's clinician leaves `start_location` at or after `start` and is back at `end_location` by
  `end`; the break (`break_s`) starts inside [break_earliest, break_latest] (clipped to the shift;
  no break when the shift does not reach the window) and is taken between two visits, before
  driving or on arrival, never during a visit.
This is stricter than the dispatch optimizer's model (which frees the nurse during the call), so
whatever booking accepts, dispatch can plan.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from homevisits import video_calls
from homevisits.booking_state import OPEN, BookingStatus
from homevisits.travel import duration_s

Point = tuple[float, float]  # (lat, lon)


@dataclass(frozen=True)
class Shift:
    clinician_id: str
    skill: str  # "doctor" | "nurse"
    start: int
    end: int
    start_location: Point
    end_location: Point
    break_earliest: int = 0
    break_latest: int = 0  # latest *start* of the break
    break_s: int = 0

    def break_window(self) -> tuple[int, int] | None:
        """Where the break may start, clipped to the shift; None when no break is owed."""
        if self.break_s <= 0:
            return None
        lo, hi = max(self.break_earliest, self.start), min(self.break_latest, self.end - self.break_s)
        return (lo, hi) if lo <= hi else None


@dataclass(frozen=True)
class Visit:
    id: str
    skill: str
    location: Point
    earliest: int  # service start no earlier (window start)
    latest: int  # service start no later (window end)
    service_s: int
    video_call_s: int = 0

    @property
    def occupancy_s(self) -> int:
        return self.service_s + self.video_call_s


@dataclass(frozen=True)
class Stop:
    visit_id: str
    arrival: int
    start: int
    end: int  # when the clinician may leave (service and video call done)
    call: tuple[int, int] | None = None


@dataclass(frozen=True)
class Route:
    clinician_id: str
    stops: tuple[Stop, ...]
    break_start: int | None
    back_at: int
    travel_s: int


@dataclass(frozen=True)
class Plan:
    routes: tuple[Route, ...]

    def sequences(self) -> dict[str, list[str]]:
        """clinician_id -> visit ids in order: what the ledger stores as the next insertion's start."""
        return {r.clinician_id: [s.visit_id for s in r.stops] for r in self.routes}

    def route_of(self, visit_id: str) -> str | None:
        for r in self.routes:
            if any(s.visit_id == visit_id for s in r.stops):
                return r.clinician_id
        return None


@dataclass(frozen=True)
class Day:
    shifts: tuple[Shift, ...]
    visits: tuple[Visit, ...]
    remote_doctors: int = 1
    travel: dict | None = None  # a homevisits.travel profile
    # The doctors on shift for video calls ((start, end) each); when any is declared they replace
    # `remote_doctors` (homevisits.video_calls: a call inside one stretch of them, never more at once).
    call_shifts: tuple[tuple[int, int], ...] = ()


@dataclass
class _Ctx:
    day: Day
    _cache: dict = field(default_factory=dict)
    segs: list | None = None

    def __post_init__(self) -> None:
        self.segs = video_calls.segments(self.day.call_shifts) if self.day.call_shifts else None

    def travel(self, a: Point, b: Point) -> int:
        key = (a, b)
        d = self._cache.get(key)
        if d is None:
            d = self._cache[key] = duration_s(a, b, self.day.travel)
        return d


def _call_start(v: Visit, ready: int, calls: Sequence[tuple[int, int]], ctx: "_Ctx") -> int | None:
    """Earliest service start >= ready whose video call finds a free remote doctor (None: none by
    latest): one of the region's `remote_doctors`, or, when doctors are declared on shift for calls,
    a place in their stretch of the day (homevisits.video_calls)."""
    if v.video_call_s <= 0:
        return ready
    segs = ctx.segs
    if segs is None and ctx.day.remote_doctors <= 0:
        return None
    candidates = {ready} | {e - v.service_s for _, e in calls if e - v.service_s > ready}
    if segs is not None:  # a call may also wait for the next stretch of doctors on shift
        candidates |= {a - v.service_s for a, _, _ in segs if a - v.service_s > ready}
    for t in sorted(candidates):
        if t > v.latest:
            return None
        cs = t + v.service_s
        if segs is not None:
            if video_calls.fits(segs, calls, cs, cs + v.video_call_s):
                return t
        elif video_calls.peak(calls, cs, cs + v.video_call_s) < ctx.day.remote_doctors:
            return t
    return None


def _break_options(t: int, d: int, bw: tuple[int, int], b: int) -> tuple[int, int, int] | None:
    """Take the break in a gap that starts at t (free at the previous place) with a drive of d.

    Returns (break start, arrival, ready-for-service) for the better of break-before-driving and
    break-on-arrival, or None when the break window is already over."""
    best = None
    s = max(t, bw[0])
    if s <= bw[1]:
        best = (s, s + b + d, s + b + d)
    s2 = max(t + d, bw[0])
    if s2 <= bw[1] and (best is None or s2 + b < best[2]):
        best = (s2, t + d, s2 + b)
    return best


def _schedule(ctx: _Ctx, shift: Shift, seq: Sequence[Visit], calls: Sequence[tuple[int, int]],
              force_break_at: int | None = None) -> Route | None:
    """Simulate one clinician's day serving `seq` in order, as early as possible; None if impossible.

    The break is taken where it costs nothing (inside waiting time), or at the last gap before it
    would become too late; `force_break_at` (a gap index, len(seq) = before going home) overrides."""
    bw = shift.break_window()
    pending = bw is not None
    t, loc, travel = shift.start, shift.start_location, 0
    brk: int | None = None
    stops: list[Stop] = []
    for k, v in enumerate(seq):
        if v.skill != shift.skill:
            return None
        d = ctx.travel(loc, v.location)
        ready0 = max(t + d, v.earliest)
        arrival, ready = t + d, ready0
        if pending:
            opt = _break_options(t, d, bw, shift.break_s)
            if force_break_at is None:
                take = opt is not None and max(opt[2], v.earliest) <= ready0 or ready0 + v.occupancy_s > bw[1]
            else:
                take = force_break_at == k
            if take:
                if opt is None:
                    return None
                brk, arrival, ready, pending = opt[0], opt[1], max(opt[2], v.earliest), False
        if ready > v.latest:
            return None
        start = _call_start(v, ready, calls, ctx)
        if start is None or start > v.latest:
            return None
        end = start + v.occupancy_s
        call = (start + v.service_s, end) if v.video_call_s > 0 else None
        stops.append(Stop(v.id, arrival, start, end, call))
        t, loc, travel = end, v.location, travel + d
    d = ctx.travel(loc, shift.end_location)
    back = t + d
    if pending:
        if force_break_at is not None and force_break_at != len(seq):
            return None
        opt = _break_options(t, d, bw, shift.break_s)
        if opt is None:
            return None
        brk = opt[0]
        back = max(opt[1], opt[2])
    if back > shift.end:
        return None
    return Route(shift.clinician_id, tuple(stops), brk, back, travel + d)


def _schedule_any(ctx: _Ctx, shift: Shift, seq: Sequence[Visit], calls: Sequence[tuple[int, int]],
                  thorough: bool) -> Route | None:
    r = _schedule(ctx, shift, seq, calls)
    if r is not None or not thorough or shift.break_window() is None:
        return r
    for k in range(len(seq) + 1):
        r = _schedule(ctx, shift, seq, calls, force_break_at=k)
        if r is not None:
            return r
    return None


class _Builder:
    """Routes under construction, one per shift, simulated in a fixed order (by clinician id): each
    route's video calls are fitted around the calls of the routes before it, so re-simulating the
    same sequences always reproduces the same schedule."""

    def __init__(self, ctx: _Ctx):
        self.ctx = ctx
        self.order = sorted(s.clinician_id for s in ctx.day.shifts)
        self.shifts = {s.clinician_id: s for s in ctx.day.shifts}
        self.seq: dict[str, list[Visit]] = {cid: [] for cid in self.order}
        self.routes: dict[str, Route] = {}
        for cid in self.order:
            r = _schedule(ctx, self.shifts[cid], [], [])
            if r is not None:
                self.routes[cid] = r

    def _calls_before(self, i: int) -> list[tuple[int, int]]:
        return [st.call for c in self.order[:i] if c in self.routes for st in self.routes[c].stops if st.call]

    def _try(self, i: int, cand: list[Visit], before: list[tuple[int, int]], thorough: bool
             ) -> dict[str, Route] | None:
        """Routes changed by giving clinician order[i] the sequence `cand`: that route, plus the later
        routes holding video calls (theirs may have to move); None if any of them fails."""
        cid = self.order[i]
        r = (_schedule_any(self.ctx, self.shifts[cid], cand, before, thorough) if thorough
             else _schedule(self.ctx, self.shifts[cid], cand, before))
        if r is None:
            return None
        changed = {cid: r}
        old_calls = [st.call for st in self.routes[cid].stops if st.call] if cid in self.routes else []
        new_calls = [st.call for st in r.stops if st.call]
        if old_calls == new_calls:
            return changed
        acc = before + new_calls
        for later in self.order[i + 1:]:
            seq = self.seq[later]
            if not any(v.video_call_s for v in seq):
                continue
            rj = _schedule_any(self.ctx, self.shifts[later], seq, acc, thorough)
            if rj is None:
                return None
            changed[later] = rj
            acc = acc + [st.call for st in rj.stops if st.call]
        return changed

    def set_route(self, cid: str, seq: list[Visit]) -> bool:
        i = self.order.index(cid)
        changed = self._try(i, seq, self._calls_before(i), thorough=True)
        if changed is None:
            return False
        self.seq[cid] = seq
        self.routes.update(changed)
        return True

    def insert(self, v: Visit, cost: Callable[[Route, Route], float]) -> bool:
        """Cheapest feasible insertion of v anywhere; False if it fits nowhere."""
        best = None
        for thorough in (False, True):
            for i, cid in enumerate(self.order):
                shift = self.shifts[cid]
                if shift.skill != v.skill or cid not in self.routes:
                    continue
                if v.latest < shift.start or v.earliest > shift.end:
                    continue
                if thorough and shift.break_window() is None and not v.video_call_s:
                    continue  # the thorough pass only differs in break placement and call re-fits
                old, seq = self.routes[cid], self.seq[cid]
                before = self._calls_before(i) if v.video_call_s else []
                for p in range(len(seq) + 1):
                    prev_free = old.stops[p - 1].end if p else shift.start
                    prev_loc = seq[p - 1].location if p else shift.start_location
                    if prev_free + self.ctx.travel(prev_loc, v.location) > v.latest:
                        continue  # the stops before p are unchanged: v cannot be reached in time
                    if p < len(seq) and seq[p].latest < v.earliest:
                        continue  # the visit at p must start before v's window even opens
                    cand = seq[:p] + [v] + seq[p:]
                    changed = self._try(i, cand, before, thorough)
                    if changed is None:
                        continue
                    c = cost(old, changed[cid])
                    if best is None or c < best[0]:
                        best = (c, cid, cand, changed)
            if best is not None:
                break
        if best is None:
            return False
        _, cid, cand, changed = best
        self.seq[cid] = cand
        self.routes.update(changed)
        return True

    def plan(self) -> Plan:
        return Plan(tuple(self.routes[cid] for cid in self.order if cid in self.routes))


def _travel_cost(old: Route, new: Route) -> float:
    return new.travel_s - old.travel_s + 1e-3 * (new.back_at - old.back_at)


def _finish_cost(old: Route, new: Route) -> float:
    # Spreads work over clinicians: the route that finishes earliest takes the visit.
    return new.back_at + 1e-3 * (new.travel_s - old.travel_s)


def _orders(visits: Sequence[Visit], day: Day) -> list[list[Visit]]:
    per_skill: dict[str, int] = {}
    for s in day.shifts:
        per_skill[s.skill] = per_skill.get(s.skill, 0) + 1
    by_end = sorted(visits, key=lambda v: (v.latest, v.earliest, -v.occupancy_s, v.id))
    scarce = sorted(visits, key=lambda v: (per_skill.get(v.skill, 0), v.latest, -v.occupancy_s, v.id))
    return [by_end, scarce]


def rebuild(day: Day) -> Plan | None:
    """Plan every visit of the day from empty routes (greedy insertion, a few orders and costs)."""
    ctx = _Ctx(day)
    for order in _orders(day.visits, day):
        for cost in (_travel_cost, _finish_cost):
            b = _Builder(ctx)
            if all(b.insert(v, cost) for v in order):
                return b.plan()
    return None


def check(day: Day, new: Visit | None = None, hint: dict[str, list[str]] | None = None, *,
          allow_rebuild: bool = True) -> Plan | None:
    """A feasible plan for all of `day.visits` plus `new`, or None (refuse: it may not fit).

    `hint` (clinician_id -> visit ids in order, e.g. the routes stored with the ledger) is tried
    first: its routes are re-simulated, the visits it misses and `new` are inserted cheaply; when
    that fails the whole day is rebuilt from scratch (unless `allow_rebuild` is False: availability
    answers use the fast path only). Raises ValueError on duplicate visit ids."""
    visits = list(day.visits) + ([new] if new is not None else [])
    ids = [v.id for v in visits]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate visit ids")
    full = Day(day.shifts, tuple(visits), day.remote_doctors, day.travel, day.call_shifts)
    ctx = _Ctx(full)
    if hint:
        by_id = {v.id: v for v in visits}
        b = _Builder(ctx)
        placed: set[str] = set()
        ok = True
        for cid in b.order:
            seq = [by_id[i] for i in hint.get(cid, []) if i in by_id and i not in placed]
            if seq:
                if not b.set_route(cid, seq):
                    ok = False
                    break
                placed.update(v.id for v in seq)
        if ok:
            rest = sorted((v for v in visits if v.id not in placed),
                          key=lambda v: (v.latest, v.earliest, v.id))
            if all(b.insert(v, _travel_cost) for v in rest):
                return b.plan()
    elif new is not None and not day.visits:
        b = _Builder(ctx)
        return b.plan() if b.insert(new, _travel_cost) else None
    return rebuild(full) if allow_rebuild or not hint else None


REASSIGNMENT_S = 600  # a visit moved to another clinician costs as much as 10 minutes' driving


def absorb(day: Day, hint: dict[str, list[str]], *, keep: frozenset[str] = frozenset(),
           urgent: frozenset[str] = frozenset()) -> tuple[Plan, list[str]] | None:
    """The day after a shift change, with the fewest changes: (plan, visit ids it could not place).

    Every route of `hint` (clinician_id -> visit ids in order, the ledger's routes) that still holds
    is kept as it is; the visits of a route that no longer holds (its clinician left or works less)
    and those no route held are inserted one by one, `urgent` ones first, then by window, each
    where it adds the least driving, its former clinician preferred (another one costs
    REASSIGNMENT_S more). An urgent visit that fits nowhere takes the place of a normal one, which
    is then placed elsewhere if it can. What fits nowhere is returned, never dropped silently.
    `keep`: visits that must stay with their hint clinician in their hint order (under way); None
    when they cannot."""
    by_id = {v.id: v for v in day.visits}
    b = _Builder(_Ctx(day))
    home = {vid: cid for cid, seq in hint.items() for vid in seq}

    def cost_of(v: Visit) -> Callable[[Route, Route], float]:
        return lambda old, new: _travel_cost(old, new) + (0 if home.get(v.id) == new.clinician_id else REASSIGNMENT_S)

    placed: set[str] = set()
    for cid in b.order:
        seq = [by_id[i] for i in hint.get(cid, []) if i in by_id and i not in placed]
        if not seq:
            continue
        if not b.set_route(cid, seq):
            seq = [v for v in seq if v.id in keep]
            if seq and not b.set_route(cid, seq):
                return None
        placed.update(v.id for v in seq)
    if any(v in by_id and v not in placed for v in keep):
        return None  # kept visits of a clinician no longer on shift
    rest = sorted((v for v in day.visits if v.id not in placed),
                  key=lambda v: (v.id not in urgent, v.latest, v.earliest, v.id))
    left: list[str] = []
    for v in rest:
        if b.insert(v, cost_of(v)):
            continue
        bumped = _bump(b, v, cost_of(v), protected=keep | urgent) if v.id in urgent else None
        if bumped is None:
            left.append(v.id)
        elif not b.insert(bumped, cost_of(bumped)):
            left.append(bumped.id)
    return b.plan(), left


def _bump(b: _Builder, v: Visit, cost: Callable[[Route, Route], float], *, protected: frozenset[str]) -> Visit | None:
    """Make room for `v` by taking one visit (not `protected`, same skill) out of a route: the visit
    taken out, with `v` inserted; None (nothing changed) when no such swap fits."""
    for cid in b.order:
        for u in list(b.seq[cid]):
            if u.id in protected or u.skill != v.skill:
                continue
            seqs, routes = dict(b.seq), dict(b.routes)
            if b.set_route(cid, [x for x in b.seq[cid] if x.id != u.id]) and b.insert(v, cost):
                return u
            b.seq, b.routes = seqs, routes
    return None


def violations(day: Day, plan: Plan) -> list[str]:
    """Independent re-check of a plan against the day (empty list = feasible).

    Walks the plan's own timestamps; shares no code with the scheduler above."""
    errs: list[str] = []
    visits = {v.id: v for v in day.visits}
    shifts = {s.clinician_id: s for s in day.shifts}
    seen: dict[str, str] = {}
    calls: list[tuple[int, int]] = []
    for r in plan.routes:
        sh = shifts.get(r.clinician_id)
        if sh is None:
            errs.append(f"route of unknown clinician {r.clinician_id}")
            continue
        b = sh.break_s
        bw = sh.break_window()
        if bw is not None:
            if r.break_start is None:
                errs.append(f"{sh.clinician_id}: no break")
            elif not bw[0] <= r.break_start <= bw[1]:
                errs.append(f"{sh.clinician_id}: break at {r.break_start} outside {bw}")
        here, free = sh.start_location, sh.start
        brk = r.break_start if bw is not None else None
        legs = [(visits.get(s.visit_id), s) for s in r.stops] + [(None, None)]
        for v, s in legs:
            if s is not None and v is None:
                errs.append(f"unknown visit {s.visit_id}")
                continue
            dest = v.location if v is not None else sh.end_location
            arrive_by = s.start if s is not None else r.back_at
            need = duration_s(here, dest, day.travel)
            if brk is not None and free <= brk and brk + b <= arrive_by:
                need += b
                brk_used = True
            else:
                brk_used = False
            if free + need > arrive_by:
                errs.append(f"{sh.clinician_id}: cannot reach {dest} by {arrive_by} (free at {free}, needs {need})")
            if brk_used:
                brk = None
            if s is None:
                break
            if v.skill != sh.skill:
                errs.append(f"{v.id}: needs a {v.skill}, got {sh.skill} {sh.clinician_id}")
            if not v.earliest <= s.start <= v.latest:
                errs.append(f"{v.id}: starts at {s.start} outside [{v.earliest}, {v.latest}]")
            if s.end < s.start + v.service_s + v.video_call_s:
                errs.append(f"{v.id}: too short")
            if v.id in seen:
                errs.append(f"{v.id}: served twice")
            seen[v.id] = sh.clinician_id
            if v.video_call_s:
                calls.append((s.start + v.service_s, s.start + v.service_s + v.video_call_s))
            here, free = v.location, s.end
        if brk is not None:
            errs.append(f"{sh.clinician_id}: the break does not fit between the visits")
        if r.back_at > sh.end:
            errs.append(f"{sh.clinician_id}: back at {r.back_at} after the shift ends {sh.end}")
    for vid in visits:
        if vid not in seen:
            errs.append(f"{vid}: not served")
    if day.call_shifts:
        return errs + video_calls.violations(video_calls.segments(day.call_shifts), calls)
    points = sorted({c[0] for c in calls})
    for p in points:
        n = sum(1 for c in calls if c[0] <= p < c[1])
        if n > day.remote_doctors:
            errs.append(f"{n} video calls at {p} > {day.remote_doctors} remote doctors")
    return errs


# ---- the ledger's plain data <-> the check's values

DEFAULT_BREAK = {"earliest": "11:00", "latest": "13:30", "minutes": 30}


def _epoch(day, hhmm: str, tz) -> int:
    from datetime import datetime, time
    h, m = hhmm.split(":")  # "HH:MM" (strptime costs ~50 us a call; a day has hundreds)
    return int(datetime.combine(day, time(int(h), int(m)), tzinfo=tz).timestamp())


def _iso_epoch(s: str) -> int:
    from datetime import datetime
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


def shift_from_ledger(clinician_id: str, raw: dict, day, tz) -> Shift:
    """A ledger shift ({role, start "08:00", end, start_location {lat, lon}, end_location?, break?})
    on local date `day` in time zone `tz` as a Shift (DST-correct: local wall-clock times)."""
    start_loc = (float(raw["start_location"]["lat"]), float(raw["start_location"]["lon"]))
    end_raw = raw.get("end_location") or raw["start_location"]
    brk = raw.get("break") or DEFAULT_BREAK
    return Shift(clinician_id=clinician_id, skill=raw["role"], start=_epoch(day, raw["start"], tz),
                 end=_epoch(day, raw["end"], tz), start_location=start_loc,
                 end_location=(float(end_raw["lat"]), float(end_raw["lon"])),
                 break_earliest=_epoch(day, brk["earliest"], tz), break_latest=_epoch(day, brk["latest"], tz),
                 break_s=int(brk["minutes"]) * 60)


def visit_from_ledger(booking_id: str, raw: dict) -> Visit:
    """A ledger visit ({skill, starts_at, ends_at (UTC ISO), lat, lon, service_s, video_call_s}) as a Visit."""
    return Visit(id=booking_id, skill=raw["skill"], location=(float(raw["lat"]), float(raw["lon"])),
                 earliest=_iso_epoch(raw["starts_at"]), latest=_iso_epoch(raw["ends_at"]),
                 service_s=int(raw["service_s"]), video_call_s=int(raw.get("video_call_s", 0)))


def holds_capacity(raw: dict, now_iso: str) -> bool:
    """Does a ledger visit still hold capacity at `now_iso` (UTC ISO)? Expired holds do not."""
    if raw.get("status") not in OPEN:
        return False
    if raw.get("status") == BookingStatus.HELD and raw.get("hold_expires_at") and raw["hold_expires_at"] <= now_iso:
        return False
    return True


def day_from_ledger(shifts: dict, visits: dict, *, day, tz, remote_doctors: int, travel: dict | None,
                    counted: Callable[[str, dict], bool]) -> Day:
    """The check's Day from a ledger item's `shifts` and `visits` maps; `counted(id, raw)` says which
    visits hold capacity. The doctors on shift for video calls (`video_calls`) drive no route: they
    are the day's `call_shifts`, and `remote_doctors` counts only when none is declared."""
    routes = {cid: raw for cid, raw in shifts.items() if not video_calls.on_calls(raw)}
    calls = tuple(sorted((_epoch(day, raw["start"], tz), _epoch(day, raw["end"], tz))
                         for raw in shifts.values() if video_calls.on_calls(raw)))
    return Day(shifts=tuple(shift_from_ledger(cid, raw, day, tz) for cid, raw in sorted(routes.items())),
               visits=tuple(visit_from_ledger(bid, raw) for bid, raw in sorted(visits.items())
                            if counted(bid, raw)),
               remote_doctors=remote_doctors, travel=travel, call_shifts=calls)
