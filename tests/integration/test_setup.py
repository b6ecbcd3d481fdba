"""Set-up, unload and availability of the integration against the loopback add-on."""

from __future__ import annotations

from homeassistant.components.recorder.core import Recorder
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homeiq.const import DOMAIN
from tests.integration.addon_server import VERSION, FakeAddon
from tests.integration.common import FROZEN_NOW


async def test_home_assistant_starts_at_the_frozen_instant(
    hass: HomeAssistant, recorder_mock: Recorder
) -> None:
    """conftest freezes the clock before HA and its recorder start: no test depends on today's date."""
    assert dt_util.utcnow() == FROZEN_NOW
    assert recorder_mock.recorder_runs_manager.recording_start == FROZEN_NOW


async def test_setup_creates_service_device_and_entities(
    hass: HomeAssistant, setup_entry: MockConfigEntry, addon: FakeAddon
) -> None:
    assert setup_entry.state is ConfigEntryState.LOADED
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), setup_entry.entry_id)
    assert device.identifiers == {(DOMAIN, setup_entry.entry_id)}
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    assert device.sw_version == VERSION
    assert device.configuration_url is None  # set up by hand: the API wants a token, no link
    entities = {
        e.unique_id.removeprefix(f"{setup_entry.entry_id}_"): e.entity_id
        for e in er.async_entries_for_config_entry(er.async_get(hass), setup_entry.entry_id)
    }
    assert set(entities) == {
        "addon_connectivity",
        "analyze",
        "new_suggestions",
        "last_analysis",
        "suggestions",
        "model_classifier",
        "model_embedding",
        "model_reranker",
    }
    assert hass.states.get(entities["model_embedding"]).state == "ready"
    assert hass.states.get(entities["addon_connectivity"]).state == "on"
    assert hass.states.get(entities["new_suggestions"]).state == "0"
    assert hass.states.get(entities["suggestions"]).state == "0"
    assert hass.states.get(entities["last_analysis"]).state == "unknown"
