"""The video calls of nurse visits and the doctors on shift for them: one rule for booking and dispatch.

A nurse visit ends with a video call with a remote doctor, right after the nurse's service. A
dispatcher declares the doctors working remote calls on a day (a shift with `video_calls`); each
doctor holds one call at a time, inside their shift. The rule every side keeps (the booking's
capacity check, the optimizer, the feasibility checker) is a capacity profile that guarantees a
doctor for every call:

- the day is cut into *segments* at every start and end of a doctor's shift; in a segment the
  same doctors are on shift throughout;
- a call lies wholly inside one segment with a doctor on shift (it never straddles a change of
  the doctors on shift), and at no instant do more calls run than that segment has doctors.

Then every doctor on shift in a segment can take any call in it, so the calls of a segment colour
with its doctors, and `assign` (calls by start, each to the free doctor whose shift ends first) names
one for each. Without declared doctors the region's count of remote doctors holds all day.

Times are integers on any common axis (epoch seconds, seconds since local midnight). Pure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Iterable, Sequence

Interval = tuple[int, int]
Segment = tuple[int, int, int]  # (start, end, doctors on shift)


@dataclass(frozen=True)
class Doctor:
    """A doctor on shift for video calls: [start, end) on the common time axis."""
    id: str
    start: int
    end: int
    name: str | None = None


def segments(shifts: Iterable[Interval]) -> list[Segment]:
    """The stretches of constant doctors on shift, in time order, those with at least one doctor."""
    shifts = [(a, b) for a, b in shifts if a < b]
    points = sorted({t for s in shifts for t in s})
    out = []
    for a, b in zip(points, points[1:]):
        n = sum(1 for s, e in shifts if s <= a and b <= e)
        if n:
            out.append((a, b, n))
    return out


def capacity_for(segs: Sequence[Segment], start: int, end: int) -> int:
    """How many calls may run at once during a call [start, end): the doctors of the segment that
    holds it whole; 0 when it straddles a change of the doctors on shift or none is on shift."""
    for a, b, n in segs:
        if a <= start and end <= b:
            return n
    return 0


def call_start_windows(segs: Sequence[Segment], length: int) -> list[Interval]:
    """Where a call of `length` seconds may start: inside one segment, as a list of [lo, hi]."""
    return [(a, b - length) for a, b, _ in segs if b - a >= length]


def peak(calls: Iterable[Interval], start: int, end: int) -> int:
    """Most of `calls` running at one instant of [start, end)."""
    rel = [c for c in calls if c[0] < end and c[1] > start]
    best = 0
    for p in [start] + [c[0] for c in rel if c[0] > start]:
        best = max(best, sum(1 for c in rel if c[0] <= p < c[1]))
    return best


def fits(segs: Sequence[Segment], calls: Iterable[Interval], start: int, end: int) -> bool:
    """Does a call [start, end) keep the rule next to `calls` (the other calls of the day)?"""
    cap = capacity_for(segs, start, end)
    return cap > 0 and peak(calls, start, end) < cap


def violations(segs: Sequence[Segment], calls: Sequence[Interval]) -> list[str]:
    """The rule checked over a day's calls (empty: kept)."""
    errs = []
    for s, e in calls:
        if capacity_for(segs, s, e) == 0:
            errs.append(f"call [{s}, {e}) is not inside one stretch of doctors on shift")
    for a, b, n in segs:
        inside = [c for c in calls if a <= c[0] and c[1] <= b]
        k = peak(inside, a, b)
        if k > n:
            errs.append(f"{k} calls at once in [{a}, {b}) > {n} doctors on shift")
    return errs


def assign(calls: Iterable[tuple[Hashable, int, int]], doctors: Sequence[Doctor]
           ) -> tuple[dict, list]:
    """Name a doctor for each call (key, start, end): ({key: doctor id}, keys no doctor can take).

    Calls in order of start; each goes to a doctor whose shift holds it whole and who is free by
    its start, the one whose shift ends first (the others stay free for the calls that reach later).
    A doctor never holds two calls at once. Exact: when it leaves a call out, no assignment of all
    of them exists (the doctors free at a call's start differ only in when their shift ends)."""
    busy_until = {d.id: d.start for d in doctors}
    out: dict = {}
    left: list = []
    for key, s, e in sorted(calls, key=lambda c: (c[1], c[2], str(c[0]))):
        free = [d for d in doctors if d.start <= s and e <= d.end and busy_until[d.id] <= s]
        if not free:
            left.append(key)
            continue
        d = min(free, key=lambda d: (d.end, d.id))
        busy_until[d.id] = e
        out[key] = d.id
    return out, left


def expected(calendar: Sequence[tuple[Hashable, int, int]], ready: dict, shift_start: int) -> dict:
    """One doctor's calls (key, planned start, planned end) as they are now expected: each when its
    nurse is ready (`ready[key]`, the planned start when unknown), once the doctor's previous call
    is over, never before the shift; so a late visit pushes the doctor's later calls and never
    overlaps them. {key: (start, end)}."""
    out = {}
    free = shift_start
    for key, s, e in sorted(calendar, key=lambda c: (c[1], str(c[0]))):
        start = max(ready.get(key, s), free)
        out[key] = (start, start + (e - s))
        free = start + (e - s)
    return out


def on_calls(raw_shift: dict) -> bool:
    """Is a stored shift (the ledger's raw form) a doctor's shift on video calls (no route)?"""
    return bool(raw_shift.get("video_calls"))
