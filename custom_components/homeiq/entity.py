"""Base entity of the HomeIQ integration."""

from __future__ import annotations

from typing import Any, TypeVar

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from .const import DOMAIN

CoordinatorT = TypeVar("CoordinatorT", bound=DataUpdateCoordinator[Any])


class HomeIQEntity(CoordinatorEntity[CoordinatorT]):
    """An entity of the HomeIQ service device (created at set-up, see `__init__.py`).

    Add-on entities (connectivity, model states, the button) follow the health coordinator and go
    unavailable with the add-on; the suggestion entities follow the local suggestion coordinator.
    """

    _attr_has_entity_name = True

    def __init__(self, coordinator: CoordinatorT, description: EntityDescription) -> None:
        """Attach the entity to the service device of its config entry."""
        super().__init__(coordinator)
        self.entity_description = description
        entry = coordinator.config_entry
        assert entry is not None
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, entry.entry_id)})
