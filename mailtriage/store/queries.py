"""Reading and writing tickets: the store side of the pipeline.

Every lookup the pipeline makes per message is an index lookup (raw sha256,
Message-ID, message_refs.ref, ticket id), so ingest does not slow down as
the number of tickets grows. A batch (a bulk import's, the daemon's) also
gives the session `store.hints.BatchHints`, read in a few queries per batch:
the lookups that would find nothing are not made, and those that thread are
answered from it. Rows nobody reads back in the same
transaction (events, references, participants) are written with Core
inserts, not through the ORM's unit of work, and the lookups of those rows
do not flush the unit of work first (`NO_FLUSH`): the changes it holds
(raw messages' states, tickets' timestamps) cannot change their answers, and
are written together, at the end of the transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session, make_transient_to_detached

from mailtriage.mail.tokens import Found
from mailtriage.model import ParsedMail
from mailtriage.store.schema import (
    AutoReplyLog,
    Event,
    Message,
    MessageRef,
    OutboxRow,
    Participant,
    RawMessage,
    Ticket,
)
from mailtriage.store.hints import hints_of as _hints
from mailtriage.thread import ThreadFacts, find_tag


NO_FLUSH = {"autoflush": False}       # for lookups of rows the ORM does not write (see above)


def note_outgoing(session: Session, message_id: str) -> None:
    """An outbox row was added: a later lookup of its Message-ID must be made."""
    hints = _hints(session)
    if hints is not None:
        hints.outbox_ids.add(message_id)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_raw(session: Session, digest: str) -> RawMessage | None:
    return session.scalar(select(RawMessage).where(RawMessage.sha256 == digest))


def content_key(mail: ParsedMail) -> str:
    """Same Message-ID and same key: the same message delivered again (to a
    second address, or re-polled) — a duplicate even if transport headers differ."""
    # Unnamed inline images (cid:) are attachments since issue 15; left out, the key
    # of mail stored before stays the same.
    text = "\x00".join([mail.from_addr, mail.subject, mail.body_text.strip(),
                        ",".join(a.filename for a in mail.attachments
                                 if not (a.content_id and a.filename == "unnamed"))])
    return sha256(text.encode("utf-8", "surrogatepass"))


def find_duplicate(session: Session, mail: ParsedMail, key: str) -> Message | None:
    hints = _hints(session)
    if hints is not None and mail.message_id not in hints.message_ids:
        return None
    return session.scalar(
        select(Message).where(Message.message_id == mail.message_id, Message.content_key == key).limit(1),
        execution_options=NO_FLUSH)


def tickets_of_messages(session: Session, message_ids: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """(Message-ID, ticket) of the stored ticket messages among `message_ids`."""
    hints = _hints(session)
    if hints is not None:
        message_ids = tuple(mid for mid in message_ids if mid in hints.message_ids)
    if not message_ids:
        return ()
    holders = hints.answer(hints.holders, message_ids) if hints is not None else None
    if holders is not None:
        return tuple(sorted({(mid, ticket) for mid in message_ids for ticket in holders[mid]}))
    rows = session.execute(select(Message.message_id, Message.ticket_id).where(
        Message.message_id.in_(message_ids)).distinct(), execution_options=NO_FLUSH)
    return tuple(sorted((mid, ticket) for mid, ticket in rows))


def tickets_of_outgoing(session: Session, message_ids: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """(Message-ID, ticket) of mail we sent (acknowledgements, agent notices,
    relayed answers): a reply to any of them threads, though it is not a ticket message."""
    hints = _hints(session)
    if hints is not None:
        message_ids = tuple(mid for mid in message_ids if mid in hints.outbox_ids)
    if not message_ids:
        return ()
    rows = session.execute(select(OutboxRow.message_id, OutboxRow.ticket_id).where(
        OutboxRow.message_id.in_(message_ids), OutboxRow.ticket_id.is_not(None)).distinct())
    return tuple(sorted((mid, ticket) for mid, ticket in rows if ticket is not None))


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


def last_answer(session: Session, ticket_id: int) -> str | None:
    """The text of the agent's latest public answer on the ticket (as relayed: quotes cut)."""
    return session.scalar(select(Message.body_text).where(
        Message.ticket_id == ticket_id, Message.kind == "agent", Message.direction == "out")
        .order_by(Message.id.desc()).limit(1))


def tickets_referring_to(session: Session, message_id: str) -> tuple[int, ...]:
    hints = _hints(session)
    if hints is not None and message_id not in hints.refs:
        return ()
    referrers = hints.answer(hints.referrers, (message_id,)) if hints is not None else None
    if referrers is not None:
        return tuple(sorted(referrers[message_id]))
    rows = session.scalars(select(MessageRef.ticket_id).where(MessageRef.ref == message_id).distinct(),
                           execution_options=NO_FLUSH)
    return tuple(sorted(set(rows)))


