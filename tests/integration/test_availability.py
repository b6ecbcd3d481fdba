"""The add-on going away and coming back: set-up errors, unavailable entities, repairs, translated errors."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_TOKEN, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.homeiq import analysis as analysis_module
from custom_components.homeiq.const import DOMAIN, HEALTH_INTERVAL
from custom_components.homeiq.coordinator import BUSY_INTERVAL
from custom_components.homeiq.diagnostics import async_get_config_entry_diagnostics
from tests.integration.addon_server import TOKEN, FakeAddon
from tests.integration.common import make_entry
from tests.integration.test_analysis import _analyze, _setup, _write_habits


def _states(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    registry = er.async_get(hass)
    result = {}
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        state = hass.states.get(entity.entity_id)
        assert state is not None
        result[entity.unique_id.removeprefix(f"{entry.entry_id}_")] = state.state
    return result


async def _poll(hass: HomeAssistant, freezer: FrozenDateTimeFactory, after: timedelta) -> None:
    freezer.tick(after)
    async_fire_time_changed(hass)
    # Coordinator refreshes run as background tasks of the config entry.
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_setup_while_the_add_on_is_down_keeps_the_local_entities(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await addon.stop()
    entry = make_entry(addon)
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    states = _states(hass, entry)
    assert states["addon_connectivity"] == "off"
    assert states["analyze"] == "unavailable"
    assert states["suggestions"] == "0"  # local: available
    assert not any(key.startswith("model_") for key in states)  # the roles come from the add-on

    await addon.start()
    await _poll(hass, freezer, timedelta(seconds=31))
    states = _states(hass, entry)
    assert states["addon_connectivity"] == "on"
    assert states["model_embedding"] == "ready"
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert device.sw_version == "0.1.0-test"


async def test_setup_with_a_rejected_token_starts_reauth(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None
) -> None:
    addon.token = "rotated"
    entry = make_entry(addon)
    entry.add_to_hass(hass)

    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_ERROR
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == SOURCE_REAUTH


async def test_setup_against_a_server_without_api_v1_fails(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None
) -> None:
    addon.serve_v1 = False
    entry = make_entry(addon)
    entry.add_to_hass(hass)

    await hass.config_entries.async_setup(entry.entry_id)

    assert entry.state is ConfigEntryState.SETUP_ERROR


async def test_add_on_down_makes_its_entities_unavailable_keeps_local_ones_logs_once_and_recovers(
    hass: HomeAssistant,
    addon: FakeAddon,
    automation_setup: None,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    await _analyze(hass, entry)
    assert _states(hass, entry)["suggestions"] == "4"

    await addon.stop()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        await _poll(hass, freezer, HEALTH_INTERVAL)
        await _poll(hass, freezer, timedelta(seconds=31))
        await _poll(hass, freezer, timedelta(seconds=61))

    states = _states(hass, entry)
    assert states["addon_connectivity"] == "off"
    assert states["analyze"] == "unavailable"
    assert states["model_embedding"] == "unavailable"
    # The suggestions are local: the to-do list and the sensors stay available.
    assert states["suggestions"] == "4"
    assert states["new_suggestions"] == "4"
    assert states["last_analysis"] not in {"unavailable", "unknown"}
    assert len([r for r in caplog.records if "Error fetching homeiq add-on data" in r.getMessage()]) == 1
    coordinator = entry.runtime_data.health
    assert coordinator.update_interval == timedelta(seconds=120)  # 30 s, doubled per failure
    assert len(entry.runtime_data.suggestions.store.suggestions) == 4  # stored suggestions stay
    with pytest.raises(HomeAssistantError) as err:
        await _analyze(hass, entry)
    assert err.value.translation_key == "cannot_connect"

    await addon.start()
    await _poll(hass, freezer, timedelta(seconds=121))
    states = _states(hass, entry)
    assert states["addon_connectivity"] == "on"
    assert states["suggestions"] == "4"
    assert coordinator.update_interval == HEALTH_INTERVAL
    assert states["model_embedding"] == "ready"
    assert "Fetching homeiq add-on data recovered" in caplog.text


async def test_unreachable_for_a_day_raises_a_repair_issue_until_back(
    hass: HomeAssistant, setup_entry: MockConfigEntry, addon: FakeAddon, freezer: FrozenDateTimeFactory
) -> None:
    issue_id = f"addon_unreachable_{setup_entry.entry_id}"
    await addon.stop()
    await _poll(hass, freezer, HEALTH_INTERVAL)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None

    await _poll(hass, freezer, timedelta(hours=25))
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "addon_unreachable"

    await addon.start()
    await _poll(hass, freezer, timedelta(hours=1))
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert setup_entry.runtime_data.health.unreachable_since is None


async def test_models_that_failed_to_load_raise_a_repair_issue(
    hass: HomeAssistant, setup_entry: MockConfigEntry, addon: FakeAddon, freezer: FrozenDateTimeFactory
) -> None:
    issue_id = f"models_failed_{setup_entry.entry_id}"
    addon.model_state, addon.model_error = "error", "no OpenVINO files"
    await _poll(hass, freezer, HEALTH_INTERVAL)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_placeholders == {
        "roles": "classifier, embedding, reranker",
        "errors": "classifier: no OpenVINO files; embedding: no OpenVINO files; reranker: no OpenVINO files",
    }

    addon.model_state = "ready"
    await _poll(hass, freezer, HEALTH_INTERVAL)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_health_answers_that_break_the_contract_mark_the_add_on_down(
    hass: HomeAssistant, setup_entry: MockConfigEntry, addon: FakeAddon, freezer: FrozenDateTimeFactory
) -> None:
    addon.overrides["/v1/models"] = (200, '{"status": "ok"}', {})
    await _poll(hass, freezer, HEALTH_INTERVAL)
    assert _states(hass, setup_entry)["addon_connectivity"] == "off"

    addon.overrides["/v1/models"] = (
        503,
        '{"error": {"code": "busy", "message": "busy"}}',
        {"Retry-After": "5"},
    )
    await _poll(hass, freezer, timedelta(seconds=31))
    assert _states(hass, setup_entry)["addon_connectivity"] == "off"
    # A loading add-on is not unreachable: no repair clock starts.
    assert setup_entry.runtime_data.health.unreachable_since is None


@pytest.mark.parametrize(
    ("breakage", "translation_key"),
    [
        ("loading", "models_loading"),
        ("rejected", "request_rejected"),
        ("not_json", "invalid_response"),
        ("no_v1", "unsupported_api"),
    ],
)
async def test_analysis_errors_are_translated(
    hass: HomeAssistant,
    addon: FakeAddon,
    *,
    automation_setup: None,
    freezer: FrozenDateTimeFactory,
    breakage: str,
    translation_key: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Do not wait for models to load: report at once.
    monkeypatch.setattr(analysis_module, "MODELS_LOADING_WAIT", timedelta(0))
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    if breakage == "loading":
        addon.loading = True
    elif breakage == "rejected":
        addon.overrides["/v1/suggest"] = (413, '{"error": {"code": "too_large", "message": "too many"}}', {})
    elif breakage == "not_json":
        addon.overrides["/v1/suggest"] = (200, "[1, 2]", {})
    else:
        addon.serve_v1 = False

    with pytest.raises(HomeAssistantError) as err:
        await _analyze(hass, entry)

    assert err.value.translation_key == translation_key
    assert entry.runtime_data.suggestions.store.suggestions == {}


async def test_a_rejected_token_during_analysis_starts_reauth(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    await _analyze(hass, entry)
    addon.token = "rotated"

    with pytest.raises(HomeAssistantError) as err:
        await _analyze(hass, entry)
    await hass.async_block_till_done()

    assert err.value.translation_key == "auth_failed"
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == SOURCE_REAUTH
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "get_suggestions",
            {"config_entry_id": entry.entry_id, "query": "porch"},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "auth_failed"


async def test_diagnostics_redact_the_token(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    diagnostics = await async_get_config_entry_diagnostics(hass, setup_entry)

    assert diagnostics["entry"]["data"][CONF_TOKEN] == "**REDACTED**"
    assert TOKEN not in str(diagnostics)
    assert diagnostics["addon"]["reachable"] is True
    assert diagnostics["addon"]["status"]["version"] == "0.1.0-test"
    assert diagnostics["addon"]["status"]["models"]["embedding"]["state"] == "ready"
    assert diagnostics["history"]["days"] == 0
    assert diagnostics["suggestions"] == []


async def test_unload_stops_listening_and_removal_deletes_the_stores(
    hass: HomeAssistant, setup_entry: MockConfigEntry, hass_storage: dict[str, object]
) -> None:
    hass.states.async_set("light.kitchen", "on")
    await hass.async_block_till_done()

    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    assert setup_entry.state is ConfigEntryState.NOT_LOADED
    history_key = f"{DOMAIN}.{setup_entry.entry_id}.history"
    assert history_key in hass_storage
    saved = hass_storage[history_key]
    hass.states.async_set("light.kitchen", "off")
    await hass.async_block_till_done()
    assert hass_storage[history_key] == saved  # no listener left behind

    await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert history_key not in hass_storage


async def test_an_analysis_that_may_wait_waits_while_the_add_on_loads_its_models(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    addon.suggest_loading_for = 2

    summary = await entry.runtime_data.analyzer.async_analyze(wait_for_models=True)

    assert summary["new"] == 4
    assert len(addon.calls("/v1/suggest")) == 3
    # The model sensors followed the load closely while the run waited.
    assert entry.runtime_data.health.update_interval == BUSY_INTERVAL


async def test_the_analyze_action_answers_at_once_while_models_load(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    addon.suggest_loading_for = 1  # the first call starts the models loading (lazy, on first use)

    with pytest.raises(HomeAssistantError) as err:
        await _analyze(hass, entry)
    assert err.value.translation_key == "models_loading"
    assert len(addon.calls("/v1/suggest")) == 1  # not retried: the action does not block
    # The health coordinator now follows the load closely, and the model sensors show it.
    assert entry.runtime_data.health.update_interval == BUSY_INTERVAL
    addon.model_state, addon.model_progress = "downloading", 0.45
    await _poll(hass, freezer, BUSY_INTERVAL)
    state = hass.states.get("sensor.homeiq_embedding_model")
    assert state is not None
    assert state.state == "downloading"
    assert state.attributes["progress"] == 45

    # While a model is busy the action does not even mine: a translated error at once.
    calls = len(addon.requests)
    with pytest.raises(HomeAssistantError) as err:
        await _analyze(hass, entry)
    assert err.value.translation_key == "models_not_ready"
    assert err.value.translation_placeholders == {
        "models": "classifier (downloading), embedding (downloading), reranker (downloading)"
    }
    assert len(addon.requests) == calls

    addon.model_state, addon.model_progress = "ready", None
    await _poll(hass, freezer, BUSY_INTERVAL)
    assert hass.states.get("sensor.homeiq_embedding_model").state == "ready"  # type: ignore[union-attr]
    assert entry.runtime_data.health.update_interval == HEALTH_INTERVAL
    assert (await _analyze(hass, entry))["new"] == 4


async def test_model_sensors_go_through_loading_ready_and_error(
    hass: HomeAssistant, setup_entry: MockConfigEntry, addon: FakeAddon, freezer: FrozenDateTimeFactory
) -> None:
    entity_id = "sensor.homeiq_reranker_model"
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "ready"
    assert state.attributes["model_id"] == "test/reranker"
    entry = er.async_get(hass).async_get(entity_id)
    assert entry is not None
    assert entry.entity_category is EntityCategory.DIAGNOSTIC

    addon.loading = True
    await _poll(hass, freezer, HEALTH_INTERVAL)
    assert hass.states.get(entity_id).state == "loading"  # type: ignore[union-attr]
    assert setup_entry.runtime_data.health.update_interval == BUSY_INTERVAL

    addon.loading = False
    await _poll(hass, freezer, BUSY_INTERVAL)
    assert hass.states.get(entity_id).state == "ready"  # type: ignore[union-attr]

    addon.model_state, addon.model_error = "error", "out of memory"
    await _poll(hass, freezer, HEALTH_INTERVAL)
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "error"
    assert state.attributes["error"] == "out of memory"
    assert state.attributes["error_code"] == "load_failed"


async def test_a_loading_add_on_without_retry_after_is_asked_again_later(
    hass: HomeAssistant,
    addon: FakeAddon,
    automation_setup: None,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analysis_module, "MODELS_LOADING_WAIT", timedelta(seconds=10))
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    addon.overrides["/v1/suggest"] = (503, "{}", {})

    with pytest.raises(HomeAssistantError) as err:
        await _analyze(hass, entry)

    # The default wait (15 s) exceeds the budget (10 s): reported at once, not slept on.
    assert err.value.translation_key == "models_loading"
    assert err.value.translation_placeholders == {"retry_after": "30"}
    assert len(addon.calls("/v1/suggest")) == 1


async def test_an_updated_add_on_updates_the_device_version(
    hass: HomeAssistant, setup_entry: MockConfigEntry, addon: FakeAddon, freezer: FrozenDateTimeFactory
) -> None:
    addon.version = "0.2.0"

    await _poll(hass, freezer, HEALTH_INTERVAL)

    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), setup_entry.entry_id)
    assert device.sw_version == "0.2.0"


async def test_a_failed_analysis_from_the_button_is_logged(
    hass: HomeAssistant,
    addon: FakeAddon,
    automation_setup: None,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    addon.serve_v1 = False
    entity_id = er.async_get(hass).async_get_entity_id("button", DOMAIN, f"{entry.entry_id}_analyze")
    assert entity_id is not None

    await hass.services.async_call("button", "press", {"entity_id": entity_id}, blocking=True)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert "Analysis failed" in caplog.text


async def test_an_add_on_still_down_after_a_restart_raises_the_repair_issue(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, hass_storage: dict[str, Any]
) -> None:
    entry = make_entry(addon)
    key = f"{DOMAIN}.{entry.entry_id}.addon"
    since = (dt_util.utcnow() - timedelta(days=2)).isoformat()
    hass_storage[key] = {"version": 1, "key": key, "data": {"unreachable_since": since}}
    await addon.stop()
    entry.add_to_hass(hass)

    await hass.config_entries.async_setup(entry.entry_id)

    assert entry.state is ConfigEntryState.LOADED
    issue_id = f"addon_unreachable_{entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    await hass.config_entries.async_remove(entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
