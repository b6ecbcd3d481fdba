"""Sensors: new suggestions and the last analysis (local), and each model's state (the add-on's)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, override

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .api import MODEL_STATES, AddonStatus, ModelStatus
from .coordinator import HomeIQHealthCoordinator, HomeIQSuggestionCoordinator
from .data import HomeIQConfigEntry
from .entity import HomeIQEntity
from .suggestions import SuggestionStatus, SuggestionStore

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class HomeIQSuggestionSensorEntityDescription(SensorEntityDescription):
    """A sensor computed from the stored suggestions."""

    value_fn: Callable[[SuggestionStore], StateType | datetime]
    attributes_fn: Callable[[SuggestionStore], dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class HomeIQModelSensorEntityDescription(SensorEntityDescription):
    """The state of the model serving one role in the add-on."""

    role: str


def _new_suggestions(store: SuggestionStore) -> int:
    return len(store.with_status(dt_util.utcnow(), SuggestionStatus.NEW))


def _new_suggestion_counts(store: SuggestionStore) -> dict[str, Any]:
    # Counts only: the full list lives in the to-do entity and the get_suggestions action, because
    # the recorder drops state attributes over 16 KiB.
    new = store.with_status(dt_util.utcnow(), SuggestionStatus.NEW)
    return {
        "high_priority": sum(1 for s in new if s.priority == "high"),
        "categories": dict(Counter(s.category or "unknown" for s in new)),
    }


def _last_analysis(store: SuggestionStore) -> datetime | None:
    summary = store.last_analysis
    if not summary or not isinstance(finished := summary.get("finished"), str):
        return None
    return dt_util.parse_datetime(finished)


SUGGESTION_SENSORS: tuple[HomeIQSuggestionSensorEntityDescription, ...] = (
    HomeIQSuggestionSensorEntityDescription(
        key="new_suggestions",
        translation_key="new_suggestions",
        value_fn=_new_suggestions,
        attributes_fn=_new_suggestion_counts,
    ),
    HomeIQSuggestionSensorEntityDescription(
        key="last_analysis",
        translation_key="last_analysis",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_last_analysis,
    ),
)


def model_sensor(role: str) -> HomeIQModelSensorEntityDescription:
    """The description of the state sensor of `role`'s model."""
    return HomeIQModelSensorEntityDescription(
        key=f"model_{role}",
        translation_key="model_state",
        translation_placeholders={"role": role},
        device_class=SensorDeviceClass.ENUM,
        options=list(MODEL_STATES),
        entity_category=EntityCategory.DIAGNOSTIC,
        role=role,
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomeIQConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the suggestion sensors and one model sensor per role the add-on serves."""
    data = entry.runtime_data
    async_add_entities(
        HomeIQSuggestionSensor(data.suggestions, description) for description in SUGGESTION_SENSORS
    )
    health = data.health
    known: set[str] = set()

    @callback
    def _add_model_sensors() -> None:
        # The roles come from the add-on: once it answers (it may be down at set-up), and again
        # when its profile gains a role.
        if health.data is None or not (new := sorted(set(health.data.models) - known)):
            return
        known.update(new)
        async_add_entities(HomeIQModelSensor(health, model_sensor(role)) for role in new)

    _add_model_sensors()
    entry.async_on_unload(health.async_add_listener(_add_model_sensors))


class HomeIQSuggestionSensor(HomeIQEntity[HomeIQSuggestionCoordinator], SensorEntity):
    """A sensor described by a HomeIQSuggestionSensorEntityDescription."""

    entity_description: HomeIQSuggestionSensorEntityDescription

    @property
    @override
    def native_value(self) -> StateType | datetime:
        """The value computed from the stored suggestions."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Small attributes only."""
        if self.entity_description.attributes_fn is None:
            return None
        return self.entity_description.attributes_fn(self.coordinator.data)


class HomeIQModelSensor(HomeIQEntity[HomeIQHealthCoordinator], SensorEntity):
    """Where a role's model stands: not loaded, downloading (with progress), converting, loading,
    ready, or error (with the add-on's reason)."""

    entity_description: HomeIQModelSensorEntityDescription

    @property
    def _model(self) -> ModelStatus | None:
        status: AddonStatus = self.coordinator.data
        return status.models.get(self.entity_description.role)

    @property
    @override
    def available(self) -> bool:
        """Unavailable while the add-on is unreachable or no longer serves this role."""
        return super().available and self._model is not None

    @property
    @override
    def native_value(self) -> str | None:
        """The model's state."""
        model = self._model
        return model.state if model is not None and model.state in MODEL_STATES else None

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The model id, its precision, the progress of a download or conversion, and the error."""
        if (model := self._model) is None:
            return None
        return {
            "model_id": model.model_id,
            "precision": model.precision,
            "progress": round(model.progress * 100) if model.progress is not None else None,
            "error": model.error,
            "error_code": model.error_code,
        }
