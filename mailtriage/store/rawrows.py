"""Raw messages written a batch at a time: the store side of a bulk import's first step.

    readahead (sha256, bytes) ─► **batch_rows**: one SELECT, one INSERT for the batch ─► spine.flow per message

The import, the IMAP batch and the listener's group commit all take their
raw rows this way.

Through the unit of work each new row is a statement of its own (its id comes
back from it); here the batch's rows go in one statement that returns the
ids, and the objects join the session as if they had been loaded, so what
the pipeline later records on them (state, outcome, ticket) is written as
UPDATEs in the session's flush, as for rows that existed before.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, make_transient_to_detached

from mailtriage.store.schema import RawMessage

# Built once: a statement made per call costs more in SQLAlchemy than the rows do in the database.
_INSERT_RAW = insert(RawMessage).returning(RawMessage.id, RawMessage.sha256)


def add_raw_many(session: Session, messages: dict[str, tuple[bytes, str]], received_at: datetime) -> list[RawMessage]:
    """Store new raw messages, {sha256: (bytes, source)}, pending, in the
    caller's transaction; returns them as session objects."""
    if not messages:
        return []
    rows = [{"sha256": digest, "size": len(data), "data": data, "source": source[:200], "received_at": received_at,
             "state": "pending", "outcome": None, "reason": None, "error": None, "attempts": 0, "ticket_id": None}
            for digest, (data, source) in messages.items()]
    ids = {digest: number for number, digest in session.connection().execute(_INSERT_RAW, rows)}
    stored = []
    for digest, values in zip(messages, rows):
        raw = RawMessage(id=ids[digest], **values)
        make_transient_to_detached(raw)          # every column is set: nothing is left to load
        session.add(raw)
        stored.append(raw)
    return stored


def batch_rows(session: Session, messages: Sequence[tuple[str, bytes, str]],
               received_at: datetime) -> list[tuple[RawMessage, bool]]:
    """Each message's raw row, in order, for (sha256, bytes, source): the one
    stored before (False), or one added now (True), the new ones in one
    INSERT. The same bytes twice in a batch are stored once: True for the first."""
    known = {row.sha256: row for row in session.scalars(
        select(RawMessage).where(RawMessage.sha256.in_({digest for digest, _, _ in messages})))}
    new: dict[str, tuple[bytes, str]] = {}
    for digest, data, source in messages:
        if digest not in known:
            new.setdefault(digest, (data, source))
    known.update((raw.sha256, raw) for raw in add_raw_many(session, new, received_at))
    rows = []
    for digest, _, _ in messages:
        rows.append((known[digest], new.pop(digest, None) is not None))
    return rows
