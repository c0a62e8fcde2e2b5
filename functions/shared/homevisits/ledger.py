"""A region-day's capacity ledger, stored in shards so a booking writes only the route it changes.

The ledger (docs/data-model.md) is what makes "no accepted booking is unservable" exact: the day's
shifts, the visits holding capacity and the routes proving they fit (`homevisits.capacity`). Kept as
one item it grew ~310 bytes a visit, hit DynamoDB's 400 KB item limit near 1 300 visits, and every
booking rewrote (and fought over) the whole day (docs/benchmarks-scale.md).

Shards are independent by construction, so a shard's routes proving its own visits is enough:
- a clinician's shift, route and the visits on it form the shard `{skill}#route#{clinician_id}`;
- clinicians of a skill whose visits end with a video call (nurses: the remote doctors are one
  resource of the region-day, shared by all their routes) share one shard `{skill}#pool`. That shard
  is bounded by the remote doctors' capacity, not by the size of the day. The doctors on shift for
  those video calls (a doctor's shift with `video_calls`: no route) live in that shard too.
A visit lives in the shard of the route that serves it; a visit on no route (a lapsed hold kept
until it is released) stays where it was. Every shard is written conditioned on its own version, so
two bookings conflict only when they change the same route.

`DayLedger` exposes the merged `shifts`, `visits` and `routes` maps the capacity check reads, and
`changed()` gives back only the shards whose content differs from what was read. `around()` narrows
the day to the routes that could serve one visit (the check then costs the same on any day size).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, tzinfo

from homevisits import capacity, video_calls

# Routes a booking is checked against: the nearest ones of its skill that work during its window.
NEIGHBOUR_ROUTES = 8


@dataclass
class Shard:
    """One stored item of a region-day's ledger (plain data; persistence.ledger stores it)."""
    key: str
    shifts: dict = field(default_factory=dict)
    visits: dict = field(default_factory=dict)
    routes: dict = field(default_factory=dict)
    version: int | None = None  # None: not stored yet

    def content(self) -> tuple[dict, dict, dict]:
        return (self.shifts, self.visits, self.routes)


def pooled_skills(config) -> frozenset[str]:
    """Skills whose visits hold a video call with a remote doctor: their routes share one shard."""
    return frozenset(vt.skill for vt in config.visit_types.values() if vt.video_call_minutes)


def shard_key(clinician_id: str, skill: str, pooled: frozenset[str], on_calls: bool = False) -> str:
    """The shard of a clinician's shift; a doctor on video calls joins the pool whose calls they take."""
    if on_calls and pooled:
        return f"{min(pooled)}#pool"
    return f"{skill}#pool" if skill in pooled else f"{skill}#route#{clinician_id}"


