"""Clock-time habits: circular time, DST, day sets, origin, stable ids, noise."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from custom_components.homeiq.patterns import HomeContext, MiningOptions, Pattern, StateChange, mine_patterns

ZONE = "Europe/Amsterdam"
TZ = ZoneInfo(ZONE)
HOME = HomeContext(ZONE)
START = date(2026, 10, 5)  # a Monday; the window holds the 25 October DST change
NOW = datetime(2026, 11, 2, 3, 0, tzinfo=TZ)


def routine(
    entity_id: str,
    state: str,
    at: time,
    *,
    days: Callable[[date], bool] = lambda d: True,
    jitter_min: float = 6.0,
    seed: int = 1,
    n_days: int = 28,
    shift_min: float = 0.0,
    **context: str,
) -> list[StateChange]:
    """One change a day at ``at`` (local), on the days ``days`` accepts."""
    rng = random.Random(seed)
    out = []
    for i in range(n_days):
        day = START + timedelta(days=i)
        if not days(day):
            continue
        when = datetime.combine(day, at, TZ) + timedelta(minutes=shift_min + rng.gauss(0, jitter_min))
        out.append(StateChange(entity_id, state, when, context_id=f"{entity_id}-{i}", **context))
        # The entity must change back in between, or the next day's change is no change at all.
        other = "off" if state != "off" else "on"
        out.append(StateChange(entity_id, other, when + timedelta(hours=3, minutes=rng.uniform(-60, 60))))
    return out


def only(patterns: list[Pattern], entity_id: str, state: str) -> list[Pattern]:
    return [p for p in patterns if p.action["entity_id"] == entity_id and p.action["state"] == state]


def test_weekday_routine_is_found_with_weekday_condition() -> None:
    events = routine("light.bedroom", "on", time(6, 45), days=lambda d: d.weekday() < 5)
    [pattern] = only(mine_patterns(events, HOME, now=NOW), "light.bedroom", "on")
    assert pattern.kind == "time_of_day"
    assert pattern.trigger["type"] == "time"
    assert pattern.trigger["at"] in {"06:40", "06:45", "06:50"}
    assert pattern.conditions == {"weekdays": ["mon", "tue", "wed", "thu", "fri"]}
    assert pattern.support_days == 20
    assert 0.5 < pattern.confidence < 1.0
    assert pattern.text == f"Bedroom light turns on around {pattern.trigger['at']} on weekdays"
    automation = pattern.automation
    assert automation["triggers"] == [{"trigger": "time", "at": f"{pattern.trigger['at']}:00"}]
    assert automation["conditions"] == [{"condition": "time", "weekday": ["mon", "tue", "wed", "thu", "fri"]}]
    assert automation["actions"] == [{"action": "light.turn_on", "target": {"entity_id": "light.bedroom"}}]


def test_weekend_routine_is_found_with_weekend_condition() -> None:
    events = routine("switch.coffee_maker", "on", time(9, 30), days=lambda d: d.weekday() >= 5)
    [pattern] = only(mine_patterns(events, HOME, now=NOW), "switch.coffee_maker", "on")
    assert pattern.conditions == {"weekdays": ["sat", "sun"]}
    assert pattern.support_days == 8
    assert "on weekends" in pattern.text


def test_routine_around_midnight_is_one_habit_counted_once_per_night() -> None:
    events = routine("light.living_room", "off", time(23, 58), jitter_min=10)
    [pattern] = only(mine_patterns(events, HOME, now=NOW), "light.living_room", "off")
    at = pattern.trigger["at"]
    assert at >= "23:45" or at <= "00:10"
    assert pattern.conditions is None
    assert pattern.support_days >= 26  # a night's change before or after midnight counts once


def test_local_time_holds_through_the_dst_change() -> None:
    events = routine("lock.front_door", "locked", time(7, 0), jitter_min=3)
    [pattern] = only(mine_patterns(events, HOME, now=NOW), "lock.front_door", "locked")
    assert pattern.trigger["at"] == "07:00"
    assert pattern.support_days == 28
    assert pattern.automation["actions"] == [
        {"action": "lock.lock", "target": {"entity_id": "lock.front_door"}}
    ]


def test_changes_caused_by_automations_are_not_habits() -> None:
    by_parent = routine("light.porch", "on", time(19, 0), parent_id="trigger-context")
    # A time-triggered automation runs with a fresh context; only the automation's own record,
    # with the same context id, tells its effects from a physical switch.
    by_time_trigger = routine("light.garden", "on", time(20, 0))
    markers = [
        StateChange("automation.garden", "on", e.when, context_id=e.context_id)
        for e in by_time_trigger
        if e.state == "on"
    ]
    patterns = mine_patterns(by_parent + by_time_trigger + markers, HOME, now=NOW)
    assert only(patterns, "light.porch", "on") == []
    assert only(patterns, "light.garden", "on") == []


def test_app_and_physical_changes_both_count_as_manual() -> None:
    from_app = routine("light.desk", "on", time(8, 0), user_id="user-1")
    physical = routine("light.hall", "on", time(8, 45))  # not with the desk: that would be a group
    patterns = mine_patterns(from_app + physical, HOME, now=NOW)
    assert len(only(patterns, "light.desk", "on")) == 1
    assert len(only(patterns, "light.hall", "on")) == 1


def test_pattern_id_is_stable_when_the_time_drifts() -> None:
    early = only(
        mine_patterns(routine("light.bedroom", "on", time(6, 45)), HOME, now=NOW), "light.bedroom", "on"
    )
    late = only(
        mine_patterns(routine("light.bedroom", "on", time(6, 45), shift_min=7, seed=2), HOME, now=NOW),
        "light.bedroom",
        "on",
    )
    assert [p.trigger["at"] for p in early] != [p.trigger["at"] for p in late]
    assert [p.id for p in early] == [p.id for p in late]


def test_two_routines_of_one_entity_get_distinct_ids() -> None:
    events = routine("light.kitchen", "on", time(7, 0)) + [
        StateChange(e.entity_id, e.state, e.when + timedelta(hours=11))
        for e in routine("light.kitchen", "on", time(7, 0), seed=5)
    ]
    patterns = only(mine_patterns(sorted(events, key=lambda e: e.when), HOME, now=NOW), "light.kitchen", "on")
    assert sorted(p.trigger["at"][:2] for p in patterns) == ["07", "18"]
    assert len({p.id for p in patterns}) == 2


def test_entity_toggled_all_day_is_not_a_routine() -> None:
    rng = random.Random(3)
    events = []
    for i in range(28 * 30):
        when = datetime.combine(START, time(0), TZ) + timedelta(minutes=rng.uniform(0, 28 * 1440))
        events.append(StateChange("switch.noisy_plug", "on" if i % 2 else "off", when))
    events.sort(key=lambda e: e.when)
    assert mine_patterns(events, HOME, now=NOW) == []


def test_existing_automation_suppresses_the_same_habit() -> None:
    events = routine("light.bedroom", "on", time(6, 45))
    existing = [
        {
            "alias": "Wake-up light",
            "triggers": [{"trigger": "time", "at": "06:30:00"}],
            "actions": [{"action": "light.turn_on", "target": {"entity_id": ["light.bedroom"]}}],
        }
    ]
    old_syntax = [
        {
            "trigger": {"platform": "time", "at": "07:00"},
            "action": [{"service": "light.turn_on", "entity_id": "light.bedroom"}],
        }
    ]
    assert only(mine_patterns(events, HOME, now=NOW), "light.bedroom", "on")
    assert (
        only(mine_patterns(events, HOME, existing_automations=existing, now=NOW), "light.bedroom", "on") == []
    )
    assert (
        only(mine_patterns(events, HOME, existing_automations=old_syntax, now=NOW), "light.bedroom", "on")
        == []
    )
    elsewhere = [{**existing[0], "triggers": [{"trigger": "time", "at": "18:00:00"}]}]
    assert only(mine_patterns(events, HOME, existing_automations=elsewhere, now=NOW), "light.bedroom", "on")


def test_numeric_unknown_and_attribute_only_changes_are_ignored() -> None:
    events = routine("light.bedroom", "on", time(6, 45))
    noise = []
    for e in events:
        # The same state again (an attribute-only change), and a recovery from unavailable.
        noise.append(StateChange(e.entity_id, e.state, e.when + timedelta(minutes=1)))
        noise.append(StateChange("input_boolean.guest", "unavailable", e.when))
        noise.append(StateChange("input_boolean.guest", "on", e.when + timedelta(seconds=5)))
        noise.append(StateChange("input_boolean.level", "21.5", e.when))
    patterns = mine_patterns(events + noise, HOME, now=NOW)
    [pattern] = only(patterns, "light.bedroom", "on")
    assert (
        pattern.occurrences
        == only(mine_patterns(events, HOME, now=NOW), "light.bedroom", "on")[0].occurrences
    )
    assert all(p.action["entity_id"] != "input_boolean.guest" for p in patterns)
    assert all(p.action["entity_id"] != "input_boolean.level" for p in patterns)


def test_changes_by_excluded_users_are_not_habits() -> None:
    events = routine("light.desk", "on", time(8, 0), user_id="service-account")
    assert len(only(mine_patterns(events, HOME, now=NOW), "light.desk", "on")) == 1
    options = MiningOptions(excluded_users=frozenset({"service-account"}))
    assert only(mine_patterns(events, HOME, now=NOW, options=options), "light.desk", "on") == []


def test_excluded_entities_and_domains_are_ignored() -> None:
    events = routine("light.desk", "on", time(8, 0)) + routine("switch.pump", "on", time(9, 0))
    options = MiningOptions(
        excluded_entities=frozenset({"light.desk"}), excluded_domains=frozenset({"switch"})
    )
    assert mine_patterns(events, HOME, now=NOW, options=options) == []


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        mine_patterns([StateChange("light.a", "on", datetime(2026, 11, 1, 7, 0))], HOME)
