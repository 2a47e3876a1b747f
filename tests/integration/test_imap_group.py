"""An IMAP batch is stored in one transaction and processed in one
(pipeline/batches.py): a broken message is quarantined alone, and messages of
one batch see each other (a reply threads onto the ticket its original, in
the same batch, has just opened)."""

from __future__ import annotations

import pytest
from imapclient import IMAPClient
from sqlalchemy import select

from daemons import PASSWORD_ENV, imap_site
from helpers import break_ticket_step, eml
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.ingest.imap import ImapWatcher
from mailtriage.store.schema import Message, OutboxRow, RawMessage

NOW = parse_instant("2026-03-02T09:00:00+00:00")
USER = "support@example.test"


@pytest.fixture
def support(dovecot, monkeypatch):  # type: ignore[no-untyped-def]
    dovecot.reset(USER)
    monkeypatch.setenv(PASSWORD_ENV, "support-secret")
    return dovecot


def seen(dovecot) -> list[bool]:  # type: ignore[no-untyped-def]
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    client.login(USER, "support-secret")
    try:
        client.select_folder("INBOX", readonly=True)
        return [b"\\Seen" in data[b"FLAGS"] for _uid, data in sorted(client.fetch(client.search(["ALL"]),
                                                                                  ["FLAGS"]).items())]
    finally:
        client.logout()


def test_a_broken_message_of_a_batch_is_quarantined_and_its_neighbours_are_not_undone(
        tmp_path, support, database_url, monkeypatch):
    site = imap_site(tmp_path / "site", support, database=database_url)
    for i, subject in enumerate(["Printer on fire", "Boom", "Scanner jammed"]):
        support.deliver(USER, eml(subject, sender=f"c{i}@customer.example", message_id=f"<g{i}@customer.example>"))
    break_ticket_step(monkeypatch, lambda mail: mail.subject == "Boom")
    app = build_app(load_config(site.config), FixedClock(NOW))
    [box] = app.settings.mailboxes
    watcher = ImapWatcher(box, lambda: app)
    try:
        taken = watcher.run_once(NOW)
        assert [t.outcome.action for t in taken] == ["new", "quarantined:error:KeyError", "new"]
        assert seen(support) == [True, True, True]               # all committed, so all flagged
        with app.store.session() as session:
            raws = session.scalars(select(RawMessage).order_by(RawMessage.id)).all()
            assert [raw.state for raw in raws] == ["processed", "quarantined", "processed"]
            assert "KeyError" in (raws[1].error or "")
            assert len(session.scalars(select(OutboxRow)).all()) == 2      # nothing left of the broken one
    finally:
        watcher.close()
        app.store.close()


def test_a_reply_in_the_same_batch_as_its_original_joins_its_ticket(tmp_path, support, database_url):
    site = imap_site(tmp_path / "site", support, database=database_url)
    support.deliver(USER, eml("Printer on fire", message_id="<first@customer.example>"))
    support.deliver(USER, eml("Re: Printer on fire", "Still smoking.", message_id="<second@customer.example>",
                              in_reply_to="<first@customer.example>"))
    support.deliver(USER, eml("Printer on fire", message_id="<first@customer.example>",     # delivered twice
                              headers={"Delivered-To": "helpdesk@example.test"}))
    app = build_app(load_config(site.config), FixedClock(NOW))
    [box] = app.settings.mailboxes
    watcher = ImapWatcher(box, lambda: app)
    try:
        taken = watcher.run_once(NOW)
        assert [t.outcome.action for t in taken] == ["new", "reply", "duplicate"]
        assert len({t.outcome.ref for t in taken}) == 1
        with app.store.session() as session:
            assert len(session.scalars(select(Message)).all()) == 2
    finally:
        watcher.close()
        app.store.close()
