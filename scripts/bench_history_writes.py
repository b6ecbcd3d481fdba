"""Bytes the history store writes per day: the old single file against today's per-day files.

An SD card wears with every byte written. For two homes, the demo home (`make demo`'s seed 3,
about 80 tracked entities) and a 500-entity home, this replays one UTC day of live state changes
after 28 days of history into a real Home Assistant `Store` in a throw-away config directory, and
adds up the size of every file each time it is written (HA writes a whole file each time).

- old: one file `homeiq.<entry>.history` with the whole window, as lists of row lists, saved 60 s
  after the last change (`Store.async_delay_save`, which waits for a quiet minute), as
  history_store.py did up to commit 21142d8;
- new: `HistoryStore` as it is, saved when its schedule says (`next_save_at`), including the
  save at midnight that writes the finished day's own file.

The goal: bytes written per day <= 3x the size of that day's compact data (its own file).
Changes are shaped as the integration reads them back from the recorder: tracked domains only,
every change with a ULID context id (HA gives each state one), user ids as 32 hex digits.

    .venv-ha/bin/python scripts/bench_history_writes.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The repository, and the add-on's sources (demo's harness imports the add-on's launcher).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "addon"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util.ulid import bytes_to_ulid, ulid_at_time

from custom_components.homeiq.const import TRACKED_DOMAINS
from custom_components.homeiq.history_format import day_start
from custom_components.homeiq.history_store import HistoryStore, next_save_at
from custom_components.homeiq.patterns import StateChange
from demo.flow import past_states
from demo.seed import context_bytes
from evaluation.synthetic_home import generate_home

END = datetime(2026, 11, 8, 12, tzinfo=UTC)
WINDOW_DAYS = 28
OLD_SAVE_DELAY = timedelta(seconds=60)
GOAL_RATIO = 3.0


def recorded_changes(seed: int, **home_options: Any) -> list[StateChange]:
    """A synthetic home's tracked changes as the recorder gives them back to the integration."""
    home = generate_home(seed, WINDOW_DAYS + 2, end=END, **home_options)
    changes = []
    for past in past_states(home):
        if past.entity_id.partition(".")[0] not in TRACKED_DOMAINS:
            continue
        stamp = past.when.timestamp()
        context_id = bytes_to_ulid(context_bytes(past.context_id)) if past.context_id else ulid_at_time(stamp)
        parent_id = bytes_to_ulid(context_bytes(past.parent_id)) if past.parent_id else None
        changes.append(
            StateChange(past.entity_id, past.state, past.when, context_id, past.user_id, parent_id)
        )
    return changes


class WriteMeter:
    """Adds up the size of every file in `.storage` that a save wrote (new inode or mtime)."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.bytes = 0
        self.files = 0

    def _snapshot(self) -> dict[str, tuple[int, int, int]]:
        if not self.storage.is_dir():
            return {}
        return {
            path.name: (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            for path in self.storage.iterdir()
            if (stat := path.stat())
        }

    async def measure(self, save: Awaitable[None]) -> None:
        """Run `save` and count what it wrote."""
        before = self._snapshot()
        await save
        for name, seen in self._snapshot().items():
            if before.get(name) != seen:
                self.bytes += seen[2]
                self.files += 1


class OldHistoryFile:
    """The version 1 layout: every day in one file, rows as [entity, state, seconds, ctx, user, parent]."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.store: Store[dict[str, Any]] = Store(hass, 1, "homeiq.old.history")
        self.days: dict[str, dict[str, Any]] = {}
        self._index: dict[str, dict[str, int]] = {}

    def add(self, change: StateChange) -> None:
        key = change.when.date().isoformat()
        day = self.days.setdefault(key, {"e": [], "c": []})
        index = self._index.setdefault(key, {})
        if (position := index.get(change.entity_id)) is None:
            position = index[change.entity_id] = len(day["e"])
            day["e"].append(change.entity_id)
        offset = round((change.when - day_start(key)).total_seconds(), 3)
        day["c"].append([position, change.state, offset, change.context_id, change.user_id, change.parent_id])

    async def async_save(self, now: datetime) -> None:
        await self.store.async_save({"recorded_until": now.isoformat(), "days": self.days})


