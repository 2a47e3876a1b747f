"""The store side of the ticket step: what it reads before, and how its Change is written.

    load_facts ─► (tickets.customers | tickets.answers: pure) ─► write

`write()` is the one call that records what a message did to its ticket:
the ticket's new values, the message, the people, the events and the
outgoing mail, all in the message's transaction.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailtriage.mail.parse import parse
from mailtriage.model import Status
from mailtriage.notify import outbox
from mailtriage.notify.customermail import CUSTOMER_KINDS
from mailtriage.store import hygiene, queries, surgery
from mailtriage.store.lock import lock_tickets
from mailtriage.store.records import copy_onto
from mailtriage.store.schema import OutboxRow, Ticket
from mailtriage.thread import ThreadDecision, ThreadFacts
from mailtriage.tickets.change import Change, Facts, Incoming

def target(session: Session, decision: ThreadDecision, facts: ThreadFacts, *, named: tuple[int, ...] = (),
           lock: bool = False, followed: list[tuple[int, int]] | None = None) -> tuple[Ticket | None, tuple[int, ...]]:
    """The ticket to add the message to, and the tickets to merge into it.

    A closed ticket stays closed. When the message also links to a ticket
    that is not closed (typically the follow-up the closed one got, whose
    mail quotes both), it goes there instead, and no closed ticket is merged.

    `lock` (the write path): the rows are held first — the ticket, those to
    merge and `named` (an agent's `#merge` lines), in id order — then read
    again, so a merge another daemon committed while this one waited is
    followed to its survivor (appended to `followed`: (merged, survivor))."""
    if decision.ticket_id is None:
        return None, ()
    if lock:
        lock_tickets(session, (decision.ticket_id, *decision.merge, *named))
    ticket = _current(session, decision.ticket_id, lock, followed)
    assert ticket is not None
    if ticket.status != Status.CLOSED.value:
        merge = (_current(session, n, lock, followed) for n in decision.merge)
        return ticket, tuple(dict.fromkeys(t.id for t in merge if t is not None and t.id != ticket.id))
    linked = set(decision.merge) | set(facts.referenced_tickets) | set(facts.referring_tickets)
    others = [t for t in (_current(session, n, lock, followed) for n in sorted(linked - {ticket.id}))
              if t is not None and t.status != Status.CLOSED.value and t.id != ticket.id]
    if not others:
        return ticket, ()
    chosen = max(others, key=lambda t: t.id)
    return chosen, tuple(dict.fromkeys(t.id for t in others if t.id != chosen.id))


def _current(session: Session, number: int, lock: bool, followed: list[tuple[int, int]] | None) -> Ticket | None:
    """Ticket `number`, or the survivor of a merge that moved it (committed
    while we waited for its row; threading itself never names a merged ticket)."""
    ticket, seen = session.get(Ticket, number, execution_options=queries.NO_FLUSH), {number}
    while ticket is not None and ticket.merged_into is not None and ticket.merged_into not in seen:
        if followed is not None:
            followed.append((ticket.id, ticket.merged_into))
        seen.add(ticket.merged_into)
        if lock:
            lock_tickets(session, (ticket.merged_into,))
        ticket = session.get(Ticket, ticket.merged_into, execution_options=queries.NO_FLUSH)
    return ticket


def load_facts(session: Session, ticket_id: int | None, incoming: Incoming, window: timedelta, *,
               answer: bool = False, requester: str | None = None) -> Facts:
    """What the ticket step needs to know of the ticket and of the sender to
    write its mail; nothing when it will send none (a history import).
    `answer`: an agent's answer, which needs the customers' side of the thread
    and the text of our mail it answers; `requester`: whom an acknowledgement
    would go to (its rate limit and suppression)."""
    if answer and ticket_id is not None:
        named, answered = surgery.named_tickets(session, incoming.mail.body_text), \
            surgery.answered(session, ticket_id, incoming.mail)
    else:
        named, answered = (), None
    if not incoming.acknowledge:
        return Facts(named=named, answered=answered)
    people: tuple[tuple[str, str], ...] = ()
    conversation: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()
    theirs: tuple[str, ...] = ()
    if ticket_id is not None:
        people = tuple(queries.participants(session, ticket_id))
        conversation = tuple(queries.conversation_ids(session, ticket_id))
    ours: tuple[str, ...] = ()
    last_answer = None
    if ticket_id is not None and answer:
        seen = tuple(queries.customer_thread(session, ticket_id, CUSTOMER_KINDS))
        theirs = tuple(queries.customer_thread(session, ticket_id, ()))
        ours = _our_internal_text(session, incoming.mail.in_reply_to + incoming.mail.references)
        last_answer = queries.last_answer(session, ticket_id)
    sender = None if answer else requester
    replies = queries.auto_replies_since(session, sender, incoming.now - window) if sender else 0
    addresses = [address for address, _ in people] + ([sender] if sender else [])
    return Facts(people, conversation, seen, theirs, replies, frozenset(hygiene.suppressed(session, addresses)),
                 ours, named, answered, last_answer)


def _our_internal_text(session: Session, message_ids: tuple[str, ...]) -> tuple[str, ...]:
    """The text of our notices (and other mail customers never saw) that an
    agent's mail answers: what must be cut from it before it is relayed."""
    wanted = [mid for mid in dict.fromkeys(message_ids) if mid]
    if not wanted:
        return ()
    rows = session.scalars(select(OutboxRow.data).where(OutboxRow.message_id.in_(wanted),
                                                        OutboxRow.kind.not_in(CUSTOMER_KINDS)))
    return tuple(parse(data).body_text for data in rows)


def write(session: Session, incoming: Incoming, change: Change) -> None:
    """Record what one message did to its ticket, in the caller's transaction."""
    ticket_id, now = change.ticket.id, incoming.now
    row = session.get(Ticket, ticket_id, execution_options=queries.NO_FLUSH)
    assert row is not None, f"ticket {ticket_id} vanished"
    copy_onto(row, change.ticket)
    if change.participants:
        queries.add_participants(session, ticket_id, list(change.participants), new_ticket=change.new_ticket)
    if change.message is not None:
        queries.add_message(session, ticket_id, change.message.mail, raw_id=incoming.raw_id,
                            key=incoming.content_key, direction=change.message.direction,
                            kind=change.message.kind, now=now,
                            threaded=incoming.threaded)
    queries.add_events(session, ticket_id, now, [(e.type, e.detail, e.data) for e in change.events])
    outbox.insert_rows(session, [outbox.prepare(session, mail.mail, kind=mail.kind, now=now, ticket_id=ticket_id,
                                                message_id=mail.message_id) for mail in change.mail])
    if change.auto_replied_to is not None:
        queries.log_auto_reply(session, change.auto_replied_to, now)
