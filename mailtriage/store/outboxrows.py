"""The outbox sender's reads and writes, as Core statements built once: the
claim of due rows and the record of each relay's answer.

The sender commits once per mail it sends (notify/outbox.py: exactly once),
so these run once or twice per mail; as ORM rows they loaded every mail's
bytes again to write its answer. In a burst of acknowledgements
(bench/daemon.py, under py-spy) the sender was a quarter of the daemon's
CPU, half of that recording answers. Everything runs on the caller's
session, in its transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, Integer, Row, Table, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from mailtriage.model import OutboxStatus
from mailtriage.store.schema import OutboxRow

_TABLE = cast(Table, OutboxRow.__table__)
_C = _TABLE.c
UNSENT = (OutboxStatus.PENDING, OutboxStatus.SENDING)      # what a sender may still take

_DUE = (select(_C.id, _C.ticket_id, _C.kind, _C.message_id, _C.mail_from, _C.recipients, _C.deliveries,
               _C.data, _C.attempts, _C.status)
        .where(_C.status.in_(UNSENT), _C.due_at <= bindparam("now"))
        .order_by(_C.due_at, _C.attempts, _C.id).limit(bindparam("limit", type_=Integer)))
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)        # several daemons, one database
_TAKE = (update(_TABLE).where(_C.id == bindparam("row"), _C.status == bindparam("was"),
                              _C.attempts == bindparam("tried"))
         .values(status=OutboxStatus.SENDING, attempts=bindparam("attempt"), due_at=bindparam("lease_end")))
_STATE = select(_C.recipients, _C.deliveries).where(_C.id == bindparam("row"))
_AGAIN = bindparam("again", type_=_C.due_at.type)
# sent_at: when the first recipient got it (kept once set); due_at: changed only for another attempt.
_SETTLE = (update(_TABLE).where(_C.id == bindparam("row"))
           .values(deliveries=bindparam("deliveries"), status=bindparam("status"),
                   last_error=bindparam("last_error"),
                   sent_at=func.coalesce(_C.sent_at, bindparam("sent_now", type_=_C.sent_at.type)),
                   due_at=case((_AGAIN.is_(None), _C.due_at), else_=_AGAIN)))


def due(session: Session, now: datetime, limit: int) -> list[Row[Any]]:
    """Rows to send: pending and due, or left in `sending` by a daemon that
    died mid-send (for those, `due_at` is the end of the sender's lease).
    Among rows due at once (all wait for a relay that was down), mail that
    failed before goes after mail that did not, so one bad mail cannot hold
    up the queue. Row-locked on PostgreSQL, skipping rows another daemon holds."""
    query = _DUE_LOCKED if session.get_bind().dialect.name == "postgresql" else _DUE
    return list(session.connection().execute(query, {"now": now, "limit": limit}))


def take(session: Session, row: Row[Any], lease_end: datetime) -> bool:
    """`sending` on `row` if nobody changed it since it was read: the claim."""
    result = session.connection().execute(_TAKE, {"row": row.id, "was": row.status, "tried": row.attempts,
                                                  "attempt": row.attempts + 1, "lease_end": lease_end})
    return cast(CursorResult[Any], result).rowcount == 1


class State(NamedTuple):
    """What recording a relay's answer reads of the row (not its bytes)."""

    recipients: list[str]
    deliveries: dict[str, Any] | None


def state(session: Session, row_id: int) -> State | None:
    row = session.connection().execute(_STATE, {"row": row_id}).first()
    return None if row is None else State(*row)


def settle(session: Session, row_id: int, *, deliveries: dict[str, Any], status: OutboxStatus,
           last_error: str | None, sent_now: datetime | None, again: datetime | None) -> None:
    """A relay's answer onto the row: `sent_now` sets sent_at unless it is set
    already, `again` (another attempt) sets due_at."""
    session.connection().execute(_SETTLE, {"row": row_id, "deliveries": deliveries, "status": status,
                                           "last_error": last_error, "sent_now": sent_now, "again": again})
