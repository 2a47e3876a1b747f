"""A database connection that cannot write, and what `rules replay` reads through it.

Below the flow: `rules replay` (classify/replay.py) asks what another rules
file would have decided for mail already stored. It must be safe to run
beside a live daemon and against production, so the guarantee is the
database's, not our code's: SQLite opens the file with the `mode=ro` URI,
PostgreSQL starts every transaction READ ONLY. A write through either
connection is refused by the server (tests/integration/test_rules_replay.py
tries one).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from mailtriage.errors import SchemaOutdated, UsageError
from mailtriage.store.db import SCHEMA_HEAD, Store, current_revision
from mailtriage.store.schema import Message, RawMessage, Ticket


def open_readonly(url: str) -> Store:
    """Open the database for reading only; the schema must be the current one."""
    engine = _readonly_engine(url)
    current = current_revision(engine)
    if current != SCHEMA_HEAD:
        engine.dispose()
        raise SchemaOutdated(f"database schema is at {current or 'no version'}, this mailtriage needs "
                             f"{SCHEMA_HEAD}: run `mailtriage db upgrade`")
    return Store(url, engine, sessionmaker(engine))


def _readonly_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":
            raise UsageError(f"{url}: an in-memory database has nothing stored to read")
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such database file")
        # A `file:` URI, so that SQLite itself refuses every write: no PRAGMA
        # journal_mode here (the writer set WAL; setting it would be a write).
        uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
        return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=30))
    if parsed.get_backend_name() == "postgresql":
        # Every transaction of the session starts READ ONLY (the server's rule, not ours).
        return create_engine(url, connect_args={"options": "-c default_transaction_read_only=on"})
    raise UsageError(f"{parsed.get_backend_name()}: no read-only connection known for this database")


def first_customer_messages(session: Session, since: datetime | None = None) -> Iterator[tuple[int, bytes]]:
    """(ticket id, raw bytes) of each ticket's first customer message, the one
    the rules classified when it opened the ticket; in ticket order, streamed."""
    first = select(func.min(Message.id)).where(Message.kind == "customer").group_by(Message.ticket_id)
    query = (select(Message.ticket_id, RawMessage.data)
             .join(RawMessage, RawMessage.id == Message.raw_id)
             .where(Message.id.in_(first))
             .order_by(Message.ticket_id))
    if since is not None:
        query = query.join(Ticket, Ticket.id == Message.ticket_id).where(Ticket.created_at >= since)
    for ticket_id, data in session.execute(query.execution_options(yield_per=200)):
        yield ticket_id, data
