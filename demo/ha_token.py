"""Create an admin user with a long-lived access token in a Home Assistant config directory.

Run before Home Assistant starts: ``python -m demo.ha_token CONFIG_DIR TOKEN_FILE``. The token
is written to TOKEN_FILE with mode 0600. This is what a person does once in the UI
(profile → security → long-lived access tokens); the demo needs it without a browser.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

from homeassistant import runner
from homeassistant.auth import auth_manager_from_config
from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.config_entries import ConfigEntries
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er


async def create_token(config_dir: Path) -> str:
    """Create the user and token; HA's stores are flushed on stop."""
    hass = HomeAssistant(str(config_dir))
    hass.config_entries = ConfigEntries(hass, {})
    await hass.config_entries.async_initialize()
    dr.async_setup(hass)
    await asyncio.gather(dr.async_load(hass), er.async_load(hass))
    hass.auth = await auth_manager_from_config(hass, [{"type": "homeassistant"}], [])
    user = await hass.auth.async_create_user("HomeIQ demo", group_ids=["system-admin"])
    refresh_token = await hass.auth.async_create_refresh_token(
        user,
        client_name="HomeIQ demo",
        token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN,
        access_token_expiration=timedelta(days=30),
    )
    token = hass.auth.async_create_access_token(refresh_token)
    # Stopping a running core fires the final-write event that flushes HA's delayed stores.
    hass.set_state(CoreState.running)
    await hass.async_stop()
    return token


def main() -> None:
    config_dir, token_file = Path(sys.argv[1]), Path(sys.argv[2])
    token = asyncio.run(create_token(config_dir), loop_factory=runner.create_event_loop)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)


if __name__ == "__main__":
    main()
