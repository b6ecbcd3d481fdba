"""Write a home's past state changes into Home Assistant's recorder database.

A real installation accumulates this history over weeks; the demo and the end-to-end tests
need it at once. Rows go into the same tables, with the same columns, that the recorder
itself writes (``states`` + ``states_meta``), including the context columns that tell a
manual change (a ``context_user_id_bin``, or no user at all) from an automation's
(``context_parent_id_bin``, or a ``context_id_bin`` shared with an ``automation.*`` row).
Home Assistant may be running: SQLite serialises the writers.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from homeassistant.components.recorder.db_schema import States, StatesMeta
from homeassistant.util.ulid import ulid_at_time, ulid_to_bytes
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

INSERT_BATCH = 5000


@dataclass(frozen=True, slots=True)
class PastState:
    """One recorded state change."""

    entity_id: str
    state: str
    when: datetime  # timezone-aware
    context_id: str | None = None  # changes made by one automation run share their context id
    user_id: str | None = None  # a change made in the app or UI
    parent_id: str | None = None  # set when a triggered automation or script caused the change


def context_bytes(value: str) -> bytes:
    """HA stores context ids in 16 bytes: a ULID or UUID as such, any other id by a stable hash."""
    try:
        return ulid_to_bytes(value)
    except ValueError:
        pass
    try:
        return uuid.UUID(hex=value).bytes
    except ValueError:
        return hashlib.blake2b(value.encode(), digest_size=16).digest()


def seed_recorder(database: Path, history: Iterable[PastState]) -> int:
    """Insert ``history`` into the recorder database; return the number of rows written."""
    engine = create_engine(f"sqlite:///{database}", connect_args={"timeout": 60})
    written = 0
    try:
        with Session(engine) as session, session.begin():
            meta_ids = {
                row.entity_id: row.metadata_id
                for row in session.scalars(select(StatesMeta))
                if row.entity_id is not None
            }
            rows: list[dict[str, Any]] = []
            for change in sorted(history, key=lambda c: c.when):
                metadata_id = meta_ids.get(change.entity_id)
                if metadata_id is None:
                    meta = StatesMeta(entity_id=change.entity_id)
                    session.add(meta)
                    session.flush()
                    metadata_id = meta_ids[change.entity_id] = meta.metadata_id
                ts = change.when.timestamp()
                rows.append(
                    {
                        "state": change.state,
                        "last_changed_ts": ts,
                        "last_updated_ts": ts,
                        "last_reported_ts": None,
                        "origin_idx": 0,
                        "context_id_bin": (
                            context_bytes(change.context_id)
                            if change.context_id
                            else ulid_to_bytes(ulid_at_time(ts))
                        ),
                        "context_user_id_bin": None
                        if change.user_id is None
                        else context_bytes(change.user_id),
                        "context_parent_id_bin": None
                        if change.parent_id is None
                        else context_bytes(change.parent_id),
                        "metadata_id": metadata_id,
                    }
                )
                if len(rows) >= INSERT_BATCH:
                    session.execute(insert(States), rows)
                    written += len(rows)
                    rows = []
            if rows:
                session.execute(insert(States), rows)
                written += len(rows)
    finally:
        engine.dispose()
    return written
