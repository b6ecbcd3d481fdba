"""Groups: entities set to the same state together are one action on several targets.

Seven lamps switched as one (a Hue room, a wall switch wired to several relays, a habit of
turning on three things at once) report seven changes, often without a shared context. Two
entities belong together when each is set to a state within ``group_window_s`` of the other on at
least ``group_min_share`` of its changes to that state; groups are the connected sets of such
pairs. Each time at least half of a group (two at the least) is set together, the members'
changes become one change of the group, whose id joins the members' ids with ``+``
(``light.desk+light.bloom``); changes of a member alone stay its own.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .actions import is_actionable
from .events import AddedEvents, EventTable
from .options import MiningOptions

GROUP_SEPARATOR = "+"

IntArray = npt.NDArray[np.int64]


def group_key(members: list[str]) -> str:
    """The entity id standing for a group of entities."""
    return GROUP_SEPARATOR.join(sorted(members))


def targets_of(entity_id: str) -> tuple[str, ...]:
    """The entities a (possibly grouped) entity id stands for."""
    return tuple(entity_id.split(GROUP_SEPARATOR))


def _pairs_within(times: npt.NDArray[np.float64], window: float) -> tuple[IntArray, IntArray]:
    """All index pairs (i, j), i < j, with ``times[j] - times[i] <= window`` (times sorted)."""
    hi = np.searchsorted(times, times + window, side="right")
    lengths = hi - np.arange(times.size) - 1
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first: IntArray = np.repeat(np.arange(times.size, dtype=np.int64), lengths)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return first, first + 1 + offsets


def _candidates(table: EventTable) -> npt.NDArray[np.intp]:
    """Manual changes to a state a service can set (the only changes a group can be made of)."""
    manual = np.flatnonzero(table.manual)
    n_states = len(table.states)
    keys = table.entity[manual].astype(np.int64) * n_states + table.state[manual]
    unique = np.unique(keys)
    ok = np.array(
        [is_actionable(table.entity_ids[k // n_states], table.states[k % n_states]) for k in unique.tolist()],
        dtype=bool,
    )
    return manual[np.isin(keys, unique[ok])] if unique.size else manual


def group_changes(table: EventTable, options: MiningOptions) -> EventTable:
    """The table with each time a group was set together as one change of the group entity."""
    index = _candidates(table)
    return _merge(table, index, _find(table, index, options), options)


def _find(table: EventTable, index: npt.NDArray[np.intp], options: MiningOptions) -> list[list[int]]:
    """Entity codes of each group (two or more entities) among the ``index`` changes, over all states."""
    n_entities = len(table.entity_ids)
    edges: set[tuple[int, int]] = set()
    for state in np.unique(table.state[index]).tolist():
        events = index[table.state[index] == state]
        entity = table.entity[events].astype(np.int64)
        first, second = _pairs_within(table.time[events], options.group_window_s)
        other = entity[first] != entity[second]
        first, second = first[other], second[other]
        # Each change counts once per partner entity: "was b set within the window of this a?"
        directed = np.unique(
            np.concatenate([first * n_entities + entity[second], second * n_entities + entity[first]])
        )
        owner, partner = entity[directed // n_entities], directed % n_entities
        pair_keys, together = np.unique(owner * n_entities + partner, return_counts=True)
        changes = np.bincount(entity, minlength=n_entities)
        for key, count in zip(pair_keys.tolist(), together.tolist(), strict=True):
            a, b = divmod(key, n_entities)
            if a < b and count >= options.min_support_days:
                back = together[np.searchsorted(pair_keys, b * n_entities + a)]
                if (
                    count >= options.group_min_share * changes[a]
                    and back >= options.group_min_share * changes[b]
                ):
                    edges.add((a, b))
    return _components(edges)


def _components(edges: set[tuple[int, int]]) -> list[list[int]]:
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in sorted(edges):
        parent[root(a)] = root(b)
    components: dict[int, list[int]] = {}
    for node in sorted(parent):
        components.setdefault(root(node), []).append(node)
    return sorted(components.values())


def _merge(
    table: EventTable, index: npt.NDArray[np.intp], groups: list[list[int]], options: MiningOptions
) -> EventTable:
    """Replace each time a group is set together by one change of the group entity."""
    if not groups:
        return table
    keep = np.ones(len(table), dtype=bool)
    rows: list[tuple[int, int, int, float, bool, int]] = []
    for members in groups:
        key = group_key([table.entity_ids[code] for code in members])
        group = table.code_of(key)
        needed = max(2, math.ceil(len(members) / 2))
        events = index[np.isin(table.entity[index], np.array(members, dtype=np.int32))]
        previous = -1
        for burst in _bursts(table, events, options.group_window_s):
            states = table.state[burst]
            state = int(states[0])
            if np.any(states != state) or np.unique(table.entity[burst]).size < needed:
                continue
            if not all(is_actionable(table.entity_ids[code], table.states[state]) for code in members):
                continue
            keep[burst] = False
            first = int(burst[0])
            rows.append((group, state, previous, float(table.time[first]), True, int(table.context[first])))
            previous = state
    return table.rebuilt(keep, AddedEvents.of(rows)) if rows else table


def _bursts(table: EventTable, events: npt.NDArray[np.intp], window_s: float) -> list[npt.NDArray[np.intp]]:
    """Runs of changes to one state, each within ``window_s`` of the run's first change."""
    bursts: list[npt.NDArray[np.intp]] = []
    times, states = table.time[events], table.state[events]
    start = 0
    for i in range(1, events.size + 1):
        if i == events.size or times[i] - times[start] > window_s or states[i] != states[start]:
            bursts.append(events[start:i])
            start = i
    return bursts
