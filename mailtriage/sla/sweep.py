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

A batch costs a few statements, not a few per notice: its tickets are read
as records and their changes written back in one statement each
(store.sweeprows, no ORM objects), their conversations and their
recipients' suppressions read in two queries (store.noticereads), its
events and its outbox rows written in one each. A ticket that fails sends
the batch round again, one savepoint per ticket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.model import TicketRecord, Tier
from mailtriage.notify import outbox
from mailtriage.sla import deadlines, lifecycle, notices
from mailtriage.sla.deadlines import AGAIN, DUE, WARN, Milestone
from mailtriage.sla.timers import LABELS, Timers
from mailtriage.store import noticereads, queries, sweeprows, turns
from mailtriage.store.noticereads import NoticeReads

__all__ = ["SweepResult", "run_once"]

log = logging.getLogger(__name__)

BATCH = 100             # tickets per transaction: one commit (fsync) per 100 notices; at ~0.6 ms a
                        # ticket, a write lock on SQLite as short as 50 tickets held it before
RETRY_AFTER = timedelta(minutes=5)      # a ticket whose notice failed (bad template …) is tried again
_WRITTEN = ("tier", "updated_at", *lifecycle.STORED)       # what a sweep changes on a ticket


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

    def add(self, other: "SweepResult") -> None:
        for name in ("tickets", "warnings", "breaches", "escalations", "held", "failed", "history"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for severity, count in other.breaches_by_severity.items():
            self.breaches_by_severity[severity] = self.breaches_by_severity.get(severity, 0) + count

    def line(self) -> str:
        history = f", {self.history} recorded as history" if self.history else ""
        return (f"swept {self.tickets} ticket(s): {self.warnings} warning(s), {self.breaches} breach(es), "
                f"{self.escalations} escalation(s), {self.held} held, {self.failed} failed{history}")


def run_once(app: App, now: datetime, *, batch: int = BATCH) -> SweepResult:
    """One sweep at `now`: act on every milestone that has come."""
    result = SweepResult()
    while True:
        with app.store.session() as session:
            if not sweeprows.any_due(session, now):
                return result           # the common case: one read, no turn and no write lock taken
        with app.store.session() as session, turns.writing(session), session.begin():
            claimed = _claim(session, now, batch)
            if claimed:
                _sweep_batch(session, app, claimed, now, result)
        if len(claimed) < batch:
            return result


@dataclass
class _Batch:
    """What the sweep of one batch works with, and the events it has still to write."""

    session: Session
    app: App
    now: datetime
    result: SweepResult
    reads: NoticeReads | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    mail: list[dict[str, Any]] = field(default_factory=list)      # outbox rows (outbox.prepare)

    def event(self, ticket: TicketRecord, type_: str, detail: str, data: dict[str, Any] | None = None) -> None:
        self.events.append({"ticket_id": ticket.id, "at": self.now, "type": type_, "detail": detail, "data": data})

    def write(self) -> None:
        """The events and outbox rows so far, one statement each: at the end of
        the batch, and before an escalation reads the ticket's history."""
        queries.add_event_rows(self.session, self.events)
        outbox.insert_rows(self.session, self.mail)
        self.events, self.mail = [], []

    def forget(self) -> None:
        """A ticket failed: what it had still to write goes with its savepoint."""
        self.events, self.mail = [], []


def _sweep_batch(session: Session, app: App, claimed: list[TicketRecord], now: datetime,
                 result: SweepResult) -> None:
    """The batch's tickets in one savepoint; when one fails, the savepoint
    goes and the batch is swept again ticket by ticket, each in its own
    savepoint, so the others still get their notices."""
    reads = noticereads.load(session, (t.id for t in claimed), _recipients(app, claimed))
    tried = _Batch(session, app, now, SweepResult(), reads)
    try:
        with session.begin_nested():
            swept = []
            for ticket in claimed:
                tried.result.tickets += 1
                swept.append(_not_due_again(_act(tried, ticket), now))
            tried.write()
            sweeprows.write(session, swept, _WRITTEN)
    except Exception:  # noqa: BLE001 - told per ticket below
        log.info("SLA sweep: a ticket of the batch failed; sweeping the batch ticket by ticket")
        for ticket in claimed:
            _sweep_ticket(_Batch(session, app, now, result, reads), ticket)
        return
    result.add(tried.result)


def _recipients(app: App, claimed: list[TicketRecord]) -> set[str]:
    """Everyone a notice of this batch can go to: the tiers' lists and the assignees."""
    addresses = {address for tier in app.config.settings.tiers.values() for address in tier.notify}
    return addresses | {ticket.assignee for ticket in claimed if ticket.assignee}


def _claim(session: Session, now: datetime, limit: int) -> list[TicketRecord]:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return sweeprows.due_locked(session, now, limit)
    if dialect == "sqlite":             # taking the rows out of the due set is the claim
        return sweeprows.records(session, sweeprows.take_due(session, now, limit))
    return sweeprows.records(session, sweeprows.due_ids(session, now, limit))


def _sweep_ticket(batch: _Batch, ticket: TicketRecord) -> None:
    session, now = batch.session, batch.now
    batch.result.tickets += 1
    try:
        with session.begin_nested():
            swept = _not_due_again(_act(batch, ticket), now)
            batch.write()
            sweeprows.write(session, [swept], _WRITTEN)
    except Exception:  # noqa: BLE001 - one bad ticket must not stop the sweep
        log.exception("SLA sweep: ticket %s failed; retrying after %s", ticket.id, RETRY_AFTER)
        batch.forget()
        batch.result.failed += 1
        # The row as claimed (its savepoint is gone), due again later.
        sweeprows.write(session, [replace(ticket, next_deadline=now + RETRY_AFTER)], _WRITTEN)


def _not_due_again(ticket: TicketRecord, now: datetime) -> TicketRecord:
    if ticket.next_deadline is not None and ticket.next_deadline <= now:
        log.error("SLA sweep: ticket %s still due after its sweep; retrying after %s", ticket.id, RETRY_AFTER)
        return replace(ticket, next_deadline=now + RETRY_AFTER)
    return ticket


def _act(batch: _Batch, ticket: TicketRecord) -> TicketRecord:
    """The ticket's due milestones acted on; returns it with its new timers (and tier)."""
    config, now = batch.app.config, batch.now
    sla, calendars = config.settings.sla, config.calendars
    timers = lifecycle.load(ticket, sla, calendars)
    found = deadlines.milestones(timers, sla.warn_at, calendars)
    due = [m for m in found if m.at <= now]
    if timers.history is not None:
        timers = _record_history(batch, ticket, timers, due)
        due = []
    for milestone in due:
        later = any(o.timer == milestone.timer and o.kind != WARN for o in due)
        if milestone.kind == WARN and later:
            pass                        # the breach is due as well: a warning now would only be noise
        elif milestone.kind == WARN:
            _warn(batch, ticket, timers, milestone)
        else:
            ticket = _escalate(batch, ticket, timers, milestone)
        timers = timers.mark_done(milestone.key)
    # Acting marks milestones done and changes no timer: what is left of them is what is pending.
    pending = [m for m in found if m.key not in timers.done]
    return lifecycle.store(ticket, timers, now, sla, calendars, pending=pending)


def _record_history(batch: _Batch, ticket: TicketRecord, timers: Timers, due: list[Milestone]) -> Timers:
    """A ticket imported as history: its milestones become events, never mail
    or a new tier (tickets.history)."""
    imported = timers.history.isoformat(timespec="minutes") if timers.history else "?"
    for milestone in due:
        label = LABELS[milestone.timer]
        what = f"{label} warning" if milestone.kind == WARN else f"{label} target missed"
        batch.event(ticket, "sla-history",
                          f"{what} at {milestone.at.isoformat(timespec='minutes')}: imported as history on "
                          f"{imported}, so no notice was sent", {"milestone": milestone.key, "history": True})
        batch.result.history += 1
    return timers.mark_done(*(milestone.key for milestone in due))


def _warn(batch: _Batch, ticket: TicketRecord, timers: Timers, milestone: Milestone) -> None:
    app, now, result = batch.app, batch.now, batch.result
    sent = notices.warning(batch.session, app.config, ticket, timers, milestone, now, batch.reads, batch.mail)
    detail = f"{sent.clock}; {sent.describe()}"
    batch.event(ticket, "warning", detail,
                      {"milestone": milestone.key, "to": list(sent.to), "message_id": sent.message_id})
    _nobody_told(app, ticket, "warning", sent)
    result.warnings += 1
    result.held += sent.held_until is not None


def _escalate(batch: _Batch, ticket: TicketRecord, timers: Timers, milestone: Milestone) -> TicketRecord:
    """The ticket one tier up, and its new tier told; returns it at its new tier."""
    app, now, result = batch.app, batch.now, batch.result
    timer = timers.timers[milestone.timer]
    label = LABELS[milestone.timer]
    if milestone.kind == DUE:
        reason = f"{label} target missed"
        batch.event(ticket, "breached", notices.describe_timer(timer, app.config, now),
                          {"milestone": milestone.key, "due": milestone.at.isoformat()})   # the digest's day
        result.breaches += 1
        result.breaches_by_severity[ticket.severity] = result.breaches_by_severity.get(ticket.severity, 0) + 1
    else:
        assert milestone.kind == AGAIN
        reason = f"still unresolved after twice the {label} target"
    from_tier = ticket.tier
    ticket = replace(ticket, tier=Tier(from_tier).up().value, updated_at=now)
    batch.write()                       # its history shows the ticket's events so far
    sent = notices.escalation(batch.session, app.config, ticket, timers, reason, from_tier, now, batch.reads,
                              batch.mail)
    moved = f"{from_tier} → {ticket.tier}" if ticket.tier != from_tier else f"already at {from_tier}, told again"
    batch.event(ticket, "escalated", f"{moved}: {reason}; {sent.describe()}",
                      {"milestone": milestone.key, "from": from_tier, "to_tier": ticket.tier,
                       "to": list(sent.to), "message_id": sent.message_id})
    _nobody_told(app, ticket, "escalation", sent)
    result.escalations += 1
    result.held += sent.held_until is not None
    return ticket


def _nobody_told(app: App, ticket: TicketRecord, kind: str, sent: notices.Sent) -> None:
    """A notice with nobody to go to is a config gap (an empty tier): loudly, not only as an event."""
    if not sent.to:
        log.warning("SLA %s for %s-%s went to nobody: tiers.%s.notify is empty and no agent is assigned "
                    "(fill it in %s)", kind, app.settings.ticket_prefix, ticket.id, ticket.tier,
                    app.config.path or "the config")
