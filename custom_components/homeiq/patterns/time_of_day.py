"""Habits at a time of day: by the clock, or relative to sunrise/sunset.

Times are local wall-clock minutes on the 24 h circle (23:50 and 00:10 are 20 minutes apart),
computed per event through the zone's DST rules. Support is counted in distinct days; confidence is
the Wilson lower bound of the share of eligible days on which the habit happened, for every day,
weekdays only or weekends only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from .actions import is_actionable
from .clock import LocalClock, sun_minutes, weekday
from .events import EventTable
from .groups import targets_of
from .options import MiningOptions
from .stats import circular_clusters, circular_distance, circular_mean, circular_spread, wilson_lower_bound

Basis = Literal["clock", "sunrise", "sunset"]
DaySet = Literal["daily", "weekdays", "weekend"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_DAY_START_MIN = 240.0  # habits are ordered from 04:00, when few routines happen


@dataclass(frozen=True)
class TimeHabit:
    """An entity reaching a state at a consistent time of day.

    ``minute`` is the local clock minute [0, 1440) for basis ``clock``, else the offset in minutes
    from the sun event (negative = before). ``ordinal`` numbers habits of the same entity, state,
    basis and day set from 04:00 on, so ids stay stable while the time drifts.
    """

    entity_id: str
    state: str
    basis: Basis
    minute: float
    days: DaySet
    support_days: int
    occurrences: int
    confidence: float
    spread_min: float
    members: frozenset[int]
    eligible_days: int = 0
    action_count: int = 0
    ordinal: int = 0


@dataclass(frozen=True)
class SunTable:
    """Local minute of sunrise and sunset for each local day from ``first_day`` on."""

    first_day: int
    sunrise: FloatArray
    sunset: FloatArray

    def minutes(self, basis: Basis, days: IntArray) -> FloatArray:
        table = self.sunrise if basis == "sunrise" else self.sunset
        return table[np.clip(days - self.first_day, 0, table.size - 1)]


def build_sun_table(
    clock: LocalClock, start: float, end: float, place: tuple[float, float, float]
) -> SunTable:
    """Sun times for every local day of the window (plus a day either side); ``place`` is
    latitude, longitude and elevation (m)."""
    days, _ = clock.day_and_minute(np.array([start, end]))
    all_days = np.arange(days[0] - 1, days[1] + 2, dtype=np.int64)
    return SunTable(
        first_day=int(all_days[0]),
        sunrise=sun_minutes(clock, all_days, place, "sunrise"),
        sunset=sun_minutes(clock, all_days, place, "sunset"),
    )


def _signed(minutes: float) -> float:
    return minutes - 1440.0 if minutes > 720.0 else minutes


@dataclass
class _Group:
    """The manual changes of one entity to one state, with what evaluating them needs."""

    entity_id: str
    state: str
    table: EventTable
    clock: LocalClock
    sun: SunTable | None
    options: MiningOptions
    index: npt.NDArray[np.intp]
    local: FloatArray
    days: IntArray
    minutes: FloatArray

    @classmethod
    def of(
        cls,
        key: tuple[str, str],
        *,
        index: npt.NDArray[np.intp],
        table: EventTable,
        clock: LocalClock,
        sun: SunTable | None,
        options: MiningOptions,
    ) -> _Group:
        local = clock.local_seconds(table.time[index])
        days = np.floor(local / 86400.0).astype(np.int64)
        minutes = (local - days * 86400.0) / 60.0
        return cls(key[0], key[1], table, clock, sun, options, index, local, days, minutes)


def find_time_habits(
    table: EventTable, clock: LocalClock, sun: SunTable | None, options: MiningOptions
) -> list[TimeHabit]:
    """Clock-time and sun-relative habits of every actionable entity in ``table``."""
    manual = np.flatnonzero(table.manual)
    if manual.size == 0:
        return []
    n_states = len(table.states)
    keys = table.entity[manual].astype(np.int64) * n_states + table.state[manual]
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    habits: list[TimeHabit] = []
    for chunk in np.split(order, bounds):
        key = int(keys[chunk[0]])
        entity_id = table.entity_ids[key // n_states]
        state = table.states[key % n_states]
        if chunk.size < options.min_support_days or not all(
            is_actionable(target, state) for target in targets_of(entity_id)
        ):
            continue
        group = _Group.of(
            (entity_id, state), index=manual[chunk], table=table, clock=clock, sun=sun, options=options
        )
        if np.unique(group.days).size < options.min_support_days:
            continue
        habits.extend(_group_habits(group))
    return _number(habits)


def _group_habits(group: _Group) -> list[TimeHabit]:
    clock_habits = _basis_habits(group, "clock", group.minutes)
    if group.sun is None:
        return clock_habits
    sun_habits: list[TimeHabit] = []
    for basis in ("sunrise", "sunset"):
        event_minutes = group.sun.minutes(basis, group.days)
        offsets = (group.minutes - event_minutes) % 1440.0
        for habit in _basis_habits(group, basis, offsets):
            members = np.searchsorted(group.index, np.fromiter(habit.members, dtype=np.int64))
            # Sun-relative only when it explains the times better than the clock does.
            clock_spread = circular_spread(group.minutes[members])
            if habit.spread_min < group.options.sun_spread_ratio * clock_spread:
                sun_habits.append(habit)
    sun_habits.sort(key=lambda h: h.spread_min)
    kept_sun: list[TimeHabit] = []
    for habit in sun_habits:
        if not any(_overlap(habit, other) for other in kept_sun):
            kept_sun.append(habit)
    kept_clock = [h for h in clock_habits if not any(_overlap(h, s) for s in kept_sun)]
    return kept_clock + kept_sun


def _overlap(a: TimeHabit, b: TimeHabit) -> bool:
    shared = len(a.members & b.members)
    return shared >= 0.5 * min(len(a.members), len(b.members))


def _basis_habits(group: _Group, basis: Basis, values: FloatArray) -> list[TimeHabit]:
    """Habits in one time basis; ``values`` are minutes on the circle (clock time or sun offset)."""
    options = group.options
    valid = ~np.isnan(values)
    values = np.where(valid, values, 0.0)
    habits: list[TimeHabit] = []
    # Windows under half the lift a habit needs are background: stop clustering there.
    clusters = circular_clusters(
        values[valid], options.time_cluster_radius_min, options.min_support_days, options.min_time_lift / 2
    )
    valid_index = np.flatnonzero(valid)
    for found in clusters:
        members = valid_index[found]
        centre = circular_mean(values[members])
        if basis != "clock" and abs(_signed(centre)) > options.sun_max_offset_min:
            continue
        if basis == "clock":
            # The habit day of an event is the calendar day of the nearest occurrence of the centre,
            # so a routine around midnight counts once per night.
            habit_days = np.floor((group.local - (centre - 720.0) * 60.0) / 86400.0).astype(np.int64)
        else:
            habit_days = group.days
        cluster_view = _Cluster(basis, centre, habit_days, members, values, valid)
        habit = _choose_day_set(group, cluster_view, _eligible_days(group, basis, centre))
        if habit is not None:
            habits.append(habit)
    return habits


@dataclass(frozen=True)
class _Cluster:
    basis: Basis
    centre: float
    habit_days: IntArray
    members: npt.NDArray[np.intp]
    values: FloatArray
    valid: npt.NDArray[np.bool_]


def _eligible_days(group: _Group, basis: Basis, centre: float) -> IntArray:
    """Local days whose occurrence of the habit's time lies inside the mined window."""
    table, clock = group.table, group.clock
    first, last = clock.day_and_minute(np.array([table.start, table.end]))[0].tolist()
    days = np.arange(first - 1, last + 2, dtype=np.int64)
    if basis == "clock":
        instants = clock.instants(days, centre)
    else:
        assert group.sun is not None
        minute = group.sun.minutes(basis, days) + _signed(centre)
        days = days[~np.isnan(minute)]
        instants = clock.instants(days, minute[~np.isnan(minute)])
    inside = (instants >= table.start) & (instants <= table.end)
    return days[inside]