class DayLedger:
    """The merged view of a region-day's shards (all of them, or those of one skill)."""

    def __init__(self, region_day: str, shards: list[Shard], pooled: frozenset[str]):
        self.region_day = region_day
        self.pooled = pooled
        self._shards = {s.key: s for s in shards}
        self._read = {s.key: s.content() for s in shards}
        self._home: dict[str, str] = {}
        self.shifts: dict = {}
        self.visits: dict = {}
        routes: dict = {}
        for s in shards:
            self.shifts.update(s.shifts)
            self.visits.update(s.visits)
            routes.update(s.routes)
            self._home.update({bid: s.key for bid in s.visits})
        self.routes: dict | None = routes or None

    @property
    def version(self) -> int:
        """Grows with every write to any shard read (shards are never deleted)."""
        return sum(s.version or 0 for s in self._shards.values())

    def _key_of(self, clinician_id: str) -> str:
        raw = self.shifts.get(clinician_id)
        if raw is None:  # a route whose shift is gone: keep it where it was
            for key, s in self._shards.items():
                if clinician_id in s.routes or clinician_id in s.shifts:
                    return key
            return f"unknown#route#{clinician_id}"
        return shard_key(clinician_id, raw["role"], self.pooled, video_calls.on_calls(raw))

    def split(self) -> dict[str, Shard]:
        """The merged maps cut into shards again (content only; versions as read)."""
        out: dict[str, Shard] = {key: Shard(key, version=s.version) for key, s in self._shards.items()}

        def shard(key: str) -> Shard:
            if key not in out:
                out[key] = Shard(key)
            return out[key]

        on_route: dict[str, str] = {}
        for cid, raw in (self.shifts or {}).items():
            shard(self._key_of(cid)).shifts[cid] = raw
        for cid, seq in (self.routes or {}).items():
            key = self._key_of(cid)
            shard(key).routes[cid] = list(seq)
            on_route.update({bid: key for bid in seq})
        for bid, raw in (self.visits or {}).items():
            key = on_route.get(bid) or self._home.get(bid) or f"{raw.get('skill', 'unknown')}#unrouted"
            shard(key).visits[bid] = raw
        return out

    def changed(self) -> list[Shard]:
        """The shards to write: those whose content differs from what was read (new ones included)."""
        # Dict equality: values carried over from the read are the same objects, so unchanged
        # shards compare by identity, not by walking every visit.
        return [s for key, s in sorted(self.split().items()) if s.content() != self._read.get(key, ({}, {}, {}))]

    def take(self, plan: capacity.Plan) -> None:
        """Adopt the routes of a plan made for a part of the day (`around`): its visits leave any
        other route they were still listed on (a lapsed hold, a visit being moved)."""
        seqs = plan.sequences()
        placed = {b for seq in seqs.values() for b in seq}
        routes = {c: [b for b in seq if b not in placed] for c, seq in (self.routes or {}).items() if c not in seqs}
        routes.update(seqs)
        self.routes = routes

    def around(self, visit: capacity.Visit, day: date, tz: tzinfo, k: int = NEIGHBOUR_ROUTES) -> "DayLedger":
        """The part of the day that may take `visit`: the `k` routes of its skill whose shift covers
        its window, nearest first (to their start or any stop), or the whole pool of a pooled skill.

        Exact, not an approximation of the invariant: shards share no constraint, so routes proving
        this part plus the untouched shards prove the whole day. A visit that would only fit on a
        route further away is refused (conservative)."""
        return self._part(visit.skill, visit.location, (visit.earliest, visit.latest), day, tz, k, ())

    def around_clinician(self, clinician_id: str, day: date, tz: tzinfo, k: int = NEIGHBOUR_ROUTES) -> "DayLedger":
        """The part of the day a change of one clinician's shift can touch: its own route and the `k`
        nearest routes of the same skill (which may take its visits over)."""
        raw = self.shifts[clinician_id]
        if video_calls.on_calls(raw):  # their calls are the pool's: the pool is what can change
            return self._part(min(self.pooled) if self.pooled else raw["role"], (0.0, 0.0), None, day, tz, k,
                              (clinician_id,))
        loc = raw["start_location"]
        return self._part(raw["role"], (float(loc["lat"]), float(loc["lon"])), None, day, tz, k, (clinician_id,))

    def _part(self, skill: str, point, window, day, tz, k, include) -> "DayLedger":
        if skill in self.pooled:
            keys = {shard_key("", skill, self.pooled)} | {self._key_of(cid) for cid in include}
        else:
            # Nearness only ranks candidates (any choice keeps the invariant exact), so a flat-earth
            # squared distance does: a fifth of haversine's cost over every stop of the day.
            lat0, lon0 = point
            kx = math.cos(math.radians(lat0)) ** 2
            routes, visits = self.routes or {}, self.visits
            scored = []
            for cid, raw in self.shifts.items():
                if raw.get("role") != skill or cid in include or video_calls.on_calls(raw):
                    continue
                s = capacity.shift_from_ledger(cid, raw, day, tz)
                if window is not None and (s.end < window[0] or s.start > window[1]):
                    continue
                near = (s.start_location[0] - lat0) ** 2 + kx * (s.start_location[1] - lon0) ** 2
                for b in routes.get(cid, ()):
                    v = visits.get(b)
                    if v is not None:
                        near = min(near, (float(v["lat"]) - lat0) ** 2 + kx * (float(v["lon"]) - lon0) ** 2)
                scored.append((near, cid))
            keys = {self._key_of(cid) for cid in include} | {self._key_of(cid) for _, cid in sorted(scored)[:k]}
        part = DayLedger(self.region_day, [], self.pooled)
        part.shifts = {c: r for c, r in self.shifts.items() if self._key_of(c) in keys}
        part.routes = {c: seq for c, seq in (self.routes or {}).items() if self._key_of(c) in keys} or None
        routed = {b for seq in (part.routes or {}).values() for b in seq}
        part.visits = {b: r for b, r in self.visits.items() if b in routed or self._home.get(b) in keys}
        return part
