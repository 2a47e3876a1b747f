"""The spine: raw bytes in, an Outcome out.

    store raw ─► limits ─► parse ─► dedupe ─► guards ─┬─► thread ─► classify ─► apply ─► outbox
                                                      ├─► our own mail back: ignored:loop
                                                      └─► bounce: an event on its ticket, hard bounces suppressed

`accept()` commits the raw bytes before anything else happens (the caller
may then answer 250 or flag the IMAP message); `process_stored()` runs the
rest in one transaction, and a message that breaks a step, or is over a
limit, is quarantined with the reason, never lost and never blocking the
next one. `retry_quarantined()` is the housekeeping job's `run_once`: it
takes quarantined messages (and ones a crash or a database outage left
pending) through again, a bounded number of times.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailtriage.mail import bounces
from mailtriage.mail import guards
from mailtriage.mail import limits
from mailtriage.pipeline import readahead
from mailtriage.app import App
from mailtriage.errors import TemporaryFailure
from mailtriage.model import ParsedMail
from mailtriage.mail.parse import parse
from mailtriage.config.values import Settings
from mailtriage.store import queries
from mailtriage.store.lock import lock_conversations
from mailtriage.store.schema import RawMessage
from mailtriage.tickets.transitions import agent_for
from mailtriage.tickets.customers import Context, apply

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5                          # automatic tries of one message; `quarantine retry` has no limit
STALE_AFTER = timedelta(minutes=5)        # a message pending this long was interrupted
_LOOP_REASONS = ("own-address", "x-loop")
_BULK_SOURCES = ("maildir:", "mbox:")     # history imports: no acknowledgement on a retry either


@dataclass(frozen=True)
class Outcome:
    action: str                   # new, reply, duplicate, ignored:REASON, quarantined:REASON
    ref: str | None = None        # the ticket, when there is one
    raw_id: int | None = None

    def line(self) -> str:
        return f"{self.ref or '-'} {self.action}"


def process(app: App, raw: bytes, now: datetime, *, source: str = "stdin",
            envelope_rcpts: tuple[str, ...] = (), acknowledge: bool = True) -> Outcome:
    """Accept and process one message (ingest, SMTP, IMAP all come through here)."""
    raw_id, seen = accept(app, raw, now, source)
    if seen is not None:
        return seen
    return process_stored(app, raw_id, now, envelope_rcpts=envelope_rcpts, acknowledge=acknowledge)


def accept(app: App, raw: bytes, now: datetime, source: str) -> tuple[int, Outcome | None]:
    """Commit the raw bytes durably. Returns the raw id, and an Outcome when
    these exact bytes were already accepted and processed before."""
    digest = queries.sha256(raw)
    try:
        with app.store.session() as session, session.begin():
            existing = queries.find_raw(session, digest)
            if existing is not None:
                if existing.state == "pending":
                    return existing.id, None            # a crash left it half-way: go on
                return existing.id, Outcome("duplicate", _ref(app, existing.ticket_id), existing.id)
            row = RawMessage(sha256=digest, size=len(raw), data=raw, source=source[:200],
                             received_at=now, state="pending")
            session.add(row)
            session.flush()
            return row.id, None
    except SQLAlchemyError as exc:
        log.error("could not store a message (%d bytes from %s): %s", len(raw), source, exc)
        raise TemporaryFailure(f"could not store the message: {exc.__class__.__name__}") from exc


def process_stored(app: App, raw_id: int, now: datetime, *, envelope_rcpts: tuple[str, ...] = (),
                   acknowledge: bool = True, counted: bool = False) -> Outcome:
    """Run a stored raw message through the flow; quarantine it if a step fails.

    `counted`: the caller has already counted this attempt (the retry job
    does, before it starts, so that a message that kills the process is
    still tried only a bounded number of times)."""
    try:
        with app.store.session() as session, session.begin():
            # FOR UPDATE: two daemons retrying the same message take turns (a no-op on SQLite).
            raw = session.get(RawMessage, raw_id, with_for_update=True)
            assert raw is not None, f"raw message {raw_id} vanished"
            if raw.state not in ("pending", "quarantined"):      # processed meanwhile, elsewhere
                return Outcome(raw.outcome or raw.state, _ref(app, raw.ticket_id), raw.id)
            outcome = _run(app, session, raw, now, envelope_rcpts, acknowledge)
            _record(raw, outcome, count=not counted)
            return outcome
    except SQLAlchemyError as exc:
        log.error("raw message %s: database failure: %s", raw_id, exc)
        raise TemporaryFailure(f"database failure: {exc.__class__.__name__}") from exc
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the line
        return quarantine(app, raw_id, _reason(exc), exc, count=not counted)


def process_many(app: App, items: Iterable[tuple[str, bytes]], clock: Callable[[], datetime], *,
                 acknowledge: bool = False, batch: int = 200) -> Iterator[Outcome]:
    """Bulk import: many messages per transaction. The source stays on disk,
    so a crash mid-batch loses nothing: re-running the import skips what
    was committed.

    A batch is first stored without savepoints (they cost a statement pair
    and a flush per message). If a message in it fails, the batch is rolled
    back and stored again with a savepoint per message, so the bad message
    is quarantined without undoing its neighbours.

    The next batch is parsed in a worker process while this one is stored
    (`readahead`); a batch's new raw rows are written in one flush, and the
    lookups that would find nothing are answered by `BatchHints` (three
    queries a batch) instead of three to six queries a message."""
    for chunk in readahead.batches(items, batch, app.settings.limits):
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
    except _MessageFailed:
        return _store_batch(app, chunk, clock, acknowledge, careful=True)


class _MessageFailed(Exception):
    """A message of a batch stored without savepoints failed: store the batch again, carefully."""


def _store_batch(app: App, chunk: list[readahead.Prepared], clock: Callable[[], datetime], acknowledge: bool,
                 careful: bool) -> list[Outcome]:
    with app.store.session() as session, session.begin():
        lock_conversations(session, (mid for item in chunk if item.mail is not None
                                     for mid in _conversation(item.mail)))
        known = {row.sha256: row for row in session.scalars(
            select(RawMessage).where(RawMessage.sha256.in_({item.sha256 for item in chunk})))}
        _add_raw(session, chunk, known, clock())
        session.info[queries.HINTS] = queries.BatchHints.load(
            session, (item.mail for item in chunk if item.mail is not None))
        return [_import_one(app, session, known[item.sha256], item.mail, clock(), acknowledge, careful)
                for item in chunk]


def _add_raw(session: Session, chunk: list[readahead.Prepared], known: dict[str, RawMessage],
             now: datetime) -> None:
    """The batch's new raw messages, in one flush (a message twice in a batch is stored once)."""
    for item in chunk:
        if item.sha256 not in known:
            known[item.sha256] = RawMessage(sha256=item.sha256, size=len(item.raw), data=item.raw,
                                            source=item.source[:200], received_at=now, state="pending",
                                            attempts=0)
            session.add(known[item.sha256])
    session.flush()


