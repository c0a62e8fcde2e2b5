"""Made-up people and places for the simulated day: patients with valid personnummer, phone numbers
from the range the Swedish regulator reserves for fiction, and addresses inside each region (postal
codes in the region's ranges, coordinates near its centre). Deterministic for a seed."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from stdnum import luhn
from stdnum.se import personnummer as se_pnr

FIRST_NAMES = ["Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sara", "Anders", "Elin", "Mikael", "Emma",
               "Per", "Linnea", "Nils", "Ida", "Oskar", "Maja", "Hassan", "Amina", "Ali", "Fatima", "Mohammed",
               "Sofia", "Jonas", "Eva", "Gustav", "Astrid", "Leila", "Björn", "Ingrid"]
LAST_NAMES = ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
              "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Lindberg", "Lindqvist", "Berg", "Holm",
              "Ahmed", "Hussein", "Lund", "Ek", "Sandberg", "Forsberg"]
CHILD_NAMES = ["Alva", "Noah", "Elsa", "William", "Vera", "Hugo", "Selma", "Liam", "Stella", "Adam"]

# Mobile numbers 070-174 06 05 … 070-174 06 99 are reserved by PTS for films and fiction.
FICTION_MOBILES = [f"+4670174{n:04d}" for n in range(605, 700)]


@dataclass(frozen=True)
class Area:
    """Where a region's patients live: streets, postal codes and a box around the town centre."""
    city: str
    streets: tuple[str, ...]
    postal_codes: tuple[str, ...]
    center: tuple[float, float]
    spread: tuple[float, float]  # +- degrees of lat, lon


AREAS = {
    "stockholm": Area("Stockholm", ("Drottninggatan", "Götgatan", "Sveavägen", "Hornsgatan", "Odengatan",
                                    "Fleminggatan", "Ringvägen", "Karlavägen", "Folkungagatan", "Birger Jarlsgatan"),
                      ("11122", "11135", "11346", "11424", "11527", "11634", "11726", "11821", "11254", "11359"),
                      (59.3326, 18.0649), (0.035, 0.07)),
    "skane": Area("Malmö", ("Södergatan", "Amiralsgatan", "Föreningsgatan", "Regementsgatan", "Lundavägen",
                            "Möllevångsgatan", "Ystadvägen", "Pildammsvägen", "Limhamnsvägen", "Nobelvägen"),
                  ("21122", "21134", "21145", "21212", "21421", "21432", "21517", "21619", "21744", "21765"),
                  (55.6050, 13.0038), (0.025, 0.05)),
    "vastra-gotaland": Area("Göteborg", ("Kungsgatan", "Vasagatan", "Linnégatan", "Övre Husargatan",
                                         "Storgatan", "Eklandagatan", "Första Långgatan", "Hisingsgatan",
                                         "Dr Allards gata", "Viktoriagatan"),
                            ("41103", "41119", "41121", "41255", "41301", "41314", "41458", "41664", "41705",
                             "41756"),
                            (57.7089, 11.9746), (0.03, 0.06)),
}
SHORT = {"stockholm": "sthlm", "skane": "skane", "vastra-gotaland": "vgr"}
# Outside every service area (Umeå), and a code of the "coming soon" region the demo adds (Uppsala).
OUTSIDE_POSTAL_CODE = "90325"
LAUNCHING_POSTAL_CODE = "75320"
LAUNCHING_REGION = {
    "uppsala": {
        "name": "Uppsala", "country": "SE", "currency": "SEK", "time_zone": "Europe/Stockholm",
        "status": "launching", "postal_codes": {"include": [["75000", "75999"]], "exclude": []},
        "bbox": [59.60, 17.30, 60.20, 18.10], "center": [59.8586, 17.6389],
        "opening": {"start": "08:00", "end": "20:00"}, "window_minutes": 120,
        "booking_horizon_days": 14, "remote_doctors": 1,
        "fees": {"doctor": 35000, "nurse": 35000, "late_cancellation": 40000, "no_show": 40000},
        "travel": {"detour_factor": 1.35, "speed_bands_kmh": [[2, 20], [10, 35], [None, 60]]}}}


