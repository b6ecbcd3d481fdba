"""Tracked state changes read from the recorder, with the context ids that tell who made them.

Why a direct query: the recorder's history API (`get_significant_states` and friends) returns
`LazyState` objects whose `context` is always empty, yet the origin of a change (a user in the UI,
an automation, or a physical switch) lives in that context. So the reader selects the `states`
table's columns it needs (entity, state, time, context ids; never attributes, like the history
API's `no_attributes=True`) on the recorder's own database executor.

Those tables and column helpers are recorder internals (`db_schema`, `models`), not an API: when a
Home Assistant release renames them, the import fails or the query does. Then the reader falls
back to the history API and logs a warning once: the changes still come, but without context ids,
so changes that automations made look manual and user ids are unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from homeassistant.components.recorder.history import get_significant_states
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers.recorder import get_instance, session_scope
from homeassistant.util import dt as dt_util
from sqlalchemy import Select, or_, select
from sqlalchemy.exc import SQLAlchemyError

from .const import LOGGER, ORIGIN_DOMAINS
from .patterns import StateChange

try:
    from homeassistant.components.recorder.db_schema import States, StatesMeta
    from homeassistant.components.recorder.models import bytes_to_ulid_or_none, bytes_to_uuid_hex_or_none
except (ImportError, AttributeError) as err:
    DIRECT_QUERY_UNAVAILABLE: str | None = f"recorder internals not importable ({err})"
else:
    DIRECT_QUERY_UNAVAILABLE = None

# Entity ids per SQL `IN (...)`, well under SQLite's bound-parameter limit.
ENTITY_ID_BATCH = 500


def _states_statement(start: datetime, end: datetime, entity_ids: list[str]) -> Select[Any]:
    """State changes (and origin records' updates) of `entity_ids` in [start, end), by time."""
    return (
        select(
            StatesMeta.entity_id,
            States.state,
            States.last_updated_ts,
            States.context_id_bin,
            States.context_user_id_bin,
            States.context_parent_id_bin,
        )
        .join(StatesMeta, States.metadata_id == StatesMeta.metadata_id)
        .where(
            StatesMeta.entity_id.in_(entity_ids),
            States.state.is_not(None),
            States.last_updated_ts >= start.timestamp(),
            States.last_updated_ts < end.timestamp(),
            # The recorder stores last_changed_ts as NULL when it equals last_updated_ts, i.e.
            # when the state itself changed; origin records keep attribute updates too.
            or_(
                States.last_changed_ts.is_(None),
                States.last_changed_ts == States.last_updated_ts,
                *(StatesMeta.entity_id.startswith(f"{domain}.") for domain in ORIGIN_DOMAINS),
            ),
        )
        .order_by(States.last_updated_ts)
    )


def _query_states(
    hass: HomeAssistant, start: datetime, end: datetime, entity_ids: Sequence[str]
) -> list[StateChange]:
    """The changes in [start, end) from the `states` table, with their context ids."""
    # Built before the session: a renamed column fails here, not as a database error.
    statements = [
        _states_statement(start, end, list(entity_ids[offset : offset + ENTITY_ID_BATCH]))
        for offset in range(0, len(entity_ids), ENTITY_ID_BATCH)
    ]
    changes: list[StateChange] = []
    with session_scope(hass=hass, read_only=True) as session:
        for statement in statements:
            for entity_id, state, updated_ts, context_id, user_id, parent_id in session.execute(statement):
                changes.append(
                    StateChange(
                        entity_id=entity_id,
                        state=state,
                        when=dt_util.utc_from_timestamp(updated_ts),
                        context_id=bytes_to_ulid_or_none(context_id),
                        user_id=bytes_to_uuid_hex_or_none(user_id),
                        parent_id=bytes_to_ulid_or_none(parent_id),
                    )
                )
    changes.sort(key=lambda change: change.when)
    return changes


def _query_history_api(
    hass: HomeAssistant, start: datetime, end: datetime, entity_ids: Sequence[str]
) -> list[StateChange]:
    """The same changes through the recorder's public history API, without context ids."""
    changes: list[StateChange] = []
    for offset in range(0, len(entity_ids), ENTITY_ID_BATCH):
        # The API's start is exclusive, ours inclusive.
        found = get_significant_states(
            hass,
            start - timedelta(microseconds=1),
            end,
            list(entity_ids[offset : offset + ENTITY_ID_BATCH]),
            include_start_time_state=False,
            significant_changes_only=False,
            no_attributes=True,
        )
        for entity_id, states in found.items():
            origin = entity_id.partition(".")[0] in ORIGIN_DOMAINS
            for state in states:
                if not isinstance(state, State) or not state.state or not start <= state.last_updated < end:
                    continue
                if origin or state.last_changed_timestamp == state.last_updated_timestamp:
                    changes.append(StateChange(entity_id, state.state, state.last_updated))
    changes.sort(key=lambda change: change.when)
    return changes


class RecorderReader:
    """Reads tracked state changes from the recorder: directly, or through the history API.

    The fallback is chosen when the recorder internals cannot be imported, or the first time the
    direct query fails (for the rest of this reader's life, i.e. until the entry reloads).
    """

    def __init__(self, hass: HomeAssistant) -> None:
        """Bind to Home Assistant; the direct query is tried first if it could be imported."""
        self.hass = hass
        self._fallback_reason = DIRECT_QUERY_UNAVAILABLE
        self._warned = False

    @property
    def has_context(self) -> bool:
        """False once the reader falls back to the history API, which has no context ids."""
        return self._fallback_reason is None

    async def async_read(
        self, start: datetime, end: datetime, entity_ids: Sequence[str]
    ) -> list[StateChange]:
        """The changes of `entity_ids` in [start, end), oldest first, on the recorder's executor."""
        recorder = get_instance(self.hass)
        if self._fallback_reason is None:
            try:
                return await recorder.async_add_executor_job(
                    partial(_query_states, self.hass, start, end, entity_ids)
                )
            except (AttributeError, SQLAlchemyError) as err:
                self._fallback_reason = f"the query of the recorder's tables failed ({err!r})"
        if not self._warned:
            self._warned = True
            LOGGER.warning(
                "Reading history through the recorder's history API, because %s. That API has no "
                "context ids: changes made by automations cannot be told from manual ones, so some "
                "suggestions may repeat what automations already do",
                self._fallback_reason,
            )
        return await recorder.async_add_executor_job(
            partial(_query_history_api, self.hass, start, end, entity_ids)
        )
