"""The ticket step for an authenticated agent's mail to a ticket (pure).

    agent's mail ─► trim quote and signature ─► commands at the top ─► events
                                              └─► the rest: relayed to the customers
                                                  (or an internal note, when sent
                                                  to the comment address)

The spine sends a message here only when tickets.agents believed its From:
(DESIGN invariant 5). Returns a Change like the customer step does.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field, replace

from mailtriage.config.loaded import Config
from mailtriage.config.values import agent_for
from mailtriage.mail import quotes
from mailtriage.model import Severity, Status, TicketEvent, TicketRecord, Tier
from mailtriage.notify import agentmail, customermail
from mailtriage.notify.compose import OutgoingMail
from mailtriage.sla import lifecycle
from mailtriage.tickets import surgery
from mailtriage.tickets.change import Change, Facts, Incoming, MergeOrder, SplitOrder, StoredMessage
from mailtriage.tickets.commands import CommandBlock, Merge, NotUnderstood, Parsed, Split, parse_commands
from mailtriage.tickets.transitions import TicketState, apply_command, status_after_agent_reply


@dataclass
class CommandResult:
    """What the commands of one mail did (built up while they run, then read)."""

    ticket: TicketRecord
    events: list[TicketEvent] = field(default_factory=list)
    orders: list[MergeOrder | SplitOrder] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    problems: list[NotUnderstood] = field(default_factory=list)
    assigned: str | None = None          # a new assignee other than the sender
    tier_changed: bool = False
    status_set: bool = False


def handle(incoming: Incoming, ticket: TicketRecord, facts: Facts, config: Config) -> Change:
    """Record the agent's mail, run its commands, then relay its text (or keep it internal)."""
    mail, now = incoming.mail, incoming.now
    actor, note = mail.from_addr, incoming.note
    name = agentmail.display_name(incoming.agent.agent, actor, mail.from_name)
    block = parse_commands(quotes.split_reply(without_ours(mail.body_text, facts.ours)).text)
    text = block.body.strip("\n").rstrip()
    public = bool(text.strip()) and not note
    stored = StoredMessage(dataclasses.replace(mail, body_text=text if text.strip() else _command_lines(block)),
                           "out" if public else "in", "agent" if public else "internal")
    facts = facts.with_message(mail.message_id, customer=False)
    was = ticket.status
    result = run_commands(incoming, ticket, block, config, facts)
    events, mails = _report(incoming, result, facts, config)
    ticket = result.ticket
    if note:
        events.append(TicketEvent("note", f"internal note by {actor}"))
        if text.strip() and incoming.acknowledge:
            sent, event = agentmail.notice(config.settings, config.templates, ticket, "note", facts.thread,
                                           exclude=(actor,), written=agentmail.Written(name, text, mail.message_id))
            mails += [sent] if sent else []
            events += [event] if event else []
    elif public and not incoming.acknowledge:
        events.append(TicketEvent("not-relayed", f"answer by {actor} kept: bulk import sends no mail"))
    elif public:
        ticket, relay_events, relayed = _relay(incoming, ticket, name, text, result, facts, config)
        events += relay_events
        mails += relayed
        facts = facts.with_sent(relayed[0], customermail.CUSTOMER_KINDS) if relayed else facts
    if incoming.acknowledge and ticket.status == Status.RESOLVED.value and was != Status.RESOLVED.value:
        # What was done: this mail's answer, else the latest one before it; never an internal note.
        sent, event = _resolution(ticket, text if public else facts.last_answer, facts, config)
        mails += [sent] if sent else []
        events.append(event)
    return Change(replace(ticket, updated_at=now), stored, events=tuple(events), mail=tuple(mails),
                  orders=tuple(result.orders))


def commands_on_new_ticket(incoming: Incoming, ticket: TicketRecord,
                           config: Config) -> tuple[TicketRecord, list[TicketEvent], list[OutgoingMail]]:
    """An agent opened the ticket (a phone call written down): its commands apply too."""
    block = parse_commands(quotes.split_reply(incoming.mail.body_text).text)
    if block.empty:
        return ticket, [], []
    result = run_commands(incoming, ticket, block, config)
    # No "assigned"/"tier" notice: the new-ticket notice that follows goes to the right people.
    events, mails = _report(incoming, result, Facts(), config, tell=False)
    return result.ticket, events, mails


