"""Words and automation configs for detected habits; no statistics here.

Automation configs use Home Assistant's current syntax: ``triggers`` / ``conditions`` /
``actions``, ``trigger: time|state|sun``, ``condition: time`` with ``weekday``, and
``action: <domain>.<service>`` with ``target: {entity_id: ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .actions import ServiceCall, service_calls
from .conditions import Condition
from .duration import DurationHabit
from .groups import targets_of
from .model import Evidence, Pattern, PatternKind
from .presence import HOUSEHOLD
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


_PLURAL_VERBS = {
    "turns": "turn",
    "is": "are",
    "opens": "open",
    "closes": "close",
    "starts": "start",
    "stops": "stop",
    "docks": "dock",
    "changes": "change",
    "arrives": "arrive",
    "leaves": "leave",
}
_PAST_VERBS = {
    "turn": "turned",
    "open": "opened",
    "close": "closed",
    "start": "started",
    "stop": "stopped",
    "dock": "docked",
    "change": "changed",
    "arrive": "arrived",
    "leave": "left",
    "turns": "turned",
    "detects": "detected",
    "clears": "cleared",
    "is": "was",
    "opens": "opened",
    "closes": "closed",
    "starts": "started",
    "stops": "stopped",
    "docks": "docked",
    "changes": "changed",
    "arrives": "arrived",
    "leaves": "left",
}
_NAMED_GROUP_MAX = 3


@dataclass(frozen=True)
class Words:
    """What the texts name things by: friendly names, and device classes (a door sensor "opens")."""

    names: Mapping[str, str] = field(default_factory=dict)
    device_classes: Mapping[str, str] = field(default_factory=dict)


def entity_name(entity_id: str, names: Mapping[str, str]) -> str:
    """The friendly name if known, else one made from the entity id ("light.bedroom" -> "Bedroom
    light"); a group reads "Desk lamp, Bloom and 5 more lights"."""
    targets = targets_of(entity_id)
    if len(targets) > 1:
        return _group_name(targets, names)
    if entity_id in names:
        return names[entity_id]
    if entity_id == HOUSEHOLD:
        return "Everyone"
    domain, _, object_id = entity_id.partition(".")
    words = object_id.replace("_", " ").strip() or domain
    noun = _DOMAIN_NOUNS.get(domain)
    if noun and noun not in words.split():
        words = f"{words} {noun}"
    return words[:1].upper() + words[1:]


def _group_name(targets: tuple[str, ...], names: Mapping[str, str]) -> str:
    named = [entity_name(t, names) for t in targets]
    if len(named) <= _NAMED_GROUP_MAX:
        return f"{', '.join(named[:-1])} and {named[-1]}"
    domains = {t.partition(".")[0] for t in targets}
    noun = f"{_DOMAIN_NOUNS.get(domains.pop(), 'device')}s" if len(domains) == 1 else "devices"
    return f"{named[0]}, {named[1]} and {len(named) - 2} more {noun}"


_OPENINGS = frozenset({"door", "garage_door", "opening", "window"})
_MOTIONS = frozenset({"motion", "occupancy", "presence", "moving"})


def sensor_kind(entity_id: str, device_class: str | None) -> str | None:
    """'opening' or 'motion' for a binary sensor of that kind (by its device class, or failing
    that by the words of its id), else None."""
    if not entity_id.startswith("binary_sensor."):
        return None
    words = set(entity_id.partition(".")[2].split("_"))
    if device_class in _OPENINGS or (device_class is None and words & _OPENINGS):
        return "opening"
    if device_class in _MOTIONS or (device_class is None and words & (_MOTIONS | {"pir"})):
        return "motion"
    return None


_SENSOR_PHRASES = {
    ("opening", "on"): "opens",
    ("opening", "off"): "closes",
    ("motion", "on"): "detects motion",
    ("motion", "off"): "clears",
}


def state_phrase(entity_id: str, state: str, device_class: str | None = None) -> str:
    """What reaching ``state`` reads like ("turns on", "is locked", "is set to heat", for a door
    sensor "opens"); a group's phrase is plural ("turn on")."""
    if entity_id == HOUSEHOLD:
        return "the first person arrives home" if state == "home" else "the last person leaves home"
    if (kind := sensor_kind(entity_id, device_class)) and (kind, state) in _SENSOR_PHRASES:
        return _SENSOR_PHRASES[kind, state]
    targets = targets_of(entity_id)
    first = targets[0]
    if first.startswith("climate."):
        phrase = f"is set to {state.replace('_', ' ')}"
    elif first.startswith(("input_select.", "select.")):
        phrase = f"is set to {state}"
    else:
        phrase = _STATE_VERBS.get(state, f"changes to {state}")
    if len(targets) > 1:
        verb, _, rest = phrase.partition(" ")
        phrase = f"{_PLURAL_VERBS.get(verb, verb)} {rest}".strip()
    return phrase


def past_phrase(entity_id: str, state: str, device_class: str | None = None) -> str:
    """``state_phrase`` in the past tense ("turned on", "was locked", "were turned on")."""
    if entity_id == HOUSEHOLD:
        return "the first person arrived home" if state == "home" else "the last person left home"
    verb, _, rest = state_phrase(entity_id, state, device_class).partition(" ")
    past = "were" if verb == "are" else _PAST_VERBS.get(verb, verb)
    return f"{past} {rest}".strip()


def _event_text(entity_id: str, state: str, words: Words) -> str:
    """ "Front door opens", or for the household "the last person leaves home"."""
    phrase = state_phrase(entity_id, state, words.device_classes.get(entity_id))
    if entity_id == HOUSEHOLD:
        return phrase
    return f"{entity_name(entity_id, words.names)} {phrase}"


def _past_event_text(entity_id: str, state: str, words: Words, *, before: bool = False) -> str:
    """ "Front door opened"; with ``before``, "Front door had opened"."""
    phrase = past_phrase(entity_id, state, words.device_classes.get(entity_id))
    if before:
        verb, _, rest = phrase.partition(" ")
        phrase = f"had been {rest}" if verb in ("was", "were") else f"had {phrase}"
        if entity_id == HOUSEHOLD:
            phrase = phrase.replace("had the ", "the ", 1).replace(" person ", " person had ", 1)
            return phrase
    if entity_id == HOUSEHOLD:
        return past_phrase(entity_id, state)
    return f"{entity_name(entity_id, words.names)} {phrase}"


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


def required_calls(entity_id: str, state: str) -> list[ServiceCall]:
    """The service calls for an action (a group's targets included); detectors only emit
    actionable states."""
    calls = service_calls(targets_of(entity_id), state)
    if calls is None:
        raise ValueError(f"no service sets {entity_id} to {state!r}")
    return calls


def action_of(entity_id: str, state: str) -> dict[str, Any]:
    """The pattern contract's ``action``: one entity id, or the list of a group's."""
    targets = targets_of(entity_id)
    return {"entity_id": targets[0] if len(targets) == 1 else list(targets), "state": state}


def automation_config(
    alias: str,
    description: str,
    triggers: list[dict[str, Any]],
    conditions: list[dict[str, Any]],
    calls: list[ServiceCall],
) -> dict[str, Any]:
    """A complete automation config as the automation editor stores it (without its ``id``)."""
    return {
        "alias": alias,
        "description": description,
        "triggers": triggers,
        "conditions": conditions,
        "actions": [call.as_action() for call in calls],
        "mode": "single",
    }


def weekday_conditions(day_set: str) -> list[dict[str, Any]]:
    """``condition: time`` with ``weekday`` for a day set (none for every day)."""
    days = DAY_SET_WEEKDAYS.get(day_set)
    return [{"condition": "time", "weekday": list(days)}] if days else []


_DAY_NOUNS = {"daily": "days", "weekdays": "weekdays", "weekend": "weekend days"}


def time_pattern(habit: TimeHabit, names: Mapping[str, str], round_min: int) -> Pattern:
    """A clock-time or sun-relative habit as a pattern with its automation."""
    name = entity_name(habit.entity_id, names)
    phrase = state_phrase(habit.entity_id, habit.state)
    days_text = DAY_SET_TEXT[habit.days]
    conditions = weekday_conditions(habit.days)
    weekdays = DAY_SET_WEEKDAYS.get(habit.days)
    pattern_conditions = {"weekdays": list(weekdays)} if weekdays else None
    step = max(1, round_min)
    if habit.basis == "clock":
        at = clock_text(round(habit.minute / step) * step)
        when_text = f"around {at}"
        trigger: dict[str, Any] = {"type": "time", "at": at}
        ha_trigger: dict[str, Any] = {"trigger": "time", "at": f"{at}:00"}
        pattern_id = f"time_of_day:{habit.entity_id}:{habit.state}:{habit.days}:{habit.ordinal}"
        kind: PatternKind = "time_of_day"
    else:
        offset = int(round(habit.minute / step) * step)
        when_text = offset_text(offset, habit.basis)
        trigger = {"type": "sun", "event": habit.basis, "offset_min": offset}
        ha_trigger = {"trigger": "sun", "event": habit.basis, "offset": offset_duration(offset)}
        pattern_id = f"sun:{habit.entity_id}:{habit.state}:{habit.basis}:{habit.days}:{habit.ordinal}"
        kind = "sun"
    text = f"{name} {phrase} {when_text} {days_text}"
    evidence = Evidence(
        occurrences=habit.occurrences,
        action_count=habit.action_count,
        support_days=habit.support_days,
        eligible_days=habit.eligible_days,
        coverage=habit.occurrences / habit.action_count if habit.action_count else 0.0,
        # The clock or the sun 'fires' once per eligible day.
        precision=habit.support_days / habit.eligible_days if habit.eligible_days else 0.0,
        trigger_count=habit.eligible_days,
        text=(
            f"On {habit.support_days} of the {habit.eligible_days} {_DAY_NOUNS[habit.days]}, "
            f"{name} {past_phrase(habit.entity_id, habit.state)} {when_text} "
            f"(usually within {max(1, round(habit.spread_min))} min); "
            f"that is {habit.occurrences} of the {habit.action_count} times it happened"
        ),
    )
    return Pattern(
        id=pattern_id,
        kind=kind,
        text=text,
        trigger=trigger,
        conditions=pattern_conditions,
        action=action_of(habit.entity_id, habit.state),
        entities=targets_of(habit.entity_id),
        support_days=habit.support_days,
        occurrences=habit.occurrences,
        confidence=habit.confidence,
        evidence=evidence,
        automation=automation_config(
            alias=text,
            description=_description(evidence),
            triggers=[ha_trigger],
            conditions=conditions,
            calls=required_calls(habit.entity_id, habit.state),
        ),
    )


def _description(evidence: Evidence) -> str:
    return f"Suggested by HomeIQ: {evidence.text}."


def _delay_text(seconds: float) -> str:
    if seconds < 60:
        return "less than a minute"
    return f"about {round(seconds / 60)} min"


_FIXED_CONDITION_TEXTS = {
    ("sun", "below_horizon"): "it is dark",
    ("sun", "above_horizon"): "it is light",
    ("presence", "home"): "someone is home",
    ("presence", "not_home"): "nobody is home",
}


def _condition_text(condition: Condition, words: Words) -> str:
    """The condition in words, to follow "when" ("they are off", "it is dark")."""
    if (fixed := _FIXED_CONDITION_TEXTS.get((condition.kind, condition.state))) is not None:
        return fixed
    if condition.kind == "time":
        return f"it is between {clock_text(condition.after_min)} and {clock_text(condition.before_min)}"
    state = condition.state.replace("_", " ")
    if condition.kind == "target":
        plural = len(condition.entity_ids) > 1
        subject = "they" if plural else "it"
        if condition.for_min:
            return f"{subject} {'have' if plural else 'has'} been {state} for {condition.for_min} min"
        return f"{subject} {'are' if plural else 'is'} {state}"
    sensor_id = condition.entity_ids[0]
    sensor = entity_name(sensor_id, words.names)
    kind = sensor_kind(sensor_id, words.device_classes.get(sensor_id))
    if condition.state == "off" and kind is not None:
        state = "closed" if kind == "opening" else "without motion"
    return f"{sensor} has been {state} for {condition.for_min} min"


def _ha_condition(condition: Condition) -> dict[str, Any]:
    """The condition in Home Assistant's automation syntax."""
    if condition.kind in ("target", "quiet"):
        ids = condition.entity_ids
        out: dict[str, Any] = {
            "condition": "state",
            "entity_id": ids[0] if len(ids) == 1 else list(ids),
            "state": condition.state,
        }
        if condition.for_min:
            out["for"] = {"minutes": condition.for_min}
        return out
    if condition.kind == "sun":
        return {"condition": "state", "entity_id": "sun.sun", "state": condition.state}
    if condition.kind == "presence":
        bound = {"above": 0} if condition.state == "home" else {"below": 1}
        return {"condition": "numeric_state", "entity_id": HOUSEHOLD, **bound}
    return {
        "condition": "time",
        "after": f"{clock_text(condition.after_min)}:00",
        "before": f"{clock_text(condition.before_min)}:00",
    }


def _contract_conditions(conditions: tuple[Condition, ...]) -> dict[str, Any] | None:
    """The pattern contract's ``conditions``: ``states``, ``sun``, ``presence``, ``time``."""
    out: dict[str, Any] = {}
    for condition in conditions:
        if condition.kind in ("target", "quiet"):
            ids = condition.entity_ids
            entry: dict[str, Any] = {
                "entity_id": ids[0] if len(ids) == 1 else list(ids),
                "state": condition.state,
            }
            if condition.for_min:
                entry["for_min"] = condition.for_min
            out.setdefault("states", []).append(entry)
        elif condition.kind == "time":
            out["time"] = {
                "after": clock_text(condition.after_min),
                "before": clock_text(condition.before_min),
            }
        else:
            out[condition.kind] = condition.state
    return out or None


def _ha_trigger(entity_id: str, state: str) -> dict[str, Any]:
    if entity_id == HOUSEHOLD:
        bound = {"above": 0} if state == "home" else {"below": 1}
        return {"trigger": "numeric_state", "entity_id": HOUSEHOLD, **bound}
    return {"trigger": "state", "entity_id": entity_id, "to": state}


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def sequence_pattern(habit: SequenceHabit, words: Words) -> Pattern:
    """A trigger-action rule as a pattern: when A changes (and its conditions hold), set B."""
    names = words.names
    b_name = entity_name(habit.entity_id, names)
    delay = _delay_text(habit.median_delay_s)
    trigger_text = _event_text(habit.trigger_entity, habit.trigger_state, words)
    if_text = _joined([_condition_text(c, words) for c in habit.conditions]) if habit.conditions else ""
    text = f"{b_name} {state_phrase(habit.entity_id, habit.state)} {delay} after {trigger_text}"
    if if_text:
        text += f", when {if_text}"
    these = "these" if len(targets_of(habit.entity_id)) > 1 else "this"
    evidence = Evidence(
        occurrences=habit.occurrences,
        action_count=habit.action_count,
        support_days=habit.support_days,
        eligible_days=habit.eligible_days,
        coverage=habit.coverage,
        precision=habit.precision,
        trigger_count=habit.trigger_count,
        text=(
            f"{habit.occurrences} of the {habit.action_count} times {b_name} "
            f"{past_phrase(habit.entity_id, habit.state)}, "
            f"{_past_event_text(habit.trigger_entity, habit.trigger_state, words, before=True)} "
            f"{delay} before, on {habit.support_days} of {habit.eligible_days} days; "
            f"{habit.followed} of the {habit.trigger_count} times "
            f"{_past_event_text(habit.trigger_entity, habit.trigger_state, words)}"
            f"{' while ' + if_text if if_text else ''}, {these} followed"
        ),
    )
    condition_id = "".join(f":{_condition_key(c)}" for c in habit.conditions)
    return Pattern(
        id=f"sequence:{habit.trigger_entity}:{habit.trigger_state}:{habit.entity_id}:{habit.state}{condition_id}",
        kind="sequence",
        text=text,
        trigger={"type": "state", "entity_id": habit.trigger_entity, "to": habit.trigger_state},
        conditions=_contract_conditions(habit.conditions),
        action=action_of(habit.entity_id, habit.state),
        entities=(habit.trigger_entity, *targets_of(habit.entity_id)),
        support_days=habit.support_days,
        occurrences=habit.occurrences,
        confidence=habit.confidence,
        evidence=evidence,
        automation=automation_config(
            alias=text,
            description=_description(evidence),
            triggers=[_ha_trigger(habit.trigger_entity, habit.trigger_state)],
            conditions=[_ha_condition(c) for c in habit.conditions],
            calls=required_calls(habit.entity_id, habit.state),
        ),
    )


def _condition_key(condition: Condition) -> str:
    """A stable id part for a condition (kind and what it checks; durations left out, so the id
    survives a re-mined 15 -> 30 min)."""
    if condition.kind == "quiet":
        return f"quiet={condition.entity_ids[0]}"
    if condition.kind == "time":
        return "time"
    return f"{condition.kind}={condition.state}"


def duration_pattern(habit: DurationHabit, names: Mapping[str, str]) -> Pattern:
    """An auto-off habit as a pattern: when the entity has been on for N minutes, switch it off."""
    name = entity_name(habit.entity_id, names)
    for_min = max(1, round(habit.minutes)) if habit.minutes < 30 else round(habit.minutes / 5) * 5
    on_text = state_phrase(habit.entity_id, habit.state)
    text = (
        f"{name} {state_phrase(habit.entity_id, habit.off_state)} by hand about {for_min} min after "
        f"{'they' if len(targets_of(habit.entity_id)) > 1 else 'it'} {on_text}"
    )
    evidence = Evidence(
        occurrences=habit.occurrences,
        action_count=habit.periods,
        support_days=habit.support_days,
        eligible_days=habit.eligible_days,
        coverage=habit.occurrences / habit.periods if habit.periods else 0.0,
        precision=habit.occurrences / habit.periods if habit.periods else 0.0,
        trigger_count=habit.periods,
        text=(
            f"{habit.occurrences} of the {habit.periods} times {name} "
            f"{past_phrase(habit.entity_id, habit.state)}, "
            f"{past_phrase(habit.entity_id, habit.off_state)} by hand about {for_min} min later, "
            f"on {habit.support_days} of {habit.eligible_days} days"
        ),
    )
    targets = targets_of(habit.entity_id)
    return Pattern(
        id=f"duration:{habit.entity_id}:{habit.state}:{habit.off_state}",
        kind="duration",
        text=text,
        trigger={"type": "state", "entity_id": habit.entity_id, "to": habit.state, "for_min": for_min},
        action=action_of(habit.entity_id, habit.off_state),
        entities=targets,
        support_days=habit.support_days,
        occurrences=habit.occurrences,
        confidence=habit.confidence,
        evidence=evidence,
        automation=automation_config(
            alias=f"Turn off {name} after {for_min} min",
            description=_description(evidence),
            triggers=[
                {
                    "trigger": "state",
                    "entity_id": targets[0] if len(targets) == 1 else list(targets),
                    "to": habit.state,
                    "for": {"minutes": for_min},
                }
            ],
            conditions=[],
            calls=required_calls(habit.entity_id, habit.off_state),
        ),
    )
