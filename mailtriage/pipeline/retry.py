"""Housekeeping: quarantined messages, and ones a crash or an outage left
pending, go through the spine again, a bounded number of times.

    raw_messages (quarantined | pending too long) ─► claim an attempt ─► spine.process_stored

`retry_quarantined()` is the housekeeping job's `run_once`; `quarantine
retry` calls it too.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from mailtriage.app import App
from mailtriage.errors import TemporaryFailure
from mailtriage.model import Outcome
from mailtriage.pipeline.spine import process_stored
from mailtriage.store.schema import RawMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5                          # automatic tries of one message; `quarantine retry` has no limit
STALE_AFTER = timedelta(minutes=5)        # a message pending this long was interrupted
_BULK_SOURCES = ("maildir:", "mbox:")     # history imports: no acknowledgement on a retry either


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

    Safe while other daemons work: `claim_attempt` and `process_stored` lock the
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
            if not claim_attempt(app, raw_id, max_attempts):
                continue
            outcome = process_stored(app, raw_id, now, counted=True,
                                     acknowledge=not source.startswith(_BULK_SOURCES))
        except TemporaryFailure as exc:
            log.error("quarantine retry stopped at raw message %s: %s", raw_id, exc)
            break
        log.info("raw message %s retried: %s", raw_id, outcome.line())
        outcomes.append(outcome)
    return outcomes


def claim_attempt(app: App, raw_id: int, max_attempts: int) -> bool:
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
