"""State history in: a backfill from the recorder, a live `state_changed` subscription, and the
window of changes an analysis mines (`History`).

The recorder is read by `recorder_changes.RecorderReader` (context ids included where it can),
the logs are kept by `history_store.HistoryStore`. The backfill and the live intake meet without
a gap or a duplicate: the intake starts first, the backfill reads up to that instant after the
recorder committed what was queued, and skips what is already logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE, EVENT_STATE_CHANGED
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util

from .const import DOMAIN, HABIT_DOMAINS, LOGGER, ORIGIN_DOMAINS, TRACKED_DOMAINS
from .history_store import HistoryStore
from .options import EntityExclusions, HomeIQOptions
from .patterns import StateChange
from .recorder_changes import RecorderReader

BACKFILL_CHUNK = timedelta(days=1)
COMMIT_WAIT = timedelta(seconds=60)


class EntitySelector:
    """Decides which entities' changes are tracked: tracked domains minus the exclusions."""

    def __init__(self, hass: HomeAssistant, exclusions: EntityExclusions) -> None:
        """Bind to the registries; decisions are made per call, so registry edits apply at once."""
        self._hass = hass
        self._exclusions = exclusions
        self._entities = er.async_get(hass)
        self._devices = dr.async_get(hass)

    @callback
    def is_included(self, entity_id: str) -> bool:
        """True when changes of `entity_id` may become habits or their triggers."""
        domain = entity_id.partition(".")[0]
        if domain in ORIGIN_DOMAINS:
            return True
        excluded = self._exclusions
        if domain not in HABIT_DOMAINS or domain in excluded.domains or entity_id in excluded.entities:
            return False
        if (entry := self._entities.async_get(entity_id)) is None:
            return True
        # Our own entities and entities HA marks as configuration/diagnostic are never habits.
        if entry.platform == DOMAIN or entry.entity_category is not None or excluded.labels & entry.labels:
            return False
        area_id = entry.area_id
        if area_id is None and entry.device_id and (device := self._devices.async_get(entry.device_id)):
            area_id = device.area_id
        return area_id is None or area_id not in excluded.areas

    @callback
    def included_entity_ids(self) -> list[str]:
        """Entity ids to backfill: current states and registry entries that pass the filter."""
        candidates = {state.entity_id for state in self._hass.states.async_all(TRACKED_DOMAINS)}
        candidates.update(entry.entity_id for entry in self._entities.entities.values())
        return sorted(entity_id for entity_id in candidates if self.is_included(entity_id))


async def async_backfill(
    reader: RecorderReader,
    store: HistoryStore,
    entity_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> int:
    """Copy the recorder's changes in [start, end) into the store, a day at a time.

    After each day the store learns that it is complete up to there (`mark_recorded`), so an
    unload halfway leaves `recorded_until` where the backfill really got. Returns how many changes
    were added (changes already logged are skipped).
    """
    if start >= end:
        return 0
    if not entity_ids:
        store.mark_recorded(end)
        return 0
    recorder = get_instance(reader.hass)
    # At start-up the database may still be migrating; the live subscription is already running.
    if not await recorder.async_db_ready:
        LOGGER.warning("The recorder's database is not available; no history was backfilled")
        return 0
    # Changes from just before `end` may still be queued in the recorder: wait for their commit,
    # as HA's own history stream does, so that the backfill reaches the live intake.
    if (committed := recorder.async_get_commit_future()) is not None:
        # A recorder stuck for that long is broken; the backfill goes ahead without waiting more.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(COMMIT_WAIT.total_seconds()):
                await committed
    total = 0
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + BACKFILL_CHUNK, end)
        total += store.add_recorded(await reader.async_read(chunk_start, chunk_end, entity_ids))
        store.mark_recorded(chunk_end)
        chunk_start = chunk_end
    return total


def change_from_event(event: Event[EventStateChangedData]) -> StateChange | None:
    """The change to log for a `state_changed` event, or None for attribute-only updates.

    `unavailable`/`unknown` are kept: the pattern engine ignores the first state after them (a
    device coming back is not somebody switching it). The time is `last_updated`, as the recorder
    keeps it: for an origin record's attribute update, `last_changed` is an older change's.
    """
    new_state, old_state = event.data["new_state"], event.data["old_state"]
    if new_state is None:
        return None
    if (
        old_state is not None
        and old_state.state == new_state.state
        and new_state.domain not in ORIGIN_DOMAINS
    ):
        return None
    context = new_state.context
    return StateChange(
        entity_id=new_state.entity_id,
        state=new_state.state,
        when=new_state.last_updated,
        context_id=context.id,
        user_id=context.user_id,
        parent_id=context.parent_id,
    )


