"""History in: states written at frozen times, read back through the real recorder, kept per day."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE, EntityCategory
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import area_registry as ar, device_registry as dr, entity_registry as er
from homeassistant.helpers.recorder import get_instance
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from custom_components.homeiq import recorder_changes
from custom_components.homeiq.const import (
    CONF_EXCLUDED_AREAS,
    CONF_EXCLUDED_DOMAINS,
    CONF_EXCLUDED_ENTITIES,
    CONF_EXCLUDED_LABELS,
    DOMAIN,
)
from custom_components.homeiq.history import EntitySelector, async_backfill
from custom_components.homeiq.history_format import decode_day
from custom_components.homeiq.history_store import HistoryStore
from custom_components.homeiq.options import EntityExclusions
from custom_components.homeiq.patterns import StateChange
from custom_components.homeiq.recorder_changes import RecorderReader
from tests.integration.addon_server import FakeAddon
from tests.integration.common import FROZEN_NOW, make_entry

USER = "0123456789abcdef0123456789abcdef"
START = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


async def _write_history(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> dict[str, Context]:
    """Three days of changes with each kind of origin, one write per frozen minute."""
    contexts = {}
    for day in range(3):
        at = START + timedelta(days=day)
        freezer.move_to(at)
        contexts[f"user{day}"] = Context(user_id=USER)
        hass.states.async_set("light.porch", "on", context=contexts[f"user{day}"])
        freezer.move_to(at + timedelta(minutes=1))
        # Attribute-only update: not a state change, must not be logged.
        hass.states.async_set("light.porch", "on", {"brightness": 10})
        freezer.move_to(at + timedelta(minutes=2))
        contexts[f"automation{day}"] = Context(parent_id="01JABCDEFGHJKMNPQRSTVWXYZ0")
        hass.states.async_set("light.porch", "off", context=contexts[f"automation{day}"])
        freezer.move_to(at + timedelta(minutes=3))
        hass.states.async_set("switch.kettle", "on")  # physical: no user, no parent
        freezer.move_to(at + timedelta(minutes=4))
        hass.states.async_set("automation.morning", "on", {"last_triggered": at.isoformat()})
        hass.states.async_set("sensor.power", str(100 + day))  # numeric sensor: not tracked
    await async_wait_recording_done(hass)
    return contexts


async def test_backfill_reads_changes_with_their_origin_from_the_recorder(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    contexts = await _write_history(hass, freezer)
    store = HistoryStore(hass, "test")
    selector = EntitySelector(hass, EntityExclusions())

    count = await async_backfill(
        RecorderReader(hass),
        store,
        selector.included_entity_ids(),
        START - timedelta(hours=1),
        START + timedelta(days=3),
    )

    changes = store.changes_since(START - timedelta(hours=1))
    assert count == len(changes)
    porch = [c for c in changes if c.entity_id == "light.porch"]
    assert [(c.state, c.when) for c in porch[:2]] == [("on", START), ("off", START + timedelta(minutes=2))]
    assert porch[0].user_id == USER
    assert porch[0].parent_id is None
    assert porch[0].context_id == contexts["user0"].id
    assert porch[1].parent_id == "01JABCDEFGHJKMNPQRSTVWXYZ0"
    kettle = [c for c in changes if c.entity_id == "switch.kettle"]
    assert len(kettle) == 1  # on once; later writes of the same state are not changes
    assert kettle[0].user_id is None
    assert kettle[0].parent_id is None
    # Automation records keep their attribute-only updates: their contexts mark what they caused.
    assert len([c for c in changes if c.entity_id == "automation.morning"]) == 3
    assert not [c for c in changes if c.entity_id.startswith("sensor.")]
    assert store.day_count == 3


async def test_exclusions_by_entity_domain_area_and_label(hass: HomeAssistant) -> None:
    entities, devices, areas = er.async_get(hass), dr.async_get(hass), ar.async_get(hass)
    garage = areas.async_create("Garage")
    entry = MockConfigEntry(domain="test")
    entry.add_to_hass(hass)
    device = devices.async_get_or_create(config_entry_id=entry.entry_id, identifiers={("test", "d1")})
    devices.async_update_device(device.id, area_id=garage.id)
    entities.async_get_or_create(
        "light", "test", "in_garage", device_id=device.id, suggested_object_id="garage"
    )
    labelled = entities.async_get_or_create("light", "test", "labelled", suggested_object_id="labelled")
    entities.async_update_entity(labelled.entity_id, labels={"guest"})
    entities.async_get_or_create(
        "light", "test", "config", suggested_object_id="cfg", entity_category=EntityCategory.CONFIG
    )
    entities.async_get_or_create("button", "homeiq", "ours", suggested_object_id="ours")
    entities.async_get_or_create("switch", "homeiq", "own_switch", suggested_object_id="own")
    for entity_id in ("light.kitchen", "light.hall", "media_player.tv", "fan.bedroom"):
        hass.states.async_set(entity_id, "off")
    selector = EntitySelector(
        hass,
        EntityExclusions(
            entities=frozenset({"light.hall"}),
            domains=frozenset({"media_player"}),
            areas=frozenset({garage.id}),
            labels=frozenset({"guest"}),
        ),
    )

    assert selector.included_entity_ids() == ["fan.bedroom", "light.kitchen"]
    assert selector.is_included("automation.anything")
    assert not selector.is_included("sensor.power")


async def test_live_changes_are_logged_and_survive_a_reload(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    freezer.move_to(START)
    entry = make_entry(
        addon,
        **{
            CONF_EXCLUDED_ENTITIES: ["light.hall"],
            CONF_EXCLUDED_DOMAINS: [],
            CONF_EXCLUDED_AREAS: [],
            CONF_EXCLUDED_LABELS: [],
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    freezer.tick(timedelta(minutes=5))
    user = Context(user_id=USER)
    hass.states.async_set("light.kitchen", "on", context=user)
    hass.states.async_set("light.kitchen", "on", {"brightness": 3})
    hass.states.async_set("light.hall", "on")
    hass.states.async_set("light.kitchen", "unavailable")
    hass.states.async_remove("light.kitchen")
    await hass.async_block_till_done()

    logged = entry.runtime_data.history.store.changes_since(START)
    assert [(c.entity_id, c.state, c.user_id) for c in logged] == [
        ("light.kitchen", "on", USER),
        ("light.kitchen", "unavailable", None),
    ]

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    history = entry.runtime_data.history.store
    assert [(c.entity_id, c.state) for c in history.changes_since(START)] == [
        ("light.kitchen", "on"),
        ("light.kitchen", "unavailable"),
    ]
    assert history.recorded_until is not None
    assert history.recorded_until >= START + timedelta(minutes=5)


async def test_store_keeps_days_beyond_the_recorder_and_prunes_beyond_the_window(hass: HomeAssistant) -> None:
    store = HistoryStore(hass, "window")
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    for days_ago in (40, 27, 20, 1):
        store.add(StateChange("light.porch", "on", now - timedelta(days=days_ago), user_id=USER))
    await store.async_save()

    reloaded = HistoryStore(hass, "window")
    await reloaded.async_load()
    assert reloaded.day_count == 4
    assert reloaded.prune(now - timedelta(days=28)) == 1
    window = reloaded.changes_since(now - timedelta(days=28))
    assert [round((now - c.when) / timedelta(days=1)) for c in window] == [27, 20, 1]
    assert window[0].user_id == USER


def _porch(changes: list[StateChange]) -> list[tuple[str, datetime]]:
    return [(c.state, c.when) for c in changes if c.entity_id == "light.porch"]


@pytest.mark.usefixtures("automation_setup")
async def test_an_unload_during_the_first_backfill_leaves_the_rest_for_the_next_start(
    hass: HomeAssistant,
    addon: FakeAddon,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = Context(user_id=USER)
    for days_ago, state in ((3, "on"), (2, "off"), (1, "on")):
        freezer.move_to(FROZEN_NOW - timedelta(days=days_ago))
        hass.states.async_set("light.porch", state, context=user)
    await async_wait_recording_done(hass)
    freezer.move_to(FROZEN_NOW)
    # The recorder answers the backfill's first day, then is slow: the entry unloads meanwhile.
    recorder = get_instance(hass)
    run_job = recorder.async_add_executor_job
    reads, second_read, release = 0, asyncio.Event(), asyncio.Event()

    def slow_second_read(target: Any, *args: Any) -> Any:
        nonlocal reads
        if getattr(target, "func", target).__module__.startswith("custom_components.homeiq"):
            reads += 1
            if reads == 2:

                async def held() -> Any:
                    second_read.set()
                    await release.wait()
                    return await run_job(target, *args)

                return asyncio.get_running_loop().create_task(held())
        return run_job(target, *args)

    monkeypatch.setattr(recorder, "async_add_executor_job", slow_second_read)
    entry = make_entry(addon)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await second_read.wait()
    freezer.tick(timedelta(minutes=1))
    hass.states.async_set("light.porch", "off", context=user)  # live: logged, and in the recorder
    await async_wait_recording_done(hass)

    assert await hass.config_entries.async_unload(entry.entry_id)
    # Only the first day of the window was read: the rest is still to be backfilled.
    first_day_read = FROZEN_NOW - timedelta(days=27)
    saved = hass_storage[f"{DOMAIN}.{entry.entry_id}.history"]["data"]
    assert saved["recorded_until"] == first_day_read.isoformat()

    monkeypatch.undo()
    release.set()
    freezer.tick(timedelta(minutes=1))
    assert await hass.config_entries.async_setup(entry.entry_id)
    history = entry.runtime_data.history
    await history.async_wait_ready()
    # Every change once: the live one was saved and is read again from the recorder.
    assert _porch(history.store.changes_since(FROZEN_NOW - timedelta(days=28))) == [
        ("on", FROZEN_NOW - timedelta(days=3)),
        ("off", FROZEN_NOW - timedelta(days=2)),
        ("on", FROZEN_NOW - timedelta(days=1)),
        ("off", FROZEN_NOW + timedelta(minutes=1)),
    ]


async def test_an_automation_update_is_logged_when_it_happened(
    hass: HomeAssistant, setup_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    hass.states.async_set("automation.morning", "on", {"last_triggered": None})
    freezer.tick(timedelta(hours=2))
    triggered = Context()
    hass.states.async_set("automation.morning", "on", {"last_triggered": "now"}, context=triggered)
    await hass.async_block_till_done()

    logged = setup_entry.runtime_data.history.store.changes_since(FROZEN_NOW)
    # The attribute update keeps last_changed at the first change: the log (and the recorder) use
    # last_updated, when the automation ran.
    assert [(c.context_id, c.when) for c in logged][-1] == (triggered.id, FROZEN_NOW + timedelta(hours=2))


async def test_home_assistant_stopping_writes_the_log(
    hass: HomeAssistant, setup_entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    hass.states.async_set("light.kitchen", "on", context=Context(user_id=USER))
    await hass.async_block_till_done()
    saved_before = hass_storage.get(f"{DOMAIN}.{setup_entry.entry_id}.history")

    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()

    index = hass_storage[f"{DOMAIN}.{setup_entry.entry_id}.history"]
    assert index is not saved_before
    today = decode_day(index["data"]["open"][FROZEN_NOW.date().isoformat()])
    assert today is not None
    assert [(today.entities[row[0]], row[1], row[4]) for row in today.rows] == [("light.kitchen", "on", USER)]
    assert index["data"]["recorded_until"] == FROZEN_NOW.isoformat()


def _recorder_changes_without_internals(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh copy of recorder_changes, imported while the recorder's `db_schema` is missing."""
    spec = importlib.util.spec_from_file_location(
        "custom_components.homeiq.recorder_changes_without_internals", recorder_changes.__file__
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "homeassistant.components.recorder.db_schema", None)
        spec.loader.exec_module(module)
    return module


