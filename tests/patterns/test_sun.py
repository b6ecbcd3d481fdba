"""Sunrise/sunset from the NOAA equations, checked against published times and astral."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers.sun import get_astral_event_date

from custom_components.homeiq.patterns.sun import sun_event_utc


@pytest.mark.parametrize(
    ("day", "latitude", "longitude", "event", "expected_utc"),
    [
        # Amsterdam, published almanac times (CEST/CET converted to UTC), to the minute.
        (date(2026, 6, 21), 52.3676, 4.9041, "sunrise", "03:18"),
        (date(2026, 6, 21), 52.3676, 4.9041, "sunset", "20:06"),
        (date(2026, 12, 21), 52.3676, 4.9041, "sunrise", "07:48"),
        (date(2026, 12, 21), 52.3676, 4.9041, "sunset", "15:29"),
    ],
)
def test_sun_times_match_published_values(
    day: date, latitude: float, longitude: float, event: str, expected_utc: str
) -> None:
    moment = sun_event_utc(day, latitude, longitude, event)  # type: ignore[arg-type]
    assert moment is not None
    hours, minutes = map(int, expected_utc.split(":"))
    expected = datetime(day.year, day.month, day.day, hours, minutes, tzinfo=UTC)
    assert abs((moment - expected).total_seconds()) <= 120


async def test_sun_times_are_home_assistants_own_elevation_included(hass: HomeAssistant) -> None:
    """The engine's sunset is the instant HA's sun trigger fires: same library, same elevation."""
    hass.config.latitude, hass.config.longitude, hass.config.elevation = 47.27, 11.39, 574  # Innsbruck
    for day in [date(2026, 3, 20), date(2026, 6, 21), date(2026, 10, 25), date(2026, 12, 21)]:
        for event in ("sunrise", "sunset"):
            reference = get_astral_event_date(hass, event, day)
            ours = sun_event_utc(day, 47.27, 11.39, event, elevation=574)  # type: ignore[arg-type]
            assert ours is not None and reference is not None
            assert abs((ours - reference).total_seconds()) < 1, (day, event)
            # At sea level the times differ by minutes: the elevation matters.
            low = sun_event_utc(day, 47.27, 11.39, event)  # type: ignore[arg-type]
            assert low is not None and abs((low - reference).total_seconds()) > 60


def test_polar_night_and_day_have_no_sunrise() -> None:
    assert sun_event_utc(date(2026, 12, 21), 78.22, 15.65, "sunrise") is None  # Longyearbyen
    assert sun_event_utc(date(2026, 6, 21), 78.22, 15.65, "sunset") is None
