"""Windows in local time across DST, the booking horizon, and regions as configuration (Norway too)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from booking.availability import bookable_window, day_windows, within_horizon
from homevisits.errors import InvalidRequest, NotServed, RegionNotOpen, WindowNotBookable
from homevisits.regions import config_from_dict, load_config

UTC = timezone.utc


@pytest.fixture
def config():
    from pathlib import Path

    import homevisits.regions as regions
    return regions._load(str(Path(regions.__file__).parent / "config" / "service.json"))  # the packaged file


def test_a_day_has_six_two_hour_windows_from_eight_to_twenty(config):
    ws = config.region("stockholm").windows(date(2026, 12, 1))
    assert [w.start_local.strftime("%H:%M") for w in ws] == ["08:00", "10:00", "12:00", "14:00", "16:00", "18:00"]
    assert ws[0].start_utc == datetime(2026, 12, 1, 7, tzinfo=UTC)  # CET = UTC+1
    assert ws[-1].end_utc == datetime(2026, 12, 1, 19, tzinfo=UTC)


@pytest.mark.parametrize("day,offset_before,offset_after", [
    (date(2026, 3, 29), 1, 2),  # spring forward at 02:00: windows are CEST (UTC+2)
    (date(2026, 10, 25), 2, 1),  # fall back at 03:00: windows are CET (UTC+1)
])
def test_windows_on_dst_switch_days_are_local_wall_clock_and_two_real_hours(config, day, offset_before, offset_after):
    region = config.region("stockholm")
    ws = region.windows(day)
    assert len(ws) == 6
    for w in ws:
        assert w.end_utc - w.start_utc == timedelta(hours=2)
        assert w.start_local.utcoffset() == timedelta(hours=offset_after)
    assert ws[0].start_utc == datetime(day.year, day.month, day.day, 8 - offset_after, tzinfo=UTC)
    prev = region.windows(day - timedelta(days=1))[0]
    assert prev.start_local.utcoffset() == timedelta(hours=offset_before)


def test_a_window_that_has_started_is_not_bookable(config):
    region = config.region("stockholm")
    now = datetime(2026, 12, 1, 9, 1, tzinfo=UTC)  # 10:01 local
    states = {w.label: ok for w, ok in day_windows(region, date(2026, 12, 1), now)}
    assert states == {"08:00": False, "10:00": False, "12:00": True, "14:00": True, "16:00": True, "18:00": True}
    with pytest.raises(WindowNotBookable):
        bookable_window(region, date(2026, 12, 1), "10:00", now)
    assert bookable_window(region, date(2026, 12, 1), "12:00", now).start_utc == datetime(2026, 12, 1, 11, tzinfo=UTC)


def test_the_booking_horizon_is_counted_in_local_days(config):
    region = config.region("stockholm")
    now = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # already 2 December in Stockholm
    assert within_horizon(region, date(2026, 12, 16), now)
    assert not within_horizon(region, date(2026, 12, 17), now)
    assert not within_horizon(region, date(2026, 12, 1), now)
    with pytest.raises(WindowNotBookable) as e:
        bookable_window(region, date(2026, 12, 17), "08:00", now)
    assert e.value.code == "outside_booking_horizon"


def test_a_time_that_is_not_a_window_start_is_refused(config):
    with pytest.raises(InvalidRequest) as e:
        bookable_window(config.region("stockholm"), date(2026, 12, 2), "09:00", datetime(2026, 12, 1, tzinfo=UTC))
    assert e.value.code == "invalid_window"


def test_postal_codes_with_or_without_a_space_find_the_region(config):
    assert config.region_for_postal_code("111 22")[0].id == "stockholm"
    assert config.region_for_postal_code("21120")[0].id == "skane"
    region, code = config.region_for_postal_code("411 01")
    assert (region.id, region.bookable, code) == ("vastra-gotaland", False, "41101")
    with pytest.raises(NotServed):
        config.region_for_postal_code("98130")
    with pytest.raises(InvalidRequest):
        config.region_for_postal_code("12 34 5 6")


def test_a_launching_region_is_visible_but_not_bookable(config):
    region = config.region("vastra-gotaland")
    with pytest.raises(RegionNotOpen):
        bookable_window(region, date(2026, 12, 2), "08:00", datetime(2026, 12, 1, tzinfo=UTC))
    assert not any(ok for _, ok in day_windows(region, date(2026, 12, 2), datetime(2026, 12, 1, tzinfo=UTC)))


def test_a_norwegian_region_is_only_configuration(norway_config):
    """NOK, Europe/Oslo, 4-digit postal codes — from config_from_dict, no code change."""
    region, code = norway_config.region_for_postal_code("0150")
    assert (region.id, region.currency, region.country, code) == ("oslo", "NOK", "NO", "0150")
    assert norway_config.region_for_postal_code("111 22")[0].id == "stockholm"  # the Swedish ones still work
    with pytest.raises(NotServed):
        norway_config.region_for_postal_code("0950")
    ws = region.windows(date(2026, 3, 29))
    assert ws[0].start_utc == datetime(2026, 3, 29, 6, tzinfo=UTC)  # 08:00 CEST in Oslo


def test_a_norwegian_config_file_loads_through_homevisits_config(tmp_path, monkeypatch, norway_raw):
    import json
    path = tmp_path / "service.json"
    path.write_text(json.dumps(norway_raw), encoding="utf-8")
    from homevisits import settings
    monkeypatch.setenv("HOMEVISITS_CONFIG", str(path))
    settings.reload()
    assert load_config().region("oslo").time_zone == "Europe/Oslo"
    monkeypatch.delenv("HOMEVISITS_CONFIG")
    settings.reload()
    with pytest.raises(NotServed):
        load_config().region("oslo")


def test_config_is_one_json_with_three_swedish_regions(norway_raw):
    raw = config_from_dict(norway_raw)
    assert {r.id for r in raw.regions.values() if r.country == "SE"} == {"stockholm", "skane", "vastra-gotaland"}
