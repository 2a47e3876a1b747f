"""The database schema (SQLAlchemy 2 declarative models).

Tables follow the flow: `raw_messages` holds every accepted message's bytes
before anything else happens to it; `messages` are the parsed, threaded ones;
`tickets`, `participants` and `events` are the ticket state; `outbox` is
outgoing mail written in the same transaction as the ticket change that
caused it. Alembic migrations in `migrations/` create exactly this.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mailtriage.model import OutboxStatus, RawState


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, timezone-aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:           # SQLite keeps no offset
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class StrEnumValue(TypeDecorator[Any]):
    """A StrEnum kept as its value in a plain VARCHAR: the database holds the
    same strings it always did, Python gets the member back, and a value
    that is not a member is refused before it is written."""

    impl = String
    cache_ok = True

    def __init__(self, members: type[enum.StrEnum], length: int):
        super().__init__(length)
        self.members = members

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else self.members(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> enum.StrEnum | None:
        return None if value is None else self.members(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class RawMessage(Base):
    """Every accepted message, byte for byte, committed before any other step."""

    __tablename__ = "raw_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(200))      # "smtp", "imap:support", "file:…"
    received_at: Mapped[datetime]
    # a RawState; typed `str` while pipeline/ still assigns plain strings
    state: Mapped[str] = mapped_column(StrEnumValue(RawState, 20), default=RawState.PENDING, index=True)
    outcome: Mapped[str | None] = mapped_column(String(200))   # the action printed by ingest
    reason: Mapped[str | None] = mapped_column(String(200))    # why quarantined or ignored
    error: Mapped[str | None] = mapped_column(Text)            # the error text, for operators
    attempts: Mapped[int] = mapped_column(default=0)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)   # merges move them


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    requester: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), index=True)
    severity: Mapped[str] = mapped_column(String(2), index=True)
    tier: Mapped[str] = mapped_column(String(2))
    queue: Mapped[str] = mapped_column(String(100))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    assignee: Mapped[str | None] = mapped_column(String(320))
    mailbox: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    first_response_due: Mapped[datetime | None]
    first_responded_at: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    sla_state: Mapped[str] = mapped_column(String(20), default="ok")
    # The earliest instant at which the SLA sweep has something to do for this
    # ticket (a warning or a breach); NULL when nothing is pending. Indexed so a
    # sweep costs what is due, not what is open.
    next_deadline: Mapped[datetime | None] = mapped_column(index=True)
    sla_data: Mapped[dict[str, Any]] = mapped_column(default=dict)   # clocks, notices sent
    # A ticket merged into another (`#merge`, or a message that linked both):
    # the survivor, where mail to this one's tag or reply token goes (a ticket
    # number; no foreign key, see migration 0008).
    merged_into: Mapped[int | None] = mapped_column()
    # Impact on the business and the urgency stated (classify/priority.py): high | medium | low | NULL.
    impact: Mapped[str | None] = mapped_column(String(6))
    urgency: Mapped[str | None] = mapped_column(String(6))
    # The customer's language (mail.language): customer mail renders from templates/<language>/.
    language: Mapped[str | None] = mapped_column(String(16))
    # The other language the latest customer reply was in: a second one in a row switches `language`.
    language_pending: Mapped[str | None] = mapped_column(String(16))

    messages: Mapped[list["Message"]] = relationship(back_populates="ticket", order_by="Message.id")
    events: Mapped[list["Event"]] = relationship(back_populates="ticket", order_by="Event.id")
    participants: Mapped[list["Participant"]] = relationship(back_populates="ticket")


class Participant(Base):
    """Customers on a ticket: they may thread into it by its subject tag."""

    __tablename__ = "participants"
    __table_args__ = (Index("ix_participants_ticket_email", "ticket_id", "email", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20), default="cc")    # requester | cc

    ticket: Mapped[Ticket] = relationship(back_populates="participants")


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    raw_id: Mapped[int | None] = mapped_column(ForeignKey("raw_messages.id"))
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    content_key: Mapped[str] = mapped_column(String(64))    # same Message-ID + same key = duplicate
    direction: Mapped[str] = mapped_column(String(3))       # in | out
    kind: Mapped[str] = mapped_column(String(10))           # customer | agent | internal | auto
    from_addr: Mapped[str] = mapped_column(String(320))
    to_addrs: Mapped[list[Any]] = mapped_column(default=list)
    cc_addrs: Mapped[list[Any]] = mapped_column(default=list)
    date: Mapped[datetime | None]
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    # How an inbound message found its ticket (thread.decide's `via`) and the evidence.
    threaded_via: Mapped[str | None] = mapped_column(String(20))
    thread_evidence: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")


class MessageRef(Base):
    """One In-Reply-To/References entry of a stored message.

    Lets a message that arrives *after* its reply find the ticket: "who
    refers to me?" is an index lookup on `ref`.
    """

    __tablename__ = "message_refs"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(998), index=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)     # merges move them


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class OutboxRow(Base):
    """Outgoing mail, durable until the relay has acknowledged it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))          # acknowledgement, warning, …
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    mail_from: Mapped[str] = mapped_column(String(320))    # envelope sender
    recipients: Mapped[list[Any]] = mapped_column()
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[OutboxStatus] = mapped_column(StrEnumValue(OutboxStatus, 10), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]       # when the first recipient got it
    # Each recipient's state and last reply (notify/deliveries.py); None: nobody tried yet.
    deliveries: Mapped[dict[str, Any] | None] = mapped_column()


