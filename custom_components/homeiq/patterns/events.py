"""Reading state changes and turning them into compact arrays the detectors share.

Origin: a change is *automated* when its context has a ``parent_id`` or when its context id is also
the context of an ``automation.*`` / ``script.*`` record (a time-triggered automation runs with a
fresh context that has neither ``parent_id`` nor ``user_id``, so only the shared context id tells
it from a physical switch). Everything else is *manual*.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .model import StateChange
from .options import MiningOptions

IGNORED_STATES = frozenset({"unknown", "unavailable", "", "none"})
ORIGIN_DOMAINS = frozenset({"automation", "script"})


class EventFormatError(ValueError):
    """A JSON Lines record is not a state change."""


def read_events_jsonl(path: Path) -> Iterator[StateChange]:
    """Yield the state changes of a JSON Lines file.

    Each line: ``{"entity_id", "state", "last_changed": ISO 8601 with offset,
    "context": {"id", "user_id", "parent_id"}}``. Blank lines are skipped; a malformed line raises
    :class:`EventFormatError` naming the line.
    """
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield state_change_from_dict(json.loads(line))
            except (ValueError, TypeError, KeyError) as err:
                raise EventFormatError(f"{path}:{number}: {err}") from err


def state_change_from_dict(record: dict[str, Any]) -> StateChange:
    """One JSON Lines record (see :func:`read_events_jsonl`) as a :class:`StateChange`."""
    when = datetime.fromisoformat(str(record["last_changed"]))
    if when.tzinfo is None:
        raise ValueError("last_changed has no UTC offset")
    context = record.get("context") or {}
    return StateChange(
        entity_id=str(record["entity_id"]),
        state=str(record["state"]),
        when=when,
        context_id=context.get("id"),
        user_id=context.get("user_id"),
        parent_id=context.get("parent_id"),
    )


def state_change_to_dict(change: StateChange) -> dict[str, Any]:
    """The JSON Lines record of a state change (the inverse of :func:`state_change_from_dict`)."""
    return {
        "entity_id": change.entity_id,
        "state": change.state,
        "last_changed": change.when.isoformat(),
        "context": {"id": change.context_id, "user_id": change.user_id, "parent_id": change.parent_id},
    }


@dataclass
class EventTable:
    """The usable state changes of the window, sorted by time, as parallel arrays.

    ``entity`` and ``state`` are codes into ``entity_ids`` and ``states``; ``prev_state`` is the code
    of the entity's previous state (-1 when unknown); ``time`` is POSIX seconds; ``manual`` is False
    for changes an automation or script caused; ``context`` is a hash of the context id (0: none).
    """

    entity_ids: list[str]
    states: list[str]
    entity: npt.NDArray[np.int32]
    state: npt.NDArray[np.int32]
    prev_state: npt.NDArray[np.int32]
    time: npt.NDArray[np.float64]
    manual: npt.NDArray[np.bool_]
    context: npt.NDArray[np.int64]
    start: float
    end: float
    window_start: float

    def __len__(self) -> int:
        return int(self.time.size)

    def code_of(self, entity_id: str) -> int:
        """The code of ``entity_id``, adding it (a group or the household) when it is new."""
        return _code(self.entity_ids, entity_id)

    def state_code(self, state: str) -> int:
        """The code of ``state``, adding it when it is new."""
        return _code(self.states, state)

    def rebuilt(self, keep: npt.NDArray[np.bool_], added: AddedEvents | None = None) -> EventTable:
        """A table of the kept events plus ``added`` ones, sorted by time (codes stay valid)."""
        entity, state, prev = self.entity[keep], self.state[keep], self.prev_state[keep]
        time, manual, context = self.time[keep], self.manual[keep], self.context[keep]
        if added is not None and added.time.size:
            entity = np.concatenate([entity, added.entity])
            state = np.concatenate([state, added.state])
            prev = np.concatenate([prev, added.prev_state])
            time = np.concatenate([time, added.time])
            manual = np.concatenate([manual, added.manual])
            context = np.concatenate([context, added.context])
        order = np.argsort(time, kind="stable")
        return EventTable(
            entity_ids=self.entity_ids,
            states=self.states,
            entity=entity[order],
            state=state[order],
            prev_state=prev[order],
            time=time[order],
            manual=manual[order],
            context=context[order],
            start=self.start,
            end=self.end,
            window_start=self.window_start,
        )


def _code(names: list[str], name: str) -> int:
    """The index of ``name`` in ``names``, appending it when it is not there."""
    if name not in names:
        names.append(name)
    return names.index(name)


@dataclass
class AddedEvents:
    """Events made by the engine (a group set together, the household's first arrival)."""

    entity: npt.NDArray[np.int32]
    state: npt.NDArray[np.int32]
    prev_state: npt.NDArray[np.int32]
    time: npt.NDArray[np.float64]
    manual: npt.NDArray[np.bool_]
    context: npt.NDArray[np.int64]

    @classmethod
    def of(cls, rows: list[tuple[int, int, int, float, bool, int]]) -> AddedEvents:
        """From rows of (entity, state, prev_state, time, manual, context)."""
        columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), (), ()]
        return cls(
            entity=np.array(columns[0], dtype=np.int32),
            state=np.array(columns[1], dtype=np.int32),
            prev_state=np.array(columns[2], dtype=np.int32),
            time=np.array(columns[3], dtype=np.float64),
            manual=np.array(columns[4], dtype=bool),
            context=np.array(columns[5], dtype=np.int64),
        )


def _is_numeric(state: str) -> bool:
    try:
        float(state)
    except ValueError:
        return False
    return True


