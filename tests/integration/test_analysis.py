"""A full analysis: recorder history → pattern engine → loopback add-on → stored suggestions → actions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from custom_components.homeiq.automations import automation_editor_view
from custom_components.homeiq.const import (
    CONF_FOCUS_QUERY,
    CONF_MAX_SUGGESTIONS,
    CONF_NOTIFY_HIGH_PRIORITY,
    DOMAIN,
)
from custom_components.homeiq.suggestions import SuggestionStatus
from tests.integration.addon_server import FakeAddon
from tests.integration.common import FROZEN_NOW, fire_time, make_entry, next_nightly_run

USER = "0123456789abcdef0123456789abcdef"
DAYS = 14
NOW = FROZEN_NOW  # 2026-11-15 12:00 UTC: the habits end the evening before
FIRST_DAY = NOW - timedelta(days=DAYS, hours=12)
PORCH_ON = "time_of_day:light.porch:on:daily:0"
PORCH_OFF = "time_of_day:light.porch:off:daily:0"
LOCKED = "time_of_day:lock.front_door:locked:daily:0"
UNLOCKED = "time_of_day:lock.front_door:unlocked:daily:0"


async def _write_habits(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Two weeks of two habits: the porch light from the app, the front door lock by hand."""
    events: list[tuple[timedelta, str, str, Context]] = []
    for day in range(DAYS):
        base = timedelta(days=day)
        events += [
            (base + timedelta(hours=7, minutes=day % 4), "lock.front_door", "unlocked", Context()),
            (base + timedelta(hours=18, minutes=day % 5), "light.porch", "on", Context(user_id=USER)),
            (base + timedelta(hours=21, minutes=day % 4), "lock.front_door", "locked", Context()),
            (base + timedelta(hours=22, minutes=30 + day % 3), "light.porch", "off", Context(user_id=USER)),
        ]
    for offset, entity_id, state, context in sorted(events, key=lambda e: e[0]):
        freezer.move_to(FIRST_DAY + offset)
        hass.states.async_set(
            entity_id, state, {"friendly_name": entity_id.split(".")[1].replace("_", " ")}, context=context
        )
    await async_wait_recording_done(hass)
    freezer.move_to(NOW)


def _entity_id(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        {"suggestions": "todo", "new_suggestions": "sensor", "last_analysis": "sensor", "analyze": "button"}[
            key
        ],
        DOMAIN,
        f"{entry.entry_id}_{key}",
    )
    assert entity_id is not None
    return entity_id


async def _todo_items(hass: HomeAssistant, entry: MockConfigEntry) -> list[dict[str, Any]]:
    """The suggestions to-do list's items, as ``todo.get_items`` answers them."""
    entity_id = _entity_id(hass, entry, "suggestions")
    response = await hass.services.async_call(
        "todo", "get_items", {"entity_id": entity_id}, blocking=True, return_response=True
    )
    assert response is not None
    items: list[dict[str, Any]] = response[entity_id]["items"]  # type: ignore[index]
    return items


async def _setup(hass: HomeAssistant, addon: FakeAddon, **options: Any) -> MockConfigEntry:
    entry = make_entry(addon, **options)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _analyze(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "analyze", {"config_entry_id": entry.entry_id}, blocking=True, return_response=True
    )
    assert response is not None
    return response


async def _call(hass: HomeAssistant, service: str, entry: MockConfigEntry, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN,
        service,
        {"config_entry_id": entry.entry_id, **data},
        blocking=True,
        return_response=service in ("get_suggestions", "accept_suggestion"),
    )


@pytest.fixture
async def analyzed(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> MockConfigEntry:
    """Two weeks of habits in the recorder, the integration set up, one analysis done."""
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)
    await _analyze(hass, entry)
    return entry


