"""CLI: ``python -m custom_components.homeiq.patterns mine EVENTS.jsonl --time-zone ZONE``.

Prints ``{"patterns": [...]}`` (one JSON object per pattern, as in the pattern contract).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .events import EventFormatError, read_events_jsonl
from .mine import mine_patterns
from .model import HomeContext
from .options import MiningOptions


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m custom_components.homeiq.patterns")
    commands = parser.add_subparsers(dest="command", required=True)
    mine = commands.add_parser("mine", help="mine habits from a JSON Lines file of state changes")
    mine.add_argument("events", type=Path, help="JSON Lines: entity_id, state, last_changed, context")
    mine.add_argument("--time-zone", required=True, help="IANA time zone of the home")
    mine.add_argument("--latitude", type=float, help="for sun-relative habits")
    mine.add_argument("--longitude", type=float, help="for sun-relative habits")
    mine.add_argument("--existing", type=Path, help="JSON list of existing automation configs")
    mine.add_argument("--window-days", type=int, default=MiningOptions.window_days)
    mine.add_argument("--now", help="end of the window, ISO 8601 with offset (default: newest event)")
    return parser


def _load_existing(path: Path | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("automations", [data])
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of automation configs")
    return [item for item in data if isinstance(item, dict)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input, with the reason on stderr)."""
    args = _parser().parse_args(argv)
    try:
        ZoneInfo(args.time_zone)
    except ZoneInfoNotFoundError, ValueError:
        print(f"error: unknown time zone {args.time_zone!r}", file=sys.stderr)
        return 2
    if (args.latitude is None) != (args.longitude is None):
        print("error: give both --latitude and --longitude, or neither", file=sys.stderr)
        return 2
    if args.window_days < 1:
        print("error: --window-days must be at least 1", file=sys.stderr)
        return 2
    try:
        now = datetime.fromisoformat(args.now) if args.now else None
        if now is not None and now.tzinfo is None:
            raise ValueError("--now needs a UTC offset")
        existing = _load_existing(args.existing)
        patterns = mine_patterns(
            read_events_jsonl(args.events),
            HomeContext(args.time_zone, args.latitude, args.longitude),
            existing_automations=existing,
            options=replace(MiningOptions(), window_days=args.window_days),
            now=now,
        )
    except (OSError, EventFormatError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    json.dump({"patterns": [p.as_dict() for p in patterns]}, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
