"""SLA notices: warning and escalation mail, composed and put in the outbox.

Called by the sweep inside its transaction, so the notice, the ticket's new
tier and the record that the notice went out commit together (exactly once).
Notices thread with the ticket (In-Reply-To/References of its conversation,
`[MT-n]` in the subject), carry `Auto-Submitted: auto-generated`, and a
notice to a tier that has a `calendar:` waits in the outbox until that
calendar's next working minute — except for S1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailtriage.mail.language import name as language_name
from mailtriage.config.loaded import Config
from mailtriage.model import Severity, TicketRecord, Tier
from mailtriage.notify import outbox
from mailtriage.notify.compose import Outgoing
from mailtriage.config.values import agent_for
from mailtriage.sla.calendar import Calendar
from mailtriage.sla.deadlines import Milestone
from mailtriage.sla.durations import format_duration
from mailtriage.sla.timers import LABELS, RUNNING, Timer, Timers
from mailtriage.store import queries
from mailtriage.store.noticereads import NoticeReads
from mailtriage.store.schema import Event, Message
from mailtriage.notify.views import agent_names, reply_to, sender, short_time, ticket_view, ticket_zone

HISTORY_LINES = 25
EXCERPT_LINES = 15


@dataclass(frozen=True)
class Sent:
    """What became of one notice: to whom, and until when it is held."""

    to: tuple[str, ...]
    held_until: datetime | None = None
    message_id: str | None = None
    nobody: str = "nobody to notify"          # why `to` is empty
    clock: str = ""                           # a warning's timer, as describe_timer writes it

    def describe(self) -> str:
        if not self.to:
            return self.nobody
        text = f"to {', '.join(self.to)}"
        if self.held_until is not None:
            text += f", held until {self.held_until.isoformat()}"
        return text


def warning(session: Session, config: Config, ticket: TicketRecord, timers: Timers, milestone: Milestone,
            now: datetime, reads: NoticeReads | None = None, rows: list[dict[str, Any]] | None = None) -> Sent:
    """A warning at `warn_at`: to the assignee when that is an agent, else the tier's list.
    `reads`: the sweep batch's conversations and suppressions, read once for all its notices;
    `rows`: where the batch gathers its outbox rows (outbox.insert_rows), else the row goes into the session.
    The Sent's `clock` describes the timer (the event's words), from the notice's own line of it."""
    settings = config.settings
    assignee = ticket.assignee
    personal = bool(assignee and "@" in assignee and not assignee.startswith("@")
                    and agent_for(assignee, settings.agents) is not None)
    context = warning_context(config, ticket, timers, timers.timers[milestone.timer], now)
    if personal:
        assert assignee is not None
        sent = _send(session, config, ticket, "warning", context, (assignee,), None, now, reads, rows)
    else:
        sent = _send(session, config, ticket, "warning", context, *_tier_recipients(config, ticket, now), now=now,
                     reads=reads, rows=rows)
    return Sent(sent.to, sent.held_until, sent.message_id, sent.nobody, _described(context["clock"]))


def escalation(session: Session, config: Config, ticket: TicketRecord, timers: Timers, reason: str,
               from_tier: str, now: datetime, reads: NoticeReads | None = None,
               rows: list[dict[str, Any]] | None = None) -> Sent:
    """Tell the ticket's (new) tier why it has the ticket now, with summary, history and deadlines."""
    context = escalation_context(config, ticket, timers, now, reason=reason, from_tier=from_tier,
                                 history=_history(session, config, ticket), excerpt=_excerpt(session, ticket))
    return _send(session, config, ticket, "escalation", context, *_tier_recipients(config, ticket, now), now=now,
                 reads=reads, rows=rows)


def warning_context(config: Config, ticket: TicketRecord, timers: Timers, timer: Timer,
                    now: datetime) -> dict[str, Any]:
    """What the warning template sees (notify.samples renders it with a sample ticket)."""
    context = _context(config, ticket, timers, now)
    # The timer's line among the deadlines when it is one of the ticket's: a line costs business-time sums.
    lines = [line for line, other in zip(context["deadlines"], timers.timers.values()) if other is timer]
    clock = lines[0] if lines else _timer_line(timer, config, now)
    return {**context, "clock": clock}      # templates say {{ clock.label }} …


def escalation_context(config: Config, ticket: TicketRecord, timers: Timers, now: datetime, *, reason: str,
                       from_tier: str, history: list[dict[str, str]], excerpt: list[str]) -> dict[str, Any]:
    """What the escalation template sees: `ticket` is at its new tier already."""
    return {**_context(config, ticket, timers, now), "reason": reason, "from_tier": from_tier,
            "to_tier": ticket.tier, "history": history, "excerpt": excerpt}


def describe_timer(timer: Timer, config: Config, now: datetime) -> str:
    """`first response: 48m of 1h used, due Mon 2026-03-02 10:00 CET` (for events)."""
    return _described(_timer_line(timer, config, now))


