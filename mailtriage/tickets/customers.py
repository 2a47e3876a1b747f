"""The ticket step for customer mail: a new ticket, or a reply to one (pure).

    Incoming ─► open_ticket: classified, clocks started, acknowledged, agents told
             └► reply: recorded, reopened if it was pending or resolved, agents told

Each function returns a Change (tickets.change) that the store writes. An
agent address in From: that nothing vouches for (tickets.agents) is customer
mail here: never a command, never relayed, and the ticket gets an
`agent-unverified` event that says so.
"""

from __future__ import annotations

from dataclasses import replace

from mailtriage.config.loaded import Config
from mailtriage.config.values import Mailbox, find_agent
from mailtriage.mail import guards, language, quotes
from mailtriage.mail.tokens import base_address
from mailtriage.model import Status, TicketEvent, TicketRecord, Verdict
from mailtriage.notify import agentmail, customermail
from mailtriage.notify.compose import OutgoingMail, deliverable
from mailtriage.sla import lifecycle
from mailtriage.thread import display_subject
from mailtriage.tickets import answers
from mailtriage.tickets.change import Change, Facts, Incoming, StoredMessage
from mailtriage.tickets.commands import Merge, Split, parse_commands
from mailtriage.tickets.transitions import customer_participants, reply_address, status_after_customer_reply


def people_of(incoming: Incoming, config: Config) -> list[tuple[str, str]]:
    """The customers a message names, the requester first. An authenticated
    agent who writes to support with the customer in To/Cc opens the ticket
    for that customer (a phone call written down): the customer is the
    requester, the agent is not a participant."""
    people = customer_participants(incoming.mail, config.settings)
    if incoming.agent.trusted and not incoming.automatic and people:
        people = [(people[0][0], "requester"), *people[1:]]
    return people


def requester_of(incoming: Incoming, config: Config) -> str | None:
    """Whom a new ticket's acknowledgement goes to."""
    if incoming.agent.trusted and not incoming.automatic:
        people = people_of(incoming, config)
        if people:
            return people[0][0]
    return reply_address(incoming.mail)


def new_ticket(incoming: Incoming, verdict: Verdict, mailbox: Mailbox | None, config: Config) -> TicketRecord:
    """The ticket a new conversation opens (its number comes from the store)."""
    settings, mail, now = config.settings, incoming.mail, incoming.now
    people = people_of(incoming, config)
    queue = mailbox.queue if mailbox and verdict.decided_by.get("queue") == "default" else verdict.queue
    assignee = None if verdict.assignee is None else (find_agent(verdict.assignee, settings.agents)
                                                     or verdict.assignee)
    requester = people[0][0] if people else (mail.from_addr or "(unknown sender)")
    ticket = TicketRecord(
        id=0, subject=display_subject(mail.subject, settings.ticket_prefix), requester=requester,

        status=Status.NEW.value, severity=verdict.severity.value, tier=verdict.tier.value, queue=queue, tags=verdict.tags, assignee=assignee,
        mailbox=mailbox.name if mailbox else None, created_at=now, updated_at=now,
        impact=verdict.impact.value if verdict.impact else None,
        urgency=verdict.urgency.value if verdict.urgency else None)
    return lifecycle.start(ticket, now, settings.sla, config.calendars, history=incoming.history)


def first_language(incoming: Incoming, config: Config) -> language.Decision:
    """The language of a new ticket's first message (None: the default's)."""
    mail = incoming.mail
    if incoming.read.first_language is not None:
        return incoming.read.first_language
    return config.detector.of_message(mail.header("Content-Language"), mail.subject, mail.body_text)


