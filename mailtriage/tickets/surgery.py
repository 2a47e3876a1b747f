"""Ticket surgery by mail (pure): `#merge MT-n` and `#split` in an authenticated agent's mail.

    answers.run_commands ─► merge() / split(): checked against Facts.named and
        Facts.answered, the ticket's clocks combined ─► a MergeOrder / SplitOrder in
        the Change ─► pipeline.surgery moves the rows ─► split_opened(): the new
        ticket's events, acknowledgement and notice

`#merge MT-n` (on ticket T): MT-n's messages, references, our mail about it
and its customers move to T; MT-n is closed with `merged_into` T, so mail to
its tag or reply token threads into T. Its own events stay on MT-n (its
history, where it happened); each ticket gets a `merged` event naming the
other. The SLA clocks: see sla.lifecycle.merged.

`#split` (on ticket T): the customer message the agent's mail answers (its
In-Reply-To, or the message our notice it answers was about) and the later
messages of T that refer to it (and our mail about them) move to a new
ticket, classified by the rules as a new ticket would be, whose requester is
that message's sender and whose clocks start at that message's arrival
(history if T is: sla.lifecycle.split_off; an answer in the agent's mail
stays on T and is T's first response, not the new ticket's). Its
customer gets the new ticket's acknowledgement (the new [MT-n], threaded to
their message); the agents get its `new` notice. Each ticket gets a `split`
event naming the other.
"""

from __future__ import annotations

from dataclasses import replace

from mailtriage.classify import classify
from mailtriage.config.loaded import Config
from mailtriage.model import Status, TicketEvent, TicketRecord, ticket_ref
from mailtriage.notify import agentmail, customermail
from mailtriage.notify.compose import OutgoingMail, deliverable
from mailtriage.sla import lifecycle
from mailtriage.thread import display_subject
from mailtriage.tickets.change import Answered, Change, Facts, Incoming, MergeOrder, SplitOrder
from mailtriage.tickets.commands import Merge
from mailtriage.tickets.transitions import customer_participants


def merge(incoming: Incoming, survivor: TicketRecord, command: Merge, facts: Facts, config: Config,
          done: tuple[int, ...]) -> tuple[TicketRecord, TicketEvent, MergeOrder] | str:
    """The survivor with the merged ticket's clocks, its event, and the order
    for the store; or why not (a string, for the agent's command-error mail).
    `done`: tickets this mail merged already."""
    prefix, now, actor = config.settings.ticket_prefix, incoming.now, incoming.mail.from_addr
    ref, here = ticket_ref(prefix, command.number), ticket_ref(prefix, survivor.id)
    if command.prefix.upper() != prefix.upper():
        return f"{command.prefix}-{command.number} is not a ticket here (tickets are {prefix}-n)"
    if command.number == survivor.id:
        return f"{ref} is this ticket: a ticket cannot be merged into itself"
    if command.number in done:
        return f"{ref} was merged by an earlier line of this mail"
    other = next((t for t in facts.named if t.id == command.number), None)
    if other is None:
        return f"there is no ticket {ref}"
    if other.merged_into is not None:
        return (f"{ref} was already merged into {ticket_ref(prefix, other.merged_into)}: "
                f"merge {ticket_ref(prefix, other.merged_into)} if that is what you mean")
    if survivor.status == Status.CLOSED.value:
        return f"{here} is closed: reopen it first (#status open on the line above), then merge into it"
    sla, calendars = config.settings.sla, config.calendars
    kept, said = lifecycle.merged(survivor, other, ref, now, sla, calendars)
    closed = lifecycle.status_changed(replace(other, status=Status.CLOSED.value, merged_into=survivor.id,
                                              updated_at=now), other.status, now, sla, calendars)
    clocks = "; ".join(said) or "no clock ran on both"
    event = TicketEvent("merged", f"{ref} merged into this ticket by {actor}: its messages, customers and mail "
                        f"are here now; clocks: {clocks}", {"merged": ref, "by": actor})
    theirs = TicketEvent("merged", f"merged into {here} by {actor} (was {other.status}): its messages, customers "
                         f"and mail moved there, and mail to {ref} goes there", {"into": here, "by": actor})
    return replace(kept, updated_at=now), event, MergeOrder(closed, (theirs,))


