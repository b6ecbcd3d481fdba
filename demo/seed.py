"""Write a home's past state changes into Home Assistant's recorder database.

A real installation accumulates this history over weeks; the demo and the end-to-end tests
need it at once. Rows go into the same tables, with the same columns, that the recorder
itself writes (``states`` + ``states_meta``), including the context columns that tell a
manual change (``context_user_id_bin`` or no user at all) from an automation's
(``context_parent_id_bin``). Home Assistant may be running: SQLite serialises the writers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from homeassistant.components.recorder.db_schema import States, StatesMeta
from homeassistant.components.recorder.models.context import uuid_hex_to_bytes_or_none
from homeassistant.util.ulid import ulid_at_time, ulid_to_bytes
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class PastState:
    """One recorded state change."""

    entity_id: str
    state: str
    when: datetime  # timezone-aware
    user_id: str | None = None  # HA user id (32 hex characters): a change made in the app or UI
    parent_id: str | None = None  # set when an automation or script caused the change


def _context_bytes(value: str) -> bytes:
    """HA stores context ids as 16 bytes; accept a ULID or any other id string."""
    try:
        return ulid_to_bytes(value)
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
            for change in sorted(history, key=lambda c: c.when):
                metadata_id = meta_ids.get(change.entity_id)
                if metadata_id is None:
                    meta = StatesMeta(entity_id=change.entity_id)
                    session.add(meta)
                    session.flush()
                    metadata_id = meta_ids[change.entity_id] = meta.metadata_id
                ts = change.when.timestamp()
                parent = None if change.parent_id is None else _context_bytes(change.parent_id)
                session.add(
                    States(
                        state=change.state,
                        last_changed_ts=ts,
                        last_updated_ts=ts,
                        last_reported_ts=None,
                        origin_idx=0,
                        context_id_bin=ulid_to_bytes(ulid_at_time(ts)),
                        context_user_id_bin=uuid_hex_to_bytes_or_none(change.user_id),
                        context_parent_id_bin=parent,
                        metadata_id=metadata_id,
                    )
                )
                written += 1
    finally:
        engine.dispose()
    return written