def _choose_day_set(group: _Group, cluster: _Cluster, eligible: IntArray) -> TimeHabit | None:
    """Every day, weekdays or weekends: whichever the day-hit rates support, or None."""
    options = group.options
    z = options.routine_z
    members = cluster.members
    hit_days = np.intersect1d(np.unique(cluster.habit_days[members]), eligible)
    is_weekday = weekday(eligible) < 5
    hit_weekday = weekday(hit_days) < 5
    n_wd, n_we = int(is_weekday.sum()), int((~is_weekday).sum())
    h_wd, h_we = int(hit_weekday.sum()), int((~hit_weekday).sum())
    p_wd = h_wd / n_wd if n_wd else 0.0
    p_we = h_we / n_we if n_we else 0.0
    choice: tuple[DaySet, int, float] | None = None
    similar = min(p_wd, p_we) >= options.day_split_ratio * max(p_wd, p_we)
    if similar or not (n_wd and n_we):
        lb_all = wilson_lower_bound(h_wd + h_we, n_wd + n_we, z)
        if lb_all >= options.min_confidence:
            choice = ("daily", h_wd + h_we, lb_all)
    else:
        lb_wd = wilson_lower_bound(h_wd, n_wd, z)
        lb_we = wilson_lower_bound(h_we, n_we, z)
        if p_wd > p_we and lb_wd >= options.min_confidence:
            choice = ("weekdays", h_wd, lb_wd)
        elif p_we > p_wd and lb_we >= options.min_confidence:
            choice = ("weekend", h_we, lb_we)
    if choice is None or choice[1] < options.min_support_days:
        return None
    day_set, support, confidence = choice
    set_days = n_wd + n_we if day_set == "daily" else (n_wd if day_set == "weekdays" else n_we)
    if _lift(cluster, options, day_set, set_days / max(1, n_wd + n_we)) < options.min_time_lift:
        return None
    eligible_days = n_wd + n_we if day_set == "daily" else (n_wd if day_set == "weekdays" else n_we)
    member_days = weekday(cluster.habit_days[members])
    if day_set == "daily":
        chosen = members
    else:
        chosen = members[(member_days < 5) if day_set == "weekdays" else (member_days >= 5)]
    centre = circular_mean(cluster.values[chosen])
    if chosen.size > options.max_events_per_day * support:
        return None
    if chosen.size < options.min_routine_share * group.index.size:
        return None
    if float(np.median(circular_distance(cluster.values[chosen], centre))) > options.max_time_deviation_min:
        return None
    return TimeHabit(
        entity_id=group.entity_id,
        state=group.state,
        basis=cluster.basis,
        minute=centre if cluster.basis == "clock" else _signed(centre),
        days=day_set,
        support_days=support,
        occurrences=int(chosen.size),
        confidence=confidence,
        spread_min=circular_spread(cluster.values[chosen]),
        members=frozenset(int(i) for i in group.index[chosen]),
        eligible_days=eligible_days,
        action_count=int(group.index.size),
    )


