"""Edge cases of the stores, the automation writer and the analysis bookkeeping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homeiq import history_store as store_module
from custom_components.homeiq.automations import async_create_automation, existing_automation_configs
from custom_components.homeiq.const import DOMAIN
from custom_components.homeiq.history_store import HistoryStore
from custom_components.homeiq.patterns import StateChange
from custom_components.homeiq.suggestions import Suggestion, SuggestionStatus
from tests.integration.addon_server import FakeAddon
from tests.integration.common import FROZEN_NOW, make_entry
from tests.integration.test_analysis import LOCKED, _analyze, _setup, _write_habits

CONFIG = {
    "alias": "Porch light at dusk",
    "triggers": [{"trigger": "time", "at": "19:00:00"}],
    "actions": [{"action": "light.turn_on", "target": {"entity_id": "light.porch"}}],
}


def _write(path: Path, text: str) -> None:
    path.write_text(text)


async def test_a_chattering_day_is_capped(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_CHANGES_PER_DAY", 2)
    history = HistoryStore(hass, "cap")
    start = datetime(2026, 11, 3, tzinfo=UTC)
    for minute in range(3):
        history.add(StateChange("light.a", "on" if minute % 2 else "off", start + timedelta(minutes=minute)))

    assert history.change_count == 2
    assert history.dropped == 1
    assert history.changes_since(start + timedelta(days=1)) == []


async def test_suggestions_round_trip_through_their_stored_form() -> None:
    now = datetime(2026, 11, 3, tzinfo=UTC)
    suggestion = Suggestion(
        id="x",
        text="t",
        kind="time_of_day",
        automation={},
        entities=["light.a"],
        support_days=5,
        occurrences=6,
        confidence=0.7,
        score=0.9,
        category=None,
        priority=None,
        first_seen=now,
        last_seen=now,
        status=SuggestionStatus.SNOOZED,
        snoozed_until=now + timedelta(days=1),
    )

    stored = {**suggestion.as_dict(now), "status": suggestion.status.value}
    assert Suggestion.from_dict(stored) == suggestion
    assert Suggestion.from_dict({"id": "y", "text": "u"}).status is SuggestionStatus.NEW


async def test_existing_automations_are_empty_without_the_automation_component(hass: HomeAssistant) -> None:
    assert existing_automation_configs(hass) == []


async def test_automation_writer_creates_the_file_and_refuses_broken_ones(
    hass: HomeAssistant, automation_setup: None, hass_config_dir: str
) -> None:
    path = Path(hass_config_dir, "automations.yaml")
    await hass.async_add_executor_job(path.unlink)
    config_id, entity_id = await async_create_automation(hass, dict(CONFIG), enable=False)
    assert config_id in await hass.async_add_executor_job(path.read_text)
    assert hass.states.get(entity_id) is not None

    await hass.async_add_executor_job(_write, path, "")
    await async_create_automation(hass, {**CONFIG, "alias": "Second"}, enable=False)

    with pytest.raises(ServiceValidationError) as invalid:
        await async_create_automation(hass, {"triggers": "nonsense"}, enable=False)
    assert invalid.value.translation_key == "invalid_automation"

    await hass.async_add_executor_job(_write, path, "not: a list\n")
    with pytest.raises(HomeAssistantError) as broken:
        await async_create_automation(hass, dict(CONFIG), enable=False)
    assert broken.value.translation_key == "automations_file_invalid"
    assert await hass.async_add_executor_job(path.read_text) == "not: a list\n"  # nothing lost


async def test_automation_writer_reports_an_automation_that_did_not_load(
    hass: HomeAssistant, automation_setup: None, hass_config_dir: str
) -> None:
    await hass.async_add_executor_job(_write, Path(hass_config_dir, "configuration.yaml"), "automation: []\n")

    with pytest.raises(HomeAssistantError) as err:
        await async_create_automation(hass, dict(CONFIG), enable=False)

    assert err.value.translation_key == "automation_not_loaded"


async def test_open_suggestions_no_longer_mined_are_dropped(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    stored = entry.runtime_data.suggestions.store.suggestions
    stale = Suggestion.from_dict({"id": "gone", "text": "an old habit"})
    kept = Suggestion.from_dict({"id": "old-dismissal", "text": "x", "status": "dismissed"})
    stored.update({"gone": stale, "old-dismissal": kept})

    await _analyze(hass, entry)

    assert "gone" not in stored
    assert "old-dismissal" in stored
    assert LOCKED in stored


async def test_query_without_suggestions_does_not_call_the_add_on(
    hass: HomeAssistant, setup_entry: MockConfigEntry, addon: FakeAddon
) -> None:
    response = await hass.services.async_call(
        DOMAIN,
        "get_suggestions",
        {"config_entry_id": setup_entry.entry_id, "query": "energy"},
        blocking=True,
        return_response=True,
    )

    assert response == {"suggestions": []}
    assert not addon.calls("/v1/rerank")


async def test_unload_cancels_a_running_analysis(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    release = asyncio.Event()
    addon.gate = release
    running = hass.async_create_task(entry.runtime_data.analyzer.async_analyze(wait_for_models=True))
    # Time is frozen (asyncio.sleep would never end): wait in the executor, up to 30 s, for the run
    # (backfill, mining) to reach the add-on.
    for _ in range(3_000):
        if addon.calls("/v1/suggest"):
            break
        await hass.async_add_executor_job(time.sleep, 0.01)
    assert addon.calls("/v1/suggest")

    assert await hass.config_entries.async_unload(entry.entry_id)
    release.set()

    assert entry.state is ConfigEntryState.NOT_LOADED
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_damaged_stored_records_are_skipped_not_fatal(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, hass_storage: dict[str, Any]
) -> None:
    # Both days lie inside the 28-day window that ends at the frozen now (else load prunes them).
    garbage_day, good_day = ((FROZEN_NOW - timedelta(days=n)).date().isoformat() for n in (14, 13))
    entry = make_entry(addon)
    hass_storage[f"{DOMAIN}.{entry.entry_id}.suggestions"] = {
        "version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}.suggestions",
        "data": {
            "suggestions": [
                {"id": "kept", "text": "porch light at dusk", "status": "dismissed"},
                {"text": "no id"},
                {"id": "bad-status", "text": "t", "status": "maybe"},
            ]
        },
    }
    hass_storage[f"{DOMAIN}.{entry.entry_id}.history"] = {
        "version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}.history",
        "data": {
            "days": {
                garbage_day: "garbage",
                good_day: {"e": ["light.a"], "c": [[0, "on", 5.0, None, None, None], [1]]},
            }
        },
    }
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    data = entry.runtime_data
    assert list(data.suggestions.store.suggestions) == ["kept"]
    assert data.suggestions.store.suggestions["kept"].status is SuggestionStatus.DISMISSED
    assert data.history.store.change_count == 1
