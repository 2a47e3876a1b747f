"""What the board shows, read from the store: plain values for the templates.

Every function takes an open session and `now` (the board's clock), reads,
and returns dicts and tuples; nothing here writes. SLA states are computed
at `now` from each ticket's timers (`sla.lifecycle`, `sla.deadlines`), as
the sweep would, so a deadline that passed shows as breached before the
sweep has run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailtriage.config.loaded import Config
from mailtriage.model import Status, parse_ref, ticket_ref
from mailtriage.sla import deadlines, lifecycle
from mailtriage.sla.report import Facts, build
from mailtriage.store.records import record_of
from mailtriage.store.schema import Event, Ticket

OPEN = (Status.NEW.value, Status.OPEN.value, Status.PENDING.value)
SOON = timedelta(hours=1)
BOARD_LIMIT = 200          # per SLA list: a wall screen shows the first ones anyway
ACTIVITY = 30
FILTERS = ("status", "severity", "tier", "queue")


@dataclass(frozen=True)
class Deadline:
    ref: str
    subject: str
    severity: str
    tier: str
    queue: str
    status: str
    target: str              # first response | resolution
    due: datetime | None
    zone: str                # the target calendar's time zone (IANA name)


def counts(session: Session) -> dict[str, Any]:
    """Open tickets by queue × severity × tier: {"severities", "tiers", "queues": [(queue, {(sev, tier): n})]}."""
    rows = session.execute(select(Ticket.queue, Ticket.severity, Ticket.tier, func.count()).where(
        Ticket.status.in_(OPEN)).group_by(Ticket.queue, Ticket.severity, Ticket.tier))
    table: dict[str, dict[tuple[str, str], int]] = {}
    for queue, severity, tier, number in rows:
        table.setdefault(queue, {})[(severity, tier)] = number
    return {"queues": sorted(table.items()), "total": sum(sum(cells.values()) for cells in table.values())}


def sla_board(session: Session, config: Config, now: datetime) -> tuple[list[Deadline], list[Deadline]]:
    """(breached, due within the hour) among open tickets, earliest deadline first.
    Candidates come from the indexed columns; each is then judged on its timers."""
    query = select(Ticket).where(Ticket.status.in_(OPEN), or_(
        Ticket.sla_state == "breached", Ticket.next_deadline <= now + SOON)).order_by(Ticket.next_deadline)
    breached: list[Deadline] = []
    soon: list[Deadline] = []
    settings = config.settings
    for ticket in session.scalars(query.limit(BOARD_LIMIT * 4)):
        timers = lifecycle.load(record_of(ticket), settings.sla, config.calendars)
        state = deadlines.state_of(timers, ticket.status, now, settings.sla.warn_at, config.calendars)
        line = _deadline(ticket, config)
        if state == "breached":
            breached.append(line)
        elif ticket.status != Status.PENDING.value and line.due is not None and now < line.due <= now + SOON:
            soon.append(line)
    return _earliest(breached), _earliest(soon)


def _earliest(lines: list[Deadline]) -> list[Deadline]:
    return sorted(lines, key=lambda d: (d.due is None, d.due or datetime.min, d.ref))[:BOARD_LIMIT]


def _deadline(ticket: Ticket, config: Config) -> Deadline:
    """The target the ticket is working towards: the first response until
    there was one, then the resolution."""
    due: datetime | None
    if ticket.first_responded_at is None and ticket.first_response_due is not None:
        target, due = "first response", ticket.first_response_due
    else:
        target, due = "resolution", ticket.resolution_due
    return Deadline(ticket_ref(config.settings.ticket_prefix, ticket.id), ticket.subject, ticket.severity,
                    ticket.tier, ticket.queue, ticket.status, target, due, zone_of(config, ticket.severity))


def zone_of(config: Config, severity: str) -> str:
    """The time zone of the calendar the severity's SLA target counts in."""
    target = config.settings.sla.targets.get(severity)  # type: ignore[call-overload]  # str-valued enum keys
    calendar = config.calendars.get(target.calendar) if target is not None else None
    return calendar.timezone.key if calendar is not None else "UTC"


def activity(session: Session, prefix: str, limit: int = ACTIVITY) -> list[dict[str, Any]]:
    """The latest events on any ticket, newest first."""
    rows = session.execute(select(Event.at, Event.type, Event.detail, Event.ticket_id, Ticket.subject).join(
        Ticket, Ticket.id == Event.ticket_id).order_by(Event.id.desc()).limit(limit))
    return [{"at": at, "type": type_, "detail": detail, "ref": ticket_ref(prefix, number), "subject": subject}
            for at, type_, detail, number, subject in rows]


def tickets(session: Session, prefix: str, filters: dict[str, str], limit: int = 500) -> list[dict[str, Any]]:
    """`tickets list` with the overview's filters (exact values; status `open`
    by default means every open status)."""
    query = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
    statuses = [filters["status"]] if filters.get("status") else list(OPEN)
    query = query.where(Ticket.status.in_(statuses))
    for key in ("severity", "tier", "queue"):
        if filters.get(key):
            query = query.where(getattr(Ticket, key) == filters[key])
    return [_summary(ticket, prefix) for ticket in session.scalars(query)]


def _summary(ticket: Ticket, prefix: str) -> dict[str, Any]:
    return {"ref": ticket_ref(prefix, ticket.id), "subject": ticket.subject, "requester": ticket.requester,
            "status": ticket.status, "severity": ticket.severity, "tier": ticket.tier, "queue": ticket.queue,
            "assignee": ticket.assignee, "sla_state": ticket.sla_state, "created_at": ticket.created_at,
            "updated_at": ticket.updated_at, "first_response_due": ticket.first_response_due,
            "resolution_due": ticket.resolution_due, "tags": list(ticket.tags or [])}


def ticket(session: Session, config: Config, ref: str, now: datetime) -> dict[str, Any] | None:
    """One ticket with its messages and events (as `tickets show`), or None."""
    prefix = config.settings.ticket_prefix
    number = parse_ref(ref, prefix)
    row = session.get(Ticket, number) if number is not None else None
    if row is None:
        return None
    timers = lifecycle.load(record_of(row), config.settings.sla, config.calendars)
    data = _summary(row, prefix)
    data["sla_now"] = deadlines.state_of(timers, row.status, now, config.settings.sla.warn_at, config.calendars)
    data["zone"] = zone_of(config, row.severity)
    data["participants"] = sorted(p.email for p in row.participants)
    data["messages"] = [{"direction": m.direction, "kind": m.kind, "from": m.from_addr,
                         "to": list(m.to_addrs or []), "cc": list(m.cc_addrs or []), "date": m.date or m.created_at,
                         "subject": m.subject, "body": m.body_text, "threaded_via": m.threaded_via,
                         "attachments": list(m.attachments or [])} for m in row.messages]
    data["events"] = [{"at": e.at, "type": e.type, "detail": e.detail} for e in reversed(row.events)]
    return data


def report(session: Session, config: Config, now: datetime) -> dict[str, Any]:
    """`report sla` over every ticket, as of `now`."""
    query = select(Ticket.severity, Ticket.tier, Ticket.queue, Ticket.first_responded_at, Ticket.resolved_at,
                   Ticket.sla_data).execution_options(yield_per=1000)
    rows = (Facts(severity, tier, queue, responded is not None, resolved is not None, data or {})
            for severity, tier, queue, responded, resolved, data in session.execute(query))
    return build(rows, config.calendars, now, None)
