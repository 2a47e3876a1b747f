"""The store side of ticket surgery (`#merge`, `#split`): what the ticket step
reads before (the tickets named, the message answered) and the rows it moves;
and the merge threading asks for (`merge_tickets`: one message links two tickets)."""

from __future__ import annotations

from collections.abc import Iterable
from email.parser import BytesHeaderParser
from datetime import datetime
from email.policy import default

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from mailtriage.mail.parse import parse
from mailtriage.model import ParsedMail, TicketRecord
from mailtriage.store import queries
from mailtriage.store.hints import hints_of, rows_moved
from mailtriage.store.records import record_of
from mailtriage.store.schema import Event, Message, MessageRef, OutboxRow, Participant, RawMessage, Ticket
from mailtriage.tickets.change import Answered
from mailtriage.tickets.commands import asks_split, merge_numbers


def named_tickets(session: Session, text: str) -> tuple[TicketRecord, ...]:
    """The tickets `#merge` lines in `text` name (those that exist)."""
    found = (session.get(Ticket, number) for number in merge_numbers(text))
    return tuple(record_of(ticket) for ticket in found if ticket is not None)


def answered(session: Session, ticket_id: int, mail: ParsedMail) -> Answered | None:
    """The customer message of `ticket_id` that `mail` answers, when it asks
    `#split`: its In-Reply-To, or the customer message our mail it answers
    (a notice, an acknowledgement) replied to."""
    if not asks_split(mail.body_text):
        return None
    for wanted in reversed(mail.in_reply_to):
        message = _customer_message(session, ticket_id, wanted)
        if message is None:
            ours = session.scalar(select(OutboxRow.data).where(OutboxRow.message_id == wanted,
                                                               OutboxRow.ticket_id == ticket_id))
            if ours is not None:
                header = BytesHeaderParser(policy=default).parsebytes(ours).get("In-Reply-To")
                message = _customer_message(session, ticket_id, str(header or "").strip())
        if message is not None:
            return _answered(session, message)
    return None


def _customer_message(session: Session, ticket_id: int, message_id: str) -> Message | None:
    if not message_id:
        return None
    return session.scalar(select(Message).where(Message.ticket_id == ticket_id, Message.message_id == message_id,
                                                Message.kind == "customer").order_by(Message.id).limit(1))


def _answered(session: Session, message: Message) -> Answered | None:
    raw = session.get(RawMessage, message.raw_id) if message.raw_id is not None else None
    if raw is None:
        return None
    first = session.scalar(select(func.min(Message.id)).where(Message.ticket_id == message.ticket_id))
    return Answered(message.id, parse(raw.data), message.created_at, first == message.id)


def move_contents(session: Session, target: int, other: int) -> None:
    """`other`'s messages, references, raw messages, our mail and customers move to `target`."""
    for table in (Message, MessageRef, RawMessage, OutboxRow):
        session.execute(update(table).where(table.ticket_id == other).values(ticket_id=target))
    moved = session.execute(select(Participant.email, Participant.role).where(
        Participant.ticket_id == other).order_by(Participant.id)).all()
    queries.add_participants(session, target, [(email, "cc") for email, _ in moved])
    session.connection().execute(delete(Participant).where(Participant.ticket_id == other))
    hints = hints_of(session)
    if hints is not None:
        hints.participants[other] = set()
        hints.moved()


def merge_tickets(session: Session, target: int, others: tuple[int, ...], now: datetime, prefix: str) -> None:
    """Fold `others` into `target`: their messages, references, events, participants."""
    for other in others:
        for table in (Message, MessageRef, Event, RawMessage, OutboxRow):
            session.execute(update(table).where(table.ticket_id == other).values(ticket_id=target))
        moved = session.execute(select(Participant.email, Participant.role).where(
            Participant.ticket_id == other).order_by(Participant.id)).all()
        queries.add_participants(session, target, [(email, role) for email, role in moved])
        session.connection().execute(delete(Participant).where(Participant.ticket_id == other))
        hints = hints_of(session)
        if hints is not None:
            hints.participants[other] = set()
            hints.moved()
        old = session.get(Ticket, other)
        if old is not None:
            target_ticket = session.get(Ticket, target)
            if target_ticket is not None and old.created_at < target_ticket.created_at:
                # The older ticket holds the start of the conversation.
                target_ticket.subject, target_ticket.requester = old.subject, old.requester
                target_ticket.created_at = old.created_at
            old.status, old.next_deadline, old.merged_into = "closed", None, target
            queries.add_event(session, other, now, "merged", f"merged into {prefix}-{target}")
            queries.add_event(session, target, now, "merged", f"{prefix}-{other} merged into this ticket")


def thread_of(session: Session, ticket_id: int, message_pk: int, keep_raw: int | None,
              keep_mail: Iterable[str]) -> tuple[list[Message], list[int]]:
    """The message and the later messages of `ticket_id` that refer to it (or
    to one of them, or to our mail about them), and the ids of our mail that
    answers any of them: what `#split` moves. `keep_raw`, `keep_mail`: the
    agent's mail that asked, and what it sends, stay."""
    messages = list(session.scalars(select(Message).where(Message.ticket_id == ticket_id,
                                                          Message.id >= message_pk).order_by(Message.id)))
    first = messages[0]
    ours = [(row.id, row.message_id, _replies_to(row.data))
            for row in session.scalars(select(OutboxRow).where(OutboxRow.ticket_id == ticket_id,
                                                               OutboxRow.created_at >= first.created_at))
            if row.message_id not in set(keep_mail)]
    moving, ids, outgoing = [first], {first.message_id}, []
    refs = _refs(session, [m.id for m in messages])
    changed = True
    while changed:
        changed = False
        for row_id, message_id, answers in ours:
            if row_id not in outgoing and answers & ids:
                outgoing.append(row_id)
                ids.add(message_id)
                changed = True
        for message in messages:
            if message not in moving and message.raw_id != keep_raw and refs.get(message.id, set()) & ids:
                moving.append(message)
                ids.add(message.message_id)
                changed = True
    return sorted(moving, key=lambda m: m.id), outgoing


def move_thread(session: Session, target: int, messages: list[Message], outgoing: list[int]) -> None:
    pks = [m.id for m in messages]
    raws = [m.raw_id for m in messages if m.raw_id is not None]
    rows_moved(session)
    session.execute(update(Message).where(Message.id.in_(pks)).values(ticket_id=target))
    session.execute(update(MessageRef).where(MessageRef.message_pk.in_(pks)).values(ticket_id=target))
    if raws:
        session.execute(update(RawMessage).where(RawMessage.id.in_(raws)).values(ticket_id=target))
    if outgoing:
        session.execute(update(OutboxRow).where(OutboxRow.id.in_(outgoing)).values(ticket_id=target))


def _refs(session: Session, pks: list[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for pk, ref in session.execute(select(MessageRef.message_pk, MessageRef.ref).where(
            MessageRef.message_pk.in_(pks))):
        found.setdefault(pk, set()).add(ref)
    return found


def _replies_to(data: bytes) -> set[str]:
    headers = BytesHeaderParser(policy=default).parsebytes(data)
    return {str(headers.get("In-Reply-To") or "").strip()} - {""}
