"""The per-day history logs of tracked state changes, persisted in the config entry's `Store`.

`homeiq.<entry_id>.history` holds compact per-day logs, so that the mining window (28 days by
default) works even though the recorder keeps 10 days by default. Days beyond the window are pruned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN
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
