"""What was true when a trigger fired: the candidate conditions of a trigger-action rule.

Each candidate is a condition Home Assistant can check when the trigger fires, with a mask over
the trigger's firings saying where it held:
- ``target``: the action's target(s) in a state (``off``), optionally for at least N minutes;
- ``sun``: the sun below or above the horizon;
- ``presence``: someone home or nobody home (``zone.home``, see ``presence.py``);
- ``time``: a window of the day around the times the action followed;
- ``quiet``: another binary sensor ``off`` for at least N minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from .clock import LocalClock
from .events import EventTable
from .groups import targets_of
from .options import MiningOptions
from .presence import AWAY, HOME, HOUSEHOLD
from .stats import circular_distance, circular_mean
from .time_of_day import SunTable

ConditionKind = Literal["target", "sun", "presence", "time", "quiet"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_WINDOW_STEP_MIN = 15.0
_MAX_WINDOW_MIN = 18 * 60.0


@dataclass(frozen=True)
class Condition:
    """One condition of a rule. ``state`` is an entity state, or for ``sun`` ``below_horizon`` /
    ``above_horizon``, for ``presence`` ``home`` (someone) / ``not_home`` (nobody); a ``time``
    window runs from ``after_min`` to ``before_min`` (local minutes, may wrap midnight)."""

    kind: ConditionKind
    state: str = ""
    entity_ids: tuple[str, ...] = ()
    for_min: int = 0
    after_min: float = 0.0
    before_min: float = 0.0


class StateIndex:
    """Each entity's state at any instant of the window, from its changes."""

    def __init__(self, table: EventTable) -> None:
        """Index the changes of ``table`` (all origins) per entity."""
        order = np.lexsort((table.time, table.entity))
        self._entity = table.entity[order]
        self._time = table.time[order]
        self._state = table.state[order]
        self._prev = table.prev_state[order].copy()
        # Before an entity's first change with no state known, an entity seen in two states only
        # was in the other one (a lamp first seen turning on was off).
        starts = np.ones(order.size, dtype=bool)
        starts[1:] = self._entity[1:] != self._entity[:-1]
        for first in np.flatnonzero(starts).tolist():
            if self._prev[first] >= 0:
                continue
            code = self._entity[first]
            lo, hi = first, int(np.searchsorted(self._entity, code, side="right"))
            seen = np.unique(self._state[lo:hi])
            if seen.size == 2:
                self._prev[first] = int(seen[seen != self._state[first]][0])
        self._start = table.start
        self.table = table

    def _slice(self, code: int) -> tuple[int, int]:
        lo = int(np.searchsorted(self._entity, code, side="left"))
        hi = int(np.searchsorted(self._entity, code, side="right"))
        return lo, hi

    def state_at(self, code: int, instants: FloatArray) -> tuple[IntArray, FloatArray]:
        """The state code (-1: unknown) of entity ``code`` just before each instant, and for how
        many seconds it had held then (since the window's start at most, when unknown)."""
        lo, hi = self._slice(code)
        if lo == hi:
            return np.full(instants.size, -1, np.int64), instants - self._start
        times = self._time[lo:hi]
        position = np.searchsorted(times, instants, side="left") - 1
        before_first = position < 0
        safe = np.maximum(position, 0)
        states = np.where(before_first, self._prev[lo], self._state[lo:hi][safe]).astype(np.int64)
        held = np.where(before_first, instants - self._start, instants - times[safe])
        return states, held