class ImapState(Base):
    """How far the daemon has read each IMAP folder: the folder's UIDVALIDITY
    and the highest UID whose raw bytes were committed. A new UIDVALIDITY
    means a re-scan (duplicate detection keeps it harmless)."""

    __tablename__ = "imap_state"
    __table_args__ = (Index("ix_imap_state_mailbox_folder", "mailbox", "folder", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(100))       # the mailbox's name in the config
    folder: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)    # 32-bit unsigned: too big for INTEGER on PostgreSQL
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    # The highest UID in the folder at the first look: those of them older
    # than `history_age` are history (tickets.history), also after a restart.
    history_until: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime]


class AutoReplyLog(Base):
    """When we last replied automatically to whom: the per-sender rate limit."""

    __tablename__ = "auto_reply_log"
    __table_args__ = (Index("ix_auto_reply_sender_at", "sender", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime]


class Suppression(Base):
    """An address that hard-bounced: the outbox sends it nothing more."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)   # lower-cased
    reason: Mapped[str] = mapped_column(Text)                         # which bounce, for operators
    created_at: Mapped[datetime]
    raw_id: Mapped[int | None] = mapped_column(ForeignKey("raw_messages.id"))   # the bounce


class AttachmentBlob(Base):
    """Attachment content, stored once per content (content-addressed by
    sha256). messages.attachments holds the metadata and the sha256; no
    name from the mail is ever used as a path."""

    __tablename__ = "attachment_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class DigestSent(Base):
    """One row per local day a daily digest went into the outbox (sla/digest.py):
    a restart, a second daemon or `mailtriage digest` never sends that day's
    digest again. Written in the transaction of its outbox row; the unique day
    decides a race between two daemons."""

    __tablename__ = "digests"

    day: Mapped[date] = mapped_column(Date, primary_key=True)   # the local date, in the digest's calendar
    calendar: Mapped[str] = mapped_column(String(100))
    sent_at: Mapped[datetime]                                    # when it went into the outbox
    message_id: Mapped[str] = mapped_column(String(998))


class Heartbeat(Base):
    """One row per component the daemon depends on (`mailbox:NAME`, `relay`,
    `database`, `oauth2:NAME`, `smtp_in`): when it last worked, when and how it
    last failed, since when it is failing, and whether that failure's alert
    went out. The daemon writes it (health/monitor.py) on a change and at most
    every REFRESH seconds otherwise; `mailtriage status` reads it."""

    __tablename__ = "heartbeats"

    component: Mapped[str] = mapped_column(String(200), primary_key=True)
    ok: Mapped[bool]
    last_success_at: Mapped[datetime | None]
    last_error_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failing_since: Mapped[datetime | None]                 # NULL while it works
    alerted_at: Mapped[datetime | None]                    # this failure's alert is queued: no second one
    updated_at: Mapped[datetime]
