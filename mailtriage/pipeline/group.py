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

Under load the bytes go first. A message that arrives alone, with nothing
waiting, is stored and processed in one transaction (its Outcome names the
ticket). When several arrive together, or earlier ones still wait to be
processed, the batch stores only the raw bytes (committed: the caller may
acknowledge, the Outcome is `pending`) and the writer processes them later,
in arrival order, a chunk per transaction, whenever no new mail is waiting:
the flow costs ten times what the raw store costs, and an MTA waiting for
our 250 should only wait for the fsync. A burst is taken at the speed of
the raw store; once the oldest deferred message has waited MAX_DEFER
seconds, a chunk is processed after each batch, so that under mail that
never stops the listener slows to the speed of the flow (the MTAs queue)
instead of the backlog growing without end. A crash or a stop before that leaves them pending in the database,
where the daemon's start (`recover`) and housekeeping (`retry`) process them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.errors import TemporaryFailure
from mailtriage.model import Disposition, Outcome
from mailtriage.pipeline.spine import flow, process_stored, quarantine_in_place, record, ref_of
from mailtriage.store import queries, rawrows, turns
from mailtriage.store.lock import begin_writing
from mailtriage.store.schema import RawMessage

log = logging.getLogger(__name__)

MAX_BATCH = 200          # messages per transaction: bounds the locks held and the work lost to a failed commit
CHUNK = 8                # deferred messages processed per transaction: a new batch waits for at most one chunk
IDLE = 0.02              # seconds without new mail before the writer looks at the deferred ones
IDLE_EXPECTED = 1.0      # seconds a message said to be on its way (MAIL FROM) holds the deferred processing back
MAX_DEFER = 30.0         # seconds past which deferred messages are processed between batches (a chunk each)


@dataclass(frozen=True)
class Submission:
    """One message handed in; `source` as stored on the raw row (`smtp:PEER`)."""

    raw: bytes
    source: str
    envelope_rcpts: tuple[str, ...] = ()
    future: Future[Outcome] = field(default_factory=Future, compare=False)


def store_together(app: App, batch: list[Submission], now: datetime, *,
                   process: bool = True) -> list[Outcome | BaseException]:
    """One transaction for the whole batch; an Outcome or an exception per
    message, in order. `process=False`: the raw bytes only (new messages are
    `pending`). Nothing here raises: a failed batch is an exception for each
    of its messages."""
    retry: list[int] = []
    try:
        outcomes = _in_one_transaction(app, batch, now, retry, process)
    except SQLAlchemyError as exc:
        log.error("could not store %d message(s) together: %s", len(batch), exc)
        failure = TemporaryFailure(f"could not store the message: {exc.__class__.__name__}")
        failure.__cause__ = exc
        return [failure] * len(batch)
    except Exception as exc:  # noqa: BLE001 - a bug before the commit: nothing stored, each caller says 4xx
        return [exc] * len(batch)
    return [_alone(app, batch[i].envelope_rcpts, outcome, now) if i in retry and isinstance(outcome, Outcome)
            else outcome for i, outcome in enumerate(outcomes)]


def _in_one_transaction(app: App, batch: list[Submission], now: datetime, retry: list[int],
                        process: bool) -> list[Outcome | BaseException]:
    with app.store.session() as session, turns.writing(session), session.begin():
        begin_writing(session)
        rows = rawrows.batch_rows(session, [(queries.sha256(item.raw), item.raw, item.source) for item in batch],
                                  now)
        outcomes: list[Outcome | BaseException] = []
        for i, (item, (row, new)) in enumerate(zip(batch, rows)):
            if row.state != "pending":           # taken before, or earlier in this batch
                outcomes.append(Outcome(Disposition.DUPLICATE, None, ref_of(app, row.ticket_id), row.id))
                continue
            outcome = _one(app, session, row, item.envelope_rcpts, now) if new and process else None
            if outcome is None:                  # and a row a crash left pending: alone, as spine.process does
                if process:
                    retry.append(i)
                outcome = Outcome(Disposition.PENDING, None, None, row.id)
            outcomes.append(outcome)
    return outcomes


def process_later(app: App, deferred: list[tuple[int, tuple[str, ...]]], now: datetime) -> list[Outcome]:
    """Process raw messages stored by `store_together(process=False)`, in one
    transaction (a savepoint each); `deferred`: (raw id, envelope recipients).
    A message processed meanwhile elsewhere is left alone; on a database
    failure they all stay pending (housekeeping retries them) and [] is returned."""
    done: list[tuple[tuple[str, ...], Outcome | None, int]] = []
    try:
        with app.store.session() as session, turns.writing(session), session.begin():
            begin_writing(session)
            for raw_id, rcpts in deferred:
                raw = session.get(RawMessage, raw_id, with_for_update=True)     # two daemons take turns
                if raw is not None and raw.state == "pending":
                    done.append((rcpts, _one(app, session, raw, rcpts, now), raw_id))
    except SQLAlchemyError as exc:
        log.error("%d stored message(s) not processed, retried later: %s", len(deferred), exc)
        return []
    return [outcome if outcome is not None else _alone(app, rcpts, Outcome(Disposition.PENDING, None, None, raw_id), now)
            for rcpts, outcome, raw_id in done]


