"""The SLA sweep's tickets as records, a batch at a time: one SELECT for the
tickets it claimed, one UPDATE (executemany) for what it changed.

The sweep reads and returns TicketRecords (store.records does the same for
ORM rows); here the rows never become ORM objects, so a batch costs no
identity map, no attribute history and no unit of work: those were a third
of a sweep of 1,000 due warnings (bench/sla_sweep.py). Everything runs on the
caller's session, in its transaction and savepoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Integer, Select, Table, bindparam, select, update
from sqlalchemy.orm import Session

from mailtriage.model import TicketRecord
from mailtriage.store.records import FIELDS, record_from
from mailtriage.store.schema import Ticket

_TABLE = cast(Table, Ticket.__table__)
_SELECT = select(*(_TABLE.c[name] for name in FIELDS))
_BY_ID = _SELECT.where(_TABLE.c.id.in_(bindparam("ids", expanding=True))).order_by(_TABLE.c.id)
_UPDATE = update(_TABLE).where(_TABLE.c.id == bindparam("ticket"))
# Built once: a statement made per batch cost a tenth of a 1,000-notice sweep in SQL construction.
_DUE = (select(_TABLE.c.id).where(_TABLE.c.next_deadline <= bindparam("now"))
        .order_by(_TABLE.c.next_deadline).limit(bindparam("limit", type_=Integer)))
_TAKE_DUE = (update(_TABLE).where(_TABLE.c.id.in_(_DUE.scalar_subquery())).values(next_deadline=None)
             .returning(_TABLE.c.id))


def due_query(now: datetime, limit: int) -> Select[tuple[int]]:
    """The one query that finds work: an index range scan on next_deadline."""
    return _DUE.params(now=now, limit=limit)


def any_due(session: Session, now: datetime) -> bool:
    return session.connection().execute(_DUE, {"now": now, "limit": 1}).first() is not None


def due_ids(session: Session, now: datetime, limit: int) -> list[int]:
    return list(session.connection().execute(_DUE, {"now": now, "limit": limit}).scalars())


def take_due(session: Session, now: datetime, limit: int) -> list[int]:
    """SQLite: the due tickets' numbers, taken out of the due set (next_deadline
    NULL) under the database's write lock; the batch's commit puts the new
    deadline in, a rollback the old one back."""
    return list(session.connection().execute(_TAKE_DUE, {"now": now, "limit": limit}).scalars())


def records(session: Session, ids: Iterable[int]) -> list[TicketRecord]:
    """The tickets `ids`, as records, by number."""
    wanted = list(ids)
    if not wanted:
        return []
    rows = session.connection().execute(_BY_ID, {"ids": wanted})
    return [record_from(row._asdict()) for row in rows]


def due_locked(session: Session, now: datetime, limit: int) -> list[TicketRecord]:
    """Up to `limit` due tickets, earliest deadline first, row-locked and
    skipping rows another sweep has locked (PostgreSQL: several daemons share the work)."""
    query = (_SELECT.where(_TABLE.c.next_deadline <= now).order_by(_TABLE.c.next_deadline).limit(limit)
             .with_for_update(skip_locked=True))
    return [record_from(row._asdict()) for row in session.execute(query)]


def write(session: Session, changed: Sequence[TicketRecord], columns: Sequence[str]) -> None:
    """The `columns` of each record onto its row: one statement for all of them."""
    if changed:
        session.connection().execute(
            _UPDATE, [{"ticket": record.id, **{name: getattr(record, name) for name in columns}}
                      for record in changed])

