"""Time as a dependency: domain code takes a clock so tests control "now"."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A settable clock for tests and simulations (always timezone-aware UTC)."""

    def __init__(self, at: datetime):
        self._at = at.astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(timezone.utc)

    def advance(self, **kwargs) -> None:
        self._at += timedelta(**kwargs)


def utc_iso(dt: datetime) -> str:
    """UTC ISO-8601 with a Z, to the second: the one format times are stored in."""
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def to_ms(dt: datetime) -> datetime:
    """`dt` in UTC cut to whole milliseconds: the instant a decision is taken on and stored as."""
    dt = dt.astimezone(timezone.utc)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def utc_iso_ms(dt: datetime) -> str:
    """UTC ISO-8601 with a Z, to the millisecond (evidence of a decision taken at that instant)."""
    return to_ms(dt).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(timezone.utc)


class OffsetClock:
    """Real time shifted by an offset read from a file: the local stack's simulated time, or an
    instant it was frozen at (`frozen_at`, for tests comparing two reads of "now").

    Only ever set up locally (HOMEVISITS_CLOCK_FILE, written by the gateway's /_local/clock), so the
    demo can play a day at any hour; on AWS the variable is absent and time is the system's."""

    def __init__(self, path: str):
        self.path = path

    def now(self) -> datetime:
        import json
        from pathlib import Path
        real = datetime.now(timezone.utc)
        try:
            with open(self.path, encoding="utf-8") as f:
                state = json.load(f)
            if state.get("frozen_at"):
                return parse_utc(state["frozen_at"])
            offset = float(state.get("offset_s", 0))
        except (FileNotFoundError, ValueError, AttributeError):
            offset = 0.0
        return real + timedelta(seconds=offset) if Path(self.path).exists() else real


def default_clock() -> Clock:
    """The clock handlers pass to the domain: the system's, or the local stack's simulated one."""
    from homevisits import settings
    path = settings.get().clock_file
    return OffsetClock(path) if path else SystemClock()
