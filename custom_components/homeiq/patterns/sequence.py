"""Trigger-action rules: B is set by hand soon after A changes, when some conditions hold.

For a manual action B (an entity or a group, to a state) and a trigger A (any entity's change to
a state, ``zone.home`` included), the rule "when A, if C, do B" is measured two ways:
- **coverage**: the share of B's changes with a firing of A (C true) in the ``sequence_window_s``
  before: how much of the habit the rule explains;
- **precision**: the share of A's firings (C true) that B followed within the window: how often
  the automation would do the right thing.

A door that opens 300 times a month, followed by the lamps 35 times, has a high coverage and a
low precision; a condition such as "the lamps are off" can raise the precision without losing
coverage. Conditions are chosen greedily from ``conditions.py`` (at most ``max_conditions``), each
only if it raises the score = Wilson lower bound of precision x Wilson lower bound of coverage by
``min_condition_gain``; a quiet-sensor condition (every binary sensor is a candidate) only if its
precision's lower bound also beats the precision without it. A rule is kept when both bounds
pass (``min_confidence``, ``min_coverage``), on ``min_support_days`` days, and A is no trigger
that precedes everything (``min_sequence_lift``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .actions import is_actionable
from .clock import days_spanned
from .conditions import Condition, ConditionContext
from .events import EventTable
from .groups import targets_of
from .options import MiningOptions
from .stats import wilson_lower_bound

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SequenceHabit:
    """``entity_id`` reaches ``state`` by hand within a few minutes after the trigger's change,
    when ``conditions`` hold; ``members`` are the indices of the action's changes it explains."""

    trigger_entity: str
    trigger_state: str
    entity_id: str
    state: str
    occurrences: int
    action_count: int
    trigger_count: int
    followed: int
    support_days: int
    eligible_days: int
    confidence: float
    coverage: float
    lift: float
    median_delay_s: float
    conditions: tuple[Condition, ...] = ()
    members: frozenset[int] = frozenset()

    @property
    def precision(self) -> float:
        """Share of the trigger's firings (conditions true) that the action followed."""
        return self.followed / self.trigger_count if self.trigger_count else 0.0


def _window_members(times: FloatArray, ends: FloatArray, window: float) -> tuple[IntArray, IntArray]:
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


def _covered_fraction(times: FloatArray, window: float, span: float) -> float:
    """Share of the span that lies within ``window`` after one of ``times``."""
    if times.size == 0 or span <= 0:
        return 0.0
    gaps = np.minimum(np.diff(times), window)
    return float(min(1.0, (gaps.sum() + window) / span))


@dataclass
class _Rule:
    """The figures of one trigger with a set of conditions, for one action."""

    mask: BoolArray  # over the trigger's firings: conditions true
    covered: BoolArray  # over the action's changes: explained
    followed: int
    trials: int
    score: float
    precision_lb: float
    coverage_lb: float


@dataclass
class _Search:
    """One action's changes and the shared inputs of the rule search."""

    table: EventTable
    day_of: IntArray
    conditions: ConditionContext
    options: MiningOptions
    b_times: FloatArray

    def rule(self, fired: FloatArray, followed: BoolArray, mask: BoolArray) -> _Rule:
        z, window = self.options.confidence_z, self.options.sequence_window_s
        counts = np.concatenate([[0], np.cumsum(mask)])
        lo = np.searchsorted(fired, self.b_times - window, side="left")
        hi = np.searchsorted(fired, self.b_times, side="left")
        covered = counts[hi] - counts[lo] > 0
        trials, hits = int(mask.sum()), int((followed & mask).sum())
        precision_lb = wilson_lower_bound(hits, trials, z)
        coverage_lb = wilson_lower_bound(int(covered.sum()), self.b_times.size, z)
        return _Rule(mask, covered, hits, trials, precision_lb * coverage_lb, precision_lb, coverage_lb)