def run_commands(incoming: Incoming, ticket: TicketRecord, block: CommandBlock, config: Config,
                 facts: Facts = Facts()) -> CommandResult:
    """Apply the commands in order, each recorded as an event. `facts`: the
    tickets `#merge` names and the message `#split` moves."""
    actor = incoming.mail.from_addr
    result = CommandResult(ticket, problems=list(block.errors))
    for parsed in block.commands:
        if isinstance(parsed.command, (Merge, Split)):
            _surgery(incoming, parsed, facts, result, config)
            continue
        before = _state(result.ticket)
        change = apply_command(before, parsed.command, actor, config.settings.agents)
        if isinstance(change, str):
            result.problems.append(NotUnderstood(parsed.line, change))
            continue
        result.ticket = _changed(result.ticket, before, change.state, incoming, config)
        result.events.append(TicketEvent(change.event, change.detail, {"command": parsed.line}))
        result.done.append(f"{parsed.line}  →  {change.event} {change.detail}")
        result.status_set = result.status_set or change.event == "status"
        if change.state.assignee != before.assignee and change.state.assignee != actor:
            result.assigned = change.state.assignee
        result.tier_changed = result.tier_changed or change.state.tier is not before.tier
    return result


def _surgery(incoming: Incoming, parsed: Parsed, facts: Facts, result: CommandResult, config: Config) -> None:
    """`#merge MT-n` and `#split`: checked here, carried out by the store (tickets.surgery)."""
    if isinstance(parsed.command, Merge):
        merged = tuple(o.other.id for o in result.orders if isinstance(o, MergeOrder))
        outcome = surgery.merge(incoming, result.ticket, parsed.command, facts, config, merged)
        if isinstance(outcome, str):
            result.problems.append(NotUnderstood(parsed.line, outcome))
            return
        result.ticket, event, order = outcome
        result.events.append(replace(event, data={**(event.data or {}), "command": parsed.line}))
        result.orders.append(order)
        result.done.append(f"{parsed.line}  →  merged")
        return
    split = surgery.split(incoming, result.ticket, facts, config,
                          any(isinstance(o, SplitOrder) for o in result.orders))
    if isinstance(split, str):
        result.problems.append(NotUnderstood(parsed.line, split))
        return
    result.orders.append(split)
    result.done.append(f"{parsed.line}  →  split off to a new ticket")


def _state(ticket: TicketRecord) -> TicketState:
    return TicketState(Status(ticket.status), Severity(ticket.severity), Tier(ticket.tier), ticket.assignee,
                       tuple(ticket.tags or ()))


def _changed(ticket: TicketRecord, before: TicketState, after: TicketState, incoming: Incoming,
             config: Config) -> TicketRecord:
    """One command's change on the ticket, with its SLA clocks kept in step."""
    sla, calendars, now = config.settings.sla, config.calendars, incoming.now
    ticket = replace(ticket, assignee=after.assignee, tags=tuple(after.tags), tier=after.tier.value)
    if after.severity is not before.severity:
        ticket = lifecycle.severity_changed(replace(ticket, severity=after.severity.value), now, sla, calendars)
    if after.status is not before.status:
        ticket = lifecycle.status_changed(replace(ticket, status=after.status.value), before.status.value, now,
                                          sla, calendars)
    return ticket


def _relay(incoming: Incoming, ticket: TicketRecord, name: str, text: str, result: CommandResult, facts: Facts,
           config: Config) -> tuple[TicketRecord, list[TicketEvent], list[OutgoingMail]]:
    """The answer to the customers; the ticket opens, and its first response is met.

    Customers the agent's own mail already reached (a reply-all) are not sent
    it a second time."""
    settings, now, actor = config.settings, incoming.now, incoming.mail.from_addr
    customers = _customers(facts, config)
    reached = sorted(set(incoming.mail.recipients) & set(customers))
    sent = customermail.answer(settings, config.templates, ticket, name, text,
                               customers=tuple(a for a in customers if a not in reached),
                               participants=facts.participants, seen=facts.customer_seen,
                               theirs=facts.customer_theirs, files=incoming.mail.attachments)
    if sent is None and not reached:
        return ticket, [TicketEvent("not-relayed", f"answer by {actor} kept: no customer on the ticket to send "
                                    "it to")], []
    said = [f"{name} ({actor}) answered"]
    if reached:
        said.append(f"reached {', '.join(reached)} directly (reply-all)")
    if sent is not None:
        recipients = [a for a in sent.mail.to + sent.mail.cc if a.lower() not in facts.suppressed] \
            or list(sent.mail.to + sent.mail.cc)         # the outbox leaves the suppressed ones out
        said.append(f"sent to {', '.join(recipients)} as {sent.message_id}")
        if sent.mail.attachments:
            said.append(f"with {len(sent.mail.attachments)} attachment(s): "
                        + ", ".join(e.filename for e in sent.mail.attachments))
    events = [TicketEvent("replied", "; ".join(said))]
    if not result.status_set:
        old = Status(ticket.status)
        new = status_after_agent_reply(old)
        if new is not old:
            events.append(TicketEvent("status", f"{old.value} → {new.value} (agent answered)"))
            ticket = lifecycle.status_changed(replace(ticket, status=new.value), old.value, now,
                                              settings.sla, config.calendars)
    ticket = lifecycle.first_response(ticket, now, settings.sla, config.calendars)
    return ticket, events, [sent] if sent is not None else []


