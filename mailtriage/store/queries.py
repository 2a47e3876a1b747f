"""Reading and writing tickets: the store side of the pipeline.

Every lookup the pipeline makes per message is an index lookup (raw sha256,
Message-ID, message_refs.ref, ticket id), so ingest does not slow down as
the number of tickets grows.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailtriage.model import ParsedMail
from mailtriage.store.schema import (
    AttachmentBlob,
    AutoReplyLog,
    Event,
    Message,
    MessageRef,
    OutboxRow,
    Participant,
    RawMessage,
    Suppression,
    Ticket,
)
from mailtriage.thread import ThreadFacts, find_tag


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_raw(session: Session, digest: str) -> RawMessage | None:
    return session.scalar(select(RawMessage).where(RawMessage.sha256 == digest))


def content_key(mail: ParsedMail) -> str:
    """Same Message-ID and same key: the same message delivered again (to a
    second address, or re-polled) — a duplicate even if transport headers differ."""
    text = "\x00".join([mail.from_addr, mail.subject, mail.body_text.strip(),
                        ",".join(a.filename for a in mail.attachments)])
    return sha256(text.encode("utf-8", "surrogatepass"))


def find_duplicate(session: Session, mail: ParsedMail, key: str) -> Message | None:
    return session.scalar(
        select(Message).where(Message.message_id == mail.message_id, Message.content_key == key).limit(1))


def tickets_of_messages(session: Session, message_ids: tuple[str, ...]) -> tuple[int, ...]:
    if not message_ids:
        return ()
    rows = session.scalars(select(Message.ticket_id).where(Message.message_id.in_(message_ids)).distinct())
    return tuple(sorted(set(rows)))


def tickets_of_outgoing(session: Session, message_ids: tuple[str, ...]) -> tuple[int, ...]:
    """Tickets of mail we sent (acknowledgements, agent notices, relayed answers):
    a reply to any of them threads, even though it is not a ticket message."""
    if not message_ids:
        return ()
    rows = session.scalars(select(OutboxRow.ticket_id).where(
        OutboxRow.message_id.in_(message_ids), OutboxRow.ticket_id.is_not(None)).distinct())
    return tuple(sorted(set(rows)))


def participants(session: Session, ticket_id: int) -> list[tuple[str, str]]:
    """(address, role) of a ticket's customers, the requester first."""
    rows = session.execute(select(Participant.email, Participant.role).where(
        Participant.ticket_id == ticket_id).order_by(Participant.id))
    people = [(email, role) for email, role in rows]
    return sorted(people, key=lambda person: person[1] != "requester")


def customer_thread(session: Session, ticket_id: int, kinds: tuple[str, ...], limit: int = 20) -> list[str]:
    """Message-IDs the customers have seen, oldest first: their own messages and
    our outgoing mail of `kinds` (acknowledgements, relayed answers) — for the
    References of the next mail to them. Internal notes and agents' own
    Message-IDs stay out."""
    theirs = session.execute(select(Message.created_at, Message.id, Message.message_id).where(
        Message.ticket_id == ticket_id, Message.kind == "customer"))
    ours = session.execute(select(OutboxRow.created_at, OutboxRow.id, OutboxRow.message_id).where(
        OutboxRow.ticket_id == ticket_id, OutboxRow.kind.in_(kinds)))
    ordered = sorted([(at, 0, pk, mid) for at, pk, mid in theirs] + [(at, 1, pk, mid) for at, pk, mid in ours])
    ids = list(dict.fromkeys(mid for *_, mid in ordered))
    return ids[:1] + ids[1:][-(limit - 1):] if len(ids) > limit else ids


def tickets_referring_to(session: Session, message_id: str) -> tuple[int, ...]:
    rows = session.scalars(select(MessageRef.ticket_id).where(MessageRef.ref == message_id).distinct())
    return tuple(sorted(set(rows)))


def is_participant(session: Session, ticket_id: int, address: str) -> bool:
    return session.scalar(select(Participant.id).where(
        Participant.ticket_id == ticket_id, Participant.email == address).limit(1)) is not None


def thread_facts(session: Session, mail: ParsedMail, prefix: str, sender_is_agent: bool) -> ThreadFacts:
    tagged = find_tag(mail.subject, prefix)
    tagged_ticket = None
    may_use = False
    if tagged is not None and session.get(Ticket, tagged) is not None:
        tagged_ticket = tagged
        may_use = sender_is_agent or is_participant(session, tagged, mail.from_addr)
    refs = tuple(dict.fromkeys(mail.in_reply_to + mail.references))
    return ThreadFacts(
        tagged_ticket=tagged_ticket,
        sender_may_use_tag=may_use,
        referenced_tickets=tuple(sorted(set(tickets_of_messages(session, refs)
                                            + tickets_of_outgoing(session, refs)))),
        referring_tickets=tickets_referring_to(session, mail.message_id),
    )