def find_sequences(
    table: EventTable, day_of: IntArray, conditions: ConditionContext, options: MiningOptions
) -> list[SequenceHabit]:
    """Trigger-action rules; ``day_of`` is the local day number of every event in ``table``."""
    n_states = len(table.states)
    keys = table.entity.astype(np.int64) * n_states + table.state
    window = options.sequence_window_s
    span = table.end - table.start
    eligible_days = days_spanned(day_of)

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
        targets = targets_of(entity_id)
        if not all(is_actionable(t, state) for t in targets):
            continue
        b_index = manual[chunk]
        b_times = table.time[b_index]
        members, owners = _window_members(table.time, b_times, window)
        b_context = table.context[b_index][owners]
        # Not B itself or one of its targets, and not a change of the same action (a scene
        # switches many lights under one context: that is one action, not B following A).
        related = np.array(
            [
                code == b_entity or eid in targets or any(t in targets for t in targets_of(eid))
                for code, eid in enumerate(table.entity_ids)
            ],
            dtype=bool,
        )
        keep = ~related[table.entity[members]] & ((b_context == 0) | (table.context[members] != b_context))
        members, owners = members[keep], owners[keep]
        # Coverage without conditions: B changes with an A change of the key in the window before.
        pairs = np.unique(keys[members] * (b_times.size + 1) + owners)
        pair_counts = np.bincount(pairs // (b_times.size + 1), minlength=len(table.entity_ids) * n_states)
        z = options.confidence_z
        search = _Search(table, day_of, conditions, options, b_times)
        for a_key in np.flatnonzero(pair_counts >= options.min_support_days).tolist():
            if wilson_lower_bound(int(pair_counts[a_key]), b_times.size, z) < options.min_coverage:
                continue
            habit = _best_rule(
                search,
                a_key,
                n_states=n_states,
                keys=keys,
                action=(entity_id, state, b_index),
                span=span,
                eligible_days=eligible_days,
            )
            if habit is not None:
                habits.append(habit)
    return _one_direction(habits)


def _best_rule(
    search: _Search,
    a_key: int,
    *,
    n_states: int,
    keys: IntArray,
    action: tuple[str, str, npt.NDArray[np.intp]],
    span: float,
    eligible_days: int,
) -> SequenceHabit | None:
    table, options = search.table, search.options
    entity_id, state, b_index = action
    window = options.sequence_window_s
    a_entity = table.entity_ids[a_key // n_states]
    fired = table.time[keys == a_key]
    b_times = search.b_times
    following = np.searchsorted(b_times, fired, side="right")
    followed = (following < b_times.size) & (
        b_times[np.minimum(following, b_times.size - 1)] - fired <= window
    )
    everything = np.ones(fired.size, dtype=bool)
    best = search.rule(fired, followed, everything)
    lift = (int(best.covered.sum()) / b_times.size) / max(_covered_fraction(fired, window, span), 1e-12)
    if lift < options.min_sequence_lift:
        return None
    chosen: list[Condition] = []
    candidates = search.conditions.candidates(a_entity, entity_id, state, fired, followed)
    for _ in range(options.max_conditions):
        step: tuple[Condition, _Rule] | None = None
        point = best.followed / best.trials if best.trials else 0.0
        for condition, mask in candidates:
            if any(c.kind == condition.kind for c in chosen):
                continue
            rule = search.rule(fired, followed, best.mask & mask)
            # A condition must pay for itself: a clear gain in score. Every binary sensor of the
            # home is tried as a quiet sensor, and chance alone helps some of so many: one must
            # also raise the precision's lower bound above the precision without it.
            if rule.score < best.score + options.min_condition_gain or (
                condition.kind == "quiet" and rule.precision_lb <= point
            ):
                continue
            if step is None or rule.score > step[1].score:
                step = (condition, rule)
        if step is None:
            break
        chosen.append(step[0])
        best = step[1]
    if best.precision_lb < options.min_confidence or best.coverage_lb < options.min_coverage:
        return None
    covered = b_index[best.covered]
    support_days = int(np.unique(search.day_of[covered]).size)
    if support_days < options.min_support_days:
        return None
    qualifying = fired[best.mask]
    last = np.searchsorted(qualifying, b_times[best.covered], side="left") - 1
    delays = b_times[best.covered] - qualifying[np.maximum(last, 0)]
    return SequenceHabit(
        trigger_entity=a_entity,
        trigger_state=table.states[a_key % n_states],
        entity_id=entity_id,
        state=state,
        occurrences=int(best.covered.sum()),
        action_count=int(b_times.size),
        trigger_count=best.trials,
        followed=best.followed,
        support_days=support_days,
        eligible_days=eligible_days,
        confidence=best.precision_lb,
        coverage=float(best.covered.mean()),
        lift=lift,
        median_delay_s=float(np.median(delays)),
        conditions=tuple(chosen),
        members=frozenset(int(i) for i in covered),
    )


def _one_direction(habits: list[SequenceHabit]) -> list[SequenceHabit]:
    """One trigger state per trigger entity (a door's 'open' and its 'closed' seconds later both
    precede the light: the better rule, then the earlier change, which is the cause), and one
    direction when A -> B and B -> A both qualify (two things done together): the one that
    explains more changes."""
    best: dict[tuple[str, str, str], SequenceHabit] = {}
    for habit in habits:
        key = (habit.trigger_entity, habit.entity_id, habit.state)
        rank = (habit.occurrences, habit.confidence, habit.median_delay_s)
        if key not in best or rank > (best[key].occurrences, best[key].confidence, best[key].median_delay_s):
            best[key] = habit
    habits = list(best.values())
    strongest: dict[tuple[str, str], SequenceHabit] = {}
    for habit in habits:
        pair = (habit.trigger_entity, habit.entity_id)
        if pair not in strongest or (habit.occurrences, habit.confidence) > (
            strongest[pair].occurrences,
            strongest[pair].confidence,
        ):
            strongest[pair] = habit
    kept = []
    for habit in habits:
        reverse = strongest.get((habit.entity_id, habit.trigger_entity))
        if reverse is not None and (reverse.occurrences, reverse.confidence) > (
            habit.occurrences,
            habit.confidence,
        ):
            continue
        kept.append(habit)
    return kept
