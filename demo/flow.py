"""The main job, end to end, as phases shared by ``python -m demo`` and the end-to-end tests.

1. set-up: a synthetic home with 28 days of history (``evaluation.synthetic_home``), a throw-away
   Home Assistant config directory, the add-on's data directory (kept between runs, so models are
   converted once);
2. model load: the add-on server on loopback, its roles loaded;
3. Home Assistant start;
4. history seeding: the home's past into HA's recorder, its entities' current states into HA;
5. integration set-up: the config flow, as a person runs it (host, port, token);
6. analysis: ``homeiq.analyze`` (history → patterns → add-on ranking/classification → suggestions);
7. the ranked suggestions through ``homeiq.get_suggestions``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from homeassistant.util.yaml import dump as yaml_dump

from evaluation.synthetic_home import SyntheticHome, generate_home

from .harness import AddonServer, HarnessError, HomeAssistantInstance, minilm_model_dir
from .seed import PastState, seed_recorder

DOMAIN = "homeiq"


@dataclass
class Progress:
    """Prints each phase with what it does and how long it took."""

    out: TextIO
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str, doing: str) -> Iterator[None]:
        self.out.write(f"▶ {name}: {doing} …\n")
        self.out.flush()
        started = time.monotonic()
        yield
        took = time.monotonic() - started
        self.timings[name] = took
        self.out.write(f"  ✓ {name} done in {took:.1f} s\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.out.write(f"  {text}\n")
        self.out.flush()


@dataclass
class DemoStack:
    """The running pieces of one demo installation."""

    addon: AddonServer
    ha: HomeAssistantInstance
    home: SyntheticHome
    entry_id: str = ""

    def stop(self) -> None:
        """Stop Home Assistant first (it talks to the add-on), then the add-on."""
        self.ha.stop()
        self.addon.stop()


def _user_hex(user: str) -> str:
    """HA user ids are 32 hex characters; the generator's are names."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"homeiq-demo-user:{user}").hex


def past_states(home: SyntheticHome) -> list[PastState]:
    """The synthetic home's history as recorder rows."""
    return [
        PastState(
            entity_id=c.entity_id,
            state=c.state,
            when=c.when,
            context_id=c.context_id,
            user_id=None if c.user_id is None else _user_hex(c.user_id),
            parent_id=c.parent_id,
        )
        for c in home.events
    ]


def automations_yaml(home: SyntheticHome) -> str:
    """The home's existing automations, as the UI editor writes ``automations.yaml``."""
    configs: list[dict[str, Any]] = []
    for index, automation in enumerate(home.automations):
        config = dict(automation)
        config.setdefault("id", f"demo_existing_{index}")
        config.setdefault("alias", f"Existing automation {index + 1}")
        configs.append(config)
    return yaml_dump(configs)


async def start_stack(
    workdir: Path,
    progress: Progress,
    *,
    seed: int = 3,
    days: int = 28,
    ha_port: int | None = None,
    addon_profile: str = "lite",
    addon_models: dict[str, str] | None = None,
) -> DemoStack:
    """Run phases 1 to 5 and return the running stack (stop it with ``stack.stop()``)."""
    with progress.phase("set-up", f"a demo home with {days} days of history, a fresh HA config directory"):
        home = generate_home(seed, days, end=datetime.now(UTC))
        progress.note(
            f"{len(home.events):,} state changes of {len({c.entity_id for c in home.events})} entities, "
            f"{len(home.automations)} existing automations, time zone {home.time_zone}"
        )
        ha_dir = workdir / "homeassistant"
        ha = HomeAssistantInstance(
            ha_dir, time_zone=home.time_zone, latitude=home.latitude, longitude=home.longitude
        )
        if ha_port:
            ha.port = ha_port
        ha_dir.mkdir(parents=True, exist_ok=True)
        (ha_dir / "automations.yaml").write_text(automations_yaml(home))
        ha.prepare()
        models = dict(addon_models or {})
        if addon_profile == "lite" and "embedding" not in models:
            models["embedding"] = str(minilm_model_dir())
        addon = AddonServer(
            workdir / "addon-data",
            profile=addon_profile,
            embedding_model=models.get("embedding"),
            reranker_model=models.get("reranker"),
            classifier_model=models.get("classifier"),
        )
    stack = DemoStack(addon=addon, ha=ha, home=home)
    try:
        roles = ["embedding"] if addon_profile == "lite" else ["embedding", "reranker", "classifier"]
        with progress.phase(
            "model load", f"add-on server ({addon_profile} profile), roles {', '.join(roles)}"
        ):
            addon.start()
            await addon.wait_healthy()
            models_info = await addon.wait_roles_ready(roles)
            for role in roles:
                info = models_info[role]
                size_mb = (info.get("bytes_on_disk") or 0) / 1e6
                progress.note(
                    f"{role}: {info.get('id')} ({info.get('precision')}, {size_mb:.0f} MB) "
                    f"loaded in {info.get('load_seconds') or 0:.1f} s"
                )
        with progress.phase("Home Assistant", f"starting Home Assistant on http://127.0.0.1:{ha.port}"):
            ha.start()
            await ha.wait_running()
        with progress.phase("history seeding", "writing the demo home's past into HA's recorder"):
            rows = seed_recorder(ha.database_path, past_states(home))
            current: dict[str, str] = {}
            for change in home.events:
                current[change.entity_id] = change.state
            for entity_id, state in sorted(current.items()):
                await ha.rest("POST", f"/api/states/{entity_id}", {"state": state}, expect=201)
            progress.note(f"{rows:,} recorder rows; {len(current)} entities now in HA's state machine")
        with progress.phase("integration set-up", "config flow: host, port and token of the add-on"):
            stack.entry_id = await configure_integration(ha, addon)
        return stack
    except BaseException:
        stack.stop()
        raise


