"""HomeIQ: local, private automation suggestions from your own history."""

from __future__ import annotations

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr, issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .analysis import Analyzer
from .api import HomeIQClient
from .const import (
    CONF_ADDON_SLUG,
    DOMAIN,
    ISSUE_ADDON_UNREACHABLE,
    ISSUE_MODELS_FAILED,
    LOGGER,
    addon_info_url,
)
from .coordinator import HomeIQHealthCoordinator, HomeIQSuggestionCoordinator, outage_store
from .data import HomeIQConfigEntry, HomeIQData
from .history import History
from .history_store import HistoryStore
from .options import HomeIQOptions
from .services import async_setup_services
from .suggestions import SuggestionStore
from .texts import async_load_texts

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
    options = HomeIQOptions.from_entry(entry.options)
    health = HomeIQHealthCoordinator(hass, entry, client)
    try:
        # Raises ConfigEntryAuthFailed (token rejected), ConfigEntryError (not an API v1 server) or
        # ConfigEntryNotReady (unreachable).
        await health.async_config_entry_first_refresh()
    except ConfigEntryNotReady:
        # The suggestions are local: set up anyway. The add-on's entities stay unavailable (and
        # the model sensors absent) until it answers; the coordinator keeps retrying.
        LOGGER.info("The HomeIQ add-on at %s is not reachable yet; its entities wait for it", client.base_url)
    suggestions = HomeIQSuggestionCoordinator(hass, entry, SuggestionStore(hass, entry.entry_id))
    await suggestions.async_config_entry_first_refresh()
    history = History(hass, entry.entry_id, options)
    await history.async_load()
    texts = await async_load_texts(hass)
    analyzer = Analyzer(
        hass,
        entry,
        client=client,
        options=options,
        history=history,
        health=health,
        suggestions=suggestions,
        texts=texts,
    )
    entry.runtime_data = HomeIQData(client, options, health, suggestions, history, analyzer, texts)
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        entry_type=dr.DeviceEntryType.SERVICE,
        identifiers={(DOMAIN, entry.entry_id)},
        manufacturer="HomeIQ",
        model="Automation suggestion engine",
        name=entry.title,
        sw_version=health.data.version if health.data else None,
        # The add-on's info page under the Supervisor; its API wants a token, so no link for an
        # add-on set up by hand.
        configuration_url=addon_info_url(slug) if (slug := entry.data.get(CONF_ADDON_SLUG)) else None,
    )
    history.async_start(entry)
    analyzer.async_schedule()
    entry.async_on_unload(history.async_shutdown)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: HomeIQConfigEntry) -> bool:
    """Unload the platforms; listeners, the schedule and the history go with `async_on_unload`."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: HomeIQConfigEntry) -> None:
    """Delete the entry's stores and repair issues when the user removes it."""
    await HistoryStore(hass, entry.entry_id).async_remove()
    await SuggestionStore(hass, entry.entry_id).async_remove()
    await outage_store(hass, entry.entry_id).async_remove()
    for issue in (ISSUE_ADDON_UNREACHABLE, ISSUE_MODELS_FAILED):
        ir.async_delete_issue(hass, DOMAIN, f"{issue}_{entry.entry_id}")
