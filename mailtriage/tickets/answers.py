"""The apply step for an authenticated agent's mail to a ticket.

    agent's mail ─► trim quote and signature ─► commands at the top ─► events
                                              └─► the rest: relayed to the customers
                                                  (or an internal note, when sent
                                                  to the comment address)

workflow.apply() sends a message here only when agents.authenticate()
believed its From: (DESIGN invariant 5); everything runs in the caller's
transaction, the outgoing mail included.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailtriage.mail import quotes
from mailtriage.tickets import transitions as tickets
from mailtriage.tickets.commands import CommandBlock, NotUnderstood, parse_commands
from mailtriage.model import Severity, Status, Tier
from mailtriage.notify import agentmail
from mailtriage.sla import lifecycle
from mailtriage.store import queries
from mailtriage.store.schema import Ticket
from mailtriage.tickets.transitions import TicketState

if TYPE_CHECKING:
    from mailtriage.tickets.customers import Context


@dataclass
class CommandResult:
    """What the commands of one mail did."""

    done: list[str] = field(default_factory=list)
    problems: list[NotUnderstood] = field(default_factory=list)
    assigned: str | None = None          # a new assignee other than the sender
    tier_changed: bool = False
    status_set: bool = False


def handle(ctx: "Context", ticket: Ticket, *, note: bool) -> None:
    """Record the agent's mail, run its commands, then relay its text (or keep it internal)."""
    mail, session, now, config = ctx.mail, ctx.session, ctx.now, ctx.app.config
    actor = mail.from_addr
    name = agentmail.display_name(ctx.agent.agent, actor, mail.from_name)
    reply = quotes.split_reply(mail.body_text)
    block = parse_commands(reply.text)
    text = block.body.strip("\n").rstrip()
    public = bool(text.strip()) and not note
    stored = text if text.strip() else _command_lines(block)
    queries.add_message(session, ticket.id, dataclasses.replace(mail, body_text=stored), raw_id=ctx.raw.id,
                        key=ctx.content_key, direction="out" if public else "in",
                        kind="agent" if public else "internal", now=now)
    result = run_commands(ctx, ticket, block)
    _report(ctx, ticket, result)
    if note:
        queries.add_event(session, ticket.id, now, "note", f"internal note by {actor}")
        if text.strip() and ctx.acknowledge:
            agentmail.notify(session, config, ticket, "note", now, exclude=(actor,),
                             written=agentmail.Written(name, text, mail.message_id))
    elif public and not ctx.acknowledge:
        queries.add_event(session, ticket.id, now, "not-relayed", f"answer by {actor} kept: bulk import sends no mail")
    elif public:
        _relay(ctx, ticket, name, text, result)
    ticket.updated_at = now


def commands_on_new_ticket(ctx: "Context", ticket: Ticket) -> None:
    """An agent opened the ticket (a phone call written down): its commands apply too."""
    block = parse_commands(quotes.split_reply(ctx.mail.body_text).text)
    if not block.empty:
        # No "assigned"/"tier" notice: the new-ticket notice that follows goes to the right people.
        _report(ctx, ticket, run_commands(ctx, ticket, block), tell=False)


def run_commands(ctx: "Context", ticket: Ticket, block: CommandBlock) -> CommandResult:
    """Apply the commands in order, each recorded as an event."""
    settings, actor = ctx.app.settings, ctx.mail.from_addr
    result = CommandResult(problems=list(block.errors))
    for parsed in block.commands:
        before = _state(ticket)
        change = tickets.apply_command(before, parsed.command, actor, settings.agents)
        if isinstance(change, str):
            result.problems.append(NotUnderstood(parsed.line, change))
            continue
        _store(ctx, ticket, before, change.state)
        queries.add_event(ctx.session, ticket.id, ctx.now, change.event, change.detail, {"command": parsed.line})
        result.done.append(f"{parsed.line}  →  {change.event} {change.detail}")
        result.status_set = result.status_set or change.event == "status"
        if change.state.assignee != before.assignee and change.state.assignee != actor:
            result.assigned = change.state.assignee
        result.tier_changed = result.tier_changed or change.state.tier is not before.tier
    return result


def _state(ticket: Ticket) -> TicketState:
    return TicketState(Status(ticket.status), Severity(ticket.severity), Tier(ticket.tier), ticket.assignee,
                       tuple(ticket.tags or ()))


def _store(ctx: "Context", ticket: Ticket, before: TicketState, after: TicketState) -> None:
    """Write one change onto the ticket and keep its SLA clocks in step."""
    config, now = ctx.app.config, ctx.now
    ticket.assignee = after.assignee
    ticket.tags = list(after.tags)                     # a new list: SQLAlchemy sees the change
    ticket.tier = after.tier.value
    if after.severity is not before.severity:
        ticket.severity = after.severity.value
        lifecycle.severity_changed(ticket, now, config)
    if after.status is not before.status:
        ticket.status = after.status.value
        lifecycle.status_changed(ticket, before.status.value, now, config)


def _relay(ctx: "Context", ticket: Ticket, name: str, text: str, result: CommandResult) -> None:
    session, now, config = ctx.session, ctx.now, ctx.app.config
    row = agentmail.relay(session, config, ticket, name, text, now)
    if row is None:
        queries.add_event(session, ticket.id, now, "not-relayed",
                          f"answer by {ctx.mail.from_addr} kept: no customer on the ticket to send it to")
        return
    queries.add_event(session, ticket.id, now, "replied",
                      f"{name} ({ctx.mail.from_addr}) answered; sent to {', '.join(row.recipients)} "
                      f"as {row.message_id}")
    if not result.status_set:
        old = Status(ticket.status)
        new = tickets.status_after_agent_reply(old)
        if new is not old:
            ticket.status = new.value
            queries.add_event(session, ticket.id, now, "status", f"{old.value} → {new.value} (agent answered)")
            lifecycle.status_changed(ticket, old.value, now, config)
    lifecycle.first_response(ticket, now, config)


def _report(ctx: "Context", ticket: Ticket, result: CommandResult, tell: bool = True) -> None:
    """Lines not understood go back to the agent; a new assignee or tier hears of the ticket."""
    mail, session, now = ctx.mail, ctx.session, ctx.now
    if result.problems:
        queries.add_event(session, ticket.id, now, "command-error",
                          "; ".join(f"{p.line!r}: {p.why}" for p in result.problems))
    if not ctx.acknowledge:
        return                                       # bulk import: no mail to anybody
    if result.problems:
        name = agentmail.display_name(ctx.agent.agent, mail.from_addr, mail.from_name)
        agentmail.command_error(session, ctx.app.config, ticket, mail.from_addr, name, tuple(result.problems),
                                tuple(result.done), now, subject=mail.subject, in_reply_to=mail.message_id)
    if tell:
        _tell_others(ctx, ticket, result)


def _tell_others(ctx: "Context", ticket: Ticket, result: CommandResult) -> None:
    """A new assignee, or a new tier's team, hears about the ticket."""
    session, config, now, actor = ctx.session, ctx.app.config, ctx.now, ctx.mail.from_addr
    if result.assigned:
        agentmail.notify(session, config, ticket, "assigned", now, to=(result.assigned,), exclude=(actor,))
    elif result.tier_changed and not ticket.assignee:
        agentmail.notify(session, config, ticket, "tier", now, exclude=(actor,))


def _command_lines(block: CommandBlock) -> str:
    return "\n".join([p.line for p in block.commands] + [e.line for e in block.errors])
