"""The apply step: thread, classify, and change tickets — in the caller's
transaction, together with the outbox rows the change causes.

    agents.authenticate ─► thread.decide ─► an agent's mail to a ticket: relay.handle
                                        │   (commands, answer to the customers, internal note)
                                        ├─► reply to a ticket (status, merge, notice to agents)
                                        └─► new ticket (classify, deadlines, acknowledgement,
                                            notice to agents)

An agent address in From: that nothing vouches for (agents.py) is customer
mail here: never a command, never relayed, and the ticket gets an
`agent-unverified` event that says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from mailtriage import thread
from mailtriage.tickets import agents
from mailtriage.mail import quotes
from mailtriage.tickets import answers as relay
from mailtriage.tickets import transitions as tickets
from mailtriage.tickets.agents import NOT_AN_AGENT, AgentCheck
from mailtriage.app import App
from mailtriage.classify import classify
from mailtriage.tickets.commands import NotUnderstood
from mailtriage.model import ParsedMail, Status, Verdict
from mailtriage.notify import agentmail, outbox
from mailtriage.notify.compose import Outgoing, deliverable
from mailtriage.config.values import Mailbox
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
    acknowledge: bool = True       # False (bulk import): no mail to customers or agents
    agent: AgentCheck = NOT_AN_AGENT


def apply(ctx: Context) -> tuple[str, int | None]:
    """Returns the action (`new`, `reply` or `ignored:REASON`) and the ticket's number."""
    settings = ctx.app.settings
    ctx.agent = agents.authenticate(ctx.mail, settings)
    facts = queries.thread_facts(ctx.session, ctx.mail, settings.ticket_prefix, ctx.agent.trusted)
    decision = thread.decide(facts)
    ticket, merge = _target(ctx, decision, facts)
    note = to_comment_address(ctx)
    if ctx.agent.trusted and not ctx.automatic:
        if ticket is not None:
            if merge:
                queries.merge_tickets(ctx.session, ticket.id, merge, ctx.now, settings.ticket_prefix)
            relay.handle(ctx, ticket, note=note)
            return "reply", ticket.id
        if note:
            return _note_without_ticket(ctx)
    if ticket is not None and ticket.status != Status.CLOSED.value:
        reply_to_ticket(ctx, ticket, merge)
        _flag_untrusted(ctx, ticket, note)
        return "reply", ticket.id
    ticket = open_ticket(ctx, decision, ticket.id if ticket is not None else None, merge)
    _flag_untrusted(ctx, ticket, note)
    return "new", ticket.id


def _target(ctx: Context, decision: thread.ThreadDecision,
            facts: thread.ThreadFacts) -> tuple[Ticket | None, tuple[int, ...]]:
    """The ticket to add the message to, and the tickets to merge into it.

    A closed ticket stays closed. When the message also links to a ticket
    that is not closed (typically the follow-up the closed one got, whose
    mail quotes both), it goes there instead, and no closed ticket is merged."""
    if decision.ticket_id is None:
        return None, ()
    ticket = ctx.session.get(Ticket, decision.ticket_id, execution_options=queries.NO_FLUSH)
    assert ticket is not None
    if ticket.status != Status.CLOSED.value:
        return ticket, decision.merge
    linked = set(decision.merge) | set(facts.referenced_tickets) | set(facts.referring_tickets)
    others = [t for t in (ctx.session.get(Ticket, n) for n in sorted(linked - {ticket.id}))
              if t is not None and t.status != Status.CLOSED.value]
    if not others:
        return ticket, ()
    target = max(others, key=lambda t: t.id)
    return target, tuple(t.id for t in others if t.id != target.id)


def to_comment_address(ctx: Context) -> bool:
    """Was the message sent to a mailbox's comment address (an internal note)?
    Any sign of it counts: a note must never reach a customer."""
    comments = {m.comment_address for m in ctx.app.settings.mailboxes if m.comment_address}
    if not comments:
        return False
    mail = ctx.mail
    seen = {a.lower() for a in ctx.envelope_rcpts} | set(mail.recipients)
    seen |= {a.strip().strip("<>").lower() for name in ("Delivered-To", "X-Original-To")
             for a in mail.header_all(name)}
    return bool(comments & seen)


def _note_without_ticket(ctx: Context) -> tuple[str, None]:
    """An agent's note that names no ticket: tell the agent, keep nothing."""
    mail = ctx.mail
    if not ctx.acknowledge:
        return "ignored:note-without-ticket", None
    problem = NotUnderstood(mail.subject or "(no subject)", "this note names no ticket: reply to a ticket "
                            f"mail, or put [{ctx.app.settings.ticket_prefix}-n] in the subject")
    agentmail.command_error(ctx.session, ctx.app.config, None, mail.from_addr,
                            agentmail.display_name(ctx.agent.agent, mail.from_addr, mail.from_name),
                            (problem,), (), ctx.now, subject=mail.subject, in_reply_to=mail.message_id)
    return "ignored:note-without-ticket", None


def _flag_untrusted(ctx: Context, ticket: Ticket, note: bool) -> None:
    if ctx.agent.forged:
        queries.add_event(ctx.session, ticket.id, ctx.now, "agent-unverified",
                          f"From: {ctx.mail.from_addr} is an agent address, but {ctx.agent.reason}: handled as "
                          "customer mail (no commands run, nothing relayed)")
    if note and not ctx.agent.trusted:
        queries.add_event(ctx.session, ticket.id, ctx.now, "note-refused",
                          f"sent to the comment address by {ctx.mail.from_addr or '(no sender)'}, who is not an "
                          "authenticated agent: handled as customer mail")