async def test_full_analysis_ranks_classifies_and_stores_suggestions(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)

    summary = await _analyze(hass, entry)

    assert summary["patterns"] == 4
    assert summary["new"] == 4
    assert summary["open"] == 4
    assert summary["changes"] == 4 * DAYS
    assert summary["profile"] == "test"
    (request,) = addon.calls("/v1/suggest")
    assert request is not None
    assert {p["id"] for p in request["patterns"]} == {PORCH_ON, PORCH_OFF, LOCKED, UNLOCKED}
    assert request["top_k"] == 20
    assert "query" not in request
    todo = hass.states.get(_entity_id(hass, entry, "suggestions"))
    assert todo is not None
    assert todo.state == "4"
    listed = await _todo_items(hass, entry)
    assert {item["uid"] for item in listed} == {PORCH_ON, PORCH_OFF, LOCKED, UNLOCKED}
    locked = next(item for item in listed if item["uid"] == LOCKED)
    assert locked["summary"].startswith("front door is locked around")
    assert locked["description"].startswith("Security, high priority (Seen on 14 of 14 days). On 14 of the ")
    assert "front door was locked around" in locked["description"]
    count = hass.states.get(_entity_id(hass, entry, "new_suggestions"))
    assert count is not None
    assert count.state == "4"
    assert count.attributes["high_priority"] == 2
    assert count.attributes["categories"] == {"security": 2, "energy": 1, "convenience": 1}
    last = hass.states.get(_entity_id(hass, entry, "last_analysis"))
    assert last is not None
    assert datetime.fromisoformat(last.state) == NOW
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    (notification,) = notifications.values()
    assert "2 new high-priority" in notification["message"]


async def test_options_reach_the_add_on_and_cap_the_list(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(
        hass,
        addon,
        **{CONF_FOCUS_QUERY: "front door lock", CONF_MAX_SUGGESTIONS: 2, CONF_NOTIFY_HIGH_PRIORITY: False},
    )

    summary = await _analyze(hass, entry)

    (request,) = addon.calls("/v1/suggest")
    assert request is not None
    assert request["query"] == "front door lock"
    assert request["top_k"] == 2
    assert summary["new"] == 2
    stored = entry.runtime_data.suggestions.store.suggestions
    assert set(stored) == {LOCKED, UNLOCKED}
    assert not persistent_notification._async_get_or_create_notifications(hass)


async def test_accept_creates_an_automation_that_is_off_and_survives_reload(
    hass: HomeAssistant, analyzed: MockConfigEntry, hass_config_dir: str
) -> None:
    response = await _call(hass, "accept_suggestion", analyzed, suggestion_id=PORCH_ON)

    entity_id = response["entity_id"]
    assert response["enabled"] is False
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "off"
    assert state.attributes["friendly_name"].startswith("porch turns on around")
    written = load_yaml(str(Path(hass_config_dir, "automations.yaml")))
    assert isinstance(written, list)
    (automation,) = written
    assert automation["id"] == response["automation_id"]
    assert automation["actions"] == [{"action": "light.turn_on", "target": {"entity_id": "light.porch"}}]

    await hass.services.async_call("automation", "reload", blocking=True)
    await hass.async_block_till_done()
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "off"

    todo = hass.states.get(_entity_id(hass, analyzed, "suggestions"))
    assert todo is not None
    assert todo.state == "3"
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "accept_suggestion", analyzed, suggestion_id=PORCH_ON)
    assert err.value.translation_key == "already_accepted"


async def test_accept_with_enable_leaves_the_automation_on(
    hass: HomeAssistant, analyzed: MockConfigEntry
) -> None:
    response = await _call(hass, "accept_suggestion", analyzed, suggestion_id=LOCKED, enable=True)

    state = hass.states.get(response["entity_id"])
    assert state is not None
    assert state.state == "on"
    # Switch it off again so that its time trigger does not outlive the test.
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": response["entity_id"]}, blocking=True
    )