def _import_one(app: App, session: Session, raw: RawMessage, mail: ParsedMail | None, now: datetime,
                acknowledge: bool, careful: bool) -> Outcome:
    if raw.state != "pending":
        return Outcome("duplicate", _ref(app, raw.ticket_id), raw.id)
    if not careful:
        try:
            outcome = _run(app, session, raw, now, (), acknowledge, mail)
        except SQLAlchemyError:
            raise
        except Exception as exc:  # noqa: BLE001 - rolls the batch back; it is stored again, carefully
            raise _MessageFailed(raw.id) from exc
        _record(raw, outcome)
        return outcome
    hints = session.info[queries.HINTS]
    mark = hints.mark()
    savepoint = session.begin_nested()
    try:
        outcome = _run(app, session, raw, now, (), acknowledge, mail)
        _record(raw, outcome)            # inside the savepoint: one UPDATE of the raw row
        savepoint.commit()
    except SQLAlchemyError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the import
        savepoint.rollback()
        hints.rolled_back(session, mark)
        outcome = Outcome(f"quarantined:{_reason(exc)}", None, raw.id)
        raw.error = "".join(traceback.format_exception(exc))
        _record(raw, outcome)
    return outcome


def _record(raw: RawMessage, outcome: Outcome, count: bool = True) -> None:
    raw.state = _state(outcome.action)
    raw.outcome = outcome.action
    raw.attempts = (raw.attempts or 0) + (1 if count else 0)
    raw.reason = outcome.action.partition(":")[2] or None
    if raw.state != "quarantined":
        raw.error = None                 # a retry that worked leaves no stale error behind


