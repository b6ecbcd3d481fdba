"""How one UTC day of tracked state changes is kept in memory and written to its `Store` file.

Compact on purpose: HA's `Store` writes JSON indented by two spaces, one list element per line, so
a day kept as a list of row lists takes about eight lines per change. Here a day is four fields:
the entity ids, the distinct states and the user ids once each, and one string of rows.
Pure Python, no Home Assistant import, so that the benchmark and tests can drive it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, TypeAlias
from urllib.parse import unquote

from .patterns import StateChange

# entity index, state, milliseconds since the day's UTC midnight, context id, user id, parent id
Row: TypeAlias = tuple[int, str, int, str | None, str | None, str | None]


def day_start(key: str) -> datetime:
    """The UTC midnight that starts the day `key` (YYYY-MM-DD)."""
    return datetime.combine(date.fromisoformat(key), time(), tzinfo=UTC)


def is_day(key: object) -> bool:
    """True when `key` names a day (YYYY-MM-DD)."""
    if not isinstance(key, str):
        return False
    try:
        date.fromisoformat(key)
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class DayLog:
    """One UTC day's changes; `revision` counts edits, `saved_revision` is what its own file holds."""

    entities: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    revision: int = 0
    saved_revision: int = -1

    @classmethod
    def of_entities(cls, entities: list[str]) -> DayLog:
        """An empty log whose entity table is `entities`."""
        return cls(entities=list(entities), index={entity: i for i, entity in enumerate(entities)})

    def append(self, change: StateChange, milliseconds: int) -> None:
        """Log `change`, `milliseconds` after the day's midnight."""
        if (position := self.index.get(change.entity_id)) is None:
            position = self.index[change.entity_id] = len(self.entities)
            self.entities.append(change.entity_id)
        self.rows.append(
            (position, change.state, milliseconds, change.context_id, change.user_id, change.parent_id)
        )
        self.revision += 1


def _escape(value: str | None) -> str:
    """An id as a row field: `%`, `,` and `;` percent-encoded; None (and "") as nothing."""
    if not value:
        return ""
    return value.replace("%", "%25").replace(",", "%2C").replace(";", "%3B")


def _unescape(text: str) -> str | None:
    if not text:
        return None
    return unquote(text) if "%" in text else text


def encode_day(log: DayLog) -> dict[str, Any]:
    """A day as stored: tables of entities, states and users, and one string of rows.

    A row is `entity,state,milliseconds,context,user,parent` (entity, state and user as indexes
    into their tables, ids percent-escaped), rows are separated by `;`. Empty ids read back as None.
    """
    states: dict[str, int] = {}
    users: dict[str, int] = {}
    rows = []
    for position, state, milliseconds, context_id, user_id, parent_id in log.rows:
        state_index = states.setdefault(state, len(states))
        user = str(users.setdefault(user_id, len(users))) if user_id else ""
        rows.append(
            f"{position},{state_index},{milliseconds},{_escape(context_id)},{user},{_escape(parent_id)}"
        )
    return {
        "entities": list(log.entities),
        "states": list(states),
        "users": list(users),
        "rows": ";".join(rows),
    }


def _strings(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def decode_day(raw: object) -> DayLog | None:
    """A stored day back in memory; None when `raw` is not a day at all. Damaged rows are skipped."""
    if not isinstance(raw, dict):
        return None
    entities, states, users = (_strings(raw.get(name)) for name in ("entities", "states", "users"))
    rows = raw.get("rows")
    if entities is None or states is None or users is None or not isinstance(rows, str):
        return None
    log = DayLog.of_entities(entities)
    for text in rows.split(";") if rows else ():
        fields = text.split(",")
        if len(fields) != 6:
            continue
        try:
            position, state, milliseconds = int(fields[0]), int(fields[1]), int(fields[2])
            user = int(fields[4]) if fields[4] else None
        except ValueError:
            continue
        if (
            0 <= position < len(entities)
            and 0 <= state < len(states)
            and (user is None or 0 <= user < len(users))
        ):
            log.rows.append(
                (
                    position,
                    states[state],
                    milliseconds,
                    _unescape(fields[3]),
                    None if user is None else users[user],
                    _unescape(fields[5]),
                )
            )
    return log


def decode_v1_day(raw: object) -> DayLog | None:
    """A day of the version 1 file: {"e": entity ids, "c": [[entity, state, seconds, ctx, user, parent]]}."""
    if not isinstance(raw, dict) or (entities := _strings(raw.get("e", []))) is None:
        return None
    log = DayLog.of_entities(entities)
    rows = raw.get("c")
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, list) or len(row) != 6:
            continue
        position, state, seconds, *ids = row
        if (
            isinstance(position, int)
            and 0 <= position < len(entities)
            and isinstance(state, str)
            and isinstance(seconds, int | float)
            and all(value is None or isinstance(value, str) for value in ids)
        ):
            log.rows.append((position, state, round(seconds * 1000), ids[0], ids[1], ids[2]))
    return log


def migrate_v1(old: dict[str, Any]) -> dict[str, Any]:
    """The version 1 file (every day in one file) as a version 2 index with every day open.

    The next save writes each finished day to its own file. A damaged day moves `recorded_until`
    back to its start, so that the backfill reads it again from the recorder.
    """
    until = old.get("recorded_until")
    recorded_until = datetime.fromisoformat(until) if isinstance(until, str) else None
    opened: dict[str, Any] = {}
    days = old.get("days")
    for key, raw in days.items() if isinstance(days, dict) else ():
        if not is_day(key):
            continue
        if (log := decode_v1_day(raw)) is not None:
            opened[key] = encode_day(log)
        elif recorded_until is not None:
            recorded_until = min(recorded_until, day_start(key))
    return {
        "recorded_until": recorded_until.isoformat() if recorded_until else None,
        "days": [],
        "open": opened,
        "stale": [],
    }
