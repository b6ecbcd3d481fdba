"""Diagnostics: configuration (token redacted), add-on health, store sizes and suggestions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .coordinator import HomeIQConfigEntry

TO_REDACT = {CONF_TOKEN}


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: HomeIQConfigEntry) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    coordinator = entry.runtime_data.coordinator
    now = dt_util.utcnow()
    return {
        "entry": {"data": async_redact_data(dict(entry.data), TO_REDACT), "options": dict(entry.options)},
        "addon": {
            "url": coordinator.client.base_url,
            "reachable": coordinator.last_update_success,
            "health": asdict(coordinator.data) if coordinator.data else None,
            "models": coordinator.api_info,
        },
        "history": {
            "days": coordinator.history.day_count,
            "changes": coordinator.history.change_count,
            "dropped": coordinator.history.dropped,
            "recorded_until": coordinator.history.recorded_until.isoformat()
            if coordinator.history.recorded_until
            else None,
        },
        "last_analysis": coordinator.suggestions.last_analysis,
        "suggestions": [s.as_dict(now) for s in coordinator.suggestions.suggestions.values()],
    }