def open_ticket(ctx: Context, decision: thread.ThreadDecision, follows: int | None,
                merge: tuple[int, ...] = ()) -> Ticket:
    settings, mail, now = ctx.app.settings, ctx.mail, ctx.now
    verdict = classify(mail, ctx.app.config.rules)
    mailbox = tickets.mailbox_for(mail, settings, ctx.envelope_rcpts)
    ticket = Ticket(
        subject=thread.display_subject(mail.subject, settings.ticket_prefix),
        requester=mail.from_addr or "(unknown sender)", status=Status.NEW.value,
        severity=verdict.severity.value, tier=verdict.tier.value,
        queue=mailbox.queue if mailbox and verdict.decided_by.get("queue") == "default" else verdict.queue,
        tags=list(verdict.tags), assignee=_assignee(ctx, verdict), mailbox=mailbox.name if mailbox else None,
        created_at=now, updated_at=now, sla_state="ok", sla_data={},
    )
    lifecycle.start(ticket, ctx.now, ctx.app.config)
    queries.insert_ticket(ctx.session, ticket)
    prefix = settings.ticket_prefix
    events: list[tuple[str, str, dict | None]] = [
        ("created", f"from {ticket.requester} via {ctx.raw.source}", None)]
    if follows is not None:
        events.append(("follow-up", f"follows the closed ticket {prefix}-{follows}", None))
    if decision.refused_tag is not None:
        events.append(("tag-refused", f"subject names {prefix}-{decision.refused_tag}, "
                       "but the sender is not a participant", None))
    events.append(("classified", _classified_detail(verdict), verdict.as_dict()))
    queries.add_events(ctx.session, ticket.id, now, events)
    queries.add_participants(ctx.session, ticket.id, tickets.customer_participants(mail, settings),
                             new_ticket=True)
    queries.add_message(ctx.session, ticket.id, mail, raw_id=ctx.raw.id, key=ctx.content_key,
                        direction="in", kind="customer", now=now)
    if merge:
        queries.merge_tickets(ctx.session, ticket.id, merge, now, prefix)
    acknowledge(ctx, ticket, mailbox)
    if ctx.agent.trusted and not ctx.automatic:
        relay.commands_on_new_ticket(ctx, ticket)
    _notify_agents(ctx, ticket, "new")
    return ticket


def _assignee(ctx: Context, verdict: Verdict) -> str | None:
    """A rule's `assignee: alice` names an agent: store the agent's address."""
    if verdict.assignee is None:
        return None
    return tickets.find_agent(verdict.assignee, ctx.app.settings.agents) or verdict.assignee


def reply_to_ticket(ctx: Context, ticket: Ticket, merge: tuple[int, ...]) -> None:
    settings, now = ctx.app.settings, ctx.now
    queries.add_message(ctx.session, ticket.id, ctx.mail, raw_id=ctx.raw.id, key=ctx.content_key,
                        direction="in", kind="customer", now=now)
    queries.add_participants(ctx.session, ticket.id, tickets.customer_participants(ctx.mail, settings))
    if merge:
        queries.merge_tickets(ctx.session, ticket.id, merge, now, settings.ticket_prefix)
    ticket.updated_at = now
    if ctx.automatic:
        # An out-of-office answer is no news: it neither reopens the ticket nor pages anybody.
        queries.add_event(ctx.session, ticket.id, now, "auto-reply-received",
                          f"automatic mail ({ctx.automatic}) attached, not answered")
        return
    old = ticket.status
    new_status = tickets.status_after_customer_reply(Status(old))
    if new_status is not None and new_status.value != old:
        queries.add_event(ctx.session, ticket.id, now, "status", f"{old} → {new_status.value} (customer replied)")
        ticket.status = new_status.value
        lifecycle.status_changed(ticket, old, now, ctx.app.config)
    _notify_agents(ctx, ticket, "reply")


def _notify_agents(ctx: Context, ticket: Ticket, reason: str) -> None:
    """The assignee or the tier hears of new tickets and customers' replies,
    with the text (quoted history cut) — not during a bulk import."""
    if not ctx.acknowledge or (ctx.automatic and reason == "reply"):
        return
    mail = ctx.mail
    reply = quotes.split_reply(mail.body_text)
    author = f"{mail.from_name} <{mail.from_addr}>" if mail.from_name else mail.from_addr
    warning = None
    if ctx.agent.forged:
        warning = (f"this mail claims to come from the agent {mail.from_addr}, but {ctx.agent.reason}. "
                   "It was handled as customer mail.")
    exclude = (mail.from_addr,) if ctx.agent.trusted else ()
    agentmail.notify(ctx.session, ctx.app.config, ticket, reason, ctx.now, exclude=exclude, warning=warning,
                     written=agentmail.Written(author, reply.with_signature or mail.body_text.strip(),
                                               mail.message_id, reply.trimmed))


def _classified_detail(verdict: Verdict) -> str:
    rules = ", ".join(verdict.matched_rules) or "no rule matched (default)"
    return f"{verdict.severity.value} {verdict.tier.value} queue={verdict.queue} rules: {rules}"


def acknowledge(ctx: Context, ticket: Ticket, mailbox: Mailbox | None) -> None:
    """The acknowledgement, unless that would answer automatic mail or flood one sender."""
    why_not = _no_ack_reason(ctx)
    if why_not:
        queries.add_event(ctx.session, ticket.id, ctx.now, "not-acknowledged", why_not)
        return
    settings, mail = ctx.app.settings, ctx.mail
    to = tickets.reply_address(mail)
    assert to is not None
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
    if row.status == "suppressed":
        queries.add_event(ctx.session, ticket.id, ctx.now, "not-acknowledged",
                          f"{to} hard-bounced earlier: mail to it is suppressed")
        return
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
    if not deliverable(to):
        return f"{to} cannot be written into a plain (non-SMTPUTF8) mail"
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
