"""Personal numbers: check digits, birth dates, samordningsnummer, fødselsnummer, and keyed hashes."""
from __future__ import annotations

from datetime import date

import pytest

from homevisits.errors import InvalidPersonalNumber
from homevisits.identity import parse_personal_number, patient_key

TODAY = date(2026, 11, 25)


def test_a_personnummer_in_any_usual_format_gives_the_same_person():
    """12 digits with or without dash, or 10 digits: one normalised number and one birth date."""
    forms = ["19811218-9876", "198112189876", "811218-9876", "8112189876", " 19811218 9876 "]
    parsed = {parse_personal_number(f, "SE", today=TODAY) for f in forms}
    assert len(parsed) == 1
    pn = parsed.pop()
    assert (pn.country, pn.digits, pn.birth_date) == ("SE", "198112189876", date(1981, 12, 18))
    assert len({patient_key(f) for f in forms}) == 1


def test_a_wrong_check_digit_is_refused_without_echoing_the_number():
    with pytest.raises(InvalidPersonalNumber) as e:
        parse_personal_number("19811218-9875", "SE", today=TODAY)
    assert "9875" not in e.value.message


def test_a_samordningsnummer_is_accepted_with_its_real_birth_date(pnr):
    """Day of birth plus 60, valid Luhn digit: a coordination number for 3 March 1990."""
    pn = parse_personal_number(pnr(date(1990, 3, 3), coordination=True), "SE", today=TODAY)
    assert pn.coordination and pn.birth_date == date(1990, 3, 3)


def test_a_ten_digit_number_of_a_centenarian_uses_the_plus_sign(pnr):
    plus = pnr(date(1920, 5, 17)).replace("-", "+")[2:]
    assert parse_personal_number(plus, "SE", today=TODAY).birth_date == date(1920, 5, 17)
    minus = pnr(date(2020, 5, 17))[2:]
    assert parse_personal_number(minus, "SE", today=TODAY).birth_date == date(2020, 5, 17)


def test_an_impossible_date_is_refused(pnr):
    with pytest.raises(InvalidPersonalNumber):
        parse_personal_number(pnr(date(2001, 1, 1)).replace("20010101", "20011341"), "SE", today=TODAY)


def test_a_norwegian_fodselsnummer_is_validated_with_both_check_digits(fnr):
    fnr = fnr(date(1985, 7, 14))
    pn = parse_personal_number(fnr, "NO", today=TODAY)
    assert (pn.country, pn.birth_date) == ("NO", date(1985, 7, 14))
    bad = fnr[:-1] + str((int(fnr[-1]) + 1) % 10)
    with pytest.raises(InvalidPersonalNumber):
        parse_personal_number(bad, "NO", today=TODAY)


def test_a_child_born_this_century_in_norway(fnr):
    pn = parse_personal_number(fnr(date(2021, 2, 3), individual=612), "NO", today=TODAY)
    assert pn.birth_date == date(2021, 2, 3) and pn.age_on(TODAY) == 5


def test_age_counts_whole_years(pnr):
    pn = parse_personal_number(pnr(date(2025, 11, 26)), "SE", today=TODAY)
    assert pn.age_on(date(2026, 11, 25)) == 0 and pn.age_on(date(2026, 11, 26)) == 1


def test_the_patient_key_depends_on_the_pepper(monkeypatch):
    a = patient_key("19811218-9876")
    monkeypatch.setenv("HOMEVISITS_ID_PEPPER", "another")
    from homevisits import settings
    settings.reload()
    b = patient_key("19811218-9876")
    assert a != b and len(a) == 64 and "9876" not in a
