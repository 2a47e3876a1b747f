"""Ticket surgery at the rim: the store carries out the `#merge` and `#split`
orders that the agent's ticket step (tickets.answers, tickets.surgery) decided.

    answers.handle ─► Change.orders ─► write (the agent's mail, on its ticket) ─► **perform**
        merge: rows move to the survivor, the merged ticket closed with merged_into
        split: a new ticket numbered, the thread's rows move, its events and mail written

All in the message's transaction: a failure rolls the whole message back
(and quarantines it), never half a merge.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from mailtriage.config.loaded import Config
from mailtriage.model import ticket_ref
from mailtriage.pipeline.tickets import write
from mailtriage.store import hygiene, queries
from mailtriage.store import surgery as rows
from mailtriage.store.records import copy_onto, insert_ticket, record_of
from mailtriage.store.schema import Ticket
from mailtriage.tickets import surgery
from mailtriage.tickets.change import Change, Facts, Incoming, MergeOrder, SplitOrder

log = logging.getLogger(__name__)


def perform(session: Session, config: Config, incoming: Incoming, ticket_id: int, change: Change) -> None:
    sent = tuple(mail.message_id for mail in change.mail)
    for order in change.orders:
        if isinstance(order, MergeOrder):
            _merge(session, config, incoming, ticket_id, order)
        else:
            _split(session, config, incoming, ticket_id, order, sent)


def _merge(session: Session, config: Config, incoming: Incoming, survivor: int, order: MergeOrder) -> None:
    other = order.other.id
    rows.move_contents(session, survivor, other)
    row = session.get(Ticket, other)
    assert row is not None, f"ticket {other} vanished"
    copy_onto(row, order.other)
    queries.add_events(session, other, incoming.now, [(e.type, e.detail, e.data) for e in order.events])
    prefix = config.settings.ticket_prefix
    log.info("%s merged into %s by %s", ticket_ref(prefix, other), ticket_ref(prefix, survivor),
             incoming.mail.from_addr)


def _split(session: Session, config: Config, incoming: Incoming, source_id: int, order: SplitOrder,
           sent: tuple[str, ...]) -> None:
    prefix = config.settings.ticket_prefix
    moving, outgoing = rows.thread_of(session, source_id, order.answered.message_pk, incoming.raw_id, sent)
    ticket = insert_ticket(session, order.ticket)
    rows.move_thread(session, ticket.id, moving, outgoing)
    moved = tuple(m.message_id for m in moving)
    source = session.get(Ticket, source_id)
    assert source is not None
    people = order.people
    facts = Facts(participants=people, conversation=moved[:1] + moved[1:][-19:],
                  suppressed=frozenset(hygiene.suppressed(session, [a for a, _ in people])))
    opened = surgery.split_opened(order, ticket, record_of(source), moved, facts, config, incoming.acknowledge)
    write(session, incoming, opened)
    event = surgery.split_event(order, ticket_ref(prefix, ticket.id), moved)
    queries.add_events(session, source_id, incoming.now, [(event.type, event.detail, event.data)])
    log.info("%s split off %s by %s: %d message(s)", ticket_ref(prefix, ticket.id), ticket_ref(prefix, source_id),
             order.actor, len(moved))
