"""Sensors: the number of new suggestions and the time of the last analysis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, override

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .coordinator import HomeIQConfigEntry, HomeIQCoordinator
from .entity import HomeIQEntity
from .store import SuggestionStatus

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HomeIQSensorEntityDescription(SensorEntityDescription):
    """A HomeIQ sensor: its value and (small) attributes from the coordinator."""

    value_fn: Callable[[HomeIQCoordinator], StateType | datetime]
    attributes_fn: Callable[[HomeIQCoordinator], dict[str, Any]] | None = None


def _new_suggestions(coordinator: HomeIQCoordinator) -> int:
    return len(coordinator.suggestions.with_status(dt_util.utcnow(), SuggestionStatus.NEW))


def _new_suggestion_counts(coordinator: HomeIQCoordinator) -> dict[str, Any]:
    # Counts only: the full list lives in the to-do entity and the get_suggestions action, because
    # the recorder drops state attributes over 16 KiB.
    new = coordinator.suggestions.with_status(dt_util.utcnow(), SuggestionStatus.NEW)
    return {
        "high_priority": sum(1 for s in new if s.priority == "high"),
        "categories": dict(Counter(s.category or "unknown" for s in new)),
    }


def _last_analysis(coordinator: HomeIQCoordinator) -> datetime | None:
    summary = coordinator.suggestions.last_analysis
    if not summary or not isinstance(finished := summary.get("finished"), str):
        return None
    return dt_util.parse_datetime(finished)


SENSORS: tuple[HomeIQSensorEntityDescription, ...] = (
    HomeIQSensorEntityDescription(
        key="new_suggestions",
        translation_key="new_suggestions",
        value_fn=_new_suggestions,
        attributes_fn=_new_suggestion_counts,
    ),
    HomeIQSensorEntityDescription(
        key="last_analysis",
        translation_key="last_analysis",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_analysis,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomeIQConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(HomeIQSensor(coordinator, description) for description in SENSORS)


class HomeIQSensor(HomeIQEntity, SensorEntity):
    """A sensor described by a HomeIQSensorEntityDescription."""

    entity_description: HomeIQSensorEntityDescription

    @property
    @override
    def native_value(self) -> StateType | datetime:
        """The value computed from the stored suggestions."""
        return self.entity_description.value_fn(self.coordinator)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Small attributes only."""
        if self.entity_description.attributes_fn is None:
            return None
        return self.entity_description.attributes_fn(self.coordinator)
