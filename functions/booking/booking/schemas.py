"""Request bodies of the booking API (pydantic): shapes only; domain rules live in service.py."""
from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field

from homevisits.schema import Schema

HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class Location(Schema):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Address(Schema):
    model_config = ConfigDict(extra="ignore")
    street: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str | None = Field(default=None, max_length=10)
    door_code: str | None = Field(default=None, max_length=40)
    floor: str | None = Field(default=None, max_length=40)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Patient(Schema):
    model_config = ConfigDict(extra="ignore")
    personal_number: str = Field(min_length=10, max_length=20)
    name: str = Field(min_length=1, max_length=200)
    phone: str = Field(min_length=5, max_length=30)


class Child(Schema):
    model_config = ConfigDict(extra="ignore")
    personal_number: str = Field(min_length=10, max_length=20)
    name: str = Field(min_length=1, max_length=200)


class Frikort(Schema):
    number: str = Field(min_length=1, max_length=40)
    valid_until: dt.date
    region: str | None = Field(default=None, max_length=40)


class BookingRequest(Schema):
    """POST /bookings (ARCHITECTURE.md ⚑)."""
    model_config = ConfigDict(extra="ignore")
    visit_type: str = Field(max_length=20)
    date: dt.date
    window_start: str = Field(pattern=HHMM)
    postal_code: str = Field(max_length=10)
    address: Address
    patient: Patient
    for_child: Child | None = None
    frikort: Frikort | None = None
    symptoms: str | None = Field(default=None, max_length=20000)
    priority: Literal["urgent", "normal"] = Field(
        default="normal", description="triage: urgent visits are served first when a day cannot hold them all")


class CancelRequest(Schema):
    reason: str | None = Field(default=None, max_length=500)


class RescheduleRequest(Schema):
    date: dt.date
    window_start: str = Field(pattern=HHMM)


class ShiftBreak(Schema):
    earliest: str = Field(pattern=HHMM)
    latest: str = Field(pattern=HHMM)  # latest start of the break
    minutes: int = Field(ge=0, le=120)


class ShiftRequest(Schema):
    """PUT /regions/{region}/clinicians/{id}/shifts/{date} (ARCHITECTURE.md ⚑)."""
    model_config = ConfigDict(populate_by_name=True)
    role: Literal["doctor", "nurse"]
    start: str = Field(pattern=HHMM)
    end: str = Field(pattern=HHMM)
    start_location: Location | None = Field(
        default=None, description="where the route starts: required unless `video_calls`")
    end_location: Location | None = None
    break_: ShiftBreak | None = Field(default=None, alias="break")
    video_calls: bool = Field(
        default=False, description="a doctor on video calls from start to end (no route): joins the nurse "
                                   "visits' calls; once any is declared for a day, they replace the region's "
                                   "count of remote doctors")
    name: str | None = Field(default=None, min_length=1, max_length=80,
                             description="the clinician's name as patients and colleagues see it")