def _run(app: App, session: Session, raw: RawMessage, now: datetime,
         envelope_rcpts: tuple[str, ...], acknowledge: bool, mail: ParsedMail | None = None) -> Outcome:
    """`mail`: the message already checked against the raw limits and parsed
    (by a bulk import's read-ahead, ahead of its batch)."""
    settings = app.settings
    if mail is None:
        breach = limits.check_raw(raw.data, settings.limits)   # before the full parse: cheap
        if breach is not None:
            return _over_limit(raw, breach)
        mail = parse(raw.data)
    breach = limits.check_parsed(mail, settings.limits)
    if breach is not None:
        return _over_limit(raw, breach)
    lock_conversations(session, _conversation(mail))        # several daemons: one at a time, per thread
    key = queries.content_key(mail)
    duplicate = queries.find_duplicate(session, mail, key)
    if duplicate is not None:
        raw.ticket_id = duplicate.ticket_id
        return Outcome("duplicate", _ref(app, duplicate.ticket_id), raw.id)
    automatic = guards.automatic_reason(mail, settings.own_addresses, settings.loop_id)
    if automatic in _LOOP_REASONS or _is_our_message(session, mail):
        return Outcome("ignored:loop", None, raw.id)
    if automatic == "bounce":
        return _bounce(app, session, raw, mail, now)
    if automatic is None and mail.from_addr and queries.lift_suppression(session, mail.from_addr):
        log.info("%s wrote to us, so the address works again: no longer suppressed", mail.from_addr)
    context = Context(app=app, session=session, raw=raw, mail=mail, content_key=key, now=now,
                      automatic=automatic, envelope_rcpts=envelope_rcpts, acknowledge=acknowledge)
    action, ticket_id = apply(context)
    if ticket_id is not None:
        queries.store_attachments(session, mail, now)
    raw.ticket_id = ticket_id          # after the last query: one UPDATE of the raw row, with _record's
    return Outcome(action, _ref(app, ticket_id), raw.id)


def _conversation(mail: ParsedMail) -> tuple[str, ...]:
    """The Message-IDs that thread or deduplicate this message."""
    return (mail.message_id, *mail.in_reply_to, *mail.references)


def _over_limit(raw: RawMessage, breach: limits.Breach) -> Outcome:
    """Kept raw, not parsed further: the reason and the figures for `quarantine list`."""
    log.warning("raw message %s is over a limit: %s", raw.id, breach.detail)
    raw.error = breach.detail
    return Outcome(f"quarantined:{breach.reason}", None, raw.id)


def _is_our_message(session: Session, mail: ParsedMail) -> bool:
    """Mail with the Message-ID of one of our outgoing mails is that mail
    coming back (a forward to us, a list, a misconfigured alias), even when
    X-Loop was stripped on the way."""
    return not mail.message_id_synthesized and queries.outbox_row(session, (mail.message_id,)) is not None


def _bounce(app: App, session: Session, raw: RawMessage, mail: ParsedMail, now: datetime) -> Outcome:
    """A delivery failure: never a ticket, never a reply. If it is about our
    mail, a `bounce` event on that ticket, and its hard-bounced recipients
    get no more mail; a bounce about mail we never sent (backscatter) changes nothing."""
    report = bounces.read(raw.data, mail)
    row = queries.outbox_row(session, report.original_ids)
    if row is None or row.ticket_id is None:
        return Outcome("ignored:bounce", None, raw.id)
    recipients = {address.lower() for address in row.recipients}
    hard = sorted(report.permanent & recipients)
    for address in hard:
        if _configured(address, app.settings):   # an agent or team address: fix the config, do not go quiet
            log.error("hard bounce for %s, a configured address: not suppressed", address)
            continue
        queries.suppress(session, address, f"hard bounce of {row.message_id} ({row.kind}, "
                         f"{_ref(app, row.ticket_id)})", now, raw.id)
    detail = _bounce_detail(row.kind, row.message_id, hard, sorted(report.temporary & recipients),
                            sorted((report.permanent | report.temporary) - recipients))
    queries.add_event(session, row.ticket_id, now, "bounce", detail,
                      {"message_id": row.message_id, "hard": hard, "bounce_raw_id": raw.id})
    raw.ticket_id = row.ticket_id
    return Outcome("ignored:bounce", _ref(app, row.ticket_id), raw.id)


