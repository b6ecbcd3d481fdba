"""The "Automation suggestions" to-do list: check an item off to accept it, delete it to dismiss it."""

from __future__ import annotations

from typing import override

from homeassistant.components.todo.const import TodoItemStatus, TodoListEntityFeature
from homeassistant.components.todo.entity import TodoItem, TodoListEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .coordinator import HomeIQSuggestionCoordinator
from .data import HomeIQConfigEntry
from .entity import HomeIQEntity
from .suggestions import SuggestionStatus
from .texts import Texts

PARALLEL_UPDATES = 1

SUGGESTIONS = EntityDescription(key="suggestions", translation_key="suggestions")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomeIQConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the suggestions list."""
    data = entry.runtime_data
    async_add_entities([HomeIQSuggestionList(data.suggestions, SUGGESTIONS, data.texts)])


class HomeIQSuggestionList(HomeIQEntity[HomeIQSuggestionCoordinator], TodoListEntity):
    """Open suggestions as to-do items; local, so it stays available while the add-on is down."""

    _attr_supported_features = TodoListEntityFeature.UPDATE_TODO_ITEM | TodoListEntityFeature.DELETE_TODO_ITEM

    def __init__(
        self, coordinator: HomeIQSuggestionCoordinator, description: EntityDescription, texts: Texts
    ) -> None:
        """Bind the list to its texts (item descriptions)."""
        super().__init__(coordinator, description)
        self._texts = texts

    @property
    @override
    def todo_items(self) -> list[TodoItem]:
        """The open suggestions, best first."""
        return [
            TodoItem(
                summary=suggestion.text,
                uid=suggestion.id,
                status=TodoItemStatus.NEEDS_ACTION,
                description=self._texts.describe(suggestion),
            )
            for suggestion in self.coordinator.data.with_status(dt_util.utcnow(), SuggestionStatus.NEW)
        ]

    @override
    async def async_update_todo_item(self, item: TodoItem) -> None:
        """Checking an item off accepts the suggestion (the automation is created switched off)."""
        store = self.coordinator.data
        suggestion = store.get(item.uid or "")
        if item.status == TodoItemStatus.COMPLETED:
            await store.async_accept(suggestion.id, enable=False, describe=self._texts.automation_description)

    @override
    async def async_delete_todo_items(self, uids: list[str]) -> None:
        """Deleting items dismisses the suggestions."""
        for uid in uids:
            await self.coordinator.data.async_dismiss(uid)