def is_participant(session: Session, ticket_id: int, address: str) -> bool:
    return session.scalar(select(Participant.id).where(
        Participant.ticket_id == ticket_id, Participant.email == address).limit(1)) is not None


def thread_facts(session: Session, mail: ParsedMail, prefix: str, sender_is_agent: bool,
                 token: Found = Found()) -> ThreadFacts:
    """What the store knows that threads `mail`; `token`: what its recipients'
    reply tokens say (mail.tokens). A tag or token of a merged ticket names the survivor."""
    redirected: list[tuple[int, int]] = []
    tagged_ticket = survivor(session, find_tag(mail.subject, prefix), redirected)
    may_use = tagged_ticket is not None and (sender_is_agent or is_participant(session, tagged_ticket,
                                                                               mail.from_addr))
    token_ticket = survivor(session, token.ticket, redirected)
    refs = tuple(dict.fromkeys(mail.in_reply_to + mail.references))
    theirs, ours = tickets_of_messages(session, refs), tickets_of_outgoing(session, refs)
    referenced, referring = {ticket for _, ticket in theirs + ours}, tickets_referring_to(session, mail.message_id)
    known = dict(theirs + ours)
    newest = next(((mid, known[mid]) for mid in reversed(mail.references + mail.in_reply_to) if mid in known), None)
    return ThreadFacts(
        tagged_ticket=tagged_ticket,
        sender_may_use_tag=may_use,
        referenced_tickets=tuple(sorted(referenced)),
        referring_tickets=referring,
        matched=tuple((mid, ticket, "message") for mid, ticket in theirs)
        + tuple((mid, ticket, "our mail") for mid, ticket in ours),
        token_ticket=token_ticket, token_address=token.address, bad_tokens=token.bad,
        redirected=tuple(redirected),
        split_pairs=split_pairs(session, referenced | set(referring)) if len(referenced | set(referring)) > 1
        else (),
        newest=newest,
    )


def split_pairs(session: Session, tickets: set[int]) -> tuple[tuple[int, int], ...]:
    """The pairs of `tickets` one of which was split off the other (`#split`
    wrote `split` on the source and `created` with `split_from` on the new
    one; a side merged since counts as its survivor): threading never merges
    them back. Asked only when a message links two tickets or more."""
    pairs: set[tuple[int, int]] = set()
    for ticket_id, data in session.execute(select(Event.ticket_id, Event.data).where(
            Event.ticket_id.in_(sorted(tickets)), Event.type.in_(("split", "created")), Event.data.is_not(None)),
            execution_options=NO_FLUSH):
        named = str((data or {}).get("split_to") or (data or {}).get("split_from") or "").rpartition("-")[2]
        other = survivor(session, int(named)) if named.isdigit() else None
        if other is not None and other != ticket_id and other in tickets:
            pairs.add((min(ticket_id, other), max(ticket_id, other)))
    return tuple(sorted(pairs))


def survivor(session: Session, number: int | None, redirected: list[tuple[int, int]] | None = None) -> int | None:
    """The ticket `number` names: itself, or the one it was merged into (and
    that one's survivor …); None when there is no such ticket."""
    if number is None:
        return None
    seen = [number]
    while True:
        # session.get: the identity map holds merges not yet flushed (a bulk import's batch)
        ticket = session.get(Ticket, seen[-1])
        if ticket is None:
            return None if len(seen) == 1 else seen[-2]
        if ticket.merged_into is None or ticket.merged_into in seen or len(seen) > 20:
            break
        seen.append(ticket.merged_into)
    if len(seen) > 1 and redirected is not None:
        redirected.append((number, seen[-1]))
    return seen[-1]


# Built once: a statement made per call costs more in SQLAlchemy than the row does in the database.
_INSERT_PARTICIPANT = insert(Participant)
_INSERT_MESSAGE = insert(Message).returning(Message.id)
_INSERT_REF = insert(MessageRef)
_INSERT_EVENT = insert(Event)
_TICKET_COLUMNS = tuple(Ticket.__table__.columns)
_INSERT_TICKET = insert(Ticket).returning(*_TICKET_COLUMNS)


def add_participants(session: Session, ticket_id: int, people: list[tuple[str, str]], *,
                     new_ticket: bool = False) -> None:
    """Add the customers not yet on the ticket (`new_ticket`: it has none yet, no need to look)."""
    hints = _hints(session)
    if new_ticket:
        existing: set[str] = set()
    elif hints is not None and ticket_id in hints.participants:
        existing = set(hints.participants[ticket_id])
    else:
        existing = set(session.scalars(select(Participant.email).where(Participant.ticket_id == ticket_id),
                                       execution_options=NO_FLUSH))
    rows = []
    for address, role in people:
        if address not in existing:
            rows.append({"ticket_id": ticket_id, "email": address, "role": role})
            existing.add(address)
    if rows:
        session.connection().execute(_INSERT_PARTICIPANT, rows)
    if hints is not None:
        hints.participants[ticket_id] = existing


