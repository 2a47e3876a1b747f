"""What `mailtriage status`, `/metrics` and the health job read from the
database: the heartbeat rows, the outbox, the quarantine and the SLA board.
Reads only (the heartbeat writes are monitor.py's).

The SLA board reuses the sweep's and `report sla`'s machinery: candidates
come from the indexed `tickets.next_deadline` (as the sweep finds its work)
plus tickets the sweep has marked breached, and each candidate's timers are
read by `sla.lifecycle`/`sla.deadlines`, as `report sla` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailtriage.config.values import Settings, oauth2_accounts
from mailtriage.health.state import State
from mailtriage.model import OutboxStatus, RawState, Status, ticket_ref
from mailtriage.sla import deadlines, lifecycle
from mailtriage.sla.timers import RUNNING, Calendars
from mailtriage.store.records import record_of
from mailtriage.store.schema import Heartbeat, OutboxRow, RawMessage, Ticket

DUE_WITHIN = timedelta(hours=1)
OPEN = (Status.NEW.value, Status.OPEN.value, Status.PENDING.value)
LISTED = 50                     # tickets listed per SLA column (the counts are complete)


def components(settings: Settings) -> list[str]:
    """Every component this configuration depends on, in a stable order."""
    names = ["database", "relay", "smtp_in"]
    names += [f"mailbox:{m.name}" for m in settings.mailboxes if m.imap is not None]
    names += [f"oauth2:{account.name}" for account in oauth2_accounts(settings)]
    return names


def heartbeats(session: Session) -> dict[str, State]:
    return {row.component: State(row.component, row.ok, row.last_success_at, row.last_error_at, row.last_error,
                                 row.failing_since, row.alerted_at)
            for row in session.scalars(select(Heartbeat))}


def last_heartbeat(session: Session) -> datetime | None:
    """When a daemon last wrote a heartbeat (it refreshes them while it runs)."""
    return session.scalar(select(func.max(Heartbeat.updated_at)))


@dataclass(frozen=True)
class Outbox:
    pending: int
    failed: int
    oldest_pending: datetime | None


def outbox(session: Session) -> Outbox:
    """Pending (waiting or being sent) and failed mail: one pass over the (status, due_at) index."""
    counts: dict[Any, int] = dict(session.execute(select(OutboxRow.status, func.count()).where(
        OutboxRow.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED)))
        .group_by(OutboxRow.status)).all())
    oldest = session.scalar(select(func.min(OutboxRow.created_at)).where(
        OutboxRow.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))))
    pending = counts.get(OutboxStatus.PENDING, 0) + counts.get(OutboxStatus.SENDING, 0)
    return Outbox(pending, counts.get(OutboxStatus.FAILED, 0), oldest)


def quarantined(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(RawMessage)
                          .where(RawMessage.state == RawState.QUARANTINED)) or 0


@dataclass
class SlaBoard:
    due_soon: list[dict[str, Any]] = field(default_factory=list)   # due within the hour, not breached yet
    breached: list[dict[str, Any]] = field(default_factory=list)
    due_soon_count: int = 0
    breached_count: int = 0


def sla_board(session: Session, settings: Settings, calendars: Calendars, now: datetime,
              within: timedelta = DUE_WITHIN) -> SlaBoard:
    """Open tickets whose target falls due within `within`, and those past one."""
    horizon = now + within
    query = (select(Ticket).where(Ticket.status.in_(OPEN),
                                  or_(Ticket.next_deadline <= horizon, Ticket.sla_state == "breached"))
             .order_by(Ticket.id))
    board = SlaBoard()
    for ticket in session.scalars(query.execution_options(yield_per=500)):
        timers = lifecycle.load(record_of(ticket), settings.sla, calendars)
        due = sorted(at for timer in timers.timers.values() if timer.state == RUNNING
                     and (at := timer.when(1.0, calendars)) is not None)
        entry = {"ref": ticket_ref(settings.ticket_prefix, ticket.id), "severity": ticket.severity,
                 "tier": ticket.tier, "queue": ticket.queue}
        if deadlines.breaches(timers) or (due and due[0] <= now) or ticket.sla_state == "breached":
            board.breached_count += 1
            if len(board.breached) < LISTED:
                board.breached.append(entry)
        elif due and due[0] <= horizon:
            board.due_soon_count += 1
            if len(board.due_soon) < LISTED:
                board.due_soon.append({**entry, "due": due[0].isoformat(timespec="seconds")})
    return board
