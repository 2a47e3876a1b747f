"""Mail to agents about a ticket: notices, and the reply about commands that
were not understood (pure: values in, an OutgoingMail out).

The ticket step calls these and returns the mail in its Change; the store
writes it to the outbox in the same transaction as the ticket (exactly
once). Templates get plain values (notify.views).

Threading: notices come from the ticket's support address with `[MT-n]` in
the subject and References of the conversation. A notice also says Reply-To
the support address, so an agent's reply comes back to us and threads into
the ticket (by the tag, by References, and by the notice's own Message-ID,
which the outbox knows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailtriage.config.values import Agent, Settings, find_agent
from mailtriage.mail.language import name as language_name
from mailtriage.model import Attachment, TicketEvent, TicketRecord, Tier, ticket_ref
from mailtriage.notify import enclosures
from mailtriage.notify.compose import Outgoing, OutgoingMail, new_message_id
from mailtriage.notify.render import Templates
from mailtriage.notify.views import agent_names, reply_to, sender, ticket_view

NOTICE = "agent-notice"
COMMAND_ERROR = "command-error"
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
    files: tuple[Attachment, ...] = ()     # the message's attachments: listed, and attached up to the limit
    html: str = ""                          # its HTML, when inline images hang off it


@dataclass(frozen=True)
class Thread:
    """What the store knows of a ticket's conversation when a notice is written."""

    participants: tuple[tuple[str, str], ...]     # (address, role), the requester first
    conversation: tuple[str, ...]                 # Message-IDs, the first and the latest, oldest first


def notice_recipients(settings: Settings, ticket: TicketRecord) -> tuple[str, ...]:
    """The assignee when that is an agent, else the ticket's tier's notify list."""
    if ticket.assignee:
        address = find_agent(ticket.assignee, settings.agents)
        if address is not None:
            return (address,)
    tier = settings.tiers.get(Tier(ticket.tier))
    return tuple(tier.notify) if tier else ()


def notice(settings: Settings, templates: Templates, ticket: TicketRecord, reason: str, thread: Thread, *,
           written: Written | None = None, to: tuple[str, ...] | None = None,
           exclude: tuple[str, ...] = (), warning: str | None = None
           ) -> tuple[OutgoingMail | None, TicketEvent | None]:
    """Tell agents about the ticket: the mail and its `notified` event, or the
    event that says why nobody was told (nothing when `reason` is switched off)."""
    if reason not in settings.agent_notices:
        return None, None
    wanted = to if to is not None else notice_recipients(settings, ticket)
    recipients = tuple(a for a in wanted if a not in exclude and a not in settings.own_addresses)
    if not recipients:
        why = f"{reason}: nobody else to tell" if wanted else _nobody(ticket, reason)
        return None, TicketEvent("not-notified", why)
    headline, intro = HEADLINES[reason]
    context = ticket_context(settings, ticket, thread.participants)
    files = enclosures.for_notice(written.files, written.html, settings.agent_notice_attachments) \
        if written else enclosures.Chosen()
    context.update(headline=headline, intro=intro, warning=warning, author=written.author if written else "",
                   text=(written.text[:MAX_TEXT] if written else ""), trimmed=bool(written and written.trimmed),
                   attachments=list(files.listed), attach_limit=files.limit, left_out=files.left_out)
    rendered = templates.render("agent_notice", context)
    from_addr, from_name = sender(settings, ticket.mailbox if ticket else None)
    ids = thread.conversation
    in_reply_to = written.message_id if written and written.message_id else (ids[-1] if ids else None)
    mail = Outgoing(from_addr=from_addr, from_name=from_name, to=recipients, subject=rendered.subject,
                    body=rendered.body, in_reply_to=in_reply_to, references=ids,
                    auto_submitted="auto-generated", loop_id=settings.loop_id,
                    reply_to=reply_to(settings, from_addr, ticket.id if ticket else None, plain=True),
                    names=agent_names(settings, recipients), attachments=files.enclosures, html=files.html)
    return (OutgoingMail(NOTICE, mail, new_message_id(from_addr.partition("@")[2])),
            TicketEvent("notified", f"{reason}: to {', '.join(recipients)}"))


def command_error(settings: Settings, templates: Templates, ticket: TicketRecord | None, agent_address: str,
                  agent_name: str, problems: tuple[tuple[str, str], ...], done: tuple[str, ...], *,
                  subject: str, in_reply_to: str | None) -> OutgoingMail:
    """Tell the agent which lines (`problems`: line, why) were not understood (never a silent drop)."""
    from_addr, from_name = sender(settings, ticket.mailbox if ticket else None)
    rendered = templates.render("command_error", {
        "ref_tag": ticket_ref(settings.ticket_prefix, ticket.id) if ticket else None,
        "subject": ticket.subject if ticket else subject, "agent_name": agent_name, "from_name": from_name,
        "problems": [{"line": line, "why": why} for line, why in problems], "done": list(done)})
    mail = Outgoing(from_addr=from_addr, from_name=from_name, to=(agent_address,), subject=rendered.subject,
                    body=rendered.body, in_reply_to=in_reply_to, references=(in_reply_to,) if in_reply_to else (),
                    auto_submitted="auto-replied", loop_id=settings.loop_id, names=((agent_address, agent_name),))
    return OutgoingMail(COMMAND_ERROR, mail, new_message_id(from_addr.partition("@")[2]))


def display_name(agent: Agent | None, address: str, header_name: str) -> str:
    """How an agent is called in relayed mail: the configured name, else From:'s."""
    if agent is not None and agent.name and not agent.email.startswith("@"):
        return agent.name
    return header_name or (agent.name if agent and agent.name else address.partition("@")[0])


def ticket_context(settings: Settings, ticket: TicketRecord,
                   participants: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The values every template about a ticket may use."""
    view = ticket_view(ticket, settings)
    from_addr, from_name = sender(settings, ticket.mailbox if ticket else None)
    comment = next((m.comment_address for m in settings.mailboxes if m.address == from_addr), None)
    others = [a for a, _ in participants if a != ticket.requester]
    language = ticket.language or settings.default_language
    return {"ticket": view.as_context(), "ref_tag": view.ref, "subject": ticket.subject,
            "language": language_name(language), "language_tag": language,
            "assignee": ticket.assignee, "others": others, "from_name": from_name,
            "support_address": from_addr, "comment_address": comment,
            "show_command": f"mailtriage tickets show {view.ref}"}


def _nobody(ticket: TicketRecord, reason: str) -> str:
    if ticket.assignee:
        return f"{reason}: assignee {ticket.assignee} is not an agent, and tiers.{ticket.tier}.notify is empty"
    return f"{reason}: no assignee, and tiers.{ticket.tier}.notify is empty"
