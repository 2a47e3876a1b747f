"""Mail hygiene through the whole pipeline: loops, bounces, quarantine,
attachments. Each test runs on SQLite and on PostgreSQL (the `site` fixture)."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from helpers import dsn, eml, qmail_bounce, site_app
from mailtriage import pipeline
from mailtriage.pipeline import spine
from mailtriage.notify import outbox
from mailtriage.notify.compose import Outgoing
from mailtriage.store.schema import AttachmentBlob, Event, Message, OutboxRow, RawMessage, Suppression, Ticket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
NOW = T0.isoformat()


def rows(app, model, *where):  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        return list(session.scalars(select(model).where(*where).order_by(*model.__table__.primary_key)))


def count(app, model, *where) -> int:  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def acks(app, to: str | None = None) -> list[OutboxRow]:  # type: ignore[no-untyped-def]
    found = rows(app, OutboxRow, OutboxRow.kind == "acknowledgement")
    return [row for row in found if to is None or to in row.recipients]


def headers_of(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


# -- loops ------------------------------------------------------------------

def test_our_own_message_coming_back_is_a_loop_even_without_x_loop(site):
    app = site_app(site, T0)
    assert pipeline.process(app, eml(message_id="<c-1@customer.example>"), T0).action == "new"
    [ack] = acks(app)
    # The acknowledgement comes back (a forward rule at the customer, a list):
    # X-Loop and Auto-Submitted stripped on the way, only the Message-ID left.
    echoed = eml("Re: whatever", sender="relay@customer.example", message_id=ack.message_id)
    assert pipeline.process(app, echoed, T0).action == "ignored:loop"
    with_x_loop = eml("Hello", sender="x@else.example", message_id="<x@else.example>",
                      headers={"X-Loop": "support@example.test"})     # loop_id: the first mailbox's address
    assert pipeline.process(app, with_x_loop, T0).action == "ignored:loop"
    assert count(app, Ticket) == 1 and len(acks(app)) == 1


def looped(hops: int, message_id: str) -> bytes:
    """A customer's mail that has passed `hops` relays (one Received header each)."""
    received = "".join(f"Received: from relay{n}.example (relay{n}.example [192.0.2.{n % 250}])\r\n"
                       f"\tby relay{n + 1}.example with ESMTP id R{n}; Mon, 2 Mar 2026 08:59:00 +0000\r\n"
                       for n in range(hops))
    return received.encode() + eml("Stuck printer", message_id=message_id)


def test_mail_that_went_round_too_many_relays_is_a_loop_never_a_ticket(site):
    app = site_app(site, T0)
    assert pipeline.process(app, looped(51, "<loop-1@customer.example>"), T0).action == "ignored:loop"
    assert count(app, Ticket) == 0 and acks(app) == []
    assert pipeline.process(app, looped(50, "<hops-50@customer.example>"), T0).action == "new"
    assert count(app, Ticket) == 1 and len(acks(app)) == 1


def _auto_responder(app, bot: str, round_no: int, keep_thread: bool):  # type: ignore[no-untyped-def]
    """An auto-responder that ignores RFC 3834: it answers our newest mail to
    it with a fresh message, no Auto-Submitted, no Precedence, no X-Loop."""
    newest = acks(app, to=bot)[-1]
    original = headers_of(newest.data)
    subject = f"Re: {original['Subject']}" if keep_thread else f"Your mail #{round_no}"
    return eml(subject, "Thank you for your message. We will answer within 3 days.", sender=bot,
               message_id=f"<bot-{round_no}@auto.example>",
               in_reply_to=newest.message_id if keep_thread else None)


def test_ping_pong_with_an_auto_responder_that_threads(site):
    app = site_app(site, T0)
    bot = "helpdesk@auto.example"
    pipeline.process(app, eml("Is my order on its way?", sender=bot, message_id="<bot-0@auto.example>"), T0)
    for round_no in range(1, 30):
        before = len(acks(app, to=bot))
        outcome = pipeline.process(app, _auto_responder(app, bot, round_no, keep_thread=True),
                                   app.clock.advance(timedelta(minutes=1)))
        assert outcome.line() == "MT-1 reply"
        if len(acks(app, to=bot)) == before:
            break                                   # nothing new to answer: the ping-pong is over
    assert len(acks(app, to=bot)) == 1              # a reply to a ticket is never acknowledged
    assert round_no == 1


def test_ping_pong_with_an_auto_responder_that_drops_tag_and_references(site):
    """The worst case: every bot message looks like a new request. The per-sender
    limit (5 an hour) ends it, and a bot that answers more slowly still gets
    at most five an hour."""
    app = site_app(site, T0)
    bot = "robot@auto.example"
    pipeline.process(app, eml("Order status", sender=bot, message_id="<bot-0@auto.example>"), T0)
    rounds = 0
    while rounds < 100:
        before = len(acks(app, to=bot))
        rounds += 1
        pipeline.process(app, _auto_responder(app, bot, rounds, keep_thread=False),
                         app.clock.advance(timedelta(seconds=30)))
        if len(acks(app, to=bot)) == before:
            break
    assert len(acks(app, to=bot)) == 5 and rounds == 5
    limited = rows(app, Event, Event.type == "not-acknowledged")
    assert limited and "rate limit" in limited[-1].detail
    # Three hours of one bot message every 10 minutes: never more than 5 in any hour.
    for _ in range(18):
        pipeline.process(app, eml("ping", sender=bot, message_id=f"<bot-day-{rounds}@auto.example>"),
                         app.clock.advance(timedelta(minutes=10)))
        rounds += 1
    sent_at = [row.created_at for row in acks(app, to=bot)]
    assert all(sum(1 for t in sent_at if start <= t < start + timedelta(hours=1)) <= 5 for start in sent_at)
    assert len(sent_at) <= 5 * 4


def test_an_out_of_office_reply_joins_its_ticket_unanswered(site):
    app = site_app(site, T0)
    pipeline.process(app, eml(message_id="<c-1@customer.example>"), T0)
    [ack] = acks(app)
    ooo = eml("Automatic reply: [MT-1] Printer on fire", "I am out until Monday.", message_id="<ooo@customer.example>",
              in_reply_to=ack.message_id, headers={"Auto-Submitted": "auto-replied"})
    assert pipeline.process(app, ooo, T0).line() == "MT-1 reply"
    assert len(acks(app)) == 1 and [e.type for e in rows(app, Event, Event.type == "auto-reply-received")]


# -- bounces ----------------------------------------------------------------

def test_hard_bounce_is_an_event_on_the_ticket_and_suppresses_the_address(site):
    app = site_app(site, T0)
    anna = "anna@customer.example"
    pipeline.process(app, eml(sender=anna, message_id="<a-1@customer.example>"), T0)
    [ack] = acks(app)

    outcome = pipeline.process(app, dsn(ack.message_id, anna), T0 + timedelta(minutes=5))

    assert outcome.line() == "MT-1 ignored:bounce"
    assert count(app, Ticket) == 1 and len(acks(app)) == 1          # never a new ticket, never a reply
    [event] = rows(app, Event, Event.type == "bounce")
    assert event.ticket_id == 1 and anna in event.detail and ack.message_id in event.detail
    [suppressed] = rows(app, Suppression)
    assert suppressed.address == anna and "MT-1" in suppressed.reason
    # Nothing more goes to her: the outbox keeps the mail as `suppressed`.
    with app.store.session() as session, session.begin():
        row = outbox.enqueue(session, Outgoing(from_addr="support@example.test", from_name="Support",
                                               to=(anna,), subject="[MT-1] update", body="…"),
                             kind="warning", now=T0, ticket_id=1)
        assert row.status == "suppressed" and anna in (row.last_error or "")
    site.ok("outbox", "flush", now=NOW)
    to_anna = [(row.kind, row.status) for row in rows(app, OutboxRow) if anna in row.recipients]
    assert to_anna == [("acknowledgement", "sent"), ("warning", "suppressed")]
    # She writes again, so her address works: the suppression is lifted.
    pipeline.process(app, eml("New question", sender=anna, message_id="<a-2@customer.example>"),
                     T0 + timedelta(minutes=10))
    assert rows(app, Suppression) == [] and acks(app, to=anna)[-1].status == "pending"


def test_no_acknowledgement_event_when_the_reply_address_is_suppressed(site):
    app = site_app(site, T0)
    anna = "anna@customer.example"
    pipeline.process(app, eml(sender=anna, message_id="<s-1@customer.example>"), T0)
    [ack] = acks(app)
    pipeline.process(app, dsn(ack.message_id, anna), T0 + timedelta(minutes=5))
    # Her colleague writes, asking us to answer to Anna's dead address.
    mail = eml("Another question", sender="ben@customer.example", message_id="<s-2@customer.example>",
               headers={"Reply-To": anna})
    assert pipeline.process(app, mail, T0 + timedelta(minutes=6)).action == "new"
    events = [e.type for e in rows(app, Event, Event.ticket_id == 2)]
    assert "acknowledged" not in events and "not-acknowledged" in events


def test_vendor_bounce_and_soft_bounce(site):
    app = site_app(site, T0)
    pipeline.process(app, eml(sender="bob@customer.example", message_id="<b-1@customer.example>"), T0)
    pipeline.process(app, eml("Other", sender="cid@customer.example", message_id="<c-1@customer.example>"), T0)
    bob_ack, cid_ack = acks(app)

    assert pipeline.process(app, qmail_bounce(bob_ack.message_id, "bob@customer.example"), T0).line() \
        == "MT-1 ignored:bounce"
    delayed = dsn(cid_ack.message_id, "cid@customer.example", action="delayed", status="4.4.7",
                  message_id="<dsn-2@mx.customer.example>")
    assert pipeline.process(app, delayed, T0).line() == "MT-2 ignored:bounce"

    assert [s.address for s in rows(app, Suppression)] == ["bob@customer.example"]
    soft = rows(app, Event, Event.type == "bounce", Event.ticket_id == 2)
    assert "delayed for cid@customer.example" in soft[0].detail


def test_a_configured_address_that_bounces_is_not_suppressed(site):
    app = site_app(site, T0)
    pipeline.process(app, eml(message_id="<c-1@customer.example>"), T0)
    with app.store.session() as session, session.begin():
        row = outbox.enqueue(session, Outgoing(from_addr="support@example.test", from_name="Support",
                                               to=("l1-team@example.test",), subject="[MT-1] escalated", body="…"),
                             kind="escalation", now=T0, ticket_id=1)
        message_id = row.message_id
    assert pipeline.process(app, dsn(message_id, "l1-team@example.test"), T0).line() == "MT-1 ignored:bounce"
    assert rows(app, Suppression) == []                      # a team list that bounces needs a config fix
    assert "l1-team@example.test" in rows(app, Event, Event.type == "bounce")[0].detail


def test_bounce_about_mail_we_never_sent_changes_nothing(site):
    app = site_app(site, T0)
    pipeline.process(app, eml(sender="anna@customer.example", message_id="<a-1@customer.example>"), T0)
    backscatter = dsn("<forged@spammer.example>", "anna@customer.example")
    assert pipeline.process(app, backscatter, T0).line() == "- ignored:bounce"
    assert rows(app, Suppression) == [] and rows(app, Event, Event.type == "bounce") == []
    assert count(app, Ticket) == 1


# -- quarantine -------------------------------------------------------------

def _with_limits(site, **limits: object) -> None:  # type: ignore[no-untyped-def]
    text = site.config.read_text().split("\nlimits:", 1)[0]
    site.config.write_text(text + "\nlimits: " + json.dumps(limits) + "\n")


def test_over_a_limit_is_stored_raw_and_quarantined_with_the_reason(site):
    _with_limits(site, max_message_size="1KB")
    raw = eml("Big", "x" * 2000, message_id="<big@customer.example>")
    site.write("big.eml", "").write_bytes(raw)
    assert site.ingest(site.dir / "big.eml", now=NOW) == ["- quarantined:limit:size"]
    [listed] = json.loads(site.ok("quarantine", "list", "--json"))
    assert listed["reason"] == "limit:size" and "max_message_size" in listed["error"]
    app = site_app(site, T0)
    [stored] = rows(app, RawMessage)
    assert stored.data == raw and count(app, Ticket) == 0 and count(app, Message) == 0

    _with_limits(site, max_message_size="1MB")                 # the operator raises the limit
    assert site.ok("quarantine", "retry", "--all", now=NOW).split()[-1] == "new"
    assert json.loads(site.ok("quarantine", "list", "--json")) == []
    [stored] = rows(app, RawMessage)
    assert stored.error is None and stored.state == "processed"


