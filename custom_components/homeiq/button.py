"""The "Analyze now" button."""

from __future__ import annotations

from typing import override

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .coordinator import HomeIQConfigEntry
from .entity import HomeIQEntity

PARALLEL_UPDATES = 1

ANALYZE = ButtonEntityDescription(key="analyze", translation_key="analyze")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomeIQConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the button."""
    async_add_entities([HomeIQAnalyzeButton(entry.runtime_data.coordinator, ANALYZE)])


class HomeIQAnalyzeButton(HomeIQEntity, ButtonEntity):
    """Starts an analysis in the background (it can take a minute on small boards)."""

    @override
    async def async_press(self) -> None:
        """Start (or join) an analysis without blocking the UI."""
        self.coordinator.config_entry.async_create_background_task(
            self.hass, self.coordinator.async_analyze_logged(), f"{DOMAIN} analysis from button"
        )
