"""Mail to customers about a ticket: the acknowledgement, an agent's answer
relayed to them, and the resolution notice (pure: values in, an OutgoingMail out).

Each renders in the customer's language: `templates/<ticket.language>/NAME.txt`,
else the default language's, else `templates/NAME.txt` (notify.render).

An answer goes from the support address in the agent's name ("Alice via
Support") to the requester, with the other customers on Cc; it threads to
the customer's newest message and carries References of what the customers
have seen (their own mail, acknowledgements, earlier answers), never the
Message-IDs of internal notes or notices.

An answer is a person's mail: no Auto-Submitted and no X-Loop, so another
helpdesk (another mailtriage) takes it as the human mail it is. Our own
loop check does not need X-Loop on it: an answer comes back to us From:
our support address, with a Message-ID in our outbox (pipeline.spine).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailtriage.config.values import Mailbox, Settings
from mailtriage.model import Attachment, ParsedMail, TicketRecord
from mailtriage.notify import enclosures
from mailtriage.notify.agentmail import ticket_context
from mailtriage.notify.compose import Outgoing, OutgoingMail, new_message_id
from mailtriage.notify.render import Templates
from mailtriage.notify.views import (FALLBACK_SENDER, greeting_name, long_time, reply_to, sender, ticket_view,
                                    ticket_zone)

if TYPE_CHECKING:
    from mailtriage.kb.index import Suggestion

ACKNOWLEDGEMENT = "acknowledgement"
ANSWER = "agent-reply"
RESOLUTION = "resolution"
# Outgoing kinds the customers see: the References of the next mail to them.
CUSTOMER_KINDS = (ACKNOWLEDGEMENT, ANSWER, RESOLUTION)
MAX_SUMMARY = 1_500             # characters of the agent's last answer quoted in the resolution notice


def languages(settings: Settings, ticket: TicketRecord) -> tuple[str | None, ...]:
    """The template languages to try for a ticket's customer: theirs, then the default."""
    return (ticket.language, settings.default_language)


def language_of(settings: Settings, ticket: TicketRecord) -> str:
    return ticket.language or settings.default_language


def acknowledgement(settings: Settings, templates: Templates, ticket: TicketRecord, mail: ParsedMail,
                    to: str, mailbox: Mailbox | None, suggestions: Sequence[Suggestion] = ()) -> OutgoingMail:
    """"We have your message": to `to`, threaded to the customer's mail, listing
    the knowledge base's `suggestions` (their titles and urls are values, never
    template source). The sender's name greets them and stays on To: when `to`
    is the From: address (a Reply-To elsewhere, a web form's, is somebody we do
    not know by name)."""
    from_addr, from_name = (mailbox.address, mailbox.from_name) if mailbox else FALLBACK_SENDER
    view = ticket_view(ticket, settings)
    name = mail.from_name if to == mail.from_addr else ""
    rendered = templates.render("acknowledgement", {
        "ticket": view.as_context(), "ref_tag": view.ref, "subject": ticket.subject,
        "customer_name": greeting_name(name), "from_name": from_name,
        "first_response_due": long_time(ticket.first_response_due, ticket_zone(settings, ticket),
                                        language_of(settings, ticket)),
        "suggestions": [{"title": s.title, "url": s.url} for s in suggestions],
    }, languages(settings, ticket))
    outgoing = Outgoing(
        from_addr=from_addr, from_name=from_name, to=(to,), subject=rendered.subject, body=rendered.body,
        in_reply_to=mail.message_id, references=tuple(dict.fromkeys(mail.references + (mail.message_id,))),
        auto_submitted="auto-replied", loop_id=settings.loop_id, names=((to, name),) if name else (),
        reply_to=reply_to(settings, from_addr, ticket.id),
    )
    return OutgoingMail(ACKNOWLEDGEMENT, outgoing, new_message_id(from_addr.partition("@")[2]))


def answer(settings: Settings, templates: Templates, ticket: TicketRecord, agent_name: str, text: str, *,
           customers: tuple[str, ...], participants: tuple[tuple[str, str], ...],
           seen: tuple[str, ...], theirs: tuple[str, ...],
           files: tuple[Attachment, ...] = ()) -> OutgoingMail | None:
    """An agent's answer to `customers` (None: there is nobody to send it to),
    with the agent's `files` (the fixed config, the log they asked for) byte for byte.

    `seen`: the Message-IDs the customers have seen, oldest first; `theirs`:
    the customers' own messages, oldest first."""
    if not customers:
        return None
    from_addr, from_name = sender(settings, ticket.mailbox if ticket else None)
    rendered = templates.render("agent_reply", {**ticket_context(settings, ticket, participants),
                                                "text": text, "agent_name": agent_name},
                                languages(settings, ticket))
    outgoing = Outgoing(from_addr=from_addr, from_name=f"{agent_name} via {from_name}", to=(customers[0],),
                        cc=customers[1:], subject=rendered.subject, body=rendered.body,
                        in_reply_to=theirs[-1] if theirs else (seen[-1] if seen else None),
                        references=seen, auto_submitted=None, loop_id=None,
                        reply_to=reply_to(settings, from_addr, ticket.id if ticket else None),
                        attachments=enclosures.relayed(files))
    return OutgoingMail(ANSWER, outgoing, new_message_id(from_addr.partition("@")[2]))


def resolution(settings: Settings, templates: Templates, ticket: TicketRecord, answer_text: str | None, *,
               customers: tuple[str, ...], participants: tuple[tuple[str, str], ...],
               seen: tuple[str, ...], theirs: tuple[str, ...]) -> OutgoingMail | None:
    """"Your ticket is resolved": to `customers` (the requester first), with
    what was done (the agent's last public answer, `answer_text`, cut to
    MAX_SUMMARY characters at a line) and that a reply reopens it. Automatic
    mail (Auto-Submitted: auto-generated), threaded like an answer."""
    if not customers:
        return None
    from_addr, from_name = sender(settings, ticket.mailbox if ticket else None)
    summary, cut = trimmed(answer_text or "")
    rendered = templates.render(RESOLUTION, {**ticket_context(settings, ticket, participants),
                                             "summary": summary, "summary_cut": cut}, languages(settings, ticket))
    outgoing = Outgoing(from_addr=from_addr, from_name=from_name, to=(customers[0],), cc=customers[1:],
                        subject=rendered.subject, body=rendered.body,
                        in_reply_to=seen[-1] if seen else (theirs[-1] if theirs else None),
                        references=seen, auto_submitted="auto-generated", loop_id=settings.loop_id)
    return OutgoingMail(RESOLUTION, outgoing, new_message_id(from_addr.partition("@")[2]))


def trimmed(text: str, limit: int = MAX_SUMMARY) -> tuple[str, bool]:
    """`text` cut to at most `limit` characters, at the last line (or word) that fits."""
    text = text.strip()
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    cut = head.rfind("\n") if head.rfind("\n") > limit // 2 else head.rfind(" ")
    return head[:cut if cut > 0 else limit].rstrip(), True
