"""What the SLA sweep reads for a batch of notices, in two queries instead
of three per notice: each ticket's conversation (the Message-IDs its notice
threads under, as `queries.conversation_ids` gives them) and which of the
recipients hard-bounced (as `hygiene.suppressed` gives them).

Read once at the start of the sweep's batch, in its transaction; the sweep
adds no message to these tickets and no suppression, so the answers stay
true until its commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.orm import Session

from mailtriage.store.schema import Message, Suppression

CONVERSATION = 20          # Message-IDs a notice's References carry (queries.conversation_ids' limit)
CHUNK = 500                # values per IN (…)
_T = TypeVar("_T")


@dataclass(frozen=True)
class NoticeReads:
    threads: dict[int, list[str]]         # ticket → its conversation, oldest first; [] when it has none
    asked: frozenset[str]                 # the addresses looked up, lower-cased
    suppressed: frozenset[str]            # those of them that hard-bounced

    def conversation(self, ticket_id: int) -> list[str] | None:
        """The ticket's Message-IDs, or None when it was not read (ask the database)."""
        thread = self.threads.get(ticket_id)
        return None if thread is None else list(thread)

    def blocked(self, addresses: Iterable[str]) -> set[str] | None:
        """Those of `addresses` (lower-cased) that hard-bounced, or None when one was not asked."""
        wanted = {address.lower() for address in addresses if address}
        if not wanted <= self.asked:
            return None
        return wanted & self.suppressed


def load(session: Session, ticket_ids: Iterable[int], addresses: Iterable[str]) -> NoticeReads:
    """The conversations of `ticket_ids` and the suppressions among `addresses`."""
    numbers = sorted(set(ticket_ids))
    threads: dict[int, list[str]] = {number: [] for number in numbers}
    for chunk in _slices(numbers):
        for ticket_id, message_id in session.execute(_CONVERSATIONS, {"ids": chunk}):
            threads[ticket_id].append(message_id)
    asked = sorted({address.lower() for address in addresses if address})
    suppressed: set[str] = set()
    for part in _slices(asked):
        suppressed.update(session.scalars(_SUPPRESSED, {"addresses": part}))
    return NoticeReads({k: list(dict.fromkeys(v)) for k, v in threads.items()}, frozenset(asked),
                       frozenset(suppressed))


def _conversations() -> Select[int, str]:
    """Per ticket of `ids` its first message and its latest CONVERSATION - 1, in order of arrival."""
    numbered = select(
        Message.ticket_id, Message.message_id, Message.id,
        func.row_number().over(partition_by=Message.ticket_id, order_by=Message.id).label("first"),
        func.row_number().over(partition_by=Message.ticket_id, order_by=Message.id.desc()).label("latest"),
    ).where(Message.ticket_id.in_(bindparam("ids", expanding=True))).subquery()
    return (select(numbered.c.ticket_id, numbered.c.message_id)
            .where(or_(numbered.c.first == 1, numbered.c.latest < CONVERSATION))
            .order_by(numbered.c.ticket_id, numbered.c.id))


# Built once, run with the batch's values: building the window query cost more than running it.
_CONVERSATIONS = _conversations()
_SUPPRESSED = select(Suppression.address).where(Suppression.address.in_(bindparam("addresses", expanding=True)))


def _slices(values: list[_T], size: int = CHUNK) -> Iterable[list[_T]]:
    return (values[i:i + size] for i in range(0, len(values), size))
