"""Patterns and automation configs for detected habits; no statistics here (words: ``phrases.py``).

Automation configs use Home Assistant's current syntax: ``triggers`` / ``conditions`` /
``actions``, ``trigger: time|state|sun``, ``condition: time`` with ``weekday``, and
``action: <domain>.<service>`` with ``target: {entity_id: ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .actions import ServiceCall, service_calls
from .conditions import Condition
from .duration import DurationHabit
from .groups import targets_of
from .model import Evidence, Pattern, PatternKind
from .phrases import (
    DAY_SET_TEXT,
    DAY_SET_WEEKDAYS,
    Words,
    clock_text,
    entity_name,
    event_text,
    offset_duration,
    offset_text,
    past_event_text,
    past_phrase,
    sensor_kind,
    state_phrase,
)
from .presence import HOUSEHOLD
from .sequence import SequenceHabit
from .time_of_day import TimeHabit


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
    trigger_text = event_text(habit.trigger_entity, habit.trigger_state, words)
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
            f"{past_event_text(habit.trigger_entity, habit.trigger_state, words, before=True)} "
            f"{delay} before, on {habit.support_days} of {habit.eligible_days} days; "
            f"{habit.followed} of the {habit.trigger_count} times "
            f"{past_event_text(habit.trigger_entity, habit.trigger_state, words)}"
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