def add_participants(session: Session, ticket_id: int, people: list[tuple[str, str]]) -> None:
    existing = set(session.scalars(select(Participant.email).where(Participant.ticket_id == ticket_id)))
    for address, role in people:
        if address not in existing:
            session.add(Participant(ticket_id=ticket_id, email=address, role=role))
            existing.add(address)


def add_message(session: Session, ticket_id: int, mail: ParsedMail, *, raw_id: int | None, key: str,
                direction: str, kind: str, now: datetime) -> Message:
    message = Message(
        ticket_id=ticket_id, raw_id=raw_id, message_id=mail.message_id, content_key=key,
        direction=direction, kind=kind, from_addr=mail.from_addr, to_addrs=list(mail.to),
        cc_addrs=list(mail.cc), date=mail.date, subject=mail.subject, body_text=mail.body_text,
        attachments=[{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                      "sha256": a.sha256} for a in mail.attachments],
        created_at=now,
    )
    session.add(message)
    session.flush()
    for ref in dict.fromkeys(mail.in_reply_to + mail.references):
        session.add(MessageRef(ref=ref, message_pk=message.id, ticket_id=ticket_id))
    return message


def add_event(session: Session, ticket_id: int, at: datetime, type_: str, detail: str = "",
              data: dict | None = None) -> None:
    session.add(Event(ticket_id=ticket_id, at=at, type=type_, detail=detail, data=data))


def merge_tickets(session: Session, target: int, others: tuple[int, ...], now: datetime, prefix: str) -> None:
    """Fold `others` into `target`: their messages, references, events, participants."""
    for other in others:
        for table in (Message, MessageRef, Event, RawMessage, OutboxRow):
            session.execute(update(table).where(table.ticket_id == other).values(ticket_id=target))
        moved = list(session.scalars(select(Participant).where(Participant.ticket_id == other)))
        add_participants(session, target, [(p.email, p.role) for p in moved])
        for participant in moved:
            session.delete(participant)
        old = session.get(Ticket, other)
        if old is not None:
            target_ticket = session.get(Ticket, target)
            if target_ticket is not None and old.created_at < target_ticket.created_at:
                # The older ticket holds the start of the conversation.
                target_ticket.subject, target_ticket.requester = old.subject, old.requester
                target_ticket.created_at = old.created_at
            old.status, old.next_deadline = "closed", None
            add_event(session, other, now, "merged", f"merged into {prefix}-{target}")
            add_event(session, target, now, "merged", f"{prefix}-{other} merged into this ticket")


def auto_replies_since(session: Session, sender: str, since: datetime) -> int:
    return session.scalar(select(func.count(AutoReplyLog.id)).where(
        AutoReplyLog.sender == sender, AutoReplyLog.at >= since)) or 0


def log_auto_reply(session: Session, sender: str, at: datetime) -> None:
    session.add(AutoReplyLog(sender=sender, at=at))


def conversation_ids(session: Session, ticket_id: int, limit: int = 20) -> list[str]:
    """Message-IDs of a ticket in order, for References of outgoing mail."""
    rows = session.scalars(select(Message.message_id).where(Message.ticket_id == ticket_id)
                           .order_by(Message.id).limit(limit))
    return list(dict.fromkeys(rows))


# -- mail hygiene: our own mail coming back, bounces, attachment content ------

def outbox_row(session: Session, message_ids: tuple[str, ...]) -> OutboxRow | None:
    """The outgoing mail with one of these Message-IDs (the first that matches)."""
    wanted = [mid for mid in dict.fromkeys(message_ids) if mid]
    if not wanted:
        return None
    return session.scalar(select(OutboxRow).where(OutboxRow.message_id.in_(wanted)).order_by(OutboxRow.id).limit(1))


def suppressed(session: Session, addresses: tuple[str, ...] | list[str]) -> set[str]:
    """Those of `addresses` (lower-cased) that hard-bounced."""
    wanted = {address.lower() for address in addresses if address}
    if not wanted:
        return set()
    return set(session.scalars(select(Suppression.address).where(Suppression.address.in_(wanted))))


def suppress(session: Session, address: str, reason: str, now: datetime, raw_id: int | None) -> None:
    """Stop mailing `address` (idempotent, also between two daemons)."""
    _insert_missing(session, Suppression, {"address": address.lower(), "reason": reason[:2000],
                                           "created_at": now, "raw_id": raw_id})


def lift_suppression(session: Session, address: str) -> bool:
    """The address wrote to us again: it works. True if it was suppressed."""
    row = session.scalar(select(Suppression).where(Suppression.address == address.lower()))
    if row is None:
        return False
    session.delete(row)
    return True


def store_attachments(session: Session, mail: ParsedMail, now: datetime) -> None:
    """Each attachment's bytes once, under their sha256 (no name from the mail is used)."""
    for attachment in {a.sha256: a for a in mail.attachments if a.sha256}.values():
        _insert_missing(session, AttachmentBlob, {"sha256": attachment.sha256, "size": attachment.size,
                                                  "data": attachment.payload, "created_at": now})


def _insert_missing(session: Session, table: type, values: dict) -> None:
    """INSERT … ON CONFLICT DO NOTHING on the table's unique key."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing())
