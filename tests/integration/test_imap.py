"""The IMAP watcher's one pass (`run_once`) against the real Dovecot."""

from __future__ import annotations

import email
import email.policy
import logging
import mailbox
import threading

import pytest
from imapclient import IMAPClient
from sqlalchemy import func, select, text

from daemons import PASSWORD_ENV, imap_site
from helpers import break_raw_inserts, eml
from servers import wait_for
from mailtriage import pipeline
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.errors import TemporaryFailure
from mailtriage.ingest.imap import ImapWatcher
from mailtriage.notify import outbox
from mailtriage.store.schema import ImapState, OutboxRow, RawMessage

NOW = parse_instant("2026-03-02T09:00:00+00:00")
USER = "support@example.test"


@pytest.fixture
def support(dovecot, monkeypatch):
    dovecot.reset(USER)
    monkeypatch.setenv(PASSWORD_ENV, "support-secret")
    return dovecot


def watcher_for(site):  # type: ignore[no-untyped-def]
    app = build_app(load_config(site.config), FixedClock(NOW))
    [box] = app.settings.mailboxes
    return app, ImapWatcher(box, lambda: app)


def imap(dovecot) -> IMAPClient:  # type: ignore[no-untyped-def]
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    client.login(USER, "support-secret")
    return client


def flags(dovecot, folder: str = "INBOX") -> dict[int, tuple]:  # type: ignore[no-untyped-def]
    client = imap(dovecot)
    try:
        client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        return {uid: data[b"FLAGS"] for uid, data in client.fetch(uids, ["FLAGS"]).items()} if uids else {}
    finally:
        client.logout()


def count(app, model) -> int:  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_new_mail_is_taken_once_and_flagged_seen_after_the_commit(tmp_path, support, database_url):
    site = imap_site(tmp_path / "site", support, database=database_url)
    for i in range(3):
        support.deliver(USER, eml(f"Printer {i} on fire", sender=f"c{i}@customer.example",
                                  message_id=f"<p{i}@customer.example>"))
    app, watcher = watcher_for(site)
    try:
        taken = watcher.run_once(NOW)
        assert [t.outcome.action for t in taken] == ["new"] * 3
        assert [t.message_id for t in taken] == [f"<p{i}@customer.example>" for i in range(3)]
        assert all(b"\\Seen" in f for f in flags(support).values())
        assert watcher.run_once(NOW) == []                       # UIDs remembered: nothing twice

        support.deliver(USER, eml("Scanner too", sender="c9@customer.example", message_id="<s@customer.example>"))
        [late] = watcher.run_once(NOW)
        assert (late.uid, late.outcome.action) == (4, "new")
        with app.store.session() as session:
            state = session.scalar(select(ImapState))
            assert (state.mailbox, state.folder, state.last_uid) == ("support", "INBOX", 4)
        assert count(app, RawMessage) == 4
    finally:
        watcher.close()
        app.store.close()


def test_processed_folder_receives_the_messages(tmp_path, support):
    site = imap_site(tmp_path / "site", support, processed="Processed")
    support.deliver(USER, eml("One", message_id="<one@customer.example>"))
    support.deliver(USER, eml("Two", sender="d@customer.example", message_id="<two@customer.example>"))
    app, watcher = watcher_for(site)
    try:
        assert len(watcher.run_once(NOW)) == 2
        assert flags(support) == {}
        assert len(flags(support, "Processed")) == 2
    finally:
        watcher.close()
        app.store.close()


def test_a_new_uidvalidity_rescans_and_duplicates_are_recognised(tmp_path, support):
    client = imap(support)
    client.create_folder("Tickets")
    site = imap_site(tmp_path / "site", support, folder="Tickets")
    first = eml("Printer on fire", message_id="<u1@customer.example>")
    support.deliver(USER, first, mailbox="Tickets")
    support.deliver(USER, eml("Fax", sender="f@customer.example", message_id="<u2@customer.example>"),
                    mailbox="Tickets")
    app, watcher = watcher_for(site)
    try:
        assert [t.outcome.action for t in watcher.run_once(NOW)] == ["new", "new"]
        old = client.folder_status("Tickets", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        client.delete_folder("Tickets")
        client.create_folder("Tickets")
        assert client.folder_status("Tickets", ["UIDVALIDITY"])[b"UIDVALIDITY"] != old
        support.deliver(USER, first, mailbox="Tickets")                       # UID 1 again, seen before
        support.deliver(USER, eml("Copier", sender="g@customer.example", message_id="<u3@customer.example>"),
                        mailbox="Tickets")

        again = watcher.run_once(NOW)
        assert [(t.uid, t.outcome.action) for t in again] == [(1, "duplicate"), (2, "new")]
        with app.store.session() as session:
            assert session.scalar(select(func.count()).select_from(OutboxRow)
                                  .where(OutboxRow.kind == "acknowledgement")) == 3
    finally:
        client.logout()
        watcher.close()
        app.store.close()


def test_a_store_failure_leaves_the_message_unflagged_for_the_next_pass(tmp_path, support):
    site = imap_site(tmp_path / "site", support)
    support.deliver(USER, eml("Printer on fire", message_id="<sf@customer.example>"))
    app, watcher = watcher_for(site)
    try:
        break_raw_inserts(app.settings.database)
        with pytest.raises(TemporaryFailure):
            watcher.run_once(NOW)
        assert flags(support) == {1: ()}                              # not \Seen: not ours yet
        with app.store.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER broken"))
        [taken] = watcher.run_once(NOW)
        assert taken.outcome.action == "new"
        assert b"\\Seen" in flags(support)[1]
    finally:
        watcher.close()
        app.store.close()


def test_a_message_committed_before_a_crash_is_processed_once(tmp_path, support):
    """The daemon died after the commit, before flagging: the next pass finishes it."""
    site = imap_site(tmp_path / "site", support)
    raw = eml("Printer on fire", message_id="<crash@customer.example>")
    support.deliver(USER, raw)
    app, watcher = watcher_for(site)
    try:
        fetched = imap(support)
        fetched.select_folder("INBOX")
        body = fetched.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]
        fetched.logout()
        pipeline.accept(app, body, NOW, "imap:support")                # … and then the crash
        [taken] = watcher.run_once(NOW)
        assert taken.outcome.action == "new"
        assert count(app, RawMessage) == 1
        assert count(app, OutboxRow) >= 1
    finally:
        watcher.close()
        app.store.close()


