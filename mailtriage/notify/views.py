"""What templates see of a ticket, and who a ticket's mail comes from (pure).

Every outgoing mail about a ticket (acknowledgement, notices, relayed
answers, SLA warnings and escalations) is rendered with `ticket_view()`'s
plain values, never with a database row, and sent from `sender()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailtriage.config.values import Settings
from mailtriage.model import TicketRecord, ticket_ref

FALLBACK_SENDER = ("support@localhost", "Support")     # no mailbox configured at all


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


def ticket_view(ticket: TicketRecord, prefix: str) -> TicketView:
    return TicketView(ref=ticket_ref(prefix, ticket.id), subject=ticket.subject, requester=ticket.requester,
                      status=ticket.status, severity=ticket.severity, tier=ticket.tier, queue=ticket.queue,
                      tags=tuple(ticket.tags or ()), first_response_due=minutes(ticket.first_response_due),
                      resolution_due=minutes(ticket.resolution_due))


def sender(settings: Settings, mailbox_name: str | None) -> tuple[str, str]:
    """A ticket's support address and display name: its mailbox's, else the first mailbox's."""
    for mailbox in settings.mailboxes:
        if mailbox_name is not None and mailbox.name == mailbox_name:
            return mailbox.address, mailbox.from_name
    if settings.mailboxes:
        return settings.mailboxes[0].address, settings.mailboxes[0].from_name
    return FALLBACK_SENDER


def minutes(at: datetime | None) -> str | None:
    return at.isoformat(timespec="minutes") if at else None