def _lift(cluster: _Cluster, options: MiningOptions, day_set: DaySet, day_share: float) -> float:
    """Changes per day and minute within the cluster's window, on the day set's days, over
    changes per day and minute just before it or just after it, on all days, whichever is busier.

    Taking the busier side rejects the edge of a busy period (an entity toggled all evening has a
    'peak' at its last hour when compared with the quiet night alone). The background comes from
    every day, so that a weekend routine's eight days are measured against four weeks of use, not
    against eight days of chance. ``day_share`` is the day set's share of the eligible days. One
    change is added to the background, so that a clean routine has a large but finite lift.
    """
    radius, context = options.time_cluster_radius_min, options.time_context_min
    signed = (cluster.values - cluster.centre + 720.0) % 1440.0 - 720.0
    on_days = cluster.valid.copy()
    if day_set != "daily":
        is_weekday = weekday(cluster.habit_days) < 5
        on_days &= is_weekday if day_set == "weekdays" else ~is_weekday
    inside = int((on_days & (np.abs(signed) <= radius)).sum())
    before = int((cluster.valid & (signed < -radius) & (signed >= -context)).sum())
    after = int((cluster.valid & (signed > radius) & (signed <= context)).sum())
    inside_rate = inside / (2 * radius) / max(day_share, 1e-9)
    return inside_rate / ((max(before, after) + 1) / (context - radius))


def _number(habits: list[TimeHabit]) -> list[TimeHabit]:
    """Give habits of the same entity, state, basis and day set ordinals from 04:00 on."""
    out: list[TimeHabit] = []
    groups: dict[tuple[str, str, str, str], list[TimeHabit]] = {}
    for habit in habits:
        groups.setdefault((habit.entity_id, habit.state, habit.basis, habit.days), []).append(habit)
    for members in groups.values():
        members.sort(key=lambda h: (h.minute - _DAY_START_MIN) % 1440.0 if h.basis == "clock" else h.minute)
        for ordinal, habit in enumerate(members):
            out.append(replace(habit, ordinal=ordinal))
    return out
