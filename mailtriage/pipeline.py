"""The spine: raw bytes in, an Outcome out.

    store raw ─► parse ─► dedupe ─► guards ─► thread ─► classify ─► apply ─► outbox

`accept()` commits the raw bytes before anything else happens (the caller
may then answer 250 or flag the IMAP message); `process_stored()` runs the
rest in one transaction, and a message that breaks a step is quarantined
with the reason, never lost and never blocking the next one.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailtriage import guards
from mailtriage.app import App
from mailtriage.errors import TemporaryFailure
from mailtriage.parse import parse
from mailtriage.store import queries
from mailtriage.store.schema import RawMessage
from mailtriage.workflow import Context, apply

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


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
                   acknowledge: bool = True) -> Outcome:
    """Run a stored raw message through the flow; quarantine it if a step fails."""
    try:
        with app.store.session() as session, session.begin():
            raw = session.get(RawMessage, raw_id)
            assert raw is not None, f"raw message {raw_id} vanished"
            outcome = _run(app, session, raw, now, envelope_rcpts, acknowledge)
            _record(raw, outcome)
            return outcome
    except SQLAlchemyError as exc:
        log.error("raw message %s: database failure: %s", raw_id, exc)
        raise TemporaryFailure(f"database failure: {exc.__class__.__name__}") from exc
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the line
        return quarantine(app, raw_id, _reason(exc), exc)


def process_many(app: App, items: Iterable[tuple[str, bytes]], clock: Callable[[], datetime], *,
                 acknowledge: bool = False, batch: int = 200) -> Iterator[Outcome]:
    """Bulk import: many messages per transaction, each in its own savepoint,
    so a bad message is quarantined without undoing its neighbours. The
    source stays on disk, so a crash mid-batch loses nothing: re-running
    the import skips what was committed."""
    for chunk in _chunks(items, batch):
        try:
            with app.store.session() as session, session.begin():
                digests = [queries.sha256(raw) for _, raw in chunk]
                known = {row.sha256: row for row in session.scalars(
                    select(RawMessage).where(RawMessage.sha256.in_(set(digests))))}
                outcomes = [_import_one(app, session, source, raw, digest, known, clock(), acknowledge)
                            for (source, raw), digest in zip(chunk, digests)]
        except SQLAlchemyError as exc:
            log.error("import batch of %d could not be stored: %s", len(chunk), exc)
            raise TemporaryFailure(f"could not store messages: {exc.__class__.__name__}") from exc
        yield from outcomes


def _import_one(app: App, session: Session, source: str, raw_bytes: bytes, digest: str,
                known: dict[str, RawMessage], now: datetime, acknowledge: bool) -> Outcome:
    raw = known.get(digest)
    if raw is not None and raw.state != "pending":
        return Outcome("duplicate", _ref(app, raw.ticket_id), raw.id)
    if raw is None:
        raw = RawMessage(sha256=digest, size=len(raw_bytes), data=raw_bytes, source=source[:200],
                         received_at=now, state="pending", attempts=0)
        session.add(raw)
        known[digest] = raw
    savepoint = session.begin_nested()
    try:
        outcome = _run(app, session, raw, now, (), acknowledge)
        savepoint.commit()
    except SQLAlchemyError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the import
        savepoint.rollback()
        outcome = Outcome(f"quarantined:{_reason(exc)}", None, raw.id)
        raw.error = "".join(traceback.format_exception(exc))
    _record(raw, outcome)
    return outcome


def _chunks(items: Iterable[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _record(raw: RawMessage, outcome: Outcome) -> None:
    raw.state = _state(outcome.action)
    raw.outcome, raw.attempts = outcome.action, (raw.attempts or 0) + 1
    raw.reason = outcome.action.partition(":")[2] or None


def _run(app: App, session: Session, raw: RawMessage, now: datetime,
         envelope_rcpts: tuple[str, ...], acknowledge: bool) -> Outcome:
    mail = parse(raw.data)
    key = queries.content_key(mail)
    duplicate = queries.find_duplicate(session, mail, key)
    if duplicate is not None:
        raw.ticket_id = duplicate.ticket_id
        return Outcome("duplicate", _ref(app, duplicate.ticket_id), raw.id)
    settings = app.settings
    automatic = guards.automatic_reason(mail, settings.own_addresses, settings.loop_id)
    if automatic in ("own-address", "x-loop"):
        return Outcome("ignored:loop", None, raw.id)
    if automatic == "bounce":
        return Outcome("ignored:bounce", None, raw.id)
    context = Context(app=app, session=session, raw=raw, mail=mail, content_key=key, now=now,
                      automatic=automatic, envelope_rcpts=envelope_rcpts, acknowledge=acknowledge)
    action, ticket_id = apply(context)
    raw.ticket_id = ticket_id
    return Outcome(action, _ref(app, ticket_id), raw.id)


def quarantine(app: App, raw_id: int, reason: str, exc: BaseException | None = None) -> Outcome:
    detail = "".join(traceback.format_exception(exc)) if exc is not None else None
    log.warning("raw message %s quarantined: %s", raw_id, reason)
    with app.store.session() as session, session.begin():
        raw = session.get(RawMessage, raw_id)
        if raw is not None:
            raw.state, raw.reason, raw.error = "quarantined", reason, detail
            raw.outcome, raw.attempts = f"quarantined:{reason}", raw.attempts + 1
    return Outcome(f"quarantined:{reason}", None, raw_id)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or f"error:{exc.__class__.__name__}"


def _state(action: str) -> str:
    kind = action.partition(":")[0]
    return {"new": "processed", "reply": "processed"}.get(kind, kind)


def _ref(app: App, ticket_id: int | None) -> str | None:
    return None if ticket_id is None else f"{app.settings.ticket_prefix}-{ticket_id}"
