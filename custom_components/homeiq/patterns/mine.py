"""``mine_patterns``: state history in, suggested habits out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import LocalClock
from .duration import find_durations
from .events import build_event_table
from .existing import is_covered, parse_automations
from .model import HomeContext, Pattern, StateChange
from .options import MiningOptions
from .render import duration_pattern, sequence_pattern, time_pattern
from .sequence import find_sequences
from .time_of_day import build_sun_table, find_time_habits

DEFAULT_OPTIONS = MiningOptions()


def mine_patterns(
    events: Iterable[StateChange],
    home: HomeContext,
    *,
    existing_automations: Sequence[Mapping[str, Any]] = (),
    options: MiningOptions = DEFAULT_OPTIONS,
    now: datetime | None = None,
) -> list[Pattern]:
    """Find habits in the state changes of the last ``options.window_days`` before ``now``.

    ``now`` defaults to the time of the newest event. Raises ValueError for an unknown time zone or a
    naive ``now``. Events may come in any order and are read
    once (an iterator is fine). Changes caused by automations or scripts are not habits; what
    ``existing_automations`` already do is left out. Patterns come sorted by confidence, best first.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    try:
        ZoneInfo(home.time_zone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {home.time_zone!r}") from err
    table = build_event_table(events, options, now)
    if len(table) == 0:
        return []
    clock = LocalClock(home.time_zone, table.start, table.end)
    table.start = max(table.window_start, clock.start_of_day(table.start))
    sun = None
    if home.latitude is not None and home.longitude is not None:
        sun = build_sun_table(clock, table.start, table.end, home.latitude, home.longitude)
    names = home.entity_names
    day_of, _ = clock.day_and_minute(table.time)
    patterns = [
        time_pattern(h, names, options.time_round_min) for h in find_time_habits(table, clock, sun, options)
    ]
    patterns += [sequence_pattern(h, names) for h in find_sequences(table, day_of, options)]
    patterns += [duration_pattern(h, names) for h in find_durations(table, day_of, options)]
    covered = parse_automations(existing_automations)
    kept = [p for p in patterns if not is_covered(p, covered, options.existing_time_tolerance_min)]
    kept.sort(key=lambda p: (-p.confidence, -p.support_days, p.id))
    return kept
