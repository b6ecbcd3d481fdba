"""Presence: people arriving and leaving, as triggers and conditions.

Phone trackers flap (home, not_home, home within a minute): a return to the previous state within
``presence_debounce_s`` removes both changes. When the home has ``person.*`` entities, their
``device_tracker.*`` sources are left out (they say the same thing, and flap more). From the
persons the engine derives the household's presence as HA's ``zone.home`` counts it: ``home``
when the first person arrives, ``not_home`` when the last one leaves.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .events import AddedEvents, EventTable
from .options import MiningOptions

PERSON_DOMAIN = "person"
TRACKER_DOMAIN = "device_tracker"
HOUSEHOLD = "zone.home"
HOME = "home"
AWAY = "not_home"


def is_presence(entity_id: str) -> bool:
    """Whether ``entity_id`` tells where someone is."""
    return entity_id.partition(".")[0] in (PERSON_DOMAIN, TRACKER_DOMAIN)


def _codes(table: EventTable, domain: str) -> list[int]:
    prefix = f"{domain}."
    return [code for code, entity_id in enumerate(table.entity_ids) if entity_id.startswith(prefix)]


def debounce_presence(table: EventTable, options: MiningOptions) -> EventTable:
    """Drop flapping presence changes (and trackers, when persons exist)."""
    persons = _codes(table, PERSON_DOMAIN)
    trackers = _codes(table, TRACKER_DOMAIN)
    keep = np.ones(len(table), dtype=bool)
    if persons and trackers:
        keep &= ~np.isin(table.entity, np.array(trackers, dtype=np.int32))
    for code in persons or trackers:
        index = np.flatnonzero(table.entity == code)
        _drop_flaps(table, index, keep, options.presence_debounce_s)
    return table if keep.all() else table.rebuilt(keep)


def _drop_flaps(
    table: EventTable, index: npt.NDArray[np.intp], keep: npt.NDArray[np.bool_], window_s: float
) -> None:
    states, prev, times = table.state[index], table.prev_state[index], table.time[index]
    i = 0
    while i < index.size - 1:
        if states[i + 1] == prev[i] and times[i + 1] - times[i] <= window_s:
            keep[index[i]] = keep[index[i + 1]] = False
            i += 2
        else:
            i += 1


def add_household(table: EventTable) -> EventTable:
    """Add ``zone.home`` changes: ``home`` when the first person arrives, ``not_home`` when the
    last one leaves (only when the home has persons)."""
    persons = _codes(table, PERSON_DOMAIN)
    if not persons:
        return table
    home_code = table.state_code(HOME)
    index = np.flatnonzero(np.isin(table.entity, np.array(persons, dtype=np.int32)))
    if index.size == 0:
        return table
    # Where everyone was before the first change seen: the state that change left.
    at_home: dict[int, bool] = {}
    for i in index.tolist():
        code = int(table.entity[i])
        if code not in at_home:
            at_home[code] = int(table.prev_state[i]) == home_code
    count = sum(at_home.values())
    household = table.code_of(HOUSEHOLD)
    home, away = home_code, table.state_code(AWAY)
    rows: list[tuple[int, int, int, float, bool, int]] = []
    for i in index.tolist():
        code = int(table.entity[i])
        now_home = int(table.state[i]) == home_code
        if now_home == at_home[code]:
            continue
        at_home[code] = now_home
        before = count
        count += 1 if now_home else -1
        if before == 0 and count == 1:
            rows.append((household, home, away, float(table.time[i]), False, int(table.context[i])))
        elif before == 1 and count == 0:
            rows.append((household, away, home, float(table.time[i]), False, int(table.context[i])))
    return table.rebuilt(np.ones(len(table), dtype=bool), AddedEvents.of(rows)) if rows else table