async def test_reanalysis_skips_decided_suggestions_and_sends_them_as_known(
    hass: HomeAssistant, analyzed: MockConfigEntry, addon: FakeAddon
) -> None:
    await _call(hass, "accept_suggestion", analyzed, suggestion_id=PORCH_ON)
    await _call(hass, "dismiss_suggestion", analyzed, suggestion_id=PORCH_OFF)

    summary = await _analyze(hass, analyzed)

    request = addon.calls("/v1/suggest")[-1]
    assert request is not None
    assert {p["id"] for p in request["patterns"]} == {LOCKED, UNLOCKED}
    stored = analyzed.runtime_data.suggestions.store.suggestions
    assert any("porch turns off" in text for text in request["known"])  # the dismissed text
    assert any(text.startswith(stored[PORCH_ON].text) for text in request["known"])  # the new automation
    assert summary["new"] == 0
    assert stored[PORCH_ON].status is SuggestionStatus.ACCEPTED
    assert stored[PORCH_OFF].status is SuggestionStatus.DISMISSED


async def test_dismiss_survives_a_restart_and_is_never_resurrected(
    hass: HomeAssistant, analyzed: MockConfigEntry
) -> None:
    await _call(hass, "dismiss_suggestion", analyzed, suggestion_id=LOCKED)

    assert await hass.config_entries.async_reload(analyzed.entry_id)
    await hass.async_block_till_done()
    assert analyzed.state is ConfigEntryState.LOADED
    stored = analyzed.runtime_data.suggestions.store.suggestions
    assert stored[LOCKED].status is SuggestionStatus.DISMISSED
    assert len(stored) == 4

    await _analyze(hass, analyzed)
    assert analyzed.runtime_data.suggestions.store.suggestions[LOCKED].status is SuggestionStatus.DISMISSED
    response = await _call(hass, "get_suggestions", analyzed)
    assert LOCKED not in {s["id"] for s in response["suggestions"]}
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "accept_suggestion", analyzed, suggestion_id="no-such-id")
    assert err.value.translation_key == "unknown_suggestion"


async def test_todo_check_off_accepts_and_delete_dismisses(
    hass: HomeAssistant, analyzed: MockConfigEntry
) -> None:
    todo = _entity_id(hass, analyzed, "suggestions")

    await hass.services.async_call(
        "todo", "update_item", {"entity_id": todo, "item": PORCH_ON, "status": "completed"}, blocking=True
    )
    await hass.services.async_call(
        "todo", "update_item", {"entity_id": todo, "item": UNLOCKED, "status": "needs_action"}, blocking=True
    )
    await hass.services.async_call(
        "todo", "remove_item", {"entity_id": todo, "item": [PORCH_OFF]}, blocking=True
    )

    stored = analyzed.runtime_data.suggestions.store.suggestions
    assert stored[PORCH_ON].status is SuggestionStatus.ACCEPTED
    assert stored[PORCH_ON].automation_entity_id is not None
    assert stored[PORCH_OFF].status is SuggestionStatus.DISMISSED
    assert stored[UNLOCKED].status is SuggestionStatus.NEW
    state = hass.states.get(todo)
    assert state is not None
    assert state.state == "2"


async def test_snooze_hides_until_the_time_passes(
    hass: HomeAssistant, analyzed: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "snooze_suggestion", analyzed, suggestion_id=LOCKED, until=NOW - timedelta(hours=1))
    assert err.value.translation_key == "snooze_in_past"

    await _call(hass, "snooze_suggestion", analyzed, suggestion_id=LOCKED, until="2026-11-20 12:00:00")

    new = await _call(hass, "get_suggestions", analyzed)
    assert LOCKED not in {s["id"] for s in new["suggestions"]}
    snoozed = await _call(hass, "get_suggestions", analyzed, status=["snoozed"])
    (item,) = snoozed["suggestions"]
    assert item["id"] == LOCKED
    assert item["snoozed_until"] is not None

    freezer.move_to(datetime(2026, 11, 21, tzinfo=UTC))
    new = await _call(hass, "get_suggestions", analyzed, status="new")
    assert LOCKED in {s["id"] for s in new["suggestions"]}


