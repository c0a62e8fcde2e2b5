"""The booker must be the person the e-ID login verified (when the token says who that is)."""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from booking import service
from homevisits.auth import Caller, caller_from_event
from homevisits.errors import Forbidden, NotAllowedToBookFor
from homevisits.identity import parse_personal_number
from homevisits.regions import load_config

TODAY = date(2026, 11, 25)
ME = "19790402-2387"  # valid check digit (Luhn)
OTHER = "19850909-1234"


def _valid(raw):
    from stdnum import luhn
    d = raw.replace("-", "")[2:]
    return raw[:-1] + luhn.calc_check_digit(d[:-1])


def _check(caller, booker_raw, cfg=None):
    cfg = cfg or load_config()
    booker = parse_personal_number(_valid(booker_raw), "SE", today=TODAY)
    service._signed_in(cfg, caller, booker, TODAY)


def test_the_claim_is_read_from_the_authorizers_claims():
    event = {"requestContext": {"authorizer": {"jwt": {"claims": {
        "sub": "s", "role": "patient", "custom:personal_number": _valid(ME)}}}}}
    assert caller_from_event(event).personal_number == _valid(ME)


def test_the_signed_in_person_books_for_themselves_in_any_spelling():
    _check(Caller("s", "patient", personal_number=_valid(ME)), ME)
    _check(Caller("s", "patient", personal_number=_valid(ME).replace("-", "")), ME)
    _check(Caller("s", "patient", personal_number=_valid(ME)[2:]), ME)  # 10 digits


def test_another_adults_number_or_a_garbled_claim_is_refused():
    with pytest.raises(NotAllowedToBookFor):
        _check(Caller("s", "patient", personal_number=_valid(ME)), OTHER)
    with pytest.raises(NotAllowedToBookFor):
        _check(Caller("s", "patient", personal_number="not-a-number"), ME)


def test_without_the_claim_it_depends_on_the_deployment():
    _check(Caller("s", "patient"), ME)  # packaged config: claim optional (local tokens)
    cfg = load_config()
    strict = replace(cfg, booking={**cfg.booking, "identity_claim_required": True})
    with pytest.raises(Forbidden) as e:
        _check(Caller("s", "patient"), ME, strict)
    assert e.value.code == "identity_required"
