"""Conditional trigger-action rules, groups set together, presence, and the evidence they carry."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from custom_components.homeiq.patterns import HomeContext, Pattern, StateChange, mine_patterns

TZ = ZoneInfo("Europe/Amsterdam")
HOME = HomeContext("Europe/Amsterdam")
START = date(2026, 10, 5)
NOW = datetime(2026, 11, 8, 12, 0, tzinfo=TZ)
LAMPS = ("light.bloom", "light.desk", "light.go", "light.strip")


def _at(day: int, minute: float) -> datetime:
    return datetime.combine(START + timedelta(days=day), time(0), TZ) + timedelta(minutes=minute)


def _door(events: list[StateChange], when: datetime) -> None:
    events.append(StateChange("binary_sensor.door", "on", when, context_id=f"d{when.timestamp()}"))
    events.append(StateChange("binary_sensor.door", "off", when + timedelta(seconds=20)))


def office(seed: int, *, lamps_follow_dark_office: bool) -> list[StateChange]:
    """The door opens ~10 times a day; the lamps go on after ~1 opening a day. With
    ``lamps_follow_dark_office`` they go on after the door opens while they are off (explained by a
    condition); without it, after a random opening while they are off or on (unexplained)."""
    rng = random.Random(seed)
    events: list[StateChange] = []
    for day in range(34):
        arrival = rng.uniform(8 * 60, 9 * 60)
        leave = rng.uniform(17 * 60, 18 * 60)
        openings = sorted(rng.uniform(arrival + 5, leave - 5) for _ in range(9))
        lamp_time = arrival if lamps_follow_dark_office else rng.choice(openings)
        _door(events, _at(day, arrival))
        for opened in openings:
            _door(events, _at(day, opened))
        lit = _at(day, lamp_time) + timedelta(seconds=rng.uniform(10, 40))
        for lamp in LAMPS:  # switched together, each with its own context, no user
            events.append(StateChange(lamp, "on", lit + timedelta(seconds=rng.uniform(0, 5)), f"{lamp}{day}"))
            off = _at(day, leave) + timedelta(seconds=rng.uniform(0, 5))
            events.append(StateChange(lamp, "off", off, f"{lamp}{day}off"))
    return sorted(events, key=lambda e: e.when)


def _rules(patterns: list[Pattern]) -> list[Pattern]:
    return [p for p in patterns if p.kind == "sequence"]


def test_a_frequent_trigger_yields_the_rule_when_a_condition_explains_it() -> None:
    [rule] = _rules(mine_patterns(office(1, lamps_follow_dark_office=True), HOME, now=NOW))
    assert rule.trigger == {"type": "state", "entity_id": "binary_sensor.door", "to": "on"}
    assert rule.action == {"entity_id": list(LAMPS), "state": "on"}
    # One suggestion for the four lamps, with the condition that explains it.
    assert {"entity_id": list(LAMPS), "state": "off"} in [
        {k: v for k, v in s.items() if k != "for_min"} for s in (rule.conditions or {})["states"]
    ]
    assert rule.automation["actions"] == [{"action": "light.turn_on", "target": {"entity_id": list(LAMPS)}}]
    evidence = rule.evidence
    assert evidence.coverage > 0.9 and evidence.support_days >= 25
    assert evidence.precision is not None and evidence.precision > 0.8
    assert evidence.trigger_count is not None and evidence.trigger_count < 100  # of ~340 openings
    assert "times Bloom light, Desk light and 2 more lights turned on" in evidence.text
    assert "Door had opened less than a minute before" in evidence.text  # a door sensor opens
    assert "when they" in rule.text and "are off" in rule.text
    # No per-lamp near-copies.
    assert all(
        len(p.targets) == len(LAMPS)
        for p in mine_patterns(office(1, lamps_follow_dark_office=True), HOME, now=NOW)
        if set(p.targets) & set(LAMPS)
    )


def test_a_frequent_trigger_yields_nothing_when_no_condition_explains_it() -> None:
    assert _rules(mine_patterns(office(2, lamps_follow_dark_office=False), HOME, now=NOW)) == []


def presence(seed: int, *, flaps: int) -> list[StateChange]:
    """Two persons leave on weekdays; the vacuum starts soon after the last one has left. B comes
    home late; A's tracker flaps ``flaps`` times each evening before that, alone at home."""
    rng = random.Random(seed)
    events: list[StateChange] = []
    for day in range(28):
        weekday = (START + timedelta(days=day)).weekday() < 5
        leaves = []
        for person in ("person.a", "person.b"):
            if weekday:
                leave = rng.uniform(7 * 60, 9 * 60)
                back = rng.uniform(17 * 60, 19 * 60) if person == "person.a" else 23 * 60 + 30
                leaves.append(leave)
                events.append(StateChange(person, "not_home", _at(day, leave)))
                events.append(StateChange(person, "home", _at(day, back)))
            for _ in range(flaps if person == "person.a" and weekday else 0):
                flap = _at(day, rng.uniform(20 * 60, 22 * 60))
                events.append(StateChange(person, "not_home", flap))
                events.append(StateChange(person, "home", flap + timedelta(seconds=40)))
        if leaves:
            events.append(
                StateChange("vacuum.robot", "cleaning", _at(day, max(leaves) + rng.uniform(1, 4)), "u")
            )
            events.append(StateChange("vacuum.robot", "docked", _at(day, max(leaves) + 90)))
    return sorted(events, key=lambda e: e.when)


