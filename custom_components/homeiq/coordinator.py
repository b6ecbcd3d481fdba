"""The coordinator: add-on health polling, history intake, analysis runs and user decisions.

It owns every call to the add-on and maps the client's errors to translated HA errors in one
place. Entities read `coordinator.data` (the add-on's health) and the suggestion store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from functools import partial
from time import monotonic
from typing import Any, TypeAlias, override

from homeassistant.components import persistent_notification
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_FRIENDLY_NAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_time_change
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    AddonHealth,
    HomeIQAuthError,
    HomeIQClient,
    HomeIQConnectionError,
    HomeIQError,
    HomeIQModelsLoadingError,
    HomeIQRequestError,
    HomeIQResponseError,
    HomeIQUnsupportedApiError,
    SuggestResult,
)
from .automations import async_create_automation, existing_automation_configs, existing_automation_texts
from .const import (
    CONF_ANALYSIS_TIME,
    CONF_EXCLUDED_AREAS,
    CONF_EXCLUDED_DOMAINS,
    CONF_EXCLUDED_ENTITIES,
    CONF_EXCLUDED_LABELS,
    CONF_FOCUS_QUERY,
    CONF_MAX_SUGGESTIONS,
    CONF_MIN_CONFIDENCE,
    CONF_MIN_SUPPORT_DAYS,
    CONF_NOTIFY_HIGH_PRIORITY,
    CONF_WINDOW_DAYS,
    DEFAULT_ANALYSIS_TIME,
    DEFAULT_MAX_SUGGESTIONS,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_SUPPORT_DAYS,
    DEFAULT_NOTIFY_HIGH_PRIORITY,
    DEFAULT_WINDOW_DAYS,
    DOMAIN,
    HEALTH_INTERVAL,
    ISSUE_ADDON_UNREACHABLE,
    ISSUE_MODELS_FAILED,
    LOGGER,
    MAX_HEALTH_BACKOFF,
    NOTIFICATION_ID,
    UNREACHABLE_REPAIR_AFTER,
)
from .history import (
    EntityExclusions,
    EntitySelector,
    async_backfill,
    async_subscribe,
    window_start,
)
from .pattern_context import pattern_context
from .patterns import HomeContext, MiningOptions, StateChange, mine_patterns
from .store import HistoryStore, Suggestion, SuggestionStatus, SuggestionStore

FIRST_RETRY = timedelta(seconds=30)
# An analysis waits this long for the add-on to load its models (download + conversion on a
# first start can take minutes on a small board) before it reports "models loading".
MODELS_LOADING_WAIT = timedelta(minutes=15)
DEFAULT_RETRY_AFTER_S = 15.0


@dataclass(frozen=True, slots=True)
class HomeIQOptions:
    """The options flow's values, with defaults filled in."""

    window_days: int
    min_support_days: int
    min_confidence: float
    exclusions: EntityExclusions
    analysis_time: time
    max_suggestions: int
    focus_query: str
    notify_high_priority: bool

    @classmethod
    def from_entry(cls, options: Mapping[str, Any]) -> HomeIQOptions:
        """Read `entry.options`."""
        analysis_time = dt_util.parse_time(str(options.get(CONF_ANALYSIS_TIME, DEFAULT_ANALYSIS_TIME)))
        return cls(
            window_days=int(options.get(CONF_WINDOW_DAYS, DEFAULT_WINDOW_DAYS)),
            min_support_days=int(options.get(CONF_MIN_SUPPORT_DAYS, DEFAULT_MIN_SUPPORT_DAYS)),
            min_confidence=float(options.get(CONF_MIN_CONFIDENCE, DEFAULT_MIN_CONFIDENCE)),
            exclusions=EntityExclusions(
                entities=frozenset(options.get(CONF_EXCLUDED_ENTITIES, ())),
                domains=frozenset(options.get(CONF_EXCLUDED_DOMAINS, ())),
                areas=frozenset(options.get(CONF_EXCLUDED_AREAS, ())),
                labels=frozenset(options.get(CONF_EXCLUDED_LABELS, ())),
            ),
            analysis_time=analysis_time or time(3, 0),
            max_suggestions=int(options.get(CONF_MAX_SUGGESTIONS, DEFAULT_MAX_SUGGESTIONS)),
            focus_query=str(options.get(CONF_FOCUS_QUERY, "") or "").strip(),
            notify_high_priority=bool(options.get(CONF_NOTIFY_HIGH_PRIORITY, DEFAULT_NOTIFY_HIGH_PRIORITY)),
        )


