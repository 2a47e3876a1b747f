"""Mail that agents' work causes: notices to agents, answers relayed to
customers, and the short reply about commands that were not understood.

Called from the apply step inside its transaction, so the mail goes into
the outbox together with the ticket change (exactly once). Everything here
is composed by notify.compose from an `Outgoing`; templates get plain values.

Threading: notices and relayed answers come from the ticket's support
address with `[MT-n]` in the subject and References of the conversation.
A notice also says Reply-To the support address, so an agent's reply comes
back to us and threads into the ticket (by the tag, by References, and by
the notice's own Message-ID, which the outbox knows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailtriage.app import Config
from mailtriage.tickets.commands import NotUnderstood
from mailtriage.model import Tier
from mailtriage.notify import outbox
from mailtriage.notify.compose import Outgoing
from mailtriage.config.values import Agent, Settings
from mailtriage.store import queries
from mailtriage.store.schema import OutboxRow, Ticket
from mailtriage.tickets.transitions import TicketView, agent_for, find_agent, ticket_ref

NOTICE = "agent-notice"
RELAY = "agent-reply"
COMMAND_ERROR = "command-error"
# Outgoing kinds the customers see: the References of the next mail to them.
CUSTOMER_KINDS = ("acknowledgement", RELAY)
MAX_TEXT = 20_000               # characters of a customer's text quoted in a notice

HEADLINES = {
    "new": ("New ticket", "A new ticket was opened."),
    "reply": ("Customer replied", "The customer wrote again."),
    "note": ("Internal note", "An internal note was added (customers do not see it)."),
    "assigned": ("Assigned to you", "The ticket was assigned to you."),
    "tier": ("Escalated", "The ticket was moved to your tier."),
}


@dataclass(frozen=True)
class Written:
    """The message a notice is about: who wrote what."""

    author: str
    text: str
    message_id: str | None = None
    trimmed: bool = False


def notice_recipients(settings: Settings, ticket: Ticket) -> tuple[str, ...]:
    """The assignee when that is an agent, else the ticket's tier's notify list."""
    if ticket.assignee:
        address = find_agent(ticket.assignee, settings.agents)
        if address is not None:
            return (address,)
    tier = settings.tiers.get(Tier(ticket.tier))
    return tuple(tier.notify) if tier else ()


def notify(session: Session, config: Config, ticket: Ticket, reason: str, now: datetime, *,
           written: Written | None = None, to: tuple[str, ...] | None = None,
           exclude: tuple[str, ...] = (), warning: str | None = None) -> OutboxRow | None:
    """Tell agents about the ticket; records a `notified` event (or why nobody was)."""
    settings = config.settings
    if reason not in settings.agent_notices:
        return None
    wanted = to if to is not None else notice_recipients(settings, ticket)
    recipients = tuple(a for a in wanted if a not in exclude and a not in settings.own_addresses)
    if not recipients:
        why = f"{reason}: nobody else to tell" if wanted else _nobody(settings, ticket, reason)
        queries.add_event(session, ticket.id, now, "not-notified", why)
        return None
    headline, intro = HEADLINES[reason]
    context = _ticket_context(session, config, ticket)
    context.update(headline=headline, intro=intro, warning=warning, author=written.author if written else "",
                   text=(written.text[:MAX_TEXT] if written else ""), trimmed=bool(written and written.trimmed))
    rendered = config.templates.render("agent_notice", context)
    from_addr, from_name = sender(settings, ticket)
    thread = queries.conversation_ids(session, ticket.id)
    in_reply_to = written.message_id if written and written.message_id else (thread[-1] if thread else None)
    mail = Outgoing(from_addr=from_addr, from_name=from_name, to=recipients, subject=rendered.subject,
                    body=rendered.body, in_reply_to=in_reply_to, references=tuple(thread),
                    auto_submitted="auto-generated", loop_id=settings.loop_id, reply_to=from_addr)
    row = outbox.enqueue(session, mail, kind=NOTICE, now=now, ticket_id=ticket.id)
    queries.add_event(session, ticket.id, now, "notified", f"{reason}: to {', '.join(recipients)}")
    return row


def relay(session: Session, config: Config, ticket: Ticket, agent_name: str, text: str,
          now: datetime) -> OutboxRow | None:
    """An agent's answer, to the requester and the other customers on the ticket,
    from the support address in the agent's name ("Alice via Support")."""
    settings = config.settings
    people = [address for address, _ in queries.participants(session, ticket.id)
              if address not in settings.own_addresses and agent_for(address, settings.agents) is None]
    if not people:
        return None
    from_addr, from_name = sender(settings, ticket)
    rendered = config.templates.render("agent_reply", {**_ticket_context(session, config, ticket),
                                                       "text": text, "agent_name": agent_name})
    thread = queries.customer_thread(session, ticket.id, CUSTOMER_KINDS)
    last_theirs = queries.customer_thread(session, ticket.id, ())
    mail = Outgoing(from_addr=from_addr, from_name=f"{agent_name} via {from_name}", to=(people[0],),
                    cc=tuple(people[1:]), subject=rendered.subject, body=rendered.body,
                    in_reply_to=last_theirs[-1] if last_theirs else (thread[-1] if thread else None),
                    references=tuple(thread), auto_submitted=None, loop_id=settings.loop_id)
    return outbox.enqueue(session, mail, kind=RELAY, now=now, ticket_id=ticket.id)


