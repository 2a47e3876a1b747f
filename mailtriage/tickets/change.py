"""The ticket step's values: what it is given and what it decides (pure).

    Incoming (the message, as threading left it) + TicketRecord + Facts
        ─► customers.handle / answers.handle ─► Change ─► store.write

A Change is everything one message does to its ticket: the ticket as it is
afterwards, the message and people to record, the events, and the mail to
send. The store writes it in the message's transaction, so the outbox rows
commit with the ticket (exactly once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from mailtriage.mail.language import Decision
from mailtriage.model import ParsedMail, TicketEvent, TicketRecord, Verdict
from mailtriage.notify.agentmail import Thread
from mailtriage.notify.compose import OutgoingMail
from mailtriage.tickets.agents import NOT_AN_AGENT, AgentCheck


@dataclass(frozen=True)
class ReadAhead:
    """What a bulk import's parsing worker read of a message before the ticket
    step (pipeline.readahead), which then need not: the text splits and
    language detections are a third of a message's work there. None: not
    read, the ticket step reads it itself. The worker cannot know whether the
    message will open a ticket or answer one, so it reads its language both ways."""

    own_text: str | None = None                 # quotes.split_reply(body).text: the sender's own words
    first_language: Decision | None = None      # as a ticket's first message (subject and body)
    reply_language: Decision | None = None      # as a reply (the body alone)


NOT_READ = ReadAhead()


@dataclass(frozen=True)
class Incoming:
    """One message on its way into a ticket, with what the steps before learnt."""

    mail: ParsedMail
    raw_id: int
    source: str                       # stdin, smtp, imap:NAME, maildir:PATH …
    content_key: str                  # what makes two copies of it the same message
    now: datetime
    automatic: str | None = None      # why it is automatic mail (guards), or None
    envelope_rcpts: tuple[str, ...] = ()
    acknowledge: bool = True          # False (history import): no mail to customers or agents
    agent: AgentCheck = NOT_AN_AGENT  # who vouches for its From:
    note: bool = False                # sent to a comment address
    history: datetime | None = None   # taken in as history at this time (`now` is then the mail's own)
    threaded: tuple[str, str] = ("new", "")   # how it found its ticket (thread.decide's via) and the evidence
    read: ReadAhead = NOT_READ        # what a bulk import's worker read of it already


@dataclass(frozen=True)
class Answered:
    """The customer message an agent's mail answers (its In-Reply-To, or the
    message our notice it answers was about): what `#split` moves."""

    message_pk: int
    mail: ParsedMail
    arrived: datetime                 # when we accepted it: the split-off ticket's clocks start here
    first: bool                       # the ticket's first message (nothing would stay behind)


@dataclass(frozen=True)
class Facts:
    """What the store knew about the ticket before this message."""

    participants: tuple[tuple[str, str], ...] = ()   # (address, role), the requester first
    conversation: tuple[str, ...] = ()               # Message-IDs: the first and the latest 19
    customer_seen: tuple[str, ...] = ()              # Message-IDs the customers saw, oldest first
    customer_theirs: tuple[str, ...] = ()            # the customers' own messages, oldest first
    auto_replies: int = 0                            # automatic replies to the sender within the window
    suppressed: frozenset[str] = frozenset()         # those of the people above that hard-bounced
    ours: tuple[str, ...] = ()                       # text of our internal mail an agent's answer refers to
    named: tuple[TicketRecord, ...] = ()             # the tickets `#merge` lines name (those that exist)
    answered: "Answered | None" = None               # the customer message an agent's mail answers (#split)
    last_answer: str | None = None                   # the agent's latest public answer (the resolution notice)

    def with_message(self, message_id: str, *, customer: bool) -> "Facts":
        """As they are once this message is stored."""
        conversation = tuple(dict.fromkeys(self.conversation + (message_id,)))
        if len(conversation) > 20:
            conversation = conversation[:1] + conversation[-19:]
        seen, theirs = self.customer_seen, self.customer_theirs
        if customer:
            seen, theirs = _trim(seen + (message_id,)), _trim(theirs + (message_id,))
        return replace(self, conversation=conversation, customer_seen=seen, customer_theirs=theirs)

    def with_people(self, people: list[tuple[str, str]]) -> "Facts":
        known = {address for address, _ in self.participants}
        added = tuple(p for p in people if p[0] not in known)
        everyone = sorted(self.participants + added, key=lambda person: person[1] != "requester")
        return replace(self, participants=tuple(everyone))

    def with_sent(self, mail: OutgoingMail, kinds: tuple[str, ...]) -> "Facts":
        if mail.kind not in kinds:
            return self
        return replace(self, customer_seen=_trim(self.customer_seen + (mail.message_id,)))

    @property
    def thread(self) -> Thread:
        return Thread(self.participants, self.conversation)


def _trim(ids: tuple[str, ...], limit: int = 20) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(ids))
    return ids[:1] + ids[1:][-(limit - 1):] if len(ids) > limit else ids


@dataclass(frozen=True)
class StoredMessage:
    """A message to record on the ticket (the agent's text may be trimmed to what it says)."""

    mail: ParsedMail
    direction: str                    # in | out
    kind: str                         # customer | agent | internal


@dataclass(frozen=True)
class Change:
    """What one message does to its ticket."""

    ticket: TicketRecord
    message: StoredMessage | None = None
    participants: tuple[tuple[str, str], ...] = ()
    new_ticket: bool = False                     # participants: none are stored yet
    events: tuple[TicketEvent, ...] = ()
    mail: tuple[OutgoingMail, ...] = ()
    auto_replied_to: str | None = None           # counted against the per-sender limit
    orders: tuple["MergeOrder | SplitOrder", ...] = ()   # ticket surgery for the store (tickets.surgery)


@dataclass(frozen=True)
class MergeOrder:
    """`#merge`: the other ticket's messages, people and mail move to this one."""

    other: TicketRecord                          # as it is afterwards: closed, merged_into this one
    events: tuple[TicketEvent, ...]              # on the merged ticket


@dataclass(frozen=True)
class SplitOrder:
    """`#split`: the answered message and the later ones of its thread move to a new ticket."""

    answered: Answered
    ticket: TicketRecord                         # the new ticket, before the store numbers it
    verdict: Verdict
    people: tuple[tuple[str, str], ...]          # its customers, the requester first
    actor: str
