"""The add-on client's errors as translated Home Assistant errors, in one place."""

from __future__ import annotations

from homeassistant.exceptions import HomeAssistantError

from .api import (
    HomeIQAuthError,
    HomeIQError,
    HomeIQModelsLoadingError,
    HomeIQRequestError,
    HomeIQResponseError,
    HomeIQUnsupportedApiError,
)
from .const import DOMAIN


def translate_error(err: HomeIQError) -> HomeAssistantError:
    """The translated HA error for an add-on client error."""
    if isinstance(err, HomeIQAuthError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="auth_failed")
    if isinstance(err, HomeIQModelsLoadingError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="models_loading",
            translation_placeholders={"retry_after": str(round(err.retry_after or 30))},
        )
    if isinstance(err, HomeIQUnsupportedApiError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="unsupported_api")
    if isinstance(err, HomeIQResponseError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="invalid_response",
            translation_placeholders={"error": str(err)},
        )
    if isinstance(err, HomeIQRequestError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="request_rejected",
            translation_placeholders={"status": str(err.status), "code": err.code},
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="cannot_connect",
        translation_placeholders={"error": str(err)},
    )