async def configure_integration(ha: HomeAssistantInstance, addon: AddonServer) -> str:
    """Run the integration's config flow through HA's REST API; return the entry id."""
    flow = await ha.rest("POST", "/api/config/config_entries/flow", {"handler": DOMAIN})
    if flow.get("type") != "form" or flow.get("step_id") != "user":
        raise HarnessError(f"unexpected first step of the config flow: {flow}")
    result = await ha.rest(
        "POST",
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"host": "127.0.0.1", "port": addon.port, "token": addon.token},
    )
    if result.get("type") != "create_entry":
        raise HarnessError(f"config flow did not create an entry: {result}")
    return str(result["result"]["entry_id"])


async def move_nightly_analysis_away(stack: DemoStack, hours: int = 12) -> str:
    """Set the integration's nightly analysis to `hours` from now (options flow; the entry reloads),
    so that a test running at any time of day is not joined by the scheduled run. Returns the time."""
    at = (datetime.now(ZoneInfo(stack.home.time_zone)) + timedelta(hours=hours)).strftime("%H:%M:00")
    flow = await stack.ha.rest("POST", "/api/config/config_entries/options/flow", {"handler": stack.entry_id})
    result = await stack.ha.rest(
        "POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", {"analysis_time": at}
    )
    if result.get("type") != "create_entry":
        raise HarnessError(f"options flow did not save: {result}")
    for _ in range(600):
        entries = await stack.ha.rest("GET", "/api/config/config_entries/entry")
        if any(e["entry_id"] == stack.entry_id and e["state"] == "loaded" for e in entries):
            return at
        await asyncio.sleep(0.1)
    raise HarnessError("the config entry did not load again after its options changed")


async def analyze(stack: DemoStack) -> dict[str, Any]:
    """``homeiq.analyze``: returns the analysis summary."""
    summary = await stack.ha.call_service(
        DOMAIN, "analyze", {"config_entry_id": stack.entry_id}, response=True
    )
    return dict(summary)


async def get_suggestions(stack: DemoStack, **filters: Any) -> list[dict[str, Any]]:
    """``homeiq.get_suggestions`` (a service that answers): the stored suggestions, best first."""
    response = await stack.ha.call_service(
        DOMAIN, "get_suggestions", {"config_entry_id": stack.entry_id, **filters}, response=True
    )
    return list(response["suggestions"])


def format_table(suggestions: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: rank, text, category, priority, score, support days."""
    header = ("#", "Suggestion", "Category", "Priority", "Score", "Days")
    rows = [
        (
            str(i),
            str(s.get("text", "")),
            str(s.get("category") or "-"),
            str(s.get("priority") or "-"),
            f"{float(s.get('score') or 0.0):.3f}",
            str(s.get("support_days", "")),
        )
        for i, s in enumerate(suggestions, 1)
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row)).rstrip() for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
