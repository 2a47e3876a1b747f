"""Two daemons on one PostgreSQL threading the same conversation at the same
moment: the second waits for the first's commit (a transaction-level advisory
lock per Message-ID), then sees its rows — a reply never opens a second
ticket because its parent was still being stored elsewhere, and one message
delivered to two mailboxes at once is one ticket.

Real PostgreSQL, two threads each with its own connection: the first is held
just before its commit; the second must then be seen waiting on a lock in
pg_locks (no sleeping, no guessing), and is let go by the first's commit."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from helpers import eml, make_site, site_app
from mailtriage import pipeline
from pg import libpq_dsn
from servers import wait_for

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
PARENT = eml("Printer on fire", "It is on fire.", sender="anna@customer.example",
             message_id="<parent@customer.example>")
REPLY = eml("Re: Printer on fire", "Still on fire.", sender="anna@customer.example",
            message_id="<reply@customer.example>", in_reply_to="<parent@customer.example>",
            references="<parent@customer.example>")


class HeldCommit:
    """Holds the commit of every transaction the thread `owner` makes, until released."""

    def __init__(self) -> None:
        self.owner: int | None = None
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self, session: Session) -> None:
        if threading.get_ident() == self.owner:
            self.reached.set()
            assert self.go.wait(30), "never released"


@pytest.fixture
def app(tmp_path, pg_url):  # type: ignore[no-untyped-def]
    site = make_site(tmp_path / "site", database=pg_url)
    app = site_app(site, NOW)
    yield app
    app.store.close()


def waiting_on_locks(app) -> int:  # type: ignore[no-untyped-def]
    with app.store.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar_one()


def race(app, first: bytes, second: bytes, acknowledge: bool = False) -> list[pipeline.Outcome]:  # type: ignore[no-untyped-def]
    """`first` is processed up to its commit and held there; then `second`
    starts, and must wait for a lock before `first` is allowed to commit."""
    held = HeldCommit()
    event.listen(Session, "before_commit", held)
    outcomes: dict[str, pipeline.Outcome] = {}

    def run(name: str, raw: bytes) -> None:
        if name == "first":
            held.owner = threading.get_ident()
        outcomes[name] = pipeline.process(app, raw, NOW, acknowledge=acknowledge)

    try:
        one = threading.Thread(target=run, args=("first", first))
        one.start()
        # accept() commits the raw bytes first: let that commit through, hold the next one.
        assert held.reached.wait(30)
        held.reached.clear()
        held.go.set()
        held.go = threading.Event()
        assert held.reached.wait(30), "the first message never reached its commit"
        two = threading.Thread(target=run, args=("second", second))
        two.start()
        wait_for(lambda: waiting_on_locks(app) >= 1 or not two.is_alive(), timeout=20)
        assert two.is_alive(), "the second message did not wait for the first one's commit"
        held.go.set()
        one.join(30)
        two.join(30)
    finally:
        held.go.set()
        event.remove(Session, "before_commit", held)
    return [outcomes["first"], outcomes["second"]]


def test_a_reply_racing_its_parent_joins_the_parents_ticket(app):
    first, second = race(app, PARENT, REPLY)
    assert first.action == "new"
    assert second.action == "reply" and second.ref == first.ref


def test_a_parent_racing_its_reply_joins_the_replys_ticket(app):
    first, second = race(app, REPLY, PARENT)
    assert first.action == "new"
    assert second.action == "reply" and second.ref == first.ref


def test_one_message_delivered_to_two_mailboxes_at_once_is_one_ticket(app):
    copy = PARENT.replace(b"To: ", b"Delivered-To: sales@example.test\nTo: ", 1)
    assert copy != PARENT
    first, second = race(app, PARENT, copy)
    assert first.action == "new"
    assert second.action == "duplicate" and second.ref == first.ref


def test_a_reply_racing_a_merge_of_its_ticket_follows_the_merge(app):
    """A customer's reply threads into MT-1 by its References while another
    daemon is merging MT-1 into MT-2: it waits for MT-1's row, then sees
    merged_into and lands in MT-2, never on the closed MT-1."""
    assert pipeline.process(app, PARENT, NOW).ref == "MT-1"
    assert pipeline.process(app, eml("Printer still burning", "Anyone?", sender="anna@customer.example",
                                     message_id="<other@customer.example>"), NOW).ref == "MT-2"
    merge = (b"Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n"
             + eml("Re: [MT-2] Printer still burning", "#merge MT-1", sender="Alice <alice@example.test>",
                   message_id="<merge@example.test>"))
    first, second = race(app, merge, REPLY, acknowledge=True)
    assert (first.action, first.ref) == ("reply", "MT-2")
    assert (second.action, second.ref) == ("reply", "MT-2")
    with app.store.session() as session:
        rows = session.execute(text("SELECT message_id, ticket_id, thread_evidence FROM messages "
                                    "WHERE message_id = '<reply@customer.example>'")).all()
        merged = session.execute(text("SELECT status, merged_into FROM tickets WHERE id = 1")).one()
    [(_, ticket_id, evidence)] = rows
    assert ticket_id == 2 and tuple(merged) == ("closed", 2)
    assert evidence.endswith("; MT-1 was merged into MT-2 meanwhile (by another daemon)")


def test_an_import_batch_chosen_as_a_deadlock_victim_is_stored_again(tmp_path, pg_url, caplog):
    """PostgreSQL breaks a deadlock (two imports, or an import and a daemon,
    wanting the same rows in opposite orders) by rolling one transaction back
    with SQLSTATE 40P01; the import stores that batch again instead of stopping.
    The deadlock is made by a trigger that reports one, the first time only."""
    import psycopg

    site = make_site(tmp_path / "site", database=pg_url)
    site.ok("db", "upgrade")
    with psycopg.connect(libpq_dsn(pg_url), autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE mt_once")         # nextval() is not rolled back: fails once only
        conn.execute("CREATE FUNCTION mt_deadlock() RETURNS trigger AS $$ BEGIN "
                     "IF nextval('mt_once') = 1 THEN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; "
                     "END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
        conn.execute("CREATE TRIGGER mt_deadlock BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION mt_deadlock()")
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "1.eml").write_bytes(PARENT)
    (folder / "2.eml").write_bytes(REPLY)
    code, out, err = site.cli("import", str(folder), "--no-progress", now=NOW.isoformat())
    assert code == 0, err
    assert "2 messages: 1 new, 1 reply" in out
    assert any("deadlock detected; storing it again" in r.getMessage() for r in caplog.records)
