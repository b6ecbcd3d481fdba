"""An outage found by a call (not by a health poll) is re-checked soon, with backoff.

Before the fix the entities stayed unavailable until the next regular poll, up to
HEALTH_INTERVAL (5 min) away, even when the add-on was back seconds later.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from custom_components.homeiq.const import HEALTH_INTERVAL
from tests.integration.addon_server import FakeAddon
from tests.integration.test_analysis import _analyze, _setup, _write_habits
from tests.integration.test_availability import _poll, _states


async def test_an_analysis_that_finds_the_add_on_down_rechecks_in_30_s_then_backs_off(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    await _analyze(hass, entry)
    coordinator = entry.runtime_data.health
    assert coordinator.update_interval == HEALTH_INTERVAL

    await addon.stop()
    with pytest.raises(HomeAssistantError) as err:
        await _analyze(hass, entry)
    assert err.value.translation_key == "cannot_connect"
    assert _states(hass, entry)["addon_connectivity"] == "off"
    assert coordinator.update_interval == timedelta(seconds=30)

    await _poll(hass, freezer, timedelta(seconds=31))  # the re-check fails: back off
    assert coordinator.update_interval == timedelta(seconds=60)
    assert _states(hass, entry)["analyze"] == "unavailable"
    assert _states(hass, entry)["suggestions"] != "unavailable"  # local

    await addon.start()
    await _poll(hass, freezer, timedelta(seconds=61))  # back within a minute, not five
    assert _states(hass, entry)["addon_connectivity"] == "on"
    assert _states(hass, entry)["analyze"] != "unavailable"
    assert coordinator.update_interval == HEALTH_INTERVAL
