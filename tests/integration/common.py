"""Helpers shared by the integration tests."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.homeiq.const import DOMAIN
from tests.integration.addon_server import TOKEN, FakeAddon

# Every integration test starts with the clock frozen here, before Home Assistant starts (see
# conftest.py), so no test depends on the day it runs: build dates from this instant, not from
# datetime.now(). 12:00 UTC is 04:00 in the test time zone (US/Pacific), an hour after the default
# nightly analysis and well away from a DST change.
FROZEN_NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def make_entry(addon: FakeAddon, **options: Any) -> MockConfigEntry:
    """A config entry pointing at the loopback add-on."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="HomeIQ",
        unique_id=f"127.0.0.1:{addon.port}",
        data={CONF_HOST: addon.host, CONF_PORT: addon.port, CONF_TOKEN: TOKEN},
        options=options,
    )


def next_nightly_run() -> datetime:
    """The default nightly analysis (03:00 in HA's time zone) that follows FROZEN_NOW."""
    local = FROZEN_NOW.astimezone(dt_util.get_default_time_zone())
    run = datetime.combine(local.date(), time(3, 0), tzinfo=local.tzinfo)
    return run if run > local else run + timedelta(days=1)


async def fire_time(hass: HomeAssistant, freezer: FrozenDateTimeFactory, when: datetime) -> None:
    """Move the clock to `when`, fire the time listeners and wait for what they started."""
    freezer.move_to(when)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
