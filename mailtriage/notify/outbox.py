"""The outbox: outgoing mail as rows, written in the ticket's transaction,
sent later by `flush()`; `run_once(app, now)` is the sender job of the
daemon and of `mailtriage outbox flush`.

    pending ─claim─► sending ─every recipient took it─► sent
                        │    ├─a 4xx to some recipient, a lost connection─► pending (due later, backoff)
                        │    ├─the relay is down or refuses our login─► pending (no attempt counted)
                        │    └─a 5xx to a recipient, or too many attempts─► failed (+ an event on the ticket)
                        └─(`outbox retry`: failed ─► pending, for the recipients it failed for)
    (every recipient hard-bounced before) ─enqueue─► suppressed

Per recipient (RFC 5321): `deliveries` records each recipient's last reply
and state (sent, deferred, failed); a retry goes only to the recipients
still due, so nobody gets a second copy. A mail that some recipient
refused for good ends `failed`, even if the others have it.

The relay's own trouble (notify/relay.py) says nothing about the mail: the
run stops at once (a silent relay costs one timeout, not one per mail),
the mail is put back without counting an attempt, every pending mail waits
for the relay's next try, and `max_attempts` is not used up by an outage.

The states are `model.OutboxStatus`; the retry schedule is a `backoff.Backoff`
without jitter, so `due_at` is a time an operator can read and predict.

Exactly once: claiming a row commits `sending` (with its Message-ID, fixed
at enqueue) before a byte goes out, and `sent` is committed as soon as the
relay has answered, before the next mail and before QUIT. A daemon that
dies in between leaves the row in `sending`; after a restart it is sent
again — once, with the same Message-ID. The one window left is the relay's
250 arriving and the daemon dying before its commit (RFC 1047, one mail at
most): the re-send carries the same Message-ID, which receiving systems
treat as the same message. The Maildir sink is idempotent per row, so it never holds two
copies. A claim is a conditional UPDATE, so two senders (the daemon and a
manual `outbox flush`, or several daemons on PostgreSQL) never take the same row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol, Sequence, cast

from sqlalchemy import CursorResult, Result, Table, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailtriage.backoff import Backoff
from mailtriage.config.values import Settings, SmtpOut
from mailtriage.errors import DeliveryDeferred, RelayUnavailable
from mailtriage.model import OutboxStatus
from mailtriage.notify import deliveries
from mailtriage.notify.deliveries import Reply
from mailtriage.notify.compose import Outgoing, compose, new_message_id
from mailtriage.notify.relay import Relay
from mailtriage.notify.send import Sender, make_sender
from mailtriage.store import Store, hygiene, outboxrows, queries, turns
from mailtriage.store.schema import Event, OutboxRow


class Running(Protocol):
    """What the sender job needs of the running App (the wiring module is not imported here)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def store(self) -> Store: ...

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
CLAIM_AT_ONCE = 16              # rows claimed in one commit
UNSENT = outboxrows.UNSENT                                 # what a sender may still take


def enqueue(session: Session, mail: Outgoing, *, kind: str, now: datetime,
            ticket_id: int | None, message_id: str | None = None,
            suppressed: set[str] | None = None) -> OutboxRow:
    """Compose `mail` and add it to the outbox in the caller's transaction.

    Addresses that hard-bounced (the `suppressions` table) are left out of
    the envelope; a mail left with nobody to go to is kept as `suppressed`.
    A caller that read the suppressions of its recipients already (the SLA
    sweep, once per batch) passes those that hard-bounced, lower-cased."""
    row = OutboxRow(**prepare(session, mail, kind=kind, now=now, ticket_id=ticket_id, message_id=message_id,
                              suppressed=suppressed))
    session.add(row)
    queries.note_outgoing(session, row.message_id)
    return row


def prepare(session: Session, mail: Outgoing, *, kind: str, now: datetime, ticket_id: int | None,
            message_id: str | None = None, suppressed: set[str] | None = None) -> dict[str, Any]:
    """The outbox row `enqueue` adds, as column values: a caller with many
    (the SLA sweep's batch) writes them with one `insert_rows`."""
    domain = mail.from_addr.partition("@")[2]
    message_id = message_id or new_message_id(domain)
    wanted = list(dict.fromkeys(mail.to + mail.cc))
    blocked = hygiene.suppressed(session, wanted) if suppressed is None else suppressed
    recipients = [address for address in wanted if address.lower() not in blocked]
    return dict(
        ticket_id=ticket_id, kind=kind, message_id=message_id, mail_from=mail.from_addr,
        recipients=recipients or wanted, data=compose(mail, now, message_id),
        created_at=now, due_at=now, attempts=0,
        status=OutboxStatus.PENDING if recipients else OutboxStatus.SUPPRESSED,
        last_error=f"not sent to {', '.join(sorted(blocked))}: hard-bounced before" if blocked else None,
    )


def insert_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Rows from `prepare`, in one Core statement (the ORM inserts one by one
    on SQLite to read back each id; its bulk INSERT costs twice as much)."""
    if rows:
        session.connection().execute(insert(cast(Table, OutboxRow.__table__)), rows)
    for row in rows:
        queries.note_outgoing(session, row["message_id"])


def next_due(session: Session) -> datetime | None:
    """When the next row falls due (the daemon sleeps until then, not a whole tick)."""
    return session.scalar(select(func.min(OutboxRow.due_at)).where(OutboxRow.status.in_(UNSENT)))


@dataclass(frozen=True)
class Retry:
    """When to try again after a 4xx or a lost connection, and when to stop."""

    backoff: Backoff = Backoff.fixed(timedelta(minutes=1), timedelta(hours=1))
    max_attempts: int = MAX_ATTEMPTS
    lease: timedelta = timedelta(minutes=5)     # a `sending` row older than this is taken back

    @classmethod
    def from_settings(cls, smtp_out: SmtpOut) -> "Retry":
        """`retry_first`, doubling up to `retry_max`; `max_attempts`; `lease`."""
        lease = smtp_out.lease or max(4 * smtp_out.timeout, timedelta(minutes=2))
        return cls(Backoff.fixed(smtp_out.retry_first, smtp_out.retry_max), smtp_out.max_attempts, lease)


@dataclass
class FlushResult:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    relay_down: str | None = None         # why the run stopped early: the relay's trouble …
    relay_back_at: datetime | None = None  # … and when it is tried again

    @property
    def total(self) -> int:
        return self.sent + self.deferred + self.failed


@dataclass(frozen=True)
class Claimed:
    """A row taken for sending, detached from any session (no transaction is
    open while the relay is talked to)."""

    id: int
    ticket_id: int | None
    kind: str
    message_id: str
    mail_from: str
    recipients: list[str]             # those still to get it (not every recipient of the row)
    data: bytes
    attempts: int
    resumed: bool                     # it was left in `sending` by a daemon that died


def run_once(app: Running, now: datetime, *, limit: int = 100, stop: Callable[[], bool] | None = None,
             relay: Relay | None = None, progress: Callable[[], None] | None = None) -> FlushResult:
    """The sender job: send what is due through the configured relay or Maildir.
    `relay`: the daemon's record of the relay across runs (default: a fresh one);
    `progress()`: called before each mail (the daemon tells systemd it is alive)."""
    settings = app.settings
    sender = make_sender(settings.smtp_out, settings.path("."))
    return flush(app.store.sessions, sender, now, limit, retry=Retry.from_settings(settings.smtp_out),
                 stop=stop, prefix=settings.ticket_prefix,
                 relay=relay or Relay.for_settings(settings.smtp_out), progress=progress)


def flush(sessions: sessionmaker[Session], sender: Sender, now: datetime, limit: int = 100, *,
          retry: Retry = Retry(), stop: Callable[[], bool] | None = None, prefix: str = "MT",
          relay: Relay | None = None, progress: Callable[[], None] | None = None) -> FlushResult:
    """Send due rows, one at a time, until none is due, `limit` were tried,
    `stop()`, or the relay fails as a relay. `progress()` before each one: a
    flush of slow mails is long, and a daemon killed mid-flush sends them again.
    Rows are claimed CLAIM_AT_ONCE at a time in one commit (the lease runs from
    `now` either way); those not tried go back to pending, uncounted."""
    relay = relay or Relay("outgoing relay", retry.backoff)
    result = FlushResult()
    try:
        if not relay.ready(now):
            result.relay_down, result.relay_back_at = relay.outage.cause, relay.not_before
            return result
        while result.total < limit and not (stop is not None and stop()):
            batch = claim_many(sessions, now, retry, min(CLAIM_AT_ONCE, limit - result.total))
            if not batch:
                if progress is not None:
                    progress()                  # as a mail would have: the look was a step too
                break
            _send(sessions, sender, batch, now, retry, result, prefix, relay, stop, progress)
            if result.relay_down is not None:
                break
    finally:
        sender.close()
    return result


def _send(sessions: sessionmaker[Session], sender: Sender, batch: list[Claimed], now: datetime, retry: Retry,
          result: FlushResult, prefix: str, relay: Relay, stop: Callable[[], bool] | None,
          progress: Callable[[], None] | None) -> None:
    """Send a claimed batch, one mail at a time, each answer committed before
    the next mail goes out (module docstring: a crash re-sends one mail at most)."""
    for index, claimed in enumerate(batch):
        if result.relay_down is not None or (stop is not None and stop()):
            _put_back(sessions, batch[index:], result.relay_back_at or now)
            return
        if progress is not None:
            progress()
        try:
            replies = _deliver(sender, claimed, prefix)
        except RelayUnavailable as exc:
            _relay_failed(sessions, claimed, exc, relay.failed(exc, now), now, retry, result, prefix)
            continue                            # the rest of the batch goes back, above
        except DeliveryDeferred as exc:         # the connection broke mid-mail: this mail again later
            replies = dict.fromkeys(claimed.recipients, Reply(None, str(exc)))
        relay.worked(now)
        _record(sessions, [(claimed, replies)], now, retry, result, prefix)


def claim(sessions: sessionmaker[Session], now: datetime, retry: Retry = Retry()) -> Claimed | None:
    """Commit `sending` on the next due row and return it (None: nothing is due)."""
    return next(iter(claim_many(sessions, now, retry, 1)), None)


def claim_many(sessions: sessionmaker[Session], now: datetime, retry: Retry = Retry(),
               count: int = CLAIM_AT_ONCE) -> list[Claimed]:
    """Commit `sending` on up to `count` due rows, in one transaction."""
    taken: list[Claimed] = []
    with sessions() as session, turns.writing(session), session.begin():
        for row in outboxrows.due(session, now, count + 8):
            if len(taken) < count and outboxrows.take(session, row, now + retry.lease):
                taken.append(Claimed(row.id, row.ticket_id, row.kind, row.message_id, row.mail_from,
                                     deliveries.still_due(row.recipients, row.deliveries), row.data,
                                     row.attempts + 1, row.status == OutboxStatus.SENDING))
    return taken


def _put_back(sessions: sessionmaker[Session], unsent: list[Claimed], due: datetime) -> None:
    """Claimed but not tried: pending again, the attempt not counted."""
    with sessions() as session, turns.writing(session), session.begin():
        for claimed in unsent:
            row = session.get(OutboxRow, claimed.id)
            if row is not None and row.status == OutboxStatus.SENDING and row.attempts == claimed.attempts:
                row.status, row.attempts, row.due_at = OutboxStatus.PENDING, claimed.attempts - 1, due


def reclaim(sessions: sessionmaker[Session], now: datetime) -> int:
    """Make every `sending` row due now: for a daemon starting on SQLite, where
    the database lock proves that no other daemon is sending. (PostgreSQL
    daemons wait for the lease instead: another daemon may be mid-send.)"""
    with sessions() as session, turns.writing(session), session.begin():
        return _rowcount(session.execute(
            update(OutboxRow).where(OutboxRow.status == OutboxStatus.SENDING).values(due_at=now)
            .execution_options(synchronize_session=False)))


@dataclass(frozen=True)
class Retried:
    """One mail `outbox retry` was asked about; `status` is what it was."""

    id: int
    kind: str
    status: OutboxStatus
    recipients: list[str]             # who it goes to now (failed ones only)


def retry_failed(sessions: sessionmaker[Session], ids: Sequence[int] | None, now: datetime) -> list[Retried]:
    """Put failed mail (`ids`, or all of it) back to pending, due now, with a
    fresh count of attempts: the operator has fixed the cause, and a mail given
    up after `max_attempts` would otherwise get a single try. Only the
    recipients it failed for get it; those that had it do not get it twice.
    Rows that are not failed are returned as they are, untouched."""
    query = select(OutboxRow).order_by(OutboxRow.id)
    query = query.where(OutboxRow.id.in_(ids)) if ids is not None else \
        query.where(OutboxRow.status == OutboxStatus.FAILED)
    with sessions() as session, turns.writing(session), session.begin():
        out = []
        for row in session.scalars(query):
            if row.status != OutboxStatus.FAILED:
                out.append(Retried(row.id, row.kind, row.status, []))
                continue
            row.deliveries = deliveries.forget_failed(row.deliveries)
            row.status, row.due_at, row.attempts, row.last_error = OutboxStatus.PENDING, now, 0, None
            again = deliveries.still_due(row.recipients, row.deliveries)
            if row.ticket_id is not None:
                session.add(Event(ticket_id=row.ticket_id, at=now, type="send-retried",
                                  detail=f"{row.kind} to {', '.join(again)}: put back by `outbox retry`"))
            out.append(Retried(row.id, row.kind, OutboxStatus.FAILED, again))
        return out


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE matched (its result is a CursorResult; the stubs say Result)."""
    return cast(CursorResult[Any], result).rowcount


def _deliver(sender: Sender, row: Claimed, prefix: str) -> dict[str, Reply]:
    if row.resumed:
        log.warning("%s: was being sent when the daemon stopped; sending it again, with the same "
                    "Message-ID", _about(row, prefix))
    return sender.send(row.id, row.mail_from, row.recipients, row.data)


def _record(sessions: sessionmaker[Session], answered: list[tuple[Claimed, dict[str, Reply]]], now: datetime,
            retry: Retry, result: FlushResult, prefix: str) -> None:
    """Write what each recipient's reply means for the rows (deliveries.settle), in one transaction."""
    if not answered:
        return
    with sessions() as session, turns.writing(session), session.begin():
        for claimed, replies in answered:
            row = outboxrows.state(session, claimed.id)
            if row is not None:
                _settle(session, row, claimed, replies, now, retry, result, _about(claimed, prefix))


def _settle(session: Session, row: outboxrows.State, claimed: Claimed, replies: dict[str, Reply], now: datetime,
            retry: Retry, result: FlushResult, about: str) -> None:
    outcome = deliveries.settle(row.deliveries, replies, claimed.attempts,
                                last=claimed.attempts >= retry.max_attempts)
    status = outcome.status(row.recipients)
    last_error = deliveries.summary(row.recipients, outcome.deliveries)
    again = None
    if outcome.sent:
        log.info("%s: sent to %s", about, ", ".join(outcome.sent))
    if outcome.failed:
        _give_up(session, claimed, outcome, now)
    if status == OutboxStatus.PENDING:
        again = now + retry.backoff.after(claimed.attempts)
        log.warning("%s: deferred (attempt %d, next at %s): %s", about, claimed.attempts,
                    again.isoformat(timespec="seconds"), last_error)
    outboxrows.settle(session, claimed.id, deliveries=outcome.deliveries, status=status, last_error=last_error,
                      sent_now=now if outcome.sent else None, again=again)
    result.sent += status == OutboxStatus.SENT
    result.deferred += status == OutboxStatus.PENDING
    result.failed += status == OutboxStatus.FAILED


