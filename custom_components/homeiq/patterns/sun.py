"""Sunrise and sunset, computed as Home Assistant's sun trigger computes them.

Home Assistant runs a suggested ``trigger: sun`` automation with astral (shipped with Home
Assistant, pure Python) at the configured latitude, longitude and elevation; the engine uses the
same library and the same inputs, so that a habit "20 min before sunset" is the time the
automation will really fire.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from astral import Observer  # type: ignore[import-untyped]  # astral ships no type hints
from astral.sun import sunrise, sunset  # type: ignore[import-untyped]

SunEvent = Literal["sunrise", "sunset"]


def sun_event_utc(
    day: date, latitude: float, longitude: float, event: SunEvent, elevation: float = 0.0
) -> datetime | None:
    """UTC time of sunrise or sunset on ``day`` (a UTC calendar day near the local one), for an
    observer ``elevation`` metres above sea level; None when the sun does not rise or set that day
    (polar day or night)."""
    observer = Observer(latitude, longitude, elevation)
    try:
        moment: datetime = (sunrise if event == "sunrise" else sunset)(observer, date=day)
    except ValueError:  # astral: "the sun never reaches the horizon on this day"
        return None
    return moment