def split(incoming: Incoming, ticket: TicketRecord, facts: Facts, config: Config,
          done: bool) -> SplitOrder | str:
    """The order to split the answered message off `ticket`, or why not. The
    `split` event on `ticket` is written by the store, with the new number."""
    answered = facts.answered
    if done:
        return "this mail already split a message off"
    if answered is None:
        return ("#split needs the customer message to move: reply to that message, or to our notice "
                "about it (the In-Reply-To of your mail names neither)")
    if answered.first:
        return ("that is the ticket's first message: splitting it would move the whole ticket "
                "(nothing would stay behind)")
    return _split_order(incoming, ticket, answered, config)


def _split_order(incoming: Incoming, source: TicketRecord, answered: Answered, config: Config) -> SplitOrder:
    settings, mail = config.settings, answered.mail
    verdict = classify(mail, config.rules, settings.priority_matrix)     # as a new ticket's (pipeline.spine)
    people = tuple(customer_participants(mail, settings))
    requester = people[0][0] if people else (mail.from_addr or source.requester)
    queue = source.queue if verdict.decided_by.get("queue") == "default" else verdict.queue
    ticket = TicketRecord(
        id=0, subject=display_subject(mail.subject, settings.ticket_prefix), requester=requester,
        status=Status.NEW.value, severity=verdict.severity.value, tier=verdict.tier.value, queue=queue,
        tags=verdict.tags, assignee=None, mailbox=source.mailbox, created_at=answered.arrived,
        updated_at=incoming.now, impact=verdict.impact.value if verdict.impact else None,
        urgency=verdict.urgency.value if verdict.urgency else None)
    history = incoming.history or lifecycle.imported_at(source)    # README "The first day: history"
    ticket = lifecycle.split_off(ticket, answered.arrived, incoming.now, ticket_ref(settings.ticket_prefix,
                                 source.id), settings.sla, config.calendars, history)
    return SplitOrder(answered, ticket, replace(verdict, queue=queue), people, incoming.mail.from_addr)


def split_opened(order: SplitOrder, ticket: TicketRecord, source: TicketRecord, moved: tuple[str, ...],
                 facts: Facts, config: Config, acknowledge: bool) -> Change:
    """The new ticket (numbered by the store) once `moved` (Message-IDs) are
    on it: its events, the customer's acknowledgement and the agents' notice."""
    settings, mail, prefix = config.settings, order.answered.mail, config.settings.ticket_prefix
    source_ref = ticket_ref(prefix, source.id)
    verdict = order.verdict
    events = [TicketEvent("created", f"split off {source_ref} by {order.actor}: {len(moved)} message(s) moved "
                          f"({', '.join(moved)})", {"split_from": source_ref, "moved": list(moved)}),
              TicketEvent("classified", f"{verdict.severity.value} {verdict.tier.value} queue={verdict.queue} "
                          f"rules: {', '.join(verdict.matched_rules) or 'no rule matched (default)'}",
                          verdict.as_dict())]
    mails: list[OutgoingMail] = []
    if acknowledge:
        mailbox = next((m for m in settings.mailboxes if m.name == ticket.mailbox), None)
        if deliverable(ticket.requester) and ticket.requester.lower() not in facts.suppressed:
            sent = customermail.acknowledgement(settings, config.templates, ticket, mail, ticket.requester, mailbox)
            mails.append(sent)
            events.append(TicketEvent("acknowledged", f"to {ticket.requester} as {sent.message_id}: the new "
                                      "reference for the message split off"))
        else:
            events.append(TicketEvent("not-acknowledged", f"{ticket.requester} cannot be mailed"))
        author = f"{mail.from_name} <{mail.from_addr}>" if mail.from_name else mail.from_addr
        notice, event = agentmail.notice(settings, config.templates, ticket, "new", facts.thread,
                                         exclude=(order.actor,),
                                         written=agentmail.Written(author, mail.body_text.strip(), mail.message_id))
        mails += [notice] if notice else []
        events += [event] if event else []
    return Change(ticket, None, order.people, new_ticket=True, events=tuple(events), mail=tuple(mails))


def split_event(order: SplitOrder, new_ref: str, moved: tuple[str, ...]) -> TicketEvent:
    """The source ticket's record of what left it."""
    return TicketEvent("split", f"{new_ref} split off by {order.actor}: {len(moved)} message(s) moved there "
                       f"({', '.join(moved)})", {"split_to": new_ref, "moved": list(moved)})
