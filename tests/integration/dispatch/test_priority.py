"""Urgent visits first on the real local stack: when a region-day cannot hold every visit, the
optimizer keeps the urgent one and the plan shows each visit's priority."""
from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.stack


def test_an_overfull_day_keeps_the_urgent_visit(api, seed, drain):
    """One doctor, six 40-minute visits in the 08–10 window: not all can start inside it. The urgent
    one, placed farthest away (the costliest to serve), is routed; normal ones are left out."""
    s = seed.region_day(clinicians={f"doc-{uuid.uuid4().hex[:6]}": "doctor"})
    normal = [seed.booking(s, "08:00", "doctor", dlat=0.002 * i) for i in range(5)]
    urgent = seed.booking(s, "08:00", "doctor", dlat=0.12, dlon=0.1, priority="urgent")
    drain(30)
    token = api.token("dispatcher", f"disp-{uuid.uuid4().hex[:6]}", s.region)
    r = api.post(f"/regions/{s.region}/plans/{s.date}/optimize", token, {"time_limit_s": 2})
    assert r.status_code == 200, r.text
    plan = r.json()
    stops = {st["booking_id"]: st for rt in plan["routes"] for st in rt["stops"]}
    left = {u["booking_id"]: u for u in plan["unassigned"]}
    assert set(stops) | set(left) == set(normal) | {urgent}
    assert left, "the day was meant to be overfull"
    assert urgent in stops and stops[urgent]["priority"] == "urgent"
    assert all(left[b]["priority"] == "normal" for b in left)
    assert all(stops[b]["priority"] == "normal" for b in stops if b != urgent)
