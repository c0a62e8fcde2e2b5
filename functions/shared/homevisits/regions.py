"""Regions, visit types and rules as configuration (config/service.json), and the windows they imply.

`load_config()` reads the JSON once (path from HOMEVISITS_CONFIG, else the packaged file). Regions
are data: adding Norway means adding a region with country NO, currency NOK, Europe/Oslo and 4-digit
postal codes — no code changes.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from homevisits import settings
from homevisits.errors import InvalidRequest, NotServed

POSTAL_DIGITS = {"SE": 5, "NO": 4}


def region_day_key(region_id: str, day: date | str) -> str:
    """The key of one region's local day, `stockholm#2026-12-01` (ledgers, plans, the booking index)."""
    return f"{region_id}#{day if isinstance(day, str) else day.isoformat()}"


def parse_region_day(key: str) -> tuple[str, date]:
    """(region id, local date) of a `region_day_key`; ValueError when it is not one."""
    region, sep, day = key.partition("#")
    if not sep or not region:
        raise ValueError(f"not a region-day key: {key!r}")
    return region, date.fromisoformat(day)


@dataclass(frozen=True)
class Region:
    id: str
    name: str
    country: str
    currency: str
    time_zone: str
    status: str  # open | launching
    include: tuple[tuple[str, str], ...]
    exclude: tuple[tuple[str, str], ...]
    bbox: tuple[float, float, float, float]  # lat_min, lon_min, lat_max, lon_max
    center: tuple[float, float]
    opening_start: time
    opening_end: time
    window_minutes: int
    booking_horizon_days: int
    remote_doctors: int
    fees: dict = field(hash=False, compare=False, default_factory=dict)
    travel: dict = field(hash=False, compare=False, default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def bookable(self) -> bool:
        return self.status == "open"

    def covers(self, postal_code: str) -> bool:
        inside = any(lo <= postal_code <= hi for lo, hi in self.include)
        return inside and not any(lo <= postal_code <= hi for lo, hi in self.exclude)

    def contains(self, lat: float, lon: float) -> bool:
        lat_min, lon_min, lat_max, lon_max = self.bbox
        return lat_min <= lat <= lat_max and lon_min <= lon <= lon_max

    def window_starts(self) -> list[time]:
        """Local start times of the day's windows (08:00, 10:00, …, 18:00)."""
        out, t = [], datetime.combine(date(2000, 1, 1), self.opening_start)
        end = datetime.combine(date(2000, 1, 1), self.opening_end)
        while t + timedelta(minutes=self.window_minutes) <= end:
            out.append(t.time())
            t += timedelta(minutes=self.window_minutes)
        return out

    def window(self, day: date, start: time) -> "Window":
        """The window starting at local `start` on `day`, as UTC instants (DST-correct)."""
        if start not in self.window_starts():
            raise InvalidRequest(f"{start:%H:%M} is not a window start in {self.name}",
                                 code="invalid_window")
        local_start = datetime.combine(day, start, tzinfo=self.tz)
        local_end = local_start + timedelta(minutes=self.window_minutes)
        # Arithmetic on aware datetimes with the same ZoneInfo is wall-clock; convert via UTC so a
        # window across a DST change still lasts window_minutes of real time... but windows are
        # 08–20, far from the 02:00/03:00 switch, so wall clock and real time agree here.
        return Window(day=day, start_local=local_start, end_local=local_end,
                      start_utc=local_start.astimezone(timezone.utc),
                      end_utc=local_end.astimezone(timezone.utc))

    def windows(self, day: date) -> list["Window"]:
        return [self.window(day, s) for s in self.window_starts()]

    def day_bounds_utc(self, day: date) -> tuple[datetime, datetime]:
        """Opening and closing of `day` in UTC."""
        o = datetime.combine(day, self.opening_start, tzinfo=self.tz).astimezone(timezone.utc)
        c = datetime.combine(day, self.opening_end, tzinfo=self.tz).astimezone(timezone.utc)
        return o, c

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()


@dataclass(frozen=True)
class Window:
    day: date
    start_local: datetime
    end_local: datetime
    start_utc: datetime
    end_utc: datetime

    @property
    def label(self) -> str:
        return f"{self.start_local:%H:%M}"


@dataclass(frozen=True)
class VisitType:
    id: str
    skill: str
    service_minutes: int
    video_call_minutes: int = 0


@dataclass(frozen=True)
class Config:
    regions: dict
    visit_types: dict
    booking: dict
    payments: dict
    retention: dict

    def region(self, region_id: str) -> Region:
        try:
            return self.regions[region_id]
        except KeyError:
            raise NotServed(f"unknown region {region_id!r}", code="unknown_region") from None

    def visit_type(self, visit_type: str) -> VisitType:
        try:
            return self.visit_types[visit_type]
        except KeyError:
            raise InvalidRequest(f"visit_type must be one of {sorted(self.visit_types)}",
                                 code="invalid_visit_type") from None

    def region_for_postal_code(self, raw: str) -> tuple[Region, str]:
        """The region serving a postal code, and the code normalised (digits only).

        Raises InvalidRequest for a malformed code and NotServed when no region covers it.
        """
        digits = re.sub(r"[\s\-]", "", raw or "")
        if not digits.isdigit() or len(digits) not in set(POSTAL_DIGITS.values()):
            raise InvalidRequest(f"{raw!r} is not a postal code", code="invalid_postal_code")
        for region in self.regions.values():
            if len(digits) == POSTAL_DIGITS.get(region.country, 5) and region.covers(digits):
                return region, digits
        raise NotServed("This postal code is outside our service areas.")


def _parse_time(s: str) -> time:
    return datetime.strptime(s, "%H:%M").time()


def config_from_dict(raw: dict) -> Config:
    regions = {}
    for rid, r in raw["regions"].items():
        regions[rid] = Region(
            id=rid, name=r["name"], country=r["country"], currency=r["currency"],
            time_zone=r["time_zone"], status=r["status"],
            include=tuple(tuple(x) for x in r["postal_codes"]["include"]),
            exclude=tuple(tuple(x) for x in r["postal_codes"].get("exclude", [])),
            bbox=tuple(r["bbox"]), center=tuple(r["center"]),
            opening_start=_parse_time(r["opening"]["start"]), opening_end=_parse_time(r["opening"]["end"]),
            window_minutes=r["window_minutes"], booking_horizon_days=r["booking_horizon_days"],
            remote_doctors=r.get("remote_doctors", 1), fees=dict(r["fees"]), travel=dict(r.get("travel", {})),
        )
    vts = {k: VisitType(id=k, skill=v["skill"], service_minutes=v["service_minutes"],
                        video_call_minutes=v.get("video_call_minutes", 0))
           for k, v in raw["visit_types"].items()}
    return Config(regions=regions, visit_types=vts, booking=raw["booking"], payments=raw["payments"],
                  retention=raw["retention"])


@lru_cache(maxsize=4)
def _load(path: str) -> Config:
    return config_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def load_config() -> Config:
    path = settings.get().config_path or str(Path(__file__).parent / "config" / "service.json")
    return _load(path)
