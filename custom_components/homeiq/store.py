"""Persistent state of the integration: per-day history logs and the suggestions.

Two `Store` files per config entry:
- `homeiq.<entry_id>.history`: compact per-day logs of the tracked state changes, so that the
  mining window (28 days by default) works even though the recorder keeps 10 days by default.
  Saved with a delay (it changes with every state change); days beyond the window are pruned.
- `homeiq.<entry_id>.suggestions`: every suggestion with its status (new / accepted /
  dismissed / snoozed until a time), plus the last analysis summary. Saved right away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .patterns import StateChange

STORAGE_VERSION = 1
HISTORY_SAVE_DELAY_S = 60
# A bound on one day's log, so that a chattering entity cannot grow the file without limit.
MAX_CHANGES_PER_DAY = 20_000


@dataclass(slots=True)
class _DayLog:
    """One UTC day: entity ids once, then rows [entity index, state, seconds, ctx, user, parent]."""

    entities: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, change: StateChange, midnight: datetime) -> bool:
        if len(self.rows) >= MAX_CHANGES_PER_DAY:
            return False
        if (position := self.index.get(change.entity_id)) is None:
            position = self.index[change.entity_id] = len(self.entities)
            self.entities.append(change.entity_id)
        offset = round((change.when - midnight).total_seconds(), 3)
        self.rows.append(
            [position, change.state, offset, change.context_id, change.user_id, change.parent_id]
        )
        return True


class HistoryStore:
    """Per-day logs of tracked state changes, persisted in a `Store`."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Create the store for one config entry (nothing is read until `async_load`)."""
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.history")
        self._days: dict[str, _DayLog] = {}
        self.recorded_until: datetime | None = None
        self.dropped = 0

    async def async_load(self) -> None:
        """Read the logs written by an earlier run (an unreadable day is skipped, not fatal)."""
        data = await self._store.async_load() or {}
        if until := data.get("recorded_until"):
            self.recorded_until = dt_util.parse_datetime(until)
        for day, raw in (data.get("days") or {}).items():
            if not isinstance(raw, dict):
                continue
            entities = [str(e) for e in raw.get("e", [])]
            log = _DayLog(entities=entities, index={e: i for i, e in enumerate(entities)})
            log.rows = [list(row) for row in raw.get("c", []) if isinstance(row, list) and len(row) == 6]
            self._days[day] = log

    def add(self, change: StateChange) -> None:
        """Append one change to its day's log."""
        when = change.when.astimezone(UTC)
        key = when.date().isoformat()
        midnight = datetime.combine(when.date(), time(), tzinfo=UTC)
        log = self._days.setdefault(key, _DayLog())
        if not log.add(change, midnight):
            self.dropped += 1

    def add_all(self, changes: Iterable[StateChange]) -> int:
        """Append many changes; returns how many were given."""
        count = 0
        for change in changes:
            self.add(change)
            count += 1
        return count

    def changes_since(self, start: datetime) -> list[StateChange]:
        """All logged changes at or after `start`, oldest first."""
        start = start.astimezone(UTC)
        result: list[StateChange] = []
        for key in sorted(self._days):
            day = date.fromisoformat(key)
            if day < start.date():
                continue
            midnight = datetime.combine(day, time(), tzinfo=UTC)
            log = self._days[key]
            for position, state, offset, context_id, user_id, parent_id in log.rows:
                when = midnight + timedelta(seconds=offset)
                if when >= start:
                    result.append(
                        StateChange(log.entities[position], state, when, context_id, user_id, parent_id)
                    )
        result.sort(key=lambda change: change.when)
        return result

    def prune(self, before: datetime) -> int:
        """Forget whole UTC days that end before `before`; returns the number of days removed."""
        cutoff = before.astimezone(UTC).date()
        stale = [key for key in self._days if date.fromisoformat(key) < cutoff]
        for key in stale:
            del self._days[key]
        return len(stale)

    @property
    def day_count(self) -> int:
        """How many days have a log."""
        return len(self._days)

    @property
    def change_count(self) -> int:
        """How many changes are logged in all."""
        return sum(len(log.rows) for log in self._days.values())

    def async_schedule_save(self) -> None:
        """Save soon; bursts of state changes are written once."""
        self._store.async_delay_save(self._data_to_save, HISTORY_SAVE_DELAY_S)

    async def async_save(self) -> None:
        """Save now (on unload)."""
        await self._store.async_save(self._data_to_save())

    def _data_to_save(self) -> dict[str, Any]:
        # Everything held in memory is logged up to now: say so, so the next start backfills from here.
        self.recorded_until = dt_util.utcnow()
        return {
            "recorded_until": self.recorded_until.isoformat(),
            "days": {key: {"e": log.entities, "c": log.rows} for key, log in sorted(self._days.items())},
        }

    async def async_remove(self) -> None:
        """Delete the file (config entry removed)."""
        await self._store.async_remove()


