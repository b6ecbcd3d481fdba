"""The main job end to end: the real add-on (lite profile, real all-MiniLM-L6-v2 weights) and a real
Home Assistant with the integration, talking over loopback, checked through HA's own REST and
WebSocket APIs — what a person sees in the UI."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from custom_components.homeiq.const import DEFAULT_MAX_SUGGESTIONS
from demo.flow import (
    DemoStack,
    Progress,
    analyze,
    get_suggestions,
    move_nightly_analysis_away,
    start_stack,
)

DOMAIN = "homeiq"


async def _entities_of_entry(stack: DemoStack) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = await stack.ha.ws({"type": "config/entity_registry/list"})
    return [e for e in entries if e.get("config_entry_id") == stack.entry_id]


async def _scenario(workdir: Path) -> None:
    progress = Progress(io.StringIO())
    stack = await start_stack(workdir, progress, seed=5)
    try:
        summary = await analyze(stack)
        # Two analyses are compared: no scheduled third may join in. (After the first analysis: the
        # options reload would cut the history backfill short.)
        await move_nightly_analysis_away(stack)
        assert isinstance(summary, dict) and summary

        # The integration's entities exist and have states.
        entities = await _entities_of_entry(stack)
        platforms = {e["entity_id"].split(".")[0] for e in entities}
        assert {"todo", "sensor", "binary_sensor", "button"} <= platforms, platforms
        for entity in entities:
            if entity.get("disabled_by"):
                continue
            state = await stack.ha.rest("GET", f"/api/states/{entity['entity_id']}")
            assert state["state"] not in ("unavailable",), entity["entity_id"]

        # get_suggestions answers with ranked, classified suggestions about the planted routines.
        suggestions = await get_suggestions(stack, status=["new"])
        assert suggestions, f"no suggestions; summary {summary}"
        for suggestion in suggestions:
            assert suggestion["category"] in {"energy", "security", "comfort", "convenience"}
            assert suggestion["priority"] in {"high", "medium", "low"}
            assert suggestion["text"]
        noise = stack.home.noise_entities | stack.home.automated_entities
        assert not [s for s in suggestions if set(s.get("entities", [])) & noise]

        # The to-do list shows them.
        (todo,) = [e["entity_id"] for e in entities if e["entity_id"].startswith("todo.")]
        items = await stack.ha.call_service("todo", "get_items", {"entity_id": todo}, response=True)
        assert len(items[todo]["items"]) == len(suggestions)

        # Accept one: a real automation appears, off (disabled) until the person reviews it.
        chosen = suggestions[0]
        accepted = await stack.ha.call_service(
            DOMAIN,
            "accept_suggestion",
            {"config_entry_id": stack.entry_id, "suggestion_id": chosen["id"]},
            response=True,
        )
        automation_entity = accepted["entity_id"]
        state = await stack.ha.rest("GET", f"/api/states/{automation_entity}")
        assert state["state"] == "off"
        written = yaml.safe_load((stack.ha.config_dir / "automations.yaml").read_text())
        assert any(a.get("id") == accepted["automation_id"] for a in written)

        # A second analysis duplicates nothing, keeps what was open and does not resurrect the
        # accepted one. The history ends at the real now, so how many habits it holds depends on the
        # day: when the first list was full, the slot the accepted one freed goes to the next habit.
        await analyze(stack)
        again = await get_suggestions(stack, status=["new", "accepted", "dismissed", "snoozed"])
        ids = [s["id"] for s in again]
        assert len(ids) == len(set(ids))
        before = {s["id"] for s in suggestions}
        after = {s["id"] for s in again if s["status"] == "new"}
        assert after >= before - {chosen["id"]}
        assert chosen["id"] not in after
        assert len(after - before) <= (1 if len(before) == DEFAULT_MAX_SUGGESTIONS else 0), after - before
        assert [s["status"] for s in again if s["id"] == chosen["id"]] == ["accepted"]
    finally:
        stack.stop()


def test_demo_flow_end_to_end(tmp_path: Path, lite_model_cached: Callable[[Path], None]) -> None:
    lite_model_cached(tmp_path)
    asyncio.run(_scenario(tmp_path))
