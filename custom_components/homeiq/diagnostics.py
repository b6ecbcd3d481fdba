"""Diagnostics: configuration (token redacted), the add-on's status, store sizes and suggestions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .data import HomeIQConfigEntry

TO_REDACT = {CONF_TOKEN}


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: HomeIQConfigEntry) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    data = entry.runtime_data
    history = data.history.store
    store = data.suggestions.store
    now = dt_util.utcnow()
    return {
        "entry": {"data": async_redact_data(dict(entry.data), TO_REDACT), "options": dict(entry.options)},
        "addon": {
            "url": data.client.base_url,
            "reachable": data.health.last_update_success,
            "status": asdict(data.health.data) if data.health.data else None,
            "unreachable_since": data.health.unreachable_since.isoformat()
            if data.health.unreachable_since
            else None,
        },
        "history": {
            "days": history.day_count,
            "changes": history.change_count,
            "dropped": history.dropped,
            "recorded_until": history.recorded_until.isoformat() if history.recorded_until else None,
        },
        "last_analysis": store.last_analysis,
        "suggestions": [s.as_dict(now) for s in store.suggestions.values()],
    }
