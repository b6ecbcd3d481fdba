"""``mine_patterns``: state history in, suggested habits out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import LocalClock
from .conditions import ConditionContext, StateIndex
from .duration import find_durations
from .events import build_event_table
from .existing import is_covered, parse_automations
from .groups import group_changes
from .model import HomeContext, Pattern, StateChange
from .options import MiningOptions
from .phrases import Words
from .presence import add_household, debounce_presence
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
        sun = build_sun_table(clock, table.start, table.end, (home.latitude, home.longitude, home.elevation))
    # Real entities' states (presence debounced, the household added) answer the conditions;
    # the detectors read the same changes with groups set together as one change.
    table = add_household(debounce_presence(table, options))
    conditions = ConditionContext(StateIndex(table), clock, sun, options)
    table = group_changes(table, options)
    names = home.entity_names
    day_of, _ = clock.day_and_minute(table.time)
    words = Words(names, home.device_classes)
    habits = [
        Explained(time_pattern(h, names, options.time_round_min), h.members, h.spread_min)
        for h in find_time_habits(table, clock, sun, options)
    ]
    habits += [
        Explained(sequence_pattern(h, words), h.members, h.median_delay_s / 60.0)
        for h in find_sequences(table, day_of, conditions, options)
    ]
    habits += [
        Explained(duration_pattern(h, names), h.members, h.spread_min)
        for h in find_durations(table, day_of, options)
    ]
    covered = parse_automations(existing_automations)
    kept = [
        pattern
        for pattern in one_per_habit(habits, options)
        if not is_covered(pattern, covered, options.existing_time_tolerance_min)
    ]
    kept.sort(key=lambda p: (-p.confidence, -p.support_days, p.id))
    return kept


@dataclass(frozen=True)
class Explained:
    """A pattern, the indices of the action's changes it explains, and how far from the moment
    it acts the person typically acted (minutes: a routine's spread, a rule's delay)."""

    pattern: Pattern
    members: frozenset[int]
    timing_min: float


def one_per_habit(habits: Sequence[Explained], options: MiningOptions) -> list[Pattern]:
    """Drop patterns that explain the same changes of the same target as a better one.

    Of two patterns on the same target and state whose changes overlap by
    ``min_duplicate_overlap`` of the smaller set, the better explanation is the habit: the one that
    explains more of the target's changes, each minute of timing error costing
    ``timing_weight_per_min`` of them (a door rule acting seconds before the lamps go on beats a
    clock time 20 minutes either side), then the one whose trigger the action follows more often.
    A door rule and a clock time for the same lamps are one habit said twice.
    """

    def merit(habit: Explained) -> tuple[float, float, float, str]:
        evidence = habit.pattern.evidence
        explained = evidence.coverage - options.timing_weight_per_min * habit.timing_min
        return (-explained, -(evidence.precision or 0.0), -habit.pattern.confidence, habit.pattern.id)

    kept: list[Explained] = []
    for habit in sorted(habits, key=merit):
        members = habit.members
        if not any(
            other.pattern.action == habit.pattern.action
            and len(members & other.members)
            >= options.min_duplicate_overlap * min(len(members), len(other.members))
            for other in kept
        ):
            kept.append(habit)
    return [habit.pattern for habit in kept]
