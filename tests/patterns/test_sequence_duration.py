"""Sequences A -> B with lift, and auto-off durations."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from custom_components.homeiq.patterns import HomeContext, Pattern, StateChange, mine_patterns

TZ = ZoneInfo("Europe/Amsterdam")
HOME = HomeContext("Europe/Amsterdam")
START = date(2026, 11, 2)
NOW = datetime(2026, 11, 30, tzinfo=TZ)


def kinds(patterns: list[Pattern], kind: str) -> list[Pattern]:
    return [p for p in patterns if p.kind == kind]


def door_and_light(seed: int, follow: float) -> list[StateChange]:
    rng = random.Random(seed)
    events = []
    for i in range(28):
        day = START + timedelta(days=i)
        for _ in range(5):
            opened = datetime.combine(day, time(7), TZ) + timedelta(minutes=rng.uniform(0, 900))
            events.append(StateChange("binary_sensor.front_door", "on", opened))
            events.append(StateChange("binary_sensor.front_door", "off", opened + timedelta(seconds=30)))
            if rng.random() < follow:
                lit = opened + timedelta(seconds=rng.uniform(3, 120))
                events.append(StateChange("light.hallway", "on", lit, user_id="u"))
                events.append(
                    StateChange("light.hallway", "off", lit + timedelta(minutes=rng.uniform(5, 60)))
                )
    return sorted(events, key=lambda e: e.when)


def test_sequence_with_variable_delay_is_found() -> None:
    [pattern] = kinds(mine_patterns(door_and_light(1, 0.9), HOME, now=NOW), "sequence")
    assert pattern.trigger == {"type": "state", "entity_id": "binary_sensor.front_door", "to": "on"}
    assert pattern.action == {"entity_id": "light.hallway", "state": "on"}
    assert pattern.entities == ("binary_sensor.front_door", "light.hallway")
    assert pattern.id.startswith("sequence:binary_sensor.front_door:on:light.hallway:on")
    assert pattern.automation["triggers"] == [
        {"trigger": "state", "entity_id": "binary_sensor.front_door", "to": "on"}
    ]
    assert pattern.automation["actions"] == [
        {"action": "light.turn_on", "target": {"entity_id": "light.hallway"}}
    ]
    assert "after Front door opens" in pattern.text


def test_rarely_followed_trigger_is_not_a_sequence() -> None:
    assert kinds(mine_patterns(door_and_light(1, 0.3), HOME, now=NOW), "sequence") == []


def test_chatty_sensor_does_not_pair_with_everything() -> None:
    """A motion sensor firing every few minutes precedes most light changes, but lift is ~1."""
    rng = random.Random(4)
    events = door_and_light(2, 0.9)
    moment = datetime.combine(START, time(0), TZ)
    while moment < NOW:
        moment += timedelta(seconds=rng.uniform(20, 200))
        events.append(StateChange("binary_sensor.motion", "on", moment))
        events.append(StateChange("binary_sensor.motion", "off", moment + timedelta(seconds=10)))
    patterns = kinds(mine_patterns(sorted(events, key=lambda e: e.when), HOME, now=NOW), "sequence")
    assert [p.trigger["entity_id"] for p in patterns] == ["binary_sensor.front_door"]


def fan_periods(seed: int, minutes: float, consistent: float) -> list[StateChange]:
    rng = random.Random(seed)
    events = []
    for i in range(28):
        day = START + timedelta(days=i)
        for _ in range(2):
            on = datetime.combine(day, time(6), TZ) + timedelta(minutes=rng.uniform(0, 900))
            length = minutes + rng.gauss(0, 1.5) if rng.random() < consistent else rng.uniform(30, 200)
            events.append(StateChange("fan.bathroom", "on", on, user_id="u"))
            events.append(StateChange("fan.bathroom", "off", on + timedelta(minutes=length)))
    return sorted(events, key=lambda e: e.when)


def test_fan_switched_off_after_a_consistent_time_gets_an_auto_off() -> None:
    [pattern] = kinds(mine_patterns(fan_periods(1, 15, 0.9), HOME, now=NOW), "duration")
    assert pattern.trigger == {"type": "state", "entity_id": "fan.bathroom", "to": "on", "for_min": 15}
    assert pattern.action == {"entity_id": "fan.bathroom", "state": "off"}
    assert pattern.automation["triggers"] == [
        {"trigger": "state", "entity_id": "fan.bathroom", "to": "on", "for": {"minutes": 15}}
    ]
    assert pattern.automation["actions"] == [
        {"action": "fan.turn_off", "target": {"entity_id": "fan.bathroom"}}
    ]


def test_inconsistent_durations_give_no_auto_off() -> None:
    assert kinds(mine_patterns(fan_periods(1, 15, 0.3), HOME, now=NOW), "duration") == []


def test_auto_off_done_by_an_automation_is_not_suggested() -> None:
    events = [
        StateChange(e.entity_id, e.state, e.when, parent_id="ctx" if e.state == "off" else None)
        for e in fan_periods(1, 15, 0.9)
    ]
    assert kinds(mine_patterns(events, HOME, now=NOW), "duration") == []


def test_existing_auto_off_automation_suppresses_the_suggestion() -> None:
    existing = [
        {
            "triggers": [{"trigger": "state", "entity_id": "fan.bathroom", "to": "on", "for": "00:10:00"}],
            "actions": [{"action": "fan.turn_off", "target": {"entity_id": "fan.bathroom"}}],
        }
    ]
    patterns = mine_patterns(fan_periods(1, 15, 0.9), HOME, existing_automations=existing, now=NOW)
    assert kinds(patterns, "duration") == []


def test_changes_of_one_action_are_not_a_sequence() -> None:
    """A light group (or a scene) switches its members under one context: one action, not A -> B."""
    rng = random.Random(6)
    events = []
    for i in range(28):
        day = START + timedelta(days=i)
        for k in range(3):
            moment = datetime.combine(day, time(8), TZ) + timedelta(minutes=rng.uniform(0, 800))
            ctx = f"user-action-{i}-{k}"
            events.append(StateChange("light.group", "on", moment, ctx, user_id="u"))
            events.append(
                StateChange("light.member", "on", moment + timedelta(seconds=0.5), ctx, user_id="u")
            )
            events.append(StateChange("light.group", "off", moment + timedelta(minutes=rng.uniform(20, 200))))
            events.append(
                StateChange("light.member", "off", moment + timedelta(minutes=rng.uniform(20, 200)))
            )
    events.sort(key=lambda e: e.when)
    assert kinds(mine_patterns(events, HOME, now=NOW), "sequence") == []
    # Under separate contexts, half a second apart, they are still one action (a group) ...
    separate = [StateChange(e.entity_id, e.state, e.when, f"{e.context_id}-{e.entity_id}") for e in events]
    assert kinds(mine_patterns(separate, HOME, now=NOW), "sequence") == []
    # ... but the member following 90 s later is a sequence: the test above can fail.
    delay = {"light.member": timedelta(seconds=90)}
    later = [
        StateChange(
            e.entity_id,
            e.state,
            e.when + delay.get(e.entity_id, timedelta()),
            f"{e.context_id}-{e.entity_id}",
        )
        for e in events
    ]
    assert kinds(mine_patterns(sorted(later, key=lambda e: e.when), HOME, now=NOW), "sequence")
