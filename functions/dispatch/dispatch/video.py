"""The nurse visits' video calls in a plan: a named doctor and a slot for each, the doctors' calendars.

After each plan (a re-plan, an optimize, a dispatcher's move) every nurse visit's call — from the
end of the nurse's service, `video_call_minutes` long — goes to a doctor on shift for video calls
(`homevisits.video_calls.assign`: free then, the shift holding the call whole, one call at a time).
The optimizer keeps the calls inside what the doctors on shift can take, so a doctor is found; a
call none can take is still shown, flagged `no_doctor_free`, and listed in the plan's
`video_calls.unassigned`, never dropped. Without a declared doctor (the region's `remote_doctors`
count) the slot is shown without a name.

Live: when visits run late or early, each doctor's calls are expected in calendar order, each when
its nurse is ready (live ETA + service) and the doctor's previous call is over (`expected`): the
nurse, the doctor and the dispatcher read the same times, and a doctor's calls never overlap.
Pure: plain dicts in and out (no AWS).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from homevisits import video_calls
from homevisits.clock import parse_utc, utc_iso

NO_DOCTOR = "no_doctor_free"


def _local(at: datetime, tz) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def _slot(start: datetime, end: datetime, tz) -> dict:
    return {"start": utc_iso(start), "end": utc_iso(end), "start_local": _local(start, tz), "end_local": _local(end, tz)}


def call_of(stop: dict) -> tuple[datetime, datetime] | None:
    """A stop's call as the plan times it: from the end of the service, `video_call_minutes` long."""
    if not stop.get("video_call_minutes"):
        return None
    start = parse_utc(stop["eta"]) + timedelta(minutes=int(stop.get("service_minutes") or 0))
    return start, start + timedelta(minutes=int(stop["video_call_minutes"]))


def assign_calls(built, routes: list[dict]) -> dict:
    """Give each stop with a video call its `video_call` (slot, doctor) and answer the plan's
    `video_calls`: {"doctors": [{clinician_id, name, shift_start, shift_end, calls: [...]}],
    "unassigned": [{booking_id, nurse_id, start, end, reason}]}. `built`: the BuiltProblem."""
    tz = ZoneInfo(built.time_zone)
    shifts = dict(getattr(built, "call_doctors", {}) or {})
    doctors = [video_calls.Doctor(cid, built.t(s.start), built.t(s.end), s.name) for cid, s in sorted(shifts.items())]
    calls, where = [], {}
    for r in routes:
        for s in r["stops"]:
            c = call_of(s)
            if c is not None:
                calls.append((s["booking_id"], built.t(c[0]), built.t(c[1])))
                where[s["booking_id"]] = (r, s, c)
    named, left = video_calls.assign(calls, doctors) if doctors else ({}, [])
    calendar: dict[str, list] = {cid: [] for cid in shifts}
    unassigned = []
    for bid, (r, s, (start, end)) in where.items():
        doctor = named.get(bid)
        vc = {**_slot(start, end, tz), "minutes": int(s["video_call_minutes"]), "doctor_id": doctor,
              "doctor_name": shifts[doctor].name if doctor else None}
        entry = {"booking_id": bid, "nurse_id": r["clinician_id"], "nurse_name": r.get("name"), **_slot(start, end, tz)}
        if doctor is not None:
            calendar[doctor].append(entry)
        elif doctors:
            vc["flag"] = NO_DOCTOR
            unassigned.append({**entry, "reason": NO_DOCTOR})
        s["video_call"] = vc
    return {"doctors": [{"clinician_id": cid, "name": s.name, "shift_start": utc_iso(s.start),
                         "shift_end": utc_iso(s.end), "shift_start_local": _local(s.start, tz),
                         "shift_end_local": _local(s.end, tz),
                         "calls": sorted(calendar[cid], key=lambda c: (c["start"], c["booking_id"]))}
                        for cid, s in sorted(shifts.items())],
            "unassigned": sorted(unassigned, key=lambda c: (c["start"], c["booking_id"]))}


def expected_slots(video: dict | None, ready: dict[str, datetime]) -> dict[str, tuple[datetime, datetime]]:
    """booking id -> the call's (start, end) as now expected: per doctor, in calendar order, when its
    nurse is ready (`ready`: live ETA + service; the planned start when unknown), once the doctor's
    previous call is over and not before their shift (homevisits.video_calls.expected)."""
    out: dict[str, tuple[datetime, datetime]] = {}
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)

    def t(at: datetime) -> int:
        return int((at - epoch).total_seconds())

    for d in (video or {}).get("doctors", []):
        cal = [(c["booking_id"], t(parse_utc(c["start"])), t(parse_utc(c["end"]))) for c in d.get("calls", [])]
        got = video_calls.expected(cal, {b: t(at) for b, at in ready.items()}, t(parse_utc(d["shift_start"])))
        out.update({b: (epoch + timedelta(seconds=a), epoch + timedelta(seconds=e)) for b, (a, e) in got.items()})
    return out
