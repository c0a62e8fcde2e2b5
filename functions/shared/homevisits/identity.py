"""Personal identity numbers: Swedish personnummer and samordningsnummer, Norwegian fødselsnummer
(and D-nummer), validated with their check digits, and a keyed hash for ledgers and logs.

`patient_key()` is an HMAC-SHA256 of the normalised number with a pepper (HOMEVISITS_ID_PEPPER), so
fee ledgers and log lines can group a patient's records without ever holding the number itself. In
production the pepper is a SecureString in SSM Parameter Store, placed in the function's
environment at deploy time (or read through Powertools `parameters`); locally a fixed dev value is
used. Rotating it re-keys every ledger, so it is set once per environment.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date

from homevisits import settings
from homevisits.errors import InvalidPersonalNumber

DEV_PEPPER = "homevisits-local-dev-pepper"


@dataclass(frozen=True)
class PersonalNumber:
    country: str  # "SE" | "NO"
    digits: str  # normalised: SE 12 digits YYYYMMDDNNNC, NO 11 digits
    birth_date: date
    coordination: bool = False  # samordningsnummer / D-nummer

    def age_on(self, day: date) -> int:
        """Whole years of age on `day`."""
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def _swedish(raw: str, today: date) -> PersonalNumber:
    from stdnum import luhn  # python-stdnum loads pydoc: only where a number is checked, not at cold start

    m = re.fullmatch(r"(\d{2})?(\d{6})([-+]?)(\d{4})", raw)
    if not m:
        raise InvalidPersonalNumber("a Swedish personal number has 10 or 12 digits")
    century, yymmdd, sep, last4 = m.groups()
    if not luhn.is_valid(yymmdd + last4):
        raise InvalidPersonalNumber("the personal number's check digit is wrong")
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    coordination = dd > 60  # samordningsnummer: the day of birth plus 60
    if coordination:
        dd -= 60
    if century:
        year = int(century) * 100 + yy
    else:
        # 10 digits: the latest century that is not in the future; "+" marks a person aged 100+.
        year = (today.year // 100) * 100 + yy
        if year > today.year:
            year -= 100
        if sep == "+":
            year -= 100
    try:
        born = date(year, mm, dd)
    except ValueError:
        raise InvalidPersonalNumber("the personal number does not hold a valid date of birth") from None
    if born > today:
        raise InvalidPersonalNumber("the personal number's date of birth is in the future")
    return PersonalNumber("SE", f"{year:04d}{mm:02d}{dd + (60 if coordination else 0):02d}{last4}", born,
                          coordination)


def _norwegian(raw: str, today: date) -> PersonalNumber:
    from stdnum.exceptions import ValidationError
    from stdnum.no import fodselsnummer

    try:
        digits = fodselsnummer.validate(raw)
        born = fodselsnummer.get_birth_date(digits)
    except ValidationError as e:
        raise InvalidPersonalNumber("the fødselsnummer is not valid") from e
    if born > today:
        raise InvalidPersonalNumber("the fødselsnummer's date of birth is in the future")
    return PersonalNumber("NO", digits, born, coordination=int(digits[0]) >= 4)


def parse_personal_number(raw: str, country: str | None = None, *, today: date | None = None) -> PersonalNumber:
    """Validate and normalise a personal number (check digits included).

    `country` ("SE"/"NO") selects the scheme; without it, 11 bare digits are Norwegian and 10/12
    digits Swedish. Raises homevisits.errors.InvalidPersonalNumber (never echoing the number)."""
    today = today or date.today()
    s = re.sub(r"\s", "", raw or "")
    if not re.fullmatch(r"[\d+\-]{10,13}", s):
        raise InvalidPersonalNumber("a personal number has 10 to 12 digits")
    if country is None:
        country = "NO" if re.fullmatch(r"\d{11}", s) else "SE"
    if country == "SE":
        return _swedish(s, today)
    if country == "NO":
        return _norwegian(s, today)
    raise InvalidPersonalNumber(f"personal numbers of {country} are not supported")


def _pepper() -> bytes:
    """HOMEVISITS_ID_PEPPER (local/tests), else the SSM SecureString named by
    HOMEVISITS_ID_PEPPER_PARAMETER (AWS; Powertools caches it for an hour). On AWS a missing pepper is an error, never the
    public dev value: hashes of personal numbers under a known pepper could be reversed."""
    config = settings.get()
    if config.id_pepper:
        return config.id_pepper.get_secret_value().encode()
    param = config.id_pepper_parameter
    if param:
        from aws_lambda_powertools.utilities import parameters
        return parameters.get_parameter(param, decrypt=True, max_age=3600).encode()
    if config.on_lambda:
        raise RuntimeError("no pepper configured for personal-number hashing")
    return DEV_PEPPER.encode()


def patient_key(personal_number: str | PersonalNumber) -> str:
    """HMAC-SHA256 hex of the normalised number: the same person always gets the same key, whatever
    the input format (10/12 digits, dash or not)."""
    pn = personal_number if isinstance(personal_number, PersonalNumber) else parse_personal_number(personal_number)
    return hmac.new(_pepper(), f"{pn.country}:{pn.digits}".encode(), hashlib.sha256).hexdigest()


def person_key(person: dict | None) -> str | None:
    """The fee ledger's key of a person as a booking stores them ({"personal_number", "key"?}): the
    key written at booking time, else computed; a stored number that no longer parses is still
    keyed (erasure and bookkeeping never fail on old data). None when there is no number."""
    person = person or {}
    if person.get("key") or person.get("patient_key"):
        return person.get("key") or person.get("patient_key")
    number = person.get("personal_number")
    if not number:
        return None
    try:
        return patient_key(number)
    except InvalidPersonalNumber:
        return keyed_hash("unparsed:" + "".join(ch for ch in str(number) if ch.isalnum()))


def keyed_hash(text: str) -> str:
    """HMAC-SHA256 hex of any text under the same pepper (e.g. stable, unguessable ids)."""
    return hmac.new(_pepper(), text.encode(), hashlib.sha256).hexdigest()
