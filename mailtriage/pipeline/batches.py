"""Batches: several messages of one source (an IMAP batch) stored in one
transaction, then processed in one, instead of two commits per message.

    accept_many (one commit) ─► the caller flags or moves them ─► process_many_stored (one commit)

`accept_many` is `spine.accept` for a batch: all of it is durable, or none
of it (TemporaryFailure), so the caller acknowledges nothing it has not
committed. `process_many_stored` runs `spine.flow` for each message; a
message that breaks a step is quarantined with the reason without undoing
its neighbours (the group is processed again, a savepoint a message). The
mails are parsed before the transaction (`parsed`), and the lookups are
answered by `store.hints.BatchHints` where it can, as for a bulk import. A
database failure of the group transaction falls back to
`spine.process_stored`, one message at a time, so one lost race (a
PostgreSQL deadlock with another daemon) costs a retry, not the batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.errors import TemporaryFailure
from mailtriage.mail import limits
from mailtriage.mail.parse import parse
from mailtriage.model import Disposition, Outcome, ParsedMail
from mailtriage.pipeline.spine import MessageFailed, conversation, flow_in_batch, process_stored, ref_of
from mailtriage.store import queries, rawrows, turns
from mailtriage.store.hints import HINTS, BatchHints
from mailtriage.store.lock import begin_writing, lock_conversations
from mailtriage.store.schema import RawMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    """One message of a group to process: its raw row and how to take it."""

    raw_id: int
    acknowledge: bool = True
    delivered: datetime | None = None        # history: when the server received it
    mail: ParsedMail | None = None           # parsed before the transaction (`parsed`), or not


def parsed(app: App, raw: bytes) -> ParsedMail | None:
    """The raw limits checked and the mail parsed, before the group's
    transaction takes the write lock; None: the flow meets the problem again
    inside the transaction, and quarantines the message."""
    if limits.check_raw(raw, app.settings.limits) is not None:
        return None
    try:
        return parse(raw)
    except Exception:  # noqa: BLE001 - see above
        return None


def accept_many(app: App, raws: list[bytes], now: datetime, source: str) -> list[tuple[int, Outcome | None]]:
    """Commit the raw bytes of a batch durably, in one transaction. Per message,
    as `spine.accept`: the raw id, and an Outcome when these exact bytes were
    already accepted and processed before (the same bytes twice in the batch
    are stored once)."""
    digests = [queries.sha256(raw) for raw in raws]
    try:
        with app.store.session() as session, turns.writing(session), session.begin():
            rows = rawrows.batch_rows(session, [(digest, raw, source) for raw, digest in zip(raws, digests)], now)
            return [(row.id, None if new else _seen(app, row)) for row, new in rows]
    except SQLAlchemyError as exc:
        log.error("could not store %d message(s) (%d bytes from %s): %s", len(raws), sum(map(len, raws)),
                  source, exc)
        raise TemporaryFailure(f"could not store the messages: {exc.__class__.__name__}") from exc


def _seen(app: App, row: RawMessage) -> Outcome | None:
    if row.state == "pending":
        return None                                 # a crash left it half-way: go on
    return Outcome(Disposition.DUPLICATE, None, ref_of(app, row.ticket_id), row.id)


def process_many_stored(app: App, group: list[Stored], now: datetime) -> list[Outcome | None]:
    """Run stored raw messages through the flow in one transaction; the
    outcomes in the order of `group` (ids must be distinct). None: the
    database failed this message; it stays pending and the housekeeping job
    takes it again.

    As a bulk import does (pipeline.bulk), the group is first processed
    without savepoints: a savepoint a message costs a statement pair and a
    flush of the session's changes a message, a fifth of the daemon's work in
    a burst. If a message fails, the group is rolled back and processed again
    with a savepoint a message, so the bad one is quarantined without undoing
    its neighbours."""
    # A mail that could not be parsed before fails again in the flow: such a group is taken carefully at once.
    careful = any(item.mail is None for item in group)
    try:
        try:
            return _process_group(app, group, now, careful)
        except MessageFailed as failed:
            log.info("raw message %s failed in a group of %d: processing the group again, a savepoint a message",
                     failed, len(group))
            return _process_group(app, group, now, careful=True)
    except SQLAlchemyError as exc:
        log.warning("a group of %d message(s) could not be processed together (%s): one at a time",
                    len(group), exc.__class__.__name__)
    return [_process_alone(app, item, now) for item in group]


def _process_group(app: App, group: list[Stored], now: datetime, careful: bool) -> list[Outcome | None]:
    with app.store.session() as session, turns.writing(session), session.begin():
        begin_writing(session)
        # FOR UPDATE: two daemons retrying the same message take turns (a no-op on SQLite).
        rows = {row.id: row for row in session.scalars(
            select(RawMessage).where(RawMessage.id.in_([item.raw_id for item in group]))
            .order_by(RawMessage.id).with_for_update())}
        mails = [item.mail for item in group if item.mail is not None]
        if len(mails) == len(group):        # hints leave out what is not among the mails' own keys
            lock_conversations(session, (mid for mail in mails for mid in conversation(mail)))
            session.info[HINTS] = BatchHints.load(session, mails)
        return [_process_one(app, session, rows[item.raw_id], item, now, careful) for item in group]


def _process_alone(app: App, item: Stored, now: datetime) -> Outcome | None:
    try:
        return process_stored(app, item.raw_id, now, acknowledge=item.acknowledge, delivered=item.delivered)
    except TemporaryFailure as exc:
        log.error("raw message %s: stored, processing failed (retried later): %s", item.raw_id, exc)
        return None


def _process_one(app: App, session: Session, raw: RawMessage, item: Stored, now: datetime,
                 careful: bool) -> Outcome:
    if raw.state not in ("pending", "quarantined"):         # processed meanwhile, elsewhere
        return Outcome.parse(raw.outcome or raw.state, ref_of(app, raw.ticket_id), raw.id)
    return flow_in_batch(app, session, raw, now, item.acknowledge, item.mail, item.delivered, careful=careful)
