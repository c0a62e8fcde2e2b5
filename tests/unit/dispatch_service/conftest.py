"""Hand-made region-day data for the dispatch service's unit tests (no AWS, no network).

Stockholm, Tuesday 2026-12-01 (CET, UTC+1): local 08:00 is 07:00Z."""
from __future__ import annotations

from datetime import date, datetime, time

import pytest

from homevisits.regions import load_config

from dispatch.builder import RegionDayInputs, VisitInput, shift_from_ledger

DAY = date(2026, 12, 1)
CENTER = (59.3326, 18.0649)


@pytest.fixture(scope="session")
def config():
    from pathlib import Path

    import homevisits.regions as regions
    return regions._load(str(Path(regions.__file__).parent / "config" / "service.json"))  # the packaged file


@pytest.fixture(scope="session")
def stockholm(config):
    return config.region("stockholm")


def visit(region, booking_id: str, window: str, visit_type: str = "doctor", status: str = "confirmed",
          dlat: float = 0.0, dlon: float = 0.0, **kw) -> VisitInput:
    w = region.window(DAY, datetime.strptime(window, "%H:%M").time())
    lat, lon = CENTER[0] + dlat, CENTER[1] + dlon
    return VisitInput(booking_id=booking_id, status=status, visit_type=visit_type, starts_at=w.start_utc,
                      ends_at=w.end_utc, lat=lat, lon=lon,
                      address={"street": "Drottninggatan 1", "city": "Stockholm", "postal_code": "11122",
                               "lat": lat, "lon": lon},
                      updated_at=kw.pop("updated_at", "2026-11-25T10:00:00Z"), version=kw.pop("version", 1), **kw)


def shift(region, clinician_id: str, role: str = "doctor", start: str = "08:00", end: str = "16:00", **raw):
    return shift_from_ledger(clinician_id, {"role": role, "start": start, "end": end,
                                            "start_location": {"lat": CENTER[0], "lon": CENTER[1]}, **raw},
                             region, DAY)


def inputs(region, visits, shifts, ledger_version: int = 1) -> RegionDayInputs:
    return RegionDayInputs(region=region, day=DAY, visits=tuple(visits), shifts=tuple(shifts),
                           ledger_version=ledger_version)


class RegionDay:
    """Builders for one Stockholm region-day (DAY), handed to tests as the `rd` fixture."""

    day = DAY
    center = CENTER

    def __init__(self, region):
        self.region = region

    def visit(self, *a, **kw) -> VisitInput:
        return visit(self.region, *a, **kw)

    def shift(self, *a, **kw):
        return shift(self.region, *a, **kw)

    def inputs(self, visits, shifts, ledger_version: int = 1) -> RegionDayInputs:
        return inputs(self.region, visits, shifts, ledger_version)

    def local(self, hhmm: str) -> datetime:
        from datetime import timezone
        return datetime.combine(DAY, time.fromisoformat(hhmm), tzinfo=self.region.tz).astimezone(timezone.utc)


@pytest.fixture
def rd(stockholm) -> RegionDay:
    return RegionDay(stockholm)


class LiveStore:
    """homevisits.persistence.live in memory (the items are the real model objects, never saved),
    with its version guard: a save of an item read before another save is refused."""

    def __init__(self):
        self.items: dict = {}
        self.saves = 0

    def new_route(self, region_day, clinician_id, day_end):
        from homevisits.persistence import live
        return live.LiveRouteModel(*live.key(region_day, clinician_id), region_day=region_day,
                                   clinician_id=clinician_id)

    def _copy(self, item):
        from homevisits.persistence import live
        return live.LiveRouteModel.from_raw_data(item.serialize()) if item is not None else None

    def get_route(self, region_day, clinician_id):
        return self._copy(self.items.get((region_day, clinician_id)))

    def routes_of_day(self, region_day):
        return {c: self._copy(i) for (rd, c), i in self.items.items() if rd == region_day}

    def save_route(self, item):
        stored = self.items.get((item.region_day, item.clinician_id))
        if (stored.version if stored else None) != item.version:
            return False
        item.version = (item.version or 0) + 1
        self.items[(item.region_day, item.clinician_id)] = self._copy(item)
        self.saves += 1
        return True


@pytest.fixture
def live_store(monkeypatch):
    """dispatch.live on an in-memory store, with no visit events recorded."""
    from dispatch import live, repository
    fake = LiveStore()
    monkeypatch.setattr(live, "store", fake)
    monkeypatch.setattr(repository, "visit_events", lambda ids: {})
    return fake