@dataclass
class DayFigures:
    """What one layout wrote during the measured day."""

    written: int
    writes: int


async def old_day(
    hass: HomeAssistant, meter: WriteMeter, before: list[StateChange], day: list[StateChange]
) -> DayFigures:
    """The old file through the measured day: a write a quiet minute after each burst of changes."""
    old = OldHistoryFile(hass)
    for change in before:
        old.add(change)
    day_end = day_start(day[0].when.date().isoformat()) + timedelta(days=1)
    due: datetime | None = None
    for change in day:
        if due is not None and due <= change.when:
            await meter.measure(old.async_save(due))
            due = None
        old.add(change)
        due = change.when + OLD_SAVE_DELAY  # each change postpones the write
    if due is not None and due <= day_end:
        await meter.measure(old.async_save(due))
    return DayFigures(meter.bytes, meter.files)


async def new_day(
    hass: HomeAssistant, meter: WriteMeter, before: list[StateChange], day: list[StateChange]
) -> tuple[DayFigures, int]:
    """`HistoryStore` through the measured day on its own schedule; also the first start's bytes."""
    store = HistoryStore(hass, "new")
    midnight = day_start(day[0].when.date().isoformat())
    store.add_recorded(before)
    store.mark_recorded(midnight)
    store.start_intake(midnight)
    first_start = WriteMeter(meter.storage)
    await first_start.measure(store.async_save(midnight))
    due: datetime | None = None
    for change in day:
        if due is not None and due <= change.when:
            await meter.measure(store.async_save(due))
            due = None
        store.add(change)
        if due is None:
            due = next_save_at(change.when)
    if due is not None:
        await meter.measure(store.async_save(due))  # midnight: the finished day's own file
    return DayFigures(meter.bytes, meter.files), first_start.bytes


def _split(changes: Iterable[StateChange]) -> tuple[list[StateChange], list[StateChange], str]:
    """The 28 days before the last whole UTC day, and that day."""
    day = (END - timedelta(days=1)).date().isoformat()
    start = day_start(day) - timedelta(days=WINDOW_DAYS)
    before = [c for c in changes if start <= c.when < day_start(day)]
    today = [c for c in changes if c.when.date().isoformat() == day]
    return before, today, day


async def bench_home(name: str, changes: list[StateChange]) -> bool:
    """Print the figures of one home; True when the new layout meets the goal."""
    before, today, day = _split(changes)
    entities = len({c.entity_id for c in changes})
    with tempfile.TemporaryDirectory() as config:
        hass = HomeAssistant(config)
        storage = Path(config, ".storage")
        started = time.perf_counter()
        old = await old_day(hass, WriteMeter(storage), before, today)
        old_s = time.perf_counter() - started
        new, first_start = await new_day(hass, WriteMeter(storage), before, today)
        day_file = (storage / f"homeiq.new.history.{day}").stat().st_size
        await hass.async_stop(force=True)
    ratio = new.written / day_file
    print(f"\n{name}: {entities} tracked entities, {len(today):,} changes on {day} (UTC)")
    rows = [
        ("compact data of the day (its own file)", f"{day_file / 1e3:,.1f} kB"),
        (
            "old: one file, written 60 s after a change",
            f"{old.written / 1e6:,.1f} MB/day, {old.writes} writes",
        ),
        ("new: per-day files, index every 6 h", f"{new.written / 1e3:,.1f} kB/day, {new.writes} writes"),
        ("new / compact day", f"{ratio:.2f}x (goal <= {GOAL_RATIO:.0f}x)"),
        ("old / new", f"{old.written / new.written:,.0f}x"),
        (f"first start: {WINDOW_DAYS} days backfilled, once", f"{first_start / 1e6:,.2f} MB"),
    ]
    for label, value in rows:
        print(f"  {label:<46} {value}")
    print(f"  (old simulated in {old_s:.1f} s; each HA restart adds one index write, today's log so far)")
    return ratio <= GOAL_RATIO


async def main() -> int:
    """Both homes; exit status 1 when a home misses the goal."""
    homes = {
        "demo home (seed 3)": recorded_changes(3),
        "500-entity home (seed 1)": recorded_changes(1, noise_toggles=440, motion_sensors=40),
    }
    met = [await bench_home(name, changes) for name, changes in homes.items()]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