def test_automatic_retries_are_bounded_and_a_poison_message_blocks_nothing(site, monkeypatch):
    app = site_app(site, T0)
    real_step = spine.change_ticket

    def step_with_a_bug(app, session, incoming, ticket, threading):  # type: ignore[no-untyped-def]
        if incoming.mail.message_id == "<poison@customer.example>":
            raise KeyError("a bug that hits this one message")
        return real_step(app, session, incoming, ticket, threading)

    monkeypatch.setattr(spine, "change_ticket", step_with_a_bug)
    assert pipeline.process(app, eml("Poison", message_id="<poison@customer.example>"), T0).action \
        == "quarantined:error:KeyError"
    # Two messages stored while the database failed after the commit (left pending).
    waiting = [pipeline.accept(app, eml(f"Waiting {i}", message_id=f"<w{i}@customer.example>"), T0, "smtp:x")[0]
               for i in range(2)]
    assert pipeline.retry_quarantined(app, T0 + timedelta(minutes=1)) != []     # only the poison: too fresh
    assert count(app, RawMessage, RawMessage.state == "pending") == 2

    later = T0 + timedelta(minutes=10)
    outcomes = pipeline.retry_quarantined(app, later)
    assert sorted(o.action for o in outcomes) == ["new", "new", "quarantined:error:KeyError"]
    assert all(o.raw_id in waiting for o in outcomes if o.action == "new")
    for minute in range(20):
        pipeline.retry_quarantined(app, later + timedelta(minutes=minute))
    [poison] = rows(app, RawMessage, RawMessage.state == "quarantined")
    assert poison.attempts == pipeline.MAX_ATTEMPTS and "KeyError" in (poison.error or "")
    assert pipeline.retry_quarantined(app, later + timedelta(hours=1)) == []

    monkeypatch.setattr(spine, "change_ticket", real_step)        # fixed: an operator retries by hand
    assert pipeline.process_stored(app, poison.id, later).action == "new"
    assert count(app, Ticket) == 3


def test_a_message_processed_meanwhile_is_not_processed_twice(site):
    app = site_app(site, T0)
    raw_id, _ = pipeline.accept(app, eml(message_id="<once@customer.example>"), T0, "smtp:x")
    assert pipeline.process_stored(app, raw_id, T0).line() == "MT-1 new"
    assert pipeline.process_stored(app, raw_id, T0).line() == "MT-1 new"     # a second daemon's late retry
    assert count(app, Ticket) == 1 and len(acks(app)) == 1


# -- attachments ------------------------------------------------------------

def _with_attachment(message_id: str, filename: str, content: bytes) -> bytes:
    import base64

    return (f"From: carla@customer.example\r\nTo: support@example.test\r\nSubject: Logs\r\n"
            f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="s"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\n'
            f"see attached\r\n--s\r\nContent-Type: application/octet-stream\r\n"
            f'Content-Disposition: attachment; filename="{filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            f"{base64.b64encode(content).decode()}\r\n--s--\r\n").encode()


def test_attachments_are_stored_once_by_content_with_safe_names(site):
    app = site_app(site, T0)
    content = b"\x00\x01 binary log \xff" * 100
    pipeline.process(app, _with_attachment("<l-1@customer.example>", "../../etc/passwd", content), T0)
    pipeline.process(app, _with_attachment("<l-2@customer.example>", "C:\\\\Windows\\\\x.dll", content), T0)
    [blob] = rows(app, AttachmentBlob)
    assert blob.data == content and blob.size == len(content)
    metadata = [m.attachments[0] for m in rows(app, Message)]
    assert [a["filename"] for a in metadata] == ["passwd", "x.dll"]
    assert {a["sha256"] for a in metadata} == {blob.sha256}
    shown = site.ticket("MT-1")["messages"][0]["attachments"][0]
    assert shown["sha256"] == blob.sha256 and shown["size"] == len(content)
