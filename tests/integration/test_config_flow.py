"""Every config-flow path, against the loopback add-on: user, discovery, reauth, reconfigure, options."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homeiq.const import (
    CONF_ADDON_SLUG,
    CONF_ANALYSIS_TIME,
    CONF_EXCLUDED_DOMAINS,
    CONF_FOCUS_QUERY,
    CONF_MAX_SUGGESTIONS,
    CONF_MIN_CONFIDENCE,
    CONF_MIN_SUPPORT_DAYS,
    CONF_NOTIFY_HIGH_PRIORITY,
    CONF_WINDOW_DAYS,
    DOMAIN,
)
from tests.integration.addon_server import TOKEN, FakeAddon
from tests.integration.common import make_entry


def _user_input(addon: FakeAddon, token: str = TOKEN) -> dict[str, Any]:
    return {CONF_HOST: addon.host, CONF_PORT: addon.port, CONF_TOKEN: token}


def _discovery(addon: FakeAddon, **config: Any) -> HassioServiceInfo:
    return HassioServiceInfo(
        config={"host": addon.host, "port": addon.port, "addon": "HomeIQ Engine", **config},
        name="HomeIQ Engine",
        slug="abc123_homeiq",
        uuid="1234-uuid",
    )


async def test_user_flow_creates_entry_after_testing_the_token(hass: HomeAssistant, addon: FakeAddon) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(addon))

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == _user_input(addon)
    assert result["result"].unique_id == f"127.0.0.1:{addon.port}"
    assert addon.calls("/v1/models")  # the token was tested before the entry was created


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        ("stopped", "cannot_connect"),
        ("wrong_token", "invalid_auth"),
        ("busy", "models_loading"),
        ("no_v1", "unsupported_api"),
        ("not_json", "invalid_response"),
        ("server_error", "unknown"),
    ],
)
async def test_user_flow_reports_errors_and_recovers(
    hass: HomeAssistant, addon: FakeAddon, breakage: str, error: str
) -> None:
    token = TOKEN
    if breakage == "stopped":
        await addon.stop()
    elif breakage == "wrong_token":
        token = "wrong"
    elif breakage == "busy":
        addon.overrides["/v1/models"] = (503, '{"error": {"code": "busy", "message": "busy"}}', {})
    elif breakage == "no_v1":
        addon.serve_v1 = False
    elif breakage == "not_json":
        addon.overrides["/v1/models"] = (200, "<html>", {})
    else:
        addon.overrides["/v1/models"] = (500, '{"error": {"code": "internal", "message": "boom"}}', {})
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(addon, token))

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}

    if breakage == "stopped":
        await addon.start()
    addon.serve_v1 = True
    addon.overrides.clear()
    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(addon))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_flow_aborts_for_an_add_on_already_configured(
    hass: HomeAssistant, addon: FakeAddon
) -> None:
    make_entry(addon).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(addon))

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_hassio_discovery_with_token_creates_entry_on_confirm(
    hass: HomeAssistant, addon: FakeAddon
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(addon, token=TOKEN)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["description_placeholders"] == {"addon": "HomeIQ Engine"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {**_user_input(addon), CONF_ADDON_SLUG: "abc123_homeiq"}
    assert result["result"].unique_id == "1234-uuid"


async def test_hassio_discovery_without_token_asks_for_it(hass: HomeAssistant, addon: FakeAddon) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(addon)
    )
    assert result["step_id"] == "hassio_confirm"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: "wrong"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: TOKEN})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_TOKEN] == TOKEN


async def test_hassio_rediscovery_updates_host_port_and_token(hass: HomeAssistant, addon: FakeAddon) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="1234-uuid",
        data={CONF_HOST: "old-host", CONF_PORT: 1, CONF_TOKEN: "old-token"},
    )
    entry.add_to_hass(hass)

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(addon, token=TOKEN)
    )
    # The abort may reload the entry: let that finish before the test ends (no timer left behind).
    await hass.async_block_till_done(wait_background_tasks=True)

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {**_user_input(addon), CONF_ADDON_SLUG: "abc123_homeiq"}


async def test_hassio_discovery_of_a_manually_configured_add_on_aborts(
    hass: HomeAssistant, addon: FakeAddon
) -> None:
    make_entry(addon).add_to_hass(hass)

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(addon, token=TOKEN)
    )
    # The abort may reload the entry: let that finish before the test ends (no timer left behind).
    await hass.async_block_till_done(wait_background_tasks=True)

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_a_reinstalled_add_on_gives_its_new_token_to_the_entry(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None
) -> None:
    """A reinstall brings a new discovery uuid and a new token at the same address."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="uuid-of-the-first-install",
        data={CONF_HOST: addon.host, CONF_PORT: addon.port, CONF_TOKEN: "token-of-the-first-install"},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)  # 401: the old token
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(addon, token=TOKEN)
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_TOKEN] == TOKEN
    assert entry.unique_id == "1234-uuid"
    assert entry.state is ConfigEntryState.LOADED  # reloaded with the token that works
    # The service device links to the add-on's page in the UI, not to its token-protected API.
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert device.configuration_url == "homeassistant://hassio/addon/abc123_homeiq/info"


async def test_reauth_replaces_the_token(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None
) -> None:
    entry = make_entry(addon)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, data={**entry.data, CONF_TOKEN: "old"})
    addon.token = "new-token"
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: "still-wrong"})
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: "new-token"})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_TOKEN] == "new-token"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_changes_the_address(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None
) -> None:
    entry = make_entry(addon)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, data={CONF_HOST: "127.0.0.1", CONF_PORT: 9, CONF_TOKEN: TOKEN}
    )
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: 9, CONF_TOKEN: TOKEN}
    )
    assert result["errors"] == {"base": "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], _user_input(addon))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == _user_input(addon)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_options_flow_validates_and_saves(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    options = {
        CONF_WINDOW_DAYS: 14,
        CONF_MIN_SUPPORT_DAYS: 20,
        CONF_MIN_CONFIDENCE: 0.7,
        CONF_EXCLUDED_DOMAINS: ["media_player"],
        CONF_ANALYSIS_TIME: "04:30:00",
        CONF_MAX_SUGGESTIONS: 10,
        CONF_FOCUS_QUERY: "  energy saving ",
        CONF_NOTIFY_HIGH_PRIORITY: False,
    }

    result = await hass.config_entries.options.async_configure(result["flow_id"], options)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MIN_SUPPORT_DAYS: "support_exceeds_window"}

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**options, CONF_MIN_SUPPORT_DAYS: 6}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert setup_entry.options[CONF_FOCUS_QUERY] == "energy saving"
    assert setup_entry.options[CONF_MIN_SUPPORT_DAYS] == 6
    assert setup_entry.state is ConfigEntryState.LOADED
    options = setup_entry.runtime_data.options
    assert options.window_days == 14
    assert options.exclusions.domains == frozenset({"media_player"})
    assert options.analysis_time.hour == 4