def test_a_customer_reply_made_with_mutt_joins_the_ticket(tmp_path, support, smtp_sink, mutt):
    site = imap_site(tmp_path / "site", support)
    support.deliver(USER, eml("Printer on fire", sender="Carla Customer <carla@customer.example>",
                              message_id="<first@customer.example>"))
    app, watcher = watcher_for(site)
    try:
        [taken] = watcher.run_once(NOW)
        outbox.run_once(app, NOW)
        [ack] = [c for c in smtp_sink if c.rcpt_tos == ["carla@customer.example"]]

        box = mailbox.mbox(tmp_path / "ack.mbox")
        box.add(email.message_from_bytes(ack.raw))
        box.close()
        smtp_sink.clear()
        mutt.reply(tmp_path / "ack.mbox", "Still smoking, please hurry.",
                   from_="Carla Customer <carla@customer.example>")
        [reply] = smtp_sink
        assert reply.msg["In-Reply-To"] == ack.msg["Message-ID"]

        support.deliver(USER, reply.raw)                                 # the reply reaches the mailbox
        [answer] = watcher.run_once(NOW)
        assert (answer.outcome.action, answer.outcome.ref) == ("reply", taken.outcome.ref)
    finally:
        watcher.close()
        app.store.close()


def test_on_postgresql_one_daemon_watches_a_folder_the_other_stands_by(tmp_path, support, pg_url, caplog):
    site = imap_site(tmp_path / "site", support, database=pg_url)
    pairs = [watcher_for(site) for _ in range(2)]
    threads = [threading.Thread(target=w.serve, daemon=True) for _app, w in pairs]
    try:
        with caplog.at_level(logging.INFO, logger="mailtriage.ingest.imap"):
            for thread in threads:
                thread.start()
            wait_for(lambda: "standing by" in caplog.text and caplog.text.count("waiting with IDLE") == 1)
            for i in range(3):
                support.deliver(USER, eml(f"Printer {i}", sender=f"c{i}@customer.example",
                                          message_id=f"<pg{i}@customer.example>"))
            app = pairs[0][0]
            wait_for(lambda: count(app, RawMessage) == 3 and not _pending(app), timeout=15)
        assert caplog.text.count("standing by") == 1
        with app.store.session() as session:
            assert session.scalar(select(func.count()).select_from(OutboxRow)
                                  .where(OutboxRow.kind == "acknowledgement")) == 3
    finally:
        for _app, w in pairs:
            w.stop()
        for thread in threads:
            thread.join(5)
        for app, _w in pairs:
            app.store.close()


def _pending(app) -> int:  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        return session.scalar(select(func.count()).select_from(RawMessage).where(RawMessage.state == "pending"))


def test_the_first_look_takes_old_mail_in_as_history_and_answers_only_the_new(tmp_path, support):
    from datetime import timedelta

    from mailtriage.sla import sweep
    from mailtriage.store.schema import Ticket

    site = imap_site(tmp_path / "site", support)
    client = imap(support)
    last_year = NOW - timedelta(days=300)
    for i in range(200):
        client.append("INBOX", eml(f"Old question {i}", sender=f"old{i}@customer.example", date=last_year,
                                   message_id=f"<old{i}@customer.example>"), msg_time=last_year)
    for i in range(3):
        when = NOW - timedelta(minutes=30 + i)
        client.append("INBOX", eml(f"New question {i}", sender=f"new{i}@customer.example", date=when,
                                   message_id=f"<new{i}@customer.example>"), msg_time=when)
    client.logout()
    app, watcher = watcher_for(site)
    try:
        taken = watcher.run_once(NOW)
        assert [t.outcome.action for t in taken] == ["new"] * 203
        with app.store.session() as session:
            acks = session.scalars(select(OutboxRow).where(OutboxRow.kind == "acknowledgement")).all()
            assert sorted(address for row in acks for address in row.recipients) == \
                [f"new{i}@customer.example" for i in range(3)]
            old = session.scalars(select(Ticket).where(Ticket.subject.like("Old question%"))).all()
            assert len(old) == 200 and {t.created_at for t in old} == {last_year}
        sweep.run_once(app, NOW + timedelta(hours=1))
        with app.store.session() as session:
            about_old = session.scalar(select(func.count()).select_from(OutboxRow).where(
                OutboxRow.ticket_id.in_([t.id for t in old])))
            assert about_old == 0
    finally:
        app.store.close()