@callback
def async_subscribe(
    hass: HomeAssistant,
    selector: EntitySelector,
    on_change: Callable[[StateChange], None],
) -> CALLBACK_TYPE:
    """Call `on_change` for every tracked state change from now on; returns the unsubscribe."""

    @callback
    def _is_tracked(event_data: EventStateChangedData) -> bool:
        return selector.is_included(event_data["entity_id"])

    @callback
    def _on_state_changed(event: Event[EventStateChangedData]) -> None:
        if (change := change_from_event(event)) is not None:
            on_change(change)

    return hass.bus.async_listen(EVENT_STATE_CHANGED, _on_state_changed, event_filter=_is_tracked)


def window_start(now: datetime, window_days: int) -> datetime:
    """The first instant of a mining window of `window_days` days ending at `now`."""
    return now - timedelta(days=window_days)


class History:
    """The history of one config entry: live intake, the backfill of the gap, the mining window.

    The entities tracked are decided by one filter, `EntitySelector`, applied to the intake and
    again to the window (changes logged before the user excluded an entity stay out too).
    """

    def __init__(self, hass: HomeAssistant, entry_id: str, options: HomeIQOptions) -> None:
        """Create the history; nothing is read until `async_load`."""
        self._hass = hass
        self._window_days = options.window_days
        self._selector = EntitySelector(hass, options.exclusions)
        self._ready = asyncio.Event()
        self._reader = RecorderReader(hass)
        self.store = HistoryStore(hass, entry_id)

    async def async_load(self) -> None:
        """Read the logs an earlier run saved."""
        await self.store.async_load()

    @callback
    def async_start(self, entry: ConfigEntry) -> None:
        """Subscribe to live changes and backfill the gap since the last run from the recorder.

        The intake starts first, at `now`; the backfill reads from `recorded_until` up to `now`.
        """
        now = dt_util.utcnow()
        start = window_start(now, self._window_days)
        self.store.prune(start)
        if (recorded_until := self.store.recorded_until_at(now)) is not None and recorded_until > start:
            start = recorded_until
        entry.async_on_unload(async_subscribe(self._hass, self._selector, self._on_change))
        self.store.start_intake(now)
        # Config entries are not unloaded when Home Assistant stops: write at its final write.
        entry.async_on_unload(
            self._hass.bus.async_listen(EVENT_HOMEASSISTANT_FINAL_WRITE, self._async_final_write)
        )
        entry.async_create_background_task(
            self._hass, self._async_backfill(start, now), f"{DOMAIN} history backfill"
        )

    async def _async_backfill(self, start: datetime, end: datetime) -> None:
        try:
            count = await async_backfill(
                self._reader, self.store, self._selector.included_entity_ids(), start, end
            )
            LOGGER.debug("Backfilled %s state changes from %s to %s", count, start, end)
            self.store.async_schedule_save()
        finally:
            self._ready.set()

    @callback
    def _on_change(self, change: StateChange) -> None:
        self.store.add(change)
        self.store.async_schedule_save()

    async def async_wait_ready(self) -> None:
        """Wait until the backfill has finished (at once after that)."""
        await self._ready.wait()

    @callback
    def window_changes(self, now: datetime) -> list[StateChange]:
        """The changes of the mining window ending at `now`, oldest first; older days are pruned."""
        start = window_start(now, self._window_days)
        self.store.prune(start)
        included: dict[str, bool] = {}
        changes = self.store.changes_since(start)
        for change in changes:
            if change.entity_id not in included:
                included[change.entity_id] = self._selector.is_included(change.entity_id)
        return [change for change in changes if included[change.entity_id]]

    async def _async_final_write(self, _event: Event) -> None:
        self.store.async_cancel_save()
        await self.store.async_save()

    async def async_shutdown(self) -> None:
        """Stop logging and write what is in memory (unload)."""
        self.store.stop_intake(dt_util.utcnow())
        self.store.async_cancel_save()
        await self.store.async_save()
