"""Words and automation configs for detected habits; no statistics here.

Automation configs use Home Assistant's current syntax: ``triggers`` / ``conditions`` /
``actions``, ``trigger: time|state|sun``, ``condition: time`` with ``weekday``, and
``action: <domain>.<service>`` with ``target: {entity_id: ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .actions import ServiceCall, service_for
from .duration import DurationHabit
from .model import Pattern, PatternKind
from .sequence import SequenceHabit
from .time_of_day import TimeHabit

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
WEEKEND = ("sat", "sun")
DAY_SET_WEEKDAYS: dict[str, tuple[str, ...]] = {"weekdays": WEEKDAYS, "weekend": WEEKEND}
DAY_SET_TEXT = {"daily": "every day", "weekdays": "on weekdays", "weekend": "on weekends"}

# Domains whose noun reads well after the object name ("Bedroom light", "Front door lock").
_DOMAIN_NOUNS = {"light": "light", "fan": "fan", "lock": "lock", "climate": "thermostat", "siren": "siren"}

_STATE_VERBS = {
    "on": "turns on",
    "off": "turns off",
    "locked": "is locked",
    "unlocked": "is unlocked",
    "open": "opens",
    "closed": "closes",
    "playing": "starts playing",
    "paused": "is paused",
    "idle": "stops",
    "home": "arrives home",
    "not_home": "leaves home",
    "cleaning": "starts cleaning",
    "docked": "docks",
}


def entity_name(entity_id: str, names: Mapping[str, str]) -> str:
    """The friendly name if known, else one made from the entity id ("light.bedroom" -> "Bedroom light")."""
    if entity_id in names:
        return names[entity_id]
    domain, _, object_id = entity_id.partition(".")
    words = object_id.replace("_", " ").strip() or domain
    noun = _DOMAIN_NOUNS.get(domain)
    if noun and noun not in words.split():
        words = f"{words} {noun}"
    return words[:1].upper() + words[1:]


def state_phrase(entity_id: str, state: str) -> str:
    """What reaching ``state`` reads like ("turns on", "is locked", "is set to heat")."""
    if entity_id.startswith("climate."):
        return f"is set to {state.replace('_', ' ')}"
    if entity_id.startswith(("input_select.", "select.")):
        return f"is set to {state}"
    return _STATE_VERBS.get(state, f"changes to {state}")


def clock_text(minute: float) -> str:
    """HH:MM of a minute of the day."""
    total = round(minute) % 1440
    return f"{total // 60:02d}:{total % 60:02d}"


def offset_text(offset_min: int, event: str) -> str:
    """'at sunset', '20 min before sunrise'."""
    if offset_min == 0:
        return f"at {event}"
    return f"{abs(offset_min)} min {'before' if offset_min < 0 else 'after'} {event}"


def offset_duration(offset_min: int) -> str:
    """A signed HH:MM:SS offset for a sun trigger."""
    sign = "-" if offset_min < 0 else ""
    minutes = abs(offset_min)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}:00"


def required_service(entity_id: str, state: str) -> ServiceCall:
    """The service call for an action; detectors only emit actionable states."""
    call = service_for(entity_id, state)
    if call is None:
        raise ValueError(f"no service sets {entity_id} to {state!r}")
    return call


def automation_config(
    alias: str,
    description: str,
    triggers: list[dict[str, Any]],
    conditions: list[dict[str, Any]],
    call: ServiceCall,
) -> dict[str, Any]:
    """A complete automation config as the automation editor stores it (without its ``id``)."""
    return {
        "alias": alias,
        "description": description,
        "triggers": triggers,
        "conditions": conditions,
        "actions": [call.as_action()],
        "mode": "single",
    }


def weekday_conditions(day_set: str) -> list[dict[str, Any]]:
    """``condition: time`` with ``weekday`` for a day set (none for every day)."""
    days = DAY_SET_WEEKDAYS.get(day_set)
    return [{"condition": "time", "weekday": list(days)}] if days else []


def time_pattern(habit: TimeHabit, names: Mapping[str, str], round_min: int) -> Pattern:
    """A clock-time or sun-relative habit as a pattern with its automation."""
    name = entity_name(habit.entity_id, names)
    phrase = state_phrase(habit.entity_id, habit.state)
    days_text = DAY_SET_TEXT[habit.days]
    call = required_service(habit.entity_id, habit.state)
    conditions = weekday_conditions(habit.days)
    weekdays = DAY_SET_WEEKDAYS.get(habit.days)
    pattern_conditions = {"weekdays": list(weekdays)} if weekdays else None
    action = {"entity_id": habit.entity_id, "state": habit.state}
    step = max(1, round_min)
    if habit.basis == "clock":
        at = clock_text(round(habit.minute / step) * step)
        text = f"{name} {phrase} around {at} {days_text}"
        trigger: dict[str, Any] = {"type": "time", "at": at}
        ha_trigger: dict[str, Any] = {"trigger": "time", "at": f"{at}:00"}
        pattern_id = f"time_of_day:{habit.entity_id}:{habit.state}:{habit.days}:{habit.ordinal}"
        kind: PatternKind = "time_of_day"
    else:
        offset = int(round(habit.minute / step) * step)
        text = f"{name} {phrase} {offset_text(offset, habit.basis)} {days_text}"
        trigger = {"type": "sun", "event": habit.basis, "offset_min": offset}
        ha_trigger = {"trigger": "sun", "event": habit.basis, "offset": offset_duration(offset)}
        pattern_id = f"sun:{habit.entity_id}:{habit.state}:{habit.basis}:{habit.days}:{habit.ordinal}"
        kind = "sun"
    return Pattern(
        id=pattern_id,
        kind=kind,
        text=text,
        trigger=trigger,
        conditions=pattern_conditions,
        action=action,
        entities=(habit.entity_id,),
        support_days=habit.support_days,
        occurrences=habit.occurrences,
        confidence=habit.confidence,
        automation=automation_config(
            alias=text,
            description=_description(habit.support_days),
            triggers=[ha_trigger],
            conditions=conditions,
            call=call,
        ),
    )


def _description(support_days: int) -> str:
    return f"Suggested by HomeIQ from a habit seen on {support_days} days."


def _delay_text(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds / 5) * 5)} s"
    return f"about {round(seconds / 60)} min"


def sequence_pattern(habit: SequenceHabit, names: Mapping[str, str]) -> Pattern:
    """An A -> B habit as a pattern: when A changes, set B."""
    b_name = entity_name(habit.entity_id, names)
    a_name = entity_name(habit.trigger_entity, names)
    text = (
        f"{b_name} {state_phrase(habit.entity_id, habit.state)} {_delay_text(habit.median_delay_s)} after "
        f"{a_name} {state_phrase(habit.trigger_entity, habit.trigger_state)}"
    )
    call = required_service(habit.entity_id, habit.state)
    return Pattern(
        id=f"sequence:{habit.trigger_entity}:{habit.trigger_state}:{habit.entity_id}:{habit.state}",
        kind="sequence",
        text=text,
        trigger={"type": "state", "entity_id": habit.trigger_entity, "to": habit.trigger_state},
        action={"entity_id": habit.entity_id, "state": habit.state},
        entities=(habit.trigger_entity, habit.entity_id),
        support_days=habit.support_days,
        occurrences=habit.occurrences,
        confidence=habit.confidence,
        automation=automation_config(
            alias=text,
            description=_description(habit.support_days),
            triggers=[{"trigger": "state", "entity_id": habit.trigger_entity, "to": habit.trigger_state}],
            conditions=[],
            call=call,
        ),
    )


def duration_pattern(habit: DurationHabit, names: Mapping[str, str]) -> Pattern:
    """An auto-off habit as a pattern: when the entity has been on for N minutes, switch it off."""
    name = entity_name(habit.entity_id, names)
    for_min = max(1, round(habit.minutes)) if habit.minutes < 30 else round(habit.minutes / 5) * 5
    text = (
        f"{name} {state_phrase(habit.entity_id, habit.off_state)} by hand about {for_min} min after it "
        f"{state_phrase(habit.entity_id, habit.state)}"
    )
    call = required_service(habit.entity_id, habit.off_state)
    return Pattern(
        id=f"duration:{habit.entity_id}:{habit.state}:{habit.off_state}",
        kind="duration",
        text=text,
        trigger={"type": "state", "entity_id": habit.entity_id, "to": habit.state, "for_min": for_min},
        action={"entity_id": habit.entity_id, "state": habit.off_state},
        entities=(habit.entity_id,),
        support_days=habit.support_days,
        occurrences=habit.occurrences,
        confidence=habit.confidence,
        automation=automation_config(
            alias=f"Turn off {name} after {for_min} min",
            description=_description(habit.support_days),
            triggers=[
                {
                    "trigger": "state",
                    "entity_id": habit.entity_id,
                    "to": habit.state,
                    "for": {"minutes": for_min},
                }
            ],
            conditions=[],
            call=call,
        ),
    )
