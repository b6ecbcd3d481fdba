"""Fixtures for the integration tests: a real recorder, a loopback add-on, a config dir on disk."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.integration.addon_server import FakeAddon
from tests.integration.common import FROZEN_NOW, make_entry

# The HA test plugin sets the SQLAlchemy engine logger to INFO (the recorder's statement echo):
# thousands of lines in every failure's captured log, hiding its cause.
logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


@pytest.fixture
def hass_config_dir(hass_tmp_config_dir: str) -> str:
    """A config dir of our own: accepting a suggestion writes automations.yaml into it."""
    return hass_tmp_config_dir


@pytest.fixture(autouse=True)
def _frozen_clock(freezer: FrozenDateTimeFactory) -> None:
    """Time stands still at FROZEN_NOW from before HA starts; tests move it with `freezer`.

    Autouse fixtures are set up before the ones a test asks for, and this one comes before
    `_integration_env` (which starts HA), so HA, its recorder and every test see the same day
    whatever the real date is.
    """
    freezer.move_to(FROZEN_NOW)


@pytest.fixture(autouse=True)
def _integration_env(recorder_mock: Any, enable_custom_integrations: None) -> Generator[None]:
    """The real recorder (requested first, as phcc requires) and our custom integration."""
    yield


@pytest.fixture
async def addon(socket_enabled: None) -> AsyncGenerator[FakeAddon]:
    """The loopback add-on, started; stopped at the end of the test."""
    server = FakeAddon()
    await server.start()
    yield server
    await server.stop()


def _write_default_config(config_dir: str) -> None:
    Path(config_dir, "configuration.yaml").write_text("automation: !include automations.yaml\n")
    Path(config_dir, "automations.yaml").write_text("[]\n")


@pytest.fixture
async def automation_setup(hass: HomeAssistant, hass_config_dir: str) -> None:
    """configuration.yaml as HA writes it on onboarding: automations live in automations.yaml."""
    await hass.async_add_executor_job(_write_default_config, hass_config_dir)
    assert await async_setup_component(hass, "automation", {"automation": []})


@pytest.fixture
async def setup_entry(hass: HomeAssistant, addon: FakeAddon, automation_setup: None) -> MockConfigEntry:
    """The integration set up against the loopback add-on."""
    entry = make_entry(addon)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry
