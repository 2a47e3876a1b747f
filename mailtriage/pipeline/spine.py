"""The spine: one message from raw bytes to its ticket, each step a call on typed values.

    accept ─► limits ─► parse ─► dedupe ─► guards ─► authenticate ─► thread
           ─► (agent's answer | customer mail ─► classify) ─► ticket change ─► write (outgoing mail included)

`accept()` commits the raw bytes before anything else happens (the caller
may then answer 250 or flag the IMAP message); `process_stored()` runs
`flow()` in one transaction, and a message that breaks a step, or is over a
limit, is quarantined with the reason, never lost and never blocking the
next one (pipeline.quarantine).
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import replace
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mailtriage.app import App
from mailtriage.classify import classify
from mailtriage.errors import TemporaryFailure
from mailtriage.mail import guards, limits
from mailtriage.mail.parse import parse
from mailtriage.model import Disposition, Outcome, ParsedMail, Status, ticket_ref
from mailtriage.notify import agentmail, outbox
from mailtriage.pipeline import bounce, surgery
from mailtriage.pipeline.tickets import load_facts, target, write
from mailtriage.store import hygiene, queries
from mailtriage.store import surgery as surgery_rows
from mailtriage.store.hints import hints_of
from mailtriage.store.lock import lock_conversations
from mailtriage.store.records import insert_ticket, record_of
from mailtriage.store.schema import RawMessage, Ticket
from mailtriage.thread import ThreadDecision, decide, evidence
from mailtriage.tickets import agents, answers, customers
from mailtriage.tickets.change import NOT_READ, Incoming, ReadAhead
from mailtriage.tickets.commands import merge_numbers
from mailtriage.tickets.history import history_time
from mailtriage.tickets.transitions import mailbox_for, reply_token

log = logging.getLogger(__name__)

LOOP_REASONS = ("own-address", "x-loop", "hop-count")


def process(app: App, raw: bytes, now: datetime, *, source: str = "stdin",
            envelope_rcpts: tuple[str, ...] = (), acknowledge: bool = True) -> Outcome:
    """Accept and process one message (ingest, SMTP, IMAP all come through here)."""
    raw_id, seen = accept(app, raw, now, source)
    if seen is not None:
        return seen
    return process_stored(app, raw_id, now, envelope_rcpts=envelope_rcpts, acknowledge=acknowledge)


def flow(app: App, session: Session, raw: RawMessage, now: datetime, envelope_rcpts: tuple[str, ...] = (),
         acknowledge: bool = True, mail: ParsedMail | None = None, delivered: datetime | None = None,
         read: ReadAhead = NOT_READ) -> Outcome:
    """The steps after the raw store, in order. `acknowledge=False`: the mail
    is history (tickets.history), dated by itself or `delivered`. `mail`:
    already checked against the raw limits and parsed, and its text and
    language `read` (by a bulk import's read-ahead)."""
    settings = app.settings
    if mail is None:
        breach = limits.check_raw(raw.data, settings.limits)      # before the full parse: cheap
        if breach is not None:
            return over_limit(raw, breach)
        mail = parse(raw.data)
    breach = limits.check_parsed(mail, settings.limits)
    if breach is not None:
        return over_limit(raw, breach)
    lock_conversations(session, conversation(mail))        # several daemons: one at a time, per thread
    key = queries.content_key(mail)
    duplicate = queries.find_duplicate(session, mail, key)
    if duplicate is not None:
        raw.ticket_id = duplicate.ticket_id
        return Outcome(Disposition.DUPLICATE, None, ref_of(app, duplicate.ticket_id), raw.id)
    automatic = guards.automatic_reason(mail, settings.own_addresses, settings.loop_id, settings.limits.max_hops)
    if automatic in LOOP_REASONS or _is_our_message(session, mail):
        return Outcome(Disposition.IGNORED, "loop", None, raw.id)
    if automatic == "bounce":
        return bounce.record(app, session, raw, mail, now)
    if automatic is None and mail.from_addr and hygiene.lift_suppression(session, mail.from_addr):
        log.info("%s wrote to us, so the address works again: no longer suppressed", mail.from_addr)
    agent = agents.authenticate(mail, settings)
    # Clocks start when the message was accepted (our 250, or the IMAP commit), even when it is
    # processed later (after a database outage, from the quarantine); history keeps its own time.
    at = min(raw.received_at or now, now) if acknowledge else history_time(mail, delivered, now)
    incoming = Incoming(mail, raw.id, raw.source, key, at, automatic, envelope_rcpts, acknowledge, agent,
                        history=None if acknowledge else now, read=read)
    incoming = replace(incoming, note=customers.to_comment_address(incoming, app.config))
    links = queries.thread_facts(session, mail, settings.ticket_prefix, agent.trusted,
                                 reply_token(mail, settings, envelope_rcpts))
    threading = decide(links)
    # The rows it writes are held from here (PostgreSQL); a merge committed meanwhile is followed.
    named = merge_numbers(mail.body_text) if agent.trusted and not automatic else ()
    followed: list[tuple[int, int]] = []
    ticket, merge = target(session, threading, links, named=named, lock=True, followed=followed)
    said = evidence(threading, links, settings.ticket_prefix) + "".join(
        f"; {ref_of(app, old)} was merged into {ref_of(app, new)} meanwhile (by another daemon)"
        for old, new in followed)
    incoming = replace(incoming, threaded=(threading.via, said))
    if ticket is not None and merge:
        surgery_rows.merge_tickets(session, ticket.id, merge, at, settings.ticket_prefix)
    disposition, ticket_id = change_ticket(app, session, incoming, ticket, threading)
    if threading.bad_tokens:
        _bad_tokens(app, session, incoming, ticket_id, threading.bad_tokens)
    if ticket_id is not None:
        hygiene.store_attachments(session, mail, now)
    raw.ticket_id = ticket_id          # after the last query: one UPDATE of the raw row, with record()'s
    reason = "note-without-ticket" if disposition is Disposition.IGNORED else None
    return Outcome(disposition, reason, ref_of(app, ticket_id), raw.id)


def change_ticket(app: App, session: Session, incoming: Incoming, ticket: Ticket | None,
                  threading: ThreadDecision) -> tuple[Disposition, int | None]:
    """The ticket step: an agent's answer, a customer's reply, or a new ticket; one write."""
    config, window = app.config, app.settings.auto_reply.per_sender_window
    if incoming.agent.trusted and not incoming.automatic:
        if ticket is not None:
            facts = load_facts(session, ticket.id, incoming, window, answer=True)
            change = answers.handle(incoming, record_of(ticket), facts, config)
            write(session, incoming, change)
            if change.orders:
                surgery.perform(session, config, incoming, ticket.id, change)
            return Disposition.REPLY, ticket.id
        if incoming.note:
            _note_without_ticket(app, session, incoming)
            return Disposition.IGNORED, None
    requester = customers.requester_of(incoming, config)
    if ticket is not None and ticket.status != Status.CLOSED.value:
        facts = load_facts(session, ticket.id, incoming, window, requester=requester)
        write(session, incoming, customers.reply(incoming, record_of(ticket), facts, config))
        return Disposition.REPLY, ticket.id
    verdict = classify(incoming.mail, config.rules, config.settings.priority_matrix)
    mailbox = mailbox_for(incoming.mail, config.settings, incoming.envelope_rcpts)
    record = insert_ticket(session, customers.new_ticket(incoming, verdict, mailbox, config))
    facts = load_facts(session, None, incoming, window, requester=requester)
    change = customers.open_ticket(incoming, record, verdict, mailbox, facts,
                                   config, follows=ticket.id if ticket is not None else None,
                                   refused_tag=threading.refused_tag)
    write(session, incoming, change)
    return Disposition.NEW, record.id


def _bad_tokens(app: App, session: Session, incoming: Incoming, ticket_id: int | None,
                bad: tuple[str, ...]) -> None:
    """A reply token that did not verify threads nothing: said in the log and
    on the ticket the message went to (the address, never the secret)."""
    ref = ref_of(app, ticket_id) or "no ticket"
    for address in bad:
        log.warning("raw message %s (%s, from %s): reply token %s has a bad signature: it names no ticket (%s)",
                    incoming.raw_id, incoming.mail.message_id, incoming.mail.from_addr or "?", address, ref)
    if ticket_id is not None:
        queries.add_events(session, ticket_id, incoming.now, [(
            "reply-token-refused", f"sent to {address}: a reply token with a bad signature (forged, truncated "
            "or copied onto another number), so it threaded nothing", {"address": address}) for address in bad])


def _note_without_ticket(app: App, session: Session, incoming: Incoming) -> None:
    """An agent's note that names no ticket: tell the agent, keep nothing."""
    mail = incoming.mail
    if not incoming.acknowledge:
        return
    why = (f"this note names no ticket: reply to a ticket mail, or put [{app.settings.ticket_prefix}-n] in "
           "the subject")
    sent = agentmail.command_error(app.settings, app.config.templates, None, mail.from_addr,
                                   agentmail.display_name(incoming.agent.agent, mail.from_addr, mail.from_name),
                                   ((mail.subject or "(no subject)", why),), (), subject=mail.subject,
                                   in_reply_to=mail.message_id)
    outbox.enqueue(session, sent.mail, kind=sent.kind, now=incoming.now, ticket_id=None,
                   message_id=sent.message_id)


def accept(app: App, raw: bytes, now: datetime, source: str) -> tuple[int, Outcome | None]:
    """Commit the raw bytes durably. Returns the raw id, and an Outcome when
    these exact bytes were already accepted and processed before."""
    digest = queries.sha256(raw)
    try:
        with app.store.session() as session, session.begin():
            existing = queries.find_raw(session, digest)
            if existing is not None:
                if existing.state == "pending":
                    return existing.id, None            # a crash left it half-way: go on
                return existing.id, Outcome(Disposition.DUPLICATE, None, ref_of(app, existing.ticket_id), existing.id)
            row = RawMessage(sha256=digest, size=len(raw), data=raw, source=source[:200],
                             received_at=now, state="pending")
            session.add(row)
            session.flush()
            return row.id, None
    except SQLAlchemyError as exc:
        log.error("could not store a message (%d bytes from %s): %s", len(raw), source, exc)
        raise TemporaryFailure(f"could not store the message: {exc.__class__.__name__}") from exc


def process_stored(app: App, raw_id: int, now: datetime, *, envelope_rcpts: tuple[str, ...] = (),
                   acknowledge: bool = True, counted: bool = False, delivered: datetime | None = None) -> Outcome:
    """Run a stored raw message through the flow; quarantine it if a step fails.

    `counted`: the caller has already counted this attempt (the retry job
    does, before it starts, so that a message that kills the process is
    still tried only a bounded number of times)."""
    try:
        with app.store.session() as session, session.begin():
            # FOR UPDATE: two daemons retrying the same message take turns (a no-op on SQLite).
            raw = session.get(RawMessage, raw_id, with_for_update=True)
            assert raw is not None, f"raw message {raw_id} vanished"
            if raw.state not in ("pending", "quarantined"):      # processed meanwhile, elsewhere
                return Outcome.parse(raw.outcome or raw.state, ref_of(app, raw.ticket_id), raw.id)
            outcome = flow(app, session, raw, now, envelope_rcpts, acknowledge, delivered=delivered)
            record(raw, outcome, count=not counted)
            return outcome
    except SQLAlchemyError as exc:
        log.error("raw message %s: database failure: %s", raw_id, exc)
        raise TemporaryFailure(f"database failure: {exc.__class__.__name__}") from exc
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the line
        return quarantine(app, raw_id, reason_of(exc), exc, count=not counted)


def quarantine(app: App, raw_id: int, reason: str, exc: BaseException | None = None, *,
               count: bool = True) -> Outcome:
    """Shunt a message aside with the reason (and the traceback, for `quarantine list`)."""
    detail = "".join(traceback.format_exception(exc)) if exc is not None else None
    log.warning("raw message %s quarantined: %s", raw_id, reason)
    with app.store.session() as session, session.begin():
        raw = session.get(RawMessage, raw_id)
        if raw is not None:
            raw.state, raw.reason, raw.error = "quarantined", reason, detail
            raw.outcome = f"quarantined:{reason}"
            raw.attempts = (raw.attempts or 0) + (1 if count else 0)
    return Outcome(Disposition.QUARANTINED, reason, None, raw_id)


def reason_of(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or f"error:{exc.__class__.__name__}"


def quarantine_in_place(raw: RawMessage, exc: BaseException) -> Outcome:
    """Quarantine a message inside the caller's transaction, after its own
    savepoint was rolled back (a batch): the reason and the traceback on its row."""
    reason = reason_of(exc)
    log.warning("raw message %s quarantined: %s", raw.id, reason)
    outcome = Outcome(Disposition.QUARANTINED, reason, None, raw.id)
    record(raw, outcome)
    raw.error = "".join(traceback.format_exception(exc))
    return outcome


def record(raw: RawMessage, outcome: Outcome, count: bool = True) -> None:
    """The outcome on the raw row."""
    raw.state = outcome.state
    raw.outcome = outcome.action
    raw.attempts = (raw.attempts or 0) + (1 if count else 0)
    raw.reason = outcome.reason
    if raw.state != "quarantined":
        raw.error = None                 # a retry that worked leaves no stale error behind


class MessageFailed(Exception):
    """A message of a batch taken without savepoints failed: the batch is
    rolled back and taken again, carefully (`flow_in_batch`)."""


def flow_in_batch(app: App, session: Session, raw: RawMessage, now: datetime, acknowledge: bool,
                  mail: ParsedMail | None, delivered: datetime | None, read: ReadAhead = NOT_READ, *,
                  careful: bool) -> Outcome:
    """`flow` and `record` for one message of a batch (pipeline.bulk,
    pipeline.batches). Quickly, without a savepoint: a failing step (not the
    database) raises MessageFailed, and the caller takes the batch again,
    carefully. Carefully, in a savepoint of its own: a failing step is rolled
    back alone, with what the batch's hints learnt from it, and the message
    is quarantined in place."""
    if not careful:
        try:
            outcome = flow(app, session, raw, now, (), acknowledge, mail, delivered, read)
        except SQLAlchemyError:
            raise
        except Exception as exc:  # noqa: BLE001 - rolls the batch back; it is taken again, carefully
            raise MessageFailed(raw.id) from exc
        record(raw, outcome)
        return outcome
    hints = hints_of(session)
    mark = hints.mark() if hints is not None else 0
    savepoint = session.begin_nested()
    try:
        outcome = flow(app, session, raw, now, (), acknowledge, mail, delivered, read)
        record(raw, outcome)            # inside the savepoint: one UPDATE of the raw row
        savepoint.commit()
        return outcome
    except SQLAlchemyError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the batch
        savepoint.rollback()
        if hints is not None:
            hints.rolled_back(session, mark)
        return quarantine_in_place(raw, exc)


def conversation(mail: ParsedMail) -> tuple[str, ...]:
    """The Message-IDs that thread or deduplicate this message."""
    return (mail.message_id, *mail.in_reply_to, *mail.references)


def over_limit(raw: RawMessage, breach: limits.Breach) -> Outcome:
    """Kept raw, not parsed further: the reason and the figures for `quarantine list`."""
    log.warning("raw message %s is over a limit: %s", raw.id, breach.detail)
    raw.error = breach.detail
    return Outcome(Disposition.QUARANTINED, breach.reason, None, raw.id)


def _is_our_message(session: Session, mail: ParsedMail) -> bool:
    """Mail with the Message-ID of one of our outgoing mails is that mail
    coming back (a forward to us, a list, a misconfigured alias), even when
    X-Loop was stripped on the way."""
    return not mail.message_id_synthesized and hygiene.outbox_row(session, (mail.message_id,)) is not None


def ref_of(app: App, ticket_id: int | None) -> str | None:
    """`MT-n` for a ticket number, None for none."""
    return None if ticket_id is None else ticket_ref(app.settings.ticket_prefix, ticket_id)