def test_the_last_person_leaving_is_a_trigger_and_flapping_phones_are_debounced() -> None:
    patterns = mine_patterns(presence(3, flaps=2), HOME, now=NOW)
    [rule] = [p for p in _rules(patterns) if p.action["state"] == "cleaning"]
    assert rule.trigger == {"type": "state", "entity_id": "zone.home", "to": "not_home"}
    assert rule.automation["triggers"] == [{"trigger": "numeric_state", "entity_id": "zone.home", "below": 1}]
    assert "after the last person leaves home" in rule.text
    # The evening flaps (the last person 'leaving' for 40 s) neither trigger nor dilute the rule.
    assert rule.evidence.trigger_count == rule.evidence.occurrences
    assert rule.conditions is None


def test_without_debouncing_the_flaps_would_dilute_the_rule() -> None:
    """The debounce is what keeps the rule plain: without it, the evening flaps fire the trigger and
    only a time window saves the rule (the test above can fail)."""
    from dataclasses import replace

    from custom_components.homeiq.patterns import MiningOptions

    patterns = mine_patterns(
        presence(3, flaps=2), HOME, now=NOW, options=replace(MiningOptions(), presence_debounce_s=0.0)
    )
    [rule] = [p for p in _rules(patterns) if p.action["state"] == "cleaning"]
    assert rule.conditions is not None and "time" in rule.conditions
    assert rule.evidence.trigger_count is not None and rule.evidence.trigger_count < 30


def test_three_entities_set_together_at_a_time_of_day_are_one_routine() -> None:
    rng = random.Random(5)
    kitchen = ("light.ceiling", "light.counter", "switch.strip")
    events = []
    for day in range(28):
        moment = _at(day, 18 * 60 + 30 + rng.gauss(0, 6))
        for entity_id in kitchen:
            events.append(
                StateChange(
                    entity_id, "on", moment + timedelta(seconds=rng.uniform(0, 20)), f"{entity_id}{day}"
                )
            )
            events.append(StateChange(entity_id, "off", _at(day, rng.uniform(21 * 60, 23 * 60))))
    patterns = mine_patterns(sorted(events, key=lambda e: e.when), HOME, now=NOW)
    [routine] = [p for p in patterns if p.kind == "time_of_day" and p.action["state"] == "on"]
    assert routine.targets == kitchen
    assert routine.automation["actions"] == [
        {"action": "light.turn_on", "target": {"entity_id": ["light.ceiling", "light.counter"]}},
        {"action": "switch.turn_on", "target": {"entity_id": "switch.strip"}},
    ]
    assert routine.text.startswith("Ceiling light, Counter light and Strip turn on around 18:")
    assert routine.support_days == routine.occurrences == routine.evidence.action_count >= 20
    assert routine.evidence.text.startswith(f"On {routine.support_days} of the 28 days")
    assert not any(p.targets in {(k,) for k in kitchen} for p in patterns if p.action["state"] == "on")


def test_one_habit_said_twice_is_suggested_once() -> None:
    """The lamps follow the door at a steady time: a clock routine and a door rule explain the same
    changes; only the one that explains more of them is kept."""
    events = [e for e in office(1, lamps_follow_dark_office=True) if e.when < NOW.astimezone(UTC)]
    on_patterns = [p for p in mine_patterns(events, HOME, now=NOW) if p.action["state"] == "on"]
    assert len(on_patterns) == 1
    assert on_patterns[0].kind == "sequence"


def test_sensors_read_by_their_device_class() -> None:
    events = office(1, lamps_follow_dark_office=True)
    renamed = [
        StateChange(
            e.entity_id.replace("binary_sensor.door", "binary_sensor.hall_pir_2"),
            e.state,
            e.when,
            e.context_id,
        )
        for e in events
    ]
    [by_words] = _rules(mine_patterns(renamed, HOME, now=NOW))
    assert "after Hall pir 2 detects motion" in by_words.text  # "pir" in the id
    home = HomeContext("Europe/Amsterdam", device_classes={"binary_sensor.hall_pir_2": "door"})
    [by_class] = _rules(mine_patterns(renamed, home, now=NOW))
    assert "after Hall pir 2 opens" in by_class.text
    assert "Hall pir 2 had opened" in by_class.evidence.text