@dataclass
class ConditionContext:
    """What the candidate conditions are computed from."""

    index: StateIndex
    clock: LocalClock
    sun: SunTable | None
    options: MiningOptions

    def candidates(
        self, trigger_entity: str, target: str, target_state: str, fired: FloatArray, followed: BoolArray
    ) -> list[tuple[Condition, BoolArray]]:
        """Conditions worth trying for a rule, with where each held at the trigger's firings."""
        out: list[tuple[Condition, BoolArray]] = []
        out += self._target(target, target_state, fired, followed)
        out += self._sun(fired)
        if trigger_entity != HOUSEHOLD:
            out += self._presence(fired)
        out += self._time(fired, followed)
        out += self._quiet(trigger_entity, target, fired, followed)
        return out

    def _target(
        self, target: str, target_state: str, fired: FloatArray, followed: BoolArray
    ) -> list[tuple[Condition, BoolArray]]:
        table = self.index.table
        members = targets_of(target)
        codes = [table.entity_ids.index(m) for m in members if m in table.entity_ids]
        if len(codes) != len(members) or not followed.any():
            return []
        states, held = zip(*(self.index.state_at(code, fired) for code in codes), strict=True)
        # The state the targets were in when the action followed (``off`` for a light turned on).
        stacked = np.stack(states)
        same = np.all(stacked == stacked[0], axis=0)
        wanted = table.states.index(target_state) if target_state in table.states else -2
        usable = same & followed & (stacked[0] >= 0) & (stacked[0] != wanted)
        if not usable.any():
            return []
        before = int(np.bincount(stacked[0][usable]).argmax())
        in_state = np.all(stacked == before, axis=0)
        shortest = np.min(np.stack(held), axis=0)
        name = table.states[before]
        out = [(Condition("target", name, members), in_state)]
        for minutes in self.options.condition_for_min:
            out.append(
                (Condition("target", name, members, for_min=minutes), in_state & (shortest >= minutes * 60))
            )
        return out

    def _sun(self, fired: FloatArray) -> list[tuple[Condition, BoolArray]]:
        if self.sun is None:
            return []
        days, minutes = self.clock.day_and_minute(fired)
        rise, set_ = self.sun.minutes("sunrise", days), self.sun.minutes("sunset", days)
        known = ~(np.isnan(rise) | np.isnan(set_))
        below = known & ((minutes < np.nan_to_num(rise)) | (minutes > np.nan_to_num(set_)))
        above = known & ~below
        return [(Condition("sun", "below_horizon"), below), (Condition("sun", "above_horizon"), above)]

    def _presence(self, fired: FloatArray) -> list[tuple[Condition, BoolArray]]:
        table = self.index.table
        if HOUSEHOLD not in table.entity_ids:
            return []
        states, _ = self.index.state_at(table.entity_ids.index(HOUSEHOLD), fired)
        home, away = table.states.index(HOME), table.states.index(AWAY)
        return [(Condition("presence", HOME), states == home), (Condition("presence", AWAY), states == away)]

    def _time(self, fired: FloatArray, followed: BoolArray) -> list[tuple[Condition, BoolArray]]:
        if followed.sum() < 2:
            return []
        _, minutes = self.clock.day_and_minute(fired)
        centre = circular_mean(minutes[followed])
        reach = float(np.quantile(circular_distance(minutes[followed], centre), 0.9)) + _WINDOW_STEP_MIN
        after = np.floor((centre - reach) / _WINDOW_STEP_MIN) * _WINDOW_STEP_MIN % 1440.0
        before = np.ceil((centre + reach) / _WINDOW_STEP_MIN) * _WINDOW_STEP_MIN % 1440.0
        width = (before - after) % 1440.0
        if width == 0.0 or width > _MAX_WINDOW_MIN:
            return []
        inside = (minutes - after) % 1440.0 < width
        return [(Condition("time", after_min=float(after), before_min=float(before)), inside)]

    def _quiet(
        self, trigger_entity: str, target: str, fired: FloatArray, followed: BoolArray
    ) -> list[tuple[Condition, BoolArray]]:
        table = self.index.table
        if "off" not in table.states:
            return []
        off = table.states.index("off")
        out: list[tuple[Condition, BoolArray]] = []
        skip = {trigger_entity, *targets_of(target)}
        for code, entity_id in enumerate(table.entity_ids):
            if not entity_id.startswith("binary_sensor.") or entity_id in skip:
                continue
            states, held = self.index.state_at(code, fired)
            quiet = states == off
            for minutes in self.options.condition_for_min:
                mask = quiet & (held >= minutes * 60)
                # Only a sensor that tells followed firings from the others is worth scoring.
                if mask[followed].mean() > mask[~followed].mean() if (~followed).any() else False:
                    out.append((Condition("quiet", "off", (entity_id,), for_min=minutes), mask))
        return out
