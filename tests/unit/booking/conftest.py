"""Hand-made identities and a Norwegian test region for the booking unit tests."""
from __future__ import annotations

import copy
import json
import random
from datetime import date
from pathlib import Path

import pytest
from stdnum.no import fodselsnummer

import homevisits.regions as regions_mod
from devstack.demo_data import synthetic_personnummer


def personnummer(born: date, serial: int | None = None, coordination: bool = False, dash: bool = True) -> str:
    """A valid Swedish personnummer (12 digits) for a birth date; samordningsnummer adds 60 to the day."""
    serial = random.Random(born.toordinal()).randrange(100, 999) if serial is None else serial
    return synthetic_personnummer(born, serial, coordination=coordination, dash=dash)


def fodselsnummer_for(born: date, individual: int = 123) -> str:
    """A valid Norwegian fødselsnummer (individual numbers 000-499 are born 1900-1999, 500-999 2000-2039)."""
    n9 = f"{born:%d%m%y}{individual:03d}"
    d1 = fodselsnummer.calc_check_digit1(n9)
    return n9 + d1 + fodselsnummer.calc_check_digit2(n9 + d1)


def norway_config_dict() -> dict:
    raw = json.loads((Path(regions_mod.__file__).parent / "config" / "service.json").read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw["regions"]["oslo"] = {
        "name": "Oslo", "country": "NO", "currency": "NOK", "time_zone": "Europe/Oslo", "status": "open",
        "postal_codes": {"include": [["0001", "1299"]], "exclude": [["0900", "0999"]]},
        "bbox": [59.70, 10.40, 60.20, 11.20], "center": [59.9139, 10.7522],
        "opening": {"start": "08:00", "end": "20:00"}, "window_minutes": 120,
        "booking_horizon_days": 7, "remote_doctors": 1,
        "fees": {"doctor": 35000, "nurse": 35000, "late_cancellation": 40000, "no_show": 40000},
        "travel": {"detour_factor": 1.4, "speed_bands_kmh": [[2, 18], [10, 30], [None, 50]]}}
    return raw


@pytest.fixture
def norway_config():
    return regions_mod.config_from_dict(norway_config_dict())


@pytest.fixture
def pnr():
    """personnummer(born, serial=None, coordination=False, dash=True) -> a valid number."""
    return personnummer


@pytest.fixture
def fnr():
    """fodselsnummer_for(born, individual=123) -> a valid number."""
    return fodselsnummer_for


@pytest.fixture
def norway_raw() -> dict:
    return norway_config_dict()