def _bounce_detail(kind: str, message_id: str, hard: list[str], soft: list[str], other: list[str]) -> str:
    parts = [f"{kind} {message_id} bounced"]
    if hard:
        parts.append(f"permanent failure for {', '.join(hard)} (no more mail to them)")
    if soft:
        parts.append(f"delayed for {', '.join(soft)}")
    if other:
        parts.append(f"the report also names {', '.join(other)}")
    if not (hard or soft or other):
        parts.append("the report names no address")
    return "; ".join(parts)


def _configured(address: str, settings: Settings) -> bool:
    """One of ours: a mailbox, an agent (or an agent domain), a tier's notify list."""
    tiers = {notify for tier in settings.tiers.values() for notify in tier.notify}
    return address in settings.own_addresses or address in tiers or agent_for(address, settings.agents) is not None


def quarantine(app: App, raw_id: int, reason: str, exc: BaseException | None = None, *,
               count: bool = True) -> Outcome:
    detail = "".join(traceback.format_exception(exc)) if exc is not None else None
    log.warning("raw message %s quarantined: %s", raw_id, reason)
    with app.store.session() as session, session.begin():
        raw = session.get(RawMessage, raw_id)
        if raw is not None:
            raw.state, raw.reason, raw.error = "quarantined", reason, detail
            raw.outcome = f"quarantined:{reason}"
            raw.attempts = (raw.attempts or 0) + (1 if count else 0)
    return Outcome(f"quarantined:{reason}", None, raw_id)


def retry_quarantined(app: App, now: datetime, max_attempts: int = MAX_ATTEMPTS, *,
                      limit: int = 100, stale_after: timedelta = STALE_AFTER,
                      source: str | None = None) -> list[Outcome]:
    """The housekeeping job (`run_once`): process again each quarantined
    message, and each one left pending for `stale_after` (a crash, or a
    database outage after the raw bytes were committed), that has had fewer
    than `max_attempts` tries. Each attempt is counted before it starts, so
    a message that kills the process is bounded too; one message at a time,
    so a poison message never holds up the others. Stops early (and returns
    what it did) when the database is unavailable. `source`: only messages
    from that source (a folder a daemon has just taken over).

    Safe while other daemons work: `_claim` and `process_stored` lock the
    row, and a message processed meanwhile is left alone."""
    query = select(RawMessage.id, RawMessage.source).where(
        RawMessage.attempts < max_attempts,
        or_(RawMessage.state == "quarantined",
            (RawMessage.state == "pending") & (RawMessage.received_at <= now - stale_after)))
    if source is not None:
        query = query.where(RawMessage.source == source)
    with app.store.session() as session:
        rows = session.execute(query.order_by(RawMessage.id).limit(limit)).all()
    outcomes: list[Outcome] = []
    for raw_id, source in rows:
        try:
            if not _claim(app, raw_id, max_attempts):
                continue
            outcome = process_stored(app, raw_id, now, counted=True,
                                     acknowledge=not source.startswith(_BULK_SOURCES))
        except TemporaryFailure as exc:
            log.error("quarantine retry stopped at raw message %s: %s", raw_id, exc)
            break
        log.info("raw message %s retried: %s", raw_id, outcome.line())
        outcomes.append(outcome)
    return outcomes


def _claim(app: App, raw_id: int, max_attempts: int) -> bool:
    """Count the attempt, committed, before it is made."""
    try:
        with app.store.session() as session, session.begin():
            raw = session.get(RawMessage, raw_id, with_for_update=True)
            if raw is None or raw.state not in ("pending", "quarantined") or raw.attempts >= max_attempts:
                return False
            raw.attempts += 1
            return True
    except SQLAlchemyError as exc:
        raise TemporaryFailure(f"database failure: {exc.__class__.__name__}") from exc


def _reason(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or f"error:{exc.__class__.__name__}"


def _state(action: str) -> str:
    kind = action.partition(":")[0]
    return {"new": "processed", "reply": "processed"}.get(kind, kind)


def _ref(app: App, ticket_id: int | None) -> str | None:
    return None if ticket_id is None else f"{app.settings.ticket_prefix}-{ticket_id}"
