"""Region-days of any size for benches and tests of the booking path at scale (issue 15): a capacity
ledger full of confirmed doctor visits that provably fit, stored directly."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta

WINDOWS = ["08:00", "10:00", "12:00", "14:00", "16:00", "18:00"]


def generate_day(region, day: date, n_visits: int, fill: int, seed: int,
                 grid: tuple[float, float, float, float] | None = None):
    """(shifts, visits, routes) of a region-day holding `n_visits` confirmed doctor visits that fit:
    ceil(n / fill) doctors 08-20 on a grid over `grid` (lat0, lon0, lat1, lon1; default around the
    region's centre), each serving up to `fill` visits within ~1 km of its start, every route
    re-checked by homevisits.capacity (a route that does not fit drops its last visits)."""
    from homevisits import capacity
    from homevisits.clock import utc_iso
    from homevisits.regions import load_config

    if grid is None:
        c = region.center
        grid = (c[0] - 0.12, c[1] - 0.2, c[0] + 0.12, c[1] + 0.2)

    vt = load_config().visit_type("doctor")
    rnd = random.Random(seed)
    n_doctors = -(-n_visits // fill)
    side = max(1, int(n_doctors ** 0.5 + 0.999))
    shifts, visits, routes = {}, {}, {}
    left = n_visits
    for c in range(n_doctors):
        cid = f"doc-{c:04d}"
        lat = grid[0] + (grid[2] - grid[0]) * ((c // side) + 0.5) / side
        lon = grid[1] + (grid[3] - grid[1]) * ((c % side) + 0.5) / side
        raw_shift = {"role": "doctor", "start": "08:00", "end": "20:00", "start_location": {"lat": lat, "lon": lon},
                     "end_location": {"lat": lat, "lon": lon}, "break": dict(capacity.DEFAULT_BREAK)}
        shift = capacity.shift_from_ledger(cid, raw_shift, day, region.tz)
        mine = []
        for k in range(min(fill, left)):
            w = WINDOWS[k % len(WINDOWS)]
            start = datetime.combine(day, datetime.strptime(w, "%H:%M").time(), tzinfo=region.tz)
            bid = "bk_" + "%026x" % rnd.getrandbits(104)
            raw = {"visit_type": "doctor", "skill": "doctor", "starts_at": utc_iso(start),
                   "ends_at": utc_iso(start + timedelta(minutes=region.window_minutes)),
                   "lat": round(lat + rnd.uniform(-0.008, 0.008), 6), "lon": round(lon + rnd.uniform(-0.015, 0.015), 6),
                   "service_s": vt.service_minutes * 60, "video_call_s": 0, "status": "confirmed",
                   "hold_expires_at": None}
            mine.append((bid, raw))
        mine.sort(key=lambda x: x[1]["starts_at"])
        while mine:
            d = capacity.Day((shift,), tuple(capacity.visit_from_ledger(b, r) for b, r in mine),
                             region.remote_doctors, region.travel or None)
            if capacity.check(d, None, {cid: [b for b, _ in mine]}, allow_rebuild=False) is not None:
                break
            mine.pop()
        shifts[cid] = raw_shift
        visits.update(mine)
        routes[cid] = [b for b, _ in mine]
        left -= len(mine)
    return shifts, visits, routes


def seed_day(rday: str, shifts: dict, visits: dict, routes: dict) -> None:
    """Store (replace) a region-day's capacity ledger."""
    from homevisits.persistence.ledger import read_day, save_day
    ledger = read_day(rday)
    ledger.shifts, ledger.visits, ledger.routes = shifts, visits, routes
    if not save_day(ledger):
        raise RuntimeError(f"{rday} changed while seeding")
