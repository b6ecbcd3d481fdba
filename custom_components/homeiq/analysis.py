"""An analysis: mine the window's history, have the add-on rank and classify it, keep the best.

`async_run_analysis` is the analysis itself. `Analyzer` runs it for the action, the button and
the nightly schedule: one run at a time (a second caller joins it), fail fast or wait while the
add-on loads its models, and retry a failed nightly run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from time import monotonic
from typing import Any

from homeassistant.components import persistent_notification
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_FRIENDLY_NAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later, async_track_time_change
from homeassistant.util import dt as dt_util

from .api import HomeIQClient, HomeIQError, HomeIQModelsLoadingError, SuggestResult
from .automations import existing_automation_configs, existing_automation_texts
from .const import DOMAIN, LOGGER, NOTIFICATION_ID
from .coordinator import HomeIQHealthCoordinator, HomeIQSuggestionCoordinator
from .errors import translate_error
from .history import History
from .options import HomeIQOptions
from .pattern_context import pattern_context
from .patterns import HomeContext, MiningOptions, Pattern, mine_patterns
from .suggestions import Suggestion, SuggestionStatus, SuggestionStore
from .texts import Texts

# A run that may wait (button, schedule) waits this long for the add-on to load its models
# (download + conversion on a first start can take minutes on a small board).
MODELS_LOADING_WAIT = timedelta(minutes=15)
DEFAULT_RETRY_AFTER_S = 15.0
# A failed nightly run is tried again this often, this many times.
NIGHTLY_RETRY = timedelta(minutes=30)
NIGHTLY_RETRIES = 6


def home_context(hass: HomeAssistant, entity_ids: set[str]) -> HomeContext:
    """Where the home is, and the names and device classes of the entities in the window.

    Friendly names make the texts read like the user's own home (without one the engine words a
    name from the entity id); device classes make a door sensor "open".
    """
    names: dict[str, str] = {}
    device_classes: dict[str, str] = {}
    for entity_id in entity_ids:
        if (state := hass.states.get(entity_id)) is None:
            continue
        if name := state.attributes.get(ATTR_FRIENDLY_NAME):
            names[entity_id] = str(name)
        if device_class := state.attributes.get(ATTR_DEVICE_CLASS):
            device_classes[entity_id] = str(device_class)
    return HomeContext(
        time_zone=hass.config.time_zone,
        latitude=hass.config.latitude,
        longitude=hass.config.longitude,
        elevation=float(hass.config.elevation or 0),
        entity_names=names,
        device_classes=device_classes,
    )


async def async_run_analysis(
    hass: HomeAssistant,
    client: HomeIQClient,
    options: HomeIQOptions,
    history: History,
    store: SuggestionStore,
    *,
    wait_for_models: bool,
    on_models_loading: Callable[[HomeIQModelsLoadingError], None] | None = None,
) -> tuple[dict[str, Any], list[Suggestion]]:
    """Mine, rank and merge; returns the summary and the suggestions seen for the first time.

    Raises `HomeIQError` when the add-on cannot rank (with `wait_for_models`, only after
    MODELS_LOADING_WAIT of "models loading"; `on_models_loading` hears of each such answer it
    waits on, the one it raises goes to the caller).
    """
    await history.async_wait_ready()
    started = dt_util.utcnow()
    changes = history.window_changes(started)
    home = home_context(hass, {change.entity_id for change in changes})
    # The history's selector already decided which entities count: the engine filters no more.
    mining_options = replace(
        MiningOptions(),
        window_days=options.window_days,
        min_support_days=options.min_support_days,
        min_confidence=options.min_confidence,
        excluded_domains=frozenset(),
    )
    mining_started = monotonic()
    patterns: list[Pattern] = await hass.async_add_executor_job(
        partial(
            mine_patterns,
            changes,
            home,
            existing_automations=existing_automation_configs(hass),
            options=mining_options,
            now=started,
        )
    )
    mining_s = monotonic() - mining_started
    mined = {pattern.id: pattern for pattern in patterns}
    decided = store.decided()
    decided_ids = {s.id for s in decided}
    candidates = [p for p in patterns if p.id not in decided_ids]
    # Decided texts first: if the add-on's limit cuts the list, the user's decisions are kept.
    known = [s.text for s in decided] + existing_automation_texts(hass)
    result = SuggestResult(profile=None, models={}, suggestions=[])
    ranking_started = monotonic()
    if candidates:
        request = [
            {"id": p.id, "text": p.text, "context": pattern_context(p, home.device_classes)}
            for p in candidates
        ]
        deadline = monotonic() + MODELS_LOADING_WAIT.total_seconds()
        while True:
            try:
                result = await client.async_suggest(
                    request, query=options.focus_query or None, known=known, top_k=options.max_suggestions
                )
                break
            except HomeIQModelsLoadingError as err:
                wait = err.retry_after if err.retry_after is not None else DEFAULT_RETRY_AFTER_S
                if not wait_for_models or monotonic() + wait > deadline:
                    raise
                if on_models_loading is not None:
                    on_models_loading(err)
                LOGGER.info("The add-on is loading its models; asking again in %s s", wait)
                await asyncio.sleep(wait)
    ranking_s = monotonic() - ranking_started
    new = store.merge(result.suggestions, mined, started, options.max_suggestions)
    finished = dt_util.utcnow()
    store.last_analysis = {
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 3),
        "mining_s": round(mining_s, 3),
        "ranking_s": round(ranking_s, 3),
        "changes": len(changes),
        "patterns": len(mined),
        "candidates": len(candidates),
        "duplicates": sum(1 for r in result.suggestions if r.duplicate_of is not None),
        "new": len(new),
        "open": len(store.with_status(finished, SuggestionStatus.NEW)),
        "profile": result.profile,
        "models": result.models,
    }
    await store.async_save()
    return store.last_analysis, new


class Analyzer:
    """Runs analyses for one config entry: on demand, from the button and every night."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        *,
        client: HomeIQClient,
        options: HomeIQOptions,
        history: History,
        health: HomeIQHealthCoordinator,
        suggestions: HomeIQSuggestionCoordinator,
        texts: Texts,
    ) -> None:
        """Bind the analysis to its entry's parts."""
        self._hass = hass
        self._entry = entry
        self._client = client
        self._options = options
        self._history = history
        self._health = health
        self._suggestions = suggestions
        self._texts = texts
        self._run: asyncio.Task[dict[str, Any]] | None = None
        self._cancel_retry: Callable[[], None] | None = None

    @callback
    def async_schedule(self) -> None:
        """Run every night at the configured time; stop on unload."""
        at = self._options.analysis_time
        self._entry.async_on_unload(
            async_track_time_change(
                self._hass, self._on_schedule, hour=at.hour, minute=at.minute, second=at.second
            )
        )
        self._entry.async_on_unload(self._async_stop)

    async def async_analyze(self, *, wait_for_models: bool) -> dict[str, Any]:
        """Run an analysis, or join the one already running; returns its summary.

        Without `wait_for_models`, answers at once with a translated error while the add-on's
        models are busy (downloading, converting, loading) instead of waiting for them.
        """
        if not wait_for_models and self._health.data is not None and (busy := self._health.data.busy_roles):
            models = self._health.data.models
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="models_not_ready",
                translation_placeholders={
                    "models": ", ".join(f"{role} ({models[role].state})" for role in busy)
                },
            )
        if self._run is None or self._run.done():
            self._run = self._hass.async_create_task(self._async_run(wait_for_models), f"{DOMAIN} analysis")
        # A caller that gives up (cancelled service call) must not cancel the shared run.
        return await asyncio.shield(self._run)

    async def async_analyze_logged(self) -> bool:
        """Run an analysis for the button or the schedule, waiting for models; True when it ran."""
        try:
            await self.async_analyze(wait_for_models=True)
        except HomeAssistantError as err:
            LOGGER.warning("Analysis failed: %s", err)
            return False
        return True

    async def _async_run(self, wait_for_models: bool) -> dict[str, Any]:
        try:
            summary, new = await async_run_analysis(
                self._hass,
                self._client,
                self._options,
                self._history,
                self._suggestions.store,
                wait_for_models=wait_for_models,
                on_models_loading=self._health.async_note_call_error,
            )
        except HomeIQError as err:
            self._health.async_note_call_error(err)
            raise translate_error(err) from err
        self._notify_high_priority(new)
        return summary

    @callback
    def _on_schedule(self, _now: datetime) -> None:
        self._entry.async_create_background_task(
            self._hass, self._async_nightly(NIGHTLY_RETRIES), f"{DOMAIN} scheduled analysis"
        )

    async def _async_nightly(self, retries_left: int) -> None:
        self._cancel_retry = None
        if await self.async_analyze_logged() or retries_left <= 0:
            return
        LOGGER.info("Trying the nightly analysis again in %s", NIGHTLY_RETRY)

        @callback
        def _retry(_now: datetime) -> None:
            self._entry.async_create_background_task(
                self._hass, self._async_nightly(retries_left - 1), f"{DOMAIN} scheduled analysis retry"
            )

        self._cancel_retry = async_call_later(self._hass, NIGHTLY_RETRY, _retry)

    @callback
    def _async_stop(self) -> None:
        """Unload: stop a running analysis and a pending retry."""
        if self._cancel_retry is not None:
            self._cancel_retry()
        if self._run is not None and not self._run.done():
            self._run.cancel()

    def _notify_high_priority(self, new: list[Suggestion]) -> None:
        high = [s for s in new if s.priority == "high"]
        if not high or not self._options.notify_high_priority:
            return
        title, message = self._texts.high_priority_notification(high)
        persistent_notification.async_create(
            self._hass, message, title=title, notification_id=f"{NOTIFICATION_ID}_{self._entry.entry_id}"
        )