class SuggestionStatus(StrEnum):
    """Where a suggestion stands with the user."""

    NEW = "new"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"
    SNOOZED = "snoozed"


@dataclass(slots=True)
class Suggestion:
    """A mined pattern as ranked and classified by the add-on, with the user's decision."""

    id: str
    text: str
    kind: str
    automation: dict[str, Any]
    entities: list[str]
    support_days: int
    occurrences: int
    confidence: float
    score: float
    category: str | None
    priority: str | None
    first_seen: datetime
    last_seen: datetime
    status: SuggestionStatus = SuggestionStatus.NEW
    snoozed_until: datetime | None = None
    automation_id: str | None = None
    automation_entity_id: str | None = None
    decided_at: datetime | None = None
    priority_reason: str | None = None
    """Why the add-on gave this priority ("Happens on 24 of 28 days ...")."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """The pattern's evidence: occurrences, action_count, support_days, eligible_days, coverage,
    precision and trigger_count (for rules), and ``text``, the same in words."""

    @property
    def evidence_text(self) -> str:
        """Why this is suggested, in words ("35 of the 39 times ...")."""
        return str(self.evidence.get("text", ""))

    def effective_status(self, now: datetime) -> SuggestionStatus:
        """A snooze that has run out makes the suggestion new again."""
        if self.status is SuggestionStatus.SNOOZED and (
            self.snoozed_until is None or self.snoozed_until <= now
        ):
            return SuggestionStatus.NEW
        return self.status

    def as_dict(self, now: datetime) -> dict[str, Any]:
        """JSON-friendly view, with the effective status."""
        data = asdict(self)
        data["status"] = self.effective_status(now).value
        for key in ("first_seen", "last_seen", "snoozed_until", "decided_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suggestion:
        """Rebuild from `as_dict`-style data (the stored status, not the effective one)."""

        def when(key: str) -> datetime | None:
            value = data.get(key)
            return dt_util.parse_datetime(value) if isinstance(value, str) else None

        first_seen = when("first_seen") or dt_util.utcnow()
        return cls(
            id=str(data["id"]),
            text=str(data["text"]),
            kind=str(data.get("kind", "")),
            automation=dict(data.get("automation") or {}),
            entities=[str(e) for e in data.get("entities", [])],
            support_days=int(data.get("support_days", 0)),
            occurrences=int(data.get("occurrences", 0)),
            confidence=float(data.get("confidence", 0.0)),
            score=float(data.get("score", 0.0)),
            category=data.get("category"),
            priority=data.get("priority"),
            first_seen=first_seen,
            last_seen=when("last_seen") or first_seen,
            status=SuggestionStatus(data.get("status", SuggestionStatus.NEW)),
            snoozed_until=when("snoozed_until"),
            automation_id=data.get("automation_id"),
            automation_entity_id=data.get("automation_entity_id"),
            decided_at=when("decided_at"),
            priority_reason=data.get("priority_reason"),
            evidence=dict(data.get("evidence") or {}),
        )


class SuggestionStore:
    """All suggestions of one config entry and the last analysis summary."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Create the store for one config entry (nothing is read until `async_load`)."""
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.suggestions")
        self.suggestions: dict[str, Suggestion] = {}
        self.last_analysis: dict[str, Any] | None = None
        self.unreachable_since: datetime | None = None

    async def async_load(self) -> None:
        """Read what an earlier run saved."""
        data = await self._store.async_load() or {}
        self.suggestions = {}
        for raw in data.get("suggestions", []):
            try:
                suggestion = Suggestion.from_dict(raw)
            except (KeyError, TypeError, ValueError) as err:
                # One damaged record must not cost the user every other decision.
                LOGGER.warning("Skipping a damaged stored suggestion (%r): %s", raw, err)
                continue
            self.suggestions[suggestion.id] = suggestion
        self.last_analysis = data.get("last_analysis")
        since = data.get("unreachable_since")
        self.unreachable_since = dt_util.parse_datetime(since) if isinstance(since, str) else None

    async def async_save(self) -> None:
        """Write everything now (decisions must not be lost by a crash)."""
        await self._store.async_save(
            {
                "suggestions": [
                    {**s.as_dict(dt_util.utcnow()), "status": s.status.value}
                    for s in self.suggestions.values()
                ],
                "last_analysis": self.last_analysis,
                "unreachable_since": self.unreachable_since.isoformat() if self.unreachable_since else None,
            }
        )

    async def async_remove(self) -> None:
        """Delete the file (config entry removed)."""
        await self._store.async_remove()

    def with_status(self, now: datetime, *statuses: SuggestionStatus) -> list[Suggestion]:
        """Suggestions whose effective status is one of `statuses`, best score first."""
        wanted = set(statuses)
        found = [s for s in self.suggestions.values() if s.effective_status(now) in wanted]
        return sorted(found, key=lambda s: (-s.score, s.text))
