"""The SLA sweep: `run_once(app, now)` sends what is due — warnings, breaches,
escalations — and exits. `mailtriage sla tick` and the daemon call it.

Due tickets are found through the indexed `tickets.next_deadline` column
(`WHERE next_deadline <= now`), so a sweep costs what is due, not what is
open. Tickets are claimed in batches, one transaction per batch: on
PostgreSQL with `FOR UPDATE SKIP LOCKED` (several daemons share the work),
on SQLite with one `UPDATE … RETURNING` under the database's write lock.
Every notice is recorded in the ticket's timers (`done`) in the same
transaction as its outbox row, so a repeated or concurrent sweep sends
nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, select, update
from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.model import Tier
from mailtriage.sla import deadlines, lifecycle, notices
from mailtriage.sla.deadlines import AGAIN, DUE, WARN, Milestone
from mailtriage.sla.timers import LABELS, Timers
from mailtriage.store import queries
from mailtriage.store.records import copy_onto, record_of
from mailtriage.store.schema import Ticket

__all__ = ["SweepResult", "run_once"]

log = logging.getLogger(__name__)

BATCH = 50              # tickets per transaction: short write locks on SQLite
RETRY_AFTER = timedelta(minutes=5)      # a ticket whose notice failed (bad template …) is tried again


@dataclass
class SweepResult:
    tickets: int = 0
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    held: int = 0
    failed: int = 0
    history: int = 0              # milestones of tickets imported as history: recorded, not announced
    breaches_by_severity: dict[str, int] = field(default_factory=dict)     # for the daemon's metrics

    def line(self) -> str:
        history = f", {self.history} recorded as history" if self.history else ""
        return (f"swept {self.tickets} ticket(s): {self.warnings} warning(s), {self.breaches} breach(es), "
                f"{self.escalations} escalation(s), {self.held} held, {self.failed} failed{history}")


def run_once(app: App, now: datetime, *, batch: int = BATCH) -> SweepResult:
    """One sweep at `now`: act on every milestone that has come."""
    result = SweepResult()
    while True:
        with app.store.session() as session, session.begin():
            claimed = _claim(session, now, batch)
            for ticket in claimed:
                _sweep_ticket(session, app, ticket, now, result)
        if len(claimed) < batch:
            return result


def due_query(now: datetime, limit: int) -> Select[Any]:
    """The one query that finds work: an index range scan on next_deadline."""
    return select(Ticket.id).where(Ticket.next_deadline <= now).order_by(Ticket.next_deadline).limit(limit)


def _claim(session: Session, now: datetime, limit: int) -> list[Ticket]:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        query = (select(Ticket).where(Ticket.next_deadline <= now).order_by(Ticket.next_deadline)
                 .limit(limit).with_for_update(skip_locked=True))
        return list(session.scalars(query))
    if session.scalar(due_query(now, 1)) is None:
        return []                       # the common case: a read, no write lock taken
    if dialect == "sqlite":
        # Taking the rows out of the due set is the claim; the batch's commit puts
        # the new next_deadline in, a rollback puts the old one back.
        table = cast(Table, Ticket.__table__)
        ids = list(session.scalars(update(table).where(table.c.id.in_(due_query(now, limit).scalar_subquery()))
                                   .values(next_deadline=None).returning(table.c.id)))
    else:
        ids = list(session.scalars(due_query(now, limit)))
    return list(session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id))) if ids else []


def _sweep_ticket(session: Session, app: App, ticket: Ticket, now: datetime, result: SweepResult) -> None:
    result.tickets += 1
    try:
        with session.begin_nested():
            _act(session, app, ticket, now, result)
    except Exception:  # noqa: BLE001 - one bad ticket must not stop the sweep
        log.exception("SLA sweep: ticket %s failed; retrying after %s", ticket.id, RETRY_AFTER)
        result.failed += 1
        session.refresh(ticket)
        ticket.next_deadline = now + RETRY_AFTER
    if ticket.next_deadline is not None and ticket.next_deadline <= now:
        log.error("SLA sweep: ticket %s still due after its sweep; retrying after %s", ticket.id, RETRY_AFTER)
        ticket.next_deadline = now + RETRY_AFTER


def _act(session: Session, app: App, ticket: Ticket, now: datetime, result: SweepResult) -> None:
    config = app.config
    sla, calendars = config.settings.sla, config.calendars
    timers = lifecycle.load(record_of(ticket), sla, calendars)
    due = [m for m in deadlines.milestones(timers, sla.warn_at, calendars) if m.at <= now]
    if timers.history is not None:
        timers = _record_history(session, ticket, timers, due, now, result)
        due = []
    for milestone in due:
        later = any(o.timer == milestone.timer and o.kind != WARN for o in due)
        if milestone.kind == WARN and later:
            pass                        # the breach is due as well: a warning now would only be noise
        elif milestone.kind == WARN:
            _warn(session, app, ticket, timers, milestone, now, result)
        else:
            _escalate(session, app, ticket, timers, milestone, now, result)
        timers = timers.mark_done(milestone.key)
    copy_onto(ticket, lifecycle.store(record_of(ticket), timers, now, sla, calendars))


def _record_history(session: Session, ticket: Ticket, timers: Timers, due: list[Milestone], now: datetime,
                    result: SweepResult) -> Timers:
    """A ticket imported as history: its milestones become events, never mail
    or a new tier (tickets.history)."""
    imported = timers.history.isoformat(timespec="minutes") if timers.history else "?"
    for milestone in due:
        label = LABELS[milestone.timer]
        what = f"{label} warning" if milestone.kind == WARN else f"{label} target missed"
        queries.add_event(session, ticket.id, now, "sla-history",
                          f"{what} at {milestone.at.isoformat(timespec='minutes')}: imported as history on "
                          f"{imported}, so no notice was sent", {"milestone": milestone.key, "history": True})
        result.history += 1
    return timers.mark_done(*(milestone.key for milestone in due))


def _warn(session: Session, app: App, ticket: Ticket, timers: Timers, milestone: Milestone, now: datetime,
          result: SweepResult) -> None:
    sent = notices.warning(session, app.config, ticket, timers, milestone, now)
    timer = timers.timers[milestone.timer]
    detail = f"{notices.describe_timer(timer, app.config, now)}; {sent.describe()}"
    queries.add_event(session, ticket.id, now, "warning", detail,
                      {"milestone": milestone.key, "to": list(sent.to), "message_id": sent.message_id})
    _nobody_told(app, ticket, "warning", sent)
    result.warnings += 1
    result.held += sent.held_until is not None


def _escalate(session: Session, app: App, ticket: Ticket, timers: Timers, milestone: Milestone, now: datetime,
              result: SweepResult) -> None:
    timer = timers.timers[milestone.timer]
    label = LABELS[milestone.timer]
    if milestone.kind == DUE:
        reason = f"{label} target missed"
        queries.add_event(session, ticket.id, now, "breached", notices.describe_timer(timer, app.config, now),
                          {"milestone": milestone.key, "due": milestone.at.isoformat()})   # the digest's day
        result.breaches += 1
        result.breaches_by_severity[ticket.severity] = result.breaches_by_severity.get(ticket.severity, 0) + 1
    else:
        assert milestone.kind == AGAIN
        reason = f"still unresolved after twice the {label} target"
    from_tier = ticket.tier
    ticket.tier = Tier(from_tier).up().value
    ticket.updated_at = now
    sent = notices.escalation(session, app.config, ticket, timers, reason, from_tier, now)
    moved = f"{from_tier} → {ticket.tier}" if ticket.tier != from_tier else f"already at {from_tier}, told again"
    queries.add_event(session, ticket.id, now, "escalated", f"{moved}: {reason}; {sent.describe()}",
                      {"milestone": milestone.key, "from": from_tier, "to_tier": ticket.tier,
                       "to": list(sent.to), "message_id": sent.message_id})
    _nobody_told(app, ticket, "escalation", sent)
    result.escalations += 1
    result.held += sent.held_until is not None


def _nobody_told(app: App, ticket: Ticket, kind: str, sent: notices.Sent) -> None:
    """A notice with nobody to go to is a config gap (an empty tier): loudly, not only as an event."""
    if not sent.to:
        log.warning("SLA %s for %s-%s went to nobody: tiers.%s.notify is empty and no agent is assigned "
                    "(fill it in %s)", kind, app.settings.ticket_prefix, ticket.id, ticket.tier,
                    app.config.path or "the config")
