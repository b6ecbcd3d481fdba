"""Read the existing automations, and create a new one the way the UI automation editor does.

The editor (`homeassistant/components/config/automation.py`) validates the config, writes it with
a fresh `id` into `automations.yaml` (atomically) under its view's `mutation_lock`, and calls
`automation.reload` for that id. We do the same, through the editor's own view and lock when the
`config` component runs (it does in every default install), so that an accept beside a save in the
editor cannot drop either; without it, under a lock of our own. A new automation is then switched
off unless the user asked to enable it: the UI shows it as an automation that is off ("disabled"
in the editor's banner), the user enables it with its toggle, and the off state survives restarts
(automations restore their last state).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import probatio
from homeassistant.components.automation import DATA_COMPONENT
from homeassistant.components.automation.config import async_validate_config_item
from homeassistant.components.config.automation import EditAutomationConfigView
from homeassistant.config import AUTOMATION_CONFIG_PATH
from homeassistant.const import ATTR_ENTITY_ID, CONF_ID, SERVICE_RELOAD, SERVICE_TURN_OFF
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.util.file import write_utf8_file_atomic
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.yaml import dump, load_yaml

from .const import DOMAIN

AUTOMATION_DOMAIN = "automation"
_EDITOR_URL = "/api/config/automation/config/{config_key}"
_WRITE_LOCK: HassKey[asyncio.Lock] = HassKey(f"{DOMAIN}_automations_write_lock")
# Keys first in the order the UI editor writes them, so the file reads the same.
_KEY_ORDER = ("alias", "description", "triggers", "conditions", "actions", "mode")


def existing_automation_configs(hass: HomeAssistant) -> list[dict[str, Any]]:
    """The raw configs of the loaded automations (what the automation editor shows)."""
    if (component := hass.data.get(DATA_COMPONENT)) is None:
        return []
    return [dict(entity.raw_config) for entity in component.entities if entity.raw_config]


def existing_automation_texts(hass: HomeAssistant) -> list[str]:
    """Aliases and descriptions of the loaded automations, for near-duplicate detection."""
    texts: list[str] = []
    for config in existing_automation_configs(hass):
        alias, description = config.get("alias"), config.get("description")
        text = ". ".join(str(part) for part in (alias, description) if part)
        if text:
            texts.append(text)
    return texts


def _read_automations(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    content = load_yaml(str(path))
    if content is None:
        return []
    if not isinstance(content, list):
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="automations_file_invalid",
            translation_placeholders={"path": str(path)},
        )
    return [dict(item) for item in content if isinstance(item, dict)]


def _write_automations(path: Path, automations: list[dict[str, Any]]) -> None:
    # Dump before opening the file: a dump error must not truncate the user's automations.
    write_utf8_file_atomic(str(path), dump(automations))


def _append_automation(path: Path, config: dict[str, Any]) -> None:
    automations = _read_automations(path)
    automations.append(config)
    _write_automations(path, automations)


def automation_editor_view(hass: HomeAssistant) -> EditAutomationConfigView | None:
    """The UI automation editor's config view (its `mutation_lock` guards automations.yaml), or None
    when the `config` component does not run."""
    http = getattr(hass, "http", None)
    if http is None:
        return None
    for route in http.app.router.routes():
        if route.resource is None or route.resource.canonical != _EDITOR_URL:
            continue
        # HA wraps each view method in a closure that holds the view (helpers/http.py).
        handler = route.handler
        names = getattr(getattr(handler, "__code__", None), "co_freevars", ())
        cells = getattr(handler, "__closure__", None) or ()
        for name, cell in zip(names, cells, strict=False):
            if name == "view" and isinstance(cell.cell_contents, EditAutomationConfigView):
                return cell.cell_contents
    return None


async def async_create_automation(
    hass: HomeAssistant, config: dict[str, Any], *, enable: bool
) -> tuple[str, str]:
    """Write `config` as a new automation, load it, and switch it off unless `enable`.

    Returns (automation config id, entity id).
    """
    config_id = uuid.uuid4().hex
    new_config: dict[str, Any] = {CONF_ID: config_id}
    for key in _KEY_ORDER:
        if key in config:
            new_config[key] = config[key]
    new_config.update({k: v for k, v in config.items() if k != CONF_ID})
    try:
        await async_validate_config_item(hass, config_id, new_config)
    except (probatio.Invalid, HomeAssistantError) as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_automation",
            translation_placeholders={"error": str(err)},
        ) from err

    path = Path(hass.config.path(AUTOMATION_CONFIG_PATH))
    if (editor := automation_editor_view(hass)) is not None:
        async with editor.mutation_lock:
            current = await editor.read_config(hass)
            editor._write_value(hass, current, config_id, new_config)  # the editor's own writer
            await hass.async_add_executor_job(_write_automations, path, current)
    else:
        lock = hass.data.setdefault(_WRITE_LOCK, asyncio.Lock())
        async with lock:
            await hass.async_add_executor_job(_append_automation, path, new_config)
    await hass.services.async_call(AUTOMATION_DOMAIN, SERVICE_RELOAD, {CONF_ID: config_id}, blocking=True)

    entity_id = er.async_get(hass).async_get_entity_id(AUTOMATION_DOMAIN, AUTOMATION_DOMAIN, config_id)
    if entity_id is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="automation_not_loaded",
            translation_placeholders={"path": str(path)},
        )
    if not enable:
        await hass.services.async_call(
            AUTOMATION_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: entity_id}, blocking=True
        )
    return config_id, entity_id
