"""The outbox: outgoing mail as rows, written in the ticket's transaction,
sent later by `flush()` — the one `run_once(now)` of the sender loop.

Exactly once: a row is marked sent only after the relay (or the Maildir)
has taken it; the Maildir sink is idempotent by row, so a crash between
delivery and commit does not give two copies there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailtriage.notify.compose import Outgoing, compose, new_message_id
from mailtriage.notify.send import PermanentFailure, Sender, TemporaryFailure
from mailtriage.store.schema import Event, OutboxRow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12


def enqueue(session: Session, mail: Outgoing, *, kind: str, now: datetime,
            ticket_id: int | None, message_id: str | None = None) -> OutboxRow:
    """Compose `mail` and add it to the outbox in the caller's transaction."""
    domain = mail.from_addr.partition("@")[2]
    message_id = message_id or new_message_id(domain)
    row = OutboxRow(
        ticket_id=ticket_id, kind=kind, message_id=message_id, mail_from=mail.from_addr,
        recipients=list(mail.to + mail.cc), data=compose(mail, now, message_id),
        created_at=now, due_at=now, status="pending", attempts=0,
    )
    session.add(row)
    return row


def pending(session: Session, now: datetime | None = None, limit: int = 100) -> list[OutboxRow]:
    query = select(OutboxRow).where(OutboxRow.status == "pending")
    if now is not None:
        query = query.where(OutboxRow.due_at <= now)
    query = query.order_by(OutboxRow.due_at, OutboxRow.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)   # several daemons, one database
    return list(session.scalars(query))


def backoff(attempts: int) -> timedelta:
    """1 min, 2, 4 … capped at 1 hour."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


@dataclass
class FlushResult:
    sent: int = 0
    deferred: int = 0
    failed: int = 0


def flush(sessions, sender: Sender, now: datetime, limit: int = 100) -> FlushResult:  # type: ignore[no-untyped-def]
    """Send every due row once; one transaction per row so progress is kept."""
    result = FlushResult()
    while True:
        with sessions() as session, session.begin():
            rows = pending(session, now, limit=1)
            if not rows:
                return result
            _send_one(session, rows[0], sender, now, result)
        if result.sent + result.deferred + result.failed >= limit:
            return result


def _send_one(session: Session, row: OutboxRow, sender: Sender, now: datetime, result: FlushResult) -> None:
    row.attempts += 1
    try:
        sender.send(row.id, row.mail_from, list(row.recipients), row.data)
    except TemporaryFailure as exc:
        if row.attempts >= MAX_ATTEMPTS:
            _give_up(session, row, f"gave up after {row.attempts} attempts: {exc}", now)
            result.failed += 1
            return
        row.last_error = str(exc)
        row.due_at = now + backoff(row.attempts)
        result.deferred += 1
        log.warning("outbox %s (%s): deferred: %s", row.id, row.message_id, exc)
        return
    except PermanentFailure as exc:
        _give_up(session, row, str(exc), now)
        result.failed += 1
        return
    row.status, row.sent_at, row.last_error = "sent", now, None
    result.sent += 1


def _give_up(session: Session, row: OutboxRow, why: str, now: datetime) -> None:
    row.status, row.last_error = "failed", why
    log.error("outbox %s (%s): failed: %s", row.id, row.message_id, why)
    if row.ticket_id is not None:
        session.add(Event(ticket_id=row.ticket_id, at=now, type="send-failed",
                          detail=f"{row.kind} to {', '.join(row.recipients)}: {why}"))
