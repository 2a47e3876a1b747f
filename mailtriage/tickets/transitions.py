"""Ticket facts and transitions (pure): who takes part, what a customer's
reply and an agent's command do to a ticket, which mailbox a message came
to, and the values a template may see. The store applies what these
functions decide."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mailtriage.mail.tokens import Found, base_address
from mailtriage.tickets import commands as c
from mailtriage.model import ParsedMail, Severity, Status, Tier
from mailtriage.config.values import Agent, Mailbox, Settings, agent_for, find_agent


def addressed_to(mail: ParsedMail, envelope_rcpts: tuple[str, ...] = ()) -> list[str]:
    """Where a message was sent: the envelope first, then Delivered-To,
    X-Original-To, To and Cc; lower case."""
    candidates = [a.lower() for a in envelope_rcpts]
    candidates += [a.strip().strip("<>").lower() for name in ("Delivered-To", "X-Original-To")
                   for a in mail.header_all(name)]
    return candidates + list(mail.recipients)


def mailbox_for(mail: ParsedMail, settings: Settings, envelope_rcpts: tuple[str, ...] = ()) -> Mailbox | None:
    """The mailbox a message was sent to: envelope first, then the headers; a
    plus-address (`support+MT-4.x@…`, a reply token) is its mailbox's."""
    for address in map(base_address, addressed_to(mail, envelope_rcpts)):
        for mailbox in settings.mailboxes:
            if address in (mailbox.address, mailbox.comment_address):
                return mailbox
    return settings.mailboxes[0] if settings.mailboxes else None


def reply_token(mail: ParsedMail, settings: Settings, envelope_rcpts: tuple[str, ...] = ()) -> Found:
    """What the reply tokens among the message's recipients say (nothing when they are off)."""
    signer = settings.signer
    if signer is None:
        return Found()
    return signer.scan(addressed_to(mail, envelope_rcpts), settings.own_addresses)


def customer_participants(mail: ParsedMail, settings: Settings) -> list[tuple[str, str]]:
    """(address, role) of the customers on a message: whom answers go to (its
    Reply-To, else its sender: a web form's `From: form@…` with `Reply-To:
    the customer` makes the customer the requester) and its To/Cc, never our
    own addresses or agents."""
    own = settings.own_addresses
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    answer_to = [a for a in mail.reply_to if a and "@" in a] or [mail.from_addr]
    people = [(answer_to[0], "requester")] + [(a, "cc") for a in answer_to[1:]] + [(a, "cc") for a in mail.recipients]
    for address, role in people:
        if not address or address in seen or base_address(address) in own or agent_for(address, settings.agents):
            continue
        seen.add(address)
        found.append((address, role))
    return found


def status_after_customer_reply(status: Status) -> Status | None:
    """A customer's reply reopens a pending or resolved ticket; None: a closed
    ticket stays closed and the mail starts a new ticket instead."""
    if status is Status.CLOSED:
        return None
    if status in (Status.PENDING, Status.RESOLVED):
        return Status.OPEN
    return status


@dataclass(frozen=True)
class TicketState:
    """The fields of a ticket that agents' commands change."""

    status: Status
    severity: Severity
    tier: Tier
    assignee: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """One command's effect: the new state and the event that records it."""

    state: TicketState
    event: str                # status, severity, tier, assigned, tagged
    detail: str


def apply_command(state: TicketState, command: c.Command, actor: str, agents: list[Agent]) -> Change | str:
    """What one command does to a ticket, or why it cannot (a string).

    `actor` is the address of the agent who sent it (for `#assign me`, `#take`)."""
    if isinstance(command, c.SetStatus):
        return _status_change(state, command.status, actor)
    if isinstance(command, c.SetSeverity):
        return _field_change(state, "severity", command.severity, actor)
    if isinstance(command, c.SetTier):
        return _field_change(state, "tier", command.tier, actor)
    if isinstance(command, c.Assign):
        address = actor if command.who == c.ME else find_agent(command.who, agents)
        if address is None:
            names = ", ".join(a.name or a.email for a in agents) or "none configured"
            return f"no agent is called {command.who!r} (agents: {names})"
        detail = f"{address} (by {actor})" if address != state.assignee else f"{address} (unchanged, by {actor})"
        return Change(replace(state, assignee=address), "assigned", detail)
    if isinstance(command, c.AddTag):
        if command.tag in state.tags:
            return Change(state, "tagged", f"{command.tag} (already there, by {actor})")
        return Change(replace(state, tags=state.tags + (command.tag,)), "tagged", f"{command.tag} (by {actor})")
    raise TypeError(f"not a command: {command!r}")


def _status_change(state: TicketState, status: Status, actor: str) -> Change:
    """Agents may move a ticket to any of open, pending, resolved and closed,
    from any status (reopening a closed ticket included)."""
    if status is state.status:
        return Change(state, "status", f"{status.value} (unchanged, by {actor})")
    return Change(replace(state, status=status), "status", f"{state.status.value} → {status.value} (by {actor})")


def _field_change(state: TicketState, name: str, value: Severity | Tier, actor: str) -> Change:
    old = getattr(state, name)
    if value is old:
        return Change(state, name, f"{value.value} (unchanged, by {actor})")
    changed: dict[str, Any] = {name: value}
    return Change(replace(state, **changed), name, f"{old.value} → {value.value} (by {actor})")


def status_after_agent_reply(status: Status) -> Status:
    """An agent's public answer opens a new ticket; other statuses stay."""
    return Status.OPEN if status is Status.NEW else status


def reply_address(mail: ParsedMail) -> str | None:
    """Where an automatic reply goes: Reply-To, else From."""
    for address in mail.reply_to + (mail.from_addr,):
        if address and "@" in address:
            return address
    return None