def _one(app: App, session: Session, raw: RawMessage, rcpts: tuple[str, ...], now: datetime) -> Outcome | None:
    """The flow in a savepoint. None: the database refused this message's
    work (rolled back alone; it is tried again on its own after the commit)."""
    savepoint = session.begin_nested()
    try:
        outcome = flow(app, session, raw, now, rcpts)
        record(raw, outcome)                 # inside the savepoint: one UPDATE of the raw row
        savepoint.commit()
        return outcome
    except SQLAlchemyError as exc:
        log.warning("raw message %s: database failure in a batch, tried alone after the commit: %s", raw.id, exc)
        savepoint.rollback()                 # raises if the whole transaction is gone: the batch fails
        return None
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the line
        savepoint.rollback()
        return quarantine_in_place(raw, exc)


def _alone(app: App, rcpts: tuple[str, ...], pending: Outcome, now: datetime) -> Outcome:
    """After the commit: the message whose flow the database refused, in its
    own transaction as `spine.process` would; pending if that fails too
    (housekeeping retries it; its bytes are committed)."""
    assert pending.raw_id is not None
    try:
        return process_stored(app, pending.raw_id, now, envelope_rcpts=rcpts)
    except Exception as exc:  # noqa: BLE001 - stored: the acknowledgement of the bytes stands
        log.error("raw message %s: stored, processing failed (retried later): %s", pending.raw_id, exc)
        return pending


class GroupCommit:
    """The writer thread: takes whatever was submitted while it committed the
    last batch, and stores it as the next one; processes deferred messages
    when no mail waits. `app_ref` is called per transaction (a SIGHUP may
    swap the config); `processed` hears each deferred message's Outcome."""

    def __init__(self, app_ref: Callable[[], App], processed: Callable[[Outcome], None] | None = None, *,
                 max_batch: int = MAX_BATCH, name: str = "group-commit"):
        self.app_ref, self.processed, self.max_batch = app_ref, processed, max_batch
        self.deferred: deque[tuple[int, tuple[str, ...], float]] = deque()   # raw id, rcpts, when
        self._queue: queue.SimpleQueue[Submission | None] = queue.SimpleQueue()
        self._deadline: float | None = None         # set by close(): stop processing deferred mail then
        self._on_way, self._expected = 0, 0.0       # messages said to be on their way; when the last was
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def expect(self) -> None:
        """A message is on its way (an SMTP MAIL FROM): the deferred processing
        waits, so that its batch does not wait for that."""
        with self._lock:
            self._on_way += 1
            self._expected = time.monotonic()

    def given_up(self) -> None:
        """A message said to be on its way will not come (RSET, QUIT, another
        MAIL FROM without a DATA): the deferred processing need not wait for it."""
        with self._lock:
            self._on_way = max(0, self._on_way - 1)

    def busy(self) -> bool:
        """Whether a message is on its way (a transaction given up, without a
        DATA, counts for at most IDLE_EXPECTED seconds)."""
        with self._lock:
            if self._on_way and time.monotonic() - self._expected > IDLE_EXPECTED:
                self._on_way = 0
            return self._on_way > 0

    def submit(self, raw: bytes, source: str, envelope_rcpts: tuple[str, ...] = ()) -> Future[Outcome]:
        item = Submission(raw, source, envelope_rcpts)
        with self._lock:
            self._on_way = max(0, self._on_way - 1)
        self._queue.put(item)
        return item.future

    def close(self, timeout: float = 5.0) -> None:
        """Store what was submitted, process what was deferred for up to
        `timeout` seconds (the rest stays pending for recover/housekeeping),
        then stop the thread."""
        self._deadline = time.monotonic() + timeout
        self._queue.put(None)
        self._thread.join(timeout + 5.0)

    def _run(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self.run_once(batch)
                if self.deferred and time.monotonic() - self.deferred[0][2] > MAX_DEFER:
                    self.process_deferred()
            if stop:
                while self.deferred and time.monotonic() < (self._deadline or 0.0):
                    self.process_deferred()
                return

    def _next_batch(self) -> tuple[list[Submission], bool]:
        while True:
            try:
                first = self._queue.get(timeout=IDLE) if self.deferred else self._queue.get()
                break
            except queue.Empty:
                if not self.busy():
                    self.process_deferred()             # no new mail: catch up
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
        """Store one batch and answer its callers. Alone and with nothing
        deferred, a message is processed in the same transaction."""
        process = len(batch) == 1 and not self.deferred and not self.busy()
        try:
            app = self.app_ref()
            results = store_together(app, batch, app.clock.now(), process=process)
        except Exception as exc:  # noqa: BLE001 - every caller must hear back
            results = [exc] * len(batch)
        at = time.monotonic()
        for item, result in zip(batch, results):
            if isinstance(result, BaseException):
                item.future.set_exception(result)
                continue
            if result.disposition is Disposition.PENDING and not process and result.raw_id is not None:
                self.deferred.append((result.raw_id, item.envelope_rcpts, at))
            item.future.set_result(result)

    def process_deferred(self) -> None:
        """One chunk of the deferred messages, oldest first, in one transaction."""
        chunk = [self.deferred.popleft() for _ in range(min(CHUNK, len(self.deferred)))]
        try:
            app = self.app_ref()
            outcomes = process_later(app, [(raw_id, rcpts) for raw_id, rcpts, _ in chunk], app.clock.now())
        except Exception:  # noqa: BLE001 - they stay pending; housekeeping retries them
            log.exception("%d stored message(s) not processed, retried later", len(chunk))
            return
        for outcome in outcomes:
            log.info("raw message %s processed after its acknowledgement: %s", outcome.raw_id, outcome.line())
            if self.processed is not None:
                try:
                    self.processed(outcome)
                except Exception:  # noqa: BLE001 - a metrics hook must not stop the writer
                    log.exception("after raw message %s", outcome.raw_id)
