"""Actions: analyze, get_suggestions, accept_suggestion, dismiss_suggestion, snooze_suggestion."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

import probatio
from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.helpers import config_validation as cv, service
from homeassistant.util import dt as dt_util

from .api import HomeIQError
from .const import CATEGORIES, DOMAIN, PRIORITIES
from .data import HomeIQConfigEntry, HomeIQData
from .errors import translate_error
from .suggestions import Suggestion, SuggestionStatus

ATTR_SUGGESTION_ID = "suggestion_id"
ATTR_ENABLE = "enable"
ATTR_UNTIL = "until"
ATTR_STATUS = "status"
ATTR_CATEGORY = "category"
ATTR_PRIORITY = "priority"
ATTR_QUERY = "query"
ATTR_LIMIT = "limit"

SERVICE_ANALYZE = "analyze"
SERVICE_GET_SUGGESTIONS = "get_suggestions"
SERVICE_ACCEPT = "accept_suggestion"
SERVICE_DISMISS = "dismiss_suggestion"
SERVICE_SNOOZE = "snooze_suggestion"


def _any_of(values: Iterable[str]) -> probatio.All[Any]:
    """One value or a list, each from `values`."""
    return probatio.All(cv.ensure_list, [probatio.In(list(values))])


_ENTRY: dict[probatio.Marker, Any] = {probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string}
_SUGGESTION: dict[probatio.Marker, Any] = {**_ENTRY, probatio.Required(ATTR_SUGGESTION_ID): cv.string}

ANALYZE_SCHEMA = probatio.Schema(_ENTRY)
GET_SUGGESTIONS_SCHEMA = probatio.Schema(
    {
        **_ENTRY,
        probatio.Optional(ATTR_STATUS): _any_of(s.value for s in SuggestionStatus),
        probatio.Optional(ATTR_CATEGORY): _any_of(CATEGORIES),
        probatio.Optional(ATTR_PRIORITY): _any_of(PRIORITIES),
        probatio.Optional(ATTR_QUERY): probatio.All(cv.string, probatio.Length(min=1, max=500)),
        probatio.Optional(ATTR_LIMIT, default=50): probatio.All(
            probatio.Coerce(int), probatio.Range(min=1, max=500)
        ),
    }
)
ACCEPT_SCHEMA = probatio.Schema({**_SUGGESTION, probatio.Optional(ATTR_ENABLE, default=False): cv.boolean})
DISMISS_SCHEMA = probatio.Schema(_SUGGESTION)
SNOOZE_SCHEMA = probatio.Schema({**_SUGGESTION, probatio.Required(ATTR_UNTIL): cv.datetime})


def _entry_data(call: ServiceCall) -> HomeIQData:
    entry: HomeIQConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data[ATTR_CONFIG_ENTRY_ID]
    )
    return entry.runtime_data


def _aware(value: datetime) -> datetime:
    """Naive times from the UI are in HA's time zone."""
    return value if value.tzinfo else value.replace(tzinfo=dt_util.get_default_time_zone())


async def _async_analyze(call: ServiceCall) -> ServiceResponse:
    """Run an analysis now (or join the running one) and return its summary.

    While the add-on's models are busy this answers at once with a translated error.
    """
    return await _entry_data(call).analyzer.async_analyze(wait_for_models=False)


async def _async_rerank(
    data: HomeIQData, query: str, suggestions: list[Suggestion]
) -> list[tuple[Suggestion, float]]:
    """Order `suggestions` by relevance to `query` with the add-on's reranker."""
    if not suggestions:
        return []
    try:
        ranked = await data.client.async_rerank(query, [s.text for s in suggestions])
    except HomeIQError as err:
        data.health.async_note_call_error(err)
        raise translate_error(err) from err
    return [(suggestions[index], score) for index, score in ranked]


async def _async_get_suggestions(call: ServiceCall) -> ServiceResponse:
    """List suggestions, filtered, optionally ordered by relevance to a query."""
    data = _entry_data(call)
    now = dt_util.utcnow()
    statuses = [SuggestionStatus(s) for s in call.data.get(ATTR_STATUS, [SuggestionStatus.NEW.value])]
    found = data.suggestions.store.with_status(now, *statuses)
    if categories := call.data.get(ATTR_CATEGORY):
        found = [s for s in found if s.category in categories]
    if priorities := call.data.get(ATTR_PRIORITY):
        found = [s for s in found if s.priority in priorities]
    limit: int = call.data[ATTR_LIMIT]
    if query := call.data.get(ATTR_QUERY):
        ranked = await _async_rerank(data, query, found)
        items = [{**s.as_dict(now), "relevance": round(score, 4)} for s, score in ranked[:limit]]
    else:
        items = [s.as_dict(now) for s in found[:limit]]
    return cast(ServiceResponse, {"suggestions": items})


async def _async_accept(call: ServiceCall) -> ServiceResponse:
    """Create the automation of a suggestion; returns its entity id."""
    data = _entry_data(call)
    suggestion = await data.suggestions.store.async_accept(
        call.data[ATTR_SUGGESTION_ID],
        enable=call.data[ATTR_ENABLE],
        describe=data.texts.automation_description,
    )
    return {
        "suggestion_id": suggestion.id,
        "entity_id": suggestion.automation_entity_id,
        "automation_id": suggestion.automation_id,
        "enabled": call.data[ATTR_ENABLE],
    }


async def _async_dismiss(call: ServiceCall) -> None:
    """Dismiss a suggestion for good."""
    await _entry_data(call).suggestions.store.async_dismiss(call.data[ATTR_SUGGESTION_ID])


async def _async_snooze(call: ServiceCall) -> None:
    """Hide a suggestion until a time."""
    await _entry_data(call).suggestions.store.async_snooze(
        call.data[ATTR_SUGGESTION_ID], _aware(call.data[ATTR_UNTIL])
    )


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, in async_setup)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_ANALYZE,
        _async_analyze,
        schema=ANALYZE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_SUGGESTIONS,
        _async_get_suggestions,
        schema=GET_SUGGESTIONS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_ACCEPT,
        _async_accept,
        schema=ACCEPT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(DOMAIN, SERVICE_DISMISS, _async_dismiss, schema=DISMISS_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_SNOOZE, _async_snooze, schema=SNOOZE_SCHEMA)
