"""Base entity of the HomeIQ integration."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_ADDON_SLUG, DOMAIN, addon_info_url
from .coordinator import HomeIQCoordinator


class HomeIQEntity(CoordinatorEntity[HomeIQCoordinator]):
    """An entity of the HomeIQ service device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: HomeIQCoordinator, description: EntityDescription) -> None:
        """Attach the entity to the service device of its config entry."""
        super().__init__(coordinator)
        self.entity_description = description
        entry = coordinator.config_entry
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            entry_type=DeviceEntryType.SERVICE,
            identifiers={(DOMAIN, entry.entry_id)},
            manufacturer="HomeIQ",
            model="Automation suggestion engine",
            name=entry.title,
            sw_version=coordinator.data.version if coordinator.data else None,
            # The add-on's info page under the Supervisor; its API wants a token, so no link
            # for an add-on set up by hand.
            configuration_url=addon_info_url(slug) if (slug := entry.data.get(CONF_ADDON_SLUG)) else None,
        )
