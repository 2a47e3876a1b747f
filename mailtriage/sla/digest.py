"""The daily digest: one mail to the team lead on each working day of a
calendar, at a local time: open tickets per tier, what falls due today, and
what breached since the previous working day.

    the daemon's `digest` job (every 30 s) · `mailtriage digest`
        ─► due_day (pure) ─► gather (queries) ─► context (pure) ─► templates/digest.txt
        ─► outbox row + `digests` row, in one transaction

When: the digest of a local date D (in the calendar's time zone) is due from
`digest.at` on D until D ends, if D is a working day of the calendar (it has
working hours and is no public or extra holiday). A daemon that was down at
08:00 and starts at 08:20, or at 17:00, still sends D's digest; one that was
down all of D sends none for D, and the next working day's digest covers it
(its breaches start at the previous working day). The `digests` row of D is
written in the transaction of the outbox row, and D is its primary key, so a
restart, a second daemon on PostgreSQL or `mailtriage digest` by hand never
sends D's digest twice.

"Breached" lists the breaches the SLA sweep recorded whose deadline fell
between the start of the previous working day (local midnight) and the start
of D: on a Monday, Friday's, Saturday's and Sunday's. The windows of
consecutive working days tile time, so each breach is in one digest (a
breach noticed late, by a daemon that was down, still counts on the day of
its deadline: the daemon runs the sweep before the digest at start). "Due today" lists each running target of
an open ticket (not pending: its timers are paused) whose deadline lies
between now and the end of D. Subjects are customer text: they reach the
template as values only, never as template source.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailtriage.config.loaded import Config
from mailtriage.config.values import Digest
from mailtriage.model import Severity, Status, Tier, ticket_ref
from mailtriage.notify import outbox
from mailtriage.notify.compose import Outgoing
from mailtriage.notify.views import sender, short_time
from mailtriage.sla import lifecycle
from mailtriage.sla.calendar import Calendar
from mailtriage.sla.timers import LABELS
from mailtriage.store import Store
from mailtriage.store.records import record_of
from mailtriage.store.schema import DigestSent, Event, Ticket

__all__ = ["Facts", "Line", "Result", "Running", "context", "due_day", "gather", "run_once"]

log = logging.getLogger(__name__)

OPEN = (Status.NEW.value, Status.OPEN.value, Status.PENDING.value)
RUNNING = (Status.NEW.value, Status.OPEN.value)        # pending tickets' timers are paused
LISTED = 50                 # tickets listed per section; the rest is counted
LOOKBACK_DAYS = 31          # how far back the previous working day is looked for


@dataclass(frozen=True)
class Line:
    """One ticket in a list of the digest (plain values for the template)."""

    ref: str
    subject: str
    severity: str
    tier: str
    target: str                 # first response, resolution, next update
    at: str                     # the deadline, local time

    def as_context(self) -> dict[str, str]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


@dataclass(frozen=True)
class Facts:
    day: date
    since: date                                   # the first day "breached" covers
    open: dict[str, dict[str, int]]               # tier → severity → open tickets
    due_today: list[Line] = field(default_factory=list)
    breached: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    """What `run_once` did: `sent` the digest of `day`, or why not."""

    day: date | None
    sent: bool = False
    message_id: str | None = None
    why: str = ""

    def line(self) -> str:
        if self.sent:
            return f"digest of {self.day} sent ({self.message_id})"
        return f"no digest: {self.why}"


# -- when (pure) -------------------------------------------------------------------

def due_day(digest: Digest, calendar: Calendar, now: datetime, *, any_time: bool = False) -> date | None:
    """The local date whose digest is due at `now`, or None (not a working
    day, or before `digest.at`; `any_time`: whatever the time of day)."""
    local = now.astimezone(calendar.timezone)
    if not calendar.is_working_day(local.date()):
        return None
    if not any_time and local.time() < digest.at:
        return None
    return local.date()


def previous_working_day(calendar: Calendar, day: date) -> date:
    for back in range(1, LOOKBACK_DAYS + 1):
        candidate = day - timedelta(days=back)
        if calendar.is_working_day(candidate):
            return candidate
    return day - timedelta(days=1)


def midnight(calendar: Calendar, day: date) -> datetime:
    """The start of a local date, in UTC."""
    return datetime.combine(day, time(0), tzinfo=calendar.timezone).astimezone(timezone.utc)


# -- what (queries) ------------------------------------------------------------------

def gather(session: Session, config: Config, calendar: Calendar, day: date, now: datetime) -> Facts:
    """The digest's facts for local date `day`, as of `now`."""
    since = previous_working_day(calendar, day)
    return Facts(day=day, since=since, open=_open_counts(session),
                 due_today=_due(session, config, calendar, now, midnight(calendar, day + timedelta(days=1))),
                 breached=_breached(session, config, calendar, midnight(calendar, since), midnight(calendar, day)))


