"""Suggested automations are valid for Home Assistant's own automation config validator (the one the
automation editor uses), and use the right service per domain."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.automation.config import async_validate_config_item
from homeassistant.core import HomeAssistant

from custom_components.homeiq.patterns import mine_patterns
from custom_components.homeiq.patterns.actions import service_for
from custom_components.homeiq.patterns.conditions import Condition
from custom_components.homeiq.patterns.duration import DurationHabit
from custom_components.homeiq.patterns.groups import targets_of
from custom_components.homeiq.patterns.phrases import Words
from custom_components.homeiq.patterns.render import duration_pattern, sequence_pattern, time_pattern
from custom_components.homeiq.patterns.sequence import SequenceHabit
from custom_components.homeiq.patterns.time_of_day import TimeHabit
from evaluation import generate_home


@pytest.mark.parametrize(
    ("entity_id", "state", "action", "data"),
    [
        ("light.kitchen", "on", "light.turn_on", None),
        ("light.kitchen", "off", "light.turn_off", None),
        ("switch.kettle", "on", "switch.turn_on", None),
        ("fan.bathroom", "off", "fan.turn_off", None),
        ("input_boolean.guest_mode", "on", "input_boolean.turn_on", None),
        ("lock.front_door", "locked", "lock.lock", None),
        ("lock.front_door", "unlocked", "lock.unlock", None),
        ("cover.blinds", "open", "cover.open_cover", None),
        ("cover.blinds", "closed", "cover.close_cover", None),
        ("climate.living_room", "heat", "climate.set_hvac_mode", {"hvac_mode": "heat"}),
        ("climate.living_room", "off", "climate.set_hvac_mode", {"hvac_mode": "off"}),
        ("media_player.tv", "playing", "media_player.media_play", None),
        ("media_player.tv", "paused", "media_player.media_pause", None),
        ("media_player.tv", "off", "media_player.turn_off", None),
        ("input_select.house_mode", "Away", "input_select.select_option", {"option": "Away"}),
    ],
)
def test_service_per_domain(entity_id: str, state: str, action: str, data: dict[str, Any] | None) -> None:
    call = service_for(entity_id, state)
    assert call is not None
    expected: dict[str, Any] = {"action": action, "target": {"entity_id": entity_id}}
    if data:
        expected["data"] = data
    assert call.as_action() == expected


@pytest.mark.parametrize(
    ("entity_id", "state"),
    [
        ("binary_sensor.door", "on"),
        ("light.kitchen", "dimmed"),
        ("cover.blinds", "opening"),
        ("sensor.t", "on"),
    ],
)
def test_states_no_service_sets_are_not_actionable(entity_id: str, state: str) -> None:
    assert service_for(entity_id, state) is None


def _hand_made_patterns() -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    common = {"support_days": 9, "occurrences": 9, "confidence": 0.7, "members": frozenset({1})}
    common |= {"eligible_days": 20, "action_count": 12}
    time_habits = [
        TimeHabit("light.bedroom", "on", "clock", 405.0, "weekdays", spread_min=5.0, **common),  # type: ignore[arg-type]
        TimeHabit("cover.blinds", "closed", "sunset", -15.0, "daily", spread_min=5.0, **common),  # type: ignore[arg-type]
        TimeHabit("climate.hall", "heat", "sunrise", 30.0, "weekend", spread_min=5.0, **common),  # type: ignore[arg-type]
        TimeHabit("lock.front_door", "locked", "clock", 1435.0, "daily", spread_min=5.0, **common),  # type: ignore[arg-type]
    ]
    patterns = [time_pattern(h, names, 5) for h in time_habits]
    rule = {"occurrences": 9, "action_count": 10, "trigger_count": 12, "followed": 9, "support_days": 9}
    rule |= {"eligible_days": 28, "confidence": 0.6, "coverage": 0.9, "lift": 5.0, "median_delay_s": 20.0}
    lamps = "light.bloom+light.desk+light.go+switch.strip"
    every_condition = (
        Condition("target", "off", targets_of(lamps), for_min=15),
        Condition("sun", "below_horizon"),
        Condition("presence", "home"),
        Condition("time", after_min=1380.0, before_min=390.0),
        Condition("quiet", "off", ("binary_sensor.hall_motion",), for_min=30),
    )
    patterns += [
        sequence_pattern(
            SequenceHabit("media_player.tv", "playing", "media_player.soundbar", "on", **rule), Words(names)
        ),
        sequence_pattern(
            SequenceHabit("binary_sensor.door", "on", lamps, "on", **rule, conditions=every_condition),
            Words(names),
        ),
        sequence_pattern(
            SequenceHabit("zone.home", "not_home", "vacuum.robot", "cleaning", **rule), Words(names)
        ),
        sequence_pattern(
            SequenceHabit("zone.home", "home", "light.hall", "on", **rule, conditions=every_condition[1:2]),
            Words(names),
        ),
        duration_pattern(DurationHabit("fan.bathroom", "on", "off", 14.6, 20, 25, 14, 0.7), names),
        duration_pattern(DurationHabit(lamps, "on", "off", 45.0, 20, 25, 14, 0.7), names),
    ]
    return [dict(p.automation) for p in patterns]


def test_a_conditional_group_rule_carries_every_target_and_condition() -> None:
    [config] = [c for c in _hand_made_patterns() if c["triggers"][0].get("entity_id") == "binary_sensor.door"]
    assert config["actions"] == [
        {"action": "light.turn_on", "target": {"entity_id": ["light.bloom", "light.desk", "light.go"]}},
        {"action": "switch.turn_on", "target": {"entity_id": "switch.strip"}},
    ]
    assert config["conditions"] == [
        {
            "condition": "state",
            "entity_id": ["light.bloom", "light.desk", "light.go", "switch.strip"],
            "state": "off",
            "for": {"minutes": 15},
        },
        {"condition": "state", "entity_id": "sun.sun", "state": "below_horizon"},
        {"condition": "numeric_state", "entity_id": "zone.home", "above": 0},
        {"condition": "time", "after": "23:00:00", "before": "06:30:00"},
        {
            "condition": "state",
            "entity_id": "binary_sensor.hall_motion",
            "state": "off",
            "for": {"minutes": 30},
        },
    ]


async def test_every_suggested_automation_passes_home_assistant_validation(hass: HomeAssistant) -> None:
    home = generate_home(1)
    mined = mine_patterns(
        home.events, home.home_context(), existing_automations=home.automations, now=home.end
    )
    kinds = {p.kind for p in mined}
    assert kinds == {"time_of_day", "sun", "sequence", "duration"}
    assert any(len(p.targets) > 1 for p in mined)  # a group
    assert any(p.kind == "sequence" and p.automation["conditions"] for p in mined)  # a conditional rule
    configs = [p.as_dict()["automation"] for p in mined] + _hand_made_patterns()
    for config in configs:
        validated = await async_validate_config_item(hass, "automation", config)
        assert validated is not None, config


async def test_validator_rejects_a_broken_config(hass: HomeAssistant) -> None:
    """The check above can fail: HA rejects an old-style trigger with a bad time."""
    broken = {"triggers": [{"trigger": "time", "at": "25:99"}], "actions": []}
    with pytest.raises(Exception, match="time"):
        await async_validate_config_item(hass, "automation", broken)
