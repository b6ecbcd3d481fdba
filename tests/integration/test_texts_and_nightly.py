"""Texts written for the user come from the translations; the nightly analysis retries."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.core import HomeAssistant
from homeassistant.util.yaml import load_yaml

from custom_components.homeiq import analysis as analysis_module, texts as texts_module
from custom_components.homeiq.analysis import NIGHTLY_RETRY
from custom_components.homeiq.const import DOMAIN
from custom_components.homeiq.texts import async_load_texts
from tests.integration.addon_server import FakeAddon
from tests.integration.common import fire_time, next_nightly_run
from tests.integration.test_analysis import LOCKED, _call, _setup, _todo_items, _write_habits

TRANSLATIONS = Path(__file__).parents[2] / "custom_components" / DOMAIN / "translations" / "en.json"


def _english_texts() -> dict[str, str]:
    texts: dict[str, str] = json.loads(TRANSLATIONS.read_text())["texts"]
    return {f"component.{DOMAIN}.texts.{key}": value for key, value in texts.items()}


async def test_user_texts_come_from_the_translations(
    hass: HomeAssistant,
    addon: FakeAddon,
    *,
    automation_setup: None,
    freezer: FrozenDateTimeFactory,
    hass_config_dir: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another language's strings, as HA would load them: every text the integration writes follows.
    translated = {key: f"[xx] {value}" for key, value in _english_texts().items()}
    asked: list[tuple[str, str]] = []

    async def translations(hass: HomeAssistant, language: str, category: str, *_: Any) -> dict[str, str]:
        asked.append((language, category))
        return translated

    monkeypatch.setattr(texts_module, "async_get_translations", translations)
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    assert asked == [(hass.config.language, "texts")]
    await _call(hass, "analyze", entry)

    (notification,) = persistent_notification._async_get_or_create_notifications(hass).values()
    assert notification["title"] == "[xx] HomeIQ"
    assert notification["message"].startswith("[xx] 2 new high-priority")
    descriptions = [item["description"] for item in await _todo_items(hass, entry)]
    assert descriptions
    assert all(d.startswith("[xx] ") for d in descriptions)

    await _call(hass, "accept_suggestion", entry, suggestion_id=LOCKED)
    (automation,) = await hass.async_add_executor_job(
        load_yaml, str(Path(hass_config_dir) / "automations.yaml")
    )
    assert automation["description"].startswith("[xx] Suggested by HomeIQ: On 14 of the 14 days")


async def test_every_text_has_an_english_translation(hass: HomeAssistant, setup_entry: Any) -> None:
    texts = await async_load_texts(hass)
    english = _english_texts()

    assert set(texts.strings) >= set(english)
    title, message = texts.high_priority_notification([])
    assert (title, message.splitlines()[0]) == ("HomeIQ", "0 new high-priority automation suggestion(s):")
    # A key with no translation reads as the key, never as a crash.
    assert texts.get("no_such_text") == "no_such_text"


async def test_a_failed_nightly_analysis_is_retried(
    hass: HomeAssistant,
    addon: FakeAddon,
    automation_setup: None,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    addon.serve_v1 = False  # the add-on answers, but cannot rank

    await fire_time(hass, freezer, next_nightly_run())
    assert len(addon.calls("/v1/suggest")) == 1
    assert "Analysis failed" in caplog.text
    assert entry.runtime_data.suggestions.store.last_analysis is None

    addon.serve_v1 = True
    await fire_time(hass, freezer, next_nightly_run() + NIGHTLY_RETRY)

    assert len(addon.calls("/v1/suggest")) == 2
    assert entry.runtime_data.suggestions.store.last_analysis is not None
    await fire_time(hass, freezer, next_nightly_run() + 2 * NIGHTLY_RETRY)  # done: no further retry
    assert len(addon.calls("/v1/suggest")) == 2


async def test_nightly_retries_stop_after_the_budget(
    hass: HomeAssistant,
    addon: FakeAddon,
    automation_setup: None,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(analysis_module, "NIGHTLY_RETRIES", 2)
    await _write_habits(hass, freezer)
    await _setup(hass, addon)
    addon.serve_v1 = False

    for attempt in range(5):
        await fire_time(hass, freezer, next_nightly_run() + attempt * (NIGHTLY_RETRY + timedelta(seconds=1)))

    assert len(addon.calls("/v1/suggest")) == 3  # the run and two retries
