"""Mail hygiene in the store: our own mail coming back, hard-bounced
addresses (suppressions), and attachment content stored once by its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailtriage.store.hints import hints_of as _hints
from mailtriage.store.schema import AttachmentBlob, OutboxRow, Suppression
from mailtriage.model import ParsedMail

def outbox_row(session: Session, message_ids: tuple[str, ...]) -> OutboxRow | None:
    """The outgoing mail with one of these Message-IDs (the first that matches)."""
    wanted = [mid for mid in dict.fromkeys(message_ids) if mid]
    hints = _hints(session)
    if hints is not None:
        wanted = [mid for mid in wanted if mid in hints.outbox_ids]
    if not wanted:
        return None
    return session.scalar(select(OutboxRow).where(OutboxRow.message_id.in_(wanted)).order_by(OutboxRow.id).limit(1))


def suppressed(session: Session, addresses: tuple[str, ...] | list[str]) -> set[str]:
    """Those of `addresses` (lower-cased) that hard-bounced."""
    wanted = {address.lower() for address in addresses if address}
    hints = _hints(session)
    if hints is not None:
        wanted &= hints.suppressed
    if not wanted:
        return set()
    return set(session.scalars(select(Suppression.address).where(Suppression.address.in_(wanted))))


def suppress(session: Session, address: str, reason: str, now: datetime, raw_id: int | None) -> None:
    """Stop mailing `address` (idempotent, also between two daemons)."""
    hints = _hints(session)
    if hints is not None:
        hints.suppressed.add(address.lower())
    _insert_missing(session, Suppression, {"address": address.lower(), "reason": reason[:2000],
                                           "created_at": now, "raw_id": raw_id})


def lift_suppression(session: Session, address: str) -> bool:
    """The address wrote to us again: it works. True if it was suppressed."""
    hints = _hints(session)
    if hints is not None and address.lower() not in hints.suppressed:
        return False
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
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = session.get_bind().dialect.name
    statement = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).values(**values)
    session.connection().execute(statement.on_conflict_do_nothing())
