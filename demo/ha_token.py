"""Create the owner account of a fresh Home Assistant config directory, with a long-lived token.

Run before Home Assistant starts: ``python -m demo.ha_token CONFIG_DIR TOKEN_FILE [USERNAME PASSWORD]``.
It does what a person does once in the onboarding wizard and the profile page: create the owner
(who can log in to the UI with USERNAME / PASSWORD), mark onboarding done, and create a long-lived
access token, written to TOKEN_FILE with mode 0600 for the demo's REST/WebSocket calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

from homeassistant import runner
from homeassistant.auth import auth_manager_from_config
from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.auth.providers.homeassistant import HassAuthProvider
from homeassistant.config_entries import ConfigEntries
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er

ONBOARDING_DONE = {
    "version": 4,
    "minor_version": 1,
    "key": "onboarding",
    "data": {"done": ["user", "core_config", "analytics", "integration"]},
}


async def create_token(config_dir: Path, username: str, password: str) -> str:
    """Create the owner and a token; HA's stores are flushed on stop."""
    hass = HomeAssistant(str(config_dir))
    hass.config_entries = ConfigEntries(hass, {})
    await hass.config_entries.async_initialize()
    dr.async_setup(hass)
    await asyncio.gather(dr.async_load(hass), er.async_load(hass))
    hass.auth = await auth_manager_from_config(hass, [{"type": "homeassistant"}], [])
    provider = hass.auth.auth_providers[0]
    assert isinstance(provider, HassAuthProvider)
    await provider.async_initialize()
    assert provider.data is not None
    provider.data.add_auth(username, password)
    await provider.data.async_save()
    credentials = await provider.async_get_or_create_credentials({"username": username})
    user = await hass.auth.async_get_or_create_user(credentials)  # the first user is the owner
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
    username, password = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else ("demo", "homeiq-demo")
    token = asyncio.run(create_token(config_dir, username, password), loop_factory=runner.create_event_loop)
    storage = config_dir / ".storage"
    storage.mkdir(exist_ok=True)
    (storage / "onboarding").write_text(json.dumps(ONBOARDING_DONE))
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)


if __name__ == "__main__":
    main()
