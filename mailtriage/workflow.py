"""The apply step: thread, classify, and change tickets — in the caller's
transaction, together with the outbox rows the change causes.

    thread.decide ─► new ticket (classify, deadlines, acknowledgement)
                 └─► reply to a ticket (status, merge)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from mailtriage import thread, tickets
from mailtriage.app import App
from mailtriage.classify import classify
from mailtriage.model import ParsedMail, Severity, Status, Verdict
from mailtriage.notify import outbox
from mailtriage.notify.compose import Outgoing
from mailtriage.sla import lifecycle
from mailtriage.store import queries
from mailtriage.store.schema import RawMessage, Ticket

log = logging.getLogger(__name__)


@dataclass
class Context:
    app: App
    session: Session
    raw: RawMessage
    mail: ParsedMail
    content_key: str
    now: datetime
    automatic: str | None          # why the message is automatic mail, or None
    envelope_rcpts: tuple[str, ...] = ()
    acknowledge: bool = True


def apply(ctx: Context) -> tuple[str, int]:
    """Returns the action (`new` or `reply`) and the ticket's number."""
    settings = ctx.app.settings
    is_agent = tickets.agent_for(ctx.mail.from_addr, settings.agents) is not None
    facts = queries.thread_facts(ctx.session, ctx.mail, settings.ticket_prefix, is_agent)
    decision = thread.decide(facts)
    if decision.ticket_id is not None:
        ticket = ctx.session.get(Ticket, decision.ticket_id)
        assert ticket is not None
        if ticket.status != Status.CLOSED.value:
            reply_to_ticket(ctx, ticket, decision)
            return "reply", ticket.id
        follow_up = ticket.id
    else:
        follow_up = None
    ticket = open_ticket(ctx, decision, follow_up)
    return "new", ticket.id


def open_ticket(ctx: Context, decision: thread.ThreadDecision, follows: int | None) -> Ticket:
    settings, mail, now = ctx.app.settings, ctx.mail, ctx.now
    verdict = classify(mail, ctx.app.config.rules)
    mailbox = tickets.mailbox_for(mail, settings, ctx.envelope_rcpts)
    ticket = Ticket(
        subject=thread.display_subject(mail.subject, settings.ticket_prefix),
        requester=mail.from_addr or "(unknown sender)", status=Status.NEW.value,
        severity=verdict.severity.value, tier=verdict.tier.value,
        queue=mailbox.queue if mailbox and verdict.decided_by.get("queue") == "default" else verdict.queue,
        tags=list(verdict.tags), assignee=verdict.assignee, mailbox=mailbox.name if mailbox else None,
        created_at=now, updated_at=now, sla_state="ok", sla_data={},
    )
    lifecycle.start(ticket, ctx.now, ctx.app.config)
    ctx.session.add(ticket)
    ctx.session.flush()
    prefix = settings.ticket_prefix
    queries.add_event(ctx.session, ticket.id, now, "created", f"from {ticket.requester} via {ctx.raw.source}")
    if follows is not None:
        queries.add_event(ctx.session, ticket.id, now, "follow-up", f"follows the closed ticket {prefix}-{follows}")
    if decision.refused_tag is not None:
        queries.add_event(ctx.session, ticket.id, now, "tag-refused",
                          f"subject names {prefix}-{decision.refused_tag}, but the sender is not a participant")
    queries.add_event(ctx.session, ticket.id, now, "classified", _classified_detail(verdict), verdict.as_dict())
    queries.add_participants(ctx.session, ticket.id, tickets.customer_participants(mail, settings))
    queries.add_message(ctx.session, ticket.id, mail, raw_id=ctx.raw.id, key=ctx.content_key,
                        direction="in", kind="customer", now=now)
    if decision.merge:
        queries.merge_tickets(ctx.session, ticket.id, decision.merge, now, prefix)
    acknowledge(ctx, ticket)
    return ticket


