"""What the home's existing automations already do, to avoid suggesting it again.

Reads automation configs in the current syntax (``triggers``/``trigger: time``/``actions``) and in
the older one (``trigger``/``platform: time``/``action``/``service``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Pattern
from .stats import circular_distance

_ENTITY_ID = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")


@dataclass(frozen=True)
class ExistingTrigger:
    """One trigger of an existing automation, reduced to what dedup compares."""

    kind: str
    entities: frozenset[str] = frozenset()
    at_minutes: tuple[float, ...] | None = None  # None: a time trigger at an unknown time
    event: str | None = None


@dataclass(frozen=True)
class ExistingAutomation:
    """The triggers of an automation and the entities its actions touch."""

    triggers: tuple[ExistingTrigger, ...]
    action_entities: frozenset[str]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _entity_ids(value: Any) -> set[str]:
    return {item for item in _as_list(value) if isinstance(item, str) and _ENTITY_ID.match(item)}


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", value.strip())
    if not match:
        return None
    return int(match[1]) * 60 + int(match[2]) + int(match[3] or 0) / 60


def _trigger(raw: Mapping[str, Any]) -> ExistingTrigger:
    kind = str(raw.get("trigger") or raw.get("platform") or "")
    if kind == "time":
        times = [_parse_time(item) for item in _as_list(raw.get("at"))]
        known = tuple(t for t in times if t is not None)
        return ExistingTrigger(kind, at_minutes=known if known and len(known) == len(times) else None)
    if kind == "sun":
        return ExistingTrigger(kind, event=str(raw.get("event", "")))
    return ExistingTrigger(kind, entities=frozenset(_entity_ids(raw.get("entity_id"))))


def _action_entities(node: Any) -> Iterator[str]:
    """Every entity id named under an ``entity_id`` key anywhere in the actions."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "entity_id":
                yield from _entity_ids(value)
            elif isinstance(value, (Mapping, list, tuple)):
                yield from _action_entities(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _action_entities(item)


def parse_automations(configs: Sequence[object]) -> list[ExistingAutomation]:
    """Reduce automation configs to triggers and action entities; malformed entries are skipped."""
    parsed: list[ExistingAutomation] = []
    for config in configs:
        if not isinstance(config, Mapping):
            continue
        raw_triggers = config.get("triggers", config.get("trigger"))
        raw_actions = config.get("actions", config.get("action"))
        triggers = tuple(_trigger(t) for t in _as_list(raw_triggers) if isinstance(t, Mapping))
        parsed.append(ExistingAutomation(triggers, frozenset(_action_entities(raw_actions))))
    return parsed


def is_covered(
    pattern: Pattern, automations: Sequence[ExistingAutomation], time_tolerance_min: float
) -> bool:
    """Whether existing automations with the pattern's trigger act on every one of its targets."""
    trigger = pattern.trigger
    covered: set[str] = set()
    for automation in automations:
        if any(_same_trigger(trigger, existing, time_tolerance_min) for existing in automation.triggers):
            covered |= automation.action_entities
    return all(target in covered for target in pattern.targets)


def _same_trigger(trigger: Mapping[str, Any], existing: ExistingTrigger, time_tolerance_min: float) -> bool:
    kind = trigger["type"]
    # zone.home's first-in / last-out triggers are numeric_state ones in Home Assistant.
    existing_kind = "state" if existing.kind == "numeric_state" else existing.kind
    if kind != existing_kind:
        return False
    if kind == "time":
        at = _parse_time(trigger["at"])
        if existing.at_minutes is None or at is None:
            return True
        return any(float(circular_distance(t, at)) <= time_tolerance_min for t in existing.at_minutes)
    if kind == "sun":
        return bool(existing.event == trigger["event"])
    if kind == "state":
        return trigger["entity_id"] in existing.entities
    return False
