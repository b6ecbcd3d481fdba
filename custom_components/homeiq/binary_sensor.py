"""Connectivity of the add-on (diagnostic)."""

from __future__ import annotations

from typing import override

from homeassistant.components.binary_sensor import BinarySensorEntity, BinarySensorEntityDescription
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import HomeIQHealthCoordinator
from .data import HomeIQConfigEntry
from .entity import HomeIQEntity

PARALLEL_UPDATES = 0

CONNECTIVITY = BinarySensorEntityDescription(
    key="addon_connectivity",
    translation_key="addon_connectivity",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomeIQConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the connectivity sensor."""
    async_add_entities([HomeIQConnectivitySensor(entry.runtime_data.health, CONNECTIVITY)])


class HomeIQConnectivitySensor(HomeIQEntity[HomeIQHealthCoordinator], BinarySensorEntity):
    """On while the add-on answers."""

    @property
    @override
    def available(self) -> bool:
        """Always available: reporting the outage is this sensor's job."""
        return True

    @property
    @override
    def is_on(self) -> bool:
        """Whether the last status poll succeeded."""
        return self.coordinator.last_update_success
