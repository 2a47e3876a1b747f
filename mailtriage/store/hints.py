"""What a batch's lookups will find, read before the batch in a few queries.

A bulk import (and the daemon's IMAP batch, and the listener's group commit)
gives its session `BatchHints`: for every Message-ID the batch's messages
carry (their own, In-Reply-To, References), the tickets whose messages have
it and the tickets whose messages refer to it, read in one query each per
batch and kept up to date as the batch writes. The per-message lookups that
thread (store.queries) are then answered here instead of by a query a
message. The answers are exact because the batch holds those Message-IDs'
conversation locks (store.lock) from before the read: nobody else can add a
message with one of them meanwhile. Moving rows to another ticket (a merge,
a split) or rolling a savepoint back ends that: the lookups go back to the
database for the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailtriage.model import ParsedMail
from mailtriage.store.schema import Message, MessageRef, OutboxRow, Participant, Suppression, Ticket

_T = TypeVar("_T")
HINTS = "mailtriage.batch_hints"       # the key of BatchHints in Session.info
_SLICE = 500                            # values in one IN (…)


@dataclass
class BatchHints:
    """For one batch: every value of these columns that can match a lookup by
    this batch's messages — read before the batch, and added to as the batch
    writes rows. A key that is not here cannot match, so its lookup is
    skipped. `holders` and `referrers` answer the lookups of the keys they
    hold exactly (None: no longer, see the module); `outbox_ids` is a
    superset (a key there is looked up as usual).

    `participants` is exact (a ticket's customers, for the tickets it names),
    so whoever undoes writes — a savepoint rolled back — calls `rolled_back()`."""

    message_ids: set[str] = field(default_factory=set)     # messages.message_id
    refs: set[str] = field(default_factory=set)            # message_refs.ref
    outbox_ids: set[str] = field(default_factory=set)      # outbox.message_id
    suppressed: set[str] = field(default_factory=set)      # suppressions.address
    tickets: list[Ticket] = field(default_factory=list)    # held here: the session's identity map is weak
    participants: dict[int, set[str]] = field(default_factory=dict)   # exactly, for these tickets
    holders: dict[str, set[int]] | None = None             # Message-ID → tickets with a message of that ID
    referrers: dict[str, set[int]] | None = None           # Message-ID → tickets with a message referring to it

    def mark(self) -> int:
        """Where a savepoint starts, for `rolled_back()`."""
        return len(self.tickets)

    def rolled_back(self, session: Session, mark: int) -> None:
        """The savepoint begun at `mark` was rolled back: the tickets made since
        are gone (the session does not know: `insert_ticket` bypassed its
        unit of work), and participants and messages may have been."""
        for ticket in self.tickets[mark:]:
            if ticket in session:
                session.expunge(ticket)
        del self.tickets[mark:]
        self.participants = {}
        self.moved()

    def moved(self) -> None:
        """Messages moved to another ticket, or their rows were undone: ask the database from here on."""
        self.holders = self.referrers = None

    def wrote(self, message_id: str, refs: Iterable[str], ticket_id: int) -> None:
        """A message of `ticket_id` with these references was stored."""
        self.message_ids.add(message_id)
        self.refs.update(refs)
        if self.holders is not None and self.referrers is not None:
            if message_id in self.holders:
                self.holders[message_id].add(ticket_id)
            for ref in refs:
                if ref in self.referrers:
                    self.referrers[ref].add(ticket_id)

    @staticmethod
    def answer(table: dict[str, set[int]] | None, keys: Iterable[str]) -> dict[str, set[int]] | None:
        """`table` when it answers every one of `keys`, else None (ask the database)."""
        return table if table is not None and all(key in table for key in keys) else None

    @classmethod
    def load(cls, session: Session, mails: Iterable[ParsedMail]) -> "BatchHints":
        ids: set[str] = set()
        senders: set[str] = set()
        for mail in mails:
            ids.add(mail.message_id)
            ids.update(mail.in_reply_to)
            ids.update(mail.references)
            if mail.from_addr:
                senders.add(mail.from_addr.lower())
        hints = cls(holders={key: set() for key in ids}, referrers={key: set() for key in ids})
        assert hints.holders is not None and hints.referrers is not None
        for chunk in slices(sorted(ids)):
            for key, ticket_id in session.execute(select(Message.message_id, Message.ticket_id).where(
                    Message.message_id.in_(chunk)).distinct()):
                hints.holders[key].add(ticket_id)
            for key, ticket_id in session.execute(select(MessageRef.ref, MessageRef.ticket_id).where(
                    MessageRef.ref.in_(chunk)).distinct()):
                hints.referrers[key].add(ticket_id)
            hints.outbox_ids.update(session.scalars(select(OutboxRow.message_id).where(
                OutboxRow.message_id.in_(chunk))))
        hints.message_ids = {key for key, tickets in hints.holders.items() if tickets}
        hints.refs = {key for key, tickets in hints.referrers.items() if tickets}
        held = sorted({number for tickets in (*hints.holders.values(), *hints.referrers.values())
                       for number in tickets})
        for numbers in slices(held):                    # the tickets replies go to
            hints.tickets.extend(session.scalars(select(Ticket).where(Ticket.id.in_(numbers))))
        hints.participants = {ticket.id: set() for ticket in hints.tickets}     # and their customers
        for numbers in slices(sorted(hints.participants)):
            for ticket_id, email in session.execute(select(Participant.ticket_id, Participant.email).where(
                    Participant.ticket_id.in_(numbers))):
                hints.participants[ticket_id].add(email)
        for chunk in slices(sorted(senders)):
            hints.suppressed.update(session.scalars(select(Suppression.address).where(
                Suppression.address.in_(chunk))))
        return hints


def slices(values: list[_T], size: int = _SLICE) -> Iterable[list[_T]]:
    return (values[i:i + size] for i in range(0, len(values), size))


def hints_of(session: Session) -> BatchHints | None:
    return session.info.get(HINTS)


def rows_moved(session: Session) -> None:
    """Messages of the session's batch moved to another ticket (a merge, a split)."""
    hints = hints_of(session)
    if hints is not None:
        hints.moved()
