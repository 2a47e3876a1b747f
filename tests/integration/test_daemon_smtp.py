"""The SMTP/LMTP listener: swaks and smtplib as the MTA, a real aiosmtpd server.
Our own failures answer 4xx (the MTA keeps the message), never 5xx."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import smtplib
import sqlite3
import subprocess
import threading

import pytest
import yaml

from helpers import break_raw_inserts, eml, make_site, need
from mailtriage.app import build_app, load_config
from mailtriage.clock import FixedClock, parse_instant
from mailtriage.ingest.smtp import Listener
from servers import free_port, wait_for

NOW = parse_instant("2026-03-02T09:00:00+00:00")


@pytest.fixture
def listening(tmp_path, database_url):
    """A site, its App and its listener on a free port; yields (site, app, port)."""
    site = make_site(tmp_path / "site", smtp_in_port=free_port(), database=database_url)
    with _listen(site) as running:
        yield running


@contextlib.contextmanager
def _listen(site):  # type: ignore[no-untyped-def]
    app = build_app(load_config(site.config), FixedClock(NOW))
    listener = Listener(lambda: app)
    listener.start()
    try:
        yield site, app, app.settings.smtp_in.port
    finally:
        listener.stop()
        app.store.close()


def test_swaks_gets_250_after_the_commit_and_the_ticket_exists(listening):
    need(shutil.which("swaks") is not None, "swaks is not installed (apt-get install swaks)")
    site, app, port = listening
    out = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from", "anna@customer.example", "--to", "support@example.test",
         "--header", "Subject: VPN is down", "--header", "Message-Id: <swaks-1@customer.example>",
         "--body", "Nobody can work."], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "<-  250 2.0.0 accepted MT-" in out.stdout
    [ticket] = site.tickets()
    assert ticket["subject"] == "VPN is down" and ticket["requester"] == "anna@customer.example"


def test_unknown_recipients_get_550_and_the_size_limit_is_announced(listening):
    _site, app, port = listening
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        code, _ = smtp.ehlo("mta.example")
        assert code == 250
        assert int(smtp.esmtp_features["size"]) == app.settings.smtp_in.max_size
        smtp.mail("anna@customer.example")
        code, reply = smtp.rcpt("nobody@example.test")
        assert code == 550 and b"no such mailbox" in reply
        assert smtp.rcpt("support-comment@example.test")[0] == 250


def test_a_message_over_the_size_limit_is_refused(tmp_path):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    data = yaml.safe_load(site.config.read_text())
    data["smtp_in"]["max_size"] = "1KB"
    site.config.write_text(yaml.safe_dump(data))
    with _listen(site) as (_site, _app, port):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            assert smtp.ehlo()[0] == 250 and smtp.esmtp_features["size"] == "1024"
            with pytest.raises(smtplib.SMTPException) as refused:
                smtp.sendmail("anna@customer.example", ["support@example.test"], eml(body="x" * 4000))
            assert "552" in str(refused.value)
        assert site.tickets() == []


def test_a_store_failure_answers_451_so_the_mta_keeps_the_message(listening):
    site, app, port = listening
    site.tickets()                                           # the schema exists
    break_raw_inserts(app.settings.database)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("anna@customer.example", ["support@example.test"], eml("Printer on fire"))
    assert refused.value.smtp_code == 451


def test_lmtp_answers_once_per_recipient(tmp_path):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    data = yaml.safe_load(site.config.read_text())
    data["smtp_in"]["lmtp"] = True
    site.config.write_text(yaml.safe_dump(data))
    with _listen(site) as (_site, _app, port):
        lmtp = smtplib.LMTP("127.0.0.1", port, timeout=10)
        try:
            assert lmtp.ehlo()[0] == 250                    # smtplib.LMTP sends LHLO
            lmtp.mail("anna@customer.example")
            assert lmtp.rcpt("support@example.test")[0] == 250
            assert lmtp.rcpt("support-comment@example.test")[0] == 250
            lmtp.putcmd("data")
            assert lmtp.getreply()[0] == 354
            lmtp.send(eml("Printer on fire", message_id="<lmtp@customer.example>").replace(b"\r\n.", b"\r\n..")
                      + b"\r\n.\r\n")
            replies = [lmtp.getreply(), lmtp.getreply()]
            assert [code for code, _ in replies] == [250, 250]
        finally:
            lmtp.close()
        assert len(site.tickets()) == 1


def test_a_database_refusing_connections_answers_451_and_the_retry_is_ticketed_once(tmp_path, pg_url,
                                                                                      postgres_server):
    site = make_site(tmp_path / "site", smtp_in_port=free_port(), database=pg_url)
    name = pg_url.rsplit("/", 1)[1]
    message = eml("Printer on fire", message_id="<outage@customer.example>")
    with _listen(site) as (_site, _app, port):
        site.tickets()                                       # the schema exists, the pool holds a connection
        postgres_server.accept_connections(name, False)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    smtp.sendmail("anna@customer.example", ["support@example.test"], message)
        finally:
            postgres_server.accept_connections(name, True)
        assert refused.value.smtp_code == 451
        assert b"try again later" in refused.value.smtp_error
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:        # the MTA's retry
            assert smtp.sendmail("anna@customer.example", ["support@example.test"], message) == {}
    [ticket] = site.tickets()
    assert ticket["subject"] == "Printer on fire"


def test_a_bug_before_the_commit_answers_451_not_500(tmp_path):
    """aiosmtpd answers 500 for any exception a hook lets out, and an MTA bounces on 5xx."""
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    app = build_app(load_config(site.config), FixedClock(NOW))
    broken = dataclasses.replace(app, store=None)           # a bug: nothing can be stored
    listener = Listener(lambda: broken)
    listener.start()
    try:
        with smtplib.SMTP("127.0.0.1", site_port(site), timeout=10) as smtp:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                smtp.sendmail("anna@customer.example", ["support@example.test"], eml("Printer on fire"))
    finally:
        listener.stop()
        app.store.close()
    assert refused.value.smtp_code == 451


def test_stopping_answers_the_message_in_hand_and_421_to_new_mail(tmp_path):
    site = make_site(tmp_path / "site", smtp_in_port=free_port())
    site.tickets()                                           # the database exists
    writer = sqlite3.connect(site.dir / "mailtriage.db", timeout=5, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")                        # another writer holds the database for a while
    app = build_app(load_config(site.config), FixedClock(NOW))
    listener = Listener(lambda: app)
    listener.start()
    answers: list[object] = []

    def send_first() -> None:
        with smtplib.SMTP("127.0.0.1", site_port(site), timeout=30) as smtp:
            answers.append(smtp.sendmail("anna@customer.example", ["support@example.test"],
                                         eml("Printer on fire", message_id="<in-hand@customer.example>")))

    first = threading.Thread(target=send_first)
    first.start()
    wait_for(lambda: listener.handler.in_hand == 1)
    stopping = threading.Thread(target=listener.stop)
    stopping.start()
    wait_for(lambda: listener.handler.closing)
    with smtplib.SMTP("127.0.0.1", site_port(site), timeout=10) as smtp:
        smtp.ehlo("mta.example")
        code, reply = smtp.mail("bob@customer.example")
    assert code == 421 and b"shutting down" in reply
    writer.execute("ROLLBACK")
    first.join(30)
    stopping.join(30)
    app.store.close()
    assert answers == [{}]                                   # 250: the MTA will not send it again
    assert len(site.tickets()) == 1


def site_port(site) -> int:  # type: ignore[no-untyped-def]
    return int(yaml.safe_load(site.config.read_text())["smtp_in"]["port"])
