"""The ``mine`` command line: JSON Lines in, ``{"patterns": [...]}`` out, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.homeiq.patterns import (
    HomeContext,
    MiningOptions,
    StateChange,
    mine_patterns,
    read_events_jsonl,
    state_change_to_dict,
)

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Europe/Amsterdam")


def _write_events(path: Path) -> list[StateChange]:
    events = []
    for i in range(21):
        day = datetime(2026, 11, 2, tzinfo=TZ).date() + timedelta(days=i)
        on = datetime.combine(day, time(7, 0), TZ) + timedelta(minutes=(i * 7) % 11 - 5)
        events.append(StateChange("fan.bedroom", "on", on, f"ctx-{i}", user_id="u1"))
        events.append(StateChange("fan.bedroom", "off", on + timedelta(hours=2), f"ctx-{i}b"))
    path.write_text("\n".join(json.dumps(state_change_to_dict(e)) for e in events) + "\n\n")
    return events


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custom_components.homeiq.patterns", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    events = _write_events(path)
    assert list(read_events_jsonl(path)) == events


def test_cli_prints_patterns_as_json(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path)
    result = _cli(
        "mine", str(path), "--time-zone", "Europe/Amsterdam", "--latitude", "52.37", "--longitude", "4.9"
    )
    assert result.returncode == 0, result.stderr
    patterns = json.loads(result.stdout)["patterns"]
    ids = {p["id"] for p in patterns}
    assert "time_of_day:fan.bedroom:on:daily:0" in ids
    fan_on = next(p for p in patterns if p["id"] == "time_of_day:fan.bedroom:on:daily:0")
    assert set(fan_on) == {
        "id", "kind", "text", "trigger", "action", "entities", "support_days", "occurrences", "confidence",
        "evidence", "automation",
    }  # fmt: skip
    assert set(fan_on["evidence"]) == {
        "occurrences", "action_count", "support_days", "eligible_days", "coverage", "precision",
        "trigger_count", "text",
    }  # fmt: skip
    assert fan_on["automation"]["actions"][0]["action"] == "fan.turn_on"


def test_cli_applies_existing_automations(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path)
    existing = tmp_path / "automations.json"
    existing.write_text(
        json.dumps(
            [
                {
                    "triggers": [{"trigger": "time", "at": "07:00:00"}],
                    "actions": [{"action": "fan.turn_on", "target": {"entity_id": "fan.bedroom"}}],
                }
            ]
        )
    )
    result = _cli("mine", str(path), "--time-zone", "Europe/Amsterdam", "--existing", str(existing))
    assert result.returncode == 0, result.stderr
    ids = {p["id"] for p in json.loads(result.stdout)["patterns"]}
    assert "time_of_day:fan.bedroom:on:daily:0" not in ids


def test_cli_rejects_bad_input_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"entity_id": "light.a", "state": "on", "last_changed": "2026-11-02T07:00:00"}\n')
    result = _cli("mine", str(path), "--time-zone", "Europe/Amsterdam")
    assert result.returncode == 2
    assert "events.jsonl:1" in result.stderr and "offset" in result.stderr
    assert _cli("mine", str(path), "--time-zone", "Mars/Olympus").returncode == 2
    missing = _cli("mine", str(tmp_path / "nope.jsonl"), "--time-zone", "UTC")
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


def test_bad_options_and_time_zone_raise_value_errors() -> None:
    with pytest.raises(ValueError, match="min_confidence"):
        MiningOptions(min_confidence=1.5)
    with pytest.raises(ValueError, match="window_days, min_support_days"):
        MiningOptions(window_days=0, min_support_days=0)
    with pytest.raises(ValueError, match="unknown time zone"):
        mine_patterns([], HomeContext("Mars/Olympus"))
    with pytest.raises(ValueError, match="timezone-aware"):
        mine_patterns([], HomeContext("UTC"), now=datetime(2026, 11, 2))
    assert mine_patterns([], HomeContext("UTC")) == []
