"""HomeIQ: local, private automation suggestions from your own history."""

from __future__ import annotations

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import HomeIQClient
from .const import DOMAIN, ISSUE_ADDON_UNREACHABLE, ISSUE_MODELS_FAILED
from .coordinator import HomeIQConfigEntry, HomeIQCoordinator, HomeIQData
from .services import async_setup_services
from .store import HistoryStore, SuggestionStore

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.BUTTON, Platform.SENSOR, Platform.TODO]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: HomeIQConfigEntry) -> bool:
    """Connect to the add-on, load the stores, start history intake and the schedule."""
    client = HomeIQClient(
        async_get_clientsession(hass),
        entry.data[CONF_HOST],
        int(entry.data[CONF_PORT]),
        entry.data[CONF_TOKEN],
    )
    coordinator = HomeIQCoordinator(hass, entry, client)
    # Raises ConfigEntryNotReady (add-on unreachable), ConfigEntryAuthFailed (token rejected) or
    # ConfigEntryError (not an API v1 server).
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = HomeIQData(client=client, coordinator=coordinator)
    await coordinator.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HomeIQConfigEntry) -> bool:
    """Unload the platforms; listeners go with `entry.async_on_unload`."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: HomeIQConfigEntry) -> None:
    """Delete the entry's stores and repair issues when the user removes it."""
    await HistoryStore(hass, entry.entry_id).async_remove()
    await SuggestionStore(hass, entry.entry_id).async_remove()
    for issue in (ISSUE_ADDON_UNREACHABLE, ISSUE_MODELS_FAILED):
        ir.async_delete_issue(hass, DOMAIN, f"{issue}_{entry.entry_id}")