def reply_to_ticket(ctx: Context, ticket: Ticket, decision: thread.ThreadDecision) -> None:
    settings, now = ctx.app.settings, ctx.now
    queries.add_message(ctx.session, ticket.id, ctx.mail, raw_id=ctx.raw.id, key=ctx.content_key,
                        direction="in", kind="customer", now=now)
    queries.add_participants(ctx.session, ticket.id, tickets.customer_participants(ctx.mail, settings))
    if decision.merge:
        queries.merge_tickets(ctx.session, ticket.id, decision.merge, now, settings.ticket_prefix)
    new_status = tickets.status_after_customer_reply(Status(ticket.status))
    if new_status is not None and new_status.value != ticket.status:
        queries.add_event(ctx.session, ticket.id, now, "status",
                          f"{ticket.status} → {new_status.value} (customer replied)")
        ticket.status = new_status.value
    if ctx.automatic:
        queries.add_event(ctx.session, ticket.id, now, "auto-reply-received",
                          f"automatic mail ({ctx.automatic}) attached, not answered")
    ticket.updated_at = now


def _classified_detail(verdict: Verdict) -> str:
    rules = ", ".join(verdict.matched_rules) or "no rule matched (default)"
    return f"{verdict.severity.value} {verdict.tier.value} queue={verdict.queue} rules: {rules}"


def acknowledge(ctx: Context, ticket: Ticket) -> None:
    """The acknowledgement, unless that would answer automatic mail or flood one sender."""
    why_not = _no_ack_reason(ctx)
    if why_not:
        queries.add_event(ctx.session, ticket.id, ctx.now, "not-acknowledged", why_not)
        return
    settings, mail = ctx.app.settings, ctx.mail
    to = tickets.reply_address(mail)
    assert to is not None
    mailbox = tickets.mailbox_for(mail, settings, ctx.envelope_rcpts)
    from_addr = mailbox.address if mailbox else "support@localhost"
    from_name = mailbox.from_name if mailbox else "Support"
    view = _view(ctx, ticket)
    rendered = ctx.app.config.templates.render("acknowledgement", {
        "ticket": view.as_context(), "ref_tag": view.ref, "subject": ticket.subject,
        "customer_name": mail.from_name, "from_name": from_name,
        "first_response_due": view.first_response_due,
    })
    outgoing = Outgoing(
        from_addr=from_addr, from_name=from_name, to=(to,), subject=rendered.subject, body=rendered.body,
        in_reply_to=mail.message_id, references=tuple(dict.fromkeys(mail.references + (mail.message_id,))),
        auto_submitted="auto-replied", loop_id=settings.loop_id,
    )
    row = outbox.enqueue(ctx.session, outgoing, kind="acknowledgement", now=ctx.now, ticket_id=ticket.id)
    queries.log_auto_reply(ctx.session, to, ctx.now)
    queries.add_event(ctx.session, ticket.id, ctx.now, "acknowledged", f"to {to} as {row.message_id}")


def _no_ack_reason(ctx: Context) -> str | None:
    auto = ctx.app.settings.auto_reply
    if not ctx.acknowledge:
        return "acknowledgements are off for this run"
    if not auto.enabled:
        return "auto_reply.enabled is false"
    if ctx.automatic:
        return f"automatic mail ({ctx.automatic}) is never answered"
    to = tickets.reply_address(ctx.mail)
    if to is None:
        return "no address to answer"
    if to in ctx.app.settings.own_addresses:
        return "the sender is one of our own addresses"
    if queries.auto_replies_since(ctx.session, to, ctx.now - auto.per_sender_window) >= auto.per_sender_limit:
        return f"rate limit: {auto.per_sender_limit} automatic replies to {to} within {auto.per_sender_window}"
    return None


def _view(ctx: Context, ticket: Ticket) -> tickets.TicketView:
    def fmt(at: datetime | None) -> str | None:
        return at.isoformat(timespec="minutes") if at else None

    return tickets.TicketView(
        ref=tickets.ticket_ref(ctx.app.settings.ticket_prefix, ticket.id), subject=ticket.subject,
        requester=ticket.requester, status=ticket.status, severity=ticket.severity, tier=ticket.tier,
        queue=ticket.queue, tags=tuple(ticket.tags), first_response_due=fmt(ticket.first_response_due),
        resolution_due=fmt(ticket.resolution_due))