async def test_get_suggestions_filters_and_reranks_by_query(
    hass: HomeAssistant, analyzed: MockConfigEntry, addon: FakeAddon
) -> None:
    security = await _call(hass, "get_suggestions", analyzed, category=["security"])
    assert {s["id"] for s in security["suggestions"]} == {LOCKED, UNLOCKED}
    low = await _call(hass, "get_suggestions", analyzed, priority="low", limit=1)
    assert len(low["suggestions"]) == 1
    assert low["suggestions"][0]["priority"] == "low"

    ranked = await _call(hass, "get_suggestions", analyzed, query="porch turns off")

    assert addon.calls("/v1/rerank")
    assert ranked["suggestions"][0]["id"] == PORCH_OFF
    assert ranked["suggestions"][0]["relevance"] > ranked["suggestions"][-1]["relevance"]


async def test_a_second_analysis_request_joins_the_running_one(
    hass: HomeAssistant, analyzed: MockConfigEntry, addon: FakeAddon
) -> None:
    analyzer = analyzed.runtime_data.analyzer
    before = len(addon.calls("/v1/suggest"))

    first, second = await asyncio.gather(
        analyzer.async_analyze(wait_for_models=True), analyzer.async_analyze(wait_for_models=True)
    )

    assert first == second
    assert len(addon.calls("/v1/suggest")) == before + 1


