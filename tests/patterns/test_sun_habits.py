"""Sun-relative habits: chosen over clock time only when they explain the times better."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from custom_components.homeiq.patterns import HomeContext, Pattern, StateChange, mine_patterns
from custom_components.homeiq.patterns.sun import sun_event_utc

LAT, LON = 52.3676, 4.9041
TZ = ZoneInfo("Europe/Amsterdam")
HOME = HomeContext("Europe/Amsterdam", LAT, LON)


def porch(
    start: date, *, offset_min: float = -10, by_clock: time | None = None, jitter_min: float = 5
) -> list[StateChange]:
    rng = random.Random(5)
    events = []
    for i in range(28):
        day = start + timedelta(days=i)
        if by_clock is not None:
            on = datetime.combine(day, by_clock, TZ).astimezone(UTC)
        else:
            sunset = sun_event_utc(day, LAT, LON, "sunset")
            assert sunset is not None
            on = sunset + timedelta(minutes=offset_min)
        on += timedelta(minutes=rng.gauss(0, jitter_min))
        events.append(StateChange("light.porch", "on", on))
        events.append(StateChange("light.porch", "off", on + timedelta(hours=rng.uniform(3, 5))))
    return events


def porch_patterns(events: list[StateChange], home: HomeContext = HOME) -> list[Pattern]:
    return [p for p in mine_patterns(events, home) if p.action == {"entity_id": "light.porch", "state": "on"}]


def test_sunset_habit_in_autumn_is_sun_relative() -> None:
    # October: sunset moves ~1 h in local time (DST included), the habit follows it.
    [pattern] = porch_patterns(porch(date(2026, 10, 5)))
    assert pattern.kind == "sun"
    assert pattern.trigger["event"] == "sunset"
    assert -20 <= pattern.trigger["offset_min"] <= 0
    assert pattern.id == "sun:light.porch:on:sunset:daily:0"
    assert pattern.automation["triggers"][0]["trigger"] == "sun"
    assert "before sunset every day" in pattern.text


def test_fixed_clock_habit_in_autumn_stays_clock_time() -> None:
    [pattern] = porch_patterns(porch(date(2026, 10, 5), by_clock=time(18, 30)))
    assert pattern.kind == "time_of_day"
    assert pattern.trigger["at"] == "18:30"


def test_when_the_sun_moves_less_than_the_habit_varies_clock_time_wins() -> None:
    # Around the winter solstice sunset moves ~15 min in four weeks, less than this habit's jitter.
    [pattern] = porch_patterns(porch(date(2026, 12, 8), jitter_min=10))
    assert pattern.kind == "time_of_day"
    assert "16:00" <= pattern.trigger["at"] <= "16:40"


def test_without_a_location_there_are_no_sun_habits() -> None:
    patterns = porch_patterns(porch(date(2026, 10, 5)), HomeContext("Europe/Amsterdam"))
    assert all(p.kind != "sun" for p in patterns)


def test_existing_sun_automation_suppresses_the_habit() -> None:
    existing = [
        {
            "triggers": [{"trigger": "sun", "event": "sunset", "offset": "-00:30:00"}],
            "actions": [{"action": "light.turn_on", "target": {"entity_id": "light.porch"}}],
        }
    ]
    assert [p for p in mine_patterns(porch(date(2026, 10, 5)), HOME, existing_automations=existing)
            if p.action["entity_id"] == "light.porch" and p.action["state"] == "on"] == []  # fmt: skip