def _open_counts(session: Session) -> dict[str, dict[str, int]]:
    counts = {tier.value: {severity.value: 0 for severity in Severity} for tier in Tier}
    query = (select(Ticket.tier, Ticket.severity, func.count()).where(Ticket.status.in_(OPEN))
             .group_by(Ticket.tier, Ticket.severity))
    for tier, severity, number in session.execute(query):
        row = counts.setdefault(tier, {})
        row[severity] = row.get(severity, 0) + number
    return counts


def _due(session: Session, config: Config, calendar: Calendar, now: datetime, end: datetime) -> list[Line]:
    """Running targets due in [now, end). A target's deadline is never before
    the ticket's `next_deadline` (its earliest pending milestone): the index
    on that column finds the candidates."""
    settings, prefix = config.settings, config.settings.ticket_prefix
    found: list[tuple[datetime, Line]] = []
    query = select(Ticket).where(Ticket.status.in_(RUNNING), Ticket.next_deadline < end)
    for ticket in session.scalars(query.execution_options(yield_per=500)):
        timers = lifecycle.load(record_of(ticket), settings.sla, config.calendars)
        for timer in timers.timers.values():
            at = timer.when(1.0, config.calendars)
            if at is not None and now <= at < end:
                found.append((at, _line(prefix, ticket, LABELS[timer.name], at, calendar)))
    return [line for _, line in sorted(found, key=lambda item: (item[0], item[1].ref))]


def _breached(session: Session, config: Config, calendar: Calendar, start: datetime, end: datetime) -> list[Line]:
    """Breaches whose deadline lies in [start, end). The sweep notices a breach
    at or after its deadline, so the events are those recorded since `start`;
    each keeps its deadline (`due`; before that key, the time it was noticed)."""
    query = (select(Event, Ticket).join(Ticket, Event.ticket_id == Ticket.id)
             .where(Event.type == "breached", Event.at >= start))
    found = []
    for event, ticket in session.execute(query):
        data = event.data or {}
        due = _instant(data.get("due")) or event.at
        if start <= due < end:
            milestone = str(data.get("milestone", ""))
            target = LABELS.get(milestone.split(".", 1)[0], milestone or "target")
            found.append((due, _line(config.settings.ticket_prefix, ticket, target, due, calendar)))
    return [line for _, line in sorted(found, key=lambda item: (item[0], item[1].ref))]


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value).astimezone(timezone.utc) if isinstance(value, str) else None
    except ValueError:
        return None


def _line(prefix: str, ticket: Ticket, target: str, at: datetime, calendar: Calendar) -> Line:
    return Line(ref=ticket_ref(prefix, ticket.id), subject=ticket.subject, severity=ticket.severity,
                tier=ticket.tier, target=target, at=short_time(at, calendar.timezone) or "")


# -- the mail (pure) ------------------------------------------------------------------