async def test_button_and_nightly_schedule_run_an_analysis(
    hass: HomeAssistant, addon: FakeAddon, automation_setup: None, freezer: FrozenDateTimeFactory
) -> None:
    await _write_habits(hass, freezer)
    entry = await _setup(hass, addon)

    await hass.services.async_call(
        "button", "press", {"entity_id": _entity_id(hass, entry, "analyze")}, blocking=True
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(addon.calls("/v1/suggest")) == 1

    await fire_time(hass, freezer, next_nightly_run())
    assert len(addon.calls("/v1/suggest")) == 2


LAMPS = ("light.desk_lamp", "light.bloom")


async def _write_office(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Two weeks of an office: the door opens all day; the two lamps go on together (each with
    its own context) soon after it opens in the morning, while they are off."""
    events: list[tuple[timedelta, str, str]] = []
    for day in range(DAYS):
        base = timedelta(days=day)
        arrival = timedelta(hours=8, minutes=(day * 7) % 50)
        events += [(base + arrival, "binary_sensor.office_door", "on")]
        events += [(base + arrival + timedelta(seconds=15), "binary_sensor.office_door", "off")]
        events += [(base + arrival + timedelta(seconds=30 + i), lamp, "on") for i, lamp in enumerate(LAMPS)]
        for k in range(8):
            opened = arrival + timedelta(minutes=40 + 50 * k + day % 9)
            events += [(base + opened, "binary_sensor.office_door", "on")]
            events += [(base + opened + timedelta(seconds=15), "binary_sensor.office_door", "off")]
        events += [(base + timedelta(hours=18, seconds=i), lamp, "off") for i, lamp in enumerate(LAMPS)]
    for offset, entity_id, state in sorted(events, key=lambda e: e[0]):
        freezer.move_to(FIRST_DAY + offset)
        hass.states.async_set(entity_id, state, {"friendly_name": entity_id.split(".")[1].replace("_", " ")})
    await async_wait_recording_done(hass)
    freezer.move_to(NOW)


async def test_a_conditional_group_suggestion_shows_its_evidence_and_is_accepted_whole(
    hass: HomeAssistant,
    addon: FakeAddon,
    automation_setup: None,
    freezer: FrozenDateTimeFactory,
    hass_config_dir: str,
) -> None:
    await _write_office(hass, freezer)
    entry = await _setup(hass, addon)
    await _analyze(hass, entry)

    response = await _call(hass, "get_suggestions", entry)
    [rule] = [s for s in response["suggestions"] if s["kind"] == "sequence"]
    assert rule["entities"] == ["binary_sensor.office_door", "light.bloom", "light.desk_lamp"]
    assert rule["evidence"]["precision"] == 1.0
    assert rule["priority_reason"] == "Seen on 14 of 14 days"
    # The add-on was told what the pattern is besides its words (API 1.1 context).
    (request,) = addon.calls("/v1/suggest")
    assert request is not None
    [sent] = [p for p in request["patterns"] if p["id"] == rule["id"]]
    assert sent["context"] == {
        "kind": "sequence",
        "trigger": "state",
        "domains": ["light"],
        "action": "on",
        "targets": 2,
        "trigger_domains": ["binary_sensor"],
        "evidence": {"occurrences": 14, "support_days": 14, "eligible_days": 14, "precision": 1.0},
    }
    assert rule["evidence"]["trigger_count"] == 14  # of 126 openings: only those while the lamps are off
    assert rule["evidence"]["text"].startswith("14 of the 14 times bloom and desk lamp turned on")
    assert "office door had opened less than a minute before" in rule["evidence"]["text"]
    # No per-lamp copies of the same habit.
    assert not [s for s in response["suggestions"] if s["entities"] in (["light.bloom"], ["light.desk_lamp"])]
    [item] = [i for i in await _todo_items(hass, entry) if i["uid"] == rule["id"]]
    assert rule["evidence"]["text"][1:] in item["description"]

    accepted = await _call(hass, "accept_suggestion", entry, suggestion_id=rule["id"])
    written = load_yaml(str(Path(hass_config_dir, "automations.yaml")))
    assert isinstance(written, list)
    (automation,) = written
    assert automation["id"] == accepted["automation_id"]
    assert automation["triggers"] == [
        {"trigger": "state", "entity_id": "binary_sensor.office_door", "to": "on"}
    ]
    assert automation["actions"] == [
        {"action": "light.turn_on", "target": {"entity_id": ["light.bloom", "light.desk_lamp"]}}
    ]
    [condition] = automation["conditions"]
    assert condition["condition"] == "state"
    assert condition["entity_id"] == ["light.bloom", "light.desk_lamp"]
    assert condition["state"] == "off"
    state = hass.states.get(accepted["entity_id"])
    assert state is not None  # Home Assistant loaded (validated) the automation


async def test_an_accept_writes_through_the_automation_editor_and_its_lock(
    hass: HomeAssistant, analyzed: MockConfigEntry, hass_client: Any, hass_config_dir: str
) -> None:
    """An accept beside a save in the UI editor must not drop either: both take the editor's lock."""
    assert await async_setup_component(hass, "config", {})
    client = await hass_client()
    editor = automation_editor_view(hass)
    assert editor is not None

    async with editor.mutation_lock:  # the editor is saving
        accept = hass.async_create_task(_call(hass, "accept_suggestion", analyzed, suggestion_id=PORCH_ON))
        # Let the accept run as far as it can (the clock is frozen: no sleeping, only turns of the
        # loop and of the executor that validates and writes).
        for _ in range(50):
            await hass.async_add_executor_job(lambda: None)
        assert not accept.done()
        assert not load_yaml(str(Path(hass_config_dir, "automations.yaml")))  # nothing written yet
    response = await accept

    saved = {"alias": "Mine", "triggers": [], "conditions": [], "actions": [], "mode": "single"}
    answer = await client.post("/api/config/automation/config/my_own", json=saved)
    assert answer.status == 200
    written = load_yaml(str(Path(hass_config_dir, "automations.yaml")))
    assert isinstance(written, list)
    assert {a["id"] for a in written} == {response["automation_id"], "my_own"}
