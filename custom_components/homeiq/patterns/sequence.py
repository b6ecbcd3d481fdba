"""Directed sequences: B is set by hand soon after A changes (a door opens, the hall light goes on).

For each manual change B (entity, state) the detector counts the A changes that were followed by B
within ``sequence_window_s``. Confidence is the Wilson lower bound of P(B follows | A); lift divides
P(B follows | A) by B's base rate, P(B follows a random moment), so that chatty entities, which
precede everything, do not pair with everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .actions import is_actionable
from .events import EventTable
from .options import MiningOptions
from .stats import wilson_lower_bound

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SequenceHabit:
    """``entity_id`` reaches ``state`` by hand within a few minutes after the trigger's change."""

    trigger_entity: str
    trigger_state: str
    entity_id: str
    state: str
    occurrences: int
    trigger_count: int
    support_days: int
    confidence: float
    lift: float
    median_delay_s: float


def _window_members(
    times: npt.NDArray[np.float64], ends: npt.NDArray[np.float64], window: float
) -> tuple[IntArray, IntArray]:
    """Events in ``[end - window, end)`` for each end: their indices, and which end each belongs to
    (concatenated; an event may appear for several ends)."""
    lo = np.searchsorted(times, ends - window, side="left")
    hi = np.searchsorted(times, ends, side="left")
    lengths = hi - lo
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    starts: IntArray = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths).astype(np.int64)
    owners: IntArray = np.repeat(np.arange(ends.size, dtype=np.int64), lengths)
    return np.arange(total, dtype=np.int64) + starts, owners


def _covered_fraction(times: npt.NDArray[np.float64], window: float, span: float) -> float:
    """Share of the span from which a B event follows within ``window`` (B's base rate)."""
    if times.size == 0 or span <= 0:
        return 0.0
    gaps = np.minimum(np.diff(times), window)
    return float(min(1.0, (gaps.sum() + window) / span))


def find_sequences(table: EventTable, day_of: IntArray, options: MiningOptions) -> list[SequenceHabit]:
    """A -> B habits; ``day_of`` is the local day number of every event in ``table``."""
    n_states = len(table.states)
    keys = table.entity.astype(np.int64) * n_states + table.state
    n_keys = len(table.entity_ids) * n_states
    trigger_counts = np.bincount(keys, minlength=n_keys)
    window = options.sequence_window_s
    span = table.end - table.start
    z = options.confidence_z

    manual = np.flatnonzero(table.manual)
    b_keys = keys[manual]
    order = np.argsort(b_keys, kind="stable")
    bounds = np.flatnonzero(np.diff(b_keys[order])) + 1
    habits: list[SequenceHabit] = []
    for chunk in np.split(order, bounds):
        if chunk.size < options.min_support_days:
            continue
        b_key = int(b_keys[chunk[0]])
        b_entity = b_key // n_states
        entity_id, state = table.entity_ids[b_entity], table.states[b_key % n_states]
        if not is_actionable(entity_id, state):
            continue
        b_index = manual[chunk]
        b_times = table.time[b_index]
        members, owners = _window_members(table.time, b_times, window)
        b_context = table.context[b_index][owners]
        # Not B itself, and not a change of the same action (a scene or light group switches many
        # lights under one context: that is one action, not B following A).
        keep = (table.entity[members] != b_entity) & (
            (b_context == 0) | (table.context[members] != b_context)
        )
        # Each A event counts once, however many B events follow it.
        preceding = np.unique(members[keep])
        if preceding.size < options.min_support_days:
            continue
        a_keys = keys[preceding]
        pair_counts = np.bincount(a_keys, minlength=n_keys)
        candidates = np.flatnonzero(pair_counts >= options.min_support_days)
        if candidates.size == 0:
            continue
        base_rate = _covered_fraction(b_times, window, span)
        day_pairs = np.unique(a_keys * 100_000 + (day_of[preceding] - day_of.min()))
        day_counts = np.bincount(day_pairs // 100_000, minlength=n_keys)
        for a_key in candidates.tolist():
            occurrences, trials = int(pair_counts[a_key]), int(trigger_counts[a_key])
            support_days = int(day_counts[a_key])
            confidence = wilson_lower_bound(occurrences, trials, z)
            lift = (occurrences / trials) / base_rate if base_rate > 0 else float("inf")
            if (
                support_days < options.min_support_days
                or confidence < options.min_confidence
                or lift < options.min_sequence_lift
            ):
                continue
            a_times = table.time[preceding[a_keys == a_key]]
            following = np.searchsorted(b_times, a_times, side="right")
            delays = b_times[np.minimum(following, b_times.size - 1)] - a_times
            habits.append(
                SequenceHabit(
                    trigger_entity=table.entity_ids[a_key // n_states],
                    trigger_state=table.states[a_key % n_states],
                    entity_id=entity_id,
                    state=state,
                    occurrences=occurrences,
                    trigger_count=trials,
                    support_days=support_days,
                    confidence=confidence,
                    lift=lift,
                    median_delay_s=float(np.median(delays)),
                )
            )
    return _one_direction(habits)


def _one_direction(habits: list[SequenceHabit]) -> list[SequenceHabit]:
    """Keep the strongest trigger state per trigger entity (a door's 'open' and its 'closed' 30 s
    later both precede the hall light), and one direction when A -> B and B -> A both qualify
    (two things done together)."""
    best: dict[tuple[str, str, str], SequenceHabit] = {}
    for habit in habits:
        key = (habit.trigger_entity, habit.entity_id, habit.state)
        if key not in best or habit.confidence > best[key].confidence:
            best[key] = habit
    strongest: dict[tuple[str, str], SequenceHabit] = {}
    for habit in best.values():
        pair = (habit.trigger_entity, habit.entity_id)
        if pair not in strongest or habit.confidence > strongest[pair].confidence:
            strongest[pair] = habit
    kept = []
    for habit in best.values():
        reverse = strongest.get((habit.entity_id, habit.trigger_entity))
        if reverse is not None and (reverse.occurrences, reverse.confidence) > (
            habit.occurrences,
            habit.confidence,
        ):
            continue
        kept.append(habit)
    return kept
