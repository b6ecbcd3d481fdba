"""``mine_patterns``: state history in, suggested habits out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import LocalClock
from .conditions import ConditionContext, StateIndex
from .duration import find_durations
from .events import build_event_table
from .existing import is_covered, parse_automations
from .groups import find_groups, merge_groups
from .model import HomeContext, Pattern, StateChange
from .options import MiningOptions
from .presence import add_household, debounce_presence
from .render import Words, duration_pattern, sequence_pattern, time_pattern
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
    # Real entities' states (presence debounced, the household added) answer the conditions;
    # the detectors read the same changes with groups set together as one change.
    table = add_household(debounce_presence(table, options))
    conditions = ConditionContext(StateIndex(table), clock, sun, options)
    table = merge_groups(table, find_groups(table, options), options)
    names = home.entity_names
    day_of, _ = clock.day_and_minute(table.time)
    habits: list[tuple[Pattern, frozenset[int]]] = [
        (time_pattern(h, names, options.time_round_min), h.members)
        for h in find_time_habits(table, clock, sun, options)
    ]
    words = Words(names, home.device_classes)
    habits += [
        (sequence_pattern(h, words), h.members) for h in find_sequences(table, day_of, conditions, options)
    ]
    habits += [(duration_pattern(h, names), h.members) for h in find_durations(table, day_of, options)]
    covered = parse_automations(existing_automations)
    kept = [
        pattern
        for pattern in one_per_habit(habits, options.min_duplicate_overlap)
        if not is_covered(pattern, covered, options.existing_time_tolerance_min)
    ]
    kept.sort(key=lambda p: (-p.confidence, -p.support_days, p.id))
    return kept


def one_per_habit(habits: Sequence[tuple[Pattern, frozenset[int]]], min_overlap: float) -> list[Pattern]:
    """Drop patterns that explain the same changes of the same target as a better one.

    ``habits`` pairs each pattern with the indices of the action's changes it explains. Of two
    patterns on the same target and state whose changes overlap by ``min_overlap`` of the smaller
    set, the one that explains more changes is the habit, then the one whose trigger the action
    follows more often (a clock time 'fires' once a day); a door rule and a clock time for the
    same lamps are one habit said twice.
    """
    ranked = sorted(
        habits,
        key=lambda h: (-h[0].evidence.coverage, -(h[0].evidence.precision or 0.0), -h[0].confidence, h[0].id),
    )
    kept: list[tuple[Pattern, frozenset[int]]] = []
    for pattern, members in ranked:
        same_action = [
            other
            for other, other_members in kept
            if other.action == pattern.action
            and len(members & other_members) >= min_overlap * min(len(members), len(other_members))
        ]
        if not same_action:
            kept.append((pattern, members))
    return [pattern for pattern, _ in kept]