def add_message(session: Session, ticket_id: int, mail: ParsedMail, *, raw_id: int | None, key: str,
                direction: str, kind: str, now: datetime, threaded: tuple[str, str] | None = None) -> int:
    """Store a ticket message and its references; returns its primary key."""
    connection = session.connection()
    message_pk = connection.execute(_INSERT_MESSAGE, {
        "ticket_id": ticket_id, "raw_id": raw_id, "message_id": mail.message_id, "content_key": key,
        "direction": direction, "kind": kind, "from_addr": mail.from_addr, "to_addrs": list(mail.to),
        "cc_addrs": list(mail.cc), "date": mail.date, "subject": mail.subject, "body_text": mail.body_text,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "sha256": a.sha256} for a in mail.attachments],
        "created_at": now, "threaded_via": threaded[0] if threaded else None,
        "thread_evidence": threaded[1] if threaded else None,
    }).scalar_one()
    refs = list(dict.fromkeys(mail.in_reply_to + mail.references))
    if refs:
        connection.execute(_INSERT_REF, [{"ref": ref, "message_pk": message_pk, "ticket_id": ticket_id}
                                         for ref in refs])
    hints = _hints(session)
    if hints is not None:
        hints.wrote(mail.message_id, refs, ticket_id)
    return message_pk


def add_event(session: Session, ticket_id: int, at: datetime, type_: str, detail: str = "",
              data: dict | None = None) -> None:
    add_events(session, ticket_id, at, [(type_, detail, data)])


def add_events(session: Session, ticket_id: int, at: datetime,
               events: list[tuple[str, str, dict | None]]) -> None:
    """Several events at once (type, detail, data), in this order: one statement."""
    add_event_rows(session, [{"ticket_id": ticket_id, "at": at, "type": type_, "detail": detail, "data": data}
                             for type_, detail, data in events])


def add_event_rows(session: Session, rows: list[dict]) -> None:
    """Events of several tickets (ticket_id, at, type, detail, data), in this order: one statement."""
    if rows:
        session.connection().execute(_INSERT_EVENT, rows)


def insert_ticket(session: Session, ticket: Ticket) -> None:
    """Store a new ticket (a transient object): one Core INSERT, then the
    object joins the session as if it had been loaded, so later changes to it
    are UPDATEs. (The unit of work would also flush every other pending change
    first, and costs several times the statement.) The row comes back whole,
    column defaults included, so nothing is left to load."""
    values = {column.key: getattr(ticket, column.key) for column in _TICKET_COLUMNS if column.key != "id"}
    row = session.connection().execute(_INSERT_TICKET, {k: v for k, v in values.items() if v is not None}).one()
    for column, value in zip(_TICKET_COLUMNS, row):
        setattr(ticket, column.key, value)
    make_transient_to_detached(ticket)
    session.add(ticket)
    hints = _hints(session)
    if hints is not None:
        hints.tickets.append(ticket)         # at hand for the batch's later replies


_COUNT_AUTO_REPLIES = select(func.count(AutoReplyLog.id)).where(
    AutoReplyLog.sender == bindparam("sender"), AutoReplyLog.at >= bindparam("since"))
_INSERT_AUTO_REPLY = insert(AutoReplyLog)


def auto_replies_since(session: Session, sender: str, since: datetime) -> int:
    """Our automatic replies to `sender` since then (the log is written by Core: nothing to flush first)."""
    return session.scalar(_COUNT_AUTO_REPLIES, {"sender": sender, "since": since},
                          execution_options=NO_FLUSH) or 0


def log_auto_reply(session: Session, sender: str, at: datetime) -> None:
    session.connection().execute(_INSERT_AUTO_REPLY, {"sender": sender, "at": at})


def conversation_ids(session: Session, ticket_id: int, limit: int = 20) -> list[str]:
    """Message-IDs of a ticket in order, for References of outgoing mail: the
    first message and the latest ones (RFC 5322 3.6.4 trims the middle), so
    the last entry, our In-Reply-To, is the newest message."""
    ids = select(Message.message_id).where(Message.ticket_id == ticket_id)
    first = session.scalars(ids.order_by(Message.id).limit(1)).all()
    latest = session.scalars(ids.order_by(Message.id.desc()).limit(limit - 1)).all()
    return list(dict.fromkeys([*first, *reversed(latest)]))
