"""Group commit in the SMTP listener (pipeline/group.py): sessions that send
at the same moment share a transaction, yet each message keeps its own
fate: 250 only once committed, stored exactly once, a bad message
quarantined alone, and a database failure a 4xx for every session waiting
on it. Behaviour only; the speed is bench/smtp.py's."""

from __future__ import annotations

import contextlib
import smtplib
import threading

from sqlalchemy import create_engine, func, select

from helpers import break_ticket_step, eml, make_site
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.ingest.smtp import Listener
from mailtriage.store.schema import RawMessage, Ticket
from servers import free_port, wait_for

NOW = parse_instant("2026-03-02T09:00:00+00:00")
CLIENTS, EACH = 8, 4


@contextlib.contextmanager
def _listening(tmp_path, database_url):  # type: ignore[no-untyped-def]
    site = make_site(tmp_path / "site", smtp_in_port=free_port(), database=database_url)
    app = build_app(load_config(site.config), FixedClock(NOW))
    listener = Listener(lambda: app)
    listener.start()
    try:
        yield app, listener
    finally:
        listener.stop()
        app.store.close()


def _send_all(port: int, messages: list[list[bytes]]) -> list[list[tuple[int, bytes]]]:
    """One client thread per list, all at once, each over one connection; the DATA replies."""
    replies: list[list[tuple[int, bytes]]] = [[] for _ in messages]
    start = threading.Barrier(len(messages))

    def client(number: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            smtp.ehlo("mta.example")
            start.wait()
            for raw in messages[number]:
                assert smtp.mail(f"c{number}@customer.example")[0] == 250
                assert smtp.rcpt("support@example.test")[0] == 250
                try:
                    replies[number].append(smtp.data(raw))
                except smtplib.SMTPDataError as refused:
                    replies[number].append((refused.smtp_code, refused.smtp_error))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(messages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return replies


def _count(app, *where) -> int:  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        return session.scalar(select(func.count()).select_from(RawMessage).where(*where)) or 0


def _tickets(app) -> list[str]:  # type: ignore[no-untyped-def]
    with app.store.session() as session:
        return sorted(session.scalars(select(Ticket.subject)))


def test_concurrent_sessions_each_get_250_and_each_message_is_stored_once(tmp_path, database_url):
    twice = eml("Sent by two MTAs at once", sender="dup@customer.example", message_id="<twice@customer.example>")
    messages = [[eml(f"Client {n} message {i}", sender=f"c{n}-{i}@customer.example",
                     message_id=f"<c{n}-{i}@customer.example>") for i in range(EACH)] + [twice]
                for n in range(CLIENTS)]
    with _listening(tmp_path, database_url) as (app, _listener):
        replies = _send_all(app.settings.smtp_in.port, messages)
        assert [[code for code, _ in one] for one in replies] == [[250] * (EACH + 1)] * CLIENTS
        wait_for(lambda: _count(app, RawMessage.state == "pending") == 0, timeout=120)
        assert _count(app) == CLIENTS * EACH + 1                    # the same bytes eight times: one row
        assert _tickets(app) == sorted([f"Client {n} message {i}" for n in range(CLIENTS) for i in range(EACH)]
                                       + ["Sent by two MTAs at once"])


def test_a_message_that_breaks_its_step_is_quarantined_alone_among_its_neighbours(tmp_path, database_url,
                                                                                     monkeypatch):
    break_ticket_step(monkeypatch, hits=lambda mail: mail.subject == "poison")
    messages = [[eml("poison" if n == 3 else f"Client {n}", sender=f"c{n}@customer.example",
                     message_id=f"<q{n}@customer.example>")] for n in range(CLIENTS)]
    with _listening(tmp_path, database_url) as (app, _listener):
        replies = _send_all(app.settings.smtp_in.port, messages)
        assert [code for one in replies for code, _ in one] == [250] * CLIENTS      # stored: the 250 stands
        wait_for(lambda: _count(app, RawMessage.state == "pending") == 0, timeout=120)
        assert _count(app, RawMessage.state == "quarantined") == 1
        assert _tickets(app) == sorted(f"Client {n}" for n in range(CLIENTS) if n != 3)


def test_a_database_failure_answers_4xx_to_every_session_waiting_on_the_commit(tmp_path, database_url):
    messages = [[eml(f"Client {n}", sender=f"c{n}@customer.example", message_id=f"<f{n}@customer.example>")]
                for n in range(CLIENTS)]
    with _listening(tmp_path, database_url) as (app, listener):
        _count(app)                                                   # the schema exists
        blocker = create_engine(app.settings.database)
        with blocker.connect() as other:
            other.begin()
            _hold_raw_messages(other)                                 # another writer holds the table …
            answers: list[list[list[tuple[int, bytes]]]] = []
            sending = threading.Thread(target=lambda: answers.append(_send_all(app.settings.smtp_in.port, messages)))
            sending.start()
            wait_for(lambda: listener.handler.in_hand == CLIENTS, timeout=60)
            _break_raw_inserts(other)                                 # … and the disk fills meanwhile
            other.commit()
            sending.join(120)
        blocker.dispose()
        [replies] = answers
        codes = [code for one in replies for code, _ in one]
        assert codes == [451] * CLIENTS, replies
        assert all(b"4.3.0" in reply and b"try again later" in reply for one in replies for _, reply in one)
        assert _count(app) == 0


def _hold_raw_messages(conn) -> None:  # type: ignore[no-untyped-def]
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("LOCK TABLE raw_messages IN ACCESS EXCLUSIVE MODE")


def _break_raw_inserts(conn) -> None:  # type: ignore[no-untyped-def]
    """As helpers.break_raw_inserts, inside the transaction that holds the table."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("CREATE TRIGGER broken BEFORE INSERT ON raw_messages "
                             "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    else:
        conn.exec_driver_sql("CREATE FUNCTION mt_broken() RETURNS trigger AS $$ BEGIN "
                             "RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql")
        conn.exec_driver_sql("CREATE TRIGGER broken BEFORE INSERT ON raw_messages "
                             "FOR EACH ROW EXECUTE FUNCTION mt_broken()")


def test_a_lone_message_after_a_refused_recipient_is_ticketed_at_once(tmp_path, database_url):
    """A transaction that ends without DATA (a refused recipient, then RSET or
    QUIT) is no mail on its way: the next message, alone, is processed in its
    own commit and its 250 names the ticket, as swaks shows an admin."""
    with _listening(tmp_path, database_url) as (app, _listener):
        port = app.settings.smtp_in.port
        for ending in ("rset", "quit"):
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                smtp.ehlo("mta.example")
                assert smtp.mail("lost@customer.example")[0] == 250
                assert smtp.rcpt("nobody@elsewhere.example")[0] == 550
                if ending == "rset":
                    assert smtp.rset()[0] == 250
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
                smtp.ehlo("mta.example")
                assert smtp.mail("c@customer.example")[0] == 250
                assert smtp.rcpt("support@example.test")[0] == 250
                code, reply = smtp.data(eml(f"Printer after {ending}", message_id=f"<{ending}@customer.example>"))
            assert (code, reply.split()[:3]) == (250, [b"2.0.0", b"accepted", b"MT-1" if ending == "rset" else b"MT-2"])
        assert _tickets(app) == ["Printer after quit", "Printer after rset"]
