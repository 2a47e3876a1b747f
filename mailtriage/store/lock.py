"""Who may do what when several processes share a database.

SQLite: one daemon per database. SQLite has no row locks to share work
between daemons, so a second daemon on the same file is refused: the first
holds an exclusive flock(2) on `<database>.lock` for its whole life. The
kernel drops the lock when the process dies, even by SIGKILL, so a crash
never leaves a stale lock behind.

PostgreSQL: many daemons; the outbox is shared through row locks, and each
IMAP folder is watched by one daemon at a time, which holds a session
advisory lock on it (`AdvisoryLock`); the others stand by and take over
when that daemon's connection goes away. Messages of one conversation are
threaded one at a time (`lock_conversations`): a reply that arrives at one
daemon while another is still storing its parent waits for that commit, and
then finds the parent, instead of opening a second ticket; the same message
delivered to two mailboxes at once is stored once and seen once as a duplicate.
The ticket rows a message writes are held too (`lock_tickets`): a reply to
a ticket that another daemon is merging waits for the merge, then follows it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from collections.abc import Iterable

from sqlalchemy import Connection, Engine, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.orm import Session
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mailtriage.errors import AlreadyRunning
from mailtriage.store.schema import Ticket


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and :memory:."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


class DaemonLock:
    """Held while the daemon runs; `acquire()` raises AlreadyRunning for a second one."""

    def __init__(self, database: Path):
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"another mailtriage daemon (pid {holder}) is already running on {self.database} "
                f"(lock {self.path}); with SQLite only one daemon may run per database "
                "(use PostgreSQL to run several)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_for(url: str) -> DaemonLock | None:
    """The lock a daemon on this database must hold, or None (not SQLite)."""
    path = sqlite_file(url)
    return DaemonLock(path) if path is not None else None


class AdvisoryLock:
    """A PostgreSQL session advisory lock, held on a connection of its own."""

    def __init__(self, engine: Engine, name: str):
        self.engine, self.name = engine, name
        self.key = _key(name)
        self._connection: Connection | None = None

    @property
    def held(self) -> bool:
        """Whether we held the lock at the last `hold()`."""
        return self._connection is not None

    def hold(self) -> bool:
        """True while we hold the lock (taking it when it is free). Raises when
        the database is unreachable; the lock is then lost with the connection."""
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                return True
            except SQLAlchemyError:
                self._forget()
                raise
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar()
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            except SQLAlchemyError:
                pass
            self._forget()

    def _forget(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except SQLAlchemyError:
                pass


def advisory_lock(engine: Engine, name: str) -> AdvisoryLock | None:
    """The lock for `name` on PostgreSQL; None elsewhere (SQLite has one daemon)."""
    return AdvisoryLock(engine, name) if engine.dialect.name == "postgresql" else None


# All keys of a transaction in one statement, in ascending order: two
# transactions that want overlapping keys queue on the first key they share
# and never deadlock each other.
_LOCK_KEYS = text("SELECT count(pg_advisory_xact_lock(k)) FROM "
                  "(SELECT DISTINCT unnest(:keys) AS k ORDER BY k) AS wanted").bindparams(
    bindparam("keys", type_=ARRAY(BIGINT)))
_LOCKED = "mailtriage.conversation_locks"      # (the transaction, the keys it holds)


def begin_writing(session: Session) -> None:
    """SQLite: take the write lock at the start of a batch's transaction
    (waiting for it: busy_timeout). pysqlite would begin the transaction only
    at the first INSERT, after the dedup reads, so a savepoint opened first
    would pin a snapshot whose first write fails at once ("database is
    locked") when another connection (the outbox) committed meanwhile."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def lock_conversations(session: Session, message_ids: Iterable[str]) -> None:
    """Hold, until the transaction ends, a lock on each Message-ID (a
    message's own and the ones it refers to); PostgreSQL only. Call it
    before the lookups that thread or deduplicate the messages. Keys the
    transaction already holds are not asked for again."""
    if session.get_bind().dialect.name != "postgresql":
        return
    held = _held(session, _LOCKED)
    keys = {_key("mailtriage message " + message_id) for message_id in message_ids if message_id} - held
    if keys:
        session.connection().execute(_LOCK_KEYS, {"keys": sorted(keys)})
        held.update(keys)


def lock_tickets(session: Session, ticket_ids: Iterable[int]) -> None:
    """Hold, until the transaction ends, the rows of these tickets (SELECT …
    FOR UPDATE, in id order: two transactions that want overlapping tickets
    queue on the first they share, never deadlock), and read them afresh, so
    what another daemon committed while we waited (a `#merge`: merged_into)
    is seen. PostgreSQL only (SQLite has one daemon). A ticket this
    transaction has changed already is held since then and not read again:
    that would drop the change. Nor is one it locked before (nobody can have
    changed it since; a bulk import locks its batch's tickets at once),
    unless that was inside a savepoint, whose rollback releases the lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    held = _held(session, _HELD_TICKETS)
    changed = {row.id for row in (*session.dirty, *session.new) if isinstance(row, Ticket)}
    wanted = sorted(set(ticket_ids) - changed - held)
    if wanted:
        query = select(Ticket).where(Ticket.id.in_(wanted)).order_by(Ticket.id).with_for_update()
        session.scalars(query, execution_options={"populate_existing": True, "autoflush": False}).all()
        if not session.in_nested_transaction():
            held.update(wanted)


_HELD_TICKETS = "mailtriage.held_tickets"


def _held(session: Session, name: str) -> set:
    """What the session's current transaction holds of `name`, kept in `session.info`."""
    transaction = session.get_transaction()
    if session.info.get(name, (None,))[0] is not transaction:
        session.info[name] = (transaction, set())
    held: set = session.info[name][1]
    return held


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)
