"""Reading existing automation configs (current and older syntax) for dedup."""

from __future__ import annotations

from custom_components.homeiq.patterns.existing import ExistingTrigger, parse_automations


def test_current_syntax_with_nested_actions_and_entity_lists() -> None:
    [automation] = parse_automations(
        [
            {
                "triggers": [
                    {"trigger": "time", "at": ["06:30", "07:15:30"]},
                    {"trigger": "state", "entity_id": ["binary_sensor.door", "person.anna"], "to": "on"},
                    {"trigger": "sun", "event": "sunset", "offset": "-00:10:00"},
                ],
                "actions": [
                    {"action": "light.turn_on", "target": {"entity_id": ["light.a", "light.b"]}},
                    {
                        "choose": [
                            {
                                "conditions": [],
                                "sequence": [{"action": "lock.lock", "entity_id": "lock.front"}],
                            }
                        ]
                    },
                    {
                        "action": "climate.set_hvac_mode",
                        "data": {"entity_id": "climate.hall", "hvac_mode": "heat"},
                    },
                ],
            }
        ]
    )
    assert automation.action_entities == {"light.a", "light.b", "lock.front", "climate.hall"}
    assert automation.triggers == (
        ExistingTrigger("time", at_minutes=(390.0, 435.5)),
        ExistingTrigger("state", entities=frozenset({"binary_sensor.door", "person.anna"})),
        ExistingTrigger("sun", event="sunset"),
    )


def test_older_syntax_and_unknown_times() -> None:
    [automation] = parse_automations(
        [
            {
                "trigger": {"platform": "time", "at": "input_datetime.wake_up"},
                "action": [{"service": "light.turn_on", "entity_id": "light.bedroom"}],
            }
        ]
    )
    assert automation.triggers == (ExistingTrigger("time", at_minutes=None),)
    assert automation.action_entities == {"light.bedroom"}


def test_malformed_entries_are_skipped() -> None:
    parsed = parse_automations(["not a dict", {"triggers": "nonsense"}, {}])
    assert [a.action_entities for a in parsed] == [frozenset(), frozenset()]
