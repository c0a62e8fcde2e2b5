"""Live ETAs of one clinician's route: recomputed from what has happened, never read off a plan.

A route is plain data (the per-route live item dispatch keeps, `homevisits.persistence.live`):

    {"start": {"lat", "lon", "at"},             the shift's start place and the plan's departure
     "stops": [{"booking_id", "lat", "lon", "window_start_at", "window_end_at", "service_s"}, ...],
     "breaks": [{"before": booking_id | None, "start", "minutes"}],   planned breaks (None: at the end)
     "events": {booking_id: {"on_the_way" | "arrived" | "completed" | "no_show": iso}},
     "position": {"lat", "lon", "at"} | None}   the clinician's last reported position

`recompute` walks the stops in route order, carrying where the clinician is and when they are free:
- a stop `completed` (or `no_show`): the clinician left it at that moment;
- a stop `arrived`: its ETA is the arrival itself; the clinician is busy there until the service
  ends, and at least until now (a visit that runs over keeps them);
- a stop `on_the_way`: they left when they tapped it (or from the position reported since), and
  drive there with the travel model;
- any later stop: they leave the previous place when free (never before now: what has not
  happened yet cannot have happened in the past), take a planned break on the way, drive there,
  and start no earlier than the window.
An ETA of a stop not yet reached is never before `now`. Pure: no I/O; times are UTC ISO strings.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from homevisits.clock import parse_utc, utc_iso
from homevisits.travel import duration_s

@dataclass(frozen=True)
class LiveEta:
    booking_id: str
    eta: str  # UTC ISO: the (expected or actual) arrival, service starting then
    state: str  # planned | en_route | arrived | done
    late: bool  # arrives (or arrived) after the window's end

    def as_dict(self) -> dict:
        return {"eta": self.eta, "state": self.state, "late": self.late}


def _point(raw: dict | None) -> tuple[float, float] | None:
    if not raw or raw.get("lat") is None or raw.get("lon") is None:
        return None
    return (float(raw["lat"]), float(raw["lon"]))


def _drive(a, b, profile) -> timedelta:
    return timedelta(seconds=duration_s(a, b, profile) if a is not None and b is not None else 0)


def recompute(route: dict, now: datetime, profile: dict | None = None) -> dict[str, LiveEta]:
    """booking id -> LiveEta for every stop of `route` (see the module's docstring), as of `now`.

    `profile`: the region's travel model (homevisits.travel); times in the result are UTC ISO."""
    start = route.get("start") or {}
    loc = _point(start)
    free = parse_utc(start["at"]) if start.get("at") else now
    events = route.get("events") or {}
    # when the clinician last told us something about this route by an event
    last_fact = max((parse_utc(at) for ev in events.values() for at in ev.values()), default=None)
    position = route.get("position") or {}
    pos_at = parse_utc(position["at"]) if position.get("at") else None
    # a reported position tells where the clinician is on the way to the first stop not reached
    # yet, as long as nothing they did since (an event) says otherwise
    fresh_at = pos_at if pos_at is not None and (last_fact is None or pos_at >= last_fact) else None
    breaks_before: dict = {}
    for b in route.get("breaks") or []:
        breaks_before.setdefault(b.get("before"), []).append(b)
    out: dict[str, LiveEta] = {}
    first_open = True
    for s in route.get("stops") or []:
        bid = s["booking_id"]
        here = _point(s)
        ev = events.get(bid) or {}
        window_start, window_end = parse_utc(s["window_start_at"]), parse_utc(s["window_end_at"])
        service = timedelta(seconds=int(s.get("service_s") or 0))
        left = ev.get("completed") or ev.get("no_show")  # the clinician left the stop then
        done_at = parse_utc(left) if left else None
        arrived = parse_utc(ev["arrived"]) if "arrived" in ev else None
        if done_at is not None:
            shown = arrived or done_at
            out[bid] = LiveEta(bid, utc_iso(shown), "done", shown > window_end)
            loc, free = here, done_at
            continue
        if arrived is not None:
            out[bid] = LiveEta(bid, utc_iso(arrived), "arrived", arrived > window_end)
            loc, free = here, max(max(arrived, window_start) + service, now)
            continue
        origin = loc
        if "on_the_way" in ev:
            leave, state = parse_utc(ev["on_the_way"]), "en_route"
        else:
            leave, state = max(free, now), "planned"
            for b in breaks_before.get(bid, []):
                leave = max(leave, parse_utc(b["start"])) + timedelta(minutes=int(b.get("minutes") or 0))
        if first_open and fresh_at is not None:
            origin = _point(position)
            leave = max(leave, fresh_at) if state == "en_route" else leave
        first_open = False
        arrival = max(leave + _drive(origin, here, profile), window_start, now)
        out[bid] = LiveEta(bid, utc_iso(arrival), state, arrival > window_end)
        loc, free = here, arrival + service
    return out


def route_snapshot(stops: list[dict], start: dict, breaks: list[dict]) -> dict:
    """The parts of a planned route the recompute needs, from the plan's stops (booking_id,
    address.lat/lon, window_*_at, service_minutes) and breaks (start, minutes), in route order:
    each break belongs before the first stop whose planned ETA is after the break's start."""
    snap = [{"booking_id": s["booking_id"], "lat": (s.get("address") or {}).get("lat"),
             "lon": (s.get("address") or {}).get("lon"), "window_start_at": s["window_start_at"],
             "window_end_at": s["window_end_at"], "service_s": int(s.get("service_minutes") or 0) * 60,
             **({"video_call": {k: s["video_call"].get(k) for k in ("doctor_name", "start", "end")}}
                if s.get("video_call") else {})}
            for s in stops]
    placed = []
    for b in breaks:
        before = next((s["booking_id"] for s in stops if s.get("eta") and s["eta"] > b["start"]), None)
        placed.append({"before": before, "start": b["start"], "minutes": int(b.get("minutes") or 0)})
    return {"start": start, "stops": snap, "breaks": placed}


def tells(etas: dict[str, LiveEta], told: dict, margin_minutes: int) -> tuple[list[dict], dict]:
    """Which patients to text, and the new record of what each was told.

    `told`: booking id -> {"eta", "late", "seq"}: the ETA the patient last heard (the first one
    computed counts as heard: the app shows it), whether they were told the window will be missed,
    and `seq`, the number of decisions to text them so far (0 before any). A patient is texted once
    per threshold: when the ETA moved more than `margin_minutes` from the one they heard, or when
    it first falls after the window's end — not on every recompute. Each decision gets the next
    `seq`: it names the decision (notifications key the text by it, so a decision delivered twice
    is one text, and an ETA told again after another is a new one).
    Answers ([{"booking_id", "eta", "previous_eta", "reason": "moved" | "late", "seq"}], the new `told`)."""
    told = {b: dict(v) for b, v in (told or {}).items()}
    out = []
    for bid, e in sorted(etas.items()):
        if e.state not in ("planned", "en_route"):
            continue
        heard = told.get(bid)
        if heard is None:
            told[bid] = {"eta": e.eta, "late": e.late, "seq": 1 if e.late else 0}
            if e.late:
                out.append({"booking_id": bid, "eta": e.eta, "previous_eta": None, "reason": "late", "seq": 1})
            continue
        moved = abs((parse_utc(e.eta) - parse_utc(heard["eta"])).total_seconds()) > margin_minutes * 60
        newly_late = e.late and not heard.get("late")
        if moved or newly_late:
            seq = next_seq(heard)
            out.append({"booking_id": bid, "eta": e.eta, "previous_eta": heard["eta"],
                        "reason": "late" if newly_late else "moved", "seq": seq})
            told[bid] = {"eta": e.eta, "late": e.late or bool(heard.get("late")), "seq": seq}
    return out, told


def next_seq(heard: dict | None) -> int:
    """The number of the next decision of what a patient hears, after `heard` (a `told` entry)."""
    return int((heard or {}).get("seq") or 0) + 1


def call_of(route: dict | None, booking_id: str, eta: str | None) -> dict | None:
    """The video call after a nurse visit as its patient sees it: the doctor's name and when the call
    is expected — when the nurse is done (live ETA + service; the planned slot without an ETA). The
    doctor's previous call running late can push it further: the nurse and the doctor see that
    (dispatch.video), the patient's one GetItem does not."""
    stop = next((s for s in (route or {}).get("stops") or [] if s["booking_id"] == booking_id), None)
    call = stop.get("video_call") if stop else None
    if stop is None or not call or not call.get("start"):
        return None
    start, end = parse_utc(call["start"]), parse_utc(call["end"])
    if eta:
        ready = parse_utc(eta) + timedelta(seconds=int(stop.get("service_s") or 0))
        start, end = ready, ready + (end - start)
    return {"doctor_name": call.get("doctor_name"), "start": utc_iso(start), "end": utc_iso(end)}


def eta_of(route: dict | None, booking_id: str, now: datetime, profile: dict | None = None) -> LiveEta | None:
    """One visit's live ETA on `route` as of `now`; None when the route does not hold it."""
    if not route or not any(s["booking_id"] == booking_id for s in route.get("stops") or []):
        return None
    return recompute(route, now, profile).get(booking_id)
