"""Config flow: manual set-up, Supervisor discovery, reauth, reconfigure and options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, override

import probatio
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN
from homeassistant.core import callback
from homeassistant.helpers import selector
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.service_info.hassio import HassioServiceInfo

from .api import (
    HomeIQAuthError,
    HomeIQClient,
    HomeIQConnectionError,
    HomeIQError,
    HomeIQModelsLoadingError,
    HomeIQResponseError,
    HomeIQUnsupportedApiError,
)
from .const import (
    CONF_ADDON_SLUG,
    CONF_ANALYSIS_TIME,
    CONF_EXCLUDED_AREAS,
    CONF_EXCLUDED_DOMAINS,
    CONF_EXCLUDED_ENTITIES,
    CONF_EXCLUDED_LABELS,
    CONF_FOCUS_QUERY,
    CONF_MAX_SUGGESTIONS,
    CONF_MIN_CONFIDENCE,
    CONF_MIN_SUPPORT_DAYS,
    CONF_NOTIFY_HIGH_PRIORITY,
    CONF_WINDOW_DAYS,
    DEFAULT_ANALYSIS_TIME,
    DEFAULT_MAX_SUGGESTIONS,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_SUPPORT_DAYS,
    DEFAULT_NOTIFY_HIGH_PRIORITY,
    DEFAULT_PORT,
    DEFAULT_WINDOW_DAYS,
    DOMAIN,
    LOGGER,
    MAX_WINDOW_DAYS,
    TRACKED_DOMAINS,
    addon_info_url,
)

TITLE = "HomeIQ"
_TOKEN_SELECTOR = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD))
_PORT_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(min=1, max=65535, mode=selector.NumberSelectorMode.BOX)
)


def _connection_schema(defaults: Mapping[str, Any]) -> probatio.Schema:
    return probatio.Schema(
        {
            probatio.Required(
                CONF_HOST, default=defaults.get(CONF_HOST, probatio.UNDEFINED)
            ): selector.TextSelector(),
            probatio.Required(CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_PORT)): _PORT_SELECTOR,
            probatio.Required(CONF_TOKEN): _TOKEN_SELECTOR,
        }
    )


# Most specific first: HomeIQUnsupportedApiError is a HomeIQResponseError.
_FORM_ERRORS: tuple[tuple[type[HomeIQError], str], ...] = (
    (HomeIQAuthError, "invalid_auth"),
    (HomeIQConnectionError, "cannot_connect"),
    (HomeIQModelsLoadingError, "models_loading"),
    (HomeIQUnsupportedApiError, "unsupported_api"),
    (HomeIQResponseError, "invalid_response"),
)


async def _async_test_connection(flow: ConfigFlow, host: str, port: int, token: str) -> dict[str, str]:
    """Errors for the form ({} when the add-on accepted the token and speaks API v1)."""
    client = HomeIQClient(async_get_clientsession(flow.hass), host, port, token)
    try:
        await client.async_status()
    except HomeIQError as err:
        for error_type, key in _FORM_ERRORS:
            if isinstance(err, error_type):
                return {"base": key}
        LOGGER.exception("Unexpected answer from the add-on")
        return {"base": "unknown"}
    return {}


class HomeIQConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up HomeIQ against its add-on."""

    VERSION = 1

    def __init__(self) -> None:
        """Nothing discovered yet."""
        self._discovered: dict[str, Any] = {}
        self._addon_name = "HomeIQ"

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: ConfigEntry) -> HomeIQOptionsFlow:
        """The options flow."""
        return HomeIQOptionsFlow()

    @override
    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Manual set-up: host, port and token, tested before the entry is created."""
        errors: dict[str, str] = {}
        if user_input is not None:
            host, port = user_input[CONF_HOST].strip(), int(user_input[CONF_PORT])
            self._async_abort_entries_match({CONF_HOST: host, CONF_PORT: port})
            errors = await _async_test_connection(self, host, port, user_input[CONF_TOKEN])
            if not errors:
                await self.async_set_unique_id(f"{host}:{port}")
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=TITLE, data={CONF_HOST: host, CONF_PORT: port, CONF_TOKEN: user_input[CONF_TOKEN]}
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(_connection_schema({}), user_input),
            errors=errors,
        )

    @override
    async def async_step_hassio(self, discovery_info: HassioServiceInfo) -> ConfigFlowResult:
        """The add-on announced itself through the Supervisor."""
        config = discovery_info.config
        host, port = str(config[CONF_HOST]), int(config[CONF_PORT])
        updates: dict[str, Any] = {CONF_HOST: host, CONF_PORT: port, CONF_ADDON_SLUG: discovery_info.slug}
        if token := config.get(CONF_TOKEN):
            updates[CONF_TOKEN] = str(token)
        await self.async_set_unique_id(discovery_info.uuid)
        # A rediscovery (new address or token after an add-on restart) updates the existing entry.
        self._abort_if_unique_id_configured(updates=updates)
        # A reinstalled add-on (or one first set up by hand) has a new uuid and a new token at the
        # same address: the entry at that address takes both, or it would fail with 401 for good.
        for entry in self._async_current_entries(include_ignore=False):
            if entry.data.get(CONF_HOST) == host and entry.data.get(CONF_PORT) == port:
                return self.async_update_reload_and_abort(
                    entry, unique_id=discovery_info.uuid, data_updates=updates, reason="already_configured"
                )
        self._discovered = updates
        self._addon_name = discovery_info.name
        self.context["title_placeholders"] = {"addon": discovery_info.name}
        self.context["configuration_url"] = addon_info_url(discovery_info.slug)
        return await self.async_step_hassio_confirm()

    async def async_step_hassio_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Confirm the discovered add-on (and ask for a token if the discovery had none)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            token = str(self._discovered.get(CONF_TOKEN) or user_input.get(CONF_TOKEN, ""))
            host, port = self._discovered[CONF_HOST], self._discovered[CONF_PORT]
            errors = await _async_test_connection(self, host, port, token)
            if not errors:
                slug = self._discovered[CONF_ADDON_SLUG]
                return self.async_create_entry(
                    title=TITLE,
                    data={CONF_HOST: host, CONF_PORT: port, CONF_TOKEN: token, CONF_ADDON_SLUG: slug},
                )
        schema = probatio.Schema(
            {} if CONF_TOKEN in self._discovered else {probatio.Required(CONF_TOKEN): _TOKEN_SELECTOR}
        )
        return self.async_show_form(
            step_id="hassio_confirm",
            data_schema=schema,
            errors=errors,
            description_placeholders={"addon": self._addon_name},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The add-on rejected the token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the new token and test it."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await _async_test_connection(
                self, entry.data[CONF_HOST], entry.data[CONF_PORT], user_input[CONF_TOKEN]
            )
            if not errors:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_TOKEN: user_input[CONF_TOKEN]}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=probatio.Schema({probatio.Required(CONF_TOKEN): _TOKEN_SELECTOR}),
            errors=errors,
            description_placeholders={"host": f"{entry.data[CONF_HOST]}:{entry.data[CONF_PORT]}"},
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Change host, port or token."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            host, port = user_input[CONF_HOST].strip(), int(user_input[CONF_PORT])
            errors = await _async_test_connection(self, host, port, user_input[CONF_TOKEN])
            if not errors:
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_HOST: host, CONF_PORT: port, CONF_TOKEN: user_input[CONF_TOKEN]}
                )
        return self.async_show_form(
            step_id="reconfigure", data_schema=_connection_schema(user_input or entry.data), errors=errors
        )


def _options_schema() -> probatio.Schema:
    def number(low: float, high: float, step: float = 1) -> selector.NumberSelector:
        return selector.NumberSelector(
            selector.NumberSelectorConfig(min=low, max=high, step=step, mode=selector.NumberSelectorMode.BOX)
        )

    return probatio.Schema(
        {
            probatio.Required(CONF_WINDOW_DAYS, default=DEFAULT_WINDOW_DAYS): number(3, MAX_WINDOW_DAYS),
            probatio.Required(CONF_MIN_SUPPORT_DAYS, default=DEFAULT_MIN_SUPPORT_DAYS): number(
                2, MAX_WINDOW_DAYS
            ),
            probatio.Required(CONF_MIN_CONFIDENCE, default=DEFAULT_MIN_CONFIDENCE): number(0.1, 1.0, 0.05),
            probatio.Optional(CONF_EXCLUDED_ENTITIES, default=[]): selector.EntitySelector(
                selector.EntitySelectorConfig(multiple=True)
            ),
            probatio.Optional(CONF_EXCLUDED_DOMAINS, default=[]): selector.SelectSelector(
                selector.SelectSelectorConfig(
                    options=sorted(TRACKED_DOMAINS), multiple=True, mode=selector.SelectSelectorMode.DROPDOWN
                )
            ),
            probatio.Optional(CONF_EXCLUDED_AREAS, default=[]): selector.AreaSelector(
                selector.AreaSelectorConfig(multiple=True)
            ),
            probatio.Optional(CONF_EXCLUDED_LABELS, default=[]): selector.LabelSelector(
                selector.LabelSelectorConfig(multiple=True)
            ),
            probatio.Required(CONF_ANALYSIS_TIME, default=DEFAULT_ANALYSIS_TIME): selector.TimeSelector(),
            probatio.Required(CONF_MAX_SUGGESTIONS, default=DEFAULT_MAX_SUGGESTIONS): number(1, 100),
            probatio.Optional(CONF_FOCUS_QUERY, default=""): selector.TextSelector(),
            probatio.Required(
                CONF_NOTIFY_HIGH_PRIORITY, default=DEFAULT_NOTIFY_HIGH_PRIORITY
            ): selector.BooleanSelector(),
        }
    )


class HomeIQOptionsFlow(OptionsFlowWithReload):
    """Mining thresholds, exclusions, schedule and presentation; the entry reloads on save."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input[CONF_MIN_SUPPORT_DAYS] > user_input[CONF_WINDOW_DAYS]:
                errors[CONF_MIN_SUPPORT_DAYS] = "support_exceeds_window"
            else:
                options = {
                    **user_input,
                    CONF_WINDOW_DAYS: int(user_input[CONF_WINDOW_DAYS]),
                    CONF_MIN_SUPPORT_DAYS: int(user_input[CONF_MIN_SUPPORT_DAYS]),
                    CONF_MAX_SUGGESTIONS: int(user_input[CONF_MAX_SUGGESTIONS]),
                    CONF_FOCUS_QUERY: str(user_input.get(CONF_FOCUS_QUERY, "")).strip(),
                }
                return self.async_create_entry(data=options)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                _options_schema(), user_input or self.config_entry.options
            ),
            errors=errors,
        )