def synthetic_personnummer(birth: date, serial: int, *, coordination: bool = False, dash: bool = True) -> str:
    """A valid Swedish personnummer 'YYYYMMDD-NNNC' for synthetic patients (demo, tests, benches);
    a samordningsnummer adds 60 to the day. The one generator of test identities."""
    day = birth.day + (60 if coordination else 0)
    nnn = f"{serial % 1000:03d}"
    body = f"{birth:%y%m}{day:02d}{nnn}"
    return f"{birth:%Y}{body[2:6]}{'-' if dash else ''}{nnn}{luhn.calc_check_digit(body)}"


def personnummer(birth: date, serial: int, female: bool) -> str:
    """A valid Swedish personnummer (the third serial digit odd for men, even for women)."""
    third = (serial // 100) % 5 * 2 + (0 if female else 1)
    number = synthetic_personnummer(birth, (serial % 100) * 10 + third)
    assert se_pnr.is_valid(number), number
    return number


@dataclass
class Person:
    name: str
    personal_number: str
    birth: date
    phone: str | None = None


@dataclass
class Patient:
    """Who books: an adult patient, possibly for a child, possibly with a frikort."""
    sub: str
    adult: Person
    address: dict
    postal_code: str
    child: Person | None = None
    frikort: dict | None = None
    symptoms: str = ""
    extra: dict = field(default_factory=dict)


SYMPTOMS = ["Öronvärk och feber sedan två dagar", "Ihållande hosta i tre veckor", "Luftvägsinfektion, trött",
            "Utslag på armarna, kliar", "Allergisk reaktion, svullna ögon", "Halsont och feber",
            "Urinvägsbesvär", "Yrsel och illamående"]


class PeopleFactory:
    """Deterministic people and addresses for the demo (seeded)."""

    def __init__(self, seed: int = 20261201):
        self.rng = random.Random(seed)
        self.serial = 0
        self.phones = iter(FICTION_MOBILES * 4)

    def _person(self, birth: date, with_phone: bool = True) -> Person:
        self.serial += 1
        female = self.rng.random() < 0.5
        first = self.rng.choice(FIRST_NAMES)
        last = self.rng.choice(LAST_NAMES)
        return Person(f"{first} {last}", personnummer(birth, self.serial * 7 + 20, female), birth,
                      next(self.phones) if with_phone else None)

    def adult_birth(self, on: date) -> date:
        return date(on.year - self.rng.randint(19, 88), self.rng.randint(1, 12), self.rng.randint(1, 28))

    def child_birth(self, on: date) -> date:
        return date(on.year - self.rng.randint(2, 12), self.rng.randint(1, 12), self.rng.randint(1, 28))

    def address(self, region: str) -> tuple[dict, str]:
        a = AREAS[region]
        lat = a.center[0] + self.rng.uniform(-a.spread[0], a.spread[0])
        lon = a.center[1] + self.rng.uniform(-a.spread[1], a.spread[1])
        postal = self.rng.choice(a.postal_codes)
        return ({"street": f"{self.rng.choice(a.streets)} {self.rng.randint(1, 80)}", "city": a.city,
                 "postal_code": postal, "door_code": f"{self.rng.randint(1000, 9999)}",
                 "lat": round(lat, 5), "lon": round(lon, 5)}, postal)

    def patient(self, region: str, on: date, *, child: bool = False, frikort: bool = False) -> Patient:
        adult = self._person(self.adult_birth(on))
        address, postal = self.address(region)
        kid = self._person(self.child_birth(on), with_phone=False) if child else None
        card = None
        if frikort:
            card = {"number": f"FK-{self.rng.randint(100000, 999999)}",
                    "valid_until": date(on.year + 1, on.month, 1).isoformat(), "region": region}
        self.serial += 1
        return Patient(sub=f"patient-{SHORT[region]}-{self.serial:03d}", adult=adult, address=address,
                       postal_code=postal, child=kid, frikort=card, symptoms=self.rng.choice(SYMPTOMS))

    def clinician_start(self, region: str) -> dict:
        a = AREAS[region]
        return {"lat": round(a.center[0] + self.rng.uniform(-a.spread[0], a.spread[0]) / 2, 5),
                "lon": round(a.center[1] + self.rng.uniform(-a.spread[1], a.spread[1]) / 2, 5)}
