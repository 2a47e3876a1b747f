"""What templates see of a ticket, and who a ticket's mail comes from (pure).

Every outgoing mail about a ticket (acknowledgement, notices, relayed
answers, SLA warnings and escalations) is rendered with `ticket_view()`'s
plain values, never with a database row, and sent from `sender()`.

Times are shown in the time zone of the calendar the ticket's SLA targets
count in (`sla.targets.<severity>.calendar`): a customer in Amsterdam reads
"Monday 2 March 2026, 11:00 CET" (`long_time`), an agent "Mon 2026-03-02
11:00 CET" (`short_time`, as the SLA notices write it), never UTC ISO. A
deadline that is behind the ticket (the first response was given, the
ticket is resolved) is not shown as due.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from mailtriage.config.values import Settings, agent_for
from mailtriage.model import Severity, TicketRecord, ticket_ref

FALLBACK_SENDER = ("support@localhost", "Support")     # no mailbox configured at all
# "Jansen, Pieter (ACME IT)", "Doe, Jane [External]": the notes Exchange directories add.
_NAME_NOTE = re.compile(r"\s*[(\[][^()\[\]]*[)\]]\s*")
# "ACME, Inc." is a company, not "Last, First".
_COMPANY = re.compile(r"^(?:inc|ltd|llc|gmbh|b\.?v|n\.?v|ag|s\.?a|corp|co|plc|ab|as|oy|srl|spa)\.?$", re.I)


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
    first_response_due: str | None     # local time; None once the first response was given
    resolution_due: str | None         # local time; None while resolved

    def as_context(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def ticket_view(ticket: TicketRecord, settings: Settings) -> TicketView:
    zone = ticket_zone(settings, ticket)
    first_due = None if ticket.first_responded_at else ticket.first_response_due
    resolution_due = None if ticket.resolved_at else ticket.resolution_due
    return TicketView(ref=ticket_ref(settings.ticket_prefix, ticket.id), subject=ticket.subject,
                      requester=ticket.requester, status=ticket.status, severity=ticket.severity,
                      tier=ticket.tier, queue=ticket.queue, tags=tuple(ticket.tags or ()),
                      first_response_due=short_time(first_due, zone), resolution_due=short_time(resolution_due, zone))


def ticket_zone(settings: Settings, ticket: TicketRecord) -> tzinfo:
    """The time zone of the calendar the ticket's SLA targets count in (UTC if none)."""
    try:
        target = settings.sla.targets.get(Severity(ticket.severity))
    except ValueError:
        target = None
    calendar = settings.calendars.get(target.calendar, {}) if target else {}
    name = calendar.get("timezone") if isinstance(calendar, dict) else None
    try:
        return ZoneInfo(name) if isinstance(name, str) else timezone.utc
    except (ValueError, LookupError):        # config check has refused it; never fail a mail on it
        return timezone.utc


def short_time(at: datetime | None, zone: tzinfo) -> str | None:
    """`Mon 2026-03-02 11:00 CET`: for agents, sortable at a glance."""
    return at.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z") if at else None


def long_time(at: datetime | None, zone: tzinfo, language: str = "en") -> str | None:
    """`Monday 2 March 2026, 11:00 CET`: for customers, in their language
    (Babel's CLDR names: `maandag 2 maart 2026`, `понедельник 2 марта 2026`)."""
    if at is None:
        return None
    from babel.core import UnknownLocaleError
    from babel.dates import format_date     # imported here: only mail to customers needs it

    local = at.astimezone(zone)
    try:
        day = format_date(local.date(), "EEEE d MMMM y", locale=language)
    except (UnknownLocaleError, ValueError):
        day = format_date(local.date(), "EEEE d MMMM y", locale="en")
    return f"{day}, {local:%H:%M %Z}"


def greeting_name(display_name: str) -> str:
    """How to greet someone from their From: display name: `Jansen, Pieter`
    (Outlook and Exchange directories write names last-first) is Pieter
    Jansen; an address or nothing is no name."""
    name = " ".join(_NAME_NOTE.sub(" ", display_name.replace('"', " ")).split())
    if not name or "@" in name:
        return ""
    last, comma, first = name.partition(",")
    last, first = last.strip(), first.strip()
    if comma and first and last and "," not in first and not _COMPANY.match(first) \
            and len(first.split()) <= 3 and len(last.split()) <= 4:
        return f"{first} {last}"
    return name


def agent_names(settings: Settings, addresses: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(address, name) of those addresses that are agents with a name, for To:."""
    found = []
    for address in addresses:
        agent = agent_for(address, settings.agents)
        if agent is not None and agent.name and not agent.email.startswith("@"):
            found.append((address, agent.name))
    return tuple(found)


def reply_to(settings: Settings, from_addr: str, ticket_id: int | None, *, plain: bool = False) -> str | None:
    """Reply-To of mail about a ticket: the signed plus-address of the ticket
    (`reply_tokens`, mail.tokens), so that a reply that keeps neither the tag nor
    References still finds it; else the support address itself when `plain`
    (agents' notices always name it), else none (From: is the support address)."""
    signer = settings.signer
    if signer is not None and ticket_id:
        return signer.address(from_addr, ticket_id)
    return from_addr if plain else None


def sender(settings: Settings, mailbox_name: str | None) -> tuple[str, str]:
    """A ticket's support address and display name: its mailbox's, else the first mailbox's."""
    for mailbox in settings.mailboxes:
        if mailbox_name is not None and mailbox.name == mailbox_name:
            return mailbox.address, mailbox.from_name
    if settings.mailboxes:
        return settings.mailboxes[0].address, settings.mailboxes[0].from_name
    return FALLBACK_SENDER