def open_ticket(incoming: Incoming, ticket: TicketRecord, verdict: Verdict, mailbox: Mailbox | None,
                facts: Facts, config: Config, *, follows: int | None, refused_tag: int | None) -> Change:
    """What a new ticket's first message does: events, acknowledgement, commands, notices."""
    prefix, mail = config.settings.ticket_prefix, incoming.mail
    decision = first_language(incoming, config)
    ticket = replace(ticket, language=decision.language or config.settings.default_language)
    events = [TicketEvent("created", f"from {ticket.requester} via {incoming.source}"),
              _language_event(decision, ticket.language or "")]
    if follows is not None:
        events.append(TicketEvent("follow-up", f"follows the closed ticket {prefix}-{follows}"))
    if refused_tag is not None:
        events.append(TicketEvent("tag-refused", f"subject names {prefix}-{refused_tag}, "
                                  "but the sender is not a participant"))
    verdict = replace(verdict, queue=ticket.queue)     # the queue set: the mailbox's, unless a rule chose one
    events.append(TicketEvent("classified", _classified_detail(verdict), verdict.as_dict()))
    people = people_of(incoming, config)
    if incoming.automatic:
        people = people[:1]                 # automatic mail Cc's nobody onto the ticket
    facts = facts.with_people(people).with_message(mail.message_id, customer=not incoming.automatic)
    mails: list[OutgoingMail] = []
    if incoming.agent.trusted and not incoming.automatic:
        # The commands first: the customer's acknowledgement tells the final severity.
        ticket, command_events, mails = answers.commands_on_new_ticket(incoming, ticket, config)
        events += command_events
    acks, acked, ack_events = _acknowledge(incoming, ticket, mailbox, facts, config)
    facts = facts if not acks else facts.with_sent(acks[0], customermail.CUSTOMER_KINDS)
    events += ack_events
    notice_mail, notice_events = _notify_agents(incoming, ticket, "new", facts, config)
    kind = "auto" if incoming.automatic else "customer"
    return Change(ticket, StoredMessage(mail, "in", kind), tuple(people), new_ticket=True,
                  events=tuple(events + notice_events + _untrusted(incoming)),
                  mail=tuple(acks + mails + notice_mail), auto_replied_to=acked)


def reply(incoming: Incoming, ticket: TicketRecord, facts: Facts, config: Config) -> Change:
    """A customer's reply: recorded; it reopens a pending or resolved ticket and tells the agents."""
    mail, now = incoming.mail, incoming.now
    # Automatic mail (an out-of-office, a stranger's auto-reply) joins the
    # ticket, but adds nobody and is never the message answers reply to.
    people = [] if incoming.automatic else customer_participants(mail, config.settings)
    facts = facts.with_people(people).with_message(mail.message_id, customer=not incoming.automatic)
    message = StoredMessage(mail, "in", "auto" if incoming.automatic else "customer")
    if incoming.history is not None:        # history comes in any order: the ticket spans its mail
        ticket = replace(ticket, created_at=min(ticket.created_at, now), updated_at=max(ticket.updated_at, now))
    else:
        ticket = replace(ticket, updated_at=now)
    revived = incoming.history is None and not incoming.automatic and lifecycle.is_history(ticket)
    if revived:
        return _revive(incoming, ticket, message, people, facts, config)
    if incoming.automatic:
        # An out-of-office answer is no news: it neither reopens the ticket nor pages anybody.
        event = TicketEvent("auto-reply-received", f"automatic mail ({incoming.automatic}) attached, not answered")
        return Change(ticket, message, tuple(people), events=(event, *_untrusted(incoming)))
    ticket, events = _reply_language(incoming, ticket, config)
    old = ticket.status
    new_status = status_after_customer_reply(Status(old))
    if new_status is not None and new_status.value != old:
        events.append(TicketEvent("status", f"{old} → {new_status.value} (customer replied)"))
        ticket = lifecycle.status_changed(replace(ticket, status=new_status.value), old, now,
                                          config.settings.sla, config.calendars)
    notice_mail, notice_events = _notify_agents(incoming, ticket, "reply", facts, config)
    return Change(ticket, message, tuple(people), events=tuple(events + notice_events + _untrusted(incoming)),
                  mail=tuple(notice_mail))


