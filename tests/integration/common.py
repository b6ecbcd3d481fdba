"""Helpers shared by the integration tests."""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homeiq.const import DOMAIN
from tests.integration.addon_server import TOKEN, FakeAddon


def make_entry(addon: FakeAddon, **options: Any) -> MockConfigEntry:
    """A config entry pointing at the loopback add-on."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="HomeIQ",
        unique_id=f"127.0.0.1:{addon.port}",
        data={CONF_HOST: addon.host, CONF_PORT: addon.port, CONF_TOKEN: TOKEN},
        options=options,
    )