def _relay_failed(sessions: sessionmaker[Session], claimed: Claimed, exc: RelayUnavailable, back_at: datetime,
                  now: datetime, retry: Retry, result: FlushResult, prefix: str) -> None:
    """The relay failed as a relay: the mail goes back without an attempt
    counted (unless the relay went silent mid-mail, which may be the mail's
    doing), and every pending mail due before the relay's next try waits for it."""
    result.relay_down, result.relay_back_at = exc.cause, back_at
    if exc.charged:
        _record(sessions, [(claimed, dict.fromkeys(claimed.recipients, Reply(None, str(exc))))],
                now, retry, result, prefix)
    else:
        log.debug("%s: back to pending, the relay is down: %s", _about(claimed, prefix), exc)
        with sessions() as session, turns.writing(session), session.begin():
            row = session.get(OutboxRow, claimed.id)
            if row is not None:
                row.status, row.attempts, row.due_at = OutboxStatus.PENDING, claimed.attempts - 1, back_at
                row.last_error = f"relay: {exc}"
        result.deferred += 1
    with sessions() as session, turns.writing(session), session.begin():
        session.execute(update(OutboxRow)
                        .where(OutboxRow.status == OutboxStatus.PENDING, OutboxRow.due_at < back_at)
                        .values(due_at=back_at).execution_options(synchronize_session=False))


def _about(row: Claimed, prefix: str) -> str:
    ticket = f"{prefix}-{row.ticket_id}" if row.ticket_id is not None else "no ticket"
    return f"outbox {row.id} ({ticket}, {row.kind} {row.message_id})"


def _give_up(session: Session, claimed: Claimed, outcome: deliveries.Outcome, now: datetime) -> None:
    why = "; ".join(f"{address}: {outcome.deliveries[address]['reply']}" for address in outcome.failed)
    log.error("outbox %s (%s): failed: %s", claimed.id, claimed.message_id, why)
    if claimed.ticket_id is not None:
        session.add(Event(ticket_id=claimed.ticket_id, at=now, type="send-failed",
                          detail=f"{claimed.kind} to {why}"))