def _described(line: dict[str, Any]) -> str:
    return f"{line['label']}: {line['used']} of {line['target']} used, due {line['due']}"


def local_time(at: datetime | None, calendar: Calendar) -> str:
    return short_time(at, calendar.timezone) or "-"


# -- pieces ---------------------------------------------------------------------

def _tier_recipients(config: Config, ticket: TicketRecord, now: datetime) -> tuple[tuple[str, ...], datetime | None]:
    tier = config.settings.tiers.get(Tier(ticket.tier))
    if tier is None:
        return (), None
    held = None
    if tier.calendar is not None and ticket.severity != Severity.S1.value:
        calendar = config.calendars[tier.calendar]
        if not calendar.is_working(now):
            held = calendar.next_opening(now)
    return tuple(tier.notify), held


def _timer_line(timer: Timer, config: Config, now: datetime) -> dict[str, Any]:
    calendar = config.calendars[timer.calendar]
    used = timer.used(now, config.calendars)
    due = timer.when(1.0, config.calendars)
    state = _timer_state(timer, due, now)
    shown = due if due and state != "met" else None          # a target met is no longer due
    return {"name": timer.name, "label": LABELS[timer.name], "state": state,
            "target": format_duration(timer.target), "used": format_duration(used),
            "remaining": format_duration(max(timer.target - used, timedelta(0))),
            "due": local_time(shown, calendar) if shown else "", "calendar": timer.calendar}


def _timer_state(timer: Timer, due: datetime | None, now: datetime) -> str:
    if timer.state == RUNNING:
        return "overdue" if due is not None and due <= now else "running"
    if timer.state == "stopped":
        return timer.outcome or "stopped"
    return timer.state


def _context(config: Config, ticket: TicketRecord, timers: Timers, now: datetime) -> dict[str, Any]:
    settings = config.settings
    view = ticket_view(ticket, settings)
    ref = view.ref
    lines = [_timer_line(timer, config, now) for timer in timers.timers.values()]
    return {"ticket": view.as_context(), "ref_tag": ref, "subject": ticket.subject,
            "assignee": ticket.assignee, "created_at": short_time(ticket.created_at, ticket_zone(settings, ticket)),
            "deadlines": lines, "show_command": f"mailtriage tickets show {ref}",
            "from_name": sender(settings, ticket.mailbox)[1],
            "language": language_name(ticket.language or settings.default_language)}


def _history(session: Session, config: Config, ticket: TicketRecord) -> list[dict[str, str]]:
    zone = ticket_zone(config.settings, ticket)
    events = list(session.scalars(select(Event).where(Event.ticket_id == ticket.id)
                                  .order_by(Event.id.desc()).limit(HISTORY_LINES)))
    return [{"at": short_time(e.at, zone) or "", "type": e.type, "detail": e.detail} for e in reversed(events)]


def _excerpt(session: Session, ticket: TicketRecord) -> list[str]:
    first = session.scalar(select(Message.body_text).where(Message.ticket_id == ticket.id)
                           .order_by(Message.id).limit(1))
    lines = (first or "").strip().splitlines()
    return lines[:EXCERPT_LINES] + (["…"] if len(lines) > EXCERPT_LINES else [])


def _send(session: Session, config: Config, ticket: TicketRecord, kind: str, context: dict[str, Any],
          to: tuple[str, ...], held_until: datetime | None, now: datetime, reads: NoticeReads | None = None,
          rows: list[dict[str, Any]] | None = None) -> Sent:
    if not to:
        return Sent((), nobody=f"NOBODY NOTIFIED: tiers.{ticket.tier}.notify is empty and no agent is assigned")
    settings = config.settings
    rendered = config.templates.render(kind, context)
    from_addr, from_name = sender(settings, ticket.mailbox)
    thread = reads.conversation(ticket.id) if reads is not None else None
    if thread is None:
        thread = queries.conversation_ids(session, ticket.id)
    mail = Outgoing(from_addr=from_addr, from_name=from_name, to=to, subject=rendered.subject,
                    body=rendered.body, in_reply_to=thread[-1] if thread else None, references=tuple(thread),
                    auto_submitted="auto-generated", loop_id=settings.loop_id, names=agent_names(settings, to),
                    reply_to=reply_to(settings, from_addr, ticket.id))
    suppressed = reads.blocked(mail.to) if reads is not None else None
    if rows is not None:
        values = outbox.prepare(session, mail, kind=kind, now=now, ticket_id=ticket.id, suppressed=suppressed)
        values["due_at"] = held_until or values["due_at"]
        rows.append(values)
        return Sent(to, held_until, values["message_id"])
    row = outbox.enqueue(session, mail, kind=kind, now=now, ticket_id=ticket.id, suppressed=suppressed)
    if held_until is not None:
        row.due_at = held_until
    return Sent(to, held_until, row.message_id)
