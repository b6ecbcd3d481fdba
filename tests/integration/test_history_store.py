"""The history store's files on HA's (test) storage: what is written when, and what is read back."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.json import prepare_save_json
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.homeiq.history_format import DayLog, decode_day, encode_day
from custom_components.homeiq.history_store import HistoryStore, next_save_at
from custom_components.homeiq.patterns import StateChange
from tests.integration.common import FROZEN_NOW

USER = "0123456789abcdef0123456789abcdef"
CONTEXT = "01JABCDEFGHJKMNPQRSTVWXYZ0"
# The UTC midnight three days before the frozen now: a whole day in the past.
DAY = datetime.combine((FROZEN_NOW - timedelta(days=3)).date(), datetime.min.time(), tzinfo=FROZEN_NOW.tzinfo)
INDEX = "homeiq.wear.history"


def _day_key(day: datetime, entry: str = "wear") -> str:
    return f"homeiq.{entry}.history.{day.date().isoformat()}"


def _size(stored: dict[str, Any]) -> int:
    """The bytes HA's `Store` writes for a stored envelope (indented JSON)."""
    return len(prepare_save_json(stored)[1])


def _change(at: datetime, entity: int = 0, **ids: str | None) -> StateChange:
    return StateChange(f"light.lamp_{entity}", "on" if at.minute % 4 else "off", at, **ids)


class WriteCounter:
    """Counts the writes of each key in `hass_storage` (each write stores a new object)."""

    def __init__(self, storage: dict[str, Any], prefix: str) -> None:
        self._storage, self._prefix = storage, prefix
        self._seen: dict[str, int] = {}
        self.writes: Counter[str] = Counter()
        self.bytes = 0

    def check(self) -> None:
        for key, stored in self._storage.items():
            if key.startswith(self._prefix) and self._seen.get(key) != id(stored):
                self._seen[key] = id(stored)
                self.writes[key] += 1
                self.bytes += _size(stored)


def test_a_day_round_trips_through_its_compact_form() -> None:
    log = DayLog()
    rows = [
        StateChange("light.a", "on", DAY, CONTEXT, USER, None),
        StateChange("media_player.tv", "Playing: Rock, Paper; 100%", DAY, "ctx,with;odd%ids", None, "p%2C"),
        StateChange("light.a", "off", DAY, None, USER, CONTEXT),
        StateChange("person.ann", "Café ☕", DAY, "", "", ""),
    ]
    for milliseconds, change in enumerate(rows):
        log.append(change, milliseconds * 1_000)

    decoded = decode_day(encode_day(log))

    assert decoded is not None
    assert [(decoded.entities[r[0]], *r[1:]) for r in decoded.rows] == [
        ("light.a", "on", 0, CONTEXT, USER, None),
        ("media_player.tv", "Playing: Rock, Paper; 100%", 1_000, "ctx,with;odd%ids", None, "p%2C"),
        ("light.a", "off", 2_000, None, USER, CONTEXT),
        ("person.ann", "Café ☕", 3_000, None, None, None),  # empty ids are kept as None
    ]


def test_damaged_rows_are_skipped_and_a_damaged_day_is_no_day() -> None:
    stored = {
        "entities": ["light.a"],
        "states": ["on"],
        "users": [USER],
        "rows": "0,0,5,c,0,;1,0,5,,,;0,1,5,,,;0,0,x,,,;0,0,6,,-1,;0,0",
    }

    decoded = decode_day(stored)

    assert decoded is not None
    assert decoded.rows == [(0, "on", 5, "c", USER, None)]
    assert decode_day({"entities": ["light.a"], "states": ["on"], "rows": ""}) is None
    assert decode_day("garbage") is None


def test_the_save_grid_is_every_six_hours_from_utc_midnight() -> None:
    assert next_save_at(DAY) == DAY + timedelta(hours=6)
    assert next_save_at(DAY + timedelta(hours=5, minutes=59)) == DAY + timedelta(hours=6)
    assert next_save_at(DAY + timedelta(hours=23)) == DAY + timedelta(days=1)


