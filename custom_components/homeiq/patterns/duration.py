"""Durations: an entity that is reliably switched off by hand a consistent time after it went on.

Each such habit becomes an auto-off suggestion (a state trigger with ``for``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .actions import off_state
from .clock import days_spanned
from .events import EventTable
from .groups import targets_of
from .options import MiningOptions
from .stats import wilson_lower_bound

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class DurationHabit:
    """``entity_id`` is set from ``state`` to ``off_state`` by hand about ``minutes`` later."""

    entity_id: str
    state: str
    off_state: str
    minutes: float
    occurrences: int
    periods: int
    support_days: int
    confidence: float
    eligible_days: int = 0
    members: frozenset[int] = frozenset()
    spread_min: float = 0.0
    """Median distance (minutes) of the consistent periods from their typical length."""


def find_durations(table: EventTable, day_of: IntArray, options: MiningOptions) -> list[DurationHabit]:
    """Auto-off habits; ``day_of`` is the local day number of every event in ``table``."""
    habits: list[DurationHabit] = []
    order = np.lexsort((table.time, table.entity))
    entity = table.entity[order]
    bounds = np.flatnonzero(np.diff(entity)) + 1
    for chunk in np.split(order, bounds):
        if chunk.size < 2 * options.min_support_days:
            continue
        entity_id = table.entity_ids[int(table.entity[chunk[0]])]
        for on_state in ("on",):
            ends = {off_state(target, on_state) for target in targets_of(entity_id)}
            end_state = ends.pop() if len(ends) == 1 else None
            if end_state is None:
                continue
            habit = _duration_habit(table, day_of, chunk, entity_id, (on_state, end_state), options=options)
            if habit is not None:
                habits.append(habit)
    return habits


def _duration_habit(
    table: EventTable,
    day_of: IntArray,
    chunk: npt.NDArray[np.intp],
    entity_id: str,
    states: tuple[str, str],
    *,
    options: MiningOptions,
) -> DurationHabit | None:
    on_state, end_state = states
    try:
        on_code, off_code = table.states.index(on_state), table.states.index(end_state)
    except ValueError:
        return None
    codes = table.state[chunk]
    starts = np.flatnonzero(codes[:-1] == on_code)
    if starts.size < options.min_support_days:
        return None
    ends = starts + 1  # the entity's next change ends the period (same-state repeats are gone)
    minutes = (table.time[chunk[ends]] - table.time[chunk[starts]]) / 60.0
    by_hand = (codes[ends] == off_code) & table.manual[chunk[ends]]
    in_range = (minutes >= options.min_duration_min) & (minutes <= options.max_duration_min)
    candidates = minutes[by_hand & in_range]
    if candidates.size < options.min_support_days:
        return None
    typical = float(np.median(candidates))
    tolerance = max(options.duration_tolerance * typical, options.duration_tolerance_min)
    consistent = by_hand & in_range & (np.abs(minutes - typical) <= tolerance)
    successes = int(consistent.sum())
    support_days = int(np.unique(day_of[chunk[starts[consistent]]]).size)
    confidence = wilson_lower_bound(successes, int(starts.size), options.confidence_z)
    if support_days < options.min_support_days or confidence < options.min_confidence:
        return None
    return DurationHabit(
        entity_id=entity_id,
        state=on_state,
        off_state=end_state,
        minutes=float(np.median(minutes[consistent])),
        occurrences=successes,
        periods=int(starts.size),
        support_days=support_days,
        confidence=confidence,
        eligible_days=days_spanned(day_of),
        spread_min=float(np.median(np.abs(minutes[consistent] - typical))),
        members=frozenset(int(i) for i in chunk[ends[consistent]]),
    )
