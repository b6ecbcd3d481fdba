"""Plain records the pattern engine reads and writes: no Home Assistant objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

PatternKind = Literal["time_of_day", "sun", "sequence", "duration"]


@dataclass(frozen=True, slots=True)
class StateChange:
    """One state change of one entity, as the recorder or the event bus reports it.

    ``parent_id`` set means an automation or script caused the change: it is not a habit.
    ``user_id`` set (app/UI) and neither set (physical switch, device) both count as manual.
    """

    entity_id: str
    state: str
    when: datetime
    context_id: str | None = None
    user_id: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True)
class HomeContext:
    """Where the home is: its time zone (IANA name) and, for sun times, its location (elevation
    in metres, as Home Assistant's configuration has it).

    ``entity_names`` optionally maps entity ids to friendly names for the pattern texts, and
    ``device_classes`` binary sensors to their device class (a ``door`` "opens", a ``motion``
    sensor "detects motion").
    """

    time_zone: str
    latitude: float | None = None
    longitude: float | None = None
    elevation: float = 0.0
    entity_names: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    device_classes: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Evidence:
    """Why a pattern is suggested, in figures and in words.

    ``occurrences`` of the action's ``action_count`` changes in the window are explained by the
    pattern (``coverage`` = their share), on ``support_days`` of ``eligible_days``. For a
    trigger-action rule, ``precision`` is the share of the ``trigger_count`` firings of the trigger
    (with its conditions true) that the action followed; other kinds have no trigger to count.
    """

    occurrences: int
    action_count: int
    support_days: int
    eligible_days: int
    coverage: float
    text: str
    precision: float | None = None
    trigger_count: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The evidence as a JSON-ready dict (``precision`` and ``trigger_count`` when known)."""
        out: dict[str, Any] = {
            "occurrences": self.occurrences,
            "action_count": self.action_count,
            "support_days": self.support_days,
            "eligible_days": self.eligible_days,
            "coverage": round(self.coverage, 4),
        }
        if self.precision is not None:
            out["precision"] = round(self.precision, 4)
        if self.trigger_count is not None:
            out["trigger_count"] = self.trigger_count
        out["text"] = self.text
        return out


@dataclass(frozen=True)
class Pattern:
    """A habit found in the history, with its text, its evidence and a ready automation config.

    ``action["entity_id"]`` is one entity id, or a list when the habit sets several entities
    together (a group of lamps). ``conditions`` holds what must be true when the trigger fires
    (day set, target state, sun, presence, time window, a quiet sensor). ``as_dict`` gives the
    JSON object of the pattern contract.
    """

    id: str
    kind: PatternKind
    text: str
    trigger: Mapping[str, Any]
    action: Mapping[str, Any]
    entities: tuple[str, ...]
    support_days: int
    occurrences: int
    confidence: float
    automation: Mapping[str, Any]
    evidence: Evidence
    conditions: Mapping[str, Any] | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        """The entity ids the suggested automation acts on."""
        target = self.action["entity_id"]
        return (str(target),) if isinstance(target, str) else tuple(str(t) for t in target)

    def automation_config(self) -> dict[str, Any]:
        """The suggested automation as a JSON-ready dict (what the automation editor stores)."""
        return _plain(self.automation)  # type: ignore[no-any-return]

    def as_dict(self) -> dict[str, Any]:
        """The pattern as a JSON-ready dict (``conditions`` only when there are any)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "trigger": _plain(self.trigger),
        }
        if self.conditions:
            out["conditions"] = {key: _plain(value) for key, value in self.conditions.items()}
        out.update(
            {
                "action": _plain(self.action),
                "entities": list(self.entities),
                "support_days": self.support_days,
                "occurrences": self.occurrences,
                "confidence": round(self.confidence, 4),
                "evidence": self.evidence.as_dict(),
                "automation": self.automation_config(),
            }
        )
        return out


def _plain(value: Any) -> Any:
    """Deep-copy mappings and sequences into plain dicts and lists (JSON-ready)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