async def test_a_day_of_changes_writes_its_file_once_and_the_index_four_times(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(DAY)
    store = HistoryStore(hass, "wear")
    store.mark_recorded(DAY)
    store.start_intake(DAY)
    counter = WriteCounter(hass_storage, INDEX)
    # A change every two minutes, of five lamps in turn: the index is saved by its own timer.
    for minute in range(1, 24 * 60, 2):
        at = DAY + timedelta(minutes=minute, seconds=7)
        freezer.move_to(at)
        async_fire_time_changed(hass, at)
        await hass.async_block_till_done()
        counter.check()
        store.add(_change(at, minute % 5, context_id=CONTEXT, user_id=USER if minute % 3 else None))
        store.async_schedule_save()
    freezer.move_to(DAY + timedelta(days=1, seconds=1))
    async_fire_time_changed(hass, DAY + timedelta(days=1, seconds=1))
    await hass.async_block_till_done()
    counter.check()

    assert counter.writes == {INDEX: 4, _day_key(DAY): 1}  # 06, 12, 18 and 24 h; the day at midnight
    day_bytes = _size(hass_storage[_day_key(DAY)])
    assert counter.bytes <= 3 * day_bytes
    assert hass_storage[INDEX]["data"]["days"] == [DAY.date().isoformat()]
    assert hass_storage[INDEX]["data"]["open"] == {}
    # Saved by the timer, when the clock said 00:00:01.
    assert hass_storage[INDEX]["data"]["recorded_until"] == (DAY + timedelta(days=1, seconds=1)).isoformat()


async def test_changes_after_the_last_save_are_not_claimed(hass: HomeAssistant) -> None:
    store = HistoryStore(hass, "crash")
    store.mark_recorded(DAY)
    store.start_intake(DAY)
    store.add(_change(DAY + timedelta(hours=1)))
    await store.async_save(DAY + timedelta(hours=6))
    store.add(_change(DAY + timedelta(hours=7)))  # then Home Assistant crashes: no save

    reloaded = HistoryStore(hass, "crash")
    await reloaded.async_load()

    # The next start backfills from 06:00, where the 07:00 change still is in the recorder.
    assert reloaded.recorded_until == DAY + timedelta(hours=6)
    assert [c.when for c in reloaded.changes_since(DAY)] == [DAY + timedelta(hours=1)]


async def test_a_backfill_skips_the_changes_already_logged(hass: HomeAssistant) -> None:
    store = HistoryStore(hass, "dedupe")
    live = _change(DAY + timedelta(hours=1, microseconds=400), context_id=CONTEXT)
    store.add(live)
    # Read again from the recorder (float seconds), with one change the intake did not see.
    missed = _change(DAY + timedelta(hours=2), context_id=CONTEXT)
    recorded = [_change(DAY + timedelta(hours=1, microseconds=401), context_id=CONTEXT), missed]

    assert store.add_recorded(recorded) == 1
    assert store.add_recorded(recorded) == 0
    assert [c.when for c in store.changes_since(DAY)] == [live.when.replace(microsecond=0), missed.when]


async def test_a_version_1_file_is_migrated_and_its_days_get_their_own_files(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    first, second, damaged = ((DAY - timedelta(days=n)).date().isoformat() for n in (2, 1, 3))
    hass_storage["homeiq.old.history"] = {
        "version": 1,
        "key": "homeiq.old.history",
        "data": {
            "recorded_until": (DAY + timedelta(hours=12)).isoformat(),
            "days": {
                first: {"e": ["light.a"], "c": [[0, "on", 3600.5, CONTEXT, USER, None], [7]]},
                second: {"e": ["light.a", "switch.b"], "c": [[1, "off", 60.0, None, None, CONTEXT]]},
                damaged: "garbage",
            },
        },
    }
    store = HistoryStore(hass, "old")
    await store.async_load()

    assert [
        (c.entity_id, c.state, c.when, c.context_id, c.user_id, c.parent_id)
        for c in store.changes_since(DAY - timedelta(days=9))
    ] == [
        ("light.a", "on", DAY - timedelta(days=2) + timedelta(seconds=3600.5), CONTEXT, USER, None),
        ("switch.b", "off", DAY - timedelta(days=1) + timedelta(seconds=60), None, None, CONTEXT),
    ]
    # The damaged day is read again from the recorder: recorded_until moved back to its start.
    assert store.recorded_until == DAY - timedelta(days=3)
    assert hass_storage["homeiq.old.history"]["version"] == 2

    store.mark_recorded(DAY + timedelta(hours=12))
    await store.async_save(DAY + timedelta(hours=12))
    index = hass_storage["homeiq.old.history"]["data"]
    assert index["days"] == [first, second]
    assert index["open"] == {}
    reloaded = HistoryStore(hass, "old")
    await reloaded.async_load()
    assert reloaded.changes_since(DAY - timedelta(days=9)) == store.changes_since(DAY - timedelta(days=9))


async def test_a_missing_day_file_is_read_again_from_the_recorder(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    store = HistoryStore(hass, "wear")
    for days_ago in (3, 2, 1):
        store.add(_change(DAY - timedelta(days=days_ago) + timedelta(hours=8)))
    store.mark_recorded(DAY)
    await store.async_save(DAY)
    del hass_storage[_day_key(DAY - timedelta(days=2))]

    reloaded = HistoryStore(hass, "wear")
    await reloaded.async_load()

    assert reloaded.recorded_until == DAY - timedelta(days=2)
    assert reloaded.day_count == 2


async def test_pruned_days_lose_their_files_and_removal_deletes_every_file(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    store = HistoryStore(hass, "wear")
    for days_ago in (40, 3, 2):
        store.add(_change(DAY - timedelta(days=days_ago) + timedelta(hours=8)))
    store.add(_change(DAY + timedelta(hours=8)))  # today: open, kept in the index
    store.mark_recorded(DAY + timedelta(hours=9))
    await store.async_save(DAY + timedelta(hours=9))
    assert _day_key(DAY - timedelta(days=40)) in hass_storage

    assert store.prune(DAY - timedelta(days=28)) == 1
    await store.async_save(DAY + timedelta(hours=12))
    assert _day_key(DAY - timedelta(days=40)) not in hass_storage
    assert sorted(key for key in hass_storage if key.startswith(INDEX)) == [
        INDEX,
        _day_key(DAY - timedelta(days=3)),
        _day_key(DAY - timedelta(days=2)),
    ]

    await HistoryStore(hass, "wear").async_remove()
    assert not [key for key in hass_storage if key.startswith(INDEX)]