@dataclass(slots=True)
class HomeIQData:
    """Runtime data of a config entry."""

    client: HomeIQClient
    coordinator: HomeIQCoordinator


HomeIQConfigEntry: TypeAlias = ConfigEntry[HomeIQData]


def translate_error(err: HomeIQError) -> HomeAssistantError:
    """The translated HA error for an add-on client error."""
    if isinstance(err, HomeIQAuthError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="auth_failed")
    if isinstance(err, HomeIQModelsLoadingError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="models_loading",
            translation_placeholders={"retry_after": str(round(err.retry_after or 30))},
        )
    if isinstance(err, HomeIQUnsupportedApiError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="unsupported_api")
    if isinstance(err, HomeIQResponseError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="invalid_response",
            translation_placeholders={"error": str(err)},
        )
    if isinstance(err, HomeIQRequestError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="request_rejected",
            translation_placeholders={"status": str(err.status), "code": err.code},
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="cannot_connect",
        translation_placeholders={"error": str(err)},
    )


class HomeIQCoordinator(DataUpdateCoordinator[AddonHealth]):
    """Polls the add-on's health; runs analyses; keeps history and suggestions."""

    config_entry: HomeIQConfigEntry

    def __init__(self, hass: HomeAssistant, config_entry: HomeIQConfigEntry, client: HomeIQClient) -> None:
        """Create the coordinator; stores are read in `_async_setup`."""
        super().__init__(
            hass, LOGGER, config_entry=config_entry, name=DOMAIN, update_interval=HEALTH_INTERVAL
        )
        self.client = client
        self.options = HomeIQOptions.from_entry(config_entry.options)
        self.history = HistoryStore(hass, config_entry.entry_id)
        self.suggestions = SuggestionStore(hass, config_entry.entry_id)
        self._analysis: asyncio.Task[dict[str, Any]] | None = None
        self._history_ready = asyncio.Event()
        self._failures = 0
        self.api_info: dict[str, Any] = {}

    # --- add-on health -------------------------------------------------------------------

    @override
    async def _async_setup(self) -> None:
        """Read the stores and check the token and API version before the first poll."""
        await self.history.async_load()
        await self.suggestions.async_load()
        try:
            self.api_info = await self.client.async_models()
        except HomeIQAuthError as err:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="auth_failed") from err
        except HomeIQUnsupportedApiError as err:
            raise ConfigEntryError(translation_domain=DOMAIN, translation_key="unsupported_api") from err
        except HomeIQError as err:
            # Set-up retries do not poll: keep the "unreachable for a day" clock running here too.
            await self._async_note_failure(err)
            raise UpdateFailed(translation_domain=DOMAIN, translation_key="setup_failed") from err

    @override
    async def _async_update_data(self) -> AddonHealth:
        """Fetch /health; while unreachable, retry with a growing interval."""
        try:
            health = await self.client.async_health()
        except HomeIQError as err:
            await self._async_note_failure(err)
            retry_after = err.retry_after if isinstance(err, HomeIQModelsLoadingError) else None
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={"error": str(err)},
                retry_after=retry_after,
            ) from err
        await self._async_note_success(health)
        return health

    async def _async_note_failure(self, err: HomeIQError) -> None:
        self._failures += 1
        self.update_interval = min(FIRST_RETRY * 2 ** (self._failures - 1), MAX_HEALTH_BACKOFF)
        if not isinstance(err, HomeIQConnectionError):
            return
        now = dt_util.utcnow()
        if self.suggestions.unreachable_since is None:
            self.suggestions.unreachable_since = now
            await self.suggestions.async_save()
        elif now - self.suggestions.unreachable_since >= UNREACHABLE_REPAIR_AFTER:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"{ISSUE_ADDON_UNREACHABLE}_{self.config_entry.entry_id}",
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_ADDON_UNREACHABLE,
                translation_placeholders={
                    "url": self.client.base_url,
                    "since": self.suggestions.unreachable_since.isoformat(timespec="minutes"),
                },
            )

    async def _async_note_success(self, health: AddonHealth) -> None:
        self._failures = 0
        self.update_interval = HEALTH_INTERVAL
        entry_id = self.config_entry.entry_id
        if self.data is not None and health.version != self.data.version:
            # The add-on was updated: keep the service device's software version current.
            dr.async_get(self.hass).async_get_or_create(
                config_entry_id=entry_id, identifiers={(DOMAIN, entry_id)}, sw_version=health.version
            )
        if self.suggestions.unreachable_since is not None:
            self.suggestions.unreachable_since = None
            await self.suggestions.async_save()
        ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_ADDON_UNREACHABLE}_{entry_id}")
        if failed := health.failed_roles:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"{ISSUE_MODELS_FAILED}_{entry_id}",
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_MODELS_FAILED,
                translation_placeholders={"roles": ", ".join(failed)},
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_MODELS_FAILED}_{entry_id}")

    # --- history -------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Subscribe to live changes, backfill the gap from the recorder, schedule the nightly run."""
        entry = self.config_entry
        now = dt_util.utcnow()
        selector = EntitySelector(self.hass, self.options.exclusions)
        entry.async_on_unload(async_subscribe(self.hass, selector, self._on_change))
        start = window_start(now, self.options.window_days)
        if self.history.recorded_until is not None and self.history.recorded_until > start:
            start = self.history.recorded_until
        self.history.prune(window_start(now, self.options.window_days))
        entry.async_create_background_task(
            self.hass, self._async_backfill(selector, start, now), f"{DOMAIN} history backfill"
        )
        at = self.options.analysis_time
        entry.async_on_unload(
            async_track_time_change(
                self.hass, self._on_schedule, hour=at.hour, minute=at.minute, second=at.second
            )
        )

    async def _async_backfill(self, selector: EntitySelector, start: datetime, end: datetime) -> None:
        try:
            count = await async_backfill(self.hass, self.history, selector.included_entity_ids(), start, end)
            LOGGER.debug("Backfilled %s state changes from %s to %s", count, start, end)
            self.history.async_schedule_save()
        finally:
            self._history_ready.set()

    @callback
    def _on_change(self, change: StateChange) -> None:
        self.history.add(change)
        self.history.async_schedule_save()

    async def async_shutdown(self) -> None:
        """Stop a running analysis and write the history now (unload)."""
        await super().async_shutdown()
        if self._analysis is not None and not self._analysis.done():
            self._analysis.cancel()
        await self.history.async_save()

    # --- analysis ------------------------------------------------------------------------

    @callback
    def _on_schedule(self, _now: datetime) -> None:
        self.config_entry.async_create_background_task(
            self.hass, self.async_analyze_logged(), f"{DOMAIN} scheduled analysis"
        )

    async def async_analyze_logged(self) -> None:
        """Run an analysis for a schedule or a button: failures are logged, not raised."""
        try:
            await self.async_analyze()
        except HomeAssistantError as err:
            LOGGER.warning("Analysis failed: %s", err)

    async def async_analyze(self) -> dict[str, Any]:
        """Run an analysis, or join the one already running; returns its summary."""
        if self._analysis is None or self._analysis.done():
            self._analysis = self.hass.async_create_task(self._async_run_analysis(), f"{DOMAIN} analysis")
        # A caller that gives up (cancelled service call) must not cancel the shared run.
        return await asyncio.shield(self._analysis)

    async def _async_run_analysis(self) -> dict[str, Any]:
        await self._history_ready.wait()
        options = self.options
        started = dt_util.utcnow()
        start = window_start(started, options.window_days)
        self.history.prune(start)
        events = self.history.changes_since(start)
        # Friendly names make the suggestion texts read like the user's own home (without one the
        # engine words a name from the entity id); device classes make a door sensor "open".
        names: dict[str, str] = {}
        device_classes: dict[str, str] = {}
        for entity_id in {event.entity_id for event in events}:
            if (state := self.hass.states.get(entity_id)) is None:
                continue
            if name := state.attributes.get(ATTR_FRIENDLY_NAME):
                names[entity_id] = str(name)
            if device_class := state.attributes.get(ATTR_DEVICE_CLASS):
                device_classes[entity_id] = str(device_class)
        home = HomeContext(
            time_zone=self.hass.config.time_zone,
            latitude=self.hass.config.latitude,
            longitude=self.hass.config.longitude,
            elevation=float(self.hass.config.elevation or 0),
            entity_names=names,
            device_classes=device_classes,
        )
        defaults = MiningOptions()
        mining_options = replace(
            defaults,
            window_days=options.window_days,
            min_support_days=options.min_support_days,
            min_confidence=options.min_confidence,
            excluded_domains=defaults.excluded_domains | options.exclusions.domains,
            excluded_entities=defaults.excluded_entities | options.exclusions.entities,
        )
        mining_started = monotonic()
        patterns = await self.hass.async_add_executor_job(
            partial(
                mine_patterns,
                events,
                home,
                existing_automations=existing_automation_configs(self.hass),
                options=mining_options,
                now=started,
            )
        )
        mining_s = monotonic() - mining_started
        mined = {pattern["id"]: pattern for pattern in (p.as_dict() for p in patterns)}
        contexts = {p.id: pattern_context(p, device_classes) for p in patterns}
        decided = {s.id: s for s in self.suggestions.suggestions.values() if s.status in _DECIDED}
        candidates = [p for pid, p in mined.items() if pid not in decided]
        # Decided texts first: if the add-on's limit cuts the list, the user's decisions are kept.
        known = [s.text for s in decided.values()] + existing_automation_texts(self.hass)
        result = SuggestResult(profile=None, models={}, suggestions=[])
        ranking_started = monotonic()
        if candidates:
            try:
                result = await self._async_suggest_when_ready(
                    [{"id": p["id"], "text": p["text"], "context": contexts[p["id"]]} for p in candidates],
                    known,
                )
            except HomeIQError as err:
                self._handle_call_error(err)
                raise translate_error(err) from err
        ranking_s = monotonic() - ranking_started
        new = self._merge(result, mined, started)
        finished = dt_util.utcnow()
        summary: dict[str, Any] = {
            "started": started.isoformat(),
            "finished": finished.isoformat(),
            "duration_s": round((finished - started).total_seconds(), 3),
            "mining_s": round(mining_s, 3),
            "ranking_s": round(ranking_s, 3),
            "changes": len(events),
            "patterns": len(mined),
            "candidates": len(candidates),
            "duplicates": sum(1 for r in result.suggestions if r.duplicate_of is not None),
            "new": len(new),
            "open": len(self.suggestions.with_status(finished, SuggestionStatus.NEW)),
            "profile": result.profile,
            "models": result.models,
        }
        self.suggestions.last_analysis = summary
        await self.suggestions.async_save()
        self._notify_high_priority(new)
        self.async_update_listeners()
        return summary

    async def _async_suggest_when_ready(
        self, patterns: list[dict[str, Any]], known: list[str]
    ) -> SuggestResult:
        """Ask the add-on, waiting while it loads its models (it loads them on first use)."""
        deadline = monotonic() + MODELS_LOADING_WAIT.total_seconds()
        while True:
            try:
                return await self.client.async_suggest(
                    patterns,
                    query=self.options.focus_query or None,
                    known=known,
                    top_k=self.options.max_suggestions,
                )
            except HomeIQModelsLoadingError as err:
                wait = err.retry_after if err.retry_after is not None else DEFAULT_RETRY_AFTER_S
                if monotonic() + wait > deadline:
                    raise
                LOGGER.info("The add-on is loading its models; asking again in %s s", wait)
                await asyncio.sleep(wait)

    def _merge(
        self, result: SuggestResult, mined: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> list[Suggestion]:
        """Fold the ranked answer into the store; returns the suggestions seen for the first time."""
        store = self.suggestions.suggestions
        new: list[Suggestion] = []
        kept: set[str] = set()
        ranked = [r for r in result.suggestions if r.duplicate_of is None and r.id in mined]
        for ranked_suggestion in ranked[: self.options.max_suggestions]:
            pattern = mined[ranked_suggestion.id]
            stats: dict[str, Any] = {
                "text": str(pattern["text"]),
                "kind": str(pattern.get("kind", "")),
                "automation": dict(pattern.get("automation") or {}),
                "entities": [str(e) for e in pattern.get("entities", [])],
                "support_days": int(pattern.get("support_days", 0)),
                "occurrences": int(pattern.get("occurrences", 0)),
                "confidence": float(pattern.get("confidence", 0.0)),
                "evidence": dict(pattern.get("evidence") or {}),
                "score": ranked_suggestion.score,
                "category": ranked_suggestion.category,
                "priority": ranked_suggestion.priority,
                "priority_reason": ranked_suggestion.priority_reason,
            }
            kept.add(ranked_suggestion.id)
            if (existing := store.get(ranked_suggestion.id)) is not None:
                # A re-mined habit keeps the user's decision; only its evidence is refreshed.
                for key, value in stats.items():
                    setattr(existing, key, value)
                existing.last_seen = now
                continue
            suggestion = Suggestion(id=ranked_suggestion.id, first_seen=now, last_seen=now, **stats)
            store[suggestion.id] = suggestion
            new.append(suggestion)
        # Open suggestions that this run no longer supports are dropped; decisions are kept.
        for suggestion_id in [
            sid for sid, s in store.items() if s.status is SuggestionStatus.NEW and sid not in kept
        ]:
            del store[suggestion_id]
        return new

    def _handle_call_error(self, err: HomeIQError) -> None:
        if isinstance(err, HomeIQAuthError):
            self.config_entry.async_start_reauth(self.hass)
        elif isinstance(err, HomeIQConnectionError):
            was_up = self.last_update_success
            self.async_set_update_error(err)
            if was_up:
                # A call, not a poll, found the outage: check again in FIRST_RETRY (then back off
                # as failed polls do) rather than at the next regular poll, up to HEALTH_INTERVAL
                # away, so the entities come back soon after the add-on does.
                self._failures = 1
                self.update_interval = FIRST_RETRY
                self._schedule_refresh()

    def _notify_high_priority(self, new: list[Suggestion]) -> None:
        high = [s for s in new if s.priority == "high"]
        if not high or not self.options.notify_high_priority:
            return
        lines = "\n".join(f"- {s.text}" for s in high[:10])
        persistent_notification.async_create(
            self.hass,
            f"{len(high)} new high-priority automation suggestion(s):\n{lines}\n\n"
            "Open the **Automation suggestions** to-do list to accept or dismiss them.",
            title="HomeIQ",
            notification_id=f"{NOTIFICATION_ID}_{self.config_entry.entry_id}",
        )

    # --- user decisions ------------------------------------------------------------------

    def get_suggestion(self, suggestion_id: str) -> Suggestion:
        """The stored suggestion, or a translated validation error."""
        if (suggestion := self.suggestions.suggestions.get(suggestion_id)) is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_suggestion",
                translation_placeholders={"suggestion_id": suggestion_id},
            )
        return suggestion

    def _ensure_undecided(self, suggestion: Suggestion) -> None:
        if suggestion.status is SuggestionStatus.ACCEPTED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="already_accepted",
                translation_placeholders={"entity_id": suggestion.automation_entity_id or ""},
            )

    async def async_accept(self, suggestion_id: str, *, enable: bool = False) -> Suggestion:
        """Create the suggestion's automation (off unless `enable`) and mark it accepted."""
        suggestion = self.get_suggestion(suggestion_id)
        self._ensure_undecided(suggestion)
        config = dict(suggestion.automation)
        config.setdefault("alias", suggestion.text[:200])
        config.setdefault(
            "description",
            f"Suggested by HomeIQ: seen on {suggestion.support_days} days, "
            f"confidence {suggestion.confidence:.0%}.",
        )
        config_id, entity_id = await async_create_automation(self.hass, config, enable=enable)
        suggestion.status = SuggestionStatus.ACCEPTED
        suggestion.automation_id = config_id
        suggestion.automation_entity_id = entity_id
        suggestion.snoozed_until = None
        suggestion.decided_at = dt_util.utcnow()
        await self.suggestions.async_save()
        self.async_update_listeners()
        return suggestion

    async def async_dismiss(self, suggestion_id: str) -> Suggestion:
        """Mark a suggestion dismissed for good."""
        suggestion = self.get_suggestion(suggestion_id)
        self._ensure_undecided(suggestion)
        suggestion.status = SuggestionStatus.DISMISSED
        suggestion.snoozed_until = None
        suggestion.decided_at = dt_util.utcnow()
        await self.suggestions.async_save()
        self.async_update_listeners()
        return suggestion

    async def async_snooze(self, suggestion_id: str, until: datetime) -> Suggestion:
        """Hide a suggestion until `until`."""
        suggestion = self.get_suggestion(suggestion_id)
        self._ensure_undecided(suggestion)
        if until <= dt_util.utcnow():
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="snooze_in_past",
                translation_placeholders={"until": until.isoformat()},
            )
        suggestion.status = SuggestionStatus.SNOOZED
        suggestion.snoozed_until = until
        suggestion.decided_at = dt_util.utcnow()
        await self.suggestions.async_save()
        self.async_update_listeners()
        return suggestion

    async def async_rerank(self, query: str, suggestions: list[Suggestion]) -> list[tuple[Suggestion, float]]:
        """Order `suggestions` by relevance to `query` with the add-on's reranker."""
        if not suggestions:
            return []
        try:
            ranked = await self.client.async_rerank(query, [s.text for s in suggestions])
        except HomeIQError as err:
            self._handle_call_error(err)
            raise translate_error(err) from err
        return [(suggestions[index], score) for index, score in ranked]


_DECIDED = frozenset({SuggestionStatus.ACCEPTED, SuggestionStatus.DISMISSED})
