"""The fee rules: regional fee, children, frikort (doctor only), high-cost protection, Norway."""
from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest

import homevisits.regions as regions
from homevisits.tariff import FeeQuote, cancellation_fee, quote_fee

VISIT_DAY = date(2026, 12, 1)
ADULT = date(1981, 12, 18)
FRIKORT = {"number": "FK-123456", "valid_until": "2027-03-01", "region": "stockholm"}


@pytest.fixture(scope="module")
def config():
    return regions.load_config()


@pytest.fixture(scope="module")
def config_with_norway():
    """The shipped config plus a Norwegian region charging 350 NOK: regions are data, not code."""
    raw = json.loads((Path(regions.__file__).parent / "config" / "service.json").read_text())
    raw = copy.deepcopy(raw)
    oslo = copy.deepcopy(raw["regions"]["stockholm"])
    oslo.update({"name": "Oslo", "country": "NO", "currency": "NOK", "time_zone": "Europe/Oslo",
                 "postal_codes": {"include": [["0001", "1299"]], "exclude": []},
                 "fees": {"doctor": 35000, "nurse": 35000, "late_cancellation": 40000, "no_show": 40000}})
    raw["regions"]["oslo"] = oslo
    return regions.config_from_dict(raw)


def test_an_adult_pays_the_regional_fee_in_ore(config):
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, None, 0) == FeeQuote(35000, "SEK", "standard")


def test_a_nurse_visit_costs_the_same_by_default(config):
    assert quote_fee(config, config.region("skane"), "nurse", ADULT, VISIT_DAY, None, 0).amount == 35000


def test_children_under_18_pay_nothing_in_sweden(config):
    child = date(2010, 6, 1)
    assert quote_fee(config, "stockholm", "doctor", child, VISIT_DAY, None, 0) == FeeQuote(0, "SEK", "under_18")
    assert quote_fee(config, "stockholm", "nurse", child, VISIT_DAY, None, 0).reason == "under_18"


def test_the_18th_birthday_ends_the_exemption(config):
    turns_18_on_visit = date(2008, 12, 1)
    turns_18_next_day = date(2008, 12, 2)
    assert quote_fee(config, "stockholm", "doctor", turns_18_on_visit, VISIT_DAY, None, 0).amount == 35000
    assert quote_fee(config, "stockholm", "doctor", turns_18_next_day, VISIT_DAY, None, 0).amount == 0


def test_a_valid_frikort_makes_a_doctor_visit_free(config):
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, FRIKORT, 0) == FeeQuote(0, "SEK", "frikort")


def test_a_frikort_from_another_swedish_region_is_honoured(config):
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, {**FRIKORT, "region": "skane"}, 0).amount == 0


def test_a_frikort_never_covers_the_privately_financed_nurse_visit(config):
    assert quote_fee(config, "stockholm", "nurse", ADULT, VISIT_DAY, FRIKORT, 0) == FeeQuote(35000, "SEK", "standard")


def test_an_expired_frikort_is_not_honoured(config):
    expired = {**FRIKORT, "valid_until": "2026-11-30"}
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, expired, 0).amount == 35000
    last_day = {**FRIKORT, "valid_until": "2026-12-01"}
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, last_day, 0).amount == 0


def test_a_frikort_without_number_or_with_a_bad_date_is_not_honoured(config):
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, {**FRIKORT, "number": ""}, 0).amount == 35000
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, {**FRIKORT, "valid_until": "soon"}, 0).amount == 35000


def test_a_frikort_does_not_count_in_a_country_without_frikort(config_with_norway):
    q = quote_fee(config_with_norway, "oslo", "doctor", ADULT, VISIT_DAY, FRIKORT, 0)
    assert q == FeeQuote(35000, "NOK", "standard")


def test_a_frikort_issued_in_another_country_is_not_honoured(config_with_norway):
    norwegian_card = {**FRIKORT, "region": "oslo"}
    assert quote_fee(config_with_norway, "stockholm", "doctor", ADULT, VISIT_DAY, norwegian_card, 0).amount == 35000


def test_norway_charges_350_nok_and_has_no_swedish_exemptions(config_with_norway):
    child = date(2015, 1, 1)
    assert quote_fee(config_with_norway, "oslo", "doctor", ADULT, VISIT_DAY, None, 0) == FeeQuote(35000, "NOK", "standard")
    # the under-18 exemption and the high-cost cap are Swedish rules
    assert quote_fee(config_with_norway, "oslo", "doctor", child, VISIT_DAY, None, 0).amount == 35000
    assert quote_fee(config_with_norway, "oslo", "doctor", ADULT, VISIT_DAY, None, 200000).amount == 35000


def test_fees_below_the_high_cost_cap_are_charged_in_full(config):
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, None, 80000) == FeeQuote(35000, "SEK", "standard")


def test_crossing_the_high_cost_cap_charges_only_the_remainder(config):
    q = quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, None, 100000)
    assert q == FeeQuote(15000, "SEK", "high_cost_cap")


def test_a_cap_remainder_below_the_minimum_card_charge_is_waived(config):
    """Stripe cannot charge less than 3.00 SEK: 2.99 SEK left under the cap costs nothing, 3.00 SEK is charged."""
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, None, 115000 - 299) == \
        FeeQuote(0, "SEK", "high_cost_cap")
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, None, 115000 - 300) == \
        FeeQuote(300, "SEK", "high_cost_cap")


def test_at_or_above_the_high_cost_cap_the_visit_is_free(config):
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, None, 115000) == FeeQuote(0, "SEK", "high_cost_cap")
    assert quote_fee(config, "stockholm", "doctor", ADULT, VISIT_DAY, None, 140000).amount == 0


def test_the_high_cost_cap_does_not_cover_the_privately_financed_nurse_visit(config):
    assert quote_fee(config, "stockholm", "nurse", ADULT, VISIT_DAY, None, 115000).amount == 35000


def test_late_cancellation_and_no_show_cost_400_sek(config):
    assert cancellation_fee(config.region("stockholm"), "late") == 40000
    assert cancellation_fee(config.region("skane"), "no_show") == 40000


def test_an_unknown_visit_type_or_fee_kind_is_refused(config):
    from homevisits.errors import InvalidRequest
    with pytest.raises(InvalidRequest):
        quote_fee(config, "stockholm", "dentist", ADULT, VISIT_DAY, None, 0)
    with pytest.raises(InvalidRequest):
        cancellation_fee(config.region("stockholm"), "early")


def test_the_high_cost_protections_twelve_months_are_calendar_months():
    """12 months back from 1 March 2028 is 1 March 2027 (365 days would be 2 March: 2028 is a leap year)."""
    from datetime import datetime, timezone
    from homevisits.tariff import cap_period_start
    assert cap_period_start(datetime(2028, 3, 1, 9, tzinfo=timezone.utc)) == datetime(2027, 3, 1, 9, tzinfo=timezone.utc)
    assert cap_period_start(datetime(2028, 2, 29, tzinfo=timezone.utc)).date() == date(2027, 2, 28)
    assert cap_period_start(datetime(2026, 12, 5, tzinfo=timezone.utc)).date() == date(2025, 12, 5)
