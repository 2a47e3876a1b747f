"""Bulk import: many messages per transaction, parsed ahead in a worker.

    source files ─► readahead (sha256, limits, parse: a worker) ─► batch ─► spine.flow per message

The source stays on disk, so a crash mid-batch loses nothing: re-running the
import skips what was committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.errors import TemporaryFailure
from mailtriage.model import Disposition, Item, Outcome
from mailtriage.pipeline import readahead
from mailtriage.pipeline.spine import MessageFailed, conversation, flow_in_batch, ref_of
from mailtriage.store import rawrows
from mailtriage.store.hints import HINTS, BatchHints
from mailtriage.store.lock import lock_conversations, lock_tickets
from mailtriage.store.schema import RawMessage

log = logging.getLogger(__name__)


def process_many(app: App, items: Iterable[Item | tuple[str, bytes]], clock: Callable[[], datetime], *,
                 acknowledge: bool = False, batch: int = 200) -> Iterator[Outcome]:
    """Bulk import: many messages per transaction. The source stays on disk,
    so a crash mid-batch loses nothing: re-running the import skips what
    was committed.

    A batch is first stored without savepoints (they cost a statement pair
    and a flush per message). If a message in it fails, the batch is rolled
    back and stored again with a savepoint per message, so the bad message
    is quarantined without undoing its neighbours.

    The next batch is parsed in a worker process while this one is stored
    (`readahead`); a batch's new raw rows are written in one statement, and the
    lookups are answered by `BatchHints` (a few queries a batch) instead of
    three to six queries a message."""
    for chunk in readahead.batches(items, batch, app.settings.limits, app.config.detector.languages):
        for attempt in range(1, _BATCH_ATTEMPTS + 1):
            try:
                outcomes = _store_batch_quickly_or_carefully(app, chunk, clock, acknowledge)
                break
            except SQLAlchemyError as exc:
                if _lost_a_race(exc) and attempt < _BATCH_ATTEMPTS:
                    log.warning("import batch of %d: %s; storing it again", len(chunk), _first_line(exc))
                    continue
                log.error("import batch of %d could not be stored: %s", len(chunk), exc)
                raise TemporaryFailure(f"could not store messages: {exc.__class__.__name__}") from exc
        yield from outcomes


_BATCH_ATTEMPTS = 3
_RACES = ("40P01", "40001")      # PostgreSQL: deadlock detected, serialization failure


def _lost_a_race(exc: SQLAlchemyError) -> bool:
    """The database rolled us back so that another transaction could go on
    (two imports, or an import and a daemon, wanting the same rows): the
    same batch, stored again, succeeds."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _RACES


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [exc.__class__.__name__])[0]


def _store_batch_quickly_or_carefully(app: App, chunk: list[readahead.Prepared],
                                      clock: Callable[[], datetime], acknowledge: bool) -> list[Outcome]:
    try:
        return _store_batch(app, chunk, clock, acknowledge, careful=False)
    except MessageFailed as failed:
        log.info("raw message %s failed in a batch of %d: storing the batch again, a savepoint a message",
                 failed, len(chunk))
        return _store_batch(app, chunk, clock, acknowledge, careful=True)


def _store_batch(app: App, chunk: list[readahead.Prepared], clock: Callable[[], datetime], acknowledge: bool,
                 careful: bool) -> list[Outcome]:
    with app.store.session() as session, session.begin():
        lock_conversations(session, (mid for item in chunk if item.mail is not None
                                     for mid in conversation(item.mail)))
        rows = rawrows.batch_rows(session, [(item.sha256, item.raw, item.source) for item in chunk], clock())
        hints = BatchHints.load(session, (item.mail for item in chunk if item.mail is not None))
        session.info[HINTS] = hints
        lock_tickets(session, (ticket.id for ticket in hints.tickets))    # at once, not a statement a message
        return [_import_one(app, session, raw, item, clock(), acknowledge, careful)
                for (raw, _new), item in zip(rows, chunk)]


def _import_one(app: App, session: Session, raw: RawMessage, item: readahead.Prepared, now: datetime,
                acknowledge: bool, careful: bool) -> Outcome:
    if raw.state != "pending":
        return Outcome(Disposition.DUPLICATE, None, ref_of(app, raw.ticket_id), raw.id)
    return flow_in_batch(app, session, raw, now, acknowledge, item.mail, item.delivered, item.read, careful=careful)
