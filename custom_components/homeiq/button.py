"""The "Analyze now" button."""

from __future__ import annotations

from typing import override

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .analysis import Analyzer
from .const import DOMAIN
from .coordinator import HomeIQHealthCoordinator
from .data import HomeIQConfigEntry
from .entity import HomeIQEntity

PARALLEL_UPDATES = 1

ANALYZE = ButtonEntityDescription(key="analyze", translation_key="analyze")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomeIQConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the button."""
    data = entry.runtime_data
    async_add_entities([HomeIQAnalyzeButton(data.health, ANALYZE, data.analyzer)])


class HomeIQAnalyzeButton(HomeIQEntity[HomeIQHealthCoordinator], ButtonEntity):
    """Starts an analysis in the background; it waits for models that are still loading.

    Available while the add-on answers: without it there is nothing to rank with.
    """

    def __init__(
        self, coordinator: HomeIQHealthCoordinator, description: ButtonEntityDescription, analyzer: Analyzer
    ) -> None:
        """Bind the button to the entry's analyzer."""
        super().__init__(coordinator, description)
        self._analyzer = analyzer

    @override
    async def async_press(self) -> None:
        """Start (or join) an analysis without blocking the UI."""
        self.coordinator.config_entry.async_create_background_task(
            self.hass, self._analyzer.async_analyze_logged(), f"{DOMAIN} analysis from button"
        )