@dataclass
class _Encoded:
    """Raw encoded events in input order, before sorting and filtering."""

    entity_ids: list[str]
    states: list[str]
    entity: npt.NDArray[np.int32]
    state: npt.NDArray[np.int32]
    time: npt.NDArray[np.float64]
    not_manual: npt.NDArray[np.bool_]  # parent_id set, or an excluded user
    context: npt.NDArray[np.int64]
    automated_contexts: set[int]


def _encode(events: Iterable[StateChange], options: MiningOptions) -> _Encoded:
    """One pass over the events: drop excluded and numeric ones, encode the rest as codes."""
    entity_codes: dict[str, int] = {}
    entity_ids: list[str] = []
    state_codes: dict[str, int] = {}
    states: list[str] = []
    skip_entity: dict[str, bool] = {}
    numeric_cache: dict[str, bool] = {}
    automated_contexts: set[int] = set()
    excluded_users = options.excluded_users

    ent = array("i")
    st = array("i")
    tm = array("d")
    parent = array("b")
    ctx = array("q")

    for change in events:
        entity_id = change.entity_id
        skip = skip_entity.get(entity_id)
        if skip is None:
            domain = entity_id.partition(".")[0]
            skip = (
                domain in ORIGIN_DOMAINS
                or domain in options.excluded_domains
                or entity_id in options.excluded_entities
            )
            skip_entity[entity_id] = skip
        if skip:
            # automation/script records are never habits, but their context ids mark what they caused.
            if change.context_id and entity_id.partition(".")[0] in ORIGIN_DOMAINS:
                automated_contexts.add(hash(change.context_id))
            continue
        state = change.state
        numeric = numeric_cache.get(state)
        if numeric is None:
            numeric = _is_numeric(state)
            if len(numeric_cache) < 100_000:
                numeric_cache[state] = numeric
        if numeric:
            continue
        code = entity_codes.get(entity_id)
        if code is None:
            code = entity_codes[entity_id] = len(entity_ids)
            entity_ids.append(entity_id)
        scode = state_codes.get(state)
        if scode is None:
            scode = state_codes[state] = len(states)
            states.append(state)
        ent.append(code)
        st.append(scode)
        when = change.when
        if when.tzinfo is None:
            raise ValueError(f"{entity_id}: state change time {when.isoformat()} has no time zone")
        tm.append(when.timestamp())
        # Changes by excluded users (service accounts, guests) are kept for state tracking but, like
        # an automation's, are not habits.
        parent.append(1 if change.parent_id or (change.user_id and change.user_id in excluded_users) else 0)
        ctx.append(hash(change.context_id) if change.context_id else 0)

    return _Encoded(
        entity_ids=entity_ids,
        states=states,
        entity=np.frombuffer(ent, dtype=np.int32) if len(ent) else np.zeros(0, np.int32),
        state=np.frombuffer(st, dtype=np.int32) if len(st) else np.zeros(0, np.int32),
        time=np.frombuffer(tm, dtype=np.float64) if len(tm) else np.zeros(0, np.float64),
        not_manual=np.frombuffer(parent, dtype=np.int8).astype(bool) if len(parent) else np.zeros(0, bool),
        context=np.frombuffer(ctx, dtype=np.int64) if len(ctx) else np.zeros(0, np.int64),
        automated_contexts=automated_contexts,
    )


def build_event_table(
    events: Iterable[StateChange], options: MiningOptions, now: datetime | None
) -> EventTable:
    """Filter and encode the events of the mining window (one pass; memory ~30 bytes per event).

    Dropped: excluded domains/entities, numeric states, ``unknown``/``unavailable`` and the first
    state after them, attribute-only changes (same state as before), events outside the window.
    """
    raw = _encode(events, options)
    entity, state_arr, time = raw.entity, raw.state, raw.time
    end = now.timestamp() if now is not None else (float(time.max()) if time.size else 0.0)
    window_start = end - options.window_days * 86400.0

    # Per entity in time order, to know each change's previous state.
    order = np.lexsort((time, entity))
    entity, state_arr, time = entity[order], state_arr[order], time[order]
    not_manual, ctx_arr = raw.not_manual[order], raw.context[order]
    prev = np.full(entity.size, -1, dtype=np.int32)
    if entity.size > 1:
        same_entity = entity[1:] == entity[:-1]
        prev[1:] = np.where(same_entity, state_arr[:-1], -1)

    ignored_codes = np.array([code for code, s in enumerate(raw.states) if s.lower() in IGNORED_STATES])
    is_ignored = np.isin(state_arr, ignored_codes)
    prev_ignored = np.isin(prev, ignored_codes)
    keep = (
        ~is_ignored
        & ~prev_ignored
        & (state_arr != prev)  # attribute-only change: the state did not change
        & (time >= window_start)
        & (time <= end)
    )
    automated = not_manual.copy()
    if raw.automated_contexts:
        automated |= np.isin(ctx_arr, np.fromiter(raw.automated_contexts, dtype=np.int64))
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(time[idx], kind="stable")]
    kept_time = time[idx]
    # History shorter than the window starts at the first event's time; mine.py widens that to
    # the start of its local day, so that the first day's habit counts.
    start = max(window_start, float(kept_time[0])) if kept_time.size else window_start
    return EventTable(
        entity_ids=raw.entity_ids,
        states=raw.states,
        entity=entity[idx],
        state=state_arr[idx],
        prev_state=prev[idx],
        time=kept_time,
        manual=~automated[idx],
        context=ctx_arr[idx],
        start=start,
        end=end,
        window_start=window_start,
    )
