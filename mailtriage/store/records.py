"""Tickets as rows and as records: the core reads and returns TicketRecords,
the store turns rows into records and writes changed records back."""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy.orm import Session

from mailtriage.model import TicketRecord
from mailtriage.store import queries
from mailtriage.store.schema import Ticket

FIELDS = tuple(f.name for f in fields(TicketRecord))     # a record's fields, each a column of `tickets`


def record_of(ticket: Ticket) -> TicketRecord:
    return record_from({name: getattr(ticket, name) for name in FIELDS})


def record_from(values: dict) -> TicketRecord:
    """A record from a ticket's column values (an ORM row's, or a Core row's `_asdict()`)."""
    values["tags"] = tuple(values["tags"] or ())
    values["sla_data"] = dict(values["sla_data"] or {})
    return TicketRecord(**values)


def copy_onto(ticket: Ticket, record: TicketRecord) -> None:
    """Write a record's changed values onto its row (unchanged ones stay untouched: no UPDATE)."""
    for name in FIELDS:
        value = getattr(record, name)
        if name == "tags":
            value = list(value)                 # a new list: SQLAlchemy sees the change
        if name != "id" and getattr(ticket, name) != value:
            setattr(ticket, name, value)


def insert_ticket(session: Session, record: TicketRecord) -> TicketRecord:
    """Store a new ticket; the record comes back with its number."""
    values = {name: getattr(record, name) for name in FIELDS if name != "id"}
    row = Ticket(**{**values, "tags": list(record.tags)})
    queries.insert_ticket(session, row)
    return record_of(row)
