"""Ticket facts and transitions (pure): who takes part, what a customer's
reply does to the status, which mailbox a message came to, and the values a
template may see. The store applies what these functions decide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailtriage.model import ParsedMail, Status
from mailtriage.settings import Agent, Mailbox, Settings


def ticket_ref(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


def parse_ref(text: str, prefix: str) -> int | None:
    """`MT-42`, `mt-42` or `42` → 42."""
    value = text.strip().strip("[]")
    if value.lower().startswith(prefix.lower() + "-"):
        value = value[len(prefix) + 1:]
    return int(value) if value.isdigit() else None


def agent_for(address: str, agents: list[Agent]) -> Agent | None:
    """The agent entry an address belongs to (exact address first, then @domain)."""
    address = address.lower()
    for agent in agents:
        if agent.email == address:
            return agent
    domain = "@" + address.partition("@")[2]
    for agent in agents:
        if agent.email == domain:
            return agent
    return None


def mailbox_for(mail: ParsedMail, settings: Settings, envelope_rcpts: tuple[str, ...] = ()) -> Mailbox | None:
    """The mailbox a message was sent to: envelope first, then the headers."""
    candidates = [a.lower() for a in envelope_rcpts]
    candidates += [a.lower() for name in ("Delivered-To", "X-Original-To") for a in mail.header_all(name)]
    candidates += list(mail.recipients)
    for address in candidates:
        for mailbox in settings.mailboxes:
            if address in (mailbox.address, mailbox.comment_address):
                return mailbox
    return settings.mailboxes[0] if settings.mailboxes else None


def customer_participants(mail: ParsedMail, settings: Settings) -> list[tuple[str, str]]:
    """(address, role) of the customers on a message: the sender and its CCs,
    never our own addresses or agents."""
    own = settings.own_addresses
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for address, role in [(mail.from_addr, "requester")] + [(a, "cc") for a in mail.recipients]:
        if not address or address in seen or address in own or agent_for(address, settings.agents):
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


def reply_address(mail: ParsedMail) -> str | None:
    """Where an automatic reply goes: Reply-To, else From."""
    for address in mail.reply_to + (mail.from_addr,):
        if address and "@" in address:
            return address
    return None


@dataclass(frozen=True)
class TicketView:
    """What templates see of a ticket: plain values, no database objects."""

    ref: str
    subject: str
    requester: str
    status: str
    severity: str
    tier: str
    queue: str
    tags: tuple[str, ...]
    first_response_due: str | None
    resolution_due: str | None

    def as_context(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}
