"""Sunrise/sunset from the NOAA equations, checked against published times and astral."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

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


def test_sun_times_agree_with_astral_worldwide() -> None:
    astral_sun = pytest.importorskip("astral.sun")
    from astral import Observer  # type: ignore[import-untyped]

    for latitude, longitude in [(52.37, 4.90), (-33.87, 151.21), (40.71, -74.0), (64.1, -21.9), (0.0, 0.0)]:
        for day in [date(2026, 3, 20), date(2026, 6, 21), date(2026, 10, 25), date(2026, 12, 21)]:
            observer = Observer(latitude, longitude)
            for event in ("sunrise", "sunset"):
                reference = getattr(astral_sun, event)(observer, date=day)
                ours = sun_event_utc(day, latitude, longitude, event)
                assert ours is not None
                assert abs((ours - reference).total_seconds()) <= 120, (latitude, day, event)


def test_polar_night_and_day_have_no_sunrise() -> None:
    assert sun_event_utc(date(2026, 12, 21), 78.22, 15.65, "sunrise") is None  # Longyearbyen
    assert sun_event_utc(date(2026, 6, 21), 78.22, 15.65, "sunset") is None
