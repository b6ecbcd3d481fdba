"""Sunrise and sunset from latitude and longitude (NOAA solar calculator equations).

Accurate to about a minute between the polar circles; no dependency on astral or Home Assistant.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Literal

SunEvent = Literal["sunrise", "sunset"]

# Standard refraction + solar disc: the sun's centre is 0.833 degrees below the horizon.
_ZENITH_DEG = 90.833


def _julian_century(moment: datetime) -> float:
    julian_day = moment.timestamp() / 86400.0 + 2440587.5
    return (julian_day - 2451545.0) / 36525.0


def _declination_and_equation_of_time(t: float) -> tuple[float, float]:
    """Sun declination (degrees) and equation of time (minutes) at Julian century ``t``."""
    mean_long = (280.46646 + t * (36000.76983 + t * 0.0003032)) % 360
    mean_anom = 357.52911 + t * (35999.05029 - 0.0001537 * t)
    eccent = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    m = math.radians(mean_anom)
    centre = (
        math.sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t))
        + math.sin(2 * m) * (0.019993 - 0.000101 * t)
        + math.sin(3 * m) * 0.000289
    )
    true_long = mean_long + centre
    omega = 125.04 - 1934.136 * t
    apparent_long = true_long - 0.00569 - 0.00478 * math.sin(math.radians(omega))
    mean_obliq = 23 + (26 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60) / 60
    obliq = mean_obliq + 0.00256 * math.cos(math.radians(omega))
    declination = math.degrees(
        math.asin(math.sin(math.radians(obliq)) * math.sin(math.radians(apparent_long)))
    )
    y = math.tan(math.radians(obliq / 2)) ** 2
    l0 = math.radians(mean_long)
    eq_time = 4 * math.degrees(
        y * math.sin(2 * l0)
        - 2 * eccent * math.sin(m)
        + 4 * eccent * y * math.sin(m) * math.cos(2 * l0)
        - 0.5 * y * y * math.sin(4 * l0)
        - 1.25 * eccent * eccent * math.sin(2 * m)
    )
    return declination, eq_time


def sun_event_utc(day: date, latitude: float, longitude: float, event: SunEvent) -> datetime | None:
    """UTC time of sunrise or sunset on ``day`` (a UTC calendar day near the local one).

    Returns None when the sun does not rise or set that day (polar day or night).
    """
    sign = -1.0 if event == "sunrise" else 1.0
    # Start at the solar noon of the day's longitude and refine twice at the event time itself.
    guess = datetime(day.year, day.month, day.day, 12, tzinfo=UTC) - timedelta(minutes=4 * longitude)
    for _ in range(3):
        declination, eq_time = _declination_and_equation_of_time(_julian_century(guess))
        lat = math.radians(latitude)
        dec = math.radians(declination)
        cos_ha = math.cos(math.radians(_ZENITH_DEG)) / (math.cos(lat) * math.cos(dec)) - math.tan(
            lat
        ) * math.tan(dec)
        if not -1.0 <= cos_ha <= 1.0:
            return None
        hour_angle = math.degrees(math.acos(cos_ha))
        minutes = 720 - 4 * longitude - eq_time + sign * 4 * hour_angle
        guess = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes)
    return guess