def _customers(facts: Facts, config: Config) -> tuple[str, ...]:
    """The ticket's customers, the requester first: never our own addresses or agents."""
    settings = config.settings
    return tuple(address for address, _ in facts.participants
                 if address not in settings.own_addresses and agent_for(address, settings.agents) is None)


def _resolution(ticket: TicketRecord, answer_text: str | None, facts: Facts,
                config: Config) -> tuple[OutgoingMail | None, TicketEvent]:
    """The resolution notice to the customers: what was done, and that a reply reopens the ticket."""
    sent = customermail.resolution(config.settings, config.templates, ticket, answer_text,
                                   customers=_customers(facts, config), participants=facts.participants,
                                   seen=facts.customer_seen, theirs=facts.customer_theirs)
    if sent is None:
        return None, TicketEvent("resolution-not-sent", "no customer on the ticket to tell")
    recipients = ", ".join(sent.mail.to + sent.mail.cc)
    return sent, TicketEvent("resolution-sent", f"to {recipients} as {sent.message_id} "
                                                f"({ticket.language or config.settings.default_language})")


def _report(incoming: Incoming, result: CommandResult, facts: Facts, config: Config,
            tell: bool = True) -> tuple[list[TicketEvent], list[OutgoingMail]]:
    """The commands' events; lines not understood go back to the agent; a new
    assignee or tier hears of the ticket."""
    mail, ticket = incoming.mail, result.ticket
    events = list(result.events)
    if result.problems:
        events.append(TicketEvent("command-error", "; ".join(f"{p.line!r}: {p.why}" for p in result.problems)))
    if not incoming.acknowledge:
        return events, []                            # history import: no mail to anybody
    mails: list[OutgoingMail] = []
    if result.problems:
        name = agentmail.display_name(incoming.agent.agent, mail.from_addr, mail.from_name)
        mails.append(agentmail.command_error(
            config.settings, config.templates, ticket, mail.from_addr, name,
            tuple((p.line, p.why) for p in result.problems), tuple(result.done),
            subject=mail.subject, in_reply_to=mail.message_id))
    if tell:
        sent, event = _tell_others(incoming, result, facts, config)
        mails += [sent] if sent else []
        events += [event] if event else []
    return events, mails


def _tell_others(incoming: Incoming, result: CommandResult, facts: Facts,
                 config: Config) -> tuple[OutgoingMail | None, TicketEvent | None]:
    """A new assignee, or a new tier's team, hears about the ticket."""
    actor, ticket = incoming.mail.from_addr, result.ticket
    if result.assigned:
        return agentmail.notice(config.settings, config.templates, ticket, "assigned", facts.thread,
                                to=(result.assigned,), exclude=(actor,))
    if result.tier_changed and not ticket.assignee:
        return agentmail.notice(config.settings, config.templates, ticket, "tier", facts.thread, exclude=(actor,))
    return None, None


def without_ours(text: str, ours: tuple[str, ...]) -> str:
    """The agent's text without our own mail that it quotes (a notice, the
    customer's words and internal notes quoted in it), found by what we sent,
    whatever the quote markers: a line of ours, `>`-quoted or not, goes, and
    so does the attribution line ("… wrote:") that introduces it."""
    known = {key for body in ours for line in body.splitlines() if (key := _line_key(line))}
    if not known:
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    ours_at = {index for index, line in enumerate(lines) if _line_key(line) in known}
    for index, line in enumerate(lines):
        following = next((j for j in range(index + 1, len(lines)) if _line_key(lines[j])), None)
        if line.rstrip().endswith(":") and following in ours_at and _line_key(line) not in known:
            ours_at.add(index)                         # "Example Support wrote:" above our quoted text
    kept = [line for index, line in enumerate(lines) if index not in ours_at and not _quote_only(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")


def _line_key(line: str) -> str:
    """A line as it reads without quote markers and spacing; "" for a line
    with no letter or digit (a signature's "-- " is the agent's too)."""
    key = " ".join(line.lstrip(" \t>").split())
    return key if any(c.isalnum() for c in key) else ""


def _quote_only(line: str) -> bool:
    """An empty quoted line (">", "> >") left between lines of ours."""
    return bool(line.strip()) and not line.strip().strip(">").strip()


def _command_lines(block: CommandBlock) -> str:
    return "\n".join([p.line for p in block.commands] + [e.line for e in block.errors])
