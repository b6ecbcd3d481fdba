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
    """Where the home is: its time zone (IANA name) and, for sun times, its location.

    ``entity_names`` optionally maps entity ids to friendly names for the pattern texts.
    """

    time_zone: str
    latitude: float | None = None
    longitude: float | None = None
    entity_names: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Pattern:
    """A habit found in the history, with its text and a ready automation config.

    ``as_dict`` gives the JSON object of the pattern contract (issue 5).
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
    conditions: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The pattern as a JSON-ready dict (``conditions`` only when there are any)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "trigger": dict(self.trigger),
        }
        if self.conditions:
            out["conditions"] = {key: _plain(value) for key, value in self.conditions.items()}
        out.update(
            {
                "action": dict(self.action),
                "entities": list(self.entities),
                "support_days": self.support_days,
                "occurrences": self.occurrences,
                "confidence": round(self.confidence, 4),
                "automation": _plain(self.automation),
            }
        )
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pattern:
        """The pattern of an ``as_dict`` object (for suggestions kept in a store); KeyError or
        ValueError when a field is missing or malformed."""
        kind = str(data["kind"])
        if kind not in ("time_of_day", "sun", "sequence", "duration"):
            raise ValueError(f"unknown pattern kind {kind!r}")
        return cls(
            id=str(data["id"]),
            kind=kind,  # type: ignore[arg-type]
            text=str(data["text"]),
            trigger=dict(data["trigger"]),
            action=dict(data["action"]),
            entities=tuple(str(e) for e in data["entities"]),
            support_days=int(data["support_days"]),
            occurrences=int(data["occurrences"]),
            confidence=float(data["confidence"]),
            automation=dict(data["automation"]),
            conditions=dict(data["conditions"]) if data.get("conditions") else None,
        )


def _plain(value: Any) -> Any:
    """Deep-copy mappings and sequences into plain dicts and lists (JSON-ready)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
