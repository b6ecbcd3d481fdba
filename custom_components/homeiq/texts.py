"""Texts the integration writes for the user outside HA's own translated surfaces.

The notification about new high-priority suggestions, the to-do item description and the
description of an accepted automation come from the `texts` section of the translations (English
only for now), in Home Assistant's configured language, loaded once per config entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations

from .const import DOMAIN
from .suggestions import Suggestion

CATEGORY = "texts"
_PREFIX = f"component.{DOMAIN}.{CATEGORY}."


@dataclass(frozen=True, slots=True)
class Texts:
    """The `texts` translations of one language, with the formatting that uses them."""

    strings: Mapping[str, str]

    def get(self, key: str, **placeholders: object) -> str:
        """The text for `key` (the key itself when a translation is missing), filled in."""
        template = self.strings.get(_PREFIX + key, key)
        return template.format(**{name: str(value) for name, value in placeholders.items()})

    def describe(self, suggestion: Suggestion) -> str:
        """The to-do item description: classification and the evidence behind the suggestion."""
        category = suggestion.category or self.get("unclassified")
        priority = suggestion.priority or self.get("unknown_priority")
        evidence = self._evidence(suggestion)
        reason = suggestion.priority_reason.rstrip(".") if suggestion.priority_reason else ""
        return self.get(
            "todo_description_with_reason" if reason else "todo_description",
            category=category.capitalize(),
            priority=priority,
            reason=reason,
            evidence=evidence[:1].upper() + evidence[1:],
            confidence=f"{suggestion.confidence:.0%}",
            entities=", ".join(suggestion.entities),
        )

    def automation_description(self, suggestion: Suggestion) -> str:
        """The description of the automation an accepted suggestion creates: why it was suggested."""
        return self.get("automation_description", evidence=self._evidence(suggestion))

    def _evidence(self, suggestion: Suggestion) -> str:
        """Why it is suggested: the engine's evidence, or the days it was seen on (older records)."""
        return suggestion.evidence_text or self.get(
            "seen_on_days", days=suggestion.support_days, times=suggestion.occurrences
        )

    def high_priority_notification(self, new: Sequence[Suggestion]) -> tuple[str, str]:
        """(title, message) of the notification about new high-priority suggestions."""
        lines = "\n".join(f"- {s.text}" for s in new[:10])
        return self.get("notification_title"), self.get("notification_message", count=len(new), lines=lines)


async def async_load_texts(hass: HomeAssistant) -> Texts:
    """The `texts` translations in HA's configured language (HA falls back to English)."""
    return Texts(await async_get_translations(hass, hass.config.language, CATEGORY, {DOMAIN}))