def _fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    return [message for message in messages if "history API" in message]


async def test_without_the_recorder_internals_the_history_api_gives_the_changes_without_context(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _write_history(hass, freezer)
    without_internals = _recorder_changes_without_internals(monkeypatch)
    entity_ids = EntitySelector(hass, EntityExclusions()).included_entity_ids()
    start, end = START - timedelta(hours=1), START + timedelta(days=3)
    direct, fallback = HistoryStore(hass, "direct"), HistoryStore(hass, "fallback")

    await async_backfill(RecorderReader(hass), direct, entity_ids, start, end)
    await async_backfill(without_internals.RecorderReader(hass), fallback, entity_ids, start, end)

    assert without_internals.DIRECT_QUERY_UNAVAILABLE is not None
    # The same changes (attribute-only updates left out, automation updates kept), no origin.
    expected = [(c.entity_id, c.state, c.when) for c in direct.changes_since(start)]
    assert len(expected) == 10
    assert [(c.entity_id, c.state, c.when) for c in fallback.changes_since(start)] == expected
    assert {(c.context_id, c.user_id, c.parent_id) for c in fallback.changes_since(start)} == {
        (None, None, None)
    }
    # Four days were read; the warning says once what is lost.
    [warning] = _fallback_warnings(caplog)
    assert "not importable" in warning
    assert "context ids" in warning


async def test_a_failing_direct_query_falls_back_to_the_history_api_with_one_warning(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _write_history(hass, freezer)
    # A release renamed the recorder's table model: building the query fails at run time.
    monkeypatch.setattr(recorder_changes, "States", object())
    reader = RecorderReader(hass)
    store = HistoryStore(hass, "renamed")
    entity_ids = EntitySelector(hass, EntityExclusions()).included_entity_ids()

    count = await async_backfill(
        reader, store, entity_ids, START - timedelta(hours=1), START + timedelta(days=3)
    )

    assert count == 10
    assert not reader.has_context
    assert _porch(store.changes_since(START))[:2] == [("on", START), ("off", START + timedelta(minutes=2))]
    [warning] = _fallback_warnings(caplog)
    assert "query of the recorder's tables failed" in warning
