"""Group commit: the messages that arrive while a commit is in flight are
stored together in the next transaction (one fsync), each with its own outcome.

    submit ─► queue ─► the writer thread, one batch per transaction:
        raw rows (one flush) ─► per message: savepoint ─► spine.flow ─► record
        ─► commit ─► each caller's future: its Outcome, or the exception (451)

Used by the SMTP/LMTP listener, where many sessions each wait for their own
commit; any source with concurrent callers can use it. What one message
does is what `spine.process` does: the same flow, the same dedup (a message
twice in a batch is stored once, as a second delivery would be), the same
Outcome. A message whose flow raises is quarantined alone (its savepoint is
rolled back, its raw row kept); one whose flow hits the database is rolled
back alone and processed on its own after the commit (`process_stored`),
pending if that fails too: its bytes are committed either way. When the
batch's own work fails (the raw rows, the commit: the database is down, the
disk full), every message of the batch gets the exception and nothing of it
is acknowledged: the caller answers 4xx and the MTA retries.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.errors import TemporaryFailure
from mailtriage.model import Disposition, Outcome
from mailtriage.pipeline.spine import flow, process_stored, reason_of, record, ref_of
from mailtriage.store import queries
from mailtriage.store.schema import RawMessage

log = logging.getLogger(__name__)

MAX_BATCH = 200          # messages per transaction: bounds the locks held and the work lost to a failed commit


@dataclass(frozen=True)
class Submission:
    """One message handed in; `source` as stored on the raw row (`smtp:PEER`)."""

    raw: bytes
    source: str
    envelope_rcpts: tuple[str, ...] = ()
    future: Future[Outcome] = field(default_factory=Future, compare=False)


def store_together(app: App, batch: list[Submission], now: datetime) -> list[Outcome | BaseException]:
    """One transaction for the whole batch; an Outcome or an exception per
    message, in order. Nothing here raises: a failed batch is an exception
    for each of its messages."""
    retry: list[int] = []
    try:
        outcomes = _in_one_transaction(app, batch, now, retry)
    except SQLAlchemyError as exc:
        log.error("could not store %d message(s) together: %s", len(batch), exc)
        failure = TemporaryFailure(f"could not store the message: {exc.__class__.__name__}")
        failure.__cause__ = exc
        return [failure] * len(batch)
    except Exception as exc:  # noqa: BLE001 - a bug before the commit: nothing stored, each caller says 4xx
        return [exc] * len(batch)
    return [_alone(app, batch[i], outcome, now) if i in retry and isinstance(outcome, Outcome) else outcome
            for i, outcome in enumerate(outcomes)]


def _in_one_transaction(app: App, batch: list[Submission], now: datetime,
                        retry: list[int]) -> list[Outcome | BaseException]:
    with app.store.session() as session, session.begin():
        _begin_writing(session)
        rows = _raw_rows(session, batch, now)
        outcomes: list[Outcome | BaseException] = []
        for i, (item, (row, new)) in enumerate(zip(batch, rows)):
            if row.state != "pending":           # taken before, or earlier in this batch
                outcomes.append(Outcome(Disposition.DUPLICATE, None, ref_of(app, row.ticket_id), row.id))
                continue
            outcome = _one(app, session, row, item, now) if new else None
            if outcome is None:                  # and a row a crash left pending: alone, as spine.process does
                retry.append(i)
                outcome = Outcome(Disposition.PENDING, None, None, row.id)
            outcomes.append(outcome)
    return outcomes


def _begin_writing(session: Session) -> None:
    """SQLite: take the write lock now. pysqlite would begin the transaction
    only at the first INSERT, after the dedup reads, and a savepoint opened
    outside a transaction would commit on its release."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _raw_rows(session: Session, batch: list[Submission], now: datetime) -> list[tuple[RawMessage, bool]]:
    """Each message's raw row, the new ones added in one flush; True for a
    row this batch adds (a message twice in the batch: True for the first)."""
    known: dict[str, RawMessage] = {}
    rows: list[tuple[RawMessage, bool]] = []
    for item in batch:
        digest = queries.sha256(item.raw)
        row = known.get(digest)
        if row is not None:
            rows.append((row, False))
            continue
        row = queries.find_raw(session, digest)
        new = row is None
        if row is None:
            row = RawMessage(sha256=digest, size=len(item.raw), data=item.raw, source=item.source[:200],
                             received_at=now, state="pending")
            session.add(row)
        known[digest] = row
        rows.append((row, new))
    session.flush()
    return rows


def _one(app: App, session: Session, raw: RawMessage, item: Submission, now: datetime) -> Outcome | None:
    """The flow in a savepoint. None: the database refused this message's
    work (rolled back alone; it is tried again on its own after the commit)."""
    savepoint = session.begin_nested()
    try:
        outcome = flow(app, session, raw, now, item.envelope_rcpts)
        record(raw, outcome)                 # inside the savepoint: one UPDATE of the raw row
        savepoint.commit()
        return outcome
    except SQLAlchemyError as exc:
        log.warning("raw message %s: database failure in a batch, tried alone after the commit: %s", raw.id, exc)
        savepoint.rollback()                 # raises if the whole transaction is gone: the batch fails
        return None
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the line
        savepoint.rollback()
        reason = reason_of(exc)
        log.warning("raw message %s quarantined: %s", raw.id, reason)
        outcome = Outcome(Disposition.QUARANTINED, reason, None, raw.id)
        record(raw, outcome)
        raw.error = "".join(traceback.format_exception(exc))
        return outcome


def _alone(app: App, item: Submission, pending: Outcome, now: datetime) -> Outcome:
    """After the commit: the message whose flow the database refused, in its
    own transaction as `spine.process` would; pending if that fails too
    (housekeeping retries it; its bytes are committed)."""
    assert pending.raw_id is not None
    try:
        return process_stored(app, pending.raw_id, now, envelope_rcpts=item.envelope_rcpts)
    except Exception as exc:  # noqa: BLE001 - stored: the acknowledgement of the bytes stands
        log.error("raw message %s: stored, processing failed (retried later): %s", pending.raw_id, exc)
        return pending


class GroupCommit:
    """The writer thread: takes whatever was submitted while it committed the
    last batch, and stores it as the next one. `app_ref` is called per batch
    (a SIGHUP may swap the config)."""

    def __init__(self, app_ref: Callable[[], App], max_batch: int = MAX_BATCH, name: str = "group-commit"):
        self.app_ref, self.max_batch = app_ref, max_batch
        self._queue: queue.SimpleQueue[Submission | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, raw: bytes, source: str, envelope_rcpts: tuple[str, ...] = ()) -> Future[Outcome]:
        item = Submission(raw, source, envelope_rcpts)
        self._queue.put(item)
        return item.future

    def close(self, timeout: float | None = None) -> None:
        """Store what was submitted, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self.run_once(batch)
            if stop:
                return

    def _next_batch(self) -> tuple[list[Submission], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def run_once(self, batch: list[Submission]) -> None:
        try:
            app = self.app_ref()
            results = store_together(app, batch, app.clock.now())
        except Exception as exc:  # noqa: BLE001 - every caller must hear back
            results = [exc] * len(batch)
        for item, result in zip(batch, results):
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
