"""The per-day logs of tracked state changes, persisted in the config entry's `Store` files.

The logs keep the mining window (28 days by default) although the recorder keeps 10 days by
default. An SD card wears with every byte written, so each byte is written few times:

- `homeiq.<entry_id>.history`, the index: `recorded_until`, the finished days that have a file of
  their own, and the open days' logs (today's, or a day not yet complete up to its end).
- `homeiq.<entry_id>.history.<YYYY-MM-DD>`: one finished UTC day, written once
  (`history_format.py` says how).

The index is written on a grid (every `SAVE_INTERVAL` from UTC midnight) when something changed,
at unload and when Home Assistant stops.

Invariant: the files hold every tracked change before `recorded_until`. Changes after it may be
there too: the next start backfills from `recorded_until` and skips what is already logged. So a
crash loses nothing that the recorder still has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from homeassistant.core import CALLBACK_TYPE, CoreState, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .history_format import DayLog, day_start, decode_day, encode_day, is_day, migrate_v1
from .patterns import StateChange

# Version 1 was one file holding every day as lists of row lists; it is migrated on load.
STORAGE_VERSION = 2
DAY_STORAGE_VERSION = 1
# The index (today's log) is written at 00:00, 06:00, 12:00 and 18:00 UTC when it changed: about
# 2.5 times a day's size a day, plus the finished day's own file once.
SAVE_INTERVAL = timedelta(hours=6)
# A bound on one day's log, so that a chattering entity cannot grow the file without limit.
MAX_CHANGES_PER_DAY = 20_000
# A change logged live and read again from the recorder differs by float rounding at most.
_SAME_CHANGE_MS = 1


def next_save_at(now: datetime) -> datetime:
    """The next instant of the save grid after `now`: every `SAVE_INTERVAL` from UTC midnight."""
    now = now.astimezone(UTC)
    midnight = datetime.combine(now.date(), time(), tzinfo=UTC)
    return midnight + ((now - midnight) // SAVE_INTERVAL + 1) * SAVE_INTERVAL


class _IndexStore(Store[dict[str, Any]]):
    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> dict[str, Any]:
        if old_major_version == 1:
            return migrate_v1(old_data)
        raise NotImplementedError


def _day_keys(value: object) -> list[str]:
    return [key for key in value if is_day(key)] if isinstance(value, list | dict) else []


class HistoryStore:
    """Per-day logs of tracked state changes: an index file and one file per finished day."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Create the store for one config entry (nothing is read until `async_load`)."""
        self._hass = hass
        self._key = f"{DOMAIN}.{entry_id}.history"
        self._index = _IndexStore(hass, STORAGE_VERSION, self._key, serialize_in_event_loop=False)
        self._day_stores: dict[str, Store[dict[str, Any]]] = {}
        self._days: dict[str, DayLog] = {}
        self._stale: set[str] = set()  # pruned days whose files are still to be deleted
        self._complete_until: datetime | None = None  # every change before it is logged
        self._live_since: datetime | None = None  # live intake running since
        self._save_lock = asyncio.Lock()
        self._save_timer: CALLBACK_TYPE | None = None
        self.dropped = 0

    def _day_store(self, key: str) -> Store[dict[str, Any]]:
        if (store := self._day_stores.get(key)) is None:
            store = self._day_stores[key] = Store(
                self._hass, DAY_STORAGE_VERSION, f"{self._key}.{key}", serialize_in_event_loop=False
            )
        return store

    async def async_load(self) -> None:
        """Read the index and the day files (an unreadable day is skipped, not fatal).

        A day whose file or entry is missing or damaged moves `recorded_until` back to the day's
        start, so that the backfill reads it again from the recorder.
        """
        data = await self._index.async_load() or {}
        until = data.get("recorded_until")
        recorded_until = dt_util.parse_datetime(until) if isinstance(until, str) else None
        listed = _day_keys(data.get("days"))
        files = await asyncio.gather(*(self._day_store(key).async_load() for key in listed))
        opened = data["open"] if isinstance(data.get("open"), dict) else {}
        for key, raw, in_file in [
            *((key, raw, True) for key, raw in zip(listed, files, strict=True)),
            *((key, opened[key], False) for key in _day_keys(opened)),
        ]:
            if (log := decode_day(raw)) is None:
                if recorded_until is not None:
                    recorded_until = min(recorded_until, day_start(key))
                continue
            log.revision, log.saved_revision = (0, 0) if in_file else (1, -1)
            self._days[key] = log
        self._stale.update(_day_keys(data.get("stale")))
        self._complete_until = recorded_until

    def _slot(self, change: StateChange) -> tuple[DayLog, int] | None:
        """The day log `change` goes to and its time in it; None (dropped) when the day is full."""
        when = change.when.astimezone(UTC)
        midnight = datetime.combine(when.date(), time(), tzinfo=UTC)
        log = self._days.setdefault(when.date().isoformat(), DayLog())
        if len(log.rows) >= MAX_CHANGES_PER_DAY:
            self.dropped += 1
            return None
        return log, round((when - midnight) / timedelta(milliseconds=1))

    def add(self, change: StateChange) -> None:
        """Append one change to its day's log."""
        if (slot := self._slot(change)) is not None:
            slot[0].append(change, slot[1])

    def add_recorded(self, changes: Iterable[StateChange]) -> int:
        """Append changes read from the recorder, skipping those already logged; returns how many."""
        logged: dict[int, set[tuple[str, str, int]]] = {}
        added = 0
        for change in changes:
            if (slot := self._slot(change)) is None:
                continue
            log, milliseconds = slot
            if (seen := logged.get(id(log))) is None:
                seen = logged[id(log)] = {(log.entities[row[0]], row[1], row[2]) for row in log.rows}
            near = range(milliseconds - _SAME_CHANGE_MS, milliseconds + _SAME_CHANGE_MS + 1)
            if any((change.entity_id, change.state, ms) in seen for ms in near):
                continue
            log.append(change, milliseconds)
            seen.add((change.entity_id, change.state, milliseconds))
            added += 1
        return added

    def changes_since(self, start: datetime) -> list[StateChange]:
        """All logged changes at or after `start`, oldest first."""
        start = start.astimezone(UTC)
        result: list[StateChange] = []
        for key in sorted(self._days):
            midnight = day_start(key)
            if midnight.date() < start.date():
                continue
            log = self._days[key]
            for position, state, milliseconds, context_id, user_id, parent_id in log.rows:
                when = midnight + timedelta(milliseconds=milliseconds)
                if when >= start:
                    result.append(
                        StateChange(log.entities[position], state, when, context_id, user_id, parent_id)
                    )
        result.sort(key=lambda change: change.when)
        return result

    def prune(self, before: datetime) -> int:
        """Forget whole UTC days that end before `before` (their files go at the next save).

        Returns the number of days removed.
        """
        cutoff = before.astimezone(UTC).date()
        stale = [key for key in self._days if date.fromisoformat(key) < cutoff]
        for key in stale:
            del self._days[key]
        self._stale.update(stale)
        return len(stale)

    @property
    def day_count(self) -> int:
        """How many days have a log."""
        return len(self._days)

    @property
    def change_count(self) -> int:
        """How many changes are logged in all."""
        return sum(len(log.rows) for log in self._days.values())

    def start_intake(self, since: datetime) -> None:
        """Live changes are logged from `since` on."""
        self._live_since = since

    def stop_intake(self, at: datetime) -> None:
        """Live changes are no longer logged after `at`."""
        self._complete_until = self.recorded_until_at(at)
        self._live_since = None

    def mark_recorded(self, until: datetime) -> None:
        """Every change before `until` is logged (the backfill got this far)."""
        if self._complete_until is None or until > self._complete_until:
            self._complete_until = until

    def recorded_until_at(self, now: datetime) -> datetime | None:
        """The instant before which every change is logged: `now` once the backfill met the intake."""
        live_since, complete_until = self._live_since, self._complete_until
        if live_since is not None and complete_until is not None and complete_until >= live_since:
            return max(now, complete_until)
        return complete_until

    @property
    def recorded_until(self) -> datetime | None:
        """The instant before which every change is logged, as of now."""
        return self.recorded_until_at(dt_util.utcnow())

    @callback
    def async_schedule_save(self) -> None:
        """Save at the next instant of the grid, unless a save is already scheduled."""
        if self._save_timer is None:
            self._save_timer = async_track_point_in_utc_time(
                self._hass, self._async_save_due, next_save_at(dt_util.utcnow())
            )

    @callback
    def async_cancel_save(self) -> None:
        """Cancel the scheduled save (unload and stop save by themselves)."""
        if self._save_timer is not None:
            self._save_timer()
            self._save_timer = None

    async def _async_save_due(self, now: datetime) -> None:
        self._save_timer = None
        # While Home Assistant stops, the final write saves (`Store` would defer the files).
        if self._hass.state is not CoreState.stopping:
            await self.async_save()

    async def async_save(self, now: datetime | None = None) -> None:
        """Write the finished days not yet in their files, then the index; delete pruned days' files.

        Day files first: the index must not list a file, or claim a `recorded_until`, before the
        data is on disk. A day still changing stays in the index until it is finished.
        """
        async with self._save_lock:
            covered = self.recorded_until_at(now or dt_util.utcnow())
            finished = [
                key
                for key in sorted(self._days)
                if covered is not None and day_start(key) + timedelta(days=1) <= covered
            ]
            for key in finished:
                if (log := self._days.get(key)) is not None and log.saved_revision != log.revision:
                    revision = log.revision
                    await self._day_store(key).async_save(encode_day(log))
                    log.saved_revision = revision
            in_files = {
                key for key in finished if (log := self._days.get(key)) and log.saved_revision == log.revision
            }
            stale = sorted(key for key in self._stale if key not in self._days)
            await self._index.async_save(
                {
                    "recorded_until": covered.isoformat() if covered else None,
                    "days": sorted(in_files),
                    "open": {
                        key: encode_day(log) for key, log in sorted(self._days.items()) if key not in in_files
                    },
                    "stale": stale,
                }
            )
            for key in stale:
                await self._day_store(key).async_remove()
                self._day_stores.pop(key, None)
                self._stale.discard(key)

    async def async_remove(self) -> None:
        """Delete every file of the entry (config entry removed)."""
        self.async_cancel_save()
        data = await self._index.async_load() or {}
        keys = {*self._days, *self._stale}
        for name in ("days", "open", "stale"):
            keys.update(_day_keys(data.get(name)))
        for key in sorted(keys):
            await self._day_store(key).async_remove()
        await self._index.async_remove()
