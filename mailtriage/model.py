"""Shared value types that travel along the flow.

Every step passes one of these to the next: bytes → ParsedMail → Verdict →
ticket changes. They are frozen so that no step can quietly edit what an
earlier step decided.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class Severity(str, enum.Enum):
    S1 = "S1"
    S2 = "S2"
    S3 = "S3"
    S4 = "S4"


class Tier(str, enum.Enum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"

    def up(self) -> "Tier":
        order = list(Tier)
        return order[min(order.index(self) + 1, len(order) - 1)]


class Level(str, enum.Enum):
    """Impact on the business, or urgency as the customer perceives it (classify.priority)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Status(str, enum.Enum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


_REF_NUMBER = re.compile(r"[0-9]{1,18}")


def ticket_ref(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


def parse_ref(text: str, prefix: str) -> int | None:
    """`MT-42`, `mt-42` or `42` → 42; anything else (`MT-²`, 19 digits, `MT-+4`) → None.
    ASCII digits only, at most 18 (str.isdigit() takes `²`, which int() refuses;
    a longer number overflows the database's 64-bit integers)."""
    value = text.strip().strip("[]")
    if value.lower().startswith(prefix.lower() + "-"):
        value = value[len(prefix) + 1:]
    return int(value) if _REF_NUMBER.fullmatch(value) else None


class Disposition(str, enum.Enum):
    """What became of one message (the first word of `ingest`'s output)."""

    NEW = "new"
    REPLY = "reply"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"
    PENDING = "pending"           # stored; processing failed for now and is retried (housekeeping)


@dataclass(frozen=True)
class Outcome:
    """One message's disposition, the reason for `ignored`/`quarantined`, and its ticket."""

    disposition: Disposition
    reason: str | None = None         # loop, bounce, limit:size, error:KeyError, …
    ref: str | None = None            # the ticket, when there is one
    raw_id: int | None = None

    @property
    def action(self) -> str:
        """As `ingest` prints it and the raw row records it: `new`, `ignored:loop`, …"""
        return self.disposition.value + (f":{self.reason}" if self.reason else "")

    @property
    def state(self) -> "RawState":
        """The raw message's state afterwards."""
        if self.disposition in (Disposition.NEW, Disposition.REPLY):
            return RawState.PROCESSED
        return RawState(self.disposition.value)

    def line(self) -> str:
        return f"{self.ref or '-'} {self.action}"

    @classmethod
    def parse(cls, action: str, ref: str | None = None, raw_id: int | None = None) -> "Outcome":
        """The Outcome a stored `action` string records."""
        word, _, reason = action.partition(":")
        return cls(Disposition(word), reason or None, ref, raw_id)


@dataclass(frozen=True)
class TicketRecord:
    """A ticket as plain values: what the ticket step reads and returns.

    The store turns rows into records and writes changed records back; the
    core (ticket transitions, SLA lifecycle) only ever makes new records."""

    id: int
    subject: str
    requester: str
    status: str
    severity: str
    tier: str
    queue: str
    tags: tuple[str, ...]
    assignee: str | None
    mailbox: str | None
    created_at: datetime
    updated_at: datetime
    first_response_due: datetime | None = None
    first_responded_at: datetime | None = None
    resolution_due: datetime | None = None
    resolved_at: datetime | None = None
    sla_state: str = "ok"
    next_deadline: datetime | None = None
    sla_data: dict[str, Any] = field(default_factory=dict, compare=False)
    merged_into: int | None = None          # merged into that ticket (#merge, or mail that linked both)
    impact: str | None = None         # high | medium | low, as classify decided (None: not stated)
    urgency: str | None = None
    language: str | None = None               # the customer's: a primary tag (en, nl, ru); mail.language
    language_pending: str | None = None       # the other language the latest customer reply was in


@dataclass(frozen=True)
class TicketEvent:
    """One line of a ticket's history, as the ticket step decided it."""

    type: str                     # created, classified, acknowledged, status, replied, note, …
    detail: str = ""
    data: dict[str, Any] | None = None


# The two below are StrEnums (str() and f-strings give the value) because
# they are written to the database and into log lines as their value.

class OutboxStatus(enum.StrEnum):
    """Where an outgoing mail is (notify/outbox.py draws the flow); stored as the value."""

    PENDING = "pending"          # waiting for its due time
    SENDING = "sending"          # claimed by a sender; taken back when its lease ends
    SENT = "sent"
    FAILED = "failed"            # refused, or too many attempts (an event on the ticket says which)
    SUPPRESSED = "suppressed"    # every recipient hard-bounced before: never sent


class RawState(enum.StrEnum):
    """What became of an accepted message's bytes; stored as the value.

    pending → processed | duplicate | ignored | quarantined; a quarantined
    one that is retried goes on from there to any of the others."""

    PENDING = "pending"
    PROCESSED = "processed"      # made or updated a ticket (new, reply)
    DUPLICATE = "duplicate"
    IGNORED = "ignored"          # a loop, a bounce, an auto-reply …
    QUARANTINED = "quarantined"


class Item(NamedTuple):
    """One message from a bulk source (a Maildir, an mbox, a folder): its name
    for logs, its bytes, and when the mailbox says it was delivered."""

    source: str
    raw: bytes
    delivered: datetime | None = None


@dataclass(frozen=True)
class Attachment:
    filename: str                 # safe to show and store: no path, no control characters
    content_type: str
    size: int                     # decoded bytes
    sha256: str = ""              # of the decoded bytes: the content-addressed store's key
    payload: bytes = field(default=b"", repr=False, compare=False)   # the decoded bytes
    content_id: str = ""          # `<id@host>` of an inline part an HTML body links to (cid:); "" for none


@dataclass(frozen=True)
class ParsedMail:
    """What the rest of mailtriage needs to know about one message.

    Addresses are lower-cased bare addresses (`anna@customer.example`);
    Message-IDs keep their angle brackets (`<abc@host>`). Nothing here is
    trusted: it all comes from the sender.
    """

    message_id: str
    message_id_synthesized: bool
    subject: str
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    body_text: str
    attachments: tuple[Attachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()   # (name, decoded value), in order
    defects: tuple[str, ...] = ()
    html: str = ""                # the HTML body, kept only when it has inline images (cid: links)

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.to + self.cc


@dataclass(frozen=True)
class Hit:
    """One match of one rule: which condition, and on what text."""

    rule: str
    field: str          # subject, body, subject_or_body, from, to, header:Name
    pattern: str        # the keyword or regex as written in the rules file
    matched: str        # the text that matched


@dataclass(frozen=True)
class Verdict:
    """What the rules decided for one message, and why."""

    severity: Severity
    tier: Tier
    queue: str
    tags: tuple[str, ...]
    assignee: str | None
    matched_rules: tuple[str, ...]
    hits: tuple[Hit, ...]
    decided_by: dict[str, str] = field(default_factory=dict)   # field → rule name or "default"
    impact: Level | None = None         # from a rule; None: not stated
    urgency: Level | None = None        # from a rule, else the customer's Importance/X-Priority/Priority
    priority: str = ""                  # how the severity was reached (classify.priority.explain)

    def as_dict(self) -> dict:
        return {
            "severity": self.severity.value,
            "tier": self.tier.value,
            "queue": self.queue,
            "tags": list(self.tags),
            "assignee": self.assignee,
            "matched_rules": list(self.matched_rules),
            "decided_by": dict(self.decided_by),
            "impact": self.impact.value if self.impact else None,
            "urgency": self.urgency.value if self.urgency else None,
            "priority": self.priority,
            "hits": [
                {"rule": h.rule, "field": h.field, "pattern": h.pattern, "matched": h.matched}
                for h in self.hits
            ],
        }
