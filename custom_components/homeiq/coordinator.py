"""The two coordinators of a config entry.

- `HomeIQHealthCoordinator`: the add-on's status (version, model state per role) from
  GET /v1/models; backs off while the add-on is unreachable, polls fast while a model is busy,
  raises the repairs about an outage or a failed model, and keeps the device's version current.
- `HomeIQSuggestionCoordinator`: the stored suggestions, which are local and stay available while
  the add-on is down.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    AddonStatus,
    HomeIQAuthError,
    HomeIQClient,
    HomeIQConnectionError,
    HomeIQError,
    HomeIQModelsLoadingError,
    HomeIQUnsupportedApiError,
)
from .const import (
    DOMAIN,
    HEALTH_INTERVAL,
    ISSUE_ADDON_UNREACHABLE,
    ISSUE_MODELS_FAILED,
    LOGGER,
    MAX_HEALTH_BACKOFF,
    UNREACHABLE_REPAIR_AFTER,
)
from .suggestions import SuggestionStore

FIRST_RETRY = timedelta(seconds=30)
# While a model downloads, converts or loads, its sensor follows it this closely.
BUSY_INTERVAL = timedelta(seconds=10)
# Snoozes run out by themselves: the suggestion entities re-read the store this often.
SUGGESTIONS_INTERVAL = timedelta(minutes=15)
OUTAGE_STORAGE_VERSION = 1


def outage_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """Where the add-on's outage clock is kept (`homeiq.<entry_id>.addon`)."""
    return Store(hass, OUTAGE_STORAGE_VERSION, f"{DOMAIN}.{entry_id}.addon")


class HomeIQHealthCoordinator(DataUpdateCoordinator[AddonStatus]):
    """Polls the add-on's status; its entities: connectivity and the model states."""

    config_entry: ConfigEntry

    def __init__(self, hass: HomeAssistant, config_entry: ConfigEntry, client: HomeIQClient) -> None:
        """Create the coordinator; the outage clock is read in `_async_setup`."""
        super().__init__(
            hass, LOGGER, config_entry=config_entry, name=f"{DOMAIN} add-on", update_interval=HEALTH_INTERVAL
        )
        self.client = client
        self._failures = 0
        # When the add-on was first found unreachable; kept across restarts for the repair.
        self._outage = outage_store(hass, config_entry.entry_id)
        self.unreachable_since: datetime | None = None

    @override
    async def _async_setup(self) -> None:
        """Read the outage clock."""
        data = await self._outage.async_load() or {}
        if isinstance(since := data.get("unreachable_since"), str):
            self.unreachable_since = dt_util.parse_datetime(since)

    @override
    async def _async_update_data(self) -> AddonStatus:
        """Fetch /v1/models; while unreachable, retry with a growing interval."""
        try:
            status = await self.client.async_status()
        except HomeIQAuthError as err:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="auth_failed") from err
        except HomeIQUnsupportedApiError as err:
            if self.data is None:  # set-up: this is not our add-on, retrying will not help
                raise ConfigEntryError(translation_domain=DOMAIN, translation_key="unsupported_api") from err
            await self._async_note_failure(err)
            raise UpdateFailed(translation_domain=DOMAIN, translation_key="unsupported_api") from err
        except HomeIQError as err:
            await self._async_note_failure(err)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        await self._async_note_success(status)
        return status

    @callback
    def async_note_call_error(self, err: HomeIQError) -> None:
        """A call (analysis, rerank) failed: react as a failed poll would, without waiting for one."""
        if isinstance(err, HomeIQAuthError):
            self.config_entry.async_start_reauth(self.hass)
        elif isinstance(err, HomeIQModelsLoadingError):
            # The call started a model load: follow it closely from now on.
            self.update_interval = BUSY_INTERVAL
            self._schedule_refresh()
        elif isinstance(err, HomeIQConnectionError):
            was_up = self.last_update_success
            self.async_set_update_error(err)
            if not was_up:
                return
            # Check again in FIRST_RETRY (then back off as failed polls do) rather than at the
            # next regular poll, so the entities come back soon after the add-on does.
            self._failures = 1
            self.update_interval = FIRST_RETRY
            self._schedule_refresh()

    async def _async_note_failure(self, err: HomeIQError) -> None:
        self._failures += 1
        self.update_interval = min(FIRST_RETRY * 2 ** (self._failures - 1), MAX_HEALTH_BACKOFF)
        if not isinstance(err, HomeIQConnectionError):
            return
        now = dt_util.utcnow()
        if self.unreachable_since is None:
            self.unreachable_since = now
            await self._outage.async_save({"unreachable_since": now.isoformat()})
        elif now - self.unreachable_since >= UNREACHABLE_REPAIR_AFTER:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"{ISSUE_ADDON_UNREACHABLE}_{self.config_entry.entry_id}",
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_ADDON_UNREACHABLE,
                translation_placeholders={
                    "url": self.client.base_url,
                    "since": self.unreachable_since.isoformat(timespec="minutes"),
                },
            )

    async def _async_note_success(self, status: AddonStatus) -> None:
        self._failures = 0
        self.update_interval = BUSY_INTERVAL if status.busy_roles else HEALTH_INTERVAL
        entry_id = self.config_entry.entry_id
        devices = dr.async_get(self.hass)
        device = devices.async_get_device_by_identifier((DOMAIN, entry_id), entry_id)
        if device is not None and device.sw_version != status.version:
            devices.async_update_device(device.id, sw_version=status.version)  # the add-on was updated
        if self.unreachable_since is not None:
            self.unreachable_since = None
            await self._outage.async_save({"unreachable_since": None})
        ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_ADDON_UNREACHABLE}_{entry_id}")
        if failed := status.failed_roles:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"{ISSUE_MODELS_FAILED}_{entry_id}",
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_MODELS_FAILED,
                translation_placeholders={
                    "roles": ", ".join(failed),
                    "errors": "; ".join(f"{role}: {status.models[role].error or '?'}" for role in failed),
                },
            )
        else:
            ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_MODELS_FAILED}_{entry_id}")


class HomeIQSuggestionCoordinator(DataUpdateCoordinator[SuggestionStore]):
    """The stored suggestions; analyses and decisions save the store, which updates the entities."""

    config_entry: ConfigEntry

    def __init__(self, hass: HomeAssistant, config_entry: ConfigEntry, store: SuggestionStore) -> None:
        """Create the coordinator; the store is read in `_async_setup`."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=config_entry,
            name=f"{DOMAIN} suggestions",
            update_interval=SUGGESTIONS_INTERVAL,
            always_update=True,
        )
        self.store = store
        store.on_change = self._on_store_change

    @override
    async def _async_setup(self) -> None:
        """Read the stored suggestions."""
        await self.store.async_load()

    @override
    async def _async_update_data(self) -> SuggestionStore:
        """The store itself: local, so this never fails."""
        return self.store

    @callback
    def _on_store_change(self) -> None:
        self.async_set_updated_data(self.store)