def command_error(session: Session, config: Config, ticket: Ticket | None, agent_address: str, agent_name: str,
                  problems: tuple[NotUnderstood, ...], done: tuple[str, ...], now: datetime, *,
                  subject: str, in_reply_to: str | None) -> OutboxRow:
    """Tell the agent which lines were not understood (never a silent drop)."""
    settings = config.settings
    from_addr, from_name = sender(settings, ticket)
    rendered = config.templates.render("command_error", {
        "ref_tag": ticket_ref(settings.ticket_prefix, ticket.id) if ticket else None,
        "subject": ticket.subject if ticket else subject, "agent_name": agent_name, "from_name": from_name,
        "problems": [{"line": p.line, "why": p.why} for p in problems], "done": list(done)})
    mail = Outgoing(from_addr=from_addr, from_name=from_name, to=(agent_address,), subject=rendered.subject,
                    body=rendered.body, in_reply_to=in_reply_to, references=(in_reply_to,) if in_reply_to else (),
                    auto_submitted="auto-replied", loop_id=settings.loop_id)
    return outbox.enqueue(session, mail, kind=COMMAND_ERROR, now=now, ticket_id=ticket.id if ticket else None)


def sender(settings: Settings, ticket: Ticket | None) -> tuple[str, str]:
    """The ticket's support address and display name."""
    for mailbox in settings.mailboxes:
        if ticket is not None and mailbox.name == ticket.mailbox:
            return mailbox.address, mailbox.from_name
    if settings.mailboxes:
        return settings.mailboxes[0].address, settings.mailboxes[0].from_name
    return "support@localhost", "Support"


def display_name(agent: Agent | None, address: str, header_name: str) -> str:
    """How an agent is called in relayed mail: the configured name, else From:'s."""
    if agent is not None and agent.name and not agent.email.startswith("@"):
        return agent.name
    return header_name or (agent.name if agent and agent.name else address.partition("@")[0])


def _ticket_context(session: Session, config: Config, ticket: Ticket) -> dict[str, Any]:
    settings = config.settings
    ref = ticket_ref(settings.ticket_prefix, ticket.id)
    view = TicketView(ref=ref, subject=ticket.subject, requester=ticket.requester, status=ticket.status,
                      severity=ticket.severity, tier=ticket.tier, queue=ticket.queue, tags=tuple(ticket.tags or ()),
                      first_response_due=_fmt(ticket.first_response_due), resolution_due=_fmt(ticket.resolution_due))
    from_addr, from_name = sender(settings, ticket)
    comment = next((m.comment_address for m in settings.mailboxes if m.address == from_addr), None)
    others = [a for a, _ in queries.participants(session, ticket.id) if a != ticket.requester]
    return {"ticket": view.as_context(), "ref_tag": ref, "subject": ticket.subject, "assignee": ticket.assignee,
            "others": others, "from_name": from_name, "support_address": from_addr,
            "comment_address": comment, "show_command": f"mailtriage tickets show {ref}"}


def _nobody(settings: Settings, ticket: Ticket, reason: str) -> str:
    if ticket.assignee:
        return f"{reason}: assignee {ticket.assignee} is not an agent, and tiers.{ticket.tier}.notify is empty"
    return f"{reason}: no assignee, and tiers.{ticket.tier}.notify is empty"


def _fmt(at: datetime | None) -> str | None:
    return at.isoformat(timespec="minutes") if at else None