def _revive(incoming: Incoming, ticket: TicketRecord, message: StoredMessage, people: list[tuple[str, str]],
            facts: Facts, config: Config) -> Change:
    """Live mail on a ticket imported as history: the customer is waiting from
    now on, so it is acknowledged as a new ticket is, and its timers start now."""
    settings, now = config.settings, incoming.now
    mailbox = next((m for m in settings.mailboxes if m.name == ticket.mailbox), None)
    events = [TicketEvent("revived", "live mail on a ticket imported as history: SLA timers start now")]
    old = ticket.status
    new_status = status_after_customer_reply(Status(old))
    if new_status is not None and new_status.value != old:
        events.append(TicketEvent("status", f"{old} → {new_status.value} (customer replied)"))
        ticket = replace(ticket, status=new_status.value)
    ticket = lifecycle.revive(ticket, now, settings.sla, config.calendars)
    mails, acked, ack_events = _acknowledge(incoming, ticket, mailbox, facts, config)
    facts = facts if not mails else facts.with_sent(mails[0], customermail.CUSTOMER_KINDS)
    notice_mail, notice_events = _notify_agents(incoming, ticket, "reply", facts, config)
    return Change(ticket, message, tuple(people), events=tuple(events + ack_events + notice_events
                                                                + _untrusted(incoming)),
                  mail=tuple(mails + notice_mail), auto_replied_to=acked)


def to_comment_address(incoming: Incoming, config: Config) -> bool:
    """Was the message sent to a mailbox's comment address (an internal note)?
    Any sign of it counts: a note must never reach a customer."""
    comments = {m.comment_address for m in config.settings.mailboxes if m.comment_address}
    if not comments:
        return False
    mail = incoming.mail
    seen = {a.lower() for a in incoming.envelope_rcpts} | set(mail.recipients)
    seen |= {a.strip().strip("<>").lower() for name in ("Delivered-To", "X-Original-To")
             for a in mail.header_all(name)}
    return bool(comments & (seen | {base_address(a) for a in seen}))


def _untrusted(incoming: Incoming) -> list[TicketEvent]:
    events = []
    own = incoming.read.own_text
    if own is None:
        own = quotes.split_reply(incoming.mail.body_text).text
    surgery = [p.line for p in parse_commands(own).commands if isinstance(p.command, (Merge, Split))]
    if surgery and not incoming.agent.trusted:
        events.append(TicketEvent("command-refused", f"{', '.join(surgery)} from {incoming.mail.from_addr or '?'}: "
                                  "only an authenticated agent's mail runs commands; nothing was merged or split"))
    if incoming.agent.forged:
        events.append(TicketEvent("agent-unverified", f"From: {incoming.mail.from_addr} is an agent address, but "
                                  f"{incoming.agent.reason}: handled as customer mail (no commands run, nothing "
                                  "relayed)"))
    if incoming.note and not incoming.agent.trusted:
        events.append(TicketEvent("note-refused", f"sent to the comment address by "
                                  f"{incoming.mail.from_addr or '(no sender)'}, who is not an authenticated agent: "
                                  "handled as customer mail"))
    return events


def _notify_agents(incoming: Incoming, ticket: TicketRecord, reason: str, facts: Facts,
                   config: Config) -> tuple[list, list[TicketEvent]]:
    """The assignee or the tier hears of new tickets and customers' replies,
    with the text (quoted history cut, forwarded mail kept) — not during a history import."""
    if not incoming.acknowledge or (incoming.automatic and reason == "reply"):
        return [], []
    mail = incoming.mail
    split = quotes.split_keeping_forwards(mail.body_text, mail.subject)     # a forward is for the agent to read
    author = f"{mail.from_name} <{mail.from_addr}>" if mail.from_name else mail.from_addr
    warning = None
    if incoming.agent.forged:
        warning = (f"this mail claims to come from the agent {mail.from_addr}, but {incoming.agent.reason}. "
                   "It was handled as customer mail.")
    exclude = (mail.from_addr,) if incoming.agent.trusted else ()
    written = agentmail.Written(author, split.with_signature or mail.body_text.strip(), mail.message_id,
                                split.history_cut,      # "(quoted history cut)": a signature is kept
                                files=mail.attachments, html=mail.html)
    sent, event = agentmail.notice(config.settings, config.templates, ticket, reason, facts.thread,
                                   exclude=exclude, warning=warning, written=written)
    return ([sent] if sent else []), ([event] if event else [])


