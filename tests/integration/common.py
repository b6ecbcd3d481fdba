"""Helpers shared by the integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from pytest_homeassistant_custom_component.common import MockConfigEntry

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