def context(config: Config, calendar: Calendar, facts: Facts, now: datetime) -> dict[str, Any]:
    """What templates/digest.txt sees: counts and plain strings only."""
    tiers = [{"tier": tier, "total": sum(by.values()), "by_severity": dict(by)} for tier, by in facts.open.items()]
    return {
        "day": f"{facts.day:%A} {facts.day.isoformat()}", "calendar": calendar.name,
        "as_of": short_time(now, calendar.timezone), "since": f"{facts.since:%A} {facts.since.isoformat()}",
        "open_total": sum(t["total"] for t in tiers), "tiers": tiers, "severities": [s.value for s in Severity],
        "due_today": [line.as_context() for line in facts.due_today[:LISTED]],
        "due_today_total": len(facts.due_today), "due_today_more": max(0, len(facts.due_today) - LISTED),
        "breached": [line.as_context() for line in facts.breached[:LISTED]],
        "breached_total": len(facts.breached), "breached_more": max(0, len(facts.breached) - LISTED),
        "from_name": sender(config.settings, None)[1],
    }


# -- sending (the rim) ----------------------------------------------------------------

class Running(Protocol):
    """What the digest needs of the running App (the wiring module is not
    imported here: it loads the templates, whose samples use this module)."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...


def run_once(app: Running, now: datetime, *, any_time: bool = False, dry_run: bool = False) -> tuple[Result, str]:
    """Send the digest that is due at `now`, once per local day. Returns what
    happened and the mail's text (subject and body; empty when none is due).
    `any_time`: today's digest now, before `digest.at` too (`mailtriage digest`);
    `dry_run`: today's digest as it would be now, on any day; nothing stored or sent."""
    config = app.config
    digest = config.settings.digest
    if digest is None:
        return Result(None, why="no digest is configured"), ""
    calendar = config.calendars[digest.calendar]
    day = now.astimezone(calendar.timezone).date() if dry_run else due_day(digest, calendar, now, any_time=any_time)
    if day is None:
        local = now.astimezone(calendar.timezone)
        why = (f"{local:%A} {local.date()} is no working day of calendar {calendar.name}"
               if not calendar.is_working_day(local.date())
               else f"not before {digest.at:%H:%M} in calendar {calendar.name}'s time zone")
        return Result(None, why=why), ""
    try:
        with app.store.session() as session, session.begin():
            result, text = _send(session, config, calendar, day, now, dry_run)
    except IntegrityError:                # another daemon (or the CLI) has just sent it
        return Result(day, why=f"the digest of {day} was sent by another process"), ""
    if result.sent:
        log.info("digest of %s (%s) to %s: %s", day, calendar.name, ", ".join(digest.to), result.message_id)
    return result, text


def _send(session: Session, config: Config, calendar: Calendar, day: date, now: datetime,
          dry_run: bool) -> tuple[Result, str]:
    digest = config.settings.digest
    assert digest is not None
    done = session.get(DigestSent, day)
    if done is not None and not dry_run:
        return Result(day, message_id=done.message_id,
                      why=f"the digest of {day} was sent at {done.sent_at.isoformat()}"), ""
    facts = gather(session, config, calendar, day, now)
    rendered = config.templates.render("digest", context(config, calendar, facts, now))
    text = f"Subject: {rendered.subject}\n\n{rendered.body}"
    if dry_run:
        return Result(day, why="dry run: nothing stored or sent"), text
    from_addr, from_name = sender(config.settings, None)
    mail = Outgoing(from_addr=from_addr, from_name=from_name, to=tuple(digest.to), subject=rendered.subject,
                    body=rendered.body, auto_submitted="auto-generated", loop_id=config.settings.loop_id)
    row = outbox.enqueue(session, mail, kind="digest", now=now, ticket_id=None)
    session.add(DigestSent(day=day, calendar=calendar.name, sent_at=now, message_id=row.message_id))
    session.flush()                       # the day's row: a race with another sender fails here
    return Result(day, sent=True, message_id=row.message_id), text