def _classified_detail(verdict: Verdict) -> str:
    rules = ", ".join(verdict.matched_rules) or "no rule matched (default)"
    return f"{verdict.severity.value} {verdict.tier.value} queue={verdict.queue} rules: {rules}; {verdict.priority}"


def _acknowledge(incoming: Incoming, ticket: TicketRecord, mailbox: Mailbox | None, facts: Facts,
                 config: Config) -> tuple[list, str | None, list[TicketEvent]]:
    """The acknowledgement, unless that would answer automatic mail or flood one sender;
    it lists up to three knowledge-base articles that match the mail (event `kb-suggested`)."""
    why_not = _no_ack_reason(incoming, facts, config)
    if why_not:
        return [], None, [TicketEvent("not-acknowledged", why_not)]
    to = requester_of(incoming, config)
    assert to is not None
    suggestions = config.kb.search(f"{incoming.mail.subject}\n{incoming.mail.body_text}",
                                   language=ticket.language or config.settings.default_language)
    sent = customermail.acknowledgement(config.settings, config.templates, ticket, incoming.mail, to, mailbox,
                                        suggestions)
    if to.lower() in facts.suppressed:          # the outbox keeps it, as `suppressed`
        return [sent], None, [TicketEvent("not-acknowledged", f"{to} hard-bounced earlier: mail to it is suppressed")]
    events = [TicketEvent("acknowledged", f"to {to} as {sent.message_id}")]
    if suggestions:
        events.append(TicketEvent("kb-suggested", "; ".join(f"{s.title} ({s.language}, score {s.score:.1f})"
                                                            for s in suggestions),
                                  {"articles": [s.as_dict() for s in suggestions]}))
    return [sent], to, events


def _language_event(decision: language.Decision, tag: str) -> TicketEvent:
    """How the new ticket's language was found."""
    how = decision.explain() if decision.language else f"default_language, {decision.explain()}"
    return TicketEvent("language", f"{language.name(tag)}: {how}", {"language": tag, "via": decision.via})


def _reply_language(incoming: Incoming, ticket: TicketRecord, config: Config) -> tuple[TicketRecord, list[TicketEvent]]:
    """A customer's reply in another language switches the ticket only when
    the next one is in that language too (mail.language.after_reply)."""
    mail, default = incoming.mail, config.settings.default_language
    decision = incoming.read.reply_language
    if decision is None:
        decision = config.detector.of_message(mail.header("Content-Language"), "", mail.body_text)
    current = ticket.language or default
    after = language.after_reply(current, ticket.language_pending, decision.language)
    ticket = replace(ticket, language=after.language, language_pending=after.pending)
    if after.switched:
        return ticket, [TicketEvent("language", f"{language.name(current)} → {language.name(after.language)}: "
                                    f"{language.SWITCH_AFTER} customer replies in a row in it",
                                    {"language": after.language, "via": decision.via})]
    return ticket, []


def _no_ack_reason(incoming: Incoming, facts: Facts, config: Config) -> str | None:
    settings = config.settings
    auto = settings.auto_reply
    if not incoming.acknowledge:
        return "acknowledgements are off for this run"
    if not auto.enabled:
        return "auto_reply.enabled is false"
    if incoming.automatic:
        return f"automatic mail ({incoming.automatic}) is never answered"
    to = requester_of(incoming, config)
    if to is None:
        return "no address to answer"
    if to == reply_address(incoming.mail) and guards.refuses_auto_reply(incoming.mail):
        return "X-Auto-Response-Suppress asks for no automatic reply"      # the sender's wish, for the sender
    if not deliverable(to):
        return f"{to} cannot be written into a plain (non-SMTPUTF8) mail"
    if to in settings.own_addresses:
        return "the sender is one of our own addresses"
    if facts.auto_replies >= auto.per_sender_limit:
        return f"rate limit: {auto.per_sender_limit} automatic replies to {to} within {auto.per_sender_window}"
    return None
