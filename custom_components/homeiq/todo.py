"""The "Automation suggestions" to-do list: check an item off to accept it, delete it to dismiss it."""

from __future__ import annotations

from typing import override

from homeassistant.components.todo.const import TodoItemStatus, TodoListEntityFeature
from homeassistant.components.todo.entity import TodoItem, TodoListEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .coordinator import HomeIQConfigEntry
from .entity import HomeIQEntity
from .store import Suggestion, SuggestionStatus

PARALLEL_UPDATES = 1

SUGGESTIONS = EntityDescription(key="suggestions", translation_key="suggestions")


def describe(suggestion: Suggestion) -> str:
    """The item description: classification and the evidence behind the suggestion."""
    category = suggestion.category or "unclassified"
    priority = suggestion.priority or "unknown"
    evidence = suggestion.evidence_text or (
        f"Seen on {suggestion.support_days} days ({suggestion.occurrences} times)"
    )
    reason = f" ({suggestion.priority_reason.rstrip('.')})" if suggestion.priority_reason else ""
    return (
        f"{category.capitalize()}, {priority} priority{reason}. {evidence[:1].upper()}{evidence[1:]}. "
        f"Confidence {suggestion.confidence:.0%}. Entities: {', '.join(suggestion.entities)}."
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: HomeIQConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the suggestions list."""
    async_add_entities([HomeIQSuggestionList(entry.runtime_data.coordinator, SUGGESTIONS)])


class HomeIQSuggestionList(HomeIQEntity, TodoListEntity):
    """Open suggestions as to-do items."""

    _attr_supported_features = TodoListEntityFeature.UPDATE_TODO_ITEM | TodoListEntityFeature.DELETE_TODO_ITEM

    @property
    @override
    def todo_items(self) -> list[TodoItem]:
        """The open suggestions, best first."""
        return [
            TodoItem(
                summary=suggestion.text,
                uid=suggestion.id,
                status=TodoItemStatus.NEEDS_ACTION,
                description=describe(suggestion),
            )
            for suggestion in self.coordinator.suggestions.with_status(dt_util.utcnow(), SuggestionStatus.NEW)
        ]

    @override
    async def async_update_todo_item(self, item: TodoItem) -> None:
        """Checking an item off accepts the suggestion (the automation is created switched off)."""
        suggestion = self.coordinator.get_suggestion(item.uid or "")
        if item.status == TodoItemStatus.COMPLETED:
            await self.coordinator.async_accept(suggestion.id)

    @override
    async def async_delete_todo_items(self, uids: list[str]) -> None:
        """Deleting items dismisses the suggestions."""
        for uid in uids:
            await self.coordinator.async_dismiss(uid)
